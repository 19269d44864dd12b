"""Inverted dropout (issue 28, its first half): the reference's and the kernels', the same masks.

What is held here:
- the masks: each bit a hash of (seed, step, layer, the example's row in the data, unit); the reference's
  numpy twin (``reference.dropout_mask``) and the kernels' (``kernels.masks``) give the same bits, rows up to
  2^32 - 1 included; the kept fraction is keep_prob within a binomial bound, and other steps, layers, seeds,
  rows and units draw independent bits; keep_prob 1 keeps every unit.
- one step, stage by stage (forward: Z and the dropped A of every layer, the logits; the cost; backward: dA,
  dZ, dW, db): the kernels against the reference, float64 within tests/test_equivalence.py's stage
  tolerances for every hidden activation, float32 within a running error bound derived as
  test_equivalence derives its own, with dropout's roundings added (1/keep_prob rounded to float32, the
  product); the masks exactly: a dropped unit is 0 in A and in dZ.
- whole runs: fastdnn.model = reference.model with dropout (float64 within RUN_RTOL64, minibatches keyed by
  the example's row, per-layer keep_prob, L2, frozen layers, every optimizer, a softmax; float32 within
  FLOAT32_RUN_SAFETY times the reference's own float32 spread, gd, as test_equivalence holds float32 runs).
- the step's pool (slow, as tests/test_kernels_pool.py): T = 1 is network.train with dropout bit for bit,
  T = 2, 3 within that file's RUN_RTOL64.
- data streamed from disk = the in-memory run in the same row order, bit for bit (minibatches, a training
  split); a full batch over blocks within summation-order rounding of the in-memory full batch.
- resumed runs bit for bit; the seed is the training state's, in checkpoints; older files load without one.
- gradient checking through fixed masks (fastdnn.gradcheck), of the reference's backward and the kernels'.
- predictions never drop; keep_prob 1 runs the code without dropout, bit for bit.
- the option's checks, the command, sweeps; the Gram route refused.
MPI: tests/test_dropout_mpi.py.
"""

import json
import os

import numpy as np
import numpy.testing as npt
import pytest

import fastdnn
from fastdnn import cli
from fastdnn import io as fio
from fastdnn import reference as ref
from fastdnn.checking import assert_close
from fastdnn.engine import Engine
from fastdnn.estimator import DNNClassifier, load_checkpoint
from fastdnn.gradcheck import gradient_check, numerical_gradients
from fastdnn.kernels import compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import masks as MK
from fastdnn.kernels import network as N
from fastdnn.labels import class_targets
from fastdnn.pipeline import Parameters, activation_codes, initialize_parameters, pack_parameters
from fastdnn.stream import Feed, epoch_blocks, open_disk_dataset

from test_equivalence import (
    BOUND_SAFETY,
    COST_ATOL64,
    FLOAT32_REALIZATIONS,
    FLOAT32_RUN_SAFETY,
    LOG_ROUNDING,
    RUN_ATOL64,
    RUN_RTOL64,
    SIGMOID_ROUNDING,
    STAGE_ATOL64,
    STAGE_RTOL64,
    U32,
    curve_deviation,
    parameter_deviation,
    teacher_problem,
)

# A binomial count's deviation from its mean beyond SIGMAS standard deviations has probability below 2e-9 (a
# normal tail): a generator whose bits are independent with probability p passes these checks; a biased or
# correlated one (a row or unit ignored, a key shared between steps) misses by hundreds of sigmas.
SIGMAS = 6.0
# Central differences: tests/test_reference_options.py's epsilon and tolerance (its derivation), and its
# margin that keeps ReLU pre-activations off their kink while a weight moves by epsilon.
GRADCHECK_EPSILON = 1e-6
GRADCHECK_TOLERANCE = 1e-7
KINK_MARGIN = 1e-4


# ---------------------------------------------------------------------------- the masks


ROWS = np.array([0, 1, 2, 7, 1000, 2**31, 2**32 - 1, 123456789, 40, 41], np.int64)


@pytest.mark.parametrize("seed, step, layer, keep", [
    (0, 1, 1, 0.5), (1, 2, 2, 0.86), (2**32 - 1, 2**40 + 3, 7, 0.7), (12345, 1, 1, 1.0), (5, 3, 1, 1e-12),
])
def test_the_reference_draws_the_kernels_masks_bit_for_bit(seed, step, layer, keep):
    n_units = 37
    expected = ref.dropout_mask(seed, step, layer, ROWS, n_units, keep)
    out = np.empty((ROWS.size, n_units), np.int64)
    MK.mask_block(seed, step, layer, ROWS, n_units, MK.threshold(keep), out)
    assert expected.shape == (n_units, ROWS.size) and expected.dtype == np.int64
    assert np.array_equal(expected.T, out)
    if keep == 1.0:
        assert MK.threshold(keep) == 2**32 and expected.all()
    if keep == 1e-12:
        assert MK.threshold(keep) == 0 and not expected.any()


def within_binomial(count, n, p):
    return abs(count - n * p) <= SIGMAS * np.sqrt(n * p * (1 - p))


@pytest.mark.parametrize("keep", [0.5, 0.86, 0.7, 0.1])
def test_units_are_kept_with_probability_keep_prob_and_independently(keep):
    rows, n = np.arange(3000), 40
    D = ref.dropout_mask(7, 3, 2, rows, n, keep)
    assert within_binomial(D.sum(), D.size, keep)
    # Two independent masks agree on a unit with probability p^2 + (1 - p)^2: other steps, layers, seeds and
    # rows (the same units of other examples) draw other bits.
    agree = keep**2 + (1 - keep) ** 2
    for other in (ref.dropout_mask(7, 4, 2, rows, n, keep), ref.dropout_mask(7, 3, 3, rows, n, keep),
                  ref.dropout_mask(8, 3, 2, rows, n, keep), ref.dropout_mask(7, 3, 2, rows + 3000, n, keep),
                  ref.dropout_mask(7, 2**32 + 3, 2, rows, n, keep)):
        assert within_binomial(np.sum(D == other), D.size, agree)
    # Neighbouring units, and neighbouring rows, are kept together with probability p^2.
    assert within_binomial(np.sum(D[:-1] & D[1:]), D[1:].size, keep**2)
    assert within_binomial(np.sum(D[:, :-1] & D[:, 1:]), D[:, 1:].size, keep**2)


def test_masks_depend_on_the_row_not_on_the_place_in_the_batch():
    rows = np.array([5, 9, 3, 11])
    D = ref.dropout_mask(1, 1, 1, rows, 50, 0.5)
    assert np.array_equal(ref.dropout_mask(1, 1, 1, rows[::-1], 50, 0.5), D[:, ::-1])
    assert np.array_equal(ref.dropout_mask(1, 1, 1, rows[2:], 50, 0.5), D[:, 2:])


# ---------------------------------------------------------------------------- one step, stage by stage


HIDDEN = ["relu", "leaky_relu", "tanh", "sigmoid"]
# (layer sizes, keep_prob per hidden layer): a layer of keep_prob 1 among dropped ones runs the pass without
# dropout; widths of 1 and odd sizes as in tests/test_equivalence.py.
STAGE_NETS = {
    "1-hidden": ([17, 33, 1], (0.7,)),
    "2-hidden": ([33, 17, 3, 1], (0.86, 0.5)),
    "3-hidden-bottleneck-1": ([7, 33, 1, 17, 1], (0.8, 1.0, 0.6)),
}
STAGE_M = [1, 7, 64, 203]
STAGE_CASES = [pytest.param(name, m, id=f"{name}-m{m}") for name in STAGE_NETS for m in STAGE_M]


def stage_problem(dims, m, seed, dtype):
    """X (n_0, m), Y (1, m), parameters (He-scaled W, non-zero b) of ``dtype``, and the examples' rows in the
    data (large and shuffled: a mask keyed by the place in the batch would differ)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((dims[0], m)).astype(dtype)
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = (rng.standard_normal((dims[l], dims[l - 1])) * np.sqrt(2 / dims[l - 1])).astype(dtype)
        params[f"b{l}"] = (0.5 * rng.standard_normal((dims[l], 1))).astype(dtype)
    rows = (2**32 - 1) - 7919 * rng.permutation(m)
    return X, Y, params, rows


def fast_stages(X, Y, params, dims, hidden, keep, seed, step, rows, dtype):
    """Every tensor of one forward and backward pass of the kernels (network.forward, network.backward) with the
    masks of (seed, step, rows), in the course's layout: Z{l}, A{l} (dropped, hidden layers), the logits Z{L},
    cost, dA{l}, dZ{l} (hidden layers), dW{l}, db{l}."""
    d = np.asarray(dims, np.int64)
    L, m = len(dims) - 1, X.shape[1]
    Xs, Ys = np.ascontiguousarray(X.T, dtype), np.ascontiguousarray(Y.T, dtype)
    theta = pack_parameters(params, dtype).flat.copy()
    codes = activation_codes(hidden, "sigmoid")
    masks = N.masks_for(seed, step, [MK.threshold(p) for p in keep], np.array([1 / p for p in keep], dtype), rows)
    size = m * sum(dims[1:])
    Z, A, dA, dZ = (np.zeros(size, dtype) for _ in range(4))
    grad = np.zeros_like(theta)
    forward = (Xs, theta, d, *codes, Z, A, False, masks)
    compiled(N.forward, forward, "forward")(*forward)

    def block(buffer, l):
        o = m * sum(dims[1:l])
        return buffer[o : o + m * dims[l]].reshape(m, dims[l])

    backward = (Xs, Ys, theta, d, *codes, block(A, L), A, dA, dZ, grad, 0, None, masks)
    cost = compiled(N.backward, backward, "backward")(*backward)
    out = {"cost": float(cost)}
    g = Parameters(grad, dims)
    for l in range(1, L + 1):
        out[f"Z{l}"] = block(Z, l).T.copy()
        out[f"dW{l}"], out[f"db{l}"] = g[f"W{l}"].copy(), g[f"b{l}"].copy()
        if l < L:
            out[f"A{l}"], out[f"dA{l}"], out[f"dZ{l}"] = (block(b, l).T.copy() for b in (A, dA, dZ))
    out[f"Z{L}"] = block(A, L).T.copy()  # the logits, bias added
    return out


def ref_stages(X, Y, params, dims, hidden, keep, seed, step, rows):
    """The same tensors from the reference's L_model_forward / L_model_backward with dropout_masks(seed, step,
    rows), in float64, and the masks D{l}."""
    X = X.astype(np.float64)
    params = {k: v.astype(np.float64) for k, v in params.items()}
    L = len(dims) - 1
    masks = ref.dropout_masks(seed, step, rows, dims, keep)
    AL, caches = ref.L_model_forward(X, params, hidden, "sigmoid", keep, masks)
    grads = ref.L_model_backward(AL, Y, caches, hidden)
    out = {"cost": ref.compute_cost(AL, Y)}
    backward = ref.HIDDEN_ACTIVATIONS[hidden][1]
    for l in range(1, L + 1):
        out[f"Z{l}"] = caches[l - 1][1]
        out[f"dW{l}"], out[f"db{l}"] = grads[f"dW{l}"], grads[f"db{l}"]
        if l < L:
            out[f"A{l}"] = caches[l][0][0]  # what layer l + 1 saw: the dropped activations
            out[f"dA{l}"] = grads[f"dA{l}"]
            out[f"D{l}"] = masks[l - 1]
            out[f"dZ{l}"] = backward(ref.dropout_backward(grads[f"dA{l}"], masks[l - 1], keep[l - 1]), out[f"Z{l}"])
    return out


def assert_masks_exact(fast, expected, L):
    """A dropped unit is exactly 0 in the kernels' A and dZ; a kept unit whose activation is not 0 is kept."""
    for l in range(1, L):
        dropped = expected[f"D{l}"] == 0
        assert not fast[f"A{l}"][dropped].any() and not fast[f"dZ{l}"][dropped].any(), l
        live = ~dropped & (np.abs(expected[f"A{l}"]) > 1e-6 * np.abs(expected[f"A{l}"]).max())
        assert fast[f"A{l}"][live].all(), l


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("name, m", STAGE_CASES)
def test_kernels_match_the_reference_every_stage_with_dropout_float64(single_blas_thread, name, m, hidden):
    dims, keep = STAGE_NETS[name]
    X, Y, params, rows = stage_problem(dims, m, len(dims) + m, np.float64)
    seed, step = 2024, 5
    fast = fast_stages(X, Y, params, dims, hidden, keep, seed, step, rows, np.float64)
    expected = ref_stages(X, Y, params, dims, hidden, keep, seed, step, rows)
    assert_masks_exact(fast, expected, len(dims) - 1)
    for key, value in fast.items():
        if key == "cost":
            npt.assert_allclose(value, expected[key], rtol=STAGE_RTOL64, atol=COST_ATOL64, err_msg=key)
        else:
            assert_close(value, expected[key], rtol=STAGE_RTOL64, scale_rtol=STAGE_ATOL64, name=key)
    # The masks mattered: without them the first hidden layer's activations differ far beyond the tolerance.
    plain = ref_stages(X, Y, params, dims, hidden, (1.0,) * len(keep), seed, step, rows)
    assert np.abs(plain["A1"] - expected["A1"]).max() > 1e3 * STAGE_RTOL64 * np.abs(expected["A1"]).max() or m == 1


def float32_dropout_bounds(X, Y, ref_out, dims, keep):
    """Element-wise bounds on |kernels in float32 - reference in float64| for ``fast_stages``' tensors (ReLU
    hidden layers, sigmoid output, cross-entropy), tests/test_equivalence.py's running error analysis
    (float32_error_bounds, its rules and constants) with dropout's operations added:
      - a kept unit is relu(z) * s, s = 1/keep_prob rounded to float32 (from float64: u32 + u64 <= 1.01 u32),
        the product rounded once (u32): |A - A_ref| <= s (1 + u) err(Z) + 3 u |A_ref|; a dropped unit is 0 in
        both (the masks are the same bits: asserted exactly);
      - backward, dZ = dA * s where the kept unit's A > 0: (1 + u) s err(dA) + 3 u |dZ_ref|, or where ReLU's
        mask may flip (|Z| <= error(Z)) all of s (|dA| + err(dA));
      - the cost is summed in float64 from float32 logits, each term max(z, 0) - z y + log1p(e^-|z|) with
        e^-|z| and log1p in float32: it moves by |sigmoid(z) - y| err(z) plus (LOG_ROUNDING + 4) u of
        |z| + log1p(e^-|z|), plus the reference's own COST_ATOL64.
    The result is scaled by BOUND_SAFETY (first-order terms and the reference's own rounding)."""
    u = U32

    def gamma(k):
        return k * u / (1 - k * u)

    L, m = len(dims) - 1, Y.shape[1]
    W = {l: np.abs(ref_out[f"W{l}"]) for l in range(1, L + 1)}
    b = {l: np.abs(ref_out[f"b{l}"]) for l in range(1, L + 1)}
    A = {0: np.abs(X.astype(np.float64))}
    err_A = {0: np.zeros_like(A[0])}
    err_Z = {}
    bound = {}
    for l in range(1, L + 1):
        e = gamma(dims[l - 1] + 1) * (W[l] @ (A[l - 1] + err_A[l - 1]) + b[l]) + W[l] @ err_A[l - 1]
        err_Z[l] = bound[f"Z{l}"] = e
        if l < L:
            A[l] = np.abs(ref_out[f"A{l}"])
            err_A[l] = bound[f"A{l}"] = ref_out[f"D{l}"] * ((1 + u) / keep[l - 1] * e + 3 * u * A[l])
    ZL = ref_out[f"Z{L}"]
    s = 1 / (1 + np.exp(-ZL))
    terms = np.abs(s - Y) * err_Z[L] + (LOG_ROUNDING + 4) * u * (np.abs(ZL) + np.log1p(np.exp(-np.abs(ZL))))
    bound["cost"] = np.float64(np.mean(terms)) + COST_ATOL64
    dZ = s - Y
    err_dZ = s * (1 - s) * err_Z[L] + SIGMOID_ROUNDING * u * s + u * np.abs(dZ)
    for l in range(L, 0, -1):
        big_dZ, big_A = np.abs(dZ) + err_dZ, A[l - 1] + err_A[l - 1]
        bound[f"dW{l}"] = (gamma(m + 2) * big_dZ @ big_A.T + err_dZ @ big_A.T + np.abs(dZ) @ err_A[l - 1].T) / m
        bound[f"db{l}"] = (gamma(m + 1) * big_dZ.sum(axis=1, keepdims=True) + err_dZ.sum(axis=1, keepdims=True)) / m
        if l == 1:
            break
        err_dA = gamma(dims[l]) * W[l].T @ big_dZ + W[l].T @ err_dZ
        bound[f"dA{l - 1}"] = err_dA
        dA, D, p = np.abs(ref_out[f"dA{l - 1}"]), ref_out[f"D{l - 1}"], keep[l - 2]
        dZ = ref_out[f"dZ{l - 1}"]
        flips = np.abs(ref_out[f"Z{l - 1}"]) <= BOUND_SAFETY * err_Z[l - 1]
        err_dZ = D * np.where(flips, (1 + u) / p * (dA + err_dA), (1 + u) / p * err_dA + 3 * u * np.abs(dZ))
        bound[f"dZ{l - 1}"] = err_dZ
    return {key: BOUND_SAFETY * value for key, value in bound.items()}


@pytest.mark.parametrize("name, m", STAGE_CASES)
def test_kernels_float32_stay_within_the_derived_bound_every_stage_with_dropout(single_blas_thread, name, m):
    dims, keep = STAGE_NETS[name]
    X, Y, params, rows = stage_problem(dims, m, len(dims) + m, np.float32)
    fast = fast_stages(X, Y, params, dims, "relu", keep, 77, 3, rows, np.float32)
    expected = ref_stages(X, Y, params, dims, "relu", keep, 77, 3, rows)
    assert_masks_exact(fast, expected, len(dims) - 1)
    bounds = float32_dropout_bounds(X, Y, {**expected, **{k: v.astype(np.float64) for k, v in params.items()}},
                                    dims, keep)
    for key, value in fast.items():
        if key != "cost":
            assert value.dtype == np.float32, key
        diff = np.abs(np.asarray(value, np.float64) - expected[key])
        assert np.all(diff <= bounds[key]), (key, float(np.max(diff / np.where(bounds[key] > 0, bounds[key], np.inf))))


# ---------------------------------------------------------------------------- whole runs


def course_problem(dims, m, seed, softmax=False):
    X, Y = teacher_problem(dims[0], m, seed)
    if softmax:
        labels = (Y[0] + (X[0] > 0.8)).astype(np.int64)
        Y = np.eye(dims[-1])[labels].T
    return X, Y


# name: (layer sizes, m, options of model(), softmax output)
RUNS = {
    "gd-full-batch": ([12, 16, 8, 1], 150, dict(learning_rate=0.3, num_epochs=60, keep_prob=0.8), False),
    "gd-minibatch-per-layer": ([12, 16, 8, 1], 150, dict(learning_rate=0.1, num_epochs=12, mini_batch_size=32,
                                                        keep_prob=(0.9, 0.6)), False),
    "adam-l2": ([12, 16, 8, 1], 150, dict(optimizer="adam", learning_rate=0.005, num_epochs=12, mini_batch_size=32,
                                         lambd=0.3, keep_prob=0.7, dropout_seed=99), False),
    "momentum-tanh": ([12, 16, 8, 1], 150, dict(optimizer="momentum", learning_rate=0.1, num_epochs=12,
                                               mini_batch_size=40, hidden_activation="tanh", keep_prob=(1.0, 0.75)),
                      False),
    "leaky-frozen": ([12, 16, 8, 1], 150, dict(learning_rate=0.1, num_epochs=12, mini_batch_size=32,
                                              hidden_activation="leaky_relu", frozen_layers=1, keep_prob=0.8,
                                              init="he"), False),
    "softmax-sigmoid-hidden": ([12, 10, 3], 150, dict(optimizer="adam", learning_rate=0.01, num_epochs=12,
                                                     mini_batch_size=50, output="softmax",
                                                     hidden_activation="sigmoid", keep_prob=0.6), True),
    "identity-regression": ([12, 16, 8, 3], 150, dict(optimizer="adam", learning_rate=0.005, num_epochs=12,
                                                     mini_batch_size=32, output="identity", loss="mse",
                                                     keep_prob=0.8), True),
}


@pytest.mark.parametrize("name", RUNS)
def test_a_run_with_dropout_is_the_references_float64(single_blas_thread, name):
    dims, m, kw, softmax = RUNS[name]
    X, Y = course_problem(dims, m, len(name), softmax)
    ref_params, ref_costs = ref.model(X, Y, dims, **kw)
    fast_params, fast_costs = fastdnn.model(X, Y, dims, **kw)
    npt.assert_allclose(fast_costs, ref_costs, rtol=RUN_RTOL64, atol=0)
    for key, expected in ref_params.items():
        assert_close(fast_params[key], expected, rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)
    # Dropout mattered: the same run without it ends far from this one.
    plain, _ = ref.model(X, Y, dims, **{**kw, "keep_prob": 1.0})
    assert parameter_deviation(plain, ref_params) > 1e3 * RUN_RTOL64


def test_a_weighted_run_with_dropout_is_the_references(single_blas_thread):
    """Sample weights and dropout together: the weighted mean of the dropped network's costs, a batch of weight 0
    taking no step (and so no step's masks), as the reference counts steps."""
    dims = [12, 16, 8, 1]
    X, Y = course_problem(dims, 150, 4)
    rng = np.random.default_rng(0)
    w = np.zeros(150)
    w[rng.choice(150, 30, replace=False)] = rng.integers(1, 4, 30)  # a batch of 10 weighs 0 about a time in four
    kw = dict(learning_rate=0.1, num_epochs=8, mini_batch_size=10, keep_prob=(0.8, 0.7), sample_weight=w)
    shuffles = np.random.default_rng(1)  # model's seed=1: its epochs' orders
    steps = sum(np.sum(w[order].reshape(15, 10), axis=1).astype(bool).sum() for order in
                (shuffles.permutation(150) for _ in range(8)))
    assert steps < 8 * 15  # some batches take no step: the steps, and so the masks, are counted over the others
    ref_params, ref_costs = ref.model(X, Y, dims, **kw)
    fast_params, fast_costs = fastdnn.model(X, Y, dims, **kw)
    npt.assert_allclose(fast_costs, ref_costs, rtol=RUN_RTOL64, atol=0)
    for key, expected in ref_params.items():
        assert_close(fast_params[key], expected, rtol=RUN_RTOL64, scale_rtol=RUN_ATOL64, name=key)
    full, full_costs = fastdnn.model(X, Y, dims, **{**kw, "mini_batch_size": None, "num_epochs": 20})
    npt.assert_allclose(full_costs, ref.model(X, Y, dims, **{**kw, "mini_batch_size": None, "num_epochs": 20})[1],
                        rtol=RUN_RTOL64)


def test_the_compile_notice_names_the_dropout_version():
    engine = Engine(initialize_parameters([3, 4, 1], "he", 1, np.float64), keep_prob=0.5)
    assert engine.describe("float64") == "float64, relu, sigmoid + cross_entropy, gd, dropout"
    assert Engine(initialize_parameters([3, 4, 1], "he", 1, np.float64)).describe("float64").endswith(", gd")


def backward_from_logits(AL, Y, caches):
    """The reference's backward pass from dZ_L = A_L - Y (tests/test_equivalence.py's, for float32 runs whose
    A_L rounds to 1), through the caches' dropout; the rest is the reference's own functions."""
    L = len(caches)
    grads = {}
    dA, grads[f"dW{L}"], grads[f"db{L}"] = ref.linear_backward(AL - Y.astype(AL.dtype), caches[L - 1][0])
    for l in range(L - 1, 0, -1):
        cache = caches[l - 1]
        if len(cache) == 3:
            D, p = cache[2]
            dA = ref.dropout_backward(dA, D, p)
        dA, grads[f"dW{l}"], grads[f"db{l}"] = ref.linear_activation_backward(dA, cache[:2], "relu")
    return grads


def reference_dropout_run(X, Y, dims, learning_rate, epochs, keep, seed, dtype, relabel):
    """Full-batch gd with dropout through the reference's functions in ``dtype`` on a relabelled network
    (tests/test_equivalence.py's realisations: input features and hidden units permuted with their weights,
    and here with their masks, so the same trajectory in another summation order); parameters back in the
    original labelling."""
    rng = np.random.default_rng(relabel)
    perms = [rng.permutation(n) for n in dims[:-1]] + [np.arange(dims[-1])]
    init = ref.initialize_parameters(dims, "deep", seed)
    params = {}
    for l in range(1, len(dims)):
        params[f"W{l}"] = init[f"W{l}"][perms[l]][:, perms[l - 1]].astype(dtype)
        params[f"b{l}"] = init[f"b{l}"][perms[l]].astype(dtype)
    Xp, Yd = X[perms[0]].astype(dtype), Y.astype(dtype)
    columns = np.arange(X.shape[1])
    costs = []
    for step in range(1, epochs + 1):
        masks = [D[perms[l]].astype(dtype) for l, D in enumerate(ref.dropout_masks(seed, step, columns, dims, keep), 1)]
        AL, caches = ref.L_model_forward(Xp, params, "relu", "sigmoid", keep, masks)
        ZL = caches[-1][1].astype(np.float64)
        costs.append(np.mean(np.logaddexp(0, ZL) - ZL * Y))
        params = ref.update_parameters(params, backward_from_logits(AL, Yd, caches), learning_rate)
    assert all(value.dtype == dtype for value in params.values())
    inverse = [np.argsort(p) for p in perms]
    final = {}
    for l in range(1, len(dims)):
        final[f"W{l}"] = params[f"W{l}"][inverse[l]][:, inverse[l - 1]]
        final[f"b{l}"] = params[f"b{l}"][inverse[l]]
    return np.array(costs), final


def test_a_float32_run_with_dropout_stays_within_the_references_float32_spread(single_blas_thread):
    """tests/test_equivalence.py's float32 whole-run contract, with dropout: the tolerance is the reference's own
    float32 realisations' largest deviation from its float64 run, times FLOAT32_RUN_SAFETY."""
    dims, m, lr, epochs, keep, seed = [20, 7, 5, 1], 203, 0.1, 150, (0.86, 0.7), 1
    X, Y = teacher_problem(dims[0], m, seed=9)
    X64 = X.astype(np.float32).astype(np.float64)
    ref_params, ref_costs = ref.model(X64, Y, dims, lr, epochs, keep_prob=keep, seed=seed)
    fast_params, fast_costs = fastdnn.model(X.astype(np.float32), Y, dims, lr, epochs, keep_prob=keep, seed=seed,
                                            dtype=np.float32)
    assert all(value.dtype == np.float32 for value in fast_params.values())
    realizations = [reference_dropout_run(X64, Y, dims, lr, epochs, keep, seed, np.float32, r)
                    for r in range(FLOAT32_REALIZATIONS)]
    curve_tol = FLOAT32_RUN_SAFETY * max(curve_deviation(c, ref_costs) for c, _ in realizations)
    params_tol = FLOAT32_RUN_SAFETY * max(parameter_deviation(p, ref_params) for _, p in realizations)
    assert curve_deviation(fast_costs, ref_costs) <= curve_tol
    assert parameter_deviation(fast_params, ref_params) <= params_tol


# ---------------------------------------------------------------------------- the kernels' contract


def kernel_problem(dtype=np.float64, m=37, dims=(11, 17, 9, 1), seed=1):
    rng = np.random.default_rng(seed)
    d = np.asarray(dims, np.int64)
    theta = np.concatenate([np.concatenate([rng.standard_normal(d[i + 1] * d[i]) / np.sqrt(d[i]),
                                            0.1 * rng.standard_normal(d[i + 1])]) for i in range(len(d) - 1)])
    X = rng.standard_normal((m, d[0]))
    Y = (rng.random((m, d[-1])) < 0.5).astype(float)
    perms = np.stack([rng.permutation(m) for _ in range(3)])
    return d, theta.astype(dtype), X.astype(dtype), Y.astype(dtype), perms


def kernel_dropout(dtype, keep, batch, rows, seed=11):
    """The kernels' ``network.Dropout`` of ``keep`` (one per hidden layer) for X's rows' data rows ``rows``."""
    return N.Dropout(np.int64(seed), np.array([MK.threshold(p) for p in keep], np.uint64),
                     np.array([1 / p for p in keep], dtype), np.ascontiguousarray(rows, np.int64),
                     np.empty(batch, np.int64))


def kernel_run(d, theta, X, Y, perms, batch, dropout, act=K.ACT_RELU, opt=K.OPT_ADAM, T=None, epochs=3):
    dtype = theta.dtype
    theta, state, costs = theta.copy(), np.zeros(2 * theta.size, dtype), np.zeros(epochs)
    rows = batch if perms is not None else X.shape[0]
    A = np.zeros(rows * int(d[1:].sum()), dtype)
    work = N.Workspace(np.zeros((rows, d[0]), dtype), np.zeros((rows, d[-1]), dtype), A, np.zeros_like(A),
                       np.zeros_like(theta))
    call = (X, Y, theta, d, act, K.OUT_SIGMOID_XENT, 0, opt, N.Hyper(0.01, 0.9, 0.999, 1e-8), None, state, 0,
            None if perms is None else perms[:epochs], batch, epochs, costs, work, None)
    if T is None:
        result = compiled(N.train, (*call, dropout), "network.train")(*call, dropout)
    else:
        from fastdnn.kernels import pool

        result = pool.train_pool(*call, T, dropout=dropout)
    return tuple(result), theta, state, costs


def test_layers_of_keep_prob_1_run_the_code_without_dropout_bit_for_bit():
    d, theta, X, Y, perms = kernel_problem()
    plain = kernel_run(d, theta, X, Y, perms, 8, None)
    ones = kernel_run(d, theta, X, Y, perms, 8, kernel_dropout(np.float64, (1.0, 1.0), 8, np.arange(37)))
    for a, b in zip(plain[1:], ones[1:]):
        assert np.array_equal(a, b)
    dropped = kernel_run(d, theta, X, Y, perms, 8, kernel_dropout(np.float64, (1.0, 0.5), 8, np.arange(37)))
    assert not np.array_equal(dropped[1], plain[1])
    assert fastdnn.model(X.T, Y.T, list(d), num_epochs=3, keep_prob=1.0)[1] == fastdnn.model(X.T, Y.T, list(d),
                                                                                              num_epochs=3)[1]


def test_predictions_never_drop():
    d, theta, X, _, _ = kernel_problem()
    masks = N.masks_for(3, 1, [MK.threshold(0.5)] * 2, np.array([2.0, 2.0]), np.arange(37))
    out = []
    for dropout in (None, masks):
        Z = np.zeros(37 * int(d[1:].sum()))
        args = (X, theta, d, K.ACT_RELU, K.OUT_SIGMOID_XENT, Z, Z, True) + (() if dropout is None else (dropout,))
        compiled(N.forward, args, "forward")(*args)
        out.append(Z)
    assert np.array_equal(out[0], out[1])
    Xr, yr = X, (X[:, 0] > 0).astype(int)
    clf = DNNClassifier(hidden_layer_sizes=(9,), keep_prob=0.5, max_iter=5, random_state=0).fit(Xr, yr)
    expected, _ = ref.L_model_forward(Xr.T, {k: np.asarray(v) for k, v in clf.parameters_.items()})
    npt.assert_allclose(clf.predict_proba(Xr)[:, 1], expected[0], rtol=1e-12)
    assert np.array_equal(clf.predict_proba(Xr), clf.predict_proba(Xr))


@pytest.mark.slow
@pytest.mark.parametrize("act", [K.ACT_RELU, K.ACT_TANH], ids=["relu", "tanh"])
def test_the_pool_drops_what_network_train_drops(act):
    """tests/test_kernels_pool.py's contract with dropout: each worker forms its own rows' masks, which depend
    on the rows only: T = 1 is network.train bit for bit, T = 2, 3 within that file's RUN_RTOL64 (float64 sums
    in another order), shuffled minibatches and the full batch in place."""
    from test_kernels_pool import RUN_ATOL64 as POOL_ATOL64
    from test_kernels_pool import RUN_RTOL64 as POOL_RTOL64

    d, theta, X, Y, perms = kernel_problem()
    rows = 5 * np.arange(37) + 3  # the data's rows of X's rows: not their positions
    for shuffle, batch in ((True, 8), (False, 37)):
        dropout = kernel_dropout(np.float64, (0.7, 0.5), batch, rows)
        expected = kernel_run(d, theta, X, Y, perms if shuffle else None, batch, dropout, act)
        plain = kernel_run(d, theta, X, Y, perms if shuffle else None, batch, None, act)
        assert not np.array_equal(expected[1], plain[1])
        one = kernel_run(d, theta, X, Y, perms if shuffle else None, batch, dropout, act, T=1)
        assert one[0] == expected[0]
        for a, b in zip(one[1:], expected[1:]):
            assert np.array_equal(a, b)
        for T in (2, 3):
            got = kernel_run(d, theta, X, Y, perms if shuffle else None, batch, dropout, act, T=T)
            assert got[0] == expected[0]
            for a, b in zip(got[1:], expected[1:]):
                npt.assert_allclose(a, b, rtol=POOL_RTOL64, atol=POOL_ATOL64 * np.abs(b).max())


@pytest.mark.slow
def test_the_engine_hands_the_pool_its_masks():
    """The direct route on the step's pool (workers=2) trains the run one thread trains, to the pool's RUN_RTOL64,
    and a run of another dropout seed is another run."""
    from test_kernels_pool import RUN_RTOL64 as POOL_RTOL64

    X, y = problem(m=200)
    dims = [X.shape[1], 16, 8, 1]
    runs = []
    for workers, dropout_seed in ((1, None), (2, None), (1, 7)):
        engine = Engine(initialize_parameters(dims, "he", 1, np.float64), optimizer="adam", learning_rate=0.01,
                        mini_batch_size=32, keep_prob=(0.8, 0.6), seed=3, dropout_seed=dropout_seed)
        engine.train(X, class_targets(y, 2), 3, workers=workers)
        runs.append(engine.state.parameters.flat)
    npt.assert_allclose(runs[1], runs[0], rtol=POOL_RTOL64, atol=1e-12 * np.abs(runs[0]).max())
    assert np.abs(runs[2] - runs[0]).max() > 1e-6


# ---------------------------------------------------------------------------- data streamed from disk

M_DISK, N_DISK = 1003, 12


@pytest.fixture
def on_disk(tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((M_DISK, N_DISK))
    y = (X @ rng.standard_normal(N_DISK) > 0).astype(np.int8)
    path = os.path.join(tmp_path, "d.npy")
    np.save(path, X)
    np.save(os.path.join(tmp_path, "d.labels.npy"), y)
    return X, y, path


def streamed_order(seed, m, block_rows, epochs):
    """The row order of ``epochs`` streamed epochs, drawn as the engine draws it (tests/test_stream.py's)."""
    rng = np.random.default_rng(seed)
    orders = []
    for _ in range(epochs):
        orders.append(np.concatenate([first + rng.permutation(stop - first)
                                      for first, stop in epoch_blocks(rng, m, block_rows, shuffle=True)]))
    return np.stack(orders)


@pytest.mark.parametrize("subset", [False, True], ids=["all-rows", "a-training-split"])
def test_a_streamed_run_drops_what_the_run_in_memory_drops_in_the_same_row_order(on_disk, subset):
    """Bit for bit (tests/test_stream.py's claim), with masks keyed by each example's row in the file: a block's
    rows, and a split's rows among held-out ones, are not their places in the buffer."""
    X, y, path = on_disk
    dims, batch, block, epochs, seed = [N_DISK, 16, 8, 1], 32, 96, 3, 11
    rows = np.sort(np.random.default_rng(2).choice(M_DISK, 700, replace=False)) if subset else None
    block = 60 if subset else block
    options = dict(optimizer="adam", learning_rate=0.01, mini_batch_size=batch, keep_prob=(0.8, 0.6), seed=seed,
                   dropout_seed=4)
    engine = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, block, rows=rows, batch=batch)
        costs = engine.train(feed, None, epochs)
        block_rows = feed.block_rows
        feed.close()
    m = M_DISK if rows is None else rows.size
    order = streamed_order(seed, m, block_rows, epochs)
    perms = order if rows is None else rows[order]
    theta = initialize_parameters(dims, "he", 1, np.float64).flat
    A = np.empty(batch * sum(dims[1:]))
    work = N.Workspace(np.empty((batch, N_DISK)), np.empty((batch, 1)), A, np.empty_like(A), np.empty_like(theta))
    state, expected = np.zeros(2 * theta.size), np.zeros(epochs)
    dropout = N.Dropout(np.int64(4), np.array([MK.threshold(0.8), MK.threshold(0.6)], np.uint64),
                        np.array([1 / 0.8, 1 / 0.6]), np.arange(M_DISK, dtype=np.int64), np.empty(batch, np.int64))
    args = (X, class_targets(y.astype(np.int64), 2), theta, np.array(dims, np.int64), *activation_codes("relu"), 0,
            engine.opt, engine.hyper, None, state, 0, perms, batch, epochs, expected, work, None, dropout)
    assert compiled(N.train, args, "train")(*args)[2] == N.STOP_NONE
    assert np.array_equal(engine.state.parameters.flat, theta)
    assert np.array_equal(costs, expected / m)


def test_a_full_batch_over_blocks_drops_what_the_full_batch_in_memory_drops(on_disk):
    """The gradient summed over blocks is the whole batch's up to summation order (float64 sums of ~1000 terms
    in another order: ~1e-13 after a few steps, tests/test_stream.py), so masks keyed alike give runs within
    1e-10; masks of another seed give another run."""
    X, y, path = on_disk
    dims = [N_DISK, 8, 1]
    options = dict(optimizer="gd", learning_rate=0.5, keep_prob=0.7, seed=3)
    streamed = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    with open_disk_dataset(path) as disk:
        feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, 200)
        costs = streamed.train(feed, None, 4)
        feed.close()
    Y = class_targets(y.astype(np.int64), 2)
    alone = Engine(initialize_parameters(dims, "he", 1, np.float64), **options)
    expected = alone.train(X, Y, 4, gram=False)
    npt.assert_allclose(costs, expected, rtol=1e-10)
    assert_close(streamed.state.parameters.flat, alone.state.parameters.flat, rtol=1e-10, scale_rtol=1e-12)
    other = Engine(initialize_parameters(dims, "he", 1, np.float64), **options, dropout_seed=4)
    other.train(X, Y, 4, gram=False)
    assert np.abs(other.state.parameters.flat - alone.state.parameters.flat).max() > 1e-6


def test_a_full_batch_on_a_split_keys_the_masks_by_the_datas_rows():
    """A full batch on rows= is gathered into one batch: its masks stay those of the rows in X, so the run is
    the one over X[rows] with dropout_seed and each example's own row."""
    X, y = np.random.default_rng(1).standard_normal((60, 5)), np.arange(60) % 2
    rows = np.arange(1, 60, 2)
    dims = [5, 6, 1]
    a = Engine(initialize_parameters(dims, "he", 1, np.float64), learning_rate=0.5, keep_prob=0.5, seed=2)
    a.train(X, class_targets(y, 2), 3, rows=rows, gram=False)
    Xs, Ys = X[rows].T, class_targets(y[rows], 2).T
    params = ref.initialize_parameters(dims, "he", 1)
    for step in range(1, 4):
        masks = ref.dropout_masks(2, step, rows, dims, 0.5)
        AL, caches = ref.L_model_forward(Xs, params, keep_prob=0.5, masks=masks)
        params = ref.update_parameters(params, ref.L_model_backward(AL, Ys, caches), 0.5)
    assert_close(a.state.parameters.flat, pack_parameters(params, np.float64).flat, rtol=1e-12, scale_rtol=1e-14)


# ---------------------------------------------------------------------------- resuming


def problem(m=300, n=10, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    return X, (X @ rng.standard_normal(n) + 0.5 * rng.standard_normal(m) > 0).astype(np.int64)


def test_a_run_checkpointed_mid_way_resumes_with_the_same_masks_bit_for_bit(tmp_path):
    X, y = problem()
    kw = dict(hidden_layer_sizes=(8, 6), keep_prob=(0.8, 0.6), batch_size=32, max_iter=8, random_state=0,
              learning_rate=0.01)
    whole = DNNClassifier(**kw).fit(X, y)
    path = tmp_path / "at-3.ckpt.npz"

    def save(info):
        if info.epoch == 3:
            fio.save_checkpoint(info.estimator, path)

    DNNClassifier(**kw).fit(X, y, callbacks=[save])
    saved = json.loads(str(np.load(path)["state"]))
    assert saved["dropout_seed"] == whole.training_state_.dropout_seed == 0  # the run's seed, as the reference's
    resumed = load_checkpoint(path).estimator
    assert resumed.keep_prob == (0.8, 0.6) and resumed.n_iter_ == 3
    resumed.set_params(warm_start=True, max_iter=5).fit(X, y)
    assert np.array_equal(resumed.parameters_.flat, whole.parameters_.flat)
    assert resumed.loss_curve_ == whole.loss_curve_
    # Another dropout seed is another run: the masks are the seed's.
    other = DNNClassifier(**{**kw, "random_state": 1}).fit(X, y)
    assert other.training_state_.dropout_seed == 1


def rewrite(path, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    os.remove(path)
    np.savez(path, **arrays)


def test_a_file_written_before_dropout_loads_without_a_seed_and_draws_one_when_dropout_starts(tmp_path):
    X, y = problem(m=100)
    clf = DNNClassifier(hidden_layer_sizes=(5,), max_iter=3, batch_size=20, random_state=0).fit(X, y)
    fio.save_checkpoint(clf, tmp_path / "old.ckpt.npz")

    def older(arrays):
        options = json.loads(str(arrays["options"]))
        del options["keep_prob"]
        arrays["options"] = np.array(json.dumps(options), np.str_)
        state = json.loads(str(arrays["state"]))
        del state["dropout_seed"]
        arrays["state"] = np.array(json.dumps(state), np.str_)

    rewrite(tmp_path / "old.ckpt.npz", older)
    runs = []
    for _ in range(2):
        old = load_checkpoint(tmp_path / "old.ckpt.npz").estimator
        assert old.keep_prob == 1.0 and old.training_state_.dropout_seed is None
        rng = old.training_state_.rng.bit_generator.state
        old.set_params(warm_start=True, max_iter=2, keep_prob=0.5).fit(X, y)
        assert isinstance(old.training_state_.dropout_seed, int)
        runs.append(old)
    assert np.array_equal(runs[0].parameters_.flat, runs[1].parameters_.flat)  # drawn alike from the saved state
    # Drawn from a copy of the generator: the shuffling goes on as a run without dropout's would.
    again = load_checkpoint(tmp_path / "old.ckpt.npz").estimator
    again.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert runs[0].training_state_.rng.bit_generator.state == again.training_state_.rng.bit_generator.state
    assert rng != again.training_state_.rng.bit_generator.state


@pytest.mark.parametrize("value, message", [
    (-1, "dropout_seed must be null or an integer in \\[0, 2\\*\\*32 - 1\\], got -1"),
    (2**32, "dropout_seed must be null or an integer"),
    ("x", "dropout_seed must be null or an integer"),
])
def test_a_checkpoint_with_a_bad_dropout_seed_is_refused_naming_it(tmp_path, value, message):
    X, y = problem(m=60)
    clf = DNNClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, y)
    fio.save_checkpoint(clf, tmp_path / "c.ckpt.npz")

    def bad(arrays):
        state = json.loads(str(arrays["state"]))
        state["dropout_seed"] = value
        arrays["state"] = np.array(json.dumps(state), np.str_)

    rewrite(tmp_path / "c.ckpt.npz", bad)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path / "c.ckpt.npz")


# ---------------------------------------------------------------------------- gradient checking


def gradcheck_case(hidden, dims, m, seed):
    """(X, Y, parameters) of a small net whose hidden pre-activations avoid 0 by KINK_MARGIN (redrawn until they
    do), and a step's masks for its examples."""
    rng = np.random.default_rng(seed)
    for _ in range(100):
        params = {}
        for l in range(1, len(dims)):
            params[f"W{l}"] = rng.standard_normal((dims[l], dims[l - 1])) / np.sqrt(dims[l - 1])
            params[f"b{l}"] = 0.1 * rng.standard_normal((dims[l], 1))
        X = rng.standard_normal((dims[0], m))
        _, caches = ref.L_model_forward(X, params, hidden)
        if min(np.min(np.abs(Z)) for _, Z in caches[:-1]) > KINK_MARGIN:
            return X, (rng.random((1, m)) < 0.5).astype(float), params
    raise AssertionError("no draw kept the pre-activations away from 0")


@pytest.mark.parametrize("hidden", HIDDEN)
def test_gradient_checking_through_fixed_masks(hidden):
    dims, m, keep = [5, 7, 3, 1], 13, (0.7, 0.5)
    X, Y, params = gradcheck_case(hidden, dims, m, len(hidden))
    masks = ref.dropout_masks(9, 4, np.arange(m), dims, keep)
    assert gradient_check(X, Y, params, hidden, keep_prob=keep, masks=masks, epsilon=GRADCHECK_EPSILON) \
        < GRADCHECK_TOLERANCE
    # The kernels' gradient, through the same masks (the examples' rows 0..m-1), against the same differences.
    numeric = numerical_gradients(X, Y, params, hidden, keep_prob=keep, masks=masks, epsilon=GRADCHECK_EPSILON)
    fast = fast_stages(X, Y, params, dims, hidden, keep, 9, 4, np.arange(m), np.float64)
    g = np.concatenate([fast[k].ravel() for k in sorted(numeric)])
    g_num = np.concatenate([numeric[k].ravel() for k in sorted(numeric)])
    assert np.linalg.norm(g - g_num) / (np.linalg.norm(g) + np.linalg.norm(g_num)) < GRADCHECK_TOLERANCE


def test_gradient_checking_catches_a_backward_pass_that_forgets_the_mask(monkeypatch):
    dims, m, keep = [5, 7, 3, 1], 13, 0.5
    X, Y, params = gradcheck_case("tanh", dims, m, 1)
    masks = ref.dropout_masks(9, 4, np.arange(m), dims, keep)
    monkeypatch.setattr(ref, "dropout_backward", lambda dA, D, keep_prob: dA)
    assert gradient_check(X, Y, params, "tanh", keep_prob=keep, masks=masks, epsilon=GRADCHECK_EPSILON) > 1e-2


# ---------------------------------------------------------------------------- the option


@pytest.mark.parametrize("value, message", [
    (0, r"keep_prob must be a number in \(0, 1\] \(the probability of keeping a hidden unit; 1: no dropout\)"),
    (1.5, r"keep_prob must be a number in \(0, 1\]"),
    (float("nan"), r"keep_prob must be a number in \(0, 1\]"),
    (True, r"keep_prob must be a number in \(0, 1\]"),
    ("0.8", r"keep_prob must be a number in \(0, 1\]"),
    ((), r"keep_prob must be a number in \(0, 1\] or a non-empty sequence of them"),
    ((0.5, 2), r"keep_prob\[1\] must be a number in \(0, 1\]"),
    ((0.5, 0.5, 0.5), r"keep_prob gives 3 keep probabilities for 2 hidden layer\(s\)"),
])
def test_a_bad_keep_prob_is_one_line_naming_it_everywhere(value, message):
    X, y = problem(m=40, n=4)
    with pytest.raises(ValueError, match=message):
        DNNClassifier(hidden_layer_sizes=(4, 3), keep_prob=value, max_iter=1).fit(X, y)
    for model in (fastdnn.model, ref.model):
        with pytest.raises(ValueError, match=message):
            model(X.T, y.reshape(1, -1), [4, 4, 3, 1], num_epochs=1, keep_prob=value)


def test_the_option_is_one_value_for_scikit_learns_tools_and_model_files(tmp_path):
    clf = DNNClassifier(hidden_layer_sizes=(6, 4), keep_prob=[0.9, 0.8], max_iter=2, random_state=0)
    assert clf.get_params()["keep_prob"] == [0.9, 0.8]
    sklearn = pytest.importorskip("sklearn.base")
    assert sklearn.clone(clf).get_params()["keep_prob"] == [0.9, 0.8]
    X, y = problem(m=80, n=5)
    clf.fit(X, y).save(tmp_path / "m.npz")
    loaded = fastdnn.load_model(tmp_path / "m.npz")
    assert loaded.keep_prob == (0.9, 0.8)
    assert np.array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_the_gram_route_is_refused_with_dropout():
    X, Y = teacher_problem(60, 20, seed=1)  # wide data: gram="auto" would take the Gram route
    dims = [60, 5, 1]
    with pytest.raises(ValueError, match=r"gram=True needs .* and no dropout \(keep_prob 1\)"):
        fastdnn.model(X, Y, dims, num_epochs=12, keep_prob=0.8, gram=True)
    engine = Engine(initialize_parameters(dims, "deep", 1, np.float64), keep_prob=0.8)
    assert engine.route_for("auto", (20, 60), 100) == "direct"
    assert Engine(initialize_parameters(dims, "deep", 1, np.float64)).route_for("auto", (20, 60), 100) == "gram"
    # "auto" trains it, on the direct route, as the reference does.
    ref_params, ref_costs = ref.model(X, Y, dims, num_epochs=12, keep_prob=0.8)
    _, costs = fastdnn.model(X, Y, dims, num_epochs=12, keep_prob=0.8)
    npt.assert_allclose(costs, ref_costs, rtol=RUN_RTOL64)


def test_the_command_trains_with_dropout_and_resumes_it_exactly(tmp_path, capsys, monkeypatch):
    options = ["--samples", "600", "--features", "8", "--layers", "16,8", "--batch-size", "50", "--epochs", "4",
               "--keep-prob", "0.9,0.7"]
    whole = tmp_path / "whole.npz"
    assert cli.main(["train", *options, "--out", str(whole)]) == 0
    assert "dropout keep_prob 0.9,0.7" in capsys.readouterr().out
    assert fastdnn.load_model(whole).keep_prob == (0.9, 0.7)
    parted, ckpt = tmp_path / "parted.npz", tmp_path / "parted.ckpt.npz"
    real_save = cli.train.Checkpointer.__call__

    def interrupt_after_epoch_two(self, info):
        real_save(self, info)
        if info.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.train.Checkpointer, "__call__", interrupt_after_epoch_two)
    assert cli.main(["train", *options, "--quiet", "--out", str(parted), "--checkpoint-every", "1"]) == 130
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(ckpt), "--quiet"]) == 0
    a, b = fastdnn.load_model(whole), fastdnn.load_model(parted)
    assert np.array_equal(a.parameters_.flat, b.parameters_.flat) and a.loss_curve_ == b.loss_curve_
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["train", "--samples", "100", "--keep-prob", "x", "--quiet"])
    assert "--keep-prob: expected a keep probability like 0.8" in capsys.readouterr().err.replace("argument ", "")


def test_a_sweep_takes_keep_prob_as_the_courses_regularisation_study(tmp_path, capsys):
    from fastdnn.sweeps import sweep

    X, y = problem(m=150, n=6)
    results = sweep(X, y, {"keep_prob": [1.0, 0.8, (0.9, 0.5)]}, fixed=dict(hidden_layer_sizes=(4, 3), max_iter=2),
                    workers=1)
    assert [r["keep_prob"] for r in results.rows] == [1.0, 0.8, (0.9, 0.5)] and not results.failed
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.csv"
    status = cli.main(["sweep", "--data", str(tmp_path / "d.npz"), "--keep-prob", "1,0.8,0.5", "--l2", "0,0.7",
                       "--layers", "4", "--epochs", "2", "--workers", "1", "--quiet", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    lines = out.read_text().splitlines()
    assert "keep_prob" in lines[0] and len(lines) == 1 + 6
    status = cli.main(["sweep", "--data", str(tmp_path / "d.npz"), "--keep-prob", "0.9:0.8", "1", "--layers", "4,3",
                       "--epochs", "1", "--workers", "1", "--quiet"])
    assert status == 0, capsys.readouterr().err
    status = cli.main(["sweep", "--data", str(tmp_path / "d.npz"), "--keep-prob", "1,0", "--quiet"])
    assert status != 0 and "--keep-prob: keep_prob must be a number in (0, 1]" in capsys.readouterr().err


def test_the_regressor_drops_as_fastdnn_model_and_predicts_without_dropping():
    X, Y = course_problem([12, 16, 8, 1], 150, 3, False)
    y = X[0] - 0.5 * X[1]
    options = dict(hidden_layer_sizes=(16, 8), batch_size=32, max_iter=5, random_state=2, learning_rate=0.005)
    dropped = fastdnn.DNNRegressor(keep_prob=0.8, **options).fit(X.T, y)
    plain = fastdnn.DNNRegressor(**options).fit(X.T, y)
    assert not np.allclose(dropped.parameters_.flat, plain.parameters_.flat)
    assert np.array_equal(dropped.predict(X.T), dropped.predict(X.T))  # predictions never drop
    assert fastdnn.DNNRegressor(keep_prob=(0.9, 0.7)).get_params()["keep_prob"] == (0.9, 0.7)
