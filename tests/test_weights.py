"""Sample weights: every cost and gradient a weighted mean, sum_i w_i l_i / sum_i w_i.

What is held here, in the kernels (the engine's and the estimators' weights are tested beside them):
- integer weights train exactly as the rows repeated that many times would, on a full batch: the same
  sums of the same terms in another order, so within float64 rounding (1e-10 relative, as the issue
  asks; the derivation is at REPEAT_RTOL), for every output, optimizer and with L2;
- a batch whose weights are all 0 takes no step;
- full-batch training over blocks (``network.accumulate`` + ``full_batch_update``) weights as one batch does.
"""

import numpy as np
import pytest

from fastdnn.kernels import compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N

DIMS = np.array([6, 5, 4, 3], np.int64)
M = 30

# Repeated rows and weights sum the same terms: the repeated run adds row i's term w_i times one by one,
# the weighted run adds w_i times the term once. Each sum of k <= sum(w) ~ 60 terms is within
# gamma_k sum|terms| (gamma_k ~ k 2^-53 ~ 7e-15) of the exact one, per step; 8 steps at lr 0.05 through
# update Jacobians near the identity keep the parameters within ~1e-13 of their scale. 1e-10 leaves three
# orders for elements whose sums cancelled (the atol on the array's scale, as in test_equivalence.py).
REPEAT_RTOL = 1e-10
REPEAT_ATOL = 1e-12
EPOCHS = 8

OUTPUTS = {
    "sigmoid": (K.OUT_SIGMOID_XENT, 1),
    "softmax": (K.OUT_SOFTMAX_XENT, 3),
    "identity": (K.OUT_IDENTITY_MSE, 3),
}


def problem(output, seed=0):
    code, k = OUTPUTS[output]
    dims = DIMS.copy()
    dims[-1] = k
    rng = np.random.default_rng(seed)
    theta = np.concatenate([np.concatenate([rng.standard_normal(dims[i + 1] * dims[i]) / np.sqrt(dims[i]),
                                            0.1 * rng.standard_normal(dims[i + 1])]) for i in range(len(dims) - 1)])
    X = rng.standard_normal((M, dims[0]))
    if output == "softmax":
        Y = np.eye(k)[rng.integers(0, k, M)]
    elif output == "identity":
        Y = rng.standard_normal((M, k))
    else:
        Y = (rng.random((M, k)) < 0.5).astype(float)
    w = rng.integers(0, 4, M).astype(float)
    return dims, code, theta, X, Y, w


def run(dims, code, theta, X, Y, weights, opt, lambd, epochs=EPOCHS, batch=None, perms=None):
    theta = theta.copy()
    batch = X.shape[0] if batch is None else batch
    A = np.zeros(batch * int(dims[1:].sum()))
    work = N.Workspace(np.zeros((batch, dims[0])), np.zeros((batch, dims[-1])), A, np.zeros_like(A),
                       np.zeros_like(theta))
    if weights is not None:
        weights = N.Weights(weights, np.zeros(batch))
    state = np.zeros(2 * theta.size)
    costs = np.zeros(epochs)
    call = (X, Y, theta, dims, K.ACT_RELU, code, 0, opt, N.Hyper(0.05, 0.9, 0.999, 1e-8), lambd, state, 0, perms,
            batch, epochs, costs, work, weights)
    result = compiled(N.train, call, "network.train")(*call)
    return result, theta, state, costs


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("opt, lambd", [(K.OPT_GD, None), (K.OPT_MOMENTUM, 0.3), (K.OPT_ADAM, 0.3)],
                         ids=["gd", "momentum-l2", "adam-l2"])
def test_integer_weights_train_as_repeated_rows(output, opt, lambd):
    dims, code, theta, X, Y, w = problem(output)
    repeat = np.repeat(np.arange(M), w.astype(int))
    weighted = run(dims, code, theta, X, Y, w, opt, lambd)
    repeated = run(dims, code, theta, np.ascontiguousarray(X[repeat]), np.ascontiguousarray(Y[repeat]), None, opt,
                   lambd)
    assert weighted[0] == repeated[0] == (EPOCHS, EPOCHS, N.STOP_NONE)
    for a, b in zip(weighted[1:3], repeated[1:3]):
        np.testing.assert_allclose(a, b, rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(b).max())
    # The epochs' costs: summed with the weights, so over sum(w) they are the repeated rows' means.
    np.testing.assert_allclose(weighted[3] / w.sum(), repeated[3] / repeat.size, rtol=REPEAT_RTOL)
    # And the weights matter: unweighted, the same run ends elsewhere.
    assert not np.allclose(run(dims, code, theta, X, Y, None, opt, lambd)[1], weighted[1], rtol=1e-6)


def test_a_batch_of_zero_weights_takes_no_step():
    dims, code, theta, X, Y, w = problem("sigmoid")
    w[:10] = 0.0  # the first of three batches of 10
    perms = np.tile(np.arange(M), (2, 1))
    got = run(dims, code, theta, X, Y, w, K.OPT_ADAM, None, epochs=2, batch=10, perms=perms)
    assert got[0] == (2, 4, N.STOP_NONE)  # two steps an epoch, not three
    rest = np.arange(10, M)
    alone = run(dims, code, theta, np.ascontiguousarray(X[rest]), np.ascontiguousarray(Y[rest]), w[rest].copy(),
                K.OPT_ADAM, None, epochs=2, batch=10)
    for a, b in zip(got[1:], alone[1:]):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("chunk", [7, M])
def test_blocks_of_a_full_batch_weigh_as_the_batch(chunk):
    """accumulate over blocks of rows (chunks of 7, weights of a chunk possibly all 0) then
    full_batch_update: one weighted full-batch epoch of train."""
    dims, code, theta, X, Y, w = problem("softmax")
    w[7:14] = 0.0  # one chunk of 7 weighs nothing
    lambd, hyper = 0.3, N.Hyper(0.05, 0.9, 0.999, 1e-8)
    ref = run(dims, code, theta, X, Y, w, K.OPT_ADAM, lambd, epochs=1)
    th = theta.copy()
    A = np.zeros(chunk * int(dims[1:].sum()))
    work = N.Workspace(np.zeros((0, 0)), np.zeros((0, 0)), A, np.zeros_like(A), np.zeros_like(th))
    grad = np.zeros_like(th)
    total = 0.0
    for lo in range(0, M, 10):  # three "blocks read from disk" of 10 rows
        Xb, Yb, wb = X[lo : lo + 10], Y[lo : lo + 10], w[lo : lo + 10]
        call = (Xb, Yb, th, dims, K.ACT_RELU, code, 0, chunk, float(w.sum()), work, grad, lo > 0, wb)
        total += compiled(N.accumulate, call, "network.accumulate")(*call)
    state = np.zeros(2 * th.size)
    update = (th, grad, state, dims, 0, K.OPT_ADAM, hyper, lambd, total, float(w.sum()), 0)
    cost, reason = compiled(N.full_batch_update, update, "network.full_batch_update")(*update)
    assert reason == N.STOP_NONE
    np.testing.assert_allclose(cost, ref[3][0] / w.sum(), rtol=1e-12)
    np.testing.assert_allclose(th, ref[1], rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(ref[1]).max())
    np.testing.assert_allclose(state, ref[2], rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(ref[2]).max())


def as_course_parameters(theta, dims):
    """The flat theta (W1, b1, W2, ...) as the reference's dict of W (n_l, n_{l-1}) and b (n_l, 1)."""
    out, o = {}, 0
    for l in range(1, len(dims)):
        n, k = int(dims[l]), int(dims[l - 1])
        out[f"W{l}"] = theta[o : o + n * k].reshape(n, k).copy()
        out[f"b{l}"] = theta[o + n * k : o + n * k + n].reshape(n, 1).copy()
        o += n * (k + 1)
    return out


COURSE = {"sigmoid": ("sigmoid", "cross_entropy"), "softmax": ("softmax", "cross_entropy"), "identity": ("identity", "mse")}


@pytest.mark.parametrize("output", OUTPUTS)
def test_the_reference_weighs_as_the_kernels_and_as_repeated_examples(output):
    from fastdnn import reference

    dims, code, theta, X, Y, w = problem(output)
    course = dict(output=COURSE[output][0], loss=COURSE[output][1], optimizer="adam", lambd=0.3, learning_rate=0.05,
                  num_epochs=EPOCHS)
    params, costs = reference.model(X.T, Y.T, list(dims), parameters=as_course_parameters(theta, dims),
                                    sample_weight=w, **course)
    fast = run(dims, code, theta, X, Y, w, K.OPT_ADAM, 0.3)
    for key, value in as_course_parameters(fast[1], dims).items():
        np.testing.assert_allclose(value, params[key], rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(params[key]).max())
    np.testing.assert_allclose(fast[3] / w.sum(), costs, rtol=REPEAT_RTOL)
    repeat = np.repeat(np.arange(M), w.astype(int))
    again, again_costs = reference.model(X[repeat].T, Y[repeat].T, list(dims), parameters=as_course_parameters(theta, dims),
                                         **course)
    for key, value in again.items():
        np.testing.assert_allclose(params[key], value, rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(value).max())
    np.testing.assert_allclose(costs, again_costs, rtol=REPEAT_RTOL)


ROUTES = {
    "full-batch": dict(gram=False),
    "gram": dict(gram=True, optimizer="momentum"),
    "minibatch": dict(mini_batch_size=8, gram=False),
    "minibatch-pool": dict(mini_batch_size=8, gram=False, threads=2),
}


@pytest.mark.parametrize("route", ROUTES)
def test_fastdnn_model_weighs_as_the_reference_on_every_route(route, monkeypatch):
    import fastdnn
    from fastdnn import reference
    from fastdnn import threads as T

    monkeypatch.setattr(T, "usable_cores", lambda: 2)
    monkeypatch.setattr(T, "FLOPS_PER_THREAD", 1.0)  # threads=2 runs the step's pool on this small network
    dims, code, theta, X, Y, w = problem("sigmoid")
    if route == "gram":
        X = np.random.default_rng(3).standard_normal((M, 70))  # wide: m <= n_0 / 2
        dims = dims.copy()
        dims[0] = 70
    options = dict(dict(optimizer="adam", lambd=0.3, learning_rate=0.05, num_epochs=EPOCHS, seed=4), **ROUTES[route])
    gram = options.pop("gram")
    threads = options.pop("threads", 1)
    params, costs = fastdnn.model(X.T, Y.T, list(dims), sample_weight=w, gram=gram, threads=threads, **options)
    ref, ref_costs = reference.model(X.T, Y.T, list(dims), sample_weight=w, **options)
    for key, value in ref.items():
        np.testing.assert_allclose(params[key], value, rtol=REPEAT_RTOL, atol=REPEAT_ATOL * np.abs(value).max())
    np.testing.assert_allclose(costs, ref_costs, rtol=REPEAT_RTOL)
    unweighted, _ = fastdnn.model(X.T, Y.T, list(dims), gram=gram, threads=threads, **options)
    assert not np.allclose(unweighted["W1"], params["W1"], rtol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (np.zeros(M), "not all 0"), (-np.ones(M), "non-negative"), (np.full(M, np.nan), "finite"),
    (np.ones(M - 1), f"one number per example: {M}"),
])
def test_bad_weights_are_one_clear_line(bad, message):
    import fastdnn

    dims, code, theta, X, Y, w = problem("sigmoid")
    with pytest.raises(ValueError, match=message):
        fastdnn.model(X.T, Y.T, list(dims), sample_weight=bad, num_epochs=1)


# ---------------------------------------------------------------------------- the estimators


def labelled(m=120, n=6, seed=0, minority=None):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    if minority is not None:
        y = (X[:, 0] > minority).astype(int)
    return X, y


@pytest.mark.parametrize("estimator", ["classifier", "regressor"])
def test_fit_with_integer_sample_weights_is_fit_on_repeated_rows(estimator):
    import fastdnn

    X, y = labelled()
    w = np.random.default_rng(1).integers(0, 4, X.shape[0])
    repeat = np.repeat(np.arange(X.shape[0]), w)
    cls = fastdnn.DNNClassifier if estimator == "classifier" else fastdnn.DNNRegressor
    target = y if estimator == "classifier" else X[:, 0] - X[:, 1] ** 2
    options = dict(hidden_layer_sizes=(8,), batch_size=None, max_iter=15, random_state=0, optimizer="adam",
                   learning_rate=0.01, l2=0.1)
    weighted = cls(**options).fit(X, target, sample_weight=w)
    repeated = cls(**options).fit(X[repeat], target[repeat])
    np.testing.assert_allclose(weighted.parameters_.flat, repeated.parameters_.flat, rtol=REPEAT_RTOL,
                               atol=REPEAT_ATOL * np.abs(repeated.parameters_.flat).max())
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=REPEAT_RTOL)
    # score weighs as scikit-learn does: the repeated rows' score.
    np.testing.assert_allclose(weighted.score(X, target, sample_weight=w), repeated.score(X[repeat], target[repeat]),
                               rtol=1e-12)
    # Ones are no weights, bit for bit.
    ones = cls(**options).fit(X, target, sample_weight=np.ones(X.shape[0]))
    plain = cls(**options).fit(X, target)
    assert np.array_equal(ones.parameters_.flat, plain.parameters_.flat)
    # partial_fit takes them too.
    part = cls(**{**options, "max_iter": 1})
    args = (X, target) if estimator == "regressor" else (X, target, np.unique(y))
    part.partial_fit(*args, sample_weight=w)
    once = cls(**{**options, "max_iter": 1}).fit(X, target, sample_weight=w)
    assert np.array_equal(part.parameters_.flat, once.parameters_.flat)


def test_class_weight_balanced_is_scikit_learns_and_lifts_the_minority():
    import fastdnn

    X, y = labelled(m=400, minority=1.6)  # ~5% positives
    counts = np.bincount(y)
    balanced = y.size / (2 * counts)
    options = dict(hidden_layer_sizes=(8,), batch_size=None, max_iter=40, random_state=0, learning_rate=0.01)
    by_name = fastdnn.DNNClassifier(class_weight="balanced", **options).fit(X, y)
    by_hand = fastdnn.DNNClassifier(**options).fit(X, y, sample_weight=balanced[y])
    assert np.array_equal(by_name.parameters_.flat, by_hand.parameters_.flat)
    as_dict = fastdnn.DNNClassifier(class_weight={0: balanced[0], 1: balanced[1]}, **options).fit(X, y)
    assert np.array_equal(as_dict.parameters_.flat, by_hand.parameters_.flat)
    none = fastdnn.DNNClassifier(**options).fit(X, y)
    recall = lambda est: np.mean(est.predict(X[y == 1]) == 1)  # noqa: E731
    assert recall(by_name) > recall(none)
    sklearn = pytest.importorskip("sklearn.utils.class_weight")
    np.testing.assert_allclose(balanced, sklearn.compute_class_weight("balanced", classes=np.array([0, 1]), y=y))


@pytest.mark.parametrize("bad, message", [
    (dict(sample_weight=-np.ones(120)), "non-negative"), (dict(sample_weight=np.ones(7)), r"one number per sample \(120\)"),
    (dict(sample_weight=np.zeros(120)), "zero for every sample"),
])
def test_the_estimators_bad_weights_are_one_line(bad, message):
    import fastdnn

    X, y = labelled()
    with pytest.raises(ValueError, match=message):
        fastdnn.DNNClassifier(max_iter=1).fit(X, y, **bad)
    with pytest.raises(ValueError, match="class_weight names class 7"):
        fastdnn.DNNClassifier(max_iter=1, class_weight={7: 2.0}).fit(X, y)
    with pytest.raises(ValueError, match="class_weight must be None, 'balanced' or a dict"):
        fastdnn.DNNClassifier(max_iter=1, class_weight="heavy").fit(X, y)


def test_the_command_trains_with_weights_and_class_weight(tmp_path, capsys):
    from fastdnn import cli, load_model

    m = 300
    w = np.random.default_rng(0).integers(0, 3, m).astype(float)
    np.save(tmp_path / "w.npy", w)
    common = ["train", "--samples", str(m), "--features", "8", "--epochs", "2", "--batch-size", "full", "--quiet"]
    assert cli.main([*common, "--weights", str(tmp_path / "w.npy"), "--class-weight", "balanced",
                     "--out", str(tmp_path / "a.npz")]) == 0
    assert cli.main([*common, "--out", str(tmp_path / "b.npz")]) == 0
    weighted, plain = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert weighted.class_weight == "balanced"
    assert not np.allclose(weighted.parameters_.flat, plain.parameters_.flat)
    capsys.readouterr()
    np.save(tmp_path / "short.npy", w[:10])
    assert cli.main([*common, "--weights", str(tmp_path / "short.npy"), "--out", str(tmp_path / "c.npz")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f"--weights {tmp_path / 'short.npy'}: expected {m} numbers (one per example of the "
                            "data), got float64 of shape (10,)")
