"""The ``fastdnn`` command end to end: train (progress, model, plot, checkpoints), predict, evaluate,
check, bench, and one line of error for every kind of bad input, without a traceback."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import numpy.testing as npt
import pytest

import fastdnn
from fastdnn.data import cat_data_dir
from fastdnn import DNNClassifier, cli
from fastdnn.estimator import load_model
from fastdnn.io import save_model

# The course's files, by the convention of conftest's cat_data fixture (which skips when they are absent).
CAT_FOLDER = Path(cat_data_dir())
# A small built-in dataset: seconds of work for a whole run.
SMALL = ["--samples", "3000", "--features", "12"]


def run(capsys, *argv):
    """main(argv) in this process: (exit status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, *names):
    assert status != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for name in names:
        assert os.fspath(name) in lines[0], (name, lines[0])
    return lines[0]


def model_arrays(path):
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k[0] in "Wb" and k[1:].isdigit() or k in ("loss_curve", "validation_scores")}


def assert_same_model(a, b):
    A, B = model_arrays(a), model_arrays(b)
    assert sorted(A) == sorted(B)
    for key in A:
        npt.assert_array_equal(A[key], B[key], err_msg=key)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small data files of one nonlinear problem (8 features) and a model trained on them."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 8))
    y = (X[:, 0] * X[:, 1] + 0.3 * X[:, 2] > 0).astype(np.int64)
    np.savez(folder / "train.npz", X=X[:500], y=y[:500])
    np.savez(folder / "test.npz", X=X[500:], y=y[500:])
    np.savez(folder / "wide.npz", X=np.zeros((5, 9)), y=np.array([0, 1, 0, 1, 0]))
    np.savez(folder / "text.npz", X=X[500:], y=np.where(y[500:] == 1, "yes", "no"))
    with open(folder / "test.csv", "w") as f:
        f.write(",".join(f"x{i}" for i in range(8)) + ",label\n")
        for row, label in zip(X[500:], y[500:]):
            f.write(",".join(repr(v) for v in row.tolist()) + f",{label}\n")
    (folder / "bad.csv").write_text("a,b,label\n1,2,0\n3,oops,1\n")
    (folder / "data.txt").write_text("1 2 3\n")
    with h5py.File(folder / "nokeys.h5", "w") as f:
        f.create_dataset("pixels", data=np.zeros((3, 4)))
    model = folder / "model.npz"
    est = DNNClassifier(hidden_layer_sizes=(16,), max_iter=20, batch_size=64, random_state=0).fit(X[:500], y[:500])
    save_model(est, model)
    return {"folder": folder, "X": X, "y": y, "model": model, "est": est}


# ---------------------------------------------------------------------------- train


def test_train_end_to_end_prints_progress_accuracy_and_saves_model_and_plot(tmp_path, capsys):
    out, plot = tmp_path / "m.npz", tmp_path / "cost.png"
    status, stdout, stderr = run(capsys, "train", *SMALL, "--epochs", 3, "--out", out, "--plot", plot)
    assert status == 0, stderr
    assert "epoch 3/3" in stderr and "examples/s" in stderr  # the progress bar
    assert "train accuracy" in stdout and "validation accuracy" in stdout
    assert f"model saved to {out}" in stdout and f"cost curve plotted to {plot}" in stdout
    model = load_model(out)
    assert model.n_iter_ == 3 and len(model.loss_curve_) == 3
    assert model.hidden_layer_sizes == (64, 32) and model.optimizer == "adam" and model.batch_size == 256
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_training_is_exactly_DNNClassifier_fit(files, tmp_path, capsys):
    """The command's chunked epoch loop computes what one fit call computes, bit for bit."""
    folder = files["folder"]
    out = tmp_path / "m.npz"
    status, _, stderr = run(capsys, "train", "--data", folder / "train.npz", "--test", folder / "test.npz", "--layers", "10,6",
                            "--optimizer", "momentum", "--lr", 0.05, "--batch-size", 32, "--epochs", 7, "--l2", 0.01,
                            "--activation", "tanh", "--seed", 5, "--quiet", "--out", out)
    assert status == 0, stderr
    est = DNNClassifier(hidden_layer_sizes=(10, 6), optimizer="momentum", learning_rate=0.05, batch_size=32, max_iter=7,
                        l2=0.01, activation="tanh", random_state=5).fit(files["X"][:500], files["y"][:500])
    model = load_model(out)
    npt.assert_array_equal(model.parameters_.flat, est.parameters_.flat)
    assert model.loss_curve_ == est.loss_curve_


def test_default_output_is_replaced_but_a_foreign_file_of_that_name_is_not(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "train", *SMALL, "--epochs", 1, "--quiet")[0] == 0
    assert load_model(tmp_path / cli.DEFAULT_OUT).n_iter_ == 1
    assert run(capsys, "train", *SMALL, "--epochs", 2, "--quiet")[0] == 0  # a previous run's model: replaced
    assert load_model(tmp_path / cli.DEFAULT_OUT).n_iter_ == 2
    (tmp_path / cli.DEFAULT_OUT).write_text("my notes")
    status, stdout, stderr = run(capsys, "train", *SMALL, "--epochs", 1, "--quiet")
    assert "not overwriting" in assert_one_line_error(status, stderr, cli.DEFAULT_OUT)
    assert (tmp_path / cli.DEFAULT_OUT).read_text() == "my notes"
    assert "data:" not in stdout  # refused before any work


def test_a_failed_run_never_overwrites_the_existing_model(files, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert run(capsys, "train", *SMALL, "--epochs", 1, "--quiet", "--out", out)[0] == 0
    before = out.read_bytes()
    status, _, stderr = run(capsys, "train", *SMALL, "--epochs", 3, "--lr", 1e30, "--optimizer", "gd", "--quiet", "--out", out)
    assert "diverged" in assert_one_line_error(status, stderr)
    status, _, stderr = run(capsys, "train", "--data", files["folder"] / "bad.csv", "--out", out)
    assert_one_line_error(status, stderr, files["folder"] / "bad.csv")
    assert out.read_bytes() == before


def test_a_plot_that_cannot_be_drawn_saves_no_model(tmp_path, capsys, monkeypatch):
    def broken(*args):
        raise RuntimeError("no fonts")

    monkeypatch.setattr(cli.train, "draw_costs", broken)
    out = tmp_path / "m.npz"
    status, _, stderr = run(capsys, "train", *SMALL, "--epochs", 1, "--quiet", "--out", out, "--plot", tmp_path / "c.png")
    assert "no fonts" in assert_one_line_error(status, stderr)
    assert not out.exists() and not (tmp_path / "c.png").exists()


def test_python_m_fastdnn_trains_in_a_subprocess(tmp_path):
    out = tmp_path / "m.npz"
    proc = subprocess.run([sys.executable, "-m", "fastdnn", "train", "--samples", "2000", "--features", "8", "--epochs", "2",
                           "--quiet", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"model saved to {out}" in proc.stdout
    assert load_model(out).n_iter_ == 2


def test_course_cat_files_train_from_the_course_first_cost(cat_data, tmp_path, capsys):
    """The h5 files read as the course reads them: the course's network starts at its published cost."""
    out = tmp_path / "cat.npz"
    status, stdout, stderr = run(
        capsys, "train", "--data", CAT_FOLDER / "train_catvnoncat.h5", "--test", CAT_FOLDER / "test_catvnoncat.h5",
        "--layers", "20,7,5", "--optimizer", "gd", "--lr", 0.0075, "--batch-size", "full", "--epochs", 2, "--seed", 1, "--init", "deep",
        "--quiet", "--out", out)
    assert status == 0, stderr
    assert "209 examples x 12288 features, float64" in stdout and "50 for testing" in stdout
    # The course's application notebook prints "Cost after iteration 0: 0.771749" (6 decimals).
    assert abs(load_model(out).loss_curve_[0] - 0.771749) < 1e-6


# ---------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize("early_stopping", [False, True], ids=["plain", "early-stopping"])
def test_interrupted_run_resumed_from_its_checkpoint_equals_the_uninterrupted_run(tmp_path, capsys, monkeypatch, early_stopping):
    options = [*SMALL, "--batch-size", 100, "--epochs", 6, "--quiet"]
    if early_stopping:
        # No epoch can improve by 0.5: training stops after the first 1 + 2 epochs, keeping epoch 1's parameters.
        options += ["--early-stopping", "--n-iter-no-change", 2, "--tol", 0.5]
    whole = tmp_path / "whole.npz"
    assert run(capsys, "train", *options, "--out", whole)[0] == 0

    parted, ckpt = tmp_path / "parted.npz", tmp_path / "parted.ckpt.npz"
    real_save = cli.train.Checkpointer.__call__

    def interrupt_after_epoch_two(self, info):
        real_save(self, info)
        if info.epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli.train.Checkpointer, "__call__", interrupt_after_epoch_two)
    status, _, stderr = run(capsys, "train", *options, "--out", parted, "--checkpoint-every", 1)
    assert status == 130 and f"the checkpoint at epoch 2 is {ckpt}" in stderr and "no model saved" in stderr
    assert not parted.exists()
    monkeypatch.undo()

    status, stdout, stderr = run(capsys, "train", "--resume", ckpt, "--quiet")  # saves where the first part was told to
    assert status == 0, stderr
    assert "resuming at epoch 2 of 6" in stdout
    assert_same_model(whole, parted)
    if early_stopping:
        assert "kept epoch 1's parameters" in stdout
        assert len(load_model(parted).loss_curve_) == 3
        # Kept means kept: the saved parameters are those of a run that trained one epoch only.
        one = tmp_path / "one.npz"
        assert run(capsys, "train", *options[:options.index("--epochs")], "--epochs", 1, *options[options.index("--epochs") + 2:],
                   "--out", one)[0] == 0
        kept, first = load_model(parted).parameters_.flat, load_model(one).parameters_.flat
        npt.assert_array_equal(kept, first)
        npt.assert_array_equal(load_model(whole).parameters_.flat, first)


def test_resume_continues_to_more_epochs_and_keeps_checkpointing(tmp_path, capsys):
    whole = tmp_path / "whole.npz"
    assert run(capsys, "train", *SMALL, "--epochs", 5, "--quiet", "--out", whole)[0] == 0
    first = tmp_path / "first.npz"
    assert run(capsys, "train", *SMALL, "--epochs", 3, "--quiet", "--out", first, "--checkpoint-every", 3)[0] == 0
    ckpt = tmp_path / "first.ckpt.npz"
    status, stdout, _ = run(capsys, "train", "--resume", ckpt, "--epochs", 5, "--quiet", "--out", first)
    assert status == 0 and f"checkpoint at epoch 5: {ckpt}" in stdout
    assert_same_model(whole, first)


def test_resume_refuses_other_options_and_other_data(files, tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert run(capsys, "train", *SMALL, "--epochs", 2, "--quiet", "--out", out, "--checkpoint-every", 1)[0] == 0
    ckpt = tmp_path / "m.ckpt.npz"
    status, _, stderr = run(capsys, "train", "--resume", ckpt, "--lr", 0.5, "--out", out)
    assert "--lr 0.5 differs from the checkpoint's auto" in assert_one_line_error(status, stderr, ckpt)
    status, _, stderr = run(capsys, "train", "--resume", ckpt, "--data", files["folder"] / "train.npz", "--out", out)
    assert "other data" in assert_one_line_error(status, stderr, ckpt)
    status, _, stderr = run(capsys, "train", "--resume", out, "--out", tmp_path / "other.npz")
    assert "not a fastdnn-checkpoint" in assert_one_line_error(status, stderr, out)


def test_resume_compares_dtype_with_the_type_a_run_without_dtype_trained_in(tmp_path, capsys):
    """A run without --dtype stores none (it trains in its data's type, the built-in data's float32): a resumed run's
    --dtype is compared with that type, never reported as differing from "None"."""
    ckpt, _ = trained_checkpoint(tmp_path, capsys)
    status, _, err = run(capsys, "train", "--resume", ckpt, "--dtype", "float64", "--epochs", 3, "--quiet")
    line = assert_one_line_error(status, err, ckpt, "--dtype float64")
    assert "differs from the checkpoint's float32 (its data's: it was trained without --dtype)" in line
    assert "None" not in line
    status, _, err = run(capsys, "train", "--resume", ckpt, "--dtype", "float32", "--epochs", 3, "--quiet")
    assert status == 0, err


def test_a_saved_model_asks_for_no_warm_start_and_its_next_fit_trains_afresh(files, tmp_path, capsys):
    """Fresh or resumed, the model the command saves holds the options the user asked for: warm_start false (a
    nested function named checkpoint hid the resumed checkpoint, so every model said true) and the run's epochs (a
    resumed run trains only the epochs left). Loaded, its next fit trains afresh, unless told to warm start."""
    X, y = files["X"][:500], files["y"][:500]
    data = ["--data", files["folder"] / "train.npz", "--layers", 8, "--batch-size", 64, "--seed", 3, "--quiet"]
    fresh, resumed = tmp_path / "fresh.npz", tmp_path / "m.npz"
    assert run(capsys, "train", *data, "--epochs", 3, "--out", fresh)[0] == 0
    assert run(capsys, "train", *data, "--epochs", 2, "--checkpoint-every", 1, "--out", resumed)[0] == 0
    assert run(capsys, "train", "--resume", tmp_path / "m.ckpt.npz", "--epochs", 3, "--quiet")[0] == 0
    for path in (fresh, resumed):
        with np.load(path) as f:
            options = json.loads(str(f["options"]))
        assert options["warm_start"] is False and options["max_iter"] == 3, path
        refitted = DNNClassifier.load(path).fit(X, y)
        afresh = DNNClassifier(**refitted.get_params()).fit(X, y)
        npt.assert_array_equal(refitted.parameters_.flat, afresh.parameters_.flat)
        assert refitted.loss_curve_ == afresh.loss_curve_ and len(afresh.loss_curve_) == 3
        continued = DNNClassifier.load(path).set_params(warm_start=True).fit(X, y)
        assert len(continued.loss_curve_) == 6  # the saved 3 epochs, then 3 more


def test_an_unknown_train_flag_prints_the_train_usage(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--epochs", "2", "--no-such-flag"])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.startswith("usage: fastdnn train ") and "--epochs N" in err, err
    assert err.strip().splitlines()[-1] == "fastdnn train: error: unrecognized arguments: --no-such-flag"


# ---------------------------------------------------------------------------- predict, evaluate


def test_predict_writes_the_models_predictions_as_csv(files, tmp_path, capsys):
    folder, est = files["folder"], files["est"]
    preds = tmp_path / "preds.csv"
    status, _, stderr = run(capsys, "predict", files["model"], folder / "test.csv", "--out", preds, "--proba")
    assert status == 0 and f"wrote 100 predictions to {preds}" in stderr
    with open(preds) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["prediction", "probability_0", "probability_1"]
    npt.assert_array_equal([int(r["prediction"]) for r in rows], est.predict(files["X"][500:]))
    proba = np.array([[float(r["probability_0"]), float(r["probability_1"])] for r in rows])
    npt.assert_allclose(proba, est.predict_proba(files["X"][500:]), rtol=1e-15)

    status, stdout, _ = run(capsys, "predict", files["model"], folder / "test.npz")
    assert status == 0
    assert stdout.splitlines()[0] == "prediction"
    assert [int(v) for v in stdout.splitlines()[1:]] == est.predict(files["X"][500:]).tolist()


def test_evaluate_prints_accuracy_and_confusion_matrix(files, capsys):
    est = files["est"]
    X, y = files["X"][500:], files["y"][500:]
    status, stdout, _ = run(capsys, "evaluate", files["model"], files["folder"] / "test.npz")
    assert status == 0
    predicted = est.predict(X)
    correct = int(np.sum(predicted == y))
    assert f"accuracy {correct / 100:.4f} ({correct} of 100 correct)" in stdout
    table = stdout.split("columns: predicted):\n")[1].splitlines()
    counts = [[int(c) for c in line.split()[1:]] for line in table[1:3]]
    expected = [[int(np.sum((y == t) & (predicted == p))) for p in (0, 1)] for t in (0, 1)]
    assert counts == expected


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv, names, match",
    [
        (["train", "--data", "{f}/absent.csv"], ["{f}/absent.csv"], "no such file"),
        (["train", "--data", "{f}/data.txt"], ["{f}/data.txt"], "unknown data format"),
        (["train", "--data", "{f}/nokeys.h5"], ["{f}/nokeys.h5"], "train_set_x"),
        (["train", "--data", "{f}/bad.csv"], ["{f}/bad.csv"], "line 3, column 'b'"),
        (["train", "--data", "{f}/train.npz", "--test", "{f}/wide.npz"], ["{f}/wide.npz"], "9 features"),
        (["train", "--data", "{f}/train.npz", "--test", "{f}/text.npz"], ["{f}/text.npz"], "labels are text but the training labels are numbers"),
        (["train", "--resume", "{f}/model.npz"], ["{f}/model.npz"], "not a fastdnn-checkpoint"),
        (["train", "--data", "{f}/train.npz", "--out", "{f}/train.npz"], ["{f}/train.npz"], "also an input"),
        (["train", "--out", "{f}/no/such/dir/m.npz"], ["{f}/no/such/dir/m.npz"], "does not exist"),
        (["predict", "{f}/model.npz", "{f}/wide.npz"], ["{f}/wide.npz", "{f}/model.npz"], "9 features but the model"),
        (["evaluate", "{f}/model.npz", "{f}/wide.npz"], ["{f}/wide.npz"], "9 features"),
        (["predict", "{f}/train.npz", "{f}/test.npz"], ["{f}/train.npz"], "not a fastdnn model"),
        (["predict", "{f}/truncated.npz", "{f}/test.npz"], ["{f}/truncated.npz"], "truncated or corrupted"),
        (["predict", "{f}/corrupted.npz", "{f}/test.npz"], ["{f}/corrupted.npz"], "truncated or corrupted"),
        (["predict", "{f}/newer.npz", "{f}/test.npz"], ["{f}/newer.npz"], "upgrade fastdnn"),
        (["evaluate", "{f}/absent.npz", "{f}/test.npz"], ["{f}/absent.npz"], "no such file"),
    ],
    ids=["missing-data", "unknown-format", "h5-without-keys", "csv-not-numeric", "test-feature-count", "test-label-kind",
         "resume-a-model",
         "out-is-input", "out-dir-missing", "predict-feature-count", "evaluate-feature-count", "not-a-model",
         "truncated-model", "corrupted-model", "newer-model", "missing-model"],
)
def test_bad_input_is_one_line_naming_the_file(files, capsys, argv, names, match):
    folder = files["folder"]
    model = files["model"].read_bytes()
    (folder / "truncated.npz").write_bytes(model[: len(model) // 2])
    flipped = bytearray(model)
    flipped[len(model) // 3] ^= 0xFF
    (folder / "corrupted.npz").write_bytes(bytes(flipped))
    with np.load(files["model"]) as f:
        np.savez(folder / "newer.npz", **{**{k: f[k] for k in f.files}, "format_version": np.array(fastdnn.io.FORMAT_VERSION + 1)})
    status, _, stderr = run(capsys, *(a.format(f=folder) for a in argv))
    line = assert_one_line_error(status, stderr, *(n.format(f=folder) for n in names))
    assert match in line


def test_missing_optional_dependencies_are_named_before_any_work(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, stdout, stderr = run(capsys, "train", *SMALL, "--out", tmp_path / "m.npz", "--plot", tmp_path / "c.png")
    assert 'pip install "fastdnn[plot]"' in assert_one_line_error(status, stderr)
    assert stdout == "" and not (tmp_path / "m.npz").exists()
    monkeypatch.setitem(sys.modules, "h5py", None)
    status, _, stderr = run(capsys, "train", "--data", files["folder"] / "nokeys.h5")
    assert 'pip install "fastdnn[h5]"' in assert_one_line_error(status, stderr, files["folder"] / "nokeys.h5")


def test_debug_shows_the_traceback(files):
    with pytest.raises(FileNotFoundError):
        cli.main(["predict", "--debug", str(files["folder"] / "absent.npz"), str(files["folder"] / "test.npz")])


def test_bad_input_from_a_real_process_is_one_line_without_traceback(files):
    proc = subprocess.run([sys.executable, "-m", "fastdnn", "evaluate", str(files["folder"] / "train.npz"),
                           str(files["folder"] / "test.npz")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, files["folder"] / "train.npz")


def test_no_command_prints_usage(capsys):
    status, _, err = run(capsys)
    assert status == 2 and "train" in err and "predict" in err and "check" in err


# ---------------------------------------------------------------------------- check, bench


@pytest.mark.parametrize("extra", [[], ["--dtype", "float32", "--optimizer", "adam", "--activation", "tanh"]], ids=["float64", "float32-adam"])
def test_check_passes_on_a_small_network(capsys, extra):
    status, stdout, _ = run(capsys, "check", "--samples", 300, "--features", 16, "--layers", "9,4", "--steps", 2, *extra)
    assert status == 0, stdout
    assert "OK: all 21 stages agree" in stdout  # 7 per layer: Z, A, dA (not layer 3), dW, db, W, b, and the cost
    for stage in ("Z", "A", "cost", "dA", "dW", "db", "W (updated)", "b (updated)"):
        assert f"\n{stage} " in stdout


def test_check_catches_a_fast_path_that_computes_wrong_numbers(capsys, monkeypatch):
    real = fastdnn.update_parameters
    monkeypatch.setattr(fastdnn, "update_parameters", lambda params, grads, lr: real(params, grads, lr * 1.001))
    status, stdout, _ = run(capsys, "check", "--samples", 300, "--features", 16, "--layers", "9,4", "--steps", 2)
    assert status == 1
    assert "FAILED" in stdout and "W (updated) 1" in stdout
    # A 0.1% error in the learning rate is far above float64's tolerance from the first update on.
    flagged = [line for line in stdout.splitlines() if line.endswith("EXCEEDS")]
    assert any(line.startswith("W (updated)") for line in flagged)


def test_check_reads_the_users_data_and_softmax_labels(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((120, 5))
    np.savez(tmp_path / "three.npz", X=X, y=np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)])
    status, stdout, _ = run(capsys, "check", "--data", tmp_path / "three.npz", "--layers", "6", "--steps", 2)
    assert status == 0, stdout
    assert "5 -> 6 -> 3 (relu, softmax" in stdout and "first 120 examples" in stdout


def test_bench_runs_both_implementations_in_their_own_processes(capsys):
    # Wide and full batch (16 examples of 256 features): the fast path's Gram route is timed too.
    status, stdout, _ = run(capsys, "bench", "--layers", "4", "--features", 256, "--samples", 16, "--iterations", 2,
                            "--repeats", 1, "--peak-size", 64)
    assert status == 0
    rows = stdout.split("-----\n")[1].split("\n\n")[0].splitlines()
    assert [row.split("  ")[0] for row in rows] == ["reference (numpy)", "fastdnn", "fastdnn, Gram route *"]
    assert "float64 " in rows[0] and "float64 " in rows[1]
    assert "GFLOP/s (n=64)" in stdout.split("BLAS peak")[1]
    assert "X X^T once per run" in stdout


def test_a_continuous_target_is_refused_before_training(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "continuous.npz"
    np.savez(data, X=rng.normal(size=(300, 12)), y=rng.random(300))
    status, out, err = run(capsys, "train", "--data", data, "--out", tmp_path / "m.npz")
    assert "Unknown label type: continuous" in assert_one_line_error(status, err, data)
    assert "network:" not in out  # refused before anything was set up for 300 classes


def trained_checkpoint(tmp_path, capsys):
    """A two-epoch run with a checkpoint every epoch: (its checkpoint's path, the checkpoint's arrays)."""
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 2, "--checkpoint-every", 1, "--out", tmp_path / "m.npz",
                         "--quiet")
    assert status == 0, err
    ckpt = tmp_path / "m.ckpt.npz"
    with np.load(ckpt) as f:
        return ckpt, dict(f)


def with_json(arrays, entry, **changes):
    """``arrays`` with the JSON text entry ``entry`` updated by ``changes``."""
    return {**arrays, entry: np.array(json.dumps({**json.loads(str(arrays[entry])), **changes}))}


def test_a_resumed_run_saves_beside_its_checkpoint_never_where_the_file_says(tmp_path, capsys):
    """A checkpoint names the model path its first part wrote; a resumed run without --out saves beside the
    checkpoint instead (MODEL.ckpt.npz -> MODEL.npz), so a crafted checkpoint cannot choose where a file goes."""
    ckpt, arrays = trained_checkpoint(tmp_path, capsys)
    elsewhere = tmp_path / "elsewhere" / "evil.npz"
    elsewhere.parent.mkdir()
    arrays = with_json(arrays, "run", out=str(elsewhere))
    moved = tmp_path / "moved"
    moved.mkdir()
    np.savez(moved / "m.ckpt.npz", **arrays)
    status, stdout, err = run(capsys, "train", "--resume", moved / "m.ckpt.npz", "--epochs", 3, "--quiet")
    assert status == 0, err
    assert (moved / "m.npz").exists() and not elsewhere.exists()
    assert f"model saved to {moved / 'm.npz'}" in stdout


def test_two_runs_never_write_one_model_and_a_fresh_run_keeps_an_unfinished_checkpoint(tmp_path, capsys):
    """A second run given a model file that another run is writing is refused at its start (both used to report
    success, one model lost); temporary files that a killed save left beside it are removed; a fresh run does
    not replace a checkpoint of a run that stopped before its end."""
    from fastdnn.files import OutputLock

    out = tmp_path / "m.npz"
    (tmp_path / ".m.npz.x1y2.tmp").write_bytes(b"half a model")
    with OutputLock(out):
        status, _, err = run(capsys, "train", *SMALL, "--epochs", 1, "--out", out, "--quiet")
    assert status == 1 and f"{out}: another fastdnn run is writing this model" in err, err
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 2, "--checkpoint-every", 1, "--out", out, "--quiet")
    assert status == 0, err
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt.npz", "m.npz"]  # no lock or temporary file left
    ckpt = tmp_path / "m.ckpt.npz"
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 2, "--checkpoint-every", 1, "--out", out, "--quiet")
    assert status == 0, err  # a finished run's checkpoint may be replaced
    with np.load(ckpt) as f:
        arrays = with_json(dict(f), "run", epochs=5)  # as if stopped at 2 of 5
    np.savez(ckpt, **arrays)
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 2, "--checkpoint-every", 1, "--out", out, "--quiet")
    assert status == 1 and f"{ckpt}: holds an unfinished run (stopped at epoch 2 of 5); continue it with --resume" in err
    status, _, err = run(capsys, "train", "--resume", ckpt, "--quiet")
    assert status == 0, err


def test_a_plot_that_cannot_be_written_says_the_model_was_saved(tmp_path, capsys, monkeypatch):
    import errno

    from fastdnn import files

    real = files.atomic_write

    def full_for_images(path, write):
        if str(path).endswith(".png"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, write)

    monkeypatch.setattr(files, "atomic_write", full_for_images)
    out, plot = tmp_path / "m.npz", tmp_path / "cost.png"
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 1, "--out", out, "--plot", plot, "--quiet")
    assert status == 1 and f"{plot}: No space left on device; the model itself was saved to {out}" in err, err
    assert out.exists()


@pytest.mark.parametrize("where, key, value, message", [
    ("state", "epoch", "x", "the training state's epoch must be a non-negative integer, got 'x'"),
    ("state", "step", -3, "the training state's step must be a non-negative integer, got -3"),
    ("run", "checkpoint_every", "z", "its run field checkpoint_every must be a positive integer, got 'z'"),
    ("run", "epochs", 0, "its run field epochs must be a positive integer, got 0"),
    ("run", "elapsed", "e", "its run field elapsed must be a non-negative number of seconds, got 'e'"),
    ("run", "data", "nothing", "its run field data must be an object, got 'nothing'"),
    ("run", "out", 5, "its run field out must be a path, got 5"),
    ("options", "threads", "many", "threads must be a positive integer, got 'many'"),
    ("loss_curve", None, [float("nan"), 1.0], "loss_curve must be a 1-D array of finite numbers"),
])
def test_a_checkpoint_with_a_bad_field_is_refused_naming_the_field(tmp_path, capsys, where, key, value, message):
    """Fields of a checkpoint gave raw conversion errors, a Numba typing error or an AttributeError."""
    ckpt, arrays = trained_checkpoint(tmp_path, capsys)
    arrays = {**arrays, where: np.array(value)} if key is None else with_json(arrays, where, **{key: value})
    np.savez(ckpt, **arrays)
    status, _, err = run(capsys, "train", "--resume", ckpt, "--epochs", 3, "--quiet")
    assert status == 1 and f"{ckpt}: is corrupted" in err and message in err and err.count("\n") == 1, err


def test_a_checkpoint_whose_run_state_is_not_an_object_is_refused_as_having_none(tmp_path, capsys):
    """A run entry of JSON null (or a number) is a checkpoint without the command's run state, said so in one
    line; it gave "argument of type 'NoneType' is not iterable"."""
    ckpt, arrays = trained_checkpoint(tmp_path, capsys)
    for text in ("null", "7"):
        np.savez(ckpt, **{**arrays, "run": np.array(text)})
        status, _, err = run(capsys, "train", "--resume", ckpt, "--epochs", 3, "--quiet")
        assert status == 1 and "is a checkpoint without the command's run state" in err and err.count("\n") == 1, err


def test_a_run_removes_only_its_own_leftovers_and_its_lock_cannot_be_shared(tmp_path, capsys, monkeypatch):
    """Review fixes: the cleanup matched every file starting with the model's name (R.v2.npz's temporary files
    for --out R, which another run was writing); a lock file removed by a finishing run while another opened it
    let two runs hold "the" lock; "sub/../m.npz" without sub passed the check and failed after training."""
    import fcntl

    from fastdnn.files import OutputLock

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".R.v2.npz.abc123.tmp").write_bytes(b"another run's")
    (tmp_path / ".R.x1y2z3.tmp").write_bytes(b"our own leftover")
    with OutputLock("R"):
        pass
    assert sorted(os.listdir(tmp_path)) == [".R.v2.npz.abc123.tmp"]
    first = OutputLock("X.npz").__enter__()
    late = os.open(first.lock_path, os.O_RDWR | os.O_CREAT, 0o644)  # opened just before the holder finishes
    first.__exit__(None, None, None)
    fcntl.flock(late, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locks the removed file: it must not count
    with OutputLock("X.npz"):
        with pytest.raises(Exception, match="another fastdnn run is writing"):
            OutputLock("X.npz").__enter__()
    os.close(late)
    status, _, err = run(capsys, "train", *SMALL, "--epochs", 1, "--out", "sub/../m.npz", "--quiet")
    assert status == 1 and "sub/../m.npz: cannot write the model: the directory sub/.. does not exist" in err, err
