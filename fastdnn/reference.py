"""The course's L-layer network in plain numpy: the oracle.

Every function here is the course's ("Building your Deep Neural Network: Step by
Step", its application notebook, and the "Regularization" and "Optimization
methods" assignments), with its names, signatures, layout and caches, written to
be read, never to be fast. The fast path in ``fastdnn`` (backed by
``fastdnn.kernels``) has a twin of each public function, and the tests compare
them stage by stage. This module never imports the fast path.

Layout: examples are columns.
    X, A[l]  : (n_l, m)          W[l] : (n_l, n_{l-1})      b[l] : (n_l, 1)
    Y        : (1, m) of 0/1 for a sigmoid output; (K, m) one-hot for a softmax output; (K, m) real
               targets for an identity output (regression, with the squared error)
Parameters live in a dict ``{"W1": ..., "b1": ..., "WL": ..., "bL": ...}``.

The course's network (ReLU hidden layers, a sigmoid output, cross-entropy cost,
full-batch gradient descent) is what every function computes with its defaults;
``L_layer_model`` trains exactly that. ``model`` adds the options, each a name
from one table: HIDDEN_ACTIVATIONS, OUTPUTS, LOSSES, OPTIMIZERS, INITIALIZATIONS.
With its defaults it computes what ``L_layer_model`` computes, bit for bit.
"""

import numpy as np

# The course's decay and dropout arguments are checked as the fast path's model checks them.
from fastdnn.options import check_decay, check_dropout_seed, keep_probs

# The option tables are imported to be read here as well: reference.OUTPUTS etc.
from fastdnn.validation import (
    INITIALIZATIONS,
    LOSSES,
    OPTIMIZERS,
    OUTPUTS,
    check_choice,
    check_l2,
    check_output_loss,
    check_layers_dims,
    check_model_options,
    check_parameters,
    check_training_inputs,
    check_X,
)

# ---------------------------------------------------------------------------
# Activations: forward(Z) -> (A, cache = Z); backward(dA, cache) -> dZ.
# Every array is (n_l, m).
# ---------------------------------------------------------------------------

LEAKY_RELU_SLOPE = 0.01


def sigmoid(Z):
    """A = 1 / (1 + exp(-Z)); cache is Z."""
    A = 1 / (1 + np.exp(-Z))
    return A, Z


def relu(Z):
    """A = max(0, Z); cache is Z."""
    A = np.maximum(0, Z)
    return A, Z


def relu_backward(dA, cache):
    """dZ = dA where Z > 0, else 0."""
    Z = cache
    dZ = np.array(dA, copy=True)
    dZ[Z <= 0] = 0
    return dZ


def sigmoid_backward(dA, cache):
    """dZ = dA * s * (1 - s) with s = sigmoid(Z)."""
    Z = cache
    s = 1 / (1 + np.exp(-Z))
    return dA * s * (1 - s)


def leaky_relu(Z):
    """A = Z where Z > 0, else 0.01 * Z; cache is Z."""
    A = np.where(Z > 0, Z, LEAKY_RELU_SLOPE * Z)
    return A, Z


def leaky_relu_backward(dA, cache):
    """dZ = dA where Z > 0, else 0.01 * dA (the slope at Z = 0 is taken as 0.01, like ReLU's 0)."""
    Z = cache
    return np.where(Z > 0, dA, LEAKY_RELU_SLOPE * dA)


def tanh(Z):
    """A = tanh(Z); cache is Z."""
    A = np.tanh(Z)
    return A, Z


def tanh_backward(dA, cache):
    """dZ = dA * (1 - t^2) with t = tanh(Z)."""
    Z = cache
    t = np.tanh(Z)
    return dA * (1 - t**2)


def identity(Z):
    """A = Z: the output of a regression network; cache is Z."""
    return Z, Z


def identity_backward(dA, cache):
    """dZ = dA: the identity's derivative is 1."""
    return dA


def softmax(Z):
    """A[:, j] = exp(Z[:, j]) / sum(exp(Z[:, j])), one column per example; cache is Z.

    Z: (K, m) -> A: (K, m), each column a probability distribution over the K
    classes. The column's max is subtracted first: the result is the same and
    exp never overflows.
    """
    e = np.exp(Z - np.max(Z, axis=0, keepdims=True))
    A = e / np.sum(e, axis=0, keepdims=True)
    return A, Z


def softmax_backward(dA, cache):
    """dZ = A * (dA - sum(dA * A, axis=0)) with A = softmax(Z): the Jacobian, column by column.

    Used for softmax with the MSE loss; with cross-entropy the product of the
    Jacobian and dA collapses to A - Y, which L_model_backward uses directly.
    """
    A, _ = softmax(cache)
    return A * (dA - np.sum(dA * A, axis=0, keepdims=True))


# The option names (OUTPUTS, LOSSES, OPTIMIZERS, INITIALIZATIONS, and the keys
# of HIDDEN_ACTIVATIONS) are fastdnn.validation's tables, shared with the fast
# path so that both accept the same names and reject the rest with the same error.
HIDDEN_ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "leaky_relu": (leaky_relu, leaky_relu_backward),
    "tanh": (tanh, tanh_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
}
# Every activation a layer can have: the hidden ones and the outputs.
ACTIVATIONS = {**HIDDEN_ACTIVATIONS, "softmax": (softmax, softmax_backward), "identity": (identity, identity_backward)}


def _activation(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


# ---------------------------------------------------------------------------
# Dropout: the "Regularization" assignment's inverted dropout, its masks drawn from a hash
# ---------------------------------------------------------------------------
#
# The course draws D = (np.random.rand(n_l, m) < keep_prob) from a random stream. Here each bit is a
# function of where it is instead (the run's seed, the optimizer step counted from 1, the hidden layer, the
# example's column in X, the unit), so the fast path, which splits a batch across threads, MPI ranks and
# blocks read from disk, draws the same masks as this reference (tests/test_dropout.py holds them equal bit
# for bit): fastdnn.kernels.masks computes the same 32-bit hash, whose constants these are.

_MASK32 = np.uint64(0xFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B9)
_M1 = np.uint64(0x7FEB352D)
_M2 = np.uint64(0x846CA68B)


def _mix(x):
    """A 32-bit integer hash (xor-shift / multiply), elementwise on uint64 values below 2^32."""
    x = x & _MASK32
    x = x ^ (x >> np.uint64(16))
    x = (x * _M1) & _MASK32
    x = x ^ (x >> np.uint64(15))
    x = (x * _M2) & _MASK32
    x = x ^ (x >> np.uint64(16))
    return x


def dropout_mask(seed, step, layer, rows, n_units, keep_prob):
    """D (n_units, len(rows)) of 0/1: 1 where unit j of the example in column rows[i] of X is kept in hidden
    layer ``layer`` (1..L-1) at optimizer step ``step`` (from 1) of the run seeded ``seed``.

    Each unit is kept with probability keep_prob (exactly round(keep_prob 2^32) / 2^32), independently of
    the others, as the course's np.random.rand(n_units, m) < keep_prob.
    """
    step = np.uint64(step)
    k = _mix(np.uint64(seed))
    k = _mix(k ^ (step & _MASK32))
    k = _mix(k ^ (step >> np.uint64(32)))
    k = _mix(k ^ np.uint64(layer))
    r = _mix(k ^ np.asarray(rows, dtype=np.int64).astype(np.uint64))  # one key per example
    units = np.arange(n_units, dtype=np.uint64)
    h = _mix(r[None, :] + units[:, None] * _GOLDEN)
    threshold = min(2**32, max(0, int(round(float(keep_prob) * 2**32))))
    return (h < np.uint64(threshold)).astype(np.int64)


def dropout_masks(seed, step, rows, layers_dims, keep_prob):
    """[D1, ..., D_{L-1}]: dropout_mask of every hidden layer of ``layers_dims`` for the examples in columns
    ``rows`` of X; keep_prob one number for every hidden layer or one per hidden layer."""
    keep = keep_probs(keep_prob, len(layers_dims) - 2)
    return [dropout_mask(seed, step, l, rows, layers_dims[l], keep[l - 1]) for l in range(1, len(layers_dims) - 1)]


def dropout_forward(A, D, keep_prob):
    """The course's inverted dropout: shut down the units D holds 0 for, scale the others by 1 / keep_prob."""
    A = A * D
    A = A / keep_prob
    return A


def dropout_backward(dA, D, keep_prob):
    """The same mask on the way back: dA * D / keep_prob."""
    dA = dA * D
    dA = dA / keep_prob
    return dA


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------


def initialize_parameters_deep(layer_dims):
    """W[l] ~ randn(n_l, n_{l-1}) / sqrt(n_{l-1}), b[l] = 0, after np.random.seed(1).

    This is the initialisation of the course's application notebook, so a run
    reproduces its published cost curve on the cat data.
    """
    np.random.seed(1)
    parameters = {}
    L = len(layer_dims)
    for l in range(1, L):
        parameters["W" + str(l)] = np.random.randn(layer_dims[l], layer_dims[l - 1]) / np.sqrt(
            layer_dims[l - 1]
        )
        parameters["b" + str(l)] = np.zeros((layer_dims[l], 1))
    return parameters


def initialize_parameters(layer_dims, init="deep", seed=1):
    """W[l] = randn(n_l, n_{l-1}) * scale, b[l] = 0, drawn for l = 1..L in order.

    The draws come from ``np.random.RandomState(seed)``, never the global state.
    scale: "deep" 1 / sqrt(n_{l-1}) (the application notebook's; with seed=1 the
    result is bit-identical to initialize_parameters_deep), "he" sqrt(2 / n_{l-1}),
    "xavier" sqrt(2 / (n_{l-1} + n_l)) (Glorot normal).
    """
    check_choice(init, INITIALIZATIONS, "init")
    layer_dims = check_layers_dims(layer_dims)
    rng = np.random.RandomState(seed)
    parameters = {}
    for l in range(1, len(layer_dims)):
        n, n_prev = layer_dims[l], layer_dims[l - 1]
        W = rng.randn(n, n_prev)
        if init == "deep":
            # A division, as initialize_parameters_deep writes it: multiplying by
            # 1 / sqrt(n) can differ in the last bit.
            W = W / np.sqrt(n_prev)
        elif init == "he":
            W = W * np.sqrt(2 / n_prev)
        else:
            W = W * np.sqrt(2 / (n_prev + n))
        parameters["W" + str(l)] = W
        parameters["b" + str(l)] = np.zeros((n, 1))
    return parameters


# ---------------------------------------------------------------------------
# Forward propagation
# ---------------------------------------------------------------------------


def linear_forward(A, W, b):
    """Z = W A + b.  A: (n_{l-1}, m), W: (n_l, n_{l-1}), b: (n_l, 1) -> Z: (n_l, m).

    cache = (A, W, b).
    """
    Z = W.dot(A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    """A = g(W A_prev + b) for g any name in ACTIVATIONS ("relu", "sigmoid", ...).

    cache = (linear_cache, activation_cache) = ((A_prev, W, b), Z).
    """
    forward, _ = _activation(activation)
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = forward(Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters, hidden_activation="relu", output="sigmoid", keep_prob=1.0, masks=None):
    """[LINEAR -> hidden_activation] * (L-1) -> LINEAR -> output; by default RELU and SIGMOID.

    Returns AL: (1, m) for a sigmoid output, (K, m) of column-wise class
    probabilities for a softmax one, (K, m) of predicted values for an identity
    one, and caches: a list of L caches from linear_activation_forward.

    keep_prob < 1 (one number, or one per hidden layer) trains with inverted dropout: hidden layer l's
    A is dropout_forward(A, masks[l - 1], keep_prob), masks the layers' D (dropout_masks), and its cache
    gains (D, keep_prob), which L_model_backward reads. A layer of keep_prob 1 is left as it is.
    """
    check_choice(hidden_activation, HIDDEN_ACTIVATIONS, "hidden_activation")
    check_choice(output, OUTPUTS, "output")
    caches = []
    A = X
    L = len(parameters) // 2
    keep = keep_probs(keep_prob, L - 1)
    if masks is None and any(p < 1 for p in keep):
        raise ValueError("keep_prob < 1 drops units: give their masks (masks=dropout_masks(...))")
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(
            A_prev, parameters["W" + str(l)], parameters["b" + str(l)], hidden_activation
        )
        if keep[l - 1] < 1:
            D = masks[l - 1]
            A = dropout_forward(A, D, keep[l - 1])
            cache = (*cache, (D, keep[l - 1]))
        caches.append(cache)
    AL, cache = linear_activation_forward(
        A, parameters["W" + str(L)], parameters["b" + str(L)], output
    )
    caches.append(cache)
    return AL, caches


# ---------------------------------------------------------------------------
# Cost
# ---------------------------------------------------------------------------


def l2_regularization_cost(parameters, lambd, m):
    """lambd / (2m) * sum over layers of sum(W[l]^2), the "Regularization" assignment's term."""
    squares = 0.0
    L = len(parameters) // 2
    for l in range(1, L + 1):
        squares += np.sum(np.square(parameters["W" + str(l)]))
    return float((1.0 / m) * (lambd / 2) * squares)


def compute_cost(AL, Y, parameters=None, lambd=0.0, loss="cross_entropy", weights=None):
    """The cost J of predictions AL against labels Y, a Python float; m = Y.shape[1].

    loss "cross_entropy": with AL of one row (sigmoid output) the course's
    J = -1/m * sum(Y log AL + (1 - Y) log(1 - AL)); with AL (K, m), K > 1 (softmax
    output, Y one-hot (K, m)) J = -1/m * sum(Y log AL).
    loss "mse": J = 1/(2m) * sum((AL - Y)^2), half the squared error summed over the
    K outputs, averaged over the m examples (for an identity output, regression's cost).
    With lambd > 0, plus lambd/(2m) * sum_l sum(W[l]^2) (parameters required).

    The cross-entropy formulas are the course's: they take log(0) (and return
    inf or nan) when AL saturates to exactly 0 or 1.

    weights (m,): sample weights; J is then the weighted mean of the examples'
    costs, sum_i w_i J_i / sum_i w_i, and the L2 term's m is sum_i w_i (so that
    integer weights cost what repeated examples would).
    """
    check_choice(loss, LOSSES, "loss")
    check_l2(lambd, "lambd")
    m = Y.shape[1]
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if loss == "mse":
            per_example = 0.5 * np.sum(np.square(AL - Y), axis=0)
        elif AL.shape[0] == 1:
            per_example = -(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))[0]
        else:
            per_example = -np.sum(Y * np.log(AL), axis=0)
        total = np.sum(weights)
        cost = float(np.sum(weights * per_example) / total)
        if lambd > 0:
            cost = cost + l2_regularization_cost(parameters, lambd, total)
        return cost
    if loss == "mse":
        cost = float(1.0 / (2 * m) * np.sum(np.square(AL - Y)))
    elif AL.shape[0] == 1:
        cost = (1.0 / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
        cost = float(np.squeeze(cost))
    else:
        cost = float(-1.0 / m * np.sum(Y * np.log(AL)))
    if lambd > 0:
        if parameters is None:
            raise ValueError("compute_cost needs parameters when lambd > 0: the L2 term sums their W")
        cost = cost + l2_regularization_cost(parameters, lambd, m)
    return cost


# ---------------------------------------------------------------------------
# Backward propagation
# ---------------------------------------------------------------------------


def linear_backward(dZ, cache):
    """dW = dZ A_prev^T / m, db = sum(dZ, axis=1) / m, dA_prev = W^T dZ."""
    A_prev, W, b = cache
    m = A_prev.shape[1]
    dW = 1.0 / m * np.dot(dZ, A_prev.T)
    db = 1.0 / m * np.sum(dZ, axis=1, keepdims=True)
    dA_prev = np.dot(W.T, dZ)
    return dA_prev, dW, db


def linear_activation_backward(dA, cache, activation):
    """dZ = dA * g'(Z), then linear_backward; returns (dA_prev, dW, db)."""
    _, backward = _activation(activation)
    linear_cache, activation_cache = cache
    dZ = backward(dA, activation_cache)
    return linear_backward(dZ, linear_cache)


def L_model_backward(
    AL, Y, caches, hidden_activation="relu", output="sigmoid", loss="cross_entropy", lambd=0.0, weights=None
):
    """Gradients of the cost for every layer.

    Returns grads with "dA{l-1}", "dW{l}", "db{l}" for l = 1..L (dA0 included,
    as the course computes it). The output layer starts from
      sigmoid + cross_entropy: dAL = -(Y/AL - (1-Y)/(1-AL)), the course's form,
                               then sigmoid_backward;
      softmax + cross_entropy: dZL = AL - Y directly;
      any output + mse:        dAL = AL - Y, then the output's backward
                               (for the identity output, regression's: dZL = dAL = AL - Y).
    With lambd > 0, dW[l] = 1/m dZ[l] A[l-1]^T + lambd/m * W[l] (db unchanged).
    weights (m,): the gradients of compute_cost's weighted mean: example i's
    output gradient counts m w_i / sum(w) times (linear_backward divides by m),
    and the L2 term's m is sum(w).
    A hidden layer whose cache holds a dropout mask (L_model_forward with keep_prob < 1) takes the course's
    dropout backward first: dA = dropout_backward(dA, D, keep_prob); grads["dA{l}"] stay W^T dZ, the
    gradient with respect to the activations the next layer saw (the dropped ones).
    """
    check_choice(hidden_activation, HIDDEN_ACTIVATIONS, "hidden_activation")
    check_output_loss(output, loss)
    check_l2(lambd, "lambd")
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)

    m = AL.shape[1]
    counts = 1.0
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64).reshape(1, -1)
        counts = weights * (m / np.sum(weights))
    current_cache = caches[L - 1]
    if output == "softmax" and loss == "cross_entropy":
        # The softmax Jacobian applied to the cross-entropy's dAL = -Y/AL is AL - Y.
        linear_cache, _ = current_cache
        dZL = AL - Y
        if weights is not None:
            dZL = dZL * counts
        dA_prev, dW, db = linear_backward(dZL, linear_cache)
    else:
        if loss == "cross_entropy":
            dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))
        else:
            dAL = AL - Y
        if weights is not None:
            dAL = dAL * counts
        dA_prev, dW, db = linear_activation_backward(dAL, current_cache, output)
    grads["dA" + str(L - 1)] = dA_prev
    grads["dW" + str(L)] = dW
    grads["db" + str(L)] = db

    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA = grads["dA" + str(l + 1)]
        if len(current_cache) == 3:
            D, keep_prob = current_cache[2]
            dA = dropout_backward(dA, D, keep_prob)
        dA_prev, dW, db = linear_activation_backward(dA, current_cache[:2], hidden_activation)
        grads["dA" + str(l)] = dA_prev
        grads["dW" + str(l + 1)] = dW
        grads["db" + str(l + 1)] = db

    if lambd > 0:
        if weights is not None:
            m = np.sum(weights)
        for l in range(1, L + 1):
            _, W, _ = caches[l - 1][0]
            grads["dW" + str(l)] = grads["dW" + str(l)] + lambd / m * W
    return grads


# ---------------------------------------------------------------------------
# Optimizers: each returns new dicts and never writes into its arguments.
# v and s have the gradients' keys "dW1", "db1", ...
# ---------------------------------------------------------------------------


def update_parameters(params, grads, learning_rate):
    """W[l] -= learning_rate * dW[l], b[l] -= learning_rate * db[l]; returns a new dict."""
    parameters = {key: value.copy() for key, value in params.items()}
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


def initialize_velocity(parameters):
    """v["dW{l}"], v["db{l}"]: zeros shaped like W[l], b[l]."""
    v = {}
    L = len(parameters) // 2
    for l in range(1, L + 1):
        v["dW" + str(l)] = np.zeros_like(parameters["W" + str(l)])
        v["db" + str(l)] = np.zeros_like(parameters["b" + str(l)])
    return v


def update_parameters_with_momentum(parameters, grads, v, beta, learning_rate):
    """v = beta v + (1 - beta) grad; param -= learning_rate * v.  Returns (parameters, v), both new."""
    new_parameters = {}
    new_v = {}
    L = len(parameters) // 2
    for l in range(1, L + 1):
        for p in ("W", "b"):
            key, dkey = p + str(l), "d" + p + str(l)
            new_v[dkey] = beta * v[dkey] + (1 - beta) * grads[dkey]
            new_parameters[key] = parameters[key] - learning_rate * new_v[dkey]
    return new_parameters, new_v


def initialize_adam(parameters):
    """(v, s): first and second moment estimates, zeros shaped like each W[l], b[l]."""
    v = initialize_velocity(parameters)
    s = initialize_velocity(parameters)
    return v, s


def update_parameters_with_adam(
    parameters, grads, v, s, t, learning_rate=0.01, beta1=0.9, beta2=0.999, epsilon=1e-8
):
    """One Adam step; t counts the steps taken, from 1.  Returns (parameters, v, s), all new.

    v = beta1 v + (1 - beta1) g,  s = beta2 s + (1 - beta2) g^2,
    v_hat = v / (1 - beta1^t),  s_hat = s / (1 - beta2^t),
    param -= learning_rate * v_hat / (sqrt(s_hat) + epsilon).
    """
    new_parameters = {}
    new_v = {}
    new_s = {}
    L = len(parameters) // 2
    for l in range(1, L + 1):
        for p in ("W", "b"):
            key, dkey = p + str(l), "d" + p + str(l)
            new_v[dkey] = beta1 * v[dkey] + (1 - beta1) * grads[dkey]
            new_s[dkey] = beta2 * s[dkey] + (1 - beta2) * np.square(grads[dkey])
            v_corrected = new_v[dkey] / (1 - beta1**t)
            s_corrected = new_s[dkey] / (1 - beta2**t)
            new_parameters[key] = parameters[key] - learning_rate * v_corrected / (
                np.sqrt(s_corrected) + epsilon
            )
    return new_parameters, new_v, new_s


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def random_mini_batches(X, Y, mini_batch_size, rng, weights=None, columns=False):
    """Shuffle the columns once with ``rng.permutation(m)`` and cut them into mini-batches.

    X: (n_x, m), Y: (n_y, m), rng: a numpy Generator. Returns a list of
    (X_b, Y_b), consecutive chunks of mini_batch_size shuffled columns; the
    last one holds the m % mini_batch_size left over, when there are any.
    With ``weights`` (m,) each mini-batch is (X_b, Y_b, weights_b), the weights
    shuffled with their examples. With ``columns`` each is (X_b, Y_b, weights_b or
    None, columns_b), columns_b the batch's examples' columns in X (what dropout's
    masks are keyed by).
    """
    m = X.shape[1]
    permutation = rng.permutation(m)
    shuffled_X = X[:, permutation]
    shuffled_Y = Y[:, permutation]
    mini_batches = []
    for start in range(0, m, mini_batch_size):
        end = start + mini_batch_size
        if columns:
            w_b = None if weights is None else weights[permutation][start:end]
            mini_batches.append((shuffled_X[:, start:end], shuffled_Y[:, start:end], w_b, permutation[start:end]))
        elif weights is None:
            mini_batches.append((shuffled_X[:, start:end], shuffled_Y[:, start:end]))
        else:
            mini_batches.append((shuffled_X[:, start:end], shuffled_Y[:, start:end], weights[permutation][start:end]))
    return mini_batches


def update_lr(learning_rate0, epoch_num, decay_rate):
    """The course's learning-rate decay: learning_rate0 / (1 + decay_rate * epoch_num), written as the course
    writes it."""
    learning_rate = 1 / (1 + decay_rate * epoch_num) * learning_rate0
    return learning_rate


def schedule_lr_decay(learning_rate0, epoch_num, decay_rate, time_interval=1000):
    """The course's scheduled decay: learning_rate0 / (1 + decay_rate * floor(epoch_num / time_interval)),
    the rate lowered once every time_interval epochs."""
    learning_rate = 1 / (1 + decay_rate * np.floor(epoch_num / time_interval)) * learning_rate0
    return learning_rate


def L_layer_model(X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False):
    """Full-batch gradient descent for num_iterations steps.

    Returns (parameters, costs) with costs[i] the cost before step i, one per
    iteration (the course printed every 100th).
    """
    X, Y, layers_dims = check_training_inputs(X, Y, layers_dims, learning_rate, num_iterations)
    X = X.astype(np.float64, copy=False)
    Y = Y.astype(np.float64, copy=False)
    costs = []
    parameters = initialize_parameters_deep(layers_dims)
    for i in range(num_iterations):
        AL, caches = L_model_forward(X, parameters)
        cost = compute_cost(AL, Y)
        grads = L_model_backward(AL, Y, caches)
        parameters = update_parameters(parameters, grads, learning_rate)
        if print_cost and (i % 100 == 0 or i == num_iterations - 1):
            print(f"Cost after iteration {i}: {cost:.6f}")
        costs.append(cost)
    return parameters, costs


def model(
    X,
    Y,
    layers_dims,
    learning_rate=0.0075,
    num_epochs=3000,
    mini_batch_size=None,
    optimizer="gd",
    beta=0.9,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    lambd=0.0,
    hidden_activation="relu",
    output="sigmoid",
    loss="cross_entropy",
    init="deep",
    seed=1,
    parameters=None,
    frozen_layers=0,
    print_cost=False,
    decay_rate=None,
    time_interval=None,
    sample_weight=None,
    keep_prob=1.0,
    dropout_seed=None,
):
    """Train an L-layer network with the chosen options for num_epochs passes over the data.

    X: (n_x, m). Y: (1, m) of 0/1 for output="sigmoid"; one-hot (K, m) with
    K = layers_dims[-1] >= 2 for output="softmax"; real targets (K, m) for
    output="identity" (regression), which takes loss="mse" only.
    Starts from initialize_parameters(layers_dims, init, seed), or from a copy
    of ``parameters`` when given. Each epoch is one full batch in the original
    column order (mini_batch_size=None, no shuffling) or the mini-batches of
    random_mini_batches with one Generator, np.random.default_rng(seed), drawn
    from once per epoch. Each batch is one forward, cost, backward and
    optimizer step ("gd", "momentum" with beta, "adam" with beta1, beta2,
    epsilon and t = 1, 2, ... counting the steps). Layers 1..frozen_layers are
    never updated.

    Returns (parameters, costs): costs[e] is epoch e's cost, the mean over its
    batches of the cost before each step, weighted by the batch's size. With the
    defaults this is L_layer_model(X, Y, layers_dims, learning_rate, num_epochs),
    bit for bit. Raises FloatingPointError when a cost is not finite.

    decay_rate (None: no decay) is the course's learning-rate decay, as its
    model() applies it: after epoch i's minibatches, learning_rate =
    update_lr(learning_rate0, i, decay_rate), or with time_interval
    schedule_lr_decay(learning_rate0, i, decay_rate, time_interval). So epoch 0
    trains at learning_rate0 and epoch i + 1 at the rate after epoch i: epochs 0
    and 1 both at learning_rate0.

    sample_weight (m,) of non-negative numbers, not all 0 (None: every example
    weighs 1): each batch's cost and gradients are weighted means
    (compute_cost, L_model_backward), a batch whose weights are all 0 takes no
    step, and costs[e] weights each batch by its share of the total weight.

    keep_prob (one number in (0, 1], or one per hidden layer; 1: none) is the course's inverted dropout
    on the hidden layers while training (L_model_forward's): the masks of the step counted from 1 over the
    run's steps (a batch of weight 0 takes none), dropout_masks(dropout_seed, step, columns, ...) with
    columns the batch's examples' columns in X; dropout_seed None is seed. The cost is the dropped
    network's, as the course's; predict never drops.
    """
    X, Y, layers_dims = check_model_options(
        X, Y, layers_dims, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2,
        epsilon, lambd, hidden_activation, output, loss, init, frozen_layers, seed, parameters,
    )
    decay_rate, time_interval = check_decay(decay_rate, time_interval)
    keep = keep_probs(keep_prob, len(layers_dims) - 2)
    dropout = any(p < 1 for p in keep)
    dropout_seed = check_dropout_seed(dropout_seed, seed)
    X = X.astype(np.float64, copy=False)
    Y = Y.astype(np.float64, copy=False)
    m = X.shape[1]
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if sample_weight.shape != (m,) or not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0) \
                or not np.any(sample_weight > 0):
            raise ValueError(f"sample_weight must hold {m} finite non-negative numbers, not all 0")
    learning_rate0 = learning_rate  # the original learning rate
    if parameters is None:
        parameters = initialize_parameters(layers_dims, init, seed)
    else:
        parameters = {key: np.array(value, dtype=np.float64) for key, value in parameters.items()}
    rng = np.random.default_rng(seed)
    if optimizer == "momentum":
        v = initialize_velocity(parameters)
    elif optimizer == "adam":
        v, s = initialize_adam(parameters)
        t = 0
    costs = []
    step = 0  # the optimizer steps taken: the next batch trains in step + 1
    for i in range(num_epochs):
        if mini_batch_size is None:
            mini_batches = [(X, Y, sample_weight, np.arange(m))]
        else:
            mini_batches = random_mini_batches(X, Y, mini_batch_size, rng, sample_weight, columns=True)
        epoch_cost = 0.0
        for X_b, Y_b, w_b, columns in mini_batches:
            if w_b is not None and not np.any(w_b > 0):
                continue  # examples of weight 0 alone: no step
            step = step + 1
            masks = dropout_masks(dropout_seed, step, columns, layers_dims, keep_prob) if dropout else None
            AL, caches = L_model_forward(X_b, parameters, hidden_activation, output, keep_prob, masks)
            cost = compute_cost(AL, Y_b, parameters, lambd, loss, w_b)
            if not np.isfinite(cost):
                raise FloatingPointError(
                    f"the cost became {cost} at epoch {i}; try a smaller learning_rate"
                )
            grads = L_model_backward(AL, Y_b, caches, hidden_activation, output, loss, lambd, w_b)
            if optimizer == "gd":
                updated = update_parameters(parameters, grads, learning_rate)
            elif optimizer == "momentum":
                updated, v = update_parameters_with_momentum(parameters, grads, v, beta, learning_rate)
            else:
                t = t + 1
                updated, v, s = update_parameters_with_adam(
                    parameters, grads, v, s, t, learning_rate, beta1, beta2, epsilon
                )
            for l in range(1, frozen_layers + 1):
                updated["W" + str(l)] = parameters["W" + str(l)]
                updated["b" + str(l)] = parameters["b" + str(l)]
            parameters = updated
            # The weight m_b / m is computed first so that a full batch adds
            # cost * 1.0, exactly L_layer_model's cost.
            if w_b is None:
                epoch_cost += cost * (X_b.shape[1] / m)
            else:
                epoch_cost += cost * (np.sum(w_b) / np.sum(sample_weight))
        if decay_rate is not None:
            if time_interval is None:
                learning_rate = update_lr(learning_rate0, i, decay_rate)
            else:
                learning_rate = schedule_lr_decay(learning_rate0, i, decay_rate, time_interval)
        if print_cost and i % 100 == 0:
            print(f"Cost after epoch {i}: {epoch_cost:.6f}")
            if decay_rate is not None:
                print(f"learning rate after epoch {i}: {learning_rate:f}")
        costs.append(epoch_cost)
    return parameters, costs


def predict(X, parameters, hidden_activation="relu", output="sigmoid"):
    """Predictions (1, m): for a sigmoid output 0/1, 1 where the probability exceeds 0.5;
    for a softmax output the class index, the row of the largest probability; for an
    identity output the predicted values themselves, (K, m)."""
    X = check_X(X)
    check_parameters(parameters, X.shape[0])
    probas, _ = L_model_forward(X.astype(np.float64, copy=False), parameters, hidden_activation, output)
    if output == "identity":
        return probas
    if output == "softmax":
        return np.argmax(probas, axis=0).reshape(1, -1).astype(np.int64)
    return (probas > 0.5).astype(np.int64)
