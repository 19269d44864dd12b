"""How fastdnn shares the CPU: the one thread policy, for the step's own pool and for BLAS.

How many threads a training step uses (``training_threads``; ``fastdnn.model``,
``L_layer_model``, the estimators, ``fastdnn train``, the sweeps and each MPI
rank all ask it): one thread per ``FLOPS_PER_THREAD`` of a step's GEMM FLOPs,
at least one, at most the cap: the user's ``threads`` (capped in turn at the
usable cores, with a warning) or, with ``threads=None`` (the default), the
usable cores divided among the MPI ranks that share them. It depends on the
step and the cap alone, so that a run repeats bit for bit on a machine. (The
cap is a cap, as OpenBLAS's own thread count always was: OpenBLAS runs a small
product on one thread whatever it is allowed.)

Who runs those threads (``split_threads``): where the route trains batches of
rows in memory or streamed (``routes.Direct``, ``routes.Streamed`` with
minibatches), the whole step runs on a pool of that many workers
(``kernels.pool.train_pool``: each owns a block of the batch's rows and of
every layer's units, for the products and the element-wise passes alike) with
BLAS single-threaded inside, so only one pool ever spins. Elsewhere (full
batch streamed from disk, the Gram route, the distributed step, and steps above
``POOL_MAX_FLOPS``, whose element-wise passes are a sliver of them) the
element-wise kernels are serial and BLAS gets the threads. Numba's threading layers beside
BLAS were slower still (kernels/pool.py says what was measured).

``blas_threads`` applies a count for the duration of a block with
threadpoolctl, which reaches SciPy's bundled OpenBLAS (the variables such as
``OPENBLAS_NUM_THREADS`` only act before BLAS loads).
"""

import contextlib
import os
import warnings

from fastdnn.validation import check_positive

# One thread per this many GEMM FLOPs of a training step. Measured side by side on this project's
# 2-core machine (AMD EPYC, each configuration in its own process, medians, ms per step, 1 thread vs 2;
# `loaded` = a busy loop on one core). With BLAS threads (serial element-wise passes, 2026-11):
#   GEMM MFLOP/step   quiet 1 / 2 threads     loaded 1 / 2 threads
#   0.018 [16,8,1]    0.0045 / 0.0048         0.0042 / 0.0042
#   0.93 [64,32,32,1] 0.033 / 0.032           0.030 / 0.031
#   16 [200,64,32,1]  0.27 / 0.21             0.27 / 0.66
#   17 digits-like    0.32 / 0.25             0.32 / 0.74
#   206 cat, direct   8.0 / 5.1               8.5 / 12.9
#   307 [784,256,256] 4.0 / 2.7               4.3 / 9.4
#   5372 [1024,1024,1024,1] 59 / 38           57 / 88
# and with the step's own pool (tools/pool_bench.py --configs train,pool, 5 rounds, Zen 4, 2026-12;
# "train" is BLAS's threads, "pool" the step's pool, 1 / 2 threads, quiet):
#   0.002 [8,4,1] b16         train 0.0019 / 0.0016   pool 0.0021 / 0.0036
#   0.92 [64,32,32,1] b64     train 0.028 / 0.028     pool 0.027 / 0.032
#   1.8 same, b128            train 0.055 / 0.051     pool 0.050 / 0.054
#   19 [784,256,256,1] b16    train 0.55 / 0.44       pool 0.56 / 0.51
#   77 same, b64              train 1.21 / 0.88       pool 1.26 / 0.96
#   154 same, b128            train 2.14 / 1.26       pool 2.17 / 1.53
#   307 same, b256            train 4.04 / 2.67       pool 4.21 / 2.68
#   307 same, b256, float64   train 8.08 / 4.50       pool 8.12 / 4.90
# Below ~20 MFLOP a second thread gains nothing or loses (a barrier or a BLAS wake-up costs more than
# half the work saves), and where other processes share the cores it loses 2.4x (or 40x): one thread.
# From ~60 MFLOP on it gains 20-40%. A thread per 32 MFLOP keeps each thread's share of a step at
# about half a millisecond of one core's GEMM time, far above a barrier's microseconds; on 2 cores it
# is the earlier "two threads from 64 MFLOP" rule.
FLOPS_PER_THREAD = 32e6


def usable_cores():
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def step_flops(dims, m):
    """GEMM FLOPs of one training step on layer sizes ``dims`` with m examples: a dict.

    forward = 2 m sum_l n_l n_{l-1}  (Z_l = W_l A_{l-1})
    course  = 3 forward              (plus dW_l = dZ_l A_{l-1}^T and dA_{l-1} = W_l^T dZ_l per layer)
    useful  = course - 2 m n_1 n_0   (dA_0 feeds nothing; the fast path skips it, the course computes it)
    Element-wise work (bias, activations, cost, update) is not counted.
    """
    forward = 2 * m * sum(dims[l] * dims[l - 1] for l in range(1, len(dims)))
    course = 3 * forward
    return {"forward": forward, "course": course, "useful": course - 2 * m * dims[1] * dims[0]}


def rank_threads(threads, dims, batch, sharing):
    """``training_threads`` for one of ``sharing`` MPI ranks on this machine: with ``threads=None`` the
    usable cores are divided among them (they share them); a rank given ``threads`` keeps that cap."""
    if threads is None and sharing > 1:
        threads = max(1, usable_cores() // sharing)
    return training_threads(threads, dims, batch)


def training_threads(threads, dims, batch):
    """The threads for training layer sizes ``dims`` on ``batch`` examples a step: one per
    ``FLOPS_PER_THREAD`` of the step's GEMMs, at least 1, at most ``threads``.

    ``threads`` is the user's setting: None for every usable core, else a
    positive integer, capped at the usable cores with a RuntimeWarning.
    """
    cores = usable_cores()
    if threads is None:
        cap = cores
    else:
        cap = check_positive(threads, "threads", integer=True)
        if cap > cores:
            warnings.warn(
                f"threads={cap} is more than the {cores} usable cores; using {cores} "
                "(more threads than cores only wait for each other)",
                RuntimeWarning,
                stacklevel=3,
            )
            cap = cores
    return int(min(cap, max(1, step_flops(dims, batch)["useful"] // FLOPS_PER_THREAD)))


# Above this many GEMM FLOPs a step, its threads go to BLAS even where the route could run the pool. Measured
# with tools/compare.py on the 2-core machine (2 threads, ms per step, the pool beside BLAS's threads, 2026-12):
#   307 MFLOP  [784,256,256,1] b256   float32 3.04 / 3.02, float64 4.34 / 4.76: the pool at parity or ahead
#   34 GFLOP   [1024,2048,2048,1] b1024  float32 228 / 203: the pool 12% behind
# In a large step the element-wise passes are 1-2% of it, so the pool has little to gain, while T workers each
# calling a one-thread GEMM on their rows pack the whole weight matrix T times where BLAS's threads share one
# packing. The boundary between the two sizes is not measured; 4 GFLOP keeps medium-sized networks up to a few
# thousand rows a step on the pool.
POOL_MAX_FLOPS = 4e9


def split_threads(threads, pooled, flops=0.0):
    """(the step pool's workers, BLAS's threads) for a step of ``flops`` GEMM FLOPs on ``threads`` threads:
    all of them the pool's where the route runs its step on the pool (``pooled``) and the step is at most
    ``POOL_MAX_FLOPS``, BLAS then single-threaded; else BLAS's."""
    return (threads, 1) if pooled and threads > 1 and flops <= POOL_MAX_FLOPS else (1, threads)


@contextlib.contextmanager
def blas_threads(threads):
    """Limit every loaded BLAS to ``threads`` threads inside the block; None leaves them as they are."""
    if threads is None:
        yield
        return
    threads = check_positive(threads, "threads", integer=True)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield
