"""Data-parallel training over MPI equals one process with the same global batch and row order.

Run under MPI, as CI does: ``mpiexec -n 2 python -m pytest tests/test_distributed.py -p no:cacheprovider`` (and
``-n 3``, an uneven split). Without mpi4py or outside mpiexec (one rank) these tests skip, saying so; the
plain ``pytest`` run is on one process by design.

Tolerance: each step's gradient is the same sum in another order (per rank, then across ranks): float64
rounding differences of a few ulp per step, which 100 steps of a small well-conditioned network do not
amplify beyond 1e-10 relative (the issue's bound).
"""

import os
import shutil
import tempfile

import numpy as np
import pytest

MPI = pytest.importorskip("mpi4py.MPI", reason="distributed training needs mpi4py: pip install 'fastdnn[mpi]'")
COMM = MPI.COMM_WORLD
pytestmark = pytest.mark.skipif(COMM.Get_size() < 2, reason="run under mpiexec -n 2 (or more) to test across ranks")

from fastdnn.engine import Engine  # noqa: E402
from fastdnn.labels import class_targets  # noqa: E402
from fastdnn.pipeline import initialize_parameters  # noqa: E402

RTOL = 1e-10


def data(n_classes, m=203, n=12):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, n))
    index = np.argmax(X[:, :n_classes] + 0.3 * rng.standard_normal((m, n_classes)), axis=1)
    return X, class_targets(index, n_classes)


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
@pytest.mark.parametrize("lambd", [0.0, 0.7])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("batch", [16, None])
def test_ranks_train_what_one_process_trains(optimizer, lambd, output, batch):
    n_classes = 2 if output == "sigmoid" else 3
    X, Y = data(n_classes)
    dims = [X.shape[1], 16, 8, Y.shape[1]]
    epochs = 100 if batch is None else 8  # 100 and 104 steps
    options = dict(output=output, optimizer=optimizer, learning_rate=0.01, lambd=lambd, mini_batch_size=batch, seed=5)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    expected = alone.train(X, Y, epochs, gram=False)
    # Each rank starts from its own (different) parameters and seed: rank 0's are broadcast.
    rank = COMM.Get_rank()
    together = Engine(initialize_parameters(dims, "he", 1 + rank, np.float64), **{**options, "seed": 5 + rank})
    if rank:
        together.state.rng.permutation(7)
    costs = together.train(X, Y, epochs, gram=False, comm=COMM)
    assert together.state.step == alone.state.step >= 100
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    # Every rank holds the same parameters, bit for bit.
    gathered = COMM.allgather(together.state.parameters.flat)
    assert all(np.array_equal(g, gathered[0]) for g in gathered)


def test_a_rank_with_other_data_is_refused_by_name():
    X, Y = data(2)
    rank = COMM.Get_rank()
    engine = Engine(initialize_parameters([12, 4, 1], "he", 1, np.float64), mini_batch_size=16)
    mine = X[: len(X) - (rank == 1)], Y[: len(Y) - (rank == 1)]
    with pytest.raises(ValueError, match=r"rank 1: its data shape \(examples, features, outputs\) \(202, 12, 1\) "
                                         r"differs from rank 0's \(203, 12, 1\)"):
        engine.train(*mine, 2, comm=COMM)
    engine = Engine(initialize_parameters([12, 4, 1], "he", 1, np.float64), mini_batch_size=16 + (rank == 1))
    with pytest.raises(ValueError, match="rank 1: its batch size 17 differs from rank 0's 16"):
        engine.train(X, Y, 2, comm=COMM)
    engine = Engine(initialize_parameters([12, 4, 1], "he", 1, np.float64), mini_batch_size=16)
    with pytest.raises(ValueError, match="rank 1: its epochs 3 differs from rank 0's 2"):
        engine.train(X, Y, 2 + (rank == 1), comm=COMM)
    other = X + (rank == 1)  # the same shape, other values
    with pytest.raises(ValueError, match=r"rank 1: its data \(a hash of sampled rows\)"):
        engine.train(other, Y, 2, comm=COMM)


@pytest.fixture
def shared_folder():
    """A temporary folder every rank sees (rank 0 makes and removes it, once every rank is done with it)."""
    rank = COMM.Get_rank()
    folder = COMM.bcast(tempfile.mkdtemp(prefix="fastdnn-mpi-") if rank == 0 else None, root=0)
    yield folder
    COMM.Barrier()
    if rank == 0:
        shutil.rmtree(folder)


def train_alone(monkeypatch, argv):
    """``fastdnn train`` on this rank alone, as outside mpiexec: without the launcher's variables, under which a run
    without --distributed is refused."""
    from fastdnn import cli
    from fastdnn.distributed import LAUNCH_VARIABLES

    with monkeypatch.context() as patch:
        for names in LAUNCH_VARIABLES:
            for name in names:
                patch.delenv(name, raising=False)
        return cli.main([str(a) for a in ["train", *argv]])


def test_the_command_saves_what_one_process_saves(shared_folder, monkeypatch):
    """mpiexec -n N fastdnn train --distributed --seed S saves the model fastdnn train --seed S saves (float64, the
    built-in data), within the tolerance; only rank 0 writes."""
    from fastdnn import cli

    rank, folder = COMM.Get_rank(), shared_folder
    options = ["--samples", 4000, "--features", 10, "--dtype", "float64", "--seed", 7, "--epochs", 4, "--quiet"]
    together = os.path.join(folder, "together.npz")
    assert cli.main([str(a) for a in ["train", *options, "--distributed", "--out", together]]) == 0
    alone = os.path.join(folder, f"alone-{rank}.npz")
    assert train_alone(monkeypatch, [*options, "--out", alone]) == 0
    COMM.Barrier()
    with np.load(together) as a, np.load(alone) as b:
        for key in ("W1", "b1", "W2", "b2", "W3", "b3", "loss_curve"):
            assert relative(a[key], b[key]) < RTOL, key
    assert sorted(os.listdir(folder)) == sorted(["together.npz"] + [f"alone-{r}.npz" for r in range(COMM.Get_size())])


def test_a_distributed_run_resumes_exactly_with_the_same_ranks(shared_folder):
    """A checkpoint of a distributed run (written by rank 0) continued with --resume on the same ranks ends where
    the uninterrupted run does, bit for bit."""
    from fastdnn import cli

    folder = shared_folder
    options = ["--samples", 3000, "--features", 10, "--seed", 2, "--quiet", "--distributed"]
    whole, parted = os.path.join(folder, "whole.npz"), os.path.join(folder, "parted.npz")
    ckpt = os.path.join(folder, "parted.ckpt.npz")
    assert cli.main([str(a) for a in ["train", *options, "--epochs", 4, "--out", whole]]) == 0
    assert cli.main([str(a) for a in ["train", *options, "--epochs", 2, "--checkpoint-every", 1, "--out", parted]]) == 0
    COMM.Barrier()
    assert cli.main([str(a) for a in ["train", "--resume", ckpt, "--epochs", 4, "--quiet", "--distributed"]]) == 0
    COMM.Barrier()
    with np.load(whole) as a, np.load(parted) as b:
        for key in ("W1", "b1", "W2", "b2", "W3", "b3", "loss_curve"):
            assert np.array_equal(a[key], b[key]), key


def train_on_every_rank(capsys, argv):
    """``fastdnn train --distributed`` on every rank, the last rank's arguments ``argv(True)``, the others'
    ``argv(False)``: every rank's (exit status, stderr), gathered, so that every rank asserts alike."""
    from fastdnn import cli

    last = COMM.Get_rank() == COMM.Get_size() - 1
    status = cli.main([str(a) for a in ["train", *argv(last), "--quiet", "--distributed"]])
    return COMM.allgather((status, capsys.readouterr().err))


ALIKE = "; every rank must train the same network on the same data with the same options"


@pytest.mark.parametrize("flag, value, other, named", [
    ("--seed", 7, 8, "--seed 8 differs from rank 0's 7"),
    ("--epochs", 2, 3, "--epochs 3 differs from rank 0's 2"),
    ("--samples", 1000, 1001, "training data (examples, features) (1001, 10) differs from rank 0's (1000, 10)"),
])
def test_ranks_given_other_options_or_data_stop_together_and_rank_0_names_the_cause(shared_folder, capsys, flag,
                                                                                    value, other, named):
    """The last rank is given another --seed (which used to be reported as other data: it holds out other rows),
    --epochs (printed by every rank) or data shape (every rank printed and aborted the others, whose lines were
    sometimes lost): every rank stops at the same point with status 1, none aborting the others, and rank 0 alone
    prints one line naming the option."""
    model = os.path.join(shared_folder, "m.npz")
    options = {"--samples": 1000, "--features": 10, "--epochs": 2, "--seed": 0, "--out": model}
    results = train_on_every_rank(capsys, lambda last: [a for kv in {**options, flag: other if last else value}.items()
                                                        for a in kv])
    last = COMM.Get_size() - 1
    assert results == [(1, f"fastdnn train: error: rank {last}: its {named}{ALIKE}\n")] + [(1, "")] * last
    assert not os.path.exists(model)


def test_a_refusal_on_one_rank_stops_every_rank_and_rank_0_reports_it(shared_folder, capsys):
    """The last rank's data file is missing: the others, which found theirs, would wait for it in the first
    collective; every rank stops before it instead, and rank 0 prints that rank's line."""
    data, absent = os.path.join(shared_folder, "d.npz"), os.path.join(shared_folder, "absent.npz")
    if COMM.Get_rank() == 0:
        X = np.random.default_rng(0).standard_normal((100, 4))
        np.savez(data, X=X, y=(X[:, 0] > 0).astype(np.int64))
    COMM.Barrier()
    results = train_on_every_rank(capsys, lambda last: ["--data", absent if last else data, "--epochs", 1, "--out",
                                                        os.path.join(shared_folder, "m.npz")])
    last = COMM.Get_size() - 1
    assert results == [(1, f"fastdnn train: error: rank {last}: {absent}: no such file or folder\n")] + [(1, "")] * last


def test_a_divergence_is_reported_once(shared_folder, capsys):
    """Every rank diverges at the same step (the same reduced gradient): one line, from rank 0."""
    model = os.path.join(shared_folder, "m.npz")
    results = train_on_every_rank(capsys, lambda last: ["--samples", 1000, "--features", 10, "--epochs", 2,
                                                        "--optimizer", "gd", "--lr", 1e30, "--out", model])
    (status, line), *others = results
    assert status == 1 and line.startswith("fastdnn train: error: training diverged: ") and line.count("\n") == 1
    assert others == [(1, "")] * (COMM.Get_size() - 1)
    assert not os.path.exists(model)


@pytest.mark.parametrize("batch", [1, 2])
def test_ranks_with_empty_shares_and_frozen_layers(batch):
    """A batch smaller than the ranks leaves some ranks nothing to train on in a step (they contribute zeros);
    frozen layers are never reduced or updated."""
    X, Y = data(2, m=120)
    dims = [X.shape[1], 16, 8, 1]
    options = dict(optimizer="adam", learning_rate=0.01, lambd=0.5, mini_batch_size=batch, seed=5, frozen_layers=1)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    alone.train(X, Y, 1, gram=False)
    together = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    together.train(X, Y, 1, gram=False, comm=COMM)
    assert together.state.step == alone.state.step == -(-120 // batch)
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    frozen = dims[1] * (dims[0] + 1)
    assert np.array_equal(together.state.parameters.flat[:frozen],
                          initialize_parameters(dims, "he", 1, np.float64).flat[:frozen])


# ---------------------------------------------------------------------------- data streamed from disk


@pytest.fixture
def on_disk(shared_folder):
    """A .npy file (and its labels) that every rank sees, 203 x 512 float64: rows of a page (4 KiB), which ranks
    read run by run."""
    rank, folder = COMM.Get_rank(), shared_folder
    rng = np.random.default_rng(1)
    X = rng.standard_normal((203, 512))
    y = np.argmax(X[:, :3] + 0.3 * rng.standard_normal((203, 3)), axis=1)
    path = os.path.join(folder, "d.npy")
    if rank == 0:
        np.save(path, X)
        np.save(os.path.join(folder, "d.labels.npy"), y)
    COMM.Barrier()
    yield X, y, path


def streamed_engine(dims, output, options, rank=0):
    return Engine(initialize_parameters(dims, "he", 1 + rank, np.float64), output=output, **{**options, "seed": 5 + rank})


def feed_of(disk, n_classes, block, rows=None, batch=None):
    from fastdnn.stream import Feed

    return Feed(disk, disk.y.astype(np.int64), n_classes, class_targets, np.float64, block, rows=rows, batch=batch)


@pytest.mark.parametrize("optimizer, lambd, output, batch, split", [
    ("gd", 0.0, "sigmoid", 16, False), ("momentum", 0.7, "softmax", 16, True), ("adam", 0.7, "sigmoid", 8, True),
    ("adam", 0.0, "softmax", 16, False), ("gd", 0.7, "softmax", None, False), ("adam", 0.0, "sigmoid", None, True),
])
def test_ranks_streaming_from_disk_train_what_one_streaming_process_trains(on_disk, optimizer, lambd, output, batch,
                                                                           split):
    """The global row order of a streamed epoch is one process's (blocks, then each block's permutation), split
    over the ranks as in memory: the same parameters within the tolerance, with a training split too."""
    from fastdnn.stream import open_disk_dataset

    X, y, path = on_disk
    n_classes = 2 if output == "sigmoid" else 3
    if n_classes == 2:
        y = (y > 0).astype(np.int64)
        if COMM.Get_rank() == 0:
            np.save(path[:-4] + ".labels.npy", y)
        COMM.Barrier()
    dims = [X.shape[1], 16, 8, 1 if n_classes == 2 else 3]
    rows = np.sort(np.random.default_rng(2).choice(len(X), 150, replace=False)) if split else None
    options = dict(optimizer=optimizer, learning_rate=0.005, lambd=lambd, mini_batch_size=batch)
    epochs = 4 if batch else 25
    with open_disk_dataset(path) as disk:
        alone = streamed_engine(dims, output, options)
        expected = alone.train(feed_of(disk, n_classes, 64, rows, batch), None, epochs)
        together = streamed_engine(dims, output, options, COMM.Get_rank())
        costs = together.train(feed_of(disk, n_classes, 64, rows, batch), None, epochs, comm=COMM)
    assert together.state.step == alone.state.step > 0
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    gathered = COMM.allgather(together.state.parameters.flat)
    assert all(np.array_equal(g, gathered[0]) for g in gathered)


@pytest.mark.parametrize("batch", [16, None])
def test_each_rank_reads_only_the_rows_it_trains(on_disk, monkeypatch, batch):
    """Each rank reads its share of every block and no other row: rows of a page or more are read run by run."""
    from fastdnn import distributed as D
    from fastdnn.stream import epoch_blocks, open_disk_dataset

    X, y, path = on_disk
    size, rank = COMM.Get_size(), COMM.Get_rank()
    # The reader reads a .npy's rows with os.preadv: each read's rows, from its position and length.
    row_bytes, offset, rows_read = X.shape[1] * X.itemsize, os.path.getsize(path) - X.nbytes, []
    inode, preadv = os.stat(path).st_ino, os.preadv

    def counting(fd, buffers, position):
        if os.fstat(fd).st_ino == inode:
            first = (position - offset) // row_bytes
            rows_read.extend(range(first, first + sum(len(b) for b in buffers) // row_bytes))
        return preadv(fd, buffers, position)

    monkeypatch.setattr(os, "preadv", counting)
    options = dict(optimizer="adam", learning_rate=0.005, mini_batch_size=batch, seed=5)
    with open_disk_dataset(path) as disk:
        engine = Engine(initialize_parameters([512, 8, 3], "he", 1, np.float64), output="softmax", **options)
        engine.train(feed_of(disk, 3, 64), None, 1, comm=COMM)
    # What this rank trains, drawn as the engine draws it.
    rng = np.random.default_rng(5)
    trained = []
    for a, b in epoch_blocks(rng, len(X), 64, shuffle=batch is not None):
        if batch:
            trained.extend(a + D.mine(rng.permutation(b - a), batch, size, rank))
        else:
            trained.extend(range(a + D.share(b - a, size, rank)[0], a + D.share(b - a, size, rank)[1]))
    assert sorted(rows_read) == sorted(trained)
    assert sum(COMM.allgather(len(rows_read))) == len(X)


def interrupt_on_rank(monkeypatch, path, at, rank):
    """SIGINT to this process when rank ``rank``'s feed starts reading its ``at``-th block of ``path`` (on the
    reader thread): the reader opens the file for each block's read (no file stays open between reads)."""
    import signal

    real, calls = os.open, []

    def opening(name, *args, **kwargs):
        if os.path.realpath(name) == os.path.realpath(path):
            calls.append(name)
            if len(calls) == at and COMM.Get_rank() == rank:
                os.kill(os.getpid(), signal.SIGINT)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(os, "open", opening)


@pytest.mark.parametrize("batch", [16, None])
def test_a_ctrl_c_on_one_rank_stops_every_rank_at_one_block_and_rank_0s_state_resumes(on_disk, batch, monkeypatch):
    """Ctrl-C on one rank stops every rank at the same block's end (never one rank in a collective alone). Rank 0's
    state, saved and loaded by every rank, continues to the uninterrupted run's parameters: bit for bit with
    minibatches, within the tolerance for full batch (the ranks' partial gradients are summed when it stops, a
    different order of the same sum)."""
    from fastdnn.errors import TrainingInterrupted
    from fastdnn.io import state_arrays, state_from_arrays
    from fastdnn.stream import open_disk_dataset

    X, y, path = on_disk
    dims = [512, 8, 3]
    options = dict(optimizer="adam", learning_rate=0.005, lambd=0.1, mini_batch_size=batch, seed=3, output="softmax")
    with open_disk_dataset(path) as disk:
        whole = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
        whole.train(feed_of(disk, 3, 64), None, 3, comm=COMM)

        first = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
        feed = feed_of(disk, 3, 64)
        interrupt_on_rank(monkeypatch, path, 7, COMM.Get_size() - 1)  # the 7th of 12 blocks: epoch 2's third
        with pytest.raises(TrainingInterrupted):
            first.train(feed, None, 3, comm=COMM)
        assert first.state.epoch == 1 and first.state.stream.next == 2
        saved = COMM.bcast((first.state.parameters.flat, state_arrays(first.state)), root=0)
        parameters = initialize_parameters(dims, "he", 1, np.float64)
        parameters.flat[:] = saved[0]
        resumed = Engine(parameters, state=state_from_arrays(parameters, saved[1]), **options)
        resumed.train(feed_of(disk, 3, 64), None, 2, comm=COMM)
    assert resumed.state.step == whole.state.step and resumed.state.stream is None
    if batch:
        assert np.array_equal(resumed.state.parameters.flat, whole.state.parameters.flat)
        assert resumed.state.costs == whole.state.costs
    else:
        assert relative(resumed.state.parameters.flat, whole.state.parameters.flat) < RTOL
        assert relative(np.array(resumed.state.costs), np.array(whole.state.costs)) < RTOL


def test_the_command_streams_on_every_rank_what_one_process_streams(on_disk, monkeypatch):
    """mpiexec -n N fastdnn train --data F.npy --memory 1MB --distributed saves what fastdnn train --data F.npy
    --memory 1MB saves: streamed blocks, the command's validation split, within the tolerance."""
    from fastdnn import cli

    _, _, small = on_disk
    rank = COMM.Get_rank()
    folder = os.path.dirname(small)
    path = os.path.join(folder, "big.npy")  # 800 x 512 float64, 3.3 MB: streamed in blocks of 112 rows
    if rank == 0:
        rng = np.random.default_rng(4)
        X = rng.standard_normal((800, 512))
        np.save(path, X)
        np.save(path[:-4] + ".labels.npy", (X[:, 0] + 0.5 * rng.standard_normal(800) > 0).astype(np.int64))
    COMM.Barrier()
    options = ["--data", path, "--memory", "1MB", "--layers", "8", "--batch-size", 16, "--seed", 7, "--epochs", 3,
               "--quiet", "--dtype", "float64"]
    together = os.path.join(folder, "together.npz")
    assert cli.main([str(a) for a in ["train", *options, "--distributed", "--out", together]]) == 0
    alone = os.path.join(folder, f"alone-{rank}.npz")
    assert train_alone(monkeypatch, [*options, "--out", alone]) == 0
    COMM.Barrier()
    with np.load(together) as a, np.load(alone) as b:
        for key in ("W1", "b1", "W2", "b2", "loss_curve"):
            assert relative(a[key], b[key]) < RTOL, key


def test_a_ctrl_c_on_one_rank_in_memory_stops_every_rank_at_its_epochs_start(monkeypatch):
    """In memory, the Allreduce of every step tells every rank of a Ctrl-C on any: they roll back to the epoch's
    start together (the one resumable point of an in-memory epoch), and that state continues bit for bit."""
    import signal

    from fastdnn import distributed as D
    from fastdnn.errors import TrainingInterrupted

    X, Y = data(2)
    dims = [X.shape[1], 16, 1]
    options = dict(optimizer="adam", learning_rate=0.01, mini_batch_size=16, seed=5)
    whole = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    whole.train(X, Y, 3, comm=COMM)
    calls, reduce = [0], D.sum_in_place

    def interrupting(comm, buffer):
        calls[0] += 1
        if calls[0] == 20 and COMM.Get_rank() == COMM.Get_size() - 1:  # epoch 2's 7th step (13 a epoch)
            os.kill(os.getpid(), signal.SIGINT)
        return reduce(comm, buffer)

    monkeypatch.setattr(D, "sum_in_place", interrupting)
    parted = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    with pytest.raises(TrainingInterrupted):
        parted.train(X, Y, 3, comm=COMM)
    monkeypatch.undo()
    assert parted.state.epoch == 1 and parted.state.step == 13 and len(parted.state.costs) == 1
    parted.train(X, Y, 2, comm=COMM)
    assert np.array_equal(parted.state.parameters.flat, whole.state.parameters.flat)
    assert parted.state.costs == whole.state.costs


def test_ranks_whose_parameters_drift_apart_take_rank_0s_after_the_epoch():
    """Ranks rounding an update differently (another CPU) would drift apart silently: after every epoch a sampled
    digest is compared, rank 0's parameters are broadcast where they differ, with one warning."""
    from fastdnn.monitors import Monitor

    X, Y = data(2)
    dims = [X.shape[1], 16, 1]
    options = dict(optimizer="adam", learning_rate=0.01, mini_batch_size=16, seed=5)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    alone.train(X, Y, 3, gram=False)

    class Nudge(Monitor):
        def look(self, engine, costs, seconds, final=False):
            if COMM.Get_rank() == 1:
                engine.state.parameters.flat[0] += 1e-6  # what a different rounding would grow into
            return False

    together = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    with pytest.warns(RuntimeWarning, match="drifted apart"):
        together.train(X, Y, 3, comm=COMM, monitor=Nudge())
    gathered = COMM.allgather(together.state.parameters.flat)
    assert all(np.array_equal(g, gathered[0]) for g in gathered)
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL


def test_a_rank_in_memory_beside_ranks_streaming_is_refused_by_name(on_disk):
    """Ranks whose memory budgets put the same file in memory on one and streaming on another are refused,
    naming the rank and the cause (not a failure to compare what each checked)."""
    from fastdnn.stream import open_disk_dataset

    X, y, path = on_disk
    rank = COMM.Get_rank()
    engine = Engine(initialize_parameters([512, 8, 3], "he", 1, np.float64), output="softmax", mini_batch_size=16)
    with open_disk_dataset(path) as disk:
        data = (X, class_targets(y, 3)) if rank == 1 else (feed_of(disk, 3, 64), None)
        with pytest.raises(ValueError, match=r"rank 1: its data source in memory differs from rank 0's streamed from "
                                             r"disk"):
            engine.train(*data, 2, comm=COMM)


@pytest.mark.parametrize("batch, memory", [(16, "1GB"), (None, "1GB"), (16, "1MB")], ids=["minibatch", "full-batch",
                                                                                         "streamed"])
def test_a_regressor_on_ranks_trains_what_it_trains_alone(shared_folder, batch, memory):
    """DNNRegressor.fit(comm=...) with two targets (the identity output, the squared error) across the ranks: the
    parameters, costs and validation R^2 of one process, within the tolerance, in memory and streamed from disk
    (2,000 x 128 float64, 2 MB: more than memory="1MB")."""
    from fastdnn import DNNRegressor

    rng = np.random.default_rng(4)
    X = rng.standard_normal((2000, 128))
    Y = np.stack([X[:, 0] - X[:, 1] ** 2, np.tanh(X[:, 2])], axis=1)
    path = os.path.join(shared_folder, "r.npy")
    if COMM.Get_rank() == 0:
        np.save(path, X)
    COMM.Barrier()
    options = dict(hidden_layer_sizes=(16, 8), learning_rate=0.005, batch_size=batch, max_iter=3 if batch else 25,
                   random_state=3, early_stopping=True, memory=memory)
    source = X if memory == "1GB" else path
    alone = DNNRegressor(**options).fit(source, Y)
    together = DNNRegressor(**options).fit(source, Y, comm=COMM)
    assert together.n_outputs_ == 2 and together.t_ == alone.t_ > 0
    assert relative(together.parameters_.flat, alone.parameters_.flat) < RTOL
    assert relative(np.array(together.loss_curve_), np.array(alone.loss_curve_)) < RTOL
    assert relative(np.array(together.validation_scores_), np.array(alone.validation_scores_)) < RTOL
    gathered = COMM.allgather(together.parameters_.flat)
    assert all(np.array_equal(g, gathered[0]) for g in gathered)
    # The ranks train together, not each alone: a rank given other targets is refused by name.
    other = Y + (COMM.Get_rank() == 1)
    with pytest.raises(ValueError, match=r"rank 1: its data \(a hash of sampled rows\) .* differs from rank 0's"):
        DNNRegressor(**options).fit(source, other, comm=COMM)


@pytest.mark.parametrize("batch", [16, None])
def test_weighted_ranks_train_what_one_weighted_process_trains(batch):
    X, Y = data(3)
    dims = [X.shape[1], 16, 8, Y.shape[1]]
    w = np.random.default_rng(2).integers(0, 4, X.shape[0]).astype(float)
    w[:16] = 0.0  # a full batch of weight 0 on the unshuffled... and rows of weight 0 anywhere
    epochs = 60 if batch is None else 6
    options = dict(output="softmax", optimizer="adam", learning_rate=0.01, lambd=0.7, mini_batch_size=batch, seed=5)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    expected = alone.train(X, Y, epochs, gram=False, weights=w)
    together = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    costs = together.train(X, Y, epochs, gram=False, comm=COMM, weights=w)
    assert together.state.step == alone.state.step
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    unweighted = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    unweighted.train(X, Y, epochs, gram=False, comm=COMM)
    assert relative(unweighted.state.parameters.flat, alone.state.parameters.flat) > 1e-6
