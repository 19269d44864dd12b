"""The fast pipeline: the reference's functions, names and signatures, backed by ``fastdnn.kernels``.

Each public function here has a twin in ``fastdnn/reference.py`` and returns
the same shapes in the course's layout (examples as columns), so the two can be
compared stage by stage. Underneath, the layout is sample-major: the course's
``(n, m)`` arrays returned here are transposed *views* of ``(m, n)`` C-contiguous
buffers, and every W and b is a view into one flat parameter buffer.

This module is the line between Python and compiled code: it validates (one
function, shared with the reference), converts once at the boundary, allocates
the buffers, and makes one compiled call per stage (one for a whole training
run). It never imports the reference.
"""

import numpy as np

from fastdnn import _validation as V
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.threads import blas_threads

_FLOAT_DTYPES = (np.float32, np.float64)


def resolve_dtype(dtype, X=None):
    """float32 or float64: the requested one, else X's float dtype, else float64."""
    if dtype is None:
        if X is not None and X.dtype in _FLOAT_DTYPES:
            return X.dtype.type
        return np.float64
    dt = np.dtype(dtype)
    if dt not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt.type


class Parameters(dict):
    """``{"W1": (n1, n0), "b1": (n1, 1), ...}``: views into one flat buffer ``.flat``.

    A plain dict with three attributes: ``flat`` (P,) holds W1 row-major, b1,
    W2, b2, ... back to back; ``dims`` the layer sizes; ``prefix`` the keys'
    prefix ("" for parameters, "d" for gradients "dW1", "db1", ...).
    """

    def __init__(self, flat, dims, prefix=""):
        super().__init__()
        self.flat = flat
        self.dims = list(dims)
        self.prefix = prefix
        w_off, b_off, _ = N.param_offsets(np.asarray(dims, np.int64))
        for l in range(1, len(dims)):
            n, k = dims[l], dims[l - 1]
            self[f"{prefix}W{l}"] = flat[w_off[l - 1] : w_off[l - 1] + n * k].reshape(n, k)
            self[f"{prefix}b{l}"] = flat[b_off[l - 1] : b_off[l - 1] + n].reshape(n, 1)


def n_parameters(dims):
    return int(sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims))))


def pack_parameters(parameters, dtype, prefix=""):
    """A ``Parameters`` of ``dtype`` holding the W/b values of any ``{"W1", "b1", ...}`` dict.

    Returns the argument itself, not a copy, when it already is one. Other keys
    (the reference's "dA{l}" in gradients) are ignored.
    """
    if isinstance(parameters, Parameters) and parameters.flat.dtype == dtype and parameters.prefix == prefix:
        return parameters
    plain = {
        k[len(prefix):]: v for k, v in parameters.items() if k[len(prefix):len(prefix) + 1] in ("W", "b")
    }
    dims = V.check_parameters(plain)
    packed = Parameters(np.empty(n_parameters(dims), dtype), dims, prefix)
    for key, view in packed.items():
        view[...] = parameters[key]
    return packed


def parameters_dtype(parameters):
    """The float dtype a parameter dict computes in: its own if float32/64, else float64."""
    if isinstance(parameters, Parameters):
        return parameters.flat.dtype.type
    first = np.asarray(parameters.get("W1"))
    return first.dtype.type if first.dtype in _FLOAT_DTYPES else np.float64


def initialize_parameters_deep(layer_dims, dtype=np.float64):
    """The course's initialisation (``np.random.seed(1)``, ``randn / sqrt(n_{l-1})``, zero b).

    Drawn with numpy in the reference's order, so both paths start from the
    same numbers; stored in one flat buffer of ``dtype``.
    """
    dims = V.check_layers_dims(layer_dims)
    dtype = resolve_dtype(dtype)
    params = Parameters(np.zeros(n_parameters(dims), dtype), dims)
    np.random.seed(1)
    for l in range(1, len(dims)):
        params[f"W{l}"][...] = np.random.randn(dims[l], dims[l - 1]) / np.sqrt(dims[l - 1])
    return params


def _activation_codes(L, hidden="relu", output="sigmoid"):
    return np.array([K.ACTIVATION_CODES[hidden]] * (L - 1) + [K.OUTPUT_CODES[output]], np.int64)


def samples_as_rows(X, dtype):
    """The sample-major ``(m, n)`` C-contiguous copy of X ``(n, m)``, or a view when X is F-ordered."""
    return np.ascontiguousarray(X.T, dtype=dtype)


class ForwardCache(list):
    """The course's caches, ``[((A_prev, W, b), Z), ...]``, as views, plus the fast path's buffers.

    ``fastdnn.L_model_backward`` needs the buffers (sample-major X, the flat
    activation workspace, the logits), so it takes only caches made here.
    """


def L_model_forward(X, parameters):
    """[LINEAR -> RELU] * (L-1) -> LINEAR -> SIGMOID in compiled kernels.

    Returns AL (1, m) and caches shaped like the reference's: caches[l-1] =
    ((A_{l-1}, W_l, b_l), Z_l) with A and Z in the course's (n, m) layout
    (transposed views of sample-major buffers).
    """
    X = V.check_X(X)
    dims = V.check_parameters(parameters, X.shape[0])
    params = pack_parameters(parameters, parameters_dtype(parameters))
    dtype = params.flat.dtype
    Xs = samples_as_rows(X, dtype)
    m, L = Xs.shape[0], len(dims) - 1
    dims_a = np.asarray(dims, np.int64)
    acts = _activation_codes(L)
    Z = np.empty(m * sum(dims[1:]), dtype)
    A = np.empty_like(Z)
    N.forward(Xs, params.flat, dims_a, acts, Z, A, True)
    Zs = [N._block(Z, m, dims_a, l).T for l in range(L)]
    As = [Xs.T] + [N._block(A, m, dims_a, l).T for l in range(L)]
    caches = ForwardCache(
        ((As[l], params[f"W{l + 1}"], params[f"b{l + 1}"]), Zs[l]) for l in range(L)
    )
    caches.buffers = (Xs, params, dims_a, acts, Z, A)
    return As[L], caches


def compute_cost(AL, Y):
    """Cross-entropy of probabilities AL (1, m) against Y (1, m), as a Python float.

    Probabilities that round to exactly 0 or 1 are clipped to the nearest
    representable interior value instead of taking log(0) (the reference returns
    inf there). The training loop takes its cost from logits and never needs this.
    """
    AL = np.asarray(AL)
    Y = V.check_Y(Y, AL.shape[-1])
    if AL.shape != Y.shape:
        raise ValueError(f"AL must have shape {Y.shape}, got {AL.shape}")
    finfo = np.finfo(AL.dtype)
    p = np.clip(AL, finfo.tiny, 1 - finfo.epsneg)
    return float(-np.mean(Y * np.log(p) + (1 - Y) * np.log1p(-p)))


def L_model_backward(AL, Y, caches):
    """Every dW_l, db_l (and dA_l for l >= 1) from fused kernels; dA0 is not computed.

    Returns a dict like the reference's grads ("dW{l}", "db{l}" for l = 1..L,
    "dA{l}" for l = 1..L-1), the dW/db being views into one flat buffer ``.flat``.
    """
    if not isinstance(caches, ForwardCache):
        raise TypeError("caches must come from fastdnn.L_model_forward (the fast path's own)")
    Xs, params, dims_a, acts, Z, A = caches.buffers
    m, L = Xs.shape[0], dims_a.shape[0] - 1
    Ys = V.check_Y(Y, m).T.astype(Xs.dtype)
    dims = [int(d) for d in dims_a]
    grads = Parameters(np.empty_like(params.flat), dims, prefix="d")
    dA = np.empty_like(A)
    dZ = np.empty_like(A)
    ZL = N._block(Z, m, dims_a, L - 1)
    N.backward(Xs, Ys, params.flat, dims_a, acts, ZL, A, dA, dZ, grads.flat)
    for l in range(1, L):
        grads[f"dA{l}"] = N._block(dA, m, dims_a, l - 1).T
    return grads


def update_parameters(params, grads, learning_rate):
    """W -= learning_rate * dW, b -= learning_rate * db in one pass over the flat buffer.

    Returns new parameters (the arguments are not modified), like the reference.
    """
    V.check_positive(learning_rate, "learning_rate")
    dtype = parameters_dtype(params)
    old = pack_parameters(params, dtype)
    new = Parameters(old.flat.copy(), old.dims)
    K.sgd_update_flat(new.flat, pack_parameters(grads, dtype, prefix="d").flat, dtype(learning_rate))
    return new


def L_layer_model(
    X,
    Y,
    layers_dims,
    learning_rate=0.0075,
    num_iterations=3000,
    print_cost=False,
    dtype=None,
    threads=None,
):
    """Full-batch gradient descent, the whole loop in one compiled call.

    Same arguments and result as the reference's (parameters, costs), plus
    ``dtype`` (float32/float64; default: X's float dtype, else float64) and
    ``threads`` (BLAS threads for the run; None leaves the library's setting).
    Raises FloatingPointError naming the iteration if the cost stops being finite.
    """
    X, Y, dims = V.check_training_inputs(X, Y, layers_dims, learning_rate, num_iterations)
    dtype = resolve_dtype(dtype, X)
    Xs = samples_as_rows(X, dtype)
    Ys = np.ascontiguousarray(Y.T, dtype=dtype)
    params = initialize_parameters_deep(dims, dtype)
    m, L = Xs.shape[0], len(dims) - 1
    dims_a = np.asarray(dims, np.int64)
    A = np.empty(m * sum(dims[1:]), dtype)
    dZ = np.empty_like(A)
    grad = np.empty_like(params.flat)
    costs = np.zeros(num_iterations)
    with blas_threads(threads):
        done = N.train_gd(
            Xs, Ys, params.flat, dims_a, _activation_codes(L), learning_rate, num_iterations, costs, A, dZ, grad
        )
    if done < num_iterations:
        raise FloatingPointError(
            f"the cost became {costs[done]} at iteration {done}; try a smaller learning_rate"
        )
    costs = costs.tolist()
    if print_cost:
        for i in list(range(0, num_iterations, 100)) + [num_iterations - 1]:
            print(f"Cost after iteration {i}: {costs[i]:.6f}")
    return params, costs


def predict_proba(X, parameters):
    """The network's output probabilities (1, m)."""
    X = V.check_X(X)
    V.check_parameters(parameters, X.shape[0])
    AL, _ = L_model_forward(X, parameters)
    return AL


def predict(X, parameters):
    """0/1 predictions (1, m): 1 where the network's probability exceeds 0.5."""
    return (predict_proba(X, parameters) > 0.5).astype(np.int64)
