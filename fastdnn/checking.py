"""The comparator behind ``fastdnn check``: the fast path against the reference, stage by stage.

Both implementations run the course's functions (``L_model_forward``,
``compute_cost``, ``L_model_backward``, the update) from the same starting
numbers for a few steps; ``compare`` records, per stage, the largest difference
and its step, and for float32 how far the reference's own functions land when
run in float32 (the "spread"), from which the tolerance is derived.
``assert_close`` is the comparator the equivalence tests hold every stage to:
the same measure as ``difference`` (the deviation relative to the largest
reference value), optionally with an element-wise relative term besides.
"""

import math

import numpy as np

# float64: both paths compute the same formulas in the same precision, so they
# differ by summation order only: ~1e-15 relative per step, 1e-13 after a few
# steps fed back through the updates. A wrong formula (a missing 1/m, a wrong
# transpose, an off-by-one layer) differs at 1e-3 or more. 1e-9 sits between.
RTOL64 = 1e-9
# float32: the fast path rounds every operation to 24 bits and the reference
# to 53, and a few steps feed those roundings back through the updates (Adam,
# which divides by sqrt(s), and ReLU units switching on or off magnify them).
# So the tolerance is partly measured on the user's own problem: the reference's
# functions run in float32 (numpy computes in the arrays' dtype) land at some
# distance from its float64 run, the "float32 spread"; the fast path, whose
# summation order differs from numpy's (serial db sums, BLAS blocking), may be
# SPREAD_SAFETY times as far. One realisation of the spread can be small
# by luck (measured: fast / spread up to 51 on the cost, 30 on db with Adam), so
# no stage is held tighter than FLOOR32 of its scale: the largest float32
# difference seen on a stage whose spread did not explain it was 6.6e-5 (db,
# tanh, Adam, 10 steps), while an error in a formula shows at 1e-2 or more.
# float64 (the default) is the strict proof.
SPREAD_SAFETY = 8.0
FLOOR32 = 1e-3


def course_step(lib, X, Y, params, opt_state, t, options):
    """One step of the course's functions from ``lib`` (fastdnn or fastdnn.reference, same names).

    ``options``: activation, output, loss, l2, lr, optimizer, beta. Returns
    (stages: name -> array or float, new parameters, new optimizer state).
    """
    act, output, loss, lambd = options["activation"], options["output"], options["loss"], options["l2"]
    AL, caches = lib.L_model_forward(X, params, act, output)
    cost = lib.compute_cost(AL, Y, params, lambd, loss)
    grads = lib.L_model_backward(AL, Y, caches, act, output, loss, lambd)
    L = len(caches)
    stages = {}
    for l in range(1, L + 1):
        stages[f"Z{l}"] = caches[l - 1][1]
        stages[f"A{l}"] = caches[l][0][0] if l < L else AL
    stages["cost"] = cost
    for l in range(L - 1, 0, -1):
        stages[f"dA{l}"] = grads[f"dA{l}"]
    for l in range(L, 0, -1):
        stages[f"dW{l}"], stages[f"db{l}"] = grads[f"dW{l}"], grads[f"db{l}"]
    lr = options["lr"]
    if options["optimizer"] == "gd":
        new = lib.update_parameters(params, grads, lr)
    elif options["optimizer"] == "momentum":
        new, opt_state = lib.update_parameters_with_momentum(params, grads, opt_state, options["beta"], lr)
    else:
        v, s = opt_state
        new, v, s = lib.update_parameters_with_adam(params, grads, v, s, t, lr, 0.9, 0.999, 1e-8)
        opt_state = (v, s)
    for l in range(1, L + 1):
        stages[f"W{l}"], stages[f"b{l}"] = new[f"W{l}"], new[f"b{l}"]
    return stages, new, opt_state


def initial_state(lib, params, optimizer):
    if optimizer == "momentum":
        return lib.initialize_velocity(params)
    if optimizer == "adam":
        return lib.initialize_adam(params)
    return None


def assert_close(fast, ref, *, rtol=0.0, scale_rtol=0.0, name=""):
    """Assert, element by element, |fast - ref| <= rtol |ref| + scale_rtol max|ref| (equal shapes, no NaN).

    With ``rtol=0`` this holds ``difference``'s relative figure to ``scale_rtol``, the measure ``fastdnn check``
    reports; ``rtol`` adds a bound relative to each value, for stages whose values span many magnitudes.
    """
    fast, ref = np.asarray(fast, np.float64), np.asarray(ref, np.float64)
    assert fast.shape == ref.shape, f"{name}: shape {fast.shape}, expected {ref.shape}"
    atol = scale_rtol * float(np.max(np.abs(ref), initial=0.0))
    np.testing.assert_allclose(fast, ref, rtol=rtol, atol=atol, equal_nan=False, err_msg=name)


def difference(fast, ref):
    """(max |fast - ref|, that / max |ref|), or None when the reference is not finite."""
    fast = np.asarray(fast, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.isfinite(ref).all():
        return None
    if not np.isfinite(fast).all():
        return math.inf, math.inf
    diff = float(np.max(np.abs(fast - ref), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf))


def compare(X_rows, Y, dims, options, steps, dtype, start, fast=None):
    """Run the fast path and the reference ``steps`` steps from ``start`` (the course's parameter dict);
    returns (worst, stopped).

    X_rows (m, n_0) examples as rows, Y (n_L, m) in the course's layout.
    ``fast`` is the fast library (default ``fastdnn``; the tests pass a broken
    one to watch the comparison fail). worst: stage -> [max abs difference,
    relative, step, float32 spread]; stopped: (step, stage) where the
    reference stopped being finite, else None. One BLAS thread.
    """
    import fastdnn
    from fastdnn import reference
    from threadpoolctl import threadpool_limits

    dtype = np.dtype(dtype)
    # Both paths start from the same numbers: X and the initial parameters rounded to the fast path's
    # dtype, given to the reference as float64 (exactly), so only arithmetic differs.
    X_fast = np.ascontiguousarray(X_rows, dtype=dtype).T
    start = {k: np.asarray(v).astype(dtype) for k, v in start.items()}
    runs = {"fast": (fast or fastdnn, X_fast, Y.astype(dtype), start)}
    runs["reference"] = (reference, X_fast.astype(np.float64), Y.astype(np.float64), {k: v.astype(np.float64) for k, v in start.items()})
    if dtype == np.float32:
        runs["reference float32"] = (reference, X_fast, Y.astype(np.float32), dict(start))
    worst, stopped = {}, None
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        state = {name: (run[3], initial_state(run[0], run[3], options["optimizer"])) for name, run in runs.items()}
        for step in range(1, steps + 1):
            out = {}
            for name, (lib, X, Yn, _) in runs.items():
                params, opt_state = state[name]
                out[name], new, opt_state = course_step(lib, X, Yn, params, opt_state, step, options)
                state[name] = (new, opt_state)
            for stage, ref_value in out["reference"].items():
                found = difference(out["fast"][stage], ref_value)
                if found is None:
                    stopped = (step, stage)
                    break
                spread = None
                if "reference float32" in out:
                    s = difference(out["reference float32"][stage], ref_value)
                    spread = s[1] if s is not None and math.isfinite(s[1]) else None
                entry = worst.setdefault(stage, [0.0, 0.0, step, 0.0])
                if found[1] > entry[1] or (found[1] == entry[1] and found[0] > entry[0]):
                    entry[0], entry[1], entry[2] = found[0], found[1], step
                if spread is not None:
                    entry[3] = max(entry[3], spread)
            if stopped:
                break
    return worst, stopped


def tolerance(dtype, spread):
    """The largest relative difference a stage may show: RTOL64, or max(SPREAD_SAFETY x spread, FLOOR32)."""
    return max(SPREAD_SAFETY * spread, FLOOR32) if np.dtype(dtype) == np.float32 else RTOL64
