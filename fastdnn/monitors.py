"""What looks at a run between the engine's compiled calls: progress, validation, checkpoints, callbacks.

A ``Monitor`` says how often it needs to look (``every``) and whether it reads
the parameters; the engine returns to Python only that often, so a monitor that
needs only costs never makes a run take a slower route or shorter compiled calls.
"""

import numpy as np


class Monitor:
    """Something that looks at a run between compiled calls.

    ``every``: look at every multiple of this many epochs (1: after each epoch); None: at the engine's own
    pace, about every ``engine.CHUNK_SECONDS``. Every monitor also looks at the run's last epoch (the end of
    the call, a stop asked by another monitor, or the last finite epoch before a divergence).
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
