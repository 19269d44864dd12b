"""fastdnn.data: every loader on small files written here, every malformed file rejected in one named line.

Each bad file must raise DataError (or FileNotFoundError) whose message names
the file; the command line turns exactly these into its one-line errors.
"""

import os
import sys
from pathlib import Path

import h5py
import numpy as np
import numpy.testing as npt
import pytest

from fastdnn.data import Dataset, builtin_dataset, cat_data_dir, fingerprint, load_dataset, load_or_stream
from fastdnn.errors import DataError, MissingDependencyError
from fastdnn.labels import split_rows
from fastdnn.readers import PIECE_BYTES
from fastdnn.stream import DiskDataset, open_disk_dataset

# The course's files, by the convention of conftest's cat_data fixture (which skips when they are absent).
CAT_FOLDER = Path(cat_data_dir())


def course_images(m, seed=0):
    """uint8 images (m, 4, 4, 3) and 0/1 labels, shaped like the course's cat files."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(m, 4, 4, 3), dtype=np.uint8), rng.integers(0, 2, size=m)


def write_h5(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)
    return path


def write_text(path, text):
    Path(path).write_text(text, encoding="utf-8")
    return path


def assert_names_file(excinfo, path):
    message = str(excinfo.value)
    assert os.fspath(path) in message
    assert "\n" not in message


# ---------------------------------------------------------------------------- HDF5


def test_h5_course_layout_is_flattened_and_scaled_as_the_course_does(tmp_path):
    x, y = course_images(9)
    path = write_h5(tmp_path / "train.h5", train_set_x=x, train_set_y=y, list_classes=np.array([b"non-cat", b"cat"]))
    data = load_dataset(path)
    # The course: train_x = train_set_x.reshape(m, -1).T / 255; the estimator takes its transpose.
    npt.assert_array_equal(data.X, x.reshape(9, -1) / 255.0)
    npt.assert_array_equal(data.y, y)
    assert data.X.flags.c_contiguous and data.X.dtype == np.float64
    assert data.source == "train_set_x/train_set_y"


def test_h5_prefers_the_requested_split_and_falls_back_to_the_other(tmp_path):
    x_train, y_train = course_images(6, seed=1)
    x_test, y_test = course_images(4, seed=2)
    both = write_h5(tmp_path / "both.h5", train_set_x=x_train, train_set_y=y_train, test_set_x=x_test, test_set_y=y_test)
    assert load_dataset(both, prefer="train").n_samples == 6
    assert load_dataset(both, prefer="test").n_samples == 4
    only_test = write_h5(tmp_path / "test.h5", test_set_x=x_test, test_set_y=y_test)
    assert load_dataset(only_test, prefer="train").n_samples == 4


def test_h5_plain_X_y_float_data_is_taken_as_it_is(tmp_path):
    X = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    path = write_h5(tmp_path / "plain.hdf5", X=X, y=np.array([0, 1, 0, 1, 1]))
    data = load_dataset(path)
    npt.assert_array_equal(data.X, X)
    assert data.X.dtype == np.float32


def test_h5_without_the_expected_keys_lists_what_it_holds(tmp_path):
    path = write_h5(tmp_path / "other.h5", images=np.zeros((3, 2)), targets=np.zeros(3))
    with pytest.raises(DataError, match="train_set_x.*it holds: images, targets") as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


def test_h5_with_images_but_no_labels(tmp_path):
    x, _ = course_images(3)
    path = write_h5(tmp_path / "nolabels.h5", test_set_x=x)
    with pytest.raises(DataError, match="no test_set_y") as excinfo:
        load_dataset(path, prefer="test")
    assert_names_file(excinfo, path)
    assert load_dataset(path, require_labels=False).y is None


def test_h5_file_that_is_not_hdf5(tmp_path):
    path = write_text(tmp_path / "fake.h5", "just some text\n")
    with pytest.raises(DataError, match="is not an HDF5 file") as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


def test_h5_file_that_is_truncated(tmp_path):
    x, y = course_images(50)
    path = write_h5(tmp_path / "cut.h5", train_set_x=x, train_set_y=y)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="truncated or corrupted") as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


def test_h5_without_h5py_names_the_extra_to_install(tmp_path, monkeypatch):
    x, y = course_images(3)
    path = write_h5(tmp_path / "train.h5", train_set_x=x, train_set_y=y)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "fastdnn\[h5\]"'):
        load_dataset(path)


def test_course_cat_files_load_as_the_course_prepares_them(cat_data):
    train = load_dataset(CAT_FOLDER / "train_catvnoncat.h5")
    test = load_dataset(CAT_FOLDER / "test_catvnoncat.h5", prefer="test")
    npt.assert_array_equal(train.X, cat_data.train_x.T)
    npt.assert_array_equal(train.y, cat_data.train_y.ravel())
    npt.assert_array_equal(test.X, cat_data.test_x.T)
    assert (train.n_samples, train.n_features, test.n_samples) == (209, 12288, 50)


# ---------------------------------------------------------------------------- npz


def test_npz_X_y_roundtrip_keeps_dtype_and_text_labels(tmp_path):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array(["cat", "dog", "cat", "dog"])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    data = load_dataset(tmp_path / "d.npz")
    npt.assert_array_equal(data.X, X)
    assert data.X.dtype == np.float32
    npt.assert_array_equal(data.y, y)


def test_npz_images_are_flattened_and_integer_features_become_float(tmp_path):
    X = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    np.savez(tmp_path / "d.npz", X=X, y=np.array([0.0, 1.0]))
    data = load_dataset(tmp_path / "d.npz")
    npt.assert_array_equal(data.X, X.reshape(2, 12).astype(np.float64))
    assert data.y.dtype == np.int64  # whole-number float labels are labels, not values


@pytest.mark.parametrize(
    "arrays, match",
    [
        ({"features": np.zeros((2, 2)), "y": np.zeros(2)}, "no array 'X'.*it holds: features, y"),
        ({"X": np.zeros((2, 2))}, "no array 'y'"),
        ({"X": np.zeros(4), "y": np.zeros(4)}, "must be 2-D"),
        ({"X": np.zeros((3, 2)), "y": np.zeros(2)}, "3 examples but 2 labels"),
        ({"X": np.array([[1.0, np.nan]]), "y": np.zeros(1)}, "example 0, feature 1 is nan"),
        ({"X": np.array([["a", "b"]]), "y": np.zeros(1)}, "not numeric"),
    ],
    ids=["no-X", "no-y", "1-D", "length-mismatch", "nan", "text-features"],
)
def test_npz_with_wrong_contents(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=match) as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


def test_npz_with_object_arrays_is_never_unpickled(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, X=np.array([[1, {"a": 1}]], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="Python objects") as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


@pytest.mark.parametrize("damage", ["text", "truncated", "npy"])
def test_npz_that_is_not_an_archive_or_is_damaged(tmp_path, damage):
    path = tmp_path / "d.npz"
    if damage == "text":
        path.write_text("label,x\n1,2\n")
        match = "is not an .npz archive"
    elif damage == "truncated":
        np.savez(path, X=np.zeros((50, 50)), y=np.zeros(50))
        path.write_bytes(path.read_bytes()[:1000])
        match = "truncated or corrupted"
    else:
        with open(path, "wb") as f:
            np.save(f, np.zeros((2, 2)))
        match = "single .npy array"
    with pytest.raises(DataError, match=match) as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


# ---------------------------------------------------------------------------- CSV


def test_csv_numeric_labels_any_column(tmp_path):
    path = write_text(tmp_path / "d.csv", "a,label,b\n1.5,0,2\n-3,1,4e-1\n 5 ,1, 6\n")
    data = load_dataset(path)
    npt.assert_array_equal(data.X, [[1.5, 2], [-3, 0.4], [5, 6]])
    npt.assert_array_equal(data.y, [0, 1, 1])
    assert data.y.dtype == np.int64


def test_csv_text_labels_quotes_and_byte_order_mark(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes('\ufeff"x 1",x2,species\n1,2,setosa\n3,4,"virginica"\n'.encode("utf-8"))
    data = load_dataset(path, label="species")
    npt.assert_array_equal(data.X, [[1, 2], [3, 4]])
    npt.assert_array_equal(data.y, ["setosa", "virginica"])


def test_csv_without_label_column_is_features_only_when_labels_are_optional(tmp_path):
    path = write_text(tmp_path / "d.csv", "a,b\n1,2\n3,4\n")
    data = load_dataset(path, require_labels=False)
    assert data.y is None and data.X.shape == (2, 2)


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b,label\n1,2,0\n3,x,1\n", r"line 3, column 'b': 'x' is not a number"),
        ("a,b,label\n1,,0\n", r"line 2, column 'b': is empty"),
        ("a,b,label\n1,2,0\n3,4\n", r"line 3 has 2 cells but the header names 3 columns"),
        ("a,b,label\n1,2,0\n3,4,1,5\n", r"line 3 has 4 cells but the header names 3 columns"),
        ("a,b,label\n1,2,cat\n3,4,dog,5\n", r"line 3 has 4 cells but the header names 3 columns"),
        ("a,b,label\n1,2,cat\n3,x,dog\n", r"line 3, column 'b': 'x' is not a number"),
        ("a,b,label\n1,2,cat\n3,4,\n", r"line 3, column 'label': the label is empty"),
        ("1,2,0\n3,4,1\n", "no header row"),
        ("a,b,target\n1,2,0\n", r"no column named 'label' \(columns: a, b, target\).*--label"),
        ("label\n0\n1\n", "no feature columns"),
        ("", "is empty"),
        ("a,b,label\n", "no data rows"),
        ("a,b,label\n1,nan,0\n", "example 0, feature 1 is nan"),
    ],
    ids=["text-cell", "empty-cell", "short-row", "long-row", "long-row-text-labels", "text-cell-text-labels", "empty-label", "no-header", "no-label-column",
         "only-label", "empty-file", "header-only", "nan"],
)
def test_csv_malformed(tmp_path, text, match):
    path = write_text(tmp_path / "bad.csv", text)
    with pytest.raises(DataError, match=match) as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


def test_csv_that_is_binary(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x01garbage\x80\x81")
    with pytest.raises(DataError, match="not UTF-8 text") as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


# ---------------------------------------------------------------------------- any file


def test_missing_file_is_file_not_found_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        load_dataset(tmp_path / "absent.csv")
    assert excinfo.value.filename == os.fspath(tmp_path / "absent.csv")


@pytest.mark.parametrize("name, match", [("data.txt", "unknown data format '.txt'"), ("data", "no suffix"), ("dir.csv", "directory")])
def test_unknown_format_or_directory(tmp_path, name, match):
    path = tmp_path / name
    if name == "dir.csv":
        path.mkdir()
    else:
        path.write_text("1,2\n")
    with pytest.raises(DataError, match=match) as excinfo:
        load_dataset(path)
    assert_names_file(excinfo, path)


# ---------------------------------------------------------------------------- built-in data, split, fingerprint


def test_builtin_dataset_is_the_default_dataset_in_the_estimator_layout():
    from fastdnn.datasets import make_default_dataset

    data = builtin_dataset(500, 7, seed=3)
    X, Y = make_default_dataset(500, 7, seed=3)
    # The course's (n_features, m) F-ordered array is used as its C-contiguous transpose, not copied.
    assert data.X.shape == (500, 7) and data.X.flags.c_contiguous and data.X.dtype == np.float32
    assert data.X.base is not None
    npt.assert_array_equal(data.X, X.T)
    npt.assert_array_equal(data.y, Y.ravel())
    assert set(np.unique(data.y)) == {0, 1}


def test_split_rows_is_seeded_disjoint_complete_and_sorted():
    train, held = split_rows(100, 0.2, seed=5)
    assert len(held) == 20 and len(train) == 80
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(100))
    assert (np.diff(train) > 0).all() and (np.diff(held) > 0).all()  # gathered in order: one pass over X
    npt.assert_array_equal(split_rows(100, 0.2, seed=5)[1], held)
    assert not np.array_equal(split_rows(100, 0.2, seed=6)[1], held)
    with pytest.raises(ValueError, match="cannot hold out"):
        split_rows(1, 0.5, seed=0)


def test_fingerprint_tells_data_apart():
    X = np.ones((4, 3), np.float32)
    y = np.array([0, 1, 0, 1])
    base = fingerprint(X, y)
    assert fingerprint(X.copy(), y.copy()) == base
    X2 = X.copy()
    X2[2, 1] = 2
    assert fingerprint(X2, y) != base
    assert fingerprint(X, y[::-1].copy()) != base
    assert fingerprint(X.astype(np.float64), y) != base


def test_a_csv_that_is_a_device_a_fifo_or_one_endless_line_is_refused_by_name(tmp_path, monkeypatch):
    """A .csv linked to /dev/zero was read as one endless line until memory ran out; a FIFO blocked."""
    from fastdnn import data as D

    zero = tmp_path / "zero.csv"
    zero.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="zero.csv: is not a regular file"):
        load_dataset(zero)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="pipe.csv: is not a regular file"):
        load_dataset(fifo)
    monkeypatch.setattr(D, "MAX_HEADER_CHARS", 1000)
    long = tmp_path / "long.csv"
    long.write_text("a," * 2000 + "label\n1," * 1)
    with pytest.raises(DataError, match="long.csv: has a first line longer than 1,000 characters"):
        load_dataset(long)

    def exhausted(*args, **kwargs):
        raise MemoryError

    monkeypatch.setitem(D.LOADERS, ".csv", exhausted)
    ok = tmp_path / "ok.csv"
    ok.write_text("x,label\n1,0\n2,1\n")
    with pytest.raises(DataError, match="ok.csv: is larger than the memory this process can take"):
        load_dataset(ok)


def test_hdf5_text_labels_written_the_ordinary_h5py_way_are_read(tmp_path):
    """h5py writes a list of str as variable-length strings (objects when read): they are text labels."""
    path = tmp_path / "vl.h5"
    with h5py.File(path, "w") as f:
        f["X"] = np.arange(12.0).reshape(6, 2)
        f.create_dataset("y", data=["cat", "dog", "cat", "dog", "cat", "dög"], dtype=h5py.string_dtype())
    data = load_dataset(path)
    assert data.y.dtype.kind == "U" and data.y.tolist() == ["cat", "dog", "cat", "dog", "cat", "dög"]


def test_object_label_arrays_hold_one_kind():
    import fastdnn

    X = np.random.default_rng(0).standard_normal((4, 2))
    with pytest.raises(ValueError, match=r"y mixes text and other labels \(int, str\)"):
        fastdnn.DNNClassifier(max_iter=1).fit(X, np.array([1, "a", 2, "b"], dtype=object))
    est = fastdnn.DNNClassifier(max_iter=1).fit(X, np.array([3, 5, 3, 5], dtype=object))
    assert est.classes_.tolist() == [3, 5] and est.classes_.dtype.kind == "i"


def test_a_csv_line_longer_than_any_row_is_refused_naming_it(tmp_path, monkeypatch):
    from fastdnn import data as D

    monkeypatch.setattr(D, "MAX_HEADER_CHARS", 1000)
    path = tmp_path / "long.csv"
    path.write_text("a,label\n1,0\n" + "2" * 5000 + ",1\n3,0\n")
    with pytest.raises(DataError, match="long.csv: line 3 is longer than 1,000 bytes"):
        load_dataset(path)
    path.write_text("a,label\n1,0\n" + "2" * 5000)  # the last line, never ended
    with pytest.raises(DataError, match="long.csv: line 3 is longer than 1,000 bytes"):
        load_dataset(path)
    path.write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(3000)))
    # Many short lines pass (3000 lines of 4 to 7 bytes: 18 KB, beyond the limit only all together).
    assert load_dataset(path).X.shape == (3000, 1)


# ---------------------------------------------------------------------------- one reader, whole or streamed


def stored_file(folder, case):
    """An .npz or HDF5 file that whole loads and streaming both refuse."""
    if case.startswith("npz"):
        path = folder / "bad.npz"
        arrays = {"npz-no-X": {"features": np.zeros((2, 2)), "y": np.zeros(2)}, "npz-no-y": {"X": np.zeros((2, 2))},
                  "npz-1-D": {"X": np.zeros(4), "y": np.zeros(4)},
                  "npz-objects": {"X": np.array([[1, {"a": 1}]], dtype=object), "y": np.zeros(1)},
                  "npz-text": {"X": np.array([["a", "b"]]), "y": np.zeros(1)}}.get(case)
        if arrays is not None:
            np.savez(path, **arrays)
        elif case == "npz-not-zip":
            path.write_text("label,x\n1,2\n")
        elif case == "npz-npy":
            with open(path, "wb") as f:
                np.save(f, np.zeros((2, 2)))
        else:
            np.savez(path, X=np.zeros((50, 50)), y=np.zeros(50))
            path.write_bytes(path.read_bytes()[:1000])
        return path
    path = folder / "bad.h5"
    if case == "h5-not-hdf5":
        return write_text(path, "just some text\n")
    if case == "h5-no-labels":
        return write_h5(path, train_set_x=np.zeros((3, 2)))
    return write_h5(path, X=np.zeros(3), y=np.zeros(3))


@pytest.mark.parametrize("case", ["npz-no-X", "npz-no-y", "npz-1-D", "npz-objects", "npz-text", "npz-not-zip",
                                  "npz-npy", "npz-truncated", "h5-not-hdf5", "h5-no-labels", "h5-1-D"])
def test_whole_loads_and_streaming_refuse_a_file_in_the_same_words(tmp_path, case):
    """One reader per format: load_dataset reads .npz and HDF5 files as streaming does, so each problem has
    one wording (they had two: 'it holds: features.npy, y.npy' beside 'it holds: features, y')."""
    path = stored_file(tmp_path, case)
    with pytest.raises(DataError) as whole:
        load_dataset(path)
    with pytest.raises(DataError) as streamed:
        open_disk_dataset(path).load()
    assert str(whole.value) == str(streamed.value)
    assert_names_file(whole, path)


def test_whole_loads_give_what_streaming_reads(tmp_path):
    rng = np.random.default_rng(4)
    x, y = course_images(20)
    files = [write_h5(tmp_path / "course.h5", train_set_x=x, train_set_y=y),
             write_h5(tmp_path / "plain.h5", X=rng.standard_normal((20, 3)).astype(np.float32), y=y)]
    np.savez(tmp_path / "ints.npz", X=np.arange(60, dtype=np.int16).reshape(20, 3), y=y)
    np.savez_compressed(tmp_path / "packed.npz", X=rng.standard_normal((20, 3)), y=y)
    files += [tmp_path / "ints.npz", tmp_path / "packed.npz"]
    for path in files:
        whole = load_dataset(path)
        with open_disk_dataset(path) as disk:
            streamed = np.empty_like(whole.X)
            disk.read((0, disk.n_samples), streamed)
        assert whole.X.dtype == disk.dtype and np.array_equal(whole.X, streamed), path
        assert np.array_equal(whole.y, disk.y) and whole.source == disk.source


def test_a_changed_byte_of_a_stored_npz_X_is_refused_by_a_whole_load(tmp_path):
    """np.savez stores X uncompressed and the reader reads it in place, past zipfile: a whole load sums its
    CRC-32 as zipfile would, so a changed byte is refused rather than trained on."""
    X = np.arange(600.0).reshape(100, 6)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=np.arange(100) % 2)
    data = bytearray(path.read_bytes())
    data[data.find(X.tobytes()) + 1000] ^= 1
    path.write_bytes(bytes(data))
    for load in (lambda: load_dataset(path), lambda: open_disk_dataset(path).load()):
        with pytest.raises(DataError, match="d.npz: is truncated or corrupted .*CRC-32") as excinfo:
            load()
        assert_names_file(excinfo, path)


def test_an_npz_X_in_fortran_order_is_read_whole_and_never_streamed(tmp_path):
    X = np.random.default_rng(1).standard_normal((50, 4))
    path = tmp_path / "f.npz"
    np.savez(path, X=np.asfortranarray(X), y=np.arange(50) % 2)
    data = load_dataset(path)
    assert np.array_equal(data.X, X) and data.X.flags.c_contiguous
    with open_disk_dataset(path) as disk:
        assert disk.fits(2**20) and np.array_equal(disk.load(), X)
        with pytest.raises(DataError, match=r"f\.npz: X is stored in Fortran order and larger than the memory budget"):
            disk.fits(X.nbytes - 1)


@pytest.mark.parametrize("kind", ["npz", "npz-compressed", "h5-pixels"])
def test_a_whole_load_holds_the_features_once(tmp_path, kind):
    """A whole load's peak is the features in their compute dtype, plus the reader's scratch (one piece of raw
    rows, converted in place), plus the finite check's mask of one piece of the features; never a second
    full copy of them, nor a full-size mask (the loader's own used to hold both)."""
    import tracemalloc

    m, n = 4096, 1024  # 32 MiB of float64 features
    rng = np.random.default_rng(0)
    y = np.arange(m) % 2
    if kind == "h5-pixels":
        raw = rng.integers(0, 256, (m, n), dtype=np.uint8)
        path = write_h5(tmp_path / "p.h5", train_set_x=raw, train_set_y=y)
        scratch = min(raw.nbytes, PIECE_BYTES)
    else:
        raw = rng.standard_normal((m, n))
        path = tmp_path / "d.npz"
        (np.savez_compressed if kind == "npz-compressed" else np.savez)(path, X=raw, y=y)
        scratch = 0
    features = m * n * 8
    mask = min(m, PIECE_BYTES // (n * raw.itemsize)) * n  # one piece's rows, a byte per value
    tracemalloc.start()
    try:
        data = load_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert data.X.nbytes == features <= peak  # the measure sees numpy's arrays
    assert peak <= features + scratch + mask + 2**20, (peak, features, scratch, mask)  # 1 MiB: labels, headers


# ---------------------------------------------------------------------------- in memory or streamed


def test_one_decision_reads_data_whole_or_gives_them_to_stream(tmp_path):
    X = np.random.default_rng(2).standard_normal((100, 8))
    y = np.arange(100) % 3
    np.save(tmp_path / "d.npy", X)
    np.save(tmp_path / "d.labels.npy", y)
    path = tmp_path / "d.npy"
    whole = load_or_stream(path, memory=X.nbytes // 2, dtype=np.float32)
    assert isinstance(whole, Dataset) and whole.X.dtype == np.float32 and np.array_equal(whole.X, X.astype(np.float32))
    assert np.array_equal(whole.y, y) and whole.describe() == f"{path} (features, labels from d.labels.npy)"
    streamed = load_or_stream(path, memory=X.nbytes // 2 - 1, dtype=np.float32)
    assert isinstance(streamed, DiskDataset) and streamed.dtype == np.float32
    # A DiskDataset already open, with other labels; its own dtype when none is asked.
    other = load_or_stream(open_disk_dataset(path), labels=y[::-1], memory=X.nbytes)
    assert isinstance(other, Dataset) and other.X.dtype == np.float64 and np.array_equal(other.y, y[::-1])
    assert isinstance(load_or_stream(open_disk_dataset(path), memory=X.nbytes - 1), DiskDataset)
    # A CSV is read whole whatever the budget (it is converted, not streamed), its label column named.
    csv = write_text(tmp_path / "d.csv", "a,kind\n1,0\n2,1\n")
    data = load_or_stream(csv, memory=1, dtype=np.float32, label="kind")
    assert isinstance(data, Dataset) and data.X.dtype == np.float32 and data.y.tolist() == [0, 1]
    with pytest.raises(DataError, match="d.csv: holds its own labels"):
        load_or_stream(csv, labels=y, memory=2**20)


def test_the_built_in_dataset_has_one_size_the_readme_states():
    import inspect

    from fastdnn import datasets

    for function in (datasets.make_default_dataset, builtin_dataset):
        defaults = inspect.signature(function).parameters
        assert (defaults["n_samples"].default, defaults["n_features"].default) == (
            datasets.DEFAULT_SAMPLES, datasets.DEFAULT_FEATURES), function
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"({datasets.DEFAULT_SAMPLES:,} examples x {datasets.DEFAULT_FEATURES} features" in readme


@pytest.mark.parametrize("shape", [(-3, 4), (1, 2**62, 3)], ids=["negative", "past-64-bits"])
def test_a_header_declaring_an_impossible_shape_is_refused_by_name(tmp_path, shape):
    """A .npy header may declare any integers: a negative count, or a product past 64 bits (numpy's product
    wraps to a negative row length), was taken as a shape until an allocation failed with a bare ValueError."""
    import zipfile

    npy = tmp_path / "d.npy"
    with open(npy, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": shape})
        f.write(bytes(96))
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.write(npy, "X.npy")
    # Without labels (as prediction reads them), whose count would have refused the shape by chance.
    for path, load in ((npy, lambda p: open_disk_dataset(p, require_labels=False).load()),
                       (tmp_path / "d.npz", lambda p: load_dataset(p, require_labels=False))):
        with pytest.raises(DataError) as excinfo:
            load(path)
        assert_names_file(excinfo, path)
