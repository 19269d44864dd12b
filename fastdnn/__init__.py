"""fastdnn: the course's L-layer network, trained as fast as a CPU allows.

The functions at the top level are the fast path (``pipeline.py`` for the
stages, ``training.py`` for whole runs over the one training engine,
``engine.py``, both backed by the compiled kernels in ``fastdnn.kernels``);
their plain-numpy twins with the same names live in ``fastdnn.reference``.
``DNNClassifier`` (``estimator.py``) trains through the same engine, and
``save_model``/``load_model`` (``io.py``) keep its models and checkpoints;
``sweep`` (``sweeps.py``) trains a grid of configurations in parallel.
"""

from fastdnn.pipeline import (
    L_model_backward,
    L_model_forward,
    Parameters,
    compute_cost,
    initialize_adam,
    initialize_parameters,
    initialize_parameters_deep,
    initialize_velocity,
    predict,
    predict_proba,
    update_parameters,
    update_parameters_with_adam,
    update_parameters_with_momentum,
)
from fastdnn.estimator import DNNClassifier, NotFittedError, cross_val_score
from fastdnn.engine import DivergenceError, Engine, TrainingState
from fastdnn.io import load_checkpoint, load_model, save_checkpoint, save_model
from fastdnn.training import L_layer_model, model
from fastdnn.sweeps import sweep

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
