"""``kernels.pool.train_pool`` against ``kernels.network.train``: the same runs on T = 1, 2, 3 workers.

What is held:
- T = 1 is network.train bit for bit (parameters, optimizer state, costs, the returned counts);
- a run repeats bit for bit at a fixed T;
- at T = 2, 3 one step's gradient, cost and forward activations agree with network.train's within
  twice a running rounding bound computed from the step's own operands (``rounding_bound``): both are
  sums of the same terms in other orders, each within the bound of the exact result;
- whole float64 runs at T = 2, 3 agree with network.train's to 1e-10 relative (RUN_RTOL64);
- divergence stops, errors and concurrent callers behave as network.train's contract says.

The option sets (CASES) cover every optimizer, both classifier outputs in both dtypes, the identity output
(regression) and L2 on and off in both:
each set compiles its own kernels (~7 s of this file on a cold cache, both kernels), so the table is a
covering set, not the product; frozen layers and T are arguments and are crossed with every set.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastdnn.kernels import compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.kernels import pool

# The pool's kernels compile ~7 s per option set on a cold cache (~40 s for this file) and run threads that
# meet at barriers: with the slow tests, which CI runs under a time limit, so that a deadlock fails the run
# instead of hanging it. The engine does not call the pool yet.
pytestmark = pytest.mark.slow

DIMS = (9, 7, 5, 3)
M, BATCH, EPOCHS = 17, 8, 3  # batches of 8, 8 and 1 rows: a one-row batch leaves workers with no rows
HYPER = N.Hyper(0.05, 0.9, 0.999, 1e-8)

# (dtype, optimizer code, output code, L2 strength or None)
CASES = [
    (np.float64, K.OPT_GD, K.OUT_SIGMOID_XENT, None),
    (np.float64, K.OPT_ADAM, K.OUT_SOFTMAX_XENT, 0.1),
    (np.float32, K.OPT_MOMENTUM, K.OUT_SIGMOID_XENT, 0.1),
    (np.float32, K.OPT_ADAM, K.OUT_SOFTMAX_XENT, None),
    (np.float64, K.OPT_ADAM, K.OUT_IDENTITY_MSE, 0.1),  # regression: real targets, the squared error
]
OUTPUT_NAMES = {K.OUT_SIGMOID_XENT: "sigmoid", K.OUT_SOFTMAX_XENT: "softmax", K.OUT_IDENTITY_MSE: "identity"}
IDS = [f"{np.dtype(d).name}-{['gd', 'momentum', 'adam'][o]}-{OUTPUT_NAMES[out]}-l2{lam}" for d, o, out, lam in CASES]

# float64 whole runs at T = 2, 3. One step's tensors differ by rounding: at most 2 gamma_k sum|terms|
# for a sum of k <= 17 terms (gamma_k ~ k 2^-53 ~ 2e-15), i.e. ~4e-15 of an element's scale. Nine steps
# of these small-learning-rate runs feed that back through updates whose Jacobians are near the identity
# (gd, momentum: 1 + lr ||H||, lr = 0.05; Adam: lr / (sqrt(v) + eps) stays below lr / |g|-sized values here,
# the first step's dependence on g vanishes as eps / g^2), so the parameters carry at most ~1e-13 of
# their scale: 1e-10 leaves three orders for elements whose sum cancelled (hence the atol on the
# array's scale, as in tests/test_equivalence.py). Observed worst: 3e-15 (Adam, softmax, L2).
RUN_RTOL64 = 1e-10
RUN_ATOL64 = 1e-12  # times max |network.train| of the array


def problem(dtype, output, seed=0):
    rng = np.random.default_rng(seed)
    d = np.asarray(DIMS, np.int64)
    theta = np.concatenate([np.concatenate([rng.standard_normal(d[i + 1] * d[i]) / np.sqrt(d[i]),
                                            0.1 * rng.standard_normal(d[i + 1])]) for i in range(len(d) - 1)])
    X = rng.standard_normal((M, d[0]))
    if output == K.OUT_SOFTMAX_XENT:
        Y = np.eye(d[-1])[rng.integers(0, d[-1], M)]
    elif output == K.OUT_IDENTITY_MSE:
        Y = 2 * rng.standard_normal((M, d[-1]))
    else:
        Y = (rng.random((M, d[-1])) < 0.5).astype(float)
    perms = np.stack([rng.permutation(M) for _ in range(EPOCHS)])
    return d, theta.astype(dtype), X.astype(dtype), Y.astype(dtype), perms


def train(case, T, first_layer=0, epochs=EPOCHS, batch=BATCH, shuffle=True, hyper=HYPER, X=None, work=None,
          weights=None):
    """(returned counts, theta, state, costs, workspace) of one run from the case's fresh parameters;
    T None is network.train. ``weights``: the rows' sample weights, or None."""
    dtype, opt, output, lambd = case
    d, theta, X0, Y, perms = problem(dtype, output)
    X = X0 if X is None else X
    P = theta.shape[0]
    state = np.zeros(2 * P, dtype)
    rows = batch if shuffle else X.shape[0]
    if work is None:
        A = np.zeros(rows * int(d[1:].sum()), dtype)
        work = N.Workspace(np.zeros((rows, d[0]), dtype), np.zeros((rows, d[-1]), dtype), A, np.zeros_like(A),
                           np.zeros_like(theta))
    costs = np.zeros(epochs)
    if weights is not None:
        weights = N.Weights(weights.astype(dtype), np.zeros(batch, dtype))
    call = (X, Y, theta, d, K.ACT_RELU, output, first_layer, opt, hyper, lambd, state, 0,
            perms[:epochs] if shuffle else None, batch, epochs, costs, work, weights)
    with threadpool_limits(1, user_api="blas"):
        if T is None:
            result = compiled(N.train, call, "network.train")(*call)
        else:
            result = pool.train_pool(*call, T)
    return tuple(result), theta, state, costs, work


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_thread_is_network_train_bit_for_bit_and_each_thread_count_repeats(case):
    for first_layer in (0, 1):
        ref = train(case, None, first_layer)
        one = train(case, 1, first_layer)
        assert one[0] == ref[0] == (EPOCHS, EPOCHS * 3, N.STOP_NONE)
        for a, b in zip(one[1:4], ref[1:4]):
            assert np.array_equal(a, b)
        for T in (2, 3):
            first, again = train(case, T, first_layer), train(case, T, first_layer)
            assert first[0] == ref[0]
            for a, b in zip(first[1:4], again[1:4]):
                assert np.array_equal(a, b)
            if case[0] == np.float64:
                for a, b in zip(first[1:4], ref[1:4]):
                    np.testing.assert_allclose(a, b, rtol=RUN_RTOL64, atol=RUN_ATOL64 * np.abs(b).max())


@pytest.mark.parametrize("case", CASES[:2] + CASES[3:], ids=IDS[:2] + IDS[3:])
def test_sample_weights_on_the_pool_as_in_network_train(case):
    """Weighted runs (weights 0 to 3, a zero among them): T = 1 bit for bit, T = 2, 3 within RUN_RTOL64 in
    float64, shuffled minibatches and the full batch in place."""
    w = np.random.default_rng(5).integers(0, 4, M).astype(float)
    w[0] = 0.0
    for shuffle, batch in ((True, BATCH), (False, M)):
        ref = train(case, None, batch=batch, shuffle=shuffle, weights=w)
        unweighted = train(case, None, batch=batch, shuffle=shuffle)
        assert not np.array_equal(ref[1], unweighted[1])  # the weights changed the run
        one = train(case, 1, batch=batch, shuffle=shuffle, weights=w)
        for a, b in zip(one[1:4], ref[1:4]):
            assert np.array_equal(a, b)
        for T in (2, 3):
            got = train(case, T, batch=batch, shuffle=shuffle, weights=w)
            assert got[0] == ref[0]
            if case[0] == np.float64:
                for a, b in zip(got[1:4], ref[1:4]):
                    np.testing.assert_allclose(a, b, rtol=RUN_RTOL64, atol=RUN_ATOL64 * np.abs(b).max())


def test_a_full_batch_gathers_nothing_and_agrees():
    """perms None: the batches are X's own rows (one of all M rows here), nothing gathered."""
    case = CASES[0]
    X = problem(*case[:1], case[2])[2]
    ref = train(case, None, shuffle=False, batch=M, X=X)
    assert np.array_equal(train(case, 1, shuffle=False, batch=M, X=X)[1], ref[1])
    for T in (2, 3):
        np.testing.assert_allclose(train(case, T, shuffle=False, batch=M, X=X)[1], ref[1], rtol=RUN_RTOL64,
                                   atol=RUN_ATOL64 * np.abs(ref[1]).max())


# Rounding of one step's element-wise functions, in units of u (as in tests/test_equivalence.py):
# sigmoid: exp within 2 ulp, 1 + e and the division one rounding each; softmax: exp, its sum over K and the
# division; the cost's exp, log / log1p and three operations per term.
SIGMOID_ROUNDING = 6
LOG_ROUNDING = 8
# The bound is first order in u (computed from one run's operands, not the exact ones): a factor 2 covers it.
# Observed worst on CASES: 0.5% of the bound on the gradient, 0.4% on the cost.
BOUND_SAFETY = 2.0


def rounding_bound(X, Y, theta, dims, output, first_layer, A, dZ, lambd):
    """Element-wise bounds on |computed - exact| for one step's forward activations (layers 1..L-1, flat
    like A), gradient (flat like theta, trainable layers) and cost, whatever the summation orders.

    A sum of k terms in a dtype of unit roundoff u is within gamma_k sum|terms| of the exact one
    (gamma_k = k u / (1 - k u)); an error E in an operand reaches a product through |other operand|.
    ReLU passes errors unchanged; its derivative's mask can flip only where |Z| is within Z's bound, and
    there the whole |dZ W| is allowed. X, Y, A, dZ: the step's (the batch's rows); theta before the step.
    """
    u = np.finfo(theta.dtype).eps / 2
    u64 = 2.0**-53
    g = lambda k: k * u / (1 - k * u)  # noqa: E731
    f = lambda a: np.abs(a.astype(np.float64))  # noqa: E731
    m, L = X.shape[0], len(dims) - 1
    layers, o = [], 0
    for l in range(L):
        n, k = dims[l + 1], dims[l]
        layers.append((theta[o : o + n * k].reshape(n, k).astype(np.float64),
                       theta[o + n * k : o + n * k + n].astype(np.float64), o))
        o += n * (k + 1)
    block = lambda work, l: work[m * int(dims[1 : l + 1].sum()) :][: m * dims[l + 1]].reshape(m, dims[l + 1])  # noqa: E731
    acts = [X] + [block(A, l) for l in range(L)]  # acts[l] is layer l+1's input; acts[L] the logits
    grads = [block(dZ, l) for l in range(L)]
    E, Z = [np.zeros((m, dims[0]))], [None]
    for l in range(L):
        W, b, _ = layers[l]
        E.append(g(dims[l] + 1) * (f(acts[l]) @ np.abs(W).T + np.abs(b)) + E[l] @ np.abs(W).T)
        Z.append(acts[l].astype(np.float64) @ W.T + b)
    Ez, z, K_ = E[L], acts[L].astype(np.float64), dims[L]
    p = f(grads[L - 1] + Y)  # the sigmoids or the probabilities
    if output == K.OUT_SIGMOID_XENT:
        EdZ = Ez / 4 + (SIGMOID_ROUNDING + 1) * u * (p + f(Y))
        terms = (np.maximum(z, 0) + np.abs(z * Y) + np.log1p(np.exp(-np.abs(z)))).sum()
        Ecost = (Ez.sum() + 2 * LOG_ROUNDING * u * terms) / m
    elif output == K.OUT_IDENTITY_MSE:
        # dZ = z - y, one rounding; the cost term (z - y)^2 / 2 moves by |d| e + e^2 / 2 for an error e in d.
        d = f(grads[L - 1])
        EdZ = Ez + u * d
        terms = (d**2 / 2).sum()
        Ecost = (d * EdZ + EdZ**2 / 2).sum() / m
    else:
        EdZ = 2 * p * Ez.max(axis=1, keepdims=True) + (K_ + 4) * u * p + u * f(grads[L - 1])
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        terms = (np.abs(lse) + np.abs(z * Y).sum(1)).sum()
        Ecost = (2 * Ez.max(1).sum() + 2 * (K_ + LOG_ROUNDING) * u * terms) / m
    Ecost += 2 * g_64(m * K_ + 3, u64) * terms / m  # the float64 sums over examples, then blocks
    bound = np.zeros(theta.shape[0])
    for l in range(L - 1, first_layer - 1, -1):
        W, _, o = layers[l]
        n, k = dims[l + 1], dims[l]
        dZl = f(grads[l])
        dW = (g(m + 1) * dZl.T @ f(acts[l]) + EdZ.T @ f(acts[l]) + dZl.T @ E[l]) / m
        if lambd is not None:  # G = dW + (lambd / m) W: one rounding of each, of whichever dW
            dW += 2 * u * (dZl.T @ f(acts[l]) / m + lambd / m * np.abs(W))
        bound[o : o + n * k] = dW.ravel()
        bound[o + n * k : o + n * k + n] = (g(m + 1) * dZl.sum(0) + EdZ.sum(0)) / m
        if l > first_layer:
            back = dZl @ np.abs(W)
            Eback = EdZ @ np.abs(W) + g(n) * back
            EdZ = np.where(np.abs(Z[l]) <= 2 * E[l], back + Eback, Eback * (acts[l] > 0))
    if lambd is not None:
        Ecost += lambd / (2 * m) * 2 * g_64(theta.shape[0], u64) * sum(np.square(w).sum() for w, _, _ in layers)
    return np.concatenate([E[l + 1].ravel() for l in range(L - 1)]), bound, Ecost


def g_64(k, u64):
    return k * u64 / (1 - k * u64)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_step_on_more_threads_is_within_the_rounding_bound(case):
    """One step on all M rows, shuffled: T cuts the rows and units elsewhere, so each tensor is a sum of the
    same terms in other orders, and each run is within rounding_bound of the exact step."""
    dtype, _, output, lambd = case
    d, theta, _, _, _ = problem(dtype, output)
    n_acts = M * int(d[1:-1].sum())
    for first_layer in (0, 1):
        ref = train(case, None, first_layer, epochs=1, batch=M)
        work = ref[4]
        Eacts, bound, Ecost = rounding_bound(work.Xb, work.Yb, theta, d, output, first_layer, work.A, work.dZ, lambd)
        P0 = int(sum(d[i + 1] * (d[i] + 1) for i in range(first_layer)))
        for T in (2, 3):
            got = train(case, T, first_layer, epochs=1, batch=M)
            tol = BOUND_SAFETY * 2 * bound[P0:]
            diff = np.abs(got[4].grad[P0:].astype(np.float64) - work.grad[P0:])
            assert np.all(diff <= tol), (T, first_layer, float(np.max(diff / tol)))
            diff = np.abs(got[4].A[:n_acts].astype(np.float64) - work.A[:n_acts])
            assert np.all(diff <= BOUND_SAFETY * 2 * Eacts)
            assert abs(got[3][0] - ref[3][0]) / M <= BOUND_SAFETY * 2 * Ecost


def test_a_divergence_stops_as_network_train_stops():
    case = CASES[0]
    X = problem(case[0], case[2])[2].copy()
    X[:, 0] = np.inf  # the logits overflow: the first batch's cost is not finite, nothing is applied
    start = problem(case[0], case[2])[1]
    for T in (None, 1, 2, 3):
        result, theta, _, costs, _ = train(case, T, X=X)
        assert result == (0, 0, N.STOP_COST) and not np.isfinite(costs[0]) and np.array_equal(theta, start)
    # A learning rate that makes the parameters infinite: stopped after the first update.
    huge = HYPER._replace(learning_rate=np.inf)
    ref = train(case, None, hyper=huge)
    for T in (1, 2, 3):
        result, theta, _, costs, _ = train(case, T, hyper=huge)
        assert result == ref[0] == (0, 1, N.STOP_PARAMETERS)
        np.testing.assert_allclose(costs, ref[3], rtol=RUN_RTOL64)


def test_a_short_workspace_is_refused_before_any_update():
    case = CASES[0]
    d, theta, X, Y, perms = problem(case[0], case[2])
    A = np.zeros(BATCH * int(d[1:].sum()))
    work = N.Workspace(np.zeros((BATCH, d[0])), np.zeros((BATCH, d[-1])), A, np.zeros_like(A), np.zeros(theta.size - 1))
    for T in (None, 2, 3):
        with pytest.raises(ValueError, match="parameter buffer is shorter"):
            train(case, T, work=work)
    result, theta, _, _, _ = train(case, 2, work=work._replace(grad=np.zeros(theta.size)))
    assert result[2] == N.STOP_NONE


def test_a_worker_left_alone_returns_when_another_aborts():
    """A worker whose partners failed returns at its barrier (train_pool then raises their error)."""
    case = CASES[0]
    d, theta, X, Y, perms = problem(case[0], case[2])
    A = np.zeros(BATCH * int(d[1:].sum()))
    work = N.Workspace(np.zeros((BATCH, d[0])), np.zeros((BATCH, d[-1])), A, np.zeros_like(A), np.zeros_like(theta))
    shared = pool.shared_buffers(2, d, theta.dtype)
    shared.sync[pool.ABORT] = 1
    call = (X, Y, theta, d, K.ACT_RELU, case[2], 0, case[1], HYPER, case[3], np.zeros(2 * theta.size), 0, perms,
            BATCH, EPOCHS, np.zeros(EPOCHS), work, None, shared, 0)
    with threadpool_limits(1, user_api="blas"):
        assert compiled(pool.train_worker, call, "train_worker")(*call)[2] == pool.ABORTED


def test_two_callers_at_once_each_get_their_own_pool():
    """Numba's workqueue layer aborts the process when two threads launch parallel work; train_pool's
    workers belong to their call."""
    case = CASES[0]
    expected = train(case, 2)
    results = [None, None]

    def call(i):
        results[i] = train(case, 2)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    # Around both: threadpoolctl's limits are the process's, and one caller's exit must not restore
    # a 2-thread BLAS under the other.
    with threadpool_limits(1, user_api="blas"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for got in results:
        assert got[0] == expected[0] and np.array_equal(got[1], expected[1]) and np.array_equal(got[3], expected[3])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_starts_threads_of_its_own():
    """The parent's parked threads are not in a forked child: a child that borrowed them would wait forever."""
    case = CASES[0]
    expected = train(case, 2)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if np.array_equal(train(case, 2)[1], expected[1]) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail("the forked child's train_pool did not return")
