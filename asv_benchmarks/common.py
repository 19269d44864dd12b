"""Workloads, data and thread settings shared by the suite.

The workloads are ``fastdnn.workloads.WORKLOADS``, the one table that tools/compare.py
and ``fastdnn.bench`` use too, and their data come from ``workload_data`` (the seed's
from the cat file when ``$FASTDNN_CAT_DATA`` or ../shared/data/catvnoncat holds it, else
synthetic pixels of its shape: the timings do not depend on which). What is this
suite's own is how many iterations a timed run trains: few enough that one training
run stays under about 2 s on a 2-core machine.
"""

import functools

import numpy as np

from fastdnn import bench
from fastdnn.workloads import WORKLOADS as TABLE
from fastdnn.workloads import workload_data

THREADS = 2

# Iterations per timed training run (training.py); every workload of the table needs one.
ITERATIONS = {"seed": 20, "seed-direct": 20, "medium": 50, "wide": 3, "small": 2000, "tiny": 5000, "mnist": 200}

# name: (layer sizes, m = examples per step, dtype as a numpy scalar type, iterations per timed run,
# fastdnn's gram option): the table's entries in the form the suite's modules unpack.
WORKLOADS = {name: (list(w.dims), w.m, np.dtype(w.dtype).type, ITERATIONS[name], w.gram) for name, w in TABLE.items()}

SHAPES = ["seed", "medium", "wide", "small", "tiny", "mnist"]

_limiter = None


def limit_threads():
    """BLAS (numpy's and SciPy's OpenBLAS) and Numba at THREADS threads, for the whole benchmark process."""
    global _limiter
    if _limiter is None:
        _limiter, _ = bench.limit_threads(THREADS)


@functools.cache
def data(name):
    """(Xs (m, n0) C-contiguous, Ys (m, 1) or one-hot (m, K)) in the workload's dtype, the same on every run.

    The course's layout is the transpose: X = Xs.T (a view), Y = Ys.T.
    """
    X, Y, _ = workload_data(name)
    return np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
