"""The data of a ``fastdnn train`` run: the training data (a file, or the built-in dataset) in the run's
dtype, the --test data, the rows held out for validation and the classes (or, with --task regression, the
continuous targets), checked before any training, and the spec of the run state that finds them again on
--resume."""

import os
from dataclasses import dataclass

import numpy as np

from fastdnn import validation as V
from fastdnn.cli.common import CLIError, check_label_kinds, load_data, say
from fastdnn.cli.run_state import DataSpec
from fastdnn.data import builtin_dataset, fingerprint
from fastdnn.datasets import DEFAULT_FEATURES, DEFAULT_SAMPLES
from fastdnn.labels import split_rows
from fastdnn.stream import DiskDataset


@dataclass
class Examples:
    """The data as a run trains and scores them."""

    data: object  # the training Dataset or DiskDataset as loaded
    X: object  # its features in the run's dtype: an array, or the DiskDataset
    dtype: np.dtype
    test: object  # the --test Dataset or DiskDataset, or None
    train_rows: np.ndarray | None  # None: all of them
    held_rows: np.ndarray | None  # held out for validation, or None
    classes: np.ndarray | None  # of the training rows; None for a regression's targets
    spec: DataSpec  # finds them again on --resume
    weights: np.ndarray | None = None  # --weights: each example's sample weight, or None

    @property
    def targets(self):
        """What the estimator's output layer is for: the classes, or a regression's number of targets (one: a
        file's labels are one value per example)."""
        return 1 if self.classes is None else self.classes

    @property
    def metric(self):
        """The score the run prints: a classifier's accuracy, a regressor's R^2 (``score``'s)."""
        return "R^2" if self.classes is None else "accuracy"

    @property
    def streamed(self):
        return isinstance(self.X, DiskDataset)

    @property
    def labels(self):
        """The labels ``fit`` and ``score`` are given: a DiskDataset holds its own."""
        return None if self.streamed else self.data.y

    @property
    def m_train(self):
        return self.X.shape[0] if self.train_rows is None else self.train_rows.size

    def accuracies(self, est):
        """``est``'s score (``metric``) on the training rows, the held-out rows and --test, as the command prints
        them."""
        scores = [f"train {self.metric} {est.score(self.X, self.labels, rows=self.train_rows):.4f}"]
        if self.held_rows is not None:
            scores.append(f"validation {self.metric} {est.score(self.X, self.labels, rows=self.held_rows):.4f}")
        if self.test is not None:
            streamed = isinstance(self.test, DiskDataset)
            test_X = self.test if streamed else np.asarray(self.test.X, self.dtype)
            scores.append(f"test {self.metric} {est.score(test_X, None if streamed else self.test.y):.4f}")
        return scores


def load_examples(args, params, memory, saved, fingerprinted, task="classification"):
    """The training data in the run's dtype (``params``' dtype, else theirs), the --test data, the rows held out
    and the classes (``task`` "regression": continuous targets, no classes), each refused in one line naming the
    data when unfit. ``saved``: the resumed run's state (or None), whose data and split they must be;
    ``fingerprinted``: whether the run state needs their fingerprint (checkpoints are written, or read)."""
    from fastdnn.pipeline import resolve_dtype  # with the compiled kernels: loaded by a run, not by every command

    data, spec = _training_data(args, saved, params["dtype"], memory)
    if isinstance(data, DiskDataset):
        X, dtype = data, data.dtype
    else:
        dtype = np.dtype(resolve_dtype(params["dtype"], data.X))
        # Converted once here, so the estimator never copies it again.
        X = np.ascontiguousarray(data.X, dtype=dtype)
    test = _test_data(args, data, memory, dtype)
    # A held-out validation set: early stopping's, and for reporting when there is no --test. A resumed
    # run holds out as its first part did.
    spec.validation = saved.data.validation if saved else (test is None or params["early_stopping"])
    train_rows, held_rows = _held_out(data, X.shape[0], spec.validation, params)
    classes = _classes(data, train_rows) if task == "classification" else _regression_targets(data, test)
    if fingerprinted:
        spec.fingerprint = X.fingerprint() if isinstance(X, DiskDataset) else fingerprint(X, data.y)
    spec.weights = os.path.abspath(args.weights) if args.weights else (saved.data.weights if saved else None)
    examples = Examples(data, X, dtype, test, train_rows, held_rows, classes, spec,
                        _sample_weights(spec.weights, X.shape[0]))
    batch = params["batch_size"]
    if isinstance(batch, int) and args.batch_size is not None and batch > examples.m_train:
        raise CLIError(f"--batch-size: {batch} is more than the {examples.m_train:,} training examples")
    return examples


def _sample_weights(path, m):
    """--weights: a .npy of one finite non-negative number per training example (not all 0), or None."""
    if path is None:
        return None
    try:
        weights = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--weights {path}: cannot read it as a .npy file ({exc})") from None
    if weights.shape != (m,) or weights.dtype.kind not in "iuf":
        raise CLIError(f"--weights {path}: expected {m:,} numbers (one per example of the data), got "
                       f"{weights.dtype} of shape {weights.shape}")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not np.any(weights > 0):
        raise CLIError(f"--weights {path}: the weights must be finite and non-negative, not all 0")
    return weights


def _test_data(args, data, memory, dtype):
    """--test, loaded as the training data are, or None."""
    if not args.test:
        return None
    test = load_data(args.test, prefer="test", memory=memory, dtype=dtype, label=args.label)
    if test.n_features != data.n_features:
        raise CLIError(f"{args.test}: has {test.n_features} features but the training data has {data.n_features}")
    check_label_kinds(args.test, test.y, data.y, "the training labels are")
    return test


def _held_out(data, m, hold_out, params):
    """(training rows, held-out rows) of ``m`` examples: those early stopping holds out (split_rows), or
    (None, None) when nothing is held out."""
    if not hold_out:
        return None, None
    try:
        return split_rows(m, params["validation_fraction"], params["random_state"])
    except ValueError as exc:
        raise CLIError(f"{data.describe()}: {exc}") from None


def _classes(data, train_rows):
    """The classes of the training rows: at least two, of labels that are classes."""
    try:
        V.check_class_labels(data.y, "the labels")
    except ValueError as exc:
        hint = "; to train on continuous targets give --task regression" if "continuous" in str(exc) else ""
        raise CLIError(f"{data.describe()}: {exc}{hint}") from None
    classes = np.unique(data.y if train_rows is None else data.y[train_rows])
    if len(classes) < 2:
        raise CLIError(f"{data.describe()}: the training labels hold a single class ({classes.tolist()}); a "
                       "classifier needs two")
    return classes


def _regression_targets(data, test):
    """None (a regression has no classes) once the labels of the training data and of --test are numbers
    (continuous targets; they are not checked for being classes)."""
    for d in (data, test):
        if d is not None and d.y.dtype.kind not in "biuf":
            raise CLIError(f"{d.describe()}: --task regression needs numeric targets, but its labels are "
                           f"{'text' if d.y.dtype.kind == 'U' else d.y.dtype}")
    return None


def _training_data(args, saved, dtype, memory):
    """The training data (a Dataset in memory or a DiskDataset) and the spec that finds them again on --resume
    (``saved``: the resumed run's state)."""
    saved = saved.data if saved else DataSpec()
    path = args.data or saved.path
    if path:
        if args.samples or args.features:
            raise CLIError("--samples and --features size the built-in dataset; they do not apply with --data")
        label = args.label if args.data or saved.label is None else saved.label
        labels = args.labels if args.data else saved.labels
        say(f"loading {path}")
        data = load_data(path, prefer="train", memory=memory, dtype=dtype, label=label, labels=labels)
        return data, DataSpec(path=os.path.abspath(path), label=label,
                              labels=os.path.abspath(labels) if labels else None)
    samples = args.samples or saved.samples or DEFAULT_SAMPLES
    features = args.features or saved.features or DEFAULT_FEATURES
    say(f"generating the built-in dataset ({samples:,} examples x {features} features)")
    return builtin_dataset(samples, features), DataSpec(samples=samples, features=features)
