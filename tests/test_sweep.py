"""Sweeps (fastdnn.sweep, fastdnn sweep): every run is the configuration trained alone, whichever worker runs
it; results are written as configurations finish and a sweep run again continues where it stopped."""

import csv
import json
import os

import numpy as np
import pytest

from fastdnn.estimator import DNNClassifier
from fastdnn.sweeps import Results, check_grid, configurations, plan, sweep


def blobs(m=240, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    return X, np.where(X[:, 0] - X[:, 1] + 0.4 * rng.standard_normal(m) > 0, "cat", "dog")


GRID = {"learning_rate": [0.01, 0.1], "hidden_layer_sizes": [(8,), (6, 4)], "train_size": [0.5, 1.0]}
FIXED = {"max_iter": 15, "batch_size": 32, "optimizer": "adam"}


def alone(X, y, config, train, held, seed, test):
    """The configuration trained by itself, as a user would: the rows the sweep documents."""
    from fastdnn.sweep_workers import subset

    rows = subset(train, config.get("train_size"), np.random.default_rng(seed + 1).permutation(len(train)))
    params = {**FIXED, **{k: v for k, v in config.items() if k != "train_size"}, "random_state": seed}
    est = DNNClassifier(**params).fit(X[rows], y[rows])
    return est, rows


@pytest.mark.parametrize("folds", [None, 3])
def test_every_run_of_a_sweep_in_workers_equals_the_configuration_trained_alone(folds):
    X, y = blobs()
    test = blobs(60, seed=1)
    results = sweep(X, y, GRID, fixed=FIXED, test=test, folds=folds, seed=4, workers=2)
    assert len(results.rows) == 8 and not results.failed
    splits = plan(len(X), folds, 0.1, 4)
    for config, row in zip(configurations(check_grid(GRID)), results.rows):
        curves, train_acc, val_acc, test_acc = [], [], [], []
        for train, held in splits:
            est, rows = alone(X, y, config, train, held, 4, test)
            curves.append(est.loss_curve_)
            train_acc.append(est.score(X[rows], y[rows]))
            val_acc.append(est.score(X[held], y[held]))
            test_acc.append(est.score(*test))
        assert results.curves[row["configuration"]] == curves  # bit for bit: the same training
        assert row["train_mean"] == pytest.approx(np.mean(train_acc), abs=1e-15)
        assert row["validation_mean"] == pytest.approx(np.mean(val_acc), abs=1e-15)
        assert row["test_mean"] == pytest.approx(np.mean(test_acc), abs=1e-15)
        assert row["validation_std"] == pytest.approx(np.std(val_acc), abs=1e-15)
        assert row["runs"] == len(splits)


def test_an_interrupted_sweep_continues_and_skips_what_it_finished(tmp_path):
    X, y = blobs()
    out = tmp_path / "results.csv"
    seen = []

    def stop_after_three(row):
        seen.append(row)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sweep(X, y, GRID, fixed=FIXED, seed=2, workers=1, out=out, on_result=stop_after_three)
    with open(out) as f:
        assert len(list(csv.DictReader(f))) == 3
    runs = []
    continued = sweep(X, y, GRID, fixed=FIXED, seed=2, workers=2, out=out, progress=lambda done, total: runs.append(total))
    assert runs and runs[-1] == 5  # only the five configurations left
    whole = sweep(X, y, GRID, fixed=FIXED, seed=2, workers=1)
    strip = lambda rows: [{k: v for k, v in r.items() if k not in ("seconds_mean", "examples_per_s")} for r in rows]  # noqa: E731
    assert strip(continued.rows) == strip(whole.rows)
    assert continued.curves == whole.curves
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and rows[0].keys() >= {"learning_rate", "hidden_layer_sizes", "train_size", "validation_mean",
                                                 "test_mean", "cost_mean", "seconds_mean", "examples_per_s"}
    saved = json.loads((tmp_path / "results.json").read_text())
    assert len(saved["rows"]) == 8 and len(saved["curves"]) == 8
    # Nothing left: nothing trained, the results as they were.
    again = sweep(X, y, GRID, fixed=FIXED, seed=2, workers=2, out=out, progress=lambda d, t: runs.append(-1))
    assert runs[-1] == 5 and strip(again.rows) == strip(continued.rows)
    from fastdnn.errors import DataError

    with pytest.raises(DataError, match="holds another sweep's results"):
        sweep(X, y, GRID, fixed={**FIXED, "max_iter": 16}, seed=2, workers=1, out=out)


def test_grids_are_checked_and_sampled():
    with pytest.raises(ValueError, match="'random_state' cannot be swept"):
        check_grid({"random_state": [1, 2]})
    with pytest.raises(ValueError, match="learning_rate"):
        check_grid({"learning_rate": [0.1, -1]})
    with pytest.raises(ValueError, match="train_size must be a fraction"):
        check_grid({"train_size": [0.5, 1.5]})
    with pytest.raises(ValueError, match="given twice"):
        check_grid({"init": ["he", "he"]})
    grid = check_grid({"learning_rate": [0.1, 0.01, 0.001], "init": ["deep", "he"], "batch_size": [32, "full"]})
    assert grid["batch_size"] == [32, None]
    every = configurations(grid)
    assert len(every) == 12 and every[0] == {"learning_rate": 0.1, "init": "deep", "batch_size": 32}
    sample = configurations(grid, sample=5, seed=3)
    assert len(sample) == 5 and all(c in every for c in sample) and sample == configurations(grid, sample=5, seed=3)
    X, y = blobs()
    with pytest.raises(ValueError, match="train_size 500 is more than the 216 training examples"):
        sweep(X, y, {"train_size": [100, 500]}, fixed=FIXED, workers=1)


def run_cli(capsys, *argv):
    from fastdnn import cli

    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_the_command_sweeps_the_course_hyperparameters_and_writes_csv_json_and_plots(tmp_path, capsys):
    X, y = blobs()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out, plots = tmp_path / "r.csv", tmp_path / "plots"
    status, stdout, err = run_cli(
        capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01,0.1", "--layers", "8", "6,4", "--output",
        "sigmoid,softmax", "--loss", "cross_entropy,mse", "--train-size", "0.5", "1", "--epochs", 5, "--batch-size", 32,
        "--folds", 2, "--sample", 6, "--out", out, "--plot", plots, "--quiet", "--sort", "train")
    assert status == 0, err
    # In the table's order of the options, then train_size.
    assert "sweep: 6 configurations of 2 hidden_layer_sizes x 2 loss x 2 output x 2 learning_rate x 2 train_size" in stdout
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and {r["output"] for r in rows} <= {"sigmoid", "softmax"}
    lines = stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("hidden_layer_sizes  loss"))
    at = lines[head].index(" train ") + 1
    train = [float(line[at:].split()[0]) for line in lines[head + 1 : head + 7]]  # sorted by train accuracy
    assert train == sorted(train, reverse=True)
    assert sorted(os.listdir(plots)) == sorted(["costs.png", "effect-learning_rate.png", "effect-hidden_layer_sizes.png",
                                                "effect-output.png", "effect-loss.png", "effect-train_size.png"])
    status, _, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01,-2")
    assert status == 1 and "--lr: learning_rate must be" in err, err
    status, _, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01")
    assert status == 1 and "nothing to sweep" in err
    status, _, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--init", "he,nope")
    assert status == 1 and "--init: unknown init 'nope'; choose one of ['deep', 'he', 'xavier']" in err, err


def test_results_read_back_the_architecture_as_a_tuple(tmp_path):
    X, y = blobs()
    results = sweep(X, y, {"hidden_layer_sizes": [(4,), (5, 3)]}, fixed=FIXED, workers=1, out=tmp_path / "r.csv")
    back = Results.read(tmp_path / "r.csv", ["hidden_layer_sizes"], results.setup)
    assert [r["hidden_layer_sizes"] for r in back.rows] == [(4,), (5, 3)]


def test_failures_are_recorded_tried_again_and_cleared(tmp_path, monkeypatch):
    """A configuration that fails is a row with its error (CSV and JSON) and the sweep goes on; run again,
    it is tried again, and once it trains its failure is gone."""
    from fastdnn import sweep_workers

    X, y = blobs()
    out = tmp_path / "r.csv"
    grid = {"learning_rate": [0.01, 0.1]}
    real = sweep_workers.run_one

    def flaky(fixed, config, *args):
        if config["learning_rate"] == 0.1:
            raise MemoryError("out of memory, this time")
        return real(fixed, config, *args)

    monkeypatch.setattr(sweep_workers, "run_one", flaky)
    first = sweep(X, y, grid, fixed=FIXED, workers=1, out=out)
    assert first.failed == {'{"learning_rate":0.1}': "out of memory, this time"}
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [r["error"] for r in rows] == ["", "out of memory, this time"]
    monkeypatch.undo()
    runs = []
    second = sweep(X, y, grid, fixed=FIXED, workers=1, out=out, progress=lambda d, t: runs.append(t))
    assert runs == [1] and second.failed == {} and [r["learning_rate"] for r in second.rows] == [0.01, 0.1]
    assert second.rows[1]["validation_mean"] is not None


def test_the_results_never_replace_a_json_that_is_not_theirs(tmp_path):
    from fastdnn.errors import DataError

    X, y = blobs()
    (tmp_path / "settings.json").write_text('{"my": "settings"}')
    with pytest.raises(DataError, match="settings.json: exists without settings.csv"):
        sweep(X, y, {"learning_rate": [0.01, 0.1]}, fixed=FIXED, workers=1, out=tmp_path / "settings.csv")
    assert (tmp_path / "settings.json").read_text() == '{"my": "settings"}'


def test_workers_map_the_data_writeable_so_nothing_copies_it(tmp_path):
    """Read-only arrays are copied whole by the estimator; the workers' copy-on-write maps are not (and are
    never written)."""
    from fastdnn import sweep_workers

    np.save(tmp_path / "X.npy", np.ones((4, 3)))
    sweep_workers.attach(tmp_path)
    try:
        X = sweep_workers.DATA["X"]
        assert isinstance(X, np.memmap) and X.flags.writeable and X.mode == "c"
    finally:
        sweep_workers.DATA.clear()


def test_the_commands_default_batch_is_a_runs_full_batch_on_fewer_examples(tmp_path, capsys):
    """fastdnn train's default batch (256) on a run of fewer examples is all of them, as the command does."""
    X, y = blobs(120)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    status, stdout, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01,0.1", "--epochs", 2,
                                  "--train-size", "0.5,1", "--folds", 3, "--quiet")
    assert status == 0, err
    assert "4 configurations in" in stdout and "failed" not in stdout
    for argv, message in [(["--folds", 0], "--folds: must be an integer of at least 2, got 0"),
                          (["--train-size", "inf,1"], "--train-size: train_size must be a fraction"),
                          (["--train-size", "0.5,500"], "--train-size: train_size 500 is more than"),
                          (["--seed", -1], "--seed: seed must be an integer"),
                          (["--validation-fraction", "0.1,0.2"], "--validation-fraction: validation_fraction cannot "
                                                                 "be swept")]:
        status, _, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01,0.1", *argv)
        assert status == 1 and message in err, (argv, err)


def test_a_second_sweep_of_results_being_written_is_refused_and_the_first_loses_no_rows(tmp_path):
    """Two sweeps given one results file: the second is refused at its start (it used to succeed too, and
    the last to write replaced the other's rows); so is one whose CSV is the first's JSON."""
    import threading

    from fastdnn.errors import FileInUseError

    X, y = blobs()
    out = tmp_path / "r.csv"
    writing, go_on, first = threading.Event(), threading.Event(), {}

    def pause(done, total):  # the first sweep, its first run trained and nothing written yet: both "at once"
        if done == 1:
            writing.set()
            go_on.wait(120)

    def run_first():
        first["results"] = sweep(X, y, {"learning_rate": [0.01, 0.1]}, fixed=FIXED, workers=1, out=out, progress=pause)

    thread = threading.Thread(target=run_first)
    thread.start()
    try:
        assert writing.wait(120)
        for other in (out, tmp_path / "r.json"):
            with pytest.raises(FileInUseError, match=f"{other}: another fastdnn run is writing this results file"):
                sweep(X, y, {"learning_rate": [0.03, 0.3]}, fixed=FIXED, workers=1, out=other)
    finally:
        go_on.set()
        thread.join(120)
    assert not first["results"].failed
    with open(out) as f:
        assert [float(r["learning_rate"]) for r in csv.DictReader(f)] == [0.01, 0.1]
    assert len(json.loads((tmp_path / "r.json").read_text())["curves"]) == 2
    assert sorted(os.listdir(tmp_path)) == ["r.csv", "r.json"]  # the locks released, nothing else written


def test_the_command_refuses_results_another_run_is_writing_before_loading_the_data(tmp_path, capsys):
    from fastdnn.files import OutputLock

    X, y = blobs()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    out = tmp_path / "r.csv"
    with OutputLock(out, "results file"):  # as another fastdnn run holds it
        status, stdout, err = run_cli(capsys, "sweep", "--data", tmp_path / "d.npz", "--lr", "0.01,0.1", "--out", out,
                                      "--quiet")
    assert status == 1 and stdout == ""
    assert err.splitlines() == [f"fastdnn sweep: error: {out}: another fastdnn run is writing this results file; "
                                "wait for it or choose another file"]
    assert not out.exists()


def test_the_sweeps_help_names_no_flag_of_another_command(capsys):
    from fastdnn import cli

    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # as wide as the terminal: the words, not the lines
    assert "--epochs V [V ...] epochs: passes over the data in each run" in text and "--resume" not in text


def test_plotting_a_sweep_leaves_the_programs_matplotlib_backend_alone(tmp_path):
    """``sweep_plots.plot`` is a library function: it draws on its own canvas and never switches the program's
    backend (``matplotlib.use``), which belongs to the caller (a notebook's inline backend, a GUI's)."""
    import subprocess
    import sys

    code = (
        "import matplotlib, numpy as np; matplotlib.use('svg');"
        "from fastdnn.sweeps import sweep; from fastdnn.sweep_plots import plot;"
        "rng = np.random.default_rng(0); X = rng.standard_normal((60, 3)); y = (X[:, 0] > 0).astype(int);"
        "r = sweep(X, y, {'learning_rate': [0.01, 0.1]}, fixed={'max_iter': 2, 'batch_size': 16}, workers=1);"
        f"paths = plot(r, {str(tmp_path / 'plots')!r}); print(matplotlib.get_backend(), len(paths))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "2"]
