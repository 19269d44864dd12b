"""The seed benchmark: fastdnn's fast path vs the course's numpy reference on the cat network.

What is measured: training steps on the course's network ``[12288, 20, 7, 5, 1]``
with the course's cat training set (m = 209, full batch; the "seed" workload of
``fastdnn.workloads``), for the reference (float64, ``fastdnn.reference``) and
the fast path (``fastdnn``, float64 and float32; with ``gram="auto"``, what users
get, resolved to the route it takes on a long run, and with ``gram=False``, the
direct formulation). Each runs in its own fresh ``python -m fastdnn.bench`` worker
with the same thread count and is timed as ``fastdnn.bench.time_steps`` times
everything (``fastdnn bench`` and tools/compare.py included): whole runs of N
iterations, N chosen so that a run lasts about ``--target-seconds`` and what a run
pays once (initialisation, input checks and conversion, the Gram matrix) stays
under 5% of it; ms/step = run time / N, median and range over repeats. The
calibration's split of a run, T(N) = fixed + N * step, gives the "ms/run fixed" column.

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

Usage: ``python tools/bench_seed.py [--data-dir DIR] [--threads 2] [--repeats 5] [--target-seconds 1]``
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import blas_peak  # noqa: E402

from fastdnn import bench  # noqa: E402
from fastdnn.workloads import WORKLOADS, default_data_dir  # noqa: E402

SEED = WORKLOADS["seed"]
# (label, worker kind, dtype, gram) in the order of the table; gram is fastdnn's
# option: "auto" is what users get.
IMPLEMENTATIONS = [
    ("reference (numpy)", "reference", "float64", None),
    ("fastdnn", "fastdnn", "float64", "auto"),
    ("fastdnn", "fastdnn", "float32", "auto"),
    ("fastdnn gram=False", "fastdnn", "float64", False),
    ("fastdnn gram=False", "fastdnn", "float32", False),
]


def measure(kind, dtype, gram, args):
    """The route timing of one row from its own worker: time_steps' dict + "route", "data"; or {"error": ...}."""
    task = {"kind": kind, "workload": "seed", "data_dir": args.data_dir, "dtype": dtype, "threads": args.threads,
            "repeats": args.repeats, "target_seconds": args.target_seconds, "iterations": args.iterations}
    if kind == "fastdnn":
        task["gram"] = [gram]
    try:
        result = bench.run_in_subprocess(task)
    except bench.BenchError as exc:
        return {"error": str(exc)}
    (timing,) = result["routes"].values()
    return {**timing, "data": result["data"]}


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Time fastdnn's fast path (float64, float32; Gram and direct routes) against the numpy "
        "reference on the course's cat network [12288, 20, 7, 5, 1] (m = 209, full batch), each in its own "
        "process, beside the GEMM-roofline and memory floors measured in the same run.",
    )
    p.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder holding train_catvnoncat.h5 (default %(default)s: $FASTDNN_CAT_DATA, else "
        "../shared/data/catvnoncat beside the checkout); synthetic data of the same shape when absent",
    )
    p.add_argument("--threads", type=int, default=2, help="threads for every worker (BLAS and Numba; default 2)")
    p.add_argument(
        "--iterations",
        type=int,
        default=1,
        help="fewest iterations in a timed run (default 1: --target-seconds decides)",
    )
    p.add_argument("--repeats", type=int, default=5, help="timed runs per implementation (default 5)")
    p.add_argument(
        "--target-seconds",
        type=float,
        default=bench.TARGET_SECONDS,
        help=f"aim for timed runs of about this long (default {bench.TARGET_SECONDS})",
    )
    args = p.parse_args(argv)
    if min(args.threads, args.iterations, args.repeats) < 1 or args.target_seconds <= 0:
        p.error("--threads, --iterations and --repeats must be >= 1 and --target-seconds > 0")

    peak = blas_peak.print_header(args.threads)
    if peak is None:
        return 1

    results = [(label, kind, dtype, measure(kind, dtype, gram, args)) for label, kind, dtype, gram in IMPLEMENTATIONS]

    data = next((r["data"] for *_, r in results if "data" in r), "unknown data")
    dims, m = list(SEED.dims), SEED.m
    flops, gram = bench.step_flops(dims, m), bench.gram_flops(dims, m)
    useful = flops["useful"]
    print(f"\nworkload: {dims}, m = {m}, full batch, {data}")
    print(
        f"timed runs of about {args.target_seconds} s (at least {args.iterations} iterations), {args.repeats} of each, "
        "after a warm-up run"
    )
    print(
        f"FLOPs per step: course {flops['course'] / 1e6:.1f} M (forward {flops['forward'] / 1e6:.1f} M, then dW "
        f"and dA backward, dA0 included);\n  useful {useful / 1e6:.1f} M (without dA0, which the fast path skips). "
        "GFLOP/s = useful FLOPs / (ms/step) for every row,\n  so GFLOP/s ratios are speed ratios; the "
        f"reference performs {flops['course'] / useful:.2f}x the useful count.\n  The Gram route performs "
        f"{gram['step'] / 1e6:.2f} M a step plus {gram['once'] / 1e6:.0f} M once per run: "
        "its GFLOP/s is an effective rate, not arithmetic done."
    )

    ref = next((r for _, kind, _, r in results if kind == "reference" and "error" not in r), None)
    ref_ms = bench.summary(ref["per_step"])[0] if ref else None
    rows = []
    for label, _, dtype, r in results:
        if "error" in r:
            rows.append([label, dtype, "", "failed", "", "", "", ""])
            print(f"{label} {dtype}: {r['error']}", file=sys.stderr)
            continue
        med = bench.summary(r["per_step"])[0]
        rows.append(
            [
                label,
                dtype,
                r["route"],
                bench.format_ms(r["per_step"]),
                r["iterations"],
                f"{r['per_call'] * 1e3:.3g}",
                f"{useful / med / 1e9:.1f}",
                f"{ref_ms / med:.2f}x" if ref_ms else "n/a",
            ]
        )
    print()
    headers = ["implementation", "dtype", "route", "ms/step median [min-max]", "steps/run", "ms/run fixed",
               "GFLOP/s", "speedup vs reference"]
    for line in bench.format_table(headers, rows):
        print(line)
    print(
        "ms/run fixed: what a run pays once (initialisation, input checks and conversion, the Gram matrix),\n"
        "from the calibration's T(n) = fixed + n * step; ms/step includes at most 5% of it"
    )

    print("\nfloors for one step of the direct formulation (measured in this run):")
    floor_rows = []
    for dtype, key, itemsize in (("float64", "dgemm", 8), ("float32", "sgemm", 4)):
        gemm_ms = useful / (peak[key] * 1e9) * 1e3
        x_bytes = 2 * m * dims[0] * itemsize
        mem_ms = x_bytes / (peak["bandwidth"] * 1e9) * 1e3
        limit = "memory" if mem_ms > gemm_ms else "GEMM"
        fast = [r for _, kind, d, r in results if kind == "fastdnn" and d == dtype and "error" not in r]
        direct = [bench.summary(r["per_step"])[0] for r in fast if r["route"] == "direct"]
        gap = f"{direct[0] * 1e3 / max(gemm_ms, mem_ms):.1f}x" if direct else "n/a"
        runs = [r["iterations"] for r in fast if r["route"] == "Gram"]
        gram_ms = (
            f"{(gram['step'] + gram['once'] / runs[0]) / (peak[key] * 1e9) * 1e3:.3f} (N={runs[0]})" if runs else "n/a"
        )
        floor_rows.append(
            [
                dtype,
                f"{gemm_ms:.2f} ({useful / 1e6:.0f} MFLOP at {peak[key]:.0f} GFLOP/s)",
                f"{mem_ms:.2f} ({x_bytes / 1e6:.1f} MB at {peak['bandwidth']:.1f} GB/s)",
                limit,
                gap,
                gram_ms,
            ]
        )
    headers = ["dtype", "GEMM roofline ms", "memory floor ms (X read twice)", "limit", "direct fastdnn / limit",
               "Gram route GEMM floor ms (its run of N)"]
    for line in bench.format_table(headers, floor_rows):
        print(line)
    print(
        "The memory floor assumes X comes from DRAM each step; a last-level cache that holds X beats it.\n"
        "The Gram route reads X only once per run, so neither direct floor bounds it; its floor is its own\n"
        "FLOPs (per step + once per run / N) at the GEMM peak."
    )
    return 0 if all("error" not in r for *_, r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
