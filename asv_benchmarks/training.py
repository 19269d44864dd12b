"""Whole training runs: fastdnn.L_layer_model on each workload, time and peak memory.

One call trains the workload's iteration count (common.WORKLOADS) from the
course's initialisation, so it includes what a run pays once (initialisation,
input checks, the Gram matrix when that route is taken) as users see it. The
compiled code is loaded in setup, so it is not timed. The reference (numpy)
on the seed is here too, as the yardstick the fast path is measured against.
"""

import inspect

from . import common

LEARNING_RATE = 0.0075


def _fastdnn_run(name):
    import fastdnn

    dims, _, dtype, iterations, gram = common.WORKLOADS[name]
    Xs, Ys = common.data(name)
    kwargs = {"dtype": dtype}
    # Older fastdnn had no gram option: the direct route was the only one.
    if "gram" in inspect.signature(fastdnn.L_layer_model).parameters:
        kwargs["gram"] = gram

    def run(n=iterations):
        if dims[-1] > 1:  # a softmax output: model() has the option, full batch gd as L_layer_model
            return fastdnn.model(Xs.T, Ys.T, dims, LEARNING_RATE, num_epochs=n, output="softmax", **kwargs)
        return fastdnn.L_layer_model(Xs.T, Ys.T, dims, LEARNING_RATE, num_iterations=n, **kwargs)

    return run


class TrainingRun:
    """fastdnn.L_layer_model(X, Y, dims, num_iterations=N) for each workload."""

    params = list(common.WORKLOADS)
    param_names = ["workload"]
    timeout = 300

    def setup(self, name):
        common.limit_threads()
        self.run = _fastdnn_run(name)
        # Compile or load from the disk cache the route the timed run takes
        # (the Gram route is chosen only from 10 iterations on).
        self.run(min(10, common.WORKLOADS[name][3]))

    def time_L_layer_model(self, name):
        self.run()

    def peakmem_L_layer_model(self, name):
        self.run()


class ReferenceRun:
    """fastdnn.reference.L_layer_model on the seed (float64, the course's numpy)."""

    timeout = 300

    def setup(self):
        common.limit_threads()
        from fastdnn import reference

        dims, _, _, self.iterations, _ = common.WORKLOADS["seed"]
        Xs, Ys = common.data("seed")
        self.run = lambda: reference.L_layer_model(Xs.T, Ys.T, dims, LEARNING_RATE, num_iterations=self.iterations)

    def time_reference_L_layer_model_seed(self):
        self.run()
