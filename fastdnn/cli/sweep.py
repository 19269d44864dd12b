"""``fastdnn sweep``: a grid of training runs in worker processes, a table of their scores, results as CSV and
JSON, plots (a thin layer over ``fastdnn.sweeps``)."""

import contextlib
import os
import sys
import time

import numpy as np

from fastdnn import options as O
from fastdnn import validation as V
from fastdnn.cli.common import CLIError, check_label_kinds, check_writable, load_data, say
from fastdnn.sweep_plots import plot
from fastdnn.sweep_workers import TRAIN_SIZE, WorkerDied
from fastdnn.sweeps import FIXED_ONLY, SCORES, json_path

# Every table option with a flag, but those a sweep sets itself.
SWEPT_FLAGS = tuple(o.name for o in O.OPTIONS if o.flag and o.name not in ("random_state", "threads", "memory")
                    and not o.switch)
SWITCHES = tuple(o.name for o in O.OPTIONS if o.flag and o.switch)
# The sweep's own help where the table's speaks of another command (train's --resume).
HELP = {"max_iter": "epochs: passes over the data in each run"}


def add_parser(sub, common, fmt):
    p = sub.add_parser(
        "sweep", parents=[common], formatter_class=fmt, help="train a grid of configurations in parallel and compare them",
        description="Train every combination of the values given (each flag takes one value, fixed, or several,\n"
        "swept: --lr 0.001,0.0075,0.03 --layers 20,7,5 64,32 --init deep,he --train-size 0.25,0.5,1), in worker\n"
        "processes (one per usable core, one BLAS thread each, sharing one memory-mapped copy of the data), and\n"
        "print the configurations sorted by a score. The course's eleven hyperparameters: --lr, --l2, --layers\n"
        "(layers and units), --epochs, --batch-size, --output (sigmoid or a two-way softmax), --loss, --init,\n"
        "--activation, --train-size (fractions or counts: a learning curve), and the optimizer's own; the course's\n"
        "regularisation study is --keep-prob 1,0.86,0.7 --l2 0,0.7 (a keep_prob per hidden layer: 0.9:0.8).",
    )
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", required=True, help="training data (.h5/.hdf5, .npz, .csv, .npy)")
    g.add_argument("--labels", metavar="FILE", help="the labels of .npy --data (default NAME.labels.npy beside it)")
    g.add_argument("--test", metavar="PATH", help="test data, scored by every run")
    g.add_argument("--label", default="label", help="the CSV column holding the labels (default: label)")
    g = p.add_argument_group("what to sweep (one value: fixed; several: swept)")
    for name in SWEPT_FLAGS:
        option = O.BY_NAME[name]
        shown = O.COMMAND_DEFAULTS[name]
        shown = ",".join(map(str, shown)) if isinstance(shown, tuple) else {None: "none"}.get(shown, shown)
        how = "architectures, each like 20,7,5" if name == "hidden_layer_sizes" else "values, comma-separated"
        g.add_argument(option.flag, dest=name, nargs="+", metavar="V", default=None,
                       help=f"{HELP.get(name, option.help)}; {how} (default {shown})".replace("%", "%%"))
    g.add_argument("--train-size", dest=TRAIN_SIZE, nargs="+", metavar="V", default=None,
                   help="training examples: fractions in (0, 1] or counts (default 1: all)")
    O.add_arguments(g, SWITCHES)
    g = p.add_argument_group("runs")
    g.add_argument("--folds", type=int, metavar="K", help="the course's k-fold cross-validation (default: one "
                   "split holding out --validation-fraction)")
    g.add_argument("--sample", type=int, metavar="N", help="train N configurations drawn from the grid (seeded)")
    g.add_argument("--seed", type=int, default=0, help="seed of every run, the folds and the sample (default 0)")
    g.add_argument("--workers", type=int, metavar="N", help="worker processes (default: the usable cores)")
    g = p.add_argument_group("results")
    g.add_argument("--sort", choices=tuple(SCORES), default="validation", help="the score to sort by (default validation)")
    g.add_argument("--out", metavar="CSV", help="results: one row per configuration (and NAME.json with the cost "
                   "curves); an existing file of this sweep is continued, its configurations skipped")
    g.add_argument("--plot", metavar="DIR", help="draw the cost curves and each hyperparameter's effect as PNGs "
                   "(needs fastdnn[plot])")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _values(args):
    """(grid, fixed): the flags given several values and those given one, each value checked, the message
    naming the flag."""
    from fastdnn.sweeps import check_grid

    grid, fixed = {}, {}
    for name in (*SWEPT_FLAGS, TRAIN_SIZE):
        tokens = getattr(args, name)
        if tokens is None:
            continue
        flag = "--train-size" if name == TRAIN_SIZE else O.BY_NAME[name].flag
        if name == "hidden_layer_sizes":
            pieces = tokens
        else:
            pieces = [p for token in tokens for p in token.split(",") if p.strip()]
        try:
            values = [_parse(name, piece) for piece in pieces]
            if name in FIXED_ONLY and len(values) == 1:
                values = [O.BY_NAME[name].validate(values[0])]
            else:
                values = check_grid({name: values})[name]
        except (ValueError, TypeError, OverflowError) as exc:
            raise CLIError(f"{flag}: {exc}") from None
        (grid if len(values) > 1 else fixed)[name] = values if len(values) > 1 else values[0]
    for name in SWITCHES:
        if getattr(args, name):
            fixed[name] = True
    return grid, fixed


def _parse(name, text):
    import argparse

    if name == TRAIN_SIZE:
        try:
            return float(text)  # sweeps.check_train_size: up to 1 a fraction, above a whole count
        except ValueError:
            raise ValueError(f"expected a fraction or a count, got {text!r}") from None
    parse = O.BY_NAME[name].parse
    try:
        return parse(text) if parse is not None else text
    except argparse.ArgumentTypeError as exc:
        raise ValueError(str(exc)) from None


def run(args):
    from fastdnn import sweeps as S

    grid, fixed = _values(args)
    for flag, value, low in (("--folds", args.folds, 2), ("--sample", args.sample, 1), ("--workers", args.workers, 1)):
        if value is not None and value < low:
            raise CLIError(f"{flag}: must be an integer of at least {low}, got {value}")
    try:
        V.check_seed(args.seed, "seed")
    except ValueError as exc:
        raise CLIError(f"--seed: {exc}") from None
    if not grid:
        raise CLIError("nothing to sweep: give some flag several values (e.g. --lr 0.001,0.01 --layers 20,7,5 64,32)")
    fixed = {**{k: v for k, v in O.COMMAND_DEFAULTS.items() if k in SWEPT_FLAGS and k not in grid}, **fixed}
    if args.out:
        check_writable(args.out, True, "results", [p for p in (args.data, args.test) if p])
        check_writable(json_path(args.out), True, "results", [p for p in (args.data, args.test) if p])
    if args.plot:
        from fastdnn.files import import_optional

        import_optional("matplotlib", "plot", "--plot")
        if os.path.exists(args.plot) and not os.path.isdir(args.plot):
            raise CLIError(f"--plot: {args.plot} is not a folder")
    # Taken before the data are loaded, so that a second sweep given these results is refused at once.
    with S.results_lock(args.out) if args.out else contextlib.nullcontext():
        return _sweep(args, grid, fixed)


def _sweep(args, grid, fixed):
    from fastdnn import sweeps as S

    memory = O.BY_NAME["memory"].validate(O.DEFAULTS["memory"])
    data = _in_memory(args.data, "train", memory, args.label, args.labels)
    test = None
    if args.test:
        test = _in_memory(args.test, "test", memory, args.label, None)
        if test.n_features != data.n_features:
            raise CLIError(f"{args.test}: has {test.n_features} features but the training data has {data.n_features}")
        check_label_kinds(args.test, test.y, data.y, "the training labels are")
    dtype = np.dtype(fixed["dtype"]) if fixed.get("dtype") else (
        data.X.dtype if data.X.dtype in (np.float32, np.float64) else np.dtype(np.float64))
    X = np.ascontiguousarray(data.X, dtype=dtype)
    test_pair = None if test is None else (np.ascontiguousarray(test.X, dtype=dtype), test.y)
    from fastdnn.sweeps import configurations

    n_configs = len(configurations(grid, args.sample, args.seed))
    runs = n_configs * (args.folds or 1)
    say(f"data: {data.describe()}: {data.n_samples:,} examples x {data.n_features} features, {dtype.name}"
        + (f"; test {test.n_samples:,} from {test.describe()}" if test else ""))
    say(f"sweep: {n_configs} configurations of " + " x ".join(f"{len(v)} {k}" for k, v in grid.items())
        + (f", {args.folds}-fold cross-validation" if args.folds else "") + f": {runs} runs, seed {args.seed}")
    bar = _Progress(args.quiet)
    t0 = time.perf_counter()
    try:
        with _TermAsInterrupt():
            results = S.sweep(X, data.y, grid, fixed=fixed, test=test_pair, folds=args.folds, sample=args.sample,
                              seed=args.seed, workers=args.workers, out=args.out, progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        kept = args.out and os.path.exists(args.out)
        where = f"; the finished configurations are in {args.out} (run the same command to continue)" if kept else ""
        print(f"fastdnn sweep: interrupted{where}", file=sys.stderr, flush=True)
        return 130
    except (ValueError, WorkerDied) as exc:
        bar.close()
        kept = isinstance(exc, WorkerDied) and args.out and os.path.exists(args.out)
        raise CLIError(_naming_the_flag(str(exc)) + (f"; the finished configurations are in {args.out} (run the same "
                                                     "command to continue)" if kept else "")) from None
    bar.close()
    seconds = time.perf_counter() - t0
    say(results.table(args.sort))
    failed = len(results.failed)
    say(f"{len(results.rows) - failed} configurations in {seconds:.1f} s" + (f", {failed} failed" if failed else "")
        + (f"; results in {args.out} and {json_path(args.out)}" if args.out else ""))
    if args.plot:
        paths = plot(results, args.plot)
        say(f"plots in {args.plot}: " + ", ".join(os.path.basename(p) for p in paths))
    return 1 if failed else 0


def _naming_the_flag(message):
    """A library message that starts with an option's name starts with its flag instead."""
    for name in (*SWEPT_FLAGS, TRAIN_SIZE, "folds", "sample", "workers"):
        if message.startswith(name + " ") or message.startswith(f"{name}="):
            flag = O.BY_NAME[name].flag if name in O.BY_NAME else "--" + name.replace("_", "-")
            return f"{flag}: {message}"
    return message


class _TermAsInterrupt:
    """SIGTERM (a scheduler's stop, ``timeout``) ends the sweep as Ctrl-C does: the workers stopped, the
    temporary data removed, the finished configurations kept."""

    def __enter__(self):
        import signal
        import threading

        self.previous = None
        if threading.current_thread() is threading.main_thread():
            def stop(signum, frame):
                raise KeyboardInterrupt

            self.previous = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _in_memory(path, prefer, memory, label, labels):
    from fastdnn.stream import DiskDataset

    data = load_data(path, prefer=prefer, memory=memory, label=label, labels=labels)
    if isinstance(data, DiskDataset):
        raise CLIError(f"{path}: is larger than memory ({memory:,} bytes); a sweep trains its runs on data in memory")
    return data


class _Progress:
    """A bar over the sweep's runs (tqdm), on stderr."""

    def __init__(self, quiet):
        self.quiet, self.bar = quiet, None

    def update(self, done, total):
        if self.quiet:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
