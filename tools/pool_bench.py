"""One training step on one thread pool (``kernels.pool.train_pool``) beside today's loop and a Numba-prange pool.

    python tools/pool_bench.py --workloads small,medium,medium64,wide --threads 1,2 --rounds 7

Configurations, each at every thread count T of --threads:
    train              ``network.train``: serial element-wise passes, BLAS with T threads (today's step)
    pool               ``pool.train_pool``: T workers (this thread and T - 1 Python threads in one
                       compiled nogil loop, two spun barriers a step), BLAS single-threaded inside
    prange-omp,        the same per-block passes (``pool.rows_block``, ``pool.units_block``) launched
    prange-workqueue   by two ``prange`` loops a step under that Numba threading layer, BLAS 1 thread

Each run of one configuration is a fresh process (this script with --worker) that compiles or loads its
kernels, then picks N so that one call of N steps lasts about --target-seconds and times --repeats calls:
ms/step = call time / N, its median. Rounds run every configuration once each, in an order rotated
every round, so that a change in the machine's load falls on all of them; the table gives, per
configuration, the median over rounds and their range (min-max). Every step is a full-batch step on m
rows (the workload's batch): ReLU hidden layers, sigmoid + cross-entropy, plain gradient descent, the
workloads of tools/compare.py.

--busy N keeps N other processes spinning through the rounds (a loaded machine, as when other jobs
share the cores). --cold times first calls instead: each in a fresh process with an empty Numba cache, network.train's,
train_pool's, and train_pool's after network.train's (what a first run compiles when the engine has
both), one step each; --rounds of each.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# name: (layer sizes, rows a step, dtype)
WORKLOADS = {
    "small": ((64, 32, 32, 1), 64, "float32"),
    "small16": ((64, 32, 32, 1), 16, "float32"),
    "small32": ((64, 32, 32, 1), 32, "float32"),
    "small128": ((64, 32, 32, 1), 128, "float32"),
    "medium": ((784, 256, 256, 1), 256, "float32"),
    "medium64": ((784, 256, 256, 1), 256, "float64"),
    "medium-b16": ((784, 256, 256, 1), 16, "float32"),
    "medium-b64": ((784, 256, 256, 1), 64, "float32"),
    "medium-b128": ((784, 256, 256, 1), 128, "float32"),
    "wide": ((1024, 2048, 2048, 1), 1024, "float32"),
    "tiny": ((8, 4, 1), 16, "float64"),
}
CONFIGS = ("train", "pool", "prange-omp", "prange-workqueue")


def _prange_driver():
    """The pool's passes under prange, for one option set (the codes are module constants: a prange body
    is outlined into a function of its own, where an argument would no longer be a compile-time constant)."""
    from numba import njit, prange

    from fastdnn.kernels import layers as K
    from fastdnn.kernels import pool

    hidden, output, opt = K.ACT_RELU, K.OUT_SIGMOID_XENT, K.OPT_GD

    @njit(parallel=True, cache=True)
    def train_prange(X, Y, theta, dims, first_layer, lr, steps, work, shared):
        _, _, A, dZ, grad = work
        sync, parts, dbp = shared
        T = parts.shape[0]
        S = dbp.shape[0] // T
        mb = X.shape[0]
        dt = theta.dtype.type
        one = dt(1)
        for step in range(1, steps + 1):
            for t in prange(T):
                r0, r1 = t * mb // T, (t + 1) * mb // T
                parts[t, 0] = pool.rows_block(X, Y, r0, r1, theta, dims, hidden, output, first_layer, A, dZ,
                                              dbp[t * S : (t + 1) * S], None)
            cost = 0.0
            for b in range(T):
                cost += parts[b, 0] * (((b + 1) * mb // T - b * mb // T) / mb)
            for t in prange(T):
                bad, _ = pool.units_block(t, T, X, theta, dims, first_layer, opt, dt(lr), one, one, one, step, None,
                                          theta[:0], A, dZ, grad, dbp, 0.0, float(mb))
                sync[pool.BAD + 8 * t] = bad
        return cost

    return train_prange


def worker(spec):
    """ms per step of one configuration: {"ms": median, "n": steps a call}; with spec["cold"], the
    seconds of each first call in spec["cold"] (its kernels compiled into an empty cache)."""
    config, T = spec["config"], spec["threads"]
    if config.startswith("prange-"):
        os.environ["NUMBA_THREADING_LAYER"] = config.split("-", 1)[1]
    import numpy as np
    from threadpoolctl import threadpool_limits

    from fastdnn.kernels import compiled
    from fastdnn.kernels import layers as K
    from fastdnn.kernels import network as N
    from fastdnn.kernels import pool

    dims, m, dtype = WORKLOADS[spec["workload"]]
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    d = np.asarray(dims, np.int64)
    theta = np.concatenate([np.concatenate([rng.standard_normal(d[i + 1] * d[i]) * np.sqrt(2 / d[i]),
                                            np.zeros(d[i + 1])]) for i in range(len(d) - 1)]).astype(dtype)
    X = rng.standard_normal((m, d[0])).astype(dtype)
    Y = (rng.random((m, d[-1])) < 0.5).astype(dtype)
    A = np.empty(m * int(d[1:].sum()), dtype)
    work = N.Workspace(np.empty((0, d[0]), dtype), np.empty((0, d[-1]), dtype), A, np.empty_like(A),
                       np.empty_like(theta))
    state = np.zeros(0, dtype)
    hyper = N.Hyper(0.001, 0.9, 0.999, 1e-8)
    codes = (K.ACT_RELU, K.OUT_SIGMOID_XENT, 0, K.OPT_GD)

    if config == "train":
        def run(n):
            call = (X, Y, theta, d, *codes, hyper, None, state, 0, None, m, n, np.zeros(n), work)
            compiled(N.train, call, "train")(*call)
    elif config == "pool":
        def run(n):
            pool.train_pool(X, Y, theta, d, *codes, hyper, None, state, 0, None, m, n, np.zeros(n), work, None, T)
    else:
        import numba

        numba.set_num_threads(T)
        driver = _prange_driver()

        def run(n):
            driver(X, Y, theta, d, 0, hyper.learning_rate, n, work, pool.shared_buffers(T, d, dtype))

    if "cold" in spec:
        first = {}
        with threadpool_limits(1, user_api="blas"):
            for name in spec["cold"]:
                t0 = time.perf_counter()
                if name == "train":
                    call = (X, Y, theta, d, *codes, hyper, None, state, 0, None, m, 1, np.zeros(1), work)
                    compiled(N.train, call, "train")(*call)
                else:
                    pool.train_pool(X, Y, theta, d, *codes, hyper, None, state, 0, None, m, 1, np.zeros(1), work, None, T)
                first[name] = time.perf_counter() - t0
        return first
    with threadpool_limits(T if config == "train" else 1, user_api="blas"):
        run(1)
        n, seconds = 1, 0.0
        while True:
            t0 = time.perf_counter()
            run(n)
            seconds = time.perf_counter() - t0
            if seconds >= spec["target_seconds"] or n >= 100000:
                break
            n = max(n + 1, int(n * min(10.0, 1.2 * spec["target_seconds"] / max(seconds, 1e-9))))
        times = []
        for _ in range(spec["repeats"]):
            t0 = time.perf_counter()
            run(n)
            times.append((time.perf_counter() - t0) / n * 1e3)
    return {"ms": float(np.median(times)), "n": n}


def _run_worker(spec):
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{spec} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cold(args):
    import tempfile

    import numpy as np

    print(f"{'workload':<10} {'first calls, empty cache':<26} {'seconds (median, range over rounds)':>40}")
    for w in args.workloads.split(","):
        for order in (["train"], ["pool"], ["train", "pool"]):
            seconds = {name: [] for name in order}
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as cache:
                    os.environ["NUMBA_CACHE_DIR"] = cache
                    got = _run_worker({"workload": w, "config": "pool", "threads": 2, "cold": order})
                for name in order:
                    seconds[name].append(got[name])
            for i, name in enumerate(order):
                label = name if len(order) == 1 else f"{name} after {order[0]}" if i else f"{name}, then {order[1]}"
                v = seconds[name]
                print(f"{w:<10} {label:<26} {np.median(v):>20.2f} ({min(v):.2f}-{max(v):.2f})")
    os.environ.pop("NUMBA_CACHE_DIR", None)


def _rounds(args, specs, results):
    for r in range(args.rounds):
        order = list(range(len(specs)))
        order = order[r % len(order):] + order[: r % len(order)]
        for i in order:
            results[i].append(_run_worker(specs[i])["ms"])
            print(f"round {r + 1}: {specs[i]['workload']} {specs[i]['config']} T={specs[i]['threads']} "
                  f"{results[i][-1]:.4f} ms", file=sys.stderr, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default="small,medium,medium64,wide",
                        help=f"comma-separated, of {', '.join(WORKLOADS)} (default small,medium,medium64,wide)")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {', '.join(CONFIGS)}")
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of every configuration (default 7)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls in one process (default 5)")
    parser.add_argument("--target-seconds", type=float, default=0.2, help="length of one timed call (default 0.2)")
    parser.add_argument("--busy", type=int, default=0,
                        help="keep this many other processes spinning meanwhile (a loaded machine; default 0)")
    parser.add_argument("--json", help="also write every round's numbers here")
    parser.add_argument("--cold", action="store_true",
                        help="instead, time first calls compiling into an empty cache, each in a fresh process: "
                             "network.train alone, train_pool alone, and train_pool after network.train")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.cold:
        _cold(args)
        return
    specs = [{"workload": w, "config": c, "threads": int(t), "repeats": args.repeats,
              "target_seconds": args.target_seconds}
             for w in args.workloads.split(",") for t in args.threads.split(",") for c in args.configs.split(",")]
    results = {i: [] for i in range(len(specs))}
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        _rounds(args, specs, results)
    finally:
        for process in busy:
            process.kill()
            process.wait()
    import numpy as np

    print(f"{'workload':<10} {'config':<17} {'T':>2} {'median ms/step':>15} {'range':>21} {'/ train T=1':>12}")
    medians = [float(np.median(results[i])) for i in range(len(specs))]
    base = {s["workload"]: medians[i] for i, s in enumerate(specs) if s["config"] == "train" and s["threads"] == 1}
    for i, spec in enumerate(specs):
        ratio = f"{medians[i] / base[spec['workload']]:.2f}" if spec["workload"] in base else "-"
        print(f"{spec['workload']:<10} {spec['config']:<17} {spec['threads']:>2} {medians[i]:>15.4f} "
              f"{min(results[i]):>10.4f}-{max(results[i]):<10.4f} {ratio:>12}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{**s, "ms": results[i]} for i, s in enumerate(specs)], f, indent=1)


if __name__ == "__main__":
    main()
