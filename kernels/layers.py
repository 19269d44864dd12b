"""Fused element-wise kernels: one memory pass each, after or before a GEMM.

Layout: every activation-shaped array here is *sample-major*, ``(mb, n)``
C-contiguous: row i is example i (the transpose of the course's ``(n, mb)``).
A minibatch is then a contiguous block of rows, and a bias is a contiguous
vector added along each row. Kernels assume valid, C-contiguous input of one
float dtype and do no checks; ``fastdnn`` validates at its boundary.

Activation codes (``ACT_*``) name the hidden activation of a layer; output
codes (``OUT_*``) name the output activation together with its cost, because
they are fused: the gradient is taken from the logits (``dZ = A - Y``), never
through ``dA = -(Y/A - (1-Y)/(1-A))``, which overflows when A saturates.
"""

import numpy as np
from numba import njit

ACT_RELU = 0
ACT_SIGMOID = 1
ACT_IDENTITY = 2

OUT_SIGMOID_XENT = 0

ACTIVATION_CODES = {"relu": ACT_RELU, "sigmoid": ACT_SIGMOID}
OUTPUT_CODES = {"sigmoid": OUT_SIGMOID_XENT}


@njit(cache=True, inline="always")
def _sigmoid(z):
    # Two branches so exp never overflows: exp(-z) for z >= 0, exp(z) for z < 0.
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@njit(cache=True)
def bias_act_forward(Z, b, A, act):
    """Z (mb, n) += b (n,), then A (mb, n) = g(Z); overwrites Z and A, which may be one array."""
    mb, n = Z.shape
    one = Z.dtype.type(1)
    if act == ACT_RELU:
        for i in range(mb):
            for j in range(n):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                A[i, j] = z if z > 0 else 0
    elif act == ACT_SIGMOID:
        for i in range(mb):
            for j in range(n):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                if z >= 0:
                    A[i, j] = one / (one + np.exp(-z))
                else:
                    e = np.exp(z)
                    A[i, j] = e / (one + e)
    else:
        for i in range(mb):
            for j in range(n):
                z = Z[i, j] + b[j]
                Z[i, j] = z
                A[i, j] = z


@njit(cache=True)
def output_forward(Z, b, A, out_code):
    """Z (mb, n_L) += b, then A = the output activation of Z (sigmoid for OUT_SIGMOID_XENT)."""
    bias_act_forward(Z, b, A, ACT_SIGMOID)


@njit(cache=True)
def act_backward_db(dA, A, act, scale, dZ, db):
    """dZ = dA * g'(Z) with g' taken from A = g(Z); db (n,) = scale * sum over rows of dZ.

    dA, A, dZ: (mb, n); dZ may be dA (overwritten in place). Overwrites dZ and db.
    ReLU: g' = [A > 0] (A > 0 exactly where Z > 0); sigmoid: g' = A (1 - A).
    """
    mb, n = dA.shape
    one = dA.dtype.type(1)
    for j in range(n):
        db[j] = 0
    if act == ACT_RELU:
        for i in range(mb):
            for j in range(n):
                d = dA[i, j] if A[i, j] > 0 else 0
                dZ[i, j] = d
                db[j] += d
    elif act == ACT_SIGMOID:
        for i in range(mb):
            for j in range(n):
                a = A[i, j]
                d = dA[i, j] * a * (one - a)
                dZ[i, j] = d
                db[j] += d
    else:
        for i in range(mb):
            for j in range(n):
                d = dA[i, j]
                dZ[i, j] = d
                db[j] += d
    for j in range(n):
        db[j] *= scale


@njit(cache=True)
def sigmoid_xent_backward_db(ZL, Y, scale, dZ, db):
    """Cost, dZ and db of a sigmoid output with cross-entropy, all from the logits.

    ZL, Y, dZ: (mb, 1); db: (1,). dZ = sigmoid(ZL) - Y; db = scale * sum(dZ).
    Returns the mean cost  max(z, 0) - z y + log1p(exp(-|z|)), which is
    -[y log a + (1 - y) log(1 - a)] rearranged so that log(0) never occurs.
    The cost is accumulated in float64 whatever the array dtype.
    """
    mb, n = ZL.shape
    cost = 0.0
    dbs = 0.0
    for i in range(mb):
        for j in range(n):
            z = ZL[i, j]
            y = Y[i, j]
            d = _sigmoid(z) - y
            dZ[i, j] = d
            dbs += d
            cost += max(z, 0.0) - z * y + np.log1p(np.exp(-abs(z)))
    for j in range(n):
        db[j] = scale * dbs
    return cost / mb


@njit(cache=True)
def sigmoid_xent_cost(ZL, Y):
    """Mean cross-entropy of a sigmoid output from its logits ZL (mb, 1), in float64."""
    mb, n = ZL.shape
    cost = 0.0
    for i in range(mb):
        for j in range(n):
            z = ZL[i, j]
            cost += max(z, 0.0) - z * Y[i, j] + np.log1p(np.exp(-abs(z)))
    return cost / mb


@njit(cache=True)
def sgd_update_flat(theta, grad, lr):
    """theta -= lr * grad over the whole flat parameter buffer (P,); overwrites theta."""
    for i in range(theta.shape[0]):
        theta[i] -= lr * grad[i]
