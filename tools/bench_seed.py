"""The seed benchmark: fastdnn's fast path vs the course's numpy reference on the cat network.

What is measured: ``L_layer_model`` on the course's network
``[12288, 20, 7, 5, 1]`` with the course's cat training set (m = 209, full batch),
for the reference (float64, ``fastdnn.reference``) and the fast path (``fastdnn``,
float64 and float32; with ``gram="auto"``, what users get, and with
``gram=False``, the direct formulation, when fastdnn has that option). Each runs
in its own fresh subprocess (this script with ``--worker``) with the same thread
count; it warms up (a run of min(N, 10) iterations: JIT compile or disk-cache
load of the route timed), then times whole runs of N iterations:
ms/iteration = run time / N, median and range over repeats. A run includes what ``L_layer_model`` does once per call
(initialisation, input checks and conversion, the Gram matrix), so runs of 10
iterations are timed too and the two lengths split a step's cost from the run's.

Beside them, measured in the same invocation (``blas_peak`` in its own process),
two floors for one step of the direct formulation:

* GEMM roofline: the step's useful GEMM FLOPs at this machine's dgemm/sgemm peak;
* memory floor: reading X twice per step (``Z1 = W1 X`` and ``dW1 = dZ1 X^T``)
  at the measured DRAM read bandwidth,

and the higher of the two is the limit for that dtype. fastdnn's Gram route
(layer 1 carried in the example space, ``G = X X^T`` formed once) does other
arithmetic and reads X once per run; its own floor is printed beside them.

FLOPs: the course computes forward 2 m sum(n_l n_{l-1}) and twice that again
backward (dW and dA for every layer). The fast path skips dA0 = W1^T dZ1, which
nothing uses. GFLOP/s for every row is computed from the same *useful* count
(the course's minus dA0), so GFLOP/s ratios equal speed ratios.

Usage: ``python tools/bench_seed.py [--data-dir DIR] [--threads 2] [--iterations 100] [--repeats 5]``
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchutil  # noqa: E402
import blas_peak  # noqa: E402

SEED_DIMS = [12288, 20, 7, 5, 1]
LEARNING_RATE = 0.0075
# Runs this short are timed too: (T(N) - T(SHORT)) / (N - SHORT) is the marginal
# cost of a step, without what a run pays once. 10 is the fewest iterations for
# which fastdnn's gram="auto" may take the Gram route.
SHORT = 10
# (label, --worker value, dtype, gram) in the order of the table; gram is
# fastdnn's option (ignored by a fastdnn without it): "auto" is what users get.
IMPLEMENTATIONS = [
    ("reference (numpy)", "reference", "float64", None),
    ("fastdnn", "fastdnn", "float64", "auto"),
    ("fastdnn", "fastdnn", "float32", "auto"),
    ("fastdnn gram=False", "fastdnn", "float64", False),
    ("fastdnn gram=False", "fastdnn", "float32", False),
]


def worker(impl, dtype, gram, data_dir, threads, iterations, repeats):
    """Time L_layer_model of ``impl`` in this process: per-iteration seconds at N and at SHORT iterations."""
    _limiter, blas = benchutil.limit_threads(threads)
    X, Y, source = benchutil.load_cat_data(data_dir)
    if impl == "reference":
        from fastdnn.reference import L_layer_model

        def run(n):
            return L_layer_model(X, Y, SEED_DIMS, LEARNING_RATE, num_iterations=n)

        route = "course"
    else:
        # The course's X is float64 and F-ordered, a view the fast path uses
        # without copying; float32 is converted inside each run, once.
        run, route_of = benchutil.fastdnn_runner(X, Y, SEED_DIMS, dtype, gram, LEARNING_RATE, threads)
        route = route_of(iterations)
        if iterations > SHORT and route_of(SHORT) != route:
            route += " (short runs differ)"
    out = {
        "per_step": benchutil.time_runs(run, iterations, repeats),
        "iterations": iterations,
        "route": route,
        "data": source,
        "blas": blas,
    }
    if iterations > SHORT:
        out["per_step_short"] = benchutil.time_runs(run, SHORT, repeats)
    return out


def marginal_and_fixed(r):
    """(ms per extra step, ms per run) from the medians at N and SHORT iterations, or (None, None)."""
    if "per_step_short" not in r or "differ" in r["route"]:
        return None, None
    n = r["iterations"]
    t_long = benchutil.summarize(r["per_step"])[0] * n
    t_short = benchutil.summarize(r["per_step_short"])[0] * SHORT
    step = (t_long - t_short) / (n - SHORT)
    return step * 1e3, (t_short - SHORT * step) * 1e3


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Time fastdnn's fast path (float64, float32; Gram and direct routes) against the numpy "
        "reference on the course's cat network [12288, 20, 7, 5, 1] (m = 209, full batch), each in its own "
        "process, beside the GEMM-roofline and memory floors measured in the same run.",
    )
    p.add_argument(
        "--data-dir",
        default=benchutil.default_data_dir(),
        help="folder holding train_catvnoncat.h5 (default $FASTDNN_DATA_DIR or data/catvnoncat); "
        "synthetic data of the same shape when absent",
    )
    p.add_argument("--threads", type=int, default=2, help="threads for every worker (BLAS and Numba; default 2)")
    p.add_argument(
        "--iterations",
        type=int,
        default=100,
        help=f"iterations per timed run (default 100; > {SHORT} "
        f"also times {SHORT}-iteration runs to split per-step from per-run costs)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per implementation and length (default 5)")
    p.add_argument("--worker", choices=["reference", "fastdnn"], help=argparse.SUPPRESS)
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"], help=argparse.SUPPRESS)
    p.add_argument("--gram", default="auto", choices=["auto", "False"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.threads, args.iterations, args.repeats) < 1:
        p.error("--threads, --iterations and --repeats must be >= 1")

    if args.worker:
        gram = "auto" if args.gram == "auto" else False
        benchutil.emit(
            worker(args.worker, args.dtype, gram, args.data_dir, args.threads, args.iterations, args.repeats)
        )
        return 0

    warning = benchutil.busy_warning(args.threads)
    peak = blas_peak.measure_in_subprocess(args.threads)
    if "error" in peak:
        print(f"blas_peak failed: {peak['error']}", file=sys.stderr)
        return 1
    for line in benchutil.machine_header(args.threads, peak["blas"]):
        print(line)
    if warning:
        print(warning)
    for line in blas_peak.report(peak):
        print(line)

    results = []
    for label, impl, dtype, gram in IMPLEMENTATIONS:
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            impl,
            "--dtype",
            dtype,
            "--data-dir",
            args.data_dir or "",
            "--threads",
            str(args.threads),
            "--iterations",
            str(args.iterations),
            "--repeats",
            str(args.repeats),
        ] + (["--gram", str(gram)] if gram is not None else [])
        results.append((label, impl, dtype, benchutil.run_worker(cmd, args.threads)))

    data = next((r["data"] for *_, r in results if "data" in r), "unknown data")
    m = benchutil.CAT_SHAPE[0]
    flops = benchutil.step_flops(SEED_DIMS, m)
    useful = flops["useful"]
    lengths = f"{args.iterations} and {SHORT}" if args.iterations > SHORT else f"{args.iterations}"
    print(f"\nworkload: {SEED_DIMS}, m = {m}, full batch, {data}")
    print(f"runs of {lengths} iterations, {args.repeats} of each, after a warm-up run of min(N, {SHORT}) iterations")
    print(
        f"FLOPs per step: course {flops['course'] / 1e6:.1f} M (forward {flops['forward'] / 1e6:.1f} M, then dW "
        f"and dA backward, dA0 included);\n  useful {useful / 1e6:.1f} M (without dA0, which the fast path skips). "
        "GFLOP/s = useful FLOPs / (ms/iteration) for every row,\n  so GFLOP/s ratios are speed ratios; the "
        f"reference performs {flops['course'] / useful:.2f}x the useful count.\n  The Gram route performs "
        f"{flops['gram_step'] / 1e6:.2f} M a step plus {flops['gram_once'] / 1e6:.0f} M once per run: "
        "its GFLOP/s is an effective rate, not arithmetic done."
    )

    ref = next((r for _, impl, _, r in results if impl == "reference" and "error" not in r), None)
    ref_ms = benchutil.summarize(ref["per_step"])[0] if ref else None
    rows = []
    for label, _, dtype, r in results:
        if "error" in r:
            rows.append([label, dtype, "", "failed", "", "", "", ""])
            print(f"{label} {dtype}: {r['error']}", file=sys.stderr)
            continue
        med = benchutil.summarize(r["per_step"])[0]
        step_ms, fixed_ms = marginal_and_fixed(r)
        rows.append(
            [
                label,
                dtype,
                r["route"],
                benchutil.fmt_ms(r["per_step"]),
                f"{step_ms:.3g}" if step_ms is not None else "n/a",
                f"{fixed_ms:.3g}" if fixed_ms is not None else "n/a",
                f"{useful / med / 1e9:.1f}",
                f"{ref_ms / med:.2f}x" if ref_ms else "n/a",
            ]
        )
    print()
    benchutil.print_table(
        [
            "implementation",
            "dtype",
            "route",
            f"ms/iteration (N={args.iterations}) median [min-max]",
            "ms/extra step",
            "ms/run fixed",
            "GFLOP/s",
            "speedup vs reference",
        ],
        rows,
    )
    print(
        "ms/extra step and ms/run fixed: from the medians of both run lengths, T(N) = fixed + N * step\n"
        "(fixed: initialisation, input checks and conversion, the Gram matrix; noise can make it negative)"
    )

    print("\nfloors for one step of the direct formulation (measured in this run):")
    floor_rows = []
    for dtype, key, itemsize in (("float64", "dgemm", 8), ("float32", "sgemm", 4)):
        gemm_ms = useful / (peak[key] * 1e9) * 1e3
        x_bytes = 2 * m * SEED_DIMS[0] * itemsize
        mem_ms = x_bytes / (peak["bandwidth"] * 1e9) * 1e3
        limit = "memory" if mem_ms > gemm_ms else "GEMM"
        direct = [
            benchutil.summarize(r["per_step"])[0]
            for _, impl, d, r in results
            if impl == "fastdnn" and d == dtype and r.get("route") == "direct"
        ]
        gap = f"{direct[0] * 1e3 / max(gemm_ms, mem_ms):.1f}x" if direct else "n/a"
        gram_ms = (flops["gram_step"] + flops["gram_once"] / args.iterations) / (peak[key] * 1e9) * 1e3
        floor_rows.append(
            [
                dtype,
                f"{gemm_ms:.2f} ({useful / 1e6:.0f} MFLOP at {peak[key]:.0f} GFLOP/s)",
                f"{mem_ms:.2f} ({x_bytes / 1e6:.1f} MB at {peak['bandwidth']:.1f} GB/s)",
                limit,
                gap,
                f"{gram_ms:.3f}",
            ]
        )
    benchutil.print_table(
        [
            "dtype",
            "GEMM roofline ms",
            "memory floor ms (X read twice)",
            "limit",
            "direct fastdnn / limit",
            f"Gram route GEMM floor ms (N={args.iterations})",
        ],
        floor_rows,
    )
    print(
        "The memory floor assumes X comes from DRAM each step; a last-level cache that holds X beats it.\n"
        "The Gram route reads X only once per run, so neither direct floor bounds it; its floor is its own\n"
        "FLOPs (per step + once per run / N) at the GEMM peak."
    )
    return 0 if all("error" not in r for *_, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
