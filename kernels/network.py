"""Whole-network passes and the training loop, compiled as one call.

A network is described by plain arrays so one compiled function serves every
architecture and option set (compiled once per dtype, cached on disk):

    dims     (L+1,) int64  layer sizes n_0 .. n_L
    acts     (L,)   int64  activation code of layers 1..L-1 (``layers.ACT_*``);
                           acts[L-1] is the output code (``layers.OUT_*``: output
                           activation and cost together)
    theta    (P,)          every parameter, flat: W1 (n1, n0) row-major, b1 (n1,),
                           W2, b2, ... ; ``grad`` has the same layout
    X        (m, n_0)      examples as rows (sample-major), C-contiguous
    Y        (m, n_L)      targets as rows
    Z, A     flat workspaces of at least m * sum(n_1..n_L): layer l's (m, n_l)
                           block follows layer l-1's. Z and A may be one array
                           (training keeps only A; the per-stage API keeps both).
    first_layer            layers 1..first_layer are frozen: no gradient, no
                           update, and backpropagation stops above them.

Products go through BLAS (``blas.gemm``) with transpose flags; the gradient
with respect to the input, dA0 = dZ1 W1, is never computed.
"""

import numpy as np
from numba import njit

from .blas import as_float64, gemm, gram_float64
from .layers import (
    ACT_IDENTITY,
    act_backward_db,
    bias_act_forward,
    gather_rows,
    l2_penalty,
    loss_backward_db,
    optimizer_update_flat,
    output_forward,
)


@njit(cache=True)
def param_offsets(dims):
    """Start of W_l and b_l in theta for l = 1..L (index l-1), and the total size P."""
    L = dims.shape[0] - 1
    w_off = np.empty(L, np.int64)
    b_off = np.empty(L, np.int64)
    o = 0
    for l in range(L):
        w_off[l] = o
        o += dims[l + 1] * dims[l]
        b_off[l] = o
        o += dims[l + 1]
    return w_off, b_off, o


@njit(cache=True, inline="always")
def _W(theta, w_off, dims, l):
    """View of W_{l+1}: (dims[l+1], dims[l])."""
    n, k = dims[l + 1], dims[l]
    return theta[w_off[l] : w_off[l] + n * k].reshape((n, k))


@njit(cache=True, inline="always")
def _b(theta, b_off, dims, l):
    return theta[b_off[l] : b_off[l] + dims[l + 1]]


@njit(cache=True, inline="always")
def _block(work, m, dims, l):
    """View of layer l+1's (m, dims[l+1]) block in a flat activation workspace."""
    o = 0
    for i in range(1, l + 1):
        o += m * dims[i]
    n = dims[l + 1]
    return work[o : o + m * n].reshape((m, n))


@njit(cache=True)
def forward(X, theta, dims, acts, Z, A, apply_output):
    """Z_l = A_{l-1} W_l^T + b_l, A_l = g_l(Z_l) for every layer (A_0 = X).

    The output layer's A_L is its activation when ``apply_output``, else the
    logits themselves (training needs only logits: the loss kernel fuses the
    output activation). Overwrites Z and A.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    w_off, b_off, _ = param_offsets(dims)
    A_prev = X
    for l in range(L):
        Zl = _block(Z, m, dims, l)
        Al = _block(A, m, dims, l)
        gemm(False, True, 1.0, A_prev, _W(theta, w_off, dims, l), 0.0, Zl)
        bl = _b(theta, b_off, dims, l)
        if l < L - 1:
            bias_act_forward(Zl, bl, Al, acts[l])
        elif apply_output:
            output_forward(Zl, bl, Al, acts[l])
        else:
            bias_act_forward(Zl, bl, Al, ACT_IDENTITY)
        A_prev = Al


@njit(cache=True, inline="always")
def _rows(M, start, count):
    """Rows start..start+count of a C-contiguous (r, n) array, as a C-contiguous view."""
    n = M.shape[1]
    return M.reshape(M.shape[0] * n)[start * n : (start + count) * n].reshape((count, n))


@njit(cache=True)
def backward(X, Y, theta, dims, acts, ZL, A, dA, dZ, grad, first_layer):
    """The cost, and dW_l, db_l into grad for layers first_layer+1..L, from the logits ZL.

    Gradients carry the course's 1/m (m = X's row count). A holds the forward
    activations of layers 1..L-1 (A_L is not read). dA and dZ are flat
    workspaces laid out like A and may be one array: dA's blocks receive the
    back-propagated gradients W_l^T dZ_l, dZ's the gradients at the
    pre-activations (layer L's included). Frozen layers' grad is not written.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    w_off, b_off, _ = param_offsets(dims)
    scale = 1.0 / m
    keep_dA = dA.ctypes.data != dZ.ctypes.data
    dZl = _block(dZ, m, dims, L - 1)
    cost = loss_backward_db(ZL, Y, acts[L - 1], scale, dZl, _b(grad, b_off, dims, L - 1))
    for l in range(L - 1, first_layer - 1, -1):
        A_prev = X if l == 0 else _block(A, m, dims, l - 1)
        # dW_l = (1/m) dZ_l^T A_{l-1}: (n_l, m) @ (m, n_{l-1}), no transposed copy.
        gemm(True, False, scale, dZl, A_prev, 0.0, _W(grad, w_off, dims, l))
        if l == first_layer:
            break
        dZ_prev = _block(dZ, m, dims, l - 1)
        gemm(False, False, 1.0, dZl, _W(theta, w_off, dims, l), 0.0, dZ_prev)
        if keep_dA:
            _block(dA, m, dims, l - 1)[:, :] = dZ_prev
        act_backward_db(dZ_prev, A_prev, acts[l - 1], scale, _b(grad, b_off, dims, l - 1))
        dZl = dZ_prev
    return cost


# Why a training loop stopped early (its third result).
STOP_NONE = 0  # every epoch ran
STOP_COST = 1  # a batch's cost was not finite: stopped before that batch's update
STOP_PARAMETERS = 2  # an update made a parameter or optimizer-state value non-finite


@njit(cache=True)
def train(X, Y, theta, dims, acts, first_layer, opt, hyper, state, step, perms, batch_size, n_epochs, costs, Xb, Yb, A, dZ, grad):
    """n_epochs of minibatch training in one compiled call.

    hyper (5,) float64: learning rate, lambd (L2), beta1 (momentum's beta),
    beta2, epsilon. state (2P,): optimizer state (momentum's v, Adam's m and v).
    step: optimizer steps taken before this call (Adam's t counts from it + 1).
    perms (n_epochs, m) int64: each epoch's example order; shape (0, 0) means no
    shuffling, batches are then consecutive rows of X and nothing is gathered.
    Xb (batch_size, n_0), Yb (batch_size, n_L): gather buffers for shuffled batches.
    costs[e] receives epoch e's cost: the mean over its batches of the cost
    before each batch's update (weighted by batch size), L2 term included.

    Returns (epochs completed, steps taken so far, STOP_* reason). Fewer epochs
    than asked means epoch ``completed`` diverged: a batch's cost was not
    finite (costs[completed] holds it, and that batch was not applied) or an
    update left a non-finite value in theta or state. theta and state are then
    those of the middle of the diverged epoch; the caller restores them.
    Overwrites theta, state, costs and every workspace.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    w_off, _, _ = param_offsets(dims)
    dt = theta.dtype.type
    lr, lambd = dt(hyper[0]), hyper[1]
    beta1, beta2, eps = dt(hyper[2]), dt(hyper[3]), dt(hyper[4])
    shuffle = perms.shape[0] > 0
    for e in range(n_epochs):
        total = 0.0
        for s in range(0, m, batch_size):
            mb = min(batch_size, m - s)
            if shuffle:
                Xe = _rows(Xb, 0, mb)
                Ye = _rows(Yb, 0, mb)
                gather_rows(X, perms[e, s : s + mb], Xe)
                gather_rows(Y, perms[e, s : s + mb], Ye)
            else:
                Xe = _rows(X, s, mb)
                Ye = _rows(Y, s, mb)
            forward(Xe, theta, dims, acts, A, A, False)
            ZL = _block(A, mb, dims, L - 1)
            cost = backward(Xe, Ye, theta, dims, acts, ZL, A, dZ, dZ, grad, first_layer)
            if lambd > 0:
                # Frozen layers' weights count in the penalty (a constant) as in the reference's cost.
                cost += lambd / (2 * mb) * l2_penalty(theta, w_off, dims, 0)
            if not np.isfinite(cost):
                costs[e] = cost
                return e, step, STOP_COST
            step += 1
            finite = optimizer_update_flat(
                theta, grad, state, w_off, dims, first_layer, opt, lr, dt(lambd / mb), beta1, beta2, eps, step
            )
            total += cost * mb
            if not finite:
                costs[e] = total / (s + mb)
                return e, step, STOP_PARAMETERS
        costs[e] = total / m
    return n_epochs, step, STOP_NONE


@njit(cache=True)
def train_gram(X, Y, theta, dims, acts, opt, hyper, n_epochs, costs, A, dZ, grad):
    """Full-batch gd/momentum with the first layer carried in the m-dimensional example space.

    For wide data (n_0 much larger than m) the two first-layer GEMMs read all
    of X every step. But every dW1 = (1/m) dZ1^T X is a combination of X's rows,
    so (for gd and momentum, L2 included) W1 stays of the form
        W1 = s W1_init + C X,    C (n_1, m), s a scalar,
    and  Z1 = X W1^T = s Z1_init + G C^T  with the Gram matrix G = X X^T (m, m),
    computed once. A step then costs O(m^2 n_1) for layer 1 instead of
    O(m n_0 n_1); W1 is formed explicitly (into theta) only at the end.
    Momentum's velocity for W1 has the same form, v = a W1_init + V X.
    The other layers and b1 train exactly as in ``train``.

    Layer 1's carried state (G, Z1_init, C, V) is float64 whatever theta's
    dtype, and Z1 and the final W1 are rounded to theta's dtype once. In float32
    that makes layer 1 at least as accurate as ``train``'s float32 GEMMs (whose
    error grows with n_0), where float32 state would not be: C G sums m terms
    of G's large entries (G_ii ~ n_0) that cancel, and float32 runs through it
    drifted from the float64 trajectory ~20x more than ``train`` in float32 did.
    It costs O(m^2 n_1) float64 work per step, small beside the route's savings.

    Arguments as ``train`` (full batch, no shuffling, nothing frozen);
    state for momentum is allocated here. Returns (epochs completed, STOP_*
    reason) as ``train`` does; on a stop theta holds the last parameters of
    layers 2..L reached and layer 1 is not formed (the caller restores theta).
    """
    m, n0 = X.shape
    n1 = dims[1]
    L = dims.shape[0] - 1
    w_off, b_off, P = param_offsets(dims)
    dt = theta.dtype.type
    lr, lambd, beta = hyper[0], hyper[1], hyper[2]
    one = dt(1)
    X64 = as_float64(X)
    G = np.empty((m, m), np.float64)
    gram_float64(X64, G)
    W1 = _W(theta, w_off, dims, 0)
    W1_init = W1.astype(np.float64)
    Z0 = np.empty((m, n1), np.float64)
    gemm(False, True, 1.0, X64, W1_init, 0.0, Z0)
    w1_sq = 0.0
    for i in range(n1 * n0):
        w1_sq += float(theta[i]) * float(theta[i])
    C = np.zeros((n1, m), np.float64)
    V = np.zeros((n1, m), np.float64)
    CG = np.empty((n1, m), np.float64)
    Z1_64 = np.empty((m, n1), np.float64)
    s = 1.0
    a = 0.0
    state = np.zeros(2 * P, theta.dtype)
    b1 = _b(theta, b_off, dims, 0)
    db1 = _b(grad, b_off, dims, 0)
    vb1 = state[b_off[0] : b_off[0] + n1]
    scale = 1.0 / m
    for e in range(n_epochs):
        Z1_64[:, :] = Z0
        gemm(False, True, 1.0, G, C, s, Z1_64)
        Z1 = _block(A, m, dims, 0)
        for j in range(m):
            for i in range(n1):
                Z1[j, i] = dt(Z1_64[j, i])
        # Layers 2..L as usual, from A1.
        bias_act_forward(Z1, b1, Z1, acts[0] if L > 1 else ACT_IDENTITY)
        A_prev = Z1
        for l in range(1, L):
            Zl = _block(A, m, dims, l)
            gemm(False, True, 1.0, A_prev, _W(theta, w_off, dims, l), 0.0, Zl)
            bias_act_forward(Zl, _b(theta, b_off, dims, l), Zl, acts[l] if l < L - 1 else ACT_IDENTITY)
            A_prev = Zl
        ZL = _block(A, m, dims, L - 1)
        dZl = _block(dZ, m, dims, L - 1)
        cost = loss_backward_db(ZL, Y, acts[L - 1], scale, dZl, _b(grad, b_off, dims, L - 1))
        for l in range(L - 1, 0, -1):
            A_prev = _block(A, m, dims, l - 1)
            gemm(True, False, scale, dZl, A_prev, 0.0, _W(grad, w_off, dims, l))
            dZ_prev = _block(dZ, m, dims, l - 1)
            gemm(False, False, 1.0, dZl, _W(theta, w_off, dims, l), 0.0, dZ_prev)
            act_backward_db(dZ_prev, A_prev, acts[l - 1], scale, _b(grad, b_off, dims, l - 1))
            dZl = dZ_prev
        if lambd > 0:
            # ||W1||^2 = s^2 ||W1_init||^2 + 2 s <Z1_init^T, C> + <C G, C>.
            gemm(False, False, 1.0, C, G, 0.0, CG)
            cross = 0.0
            quad = 0.0
            for i in range(n1):
                for j in range(m):
                    cross += Z0[j, i] * C[i, j]
                    quad += CG[i, j] * C[i, j]
            w_sq = s * s * w1_sq + 2 * s * cross + quad + l2_penalty(theta, w_off, dims, 1)
            cost += lambd / (2 * m) * w_sq
        costs[e] = cost
        if not np.isfinite(cost):
            return e, STOP_COST
        l2s = lambd / m
        # Layers 2..L: the flat update pass; b1 by the same rule.
        finite = optimizer_update_flat(theta, grad, state, w_off, dims, 1, opt, dt(lr), dt(l2s), dt(beta), one, one, 1)
        # W1 = s W1_init + C X: update s and C (dZ1 is layer 1's block of dZ, (m, n1)).
        dZ1 = dZl
        # Count non-finite new values in an integer: a float sum would chain every
        # element's add on the previous one (measured: a third of a cat-data step).
        bad = 0
        if opt == 0:
            f = 1.0 - lr * l2s
            s *= f
            for i in range(n1):
                for j in range(m):
                    c = f * C[i, j] - lr * scale * dZ1[j, i]
                    C[i, j] = c
                    bad += (c - c) != 0.0
            for i in range(n1):
                b1[i] -= dt(lr) * db1[i]
                bad += (b1[i] - b1[i]) != 0.0
        else:
            a = beta * a + (1.0 - beta) * l2s * s
            for i in range(n1):
                for j in range(m):
                    v = beta * V[i, j] + (1.0 - beta) * (scale * dZ1[j, i] + l2s * C[i, j])
                    V[i, j] = v
                    C[i, j] -= lr * v
                    bad += (C[i, j] - C[i, j]) != 0.0
            s -= lr * a
            for i in range(n1):
                vb1[i] = dt(beta) * vb1[i] + dt(1.0 - beta) * db1[i]
                b1[i] -= dt(lr) * vb1[i]
                bad += (b1[i] - b1[i] + vb1[i] - vb1[i]) != 0.0
        if not finite or bad != 0 or not np.isfinite(s):
            return e, STOP_PARAMETERS
    # Form W1 explicitly: W1 = s W1_init + C X, in float64, rounded once.
    W1_64 = W1_init * s
    gemm(False, False, 1.0, C, X64, 1.0, W1_64)
    bad = 0
    for i in range(n1):
        for j in range(n0):
            w = dt(W1_64[i, j])
            W1[i, j] = w
            bad += (w - w) != 0.0
    if bad != 0:
        # Finite in float64, out of theta's range once rounded (float32 overflow).
        return n_epochs - 1, STOP_PARAMETERS
    return n_epochs, STOP_NONE
