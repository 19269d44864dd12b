"""Tests of fastdnn.reference, the plain-numpy oracle the fast path is checked against.

Nothing here compares against the fast path: the reference is held to the
mathematics (finite differences, hand-computed values) and to the course's
published numbers on its cat data.
"""

import numpy as np
import numpy.testing as npt
import pytest
from threadpoolctl import threadpool_limits

from fastdnn import reference

# ---------------------------------------------------------------------------
# Small random networks for the gradient and shape checks
# ---------------------------------------------------------------------------

# No hidden layer, then 1 to 4 hidden layers, with odd sizes.
NETWORKS = [
    pytest.param([5, 1], id="no-hidden"),
    pytest.param([4, 3, 1], id="1-hidden"),
    pytest.param([7, 5, 3, 1], id="2-hidden"),
    pytest.param([3, 9, 5, 7, 1], id="3-hidden"),
    pytest.param([6, 5, 3, 7, 3, 1], id="4-hidden"),
]
EXAMPLE_COUNTS = [pytest.param(1, id="m=1"), pytest.param(7, id="m=7")]

# Central differences move one parameter by EPS, which moves any pre-activation
# by at most EPS * |input| (a few 1e-6 here). A ReLU pre-activation closer to 0
# than KINK_MARGIN could cross the kink, where the cost is not differentiable
# and the finite difference measures nothing; networks are drawn until none is.
EPS = 1e-6
KINK_MARGIN = 1e-4


def _random_problem(layers_dims, m, seed):
    """X (n0, m), Y (1, m) of 0/1, and parameters with non-zero biases, from one seed."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((layers_dims[0], m))
    Y = rng.integers(0, 2, size=(1, m)).astype(np.float64)
    parameters = {}
    for l in range(1, len(layers_dims)):
        # He scaling keeps the signal, and so the gradients, from shrinking with depth.
        parameters[f"W{l}"] = rng.standard_normal((layers_dims[l], layers_dims[l - 1])) * np.sqrt(
            2 / layers_dims[l - 1]
        )
        parameters[f"b{l}"] = 0.5 * rng.standard_normal((layers_dims[l], 1))
    return X, Y, parameters


def _meaningful_problem(layers_dims, m):
    """The first seed whose network is far from every ReLU kink and has no all-zero gradient.

    An all-zero gradient (a layer whose units are all dead for these examples)
    would make the relative error 0/0 and the check empty, so it is skipped
    over like a near-kink draw.
    """
    for seed in range(1000):
        X, Y, parameters = _random_problem(layers_dims, m, seed)
        AL, caches = reference.L_model_forward(X, parameters)
        hidden_Z = [Z for (_, Z) in caches[:-1]]
        if any(np.abs(Z).min() < KINK_MARGIN for Z in hidden_Z):
            continue
        grads = reference.L_model_backward(AL, Y, caches)
        if any(not grads[f"d{key}"].any() for key in parameters):
            continue
        return X, Y, parameters, grads
    raise AssertionError(f"no seed in 0..999 gives a usable network for {layers_dims}, m={m}")


def _cost(X, Y, parameters):
    AL, _ = reference.L_model_forward(X, parameters)
    return reference.compute_cost(AL, Y)


def _numerical_gradient(X, Y, parameters, key):
    """dJ/d parameters[key] by central differences, one element at a time."""
    gradient = np.zeros_like(parameters[key])
    for index in np.ndindex(gradient.shape):
        shifted = {name: value.copy() for name, value in parameters.items()}
        shifted[key][index] += EPS
        cost_plus = _cost(X, Y, shifted)
        shifted[key][index] -= 2 * EPS
        cost_minus = _cost(X, Y, shifted)
        gradient[index] = (cost_plus - cost_minus) / (2 * EPS)
    return gradient


@pytest.mark.parametrize("m", EXAMPLE_COUNTS)
@pytest.mark.parametrize("layers_dims", NETWORKS)
def test_backward_gradients_match_central_differences_of_cost(layers_dims, m):
    X, Y, parameters, grads = _meaningful_problem(layers_dims, m)
    for key in parameters:
        analytic = grads[f"d{key}"]
        numerical = _numerical_gradient(X, Y, parameters, key)
        relative_error = np.linalg.norm(analytic - numerical) / (
            np.linalg.norm(analytic) + np.linalg.norm(numerical)
        )
        # Central differences err by O(EPS**2) = 1e-12 from truncation and by
        # O(1e-16 / EPS) = 1e-10 per element from rounding the cost (~0.7).
        # Against these gradients (norms 1e-2..1) that is at most a few 1e-9
        # (measured: 3.5e-9 worst), while a wrong factor or a missing term
        # gives errors of order 1e-1..1.
        assert relative_error < 1e-7, f"{key}: relative error {relative_error:.2e}"


@pytest.mark.parametrize("m", EXAMPLE_COUNTS)
@pytest.mark.parametrize("layers_dims", NETWORKS)
def test_forward_caches_and_gradients_have_course_shapes(layers_dims, m):
    X, Y, parameters = _random_problem(layers_dims, m, seed=0)
    L = len(layers_dims) - 1

    AL, caches = reference.L_model_forward(X, parameters)
    assert AL.shape == (1, m)
    assert len(caches) == L
    for l, ((A_prev, W, b), Z) in enumerate(caches, start=1):
        assert A_prev.shape == (layers_dims[l - 1], m)
        assert W.shape == (layers_dims[l], layers_dims[l - 1])
        assert b.shape == (layers_dims[l], 1)
        assert Z.shape == (layers_dims[l], m)

    grads = reference.L_model_backward(AL, Y, caches)
    expected_keys = {f"dA{l}" for l in range(L)} | {f"d{p}{l}" for p in "Wb" for l in range(1, L + 1)}
    assert set(grads) == expected_keys
    for l in range(L):
        assert grads[f"dA{l}"].shape == (layers_dims[l], m)
    for l in range(1, L + 1):
        assert grads[f"dW{l}"].shape == (layers_dims[l], layers_dims[l - 1])
        assert grads[f"db{l}"].shape == (layers_dims[l], 1)


# ---------------------------------------------------------------------------
# update_parameters, initialize_parameters_deep, compute_cost
# ---------------------------------------------------------------------------


def test_update_parameters_steps_against_gradient_without_touching_input():
    X, Y, parameters = _random_problem([4, 3, 2, 1], 5, seed=0)
    AL, caches = reference.L_model_forward(X, parameters)
    grads = reference.L_model_backward(AL, Y, caches)
    before = {key: value.copy() for key, value in parameters.items()}
    learning_rate = 0.3

    updated = reference.update_parameters(parameters, grads, learning_rate)

    assert set(updated) == set(parameters)
    for key in parameters:
        # One multiply and one subtract in the same order as the rule: bitwise equal.
        npt.assert_array_equal(updated[key], before[key] - learning_rate * grads[f"d{key}"])
        npt.assert_array_equal(parameters[key], before[key])
        assert not np.shares_memory(updated[key], parameters[key])


def test_initialize_parameters_deep_has_course_shapes_and_zero_biases():
    layers_dims = [5, 4, 3, 1]
    parameters = reference.initialize_parameters_deep(layers_dims)
    assert set(parameters) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    for l in range(1, len(layers_dims)):
        assert parameters[f"W{l}"].shape == (layers_dims[l], layers_dims[l - 1])
        assert parameters[f"b{l}"].shape == (layers_dims[l], 1)
        npt.assert_array_equal(parameters[f"b{l}"], 0.0)
        assert parameters[f"W{l}"].any()


def test_initialize_parameters_deep_is_deterministic_whatever_the_global_seed():
    np.random.seed(12345)
    first = reference.initialize_parameters_deep([6, 5, 1])
    np.random.standard_normal(17)  # move the global stream on
    second = reference.initialize_parameters_deep([6, 5, 1])
    for key in first:
        npt.assert_array_equal(first[key], second[key])


def test_initialize_parameters_deep_draws_scaled_randn_after_seed_1_in_layer_order():
    layers_dims = [5, 4, 3, 1]
    np.random.seed(1)
    expected = {
        f"W{l}": np.random.randn(layers_dims[l], layers_dims[l - 1]) / np.sqrt(layers_dims[l - 1])
        for l in range(1, len(layers_dims))
    }
    parameters = reference.initialize_parameters_deep(layers_dims)
    for key, value in expected.items():
        # The same draws divided by the same square root: bitwise equal.
        npt.assert_array_equal(parameters[key], value)


@pytest.mark.parametrize(
    "AL, Y, expected",
    [
        # -(log 0.8 + log 0.9) / 2
        pytest.param([[0.8, 0.1]], [[1, 0]], 0.164252033486018, id="two-examples"),
        # every term is log 2
        pytest.param([[0.5, 0.5, 0.5]], [[1, 0, 1]], 0.6931471805599453, id="coin-flip"),
        # -log 0.25
        pytest.param([[0.75]], [[0]], 1.3862943611198906, id="one-wrong"),
    ],
)
def test_compute_cost_equals_hand_computed_cross_entropy(AL, Y, expected):
    cost = reference.compute_cost(np.array(AL), np.array(Y))
    assert type(cost) is float
    # A few logs and additions in float64: agreement to a few ulps.
    assert cost == pytest.approx(expected, rel=1e-14)


def test_compute_cost_equals_numpy_cross_entropy_on_random_batch():
    rng = np.random.default_rng(3)
    AL = rng.uniform(0.01, 0.99, size=(1, 31))
    Y = rng.integers(0, 2, size=(1, 31))
    expected = -np.mean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))
    # Same terms summed in a different order (dot vs mean): ~31 ulps at most.
    assert reference.compute_cost(AL, Y) == pytest.approx(expected, rel=1e-13)


# ---------------------------------------------------------------------------
# L_layer_model and predict on a small separable problem
# ---------------------------------------------------------------------------


def _separable_problem(m=120):
    """Points in the plane labelled by the side of the line x0 + x1 = 0, none within 0.3 of it."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((2, 4 * m))
    margin = (X[0] + X[1]) / np.sqrt(2)
    X = X[:, np.abs(margin) > 0.3][:, :m]
    Y = (X[0] + X[1] > 0).astype(np.int64).reshape(1, m)
    return X, Y


def test_L_layer_model_returns_one_cost_per_iteration_decreasing_on_separable_data():
    X, Y = _separable_problem()
    parameters, costs = reference.L_layer_model(X, Y, [2, 5, 3, 1], learning_rate=0.3, num_iterations=300)
    assert len(costs) == 300
    assert all(type(cost) is float for cost in costs)
    assert np.all(np.diff(costs) < 0), "full-batch descent with a small step must lower the cost every step"
    assert costs[-1] < 0.5 * costs[0]
    assert set(parameters) == {"W1", "b1", "W2", "b2", "W3", "b3"}


def test_predict_returns_0_1_int_row_that_fits_separable_data():
    X, Y = _separable_problem()
    parameters, _ = reference.L_layer_model(X, Y, [2, 5, 3, 1], learning_rate=0.3, num_iterations=300)
    predictions = reference.predict(X, parameters)
    assert predictions.shape == (1, X.shape[1])
    assert predictions.dtype.kind == "i"
    assert set(np.unique(predictions)) <= {0, 1}
    assert np.mean(predictions == Y) >= 0.95


def test_predict_thresholds_forward_probability_at_one_half():
    X, _ = _separable_problem()
    _, _, parameters = _random_problem([2, 4, 1], 1, seed=0)
    probabilities, _ = reference.L_model_forward(X, parameters)
    assert 0 < np.mean(probabilities > 0.5) < 1, "need both classes for the check to mean anything"
    npt.assert_array_equal(reference.predict(X, parameters), (probabilities > 0.5).astype(int))


def test_L_layer_model_prints_cost_every_100_iterations_and_at_the_last(capsys):
    X, Y = _separable_problem()
    _, costs = reference.L_layer_model(X, Y, [2, 3, 1], learning_rate=0.1, num_iterations=250, print_cost=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Cost after iteration {i}: {costs[i]:.6f}" for i in (0, 100, 200, 249)]


# ---------------------------------------------------------------------------
# Bad input: one table of (what is changed, expected exception, message)
# ---------------------------------------------------------------------------

GOOD_X = np.arange(15, dtype=np.float64).reshape(3, 5) / 15
GOOD_Y = np.array([[0, 1, 1, 0, 1]])
GOOD_TRAINING = dict(X=GOOD_X, Y=GOOD_Y, layers_dims=[3, 4, 1], learning_rate=0.1, num_iterations=3)


def _with(X, row, column, value):
    """A copy of X with X[row, column] = value."""
    X = X.copy()
    X[row, column] = value
    return X


BAD_INPUTS = [
    pytest.param({"X": GOOD_X.ravel()}, ValueError, r"X must be 2-D .* got shape \(15,\)", id="X-1d"),
    pytest.param({"X": GOOD_X[None]}, ValueError, r"X must be 2-D .* got shape \(1, 3, 5\)", id="X-3d"),
    pytest.param({"X": GOOD_X[:, :0]}, ValueError, r"X must have at least one .* example", id="X-no-examples"),
    pytest.param({"X": _with(GOOD_X, 1, 2, np.nan)}, ValueError, r"X contains NaN or Inf .*\(1, 2\)", id="X-nan"),
    pytest.param({"X": _with(GOOD_X, 2, 0, np.inf)}, ValueError, r"X contains NaN or Inf .*\(2, 0\)", id="X-inf"),
    pytest.param({"X": _with(GOOD_X, 0, 4, -np.inf)}, ValueError, r"X contains NaN or Inf .*\(0, 4\)", id="X-minus-inf"),
    pytest.param({"X": GOOD_X.astype(str)}, TypeError, r"X must be numeric", id="X-strings"),
    pytest.param({"Y": GOOD_Y[:, :4]}, ValueError, r"X has 5 columns \(examples\) but Y has 4", id="XY-columns-differ"),
    pytest.param({"Y": GOOD_Y.ravel()}, ValueError, r"Y must have shape \(1, m\), got shape \(5,\)", id="Y-1d"),
    pytest.param({"Y": GOOD_Y.T}, ValueError, r"Y must have shape \(1, m\), got shape \(5, 1\)", id="Y-column"),
    pytest.param({"Y": np.vstack([GOOD_Y, GOOD_Y])}, ValueError, r"Y must have shape \(1, m\), got shape \(2, 5\)", id="Y-two-rows"),
    pytest.param({"Y": np.array([[0, 1, 2, 0, 1]])}, ValueError, r"Y must contain only 0 and 1 .*\[2\]", id="Y-label-2"),
    pytest.param({"Y": np.array([[0, 1, 0.5, 0, 1]])}, ValueError, r"Y must contain only 0 and 1 .*\[0\.5\]", id="Y-fraction"),
    pytest.param({"Y": np.array([[0, 1, np.nan, 0, 1]])}, ValueError, r"Y must contain only 0 and 1", id="Y-nan"),
    pytest.param({"Y": GOOD_Y.astype(str)}, TypeError, r"Y must be numeric", id="Y-strings"),
    pytest.param({"layers_dims": [4, 4, 1]}, ValueError, r"layers_dims\[0\] = 4 but X has 3 features", id="dims-input-mismatch"),
    pytest.param({"layers_dims": [3]}, ValueError, r"layers_dims needs at least 2 sizes .* got 1", id="dims-one-size"),
    pytest.param({"layers_dims": []}, ValueError, r"layers_dims needs at least 2 sizes .* got 0", id="dims-empty"),
    pytest.param({"layers_dims": [3, 0, 1]}, ValueError, r"layers_dims must be positive, got \[3, 0, 1\]", id="dims-zero"),
    pytest.param({"layers_dims": [3, -2, 1]}, ValueError, r"layers_dims must be positive, got \[3, -2, 1\]", id="dims-negative"),
    pytest.param({"layers_dims": [3, 4.0, 1]}, ValueError, r"layers_dims must be a sequence of positive integers", id="dims-float"),
    pytest.param({"learning_rate": 0}, ValueError, r"learning_rate must be a finite positive number, got 0", id="lr-zero"),
    pytest.param({"learning_rate": -0.1}, ValueError, r"learning_rate must be a finite positive number, got -0\.1", id="lr-negative"),
    pytest.param({"learning_rate": np.nan}, ValueError, r"learning_rate must be a finite positive number, got nan", id="lr-nan"),
    pytest.param({"learning_rate": "0.1"}, ValueError, r"learning_rate must be a positive number", id="lr-string"),
    pytest.param({"num_iterations": 0}, ValueError, r"num_iterations must be a positive integer, got 0", id="iterations-zero"),
    pytest.param({"num_iterations": -5}, ValueError, r"num_iterations must be a positive integer, got -5", id="iterations-negative"),
    pytest.param({"num_iterations": 2.5}, ValueError, r"num_iterations must be a positive integer, got 2\.5", id="iterations-fraction"),
    pytest.param({"num_iterations": 3.0}, ValueError, r"num_iterations must be a positive integer, got 3\.0", id="iterations-float"),
    pytest.param({"num_iterations": True}, ValueError, r"num_iterations must be a positive integer, got True", id="iterations-bool"),
]


@pytest.mark.parametrize("change, error, message", BAD_INPUTS)
def test_L_layer_model_rejects_bad_input_naming_the_problem(change, error, message):
    with pytest.raises(error, match=message):
        reference.L_layer_model(**{**GOOD_TRAINING, **change})


def _constant_parameters(layers_dims):
    """Well-formed parameters for layers_dims: W of ones, b of zeros."""
    parameters = {}
    for l in range(1, len(layers_dims)):
        parameters[f"W{l}"] = np.ones((layers_dims[l], layers_dims[l - 1]))
        parameters[f"b{l}"] = np.zeros((layers_dims[l], 1))
    return parameters


# predict shares the checks on X; its parameters must fit X's feature count.
BAD_PREDICT_INPUTS = [case for case in BAD_INPUTS if set(case.values[0]) == {"X"}] + [
    pytest.param(
        {"parameters": _constant_parameters([4, 2, 1])},
        ValueError,
        r"the network expects 4 features \(W1 has 4 columns\) but X has 3",
        id="W1-features-mismatch",
    ),
]


@pytest.mark.parametrize("change, error, message", BAD_PREDICT_INPUTS)
def test_predict_rejects_bad_input_naming_the_problem(change, error, message):
    good = dict(X=GOOD_X, parameters=_constant_parameters([3, 4, 1]))
    with pytest.raises(error, match=message):
        reference.predict(**{**good, **change})


def test_good_inputs_of_the_bad_input_table_are_accepted():
    """The table's base case must pass, so each failure above is due to its one change."""
    parameters, costs = reference.L_layer_model(**GOOD_TRAINING)
    assert len(costs) == GOOD_TRAINING["num_iterations"]
    assert reference.predict(GOOD_X, parameters).shape == (1, 5)


# ---------------------------------------------------------------------------
# The course's cat / non-cat run
# ---------------------------------------------------------------------------

# Published in the course's application notebook ("Deep Neural Network for
# Image Classification: Application", 4-layer model), which ran its own code:
# these are external numbers, not outputs of this module, so holding the
# reference to them is a real check. The notebook prints costs with 6 decimals.
COURSE_CAT_DIMS = [12288, 20, 7, 5, 1]
COURSE_CAT_COSTS = {0: 0.771749, 100: 0.672053, 1000: 0.315187, 2400: 0.092878}
COURSE_CAT_TRAIN_CORRECT = 206  # "Accuracy: 0.985645933014" of 209
COURSE_CAT_TEST_CORRECT = 40  # "Accuracy: 0.8" of 50


@pytest.fixture(scope="module")
def cat_run(cat_data):
    """One 2500-iteration run of the course's 4-layer model, shared by the tests below."""
    # One BLAS thread was measured fastest on the 2-core box these tests were
    # written on: 200 iterations took 3.2 s with one thread, 10 s with two.
    with threadpool_limits(1):
        parameters, costs = reference.L_layer_model(
            cat_data.train_x, cat_data.train_y, COURSE_CAT_DIMS, learning_rate=0.0075, num_iterations=2500
        )
        train_predictions = reference.predict(cat_data.train_x, parameters)
        test_predictions = reference.predict(cat_data.test_x, parameters)
    return costs, train_predictions, test_predictions


@pytest.mark.slow
def test_cat_run_records_one_cost_per_iteration(cat_run):
    costs, _, _ = cat_run
    assert len(costs) == 2500


@pytest.mark.slow
@pytest.mark.parametrize("iteration, published", sorted(COURSE_CAT_COSTS.items()))
def test_cat_run_reproduces_course_published_cost(cat_run, iteration, published):
    costs, _, _ = cat_run
    # The published value is rounded to 6 decimals (+-5e-7); 1e-6 leaves room
    # for BLAS summation-order differences in the last digits.
    assert costs[iteration] == pytest.approx(published, abs=1e-6)


@pytest.mark.slow
def test_cat_run_reproduces_course_train_accuracy(cat_run, cat_data):
    _, train_predictions, _ = cat_run
    assert int(np.sum(train_predictions == cat_data.train_y)) == COURSE_CAT_TRAIN_CORRECT
    assert cat_data.train_y.shape[1] == 209


@pytest.mark.slow
def test_cat_run_reproduces_course_test_accuracy(cat_run, cat_data):
    _, _, test_predictions = cat_run
    assert int(np.sum(test_predictions == cat_data.test_y)) == COURSE_CAT_TEST_CORRECT
    assert cat_data.test_y.shape[1] == 50
