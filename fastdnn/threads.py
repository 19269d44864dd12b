"""How fastdnn shares the CPU between BLAS and its own kernels: the one thread policy.

The strategy: fastdnn's fused element-wise kernels are serial (``@njit``
without ``parallel=True``) and run between BLAS calls on the calling thread,
so all parallelism comes from BLAS and the two never spin at once. Measured on
this project's 2-core machine (AMD EPYC, 2026-11), Numba's OpenMP/workqueue layers
beside a 2-thread BLAS were 1.3-2.6x slower per step than serial kernels.

How many BLAS threads (``training_threads``, used by ``fastdnn.model``,
``L_layer_model``, ``DNNClassifier`` and ``fastdnn train`` alike):
- ``threads=None`` (the default) picks from the work in one step, and from
  nothing else, so that a run repeats bit for bit (float32 GEMMs round
  differently with 1 and 2 OpenBLAS threads): one thread when a step's GEMMs
  are under ``SMALL_STEP_FLOPS``, else every usable core. A second thread
  gains at most a third below it on a quiet machine, and when other
  processes share the cores it loses 2.4x, or 40x and more under heavier
  contention, because OpenBLAS's threads spin and wait for each other
  (measurements beside the constant). Above it the gain on a quiet machine
  is 1.5x and more; on a busy one, set ``threads=1``.
- an explicit count above the usable cores is capped at them, with a
  warning: more BLAS threads than cores only wait for each other.

``blas_threads`` applies a count for the duration of a block with
threadpoolctl, which reaches SciPy's bundled OpenBLAS (the variables such as
``OPENBLAS_NUM_THREADS`` only act before BLAS loads).
"""

import contextlib
import os
import warnings

from fastdnn.validation import check_positive

# Below this many GEMM FLOPs per training step, one BLAS thread. Measured side by side on this
# project's 2-core machine (AMD EPYC, OpenBLAS Haswell kernels; each configuration in its own
# process, medians of 5, ms per step, 1 thread vs 2; `loaded` = a busy loop on one core):
#   GEMM MFLOP/step   quiet 1 / 2 threads     loaded 1 / 2 threads
#   0.018 [16,8,1]    0.0045 / 0.0048         0.0042 / 0.0042
#   0.93 [64,32,32,1] 0.033 / 0.032           0.030 / 0.031
#   16 [200,64,32,1]  0.27 / 0.21             0.27 / 0.66
#   17 digits-like    0.32 / 0.25             0.32 / 0.74
#   206 cat, direct   8.0 / 5.1               8.5 / 12.9
#   307 [784,256,256] 4.0 / 2.7               4.3 / 9.4
#   5372 [1024,1024,1024,1] 59 / 38           57 / 88
# and the course's cat run through the Gram route (3.7 MFLOP a step, as step_flops counts it with
# the m x m Gram matrix as layer 1's input): 0.191 / 0.149 s per 2500 iterations, quiet. While
# other tests shared the cores, 2 threads took up to 14.6 ms a digits-like step against 0.33 ms.
# Up to 64 MFLOP a second thread gains 20-30% when the other core is free and loses 2.4x (or 40x)
# when it is not: one thread there. From ~200 MFLOP on it gains 36-56%: every core.
SMALL_STEP_FLOPS = 64e6


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
    """``training_threads`` for one of ``sharing`` MPI ranks on this machine: the policy's threads divided
    among them (they share its cores); a rank given ``threads`` keeps its own."""
    used = training_threads(threads, dims, batch)
    return max(1, used // sharing) if threads is None else used


def training_threads(threads, dims, batch):
    """The BLAS threads for training layer sizes ``dims`` on ``batch`` examples a step.

    ``threads`` is the user's setting: None for the policy above, else a
    positive integer, capped at the usable cores with a RuntimeWarning.
    """
    cores = usable_cores()
    if threads is None:
        return 1 if step_flops(dims, batch)["useful"] < SMALL_STEP_FLOPS else cores
    threads = check_positive(threads, "threads", integer=True)
    if threads > cores:
        warnings.warn(
            f"threads={threads} is more than the {cores} usable cores; using {cores} "
            "(more BLAS threads than cores only wait for each other)",
            RuntimeWarning,
            stacklevel=3,
        )
        return cores
    return threads


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
