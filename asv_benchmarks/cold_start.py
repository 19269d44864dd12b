"""Cold start: import fastdnn and train once in a fresh process, with Numba's disk cache warm or empty.

What a user waits for before the first result: importing fastdnn (numpy is
imported in the untimed setup; SciPy, Numba and the kernels are not) and a first
10-iteration run of the "small" workload through ``fastdnn.bench.fastdnn_runner``,
which is all compile or cache load: the steps take microseconds (its data, a
64 x 64 array, take microseconds too). Each sample is a fresh interpreter (asv's
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
_DIMS, _, _DTYPE, _, _GRAM = common.WORKLOADS[_WORKLOAD]

# Loaded before the clock starts.
_SETUP = """
import numpy
"""

# What is timed.
_FIT = f"""
from threadpoolctl import threadpool_limits
from fastdnn import bench
from fastdnn.workloads import workload_data
X, Y, _ = workload_data({_WORKLOAD!r})
run, _ = bench.fastdnn_runner(X, Y, {_DIMS!r}, {_DTYPE.__name__!r}, {_GRAM!r})
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

# Fills that folder by doing the same fit in a separate process first. The
# child's code is passed as a list of lines: asv pastes this setup into a
# triple-quoted string, where a backslash escape would be interpreted.
_WARM_THE_CACHE = f"""
subprocess.run([sys.executable, "-c", chr(10).join({(_SETUP + _FIT).strip().splitlines()!r})], check=True)
"""


class ColdStart:
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0

    def timeraw_import_and_first_fit_cache_warm(self):
        return textwrap.dedent(_FIT), textwrap.dedent(_EMPTY_CACHE + _WARM_THE_CACHE + _SETUP)

    def timeraw_import_and_first_fit_cache_empty(self):
        return textwrap.dedent(_FIT), textwrap.dedent(_EMPTY_CACHE + _SETUP)
