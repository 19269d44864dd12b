"""The training engine: the one epoch loop behind every entry point.

``fastdnn.model``/``L_layer_model``, ``DNNClassifier.fit``/``partial_fit``,
``fastdnn train``, the sweeps and distributed runs all train through
``Engine.train``. It decides once per call, for everyone, the route
(``fastdnn.routes``: in memory, streamed from disk, across MPI ranks, or for wide
full-batch data the Gram route), the threads (the step's own pool's or BLAS's) and how many epochs each
compiled call runs. Looking at the run (progress, costs, validation,
checkpoints, callbacks) goes through monitors (``fastdnn.monitors``), which say
how often they need to look; a monitor that needs only costs never makes the
run take a slower route or shorter compiled calls than ``CHUNK_SECONDS``.

What persists from epoch to epoch is a ``TrainingState`` (``fastdnn.state``) of
plain arrays and numbers, which model files and checkpoints store and restore:
a resumed run goes on bit for bit.

The learning rate of each epoch is the engine's ``Schedule``'s (``options.LR_SCHEDULES``):
each compiled call is given one rate per epoch it trains (a float64 array), so a
schedule never shortens the calls, except plateau's, whose rate is known only
once the epoch before it was validated (one epoch a call then).

Data are the sample-major ``(m, n_0)`` X and ``(m, n_L)`` Y; a subset of X's
rows (a training split) is given as row indices, never as a copy of X, except
that full-batch training on a subset gathers it once (the batch itself).
"""

import contextlib
import copy
import logging
import math
import signal
import threading
import time
import warnings

import numpy as np

from fastdnn import distributed as D
from fastdnn import options as O
from fastdnn import routes as R
from fastdnn import validation as V
from fastdnn.errors import DivergenceError, OutputOverflowError, TrainingInterrupted
from fastdnn.kernels import compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.labels import predicted_index
from fastdnn.monitors import Monitors
from fastdnn.pipeline import activation_codes, initialize_parameters
from fastdnn.state import TrainingState
from fastdnn.stream import DiskDataset, Feed
from fastdnn.threads import blas_threads, rank_threads, split_threads, step_flops, training_threads, usable_cores

# A chunk of epochs between two looks of a monitor that needs only costs lasts about this long.
CHUNK_SECONDS = 0.25
# Predictions gather this many rows at a time.
PREDICT_ROWS = 8192


class Schedule:
    """The learning rate of every epoch: ``kind`` a name of ``options.LR_SCHEDULES`` with its ``params`` (as
    ``options.parse_lr_schedule`` gives them, checked), times the base rate lr0 (the engine's learning_rate).

    Epoch e counts from 0 over every ``train`` call of a run (``TrainingState.epoch``, so n_iter_ over every
    fit). Its rate is a function of e and the state's lr_* fields only, computed in Python's float64 one
    epoch at a time (the same operations whether a call trains one epoch or many), so a run cut into calls,
    checkpointed and resumed trains at the same rates, bit for bit. The course's ``inverse`` is its model()'s
    loop exactly: the rate is updated after each epoch's minibatches, so epoch 0 trains at lr0 and epoch
    e >= 1 at ``update_lr(lr0, e - 1, decay_rate)`` (``schedule_lr_decay(lr0, e - 1, decay_rate,
    time_interval)`` with an interval): epochs 0 and 1 both at lr0. The others start at lr0 in epoch 0.
    ``threshold``: plateau's least improvement of the validation score (the estimator's tol).
    """

    def __init__(self, kind="constant", params=None, threshold=0.0):
        self.kind, self.params, self.threshold = kind, dict(params or {}), float(threshold)
        # The rates depend on validation scores (plateau): known one epoch at a time, after a validation.
        self.by_epoch = kind in O.VALIDATED_SCHEDULES

    @classmethod
    def from_option(cls, text, threshold=0.0):
        """The schedule of an ``lr_schedule`` option's text (checked by the options table)."""
        return cls(*O.parse_lr_schedule(text), threshold=threshold)

    @classmethod
    def course(cls, decay_rate=None, time_interval=None):
        """The course's decay of ``model(..., decay_rate, time_interval)`` (``options.check_decay``): constant
        without a decay_rate, else ``inverse``."""
        decay_rate, time_interval = O.check_decay(decay_rate, time_interval)
        if decay_rate is None:
            return cls()
        return cls("inverse", {"decay_rate": decay_rate, "time_interval": time_interval})

    def describe(self):
        """The option's canonical text: "step:10:0.5"."""
        return O.lr_schedule_text(self.kind, self.params)

    def fix_period(self, state, epochs):
        """A cosine without a period of its own anneals to its floor by the end of the ``epochs`` that start
        the run: fixed in ``state`` (lr_period) the first time, so a resumed run keeps it."""
        if self.kind == "cosine" and self.params["period"] is None and state.lr_period is None:
            state.lr_period = state.epoch + int(epochs)

    def rate(self, lr0, epoch, state):
        """The rate epoch ``epoch`` trains at (plateau: the rate now, whatever the epoch)."""
        kind, p = self.kind, self.params
        if kind == "constant":
            return lr0
        if kind == "inverse":
            if epoch == 0:
                return lr0
            k = epoch - 1 if p["time_interval"] is None else (epoch - 1) // p["time_interval"]
            return 1 / (1 + p["decay_rate"] * k) * lr0  # the course's update_lr / schedule_lr_decay
        if kind == "step":
            return lr0 * p["factor"] ** (epoch // p["every"])
        if kind == "exponential":
            return lr0 * p["gamma"] ** epoch
        if kind == "cosine":
            period = p["period"] if p["period"] is not None else state.lr_period
            if period is None:
                raise ValueError(f"lr_schedule {self.describe()!r} has no period and this run fixed none: give "
                                 "one (cosine:floor:period)")
            t = min(epoch, period)
            return lr0 * (p["floor"] + (1 - p["floor"]) * (1 + math.cos(math.pi * t / period)) / 2)
        return lr0 * p["factor"] ** state.lr_drops  # plateau

    def rates(self, lr0, state, n):
        """The rates of the run's next n epochs (from ``state.epoch``), float64, as the kernels take them."""
        return np.array([self.rate(lr0, state.epoch + e, state) for e in range(n)], np.float64)

    def observe(self, state, score):
        """plateau: the epoch just trained scored ``score`` on the validation data; after ``patience`` epochs
        without a score better than the best by more than ``threshold`` the rate drops by ``factor`` (the
        count starting again). Other schedules ignore scores."""
        if not self.by_epoch:
            return
        if state.lr_best is None or score > state.lr_best + self.threshold:
            state.lr_best, state.lr_stall = float(score), 0
        else:
            state.lr_stall += 1
            if state.lr_stall >= self.params["patience"]:
                state.lr_drops += 1
                state.lr_stall = 0


class Engine:
    """One network's training: its architecture, hyperparameters, ``TrainingState`` and buffers.

    ``parameters`` is a ``Parameters`` the engine updates in place; ``state`` a
    ``TrainingState`` to continue (a checkpoint's), else a fresh one seeded with ``seed``.
    """

    def __init__(
        self, parameters, *, hidden_activation="relu", output="sigmoid", loss="cross_entropy", frozen_layers=0,
        optimizer="gd", learning_rate=0.0075, lr_schedule=None, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
        lambd=0.0, mini_batch_size=None, threads=None, seed=1, state=None, keep_prob=1.0, dropout_seed=None,
    ):
        dims = parameters.dims
        self.dims = np.asarray(dims, np.int64)
        self.network = {"hidden_activation": hidden_activation, "output": output, "loss": loss}
        self.codes = activation_codes(hidden_activation, output, loss)  # (hidden, output)
        self.frozen_layers = frozen_layers
        self.state = state if state is not None else TrainingState(parameters, seed, optimizer, dropout_seed)
        if self.state.parameters is not parameters:
            raise ValueError("state must hold the engine's parameters")
        self.stop = threading.Event()  # set by Ctrl-C while a streamed or distributed run is in progress
        self._route = None  # the route of a train call in progress
        self._work = None
        self._drifted = False  # warned once that the MPI ranks' parameters drifted apart
        self.last_rate = None  # the rate the last epoch this engine trained stepped at
        self._validated = None  # the epoch count when the validation monitor last reported (``validated``)
        self.configure(
            optimizer=optimizer, learning_rate=learning_rate, lr_schedule=lr_schedule, beta=beta, beta1=beta1,
            beta2=beta2, epsilon=epsilon, lambd=lambd, mini_batch_size=mini_batch_size, threads=threads,
            keep_prob=keep_prob,
        )

    def __getstate__(self):
        # Pickled (a DNNClassifier copied or sent to another process) without this process's run-time
        # objects: the Ctrl-C flag (a lock), the scratch buffers; no route is in progress between calls.
        state = self.__dict__.copy()
        state["stop"], state["_work"], state["_route"] = None, None, None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.stop = threading.Event()

    def configure(self, *, optimizer, learning_rate, beta, beta1, beta2, epsilon, lambd, mini_batch_size, threads,
                  lr_schedule=None, keep_prob=1.0):
        """Everything a later ``train`` may train with differently; the network itself stays.

        A change of optimizer starts its state (velocity, Adam's moments and step
        count) afresh: one optimizer's state means nothing to another. ``lr_schedule``:
        a ``Schedule`` (None: constant) over the base rate ``learning_rate``. ``keep_prob``: inverted
        dropout's probability of keeping a hidden unit, one for every hidden layer or one per hidden layer
        (``options.keep_probs``); 1 is none. The masks are keyed by the state's dropout_seed and step
        (``fastdnn.kernels.masks``), so a resumed run drops the same units.
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
        self.schedule = lr_schedule if lr_schedule is not None else Schedule()
        # The kernels take the L2 strength apart: None (no L2) compiles a version without its code.
        self.lambd = float(lambd) if lambd else None
        self.mini_batch_size = mini_batch_size
        self.threads = threads
        self.keep_prob = O.keep_probs(keep_prob, len(self.dims) - 2)  # one per hidden layer
        # None (no layer drops a unit) compiles the kernels without dropout code.
        self.dropout = self.keep_prob if any(p < 1 for p in self.keep_prob) else None

    def describe(self, dtype):
        """The compiled configuration, for the compile notice: "float64, relu, sigmoid + cross_entropy, adam"
        (", dropout" after it when a layer drops units: another compiled version)."""
        net = self.network
        return (f"{dtype}, {net['hidden_activation']}, {net['output']} + {net['loss']}, {self.state.optimizer}"
                + (", dropout" if self.dropout is not None else ""))

    @property
    def parameters(self):
        """The current parameters (on the Gram route, W1 is formed first)."""
        if self._route is not None:
            self._route.form_parameters()
        return self.state.parameters

    def buffers(self, batch, n_in, n_out):
        """The compiled calls' scratch arrays for ``batch`` rows (gather buffers of n_in and n_out columns),
        kept between calls of the same shape."""
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

    def interrupted(self, comm=None):
        """Whether a Ctrl-C asks to stop here; with ``comm``, on any rank (a collective: every rank stops at
        the same block's end, or none does)."""
        return D.any_rank(comm, self.stop.is_set()) if comm is not None else self.stop.is_set()

    # -- route ---------------------------------------------------------------------------
    def route_for(self, gram, shape, epochs):
        """"gram" or "direct" for a run of ``epochs`` on data in memory of ``shape`` = (m, n_0); ``gram`` is
        True, False or "auto" (``routes.choose``)."""
        return R.choose(self, gram, shape, epochs)

    def _plan(self, X, Y, rows, gram, epochs, comm, weights=None):
        """(the route object for this call, its batch size, its step's layer sizes for the thread policy)."""
        state = self.state
        if gram not in (True, False, "auto"):
            raise ValueError(f"gram must be True, False or 'auto', got {gram!r}")
        distributed = D.active(comm)
        if isinstance(X, Feed):
            if state.gram is not None:
                raise ValueError("this run was saved mid-way on the Gram route, which needs its data in memory; "
                                 "continue it on data in memory")
            if gram is True:
                raise ValueError("gram=True needs the data in memory, not streamed from disk")
            m, name = X.n_rows, "direct"
        else:
            if state.stream is not None:
                raise ValueError("this run stopped mid-epoch on data streamed from disk; resume it on those data")
            m = X.shape[0] if rows is None else rows.size
            name = "direct" if distributed and gram is not True else self.route_for(gram, (m, X.shape[1]), epochs)
        if distributed and (name != "direct" or state.gram is not None):
            raise ValueError("distributed training takes the direct route: gram=True and runs saved mid-way on "
                             "the Gram route train on one process")
        batch = m if self.mini_batch_size is None else min(self.mini_batch_size, m)
        if batch > V.MAX_LAYER_SIZE or int(self.dims.max()) > V.MAX_LAYER_SIZE:
            # BLAS takes 32-bit dimensions: larger ones would wrap around, not fail.
            raise ValueError(f"a batch of {batch:,} examples or a layer of {int(self.dims.max()):,} units is more than "
                             "BLAS's 32-bit dimensions allow (2**31 - 1); use minibatches (mini_batch_size)")
        if isinstance(X, Feed):
            route = R.Streamed(self, X, batch, comm if distributed else None)
        elif distributed:
            route = R.Distributed(self, comm, X, Y, rows, m, batch, weights)
        elif name == "gram":
            route = R.Gram(self, X, Y, fresh=state.gram is None, weights=weights)
        else:
            route = R.Direct(self, X, Y, rows, m, batch, weights)
        if distributed:
            R.begin_distributed(self, comm, X, Y, rows, m, epochs, weights)
        return route, batch, [m, *self.dims[1:]] if name == "gram" else list(self.dims)

    # -- training --------------------------------------------------------------------------
    def train(self, X, Y, epochs, *, rows=None, gram="auto", monitor=None, comm=None, workers=None, weights=None):
        """Train ``epochs`` epochs over the rows of (X (m, n_0), Y (m, n_L)); returns their costs.

        ``rows`` (sorted indices) trains on those rows of X only. X may instead
        be a ``fastdnn.stream.Feed`` (Y None): data on disk, trained a block at
        a time; Ctrl-C then takes effect at a block's end and raises
        ``TrainingInterrupted`` with a state that resumes exactly.
        ``monitor`` looks between compiled calls (see ``Monitor``) and may stop the run.
        ``comm``: an MPI communicator of several ranks trains data-parallel (``fastdnn.distributed``):
        every rank calls ``train`` with the same data and options (a ``Feed`` of the same files: each
        rank reads the rows it trains); rank 0's state is broadcast first. A Ctrl-C on any rank raises
        ``TrainingInterrupted`` on every rank at the same point, with the same state.
        Raises DivergenceError naming the epoch if a cost, a parameter or the
        optimizer state stops being finite; the engine then holds the end of
        the last finite epoch, which the monitor has seen.
        ``weights``: sample weights of X's rows ((m,), finite, non-negative, the trained rows' not all 0;
        data in memory only): every cost and gradient is then a weighted mean, sum w_i l_i / sum w_i over
        a batch (L2's 1/m too), so integer weights train as repeated rows would on a full batch; a batch
        whose weights are all 0 takes no step.
        ``workers`` runs a pooled route's steps on that many threads of the step's pool whatever the thread
        policy says (compiling ahead on a few rows uses it); None follows the policy (``fastdnn.threads``).
        A schedule on the validation score (plateau) needs a monitor that validates every epoch
        (``Monitor.validates``): ValueError before training otherwise.
        """
        state = self.state
        if self.schedule.by_epoch and not (monitor is not None and monitor.validates):
            raise ValueError(f"lr_schedule {self.schedule.describe()!r} lowers the rate when the validation score "
                             "stops improving, but this run has no validation data: set early_stopping=True "
                             "(fastdnn train --early-stopping) or pass fit(..., validation_data=(X_val, y_val))")
        if not isinstance(X, Feed) and rows is not None and (self.mini_batch_size or rows.size) >= rows.size:
            # Full batch on a subset: the batch is those rows, gathered once.
            X, Y = np.ascontiguousarray(X[rows]), np.ascontiguousarray(Y[rows])
            weights, rows, gathered = (None if weights is None else np.asarray(weights)[rows]), None, rows
        else:
            gathered = None
        distributed = D.active(comm)
        weights = self._checked_weights(X, rows, weights)
        if self.dropout is not None and state.dropout_seed is None:
            # A state from a file written before dropout: a seed drawn from (a copy of) its generator, which
            # the state keeps from now on (the shuffling is not disturbed).
            state.dropout_seed = int(copy.deepcopy(state.rng).integers(2**32))
        route, batch, step_dims = self._plan(X, Y, rows, gram, epochs, comm, weights)
        route.row_ids = gathered  # dropout's masks are keyed by the rows of the data, not of the gathered batch
        costs = np.zeros(epochs)
        if monitor is not None and not isinstance(monitor, Monitors):
            monitor = Monitors([monitor])
        # The ranks on one machine share its cores. local_ranks is a collective: every rank calls it.
        threads = rank_threads(self.threads, step_dims, batch, D.local_ranks(comm) if distributed else 1)
        if workers is None:
            route.workers, blas = split_threads(threads, route.pooled, step_flops(step_dims, batch)["useful"])
        else:
            route.workers, blas = split_threads(workers, route.pooled)
        interrupts = _InterruptsAtBlockEnds(isinstance(X, Feed) or distributed)
        with blas_threads(blas), interrupts as self.stop:
            state.in_progress = True
            interrupted = False
            try:
                if state.gram is not None and not isinstance(route, R.Gram):
                    # A run saved mid-way on the Gram route, now trained otherwise: leave the route exactly.
                    leaving = R.Gram(self, X, Y, fresh=False)
                    leaving.begin()
                    leaving.end()
                self._route = route
                route.begin()
                done = self._epochs(route, epochs, costs, monitor, comm if distributed else None)
            except TrainingInterrupted:
                interrupted = True
                raise
            finally:
                state.in_progress = interrupted  # an interrupted run's checkpoint continues it
                try:
                    route.end()
                finally:
                    self._route = None
        return costs[:done]

    def _epochs(self, route, epochs, costs, monitor, comm):
        """The loop over chunks of epochs, each one compiled call of ``route``, with the monitor's looks
        between them; returns the epochs trained."""
        state = self.state
        every = monitor.every if monitor is not None else None
        paced = monitor is not None and monitor.paced
        chunk = 1
        done = 0
        while done < epochs:
            # Up to the next multiple of ``every``; at the engine's pace, no longer than CHUNK_SECONDS.
            n = epochs - done
            if every:
                n = min(n, every - state.epoch % every)
            if paced:
                n = min(n, chunk)
            if route.one_epoch_a_call or comm is not None or self.schedule.by_epoch:
                # Across ranks, every rank looks after every epoch and they decide together (below); a rate
                # set by the validation score is known an epoch at a time.
                n = 1
            rates = self.schedule.rates(self.hyper.learning_rate, state, n)
            t0 = time.perf_counter()
            start = state.epoch
            try:
                n = route.epochs(n, costs, done, rates)
            except DivergenceError:
                if state.epoch > start:
                    self.last_rate = float(rates[state.epoch - start - 1])
                # The finite epochs of this chunk are shown before the error goes up.
                if monitor is not None:
                    if monitor.needs_parameters:
                        route.form_parameters()
                    monitor.look(self, costs[done : done + state.epoch - start], time.perf_counter() - t0, final=True)
                raise
            seconds = time.perf_counter() - t0
            state.costs.extend(costs[done : done + n].tolist())
            state.epoch += n
            done += n
            self.last_rate = float(rates[n - 1])
            stop = False
            if monitor is not None:
                if monitor.needs_parameters:
                    route.form_parameters()
                stop = monitor.look(self, costs[done - n : done], seconds, final=done == epochs)
                if paced:
                    chunk = max(1, int(CHUNK_SECONDS * n / max(seconds, 1e-9)))
            if self.schedule.by_epoch:
                if self._validated != state.epoch:
                    raise ValueError(f"lr_schedule {self.schedule.describe()!r} needs a validation score after "
                                     f"every epoch; none came after epoch {state.epoch - 1}")
                if comm is not None:
                    # Rank 0's decision for every rank (a score may round differently on another CPU).
                    record = comm.bcast((state.lr_drops, state.lr_best, state.lr_stall), root=0)
                    state.lr_drops, state.lr_best, state.lr_stall = record
            if comm is not None:
                # A stop that one rank's monitor asks for (a callback on rank 0 only, an early-stopping
                # score that rounds differently on another CPU) stops every rank, never leaving the
                # others in a collective; ranks without monitors take part too.
                stop = D.any_rank(comm, stop)
                if D.resync(comm, state.parameters.flat, state.optimizer_state) and not self._drifted:
                    self._drifted = True
                    warnings.warn("the ranks' parameters drifted apart (their CPUs or libraries round "
                                  "differently); rank 0's are broadcast after every epoch where they differ",
                                  RuntimeWarning, stacklevel=3)
            if stop:
                break
            if self.interrupted(comm):
                raise TrainingInterrupted()  # a Ctrl-C between blocks that no block end took up
        if self.interrupted(comm):
            raise TrainingInterrupted()
        return done

    # -- compiling ahead -------------------------------------------------------------------------
    def warm_up(self, comm=None):
        """Compile (or load from the disk cache) the kernels that training this configuration and predicting
        with it call, on a few rows of zeros through a throwaway engine of the same network and options (this
        engine's state is untouched): the direct route (on the step's pool where training may use it), the Gram
        route where it applies, and across ranks (``comm``, a collective: every rank calls it) the distributed
        step. Returns the seconds it took when something was compiled, else 0.0 (everything came from the
        cache or was in memory).

        A first compile takes seconds and is announced on the "fastdnn" logger as it starts; calling this
        before a timed run keeps that out of the timing. A divergence on zeros is ignored: compiling is done."""
        dims = [int(d) for d in self.dims]
        dtype = self.state.parameters.flat.dtype
        probe = Engine(
            initialize_parameters(dims, "he", 0, dtype), **self.network, frozen_layers=self.frozen_layers,
            optimizer=self.state.optimizer, learning_rate=self.hyper.learning_rate, beta=self.hyper.beta1,
            beta1=self.hyper.beta1, beta2=self.hyper.beta2, epsilon=self.hyper.epsilon, lambd=self.lambd or 0.0,
            mini_batch_size=None if self.mini_batch_size is None else 2, threads=1, keep_prob=self.keep_prob,
        )
        workers = 2 if self._may_pool() else None
        rows = 4
        X, Y = np.zeros((rows, dims[0]), dtype), np.zeros((rows, dims[-1]), dtype)
        routes = [False]
        if not D.active(comm) and R.gram_applies(self.mini_batch_size, self.state.optimizer, self.frozen_layers,
                                                 self.dropout is not None):
            routes.insert(0, True)  # first: the Gram route starts from no momentum, and the direct route leaves some
        compiles = _CompileWatch()
        with compiles:
            for gram in routes:
                with contextlib.suppress(DivergenceError):
                    probe.train(X, Y, 1, gram=gram, comm=comm, workers=workers)
            if workers is not None and not D.active(comm):
                # The pool may train this configuration's larger steps; its small ones (one thread by the
                # policy) run the serial loop: both compiled.
                with contextlib.suppress(DivergenceError):
                    probe.train(X, Y, 1, gram=False, workers=1)
            probe.predict_proba(X[:1])
        return compiles.seconds

    # -- the learning rate -------------------------------------------------------------------------
    def validated(self, score):
        """The validation score of the epoch just trained: a plateau schedule's input. The validating monitor
        reports it as it looks, before the monitors after it (a checkpoint written then holds the schedule's
        record after that epoch)."""
        self.schedule.observe(self.state, score)
        self._validated = self.state.epoch

    def rate_of(self, epoch):
        """The rate epoch ``epoch`` (counted from 0 over the run) trains at under the schedule (plateau: the
        rate now)."""
        return self.schedule.rate(self.hyper.learning_rate, epoch, self.state)

    def _checked_weights(self, X, rows, weights):
        """``weights`` as the kernels take them (X's dtype, contiguous), or one clear ValueError."""
        if weights is None:
            return None
        if isinstance(X, Feed):
            raise ValueError("sample weights with data streamed from disk are not supported yet: load the data "
                             "in memory (a larger memory budget), or train unweighted")
        w = np.ascontiguousarray(weights, dtype=X.dtype)
        if w.shape != (X.shape[0],):
            raise ValueError(f"sample weights must be one number per example: {X.shape[0]}, got shape {w.shape}")
        trained = w if rows is None else w[rows]
        if not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(trained > 0):
            raise ValueError("sample weights must be finite and non-negative, and not all 0")
        return w

    def _may_pool(self):
        """Whether training may run on the step's pool here: the thread policy gives a step more than one
        thread (for a full batch the number of examples decides, unknown until ``train``: then whether the
        cap allows more than one)."""
        cap = usable_cores() if self.threads is None else min(int(self.threads), usable_cores())
        if self.mini_batch_size is None:
            return cap > 1
        return training_threads(cap, list(self.dims), self.mini_batch_size) > 1

    # -- prediction ----------------------------------------------------------------------------
    def predict_proba(self, X, rows=None, threads=None):
        """The network's outputs (m, n_L) for the rows of X (all, or ``rows``): probabilities (a regression's
        values)."""
        return predict_proba_rows(
            self.parameters, self.network["hidden_activation"], self.network["output"], X, rows,
            self.threads if threads is None else threads, loss=self.network["loss"],
        )

    def accuracy(self, X, labels, rows=None):
        """Fraction of ``rows`` of X whose most probable output is ``labels`` (class indices)."""
        return float(np.mean(predicted_index(self.predict_proba(X, rows)) == labels))


class _CompileWatch(logging.Handler):
    """Inside the block, notes whether the kernels' compile notices (``kernels.compiled`` logs one as a first
    compile starts) appeared on the "fastdnn" logger; ``seconds`` is then the block's time, else 0.0."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.seen = False
        self.seconds = 0.0

    def emit(self, record):
        self.seen = True

    def __enter__(self):
        self.logger = logging.getLogger("fastdnn")
        self.logger.addHandler(self)
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.seconds = time.perf_counter() - self.start if self.seen else 0.0


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
