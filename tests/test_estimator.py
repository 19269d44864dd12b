"""DNNClassifier: scikit-learn's conventions over the fast path, on real and synthetic data."""

import numpy as np
import pytest

import fastdnn
from fastdnn import reference


def blobs(n=300, classes=("no", "yes"), n_features=8, seed=0):
    """Separable-ish labelled data (n, n_features) with arbitrary label values."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(classes), n_features)) * 2.5
    idx = rng.integers(len(classes), size=n)
    X = centers[idx] + rng.standard_normal((n, n_features))
    return X, np.asarray(classes)[idx]


def test_binary_labels_use_a_sigmoid_and_keep_label_values():
    X, y = blobs()
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(8,), max_iter=30, learning_rate=0.01, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["no", "yes"]
    assert clf.parameters_["W2"].shape == (1, 8)  # one sigmoid unit
    proba = clf.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X)) <= {"no", "yes"}
    assert clf.score(X, y) > 0.95
    assert len(clf.loss_curve_) == clf.n_iter_ == 30
    assert clf.t_ == 30 * 2  # 300 samples in batches of min(200, 300): 2 steps per epoch


def test_more_classes_use_a_softmax():
    X, y = blobs(classes=(3, 5, 7, 9))
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(16,), max_iter=40, learning_rate=0.01, random_state=0).fit(X, y)
    assert clf.parameters_["W2"].shape == (4, 16)
    assert np.allclose(clf.predict_proba(X).sum(axis=1), 1)
    assert clf.score(X, y) > 0.9


def test_fit_is_the_model_function_with_the_same_options():
    # The estimator is a thin layer: its curve is fastdnn.model's (and so the reference's).
    X, y = blobs(n=120)
    clf = fastdnn.DNNClassifier(
        hidden_layer_sizes=(5, 4), optimizer="momentum", learning_rate=0.05, batch_size=32, max_iter=15,
        random_state=3, l2=0.1, init="deep",
    ).fit(X, y)
    Y = (y == "yes").astype(np.float64).reshape(1, -1)
    p_ref, c_ref = reference.model(
        X.T, Y, [8, 5, 4, 1], learning_rate=0.05, num_epochs=15, mini_batch_size=32, optimizer="momentum",
        lambd=0.1, seed=3,
    )
    # float64, 15 epochs: summation-order differences only (see test_options_equivalence).
    np.testing.assert_allclose(clf.loss_curve_, c_ref, rtol=1e-9)
    for key in p_ref:
        np.testing.assert_allclose(clf.parameters_[key], p_ref[key], rtol=1e-8, atol=1e-12)


def test_same_random_state_is_bit_identical_and_float32_works():
    X, y = blobs()
    a = fastdnn.DNNClassifier(max_iter=5, random_state=1, dtype="float32").fit(X, y)
    b = fastdnn.DNNClassifier(max_iter=5, random_state=1, dtype="float32").fit(X, y)
    assert a.parameters_.flat.dtype == np.float32
    assert np.array_equal(a.parameters_.flat, b.parameters_.flat)
    assert a.loss_curve_ == b.loss_curve_


def test_partial_fit_continues_like_fit_epoch_by_epoch():
    X, y = blobs(n=200)
    full = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=4, random_state=2).fit(X, y)
    inc = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=1, random_state=2)
    for _ in range(4):
        inc.partial_fit(X, y, classes=["no", "yes"])
    assert np.array_equal(inc.parameters_.flat, full.parameters_.flat)
    assert inc.loss_curve_ == full.loss_curve_


def test_warm_start_continues_where_fit_stopped():
    X, y = blobs(n=200)
    once = fastdnn.DNNClassifier(max_iter=6, random_state=4).fit(X, y)
    twice = fastdnn.DNNClassifier(max_iter=3, random_state=4, warm_start=True)
    twice.fit(X, y).fit(X, y)
    assert np.array_equal(twice.parameters_.flat, once.parameters_.flat)
    assert twice.n_iter_ == 6


def test_early_stopping_keeps_the_best_validation_parameters():
    X, y = blobs(n=400, seed=5)
    options = dict(hidden_layer_sizes=(16,), random_state=0)
    clf = fastdnn.DNNClassifier(max_iter=300, early_stopping=True, n_iter_no_change=5, **options).fit(X, y)
    scores = clf.validation_scores_
    best = int(np.argmax(scores))  # the first epoch reaching the best score
    assert clf.n_iter_ < 300 and best < len(scores) - 1  # training went on past the best epoch
    assert clf.best_validation_score_ == scores[best]
    # The documented split (fastdnn.labels.split_rows): a permutation drawn from random_state; its first
    # round(validation_fraction * n) samples are held out, the rest train in their original order.
    perm = np.random.default_rng(0).permutation(len(y))
    n_val = round(0.1 * len(y))
    train = np.sort(perm[n_val:])
    # The kept parameters are exactly those of a run stopped at the best epoch.
    stopped = fastdnn.DNNClassifier(max_iter=best + 1, **options).fit(X[train], y[train])
    np.testing.assert_array_equal(clf.parameters_.flat, stopped.parameters_.flat)
    assert clf.score(X[perm[:n_val]], y[perm[:n_val]]) == clf.best_validation_score_


def test_transfer_learning_keeps_frozen_layers_bit_identical():
    X, y = blobs(n=300, classes=("a", "b", "c"))
    source = fastdnn.DNNClassifier(hidden_layer_sizes=(12, 6), max_iter=20, random_state=0).fit(X, y)
    X2, y2 = blobs(n=300, classes=("u", "v"), seed=9)
    target = fastdnn.DNNClassifier.from_pretrained(source, keep_layers=1, hidden_layer_sizes=(12, 4), max_iter=10)
    target.fit(X2, y2)
    assert np.array_equal(target.parameters_["W1"], source.parameters_["W1"])
    assert np.array_equal(target.parameters_["b1"], source.parameters_["b1"])
    assert target.parameters_["W3"].shape == (1, 4)
    unfrozen = fastdnn.DNNClassifier.from_pretrained(source, keep_layers=1, freeze=False, hidden_layer_sizes=(12, 4))
    assert not np.array_equal(unfrozen.fit(X2, y2).parameters_["W1"], source.parameters_["W1"])


def test_cross_val_score_returns_one_score_per_fold():
    X, y = blobs(n=150)
    scores = fastdnn.cross_val_score(fastdnn.DNNClassifier(max_iter=20, learning_rate=0.01, random_state=0), X, y, k=3)
    assert scores.shape == (3,) and (scores > 0.8).all()


def test_get_params_and_set_params_follow_scikit_learn():
    clf = fastdnn.DNNClassifier(max_iter=7)
    assert clf.get_params()["max_iter"] == 7
    assert clf.set_params(l2=0.5).l2 == 0.5
    with pytest.raises(ValueError, match="invalid parameter 'nope'"):
        clf.set_params(nope=1)


def test_works_inside_scikit_learn_tools():
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GridSearchCV, KFold

    X, y = blobs(n=120)
    grid, cv = {"l2": [0.0, 5.0]}, KFold(2)
    search = GridSearchCV(fastdnn.DNNClassifier(max_iter=5, random_state=0), grid, cv=cv, scoring="neg_log_loss")
    search.fit(X, y)
    # Each candidate's scores are those of the same options fitted by hand on the same folds, so
    # clone, set_params, fit and predict_proba all did their part; the two candidates differ.
    for i, l2 in enumerate(grid["l2"]):
        for k, (train, test) in enumerate(cv.split(X)):
            clf = fastdnn.DNNClassifier(max_iter=5, random_state=0, l2=l2).fit(X[train], y[train])
            expected = -log_loss(y[test], clf.predict_proba(X[test]), labels=clf.classes_)
            assert search.cv_results_[f"split{k}_test_score"][i] == pytest.approx(expected, rel=1e-12)
    assert search.cv_results_["split0_test_score"][0] != search.cv_results_["split0_test_score"][1]
    assert sklearn.base.clone(fastdnn.DNNClassifier(l2=0.3)).l2 == 0.3


def test_digits_held_out_accuracy_matches_a_tuned_mlp():
    # The bar: about 97% on a held-out quarter, as a well-tuned MLP gets
    # (scikit-learn's MLPClassifier reaches 0.98 on this split).
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn is in the test extra")
    from sklearn.model_selection import train_test_split

    X, y = datasets.load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(128, 64), max_iter=100, init="he", random_state=0).fit(Xtr, ytr)
    assert clf.score(Xte, yte) >= 0.97


def test_cat_data_reproduces_the_course_with_course_options(cat_data):
    clf = fastdnn.DNNClassifier(
        hidden_layer_sizes=(20, 7, 5), optimizer="gd", learning_rate=0.0075, batch_size=None, max_iter=2500,
        init="deep", random_state=1,
    ).fit(cat_data.train_x.T, cat_data.train_y.ravel())
    # The course notebook's published numbers (external): cost 0.771749 at iteration 0 ... train 0.9856, test 0.8.
    assert clf.loss_curve_[0] == pytest.approx(0.771749, abs=1e-6)
    assert clf.score(cat_data.train_x.T, cat_data.train_y.ravel()) == pytest.approx(206 / 209)
    assert clf.score(cat_data.test_x.T, cat_data.test_y.ravel()) == pytest.approx(40 / 50)


BAD = [
    (dict(optimizer="sgdd"), r"unknown optimizer 'sgdd'; choose one of"),
    (dict(activation="swish"), r"unknown activation 'swish'"),
    (dict(batch_size=0), r"batch_size must be a positive integer"),
    (dict(batch_size=1000), r"batch_size must be between 1 and the number of training samples 300"),
    (dict(l2=-1.0), r"l2 \(L2 strength\) must be a finite number >= 0"),
    (dict(learning_rate=0), r"learning_rate must be a finite positive number"),
    (dict(validation_fraction="x"), r"validation_fraction must be a number in \(0, 1\), got 'x'"),
    (dict(validation_fraction=float("nan")), r"validation_fraction must be a number in \(0, 1\), got nan"),
    (dict(validation_fraction=1.0, early_stopping=True), r"validation_fraction must be a number in \(0, 1\)"),
    (dict(tol=float("nan")), r"tol must be a finite number >= 0, got nan"),
    (dict(tol=-1), r"tol must be a finite number >= 0"),
    (dict(n_iter_no_change=0), r"n_iter_no_change must be a positive integer"),
    (dict(random_state=-1), r"random_state must be an integer in \[0, 2\*\*32 - 1\], got -1"),
    (dict(random_state=1.5), r"random_state must be an integer"),
    (dict(hidden_layer_sizes=(99999999999999999999,)), r"hidden_layer_sizes must hold integers in \[1, 2\*\*31 - 1\]"),
    (dict(hidden_layer_sizes=(8, 0)), r"hidden_layer_sizes must hold integers in \[1, 2\*\*31 - 1\], got 0"),
    (dict(hidden_layer_sizes="8"), r"hidden_layer_sizes must be a sequence of positive integers"),
    (dict(threads=0), r"threads must be a positive integer"),
    (dict(dtype="int8"), r"dtype must be float32 or float64"),
    (dict(early_stopping="yes"), r"early_stopping must be True or False"),
    (dict(frozen_layers=-1), r"frozen_layers must be a non-negative integer, got -1"),
    (dict(frozen_layers=float("nan")), r"frozen_layers must be a non-negative integer, got nan"),
    (dict(frozen_layers=2, hidden_layer_sizes=(5,)), r"frozen_layers must be in \[0, 1\]"),
]


@pytest.mark.parametrize("params, message", BAD)
def test_bad_options_raise_value_errors_naming_them(params, message):
    X, y = blobs()
    with pytest.raises(ValueError, match=message):
        fastdnn.DNNClassifier(max_iter=1, **params).fit(X, y)


def test_bad_data_raise_clear_errors():
    X, y = blobs()
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0)
    with pytest.raises(ValueError, match="one class"):
        clf.fit(X, np.full(len(y), "no"))
    Xnan = X.copy()
    Xnan[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        clf.fit(Xnan, y)
    with pytest.raises(fastdnn.NotFittedError, match="not fitted yet"):
        fastdnn.DNNClassifier().predict(X)
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but DNNClassifier is expecting 8 features as input"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="y must be 1-D"):
        fastdnn.DNNClassifier().fit(X, y[:10])


def test_data_on_disk_of_another_width_is_refused_naming_the_file_for_every_use(tmp_path):
    X, y = blobs()
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0).fit(X, y)
    np.save(tmp_path / "narrow.npy", np.ascontiguousarray(X[:, :5]))
    np.save(tmp_path / "narrow.labels.npy", y)
    message = r"narrow.npy .*has 5 features, but this classifier was fitted with 8"
    for use in (clf.predict, clf.predict_proba, lambda path: clf.score(path, None),
                lambda path: clf.set_params(warm_start=True).fit(path, None)):
        with pytest.raises(ValueError, match=message):
            use(str(tmp_path / "narrow.npy"))


def test_values_held_as_objects_that_are_not_numbers_are_named_with_where_they_are():
    """A pandas frame with a missing value (pd.NA, which float() refuses), or an object array holding a dict
    or text, is one TypeError naming the value and its index; float()'s own words stay (scikit-learn's
    check_dtype_object looks for them)."""
    X, y = blobs()
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0).fit(X, y)
    for value in ({"foo": "bar"}, "abc", [1, 2]):
        bad = X.astype(object)
        bad[4, 6] = value
        for call in (lambda: fastdnn.DNNClassifier(max_iter=1).fit(bad, y), lambda: clf.predict(bad)):
            with pytest.raises(TypeError, match=r"X must hold numbers, but its value at index \(4, 6\) of "
                                                r"\(n_samples, n_features\) is .*(argument must be|could not convert)"):
                call()
    assert np.array_equal(clf.predict(X.astype(object)), clf.predict(X))  # numbers as objects are numbers


def test_a_pandas_missing_value_is_named_with_where_it_is():
    pd = pytest.importorskip("pandas", reason="pandas is optional: the check only runs where it is installed")
    X, y = blobs()
    frame = pd.DataFrame(X).astype("Float64")
    frame.iloc[7, 2] = pd.NA
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0)
    with pytest.raises(TypeError, match=r"X must hold numbers, but its value at index \(7, 2\) of \(n_samples, "
                                        r"n_features\) is <NA> \(NAType\).*; convert or impute it first") as excinfo:
        clf.fit(frame, y)
    assert "\n" not in str(excinfo.value)
    clf.fit(X, y)
    with pytest.raises(TypeError, match=r"index \(7, 2\)"):
        clf.predict_proba(frame)


def overflowing(X, y):
    """A fitted two-unit relu network whose output is 1e200 (1e200 x0) - 1e200 (1e200 x0), exactly 0 but Inf - Inf
    in float64 (NaN, or -Inf with FMA: a confident wrong 0) for every example with x0 > 0; for the others the
    output bias alone."""
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(2,), max_iter=1, random_state=0).fit(X, y)
    p = clf.parameters_
    p["W1"][...] = 0
    p["W1"][:, 0] = 1e200
    p["b1"][...] = 0
    p["W2"][...] = [[1e200, -1e200]]
    return clf


def test_activations_that_overflow_are_refused_naming_the_example_not_returned_as_nan():
    from fastdnn.errors import OutputOverflowError

    X, y = blobs()
    clf = overflowing(X, y)
    first = int(np.argmax(X[:, 0] > 0))
    for call in (clf.predict_proba, clf.predict, lambda X: clf.score(X, y),
                 lambda X: clf.score(X, y, rows=np.arange(first, len(X)))):
        with pytest.raises(OutputOverflowError, match=rf"on example {first} the network's activations reach beyond "
                                                      r"what float64 holds") as exc:
            call(X)
        assert exc.value.row == first
    negative = X[X[:, 0] <= 0]
    assert np.isfinite(clf.predict_proba(negative)).all() and len(clf.predict(negative)) == len(negative)
    # float32 overflows far sooner: 1e20 (1e20 x0) is beyond its 3.4e38.
    small = fastdnn.DNNClassifier(hidden_layer_sizes=(2,), max_iter=1, random_state=0, dtype="float32").fit(X, y)
    small.parameters_["W1"][...] = 0
    small.parameters_["W1"][:, 0] = 1e20
    small.parameters_["W2"][...] = [[1e20, -1e20]]
    with pytest.raises(OutputOverflowError, match=rf"on example {first} .* what float32 holds"):
        small.predict_proba(X)


def test_divergence_names_the_epoch_and_keeps_finite_parameters():
    X, y = blobs()
    clf = fastdnn.DNNClassifier(
        hidden_layer_sizes=(8,), optimizer="gd", learning_rate=1e6, max_iter=30, random_state=0, batch_size=None,
    )
    with pytest.raises(FloatingPointError, match=r"at epoch \d+.*smaller learning_rate"):
        clf.fit(X * 1e3, y)
    assert np.isfinite(clf.parameters_.flat).all()


def test_continuous_targets_are_refused_as_scikit_learn_does():
    X, _ = blobs()
    y = np.random.default_rng(0).random(len(X))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        fastdnn.DNNClassifier(max_iter=1).fit(X, y)
    # Whole-valued floats are class labels.
    clf = fastdnn.DNNClassifier(max_iter=1, random_state=0).fit(X, (y > 0.5) * 2.0)
    assert clf.classes_.tolist() == [0.0, 2.0]


TRAINING_CHANGES = {
    "learning_rate": 0.5, "optimizer": "momentum", "batch_size": 32, "l2": 1.0, "beta1": 0.5, "beta2": 0.9,
    "epsilon": 1e-2,
}


@pytest.mark.parametrize("name, value", TRAINING_CHANGES.items(), ids=TRAINING_CHANGES.keys())
def test_warm_start_trains_with_the_hyperparameters_set_since(name, value):
    """set_params between warm fits reaches the next fit: as if the estimator had been built with it."""
    X, y = blobs(n=200)
    first = dict(max_iter=3, random_state=4, warm_start=True, optimizer="adam")
    changed = fastdnn.DNNClassifier(**first).fit(X, y).set_params(**{name: value}).fit(X, y)
    unchanged = fastdnn.DNNClassifier(**first).fit(X, y).fit(X, y)
    assert not np.array_equal(changed.parameters_.flat, unchanged.parameters_.flat)


@pytest.mark.parametrize(
    "name, value", [("hidden_layer_sizes", (7,)), ("activation", "tanh"), ("loss", "mse"), ("dtype", "float32")]
)
def test_warm_start_refuses_a_changed_architecture_and_predicts_with_the_trained_one(name, value):
    X, y = blobs(n=200)
    clf = fastdnn.DNNClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=4, warm_start=True).fit(X, y)
    proba = clf.predict_proba(X)
    clf.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"architecture changed \\({name} "):
        clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)  # still the trained network


def test_output_encoding_a_two_way_softmax_for_two_classes(tmp_path):
    """output="softmax" encodes two classes as a two-unit softmax (the course's alternative to one sigmoid unit):
    the network, the probabilities, the saved file and warm starts all keep it; one sigmoid unit cannot encode
    three classes."""
    from fastdnn import io as fio
    from fastdnn.estimator import DNNClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 5))
    y = np.where(X[:, 0] + 0.3 * rng.standard_normal(120) > 0, "cat", "dog")
    est = DNNClassifier(hidden_layer_sizes=(6,), output="softmax", learning_rate=0.05, max_iter=100, random_state=0).fit(X, y)
    assert est.network_["output"] == "softmax" and est.parameters_["W2"].shape == (2, 6)
    P = est.predict_proba(X)
    assert P.shape == (120, 2) and np.allclose(P.sum(axis=1), 1)
    assert est.score(X, y) > 0.8
    assert list(est.predict(X[:5])) == [est.classes_[i] for i in np.argmax(P[:5], axis=1)]
    fio.save_model(est, tmp_path / "m.npz")
    again = DNNClassifier.load(tmp_path / "m.npz")
    assert again.output == "softmax" and np.array_equal(again.predict_proba(X), P)
    sigmoid = DNNClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    assert sigmoid.parameters_["W2"].shape == (1, 6)
    with pytest.raises(ValueError, match=r"architecture changed \(output 'softmax' -> 'sigmoid'\)"):
        est.set_params(output="sigmoid", warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="output='sigmoid' is one unit, which encodes two classes; these labels have 3"):
        DNNClassifier(output="sigmoid", max_iter=2).fit(X, np.arange(120) % 3)


def test_scikit_learns_estimator_checks_all_pass():
    """check_estimator's 63 checks, sample and class weights' among them (scikit-learn is a test extra): the not-fitted error and the column-vector
    warning are scikit-learn's classes when it is imported, object arrays of numbers are accepted, complex,
    sparse, empty and 1-D inputs are refused in the words the checks look for, and the estimator pickles."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from fastdnn.estimator import DNNClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(DNNClassifier(max_iter=200), on_fail=None)
    failed = [(r["check_name"], str(r["exception"]).splitlines()[0]) for r in results if r["status"] == "failed"]
    assert len(results) >= 63 and failed == []
