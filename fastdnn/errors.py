"""The errors fastdnn raises of its own, each with the one wording every entry point shows."""


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
