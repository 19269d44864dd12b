"""Learning-rate schedules across MPI ranks: N ranks train what one process trains, at the same rates.

Run under MPI, as tests/test_distributed.py is: ``mpiexec -n 2 python -m pytest tests/test_schedules_mpi.py
-p no:cacheprovider`` (and ``-n 3``). Without mpi4py or outside mpiexec (one rank) these tests skip, saying so.

Tolerance: tests/test_distributed.py's RTOL (each step's gradient is the same sum in another order, float64
rounding of a few ulp per step that ~100 steps of a small network do not amplify past 1e-10); a schedule
changes the rates, which every rank takes from the same state, not the arithmetic.
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
from fastdnn.engine import Engine, Schedule  # noqa: E402
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


@pytest.mark.parametrize("schedule", ["inverse:0.5:2", "step:3:0.5", "cosine:0.1:6"])
@pytest.mark.parametrize("optimizer, batch", [("adam", 16), ("gd", None)])
def test_ranks_train_a_schedule_as_one_process_does(schedule, optimizer, batch):
    X, y = data()
    Y = class_targets(y, 2)
    dims = [X.shape[1], 16, 8, 1]
    epochs = 8
    options = dict(optimizer=optimizer, learning_rate=0.01 if optimizer == "adam" else 0.3, mini_batch_size=batch,
                   seed=5)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), lr_schedule=Schedule.from_option(schedule),
                   **options)
    expected = alone.train(X, Y, epochs, gram=False)
    rank = COMM.Get_rank()
    # Each rank starts from its own parameters and seed: rank 0's are broadcast.
    together = Engine(initialize_parameters(dims, "he", 1 + rank, np.float64),
                      lr_schedule=Schedule.from_option(schedule), **{**options, "seed": 5 + rank})
    costs = together.train(X, Y, epochs, gram=False, comm=COMM)
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    assert together.last_rate == alone.last_rate == alone.rate_of(epochs - 1)
    assert same_on_every_rank(together.state.parameters.flat)
    # The schedule mattered: the constant rate's run is far from it.
    constant = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    constant.train(X, Y, epochs, gram=False)
    assert relative(constant.state.parameters.flat, alone.state.parameters.flat) > 1e3 * RTOL


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
def test_ranks_streaming_from_disk_follow_the_schedule(on_disk, batch):
    from fastdnn.stream import Feed, open_disk_dataset

    X, y, path = on_disk
    dims = [X.shape[1], 8, 1]
    options = dict(optimizer="adam", learning_rate=0.01, mini_batch_size=batch, seed=5)
    rank = COMM.Get_rank()

    def feed(disk):
        return Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 64, batch=batch)

    with open_disk_dataset(path) as disk:
        alone = Engine(initialize_parameters(dims, "he", 1, np.float64), lr_schedule=Schedule.from_option("step:1:0.5"),
                       **options)
        expected = alone.train(feed(disk), None, 4)
        together = Engine(initialize_parameters(dims, "he", 1 + rank, np.float64),
                          lr_schedule=Schedule.from_option("step:1:0.5"), **{**options, "seed": 5 + rank})
        costs = together.train(feed(disk), None, 4, comm=COMM)
    assert relative(together.state.parameters.flat, alone.state.parameters.flat) < RTOL
    assert relative(costs, expected) < RTOL
    assert same_on_every_rank(together.state.parameters.flat)


def test_plateau_drops_on_rank_0s_scores_on_every_rank():
    """Every rank validates, and a score may round otherwise on another CPU: rank 0's decisions are every
    rank's. Rank 1 is given other validation labels here, so its own scores would drop elsewhere."""
    X, y = data(m=300)
    X_val, y_val = data(m=60, seed=3)
    rank = COMM.Get_rank()
    kw = dict(hidden_layer_sizes=(8,), optimizer="gd", learning_rate=0.3, batch_size=None, max_iter=25,
              random_state=0, lr_schedule="plateau:0.5:2")
    alone = DNNClassifier(**kw).fit(X, y, validation_data=(X_val, y_val))
    mine = y_val if rank == 0 else 1 - y_val
    together = DNNClassifier(**kw).fit(X, y, validation_data=(X_val, mine), comm=COMM)
    state, expected = together.training_state_, alone.training_state_
    assert expected.lr_drops >= 2
    assert COMM.allgather((state.lr_drops, state.lr_best, state.lr_stall)) == [
        (expected.lr_drops, expected.lr_best, expected.lr_stall)] * COMM.Get_size()
    assert relative(together.parameters_.flat, alone.parameters_.flat) < RTOL
    assert same_on_every_rank(together.parameters_.flat)


def test_a_rank_on_another_schedule_is_refused_by_name():
    X, y = data()
    rank = COMM.Get_rank()
    schedule = Schedule.from_option("step:3:0.5" if rank != 1 else "step:4:0.5")
    engine = Engine(initialize_parameters([12, 4, 1], "he", 1, np.float64), mini_batch_size=16, lr_schedule=schedule)
    with pytest.raises(ValueError, match="rank 1: its learning-rate schedule step:4:0.5 differs from rank 0's "
                                         "step:3:0.5"):
        engine.train(X, class_targets(y, 2), 2, comm=COMM)
