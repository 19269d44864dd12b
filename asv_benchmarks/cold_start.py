"""Cold start: import fastdnn and train once in a fresh process, with Numba's disk cache warm or empty.

What a user waits for before the first result: importing fastdnn (numpy,
SciPy, Numba, the kernels) and a first ``L_layer_model`` on the small workload
(10 iterations, which is all compile or cache load: the steps take
microseconds). Each sample is a fresh interpreter (asv's ``timeraw_``), timed
from before ``import fastdnn`` to the end of the fit; numpy and the data are
loaded in the untimed setup.

* warm: NUMBA_CACHE_DIR points at a private folder that an earlier process
  (run in the setup) filled by doing the same fit: every kernel loads from disk.
* cold: NUMBA_CACHE_DIR points at a new empty folder: every kernel compiles.

Private folders keep the measurement independent of the repository's own cache
and leave it untouched; they are deleted when the timed process exits.
"""

import textwrap

# The data, made before the clock starts (numpy is imported here, untimed).
_DATA = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 64)).astype(np.float32)
Y = rng.integers(0, 2, size=(1, 64))
"""

# What is timed.
_FIT = """
import fastdnn
from threadpoolctl import threadpool_limits
with threadpool_limits(2, user_api="blas"):
    fastdnn.L_layer_model(X, Y, [64, 32, 32, 1], num_iterations=10)
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
subprocess.run([sys.executable, "-c", chr(10).join({(_DATA + _FIT).strip().splitlines()!r})], check=True)
"""


class ColdStart:
    timeout = 600
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0

    def timeraw_import_and_first_fit_cache_warm(self):
        return textwrap.dedent(_FIT), textwrap.dedent(_EMPTY_CACHE + _WARM_THE_CACHE + _DATA)

    def timeraw_import_and_first_fit_cache_empty(self):
        return textwrap.dedent(_FIT), textwrap.dedent(_EMPTY_CACHE + _DATA)
