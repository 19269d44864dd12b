"""Fused element-wise kernels: one memory pass each, after or before a GEMM.

Forward and backward kernels come in pairs (``bias_act_forward`` /
``bias_act_backward``, ``output_forward`` / ``output_backward``), the backward
one fusing the forward's derivative with the bias gradient.

Layout: every activation-shaped array here is *sample-major*, ``(mb, n)``
C-contiguous: row i is example i (the transpose of the course's ``(n, mb)``).
A minibatch is then a contiguous block of rows, and a bias is a contiguous
vector added along each row. Kernels assume valid, C-contiguous input of one
float dtype and do no checks; ``fastdnn`` validates at its boundary.

Every kernel here compiles with ``error_model="numpy"``: a float division then
follows IEEE (no ZeroDivisionError check), which lets LLVM vectorize loops that
divide. No divisor here can be zero (1 + e^z, a softmax's sum, Adam's bias
corrections and sqrt(v) + epsilon), so results are bit for bit what Python's
error model gives; the Adam pass ran 7.7x faster (270k float32 values,
986 -> 127 us).

Option names map to integer codes in the tables below; a kernel that takes one
compiles a version per code holding only that code's branch (see the note
above ``_constant``). Output codes name the output activation together with its cost,
because the two are fused: the gradient is taken from the logits (for
cross-entropy ``dZ = A - Y``), never through ``dA = -(Y/A - (1-Y)/(1-A))``,
which overflows when A saturates.
"""

import math

import numpy as np
from numba import njit, types
from numba.core.errors import TypingError
from numba.extending import overload

from .masks import keep, row_key

ACT_RELU = 0
ACT_SIGMOID = 1
ACT_IDENTITY = 2
ACT_LEAKY_RELU = 3
ACT_TANH = 4
LEAKY_SLOPE = 0.01

OUT_SIGMOID_XENT = 0
OUT_SOFTMAX_XENT = 1
OUT_SIGMOID_MSE = 2
OUT_SOFTMAX_MSE = 3
OUT_IDENTITY_MSE = 4

OPT_GD = 0
OPT_MOMENTUM = 1
OPT_ADAM = 2

ACTIVATION_CODES = {"relu": ACT_RELU, "leaky_relu": ACT_LEAKY_RELU, "tanh": ACT_TANH, "sigmoid": ACT_SIGMOID}
OUTPUT_CODES = {
    ("sigmoid", "cross_entropy"): OUT_SIGMOID_XENT,
    ("softmax", "cross_entropy"): OUT_SOFTMAX_XENT,
    ("sigmoid", "mse"): OUT_SIGMOID_MSE,
    ("softmax", "mse"): OUT_SOFTMAX_MSE,
    ("identity", "mse"): OUT_IDENTITY_MSE,  # regression: an identity output has squared error only
}
OPTIMIZER_CODES = {"gd": OPT_GD, "momentum": OPT_MOMENTUM, "adam": OPT_ADAM}


# The kernels with an option-code argument are overloads: Numba calls the
# ``_*_for`` function with the argument types, and an option code typed as a
# literal (a module constant, or an argument ``fastdnn.kernels.compiled`` made
# one) becomes the constant ``code`` of the implementation returned. Numba's
# dead-branch pruning then drops every branch on ``code`` but one before typing,
# so a version compiles only the activation, output or optimizer it serves
# (``tools/cold_start.py --breakdown`` lists what a first run compiles). A
# literal-typed argument of an ordinary compiled function is not pruned on:
# Numba prunes only on constants in the code and on None-typed arguments.
# Each version is cached on disk.
_JIT_OPTIONS = {"cache": True, "no_cfunc_wrapper": True, "error_model": "numpy"}
_COMPILED_ONLY = "fastdnn.kernels.layers kernels with an option code are callable from compiled code only"


def _constant(arg, name):
    """The value of option-code argument ``name``, which must be known at compile time."""
    if not isinstance(arg, types.IntegerLiteral):
        raise TypingError(
            f"{name} must be a compile-time constant (a literal or a module constant), got {arg}; from Python, "
            "call the kernels through fastdnn.kernels.compiled, which makes the option codes constants"
        )
    return arg.literal_value


@njit(cache=True, no_cfunc_wrapper=True, inline="always", error_model="numpy")
def _sigmoid(z):
    # Two branches so exp never overflows: exp(-z) for z >= 0, exp(z) for z < 0.
    if z >= 0:
        return 1 / (1 + math.exp(-z))
    e = math.exp(z)
    return e / (1 + e)


def bias_act_forward(Z, b, A, act):
    """Bias add and activation in one pass: Z (mb, n) += b (n,), then A (mb, n) = g(Z).

    Overwrites Z and A, which may be one array. Backward: ``bias_act_backward``.

    Compiled code only: ``act`` must be a compile-time constant, and each
    value compiles its own version holding only its branch (see ``_constant``).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(bias_act_forward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def bias_act_forward_for(Z, b, A, act):
    code = _constant(act, "act")

    def impl(Z, b, A, act):
        mb, n = Z.shape
        zero = Z.dtype.type(0)
        slope = Z.dtype.type(LEAKY_SLOPE)
        for i in range(mb):
            if code == ACT_RELU:
                for j in range(n):
                    z = Z[i, j] + b[j]
                    Z[i, j] = z
                    A[i, j] = z if z > zero else zero
            elif code == ACT_LEAKY_RELU:
                for j in range(n):
                    z = Z[i, j] + b[j]
                    Z[i, j] = z
                    A[i, j] = z if z > zero else slope * z
            elif code == ACT_TANH:
                for j in range(n):
                    z = Z[i, j] + b[j]
                    Z[i, j] = z
                    A[i, j] = math.tanh(z)
            elif code == ACT_SIGMOID:
                for j in range(n):
                    z = Z[i, j] + b[j]
                    Z[i, j] = z
                    A[i, j] = _sigmoid(z)
            else:
                for j in range(n):
                    z = Z[i, j] + b[j]
                    Z[i, j] = z
                    A[i, j] = z

    return impl


def bias_act_backward(dZ, A, act, scale, db):
    """Backward of ``bias_act_forward``: the activation's derivative and the bias gradient in one pass.

    dZ *= g'(Z) in place (dZ holds dA on entry), g' taken from A = g(Z); db (n,) = scale * column sums.
    dZ, A: (mb, n), distinct arrays; db: (n,). Overwrites dZ and db.
    From A: ReLU [A > 0] (A > 0 exactly where Z > 0), leaky ReLU 1 or the slope
    likewise, tanh 1 - A^2, sigmoid A (1 - A).
    In place on purpose: reading dA from one array and writing dZ to another that
    is the same memory made LLVM's overlap check fail, and the scalar fallback
    (a branch per element on the ReLU mask) was 15x slower than this loop.

    Compiled code only: ``act`` must be a compile-time constant, and each
    value compiles its own version holding only its branch (see ``_constant``).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(bias_act_backward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def _bias_act_backward_for(dZ, A, act, scale, db):
    code = _constant(act, "act")

    def impl(dZ, A, act, scale, db):
        mb, n = dZ.shape
        one = dZ.dtype.type(1)
        zero = dZ.dtype.type(0)
        slope = dZ.dtype.type(LEAKY_SLOPE)
        # db accumulates in a private buffer, which LLVM knows aliases nothing.
        acc = np.empty(n, dZ.dtype)
        for j in range(n):
            acc[j] = zero
        for i in range(mb):
            if code == ACT_RELU:
                for j in range(n):
                    d = dZ[i, j] if A[i, j] > zero else zero
                    dZ[i, j] = d
                    acc[j] += d
            elif code == ACT_LEAKY_RELU:
                for j in range(n):
                    d = dZ[i, j] if A[i, j] > zero else slope * dZ[i, j]
                    dZ[i, j] = d
                    acc[j] += d
            elif code == ACT_TANH:
                for j in range(n):
                    a = A[i, j]
                    d = dZ[i, j] * (one - a * a)
                    dZ[i, j] = d
                    acc[j] += d
            elif code == ACT_SIGMOID:
                for j in range(n):
                    a = A[i, j]
                    d = dZ[i, j] * a * (one - a)
                    dZ[i, j] = d
                    acc[j] += d
            else:
                for j in range(n):
                    acc[j] += dZ[i, j]
        for j in range(n):
            db[j] = acc[j] * scale

    return impl


def bias_act_dropout_forward(Z, b, A, act, key, rows, limit, scale):
    """``bias_act_forward`` with inverted dropout, in the same pass: Z (mb, n) += b, then A[i, j] = g(Z[i, j])
    * scale where unit j of row i is kept, else 0.

    Row i is the example at ``rows[i]`` (int64, its row in the training data, not its place in the batch),
    ``key`` the layer's key for the step (``masks.layer_key``): unit j is kept iff ``masks.keep(row_key(key,
    rows[i]), j, limit)``, ``limit`` = ``masks.threshold(keep_prob)`` (uint64), ``scale`` = 1 / keep_prob in
    Z's dtype (the course's A * D / keep_prob as one multiplication). The mask is never stored: it is formed
    here while the row is in cache, and ``bias_act_dropout_backward`` forms it again (or reads it from A).
    Z and A may be one array. Compiled code only (``act`` a compile-time constant, as for bias_act_forward).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(bias_act_dropout_forward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def _bias_act_dropout_forward_for(Z, b, A, act, key, rows, limit, scale):
    code = _constant(act, "act")

    def impl(Z, b, A, act, key, rows, limit, scale):
        mb, n = Z.shape
        zero = Z.dtype.type(0)
        slope = Z.dtype.type(LEAKY_SLOPE)
        for i in range(mb):
            r = row_key(key, rows[i])
            for j in range(n):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                if code == ACT_RELU:
                    a = z if z > zero else zero
                elif code == ACT_LEAKY_RELU:
                    a = z if z > zero else slope * z
                elif code == ACT_TANH:
                    a = math.tanh(z)
                elif code == ACT_SIGMOID:
                    a = _sigmoid(z)
                else:
                    a = z
                # A select, not a product with the mask: a dropped unit is 0 whatever a * scale is.
                A[i, j] = a * scale if keep(r, j, limit) else zero

    return impl


def bias_act_dropout_backward(dZ, A, act, scale, db, key, rows, limit, keep_scale):
    """Backward of ``bias_act_dropout_forward``: dZ = dA * D * keep_scale * g'(Z) in place, db = scale *
    column sums, in one pass (dZ holds dA on entry, the gradient with respect to the dropped activations A).

    D is the forward's mask, never stored. Where A itself tells it, it is read from A: ReLU (A > 0 exactly
    where the unit was kept and Z > 0, keep_scale >= 1 keeping a kept positive z positive) and the sigmoid
    (a dropped unit's A = 0 gives a (1 - a) = 0), so their pass costs one multiplication more than
    ``bias_act_backward``'s. Leaky ReLU and tanh (whose derivative at A = 0 is not 0) form it again from
    the same hash (``key``, ``rows``, ``limit`` as the forward's). g' is taken from a = A / keep_scale, the
    kept unit's activation (leaky ReLU 1 or its slope by the sign of A, tanh 1 - a^2, sigmoid a (1 - a)).
    keep_scale = 1 / keep_prob. dZ, A: (mb, n), distinct; db: (n,). Compiled code only (``act`` a
    compile-time constant).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(bias_act_dropout_backward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def _bias_act_dropout_backward_for(dZ, A, act, scale, db, key, rows, limit, keep_scale):
    code = _constant(act, "act")

    def impl(dZ, A, act, scale, db, key, rows, limit, keep_scale):
        mb, n = dZ.shape
        one = dZ.dtype.type(1)
        zero = dZ.dtype.type(0)
        slope = dZ.dtype.type(LEAKY_SLOPE)
        acc = np.empty(n, dZ.dtype)
        for j in range(n):
            acc[j] = zero
        for i in range(mb):
            if code == ACT_RELU:
                for j in range(n):
                    d = dZ[i, j] * keep_scale if A[i, j] > zero else zero
                    dZ[i, j] = d
                    acc[j] += d
            elif code == ACT_SIGMOID:
                # A dropped unit's A is 0, and so is a (1 - a): the mask is in A (a kept unit whose sigmoid
                # underflowed to 0 has the derivative 0 either way).
                for j in range(n):
                    a = A[i, j] / keep_scale
                    d = dZ[i, j] * keep_scale * a * (one - a)
                    dZ[i, j] = d
                    acc[j] += d
            else:
                r = row_key(key, rows[i])
                for j in range(n):
                    g = dZ[i, j] * keep_scale
                    if code == ACT_LEAKY_RELU:
                        g = g if A[i, j] > zero else slope * g
                    elif code == ACT_TANH:
                        a = A[i, j] / keep_scale
                        g = g * (one - a * a)
                    d = g if keep(r, j, limit) else zero
                    dZ[i, j] = d
                    acc[j] += d
        for j in range(n):
            db[j] = acc[j] * scale

    return impl


def output_forward(Z, b, A, out_code):
    """Bias add and output activation in one pass: Z (mb, K) += b, then A = sigmoid per entry, softmax per row,
    or for the identity output (regression) A = Z itself.

    For predictions; training takes the logits instead (bias added, no
    activation) to ``output_backward``, which fuses the activation with the cost.

    Compiled code only: ``out_code`` must be a compile-time constant, and each
    value compiles its own version holding only its branch (see ``_constant``).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(output_forward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def _output_forward_for(Z, b, A, out_code):
    code = _constant(out_code, "out_code")

    def impl(Z, b, A, out_code):
        # Loops of its own rather than calls to bias_act_forward: each activation of that would
        # compile another version on a first prediction.
        mb, K = Z.shape
        if code == OUT_IDENTITY_MSE:
            for i in range(mb):
                for k in range(K):
                    z = Z[i, k] + b[k]
                    Z[i, k] = z
                    A[i, k] = z
            return
        if code == OUT_SIGMOID_XENT or code == OUT_SIGMOID_MSE:
            for i in range(mb):
                for k in range(K):
                    z = Z[i, k] + b[k]
                    Z[i, k] = z
                    A[i, k] = _sigmoid(z)
            return
        for i in range(mb):
            for k in range(K):
                Z[i, k] += b[k]
            mx = Z[i, 0]
            for k in range(1, K):
                mx = Z[i, k] if Z[i, k] > mx else mx  # max(mx, z), without compiling max
            s = 0.0
            for k in range(K):
                e = math.exp(Z[i, k] - mx)
                A[i, k] = e
                s += e
            for k in range(K):
                A[i, k] = A[i, k] / s

    return impl


def output_backward(ZL, Y, out_code, scale, dZ, db, w=None):
    """Backward of ``output_forward`` with its cost: output activation, cost, dZ_L and db_L in one pass from the logits.

    Mean cost over rows, dZ at the logits and db = scale * sum(dZ).
    ZL (logits, bias added), Y, dZ: (mb, K); db: (K,). Overwrites dZ and db; returns the cost (float64).
    w: None, or the rows' weights (mb,): each row's dZ is multiplied by its weight (so db sums the weighted
    rows) and the cost is the weighted mean sum_i w_i c_i / sum_i w_i (sums in float64, in row order);
    scale is then the caller's 1 / (the batch's total weight). A row of weight 0 counts for nothing (rows
    whose weights are all 0 cost 0).
      sigmoid + cross-entropy: cost max(z,0) - z y + log1p(exp(-|z|)) (the course's
        -[y log a + (1-y) log(1-a)] without log(0)); dZ = a - y
      softmax + cross-entropy: cost logsumexp(z) - sum_k y_k z_k; dZ = softmax(z) - y
      sigmoid + MSE: cost sum_k (a - y)^2 / 2; dZ = (a - y) a (1 - a)
      softmax + MSE: cost sum_k (a - y)^2 / 2; dZ = a * (g - sum_k g_k a_k), g = a - y
      identity + MSE (regression): a = z; cost sum_k (a - y)^2 / 2; dZ = a - y
    Every MSE cost is half the squared error summed over the K outputs and averaged over the rows, whose
    gradient (a - y per output) is the one scikit-learn's MLPRegressor steps by; for one output it is its
    loss_ too (for K > 1 scikit-learn reports the cost divided by K, though its gradients are this cost's).
    The cost is accumulated in float64 whatever the array dtype.

    Compiled code only: ``out_code`` must be a compile-time constant, and each
    value compiles its own version holding only its branch (see ``_constant``).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(output_backward, prefer_literal=True, jit_options=_JIT_OPTIONS)
def _output_backward_for(ZL, Y, out_code, scale, dZ, db, w=None):
    code = _constant(out_code, "out_code")
    # A compile-time constant: the unweighted version holds no weight code.
    weighted = w is not None and not isinstance(w, (types.NoneType, types.Omitted))

    def impl(ZL, Y, out_code, scale, dZ, db, w=None):
        mb, K = ZL.shape
        cost = 0.0
        total = 0.0
        for k in range(K):
            db[k] = 0
        for i in range(mb):
            if weighted:
                # Row i's terms go to a row subtotal, weighted as a whole; dZ's row is scaled as it is formed.
                wi = w[i]
                row_cost = cost
                cost = 0.0
            if code == OUT_IDENTITY_MSE:
                for k in range(K):
                    g = ZL[i, k] - Y[i, k]
                    d = g * wi if weighted else g
                    dZ[i, k] = d
                    db[k] += d
                    cost += 0.5 * g * g
            elif code == OUT_SIGMOID_XENT:
                for k in range(K):
                    z = ZL[i, k]
                    y = Y[i, k]
                    # One exponential for the sigmoid (as _sigmoid takes it) and the cost: exp(-|z|).
                    e = math.exp(-abs(z))
                    d = (1 / (1 + e) if z >= 0 else e / (1 + e)) - y
                    if weighted:
                        d = d * wi
                    dZ[i, k] = d
                    db[k] += d
                    cost += (0.0 if z < 0.0 else z) - z * y + math.log1p(e)  # max(z, 0) - z y + log1p(e^-|z|)
            elif code == OUT_SIGMOID_MSE:
                for k in range(K):
                    a = _sigmoid(ZL[i, k])
                    g = a - Y[i, k]
                    d = g * a * (1 - a)
                    if weighted:
                        d = d * wi
                    dZ[i, k] = d
                    db[k] += d
                    cost += 0.5 * g * g
            else:
                mx = ZL[i, 0]
                for k in range(1, K):
                    mx = ZL[i, k] if ZL[i, k] > mx else mx
                s = 0.0
                for k in range(K):
                    e = math.exp(ZL[i, k] - mx)
                    dZ[i, k] = e  # kept until the probability e / s is formed: one exponential per entry
                    s += e
                lse = mx + math.log(s)
                if code == OUT_SOFTMAX_XENT:
                    for k in range(K):
                        y = Y[i, k]
                        d = dZ[i, k] / s - y
                        if weighted:
                            d = d * wi
                        dZ[i, k] = d
                        db[k] += d
                        cost += y * (lse - ZL[i, k])
                else:
                    dot = 0.0
                    for k in range(K):
                        a = dZ[i, k] / s
                        g = a - Y[i, k]
                        dot += g * a
                        cost += 0.5 * g * g
                    for k in range(K):
                        a = dZ[i, k] / s
                        d = a * (a - Y[i, k] - dot)
                        if weighted:
                            d = d * wi
                        dZ[i, k] = d
                        db[k] += d
            if weighted:
                cost = row_cost + float(wi) * cost
                total += float(wi)
        for k in range(K):
            db[k] *= scale
        if weighted:
            return cost / total if total > 0.0 else 0.0  # rows of weight 0 alone cost nothing
        return cost / mb

    return impl


@njit(cache=True, no_cfunc_wrapper=True, error_model="numpy")
def l2_terms(theta, grad, dims, first, trainable, scale):
    """L2's two terms: returns sum of W_l^2 over layers first+1 .. L (float64; biases excluded),
    and adds scale * W_l to grad's dW_l for layers trainable+1 .. L (scale of theta's dtype).

    theta's layout: W1, b1, W2, ... Overwrites those blocks of grad. Training
    calls it only when L2 is on, so a run without L2 compiles none of it.
    """
    total = 0.0
    o = 0
    for l in range(dims.shape[0] - 1):
        n_w = dims[l + 1] * dims[l]
        W = theta[o : o + n_w]  # views, so the loops start at 0 (see optimizer_update_flat)
        if l >= first:
            for i in range(W.shape[0]):
                total += float(W[i]) * float(W[i])
        if l >= trainable:
            G = grad[o : o + n_w]
            for i in range(W.shape[0]):
                G[i] = G[i] + scale * W[i]
        o += n_w + dims[l + 1]
    return total


def update_range(th, g, mo, v, opt, lr, beta1, beta2, eps, t):
    """``optimizer_update_flat``'s step (the formulas there) on one contiguous range: th, g, and the range's
    state (mo: momentum's v or Adam's m, v: Adam's v; unused ones may be empty). ``optimizer_update_flat``
    runs it on the trainable tail, the step's pool (``pool.units_block``) on each worker's rows, so a range's
    values are the same bit for bit. Returns the count of non-finite values written (compiled code only;
    ``opt`` a compile-time constant)."""
    raise NotImplementedError(_COMPILED_ONLY)


@overload(update_range, prefer_literal=True, jit_options=_JIT_OPTIONS)
def update_range_for(th, g, mo, v, opt, lr, beta1, beta2, eps, t):
    code = _constant(opt, "opt")

    def impl(th, g, mo, v, opt, lr, beta1, beta2, eps, t):
        one = th.dtype.type(1)
        zero = th.dtype.type(0)
        bad = 0
        if code == OPT_GD:
            for i in range(th.shape[0]):
                ti = th[i] - lr * g[i]
                th[i] = ti
                bad += (ti - ti) != zero
        elif code == OPT_MOMENTUM:
            for i in range(th.shape[0]):
                vi = beta1 * mo[i] + (one - beta1) * g[i]
                mo[i] = vi
                ti = th[i] - lr * vi
                th[i] = ti
                bad += (ti - ti + vi - vi) != zero
        else:
            c1 = one - beta1**t
            c2 = one - beta2**t
            for i in range(th.shape[0]):
                gi = g[i]
                m1 = beta1 * mo[i] + (one - beta1) * gi
                v1 = beta2 * v[i] + (one - beta2) * gi * gi
                mo[i] = m1
                v[i] = v1
                ti = th[i] - lr * (m1 / c1) / (math.sqrt(v1 / c2) + eps)
                th[i] = ti
                bad += (ti - ti + m1 - m1 + v1 - v1) != zero
        return bad

    return impl


def optimizer_update_flat(theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, t):
    """One optimizer step over the flat buffers, from layer first_layer+1 on; earlier layers untouched.

    g = grad (L2's term, when on, is already in it: ``l2_terms``); then
      gd:       theta -= lr g
      momentum: v = beta1 v + (1 - beta1) g;  theta -= lr v                 (v = state[:P])
      adam:     m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
                theta -= lr (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
                                                           (m = state[:P], v = state[P:])
    theta, grad: (P,); state: (2P,). Overwrites theta and state. Scalars must be of theta's dtype.
    Returns True when every updated parameter and state value is finite. The cost
    can stay finite while they are not (Adam's g^2 overflowing float32, say), so
    training checks this too.

    The trainable parameters are one contiguous tail of theta (each bias follows
    its W), so one loop updates them all. Loops run over slice views from index 0: with a loop index that Numba
    cannot prove non-negative (range(lo, hi)) every access gets a wraparound
    branch and the loop does not vectorize (measured 7x slower). The optimizer
    branch sits outside the element loops for the same reason. Non-finite values
    are counted in an integer: x - x is 0 for a finite x and NaN otherwise, and an
    integer count keeps the reduction vectorizable (a float sum would not be
    without fastmath). One compiled function with few loops also keeps the first
    compile short.

    Compiled code only: ``opt`` must be a compile-time constant, and each
    value compiles its own version holding only its branch (see ``_constant``).
    """
    raise NotImplementedError(_COMPILED_ONLY)


@overload(optimizer_update_flat, prefer_literal=True, jit_options=_JIT_OPTIONS)
def optimizer_update_flat_for(theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, t):
    code = _constant(opt, "opt")

    def impl(theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, t):
        P = theta.shape[0]
        lo = P  # where the trainable tail starts: P (nothing to update) when every layer is frozen
        o = 0
        for l in range(dims.shape[0] - 1):
            if l == first_layer:
                lo = o
            o += dims[l + 1] * (dims[l] + 1)
        # state is (2P,) for momentum (its v first) and Adam (m, then v); gd's may be empty.
        # The captured constant, not the argument: this version holds its own optimizer's branch only.
        return update_range(theta[lo:P], grad[lo:P], state[lo:P], state[P + lo : 2 * P], code, lr, beta1, beta2,
                            eps, t) == 0

    return impl


@njit(cache=True, no_cfunc_wrapper=True, error_model="numpy")
def gather_rows(X, idx, out):
    """out[i] = X[idx[i]] for i < len(idx): a minibatch as one contiguous block. Overwrites out's first rows."""
    n = X.shape[1]
    for i in range(idx.shape[0]):
        r = idx[i]
        for j in range(n):
            out[i, j] = X[r, j]
