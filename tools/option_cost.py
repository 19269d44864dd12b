"""What an option adds to a training step: the same minibatch run with and without it, side by side.

    python tools/option_cost.py --variants plain,weighted,dropout --threads 1,2 --rounds 7
    python tools/option_cost.py --variants plain,weighted --layers 64,32,32,1 --batch 64 --rounds 1   # seconds

Variants (each a ``fastdnn.model`` run of shuffled minibatches on the same data, gd):
    plain      no option
    weighted   sample_weight= random integer weights 1..3 (a weighted mean cost and gradients)
    dropout    keep_prob=0.8 on every hidden layer (inverted dropout, masks hashed in the fused passes)

Each run of one variant is a fresh process (this script with --worker) that compiles or loads its
kernels, then times ``--repeats`` pairs of calls of 1 and 1 + E epochs of m = batch x --batches rows:
ms per step = (time(1 + E) - time(1)) / (E x --batches), which leaves out each call's fixed costs
(input checks, conversion, initialisation), the median of the pairs. Rounds run every variant at every
thread count once each, in an order rotated every round, so that the machine's load falls on all of
them alike; the table gives the median over rounds, their range, and each variant's ratio to ``plain``
at the same thread count (median of the per-round ratios). Thread counts are fastdnn's ``threads=``
cap (the step's pool, or BLAS, as the thread policy picks: ``fastdnn/threads.py``). OPENBLAS_CORETYPE
is left as the environment has it (unset it in the command to time the machine's own kernels).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

VARIANTS = ("plain", "weighted", "dropout")


def worker(args):
    import numpy as np

    import fastdnn

    dims = [int(d) for d in args.layers.split(",")]
    m = args.batch * args.batches
    rng = np.random.default_rng(0)
    X = rng.standard_normal((dims[0], m)).astype(args.dtype)
    Y = (rng.random((1, m)) < 0.5).astype(args.dtype)
    extra = {}
    if args.worker == "weighted":
        extra["sample_weight"] = rng.integers(1, 4, m).astype(float)
    elif args.worker == "dropout":
        extra["keep_prob"] = 0.8

    def run(epochs):
        fastdnn.model(X, Y, dims, num_epochs=epochs, mini_batch_size=args.batch, learning_rate=1e-4,
                      dtype=args.dtype, threads=args.thread_count, gram=False, **extra)

    run(1)  # compile or load
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        run(1)
        t1 = time.perf_counter()
        run(1 + args.epochs)
        t2 = time.perf_counter()
        times.append(((t2 - t1) - (t1 - t0)) / (args.epochs * args.batches) * 1e3)
    print(json.dumps({"ms": statistics.median(times)}))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--variants", default="plain,weighted", help="comma-separated, of " + ", ".join(VARIANTS))
    p.add_argument("--layers", default="784,256,256,1", help="layer sizes (default: the medium workload)")
    p.add_argument("--batch", type=int, default=256, help="rows a step (default 256)")
    p.add_argument("--batches", type=int, default=8, help="steps an epoch (default 8)")
    p.add_argument("--epochs", type=int, default=10, help="E, the timed call's extra epochs (default 10)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", default="1,2", help="comma-separated thread caps (default 1,2)")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--repeats", type=int, default=3, help="timed pairs in one process (default 3)")
    p.add_argument("--json", help="also write every round's numbers here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--thread-count", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args)
    variants = [v for v in args.variants.split(",") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    threads = [int(t) for t in args.threads.split(",")]
    configs = [(v, t) for t in threads for v in variants]
    passed = ["--layers", args.layers, "--batch", str(args.batch), "--batches", str(args.batches), "--epochs",
              str(args.epochs), "--dtype", args.dtype, "--repeats", str(args.repeats)]
    rounds = {c: [] for c in configs}
    for r in range(args.rounds):
        for variant, t in configs[r % len(configs):] + configs[: r % len(configs)]:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", variant, "--thread-count",
                                  str(t), *passed], capture_output=True, text=True, check=True)
            rounds[(variant, t)].append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
    print(f"{args.layers} batch {args.batch} {args.dtype}; {args.rounds} rounds; ms per step: median [range], "
          "ratio to plain at the same threads (median of the rounds' ratios)")
    for variant, t in configs:
        ms = rounds[(variant, t)]
        base = rounds.get(("plain", t))
        ratio = statistics.median(a / b for a, b in zip(ms, base)) if base else float("nan")
        print(f"  {variant:<10} threads {t}  {statistics.median(ms):8.4f} [{min(ms):.4f}-{max(ms):.4f}]  {ratio:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{v}/{t}": ms for (v, t), ms in rounds.items()}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
