"""What looks at a run between the engine's compiled calls: progress, validation, checkpoints, callbacks.

A ``Monitor`` says how often it needs to look (``every``) and whether it reads
the parameters; the engine returns to Python only that often, so a monitor that
needs only costs never makes a run take a slower route or shorter compiled calls.
"""

from collections import namedtuple

import numpy as np

from fastdnn import validation as V


class Monitor:
    """Something that looks at a run between compiled calls.

    ``every``: look at every multiple of this many epochs (1: after each epoch); None: at the engine's own
    pace, about every ``engine.CHUNK_SECONDS``. Every monitor also looks at the run's last epoch (the end of
    the call, a stop asked by another monitor, or the last finite epoch before a divergence).
    ``needs_parameters``: whether ``look`` reads the parameters (on the Gram route the engine then forms W1
    first). ``validates``: whether it scores the validation data after every epoch and reports the score
    (``Engine.validated``), which a learning-rate schedule on the validation score needs.
    ``look(engine, costs, seconds)`` gets the costs of the epochs since this monitor's last look
    and the seconds they took; a true result stops the run there.
    """

    every = None
    needs_parameters = False
    validates = False

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
        self.validates = any(m.validates for m in self.monitors)
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
    """A validation score after every epoch; stops after ``patience`` epochs without an improvement over ``tol``.

    ``score(engine, X, labels, rows)`` scores the engine's network on ``rows`` of X (all of them when None)
    against ``labels`` (one per scored row), higher being better: by default ``engine.accuracy`` (``labels``
    class indices); a regressor's is its R^2 (``labels`` its targets).

    The record (best score, epoch, parameters, stall) lives in the engine's
    ``TrainingState``, so chunked fits and resumed runs behave alike;
    ``keep_best`` puts the best parameters back at the end. With
    ``patience=None`` it only records the scores. Each score goes to the
    engine as it is taken (``Engine.validated``: the plateau schedule's input),
    before the monitors after this one look.
    """

    every = 1
    needs_parameters = True
    validates = True

    def __init__(self, X, labels, rows=None, tol=1e-4, patience=10, score=None):
        self.X, self.labels, self.rows, self.tol, self.patience = X, labels, rows, tol, patience
        self.score = score if score is not None else (lambda engine, X, labels, rows: engine.accuracy(X, labels, rows))

    def look(self, engine, costs, seconds):
        state = engine.state
        score = float(self.score(engine, self.X, self.labels, self.rows))
        state.validation_scores.append(score)
        engine.validated(score)
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


# What a callback receives after an epoch: ``epoch`` counts epochs over every fit, ``costs`` are
# the epochs' costs since its last call (one, unless the callback asked for ``every`` > 1 or None),
# ``validation_score`` the epoch's validation score (accuracy; a regressor's R^2) when the fit validates, else None,
# ``learning_rate`` the rate the last of those epochs trained at (the schedule's, ``lr_schedule``).
EpochInfo = namedtuple("EpochInfo", "epoch cost costs seconds validation_score estimator learning_rate")


class PrintCosts(Monitor):
    """``verbose=True``: each epoch's cost, printed at the engine's pace; epochs count from 0 over all fits,
    as divergence messages and the course's ``print_cost`` count them."""

    def look(self, engine, costs, seconds):
        first = engine.state.epoch - len(costs)
        for i, cost in enumerate(costs):
            print(f"epoch {first + i}: cost {cost:.6f}", flush=True)  # counted from 0, as the course's print_cost


class Callback(Monitor):
    """A user's callback as a monitor (``every`` from the callback, default 1)."""

    needs_parameters = True

    def __init__(self, callback, estimator):
        if not callable(callback):
            raise ValueError(f"callbacks must be callables taking an EpochInfo, got {callback!r}")
        self.callback, self.estimator = callback, estimator
        self.every = getattr(callback, "every", 1)
        if self.every is not None:
            self.every = V.check_positive(self.every, "a callback's every", integer=True)

    def look(self, engine, costs, seconds):
        state = engine.state
        score = state.validation_scores[-1] if len(state.validation_scores) else None
        info = EpochInfo(state.epoch, float(costs[-1]), [float(c) for c in costs], seconds, score, self.estimator,
                         engine.last_rate)
        stop = self.callback(info)
        if stop is not None and not isinstance(stop, (bool, np.bool_)):
            raise ValueError(f"a callback returns True (stop), False or None, got {stop!r} from {self.callback!r}")
        return bool(stop)
