"""Does overlapping the gradient reduction with backpropagation pay on this machine? The experiment the MPI
issue asks for, kept as a tool because the answer decides whether the engine has it.

    python tools/overlap_bench.py --workloads medium,wide --rounds 5 --steps 20

The engine's distributed step (``Engine._distributed_step``) computes this rank's whole gradient in one
compiled call, then reduces the flat buffer with one blocking Allreduce. Overlap starts the reduction of a
layer's gradient as soon as backpropagation has produced it, while the layers below are computed. In a
network of L layers the first layer's gradient comes last and nothing is left to hide its reduction behind;
what can hide is the reduction of layers 2..L (on ``wide``, [1024, 2048, 2048, 1], those are 4.2M of its
6.3M parameters) behind the first layer's backward pass (dZ_1 = dZ_2 W_2, then dW_1 = dZ_1^T X). So the
step here is split in two compiled calls at that point, the most that per-layer overlap can gain here:

    blocking    upper (forward, backward of layers L..2); lower (layer 1); Allreduce(all); update
    overlap     upper; Iallreduce(layers 2..L); lower; Iallreduce(layer 1 and the cost); Waitall; update

Both orders are timed in the same processes, alternating rounds of --steps steps, after a warm-up, and
the tool first checks that they reach the same parameters (with two ranks, a sum of two numbers does not
depend on the algorithm). Also timed there: the compute alone (upper and lower, no communication) and the
Allreduce alone. Each mode is one ``mpiexec -n 2`` group, 1 BLAS thread a rank, started in turn:

    shm         MPICH's default transport on one machine (shared memory)
    tcp         the network path forced over TCP loopback (MPIR_CVAR_NOLOCAL=1 UCX_TLS=tcp)
    shm-async   shm with MPICH's progress thread (MPIR_CVAR_ASYNC_PROGRESS=1): a non-blocking reduction
                progresses without MPI calls, at the price of a thread that competes for the 2 cores

Without a progress thread MPICH advances a non-blocking operation only inside MPI calls, so the reduction
started before ``lower`` may wait until ``Waitall``. OPENBLAS_CORETYPE is removed in the runs it starts.
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
    "shm": {},
    "tcp": {"MPIR_CVAR_NOLOCAL": "1", "UCX_TLS": "tcp"},
    "shm-async": {"MPIR_CVAR_ASYNC_PROGRESS": "1", "MPIR_CVAR_DEFAULT_THREAD_LEVEL": "MPI_THREAD_MULTIPLE"},
}


def kernels():
    """The two halves of a step, compiled from the kernels' own building blocks."""
    from numba import njit

    from fastdnn.kernels.blas import gemm
    from fastdnn.kernels.layers import bias_act_backward
    from fastdnn.kernels.network import backward, forward, layer_parameters, layer_view

    @njit(cache=False)
    def upper(X, Y, theta, dims, hidden, output, A, dZ, grad):
        """Forward; the cost; dW, db of layers 2..L into grad; dZ_2 left in dZ."""
        m = X.shape[0]
        L = dims.shape[0] - 1
        forward(X, theta, dims, hidden, output, A, A, False)
        return m * backward(X, Y, theta, dims, hidden, output, layer_view(A, m, dims, L - 1), A, dZ, dZ, grad,
                            np.int64(1))

    @njit(cache=False)
    def lower(X, theta, dims, hidden, A, dZ, grad):
        """Layer 1's gradient from dZ_2: dZ_1 = dZ_2 W_2 (through the activation), db_1, dW_1 = dZ_1^T X / m."""
        m = X.shape[0]
        scale = 1.0 / m
        dZ2 = layer_view(dZ, m, dims, np.int64(1))
        W2, _ = layer_parameters(theta, dims, np.int64(1))
        dZ1 = layer_view(dZ, m, dims, np.int64(0))
        gemm(False, False, 1.0, dZ2, W2, 0.0, dZ1)
        dW1, db1 = layer_parameters(grad, dims, np.int64(0))
        bias_act_backward(dZ1, layer_view(A, m, dims, np.int64(0)), hidden, scale, db1)
        gemm(True, False, scale, dZ1, X, 0.0, dW1)

    return upper, lower


def worker(name, rounds, steps):
    from mpi4py import MPI

    from fastdnn.distributed import share
    from fastdnn.engine import Engine
    from fastdnn.kernels import compiled
    from fastdnn.kernels import network as N
    from fastdnn.pipeline import initialize_parameters
    from fastdnn.threads import blas_threads
    from fastdnn.workloads import WORKLOADS, synthetic_data

    comm = MPI.COMM_WORLD
    size, rank = comm.Get_size(), comm.Get_rank()
    w = WORKLOADS[name]
    dtype = np.dtype(w.dtype)
    lo, hi = share(w.m, size, rank)
    X, Y, _ = synthetic_data(w.dims[0], w.m, w.dtype, w.classes)
    X, Y = np.ascontiguousarray(X.T[lo:hi]), np.ascontiguousarray(Y.T[lo:hi])
    engine = Engine(initialize_parameters(list(w.dims), "he", 1, dtype.type), optimizer="adam", learning_rate=1e-4,
                    mini_batch_size=w.m, seed=1)
    dims, codes = engine.dims, engine.codes
    theta = engine.state.parameters.flat
    start = (theta.copy(), engine.state.optimizer_state.copy())
    P = theta.size
    first = int(dims[1] * (dims[0] + 1))  # layer 1's W and b lead the flat buffer
    m = X.shape[0]
    A = np.empty(m * int(dims[1:].sum()), dtype)
    dZ = np.empty_like(A)
    buffer = np.zeros(P + 1, dtype)
    upper, lower = kernels()
    # Typed with the option codes as constants, as the engine calls its kernels.
    upper = compiled(upper, (X, Y, theta, dims, *codes, A, dZ, buffer[:P]), "upper")
    lower = compiled(lower, (X, theta, dims, codes[0], A, dZ, buffer[:P]), "lower")
    full_batch_update = compiled(N.full_batch_update, (theta, buffer[:P], engine.state.optimizer_state, dims, 0,
                                                       engine.opt, engine.hyper, engine.lambd, 0.0, 1, 0), "update")
    state = {"step": 0}

    def update():
        cost, _ = full_batch_update(theta, buffer[:P], engine.state.optimizer_state, dims, 0, engine.opt,
                                    engine.hyper, engine.lambd, float(buffer[P]), w.m, state["step"])
        state["step"] += 1
        return cost

    def compute():
        buffer[P] = upper(X, Y, theta, dims, *codes, A, dZ, buffer[:P])
        lower(X, theta, dims, codes[0], A, dZ, buffer[:P])

    def blocking():
        compute()
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
        update()

    def overlap():
        buffer[P] = upper(X, Y, theta, dims, *codes, A, dZ, buffer[:P])
        top = comm.Iallreduce(MPI.IN_PLACE, buffer[first:], op=MPI.SUM)  # layers 2..L and the cost
        lower(X, theta, dims, codes[0], A, dZ, buffer[:P])
        bottom = comm.Iallreduce(MPI.IN_PLACE, buffer[:first], op=MPI.SUM)
        MPI.Request.Waitall([top, bottom])
        update()

    def allreduce():
        comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)

    def reset():
        theta[:], engine.state.optimizer_state[:] = start
        state["step"] = 0

    with blas_threads(1):
        # Same parameters either way (and the one-call kernel's gradient, to its rounding).
        results = []
        for step in (blocking, overlap):
            reset()
            for _ in range(3):
                step()
            results.append(theta.copy())
        same = bool(np.array_equal(results[0], results[1]))
        reset()
        times = {"blocking": [], "overlap": [], "compute": [], "allreduce": []}
        for fn in (blocking, overlap, compute, allreduce):  # warm-up
            fn()
        for _ in range(rounds):
            for label, fn in (("blocking", blocking), ("overlap", overlap), ("compute", compute),
                              ("allreduce", allreduce)):
                comm.Barrier()
                t0 = time.perf_counter()
                for _ in range(steps):
                    fn()
                elapsed = comm.allreduce((time.perf_counter() - t0) / steps, op=MPI.MAX)
                times[label].append(elapsed * 1e3)
    if rank == 0:
        print("RESULT " + json.dumps({"workload": name, "dims": [int(d) for d in dims], "batch": w.m,
                                      "parameters": int(P), "first_layer": first, "same": same, "ms": times}),
              flush=True)


def run(mode, name, rounds, steps):
    mpiexec = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
    command = [mpiexec, "-n", "2", sys.executable, os.path.abspath(__file__), "--worker", name, "--rounds", str(rounds),
               "--steps", str(steps)]
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    env.update(MODES[mode])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"overlap_bench: {mode} {name} failed:\n{done.stdout[-1500:]}\n{done.stderr[-1500:]}")
    return json.loads(lines[0][len("RESULT "):])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="medium,wide")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--rounds", type=int, default=5, help="alternating rounds of each order (default 5)")
    p.add_argument("--steps", type=int, default=20, help="steps a round (default 20)")
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.rounds, args.steps)
    out = []
    print("| workload | transport | blocking ms/step | overlap ms/step | overlap/blocking | compute | Allreduce "
          "| same parameters |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.workloads.split(","):
        for mode in args.modes.split(","):
            r = run(mode, name, args.rounds, args.steps)
            r["mode"] = mode
            out.append(r)
            ms = r["ms"]
            med = {k: statistics.median(v) for k, v in ms.items()}
            rng = {k: f"{min(v):.2f}-{max(v):.2f}" for k, v in ms.items()}
            # The ratio of medians, and its range over rounds paired in time.
            pairs = [o / b for o, b in zip(ms["overlap"], ms["blocking"])]
            print(f"| {name} | {mode} | {med['blocking']:.2f} [{rng['blocking']}] | {med['overlap']:.2f} "
                  f"[{rng['overlap']}] | {statistics.median(pairs):.3f} [{min(pairs):.3f}-{max(pairs):.3f}] "
                  f"| {med['compute']:.2f} | {med['allreduce']:.2f} | {r['same']} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
