"""``DNNClassifier``: the fast path behind scikit-learn's conventions.

X is ``(n_samples, n_features)`` here, which is exactly the sample-major layout
the kernels use, so a C-contiguous float X is trained on without a copy. Labels
may be any values; ``classes_`` keeps them. Two classes train one sigmoid unit,
more train a softmax; the choice is automatic. scikit-learn is not needed, but
``get_params``/``set_params`` and the attribute names follow it so its tools
(``GridSearchCV``, ``cross_val_score``, pipelines) accept the estimator.
"""

import inspect
import numbers

import numpy as np

from fastdnn import _validation as V
from fastdnn.pipeline import (
    activation_codes,
    initialize_parameters,
    resolve_dtype,
    samples_as_rows,
)
from fastdnn.kernels import ensure_compiled
from fastdnn.kernels import network as N
from fastdnn.threads import blas_threads, training_threads
from fastdnn.training import DivergenceError, Trainer, use_gram


class NotFittedError(ValueError, AttributeError):
    """The estimator is used before ``fit`` (a ValueError, as scikit-learn's is)."""


class DNNClassifier:
    """An L-layer fully-connected classifier trained by compiled minibatch gradient descent.

    Parameters
    ----------
    hidden_layer_sizes : sequence of int, the hidden layers' widths (the course's [20, 7, 5]).
    activation : hidden activation, one of "relu", "leaky_relu", "tanh", "sigmoid".
    loss : "cross_entropy" or "mse".
    optimizer : "gd", "momentum" or "adam".
    learning_rate : step size.
    batch_size : minibatch size, "auto" for min(200, n_samples), None for full batch (the course).
    max_iter : epochs (passes over the data) per ``fit``.
    l2 : L2 strength lambda (the course's ``lambd``): cost + l2/(2m) sum ||W||^2.
    beta : momentum's coefficient; beta1, beta2, epsilon : Adam's.
    init : weight initialisation, "deep" (the course's 1/sqrt(n)), "he" or "xavier".
    random_state : int seed for initialisation, shuffling and the validation split; None draws one.
    warm_start : ``fit`` continues from the current parameters and optimizer state, with the
        training hyperparameters as set now (``set_params`` between fits takes effect; a new
        optimizer starts its state afresh); a changed architecture (``hidden_layer_sizes``,
        ``activation``, ``loss``, ``dtype``) is a ValueError.
    early_stopping : hold out ``validation_fraction`` of the data, stop when its accuracy has not
        improved by ``tol`` for ``n_iter_no_change`` epochs, and keep the best parameters.
    frozen_layers : the first k layers are not trained (for transfer learning, see ``from_pretrained``).
    dtype : "float32" or "float64"; None takes X's float dtype, else float64.
    threads : BLAS threads during training, at most the usable cores; None: fastdnn's policy
        (one thread for small steps, every usable core otherwise; ``fastdnn/threads.py``).
    verbose : print the cost of each epoch.

    Attributes after fit: ``classes_``, ``n_features_in_``, ``parameters_`` (the course's
    ``{"W1", "b1", ...}``; assigning a key writes through), ``network_`` (the architecture the
    parameters were trained as, which prediction and saving use), ``loss_curve_`` (one cost per epoch, all fits of a warm start),
    ``n_iter_``, ``t_`` (optimizer steps), ``validation_scores_`` and
    ``best_validation_score_`` (early stopping only).
    """

    def __init__(
        self, hidden_layer_sizes=(20, 7, 5), activation="relu", loss="cross_entropy", optimizer="adam",
        learning_rate=0.001, batch_size="auto", max_iter=200, l2=0.0, beta=0.9, beta1=0.9, beta2=0.999,
        epsilon=1e-8, init="deep", random_state=None, warm_start=False, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, frozen_layers=0, dtype=None,
        threads=None, verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.l2 = l2
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
        self.verbose = verbose

    # -- scikit-learn's estimator protocol, without depending on it ---------------------------
    _estimator_type = "classifier"  # scikit-learn < 1.6 reads this

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 asks estimators for their tags; only called when it is installed."""
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags())

    @classmethod
    def _param_names(cls):
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for DNNClassifier; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {n: p.default for n, p in inspect.signature(type(self).__init__).parameters.items()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if k in defaults and v != defaults[k]]
        return f"DNNClassifier({', '.join(changed)})"

    # -- checks ------------------------------------------------------------------------------
    def _check_X(self, X):
        """X (n_samples, n_features) as the sample-major array the kernels read (a copy only if needed)."""
        X = np.asarray(X)
        # check_X is layout-agnostic but for its messages; checking X itself, not X.T,
        # keeps the NaN/Inf scan contiguous (twice as fast on a C-ordered X).
        V.check_X(X, name="X", layout="(n_samples, n_features)")
        if hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but this classifier was fitted with {self.n_features_in_}")
        return samples_as_rows(X.T, self._dtype_for(X))

    def _dtype_for(self, X):
        if hasattr(self, "parameters_"):
            return self.parameters_.flat.dtype.type
        return resolve_dtype(self.dtype, X)

    def _check_fitted(self):
        if not hasattr(self, "parameters_"):
            raise NotFittedError("this DNNClassifier is not fitted yet; call fit (or partial_fit) first")

    def _check_params(self, m):
        """Every constructor parameter checked before it is used; returns the hidden sizes as a list.

        Each message names the parameter (scikit-learn's estimators validate at fit, as here).
        """
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = list(sizes)
        except TypeError:
            raise ValueError(f"hidden_layer_sizes must be a sequence of positive integers, got {sizes!r}") from None
        V.check_layer_sizes(sizes, "hidden_layer_sizes", allow_empty=True)
        if self.batch_size not in (None, "auto"):
            size = V.check_positive(self.batch_size, "batch_size", integer=True)
            if size > m:
                raise ValueError(f"batch_size must be between 1 and the number of training samples {m}, got {size}")
        V.check_l2(self.l2, "l2")
        V.check_positive(self.learning_rate, "learning_rate")
        V.check_positive(self.max_iter, "max_iter", integer=True)
        for name in ("beta", "beta1", "beta2"):
            V.check_fraction(getattr(self, name), name)
        V.check_positive(self.epsilon, "epsilon")
        V.check_choice(self.activation, V.HIDDEN_ACTIVATIONS, "activation")
        V.check_choice(self.loss, V.LOSSES, "loss")
        V.check_choice(self.optimizer, V.OPTIMIZERS, "optimizer")
        V.check_choice(self.init, V.INITIALIZATIONS, "init")
        for name in ("warm_start", "early_stopping", "verbose"):
            V.check_bool(getattr(self, name), name)
        V.check_open_fraction(self.validation_fraction, "validation_fraction")
        V.check_positive(self.n_iter_no_change, "n_iter_no_change", integer=True)
        V.check_non_negative(self.tol, "tol")
        if self.random_state is not None:
            V.check_seed(self.random_state, "random_state")
        if self.threads is not None:
            V.check_positive(self.threads, "threads", integer=True)
        try:
            frozen = V.operator_index(self.frozen_layers)
        except TypeError:
            raise ValueError(f"frozen_layers must be a non-negative integer, got {self.frozen_layers!r}") from None
        if not 0 <= frozen <= len(sizes):
            raise ValueError(f"frozen_layers must be in [0, {len(sizes)}] (the output layer always trains), got {frozen}")
        if self.dtype is not None:
            resolve_dtype(self.dtype)
        return sizes

    def _check_same_network(self, sizes):
        """warm_start keeps the network: a changed architecture is an error, not silently ignored."""
        now = {"hidden_layer_sizes": tuple(sizes), "activation": self.activation, "loss": self.loss}
        if self.dtype is not None:
            now["dtype"] = np.dtype(resolve_dtype(self.dtype)).name
        changed = [f"{k} {self.network_[k]!r} -> {v!r}" for k, v in now.items() if self.network_[k] != v]
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, but its architecture changed ({'; '.join(changed)}); "
                "set warm_start=False to train a new network"
            )

    def _configure_trainer(self, m):
        """Every training hyperparameter, as set now, reaches the next epochs (set_params included)."""
        batch = {None: None, "auto": min(200, m)}.get(self.batch_size, self.batch_size)
        self._trainer.set_hyperparameters(
            optimizer=self.optimizer, learning_rate=self.learning_rate, beta=self.beta, beta1=self.beta1,
            beta2=self.beta2, epsilon=self.epsilon, lambd=self.l2, mini_batch_size=batch,
            frozen_layers=self.frozen_layers, threads=self.threads,
        )

    def _encode(self, y):
        """Targets (m, 1) of 0/1 for two classes, one-hot (m, K) for more."""
        y = np.asarray(y)
        unknown = ~np.isin(y, self.classes_)
        if unknown.any():
            raise ValueError(f"y has labels not seen at fit: {np.unique(y[unknown])[:5].tolist()}")
        index = np.searchsorted(self.classes_, y)
        K = len(self.classes_)
        if K == 2:
            return index.reshape(-1, 1)
        return np.eye(K)[index]

    def _check_y(self, y, m):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] != m:
            raise ValueError(f"y must be 1-D with one label per sample ({m}), got shape {y.shape}")
        return V.check_class_labels(y)

    # -- training ----------------------------------------------------------------------------
    def _seed(self):
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31))
        return V.operator_index(self.random_state)

    def _new_trainer(self, Xs, sizes, seed, parameters=None):
        K = len(self.classes_)
        output = "sigmoid" if K == 2 else "softmax"
        dims = [Xs.shape[1]] + list(sizes) + [1 if K == 2 else K]
        L = len(dims) - 1
        if not 0 <= self.frozen_layers <= L - 1:
            raise ValueError(f"frozen_layers must be in [0, {L - 1}], got {self.frozen_layers!r}")
        if parameters is None:
            parameters = initialize_parameters(dims, self.init, seed, Xs.dtype)
        self.parameters_ = parameters
        # What the parameters were trained as: prediction, saving and warm starts use this,
        # whatever set_params changes later.
        self.network_ = {
            "hidden_layer_sizes": tuple(sizes), "activation": self.activation, "loss": self.loss,
            "output": output, "dtype": np.dtype(Xs.dtype).name,
        }
        m = Xs.shape[0]
        batch = {None: None, "auto": min(200, m)}.get(self.batch_size, self.batch_size)
        self._trainer = Trainer(
            parameters, hidden_activation=self.activation, output=output, loss=self.loss,
            optimizer=self.optimizer, learning_rate=self.learning_rate, beta=self.beta, beta1=self.beta1,
            beta2=self.beta2, epsilon=self.epsilon, lambd=self.l2, mini_batch_size=batch, seed=seed,
            frozen_layers=self.frozen_layers, threads=self.threads,
        )

    def fit(self, X, y):
        """Train for ``max_iter`` epochs (fewer with early stopping); returns self."""
        warm = self.warm_start and hasattr(self, "_trainer")
        if not warm:
            for attr in ("n_features_in_", "parameters_", "_trainer", "classes_", "best_validation_score_"):
                self.__dict__.pop(attr, None)
        Xs = self._check_X(X)
        y = self._check_y(y, Xs.shape[0])
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"y has a single class ({classes.tolist()}); a classifier needs at least 2")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start: y's classes {classes.tolist()} differ from the fitted {self.classes_.tolist()}")
        self._check_params(Xs.shape[0])
        seed = self._seed()
        Xs_train, y_train, Xs_val, y_val = Xs, y, None, None
        if self.early_stopping:
            perm = np.random.default_rng(seed).permutation(Xs.shape[0])
            n_val = max(1, int(round(self.validation_fraction * Xs.shape[0])))
            if Xs.shape[0] - n_val < 1:
                raise ValueError("early_stopping: too few samples to hold out a validation set")
            Xs_val, y_val = Xs[perm[:n_val]], y[perm[:n_val]]
            Xs_train, y_train = np.ascontiguousarray(Xs[perm[n_val:]]), y[perm[n_val:]]
        sizes = self._check_params(Xs_train.shape[0])
        if warm:
            self._check_same_network(sizes)
            self._configure_trainer(Xs_train.shape[0])
        else:
            self.classes_ = classes
            self.n_features_in_ = Xs.shape[1]
            self._new_trainer(Xs_train, sizes, seed, self._pretrained_parameters(Xs, sizes))
            self.loss_curve_ = []
            self.n_iter_ = 0
        self._run(Xs_train, self._encode(y_train).astype(Xs.dtype), self.max_iter, Xs_val, y_val)
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current state; ``classes`` needed on the first call
        unless y holds every class."""
        if not hasattr(self, "_trainer"):
            Xs = self._check_X(X)
            y = self._check_y(y, Xs.shape[0])
            self.classes_ = np.unique(y if classes is None else classes)
            if len(self.classes_) < 2:
                raise ValueError(f"partial_fit needs at least 2 classes, got {self.classes_.tolist()}; pass classes=")
            self.n_features_in_ = Xs.shape[1]
            sizes = self._check_params(Xs.shape[0])
            self._new_trainer(Xs, sizes, self._seed(), self._pretrained_parameters(Xs, sizes))
            self.loss_curve_ = []
            self.n_iter_ = 0
        else:
            Xs = self._check_X(X)
            y = self._check_y(y, Xs.shape[0])
            self._check_same_network(self._check_params(Xs.shape[0]))
            self._configure_trainer(Xs.shape[0])
        batch = self._trainer.mini_batch_size
        if batch is not None and batch > Xs.shape[0]:
            self._trainer.mini_batch_size = Xs.shape[0]
        try:
            self._run(Xs, self._encode(y).astype(Xs.dtype), 1, None, None)
        finally:
            self._trainer.mini_batch_size = batch
        return self

    def _run(self, Xs, Ys, epochs, Xs_val, y_val):
        trainer = self._trainer
        per_epoch = self.verbose or Xs_val is not None
        best, best_params, stall = -np.inf, None, 0
        self.validation_scores_ = getattr(self, "validation_scores_", []) if Xs_val is not None else None
        done = 0
        while done < epochs:
            n = 1 if per_epoch else epochs
            # The Gram route's momentum state lives for one call, so the estimator
            # (which may call again: warm start, partial_fit) takes it for plain gd only.
            gram = not per_epoch and self.optimizer == "gd" and use_gram("auto", trainer, Xs, n)
            try:
                costs = trainer.run(Xs, Ys, n, gram)
            except DivergenceError as exc:
                # The trainer holds the end of the last finite epoch; count epochs over all fits.
                self.loss_curve_.extend(exc.costs)
                epoch = self.n_iter_ + done + exc.epoch
                self.n_iter_ = epoch
                self.t_ = trainer.step
                message = str(exc).replace(f"at epoch {exc.epoch}", f"at epoch {epoch}")
                raise DivergenceError(message, epoch, exc.cost, exc.costs) from None
            self.loss_curve_.extend(costs.tolist())
            done += n
            self.n_iter_ += n
            if self.verbose:
                print(f"epoch {self.n_iter_}: cost {costs[-1]:.6f}")
            if Xs_val is not None:
                score = float(np.mean(self._predict_rows(Xs_val) == y_val))
                self.validation_scores_.append(score)
                if score > best + self.tol:
                    best, best_params, stall = score, trainer.params.flat.copy(), 0
                else:
                    stall += 1
                    if stall >= self.n_iter_no_change:
                        break
        if best_params is not None:
            trainer.params.flat[:] = best_params
            self.best_validation_score_ = best
        self.t_ = trainer.step

    # -- transfer learning -------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source, keep_layers, freeze=True, **params):
        """A new classifier whose first ``keep_layers`` layers start as ``source``'s (frozen if ``freeze``).

        The layers after them, the output layer included, are initialised
        afresh for the new problem when ``fit`` is called; ``hidden_layer_sizes``
        must begin with source's first ``keep_layers`` widths.
        """
        source._check_fitted()
        L_src = len(source.parameters_) // 2
        keep = V.operator_index(keep_layers)
        if not 1 <= keep <= L_src - 1:
            raise ValueError(f"keep_layers must be in [1, {L_src - 1}] (the output layer is always replaced), got {keep}")
        params = {**source.get_params(), "warm_start": False, "frozen_layers": keep if freeze else 0, **params}
        new = cls(**params)
        new._pretrained = (
            {k: np.array(v) for k, v in source.parameters_.items() if int(k[1:]) <= keep},
            source.n_features_in_,
        )
        return new

    def _pretrained_parameters(self, Xs, sizes):
        if not hasattr(self, "_pretrained"):
            return None
        kept, n_in = self._pretrained
        n_features = Xs.shape[1]
        keep = len(kept) // 2
        if n_features != n_in:
            raise ValueError(f"the pretrained layers take {n_in} features, X has {n_features}")
        widths = [kept[f"W{l}"].shape[0] for l in range(1, keep + 1)]
        if list(sizes[:keep]) != widths:
            raise ValueError(f"hidden_layer_sizes must begin with the pretrained widths {widths}, got {list(sizes)}")
        K = len(self.classes_)
        dims = [n_features] + list(sizes) + [1 if K == 2 else K]
        params = initialize_parameters(dims, self.init, self._seed(), Xs.dtype)
        for key, value in kept.items():
            params[key][...] = value
        return params

    # -- inference ---------------------------------------------------------------------------
    def _proba_rows(self, Xs):
        params = self.parameters_
        dims = np.asarray(params.dims, np.int64)
        m = Xs.shape[0]
        Z = np.empty(m * int(dims[1:].sum()), params.flat.dtype)
        net = self.network_
        acts = activation_codes(len(dims) - 1, net["activation"], net["output"], net["loss"])
        args = (Xs, params.flat, dims, acts, Z, Z, True)
        ensure_compiled(N.forward, args, f"the prediction kernels for {Xs.dtype}")
        with blas_threads(training_threads(self.threads, list(dims), m)):
            N.forward(*args)
        return N._block(Z, m, dims, len(dims) - 2)

    def _predict_rows(self, Xs):
        P = self._proba_rows(Xs)
        index = (P[:, 0] > 0.5).astype(np.int64) if P.shape[1] == 1 else np.argmax(P, axis=1)
        return self.classes_[index]

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order."""
        self._check_fitted()
        P = self._proba_rows(self._check_X(X))
        if P.shape[1] == 1:
            return np.hstack([1 - P, P])
        return P.copy()

    def predict(self, X):
        """The most probable class of each sample."""
        self._check_fitted()
        return self._predict_rows(self._check_X(X))

    def score(self, X, y):
        """Mean accuracy of ``predict(X)`` against y."""
        self._check_fitted()
        Xs = self._check_X(X)
        y = self._check_y(y, Xs.shape[0])
        return float(np.mean(self._predict_rows(Xs) == y))


def cross_val_score(estimator, X, y, k=10, random_state=0):
    """Accuracy on each of k folds (the course suggests k = 10, or 3), training a fresh clone per fold.

    Folds are a seeded shuffle of the samples split into k near-equal parts;
    returns an array of k scores.
    """
    X = np.asarray(X)
    y = np.asarray(y)
    k = V.operator_index(k)
    if not 2 <= k <= len(y):
        raise ValueError(f"k must be between 2 and the number of samples {len(y)}, got {k}")
    folds = np.array_split(np.random.default_rng(random_state).permutation(len(y)), k)
    scores = []
    for i, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        clone = type(estimator)(**estimator.get_params())
        scores.append(clone.fit(X[train], y[train]).score(X[test], y[test]))
    return np.array(scores)
