"""The course's L-layer network in plain numpy: the oracle.

Every function here is the course's ("Building your Deep Neural Network: Step by
Step" and its application notebook), with its names, signatures, layout and
caches, written to be read, never to be fast. The fast path in ``fastdnn``
(backed by ``fastdnn.kernels``) has a twin of each public function, and the tests
compare them stage by stage. This module never imports the fast path.

Layout: examples are columns.
    X, A[l]  : (n_l, m)          W[l] : (n_l, n_{l-1})      b[l] : (n_l, 1)
    Y        : (1, m), values 0/1
Parameters live in a dict ``{"W1": ..., "b1": ..., "WL": ..., "bL": ...}``.
ReLU hidden layers, a sigmoid output, cross-entropy cost, gradient descent.
"""

import numpy as np

from fastdnn._validation import check_parameters, check_training_inputs, check_X


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


ACTIVATIONS = {"relu": (relu, relu_backward), "sigmoid": (sigmoid, sigmoid_backward)}


def _activation(name):
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}"
        ) from None


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


def linear_forward(A, W, b):
    """Z = W A + b.  A: (n_{l-1}, m), W: (n_l, n_{l-1}), b: (n_l, 1) -> Z: (n_l, m).

    cache = (A, W, b).
    """
    Z = W.dot(A) + b
    cache = (A, W, b)
    return Z, cache


def linear_activation_forward(A_prev, W, b, activation):
    """A = g(W A_prev + b) for g in {"relu", "sigmoid"}.

    cache = (linear_cache, activation_cache) = ((A_prev, W, b), Z).
    """
    forward, _ = _activation(activation)
    Z, linear_cache = linear_forward(A_prev, W, b)
    A, activation_cache = forward(Z)
    cache = (linear_cache, activation_cache)
    return A, cache


def L_model_forward(X, parameters):
    """[LINEAR -> RELU] * (L-1) -> LINEAR -> SIGMOID.

    Returns AL: (1, m) and caches: a list of L caches from linear_activation_forward.
    """
    caches = []
    A = X
    L = len(parameters) // 2
    for l in range(1, L):
        A_prev = A
        A, cache = linear_activation_forward(
            A_prev, parameters["W" + str(l)], parameters["b" + str(l)], "relu"
        )
        caches.append(cache)
    AL, cache = linear_activation_forward(
        A, parameters["W" + str(L)], parameters["b" + str(L)], "sigmoid"
    )
    caches.append(cache)
    return AL, caches


def compute_cost(AL, Y):
    """Cross-entropy J = -1/m * sum(Y log AL + (1 - Y) log(1 - AL)), a Python float.

    The course's formula: it takes log(0) (and returns inf or nan) when AL
    saturates to exactly 0 or 1.
    """
    m = Y.shape[1]
    cost = (1.0 / m) * (-np.dot(Y, np.log(AL).T) - np.dot(1 - Y, np.log(1 - AL).T))
    return float(np.squeeze(cost))


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


def L_model_backward(AL, Y, caches):
    """Gradients of the cross-entropy cost for every layer.

    Returns grads with "dA{l-1}", "dW{l}", "db{l}" for l = 1..L (dA0 included,
    as the course computes it). dAL = -(Y/AL - (1-Y)/(1-AL)), the course's form.
    """
    grads = {}
    L = len(caches)
    Y = Y.reshape(AL.shape)
    dAL = -(np.divide(Y, AL) - np.divide(1 - Y, 1 - AL))

    current_cache = caches[L - 1]
    dA_prev, dW, db = linear_activation_backward(dAL, current_cache, "sigmoid")
    grads["dA" + str(L - 1)] = dA_prev
    grads["dW" + str(L)] = dW
    grads["db" + str(L)] = db

    for l in reversed(range(L - 1)):
        current_cache = caches[l]
        dA_prev, dW, db = linear_activation_backward(grads["dA" + str(l + 1)], current_cache, "relu")
        grads["dA" + str(l)] = dA_prev
        grads["dW" + str(l + 1)] = dW
        grads["db" + str(l + 1)] = db
    return grads


def update_parameters(params, grads, learning_rate):
    """W[l] -= learning_rate * dW[l], b[l] -= learning_rate * db[l]; returns a new dict."""
    parameters = {key: value.copy() for key, value in params.items()}
    L = len(parameters) // 2
    for l in range(L):
        parameters["W" + str(l + 1)] = parameters["W" + str(l + 1)] - learning_rate * grads["dW" + str(l + 1)]
        parameters["b" + str(l + 1)] = parameters["b" + str(l + 1)] - learning_rate * grads["db" + str(l + 1)]
    return parameters


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


def predict(X, parameters):
    """0/1 predictions (1, m): 1 where the network's probability exceeds 0.5."""
    X = check_X(X)
    check_parameters(parameters, X.shape[0])
    probas, _ = L_model_forward(X.astype(np.float64, copy=False), parameters)
    return (probas > 0.5).astype(np.int64)
