"""Dropout across MPI ranks: N ranks drop the units one process drops, so they train what it trains.

Run under MPI, as tests/test_distributed.py is: ``mpiexec -n 2 python -m pytest tests/test_dropout_mpi.py
-p no:cacheprovider`` (and ``-n 3``). Without mpi4py or outside mpiexec (one rank) these tests skip, saying so.

Each rank trains its share of every batch with the masks of its rows' rows in the data (not of their places in
its share), at the step every rank takes together: the masks are one process's, so the ranks' gradient is one
process's summed in another order. Tolerance: tests/test_distributed.py's RTOL (float64 rounding of a few ulp
per step that these short runs do not amplify past 1e-10); a mask keyed otherwise differs at 1e-2.
"""

import os
import shutil
import tempfile

import numpy as np
import pytest

MPI = pytest.importorskip("mpi4py.MPI", reason="distributed training needs mpi4py: pip install 'fastdnn[mpi]'")
COMM = MPI.COMM_WORLD
pytestmark = pytest.mark.skipif(COMM.Get_size() < 2, reason="run under mpiexec -n 2 (or more) to test across ranks")

from fastdnn import DNNClassifier  # noqa: E402
from fastdnn.engine import Engine  # noqa: E402
from fastdnn.labels import class_targets  # noqa: E402
from fastdnn.pipeline import initialize_parameters  # noqa: E402

RTOL = 1e-10


def data(m=203, n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    return X, (X[:, 0] + 0.5 * X[:, 1] ** 2 + 0.3 * rng.standard_normal(m) > 0.3).astype(np.int64)


def relative(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


def same_on_every_rank(value):
    gathered = COMM.allgather(value)
    return all(np.array_equal(g, gathered[0]) for g in gathered)


@pytest.mark.parametrize("rows", [False, True], ids=["all-rows", "a-training-split"])
@pytest.mark.parametrize("optimizer, batch", [("adam", 16), ("gd", None)])
def test_ranks_drop_what_one_process_drops(optimizer, batch, rows):
    X, y = data()
    Y = class_targets(y, 2)
    train_rows = np.arange(3, 203, 2) if rows else None
    dims = [X.shape[1], 16, 8, 1]
    epochs = 6
    options = dict(optimizer=optimizer, learning_rate=0.01 if optimizer == "adam" else 0.3, mini_batch_size=batch,
                   keep_prob=(0.8, 0.6))
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=5, **options)
    expected = alone.train(X, Y, epochs, rows=train_rows, gram=False)
    rank = COMM.Get_rank()
    # Each rank starts from its own parameters and seeds (dropout's too): rank 0's are broadcast.
    together = Engine(initialize_parameters(dims, "he", 1 + rank, np.float64), seed=5 + rank, **options)
    costs = together.train(X, Y, epochs, rows=train_rows, gram=False, comm=COMM)
    assert together.state.dropout_seed == alone.state.dropout_seed == 5
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    assert same_on_every_rank(together.state.parameters.flat)
    # The masks mattered: another dropout seed is another run.
    other = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=5, dropout_seed=6, **options)
    other.train(X, Y, epochs, rows=train_rows, gram=False)
    assert relative(other.state.parameters.flat, alone.state.parameters.flat) > 1e3 * RTOL


@pytest.fixture
def on_disk():
    """A .npy file and its labels that every rank sees (rank 0 writes and removes them)."""
    rank = COMM.Get_rank()
    folder = COMM.bcast(tempfile.mkdtemp(prefix="fastdnn-mpi-") if rank == 0 else None, root=0)
    X, y = data(m=203, n=64, seed=1)
    path = os.path.join(folder, "d.npy")
    if rank == 0:
        np.save(path, X)
        np.save(os.path.join(folder, "d.labels.npy"), y)
    COMM.Barrier()
    yield X, y, path
    COMM.Barrier()
    if rank == 0:
        shutil.rmtree(folder)


@pytest.mark.parametrize("batch", [16, None])
def test_ranks_streaming_from_disk_drop_what_one_process_streaming_drops(on_disk, batch):
    from fastdnn.stream import Feed, open_disk_dataset

    X, y, path = on_disk
    dims = [X.shape[1], 8, 1]
    options = dict(optimizer="adam", learning_rate=0.01, mini_batch_size=batch, keep_prob=0.7)
    rank = COMM.Get_rank()

    def feed(disk):
        return Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 64, batch=batch)

    with open_disk_dataset(path) as disk:
        alone = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=5, **options)
        expected = alone.train(feed(disk), None, 4)
        together = Engine(initialize_parameters(dims, "he", 1 + rank, np.float64), seed=5 + rank, **options)
        costs = together.train(feed(disk), None, 4, comm=COMM)
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    assert same_on_every_rank(together.state.parameters.flat)


def test_the_estimator_with_early_stopping_drops_alike_on_every_rank():
    X, y = data(m=300)
    kw = dict(hidden_layer_sizes=(8, 4), keep_prob=0.75, batch_size=32, max_iter=5, random_state=0,
              early_stopping=True, learning_rate=0.01)
    alone = DNNClassifier(**kw).fit(X, y)
    together = DNNClassifier(**kw).fit(X, y, comm=COMM)
    assert relative(together.parameters_.flat, alone.parameters_.flat) < RTOL
    assert same_on_every_rank(together.parameters_.flat)


def test_a_rank_with_another_keep_prob_is_refused_by_name():
    X, y = data()
    rank = COMM.Get_rank()
    engine = Engine(initialize_parameters([12, 4, 1], "he", 1, np.float64), mini_batch_size=16,
                    keep_prob=0.5 if rank == 1 else 0.8)
    with pytest.raises(ValueError, match=r"rank 1: its dropout's keep_prob \(0.5,\) differs from rank 0's \(0.8,\)"):
        engine.train(X, class_targets(y, 2), 2, comm=COMM)
