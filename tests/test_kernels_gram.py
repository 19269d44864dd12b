"""The Gram route's kernels (``fastdnn.kernels.gram``) called directly, against themselves and the direct route.

A wide problem (n_0 = 300 >> m = 40, the route's use), relu hidden layers and
a sigmoid cross-entropy output, float64 and float32, gd and momentum, with and
without L2. Held here:
- resumable: a run cut into calls of 1 + 3 + 16 epochs is the one-call run of
  20, bit for bit (costs, theta after ``gram_weights``, the momentum state
  with W1's velocity formed, and the route's own state);
- exact: the route computes ``network.train``'s full-batch trajectory (no
  shuffling), within the whole-run bounds of test_equivalence.py;
- a run can leave the route: after ``gram_weights`` forms W1 and its velocity,
  ``network.train`` continues it as the route would have.

Tolerances are test_equivalence.py's whole-run ones: float64 within its
RUN_RTOL64 / RUN_ATOL64 (the routes differ by summation order only); float32
within FLOAT32_RUN_SAFETY times the spread of float32 direct runs on relabelled
copies of the network around the float64 run (see
test_fast_float32_training_run_stays_within_float32_spread there).
"""

import functools

import numpy as np
import numpy.testing as npt
import pytest
from test_equivalence import (
    FLOAT32_REALIZATIONS,
    FLOAT32_RUN_SAFETY,
    RUN_ATOL64,
    RUN_RTOL64,
    curve_deviation,
    parameter_deviation,
    teacher_problem,
)

from fastdnn.checking import assert_close
from fastdnn.kernels import compiled
from fastdnn.kernels import gram as Gm
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N

DIMS = [300, 8, 5, 1]
M = 40
EPOCHS = 20
CHUNKS = [1, 3, 16]  # calls of the chunked run, EPOCHS in all
SWITCH = 15  # the epoch at which a run leaves the Gram route for network.train
LEARNING_RATE = 0.05
BETA = 0.9
LAMBD = 0.7  # large enough that the L2 term moves the trajectory visibly

DTYPES = [pytest.param(np.float64, id="float64"), pytest.param(np.float32, id="float32")]
OPTIMIZERS = [pytest.param(K.OPT_GD, id="gd"), pytest.param(K.OPT_MOMENTUM, id="momentum")]
LAMBDS = [pytest.param(0.0, id="no-l2"), pytest.param(LAMBD, id="l2")]


def problem(dtype):
    """Xs (m, n_0), Ys (m, 1) sample-major in ``dtype``; theta (P,) He-scaled weights, small random biases."""
    X, Y = teacher_problem(DIMS[0], M, seed=3)
    rng = np.random.default_rng(4)
    parts = []
    for l in range(1, len(DIMS)):
        parts.append(rng.standard_normal(DIMS[l] * DIMS[l - 1]) * np.sqrt(2 / DIMS[l - 1]))
        parts.append(0.1 * rng.standard_normal(DIMS[l]))
    theta = np.concatenate(parts).astype(dtype)
    return np.ascontiguousarray(X.T, dtype), np.ascontiguousarray(Y.T, dtype), theta


def blocks(flat):
    """{"W1": (n_1, n_0), "b1": (n_1,), ...}: views of a flat buffer laid out like theta."""
    out, o = {}, 0
    for l in range(1, len(DIMS)):
        n, k = DIMS[l], DIMS[l - 1]
        out[f"W{l}"] = flat[o : o + n * k].reshape(n, k)
        out[f"b{l}"] = flat[o + n * k : o + n * k + n]
        o += n * k + n
    return out


HYPER = N.Hyper(LEARNING_RATE, BETA, 0.999, 1e-8)


def l2(lambd):
    """The kernels' L2 argument: None for none."""
    return lambd or None


class GramRun:
    """A Gram-route run and the arrays its caller owns, from ``gram_setup`` on."""

    def __init__(self, X, Y, theta, opt, lambd):
        m, n0 = X.shape
        n1 = DIMS[1]
        self.X, self.Y, self.opt, self.lambd = X, Y, opt, lambd
        self.dims = np.array(DIMS, np.int64)
        self.theta = theta.copy()
        self.state = np.zeros(2 * theta.size, theta.dtype)
        self.G, self.Z0, self.W1_init = np.empty((m, m)), np.empty((m, n1)), np.empty((n1, n0))
        w1_sq = Gm.gram_setup(X, self.theta, self.dims, self.G, self.Z0, self.W1_init)
        self.carry = np.array([1.0, 0.0, w1_sq])
        self.C, self.V = np.zeros((n1, m)), np.zeros((n1, m))
        self.A = np.empty(m * sum(DIMS[1:]), theta.dtype)
        self.dZ, self.grad = np.empty_like(self.A), np.empty_like(theta)

    def train(self, n_epochs):
        costs = np.full(n_epochs, np.nan)
        args = (
            self.G, self.Z0, self.Y, self.theta, self.dims, K.ACT_RELU, K.OUT_SIGMOID_XENT, self.opt, HYPER, l2(self.lambd),
            self.state, self.carry, self.C, self.V if self.opt == K.OPT_MOMENTUM else None, n_epochs, costs, self.A, self.dZ, self.grad,
        )
        done, reason = compiled(Gm.train_gram, args, "train_gram")(*args)
        assert (done, reason) == (n_epochs, N.STOP_NONE)
        return costs

    def form(self):
        """W1 into theta and momentum's W1 velocity into state; returns (theta, state)."""
        assert Gm.gram_weights(self.X, self.W1_init, self.C, self.carry[0], self.theta, self.dims) == 0
        assert Gm.gram_weights(self.X, self.W1_init, self.V, self.carry[1], self.state, self.dims) == 0
        return self.theta, self.state


def direct_train(X, Y, theta, state, opt, lambd, n_epochs):
    """n_epochs of full-batch ``network.train`` without shuffling, theta and state in place; returns the costs."""
    m, dtype = X.shape[0], theta.dtype
    A = np.empty(m * sum(DIMS[1:]), dtype)
    work = N.Workspace(np.empty((0, X.shape[1]), dtype), np.empty((0, Y.shape[1]), dtype), A, np.empty_like(A), np.empty_like(theta))
    costs = np.zeros(n_epochs)  # the kernel adds each epoch's cost, summed over its examples, to these
    args = (
        X, Y, theta, np.array(DIMS, np.int64), K.ACT_RELU, K.OUT_SIGMOID_XENT, 0, opt, HYPER, l2(lambd), state, 0, None, m, n_epochs, costs, work
    )
    done, _, reason = compiled(N.train, args, "train")(*args)
    assert (done, reason) == (n_epochs, N.STOP_NONE)
    return costs / m


def relabel(flat, perms):
    """A flat parameter-shaped buffer for the network with layer l's units in order perms[l] (perms[0]: the inputs)."""
    named, parts = blocks(flat), []
    for l in range(1, len(DIMS)):
        parts += [named[f"W{l}"][perms[l]][:, perms[l - 1]].ravel(), named[f"b{l}"][perms[l]]]
    return np.concatenate(parts)


def named(theta, state):
    """Parameters and momentum velocities by name, for parameter_deviation."""
    return {**blocks(theta), **{f"v{key}": value for key, value in blocks(state[: theta.size]).items()}}


@functools.cache
def float64_run_and_float32_spread(opt, lambd):
    """The float64 direct run (costs, named parameters), and the float32 tolerances around it.

    Each realisation is the float32 direct run on the network relabelled (input
    features and hidden units permuted): the same float32 operations summed in
    other orders. Tolerances: FLOAT32_RUN_SAFETY times their largest deviation.
    """
    X, Y, theta = problem(np.float64)
    state = np.zeros(2 * theta.size)
    costs = direct_train(X, Y, theta, state, opt, lambd, EPOCHS)
    expected = named(theta, state)
    X32, Y32, theta32 = problem(np.float32)
    curve_devs, param_devs = [], []
    for seed in range(FLOAT32_REALIZATIONS):
        rng = np.random.default_rng(seed)
        perms = [rng.permutation(n) for n in DIMS[:-1]] + [np.arange(DIMS[-1])]
        inverse = [np.argsort(p) for p in perms]
        t = relabel(theta32, perms)
        s = np.zeros(2 * t.size, np.float32)
        c = direct_train(np.ascontiguousarray(X32[:, perms[0]]), Y32, t, s, opt, lambd, EPOCHS)
        curve_devs.append(curve_deviation(c, costs))
        param_devs.append(parameter_deviation(named(relabel(t, inverse), relabel(s[: t.size], inverse)), expected))
    return costs, expected, FLOAT32_RUN_SAFETY * max(curve_devs), FLOAT32_RUN_SAFETY * max(param_devs)


def assert_follows_direct_route(costs, theta, state, opt, lambd):
    """A whole run of EPOCHS against the direct route's: float64 as close as summation order allows, float32 within the spread."""
    expected_costs, expected, curve_tol, params_tol = float64_run_and_float32_spread(opt, lambd)
    if theta.dtype == np.float64:
        npt.assert_allclose(costs, expected_costs, rtol=RUN_RTOL64, atol=0)
        for key, value in named(theta, state).items():
            assert_close(value, expected[key], rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)
    else:
        assert curve_deviation(costs, expected_costs) <= curve_tol
        assert parameter_deviation(named(theta, state), expected) <= params_tol


@pytest.mark.parametrize("lambd", LAMBDS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gram_route_in_chunks_is_bit_identical_to_one_call(single_blas_thread, dtype, opt, lambd):
    X, Y, theta = problem(dtype)
    whole = GramRun(X, Y, theta, opt, lambd)
    # The route neither reads nor writes W1's blocks of theta and state (layer 1 is s, C and a, V):
    # poisoned here, they must not reach the costs; the chunked run writes them between its calls.
    blocks(whole.theta)["W1"][:] = np.nan
    blocks(whole.state)["W1"][:] = np.nan
    whole_costs = whole.train(EPOCHS)
    whole.form()

    chunked = GramRun(X, Y, theta, opt, lambd)
    chunk_costs = []
    for n in CHUNKS:
        chunk_costs.append(chunked.train(n))
        chunked.form()  # as an observer would, to look at W1 between calls
    assert sum(CHUNKS) == EPOCHS
    assert np.array_equal(np.concatenate(chunk_costs), whole_costs)
    for name in ("theta", "state", "carry", "C", "V"):
        assert np.array_equal(getattr(chunked, name), getattr(whole, name)), name
    assert np.isfinite(whole_costs).all() and whole_costs[-1] < 0.9 * whole_costs[0]  # a run that learns


@pytest.mark.parametrize("lambd", LAMBDS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_gram_route_follows_direct_route(single_blas_thread, dtype, opt, lambd):
    X, Y, theta = problem(dtype)
    run = GramRun(X, Y, theta, opt, lambd)
    costs = run.train(EPOCHS)
    assert_follows_direct_route(costs, *run.form(), opt, lambd)


@pytest.mark.parametrize("lambd", LAMBDS)
@pytest.mark.parametrize("opt", OPTIMIZERS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_route_continues_a_gram_run_after_forming_w1_and_its_velocity(single_blas_thread, dtype, opt, lambd):
    X, Y, theta = problem(dtype)
    gram = GramRun(X, Y, theta, opt, lambd)
    gram_costs = gram.train(EPOCHS)
    gram.form()

    switched = GramRun(X, Y, theta, opt, lambd)
    first = switched.train(SWITCH)
    switched.form()
    rest = direct_train(X, Y, switched.theta, switched.state, opt, lambd, EPOCHS - SWITCH)
    costs = np.concatenate([first, rest])
    if dtype == np.float64:
        npt.assert_allclose(costs, gram_costs, rtol=RUN_RTOL64, atol=0)
        expected = named(gram.theta, gram.state)
        for key, value in named(switched.theta, switched.state).items():
            assert_close(value, expected[key], rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)
    else:
        # Both runs do float32 arithmetic on the direct route's trajectory: the spread bounds each.
        assert_follows_direct_route(costs, switched.theta, switched.state, opt, lambd)
        assert_follows_direct_route(gram_costs, gram.theta, gram.state, opt, lambd)
