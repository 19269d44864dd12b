"""This machine's ceilings: sgemm and dgemm peak GFLOP/s, and memory read bandwidth in GB/s.

What is measured, and why:

* GEMM peak: ``fastdnn.bench.gemm_peak``, a large square ``C = A @ B`` (default
  2048^3 in float32, 1536^3 in float64) through SciPy's BLAS ?gemm, the library
  the fast path's kernels call. Large square products are the best case for
  BLAS, so their rate is the ceiling any training step's GEMMs can reach:
  ``2 n^3 / seconds``, median of repeats.
* Read bandwidth: a Numba ``prange`` loop summing a 256 MB float64 array (far
  larger than any cache), with ``numba.set_num_threads(threads)``: the rate at
  which a pass over data that lives in DRAM can go. Median of repeats.

Both are measured with ``threads`` threads (BLAS through threadpoolctl, Numba
through ``numba.set_num_threads``, both by ``fastdnn.bench.limit_threads``),
in a fresh worker process with the benchmark environment of ``fastdnn.bench``.
Other tools call ``measure_in_subprocess`` to put a step's time beside its roofline.

Usage: ``python tools/blas_peak.py [--threads 2] [--repeats 5] [--json out.json]``
"""

import argparse
import json
import os
import statistics
import sys
import time

from fastdnn import bench


def _stream_sum_kernel():
    from numba import njit, prange

    # fastmath lets LLVM vectorise and unroll the reduction, so the loop is
    # limited by memory, not by one add's latency.
    @njit(parallel=True, fastmath=True, cache=False)
    def stream_sum(a):
        s = 0.0
        for i in prange(a.shape[0]):
            s += a[i]
        return s

    return stream_sum


def read_bandwidth(mbytes=256, repeats=5):
    """GB/s reading a float64 array of ``mbytes`` MB once per repeat with Numba's threads: list over repeats."""
    import numpy as np

    stream_sum = _stream_sum_kernel()
    a = np.ones(mbytes * 2**20 // 8)
    stream_sum(a)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        stream_sum(a)
        rates.append(a.nbytes / (time.perf_counter() - t0) / 1e9)
    return rates


def measure(threads=2, repeats=5, sizes=None, mbytes=256):
    """Everything, in this process, with ``threads`` threads.

    Returns {"sgemm": GFLOP/s median, "dgemm": ..., "bandwidth": GB/s median,
    "<key>_runs": per-repeat values, "sizes", "threads", "blas": ``bench.blas_libraries()``}.
    Call it in a fresh process (``measure_in_subprocess``) when the caller has
    other BLAS work loaded.
    """
    sizes = dict(bench.PEAK_SIZES, **(sizes or {}))
    _limiter, blas = bench.limit_threads(threads)
    out = {"threads": threads, "sizes": sizes, "bandwidth_mbytes": mbytes, "blas": blas}
    for key, dtype in (("sgemm", "float32"), ("dgemm", "float64")):
        runs = bench.gemm_peak(dtype, sizes[dtype], repeats)
        out[key], out[key + "_runs"] = statistics.median(runs), runs
    runs = read_bandwidth(mbytes, repeats)
    out["bandwidth"], out["bandwidth_runs"] = statistics.median(runs), runs
    return out


def measure_in_subprocess(threads=2, repeats=5, timeout=600):
    """``measure`` run as ``python tools/blas_peak.py --worker`` in a fresh process; its result, or BenchError."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads), "--repeats", str(repeats)]
    return bench.run_worker(cmd, threads, timeout=timeout, what="blas_peak")


def report(res):
    """Text lines for a ``measure`` result."""

    def lo_hi(key):
        return f"[{min(res[key + '_runs']):.1f}-{max(res[key + '_runs']):.1f}]"

    s, d = res["sizes"]["float32"], res["sizes"]["float64"]
    bandwidth = f"read bandwidth ({res['bandwidth_mbytes']} MB, Numba prange sum)"
    return [
        f"sgemm {s}^3 float32: {res['sgemm']:.1f} GFLOP/s median {lo_hi('sgemm')}",
        f"dgemm {d}^3 float64: {res['dgemm']:.1f} GFLOP/s median {lo_hi('dgemm')}",
        f"{bandwidth}: {res['bandwidth']:.1f} GB/s median {lo_hi('bandwidth')}",
    ]


def print_header(threads, packages=None):
    """What every side-by-side tool prints first: the machine, the busy warning, this machine's BLAS peak.

    Returns the peak's result dict, or None (after saying why on stderr) when its worker failed.
    """
    warning = bench.busy_warning(threads)
    try:
        peak = measure_in_subprocess(threads)
    except bench.BenchError as exc:
        print(f"blas_peak failed: {exc}", file=sys.stderr)
        return None
    header = bench.machine_header(threads, peak["blas"], packages) if packages else bench.machine_header(threads, peak["blas"])
    for line in header:
        print(line)
    if warning:
        print(warning)
    for line in report(peak):
        print(line)
    return peak


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Measure this machine's sgemm/dgemm peak (GFLOP/s, through SciPy's BLAS, the library "
        "fastdnn's kernels call) and memory read bandwidth (GB/s, Numba streaming sum) at a thread count.",
    )
    p.add_argument("--threads", type=int, default=2, help="BLAS and Numba threads (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per measurement; the median is reported")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")

    if args.worker:
        bench.emit(measure(args.threads, args.repeats))
        return 0
    # Measured in a fresh worker with the benchmark environment (thread
    # variables set, OpenBLAS core overrides removed) like every other tool.
    try:
        res = measure_in_subprocess(args.threads, args.repeats)
    except bench.BenchError as exc:
        print(f"blas_peak failed: {exc}", file=sys.stderr)
        return 1
    for line in bench.machine_header(args.threads, res["blas"]):
        print(line)
    for line in report(res):
        print(line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
