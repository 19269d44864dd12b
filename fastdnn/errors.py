"""The errors (and the one warning) fastdnn raises of its own, each with the one wording every entry point
shows."""

import os
import sys


class FileProblem(ValueError):
    """A file that cannot be used as asked: ``path`` and ``problem`` say which and why, and the message is the
    one line every entry point shows, "PATH: PROBLEM"."""

    def __init__(self, path, problem):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Rebuilt from (path, problem), not from the message, when it crosses to another process (a sweep's
        # workers): the default would call __init__ with the message alone.
        return type(self), (self.path, self.problem)


class DataError(FileProblem):
    """A data file that cannot be used as it is."""


class ModelFileError(FileProblem):
    """A model or checkpoint file that cannot be read."""


class FileInUseError(FileProblem):
    """Another fastdnn run is writing the file that this one would write (``fastdnn.files.OutputLock``)."""


class MissingDependencyError(ImportError):
    """An optional dependency is needed for what was asked; the message names the extra to install."""


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (a ValueError, as scikit-learn's is)."""


class DataConversionWarning(UserWarning):
    """Input was converted (a column-vector y raveled), as scikit-learn warns."""


def scikit_learns(ours):
    """``ours`` (an exception or warning class), also scikit-learn's class of that name when the program has
    imported ``sklearn.exceptions``: code catching scikit-learn's (its estimator checks, a user's handler)
    catches fastdnn's, without fastdnn importing scikit-learn."""
    theirs = getattr(sys.modules.get("sklearn.exceptions"), ours.__name__, None)
    if theirs is None:
        return ours
    if (ours, theirs) not in _BOTH:
        _BOTH[ours, theirs] = type(ours.__name__, (ours, theirs), {"__module__": ours.__module__})
    return _BOTH[ours, theirs]


_BOTH = {}


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training on data streamed from disk (or across MPI ranks), taken at a resumable point (a
    block's end, an epoch's start): the engine's state is consistent there, so a checkpoint of it resumes
    exactly."""


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
