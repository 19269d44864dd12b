"""fastdnn: the course's L-layer network, trained as fast as a CPU allows.

The functions at the top level are the fast path (``pipeline.py`` for the
stages, ``training.py`` for whole runs over the one training engine,
``engine.py``, both backed by the compiled kernels in ``fastdnn.kernels``);
their plain-numpy twins with the same names live in ``fastdnn.reference``.
``DNNClassifier`` (``estimator.py``) and ``DNNRegressor`` (``regressor.py``), which share
``base.py``'s ``DNNEstimator``, train through the same engine;
``save_model``/``save_checkpoint`` write its model files and checkpoints
(``io.py``, which reads them back as records) and ``load_model``/
``load_checkpoint`` (``estimator.py``) build the estimator from them; the
errors are ``errors.py``'s and the rules for files ``files.py``'s; ``sweep``
(``sweeps.py``) trains a grid of configurations in parallel.
"""

import importlib
import importlib.util
import os
import sys


class _CheckoutKernels:
    """Finds ``fastdnn.kernels`` in a source checkout, where kernels/ sits beside fastdnn/ rather than in it.

    A wheel puts the kernels inside the package, and an editable install maps the checkout's folder, but
    Python started in a checkout's root imports the local fastdnn/ whatever is installed: without this it
    failed at its first kernel. First on ``sys.meta_path`` so that a checkout always runs its own kernels,
    never those of the installation it shadows; it answers for that one name, so the kernels' own modules
    load from the folder as usual and exist once, as ``fastdnn.kernels.*``.
    """

    def __init__(self, folder):
        self.folder = folder

    def find_spec(self, name, path=None, target=None):
        if name != "fastdnn.kernels":
            return None
        init = os.path.join(self.folder, "__init__.py")
        return importlib.util.spec_from_file_location(name, init, submodule_search_locations=[self.folder])


def _checkout_kernels_folder():
    """The kernels/ beside this package when it is a checkout's (pyproject.toml beside them too, so that an
    unrelated ``kernels`` package beside an installed fastdnn is never taken for ours); else None."""
    package = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(package)
    folder = os.path.join(root, "kernels")
    inside = os.path.isdir(os.path.join(package, "kernels"))
    checkout = all(os.path.isfile(os.path.join(*parts)) for parts in ((root, "pyproject.toml"), (folder, "__init__.py")))
    return folder if checkout and not inside else None


if (_folder := _checkout_kernels_folder()) is not None:
    sys.meta_path.insert(0, _CheckoutKernels(_folder))

# Imported on first use (PEP 562): ``import fastdnn`` and the command's start stay light (numpy, Numba and
# the compiled kernels load when a name that needs them is first used), and a Ctrl-C while they load
# reaches the command's handler instead of printing a traceback.
_EXPORTS = {
    **dict.fromkeys((
        "L_model_backward", "L_model_forward", "Parameters", "compute_cost", "initialize_adam", "initialize_parameters",
        "initialize_parameters_deep", "initialize_velocity", "predict", "predict_proba", "update_parameters",
        "update_parameters_with_adam", "update_parameters_with_momentum"), "fastdnn.pipeline"),
    **dict.fromkeys(("DNNClassifier", "cross_val_score", "load_checkpoint", "load_model"), "fastdnn.estimator"),
    "DNNRegressor": "fastdnn.regressor",
    **dict.fromkeys(("DivergenceError", "NotFittedError"), "fastdnn.errors"),
    **dict.fromkeys(("Engine", "TrainingState"), "fastdnn.engine"),
    **dict.fromkeys(("save_checkpoint", "save_model"), "fastdnn.io"),
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
    "DNNRegressor",
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
