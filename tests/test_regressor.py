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
