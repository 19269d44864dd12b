"""The training engine: the one epoch loop behind every entry point, and the only caller of compiled kernels
outside the per-stage functions of ``pipeline.py``.

``fastdnn.model``/``L_layer_model``, ``DNNClassifier.fit``/``partial_fit`` and
``fastdnn train`` all train through ``Engine.train``. It decides once per call,
for everyone, the route (the direct loop, or for wide full-batch data the Gram
route that carries the first layer in the example space), the BLAS threads and
how many epochs each compiled call runs. Looking at the run (progress, costs,
validation, checkpoints, callbacks) goes through monitors, which say how often
they need to look (``every``); a monitor that needs only costs never makes the
run take a slower route or shorter compiled calls than a quarter of a second.

What persists from epoch to epoch is a ``TrainingState`` of plain arrays and
numbers (parameters, optimizer state, step, the shuffling generator's state,
epoch, costs, early stopping's record and, mid-run on the Gram route, its
carried state), which model files and checkpoints store and restore: a resumed
run goes on bit for bit.

Data are the sample-major ``(m, n_0)`` X and ``(m, n_L)`` Y; a subset of X's
rows (a training split) is given as row indices, never as a copy of X, except
that full-batch training on a subset gathers it once (the batch itself).
"""

import contextlib
import copy
import json
import math
import signal
import threading
import time
import warnings

import numpy as np

from fastdnn import distributed as D
from fastdnn import validation as V
from fastdnn.kernels import compiled
from fastdnn.kernels import gram as GR
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.pipeline import activation_codes
from fastdnn.stream import DiskDataset, Feed, epoch_blocks
from fastdnn.threads import blas_threads, rank_threads, training_threads

# A chunk of epochs between two looks of a monitor that needs only costs lasts about this long.
CHUNK_SECONDS = 0.25
# Permutations for a chunk of epochs are drawn up front; cap their memory.
PERM_BYTES = 64 * 2**20
# The Gram matrix G = X X^T costs m^2 n_0 once and m^2 n_1 a step against the direct route's
# 2 m n_0 n_1 a step: worth it from a few steps on when m <= n_0 / 2, within this much memory.
GRAM_MAX_BYTES = 256 * 2**20
GRAM_MIN_EPOCHS = 10
# Validation predictions gather this many rows at a time.
PREDICT_ROWS = 8192
# Full-batch training over blocks streamed from disk sums the gradient this many rows at a time.
ACCUMULATE_ROWS = 1024


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training on data streamed from disk, taken at the end of a block: the engine's
    state is consistent there (mid-epoch, its position recorded), so a checkpoint of it resumes exactly."""


class DivergenceError(FloatingPointError):
    """Training stopped being finite in epoch ``epoch`` (counted from 0 over the whole run, so it is also the
    number of finite epochs before it).

    ``reason`` is "cost" (the epoch's cost was not finite) or "parameters" (an update made a parameter or
    optimizer-state value NaN or Inf while the cost, ``cost``, was still finite); ``costs`` are the costs of
    the call's finite epochs. The engine is left exactly as it was at the end of the last finite epoch.
    """

    def __init__(self, message, epoch, cost, costs=(), reason="cost"):
        super().__init__(message)
        self.epoch = epoch
        self.cost = cost
        self.costs = list(costs)
        self.reason = reason


class OutputOverflowError(ValueError):
    """Example ``row`` (its index in X) drives the network's activations beyond what its dtype holds (the
    weights or the example's features are too large): its outputs would be NaN (Inf - Inf) or an overflow's
    Inf standing for a finite number, so no probabilities are given."""

    def __init__(self, message, row):
        super().__init__(message)
        self.row = row


def divergence_message(reason, cost, where, advice="the last finite parameters are kept. Try a smaller learning_rate."):
    """The one wording of a divergence, for every entry point; ``where`` is e.g. "epoch 12"."""
    if reason == "cost":
        what = f"the cost became {cost} at {where}"
    else:
        what = f"an update made the parameters NaN or Inf at {where} (the cost was still {cost:.6g})"
    return f"{what}; {advice}"


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


# ---------------------------------------------------------------------------- state


class GramCarry:
    """The Gram route's state mid-run: W1 = s W1_init + C X, momentum's v_W1 = a W1_init + V X.

    ``W1_init`` (n1, n0), ``C`` and ``V`` (n1, m) float64, ``carry`` [s, a, ||W1_init||^2], ``norms``
    (m,) the examples' squared norms, which tell the X it was built on. G = X X^T and
    Z1_init = X W1_init^T are recomputed from X when a run resumes.
    """

    def __init__(self, W1_init, C, V, carry, norms):
        self.W1_init, self.C, self.V, self.carry, self.norms = W1_init, C, V, carry, norms

    def arrays(self):
        return {"gram_W1_init": self.W1_init, "gram_C": self.C, "gram_V": self.V, "gram_carry": self.carry,
                "gram_norms": self.norms}


class TrainingState:
    """Everything a run carries from epoch to epoch, as plain arrays and numbers.

    parameters         ``Parameters`` (flat), updated in place
    optimizer_state    (2P,) momentum's velocity, Adam's first and second moments
    optimizer          the optimizer the state belongs to
    step               optimizer steps taken (Adam's t)
    rng                the shuffling ``np.random.Generator`` (its ``bit_generator.state`` is saved)
    epoch              epochs completed, over every ``train`` call
    costs              one cost per epoch
    validation_scores  validation accuracy per epoch, when validated
    best_score, best_epoch, best_parameters, stall, stopped
                       early stopping's record: the best score, its epoch and flat parameters,
                       the epochs since, and whether it stopped the run
    gram               a ``GramCarry`` while a run on the Gram route is between chunks, else None
    in_progress        True while ``Engine.train`` runs: a checkpoint written by a monitor is mid-run,
                       and the next ``train`` on its state continues that run (early stopping's
                       record included) rather than starting a new one
    stream             mid-epoch on data streamed from disk (an interrupted epoch), else None: a
                       ``StreamPosition``, the epoch's blocks and how far it got
    """

    SCALARS = ("optimizer", "step", "epoch", "best_score", "best_epoch", "stall", "stopped", "in_progress")

    def __init__(self, parameters, seed=None, optimizer="gd"):
        self.parameters = parameters
        self.optimizer_state = np.zeros(2 * parameters.flat.size, parameters.flat.dtype)
        self.optimizer = optimizer
        self.step = 0
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.costs = []
        self.validation_scores = []
        self.best_score = None
        self.best_epoch = None
        self.best_parameters = None
        self.stall = 0
        self.stopped = False
        self.gram = None
        self.in_progress = False
        self.stream = None

    def reset_early_stopping(self):
        self.validation_scores = []
        self.best_score = self.best_epoch = self.best_parameters = None
        self.stall = 0
        self.stopped = False

    def to_arrays(self):
        """Every field as a plain array (text as 0-d unicode, the scalars as JSON), parameters excluded."""
        out = {
            "optimizer_state": self.optimizer_state,
            "costs": np.array(self.costs, np.float64),
            "validation_scores": np.array(self.validation_scores, np.float64),
            "rng_state": np.array(json.dumps(self.rng.bit_generator.state), np.str_),
            "scalars": np.array(json.dumps({name: getattr(self, name) for name in self.SCALARS}), np.str_),
        }
        if self.best_parameters is not None:
            out["best_parameters"] = self.best_parameters
        if self.gram is not None:
            out.update(self.gram.arrays())
        if self.stream is not None:
            out.update(self.stream.arrays())
        return out

    @classmethod
    def from_arrays(cls, parameters, arrays):
        """The state ``to_arrays`` saved; raises ValueError (KeyError, TypeError) on inconsistent arrays."""
        state = cls(parameters)
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
        for name in cls.SCALARS:
            setattr(state, name, scalars[name])
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
        if "best_parameters" in arrays:
            best = arrays["best_parameters"]
            if best.shape != (P,) or best.dtype != parameters.flat.dtype:
                raise ValueError(f"best_parameters has shape {best.shape}, expected ({P},)")
            state.best_parameters = np.array(best)
        if "gram_C" in arrays:
            n1, n0 = parameters.dims[1], parameters.dims[0]
            W1_init, C, Vv, carry, norms = (
                np.array(arrays[k], np.float64) for k in ("gram_W1_init", "gram_C", "gram_V", "gram_carry", "gram_norms")
            )
            if (W1_init.shape != (n1, n0) or C.ndim != 2 or C.shape[0] != n1 or Vv.shape != C.shape or carry.shape != (3,)
                    or norms.shape != (C.shape[1],)):
                raise ValueError("the Gram route's carried state has inconsistent shapes")
            state.gram = GramCarry(W1_init, C, Vv, carry, norms)
        if "stream_spans" in arrays:
            state.stream = StreamPosition.from_arrays(arrays, P, parameters.flat.dtype)
        return state


class StreamPosition:
    """Where an epoch over blocks streamed from disk stopped: its blocks ``spans`` ((k, 2) first/stop rows,
    in the epoch's order), the ``next`` one to train, the cost summed so far (``total``), the blocks'
    size ``block_rows``, the minibatch size ``batch`` (0: full batch), and for full-batch training the
    gradient summed so far (``grad``, else None). The shuffling generator's state is the
    ``TrainingState``'s, as it stood after the last block."""

    def __init__(self, spans, block_rows, batch, next=0, total=0.0, grad=None):
        self.spans, self.block_rows, self.batch = spans, block_rows, batch
        self.next, self.total, self.grad = next, total, grad

    def copy(self):
        return StreamPosition(self.spans, self.block_rows, self.batch, self.next, self.total,
                              None if self.grad is None else self.grad.copy())

    def arrays(self):
        out = {"stream_spans": self.spans,
               "stream_position": np.array([self.next, self.block_rows, self.batch], np.int64),
               "stream_total": np.array(self.total, np.float64)}
        if self.grad is not None:
            out["stream_grad"] = self.grad
        return out

    @classmethod
    def from_arrays(cls, arrays, P, dtype):
        spans = np.array(arrays["stream_spans"], np.int64)
        position = np.array(arrays["stream_position"], np.int64)
        grad = arrays.get("stream_grad")
        if (spans.ndim != 2 or spans.shape[1] != 2 or position.shape != (3,) or not 0 <= position[0] <= len(spans)
                or position[1] < 1 or position[2] < 0 or (grad is None) != (position[2] != 0)
                or (grad is not None and (grad.shape != (P,) or grad.dtype != dtype))):
            raise ValueError("the streamed epoch's saved position is inconsistent")
        return cls(spans, int(position[1]), int(position[2]), int(position[0]), float(arrays["stream_total"]),
                   None if grad is None else np.array(grad))


# ---------------------------------------------------------------------------- monitors


class Monitor:
    """Something that looks at a run between compiled calls.

    ``every``: look at every multiple of this many epochs (1: after each epoch); None: at the engine's own
    pace, about every ``CHUNK_SECONDS``. Every monitor also looks at the run's last epoch (the end of the
    call, a stop asked by another monitor, or the last finite epoch before a divergence).
    ``needs_parameters``: whether ``look`` reads the parameters (on the Gram route the engine then forms W1
    first). ``look(engine, costs, seconds)`` gets the costs of the epochs since this monitor's last look
    and the seconds they took; a true result stops the run there.
    """

    every = None
    needs_parameters = False

    def look(self, engine, costs, seconds):
        return False


class Monitors(Monitor):
    """Several monitors as one: the engine returns to Python at every multiple of each one's ``every``
    (and at its own pace when one has none); each monitor is shown all the costs since its own last look."""

    def __init__(self, monitors):
        self.monitors = [m for m in monitors if m is not None]
        everys = [m.every for m in self.monitors if m.every]
        self.every = None
        if everys:
            self.every = everys[0]
            for e in everys[1:]:
                self.every = int(np.gcd(self.every, e))  # every multiple of each is a multiple of this
        self.paced = any(m.every is None for m in self.monitors)
        self.needs_parameters = any(m.needs_parameters for m in self.monitors)
        self.pending = [([], 0.0) for _ in self.monitors]

    def look(self, engine, costs, seconds, final=False):
        stop = False
        epoch = engine.state.epoch
        for i, m in enumerate(self.monitors):
            seen, spent = self.pending[i]
            seen, spent = seen + list(costs), spent + seconds
            if not seen:
                continue  # nothing new to show (a divergence in the first epoch since its last look)
            if m.every is None or epoch % m.every == 0 or final or stop:
                self.pending[i] = ([], 0.0)
                stop = bool(m.look(engine, np.asarray(seen), spent)) or stop
            else:
                self.pending[i] = (seen, spent)
        return stop


class EarlyStopping(Monitor):
    """Validation accuracy after every epoch; stops after ``patience`` epochs without an improvement over ``tol``.

    The record (best score, epoch, parameters, stall) lives in the engine's
    ``TrainingState``, so chunked fits and resumed runs behave alike;
    ``keep_best`` puts the best parameters back at the end. With
    ``patience=None`` it only records the scores.
    """

    every = 1
    needs_parameters = True

    def __init__(self, X, labels, rows=None, tol=1e-4, patience=10):
        self.X, self.labels, self.rows, self.tol, self.patience = X, labels, rows, tol, patience

    def look(self, engine, costs, seconds):
        state = engine.state
        score = engine.accuracy(self.X, self.labels, self.rows)
        state.validation_scores.append(score)
        if self.patience is None:
            return False
        if state.best_score is None or score > state.best_score + self.tol:
            state.best_score, state.best_epoch, state.stall = score, state.epoch, 0
            state.best_parameters = state.parameters.flat.copy()
        else:
            state.stall += 1
            if state.stall >= self.patience:
                state.stopped = True
        return state.stopped

    @staticmethod
    def keep_best(engine):
        """The best epoch's parameters back in place (when early stopping recorded one)."""
        if engine.state.best_parameters is not None:
            engine.state.parameters.flat[:] = engine.state.best_parameters


# ---------------------------------------------------------------------------- the engine


class Engine:
    """One network's training: its architecture, hyperparameters, ``TrainingState`` and buffers.

    ``parameters`` is a ``Parameters`` the engine updates in place; ``state`` a
    ``TrainingState`` to continue (a checkpoint's), else a fresh one seeded with ``seed``.
    """

    def __init__(
        self, parameters, *, hidden_activation="relu", output="sigmoid", loss="cross_entropy", frozen_layers=0,
        optimizer="gd", learning_rate=0.0075, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, lambd=0.0,
        mini_batch_size=None, threads=None, seed=1, state=None,
    ):
        dims = parameters.dims
        self.dims = np.asarray(dims, np.int64)
        self.network = {"hidden_activation": hidden_activation, "output": output, "loss": loss}
        self.codes = activation_codes(hidden_activation, output, loss)  # (hidden, output)
        self.frozen_layers = frozen_layers
        self.state = state if state is not None else TrainingState(parameters, seed, optimizer)
        if self.state.parameters is not parameters:
            raise ValueError("state must hold the engine's parameters")
        self._gram = None  # (X, G, Z0) of the Gram route in progress
        self._stop = threading.Event()  # set by Ctrl-C while a streamed run is in progress
        self._w1_stale = False
        self._work = None
        self._drifted = False  # warned once that the MPI ranks' parameters drifted apart
        self.configure(
            optimizer=optimizer, learning_rate=learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon,
            lambd=lambd, mini_batch_size=mini_batch_size, threads=threads,
        )

    def __getstate__(self):
        # Pickled (a DNNClassifier copied or sent to another process) without this process's run-time
        # objects: the Ctrl-C flag (a lock), the scratch buffers; a Gram route is never in progress between
        # calls.
        state = self.__dict__.copy()
        state["_stop"], state["_work"] = None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._stop = threading.Event()

    def configure(self, *, optimizer, learning_rate, beta, beta1, beta2, epsilon, lambd, mini_batch_size, threads):
        """Everything a later ``train`` may train with differently; the network itself stays.

        A change of optimizer starts its state (velocity, Adam's moments and step
        count) afresh: one optimizer's state means nothing to another.
        """
        V.check_choice(optimizer, V.OPTIMIZERS, "optimizer")
        state = self.state
        if optimizer != state.optimizer:
            state.optimizer_state[:] = 0
            state.step = 0
            state.optimizer = optimizer
        self.opt = K.OPTIMIZER_CODES[optimizer]
        self.hyper = N.Hyper(
            float(learning_rate), float(beta if optimizer == "momentum" else beta1), float(beta2), float(epsilon)
        )
        # The kernels take the L2 strength apart: None (no L2) compiles a version without its code.
        self.lambd = float(lambd) if lambd else None
        self.mini_batch_size = mini_batch_size
        self.threads = threads

    def _describe(self, dtype):
        """The compiled configuration, for the compile notice: "float64, relu, sigmoid + cross_entropy, adam"."""
        net = self.network
        return f"{dtype}, {net['hidden_activation']}, {net['output']} + {net['loss']}, {self.state.optimizer}"

    @property
    def parameters(self):
        """The current parameters (on the Gram route, W1 is formed first)."""
        self._form_w1()
        return self.state.parameters

    # -- route ---------------------------------------------------------------------------
    def gram_applies(self):
        """Whether the Gram route can train this configuration: full batch, gd or momentum, nothing frozen."""
        return self.mini_batch_size is None and self.opt in (K.OPT_GD, K.OPT_MOMENTUM) and self.frozen_layers == 0

    def route(self, gram, shape, epochs):
        """"gram" or "direct" for a run of ``epochs`` on ``shape`` = (m, n_0); ``gram`` is True, False or "auto".

        A run saved mid-way on the Gram route goes on there while the route still applies (``train``
        leaves it exactly otherwise).
        """
        if gram not in (True, False, "auto"):
            raise ValueError(f"gram must be True, False or 'auto', got {gram!r}")
        applies = self.gram_applies()
        if gram is True and not applies:
            raise ValueError("gram=True needs full-batch training (mini_batch_size=None), gd or momentum, no frozen layers")
        if self.state.gram is not None:
            return "gram" if applies and gram is not False else "direct"
        if self.opt == K.OPT_MOMENTUM and self.state.optimizer_state[: self.dims[0] * self.dims[1]].any():
            # The route starts W1's velocity at zero; a run that built one up on the direct route goes on there.
            if gram is True:
                raise ValueError("gram=True cannot continue a momentum run whose W1 velocity was built on the direct route")
            return "direct"
        if gram == "auto":
            m, n0 = shape
            gram = applies and 2 * m <= n0 and epochs >= GRAM_MIN_EPOCHS and m * m * 8 <= GRAM_MAX_BYTES
        return "gram" if gram else "direct"

    # -- training --------------------------------------------------------------------------
    def train(self, X, Y, epochs, *, rows=None, gram="auto", monitor=None, comm=None):
        """Train ``epochs`` epochs over the rows of (X (m, n_0), Y (m, n_L)); returns their costs.

        ``rows`` (sorted indices) trains on those rows of X only. X may instead
        be a ``fastdnn.stream.Feed`` (Y None): data on disk, trained a block at
        a time (``_streamed_epoch``); Ctrl-C then takes effect at a block's end
        and raises ``TrainingInterrupted`` with a state that resumes exactly.
        ``monitor`` looks between compiled calls (see ``Monitor``) and may stop the run.
        ``comm``: an MPI communicator of several ranks trains data-parallel (``fastdnn.distributed``):
        every rank calls ``train`` with the same data and options (a ``Feed`` of the same files: each
        rank reads the rows it trains); rank 0's state is broadcast first. A Ctrl-C on any rank raises
        ``TrainingInterrupted`` on every rank at the same point, with the same state.
        Raises DivergenceError naming the epoch if a cost, a parameter or the
        optimizer state stops being finite; the engine then holds the end of
        the last finite epoch, which the monitor has seen.
        """
        state = self.state
        if gram not in (True, False, "auto"):
            raise ValueError(f"gram must be True, False or 'auto', got {gram!r}")
        streamed = isinstance(X, Feed)
        if streamed:
            m = X.n_rows
            if state.gram is not None:
                raise ValueError("this run was saved mid-way on the Gram route, which needs its data in memory; "
                                 "continue it on data in memory")
            if gram is True:
                raise ValueError("gram=True needs the data in memory, not streamed from disk")
            saved = state.stream
            if saved is not None and ((saved.block_rows, saved.batch) != (X.block_rows, self.mini_batch_size or 0)
                                      or saved.spans[:, 1].max() > m):
                was = lambda b, k: f"blocks of {b} rows and {'batch ' + str(k) if k else 'full batch'}"  # noqa: E731
                raise ValueError(f"this run stopped mid-epoch with {was(saved.block_rows, saved.batch)}; resume it on "
                                 f"the same data with the same memory budget and batch size (now: "
                                 f"{was(X.block_rows, self.mini_batch_size or 0)})")
            route = "direct"
        else:
            if state.stream is not None:
                raise ValueError("this run stopped mid-epoch on data streamed from disk; resume it on those data")
            if rows is not None and self.mini_batch_size is None:
                # Full batch on a subset: the batch is those rows, gathered once.
                X, Y, rows = np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows]), None
            m = X.shape[0] if rows is None else rows.size
            route = "direct" if D.active(comm) and gram is not True else self.route(gram, (m, X.shape[1]), epochs)
        distributed = D.active(comm)
        if distributed:
            if route != "direct" or state.gram is not None:
                raise ValueError("distributed training takes the direct route: gram=True and runs saved mid-way on "
                                 "the Gram route train on one process")
            self._distributed_begin(comm, X, Y, rows, m, epochs)
        batch = m if self.mini_batch_size is None else min(self.mini_batch_size, m)
        if batch > V.MAX_LAYER_SIZE or int(self.dims.max()) > V.MAX_LAYER_SIZE:
            # BLAS takes 32-bit dimensions: larger ones would wrap around, not fail.
            raise ValueError(f"a batch of {batch:,} examples or a layer of {int(self.dims.max()):,} units is more than "
                             "BLAS's 32-bit dimensions allow (2**31 - 1); use minibatches (mini_batch_size)")
        step_dims = [m, *self.dims[1:]] if route == "gram" else list(self.dims)
        costs = np.zeros(epochs)
        if monitor is not None and not isinstance(monitor, Monitors):
            monitor = Monitors([monitor])
        every = monitor.every if monitor is not None else None
        paced = monitor is not None and monitor.paced
        chunk = 1
        done = 0
        interrupted = False
        # The ranks on one machine share its cores. local_ranks is a collective: every rank calls it.
        threads = rank_threads(self.threads, step_dims, batch, D.local_ranks(comm) if distributed else 1)
        with blas_threads(threads), _InterruptsAtBlockEnds(streamed or distributed) as self._stop:
            state.in_progress = True
            try:
                if state.gram is not None and route != "gram":
                    # A run saved mid-way on the Gram route, now trained otherwise: leave the route exactly.
                    self._gram_begin(X, fresh=False)
                    self._gram_end()
                if route == "gram":
                    self._gram_begin(X, fresh=state.gram is None)
                while done < epochs:
                    # Up to the next multiple of ``every``; at the engine's pace, no longer than CHUNK_SECONDS.
                    n = epochs - done
                    if every:
                        n = min(n, every - state.epoch % every)
                    if paced:
                        n = min(n, chunk)
                    if distributed:
                        n = 1  # every rank looks after every epoch and they decide together (below)
                    t0 = time.perf_counter()
                    start = state.epoch
                    try:
                        if route == "gram":
                            self._gram_epochs(Y, n, costs, done)
                        elif streamed:
                            n = self._streamed_epoch(X, batch, costs, done, comm if distributed else None)
                        elif distributed:
                            n = self._distributed_epochs(comm, X, Y, rows, m, batch, n, costs, done)
                        else:
                            n = self._direct_epochs(X, Y, rows, m, batch, n, costs, done)
                    except DivergenceError:
                        # The finite epochs of this chunk are shown before the error goes up.
                        if monitor is not None:
                            finished = state.epoch - start
                            if monitor.needs_parameters:
                                self._form_w1()
                            monitor.look(self, costs[done : done + finished], time.perf_counter() - t0, final=True)
                        raise
                    seconds = time.perf_counter() - t0
                    state.costs.extend(costs[done : done + n].tolist())
                    state.epoch += n
                    done += n
                    stop = False
                    if monitor is not None:
                        if monitor.needs_parameters:
                            self._form_w1()
                        stop = monitor.look(self, costs[done - n : done], seconds, final=done == epochs)
                        if paced:
                            chunk = max(1, int(CHUNK_SECONDS * n / max(seconds, 1e-9)))
                    if distributed:
                        # A stop that one rank's monitor asks for (a callback on rank 0 only, an early-stopping
                        # score that rounds differently on another CPU) stops every rank, never leaving the
                        # others in a collective; ranks without monitors take part too.
                        stop = D.any_rank(comm, stop)
                        if D.resync(comm, state.parameters.flat, state.optimizer_state) and not self._drifted:
                            self._drifted = True
                            warnings.warn("the ranks' parameters drifted apart (their CPUs or libraries round "
                                          "differently); rank 0's are broadcast after every epoch where they differ",
                                          RuntimeWarning, stacklevel=2)
                    if stop:
                        break
                    if self._interrupted(comm if distributed else None):
                        raise TrainingInterrupted()  # a Ctrl-C between blocks that no block end took up
                if self._interrupted(comm if distributed else None):
                    raise TrainingInterrupted()
            except TrainingInterrupted:
                interrupted = True
                raise
            finally:
                state.in_progress = interrupted  # an interrupted run's checkpoint continues it
                if self._gram is not None:
                    self._gram_end()
        return costs[:done]

    def _buffers(self, batch, n_in, n_out):
        dtype = self.state.parameters.flat.dtype
        key = (batch, n_in, n_out, dtype)
        if self._work is None or self._work[0] != key:
            A = np.empty(batch * int(self.dims[1:].sum()), dtype)
            self._work = (
                key,
                N.Workspace(
                    np.empty((batch, n_in), dtype), np.empty((batch, n_out), dtype), A, np.empty_like(A),
                    np.empty_like(self.state.parameters.flat),
                ),
            )
        return self._work[1]

    def _direct_epochs(self, X, Y, rows, m, batch, n, costs, done):
        """n epochs of ``kernels.network.train``; returns n (raises DivergenceError)."""
        state = self.state
        shuffle = self.mini_batch_size is not None
        if shuffle:
            n = min(n, max(1, PERM_BYTES // (8 * m)))
        # Gather buffers are needed only when batches are shuffled rows.
        work = self._buffers(batch, X.shape[1] if shuffle else 0, Y.shape[1] if shuffle else 0)
        rng_state = state.rng.bit_generator.state
        if shuffle:
            perms = np.stack([state.rng.permutation(m) for _ in range(n)])
            if rows is not None:
                perms = rows[perms]
        else:
            perms = None
        flat = state.parameters.flat
        saved = (flat.copy(), state.optimizer_state.copy(), state.step)
        head = (
            X, Y, flat, self.dims, *self.codes, self.frozen_layers, self.opt, self.hyper, self.lambd, state.optimizer_state
        )
        call = (*head, state.step, perms, batch, n, costs[done:], work)
        train = compiled(N.train, call, f"the training kernels for {self._describe(X.dtype)}")
        finished, step, reason = train(*call)
        costs[done : done + finished] /= m  # the kernel sums each epoch's cost over its examples
        if reason == N.STOP_PARAMETERS:
            rows_done = self._rows_before_divergence(m, batch, step - state.step - finished * -(-m // batch))
            costs[done + finished] /= rows_done
        if reason != N.STOP_NONE:
            flat[:], state.optimizer_state[:], step = saved
            if finished:
                replay = perms[:finished] if shuffle else perms
                _, step, _ = train(*head, step, replay, batch, finished, np.zeros(finished), work)
            state.step = step
            state.rng.bit_generator.state = rng_state
            for _ in range(finished if shuffle else 0):
                state.rng.permutation(m)
            self._diverged(reason, costs, done, finished)
        state.step = step
        return n

    @staticmethod
    def _rows_before_divergence(m, batch, steps):
        """Examples in the first ``steps`` batches of an epoch of m examples (the last batch may be short)."""
        return min(m, steps * batch)

    def _interrupted(self, comm):
        """Whether a Ctrl-C asks to stop here; with ``comm``, on any rank (a collective: every rank stops at
        the same block's end, or none does)."""
        return D.any_rank(comm, self._stop.is_set()) if comm is not None else self._stop.is_set()

    def _streamed_epoch(self, feed, batch, costs, done, comm=None):
        """One epoch (or the rest of an interrupted one) over ``feed``'s blocks; returns 1 (raises
        DivergenceError, leaving the engine as at the epoch's start, or as at the block it resumed from).
        With ``comm``, data-parallel: every rank reads and trains its share of each block's minibatches
        (``_distributed_blocks``)."""
        state = self.state
        flat = state.parameters.flat
        shuffle = self.mini_batch_size is not None
        # A copy of the position: it moves as blocks are trained.
        saved = (flat.copy(), state.optimizer_state.copy(), state.step, state.rng.bit_generator.state,
                 None if state.stream is None else state.stream.copy())
        if state.stream is None:
            spans = np.array(epoch_blocks(state.rng, feed.n_rows, feed.block_rows, shuffle), np.int64).reshape(-1, 2)
            grad = None if shuffle else np.zeros_like(flat)
            state.stream = StreamPosition(spans, feed.block_rows, self.mini_batch_size or 0, grad=grad)
        position = state.stream
        spans = [tuple(int(i) for i in span) for span in position.spans[position.next :]]
        try:
            if comm is not None:
                self._distributed_blocks(comm, feed, spans, position, shuffle, batch, saved, costs, done)
            else:
                work = self._buffers(batch if shuffle else min(ACCUMULATE_ROWS, batch), feed.n_features if shuffle else 0,
                                     int(self.dims[-1]) if shuffle else 0)
                self._stream_blocks(feed, spans, position, shuffle, batch, np.zeros(1), work, saved, costs, done)
        except KeyboardInterrupt as exc:
            if not isinstance(exc, TrainingInterrupted):
                # A second Ctrl-C, raised wherever Python was (perhaps between a block's update and its
                # bookkeeping): back to the epoch's start, a state that resumes exactly.
                self._restore_epoch(saved)
            raise
        self._end_streamed_epoch(feed, position, shuffle, saved, costs, done, comm)
        return 1

    def _stream_blocks(self, feed, spans, position, shuffle, batch, total, work, saved, costs, done):
        state = self.state
        flat = state.parameters.flat
        with contextlib.closing(feed.blocks(spans, positions=shuffle)) as blocks:
            for Xb, Yb, where in blocks:
                # Checked once the block is read, before it trains: a Ctrl-C while reading or training the
                # block before stops here, with the state at a block's end.
                if self._stop.is_set():
                    raise TrainingInterrupted()
                total[0] = position.total
                if shuffle:
                    n = Xb.shape[0] if where is None else where.size
                    perms = state.rng.permutation(n)
                    if where is not None:
                        perms = where[perms]  # the block's rows sit among held-out rows in the buffer
                    perms = perms.reshape(1, -1)
                    call = (Xb, Yb, flat, self.dims, *self.codes, self.frozen_layers, self.opt, self.hyper, self.lambd,
                            state.optimizer_state, state.step, perms, min(batch, n), 1, total, work)
                    train = compiled(N.train, call, f"the training kernels for {self._describe(Xb.dtype)}")
                    _, step, reason = train(*call)
                    if reason == N.STOP_PARAMETERS:
                        total[0] /= position.next * feed.block_rows + self._rows_before_divergence(
                            n, batch, step - state.step)
                    if reason != N.STOP_NONE:
                        self._restore_epoch(saved)
                        self._diverged(reason, np.concatenate([costs[:done], total]), done, 0)
                    state.step = step
                else:
                    call = (Xb, Yb, flat, self.dims, *self.codes, self.frozen_layers, min(ACCUMULATE_ROWS, Xb.shape[0]),
                            feed.n_rows, work, position.grad, True)
                    total[0] += compiled(N.accumulate, call, f"the full-batch kernels for {self._describe(Xb.dtype)}")(*call)
                position.total = float(total[0])
                position.next += 1

    def _distributed_blocks(self, comm, feed, spans, position, shuffle, batch, saved, costs, done):
        """The blocks ``spans`` of a streamed epoch across ranks: the global row order is one process's
        (``epoch_blocks``, then each block's permutation), each minibatch is split as in memory
        (``distributed.mine``), and each rank reads only the rows it trains. Full batch: each rank sums
        the gradient over its even share of every block; the ranks' sums meet at the epoch's end."""
        state = self.state
        flat = state.parameters.flat
        size, rank = comm.Get_size(), comm.Get_rank()
        if shuffle:
            # The rows a block needs are known before it is read, which is before its permutation is drawn
            # from the state's generator (the previous block trains meanwhile): a copy of the generator,
            # drawing the same permutations in the same order, picks them.
            ahead = copy.deepcopy(state.rng)
            picks = (np.sort(D.mine(ahead.permutation(b - a), batch, size, rank)) for a, b in spans)
            step = self._distributed_step(comm, -(-batch // size), feed.n_features, self.dims[-1], feed.dtype)
        else:
            picks = (np.arange(*D.share(b - a, size, rank)) for a, b in spans)
            work = self._buffers(min(ACCUMULATE_ROWS, batch), 0, 0)
        with contextlib.closing(feed.blocks(spans, positions=False, picks=picks)) as blocks:
            for (a, b), (Xb, Yb, _) in zip(spans, blocks):
                if self._interrupted(comm):
                    self._share_partial_sums(comm, position)
                    raise TrainingInterrupted()
                n = b - a
                if shuffle:
                    order = state.rng.permutation(n)
                    where = np.empty(n, np.int64)
                    where[np.sort(D.mine(order, batch, size, rank))] = np.arange(Xb.shape[0])
                    total = position.total
                    for s in range(0, n, batch):
                        k = min(batch, n - s)
                        lo, hi = D.share(k, size, rank)
                        # A Ctrl-C is taken at the block's end (above), a resumable point.
                        cost, reason, _ = step(Xb, Yb, where[order[s + lo : s + hi]], k)
                        if reason != N.STOP_NONE:
                            self._restore_epoch(saved)
                            self._diverged(reason, np.concatenate([costs[:done], [cost]]), done, 0)
                        state.step += 1
                        total += cost * k
                    position.total = total
                elif Xb.shape[0]:
                    call = (Xb, Yb, flat, self.dims, *self.codes, self.frozen_layers, min(ACCUMULATE_ROWS, Xb.shape[0]),
                            feed.n_rows, work, position.grad, True)
                    position.total += compiled(N.accumulate, call,
                                               f"the full-batch kernels for {self._describe(Xb.dtype)}")(*call)
                position.next += 1

    @staticmethod
    def _share_partial_sums(comm, position):
        """Full batch stopped mid-epoch: every rank's partial gradient and cost summed onto every rank, so
        that rank 0's saved state holds the epoch so far (``_distributed_begin`` keeps only rank 0's)."""
        if position.grad is None:
            return
        buffer = np.append(position.grad, position.total)
        D.sum_in_place(comm, buffer)
        position.grad[:], position.total = buffer[:-1], float(buffer[-1])

    def _end_streamed_epoch(self, feed, position, shuffle, saved, costs, done, comm=None):
        state = self.state
        flat = state.parameters.flat
        if comm is not None:
            self._share_partial_sums(comm, position)
        if not shuffle:
            call = (flat, position.grad, state.optimizer_state, self.dims, self.frozen_layers, self.opt, self.hyper,
                    self.lambd, position.total, feed.n_rows, state.step)
            update = compiled(N.full_batch_update, call, f"the full-batch kernels for {self._describe(flat.dtype)}")
            cost, reason = update(*call)
            if reason != N.STOP_NONE:
                self._restore_epoch(saved)
                self._diverged(reason, np.concatenate([costs[:done], [cost]]), done, 0)
            state.step += 1
            costs[done] = cost
        else:
            costs[done] = position.total / feed.n_rows
        state.stream = None

    # -- data-parallel over MPI ----------------------------------------------------------------
    def _distributed_begin(self, comm, X, Y, rows, m, epochs):
        """Refuse ranks that disagree (naming the first rank and what differs), then rank 0's parameters,
        optimizer state, step and shuffling generator on every rank."""
        state = self.state
        streamed = isinstance(X, Feed)
        # The same names on every rank, the broadest first, so that the first difference named is the cause.
        data = {
            "data source": "streamed from disk (larger than its memory budget)" if streamed else "in memory",
            "dtype": state.parameters.flat.dtype.name,
            "data shape (examples, features, outputs)": (m, X.n_features, int(self.dims[-1])) if streamed else (
                m, X.shape[1], Y.shape[1]),
            "rows per block": X.block_rows if streamed else None,
            "data (a hash of sampled rows)": X.data.fingerprint() + D.digest(
                X.index, *(() if X.rows is None else (X.rows,))) if streamed else D.digest(
                X, Y, *(() if rows is None else (rows,))),
        }
        D.agree(comm, {
            **data,
            "epochs": epochs, "layer sizes": [int(d) for d in self.dims], "activations": self.network,
            "optimizer": state.optimizer,
            "learning rate, beta1, beta2, epsilon": tuple(self.hyper), "l2": self.lambd,
            "batch size": self.mini_batch_size, "frozen layers": self.frozen_layers,
        })
        D.broadcast(comm, state.parameters.flat)
        D.broadcast(comm, state.optimizer_state)
        shared = comm.bcast((state.step, state.epoch, state.rng.bit_generator.state, state.stream), root=0)
        state.step, state.epoch, state.rng.bit_generator.state, state.stream = shared
        if state.stream is not None and state.stream.grad is not None and comm.Get_rank() != 0:
            # A full-batch epoch stopped mid-way: rank 0 holds the sums so far (``_share_partial_sums``),
            # each rank adds its share of the blocks still to come.
            state.stream.grad[:], state.stream.total = 0, 0.0

    def _distributed_step(self, comm, part, n_features, n_outputs, dtype):
        """A function step(X, Y, index, b) -> (mean cost, stop reason, interrupted): one synchronous step of a
        global minibatch of b rows, of which this rank trains rows ``index`` of X, Y (at most ``part``,
        perhaps none): their gradient and summed cost (``accumulate``), one Allreduce of both and of
        whether a Ctrl-C reached any rank, the same update on every rank (``full_batch_update``)."""
        state = self.state
        flat = state.parameters.flat
        P = flat.size
        work = self._buffers(part, 0, 0)
        Xb = np.empty((part, n_features), dtype)
        Yb = np.empty((part, n_outputs), dtype)
        # The gradient, the cost summed over the batch's rows, the count of ranks a Ctrl-C reached. Zeroed
        # once: each step's accumulate overwrites the trainable layers' part (frozen layers' stays zero).
        buffer = np.zeros(P + 2, flat.dtype)
        first_trainable = int(sum(self.dims[i + 1] * (self.dims[i] + 1) for i in range(self.frozen_layers)))
        label = self._describe(dtype)
        # The kernels looked up once: ``compiled`` types every argument (about 0.1 ms), once a step would be
        # most of a small network's distributed step.
        accumulate = compiled(N.accumulate, (Xb[:1], Yb[:1], flat, self.dims, *self.codes, self.frozen_layers, 1, 1, work,
                                             buffer[:P], False), f"the distributed gradient kernels for {label}")
        update = compiled(N.full_batch_update, (flat, buffer[:P], state.optimizer_state, self.dims, self.frozen_layers,
                                                self.opt, self.hyper, self.lambd, 0.0, 1, state.step),
                          f"the distributed update kernels for {label}")

        def step(X, Y, index, b):
            if index.size == 0:  # an empty share (a batch smaller than the ranks): contribute nothing
                buffer[first_trainable:] = 0
            else:
                xb, yb = Xb[: index.size], Yb[: index.size]
                np.take(X, index, axis=0, out=xb)
                np.take(Y, index, axis=0, out=yb)
                buffer[P] = accumulate(xb, yb, flat, self.dims, *self.codes, self.frozen_layers, index.size, b, work,
                                       buffer[:P], False)
            buffer[P + 1] = self._stop.is_set()
            D.sum_in_place(comm, buffer)
            cost, reason = update(flat, buffer[:P], state.optimizer_state, self.dims, self.frozen_layers, self.opt,
                                  self.hyper, self.lambd, float(buffer[P]), b, state.step)
            return cost, reason, buffer[P + 1] > 0

        return step

    def _distributed_epochs(self, comm, X, Y, rows, m, batch, n, costs, done):
        """n epochs, each global batch split over the ranks (``distributed.share``), one Allreduce of the
        gradient and cost a step; returns n (raises DivergenceError, leaving the epoch's start)."""
        state = self.state
        flat = state.parameters.flat
        size, rank = comm.Get_size(), comm.Get_rank()
        shuffle = self.mini_batch_size is not None
        step = self._distributed_step(comm, -(-batch // size), X.shape[1], Y.shape[1], X.dtype)
        for e in range(n):
            saved = (flat.copy(), state.optimizer_state.copy(), state.step, state.rng.bit_generator.state, None)
            order = state.rng.permutation(m) if shuffle else None
            total = 0.0
            for s in range(0, m, batch):
                b = min(batch, m - s)
                lo, hi = D.share(b, size, rank)
                index = order[s + lo : s + hi] if shuffle else np.arange(s + lo, s + hi)
                cost, reason, interrupted = step(X, Y, index if rows is None else rows[index], b)
                if interrupted:
                    # Every rank learns of a Ctrl-C at the same step: back to the epoch's start together, a
                    # state that resumes exactly (a run in memory has no resumable point within an epoch).
                    self._restore_epoch(saved)
                    raise TrainingInterrupted()
                if reason != N.STOP_NONE:
                    self._restore_epoch(saved)
                    self._diverged(reason, np.concatenate([costs[: done + e], [cost]]), done, e)
                state.step += 1
                total += cost * b
            costs[done + e] = total / m
        return n

    def _restore_epoch(self, saved):
        state = self.state
        flat, opt, step, rng, stream = saved
        state.parameters.flat[:], state.optimizer_state[:], state.step = flat, opt, step
        state.rng.bit_generator.state = rng
        state.stream = stream

    def _diverged(self, reason, costs, done, finished):
        state = self.state
        state.costs.extend(costs[done : done + finished].tolist())
        state.epoch += finished
        cause = "cost" if reason == N.STOP_COST else "parameters"
        cost = costs[done + finished]
        raise DivergenceError(
            divergence_message(cause, cost, f"epoch {state.epoch}"), state.epoch, cost, costs[: done + finished], cause
        )

    # -- the Gram route ----------------------------------------------------------------------
    def _gram_begin(self, X, fresh):
        """G = X X^T and Z1_init for this X; a fresh carry (s = 1, C = V = 0) unless one is being resumed."""
        state = self.state
        m = X.shape[0]
        n1, n0 = int(self.dims[1]), int(self.dims[0])
        if fresh:
                carry = GramCarry(np.empty((n1, n0)), np.zeros((n1, m)), np.zeros((n1, m)), np.zeros(3), None)
        else:
            carry = state.gram
            if carry.C.shape != (n1, m):
                raise ValueError(f"the saved Gram-route state is for {carry.C.shape[1]} examples, not {m}: other data")
        G = np.empty((m, m))
        Z0 = np.empty((m, n1))
        source = state.parameters.flat
        if not fresh:
            # gram_setup reads W1_init from theta's W1 block: a copy holding the saved one (which came
            # from theta's dtype, so it converts back exactly).
            source = source.copy()
            source[: n1 * n0] = carry.W1_init.reshape(-1)
        args = (X, source, self.dims, G, Z0, carry.W1_init)
        w1_sq = compiled(GR.gram_setup, args, f"the Gram-route kernels for {X.dtype}")(*args)
        norms = np.diag(G).copy()  # ||x_i||^2: tells the X the carried state was built on from another
        if fresh:
            carry.carry[:] = (1.0, 0.0, w1_sq)
            carry.norms = norms
        elif carry.norms is None or not np.allclose(norms, carry.norms, rtol=1e-10, atol=0):
            raise ValueError("the saved Gram-route state was built on other data (its examples' norms differ); "
                             "continue the run on the data it was trained on")
        state.gram = carry
        work = self._buffers(m, 0, 0)
        self._gram = (X, G, Z0, work)

    def _gram_epochs(self, Y, n, costs, done):
        state, carry = self.state, self.state.gram
        _, G, Z0, work = self._gram
        flat = state.parameters.flat
        saved = (flat.copy(), state.optimizer_state.copy(), carry.C.copy(), carry.V.copy(), carry.carry.copy())
        # The W1 velocity V only for momentum: gd passes None and compiles no momentum code for W1.
        V = carry.V if self.opt == K.OPT_MOMENTUM else None
        head = (G, Z0, Y, flat, self.dims, *self.codes, self.opt, self.hyper, self.lambd, state.optimizer_state,
                carry.carry, carry.C, V)
        call = (*head, n, costs[done:], work.A, work.dZ, work.grad)
        train_gram = compiled(GR.train_gram, call, f"the Gram-route training kernels for {self._describe(Y.dtype)}")
        finished, reason = train_gram(*call)
        self._w1_stale = True
        if reason != N.STOP_NONE:
            flat[:], state.optimizer_state[:], carry.C[:], carry.V[:], carry.carry[:] = saved
            if finished:
                train_gram(*head, finished, np.zeros(finished), work.A, work.dZ, work.grad)
            state.step += finished
            self._diverged(reason, costs, done, finished)
        state.step += n

    def _form_w1(self):
        if not self._w1_stale:
            return
        state, carry = self.state, self.state.gram
        X = self._gram[0]
        args = (X, carry.W1_init, carry.C, carry.carry[0], state.parameters.flat, self.dims)
        bad = compiled(GR.gram_weights, args, f"the Gram-route kernels for {X.dtype}")(*args)
        self._w1_stale = False
        if bad:
            raise DivergenceError(
                divergence_message("parameters", state.costs[-1], f"epoch {state.epoch - 1}") + " (W1 overflows "
                f"{state.parameters.flat.dtype})", state.epoch - 1, state.costs[-1], state.costs[:-1], "parameters",
            )

    def _gram_end(self):
        """Leave the route: W1 and momentum's W1 velocity formed, so any route can continue."""
        state, carry = self.state, self.state.gram
        try:
            self._form_w1()
            if self.opt == K.OPT_MOMENTUM:
                X = self._gram[0]
                args = (X, carry.W1_init, carry.V, carry.carry[1], state.optimizer_state, self.dims)
                if compiled(GR.gram_weights, args, f"the Gram-route kernels for {X.dtype}")(*args):
                    raise DivergenceError(
                        divergence_message("parameters", state.costs[-1], f"epoch {state.epoch - 1}") + " (the W1 "
                        "velocity overflows)", state.epoch - 1, state.costs[-1], state.costs[:-1], "parameters",
                    )
        finally:
            state.gram = None
            self._gram = None

    # -- prediction ----------------------------------------------------------------------------
    def predict_proba(self, X, rows=None, threads=None):
        """The network's outputs (m, n_L) for the rows of X (all, or ``rows``): probabilities."""
        return predict_proba_rows(
            self.parameters, self.network["hidden_activation"], self.network["output"], X, rows,
            self.threads if threads is None else threads,
        )

    def accuracy(self, X, labels, rows=None):
        """Fraction of ``rows`` of X whose most probable output is ``labels`` (class indices)."""
        return float(np.mean(predicted_index(self.predict_proba(X, rows)) == labels))


class _InterruptsAtBlockEnds:
    """While training on data streamed from disk, or across MPI ranks, in the main thread, Ctrl-C (SIGINT)
    sets this run's flag, which the engine reads at the end of each block (and of each chunk of epochs;
    across ranks, at every step, rolling back to the epoch's start) instead of raising wherever Python
    happens to be, so the state it leaves resumes exactly (``TrainingInterrupted``); across ranks, every
    rank stops at the same point. A second Ctrl-C raises at once. Elsewhere (other threads, data in memory
    on one process) the flag is never set."""

    def __init__(self, active):
        self.active = active and threading.current_thread() is threading.main_thread() and (
            signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        self.flag = threading.Event()

    def __enter__(self):
        if self.active:
            def handler(signum, frame):
                if self.flag.is_set():
                    raise KeyboardInterrupt
                self.flag.set()

            self.previous = signal.signal(signal.SIGINT, handler)
        return self.flag

    def __exit__(self, *exc):
        if self.active:
            signal.signal(signal.SIGINT, self.previous)


def predicted_index(P):
    """The most probable class of each row of outputs P (m, n_L): P > 0.5 for one sigmoid unit, else argmax."""
    return (P[:, 0] > 0.5).astype(np.int64) if P.shape[1] == 1 else np.argmax(P, axis=1)


def predict_proba_rows(parameters, hidden_activation, output, X, rows=None, threads=None, loss="cross_entropy"):
    """The outputs (m, n_L) of the network ``parameters`` on X's rows (sample-major), in compiled kernels.

    ``rows`` (indices) predicts those rows only, gathering them a block at a time. X may be a
    ``DiskDataset``: its rows are read a block at a time.
    """
    dims = np.asarray(parameters.dims, np.int64)
    codes = activation_codes(hidden_activation, output, loss)  # (hidden, output)
    weights = _weight_bounds(parameters)
    m = X.shape[0] if rows is None else rows.size
    out = np.empty((m, int(dims[-1])), parameters.flat.dtype)
    on_disk = isinstance(X, DiskDataset)
    block = m if rows is None and not on_disk else min(m, PREDICT_ROWS)
    Z = np.empty(block * int(dims[1:].sum()), parameters.flat.dtype)
    buffer = np.empty((block, X.shape[1]), parameters.flat.dtype) if on_disk else None
    with blas_threads(training_threads(threads, list(dims), block)):
        for start in range(0, m, block):
            if on_disk:
                stop = min(m, start + block)
                Xb = buffer[: X.read((start, stop) if rows is None else rows[start:stop], buffer)]
            elif rows is None:
                Xb = X
            else:
                Xb = np.ascontiguousarray(X[rows[start : start + block]])
            b = Xb.shape[0]
            Zb = Z[: b * int(dims[1:].sum())]
            args = (Xb, parameters.flat, dims, *codes, Zb, Zb, True)
            compiled(N.forward, args, f"the prediction kernels for {X.dtype}")(*args)
            offset = b * int(dims[1:-1].sum())
            out[start : start + b] = Zb[offset : offset + b * int(dims[-1])].reshape(b, int(dims[-1]))
            bad = _may_overflow(Xb, Zb, dims, weights)
            if bad.any():
                row = start + int(np.argmax(bad))
                row = row if rows is None else int(rows[row])
                raise OutputOverflowError(
                    f"on example {row} the network's activations reach beyond what {out.dtype} holds (the weights or "
                    "the example's features are too large): its probabilities would be NaN or an overflow's, so "
                    "none are given", row)
    return out


def _weight_bounds(parameters):
    """Per layer, (the largest row sum of |W_l|, the largest |b_l|), in float64."""
    L = len(parameters.dims) - 1
    return [(float(np.abs(parameters[f"W{l}"]).sum(axis=1).max()), float(np.abs(parameters[f"b{l}"]).max()))
            for l in range(1, L + 1)]


def _may_overflow(Xb, Zb, dims, weights):
    """Which rows of a predicted block may have overflowed: where max|A_{l-1}| ||W_l row||_1 + max|b_l|, which
    bounds Z_l and every partial sum of its GEMM, passes half the dtype's largest value (room for the sums'
    rounding) in some layer. Overflowed values do not show in the outputs themselves: with FMA, Inf - Inf comes
    out as -Inf, which a sigmoid turns into a plain 0, and saturating activations hide an Inf Z."""
    b = Xb.shape[0]
    limit = float(np.finfo(Zb.dtype).max) / 2
    bad = np.zeros(b, bool)
    A, offset = Xb, 0
    with np.errstate(over="ignore", invalid="ignore"):  # an Inf or NaN here is what is being looked for
        for l, (w, bias) in enumerate(weights, start=1):
            # The whole block's max |a| first (without an |A| copy): a fraction of the GEMM's time, and
            # enough for any network whose values stay far from the dtype's range.
            if not float(np.maximum(A.max(), -A.min())) * w + bias <= limit:
                peak = np.maximum(A.max(axis=1), -A.min(axis=1)).astype(np.float64)
                bad |= ~(peak * w + bias <= limit)
            if l < len(weights):
                A = Zb[offset : offset + b * int(dims[l])].reshape(b, int(dims[l]))
                offset += b * int(dims[l])
    return bad
