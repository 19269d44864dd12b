"""Numba kernels for fastdnn, installed as ``fastdnn.kernels``.

    blas     ?gemm from SciPy's BLAS, callable from cached compiled code
    layers   fused element-wise passes (bias + activation, derivative + db, loss, update)
    network  whole-network forward/backward and the one-call training loop
    pool     the same training loop with every pass of a step split across a pool of threads
    masks    dropout's masks: each bit a hash of (seed, step, layer, row, unit)
    gram     the Gram route: full-batch training with layer 1 in the example space

Everything here assumes valid, C-contiguous input of one float dtype; the
checks live in ``fastdnn`` (``fastdnn/validation.py``).

Kernels are compiled with ``cache=True``, and two things about Numba's disk
cache are handled here:
- Numba stores it beside this package, or in its user-wide cache when the
  package folder is read-only, and fails at import when neither is writable;
  ``_ensure_cache_dir`` then points it at a private temporary folder.
- Numba invalidates a cached function only when *its own* source file changes:
  a function in network.py that inlined an older layers.py would be loaded
  stale. ``_drop_stale_cache`` stamps the cache with a hash of all of
  ``_MODULES``' sources and clears this package's entries when the hash differs.
"""

import contextlib
import functools
import hashlib
import inspect
import logging
import os
import stat
import tempfile
import time
import warnings

import numba

log = logging.getLogger("fastdnn")
_STAMP = None  # hash of the kernel sources, set at import
_CACHE_DIRS = []  # where Numba caches this package's kernels
# A compiled kernel leaves a marker beside Numba's cache files (holding the
# sources' hash), so a first compile can be announced before it starts: Numba
# itself only tells afterwards whether it loaded or compiled.
_MARK = "fastdnn-compiled-"

_HERE = os.path.dirname(os.path.abspath(__file__))
_MODULES = ("blas", "masks", "layers", "network", "gram", "pool")


def _writable(path):
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            return True
    except OSError:
        return False


def private_dir(path):
    """``path`` if it is a folder only this user can use: created with mode 0700, or already there, owned by
    this user, not a symlink and closed to everyone else; else None. Numba unpickles what its cache holds,
    so a cache another local user can write is a way to run their code in this process."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def fallback_cache_dir():
    """A private folder in the system's temporary directory: ``fastdnn-numba-cache-<uid>`` (kept between runs;
    the user id, not a name: a user without a passwd entry, common in containers, has one too), or a fresh
    private one when that name is taken by something that is not this user's private folder."""
    return (private_dir(os.path.join(tempfile.gettempdir(), f"fastdnn-numba-cache-{os.getuid()}"))
            or tempfile.mkdtemp(prefix="fastdnn-numba-cache-"))


def _ensure_cache_dir():
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = os.path.join(_HERE, "__pycache__")
    # Numba's user-wide cache, where it looks for it: $XDG_CACHE_HOME/numba, else ~/.cache/numba.
    user = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "numba")
    if _writable(here) or _writable(user):
        return
    fallback = fallback_cache_dir()
    numba.config.CACHE_DIR = fallback
    warnings.warn(
        f"neither {here} nor {user} is writable; caching compiled kernels in {fallback}. "
        "Set NUMBA_CACHE_DIR to a persistent writable folder to avoid recompiling.",
        RuntimeWarning,
        stacklevel=2,
    )


def _drop_stale_cache(dispatchers):
    global _STAMP
    digest = hashlib.sha256()
    for name in _MODULES:
        with open(os.path.join(_HERE, name + ".py"), "rb") as f:
            digest.update(f.read())
    stamp_text = _STAMP = digest.hexdigest()
    _CACHE_DIRS[:] = sorted({d._cache._cache_path for d in dispatchers})
    for path in _CACHE_DIRS:
        stamp = os.path.join(path, "fastdnn-kernels.sha256")
        try:
            with open(stamp) as f:
                if f.read() == stamp_text:
                    continue
        except OSError:
            pass
        try:
            for entry in os.listdir(path):
                if entry.split(".")[0] in _MODULES and entry.endswith((".nbi", ".nbc")) or entry.startswith(_MARK):
                    os.remove(os.path.join(path, entry))
            # Written whole, then renamed: a process reading it never sees half a stamp.
            fd, tmp = tempfile.mkstemp(dir=path, prefix=".fastdnn-kernels.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(stamp_text)
                os.replace(tmp, stamp)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # an unwritable cache is never loaded from stale by us; Numba recompiles


_ensure_cache_dir()

from . import blas, gram, layers, masks, network, pool  # noqa: E402  (after the cache folder is settled)

_drop_stale_cache(
    [obj for mod in (blas, masks, layers, network, gram, pool) for obj in vars(mod).values() if hasattr(obj, "_cache") and hasattr(obj._cache, "_cache_path")]
)


def _marker(kernel, signature):
    key = hashlib.sha256(f"{kernel.py_func.__qualname__}{signature}".encode()).hexdigest()[:16]
    return f"{_MARK}{kernel.py_func.__name__}-{key}"


def _compiled_on_disk(kernel, signature):
    name = _marker(kernel, signature)
    for path in _CACHE_DIRS:
        try:
            with open(os.path.join(path, name)) as f:
                if f.read() == _STAMP:
                    return True
        except OSError:
            pass
    return False


# Arguments that choose a kernel's code path (network.py's option codes):
# ``compiled`` types them as compile-time constants.
OPTION_CODES = ("hidden", "output", "opt", "apply_output")


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=None)
def _parameter_names(kernel):
    return tuple(inspect.signature(kernel.py_func).parameters)


def _signature(kernel, args):
    names = _parameter_names(kernel)
    return tuple(
        numba.types.literal(a if isinstance(a, bool) else int(a)) if name in OPTION_CODES else numba.typeof(a)
        for name, a in zip(names, args)
    )


def compiled(kernel, args, what):
    """``kernel`` compiled for ``args`` (or loaded from the disk cache): a callable taking ``args``.

    Arguments named in ``OPTION_CODES`` are typed as the constants they hold
    (Numba literals) and reach the kernels in ``layers`` that branch on them,
    overloads that compile one version per constant holding only its branch:
    a run compiles only its own activation, output and optimizer, and another
    option set compiles (once, then loads) its own. Call the result with the
    same codes only.

    A first compile, which takes seconds, is logged at INFO on the "fastdnn"
    logger before it starts and with its time after; ``what`` names it for the
    reader ("the training kernels for float32"). Once the kernel is in memory
    this is a dictionary lookup on the argument types. Trailing arguments left
    out of ``args`` are the kernel's defaults, which must be None.
    """
    missing = len(_parameter_names(kernel)) - len(args)
    if missing > 0:
        # Trailing parameters left out take their default, None (sample weights, say): compiled as None.
        pad = (None,) * missing
        entry = compiled(kernel, (*args, *pad), what)
        return lambda *given: entry(*given, *pad)
    signature = _signature(kernel, args)
    if signature not in kernel.overloads:
        _compile(kernel, signature, what)
    return kernel.overloads[signature].entry_point


def _compile(kernel, signature, what):
    with _compile_lock():
        if _compiled_on_disk(kernel, signature):
            kernel.compile(signature)  # a load from the disk cache
            seconds = 0.0
        else:
            log.info("compiling %s (first run only; cached on disk afterwards)...", what)
            start = time.perf_counter()
            kernel.compile(signature)
            seconds = time.perf_counter() - start
            log.info("compiled %s in %.1f s", what, seconds)
            for path in _CACHE_DIRS:
                try:
                    with open(os.path.join(path, _marker(kernel, signature)), "w") as f:
                        f.write(_STAMP)
                except OSError:
                    pass
        if signature not in kernel.overloads:
            # The disk cache gave another signature's code for this one (an index and its data
            # files out of step, as two processes saving at once without the lock could leave
            # them): forget this kernel's entries and compile afresh.
            log.warning("the disk cache of %s was inconsistent; recompiling it", kernel.py_func.__qualname__)
            kernel._cache.flush()
            kernel.compile(signature)
    return seconds


@contextlib.contextmanager
def _compile_lock():
    """Serialise compiles between processes sharing the cache folder (parallel runs, sweeps).

    Numba saves a cache entry as an index update and a data file, not atomically
    together: two processes saving entries of one kernel at once can pair an
    index entry with the other's data. Waiting for the lock, a process then
    loads what the other compiled. Where the folder is not writable or fcntl is
    missing (Windows), compiles go unserialised.
    """
    handle = None
    try:
        import fcntl

        handle = open(os.path.join(_CACHE_DIRS[0], "fastdnn-compile.lock"), "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
    except (ImportError, IndexError, OSError):
        if handle is not None:
            handle.close()
        handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # closing releases the lock
