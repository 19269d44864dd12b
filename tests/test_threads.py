"""The one thread policy: who picks the BLAS thread count, and what happens past the cores."""

import numpy as np
import pytest

import fastdnn
from fastdnn import cli, engine, threads

FLOPS_PER_THREAD = threads.FLOPS_PER_THREAD


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


def test_a_thread_per_flops_per_thread_up_to_the_cores(monkeypatch):
    cores = threads.usable_cores()
    assert threads.training_threads(None, [64, 32, 32, 1], 64) == 1
    assert threads.training_threads(None, [1024, 2048, 2048, 1], 1024) == cores
    # [100, 100, 1] costs 40,600 useful FLOPs per example (4 n1 n0 + 6 n2 n1): k threads from k FLOPS_PER_THREAD.
    monkeypatch.setattr(threads, "usable_cores", lambda: 16)
    dims = [100, 100, 1]
    for k in (1, 2, 3, 9):
        rows = -(-int(k * threads.FLOPS_PER_THREAD) // 40_600)  # the fewest rows whose step reaches k shares
        assert threads.step_flops(dims, rows - 1)["useful"] < k * threads.FLOPS_PER_THREAD <= threads.step_flops(dims, rows)["useful"]
        assert threads.training_threads(None, dims, rows) == k
        assert threads.training_threads(None, dims, rows - 1) == max(1, k - 1)
    assert threads.training_threads(None, [784, 256, 256, 1], 256) == 9  # 307 MFLOP: not every one of 16 cores
    assert threads.training_threads(None, [784, 256, 256, 1], 1024) == 16
    assert threads.rank_threads(None, [784, 256, 256, 1], 1024, 4) == 4  # four ranks share the 16 cores


def test_pooled_routes_give_the_threads_to_the_pool_and_others_to_blas():
    assert threads.split_threads(4, pooled=True) == (4, 1)
    assert threads.split_threads(4, pooled=False) == (1, 4)
    assert threads.split_threads(1, pooled=True) == (1, 1)
    # A step whose element-wise passes are a sliver of it: BLAS's threads share one packing of the weights.
    assert threads.split_threads(4, pooled=True, flops=2 * threads.POOL_MAX_FLOPS) == (1, 4)
    assert threads.split_threads(4, pooled=True, flops=threads.POOL_MAX_FLOPS) == (4, 1)


def test_more_threads_than_cores_are_capped_with_a_warning():
    cores = threads.usable_cores()
    with pytest.warns(RuntimeWarning, match=f"threads={cores + 7} is more than the {cores} usable cores"):
        assert threads.training_threads(cores + 7, [1024, 2048, 2048, 1], 1024) == cores
    assert threads.training_threads(1, [1024, 2048, 2048, 1], 1024) == 1  # a request within the cores stands
    assert threads.training_threads(cores, [4, 1], 8) == 1  # a cap: the work asks for one thread


def test_every_entry_point_uses_the_policy(used_threads):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 100))
    Y = (X[:1] > 0).astype(float)
    dims = [64, 32, 32, 1]
    assert threads.step_flops(dims, 100)["useful"] < threads.FLOPS_PER_THREAD  # every step below is small
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
    assert ", 1 thread" in out  # 500 x 8 examples: the work asks for one thread of the cap


@pytest.fixture
def pool_calls(monkeypatch):
    """The worker counts of the step pool's calls, in order (the pool still runs)."""
    from fastdnn.kernels import pool

    seen = []
    real = pool.train_pool

    def spy(*args, **kwargs):
        seen.append(args[18])  # train_pool's ``threads``, after network.train's 18 arguments
        return real(*args, **kwargs)

    monkeypatch.setattr(pool, "train_pool", spy)
    return seen


def test_steps_on_several_threads_run_on_the_pool_with_blas_single_threaded(monkeypatch, used_threads, pool_calls,
                                                                            tmp_path):
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "FLOPS_PER_THREAD", 1.0)  # tiny steps get their cap of threads too
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 40))
    Y = (X[:1] > 0).astype(float)
    fastdnn.model(X, Y, [16, 8, 1], mini_batch_size=10, num_epochs=2, threads=2)
    fastdnn.model(X, Y, [16, 8, 1], num_epochs=2, threads=2)  # full batch in memory too
    fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=2, batch_size=10, threads=2).fit(X.T, Y.ravel())
    assert pool_calls == [2, 2, 2] and used_threads == [1, 1, 1]
    # A step large enough for two threads by the policy: the policy's threads go to the pool.
    monkeypatch.setattr(threads, "FLOPS_PER_THREAD", FLOPS_PER_THREAD)
    dims = [784, 256, 1]
    assert threads.training_threads(None, dims, 128) == 2
    Xl = rng.standard_normal((784, 128)).astype(np.float32)
    fastdnn.model(Xl, (Xl[:1] > 0).astype(np.float32), dims, num_epochs=1, dtype="float32")
    assert pool_calls[3:] == [2] and used_threads[3:] == [1]
    # The Gram route keeps BLAS's threads.
    monkeypatch.setattr(threads, "FLOPS_PER_THREAD", 1.0)
    fastdnn.model(rng.standard_normal((100, 20)), (rng.standard_normal((1, 20)) > 0).astype(float), [100, 8, 1],
                  num_epochs=20, threads=2, gram=True)
    assert pool_calls[4:] == [] and used_threads[4:] == [2]


def test_a_batch_of_every_row_is_full_batch_in_place():
    from fastdnn.engine import Engine
    from fastdnn.pipeline import initialize_parameters

    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 12))
    Y = (X[:, :1] > 0).astype(float)

    def run(batch, rows=None):
        engine = Engine(initialize_parameters([12, 6, 1], "he", 0, np.float64), mini_batch_size=batch,
                        optimizer="adam", learning_rate=0.01, threads=1)
        before = engine.state.rng.bit_generator.state
        costs = engine.train(X, Y, 4, rows=rows)
        return costs, engine.state.parameters.flat.copy(), engine.state.rng.bit_generator.state == before

    full = run(None)
    for batch in (50, 64):  # mini_batch_size >= m: nothing shuffled, nothing drawn, the full batch bit for bit
        costs, theta, untouched = run(batch)
        assert untouched and np.array_equal(costs, full[0]) and np.array_equal(theta, full[1])
    rows = np.arange(0, 50, 2)
    subset = run(None, rows)
    costs, theta, untouched = run(25, rows)
    assert untouched and np.array_equal(costs, subset[0]) and np.array_equal(theta, subset[1])
