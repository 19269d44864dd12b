"""``fastdnn train``: a ``DNNClassifier`` (``--task regression``: a ``DNNRegressor``) fitted on a file (or the
built-in dataset), with a progress bar, checkpoints and a saved model.

A thin layer: the options are ``fastdnn.options``' table (with the command's
defaults; an estimator takes its task's rows), training is the estimator's ``fit`` through the engine, progress and
checkpoints are callbacks (``progress.py``), the run state its checkpoints keep is
one record (``run_state.py``), the data, the test data and the rows held out (by
``fastdnn.labels.split_rows``, as early stopping holds them out) are
``train_data.py``'s, and files are ``fastdnn.io``'s. ``_run`` is the run's steps:
plan (checkpoint, options, destinations), examples, start (the estimator, fresh or
restored), warm-up, fit, report and save.
"""

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from fastdnn import options as O
from fastdnn.cli.common import (
    CLIError,
    describe,
    check_writable,
    say,
    table_values,
    threads_option,
)
from fastdnn.cli.progress import Checkpointer, CompileNotes, ProgressBar
from fastdnn.cli.run_state import RunState
from fastdnn.cli.train_data import load_examples
from fastdnn.data import fingerprint
from fastdnn.datasets import DEFAULT_FEATURES, DEFAULT_SAMPLES
from fastdnn.distributed import AllRanksError, active, join, local_ranks, together
from fastdnn.errors import DivergenceError, TrainingInterrupted, divergence_message
from fastdnn.files import OutputLock, import_optional
from fastdnn.monitors import EarlyStopping
from fastdnn.threads import rank_threads

DEFAULT_OUT = "fastdnn-model.npz"
# The options a resumed run may change; every other must equal the checkpoint's.
RESUMABLE = ("max_iter", "threads")
TRAINING_OPTIONS = tuple(o.name for o in O.OPTIONS if o.flag and o.name != "validation_fraction")
# The options every rank of a distributed run must share (--epochs and --dtype as resolved; each rank may use its
# own cores and memory).
ALIKE = tuple(o.name for o in O.OPTIONS if o.flag and o.name not in ("max_iter", "dtype", "threads", "memory"))


def add_parser(sub, common, fmt):
    train = sub.add_parser(
        "train", parents=[common], formatter_class=fmt, help="train a classifier (or a regressor) and save it",
        description="Train a DNNClassifier (with --task regression a DNNRegressor) on --data (or the built-in dataset),\n"
        "print its progress and accuracy (a regressor's R^2), save it. A continuous target is not detected: give\n"
        "--task regression (--output and --loss are a classifier's; a regressor's output is the identity and its\n"
        "loss the squared error).\n"
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
    g.add_argument("--weights", metavar="FILE", help="sample weights: a .npy of one number per example of --data "
                   "(each example's weight in every cost and gradient; data in memory)")
    O.add_arguments(g, ["task"])
    g.add_argument("--samples", type=int, metavar="N", help=f"built-in dataset: examples (default {DEFAULT_SAMPLES:,})")
    g.add_argument("--features", type=int, metavar="N", help=f"built-in dataset: features (default {DEFAULT_FEATURES})")
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


def _task(args, checkpoint):
    """--task as given (checked by the table), or the resumed checkpoint's estimator's, which it must equal."""
    given = table_values(args, ["task"]).get("task")
    if checkpoint is None:
        return given or O.ROWS["task"].default
    saved = checkpoint.estimator.task
    if given is not None and given != saved:
        raise CLIError(f"{args.resume}: --task {given} differs from the checkpoint's {saved}; a resumed run keeps its "
                       "task")
    return saved


def _options(args, checkpoint, task):
    """The run's estimator parameters: the command line over the command's defaults, or the checkpoint's
    (which only --epochs and --threads may change); ``task``'s estimator's options only (a flag of another's
    is one line)."""
    given = _given(args)
    names = O.names(task)
    for name in given:
        if name not in names:
            raise CLIError(f"{_flag(name)}: is a classifier's option; --task {task} trains a DNNRegressor, whose "
                           "output is the identity and loss the squared error")
    if checkpoint is None:
        defaults = {**O.COMMAND_DEFAULTS, "verbose": False, "warm_start": False}
        return {name: defaults[name] for name in names} | given
    params = checkpoint.estimator.get_params()
    for name, value in given.items():
        saved, source = params[name], ""
        if name in RESUMABLE or name == "validation_fraction" and not params["early_stopping"]:
            continue
        if name == "dtype" and saved is None:
            # Trained without --dtype: in its data's float type, which its parameters hold.
            saved = checkpoint.estimator.parameters_.flat.dtype.name
            source = " (its data's: it was trained without --dtype)"
        try:
            checked = O.BY_NAME[name].validate(saved)  # as the command line's value was: "step:2" is "step:2:0.5"
        except (KeyError, TypeError, ValueError):
            checked = saved
        same = value in (saved, checked) or (isinstance(saved, float) and isinstance(value, float)
                                            and math.isclose(value, saved))
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


@dataclass
class _Plan:
    """What the run does, settled before any data are read."""

    checkpoint: object  # the fastdnn.estimator.Checkpoint resumed, or None
    saved: RunState | None  # its run state
    task: str  # "classification" or "regression" (--task)
    params: dict  # the estimator's parameters
    memory: int  # bytes: larger data stream from disk
    out: str
    every: int | None
    ckpt_path: str


@dataclass
class _Start:
    """The estimator the run trains and where the run stands."""

    est: object
    target: int  # the epochs the run trains to
    done: int  # trained before (--resume)
    threads: int | None
    resumed: bool
    stopped: bool  # early stopping ended the resumed run
    record: RunState  # what its checkpoints keep

    @property
    def complete(self):
        return self.done >= self.target or self.stopped

    def snapshot(self, seconds):
        """A checkpoint's arrays now, ``seconds`` of training into this part of the run."""
        from fastdnn import io as fio

        return fio.checkpoint_arrays(self.est, run=self.record.after(seconds).to_json())


def _run(args, comm, writes):
    with contextlib.ExitStack() as locks:
        # Each rank checks its own files and data; a refusal on any stops every rank here, together, before the
        # first collective (the header's) where the others would wait for it.
        with together(comm, describe) as alike:
            plan = _plan(args, writes, locks)
            examples = load_examples(args, plan.params, plan.memory, plan.saved,
                                     plan.every or plan.checkpoint is not None, plan.task)
            start = _start(args, plan, examples)
            alike.update(_alike(examples, start))
        _print_header(examples, start, comm)
        if examples.streamed:
            _print_streaming(examples, start.est, plan.memory)
        logs = CompileNotes()
        if not _compile(examples, start, logs, comm, writes):
            return 130
        saver = Checkpointer(plan.every, start.snapshot, plan.ckpt_path) if plan.every and writes else None
        seconds = _fit(args, examples, start, saver, logs, comm, writes)
        if seconds is None:
            return 130
        # What the user asked for, not how the command continued a resumed run: a loaded model's next fit
        # trains a fresh network for the run's epochs unless told to warm start.
        start.est.set_params(max_iter=start.target, warm_start=False)
        if writes:  # rank 0 scores, prints and writes; the others are done
            _report_and_save(args, plan, examples, start, saver, seconds)
        return 0


def _plan(args, writes, locks):
    """The checkpoint resumed and its run state, the options, the destinations (checked; locked where this
    rank writes)."""
    from fastdnn.estimator import load_checkpoint

    checkpoint = saved = None
    if args.resume:
        checkpoint = load_checkpoint(args.resume)
        saved = RunState.from_json(args.resume, checkpoint.run)
    task = _task(args, checkpoint)
    params = _options(args, checkpoint, task)
    # A resumed run saves beside its checkpoint (MODEL.ckpt.npz -> MODEL.npz, where the first part saved by
    # default), unless told otherwise now: never at a path read from inside the file, which a crafted
    # checkpoint would choose.
    out = args.out or (_model_path_for(args.resume) if checkpoint else DEFAULT_OUT)
    every = args.checkpoint_every or (saved.checkpoint_every if saved else None)
    ckpt_path = args.checkpoint or args.resume or _checkpoint_path_for(out)
    _claim_destinations(args, out, every, ckpt_path, writes, locks)
    memory = O.BY_NAME["memory"].validate(params["memory"])
    return _Plan(checkpoint, saved, task, params, memory, out, every, ckpt_path)


def _claim_destinations(args, out, every, ckpt_path, writes, locks):
    """Every destination checked before any work, so that a refusal costs nothing; the writing rank locks
    the model and the checkpoint."""
    inputs = [p for p in (args.data, args.test, args.resume) if p]
    check_writable(out, args.out is not None, "model", inputs)
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
        _plot_format(args.plot)
        import_optional("matplotlib", "plot", "--plot")
        check_writable(args.plot, True, "plot", inputs + [out, ckpt_path if every else out])


def _start(args, plan, examples):
    """A new estimator of the run's options, or the checkpoint's once its data are known to be the same."""
    from fastdnn.estimator import ESTIMATORS

    if plan.checkpoint:
        return _restored(args, plan, examples)
    params = dict(plan.params)
    if args.batch_size is None and isinstance(params["batch_size"], int):
        # The default batch on fewer examples: all of them.
        params["batch_size"] = min(params["batch_size"], examples.m_train)
    threads = threads_option(args.threads)
    est = ESTIMATORS[plan.task](**{**params, "threads": threads})
    return _Start(est, params["max_iter"], 0, threads, resumed=False, stopped=False,
                  record=_record(plan, params["max_iter"], examples))


def _restored(args, plan, examples):
    """The checkpoint's estimator, once its data are known to be those it trained on, and where its run stands."""
    checkpoint, saved = plan.checkpoint, plan.saved
    rows = examples.train_rows
    # Version-1 checkpoints fingerprinted the training split (the same rows split_rows holds out now).
    v1 = (not examples.streamed and examples.spec.validation and _version_1(checkpoint)
          and saved.data.fingerprint == fingerprint(examples.X[rows], examples.data.y[rows]))
    if saved.data.fingerprint != examples.spec.fingerprint and not v1:
        raise CLIError(f"{args.resume}: was trained on other data than {examples.data.describe()} (or on another "
                       "split of it)")
    est = checkpoint.estimator
    target = args.max_iter or saved.epochs or est.max_iter
    threads = threads_option(args.threads) or est.threads
    state = est.training_state_
    return _Start(est, target, state.epoch, threads, resumed=True, stopped=state.stopped,
                  record=_record(plan, target, examples))


def _record(plan, target, examples):
    """The run state this run's checkpoints keep: a resumed run's training time goes on from its last part's."""
    return RunState(epochs=target, checkpoint_every=plan.every, out=os.path.abspath(plan.out),
                    elapsed=plan.saved.elapsed if plan.saved else 0.0, data=examples.spec)


def _alike(examples, start):
    """What every rank must hold alike, each difference named by its option, before the engine would see
    only what it causes (other rows held out, other data)."""
    return {
        "training data (examples, features)": tuple(examples.X.shape),
        "classes": None if examples.classes is None else examples.classes.tolist(),
        **{_flag(name): _shown(name, value) for name, value in start.est.get_params().items() if name in ALIKE},
        "--dtype": examples.dtype.name, "--epochs": start.target, "epochs trained before (--resume)": start.done,
    }


def _print_streaming(examples, est, memory):
    from fastdnn.stream import block_rows_for

    X, dtype = examples.X, examples.dtype
    batch = O.resolve_batch_size(est.batch_size, examples.m_train)
    block = block_rows_for(memory, X.n_features, est.output_layer(examples.targets)[2], dtype, batch)
    say(f"streaming from disk: {_size(X.nbytes())} of {dtype.name} features, more than --memory {_size(memory)}: "
        f"two buffers of {block:,} rows ({_size(block * X.n_features * dtype.itemsize)} each), one read while the "
        "other trains")


def _compile(examples, start, logs, comm, writes):
    """The run's kernels compiled (or loaded from the cache) before training; False when a Ctrl-C stopped it."""
    try:
        with logs:
            compiled = start.est.warm_up(examples.X.shape[1], examples.targets, examples.dtype, comm, examples.m_train)
    except TrainingInterrupted:
        # A Ctrl-C during the ranks' warm-up stops them together (as in training): nothing trained yet.
        if writes:
            print("fastdnn train: interrupted while compiling, before training; nothing saved", file=sys.stderr,
                  flush=True)
        comm.Barrier()
        return False
    if compiled:
        say(f"compiled kernels ready in {compiled:.1f} s")
    return True


def _fit(args, examples, start, saver, logs, comm, writes):
    """The epochs left trained, with the progress bar and ``saver``'s checkpoints: the seconds it took, or None
    when a Ctrl-C stopped it (said, and a checkpoint written that resumes there)."""
    est = start.est
    progress = ProgressBar(start.target, start.done, examples.m_train, args.quiet or not writes, examples.metric)
    if start.complete:
        progress.close()
        say(f"{args.resume}: its run is complete at epoch {start.done}"
            + (" (stopped early)" if start.stopped else f" of {start.target}") + "; nothing to train")
        if est.early_stopping:
            EarlyStopping.keep_best(est.engine_)
        return 0.0
    est.set_params(max_iter=start.target - start.done, warm_start=start.resumed, threads=start.threads)
    rows = None if est.early_stopping else examples.train_rows  # early stopping holds out the same rows itself
    t0 = time.perf_counter()
    try:
        with logs:
            est.fit(examples.X, examples.labels, sample_weight=examples.weights, rows=rows,
                    callbacks=[c for c in (progress, saver) if c], comm=comm)
        # Training time: the last checkpoint's write, finished below, is file I/O after it.
        return time.perf_counter() - t0
    except KeyboardInterrupt as exc:
        progress.close()
        if saver:
            saver.wait()
        _stop(exc, est, saver, comm, writes)
        return None
    except DivergenceError as exc:
        progress.close()
        raise _diverged(exc, est, comm) from None
    finally:
        progress.close()
        if saver:
            saver.wait()


def _stop(exc, est, saver, comm, writes):
    """A Ctrl-C in training: where the run stopped said, a checkpoint written where it resumes exactly."""
    where = f"; the checkpoint at epoch {saver.last} is {saver.path}" if saver and saver.last else ""
    if saver and isinstance(exc, TrainingInterrupted):
        # Taken at the end of a block (or across ranks, at an epoch's start): the state resumes exactly.
        saver.write_now()
        state, position = est.training_state_, est.training_state_.stream
        blocks = f" and {position.next} of the next epoch's {len(position.spans)} blocks" if position else ""
        where = f"; checkpoint written after {state.epoch} epochs{blocks}: {saver.path} (continue with --resume)"
    if writes or not isinstance(exc, TrainingInterrupted):
        print(f"fastdnn train: interrupted at epoch {est.training_state_.epoch}; no model saved{where}",
              file=sys.stderr, flush=True)
    if active(comm) and not isinstance(exc, TrainingInterrupted):
        comm.Abort(130)  # a second Ctrl-C: the other ranks may be inside a collective this one has left
    if active(comm):
        comm.Barrier()  # every rank stopped at the same point: they leave once rank 0's checkpoint is written


def _diverged(exc, est, comm):
    """The error a divergence ends the run with: one line saying what to try."""
    lr = O.resolve_learning_rate(est.learning_rate, est.optimizer)
    text = divergence_message(exc.reason, exc.cost, f"epoch {exc.epoch} (counted from 0)",
                              f"no model was saved; try a smaller --lr (this run's: {lr:g})")
    if active(comm):
        # Every rank updates by the same reduced gradient: all of them diverge at the same step.
        return AllRanksError(f"training diverged: {text}", comm.Get_rank())
    return CLIError(f"training diverged: {text}")


def _report_and_save(args, plan, examples, start, saver, seconds):
    """The costs and accuracies printed, then the model and the plot written."""
    from fastdnn import files
    from fastdnn import io as fio

    est, state = start.est, start.est.training_state_
    _print_costs(state.costs)
    say("   ".join(examples.accuracies(est)))
    if est.early_stopping and state.best_epoch is not None:
        say(f"early stopping: kept epoch {state.best_epoch}'s parameters (validation {examples.metric} "
            f"{state.best_score:.4f})")
    # The image is drawn before anything is written: a failure to draw it saves nothing.
    image = draw_costs(est, _plot_format(args.plot), examples.metric) if args.plot else None
    fio.save_model(est, plan.out)
    trained = state.epoch - start.done
    rate = f", {examples.m_train * trained / seconds:,.0f} examples/s" if seconds > 0 and trained else ""
    say(f"model saved to {plan.out} (trained {trained} epochs in {seconds:.{2 if seconds < 10 else 1}f} s{rate})")
    if plan.every:
        say(f"checkpoint at epoch {saver.last if saver.last is not None else start.done}: {plan.ckpt_path}")
    if args.plot:
        try:
            files.atomic_write(args.plot, lambda f: f.write(image))
        except OSError as exc:
            raise CLIError(f"{describe(exc)}; the model itself was saved to {plan.out}") from None
        say(f"cost curve plotted to {args.plot}")


def _size(n):
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _version_1(checkpoint):
    """Whether the checkpoint is version 1's, which kept early stopping's record in the command's run state."""
    return "best_epoch" in checkpoint.run


def _refuse_to_replace_an_unfinished_run(path):
    """A fresh run would replace ``path``: refuse when it holds a run that stopped before its end (Ctrl-C,
    a kill), which --resume would continue."""
    from fastdnn.estimator import load_checkpoint

    if not os.path.exists(path):
        return
    try:
        saved = load_checkpoint(path)
        target = RunState.from_json(path, saved.run).epochs
    except (ValueError, OSError, CLIError):
        return  # not a run to keep (a foreign file was refused above, unless named)
    state = saved.estimator.training_state_
    if target is not None and state.epoch < target and not state.stopped:
        raise CLIError(f"{path}: holds an unfinished run (stopped at epoch {state.epoch} of {target}); continue it "
                       f"with --resume {path}, or remove it (or give another --checkpoint) to start afresh")


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



def _print_header(examples, start, comm):
    data, held_rows, test, classes, dtype = (examples.data, examples.held_rows, examples.test, examples.classes,
                                             examples.dtype)
    params, target, done, threads = start.est.get_params(), start.target, start.done, start.threads
    n, m_train = examples.X.shape[1], examples.m_train
    parts = [f"{m_train:,} for training"]
    if held_rows is not None:
        parts.append(f"{held_rows.size:,} held out for validation")
    if test is not None:
        parts.append(f"{test.n_samples:,} for testing from {test.describe()}")
    say(f"data: {data.describe()}: {data.n_samples:,} examples x {n} features, {dtype.name}; " + ", ".join(parts))
    output, loss, units = start.est.output_layer(examples.targets)
    dims = [n, *params["hidden_layer_sizes"], units]
    batch = O.resolve_batch_size(params["batch_size"], m_train)
    ranks = f"{comm.Get_size()} ranks x " if active(comm) else ""
    used = rank_threads(threads, dims, batch or m_train, local_ranks(comm) if active(comm) else 1)  # a collective
    if classes is not None and not (len(classes) == 2 and params["output"] != "softmax"):
        output += f" over {len(classes)} classes"
    batch_text = {None: "full batch"}.get(batch, f"batch {batch}")
    opt = params["optimizer"] + (f" (beta {params['beta']})" if params["optimizer"] == "momentum" else "")
    lr = O.resolve_learning_rate(params["learning_rate"], params["optimizer"])
    lr_text = f"lr {lr:g}" + (" (auto)" if params["learning_rate"] == "auto" else "")
    if params["lr_schedule"] != "constant":
        lr_text += f" on schedule {O.BY_NAME['lr_schedule'].validate(params['lr_schedule'])}"
    extras = [f"l2 {params['l2']}"] if params["l2"] else []
    keep = O.keep_probs(params.get("keep_prob", O.DEFAULTS["keep_prob"]), len(dims) - 2)
    if any(p < 1 for p in keep):
        extras.append("dropout keep_prob " + (f"{keep[0]:g}" if len(set(keep)) == 1 else ",".join(f"{p:g}" for p in keep)))
    if params["early_stopping"]:
        extras.append(f"early stopping after {params['n_iter_no_change']} epochs without +{params['tol']}")
    say(
        f"network: {' -> '.join(map(str, dims))} ({params['activation']}, {output}, {loss}, init {params['init']}); "
        f"{opt} {lr_text}, {batch_text}, {target} epochs, seed {params['random_state']}, "
        f"{ranks}{used} thread{'s' if used != 1 else ''}"
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


def draw_costs(est, fmt, metric="accuracy"):
    """The cost per epoch (and the validation score, ``metric``: accuracy, or a regressor's R^2) as image bytes
    in ``fmt``, drawn on matplotlib's Agg canvas: no display, no pyplot state."""
    import io

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
    ax.set_ylabel(f"cost ({est.network_['loss']})")
    dims = list(est.parameters_.dims)
    ax.set_title(f"fastdnn: {' -> '.join(map(str, dims))}, {est.optimizer} lr {est.learning_rate}")
    ax.grid(True, alpha=0.3)
    scores = est.training_state_.validation_scores
    if scores:
        right = ax.twinx()
        right.plot(np.arange(1, len(scores) + 1), scores, color="tab:orange")
        right.set_ylabel(f"validation {metric}", color="tab:orange")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt)
    return buffer.getvalue()
