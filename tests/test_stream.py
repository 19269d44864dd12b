"""Training on data streamed from disk (fastdnn.stream and the engine's streamed epochs).

The claim: an epoch over blocks read from disk is the in-memory epoch fed the same row order, bit for
bit in float64, because each block is trained by the same compiled loop continuing the same running
cost, minibatch boundaries never straddle blocks (blocks are whole minibatches, the short one last),
and the row order is ``epoch_blocks``' documented function of the generator.
"""

import os
import signal
import threading

import numpy as np
import pytest

from fastdnn import DNNClassifier
from fastdnn.data import load_dataset
from fastdnn.engine import Engine
from fastdnn.errors import DataError, DivergenceError, TrainingInterrupted
from fastdnn.labels import class_targets
from fastdnn.io import state_arrays, state_from_arrays
from fastdnn.kernels import compiled
from fastdnn.kernels import network as N
from fastdnn.pipeline import activation_codes, initialize_parameters
from fastdnn.stream import Feed, epoch_blocks, open_disk_dataset, parse_memory

from conftest import CAT_FOLDER

M, N0 = 1003, 12  # 1003 rows: blocks of 96 leave a short last block of 43 rows, and a short last batch


def write_npy(folder, name, X, y):
    path = os.path.join(folder, name)
    np.save(path, X)
    np.save(os.path.join(folder, name[:-4] + ".labels.npy"), y)
    return path


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((M, N0))
    y = (X @ rng.standard_normal(N0) > 0).astype(np.int8)
    return X, y, write_npy(tmp_path, "d.npy", X, y)


def in_memory_order(seed, m, block_rows, epochs):
    """The row order of ``epochs`` streamed epochs, drawn as the engine draws it."""
    rng = np.random.default_rng(seed)
    orders = []
    for _ in range(epochs):
        order = []
        for first, stop in epoch_blocks(rng, m, block_rows, shuffle=True):
            order.append(first + rng.permutation(stop - first))
        orders.append(np.concatenate(order))
    return np.stack(orders)


def test_epoch_blocks_documents_what_it_returns():
    """Its docstring's examples run: it said 3-tuples (first, stop, order within the block) and returns pairs."""
    import doctest

    (test,) = doctest.DocTestFinder().find(epoch_blocks, "epoch_blocks", globs={"np": np, "epoch_blocks": epoch_blocks})
    assert test.examples and doctest.DocTestRunner().run(test).failed == 0


def test_epoch_blocks_is_the_documented_order():
    rng = np.random.default_rng(0)
    spans = epoch_blocks(rng, 1003, 96, shuffle=True)
    assert spans[-1] == (960, 1003)  # the short block comes last
    assert sorted(spans) == [(k * 96, min(1003, (k + 1) * 96)) for k in range(11)]
    assert [s for s, _ in spans[:-1]] != sorted(s for s, _ in spans[:-1])  # shuffled
    assert epoch_blocks(rng, 1003, 96, shuffle=False) == sorted(spans)
    # One block draws nothing here: its epoch is the in-memory one, one rng.permutation(m).
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    assert epoch_blocks(a, 50, 64, shuffle=True) == [(0, 50)]
    assert a.bit_generator.state == b.bit_generator.state


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_streamed_epochs_equal_in_memory_training_in_the_same_order_bit_for_bit(data, optimizer, l2, output):
    X, y, path = data
    y3 = np.asarray(y) + (X[:, 0] > 1)  # three classes for the softmax
    labels = y if output == "sigmoid" else y3
    n_classes = 2 if output == "sigmoid" else 3
    dims = [N0, 16, 8, 1 if n_classes == 2 else 3]
    batch, block, epochs, seed = 32, 96, 3, 11
    if output == "softmax":
        np.save(path[:-4] + ".labels.npy", labels)
    params = dict(optimizer=optimizer, learning_rate=0.01, lambd=l2, mini_batch_size=batch)
    streamed = initialize_parameters(dims, "he", 1, np.float64)
    engine = Engine(streamed, output=output, seed=seed, **params)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), n_classes, class_targets, np.float64, block)
        costs = engine.train(feed, None, epochs)
        feed.close()

    # The same run in memory: the kernel over all of X, fed the streamed row order.
    theta = initialize_parameters(dims, "he", 1, np.float64).flat
    Y = class_targets(labels.astype(np.int64), n_classes)
    A = np.empty(batch * sum(dims[1:]))
    work = N.Workspace(np.empty((batch, N0)), np.empty((batch, dims[-1])), A, np.empty_like(A), np.empty_like(theta))
    state = np.zeros(2 * theta.size)
    expected = np.zeros(epochs)
    args = (X, Y, theta, np.array(dims, np.int64), *activation_codes("relu", output), 0, engine.opt, engine.hyper,
            engine.lambd, state, 0, in_memory_order(seed, M, block, epochs), batch, epochs, expected, work)
    assert compiled(N.train, args, "train")(*args)[2] == N.STOP_NONE
    assert np.array_equal(streamed.flat, theta)
    assert np.array_equal(engine.state.optimizer_state, state)
    assert np.array_equal(costs, expected / M)


def test_one_block_is_the_in_memory_path(data):
    X, y, path = data
    kw = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0, batch_size=50)
    a = DNNClassifier(**kw).fit(X, y)
    b = DNNClassifier(**kw, memory="1GB").fit(path, None)
    assert np.array_equal(a.parameters_.flat, b.parameters_.flat)
    assert a.loss_curve_ == b.loss_curve_


def test_a_training_split_streams_the_same_rows(data):
    """rows= (early stopping's and the command's split) over blocks of the chosen rows equals that split in memory
    fed the same order: the test of row selection inside blocks that skip held-out rows."""
    X, y, path = data
    rows = np.sort(np.random.default_rng(2).choice(M, 700, replace=False))
    dims = [N0, 8, 1]
    engine = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=4, optimizer="adam", learning_rate=0.01,
                    mini_batch_size=20)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 60, rows=rows, batch=20)
        assert feed.block_rows == 40  # 60 x 700 / 1003 x 0.97 = 40.6, down to whole batches of 20
        engine.train(feed, None, 2)
        feed.close()
    reference = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=4, optimizer="adam", learning_rate=0.01,
                       mini_batch_size=20)
    order = in_memory_order(4, rows.size, 40, 2)
    Xs, Ys = X[rows], class_targets(y[rows].astype(np.int64), 2)
    for epoch in order:  # each epoch's order as a one-epoch in-memory run over the split reordered
        theta = reference.state.parameters.flat
        A = np.empty(20 * 9)
        work = N.Workspace(np.empty((20, N0)), np.empty((20, 1)), A, np.empty_like(A), np.empty_like(theta))
        args = (Xs, Ys, theta, reference.dims, *reference.codes, 0, reference.opt, reference.hyper, None,
                reference.state.optimizer_state, reference.state.step, epoch.reshape(1, -1), 20, 1, np.zeros(1), work)
        _, reference.state.step, _ = compiled(N.train, args, "train")(*args)
    assert np.array_equal(engine.state.parameters.flat, reference.state.parameters.flat)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_full_batch_over_blocks_is_full_batch_gradient_descent(data, optimizer):
    """The gradient summed over blocks equals the whole batch's up to summation order: float64 sums of ~1000
    terms differ by at most ~1000 eps relative per step; through 5 steps of lr 0.1 on a smooth network that
    stays far inside 1e-9 relative."""
    X, y, path = data
    kw = dict(hidden_layer_sizes=(16, 8), max_iter=5, random_state=0, batch_size=None, optimizer=optimizer,
              learning_rate=0.1, l2=0.1)
    a = DNNClassifier(**kw).fit(X, y)
    b = DNNClassifier(**kw, memory="1MB")
    b.fit(path, None)
    assert b.engine_.state.step == 5
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(b.parameters_.flat, a.parameters_.flat, rtol=1e-9, atol=1e-12)


def test_shards_form_one_dataset(tmp_path, data):
    X, y, path = data
    folder = tmp_path / "shards"
    folder.mkdir()
    write_npy(folder, "part-0.npy", X[:400], y[:400])
    np.savez(folder / "part-1.npz", X=X[400:800], y=y[400:800])
    write_npy(folder, "part-2.npy", X[800:], y[800:])
    with open_disk_dataset(folder) as shards:
        assert shards.n_samples == M and np.array_equal(shards.load(), X) and np.array_equal(shards.y, y)
        rows = np.array([3, 399, 400, 401, 799, 800, 1002])
        assert np.array_equal(shards.load(rows=rows), X[rows])
    # These data fit any --memory: blocks of 128 rows (spanning shards) are forced through a Feed directly.
    for source in (path, str(folder)):
        engine = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32,
                        optimizer="adam", learning_rate=0.01)
        with open_disk_dataset(source) as disk:
            feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
            engine.train(feed, None, 2)
            feed.close()
        if source == path:
            single = engine.state.parameters.flat.copy()
    assert np.array_equal(single, engine.state.parameters.flat)


def test_a_shard_that_does_not_match_is_refused_by_name(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_npy(folder, "a.npy", np.zeros((5, 3)), np.zeros(5))
    write_npy(folder, "b.npy", np.zeros((5, 4)), np.zeros(5))
    with pytest.raises(DataError, match=r"b\.npy: is a shard of 4 features"):
        open_disk_dataset(folder)
    write_npy(folder, "b.npy", np.zeros((5, 3), np.float32), np.zeros(5))
    with pytest.raises(DataError, match=r"b\.npy: is a shard of 3 features of float32"):
        open_disk_dataset(folder)


def test_bad_files_are_refused_with_their_name(tmp_path, data):
    X, y, path = data
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 8)
    with pytest.raises(DataError, match=r"d\.npy: is truncated"):
        open_disk_dataset(path)
    bad = X.copy()
    bad[700, 3] = np.nan
    p = write_npy(tmp_path, "nan.npy", bad, y)
    with open_disk_dataset(p) as disk, pytest.raises(DataError, match=r"nan\.npy: example 700, feature 3 is nan"):
        disk.load()
    # A compressed .npz is read whole when it fits, and refused by name when it would have to stream.
    np.savez_compressed(tmp_path / "c.npz", X=np.tile(X, (20, 1)), y=np.tile(y, 20))
    with open_disk_dataset(tmp_path / "c.npz") as disk:
        assert disk.fits(2**21) and np.array_equal(disk.load(), np.tile(X, (20, 1)))
        with pytest.raises(DataError, match=r"c\.npz: X is compressed .* larger than the memory budget"):
            disk.fits(2**20)
    os.mkfifo(tmp_path / "fifo.npy")
    with pytest.raises(DataError, match=r"fifo\.npy: is not a regular file"):
        open_disk_dataset(tmp_path / "fifo.npy")
    np.save(tmp_path / "short.npy", X)
    np.save(tmp_path / "short.labels.npy", y[:-1])
    with pytest.raises(DataError, match=f"has {M} examples but {M - 1} labels"):
        open_disk_dataset(tmp_path / "short.npy")
    with pytest.raises(DataError, match=r"no such labels file"):
        open_disk_dataset(p, labels=tmp_path / "missing.npy")


def on_each_read(monkeypatch, path, call):
    """``call(position, nbytes)`` as each read of ``path``'s rows begins, before it: the readers read a file's
    rows with os.preadv, one call a block of the small files here (their blocks are far below a piece)."""
    inode, real = os.stat(path).st_ino, os.preadv

    def preadv(fd, buffers, position):
        if os.fstat(fd).st_ino == inode:
            call(position, sum(len(b) for b in buffers))
        return real(fd, buffers, position)

    monkeypatch.setattr(os, "preadv", preadv)


def at_read(monkeypatch, path, at, action):
    """Runs ``action`` once, when the feed starts reading block ``at`` of ``path`` (on the reader thread): the
    reader opens the file for each block's read (no file stays open between reads)."""
    real, calls = os.open, []

    def opening(name, *args, **kwargs):
        if os.path.realpath(name) == os.path.realpath(path):
            calls.append(name)
            if len(calls) == at:
                action()
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)


@pytest.mark.parametrize("change", ["truncated", "replaced"])
def test_a_file_changed_during_training_stops_it_with_its_name(data, change, monkeypatch):
    X, y, path = data

    def act():
        if change == "truncated":
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)
        else:
            os.replace(write_npy(os.path.dirname(path), "other.npy", X, y), path)

    engine = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        at_read(monkeypatch, path, 3, act)
        with pytest.raises(DataError, match=r"d\.npy: (changed|was replaced)"):
            engine.train(feed, None, 2)
        feed.close()


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals go to the main thread")
@pytest.mark.parametrize("batch", [32, None])
def test_an_interrupted_streamed_epoch_resumes_exactly_from_its_saved_state(tmp_path, data, batch, monkeypatch):
    """Ctrl-C mid-epoch is taken at the end of a block; the saved state holds the block order and position
    (and for full batch the gradient summed so far), and a run resumed from it ends bit for bit where the
    uninterrupted run does."""
    X, y, path = data
    dims = [N0, 8, 1]
    options = dict(mini_batch_size=batch, optimizer="adam", learning_rate=0.01, lambd=0.1)

    def engine(state=None, flat=None):
        parameters = initialize_parameters(dims, "he", 1, np.float64)
        if flat is not None:
            parameters.flat[:] = flat
            state = state_from_arrays(parameters, state)
        return Engine(parameters, seed=3, state=state, **options)

    def feed(disk, interrupt_at=None):
        f = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        if interrupt_at:
            at_read(monkeypatch, path, interrupt_at, lambda: os.kill(os.getpid(), signal.SIGINT))
        return f

    with open_disk_dataset(path) as disk:
        whole = engine()
        f = feed(disk)
        whole.train(f, None, 3)
        f.close()

        first = engine()
        f = feed(disk, interrupt_at=13)  # block 13 of 24 is read: the run stops before training it
        with pytest.raises(TrainingInterrupted):
            first.train(f, None, 3)
        f.close()
        position = first.state.stream
        assert first.state.epoch == 1 and position.next == 4 and first.state.in_progress
        np.savez(tmp_path / "state.npz", flat=first.state.parameters.flat, **state_arrays(first.state))
        with np.load(tmp_path / "state.npz") as saved:
            arrays = dict(saved)
        resumed = engine(arrays, arrays.pop("flat"))
        assert resumed.state.stream.next == 4
        f = feed(disk)
        resumed.train(f, None, 2)
        f.close()
    assert np.array_equal(resumed.state.parameters.flat, whole.state.parameters.flat)
    assert resumed.state.costs == whole.state.costs and resumed.state.step == whole.state.step
    assert resumed.state.stream is None


def test_divergence_mid_epoch_leaves_the_epochs_start(data):
    X, y, path = data
    engine = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32,
                    learning_rate=1e30)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        start = engine.state.parameters.flat.copy()
        with pytest.raises(DivergenceError) as info:
            engine.train(feed, None, 3)
        feed.close()
    assert info.value.epoch == engine.state.epoch
    if engine.state.epoch == 0:
        assert np.array_equal(engine.state.parameters.flat, start)
    assert engine.state.stream is None and np.isfinite(engine.state.parameters.flat).all()


def test_memory_sizes():
    assert parse_memory("2GB") == 2 * 2**30 and parse_memory("512MiB") == 512 * 2**20 and parse_memory(2**21) == 2**21
    for bad in ("lots", "10", "-1GB"):
        with pytest.raises(ValueError):
            parse_memory(bad)
    with pytest.raises(ValueError, match="memory"):
        DNNClassifier(memory="lots").fit(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.skipif(not (CAT_FOLDER / "train_catvnoncat.h5").exists(), reason="the course's cat data are not here")
def test_the_course_hdf5_streams_as_it_loads():
    """Integer pixels are scaled by 1/255 in float64 as load_dataset does, block by block."""
    path = CAT_FOLDER / "train_catvnoncat.h5"
    whole = load_dataset(path)
    with open_disk_dataset(path) as disk:
        assert np.array_equal(disk.load(), whole.X) and np.array_equal(disk.y, whole.y)
        rows = np.arange(3, 209, 7)
        out = np.empty((rows.size, disk.n_features), np.float32)
        disk.read(rows, out)
        assert np.array_equal(out, whole.X[rows].astype(np.float32))


def test_the_course_model_trains_on_disk_data(data):
    """fastdnn.model with X a path: the file's rows are examples, Y class indices (here the labels beside it);
    data that fit are the in-memory run exactly, larger ones stream (full batch over blocks: equal to rounding)."""
    import fastdnn

    X, y, path = data
    kw = dict(layers_dims=[N0, 8, 1], num_epochs=4, learning_rate=0.05, seed=2)
    expected, costs = fastdnn.model(X.T, y.reshape(1, -1), **kw)
    whole, whole_costs = fastdnn.model(path, None, **kw)
    assert np.array_equal(whole.flat, expected.flat) and whole_costs == costs
    # 20 x the rows (1.9 MB) stream through 1MB in blocks of 5,041 rows; the full-batch gradient summed over
    # blocks differs from the whole batch's by summation order only (float64, 4 steps: far inside 1e-12).
    big_X = np.tile(X, (20, 1))
    big = write_npy(os.path.dirname(path), "big.npy", big_X, np.tile(y, 20))
    expected, costs = fastdnn.model(big_X.T, np.tile(y, 20).reshape(1, -1), **kw)
    streamed, streamed_costs = fastdnn.model(big, None, **kw, memory="1MB")
    np.testing.assert_allclose(streamed_costs, costs, rtol=1e-12)
    np.testing.assert_allclose(streamed.flat, expected.flat, rtol=1e-10, atol=1e-13)
    with pytest.raises(ValueError, match=r"class index in \[0, 2\)"):
        fastdnn.model(path, np.full(M, 3), **kw)


# ---------------------------------------------------------------------------- the command


def run_cli(capsys, *argv):
    from fastdnn import cli

    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def big_npy(tmp_path):
    """30,000 x 16 float32 (1.9 MB): more than --memory 1MB, so the command streams it (buffers of 7,680 rows)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30_000, 16)).astype(np.float32)
    y = np.where(X @ rng.standard_normal(16) > 0, "cat", "dog")
    np.save(tmp_path / "big.npy", X)
    np.save(tmp_path / "labels.npy", y)
    return tmp_path / "big.npy", tmp_path / "labels.npy", X, y


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals go to the main thread")
def test_the_command_streams_and_a_ctrl_c_mid_epoch_checkpoints_a_run_that_resumes_exactly(big_npy, tmp_path, capsys,
                                                                                         monkeypatch):
    path, labels, X, y = big_npy
    options = ["--data", path, "--labels", labels, "--memory", "1MB", "--layers", "8", "--batch-size", 64,
               "--epochs", 3, "--quiet", "--seed", 4]
    whole = tmp_path / "whole.npz"
    status, out, err = run_cli(capsys, "train", *options, "--out", whole)
    assert status == 0, err
    assert "streaming from disk: 1.8 MiB of float32 features, more than --memory 1.0 MiB: two buffers of 7,680 rows" in out

    # Epoch 2's second block (5 blocks an epoch): stops before training it.
    at_read(monkeypatch, path, 7, lambda: os.kill(os.getpid(), signal.SIGINT))
    parted, ckpt = tmp_path / "parted.npz", tmp_path / "parted.ckpt.npz"
    status, out, err = run_cli(capsys, "train", *options, "--out", parted, "--checkpoint-every", 5)
    monkeypatch.undo()
    assert status == 130 and f"checkpoint written after 1 epochs and 1 of the next epoch's 5 blocks: {ckpt}" in err, err
    assert not parted.exists()
    status, out, err = run_cli(capsys, "train", "--resume", ckpt, "--quiet")
    assert status == 0, err
    with np.load(whole) as a, np.load(parted) as b:
        for key in ("W1", "b1", "W2", "b2", "loss_curve", "classes"):
            assert np.array_equal(a[key], b[key]), key


def test_the_command_refuses_bad_streaming_input_in_one_line(big_npy, tmp_path, capsys):
    path, labels, X, y = big_npy
    status, _, err = run_cli(capsys, "train", "--data", tmp_path / "missing.npy", "--quiet")
    assert status != 0 and len(err.strip().splitlines()) == 1 and "missing.npy" in err
    status, _, err = run_cli(capsys, "train", "--data", path, "--labels", tmp_path / "nope.npy", "--quiet")
    assert status != 0 and len(err.strip().splitlines()) == 1 and "nope.npy" in err, err
    folder = tmp_path / "shards"
    folder.mkdir()
    np.save(folder / "a.npy", X[:100])
    np.save(folder / "a.labels.npy", y[:100])
    np.save(folder / "b.npy", X[:100, :5])
    np.save(folder / "b.labels.npy", y[:100])
    status, _, err = run_cli(capsys, "train", "--data", folder, "--quiet")
    assert status != 0 and len(err.strip().splitlines()) == 1 and "b.npy: is a shard of 5 features" in err, err
    status, _, err = run_cli(capsys, "train", "--data", path, "--labels", labels, "--memory", "lots", "--quiet")
    assert status != 0 and "--memory" in err and "lots" in err, err


def test_predict_and_evaluate_read_npy_data_a_block_at_a_time(big_npy, tmp_path, capsys):
    """A model trained with --memory 1MB predicts a 1.9 MB .npy in blocks; the predictions are those of the
    array in memory, and a .npy without labels beside it can be predicted."""
    from fastdnn.estimator import load_model

    path, labels, X, y = big_npy
    model = tmp_path / "m.npz"
    assert run_cli(capsys, "train", "--data", path, "--labels", labels, "--memory", "1MB", "--layers", "8",
                   "--epochs", 1, "--quiet", "--out", model)[0] == 0
    status, _, err = run_cli(capsys, "predict", model, path, "--out", tmp_path / "p.csv")
    assert status == 0, err
    expected = load_model(model).predict(X)
    assert np.loadtxt(tmp_path / "p.csv", dtype=str, skiprows=1).tolist() == expected.tolist()
    np.save(tmp_path / "big.labels.npy", y)
    status, out, err = run_cli(capsys, "evaluate", model, path)
    assert status == 0, err
    assert f"accuracy {np.mean(expected == y):.4f}" in out


def test_review_fixes_for_files_labels_and_options(tmp_path, data):
    """Unlabelled data predict from a path; no file stays open between reads (folders of thousands of shards);
    an HDF5 group is refused by name; fitting leaves a DiskDataset's dtype alone; bad sizes are refused."""
    import h5py

    import fastdnn

    X, y, path = data
    est = DNNClassifier(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, y)
    np.save(tmp_path / "unlabelled.npy", X)
    np.savez(tmp_path / "unlabelled.npz", X=X)
    for p in (tmp_path / "unlabelled.npy", tmp_path / "unlabelled.npz"):
        assert np.array_equal(est.predict(p), est.predict(X))
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(3):
        write_npy(folder, f"s{k}.npy", X[k::3], y[k::3])
    before = len(os.listdir("/proc/self/fd"))
    disk = open_disk_dataset(folder)
    disk.load()
    assert len(os.listdir("/proc/self/fd")) == before
    with h5py.File(tmp_path / "group.h5", "w") as f:
        f.create_group("X")
        f["y"] = y
    with pytest.raises(DataError, match=r"group\.h5: X is a group, not a dataset"):
        open_disk_dataset(tmp_path / "group.h5")
    with open_disk_dataset(path) as disk:
        DNNClassifier(hidden_layer_sizes=(4,), max_iter=1, dtype="float32").fit(disk, None)
        assert disk.dtype == np.float64
    for bad in ("inf", "1e400GB", "2MBB", "nan"):
        with pytest.raises(ValueError, match="must be a size"):
            parse_memory(bad)
    with pytest.raises(ValueError, match="gram must be"):
        fastdnn.model(path, None, [N0, 4, 1], num_epochs=1, gram="maybe")


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals go to the main thread")
def test_a_ctrl_c_after_the_last_block_still_stops_the_run(data, monkeypatch):
    """Ctrl-C during the last epoch's monitors (after every block) is not lost: the run raises TrainingInterrupted
    at its end, its state complete and marked in progress."""
    from fastdnn.monitors import Monitor

    X, y, path = data

    class Interrupt(Monitor):
        every = 1

        def look(self, engine, costs, seconds):
            if engine.state.epoch == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return False

    engine = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        with pytest.raises(TrainingInterrupted):
            engine.train(feed, None, 2, monitor=Interrupt())
        feed.close()
    assert engine.state.epoch == 2 and engine.state.stream is None and engine.state.in_progress
    # And a resumed run with another batch size is refused while mid-epoch.
    engine2 = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        engine2.state.stream = None
        at_read(monkeypatch, path, 3, lambda: os.kill(os.getpid(), signal.SIGINT))
        with pytest.raises(TrainingInterrupted):
            engine2.train(feed, None, 2)
        engine2.configure(optimizer="gd", learning_rate=0.0075, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
                          lambd=0.0, mini_batch_size=64, threads=None)
        with pytest.raises(ValueError, match="batch 32; resume it .* batch 64"):
            engine2.train(Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128), None, 1)
        feed.close()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_selected_rows_of_a_page_or_more_are_read_run_by_run(tmp_path, dtype, monkeypatch):
    """Rows of 4 KiB or more are read only where selected (what a rank of a distributed run reads), converted to
    the buffer's dtype and checked, a bad value named by its file row."""
    X = np.random.default_rng(0).standard_normal((300, 1024)).astype(dtype)
    rows = np.array([0, 1, 2, 7, 8, 100, 299])
    path = write_npy(tmp_path, "wide.npy", X, np.zeros(300, np.int8))
    row_bytes, offset, seen = 1024 * X.itemsize, os.path.getsize(path) - X.nbytes, []

    def rows_read(position, nbytes):
        first = (position - offset) // row_bytes
        seen.append((first, first + nbytes // row_bytes))

    on_each_read(monkeypatch, path, rows_read)
    with open_disk_dataset(path) as disk:
        out = np.empty((rows.size, 1024))
        assert disk.read(rows, out) == rows.size
        assert np.array_equal(out, X[rows].astype(np.float64))
        assert seen == [(0, 3), (7, 9), (100, 101), (299, 300)]
    X[8, 5] = np.nan
    np.save(path, X)
    with open_disk_dataset(path) as disk, pytest.raises(DataError, match="example 8, feature 5 is nan"):
        disk.read(rows, np.empty((rows.size, 1024)))


def edited_at_first_read(monkeypatch, path, rows, value):
    """os.preadv that, the first time it reads ``path``, first overwrites ``rows`` of its array in place with
    ``value`` (same size, same inode): an editor writing while a block is read, after the read checked the
    file. Called before the file is opened: its time is set far in the past, so that the edit changes it
    whatever the clock's granularity."""
    os.utime(path, ns=(0, 0))
    offset = os.path.getsize(path) - M * N0 * 8
    edited = []

    def edit(position, nbytes):
        if not edited:
            edited.append(True)
            with open(path, "r+b") as f:
                f.seek(offset + rows.start * N0 * 8)
                f.write(np.full((rows.stop - rows.start, N0), value).tobytes())

    on_each_read(monkeypatch, path, edit)
    return edited


@pytest.mark.parametrize("value", [1e300, np.nan])
def test_a_file_edited_in_place_while_a_block_is_read_is_named_as_changed(data, monkeypatch, value):
    """The file checked before the read is unchanged, but the rows read mix both versions: the read itself
    says so, rather than passing them on (or blaming a NaN the edit wrote)."""
    X, y, path = data
    edited = edited_at_first_read(monkeypatch, path, range(0, 50), value)
    with open_disk_dataset(path) as disk:
        with pytest.raises(DataError, match=r"d\.npy: changed or was replaced while it was being read"):
            disk.read((0, M), np.empty((M, N0)))
    assert edited


def test_training_on_a_file_edited_in_place_stops_naming_the_file_not_the_learning_rate(data, monkeypatch):
    X, y, path = data
    engine = Engine(initialize_parameters([N0, 8, 1], "he", 1, np.float64), seed=1, mini_batch_size=32)
    edited = edited_at_first_read(monkeypatch, path, range(0, M), 1e300)  # every row: the first block diverges
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 128)
        with pytest.raises(DataError, match=r"d\.npy: changed or was replaced while it was being read"):
            engine.train(feed, None, 2)
        feed.close()
    assert edited
