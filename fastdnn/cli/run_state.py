"""The run state ``fastdnn train`` keeps in a checkpoint's ``run`` entry: what --resume needs to go on with the
same data, epochs and checkpoints. Its fields, their defaults and their checks are declared once, here: the
record is written by ``to_json`` and read back, each field checked, by ``from_json``."""

import math
from dataclasses import dataclass, field, fields, replace

from fastdnn.cli.common import CLIError


def _positive(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _optional_positive(value):
    return value is None or _positive(value)


def _text(value):
    return value is None or isinstance(value, str)


def _seconds(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def _true_or_false(value):
    return value is None or isinstance(value, bool)


def _checked(check, must, default=None):
    """A field whose saved value must pass ``check`` (``must`` says what it must be, for the message)."""
    return field(default=default, metadata={"check": check, "must": must})


def _read(cls, path, saved, prefix):
    """The values of ``cls``'s fields in the JSON object ``saved`` (a missing one takes its default), each
    checked in the order declared; names it does not declare are ignored."""
    values = {}
    for f in fields(cls):
        value = saved.get(f.name, f.default)
        if not f.metadata["check"](value):
            raise CLIError(f"{path}: is corrupted: its run field {prefix}{f.name} must be {f.metadata['must']}, "
                           f"got {value!r}")
        values[f.name] = value
    return values


@dataclass
class DataSpec:
    """Where the training data are, so that --resume finds them again: a file (``path``, its CSV ``label``
    column, the ``labels`` file of .npy data) or the built-in dataset (``path`` None, its ``samples`` and
    ``features``). ``fingerprint`` tells other data (or another split of them) apart; ``validation``: whether
    the run holds rows out; ``weights``: the --weights file of sample weights, or None."""

    path: str | None = _checked(_text, "a path")
    label: str | None = _checked(_text, "a column name")
    labels: str | None = _checked(_text, "a path")
    weights: str | None = _checked(_text, "a path")
    fingerprint: str | None = _checked(_text, "a hex digest")
    samples: int | None = _checked(_optional_positive, "a positive integer")
    features: int | None = _checked(_optional_positive, "a positive integer")
    validation: bool | None = _checked(_true_or_false, "true or false")

    def to_json(self):
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, path, saved):
        return cls(**_read(cls, path, saved, "data."))


@dataclass
class RunState:
    """The command's run: the ``epochs`` it trains to, its checkpoint interval, the model path its first part
    wrote (kept for the record: a resumed run never writes where a file says), the training seconds of its
    parts so far (``elapsed``) and its data."""

    epochs: int | None = _checked(_optional_positive, "a positive integer")
    checkpoint_every: int | None = _checked(_optional_positive, "a positive integer")
    out: str | None = _checked(_text, "a path")
    elapsed: float = _checked(_seconds, "a non-negative number of seconds", 0.0)
    data: DataSpec | None = _checked(lambda value: isinstance(value, dict), "an object")

    def after(self, seconds):
        """The record ``seconds`` of training later."""
        return replace(self, elapsed=self.elapsed + seconds)

    def to_json(self):
        return {**{f.name: getattr(self, f.name) for f in fields(self)}, "data": self.data.to_json()}

    @classmethod
    def from_json(cls, path, saved):
        """The record in a checkpoint's run entry ``saved`` (parsed JSON) read from ``path``; CLIError naming the
        file and the field when one is not what the command writes."""
        if not isinstance(saved, dict) or "data" not in saved:
            raise CLIError(f"{path}: is a checkpoint without the command's run state; continue it from Python")
        values = _read(cls, path, saved, "")
        return cls(**{**values, "data": DataSpec.from_json(path, values["data"])})
