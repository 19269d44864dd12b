"""fastdnn.io: model files round-trip exactly, saves are atomic, checkpoints resume bit for bit,
and every damaged or foreign file is refused with one line naming it."""

import json
import os
import warnings
import zipfile

import numpy as np
import numpy.testing as npt
import pytest

from fastdnn import DNNClassifier, NotFittedError
from fastdnn import io as fio
from fastdnn import files
from fastdnn.errors import ModelFileError
from fastdnn.estimator import load_checkpoint, load_model
from fastdnn.io import save_checkpoint, save_model


def problem(m=300, n=6, classes=2, seed=0, labels="int"):
    """A small nonlinear problem: X (m, n) float64 and labels of the requested kind."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    score = np.tanh(X[:, 0] * X[:, 1]) + 0.5 * X[:, 2]
    index = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
    if labels == "text":
        return X, np.array(["ant", "bee", "cat", "dog", "eel"])[index]
    if labels == "float":
        # Whole-valued floats: scikit-learn (and fastdnn) read other floats as a continuous target.
        return X, index * 2.0 - 1.0
    return X, index


def fitted(X, y, **options):
    params = dict(hidden_layer_sizes=(8, 5), max_iter=4, batch_size=32, random_state=3)
    params.update(options)
    return DNNClassifier(**params).fit(X, y)


def assert_names_file(excinfo, path):
    message = str(excinfo.value)
    assert os.fspath(path) in message and "\n" not in message


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize(
    "classes, labels, dtype",
    [(2, "int", np.float64), (2, "text", np.float32), (3, "int", np.float32), (5, "text", np.float64), (2, "float", np.float64)],
    ids=["binary-f64", "binary-text-f32", "softmax-f32", "softmax-text-f64", "float-labels"],
)
def test_saved_model_predicts_exactly_as_the_original(tmp_path, classes, labels, dtype):
    X, y = problem(classes=classes, labels=labels)
    est = fitted(X.astype(dtype), y, activation="tanh", optimizer="momentum", l2=0.01)
    path = tmp_path / "model.npz"
    save_model(est, path)
    loaded = load_model(path)
    npt.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
    npt.assert_array_equal(loaded.predict(X), est.predict(X))
    npt.assert_array_equal(loaded.classes_, est.classes_)
    assert loaded.classes_.dtype == est.classes_.dtype
    assert loaded.get_params() == est.get_params()
    assert loaded.loss_curve_ == est.loss_curve_ and loaded.n_iter_ == est.n_iter_ and loaded.t_ == est.t_
    assert loaded.parameters_.flat.dtype == dtype
    npt.assert_array_equal(loaded.parameters_.flat, est.parameters_.flat)


def test_model_file_is_plain_arrays_readable_without_pickle(tmp_path):
    X, y = problem(labels="text")
    est = fitted(X, y)
    path = tmp_path / "model.npz"
    save_model(est, path)
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    assert str(contents["format"]) == "fastdnn-model"
    assert int(contents["format_version"]) == fio.FORMAT_VERSION
    npt.assert_array_equal(contents["layer_sizes"], [6, 8, 5, 1])
    assert contents["activations"].tolist() == ["relu", "relu", "sigmoid"]
    assert contents["classes"].dtype.kind == "U" and contents["classes"].tolist() == ["ant", "bee"]
    assert str(contents["dtype"]) == "float64"
    options = json.loads(str(contents["options"]))
    assert options["hidden_layer_sizes"] == [8, 5] and options["random_state"] == 3
    npt.assert_array_equal(contents["W2"], est.parameters_["W2"])
    assert contents["b3"].shape == (1, 1)


def test_options_given_as_numpy_values_are_saved_as_plain_json(tmp_path):
    X, y = problem()
    est = fitted(X, y, dtype=np.float32, random_state=np.int64(3), learning_rate=np.float64(0.01))
    save_model(est, tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.dtype == "float32" and loaded.random_state == 3 and loaded.learning_rate == 0.01


def test_unfitted_estimator_and_unsaveable_labels_are_refused(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(DNNClassifier(), tmp_path / "m.npz")
    X, y = problem()
    est = fitted(X, y)
    est.classes_ = np.array([object(), object()], dtype=object)
    with pytest.raises(ValueError, match="without pickle"):
        save_model(est, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------- atomic writes


def test_a_failure_mid_save_leaves_the_old_model_intact(tmp_path, monkeypatch):
    X, y = problem()
    path = tmp_path / "model.npz"
    save_model(fitted(X, y), path)
    before = path.read_bytes()
    real_savez = np.savez

    def crash_half_way(file, **arrays):
        real_savez(file, **arrays)
        file.truncate(file.tell() // 2)  # half a file is on disk when the "crash" comes
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fio.np, "savez", crash_half_way)
    with pytest.raises(OSError, match="No space left"):
        save_model(fitted(X, y, random_state=4), path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]  # no temporary file left behind
    monkeypatch.undo()
    load_model(path)


def test_an_interrupt_mid_save_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(file, **arrays):
        file.write(b"PK\x03\x04partial")
        raise KeyboardInterrupt

    X, y = problem()
    est = fitted(X, y)
    monkeypatch.setattr(fio.np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_model(est, tmp_path / "model.npz")
    assert os.listdir(tmp_path) == []


def test_new_files_get_the_umask_permissions_and_replaced_files_keep_theirs(tmp_path):
    X, y = problem()
    est = fitted(X, y)
    old = os.umask(0o027)
    try:
        save_model(est, tmp_path / "new.npz")
        assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640
        os.chmod(tmp_path / "new.npz", 0o604)
        save_model(est, tmp_path / "new.npz")
        assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    "options",
    [dict(optimizer="adam", batch_size=32), dict(optimizer="momentum", batch_size=50), dict(optimizer="gd", batch_size=None),
     dict(optimizer="adam", batch_size="auto", dtype="float32", l2=0.1)],
    ids=["adam-minibatch", "momentum-ragged-last-batch", "gd-full-batch", "adam-auto-f32-l2"],
)
def test_resuming_a_checkpoint_continues_bit_for_bit(tmp_path, options):
    X, y = problem(m=230, classes=3)
    whole = fitted(X, y, max_iter=7, **options)

    first = fitted(X, y, max_iter=3, **options)
    path = tmp_path / "ckpt.npz"
    save_checkpoint(first, path, run={"note": "mine", "epoch": 3}, arrays={"extra": np.arange(4)})
    restored = load_checkpoint(path)
    assert restored.run == {"note": "mine", "epoch": 3}
    npt.assert_array_equal(restored.arrays["extra"], np.arange(4))
    resumed = restored.estimator
    assert resumed.training_state_.rng.bit_generator.state == first.training_state_.rng.bit_generator.state
    assert resumed.t_ == first.t_
    resumed.set_params(warm_start=True, max_iter=4)
    resumed.fit(X, y)

    npt.assert_array_equal(resumed.parameters_.flat, whole.parameters_.flat)
    npt.assert_array_equal(resumed.training_state_.optimizer_state, whole.training_state_.optimizer_state)
    assert resumed.loss_curve_ == whole.loss_curve_
    assert resumed.t_ == whole.t_ and resumed.n_iter_ == whole.n_iter_ == 7


def test_a_loaded_model_is_a_checkpoint_only_if_saved_as_one(tmp_path):
    X, y = problem()
    est = fitted(X, y)
    save_model(est, tmp_path / "model.npz")
    save_checkpoint(est, tmp_path / "ckpt.npz")
    with pytest.raises(ModelFileError, match="is a fastdnn-model file, not a fastdnn-checkpoint file") as excinfo:
        load_checkpoint(tmp_path / "model.npz")
    assert_names_file(excinfo, tmp_path / "model.npz")
    # A checkpoint also loads as the model at its epoch.
    npt.assert_array_equal(load_model(tmp_path / "ckpt.npz").predict_proba(X), est.predict_proba(X))
    assert fio.file_format(tmp_path / "model.npz") == "fastdnn-model"
    assert fio.file_format(tmp_path / "ckpt.npz") == "fastdnn-checkpoint"


# ---------------------------------------------------------------------------- damaged and foreign files


@pytest.fixture
def model_file(tmp_path):
    X, y = problem()
    path = tmp_path / "model.npz"
    save_model(fitted(X, y), path)
    return path


def rewrite(path, change):
    """The archive at ``path`` with ``change(dict of arrays)`` applied, written back."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(path, **arrays)


# JSON nested far deeper than Python's recursion limit lets its parser go.
DEEP = "[" * 100_000 + "]" * 100_000


def with_option(arrays, **changes):
    """The archive's options text with ``changes`` made (Python's json writes NaN as NaN)."""
    return np.array(json.dumps({**json.loads(str(arrays["options"])), **changes}))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is truncated or corrupted"),
        (lambda p: p.write_bytes(p.read_bytes()[:-30]), "is truncated or corrupted"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
        (lambda p: p.write_text("W1,b1\n1,2\n"), "not a fastdnn model: the file is not an .npz archive"),
        (lambda p: np.savez(p, X=np.zeros((2, 2)), y=np.zeros(2)), r"not a fastdnn model \(no 'format' marker; it holds: X, y\)"),
        (lambda p: rewrite(p, lambda a: a.update(format=np.array("other-format"))), "format marker is 'other-format'"),
        (lambda p: rewrite(p, lambda a: a.update(format_version=np.array(99))), "format version 99.*reads versions up to 2: upgrade fastdnn"),
        (lambda p: rewrite(p, lambda a: a.update(W2=np.zeros((3, 3)))), r"corrupted: W2 declares shape \(3, 3\)"),
        (lambda p: rewrite(p, lambda a: a.pop("b1")), "corrupted: the entry 'b1' is missing"),
        (lambda p: rewrite(p, lambda a: a.update(options=np.array("{not json"))), "options are not valid JSON"),
        (lambda p: rewrite(p, lambda a: a.update(options=np.array('{"colour": 1}'))), "options this fastdnn does not know: colour"),
        (lambda p: rewrite(p, lambda a: a.update(classes=np.array([0, 1, 2]))), "3 classes for an output layer of 1 units"),
        (lambda p: rewrite(p, lambda a: a.update(activations=np.array(["tanh", "tanh", "sigmoid"]))), "activations"),
        (lambda p: rewrite(p, lambda a: a.update(W1=np.full_like(a["W1"], np.nan))), "corrupted: W1 holds NaN or Inf"),
        (lambda p: rewrite(p, lambda a: a.update(b2=np.full_like(a["b2"], -np.inf))), "corrupted: b2 holds NaN or Inf"),
        (lambda p: rewrite(p, lambda a: a.update(options=np.array('{"x": ' + DEEP + "}"))),
         "its options are JSON nested too deeply"),
        (lambda p: rewrite(p, lambda a: a.update(options=with_option(a, activation=[["relu"]]))),
         "its option 'activation' is a nested JSON value"),
        (lambda p: rewrite(p, lambda a: a.update(state=np.array('{"step": ' + DEEP + "}"))),
         r"model.npz: is corrupted: its training state values are JSON nested too deeply for any fastdnn file$"),
        (lambda p: rewrite(p, lambda a: a.update(rng_state=np.array(DEEP))), "training state are inconsistent"),
        (lambda p: rewrite(p, lambda a: a.update(options=with_option(a, frozen_layers=float("nan")))),
         "frozen_layers must be a non-negative integer, got nan"),
    ],
    ids=["truncated-half", "truncated-tail", "empty", "text", "data-npz", "foreign-marker", "newer-version",
         "wrong-shape", "missing-entry", "bad-json", "unknown-option", "classes-mismatch", "activations-mismatch",
         "nan-W1", "inf-b2", "deep-options", "nested-option", "deep-state", "deep-rng-state", "nan-frozen-layers"],
)
def test_damaged_or_foreign_model_files_are_refused_in_one_line(model_file, damage, match):
    damage(model_file)
    with pytest.raises(ModelFileError, match=match) as excinfo:
        load_model(model_file)
    assert_names_file(excinfo, model_file)
    assert fio.file_format(model_file) in (None, "fastdnn-model")


def test_a_flipped_byte_inside_the_parameters_is_caught_by_the_zip_checksum(model_file):
    with zipfile.ZipFile(model_file) as z:
        info = z.getinfo("W1.npy")
    data = bytearray(model_file.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0x01  # inside W1's data, past its .npy header
    model_file.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or corrupted.*CRC") as excinfo:
        load_model(model_file)
    assert_names_file(excinfo, model_file)


def test_a_missing_model_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError) as excinfo:
        load_model(tmp_path / "absent.npz")
    assert excinfo.value.filename == os.fspath(tmp_path / "absent.npz")


def test_a_saved_model_records_the_architecture_it_was_trained_with(tmp_path):
    X, y = problem()
    est = fitted(X, y)
    est.set_params(activation="tanh", hidden_layer_sizes=(3,))  # after fit: changes nothing trained
    path = tmp_path / "m.npz"
    save_model(est, path)
    loaded = load_model(path)
    assert loaded.activation == "relu" and loaded.hidden_layer_sizes == (8, 5)
    np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))


@pytest.mark.parametrize("classes", [[0, 0], [1, 0], ["dog", "cat"]])
def test_a_model_whose_classes_are_not_distinct_and_sorted_is_refused(tmp_path, classes):
    """The output's index k means classes[k] in np.unique's order: [0, 0] would predict 0 for everything and
    [1, 0] flip every label, silently."""
    X, y = problem()
    est = DNNClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, y)
    fio.save_model(est, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["classes"] = np.array(classes)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ModelFileError, match=r"bad.npz: is corrupted: its classes .* are not distinct and sorted"):
        load_model(tmp_path / "bad.npz")


def test_a_model_saved_after_set_params_keeps_the_output_it_was_trained_with(tmp_path):
    from fastdnn import io as fio

    X, y = problem()
    est = DNNClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, output="softmax").fit(X, y)
    est.set_params(output="auto")
    fio.save_model(est, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert again.network_["output"] == "softmax" and np.array_equal(again.predict_proba(X), est.predict_proba(X))
    X3, y3 = problem(classes=3)
    three = DNNClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X3, y3).set_params(output="sigmoid")
    fio.save_model(three, tmp_path / "m3.npz")
    assert load_model(tmp_path / "m3.npz").output == "softmax"


def test_a_model_whose_entries_declare_more_than_its_layers_hold_is_refused_before_reading(tmp_path):
    """A few MB of zip can declare GB of zeros: every entry's .npy header is read first, W/b against the layer
    sizes, unknown entries refused, the total bounded, before anything is decompressed."""
    import time
    import tracemalloc

    X, y = problem()
    est = DNNClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    save_model(est, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)

    def crafted(name, **extra):
        path = tmp_path / name
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            for key, value in {**arrays, **extra}.items():
                with z.open(key + ".npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, value)
        return path

    huge = np.zeros((20_000, 6))  # 960 kB of zeros: compresses to almost nothing
    cases = [
        (crafted("w1.npz", W1=huge), r"W1 declares shape \(20000, 6\), but its layer sizes \[6, 8, 1\] give \(8, 6\)"),
        (crafted("zzz.npz", zzz=np.zeros(3)), r"an entry fastdnn does not write \('zzz.npy'\)"),
        (crafted("big.npz", loss_curve=np.zeros(10_000_000)), r"its entries declare [\d,]+ bytes, more than a model"),
    ]
    for path, match in cases:
        tracemalloc.start()
        t0 = time.perf_counter()
        with pytest.raises(ModelFileError, match=match):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20 and time.perf_counter() - t0 < 5  # nothing the size of the declared data


def test_a_full_disk_names_the_file_it_was_writing(tmp_path):
    """Disk full gave "[Errno 28] No space left on device" without a path: the message names the file, which
    is left as it was, and no temporary file stays."""
    import errno

    from fastdnn.cli.common import describe

    target = tmp_path / "m.npz"
    target.write_bytes(b"the old model")

    def full(f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as info:
        files.atomic_write(target, full)
    assert describe(info.value) == f"{target}: No space left on device; {target} was not written (it is as it was)"
    assert target.read_bytes() == b"the old model" and os.listdir(tmp_path) == ["m.npz"]


def test_a_full_disk_before_the_first_byte_names_the_file_too(tmp_path, monkeypatch):
    import errno
    import tempfile

    from fastdnn.cli.common import describe

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / ".m.npz.abc.tmp"))

    monkeypatch.setattr(tempfile, "mkstemp", full)
    with pytest.raises(OSError) as info:
        files.atomic_write(tmp_path / "m.npz", lambda f: f.write(b"x"))
    target = tmp_path / "m.npz"
    assert describe(info.value) == f"{target}: No space left on device; {target} was not written (it is as it was)"


# ---------------------------------------------------------------------------- models the commands refuse or adapt


def test_predict_and_evaluate_refuse_a_model_whose_activations_overflow_naming_it(model_file, capsys):
    """Huge finite weights pass every check of the file, but their activations overflow on the data: one line
    naming the model and the data, status 1, never NaN probabilities with status 0."""
    from fastdnn import cli

    X, y = problem()
    data = model_file.parent / "d.npz"
    np.savez(data, X=X, y=y)
    rewrite(model_file, lambda a: a.update(W1=a["W1"] * 1e200, W2=a["W2"] * 1e200))
    for command in (["predict", "--proba"], ["evaluate"]):
        assert cli.main([*command, str(model_file), str(data)]) == 1
        out, err = capsys.readouterr()
        assert "nan" not in out.lower()
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"{model_file}: on {data}, on example " in lines[0], err
        assert "activations reach beyond what float64 holds" in lines[0]


@pytest.mark.parametrize("threads", [1000, 10**30])
def test_a_model_saved_with_more_threads_than_here_is_capped_and_said_once(model_file, capsys, threads):
    from fastdnn import cli
    from fastdnn.threads import usable_cores

    X, y = problem()
    data = model_file.parent / "d.npz"
    np.savez(data, X=X, y=y)
    rewrite(model_file, lambda a: a.update(options=with_option(a, threads=threads)))
    assert load_model(model_file).threads == threads  # the file as saved: the command, not the loader, caps it
    for command in ("predict", "evaluate"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a raw Python warning fails the test
            assert cli.main([command, str(model_file), str(data)]) == 0
        err = capsys.readouterr().err
        cores = usable_cores()
        assert err == (f"note: {model_file} was saved with threads={threads}, more than the {cores} usable cores "
                       f"here; using {cores}\n")


# ---------------------------------------------------------------------------- older formats


def as_version_1(arrays, m, fraction, seed):
    """A version-2 checkpoint of ``fastdnn train`` as version 1 wrote the same state: the optimizer's step as
    the entry "step", early stopping's record in the command's run dict and its best parameters as the run
    array best_params, the data fingerprinted on the training split (the rows split_rows keeps)."""
    from fastdnn.data import fingerprint
    from fastdnn.labels import split_rows

    old = {k: v for k, v in arrays.items() if k not in ("state", "best_parameters", "validation_scores")}
    state, run = json.loads(str(arrays["state"])), json.loads(str(arrays["run"]))
    old["format_version"] = np.array(1)
    old["step"] = np.array(state["step"])
    old["run_best_params"] = arrays["best_parameters"]
    with np.load(run["data"]["path"]) as f:
        X, y = f["X"], f["y"]
    kept, _ = split_rows(m, fraction, seed)
    run["data"]["fingerprint"] = fingerprint(np.ascontiguousarray(X[kept]), y[kept])
    run.update(epoch=state["epoch"], best=state["best_score"], best_epoch=state["best_epoch"], stall=state["stall"],
               stopped=state["stopped"], scores=[float(s) for s in arrays["validation_scores"]])
    old["run"] = np.array(json.dumps(run))
    return old


def test_a_version_1_checkpoint_resumes_as_the_version_2_one_of_the_same_state(tmp_path, capsys):
    """Version 1 kept early stopping's record in the command's run dict: read, it becomes the training state's
    own fields (mid-run, as the command saved it), and the command's resumed run writes the model that resuming
    the version-2 checkpoint of the same state writes. Version 1's "step" entry was refused as one fastdnn
    does not write, so no version-1 checkpoint loaded."""
    from fastdnn import cli

    X, y = problem()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    train = ["train", "--data", str(tmp_path / "d.npz"), "--early-stopping", "--n-iter-no-change", "50", "--layers",
             "8", "--seed", "3", "--batch-size", "32", "--quiet"]
    assert cli.main([*train, "--epochs", "4", "--checkpoint-every", "2", "--out", str(tmp_path / "m.npz")]) == 0
    with np.load(tmp_path / "m.ckpt.npz") as f:
        current = dict(f)
    assert json.loads(str(current["state"]))["best_epoch"] is not None  # a record to carry over
    np.savez(tmp_path / "v1.ckpt.npz", **as_version_1(current, len(y), 0.1, 3))

    new, old = load_checkpoint(tmp_path / "m.ckpt.npz"), load_checkpoint(tmp_path / "v1.ckpt.npz")
    a, b = new.estimator.training_state_, old.estimator.training_state_
    for name in ("step", "epoch", "best_score", "best_epoch", "stall", "stopped", "in_progress", "validation_scores",
                 "costs"):
        assert getattr(a, name) == getattr(b, name), name
    npt.assert_array_equal(a.best_parameters, b.best_parameters)
    npt.assert_array_equal(a.optimizer_state, b.optimizer_state)

    for name in ("m.ckpt.npz", "v1.ckpt.npz"):
        assert cli.main(["train", "--resume", str(tmp_path / name), "--epochs", "7", "--quiet",
                         "--out", str(tmp_path / f"{name}.out.npz")]) == 0, capsys.readouterr().err
    with np.load(tmp_path / "m.ckpt.npz.out.npz") as f, np.load(tmp_path / "v1.ckpt.npz.out.npz") as g:
        assert sorted(f.files) == sorted(g.files)
        for key in f.files:
            npt.assert_array_equal(f[key], g[key], err_msg=key)
