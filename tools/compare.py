"""One training step, side by side: fastdnn vs the reference, PyTorch and scikit-learn.

What is measured: the time of one full training step (forward, cross-entropy
loss, backward, plain SGD update) of the same network on the same data, for

    fastdnn-f64, fastdnn-f32   fastdnn.L_layer_model (one compiled call per run)
    reference                  fastdnn.reference.L_layer_model (numpy, float64 always)
    numpy-gemms                the step's GEMMs alone (forward W A, backward dZ A^T and W^T dZ, no
                               dA0) by numpy's matmul into preallocated outputs: no bias, activation,
                               loss or update; the floor a step built from numpy's BLAS calls cannot beat
    torch                      PyTorch CPU eager: nn.Sequential of Linear/ReLU, BCEWithLogitsLoss,
                               torch.optim.SGD(momentum=0), zero_grad/forward/backward/step per step
    torch-compile              the same with the model and loss under torch.compile
    sklearn                    MLPClassifier(solver='sgd', momentum=0, alpha=0, learning_rate='constant',
                               batch_size=m, shuffle=False, activation='relu'): fit() with
                               max_iter=N and n_iter_no_change > N, so each epoch is exactly one
                               step on the one batch and the run never stops early

How: ``fastdnn.bench``, the one benchmark module (``fastdnn bench`` measures
the same way). Each implementation runs in its own fresh subprocess (this
script with ``--worker``, through ``bench.run_worker``) with the same thread
count (BLAS via threadpoolctl, Numba via ``numba.set_num_threads``, PyTorch via
``torch.set_num_threads``); ``bench.time_steps`` warms up (JIT compile, cache
load, torch.compile), picks N so that one timed run lasts about
``--target-seconds`` and the run's fixed costs (initialisation, input validation
and conversion, which fastdnn, the reference and sklearn pay once per
``model``/``fit`` call) stay under 5% of it, then times ``--repeats`` runs of N
steps: ms/step = run time / N. PyTorch's timed loop holds only the steps (the
model is built once, outside). fastdnn and the reference run through
``bench.fastdnn_runner`` and ``bench.reference_runner``.

Workloads are ``fastdnn.workloads.WORKLOADS``, the table asv uses too. Each is
one step on all m examples for every library: the FLOPs of a minibatch step of
size m. Because real minibatches change every step, fastdnn runs those with
``gram=False`` (its direct formulation); on the seed, a true full-batch
workload, it runs as users get it (``gram="auto"``, resolved to the route it
takes on a long run, which may carry layer 1 in the example space: the "route"
column says), and seed-direct with gram=False.

GFLOP/s counts the useful GEMM FLOPs of a step for every row (forward
2 m sum n_l n_{l-1}, backward twice that, minus dA0 = W1^T dZ1, which nothing
uses: fastdnn, PyTorch and scikit-learn skip it; the reference computes it). The
fraction of peak divides by this machine's sgemm/dgemm peak for the row's dtype,
measured in the same invocation by tools/blas_peak.py in its own process.

Usage: ``python tools/compare.py [--workloads seed,medium] [--only fastdnn-f32,torch]
[--repeats 5] [--threads 2] [--json out.json]``
"""

import argparse
import importlib.util
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import blas_peak  # noqa: E402

from fastdnn import bench  # noqa: E402
from fastdnn.workloads import WORKLOADS, default_data_dir, workload_data  # noqa: E402

# name: (module that must be importable, fixed dtype or None for the workload's)
IMPLEMENTATIONS = {
    "fastdnn-f64": ("fastdnn", "float64"),
    "fastdnn-f32": ("fastdnn", "float32"),
    "reference": ("fastdnn", "float64"),
    "numpy-gemms": ("numpy", None),
    "torch": ("torch", None),
    "torch-compile": ("torch", None),
    "sklearn": ("sklearn", None),
}


def make_runner(impl, workload, X, Y, threads):
    """(run, dtype, route): run(n) does n training steps of ``impl``; route names fastdnn's formulation."""
    import numpy as np

    w = WORKLOADS[workload]
    dims, dtype, softmax = list(w.dims), w.dtype, w.output == "softmax"
    if impl.startswith("fastdnn"):
        fixed = IMPLEMENTATIONS[impl][1]
        run, route = bench.fastdnn_runner(X, Y, dims, fixed, w.gram, threads=threads)
        return run, fixed, route

    if impl == "reference":
        return bench.reference_runner(X, Y, dims), "float64", ""

    if impl == "numpy-gemms":
        return numpy_gemms_runner(dims, X, dtype), dtype, ""

    rows = np.ascontiguousarray(X.T, dtype=dtype)
    labels = np.argmax(Y, axis=0) if softmax else Y.ravel().astype(np.int64)
    if impl == "sklearn":
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        y = labels
        out = {}

        def run(n):
            clf = MLPClassifier(
                hidden_layer_sizes=tuple(dims[1:-1]),
                activation="relu",
                solver="sgd",
                alpha=0.0,
                batch_size=rows.shape[0],
                learning_rate="constant",
                learning_rate_init=bench.LEARNING_RATE,
                momentum=0.0,
                nesterovs_momentum=False,
                max_iter=n,
                shuffle=False,
                tol=0.0,
                n_iter_no_change=n + 1,
                early_stopping=False,
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                clf.fit(rows, y)
            if clf.n_iter_ != n:
                raise RuntimeError(f"sklearn ran {clf.n_iter_} epochs, expected {n}")
            out["dtype"] = clf.coefs_[0].dtype.name

        run(1)
        return run, out["dtype"], ""

    import torch

    torch.set_num_threads(threads)
    tdt = getattr(torch, dtype)
    torch.manual_seed(0)
    layers = []
    for l in range(1, len(dims)):
        layers.append(torch.nn.Linear(dims[l - 1], dims[l], dtype=tdt))
        if l < len(dims) - 1:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.CrossEntropyLoss() if softmax else torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.SGD(model.parameters(), lr=bench.LEARNING_RATE, momentum=0.0)
    Xt = torch.from_numpy(rows)
    if softmax:
        Yt = torch.from_numpy(labels.astype(np.int64))
    else:
        Yt = torch.from_numpy(np.ascontiguousarray(Y.T, dtype=dtype))

    def loss_of(Xb, Yb):
        return loss_fn(model(Xb), Yb)

    forward_loss = torch.compile(loss_of) if impl == "torch-compile" else loss_of

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            forward_loss(Xt, Yt).backward()
            opt.step()

    return run, dtype, ""


def numpy_gemms_runner(dims, X, dtype):
    """run(n): n steps' worth of the GEMMs alone, numpy matmul into preallocated outputs, course layout."""
    import numpy as np

    rng = np.random.default_rng(0)
    m = X.shape[1]
    A = [np.ascontiguousarray(X, dtype=dtype)]
    W = [None] + [rng.standard_normal((dims[l], dims[l - 1])).astype(dtype) for l in range(1, len(dims))]
    for l in range(1, len(dims)):
        A.append(np.empty((dims[l], m), dtype))
    dZ = [None] + [rng.standard_normal((dims[l], m)).astype(dtype) for l in range(1, len(dims))]
    dW = [None] + [np.empty_like(w) for w in W[1:]]
    dA = [None] + [np.empty((dims[l], m), dtype) for l in range(1, len(dims) - 1)]
    L = len(dims) - 1

    def run(n):
        for _ in range(n):
            for l in range(1, L + 1):
                np.matmul(W[l], A[l - 1], out=A[l])
            for l in range(L, 0, -1):
                np.matmul(dZ[l], A[l - 1].T, out=dW[l])
                if l > 1:
                    np.matmul(W[l].T, dZ[l], out=dA[l - 1])

    return run


def worker(impl, workload, data_dir, threads, repeats, target_seconds):
    _limiter, blas = bench.limit_threads(threads, numba=impl.startswith("fastdnn"))
    X, Y, source = workload_data(workload, data_dir)
    run, ran_dtype, route = make_runner(impl, workload, X, Y, threads)
    result = bench.time_steps(run, repeats, target_seconds)
    return {**result, "dtype": ran_dtype, "route": route, "data": source, "blas": blas}


def _ratio_base(results, workload):
    name = "fastdnn-f64" if WORKLOADS[workload].dtype == "float64" else "fastdnn-f32"
    r = results.get(name, {})
    return name, (bench.summary(r["per_step"])[0] if "per_step" in r else None)


def print_workload(workload, results, peak):
    w = WORKLOADS[workload]
    flops, gram = bench.step_flops(w.dims, w.m), bench.gram_flops(w.dims, w.m)
    source = next((r["data"] for r in results.values() if "data" in r), "")
    print(
        f"\n== {workload}: {list(w.dims)}, m = {w.m} (one full batch of the batch size), {w.dtype}; {source}; "
        f"fastdnn gram={w.gram!r}"
    )
    print(
        f"   useful FLOPs per step {flops['useful'] / 1e6:.3g} M (dA0 skipped; the reference computes "
        f"{flops['course'] / 1e6:.3g} M); GFLOP/s and % of peak below use the useful count for every row"
    )
    if any(r.get("route") == "Gram" for r in results.values()):
        print(
            f"   route Gram: fastdnn carries layer 1 in the example space ({gram['step'] / 1e6:.3g} M a step "
            f"+ {gram['once'] / 1e6:.3g} M once per run), so its GFLOP/s is an effective rate;\n"
            "   * its % of peak counts the arithmetic it does: a step's + the run's once-only part / steps"
        )
    base_name, base = _ratio_base(results, workload)
    rows = []
    for impl, r in results.items():
        if "skipped" in r or "error" in r:
            rows.append([impl, "", "", r.get("skipped") or "failed: " + r["error"][-150:], "", "", "", ""])
            continue
        med = bench.summary(r["per_step"])[0]
        gflops = flops["useful"] / med / 1e9
        peak_rate = peak["dgemm"] if r["dtype"] == "float64" else peak["sgemm"]
        if r.get("route") == "Gram":
            done = gram["step"] + gram["once"] / r["iterations"]
            of_peak = f"{100 * done / med / 1e9 / peak_rate:.1f}%*"
        else:
            of_peak = f"{100 * gflops / peak_rate:.1f}%"
        rows.append(
            [
                impl,
                r["dtype"],
                r.get("route", ""),
                bench.format_ms(r["per_step"]),
                f"{w.m / med:,.0f}",
                f"{gflops:.2f}",
                of_peak,
                f"{med / base:.3g}" if base else "n/a",
            ]
        )
    headers = ["implementation", "dtype", "route", "ms/step median [min-max]", "examples/s", "GFLOP/s",
               "% GEMM peak", f"time / {base_name}"]
    for line in bench.format_table(headers, rows):
        print(line)
    counts = ", ".join(f"{k} {r['iterations']}" for k, r in results.items() if "iterations" in r)
    print(f"   steps per timed run: {counts}")


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Time one training step (forward, loss, backward, SGD update) of the same network on the "
        "same data in fastdnn (float64, float32), the numpy reference, PyTorch (eager, torch.compile) and "
        "scikit-learn's MLPClassifier, each in its own process with the same threads.",
        epilog="workloads (fastdnn.workloads): "
        + "; ".join(f"{k} {list(w.dims)} m={w.m} {w.dtype}" for k, w in WORKLOADS.items()),
    )
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated (default: all)")
    p.add_argument(
        "--only",
        default=",".join(IMPLEMENTATIONS),
        help="comma-separated implementations (default: all): " + ", ".join(IMPLEMENTATIONS),
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per implementation (default 5)")
    p.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    p.add_argument(
        "--target-seconds",
        type=float,
        default=bench.TARGET_SECONDS,
        help=f"aim for timed runs of about this long (default {bench.TARGET_SECONDS})",
    )
    p.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder holding train_catvnoncat.h5 for the seed workloads (default %(default)s: $FASTDNN_CAT_DATA, "
        "else ../shared/data/catvnoncat beside the checkout); synthetic data of the same shape when absent",
    )
    p.add_argument("--json", metavar="PATH", help="write every result (per-repeat times included) to PATH")
    p.add_argument("--worker", choices=list(IMPLEMENTATIONS), help=argparse.SUPPRESS)
    p.add_argument("--workload", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        bench.emit(worker(args.worker, args.workload, args.data_dir, args.threads, args.repeats, args.target_seconds))
        return 0

    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    impls = [i.strip() for i in args.only.split(",") if i.strip()]
    for name, table in (("workload", workloads), ("implementation", impls)):
        known = WORKLOADS if name == "workload" else IMPLEMENTATIONS
        unknown = [x for x in table if x not in known]
        if unknown:
            p.error(f"unknown {name} {unknown}; choose from {list(known)}")
    if args.repeats < 1 or args.threads < 1 or args.target_seconds <= 0:
        p.error("--repeats and --threads must be >= 1 and --target-seconds > 0")

    peak = blas_peak.print_header(args.threads, ("fastdnn", "numpy", "scipy", "numba", "torch", "scikit-learn", "threadpoolctl"))
    if peak is None:
        return 1
    print(
        f"each timed run lasts about {args.target_seconds} s; {args.repeats} runs per implementation; "
        "fastdnn and reference time whole model() runs, sklearn whole fit() runs, PyTorch its step loop"
    )
    print(
        "each workload is one step on all m examples for every library (full batch), so a step has the FLOPs "
        "of a minibatch step of size m"
    )

    everything = {"peak": peak, "threads": args.threads, "workloads": {}}
    failed = False
    for workload in workloads:
        results = {}
        for impl in impls:
            module = IMPLEMENTATIONS[impl][0]
            if importlib.util.find_spec(module) is None:
                results[impl] = {"skipped": f"skipped: {module} is not installed"}
                continue
            cmd = [sys.executable, os.path.abspath(__file__), "--worker", impl, "--workload", workload,
                   "--data-dir", args.data_dir or "", "--threads", str(args.threads), "--repeats", str(args.repeats),
                   "--target-seconds", str(args.target_seconds)]
            try:
                r = bench.run_worker(cmd, args.threads, what=impl)
            except bench.BenchError as exc:
                r = {"error": str(exc)}
            if impl == "torch-compile" and "error" in r:
                r = {"skipped": "skipped: torch.compile does not work here: " + r["error"][-200:]}
            results[impl] = r
            failed |= "error" in r
        print_workload(workload, results, peak)
        w = WORKLOADS[workload]
        everything["workloads"][workload] = {
            "dims": list(w.dims),
            "m": w.m,
            "dtype": w.dtype,
            "flops": bench.step_flops(w.dims, w.m),
            "gram_flops": bench.gram_flops(w.dims, w.m),
            "results": results,
        }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1)
        print(f"\nwrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
