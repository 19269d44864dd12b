"""pandas DataFrames as X for DNNClassifier and DNNRegressor, as scikit-learn takes them.

Held here: a frame trains as its array does (bit for bit); ``feature_names_in_`` is set only when every column
name is text (an object array, scikit-learn's), never for a frame's default integer names; a frame of other
columns at predict, score, a warm fit or a later partial_fit is one ValueError naming the unexpected and the
missing columns; a plain array after fitting with names (and the converse) warns in scikit-learn's own words;
the names go into model files (an optional entry: older files without it still load) and the ONNX input's
documentation; and fastdnn never imports pandas itself.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastdnn

pd = pytest.importorskip("pandas", reason="pandas is optional: these tests run where it is installed (a test extra)")

NAMES = ["age", "height", "weight", "income", "score"]


def problem(estimator, m=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, len(NAMES)))
    y = X[:, 0] - X[:, 1] ** 2 if estimator is fastdnn.DNNRegressor else np.where(X[:, 0] > 0, "yes", "no")
    return X, y


ESTIMATORS = [pytest.param(fastdnn.DNNClassifier, id="classifier"), pytest.param(fastdnn.DNNRegressor, id="regressor")]


def fitted(estimator, frame=True, **options):
    X, y = problem(estimator)
    est = estimator(hidden_layer_sizes=(6,), max_iter=3, random_state=0, **options)
    return est.fit(pd.DataFrame(X, columns=NAMES) if frame else X, y), X, y


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_a_frame_trains_as_its_array_and_keeps_its_column_names(estimator):
    est, X, y = fitted(estimator)
    plain = estimator(hidden_layer_sizes=(6,), max_iter=3, random_state=0).fit(X, y)
    assert np.array_equal(est.parameters_.flat, plain.parameters_.flat)
    assert est.n_features_in_ == len(NAMES)
    assert isinstance(est.feature_names_in_, np.ndarray) and est.feature_names_in_.dtype == object
    assert est.feature_names_in_.tolist() == NAMES
    assert not hasattr(plain, "feature_names_in_")
    frame = pd.DataFrame(X, columns=NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same columns: no warning
        assert np.array_equal(est.predict(frame), plain.predict(X))
        assert est.score(frame, y) == plain.score(X, y)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_names_are_kept_as_scikit_learn_keeps_them(estimator):
    """Integer column names (a frame's default) are not feature names; text mixed with other names is a TypeError,
    scikit-learn's rule; a refit on an array forgets the names."""
    X, y = problem(estimator)
    est = estimator(max_iter=1, random_state=0).fit(pd.DataFrame(X), y)
    assert not hasattr(est, "feature_names_in_") and est.n_features_in_ == len(NAMES)
    with pytest.raises(TypeError, match=r"X's column names mix text with int; feature names are kept only when all "
                                        r"are text") as info:
        estimator(max_iter=1).fit(pd.DataFrame(X, columns=["a", "b", 3, 4, 5]), y)
    assert "\n" not in str(info.value)
    est.fit(pd.DataFrame(X, columns=NAMES), y)
    assert est.feature_names_in_.tolist() == NAMES
    est.fit(X, y)
    assert not hasattr(est, "feature_names_in_")


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("columns, message", [
    (NAMES[::-1], r"\(its columns are those seen at fit in another order; reorder them as at fit\)"),
    (NAMES[:4] + ["shoe"], r"\(unexpected 'shoe'; missing 'score'\)"),
    (NAMES[:3], r"\(missing 'income', 'score'\)"),
    (NAMES + ["extra"], r"\(unexpected 'extra'\)"),
])
def test_a_frame_of_other_columns_is_refused_naming_them(estimator, columns, message):
    est, X, y = fitted(estimator)
    values = np.resize(X, (len(X), len(columns)))
    frame = pd.DataFrame(values, columns=columns)
    calls = [est.predict, lambda f: est.score(f, y)]
    if estimator is fastdnn.DNNClassifier:
        calls.append(est.predict_proba)
    for call in calls:
        with pytest.raises(ValueError, match=r"^The feature names should match those that were passed during fit: X's "
                                             r"columns are not those " + estimator.__name__ + " was fitted with "
                                             + message) as info:
            call(frame)
        assert "\n" not in str(info.value)
    warm = estimator(hidden_layer_sizes=(6,), max_iter=1, random_state=0, warm_start=True)
    warm.fit(pd.DataFrame(X, columns=NAMES), y)
    with pytest.raises(ValueError, match="The feature names should match"):
        warm.fit(frame, y)
    partial = estimator(hidden_layer_sizes=(6,), random_state=0)
    first = (dict(classes=["no", "yes"]) if estimator is fastdnn.DNNClassifier else {})
    partial.partial_fit(pd.DataFrame(X, columns=NAMES), y, **first)
    with pytest.raises(ValueError, match="The feature names should match"):
        partial.partial_fit(frame, y)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_names_on_one_side_only_warn_in_scikit_learns_words(estimator):
    """scikit-learn's own estimators warn these words (checked against LinearRegression's, its class name aside)."""
    sklearn = pytest.importorskip("sklearn", reason="scikit-learn is in the test extra")  # noqa: F841
    from sklearn.linear_model import LinearRegression

    X, y = problem(fastdnn.DNNRegressor)
    theirs = []
    for fit_X, predict_X in ((pd.DataFrame(X, columns=NAMES), X), (X, pd.DataFrame(X, columns=NAMES))):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            LinearRegression().fit(fit_X, y).predict(predict_X)
        theirs.append([str(w.message) for w in seen if w.category is UserWarning])
    ours = []
    named, X, y = fitted(estimator)
    unnamed = fitted(estimator, frame=False)[0]
    for est, predict_X in ((named, X), (unnamed, pd.DataFrame(X, columns=NAMES))):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            est.predict(predict_X)
        ours.append([str(w.message) for w in seen if w.category is UserWarning])
        assert [w.filename for w in seen] == [__file__]  # the warning points at the caller's line
    assert [[m.replace(estimator.__name__, "LinearRegression") for m in messages] for messages in ours] == theirs
    assert ours[0] == [f"X does not have valid feature names, but {estimator.__name__} was fitted with feature names"]


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_model_files_keep_the_names_and_older_files_without_them_load(estimator, tmp_path):
    est, X, y = fitted(estimator)
    est.save(tmp_path / "m.npz")
    loaded = fastdnn.load_model(tmp_path / "m.npz")
    assert loaded.feature_names_in_.tolist() == NAMES and loaded.feature_names_in_.dtype == object
    with pytest.raises(ValueError, match=r"unexpected 'shoe'"):
        loaded.predict(pd.DataFrame(X, columns=NAMES[:4] + ["shoe"]))
    with np.load(tmp_path / "m.npz") as f:
        assert f["feature_names"].tolist() == NAMES
        older = {k: f[k] for k in f.files if k != "feature_names"}  # as a file written before the entry
    np.savez(tmp_path / "older.npz", **older)
    old = fastdnn.load_model(tmp_path / "older.npz")
    assert not hasattr(old, "feature_names_in_")
    assert np.array_equal(old.predict(X), est.predict(pd.DataFrame(X, columns=NAMES)))
    with np.load(tmp_path / "m.npz") as f:
        bad = {**{k: f[k] for k in f.files}, "feature_names": np.array(NAMES[:2])}
    np.savez(tmp_path / "bad.npz", **bad)
    with pytest.raises(ValueError, match=r"bad\.npz: is corrupted: feature_names has shape \(2,\)"):
        fastdnn.load_model(tmp_path / "bad.npz")


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_the_onnx_input_documents_the_columns(estimator, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx (a test extra)")
    est = fitted(estimator)[0]
    model = est.to_onnx()
    (given,) = model.graph.input
    assert given.doc_string == "the 5 features, as the columns it was fitted on: " + ", ".join(NAMES)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["feature_names"] == '["age", "height", "weight", "income", "score"]'
    plain = fitted(estimator, frame=False)[0].to_onnx()
    assert plain.graph.input[0].doc_string == "the 5 features" and "feature_names" not in {
        p.key for p in plain.metadata_props}


def test_fastdnn_never_imports_pandas_itself():
    """pandas stays optional: fitting, predicting and saving both estimators on arrays loads no pandas."""
    script = ("import sys, numpy as np, fastdnn\n"
              "X = np.random.default_rng(0).standard_normal((40, 3)); y = X[:, 0]\n"
              "fastdnn.DNNRegressor(max_iter=1).fit(X, y).predict(X)\n"
              "fastdnn.DNNClassifier(max_iter=1).fit(X, y > 0).predict(X)\n"
              "import fastdnn.base, fastdnn.estimator, fastdnn.regressor, fastdnn.io, fastdnn.export, fastdnn.cli\n"
              "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
