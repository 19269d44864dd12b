"""Whole-network passes and the training loop, compiled as one call.

A network is described by plain arrays so one compiled function serves every
architecture (compiled once per dtype, cached on disk):

    dims  (L+1,) int64   layer sizes n_0 .. n_L
    acts  (L,)   int64   activation code of layers 1..L-1 (``layers.ACT_*``);
                         acts[L-1] is the output code (``layers.OUT_*``)
    theta (P,)           every parameter, flat: W1 (n1, n0) row-major, b1 (n1,),
                         W2, b2, ... ; ``grad`` has the same layout
    X     (m, n_0)       examples as rows (sample-major), C-contiguous
    Y     (m, n_L)       targets as rows
    Z, A  (m * sum(n_1..n_L),) flat workspaces: layer l's (m, n_l) block
                         follows layer l-1's. Z and A may be the same array
                         (training keeps only A; the per-stage API keeps both).

Products go through BLAS (``blas.gemm``) with transpose flags; the gradient
with respect to the input, dA0 = dZ1 W1, is never computed.
"""

import numpy as np
from numba import njit

from .blas import gemm
from .layers import (
    ACT_IDENTITY,
    act_backward_db,
    bias_act_forward,
    output_forward,
    sgd_update_flat,
    sigmoid_xent_backward_db,
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


@njit(cache=True)
def backward(X, Y, theta, dims, acts, ZL, A, dA, dZ, grad):
    """Every dW_l, db_l into grad (the course's scaling: 1/m), from the logits ZL.

    A holds the forward activations of layers 1..L-1 (A_L is not read). dA and
    dZ are flat workspaces laid out like A and may be the same array; dA's
    blocks receive W_l^T-propagated gradients for layers 1..L-1 and dZ's the
    gradients at the pre-activations, layer L's included. Returns the cost.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    w_off, b_off, _ = param_offsets(dims)
    scale = 1.0 / m
    dZl = _block(dZ, m, dims, L - 1)
    cost = sigmoid_xent_backward_db(ZL, Y, scale, dZl, _b(grad, b_off, dims, L - 1))
    for l in range(L - 1, -1, -1):
        A_prev = X if l == 0 else _block(A, m, dims, l - 1)
        # dW_l = (1/m) dZ_l^T A_{l-1}: (n_l, m) @ (m, n_{l-1}), no transposed copy.
        gemm(True, False, scale, dZl, A_prev, 0.0, _W(grad, w_off, dims, l))
        if l == 0:
            break
        dA_prev = _block(dA, m, dims, l - 1)
        gemm(False, False, 1.0, dZl, _W(theta, w_off, dims, l), 0.0, dA_prev)
        dZ_prev = _block(dZ, m, dims, l - 1)
        act_backward_db(dA_prev, A_prev, acts[l - 1], scale, dZ_prev, _b(grad, b_off, dims, l - 1))
        dZl = dZ_prev
    return cost


@njit(cache=True)
def train_gd(X, Y, theta, dims, acts, learning_rate, num_iterations, costs, A, dZ, grad):
    """Full-batch gradient descent, the whole loop in one compiled call.

    costs[i] receives the cost before step i. Stops early, before updating,
    if a cost is not finite, and returns the number of completed steps (so
    theta holds the last parameters reached). Overwrites theta, costs, A, dZ, grad.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    lr = theta.dtype.type(learning_rate)
    for it in range(num_iterations):
        forward(X, theta, dims, acts, A, A, False)
        ZL = _block(A, m, dims, L - 1)
        cost = backward(X, Y, theta, dims, acts, ZL, A, dZ, dZ, grad)
        costs[it] = cost
        if not np.isfinite(cost):
            return it
        sgd_update_flat(theta, grad, lr)
    return num_iterations
