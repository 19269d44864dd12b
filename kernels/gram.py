"""The Gram route: full-batch gd/momentum with the first layer carried in the m-dimensional example space.

For wide data (n_0 much larger than m) the two first-layer GEMMs of
``network.train`` read all of X every step. But every dW1 = (1/m) dZ1^T X is a
combination of X's rows, so (for gd and momentum, L2 included) W1 stays of the form

    W1 = s W1_init + C X,    C (n_1, m), s a scalar,

and  Z1 = X W1^T = s Z1_init + G C^T  with the Gram matrix G = X X^T (m, m),
computed once. A step then costs O(m^2 n_1) for layer 1 instead of
O(m n_0 n_1). Momentum's velocity for W1 has the same form, v = a W1_init + V X.
The other layers and b1 train exactly as in ``network.train``. Dropout is not carried here: these
kernels take no masks (``network.Dropout``), and the engine's route chooser (``routes.gram_applies``) sends
a run with dropout to the direct route.

All of the route's state lives in arrays the caller owns, so a run can be cut
into calls of any length (and checkpointed between them) with bit-identical
results:

    G (m, m), Z0 (m, n_1), W1_init (n_1, n_0)   float64, fixed by ``gram_setup``
    C, V (n_1, m)                              float64, zero at the start
    carry (3,)                                 float64 [s, a, ||W1_init||^2], [1, 0, gram_setup's result] at the start
    state (2P,)                                the optimizer state, theta's dtype, laid out as in ``network.train``

A run: ``gram_setup``, then ``train_gram`` as often as wanted, then
``gram_weights`` to write W1 into theta (for predictions or the end of the
run) and, for momentum, ``gram_weights`` again to write W1's velocity into
state before continuing on ``network.train``. Entering the route again starts from
``gram_setup`` with C = V = 0, s = 1, a = 0: the route has no term for a W1
velocity that is not of the form above, so only gd, or momentum with W1's
velocity zero, can enter it mid-run without losing that velocity.

Layer 1's carried state is float64 whatever theta's dtype, and Z1 and W1 are
rounded to theta's dtype once each when formed. In float32 that makes layer 1
at least as accurate as ``train``'s float32 GEMMs (whose error grows with n_0),
where float32 state would not be: C G sums m terms of G's large entries
(G_ii ~ n_0) that cancel, and float32 runs through it drifted from the float64
trajectory ~20x more than ``train`` in float32 did. It costs O(m^2 n_1) float64
work per step, small beside the route's savings.
"""

import math

import numpy as np
from numba import njit

from .blas import as_float64, gemm, gram_float64
from .layers import (
    bias_act_backward,
    bias_act_forward,
    l2_terms,
    optimizer_update_flat,
    output_backward,
)
from .network import (
    LAYER1,
    LAYER2,
    STOP_COST,
    STOP_NONE,
    STOP_PARAMETERS,
    check_rates,
    epoch_rate,
    layer_parameters,
    layer_view,
    weight_total,
)


@njit(cache=True, no_cfunc_wrapper=True)
def gram_setup(X, theta, dims, G, Z0, W1_init):
    """The route's fixed state from X (m, n_0) and theta's W1; returns ||W1_init||^2 (float).

    G (m, m) = X X^T, W1_init (n_1, n_0) = W1, Z0 (m, n_1) = X W1_init^T, all
    float64 whatever X's and theta's dtype. Overwrites G, Z0 and W1_init.
    """
    X64 = as_float64(X)
    gram_float64(X64, G)
    W1, _ = layer_parameters(theta, dims, LAYER1)
    # Element loops, not W1_init[:, :] = W1: a broadcasting assignment compiles its
    # error message's string formatting, seconds of a first compile.
    for i in range(W1.shape[0]):
        for j in range(W1.shape[1]):
            W1_init[i, j] = W1[i, j]
    gemm(False, True, 1.0, X64, W1_init, 0.0, Z0)
    w1_sq = 0.0
    for i in range(W1.size):
        w = float(theta[i])  # W1 is theta's first block
        w1_sq += w * w
    return w1_sq


@njit(cache=True, no_cfunc_wrapper=True)
def train_gram(G, Z0, Y, theta, dims, hidden, output, opt, hyper, lambd, state, carry, C, V, n_epochs, costs, A, dZ, grad,
               w=None):
    """n_epochs of full-batch gd or momentum on the Gram route, resuming from (C, V, carry, state, theta).

    G, Z0: from ``gram_setup``. Y (m, n_L). opt: ``layers.OPT_GD`` or
    ``OPT_MOMENTUM`` (momentum's beta is hyper.beta1). hyper: a ``network.Hyper``
    (epoch e of the call steps at its learning_rate[e], as in ``network.train``);
    lambd the L2 strength or None, as in ``network.train``.
    state (2P,): optimizer state as in ``network.train``; the Gram route keeps
    the velocities of b1 and of layers 2..L there and never touches W1's block
    (W1's velocity is a W1_init + V X). carry (3,) float64: [s, a, ||W1_init||^2],
    s and a updated in place. C, V (n_1, m) float64, updated in place; V is
    None for gd (and only then: the version compiled for None holds no momentum
    code for W1).
    costs[e] receives epoch e's cost (L2 term included). A, dZ: flat
    workspaces of m * sum(n_1..n_L) as in ``network.train``; grad (P,).
    theta's W1 block is neither read nor written (``gram_weights`` forms it):
    layer 1 is s, C. theta's other blocks train as in ``network.train``.
    w: None, or the m examples' sample weights (``network.Weights``' rows): the cost and gradients are then
    weighted means, 1/sum(w) for 1/m (dZ_L's rows carry the weights, and every later product is linear in
    them, C's update included); costs[e] is then the weighted mean too.

    Returns (epochs completed, STOP_* reason) as ``network.train`` does; after
    a stop in epoch ``completed`` theta, state, C, V and carry hold the middle
    of that epoch and the caller restores them.
    """
    m = G.shape[0]
    n1 = dims[1]
    L = dims.shape[0] - 1
    dt = theta.dtype.type
    check_rates(hyper.learning_rate, n_epochs)
    beta = hyper.beta1
    W_total = weight_total(w, m)  # m, or the total weight
    l2s = 0.0 if lambd is None else lambd / W_total
    one = dt(1)
    CG = np.empty((n1, m), np.float64)
    Z1_64 = np.empty((m, n1), np.float64)
    s, a, w1_sq = carry[0], carry[1], carry[2]
    _, b1 = layer_parameters(theta, dims, LAYER1)
    _, db1 = layer_parameters(grad, dims, LAYER1)
    _, vb1 = layer_parameters(state, dims, LAYER1)
    scale = 1.0 / W_total
    for e in range(n_epochs):
        lr = epoch_rate(hyper.learning_rate, e)  # float64: s and C move in float64, b1 at dt(lr)
        for j in range(m):
            for i in range(n1):
                Z1_64[j, i] = Z0[j, i]
        gemm(False, True, 1.0, G, C, s, Z1_64)
        Z1 = layer_view(A, m, dims, LAYER1)
        for j in range(m):
            for i in range(n1):
                Z1[j, i] = dt(Z1_64[j, i])
        # Layer 1's bias and activation, then layers 2..L as usual, from A1.
        A_prev = Z1
        for l in range(L):
            Zl = layer_view(A, m, dims, l)
            Wl, bl = layer_parameters(theta, dims, l)
            if l > 0:
                gemm(False, True, 1.0, A_prev, Wl, 0.0, Zl)
            if l < L - 1:
                bias_act_forward(Zl, bl, Zl, hidden)
            else:
                for i in range(m):  # the logits: the bias only (as network.forward adds it)
                    for j in range(dims[L]):
                        Zl[i, j] += bl[j]
            A_prev = Zl
        ZL = layer_view(A, m, dims, L - 1)
        dZl = layer_view(dZ, m, dims, L - 1)
        _, dbL = layer_parameters(grad, dims, L - 1)
        cost = output_backward(ZL, Y, output, scale, dZl, dbL, w)
        for l in range(L - 1, 0, -1):
            A_prev = layer_view(A, m, dims, l - 1)
            dWl, _ = layer_parameters(grad, dims, l)
            gemm(True, False, scale, dZl, A_prev, 0.0, dWl)
            dZ_prev = layer_view(dZ, m, dims, l - 1)
            Wl, _ = layer_parameters(theta, dims, l)
            gemm(False, False, 1.0, dZl, Wl, 0.0, dZ_prev)
            _, db_prev = layer_parameters(grad, dims, l - 1)
            bias_act_backward(dZ_prev, A_prev, hidden, scale, db_prev)
            dZl = dZ_prev
        if lambd is not None:
            # Layers 2..L: the penalty, and dt(l2s) W into their gradients.
            penalty = l2_terms(theta, grad, dims, LAYER2, LAYER2, dt(l2s))
            # ||W1||^2 = s^2 ||W1_init||^2 + 2 s <Z1_init^T, C> + <C G, C>.
            gemm(False, False, 1.0, C, G, 0.0, CG)
            cross = 0.0
            quad = 0.0
            for i in range(n1):
                for j in range(m):
                    cross += Z0[j, i] * C[i, j]
                    quad += CG[i, j] * C[i, j]
            w_sq = s * s * w1_sq + 2 * s * cross + quad + penalty
            cost += lambd / (2 * W_total) * w_sq
        costs[e] = cost
        if not math.isfinite(cost):
            return e, STOP_COST
        # Layers 2..L: the flat update pass; b1 by the same rule.
        finite = optimizer_update_flat(theta, grad, state, dims, LAYER2, opt, dt(lr), dt(beta), one, one, np.int64(1))
        # W1 = s W1_init + C X: update s and C (dZ1 is layer 1's block of dZ, (m, n1)).
        dZ1 = dZl
        # Count non-finite new values in an integer: a float sum would chain every
        # element's add on the previous one (measured: a third of a cat-data step).
        bad = 0
        if V is None:  # gd
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
        carry[0] = s
        carry[1] = a
        if not finite or bad != 0 or not math.isfinite(s):
            return e, STOP_PARAMETERS
    return n_epochs, STOP_NONE


@njit(cache=True, no_cfunc_wrapper=True)
def gram_weights(X, W1_init, R, coef, out, dims):
    """Write coef W1_init + R X, formed in float64 and rounded once, into the W1 block of out.

    W1 itself: R = C, coef = s = carry[0], out = theta. Momentum's W1 velocity,
    which has the same form: R = V, coef = a = carry[1], out = state; with both
    written, ``network.train`` continues the momentum run from theta and state.
    X (m, n_0) as given to ``gram_setup`` (a float64 X spares a float64 copy per
    call). Returns how many values written are not finite (finite in float64
    but out of a float32 out's range, say), 0 when fine. Overwrites only out's
    W1 block. One function for both, and loops rather than array expressions,
    keep the route's first compile short.
    """
    W1, _ = layer_parameters(out, dims, LAYER1)
    n1, n0 = W1_init.shape
    M = np.empty((n1, n0), np.float64)
    for i in range(n1):
        for j in range(n0):
            M[i, j] = W1_init[i, j] * coef
    gemm(False, False, 1.0, R, as_float64(X), 1.0, M)
    dt = out.dtype.type
    bad = 0
    for i in range(n1):
        for j in range(n0):
            w = dt(M[i, j])
            W1[i, j] = w
            bad += (w - w) != 0.0
    return bad
