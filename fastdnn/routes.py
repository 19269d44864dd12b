"""The ways ``Engine.train`` trains epochs, one class each, with one interface.

- ``Direct``: data in memory on one process; chunks of epochs in one compiled call
  (``kernels.network.train``, or on several threads ``kernels.pool.train_pool``),
  shuffling permutations drawn up front.
- ``Streamed``: data on disk (a ``stream.Feed``), an epoch a block at a time; on
  several MPI ranks each reads and trains its share of every block.
- ``Distributed``: data in memory on several MPI ranks, each global minibatch split
  over them, one Allreduce of the gradient a step.
- ``Gram``: wide full-batch data in memory (m <= n_0 / 2), the first layer carried
  in the example space (``kernels.gram``).

Every route: ``begin()`` once, ``epochs(n, costs, done, rates)`` as often as the engine
asks (it trains up to n epochs, epoch i of them at the learning rate ``rates[i]``
(float64, the schedule's), writes their costs at ``costs[done:]``, returns how
many it trained, or raises ``DivergenceError`` with the state at the end of the
last finite epoch), ``form_parameters()`` before anyone reads the parameters and
``end()`` once, also after an error. Which route a call takes is ``choose``'s rule.
These are the only callers of the training kernels besides ``pipeline.py``'s
per-stage functions; the kernels' argument tuples are built here, once each.
"""

import contextlib
import copy
import math

import numpy as np

from fastdnn import distributed as D
from fastdnn.errors import DivergenceError, TrainingInterrupted, divergence_message
from fastdnn.kernels import compiled
from fastdnn.kernels import gram as GR
from fastdnn.kernels import layers as K
from fastdnn.kernels import masks as MK
from fastdnn.kernels import network as N
from fastdnn.kernels import pool as P
from fastdnn.state import GramCarry, Snapshot, StreamPosition
from fastdnn.stream import Feed, epoch_blocks

# Permutations for a chunk of epochs are drawn up front; cap their memory.
PERM_BYTES = 64 * 2**20
# The Gram matrix G = X X^T costs m^2 n_0 once and m^2 n_1 a step against the direct route's
# 2 m n_0 n_1 a step: worth it from a few steps on when m <= n_0 / 2, within this much memory.
GRAM_MAX_BYTES = 256 * 2**20
GRAM_MAX_EXAMPLES = math.isqrt(GRAM_MAX_BYTES // 8)  # m x m float64 within GRAM_MAX_BYTES
GRAM_MIN_EPOCHS = 10
# Full-batch training over blocks streamed from disk sums the gradient this many rows at a time.
ACCUMULATE_ROWS = 1024


def gram_applies(mini_batch_size, optimizer, frozen_layers, dropout=False):
    """Whether the Gram route can train a configuration: full batch, gd or momentum, nothing frozen, no dropout
    (its kernels carry no masks: a run with dropout takes the direct route)."""
    return mini_batch_size is None and optimizer in ("gd", "momentum") and frozen_layers == 0 and not dropout


def gram_pays(shape, epochs):
    """Whether the Gram route is worth it for ``epochs`` on data of ``shape`` = (m, n_0): wide data (m at
    most half n_0), enough epochs to repay G = X X^T, and G within ``GRAM_MAX_BYTES``."""
    m, n0 = shape
    return 2 * m <= n0 and epochs >= GRAM_MIN_EPOCHS and m <= GRAM_MAX_EXAMPLES


def choose(engine, gram, shape, epochs):
    """"gram" or "direct" for a run of ``epochs`` on data in memory of ``shape`` = (m, n_0); ``gram`` is
    True, False or "auto".

    A run saved mid-way on the Gram route goes on there while the route still applies (``train``
    leaves it exactly otherwise).
    """
    if gram not in (True, False, "auto"):
        raise ValueError(f"gram must be True, False or 'auto', got {gram!r}")
    state = engine.state
    applies = gram_applies(engine.mini_batch_size, state.optimizer, engine.frozen_layers, engine.dropout is not None)
    if gram is True and not applies:
        raise ValueError("gram=True needs full-batch training (mini_batch_size=None), gd or momentum, no frozen layers "
                         "and no dropout (keep_prob 1)")
    if state.gram is not None:
        return "gram" if applies and gram is not False else "direct"
    if engine.opt == K.OPT_MOMENTUM and state.optimizer_state[: engine.dims[0] * engine.dims[1]].any():
        # The route starts W1's velocity at zero; a run that built one up on the direct route goes on there.
        if gram is True:
            raise ValueError("gram=True cannot continue a momentum run whose W1 velocity was built on the direct route")
        return "direct"
    if gram == "auto":
        gram = applies and gram_pays(shape, epochs)
    return "gram" if gram else "direct"


# ---------------------------------------------------------------------------- the kernels' arguments


def _hyper(engine, rates):
    """The kernels' ``Hyper``: the engine's betas and epsilon with ``rates``, one learning rate per epoch of the
    call (a float64 array: every route passes one, so a run compiles one version whatever its schedule)."""
    return engine.hyper._replace(learning_rate=rates)


def _train_args(engine, hyper, X, Y, step, perms, batch, n, costs, work):
    s = engine.state
    return (X, Y, s.parameters.flat, engine.dims, *engine.codes, engine.frozen_layers, engine.opt, hyper,
            engine.lambd, s.optimizer_state, step, perms, batch, n, costs, work)


def _accumulate_args(engine, X, Y, chunk, m, work, grad, add):
    return (X, Y, engine.state.parameters.flat, engine.dims, *engine.codes, engine.frozen_layers, chunk, m, work, grad,
            add)


def _update_args(engine, hyper, grad, total, m):
    s = engine.state
    return (s.parameters.flat, grad, s.optimizer_state, engine.dims, engine.frozen_layers, engine.opt, hyper,
            engine.lambd, total, m, s.step)


def _dropout(engine, rows, batch):
    """The kernels' ``network.Dropout`` for data whose rows are the training data's rows ``rows`` (X's row of
    each: in memory its own index, or the row a gathered subset or a block read from disk came from), in
    batches of up to ``batch`` rows; None without dropout (``Engine.dropout``), which compiles no dropout code."""
    keep = engine.dropout
    if keep is None:
        return None
    dtype = engine.state.parameters.flat.dtype
    return N.Dropout(np.int64(engine.state.dropout_seed), np.array([MK.threshold(p) for p in keep], np.uint64),
                     np.array([1 / p for p in keep], dtype), np.ascontiguousarray(rows, np.int64),
                     np.empty(batch, np.int64))


def _train(engine, workers, hyper, *args, weights=None, dropout=None):
    """``network.train``'s epochs at ``hyper``'s rates, on ``workers`` threads of the step's pool
    (``pool.train_pool``) when more than one; the caller has BLAS single-threaded for them then
    (``threads.split_threads``). ``weights``: a ``network.Weights``, or None; ``dropout``: a
    ``network.Dropout`` (``_dropout``), or None."""
    call = (*_train_args(engine, hyper, *args), weights)
    if workers > 1:
        return P.train_pool(*call, workers, f"the pool training kernels for {engine.describe(args[0].dtype)}",
                            dropout=dropout)
    call = (*call, dropout)
    return compiled(N.train, call, f"the training kernels for {engine.describe(args[0].dtype)}")(*call)


def _accumulate(engine, X, Y, m, work, grad, dropout=None):
    """The gradient of X's rows summed into ``grad`` (``ACCUMULATE_ROWS`` at a time); returns their summed cost.
    ``dropout``: a ``network.Dropout`` for X's rows (the masks of the state's next step), or None."""
    call = _accumulate_args(engine, X, Y, min(ACCUMULATE_ROWS, X.shape[0]), m, work, grad, True)
    if dropout is not None:
        call = (*call, None, dropout, engine.state.step)
    return compiled(N.accumulate, call, f"the full-batch kernels for {engine.describe(X.dtype)}")(*call)


def _rows_before_divergence(m, batch, steps):
    """Examples in the first ``steps`` batches of an epoch of m examples (the last batch may be short)."""
    return min(m, steps * batch)


def _batches_weighed(weights, batch):
    """The steps of an epoch whose rows weigh ``weights`` (in its row order): its batches of positive weight."""
    return sum(1 for s in range(0, weights.size, batch) if np.sum(weights[s : s + batch], dtype=np.float64) > 0)


def _weight_before_divergence(weights, batch, steps):
    """The total weight of an epoch's batches (``weights`` in its row order) up to its ``steps``-th step: the
    kernels step on every batch except those whose weights are all 0."""
    total = 0.0
    for s in range(0, weights.size, batch):
        w = float(np.sum(weights[s : s + batch], dtype=np.float64))
        if w > 0:
            total += w
            steps -= 1
            if steps == 0:
                break
    return total


def diverged(state, reason, costs, done, finished):
    """Record the ``finished`` finite epochs of a call whose next epoch diverged, and raise."""
    state.costs.extend(costs[done : done + finished].tolist())
    state.epoch += finished
    cause = "cost" if reason == N.STOP_COST else "parameters"
    cost = costs[done + finished]
    raise DivergenceError(
        divergence_message(cause, cost, f"epoch {state.epoch}"), state.epoch, cost, costs[: done + finished], cause
    )


# ---------------------------------------------------------------------------- routes


class Route:
    """The interface (see the module's docstring); a route trains ``engine``'s state."""

    one_epoch_a_call = False  # the route returns to the engine after every epoch
    pooled = False  # its steps run on the step's pool of threads (``threads.split_threads``)

    def __init__(self, engine):
        self.engine = engine
        self.state = engine.state
        self.workers = 1  # the pool's threads for this call, when pooled (set by ``Engine.train``)
        # The training data's row of each row of X, which dropout's masks are keyed by: None, X's own row
        # numbers; a gathered subset's rows (set by ``Engine.train``).
        self.row_ids = None

    def rows_of_x(self, index):
        """The training data's rows of X's rows ``index`` (int64): what dropout's masks are keyed by."""
        index = np.asarray(index, np.int64)
        return index if self.row_ids is None else np.asarray(self.row_ids, np.int64)[index]

    def begin(self):
        pass

    def epochs(self, n, costs, done, rates):
        raise NotImplementedError

    def form_parameters(self):
        pass

    def end(self):
        pass


class Direct(Route):
    """Data in memory on one process: X (m, n_0), Y (m, n_L) sample-major, ``rows`` the rows trained (None:
    all), ``batch`` rows a step. A batch of all m rows is the data in place: nothing is shuffled or gathered
    (the order of a full batch's rows changes only the rounding of its sums)."""

    pooled = True

    def __init__(self, engine, X, Y, rows, m, batch, weights=None):
        super().__init__(engine)
        self.X, self.Y, self.rows, self.m, self.batch = X, Y, rows, m, batch
        self.weights = weights  # X's rows' sample weights, or None
        if weights is not None:
            trained = weights if rows is None else weights[rows]
            self.total = float(np.sum(trained, dtype=np.float64))
            self.kernel_weights = N.Weights(weights, np.empty(batch, weights.dtype))
        else:
            self.total, self.kernel_weights = m, None

    def epochs(self, n, costs, done, rates):
        engine, state, X, Y, m, batch = self.engine, self.state, self.X, self.Y, self.m, self.batch
        weights = self.kernel_weights
        shuffle = batch < m
        if shuffle:
            n = min(n, max(1, PERM_BYTES // (8 * m)))
        hyper = _hyper(engine, rates[:n])
        # Gather buffers are needed only when batches are shuffled rows.
        work = engine.buffers(batch, X.shape[1] if shuffle else 0, Y.shape[1] if shuffle else 0)
        start = Snapshot(state)
        perms = None
        if shuffle:
            perms = np.stack([state.rng.permutation(m) for _ in range(n)])
            if self.rows is not None:
                perms = self.rows[perms]
        dropout = _dropout(engine, self.rows_of_x(np.arange(X.shape[0])), batch) if engine.dropout else None
        finished, step, reason = _train(engine, self.workers, hyper, X, Y, state.step, perms, batch, n, costs[done:],
                                        work, weights=weights, dropout=dropout)
        # The kernel sums each epoch's cost over its examples (with weights, weighted).
        costs[done : done + finished] /= self.total
        if reason == N.STOP_PARAMETERS:
            if weights is None:
                rows_done = _rows_before_divergence(m, batch, step - state.step - finished * -(-m // batch))
            else:
                orders = perms if shuffle else [np.arange(m)] * (finished + 1)  # each epoch's rows of X
                earlier = sum(_batches_weighed(self.weights[orders[e]], batch) for e in range(finished))
                rows_done = _weight_before_divergence(self.weights[orders[finished]], batch,
                                                      step - state.step - earlier)
            costs[done + finished] /= rows_done
        if reason != N.STOP_NONE:
            # Back to the chunk's start, then its finite epochs again: the state at the last finite epoch's end.
            start.restore(state)
            step = state.step
            if finished:
                replay = perms[:finished] if shuffle else perms
                _, step, _ = _train(engine, self.workers, hyper, X, Y, step, replay, batch, finished,
                                    np.zeros(finished), work, weights=weights, dropout=dropout)
            state.step = step
            for _ in range(finished if shuffle else 0):
                state.rng.permutation(m)
            diverged(state, reason, costs, done, finished)
        state.step = step
        return n


class Streamed(Route):
    """Data on disk: ``feed`` (a ``stream.Feed``), an epoch (or the rest of an interrupted one) a call, a
    block at a time. Ctrl-C is taken at a block's end (``TrainingInterrupted``), where the state resumes
    exactly. With ``comm``, data-parallel: every rank reads and trains its share of each block."""

    one_epoch_a_call = True

    @property
    def pooled(self):
        # Minibatches on one process train through network.train's contract (the pool's); a full batch
        # sums blocks' gradients (network.accumulate) and several ranks run the distributed step.
        return self.engine.mini_batch_size is not None and self.comm is None

    def __init__(self, engine, feed, batch, comm=None):
        super().__init__(engine)
        self.feed, self.batch, self.comm = feed, batch, comm
        saved, m, batch = self.state.stream, feed.n_rows, engine.mini_batch_size or 0
        if saved is not None and ((saved.block_rows, saved.batch) != (feed.block_rows, batch)
                                  or saved.spans[:, 1].max() > m):
            was = lambda b, k: f"blocks of {b} rows and {'batch ' + str(k) if k else 'full batch'}"  # noqa: E731
            raise ValueError(f"this run stopped mid-epoch with {was(saved.block_rows, saved.batch)}; resume it on "
                             f"the same data with the same memory budget and batch size (now: "
                             f"{was(feed.block_rows, batch)})")

    def epochs(self, n, costs, done, rates):
        engine, state, feed = self.engine, self.state, self.feed
        shuffle = engine.mini_batch_size is not None
        hyper = _hyper(engine, rates[:1])  # one epoch a call, resumed mid-way at its own rate
        start = Snapshot(state)  # the position is copied: it moves as blocks are trained
        if state.stream is None:
            spans = np.array(epoch_blocks(state.rng, feed.n_rows, feed.block_rows, shuffle), np.int64).reshape(-1, 2)
            grad = None if shuffle else np.zeros_like(state.parameters.flat)
            state.stream = StreamPosition(spans, feed.block_rows, engine.mini_batch_size or 0, grad=grad)
        position = state.stream
        spans = [tuple(int(i) for i in span) for span in position.spans[position.next :]]
        try:
            if self.comm is not None:
                self._distributed_blocks(spans, position, shuffle, start, costs, done, hyper)
            else:
                self._blocks(spans, position, shuffle, start, costs, done, hyper)
        except KeyboardInterrupt as exc:
            if not isinstance(exc, TrainingInterrupted):
                # A second Ctrl-C, raised wherever Python was (perhaps between a block's update and its
                # bookkeeping): back to the epoch's start, a state that resumes exactly.
                start.restore(state)
            raise
        self._end_epoch(position, shuffle, start, costs, done, hyper)
        return 1

    def data_rows(self, first, positions):
        """The rows in the data (of the file; a subset's training rows are among them) of the training rows
        ``first + positions`` (a span's rows): what dropout's masks are keyed by, so that a streamed run drops
        the units the same run in memory drops."""
        rows = first + np.asarray(positions, np.int64)
        return rows if self.feed.rows is None else np.asarray(self.feed.rows, np.int64)[rows]

    def _blocks(self, spans, position, shuffle, start, costs, done, hyper):
        engine, state, feed, batch = self.engine, self.state, self.feed, self.batch
        work = engine.buffers(batch if shuffle else min(ACCUMULATE_ROWS, batch), feed.n_features if shuffle else 0,
                              int(engine.dims[-1]) if shuffle else 0)
        total = np.zeros(1)
        with contextlib.closing(feed.blocks(spans, positions=shuffle)) as blocks:
            for (first, _), (Xb, Yb, where) in zip(spans, blocks):
                # Checked once the block is read, before it trains: a Ctrl-C while reading or training the
                # block before stops here, with the state at a block's end.
                if engine.stop.is_set():
                    raise TrainingInterrupted()
                total[0] = position.total
                if shuffle:
                    n = Xb.shape[0] if where is None else where.size
                    perms = state.rng.permutation(n)
                    if where is not None:
                        perms = where[perms]  # the block's rows sit among held-out rows in the buffer
                    dropout = None
                    if engine.dropout:
                        # The buffer's rows' rows in the data (held-out rows among them are never trained).
                        ids = np.zeros(Xb.shape[0], np.int64)
                        ids[np.arange(n) if where is None else where] = self.data_rows(first, np.arange(n))
                        dropout = _dropout(engine, ids, min(batch, n))
                    _, step, reason = _train(engine, self.workers, hyper, Xb, Yb, state.step, perms.reshape(1, -1),
                                             min(batch, n), 1, total, work, dropout=dropout)
                    if reason == N.STOP_PARAMETERS:
                        total[0] /= position.next * feed.block_rows + _rows_before_divergence(n, batch, step - state.step)
                    if reason != N.STOP_NONE:
                        start.restore(state)
                        diverged(state, reason, np.concatenate([costs[:done], total]), done, 0)
                    state.step = step
                else:
                    dropout = _dropout(engine, self.data_rows(first, np.arange(Xb.shape[0])), 1) if engine.dropout \
                        else None
                    total[0] += _accumulate(engine, Xb, Yb, feed.n_rows, work, position.grad, dropout)
                position.total = float(total[0])
                position.next += 1

    def _distributed_blocks(self, spans, position, shuffle, start, costs, done, hyper):
        """The blocks ``spans`` of a streamed epoch across ranks: the global row order is one process's
        (``epoch_blocks``, then each block's permutation), each minibatch is split as in memory
        (``distributed.mine``), and each rank reads only the rows it trains. Full batch: each rank sums
        the gradient over its even share of every block; the ranks' sums meet at the epoch's end."""
        engine, state, feed, batch, comm = self.engine, self.state, self.feed, self.batch, self.comm
        size, rank = comm.Get_size(), comm.Get_rank()
        if shuffle:
            # The rows a block needs are known before it is read, which is before its permutation is drawn
            # from the state's generator (the previous block trains meanwhile): a copy of the generator,
            # drawing the same permutations in the same order, picks them.
            ahead = copy.deepcopy(state.rng)
            picks = (np.sort(D.mine(ahead.permutation(b - a), batch, size, rank)) for a, b in spans)
            step = distributed_step(engine, comm, -(-batch // size), feed.n_features, engine.dims[-1], feed.dtype)
        else:
            picks = (np.arange(*D.share(b - a, size, rank)) for a, b in spans)
            work = engine.buffers(min(ACCUMULATE_ROWS, batch), 0, 0)
        with contextlib.closing(feed.blocks(spans, positions=False, picks=picks)) as blocks:
            for (a, b), (Xb, Yb, _) in zip(spans, blocks):
                if engine.interrupted(comm):
                    share_partial_sums(comm, position)
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
                        mine = order[s + lo : s + hi]
                        ids = self.data_rows(a, mine) if engine.dropout else None
                        cost, reason, _ = step(Xb, Yb, where[mine], k, hyper, ids=ids)
                        if reason != N.STOP_NONE:
                            start.restore(state)
                            diverged(state, reason, np.concatenate([costs[:done], [cost]]), done, 0)
                        state.step += 1
                        total += cost * k
                    position.total = total
                elif Xb.shape[0]:
                    dropout = None
                    if engine.dropout:
                        # This rank's share of the span (``picks`` above), in the data's rows.
                        dropout = _dropout(engine, self.data_rows(a, np.arange(*D.share(n, size, rank))), 1)
                    position.total += _accumulate(engine, Xb, Yb, feed.n_rows, work, position.grad, dropout)
                position.next += 1

    def _end_epoch(self, position, shuffle, start, costs, done, hyper):
        state, m = self.state, self.feed.n_rows
        if self.comm is not None:
            share_partial_sums(self.comm, position)
        if not shuffle:
            call = _update_args(self.engine, hyper, position.grad, position.total, m)
            update = compiled(N.full_batch_update, call,
                              f"the full-batch kernels for {self.engine.describe(state.parameters.flat.dtype)}")
            cost, reason = update(*call)
            if reason != N.STOP_NONE:
                start.restore(state)
                diverged(state, reason, np.concatenate([costs[:done], [cost]]), done, 0)
            state.step += 1
            costs[done] = cost
        else:
            costs[done] = position.total / m
        state.stream = None


class Distributed(Route):
    """Data in memory on several MPI ranks: each global batch split over them (``distributed.share``), one
    Allreduce of the gradient and cost a step. A Ctrl-C on any rank reaches every rank at the same step,
    which all go back to the epoch's start together (``TrainingInterrupted``)."""

    one_epoch_a_call = True

    def __init__(self, engine, comm, X, Y, rows, m, batch, weights=None):
        super().__init__(engine)
        self.comm, self.X, self.Y, self.rows, self.m, self.batch = comm, X, Y, rows, m, batch
        self.weights = weights  # X's rows' sample weights (every rank holds them all), or None

    def epochs(self, n, costs, done, rates):
        engine, state, X, Y, rows, m, batch = self.engine, self.state, self.X, self.Y, self.rows, self.m, self.batch
        size, rank = self.comm.Get_size(), self.comm.Get_rank()
        shuffle = engine.mini_batch_size is not None
        step = distributed_step(engine, self.comm, -(-batch // size), X.shape[1], Y.shape[1], X.dtype,
                                weighted=self.weights is not None)
        for e in range(n):
            start = Snapshot(state)
            hyper = _hyper(engine, rates[e : e + 1])
            order = state.rng.permutation(m) if shuffle else None
            total = 0.0
            weight = 0.0
            for s in range(0, m, batch):
                b = min(batch, m - s)
                lo, hi = D.share(b, size, rank)
                index = order[s + lo : s + hi] if shuffle else np.arange(s + lo, s + hi)
                if self.weights is None:
                    W = b
                else:
                    # The global batch's total weight: every rank holds every weight, so none is sent.
                    batch_rows = order[s : s + b] if shuffle else np.arange(s, s + b)
                    W = float(np.sum(self.weights[batch_rows if rows is None else rows[batch_rows]],
                                     dtype=np.float64))
                    if W == 0.0:
                        continue  # a batch of weight 0 takes no step, on every rank alike
                x_rows = index if rows is None else rows[index]
                cost, reason, interrupted = step(X, Y, x_rows, W, hyper, self.weights,
                                                 ids=self.rows_of_x(x_rows) if engine.dropout else None)
                if interrupted:
                    # Every rank learns of a Ctrl-C at the same step: back to the epoch's start together, a
                    # state that resumes exactly (a run in memory has no resumable point within an epoch).
                    start.restore(state)
                    raise TrainingInterrupted()
                if reason != N.STOP_NONE:
                    start.restore(state)
                    diverged(state, reason, np.concatenate([costs[: done + e], [cost]]), done, e)
                state.step += 1
                total += cost * W
                weight += W
            costs[done + e] = total / weight
        return n


def begin_distributed(engine, comm, X, Y, rows, m, epochs, weights=None):
    """Refuse ranks that disagree (naming the first rank and what differs), then rank 0's parameters,
    optimizer state, step and shuffling generator on every rank."""
    state = engine.state
    streamed = isinstance(X, Feed)
    # The same names on every rank, the broadest first, so that the first difference named is the cause.
    data = {
        "data source": "streamed from disk (larger than its memory budget)" if streamed else "in memory",
        "dtype": state.parameters.flat.dtype.name,
        "data shape (examples, features, outputs)": (m, X.n_features, int(engine.dims[-1])) if streamed else (
            m, X.shape[1], Y.shape[1]),
        "rows per block": X.block_rows if streamed else None,
        "data (a hash of sampled rows)": X.data.fingerprint() + D.digest(
            X.index, *(() if X.rows is None else (X.rows,))) if streamed else D.digest(
            X, Y, *(() if rows is None else (rows,)), *(() if weights is None else (weights,))),
    }
    D.agree(comm, {
        **data,
        "epochs": epochs, "layer sizes": [int(d) for d in engine.dims], "activations": engine.network,
        "optimizer": state.optimizer,
        "learning rate, beta1, beta2, epsilon": tuple(engine.hyper),
        "learning-rate schedule": engine.schedule.describe(), "l2": engine.lambd,
        "dropout's keep_prob": engine.keep_prob,
        "batch size": engine.mini_batch_size, "frozen layers": engine.frozen_layers,
    })
    D.broadcast(comm, state.parameters.flat)
    D.broadcast(comm, state.optimizer_state)
    # The schedule's record and dropout's seed (each rank may have drawn its own), rank 0's.
    schedule = ("lr_period", "lr_drops", "lr_best", "lr_stall", "dropout_seed")
    shared = comm.bcast((state.step, state.epoch, state.rng.bit_generator.state, state.stream,
                         [getattr(state, k) for k in schedule]), root=0)
    state.step, state.epoch, state.rng.bit_generator.state, state.stream, record = shared
    for key, value in zip(schedule, record):
        setattr(state, key, value)
    if state.stream is not None and state.stream.grad is not None and comm.Get_rank() != 0:
        # A full-batch epoch stopped mid-way: rank 0 holds the sums so far (``share_partial_sums``),
        # each rank adds its share of the blocks still to come.
        state.stream.grad[:], state.stream.total = 0, 0.0


def share_partial_sums(comm, position):
    """Full batch stopped mid-epoch: every rank's partial gradient and cost summed onto every rank, so
    that rank 0's saved state holds the epoch so far (``begin_distributed`` keeps only rank 0's)."""
    if position.grad is None:
        return
    buffer = np.append(position.grad, position.total)
    D.sum_in_place(comm, buffer)
    position.grad[:], position.total = buffer[:-1], float(buffer[-1])


def distributed_step(engine, comm, part, n_features, n_outputs, dtype, weighted=False):
    """A function step(X, Y, index, b, hyper, weights=None, ids=None) -> (mean cost, stop reason, interrupted):
    one synchronous step of a global minibatch of b rows (with ``weights``, X's rows' sample weights: b is the
    batch's total weight), of which this rank trains rows ``index`` of X, Y (at most ``part``,
    perhaps none; with dropout their masks are those of their rows in the training data, ``ids``, None
    meaning ``index``): their gradient and summed cost (``accumulate``), one Allreduce of both and of
    whether a Ctrl-C reached any rank, the same update on every rank (``full_batch_update``, at the rate that
    ``hyper``, a ``Hyper`` of the epoch's rate alone, holds)."""
    state = engine.state
    flat = state.parameters.flat
    P = flat.size
    work = engine.buffers(part, 0, 0)
    Xb = np.empty((part, n_features), dtype)
    Yb = np.empty((part, n_outputs), dtype)
    # The gradient, the cost summed over the batch's rows, the count of ranks a Ctrl-C reached. Zeroed
    # once: each step's accumulate overwrites the trainable layers' part (frozen layers' stays zero).
    buffer = np.zeros(P + 2, flat.dtype)
    first_trainable = int(sum(engine.dims[i + 1] * (engine.dims[i] + 1) for i in range(engine.frozen_layers)))
    label = engine.describe(dtype)
    # The kernels looked up once: ``compiled`` types every argument (about 0.1 ms), once a step would be
    # most of a small network's distributed step.
    # ``weighted``: the versions taking the rows' weights and a batch's total weight (a float) for its size.
    wb = np.empty(part, dtype) if weighted else None
    size = 1.0 if weighted else 1
    # (Unweighted, the arguments the streamed route passes too: one compiled version for both.)
    tail = () if wb is None else (wb[:1],)
    # With dropout, the version taking a ``network.Dropout`` of the rank's rows and the step before theirs.
    dropout = _dropout(engine, np.zeros(1, np.int64), 1) if engine.dropout else None
    if dropout is not None:
        tail = (None if wb is None else wb[:1], dropout, 0)
    accumulate = compiled(N.accumulate, (*_accumulate_args(engine, Xb[:1], Yb[:1], 1, size, work, buffer[:P], False),
                                         *tail),
                          f"the distributed gradient kernels for {label}")
    update = compiled(N.full_batch_update, _update_args(engine, _hyper(engine, np.zeros(1)), buffer[:P], 0.0, size),
                      f"the distributed update kernels for {label}")

    def step(X, Y, index, b, hyper, weights=None, ids=None):
        if index.size == 0:  # an empty share (a batch smaller than the ranks): contribute nothing
            buffer[first_trainable:] = 0
        else:
            xb, yb = Xb[: index.size], Yb[: index.size]
            np.take(X, index, axis=0, out=xb)
            np.take(Y, index, axis=0, out=yb)
            w = ()
            if weighted:
                w = (wb[: index.size],)
                np.take(weights, index, out=w[0])
            if dropout is not None:
                # The masks of these rows' rows in the training data (``ids``; None: ``index`` itself) in the
                # step about to be taken: what one process drops for them.
                rows = np.ascontiguousarray(index if ids is None else ids, np.int64)
                w = (w[0] if w else None, dropout._replace(rows=rows), state.step)
            buffer[P] = accumulate(*_accumulate_args(engine, xb, yb, index.size, b, work, buffer[:P], False), *w)
        buffer[P + 1] = engine.stop.is_set()
        D.sum_in_place(comm, buffer)
        cost, reason = update(*_update_args(engine, hyper, buffer[:P], float(buffer[P]), b))
        return cost, reason, buffer[P + 1] > 0

    return step


class Gram(Route):
    """Full batch on wide data in memory (X (m, n_0), m <= n_0 / 2): the first layer's weights carried as
    W1 = s W1_init + C X in the example space (``kernels.gram``), so a step costs m^2 n_1 instead of
    2 m n_0 n_1. ``fresh``: start a carry (s = 1, C = V = 0) rather than resume the state's."""

    def __init__(self, engine, X, Y, fresh, weights=None):
        super().__init__(engine)
        self.X, self.Y, self.fresh, self.weights = X, Y, fresh, weights
        self.G = self.Z0 = self.work = None
        self.stale = False  # W1 in the parameters lags the carry

    def begin(self):
        """G = X X^T and Z1_init for this X; a fresh carry unless one is being resumed."""
        engine, state, X = self.engine, self.state, self.X
        m = X.shape[0]
        n1, n0 = int(engine.dims[1]), int(engine.dims[0])
        if self.fresh:
            carry = GramCarry(np.empty((n1, n0)), np.zeros((n1, m)), np.zeros((n1, m)), np.zeros(3), None)
        else:
            carry = state.gram
            if carry.C.shape != (n1, m):
                raise ValueError(f"the saved Gram-route state is for {carry.C.shape[1]} examples, not {m}: other data")
        G = np.empty((m, m))
        Z0 = np.empty((m, n1))
        source = state.parameters.flat
        if not self.fresh:
            # gram_setup reads W1_init from theta's W1 block: a copy holding the saved one (which came
            # from theta's dtype, so it converts back exactly).
            source = source.copy()
            source[: n1 * n0] = carry.W1_init.reshape(-1)
        args = (X, source, engine.dims, G, Z0, carry.W1_init)
        w1_sq = compiled(GR.gram_setup, args, f"the Gram-route kernels for {X.dtype}")(*args)
        norms = np.diag(G).copy()  # ||x_i||^2: tells the X the carried state was built on from another
        if self.fresh:
            carry.carry[:] = (1.0, 0.0, w1_sq)
            carry.norms = norms
        elif carry.norms is None or not np.allclose(norms, carry.norms, rtol=1e-10, atol=0):
            raise ValueError("the saved Gram-route state was built on other data (its examples' norms differ); "
                             "continue the run on the data it was trained on")
        state.gram = carry
        self.G, self.Z0, self.work = G, Z0, engine.buffers(m, 0, 0)

    def epochs(self, n, costs, done, rates):
        engine, state, carry, work = self.engine, self.state, self.state.gram, self.work
        flat = state.parameters.flat
        saved = (flat.copy(), state.optimizer_state.copy(), carry.C.copy(), carry.V.copy(), carry.carry.copy())
        # The W1 velocity V only for momentum: gd passes None and compiles no momentum code for W1.
        V = carry.V if engine.opt == K.OPT_MOMENTUM else None
        head = (self.G, self.Z0, self.Y, flat, engine.dims, *engine.codes, engine.opt, _hyper(engine, rates[:n]),
                engine.lambd, state.optimizer_state, carry.carry, carry.C, V)
        call = (*head, n, costs[done:], work.A, work.dZ, work.grad, self.weights)
        train_gram = compiled(GR.train_gram, call,
                              f"the Gram-route training kernels for {engine.describe(self.Y.dtype)}")
        finished, reason = train_gram(*call)
        self.stale = True
        if reason != N.STOP_NONE:
            flat[:], state.optimizer_state[:], carry.C[:], carry.V[:], carry.carry[:] = saved
            if finished:
                train_gram(*head, finished, np.zeros(finished), work.A, work.dZ, work.grad, self.weights)
            state.step += finished
            diverged(state, reason, costs, done, finished)
        state.step += n
        return n

    def form_parameters(self):
        """W1 = s W1_init + C X written into the parameters (once per change of the carry)."""
        if not self.stale:
            return
        state, carry = self.state, self.state.gram
        args = (self.X, carry.W1_init, carry.C, carry.carry[0], state.parameters.flat, self.engine.dims)
        bad = compiled(GR.gram_weights, args, f"the Gram-route kernels for {self.X.dtype}")(*args)
        self.stale = False
        if bad:
            self._overflow("W1 overflows " + state.parameters.flat.dtype.name)

    def end(self):
        """Leave the route: W1 and momentum's W1 velocity formed, so any route can continue."""
        if self.G is None:
            return  # begin() did not finish: the state's carry is as it was
        state, carry = self.state, self.state.gram
        try:
            self.form_parameters()
            if self.engine.opt == K.OPT_MOMENTUM:
                args = (self.X, carry.W1_init, carry.V, carry.carry[1], state.optimizer_state, self.engine.dims)
                if compiled(GR.gram_weights, args, f"the Gram-route kernels for {self.X.dtype}")(*args):
                    self._overflow("the W1 velocity overflows")
        finally:
            state.gram = None
            self.G = self.Z0 = None

    def _overflow(self, what):
        state = self.state
        raise DivergenceError(
            divergence_message("parameters", state.costs[-1], f"epoch {state.epoch - 1}") + f" ({what})",
            state.epoch - 1, state.costs[-1], state.costs[:-1], "parameters",
        )
