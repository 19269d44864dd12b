"""ONNX export: a trained network as standard ONNX operators, for serving stacks that read ONNX (onnxruntime and
the runtimes that import it). Needs ``pip install "fastdnn[onnx]"``.

The graph, in the trained dtype (float32 or float64), for a batch of any size N:

    X (N, n_0) -> Gemm(W1, b1, transB=1) -> Relu | LeakyRelu(0.01) | Tanh | Sigmoid -> ... -> Gemm(WL, bL)
    (LeakyRelu in float64 as Max(z, Mul(z, 0.01)): onnxruntime implements LeakyRelu for float32 only)
    one sigmoid unit:  p = Sigmoid(Z_L); probabilities = Concat(1 - p, p)     (N, 2)
    softmax:           probabilities = Softmax(Z_L, axis=1)                   (N, K)
    label = Gather(classes, ArgMax(probabilities, axis=1))                    (N,)
    a regressor (identity output): predictions = Z_L                          (N, n_L)

A classifier's outputs are ``label`` and ``probabilities``, as scikit-learn's converters give classifiers (columns
in ``classes_`` order: ``predict_proba``'s); a regressor's is ``predictions``, one column per target (``predict``
gives one target's as a 1-D array, ONNX as one column). The model's metadata holds the fastdnn version and the
options it was trained with; a model fitted on a DataFrame names its columns, in order, in the input's doc_string
(and the metadata's ``feature_names``).
"""

import json

import numpy as np

from fastdnn import __version__
from fastdnn.files import atomic_write, import_optional

OPSET = 13  # Softmax over one axis; Gemm, ArgMax, Gather, Concat as in every runtime since 2021
IR_VERSION = 7  # the ONNX IR version of opset 13, which runtimes far older than this file read
_ACTIVATIONS = {"relu": ("Relu", {}), "leaky_relu": ("LeakyRelu", {"alpha": 0.01}), "tanh": ("Tanh", {}),
                "sigmoid": ("Sigmoid", {})}


def to_onnx(estimator, path=None):
    """The fitted ``DNNClassifier`` or ``DNNRegressor`` as an ``onnx.ModelProto`` (checked by ``onnx.checker``),
    written to ``path`` (atomically) when given."""
    onnx = import_optional("onnx", "onnx", "ONNX export")
    from onnx import TensorProto, helper, numpy_helper

    params = estimator.parameters_  # NotFittedError if not fitted
    net = estimator.network_
    dims = [int(d) for d in params.dims]
    dtype = params.flat.dtype
    elem = TensorProto.DOUBLE if dtype == np.float64 else TensorProto.FLOAT
    L = len(dims) - 1
    nodes, inits = [], []
    current = "X"
    for l in range(1, L + 1):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(params[f"W{l}"]), f"W{l}"))
        inits.append(numpy_helper.from_array(np.ascontiguousarray(params[f"b{l}"]).reshape(-1), f"b{l}"))
        nodes.append(helper.make_node("Gemm", [current, f"W{l}", f"b{l}"], [f"Z{l}"], transB=1, name=f"layer{l}"))
        current = f"Z{l}"
        if l < L:
            op, attrs = _ACTIVATIONS[net["activation"]]
            if op == "LeakyRelu" and dtype == np.float64:
                # onnxruntime implements LeakyRelu for float32 only: max(z, 0.01 z), the same numbers.
                if not any(i.name == "slope" for i in inits):
                    inits.append(numpy_helper.from_array(np.array([attrs["alpha"]], dtype), "slope"))
                nodes += [helper.make_node("Mul", [current, "slope"], [f"S{l}"], name=f"slope{l}"),
                          helper.make_node("Max", [current, f"S{l}"], [f"A{l}"], name=f"activation{l}")]
            else:
                nodes.append(helper.make_node(op, [current], [f"A{l}"], name=f"activation{l}", **attrs))
            current = f"A{l}"
    names = getattr(estimator, "feature_names_in_", None)
    input_doc = (f"the {dims[0]} features, as the columns it was fitted on: " + ", ".join(map(str, names))
                 if names is not None else f"the {dims[0]} features")
    inputs = [helper.make_tensor_value_info("X", elem, ["N", dims[0]], doc_string=input_doc)]
    props = {"fastdnn_version": __version__}
    if names is not None:
        props["feature_names"] = json.dumps([str(n) for n in names])
    if net["output"] == "identity":
        nodes.append(helper.make_node("Identity", [current], ["predictions"], name="output"))
        outputs = [helper.make_tensor_value_info("predictions", elem, ["N", dims[-1]])]
        graph = helper.make_graph(nodes, "fastdnn", inputs, outputs, initializer=inits)
        return _finish(onnx, helper, graph, estimator, dims, net, dtype, "predictions", props, path)
    if net["output"] == "sigmoid":
        inits.append(numpy_helper.from_array(np.ones(1, dtype), "one"))
        nodes += [helper.make_node("Sigmoid", [current], ["p1"], name="output"),
                  helper.make_node("Sub", ["one", "p1"], ["p0"], name="complement"),
                  helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1, name="probabilities")]
    else:
        nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=1, name="output"))
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind == "U":
        label_elem, classes_tensor = TensorProto.STRING, helper.make_tensor(
            "classes", TensorProto.STRING, [classes.size], [c.encode("utf-8") for c in classes.tolist()])
    else:
        kind = {"f": np.float64, "b": np.bool_}.get(classes.dtype.kind, np.int64)
        label_elem = {np.float64: TensorProto.DOUBLE, np.bool_: TensorProto.BOOL}.get(kind, TensorProto.INT64)
        classes_tensor = numpy_helper.from_array(classes.astype(kind), "classes")
    inits.append(classes_tensor)
    nodes += [helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1, keepdims=0, name="most_probable"),
              helper.make_node("Gather", ["classes", "index"], ["label"], axis=0, name="label")]
    graph = helper.make_graph(
        nodes, "fastdnn", inputs,
        [helper.make_tensor_value_info("label", label_elem, ["N"]),
         helper.make_tensor_value_info("probabilities", elem, ["N", classes.size])],
        initializer=inits,
    )
    props["classes"] = json.dumps(classes.tolist())
    return _finish(onnx, helper, graph, estimator, dims, net, dtype, "label and probabilities", props, path)


def _finish(onnx, helper, graph, estimator, dims, net, dtype, outputs, props, path):
    """The model of ``graph`` with its documentation and metadata (``props`` and the options), checked, and
    written to ``path`` when given."""
    model = helper.make_model(graph, producer_name="fastdnn", producer_version=__version__,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = (f"fastdnn {' -> '.join(map(str, dims))} network ({net['activation']} hidden layers, "
                        f"{net['output']} output, {dtype.name}); outputs {outputs}")
    options = {k: list(v) if isinstance(v, tuple) else v for k, v in estimator.get_params().items()}
    helper.set_model_props(model, {**props, "options": json.dumps(options, default=str)})
    onnx.checker.check_model(model, full_check=True)
    if path is not None:
        data = model.SerializeToString()
        atomic_write(path, lambda f: f.write(data))
    return model
