"""fastdnn: the course's L-layer network, trained as fast as a CPU allows.

The functions at the top level are the fast path (``pipeline.py`` for the
stages, ``training.py`` for whole runs over the one training engine,
``engine.py``, both backed by the compiled kernels in ``fastdnn.kernels``);
their plain-numpy twins with the same names live in ``fastdnn.reference``.
``DNNClassifier`` (``estimator.py``) trains through the same engine, and
``save_model``/``load_model`` (``io.py``) keep its models and checkpoints;
``sweep`` (``sweeps.py``) trains a grid of configurations in parallel.
"""

import importlib

# Imported on first use (PEP 562): ``import fastdnn`` and the command's start stay light (numpy, Numba and
# the compiled kernels load when a name that needs them is first used), and a Ctrl-C while they load
# reaches the command's handler instead of printing a traceback.
_EXPORTS = {
    **dict.fromkeys((
        "L_model_backward", "L_model_forward", "Parameters", "compute_cost", "initialize_adam", "initialize_parameters",
        "initialize_parameters_deep", "initialize_velocity", "predict", "predict_proba", "update_parameters",
        "update_parameters_with_adam", "update_parameters_with_momentum"), "fastdnn.pipeline"),
    **dict.fromkeys(("DNNClassifier", "NotFittedError", "cross_val_score"), "fastdnn.estimator"),
    **dict.fromkeys(("DivergenceError", "Engine", "TrainingState"), "fastdnn.engine"),
    **dict.fromkeys(("load_checkpoint", "load_model", "save_checkpoint", "save_model"), "fastdnn.io"),
    **dict.fromkeys(("L_layer_model", "model"), "fastdnn.training"),
    "sweep": "fastdnn.sweeps",
}


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fastdnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


__version__ = "0.1.0"

__all__ = [
    "DNNClassifier",
    "DivergenceError",
    "Engine",
    "TrainingState",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
    "save_model",
    "NotFittedError",
    "cross_val_score",
    "sweep",
    "L_layer_model",
    "L_model_backward",
    "L_model_forward",
    "Parameters",
    "compute_cost",
    "initialize_adam",
    "initialize_parameters",
    "initialize_parameters_deep",
    "initialize_velocity",
    "model",
    "predict",
    "predict_proba",
    "update_parameters",
    "update_parameters_with_adam",
    "update_parameters_with_momentum",
]
