"""Input checks shared by the reference and the fast path.

One place decides what valid input is, so both implementations reject the same
things with the same messages. Everything here raises ``ValueError`` (or
``TypeError`` for non-numeric data) with a message naming the problem; nothing
here converts or copies data.
"""

import numbers
import warnings

import numpy as np


def check_X(X, name="X", layout="(n_features, m)"):
    """X must be a 2-D finite numeric array ``(n_features, m)``; returns it as an ndarray.

    ``layout`` only words the messages (the estimator's X is (n_samples, n_features)).
    """
    X = np.asarray(X)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    if np.iscomplexobj(X):
        raise TypeError(f"{name} must be real, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D {layout}, got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must have at least one feature and one example, got shape {X.shape}")
    if np.issubdtype(X.dtype, np.floating) and not _all_finite(X):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"{name} contains NaN or Inf (first at index {tuple(int(i) for i in bad)} of {layout}); "
            "clean or impute the data first"
        )
    return X


# The NaN/Inf scan reads X in blocks of about this many values, so that it never allocates a
# mask the size of X (a quarter of a float32 X's memory, for one bool per value).
_SCAN_VALUES = 1 << 20


def _all_finite(X):
    """Whether every value of the 2-D float array X is finite, scanned in row blocks."""
    rows = max(1, _SCAN_VALUES // max(1, X.shape[1]))
    return all(np.isfinite(X[i : i + rows]).all() for i in range(0, X.shape[0], rows))


def check_Y(Y, m):
    """Y must be ``(1, m)`` holding only 0 and 1; returns it as an ndarray."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[0] != 1:
        raise ValueError(f"Y must have shape (1, m), got shape {Y.shape}")
    if Y.shape[1] != m:
        raise ValueError(f"X has {m} columns (examples) but Y has {Y.shape[1]}; they must match")
    if Y.dtype == object or not (np.issubdtype(Y.dtype, np.number) or Y.dtype == bool):
        raise TypeError(f"Y must be numeric 0/1 labels, got dtype {Y.dtype}")
    if not np.isin(Y, (0, 1)).all():
        bad = np.unique(Y[~np.isin(Y, (0, 1))])[:5]
        raise ValueError(f"Y must contain only 0 and 1 (binary labels), found {bad.tolist()}")
    return Y


# BLAS takes 32-bit dimensions; a layer this wide would not fit in memory anyway.
MAX_LAYER_SIZE = 2**31 - 1


def check_layer_sizes(sizes, name, allow_empty=False):
    """A sequence of positive integer layer widths, each below MAX_LAYER_SIZE; returns them as ints."""
    try:
        dims = [operator_index(d) for d in sizes]
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {sizes!r}") from None
    if not dims and not allow_empty:
        raise ValueError(f"{name} must not be empty")
    for d in dims:
        if not 0 < d <= MAX_LAYER_SIZE:
            raise ValueError(f"{name} must hold integers in [1, 2**31 - 1], got {d}")
    return dims


def check_layers_dims(layers_dims, n_features=None):
    """At least two positive integer sizes; the first must equal the feature count."""
    try:
        dims = [operator_index(d) for d in layers_dims]
    except TypeError:
        raise ValueError(f"layers_dims must be a sequence of positive integers, got {layers_dims!r}") from None
    if len(dims) < 2:
        raise ValueError(
            f"layers_dims needs at least 2 sizes (input and output), got {len(dims)}: {dims}"
        )
    if any(d <= 0 for d in dims):
        raise ValueError(f"layers_dims must be positive, got {dims}")
    check_layer_sizes(dims, "layers_dims")
    if n_features is not None and dims[0] != n_features:
        raise ValueError(
            f"layers_dims[0] = {dims[0]} but X has {n_features} features (rows); they must match"
        )
    return dims


def operator_index(value):
    """An integer from an int-like value (``int``, numpy integer), never from a float or bool."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"expected an integer, got {value!r}")
    return int(value)


def check_positive(value, name, integer=False):
    """A finite positive number (an integer when ``integer``)."""
    if integer:
        try:
            value = operator_index(value)
        except TypeError:
            raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    elif isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    # An integer is finite however large (np.isfinite refuses a Python int beyond 64 bits).
    if not (integer or np.isfinite(value)) or value <= 0:
        kind = "a positive integer" if integer else "a finite positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return value


def check_parameters(parameters, n_features=None):
    """A ``{"W1", "b1", ..., "WL", "bL"}`` dict of finite 2-D numeric arrays with chained shapes.

    Returns the layer sizes it implies. Other keys are not allowed (a
    misspelled or missing layer would otherwise change the network silently).
    """
    if not isinstance(parameters, dict) or "W1" not in parameters:
        raise ValueError("parameters must be a dict with keys 'W1', 'b1', ..., 'WL', 'bL'")
    L = sum(1 for key in parameters if isinstance(key, str) and key.startswith("W"))
    expected = {f"{p}{l}" for l in range(1, L + 1) for p in "Wb"}
    if set(parameters) != expected:
        missing = sorted(expected - set(parameters))
        extra = sorted(map(str, set(parameters) - expected))
        raise ValueError(
            f"parameters must hold exactly W1, b1, ..., W{L}, b{L}; missing {missing}, unexpected {extra}"
        )
    dims = []
    for l in range(1, L + 1):
        W, b = np.asarray(parameters[f"W{l}"]), np.asarray(parameters[f"b{l}"])
        for name, arr in ((f"W{l}", W), (f"b{l}", b)):
            if arr.dtype.kind not in "fiu":
                raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
            if arr.ndim != 2:
                raise ValueError(f"{name} must be 2-D, got shape {arr.shape}")
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} contains NaN or Inf")
        if l == 1:
            dims.append(W.shape[1])
        if W.shape[1] != dims[-1]:
            raise ValueError(f"W{l} must have shape (n_{l}, {dims[-1]}), got {W.shape}")
        if b.shape != (W.shape[0], 1):
            raise ValueError(f"b{l} must have shape ({W.shape[0]}, 1), got {b.shape}")
        dims.append(W.shape[0])
    if n_features is not None and dims[0] != n_features:
        raise ValueError(
            f"the network expects {dims[0]} features (W1 has {dims[0]} columns) but X has {n_features}"
        )
    return dims


def check_training_inputs(X, Y, layers_dims, learning_rate, num_iterations):
    """Everything ``L_layer_model`` needs checked, in one call; returns ``(X, Y, dims)``."""
    X = check_X(X)
    Y = check_Y(Y, X.shape[1])
    dims = check_layers_dims(layers_dims, X.shape[0])
    if dims[-1] != 1:
        raise ValueError(f"the output layer has 1 unit (binary labels), got layers_dims[-1] = {dims[-1]}")
    check_positive(learning_rate, "learning_rate")
    check_positive(num_iterations, "num_iterations", integer=True)
    return X, Y, dims


# Option names, one table each; the reference's function tables and the
# kernels' code tables are tested to have exactly these keys.
HIDDEN_ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
# The output layers: sigmoid and softmax for classes, identity for regression (continuous targets).
OUTPUTS = ("sigmoid", "softmax", "identity")
OUTPUT_ENCODINGS = ("auto", "sigmoid", "softmax")
LOSSES = ("cross_entropy", "mse")
# The losses each output takes: cross-entropy needs probabilities, so an identity output has squared error only.
OUTPUT_LOSSES = {"sigmoid": LOSSES, "softmax": LOSSES, "identity": ("mse",)}
OPTIMIZERS = ("gd", "momentum", "adam")
INITIALIZATIONS = ("deep", "he", "xavier")


def check_choice(value, choices, name):
    """``value`` must be one of ``choices``; the error lists them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
    return value


def check_output_loss(output, loss):
    """``output`` and ``loss`` each a name of its table, and a pair ``OUTPUT_LOSSES`` allows."""
    check_choice(output, OUTPUTS, "output")
    check_choice(loss, LOSSES, "loss")
    if loss not in OUTPUT_LOSSES[output]:
        allowed = " or ".join(map(repr, OUTPUT_LOSSES[output]))
        raise ValueError(f"loss {loss!r} does not apply to output {output!r}, which takes loss {allowed}")
    return output, loss


def check_targets(Y, K, m, name="Y"):
    """Regression targets: a finite numeric ``(K, m)`` array; returns it as an ndarray."""
    Y = np.asarray(Y)
    if Y.dtype == object or not (np.issubdtype(Y.dtype, np.number) or Y.dtype == bool) or np.iscomplexobj(Y):
        raise TypeError(f"{name} must hold real numbers (regression targets), got dtype {Y.dtype}")
    if Y.ndim != 2 or Y.shape != (K, m):
        raise ValueError(f"{name} must have shape ({K}, {m}) for an identity output with {K} units, got {Y.shape}")
    if not np.isfinite(Y).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return Y


def check_one_hot(Y, K, m):
    """Y must be one-hot ``(K, m)``: 0/1 entries, exactly one 1 per column."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape != (K, m):
        raise ValueError(f"Y must be one-hot of shape ({K}, {m}) for a softmax output with {K} units, got {Y.shape}")
    if not np.isin(Y, (0, 1)).all() or not (Y.sum(axis=0) == 1).all():
        raise ValueError("Y must be one-hot: 0/1 entries with exactly one 1 per column")
    return Y


def check_l2(value, name):
    """An L2 strength: a finite number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} (L2 strength) must be a finite number >= 0, got {value!r}")
    return float(value)


def check_fraction(value, name):
    """A number in [0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def check_model_options(
    X, Y, layers_dims, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2,
    epsilon, lambd, hidden_activation, output, loss, init, frozen_layers, seed=1, parameters=None,
):
    """Everything ``model`` takes, checked in one call; returns ``(X, Y, dims)``.

    ``parameters`` (starting values, optional) must match ``layers_dims``.
    """
    X = check_X(X)
    m = X.shape[1]
    dims = check_layers_dims(layers_dims, X.shape[0])
    check_output_layer(dims, output)
    if output == "softmax":
        Y = check_one_hot(Y, dims[-1], m)
    elif output == "identity":
        Y = check_targets(Y, dims[-1], m)
    else:
        Y = check_Y(Y, m)
    check_model_choices(
        dims, m, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2, epsilon, lambd,
        hidden_activation, output, loss, init, frozen_layers, seed, parameters,
    )
    return X, Y, dims


def check_output_layer(dims, output):
    check_choice(output, OUTPUTS, "output")
    if output == "softmax" and dims[-1] < 2:
        raise ValueError(f"a softmax output needs at least 2 units, got layers_dims[-1] = {dims[-1]}")
    if output == "sigmoid" and dims[-1] != 1:
        raise ValueError(f"a sigmoid output has 1 unit (binary labels), got layers_dims[-1] = {dims[-1]}")


def check_class_indices(index, n_classes, name="Y"):
    """Labels as class indices 0..n_classes-1 (0/1 for a sigmoid output), as int64."""
    index = np.asarray(index)
    if index.dtype.kind == "f" and np.array_equal(index, np.round(index)):
        index = index.astype(np.int64)
    if index.ndim != 1 or index.dtype.kind not in "iub" or index.size and (index.min() < 0 or index.max() >= n_classes):
        raise ValueError(f"{name} must be one class index in [0, {n_classes}) per example, "
                         f"got {index.dtype} values of shape {index.shape}")
    return index.astype(np.int64)


def check_model_choices(
    dims, m, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2, epsilon, lambd,
    hidden_activation, output, loss, init, frozen_layers, seed=1, parameters=None,
):
    """``model``'s options other than the data, for ``dims`` (checked) and m examples."""
    check_choice(hidden_activation, HIDDEN_ACTIVATIONS, "hidden_activation")
    check_output_layer(dims, output)
    check_output_loss(output, loss)
    check_choice(optimizer, OPTIMIZERS, "optimizer")
    check_choice(init, INITIALIZATIONS, "init")
    check_positive(learning_rate, "learning_rate")
    check_positive(num_epochs, "num_epochs", integer=True)
    if mini_batch_size is not None:
        size = check_positive(mini_batch_size, "mini_batch_size", integer=True)
        if size > m:
            raise ValueError(f"mini_batch_size must be between 1 and m = {m}, got {size}")
    check_l2(lambd, "lambd")
    for value, name in ((beta, "beta"), (beta1, "beta1"), (beta2, "beta2")):
        check_fraction(value, name)
    check_positive(epsilon, "epsilon")
    L = len(dims) - 1
    try:
        frozen = operator_index(frozen_layers)
    except TypeError:
        frozen = -1
    if not 0 <= frozen <= L - 1:
        raise ValueError(f"frozen_layers must be an integer in [0, {L - 1}] (the output layer always trains), got {frozen_layers!r}")
    check_seed(seed)
    if parameters is not None:
        given = check_parameters(parameters)
        if given != dims:
            raise ValueError(f"the starting parameters have layer sizes {given}, not layers_dims {dims}")


def check_seed(seed, name="seed"):
    """An integer ``np.random.RandomState`` accepts, in [0, 2**32 - 1] (numpy's own errors do not name it)."""
    try:
        value = operator_index(seed)
    except TypeError:
        value = -1
    if not 0 <= value <= 2**32 - 1:
        raise ValueError(f"{name} must be an integer in [0, 2**32 - 1], got {seed!r}")
    return value


def check_bool(value, name):
    """True or False (numpy's bool too); a string such as "False" is refused, not read as true."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_open_fraction(value, name):
    """A number in (0, 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1), got {value!r}")
    return float(value)


def check_non_negative(value, name):
    """A finite number >= 0."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not (np.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_class_labels(y, name="y"):
    """Class labels: no NaN or Inf, and floats only when whole-valued (others are a continuous target).

    scikit-learn's classifiers refuse a continuous target with the same first words.
    """
    y = np.asarray(y)
    if y.dtype.kind == "O":
        kinds = {type(v).__name__ for v in y.reshape(-1)}
        if len({isinstance(v, str) for v in y.reshape(-1)}) > 1:
            raise ValueError(f"{name} mixes text and other labels ({', '.join(sorted(kinds))}); give one kind")
        y = np.array(y.reshape(-1).tolist()).reshape(y.shape)  # the numbers' or the text's own dtype
        if y.dtype.kind not in "iubfU":
            raise ValueError(f"{name} must hold numbers or text, got {', '.join(sorted(kinds))}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or Inf")
        fractional = y != np.round(y)
        if fractional.any():
            raise ValueError(
                f"Unknown label type: continuous (non-integer values such as {y[fractional][0]:g} in "
                f"{name}); a classifier needs class labels"
            )
    return y


def is_frame(X):
    """Whether X is a pandas DataFrame, seen by what it has (``columns`` and ``dtypes``): pandas itself is never
    imported, so it stays optional."""
    return hasattr(X, "columns") and hasattr(X, "dtypes")


def feature_names(X, name="X"):
    """X's column names as scikit-learn keeps them (``feature_names_in_``): an object array when X is a DataFrame
    whose column names are all text, else None (no frame, or names that are none of them text, such as a frame's
    default 0, 1, 2, ...). Text mixed with other names is a TypeError, as in scikit-learn."""
    if not is_frame(X):
        return None
    names = np.asarray(list(X.columns), dtype=object)
    kinds = sorted({type(n).__qualname__ for n in names})
    if len(kinds) > 1 and "str" in kinds:
        raise TypeError(f"{name}'s column names mix text with {', '.join(k for k in kinds if k != 'str')}; feature "
                        f"names are kept only when all are text: convert them ({name}.columns = "
                        f"{name}.columns.astype(str)) or give none")
    return names if kinds == ["str"] else None


def _shown_names(names, limit=8):
    shown = ", ".join(map(repr, names[:limit]))
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_feature_names(fitted, given, who, name="X", stacklevel=3):
    """X's column names (``feature_names``) against those ``who`` (the estimator's class name) was fitted with
    (its ``feature_names_in_``, or None), as scikit-learn checks them: the same names in the same order pass;
    names on one side only warn (UserWarning, scikit-learn's words: "X does not have valid feature names, but ...
    was fitted with feature names", or the converse); other names or another order are one ValueError naming
    the unexpected and the missing columns."""
    if fitted is None and given is None:
        return
    if given is None:
        warnings.warn(f"{name} does not have valid feature names, but {who} was fitted with feature names",
                      UserWarning, stacklevel=stacklevel)
        return
    if fitted is None:
        warnings.warn(f"{name} has feature names, but {who} was fitted without feature names", UserWarning,
                      stacklevel=stacklevel)
        return
    if len(fitted) == len(given) and all(a == b for a, b in zip(fitted, given)):
        return
    known, seen = set(fitted.tolist()), set(given.tolist())
    unexpected = [n for n in given.tolist() if n not in known]
    missing = [n for n in fitted.tolist() if n not in seen]
    if not unexpected and not missing:
        problem = "its columns are those seen at fit in another order; reorder them as at fit"
    else:
        parts = ([f"unexpected {_shown_names(unexpected)}"] if unexpected else []) + (
            [f"missing {_shown_names(missing)}"] if missing else [])
        problem = "; ".join(parts)
    raise ValueError(f"The feature names should match those that were passed during fit: {name}'s columns are not "
                     f"those {who} was fitted with ({problem})")


def numbers_from_objects(X, name):
    """An object array of numbers (a pandas frame of mixed or nullable columns) as float64; anything else a
    TypeError naming the first value that is not a number and where it is (pandas' NA, a dict, ...). The
    words of float()'s own error stay in it: scikit-learn's checks look for them."""
    try:
        return X.astype(np.float64)
    except (TypeError, ValueError) as exc:
        error = exc
    for index, value in np.ndenumerate(X):
        try:
            float(value)
        except (TypeError, ValueError) as exc:
            where = "" if X.ndim != 2 else " of (n_samples, n_features)"
            shown = " ".join(repr(value).split())  # one line, however the object prints itself
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            raise TypeError(f"{name} must hold numbers, but its value at index {index}{where} is {shown} "
                            f"({type(value).__name__}): {exc}; convert or impute it first") from None
    raise TypeError(f"{name} must hold numbers ({error})")  # each value is one, but not all alike (a sequence)
