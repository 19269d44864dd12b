"""fastdnn convert / data.convert_csv: a CSV as .npy features and labels, in chunks, equal to loading it whole."""

import os

import numpy as np
import pytest

from fastdnn import cli
from fastdnn.data import convert_csv, labels_path_for, load_dataset
from fastdnn.errors import DataError


def write_csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


def numeric_csv(tmp_path, m=50, n=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = rng.integers(0, 3, m)
    rows = [[*(repr(float(v)) for v in X[i, :2]), int(y[i]), *(repr(float(v)) for v in X[i, 2:])] for i in range(m)]
    return write_csv(tmp_path / "d.csv", ["a", "b", "label", "c", "d"], rows)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_chunked_conversion_equals_loading_the_csv_whole(tmp_path, dtype):
    src = numeric_csv(tmp_path)
    whole = load_dataset(src)
    # About 3 rows per chunk: the rows cross many chunk boundaries.
    rows, features, labels = convert_csv(src, tmp_path / "d.npy", dtype=dtype, chunk_bytes=3 * 8 * 5)
    assert (rows, features, labels) == (50, 4, str(tmp_path / "d.labels.npy"))
    X = np.load(tmp_path / "d.npy", mmap_mode="r")
    assert X.dtype == np.dtype(dtype) and np.array_equal(X, whole.X.astype(dtype))
    y = np.load(labels)
    assert y.dtype == np.int64 and np.array_equal(y, whole.y)
    assert sorted(os.listdir(tmp_path)) == ["d.csv", "d.labels.npy", "d.npy"]


def test_text_labels_and_blank_lines(tmp_path):
    src = tmp_path / "t.csv"
    src.write_text('x1,x2,label\n1.5,2,"cat"\n\n-3,4e-2,dog\n0,0,"non cat"\n')
    convert_csv(src, tmp_path / "t.npy", dtype="float64", chunk_bytes=8 * 3)
    assert np.array_equal(np.load(tmp_path / "t.npy"), load_dataset(src).X)
    assert np.load(tmp_path / "t.labels.npy").tolist() == ["cat", "dog", "non cat"] == load_dataset(src).y.tolist()


def test_a_bad_cell_in_a_later_chunk_is_named_by_its_line_and_nothing_is_written(tmp_path):
    src = numeric_csv(tmp_path)
    lines = src.read_text().splitlines()
    lines[40] = lines[40].replace(lines[40].split(",")[3], "oops")  # line 41 of the file, column c
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 41, column 'c': 'oops' is not a number"):
        convert_csv(src, tmp_path / "d.npy", chunk_bytes=4 * 8 * 5)
    assert sorted(os.listdir(tmp_path)) == ["d.csv"]


def test_rows_of_the_wrong_length_and_missing_values_are_refused(tmp_path):
    short = write_csv(tmp_path / "s.csv", ["a", "label"], [[1, 0], [2], [3, 1]])
    with pytest.raises(DataError, match="line 3 has 1 cells but the header names 2 columns"):
        convert_csv(short, tmp_path / "s.npy")
    nan = write_csv(tmp_path / "n.csv", ["a", "label"], [[1, 0], ["nan", 1]])
    with pytest.raises(DataError, match="line 3, column 'a': nan is not finite"):
        convert_csv(nan, tmp_path / "n.npy")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="is not a regular file"):
        convert_csv(fifo, tmp_path / "p.npy")


def test_the_command_converts_and_refuses_to_overwrite(tmp_path, capsys):
    src = numeric_csv(tmp_path)
    out = tmp_path / "big.npy"
    assert cli.main(["convert", str(src), str(out)]) == 0
    said = capsys.readouterr().out
    assert "50 examples x 4 features, float32" in said and labels_path_for(out) in said
    assert np.load(out).dtype == np.float32
    assert cli.main(["convert", str(src), str(out)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--force" in err[0]
    assert cli.main(["convert", str(src), str(out), "--force", "--dtype", "float64"]) == 0
    assert np.load(out).dtype == np.float64


def test_an_input_named_like_the_temporary_output_is_left_alone(tmp_path):
    src = numeric_csv(tmp_path)
    odd = tmp_path / "x.npy.tmp"
    odd.write_text(src.read_text())
    convert_csv(odd, tmp_path / "x.npy")
    assert odd.read_text() == src.read_text() and np.load(tmp_path / "x.npy").shape == (50, 4)


def test_labels_and_values_that_do_not_fit_are_refused_with_their_line(tmp_path):
    nan_label = write_csv(tmp_path / "l.csv", ["a", "label"], [[1, 0], [2, "nan"]])
    with pytest.raises(DataError, match="line 3, column 'label': the label nan is not finite"):
        convert_csv(nan_label, tmp_path / "l.npy")
    big = write_csv(tmp_path / "b.csv", ["a", "label"], [[1, 0], ["1e39", 1]])
    with pytest.raises(DataError, match=r"line 3, column 'a': does not fit float32 \(convert with --dtype float64\)"):
        convert_csv(big, tmp_path / "b.npy")
    convert_csv(big, tmp_path / "b.npy", dtype="float64")  # it fits float64
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="is empty"):
        convert_csv(empty, tmp_path / "e.npy")
    assert sorted(os.listdir(tmp_path)) == ["b.csv", "b.labels.npy", "b.npy", "e.csv", "l.csv"]


def test_a_missing_label_column_is_an_error_unless_there_are_no_labels(tmp_path, capsys):
    src = write_csv(tmp_path / "u.csv", ["a", "Label"], [[1, 0], [2, 1]])
    with pytest.raises(DataError, match="has no column named 'label' .*--no-labels"):
        convert_csv(src, tmp_path / "u.npy")
    out = tmp_path / "u.npy"
    assert cli.main(["convert", str(src), str(out), "--label", "Label"]) == 0
    assert os.path.exists(labels_path_for(out))
    # Converting again without labels replaces the features and removes the labels that no longer belong to them.
    assert cli.main(["convert", str(src), str(out), "--no-labels", "--force"]) == 0
    assert np.load(out).shape == (2, 2) and not os.path.exists(labels_path_for(out))
    capsys.readouterr()


def test_long_text_labels_end_chunks_early_and_convert_the_same(tmp_path):
    src = write_csv(tmp_path / "t.csv", ["x", "label"], [[i, "c" * 100 + str(i % 3)] for i in range(40)])
    convert_csv(src, tmp_path / "t.npy", dtype="float64", chunk_bytes=500)  # about 5 lines of text a chunk
    whole = load_dataset(src)
    assert np.array_equal(np.load(tmp_path / "t.npy"), whole.X)
    assert np.load(tmp_path / "t.labels.npy").tolist() == whole.y.tolist()


def test_a_full_disk_during_convert_names_the_files_and_leaves_none(tmp_path, monkeypatch):
    """Disk full while converting gave "[Errno 28] No space left on device" without a path."""
    import errno

    from fastdnn.cli.common import describe
    from fastdnn.data import convert_csv

    src = tmp_path / "d.csv"
    src.write_text("a,b,label\n" + "".join(f"{i},{i + 1},{i % 2}\n" for i in range(50)))
    real = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def close(self):
            self.f.close()

        def __getattr__(self, name):
            return getattr(self.f, name)

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: Full(real(fd, mode)))
    with pytest.raises(OSError) as info:
        convert_csv(src, tmp_path / "d.npy", labels=tmp_path / "d.labels.npy")
    assert describe(info.value).startswith(f"{tmp_path / 'd.npy'}: No space left on device; {tmp_path / 'd.npy'} and")
    assert sorted(os.listdir(tmp_path)) == ["d.csv"]


def test_converted_files_get_the_permissions_every_writer_gives(tmp_path):
    """The umask's for new files (mkstemp's owner-only 0600 would lock out the group a model file allows),
    an existing file's own when it is replaced, as fastdnn.io's writers do."""
    src = numeric_csv(tmp_path)
    out = tmp_path / "d.npy"
    old = os.umask(0o027)
    try:
        convert_csv(src, out)
        assert [os.stat(p).st_mode & 0o777 for p in (out, labels_path_for(out))] == [0o640, 0o640]
        os.chmod(out, 0o604)
        convert_csv(src, out)
        assert [os.stat(p).st_mode & 0o777 for p in (out, labels_path_for(out))] == [0o604, 0o640]
    finally:
        os.umask(old)
