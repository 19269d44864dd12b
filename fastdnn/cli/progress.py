"""What ``fastdnn train`` shows and keeps while it trains: a progress bar and checkpoints, both callbacks of
the estimator's ``fit``, and the library's compile notices."""

import logging
import sys
from concurrent.futures import ThreadPoolExecutor

from fastdnn.cli.common import say


class ProgressBar:
    """A callback: tqdm's bar over the epochs, with the cost, the learning rate the last epoch trained at
    (the schedule's), examples/s and validation accuracy; called at the engine's pace (``every = None``), so it
    never shortens the compiled calls."""

    every = None

    def __init__(self, target, done, examples, quiet, metric="accuracy"):
        self.target, self.examples, self.bar, self.metric = target, examples, None, metric
        if not quiet:
            from tqdm import tqdm

            # Into a log rather than a terminal, every refresh is kept: refresh rarely there.
            refresh = 0.2 if sys.stderr.isatty() else 10.0
            self.bar = tqdm(total=target, initial=min(done, target), file=sys.stderr, unit="epoch", dynamic_ncols=True,
                            mininterval=refresh, bar_format="epoch {n_fmt}/{total_fmt} |{bar}| [{elapsed}<{remaining}] {desc}")

    def __call__(self, info):
        if self.bar is None:
            return False
        status = (f"cost {info.cost:.4f}, lr {info.learning_rate:.3g}, "
                  f"{self.examples * len(info.costs) / max(info.seconds, 1e-9):,.0f} examples/s")
        if info.validation_score is not None:
            status += f", validation {self.metric} {info.validation_score:.4f}"
        self.bar.set_description_str(status, refresh=False)
        self.bar.update(len(info.costs))
        return False

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Checkpointer:
    """A callback: a checkpoint every ``every`` epochs (mid-run: the engine's whole state, so a resumed
    run goes on bit for bit).

    Also called at the run's last epoch (the end, an early stop, the last finite epoch before a
    divergence), so the last checkpoint is mid-run state: extending a finished run with --resume and a
    larger --epochs goes on exactly. The arrays are copied on the training thread and written
    (atomically, fsynced) on a second thread while training goes on; one write at a time, so each
    checkpoint replaces an older one.
    ``wait`` finishes the write in flight (and raises its error, if any); ``arrays(seconds)`` gives what
    to write, ``seconds`` of training into this part of the run.
    """

    def __init__(self, every, arrays, path):
        self.every, self.arrays, self.path = every, arrays, path
        self.last, self.seconds, self.pending = None, 0.0, None
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fastdnn-checkpoint")

    def __call__(self, info):
        from fastdnn.io import write_archive

        self.seconds += info.seconds
        arrays = self.arrays(self.seconds)
        self.wait()
        self.pending = (info.epoch, self.writer.submit(write_archive, self.path, arrays))
        return False

    def wait(self):
        if self.pending is not None:
            epoch, future = self.pending
            self.pending = None
            future.result()
            self.last = epoch

    def write_now(self):
        """A checkpoint of the state now, written on this thread once the write in flight is done: for a run
        stopped between two of its checkpoints."""
        from fastdnn.io import write_archive

        self.wait()
        write_archive(self.path, self.arrays(self.seconds))


class CompileNotes:
    """While active, the library's compile notices (INFO on the "fastdnn" logger) are printed."""

    def __init__(self):
        class Say(logging.Handler):
            def emit(self, record):
                say(record.getMessage())

        self.logger, self.handler = logging.getLogger("fastdnn"), Say()

    def __enter__(self):
        self.level = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)
