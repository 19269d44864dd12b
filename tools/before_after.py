"""Before/after: fastdnn.model's time per epoch in two checkouts, each workload x checkout in its own process,
alternating, medians [ranges] over 5 timings per process. Threads: fastdnn's policy (threads=None) in both;
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for the workers. The public API only, so any two
commits compare. A checkout from before fastdnn/ found the kernels/ beside it needs them linked:
`git clone . /tmp/old && git -C /tmp/old checkout OLD && ln -s ../kernels /tmp/old/fastdnn/kernels`; a
worker whose fastdnn or kernels load from outside its checkout (an installed copy) is reported, not timed.

    python tools/before_after.py /tmp/old . --processes 3
    python tools/before_after.py . . --processes 1 --workloads tiny --epochs 10    # seconds: that it runs

The shapes are those of fastdnn/workloads.py, copied into the worker because an older checkout may not have
that module.
"""
import json, os, statistics, subprocess, sys
WORKER = r'''
import sys, time, json, numpy as np, h5py
import fastdnn
name, E = sys.argv[1], int(sys.argv[2])
W = {"seed": ([12288,20,7,5,1], 209, "float64", "auto"), "seed-direct": ([12288,20,7,5,1], 209, "float64", False),
     "tiny": ([16,8,1], 32, "float32", False), "small": ([64,32,32,1], 64, "float32", False),
     "medium": ([784,256,256,1], 256, "float32", False), "mnist": ([784,128,64,10], 128, "float32", False)}
dims, m, dt, gram = W[name]
if name.startswith("seed"):
    with h5py.File(sys.argv[3] + "/train_catvnoncat.h5") as f:
        X = (np.array(f["train_set_x"]).reshape(209, -1).T / 255.0).astype(dt); Y = np.array(f["train_set_y"]).reshape(1, -1)
else:
    rng = np.random.default_rng(0); X = np.asfortranarray(rng.standard_normal((dims[0], m)).astype(dt))
    K = dims[-1]; lab = rng.integers(0, max(K, 2), m)
    Y = lab.reshape(1, -1) if K == 1 else np.eye(K)[:, lab]
out = "softmax" if dims[-1] > 1 else "sigmoid"
run = lambda n: fastdnn.model(X, Y, dims, num_epochs=n, learning_rate=0.0075, output=out, gram=gram, dtype=dt)
run(12); ts = []
for r in range(5):
    t0 = time.perf_counter(); run(1); t1 = time.perf_counter(); run(1 + E); t2 = time.perf_counter()
    ts.append(((t2 - t1) - (t1 - t0)) / E)
import os
print("F", os.path.realpath(fastdnn.__file__), os.path.realpath(sys.modules["fastdnn.kernels"].__file__))
print("R", json.dumps(ts))
'''
EPOCHS = {"seed": 2500, "seed-direct": 100, "tiny": 20000, "small": 10000, "medium": 500, "mnist": 2000}


def main(argv=None):
    import argparse

    from fastdnn.data import cat_data_dir

    p = argparse.ArgumentParser(description="fastdnn.model per epoch in two checkouts")
    p.add_argument("before"); p.add_argument("after"); p.add_argument("--processes", type=int, default=3)
    p.add_argument("--data-dir", default=cat_data_dir(), help="the cat files' folder (default %(default)s: "
                   "$FASTDNN_CAT_DATA, else ../shared/data/catvnoncat beside the checkout)")
    p.add_argument("--workloads", default=",".join(EPOCHS), help="comma-separated (default: all): " + ", ".join(EPOCHS))
    p.add_argument("--epochs", type=int, help="timed epochs of every workload (default: each workload's own, "
                   + ", ".join(f"{w} {e}" for w, e in EPOCHS.items()) + ")")
    args = p.parse_args(argv)
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = [w for w in workloads if w not in EPOCHS]
    if unknown or (args.epochs is not None and args.epochs < 1) or args.processes < 1:
        p.error(f"--workloads must be among {', '.join(EPOCHS)}, --epochs and --processes at least 1")
    E = {w: args.epochs or EPOCHS[w] for w in workloads}
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    res = {}
    for rep in range(args.processes):
        for w in E:
            for ver, path in (("before", os.path.abspath(args.before)), ("after", os.path.abspath(args.after))):
                # Run in the checkout: `python -c` puts the working directory before PYTHONPATH.
                out = subprocess.run([sys.executable, "-c", WORKER, w, str(E[w]), os.path.abspath(args.data_dir)],
                                     env={**env, "PYTHONPATH": path}, cwd=path, capture_output=True, text=True)
                line = [l for l in out.stdout.splitlines() if l.startswith("R ")]
                if not line:
                    print(ver, w, out.stderr[-500:]); continue
                files = next(l for l in out.stdout.splitlines() if l.startswith("F ")).split()[1:]
                outside = [f for f in files if not f.startswith(os.path.realpath(path) + os.sep)]
                if outside:
                    print(f"{ver} {w}: {path} ran {', '.join(outside)}, not its own code; not timed")
                    continue
                res.setdefault((w, ver), []).extend(json.loads(line[0][2:]))
    failed = False
    for w in E:
        if (w, "before") not in res or (w, "after") not in res:
            failed = True
            continue
        b, a = res[(w, "before")], res[(w, "after")]
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"{w:12s} before {mb*1e3:8.4f} ms/epoch [{min(b)*1e3:.4f}-{max(b)*1e3:.4f}]  "
              f"after {ma*1e3:8.4f} [{min(a)*1e3:.4f}-{max(a)*1e3:.4f}]  after/before {ma/mb:.2f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
