"""fastdnn: the course's L-layer network, trained as fast as a CPU allows.

The functions at the top level are the fast path (``fastdnn/pipeline.py``,
backed by the compiled kernels in ``fastdnn.kernels``); their plain-numpy twins
with the same names live in ``fastdnn.reference``.
"""

from fastdnn.pipeline import (
    L_layer_model,
    L_model_backward,
    L_model_forward,
    Parameters,
    compute_cost,
    initialize_parameters_deep,
    predict,
    predict_proba,
    update_parameters,
)

__version__ = "0.1.0"

__all__ = [
    "L_layer_model",
    "L_model_backward",
    "L_model_forward",
    "Parameters",
    "compute_cost",
    "initialize_parameters_deep",
    "predict",
    "predict_proba",
    "update_parameters",
]
