"""Every script in tools/ runs: its --help, and one run on tiny inputs whose output shows it did its work
(a measurement only in name: nothing here checks a timing). Each is a fresh process started from the
repository root, as the README starts them."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS = sorted(p.name for p in (REPO / "tools").glob("*.py"))
# The option naming the cat files' folder, in the tools that take one: its help must show the folder used.
DATA_FOLDER_OPTIONS = {"before_after.py": "--data-dir", "bench_seed.py": "--data-dir", "cat_example.py": "--data-dir",
                       "compare.py": "--data-dir", "entry_points.py": "--data-dir", "sweep_bench.py": "--data"}
HAS_MPI = importlib.util.find_spec("mpi4py") is not None
RUN = set()  # the tools that a test below runs for real


def runs(name, slow=False):
    """Registers a test as ``name``'s real run; ``slow`` for those whose least run takes over ~10 s here."""
    RUN.add(name)
    return pytest.mark.slow if slow else (lambda test: test)


def tool(name, *args, env=None, cwd=REPO, check=True):
    """(returncode, stdout, stderr) of ``python tools/NAME ARGS``; with ``check``, a failure fails the test
    showing what the tool said."""
    done = subprocess.run([sys.executable, str(REPO / "tools" / name), *map(str, args)], cwd=cwd,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=600)
    if check:
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def cat_folder(tmp_path):
    """Files in the cat data's layout (train_set_x/train_set_y, test_set_x/test_set_y, uint8 images), 4 x 4
    pixels instead of 64 x 64: what a tool reads from the course's folder, small (but more training images
    than cat_example's minibatch of 64)."""
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    folder = tmp_path / "cats"
    folder.mkdir()
    for split, m in (("train", 80), ("test", 20)):
        with h5py.File(folder / f"{split}_catvnoncat.h5", "w") as f:
            f[f"{split}_set_x"] = rng.integers(0, 256, (m, 4, 4, 3), dtype=np.uint8)
            f[f"{split}_set_y"] = np.arange(m) % 2
    return folder


def test_every_tool_has_a_real_run_here():
    assert sorted(RUN) == TOOLS


@pytest.mark.parametrize("name", TOOLS)
def test_help_describes_the_tool_and_does_nothing_else(name, tmp_path):
    cats = tmp_path / "cats"
    # A wide terminal, so that argparse does not break the folder's path across lines.
    _, out, _ = tool(name, "--help", env={"FASTDNN_CAT_DATA": str(cats), "COLUMNS": "400"}, cwd=tmp_path)
    assert out.startswith("usage:") and list(tmp_path.iterdir()) == []
    if name in DATA_FOLDER_OPTIONS:
        assert DATA_FOLDER_OPTIONS[name] in out and f"default {cats}:" in out


@runs("before_after.py")
def test_before_after_times_two_checkouts():
    _, out, _ = tool("before_after.py", ".", ".", "--processes", 1, "--workloads", "tiny", "--epochs", 10)
    assert out.startswith("tiny ") and "after/before" in out


def test_before_after_runs_each_checkout_it_is_given_not_the_one_it_is_started_in(tmp_path):
    """`python -c` puts the working directory before PYTHONPATH: a worker started in this checkout's root
    imported this fastdnn whatever checkout it was given. A checkout whose fastdnn cannot import must fail."""
    other = tmp_path / "other"
    (other / "fastdnn").mkdir(parents=True)
    (other / "fastdnn" / "__init__.py").write_text('raise ImportError("the other checkout was imported")\n')
    code, out, _ = tool("before_after.py", other, other, "--processes", 1, "--workloads", "tiny", "--epochs", 10,
                        check=False)
    assert code == 1 and "the other checkout was imported" in out


@runs("bench_seed.py", slow=True)
def test_bench_seed_on_synthetic_data_of_the_cat_shape(tmp_path):
    _, out, _ = tool("bench_seed.py", "--repeats", 1, "--target-seconds", 0.01, "--data-dir", tmp_path)
    assert "speedup vs reference" in out and "GEMM roofline ms" in out


@runs("blas_peak.py")
def test_blas_peak_writes_its_json(tmp_path):
    tool("blas_peak.py", "--repeats", 1, "--json", tmp_path / "peak.json")
    peak = json.loads((tmp_path / "peak.json").read_text())
    assert min(peak["sgemm"], peak["dgemm"], peak["bandwidth"]) > 0


@runs("cold_start.py")
def test_cold_start_times_a_first_call():
    _, out, _ = tool("cold_start.py", "--only", "direct-float64", "--repeats", 1)
    assert out.splitlines()[-1].startswith("direct-float64 ")


@pytest.mark.slow
def test_cold_start_breaks_a_first_call_down():
    _, out, _ = tool("cold_start.py", "--breakdown", "direct-float64")
    assert out.startswith("first call ") and "network.train " in out


@runs("cat_example.py")
def test_cat_example_on_files_of_the_cat_layout(cat_folder):
    _, out, _ = tool("cat_example.py", "--data-dir", cat_folder, "--seeds", "1,2", "--epochs", 2)
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines[1:3]] == ["seed 1", "seed 2"]
    assert lines[-1].startswith("test accuracy over seeds 1,2: ")


@runs("compare.py")
def test_compare_on_the_tiny_workload(tmp_path):
    only = "fastdnn-f32,reference,numpy-gemms,sklearn"
    tool("compare.py", "--workloads", "tiny", "--only", only, "--repeats", 1, "--target-seconds", 0.01,
         "--json", tmp_path / "compare.json")
    results = json.loads((tmp_path / "compare.json").read_text())["workloads"]["tiny"]["results"]
    assert sorted(results) == sorted(only.split(","))
    assert all("per_step" in r or r.get("skipped") == "skipped: sklearn is not installed" for r in results.values())


@runs("option_cost.py")
def test_option_cost_times_a_weighted_step_beside_a_plain_one():
    _, out, _ = tool("option_cost.py", "--layers", "16,8,1", "--batch", 16, "--batches", 2, "--epochs", 2,
                     "--threads", 1, "--rounds", 1, "--repeats", 1)
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [["plain", "threads", "1"],
                                                                  ["weighted", "threads", "1"]]


@runs("defaults.py")
def test_defaults_on_iris():
    pytest.importorskip("sklearn")
    _, out, _ = tool("defaults.py", "--parts", "classification", "--seeds", 0, "--datasets", "iris")
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("fastdnn DNNClassifier() ") and lines[-1].startswith("iris ")


def test_defaults_regression_on_tiny_sizes():
    """diabetes' 5 folds and a 1000-row make_regression; the LinearRegression column, recomputed here by the
    protocol the tool's docstring states (X and y standardised on the training rows), to its 4 decimals."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, train_test_split
    from sklearn.preprocessing import StandardScaler

    def linear_r2(Xtr, ytr, Xte, yte):
        x, t = StandardScaler().fit(Xtr), StandardScaler().fit(ytr[:, None])
        model = LinearRegression().fit(x.transform(Xtr), t.transform(ytr[:, None]).ravel())
        return r2_score(t.transform(yte[:, None]).ravel(), model.predict(x.transform(Xte)))

    _, out, _ = tool("defaults.py", "--parts", "regression", "--seeds", 0, "--regression-rows", 1000)
    lines = out.splitlines()
    assert len(lines) == 4 and lines[0].startswith("fastdnn DNNRegressor() ")
    assert lines[2].startswith("diabetes 5-fold ") and lines[3].startswith("make_regression 1000x100 ")
    X, y = load_diabetes(return_X_y=True)
    folds = KFold(5, shuffle=True, random_state=0).split(X)
    expected = [np.mean([linear_r2(X[tr], y[tr], X[te], y[te]) for tr, te in folds])]
    X, y = make_regression(n_samples=1000, n_features=100, noise=50.0, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    expected.append(linear_r2(Xtr, ytr, Xte, yte))
    for line, r2 in zip(lines[2:], expected):
        words = line.split()
        # "LABEL LABEL ours ±std [range] theirs ±std [range] linear fit / fit": R^2 is at most 1; the printed
        # linear R^2 is within half its last decimal (plus the rounding of two fits) of the one computed here.
        assert float(words[2]) <= 1 and float(words[5]) <= 1
        assert abs(float(words[-4]) - r2) <= 5e-5 + 1e-9
    assert "DNNRegressor" not in out.split("MLPRegressor")[-1]  # nothing of the other parts


def test_defaults_class_weight_on_tiny_sizes():
    """A 1000-row 1:50 make_classification; the LogisticRegression rows and the minority counts recomputed here
    by the protocol the tool's docstring states (stratified 75/25, X standardised on the training rows)."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, recall_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    _, out, _ = tool("defaults.py", "--parts", "class-weight", "--seeds", "0,1", "--class-weight-rows", 1000)
    lines = out.splitlines()
    X, y = make_classification(n_samples=1000, weights=[50 / 51], random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(Xtr)
    assert lines[0].startswith(f"class_weight on make_classification(1000 rows, 1:50), minority class 1: "
                               f"{np.sum(ytr == 1)} of 750 training rows, {np.sum(yte == 1)} of 250 test rows;")
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    assert list(rows) == ["DNNClassifier()", "DNNClassifier(class_weight='balanced')", "LogisticRegression()",
                          "LogisticRegression(class_weight='balanced')"]
    for name, words in rows.items():
        assert all(0 <= float(v) <= 1 for v in (words[0], words[2]))
        if name.startswith("LogisticRegression"):
            weight = "balanced" if "balanced" in name else None
            predicted = LogisticRegression(class_weight=weight).fit(scaler.transform(Xtr), ytr).predict(
                scaler.transform(Xte))
            # A proportion of 250 (or of the minority's test rows) printed to 4 decimals: within half of the last.
            assert abs(float(words[0]) - balanced_accuracy_score(yte, predicted)) <= 5e-5 + 1e-9
            assert abs(float(words[2]) - recall_score(yte, predicted, pos_label=1)) <= 5e-5 + 1e-9


def test_defaults_refuses_an_unknown_part_or_too_few_rows_in_one_line():
    # Each with what keeps the run tiny, were it not refused.
    for args, option in ((["--parts", "classification,regresion", "--datasets", "iris"], "--parts"),
                         (["--parts", "regression", "--regression-rows", 5], "--regression-rows"),
                         (["--parts", "class-weight", "--class-weight-rows", 999], "--class-weight-rows")):
        code, out, err = tool("defaults.py", "--seeds", 0, *args, check=False)
        assert code == 2 and out == "" and err.splitlines()[-1].startswith(f"defaults.py: error: {option}: ")


@runs("entry_points.py", slow=True)
def test_entry_points_on_files_of_the_cat_layout(cat_folder):
    _, out, _ = tool("entry_points.py", "--repeats", 1, "--epochs", 5, "--data-dir", cat_folder)
    assert len(out.splitlines()) == 5 and "fastdnn train --checkpoint-every 100" in out


@runs("make_dataset.py")
@runs("stream_bench.py")
def test_make_dataset_then_stream_bench_in_memory_and_streamed(tmp_path):
    data = tmp_path / "big.npy"
    # 4096 x 128 float32 is 2 MiB: more than the smallest --memory (1MB), so that the streamed runs stream.
    tool("make_dataset.py", data, "--rows", 4096, "--features", 128)
    X, y = np.load(data), np.load(tmp_path / "big.labels.npy")
    assert X.shape == (4096, 128) and y.shape == (4096,)
    # The CSV holds the same rows, printed so that they read back exactly.
    tool("make_dataset.py", tmp_path / "big.csv", "--rows", 100, "--features", 128)
    from fastdnn.data import load_dataset

    csv = load_dataset(tmp_path / "big.csv")
    assert np.array_equal(csv.X.astype(np.float32), X[:100]) and np.array_equal(csv.y, y[:100])
    _, out, _ = tool("stream_bench.py", data, "--layers", 8, "--epochs", 1, "--repeats", 1, "--stream", "1MB")
    assert {line.split()[2] for line in out.splitlines() if line.startswith("  run 1 ")} == {
        "memory", "streamed", "streamed-cold"}


@runs("mpi_bench.py")
@runs("scaling_model.py")
def test_mpi_bench_then_scaling_model(tmp_path):
    # Without mpi4py only the one-process mode runs (it needs no MPI); scaling_model takes what there is.
    modes = "1x2,2x1-shm,2x1-tcp" if HAS_MPI else "1x2"
    tool("mpi_bench.py", "--workloads", "tiny", "--modes", modes, "--steps", 16, "--repeats", 1,
         "--json", tmp_path / "mpi.json")
    assert sorted(json.loads((tmp_path / "mpi.json").read_text())["tiny"]) == sorted(modes.split(","))
    _, out, _ = tool("scaling_model.py", tmp_path / "mpi.json")
    assert [line.split()[0] for line in out.splitlines() if line.strip()[:1].isdigit()] == [
        "2", "4", "8", "16", "32", "64"]


@runs("onnx_error.py")
def test_onnx_error_of_a_saved_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from fastdnn import DNNClassifier

    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    DNNClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y).save(tmp_path / "m.npz")
    np.savez(tmp_path / "rows.npz", X=X, y=y)
    _, out, _ = tool("onnx_error.py", tmp_path / "m.npz", "--data", tmp_path / "rows.npz")
    assert out.splitlines()[1].startswith("max |a - b| / max |b| = ") and out.endswith("labels that differ: 0\n")
    code, _, err = tool("onnx_error.py", tmp_path / "m.npz", check=False)  # the built-in data have 200 features
    assert code == 1 and err == (f"onnx_error: the built-in dataset has 200 features; {tmp_path / 'm.npz'} takes 6: "
                                 "pass the data it was trained on with --data\n")


@runs("overlap_bench.py")
def test_overlap_bench_on_two_ranks(tmp_path):
    if not HAS_MPI:
        pytest.skip("overlap_bench needs mpi4py and mpiexec: pip install 'fastdnn[mpi]'")
    tool("overlap_bench.py", "--workloads", "tiny", "--modes", "shm", "--rounds", 1, "--steps", 2,
         "--json", tmp_path / "overlap.json")
    (result,) = json.loads((tmp_path / "overlap.json").read_text())
    assert result["same"] is True and len(result["ms"]["blocking"]) == 1


@runs("pool_bench.py")
def test_pool_bench_times_the_pool_beside_a_prange_pool():
    _, out, _ = tool("pool_bench.py", "--workloads", "tiny", "--threads", 2, "--configs", "pool,prange-workqueue",
                     "--rounds", 1, "--repeats", 1, "--target-seconds", 0.01)
    assert [line.split()[:3] for line in out.splitlines()[1:]] == [["tiny", "pool", "2"],
                                                                   ["tiny", "prange-workqueue", "2"]]


@runs("profile_step.py")
def test_profile_step_on_a_tiny_network():
    _, out, _ = tool("profile_step.py", "--layers", "16,8,1", "--batch", 32, "--repeats", 1)
    assert "GEMM dW2 = dZ2^T A1" in out and "GEMMs together" in out
    assert "network.train" in out and "train_pool" in out  # the whole step, both ways


@runs("split_memory.py")
def test_split_memory_with_early_stopping_on_a_small_x():
    _, out, _ = tool("split_memory.py", "early", "--rows", 2000, "--features", 8)
    assert out.startswith("early: X 0.00 GiB; fit added ")


@runs("sweep_bench.py", slow=True)
def test_sweep_bench_every_mode_on_files_of_the_cat_layout(cat_folder, tmp_path):
    pytest.importorskip("sklearn")
    tool("sweep_bench.py", "--data", cat_folder, "--repeats", 1, "--iterations", 5, "--json", tmp_path / "sweep.json")
    got = json.loads((tmp_path / "sweep.json").read_text())
    assert {mode: runs[0]["configurations"] for mode, runs in got.items()} == {"fastdnn": 24, "sklearn": 12,
                                                                             "reference": 2}
