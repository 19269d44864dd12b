"""Plumbing shared by the benchmark tools in tools/: workers, threads, data, FLOPs, tables.

Every tool here times each implementation in its own fresh subprocess (the
same script run with ``--worker``), because numpy and SciPy bundle separate
OpenBLAS libraries, each with its own thread pool, and two pools spinning in
one process slow each other down (DESIGN.md). The parent process only starts
workers and prints; it never loads a BLAS.

Protocol: a worker prints one line ``RESULT_MARKER + json`` on stdout;
``run_worker`` finds that line and returns the decoded object (or an
``{"error": ...}`` dict carrying the worker's stderr tail).
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

RESULT_MARKER = "@@FASTDNN-BENCH-RESULT@@ "

# Variables that pick OpenBLAS's kernel by hand; a benchmark wants the kernel
# the library detects for this CPU, so workers run without them.
_CORETYPE_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# The course's cat data: 209 training images of 64 x 64 x 3.
CAT_SHAPE = (209, 64, 64, 3)
CAT_FILE = "train_catvnoncat.h5"


# ---------------------------------------------------------------- parent side


def worker_env(threads):
    """The environment for a worker: thread variables set to ``threads``, OpenBLAS core overrides removed.

    The variables are a belt to threadpoolctl's braces: they size every pool
    at load time (PyTorch's OpenMP pool included), before the worker's
    ``limit_threads`` call caps them again. Returns (env, notes) where notes
    lists what was unset.
    """
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    notes = [f"unset {v}={env.pop(v)}" for v in _CORETYPE_VARS if v in env]
    return env, notes


def run_worker(cmd, threads, timeout=900):
    """Run ``cmd`` (a worker command line) in a fresh process; return its decoded result dict."""
    env, _ = worker_env(threads)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-6:]
    return {"error": f"worker exited with status {proc.returncode}: " + " | ".join(tail)}


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_header(threads, blas=None, extra=("numpy", "scipy", "numba", "threadpoolctl")):
    """Lines describing the machine, library versions, BLAS and thread settings (no BLAS loaded here)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    versions = ", ".join(f"{d} {_version(d)}" for d in extra)
    lines = [
        f"machine: {cpu_model()}, {os.cpu_count()} logical CPUs ({usable} usable), load average {load}",
        f"python {platform.python_version()}, {versions}",
    ]
    if blas:
        lines.append("BLAS: " + describe_blas(blas))
    lines.append(
        f"threads: {threads} per worker (BLAS via threadpoolctl.threadpool_limits, Numba via "
        f"numba.set_num_threads, OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS={threads} in the worker's environment); "
        "one worker at a time, each in a fresh process"
    )
    _, notes = worker_env(threads)
    if notes:
        lines.append("OpenBLAS core override removed for the workers: " + ", ".join(notes))
    return lines


def describe_blas(blas):
    """One line per loaded BLAS from threadpoolctl's info: which package bundles it, kernel, version."""
    parts = []
    for lib in blas:
        owner = os.path.basename(os.path.dirname(lib.get("filepath", ""))) or lib.get("prefix", "?")
        parts.append(
            f"{owner}: {lib.get('internal_api')} {lib.get('version')} "
            f"kernel={lib.get('architecture')} threads={lib.get('num_threads')}"
        )
    return "; ".join(parts) if parts else "none loaded"


def cpu_busy(seconds=0.5):
    """Fraction of all CPUs busy over ``seconds`` while this process sleeps (from /proc/stat), or None."""

    def sample():
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
        return sum(fields), idle

    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


def busy_warning(threads):
    """A warning line when other processes keep the CPUs busy (threaded BLAS then slows erratically), else None."""
    busy = cpu_busy()
    if busy is None or busy < 0.15:
        return None
    return (
        f"WARNING: {100 * busy:.0f}% of the CPUs were busy with other processes just before this run; "
        f"with {threads} threads per worker the timings below can be several times slower and erratic"
    )


# ---------------------------------------------------------------- worker side


def emit(result):
    """Worker side of the protocol: print the result line the parent looks for."""
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(result), flush=True)


def limit_threads(threads, numba=True):
    """Cap BLAS (every OpenBLAS loaded, numpy's and SciPy's) and, if ``numba``, Numba's pool at ``threads``.

    Loads numpy's and SciPy's BLAS first, because threadpoolctl reaches only
    libraries already loaded. ``numba.set_num_threads`` starts Numba's threading
    layer (an OpenMP runtime), so workers that run no Numba code (PyTorch,
    scikit-learn) pass numba=False rather than carry a second runtime beside
    their own. Returns (limiter, blas_info): keep the limiter alive for the
    worker's lifetime.
    """
    import numpy  # noqa: F401  loads numpy's OpenBLAS
    import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's OpenBLAS
    from threadpoolctl import threadpool_info, threadpool_limits

    limiter = threadpool_limits(limits=threads, user_api="blas")
    if numba:
        import numba as nb

        nb.set_num_threads(threads)
    blas = [
        {k: lib.get(k) for k in ("internal_api", "architecture", "version", "num_threads", "prefix", "filepath")}
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]
    return limiter, blas


def time_runs(run, iterations, repeats, warmup_iterations=10):
    """Per-iteration seconds of ``run(iterations)`` over ``repeats`` timed calls, after one warm-up call.

    ``run(n)`` must do n training steps; the warm-up (JIT compile or cache
    load, first-touch of buffers) is not timed. It runs min(iterations,
    warmup_iterations) steps: a run's length can pick its compiled route
    (fastdnn's Gram route needs 10 or more), and the warm-up must compile the one timed.
    """
    run(min(iterations, warmup_iterations))
    per_step = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(iterations)
        per_step.append((time.perf_counter() - t0) / iterations)
    return per_step


def _probe(run, short, long):
    """(step, overhead) seconds from one timed run(short) and one run(long): T(n) = overhead + n * step."""
    t0 = time.perf_counter()
    run(short)
    t1 = time.perf_counter()
    run(long)
    t2 = time.perf_counter()
    # Noise can make the difference tiny or negative: keep the step plausible.
    step = max(((t2 - t1) - (t1 - t0)) / (long - short), 0.02 * (t2 - t1) / long, 1e-7)
    return step, max((t1 - t0) - short * step, 0.0)


def calibrate(run, target_seconds, max_overhead=0.05, min_iterations=3, max_iterations=20000):
    """Iterations per timed call so one call lasts ~target_seconds and fixed per-run costs stay small.

    Probes run(1) against run(3) (after an untimed run(1), which compiles) for
    the step time s and the per-run overhead o (initialisation, input checks
    and conversion). When steps are cheap, it probes again at 10 and 20
    iterations, because a longer run may take another route with its own fixed
    cost (fastdnn's Gram route, from 10 iterations). Returns (iterations, s, o)
    with iterations >= o / (max_overhead * s), so the overhead is at most
    ``max_overhead`` of a timed call (unless capped by ``max_iterations``).
    """
    run(1)
    step, overhead = _probe(run, 1, 3)
    if 30 * step <= 2 * target_seconds:
        run(10)
        step, overhead = _probe(run, 10, 20)
    n = max(target_seconds / step, overhead / (max_overhead * step), min_iterations)
    return int(min(math.ceil(n), max_iterations)), step, overhead


def fastdnn_runner(X, Y, dims, dtype, gram, learning_rate, threads):
    """(run, route) for fastdnn.L_layer_model in ``dtype``; ``gram`` is passed when the API has it.

    ``threads`` is passed too: fastdnn picks its own BLAS threads when it is None
    (one for small steps), and a side-by-side run compares every library at the
    same count.

    run(n) trains n iterations. route(n) says which formulation a run of n
    iterations takes: "direct", "Gram" (layer 1 carried in the example space:
    a different amount of arithmetic, see ``step_flops``), or "default" when this
    fastdnn has no ``gram`` option. It asks fastdnn's own rule
    (``fastdnn.training.use_gram``) and answers ``gram=...`` if that has moved.
    """
    import inspect

    import numpy as np

    from fastdnn import L_layer_model, model

    dt = np.dtype(dtype)
    has_gram = "gram" in inspect.signature(L_layer_model).parameters
    kwargs = {"dtype": dt, "threads": threads, "gram": gram} if has_gram else {"dtype": dt, "threads": threads}

    def run(n):
        if dims[-1] > 1:  # a softmax output: model() has the option, full batch gd as L_layer_model
            return model(X, Y, dims, learning_rate, num_epochs=n, output="softmax", **kwargs)
        return L_layer_model(X, Y, dims, learning_rate, num_iterations=n, **kwargs)

    def route(n):
        if not has_gram:
            return "default"
        try:
            from fastdnn.pipeline import initialize_parameters_deep, samples_as_rows
            from fastdnn.training import Trainer, use_gram

            trainer = Trainer(initialize_parameters_deep(dims, dt))
            return "Gram" if use_gram(gram, trainer, samples_as_rows(X, dt), n) else "direct"
        except Exception:  # an internal API that moved: say what was asked rather than fail
            return f"gram={gram!r}"

    return run, route


# ---------------------------------------------------------------- data


def load_cat_data(data_dir):
    """The course's cat training set prepared as the course does, or synthetic data of its shape.

    Returns (X, Y, source): X (12288, 209) float64 = x.reshape(m, -1).T / 255.
    (an F-ordered view of a sample-major buffer), Y (1, 209). Falls back to
    uniform random pixels and labels (seeded) when the file or h5py is absent.
    """
    import numpy as np

    path = os.path.join(data_dir, CAT_FILE) if data_dir else None
    if path and os.path.isfile(path):
        try:
            import h5py

            with h5py.File(path, "r") as f:
                x = f["train_set_x"][:]
                y = f["train_set_y"][:]
            m = x.shape[0]
            return x.reshape(m, -1).T / 255.0, y.reshape(1, m), f"cat data from {path}"
        except ImportError:
            reason = "h5py is not installed"
    else:
        reason = f"{path} not found" if path else "no --data-dir given"
    rng = np.random.default_rng(0)
    m = CAT_SHAPE[0]
    x = rng.integers(0, 256, size=CAT_SHAPE, dtype=np.uint8)
    y = rng.integers(0, 2, size=m)
    return x.reshape(m, -1).T / 255.0, y.reshape(1, m), f"synthetic data of the cat data's shape ({reason})"


def synthetic_data(n_features, m, dtype, seed=0, classes=2):
    """Gaussian inputs and random labels: X (n_features, m) F-ordered (rows are examples), and Y (1, m) of
    0/1 for two classes, one-hot (classes, m) for more."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((m, n_features)).astype(dtype)
    labels = rng.integers(0, classes, size=m)
    if classes > 2:
        return rows.T, np.eye(classes)[:, labels]
    return rows.T, labels.reshape(1, m)


def default_data_dir():
    """$FASTDNN_DATA_DIR, else data/catvnoncat under the repository root."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.environ.get("FASTDNN_DATA_DIR") or os.path.join(os.path.dirname(here), "data", "catvnoncat")


# ---------------------------------------------------------------- FLOPs and summaries


def step_flops(dims, m):
    """FLOPs of one full-batch training step's GEMMs on layer sizes ``dims`` and m examples.

    forward    = 2 m sum_l n_l n_{l-1}   (Z_l = W_l A_{l-1})
    course     = 3 * forward             (plus dW_l and dA_{l-1} for every layer, dA0 included)
    useful     = course - 2 m n_1 n_0    (dA0 = W1^T dZ1 feeds nothing: fastdnn, PyTorch and
                                          scikit-learn skip it)
    gram_step  = useful - 4 m n_1 n_0 + 2 m^2 n_1
                 fastdnn's Gram route (``gram=``): layer 1 carried in the example space,
                 Z1 = s Z1_init + G C^T, no dW1 GEMM; other layers as usual
    gram_once  = 2 m^2 n_0 + 4 m n_1 n_0 per run: G = X X^T, Z1_init = X W1^T, and W1 formed at the end
    Element-wise work (bias, activations, loss, update) is not counted.
    """
    n0, n1 = dims[0], dims[1]
    forward = 2 * m * sum(dims[l] * dims[l - 1] for l in range(1, len(dims)))
    course = 3 * forward
    useful = course - 2 * m * n1 * n0
    return {
        "forward": forward,
        "course": course,
        "useful": useful,
        "gram_step": useful - 4 * m * n1 * n0 + 2 * m * m * n1,
        "gram_once": 2 * m * m * n0 + 4 * m * n1 * n0,
    }


def summarize(values):
    """(median, min, max) of a list."""
    return statistics.median(values), min(values), max(values)


def fmt_ms(per_step_seconds):
    med, lo, hi = summarize(per_step_seconds)
    return f"{med * 1e3:.3g} [{lo * 1e3:.3g}-{hi * 1e3:.3g}]"


def print_table(headers, rows, out=sys.stdout):
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    widths = [max(len(str(r[i])) for r in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(
            str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)
