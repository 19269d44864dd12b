"""The shared input checks (fastdnn/validation.py) on inputs that once slipped through.

Each case is a malformed input that reached numpy before these checks existed
and failed deep inside (KeyError, IndexError) or, worse, returned a wrong-shaped
answer. Both implementations must reject it with a message naming the problem.
"""

import numpy as np
import pytest

import fastdnn
from fastdnn import reference

X = np.ones((3, 4))
Y = np.array([[0, 1, 0, 1]])

BAD_PARAMETERS = [
    pytest.param({"W1": np.ones((1, 3))}, ValueError, r"missing \['b1'\]", id="b1-missing"),
    pytest.param({"W1": np.ones(3), "b1": np.zeros((1, 1))}, ValueError, r"W1 must be 2-D", id="W1-1d"),
    pytest.param({"W1": np.float64(1), "b1": np.zeros((1, 1))}, ValueError, r"W1 must be 2-D", id="W1-scalar"),
    pytest.param(
        {"W1": np.ones((2, 3)), "b1": np.zeros((2, 1)), "W2": np.ones((1, 2))},
        ValueError,
        r"missing \['b2'\]",
        id="b2-missing",
    ),
    pytest.param(
        {"W1": np.ones((1, 3)), "b1": np.zeros((1, 1)), "Wx": np.ones((1, 1))},
        ValueError,
        r"exactly W1, b1",
        id="stray-key",
    ),
    pytest.param({"W1": np.array([["a", "b", "c"]]), "b1": np.zeros((1, 1))}, TypeError, r"W1 must be a numeric array", id="W1-str"),
    pytest.param({"W1": np.full((1, 3), np.nan), "b1": np.zeros((1, 1))}, ValueError, r"W1 contains NaN", id="W1-nan"),
    pytest.param({"W1": np.ones((1, 3)), "b1": np.zeros(1)}, ValueError, r"b1 must be 2-D", id="b1-1d"),
    pytest.param({"W1": np.ones((1, 5)), "b1": np.zeros((1, 1))}, ValueError, r"expects 5 features", id="features"),
]


@pytest.mark.parametrize("parameters, error, message", BAD_PARAMETERS)
@pytest.mark.parametrize("impl", [reference, fastdnn], ids=["reference", "fast"])
def test_predict_rejects_malformed_parameters_by_name(impl, parameters, error, message):
    with pytest.raises(error, match=message):
        impl.predict(X, parameters)


@pytest.mark.parametrize("impl", [reference, fastdnn], ids=["reference", "fast"])
def test_L_layer_model_rejects_an_output_layer_wider_than_one_unit(impl):
    with pytest.raises(ValueError, match=r"output layer has 1 unit .* got layers_dims\[-1\] = 2"):
        impl.L_layer_model(X, Y, [3, 2], 0.1, 2)


@pytest.mark.parametrize("value", [np.inf, np.nan, -1.0, True])
def test_model_rejects_non_finite_or_negative_l2_in_both_paths(value):
    for impl in (reference, fastdnn):
        with pytest.raises(ValueError, match="lambd"):
            impl.model(X, Y, [3, 1], num_epochs=1, lambd=value)


def test_infinite_learning_rate_message_says_finite():
    with pytest.raises(ValueError, match="learning_rate must be a finite positive number, got inf"):
        fastdnn.L_layer_model(X, Y, [3, 1], np.inf, 2)


@pytest.mark.parametrize("value", [2**63, 10**30])
def test_an_integer_beyond_64_bits_is_a_positive_integer_not_a_numpy_type_error(value):
    """np.isfinite refuses a Python int that numpy cannot convert: a model file's threads of 10**30 read as
    "ufunc 'isfinite' not supported"."""
    from fastdnn.validation import check_positive

    assert check_positive(value, "threads", integer=True) == value
    with pytest.raises(ValueError, match="threads must be a positive integer, got -1000000000000000000000000000000"):
        check_positive(-(10**30), "threads", integer=True)
