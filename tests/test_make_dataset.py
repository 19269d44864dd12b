"""tools/make_dataset.py: chunked writes give the same data whatever the chunk size, in .npy and HDF5."""

import importlib.util
import os

import numpy as np
import pytest

_spec = importlib.util.spec_from_file_location(
    "make_dataset", os.path.join(os.path.dirname(__file__), "..", "tools", "make_dataset.py")
)
make_dataset = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_dataset)


def test_npy_files_do_not_depend_on_the_chunk_size_and_label_by_the_teacher(tmp_path):
    features = 7
    size = make_dataset.block_rows(features)
    rows = 3 * size + 123  # a partial last block
    a = make_dataset.write(str(tmp_path / "a.npy"), rows, features, "float64", chunk_rows=5000, seed=3)
    b = make_dataset.write(str(tmp_path / "b.npy"), rows, features, "float64", chunk_rows=1, seed=3)
    assert [os.path.basename(p) for p in a] == ["a.npy", "a.labels.npy"]
    Xa, ya = np.load(a[0], mmap_mode="r"), np.load(a[1])
    Xb, yb = np.load(b[0], mmap_mode="r"), np.load(b[1])
    assert Xa.shape == (rows, features) and Xa.dtype == np.float64 and ya.shape == (rows,) and ya.dtype == np.int8
    assert np.array_equal(Xa, Xb) and np.array_equal(ya, yb)
    # Every row is the generator's draw for its block, labelled by the teacher direction.
    block = np.random.default_rng([3, 1]).standard_normal((size, features))
    assert np.array_equal(Xa[size : 2 * size], block)
    w = make_dataset.teacher(features, 3)
    margin = np.abs(np.asarray(Xa) @ w)
    clear = margin > 1e-9 * np.linalg.norm(w) * np.linalg.norm(Xa, axis=1)  # rows not on the boundary
    assert np.array_equal(ya[clear], (np.asarray(Xa) @ w > 0)[clear].astype(np.int8))
    assert 0.3 < ya.mean() < 0.7
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_hdf5_holds_the_same_data_as_npy(tmp_path):
    h5py = pytest.importorskip("h5py")
    rows, features = make_dataset.block_rows(5) + 10, 5
    npy = make_dataset.write(str(tmp_path / "d.npy"), rows, features, "float32", chunk_rows=3000, seed=1)
    (h5,) = make_dataset.write(str(tmp_path / "d.h5"), rows, features, "float32", chunk_rows=1000, seed=1)
    with h5py.File(h5, "r") as f:
        assert f["X"].dtype == np.float32
        assert np.array_equal(f["X"][:], np.load(npy[0])) and np.array_equal(f["y"][:], np.load(npy[1]))


def test_wide_rows_are_drawn_in_smaller_blocks_and_still_do_not_depend_on_the_chunks(tmp_path):
    features = 3000  # 8 MiB of float64 rows is 349 rows: blocks of 349
    size = make_dataset.block_rows(features)
    assert size < make_dataset.BLOCK and size * features * 8 <= make_dataset.BLOCK_BYTES
    a = make_dataset.write(str(tmp_path / "a.npy"), size + 5, features, "float32", chunk_rows=7, seed=2)
    b = make_dataset.write(str(tmp_path / "b.npy"), size + 5, features, "float32", seed=2)
    assert np.array_equal(np.load(a[0]), np.load(b[0])) and np.array_equal(np.load(a[1]), np.load(b[1]))


def test_a_bad_output_name_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"must end in .npy, .h5, .hdf5 or .csv"):
        make_dataset.write(str(tmp_path / "d.txt"), 10, 2)
    assert os.listdir(tmp_path) == []
