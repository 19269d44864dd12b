"""One run of a sweep (``fastdnn.sweeps``), in a worker process or in the sweep's own, and the processes
and temporary data that serve it.

A run is ``DNNClassifier(**fixed, **configuration, random_state=seed, threads=1).fit(X, y, rows=...)`` on
the arrays the sweep wrote to a temporary folder (``data_folder``), which each worker memory-maps
(``attach``): the page cache holds them once for every worker. The workers end with the sweep's process,
however it ends (``exit_with_parent``), and a folder that a killed sweep left is removed by the next sweep
(``remove_abandoned``)."""

import contextlib
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from fastdnn import options as O

TRAIN_SIZE = "train_size"

DATA = {}  # the sweep's arrays in this process, by name (X, y, X_test, y_test), while it runs


def subset(rows, size, order):
    """The first ``size`` (a fraction or a count) of ``rows`` in the seeded ``order``, sorted: the rows a
    run of ``train_size`` ``size`` trains on."""
    n = len(rows) if size is None else (max(2, round(size * len(rows))) if isinstance(size, float) else size)
    if n > len(rows):
        raise ValueError(f"train_size {size} is more than the {len(rows)} training examples")
    return np.sort(rows[order[:n]])


def write_data(folder, X, y, test):
    """The sweep's arrays as .npy files in ``folder`` (``attach`` maps them): X, y and the ``test`` pair."""
    np.save(os.path.join(folder, "X.npy"), np.ascontiguousarray(X))
    np.save(os.path.join(folder, "y.npy"), y)
    if test is not None:
        np.save(os.path.join(folder, "X_test.npy"), np.ascontiguousarray(np.asarray(test[0])))
        np.save(os.path.join(folder, "y_test.npy"), np.asarray(test[1]))


def attach(folder):
    """The sweep's arrays, memory-mapped from ``folder`` copy-on-write: the pages are the page cache's, shared
    by every worker, and nothing writes them (a read-only map would be copied whole by the estimator, which
    takes writeable arrays)."""
    for name in os.listdir(folder):
        if name.endswith(".npy"):
            DATA[name[:-4]] = np.load(os.path.join(folder, name), mmap_mode="c", allow_pickle=False)


def start_worker(parent, folder):
    """A worker's initializer: it ends with the sweep's process ``parent``, then attaches the data."""
    exit_with_parent(parent)
    attach(folder)


def exit_with_parent(parent):
    """End this process when ``parent`` (the sweep's process) ends, however it ends. A sweep killed by SIGKILL
    runs none of its clean-up: its workers would otherwise wait for tasks forever, holding the caller's
    stdout and stderr (a ``| tee`` or a ``capture_output`` never sees them close) and multiprocessing's
    resource tracker, which holds them too and ends only once every worker has.

    On Linux the kernel sends SIGKILL the moment the parent ends (PR_SET_PDEATHSIG), whatever the worker is
    doing; elsewhere a daemon thread polls for the parent (``watch_parent``). The check after it covers a
    parent that ended before either was in place: this process was then given to another parent already."""
    if not killed_with_parent():
        threading.Thread(target=watch_parent, args=(parent,), name="fastdnn-watch-parent", daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def killed_with_parent():
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


def watch_parent(parent, every=0.2):
    """Poll until this process's parent is no longer ``parent``, then end the process at once."""
    while os.getppid() == parent:
        time.sleep(every)
    os._exit(1)


def run_one(fixed, config, fold, train, held, seed):
    """Train ``config`` over ``fixed`` on rows ``train`` of the attached data; the scores, cost curve and time."""
    from fastdnn.estimator import DNNClassifier

    X, y = DATA["X"], DATA["y"]
    params = {**O.DEFAULTS, **fixed, **{k: v for k, v in config.items() if k != TRAIN_SIZE}, "random_state": seed,
              "threads": 1}
    rows = subset(train, config.get(TRAIN_SIZE), np.random.default_rng(seed + 1).permutation(len(train)))
    if isinstance(params["batch_size"], int) and params["batch_size"] > rows.size:
        params["batch_size"] = int(rows.size)  # a batch larger than the run's examples is all of them
    fit = {"rows": rows}
    if params["early_stopping"] and held is not None:
        fit["validation_data"] = (X[held], y[held])  # stops on the sweep's held-out rows, trains on all the rest
    est = DNNClassifier(**params)
    # The kernels this run calls loaded (or compiled) untimed; a few milliseconds once they are in memory.
    est.warm_up(X.shape[1], np.unique(y[rows]), X.dtype, m=rows.size)
    t0 = time.perf_counter()
    est.fit(X, y, **fit)
    seconds = time.perf_counter() - t0
    result = {"fold": fold, "train": est.score(X, y, rows=rows), "seconds": seconds, "examples": int(rows.size),
              "epochs": est.n_iter_, "curve": [float(c) for c in est.loss_curve_]}
    result["validation"] = est.score(X, y, rows=held) if held is not None and held.size else None
    result["test"] = est.score(DATA["X_test"], DATA["y_test"]) if "X_test" in DATA else None
    return result


def run_task(task):
    """(index, fold, result, error) of one task (index, fold, ``run_one``'s arguments)."""
    index, fold, args = task
    try:
        return index, fold, run_one(*args), None
    except Exception as exc:  # reported with its configuration; the sweep goes on
        return index, fold, None, str(exc) or type(exc).__name__


# ---------------------------------------------------------------------------- the data folder

DATA_PREFIX = "fastdnn-sweep-"  # the temporary folders of the sweeps' data, in tempfile.gettempdir()
DATA_LOCK = "lock"  # in each, locked (fcntl.flock) by the sweep that uses it, for as long as it lives


@contextlib.contextmanager
def data_folder():
    """A new temporary folder for the sweep's arrays, locked while the sweep lives and removed at its end.

    A sweep killed (SIGKILL, a power cut) cannot remove its folder, a whole copy of the data: the lock is
    released with the process however it ends, so every sweep first removes this user's folders whose lock
    is free (``remove_abandoned``)."""
    import fcntl

    remove_abandoned()
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


def remove_abandoned():
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
        # Removed before the lock is let go: a sweep that locks it afterwards finds it gone (see data_folder).
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


# ---------------------------------------------------------------------------- running the tasks


def in_this_process(tasks, folder, collect):
    """Run ``tasks`` one after another in this process, each result to ``collect``; the data let go at the
    end, however it ends."""
    attach(folder)
    try:
        for task in tasks:
            collect(*run_task(task))
    finally:
        DATA.clear()


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its run (killed, out of memory, or unable to start)."""


def in_workers(tasks, workers, folder, collect):
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
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker,
                                   initargs=(os.getpid(), folder))
        futures = [pool.submit(run_task, task) for task in tasks]
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
    return threading.current_thread() is threading.main_thread()
