"""What a fit costs in memory beyond X: a 1,000,000 x 256 float32 X (0.95 GiB), one epoch, plain or with
early stopping (whose validation split should be row indices, not a copy). Prints the rise in this
process's peak RSS during the fit, the kernels loaded first.

    python tools/split_memory.py plain
    python tools/split_memory.py early
"""
import resource, sys, numpy as np, fastdnn
early = sys.argv[1] == "early"
rng = np.random.default_rng(0)
X = np.empty((1_000_000, 256), np.float32)
for i in range(0, X.shape[0], 10_000):
    X[i:i + 10_000] = rng.standard_normal((10_000, 256), dtype=np.float32)
y = (X[:, 0] > 0).astype(np.int64)
fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X[:1000], y[:1000])  # compile/load outside
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0, early_stopping=early).fit(X, y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{sys.argv[1]}: X {X.nbytes / 2**30:.2f} GiB; fit added {(peak - base) / 2**20:.3f} GiB to the peak RSS")
