"""Data on disk, read a block of rows at a time: what streaming training and prediction read.

A ``DiskDataset`` is examples whose features stay on disk and whose labels
(one small value per example) are held in memory:

    .npy          one array (n_samples, ...) of numbers, read at row offsets (never
                  memory-mapped, so reading costs the block, not the file, in RSS);
                  the labels in a second .npy (``labels=``; by default
                  ``<name>.labels.npy`` beside it, as ``fastdnn convert`` writes them)
    .npz          arrays X and y; X stored uncompressed (``np.savez``), read in place
    .h5 .hdf5     the datasets ``load_dataset`` reads (the course's train_set_x/y, or X/y),
                  by slices; integer features scaled by 1/255 as the course does
    a folder      shards, in name order, that together form one dataset: .npy (each
                  with its .labels.npy), .npz or HDF5 files, every one with the same
                  feature count and dtype (a shard that differs is refused by name)

``Feed`` cuts a training set into blocks of rows sized from a memory budget
and reads the next block in a background thread while the compiled loop trains
on the current one (the kernels release the GIL). The order of a streamed epoch
is ``epoch_blocks``: a documented function of the shuffling generator and the
block size.

Every problem is a ``DataError`` naming the file: a shard that does not match,
a non-finite value (by row and feature), a file that is shorter than its
header says, or one changed, truncated or replaced while it is being read.
"""

import contextlib
import copy
import hashlib
import os
import re
import tokenize
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastdnn.data import HDF5_PAIRS, checked_labels, labels_path_for
from fastdnn.errors import DataError
from fastdnn.files import import_optional, regular_file

# Raw bytes read at once when rows are converted, selected or checked: bounds the scratch memory.
PIECE_BYTES = 8 * 2**20
PAGE_BYTES = 4096
# Pieces of a file hashed to fingerprint it (with its size and header, and all of its labels).
FINGERPRINT_PIECES = 64
FINGERPRINT_PIECE_BYTES = 4096
SUFFIXES = (".npy", ".npz", ".h5", ".hdf5")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:([KMGT])(?:I?B)?|B)?\s*$", re.IGNORECASE)
_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text):
    """"2GB", "512MB", "1.5G", "512MiB", "800000000" -> bytes (K/M/G/T are powers of 1024), at least 1MB."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"must be a size like 2GB or 512MB, got {text!r}")
    size = int(float(match.group(1)) * _UNITS.get((match.group(2) or "").upper(), 1))
    if size < 2**20:
        raise ValueError(f"must be at least 1MB, got {text!r}")
    return size


# ---------------------------------------------------------------------------- files of rows


class _Rows:
    """Rows of one file: ``read(start, stop, out)`` converts rows [start, stop) into ``out``.

    ``path``, ``n_rows``, ``n_features``, ``dtype`` (the file's), ``scale`` (1/255 for the
    course's integer pixels, else None). Subclasses open the file once a read (``_opened``, which checks
    it is still the file first opened) and read raw rows from that handle with ``_raw``.
    """

    scale = None
    streamable = True
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
            if not same:
                dest[...] = raw / 255.0 if self.scale is not None else raw
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
                dest[...] = (raw if picked is None else raw[picked]) / 255.0  # the course's x / 255, in float64
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
    """

    scattered = True

    def __init__(self, path, offset, shape, dtype, what):
        self.path, self.offset, self.dtype, self.what = path, offset, dtype, what
        self.n_rows = shape[0]
        self.n_features = int(np.prod(shape[1:])) if len(shape) > 1 else 0
        st = regular_file(path)
        self.stat = self.identity(st)
        end = offset + self.n_rows * self.n_features * dtype.itemsize
        if st.st_size < end:
            raise DataError(path, f"is truncated: {what} of shape {shape} needs {end:,} bytes, the file has {st.st_size:,}")

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
        view = memoryview(out.reshape(-1).view(np.uint8))
        position = self.offset + a * self.n_features * self.dtype.itemsize
        while len(view):
            got = os.preadv(fd, [view], position)
            if got == 0:
                raise DataError(self.path, "ended early: the file was truncated while it was being read")
            view, position = view[got:], position + got

    def sample(self, digest):
        """Feed the file's identity into a hash: header, size and FINGERPRINT_PIECES pieces spread over it."""
        size = self.stat[2]
        digest.update(f"{self.offset}:{size}:{self.dtype.str}:{self.n_rows}x{self.n_features}".encode())
        with open(self.path, "rb") as f:
            for i in range(FINGERPRINT_PIECES):
                f.seek(max(0, (size - FINGERPRINT_PIECE_BYTES) * i // max(1, FINGERPRINT_PIECES - 1)))
                digest.update(f.read(FINGERPRINT_PIECE_BYTES))


class _CompressedRows(_Rows):
    """A compressed .npz member (np.savez_compressed): no row can be read without inflating all before it,
    so it is read whole (when it fits the memory budget, which ``fits`` decides) and never streamed."""

    streamable = False

    def __init__(self, path, shape, dtype):
        self.path, self.dtype, self.n_rows = path, dtype, shape[0]
        self.n_features = int(np.prod(shape[1:]))
        self.stat = self.identity(regular_file(path))
        self.whole = None

    def _raw(self, handle, a, b, out):
        if self.whole is None:
            self.verify()
            with np.load(self.path, allow_pickle=False) as npz:
                self.whole = npz["X"].reshape(self.n_rows, self.n_features)
        out[...] = self.whole[a:b]

    def sample(self, digest):
        digest.update(f"{self.stat}".encode())
        with open(self.path, "rb") as f:
            digest.update(f.read(2**20))


class _H5Rows(_Rows):
    """Rows of an HDF5 dataset, read by slices (the file opened for each read, as ``_FileRows`` does)."""

    def __init__(self, path, key, shape, dtype):
        self.path, self.key, self.shape, self.dtype = path, key, shape, dtype
        self.n_rows, self.n_features = shape[0], int(np.prod(shape[1:]))
        self.scale = 1 / 255.0 if self.dtype.kind in "iu" else None
        self.stat = self.identity(regular_file(path))

    def _dataset(self):
        import h5py

        self.verify()
        try:
            return h5py.File(self.path, "r")
        except OSError as exc:
            raise DataError(self.path, f"could not be opened again ({exc}); stopped") from None

    @contextlib.contextmanager
    def _opened(self):
        with self._dataset() as f, _verified_after(self, lambda: None):
            yield f

    def _raw(self, f, a, b, out):
        try:
            f[self.key].read_direct(out.reshape((b - a, *self.shape[1:])), np.s_[a:b])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(self.path, f"could not read rows {a}..{b} of {self.key} ({exc}); was it changed?") from None

    def sample(self, digest):
        digest.update(f"{self.key}:{self.stat[2]}:{self.dtype.str}:{self.n_rows}x{self.n_features}".encode())
        step = max(1, self.n_rows // FINGERPRINT_PIECES)
        with self._dataset() as f:
            data = f[self.key]
            for row in range(0, self.n_rows, step):
                digest.update(np.ascontiguousarray(data[row]).tobytes())


# ---------------------------------------------------------------------------- opening files


def _npy_header(path, f):
    try:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
    except (ValueError, OSError, SyntaxError, TypeError, tokenize.TokenError) as exc:  # numpy parses the header text
        raise DataError(path, f"is not a .npy file ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return shape, fortran, dtype, f.tell()


def _check_array(path, shape, fortran, dtype, what):
    if dtype.hasobject or dtype.kind not in "fiub":
        raise DataError(path, f"{what} must hold numbers, got dtype {dtype}")
    if len(shape) < 2 or shape[0] == 0 or int(np.prod(shape[1:])) == 0:
        raise DataError(path, f"{what} must be (n_samples, n_features) with both positive, got shape {shape}")
    if fortran and int(np.prod(shape[1:])) > 1:
        raise DataError(path, f"{what} is stored in Fortran order; streaming reads rows: save it C-ordered")


def _open_npy(path):
    regular_file(path)
    with open(path, "rb") as f:
        shape, fortran, dtype, offset = _npy_header(path, f)
    _check_array(path, shape, fortran, dtype, "the array")
    return _FileRows(path, offset, shape, dtype, "the array")


def _load_labels(path, source):
    """A labels file (.npy) read whole."""
    try:
        regular_file(path)
        y = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(path, f"no such labels file (the labels of {source})") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(path, f"is not a .npy array of labels ({str(exc).splitlines()[0]})") from None
    if not isinstance(y, np.ndarray):
        raise DataError(path, "is not a .npy array of labels")
    return y


def _open_npz(path, require_labels):
    import zipfile

    regular_file(path)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(path, f"is not an .npz archive ({exc})") from None
    with archive:
        names = archive.namelist()
        if "X.npy" not in names:
            raise DataError(path, f"has no array 'X' (the features); it holds: {', '.join(sorted(names)) or 'nothing'}")
        if "y.npy" not in names and require_labels:
            raise DataError(path, "has no array 'y' (the labels)")
        info = archive.getinfo("X.npy")
        try:
            with archive.open(info) as member:
                shape, fortran, dtype, header = _npy_header(path, member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise DataError(path, f"is truncated or corrupted ({exc})") from None
        y = None
        if "y.npy" in names:
            try:
                with np.load(path, allow_pickle=False) as npz:
                    y = npz["y"]
            except ValueError as exc:
                raise DataError(path, f"its labels hold Python objects, which fastdnn never unpickles ({exc})") from None
            except Exception as exc:  # zipfile.BadZipFile, zlib.error: a damaged member
                raise DataError(path, f"is truncated or corrupted ({exc})") from None
    _check_array(path, shape, fortran, dtype, "X")
    source = "X/y" if y is not None else "X"
    if info.compress_type != zipfile.ZIP_STORED:
        return _CompressedRows(path, shape, dtype), y, source + ", compressed"
    # The member's data start after its local header (30 bytes, the name, the extra field) and the .npy header.
    with open(path, "rb") as raw:
        raw.seek(info.header_offset)
        local = raw.read(30)
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise DataError(path, "is a damaged .npz archive (X's local header)")
        start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    return _FileRows(path, start + header, shape, dtype, "X"), y, source


def _open_h5(path, prefer, require_labels):
    h5py = import_optional("h5py", "h5", f"reading {path} (HDF5)")
    regular_file(path)
    try:
        with h5py.File(path, "r") as f:
            for x_key, y_key in HDF5_PAIRS[prefer]:
                if x_key in f:
                    break
            else:
                raise DataError(path, "has neither the course's train_set_x/train_set_y or test_set_x/test_set_y "
                                      f"datasets nor X/y; it holds: {', '.join(sorted(f.keys())) or 'nothing'}")
            if y_key not in f and require_labels:
                raise DataError(path, f"has {x_key} but no {y_key} (the labels)")
            for key in (x_key, y_key):
                if key in f and not isinstance(f[key], h5py.Dataset):
                    raise DataError(path, f"{key} is a group, not a dataset")
            shape, dtype = f[x_key].shape, f[x_key].dtype
            y = np.asarray(f[y_key][()]) if y_key in f else None
    except OSError as exc:
        raise DataError(path, f"is not a readable HDF5 file ({exc})") from None
    if len(shape) < 2 or shape[0] == 0 or dtype.kind not in "fiub" or int(np.prod(shape[1:])) == 0:
        raise DataError(path, f"{x_key} must be numeric (n_samples, n_features) data, got shape {shape} {dtype}")
    return _H5Rows(path, x_key, shape, dtype), y, f"{x_key}/{y_key}" if y is not None else x_key


def _open_file(path, labels, prefer, require_labels=True):
    """(rows, labels array or None, what was read) of one file."""
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


class DiskDataset:
    """Examples on disk (see the module): features read by block, labels ``y`` (n_samples,) in memory.

    ``open_disk_dataset`` makes one. ``dtype`` is the features' compute dtype: the file's float
    type, else float64 (as ``load_dataset`` converts integers).
    """

    def __init__(self, path, parts, y, source):
        self.path, self.parts, self.y, self.source = path, parts, y, source
        self.starts = np.cumsum([0] + [p.n_rows for p in parts])
        self.n_samples = int(self.starts[-1])
        self.n_features = parts[0].n_features
        file_dtype = parts[0].dtype
        self.dtype = file_dtype if file_dtype in (np.float32, np.float64) and parts[0].scale is None else np.dtype(np.float64)

    @property
    def shape(self):
        return (self.n_samples, self.n_features)

    def describe(self):
        return f"{self.path} ({self.source})"

    def nbytes(self, dtype=None):
        return self.n_samples * self.n_features * np.dtype(dtype or self.dtype).itemsize

    def read(self, rows, out, check=True):
        """Examples ``rows`` (sorted indices, or a (start, stop) range) into out[:len], across shards; returns
        len. ``check``: refuse values that are not finite."""
        if isinstance(rows, tuple):
            start, stop = rows
            index = None
        else:
            index = rows
            start, stop = int(rows[0]), int(rows[-1]) + 1
        k = 0
        first = np.searchsorted(self.starts, start, side="right") - 1
        for i in range(first, len(self.parts)):
            lo, hi = self.starts[i], self.starts[i + 1]
            if lo >= stop:
                break
            a, b = max(start, lo), min(stop, hi)
            part_rows = None
            if index is not None:
                j0, j1 = np.searchsorted(index, (a, b))
                if j0 == j1:
                    continue
                part_rows = index[j0:j1] - lo
                a, b = int(part_rows[0]) + lo, int(part_rows[-1]) + 1 + lo
            k += self.parts[i].read(a - lo, b - lo, out[k:], part_rows, check)
        return k

    def load(self, dtype=None, rows=None):
        """All examples (or ``rows``) in memory, (n, n_features) of ``dtype``."""
        n = self.n_samples if rows is None else rows.size
        out = np.empty((n, self.n_features), dtype or self.dtype)
        self.read((0, self.n_samples) if rows is None else rows, out)
        return out

    def verify(self):
        for part in self.parts:
            part.verify()

    def with_labels(self, y):
        """The same features with the labels ``y`` (one per example), as a new object."""
        other = copy.copy(self)
        other.y = checked_labels(self.path, y, self.n_samples, "labels given")
        return other

    def with_dtype(self, dtype):
        """The same data computed in ``dtype`` (a new object: this one is left as it is)."""
        other = copy.copy(self)
        other.dtype = np.dtype(dtype)
        return other

    def fits(self, memory):
        """Whether the data are read whole (their features as ``dtype`` take at most ``memory`` bytes) rather
        than streamed; DataError when they must stream but cannot (a compressed .npz member)."""
        if self.nbytes() <= memory:
            return True
        for part in self.parts:
            if not part.streamable:
                raise DataError(part.path, f"X is compressed (np.savez_compressed) and larger than the memory budget "
                                           f"({self.nbytes() / 2**20:,.0f} MiB as {self.dtype}): streaming reads rows "
                                           "in place, so save it with np.savez or as .npy, or raise --memory")
        return False

    def fingerprint(self):
        """A short digest telling these data from others: each file's size, header and 64 pieces, and every label."""
        digest = hashlib.blake2b(digest_size=16)
        for part in self.parts:
            part.sample(digest)
        y = np.ascontiguousarray(self.y if self.y is not None else np.zeros(0))
        digest.update(f"{y.dtype.str}{y.shape}".encode())
        digest.update(y.reshape(-1).view(np.uint8) if y.dtype.kind != "U" else y.tobytes())
        return "disk-" + digest.hexdigest()

    def close(self):
        """Nothing to release (no file stays open between reads); kept for ``with``."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def is_streamable(path):
    path = os.fspath(path)
    return os.path.isdir(path) or os.path.splitext(path)[1].lower() in SUFFIXES


def open_disk_dataset(path, labels=None, prefer="train", require_labels=True):
    """A ``DiskDataset`` for ``path``: a .npy (``labels`` a .npy path or an array; default
    ``<name>.labels.npy``), an .npz, an HDF5 file, or a folder of shards. Without ``require_labels``
    the data may come without labels (``y`` None), for prediction."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file or folder", path)
    if not os.path.isdir(path):
        rows, y, source = _open_file(path, labels, prefer, require_labels)
        y = None if y is None else checked_labels(path, y, rows.n_rows, source)
        return DiskDataset(path, [rows], y, source)
    if labels is not None:
        raise DataError(path, "is a folder of shards: each shard's labels are its own (.labels.npy beside each .npy)")
    names = sorted(n for n in os.listdir(path) if os.path.splitext(n)[1].lower() in SUFFIXES
                   and not n.lower().endswith(".labels.npy") and os.path.isfile(os.path.join(path, n)))
    if not names:
        raise DataError(path, f"holds no shards ({', '.join(SUFFIXES)} files)")
    parts, ys = [], []
    for name in names:
        part, y, source = _open_file(os.path.join(path, name), None, prefer, require_labels)
        first = parts[0] if parts else part
        if part.n_features != first.n_features or part.dtype != first.dtype or part.scale != first.scale:
            raise DataError(part.path, f"is a shard of {part.n_features} features of {part.dtype}, but "
                                       f"{os.path.basename(first.path)} has {first.n_features} of {first.dtype}: "
                                       "every shard must match")
        parts.append(part)
        ys.append(None if y is None else checked_labels(part.path, y, part.n_rows, source))
    if any(y is None for y in ys):
        if require_labels or not all(y is None for y in ys):
            missing = names[[y is None for y in ys].index(True)]
            raise DataError(path, f"shard {missing} has no labels while others have")
        return DiskDataset(path, parts, None, f"{len(parts)} shards")
    if len({"U" if y.dtype.kind == "U" else "n" for y in ys}) > 1:
        raise DataError(path, "some shards have text labels and others numbers")
    return DiskDataset(path, parts, np.concatenate(ys), f"{len(parts)} shards")


# ---------------------------------------------------------------------------- blocks for training


def block_rows_for(memory, n_features, n_outputs, dtype, batch):
    """Rows per block so that two blocks (the one training and the one being read) fit in ``memory`` bytes;
    a multiple of the minibatch ``batch`` (None: any), at least one batch."""
    row = (n_features + n_outputs) * np.dtype(dtype).itemsize
    rows = max(1, memory // (2 * row))
    if batch:
        rows = max(batch, rows // batch * batch)
    return int(rows)


def epoch_blocks(rng, n_rows, block_rows, shuffle):
    """The order of one epoch over ``n_rows`` examples cut into blocks of ``block_rows``: a list of
    (first, stop) row ranges, in the order they are trained.

    Blocks are rows [k b, (k + 1) b). With ``shuffle``, the full blocks come in the order
    ``rng.permutation(n_full)`` (not drawn when there is only one), the shorter last block (if any)
    after them, so that every minibatch but the epoch's last is full, as in memory; then each block in
    turn draws ``rng.permutation(its rows)``, at the moment it is trained (the route draws it, not this
    function). Without shuffling the blocks come in file order. A dataset of one block is the in-memory
    epoch: one ``rng.permutation(m)``.

    >>> epoch_blocks(np.random.default_rng(0), 10, 4, shuffle=False)
    [(0, 4), (4, 8), (8, 10)]
    >>> epoch_blocks(np.random.default_rng(0), 10, 3, shuffle=True)
    [(6, 9), (0, 3), (3, 6), (9, 10)]
    """
    n_full = n_rows // block_rows
    order = list(range(n_full))
    if shuffle and n_full > 1:
        order = [int(k) for k in rng.permutation(n_full)]
    if n_rows % block_rows:
        order.append(n_full)
    return [(k * block_rows, min(n_rows, (k + 1) * block_rows)) for k in order]


class Feed:
    """A training set on disk as blocks of rows: ``rows`` (sorted indices of the examples to train on, or
    None for all), targets from ``index`` (class indices of every example) and ``n_classes``.

    ``capacity`` rows fit in each of the two buffers (``block_rows_for``). ``block_rows``, the training
    rows per block, is the capacity, or with ``rows`` a subset the capacity times the subset's density
    (a multiple of ``batch``), so that a block's rows usually lie within a file range that fits a buffer.
    ``blocks(spans, positions)`` yields (X, Y, positions) for each (first, stop) span of the training rows,
    the next one read on a background thread into the other buffer while the caller trains on this one.
    With ``positions`` allowed, a subset's block is its whole file range read in place (held-out rows
    included) and ``positions`` says where the span's rows are in it; otherwise (or when a range does not
    fit) the rows are gathered into the buffer and positions is None. ``blocks(spans, picks=...)`` reads
    only some rows of each span (a rank's share, ``fastdnn.distributed``): ``picks`` yields, span by span
    and in the caller's thread, the sorted positions within the span to read, which X holds in that order.
    """

    def __init__(self, data, index, n_classes, targets, dtype, capacity, rows=None, batch=None, units=None):
        self.data, self.index, self.n_classes, self.targets = data, index, n_classes, targets
        self.units = (1 if n_classes == 2 else n_classes) if units is None else units  # targets' columns
        self.dtype, self.capacity, self.rows = np.dtype(dtype), capacity, rows
        self.n_rows = data.n_samples if rows is None else rows.size
        self.n_features = data.n_features
        self.block_rows = capacity
        if rows is not None:
            block = int(capacity * rows.size / data.n_samples * 0.97)
            self.block_rows = max(batch or 1, block // batch * batch if batch else block, 1)
        self.buffers = None
        self.reader = None
        self.checked = set()  # spans whose values were checked finite (the files are verified unchanged since)

    def _read(self, span, which, positions, pick=None):
        first, stop = span
        X, Y = self.buffers[which]
        check = span not in self.checked
        if pick is not None:
            # Some rows of the span: checked on every read (which rows varies from epoch to epoch).
            if pick.size == 0:
                return X[:0], Y[:0], None
            chosen = first + pick if self.rows is None else self.rows[first + pick]
            k = self.data.read(chosen, X, True)
            Y[:k] = self.targets(self.index[chosen], self.n_classes, self.dtype, self.units)
            return X[:k], Y[:k], None
        if self.rows is None:
            lo, hi, where = first, stop, None
            self.data.read((lo, hi), X, check)
        else:
            chosen = self.rows[first:stop]
            lo, hi = int(chosen[0]), int(chosen[-1]) + 1
            if positions and hi - lo <= X.shape[0]:
                self.data.read((lo, hi), X, check)
                where = chosen - lo
            else:
                hi = lo + self.data.read(chosen, X, check)
                where = None
        self.checked.add(span)
        rows = slice(lo, hi) if self.rows is None or where is not None else self.rows[first:stop]
        Y[: hi - lo] = self.targets(self.index[rows], self.n_classes, self.dtype, self.units)
        return X[: hi - lo], Y[: hi - lo], where

    def blocks(self, spans, positions=True, picks=None):
        if self.buffers is None:
            b = min(self.capacity, self.data.n_samples)
            n_out = self.units
            self.buffers = [(np.empty((b, self.n_features), self.dtype), np.empty((b, n_out), self.dtype)) for _ in range(2)]
            self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastdnn-read")
        if not spans:
            return
        picks = iter(picks) if picks is not None else None
        pick = (lambda: next(picks)) if picks is not None else (lambda: None)  # noqa: E731
        pending = self.reader.submit(self._read, spans[0], 0, positions, pick())
        try:
            for i in range(len(spans)):
                block = pending.result()
                pending = None
                if i + 1 < len(spans):
                    pending = self.reader.submit(self._read, spans[i + 1], (i + 1) % 2, positions, pick())
                yield block
        finally:
            if pending is not None:
                pending.cancel()
                try:
                    pending.result()
                except BaseException:
                    pass

    def close(self):
        if self.reader is not None:
            self.reader.shutdown(wait=True)
            self.reader = None
        self.buffers = None
