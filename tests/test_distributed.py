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

from fastdnn.engine import Engine, class_targets  # noqa: E402
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


def test_the_command_saves_what_one_process_saves():
    """mpiexec -n N fastdnn train --distributed --seed S saves the model fastdnn train --seed S saves (float64, the
    built-in data), within the tolerance; only rank 0 writes."""
    from fastdnn import cli

    rank = COMM.Get_rank()
    folder = COMM.bcast(tempfile.mkdtemp(prefix="fastdnn-mpi-") if rank == 0 else None, root=0)
    options = ["--samples", 4000, "--features", 10, "--dtype", "float64", "--seed", 7, "--epochs", 4, "--quiet"]
    together = os.path.join(folder, "together.npz")
    assert cli.main([str(a) for a in ["train", *options, "--distributed", "--out", together]]) == 0
    alone = os.path.join(folder, f"alone-{rank}.npz")
    assert cli.main([str(a) for a in ["train", *options, "--out", alone]]) == 0
    COMM.Barrier()
    with np.load(together) as a, np.load(alone) as b:
        for key in ("W1", "b1", "W2", "b2", "W3", "b3", "loss_curve"):
            assert relative(a[key], b[key]) < RTOL, key
    assert sorted(os.listdir(folder)) == sorted(["together.npz"] + [f"alone-{r}.npz" for r in range(COMM.Get_size())])
    COMM.Barrier()
    if rank == 0:
        shutil.rmtree(folder)


def test_a_distributed_run_resumes_exactly_with_the_same_ranks():
    """A checkpoint of a distributed run (written by rank 0) continued with --resume on the same ranks ends where
    the uninterrupted run does, bit for bit."""
    from fastdnn import cli

    rank = COMM.Get_rank()
    folder = COMM.bcast(tempfile.mkdtemp(prefix="fastdnn-mpi-") if rank == 0 else None, root=0)
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
    COMM.Barrier()
    if rank == 0:
        shutil.rmtree(folder)


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
