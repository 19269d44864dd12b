"""The rules every writer and reader of files in fastdnn follows, in one place.

``atomic_write`` writes a file whole or not at all, with the permissions of
``new_file_mode``; ``OutputLock`` keeps two runs from writing one file and
removes what killed writes of it left; ``regular_file`` refuses what is not a
plain file before it is read; ``import_optional`` names the extra to install for
an optional dependency. Their errors are ``fastdnn.errors``'.
"""

import contextlib
import importlib
import os
import stat
import tempfile

from fastdnn.errors import DataError, FileInUseError, MissingDependencyError


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error (or interrupt) the temporary file is removed and ``path`` is
    untouched. A new file gets the permissions the umask allows (an existing
    one keeps its own), not mkstemp's owner-only 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."  # as the system resolves it ("sub/../x" needs sub), like the rename
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as exc:  # a full disk, a read-only folder: named as the file, not its hidden temporary
        raise OSError(exc.errno, f"{exc.strerror or exc}; {path} was not written (it is as it was)", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.filename is None:
            # A full disk or quota raises without a file name (from write or fsync): name the file it was for.
            raise OSError(exc.errno, f"{exc.strerror or exc}; {path} was not written (it is as it was)", path) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory is.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def new_file_mode(path):
    """The permissions a file written over ``path`` gets: an existing file's own, else what the umask allows
    (every writer renames a temporary file, which mkstemp makes owner-only 0600, so each sets this)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def regular_file(path):
    """os.stat of ``path``, which must be a regular file (a FIFO or device would block or never end)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise DataError(path, "is not a regular file (a folder, FIFO or device); give a data file")
    return st


def import_optional(module, extra, purpose):
    """``module`` imported, or MissingDependencyError saying ``pip install "fastdnn[extra]"``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependencyError(
            f"{purpose} needs {module.split('.')[0]}, which is not installed: pip install \"fastdnn[{extra}]\""
        ) from None


class OutputLock:
    """Held while a run may write ``path`` (and its checkpoint): a second fastdnn run given the same file is
    refused at its start (``FileInUseError``) instead of both reporting success with one model lost. An
    advisory lock (``fcntl.flock``) on a hidden ``.NAME.lock`` beside it, released when the process ends
    however it ends. Holding it, the hidden temporary files that killed writes of ``path`` left
    (``atomic_write``'s ``.NAME.*.tmp``) are removed: no other run is writing them."""

    def __init__(self, path, what="model"):
        self.path, self.what = os.path.abspath(path), what
        folder, name = os.path.split(self.path)
        self.lock_path = os.path.join(folder, f".{name}.lock")
        self.fd = None

    def __enter__(self):
        import fcntl  # POSIX only: imported where a lock is taken, so the module itself loads anywhere

        for _ in range(100):
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FileInUseError(self.path, f"another fastdnn run is writing this {self.what}; wait for it or "
                                                "choose another file") from None
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            # The lock file was removed (its holder finished) between our open and our lock: what we hold
            # locks nothing anyone else will open. Again, on the file at the path now.
            os.close(fd)
        else:
            raise FileInUseError(self.path, f"could not take the lock {self.lock_path}")
        self.fd = fd
        self._remove_own_leftovers()
        return self

    def _remove_own_leftovers(self):
        folder, name = os.path.split(self.path)
        prefix = f".{name}."
        for entry in os.listdir(folder):
            # Only this file's own leftovers: .NAME.<mkstemp's random letters>.tmp, never another file's
            # (.NAME.v2.npz.<random>.tmp belongs to NAME.v2.npz, which another run may be writing).
            middle = entry[len(prefix):-len(".tmp")]
            if entry.startswith(prefix) and entry.endswith(".tmp") and middle and "." not in middle:
                with contextlib.suppress(OSError):
                    os.remove(os.path.join(folder, entry))

    def __exit__(self, *exc):
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.remove(self.lock_path)
            os.close(self.fd)
            self.fd = None
