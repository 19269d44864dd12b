"""Gradient checking: the reference's backward pass against central differences of its cost.

The course's "Gradient Checking" assignment, generalised to every option of
``fastdnn.reference``: each W and b entry is nudged by +-epsilon, the cost is
recomputed with the reference's forward pass, and
    numeric dtheta = (J(theta + eps) - J(theta - eps)) / (2 eps),
which differs from the true derivative by O(eps^2) plus the roundoff of the two
costs divided by 2 eps. Keep every pre-activation of a ReLU-type layer further
than eps * (size of its inputs) from 0, or the two nudged costs straddle a kink.
With dropout (``keep_prob`` < 1) the masks are held fixed (``masks``: the reference's ``dropout_masks`` of
one step), so the cost is one smooth function of the parameters and its backward pass, the course's
dropout backward included, is checked like any other.
This module imports the reference only, never the fast path.
"""

import numpy as np

from fastdnn import reference


def _cost(X, Y, parameters, hidden_activation, output, loss, lambd, keep_prob=1.0, masks=None):
    AL, _ = reference.L_model_forward(X, parameters, hidden_activation, output, keep_prob, masks)
    return reference.compute_cost(AL, Y, parameters, lambd, loss)


def numerical_gradients(
    X, Y, parameters, hidden_activation="relu", output="sigmoid", loss="cross_entropy", lambd=0.0,
    epsilon=1e-7, keep_prob=1.0, masks=None,
):
    """Central-difference gradients {"dW1": (n_1, n_0), "db1": (n_1, 1), ...} of compute_cost.

    X: (n_0, m); Y: (1, m) or one-hot (K, m); parameters are not modified. keep_prob < 1: through
    dropout with the fixed ``masks`` (reference.dropout_masks: one D per hidden layer).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    nudged = {key: np.array(value, dtype=np.float64) for key, value in parameters.items()}
    grads = {}
    for key, theta in nudged.items():
        dtheta = np.zeros_like(theta)
        for index in np.ndindex(theta.shape):
            original = theta[index]
            theta[index] = original + epsilon
            J_plus = _cost(X, Y, nudged, hidden_activation, output, loss, lambd, keep_prob, masks)
            theta[index] = original - epsilon
            J_minus = _cost(X, Y, nudged, hidden_activation, output, loss, lambd, keep_prob, masks)
            theta[index] = original
            dtheta[index] = (J_plus - J_minus) / (2 * epsilon)
        grads["d" + key] = dtheta
    return grads


def gradient_check(
    X, Y, parameters, hidden_activation="relu", output="sigmoid", loss="cross_entropy", lambd=0.0,
    epsilon=1e-7, keep_prob=1.0, masks=None,
):
    """||g - g_num|| / (||g|| + ||g_num||) over every W and b entry, a Python float.

    g is reference.L_model_backward's gradient, g_num numerical_gradients';
    the course flags differences above about 1e-7. Returns 0.0 when both are 0.
    keep_prob < 1: both through dropout with the same fixed ``masks`` (numerical_gradients').
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    AL, caches = reference.L_model_forward(X, parameters, hidden_activation, output, keep_prob, masks)
    grads = reference.L_model_backward(AL, Y, caches, hidden_activation, output, loss, lambd)
    numeric = numerical_gradients(X, Y, parameters, hidden_activation, output, loss, lambd, epsilon, keep_prob,
                                  masks)
    keys = sorted(numeric)
    g = np.concatenate([grads[key].ravel() for key in keys])
    g_num = np.concatenate([numeric[key].ravel() for key in keys])
    denominator = np.linalg.norm(g) + np.linalg.norm(g_num)
    if denominator == 0:
        return 0.0
    return float(np.linalg.norm(g - g_num) / denominator)
