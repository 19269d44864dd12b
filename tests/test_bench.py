"""The one benchmark module (fastdnn.bench) and the one workload table (fastdnn.workloads).

Timing is checked against a fake clock, so the calibration's arithmetic is
tested exactly; the workers run for real, at tiny sizes, in fresh processes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy.testing as npt
import pytest

from fastdnn import bench, workloads

REPO = Path(__file__).resolve().parents[1]
CAT_FOLDER = Path(os.environ.get("FASTDNN_CAT_DATA", REPO.parent / "shared" / "data" / "catvnoncat"))


class FakeClock:
    """A clock that only ``run(n)`` moves: T(n) = per_call(n) + n * step."""

    def __init__(self, step, per_call):
        self.now, self.step, self.per_call = 0.0, step, per_call

    def perf_counter(self):
        return self.now

    def run(self, n):
        self.now += self.per_call(n) + n * self.step


@pytest.fixture
def clock(monkeypatch):
    def make(step, per_call):
        fake = FakeClock(step, per_call)
        monkeypatch.setattr(bench, "time", SimpleNamespace(perf_counter=fake.perf_counter))
        return fake

    return make


def test_time_steps_makes_calls_of_the_target_length_with_the_per_call_cost_under_five_percent(clock):
    fake = clock(step=1e-5, per_call=lambda n: 2e-3)
    result = bench.time_steps(fake.run, repeats=3, target_seconds=0.05)
    # 0.05 s / 1e-5 s = 5000 steps; the per-call cost alone asks for 2e-3 / (0.05 * 1e-5) = 4000.
    assert result["iterations"] in (5000, 5001)  # rounded in floating point
    npt.assert_allclose(result["per_call"], 2e-3, rtol=1e-9)
    npt.assert_allclose(result["per_step"], [1e-5 + 2e-3 / result["iterations"]] * 3, rtol=1e-9)


def test_time_steps_lengthens_calls_until_the_per_call_cost_is_five_percent(clock):
    fake = clock(step=1e-5, per_call=lambda n: 0.01)
    result = bench.time_steps(fake.run, repeats=1, target_seconds=0.01)
    assert result["iterations"] == 20000  # 0.01 / (0.05 * 1e-5): a call of 0.2 s, not of the target's 0.01
    assert result["per_call"] / (result["per_step"][0] * result["iterations"]) <= 0.05 + 1e-9


def test_time_steps_measures_the_per_call_cost_of_runs_of_ten_or_more_when_steps_are_cheap(clock):
    # A fixed cost that only runs of 10 or more pay (a library that changes strategy with a run's length).
    fake = clock(step=1e-5, per_call=lambda n: 5e-3 if n >= 10 else 1e-4)
    result = bench.time_steps(fake.run, repeats=1, target_seconds=0.05)
    npt.assert_allclose(result["per_call"], 5e-3, rtol=1e-9)
    assert result["iterations"] in (10000, 10001)  # ceil(5e-3 / (0.05 * 1e-5)), rounded in floating point


def test_time_steps_honours_a_minimum_and_counts_steps_per_iteration(clock):
    fake = clock(step=4e-3, per_call=lambda n: 0.0)  # an iteration (epoch) of 4 steps of 1e-3 s
    result = bench.time_steps(fake.run, repeats=2, target_seconds=0.01, min_iterations=50, steps_per_iteration=4)
    assert result["iterations"] == 50
    npt.assert_allclose(result["per_step"], [1e-3, 1e-3], rtol=1e-9)


def test_worker_environment_sets_every_thread_variable_and_leaves_out_openblas_core_overrides(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    env, removed = bench.worker_environment(3)
    assert all(env[name] == "3" for name in bench.THREAD_VARIABLES)
    assert "OPENBLAS_CORETYPE" not in env and removed == ["OPENBLAS_CORETYPE=Haswell"]
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"  # the parent's own environment is untouched
    assert any("OPENBLAS_CORETYPE=Haswell" in line for line in bench.machine_header(3, ["some BLAS"]))


def test_run_worker_returns_the_marked_line_and_raises_with_the_end_of_a_failure():
    result = {"per_step": [1.5e-3]}
    code = f"print('chatter'); print({bench.RESULT_MARKER!r} + {json.dumps(json.dumps(result))})"
    assert bench.run_worker([sys.executable, "-c", code], threads=1) == result
    with pytest.raises(bench.BenchError, match=r"status 1: .*ValueError: no luck"):
        bench.run_worker([sys.executable, "-c", "raise ValueError('no luck')"], threads=1, what="test")


@pytest.mark.parametrize("name", list(workloads.WORKLOADS))
def test_every_workload_builds_its_data_in_the_course_layout(name):
    w = workloads.WORKLOADS[name]
    X, Y, source = workloads.workload_data(name, data_dir=CAT_FOLDER)
    assert X.shape == (w.dims[0], w.m) and X.T.flags.c_contiguous and X.dtype == w.dtype
    assert Y.shape == ((w.dims[-1], w.m) if w.output == "softmax" else (1, w.m)) and Y.dtype == w.dtype
    X2, Y2, _ = workloads.workload_data(name, data_dir=CAT_FOLDER)
    npt.assert_array_equal(X, X2)  # the same in every process
    npt.assert_array_equal(Y, Y2)
    assert source


def test_the_cat_workload_reads_the_course_data_as_the_course_prepares_it(cat_data):
    X, Y, source = workloads.cat_data(CAT_FOLDER)
    assert "cat data from" in source
    npt.assert_array_equal(X, cat_data.train_x)
    npt.assert_array_equal(Y, cat_data.train_y)


def test_the_cat_workload_falls_back_to_synthetic_pixels_of_its_shape(tmp_path):
    X, Y, source = workloads.cat_data(tmp_path)
    assert X.shape == (12288, 209) and Y.shape == (1, 209) and 0 <= X.min() and X.max() <= 1
    assert "not found" in source


def test_gram_route_applies_where_model_takes_it():
    seed = list(workloads.SEED_DIMS)
    assert bench.gram_route_applies(seed, 209, None, "float64", "gd", 100)
    assert not bench.gram_route_applies(seed, 209, None, "float64", "gd", 5)  # too short a run
    assert not bench.gram_route_applies(seed, 209, 64, "float64", "gd", 100)  # minibatches
    assert not bench.gram_route_applies(seed, 209, None, "float64", "adam", 100)
    assert not bench.gram_route_applies([64, 32, 1], 64, None, "float32", "gd", 100)  # not wide


@pytest.mark.parametrize("name, route", [("seed", "Gram"), ("seed-direct", "direct"), ("small", "direct")])
def test_fastdnn_runner_imposes_the_route_gram_auto_takes_on_a_long_run(name, route):
    w = workloads.WORKLOADS[name]
    X, Y, _ = workloads.workload_data(name, data_dir=CAT_FOLDER)
    assert bench.fastdnn_runner(X, Y, list(w.dims), w.dtype, w.gram)[1] == route


def test_gemm_peak_gives_one_rate_per_repeat():
    rates = bench.gemm_peak("float32", n=64, repeats=2)
    assert len(rates) == 2 and min(rates) > 0


def test_format_table_left_aligns_the_first_column_and_right_aligns_the_rest():
    lines = bench.format_table(["name", "ms"], [["a", "1.5"], ["longer", "12"]])
    assert lines == ["name     ms", "------  ---", "a       1.5", "longer   12"]


def test_bench_command_times_reference_and_both_fastdnn_routes_in_their_own_processes():
    # Wide and full batch (16 examples of 256 features): the fast path's Gram route is timed too.
    out = []
    status = bench.bench_command([256, 4, 1], 16, iterations=2, repeats=1, threads=1, peak_size=64, say=out.append,
                                 target_seconds=0.02)
    stdout = "\n".join(out) + "\n"
    assert status == 0, stdout
    rows = stdout.split("-----\n")[1].split("\n\n")[0].splitlines()
    assert [row.split("  ")[0] for row in rows] == ["reference (numpy)", "fastdnn", "fastdnn, Gram route *"]
    assert "float64 " in rows[0] and "float64 " in rows[1]
    assert "GFLOP/s (n=64)" in stdout.split("BLAS peak")[1]
    assert "X X^T once per run" in stdout


def test_compare_worker_times_a_workload_of_the_table_through_the_one_protocol():
    cmd = [sys.executable, str(REPO / "tools" / "compare.py"), "--worker", "fastdnn-f32", "--workload", "tiny",
           "--threads", "1", "--repeats", "2", "--target-seconds", "0.02"]
    result = bench.run_worker(cmd, threads=1, what="compare")
    assert len(result["per_step"]) == 2 and result["iterations"] >= 3
    assert result["dtype"] == "float32" and result["route"] == "direct"
    assert "random labels of 2 classes" in result["data"]


def test_the_tools_and_the_asv_suite_load_with_the_one_module():
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "import compare, bench_seed, blas_peak, common, training, cold_start;"
        "from fastdnn.workloads import WORKLOADS;"
        "assert list(common.WORKLOADS) == list(WORKLOADS) and compare.WORKLOADS is WORKLOADS"
    )
    subprocess.run([sys.executable, "-c", code, str(REPO / "tools"), str(REPO / "asv_benchmarks")], check=True)
