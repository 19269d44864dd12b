"""The reference's options (activations, outputs, losses, L2, optimizers, mini-batches,
initialisations, frozen layers) hold their contract.

Gradients are checked against central differences (fastdnn.gradcheck), the
optimizers against steps computed by hand, and ``model`` against
``L_layer_model`` (bit for bit with the defaults) and against a loop written
out from the public functions.
"""

import itertools
import re
import zlib

import numpy as np
import numpy.testing as npt
import pytest

from fastdnn import validation as V
from fastdnn import reference as R
from fastdnn.gradcheck import gradient_check, numerical_gradients

# Central differences err by O(eps^2) (truncation, ~1e-12 at eps = 1e-6) plus
# the roundoff of the two costs over 2 eps (~1e-16 / 1e-6 = 1e-10 per entry).
# eps = 1e-6 keeps both far below the course's 1e-7 threshold: the worst
# relative difference over every case below is ~6e-9 (at the default 1e-7
# roundoff dominates and the worst case reaches ~7e-8, too close to 1e-7).
GRADCHECK_EPSILON = 1e-6
GRADCHECK_TOLERANCE = 1e-7
# A ReLU-type pre-activation this close to 0 could cross its kink when a weight
# moves by GRADCHECK_EPSILON (it moves by at most eps * |input| ~ 1e-5 here).
KINK_MARGIN = 1e-4

DEPTHS = (1, 2, 3)
EXAMPLE_COUNTS = (1, 5, 13)
HIDDEN_SIZES = (7, 3)  # odd sizes, so no shape is accidentally square or symmetric


def _seed(*case):
    """A stable seed for a test case (Python's hash() of a str changes run to run)."""
    return zlib.crc32(repr(case).encode())


def _labels(output, K, m, rng):
    """Y (1, m) of 0/1 for a sigmoid output, one-hot (K, m) for softmax, real (K, m) for identity (regression)."""
    if output == "softmax":
        return np.eye(K)[:, rng.integers(0, K, m)]
    if output == "identity":
        return rng.standard_normal((K, m))
    return (rng.random((1, m)) < 0.5).astype(np.float64)


def _random_network(dims, rng):
    """W ~ randn / sqrt(n_{l-1}) and small non-zero b, so biases are exercised too."""
    parameters = {}
    for l in range(1, len(dims)):
        parameters[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])
        parameters[f"b{l}"] = 0.1 * rng.standard_normal((dims[l], 1))
    return parameters


def _closest_hidden_preactivation_to_zero(X, parameters, hidden_activation, output):
    """min |Z[l]| over the hidden layers (inf with none)."""
    _, caches = R.L_model_forward(X, parameters, hidden_activation, output)
    return min((np.min(np.abs(Z)) for _, Z in caches[:-1]), default=np.inf)


def _gradcheck_case(hidden_activation, output, depth, m, seed):
    """(X, Y, parameters) of a small random net whose hidden pre-activations avoid 0 by KINK_MARGIN.

    Draws again (deterministically) until the margin holds: a draw fails with
    probability ~1e-2, so the loop ends within a few tries.
    """
    K = {"softmax": 3, "identity": 2}.get(output, 1)
    dims = [5, *HIDDEN_SIZES[: depth - 1], K]
    rng = np.random.default_rng(seed)
    for _ in range(100):
        parameters = _random_network(dims, rng)
        X = rng.standard_normal((dims[0], m))
        if _closest_hidden_preactivation_to_zero(X, parameters, hidden_activation, output) > KINK_MARGIN:
            return X, _labels(output, K, m, rng), parameters
    raise AssertionError("no draw kept the pre-activations away from 0")


GRADCHECK_CASES = [
    case for case in itertools.product(R.HIDDEN_ACTIVATIONS, R.OUTPUTS, R.LOSSES, (0.0, 0.7), DEPTHS, EXAMPLE_COUNTS)
    if case[2] in V.OUTPUT_LOSSES[case[1]]  # an identity output takes the squared error only
]


@pytest.mark.parametrize("hidden_activation, output, loss, lambd, depth, m", GRADCHECK_CASES)
def test_backward_matches_central_differences_for_every_option(
    hidden_activation, output, loss, lambd, depth, m
):
    X, Y, parameters = _gradcheck_case(
        hidden_activation, output, depth, m, _seed(hidden_activation, output, loss, lambd, depth, m)
    )
    assert _closest_hidden_preactivation_to_zero(X, parameters, hidden_activation, output) > KINK_MARGIN
    difference = gradient_check(
        X, Y, parameters, hidden_activation, output, loss, lambd, epsilon=GRADCHECK_EPSILON
    )
    assert difference < GRADCHECK_TOLERANCE


@pytest.mark.parametrize(
    "hidden_activation, output, loss, lambd",
    [
        ("relu", "sigmoid", "cross_entropy", 0.0),
        ("leaky_relu", "softmax", "mse", 0.7),
        ("tanh", "softmax", "cross_entropy", 0.3),
    ],
)
def test_numerical_gradients_match_backward_key_by_key(hidden_activation, output, loss, lambd):
    X, Y, parameters = _gradcheck_case(hidden_activation, output, 3, 13, _seed("per key", output))
    AL, caches = R.L_model_forward(X, parameters, hidden_activation, output)
    grads = R.L_model_backward(AL, Y, caches, hidden_activation, output, loss, lambd)
    numeric = numerical_gradients(X, Y, parameters, hidden_activation, output, loss, lambd, GRADCHECK_EPSILON)
    assert sorted(numeric) == sorted(key for key in grads if not key.startswith("dA"))
    for key, value in numeric.items():
        # Per entry the error is ~1e-10 (see GRADCHECK_EPSILON); 1e-8 absolute
        # leaves a 100x margin and still fails any wrong term (gradients ~1e-2..1).
        npt.assert_allclose(grads[key], value, rtol=1e-6, atol=1e-8, err_msg=key)


def test_gradient_check_passes_at_the_course_epsilon_on_the_course_network():
    X, Y, parameters = _gradcheck_case("relu", "sigmoid", 3, 13, _seed("course"))
    # The course's epsilon 1e-7 and threshold 1e-7 on its own network.
    assert gradient_check(X, Y, parameters) < 1e-7


def test_gradient_check_catches_a_wrong_backward(monkeypatch):
    X, Y, parameters = _gradcheck_case("tanh", "sigmoid", 2, 5, _seed("wrong"))
    forgets_the_derivative = lambda dA, cache: dA  # noqa: E731 (a deliberate bug)
    monkeypatch.setitem(R.ACTIVATIONS, "tanh", (R.tanh, forgets_the_derivative))
    # Dropping tanh' changes the hidden layer's gradients by tens of percent.
    assert gradient_check(X, Y, parameters, "tanh", epsilon=GRADCHECK_EPSILON) > 1e-2


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def test_leaky_relu_has_slope_one_hundredth_at_and_below_zero():
    Z = np.array([[-2.0, 0.0, 3.0]])
    A, cache = R.leaky_relu(Z)
    npt.assert_array_equal(A, [[-0.02, 0.0, 3.0]])
    npt.assert_array_equal(R.leaky_relu_backward(np.array([[5.0, 5.0, 5.0]]), cache), [[0.05, 0.05, 5.0]])


def test_softmax_columns_are_distributions_and_large_logits_do_not_overflow():
    Z = np.array([[1.0, 1000.0, -3.0], [2.0, 1001.0, -3.0]])
    A, cache = R.softmax(Z)
    assert cache is Z
    # Column sums are 1 up to a couple of ulps of the division.
    npt.assert_allclose(A.sum(axis=0), 1.0, rtol=1e-15)
    e = np.exp(1.0)
    # softmax is shift-invariant: columns 0 and 1 hold the same logits up to a shift.
    npt.assert_allclose(A[:, 0], [1 / (1 + e), e / (1 + e)], rtol=1e-15)
    npt.assert_allclose(A[:, 1], A[:, 0], rtol=1e-15)
    npt.assert_array_equal(A[:, 2], [0.5, 0.5])


ONE_UNIT = {"W1": np.ones((1, 2)), "b1": np.zeros((1, 1))}


def test_reference_function_tables_cover_exactly_the_option_tables():
    # The reference's own activation functions are a table of its own: it must name exactly the
    # validation table's activations (and the outputs), or a name would pass the check and fail later.
    assert set(R.HIDDEN_ACTIVATIONS) == set(V.HIDDEN_ACTIVATIONS)
    assert set(R.ACTIVATIONS) == set(V.HIDDEN_ACTIVATIONS) | set(V.OUTPUTS)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: R.L_model_forward(np.ones((2, 1)), ONE_UNIT, hidden_activation="softmax"),
         "unknown hidden_activation 'softmax'; choose one of ['leaky_relu', 'relu', 'sigmoid', 'tanh']"),
        (lambda: R.L_model_forward(np.ones((2, 1)), ONE_UNIT, output="linear"),
         "unknown output 'linear'; choose one of ['identity', 'sigmoid', 'softmax']"),
        (lambda: R.compute_cost(np.full((1, 1), 0.5), np.ones((1, 1)), loss="hinge"),
         "unknown loss 'hinge'; choose one of ['cross_entropy', 'mse']"),
        (lambda: R.initialize_parameters([2, 1], init="zeros"),
         "unknown init 'zeros'; choose one of ['deep', 'he', 'xavier']"),
        (lambda: R.model(np.ones((2, 3)), np.ones((1, 3)), [2, 1], optimizer="sgdd"),
         "unknown optimizer 'sgdd'; choose one of ['adam', 'gd', 'momentum']"),
    ],
)
def test_unknown_names_raise_listing_the_valid_ones(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [[5, 1], [12288, 20, 7, 5, 1], [3, 9, 4, 3]])
def test_deep_init_with_seed_1_is_the_course_init_bit_for_bit(dims):
    course = R.initialize_parameters_deep(dims)
    ours = R.initialize_parameters(dims, "deep", 1)
    assert course.keys() == ours.keys()
    for key in course:
        npt.assert_array_equal(ours[key], course[key])


@pytest.mark.parametrize("init", R.INITIALIZATIONS)
def test_init_scales_the_seeded_draws_in_layer_order(init):
    dims = [5, 7, 3]
    rng = np.random.RandomState(4)
    raw = [rng.randn(7, 5), rng.randn(3, 7)]
    scale = {
        "deep": [1 / np.sqrt(5), 1 / np.sqrt(7)],
        "he": [np.sqrt(2 / 5), np.sqrt(2 / 7)],
        "xavier": [np.sqrt(2 / (5 + 7)), np.sqrt(2 / (7 + 3))],
    }[init]
    parameters = R.initialize_parameters(dims, init, seed=4)
    for l in (1, 2):
        # deep divides by sqrt(n) where this multiplies by 1/sqrt(n): a last-bit difference.
        npt.assert_allclose(parameters[f"W{l}"], raw[l - 1] * scale[l - 1], rtol=1e-15)
        npt.assert_array_equal(parameters[f"b{l}"], np.zeros((dims[l], 1)))


def test_initialize_parameters_leaves_the_global_random_state_alone():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    R.initialize_parameters([4, 3, 1], "he", seed=9)
    assert np.random.rand() == expected


# ---------------------------------------------------------------------------
# Costs
# ---------------------------------------------------------------------------


def test_costs_by_hand():
    # Hand values; pytest.approx's 1e-12 covers the few roundings of each formula.
    AL, Y = np.array([[0.5, 0.25]]), np.array([[1.0, 0.0]])
    assert R.compute_cost(AL, Y, loss="mse") == pytest.approx((0.25 + 0.0625) / 4, rel=1e-12)
    AL3, Y3 = np.array([[0.5, 0.25], [0.5, 0.75]]), np.array([[1.0, 0.0], [0.0, 1.0]])
    assert R.compute_cost(AL3, Y3) == pytest.approx(-(np.log(0.5) + np.log(0.75)) / 2, rel=1e-12)
    parameters = {
        "W1": np.array([[1.0, 2.0]]), "b1": np.array([[5.0]]), "W2": np.array([[3.0]]), "b2": np.zeros((1, 1))
    }
    # lambd / (2m) * (1 + 4 + 9), the biases not counted.
    assert R.compute_cost(AL, Y, parameters, lambd=0.5, loss="mse") == pytest.approx(
        (0.25 + 0.0625) / 4 + 0.5 / 4 * 14, rel=1e-12
    )
    assert isinstance(R.compute_cost(AL3, Y3, loss="mse"), float)


def test_l2_cost_needs_the_parameters():
    with pytest.raises(ValueError, match="parameters"):
        R.compute_cost(np.full((1, 2), 0.5), np.ones((1, 2)), lambd=0.1)


# ---------------------------------------------------------------------------
# Optimizers
# ---------------------------------------------------------------------------


def _tiny_problem():
    """One layer W1 (1, 3), b1 (1, 1) and the gradients of two steps.

    Entry by entry the gradients are g1 = 2, g2 = 4 (W1[0, 0]), g1 = -2, g2 = -4
    (W1[0, 1]), g1 = 0, g2 = 0 (W1[0, 2]) and g1 = 1, g2 = 3 (b1).
    """
    parameters = {"W1": np.array([[1.0, -1.0, 0.5]]), "b1": np.array([[0.25]])}
    g1 = {"dW1": np.array([[2.0, -2.0, 0.0]]), "db1": np.array([[1.0]])}
    g2 = {"dW1": np.array([[4.0, -4.0, 0.0]]), "db1": np.array([[3.0]])}
    return parameters, g1, g2


def test_momentum_two_steps_by_hand():
    parameters, g1, g2 = _tiny_problem()
    v = R.initialize_velocity(parameters)
    assert sorted(v) == ["dW1", "db1"]
    p1, v1 = R.update_parameters_with_momentum(parameters, g1, v, beta=0.5, learning_rate=0.1)
    p2, v2 = R.update_parameters_with_momentum(p1, g2, v1, beta=0.5, learning_rate=0.1)
    # v1 = 0.5 g1; v2 = 0.5 v1 + 0.5 g2. W1[0,0]: v1 = 1, v2 = 2.5; b1: v1 = 0.5, v2 = 1.75.
    npt.assert_array_equal(v1["dW1"], [[1.0, -1.0, 0.0]])
    npt.assert_array_equal(v2["dW1"], [[2.5, -2.5, 0.0]])
    npt.assert_array_equal(v2["db1"], [[1.75]])
    # p2 = p0 - 0.1 v1 - 0.1 v2: the two decimal multiplications round, hence 1e-15.
    npt.assert_allclose(p2["W1"], [[1.0 - 0.1 - 0.25, -1.0 + 0.1 + 0.25, 0.5]], rtol=1e-15)
    npt.assert_allclose(p2["b1"], [[0.25 - 0.05 - 0.175]], rtol=1e-14)


def test_adam_two_steps_by_hand():
    parameters, g1, g2 = _tiny_problem()
    v, s = R.initialize_adam(parameters)
    assert sorted(v) == sorted(s) == ["dW1", "db1"]
    lr, eps = 0.1, 1e-8
    p1, v1, s1 = R.update_parameters_with_adam(parameters, g1, v, s, 1, lr, 0.5, 0.75, eps)
    p2, v2, s2 = R.update_parameters_with_adam(p1, g2, v1, s1, 2, lr, 0.5, 0.75, eps)
    # W1[0, 0]: step 1: v = 0.5*2 = 1, s = 0.25*4 = 1, v_hat = 1/0.5 = 2, s_hat = 1/0.25 = 4,
    #   step = 0.1 * 2 / (2 + eps).
    # step 2: v = 0.5*1 + 0.5*4 = 2.5, s = 0.75*1 + 0.25*16 = 4.75,
    #   v_hat = 2.5 / (1 - 0.25) = 10/3, s_hat = 4.75 / (1 - 0.5625) = 76/7,
    #   step = 0.1 * (10/3) / (sqrt(76/7) + eps).
    # b1: step 1: v = 0.5, s = 0.25, v_hat = 1, s_hat = 1; step = 0.1 / (1 + eps).
    # step 2: v = 0.25 + 1.5 = 1.75, s = 0.1875 + 2.25 = 2.4375,
    #   v_hat = 1.75/0.75 = 7/3, s_hat = 2.4375/0.4375 = 39/7.
    npt.assert_array_equal(v2["dW1"], [[2.5, -2.5, 0.0]])
    npt.assert_array_equal(s2["dW1"], [[4.75, 4.75, 0.0]])
    npt.assert_array_equal(v2["db1"], [[1.75]])
    npt.assert_array_equal(s2["db1"], [[2.4375]])
    w_step = 0.1 * 2 / (2 + eps) + 0.1 * (10 / 3) / (np.sqrt(76 / 7) + eps)
    b_step = 0.1 / (1 + eps) + 0.1 * (7 / 3) / (np.sqrt(39 / 7) + eps)
    # The hand values and Adam's own order of operations round differently: 1e-14.
    npt.assert_allclose(p2["W1"], [[1.0 - w_step, -1.0 + w_step, 0.5]], rtol=1e-14)
    npt.assert_allclose(p2["b1"], [[0.25 - b_step]], rtol=1e-14)


@pytest.mark.parametrize("optimizer", R.OPTIMIZERS)
def test_optimizers_never_write_into_their_arguments(optimizer):
    parameters, g1, _ = _tiny_problem()
    v, s = R.initialize_adam(parameters)
    arguments = [parameters, g1, v, s]
    before = [{key: value.copy() for key, value in d.items()} for d in arguments]
    if optimizer == "gd":
        R.update_parameters(parameters, g1, 0.1)
    elif optimizer == "momentum":
        R.update_parameters_with_momentum(parameters, g1, v, 0.9, 0.1)
    else:
        R.update_parameters_with_adam(parameters, g1, v, s, 1)
    for d, saved in zip(arguments, before):
        for key in saved:
            npt.assert_array_equal(d[key], saved[key])


# ---------------------------------------------------------------------------
# Mini-batches
# ---------------------------------------------------------------------------


def _numbered_columns(m):
    """X (2, m) whose column j is (j, -j), Y (1, m) = j: a shuffle is read off the values."""
    j = np.arange(m, dtype=np.float64)
    return np.vstack([j, -j]), j.reshape(1, m)


@pytest.mark.parametrize(
    "m, size, sizes", [(13, 5, [5, 5, 3]), (10, 5, [5, 5]), (7, 1, [1] * 7), (7, 7, [7]), (1, 1, [1])]
)
def test_mini_batches_have_the_size_and_keep_the_last_partial_one(m, size, sizes):
    X, Y = _numbered_columns(m)
    batches = R.random_mini_batches(X, Y, size, np.random.default_rng(0))
    assert [X_b.shape for X_b, _ in batches] == [(2, n) for n in sizes]
    assert [Y_b.shape for _, Y_b in batches] == [(1, n) for n in sizes]


def test_mini_batches_are_the_generators_permutation_cut_in_order():
    X, Y = _numbered_columns(13)
    batches = R.random_mini_batches(X, Y, 5, np.random.default_rng(3))
    order = np.concatenate([Y_b[0] for _, Y_b in batches]).astype(np.int64)
    npt.assert_array_equal(order, np.random.default_rng(3).permutation(13))
    assert sorted(order) == list(range(13))  # the union is every column once
    for X_b, Y_b in batches:  # X and Y are shuffled together
        npt.assert_array_equal(X_b, np.vstack([Y_b[0], -Y_b[0]]))


def test_mini_batches_repeat_with_the_seed_and_change_without_it():
    X, Y = _numbered_columns(13)
    first = R.random_mini_batches(X, Y, 4, np.random.default_rng(7))
    again = R.random_mini_batches(X, Y, 4, np.random.default_rng(7))
    for (X_a, Y_a), (X_b, Y_b) in zip(first, again):
        npt.assert_array_equal(X_a, X_b)
        npt.assert_array_equal(Y_a, Y_b)
    rng = np.random.default_rng(7)
    R.random_mini_batches(X, Y, 4, rng)
    next_epoch = R.random_mini_batches(X, Y, 4, rng)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, next_epoch))


# ---------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------


def _binary_problem(n=5, m=13, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, m))
    Y = (X[0:1] + 0.5 * X[1:2] > 0).astype(np.float64)
    return X, Y


def _three_blobs(m=150, seed=0):
    """2-D points around three centres 6+ apart with spread 0.7: separable, labels 0..2."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 4.0], [4.0, -2.0], [-4.0, -2.0]]).T
    labels = rng.integers(0, 3, m)
    X = centres[:, labels] + 0.7 * rng.standard_normal((2, m))
    return X, np.eye(3)[:, labels], labels


@pytest.mark.parametrize("dims, m", [([5, 4, 3, 1], 13), ([5, 1], 1), ([5, 7, 1], 40)])
def test_model_with_defaults_is_L_layer_model_bit_for_bit(dims, m):
    X, Y = _binary_problem(dims[0], m)
    expected_parameters, expected_costs = R.L_layer_model(X, Y, dims, learning_rate=0.05, num_iterations=150)
    parameters, costs = R.model(X, Y, dims, learning_rate=0.05, num_epochs=150)
    assert costs == expected_costs
    assert parameters.keys() == expected_parameters.keys()
    for key in parameters:
        npt.assert_array_equal(parameters[key], expected_parameters[key])


def _train_by_hand(X, Y, dims, optimizer, learning_rate, num_epochs, mini_batch_size, lambd,
                   hidden_activation, output, loss, init, seed):
    """model's schedule written out from the public functions: the contract, step by step.

    Momentum uses beta = 0.8, Adam beta1 = 0.8, beta2 = 0.99, epsilon = 1e-7.
    """
    parameters = R.initialize_parameters(dims, init, seed)
    rng = np.random.default_rng(seed)
    v = R.initialize_velocity(parameters)
    adam_v, adam_s = R.initialize_adam(parameters)
    t = 0
    costs = []
    for _ in range(num_epochs):
        epoch_cost = 0.0
        for X_b, Y_b in R.random_mini_batches(X, Y, mini_batch_size, rng):
            AL, caches = R.L_model_forward(X_b, parameters, hidden_activation, output)
            cost = R.compute_cost(AL, Y_b, parameters, lambd, loss)
            epoch_cost += cost * X_b.shape[1] / X.shape[1]
            grads = R.L_model_backward(AL, Y_b, caches, hidden_activation, output, loss, lambd)
            if optimizer == "gd":
                parameters = R.update_parameters(parameters, grads, learning_rate)
            elif optimizer == "momentum":
                parameters, v = R.update_parameters_with_momentum(parameters, grads, v, 0.8, learning_rate)
            else:
                t += 1
                parameters, adam_v, adam_s = R.update_parameters_with_adam(
                    parameters, grads, adam_v, adam_s, t, learning_rate, 0.8, 0.99, 1e-7
                )
        costs.append(epoch_cost)
    return parameters, costs


@pytest.mark.parametrize("optimizer", R.OPTIMIZERS)
@pytest.mark.parametrize(
    "output, loss, hidden_activation",
    [("sigmoid", "mse", "tanh"), ("softmax", "cross_entropy", "leaky_relu")],
)
def test_model_follows_the_mini_batch_schedule_step_by_step(optimizer, output, loss, hidden_activation):
    if output == "softmax":
        X, Y, _ = _three_blobs(m=23)
        dims = [2, 5, 3, 3]
    else:
        X, Y = _binary_problem(m=23)
        dims = [5, 5, 3, 1]
    options = dict(
        learning_rate=0.01, num_epochs=4, mini_batch_size=5, lambd=0.2, hidden_activation=hidden_activation,
        output=output, loss=loss, init="xavier", seed=11,
    )
    expected_parameters, expected_costs = _train_by_hand(X, Y, dims, optimizer, **options)
    parameters, costs = R.model(
        X, Y, dims, optimizer=optimizer, beta=0.8, beta1=0.8, beta2=0.99, epsilon=1e-7, **options
    )
    for key in parameters:
        npt.assert_array_equal(parameters[key], expected_parameters[key])
    # cost_b * m_b / m may be rounded in another order than model's: 1e-15.
    npt.assert_allclose(costs, expected_costs, rtol=1e-15)


@pytest.mark.parametrize("optimizer", R.OPTIMIZERS)
@pytest.mark.parametrize("frozen_layers", [1, 2])
def test_frozen_layers_stay_bit_identical(optimizer, frozen_layers):
    X, Y = _binary_problem(m=13)
    dims = [5, 7, 3, 1]
    initial = R.initialize_parameters(dims, "he", 2)
    parameters, _ = R.model(
        X, Y, dims, learning_rate=0.05, num_epochs=5, mini_batch_size=4, optimizer=optimizer,
        lambd=0.1, init="he", seed=2, frozen_layers=frozen_layers,
    )
    for l in range(1, 4):
        for p in ("W", "b"):
            key = f"{p}{l}"
            if l <= frozen_layers:
                npt.assert_array_equal(parameters[key], initial[key], err_msg=key)
            else:
                assert not np.array_equal(parameters[key], initial[key]), key


def test_softmax_model_separates_three_classes():
    X, Y, labels = _three_blobs()
    parameters, costs = R.model(
        X, Y, [2, 7, 3], learning_rate=0.01, num_epochs=100, mini_batch_size=32, optimizer="adam",
        output="softmax", init="he",
    )
    predictions = R.predict(X, parameters, output="softmax")
    assert predictions.shape == (1, 150)
    # The blobs are ~8 spreads apart (no point is ambiguous), so anything under
    # 97 % training accuracy means the softmax path is broken, not unlucky.
    assert np.mean(predictions[0] == labels) >= 0.97
    assert costs[-1] < 0.1 * costs[0]


@pytest.mark.parametrize("optimizer", R.OPTIMIZERS)
@pytest.mark.parametrize("output, loss", [(o, l) for o in R.OUTPUTS for l in V.OUTPUT_LOSSES[o]])
def test_every_combination_lowers_the_cost(optimizer, output, loss):
    if output == "softmax":
        X, Y, _ = _three_blobs(m=60)
        dims = [2, 5, 3]
    else:
        X, Y = _binary_problem(m=60)
        dims = [5, 5, 1]
    learning_rate = 0.01 if optimizer == "adam" else 0.5
    _, costs = R.model(
        X, Y, dims, learning_rate=learning_rate, num_epochs=60, mini_batch_size=16, optimizer=optimizer,
        output=output, loss=loss,
    )
    assert costs[-1] < 0.8 * costs[0]


def test_model_continues_from_given_parameters_without_changing_them():
    X, Y = _binary_problem(m=13)
    dims = [5, 4, 1]
    halfway, first_costs = R.model(X, Y, dims, learning_rate=0.1, num_epochs=20)
    saved = {key: value.copy() for key, value in halfway.items()}
    finished, second_costs = R.model(X, Y, dims, learning_rate=0.1, num_epochs=20, parameters=halfway)
    whole, costs = R.model(X, Y, dims, learning_rate=0.1, num_epochs=40)
    # Full-batch gradient descent has no state but the parameters: resuming is exact.
    assert first_costs + second_costs == costs
    for key in whole:
        npt.assert_array_equal(finished[key], whole[key])
        npt.assert_array_equal(halfway[key], saved[key])


def test_model_raises_when_the_cost_stops_being_finite():
    X, Y = _binary_problem(4, 20)
    message = r"the cost became (inf|nan) at epoch \d+; try a smaller learning_rate"
    # log(0) and 0/0 warn on the way there; the error is what matters.
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match=message):
        R.model(X, Y, [4, 5, 1], learning_rate=1e3, num_epochs=50)


def test_print_cost_prints_every_hundredth_epoch(capsys):
    X, Y = _binary_problem(m=13)
    _, costs = R.model(X, Y, [5, 3, 1], num_epochs=201, print_cost=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"Cost after epoch {i}: {costs[i]:.6f}" for i in (0, 100, 200)]


X_BAD, Y_BAD = _binary_problem(m=13)
_, _, _LABELS = _three_blobs(m=13)
Y_ONE_HOT = np.eye(3)[:, _LABELS]
X_2D = np.random.default_rng(1).standard_normal((2, 13))
TWO_ONES = Y_ONE_HOT.copy()
TWO_ONES[:, 4] = [1, 1, 0]

BAD_OPTIONS = [
    ("learning_rate", dict(learning_rate=0.0)),
    ("learning_rate", dict(learning_rate=-1.0)),
    ("learning_rate", dict(learning_rate=np.nan)),
    ("num_epochs", dict(num_epochs=0)),
    ("num_epochs", dict(num_epochs=2.5)),
    ("num_epochs", dict(num_epochs=True)),
    ("mini_batch_size", dict(mini_batch_size=0)),
    ("mini_batch_size", dict(mini_batch_size=14)),
    ("mini_batch_size", dict(mini_batch_size=4.0)),
    ("optimizer", dict(optimizer="sgdd")),
    ("beta", dict(beta=1.0)),
    ("beta", dict(beta=-0.1)),
    ("beta1", dict(beta1=1.0)),
    ("beta2", dict(beta2=1.5)),
    ("epsilon", dict(epsilon=0.0)),
    ("lambd", dict(lambd=-0.1)),
    ("lambd", dict(lambd=np.inf)),
    ("hidden_activation", dict(hidden_activation="softmax")),
    ("output", dict(output="linear")),
    ("loss", dict(loss="hinge")),
    ("init", dict(init="zeros")),
    ("seed", dict(seed=-1)),
    ("seed", dict(seed=1.5)),
    ("frozen_layers", dict(frozen_layers=-1)),
    ("frozen_layers", dict(frozen_layers=2)),  # L = 2 layers: at most 1 frozen
    ("parameters", dict(parameters=R.initialize_parameters([5, 4, 1]))),  # layers_dims is [5, 3, 1]
    ("layers_dims", dict(layers_dims=[5, 3, 2])),  # sigmoid needs one output unit
    ("layers_dims", dict(X=X_2D, Y=Y_BAD, layers_dims=[2, 3, 1], output="softmax")),  # softmax needs K >= 2
    ("Y", dict(X=X_2D, Y=Y_ONE_HOT[:2], layers_dims=[2, 3, 3], output="softmax")),  # K rows, not 2
    ("Y", dict(X=X_2D, Y=TWO_ONES, layers_dims=[2, 3, 3], output="softmax")),  # not one-hot
    ("Y", dict(X=X_2D, Y=2 * Y_ONE_HOT, layers_dims=[2, 3, 3], output="softmax")),  # not 0/1
    ("Y", dict(Y=Y_ONE_HOT)),  # one-hot Y given to a sigmoid output
]


@pytest.mark.parametrize(
    "option, overrides", BAD_OPTIONS, ids=[f"{option}-{i}" for i, (option, _) in enumerate(BAD_OPTIONS)]
)
def test_bad_options_raise_value_error_naming_the_option(option, overrides):
    arguments = dict(X=X_BAD, Y=Y_BAD, layers_dims=[5, 3, 1], num_epochs=1)
    arguments.update(overrides)
    with pytest.raises(ValueError, match=rf"\b{option}\b"):
        R.model(**arguments)


def test_predict_softmax_gives_the_row_of_the_largest_probability():
    parameters = {"W1": np.array([[1.0], [0.0], [-1.0]]), "b1": np.zeros((3, 1))}
    X = np.array([[2.0, -2.0, 0.5]])
    predictions = R.predict(X, parameters, output="softmax")
    assert predictions.dtype == np.int64
    npt.assert_array_equal(predictions, [[0, 2, 0]])
