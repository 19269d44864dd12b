"""Dropout masks from a counter-based generator: every bit a pure function of (seed, step, layer, row, unit).

Inverted dropout keeps hidden unit j of example i with probability keep_prob and
divides what it keeps by keep_prob. Drawing the mask from a stream of random
numbers (the course's ``np.random.rand(...) < keep_prob``) makes it depend on the
order in which the stream is consumed: a batch split across threads, MPI ranks or
blocks streamed from disk would draw other masks than one process in memory. Here
each bit is a hash of its coordinates instead:

    k   = mix(mix(mix(mix(seed) ^ step_lo) ^ step_hi) ^ layer)   one per layer and step
    r   = mix(k ^ row)                                           one per example (its row in the data)
    h   = mix(r + unit * 0x9E3779B9)                             one per unit
    keep  iff  h < threshold(keep_prob) = round(keep_prob 2^32)

in 32-bit unsigned arithmetic (wrapping), ``mix`` being a 32-bit integer hash
finalizer (xor-shift / multiply, two multiplications: it vectorizes on AVX2).
``row`` is the example's row in the training data (not its place in the batch),
``step`` the optimizer step the batch is trained in (1 for the first), ``layer``
the hidden layer (1..L-1). So the same example in the same step sees the same mask
whoever computes it, and ``fastdnn.reference.dropout_mask`` (numpy) computes the
same bits as ``keep`` here (tests/test_dropout.py holds them equal).

Limits, by construction: ``row`` and ``seed`` are taken modulo 2^32 (rows of data beyond 4,294,967,295 would
share masks with rows 2^32 earlier), ``layer`` below 2^32, ``step`` below 2^64. Each of the 2^32 keys ``r`` of
a row is a bijective image of its row under the layer's key, so two rows of one batch never share all their
bits; two rows whose keys differ by d * GOLDEN (mod 2^32) see unit masks shifted by d units (row 2's unit j is
row 1's unit j + d), which in a batch of 256 rows and 256 units happens to some pair about once in 250 steps
(32,640 pairs x 510 shifts / 2^32), and then only to that pair, for one layer and step: nothing a trained
network can see.

Cost: ``keep`` is two multiplications, three shifts and xors and a compare in 64-bit integer lanes (about
ten vector instructions a unit, beside the activation's one or two); ``row_key`` once per row and
``layer_key`` once per layer and step are negligible.
"""

import numpy as np
from numba import njit

# uint64 constants: Numba would turn uint64 (op) int64 into float64.
GOLDEN = np.uint64(0x9E3779B9)
_M1 = np.uint64(0x7FEB352D)
_M2 = np.uint64(0x846CA68B)
MASK32 = np.uint64(0xFFFFFFFF)
_S15, _S16, _S32 = np.uint64(15), np.uint64(16), np.uint64(32)


def threshold(keep_prob):
    """The integer a unit's hash must stay under to be kept: round(keep_prob 2^32), in [0, 2^32] (2^32 keeps
    every unit: keep_prob 1 is no dropout)."""
    return min(2**32, max(0, int(round(float(keep_prob) * 2**32))))


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def mix(x):
    """The 32-bit finalizer (x a uint64 holding a 32-bit value; returns one)."""
    x = x & MASK32
    x ^= x >> _S16
    x = (x * _M1) & MASK32
    x ^= x >> _S15
    x = (x * _M2) & MASK32
    x ^= x >> _S16
    return x


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def layer_key(seed, step, layer):
    """k of (seed, step, layer) (all non-negative integers; seed and layer below 2^32, step below 2^64)."""
    s = np.uint64(step)
    k = mix(np.uint64(seed))
    k = mix(k ^ (s & MASK32))
    k = mix(k ^ (s >> _S32))
    return mix(k ^ np.uint64(layer))


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def row_key(k, row):
    """r of an example at ``row`` (below 2^32) under layer key k."""
    return mix(k ^ np.uint64(row))


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def keep(r, unit, limit):
    """Whether ``unit`` of the example with row key r is kept (``limit`` = ``threshold(keep_prob)``)."""
    return mix(r + np.uint64(unit) * GOLDEN) < limit


@njit(cache=True, no_cfunc_wrapper=True, inline="always")
def step_keys(seed, step, out):
    """out[l - 1] = layer_key(seed, step, l) for the hidden layers l = 1 .. out.shape[0] (out: uint64)."""
    for l in range(out.shape[0]):
        out[l] = layer_key(seed, step, l + 1)


@njit(cache=True, no_cfunc_wrapper=True)
def mask_block(seed, step, layer, rows, n_units, limit, out):
    """out[i, j] = 1 where unit j of the example at rows[i] is kept, else 0 (a test and debugging aid: the
    training kernels call ``keep`` in their fused passes)."""
    k = layer_key(seed, step, layer)
    for i in range(rows.shape[0]):
        r = row_key(k, rows[i])
        for j in range(n_units):
            out[i, j] = 1 if keep(r, j, np.uint64(limit)) else 0
