"""The one training engine: every entry point trains through it and gets the same numbers, whatever looks
at the run in between (progress, verbose, callbacks, checkpoints) and however the run is cut."""

import ast
import inspect
import pathlib
import re
import tracemalloc

import numpy as np
import numpy.testing as npt
import pytest

import fastdnn
from fastdnn import cli, options
from fastdnn.estimator import load_model

ROOT = pathlib.Path(__file__).resolve().parents[1]


def wide_problem(m=40, n0=300, seed=0):
    """Wide data (m much smaller than n_0): full-batch gd and momentum take the Gram route."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n0)) / np.sqrt(n0)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def blobs(n=400, seed=5, n_features=8):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2, n_features)) * 1.5
    idx = rng.integers(2, size=n)
    return centers[idx] + rng.standard_normal((n, n_features)), idx


COURSE = dict(hidden_layer_sizes=(8, 5), optimizer="gd", learning_rate=0.05, batch_size=None, init="deep", random_state=1)


# ---------------------------------------------------------------------------- looking never changes the numbers


@pytest.mark.parametrize("optimizer", ["gd", "momentum"])
def test_verbose_and_callbacks_keep_the_gram_route_and_its_exact_numbers(capsys, optimizer):
    X, y = wide_problem()
    params = {**COURSE, "optimizer": optimizer, "max_iter": 60}
    quiet = fastdnn.DNNClassifier(**params).fit(X, y)
    seen = []
    every = lambda info: seen.append(info.epoch)  # noqa: E731
    every.every = 7
    loud = fastdnn.DNNClassifier(**params, verbose=True).fit(X, y, callbacks=[every])
    npt.assert_array_equal(loud.parameters_.flat, quiet.parameters_.flat)
    assert loud.loss_curve_ == quiet.loss_curve_
    assert seen == [*range(7, 60, 7), 60]  # every 7 epochs, and the run's last
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert printed == [f"epoch {i}: cost {c:.6f}" for i, c in enumerate(quiet.loss_curve_)]
    # The route really was the Gram route: the direct route's numbers differ in their last bits.
    direct = fastdnn.model(X.T, y.reshape(1, -1), [300, 8, 5, 1], learning_rate=0.05, num_epochs=60, optimizer=optimizer,
                           seed=1, gram=False)[1]
    gram = fastdnn.model(X.T, y.reshape(1, -1), [300, 8, 5, 1], learning_rate=0.05, num_epochs=60, optimizer=optimizer,
                         seed=1, gram=True)[1]
    assert quiet.loss_curve_ == gram and gram != direct


def test_print_cost_prints_as_training_goes_and_changes_nothing(capsys):
    X, y = wide_problem()
    Y = y.reshape(1, -1)
    p_quiet, c_quiet = fastdnn.L_layer_model(X.T, Y, [300, 8, 5, 1], num_iterations=250)
    p_loud, c_loud = fastdnn.L_layer_model(X.T, Y, [300, 8, 5, 1], num_iterations=250, print_cost=True)
    npt.assert_array_equal(p_loud.flat, p_quiet.flat)
    assert c_loud == c_quiet
    assert capsys.readouterr().out.splitlines() == [f"Cost after iteration {i}: {c_quiet[i]:.6f}" for i in (0, 100, 200)]


def test_a_callback_stops_training_where_it_says():
    X, y = blobs()
    params = dict(hidden_layer_sizes=(6,), max_iter=20, random_state=2)
    stopped = fastdnn.DNNClassifier(**params).fit(X, y, callbacks=[lambda info: info.epoch == 3])
    three = fastdnn.DNNClassifier(**{**params, "max_iter": 3}).fit(X, y)
    assert stopped.n_iter_ == 3
    npt.assert_array_equal(stopped.parameters_.flat, three.parameters_.flat)


def test_a_callback_at_the_engines_pace_sees_every_cost_once():
    X, y = blobs()
    costs = []

    def collect(info):
        costs.extend(info.costs)

    collect.every = None
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=25, random_state=2).fit(X, y, callbacks=[collect])
    assert costs == clf.loss_curve_


def test_each_callback_sees_every_cost_since_its_own_last_call():
    X, y = blobs()
    calls = {3: [], None: []}

    def make(every):
        def callback(info):
            calls[every].append((info.epoch, len(info.costs)))

        callback.every = every
        return callback

    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=10, random_state=2, early_stopping=True,
                                n_iter_no_change=100)
    clf.fit(X, y, callbacks=[make(3), make(None)])
    assert calls[3] == [(3, 3), (6, 3), (9, 3), (10, 1)]
    assert [n for _, n in calls[None]] == [1] * 10  # early stopping looks after every epoch; so does this one


def test_monitors_see_the_finite_epochs_before_a_divergence(capsys):
    X, y = blobs(n=200)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(8,), optimizer="gd", learning_rate=30.0, batch_size=None,
                                max_iter=200, random_state=0, verbose=True)
    with pytest.raises(fastdnn.DivergenceError) as info:
        clf.fit(X * 50, y)
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]
    assert info.value.epoch == clf.n_iter_ == len(printed) > 0  # every finite epoch printed, counted from 0
    assert f"at epoch {info.value.epoch}" in str(info.value) and printed[-1].startswith(f"epoch {info.value.epoch - 1}:")


def test_a_checkpoint_saved_mid_way_on_the_gram_route_follows_new_settings_or_refuses_other_data(tmp_path):
    X, y = wide_problem(m=60, n0=400)
    path = tmp_path / "mid.npz"

    def save_at_12(info):
        if info.epoch == 12:
            fastdnn.save_checkpoint(info.estimator, path)

    fastdnn.DNNClassifier(**{**COURSE, "optimizer": "momentum", "max_iter": 20}).fit(X, y, callbacks=[save_at_12])
    with np.load(path) as f:
        assert "gram_C" in f.files
    saved_W1 = fastdnn.load_checkpoint(path).estimator.parameters_["W1"].copy()
    # A minibatch fit leaves the route exactly (W1 as saved) and really trains in minibatches.
    clf = fastdnn.load_checkpoint(path).estimator.set_params(warm_start=True, max_iter=2, batch_size=8)
    moved = []
    clf.fit(X, y, callbacks=[lambda info: moved.append(info.estimator.parameters_["W1"].copy()) and None])
    assert clf.t_ == 12 + 2 * 8 and clf.training_state_.gram is None
    # Adam from the same point: the Gram route does not apply; nothing diverges.
    adam = fastdnn.load_checkpoint(path).estimator.set_params(warm_start=True, max_iter=3, optimizer="adam",
                                                              learning_rate=1e-3)
    adam.fit(X, y)
    assert np.isfinite(adam.parameters_.flat).all() and adam.training_state_.gram is None
    # Resuming it on other data of the same size is refused, not silently wrong.
    other = fastdnn.load_checkpoint(path).estimator.set_params(warm_start=True, max_iter=3)
    with pytest.raises(ValueError, match="other data"):
        other.fit(X[::-1].copy(), y[::-1].copy())
    np.testing.assert_array_equal(other.parameters_["W1"], saved_W1)


def test_validation_data_is_scored_each_epoch_and_watched_by_early_stopping():
    X, y = blobs()
    Xv, yv = blobs(n=100, seed=6)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=8, random_state=2).fit(X, y, validation_data=(Xv, yv))
    plain = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=8, random_state=2).fit(X, y)
    npt.assert_array_equal(clf.parameters_.flat, plain.parameters_.flat)  # scoring trains nothing
    assert len(clf.validation_scores_) == 8 and clf.validation_scores_[-1] == clf.score(Xv, yv)
    early = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=2, early_stopping=True,
                                  n_iter_no_change=3).fit(X, y, validation_data=(Xv, yv))
    assert early.n_iter_ < 300 and early.score(Xv, yv) == early.best_validation_score_ == max(early.validation_scores_)


def test_learning_rate_auto_is_the_tables_rate_for_each_optimizer():
    X, y = blobs(n=200)
    for optimizer, rate in options.AUTO_LEARNING_RATES.items():
        auto = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0, optimizer=optimizer).fit(X, y)
        given = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0, optimizer=optimizer,
                                      learning_rate=rate).fit(X, y)
        npt.assert_array_equal(auto.parameters_.flat, given.parameters_.flat)


# ---------------------------------------------------------------------------- splits are rows, not copies


def test_early_stopping_trains_through_row_indices_without_copying_X():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60_000, 100)).astype(np.float32)  # 24 MB
    y = (X[:, 0] > 0).astype(np.int64)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0, early_stopping=True)
    clf.fit(X[:500], y[:500])  # compiled, buffers sized once
    tracemalloc.start()
    try:
        clf.fit(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A copy of the training rows alone would be 0.9 X; what remains is the targets, the row
    # indices and permutations (8 bytes per example each) and the validation blocks: a few MB.
    assert peak < 0.2 * X.nbytes, f"fit allocated {peak / 2**20:.1f} MiB for a {X.nbytes / 2**20:.0f} MiB X"


# ---------------------------------------------------------------------------- the command is the estimator


def test_command_early_stopping_gives_the_estimators_model(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((600, 6))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "m.npz"
    status = cli.main(["train", "--data", str(tmp_path / "d.npz"), "--layers", "12", "--epochs", "60", "--seed", "4",
                       "--early-stopping", "--n-iter-no-change", "3", "--batch-size", "64", "--quiet", "--out", str(out)])
    assert status == 0, capsys.readouterr()
    est = fastdnn.DNNClassifier(hidden_layer_sizes=(12,), max_iter=60, random_state=4, early_stopping=True,
                                n_iter_no_change=3, batch_size=64).fit(X, y)
    saved = load_model(out)
    assert saved.n_iter_ == est.n_iter_ < 60
    npt.assert_array_equal(saved.parameters_.flat, est.parameters_.flat)
    assert saved.validation_scores_ == est.validation_scores_


def test_extending_a_finished_early_stopping_run_equals_the_longer_run(tmp_path, capsys):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    common = ["train", "--data", str(tmp_path / "d.npz"), "--batch-size", "64", "--early-stopping", "--n-iter-no-change",
              "1000", "--tol", "0", "--quiet"]
    assert cli.main([*common, "--epochs", "30", "--out", str(tmp_path / "long.npz")]) == 0
    assert cli.main([*common, "--epochs", "12", "--out", str(tmp_path / "part.npz"), "--checkpoint-every", "5"]) == 0
    assert cli.main(["train", "--resume", str(tmp_path / "part.ckpt.npz"), "--epochs", "30", "--quiet"]) == 0
    long, part = load_model(tmp_path / "long.npz"), load_model(tmp_path / "part.npz")
    assert part.loss_curve_ == long.loss_curve_ and part.validation_scores_ == long.validation_scores_
    npt.assert_array_equal(part.parameters_.flat, long.parameters_.flat)
    capsys.readouterr()


def test_full_batch_on_the_command_line_is_full_batch(tmp_path, capsys):
    out = tmp_path / "m.npz"
    status = cli.main(["train", "--samples", "300", "--features", "6", "--batch-size", "full", "--epochs", "3",
                       "--quiet", "--out", str(out)])
    assert status == 0, capsys.readouterr()
    model = load_model(out)
    assert model.batch_size is None and model.t_ == 3  # one step per epoch


def test_a_run_checkpointed_mid_way_on_the_gram_route_resumes_bit_for_bit(tmp_path, capsys, monkeypatch):
    X, y = wide_problem(m=60, n0=400)
    np.savez(tmp_path / "wide.npz", X=X, y=y)
    argv = ["train", "--data", str(tmp_path / "wide.npz"), "--layers", "8,4", "--optimizer", "momentum", "--lr", "0.05",
            "--batch-size", "full", "--epochs", "40", "--quiet", "--test", str(tmp_path / "wide.npz")]
    assert cli.main([*argv, "--out", str(tmp_path / "whole.npz")]) == 0
    real = cli.train.Checkpointer.__call__

    def interrupt(self, info):
        real(self, info)
        if info.epoch == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.train.Checkpointer, "__call__", interrupt)
    assert cli.main([*argv, "--out", str(tmp_path / "parted.npz"), "--checkpoint-every", "10"]) == 130
    monkeypatch.undo()
    with np.load(tmp_path / "parted.ckpt.npz") as f:
        assert "gram_C" in f.files  # saved mid-way on the Gram route
    assert cli.main(["train", "--resume", str(tmp_path / "parted.ckpt.npz"), "--quiet"]) == 0
    whole, parted = load_model(tmp_path / "whole.npz"), load_model(tmp_path / "parted.npz")
    npt.assert_array_equal(parted.parameters_.flat, whole.parameters_.flat)
    assert parted.loss_curve_ == whole.loss_curve_
    capsys.readouterr()


# ---------------------------------------------------------------------------- one rule, one place


def test_the_estimators_parameters_are_the_options_table():
    signature = inspect.signature(fastdnn.DNNClassifier.__init__).parameters
    assert [p for p in signature if p != "self"] == [o.name for o in options.OPTIONS]
    for option in options.OPTIONS:
        assert signature[option.name].default == option.default, option.name
    # The regressor's are the rows of its task: all but the output layer's choices (identity, squared error) and the
    # classes' weights.
    regressor = inspect.signature(fastdnn.DNNRegressor.__init__).parameters
    assert [p for p in regressor if p != "self"] == options.names("regression")
    assert set(options.names("classification")) - set(options.names("regression")) == {"output", "loss", "class_weight"}
    for name in options.names("regression"):
        assert regressor[name].default == options.BY_NAME[name].default, name


def test_the_course_names_in_the_table_are_the_course_functions_parameters():
    from fastdnn import reference

    fast = inspect.signature(fastdnn.model).parameters
    ref = inspect.signature(reference.model).parameters
    for option in options.OPTIONS:
        if option.course:
            assert option.course in fast, option.course
            assert option.course in ref or option.course in ("dtype", "threads", "memory"), option.course


def test_every_command_flag_of_a_training_option_comes_from_the_table(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = capsys.readouterr().out
    for option in options.OPTIONS:
        if option.flag:
            assert option.flag in text, option.flag
    with pytest.raises(SystemExit):
        cli.main(["train", "--optimizer", "sgdd"])
    assert "invalid choice: 'sgdd' (choose from gd, momentum, adam)" in capsys.readouterr().err.replace("'gd', 'momentum', 'adam'", "gd, momentum, adam")


# Numba has no public way to ask where a dispatcher caches (kernels/__init__.py needs it to clear stale
# entries); the one use of a third party's private names, kept in one module.
NUMBA_INTERNALS = {("kernels/__init__.py", "_cache"), ("kernels/__init__.py", "_cache_path")}
# Names of the standard library that begin with an underscore and are documented public API.
STDLIB_PUBLIC = {("os", "_exit")}
# A namedtuple's documented methods carry an underscore so that they never clash with its fields.
NAMEDTUPLE_PUBLIC = {"_replace", "_asdict", "_fields", "_make"}


def test_no_module_calls_kernels_or_another_modules_private_names():
    """The contributor rule (README): only the engine (engine.py), its routes (routes.py) and the course's
    per-stage functions (pipeline.py) import the compiled kernels (the tests test them directly), and no module,
    the tests' included, reads another module's underscore names."""
    sources = [p for d in ("fastdnn", "kernels", "tools", "asv_benchmarks", "tests") for p in (ROOT / d).rglob("*.py")]
    kernel_users, private = [], []
    for path in sources:
        tree = ast.parse(path.read_text())
        test = path.parent.name == "tests"
        for node in ast.walk(tree):
            if not test and isinstance(node, ast.ImportFrom) and node.module and "kernels" in node.module.split("."):
                kernel_users.append(path.relative_to(ROOT).as_posix())
            if not test and isinstance(node, ast.Import) and any("kernels" in a.name.split(".") for a in node.names):
                kernel_users.append(path.relative_to(ROOT).as_posix())
            if isinstance(node, ast.ImportFrom) and any(a.name.startswith("_") and not a.name.startswith("__") for a in node.names):
                private.append(f"{path.relative_to(ROOT)}: from {node.module} import _...")
            if isinstance(node, (ast.ImportFrom, ast.Import)):
                modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                if any(re.search(r"(^|\.)_[a-z]", m) for m in modules):
                    private.append(f"{path.relative_to(ROOT)}: imports {modules}")
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
                    and not (isinstance(node.value, ast.Name) and (node.value.id, node.attr) in STDLIB_PUBLIC)
                    and node.attr not in NAMEDTUPLE_PUBLIC
                    and (path.relative_to(ROOT).as_posix(), node.attr) not in NUMBA_INTERNALS):
                private.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    # The tools time pieces of a step the engine does not expose (profile_step, overlap_bench) or kernels
    # it does not call yet (pool_bench).
    allowed = {"fastdnn/engine.py", "fastdnn/routes.py", "fastdnn/pipeline.py", "asv_benchmarks/kernels.py",
               "tools/profile_step.py", "tools/overlap_bench.py", "tools/pool_bench.py"}
    assert set(kernel_users) <= allowed, sorted(set(kernel_users) - allowed)
    assert not private, private


def test_a_batch_beyond_blas_32_bit_dimensions_is_refused_before_any_product():
    """BLAS takes 32-bit dimensions: a full batch of 2**31 rows would wrap around inside the kernel, so it is
    refused first (the rows here are one zero-stride view: nothing is allocated)."""
    from numpy.lib.stride_tricks import as_strided

    from fastdnn.engine import Engine
    from fastdnn.pipeline import initialize_parameters

    m = 2**31
    X = as_strided(np.zeros(1), shape=(m, 1), strides=(0, 8))
    Y = as_strided(np.zeros(1), shape=(m, 1), strides=(0, 8))
    engine = Engine(initialize_parameters([1, 2, 1], "he", 1, np.float64), mini_batch_size=None)
    with pytest.raises(ValueError, match=r"a batch of 2,147,483,648 examples .* 32-bit dimensions"):
        engine.train(X, Y, 1, gram=False)


WARM_UP_SCRIPT = """
import logging
import numpy as np
from fastdnn.engine import Engine
from fastdnn.pipeline import initialize_parameters

notices = []
class Notices(logging.Handler):
    def emit(self, record):
        notices.append(record.getMessage())
logging.getLogger("fastdnn").addHandler(Notices())
logging.getLogger("fastdnn").setLevel(logging.INFO)

def engine():
    return Engine(initialize_parameters([6, 4, 1], "he", 3, np.float32), optimizer="momentum", lambd=0.2,
                  mini_batch_size=None)

print(engine().warm_up() > 0, any(n.startswith("compiling") for n in notices))
notices.clear()
rng = np.random.default_rng(0)
X = rng.standard_normal((3, 6)).astype(np.float32)
Y = (rng.random((3, 1)) > 0.5).astype(np.float32)
e = engine()
e.train(X, Y, 12, gram=True)
e.train(X, Y, 2, gram=False)
e.predict_proba(X)
print(notices)
"""


@pytest.mark.slow
def test_warm_up_compiles_every_kernel_a_run_of_its_configuration_then_calls(tmp_path):
    """``Engine.warm_up`` on a cold cache compiles (and says so); the run after it, on other data, on the Gram
    route and the direct one, and its predictions compile nothing more (a compile notice would show it)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", WARM_UP_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["True True", "[]"], out.stdout
