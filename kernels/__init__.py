"""Numba kernels for fastdnn, installed as ``fastdnn.kernels``.

    blas     ?gemm from SciPy's BLAS, callable from cached compiled code
    layers   fused element-wise passes (bias + activation, derivative + db, loss, update)
    network  whole-network forward/backward and the one-call training loop

Everything here assumes valid, C-contiguous input of one float dtype; the
checks live in ``fastdnn`` (``fastdnn/_validation.py``).

Kernels are compiled with ``cache=True``. Numba stores the cache beside this
package, or in its user-wide cache when the package folder is read-only, and
fails at import when neither is writable; ``_ensure_cache_dir`` points it at a
private temporary folder in that last case so fastdnn still imports (and warns
that every new process will compile again).
"""

import getpass
import os
import tempfile
import warnings

import numba


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def _ensure_cache_dir():
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__")
    user = os.path.join(os.path.expanduser("~"), ".cache", "numba")
    if _writable(here) or _writable(user):
        return
    fallback = os.path.join(tempfile.gettempdir(), f"fastdnn-numba-cache-{getpass.getuser()}")
    numba.config.CACHE_DIR = fallback
    warnings.warn(
        f"neither {here} nor {user} is writable; caching compiled kernels in {fallback}. "
        "Set NUMBA_CACHE_DIR to a persistent writable folder to avoid recompiling.",
        RuntimeWarning,
        stacklevel=2,
    )


_ensure_cache_dir()
