"""``DNNRegressor``: an L-layer network of continuous targets, with scikit-learn's ``MLPRegressor`` conventions.

The output layer is the identity and the cost the squared error (``kernels.layers.OUT_IDENTITY_MSE``: half the
squared error summed over the targets, averaged over the examples, whose gradient is the one MLPRegressor steps
by). Targets are y of shape (n_samples,) or (n_samples, n_targets); a column vector (n_samples, 1) is used raveled
with scikit-learn's DataConversionWarning, as MLPRegressor does, so ``predict`` returns (n_samples,) for one target
and (n_samples, n_targets) for several; ``score`` is R^2, averaged uniformly over the targets
(``fastdnn.labels.r2_score``, scikit-learn's). Everything else (options, routes, streaming, MPI, files, ONNX) is
``fastdnn.base.DNNEstimator``'s, shared with ``DNNClassifier``.
"""

import warnings

import numpy as np

from fastdnn import validation as V
from fastdnn.base import DNNEstimator
from fastdnn.errors import DataConversionWarning, scikit_learns
from fastdnn.labels import r2_score, value_targets
from fastdnn.stream import Feed


class DNNRegressor(DNNEstimator):
    """An L-layer fully-connected regressor trained by compiled minibatch gradient descent.

    Parameters are ``DNNClassifier``'s (``fastdnn.options.OPTIONS``, the rows whose ``tasks`` hold
    "regression") but ``output`` and ``loss``: the output is the identity and the loss the squared error.
    hidden_layer_sizes, activation, optimizer, learning_rate ("auto": ``options.AUTO_LEARNING_RATES``),
    lr_schedule, batch_size, max_iter, l2, beta, beta1, beta2, epsilon, init, random_state, warm_start,
    frozen_layers, dtype, threads, memory, verbose as there; early_stopping holds out
    ``validation_fraction`` (or watches ``fit``'s ``validation_data``) and stops when its R^2 has not
    improved by ``tol`` for ``n_iter_no_change`` epochs, keeping the best parameters. Scale the targets
    (and the inputs) as for MLPRegressor: the network starts near 0 and the rates suit values of order 1.

    Attributes after fit: ``n_outputs_`` (the number of targets), ``n_features_in_``, ``feature_names_in_``
    (a DataFrame's column names, when all are text), ``parameters_``, ``network_``, ``training_state_``,
    ``loss_curve_``, ``n_iter_``, ``t_``, ``validation_scores_`` and ``best_validation_score_`` (R^2, when
    validated). No ``classes_``.
    """

    def __init__(
        self, hidden_layer_sizes=(100,), activation="relu", optimizer="adam", learning_rate="auto",
        lr_schedule="constant", batch_size="auto", max_iter=200, l2=0.0, keep_prob=1.0, beta=0.9, beta1=0.9,
        beta2=0.999, epsilon=1e-8, init="deep", random_state=None, warm_start=False, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, frozen_layers=0, dtype=None,
        threads=None, memory="1GB", verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
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
        self.frozen_layers = frozen_layers
        self.dtype = dtype
        self.threads = threads
        self.memory = memory
        self.verbose = verbose

    # -- scikit-learn's estimator protocol, without depending on it ---------------------------
    task = "regression"
    _estimator_type = "regressor"  # scikit-learn < 1.6 reads this

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 asks estimators for their tags; only called when it is installed."""
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True, multi_output=True),
                    regressor_tags=RegressorTags())

    # -- the regressor's targets: real values, one or several per sample ----------------------
    def _check_y(self, y, m):
        """y as float64, (m,) or (m, k) (a column vector raveled, with scikit-learn's warning)."""
        self._require_y(y)
        y = np.asarray(y)
        if y.dtype.kind == "O":
            y = V.numbers_from_objects(y, "y")
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y must hold numbers (a regressor's targets), got dtype {y.dtype}")
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is used raveled, "
                          "shape (n_samples,)", scikit_learns(DataConversionWarning), stacklevel=4)
            y = y.ravel()
        if y.ndim not in (1, 2) or y.shape[0] != m or (y.ndim == 2 and y.shape[1] == 0):
            raise ValueError(f"y must be (n_samples,) or (n_samples, n_targets) with one row per sample ({m}), got "
                             f"shape {y.shape}")
        y = y.astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError("Input y contains NaN or infinity")
        return y

    def _fit_targets(self, y, warm):
        """The number of targets of y, the fitted one when ``warm``."""
        k = 1 if y.ndim == 1 else y.shape[1]
        if warm and k != self.n_outputs_:
            raise ValueError(f"warm_start: y has {k} target(s), the fitted network {self.n_outputs_}")
        return k

    def _first_partial_targets(self, y, classes):
        return self._fit_targets(y, False)

    def _set_targets(self, n_outputs):
        self.n_outputs_ = n_outputs

    def _fitted_targets(self):
        return self.n_outputs_

    def _restore_targets(self, record):
        self.n_outputs_ = int(record.parameters.dims[-1])

    def _layer(self, params, n_outputs):
        """(output activation, loss, units): the identity with the squared error, one unit per target."""
        return "identity", "mse", int(n_outputs)

    def _targets(self, y, dtype):
        """Targets (m, n_outputs_) of ``dtype``."""
        self._fit_targets(y, True)
        return value_targets(y, self.n_outputs_, dtype)

    def _feed(self, data, y, block, rows, units):
        return Feed(data, y.reshape(len(y), units), units, value_targets, data.dtype, block, rows,
                    self.engine_.mini_batch_size, units=units)

    def _validation(self, y_val, weights=None):
        """(targets, score) of early stopping's monitor: the targets as rows, scored by R^2 (weighted by
        ``weights``, the held-out rows')."""
        self._fit_targets(y_val, True)

        def r2(engine, X, targets, rows):
            return r2_score(targets, engine.predict_proba(X, rows), weights)

        return y_val.reshape(len(y_val), self.n_outputs_), r2

    def _score_outputs(self, outputs, y, sample_weight=None):
        self._fit_targets(y, True)
        return r2_score(y, outputs, sample_weight)

    # -- training and prediction ----------------------------------------------------------------
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current state; ``sample_weight`` as ``fit``'s."""
        return self._partial_fit(X, y, sample_weight=sample_weight)

    def warm_up(self, n_features, n_outputs=1, dtype=None, comm=None, m=2):
        """Compile (or load from the disk cache) the kernels that ``fit`` with these options on ``n_features``
        features, ``n_outputs`` targets and ``m`` training rows calls, and those of its predictions
        (``DNNClassifier.warm_up``'s, for a regressor). Returns the seconds a compile took, 0.0 when everything
        came from the cache; with ``comm`` a collective."""
        return self._warm_up(n_features, int(n_outputs), dtype, comm, m)

    def predict(self, X):
        """The predicted targets: (n_samples,) for one target, (n_samples, n_targets) for several (X an array, a
        DataFrame, or a path to data on disk)."""
        self._state()
        outputs = self._outputs_rows(self._inputs(X))
        return outputs[:, 0] if outputs.shape[1] == 1 else outputs

