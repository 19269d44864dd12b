"""``DNNClassifier``: the training engine behind scikit-learn's conventions.

X is ``(n_samples, n_features)`` here, which is exactly the sample-major layout
the kernels use, so a C-contiguous float X is trained on without a copy, and
splits (early stopping's validation set) are row indices into it. Labels may
be any values; ``classes_`` keeps them. Two classes train one sigmoid unit,
more train a softmax. scikit-learn is not needed, but ``get_params``/
``set_params`` and the attribute names follow it so its tools (``GridSearchCV``,
``cross_val_score``, pipelines) accept the estimator. The parameters, their
defaults and checks are ``fastdnn.options.OPTIONS``.
"""

import inspect
import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from fastdnn import export
from fastdnn import io as fio
from fastdnn import options as O
from fastdnn import validation as V
from fastdnn.engine import Engine, Schedule, predict_proba_rows
from fastdnn.errors import DataConversionWarning, NotFittedError, scikit_learns
from fastdnn.labels import class_targets, k_folds, output_for, output_units, predicted_index, split_rows
from fastdnn.monitors import Callback, EarlyStopping, Monitors, PrintCosts
from fastdnn.pipeline import initialize_parameters, resolve_dtype, samples_as_rows
from fastdnn.data import load_or_stream
from fastdnn.distributed import active
from fastdnn.stream import DiskDataset, Feed, block_rows_for, open_disk_dataset


class DNNClassifier:
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
    frozen_layers : the first k layers are not trained (for transfer learning, see ``from_pretrained``).
    dtype : "float32" or "float64"; None takes X's float dtype, else float64.
    threads : BLAS threads during training, at most the usable cores; None: fastdnn's policy
        (one thread for small steps, every usable core otherwise; ``fastdnn/threads.py``).
    memory : memory for training data given as a path (.npy, .npz, HDF5, a folder of shards): data that fit
        are read whole, larger data stream from disk through two buffers of rows within it ("1GB").
    verbose : print each epoch's cost as training goes.

    Attributes after fit: ``classes_``, ``n_features_in_``, ``parameters_`` (the course's
    ``{"W1", "b1", ...}``; assigning a key writes through), ``network_`` (the architecture the
    parameters were trained as, which prediction and saving use), ``training_state_`` (the
    engine's ``TrainingState``: optimizer state, step, generator, early stopping's record; what a
    checkpoint saves), ``loss_curve_`` (one cost per epoch, all fits of a warm start),
    ``n_iter_``, ``t_`` (optimizer steps), ``validation_scores_`` and ``best_validation_score_``
    (when validated).
    """

    def __init__(
        self, hidden_layer_sizes=(100,), activation="relu", loss="cross_entropy", output="auto", optimizer="adam",
        learning_rate="auto", lr_schedule="constant", batch_size="auto", max_iter=200, l2=0.0, beta=0.9, beta1=0.9,
        beta2=0.999, epsilon=1e-8, init="deep", random_state=None, warm_start=False, early_stopping=False,
        validation_fraction=0.1, n_iter_no_change=10, tol=1e-4, frozen_layers=0, dtype=None,
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
    _estimator_type = "classifier"  # scikit-learn < 1.6 reads this

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 asks estimators for their tags; only called when it is installed."""
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags())

    @classmethod
    def param_names(cls):
        """The constructor's parameter names (``fastdnn.options.OPTIONS``' names)."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params):
        valid = self.param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for DNNClassifier; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if k in O.DEFAULTS and v != O.DEFAULTS[k]]
        return f"DNNClassifier({', '.join(changed)})"

    # -- fitted state ------------------------------------------------------------------------
    def _state(self):
        if "engine_" not in self.__dict__:
            raise scikit_learns(NotFittedError)("this DNNClassifier is not fitted yet; call fit (or partial_fit) first")
        return self.engine_.state

    parameters_ = property(lambda self: (self._state(), self.engine_.parameters)[1],
                           doc="The trained parameters (a ``Parameters``: views into one flat buffer).")
    training_state_ = property(lambda self: self._state(), doc="The engine's ``TrainingState``.")
    loss_curve_ = property(lambda self: self._state().costs, doc="One cost per epoch over every fit.")
    n_iter_ = property(lambda self: self._state().epoch, doc="Epochs trained over every fit.")
    t_ = property(lambda self: self._state().step, doc="Optimizer steps taken.")

    @property
    def validation_scores_(self):
        scores = self._state().validation_scores
        if not scores:
            raise AttributeError("validation_scores_: this fit did not validate")
        return scores

    @property
    def best_validation_score_(self):
        best = self._state().best_score
        if best is None:
            raise AttributeError("best_validation_score_: this fit did not stop early")
        return best

    # -- checks ------------------------------------------------------------------------------
    def _check_X(self, X, name="X"):
        """X (n_samples, n_features) as the sample-major array the kernels read (a copy only if needed).
        Messages worded as scikit-learn's (its estimator checks match them)."""
        if type(X).__module__.startswith("scipy.sparse"):
            raise TypeError(f"{name} is a scipy sparse matrix; sparse input is not supported: densify it "
                            f"({name}.toarray()) if it fits in memory")
        X = np.asarray(X)
        if X.dtype.kind == "O":
            X = V.numbers_from_objects(X, name)
        if X.dtype.kind == "c":
            raise ValueError(f"Complex data not supported: {name} must be real, got dtype {X.dtype}")
        if X.ndim == 1:
            raise ValueError(f"Expected a 2D array for {name}, got a 1D array of {X.shape[0]}: Reshape your data with "
                             f"{name}.reshape(-1, 1) for a single feature or {name}.reshape(1, -1) for a single sample")
        if X.ndim == 2 and 0 in X.shape:
            what = "sample(s)" if X.shape[0] == 0 else "feature(s)"
            raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
        # check_X is layout-agnostic but for its messages; checking X itself, not X.T,
        # keeps the NaN/Inf scan contiguous (twice as fast on a C-ordered X).
        V.check_X(X, name=name, layout="(n_samples, n_features)")
        if "n_features_in_" in self.__dict__ and X.shape[1] != self.n_features_in_:
            raise ValueError(f"{name} has {X.shape[1]} features, but DNNClassifier is expecting {self.n_features_in_} "
                             "features as input")
        dtype = self.engine_.state.parameters.flat.dtype.type if "engine_" in self.__dict__ else resolve_dtype(self.dtype, X)
        return samples_as_rows(X.T, dtype)

    def _check_y(self, y, m):
        if y is None:
            raise ValueError("DNNClassifier requires y to be passed, but the target y is None")
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn("A column-vector y was passed when a 1d array was expected; it is used raveled, "
                          "shape (n_samples,)", scikit_learns(DataConversionWarning), stacklevel=3)
            y = y.ravel()
        if y.ndim != 1 or y.shape[0] != m:
            raise ValueError(f"y must be 1-D with one label per sample ({m}), got shape {y.shape}")
        return V.check_class_labels(y)

    def _check_params(self, m=None):
        """Every parameter checked (messages name it); returns them as checked, hidden sizes a tuple."""
        params = O.check(self.get_params(), m)
        if params["dtype"] is not None:
            resolve_dtype(params["dtype"])
        return params

    def _check_same_network(self, params):
        """warm_start keeps the network: a changed architecture is an error, not silently ignored."""
        now = {"hidden_layer_sizes": tuple(params["hidden_layer_sizes"]), "activation": self.activation, "loss": self.loss,
               "output": output_for(len(self.classes_), params["output"])}
        if self.dtype is not None:
            now["dtype"] = np.dtype(resolve_dtype(self.dtype)).name
        changed = [f"{k} {self.network_[k]!r} -> {v!r}" for k, v in now.items() if self.network_[k] != v]
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, but its architecture changed ({'; '.join(changed)}); "
                "set warm_start=False to train a new network"
            )

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

    def _seed(self):
        """random_state, or with None one drawn at the first fit and kept for the warm fits after it (so
        early stopping holds out the same rows every time)."""
        if self.random_state is not None:
            return V.operator_index(self.random_state)
        if "seed_" not in self.__dict__:
            self.seed_ = int(np.random.default_rng().integers(2**31))
        return self.seed_

    # -- the engine --------------------------------------------------------------------------
    def _hyperparameters(self, params, m):
        return dict(
            optimizer=params["optimizer"], learning_rate=O.resolve_learning_rate(params["learning_rate"], params["optimizer"]),
            lr_schedule=Schedule.from_option(params["lr_schedule"], threshold=params["tol"]),
            beta=params["beta"], beta1=params["beta1"], beta2=params["beta2"], epsilon=params["epsilon"],
            lambd=params["l2"], mini_batch_size=O.resolve_batch_size(params["batch_size"], m), threads=params["threads"],
        )

    def _new_engine(self, params, n_features, dtype, seed, m, parameters=None, state=None):
        """The engine for these options (``parameters`` drawn with ``params["init"]`` unless given; ``state``
        a ``TrainingState`` to continue), and ``network_``, what the parameters are trained as."""
        self.engine_, self.network_ = self._engine_for(params, n_features, len(self.classes_), dtype, seed, m,
                                                       parameters, state)

    def _engine_for(self, params, n_features, K, dtype, seed, m, parameters=None, state=None):
        """(an Engine for these options on K classes, the network it trains as a dict)."""
        sizes = tuple(params["hidden_layer_sizes"])
        if parameters is None:
            parameters = initialize_parameters([n_features, *sizes, output_units(K, params["output"])], params["init"], seed,
                                               dtype)
        network = {
            "hidden_layer_sizes": sizes, "activation": params["activation"], "loss": params["loss"],
            "output": output_for(K, params["output"]), "dtype": np.dtype(dtype).name,
        }
        engine = Engine(
            parameters, hidden_activation=params["activation"], output=output_for(K, params["output"]), loss=params["loss"],
            frozen_layers=params["frozen_layers"], seed=seed, state=state, **self._hyperparameters(params, m),
        )
        return engine, network

    def _ready_engine(self, params, Xs, m, seed, warm):
        """The engine for training on ``m`` rows of ``Xs``: the fitted one with the options as set now
        (``warm``: the network must be the same), else a new one seeded with ``seed``."""
        if warm:
            self._check_same_network(params)
            self.engine_.configure(**self._hyperparameters(params, m))
            self.engine_.frozen_layers = params["frozen_layers"]
        else:
            self.n_features_in_ = Xs.shape[1]
            self._new_engine(params, Xs.shape[1], Xs.dtype.type, seed, m, self._pretrained_parameters(Xs, params, seed))
        # A cosine without a period anneals over this fit's max_iter: fixed in the state once, so a resumed run
        # (whose fit may be asked for fewer epochs) keeps it.
        self.engine_.schedule.fix_period(self.engine_.state, params["max_iter"])

    def warm_up(self, n_features, classes, dtype=None, comm=None, m=2):
        """Compile (or load from the disk cache) the kernels that ``fit`` with these options on ``n_features``
        features, ``classes`` and ``m`` training rows calls, and those of its predictions (``Engine.warm_up``),
        without fitting this estimator. ``dtype``: the data's (the ``dtype`` option is resolved against it as
        ``fit`` does). Returns the seconds a compile took, 0.0 when everything came from the cache. With ``comm``
        (several MPI ranks) it is a collective: every rank calls it."""
        params = self._check_params()
        data = np.empty(0, np.float64 if dtype is None else dtype)
        engine, _ = self._engine_for(params, n_features, len(classes), resolve_dtype(params["dtype"], data), 0, m)
        return engine.warm_up(comm)

    def restore(self, record):
        """Make this estimator the fitted classifier that a model file or checkpoint holds, and return it: a
        ``fastdnn.io.ModelRecord`` (checked as it was read) gives the network over its classes and the training
        state to go on from; the options are this estimator's (the record's, as ``load`` builds it)."""
        params = self._check_params()
        parameters = record.parameters
        self.classes_ = np.asarray(record.classes)
        self.n_features_in_ = parameters.dims[0]
        seed = params["random_state"] if params["random_state"] is not None else 0
        self._new_engine(params, parameters.dims[0], parameters.flat.dtype.type, seed, 1, parameters, record.state)
        self.engine_.mini_batch_size = record.mini_batch_size
        return self

    def _forget(self):
        for attr in ("n_features_in_", "engine_", "classes_", "network_", "seed_"):
            self.__dict__.pop(attr, None)

    def fit(self, X, y, *, callbacks=None, validation_data=None, rows=None, comm=None):
        """Train for ``max_iter`` epochs (fewer with early stopping or a callback's stop); returns self.

        callbacks : callables ``callback(info)`` called after each epoch with an ``EpochInfo``; a true
            result stops training there. A callback with an ``every`` attribute is called every that
            many epochs (the compiled loop then runs that long between calls), ``every = None`` at the
            engine's pace (about every quarter second, ``info.costs`` holding the epochs since).
        validation_data : (X_val, y_val) scored after each epoch (``validation_scores_``); with
            ``early_stopping`` it is the set early stopping watches instead of a held-out fraction.
        rows : train on these rows of X only (indices), without copying X.
        comm : an MPI communicator (``mpi4py.MPI.COMM_WORLD``) to train data-parallel across its ranks
            (``fastdnn.distributed``): every rank calls ``fit`` with the same data and options; rank 0's
            seed and initial parameters are used. A runtime resource, not a hyperparameter: it is neither
            saved with the model nor seen by ``get_params``.
        """
        warm = self.warm_start and "engine_" in self.__dict__
        if not warm:
            self._forget()
        Xs, y = self._training_data(X, y)
        self._fit(Xs, y, warm, callbacks, validation_data, rows, comm)
        return self

    def _training_data(self, X, y):
        """(X as the kernels read it, checked labels): an array in memory, or a ``DiskDataset`` when X is a
        path (or one) and its data are larger than ``memory`` (smaller ones are read whole)."""
        data = self._disk_data(X, y)
        if data is None:
            Xs = self._check_X(X)
            return Xs, self._check_y(y, Xs.shape[0])
        if data.y is None:
            raise ValueError(f"{data.describe()} has no labels to train on")
        dtype = (self.engine_.state.parameters.flat.dtype if "engine_" in self.__dict__
                 else resolve_dtype(self.dtype) if self.dtype is not None else data.dtype)
        y = V.check_class_labels(data.y)
        data = load_or_stream(data, memory=O.BY_NAME["memory"].validate(self.memory), dtype=dtype)
        return (data if isinstance(data, DiskDataset) else data.X), y

    def _disk_data(self, X, y, require_labels=True):
        """X as a ``DiskDataset`` when it is a path (labels: y, a path or an array, or beside a .npy) or one
        (labels: its own, or y), of as many features as the fitted classifier takes."""
        if isinstance(X, DiskDataset):
            data = X if y is None else X.with_labels(y)
        elif isinstance(X, (str, os.PathLike)):
            data = open_disk_dataset(X, labels=y, require_labels=require_labels)
        else:
            return None
        if "n_features_in_" in self.__dict__ and data.n_features != self.n_features_in_:
            raise ValueError(f"{data.describe()} has {data.n_features} features, but this classifier was fitted "
                             f"with {self.n_features_in_}")
        return data

    def _fit(self, Xs, y, warm, callbacks, validation_data, rows, comm=None):
        train_rows = None if rows is None else self._check_rows(rows, Xs.shape[0])
        classes = np.unique(y if train_rows is None else y[train_rows])
        if len(classes) < 2:
            raise ValueError(f"y has one class ({classes.tolist()}); a classifier needs at least 2")
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(f"warm_start: y's classes {classes.tolist()} differ from the fitted {self.classes_.tolist()}")
        params = self._check_params()
        seed = self._seed()
        if active(comm):
            # One seed for every rank: the initial parameters, the shuffling and early stopping's split.
            seed = comm.bcast(seed, root=0)
            if self.random_state is None:
                self.seed_ = seed
        validation = None
        if validation_data is not None:
            X_val, y_val = validation_data
            Xv = self._check_X(X_val, "validation X") if warm else samples_as_rows(
                V.check_X(np.asarray(X_val), "validation X", "(n_samples, n_features)").T, Xs.dtype)
            if Xv.shape[1] != Xs.shape[1]:
                raise ValueError(f"validation X has {Xv.shape[1]} features, X has {Xs.shape[1]}")
            validation = (Xv, self._check_y(y_val, Xv.shape[0]), None)
        elif params["early_stopping"]:
            m = Xs.shape[0] if train_rows is None else train_rows.size
            kept, held = split_rows(m, params["validation_fraction"], seed)
            if train_rows is not None:
                kept, held = train_rows[kept], train_rows[held]
            train_rows = kept
            validation = (Xs, y[held], held)
        m_train = Xs.shape[0] if train_rows is None else train_rows.size
        params = self._check_params(m_train)
        if not warm:
            self.classes_ = classes
        self._ready_engine(params, Xs, m_train, seed, warm)
        if isinstance(Xs, DiskDataset):
            n_out = output_units(len(self.classes_), params["output"])
            block = block_rows_for(params["memory"], Xs.n_features, n_out, Xs.dtype, self.engine_.mini_batch_size)
            feed = Feed(Xs, self._class_index(y), len(self.classes_), class_targets, Xs.dtype, block, train_rows,
                        self.engine_.mini_batch_size, units=n_out)
            try:
                self._train(feed, None, params["max_iter"], None, validation, callbacks, comm=comm)
            finally:
                feed.close()
        else:
            self._train(Xs, self._targets(y, Xs.dtype), params["max_iter"], train_rows, validation, callbacks, comm=comm)

    def _check_rows(self, rows, m):
        rows = np.asarray(rows)
        if rows.ndim != 1 or rows.size == 0 or rows.dtype.kind not in "iu":
            raise ValueError("rows must be a non-empty 1-D array of row indices")
        rows = rows.astype(np.int64)
        if rows.size > 1 and not (rows[1:] > rows[:-1]).all():
            # Sorted and deduplicated by a sort: numpy 2's hash-based np.unique takes a second on 2M int64.
            rows = np.sort(rows)
            rows = rows[np.concatenate(([True], rows[1:] != rows[:-1]))]
        if rows[0] < 0 or rows[-1] >= m:
            raise ValueError(f"rows must be indices in [0, {m}), got {rows[0]}..{rows[-1]}")
        return rows

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current state; ``classes`` needed on the first call
        unless y holds every class."""
        Xs = self._check_X(X)
        y = self._check_y(y, Xs.shape[0])
        warm = "engine_" in self.__dict__
        if not warm:
            self.classes_ = np.unique(y if classes is None else classes)
            if len(self.classes_) < 2:
                raise ValueError(f"partial_fit needs at least 2 classes, got {self.classes_.tolist()}; pass classes=")
        self._ready_engine(self._check_params(), Xs, Xs.shape[0], None if warm else self._seed(), warm)
        # A batch larger than this call's samples is one full batch of them.
        batch = self.engine_.mini_batch_size
        if batch is not None and batch > Xs.shape[0]:
            self.engine_.mini_batch_size = Xs.shape[0]
        self._train(Xs, self._targets(y, Xs.dtype), 1, None, None, None, partial=True)
        return self

    def _train(self, Xs, Ys, epochs, rows, validation, callbacks, partial=False, comm=None):
        """The epochs through the engine, with the monitors this fit asks for."""
        engine = self.engine_
        state = engine.state
        if not partial and not state.in_progress:
            # A new run; a checkpoint saved mid-run (in_progress) continues its record.
            state.reset_early_stopping()
        monitors = []
        if validation is not None:
            X_val, y_val, val_rows = validation
            patience = self.n_iter_no_change if self.early_stopping else None
            monitors.append(EarlyStopping(X_val, self._class_index(y_val), val_rows, self.tol, patience))
        if self.verbose:
            monitors.append(PrintCosts())
        if callable(callbacks):
            callbacks = [callbacks]
        for callback in callbacks or ():
            monitors.append(Callback(callback, self))
        monitor = Monitors(monitors) if monitors else None
        engine.train(Xs, Ys, epochs, rows=rows, monitor=monitor, comm=comm)
        if self.early_stopping:
            EarlyStopping.keep_best(engine)

    # -- transfer learning -------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source, keep_layers, freeze=True, **params):
        """A new classifier whose first ``keep_layers`` layers start as ``source``'s (frozen if ``freeze``).

        The layers after them, the output layer included, are initialised
        afresh for the new problem when ``fit`` is called; ``hidden_layer_sizes``
        must begin with source's first ``keep_layers`` widths.
        """
        L_src = len(source.parameters_) // 2
        keep = V.operator_index(keep_layers)
        if not 1 <= keep <= L_src - 1:
            raise ValueError(f"keep_layers must be in [1, {L_src - 1}] (the output layer is always replaced), got {keep}")
        params = {**source.get_params(), "warm_start": False, "frozen_layers": keep if freeze else 0, **params}
        new = cls(**params)
        new.pretrained = (
            {k: np.array(v) for k, v in source.parameters_.items() if int(k[1:]) <= keep},
            source.n_features_in_,
        )
        return new

    def _pretrained_parameters(self, Xs, params, seed):
        if "pretrained" not in self.__dict__:
            return None
        kept, n_in = self.pretrained
        n_features = Xs.shape[1]
        keep = len(kept) // 2
        sizes = params["hidden_layer_sizes"]
        if n_features != n_in:
            raise ValueError(f"the pretrained layers take {n_in} features, X has {n_features}")
        widths = [kept[f"W{l}"].shape[0] for l in range(1, keep + 1)]
        if list(sizes[:keep]) != widths:
            raise ValueError(f"hidden_layer_sizes must begin with the pretrained widths {widths}, got {list(sizes)}")
        dims = [n_features, *sizes, output_units(len(self.classes_), params["output"])]
        parameters = initialize_parameters(dims, params["init"], seed, Xs.dtype)
        for key, value in kept.items():
            parameters[key][...] = value
        return parameters

    # -- inference ---------------------------------------------------------------------------
    def _proba_rows(self, Xs):
        net = self.network_
        return predict_proba_rows(self.parameters_, net["activation"], net["output"], Xs, threads=self.threads)

    def _predict_rows(self, Xs):
        return self.classes_[predicted_index(self._proba_rows(Xs))]

    def _inputs(self, X, y=None, labels=False):
        """X to predict on: a checked array, or a ``DiskDataset`` (X a path or one) read a block at a time;
        with ``labels``, (X, checked y) where a path's y may be None (its own labels)."""
        data = self._disk_data(X, y if labels else None, require_labels=labels)
        if data is None:
            Xs = self._check_X(X)
            return (Xs, self._check_y(y, Xs.shape[0])) if labels else Xs
        return (data, data.y) if labels else data

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order. X may be a path to data
        on disk (as ``fit`` takes it), read a block at a time."""
        self._state()
        P = self._proba_rows(self._inputs(X))
        if P.shape[1] == 1:
            return np.hstack([1 - P, P])
        return P

    def predict(self, X):
        """The most probable class of each sample (X an array, or a path to data on disk)."""
        self._state()
        return self._predict_rows(self._inputs(X))

    def score(self, X, y, rows=None):
        """Mean accuracy of ``predict(X)`` against y; with ``rows`` (indices), on those rows of X and y only,
        gathered a block at a time (no copy of X). X may be a path to data on disk with y its labels (None:
        the file's own)."""
        self._state()
        Xs, y = self._inputs(X, y, labels=True)
        return self._score(Xs, y, rows)

    def _score(self, Xs, y, rows):
        if rows is None:
            return float(np.mean(self._predict_rows(Xs) == y))
        rows = self._check_rows(rows, Xs.shape[0])
        net = self.network_
        P = predict_proba_rows(self.parameters_, net["activation"], net["output"], Xs, rows, self.threads)
        return float(np.mean(self.classes_[predicted_index(P)] == y[rows]))

    # -- files -------------------------------------------------------------------------------
    def save(self, path):
        """Write the fitted model to ``path`` (.npz, atomically; see ``fastdnn.io``)."""
        fio.save_model(self, path)

    def to_onnx(self, path=None):
        """The fitted network as an ONNX model (``fastdnn.export``; needs ``fastdnn[onnx]``), written to
        ``path`` when given; returns the ``onnx.ModelProto``."""
        return export.to_onnx(self, path)

    @classmethod
    def load(cls, path):
        """The model (or checkpoint, as its model) saved at ``path``, ready to ``predict``: ``fit`` with
        ``warm_start=True`` continues from its parameters (with a fresh optimizer state, unless a checkpoint
        saved one)."""
        record = fio.read_model(path)
        return cls(**record.options).restore(record)


@dataclass
class Checkpoint:
    """A restored training state: the estimator, ready to continue with ``fit`` (warm_start) or to predict,
    and the caller's ``run`` dict and ``arrays`` as saved."""

    estimator: DNNClassifier
    run: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)


def load_model(path):
    """The DNNClassifier saved at ``path`` (``DNNClassifier.load``)."""
    return DNNClassifier.load(path)


def load_checkpoint(path):
    """A ``Checkpoint``: the estimator with its optimizer state, step and shuffling Generator restored,
    so that ``fit`` with ``warm_start=True`` continues exactly where the saved run was."""
    record = fio.read_checkpoint(path)
    return Checkpoint(DNNClassifier(**record.options).restore(record), record.run, record.arrays)


def cross_val_score(estimator, X, y, k=10, random_state=0):
    """Accuracy on each of k folds (the course suggests k = 10, or 3), training a fresh clone per fold.

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
