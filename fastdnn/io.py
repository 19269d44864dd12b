"""Model files and checkpoints: portable .npz archives, written atomically, read without pickle.

``save_model``/``load_model`` keep what predicting needs; ``save_checkpoint``/
``load_checkpoint`` add what continuing training needs, so that a resumed run
goes on bit for bit as if it had never stopped. Every entry is a plain array
(text is a 0-d unicode array, structured values are JSON text), so any numpy
reads the files with ``np.load(path, allow_pickle=False)``:

    format            "fastdnn-model" or "fastdnn-checkpoint"
    format_version    int; a reader refuses versions newer than its FORMAT_VERSION
    fastdnn_version   the writer's fastdnn.__version__ (information only)
    layer_sizes       (L+1,) int64: n_0 .. n_L
    W1, b1, .. WL, bL the course's shapes (n_l, n_{l-1}) and (n_l, 1), in the model's dtype
    dtype             "float32" or "float64"
    activations       (L,) unicode: each layer's activation, the output layer's last
    classes           (K,) numbers or unicode text: the labels, in output order
    options           JSON: DNNClassifier.get_params()
    mini_batch_size   the trainer's batch size, -1 for full batch
    loss_curve        (n_iter,) float64, one cost per epoch; n_iter, t (optimizer steps)
    validation_scores (early stopping only) float64
  checkpoints add the engine's ``TrainingState`` (``fastdnn.state``), field by field (``state_arrays``):
    optimizer_state   (2P,) the optimizer's flat state (momentum's v; Adam's m and v); left out when
                      all zeros (gd's), which a reader then assumes
    rng_state         JSON: the shuffling Generator's ``bit_generator.state``
    state             JSON: optimizer, step, epoch, early stopping's best score, epoch, stall,
                      stopped, and whether the run was in progress (version 2)
    best_parameters   (P,) early stopping's best parameters so far, if any (version 2)
    gram_W1_init, gram_C, gram_V, gram_carry, gram_norms
                      the Gram route's carried state, for a run saved mid-way on it (version 2)
    run               JSON: the caller's own state (the CLI's epoch target, data fingerprint, ...)
    run_<name>        the caller's own arrays
  A version-1 checkpoint (optimizer_state, step, rng_state) still loads.

Writes go to a temporary file in the target's directory, are fsynced, then
``os.replace``d over the target: a crash or an error mid-save leaves the old
file as it was. Every problem reading a file raises ``ModelFileError`` (a
ValueError) naming the file and the problem in one line.
"""

import contextlib
import errno
import json
import math
import numbers
import os
import tempfile
import tokenize
import zipfile
from dataclasses import dataclass, field

import numpy as np

from fastdnn.labels import output_for, output_units
from fastdnn.routes import GRAM_MAX_EXAMPLES
from fastdnn.state import GramCarry, StreamPosition, TrainingState
from fastdnn import validation as V
from fastdnn.pipeline import pack_parameters

MODEL_FORMAT = "fastdnn-model"
CHECKPOINT_FORMAT = "fastdnn-checkpoint"
FORMAT_VERSION = 2

# Every entry a model file holds besides W1, b1, .. WL, bL (the module's docstring says what each is).
MODEL_ENTRIES = ("format", "format_version", "fastdnn_version", "layer_sizes", "dtype", "activations", "classes",
                 "options", "loss_curve", "n_iter", "t", "mini_batch_size", "validation_scores")
# What a checkpoint adds: the training state's fields. GRAM_ENTRIES are a GramCarry's (W1_init, C, V, carry,
# norms) in that order; STREAM_ENTRIES a StreamPosition's.
STATE_ENTRIES = ("state", "optimizer_state", "rng_state", "best_parameters")
GRAM_ENTRIES = ("gram_W1_init", "gram_C", "gram_V", "gram_carry", "gram_norms")
STREAM_ENTRIES = ("stream_spans", "stream_position", "stream_total", "stream_grad")

_ZIP_SIGNATURE = b"PK\x03\x04"


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be read: ``path`` and ``problem`` say which and why."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass
class Checkpoint:
    """A restored training state: the estimator, ready to continue with ``fit`` (warm_start) or to predict,
    and the caller's ``run`` dict and ``arrays`` as saved."""

    estimator: object
    run: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


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


def atomic_write(path, write):
    """Call ``write(binary_file)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error (or interrupt) the temporary file is removed and ``path`` is
    untouched. A new file gets the permissions the umask allows (an existing
    one keeps its own), not mkstemp's owner-only 0600.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."  # as the system resolves it ("sub/../x" needs sub), like the rename
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    except OSError as exc:  # a full disk, a read-only folder: named as the file, not its hidden temporary
        raise OSError(exc.errno, f"{exc.strerror or exc}; {path} was not written (it is as it was)", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, new_file_mode(path))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.filename is None:
            # A full disk or quota raises without a file name (from write or fsync): name the file it was for.
            raise OSError(exc.errno, f"{exc.strerror or exc}; {path} was not written (it is as it was)", path) from None
        raise
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # The rename itself is durable only once the directory is.
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def new_file_mode(path):
    """The permissions a file written over ``path`` gets: an existing file's own, else what the umask allows
    (every writer renames a temporary file, which mkstemp makes owner-only 0600, so each sets this)."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _savez(path, arrays):
    for name, value in arrays.items():
        if value.dtype.hasobject:
            # np.savez would pickle it (and numpy < 2.1 has no allow_pickle= to forbid that).
            raise ValueError(f"cannot save {name!r}: an object array needs pickle, which fastdnn files never hold")
    atomic_write(path, lambda f: np.savez(f, **arrays))


def _text(value):
    return np.array(value, dtype=np.str_)


def _options_json(params):
    """get_params() as JSON; numpy scalars and dtypes become plain values, tuples lists."""

    def plain(value):
        if isinstance(value, (str, bool, type(None))):
            return value
        if isinstance(value, (np.bool_,)):
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
    if classes.dtype.kind in "biuf":
        return classes
    if classes.dtype.kind == "U":
        return classes
    if classes.dtype.kind == "S" or (classes.dtype == object and all(isinstance(c, str) for c in classes)):
        return classes.astype(np.str_)
    raise ValueError(f"classes_ of dtype {classes.dtype} cannot be saved without pickle; use numbers or strings as labels")


def _model_arrays(estimator, fmt):
    if not hasattr(estimator, "parameters_"):
        from fastdnn.estimator import NotFittedError

        raise NotFittedError("this DNNClassifier is not fitted yet; nothing to save")
    params = estimator.parameters_
    if not np.isfinite(params.flat).all():
        # A model that load_model would refuse as corrupted is never written.
        bad = [key for key, value in params.items() if not np.isfinite(value).all()]
        raise ValueError(f"the parameters {', '.join(bad)} hold NaN or Inf; a non-finite model is not saved")
    dims = list(params.dims)
    L = len(dims) - 1
    classes = _classes_array(estimator.classes_)
    network = estimator.network_
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
        "fastdnn_version": _text(_version()),
        "layer_sizes": np.array(dims, np.int64),
        "dtype": _text(params.flat.dtype.name),
        "activations": np.array([network["activation"]] * (L - 1) + [network["output"]], dtype=np.str_),
        "classes": classes,
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
    return arrays


def _version():
    from fastdnn import __version__

    return __version__


def save_model(estimator, path):
    """Write a fitted DNNClassifier to ``path`` (.npz, atomically): everything ``load_model`` needs to predict."""
    _savez(path, _model_arrays(estimator, MODEL_FORMAT))


def save_checkpoint(estimator, path, run=None, arrays=None):
    """Write a model plus its training state (optimizer state, step, shuffling Generator) atomically.

    ``run`` (a JSON-able dict) and ``arrays`` (name -> ndarray) are the
    caller's own state, returned as they were by ``load_checkpoint``.
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
    _savez(path, arrays)


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
        raise ModelFileError(path, f"is truncated or corrupted ({_first_line(exc)})") from None
    except Exception as exc:  # zlib.error and whatever else a damaged stream raises
        raise ModelFileError(path, f"is truncated or corrupted ({type(exc).__name__}: {_first_line(exc)})") from None


# The entries fastdnn writes (W1, b1, ... and a checkpoint's run_* arrays besides); anything else is refused.
_MEMBERS = {*MODEL_ENTRIES, *STATE_ENTRIES, *GRAM_ENTRIES, *STREAM_ENTRIES, "run"}
# Besides what the layer sizes imply: the loss curve, text, a stream's block list, a checkpoint's run arrays.
_EXTRA_BYTES = 64 * 2**20


def _check_members(path):
    """Every member of the archive read from its .npy header before anything is decompressed: a known name,
    no objects, W and b of the shapes the layer sizes give, each no larger than its header declares, and all
    of them together no larger than a model of those layer sizes can hold (a few MB of zip can declare GB)."""
    with zipfile.ZipFile(path) as z:
        names = [i.filename[:-4] if i.filename.endswith(".npy") else i.filename for i in z.infolist()]
        if "format" not in names:
            _not_a_model(path, names)
        headers = {}
        for info in z.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            if not (name in _MEMBERS or name.startswith("run_") or (name[:1] in "Wb" and name[1:].isdigit())):
                raise ModelFileError(path, f"is not a fastdnn model file: it holds an entry fastdnn does not write "
                                           f"({info.filename!r})")
            with z.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                except (ValueError, SyntaxError, TypeError, tokenize.TokenError) as exc:  # the header is Python text
                    raise ModelFileError(path, f"is corrupted: the entry {name!r} is not an array ({exc})") from None
            if dtype.hasobject:
                raise ModelFileError(path, f"is corrupted: the entry {name!r} holds Python objects")
            size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
            if info.file_size > size + 65536:
                raise ModelFileError(path, f"is corrupted: the entry {name!r} holds more bytes than its header declares")
            headers[name] = (tuple(shape), size)
        if "layer_sizes" not in headers or headers["layer_sizes"][1] > 8 * 4096:
            return  # not a model, or one to refuse by its own checks (after this small read)
        with z.open("layer_sizes.npy") as f:
            dims = np.lib.format.read_array(f, allow_pickle=False)
    if dims.ndim != 1 or dims.dtype.kind not in "iu" or dims.size < 2 or (dims < 1).any():
        return  # refused by the model's own check
    dims = [int(d) for d in dims]
    for l in range(1, len(dims)):
        for key, shape in ((f"W{l}", (dims[l], dims[l - 1])), (f"b{l}", (dims[l], 1))):
            if key in headers and headers[key][0] != shape:
                raise ModelFileError(path, f"is corrupted: {key} declares shape {headers[key][0]}, but its layer sizes "
                                           f"{dims} give {shape}")
    params = sum(dims[l] * (dims[l - 1] + 1) for l in range(1, len(dims))) * 8
    gram = dims[1] * (dims[0] + 2 * GRAM_MAX_EXAMPLES + 1) * 8 if len(dims) > 1 else 0
    budget = 5 * params + gram + _EXTRA_BYTES  # parameters, Adam's two moments, the best epoch's, a stream's gradient
    total = sum(size for _, size in headers.values())
    if total > budget:
        raise ModelFileError(path, f"is corrupted or hostile: its entries declare {total:,} bytes, more than a model "
                                   f"of layer sizes {dims} holds ({budget:,} at most); it was not read")


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
        raise ModelFileError(path, f"is corrupted: its {what} are not valid JSON ({_first_line(exc)})") from None
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
            f"was written by fastdnn {writer} in model format version {version}; this fastdnn {_version()} reads "
            f"versions up to {FORMAT_VERSION}: upgrade fastdnn to read it",
        )
    if version < 1:
        raise ModelFileError(path, f"is corrupted: format version {version}")
    if fmt not in accept:
        raise ModelFileError(path, f"is a {fmt} file, not a {' or '.join(accept)} file")
    return fmt


def _estimator_from(arrays, path):
    """A DNNClassifier with the archive's options, parameters and classes, ready to predict."""
    from fastdnn.estimator import DNNClassifier

    dims = _require(arrays, "layer_sizes", path)
    if dims.ndim != 1 or dims.dtype.kind not in "iu" or dims.size < 2 or (dims < 1).any():
        raise ModelFileError(path, f"is corrupted: layer_sizes is {dims!r}")
    dims = [int(d) for d in dims]
    L = len(dims) - 1
    dtype = _scalar_text(arrays, "dtype", path)
    if dtype not in ("float32", "float64"):
        raise ModelFileError(path, f"is corrupted: dtype {dtype!r} (float32 or float64 expected)")
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
    if K < 2 or dims[-1] not in (1, K) or (dims[-1] == 1 and K != 2):
        raise ModelFileError(path, f"is corrupted: {K} classes for an output layer of {dims[-1]} units")
    options = _json(arrays, "options", path, "options")
    if not isinstance(options, dict):
        raise ModelFileError(path, "is corrupted: its options are not a JSON object")
    for name, value in options.items():
        # What _options_json writes: a number, text, true/false/null, or a list of numbers (the layer sizes).
        if isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, (list, dict)) for v in value)):
            raise ModelFileError(path, f"is corrupted: its option {name!r} is a nested JSON value, not a setting")
    if isinstance(options.get("hidden_layer_sizes"), list):
        options["hidden_layer_sizes"] = tuple(options["hidden_layer_sizes"])
    valid = DNNClassifier.param_names()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ModelFileError(path, f"has options this fastdnn does not know: {', '.join(unknown)}")
    estimator = DNNClassifier(**options)
    activations = _require(arrays, "activations", path)
    if dims[-1] != output_units(K, estimator.output):
        raise ModelFileError(path, f"is corrupted: {K} classes for an output layer of {dims[-1]} units with output "
                                   f"{estimator.output!r}")
    expected = [estimator.activation] * (L - 1) + [output_for(K, estimator.output)]
    if activations.dtype.kind != "U" or activations.tolist() != expected:
        raise ModelFileError(path, f"is corrupted: activations {activations.tolist()} disagree with its options ({expected})")
    batch = _scalar_int(arrays, "mini_batch_size", path)

    parameters = pack_parameters(raw, np.dtype(dtype).type)
    try:
        state = _training_state(arrays, path, parameters, estimator.optimizer)
        estimator.restore(classes, parameters, state, None if batch < 0 else batch)
    except ModelFileError:
        raise
    except (TypeError, ValueError, KeyError, RecursionError) as exc:  # RecursionError: rng_state nested too deeply
        raise ModelFileError(path, f"is corrupted: its options or training state are inconsistent "
                                   f"({_first_line(exc)})") from None
    return estimator


def _training_state(arrays, path, parameters, optimizer):
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
               "stall": 0, "stopped": False, "in_progress": False}
    if "state" in arrays:
        scalars.update(_json(arrays, "state", path, "training state values"))
    elif "step" in arrays:  # a version-1 checkpoint
        scalars["step"] = _scalar_int(arrays, "step", path)
    saved["scalars"] = _text(json.dumps(scalars))
    for key in ("best_parameters", *GRAM_ENTRIES, *STREAM_ENTRIES):
        if key in arrays:
            saved[key] = arrays[key]
    return state_from_arrays(parameters, saved)


def load_model(path):
    """The DNNClassifier saved at ``path``, ready to ``predict``.

    A checkpoint loads too (as the model at its epoch). The returned
    estimator continues training with ``warm_start=True`` from the saved
    parameters with a fresh optimizer state; a checkpoint restores that state.
    """
    arrays = _read_archive(path)
    _check_format(arrays, path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    return _estimator_from(arrays, path)


def load_checkpoint(path):
    """A ``Checkpoint``: the estimator with its optimizer state, step and shuffling Generator restored,
    so that ``fit`` with ``warm_start=True`` continues exactly where the saved run was."""
    arrays = _read_archive(path)
    _check_format(arrays, path, (CHECKPOINT_FORMAT,))
    estimator = _estimator_from(arrays, path)
    run = _json(arrays, "run", path, "run values")
    extra = {name[len("run_"):]: value for name, value in arrays.items() if name.startswith("run_")}
    return Checkpoint(estimator, run, extra)


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
