"""What a training run carries from epoch to epoch, as plain arrays and numbers.

``TrainingState`` is everything a resumed run needs to go on bit for bit;
``GramCarry`` and ``StreamPosition`` are the parts that exist only mid-way on
the Gram route or mid-epoch on data streamed from disk; ``Snapshot`` is a
resumable point a route goes back to when an epoch diverges or is interrupted.
How these become a checkpoint's entries (and how older files' entries become
them) is ``fastdnn.io``'s, in one place.
"""

import numbers

import numpy as np


class GramCarry:
    """The Gram route's state mid-run: W1 = s W1_init + C X, momentum's v_W1 = a W1_init + V X.

    ``W1_init`` (n1, n0), ``C`` and ``V`` (n1, m) float64, ``carry`` [s, a, ||W1_init||^2], ``norms``
    (m,) the examples' squared norms, which tell the X it was built on. G = X X^T and
    Z1_init = X W1_init^T are recomputed from X when a run resumes.
    """

    def __init__(self, W1_init, C, V, carry, norms):
        self.W1_init, self.C, self.V, self.carry, self.norms = W1_init, C, V, carry, norms


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
    lr_period          the learning-rate schedule's period where the run fixed it (a cosine without one of
                       its own anneals over the max_iter of the fit that started it), else None
    lr_drops, lr_best, lr_stall
                       the plateau schedule's record: the rate's drops so far (the rate is
                       learning_rate x factor^lr_drops), the best validation score and the epochs since
    The schedule's rates are a function of ``epoch`` and these, so a resumed run continues it exactly.
    dropout_seed       the seed of dropout's masks (an integer below 2^32): a unit's mask is a hash of it,
                       ``step`` + 1, the layer and the example's row (``fastdnn.kernels.masks``), so a resumed
                       run drops the same units; the run's ``seed`` when it is an integer (as the reference's
                       model(dropout_seed=None) takes it), else drawn; None in a file written before dropout
                       (the engine then draws it once from a copy of ``rng``)
    """

    # The fields that are plain numbers, text or flags (a checkpoint keeps them as one JSON object).
    SCALARS = ("optimizer", "step", "epoch", "best_score", "best_epoch", "stall", "stopped", "in_progress",
               "lr_period", "lr_drops", "lr_best", "lr_stall", "dropout_seed")

    def __init__(self, parameters, seed=None, optimizer="gd", dropout_seed=None):
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
        self.lr_period = None
        self.lr_drops = 0
        self.lr_best = None
        self.lr_stall = 0
        if dropout_seed is None:
            whole = isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and 0 <= seed < 2**32
            dropout_seed = int(seed) if whole else int(np.random.SeedSequence().generate_state(1)[0])
        self.dropout_seed = dropout_seed

    def reset_early_stopping(self):
        self.validation_scores = []
        self.best_score = self.best_epoch = self.best_parameters = None
        self.stall = 0
        self.stopped = False


class Snapshot:
    """A resumable point of a ``TrainingState`` (an epoch's or a block's start): parameters, optimizer
    state and step, the shuffling generator's state and the streamed epoch's position, copied."""

    def __init__(self, state):
        self.flat = state.parameters.flat.copy()
        self.optimizer_state = state.optimizer_state.copy()
        self.step = state.step
        self.rng = state.rng.bit_generator.state
        self.stream = None if state.stream is None else state.stream.copy()

    def restore(self, state):
        state.parameters.flat[:], state.optimizer_state[:], state.step = self.flat, self.optimizer_state, self.step
        state.rng.bit_generator.state = self.rng
        state.stream = self.stream
