"""The one thread policy: who picks the BLAS thread count, and what happens past the cores."""

import numpy as np
import pytest

import fastdnn
from fastdnn import cli, engine, threads


@pytest.fixture
def used_threads(monkeypatch):
    """The thread counts training runs ask BLAS for, in order."""
    seen = []
    real = engine.blas_threads

    def spy(count):
        seen.append(count)
        return real(count)

    monkeypatch.setattr(engine, "blas_threads", spy)
    return seen


def test_small_steps_take_one_thread_and_large_ones_every_core():
    cores = threads.usable_cores()
    assert threads.training_threads(None, [64, 32, 32, 1], 64) == 1
    assert threads.training_threads(None, [1024, 2048, 2048, 1], 1024) == cores
    # The threshold itself: [100, 100, 1] costs 40,600 useful FLOPs per example (4 n1 n0 + 6 n2 n1).
    dims = [100, 100, 1]
    under = int(threads.SMALL_STEP_FLOPS // 40_600)
    assert threads.step_flops(dims, under)["useful"] < threads.SMALL_STEP_FLOPS <= threads.step_flops(dims, under + 1)["useful"]
    assert threads.training_threads(None, dims, under) == 1
    assert threads.training_threads(None, dims, under + 1) == cores


def test_more_threads_than_cores_are_capped_with_a_warning():
    cores = threads.usable_cores()
    with pytest.warns(RuntimeWarning, match=f"threads={cores + 7} is more than the {cores} usable cores"):
        assert threads.training_threads(cores + 7, [4, 1], 8) == cores
    assert threads.training_threads(1, [1024, 2048, 2048, 1], 1024) == 1  # a request within the cores stands


def test_every_entry_point_uses_the_policy(used_threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 100))
    Y = (X[:1] > 0).astype(float)
    dims = [64, 32, 32, 1]
    assert threads.step_flops(dims, 100)["useful"] < threads.SMALL_STEP_FLOPS  # every step below is small
    fastdnn.model(X, Y, dims, mini_batch_size=50, num_epochs=1)
    fastdnn.L_layer_model(X, Y, dims, num_iterations=1)
    fastdnn.DNNClassifier(hidden_layer_sizes=(32, 32), max_iter=1, batch_size=50).fit(X.T, Y.ravel())
    assert used_threads == [1, 1, 1]  # small steps: one thread each, not BLAS's default pool


def test_command_caps_threads_at_the_cores_and_says_so(tmp_path, capsys):
    cores = threads.usable_cores()
    status = cli.main(["train", "--samples", "500", "--features", "8", "--epochs", "1", "--threads", "1000",
                       "--out", str(tmp_path / "m.npz")])
    out = capsys.readouterr().out
    assert status == 0
    assert f"--threads 1000 is more than the {cores} usable cores; using {cores}" in out
    assert f"{cores} BLAS thread" in out
