"""Measuring training steps: the one benchmark module behind ``fastdnn bench``, tools/ and asv_benchmarks/.

What one measurement is (``time_steps``), for every implementation and every caller:

- ``run(n)`` trains n iterations (epochs) in one call, through an implementation's
  public entry point: ``fastdnn.model`` (``fastdnn_runner``), ``fastdnn.reference.model``
  (``reference_runner``), or a tool's runner for another library;
- calibration: after an untimed ``run(1)`` (compile or cache load), ``run(1)`` and
  ``run(3)`` are timed to split a call into a per-step time s and a per-call cost o
  (input checks, initialisation, conversion, the Gram matrix: T(n) = o + n s). When
  steps are cheap, again with runs of n and 2n iterations, n = 10, 40, 160, ... until
  a run of n lasts a tenth of the target and twice a run of 10, so that the n steps
  weigh at least as much as o and stand out of its noise (each length of the pair
  timed 3 times, the shortest kept). N is then the largest of: one call lasting
  ``target_seconds``, o at most 5% of a call (o / (0.05 s)), and the caller's
  minimum; at most ``MAX_ITERATIONS``;
- ``repeats`` calls of ``run(N)``: ms/step = call time / (N x steps per iteration),
  reported as median [min-max] (``summary``, ``format_ms``).

A run's length must not change what is timed, so fastdnn's gram="auto" is resolved
before timing (``fastdnn_runner``): the route it takes on a long run is imposed.

Why whole calls of a calibrated length rather than the difference of a 1 + E and a
1-epoch call (this module's earlier method): each figure is one timed call, what a
user waits for divided by its steps, with the per-call costs bounded at 5% by
construction; a difference of two timings carries the noise of both, divided by the
E steps only, so on a shared two-core machine it swung and went negative (it needed a
clamp at 1 ns). And it works unchanged for a library whose calls are not epochs of
one model (PyTorch's loop, scikit-learn's ``fit``), so every row of a side-by-side
table is the same measurement. The per-call cost o is reported as ``per_call``.

Where: every implementation runs in its own fresh process (``run_worker``), because
numpy and SciPy bundle separate OpenBLAS libraries, each with its own thread pool,
and two pools spinning in one process slow each other down (alternating numpy's and SciPy's
BLAS in one loop, two threads each, ran 2.5-3x slower than either alone on a 2-core AMD EPYC). A worker
prints one line, ``RESULT_MARKER`` + JSON (``emit``); the parent finds it.
``python -m fastdnn.bench TASK`` is the package's worker (``measure_task``); tools
run their own scripts as workers for other libraries, with the same environment,
marker, thread limits and timing.

Threads: the worker's environment (``worker_environment``) sets OMP/OPENBLAS/MKL/
NUMBA_NUM_THREADS to the count, read when a library loads, and leaves out
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which pick OpenBLAS's kernel by hand: a
benchmark measures the kernel the library detects for this CPU (the parent's own
environment is untouched, and ``machine_header`` says what was left out). In the
worker, ``limit_threads`` caps every loaded BLAS with threadpoolctl (the variables
do not reach a library already loaded) and Numba with ``numba.set_num_threads``.

FLOPs: ``step_flops`` (fastdnn.threads) counts a step's GEMMs; ``gram_flops`` the
Gram route's. GFLOP/s divides the *useful* count (the course's minus dA0 = W1^T dZ1,
which nothing uses) by the step time for every row, so GFLOP/s ratios are speed ratios.

The peak (``gemm_peak``): a large square ``C = A @ B`` through SciPy's ``?gemm``
(``scipy.linalg.blas``), the library the fast path's kernels call; at n = 1536-2048
a call takes ~0.1 s and Python's overhead is nothing beside it: ``2 n^3 / seconds``.
"""

import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from fastdnn.threads import step_flops, usable_cores
from fastdnn.workloads import synthetic_data, workload, workload_data

RESULT_MARKER = "@@fastdnn-bench@@ "
LEARNING_RATE = 0.0075
# A timed call lasts about this long, unless the per-call cost needs a longer one (see time_steps).
TARGET_SECONDS = 1.0
# Per-call costs (checks, initialisation, conversion, the Gram matrix) are at most this share of a timed call.
MAX_OVERHEAD = 0.05
# Timed calls run at most this many iterations (unless the caller's minimum is more), whatever the per-call cost.
MAX_ITERATIONS = 20000
# Square GEMM sizes for the peak: large enough that BLAS runs at its best rate
# (well past every cache), small enough to take ~0.1 s on two cores.
PEAK_SIZES = {"float32": 2048, "float64": 1536}
# gram="auto" is timed as the route it takes on a run this long, and gram=True only where that is the Gram route.
LONG_RUN_EPOCHS = 100

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# Variables that pick OpenBLAS's kernel by hand; workers run without them.
CORE_OVERRIDE_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Route names of fastdnn's gram option in a worker's result.
GRAM_ROUTES = {False: "direct", True: "gram", "auto": "auto"}


class BenchError(RuntimeError):
    """A benchmark worker failed; the message carries the end of its error output."""


# ---------------------------------------------------------------------------- processes


def worker_environment(threads):
    """(env, removed): this process's environment with every thread variable at ``threads`` and the OpenBLAS
    core overrides left out, and the "NAME=value" of each one left out."""
    env = dict(os.environ)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    removed = [f"{name}={env.pop(name)}" for name in CORE_OVERRIDE_VARIABLES if name in env]
    return env, removed


def run_worker(cmd, threads, timeout=1800, what="benchmark"):
    """Run ``cmd`` (a worker's command line) in a fresh process with ``worker_environment(threads)``; its result.

    Returns the JSON object the worker printed after ``RESULT_MARKER``; raises
    BenchError with the end of its error output when there is none.
    """
    env, _ = worker_environment(threads)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise BenchError(f"the {what} worker did not finish within {timeout} s") from None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    raise BenchError(f"the {what} worker exited with status {proc.returncode}: {' | '.join(tail) or 'no output'}")


def emit(result):
    """The worker's side of the protocol: print the one line the parent looks for."""
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(result), flush=True)


def run_in_subprocess(task, timeout=1800):
    """``measure_task(task)`` in a fresh ``python -m fastdnn.bench`` process; its result, or BenchError."""
    cmd = [sys.executable, "-m", "fastdnn.bench", json.dumps(task)]
    return run_worker(cmd, task["threads"], timeout, what=task["kind"])


# ---------------------------------------------------------------------------- machine and threads


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_header(threads, blas=None, packages=("fastdnn", "numpy", "scipy", "numba", "threadpoolctl")):
    """Lines describing the machine, the packages' versions, the BLAS libraries (a worker's
    ``blas_libraries()``) and the thread settings. Loads nothing."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    lines = [
        f"machine: {_cpu_model()}, {os.cpu_count()} logical CPUs ({usable_cores()} usable), load average {load}",
        f"python {platform.python_version()}, " + ", ".join(f"{p} {_version(p)}" for p in packages),
    ]
    if blas is not None:
        lines.append("BLAS: " + ("; ".join(blas) or "none loaded"))
    lines.append(
        f"threads: {threads} per worker (BLAS via threadpoolctl, Numba via numba.set_num_threads, "
        f"OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS={threads} in the worker's environment); "
        "one worker at a time, each in a fresh process"
    )
    _, removed = worker_environment(threads)
    if removed:
        lines.append("OpenBLAS core override left out of the workers' environment: " + ", ".join(removed))
    return lines


def _cpu_busy(seconds=0.5):
    """Fraction of all CPUs busy over ``seconds`` while this process sleeps (from /proc/stat), or None."""

    def sample():
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0.0)

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


def busy_warning(threads):
    """A warning when other processes keep the CPUs busy (threaded BLAS then slows erratically), else None.

    Sampled for half a second before the workers start, so the benchmark's own
    load (which a load average taken afterwards would include) never counts.
    """
    busy = _cpu_busy()
    if busy is None or busy < 0.15:
        return None
    return (
        f"WARNING: {100 * busy:.0f}% of the CPUs were busy with other processes just before this run; "
        f"with {threads} threads per worker the timings can be several times slower and erratic"
    )


def blas_libraries():
    """threadpoolctl's view of the BLAS libraries loaded here: which package bundles each, kernel, version, threads."""
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


def limit_threads(threads, numba=True):
    """Cap every BLAS (numpy's and SciPy's OpenBLAS) and, if ``numba``, Numba's pool at ``threads``.

    Loads numpy's and SciPy's BLAS first: threadpoolctl reaches only libraries
    already loaded. ``numba.set_num_threads`` starts Numba's threading layer (an
    OpenMP runtime), so workers that run no Numba code (the reference, PyTorch,
    scikit-learn) pass numba=False rather than carry a second runtime beside
    their own. Returns (limiter, blas_libraries()); keep the limiter alive while measuring.
    """
    import scipy.linalg.blas  # noqa: F401  loads SciPy's OpenBLAS (numpy's is loaded already)
    from threadpoolctl import threadpool_limits

    limiter = threadpool_limits(limits=threads, user_api="blas")
    if numba:
        import numba as nb

        nb.set_num_threads(threads)
    return limiter, blas_libraries()


# ---------------------------------------------------------------------------- timing


def _seconds(run, n, tries=1):
    """The shortest of ``tries`` timed calls run(n): other processes only ever add time."""
    best = math.inf
    for _ in range(tries):
        t0 = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t0)
    return best


def _probe(run, short, long, tries=1):
    """(step, per-call) seconds from timed calls run(short) and run(long): T(n) = per-call + n * step."""
    t_short, t_long = _seconds(run, short, tries), _seconds(run, long, tries)
    # Noise can make the difference tiny or negative: keep the step plausible.
    step = max((t_long - t_short) / (long - short), 0.02 * t_long / long, 1e-9)
    return step, max(t_short - short * step, 0.0)


def _calibrate(run, target_seconds, min_iterations, max_iterations=MAX_ITERATIONS):
    """(iterations, step, per-call) so that a call lasts ~target_seconds and its per-call cost stays small."""
    run(1)
    step, per_call = _probe(run, 1, 3)
    if 30 * step <= 2 * target_seconds:
        # Cheap steps: probe again at lengths long enough that the steps' share of a call stands out
        # of the per-call cost's noise.
        short = 10
        seconds = _seconds(run, short)
        enough = max(target_seconds / 10, 2 * seconds)
        while seconds < enough and 4 * short <= max_iterations // 2:
            short *= 4
            seconds = _seconds(run, short)
        step, per_call = _probe(run, short, 2 * short, tries=3)
    n = max(target_seconds / step, per_call / (MAX_OVERHEAD * step), min_iterations, 3)
    return int(min(math.ceil(n), max(max_iterations, min_iterations))), step, per_call


def time_steps(run, repeats=3, target_seconds=TARGET_SECONDS, min_iterations=1, steps_per_iteration=1):
    """Time ``run(n)`` (n iterations in one call) as the module docstring says: a dict.

    {"per_step": [seconds per step, one per repeat], "iterations": N per timed call,
    "per_call": seconds a call costs beyond its steps (estimated at calibration)}.
    ``steps_per_iteration``: training steps in one iteration (minibatches in an epoch).
    """
    iterations, _, per_call = _calibrate(run, target_seconds, min_iterations)
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(iterations)
        per_step.append((time.perf_counter() - t0) / (iterations * steps_per_iteration))
    return {"per_step": per_step, "iterations": iterations, "per_call": per_call}


# ---------------------------------------------------------------------------- runners


def _full_batch(batch, m):
    return None if batch is None or batch >= m else batch


def fastdnn_runner(X, Y, dims, dtype, gram="auto", optimizer="gd", batch=None, learning_rate=LEARNING_RATE,
                   threads=None):
    """(run, route): run(n) trains ``fastdnn.model`` for n epochs from the course's initialisation;
    route is the formulation every run takes, "direct" or "Gram".

    X (n_0, m), Y (1, m) or one-hot (K, m); ``gram`` is fastdnn's option. "auto"
    is resolved here to the route it takes on a long run, and imposed: left to
    each call it would pick the direct route for runs under 10 epochs, and a
    calibration that probes short runs would time a route the timed runs do not take.
    ``threads`` is passed on: with None fastdnn picks its own BLAS threads (one
    for small steps), and a comparison wants every implementation at one count.
    """
    import fastdnn

    m = X.shape[1]
    batch = _full_batch(batch, m)
    output = "softmax" if dims[-1] > 1 else "sigmoid"
    if gram == "auto":
        gram = gram_route_applies(dims, m, batch, dtype, optimizer, LONG_RUN_EPOCHS)

    def run(n):
        fastdnn.model(X, Y, dims, learning_rate, num_epochs=n, mini_batch_size=batch, optimizer=optimizer,
                      output=output, dtype=dtype, threads=threads, gram=gram)

    return run, "Gram" if gram else "direct"


def reference_runner(X, Y, dims, optimizer="gd", batch=None, learning_rate=LEARNING_RATE):
    """run(n): ``fastdnn.reference.model`` (the course's numpy, float64) for n epochs, same arguments as fastdnn's."""
    from fastdnn import reference

    batch = _full_batch(batch, X.shape[1])
    output = "softmax" if dims[-1] > 1 else "sigmoid"

    def run(n):
        reference.model(X, Y, dims, learning_rate, num_epochs=n, mini_batch_size=batch, optimizer=optimizer,
                        output=output)

    return run


# ---- The one place this module asks fastdnn's engine about its route. ---------------------------------
def gram_route_applies(dims, m, batch, dtype, optimizer, epochs):
    """Whether ``fastdnn.model(..., gram="auto")`` takes the Gram route for a fresh run of ``epochs`` on this shape."""
    from fastdnn import routes

    # The decision reads X's shape, never its values.
    return routes.gram_applies(_full_batch(batch, m), optimizer, 0) and routes.gram_pays((m, dims[0]), epochs)
# ---------------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------- FLOPs and the peak


def gram_flops(dims, m):
    """GEMM FLOPs of fastdnn's Gram route (layer 1 carried in the example space): a dict.

    step = useful - 4 m n_1 n_0 + 2 m^2 n_1   (Z1 = s Z1_init + G C^T: no X W1^T, no dW1 GEMM;
                                                other layers as ``step_flops`` counts them)
    once = 2 m^2 n_0 + 4 m n_1 n_0            per run: G = X X^T, Z1_init = X W1^T, and W1 formed at the end
    """
    n0, n1 = dims[0], dims[1]
    useful = step_flops(dims, m)["useful"]
    return {"step": useful - 4 * m * n1 * n0 + 2 * m * m * n1, "once": 2 * m * m * n0 + 4 * m * n1 * n0}


def gemm_peak(dtype, n=None, repeats=3):
    """GFLOP/s of an n x n x n GEMM through SciPy's ?gemm: one rate per repeat, after an untimed call.

    Operands are F-ordered and C is overwritten in place, so f2py copies nothing.
    """
    from scipy.linalg import blas

    dtype = np.dtype(dtype)
    n = n or PEAK_SIZES[dtype.name]
    gemm = {"float32": blas.sgemm, "float64": blas.dgemm}[dtype.name]
    rng = np.random.default_rng(0)
    A = np.asfortranarray(rng.standard_normal((n, n)), dtype)
    B = np.asfortranarray(rng.standard_normal((n, n)), dtype)
    C = np.zeros((n, n), dtype, order="F")
    gemm(1.0, A, B, beta=0.0, c=C, overwrite_c=True)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        gemm(1.0, A, B, beta=0.0, c=C, overwrite_c=True)
        rates.append(2.0 * n**3 / (time.perf_counter() - t0) / 1e9)
    return rates


# ---------------------------------------------------------------------------- summaries and tables


def summary(values):
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)


def format_ms(seconds):
    """Per-step seconds as "median [min-max]" in milliseconds."""
    med, lo, hi = summary(seconds)
    return f"{med * 1e3:.3g} [{lo * 1e3:.3g}-{hi * 1e3:.3g}]"


def format_table(headers, rows):
    """A plain aligned text table as lines: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(headers), "  ".join("-" * w for w in widths)] + [line(r) for r in rows]


# ---------------------------------------------------------------------------- the worker


def measure_task(task):
    """One implementation's measurements in this process: what ``python -m fastdnn.bench TASK`` emits.

    task: {"kind": "fastdnn" | "reference", "threads", "dtype", and either "workload" (a name in
    ``fastdnn.workloads.WORKLOADS``, with "data_dir" for the cat data) or "dims" and "m" (synthetic
    data); optional "batch" (default the workload's, else full batch), "optimizer", "learning_rate",
    "repeats" (3), "target_seconds", "iterations" (the fewest steps in a timed call), "gram"
    (fastdnn: the options to time, default [False, True]; True is timed only where gram="auto"
    would take the Gram route on a long run), "peak" (dtypes whose GEMM peak to measure) and "peak_size"}.
    Result: {"routes": {"reference" | "direct" | "gram" | "auto": time_steps(...) + "route"},
    "peaks": {dtype: [GFLOP/s]}, "blas": blas_libraries(), "data": where the data came from}.
    """
    kind, dtype = task["kind"], task["dtype"]
    if kind not in ("fastdnn", "reference"):
        raise ValueError(f"unknown kind {kind!r}; choose fastdnn or reference")
    _limiter, blas = limit_threads(task["threads"], numba=kind == "fastdnn")
    if "workload" in task:
        w = workload(task["workload"])
        dims, batch = list(w.dims), task.get("batch", w.batch)
        X, Y, source = workload_data(task["workload"], task.get("data_dir"))
    else:
        dims, batch = task["dims"], task.get("batch")
        X, Y, source = synthetic_data(dims[0], task["m"], dtype, max(2, dims[-1]))
    m = X.shape[1]
    batch, optimizer = _full_batch(batch, m), task.get("optimizer", "gd")
    learning_rate = task.get("learning_rate", LEARNING_RATE)
    steps = 1 if batch is None else math.ceil(m / batch)
    timing = dict(repeats=task.get("repeats", 3), target_seconds=task.get("target_seconds", TARGET_SECONDS),
                  min_iterations=math.ceil(task.get("iterations", 1) / steps), steps_per_iteration=steps)
    routes = {}
    if kind == "reference":
        run = reference_runner(X, Y, dims, optimizer, batch, learning_rate)
        routes["reference"] = {**time_steps(run, **timing), "route": "course"}
    else:
        for gram in task.get("gram", [False, True]):
            if gram is True and not gram_route_applies(dims, m, batch, dtype, optimizer, LONG_RUN_EPOCHS):
                continue
            run, route = fastdnn_runner(X, Y, dims, dtype, gram, optimizer, batch, learning_rate, task["threads"])
            routes[GRAM_ROUTES[gram]] = {**time_steps(run, **timing), "route": route}
    peaks = {dt: gemm_peak(dt, task.get("peak_size"), task.get("repeats", 3)) for dt in task.get("peak", [])}
    return {"routes": routes, "peaks": peaks, "blas": blas, "data": source}


# ---------------------------------------------------------------------------- fastdnn bench


def bench_command(dims, samples, batch=None, dtype="float64", optimizer="gd", learning_rate=LEARNING_RATE,
                  iterations=20, repeats=3, threads=None, peak_size=None, reference=True, say=None,
                  target_seconds=TARGET_SECONDS):
    """Everything ``fastdnn bench`` does; returns its exit status (1 when a worker fails, saying why on stderr).

    Times the reference (float64, unless ``reference`` is false) and the fast path
    in ``dtype`` on ``samples`` synthetic examples of layer sizes ``dims``, each
    in its own process at ``threads`` BLAS threads (default, and at most, the
    usable cores); the fast path's direct route always, its Gram route where
    ``fastdnn.model`` would take it. Prints through ``say`` (default: print) the
    machine, a table of ms/step, GFLOP/s, share of the GEMM peak and speed-up,
    the peak itself, what the FLOPs count, and a warning if other processes kept
    the CPUs busy. ``iterations``: the fewest steps in one timed call.
    """
    say = say or (lambda line: print(line, flush=True))
    cores = usable_cores()
    if threads is None or threads > cores:
        if threads is not None:
            say(f"note: {threads} threads is more than the {cores} usable cores; using {cores}")
        threads = cores
    dims = list(dims)
    batch = _full_batch(batch, samples)
    steps = 1 if batch is None else math.ceil(samples / batch)
    flops = step_flops(dims, samples)["useful"] / steps
    warning = busy_warning(threads)
    output = "softmax" if dims[-1] > 1 else "sigmoid"
    say(f"bench: {' -> '.join(map(str, dims))} (relu, {output}), {optimizer}, "
        f"{'full batch of ' + str(samples) if batch is None else f'batches of {batch} from {samples}'} examples, "
        f"{threads} BLAS thread{'s' if threads != 1 else ''}; timed calls of about {target_seconds:g} s "
        f"(at least {iterations} steps) x {repeats} repeats, each implementation in its own process")
    task = {"dims": dims, "m": samples, "batch": batch, "iterations": iterations, "repeats": repeats,
            "target_seconds": target_seconds, "optimizer": optimizer, "learning_rate": learning_rate,
            "threads": threads, "peak_size": peak_size}
    rows = []  # (name, dtype, timing)
    try:
        if reference:
            ref = run_in_subprocess({**task, "kind": "reference", "dtype": "float64"})
            rows.append(("reference (numpy)", "float64", ref["routes"]["reference"]))
        peaks = sorted({dtype, "float64"} if reference else {dtype})
        fast = run_in_subprocess({**task, "kind": "fastdnn", "dtype": dtype, "peak": peaks})
    except BenchError as exc:
        print(f"fastdnn bench: {exc}", file=sys.stderr, flush=True)
        return 1
    rows.append(("fastdnn", dtype, fast["routes"]["direct"]))
    if "gram" in fast["routes"]:
        rows.append(("fastdnn, Gram route *", dtype, fast["routes"]["gram"]))
    peak = {dt: summary(rates)[0] for dt, rates in fast["peaks"].items()}

    table = []
    base = None
    for name, dt, timing in rows:
        med = summary(timing["per_step"])[0]
        base = base or med
        rate = flops / med / 1e9
        table.append([name, dt, format_ms(timing["per_step"]), timing["iterations"] * steps, f"{rate:.3g}",
                      f"{100 * rate / peak[dt]:.0f}%", f"{base / med:.2f}x"])
    for line in machine_header(threads, fast["blas"]):
        say(line)
    say("")
    for line in format_table(["implementation", "dtype", "ms/step median [min-max]", "steps/call", "GFLOP/s",
                              "of peak", "speed-up"], table):
        say(line)
    say("")
    sizes = {dt: peak_size or PEAK_SIZES[dt] for dt in peak}
    say("BLAS peak (square n^3 GEMM through SciPy's ?gemm, the library the fast path calls): "
        + ", ".join(f"{dt} {peak[dt]:.1f} GFLOP/s (n={sizes[dt]})" for dt in peak))
    say(f"GFLOP counted per step: {flops / 1e9:.4g} for {batch or samples} examples (forward 2m sum n_l n_(l-1), "
        "backward twice that, minus dA0 = W1^T dZ1, which nothing uses and the fast path skips)")
    if "gram" in fast["routes"]:
        say(f"* the route fastdnn.model and L_layer_model take for full batches of wide data (10 epochs or more): "
            f"X X^T once per run ({fast['routes']['gram']['per_call'] * 1e3:.3g} ms here, with the input checks), "
            "then the first layer in the example space, far fewer FLOPs than counted: its GFLOP/s is an effective "
            "rate and may exceed the peak")
    if warning:
        say(warning)
    return 0


if __name__ == "__main__":
    emit(measure_task(json.loads(sys.argv[1])))
