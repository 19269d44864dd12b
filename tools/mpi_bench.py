"""Data-parallel training over MPI against one process, side by side, with each step split into compute and
communication; writes what tools/scaling_model.py extrapolates from.

    python3 -m pip install -e ".[mpi]"
    python tools/mpi_bench.py --workloads medium,wide --repeats 3 --json mpi.json
    python tools/scaling_model.py mpi.json

Modes, each a fresh process (or group of processes), interleaved run by run:

    1x2       one process, 2 BLAS threads (fastdnn's policy on this 2-core machine)
    2x1-shm   mpiexec -n 2, 1 BLAS thread a rank, MPICH's default transport (shared memory)
    2x1-tcp   the same with the network path forced over TCP loopback, standing in for a network
              (MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp: this mpich wheel's default netmod is UCX)

Each run trains the workload's network (``fastdnn.workloads``: medium [784, 256, 256, 1] batch 256,
wide [1024, 2048, 2048, 1] batch 1024, float32, Adam) with ``Engine.train(comm=...)`` for --steps
minibatch steps after one untimed warm-up epoch, and reports milliseconds a step (the slowest rank). The
communication a step costs is measured in the same processes: --steps Allreduce calls of the same buffer
(the flat gradient and the cost), alone; compute is the difference. Latency (a one-element Allreduce) and
the large-message time give the link's parameters. The one-process run also times steps on B/p rows for
p = 2..64, the compute term of tools/scaling_model.py. OPENBLAS_CORETYPE is removed.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

MODES = {
    "1x2": ([], {}),
    "2x1-shm": (["-n", "2"], {}),
    "2x1-tcp": (["-n", "2"], {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp"}),
}


def worker(name, steps, threads):
    """One rank's (or the lone process's) measurement, printed as JSON by rank 0."""
    from fastdnn.engine import Engine
    from fastdnn.pipeline import initialize_parameters
    from fastdnn.workloads import WORKLOADS, synthetic_data

    w = WORKLOADS[name]
    comm = None
    if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
    batch = w.m
    per_epoch = 16
    X, Y, _ = synthetic_data(w.dims[0], batch * per_epoch, w.dtype, w.classes)
    X, Y = np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    engine = Engine(initialize_parameters(list(w.dims), "he", 1, np.dtype(w.dtype).type), optimizer="adam",
                    learning_rate=1e-4, mini_batch_size=batch, threads=threads, seed=1)
    engine.train(X, Y, 1, gram=False, comm=comm)  # compile or load, first touch, outside the timing
    epochs = max(1, steps // per_epoch)
    if comm is not None:
        comm.Barrier()
    t0 = time.perf_counter()
    engine.train(X, Y, epochs, gram=False, comm=comm)
    step = (time.perf_counter() - t0) / (epochs * per_epoch)
    flat = engine.state.parameters.flat
    # One process's step on the share of a batch that each of p machines would train (the scaling model's
    # compute term: the per-step work that does not shrink with the share, Adam's update over every
    # parameter among it, is in these times).
    shares = {}
    if comm is None:
        for p in (2, 4, 8, 16, 32, 64):
            share = max(1, batch // p)
            probe = Engine(initialize_parameters(list(w.dims), "he", 1, np.dtype(w.dtype).type), optimizer="adam",
                           learning_rate=1e-4, mini_batch_size=share, threads=threads, seed=1)
            rows = share * max(4, steps // 8)
            probe.train(X[:share], Y[:share], 1, gram=False)
            t0 = time.perf_counter()
            probe.train(X[:rows], Y[:rows], 1, gram=False)
            shares[p] = (time.perf_counter() - t0) / (rows // share) * 1e3
    result = {"workload": name, "dims": list(w.dims), "batch": batch, "dtype": w.dtype, "parameters": int(flat.size),
              "bytes": int((flat.size + 1) * flat.dtype.itemsize), "step_ms": step * 1e3, "ranks": 1,
              "allreduce_ms": 0.0, "latency_us": 0.0, "share_step_ms": shares}
    if comm is not None:
        from mpi4py import MPI

        step = comm.allreduce(step, op=MPI.MAX)
        buffer = np.zeros(flat.size + 1, flat.dtype)
        tiny = np.zeros(1, flat.dtype)
        timings = []
        for payload, count in ((buffer, epochs * per_epoch), (tiny, 1000)):
            comm.Barrier()
            t0 = time.perf_counter()
            for _ in range(count):
                comm.Allreduce(MPI.IN_PLACE, payload, op=MPI.SUM)
            timings.append(comm.allreduce((time.perf_counter() - t0) / count, op=MPI.MAX))
        result.update(step_ms=step * 1e3, ranks=comm.Get_size(), allreduce_ms=timings[0] * 1e3,
                      latency_us=timings[1] * 1e6)
        if comm.Get_rank() != 0:
            return
    print("RESULT " + json.dumps(result), flush=True)


def run(mode, name, steps):
    launch, env_extra = MODES[mode]
    threads = "2" if mode == "1x2" else "1"
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--steps", str(steps), "--threads", threads]
    if launch:
        mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
        command = [mpiexec, *launch, *command]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(env_extra)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"mpi_bench: {mode} {name} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return json.loads(lines[0][len("RESULT "):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--workloads", default="medium,wide")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--steps", type=int, default=160)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="write the medians here, for tools/scaling_model.py")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.steps, args.threads)
    with open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    print(f"{os.cpu_count()} CPUs ({cpu}); {args.steps} Adam steps a run after a warm-up epoch; medians [ranges] of "
          f"{args.repeats} runs, modes interleaved")
    summary = {}
    for name in args.workloads.split(","):
        runs = {mode: [] for mode in args.modes.split(",")}
        for _ in range(args.repeats):
            for mode in runs:
                runs[mode].append(run(mode, name, args.steps))
        first = next(iter(runs.values()))[0]
        print(f"\n{name}: {first['dims']}, batch {first['batch']}, {first['dtype']}, {first['parameters']:,} parameters "
              f"({first['bytes'] / 2**20:.2f} MiB reduced a step)")
        print(f"  {'mode':8s} {'ms/step':>26s} {'vs 1x2':>7s} {'allreduce ms':>13s} {'compute ms':>11s} {'latency us':>11s}")
        base = statistics.median(r["step_ms"] for r in runs.get("1x2", next(iter(runs.values()))))
        summary[name] = {}
        for mode, results in runs.items():
            steps = [r["step_ms"] for r in results]
            med = statistics.median(steps)
            comm_ms = statistics.median(r["allreduce_ms"] for r in results)
            latency = statistics.median(r["latency_us"] for r in results)
            print(f"  {mode:8s} {med:9.2f} [{min(steps):.2f}-{max(steps):.2f}] {base / med:6.2f}x {comm_ms:13.2f} "
                  f"{med - comm_ms:11.2f} {latency:11.1f}")
            summary[name][mode] = {**results[0], "step_ms": med, "allreduce_ms": comm_ms, "latency_us": latency}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
