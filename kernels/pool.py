"""The training loop with the whole step on one pool of T threads (``train_pool``).

``network.train`` runs its element-wise passes (bias + activation, derivative
+ db, loss, the optimizer over every parameter) on one core between BLAS calls,
and each BLAS call wakes BLAS's own pool. Here T workers run the same loop,
each on its share of every pass, with single-threaded BLAS inside:

    rows phase   worker t owns rows [t mb / T, (t+1) mb / T) of the batch: it
                 gathers them, runs them forward through every layer (its rows
                 of Z_l = A_{l-1} W_l^T, then bias + activation while they are in
                 cache), and backward: its rows of dZ_L from the logits, then
                 dZ_{l-1} = dZ_l W_l fused with the activation's derivative. No
                 layer needs another worker's rows, so this is one phase.
                 Each block's partial db sums and cost go to shared slots.
    barrier      every worker sums the blocks' costs in block order, so all
                 take the same stop decision (a non-finite cost) without talking.
    units phase  worker t owns output units [t n_l / T, (t+1) n_l / T) of every
                 trainable layer: its rows of dW_l = dZ_l^T A_{l-1} (one BLAS
                 call over the whole batch), db_l as the blocks' partial sums in
                 block order, the L2 term, and at once the optimizer's update of
                 those rows of W_l and b_l and their state, and the rows' sum of
                 squares for the next step's L2 cost.
    barrier      the next step's forward reads every updated row.

Two barriers a step, in compiled code on an atomic counter (spinning while
the other workers are near, then sleeping on a futex: ``barrier``).
The workers are Python threads calling one compiled ``nogil`` function,
``train_worker``, that holds the whole epoch loop: no Python between steps.

Why threads of our own and not Numba's ``prange`` (measured on the project's
2-core AMD EPYC, tools/pool_bench.py, each configuration in its own
process): a prange loop is a launch per phase, two a step. Under Numba's
workqueue layer a launch costs ~50 us (a small [64,32,32,1] step took
0.13-0.18 ms against 0.015), and two Python threads launching at once abort
the process. The omp layer (GNU OpenMP) launches in microseconds and matched
this pool on a quiet machine, but its spinning threads lost up to 1000x in
rounds where other processes shared the cores (15 ms a small step, 16 ms a
medium one, against at most 0.06 and 8 here), a forked child of a process
that used it is terminated, and it shares or competes with a user's own
OpenMP runtime; TBB does not come with Numba's wheel. This pool launches
once per call and needs no threading layer, and its barriers cost no system
call when the workers arrive together.

What T changes, and nothing else: where the batch's rows and each layer's
units are cut. So (1) db and the cost are summed per row block, and L2's sum
of squares per unit block, then over the blocks in block order; (2) every BLAS call has other shapes (a row block's
Z_l and dZ_{l-1}, a unit block's dW_l, a GEMV for a block of one row or
unit), for which BLAS may choose other kernels and so other summation orders
over k. Measured with SciPy's OpenBLAS on an AMD EPYC: [784,256,256,1] on 256
rows differs between T = 1 and 2 in db and the cost only, at T = 3 in some
rows of A too; small odd shapes ([50,40,30,3] on 37 rows) in every tensor.
Each product is still a sum of the same k terms, so the tensors agree within
rounding bounds (tests/test_kernels_pool.py derives them). For a fixed T a run
repeats bit for bit, and T = 1 is ``network.train`` bit for bit: one block,
the same BLAS calls, the same element-wise arithmetic in the same order.
"""

import ctypes
import math
import os
import platform
import queue
import sys
import threading
from collections import namedtuple

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

from .blas import blas_address, data_ptr, gemm
from .layers import (
    update_range,
    OPT_GD,
    OPT_MOMENTUM,
    gather_rows,
    output_backward,
)
from .masks import step_keys
from .network import (
    STOP_COST,
    STOP_NONE,
    STOP_PARAMETERS,
    Masks,
    check_rates,
    dropout_keys,
    epoch_rate,
    hidden_backward,
    hidden_forward,
    layer_parameters,
    layer_view,
    masks_rows,
    rows_of,
    weight_total,
)

Shared = namedtuple("Shared", "sync parts db")
Shared.__doc__ = """What a call's workers share (``shared``): sync (int64) the barrier counter, its sleepers, the
abort flag, one sleep's timespec and each worker's count of non-finite updated values, one cache line
apart; parts (T, 8) float64 each worker's block cost and sum of squares; db (T * sum(n_1..n_L)) each row
block's partial db sums."""

# Word offsets in Shared.sync, 64 bytes apart so that the spun-on counter shares its line with nothing.
ARRIVED = 0
SLEEPERS = 8  # workers asleep on the counter
ABORT = 16
NAP = 24  # a struct timespec of how long one sleep lasts at most (so that an abort is seen)
BAD = 32  # worker t's count at BAD + 8 t
PART_COST = 0
PART_SQUARES = 1
# Polls of the barrier counter before a waiter sleeps: ~20-40 us of spinning, longer than a balanced
# phase's wait (a few us). A sleeping waiter frees its core, so that when another process holds a core,
# the scheduler can run the late worker on the freed one instead of it waiting for a time slice.
SPIN_LIMIT = 20000
NAP_NS = 2_000_000
# A worker's return when another worker failed: the caller raises that worker's exception.
ABORTED = -1


def shared_buffers(threads, dims, dtype):
    """A fresh ``Shared`` for one call of ``threads`` workers on layer sizes ``dims`` in ``dtype``."""
    return Shared(
        np.array([0] * NAP + [0, NAP_NS] + [0] * (BAD - NAP - 2 + 8 * threads), np.int64),
        np.zeros((threads, 8), np.float64),
        np.zeros(threads * int(np.sum(dims[1:])), dtype),
    )


# ---------------------------------------------------------------------------
# Atomics and yielding, for the barrier
# ---------------------------------------------------------------------------


def _word_pointer(context, builder, arr_type, arr, index):
    ary = context.make_array(arr_type)(context, builder, arr)
    return cgutils.get_item_pointer(context, builder, arr_type, ary, [index])


@intrinsic
def atomic_add(typingctx, arr, index, value):
    """arr[index] += value atomically (sequentially consistent) on an int64 array; returns the old value."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        raise TypingError("atomic_add takes an int64 array")

    def codegen(context, builder, signature, args):
        ptr = _word_pointer(context, builder, signature.args[0], args[0], args[1])
        delta = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", ptr, delta, "seq_cst")

    return types.int64(arr, index, value), codegen


@intrinsic
def atomic_load(typingctx, arr, index):
    """arr[index] of an int64 array, read sequentially consistent (what was written before a store seen here is
    seen, and the barrier's sleeper count and counter are read in one order by all)."""
    if not (isinstance(arr, types.Array) and arr.dtype == types.int64):
        raise TypingError("atomic_load takes an int64 array")

    def codegen(context, builder, signature, args):
        ptr = _word_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(ptr, "seq_cst", 8)

    return types.int64(arr, index), codegen


def _futex():
    """(the address of libc's syscall, the futex system call's number) on Linux where the number is
    known and a 32-bit futex can watch an int64 counter's low half (little-endian); else None."""
    number = {"x86_64": 202, "aarch64": 98, "ppc64le": 221, "riscv64": 98}.get(platform.machine())
    if sys.platform != "linux" or sys.byteorder != "little" or number is None:
        return None
    return ctypes.cast(ctypes.CDLL(None).syscall, ctypes.c_void_p).value, number


def _yield_address():
    if sys.platform == "win32":
        return ctypes.cast(ctypes.windll.kernel32.SwitchToThread, ctypes.c_void_p).value
    return ctypes.cast(ctypes.CDLL(None).sched_yield, ctypes.c_void_p).value


# Bound to named symbols like blas.py's routines, so that the calling code stays cacheable on disk.
llvm.add_symbol("fastdnn_pool_yield", _yield_address())
_yield = types.ExternalFunction("fastdnn_pool_yield", types.int32())
_FUTEX = _futex()
# A module constant: the barrier compiles only the branch it takes (where there is no futex, yielding).
FUTEX_SYSCALL = -1 if _FUTEX is None else _FUTEX[1]
FUTEX_WAIT_PRIVATE = 128
FUTEX_WAKE_PRIVATE = 129
llvm.add_symbol("fastdnn_pool_syscall", _yield_address() if _FUTEX is None else _FUTEX[0])
# syscall(number, address, operation, value, timeout, 0, 0): the futex's arguments, all in integer registers.
_syscall = types.ExternalFunction(
    "fastdnn_pool_syscall",
    types.int64(types.int64, types.CPointer(types.int64), types.int64, types.int64, types.CPointer(types.int64),
                types.int64, types.int64),
)


@njit(cache=True, no_cfunc_wrapper=True, nogil=True)
def barrier(sync, target):
    """Arrive, then wait until ``target`` arrivals in all (the k-th barrier of T workers: k T). False when
    another worker aborted. The counter only grows, so a worker can never run into the next barrier's
    arrivals: none passes barrier k before all T have arrived at it.

    A waiter spins SPIN_LIMIT polls, then sleeps on the counter (a futex; where there is none it yields
    the core between polls) for at most NAP_NS at a time. It counts itself in SLEEPERS before it checks
    the counter a last time, and the last to arrive wakes the sleepers only when it sees some: with every
    access sequentially consistent, either it sees the sleeper or the sleeper sees its arrival (and the
    futex does not sleep on a changed counter), so none sleeps through its barrier and a barrier with
    nobody asleep costs no system call.
    """
    if atomic_add(sync, ARRIVED, 1) + 1 == target:
        if FUTEX_SYSCALL >= 0 and atomic_load(sync, SLEEPERS) != 0:
            _syscall(FUTEX_SYSCALL, data_ptr(sync), FUTEX_WAKE_PRIVATE, 2147483647, data_ptr(sync[NAP:]), 0, 0)
        return True
    polls = 0
    while True:
        seen = atomic_load(sync, ARRIVED)
        if seen >= target:
            return True
        polls += 1
        if polls > SPIN_LIMIT:
            if atomic_load(sync, ABORT) != 0:
                return False
            if FUTEX_SYSCALL >= 0:
                atomic_add(sync, SLEEPERS, 1)
                if atomic_load(sync, ARRIVED) == seen:
                    _syscall(FUTEX_SYSCALL, data_ptr(sync), FUTEX_WAIT_PRIVATE, seen & 0xFFFFFFFF,
                             data_ptr(sync[NAP:]), 0, 0)
                atomic_add(sync, SLEEPERS, -1)
            else:
                _yield()


# ---------------------------------------------------------------------------
# BLAS with leading dimensions: a worker's rows of dW_l read a column block of dZ_l
# ---------------------------------------------------------------------------


def _declare(routine, dtype, n_args):
    symbol = f"fastdnn_pool_{routine}"
    llvm.add_symbol(symbol, blas_address(routine))
    p = types.CPointer(dtype)
    i = types.CPointer(types.int32)
    c = types.CPointer(types.int8)
    if n_args == 13:  # ?gemm (transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        args = (c, c, i, i, i, p, p, i, p, i, p, p, i)
    else:  # ?gemv (trans, m, n, alpha, a, lda, x, incx, beta, y, incy)
        args = (c, i, i, p, p, i, p, i, p, p, i)
    return types.ExternalFunction(symbol, types.void(*args))


_dgemm = _declare("dgemm", types.float64, 13)
_sgemm = _declare("sgemm", types.float32, 13)
_dgemv = _declare("dgemv", types.float64, 11)
_sgemv = _declare("sgemv", types.float32, 11)
_N = np.int8(ord("N"))
_T = np.int8(ord("T"))


@intrinsic
def _by_ref(typingctx, value):
    def codegen(context, builder, signature, args):
        return cgutils.alloca_once_value(builder, args[0])

    return types.CPointer(value)(value), codegen


def dw_rows(alpha, dZ, j0, j1, A, C):
    """C (j1 - j0, k) = alpha dZ[:, j0:j1]^T A for dZ (mb, n), A (mb, k), C C-contiguous (compiled code only).

    ``blas.gemm(True, False, alpha, dZ, A, 0.0, dW)`` restricted to rows j0..j1 of
    dW: the same routine with the same arguments when j0..j1 is every row
    (one output row or column is a GEMV there too), so one worker's call is
    that one bit for bit.
    """
    raise NotImplementedError("fastdnn.kernels.pool.dw_rows is callable from compiled code only")


@overload(dw_rows, jit_options={"cache": True, "no_cfunc_wrapper": True})
def _dw_rows_impl(alpha, dZ, j0, j1, A, C):
    if C.dtype == types.float64:
        fn, fv, dt = _dgemm, _dgemv, np.float64
    elif C.dtype == types.float32:
        fn, fv, dt = _sgemm, _sgemv, np.float32
    else:
        return None

    def impl(alpha, dZ, j0, j1, A, C):
        M = j1 - j0
        K, N = A.shape
        if M == 0 or N == 0 or K == 0:
            return
        lda = dZ.shape[1]  # the column block's row stride
        ldb = N if N > 1 else 1
        a = data_ptr(dZ[0, j0:])
        if M == 1:
            # c (N) = A^T x, x = column j0 of dZ (stride lda); column-major BLAS sees A as A^T.
            fv(_by_ref(_N), _by_ref(np.int32(N)), _by_ref(np.int32(K)), _by_ref(dt(alpha)), data_ptr(A),
               _by_ref(np.int32(ldb)), a, _by_ref(np.int32(lda)), _by_ref(dt(0.0)), data_ptr(C), _by_ref(np.int32(1)))
            return
        if N == 1:
            # c (M) = dZ[:, j0:j1]^T a; column-major BLAS sees the block as (M, K) with leading dimension lda.
            fv(_by_ref(_N), _by_ref(np.int32(M)), _by_ref(np.int32(K)), _by_ref(dt(alpha)), a,
               _by_ref(np.int32(lda)), data_ptr(A), _by_ref(np.int32(1)), _by_ref(dt(0.0)), data_ptr(C),
               _by_ref(np.int32(1)))
            return
        # Fortran sees C^T (N, M) = A^T (N, K) @ block (K, M), the block's leading dimension lda.
        fn(_by_ref(_N), _by_ref(_T), _by_ref(np.int32(N)), _by_ref(np.int32(M)), _by_ref(np.int32(K)),
           _by_ref(dt(alpha)), data_ptr(A), _by_ref(np.int32(ldb)), a, _by_ref(np.int32(lda)), _by_ref(dt(0.0)),
           data_ptr(C), _by_ref(np.int32(N)))

    return impl


# ---------------------------------------------------------------------------
# Sample weights
# ---------------------------------------------------------------------------


def block_weights(weights, perms, e, s, mb, r0, r1):
    """``network.batch_weights`` for a worker of rows r0..r1: it gathers only those rows' weights (a shuffled
    batch's), and returns the whole batch's view, complete once every worker has passed the next barrier;
    None without weights (compiled code only)."""
    raise NotImplementedError("fastdnn.kernels.pool.block_weights is callable from compiled code only")


@overload(block_weights, jit_options={"cache": True, "no_cfunc_wrapper": True})
def _block_weights_for(weights, perms, e, s, mb, r0, r1):
    if weights is None or isinstance(weights, types.NoneType):
        def impl(weights, perms, e, s, mb, r0, r1):
            return None
    elif perms is None or isinstance(perms, types.NoneType):
        def impl(weights, perms, e, s, mb, r0, r1):
            return weights.rows[s : s + mb]
    else:
        def impl(weights, perms, e, s, mb, r0, r1):
            out = weights.batch[:mb]
            for i in range(r0, r1):
                out[i] = weights.rows[perms[e, s + i]]
            return out
    return impl


def block_masks(dropout, keys, perms, e, s, mb, r0, r1, step):
    """``network.batch_masks`` (step: the steps taken before the batch's) for a worker of rows r0..r1: its own layer keys in ``keys``, and of a shuffled
    batch only its rows' rows gathered into ``dropout.batch`` (each worker reads back only its own, so no
    barrier is needed); None without dropout (compiled code only)."""
    raise NotImplementedError("fastdnn.kernels.pool.block_masks is callable from compiled code only")


@overload(block_masks, jit_options={"cache": True, "no_cfunc_wrapper": True})
def _block_masks_for(dropout, keys, perms, e, s, mb, r0, r1, step):
    if dropout is None or isinstance(dropout, types.NoneType):
        def impl(dropout, keys, perms, e, s, mb, r0, r1, step):
            return None
    elif perms is None or isinstance(perms, types.NoneType):
        def impl(dropout, keys, perms, e, s, mb, r0, r1, step):
            step_keys(dropout.seed, step + 1, keys)
            return Masks(keys, dropout.limits, dropout.scales, dropout.rows[s : s + mb])
    else:
        def impl(dropout, keys, perms, e, s, mb, r0, r1, step):
            step_keys(dropout.seed, step + 1, keys)
            out = dropout.batch[:mb]
            for i in range(r0, r1):
                out[i] = dropout.rows[perms[e, s + i]]
            return Masks(keys, dropout.limits, dropout.scales, out)
    return impl


# ---------------------------------------------------------------------------
# One worker's share of a step
# ---------------------------------------------------------------------------


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def rows_block(Xe, Ye, r0, r1, theta, dims, hidden, output, first_layer, A, dZ, db, We, masks=None):
    """Forward and backward of rows r0..r1 of the batch (Xe, Ye): their rows of the activations in A and of
    the gradients at the pre-activations in dZ (the flat workspaces of ``network.train``, for Xe's rows),
    their unscaled column sums of dZ_l in db (laid out like the biases: layer l's n_l sums after layer
    l-1's), for the layers that backpropagation reaches. Returns their mean cost (float64). We: the batch's
    weights (None: unweighted): the rows' dZ_L carry them and the mean is theirs. masks: the batch's
    dropout ``network.Masks`` (None: none), of which the worker's rows' are formed and used here, in the
    same fused passes as ``network.forward`` and ``backward``: a row's masks do not depend on the block."""
    mb = Xe.shape[0]
    L = dims.shape[0] - 1
    mine = masks_rows(masks, r0, r1)
    A_prev = Xe[r0:r1]
    for l in range(L):
        Al = layer_view(A, mb, dims, l)[r0:r1]
        Wl, bl = layer_parameters(theta, dims, l)
        gemm(False, True, 1.0, A_prev, Wl, 0.0, Al)
        if l < L - 1:
            hidden_forward(Al, bl, Al, hidden, mine, l)
        else:
            # The logits, as network.forward forms them for training.
            for i in range(r1 - r0):
                for j in range(dims[L]):
                    Al[i, j] = Al[i, j] + bl[j]
        A_prev = Al
    o = 0
    for l in range(L - 1):
        o += dims[l + 1]
    dZl = layer_view(dZ, mb, dims, L - 1)[r0:r1]
    # scale 1: the blocks' sums are added first, then scaled, as one block's would be.
    cost = output_backward(A_prev, Ye[r0:r1], output, 1.0, dZl, db[o : o + dims[L]], rows_of(We, r0, r1 - r0))
    for l in range(L - 1, first_layer, -1):
        o -= dims[l]
        dZ_prev = layer_view(dZ, mb, dims, l - 1)[r0:r1]
        Wl, _ = layer_parameters(theta, dims, l)
        gemm(False, False, 1.0, dZl, Wl, 0.0, dZ_prev)
        hidden_backward(dZ_prev, layer_view(A, mb, dims, l - 1)[r0:r1], hidden, 1.0, db[o : o + dims[l]], mine, l - 1)
        dZl = dZ_prev
    return cost


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def squares(theta, dims, first, last, t, T, total):
    """``total`` plus the sum of squares of worker t's rows of W_l for layers first+1..last, in layer then
    row order (float64): with T = 1, ``layers.l2_terms``'s sum in its order."""
    o = 0
    for l in range(last):
        n, k = dims[l + 1], dims[l]
        if l >= first:
            W = theta[o + (t * n // T) * k : o + ((t + 1) * n // T) * k]
            for i in range(W.shape[0]):
                total += float(W[i]) * float(W[i])
        o += n * (k + 1)
    return total


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def units_block(t, T, Xe, theta, dims, first_layer, opt, lr, beta1, beta2, eps, step, lambd, state, A, dZ, grad,
                db, squares_from, M):
    """Worker t's rows of every trainable layer: dW_l and db_l from the whole batch (db from the row blocks'
    partial sums ``db``, T blocks of sum(n_1..n_L)), the L2 term when lambd is not None, then the
    optimizer's step on those rows of W_l, b_l and their state; M the batch's size (float), or its total
    weight. Returns (non-finite values written, the updated rows' sum of squares added to ``squares_from``)."""
    mb = Xe.shape[0]
    L = dims.shape[0] - 1
    P = theta.shape[0]
    S = db.shape[0] // T
    scale = 1.0 / M
    dt = theta.dtype.type
    bad = 0
    total = squares_from
    o = 0
    ob = 0
    for l in range(L):
        n, k = dims[l + 1], dims[l]
        j0, j1 = t * n // T, (t + 1) * n // T
        if l >= first_layer and j1 > j0:
            gW, gb = layer_parameters(grad, dims, l)
            dw_rows(scale, layer_view(dZ, mb, dims, l), j0, j1, Xe if l == 0 else layer_view(A, mb, dims, l - 1),
                    gW[j0:j1])
            for j in range(j0, j1):
                s = db[ob + j]
                for b in range(1, T):
                    s += db[b * S + ob + j]
                gb[j] = s * scale
            w0, w1 = o + j0 * k, o + j1 * k
            b0, b1 = o + n * k + j0, o + n * k + j1
            if lambd is not None:
                G = grad[w0:w1]
                W = theta[w0:w1]
                l2 = dt(lambd / M)
                for i in range(W.shape[0]):
                    G[i] = G[i] + l2 * W[i]
            # State past its end is an empty slice: gd's state may be empty.
            bad += update_range(theta[w0:w1], grad[w0:w1], state[w0:w1], state[P + w0 : P + w1], opt, lr, beta1,
                                beta2, eps, step)
            bad += update_range(theta[b0:b1], grad[b0:b1], state[b0:b1], state[P + b0 : P + b1], opt, lr, beta1,
                                beta2, eps, step)
            if lambd is not None:
                W = theta[w0:w1]
                for i in range(W.shape[0]):
                    total += float(W[i]) * float(W[i])
        o += n * (k + 1)
        ob += n
    return bad, total


# ---------------------------------------------------------------------------
# The worker's loop and the pool
# ---------------------------------------------------------------------------


@njit(cache=True, no_cfunc_wrapper=True, nogil=True)
def train_worker(X, Y, theta, dims, hidden, output, first_layer, opt, hyper, lambd, state, step, perms, batch_size,
                 n_epochs, costs, work, weights, shared, t, dropout=None):
    """Worker t of ``shared``'s T running ``network.train``'s loop (arguments as there, ``train_pool``'s
    docstring; ``dropout`` a ``network.Dropout`` or None, last so that callers without it are as they were),
    its share of every pass; the T workers must run at once (each waits for all at every barrier). Every worker returns (epochs completed, steps taken so far, STOP_* reason), the same in all;
    worker 0 writes ``costs``. (ABORTED, step, ABORTED) when another worker set the abort flag."""
    Xb, Yb, A, dZ, grad = work
    sync, parts, dbp = shared
    T = parts.shape[0]
    S = dbp.shape[0] // T
    db = dbp[t * S : (t + 1) * S]
    m = X.shape[0] if perms is None else perms.shape[1]
    L = dims.shape[0] - 1
    dt = theta.dtype.type
    check_rates(hyper.learning_rate, n_epochs)
    beta1, beta2, eps = dt(hyper.beta1), dt(hyper.beta2), dt(hyper.epsilon)
    # The views network.train takes before its first update, taken here by every worker before any
    # barrier: a short buffer raises the same ValueError in all of them, with nothing written yet.
    mb = batch_size if batch_size < m else m
    layer_view(A, mb, dims, L - 1)
    layer_view(dZ, mb, dims, L - 1)
    layer_parameters(theta, dims, L - 1)
    layer_parameters(grad, dims, L - 1)
    keys = dropout_keys(dropout, L)  # the worker's own: every worker forms the same keys
    arrivals = 0
    l2 = 0.0
    frozen = 0.0
    if lambd is not None:
        # Each worker's sum starts from its frozen rows' (a constant), so that with T = 1 it runs in
        # l2_terms's order.
        frozen = squares(theta, dims, 0, first_layer, t, T, 0.0)
        parts[t, PART_SQUARES] = squares(theta, dims, first_layer, L, t, T, frozen)
        arrivals += T
        if not barrier(sync, arrivals):
            return ABORTED, step, ABORTED
        for b in range(T):
            l2 += parts[b, PART_SQUARES]
    for e in range(n_epochs):
        lr = dt(epoch_rate(hyper.learning_rate, e))  # the epoch's rate, as network.train reads it
        total = costs[e]
        for s in range(0, m, batch_size):
            mb = batch_size if batch_size < m - s else m - s
            r0, r1 = t * mb // T, (t + 1) * mb // T
            if perms is None:
                Xe = X[s : s + mb]
                Ye = Y[s : s + mb]
            else:
                Xe = Xb[:mb]
                Ye = Yb[:mb]
                gather_rows(X, perms[e, s + r0 : s + r1], Xe[r0:r1])
                gather_rows(Y, perms[e, s + r0 : s + r1], Ye[r0:r1])
            We = block_weights(weights, perms, e, s, mb, r0, r1)  # the whole batch's, once past the barrier
            masks = block_masks(dropout, keys, perms, e, s, mb, r0, r1, step)  # valid for rows r0..r1
            if r1 > r0:
                parts[t, PART_COST] = rows_block(Xe, Ye, r0, r1, theta, dims, hidden, output, first_layer, A, dZ, db,
                                                 We, masks)
            else:
                parts[t, PART_COST] = 0.0
                for j in range(S):
                    db[j] = 0
            arrivals += T
            if not barrier(sync, arrivals):
                return ABORTED, step, ABORTED
            M = weight_total(We, mb)  # as network.train sums it: the same bits
            if M == 0.0:
                continue  # every worker sees it: no step, as in network.train
            cost = 0.0
            for b in range(T):
                # Each block's mean weighted by its share of the batch (rows, or weight): one block's is exactly 1.
                b0, b1 = b * mb // T, (b + 1) * mb // T
                cost += parts[b, PART_COST] * (weight_total(rows_of(We, b0, b1 - b0), b1 - b0) / M)
            if lambd is not None:
                cost += lambd / (2 * M) * l2
            if not math.isfinite(cost):
                if t == 0:
                    costs[e] = cost
                return e, step, STOP_COST
            step += 1
            bad, squares_t = units_block(t, T, Xe, theta, dims, first_layer, opt, lr, beta1, beta2, eps, step,
                                         lambd, state, A, dZ, grad, dbp, frozen, M)
            sync[BAD + 8 * t] = bad
            parts[t, PART_SQUARES] = squares_t
            arrivals += T
            if not barrier(sync, arrivals):
                return ABORTED, step, ABORTED
            total += cost * M
            bad = 0
            l2 = 0.0
            for b in range(T):
                bad += sync[BAD + 8 * b]
                l2 += parts[b, PART_SQUARES]
            if bad != 0:
                if t == 0:
                    costs[e] = total
                return e, step, STOP_PARAMETERS
        if t == 0:
            costs[e] = total
    return n_epochs, step, STOP_NONE


class _Threads:
    """Python threads kept between calls, each parked on its own queue until handed a job.

    A call hands each a job through its queue (a call of one small step on 2 workers: 0.54 ms, against
    0.32 ms on one, most of both the argument typing in ``compiled``) instead of starting threads (86 us
    each here), and a thread that has run BLAS keeps its BLAS buffers; a parked thread uses no CPU.
    Callers in several Python threads at once borrow disjoint threads; a forked child starts with none
    (the parent's are not in it).
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.parked = []

    def borrow(self, n):
        with self.lock:
            inboxes = [self.parked.pop() for _ in range(min(n, len(self.parked)))]
        while len(inboxes) < n:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="fastdnn-pool", daemon=True).start()
            inboxes.append(inbox)
        return inboxes

    def _serve(self, inbox):
        while True:
            job, done = inbox.get()
            job()
            with self.lock:
                self.parked.append(inbox)
            done.set()


_threads = _Threads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=lambda: _threads.__init__())


def train_pool(X, Y, theta, dims, hidden, output, first_layer, opt, hyper, lambd, state, step, perms, batch_size,
               n_epochs, costs, work, weights, threads, what="the pool training kernels", dropout=None):
    """``network.train`` (the same arguments, results and effects) with every pass of a step split across
    ``threads`` workers: this thread and threads - 1 pool threads (kept between calls), each running
    ``train_worker``. ``dropout`` (network.train's trailing argument, a keyword here so that ``threads``
    keeps its place after ``weights``): each worker forms and uses its own rows' masks, which depend on the
    rows alone, so every thread count drops the same units.

    BLAS must be single-threaded for the call (threadpoolctl's limits of 1 around it): the workers are the
    one pool. ``what`` names the kernels in the first-compile notice (``fastdnn.kernels.compiled``).
    The option codes are plain ints here. For a given ``threads`` a run repeats bit for bit; threads=1 is
    ``network.train`` bit for bit, in this thread alone. An exception in any worker stops them all (the
    others return at their next barrier) and is raised here.
    """
    from . import compiled

    if int(threads) < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    T = int(threads)
    shared = shared_buffers(T, dims, theta.dtype)
    call = (X, Y, theta, dims, hidden, output, first_layer, opt, hyper, lambd, state, step, perms, batch_size,
            n_epochs, costs, work, weights, shared)
    worker = compiled(train_worker, (*call, 0, dropout), what)
    if T == 1:
        return worker(*call, 0, dropout)
    errors = []

    def run(t):
        try:
            return worker(*call, t, dropout)
        except BaseException as error:
            errors.append(error)
            shared.sync[ABORT] = 1
            return None

    finished = []
    for t, inbox in enumerate(_threads.borrow(T - 1), start=1):
        finished.append(threading.Event())
        inbox.put((lambda t=t: run(t), finished[-1]))
    result = run(0)
    for event in finished:
        event.wait()
    if errors:
        raise errors[0]
    return result
