"""Hyperparameter studies: a grid (or a seeded sample of it) of training runs in worker processes, compared
side by side.

The course names eleven hyperparameters; each is an option of the table (``fastdnn.options``) or the
amount of training data:

    learning rate          learning_rate (--lr)           epochs        max_iter (--epochs)
    regularisation         l2 (--l2)                      minibatch     batch_size (--batch-size)
    layers, units a layer  hidden_layer_sizes (--layers)  output        output (--output: sigmoid, softmax)
    cost function          loss (--loss)                  initialisation  init (--init)
    activation             activation (--activation)      training data train_size (--train-size)

Any other option of the table may be swept too (the optimizer, Adam's betas, the learning-rate schedule: one
text a value, ``lr_schedule=["constant", "step:20:0.5"]``, ``--lr-schedule constant step:20:0.5``; dropout's
keep_prob, ``keep_prob=[1, 0.8, 0.5]``, ``--keep-prob 1,0.8,0.5``, a value of one per hidden layer written
``0.9:0.8`` on the command line: ``--keep-prob 0.9,0.8 --l2 0,0.7`` with ``--layers 20,7,5`` is the course's
regularisation study). ``train_size`` is a
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
sweep). The workers end with the sweep's process, however it ends (``fastdnn.sweep_workers``: one run and
the processes that serve it; ``fastdnn.sweep_plots``: the plots). Each finished configuration is written
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
import statistics
import threading

import numpy as np

from fastdnn import options as O
from fastdnn.labels import k_folds, split_rows
from fastdnn.sweep_workers import TRAIN_SIZE, data_folder, in_this_process, in_workers, subset, write_data

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


def plan(m, folds, validation_fraction, seed):
    """[(training rows, validation rows)] of m examples: the course's k folds (``cross_val_score``'s), or
    one split holding out ``validation_fraction`` (``fastdnn train``'s)."""
    if folds is not None:
        try:
            return [(np.sort(train), np.sort(held)) for train, held in k_folds(m, folds, seed)]
        except (TypeError, ValueError):
            raise ValueError(f"folds must be an integer between 2 and the {m} examples, got {folds!r}") from None
    return [split_rows(m, validation_fraction, seed)]


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
            values = [value_text(r[n]) for n in self.names]
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
            writer.writerow([value_text(r[n]) for n in self.names] + ["" if r[c] is None else repr(r[c]) if isinstance(
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
        from fastdnn.files import atomic_write

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
        from fastdnn.errors import DataError

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
        curves.update(_appended_curves(path))
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


def _appended_curves(path):
    """{configuration key: curves} that a sweep of the results ``path`` appended to ``curves_path``
    (``Results.append_curves``) and has not merged yet; none where it has."""
    curves = {}
    if os.path.exists(curves_path(path)):
        with open(curves_path(path), "rb") as f:
            for line in f:
                try:
                    key, runs = json.loads(line)
                except ValueError:
                    break  # a line cut short by a crash: its configuration is in no row either
                curves[key] = runs
    return curves


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
    from fastdnn.files import OutputLock

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


def value_text(value):
    """A hyperparameter's value as the table, the CSV and the plots show it."""
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

    A worker process that dies raises ``fastdnn.sweep_workers.WorkerDied``.
    """
    grid, fixed, X, y = _checked(X, y, grid, fixed)
    configs, splits = _planned(grid, fixed, X.shape[0], folds, sample, seed)
    setup = _setup(X, y, test, fixed, folds, seed, sample, grid)
    # Held from reading the results to their last write: a second sweep given them is refused.
    with results_lock(out) if out is not None else contextlib.nullcontext():
        results = Results(grid, setup)
        if out is not None:
            results = Results.read(out, grid, setup) or results
        done = results.done()
        todo = [(i, c) for i, c in enumerate(configs) if key_of(c) not in done]
        tasks = [(i, f, (fixed, c, f, tr, held, seed)) for i, c in todo for f, (tr, held) in enumerate(splits)]
        workers = _worker_count(workers, len(tasks))
        collect = _Collector(results, configs, len(splits), len(tasks), out, progress, on_result)
        with data_folder() as folder:
            write_data(folder, X, y, test)
            if workers == 1:
                in_this_process(tasks, folder, collect)
            else:
                in_workers(tasks, workers, folder, collect)
            if out is not None:
                results.write(out)
    order = {key_of(c): i for i, c in enumerate(configs)}
    results.rows.sort(key=lambda r: order.get(r["configuration"], math.inf))
    return results


def _checked(X, y, grid, fixed):
    """(grid, fixed, X, y) checked: the grid's names and values, the fixed options (those the grid sweeps or
    a sweep sets itself dropped), the data's shapes and an output that can encode its classes."""
    from fastdnn.estimator import DNNClassifier

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
    return grid, fixed, X, y


def _planned(grid, fixed, m, folds, sample, seed):
    """(configurations, splits) of a sweep over m examples; a train_size count larger than the training rows
    is refused here, before any work."""
    configs = configurations(grid, sample, seed)
    splits = plan(m, folds, fixed.get("validation_fraction", O.DEFAULTS["validation_fraction"]), seed)
    for size in grid.get(TRAIN_SIZE, []):
        subset(splits[0][0], size, np.arange(len(splits[0][0])))
    return configs, splits


def _worker_count(workers, tasks):
    """The processes for ``tasks`` runs: ``workers`` (default the usable cores), at most one a run."""
    from fastdnn.threads import usable_cores

    return min(usable_cores() if workers is None else O.V.check_positive(workers, "workers", integer=True),
               max(1, tasks))


class _Collector:
    """Called with each run's (index, fold, result, error) as it finishes: ``progress`` after every run; a
    configuration's row once all its runs (one a split) are in, or at its first failed run (its other runs
    then ignored), written to ``out`` and given to ``on_result``."""

    def __init__(self, results, configs, splits, tasks, out, progress, on_result):
        self.results, self.configs, self.splits, self.tasks = results, configs, splits, tasks
        self.out, self.progress, self.on_result = out, progress, on_result
        self.runs, self.failed, self.finished = {}, set(), 0

    def __call__(self, index, fold, result, error):
        self.finished += 1
        if self.progress is not None:
            self.progress(self.finished, self.tasks)
        if index in self.failed:
            return
        config = self.configs[index]
        if error is not None:
            self.failed.add(index)
            row = self.results.add_failure(config, error)
        else:
            self.runs.setdefault(index, {})[fold] = result
            if len(self.runs[index]) < self.splits:
                return
            got = self.runs.pop(index)
            row = self.results.add(config, [got[f] for f in range(self.splits)])
            if self.out is not None:
                self.results.append_curves(self.out, row["configuration"])
        if self.out is not None:
            self.results.write(self.out, final=False)
        if self.on_result is not None:
            self.on_result(row)


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
