"""The fast pipeline: the reference's functions, names and signatures, backed by ``fastdnn.kernels``.

Each public function here has a twin in ``fastdnn/reference.py`` and returns
the same shapes in the course's layout (examples as columns), so the two can be
compared stage by stage. Underneath, the layout is sample-major: the course's
``(n, m)`` arrays returned here are transposed *views* of ``(m, n)`` C-contiguous
buffers, and every W and b is a view into one flat parameter buffer.

This module is the line between Python and compiled code: it validates (the
checks in ``validation`` are shared with the reference), converts once at the
boundary, allocates the buffers, and makes one compiled call per stage (one for
a whole training run, in ``training.py``). It never imports the reference.
"""

import numpy as np

from fastdnn import validation as V
from fastdnn.kernels import compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N

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

    A dict with three attributes: ``flat`` (P,) holds W1 row-major, b1,
    W2, b2, ... back to back; ``dims`` the layer sizes; ``prefix`` the keys'
    prefix ("" for parameters, "d" for gradients "dW1", "db1", ...).

    Assigning a layer's key writes through: ``p["W1"] = p["W1"] - lr * g["dW1"]``
    (the course's update loop) copies the new values into ``flat``, so the fast
    functions, which read ``flat``, compute with them; a value of another shape
    is refused. Other keys (the gradients' "dA1", ...) are stored as in any dict.
    ``p.copy()`` and ``copy.copy`` copy ``flat`` (``dict.copy(p)`` gives a plain
    dict of views); pickling and ``copy.deepcopy`` rebuild the views.
    """

    def __init__(self, flat, dims, prefix=""):
        super().__init__()
        self.flat = flat
        self.dims = list(dims)
        self.prefix = prefix
        self._slots = {}
        offset = 0  # the kernels' layout: W1 (n1, n0) row-major, b1, W2, b2, ...
        for l in range(1, len(dims)):
            n, k = int(dims[l]), int(dims[l - 1])
            self._slots[f"{prefix}W{l}"] = (offset, (n, k))
            self._slots[f"{prefix}b{l}"] = (offset + n * k, (n, 1))
            offset += n * (k + 1)
        for key in self._slots:
            dict.__setitem__(self, key, self._view(key))

    def _view(self, key):
        offset, shape = self._slots[key]
        return self.flat[offset : offset + shape[0] * shape[1]].reshape(shape)

    def __setitem__(self, key, value):
        if key not in self._slots:
            dict.__setitem__(self, key, value)
            return
        view = self._view(key)
        value = np.asarray(value)
        if value.shape != view.shape:
            raise ValueError(f"{key} must have shape {view.shape} (the network's layer sizes), got {value.shape}")
        view[...] = value
        dict.__setitem__(self, key, view)

    def update(self, *args, **kwargs):
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other):
        self.update(other)
        return self

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
        return self[key]

    def copy(self):
        new = Parameters(self.flat.copy(), self.dims, self.prefix)
        for key, value in self.items():
            if key not in self._slots:
                dict.__setitem__(new, key, value)
        return new

    __copy__ = copy

    def __reduce__(self):
        extra = {key: value for key, value in self.items() if key not in self._slots}
        return (type(self), (self.flat, self.dims, self.prefix), None, None, iter(extra.items()))


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
        k[len(prefix) :]: v for k, v in parameters.items() if k[len(prefix) : len(prefix) + 1] in ("W", "b")
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


_INIT_SCALES = {
    "deep": lambda n_prev, n: 1 / np.sqrt(n_prev),
    "he": lambda n_prev, n: np.sqrt(2 / n_prev),
    "xavier": lambda n_prev, n: np.sqrt(2 / (n_prev + n)),
}


def initialize_parameters(layer_dims, init="deep", seed=1, dtype=np.float64):
    """W_l ~ randn(n_l, n_{l-1}) * scale, b_l = 0, drawn from ``np.random.RandomState(seed)``.

    scale: "deep" 1/sqrt(n_{l-1}) (the course's), "he" sqrt(2/n_{l-1}),
    "xavier" sqrt(2/(n_{l-1}+n_l)). Drawn with numpy in the reference's order
    (and "deep" as a division, as the course writes it), so both paths start
    from the same numbers; stored in one flat buffer of ``dtype``.
    """
    return _draw_parameters(layer_dims, init, np.random.RandomState(seed).randn, dtype)


def initialize_parameters_deep(layer_dims, dtype=np.float64):
    """The course's initialisation: ``np.random.seed(1)``, ``randn / sqrt(n_{l-1})``, zero b.

    Like the course's function it draws from numpy's global generator, leaving
    it where the reference leaves it.
    """
    np.random.seed(1)
    return _draw_parameters(layer_dims, "deep", np.random.randn, dtype)


def _draw_parameters(layer_dims, init, randn, dtype):
    dims = V.check_layers_dims(layer_dims)
    V.check_choice(init, V.INITIALIZATIONS, "init")
    params = Parameters(np.zeros(n_parameters(dims), resolve_dtype(dtype)), dims)
    for l in range(1, len(dims)):
        draw = randn(dims[l], dims[l - 1])
        if init == "deep":
            params[f"W{l}"][...] = draw / np.sqrt(dims[l - 1])
        else:
            params[f"W{l}"][...] = draw * _INIT_SCALES[init](dims[l - 1], dims[l])
    return params


def activation_codes(hidden_activation="relu", output="sigmoid", loss="cross_entropy"):
    """The kernels' option codes (hidden, output): the hidden layers' activation and the fused output+loss code.

    An identity output has one code, its squared error's, whatever ``loss`` names: predictions name no loss
    (``engine.predict_proba_rows`` defaults it to cross-entropy) and need only the output's activation, while
    training's entry points check the pair first (``validation.check_output_loss``).
    """
    V.check_choice(hidden_activation, V.HIDDEN_ACTIVATIONS, "hidden_activation")
    V.check_choice(output, V.OUTPUTS, "output")
    V.check_choice(loss, V.LOSSES, "loss")
    if output == "identity":
        loss = "mse"
    return K.ACTIVATION_CODES[hidden_activation], K.OUTPUT_CODES[(output, loss)]


def layer_block(work, m, dims, l):
    """Layer l+1's (m, dims[l+1]) block of a flat activation workspace (the kernels' layout)."""
    start = m * int(sum(dims[1 : l + 1]))
    n = int(dims[l + 1])
    return work[start : start + m * n].reshape(m, n)


def samples_as_rows(X, dtype):
    """The sample-major ``(m, n)`` C-contiguous array of X ``(n, m)``: a view when X is F-ordered.

    A read-only X is copied: Numba compiles a separate specialisation of every
    kernel for read-only arrays, which would cost a second cold compile.
    """
    rows = np.ascontiguousarray(X.T, dtype=dtype)
    return rows if rows.flags.writeable else rows.copy()


class ForwardCache(list):
    """The course's caches, ``[((A_prev, W, b), Z), ...]``, as views, plus the fast path's buffers.

    ``fastdnn.L_model_backward`` needs the buffers (sample-major X, the flat
    workspaces, the activation codes), so it takes only caches made here.
    """


def L_model_forward(X, parameters, hidden_activation="relu", output="sigmoid"):
    """[LINEAR -> hidden activation] * (L-1) -> LINEAR -> output activation, in compiled kernels.

    Returns AL (n_L, m) and caches shaped like the reference's: caches[l-1] =
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
    hidden, out = activation_codes(hidden_activation, output)
    Z = np.empty(m * sum(dims[1:]), dtype)
    A = np.empty_like(Z)
    args = (Xs, params.flat, dims_a, hidden, out, Z, A, True)
    compiled(N.forward, args, f"the forward kernels for {dtype}")(*args)
    Zs = [layer_block(Z, m, dims_a, l).T for l in range(L)]
    As = [Xs.T] + [layer_block(A, m, dims_a, l).T for l in range(L)]
    caches = ForwardCache(((As[l], params[f"W{l + 1}"], params[f"b{l + 1}"]), Zs[l]) for l in range(L))
    caches.buffers = (Xs, params, dims_a, Z, A)
    caches.options = (hidden_activation, output)
    return As[L], caches


def compute_cost(AL, Y, parameters=None, lambd=0.0, loss="cross_entropy"):
    """The cost of probabilities AL (K, m) against Y (K, m), as a Python float.

    cross-entropy (the course's for one sigmoid unit, -1/m sum(Y log AL) for a
    softmax), or MSE 1/(2m) sum((AL - Y)^2); plus lambd/(2m) sum ||W_l||^2.
    Probabilities that round to exactly 0 or 1 are clipped to the nearest
    representable interior value instead of taking log(0) (the reference returns
    inf there). The training loop takes its cost from logits and never needs this.
    """
    V.check_choice(loss, V.LOSSES, "loss")
    AL = np.asarray(AL)
    Y = np.asarray(Y)
    if AL.shape != Y.shape or AL.ndim != 2:
        raise ValueError(f"AL and Y must have one (K, m) shape, got {AL.shape} and {Y.shape}")
    m = Y.shape[1]
    if loss == "mse":
        cost = np.sum((AL - Y) ** 2) / (2 * m)
    else:
        finfo = np.finfo(AL.dtype) if AL.dtype in _FLOAT_DTYPES else np.finfo(np.float64)
        p = np.clip(AL, finfo.tiny, 1 - finfo.epsneg)
        if AL.shape[0] == 1:
            cost = -np.sum(Y * np.log(p) + (1 - Y) * np.log1p(-p)) / m
        else:
            cost = -np.sum(Y * np.log(p)) / m
    if lambd:
        if parameters is None:
            raise ValueError("compute_cost needs parameters when lambd > 0 (the L2 term sums their W)")
        cost += lambd / (2 * m) * sum(float(np.sum(np.square(parameters[k]))) for k in parameters if k.startswith("W"))
    return float(cost)


def L_model_backward(AL, Y, caches, hidden_activation="relu", output="sigmoid", loss="cross_entropy", lambd=0.0):
    """Every dW_l, db_l (and dA_l for l >= 1) from fused kernels; dA0 is not computed.

    Returns a dict like the reference's grads ("dW{l}", "db{l}" for l = 1..L,
    "dA{l}" for l = 1..L-1), the dW/db being views into one flat buffer ``.flat``.
    dW includes lambd/m * W when lambd > 0.
    """
    if not isinstance(caches, ForwardCache):
        raise TypeError("caches must come from fastdnn.L_model_forward (the fast path's own)")
    if caches.options != (hidden_activation, output):
        raise ValueError(
            f"caches were made with hidden_activation, output = {caches.options}, "
            f"not {(hidden_activation, output)}"
        )
    Xs, params, dims_a, Z, A = caches.buffers
    m, L = Xs.shape[0], dims_a.shape[0] - 1
    V.check_output_loss(output, loss)
    hidden, out = activation_codes(hidden_activation, output, loss)
    Ys = np.ascontiguousarray(np.asarray(Y).T, dtype=Xs.dtype)
    if Ys.shape != (m, dims_a[-1]):
        raise ValueError(f"Y must have shape ({dims_a[-1]}, {m}), got {np.shape(Y)}")
    grads = Parameters(np.empty_like(params.flat), [int(d) for d in dims_a], prefix="d")
    dA = np.empty_like(A)
    dZ = np.empty_like(A)
    ZL = layer_block(Z, m, dims_a, L - 1)
    args = (Xs, Ys, params.flat, dims_a, hidden, out, ZL, A, dA, dZ, grads.flat, 0, None)  # None: no sample weights
    compiled(N.backward, args, f"the backward kernels for {Xs.dtype}")(*args)
    if lambd:
        for l in range(1, L + 1):
            grads[f"dW{l}"] += Xs.dtype.type(lambd / m) * params[f"W{l}"]
    for l in range(1, L):
        grads[f"dA{l}"] = layer_block(dA, m, dims_a, l - 1).T
    return grads


def _optimizer_step(params, grads, state, opt, learning_rate, beta1=0.9, beta2=0.999, epsilon=1e-8, t=1):
    """New parameters and state after one fused update pass (the arguments are not modified)."""
    V.check_positive(learning_rate, "learning_rate")
    dtype = parameters_dtype(params)
    new = pack_parameters(params, dtype).copy()
    dims_a = np.asarray(new.dims, np.int64)
    g = pack_parameters(grads, dtype, prefix="d").flat
    args = (
        new.flat, g, state, dims_a, 0, opt, dtype(learning_rate), dtype(beta1), dtype(beta2), dtype(epsilon), t
    )
    compiled(N.optimizer_step, args, f"the update kernel for {dtype.__name__}")(*args)
    return new


def update_parameters(params, grads, learning_rate):
    """W -= learning_rate * dW, b -= learning_rate * db in one pass over the flat buffer.

    Returns new parameters (the arguments are not modified), like the reference.
    """
    return _optimizer_step(params, grads, np.empty(0, parameters_dtype(params)), K.OPT_GD, learning_rate)


def initialize_velocity(parameters):
    """Zero momentum state {"dW1": ..., "db1": ...}, flat like the parameters."""
    dtype = parameters_dtype(parameters)
    return Parameters(np.zeros(n_parameters(V.check_parameters(parameters)), dtype), V.check_parameters(parameters), "d")


def initialize_adam(parameters):
    """Zero Adam state (v, s), each {"dW1": ..., "db1": ...}, flat like the parameters."""
    return initialize_velocity(parameters), initialize_velocity(parameters)


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """v = beta v + (1 - beta) grad; param -= learning_rate v. Returns (parameters, v), new arrays."""
    dtype = parameters_dtype(parameters)
    vf = pack_parameters(v, dtype, "d")
    state = np.concatenate([vf.flat, np.zeros_like(vf.flat)])
    new = _optimizer_step(parameters, grads, state, K.OPT_MOMENTUM, learning_rate, beta1=beta)
    return new, Parameters(state[: vf.flat.size].copy(), vf.dims, "d")


def update_parameters_with_adam(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """Adam with bias correction (t counts updates from 1). Returns (parameters, v, s), new arrays."""
    dtype = parameters_dtype(parameters)
    vf, sf = pack_parameters(v, dtype, "d"), pack_parameters(s, dtype, "d")
    P = vf.flat.size
    state = np.concatenate([vf.flat, sf.flat])
    new = _optimizer_step(parameters, grads, state, K.OPT_ADAM, learning_rate, beta1, beta2, epsilon, t)
    return new, Parameters(state[:P].copy(), vf.dims, "d"), Parameters(state[P:].copy(), vf.dims, "d")


def predict_proba(X, parameters, hidden_activation="relu", output="sigmoid"):
    """The network's outputs (n_L, m): probabilities, or an identity output's predicted values."""
    AL, _ = L_model_forward(X, parameters, hidden_activation, output)
    return AL


def predict(X, parameters, hidden_activation="relu", output="sigmoid"):
    """(1, m) predictions: 0/1 where a sigmoid's probability exceeds 0.5, or a softmax's argmax; an identity
    output's values (n_L, m)."""
    AL = predict_proba(X, parameters, hidden_activation, output)
    if output == "identity":
        return AL
    if output == "softmax":
        return np.argmax(AL, axis=0).reshape(1, -1).astype(np.int64)
    return (AL > 0.5).astype(np.int64)
