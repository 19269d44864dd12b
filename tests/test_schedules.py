"""Learning-rate schedules: the option ``lr_schedule`` (``fastdnn.options.LR_SCHEDULES``) and the course's
``decay_rate``/``time_interval`` of ``model``, the fast path against the reference, route by route, and across
a checkpoint.

What is held here:
- the option: each schedule's text parses to its parameters, canonically; a bad value is one ValueError naming
  the option and the parameter.
- the course's convention, in the reference itself: its model() updates the rate after each epoch's
  minibatches, so epoch 0 and epoch 1 both train at learning_rate0, epoch e >= 2 at update_lr(lr0, e - 1).
- reference vs fast, whole runs, element-wise: ``fastdnn.model`` with the decay against ``reference.model``
  (float64, tests/test_options_equivalence.py's whole-run contract RTOL_RUN, on the direct route, the Gram
  route and data streamed from disk); each estimator schedule against the reference's own functions driven at
  this file's rates (the formulas written out below, never the code under test's), float64 within the same
  contract and float32 within FLOAT32_RUN_SAFETY times the reference's own float32 spread
  (tests/test_equivalence.py's derivation); plateau against the reference's functions deciding the drops
  from their own validation scores.
- every route follows the schedule inside its compiled calls: a scheduled run equals, bit for bit, the run
  that trains one epoch a call with each epoch's rate as a constant rate (in memory on one thread and on the
  step's thread pool, streamed minibatches and full batch).
- a run checkpointed mid-schedule resumes bit for bit (plateau mid-stall, a cosine's period fixed by its first
  fit); files written before schedules load as constant.
- the rate reaches callbacks and the command's progress bar; the command and sweeps take the option.
MPI: tests/test_schedules_mpi.py (under mpiexec).
"""

import json
import math
import os
import zipfile

import numpy as np
import pytest

import fastdnn
from fastdnn import cli
from fastdnn import io as fio
from fastdnn import options as O
from fastdnn import reference as ref
from fastdnn.checking import assert_close
from fastdnn.engine import Engine, Schedule
from fastdnn.estimator import DNNClassifier, load_checkpoint
from fastdnn.labels import class_targets
from fastdnn.pipeline import initialize_parameters
from fastdnn.stream import Feed, open_disk_dataset
from fastdnn.threads import training_threads

from test_equivalence import FLOAT32_REALIZATIONS, FLOAT32_RUN_SAFETY, curve_deviation, parameter_deviation

# float64 whole runs: the contract of tests/test_options_equivalence.py (rounding differences of summation order,
# ~1e-14 measured over tens of epochs, fed back through the updates; 1e-8 relative to each array's scale).
RTOL_RUN = 1e-8
# Plateau's least improvement (the estimator's tol, its default).
TOL = 1e-4


def problem(m=203, n=20, seed=3):
    """X (m, n) rows, labels y (m,) 0/1 from a noisy linear teacher: a problem a few epochs can learn."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    y = (X @ rng.standard_normal(n) + 0.5 * rng.standard_normal(m) > 0).astype(np.int64)
    return X, y


# ---------------------------------------------------------------------------- the rates, written out


def course_rates(lr0, decay_rate, time_interval=None):
    """The course's model(): epoch 0 at lr0, then after epoch i's minibatches decay(lr0, i), which epoch i + 1
    trains at."""
    def rate(e, scores=()):
        if e == 0:
            return lr0
        if time_interval is None:
            return ref.update_lr(lr0, e - 1, decay_rate)
        return ref.schedule_lr_decay(lr0, e - 1, decay_rate, time_interval)
    return rate


def formula(text, lr0, epochs):
    """Epoch e's rate for the schedule ``text``, from its formula (a function of e and the scores before it)."""
    kind, *p = text.split(":")
    if kind == "constant":
        return lambda e, scores=(): lr0
    if kind == "inverse":
        return course_rates(lr0, float(p[0]), int(p[1]) if len(p) > 1 else None)
    if kind == "step":
        return lambda e, scores=(): lr0 * float(p[1]) ** (e // int(p[0]))
    if kind == "exponential":
        return lambda e, scores=(): lr0 * float(p[0]) ** e
    if kind == "cosine":
        floor = float(p[0]) if p else 0.0
        period = int(p[1]) if len(p) > 1 else epochs
        return lambda e, scores=(): lr0 * (floor + (1 - floor) * (1 + math.cos(math.pi * min(e, period) / period)) / 2)
    factor, patience = float(p[0]), int(p[1])

    def plateau(e, scores):
        drops, best, stall = 0, None, 0
        for score in scores[:e]:
            if best is None or score > best + TOL:
                best, stall = score, 0
            else:
                stall += 1
                if stall >= patience:
                    drops, stall = drops + 1, 0
        return lr0 * factor ** drops
    return plateau


def reference_run(X, Y, dims, rate, epochs, *, batch=None, optimizer="gd", seed=1, init="deep", dtype=np.float64,
                  relabel=None, validation=None):
    """reference.model's loop (its own functions) with epoch e at ``rate(e, scores so far)``; returns
    (parameters, costs, validation scores).

    X (n_0, m), Y (1, m). ``relabel`` (a seed): input features and hidden units permuted with their weights, in
    ``dtype``, cost and output gradient from the logits (tests/test_equivalence.py's float32 realisations: the
    same trajectory in another summation order); the parameters come back in the original labelling.
    ``validation`` (X_val (n_0, k), y_val): each epoch's accuracy, ``reference.predict``'s."""
    params = ref.initialize_parameters(dims, init, seed)
    perms = None
    if relabel is not None:
        rng = np.random.default_rng(relabel)
        perms = [rng.permutation(n) for n in dims[:-1]] + [np.arange(dims[-1])]
        params = {k: (v[perms[int(k[1:])]][:, perms[int(k[1:]) - 1]] if k[0] == "W" else v[perms[int(k[1:])]])
                  for k, v in params.items()}
        X = X[perms[0]]
    params = {k: v.astype(dtype) for k, v in params.items()}
    X, Y = X.astype(dtype), Y.astype(dtype)
    m = X.shape[1]
    rng = np.random.default_rng(seed)
    if optimizer == "momentum":
        v = ref.initialize_velocity(params)
    elif optimizer == "adam":
        v, s = ref.initialize_adam(params)
        t = 0
    costs, scores = [], []
    for e in range(epochs):
        lr = rate(e, scores)
        batches = [(X, Y)] if batch is None else ref.random_mini_batches(X, Y, batch, rng)
        total = 0.0
        for Xb, Yb in batches:
            AL, caches = ref.L_model_forward(Xb, params)
            if relabel is None:
                cost = ref.compute_cost(AL, Yb)
                assert np.isfinite(cost), f"the reference's cost saturated at epoch {e}: not a problem for this test"
                grads = ref.L_model_backward(AL, Yb, caches)
            else:
                ZL = caches[-1][1].astype(np.float64)
                cost = np.mean(np.logaddexp(0, ZL) - ZL * Yb)
                grads = backward_from_logits(AL, Yb, caches)
            if optimizer == "gd":
                params = ref.update_parameters(params, grads, lr)
            elif optimizer == "momentum":
                params, v = ref.update_parameters_with_momentum(params, grads, v, 0.9, lr)
            else:
                t += 1
                params, v, s = ref.update_parameters_with_adam(params, grads, v, s, t, lr, 0.9, 0.999, 1e-8)
            total += cost * (Xb.shape[1] / m)
        costs.append(total)
        if validation is not None:
            scores.append(float(np.mean(ref.predict(validation[0], params) == validation[1])))
    if perms is not None:
        inverse = [np.argsort(p) for p in perms]
        params = {k: (v[inverse[int(k[1:])]][:, inverse[int(k[1:]) - 1]] if k[0] == "W" else v[inverse[int(k[1:])]])
                  for k, v in params.items()}
    return params, np.array(costs), scores


def backward_from_logits(AL, Y, caches):
    """The reference's backward pass from dZ_L = A_L - Y (the course's dA_L divides by 1 - A_L, which rounds to 0
    in float32 once A_L does to 1); the rest is the reference's own functions."""
    L = len(caches)
    grads = {}
    dA, grads[f"dW{L}"], grads[f"db{L}"] = ref.linear_backward(AL - Y, caches[L - 1][0])
    for l in range(L - 1, 0, -1):
        grads[f"dA{l}"] = dA
        dA, grads[f"dW{l}"], grads[f"db{l}"] = ref.linear_activation_backward(dA, caches[l - 1], "relu")
    return grads


# ---------------------------------------------------------------------------- the option


@pytest.mark.parametrize("text, canonical, params", [
    ("constant", "constant", {}),
    ("inverse", "inverse:1.0", {"decay_rate": 1.0, "time_interval": None}),
    ("inverse:0.3:1000", "inverse:0.3:1000", {"decay_rate": 0.3, "time_interval": 1000}),
    ("step", "step:10:0.5", {"every": 10, "factor": 0.5}),
    ("step:4", "step:4:0.5", {"every": 4, "factor": 0.5}),
    ("exponential:0.9", "exponential:0.9", {"gamma": 0.9}),
    ("cosine::20", "cosine:0.0:20", {"floor": 0.0, "period": 20}),
    ("plateau:0.5:3", "plateau:0.5:3", {"factor": 0.5, "patience": 3}),
])
def test_each_schedule_parses_to_its_parameters_and_one_canonical_text(text, canonical, params):
    assert O.parse_lr_schedule(text) == (text.split(":")[0], params)
    assert O.BY_NAME["lr_schedule"].validate(text) == canonical
    assert O.parse_lr_schedule(canonical) == O.parse_lr_schedule(text)


@pytest.mark.parametrize("value, message", [
    ("steep", r"unknown lr_schedule 'steep'; choose one of \['constant', 'cosine'"),
    (("step", 10), r"lr_schedule must be text like 'step:10:0.5'"),
    ("step:0", r"lr_schedule 'step:0': every must be a positive integer, got 0"),
    ("step:2.5", r"lr_schedule 'step:2.5': every must be an integer, got '2.5'"),
    ("step:10:1.5", r"lr_schedule 'step:10:1.5': factor must be a number in \(0, 1\), got 1.5"),
    ("exponential:0", r"gamma must be a number in \(0, 1\], got 0.0"),
    ("exponential:0.9:3", r"'exponential' takes at most 1 parameter\(s\) \(exponential:gamma\), got 2"),
    ("inverse:-1", r"decay_rate must be a finite number >= 0, got -1.0"),
    ("cosine:1", r"floor must be in \[0, 1\), got 1.0"),
    ("plateau:0.5:x", r"patience must be an integer, got 'x'"),
])
def test_a_bad_schedule_is_one_value_error_naming_the_option_and_the_parameter(value, message):
    with pytest.raises(ValueError, match=message):
        DNNClassifier(lr_schedule=value, max_iter=1).fit(*problem(m=20, n=3))


@pytest.mark.parametrize("impl", [ref, fastdnn], ids=["reference", "fast"])
@pytest.mark.parametrize("kwargs, message", [
    (dict(decay_rate=-0.5), r"decay_rate must be a finite number >= 0, got -0.5"),
    (dict(decay_rate=1, time_interval=0), r"time_interval must be a positive integer, got 0"),
    (dict(time_interval=10), r"time_interval \(10\) schedules a decay: give decay_rate too"),
])
def test_both_models_refuse_bad_decay_arguments_alike(impl, kwargs, message):
    X, y = problem(m=10, n=3)
    with pytest.raises(ValueError, match=message):
        impl.model(X.T, y.reshape(1, -1), [3, 1], num_epochs=1, **kwargs)


def test_the_course_decay_functions_are_its_formulas():
    assert ref.update_lr(0.5, 3, 1.0) == 0.5 / 4
    assert ref.update_lr(0.5, 0, 7.0) == 0.5
    assert ref.schedule_lr_decay(0.5, 999, 1.0) == 0.5  # time_interval 1000: no drop before epoch 1000
    assert ref.schedule_lr_decay(0.5, 3000, 1.0) == 0.5 / 4
    assert ref.schedule_lr_decay(0.5, 7, 1.0, time_interval=2) == pytest.approx(0.5 / 4, rel=1e-15)


@pytest.mark.parametrize("impl", [ref, fastdnn], ids=["reference", "fast"])
def test_the_course_trains_epochs_0_and_1_at_the_initial_rate_then_decays(impl):
    """The course's model() sets the rate after each epoch's minibatches, so its first decayed epoch is epoch 2:
    with a decay so strong that any decayed step is ~nothing, 2 epochs equal 2 undecayed ones, and the third
    epoch barely moves."""
    X, y = problem(m=40, n=5)
    Y = y.reshape(1, -1)
    kw = dict(learning_rate=0.5, seed=2)
    decayed2, _ = impl.model(X.T, Y, [5, 4, 1], num_epochs=2, decay_rate=1e12, **kw)
    plain2, _ = impl.model(X.T, Y, [5, 4, 1], num_epochs=2, **kw)
    decayed3, _ = impl.model(X.T, Y, [5, 4, 1], num_epochs=3, decay_rate=1e12, **kw)
    plain3, _ = impl.model(X.T, Y, [5, 4, 1], num_epochs=3, **kw)
    for key in plain2:
        assert np.array_equal(np.asarray(decayed2[key]), np.asarray(plain2[key])), key
        # Epoch 2 steps at 0.5 / (1 + 1e12): below 1e-9 of the undecayed step.
        step, undecayed = np.abs(np.asarray(decayed3[key]) - plain2[key]), np.abs(plain3[key] - plain2[key])
        assert step.max() <= 1e-9 * undecayed.max(), key


def test_print_cost_shows_the_next_epochs_rate_as_the_course_does(capsys):
    X, y = problem(m=30, n=4)
    lines = []
    for impl in (ref, fastdnn):
        impl.model(X.T, y.reshape(1, -1), [4, 3, 1], num_epochs=101, decay_rate=0.5, print_cost=True)
        lines.append(capsys.readouterr().out.splitlines())
    assert [line.split(":")[0] for line in lines[0]] == [
        "Cost after epoch 0", "learning rate after epoch 0", "Cost after epoch 100", "learning rate after epoch 100"]
    assert lines[1] == lines[0]
    assert lines[0][3] == f"learning rate after epoch 100: {ref.update_lr(0.0075, 100, 0.5):f}"


# ---------------------------------------------------------------------------- reference vs fast: the course's decay


DECAY_CASES = [
    dict(decay_rate=0.3),
    dict(decay_rate=2.0, time_interval=4),
    dict(decay_rate=0.5, mini_batch_size=16),
    dict(decay_rate=0.5, time_interval=3, mini_batch_size=7),  # last batch partial: 50 = 7 * 7 + 1
    dict(decay_rate=0.2, optimizer="momentum", mini_batch_size=16),
    dict(decay_rate=0.5, optimizer="adam", learning_rate=0.01, mini_batch_size=16),
    dict(decay_rate=0.5, lambd=0.7, optimizer="adam", learning_rate=0.01),
    dict(decay_rate=1.0, output="softmax", K=3, mini_batch_size=8),
]


def course_problem(K, m=50, seed=11):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, m))
    if K == 1:
        return X, (X[0:1] + 0.5 * X[1:2] ** 2 > 0.3).astype(np.float64)
    return X, np.eye(K)[:, np.argmax(X[:K] + 0.3 * rng.standard_normal((K, m)), axis=0)]


@pytest.mark.parametrize("options", DECAY_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_the_course_decay_fast_matches_reference_whole_run_float64(single_blas_thread, options):
    options = dict(options)
    K = options.pop("K", 1)
    X, Y = course_problem(K)
    kw = {"learning_rate": 0.1, "num_epochs": 30, "seed": 7, **options}
    p_ref, c_ref = ref.model(X, Y, [6, 5, 4, K], **kw)
    p_fast, c_fast = fastdnn.model(X, Y, [6, 5, 4, K], **kw)
    # The decay matters: the undecayed run is far from both.
    plain = {k: v for k, v in kw.items() if k not in ("decay_rate", "time_interval")}
    _, c_plain = ref.model(X, Y, [6, 5, 4, K], **plain)
    assert np.max(np.abs(np.array(c_plain) - c_ref)) > 1e3 * RTOL_RUN * np.max(np.abs(c_ref))
    assert_close(c_fast, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)


@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
def test_the_gram_route_follows_the_course_decay(single_blas_thread, optimizer):
    """Wide data (n_0 = 300, m = 20): the Gram route, its rate per epoch inside its compiled call."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 20))
    Y = (X[0:1] + X[1:2] > 0).astype(np.float64)
    kw = dict(learning_rate=0.05, num_epochs=60, optimizer=optimizer, decay_rate=0.1, time_interval=7)
    p_ref, c_ref = ref.model(X, Y, [300, 7, 3, 1], **kw)
    p_fast, c_fast = fastdnn.model(X, Y, [300, 7, 3, 1], gram=True, **kw)
    assert_close(c_fast, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)


def test_data_streamed_from_disk_follow_the_course_decay(tmp_path, monkeypatch, single_blas_thread):
    """Full batch over blocks read from disk (1.2 MB of features, a budget of 1 MB: two blocks' buffers): the
    epoch's update at the epoch's rate. The blocks' gradients are the whole batch's summed in another order
    (rounding only)."""
    X, y = problem(m=3000, n=50, seed=8)
    np.save(tmp_path / "d.npy", X)
    np.save(tmp_path / "d.labels.npy", y)
    kw = dict(learning_rate=0.2, num_epochs=25, decay_rate=0.4, time_interval=2, init="he", seed=3)
    p_ref, c_ref = ref.model(X.T, y.reshape(1, -1).astype(np.float64), [50, 5, 1], **kw)
    seen = []
    real = Feed.blocks
    monkeypatch.setattr(Feed, "blocks", lambda self, *a, **k: seen.append(self.block_rows) or real(self, *a, **k))
    p_fast, c_fast = fastdnn.model(str(tmp_path / "d.npy"), None, [50, 5, 1], memory="1MB", **kw)
    assert seen and max(seen) < 3000  # streamed, in blocks
    assert_close(c_fast, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(p_fast[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)


# ---------------------------------------------------------------------------- reference vs fast: every schedule


SCHEDULES = ["constant", "inverse:0.5:3", "step:7:0.5", "exponential:0.9", "cosine:0.05", "cosine:0.1:20"]
# (optimizer, batch, learning rate, epochs): full-batch gd as the course trains, minibatch gd, momentum and Adam.
TRAININGS = {"gd": ("gd", None, 0.3, 60), "gd-minibatch": ("gd", 32, 0.1, 20), "momentum": ("momentum", 32, 0.05, 20),
             "adam": ("adam", 32, 0.003, 20)}
# float32 runs against the reference: gd only, as tests/test_equivalence.py holds float32 runs, whatever the
# schedule. The kernels compute momentum's 1 - beta and Adam's 1 - beta^t in float32 (beta2 = 0.999 rounds to
# 0.99900001, so 1 - beta2 is 1.3e-5 off), the reference's numpy in float64 (Python scalars): a systematic
# difference that the realisations do not share (measured at a constant rate: Adam's run 10x past their spread,
# momentum's up to 4.5x with a schedule).
FLOAT32_TRAININGS = ("gd", "gd-minibatch")
DIMS = [20, 7, 5, 1]


def fast_fit(schedule, training, dtype="float64"):
    """The estimator that trains as ``reference_run`` does (deep init and shuffling seeded 1, labels 0/1)."""
    optimizer, batch, lr, epochs = training
    return DNNClassifier(hidden_layer_sizes=tuple(DIMS[1:-1]), optimizer=optimizer, batch_size=batch, learning_rate=lr,
                         max_iter=epochs, lr_schedule=schedule, init="deep", random_state=1, dtype=dtype)


@pytest.mark.parametrize("training", TRAININGS)
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_each_schedule_fast_matches_the_reference_at_its_rates_float64(single_blas_thread, schedule, training):
    optimizer, batch, lr, epochs = TRAININGS[training]
    X, y = problem()
    rate = formula(schedule, lr, epochs)
    p_ref, c_ref, _ = reference_run(X.T, y.reshape(1, -1), DIMS, rate, epochs, batch=batch, optimizer=optimizer)
    # Unwatched, the whole run is one compiled call, its rates one per epoch inside it.
    clf = fast_fit(schedule, TRAININGS[training]).fit(X, y)
    assert_close(clf.loss_curve_, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
    for key in p_ref:
        assert_close(clf.parameters_[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)
    # A callback after every epoch sees each epoch's rate, the formula's (the same operations, so the same
    # bits), and changes nothing.
    rates = []
    watched = fast_fit(schedule, TRAININGS[training])
    watched.fit(X, y, callbacks=[lambda info: rates.append(info.learning_rate)])
    assert rates == [rate(e) for e in range(epochs)]
    assert np.array_equal(watched.parameters_.flat, clf.parameters_.flat)


@pytest.mark.parametrize("training", FLOAT32_TRAININGS)
@pytest.mark.parametrize("schedule", SCHEDULES[1:])
def test_each_schedule_fast_float32_stays_within_the_float32_spread(single_blas_thread, schedule, training):
    """float32 against the float64 reference: no farther than FLOAT32_RUN_SAFETY times the farthest of the
    reference's own float32 realisations (its functions on relabelled networks), as tests/test_equivalence.py
    holds whole runs. A schedule changes the rates, not the arithmetic, so the same argument holds."""
    optimizer, batch, lr, epochs = TRAININGS[training]
    X, y = problem()
    X64 = X.astype(np.float32).astype(np.float64)
    rate = formula(schedule, lr, epochs)
    run = dict(batch=batch, optimizer=optimizer)
    p_ref, c_ref, _ = reference_run(X64.T, y.reshape(1, -1), DIMS, rate, epochs, **run)
    realizations = [reference_run(X64.T, y.reshape(1, -1), DIMS, rate, epochs, dtype=np.float32, relabel=seed, **run)
                    for seed in range(FLOAT32_REALIZATIONS)]
    curve_tol = FLOAT32_RUN_SAFETY * max(curve_deviation(c, c_ref) for _, c, _ in realizations)
    params_tol = FLOAT32_RUN_SAFETY * max(parameter_deviation(p, p_ref) for p, _, _ in realizations)
    clf = fast_fit(schedule, TRAININGS[training], dtype="float32")
    clf.fit(X, y)
    assert clf.parameters_.flat.dtype == np.float32
    fast = {k: np.asarray(v, np.float64) for k, v in clf.parameters_.items()}
    assert curve_deviation(clf.loss_curve_, c_ref) <= curve_tol
    assert parameter_deviation(fast, p_ref) <= params_tol


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_plateau_drops_where_the_reference_drops_on_its_own_validation_scores(single_blas_thread, dtype):
    """The reference's functions, validated each epoch with reference.predict, decide the drops by the rule
    written out in ``formula``; the fast run must score the same epochs the same, drop at the same epochs and
    train the same numbers (float64: the run contract; float32: the scores and drops alike)."""
    X, y = problem(m=400, seed=6)
    X_val, y_val = problem(m=60, seed=7)
    schedule, epochs, lr = "plateau:0.5:2", 40, 0.3
    rate = formula(schedule, lr, epochs)
    p_ref, c_ref, scores = reference_run(X.T, y.reshape(1, -1), DIMS, rate, epochs, validation=(X_val.T, y_val))
    rates_ref = [rate(e, scores) for e in range(epochs)]
    assert len(set(rates_ref)) >= 3  # it dropped at least twice within the run
    rates = []
    clf = fast_fit(schedule, ("gd", None, lr, epochs), dtype=dtype)
    clf.fit(X, y, validation_data=(X_val, y_val), callbacks=[lambda info: rates.append(info.learning_rate)])
    assert clf.validation_scores_ == scores
    assert rates == rates_ref
    state = clf.training_state_
    assert lr * 0.5 ** state.lr_drops == rate(epochs, scores)
    if dtype == "float64":
        assert_close(clf.loss_curve_, c_ref, scale_rtol=RTOL_RUN, name="cost curve")
        for key in p_ref:
            assert_close(clf.parameters_[key], p_ref[key], scale_rtol=RTOL_RUN, name=key)


def test_plateau_without_validation_data_is_refused_before_training():
    X, y = problem(m=40, n=3)
    clf = DNNClassifier(lr_schedule="plateau", max_iter=3)
    with pytest.raises(ValueError, match=r"lr_schedule 'plateau:0.1:10' lowers the rate when the validation score "
                                         r"stops improving, but this run has no validation data: set early_stopping"):
        clf.fit(X, y)
    with pytest.raises(ValueError, match="has no validation data"):
        DNNClassifier(lr_schedule="plateau:0.5:2").partial_fit(X, y)
    # early stopping's held-out rows are validation data
    assert DNNClassifier(lr_schedule="plateau:0.5:2", max_iter=3, early_stopping=True).fit(X, y).n_iter_ == 3


# ---------------------------------------------------------------------------- every route, inside its compiled calls


def engine_run(X, Y, schedule, epochs, *, one_epoch_a_call=False, path=None, block=None, **options):
    """An engine's run: with ``schedule`` in one train call, or (``one_epoch_a_call``) one epoch a call at that
    epoch's rate (the schedule's formula) as a constant rate. ``path``: the data streamed from that .npy in
    blocks of ``block`` rows."""
    lr = options.pop("learning_rate")
    dims = [X.shape[1], *options.pop("hidden", (8,)), 1]
    engine = Engine(initialize_parameters(dims, "he", 1, np.float64), seed=4, learning_rate=lr, **options,
                    lr_schedule=None if one_epoch_a_call else Schedule.from_option(schedule))

    def train(n):
        if path is None:
            return list(engine.train(X, Y, n, gram=False))
        with open_disk_dataset(path) as disk:
            feed = Feed(disk, disk.y.astype(np.int64), 2, class_targets, np.float64, block,
                        batch=options.get("mini_batch_size"))
            try:
                return list(engine.train(feed, None, n))
            finally:
                feed.close()

    if not one_epoch_a_call:
        return engine, train(epochs)
    rate, costs = formula(schedule, lr, epochs), []
    for e in range(epochs):
        engine.configure(optimizer=options.get("optimizer", "gd"), learning_rate=rate(e), beta=0.9, beta1=0.9,
                         beta2=0.999, epsilon=1e-8, lambd=0.0, mini_batch_size=options.get("mini_batch_size"),
                         threads=None)
        costs += train(1)
    return engine, costs


ROUTE_CASES = {
    "in-memory-minibatch": dict(optimizer="adam", learning_rate=0.01, mini_batch_size=20),
    "in-memory-full-batch": dict(learning_rate=0.3),
    # 77 MFLOP a step: two threads of the step's pool where two cores are usable (fastdnn.threads).
    "pool-of-2-threads": dict(optimizer="momentum", learning_rate=0.05, mini_batch_size=64, hidden=(256, 256),
                              features=784),
    "streamed-minibatch": dict(optimizer="adam", learning_rate=0.01, mini_batch_size=20, block=100),
    "streamed-full-batch": dict(learning_rate=0.3, block=100),
}


@pytest.mark.parametrize("schedule", ["inverse:0.5:2", "step:2:0.5", "cosine:0.1:5"])
@pytest.mark.parametrize("case", ROUTE_CASES)
def test_a_scheduled_run_is_one_epoch_a_call_at_each_rate_bit_for_bit(tmp_path, case, schedule):
    """Each route gives its compiled calls one rate per epoch: a chunk of epochs in one call trains exactly as
    epochs one a call, each at its rate as the constant rate (the same kernels, the same arithmetic)."""
    options = dict(ROUTE_CASES[case])
    block = options.pop("block", None)
    n = options.pop("features", 12)
    if case.startswith("pool") and training_threads(None, [n, *options["hidden"], 1], options["mini_batch_size"]) < 2:
        pytest.skip("one usable core: the step's pool has one thread")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((1003, n)) / np.sqrt(n)
    y = (X @ rng.standard_normal(n) > 0).astype(np.int64)
    path = None
    if block is not None:
        path = str(tmp_path / "d.npy")
        np.save(path, X)
        np.save(tmp_path / "d.labels.npy", y)
    Y = class_targets(y, 2)
    scheduled, costs = engine_run(X, Y, schedule, 6, path=path, block=block, **options)
    by_epoch, expected = engine_run(X, Y, schedule, 6, one_epoch_a_call=True, path=path, block=block, **options)
    assert costs == expected
    assert np.array_equal(scheduled.state.parameters.flat, by_epoch.state.parameters.flat)
    assert np.array_equal(scheduled.state.optimizer_state, by_epoch.state.optimizer_state)
    assert scheduled.last_rate == formula(schedule, options["learning_rate"], 6)(5)


# ---------------------------------------------------------------------------- checkpoints


def fit_with_checkpoint(tmp_path, kw, fit, at):
    """Fit ``kw`` (``fit``'s arguments) writing a checkpoint after epoch ``at``; returns the checkpoint's path
    and what the training state's schedule record was after every epoch."""
    path = tmp_path / f"at-{at}.ckpt.npz"
    record = []

    def save(info):
        state = info.estimator.training_state_
        record.append((state.epoch, state.lr_drops, state.lr_stall))
        if info.epoch == at:
            fio.save_checkpoint(info.estimator, path)

    DNNClassifier(**kw).fit(*fit["data"], validation_data=fit.get("validation"), callbacks=[save])
    return path, record


@pytest.mark.parametrize("schedule", ["inverse:0.5:2", "step:3:0.5", "exponential:0.8", "cosine:0.1", "plateau:0.5:2"])
def test_a_run_checkpointed_mid_schedule_resumes_bit_for_bit(tmp_path, schedule):
    X, y = problem(m=400, seed=6)
    validation = problem(m=60, seed=7)
    epochs = 24
    kw = dict(hidden_layer_sizes=(6,), optimizer="gd", learning_rate=0.3, batch_size=None, max_iter=epochs,
              random_state=0, lr_schedule=schedule)
    fit = {"data": (X, y), "validation": validation}
    whole = DNNClassifier(**kw).fit(X, y, validation_data=validation)
    _, record = fit_with_checkpoint(tmp_path, kw, fit, at=None)
    at = epochs // 2
    if schedule.startswith("plateau"):
        # Mid-stall, with a drop still to come that the stall counts towards: a checkpoint losing the
        # counter drops later.
        at = next(e for e, drops, stall in record if stall > 0 and drops > 0
                  and any(d > drops for f, d, _ in record if e < f <= e + 2))
    path, _ = fit_with_checkpoint(tmp_path, kw, fit, at=at)
    resumed = load_checkpoint(path).estimator
    assert resumed.lr_schedule == schedule and resumed.n_iter_ == at
    resumed.set_params(warm_start=True, max_iter=epochs - at).fit(X, y, validation_data=validation)
    assert np.array_equal(resumed.parameters_.flat, whole.parameters_.flat)
    assert resumed.loss_curve_ == whole.loss_curve_
    assert resumed.validation_scores_ == whole.validation_scores_
    a, b = resumed.training_state_, whole.training_state_
    assert (a.lr_drops, a.lr_best, a.lr_stall, a.lr_period) == (b.lr_drops, b.lr_best, b.lr_stall, b.lr_period)


def test_a_cosine_keeps_the_period_its_run_started_with_through_a_checkpoint(tmp_path):
    """Without a period of its own a cosine anneals over the first fit's max_iter; a warm fit after it (for
    more epochs) stays at the floor, in memory and from a checkpoint alike."""
    X, y = problem(m=100)
    kw = dict(hidden_layer_sizes=(6,), learning_rate=0.01, max_iter=8, random_state=0, lr_schedule="cosine:0.2")
    whole = DNNClassifier(**kw).fit(X, y)
    fio.save_checkpoint(whole, tmp_path / "c.ckpt.npz")
    rates = []
    whole.set_params(warm_start=True, max_iter=12).fit(X, y, callbacks=[lambda info: rates.append(info.learning_rate)])
    assert rates == [0.2 * 0.01] * 12
    resumed = load_checkpoint(tmp_path / "c.ckpt.npz").estimator
    resumed.set_params(warm_start=True, max_iter=12).fit(X, y)
    assert np.array_equal(resumed.parameters_.flat, whole.parameters_.flat)
    assert resumed.training_state_.lr_period == 8


def rewrite(path, change):
    """The .npz at ``path`` with ``change(arrays)`` applied (a file another fastdnn might have written)."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    change(arrays)
    os.remove(path)
    np.savez(path, **arrays)


def test_a_file_written_before_schedules_loads_as_constant(tmp_path):
    X, y = problem(m=100)
    clf = DNNClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    fio.save_checkpoint(clf, tmp_path / "old.ckpt.npz")

    def older(arrays):
        options = json.loads(str(arrays["options"]))
        del options["lr_schedule"]
        arrays["options"] = np.array(json.dumps(options), np.str_)
        state = json.loads(str(arrays["state"]))
        for key in ("lr_period", "lr_drops", "lr_best", "lr_stall"):
            del state[key]
        arrays["state"] = np.array(json.dumps(state), np.str_)

    rewrite(tmp_path / "old.ckpt.npz", older)
    old = load_checkpoint(tmp_path / "old.ckpt.npz").estimator
    assert old.lr_schedule == "constant"
    state = old.training_state_
    assert (state.lr_period, state.lr_drops, state.lr_best, state.lr_stall) == (None, 0, None, 0)
    old.set_params(warm_start=True, max_iter=2).fit(X, y)
    clf.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert np.array_equal(old.parameters_.flat, clf.parameters_.flat)


@pytest.mark.parametrize("key, value, message", [
    ("lr_stall", -1, "lr_stall must be a non-negative integer, got -1"),
    ("lr_drops", 1.5, "lr_drops must be a non-negative integer, got 1.5"),
    ("lr_best", "high", "lr_best must be null or a number, got 'high'"),
    ("lr_period", 0, "lr_period must be null or a positive integer, got 0"),
])
def test_a_checkpoint_with_a_bad_schedule_record_is_refused_naming_it(tmp_path, key, value, message):
    X, y = problem(m=60)
    clf = DNNClassifier(hidden_layer_sizes=(5,), max_iter=2, random_state=0).fit(X, y)
    fio.save_checkpoint(clf, tmp_path / "c.ckpt.npz")

    def bad(arrays):
        state = json.loads(str(arrays["state"]))
        state[key] = value
        arrays["state"] = np.array(json.dumps(state), np.str_)

    rewrite(tmp_path / "c.ckpt.npz", bad)
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path / "c.ckpt.npz")


# ---------------------------------------------------------------------------- the estimator's conventions


def test_the_schedule_is_one_parameter_for_scikit_learns_tools():
    clf = DNNClassifier(lr_schedule="step:5:0.5")
    assert clf.get_params()["lr_schedule"] == "step:5:0.5"
    assert clf.set_params(lr_schedule="cosine").lr_schedule == "cosine"
    sklearn = pytest.importorskip("sklearn.base")
    assert sklearn.clone(clf).get_params()["lr_schedule"] == "cosine"
    assert "lr_schedule='cosine'" in repr(clf)


def test_partial_fit_and_warm_starts_go_on_with_the_schedule():
    """Epochs count over every fit: four partial_fits are a four-epoch fit, rate for rate."""
    X, y = problem(m=120)
    kw = dict(hidden_layer_sizes=(6,), max_iter=1, random_state=2, lr_schedule="step:1:0.5", learning_rate=0.01)
    full = DNNClassifier(**{**kw, "max_iter": 4}).fit(X, y)
    inc = DNNClassifier(**kw)
    for _ in range(4):
        inc.partial_fit(X, y, classes=[0, 1])
    assert np.array_equal(inc.parameters_.flat, full.parameters_.flat)
    assert inc.engine_.last_rate == 0.01 * 0.5 ** 3


# ---------------------------------------------------------------------------- the command and sweeps


def test_the_command_trains_the_schedule_shows_the_rate_and_resumes_it_exactly(tmp_path, capsys, monkeypatch):
    options = ["--samples", "2000", "--features", "8", "--batch-size", "100", "--epochs", "6", "--lr", "0.004",
               "--lr-schedule", "plateau:0.5:1", "--early-stopping", "--n-iter-no-change", "100", "--tol", "0.5"]
    whole = tmp_path / "whole.npz"
    assert cli.main(["train", *options, "--out", str(whole)]) == 0
    out, err = capsys.readouterr()
    assert "lr 0.004 on schedule plateau:0.5:1" in out
    # No epoch improves on the first by 0.5: the rate halves after every epoch from epoch 1's on, so epoch e >= 1
    # trains at 0.004 / 2^(e - 1); the bar shows the last epoch's, 0.004 / 2^4.
    assert "lr 0.00025," in err
    assert fastdnn.load_model(whole).training_state_.lr_drops == 0  # a model file keeps no training record

    parted, ckpt = tmp_path / "parted.npz", tmp_path / "parted.ckpt.npz"
    real_save = cli.train.Checkpointer.__call__

    def interrupt_after_epoch_three(self, info):
        real_save(self, info)
        if info.epoch == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.train.Checkpointer, "__call__", interrupt_after_epoch_three)
    assert cli.main(["train", *options, "--quiet", "--out", str(parted), "--checkpoint-every", "1"]) == 130
    monkeypatch.undo()
    assert load_checkpoint(ckpt).estimator.training_state_.lr_drops == 2  # after epochs 1 and 2
    assert cli.main(["train", "--resume", str(ckpt), "--quiet"]) == 0
    a, b = fastdnn.load_model(whole), fastdnn.load_model(parted)
    assert np.array_equal(a.parameters_.flat, b.parameters_.flat) and a.loss_curve_ == b.loss_curve_
    capsys.readouterr()
    # Another schedule on resume is refused, as any other option.
    status = cli.main(["train", "--resume", str(ckpt), "--lr-schedule", "constant", "--quiet"])
    err = capsys.readouterr().err
    assert status != 0 and "--lr-schedule constant differs from the checkpoint's plateau:0.5:1" in err


def test_a_sweep_takes_the_schedule_as_one_value_a_configuration(tmp_path, capsys):
    from fastdnn.sweeps import sweep

    X, y = problem(m=150, n=6)
    grid = {"lr_schedule": ["constant", "step:1:0.5"]}
    fixed = dict(hidden_layer_sizes=(4,), max_iter=3, batch_size=50)
    results = sweep(X, y, grid, fixed=fixed, workers=1)
    assert [r["lr_schedule"] for r in results.rows] == ["constant", "step:1:0.5"]
    assert not results.failed
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.csv"
    status = cli.main(["sweep", "--data", str(tmp_path / "d.npz"), "--lr-schedule", "constant", "step:1",
                       "--layers", "4", "--epochs", "2", "--workers", "1", "--quiet", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    text = out.read_text()
    assert "lr_schedule" in text.splitlines()[0] and "step:1:0.5" in text
    status = cli.main(["sweep", "--data", str(tmp_path / "d.npz"), "--lr-schedule", "steep", "--quiet"])
    assert status != 0 and "--lr-schedule: unknown lr_schedule 'steep'" in capsys.readouterr().err


def test_the_archive_holds_the_schedule_as_text(tmp_path):
    X, y = problem(m=60)
    DNNClassifier(hidden_layer_sizes=(5,), max_iter=2, lr_schedule="exponential:0.5").fit(X, y).save(tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        assert "options.npy" in z.namelist()
    assert json.loads(str(np.load(tmp_path / "m.npz")["options"]))["lr_schedule"] == "exponential:0.5"
    assert fastdnn.load_model(tmp_path / "m.npz").lr_schedule == "exponential:0.5"
