"""The files examples are read from, one reader per format: whole loads (``fastdnn.data.load_dataset``) and
streaming (``fastdnn.stream``) both open a file here and read its rows.

    .npy          one array (n_samples, ...) of numbers, read at row offsets (never
                  memory-mapped, so reading costs the rows read, not the file, in RSS);
                  its labels in a second .npy (by default ``<name>.labels.npy`` beside
                  it, as ``fastdnn convert`` writes them)
    .npz          arrays X (n_samples, ...) and y (n_samples,), never unpickled; X stored
                  uncompressed (``np.savez``) is read in place, its CRC-32 checked when it
                  is read whole (as zipfile would)
    .h5 .hdf5     the course's layout: ``train_set_x``/``train_set_y`` (or ``test_set_x``/
                  ``test_set_y``; plain ``X``/``y`` too), read by slices; integer features
                  scaled as the course does, ``x.reshape(m, -1) / 255`` in float64.
                  Needs h5py (``pip install "fastdnn[h5]"``).

An .npz X that cannot be read by rows in place (compressed by ``np.savez_compressed``, or stored in Fortran
order) is read whole and never streamed. ``open_file`` gives a file's rows (``n_rows``, ``n_features``,
``dtype``, ``read``, ``load``), its labels and what was read; every problem is a ``DataError`` naming the file.
"""

import contextlib
import math
import os
import tokenize
import zipfile
import zlib

import numpy as np

from fastdnn.errors import DataError
from fastdnn.files import import_optional, regular_file

# Raw bytes read at once when rows are converted, selected or checked: bounds the scratch memory.
PIECE_BYTES = 8 * 2**20
PAGE_BYTES = 4096
# Pieces of a file hashed to fingerprint it (with its size and header, and all of its labels).
FINGERPRINT_PIECES = 64
FINGERPRINT_PIECE_BYTES = 4096
SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")

HDF5_PAIRS = {
    "train": (("train_set_x", "train_set_y"), ("test_set_x", "test_set_y"), ("X", "y")),
    "test": (("test_set_x", "test_set_y"), ("train_set_x", "train_set_y"), ("X", "y")),
}
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


def first_line(exc):
    """An exception's message as one line (its first), or its type's name when it has none."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def labels_path_for(path):
    """The labels file beside the features file ``path``: ``big.npy`` -> ``big.labels.npy``."""
    return os.path.splitext(os.fspath(path))[0] + ".labels.npy"


def checked_labels(path, y, m, source):
    """The labels of ``path``'s m examples as a 1-D array of numbers (whole-valued floats as integers) or text."""
    y = np.asarray(y)
    if y.size != m:
        raise DataError(path, f"has {m} examples but {y.size} labels ({source})")
    y = y.reshape(m)
    if y.dtype.kind == "O" and all(isinstance(v, (bytes, str)) for v in y):
        # Variable-length strings, as h5py writes text labels by default: bytes or str objects.
        y = np.array([v.decode("utf-8") if isinstance(v, bytes) else v for v in y], dtype=np.str_)
    if y.dtype.kind == "S":
        y = np.char.decode(y, "utf-8")
    if y.dtype.kind not in "iubfU":
        raise DataError(path, f"the labels ({source}) must be numbers or text, got dtype {y.dtype}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise DataError(path, f"label of example {int(np.argmax(~np.isfinite(y)))} is not finite ({source})")
        if np.array_equal(y, np.round(y)):
            y = y.astype(np.int64)
    return y


def read_npy_header(f):
    """(shape, fortran_order, dtype) of the .npy array whose header starts at ``f``'s position, leaving ``f`` at
    its data; ValueError (one line) when it is not one. numpy parses the header as Python literal text, which
    fails in several exception types."""
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        return read(f)
    except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:
        raise ValueError(first_line(exc)) from None


# ---------------------------------------------------------------------------- rows of one file


class _Rows:
    """Rows of one file: ``read(start, stop, out)`` converts rows [start, stop) into ``out``; ``load(dtype)``
    reads them all.

    ``path``, ``n_rows``, ``n_features``, ``dtype`` (the file's), ``scale`` (1/255 for the course's integer
    pixels, else None), ``unstreamable`` (None, or why the rows can only be read whole). Subclasses open the
    file once a read (``_opened``, which checks it is still the file first opened) and read raw rows from that
    handle with ``_raw``.
    """

    scale = None
    unstreamable = None
    # Whether selected rows are read run by run (one read per run of consecutive rows) rather than as
    # their whole range: worth it where a read costs a system call, not a library call.
    scattered = False

    def read(self, start, stop, out, rows=None, check=True):
        """Rows [start, stop) of this file, or those of them in ``rows`` (sorted file row indices
        within [start, stop)), into out[:k] (converted to out's dtype); returns k. ``check``: refuse a
        value that is not finite (DataError naming its row and feature)."""
        row_bytes = self.n_features * self.dtype.itemsize
        piece = max(1, PIECE_BYTES // row_bytes)
        direct = rows is None and self.dtype == out.dtype and self.scale is None
        with self._opened() as handle:
            if rows is not None and self.scattered and row_bytes >= PAGE_BYTES:
                # Rows of a page or more: reading only the selected runs reads only their pages. (Smaller
                # rows share pages with their neighbours, which the system reads anyway.)
                return self._read_runs(handle, rows, out, check, piece)
            return self._read_pieces(handle, start, stop, out, rows, check, piece, direct)

    def load(self, dtype):
        """All the rows, (n_rows, n_features) of ``dtype``, checked finite: one array, nothing else held."""
        out = np.empty((self.n_rows, self.n_features), dtype)
        self.read(0, self.n_rows, out)
        return out

    def _read_runs(self, handle, rows, out, check, piece):
        same = self.dtype == out.dtype and self.scale is None
        scratch = None if same else np.empty((min(piece, rows.size), self.n_features), self.dtype)
        for k in range(0, rows.size, piece):
            chosen = rows[k : k + piece]
            raw = out[k : k + chosen.size] if same else scratch[: chosen.size]
            cuts = np.flatnonzero(np.diff(chosen) != 1) + 1
            for a, b in zip(np.r_[0, cuts].tolist(), np.r_[cuts, chosen.size].tolist()):
                self._raw(handle, int(chosen[a]), int(chosen[a]) + b - a, raw[a:b])
            dest = out[k : k + chosen.size]
            if self.scale is not None:
                np.divide(raw, 255.0, out=dest)  # the course's x / 255, in float64, with no temporary
            elif not same:
                dest[...] = raw
            if check:
                _check_finite(self, dest, 0, chosen)
        return rows.size

    @contextlib.contextmanager
    def _opened(self):
        yield None

    def _read_pieces(self, handle, start, stop, out, rows, check, piece, direct):
        k = 0
        scratch = None
        for a in range(start, stop, piece):
            b = min(stop, a + piece)
            if direct:
                self._raw(handle, a, b, out[k : k + b - a])
                if check:
                    _check_finite(self, out[k : k + b - a], a)
                k += b - a
                continue
            if scratch is None:
                scratch = np.empty((min(piece, stop - start), self.n_features), self.dtype)
            raw = scratch[: b - a]
            self._raw(handle, a, b, raw)
            picked = None
            if rows is not None:
                lo, hi = np.searchsorted(rows, (a, b))
                picked = rows[lo:hi] - a
            n = raw.shape[0] if picked is None else picked.size
            dest = out[k : k + n]
            if self.scale is not None:
                np.divide(raw if picked is None else raw[picked], 255.0, out=dest)  # x / 255 in float64, in place
            elif picked is not None and raw.dtype == dest.dtype:
                np.take(raw, picked, axis=0, out=dest)  # one copy, straight into the block
            else:
                dest[...] = raw if picked is None else raw[picked]
            if check:
                _check_finite(self, dest, a, picked)
            k += n
        return k

    def identity(self, st):
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def verify(self, st=None):
        """DataError if the file changed since it was opened (truncated, rewritten, replaced or removed)."""
        try:
            st = st or os.stat(self.path)
        except OSError:
            raise DataError(self.path, "was removed while it was being read; stopped") from None
        if self.identity(st) != self.stat:
            raise DataError(self.path, "changed or was replaced while it was being read (its size, modification "
                                       "time or inode differ); stopped")


@contextlib.contextmanager
def _verified_after(rows, stat):
    """``rows.verify(stat())`` once the block's read ends, as it was checked before: a file edited while it
    was read gave rows of both versions, and the read says the file changed instead of passing them on
    (training would diverge and blame the learning rate) or blaming a value the edit wrote."""
    try:
        yield
    except DataError:
        rows.verify(stat())
        raise
    rows.verify(stat())


def _check_finite(rows, block, first, picked=None):
    if not np.isfinite(block).all():
        i, j = np.argwhere(~np.isfinite(block))[0]
        row = first + (int(picked[i]) if picked is not None else int(i))
        raise DataError(rows.path, f"example {row}, feature {j} is {block[i, j]}; clean or impute the data first")


class _FileRows(_Rows):
    """Rows stored as one C-ordered array at ``offset`` in a file (a .npy, or a stored .npz member).

    No file stays open between reads (a folder may hold thousands of shards): each read opens the
    file and checks it is the one that was opened first (device, inode, size, modification time).
    ``crc``: for an .npz member, (its CRC-32, that of its .npy header), checked when it is loaded whole.
    """

    scattered = True

    def __init__(self, path, offset, shape, dtype, what, crc=None):
        self.path, self.offset, self.dtype, self.what, self.crc = path, offset, dtype, what, crc
        self.n_rows = shape[0]
        self.n_features = math.prod(shape[1:]) if len(shape) > 1 else 0
        self.running_crc = None  # while a whole load runs: the CRC-32 of the bytes read so far
        st = regular_file(path)
        self.stat = self.identity(st)
        end = offset + self.n_rows * self.n_features * dtype.itemsize
        if st.st_size < end:
            raise DataError(path, f"is truncated: {what} of shape {shape} needs {end:,} bytes, the file has {st.st_size:,}")

    def load(self, dtype):
        if self.crc is None:
            return super().load(dtype)
        # A whole load reads the member's bytes in order, so its CRC-32 is summed as they pass: a changed byte
        # is refused, as zipfile refuses it, not trained on.
        self.running_crc = self.crc[1]
        try:
            out = super().load(dtype)
            crc = self.running_crc
        finally:
            self.running_crc = None
        if crc != self.crc[0]:
            raise DataError(self.path, f"is truncated or corrupted ({self.what}'s CRC-32 does not match its data)")
        return out

    @contextlib.contextmanager
    def _opened(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise DataError(self.path, f"could not be opened again ({exc.strerror}); stopped") from None
        try:
            self.verify(os.fstat(fd))
            with _verified_after(self, lambda: os.fstat(fd)):
                yield fd
        finally:
            os.close(fd)

    def _raw(self, fd, a, b, out):
        buffer = memoryview(out.reshape(-1).view(np.uint8))
        view = buffer
        position = self.offset + a * self.n_features * self.dtype.itemsize
        while len(view):
            got = os.preadv(fd, [view], position)
            if got == 0:
                raise DataError(self.path, "ended early: the file was truncated while it was being read")
            view, position = view[got:], position + got
        if self.running_crc is not None:
            self.running_crc = zlib.crc32(buffer, self.running_crc)

    def sample(self, digest):
        """Feed the file's identity into a hash: header, size and FINGERPRINT_PIECES pieces spread over it."""
        size = self.stat[2]
        digest.update(f"{self.offset}:{size}:{self.dtype.str}:{self.n_rows}x{self.n_features}".encode())
        with open(self.path, "rb") as f:
            for i in range(FINGERPRINT_PIECES):
                f.seek(max(0, (size - FINGERPRINT_PIECE_BYTES) * i // max(1, FINGERPRINT_PIECES - 1)))
                digest.update(f.read(FINGERPRINT_PIECE_BYTES))


class _WholeRows(_Rows):
    """An .npz member X that no row of can be read in place: compressed (np.savez_compressed: no row without
    inflating all before it) or stored in Fortran order (each row's values lie across the member). It is read
    whole (when it fits the memory budget, which ``fits`` decides) and never streamed; ``unstreamable`` says
    which of the two."""

    def __init__(self, path, shape, dtype, unstreamable):
        self.path, self.dtype, self.n_rows = path, dtype, shape[0]
        self.n_features = math.prod(shape[1:])
        self.unstreamable = unstreamable
        self.stat = self.identity(regular_file(path))
        self.whole = None

    def _array(self):
        self.verify()
        try:
            with np.load(self.path, allow_pickle=False) as npz:
                X = npz["X"]
        except MemoryError:
            raise
        except Exception as exc:  # zipfile.BadZipFile (a CRC-32 mismatch), zlib.error: a damaged member
            raise DataError(self.path, f"is truncated or corrupted ({first_line(exc)})") from None
        return X.reshape(self.n_rows, self.n_features)

    def load(self, dtype):
        X = np.ascontiguousarray(self._array(), dtype)  # the array np.load gave, unless another order or type
        piece = max(1, PIECE_BYTES // (self.n_features * X.itemsize))
        for a in range(0, self.n_rows, piece):
            _check_finite(self, X[a : a + piece], a)
        return X

    def _raw(self, handle, a, b, out):
        if self.whole is None:
            self.whole = self._array()
        out[...] = self.whole[a:b]

    def sample(self, digest):
        digest.update(f"{self.stat}".encode())
        with open(self.path, "rb") as f:
            digest.update(f.read(2**20))


# h5py reports a damaged file from deep inside the library, in several exception types.
_H5_FAILURES = (OSError, RuntimeError, KeyError, ValueError, TypeError)


class _H5Rows(_Rows):
    """Rows of an HDF5 dataset, read by slices (the file opened for each read, as ``_FileRows`` does)."""

    def __init__(self, path, key, shape, dtype):
        self.path, self.key, self.shape, self.dtype = path, key, shape, dtype
        self.n_rows, self.n_features = shape[0], math.prod(shape[1:])
        self.scale = 1 / 255.0 if self.dtype.kind in "iu" else None
        self.stat = self.identity(regular_file(path))

    def _dataset(self):
        import h5py

        self.verify()
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(self.path, f"could not be opened again ({first_line(exc)}); stopped") from None

    @contextlib.contextmanager
    def _opened(self):
        with self._dataset() as f, _verified_after(self, lambda: None):
            yield f

    def _raw(self, f, a, b, out):
        try:
            f[self.key].read_direct(out.reshape((b - a, *self.shape[1:])), np.s_[a:b])
        except _H5_FAILURES as exc:
            raise DataError(self.path, f"is truncated or corrupted: rows {a}..{b} of {self.key} could not be read "
                                       f"({first_line(exc)})") from None

    def sample(self, digest):
        digest.update(f"{self.key}:{self.stat[2]}:{self.dtype.str}:{self.n_rows}x{self.n_features}".encode())
        step = max(1, self.n_rows // FINGERPRINT_PIECES)
        with self._dataset() as f:
            data = f[self.key]
            for row in range(0, self.n_rows, step):
                digest.update(np.ascontiguousarray(data[row]).tobytes())


# ---------------------------------------------------------------------------- opening files


def _check_features(path, shape, dtype, what):
    """DataError unless ``what``, the features, are numbers of shape (n_samples, n_features, ...), none empty."""
    if dtype.kind not in "fiub":
        raise DataError(path, f"the features ({what}) are not numeric (dtype {dtype})")
    if len(shape) < 2:
        raise DataError(path, f"the features ({what}) must be 2-D (n_samples, n_features), got shape {shape}")
    if min(shape) <= 0:  # a .npy header may declare any integers
        raise DataError(path, f"has no examples or no features ({what}: shape {shape})")


def _open_npy(path):
    regular_file(path)
    with open(path, "rb") as f:
        try:
            shape, fortran, dtype = read_npy_header(f)
        except (ValueError, OSError) as exc:
            raise DataError(path, f"is not a .npy file ({first_line(exc)})") from None
        offset = f.tell()
    _check_features(path, shape, dtype, "the array")
    if fortran and math.prod(shape[1:]) > 1:
        raise DataError(path, "the array is stored in Fortran order; streaming reads rows: save it C-ordered")
    return _FileRows(path, offset, shape, dtype, "the array")


def _load_labels(path, source):
    """A labels file (.npy) read whole."""
    try:
        regular_file(path)
        y = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, f"no such labels file (the labels of {source})") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"is not a .npy array of labels ({first_line(exc)})") from None
    if not isinstance(y, np.ndarray):
        raise DataError(path, "is not a .npy array of labels")
    return y


def _open_npz(path, require_labels):
    regular_file(path)
    with open(path, "rb") as f:
        signature = f.read(len(np.lib.format.MAGIC_PREFIX))
    if signature == np.lib.format.MAGIC_PREFIX:
        raise DataError(path, "is a single .npy array, not an .npz archive holding X and y")
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # zipfile.BadZipFile and its kin
        what = "is truncated or corrupted" if signature.startswith(_ZIP_SIGNATURES) else "is not an .npz archive"
        raise DataError(path, f"{what} ({first_line(exc)})") from None
    with archive:
        try:
            return _npz_contents(path, archive, require_labels)
        except DataError:
            raise
        except Exception as exc:  # zipfile.BadZipFile, zlib.error, EOFError: a damaged member
            raise DataError(path, f"is truncated or corrupted ({first_line(exc)})") from None


def _npz_header(path, archive, name):
    """(shape, fortran order, dtype, header bytes) of the archive's array ``name``, which holds no objects."""
    with archive.open(name) as member:
        try:
            shape, fortran, dtype = read_npy_header(member)
        except ValueError as exc:
            raise DataError(path, f"is truncated or corrupted ({name} is not a .npy array: {exc})") from None
        size = member.tell()
    if dtype.hasobject:
        raise DataError(path, f"{name} holds Python objects, which fastdnn never unpickles")
    with archive.open(name) as member:
        return shape, fortran, dtype, member.read(size)


def _npz_contents(path, archive, require_labels):
    members = {n[:-4] if n.endswith(".npy") else n: n for n in archive.namelist()}  # named as np.load names them
    names = ", ".join(sorted(members))
    if "X" not in members:
        raise DataError(path, f"has no array 'X' (the features); it holds: {names or 'nothing'}")
    if "y" not in members and require_labels:
        raise DataError(path, f"has no array 'y' (the labels); it holds: {names}")
    y = None
    if "y" in members:
        _npz_header(path, archive, members["y"])
        with archive.open(members["y"]) as member:
            y = np.lib.format.read_array(member, allow_pickle=False)
    shape, fortran, dtype, header = _npz_header(path, archive, members["X"])
    _check_features(path, shape, dtype, "X")
    source = "X/y" if y is not None else "X"
    info = archive.getinfo(members["X"])
    # Python's integers: a header's shape may declare more than 64 bits hold.
    declared = len(header) + math.prod(shape) * dtype.itemsize
    if info.file_size != declared:
        raise DataError(path, f"is truncated or corrupted (X holds {info.file_size:,} bytes; its header declares "
                              f"{declared:,})")
    if info.compress_type != zipfile.ZIP_STORED:
        return _WholeRows(path, shape, dtype, "X is compressed (np.savez_compressed)"), y, source + ", compressed"
    if fortran and math.prod(shape[1:]) > 1:
        return _WholeRows(path, shape, dtype, "X is stored in Fortran order"), y, source
    # The member's data start after its local header (30 bytes, the name, the extra field) and the .npy header.
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise DataError(path, "is a damaged .npz archive (X's local header)")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    rows = _FileRows(path, start + len(header), shape, dtype, "X", crc=(info.CRC, zlib.crc32(header)))
    return rows, y, source


def _open_h5(path, prefer, require_labels):
    h5py = import_optional("h5py", "h5", f"reading {path} (HDF5)")
    regular_file(path)
    pairs = HDF5_PAIRS[prefer]
    try:
        with h5py.File(path, "r") as f:
            x_key, y_key, y = _h5_contents(path, f, pairs, require_labels, h5py)
            shape, dtype = tuple(f[x_key].shape or ()), f[x_key].dtype
    except DataError:
        raise
    except OSError as exc:
        with open(path, "rb") as raw:
            signature = raw.read(len(_HDF5_SIGNATURE))
        what = "is truncated or corrupted" if signature == _HDF5_SIGNATURE else "is not an HDF5 file"
        raise DataError(path, f"{what} ({first_line(exc)})") from None
    except _H5_FAILURES as exc:
        raise DataError(path, f"is a damaged HDF5 file ({first_line(exc)})") from None
    _check_features(path, shape, dtype, x_key)
    return _H5Rows(path, x_key, shape, dtype), y, f"{x_key}/{y_key}" if y is not None else x_key


def _h5_contents(path, f, pairs, require_labels, h5py):
    """(features' key, labels' key, labels or None) of the open HDF5 file ``f``: the first of ``pairs`` it has."""
    keys = ", ".join(sorted(f.keys()))
    for x_key, y_key in pairs:
        if x_key in f:
            break
    else:
        raise DataError(path, "has neither the course's train_set_x/train_set_y or test_set_x/test_set_y datasets "
                              f"nor X/y; it holds: {keys or 'nothing'}")
    if y_key not in f and require_labels:
        raise DataError(path, f"has {x_key} but no {y_key} (the labels); it holds: {keys}")
    for key in (x_key, y_key):
        if key in f and not isinstance(f[key], h5py.Dataset):
            raise DataError(path, f"{key} is a group, not a dataset")
    return x_key, y_key, np.asarray(f[y_key][()]) if y_key in f else None


def open_file(path, labels=None, prefer="train", require_labels=True):
    """(rows, labels array or None, what was read) of one file: a .npy (``labels`` a .npy path or an array;
    default ``<name>.labels.npy``), an .npz or an HDF5 file (``prefer``: in one holding both, "train" reads
    train_set_*, "test" test_set_*). Without ``require_labels`` the file may have none."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        rows = _open_npy(path)
        if labels is None:
            labels = labels_path_for(path)
            if not require_labels and not os.path.exists(labels):
                return rows, None, "features"
        if isinstance(labels, (str, os.PathLike)):
            y = _load_labels(os.fspath(labels), path)
            source = f"features, labels from {os.path.basename(os.fspath(labels))}"
        else:
            y, source = np.asarray(labels), "features, labels given"
        return rows, y, source
    if labels is not None:
        raise DataError(path, "holds its own labels; a labels file or array is for .npy features only")
    if suffix == ".npz":
        return _open_npz(path, require_labels)
    if suffix in (".h5", ".hdf5"):
        return _open_h5(path, prefer, require_labels)
    raise DataError(path, f"cannot be streamed: use one of {', '.join(SUFFIXES)} or a folder of them "
                          "(fastdnn convert turns a CSV into .npy)")
