"""Workloads, data and thread settings shared by the suite.

The workload table matches tools/compare.py's (the suite stays importable on
its own, so it keeps its own copy); the iteration counts are this suite's, small
enough that one training run stays under about 2 s on a 2-core machine.
"""

import functools

import numpy as np

THREADS = 2

# name: (layer sizes, m = examples per step, dtype, iterations per timed run, fastdnn's gram option)
# The seed is the course's full-batch problem: "seed" runs it as users get it
# (gram="auto"), "seed-direct" with the direct formulation. The others stand in
# for minibatch steps of their batch size (full batch of m = batch), direct.
WORKLOADS = {
    "seed": ([12288, 20, 7, 5, 1], 209, np.float64, 20, "auto"),
    "seed-direct": ([12288, 20, 7, 5, 1], 209, np.float64, 20, False),
    "medium": ([784, 256, 256, 1], 256, np.float32, 50, False),
    "wide": ([1024, 2048, 2048, 1], 1024, np.float32, 3, False),
    "small": ([64, 32, 32, 1], 64, np.float32, 2000, False),
    "tiny": ([16, 8, 1], 32, np.float32, 5000, False),
    # More than one output unit: a softmax over that many classes (one-hot targets).
    "mnist": ([784, 128, 64, 10], 128, np.float32, 200, False),
}
SHAPES = ["seed", "medium", "wide", "small"]

_limiter = None


def limit_threads():
    """BLAS (numpy's and SciPy's OpenBLAS) and Numba at THREADS threads, for the whole benchmark process."""
    global _limiter
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  load SciPy's BLAS so threadpoolctl reaches it
    from threadpoolctl import threadpool_limits

    if _limiter is None:
        _limiter = threadpool_limits(limits=THREADS, user_api="blas")
    numba.set_num_threads(THREADS)


@functools.cache
def data(name):
    """(Xs (m, n0) C-contiguous, Ys (m, 1) or one-hot (m, K)) in the workload's dtype, the same on every run.

    The seed gets uniform "pixels" in [0, 1] (the cat set's shape and range,
    no download needed), the others Gaussian inputs; labels are random 0/1.
    The course's layout is the transpose: X = Xs.T (a view), Y = Ys.T.
    """
    dims, m, dtype, _, _ = WORKLOADS[name]
    rng = np.random.default_rng(0)
    if name.startswith("seed"):
        Xs = rng.integers(0, 256, size=(m, dims[0])).astype(dtype) / dtype(255)
    else:
        Xs = rng.standard_normal((m, dims[0])).astype(dtype)
    K = dims[-1]
    if K > 1:
        Ys = np.eye(K, dtype=dtype)[rng.integers(0, K, size=m)]
    else:
        Ys = rng.integers(0, 2, size=(m, 1)).astype(dtype)
    return Xs, Ys
