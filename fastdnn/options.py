"""Every training option in one table: its name, the course's name for it, the command's flag, default,
check and help.

``DNNClassifier``'s parameters are the names here, ``DNNRegressor``'s those whose
``tasks`` hold "regression" (their signatures are tested to match the table),
``fastdnn.model``'s are the ``course`` names, and ``fastdnn
train`` builds its options from the ``flag`` column, so an option is named,
defaulted, validated and explained once. An unknown choice lists the table's
choices wherever it is given.
"""

import argparse
import numbers
from dataclasses import dataclass, field

from fastdnn import validation as V

# learning_rate="auto": one rate per optimizer that trains well across the built-in dataset and
# scikit-learn's digits, breast_cancer, wine and iris (5-fold CV, 3 seeds, issue 10's note). gd and
# momentum below 0.1 under-train the small sets in 200 full-batch-sized epochs (wine 0.68 at 0.03);
# gd at 0.2 collapsed on unscaled digits. The course's momentum averages gradients
# (v = beta v + (1 - beta) g), so it steps like gd. Adam 0.003 beat 0.001 on every small set and
# keeps 7-10x of margin below where it collapses (0.02-0.03 on unscaled digits). Scale inputs.
AUTO_LEARNING_RATES = {"gd": 0.1, "momentum": 0.1, "adam": 0.003}
# batch_size="auto": scikit-learn's min(200, n_samples).
AUTO_BATCH = 200


def resolve_learning_rate(learning_rate, optimizer):
    return AUTO_LEARNING_RATES[optimizer] if learning_rate == "auto" else learning_rate


def resolve_batch_size(batch_size, m):
    """None (full batch) or a size in [1, m]."""
    if batch_size is None:
        return None
    if batch_size == "auto":
        return min(AUTO_BATCH, m)
    return batch_size


# ---------------------------------------------------------------------------- checks (value, name) -> value


def _sizes(value, name):
    sizes = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    try:
        sizes = list(sizes)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    return tuple(V.check_layer_sizes(sizes, name, allow_empty=True))


def _choice(choices):
    return lambda value, name: V.check_choice(value, choices, name)


def _learning_rate(value, name):
    return value if value == "auto" else V.check_positive(value, name)


def _batch_size(value, name):
    if value in (None, "auto"):
        return value
    if value == "full":  # the command line's word for None
        return None
    return V.check_positive(value, name, integer=True)


def _positive(value, name):
    return V.check_positive(value, name)


def _positive_int(value, name):
    return V.check_positive(value, name, integer=True)


def _seed_or_none(value, name):
    return None if value is None else V.check_seed(value, name)


def _threads(value, name):
    return None if value is None else V.check_positive(value, name, integer=True)


def _frozen(value, name):
    try:
        frozen = V.operator_index(value)
    except TypeError:
        frozen = -1
    if frozen < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return frozen


def _memory(value, name):
    """A byte count (int) or a size like "2GB"; returns bytes."""
    from fastdnn.stream import parse_memory

    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, str)):
        raise ValueError(f"{name} must be a size like 2GB or a number of bytes, got {value!r}")
    try:
        return parse_memory(value)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


def _dtype(value, name):
    if value is None:
        return None
    V.check_choice(str(getattr(value, "__name__", value)), DTYPES, name)
    return value


DTYPES = ("float32", "float64")


# ---------------------------------------------------------------------------- dropout


def _keep_probability(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1] (the probability of keeping a hidden unit; 1: no "
                         f"dropout), or one such number per hidden layer, got {value!r}")
    return float(value)


def _keep_prob(value, name):
    """keep_prob: one probability in (0, 1] for every hidden layer (a float), or one per hidden layer (a tuple of
    floats; ``check`` holds its length to hidden_layer_sizes')."""
    if isinstance(value, numbers.Real) or isinstance(value, (str, bytes)):
        return _keep_probability(value, name)
    try:
        values = list(value)
    except TypeError:
        values = None
    if not values:
        raise ValueError(f"{name} must be a number in (0, 1] or a non-empty sequence of them (one per hidden layer), "
                         f"got {value!r}")
    return tuple(_keep_probability(v, f"{name}[{i}]") for i, v in enumerate(values))


def keep_probs(keep_prob, n_hidden, name="keep_prob"):
    """Each hidden layer's keep probability, checked (one number for every layer, or one per layer): a tuple of
    ``n_hidden`` floats in (0, 1]. Every entry 1 is no dropout. (No hidden layer: an empty sequence too.)"""
    if n_hidden == 0 and isinstance(keep_prob, (tuple, list)) and not keep_prob:
        return ()
    value = _keep_prob(keep_prob, name)
    if isinstance(value, float):
        return (value,) * n_hidden
    if len(value) != n_hidden:
        raise ValueError(f"{name} gives {len(value)} keep probabilities for {n_hidden} hidden layer(s): give one "
                         "number for every hidden layer, or one per hidden layer")
    return value


def check_dropout_seed(dropout_seed, seed):
    """``model``'s dropout seed (reference and fast path): the run's ``seed`` when None, else the value; an
    integer in [0, 2**32 - 1]."""
    return V.check_seed(seed if dropout_seed is None else dropout_seed, "dropout_seed")


# ---------------------------------------------------------------------------- learning-rate schedules


def _whole(value, name):
    return V.check_positive(value, name, integer=True)


def _whole_or_none(value, name):
    return None if value is None else V.check_positive(value, name, integer=True)


def _open_fraction(value, name):
    return V.check_open_fraction(value, name)


def _gamma(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


# Each schedule: what it does, and its parameters in the order ``lr_schedule`` gives them ("name:p1:p2", each
# omitted or left empty from the right taking its default) as (name, default, check, int or float). Epoch e counts
# from 0 over every fit of a run (n_iter_), so a resumed run, a warm start and partial_fit go on with it; lr0 is
# learning_rate. engine.Schedule computes the rates.
LR_SCHEDULES = {
    "constant": ("lr0 every epoch", ()),
    # The course's model() updates the rate after each epoch's minibatches: epoch 0 trains at lr0 and epoch
    # e >= 1 at update_lr(lr0, e - 1, decay_rate), or with time_interval at schedule_lr_decay(lr0, e - 1, ...).
    "inverse": ("the course's decay: epoch e >= 1 at lr0 / (1 + decay_rate k), k = e - 1 or with time_interval "
                "floor((e - 1) / time_interval)",
                (("decay_rate", 1.0, V.check_non_negative, float), ("time_interval", None, _whole_or_none, int))),
    "step": ("lr0 factor^floor(e / every)", (("every", 10, _whole, int), ("factor", 0.5, _open_fraction, float))),
    "exponential": ("lr0 gamma^e", (("gamma", 0.95, _gamma, float),)),
    "cosine": ("from lr0 down a half cosine to floor lr0 at epoch period (none: the run's max_iter), then there",
               (("floor", 0.0, V.check_fraction, float), ("period", None, _whole_or_none, int))),
    "plateau": ("times factor after patience epochs without a validation score better by more than tol; needs "
                "validation data (early_stopping, or fit's validation_data)",
                (("factor", 0.1, _open_fraction, float), ("patience", 10, _whole, int))),
}
# Schedules whose rates depend on the run's validation scores, known only epoch by epoch.
VALIDATED_SCHEDULES = ("plateau",)


def check_decay(decay_rate, time_interval):
    """The course's decay arguments of ``model`` (reference and fast path): decay_rate None (no decay) or a
    finite number >= 0; time_interval None (the rate decays every epoch) or a positive integer, which needs a
    decay_rate. Returns them checked."""
    if decay_rate is None:
        if time_interval is not None:
            raise ValueError(f"time_interval ({time_interval!r}) schedules a decay: give decay_rate too")
        return None, None
    return V.check_non_negative(decay_rate, "decay_rate"), _whole_or_none(time_interval, "time_interval")


def parse_lr_schedule(value, name="lr_schedule"):
    """(schedule name, {parameter: value}) of an ``lr_schedule`` text such as "step:10:0.5", every parameter
    there (defaults filled in) and checked; one clear ValueError naming the option otherwise."""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be text like 'step:10:0.5' (one of {', '.join(LR_SCHEDULES)}, then its "
                         f"parameters after colons), got {value!r}")
    kind, *parts = value.strip().split(":")
    V.check_choice(kind, tuple(LR_SCHEDULES), name)
    table = LR_SCHEDULES[kind][1]
    if len(parts) > len(table):
        names = ":".join(p[0] for p in table)
        raise ValueError(f"{name} {value!r}: {kind!r} takes at most {len(table)} parameter(s) "
                         f"({kind}{':' + names if names else ''}), got {len(parts)}")
    out = {}
    for i, (param, default, check, kind_of) in enumerate(table):
        text = parts[i].strip() if i < len(parts) else ""
        if text == "" or text.lower() == "none":
            number = default
        else:
            try:
                number = kind_of(text)
            except ValueError:
                what = "an integer" if kind_of is int else "a number"
                raise ValueError(f"{name} {value!r}: {param} must be {what}, got {text!r}") from None
        out[param] = None if number is None else check(number, f"{name} {value!r}: {param}")
    return kind, out


def lr_schedule_text(kind, params):
    """The canonical text of a parsed schedule: every parameter given, a trailing none left out; it parses
    back to the same values (floats written as repr writes them)."""
    parts = [repr(float(v)) if isinstance(v, float) else str(v) if v is not None else "none" for v in params.values()]
    while parts and parts[-1] == "none":
        parts.pop()
    return ":".join([kind, *parts])


def _lr_schedule(value, name):
    return lr_schedule_text(*parse_lr_schedule(value, name))


def _lr_schedule_help():
    def shown(value):
        return "none" if value is None else f"{value:g}"

    return ("the learning rate of epoch e (from 0): NAME[:P1[:P2]], parameters from the right optional: " + "; ".join(
        kind + "".join(f":{p[0]}={shown(p[1])}" for p in table) + f" ({what})"
        for kind, (what, table) in LR_SCHEDULES.items()))


# ---------------------------------------------------------------------------- command-line text -> value


def _parse_sizes(text):
    text = text.strip()
    if text.lower() in ("", "none"):
        return ()
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hidden layer sizes like 20,7,5, got {text!r}") from None


def _parse_int(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _parse_float(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _parse_keep_prob(text):
    """"0.8" for every hidden layer, or one per hidden layer: "0.9,0.8" (``fastdnn train``) or "0.9:0.8" (the
    form a sweep takes, whose commas separate its values)."""
    parts = [p for p in text.replace(":", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a keep probability like 0.8, or one per hidden layer like "
                                         f"0.9,0.8, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected a keep probability like 0.8, got {text!r}")
    return values[0] if len(values) == 1 and ":" not in text and "," not in text else tuple(values)


def _class_weight(value, name):
    """class_weight: None, "balanced" (n_samples / (n_classes * count of the class), scikit-learn's), or a dict
    of class label -> weight (finite, non-negative; classes not named weigh 1)."""
    if value is None or (isinstance(value, str) and value == "balanced"):
        return value
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be None, 'balanced' or a dict of class -> weight, got {value!r}")
    for label, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not 0 <= weight < float("inf"):
            raise ValueError(f"{name}[{label!r}] must be a finite non-negative number, got {weight!r}")
    return value


def _parse_class_weight(text):
    """"balanced", "none", or "LABEL=W,LABEL=W" (labels as the data write them; in a sweep, whose commas separate
    values, none and balanced)."""
    if text in ("balanced", "none"):
        return None if text == "none" else text
    weights = {}
    for part in text.split(","):
        label, _, weight = part.partition("=")
        try:
            weights[label.strip()] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected 'balanced', 'none' or LABEL=W,LABEL=W, got {text!r}") from None
    return weights


def _parse_learning_rate(text):
    return "auto" if text == "auto" else _parse_float(text)


def _parse_batch(text):
    if text in ("full", "auto"):
        return text  # "full" becomes None when checked: None on the command line means "not given"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'full' or 'auto', got {text!r}") from None


@dataclass(frozen=True)
class Option:
    """One option. ``flag`` None: not on the command line; ``course``: its name in ``fastdnn.model``
    (None where the course has no such option); ``command_default``: the command's default where it
    differs from the estimator's (a larger dataset, fewer epochs); ``parse``: command-line text -> value;
    ``switch``: a command-line flag without a value (sets True); ``tasks``: the estimators that take it
    ("classification": DNNClassifier, "regression": DNNRegressor, whose output is the identity, not a choice)."""

    name: str
    default: object
    check: object
    help: str
    flag: str = None
    course: str = None
    choices: tuple = None
    parse: object = None
    metavar: str = None
    switch: bool = False
    command_default: object = field(default=None)
    tasks: tuple = ("classification", "regression")

    def validate(self, value):
        return self.check(value, self.name)


TASKS = ("classification", "regression")
CLASSIFIER_ONLY = ("classification",)


OPTIONS = (
    Option("hidden_layer_sizes", (100,), _sizes, "hidden layer widths, e.g. 20,7,5 (the course's); 'none' for no hidden layer",
           flag="--layers", parse=_parse_sizes, metavar="SIZES", command_default=(64, 32)),
    Option("activation", "relu", _choice(V.HIDDEN_ACTIVATIONS), "hidden activation", flag="--activation",
           course="hidden_activation", choices=V.HIDDEN_ACTIVATIONS),
    Option("loss", "cross_entropy", _choice(V.LOSSES), "cost function (a regressor's is mse)", flag="--loss", course="loss",
           choices=V.LOSSES, tasks=CLASSIFIER_ONLY),
    Option("output", "auto", _choice(V.OUTPUT_ENCODINGS), "output encoding: 'auto' one sigmoid unit for two classes and "
           "a softmax for more; 'softmax' a softmax over two classes too (a regressor's is the identity)", flag="--output",
           choices=V.OUTPUT_ENCODINGS, tasks=CLASSIFIER_ONLY),
    Option("optimizer", "adam", _choice(V.OPTIMIZERS), "update rule", flag="--optimizer", course="optimizer",
           choices=V.OPTIMIZERS),
    Option("learning_rate", "auto", _learning_rate,
           "step size; 'auto' picks one per optimizer (" + ", ".join(f"{k} {v:g}" for k, v in AUTO_LEARNING_RATES.items()) + ")",
           flag="--lr", course="learning_rate", parse=_parse_learning_rate, metavar="LR|auto"),
    Option("lr_schedule", "constant", _lr_schedule, _lr_schedule_help(), flag="--lr-schedule", parse=str,
           metavar="NAME[:P...]"),
    Option("batch_size", "auto", _batch_size, f"minibatch size; 'auto' min({AUTO_BATCH}, n); 'full' (None in Python) the course's full batch",
           flag="--batch-size", course="mini_batch_size", parse=_parse_batch, metavar="N|full|auto", command_default=256),
    Option("max_iter", 200, _positive_int, "epochs: passes over the data (with --resume, the total)", flag="--epochs",
           course="num_epochs", parse=_parse_int, metavar="N", command_default=5),
    Option("l2", 0.0, V.check_l2, "L2 strength lambda: cost + l2/(2m) sum ||W||^2", flag="--l2", course="lambd",
           parse=_parse_float),
    Option("keep_prob", 1.0, _keep_prob, "inverted dropout: the probability of keeping each hidden unit while "
           "training, in (0, 1]; one for every hidden layer, or one per hidden layer (0.9,0.8; in a sweep, whose commas "
           "separate values, 0.9:0.8); 1 keeps every unit (no dropout); predictions never drop", flag="--keep-prob",
           course="keep_prob", parse=_parse_keep_prob, metavar="P|P1,P2,..."),
    Option("beta", 0.9, V.check_fraction, "momentum's beta", flag="--beta", course="beta", parse=_parse_float),
    Option("beta1", 0.9, V.check_fraction, "Adam's beta1", flag="--beta1", course="beta1", parse=_parse_float),
    Option("beta2", 0.999, V.check_fraction, "Adam's beta2", flag="--beta2", course="beta2", parse=_parse_float),
    Option("epsilon", 1e-8, _positive, "Adam's epsilon", flag="--epsilon", course="epsilon", parse=_parse_float),
    Option("init", "deep", _choice(V.INITIALIZATIONS), "weight initialisation: 'deep' the course's 1/sqrt(n), 'he', 'xavier'",
           flag="--init", course="init", choices=V.INITIALIZATIONS),
    Option("random_state", None, _seed_or_none, "seed of the initialisation, shuffling and validation split",
           flag="--seed", course="seed", parse=_parse_int, metavar="N", command_default=0),
    Option("warm_start", False, V.check_bool, "fit continues from the fitted parameters and optimizer state"),
    Option("early_stopping", False, V.check_bool,
           "hold out validation_fraction, stop when its score (accuracy; a regressor's R^2) has not improved by tol for "
           "n_iter_no_change epochs, keep the best",
           flag="--early-stopping", switch=True),
    Option("validation_fraction", 0.1, V.check_open_fraction, "the fraction held out for validation",
           flag="--validation-fraction", parse=_parse_float, metavar="F"),
    Option("n_iter_no_change", 10, _positive_int, "early stopping's patience in epochs", flag="--n-iter-no-change",
           parse=_parse_int, metavar="N"),
    Option("tol", 1e-4, V.check_non_negative, "early stopping's least improvement", flag="--tol", parse=_parse_float),
    Option("class_weight", None, _class_weight, "weights of the classes, as sample weights: 'balanced' n / (k count) "
           "each (scikit-learn's), LABEL=W,LABEL=W (classes not named weigh 1), or none", flag="--class-weight",
           parse=_parse_class_weight, metavar="balanced|L=W,...", tasks=CLASSIFIER_ONLY),
    Option("frozen_layers", 0, _frozen, "the first k layers are not trained (transfer learning)", course="frozen_layers"),
    Option("dtype", None, _dtype, "compute precision; default the data's float type, else float64", flag="--dtype",
           course="dtype", choices=DTYPES),
    Option("threads", None, _threads, "the most threads a training step uses (the step's own pool, or BLAS's), at most "
           "the usable cores; default every usable core; a step takes one per 32 MFLOP of its products up to it",
           flag="--threads", course="threads", parse=_parse_int, metavar="N"),
    Option("memory", "1GB", _memory, "memory for training data read from disk (.npy, .npz, HDF5, a folder of shards): "
           "data that fit are read whole, larger data stream through it in two blocks of rows, one read while the "
           "other trains; data already in memory are used as they are", flag="--memory", course="memory", parse=str,
           metavar="SIZE"),
    Option("verbose", False, V.check_bool, "print each epoch's cost as training goes"),
)

BY_NAME = {option.name: option for option in OPTIONS}
DEFAULTS = {option.name: option.default for option in OPTIONS}
COMMAND_DEFAULTS = {o.name: o.default if o.command_default is None else o.command_default for o in OPTIONS}

# What the command builds: a row of the command alone, not a parameter of the estimators (DEFAULTS, the sweeps'
# names and the estimators' signatures are OPTIONS' rows only).
COMMAND_OPTIONS = (
    Option("task", "classification", _choice(TASKS), "what to train: 'classification' a DNNClassifier of the labels' "
           "classes, 'regression' a DNNRegressor of continuous targets (not detected from the labels: give it)",
           flag="--task", choices=TASKS),
)
ROWS = {**BY_NAME, **{option.name: option for option in COMMAND_OPTIONS}}


def names(task):
    """The options an estimator of ``task`` takes ("classification": DNNClassifier's, "regression": DNNRegressor's),
    in the table's order."""
    V.check_choice(task, TASKS, "task")
    return [option.name for option in OPTIONS if task in option.tasks]


def check(params, m=None):
    """Every option in ``params`` (estimator names) checked; returns the values as checked.

    With m (training examples), a batch size larger than m is refused; the
    frozen layers must leave the output layer trainable.
    """
    unknown = sorted(set(params) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(unknown)}; valid: {', '.join(sorted(BY_NAME))}")
    out = {name: BY_NAME[name].validate(value) for name, value in params.items()}
    batch = out.get("batch_size")
    if m is not None and isinstance(batch, int) and batch > m:
        raise ValueError(f"batch_size must be between 1 and the number of training samples {m}, got {batch}")
    if isinstance(out.get("keep_prob"), tuple) and "hidden_layer_sizes" in out:
        keep_probs(out["keep_prob"], len(out["hidden_layer_sizes"]))
    if "frozen_layers" in out and "hidden_layer_sizes" in out and out["frozen_layers"] > len(out["hidden_layer_sizes"]):
        n = len(out["hidden_layer_sizes"])
        raise ValueError(f"frozen_layers must be in [0, {n}] (the output layer always trains), got {out['frozen_layers']}")
    return out


def add_arguments(group, names, defaults=None):
    """Add the flags of the options ``names`` to an argparse group; values default to None (= not given)
    and the help shows ``defaults`` (the command's) or the table's."""
    defaults = defaults or COMMAND_DEFAULTS
    for name in names:
        option = ROWS[name]
        shown = defaults.get(name, option.default)
        shown = {None: "none"}.get(shown, shown) if not isinstance(shown, tuple) else ",".join(map(str, shown))
        text = f"{option.help} (default {shown})"
        if option.switch:
            group.add_argument(option.flag, dest=name, action="store_true", default=None, help=option.help)
        else:
            group.add_argument(option.flag, dest=name, type=option.parse, choices=option.choices,
                               metavar=option.metavar, default=None, help=text.replace("%", "%%"))
