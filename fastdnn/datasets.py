"""Built-in data: a deterministic synthetic problem, so the main job needs no download.

``make_default_dataset`` draws Gaussian inputs and labels them with a fixed
random "teacher" network (one tanh hidden layer), thresholded at its median so
the classes are balanced. The boundary is nonlinear, so a linear model cannot
fit it but an L-layer network can, and the data are large enough that speed is
visible. Same arguments, same arrays, on any machine (numpy's PCG64 stream).
"""

import numpy as np

# The built-in dataset's size, wherever it is made (the command's default, the README's 300,000 x 200).
DEFAULT_SAMPLES = 300_000
DEFAULT_FEATURES = 200


def make_default_dataset(n_samples=DEFAULT_SAMPLES, n_features=DEFAULT_FEATURES, seed=0, dtype=np.float32,
                         teacher_units=16):
    """Returns ``(X, Y)``: X (n_features, n_samples), Y (1, n_samples) of 0/1, in the course's layout.

    X is an F-ordered view of a sample-major buffer (``X.T`` is C-contiguous),
    which the fast path uses without a copy.
    """
    if n_samples < 2 or n_features < 1:
        raise ValueError(f"need n_samples >= 2 and n_features >= 1, got {n_samples}, {n_features}")
    rng = np.random.default_rng(seed)
    teacher_in = rng.standard_normal((n_features, teacher_units)) / np.sqrt(n_features)
    teacher_out = rng.standard_normal(teacher_units)
    rows = rng.standard_normal((n_samples, n_features)).astype(dtype)
    score = np.tanh(2.0 * (rows @ teacher_in.astype(dtype))) @ teacher_out.astype(dtype)
    labels = (score > np.median(score)).astype(np.int64)
    return rows.T, labels.reshape(1, -1)
