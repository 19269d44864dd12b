"""Hyperparameter studies: a grid (or a seeded sample of it) of training runs in worker processes, compared
side by side.

The course names eleven hyperparameters; each is an option of the table (``fastdnn.options``) or the
amount of training data:

    learning rate          learning_rate (--lr)           epochs        max_iter (--epochs)
    regularisation         l2 (--l2)                      minibatch     batch_size (--batch-size)
    layers, units a layer  hidden_layer_sizes (--layers)  output        output (--output: sigmoid, softmax)
    cost function          loss (--loss)                  initialisation  init (--init)
    activation             activation (--activation)      training data train_size (--train-size)

Any other option of the table may be swept too (the optimizer, Adam's betas). ``train_size`` is a
fraction (0, 1] or a count of the training examples: the first that many of one seeded permutation, so
that larger sizes hold the smaller ones (a learning curve).

A run is ``DNNClassifier(**fixed, **configuration, random_state=seed, threads=1).fit(X, y, rows=...)``:
exactly what training that configuration alone computes, whichever worker runs it. Without ``folds``
each configuration trains once on the training rows less a held-out validation fraction (the rows
``fastdnn train`` holds out); with ``folds=k`` on each of the course's k folds (``cross_val_score``'s
folds), validated on the fold left out, and the scores are the folds' mean and spread. ``test`` data
are scored by every run.

Workers are processes (as many as usable cores, each training with one BLAS thread) that map one copy
of the data: the arrays are written once to a temporary folder and memory-mapped read-only by every
worker, so the page cache holds them once (a folder that a killed sweep left is removed by the next
sweep). The workers end with the sweep's process, however it ends. Each finished configuration is written
at once to the results (CSV, one row per configuration, and JSON with the cost curves), each file replaced
atomically; a sweep run again with the same results file skips the configurations it holds, and two
sweeps never write one results file at once.
"""

import contextlib
import csv
import hashlib
import io
import itertools
import json
import math
import os
import shutil
import statistics
import tempfile
import threading
import time

import numpy as np

from fastdnn import options as O

TRAIN_SIZE = "train_size"
# Options a sweep sets itself (the seed is the sweep's, one BLAS thread a worker) or that do not apply.
NOT_SWEPT = ("random_state", "threads", "memory", "warm_start", "verbose", "frozen_layers")
# Fixed for a whole sweep: they decide the rows every configuration is scored on.
FIXED_ONLY = ("validation_fraction",)
SCORES = {"validation": "validation_mean", "train": "train_mean", "test": "test_mean", "cost": "cost_mean",
          "time": "seconds_mean"}
COLUMNS = ("validation_mean", "validation_std", "train_mean", "train_std", "test_mean", "test_std", "cost_mean",
           "seconds_mean", "examples_per_s", "runs")


def sweepable():
    """The names a grid may hold: the table's options but those a sweep sets itself, and train_size."""
    return [o.name for o in O.OPTIONS if o.name not in NOT_SWEPT + FIXED_ONLY] + [TRAIN_SIZE]


def check_train_size(value, name=TRAIN_SIZE):
    """A fraction of the training examples in (0, 1] (1: all of them), or a count of them above 1 (a whole
    number): returned as a float or an int."""
    bad = ValueError(f"{name} must be a fraction in (0, 1] or a whole number of examples above 1, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise bad
    if not math.isfinite(value) or value <= 0 or (value > 1 and value != int(value)):
        raise bad
    return float(value) if value <= 1 else int(value)


def check_grid(grid):
    """{name: [values]} with every name sweepable and every value checked by its option's check."""
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must be a non-empty dict of hyperparameter -> list of values")
    names = sweepable()
    checked = {}
    for name, values in grid.items():
        if name in FIXED_ONLY:
            raise ValueError(f"{name} cannot be swept: it decides the held-out rows that every configuration is "
                             "scored on; give it one value")
        if name not in names:
            raise ValueError(f"{name!r} cannot be swept; the names are {', '.join(names)}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        values = list(values)
        if not values:
            raise ValueError(f"{name}: give at least one value")
        check = check_train_size if name == TRAIN_SIZE else O.BY_NAME[name].validate
        out = []
        for v in values:
            v = check(v, name) if name == TRAIN_SIZE else check(v)
            if v in out:
                raise ValueError(f"{name}: {v!r} is given twice")
            out.append(v)
        checked[name] = out
    return checked


def configurations(grid, sample=None, seed=0):
    """The grid's configurations (dicts) in grid order; ``sample``: that many of them, drawn without
    replacement by a generator seeded with ``seed``, in grid order."""
    names = list(grid)
    every = [dict(zip(names, values)) for values in itertools.product(*(grid[n] for n in names))]
    if sample is None:
        return every
    sample = O.V.check_positive(sample, "sample", integer=True)
    if sample >= len(every):
        return every
    keep = np.sort(np.random.default_rng(seed).choice(len(every), sample, replace=False))
    return [every[i] for i in keep]


def key_of(config):
    """A configuration's identity in the results: its values as canonical JSON."""
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in sorted(config.items())},
                      separators=(",", ":"))


def _subset(rows, size, order):
    """The first ``size`` (a fraction or a count) of ``rows`` in the seeded ``order``, sorted."""
    n = len(rows) if size is None else (max(2, round(size * len(rows))) if isinstance(size, float) else size)
    if n > len(rows):
        raise ValueError(f"train_size {size} is more than the {len(rows)} training examples")
    return np.sort(rows[order[:n]])


def plan(m, folds, validation_fraction, seed):
    """[(training rows, validation rows)] of m examples: the course's k folds (``cross_val_score``'s), or
    one split holding out ``validation_fraction`` (``fastdnn train``'s)."""
    from fastdnn.labels import split_rows

    from fastdnn.labels import k_folds

    if folds is not None:
        try:
            return [(np.sort(train), np.sort(held)) for train, held in k_folds(m, folds, seed)]
        except (TypeError, ValueError):
            raise ValueError(f"folds must be an integer between 2 and the {m} examples, got {folds!r}") from None
    return [split_rows(m, validation_fraction, seed)]


# ---------------------------------------------------------------------------- one run (in a worker)

_DATA = {}
_WARM = set()  # the option sets whose kernels this worker has loaded


def _attach(folder):
    """The sweep's arrays, memory-mapped from ``folder`` copy-on-write: the pages are the page cache's, shared
    by every worker, and nothing writes them (a read-only map would be copied whole by the estimator, which
    takes writeable arrays)."""
    for name in os.listdir(folder):
        if name.endswith(".npy"):
            _DATA[name[:-4]] = np.load(os.path.join(folder, name), mmap_mode="c", allow_pickle=False)


def _start_worker(parent, folder):
    """A worker's initializer: it ends with the sweep's process ``parent``, then attaches the data."""
    _exit_with_parent(parent)
    _attach(folder)


def _exit_with_parent(parent):
    """End this process when ``parent`` (the sweep's process) ends, however it ends. A sweep killed by SIGKILL
    runs none of its clean-up: its workers would otherwise wait for tasks forever, holding the caller's
    stdout and stderr (a ``| tee`` or a ``capture_output`` never sees them close) and multiprocessing's
    resource tracker, which holds them too and ends only once every worker has.

    On Linux the kernel sends SIGKILL the moment the parent ends (PR_SET_PDEATHSIG), whatever the worker is
    doing; elsewhere a daemon thread polls for the parent (``_watch_parent``). The check after it covers a
    parent that ended before either was in place: this process was then given to another parent already."""
    if not _killed_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), name="fastdnn-watch-parent", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _killed_with_parent():
    """Ask Linux to SIGKILL this process when its parent ends; False where that cannot be asked.

    The kernel ties it to the parent thread that started the process: the workers are started by the
    thread that runs the sweep (``ProcessPoolExecutor.submit``), which waits in the sweep until they end."""
    import sys

    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no C library to ask, or one without prctl
        return False


def _watch_parent(parent, every=0.2):
    """Poll until this process's parent is no longer ``parent``, then end the process at once."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def run_one(fixed, config, fold, train, held, seed):
    """Train ``config`` over ``fixed`` on rows ``train`` of the attached data; the scores, cost curve and time."""
    from fastdnn.estimator import DNNClassifier
    from fastdnn.routes import GRAM_MIN_EPOCHS, gram_applies, gram_pays

    X, y = _DATA["X"], _DATA["y"]
    params = {**O.DEFAULTS, **fixed, **{k: v for k, v in config.items() if k != TRAIN_SIZE}, "random_state": seed,
              "threads": 1}
    rows = _subset(train, config.get(TRAIN_SIZE), np.random.default_rng(seed + 1).permutation(len(train)))
    if isinstance(params["batch_size"], int) and params["batch_size"] > rows.size:
        params["batch_size"] = int(rows.size)  # a batch larger than the run's examples is all of them
    fit = {"rows": rows}
    if params["early_stopping"] and held is not None:
        fit["validation_data"] = (X[held], y[held])  # stops on the sweep's held-out rows, trains on all the rest
    # What decides the kernels a run loads (or compiles): its options and the route it takes.
    gram = gram_applies(params["batch_size"], params["optimizer"], params["frozen_layers"]) and gram_pays(
        (rows.size, X.shape[1]), params["max_iter"])
    kernels = (params["activation"], params["loss"], params["output"], params["optimizer"], str(params["dtype"]),
               params["batch_size"] is None, bool(params["l2"]), gram)
    if kernels not in _WARM:
        # A worker's first run of these loads or compiles them: untimed, the same fit for at most
        # GRAM_MIN_EPOCHS epochs.
        DNNClassifier(**{**params, "max_iter": min(params["max_iter"], GRAM_MIN_EPOCHS)}).fit(X, y, **fit)
        _WARM.add(kernels)
    est = DNNClassifier(**params)
    t0 = time.perf_counter()
    est.fit(X, y, **fit)
    seconds = time.perf_counter() - t0
    result = {"fold": fold, "train": est.score(X, y, rows=rows), "seconds": seconds, "examples": int(rows.size),
              "epochs": est.n_iter_, "curve": [float(c) for c in est.loss_curve_]}
    result["validation"] = est.score(X, y, rows=held) if held is not None and held.size else None
    result["test"] = est.score(_DATA["X_test"], _DATA["y_test"]) if "X_test" in _DATA else None
    return result


def _run_task(task):
    index, fold, args = task
    try:
        return index, fold, run_one(*args), None
    except Exception as exc:  # reported with its configuration; the sweep goes on
        return index, fold, None, str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------- results


def summarise(config, runs):
    """One configuration's row: its values, then the mean and spread of each score over its runs (folds)."""
    row = {"configuration": key_of(config)}
    for name in ("validation", "train", "test"):
        values = [r[name] for r in runs if r[name] is not None]
        row[f"{name}_mean"] = statistics.fmean(values) if values else None
        row[f"{name}_std"] = statistics.pstdev(values) if len(values) > 1 else (0.0 if values else None)
    row["cost_mean"] = statistics.fmean(r["curve"][-1] for r in runs)
    row["seconds_mean"] = statistics.fmean(r["seconds"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    row["examples_per_s"] = sum(r["examples"] * r["epochs"] for r in runs) / seconds if seconds > 0 else None
    row["runs"] = len(runs)
    return row


class Results:
    """A sweep's results: ``rows`` (one dict a configuration: its hyperparameters, ``COLUMNS``, its key
    ``configuration`` and ``error``, the message of a configuration that failed, else None), ``curves``
    (configuration key -> each run's cost curve), ``names`` (the swept hyperparameters) and ``setup``
    (what else decides the numbers: a results file holding another setup is not continued)."""

    def __init__(self, names, setup, rows=None, curves=None):
        self.names, self.setup = list(names), setup
        self.rows, self.curves = rows or [], curves or {}

    @property
    def failed(self):
        """{configuration key: error} of the configurations that failed."""
        return {r["configuration"]: r["error"] for r in self.rows if r.get("error")}

    def done(self):
        """The keys of the configurations that trained (a failed one is tried again)."""
        return {r["configuration"] for r in self.rows if not r.get("error")}

    def _replace(self, row):
        self.rows = [r for r in self.rows if r["configuration"] != row["configuration"]] + [row]

    def add(self, config, runs):
        row = {**{n: config.get(n) for n in self.names}, **summarise(config, runs), "error": None}
        self._replace(row)
        self.curves[row["configuration"]] = [r["curve"] for r in runs]
        return row

    def add_failure(self, config, error):
        row = {**{n: config.get(n) for n in self.names}, **dict.fromkeys(COLUMNS), "configuration": key_of(config),
               "error": error}
        self._replace(row)
        return row

    def sorted(self, by="validation"):
        column = SCORES[by]
        sign = 1 if by in ("cost", "time") else -1
        present = [r for r in self.rows if r[column] is not None]
        return sorted(present, key=lambda r: sign * r[column]) + [r for r in self.rows if r[column] is None]

    def table(self, by="validation", limit=None):
        """The rows sorted by a score, as aligned text (a failed configuration: its error)."""
        rows = self.sorted(by)[:limit]
        head = [*self.names, "validation", "train", "test", "cost", "s/run", "examples/s"]
        lines = [head]
        for r in rows:
            values = [_text(r[n]) for n in self.names]
            if r.get("error"):
                lines.append(values + [f"failed: {r['error']}"])
                continue
            lines.append(values + [
                _pm(r["validation_mean"], r["validation_std"]), _pm(r["train_mean"], r["train_std"]),
                _pm(r["test_mean"], r["test_std"]), f"{r['cost_mean']:.4g}", f"{r['seconds_mean']:.2f}",
                "-" if r["examples_per_s"] is None else f"{r['examples_per_s']:,.0f}"])
        widths = [max(len(line[i]) if i < len(line) else 0 for line in lines) for i in range(len(head))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines)

    def csv_text(self):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*self.names, *COLUMNS, "error", "configuration", "setup"])
        for r in self.rows:
            writer.writerow([_text(r[n]) for n in self.names] + ["" if r[c] is None else repr(r[c]) if isinstance(
                r[c], float) else r[c] for c in COLUMNS] + [r.get("error") or "", r["configuration"], self.setup])
        return out.getvalue()

    def json_text(self, curves=True):
        doc = {"setup": self.setup, "names": self.names,
               "rows": [{k: list(v) if isinstance(v, tuple) else v for k, v in r.items()} for r in self.rows]}
        if curves:
            doc["curves"] = self.curves
        return json.dumps(doc)

    def write(self, path, final=True):
        """The CSV at ``path`` and the JSON beside it (``json_path``), each replaced atomically. While the
        sweep runs (``final`` False) the JSON holds the rows only and each configuration's curves are
        appended to ``curves_path`` (``append_curves``), so that a write costs the rows, not every curve."""
        from fastdnn.io import atomic_write

        atomic_write(path, lambda f: f.write(self.csv_text().encode()))
        atomic_write(json_path(path), lambda f: f.write(self.json_text(curves=final).encode()))
        if final and os.path.exists(curves_path(path)):
            os.remove(curves_path(path))

    def append_curves(self, path, key):
        """One configuration's curves as one line of ``curves_path`` (written whole, then synced)."""
        line = (json.dumps([key, self.curves[key]]) + "\n").encode()
        target = curves_path(path)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            if exc.filename is not None:
                raise
            raise OSError(exc.errno, exc.strerror or str(exc), target) from None

    @classmethod
    def read(cls, path, names, setup):
        """The results a previous run of this sweep wrote at ``path`` (None if there are none); DataError if
        they are another sweep's, or if the JSON beside ``path`` is not a sweep's."""
        from fastdnn.data import DataError

        beside = json_path(path)
        if not os.path.exists(path):
            if os.path.exists(beside):
                raise DataError(beside, f"exists without {os.path.basename(path)}, and a sweep's results would replace "
                                        "it; choose another --out or remove it")
            return None
        try:
            with open(beside) as f:
                saved = json.load(f)
            stored = saved["setup"], saved["names"]
            rows, curves = saved["rows"], saved.get("curves", {})
            if not isinstance(rows, list) or not isinstance(curves, dict):
                raise TypeError
            for r in rows:
                if not isinstance(r, dict) or not {"configuration", "error", *COLUMNS} <= set(r):
                    raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(path, f"holds results whose {os.path.basename(beside)} is missing or not a sweep's; "
                                  "choose another --out or remove both to start afresh") from None
        if stored != (setup, list(names)):
            raise DataError(path, "holds another sweep's results (other data, hyperparameters or fixed options); "
                                  "choose another --out or remove it to start afresh")
        for r in rows:
            if "hidden_layer_sizes" in r and isinstance(r["hidden_layer_sizes"], list):
                r["hidden_layer_sizes"] = tuple(r["hidden_layer_sizes"])
        if os.path.exists(curves_path(path)):
            with open(curves_path(path), "rb") as f:
                for line in f:
                    try:
                        key, runs = json.loads(line)
                    except ValueError:
                        break  # a line cut short by a crash: its configuration is in no row either
                    curves[key] = runs
        done = {r["configuration"] for r in rows if not r["error"]}
        # A configuration counts as done only with its curves.
        rows = [r for r in rows if r["error"] or r["configuration"] in curves]
        return cls(names, setup, rows, {k: v for k, v in curves.items() if k in done})


def json_path(path):
    """The JSON results beside the CSV ``path``: the same name with .json."""
    root, ext = os.path.splitext(os.fspath(path))
    return root + ".json" if ext.lower() != ".json" else root + ".results.json"


def curves_path(path):
    """Where a running sweep appends its configurations' cost curves (merged into the JSON at its end)."""
    return json_path(path)[: -len(".json")] + ".curves.jsonl"


class _Held(threading.local):
    """The results (absolute paths) that this thread's sweeps hold (``results_lock``)."""

    def __init__(self):
        self.paths = set()


_HELD = _Held()


@contextlib.contextmanager
def results_lock(out):
    """Held while a sweep may write the results ``out`` and the JSON beside it: another sweep (or any fastdnn
    run) given either file is refused at its start, instead of both succeeding with one's rows lost. The
    command takes it before loading the data and its ``sweep`` call takes it again: held by this thread
    already, it is not taken twice; another thread of this process is refused like another process."""
    from fastdnn.cli.common import OutputLock

    key = os.path.abspath(out)
    if key in _HELD.paths:
        yield
        return
    with OutputLock(out, "results file"), OutputLock(json_path(out), "results file"):
        _HELD.paths.add(key)
        try:
            yield
        finally:
            _HELD.paths.discard(key)


def _text(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    return "full" if value is None else str(value)


def _pm(mean, std):
    if mean is None:
        return "-"
    return f"{mean:.4f}" + (f" ±{std:.4f}" if std else "")


# ---------------------------------------------------------------------------- the sweep


def sweep(X, y, grid, *, fixed=None, test=None, folds=None, sample=None, seed=0, workers=None, out=None,
          progress=None, on_result=None):
    """Train every configuration of ``grid`` (``check_grid``; ``sample`` draws that many) on (X, y) and
    return the ``Results``.

    fixed : the other options (``DNNClassifier``'s names; default its defaults).
    test : (X_test, y_test) scored by every run.
    folds : k for the course's k-fold cross-validation; None holds out ``validation_fraction``.
    workers : processes (default: the usable cores, at most the runs); 1 trains in this process.
    out : a results path (CSV, with JSON beside it) written as configurations finish; one holding some
        of this sweep's configurations is continued (they are skipped). Locked while the sweep runs
        (``results_lock``): another sweep given the same file is refused.
    progress : a callable(done, total) after each run; on_result : a callable(row) after each configuration.
    """
    from fastdnn.estimator import DNNClassifier
    from fastdnn.threads import usable_cores

    grid = check_grid(grid)
    fixed = dict(fixed or {})
    unknown = sorted(set(fixed) - set(DNNClassifier.param_names()))
    if unknown:
        raise ValueError(f"unknown options: {', '.join(unknown)}")
    fixed = {k: v for k, v in fixed.items() if k not in grid and k not in NOT_SWEPT}
    fixed = {k: v for k, v in O.check({**O.DEFAULTS, **fixed}).items() if k in fixed}
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (n_samples, n_features) and y (n_samples,), got {X.shape} and {y.shape}")
    n_classes = len(np.unique(y))
    if n_classes > 2 and "sigmoid" in grid.get("output", [fixed.get("output")]):
        raise ValueError(f"output='sigmoid' is one unit, which encodes two classes; these labels have {n_classes}")
    configs = configurations(grid, sample, seed)
    splits = plan(X.shape[0], folds, fixed.get("validation_fraction", O.DEFAULTS["validation_fraction"]), seed)
    for size in grid.get(TRAIN_SIZE, []):  # a count larger than the training rows, refused before any work
        _subset(splits[0][0], size, np.arange(len(splits[0][0])))
    setup = _setup(X, y, test, fixed, folds, seed, sample, grid)
    # Held from reading the results to their last write: a second sweep given them is refused.
    with results_lock(out) if out is not None else contextlib.nullcontext():
        results = Results(grid, setup)
        if out is not None:
            results = Results.read(out, grid, setup) or results
        done = results.done()
        todo = [(i, c) for i, c in enumerate(configs) if key_of(c) not in done]
        tasks = [(i, f, (fixed, c, f, tr, held, seed)) for i, c in todo for f, (tr, held) in enumerate(splits)]
        workers = min(usable_cores() if workers is None else O.V.check_positive(workers, "workers", integer=True),
                      max(1, len(tasks)))
        runs, failed = {}, set()
        finished = 0

        def collect(index, fold, result, error):
            nonlocal finished
            finished += 1
            if progress is not None:
                progress(finished, len(tasks))
            config = configs[index]
            if index in failed:
                return
            if error is not None:
                failed.add(index)
                row = results.add_failure(config, error)
            else:
                runs.setdefault(index, {})[fold] = result
                if len(runs[index]) < len(splits):
                    return
                got = runs.pop(index)
                row = results.add(config, [got[f] for f in range(len(splits))])
                if out is not None:
                    results.append_curves(out, row["configuration"])
            if out is not None:
                results.write(out, final=False)
            if on_result is not None:
                on_result(row)

        with _data_folder() as folder:
            np.save(os.path.join(folder, "X.npy"), np.ascontiguousarray(X))
            np.save(os.path.join(folder, "y.npy"), y)
            if test is not None:
                np.save(os.path.join(folder, "X_test.npy"), np.ascontiguousarray(np.asarray(test[0])))
                np.save(os.path.join(folder, "y_test.npy"), np.asarray(test[1]))
            if workers == 1:
                _attach(folder)
                try:
                    for task in tasks:
                        collect(*_run_task(task))
                finally:
                    _DATA.clear()
            else:
                _in_workers(tasks, workers, folder, collect)
            if out is not None:
                results.write(out)
    order = {key_of(c): i for i, c in enumerate(configs)}
    results.rows.sort(key=lambda r: order.get(r["configuration"], math.inf))
    return results


DATA_PREFIX = "fastdnn-sweep-"  # the temporary folders of the sweeps' data, in tempfile.gettempdir()
DATA_LOCK = "lock"  # in each, locked (fcntl.flock) by the sweep that uses it, for as long as it lives


@contextlib.contextmanager
def _data_folder():
    """A new temporary folder for the sweep's arrays, locked while the sweep lives and removed at its end.

    A sweep killed (SIGKILL, a power cut) cannot remove its folder, a whole copy of the data: the lock is
    released with the process however it ends, so every sweep first removes this user's folders whose lock
    is free (``_remove_abandoned``)."""
    import fcntl

    _remove_abandoned()
    for _ in range(100):
        folder = tempfile.mkdtemp(prefix=DATA_PREFIX)
        lock = os.path.join(folder, DATA_LOCK)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ours = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except (BlockingIOError, FileNotFoundError):
            ours = False
        if ours:
            break
        # Another sweep, starting, took the folder for abandoned between our making and our locking it
        # (it holds the lock, or removed the folder already): a new one.
        os.close(fd)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        raise OSError(f"could not lock a temporary folder for the sweep's data in {tempfile.gettempdir()}")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def _remove_abandoned():
    """Remove the sweeps' data folders in ``tempfile.gettempdir()`` that belong to this user and whose lock no
    live sweep holds. A folder without a lock is kept: a sweep is between making and locking it."""
    import fcntl
    import stat

    root = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(root) if n.startswith(DATA_PREFIX)]
    except OSError:
        return
    for name in names:
        folder = os.path.join(root, name)
        try:
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue
            fd = os.open(os.path.join(folder, DATA_LOCK), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        # Removed before the lock is let go: a sweep that locks it afterwards finds it gone (see _data_folder).
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its run (killed, out of memory, or unable to start)."""


def _in_workers(tasks, workers, folder, collect):
    """Run ``tasks`` in ``workers`` spawned processes, each result to ``collect`` as it comes. A worker that
    dies raises WorkerDied; an interrupt ends every worker before it goes up."""
    import multiprocessing
    import signal
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # no fork of BLAS threads or compiled state
    # The workers start with Ctrl-C ignored (spawned processes keep an ignored signal), so that it is the
    # sweep's alone: the sweep stops them and keeps what finished.
    # (ProcessPoolExecutor starts its processes as tasks are submitted, up to ``workers``.)
    others = set(multiprocessing.active_children())  # the caller's own processes, not the pool's
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main_thread() else None
    try:
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                                   initargs=(os.getpid(), folder))
        futures = [pool.submit(_run_task, task) for task in tasks]
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        for future in as_completed(futures):
            collect(*future.result())
    except BrokenProcessPool:
        raise WorkerDied("a worker process ended without finishing its run (killed, out of memory, or unable to "
                         "start: from a script, call fastdnn.sweep under if __name__ == \"__main__\":)") from None
    finally:
        for future in futures:
            future.cancel()
        for child in set(multiprocessing.active_children()) - others:  # the pool's workers: ended, not waited for
            child.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _main_thread():
    import threading

    return threading.current_thread() is threading.main_thread()


def _setup(X, y, test, fixed, folds, seed, sample, grid):
    """A short hash of what, besides a configuration, decides its numbers."""
    from fastdnn.data import fingerprint

    h = hashlib.blake2b(digest_size=8)
    h.update(fingerprint(X, y).encode())
    if test is not None:
        h.update(fingerprint(np.asarray(test[0]), np.asarray(test[1])).encode())
    h.update(json.dumps([sorted((k, repr(v)) for k, v in fixed.items()), folds, seed, sample,
                         sorted((k, repr(v)) for k, v in grid.items())]).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------- plots


def plot(results, folder):
    """PNGs in ``folder``: every configuration's cost curve overlaid (costs.png), and for each swept
    hyperparameter its effect on accuracy and on time per run, averaged over the other hyperparameters
    (effect-NAME.png; for train_size, the learning curve). Returns the paths written."""
    # Figures drawn on their own Agg canvas: pyplot would pick (or, through matplotlib.use, change) the
    # program's backend, which belongs to the caller.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def figure(figsize, rows=1, columns=1):
        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)
        return fig, fig.subplots(rows, columns)

    from fastdnn.io import atomic_write

    os.makedirs(folder, exist_ok=True)
    paths = []

    def save(fig, name):
        path = os.path.join(folder, name)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
        paths.append(path)

    trained = [r for r in results.rows if not r.get("error")]
    if not trained:
        return paths
    fig, ax = figure((8, 5))
    for row in trained:
        curves = results.curves[row["configuration"]]
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        ax.plot(np.arange(1, length + 1), mean, lw=1, label=", ".join(f"{n}={_text(row[n])}" for n in results.names))
    ax.set(xlabel="epoch", ylabel="cost", title=f"cost curves of {len(trained)} configurations", yscale="log")
    if len(trained) <= 12:
        ax.legend(fontsize=7)
    save(fig, "costs.png")

    for name in results.names:
        values = []
        for row in trained:
            if row[name] not in values:
                values.append(row[name])
        # Numbers on a numeric axis; fractions and counts of examples mixed are not one scale.
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) and not (
            name == TRAIN_SIZE and len({type(v) for v in values}) > 1)
        if numeric:
            values.sort()
        x = np.array(values, float) if numeric else np.arange(len(values))
        fig, (acc, tim) = figure((11, 4.2), 1, 2)
        for score, style in (("train", "--"), ("validation", "-o"), ("test", "-s")):
            means, lows, highs = [], [], []
            for v in values:
                got = [r[f"{score}_mean"] for r in trained if r[name] == v and r[f"{score}_mean"] is not None]
                means.append(np.mean(got) if got else np.nan)
                lows.append(np.min(got) if got else np.nan)
                highs.append(np.max(got) if got else np.nan)
            if not np.all(np.isnan(means)):
                means = np.array(means)
                acc.errorbar(x, means, yerr=[means - np.array(lows), np.array(highs) - means], fmt=style, capsize=3,
                             label=score)
        seconds = [np.mean([r["seconds_mean"] for r in trained if r[name] == v]) for v in values]
        tim.plot(x, seconds, "-o")
        for ax in (acc, tim):
            if not numeric:
                ax.set_xticks(x, [_text(v) for v in values])
            elif name in ("learning_rate", "l2") and min(values) > 0:
                ax.set_xscale("log")
            ax.set_xlabel(name + (" (fraction or count of the training examples)" if name == TRAIN_SIZE else ""))
        tim.set_ylim(bottom=0)
        acc.set(ylabel="accuracy: mean over the other values (bars: range)",
                title="learning curve" if name == TRAIN_SIZE else f"{name}: accuracy")
        if acc.get_legend_handles_labels()[0]:
            acc.legend(fontsize=8)
        tim.set(ylabel="seconds per run", title=f"{name}: training time")
        save(fig, f"effect-{name}.png")
    return paths
