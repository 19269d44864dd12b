"""Every training option, fast path against the reference, element by element.

One shape of test repeated over a table of cases (stumpy's pattern): a new
option gets its test by adding a row. Both paths draw the same initial weights
and the same minibatch permutations (numpy, seeded), so in float64 they differ
only by summation order (BLAS vs numpy), and the comparisons are tight.
"""

import numpy as np
import pytest

import fastdnn
from fastdnn import validation as V
from fastdnn import reference
from fastdnn.checking import assert_close

# float64 per stage: each value is a short sum of products, so the two
# implementations differ by a few ulps of the largest term; 1e-10 relative to
# each array's scale leaves ample room and still catches any wrong formula.
RTOL_STAGE = 1e-10
# float64 whole runs: rounding differences feed back through tens of updates
# and grow slowly (measured ~1e-14 over 30 epochs here); 1e-8 is the contract.
RTOL_RUN = 1e-8


def problem(n0, K, m, seed):
    """Inputs (n0, m) and targets: (1, m) 0/1 for K == 1, one-hot (K, m) otherwise."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n0, m))
    if K == 1:
        Y = (X[0:1] + 0.5 * X[1:2] ** 2 > 0.3).astype(np.float64)
    else:
        labels = np.argmax(X[:K] + 0.3 * rng.standard_normal((K, m)), axis=0)
        Y = np.eye(K)[:, labels]
    return X, Y


STAGE_CASES = [
    # hidden_activation, output, loss, lambd, dims
    ("relu", "sigmoid", "cross_entropy", 0.0, [5, 4, 3, 1]),
    ("leaky_relu", "sigmoid", "cross_entropy", 0.0, [5, 4, 3, 1]),
    ("tanh", "sigmoid", "cross_entropy", 0.3, [5, 7, 1]),
    ("sigmoid", "sigmoid", "mse", 0.0, [5, 3, 3, 1]),
    ("relu", "softmax", "cross_entropy", 0.0, [5, 6, 3]),
    ("tanh", "softmax", "mse", 0.2, [5, 4, 4, 3]),
    ("leaky_relu", "softmax", "cross_entropy", 0.5, [5, 3]),
]


@pytest.mark.parametrize("hidden, output, loss, lambd, dims", STAGE_CASES)
@pytest.mark.parametrize("m", [1, 13])
def test_fast_matches_reference_every_stage_for_each_option_float64(single_blas_thread, hidden, output, loss, lambd, dims, m):
    X, Y = problem(dims[0], dims[-1], m, seed=len(dims) + m)
    params = reference.initialize_parameters(dims, "he", seed=3)
    AL, caches = reference.L_model_forward(X, params, hidden, output)
    ALf, cachesf = fastdnn.L_model_forward(X, params, hidden, output)
    assert_close(ALf, AL, scale_rtol=RTOL_STAGE, name="AL")
    for l, ((A, _, _), Z) in enumerate(caches):
        assert_close(cachesf[l][1], Z, scale_rtol=RTOL_STAGE, name=f"Z{l + 1}")
        assert_close(cachesf[l][0][0], A, scale_rtol=RTOL_STAGE, name=f"A{l}")
    cost = reference.compute_cost(AL, Y, params, lambd, loss)
    assert fastdnn.compute_cost(ALf, Y, params, lambd, loss) == pytest.approx(cost, rel=RTOL_STAGE)
    grads = reference.L_model_backward(AL, Y, caches, hidden, output, loss, lambd)
    gradsf = fastdnn.L_model_backward(ALf, Y, cachesf, hidden, output, loss, lambd)
    for key in gradsf:
        assert_close(gradsf[key], grads[key], scale_rtol=RTOL_STAGE, name=key)
    assert "dA0" not in gradsf  # the fast path never computes the input's gradient


def test_momentum_and_adam_updates_match_reference_over_steps():
    dims = [4, 3, 1]
    params = reference.initialize_parameters(dims, "xavier", seed=5)
    rng = np.random.default_rng(0)
    grads_seq = [
        {f"d{k}": rng.standard_normal(v.shape) for k, v in params.items()} for _ in range(3)
    ]
    p_ref, v_ref = params, reference.initialize_velocity(params)
    p_fast, v_fast = params, fastdnn.initialize_velocity(params)
    for g in grads_seq:
        p_ref, v_ref = reference.update_parameters_with_momentum(p_ref, g, v_ref, 0.9, 0.1)
        p_fast, v_fast = fastdnn.update_parameters_with_momentum(p_fast, g, v_fast, 0.9, 0.1)
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_STAGE, name=f"momentum {key}")
    p_ref, (v_ref, s_ref) = params, reference.initialize_adam(params)
    p_fast, (v_fast, s_fast) = params, fastdnn.initialize_adam(params)
    for t, g in enumerate(grads_seq, start=1):
        p_ref, v_ref, s_ref = reference.update_parameters_with_adam(p_ref, g, v_ref, s_ref, t, 0.01)
        p_fast, v_fast, s_fast = fastdnn.update_parameters_with_adam(p_fast, g, v_fast, s_fast, t, 0.01)
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_STAGE, name=f"adam {key}")
        assert_close(s_fast["d" + key], s_ref["d" + key], scale_rtol=RTOL_STAGE, name=f"adam s {key}")


RUN_CASES = [
    # each row: options for model(); every option appears at least once, and in combinations
    dict(),
    dict(mini_batch_size=16),
    dict(mini_batch_size=7),  # last batch partial: 50 = 7 * 7 + 1
    dict(mini_batch_size=50),
    dict(optimizer="momentum", beta=0.8, mini_batch_size=16),
    dict(optimizer="adam", learning_rate=0.01, mini_batch_size=16),
    dict(optimizer="adam", learning_rate=0.01),
    dict(lambd=0.7),
    dict(lambd=0.7, optimizer="momentum"),
    dict(lambd=0.3, optimizer="adam", learning_rate=0.005, mini_batch_size=9),
    dict(hidden_activation="leaky_relu", init="he"),
    dict(hidden_activation="tanh", init="xavier", mini_batch_size=10),
    dict(hidden_activation="sigmoid", loss="mse", learning_rate=0.5),
    dict(output="softmax", K=3),
    dict(output="softmax", K=4, optimizer="adam", learning_rate=0.01, mini_batch_size=8, lambd=0.1),
    dict(output="softmax", K=3, loss="mse", hidden_activation="tanh", learning_rate=0.5),
    dict(frozen_layers=1),
    dict(frozen_layers=2, optimizer="adam", learning_rate=0.01, mini_batch_size=12),
]


@pytest.mark.parametrize("options", RUN_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_fast_model_matches_reference_whole_run_float64(single_blas_thread, options):
    options = dict(options)
    K = options.pop("K", 1)
    X, Y = problem(6, K, 50, seed=11)
    dims = [6, 5, 4, K]
    kwargs = dict(learning_rate=0.05, num_epochs=30, seed=7)
    kwargs.update(options)
    p_ref, c_ref = reference.model(X, Y, dims, **kwargs)
    p_fast, c_fast = fastdnn.model(X, Y, dims, **kwargs)
    assert len(c_fast) == len(c_ref) == kwargs["num_epochs"]
    assert_close(c_fast, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)
    assert np.isfinite(c_fast).all()


def test_frozen_layers_stay_bit_identical_in_fast_path(single_blas_thread):
    X, Y = problem(6, 1, 40, seed=2)
    start = reference.initialize_parameters([6, 5, 4, 1], "he", seed=9)
    params, _ = fastdnn.model(X, Y, [6, 5, 4, 1], parameters=start, frozen_layers=2, num_epochs=20, learning_rate=0.1)
    for key in ("W1", "b1", "W2", "b2"):
        assert np.array_equal(params[key], start[key]), key
    assert not np.array_equal(params["W3"], start["W3"])


@pytest.mark.parametrize(
    "options",
    [dict(), dict(optimizer="momentum"), dict(lambd=0.5), dict(optimizer="momentum", lambd=0.5, beta=0.7)],
    ids=["gd", "momentum", "gd-l2", "momentum-l2"],
)
@pytest.mark.parametrize("hidden", [[7, 3], []], ids=["hidden", "no-hidden"])
def test_gram_route_matches_reference_on_wide_data(single_blas_thread, options, hidden):
    # Wide data (n0 = 300 >> m = 20) is what the Gram route is for; it must
    # give the reference's numbers, not just similar ones.
    X, Y = problem(300, 1, 20, seed=4)
    dims = [300] + hidden + [1]
    p_ref, c_ref = reference.model(X, Y, dims, learning_rate=0.05, num_epochs=60, **options)
    p_fast, c_fast = fastdnn.model(X, Y, dims, learning_rate=0.05, num_epochs=60, gram=True, **options)
    assert_close(c_fast, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)


def test_gram_true_refuses_where_it_cannot_apply():
    X, Y = problem(300, 1, 20, seed=4)
    with pytest.raises(ValueError, match="gram=True needs full-batch"):
        fastdnn.model(X, Y, [300, 1], num_epochs=2, mini_batch_size=5, gram=True)
    with pytest.raises(ValueError, match="gram=True needs full-batch"):
        fastdnn.model(X, Y, [300, 1], num_epochs=2, optimizer="adam", gram=True)


def test_minibatch_runs_are_bit_identical_run_to_run():
    X, Y = problem(6, 1, 50, seed=1)
    runs = [
        fastdnn.model(X, Y, [6, 5, 1], num_epochs=10, mini_batch_size=8, optimizer="adam", learning_rate=0.01, seed=3)
        for _ in range(2)
    ]
    assert runs[0][1] == runs[1][1]
    assert np.array_equal(runs[0][0].flat, runs[1][0].flat)


OPTION_TABLES = {
    "hidden_activation": V.HIDDEN_ACTIVATIONS,
    "output": V.OUTPUTS,
    "loss": V.LOSSES,
    "optimizer": V.OPTIMIZERS,
    "init": V.INITIALIZATIONS,
}


def one_epoch(impl, option, value):
    """One epoch of ``impl.model`` with option=value (a softmax output gets 3 units and one-hot Y; an identity
    output, regression's, real targets and the squared error, its one loss)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 12))
    K = 3 if (option, value) == ("output", "softmax") else 1
    Y = np.eye(3)[:, rng.integers(3, size=12)] if K == 3 else (X[:1] > 0).astype(float)
    extra = {"loss": "mse"} if (option, value) == ("output", "identity") else {}
    if extra:
        Y = X[:1] - 0.5 * X[1:2]
    return impl.model(X, Y, [4, 5, K], num_epochs=1, **{option: value}, **extra)


@pytest.mark.parametrize("option", OPTION_TABLES)
def test_both_paths_accept_every_name_of_the_option_table_and_refuse_others_alike(option):
    """One table per option: what it lists works in both implementations, anything else is refused
    by both with the same message listing the table (so a name added to a kernel's code table, the
    reference's function table or the validation table alone shows here)."""
    for value in OPTION_TABLES[option]:
        ref_params, ref_costs = one_epoch(reference, option, value)
        fast_params, fast_costs = one_epoch(fastdnn, option, value)
        np.testing.assert_allclose(fast_costs, ref_costs, rtol=1e-10)
    messages = []
    for impl in (reference, fastdnn):
        with pytest.raises(ValueError, match=f"unknown {option} 'nope'; choose one of") as info:
            one_epoch(impl, option, "nope")
        messages.append(str(info.value))
    assert messages[0] == messages[1] and str(sorted(OPTION_TABLES[option])) in messages[0]


def test_kernel_code_tables_cover_exactly_the_option_tables():
    from fastdnn.kernels import layers as K

    assert set(K.ACTIVATION_CODES) == set(V.HIDDEN_ACTIVATIONS)
    assert set(K.OUTPUT_CODES) == {(o, l) for o in V.OUTPUTS for l in V.OUTPUT_LOSSES[o]}
    assert set(K.OPTIMIZER_CODES) == set(V.OPTIMIZERS)


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(optimizer="sgdd"), r"unknown optimizer 'sgdd'; choose one of \['adam', 'gd', 'momentum'\]"),
        (dict(hidden_activation="swish"), r"unknown hidden_activation 'swish'"),
        (dict(loss="hinge"), r"unknown loss 'hinge'"),
        (dict(init="orthogonal"), r"unknown init 'orthogonal'"),
        (dict(mini_batch_size=0), r"mini_batch_size must be a positive integer"),
        (dict(mini_batch_size=51), r"mini_batch_size must be between 1 and m = 50"),
        (dict(lambd=-0.1), r"lambd \(L2 strength\) must be a finite number >= 0"),
        (dict(beta1=1.0), r"beta1 must be in \[0, 1\)"),
        (dict(frozen_layers=2), r"frozen_layers must be an integer in \[0, 1\]"),
    ],
)
def test_fast_model_rejects_bad_options_by_name(bad, message):
    X, Y = problem(6, 1, 50, seed=1)
    with pytest.raises(ValueError, match=message):
        fastdnn.model(X, Y, [6, 5, 1], num_epochs=2, **bad)
