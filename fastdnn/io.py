"""Model files and checkpoints: portable .npz archives, written atomically, read without pickle.

``save_model`` keeps what predicting needs; ``save_checkpoint`` adds what
continuing training needs, so that a resumed run goes on bit for bit as if it
had never stopped; ``read_model``/``read_checkpoint`` give them back as a
``ModelRecord`` (``fastdnn.load_model``/``load_checkpoint`` build the
estimator from it). Every entry is a plain array (text is a 0-d unicode array,
structured values are JSON text), so any numpy reads the files with
``np.load(path, allow_pickle=False)``:

    format            "fastdnn-model" or "fastdnn-checkpoint"
    format_version    int; a reader refuses versions newer than its FORMAT_VERSION
    fastdnn_version   the writer's fastdnn.__version__ (information only)
    layer_sizes       (L+1,) int64: n_0 .. n_L
    W1, b1, .. WL, bL the course's shapes (n_l, n_{l-1}) and (n_l, 1), in the model's dtype
    dtype             "float32" or "float64"
    activations       (L,) unicode: each layer's activation, the output layer's last
    classes           (K,) numbers or unicode text: the labels, in output order (a classifier's)
    task              "regression" for a DNNRegressor's model (its output the identity, its n_L units its
                      targets; it holds no classes); absent: a classifier's, as every older file is
    feature_names     (n_0,) unicode, the columns of the DataFrame it was fitted on (``feature_names_in_``);
                      absent when it was fitted on other data, as in older files
    options           JSON: the estimator's get_params()
    mini_batch_size   the trainer's batch size, -1 for full batch
    loss_curve        (n_iter,) float64, one cost per epoch; n_iter, t (optimizer steps)
    validation_scores (early stopping only) float64
  checkpoints add the engine's ``TrainingState`` (``fastdnn.state``), field by field (``state_arrays``):
    optimizer_state   (2P,) the optimizer's flat state (momentum's v; Adam's m and v); left out when
                      all zeros (gd's), which a reader then assumes
    rng_state         JSON: the shuffling Generator's ``bit_generator.state``
    state             JSON: optimizer, step, epoch, early stopping's best score, epoch, stall,
                      stopped, whether the run was in progress (version 2), and the learning-rate
                      schedule's record: lr_period, lr_drops, lr_best, lr_stall (the schedule itself is
                      the options' lr_schedule; a file without them loads as a run at the constant rate),
                      and dropout's seed, dropout_seed (a file without it was trained without dropout:
                      it loads with none, which the engine draws if dropout is turned on)
    best_parameters   (P,) early stopping's best parameters so far, if any (version 2)
    gram_W1_init, gram_C, gram_V, gram_carry, gram_norms
                      the Gram route's carried state, for a run saved mid-way on it (version 2)
    stream_spans, stream_position, stream_total, stream_grad
                      where an epoch over data streamed from disk stopped, mid-epoch (version 2)
    run               JSON: the caller's own state (the CLI's epoch target, data fingerprint, ...)
    run_<name>        the caller's own arrays
  A version-1 checkpoint (optimizer_state, step, rng_state; the command kept early stopping's record
  in its run: best, best_epoch, stall, stopped, scores and run_best_params) still loads.

Writes go through ``fastdnn.files.atomic_write``: a crash or an error mid-save
leaves the old file as it was. Reading checks everything a file holds against
itself (its layer sizes, parameters, classes, options through the options
table, training state) and returns a plain ``ModelRecord``, from which
``fastdnn.estimator`` builds the classifier; every problem raises
``ModelFileError`` (``fastdnn.errors``, a ValueError) naming the file and the
problem in one line. Older versions' entries become the current fields here,
when read, and nowhere else.
"""

import errno
import json
import math
import numbers
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from fastdnn import __version__
from fastdnn import options as O
from fastdnn import validation as V
from fastdnn.errors import ModelFileError, NotFittedError, scikit_learns
from fastdnn.files import atomic_write
from fastdnn.labels import output_for, output_units
from fastdnn.pipeline import pack_parameters
from fastdnn.readers import first_line, read_npy_header
from fastdnn.routes import GRAM_MAX_EXAMPLES
from fastdnn.state import GramCarry, StreamPosition, TrainingState

MODEL_FORMAT = "fastdnn-model"
CHECKPOINT_FORMAT = "fastdnn-checkpoint"
FORMAT_VERSION = 2

# Every entry a model file holds besides W1, b1, .. WL, bL (the module's docstring says what each is).
MODEL_ENTRIES = ("format", "format_version", "fastdnn_version", "layer_sizes", "dtype", "activations", "classes",
                 "task", "feature_names", "options", "loss_curve", "n_iter", "t", "mini_batch_size", "validation_scores")
# Each task's estimator, for the messages that name it.
ESTIMATORS = {"classification": "DNNClassifier", "regression": "DNNRegressor"}
# What a checkpoint adds: the training state's fields. GRAM_ENTRIES are a GramCarry's (W1_init, C, V, carry,
# norms) in that order; STREAM_ENTRIES a StreamPosition's.
STATE_ENTRIES = ("state", "optimizer_state", "rng_state", "best_parameters")
GRAM_ENTRIES = ("gram_W1_init", "gram_C", "gram_V", "gram_carry", "gram_norms")
STREAM_ENTRIES = ("stream_spans", "stream_position", "stream_total", "stream_grad")

_ZIP_SIGNATURE = b"PK\x03\x04"


@dataclass
class ModelRecord:
    """What a model file or checkpoint at ``path`` holds, checked: the estimator's ``options`` as saved (names of
    ``fastdnn.options.OPTIONS``), its ``classes`` (a regressor's None), the ``parameters`` (a ``Parameters``), the
    ``state`` (a ``TrainingState`` holding them) and the trainer's ``mini_batch_size`` (None: full batch); a
    checkpoint's ``run`` dict and ``arrays`` are its caller's own state, as saved; ``task`` "classification" or
    "regression" (which estimator it is); ``feature_names`` the DataFrame columns it was fitted on, or None."""

    path: str
    options: dict
    classes: np.ndarray
    parameters: object
    state: TrainingState
    mini_batch_size: int | None
    run: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)
    task: str = "classification"
    feature_names: object = None


# ---------------------------------------------------------------------------- the training state's fields


def state_arrays(state):
    """Every field of a ``TrainingState`` as a plain array (text as 0-d unicode, the scalars as JSON in
    "scalars"), parameters excluded; ``state_from_arrays`` reads them back."""
    out = {
        "optimizer_state": state.optimizer_state,
        "costs": np.array(state.costs, np.float64),
        "validation_scores": np.array(state.validation_scores, np.float64),
        "rng_state": np.array(json.dumps(state.rng.bit_generator.state), np.str_),
        "scalars": np.array(json.dumps({name: getattr(state, name) for name in TrainingState.SCALARS}), np.str_),
    }
    if state.best_parameters is not None:
        out["best_parameters"] = state.best_parameters
    carry = state.gram
    if carry is not None:
        out.update(zip(GRAM_ENTRIES, (carry.W1_init, carry.C, carry.V, carry.carry, carry.norms)))
    position = state.stream
    if position is not None:
        out.update({"stream_spans": position.spans,
                    "stream_position": np.array([position.next, position.block_rows, position.batch], np.int64),
                    "stream_total": np.array(position.total, np.float64)})
        if position.grad is not None:
            out["stream_grad"] = position.grad
    return out


def state_from_arrays(parameters, arrays):
    """The ``TrainingState`` that ``state_arrays`` gave ``arrays``; raises ValueError (KeyError, TypeError) on
    inconsistent arrays."""
    state = TrainingState(parameters)
    P = parameters.flat.size
    opt = arrays["optimizer_state"]
    if opt.shape != (2 * P,) or opt.dtype != parameters.flat.dtype:
        raise ValueError(f"optimizer_state has shape {opt.shape} {opt.dtype}, expected ({2 * P},) {parameters.flat.dtype}")
    state.optimizer_state[:] = opt
    for key in ("costs", "validation_scores"):
        values = np.asarray(arrays[key])
        if values.ndim != 1 or values.dtype.kind not in "iuf" or not np.isfinite(values).all():
            name = "loss_curve" if key == "costs" else key
            raise ValueError(f"{name} must be a 1-D array of finite numbers, got shape {values.shape} {values.dtype}")
    state.costs = [float(c) for c in arrays["costs"]]
    state.validation_scores = [float(s) for s in arrays["validation_scores"]]
    state.rng.bit_generator.state = json.loads(str(arrays["rng_state"]))
    scalars = json.loads(str(arrays["scalars"]))
    for name in TrainingState.SCALARS:
        setattr(state, name, scalars[name])
    _check_scalars(state)
    if "best_parameters" in arrays:
        best = arrays["best_parameters"]
        if best.shape != (P,) or best.dtype != parameters.flat.dtype:
            raise ValueError(f"best_parameters has shape {best.shape}, expected ({P},)")
        state.best_parameters = np.array(best)
    if "gram_C" in arrays:
        n1, n0 = parameters.dims[1], parameters.dims[0]
        W1_init, C, Vv, carry, norms = (np.array(arrays[k], np.float64) for k in GRAM_ENTRIES)
        if (W1_init.shape != (n1, n0) or C.ndim != 2 or C.shape[0] != n1 or Vv.shape != C.shape or carry.shape != (3,)
                or norms.shape != (C.shape[1],)):
            raise ValueError("the Gram route's carried state has inconsistent shapes")
        state.gram = GramCarry(W1_init, C, Vv, carry, norms)
    if "stream_spans" in arrays:
        state.stream = _stream_position(arrays, P, parameters.flat.dtype)
    return state


def _check_scalars(state):
    V.check_choice(state.optimizer, V.OPTIMIZERS, "optimizer")
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0  # noqa: E731
    for name, ok, what in (
        ("step", whole(state.step), "a non-negative integer"),
        ("epoch", whole(state.epoch), "a non-negative integer"),
        ("stall", whole(state.stall), "a non-negative integer"),
        ("best_epoch", state.best_epoch is None or whole(state.best_epoch), "null or a non-negative integer"),
        ("best_score", state.best_score is None or (isinstance(state.best_score, (int, float))
                                                    and math.isfinite(state.best_score)), "null or a number"),
        ("stopped", isinstance(state.stopped, bool), "true or false"),
        ("in_progress", isinstance(state.in_progress, bool), "true or false"),
        ("lr_period", state.lr_period is None or (whole(state.lr_period) and state.lr_period > 0),
         "null or a positive integer"),
        ("lr_drops", whole(state.lr_drops), "a non-negative integer"),
        ("lr_stall", whole(state.lr_stall), "a non-negative integer"),
        ("lr_best", state.lr_best is None or (isinstance(state.lr_best, (int, float)) and not isinstance(
            state.lr_best, bool) and math.isfinite(state.lr_best)), "null or a number"),
        ("dropout_seed", state.dropout_seed is None or (whole(state.dropout_seed) and state.dropout_seed < 2**32),
         "null or an integer in [0, 2**32 - 1]"),
    ):
        if not ok:
            raise ValueError(f"the training state's {name} must be {what}, got {getattr(state, name)!r}")


def _stream_position(arrays, P, dtype):
    spans = np.array(arrays["stream_spans"], np.int64)
    position = np.array(arrays["stream_position"], np.int64)
    grad = arrays.get("stream_grad")
    if (spans.ndim != 2 or spans.shape[1] != 2 or position.shape != (3,) or not 0 <= position[0] <= len(spans)
            or position[1] < 1 or position[2] < 0 or (grad is None) != (position[2] != 0)
            or (grad is not None and (grad.shape != (P,) or grad.dtype != dtype))):
        raise ValueError("the streamed epoch's saved position is inconsistent")
    return StreamPosition(spans, int(position[1]), int(position[2]), int(position[0]), float(arrays["stream_total"]),
                          None if grad is None else np.array(grad))


# ---------------------------------------------------------------------------- writing


def _text(value):
    return np.array(value, dtype=np.str_)


def _options_json(params):
    """get_params() as JSON; numpy scalars and dtypes become plain values, tuples lists."""

    def plain(value):
        if isinstance(value, (str, type(None))):
            return value
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if isinstance(value, numbers.Integral):
            return int(value)
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, (type, np.dtype)):
            return np.dtype(value).name
        raise ValueError(f"cannot save the option value {value!r} ({type(value).__name__}) without pickle")

    return json.dumps({name: plain(value) for name, value in params.items()}, sort_keys=True)


def _classes_array(classes):
    classes = np.asarray(classes)
    if classes.dtype.kind in "biufU":
        return classes
    if classes.dtype.kind == "S" or (classes.dtype == object and all(isinstance(c, str) for c in classes)):
        return classes.astype(np.str_)
    raise ValueError(f"classes_ of dtype {classes.dtype} cannot be saved without pickle; use numbers or strings as labels")


def _model_arrays(estimator, fmt):
    if not hasattr(estimator, "parameters_"):
        raise scikit_learns(NotFittedError)(f"this {type(estimator).__name__} is not fitted yet; nothing to save")
    params = estimator.parameters_
    if not np.isfinite(params.flat).all():
        # A model that read_model would refuse as corrupted is never written.
        bad = [key for key, value in params.items() if not np.isfinite(value).all()]
        raise ValueError(f"the parameters {', '.join(bad)} hold NaN or Inf; a non-finite model is not saved")
    dims = list(params.dims)
    L = len(dims) - 1
    network = estimator.network_
    regression = getattr(estimator, "task", "classification") == "regression"
    if regression:
        # Its output layer is the identity and its loss the squared error, neither an option of a regressor.
        trained = {k: network[k] for k in ("hidden_layer_sizes", "activation")}
    else:
        classes = _classes_array(estimator.classes_)
        trained = {k: network[k] for k in ("hidden_layer_sizes", "activation", "loss")}
        # The encoding option as given when it still names the trained output layer ("auto" stays "auto").
        try:
            same = output_for(len(classes), estimator.output) == network["output"]
        except ValueError:  # set_params(output="sigmoid") after fitting more than two classes
            same = False
        if not same:
            trained["output"] = network["output"]
    arrays = {
        "format": _text(fmt),
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "fastdnn_version": _text(__version__),
        "layer_sizes": np.array(dims, np.int64),
        "dtype": _text(params.flat.dtype.name),
        "activations": np.array([network["activation"]] * (L - 1) + [network["output"]], dtype=np.str_),
        **({"task": _text("regression")} if regression else {"classes": classes}),
        # The options the parameters were trained with: set_params after fit does not change them.
        "options": _text(_options_json({**estimator.get_params(), **trained})),
        "loss_curve": np.array(getattr(estimator, "loss_curve_", []), np.float64),
        "n_iter": np.array(getattr(estimator, "n_iter_", 0), np.int64),
        "t": np.array(getattr(estimator, "t_", 0), np.int64),
    }
    batch = estimator.engine_.mini_batch_size
    arrays["mini_batch_size"] = np.array(-1 if batch is None else batch, np.int64)
    for l in range(1, L + 1):
        arrays[f"W{l}"] = np.asarray(params[f"W{l}"])
        arrays[f"b{l}"] = np.asarray(params[f"b{l}"])
    scores = getattr(estimator, "validation_scores_", None)
    if scores is not None:
        arrays["validation_scores"] = np.array(scores, np.float64)
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        arrays["feature_names"] = np.array([str(n) for n in names], dtype=np.str_)
    return arrays


def save_model(estimator, path):
    """Write a fitted DNNClassifier or DNNRegressor to ``path`` (.npz, atomically): everything predicting needs."""
    write_archive(path, _model_arrays(estimator, MODEL_FORMAT))


def save_checkpoint(estimator, path, run=None, arrays=None):
    """Write a model plus its training state (optimizer state, step, shuffling Generator) atomically.

    ``run`` (a JSON-able dict) and ``arrays`` (name -> ndarray) are the
    caller's own state, returned as they were by ``read_checkpoint``.
    """
    write_archive(path, checkpoint_arrays(estimator, run, arrays))


def checkpoint_arrays(estimator, run=None, arrays=None):
    """What ``save_checkpoint`` writes, as a dict of arrays that are copies: training may go on while
    another thread writes them (``write_archive``)."""
    out = _model_arrays(estimator, CHECKPOINT_FORMAT)
    state = state_arrays(estimator.training_state_)
    # costs and validation_scores are the model's loss_curve and validation_scores already.
    state.pop("costs")
    state.pop("validation_scores")
    out["state"] = state.pop("scalars")
    if not state["optimizer_state"].any():
        state.pop("optimizer_state")  # gd's, or a fresh one: all zeros, which is what a reader assumes
    out.update(state)
    out["run"] = _text(json.dumps(run or {}))
    for name, value in (arrays or {}).items():
        out[f"run_{name}"] = np.asarray(value)
    return {name: np.array(value) for name, value in out.items()}


def write_archive(path, arrays):
    """Write ``arrays`` (name -> ndarray, no objects) as an .npz at ``path``, atomically."""
    for name, value in arrays.items():
        if value.dtype.hasobject:
            # np.savez would pickle it (and numpy < 2.1 has no allow_pickle= to forbid that).
            raise ValueError(f"cannot save {name!r}: an object array needs pickle, which fastdnn files never hold")
    atomic_write(path, lambda f: np.savez(f, **arrays))


# ---------------------------------------------------------------------------- reading


def _read_archive(path):
    """Every entry of the .npz at ``path``, read eagerly (so a damaged member fails here)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such file", path)
    if os.path.isdir(path):
        raise ModelFileError(path, "is a directory, not a model file")
    with open(path, "rb") as f:
        head = f.read(len(_ZIP_SIGNATURE))
    if head != _ZIP_SIGNATURE:
        what = "is empty" if not head else "is not an .npz archive"
        raise ModelFileError(path, f"is not a fastdnn model: the file {what}")
    try:
        _check_members(path)
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, RuntimeError) as exc:
        # A zip whose directory or members are cut short or altered (CRC-32 mismatch).
        raise ModelFileError(path, f"is truncated or corrupted ({first_line(exc)})") from None
    except Exception as exc:  # zlib.error and whatever else a damaged stream raises
        raise ModelFileError(path, f"is truncated or corrupted ({type(exc).__name__}: {first_line(exc)})") from None


# The entries fastdnn writes (W1, b1, ... and a checkpoint's run_* arrays besides); anything else is refused.
# A version-1 checkpoint kept its optimizer's step count as the entry "step".
_MEMBERS = {*MODEL_ENTRIES, *STATE_ENTRIES, *GRAM_ENTRIES, *STREAM_ENTRIES, "run", "step"}
# Besides what the layer sizes imply: the loss curve, text, a stream's block list, a checkpoint's run arrays.
_EXTRA_BYTES = 64 * 2**20


def _check_members(path):
    """Every member of the archive read from its .npy header before anything is decompressed: a known name,
    no objects, W and b of the shapes the layer sizes give, each no larger than its header declares, and all
    of them together no larger than a model of those layer sizes can hold (a few MB of zip can declare GB)."""
    with zipfile.ZipFile(path) as z:
        names = [_member_name(info) for info in z.infolist()]
        if "format" not in names:
            _not_a_model(path, names)
        headers = {_member_name(info): _member_header(path, z, info) for info in z.infolist()}
        if "layer_sizes" not in headers or headers["layer_sizes"][1] > 8 * 4096:
            return  # not a model, or one to refuse by its own checks (after this small read)
        with z.open("layer_sizes.npy") as f:
            dims = np.lib.format.read_array(f, allow_pickle=False)
    if dims.ndim != 1 or dims.dtype.kind not in "iu" or dims.size < 2 or (dims < 1).any():
        return  # refused by the model's own check
    _check_declared_sizes(path, headers, [int(d) for d in dims])


def _member_name(info):
    return info.filename[:-4] if info.filename.endswith(".npy") else info.filename


def _member_header(path, z, info):
    """(shape, bytes) that the member's .npy header declares; ModelFileError for a name fastdnn does not
    write, a header that is not an array's, objects, or more bytes stored than declared."""
    name = _member_name(info)
    if not (name in _MEMBERS or name.startswith("run_") or (name[:1] in "Wb" and name[1:].isdigit())):
        raise ModelFileError(path, f"is not a fastdnn model file: it holds an entry fastdnn does not write "
                                   f"({info.filename!r})")
    with z.open(info) as f:
        try:
            shape, _, dtype = read_npy_header(f)
        except ValueError as exc:
            raise ModelFileError(path, f"is corrupted: the entry {name!r} is not an array ({exc})") from None
    if dtype.hasobject:
        raise ModelFileError(path, f"is corrupted: the entry {name!r} holds Python objects")
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if info.file_size > size + 65536:
        raise ModelFileError(path, f"is corrupted: the entry {name!r} holds more bytes than its header declares")
    return tuple(shape), size


def _check_declared_sizes(path, headers, dims):
    """W and b declared in the shapes the layer sizes ``dims`` give, and all entries within what such a
    model holds."""
    for l in range(1, len(dims)):
        for key, shape in ((f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))):
            if key in headers and headers[key][0] != shape:
                raise ModelFileError(path, f"is corrupted: {key} declares shape {headers[key][0]}, but its layer sizes "
                                           f"{dims} give {shape}")
    params = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims))) * 8
    gram = dims[1] * (dims[0] + 2 * GRAM_MAX_EXAMPLES + 1) * 8
    budget = 5 * params + gram + _EXTRA_BYTES  # parameters, Adam's two moments, the best epoch's, a stream's gradient
    total = sum(size for _, size in headers.values())
    if total > budget:
        raise ModelFileError(path, f"is corrupted or hostile: its entries declare {total:,} bytes, more than a model "
                                   f"of layer sizes {dims} holds ({budget:,} at most); it was not read")


def _scalar_text(arrays, key, path):
    value = _require(arrays, key, path)
    if value.shape != () or value.dtype.kind != "U":
        raise ModelFileError(path, f"is corrupted: {key!r} is not text")
    return str(value)


def _scalar_int(arrays, key, path):
    value = _require(arrays, key, path)
    if value.shape != () or value.dtype.kind not in "iu":
        raise ModelFileError(path, f"is corrupted: {key!r} is not an integer")
    return int(value)


def _json(arrays, key, path, what):
    """The JSON text entry ``key`` (``what`` names it, plural: "options"), parsed; ModelFileError when it is
    not JSON or is nested deeper than the parser's recursion allows (a RecursionError otherwise)."""
    try:
        return json.loads(_scalar_text(arrays, key, path))
    except ValueError as exc:
        raise ModelFileError(path, f"is corrupted: its {what} are not valid JSON ({first_line(exc)})") from None
    except RecursionError:
        raise ModelFileError(path, f"is corrupted: its {what} are JSON nested too deeply for any fastdnn "
                                   "file") from None


def _require(arrays, key, path):
    if key not in arrays:
        raise ModelFileError(path, f"is corrupted: the entry {key!r} is missing")
    return arrays[key]


def _not_a_model(path, names):
    held = ", ".join(sorted(names)[:8]) or "nothing"
    raise ModelFileError(path, f"is an .npz archive but not a fastdnn model (no 'format' marker; it holds: {held})")


def _check_format(arrays, path, accept):
    """The file's format version (its format one of ``accept``)."""
    if "format" not in arrays:
        _not_a_model(path, arrays)
    fmt = arrays["format"]
    fmt = str(fmt) if fmt.shape == () and fmt.dtype.kind == "U" else None
    if fmt not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise ModelFileError(path, f"is not a fastdnn model (its format marker is {fmt!r})")
    version = _scalar_int(arrays, "format_version", path)
    if version > FORMAT_VERSION:
        writer = str(arrays.get("fastdnn_version", "a newer version"))
        raise ModelFileError(
            path,
            f"was written by fastdnn {writer} in model format version {version}; this fastdnn {__version__} reads "
            f"versions up to {FORMAT_VERSION}: upgrade fastdnn to read it",
        )
    if version < 1:
        raise ModelFileError(path, f"is corrupted: format version {version}")
    if fmt not in accept:
        raise ModelFileError(path, f"is a {fmt} file, not a {' or '.join(accept)} file")
    return version


def _layer_sizes(arrays, path):
    dims = _require(arrays, "layer_sizes", path)
    if dims.ndim != 1 or dims.dtype.kind not in "iu" or dims.size < 2 or (dims < 1).any():
        raise ModelFileError(path, f"is corrupted: layer_sizes is {dims!r}")
    return [int(d) for d in dims]


def _parameters(arrays, path, dims):
    """W1, b1, .. WL, bL as a ``Parameters``: the shapes ``dims`` give, the file's dtype, finite, no more."""
    dtype = _scalar_text(arrays, "dtype", path)
    if dtype not in ("float32", "float64"):
        raise ModelFileError(path, f"is corrupted: dtype {dtype!r} (float32 or float64 expected)")
    L = len(dims) - 1
    raw = {}
    for l in range(1, L + 1):
        for key, shape in ((f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))):
            value = _require(arrays, key, path)
            if value.shape != shape or value.dtype != np.dtype(dtype):
                raise ModelFileError(
                    path, f"is corrupted: {key} has shape {value.shape} and dtype {value.dtype}, expected {shape} {dtype}"
                )
            if not np.isfinite(value).all():
                # The writers never save a non-finite model (save_model refuses one).
                raise ModelFileError(path, f"is corrupted: {key} holds NaN or Inf")
            raw[key] = value
    if any(k[0] in "Wb" and k[1:].isdigit() and int(k[1:]) > L for k in arrays):
        raise ModelFileError(path, f"is corrupted: it has more W/b entries than its {L} layers")
    return pack_parameters(raw, np.dtype(dtype).type)


def _classes(arrays, path, n_out):
    """The labels: distinct and sorted (as np.unique gives them), at least two, as many as the ``n_out``
    output units encode."""
    classes = _require(arrays, "classes", path)
    if classes.ndim != 1 or classes.dtype.kind not in "biufU":
        raise ModelFileError(path, f"is corrupted: classes has shape {classes.shape} and dtype {classes.dtype}")
    K = classes.size
    if K != np.unique(classes).size or (K > 1 and not (classes[1:] > classes[:-1]).all()):
        # The estimator maps output k to classes[k] as np.unique orders them: [0, 0] would predict one label
        # for everything, [1, 0] flip every prediction.
        shown = classes[:8].tolist()
        raise ModelFileError(path, f"is corrupted: its classes {shown}{' ...' if K > 8 else ''} are not distinct "
                                   "and sorted")
    if K < 2 or n_out not in (1, K) or (n_out == 1 and K != 2):
        raise ModelFileError(path, f"is corrupted: {K} classes for an output layer of {n_out} units")
    return classes


def _options(arrays, path, task="classification"):
    """The estimator's options as saved: a JSON object of settings this fastdnn knows, all of them the ``task``'s
    estimator's (hidden sizes a tuple)."""
    options = _json(arrays, "options", path, "options")
    if not isinstance(options, dict):
        raise ModelFileError(path, "is corrupted: its options are not a JSON object")
    for name, value in options.items():
        # What _options_json writes: a number, text, true/false/null, or a list of numbers (the layer sizes, a
        # keep_prob per hidden layer).
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value)):
            raise ModelFileError(path, f"is corrupted: its option {name!r} is a nested JSON value, not a setting")
    for name in ("hidden_layer_sizes", "keep_prob"):  # the sequences an option may hold, as tuples
        if isinstance(options.get(name), list):
            options[name] = tuple(options[name])
    unknown = sorted(set(options) - set(O.BY_NAME))
    if unknown:
        raise ModelFileError(path, f"has options this fastdnn does not know: {', '.join(unknown)}")
    foreign = sorted(set(options) - set(O.names(task)))
    if foreign:
        raise ModelFileError(path, f"is corrupted: its options {', '.join(foreign)} are not a {ESTIMATORS[task]}'s")
    return options


def _check_network(arrays, path, options, dims, K):
    """The options (checked by the options table, the defaults where the file has none) describe the
    network the parameters are: its hidden layers, activations and output layer (K classes; None: a regressor's
    identity output, of any number of units). Returns them checked."""
    task = "classification" if K is not None else "regression"
    try:
        checked = O.check({**{name: O.DEFAULTS[name] for name in O.names(task)}, **options})
        output = output_for(K, checked["output"]) if K is not None else "identity"
    except (TypeError, ValueError) as exc:
        raise _inconsistent(path, exc) from None
    if K is not None and dims[-1] != output_units(K, checked["output"]):
        raise ModelFileError(path, f"is corrupted: {K} classes for an output layer of {dims[-1]} units with output "
                                   f"{checked['output']!r}")
    if list(checked["hidden_layer_sizes"]) != dims[1:-1]:
        raise _inconsistent(path, f"hidden_layer_sizes {checked['hidden_layer_sizes']} disagree with the layer "
                                  f"sizes {dims}")
    activations = _require(arrays, "activations", path)
    expected = [checked["activation"]] * (len(dims) - 2) + [output]
    if activations.dtype.kind != "U" or activations.tolist() != expected:
        raise ModelFileError(path, f"is corrupted: activations {activations.tolist()} disagree with its options ({expected})")
    return checked


def _inconsistent(path, problem):
    return ModelFileError(path, f"is corrupted: its options or training state are inconsistent "
                                f"({problem if isinstance(problem, str) else first_line(problem)})")


def _task(arrays, path, expected):
    """The file's task ("classification" unless it says "regression"), which must be ``expected`` when given: a
    regressor's file is no classifier's, nor the converse (one line saying which to load it with)."""
    task = _scalar_text(arrays, "task", path) if "task" in arrays else "classification"
    if task not in ESTIMATORS or (task == "regression" and "classes" in arrays):
        raise ModelFileError(path, f"is corrupted: its task is {task!r}"
                                   + (" but it holds classes" if task in ESTIMATORS else ""))
    if expected is not None and task != expected:
        raise ModelFileError(path, f"holds a {ESTIMATORS[task]} ({task}), not a {ESTIMATORS[expected]}: load it with "
                                   f"{ESTIMATORS[task]}.load or fastdnn.load_model")
    return task


def _feature_names(arrays, path, n_features):
    """The DataFrame columns the model was fitted on, as an object array (``feature_names_in_``), or None."""
    if "feature_names" not in arrays:
        return None
    names = arrays["feature_names"]
    if names.dtype.kind != "U" or names.shape != (n_features,):
        raise ModelFileError(path, f"is corrupted: feature_names has shape {names.shape} and dtype {names.dtype}, "
                                   f"expected {n_features} names (its features) as text")
    return np.array(names.tolist(), dtype=object)


def _record(arrays, path, version, run=None, run_arrays=None, task=None):
    """The ``ModelRecord`` of a file's entries, every one checked (``run``: a checkpoint's run dict; ``task``: the
    one the caller's estimator does, None for either)."""
    dims = _layer_sizes(arrays, path)
    parameters = _parameters(arrays, path, dims)
    task = _task(arrays, path, task)
    classes = _classes(arrays, path, dims[-1]) if task == "classification" else None
    options = _options(arrays, path, task)
    checked = _check_network(arrays, path, options, dims, None if classes is None else classes.size)
    batch = _scalar_int(arrays, "mini_batch_size", path)
    try:
        state = _training_state(arrays, path, parameters, checked["optimizer"], version, run)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, RecursionError) as exc:  # RecursionError: rng_state nested too deeply
        raise _inconsistent(path, exc) from None
    return ModelRecord(os.fspath(path), options, classes, parameters, state, None if batch < 0 else batch, run or {},
                       run_arrays or {}, task, _feature_names(arrays, path, dims[0]))


def _training_state(arrays, path, parameters, optimizer, version, run):
    """The engine's ``TrainingState``: a checkpoint's as saved, a model's with its curve and counts
    (its optimizer state starts afresh)."""
    loss_curve = _require(arrays, "loss_curve", path)
    n_iter, t = _scalar_int(arrays, "n_iter", path), _scalar_int(arrays, "t", path)
    saved = {
        "costs": loss_curve,
        "validation_scores": arrays.get("validation_scores", np.zeros(0)),
        "optimizer_state": arrays.get("optimizer_state", np.zeros(2 * parameters.flat.size, parameters.flat.dtype)),
        "rng_state": arrays.get("rng_state", _text(json.dumps(np.random.default_rng(0).bit_generator.state))),
    }
    scalars = {"optimizer": optimizer, "step": t, "epoch": n_iter, "best_score": None, "best_epoch": None,
               "stall": 0, "stopped": False, "in_progress": False,
               # Files written before learning-rate schedules hold none: a fresh record.
               "lr_period": None, "lr_drops": 0, "lr_best": None, "lr_stall": 0,
               # Files written before dropout hold no seed of its masks.
               "dropout_seed": None}
    if "state" in arrays:
        scalars.update(_json(arrays, "state", path, "training state values"))
    elif "step" in arrays:  # a version-1 checkpoint
        scalars["step"] = _scalar_int(arrays, "step", path)
    for key in ("best_parameters", *GRAM_ENTRIES, *STREAM_ENTRIES):
        if key in arrays:
            saved[key] = arrays[key]
    if version == 1 and isinstance(run, dict) and "best_epoch" in run:
        _early_stopping_of_version_1(run, arrays, scalars, saved)
    saved["scalars"] = _text(json.dumps(scalars))
    return state_from_arrays(parameters, saved)


def _early_stopping_of_version_1(run, arrays, scalars, saved):
    """Version 1's command kept early stopping's record in its run dict (best, best_epoch, stall, stopped,
    scores) and the best parameters as its run array best_params: they become version 2's fields of the
    training state (checked as those are), mid-run, as the command saved them."""
    if run["best_epoch"] is not None:
        scalars["best_score"], scalars["best_epoch"] = run["best"], run["best_epoch"]
        if "run_best_params" in arrays:
            saved["best_parameters"] = arrays["run_best_params"]
    scalars["stall"], scalars["stopped"] = run.get("stall", 0), run.get("stopped", False)
    saved["validation_scores"] = np.asarray(run.get("scores", []), np.float64)
    scalars["in_progress"] = True


def read_model(path, task=None):
    """The ``ModelRecord`` of the model saved at ``path`` (a checkpoint reads as the model at its epoch,
    with its training state); ``task`` ("classification", "regression"): refuse another estimator's file."""
    arrays = _read_archive(path)
    version = _check_format(arrays, path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    return _record(arrays, path, version, task=task)


def read_checkpoint(path, task=None):
    """The ``ModelRecord`` of the checkpoint at ``path``, with its caller's ``run`` dict and ``arrays``; ``task``
    as ``read_model``'s."""
    arrays = _read_archive(path)
    version = _check_format(arrays, path, (CHECKPOINT_FORMAT,))
    run = _json(arrays, "run", path, "run values")
    extra = {name[len("run_"):]: value for name, value in arrays.items() if name.startswith("run_")}
    return _record(arrays, path, version, run, extra, task)


def file_format(path):
    """"fastdnn-model" or "fastdnn-checkpoint" if ``path`` is a readable fastdnn file, else None (never raises)."""
    try:
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            if f.read(len(_ZIP_SIGNATURE)) != _ZIP_SIGNATURE:
                return None
        with np.load(path, allow_pickle=False) as archive:
            if "format" not in archive.files:
                return None
            fmt = archive["format"]
    except Exception:
        return None
    fmt = str(fmt) if fmt.shape == () and fmt.dtype.kind == "U" else None
    return fmt if fmt in (MODEL_FORMAT, CHECKPOINT_FORMAT) else None
