"""``fastdnn train``: a ``DNNClassifier`` fitted on a file (or the built-in dataset), with a progress bar,
checkpoints and a saved model.

A thin layer: the options are ``fastdnn.options``' table (with the command's
defaults), training is ``DNNClassifier.fit`` through the engine, progress and
checkpoints are callbacks, the held-out split is ``fastdnn.engine.split_rows``
(the one early stopping uses), and files are ``fastdnn.io``'s.
"""

import contextlib
import math
import os
import sys
import time

import numpy as np

from fastdnn import validation as V
from fastdnn import options as O
from fastdnn.cli.common import (
    CLIError,
    OutputLock,
    describe,
    check_label_kinds,
    check_writable,
    load_data,
    say,
    table_values,
    threads_option,
)
from fastdnn.distributed import AllRanksError, active, join, together
from fastdnn.engine import DivergenceError, TrainingInterrupted, divergence_message, output_units
from fastdnn.stream import DiskDataset

DEFAULT_OUT = "fastdnn-model.npz"
BUILTIN_SAMPLES = 300_000
BUILTIN_FEATURES = 200
# The options a resumed run may change; every other must equal the checkpoint's.
RESUMABLE = ("max_iter", "threads")
TRAINING_OPTIONS = tuple(o.name for o in O.OPTIONS if o.flag and o.name != "validation_fraction")
# The options every rank of a distributed run must share (--epochs and --dtype as resolved; each rank may use its
# own cores and memory).
ALIKE = tuple(o.name for o in O.OPTIONS if o.flag and o.name not in ("max_iter", "dtype", "threads", "memory"))


def add_parser(sub, common, fmt):
    train = sub.add_parser(
        "train", parents=[common], formatter_class=fmt, help="train a classifier and save it",
        description="Train a DNNClassifier on --data (or the built-in dataset), print its progress and accuracy, save it.\n"
        "Data: the course's .h5 (train_set_x/train_set_y), .npz (X, y), .csv (header row, label column), .npy (labels\n"
        "in a second .npy, --labels) or a folder of .npy/.npz/.h5 shards. Data larger than --memory are streamed\n"
        "from disk in blocks of rows while training.",
    )
    g = train.add_argument_group("data")
    g.add_argument("--data", metavar="PATH", help="training data (.h5/.hdf5, .npz, .csv, .npy, or a folder of shards); "
                   "default: the built-in dataset")
    g.add_argument("--labels", metavar="FILE", help="the labels of .npy --data, a .npy of one label per row "
                   "(default: NAME.labels.npy beside it, as fastdnn convert writes)")
    g.add_argument("--test", metavar="PATH", help="test data, scored at the end")
    g.add_argument("--label", default="label", help="the CSV column holding the labels (default: label)")
    g.add_argument("--samples", type=int, metavar="N", help=f"built-in dataset: examples (default {BUILTIN_SAMPLES:,})")
    g.add_argument("--features", type=int, metavar="N", help=f"built-in dataset: features (default {BUILTIN_FEATURES})")
    O.add_arguments(g, ["validation_fraction"])
    O.add_arguments(train.add_argument_group("network and optimiser (fastdnn.options)"), TRAINING_OPTIONS)
    g = train.add_argument_group("output")
    g.add_argument("--out", metavar="FILE", help=f"where to save the model (default ./{DEFAULT_OUT})")
    g.add_argument("--plot", metavar="PNG", help="write the cost curve to this image (needs fastdnn[plot])")
    g.add_argument("--checkpoint-every", type=int, metavar="N", help="save a checkpoint every N epochs (and at the end)")
    g.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (default: MODEL.ckpt.npz beside --out, or the --resume file)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT exactly where it stopped")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    g.add_argument("--distributed", action="store_true",
                   help="train data-parallel across the ranks of mpiexec -n N (needs fastdnn[mpi]); rank 0 prints and "
                   "writes the model and checkpoints; on one process it trains as usual")
    train.set_defaults(func=run)


def _flag(name):
    return O.BY_NAME[name].flag


def _given(args):
    """The table's options given on the command line, each checked (the message names the flag)."""
    given = table_values(args, [o.name for o in O.OPTIONS if o.flag])
    for name in ("samples", "features", "checkpoint_every"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')}: must be a positive integer, got {value}")
    return given


def _options(args, checkpoint):
    """The run's estimator parameters: the command line over the command's defaults, or the checkpoint's
    (which only --epochs and --threads may change)."""
    given = _given(args)
    if checkpoint is None:
        return {**O.COMMAND_DEFAULTS, "verbose": False, "warm_start": False, **given}
    params = checkpoint.estimator.get_params()
    for name, value in given.items():
        saved, source = params[name], ""
        if name in RESUMABLE or name == "validation_fraction" and not params["early_stopping"]:
            continue
        if name == "dtype" and saved is None:
            # Trained without --dtype: in its data's float type, which its parameters hold.
            saved = checkpoint.estimator.parameters_.flat.dtype.name
            source = " (its data's: it was trained without --dtype)"
        same = value == saved or (isinstance(saved, float) and isinstance(value, float) and math.isclose(value, saved))
        if not same:
            raise CLIError(
                f"{args.resume}: {_flag(name)} {_shown(name, value)} differs from the checkpoint's "
                f"{_shown(name, saved)}{source}; a resumed run keeps its options (only --epochs, --threads and the "
                "output options may change)"
            )
    return params


def _shown(name, value):
    """An option's value as the command line writes it."""
    if name == "batch_size" and value is None:
        return "full"
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return value


def run(args):
    comm = join(args.distributed)
    if active(comm) and comm.Get_rank() != 0:
        # Every rank runs every check (so a refusal stops them all alike) and trains; rank 0 alone
        # prints and writes files.
        with open(os.devnull, "w") as quiet:
            stdout, sys.stdout = sys.stdout, quiet
            try:
                return _run(args, comm, writes=False)
            finally:
                sys.stdout = stdout
    return _run(args, comm, writes=True)


def _run(args, comm, writes):
    with contextlib.ExitStack() as locks:
        return _run_locked(args, comm, writes, locks)


def _run_locked(args, comm, writes, locks):
    from fastdnn import io as fio
    from fastdnn.data import fingerprint

    # Each rank checks its own files and data; a refusal on any stops every rank here, together, before the
    # first collective (the header's) where the others would wait for it.
    with together(comm, describe) as alike:
        checkpoint = None
        if args.resume:
            checkpoint = fio.load_checkpoint(args.resume)
            if "data" not in checkpoint.run:
                raise CLIError(f"{args.resume}: is a checkpoint without the command's run state; continue it from "
                               "Python")
            _check_run_state(args.resume, checkpoint.run)
        params = _options(args, checkpoint)
        explicit_out = args.out is not None
        # A resumed run saves beside its checkpoint (MODEL.ckpt.npz -> MODEL.npz, where the first part saved by
        # default), unless told otherwise now: never at a path read from inside the file, which a crafted
        # checkpoint would choose.
        out = args.out or (_model_path_for(args.resume) if checkpoint else DEFAULT_OUT)
        every = args.checkpoint_every or (checkpoint.run.get("checkpoint_every") if checkpoint else None)
        ckpt_path = args.checkpoint or args.resume or _checkpoint_path_for(out)
        inputs = [p for p in (args.data, args.test, args.resume) if p]
        # Every destination is checked before any work, so a refusal costs nothing.
        check_writable(out, explicit_out, "model", inputs)
        if every:
            check_writable(ckpt_path, bool(args.checkpoint or args.resume), "checkpoint",
                           [p for p in (args.data, args.test, out) if p])
        if writes:
            locks.enter_context(OutputLock(out))
            if every:
                locks.enter_context(OutputLock(ckpt_path, "checkpoint"))
                if not args.resume:
                    _refuse_to_replace_an_unfinished_run(ckpt_path)
        if args.plot:
            from fastdnn.data import import_optional

            _plot_format(args.plot)
            import_optional("matplotlib", "plot", "--plot")
            check_writable(args.plot, True, "plot", inputs + [out, ckpt_path if every else out])

        memory = O.BY_NAME["memory"].validate(params["memory"])
        data, spec = _training_data(args, checkpoint, params["dtype"], memory)
        streamed = isinstance(data, DiskDataset)
        if streamed:
            X, dtype = data, data.dtype
        else:
            dtype = np.dtype(params["dtype"]) if params["dtype"] else (
                data.X.dtype if data.X.dtype in (np.float32, np.float64) else np.dtype(np.float64))
            # Converted once here, so the estimator never copies it again.
            X = np.ascontiguousarray(data.X, dtype=dtype)
        y = data.y
        test = None
        if args.test:
            test = load_data(args.test, prefer="test", memory=memory, dtype=dtype, label=args.label)
            if test.n_features != data.n_features:
                raise CLIError(f"{args.test}: has {test.n_features} features but the training data has "
                               f"{data.n_features}")
            check_label_kinds(args.test, test.y, data.y, "the training labels are")
        # A held-out validation set: early stopping's, and for reporting when there is no --test. A resumed
        # run holds out as its first part did. The rows are those early stopping holds out (split_rows).
        hold_out = spec["validation"] if checkpoint else (test is None or params["early_stopping"])
        spec["validation"] = hold_out
        seed = params["random_state"]
        train_rows = held_rows = None
        if hold_out:
            from fastdnn.engine import split_rows

            try:
                train_rows, held_rows = split_rows(X.shape[0], params["validation_fraction"], seed)
            except ValueError as exc:
                raise CLIError(f"{data.describe()}: {exc}") from None
        y_train = y if train_rows is None else y[train_rows]
        try:
            V.check_class_labels(y, "the labels")
        except ValueError as exc:
            raise CLIError(f"{data.describe()}: {exc}") from None
        classes = np.unique(y_train)
        if len(classes) < 2:
            raise CLIError(f"{data.describe()}: the training labels hold a single class ({classes.tolist()}); a "
                           "classifier needs two")
        spec["fingerprint"] = (X.fingerprint() if streamed else fingerprint(X, y)) if every or checkpoint else None
        m_train = X.shape[0] if train_rows is None else train_rows.size
        if isinstance(params["batch_size"], int) and args.batch_size is not None and params["batch_size"] > m_train:
            raise CLIError(f"--batch-size: {params['batch_size']} is more than the {m_train:,} training examples")

        from fastdnn.estimator import DNNClassifier

        target = params["max_iter"]
        if checkpoint:
            saved = checkpoint.run["data"].get("fingerprint")
            # Version-1 checkpoints fingerprinted the training split (the same rows split_rows holds out now).
            v1 = (not streamed and hold_out and "best_epoch" in checkpoint.run
                  and saved == fingerprint(X[train_rows], y[train_rows]))
            if saved != spec["fingerprint"] and not v1:
                raise CLIError(f"{args.resume}: was trained on other data than {data.describe()} (or on another "
                               "split of it)")
            est = checkpoint.estimator
            if v1:
                _adopt_version_1(checkpoint)
            target = args.max_iter or checkpoint.run.get("epochs") or est.max_iter
            threads = threads_option(args.threads) or est.threads
            done = est.training_state_.epoch
        else:
            if args.batch_size is None and isinstance(params["batch_size"], int):
                # The default batch on fewer examples: all of them.
                params["batch_size"] = min(params["batch_size"], m_train)
            threads = threads_option(args.threads)
            est = DNNClassifier(**{**params, "threads": threads})
            done = 0
        state_stopped = checkpoint is not None and est.training_state_.stopped
        # A difference between the ranks named by its option, before the engine would see only what it
        # causes (other rows held out, other data).
        alike.update({
            "training data (examples, features)": tuple(X.shape), "classes": classes.tolist(),
            **{_flag(name): _shown(name, value) for name, value in est.get_params().items() if name in ALIKE},
            "--dtype": dtype.name, "--epochs": target, "epochs trained before (--resume)": done,
        })

    _print_header(data, X, held_rows, test, est.get_params(), classes, target, done, dtype, threads, comm)
    if streamed:
        from fastdnn.stream import block_rows_for

        batch = O.resolve_batch_size(params["batch_size"], m_train)
        block = block_rows_for(memory, X.n_features, output_units(len(classes), params["output"]), dtype, batch)
        say(f"streaming from disk: {_size(X.nbytes())} of {dtype.name} features, more than --memory {_size(memory)}: "
            f"two buffers of {block:,} rows ({_size(block * X.n_features * dtype.itemsize)} each), one read while the "
            "other trains")
    labels_arg = None if streamed else y
    logs = _CompileNotes()
    try:
        with logs:
            compiled = _warm_up(est.get_params(), X.shape[1], dtype, classes, comm)
    except TrainingInterrupted:
        # A Ctrl-C during the ranks' warm-up stops them together (as in training): nothing trained yet.
        if writes:
            print("fastdnn train: interrupted while compiling, before training; nothing saved", file=sys.stderr,
                  flush=True)
        comm.Barrier()
        return 130
    if compiled:
        say(f"compiled kernels ready in {compiled:.1f} s")

    elapsed = checkpoint.run.get("elapsed", 0.0) if checkpoint else 0.0

    def snapshot(epoch_seconds):
        run_state = {"epochs": target, "checkpoint_every": every, "out": os.path.abspath(out), "data": spec,
                     "elapsed": elapsed + epoch_seconds}
        return fio.checkpoint_arrays(est, run=run_state)

    progress = ProgressBar(target, done, X.shape[0] if train_rows is None else train_rows.size, args.quiet or not writes)
    saver = Checkpointer(every, snapshot, ckpt_path) if every and writes else None
    seconds = 0.0
    if done >= target or state_stopped:
        from fastdnn.engine import EarlyStopping

        say(f"{args.resume}: its run is complete at epoch {done}"
            + (" (stopped early)" if state_stopped else f" of {target}") + "; nothing to train")
        if params["early_stopping"]:
            EarlyStopping.keep_best(est.engine_)
    else:
        est.set_params(max_iter=target - done, warm_start=checkpoint is not None, threads=threads)
        rows = None if params["early_stopping"] else train_rows  # early stopping holds out the same rows itself
        t0 = time.perf_counter()
        try:
            with logs:
                est.fit(X, labels_arg, rows=rows, callbacks=[c for c in (progress, saver) if c], comm=comm)
            # Training time: the last checkpoint's write, finished below, is file I/O after it.
            seconds = time.perf_counter() - t0
        except KeyboardInterrupt as exc:
            progress.close()
            if saver:
                saver.wait()
            where = f"; the checkpoint at epoch {saver.last} is {ckpt_path}" if saver and saver.last else ""
            if saver and isinstance(exc, TrainingInterrupted):
                # Taken at the end of a block (or across ranks, at an epoch's start): the state resumes exactly.
                fio.write_archive(ckpt_path, snapshot(saver.seconds))
                state, position = est.training_state_, est.training_state_.stream
                blocks = f" and {position.next} of the next epoch's {len(position.spans)} blocks" if position else ""
                where = (f"; checkpoint written after {state.epoch} epochs{blocks}: {ckpt_path} (continue with "
                         "--resume)")
            if writes or not isinstance(exc, TrainingInterrupted):
                print(f"fastdnn train: interrupted at epoch {est.training_state_.epoch}; no model saved{where}",
                      file=sys.stderr, flush=True)
            if active(comm) and not isinstance(exc, TrainingInterrupted):
                comm.Abort(130)  # a second Ctrl-C: the other ranks may be inside a collective this one has left
            if active(comm):
                comm.Barrier()  # every rank stopped at the same point: they leave once rank 0's checkpoint is written
            return 130
        except DivergenceError as exc:
            progress.close()
            lr = O.resolve_learning_rate(est.learning_rate, est.optimizer)
            text = divergence_message(exc.reason, exc.cost, f"epoch {exc.epoch} (counted from 0)",
                                      f"no model was saved; try a smaller --lr (this run's: {lr:g})")
            if active(comm):
                # Every rank updates by the same reduced gradient: all of them diverge at the same step.
                raise AllRanksError(f"training diverged: {text}", comm.Get_rank()) from None
            raise CLIError(f"training diverged: {text}") from None
        finally:
            progress.close()
            if saver:
                saver.wait()
    # What the user asked for, not how the command continued a resumed run: a loaded model's next fit trains
    # a fresh network for the run's epochs unless told to warm start.
    est.set_params(max_iter=target, warm_start=False)
    state = est.training_state_
    if not writes:
        return 0  # rank 0 scores, prints and writes; the others are done
    _print_costs(state.costs)
    scores = [f"train accuracy {est.score(X, labels_arg, rows=train_rows):.4f}"]
    if held_rows is not None:
        scores.append(f"validation accuracy {est.score(X, labels_arg, rows=held_rows):.4f}")
    if test is not None:
        test_X = test if isinstance(test, DiskDataset) else np.asarray(test.X, dtype)
        scores.append(f"test accuracy {est.score(test_X, None if isinstance(test, DiskDataset) else test.y):.4f}")
    say("   ".join(scores))
    if params["early_stopping"] and state.best_epoch is not None:
        say(f"early stopping: kept epoch {state.best_epoch}'s parameters (validation accuracy {state.best_score:.4f})")
    # The image is drawn before anything is written: a failure to draw it saves nothing.
    image = draw_costs(est, _plot_format(args.plot)) if args.plot else None
    fio.save_model(est, out)
    trained = state.epoch - done
    rate = f", {progress.examples * trained / seconds:,.0f} examples/s" if seconds > 0 and trained else ""
    say(f"model saved to {out} (trained {trained} epochs in {seconds:.{2 if seconds < 10 else 1}f} s{rate})")
    if every:
        say(f"checkpoint at epoch {saver.last if saver.last is not None else done}: {ckpt_path}")
    if args.plot:
        try:
            fio.atomic_write(args.plot, lambda f: f.write(image))
        except OSError as exc:
            raise CLIError(f"{describe(exc)}; the model itself was saved to {out}") from None
        say(f"cost curve plotted to {args.plot}")
    return 0


def _size(n):
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _adopt_version_1(checkpoint):
    """A version-1 checkpoint kept the command's run state in its run dict: put early stopping's record into
    the engine's state, mid-run, as version 2 keeps it."""
    run, state = checkpoint.run, checkpoint.estimator.training_state_
    if run.get("best_epoch") is not None:
        state.best_score, state.best_epoch = run["best"], run["best_epoch"]
        state.best_parameters = checkpoint.arrays.get("best_params")
    state.stall, state.stopped = int(run.get("stall", 0)), bool(run.get("stopped", False))
    state.validation_scores = [float(x) for x in run.get("scores", [])]
    state.in_progress = True


class ProgressBar:
    """A callback: tqdm's bar over the epochs, with the cost, examples/s and validation accuracy;
    called at the engine's pace (``every = None``), so it never shortens the compiled calls."""

    every = None

    def __init__(self, target, done, examples, quiet):
        self.target, self.examples, self.bar = target, examples, None
        if not quiet:
            from tqdm import tqdm

            # Into a log rather than a terminal, every refresh is kept: refresh rarely there.
            refresh = 0.2 if sys.stderr.isatty() else 10.0
            self.bar = tqdm(total=target, initial=min(done, target), file=sys.stderr, unit="epoch", dynamic_ncols=True,
                            mininterval=refresh, bar_format="epoch {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}] {desc}")

    def __call__(self, info):
        if self.bar is None:
            return False
        status = f"cost {info.cost:.4f}, {self.examples * len(info.costs) / max(info.seconds, 1e-9):,.0f} examples/s"
        if info.validation_score is not None:
            status += f", validation accuracy {info.validation_score:.4f}"
        self.bar.set_description_str(status, refresh=False)
        self.bar.update(len(info.costs))
        return False

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Checkpointer:
    """A callback: a checkpoint every ``every`` epochs (mid-run: the engine's whole state, so a resumed
    run goes on bit for bit).

    Also called at the run's last epoch (the end, an early stop, the last finite epoch before a
    divergence), so the last checkpoint is mid-run state: extending a finished run with --resume and a
    larger --epochs goes on exactly. The arrays are copied on the training thread and written
    (atomically, fsynced) on a second thread while training goes on; one write at a time, so each
    checkpoint replaces an older one.
    ``wait`` finishes the write in flight (and raises its error, if any).
    """

    def __init__(self, every, arrays, path):
        from concurrent.futures import ThreadPoolExecutor

        self.every, self.arrays, self.path = every, arrays, path
        self.last, self.seconds, self.pending = None, 0.0, None
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastdnn-checkpoint")

    def __call__(self, info):
        from fastdnn.io import write_archive

        self.seconds += info.seconds
        arrays = self.arrays(self.seconds)
        self.wait()
        self.pending = (info.epoch, self.writer.submit(write_archive, self.path, arrays))
        return False

    def wait(self):
        if self.pending is not None:
            epoch, future = self.pending
            self.pending = None
            future.result()
            self.last = epoch


def _check_run_state(path, run):
    """The command's run state in a checkpoint, each field checked; the message names the field."""
    positive = lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0  # noqa: E731
    text = lambda v: v is None or isinstance(v, str)  # noqa: E731
    data = run.get("data")
    checks = [
        ("epochs", run.get("epochs") is None or positive(run.get("epochs")), "a positive integer"),
        ("checkpoint_every", run.get("checkpoint_every") is None or positive(run.get("checkpoint_every")),
         "a positive integer"),
        ("elapsed", isinstance(run.get("elapsed", 0.0), (int, float)) and not isinstance(run.get("elapsed", 0.0), bool)
         and math.isfinite(run.get("elapsed", 0.0)) and run.get("elapsed", 0.0) >= 0, "a non-negative number of seconds"),
        ("data", isinstance(data, dict), "an object"),
    ]
    if isinstance(data, dict):
        checks += [
            ("data.path", text(data.get("path")), "a path"), ("data.label", text(data.get("label")), "a column name"),
            ("data.labels", text(data.get("labels")), "a path"),
            ("data.fingerprint", text(data.get("fingerprint")), "a hex digest"),
            ("data.samples", data.get("samples") is None or positive(data.get("samples")), "a positive integer"),
            ("data.features", data.get("features") is None or positive(data.get("features")), "a positive integer"),
            ("data.validation", data.get("validation") is None or isinstance(data.get("validation"), bool),
             "true or false"),
        ]
    for name, ok, what in checks:
        if not ok:
            value = data.get(name[5:]) if name.startswith("data.") else run.get(name)
            raise CLIError(f"{path}: is corrupted: its run field {name} must be {what}, got {value!r}")


def _refuse_to_replace_an_unfinished_run(path):
    """A fresh run would replace ``path``: refuse when it holds a run that stopped before its end (Ctrl-C,
    a kill), which --resume would continue."""
    from fastdnn import io as fio

    if not os.path.exists(path):
        return
    try:
        saved = fio.load_checkpoint(path)
    except (ValueError, OSError):
        return  # not a checkpoint to keep (a foreign file was refused above, unless named)
    state, target = saved.estimator.training_state_, saved.run.get("epochs")
    if isinstance(target, int) and state.epoch < target and not state.stopped:
        of = f" of {target}" if isinstance(target, int) else ""
        raise CLIError(f"{path}: holds an unfinished run (stopped at epoch {state.epoch}{of}); continue it with "
                       f"--resume {path}, or remove it (or give another --checkpoint) to start afresh")


def _checkpoint_path_for(out):
    stem = out[:-4] if out.endswith(".npz") else out
    return stem + ".ckpt.npz"


def _model_path_for(checkpoint):
    """The model a resumed run saves by default: beside its checkpoint, MODEL.ckpt.npz -> MODEL.npz (the
    inverse of ``_checkpoint_path_for``), any other name -> NAME.model.npz."""
    checkpoint = os.fspath(checkpoint)
    if checkpoint.endswith(".ckpt.npz"):
        return checkpoint[: -len(".ckpt.npz")] + ".npz"
    return (checkpoint[:-4] if checkpoint.endswith(".npz") else checkpoint) + ".model.npz"


def _training_data(args, checkpoint, dtype, memory):
    """The training data (a Dataset in memory or a DiskDataset) and the spec that finds them again on --resume."""
    from fastdnn.data import builtin_dataset

    saved = checkpoint.run["data"] if checkpoint else {}
    path = args.data or saved.get("path")
    if path:
        if args.samples or args.features:
            raise CLIError("--samples and --features size the built-in dataset; they do not apply with --data")
        label = args.label if args.data or "label" not in saved else saved["label"]
        labels = args.labels if args.data else saved.get("labels")
        say(f"loading {path}")
        data = load_data(path, prefer="train", memory=memory, dtype=dtype, label=label, labels=labels)
        spec = {"path": os.path.abspath(path), "label": label,
                "labels": os.path.abspath(labels) if labels else None}
    else:
        samples = args.samples or saved.get("samples") or BUILTIN_SAMPLES
        features = args.features or saved.get("features") or BUILTIN_FEATURES
        say(f"generating the built-in dataset ({samples:,} examples x {features} features)")
        data = builtin_dataset(samples, features)
        spec = {"path": None, "samples": samples, "features": features}
    spec["validation"] = saved.get("validation")
    return data, spec


class _CompileNotes:
    """While active, the library's compile notices (INFO on the "fastdnn" logger) are printed."""

    def __init__(self):
        import logging

        class Say(logging.Handler):
            seen = False

            def emit(self, record):
                self.seen = True
                say(record.getMessage())

        self.logger, self.handler = logging.getLogger("fastdnn"), Say()

    def __enter__(self):
        import logging

        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


def _warm_up(params, n_features, dtype, classes, comm=None):
    """Compile (or load from the disk cache) the kernels this run uses, on a few rows, outside the timing.

    A first compile takes seconds: it is announced before it starts. Returns the
    seconds it took, 0.0 when the kernels came from the cache. Full-batch gd and
    momentum probe the Gram route too (wide data take it).
    """
    from fastdnn.engine import GRAM_MIN_EPOCHS
    from fastdnn.estimator import DNNClassifier

    import logging

    seen = []

    class Seen(logging.Handler):
        def emit(self, record):
            seen.append(record)

    logger, handler = logging.getLogger("fastdnn"), Seen()
    logger.addHandler(handler)
    t0 = time.perf_counter()
    try:
        rows = max(4, len(classes))
        full = params["batch_size"] is None
        probe = DNNClassifier(**{**params, "max_iter": GRAM_MIN_EPOCHS if full else 1, "random_state": 0,
                                 "early_stopping": False, "warm_start": False, "verbose": False,
                                 "batch_size": None if full else 2})
        X = np.zeros((rows, n_features), dtype)
        labels = np.resize(classes, rows)
        try:
            probe.fit(X, labels, comm=comm)  # distributed runs compile their own kernels, on every rank alike
            if full:
                probe.set_params(max_iter=1, warm_start=True).fit(X, labels, comm=comm)  # the direct route too
        except DivergenceError:
            pass  # the compiling is done; the run itself reports a divergence
        probe.predict(X[:1])
    finally:
        logger.removeHandler(handler)
    return time.perf_counter() - t0 if seen else 0.0


def _print_header(data, X, held_rows, test, params, classes, target, done, dtype, threads, comm):
    from fastdnn.distributed import local_ranks
    from fastdnn.engine import output_for
    from fastdnn.threads import rank_threads

    m, n = X.shape
    m_train = m - (0 if held_rows is None else held_rows.size)
    parts = [f"{m_train:,} for training"]
    if held_rows is not None:
        parts.append(f"{held_rows.size:,} held out for validation")
    if test is not None:
        parts.append(f"{test.n_samples:,} for testing from {test.describe()}")
    say(f"data: {data.describe()}: {data.n_samples:,} examples x {n} features, {dtype.name}; " + ", ".join(parts))
    K = len(classes)
    dims = [n, *params["hidden_layer_sizes"], output_units(K, params["output"])]
    batch = O.resolve_batch_size(params["batch_size"], m_train)
    ranks = f"{comm.Get_size()} ranks x " if active(comm) else ""
    used = rank_threads(threads, dims, batch or m_train, local_ranks(comm) if active(comm) else 1)  # a collective
    output = output_for(K, params["output"]) + ("" if K == 2 and params["output"] != "softmax" else f" over {K} classes")
    batch_text = {None: "full batch"}.get(batch, f"batch {batch}")
    opt = params["optimizer"] + (f" (beta {params['beta']})" if params["optimizer"] == "momentum" else "")
    lr = O.resolve_learning_rate(params["learning_rate"], params["optimizer"])
    lr_text = f"lr {lr:g}" + (" (auto)" if params["learning_rate"] == "auto" else "")
    extras = [f"l2 {params['l2']}"] if params["l2"] else []
    if params["early_stopping"]:
        extras.append(f"early stopping after {params['n_iter_no_change']} epochs without +{params['tol']}")
    say(
        f"network: {' -> '.join(map(str, dims))} ({params['activation']}, {output}, {params['loss']}, init {params['init']}); "
        f"{opt} {lr_text}, {batch_text}, {target} epochs, seed {params['random_state']}, "
        f"{ranks}{used} BLAS thread{'s' if used != 1 else ''}"
        + ("; " + ", ".join(extras) if extras else "")
    )
    if done:
        say(f"resuming at epoch {done} of {target}")


def _print_costs(curve, rows=10):
    if not curve:
        return
    n = len(curve)
    picks = sorted({round(i * (n - 1) / (rows - 1)) for i in range(rows)} if n > rows else range(n))
    say("cost per epoch: " + "  ".join(f"{i + 1}: {curve[i]:.4f}" for i in picks))


def _plot_format(path):
    suffix = os.path.splitext(path)[1].lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf"):
        raise CLIError(f"{path}: --plot writes .png, .svg or .pdf files")
    return suffix


def draw_costs(est, fmt):
    """The cost per epoch (and the validation accuracy) as image bytes in ``fmt``, drawn on matplotlib's
    Agg canvas: no display, no pyplot state."""
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
    ax.set_ylabel(f"cost ({est.loss})")
    dims = list(est.parameters_.dims)
    ax.set_title(f"fastdnn: {' -> '.join(map(str, dims))}, {est.optimizer} lr {est.learning_rate}")
    ax.grid(True, alpha=0.3)
    scores = est.training_state_.validation_scores
    if scores:
        right = ax.twinx()
        right.plot(np.arange(1, len(scores) + 1), scores, color="tab:orange")
        right.set_ylabel("validation accuracy", color="tab:orange")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()
