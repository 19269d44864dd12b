"""Whole-network passes and the training loop, compiled as one call.

A network is described by plain arrays and three option codes, so one Python
function serves every architecture and option set:

    dims     (L+1,) int64  layer sizes n_0 .. n_L
    hidden   int           activation code of the hidden layers 1..L-1 (``layers.ACT_*``)
    output   int           output code of layer L (``layers.OUT_*``: output activation
                           and cost together)
    opt      int           optimizer code (``layers.OPT_*``), for training
    theta    (P,)          every parameter, flat: W1 (n1, n0) row-major, b1 (n1,),
                           W2, b2, ... ; ``grad`` has the same layout
    X        (m, n_0)      examples as rows (sample-major), C-contiguous
    Y        (m, n_L)      targets as rows
    Z, A     flat workspaces of at least m * sum(n_1..n_L): layer l's (m, n_l)
                           block follows layer l-1's. Z and A may be one array
                           (training keeps only A; the per-stage API keeps both).
    first_layer            layers 1..first_layer are frozen: no gradient, no
                           update, and backpropagation stops above them.

The codes are compile-time constants: call these functions from Python through
``fastdnn.kernels.compiled``, which types them as literals (a plain int is
refused with a TypingError). They reach the kernels in ``layers`` that branch
on them, which compile one version per code holding only its branch, so a run
compiles only its own activation, output and optimizer, and the next option
set compiles its own, once, cached on disk.

Products go through BLAS (``blas.gemm``) with transpose flags; the gradient
with respect to the input, dA0 = dZ1 W1, is never computed. The full-batch
route that carries layer 1 in the example space is ``gram.train_gram``.
"""

import math
from collections import namedtuple

import numpy as np
from numba import carray, njit, types
from numba.extending import overload

from .blas import data_ptr, gemm
from .layers import (
    bias_act_backward,
    bias_act_dropout_backward,
    bias_act_dropout_forward,
    bias_act_forward,
    gather_rows,
    l2_terms,
    optimizer_update_flat,
    output_backward,
    output_forward,
)
from .masks import MASK32, step_keys

# The training kernels' grouped arguments. Numba types a namedtuple by its
# fields (Hyper of a float64 array and three float64 is one type) and caches it on disk like a tuple.
# Hyper's fields must keep their types: an int field would compile another specialisation.
Hyper = namedtuple("Hyper", "learning_rate beta1 beta2 epsilon")
Hyper.__doc__ = """Optimizer hyperparameters: beta1 is momentum's beta too (floats). learning_rate is each epoch's
rate: a float64 array of one rate per epoch of the call (epoch e of a call steps at learning_rate[e], the
learning-rate schedule; the engine's routes always pass one, so a run compiles that version only), or one float
for every epoch alike (what direct callers of the kernels may pass; ``epoch_rate``). The L2 strength is an
argument of its own (a float, or None for no L2: None compiles a version without the L2 terms)."""
Workspace = namedtuple("Workspace", "Xb Yb A dZ grad")
Workspace.__doc__ = """``train``'s scratch arrays, overwritten by every call (see ``train``)."""
Weights = namedtuple("Weights", "rows batch")
Weights.__doc__ = """Sample weights for ``train``: rows (m,) one weight per row of X (non-negative, of X's dtype), batch
(batch_size,) a gather buffer for a shuffled batch's weights. With weights every cost and gradient is a
weighted mean, sum_i w_i l_i / sum_i w_i over the batch (the normaliser of the L2 term too), so integer
weights train as repeated rows would; None trains unweighted (the version compiled for None holds no
weight code)."""
Dropout = namedtuple("Dropout", "seed limits scales rows batch")
Dropout.__doc__ = """Inverted dropout for ``train``, ``accumulate`` and the pool: seed (int64, below 2^32) the run's dropout
seed; limits (L-1,) uint64 each hidden layer's ``masks.threshold(keep_prob)`` (2^32 and above: the layer keeps
every unit and runs the code without dropout); scales (L-1,) of theta's dtype, each 1 / keep_prob; rows (m,)
int64 the row in the training data of each row of X (what a unit's mask is keyed by: the same example gets
the same mask in the same step wherever it sits, in a shuffled batch, a block read from disk or another
rank's share); batch (batch_size,) int64, a gather buffer for a shuffled batch's rows. An example's mask in
the optimizer step t (from 1) is ``masks.keep(row_key(layer_key(seed, t, l), rows[i]), unit, limits[l - 1])``
for hidden layer l. None trains without dropout: the version compiled for None holds no dropout code, so such
runs are the same bits, as fast, as before dropout existed."""
Masks = namedtuple("Masks", "keys limits scales rows")
Masks.__doc__ = """One batch's dropout masks for ``forward`` and ``backward``: keys (L-1,) uint64 the hidden layers'
``masks.layer_key(seed, step, l)`` for the batch's step, limits and scales as ``Dropout``'s, rows (mb,) int64
the batch's rows' rows in the training data. Formed by ``batch_masks`` (or, from Python, ``masks_for``);
nothing of the mask itself is stored."""

# Layer indices as int64 values for calls between compiled functions: a literal
# (0) there compiles a separate specialisation of the callee, seconds of a first compile.
LAYER1 = np.int64(0)
LAYER2 = np.int64(1)


_VIEWS_ONLY = "fastdnn.kernels.network views are callable from compiled code only"
_VIEW_JIT = {"cache": True, "no_cfunc_wrapper": True}


def layer_parameters(theta, dims, l):
    """Views of W_{l+1} (dims[l+1], dims[l]) and b_{l+1} (dims[l+1],) in theta (or grad, or a block of state).

    theta's layout is W1, b1, W2, b2, ...; the offset is summed here (L is small)
    rather than read from an offsets array, which would cost an allocation and
    another compiled function.

    The 2-D views here are ``carray``s over the buffer's memory: unlike
    ``reshape`` (whose first use in a process compiles a helper, 0.1-0.2 s of a
    cold start) they hold no reference to the buffer, so they exist in compiled
    code only (an overload, not callable from Python), where the caller's buffer
    outlives them; a buffer too short for the view raises ValueError.
    """
    raise NotImplementedError(_VIEWS_ONLY)


@overload(layer_parameters, jit_options=_VIEW_JIT)
def _layer_parameters_for(theta, dims, l):
    def impl(theta, dims, l):
        o = 0
        for i in range(l):
            o += dims[i + 1] * (dims[i] + 1)
        n, k = dims[l + 1], dims[l]
        if o + n * k + n > theta.shape[0]:
            raise ValueError("fastdnn kernels: a parameter buffer is shorter than the network's layer sizes")
        return carray(data_ptr(theta[o : o + n * k]), (n, k)), theta[o + n * k : o + n * k + n]

    return impl


def epoch_rate(learning_rate, e):
    """Epoch e's learning rate (a float64) from ``Hyper.learning_rate``: ``learning_rate[e]`` of a per-epoch
    array, or the float itself (compiled code only, as above). Read once per epoch: a step's cost is unchanged."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(epoch_rate, jit_options=_VIEW_JIT)
def _epoch_rate_for(learning_rate, e):
    if isinstance(learning_rate, types.Array):
        def impl(learning_rate, e):
            return learning_rate[e]
    else:
        def impl(learning_rate, e):
            return learning_rate
    return impl


def check_rates(learning_rate, n_epochs):
    """Raise ValueError when a per-epoch ``learning_rate`` array holds fewer than ``n_epochs`` rates (compiled
    code only, as above; a float covers any number of epochs)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(check_rates, jit_options=_VIEW_JIT)
def _check_rates_for(learning_rate, n_epochs):
    if isinstance(learning_rate, types.Array):
        def impl(learning_rate, n_epochs):
            if learning_rate.shape[0] < n_epochs:
                raise ValueError("fastdnn kernels: fewer learning rates than epochs")
    else:
        def impl(learning_rate, n_epochs):
            pass
    return impl


def batch_weights(weights, perms, e, s, mb):
    """The weights of epoch e's batch of mb rows from s (``train``'s batching): a view of ``weights.rows`` when
    batches are consecutive rows (perms None), else gathered into ``weights.batch``; None without weights
    (compiled code only, as above)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(batch_weights, jit_options=_VIEW_JIT)
def _batch_weights_for(weights, perms, e, s, mb):
    if weights is None or isinstance(weights, types.NoneType):
        def impl(weights, perms, e, s, mb):
            return None
    elif perms is None or isinstance(perms, types.NoneType):
        def impl(weights, perms, e, s, mb):
            return weights.rows[s : s + mb]
    else:
        def impl(weights, perms, e, s, mb):
            out = weights.batch[:mb]
            for i in range(mb):
                out[i] = weights.rows[perms[e, s + i]]
            return out
    return impl


def masks_for(seed, step, limits, scales, rows):
    """The ``Masks`` of a batch of ``rows`` (int64) trained in optimizer step ``step`` (from 1), from Python
    (tests, ``fastdnn check``): the keys computed here, limits and scales as ``Dropout``'s."""
    keys = np.empty(len(limits), np.uint64)
    step_keys(np.int64(seed), np.int64(step), keys)
    return Masks(keys, np.asarray(limits, np.uint64), scales, np.ascontiguousarray(rows, np.int64))


def dropout_keys(dropout, L):
    """A (L-1,) uint64 buffer for a batch's layer keys, or None without dropout (compiled code only)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(dropout_keys, jit_options=_VIEW_JIT)
def _dropout_keys_for(dropout, L):
    if dropout is None or isinstance(dropout, (types.NoneType, types.Omitted)):
        def impl(dropout, L):
            return None
    else:
        def impl(dropout, L):
            return np.empty(L - 1, np.uint64)
    return impl


def batch_masks(dropout, keys, perms, e, s, mb, step):
    """The ``Masks`` of epoch e's batch of mb rows from s (``train``'s batching) trained after ``step``
    optimizer steps (in step ``step`` + 1, counted from 1): its layer keys written into ``keys``, its rows those of ``dropout.rows`` that perms give
    (gathered into ``dropout.batch``) or, without shuffling, ``dropout.rows[s : s + mb]``; None without
    dropout (compiled code only)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(batch_masks, jit_options=_VIEW_JIT)
def _batch_masks_for(dropout, keys, perms, e, s, mb, step):
    if dropout is None or isinstance(dropout, (types.NoneType, types.Omitted)):
        def impl(dropout, keys, perms, e, s, mb, step):
            return None
    elif perms is None or isinstance(perms, types.NoneType):
        def impl(dropout, keys, perms, e, s, mb, step):
            step_keys(dropout.seed, step + 1, keys)
            return Masks(keys, dropout.limits, dropout.scales, dropout.rows[s : s + mb])
    else:
        def impl(dropout, keys, perms, e, s, mb, step):
            step_keys(dropout.seed, step + 1, keys)
            out = dropout.batch[:mb]
            for i in range(mb):
                out[i] = dropout.rows[perms[e, s + i]]
            return Masks(keys, dropout.limits, dropout.scales, out)
    return impl


def masks_rows(masks, r0, r1):
    """``masks`` for rows r0..r1 of its batch (a worker's block), or None without dropout (compiled code
    only)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(masks_rows, jit_options=_VIEW_JIT)
def _masks_rows_for(masks, r0, r1):
    if masks is None or isinstance(masks, (types.NoneType, types.Omitted)):
        def impl(masks, r0, r1):
            return None
    else:
        def impl(masks, r0, r1):
            return Masks(masks.keys, masks.limits, masks.scales, masks.rows[r0:r1])
    return impl


def hidden_forward(Z, b, A, act, masks, l):
    """Hidden layer l+1's bias + activation (``layers.bias_act_forward``), with its dropout when ``masks``
    drops units there (``layers.bias_act_dropout_forward``); a layer of keep_prob 1, or masks None, runs the
    pass without dropout (compiled code only)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(hidden_forward, prefer_literal=True, jit_options=_VIEW_JIT)
def _hidden_forward_for(Z, b, A, act, masks, l):
    if masks is None or isinstance(masks, (types.NoneType, types.Omitted)):
        def impl(Z, b, A, act, masks, l):
            bias_act_forward(Z, b, A, act)
    else:
        def impl(Z, b, A, act, masks, l):
            limit = masks.limits[l]
            if limit > MASK32:
                bias_act_forward(Z, b, A, act)
            else:
                bias_act_dropout_forward(Z, b, A, act, masks.keys[l], masks.rows, limit, masks.scales[l])
    return impl


def hidden_backward(dZ, A, act, scale, db, masks, l):
    """``layers.bias_act_backward`` for hidden layer l+1, through its dropout when ``masks`` drops units
    there (``layers.bias_act_dropout_backward``, the forward's masks again); compiled code only."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(hidden_backward, prefer_literal=True, jit_options=_VIEW_JIT)
def _hidden_backward_for(dZ, A, act, scale, db, masks, l):
    if masks is None or isinstance(masks, (types.NoneType, types.Omitted)):
        def impl(dZ, A, act, scale, db, masks, l):
            bias_act_backward(dZ, A, act, scale, db)
    else:
        def impl(dZ, A, act, scale, db, masks, l):
            limit = masks.limits[l]
            if limit > MASK32:
                bias_act_backward(dZ, A, act, scale, db)
            else:
                bias_act_dropout_backward(dZ, A, act, scale, db, masks.keys[l], masks.rows, limit,
                                          masks.scales[l])
    return impl


def rows_of(w, s, mb):
    """w[s : s + mb], or None without weights (compiled code only, as above)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(rows_of, jit_options=_VIEW_JIT)
def _rows_of_for(w, s, mb):
    if w is None or isinstance(w, (types.NoneType, types.Omitted)):
        def impl(w, s, mb):
            return None
    else:
        def impl(w, s, mb):
            return w[s : s + mb]
    return impl


def weight_total(w, m):
    """The total weight of m rows: float(m) without weights (w None), else sum(w) in float64, in row order
    (compiled code only, as above)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(weight_total, jit_options=_VIEW_JIT)
def _weight_total_for(w, m):
    if w is None or isinstance(w, (types.NoneType, types.Omitted)):
        def impl(w, m):
            return float(m)
    else:
        def impl(w, m):
            total = 0.0
            for i in range(w.shape[0]):
                total += float(w[i])
            return total
    return impl


def layer_view(work, m, dims, l):
    """View of layer l+1's (m, dims[l+1]) block in a flat activation workspace (compiled code only, as above)."""
    raise NotImplementedError(_VIEWS_ONLY)


@overload(layer_view, jit_options=_VIEW_JIT)
def _layer_view_for(work, m, dims, l):
    def impl(work, m, dims, l):
        o = 0
        for i in range(1, l + 1):
            o += m * dims[i]
        n = dims[l + 1]
        if o + m * n > work.shape[0]:
            raise ValueError("fastdnn kernels: an activation workspace is shorter than m times the layer sizes")
        return carray(data_ptr(work[o : o + m * n]), (m, n))

    return impl


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def forward(X, theta, dims, hidden, output, Z, A, apply_output, dropout=None):
    """Z_l = A_{l-1} W_l^T + b_l, A_l = g_l(Z_l) for every layer (A_0 = X).

    The output layer's A_L is its activation when ``apply_output``, else the
    logits themselves (training needs only logits: the loss kernel fuses the
    output activation). Overwrites Z and A.
    dropout: None, or the batch's ``Masks`` (training only): A_l of a hidden layer with dropout is the
    course's A_l * D_l / keep_prob, formed in the bias + activation pass. ``apply_output`` (prediction)
    never drops, whatever ``dropout`` holds.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    A_prev = X
    for l in range(L):
        Zl = layer_view(Z, m, dims, l)
        Al = layer_view(A, m, dims, l)
        Wl, bl = layer_parameters(theta, dims, l)
        gemm(False, True, 1.0, A_prev, Wl, 0.0, Zl)
        if l < L - 1:
            if apply_output:
                bias_act_forward(Zl, bl, Al, hidden)
            else:
                hidden_forward(Zl, bl, Al, hidden, dropout, l)
        elif apply_output:
            output_forward(Zl, bl, Al, output)
        else:
            # The logits: the bias only. A loop here, not bias_act_forward(..., ACT_IDENTITY),
            # which would compile a second version of that kernel for a first run.
            for i in range(m):
                for j in range(dims[L]):
                    z = Zl[i, j] + bl[j]
                    Zl[i, j] = z
                    Al[i, j] = z
        A_prev = Al


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def backward(X, Y, theta, dims, hidden, output, ZL, A, dA, dZ, grad, first_layer, w=None, dropout=None):
    """The cost, and dW_l, db_l into grad for layers first_layer+1..L, from the logits ZL.

    Gradients carry the course's 1/m (m = X's row count); with ``w`` (the rows' weights, (m,)) the
    cost and gradients are weighted means: dZ_L's rows times their weights, 1/sum(w) for 1/m. A holds the forward
    activations of layers 1..L-1 (A_L is not read). dA and dZ are flat
    workspaces laid out like A and may be one array: dA's blocks receive the
    back-propagated gradients W_l^T dZ_l, dZ's the gradients at the
    pre-activations (layer L's included). Frozen layers' grad is not written.
    dropout: the forward's ``Masks`` (None: none): A holds the dropped activations, dA_l is the gradient
    with respect to them (W_{l+1}^T dZ_{l+1}, as without dropout), and dZ_l = dA_l D_l / keep_prob g'(Z_l),
    the course's dropout backward, fused with the derivative.
    """
    m = X.shape[0]
    L = dims.shape[0] - 1
    scale = 1.0 / weight_total(w, m)
    keep_dA = dA.ctypes.data != dZ.ctypes.data
    dZl = layer_view(dZ, m, dims, L - 1)
    _, dbL = layer_parameters(grad, dims, L - 1)
    cost = output_backward(ZL, Y, output, scale, dZl, dbL, w)
    for l in range(L - 1, first_layer - 1, -1):
        A_prev = X if l == 0 else layer_view(A, m, dims, l - 1)
        # dW_l = (1/m) dZ_l^T A_{l-1}: (n_l, m) @ (m, n_{l-1}), no transposed copy.
        dWl, _ = layer_parameters(grad, dims, l)
        gemm(True, False, scale, dZl, A_prev, 0.0, dWl)
        if l == first_layer:
            break
        dZ_prev = layer_view(dZ, m, dims, l - 1)
        Wl, _ = layer_parameters(theta, dims, l)
        gemm(False, False, 1.0, dZl, Wl, 0.0, dZ_prev)
        if keep_dA:
            # Element loops, not dA[...][:, :] = dZ_prev: a broadcasting assignment compiles its
            # error message's string formatting, seconds of a first compile.
            dA_prev = layer_view(dA, m, dims, l - 1)
            for i in range(m):
                for j in range(dims[l]):
                    dA_prev[i, j] = dZ_prev[i, j]
        _, db_prev = layer_parameters(grad, dims, l - 1)
        hidden_backward(dZ_prev, A_prev, hidden, scale, db_prev, dropout, l - 1)
        dZl = dZ_prev
    return cost


# Why a training loop stopped early (its third result).
STOP_NONE = 0  # every epoch ran
STOP_COST = 1  # a batch's cost was not finite: stopped before that batch's update
STOP_PARAMETERS = 2  # an update made a parameter or optimizer-state value non-finite


@njit(cache=True, no_cfunc_wrapper=True, nogil=True)
def train(X, Y, theta, dims, hidden, output, first_layer, opt, hyper, lambd, state, step, perms, batch_size, n_epochs, costs,
          work, weights=None, dropout=None):
    """n_epochs of minibatch training in one compiled call.

    hyper: a ``Hyper``: epoch e of the call steps at its learning_rate[e] (or
    its one float). lambd: the L2 strength, or None for none (the version
    compiled for None holds no L2 code: Numba prunes on a None argument). state (2P,): optimizer state (momentum's v, Adam's m and v).
    step: optimizer steps taken before this call (Adam's t counts from it + 1).
    perms (n_epochs, m) int64: each epoch's example order, as row indices into X
    and Y; an epoch trains on those m rows (m = perms.shape[1]), so a subset of
    X's rows trains without copying X. perms None means no shuffling:
    batches are then consecutive rows of X (all of them, m = X.shape[0]) and
    nothing is gathered.
    work: a ``Workspace``: Xb (batch_size, n_0), Yb (batch_size, n_L) gather
    buffers for shuffled batches (unused without shuffling); A and dZ flat
    activation workspaces of batch_size * sum(n_1..n_L); grad (P,).
    weights: a ``Weights`` (rows indexed like X's rows, as perms index them), or None. A batch whose
    weights are all 0 takes no step (repeated rows: it has no rows).
    dropout: a ``Dropout`` (its rows indexed like X's rows), or None: each batch's masks are those of the
    step it trains in (step + 1 for the call's first) and of its rows' rows in the training data.
    costs[e] receives epoch e's cost summed over its examples: the sum over
    its batches of each batch's mean cost before its update (L2 term
    included) times the batch's size (with weights: its total weight), added
    to the value costs[e] holds on entry (zero, or the epoch's total so far
    when an epoch spans several calls: the blocks of data streamed from
    disk); the caller divides by m (the epoch's total weight).

    Returns (epochs completed, steps taken so far, STOP_* reason). Fewer epochs
    than asked means epoch ``completed`` diverged: a batch's cost was not
    finite (costs[completed] holds that batch's mean cost, and the batch was
    not applied) or an update left a non-finite value in theta or state
    (costs[completed] holds the total up to and including that batch). theta and state are then
    those of the middle of the diverged epoch; the caller restores them.
    Overwrites theta, state, costs and every workspace. Runs without the GIL,
    so the next block of data can be read while it trains.
    """
    Xb, Yb, A, dZ, grad = work
    # perms None compiles a version without the gathering (Numba prunes on the argument's type).
    m = X.shape[0] if perms is None else perms.shape[1]
    L = dims.shape[0] - 1
    dt = theta.dtype.type
    check_rates(hyper.learning_rate, n_epochs)
    beta1, beta2, eps = dt(hyper.beta1), dt(hyper.beta2), dt(hyper.epsilon)
    keys = dropout_keys(dropout, L)
    for e in range(n_epochs):
        lr = dt(epoch_rate(hyper.learning_rate, e))
        total = costs[e]
        for s in range(0, m, batch_size):
            mb = batch_size if batch_size < m - s else m - s
            if perms is None:
                # Row slices of a C-contiguous array are C-contiguous views (Numba types them so).
                Xe = X[s : s + mb]
                Ye = Y[s : s + mb]
            else:
                Xe = Xb[:mb]
                Ye = Yb[:mb]
                gather_rows(X, perms[e, s : s + mb], Xe)
                gather_rows(Y, perms[e, s : s + mb], Ye)
            We = batch_weights(weights, perms, e, s, mb)
            M = weight_total(We, mb)  # the batch's size, or its total weight
            if M == 0.0:
                continue  # rows of weight 0 alone: as if they were not there, no step
            masks = batch_masks(dropout, keys, perms, e, s, mb, step)
            forward(Xe, theta, dims, hidden, output, A, A, False, masks)
            ZL = layer_view(A, mb, dims, L - 1)
            cost = backward(Xe, Ye, theta, dims, hidden, output, ZL, A, dZ, dZ, grad, first_layer, We, masks)
            if lambd is not None:
                # The penalty counts frozen layers' weights too (a constant), as the reference's cost does;
                # the gradient term goes to the trainable layers.
                cost += lambd / (2 * M) * l2_terms(theta, grad, dims, LAYER1, first_layer, dt(lambd / M))
            if not math.isfinite(cost):
                costs[e] = cost
                return e, step, STOP_COST
            step += 1
            finite = optimizer_update_flat(
                theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, step
            )
            total += cost * M
            if not finite:
                costs[e] = total
                return e, step, STOP_PARAMETERS
        costs[e] = total
    return n_epochs, step, STOP_NONE


@njit(cache=True, no_cfunc_wrapper=True, nogil=True)
def accumulate(X, Y, theta, dims, hidden, output, first_layer, chunk, m_total, work, grad_sum, add, w=None,
               dropout=None, step=None):
    """Full-batch training over data read in blocks: one block's share of the whole batch's gradient.

    X, Y: the block's rows, taken ``chunk`` rows at a time; each chunk's
    gradient, weighted by its rows / m_total, is added to grad_sum (the
    trainable layers' part; frozen layers' is left alone), so that over every
    block of an epoch grad_sum sums to the gradient of all m_total examples.
    ``add`` False overwrites grad_sum's trainable part with the first chunk's
    instead of adding to it (a data-parallel step: no zeroing pass over a
    large buffer). X must have at least one row.
    Returns the block's cost summed over its rows (float64). work: a
    ``Workspace`` whose A and dZ hold chunk * sum(n_1..n_L), and grad (P,).
    w: None, or the block's rows' weights (m,); then m_total is the whole
    batch's total weight, a chunk counts its total weight / m_total and the
    cost returned is summed with the rows' weights.
    dropout: a ``Dropout`` (its rows: X's rows' rows in the training data; batch unused), or None; the masks
    are those of optimizer step ``step`` + 1 (``step``: the steps taken before the one these rows make up;
    None, unread, without dropout).
    """
    A, dZ, grad = work.A, work.dZ, work.grad
    m = X.shape[0]
    L = dims.shape[0] - 1
    o = 0
    for i in range(first_layer):
        o += dims[i + 1] * (dims[i] + 1)
    cost = 0.0
    keys = dropout_keys(dropout, L)
    for s in range(0, m, chunk):
        mb = chunk if chunk < m - s else m - s
        Xe = X[s : s + mb]
        Ye = Y[s : s + mb]
        We = rows_of(w, s, mb)
        M = weight_total(We, mb)
        if M == 0.0:
            continue  # rows of weight 0 alone add nothing
        masks = batch_masks(dropout, keys, None, 0, s, mb, step)
        forward(Xe, theta, dims, hidden, output, A, A, False, masks)
        ZL = layer_view(A, mb, dims, L - 1)
        cost += M * backward(Xe, Ye, theta, dims, hidden, output, ZL, A, dZ, dZ, grad, first_layer, We, masks)
        share = grad.dtype.type(M / m_total)
        if add:
            for i in range(o, grad.shape[0]):
                grad_sum[i] += share * grad[i]
        else:
            for i in range(o, grad.shape[0]):
                grad_sum[i] = share * grad[i]
            add = True
    if not add:
        for i in range(o, grad.shape[0]):
            grad_sum[i] = 0  # every row weighed 0: its share is nothing
    return cost


@njit(cache=True, no_cfunc_wrapper=True, nogil=True)
def full_batch_update(theta, grad, state, dims, first_layer, opt, hyper, lambd, cost, m, step):
    """The update that ends a full-batch epoch over data read in blocks (``accumulate``).

    cost: the epoch's cost summed over its m examples (with weights: weighted, m their total); grad: the
    whole batch's gradient. Adds the L2 terms (lambd None: none), then, if the mean cost is
    finite, takes the optimizer's step ``step`` + 1 at the epoch's rate (a
    ``Hyper`` whose learning_rate holds it first, or is it). Returns (mean
    cost, STOP_* reason), as ``train`` would for that epoch.
    """
    dt = theta.dtype.type
    check_rates(hyper.learning_rate, 1)
    cost = cost / m
    if lambd is not None:
        cost += lambd / (2 * m) * l2_terms(theta, grad, dims, LAYER1, first_layer, dt(lambd / m))
    if not math.isfinite(cost):
        return cost, STOP_COST
    finite = optimizer_update_flat(
        theta, grad, state, dims, first_layer, opt, dt(epoch_rate(hyper.learning_rate, 0)), dt(hyper.beta1), dt(hyper.beta2),
        dt(hyper.epsilon), step + 1,
    )
    return cost, STOP_NONE if finite else STOP_PARAMETERS


@njit(cache=True, no_cfunc_wrapper=True)
def optimizer_step(theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, t):
    """``layers.optimizer_update_flat``, callable from Python through ``fastdnn.kernels.compiled`` (opt a constant)."""
    return optimizer_update_flat(theta, grad, state, dims, first_layer, opt, lr, beta1, beta2, eps, t)
