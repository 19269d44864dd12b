"""Non-finite numbers never come back from training and are never saved.

A run diverges two ways: the cost stops being finite, or an update makes a
parameter (or the optimizer's state) NaN or Inf while the cost is still finite,
as Adam does on float32 data near 3e37 (its g^2 overflows). Either way
training raises ``DivergenceError`` naming the epoch, and what it leaves is the
end of the last finite epoch, exactly: the same bits a run told to stop there
would give.
"""

import numpy as np
import numpy.testing as npt
import pytest

import fastdnn
from fastdnn import cli
from fastdnn.io import save_model


def huge_float32_problem():
    """The trust issue's reproduction: finite float32 data around 3e37 (passes the NaN/Inf check)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    return (X * 3e37).astype(np.float32), y


def exploding_problem(scale):
    """float32 data that a large step overshoots after one or more finite epochs."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0).astype(int)
    return (X * scale).astype(np.float32), y


# Each diverges after >= 1 finite epoch: gd's cost overflows (epoch 2 where this was written), Adam's
# parameters turn NaN while the cost is finite (epoch 1). Growth is explosive, so rounding cannot move
# the first divergence to epoch 0.
DIVERGING = {
    "gd-cost": (1e3, dict(optimizer="gd", learning_rate=0.01, activation="leaky_relu")),
    "adam-parameters": (1e12, dict(optimizer="adam", learning_rate=1e4, activation="relu")),
}


def test_parameters_that_turn_nan_under_a_finite_cost_raise_and_keep_the_start():
    X, y = huge_float32_problem()
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, init="deep")
    with pytest.raises(fastdnn.DivergenceError, match="NaN or Inf at epoch 0") as info:
        clf.fit(X, y)
    assert np.isfinite(info.value.cost)  # the cost alone would not have told
    assert np.isfinite(clf.parameters_.flat).all()
    start = fastdnn.initialize_parameters([12, 8, 1], "deep", 0, np.float32)
    npt.assert_array_equal(clf.parameters_.flat, start.flat)


@pytest.mark.parametrize("threads", [1, 2], ids=["serial", "pool"])
@pytest.mark.parametrize("scale, options", DIVERGING.values(), ids=DIVERGING.keys())
def test_diverged_fit_keeps_exactly_the_last_finite_epoch(scale, options, threads, monkeypatch):
    from fastdnn import threads as T

    monkeypatch.setattr(T, "usable_cores", lambda: 2)  # threads=2 runs the step's pool of 2 workers anywhere,
    monkeypatch.setattr(T, "FLOPS_PER_THREAD", 1.0)  # on steps this small too
    X, y = exploding_problem(scale)
    options = dict(hidden_layer_sizes=(16, 8), batch_size=50, random_state=3, threads=threads, **options)
    clf = fastdnn.DNNClassifier(max_iter=30, **options)
    with pytest.raises(fastdnn.DivergenceError) as info:
        clf.fit(X, y)
    epoch = info.value.epoch
    assert epoch >= 1, "the problem should diverge after at least one finite epoch"
    assert np.isfinite(clf.parameters_.flat).all()
    assert clf.n_iter_ == epoch and len(clf.loss_curve_) == epoch
    stopped_there = fastdnn.DNNClassifier(max_iter=epoch, **options).fit(X, y)
    npt.assert_array_equal(clf.parameters_.flat, stopped_there.parameters_.flat)
    assert clf.loss_curve_ == stopped_there.loss_curve_ and clf.t_ == stopped_there.t_
    if options["optimizer"] == "adam":
        # Its moments and the shuffling generator are restored too: both continue alike (on tame
        # data: gd's weights at that point overflow anything else, and gd has no state to check).
        tame = (X / scale).astype(np.float32)
        for est in (clf, stopped_there):
            est.set_params(warm_start=True, max_iter=1, learning_rate=1e-6).fit(tame, y)
        npt.assert_array_equal(clf.parameters_.flat, stopped_there.parameters_.flat)


@pytest.mark.parametrize("gram", [False, True], ids=["direct", "gram"])
def test_L_layer_model_divergence_names_the_iteration(gram):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(40, 10)) * 30  # wide: 40 features, 10 examples, so the Gram route applies
    Y = (X[:1] > 0).astype(float)
    with pytest.raises(fastdnn.DivergenceError, match=r"at iteration \d+") as info:
        fastdnn.L_layer_model(X, Y, [40, 7, 1], learning_rate=1e5, num_iterations=200, gram=gram)
    assert len(info.value.costs) == info.value.epoch and np.isfinite(info.value.costs).all()


def test_model_with_adam_raises_on_the_huge_float32_data():
    X, y = huge_float32_problem()
    with pytest.raises(fastdnn.DivergenceError, match="NaN or Inf"):
        fastdnn.model(X.T, y.reshape(1, -1), [12, 8, 1], optimizer="adam", learning_rate=1e-3, mini_batch_size=64,
                      num_epochs=5)


def test_a_non_finite_model_is_never_saved(tmp_path):
    X, y = exploding_problem(1.0)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    clf.parameters_["W1"] = np.full((4, 6), np.nan)
    path = tmp_path / "nan.npz"
    with pytest.raises(ValueError, match="W1 hold NaN or Inf"):
        save_model(clf, path)
    assert not path.exists()


def test_command_exits_with_one_line_and_writes_no_model(tmp_path, capsys):
    X, y = huge_float32_problem()
    data, out = tmp_path / "f32max.npz", tmp_path / "f32m.npz"
    np.savez(data, X=X, y=y)
    status = cli.main(["train", "--quiet", "--data", str(data), "--layers", "8", "--epochs", "5", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(err) == 1 and "NaN or Inf" in err[0] and "no model was saved" in err[0]
    assert not out.exists()
