"""Numba kernels for fastdnn, installed as ``fastdnn.kernels``.

    blas     ?gemm from SciPy's BLAS, callable from cached compiled code
    layers   fused element-wise passes (bias + activation, derivative + db, loss, update)
    network  whole-network forward/backward and the one-call training loop

Everything here assumes valid, C-contiguous input of one float dtype; the
checks live in ``fastdnn`` (``fastdnn/_validation.py``).

Kernels are compiled with ``cache=True``, and two things about Numba's disk
cache are handled here:
- Numba stores it beside this package, or in its user-wide cache when the
  package folder is read-only, and fails at import when neither is writable;
  ``_ensure_cache_dir`` then points it at a private temporary folder.
- Numba invalidates a cached function only when *its own* source file changes:
  a function in network.py that inlined an older layers.py would be loaded
  stale. ``_drop_stale_cache`` stamps the cache with a hash of all three
  sources and clears this package's entries when the hash differs.
"""

import getpass
import hashlib
import os
import tempfile
import warnings

import numba

_HERE = os.path.dirname(os.path.abspath(__file__))
_MODULES = ("blas", "layers", "network")


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
    here = os.path.join(_HERE, "__pycache__")
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


def _drop_stale_cache(dispatchers):
    digest = hashlib.sha256()
    for name in _MODULES:
        with open(os.path.join(_HERE, name + ".py"), "rb") as f:
            digest.update(f.read())
    stamp_text = digest.hexdigest()
    for path in {d._cache._cache_path for d in dispatchers}:
        stamp = os.path.join(path, "fastdnn-kernels.sha256")
        try:
            with open(stamp) as f:
                if f.read() == stamp_text:
                    continue
        except OSError:
            pass
        try:
            for entry in os.listdir(path):
                if entry.split(".")[0] in _MODULES and entry.endswith((".nbi", ".nbc")):
                    os.remove(os.path.join(path, entry))
            with open(stamp, "w") as f:
                f.write(stamp_text)
        except OSError:
            pass  # an unwritable cache is never loaded from stale by us; Numba recompiles


_ensure_cache_dir()

from . import blas, layers, network  # noqa: E402  (after the cache folder is settled)

_drop_stale_cache(
    [obj for mod in (blas, layers, network) for obj in vars(mod).values() if hasattr(obj, "_cache") and hasattr(obj._cache, "_cache_path")]
)
