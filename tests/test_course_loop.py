"""The course's own training loops, with fastdnn's stages dropped in, give the reference loop's numbers.

A student replaces the course's ``L_model_forward`` / ``L_model_backward`` with
fastdnn's and keeps the course's update loop, which rebinds dictionary keys
(``parameters["W1"] = parameters["W1"] - learning_rate * grads["dW1"]``). The
fast stages read the parameters' flat buffer, so a rebinding that did not
write through would leave them computing with stale weights and no error.
"""

import copy
import pickle

import numpy as np
import numpy.testing as npt
import pytest

import fastdnn
from fastdnn import reference as ref

# float64: the fast stages match the reference's to rounding (tests/test_equivalence.py,
# 1e-10 per stage); 100 gradient steps on these small, well-conditioned problems
# carry that to at most ~1e-12 (measured 2e-14), so 1e-10 is a generous bound
# that a stale weight (differences of 1e-3 and more) cannot meet.
RTOL = 1e-10
ITERATIONS = 100
LEARNING_RATE = 0.05


def course_update_parameters(parameters, grads, learning_rate):
    """The course's update step as its notebook writes it: rebinding keys of the dict it was given."""
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


UPDATES = {
    "course-in-place": course_update_parameters,  # rebinding the fast Parameters' own keys
    "reference-copy": ref.update_parameters,  # returns a plain dict, which the fast stages repack
}


def problem(dims, m=80, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m))
    Y = (X[0:1] + 0.5 * X[1:2] > 0).astype(np.float64)
    return X, Y


def course_loop(impl, update, X, Y, dims):
    """The course's L_layer_model loop: forward, cost, backward, update; returns (costs, parameters)."""
    parameters = impl.initialize_parameters_deep(dims)
    costs = []
    for _ in range(ITERATIONS):
        AL, caches = impl.L_model_forward(X, parameters)
        costs.append(impl.compute_cost(AL, Y))
        grads = impl.L_model_backward(AL, Y, caches)
        parameters = update(parameters, grads, LEARNING_RATE)
    return np.array(costs), parameters


@pytest.mark.parametrize("update", UPDATES.values(), ids=UPDATES.keys())
@pytest.mark.parametrize("dims", [[6, 5, 1], [6, 8, 4, 3, 1]], ids=["2-layer", "L-layer"])
def test_course_loop_with_fast_stages_gives_the_reference_loop(single_blas_thread, dims, update):
    X, Y = problem(dims)
    ref_costs, ref_params = course_loop(ref, ref.update_parameters, X, Y, dims)
    fast_costs, fast_params = course_loop(fastdnn, update, X, Y, dims)
    assert ref_costs[-1] < 0.9 * ref_costs[0]  # it learns, so stale weights would show
    npt.assert_allclose(fast_costs, ref_costs, rtol=RTOL)
    for key, expected in ref_params.items():
        npt.assert_allclose(fast_params[key], expected, rtol=RTOL, atol=RTOL * np.abs(expected).max(), err_msg=key)


def test_assigning_a_layer_key_writes_through_and_checks_the_shape():
    params = fastdnn.initialize_parameters_deep([4, 3, 1])
    params["W1"] = np.full((3, 4), 2.0)
    assert (params.flat[:12] == 2.0).all()
    assert np.shares_memory(params["W1"], params.flat)
    params.update({"b1": np.ones((3, 1))})
    assert (params.flat[12:15] == 1.0).all()
    with pytest.raises(ValueError, match=r"W1 must have shape \(3, 4\)"):
        params["W1"] = np.zeros((4, 3))


@pytest.mark.parametrize("duplicate", [copy.deepcopy, copy.copy, lambda p: p.copy(), lambda p: pickle.loads(pickle.dumps(p))],
                         ids=["deepcopy", "copy", "method-copy", "pickle"])
def test_copies_own_their_buffer_and_stay_consistent(duplicate):
    params = fastdnn.initialize_parameters_deep([4, 3, 1])
    twin = duplicate(params)
    twin["W1"] = np.zeros((3, 4))
    assert not (params["W1"] == 0).all()  # the original is untouched
    assert (twin.flat[:12] == 0).all()  # and the copy's fast functions see the new value
    X = np.ones((4, 2))
    npt.assert_array_equal(fastdnn.predict_proba(X, twin), ref.L_model_forward(X, dict(twin))[0])


def test_estimator_parameters_assignment_reaches_predictions():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 5))
    y = (X[:, 0] > 0).astype(int)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    clf.parameters_["W2"] = np.zeros((1, 4))
    clf.parameters_["b2"] = np.full((1, 1), 3.0)  # the output no longer depends on X: always class 1
    assert (clf.predict(X) == 1).all()
