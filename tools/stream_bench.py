"""Streaming training against in-memory training, side by side: throughput, peak memory, the disk's read rate.

    python tools/make_dataset.py /data/big1.npy --rows 250000 --features 1024     # 1.02 GB that fits in memory
    python tools/stream_bench.py /data/big1.npy --repeats 3
    python tools/stream_bench.py /data/big8.npy --modes streamed,streamed-cold --epochs 1 --repeats 1

Each run is a separate ``fastdnn train --data FILE`` process (``--quiet``, a
scratch --out), timed by the command itself ("trained N epochs in S s, R
examples/s": training only, without loading, compiling or scoring) and by
``/usr/bin/time -v`` for the peak RSS of the whole process. Modes, interleaved
run by run so that drift in the machine's speed hits them alike:

    memory          --memory larger than the file: read whole, trained in memory
    streamed        --memory STREAM (default 256MB): blocks of rows read from disk
                    on a second thread while the kernels train; the file in the
                    page cache (warm: read once before)
    streamed-cold   the same with the file dropped from the page cache before
                    the run (posix_fadvise DONTNEED), so every block comes from disk

The disk's own sequential read rate (16 MiB reads of the file, cold, then warm)
is measured beside them, so the reader knows which bound applies. The kernels'
BLAS threads follow fastdnn's policy (every usable core for these sizes; the
reader thread shares them). OPENBLAS_CORETYPE is removed from the runs'
environment.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CHUNK = 16 * 2**20


def drop_from_cache(path):
    """Ask the kernel to forget the file's cached pages (clean pages go; needs no privileges)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def read_rate(path):
    """MB/s of reading the whole file sequentially in CHUNK reads."""
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    total = 0
    fd = os.open(path, os.O_RDONLY)
    t0 = time.perf_counter()
    try:
        while True:
            got = os.readv(fd, [view])
            if not got:
                break
            total += got
    finally:
        os.close(fd)
    return total / (time.perf_counter() - t0) / 1e6


def run(args, mode, out):
    memory = args.memory_whole if mode == "memory" else args.stream
    if mode == "streamed-cold":
        drop_from_cache(args.data)
        labels = os.path.splitext(args.data)[0] + ".labels.npy"
        if os.path.exists(labels):
            drop_from_cache(labels)
    command = [sys.executable, "-m", "fastdnn", "train", "--data", args.data, "--layers", args.layers, "--batch-size",
               str(args.batch_size), "--epochs", str(args.epochs), "--memory", memory, "--out", out, "--quiet"]
    timer = shutil.which("time") or "/usr/bin/time"
    if os.path.exists(timer):
        command = [timer, "-v"] + command
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    text = done.stdout + done.stderr
    if done.returncode != 0:
        raise SystemExit(f"stream_bench: {mode} run failed:\n{text[-2000:]}")
    rate = float(re.search(r"([\d,]+) examples/s\)", text).group(1).replace(",", ""))
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    streamed = "streaming from disk" in text
    if streamed != (mode != "memory"):
        raise SystemExit(f"stream_bench: the {mode} run {'streamed' if streamed else 'did not stream'}; adjust --memory/--stream")
    return rate, int(rss.group(1)) * 1024 if rss else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("data", help="a .npy made by tools/make_dataset.py (labels beside it)")
    p.add_argument("--layers", default="512,256", help="hidden layers (default 512,256: the issue's [n, 512, 256, 1])")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--modes", default="memory,streamed,streamed-cold")
    p.add_argument("--stream", default="256MB", help="--memory of the streamed runs (default 256MB)")
    p.add_argument("--memory-whole", default=None, help="--memory of the in-memory runs (default: 2 x the file)")
    args = p.parse_args(argv)
    args.memory_whole = args.memory_whole or str(2 * os.path.getsize(args.data))
    modes = args.modes.split(",")
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    print(f"{args.data}: {os.path.getsize(args.data) / 1e9:.2f} GB; network {args.layers}, batch {args.batch_size}, "
          f"{args.epochs} epochs a run; {os.cpu_count()} CPUs ({cpu})")
    drop_from_cache(args.data)
    cold = read_rate(args.data)
    warm = read_rate(args.data)
    print(f"sequential read of the file: {cold:,.0f} MB/s from disk (cold), {warm:,.0f} MB/s from the page cache (warm)")
    results = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory() as scratch:
        out = os.path.join(scratch, "model.npz")
        for repeat in range(args.repeats):
            for mode in modes:
                rate, rss = run(args, mode, out)
                results[mode].append((rate, rss))
                print(f"  run {repeat + 1} {mode:14s} {rate:12,.0f} examples/s   peak RSS "
                      f"{rss / 2**20 if rss else float('nan'):8,.0f} MiB", flush=True)
    print(f"\n{'mode':14s} {'examples/s median [range]':>34s} {'vs memory':>10s} {'peak RSS MiB':>13s}")
    base = statistics.median(r for r, _ in results["memory"]) if "memory" in results else None
    for mode, runs in results.items():
        rates = [r for r, _ in runs]
        med = statistics.median(rates)
        ratio = f"{med / base:9.2f}x" if base else ""
        rss = max((m for _, m in runs if m), default=0) / 2**20
        print(f"{mode:14s} {med:14,.0f} [{min(rates):,.0f}-{max(rates):,.0f}] {ratio:>10s} {rss:13,.0f}")
    example_bytes = os.path.getsize(args.data) / max(1, _rows(args.data))
    print(f"\n(the cold rate needs {example_bytes * base / 1e6 if base else float('nan'):,.0f} MB/s of reading at the "
          f"in-memory speed; the disk gives {cold:,.0f} MB/s)")


def _rows(path):
    import numpy as np

    return np.load(path, mmap_mode="r").shape[0]


if __name__ == "__main__":
    main()
