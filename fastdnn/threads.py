"""How fastdnn shares the CPU between BLAS and its own kernels.

The strategy: fastdnn's fused element-wise kernels are serial (``@njit``
without ``parallel=True``) and run between BLAS calls on the calling thread,
so all parallelism comes from BLAS and the two never spin at once. Measured on
this project's 2-core machine (DESIGN.md), Numba's OpenMP/workqueue layers
beside a 2-thread BLAS were 1.3-2.6x slower per step than serial kernels.

``threads=`` in the training functions sets the BLAS pool for the duration of
a call with threadpoolctl (which reaches SciPy's bundled OpenBLAS; numpy's
``OMP_NUM_THREADS``-style variables must be set before import to have effect).
"""

import contextlib

from fastdnn._validation import check_positive


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
