"""Datasets from files and the built-in one, as the estimator takes them: X (n_samples, n_features), y (n_samples,).

Formats, one loader each, looked up by the file's suffix in ``LOADERS``:

    .h5 .hdf5  read whole by the reader streaming uses (``fastdnn.readers``, which
    .npz       describes their layouts): the course's train_set_x/train_set_y, or X/y.
    .csv       a header row naming the columns, one of them the label (``label=``);
               every other column a numeric feature.

``load_or_stream`` is the one decision between holding data in memory and streaming
them from disk. Every problem with a file raises ``DataError`` (a ValueError) whose
message names the file and the problem in one line; a missing file raises
FileNotFoundError. Nothing here trains or imports the fast path.
"""

import contextlib
import csv
import errno
import hashlib
import math
import os
import tempfile
import warnings
from dataclasses import dataclass

import numpy as np
from numpy.lib.recfunctions import structured_to_unstructured

from fastdnn.datasets import DEFAULT_FEATURES, DEFAULT_SAMPLES, make_default_dataset
from fastdnn.errors import DataError
from fastdnn.files import new_file_mode, regular_file
from fastdnn.readers import checked_labels, first_line, labels_path_for
from fastdnn.stream import DiskDataset, is_streamable, open_disk_dataset


@dataclass
class Dataset:
    """X (n_samples, n_features) float, C-contiguous; y (n_samples,) labels or None; where they came from:
    ``path`` (None for the built-in dataset) and ``source``, what was read there."""

    X: np.ndarray
    y: np.ndarray
    source: str
    path: str = None

    def describe(self):
        return f"{self.path} ({self.source})" if self.path else self.source

    @property
    def n_samples(self):
        return self.X.shape[0]

    @property
    def n_features(self):
        return self.X.shape[1]


def load_dataset(path, label="label", require_labels=True, prefer="train"):
    """The examples in ``path`` (.h5/.hdf5, .npz or .csv) as a ``Dataset``.

    ``label``: the CSV column holding the labels. ``require_labels``: a file
    without labels is an error (else y is None). ``prefer``: in an HDF5 file
    holding both, "train" reads train_set_*, "test" test_set_*.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such file", path)
    if os.path.isdir(path):
        raise DataError(path, "is a directory, not a data file")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in LOADERS:
        raise DataError(path, f"unknown data format {suffix or '(no suffix)'!r}; use one of {', '.join(LOADERS)}")
    regular_file(path)  # a FIFO would block, a device (a link to /dev/zero) never end
    try:
        X, y, source = LOADERS[suffix](path, label=label, require_labels=require_labels, prefer=prefer)
    except MemoryError:
        raise DataError(path, "is larger than the memory this process can take; convert it to .npy (fastdnn "
                              "convert) and train with --memory, which streams it") from None
    return Dataset(X, y, source, path)


def load_or_stream(data, labels=None, *, memory, dtype=None, prefer="train", label="label", require_labels=True):
    """The one decision between holding data in memory and streaming them from disk: a ``Dataset``, its X in
    ``dtype`` (None: the data's own), or the ``DiskDataset`` to stream when its features as ``dtype`` take
    more than ``memory`` bytes.

    ``data``: a ``DiskDataset`` (``labels``: others for it, or None for its own) or a path: a .npy
    (``labels``: a labels file or array; default NAME.labels.npy), .npz, HDF5 or a folder of shards, opened by
    ``open_disk_dataset`` (``prefer``, ``require_labels``: as there); any other file, a CSV, is read whole by
    ``load_dataset`` (``label``: its label column), as it is converted, not streamed.
    """
    if not isinstance(data, DiskDataset):
        if not is_streamable(data) and labels is None:
            whole = load_dataset(data, label=label, require_labels=require_labels, prefer=prefer)
            if dtype is not None:
                whole.X = np.ascontiguousarray(whole.X, dtype)
            return whole
        data = open_disk_dataset(data, labels=labels, prefer=prefer, require_labels=require_labels)
    elif labels is not None:
        data = data.with_labels(labels)
    if dtype is not None:
        data = data.with_dtype(dtype)
    if not data.fits(memory):
        return data
    return Dataset(data.load(), data.y, data.source, data.path)


def _load_stored(path, label, require_labels, prefer):
    """An .npz or HDF5 file read whole by the reader that streams it: its features (n_samples, n_features) in
    its float dtype, else float64, checked finite; its labels or None."""
    disk = open_disk_dataset(path, prefer=prefer, require_labels=require_labels)
    return disk.load(), disk.y, disk.source


def _checked(path, X, y, source, require_labels):
    """A CSV's parsed (X, y, source), X's values checked finite and y's labels checked."""
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise DataError(path, f"example {row}, feature {col} is {X[row, col]} ({source}); clean or impute the data first")
    if y is None:
        if require_labels:
            raise DataError(path, f"has no labels ({source})")
        return X, None, source
    return X, checked_labels(path, y, X.shape[0], source), source


# ---------------------------------------------------------------------------- CSV

# A header row longer than this is not one (1M columns of 15-character names).
MAX_HEADER_CHARS = 16 * 2**20


def _check_line_lengths(path):
    """DataError naming the line when a line of ``path`` is longer than MAX_HEADER_CHARS bytes: the parser
    would hold it whole (a file of one endless line would take all the memory). One pass over the file in
    8 MiB pieces."""
    limit = MAX_HEADER_CHARS
    since, line = 0, 1  # bytes of the line in progress before this piece; its number
    with open(path, "rb") as f:
        while piece := f.read(8 * 2**20):
            ends = np.flatnonzero(np.frombuffer(piece, np.uint8) == 10)
            lengths = np.diff(np.concatenate([[-1 - since], ends])) - 1  # the lines that end in this piece
            too_long = np.flatnonzero(lengths > limit)
            since = len(piece) - int(ends[-1]) - 1 if ends.size else since + len(piece)
            if too_long.size or since > limit:
                at = line + (int(too_long[0]) if too_long.size else ends.size)
                raise DataError(path, f"line {at} is longer than {limit:,} bytes; a CSV row is not that long")
            line += ends.size


def _load_csv(path, label, require_labels, prefer):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            first = f.readline(MAX_HEADER_CHARS + 1)
    except UnicodeDecodeError:
        raise DataError(path, "is not UTF-8 text (a CSV file was expected)") from None
    if len(first) > MAX_HEADER_CHARS:
        raise DataError(path, f"has a first line longer than {MAX_HEADER_CHARS:,} characters: not a CSV header row")
    header = next(csv.reader([first]), None)
    _check_line_lengths(path)
    header, label_col = _csv_columns(path, header, label, require_labels, "name the label column with --label")
    feature_cols = [i for i in range(len(header)) if i != label_col]
    try:
        X, y = _read_csv_body(path, header, feature_cols, label_col)
    except UnicodeDecodeError as exc:
        raise DataError(path, f"is not UTF-8 text past its header (byte {exc.start} of a line: {exc.reason}); a CSV file "
                              "was expected") from None
    except ValueError:
        raise _locate_csv_error(path, header, feature_cols, label_col) from None
    if X.shape[0] == 0:
        raise DataError(path, "has a header but no data rows")
    source = f"{len(feature_cols)} feature columns" + (f", label column {label!r}" if label_col is not None else "")
    return _checked(path, X, y, source, require_labels)


def _read_csv_body(path, header, feature_cols, label_col):
    """The numbers under the header with numpy's C parser; ValueError on any malformed cell or row.

    Every read here parses all the header's columns, so a row with fewer or
    more cells than the header is an error, never silently shifted data.
    """
    options = dict(delimiter=",", skiprows=1, encoding="utf-8-sig", quotechar='"', comments=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "input contained no data": reported below
        try:
            # All columns numeric (the common case): one pass.
            table = np.loadtxt(path, dtype=np.float64, ndmin=2, **options)
        except ValueError:
            if label_col is None:
                raise
            labels = np.loadtxt(path, dtype=str, ndmin=1, usecols=[label_col], **options)
            try:
                labels.astype(np.float64)
            except ValueError:
                pass  # text labels: read again with a text column for them
            else:
                raise  # the labels are numbers: the bad cell is elsewhere
            width = max(1, int(np.char.str_len(labels).max(initial=0)))
            fields = [(f"c{i}", f"U{width}" if i == label_col else np.float64) for i in range(len(header))]
            table = np.loadtxt(path, dtype=np.dtype(fields), ndmin=1, **options)
            X = structured_to_unstructured(table[[f"c{i}" for i in feature_cols]], dtype=np.float64)
            y = np.char.strip(table[f"c{label_col}"])
            if (y == "").any():
                raise ValueError("empty label") from None
            return np.ascontiguousarray(X), y
    if table.size == 0:
        return np.empty((0, len(feature_cols))), None
    if table.shape[1] != len(header):
        raise ValueError("rows and header differ in length")
    X = np.ascontiguousarray(table[:, feature_cols])
    y = table[:, label_col] if label_col is not None else None
    return X, y


def _csv_columns(path, header, label, require_label, hint):
    """(header's names, the label's column index or None) from a CSV's first row; DataError when it is no header.

    ``label`` None: no label column. Missing when ``require_label``: an error ending with ``hint``.
    """
    if not header or not any(cell.strip() for cell in header):
        raise DataError(path, "is empty; a CSV file needs a header row naming its columns")
    header = [cell.strip() for cell in header]
    if all(_is_number(cell) for cell in header):
        raise DataError(
            path, f"has no header row (its first line is all numbers); the first line must name the columns, one of them {label!r}"
        )
    label_col = header.index(label) if label is not None and label in header else None
    if label_col is None and label is not None and require_label:
        raise DataError(path, f"has no column named {label!r} (columns: {_some(header)}); {hint}")
    if label_col is not None and len(header) == 1:
        raise DataError(path, f"has no feature columns besides the label {label!r}")
    return header, label_col


def _row_problem(path, header, feature_cols, line, row):
    """DataError for a CSV row of the wrong length or with a feature that is not a number, else None."""
    if len(row) != len(header):
        return DataError(path, f"line {line} has {len(row)} cells but the header names {len(header)} columns")
    for i in feature_cols:
        if not _is_number(row[i]):
            cell = row[i].strip()
            what = "is empty" if not cell else f"{cell[:40]!r} is not a number"
            return DataError(path, f"line {line}, column {header[i]!r}: {what}")
    return None


def _locate_csv_error(path, header, feature_cols, label_col):
    """The first malformed row or cell, found by a plain pass (only run once parsing has failed)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        next(reader)
        for row in reader:
            line = reader.line_num
            if not row:
                continue
            problem = _row_problem(path, header, feature_cols, line, row)
            if problem is not None:
                return problem
            if label_col is not None and not row[label_col].strip():
                return DataError(path, f"line {line}, column {header[label_col]!r}: the label is empty")
    return DataError(path, "could not be parsed as CSV (comma-separated, double-quoted fields, header row)")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


LOADERS = {".h5": _load_stored, ".hdf5": _load_stored, ".npz": _load_stored, ".csv": _load_csv}


# ---------------------------------------------------------------------------- built-in data


# The course's cat data (not shipped: the tests and benchmarks use them when present).
CAT_FILES = ("train_catvnoncat.h5", "test_catvnoncat.h5")


def cat_data_dir():
    """Where the course's cat files are looked for: $FASTDNN_CAT_DATA, else ../shared/data/catvnoncat
    beside the source checkout (the one place that decides; the tests, tools and asv all ask here)."""
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("FASTDNN_CAT_DATA") or os.path.join(os.path.dirname(checkout), "shared", "data", "catvnoncat")


def builtin_dataset(n_samples=DEFAULT_SAMPLES, n_features=DEFAULT_FEATURES, seed=0):
    """``fastdnn.datasets.make_default_dataset`` in the estimator's layout (a view, no copy), labels 0/1."""
    X, Y = make_default_dataset(n_samples=n_samples, n_features=n_features, seed=seed)
    return Dataset(X.T, Y.ravel(), f"built-in dataset ({n_samples:,} x {n_features}, seed {seed})")


def fingerprint(X, y):
    """A short hex digest of the examples and labels (to tell a checkpoint's data from other data)."""
    digest = hashlib.blake2b(digest_size=16)
    for array in (np.ascontiguousarray(X), np.ascontiguousarray(y)):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


# ---------------------------------------------------------------------------- CSV -> .npy, streaming

CONVERT_CHUNK_BYTES = 8 * 2**20  # float64 bytes of a chunk of rows parsed at once


def convert_csv(src, dst, label="label", labels=None, dtype="float32", chunk_bytes=CONVERT_CHUNK_BYTES):
    """Write the CSV ``src`` as ``.npy`` files in two streaming passes, holding one chunk of rows at a time.

    The features go to ``dst`` as an (n_samples, n_features) array of ``dtype``;
    the label column ``label`` (required; None converts a file without labels,
    every column a feature) to ``labels`` (default ``labels_path_for(dst)``) as
    int64 when every label is an integer, float64 when they are other numbers,
    text otherwise. The CSV rules are ``load_dataset``'s (header row,
    comma-separated, double-quoted fields, numeric features, finite values and
    labels); any problem raises DataError naming the line. Pass 1 checks the
    rows and sizes the outputs; pass 2 parses chunks of at most ``chunk_bytes``
    (of text, and of float64 rows) with numpy's C parser and appends them. The
    outputs are written to new temporary files renamed at the end: a failed run
    leaves nothing and touches no other file. Returns (n_samples, n_features,
    labels path or None).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if not os.path.exists(src):
        raise FileNotFoundError(errno.ENOENT, "no such file", src)
    if not os.path.isfile(src):
        raise DataError(src, "is not a regular file (a device, FIFO or directory); convert reads regular CSV files")
    if os.path.splitext(dst)[1].lower() != ".npy":
        raise DataError(dst, "the output must be a .npy file")
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    header, label_col, rows, kind, width = _scan_csv(src, label)
    feature_cols = [i for i in range(len(header)) if i != label_col]
    labels = None if label_col is None else os.fspath(labels or labels_path_for(dst))
    label_dtype = {"int": np.int64, "float": np.float64}.get(kind, f"<U{max(width, 1)}")
    outputs = [(dst, (rows, len(feature_cols)), np.dtype(dtype))]
    if labels is not None:
        outputs.append((labels, (rows,), np.dtype(label_dtype)))
    files, temps = [], []
    try:
        for path, shape, dt in outputs:
            # A new file of our own (never an existing one, the input included), renamed at the end.
            fd, temp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=os.path.basename(path) + ".",
                                        suffix=".tmp")
            temps.append(temp)
            files.append(os.fdopen(fd, "wb"))
            np.lib.format.write_array_header_1_0(
                files[-1], {"descr": np.lib.format.dtype_to_descr(dt), "fortran_order": False, "shape": shape}
            )
        chunk, written = max(1, chunk_bytes // (8 * len(header))), 0
        for numbers, lines in _csv_chunks(src, chunk, chunk_bytes):
            X, y = _parse_chunk(src, header, feature_cols, label_col, kind, numbers, lines)
            with np.errstate(over="ignore"):  # checked on the next line, with the line and column
                X = np.ascontiguousarray(X, dtype=dtype)
            if not np.isfinite(X).all():
                row, col = np.argwhere(~np.isfinite(X))[0]
                raise DataError(src, f"line {numbers[row]}, column {header[feature_cols[col]]!r}: does not fit "
                                f"{dtype} (convert with --dtype float64)")
            files[0].write(X.data)  # the buffer itself, not a bytes copy
            if labels is not None:
                files[1].write(np.ascontiguousarray(y, dtype=label_dtype).data)
            written += len(lines)
        if written != rows:
            raise DataError(src, f"changed while being converted ({rows} data rows, then {written})")
        for f in files:
            f.close()
        for temp, (path, _, _) in zip(temps, outputs):
            os.chmod(temp, new_file_mode(path))
            os.replace(temp, path)
    except BaseException as exc:
        for f in files:
            with contextlib.suppress(OSError):  # closing flushes: a full disk fails again here
                f.close()
        for temp in temps:
            with contextlib.suppress(OSError):
                os.remove(temp)
        if isinstance(exc, OSError) and exc.filename is None:
            # A full disk or quota raises without a file name: name what was being written.
            written = " and ".join(str(path) for path, _, _ in outputs)
            raise OSError(exc.errno, f"{exc.strerror or exc}; {written} not written", str(dst)) from None
        raise
    return rows, len(feature_cols), labels


def _scan_csv(path, label):
    """Pass 1: the header, the label column, the data rows' count, and the labels' kind ("int", "float", "text")
    and text width; DataError at the first malformed row. Memory does not grow with the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header, label_col = _csv_columns(
                path, next(reader, None), label, True, "name the label column with --label, or convert without labels "
                "(--no-labels)"
            )
            rows, kind, width, line = 0, "int", 0, reader.line_num
            for row in reader:
                if reader.line_num != line + 1:
                    raise DataError(path, f"line {line + 1}: a quoted field spans lines, which convert does not read")
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):  # the cells themselves are checked by pass 2's parser
                    raise _row_problem(path, header, (), line, row)
                rows += 1
                if label_col is not None:
                    cell = row[label_col].strip()
                    if not cell:
                        raise DataError(path, f"line {line}, column {header[label_col]!r}: the label is empty")
                    width = max(width, len(cell))
                    if kind != "text":
                        try:
                            value = float(cell)
                        except ValueError:
                            kind = "text"
                        else:
                            if not math.isfinite(value):
                                raise DataError(path, f"line {line}, column {header[label_col]!r}: the label {cell} is "
                                                "not finite")
                            if kind == "int" and not value.is_integer():
                                kind = "float"
    except UnicodeDecodeError:
        raise DataError(path, "is not UTF-8 text (a CSV file was expected)") from None
    except csv.Error as exc:
        raise DataError(path, f"could not be parsed as CSV ({first_line(exc)})") from None
    if rows == 0:
        raise DataError(path, "has a header but no data rows")
    return header, label_col, rows, kind, width


def _csv_chunks(path, chunk_rows, chunk_chars):
    """(line numbers, lines) chunks of the non-empty data lines after the header: up to chunk_rows lines,
    ending early at chunk_chars characters (long text cells). Empty lines are skipped, as csv does;
    a line of spaces is kept, so the parser reports it."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        next(f, None)
        numbers, lines, chars = [], [], 0
        for number, text in enumerate(f, start=2):
            if not text.strip("\r\n"):
                continue
            numbers.append(number)
            lines.append(text)
            chars += len(text)
            if len(lines) == chunk_rows or chars >= chunk_chars:
                yield numbers, lines
                numbers, lines, chars = [], [], 0
        if lines:
            yield numbers, lines


def _parse_chunk(path, header, feature_cols, label_col, kind, numbers, lines):
    """(X float64, labels or None) of one chunk of CSV lines, with the header's columns; DataError naming the line.

    Numeric labels are parsed with the features in one pass; text labels in a second one.
    """
    # The lines go to numpy's parser as they are: joining them into one io.StringIO held the text
    # four times over (StringIO stores 4 bytes a character) and tripled the peak memory.
    options = dict(delimiter=",", quotechar='"', comments=None, ndmin=2)
    try:
        if label_col is None or kind != "text":
            table = np.loadtxt(lines, dtype=np.float64, **options)
            if table.shape[1] != len(header):
                raise ValueError("rows and header differ in length")
            X, y = table[:, feature_cols], None if label_col is None else table[:, label_col]
        else:
            X = np.loadtxt(lines, dtype=np.float64, usecols=feature_cols, **options)
            y = np.char.strip(np.loadtxt(lines, dtype=str, usecols=[label_col], **options)[:, 0])
    except ValueError:
        raise _locate_chunk_error(path, header, feature_cols, numbers, lines,
                                  label_col if kind != "text" else None) from None
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        raise DataError(path, f"line {numbers[row]}, column {header[feature_cols[col]]!r}: {X[row, col]} is not "
                        "finite; clean or impute the data first")
    return X, y


def _some(names, k=8):
    """A few of many column names, and how many there are."""
    return ", ".join(names) if len(names) <= k else f"{', '.join(names[:k])}, ... ({len(names)} columns)"


def _locate_chunk_error(path, header, feature_cols, numbers, lines, label_col=None):
    for number, row in zip(numbers, csv.reader(lines)):
        problem = _row_problem(path, header, feature_cols, number, row)
        if problem is not None:
            return problem
        if label_col is not None:
            try:
                np.loadtxt([row[label_col]], dtype=np.float64, comments=None)
            except ValueError:
                return DataError(path, f"line {number}, column {header[label_col]!r}: {row[label_col].strip()[:40]!r} "
                                 "is a number to Python but not to numpy's parser; write it plainly (e.g. 10, 1.5)")
    return DataError(path, f"lines {numbers[0]}-{numbers[-1]} could not be parsed as CSV")
