"""Measuring fastdnn: training-step time of the fast path and the reference, and this machine's BLAS peak.

What one measurement is:

- a step: forward, cost, backward and optimizer update on one batch, timed
  through each implementation's public ``model`` (``fastdnn.model`` and
  ``fastdnn.reference.model``, same arguments). The time of a run of 1 epoch
  is subtracted from a run of 1 + E epochs, so input checks, initialisation and
  conversions (paid once per call) cancel and only steps remain;
- GFLOP/s: the useful GEMM FLOPs of those steps (``step_flops``) over their time;
- the peak: a large square ``C = A @ B`` through
  ``fastdnn.kernels.blas.gemm_checked``, which is SciPy's ``?gemm``, the
  library and entry point the fast path uses: ``2 n^3 / seconds``.

Each implementation runs in its own process (``run_in_subprocess``, which runs
this module as ``python -m fastdnn.bench TASK``): numpy and SciPy bundle
separate OpenBLAS libraries, each with its own thread pool, and two pools
spinning in one process slow each other down. Threads are set with
threadpoolctl in the worker (and by the usual variables before its BLAS loads).
"""

import json
import math
import os
import statistics
import subprocess
import sys
import time

RESULT_MARKER = "@@fastdnn-bench@@ "
# Square GEMM sizes for the peak: large enough that BLAS runs at its best rate
# (well past every cache), small enough to take ~0.1 s on two cores.
PEAK_SIZES = {"float32": 2048, "float64": 1536}
from fastdnn.threads import step_flops  # noqa: E402,F401  (re-exported: the benchmarks count FLOPs with it)

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class BenchError(RuntimeError):
    """A benchmark worker failed; the message carries the end of its error output."""


def gemm_peak(dtype, n=None, repeats=3):
    """GFLOP/s of an n x n x n GEMM through gemm_checked (SciPy's ?gemm): per-repeat rates, first call untimed."""
    import numpy as np

    from fastdnn.kernels.blas import gemm_checked

    n = n or PEAK_SIZES[np.dtype(dtype).name]
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, n)).astype(dtype)
    C = np.zeros((n, n), dtype)
    gemm_checked(False, False, 1.0, A, B, 0.0, C)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gemm_checked(False, False, 1.0, A, B, 0.0, C)
        rates.append(2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    return rates


def synthetic_problem(n_features, m, seed=0):
    """Gaussian inputs and random 0/1 labels in the course's layout: X (n_features, m) float64 F-ordered, Y (1, m)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((m, n_features))
    return rows.T, rng.integers(0, 2, size=(1, m))


def time_steps(implementation, dims, m, batch=None, dtype="float64", epochs=None, iterations=20, repeats=3,
               optimizer="gd", learning_rate=0.0075, seed=0, gram=False):
    """Time training steps of ``implementation`` ("fastdnn" or "reference"): {"per_step": [s], "per_call": [s]}.

    Each repeat times ``model(..., num_epochs=1)`` and ``model(..., num_epochs=1 + E)``
    on the same data and starting parameters; the difference over the E epochs'
    steps is the time of a step, and what a 1-epoch call takes beyond its steps is
    the per-call cost (input checks, initialisation, conversion, and for the
    Gram route X X^T). E is chosen so that at least ``iterations`` steps are timed.
    batch None (or >= m) is full-batch gradient descent, one step per epoch.
    ``gram`` (fastdnn only) imposes its route on both calls. The reference always
    computes in float64.
    """
    import numpy as np

    import fastdnn
    from fastdnn import reference

    X, Y = synthetic_problem(dims[0], m, seed)
    batch = None if batch is None or batch >= m else batch
    steps_per_epoch = 1 if batch is None else math.ceil(m / batch)
    E = epochs or max(1, math.ceil(iterations / steps_per_epoch))
    params = reference.initialize_parameters(dims, "deep", seed)
    options = dict(learning_rate=learning_rate, mini_batch_size=batch, optimizer=optimizer, seed=seed, parameters=params)
    if implementation == "fastdnn":
        X = np.asarray(X, dtype)
        run = lambda n: fastdnn.model(X, Y, dims, num_epochs=n, dtype=dtype, gram=gram, **options)  # noqa: E731
    elif implementation == "reference":
        run = lambda n: reference.model(X, Y, dims, num_epochs=n, **options)  # noqa: E731
    else:
        raise ValueError(f"unknown implementation {implementation!r}; choose fastdnn or reference")
    run(1)  # compiles (or loads the cache) and touches every buffer once
    per_step, per_call = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(1)
        t1 = time.perf_counter()
        run(1 + E)
        t2 = time.perf_counter()
        step = max((t2 - t1) - (t1 - t0), 1e-9) / (E * steps_per_epoch)
        per_step.append(step)
        per_call.append(max(t1 - t0 - steps_per_epoch * step, 0.0))
    return {"per_step": per_step, "per_call": per_call}


def gram_route_applies(dims, m, batch, dtype, optimizer, epochs):
    """Whether ``fastdnn.model``'s gram="auto" takes the Gram route for a run of ``epochs`` on this shape."""
    import numpy as np

    import fastdnn
    from fastdnn.training import Trainer, use_gram

    probe = Trainer(fastdnn.initialize_parameters(dims, "deep", 0, dtype), optimizer=optimizer,
                    mini_batch_size=None if batch is None or batch >= m else batch)
    # The decision reads X's shape and dtype, never its values.
    return bool(use_gram("auto", probe, np.empty((m, dims[0]), dtype), epochs))


def blas_libraries():
    """threadpoolctl's view of the loaded BLAS libraries: which package bundles each, kernel, version, threads."""
    from threadpoolctl import threadpool_info

    out = []
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            owner = os.path.basename(os.path.dirname(lib.get("filepath", ""))) or lib.get("prefix", "?")
            out.append(
                f"{owner}: {lib.get('internal_api')} {lib.get('version')} "
                f"kernel {lib.get('architecture')}, threads {lib.get('num_threads')}"
            )
    return out


def run_task(task):
    """One implementation's measurements in this process, BLAS limited to task["threads"]: a JSON-able dict.

    task: {"kind": "fastdnn" | "reference", "dims", "m", "batch", "dtype", "iterations", "repeats",
    "optimizer", "learning_rate", "threads", "peak": [dtypes to measure the peak of], "peak_size"}.
    Result: {"routes": {name: time_steps(...)}, "peaks": {dtype: [GFLOP/s]}, "blas": [...]}; the fast
    path's routes are "direct" and, where ``fastdnn.model`` would take it, "gram".
    """
    import numpy  # noqa: F401  numpy's OpenBLAS, loaded so threadpoolctl reaches it
    import scipy.linalg.cython_blas  # noqa: F401  SciPy's, likewise
    from threadpoolctl import threadpool_limits

    common = dict(batch=task.get("batch"), dtype=task.get("dtype", "float64"), iterations=task.get("iterations", 20),
                  repeats=task.get("repeats", 3), optimizer=task.get("optimizer", "gd"),
                  learning_rate=task.get("learning_rate", 0.0075))
    dims, m = task["dims"], task["m"]
    with threadpool_limits(limits=task["threads"], user_api="blas"):
        if task["kind"] == "reference":
            routes = {"reference": time_steps("reference", dims, m, **common)}
        else:
            routes = {"direct": time_steps("fastdnn", dims, m, gram=False, **common)}
            # Where fastdnn.model would take the Gram route on this shape (it considers it from 10 epochs on).
            if gram_route_applies(dims, m, common["batch"], common["dtype"], common["optimizer"], max(10, common["iterations"])):
                routes["gram"] = time_steps("fastdnn", dims, m, gram=True, **common)
        peaks = {dt: gemm_peak(dt, task.get("peak_size"), task.get("repeats", 3)) for dt in task.get("peak", [])}
        libraries = blas_libraries()
    return {"routes": routes, "peaks": peaks, "blas": libraries}


def worker_environment(threads):
    """This process's environment with every thread variable set to ``threads`` (read when a BLAS loads)."""
    env = dict(os.environ)
    for name in _THREAD_VARIABLES:
        env[name] = str(threads)
    return env


def run_in_subprocess(task, timeout=1800):
    """``run_task(task)`` in a fresh ``python -m fastdnn.bench`` process; its result dict, or BenchError."""
    cmd = [sys.executable, "-m", "fastdnn.bench", json.dumps(task)]
    try:
        proc = subprocess.run(
            cmd, env=worker_environment(task["threads"]), capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {task['kind']} worker did not finish within {timeout} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    raise BenchError(f"the {task['kind']} worker exited with status {proc.returncode}: {lines[-1] if lines else 'no output'}")


def summary(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def _worker(argv):
    task = json.loads(argv[0])
    result = run_task(task)
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
