"""``DNNEstimator``: what ``DNNClassifier`` and ``DNNRegressor`` share, the training engine behind scikit-learn's
conventions.

X is ``(n_samples, n_features)`` here, which is exactly the sample-major layout
the kernels use, so a C-contiguous float X is trained on without a copy, and
splits (early stopping's validation set) are row indices into it. X may be a
pandas DataFrame (seen by its ``columns`` and ``dtypes``; pandas is never
imported here): its column names, when all are text, become ``feature_names_in_``
as scikit-learn keeps them, and later calls are checked against them. X may
also be data on disk (a path or a ``DiskDataset``), read whole or streamed as
``memory`` allows. scikit-learn is not needed, but ``get_params``/``set_params``
and the attribute names follow it so its tools (``GridSearchCV``,
``cross_val_score``, pipelines) accept the estimators. The parameters, their
defaults and checks are ``fastdnn.options.OPTIONS`` (each estimator takes the
rows of its ``task``).

What a task decides is a handful of methods each estimator defines: its targets
(``_check_y``, ``_fit_targets``, ``_targets``, ``_feed``), its output layer
(``_layer``), how a validation set is scored (``_validation``) and how
predictions are scored (``_score_outputs``).
"""

import inspect
import os

import numpy as np

from fastdnn import export
from fastdnn import io as fio
from fastdnn import options as O
from fastdnn import validation as V
from fastdnn.data import load_or_stream
from fastdnn.distributed import active
from fastdnn.engine import Engine, Schedule, predict_proba_rows
from fastdnn.errors import NotFittedError, scikit_learns
from fastdnn.labels import split_rows
from fastdnn.monitors import Callback, EarlyStopping, Monitors, PrintCosts
from fastdnn.pipeline import initialize_parameters, resolve_dtype, samples_as_rows
from fastdnn.stream import DiskDataset, block_rows_for, open_disk_dataset


class DNNEstimator:
    """The estimators' shared machinery (see the module); ``DNNClassifier`` and ``DNNRegressor`` are the two.

    ``task`` names the estimator's rows of the options table ("classification", "regression").
    """

    task = None

    # -- scikit-learn's estimator protocol, without depending on it ---------------------------
    @classmethod
    def param_names(cls):
        """The constructor's parameter names (``fastdnn.options.OPTIONS``' names for the estimator's task)."""
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self.param_names()}

    def set_params(self, **params):
        valid = self.param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if k in O.DEFAULTS and v != O.DEFAULTS[k]]
        return f"{type(self).__name__}({', '.join(changed)})"

    # -- fitted state ------------------------------------------------------------------------
    def _state(self):
        if "engine_" not in self.__dict__:
            raise scikit_learns(NotFittedError)(
                f"this {type(self).__name__} is not fitted yet; call fit (or partial_fit) first")
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
    def _check_X(self, X, name="X", reset=False):
        """X (n_samples, n_features) as the sample-major array the kernels read (a copy only if needed).
        Messages worded as scikit-learn's (its estimator checks match them). A DataFrame's column names are
        kept (``reset``: a new fit's) or checked against the fitted ones, as scikit-learn does."""
        names = V.feature_names(X, name)
        if reset:
            self.__dict__.pop("feature_names_in_", None)
            if names is not None:
                self.feature_names_in_ = names
        elif "n_features_in_" in self.__dict__:
            V.check_feature_names(self.__dict__.get("feature_names_in_"), names, type(self).__name__, name,
                                  stacklevel=5)
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
            raise ValueError(f"{name} has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        dtype = self.engine_.state.parameters.flat.dtype.type if "engine_" in self.__dict__ else resolve_dtype(self.dtype, X)
        return samples_as_rows(X.T, dtype)

    def _require_y(self, y):
        """A ValueError when there is no y (scikit-learn's words, which its checks look for)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")

    def _check_params(self, m=None):
        """Every parameter checked (messages name it); returns them as checked, hidden sizes a tuple."""
        params = O.check(self.get_params(), m)
        if params["dtype"] is not None:
            resolve_dtype(params["dtype"])
        return params

    def _check_same_network(self, params):
        """warm_start keeps the network: a changed architecture is an error, not silently ignored."""
        output, loss, _ = self._layer(params, self._fitted_targets())
        now = {"hidden_layer_sizes": tuple(params["hidden_layer_sizes"]), "activation": params["activation"],
               "loss": loss, "output": output}
        if self.dtype is not None:
            now["dtype"] = np.dtype(resolve_dtype(self.dtype)).name
        changed = [f"{k} {self.network_[k]!r} -> {v!r}" for k, v in now.items() if self.network_[k] != v]
        if changed:
            raise ValueError(
                f"warm_start=True continues the fitted network, but its architecture changed ({'; '.join(changed)}); "
                "set warm_start=False to train a new network"
            )

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
            # (The table's default where an estimator's signature lacks the option.)
            keep_prob=params.get("keep_prob", O.DEFAULTS["keep_prob"]),
        )

    def _new_engine(self, params, n_features, dtype, seed, m, parameters=None, state=None):
        """The engine for these options (``parameters`` drawn with ``params["init"]`` unless given; ``state``
        a ``TrainingState`` to continue), and ``network_``, what the parameters are trained as."""
        self.engine_, self.network_ = self._engine_for(params, n_features, self._fitted_targets(), dtype, seed, m,
                                                       parameters, state)

    def _engine_for(self, params, n_features, targets, dtype, seed, m, parameters=None, state=None):
        """(an Engine for these options on ``targets`` (a classifier's classes, a regressor's number of
        targets), the network it trains as a dict)."""
        sizes = tuple(params["hidden_layer_sizes"])
        output, loss, units = self._layer(params, targets)
        if parameters is None:
            parameters = initialize_parameters([n_features, *sizes, units], params["init"], seed, dtype)
        network = {"hidden_layer_sizes": sizes, "activation": params["activation"], "loss": loss, "output": output,
                   "dtype": np.dtype(dtype).name}
        engine = Engine(
            parameters, hidden_activation=params["activation"], output=output, loss=loss,
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

    def output_layer(self, targets):
        """(output activation, loss, units) of the output layer these options give for ``targets`` (a classifier's
        classes, a regressor's number of targets): what ``fit`` would train."""
        return self._layer(self._check_params(), targets)

    def _warm_up(self, n_features, targets, dtype, comm, m):
        """``warm_up``'s work for ``targets`` (classes, or a number of targets)."""
        params = self._check_params()
        data = np.empty(0, np.float64 if dtype is None else dtype)
        engine, _ = self._engine_for(params, n_features, targets, resolve_dtype(params["dtype"], data), 0, m)
        return engine.warm_up(comm)

    def restore(self, record):
        """Make this estimator the fitted one that a model file or checkpoint holds, and return it: a
        ``fastdnn.io.ModelRecord`` (checked as it was read) gives the network over its targets and the training
        state to go on from; the options are this estimator's (the record's, as ``load`` builds it)."""
        params = self._check_params()
        parameters = record.parameters
        self._restore_targets(record)
        self.n_features_in_ = parameters.dims[0]
        if record.feature_names is not None:
            self.feature_names_in_ = record.feature_names
        seed = params["random_state"] if params["random_state"] is not None else 0
        self._new_engine(params, parameters.dims[0], parameters.flat.dtype.type, seed, 1, parameters, record.state)
        self.engine_.mini_batch_size = record.mini_batch_size
        return self

    def _forget(self):
        for attr in ("n_features_in_", "engine_", "classes_", "n_outputs_", "network_", "seed_", "feature_names_in_"):
            self.__dict__.pop(attr, None)

    # -- training ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None, *, callbacks=None, validation_data=None, rows=None, comm=None):
        """Train for ``max_iter`` epochs (fewer with early stopping or a callback's stop); returns self.

        sample_weight : (n_samples,) non-negative weights (or one number for all), scikit-learn's: every
            cost and gradient is a weighted mean, sum w_i l_i / sum w_i over a batch, so integer weights
            train as repeated rows would on a full batch; a classifier's ``class_weight`` multiplies them.
            Early stopping's held-out score is weighted too. Data in memory (not streamed from disk).

        X : (n_samples, n_features): an array, a pandas DataFrame (its column names become
            ``feature_names_in_``), or data on disk: a path (.npy, .npz, HDF5, a folder of shards; y then an
            array, a .npy path, or None for the file's own labels) or a ``DiskDataset``, read whole when it fits
            ``memory``, else streamed a block of rows at a time.
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
        Xs, y = self._training_data(X, y, reset=not warm)
        self._fit(Xs, y, warm, callbacks, validation_data, rows, comm, sample_weight)
        return self

    def _sample_weights(self, y, sample_weight, m):
        """Each example's weight: ``sample_weight`` (checked: one clear line) times the class weights, or None."""
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.ndim == 0:
                w = np.full(m, float(w))
            if w.shape != (m,):
                raise ValueError(f"sample_weight must be one number per sample ({m}), got shape {w.shape}")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("sample_weight must hold finite, non-negative numbers")
        by_class = self._class_weights(y)
        if by_class is not None:
            w = by_class if w is None else w * by_class
        if w is not None and not np.any(w > 0):
            raise ValueError("sample_weight (times class_weight) is zero for every sample: nothing to train on")
        return w

    def _class_weights(self, y):
        """Per-example weights of y's classes (a classifier's ``class_weight``), or None."""
        return None

    def _training_data(self, X, y, reset):
        """(X as the kernels read it, checked targets): an array in memory, or a ``DiskDataset`` when X is a
        path (or one) and its data are larger than ``memory`` (smaller ones are read whole)."""
        data, targets = self._disk_data(X, y)
        if data is None:
            Xs = self._check_X(X, reset=reset)
            return Xs, self._check_y(y, Xs.shape[0])
        if reset:
            self.__dict__.pop("feature_names_in_", None)  # data on disk carry no column names
        if targets is None:
            raise ValueError(f"{data.describe()} has no labels to train on")
        dtype = (self.engine_.state.parameters.flat.dtype if "engine_" in self.__dict__
                 else resolve_dtype(self.dtype) if self.dtype is not None else data.dtype)
        y = self._check_y(targets, data.n_samples)
        data = load_or_stream(data, memory=O.BY_NAME["memory"].validate(self.memory), dtype=dtype)
        return (data if isinstance(data, DiskDataset) else data.X), y

    def _disk_data(self, X, y, require_labels=True):
        """(X as a ``DiskDataset``, its targets) when X is a path (targets: y, a path or an array, or beside a
        .npy) or one (targets: its own, or y), of as many features as the fitted estimator takes; else (None,
        None). A 2-D array y (a regressor's several targets) is kept as given beside the data."""
        if not isinstance(X, (DiskDataset, str, os.PathLike)):
            return None, None
        beside = y is not None and not isinstance(y, (str, os.PathLike)) and np.asarray(y).ndim > 1
        labels = None if beside else y
        if isinstance(X, DiskDataset):
            data = X if labels is None else X.with_labels(labels)
        else:
            data = open_disk_dataset(X, labels=labels, require_labels=require_labels and not beside)
        if "n_features_in_" in self.__dict__ and data.n_features != self.n_features_in_:
            kind = {"classification": "classifier", "regression": "regressor"}[self.task]
            raise ValueError(f"{data.describe()} has {data.n_features} features, but this {kind} was fitted with "
                             f"{self.n_features_in_}")
        return data, (y if beside else data.y)

    def _fit(self, Xs, y, warm, callbacks, validation_data, rows, comm=None, sample_weight=None):
        train_rows = None if rows is None else self._check_rows(rows, Xs.shape[0])
        targets = self._fit_targets(y if train_rows is None else y[train_rows], warm)
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
            validation = (Xv, self._check_y(y_val, Xv.shape[0]), None, None)
        elif params["early_stopping"]:
            m = Xs.shape[0] if train_rows is None else train_rows.size
            kept, held = split_rows(m, params["validation_fraction"], seed)
            if train_rows is not None:
                kept, held = train_rows[kept], train_rows[held]
            train_rows = kept
            validation = (Xs, y[held], held, None)
        m_train = Xs.shape[0] if train_rows is None else train_rows.size
        params = self._check_params(m_train)
        if not warm:
            self._set_targets(targets)
        weights = self._sample_weights(y, sample_weight, len(y))
        if weights is not None and validation is not None and validation[2] is not None:
            validation = (*validation[:3], weights[validation[2]])  # the held-out rows' weights
        self._ready_engine(params, Xs, m_train, seed, warm)
        if isinstance(Xs, DiskDataset):
            n_out = self._layer(params, self._fitted_targets())[2]
            block = block_rows_for(params["memory"], Xs.n_features, n_out, Xs.dtype, self.engine_.mini_batch_size)
            feed = self._feed(Xs, y, block, train_rows, n_out)
            try:
                self._train(feed, None, params["max_iter"], None, validation, callbacks, comm=comm, weights=weights)
            finally:
                feed.close()
        else:
            self._train(Xs, self._targets(y, Xs.dtype), params["max_iter"], train_rows, validation, callbacks, comm=comm,
                        weights=weights)

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

    def _partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current state (``classes``: a classifier's first call's;
        ``sample_weight`` as ``fit``'s)."""
        warm = "engine_" in self.__dict__
        Xs = self._check_X(X, reset=not warm)
        y = self._check_y(y, Xs.shape[0])
        if not warm:
            self._set_targets(self._first_partial_targets(y, classes))
        self._ready_engine(self._check_params(), Xs, Xs.shape[0], None if warm else self._seed(), warm)
        # A batch larger than this call's samples is one full batch of them.
        batch = self.engine_.mini_batch_size
        if batch is not None and batch > Xs.shape[0]:
            self.engine_.mini_batch_size = Xs.shape[0]
        weights = self._sample_weights(y, sample_weight, Xs.shape[0])
        self._train(Xs, self._targets(y, Xs.dtype), 1, None, None, None, partial=True, weights=weights)
        return self

    def _train(self, Xs, Ys, epochs, rows, validation, callbacks, partial=False, comm=None, weights=None):
        """The epochs through the engine, with the monitors this fit asks for."""
        engine = self.engine_
        state = engine.state
        if not partial and not state.in_progress:
            # A new run; a checkpoint saved mid-run (in_progress) continues its record.
            state.reset_early_stopping()
        monitors = []
        if validation is not None:
            X_val, y_val, val_rows, val_weights = validation
            patience = self.n_iter_no_change if self.early_stopping else None
            labels, score = self._validation(y_val, val_weights)
            monitors.append(EarlyStopping(X_val, labels, val_rows, self.tol, patience, score))
        if self.verbose:
            monitors.append(PrintCosts())
        if callable(callbacks):
            callbacks = [callbacks]
        for callback in callbacks or ():
            monitors.append(Callback(callback, self))
        monitor = Monitors(monitors) if monitors else None
        engine.train(Xs, Ys, epochs, rows=rows, monitor=monitor, comm=comm, weights=weights)
        if self.early_stopping:
            EarlyStopping.keep_best(engine)

    # -- transfer learning -------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, source, keep_layers, freeze=True, **params):
        """A new estimator whose first ``keep_layers`` layers start as ``source``'s (frozen if ``freeze``);
        ``source`` may be a classifier or a regressor, whichever this one is.

        The layers after them, the output layer included, are initialised
        afresh for the new problem when ``fit`` is called; ``hidden_layer_sizes``
        must begin with source's first ``keep_layers`` widths.
        """
        L_src = len(source.parameters_) // 2
        keep = V.operator_index(keep_layers)
        if not 1 <= keep <= L_src - 1:
            raise ValueError(f"keep_layers must be in [1, {L_src - 1}] (the output layer is always replaced), got {keep}")
        names = cls.param_names()
        shared = {k: v for k, v in source.get_params().items() if k in names}
        params = {**shared, "warm_start": False, "frozen_layers": keep if freeze else 0, **params}
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
        dims = [n_features, *sizes, self._layer(params, self._fitted_targets())[2]]
        parameters = initialize_parameters(dims, params["init"], seed, Xs.dtype)
        for key, value in kept.items():
            parameters[key][...] = value
        return parameters

    # -- inference ---------------------------------------------------------------------------
    def _outputs_rows(self, Xs, rows=None):
        """The network's outputs (m, n_L) on X's rows (all, or ``rows``): probabilities, or a regressor's values."""
        net = self.network_
        return predict_proba_rows(self.parameters_, net["activation"], net["output"], Xs, rows, self.threads)

    def _inputs(self, X, y=None, labels=False):
        """X to predict on: a checked array, or a ``DiskDataset`` (X a path or one) read a block at a time;
        with ``labels``, (X, checked y) where a path's y may be None (its own labels)."""
        data, targets = self._disk_data(X, y if labels else None, require_labels=labels)
        if data is None:
            Xs = self._check_X(X)
            return (Xs, self._check_y(y, Xs.shape[0])) if labels else Xs
        if not labels:
            return data
        if targets is None:
            raise ValueError(f"{data.describe()} has no labels to score against")
        return data, self._check_y(targets, data.n_samples)

    def score(self, X, y, sample_weight=None, rows=None):
        """The score of the predictions on X against y (a classifier's mean accuracy, a regressor's R^2), with
        ``sample_weight`` weighted as scikit-learn weighs them; with ``rows`` (indices), on those rows of X and y
        only, gathered a block at a time (no copy of X). X may be a path to data on disk with y its labels (None:
        the file's own)."""
        self._state()
        Xs, y = self._inputs(X, y, labels=True)
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            w = np.full(len(y), float(w)) if w.ndim == 0 else w
            if w.shape != (len(y),) or not np.all(np.isfinite(w)) or np.any(w < 0) or not np.any(w > 0):
                raise ValueError(f"sample_weight must be {len(y)} finite non-negative numbers, not all 0")
        if rows is None:
            return self._score_outputs(self._outputs_rows(Xs), y, w)
        rows = self._check_rows(rows, Xs.shape[0])
        return self._score_outputs(self._outputs_rows(Xs, rows), y[rows], None if w is None else w[rows])

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
        saved one). Another estimator's file is refused (``fastdnn.load_model`` takes either)."""
        record = fio.read_model(path, cls.task)
        return cls(**record.options).restore(record)
