"""Where a training step's time goes: each stage and each GEMM of one step, beside the GEMM roofline.

    python tools/profile_step.py --layers 1024,2048,2048,1 --batch 1024 --dtype float32 --threads 2

Times, in this process (kernels compiled and warm first), the compiled stages
of one direct-route step (``network.forward``, ``network.backward``,
``network.optimizer_step``) and, separately, every GEMM the step makes
(layer by layer: Z_l, dW_l, and dA_{l-1} for l >= 2) through the same BLAS
call the kernels use. What the stages take beyond their GEMMs is the fused
element-wise work. Then one whole step as training runs it, both ways:
``network.train`` (serial element-wise passes, BLAS on --threads threads) and
``pool.train_pool`` (the whole step on --threads workers, BLAS single-threaded
inside: what fastdnn trains with when it picks more than one thread). Medians
over repeats; threads set with threadpoolctl.
"""

import argparse
import time

import numpy as np


def _median_ms(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def profile(dims, m, dtype, repeats):
    from fastdnn.kernels import compiled
    from fastdnn.kernels import layers as K
    from fastdnn.kernels import network as N
    from fastdnn.kernels.blas import gemm_checked
    from fastdnn.pipeline import activation_codes, initialize_parameters_deep, layer_block

    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, dims[0])).astype(dtype)
    Y = rng.integers(0, 2, (m, 1)).astype(dtype)
    d = np.asarray(dims, np.int64)
    L = len(dims) - 1
    codes = activation_codes()
    params = initialize_parameters_deep(dims, dtype)
    theta = params.flat
    A = np.empty(m * int(d[1:].sum()), dtype)
    dZ = np.empty_like(A)
    grad = np.empty_like(theta)
    ZL = layer_block(A, m, d, L - 1)
    one = dtype(1)
    # Each stage as training compiles it (option codes as constants, see fastdnn.kernels.compiled).
    calls = {
        "forward": (N.forward, (X, theta, d, *codes, A, A, False)),
        "backward": (N.backward, (X, Y, theta, d, *codes, ZL, A, dZ, dZ, grad, 0)),
        "update (gd)": (
            N.optimizer_step, (theta, grad, np.empty(0, dtype), d, 0, K.OPT_GD, dtype(0), one, one, one, 1)
        ),
    }
    stages = {}
    for stage, (kernel, args) in calls.items():
        fn = compiled(kernel, args, stage)
        stages[stage] = _median_ms(lambda: fn(*args), repeats)
    gemms = []
    prev = X
    for l in range(1, L + 1):
        n, k = dims[l], dims[l - 1]
        W = params[f"W{l}"]
        Z = np.empty((m, n), dtype)
        dW = np.empty((n, k), dtype)
        gemms.append((f"Z{l} = A{l - 1} W{l}^T", 2 * m * n * k, _median_ms(lambda: gemm_checked(False, True, 1.0, prev, W, 0.0, Z), repeats)))
        gemms.append((f"dW{l} = dZ{l}^T A{l - 1}", 2 * m * n * k, _median_ms(lambda: gemm_checked(True, False, 1.0, Z, prev, 0.0, dW), repeats)))
        if l > 1:
            dA = np.empty((m, k), dtype)
            gemms.append((f"dA{l - 1} = dZ{l} W{l}", 2 * m * n * k, _median_ms(lambda: gemm_checked(False, False, 1.0, Z, W, 0.0, dA), repeats)))
        prev = np.maximum(Z, 0)
    return stages, gemms


def whole_steps(dims, m, dtype, repeats, threads):
    """ms for one full-batch gd step: {"network.train": .., "train_pool": ..} (BLAS threads as the caller set
    them for the first; one BLAS thread inside the pool's workers)."""
    from threadpoolctl import threadpool_limits

    from fastdnn.kernels import compiled
    from fastdnn.kernels import layers as K
    from fastdnn.kernels import network as N
    from fastdnn.kernels import pool
    from fastdnn.pipeline import activation_codes, initialize_parameters_deep

    rng = np.random.default_rng(0)
    X = rng.standard_normal((m, dims[0])).astype(dtype)
    Y = rng.integers(0, 2, (m, 1)).astype(dtype)
    d = np.asarray(dims, np.int64)
    theta = initialize_parameters_deep(dims, dtype).flat
    A = np.empty(m * int(d[1:].sum()), dtype)
    work = N.Workspace(np.empty((0, 0), dtype), np.empty((0, 0), dtype), A, np.empty_like(A), np.empty_like(theta))
    state = np.zeros(2 * theta.size, dtype)
    hyper = N.Hyper(1e-6, 0.9, 0.999, 1e-8)
    args = (X, Y, theta, d, *activation_codes(), 0, K.OPT_GD, hyper, None, state, 0, None, m, 1, np.zeros(1), work, None)
    train = compiled(N.train, args, "network.train")
    times = {"network.train": _median_ms(lambda: train(*args), repeats)}
    with threadpool_limits(1, user_api="blas"):
        times["train_pool"] = _median_ms(lambda: pool.train_pool(*args, threads, "pool.train_pool"), repeats)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", default="1024,2048,2048,1", help="layer sizes n_0,...,n_L (default: the wide workload)")
    p.add_argument("--batch", type=int, default=1024, help="examples per step (default 1024)")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    dims = [int(x) for x in args.layers.split(",")]
    with threadpool_limits(args.threads, user_api="blas"):
        stages, gemms = profile(dims, args.batch, np.dtype(args.dtype).type, args.repeats)
        steps = whole_steps(dims, args.batch, np.dtype(args.dtype).type, args.repeats, args.threads)
    total = sum(stages.values())
    gemm_total = sum(t for _, _, t in gemms)
    print(f"step {dims}, batch {args.batch}, {args.dtype}, {args.threads} BLAS threads; medians of {args.repeats}")
    for name, ms in stages.items():
        print(f"  {name:<14} {ms:9.3f} ms")
    print(f"  {'step':<14} {total:9.3f} ms")
    for name, flops, ms in gemms:
        print(f"  GEMM {name:<22} {ms:9.3f} ms  {flops / ms / 1e6:7.1f} GFLOP/s")
    print(f"  GEMMs together {gemm_total:.3f} ms = {100 * gemm_total / total:.0f}% of the step; the rest is the fused passes")
    print(f"whole step (one compiled call of one step), {args.threads} threads:")
    for name, ms in steps.items():
        print(f"  {name:<14} {ms:9.3f} ms  = {ms / gemm_total:.2f}x the GEMMs together")


if __name__ == "__main__":
    main()
