"""Label conventions: how classes become output units and targets, and how examples are split.

One home for the rules every entry point shares: the output layer a number of
classes gets (``output_for``, ``output_units``), the targets as rows
(``class_targets``; a regressor's real targets, ``value_targets``), the most
probable class of an output row (``predicted_index``), a regressor's score
(``r2_score``, scikit-learn's), the held-out split of early stopping and the
command (``split_rows``) and the course's k folds (``k_folds``, used by
``cross_val_score`` and the sweeps).
"""

import numpy as np

from fastdnn import validation as V


def output_for(n_classes, output="auto"):
    """The output layer for ``n_classes`` labels (the ``output`` option): "auto" is one sigmoid unit for two
    classes and a softmax for more; "softmax" is a softmax over two classes too; "sigmoid" (one unit)
    encodes two classes only."""
    if output == "auto":
        return "sigmoid" if n_classes == 2 else "softmax"
    if output == "sigmoid" and n_classes != 2:
        raise ValueError(f"output='sigmoid' is one unit, which encodes two classes; these labels have {n_classes}: "
                         "use 'softmax' or 'auto'")
    return output


def output_units(n_classes, output="auto"):
    """n_L: 1 for one sigmoid unit, else one per class."""
    return 1 if output_for(n_classes, output) == "sigmoid" else n_classes


def class_targets(index, n_classes, dtype=np.float64, units=None):
    """Targets as rows (m, n_L) from class indices: 0/1 in one column for one output unit (``units``, by
    default ``output_units(n_classes)``), one-hot over the classes otherwise."""
    index = np.asarray(index)
    if (output_units(n_classes) if units is None else units) == 1:
        return index.reshape(-1, 1).astype(dtype)
    return np.eye(n_classes, dtype=dtype)[index]


def value_targets(values, n_outputs, dtype=np.float64, units=None):
    """A regressor's targets as rows (m, n_outputs) of ``dtype`` from its values, (m,) or (m, n_outputs); the
    arguments are ``class_targets``' (a ``fastdnn.stream.Feed`` calls either), ``units`` n_outputs itself."""
    return np.asarray(values).reshape(-1, n_outputs if units is None else units).astype(dtype)


def r2_score(y_true, y_pred, sample_weight=None):
    """The coefficient of determination as scikit-learn's ``r2_score`` computes it (``RegressorMixin.score``):
    per target 1 - sum (y - p)^2 / sum (y - mean y)^2, then the mean over targets (uniform average), in float64;
    a constant target scores 1.0 when predicted exactly, else 0.0; fewer than two examples give NaN, as there.
    With ``sample_weight`` each sum weighs its examples and the mean is the weighted mean, as there."""
    y_true = np.asarray(y_true, np.float64)
    y_pred = np.asarray(y_pred, np.float64)
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(y_true.shape)
    if y_true.shape[0] < 2:
        return float("nan")
    w = np.ones((y_true.shape[0], 1)) if sample_weight is None else np.asarray(sample_weight, np.float64).reshape(-1, 1)
    residual = np.sum(w * (y_true - y_pred) ** 2, axis=0)
    mean = np.sum(w * y_true, axis=0) / np.sum(w)
    spread = np.sum(w * (y_true - mean) ** 2, axis=0)
    scores = np.where(spread > 0, 1 - residual / np.where(spread > 0, spread, 1), np.where(residual == 0, 1.0, 0.0))
    return float(np.mean(scores))


def predicted_index(P):
    """The most probable class of each row of outputs P (m, n_L): P > 0.5 for one sigmoid unit, else argmax."""
    return (P[:, 0] > 0.5).astype(np.int64) if P.shape[1] == 1 else np.argmax(P, axis=1)


def split_rows(m, fraction, seed):
    """(training rows, held-out rows) of m examples, ``fraction`` held out, each sorted.

    One seeded shuffle, the same for the estimator's early stopping and the
    command's validation split, so both train on the same examples.
    """
    n_held = max(1, int(round(fraction * m)))
    if not 0 < fraction < 1 or m - n_held < 1:
        raise ValueError(f"cannot hold out a fraction {fraction} of {m} examples: at least 1 must be held out and 1 left to train on")
    perm = np.random.default_rng(seed).permutation(m)
    # Sorted: gathering rows in order is one sequential pass over X.
    return np.sort(perm[n_held:]), np.sort(perm[:n_held])


def k_folds(m, k, random_state=0):
    """The course's k folds of m samples as [(training rows, held-out rows)]: a seeded shuffle split into k
    near-equal parts, each held out in turn (``cross_val_score``'s and ``fastdnn.sweep``'s)."""
    k = V.operator_index(k)
    if not 2 <= k <= m:
        raise ValueError(f"k must be between 2 and the number of samples {m}, got {k}")
    folds = np.array_split(np.random.default_rng(random_state).permutation(m), k)
    return [(np.concatenate([f for j, f in enumerate(folds) if j != i]), test) for i, test in enumerate(folds)]


def class_weights(index, classes, class_weight):
    """Each example's weight from ``class_weight`` (the option): None for none; "balanced" m / (K count_k)
    as scikit-learn computes it (K the classes, count_k the examples of class k among these m); a dict of
    class -> weight, classes not in it weighing 1 (a key may also be the class's text, as the command
    writes labels). ``index``: each example's class index in ``classes``. Returns (m,) float64, or None."""
    if class_weight is None:
        return None
    K = len(classes)
    if class_weight == "balanced":
        counts = np.bincount(index, minlength=K)
        per_class = np.divide(index.size, K * counts, out=np.zeros(K), where=counts > 0)
    else:
        per_class = np.ones(K)
        by_text = {str(c): k for k, c in enumerate(classes.tolist())}
        for label, weight in class_weight.items():
            hits = np.flatnonzero(classes == label) if not isinstance(label, str) or classes.dtype.kind == "U" else []
            k = int(hits[0]) if len(hits) else by_text.get(str(label))
            if k is None:
                raise ValueError(f"class_weight names class {label!r}, which is not among the classes "
                                 f"{classes.tolist()[:10]}")
            per_class[k] = float(weight)
    return per_class[index]
