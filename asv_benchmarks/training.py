"""Whole training runs: fastdnn.model on each workload, time and peak memory.

One call trains the workload's iteration count (common.ITERATIONS) from the
course's initialisation through ``fastdnn.bench.fastdnn_runner`` (the runner
``fastdnn bench`` and tools/compare.py time; it imposes the route gram="auto" takes
on a long run), so it includes what a run pays once (initialisation, input checks,
the Gram matrix when that route is taken) as users see it, threads chosen by
fastdnn's own policy. The compiled code is loaded
in setup, so it is not timed. The reference (numpy) on the seed is here too, as
the yardstick the fast path is measured against. The benchmarks keep their
``L_layer_model`` names so that asv's recorded history goes on: full-batch gradient
descent is what ``L_layer_model`` trains.
"""

from fastdnn import bench

try:
    from . import common
except ImportError:  # imported as a top-level module, with asv_benchmarks/ itself on sys.path
    import common


def _fastdnn_run(name):
    dims, _, dtype, iterations, gram = common.WORKLOADS[name]
    Xs, Ys = common.data(name)
    run, _ = bench.fastdnn_runner(Xs.T, Ys.T, dims, dtype, gram)
    return run


class TrainingRun:
    """fastdnn.model(X, Y, dims, num_epochs=N), full batch gd, for each workload."""

    params = list(common.WORKLOADS)
    param_names = ["workload"]
    timeout = 300

    def setup(self, name):
        common.limit_threads()
        self.run = _fastdnn_run(name)
        self.iterations = common.WORKLOADS[name][3]
        # Compile or load from the disk cache the route the timed run takes.
        self.run(min(10, self.iterations))

    def time_L_layer_model(self, name):
        self.run(self.iterations)

    def peakmem_L_layer_model(self, name):
        self.run(self.iterations)


class ReferenceRun:
    """fastdnn.reference.model on the seed (float64, the course's numpy), full batch gd."""

    timeout = 300

    def setup(self):
        common.limit_threads()
        dims, _, _, self.iterations, _ = common.WORKLOADS["seed"]
        Xs, Ys = common.data("seed")
        self.run = bench.reference_runner(Xs.T, Ys.T, dims)

    def time_reference_L_layer_model_seed(self):
        self.run(self.iterations)
