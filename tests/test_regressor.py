"""Regression: the identity output with the squared error, fast path against the reference, and ``DNNRegressor``.

The identity output is held as the classifier's outputs are (tests/test_equivalence.py, whose helpers and
bounds these reuse): one step stage by stage (Z, A, AL, cost, every gradient, the update) in float64 within
its STAGE_RTOL64 and in float32 within its running error bound (``float32_error_bounds(..., "identity")``),
and whole runs (full batch on the direct and the Gram route, minibatches, momentum, Adam, L2) in float64
within RUN_RTOL64 and in float32 within FLOAT32_RUN_SAFETY times the spread of the reference's own float32
runs. Targets are real numbers exactly representable in float32, as X is, so only arithmetic differs.

Then ``DNNRegressor`` (scikit-learn's MLPRegressor conventions) through every route the engine has: its fit is
``fastdnn.model`` with the same options, data streamed from disk train as in memory, partial_fit, warm start,
early stopping on the validation R^2, model files and ONNX.
"""

import warnings

import numpy as np
import numpy.testing as npt
import pytest
from test_equivalence import (
    BOUND_SAFETY,
    FLOAT32_REALIZATIONS,
    FLOAT32_RUN_SAFETY,
    LEARNING_RATE,
    RUN_ATOL64,
    RUN_RTOL64,
    assert_stages_close64,
    assert_stages_within_float32_bounds,
    curve_deviation,
    parameter_deviation,
    reference_run,
    stages,
)

import fastdnn
from fastdnn import reference as ref
from fastdnn.checking import assert_close

IDENTITY = dict(output="identity", loss="mse")

# Architectures ending in one target and in several; widths of 1, odd sizes, none a BLAS block's multiple.
STAGE_ARCHITECTURES = {
    "no-hidden": [5, 1],
    "no-hidden-3-targets": [5, 3],
    "1-hidden": [17, 33, 1],
    "2-hidden-2-targets": [33, 17, 3, 2],
    "3-hidden-bottleneck-1": [7, 33, 1, 17, 3],
}
STAGE_CASES = [pytest.param(dims, m, id=f"{name}-m{m}") for name, dims in STAGE_ARCHITECTURES.items()
               for m in (1, 7, 64)]


def regression_inputs(dims, m, dtype, seed=0):
    """X (n_0, m) of ``dtype``, real targets Y (n_L, m) exact in float32, He-scaled weights with non-zero biases:
    (X, Y, the fast path's parameters, the reference's float64 copy of them)."""
    rng = np.random.default_rng([seed, len(dims), sum(dims), m])
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (3 * rng.standard_normal((dims[-1], m)) + 1).astype(np.float32).astype(np.float64)
    fast = {}
    for l in range(1, len(dims)):
        fast[f"W{l}"] = (rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2 / dims[l - 1])).astype(dtype)
        fast[f"b{l}"] = (0.5 * rng.standard_normal((dims[l], 1))).astype(dtype)
    return X, Y, fast, {k: v.astype(np.float64) for k, v in fast.items()}


# ---------------------------------------------------------------------------- one step, stage by stage


@pytest.mark.parametrize("dims, m", STAGE_CASES)
def test_identity_output_matches_reference_every_stage_float64(single_blas_thread, dims, m):
    X, Y, fast_params, ref_params = regression_inputs(dims, m, np.float64)
    ref_out = stages(ref, X, Y, ref_params, LEARNING_RATE, **IDENTITY)
    fast_out = stages(fastdnn, X, Y, fast_params, LEARNING_RATE, **IDENTITY)
    npt.assert_array_equal(ref_out["AL"], ref_out[f"Z{len(dims) - 1}"])  # the identity: A_L is Z_L
    assert_stages_close64(fast_out, ref_out)


@pytest.mark.parametrize("dims, m", STAGE_CASES)
def test_identity_output_float32_matches_reference_every_stage_within_derived_bound(single_blas_thread, dims, m):
    X, Y, fast_params, ref_params = regression_inputs(dims, m, np.float32)
    ref_out = stages(ref, X.astype(np.float64), Y, ref_params, LEARNING_RATE, **IDENTITY)
    fast_out = stages(fastdnn, X, Y, fast_params, LEARNING_RATE, **IDENTITY)
    assert_stages_within_float32_bounds(fast_out, ref_out, Y, LEARNING_RATE, "identity")


def test_the_identity_bound_is_tight_enough_to_see_a_wrong_derivative(single_blas_thread):
    """The float32 bound is not vacuous: the output's gradient scaled by 1 + 1e-4 (far below any wrong formula's
    difference) already leaves it, so a broken derivative of the identity output cannot pass it."""
    dims, m = [17, 33, 1], 64
    X, Y, fast_params, ref_params = regression_inputs(dims, m, np.float32)
    ref_out = stages(ref, X.astype(np.float64), Y, ref_params, LEARNING_RATE, **IDENTITY)

    def off_by_a_little(AL, Y, caches):
        return fastdnn.L_model_backward(AL, (1 + 1e-4) * Y - 1e-4 * AL, caches, **IDENTITY)

    fast_out = stages(fastdnn, X, Y, fast_params, LEARNING_RATE, backward=off_by_a_little, **IDENTITY)
    with pytest.raises(AssertionError, match="outside the float32 bound"):
        assert_stages_within_float32_bounds(fast_out, ref_out, Y, LEARNING_RATE, "identity")
    assert BOUND_SAFETY == 2.0  # the margin the statement above was made with


def test_the_identity_output_and_its_cost_by_hand():
    """The kernel's forward and cost against the definition, on numbers small enough to sum exactly: A = Z + b,
    cost = mean over examples of sum over targets of (a - y)^2 / 2, dW = (A - Y)^T X / m."""
    params = {"W1": np.array([[1.0, 2.0], [0.0, -1.0]]), "b1": np.array([[0.5], [-0.25]])}
    X = np.array([[1.0, 0.0, 2.0, 1.0], [0.0, 1.0, 1.0, 1.0]])  # (2 features, 4 examples: 1/m is exact)
    Y = np.array([[1.0, 2.0, 4.0, 3.0], [0.0, -1.0, -2.0, -1.0]])
    AL, caches = fastdnn.L_model_forward(X, params, output="identity")
    npt.assert_array_equal(AL, [[1.5, 2.5, 4.5, 3.5], [-0.25, -1.25, -1.25, -1.25]])
    residual = AL - Y  # [[0.5, 0.5, 0.5, 0.5], [-0.25, -0.25, 0.75, -0.25]]
    assert fastdnn.compute_cost(AL, Y, loss="mse") == np.sum(residual**2) / (2 * 4)
    grads = fastdnn.L_model_backward(AL, Y, caches, **IDENTITY)
    npt.assert_array_equal(grads["dW1"], residual @ X.T / 4)
    npt.assert_array_equal(grads["db1"], residual.sum(axis=1, keepdims=True) / 4)


def test_an_identity_output_refuses_the_cross_entropy_in_both_paths():
    X, Y, params, _ = regression_inputs([4, 2], 5, np.float64)
    for impl in (ref, fastdnn):
        AL, caches = impl.L_model_forward(X, params, output="identity")
        with pytest.raises(ValueError, match="loss 'cross_entropy' does not apply to output 'identity', which takes "
                                             "loss 'mse'"):
            impl.L_model_backward(AL, Y, caches, output="identity", loss="cross_entropy")
        with pytest.raises(ValueError, match="does not apply to output 'identity'"):
            impl.model(X, Y, [4, 2], num_epochs=1, output="identity")
        with pytest.raises(ValueError, match=r"Y contains NaN or infinity"):
            impl.model(X, np.where(Y > 0, np.nan, Y), [4, 2], num_epochs=1, **IDENTITY)


# ---------------------------------------------------------------------------- whole runs

RUN_CASES = [
    # options of model(); every optimizer, minibatches (a last partial one), L2, several targets
    pytest.param(dict(), 1, id="gd-full-batch"),
    pytest.param(dict(mini_batch_size=7), 1, id="gd-minibatch-7"),
    pytest.param(dict(optimizer="momentum", beta=0.8, mini_batch_size=16), 2, id="momentum-2-targets"),
    pytest.param(dict(optimizer="adam", learning_rate=0.01, mini_batch_size=16, lambd=0.3), 3, id="adam-l2-3-targets"),
    pytest.param(dict(lambd=0.7, hidden_activation="tanh", init="xavier"), 2, id="gd-l2-tanh"),
    pytest.param(dict(frozen_layers=1, optimizer="adam", learning_rate=0.01, mini_batch_size=12), 1, id="frozen"),
]


def teacher_regression(n0, K, m, seed):
    """X (n0, m) standard normal; Y (K, m) a smooth function of X plus noise, exact in float32."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n0, m))
    W = rng.standard_normal((K, n0)) / np.sqrt(n0)
    Y = np.tanh(W @ X) + 0.3 * (W @ X) ** 2 + 0.1 * rng.standard_normal((K, m))
    return X, Y.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("options, K", RUN_CASES)
def test_identity_output_whole_run_matches_reference_float64(single_blas_thread, options, K):
    X, Y = teacher_regression(6, K, 50, seed=K)
    kwargs = {"learning_rate": 0.05, "num_epochs": 30, "seed": 7, **IDENTITY, **options}
    p_ref, c_ref = ref.model(X, Y, [6, 5, 4, K], **kwargs)
    p_fast, c_fast = fastdnn.model(X, Y, [6, 5, 4, K], **kwargs)
    assert c_ref[-1] < 0.8 * c_ref[0]  # the run learns: the curve has a shape to follow
    assert_close(c_fast, c_ref, rtol=RUN_RTOL64, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)


ROUTES = [pytest.param(False, id="direct"), pytest.param(True, id="gram")]


@pytest.mark.parametrize("gram", ROUTES)
@pytest.mark.parametrize("dims, m", [pytest.param([20, 7, 5, 1], 64, id="narrow"),
                                     pytest.param([203, 17, 3, 2], 64, id="wide-2-targets")])
def test_identity_output_full_batch_runs_match_reference_on_both_routes_float64(single_blas_thread, dims, m, gram):
    X, Y = teacher_regression(dims[0], dims[-1], m, seed=3)
    p_ref, c_ref = ref.model(X, Y, dims, learning_rate=0.05, num_epochs=200, **IDENTITY)
    p_fast, c_fast = fastdnn.model(X, Y, dims, learning_rate=0.05, num_epochs=200, gram=gram, **IDENTITY)
    assert c_ref[-1] < 0.8 * c_ref[0]
    assert_close(c_fast, c_ref, rtol=RUN_RTOL64, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("gram", ROUTES)
@pytest.mark.parametrize("dims, m", [pytest.param([20, 7, 5, 1], 64, id="narrow"),
                                     pytest.param([203, 17, 3, 2], 64, id="wide-2-targets")])
def test_identity_output_float32_run_stays_within_float32_spread(single_blas_thread, dims, m, gram, threads):
    """test_equivalence's float32 whole-run measure (its docstring derives it) for the identity output: the
    reference's functions in float32 on relabelled copies of the network give the spread of float32 rounding
    around the float64 run; the fast path stays within FLOAT32_RUN_SAFETY of it."""
    X, Y = teacher_regression(dims[0], dims[-1], m, seed=3)
    X64 = X.astype(np.float32).astype(np.float64)
    epochs = 200
    ref_params, ref_costs = ref.model(X64, Y, dims, learning_rate=0.05, num_epochs=epochs, **IDENTITY)
    fast_params, fast_costs = fastdnn.model(X64.astype(np.float32), Y, dims, learning_rate=0.05, num_epochs=epochs,
                                            dtype=np.float32, gram=gram, threads=threads, **IDENTITY)
    assert all(value.dtype == np.float32 for value in fast_params.values())
    realizations = [reference_run(X64, Y, dims, 0.05, epochs, np.float32, seed, output="identity")
                    for seed in range(FLOAT32_REALIZATIONS)]
    # The relabelled runs are the reference's own trajectory (checked in float64 by the seed-0 relabelling).
    curve_tol = FLOAT32_RUN_SAFETY * max(curve_deviation(c, ref_costs) for c, _ in realizations)
    params_tol = FLOAT32_RUN_SAFETY * max(parameter_deviation(p, ref_params) for _, p in realizations)
    assert curve_deviation(fast_costs, ref_costs) <= curve_tol
    assert parameter_deviation(fast_params, ref_params) <= params_tol


def test_the_relabelled_identity_runs_are_the_references_own_in_float64():
    """reference_run(output="identity") trains what ref.model trains (so its float32 runs measure that run's
    spread): in float64 a relabelling changes only summation orders."""
    dims = [20, 7, 5, 1]
    X, Y = teacher_regression(dims[0], 1, 64, seed=3)
    ref_params, ref_costs = ref.model(X, Y, dims, learning_rate=0.05, num_epochs=50, **IDENTITY)
    costs, params = reference_run(X, Y, dims, 0.05, 50, np.float64, 1, output="identity")
    assert curve_deviation(costs, ref_costs) < RUN_RTOL64
    assert parameter_deviation(params, ref_params) < RUN_RTOL64


# ---------------------------------------------------------------------------- DNNRegressor


def regression_data(m=240, n=6, k=None, seed=0):
    """X (m, n) and smooth targets: y (m,) when k is None, else Y (m, k); of order 1, as the rates suit."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    W = rng.standard_normal((n, 1 if k is None else k)) / np.sqrt(n)
    Y = np.tanh(X @ W) + 0.5 * (X @ W) ** 2 + 0.05 * rng.standard_normal((m, W.shape[1]))
    return X, (Y[:, 0] if k is None else Y)


@pytest.mark.parametrize("k", [None, 2], ids=["one-target", "two-targets"])
def test_fit_is_the_model_function_with_the_same_options(single_blas_thread, k):
    """The regressor is a thin layer over the engine: its run is the reference's model() with the identity output
    and the squared error, and the same options (float64, 15 epochs: summation orders differ only)."""
    X, y = regression_data(m=120, k=k)
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(5, 4), optimizer="momentum", learning_rate=0.05, batch_size=32,
                               max_iter=15, random_state=3, l2=0.1).fit(X, y)
    Y = y.reshape(len(y), -1).T
    p_ref, c_ref = ref.model(X.T, Y, [6, 5, 4, Y.shape[0]], learning_rate=0.05, num_epochs=15, mini_batch_size=32,
                             optimizer="momentum", lambd=0.1, seed=3, **IDENTITY)
    assert est.network_["output"] == "identity" and est.network_["loss"] == "mse"
    assert_close(est.loss_curve_, c_ref, rtol=RUN_RTOL64, name="cost curve")
    for key in p_ref:
        assert_close(est.parameters_[key], p_ref[key], rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)
    expected = ref.predict(X.T, p_ref, output="identity").T
    assert_close(est.predict(X), expected[:, 0] if k is None else expected, rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64)


def test_predictions_have_mlpregressors_shapes():
    """y (m,) predicts (m,), y (m, k) predicts (m, k), and a column vector (m, 1) is used raveled with the
    DataConversionWarning, as scikit-learn's MLPRegressor does it (checked against MLPRegressor itself)."""
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    from sklearn.exceptions import DataConversionWarning
    from sklearn.neural_network import MLPRegressor

    X, Y = regression_data(m=60, k=3)
    for y in (Y[:, 0], Y, Y[:, :1]):
        ours = fastdnn.DNNRegressor(max_iter=2, random_state=0)
        theirs = MLPRegressor(max_iter=2, random_state=0)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            ours.fit(X, y)
            theirs.fit(X, y)
        conversions = [w for w in seen if issubclass(w.category, DataConversionWarning)]
        assert len(conversions) == (2 if y.ndim == 2 and y.shape[1] == 1 else 0), [str(w.message) for w in seen]
        assert ours.predict(X).shape == theirs.predict(X).shape
        assert ours.n_outputs_ == theirs.n_outputs_
        assert not hasattr(ours, "classes_")
    assert sklearn.base.is_regressor(ours)


def test_score_is_scikit_learns_r2_averaged_over_the_targets():
    pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    from sklearn.metrics import r2_score

    X, Y = regression_data(k=3)
    Y[:, 2] *= 100  # targets of other scales: a uniform average, not one weighted by variance
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(16,), max_iter=20, random_state=0).fit(X, Y)
    predictions = est.predict(X)
    # The same sums in another order: a few ulp of each 1 - residual / spread, of order 1.
    assert est.score(X, Y) == pytest.approx(r2_score(Y, predictions), rel=1e-12)
    rows = np.arange(10, 200, 3)
    assert est.score(X, Y, rows=rows) == pytest.approx(r2_score(Y[rows], predictions[rows]), rel=1e-12)
    constant = np.full(len(X), 2.0)
    from fastdnn.labels import r2_score as ours

    # scikit-learn's rule for a constant target: 1.0 when predicted exactly, else 0.0.
    assert ours(constant, constant) == r2_score(constant, constant) == 1.0
    assert ours(constant, constant + 1) == r2_score(constant, constant + 1) == 0.0


def test_partial_fit_continues_like_fit_epoch_by_epoch():
    X, y = regression_data(m=200)
    full = fastdnn.DNNRegressor(hidden_layer_sizes=(6,), max_iter=4, random_state=2).fit(X, y)
    inc = fastdnn.DNNRegressor(hidden_layer_sizes=(6,), max_iter=1, random_state=2)
    for _ in range(4):
        inc.partial_fit(X, y)
    assert np.array_equal(inc.parameters_.flat, full.parameters_.flat)
    assert inc.loss_curve_ == full.loss_curve_


def test_warm_start_continues_where_fit_stopped_and_keeps_the_targets():
    X, Y = regression_data(m=200, k=2)
    once = fastdnn.DNNRegressor(max_iter=6, random_state=4).fit(X, Y)
    twice = fastdnn.DNNRegressor(max_iter=3, random_state=4, warm_start=True)
    twice.fit(X, Y).fit(X, Y)
    assert np.array_equal(twice.parameters_.flat, once.parameters_.flat)
    assert twice.n_iter_ == 6
    with pytest.raises(ValueError, match=r"warm_start: y has 1 target\(s\), the fitted network 2"):
        twice.fit(X, Y[:, 0])
    with pytest.raises(ValueError, match=r"y has 1 target\(s\), the fitted network 2"):
        twice.partial_fit(X, Y[:, 0])


def test_early_stopping_keeps_the_parameters_of_the_best_validation_r2():
    X, y = regression_data(m=400, seed=5)
    options = dict(hidden_layer_sizes=(16,), random_state=0, learning_rate=0.02)
    est = fastdnn.DNNRegressor(max_iter=300, early_stopping=True, n_iter_no_change=5, **options).fit(X, y)
    scores = est.validation_scores_
    best = int(np.argmax(scores))
    assert est.n_iter_ < 300 and best < len(scores) - 1  # training went on past the best epoch
    assert est.best_validation_score_ == scores[best]
    # The split of fastdnn.labels.split_rows, as the classifier's: the first round(0.1 m) of one permutation.
    perm = np.random.default_rng(0).permutation(len(y))
    n_val = round(0.1 * len(y))
    train = np.sort(perm[n_val:])
    stopped = fastdnn.DNNRegressor(max_iter=best + 1, **options).fit(X[train], y[train])
    np.testing.assert_array_equal(est.parameters_.flat, stopped.parameters_.flat)
    held = np.sort(perm[:n_val])  # in split_rows' order, so that the R^2 sums run in the same order
    assert est.score(X[held], y[held]) == est.best_validation_score_  # the score is the R^2


def test_callbacks_see_the_validation_r2():
    X, y = regression_data(m=200)
    seen = []
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=1)
    est.fit(X[:150], y[:150], validation_data=(X[150:], y[150:]), callbacks=[lambda info: seen.append(info)])
    assert [info.epoch for info in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].validation_score == est.score(X[150:], y[150:]) == est.validation_scores_[-1]


def test_transfer_from_a_classifier_keeps_its_layers():
    X, y = regression_data(m=200)
    source = fastdnn.DNNClassifier(hidden_layer_sizes=(12, 6), max_iter=5, random_state=0).fit(X, y > np.median(y))
    est = fastdnn.DNNRegressor.from_pretrained(source, keep_layers=1, hidden_layer_sizes=(12, 4), max_iter=5).fit(X, y)
    assert np.array_equal(est.parameters_["W1"], source.parameters_["W1"])
    assert est.parameters_["W3"].shape == (1, 4)


@pytest.mark.parametrize("bad, message", [
    (dict(y=np.full(240, np.nan)), "Input y contains NaN or infinity"),
    (dict(y=np.array(["a", "b"] * 120)), "y must hold numbers"),
    (dict(y=np.zeros(239)), r"y must be \(n_samples,\) or \(n_samples, n_targets\) with one row per sample \(240\)"),
    (dict(y=None), "DNNRegressor requires y to be passed, but the target y is None"),
])
def test_bad_targets_are_one_clear_error(bad, message):
    X, _ = regression_data()
    with pytest.raises(ValueError, match=message) as info:
        fastdnn.DNNRegressor(max_iter=1).fit(X, bad["y"])
    assert "\n" not in str(info.value)


def test_a_regressor_has_no_output_or_loss_to_choose():
    with pytest.raises(TypeError, match="loss"):
        fastdnn.DNNRegressor(loss="cross_entropy")
    with pytest.raises(ValueError, match="invalid parameter 'output' for DNNRegressor"):
        fastdnn.DNNRegressor().set_params(output="softmax")


def test_scikit_learns_estimator_checks_all_pass_for_the_regressor():
    """check_estimator on DNNRegressor() with its defaults, as the classifier's (tests/test_estimator.py): the
    regressor's checks (train, multi-output, int data, 2-D y, y NaN) among the API's."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(fastdnn.DNNRegressor(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"]).splitlines()[0]) for r in results if r["status"] == "failed"]
    names = {r["check_name"] for r in results}
    assert {"check_regressors_train", "check_regressor_multioutput", "check_supervised_y_2d"} <= names
    assert len(results) >= 50 and failed == []


# ---------------------------------------------------------------------------- data on disk, files, ONNX


@pytest.fixture
def on_disk(tmp_path):
    """3,000 x 64 float64 (1.5 MB, more than memory="1MB": streamed in blocks) with one target beside it (.npy) and
    two targets as an array."""
    X, Y = regression_data(m=3000, n=64, k=2, seed=8)
    np.save(tmp_path / "d.npy", X)
    np.save(tmp_path / "d.labels.npy", Y[:, 0])
    return X, Y, str(tmp_path / "d.npy")


@pytest.mark.parametrize("k", [1, 2], ids=["labels-beside", "two-targets-given"])
def test_streamed_from_disk_is_the_in_memory_kernel_fed_the_same_order_bit_for_bit(on_disk, k):
    """fit on a path larger than ``memory`` streams it in blocks (``fastdnn.stream``): the run equals the compiled
    training loop over all of X in memory fed the streamed row order, bit for bit (float64), as tests/test_stream.py
    holds the classifier's."""
    from test_stream import in_memory_order

    from fastdnn.kernels import compiled
    from fastdnn.kernels import network as N
    from fastdnn.pipeline import initialize_parameters
    from fastdnn.stream import block_rows_for, parse_memory

    X, Y, path = on_disk
    batch, epochs, seed = 32, 3, 11
    options = dict(hidden_layer_sizes=(16, 8), batch_size=batch, max_iter=epochs, random_state=seed, learning_rate=0.01)
    est = fastdnn.DNNRegressor(memory="1MB", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no column-vector warning: one target is a 1-D file of labels
        est.fit(path, None if k == 1 else Y)
    assert est.n_outputs_ == k
    block = block_rows_for(parse_memory("1MB"), X.shape[1], k, np.float64, batch)
    assert block < len(X)  # streamed, in more than one block
    dims = np.array([X.shape[1], 16, 8, k], np.int64)
    theta = initialize_parameters(dims, "deep", seed, np.float64).flat
    targets = Y[:, :k].copy()
    A = np.empty(batch * int(dims[1:].sum()))
    work = N.Workspace(np.empty((batch, X.shape[1])), np.empty((batch, k)), A, np.empty_like(A), np.empty_like(theta))
    state, costs = np.zeros(2 * theta.size), np.zeros(epochs)
    engine = est.engine_
    args = (X, targets, theta, dims, *engine.codes, 0, engine.opt, engine.hyper, engine.lambd, state, 0,
            in_memory_order(seed, len(X), block, epochs), batch, epochs, costs, work)
    assert compiled(N.train, args, "train")(*args)[2] == N.STOP_NONE
    assert np.array_equal(est.parameters_.flat, theta)
    assert np.array_equal(est.loss_curve_, costs / len(X))
    # Predictions and the score read the file a block at a time too.
    expected = est.predict(X)
    assert np.array_equal(est.predict(path), expected)
    assert est.score(path, None if k == 1 else Y) == est.score(X, Y[:, 0] if k == 1 else Y)


def test_full_batch_over_blocks_is_full_batch_gradient_descent(on_disk):
    """The gradient summed over blocks equals the whole batch's up to summation order (test_stream's bound)."""
    X, Y, path = on_disk
    kw = dict(hidden_layer_sizes=(16,), max_iter=5, random_state=0, batch_size=None, optimizer="gd", learning_rate=0.1)
    a = fastdnn.DNNRegressor(**kw).fit(X, Y)
    b = fastdnn.DNNRegressor(**kw, memory="1MB").fit(path, Y)
    np.testing.assert_allclose(b.loss_curve_, a.loss_curve_, rtol=1e-9)
    np.testing.assert_allclose(b.parameters_.flat, a.parameters_.flat, rtol=1e-9, atol=1e-12)


def test_model_files_round_trip_a_regressor_and_refuse_the_other_estimator(tmp_path):
    from fastdnn.io import save_checkpoint

    X, Y = regression_data(m=200, k=2)
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(8,), max_iter=4, random_state=0, early_stopping=True).fit(X, Y)
    est.save(tmp_path / "r.npz")
    loaded = fastdnn.load_model(tmp_path / "r.npz")
    assert type(loaded) is fastdnn.DNNRegressor and loaded.n_outputs_ == 2 and not hasattr(loaded, "classes_")
    assert loaded.get_params() == est.get_params()
    assert np.array_equal(loaded.predict(X), est.predict(X))
    assert loaded.validation_scores_ == est.validation_scores_
    assert type(fastdnn.DNNRegressor.load(tmp_path / "r.npz")) is fastdnn.DNNRegressor
    with pytest.raises(ValueError, match=r"r\.npz: holds a DNNRegressor \(regression\), not a DNNClassifier: load it "
                                         r"with DNNRegressor\.load or fastdnn\.load_model$"):
        fastdnn.DNNClassifier.load(tmp_path / "r.npz")
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0).fit(X, Y[:, 0] > 0)
    clf.save(tmp_path / "c.npz")
    with pytest.raises(ValueError, match=r"c\.npz: holds a DNNClassifier \(classification\), not a DNNRegressor"):
        fastdnn.DNNRegressor.load(tmp_path / "c.npz")
    # A checkpoint continues the regressor's run exactly.
    whole = fastdnn.DNNRegressor(hidden_layer_sizes=(8,), max_iter=6, random_state=0).fit(X, Y)
    half = fastdnn.DNNRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, Y)
    save_checkpoint(half, tmp_path / "r.ckpt.npz")
    resumed = fastdnn.load_checkpoint(tmp_path / "r.ckpt.npz").estimator
    assert type(resumed) is fastdnn.DNNRegressor
    resumed.set_params(warm_start=True).fit(X, Y)
    assert np.array_equal(resumed.parameters_.flat, whole.parameters_.flat)


def test_a_regressor_file_with_classes_or_a_classifiers_options_is_refused(tmp_path):
    X, y = regression_data(m=50)
    fastdnn.DNNRegressor(hidden_layer_sizes=(4,), max_iter=1, random_state=0).fit(X, y).save(tmp_path / "r.npz")
    with np.load(tmp_path / "r.npz") as f:
        arrays = {k: f[k] for k in f.files}
    np.savez(tmp_path / "classes.npz", **arrays, classes=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"classes\.npz: is corrupted: its task is 'regression' but it holds classes"):
        fastdnn.load_model(tmp_path / "classes.npz")
    options = str(arrays["options"]).replace('"activation"', '"loss": "mse", "activation"')
    np.savez(tmp_path / "loss.npz", **{**arrays, "options": np.array(options)})
    with pytest.raises(ValueError, match=r"loss\.npz: is corrupted: its options loss are not a DNNRegressor's"):
        fastdnn.load_model(tmp_path / "loss.npz")


def forward_rounding_bound(parameters, X, u):
    """Element-wise bound on |computed - exact| of a relu network's outputs on X (rows), for any summation order:
    each layer's sums of k + 1 terms within gamma(k + 1) sum|terms|, the inputs' errors carried through |W| (relu
    is exact and 1-Lipschitz), evaluated on float64 values (test_equivalence's running error analysis)."""
    def gamma(k):
        return k * u / (1 - k * u)

    L = len(parameters) // 2
    A, E = np.asarray(X, np.float64), np.zeros(X.shape)
    for l in range(1, L + 1):
        W, b = np.asarray(parameters[f"W{l}"], np.float64), np.asarray(parameters[f"b{l}"], np.float64).T
        E = gamma(W.shape[1] + 1) * ((np.abs(A) + E) @ np.abs(W).T + np.abs(b)) + E @ np.abs(W).T
        A = A @ W.T + b
        if l < L:
            A = np.maximum(A, 0)
    return E


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_onnxruntime_serves_what_the_regressor_predicts(tmp_path, dtype):
    """The exported graph (Gemm, Relu, the identity) computes the kernels' sums in onnxruntime's order: each side
    within ``forward_rounding_bound`` of the exact outputs, so within twice it of each other."""
    onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx (a test extra)")
    ort = pytest.importorskip("onnxruntime", reason="the export is checked with onnxruntime (a test extra)")
    X, Y = regression_data(m=150, k=2)
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(8, 5), max_iter=15, random_state=0, dtype=dtype).fit(X, Y)
    model = est.to_onnx(tmp_path / "r.onnx")
    onnx.checker.check_model(onnx.load(str(tmp_path / "r.onnx")), full_check=True)
    session = ort.InferenceSession(str(tmp_path / "r.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["predictions"]
    Xd = X.astype(dtype)
    (served,) = session.run(None, {"X": Xd})
    assert served.dtype == np.dtype(dtype) and served.shape == (150, 2)
    bound = 2 * forward_rounding_bound(est.parameters_, Xd, np.finfo(dtype).eps / 2)
    assert np.all(np.abs(served.astype(np.float64) - est.predict(Xd)) <= bound)
    assert "predictions" in model.doc_string and "identity output" in model.doc_string


# ---------------------------------------------------------------------------- the command


def run_command(capsys, *argv):
    from fastdnn import cli

    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_command_trains_evaluates_and_predicts_a_regression(tmp_path, capsys):
    """``train --task regression`` is DNNRegressor.fit with the flags' options, bit for bit; ``evaluate`` reports
    its R^2 (its score), RMSE and MAE; ``predict`` writes its values."""
    X, y = regression_data(m=300, seed=3)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "m.npz"
    status, stdout, stderr = run_command(
        capsys, "train", "--data", tmp_path / "d.npz", "--task", "regression", "--layers", "10,6", "--lr", 0.01,
        "--batch-size", 32, "--epochs", 7, "--seed", 5, "--quiet", "--out", out)
    assert status == 0, stderr
    assert "(relu, identity, mse, init deep)" in stdout and "validation R^2" in stdout
    est = fastdnn.DNNRegressor(hidden_layer_sizes=(10, 6), learning_rate=0.01, batch_size=32, max_iter=7,
                               random_state=5).fit(X, y, rows=fastdnn_split(len(y), 5))
    model = fastdnn.load_model(out)
    assert type(model) is fastdnn.DNNRegressor
    npt.assert_array_equal(model.parameters_.flat, est.parameters_.flat)

    status, stdout, stderr = run_command(capsys, "evaluate", out, tmp_path / "d.npz")
    assert status == 0, stderr
    errors = model.predict(X) - y
    assert (f"R^2 {model.score(X, y):.4f}, RMSE {np.sqrt(np.mean(errors**2)):.6g}, MAE {np.mean(np.abs(errors)):.6g} "
            "(300 examples)") in stdout

    status, _, stderr = run_command(capsys, "predict", out, tmp_path / "d.npz", "--out", tmp_path / "p.csv")
    assert status == 0, stderr
    written = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    npt.assert_array_equal(written, model.predict(X))  # repr's digits: the float64 values exactly


def fastdnn_split(m, seed):
    """The rows the command trains on when it holds out its validation fraction (fastdnn.labels.split_rows)."""
    from fastdnn.labels import split_rows

    return split_rows(m, 0.1, seed)[0]


def test_the_command_refuses_what_a_regression_does_not_take_in_one_line(tmp_path, capsys):
    X, y = regression_data(m=100)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    data = ["--data", tmp_path / "d.npz", "--quiet", "--epochs", 1]

    def one_line(*argv):
        status, _, err = run_command(capsys, *argv)
        assert status != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        return err

    assert "--loss: is a classifier's option; --task regression trains a DNNRegressor" in one_line(
        "train", *data, "--task", "regression", "--loss", "mse")
    assert "--output: is a classifier's option" in one_line("train", *data, "--task", "regression", "--output", "softmax")
    # A continuous target is not taken for classes: the message says which flag trains on it.
    err = one_line("train", *data, "--out", tmp_path / "c.npz")
    assert "continuous" in err and "give --task regression" in err
    assert run_command(capsys, "train", *data, "--task", "regression", "--out", tmp_path / "r.npz",
                       "--checkpoint-every", 1)[0] == 0
    assert "differs from the checkpoint's regression" in one_line(
        "train", "--resume", tmp_path / "r.ckpt.npz", "--task", "classification", "--quiet")
    assert "--proba: " in one_line("predict", tmp_path / "r.npz", tmp_path / "d.npz", "--proba")
    np.savez(tmp_path / "text.npz", X=X, y=np.array(["a", "b"] * 50))
    assert "its labels are text" in one_line("evaluate", tmp_path / "r.npz", tmp_path / "text.npz")


def test_the_help_says_a_continuous_target_is_not_detected(capsys):
    from fastdnn import cli

    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--task {classification,regression}" in text
    assert "A continuous target is not detected: give --task regression" in text
