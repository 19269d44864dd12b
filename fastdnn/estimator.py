"""``DNNClassifier`` and the estimators' files: ``load_model``, ``load_checkpoint``, ``cross_val_score``.

Labels may be any values; ``classes_`` keeps them. Two classes train one sigmoid
unit, more train a softmax. What the classifier shares with ``DNNRegressor``
(``fastdnn/regressor.py``), the engine behind scikit-learn's conventions, is
``fastdnn.base.DNNEstimator``. The parameters, their defaults and checks are
``fastdnn.options.OPTIONS``.
"""

import warnings
from dataclasses import dataclass, field

import numpy as np

from fastdnn import io as fio
from fastdnn import validation as V
from fastdnn.base import DNNEstimator
from fastdnn.errors import DataConversionWarning, scikit_learns
from fastdnn.labels import class_targets, class_weights, k_folds, output_for, output_units, predicted_index
from fastdnn.regressor import DNNRegressor
from fastdnn.stream import Feed


class DNNClassifier(DNNEstimator):
    """An L-layer fully-connected classifier trained by compiled minibatch gradient descent.

    Parameters (``fastdnn.options.OPTIONS`` holds each one's check and help)
    ----------
    hidden_layer_sizes : the hidden layers' widths; default (100,), as scikit-learn's MLPClassifier (with
        adam's auto rate it matches MLPClassifier on digits, breast_cancer, wine and iris; the course's
        network is (20, 7, 5)).
    activation : hidden activation, one of "relu", "leaky_relu", "tanh", "sigmoid".
    loss : "cross_entropy" or "mse".
    output : output encoding: "auto" (default) one sigmoid unit for two classes, a softmax for more;
        "softmax" a softmax over two classes too; "sigmoid" one unit (two classes only).
    optimizer : "gd", "momentum" or "adam".
    learning_rate : step size; "auto" (default) picks one per optimizer (``options.AUTO_LEARNING_RATES``).
    lr_schedule : the learning rate of each epoch, one text "NAME[:P1[:P2]]" (``options.LR_SCHEDULES``):
        "constant" (default); "inverse:decay_rate:time_interval" (the course's decay); "step:every:factor";
        "exponential:gamma"; "cosine:floor:period" (period default: max_iter); "plateau:factor:patience"
        (on the validation score, improving by more than ``tol``: needs ``early_stopping`` or ``fit``'s
        ``validation_data``). Epochs count over every fit, so warm starts, partial_fit and resumed
        checkpoints go on with the schedule; one text, so GridSearchCV and sweeps take it as one value.
    batch_size : minibatch size, "auto" for min(200, n_samples), None for full batch (the course).
    max_iter : epochs (passes over the data) per ``fit``.
    l2 : L2 strength lambda (the course's ``lambd``): cost + l2/(2m) sum ||W||^2.
    keep_prob : inverted dropout (the course's ``keep_prob``): the probability of keeping each hidden unit
        while training, in (0, 1]; one number for every hidden layer or a sequence of one per hidden layer;
        1 (default) keeps every unit. Predictions never drop.
    beta : momentum's coefficient; beta1, beta2, epsilon : Adam's.
    init : weight initialisation, "deep" (default, the course's 1/sqrt(n)), "he" or "xavier".
    random_state : int seed for initialisation, shuffling and the validation split; None draws one.
    warm_start : ``fit`` continues from the current parameters and optimizer state, with the
        training hyperparameters as set now (``set_params`` between fits takes effect; a new
        optimizer starts its state afresh); a changed architecture (``hidden_layer_sizes``,
        ``activation``, ``loss``, ``output``, ``dtype``) is a ValueError.
    early_stopping : hold out ``validation_fraction`` of the data (or use ``fit``'s
        ``validation_data``), stop when its accuracy has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best parameters.
    class_weight : None, "balanced" (n_samples / (n_classes * count), scikit-learn's) or a dict of class ->
        weight (others 1): each example's weight in every cost and gradient, times ``fit``'s sample_weight.
    frozen_layers : the first k layers are not trained (for transfer learning, see ``from_pretrained``).
    dtype : "float32" or "float64"; None takes X's float dtype, else float64.
    threads : the most threads a training step uses (the step's own pool, or BLAS's), at most the usable
        cores; None: every usable core. A step takes one per 32 MFLOP of its products up to it
        (``fastdnn/threads.py``).
    memory : memory for training data given as a path (.npy, .npz, HDF5, a folder of shards): data that fit
        are read whole, larger data stream from disk through two buffers of rows within it ("1GB").
    verbose : print each epoch's cost as training goes.

    X may be an array, a pandas DataFrame or data on disk (``fit``). Attributes after fit: ``classes_``,
    ``n_features_in_``, ``feature_names_in_`` (a DataFrame's column names, when all are text), ``parameters_`` (the course's
    ``{"W1", "b1", ...}``; assigning a key writes through), ``network_`` (the architecture the
    parameters were trained as, which prediction and saving use), ``training_state_`` (the
    engine's ``TrainingState``: optimizer state, step, generator, early stopping's record; what a
    checkpoint saves), ``loss_curve_`` (one cost per epoch, all fits of a warm start),
    ``n_iter_``, ``t_`` (optimizer steps), ``validation_scores_`` and ``best_validation_score_``
    (when validated).
    """

    def __init__(
        self, hidden_layer_sizes=(100,), activation="relu", loss="cross_entropy", output="auto", optimizer="adam",
        learning_rate="auto", lr_schedule="constant", batch_size="auto", max_iter=200, l2=0.0, keep_prob=1.0, beta=0.9,
        beta1=0.9, beta2=0.999, epsilon=1e-8, init="deep", random_state=None, warm_start=False, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, class_weight=None, frozen_layers=0, dtype=None,
        threads=None, memory="1GB", verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.output = output
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.l2 = l2
        self.keep_prob = keep_prob
        self.beta = beta
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.init = init
        self.random_state = random_state
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.frozen_layers = frozen_layers
        self.dtype = dtype
        self.threads = threads
        self.memory = memory
        self.verbose = verbose

    # -- scikit-learn's estimator protocol, without depending on it ---------------------------
    task = "classification"
    _estimator_type = "classifier"  # scikit-learn < 1.6 reads this

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 asks estimators for their tags; only called when it is installed."""
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags())

    # -- the classifier's targets: its classes ------------------------------------------------
    def _check_y(self, y, m):
        self._require_y(y)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is used raveled, "
                          "shape (n_samples,)", scikit_learns(DataConversionWarning), stacklevel=4)
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] != m:
            raise ValueError(f"y must be 1-D with one label per sample ({m}), got shape {y.shape}")
        return V.check_class_labels(y)

    def _fit_targets(self, y, warm):
        """The classes of the training labels ``y``: at least two, those fitted when ``warm``."""
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y has one class ({classes.tolist()}); a classifier needs at least 2")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start: y's classes {classes.tolist()} differ from the fitted {self.classes_.tolist()}")
        return classes

    def _first_partial_targets(self, y, classes):
        classes = np.unique(y if classes is None else classes)
        if len(classes) < 2:
            raise ValueError(f"partial_fit needs at least 2 classes, got {classes.tolist()}; pass classes=")
        return classes

    def _set_targets(self, classes):
        self.classes_ = classes

    def _fitted_targets(self):
        return self.classes_

    def _restore_targets(self, record):
        self.classes_ = np.asarray(record.classes)

    def _layer(self, params, classes):
        """(output activation, loss, units) of the output layer for ``classes``."""
        K = len(classes)
        return output_for(K, params["output"]), params["loss"], output_units(K, params["output"])

    def _class_index(self, y):
        """Each label's index in ``classes_``."""
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y has labels not seen at fit: {np.unique(y[unknown])[:5].tolist()}")
        return np.searchsorted(self.classes_, y)

    def _targets(self, y, dtype):
        """Targets (m, 1) of 0/1 for two classes, one-hot (m, K) for more."""
        K = len(self.classes_)
        return class_targets(self._class_index(y), K, dtype, output_units(K, self.output))

    def _feed(self, data, y, block, rows, units):
        return Feed(data, self._class_index(y), len(self.classes_), class_targets, data.dtype, block, rows,
                    self.engine_.mini_batch_size, units=units)

    def _class_weights(self, y):
        return class_weights(self._class_index(y), self.classes_, self.class_weight)

    def _validation(self, y_val, weights=None):
        """(labels, score) of early stopping's monitor: class indices, scored by the engine's accuracy (weighted
        by ``weights``, the held-out rows')."""
        if weights is None:
            return self._class_index(y_val), None

        def accuracy(engine, X, labels, rows):
            return float(np.average(predicted_index(engine.predict_proba(X, rows)) == labels, weights=weights))

        return self._class_index(y_val), accuracy

    def _score_outputs(self, P, y, sample_weight=None):
        return float(np.average(self.classes_[predicted_index(P)] == y, weights=sample_weight))

    # -- training and prediction ----------------------------------------------------------------
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current state; ``classes`` needed on the first call
        unless y holds every class; ``sample_weight`` as ``fit``'s."""
        return self._partial_fit(X, y, classes, sample_weight)

    def warm_up(self, n_features, classes, dtype=None, comm=None, m=2):
        """Compile (or load from the disk cache) the kernels that ``fit`` with these options on ``n_features``
        features, ``classes`` and ``m`` training rows calls, and those of its predictions (``Engine.warm_up``),
        without fitting this estimator. ``dtype``: the data's (the ``dtype`` option is resolved against it as
        ``fit`` does). Returns the seconds a compile took, 0.0 when everything came from the cache. With ``comm``
        (several MPI ranks) it is a collective: every rank calls it."""
        return self._warm_up(n_features, classes, dtype, comm, m)

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order. X may be a path to data
        on disk (as ``fit`` takes it), read a block at a time."""
        self._state()
        P = self._outputs_rows(self._inputs(X))
        if P.shape[1] == 1:
            return np.hstack([1 - P, P])
        return P

    def predict(self, X):
        """The most probable class of each sample (X an array, a DataFrame, or a path to data on disk)."""
        self._state()
        return self.classes_[predicted_index(self._outputs_rows(self._inputs(X)))]


@dataclass
class Checkpoint:
    """A restored training state: the estimator, ready to continue with ``fit`` (warm_start) or to predict,
    and the caller's ``run`` dict and ``arrays`` as saved."""

    estimator: DNNEstimator
    run: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


ESTIMATORS = {"classification": DNNClassifier, "regression": DNNRegressor}


def load_model(path):
    """The DNNClassifier or DNNRegressor saved at ``path``, whichever the file holds (``DNNClassifier.load``,
    ``DNNRegressor.load``)."""
    record = fio.read_model(path)
    return ESTIMATORS[record.task](**record.options).restore(record)


def load_checkpoint(path):
    """A ``Checkpoint``: the estimator (a classifier or a regressor, as saved) with its optimizer state, step and
    shuffling Generator restored, so that ``fit`` with ``warm_start=True`` continues exactly where the saved run
    was."""
    record = fio.read_checkpoint(path)
    return Checkpoint(ESTIMATORS[record.task](**record.options).restore(record), record.run, record.arrays)


def cross_val_score(estimator, X, y, k=10, random_state=0):
    """The score on each of k folds (a classifier's accuracy, a regressor's R^2; the course suggests k = 10, or
    3), training a fresh clone per fold.

    Folds are a seeded shuffle of the samples split into k near-equal parts;
    returns an array of k scores.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    scores = []
    for train, test in k_folds(len(y), k, random_state):
        clone = type(estimator)(**estimator.get_params())
        scores.append(clone.fit(X[train], y[train]).score(X[test], y[test]))
    return np.array(scores)
