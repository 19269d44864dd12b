"""Cold start: import fastdnn and train once in a fresh process, with Numba's disk cache warm or empty.

What a user waits for before the first result: importing fastdnn (numpy is
imported in the untimed setup; SciPy, Numba and the kernels are not) and a first
10-iteration run of the "small" workload through ``fastdnn.bench.fastdnn_runner``,
in float64 and in float32 (each dtype compiles its own kernels), which is all
compile or cache load: the steps take microseconds (its data, a 64 x 64 array,
take microseconds too). Each sample is a fresh interpreter (asv's
``timeraw_``), timed from before ``import fastdnn`` to the end of the fit.

* warm: NUMBA_CACHE_DIR points at a private folder that an earlier process
  (run in the setup) filled by doing the same fit: every kernel loads from disk.
* cold: NUMBA_CACHE_DIR points at a new empty folder: every kernel compiles.

Private folders keep the measurement independent of the repository's own cache
and leave it untouched; they are deleted when the timed process exits.
"""

import textwrap

try:
    from . import common
except ImportError:  # imported as a top-level module, with asv_benchmarks/ itself on sys.path
    import common

_WORKLOAD = "small"
_DIMS, _, _, _, _GRAM = common.WORKLOADS[_WORKLOAD]

# Loaded before the clock starts.
_SETUP = """
import numpy
"""

# What is timed (DTYPE is the benchmark's parameter).
_FIT = f"""
from threadpoolctl import threadpool_limits
from fastdnn import bench
from fastdnn.workloads import workload_data
X, Y, _ = workload_data({_WORKLOAD!r})
run, _ = bench.fastdnn_runner(X.astype(DTYPE), Y.astype(DTYPE), {_DIMS!r}, DTYPE, {_GRAM!r})
with threadpool_limits({common.THREADS}, user_api="blas"):
    run(10)
"""

# A private, empty Numba cache folder for the timed process (and its children).
_EMPTY_CACHE = """
import atexit, os, shutil, subprocess, sys, tempfile
cache = tempfile.mkdtemp(prefix="fastdnn-asv-numba-")
atexit.register(shutil.rmtree, cache, True)
os.environ["NUMBA_CACHE_DIR"] = cache
"""


def _fit(dtype):
    return (_FIT.replace("DTYPE", repr(dtype))).strip()


def _warm_the_cache(dtype):
    # Fills that folder by doing the same fit in a separate process first. The child's code
    # is passed as a list of lines: asv pastes this setup into a triple-quoted string, where
    # a backslash escape would be interpreted.
    lines = (_SETUP + _fit(dtype)).strip().splitlines()
    return f"""
subprocess.run([sys.executable, "-c", chr(10).join({lines!r})], check=True)
"""


class ColdStart:
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0
    params = ["float64", "float32"]
    param_names = ["dtype"]

    def timeraw_import_and_first_fit_cache_warm(self, dtype):
        return textwrap.dedent(_fit(dtype)), textwrap.dedent(_EMPTY_CACHE + _warm_the_cache(dtype) + _SETUP)

    def timeraw_import_and_first_fit_cache_empty(self, dtype):
        return textwrap.dedent(_fit(dtype)), textwrap.dedent(_EMPTY_CACHE + _SETUP)
