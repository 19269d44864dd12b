"""The ``fastdnn`` command (also ``python -m fastdnn``).

    fastdnn train [--data FILE [--test FILE]] [options]   train a DNNClassifier, save it as .npz
    fastdnn predict MODEL DATA [--out preds.csv]            labels (and probabilities) as CSV
    fastdnn evaluate MODEL DATA                             accuracy and confusion matrix
    fastdnn check [--data FILE] [--layers ...]              fast path vs reference, stage by stage
    fastdnn bench [--layers ...]                            step time and GFLOP/s beside the BLAS peak

A problem with the user's input (a missing or malformed file, a model that
does not fit the data, an option out of range) ends the command with one line
on stderr naming the file and the problem and a non-zero status; ``--debug``
shows the traceback instead. A run that fails writes nothing: models and plots
are written only at the end, atomically, and checkpoints only replace older
checkpoints.
"""

import argparse
import csv
import math
import os
import sys
import time

import numpy as np

from fastdnn import _validation as V
from fastdnn.threads import SMALL_STEP_FLOPS, training_threads, usable_cores

DEFAULT_OUT = "fastdnn-model.npz"

# ``fastdnn train``'s defaults: a network and optimiser that learn the built-in
# dataset (300,000 x 200) to 91.5% validation accuracy in 5 epochs (~2 s on two cores). Options left
# None are filled from here; on --resume the checkpoint's values are used instead.
TRAIN_DEFAULTS = {
    "layers": (64, 32),
    "activation": "relu",
    "loss": "cross_entropy",
    "optimizer": "adam",
    "lr": 0.001,
    "batch_size": 256,
    "epochs": 5,
    "l2": 0.0,
    "beta": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "epsilon": 1e-8,
    "init": "deep",
    "seed": 0,
    "dtype": None,
    "early_stopping": False,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
    "tol": 1e-4,
}
# CLI option -> DNNClassifier parameter, for the options that map one to one.
ESTIMATOR_OPTIONS = {
    "activation": "activation",
    "loss": "loss",
    "optimizer": "optimizer",
    "lr": "learning_rate",
    "l2": "l2",
    "beta": "beta",
    "beta1": "beta1",
    "beta2": "beta2",
    "epsilon": "epsilon",
    "init": "init",
    "seed": "random_state",
    "dtype": "dtype",
    "early_stopping": "early_stopping",
    "validation_fraction": "validation_fraction",
    "n_iter_no_change": "n_iter_no_change",
    "tol": "tol",
}
BUILTIN_SAMPLES = 300_000
BUILTIN_FEATURES = 200
# A chunk of epochs between two looks from Python (progress, checkpoint) lasts about this long.
CHUNK_SECONDS = 0.25


class CLIError(Exception):
    """A problem to report to the user in one line (exit status 1)."""


# ---------------------------------------------------------------------------- argument types


def _layer_sizes(text):
    text = text.strip()
    if text.lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hidden layer sizes like 20,7,5, got {text!r}") from None
    try:
        return tuple(V.check_layer_sizes(sizes, "layer sizes"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seed(text):
    try:
        return V.check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32 - 1], got {text!r}") from None


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _batch_size(text):
    if text in ("full", "auto"):
        return text
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'full' or 'auto', got {text!r}") from None


def _threads_option(requested):
    """--threads as given, capped at the usable cores (saying so); None leaves the choice to the policy."""
    cores = usable_cores()
    if requested is not None and requested > cores:
        _say(f"note: --threads {requested} is more than the {cores} usable cores; using {cores}")
        return cores
    return requested


# ---------------------------------------------------------------------------- parser


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")

    parser = argparse.ArgumentParser(
        prog="fastdnn", description="Train the course's L-layer network fast on a CPU, and check it against the reference."
    )
    parser.add_argument("--debug", action="store_true", default=False, help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"fastdnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    fmt = argparse.RawDescriptionHelpFormatter
    train = sub.add_parser(
        "train", parents=[common], formatter_class=fmt, help="train a classifier and save it",
        description="Train a DNNClassifier on --data (or the built-in dataset), print its progress and accuracy, save it.\n"
        "Data: the course's .h5 (train_set_x/train_set_y), .npz (X, y) or .csv (header row, label column).",
    )
    d = TRAIN_DEFAULTS
    g = train.add_argument_group("data")
    g.add_argument("--data", metavar="FILE", help="training data (.h5/.hdf5, .npz, .csv); default: the built-in dataset")
    g.add_argument("--test", metavar="FILE", help="test data, scored at the end")
    g.add_argument("--label", default="label", help="the CSV column holding the labels (default: label)")
    g.add_argument("--samples", type=_positive_int, metavar="N", help=f"built-in dataset: examples (default {BUILTIN_SAMPLES:,})")
    g.add_argument("--features", type=_positive_int, metavar="N", help=f"built-in dataset: features (default {BUILTIN_FEATURES})")
    g.add_argument("--validation-fraction", type=float, metavar="F", help=f"held out for validation when there is no --test, "
                   f"and for --early-stopping (default {d['validation_fraction']})")
    g = train.add_argument_group("network and optimiser")
    g.add_argument("--layers", type=_layer_sizes, metavar="SIZES", help="hidden layer sizes, e.g. 20,7,5 (default 64,32; 'none' for no hidden layer)")
    g.add_argument("--activation", choices=["relu", "leaky_relu", "tanh", "sigmoid"], help=f"hidden activation (default {d['activation']})")
    g.add_argument("--loss", choices=["cross_entropy", "mse"], help=f"(default {d['loss']})")
    g.add_argument("--init", choices=["deep", "he", "xavier"], help=f"weight initialisation (default {d['init']}, the course's)")
    g.add_argument("--optimizer", choices=["gd", "momentum", "adam"], help=f"(default {d['optimizer']})")
    g.add_argument("--lr", type=float, help=f"learning rate (default {d['lr']})")
    g.add_argument("--epochs", type=_positive_int, metavar="N", help=f"passes over the data (default {d['epochs']}); with --resume, the total")
    g.add_argument("--batch-size", type=_batch_size, metavar="N|full|auto", help=f"minibatch size, 'full' (the course's full batch) or 'auto' "
                   f"(min(200, n)); default {d['batch_size']}, or all examples when fewer")
    g.add_argument("--l2", type=float, help="L2 strength lambda (default 0)")
    g.add_argument("--beta", type=float, help=f"momentum's beta (default {d['beta']})")
    g.add_argument("--beta1", type=float, help=f"Adam's beta1 (default {d['beta1']})")
    g.add_argument("--beta2", type=float, help=f"Adam's beta2 (default {d['beta2']})")
    g.add_argument("--epsilon", type=float, help=f"Adam's epsilon (default {d['epsilon']})")
    g.add_argument("--dtype", choices=["float32", "float64"], help="compute precision (default: the data's float type, else float64)")
    g.add_argument("--seed", type=_seed, help=f"seed of the initialisation, shuffling and validation split (default {d['seed']})")
    g.add_argument("--early-stopping", action="store_true", default=None,
                   help="stop when validation accuracy has not improved by --tol for --n-iter-no-change epochs; keep the best")
    g.add_argument("--n-iter-no-change", type=_positive_int, metavar="N", help=f"(default {d['n_iter_no_change']})")
    g.add_argument("--tol", type=float, help=f"(default {d['tol']})")
    g.add_argument("--threads", type=_positive_int, metavar="N", help="BLAS threads, at most the usable cores (default: 1 when "
                   f"a step's GEMMs are under {SMALL_STEP_FLOPS / 1e6:.0f} MFLOP, else the {usable_cores()} usable cores; "
                   "on a busy machine 1 is faster)")
    g = train.add_argument_group("output")
    g.add_argument("--out", metavar="FILE", help=f"where to save the model (default ./{DEFAULT_OUT})")
    g.add_argument("--plot", metavar="PNG", help="write the cost curve to this image (needs fastdnn[plot])")
    g.add_argument("--checkpoint-every", type=_positive_int, metavar="N", help="save a checkpoint every N epochs (and at the end)")
    g.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: MODEL.ckpt.npz beside --out, or the --resume file)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT exactly where it stopped")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", parents=[common], help="predict labels with a saved model",
                             description="Predict a label for every example of DATA; CSV to --out or stdout.")
    predict.add_argument("model", metavar="MODEL")
    predict.add_argument("data", metavar="DATA")
    predict.add_argument("--out", metavar="FILE", help="write the predictions here (CSV) instead of stdout")
    predict.add_argument("--proba", action="store_true", help="add one probability column per class")
    predict.add_argument("--label", default="label", help="the CSV label column, ignored if present (default: label)")
    predict.set_defaults(func=cmd_predict)

    evaluate = sub.add_parser("evaluate", parents=[common], help="accuracy and confusion matrix of a saved model",
                              description="Score a saved model on labelled DATA.")
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument("data", metavar="DATA")
    evaluate.add_argument("--label", default="label", help="the CSV label column (default: label)")
    evaluate.set_defaults(func=cmd_evaluate)

    check = sub.add_parser(
        "check", parents=[common], formatter_class=fmt, help="prove the fast path computes the reference's numbers",
        description="Run the fast path and the plain-numpy reference side by side (the course's functions, one BLAS\n"
        "thread) for a few gradient steps on your network and data; print the largest difference per layer and\n"
        "stage; exit 1 if any exceeds the tolerance for the dtype.",
    )
    check.add_argument("--data", metavar="FILE", help="data (.h5, .npz, .csv); default: the built-in dataset")
    check.add_argument("--label", default="label", help="the CSV label column (default: label)")
    check.add_argument("--samples", type=_positive_int, default=1000, help="built-in dataset: examples (default 1000)")
    check.add_argument("--features", type=_positive_int, default=100, help="built-in dataset: features (default 100)")
    check.add_argument("--layers", type=_layer_sizes, default=(20, 7, 5), help="hidden layer sizes (default 20,7,5)")
    check.add_argument("--batch", type=_positive_int, default=256, help="examples per step: the first N (default 256)")
    check.add_argument("--steps", type=_positive_int, default=3, help="gradient steps (default 3)")
    check.add_argument("--lr", type=float, default=0.0075, help="learning rate (default 0.0075, the course's)")
    check.add_argument("--optimizer", choices=["gd", "momentum", "adam"], default="gd")
    check.add_argument("--activation", choices=["relu", "leaky_relu", "tanh", "sigmoid"], default="relu")
    check.add_argument("--loss", choices=["cross_entropy", "mse"], default="cross_entropy")
    check.add_argument("--l2", type=float, default=0.0, help="L2 strength lambda (default 0)")
    check.add_argument("--init", choices=["deep", "he", "xavier"], default="deep")
    check.add_argument("--seed", type=_seed, default=1, help="initialisation seed (default 1, the course's)")
    check.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="the fast path's dtype (default float64)")
    check.set_defaults(func=cmd_check)

    bench = sub.add_parser(
        "bench", parents=[common], formatter_class=fmt, help="time the fast path beside the reference",
        description="Time training steps of the fast path and the reference, each in its own process, and print\n"
        "the achieved GFLOP/s beside this machine's BLAS peak (a large square GEMM through SciPy's ?gemm).",
    )
    bench.add_argument("--layers", type=_layer_sizes, default=(20, 7, 5), help="hidden layer sizes (default 20,7,5)")
    bench.add_argument("--features", type=_positive_int, default=12288, help="input size (default 12288, the cat images)")
    bench.add_argument("--samples", type=_positive_int, default=209, help="examples (default 209, the cat training set)")
    bench.add_argument("--batch", type=_positive_int, help="minibatch size (default: full batch)")
    bench.add_argument("--dtype", choices=["float32", "float64"], default="float64", help="the fast path's dtype (default float64; the reference's is float64)")
    bench.add_argument("--optimizer", choices=["gd", "momentum", "adam"], default="gd")
    bench.add_argument("--lr", type=float, default=0.0075)
    bench.add_argument("--iterations", type=_positive_int, default=20,
                       help="timed steps per repeat, at least (whole epochs are timed; default 20)")
    bench.add_argument("--repeats", type=_positive_int, default=3, help="timed repeats; the median is reported (default 3)")
    bench.add_argument("--threads", type=_positive_int, default=usable_cores(), help="BLAS threads (default: the usable cores)")
    bench.add_argument("--peak-size", type=_positive_int, help="n of the n^3 peak GEMM (default 2048 float32, 1536 float64)")
    bench.add_argument("--no-reference", action="store_true", help="time the fast path only")
    bench.set_defaults(func=cmd_bench)
    return parser


def _version():
    from fastdnn import __version__

    return __version__


# ---------------------------------------------------------------------------- entry point


def main(argv=None):
    """Run the command in ``argv`` (default sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader of our output went away (``fastdnn predict ... | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"fastdnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error becomes one line; --debug shows the traceback
        if args.debug:
            raise
        print(f"fastdnn {args.command}: error: {_describe(exc)}", file=sys.stderr)
        return 1


def _describe(exc):
    """One line for the user."""
    from fastdnn.data import DataError, MissingDependencyError
    from fastdnn.io import ModelFileError
    from fastdnn.training import DivergenceError

    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, (CLIError, DataError, ModelFileError, MissingDependencyError, DivergenceError, ValueError,
                          TypeError, OSError)):
        text = str(exc)
    else:
        text = f"internal error, {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return " ".join(text.split())


def _say(*lines):
    for line in lines:
        print(line, flush=True)


# ---------------------------------------------------------------------------- train


def cmd_train(args):
    from fastdnn import io as fio
    from fastdnn.data import fingerprint, load_dataset, split

    checkpoint = None
    if args.resume:
        checkpoint = fio.load_checkpoint(args.resume)
        if "epoch" not in checkpoint.run or "data" not in checkpoint.run:
            raise CLIError(f"{args.resume}: is a checkpoint without the command's run state; continue it from Python")
    explicit_out = args.out is not None
    # A resumed run saves where its first part was told to, unless told otherwise now.
    out = args.out or (checkpoint.run.get("out") if checkpoint else None) or DEFAULT_OUT
    options = _train_options(args, checkpoint)
    # A resumed run goes on checkpointing as it did, unless told otherwise.
    every = args.checkpoint_every or (checkpoint.run.get("checkpoint_every") if checkpoint else None)
    ckpt_path = args.checkpoint or args.resume or _checkpoint_path_for(out)
    inputs = [p for p in (args.data, args.test, args.resume) if p]
    # Every destination is checked before any work, so a refusal costs nothing.
    _check_writable(out, explicit_out, "model", inputs)
    if every:
        _check_writable(ckpt_path, bool(args.checkpoint or args.resume), "checkpoint",
                        [p for p in (args.data, args.test, out) if p])
    if args.plot:
        from fastdnn.data import import_optional

        _plot_format(args.plot)
        import_optional("matplotlib", "plot", "--plot")
        _check_writable(args.plot, True, "plot", inputs + [out, ckpt_path if every else out])

    data, data_spec = _training_data(args, checkpoint)
    dtype = np.dtype(options["dtype"]) if options["dtype"] else (
        data.X.dtype if data.X.dtype in (np.float32, np.float64) else np.dtype(np.float64))
    # Converted once here, so the estimator never copies it again.
    X = np.ascontiguousarray(data.X, dtype=dtype)
    y = data.y
    test = None
    if args.test:
        test = load_dataset(args.test, label=args.label, prefer="test")
        if test.n_features != data.n_features:
            raise CLIError(f"{args.test}: has {test.n_features} features but the training data has {data.n_features}")
        _check_label_kinds(args.test, test.y, data.y, "the training labels are")
    # A held-out validation set: for early stopping, and for reporting when there is no --test.
    # A resumed run splits as its first part did, whatever --test says now.
    hold_out = data_spec["validation"] if checkpoint else (test is None or options["early_stopping"])
    data_spec["validation"] = hold_out
    X_val = y_val = None
    if hold_out:
        X, y, X_val, y_val = split(X, y, options["validation_fraction"], options["seed"])
    try:
        V.check_class_labels(y, "the labels")
    except ValueError as exc:
        raise CLIError(f"{data.describe()}: {exc}") from None
    classes = np.unique(y)
    if len(classes) < 2:
        raise CLIError(f"{data.describe()}: the training labels hold a single class ({classes.tolist()}); a classifier needs two")
    data_spec["fingerprint"] = fingerprint(X, y) if every or checkpoint else None

    from fastdnn.estimator import DNNClassifier

    if checkpoint:
        if checkpoint.run["data"].get("fingerprint") != data_spec["fingerprint"]:
            raise CLIError(f"{args.resume}: was trained on other data than {data.describe()} (or on another split of it)")
        est = checkpoint.estimator
        target = args.epochs or checkpoint.run.get("epochs") or est.max_iter
        threads = _threads_option(args.threads) or est.threads
        # The trainer keeps its own thread setting; both change together.
        est.set_params(threads=threads, max_iter=target)
        est._trainer.threads = threads
        state = _RunState.from_checkpoint(checkpoint)
    else:
        target = options["epochs"]
        batch = options["batch_size"]
        if args.batch_size is None and isinstance(batch, int) and batch > X.shape[0]:
            batch = X.shape[0]  # the default batch on a dataset smaller than it: one full batch
        K = len(classes)
        dims = [X.shape[1], *options["layers"], 1 if K == 2 else K]
        threads = _threads_option(args.threads)
        est = DNNClassifier(**_estimator_params(options, batch, threads))
        state = _RunState()

    _print_train_header(data, X, X_val, test, est, options, classes, target, state, dtype)
    compiled = _warm_up(est.get_params(), X.shape[1], dtype, classes)
    if compiled:
        _say(f"compiled kernels ready in {compiled:.1f} s")
    if state.epoch >= target or state.stopped:
        _say(f"{args.resume}: its run is complete at epoch {state.epoch}"
             + (" (stopped early)" if state.stopped else f" of {target}") + "; nothing to train")

    def save_checkpoint():
        run = {"epochs": target, "checkpoint_every": every, "out": os.path.abspath(out), "data": data_spec,
               **state.to_json()}
        fio.save_checkpoint(est, ckpt_path, run=run, arrays=state.arrays())

    training = _Training(est, X, y, X_val, y_val, options, state, target)
    try:
        training.run(every, save_checkpoint, quiet=args.quiet)
    except KeyboardInterrupt:
        where = f"; the checkpoint at epoch {state.last_checkpoint} is {ckpt_path}" if state.last_checkpoint else ""
        print(f"fastdnn train: interrupted at epoch {state.epoch}; no model saved{where}", file=sys.stderr)
        return 130
    training.finish()

    _print_costs(est.loss_curve_)
    scores = [f"train accuracy {est.score(X, y):.4f}"]
    if X_val is not None:
        scores.append(f"validation accuracy {est.score(X_val, y_val):.4f}")
    if test is not None:
        scores.append(f"test accuracy {est.score(np.asarray(test.X, dtype), test.y):.4f}")
    _say("   ".join(scores))
    if state.best_epoch is not None:
        _say(f"early stopping: kept epoch {state.best_epoch}'s parameters (validation accuracy {state.best:.4f})")
    # The image is drawn before anything is written: a failure to draw it saves nothing.
    image = _draw_costs(est, options, _plot_format(args.plot)) if args.plot else None
    fio.save_model(est, out)
    seconds = state.session_seconds
    rate = f", {X.shape[0] * state.session_epochs / seconds:,.0f} examples/s" if seconds > 0 else ""
    _say(f"model saved to {out} (trained {state.session_epochs} epochs in {seconds:.1f} s{rate})")
    if every:
        _say(f"checkpoint at epoch {state.last_checkpoint}: {ckpt_path}")
    if args.plot:
        fio.atomic_write(args.plot, lambda f: f.write(image))
        _say(f"cost curve plotted to {args.plot}")
    return 0


def _train_options(args, checkpoint):
    """The run's options: command line over TRAIN_DEFAULTS, or the checkpoint's (which may not be changed)."""
    given = {name: getattr(args, name) for name in TRAIN_DEFAULTS if getattr(args, name) is not None}
    if checkpoint is None:
        options = {**TRAIN_DEFAULTS, **given}
    else:
        params = checkpoint.estimator.get_params()
        options = {cli: params[est] for cli, est in ESTIMATOR_OPTIONS.items()}
        options["layers"] = tuple(params["hidden_layer_sizes"])
        options["epochs"] = checkpoint.run.get("epochs")
        for name, value in given.items():
            if name == "epochs":
                continue
            saved = options[name]
            if name == "batch_size":
                value = _batch_param(value)
            if value != saved and not (isinstance(saved, float) and isinstance(value, float) and math.isclose(value, saved)):
                raise CLIError(
                    f"{args.resume}: --{name.replace('_', '-')} {value} differs from the checkpoint's {saved}; "
                    "a resumed run keeps its options (only --epochs, --threads and the output options may change)"
                )
        options["batch_size"] = params["batch_size"]
        return options
    options["batch_size"] = _batch_param(options["batch_size"])
    return options


def _batch_param(value):
    return {"full": None, "auto": "auto"}.get(value, value)


def _estimator_params(options, batch, threads):
    params = {est: options[cli] for cli, est in ESTIMATOR_OPTIONS.items()}
    params.update(hidden_layer_sizes=tuple(options["layers"]), batch_size=batch, max_iter=options["epochs"] or 1,
                  threads=threads)
    return params


def _checkpoint_path_for(out):
    stem = out[:-4] if out.endswith(".npz") else out
    return stem + ".ckpt.npz"


def _same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def _check_writable(path, explicit, what, inputs):
    """Refuse, before any work, a destination that would clobber an input or a file the user did not name."""
    from fastdnn.io import file_format

    for other in inputs:
        if _same_file(path, other):
            raise CLIError(f"{path}: is also an input of this run; write the {what} elsewhere")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; give a file name for the {what}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CLIError(f"{path}: cannot write the {what}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise CLIError(f"{path}: cannot write the {what}: the directory {directory} is not writable")
    if os.path.exists(path) and not explicit and file_format(path) is None:
        raise CLIError(f"{path}: exists and is not a fastdnn file; not overwriting it (choose the {what} file explicitly)")


def _training_data(args, checkpoint):
    """The training Dataset and the spec that finds it again on --resume."""
    from fastdnn.data import builtin_dataset, load_dataset

    saved = checkpoint.run["data"] if checkpoint else {}
    path = args.data or saved.get("path")
    if path:
        if args.samples or args.features:
            raise CLIError("--samples and --features size the built-in dataset; they do not apply with --data")
        label = args.label if args.data or "label" not in saved else saved["label"]
        _say(f"loading {path}")
        data = load_dataset(path, label=label, prefer="train")
        spec = {"path": os.path.abspath(path), "label": label}
    else:
        samples = args.samples or saved.get("samples") or BUILTIN_SAMPLES
        features = args.features or saved.get("features") or BUILTIN_FEATURES
        _say(f"generating the built-in dataset ({samples:,} examples x {features} features)")
        data = builtin_dataset(samples, features)
        spec = {"path": None, "samples": samples, "features": features}
    spec["validation"] = saved.get("validation")
    return data, spec


def _warm_up(params, n_features, dtype, classes):
    """Compile (or load from the disk cache) the kernels this run uses, on a few rows, outside the timing.

    A first compile takes seconds: it is announced before it starts (the library
    logs it on the "fastdnn" logger, shown here). Returns the seconds it took, 0.0
    when the kernels came from the cache.
    """
    import logging

    from fastdnn.estimator import DNNClassifier

    class Say(logging.Handler):
        seen = False

        def emit(self, record):
            self.seen = True
            _say(record.getMessage())

    logger, handler = logging.getLogger("fastdnn"), Say()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    t0 = time.perf_counter()
    try:
        rows = max(4, len(classes))
        probe = DNNClassifier(**{**params, "max_iter": 1, "random_state": 0, "early_stopping": False, "warm_start": False,
                                 "verbose": False, "batch_size": None if params["batch_size"] is None else 2})
        X = np.zeros((rows, n_features), dtype)
        probe.fit(X, np.resize(classes, rows))
        probe.predict(X[:1])
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return time.perf_counter() - t0 if handler.seen else 0.0


def _print_train_header(data, X, X_val, test, est, options, classes, target, state, dtype):
    m, n = X.shape
    parts = [f"{m:,} for training"]
    if X_val is not None:
        parts.append(f"{X_val.shape[0]:,} held out for validation")
    if test is not None:
        parts.append(f"{test.n_samples:,} for testing from {test.describe()}")
    _say(f"data: {data.describe()}: {data.n_samples:,} examples x {n} features, {dtype.name}; " + ", ".join(parts))
    K = len(classes)
    dims = [n] + list(options["layers"]) + [1 if K == 2 else K]
    batch = est.batch_size
    threads = training_threads(est.threads, dims, {None: m, "auto": min(200, m)}.get(batch, batch))
    output = "sigmoid" if K == 2 else f"softmax over {K} classes"
    batch_text = {None: "full batch", "auto": "batch auto (min(200, n))"}.get(batch, f"batch {batch}")
    opt = options["optimizer"] + (f" (beta {options['beta']})" if options["optimizer"] == "momentum" else "")
    extras = [f"l2 {options['l2']}"] if options["l2"] else []
    if options["early_stopping"]:
        extras.append(f"early stopping after {options['n_iter_no_change']} epochs without +{options['tol']}")
    _say(
        f"network: {' -> '.join(map(str, dims))} ({options['activation']}, {output}, {options['loss']}, init {options['init']}); "
        f"{opt} lr {options['lr']}, {batch_text}, {target} epochs, seed {options['seed']}, "
        f"{threads} BLAS thread{'s' if threads != 1 else ''}"
        + ("; " + ", ".join(extras) if extras else "")
    )
    if state.epoch:
        _say(f"resuming at epoch {state.epoch} of {target}")


class _RunState:
    """What the command's training loop keeps between epochs (and in checkpoints): the epoch count,
    time spent, and early stopping's best score, its epoch and parameters, and the epochs since."""

    def __init__(self):
        self.epoch = 0
        self.elapsed = 0.0  # training seconds over every part of the run
        self.session_epochs = 0  # epochs and seconds of this invocation
        self.session_seconds = 0.0
        self.best = -math.inf
        self.best_epoch = None
        self.best_params = None
        self.stall = 0
        self.scores = []
        self.stopped = False
        self.last_checkpoint = None

    def to_json(self):
        return {"epoch": self.epoch, "elapsed": self.elapsed, "best": self.best if self.best_epoch else None,
                "best_epoch": self.best_epoch, "stall": self.stall, "scores": self.scores, "stopped": self.stopped}

    def arrays(self):
        return {"best_params": self.best_params} if self.best_params is not None else {}

    @classmethod
    def from_checkpoint(cls, checkpoint):
        run, state = checkpoint.run, cls()
        state.epoch = int(run["epoch"])
        state.elapsed = float(run.get("elapsed", 0.0))
        state.best_epoch = run.get("best_epoch")
        state.best = run["best"] if run.get("best") is not None else -math.inf
        state.stall = int(run.get("stall", 0))
        state.scores = list(run.get("scores", []))
        state.stopped = bool(run.get("stopped", False))
        state.best_params = checkpoint.arrays.get("best_params")
        state.last_checkpoint = state.epoch
        return state


class _Training:
    """The command's epoch loop: chunks of epochs through the estimator's trainer, looking in between
    (progress bar, early stopping, checkpoints). Bit for bit what ``DNNClassifier.fit`` computes:
    the trainer draws one permutation per epoch from its Generator however the epochs are chunked."""

    def __init__(self, est, X, y, X_val, y_val, options, state, target):
        self.est, self.X, self.y, self.X_val, self.y_val = est, X, y, X_val, y_val
        self.options, self.state, self.target = options, state, target
        self.early = bool(options["early_stopping"])
        self.Y = None

    def _epochs(self, n):
        """n more epochs; the first call of a fresh estimator goes through fit, which initialises everything."""
        from fastdnn.training import DivergenceError

        est = self.est
        try:
            if not hasattr(est, "_trainer"):
                user = est.get_params()
                est.set_params(max_iter=n, warm_start=False, early_stopping=False)
                try:
                    est.fit(self.X, self.y)
                finally:
                    est.set_params(max_iter=user["max_iter"], warm_start=user["warm_start"],
                                   early_stopping=user["early_stopping"])
                return
            # What fit(warm_start=True) does for n epochs, without re-validating X and re-encoding y
            # each chunk (a tenth of a second on the built-in dataset: a fifth of an epoch).
            if self.Y is None:
                self.Y = est._encode(self.y).astype(self.X.dtype)
            trainer = est._trainer
            costs = trainer.run(self.X, self.Y, n)
        except DivergenceError as exc:
            # Both paths count exc.epoch from 0 at the start of this chunk (fit's chunk is the first).
            epoch = self.state.epoch + exc.epoch + 1
            message = str(exc).split(" at epoch ")[0]
            raise CLIError(
                f"training diverged: {message} in epoch {epoch}; no model was saved; "
                f"try a smaller --lr (this run's: {est.learning_rate})") from None
        est.loss_curve_.extend(costs.tolist())
        est.n_iter_ += n
        est.t_ = trainer.step

    def run(self, every, save_checkpoint, quiet=False):
        from tqdm import tqdm

        state, m = self.state, self.X.shape[0]
        # Into a log rather than a terminal, every refresh is kept: refresh rarely there.
        refresh = 0.2 if sys.stderr.isatty() else 10.0
        bar = tqdm(total=self.target, initial=min(state.epoch, self.target), disable=quiet, file=sys.stderr,
                   unit="epoch", dynamic_ncols=True, mininterval=refresh,
                   bar_format="epoch {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}] {desc}")
        chunk = 1
        try:
            while state.epoch < self.target and not state.stopped:
                n = 1 if self.early else min(chunk, self.target - state.epoch)
                if every:
                    n = min(n, every - state.epoch % every)
                t0 = time.perf_counter()
                self._epochs(n)
                dt = time.perf_counter() - t0
                state.epoch += n
                state.elapsed += dt
                state.session_epochs += n
                state.session_seconds += dt
                status = f"cost {self.est.loss_curve_[-1]:.4f}, {m * n / dt:,.0f} examples/s"
                if self.early:
                    status += f", validation accuracy {self._early_stopping_step():.4f}"
                bar.set_description_str(status, refresh=False)
                bar.update(n)
                if every and (state.epoch % every == 0 or state.epoch >= self.target or state.stopped):
                    save_checkpoint()
                    state.last_checkpoint = state.epoch
                chunk = max(1, int(CHUNK_SECONDS * n / max(dt, 1e-9)))
        finally:
            bar.close()

    def _early_stopping_step(self):
        """The estimator's early-stopping rule on the held-out set, after each epoch."""
        state, est = self.state, self.est
        score = est.score(self.X_val, self.y_val)
        state.scores.append(score)
        if score > state.best + self.options["tol"]:
            state.best, state.best_epoch, state.stall = score, state.epoch, 0
            state.best_params = est.parameters_.flat.copy()
        else:
            state.stall += 1
            if state.stall >= self.options["n_iter_no_change"]:
                state.stopped = True
        return score

    def finish(self):
        """Early stopping keeps the best epoch's parameters, as DNNClassifier does."""
        if self.early and self.state.best_params is not None:
            self.est.parameters_.flat[:] = self.state.best_params
            self.est.best_validation_score_ = self.state.best
            self.est.validation_scores_ = list(self.state.scores)


def _print_costs(curve, rows=10):
    if not curve:
        return
    n = len(curve)
    picks = sorted({round(i * (n - 1) / (rows - 1)) for i in range(rows)} if n > rows else range(n))
    _say("cost per epoch: " + "  ".join(f"{i + 1}: {curve[i]:.4f}" for i in picks))


def _plot_format(path):
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise CLIError(f"{path}: --plot writes .png, .svg or .pdf files")
    return suffix


def _draw_costs(est, options, fmt):
    """The cost per epoch (and early stopping's validation accuracy) as image bytes in ``fmt``,
    drawn on matplotlib's Agg canvas: no display, no pyplot state."""
    import io

    from fastdnn.data import import_optional

    import_optional("matplotlib", "plot", "--plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = est.loss_curve_
    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    epochs = np.arange(1, len(curve) + 1)
    ax.plot(epochs, curve, marker="o" if len(curve) <= 30 else None, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"cost ({options['loss']})")
    dims = list(est.parameters_.dims)
    ax.set_title(f"fastdnn: {' -> '.join(map(str, dims))}, {options['optimizer']} lr {options['lr']}")
    ax.grid(True, alpha=0.3)
    scores = getattr(est, "validation_scores_", None)
    if scores:
        right = ax.twinx()
        right.plot(np.arange(1, len(scores) + 1), scores, color="tab:orange")
        right.set_ylabel("validation accuracy", color="tab:orange")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()


# ---------------------------------------------------------------------------- predict / evaluate


def _model_and_data(model_path, data_path, label, require_labels):
    from fastdnn.data import load_dataset
    from fastdnn.io import load_model

    est = load_model(model_path)
    data = load_dataset(data_path, label=label, require_labels=require_labels, prefer="test")
    if data.n_features != est.n_features_in_:
        raise CLIError(f"{data_path}: has {data.n_features} features but the model {model_path} takes {est.n_features_in_}")
    return est, data


def cmd_predict(args):
    from fastdnn.io import atomic_write

    est, data = _model_and_data(args.model, args.data, args.label, require_labels=False)
    if args.out:
        _check_writable(args.out, True, "predictions", [args.model, args.data])
    predictions = est.predict(data.X)
    header = ["prediction"]
    columns = [predictions]
    if args.proba:
        proba = est.predict_proba(data.X)
        header += [f"probability_{c}" for c in est.classes_]
        columns += [proba[:, k] for k in range(proba.shape[1])]

    def write(text_file):
        writer = csv.writer(text_file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*(c.tolist() for c in columns)))

    if args.out:
        import io

        def write_bytes(f):
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            write(text)
            text.flush()
            text.detach()

        atomic_write(args.out, write_bytes)
        counts = ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(predictions, return_counts=True)))
        print(f"wrote {len(predictions):,} predictions to {args.out} ({counts})", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


def _check_label_kinds(path, y, classes, against):
    """Text labels never equal numbers: say so instead of scoring 0."""
    if (y.dtype.kind == "U") != (classes.dtype.kind == "U"):
        kind = lambda a: "text" if a.dtype.kind == "U" else "numbers"  # noqa: E731
        raise CLIError(f"{path}: its labels are {kind(y)} but {against} {kind(classes)}")


def cmd_evaluate(args):
    est, data = _model_and_data(args.model, args.data, args.label, require_labels=True)
    y = data.y
    _check_label_kinds(args.data, y, est.classes_, f"the model {args.model} was trained on")
    predictions = est.predict(data.X)
    correct = int(np.sum(predictions == y))
    m = len(y)
    _say(f"{args.model} on {data.describe()}: accuracy {correct / m:.4f} ({correct:,} of {m:,} correct)")
    unseen = np.setdiff1d(np.unique(y), est.classes_)
    if unseen.size:
        _say(f"labels never seen in training (always wrong): {', '.join(map(str, unseen[:10].tolist()))}")
    labels = np.union1d(est.classes_, y)
    _say("confusion matrix (rows: true label, columns: predicted):")
    for line in confusion_table(y, predictions, labels):
        _say("  " + line)
    return 0


def confusion_table(y_true, y_pred, labels, max_labels=20):
    """Lines of a counts table, one row per true label, one column per predicted label."""
    if len(labels) > max_labels:
        return [f"({len(labels)} labels: too many to print; the first {max_labels} are shown)"] + confusion_table(
            y_true, y_pred, labels[:max_labels], max_labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    counts = np.zeros((len(labels), len(labels)), np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        if t in index and p in index:
            counts[index[t], index[p]] += 1
    names = [str(label)[:12] for label in labels.tolist()]
    width = max(max(map(len, names)), len(str(counts.max())), 4)
    lines = [" " * width + "  " + "  ".join(name.rjust(width) for name in names)]
    for name, row in zip(names, counts):
        lines.append(name.rjust(width) + "  " + "  ".join(str(c).rjust(width) for c in row))
    return lines


# ---------------------------------------------------------------------------- check

# float64: both paths compute the same formulas in the same precision, so they
# differ by summation order only: ~1e-15 relative per step, 1e-13 after a few
# steps fed back through the updates. A wrong formula (a missing 1/m, a wrong
# transpose, an off-by-one layer) differs at 1e-3 or more. 1e-9 sits between.
CHECK_RTOL64 = 1e-9
# float32: the fast path rounds every operation to 24 bits and the reference
# to 53, and a few steps feed those roundings back through the updates (Adam,
# which divides by sqrt(s), and ReLU units switching on or off magnify them).
# So the tolerance is partly measured on the user's own problem: the reference's
# functions run in float32 (numpy computes in the arrays' dtype) land at some
# distance from its float64 run, the "float32 spread"; the fast path, whose
# summation order differs from numpy's (serial db sums, BLAS blocking), may be
# CHECK_SPREAD_SAFETY times as far. One realisation of the spread can be small
# by luck (measured: fast / spread up to 51 on the cost, 30 on db with Adam), so
# no stage is held tighter than CHECK_FLOOR32 of its scale: the largest float32
# difference seen on a stage whose spread did not explain it was 6.6e-5 (db,
# tanh, Adam, 10 steps), while an error in a formula shows at 1e-2 or more.
# float64 (the default) is the strict proof.
CHECK_SPREAD_SAFETY = 8.0
CHECK_FLOOR32 = 1e-3


def _course_step(lib, X, Y, params, opt_state, t, options):
    """One step of the course's functions from ``lib`` (fastdnn or fastdnn.reference, same names).

    Returns (stages: name -> array or float, new parameters, new optimizer state).
    """
    act, output, loss, lambd = options["activation"], options["output"], options["loss"], options["l2"]
    AL, caches = lib.L_model_forward(X, params, act, output)
    cost = lib.compute_cost(AL, Y, params, lambd, loss)
    grads = lib.L_model_backward(AL, Y, caches, act, output, loss, lambd)
    L = len(caches)
    stages = {}
    for l in range(1, L + 1):
        stages[f"Z{l}"] = caches[l - 1][1]
        stages[f"A{l}"] = caches[l][0][0] if l < L else AL
    stages["cost"] = cost
    for l in range(L - 1, 0, -1):
        stages[f"dA{l}"] = grads[f"dA{l}"]
    for l in range(L, 0, -1):
        stages[f"dW{l}"], stages[f"db{l}"] = grads[f"dW{l}"], grads[f"db{l}"]
    lr = options["lr"]
    if options["optimizer"] == "gd":
        new = lib.update_parameters(params, grads, lr)
    elif options["optimizer"] == "momentum":
        new, v = lib.update_parameters_with_momentum(params, grads, opt_state, options["beta"], lr)
        opt_state = v
    else:
        v, s = opt_state
        new, v, s = lib.update_parameters_with_adam(params, grads, v, s, t, lr, 0.9, 0.999, 1e-8)
        opt_state = (v, s)
    for l in range(1, L + 1):
        stages[f"W{l}"], stages[f"b{l}"] = new[f"W{l}"], new[f"b{l}"]
    return stages, new, opt_state


def _initial_state(lib, params, optimizer):
    if optimizer == "momentum":
        return lib.initialize_velocity(params)
    if optimizer == "adam":
        return lib.initialize_adam(params)
    return None


def _difference(fast, ref):
    """(max |fast - ref|, that / max |ref|), or None when the reference is not finite."""
    fast = np.asarray(fast, np.float64)
    ref = np.asarray(ref, np.float64)
    if not np.isfinite(ref).all():
        return None
    if not np.isfinite(fast).all():
        return math.inf, math.inf
    diff = float(np.max(np.abs(fast - ref), initial=0.0))
    scale = float(np.max(np.abs(ref), initial=0.0))
    return diff, (diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf))


def cmd_check(args):
    import fastdnn
    from fastdnn import reference
    from fastdnn.data import builtin_dataset, load_dataset
    from threadpoolctl import threadpool_limits

    data = load_dataset(args.data, label=args.label) if args.data else builtin_dataset(args.samples, args.features)
    m = min(args.batch, data.n_samples)
    y = data.y[:m]
    classes, index = np.unique(y, return_inverse=True)
    K = len(classes)
    if K < 2:
        raise CLIError(f"{args.data or 'the built-in dataset'}: its first {m} examples hold a single class; "
                       "the check needs two (raise --batch)")
    output = "sigmoid" if K == 2 else "softmax"
    Y = index.reshape(1, m).astype(np.float64) if K == 2 else np.eye(K)[index].T
    dims = [data.n_features] + list(args.layers) + [1 if K == 2 else K]
    dtype = np.dtype(args.dtype)
    options = {"activation": args.activation, "output": output, "loss": args.loss, "l2": args.l2, "lr": args.lr,
               "optimizer": args.optimizer, "beta": 0.9}
    # Both paths start from the same numbers: X and the initial parameters rounded to the fast path's
    # dtype, given to the reference as float64 (exactly), so only arithmetic differs.
    X_fast = np.ascontiguousarray(data.X[:m], dtype=dtype).T
    start = {k: v.astype(dtype) for k, v in reference.initialize_parameters(dims, args.init, args.seed).items()}
    runs = {"fast": (fastdnn, X_fast, Y.astype(dtype), start)}
    runs["reference"] = (reference, X_fast.astype(np.float64), Y, {k: v.astype(np.float64) for k, v in start.items()})
    if dtype == np.float32:
        runs["reference float32"] = (reference, X_fast, Y.astype(np.float32), dict(start))

    source = data.describe()
    _say(f"check: {' -> '.join(map(str, dims))} ({args.activation}, {output}, {args.loss}"
         + (f", l2 {args.l2}" if args.l2 else "") + f"), {args.steps} {args.optimizer} steps at lr {args.lr} "
         f"on the first {m} examples of {source}; fast path in {dtype.name}, reference in float64; 1 BLAS thread")

    worst = {}   # stage -> [abs, rel, step, spread]
    stopped = None
    with threadpool_limits(limits=1), np.errstate(all="ignore"):
        state = {name: (run[3], _initial_state(run[0], run[3], args.optimizer)) for name, run in runs.items()}
        for step in range(1, args.steps + 1):
            out = {}
            for name, (lib, X, Yn, _) in runs.items():
                params, opt_state = state[name]
                out[name], new, opt_state = _course_step(lib, X, Yn, params, opt_state, step, options)
                state[name] = (new, opt_state)
            for stage, ref_value in out["reference"].items():
                found = _difference(out["fast"][stage], ref_value)
                if found is None:
                    stopped = (step, stage)
                    break
                spread = None
                if "reference float32" in out:
                    s = _difference(out["reference float32"][stage], ref_value)
                    spread = s[1] if s is not None and math.isfinite(s[1]) else None
                entry = worst.setdefault(stage, [0.0, 0.0, step, 0.0])
                if found[1] > entry[1] or (found[1] == entry[1] and found[0] > entry[0]):
                    entry[0], entry[1], entry[2] = found[0], found[1], step
                if spread is not None:
                    entry[3] = max(entry[3], spread)
            if stopped:
                break

    if not worst:
        raise CLIError(f"the reference's {stopped[1]} is not finite at step 1 (the course's cross-entropy takes log(0) "
                       "when the sigmoid saturates): nothing to compare; try another --init or smaller inputs")
    float32 = dtype == np.float32
    header = ["stage", "layer", "max |fast - ref|", "relative", "worst step"]
    if float32:
        header += ["float32 spread", "tolerance"]
    rows, failures = [], []
    for stage, (abs_diff, rel, step, spread) in worst.items():
        name = stage.rstrip("0123456789")
        layer = stage[len(name):] or "-"
        label = {"W": "W (updated)", "b": "b (updated)"}.get(name, name)
        tol = max(CHECK_SPREAD_SAFETY * spread, CHECK_FLOOR32) if float32 else CHECK_RTOL64
        ok = rel <= tol
        if not ok:
            failures.append(f"{label} {layer}")
        row = [label, layer, f"{abs_diff:.3g}", f"{rel:.3g}", str(step)]
        if float32:
            row += [f"{spread:.3g}", f"{tol:.3g}"]
        rows.append(row + ([] if ok else ["  EXCEEDS"]))
    _say("")
    for line in _table(header, rows):
        _say(line)
    _say("")
    if float32:
        _say(f"relative = max |fast - reference| / max |reference| over the array; tolerance = max({CHECK_SPREAD_SAFETY:g} x "
             f"float32 spread, {CHECK_FLOOR32:g}), the spread being how far the reference's own functions run in float32 "
             "land from its float64 run")
    else:
        _say(f"relative = max |fast - reference| / max |reference| over the array; tolerance {CHECK_RTOL64:g} "
             "(float64: the paths differ by summation order only)")
    if stopped:
        _say(f"note: the reference's {stopped[1]} is not finite at step {stopped[0]} (the course's formulas take log(0) "
             f"or divide by 0 when the sigmoid saturates); steps 1-{stopped[0] - 1} were compared")
    if failures:
        _say(f"FAILED: {len(failures)} of {len(rows)} stages exceed the tolerance: {', '.join(failures)}")
        return 1
    _say(f"OK: all {len(rows)} stages agree within the tolerance: the fast path computes the reference's numbers")
    return 0


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows if i < len(r)) for i in range(len(header))]
    lines = []
    for r in [header, ["-" * w for w in widths]] + rows:
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells) + "".join(r[len(widths):]))
    return lines


# ---------------------------------------------------------------------------- bench


def cmd_bench(args):
    from fastdnn import bench

    dims = [args.features] + list(args.layers) + [1]
    batch = args.batch if args.batch and args.batch < args.samples else None
    args.threads = _threads_option(args.threads)
    task = {"dims": dims, "m": args.samples, "batch": batch, "iterations": args.iterations, "repeats": args.repeats,
            "optimizer": args.optimizer, "learning_rate": args.lr, "threads": args.threads, "peak_size": args.peak_size}
    per_step_batch = batch or args.samples
    flops = bench.step_flops(dims, args.samples)["useful"] / (1 if batch is None else math.ceil(args.samples / batch))
    _say(f"bench: {' -> '.join(map(str, dims))} (relu, sigmoid), {args.optimizer}, "
         f"{'full batch of ' + str(args.samples) if batch is None else f'batches of {batch} from {args.samples}'} examples, "
         f"{args.threads} BLAS thread{'s' if args.threads != 1 else ''}, {args.iterations} steps x {args.repeats} repeats, "
         "each implementation in its own process")
    rows = []  # (name, dtype, timings)
    if not args.no_reference:
        ref = bench.run_in_subprocess({**task, "kind": "reference", "dtype": "float64"})
        rows.append(("reference (numpy)", "float64", ref["routes"]["reference"]))
    peaks = sorted({args.dtype, "float64"} if not args.no_reference else {args.dtype})
    fast = bench.run_in_subprocess({**task, "kind": "fastdnn", "dtype": args.dtype, "peak": peaks})
    rows.append(("fastdnn", args.dtype, fast["routes"]["direct"]))
    if "gram" in fast["routes"]:
        rows.append(("fastdnn, Gram route *", args.dtype, fast["routes"]["gram"]))
    peak = {dt: bench.summary(rates)[0] for dt, rates in fast["peaks"].items()}

    header = ["implementation", "dtype", "ms/step median [min-max]", "GFLOP/s", "of peak", "speed-up"]
    table = []
    base = None
    for name, dt, timing in rows:
        med, lo, hi = bench.summary(timing["per_step"])
        base = base or med
        rate = flops / med / 1e9
        table.append([name, dt, f"{med * 1e3:.3g} [{lo * 1e3:.3g}-{hi * 1e3:.3g}]", f"{rate:.3g}",
                      f"{100 * rate / peak[dt]:.0f}%", f"{base / med:.2f}x"])
    _say("")
    for line in _table(header, table):
        _say(line)
    _say("")
    sizes = {dt: args.peak_size or bench.PEAK_SIZES[dt] for dt in peak}
    _say("BLAS peak (square n^3 GEMM through fastdnn.kernels.blas.gemm_checked = SciPy's ?gemm): "
         + ", ".join(f"{dt} {peak[dt]:.1f} GFLOP/s (n={sizes[dt]})" for dt in peak))
    _say(f"GFLOP counted per step: {flops / 1e9:.4g} for {per_step_batch} examples (forward 2m sum n_l n_(l-1), "
         "backward twice that, minus dA0 = W1^T dZ1, which nothing uses and the fast path skips)")
    if "gram" in fast["routes"]:
        once = bench.summary(fast["routes"]["gram"]["per_call"])[0]
        _say(f"* the route fastdnn.model and L_layer_model take for full batches of wide data (10 epochs or more): "
             f"X X^T once per run ({once * 1e3:.3g} ms here, with the input checks), then the first layer in the "
             "example space, far fewer FLOPs than counted: its GFLOP/s is an effective rate and may exceed the peak")
    _say("BLAS: " + "; ".join(fast["blas"]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    if load is not None and load > 0.5:
        _say(f"note: load average {load:.2f} while measuring; other processes on the cores slow BLAS threads down")
    return 0
