"""Data on disk, read a block of rows at a time: what streaming training and prediction read.

A ``DiskDataset`` is examples whose features stay on disk and whose labels
(one small value per example) are held in memory: one file of a format
``fastdnn.readers`` reads (.npy with its labels beside it, .npz, HDF5), or a
folder of shards, in name order, that together form one dataset: .npy (each
with its .labels.npy), .npz or HDF5 files, every one with the same feature
count and dtype (a shard that differs is refused by name).

``Feed`` cuts a training set into blocks of rows sized from a memory budget
and reads the next block in a background thread while the compiled loop trains
on the current one (the kernels release the GIL). The order of a streamed epoch
is ``epoch_blocks``: a documented function of the shuffling generator and the
block size.

Every problem is a ``DataError`` naming the file: a shard that does not match,
a non-finite value (by row and feature), a file that is shorter than its
header says, or one changed, truncated or replaced while it is being read.
"""

import copy
import hashlib
import os
import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastdnn.errors import DataError
from fastdnn.readers import SUFFIXES, checked_labels, open_file


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


# ---------------------------------------------------------------------------- data on disk


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
        """All examples (or ``rows``) in memory, (n, n_features) of ``dtype``: that one array (a file read
        whole gives the array it read, not a copy of it)."""
        if rows is None and len(self.parts) == 1:
            return self.parts[0].load(dtype or self.dtype)
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
        than streamed; DataError when they must stream but cannot (an .npz X compressed or in Fortran order)."""
        if self.nbytes() <= memory:
            return True
        for part in self.parts:
            if part.unstreamable:
                raise DataError(part.path, f"{part.unstreamable} and larger than the memory budget "
                                           f"({self.nbytes() / 2**20:,.0f} MiB as {self.dtype}): streaming reads rows "
                                           "in place, so save it C-ordered with np.savez or as .npy, or raise --memory")
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
        rows, y, source = open_file(path, labels, prefer, require_labels)
        y = None if y is None else checked_labels(path, y, rows.n_rows, source)
        return DiskDataset(path, [rows], y, source)
    if labels is not None:
        raise DataError(path, "is a folder of shards: each shard's labels are its own (.labels.npy beside each .npy)")
    return _open_shards(path, prefer, require_labels)


def _open_shards(path, prefer, require_labels):
    """The ``DiskDataset`` of the folder ``path``: its shards in name order, each matching the first."""
    names = sorted(n for n in os.listdir(path) if os.path.splitext(n)[1].lower() in SUFFIXES
                   and not n.lower().endswith(".labels.npy") and os.path.isfile(os.path.join(path, n)))
    if not names:
        raise DataError(path, f"holds no shards ({', '.join(SUFFIXES)} files)")
    parts, ys = [], []
    for name in names:
        part, y, source = open_file(os.path.join(path, name), None, prefer, require_labels)
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
