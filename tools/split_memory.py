"""What a fit costs in memory beyond X: a 1,000,000 x 256 float32 X (0.95 GiB), one epoch, plain or with
early stopping (whose validation split should be row indices, not a copy). Prints the rise in this
process's peak RSS during the fit, the kernels loaded first.

    python tools/split_memory.py plain
    python tools/split_memory.py early
    python tools/split_memory.py early --rows 2000 --features 8     # seconds: that the tool runs, no measure
"""

import argparse
import resource


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["plain", "early"], help="fit without or with early stopping")
    p.add_argument("--rows", type=int, default=1_000_000, help="examples in X (default 1,000,000)")
    p.add_argument("--features", type=int, default=256, help="features per example (default 256)")
    args = p.parse_args(argv)
    if args.rows < 2 or args.features < 1:
        p.error("--rows must be at least 2 and --features at least 1")
    import numpy as np

    import fastdnn

    rng = np.random.default_rng(0)
    X = np.empty((args.rows, args.features), np.float32)
    for i in range(0, X.shape[0], 10_000):  # in pieces: a draw of the whole X would be a second X
        X[i:i + 10_000] = rng.standard_normal((min(10_000, X.shape[0] - i), args.features), dtype=np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    # Compiled (or loaded) outside the measured fit.
    fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X[:1000], y[:1000])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    early = args.mode == "early"
    fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0, early_stopping=early).fit(X, y)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{args.mode}: X {X.nbytes / 2**30:.2f} GiB; fit added {(peak - base) / 2**20:.3f} GiB to the peak RSS")


if __name__ == "__main__":
    main()
