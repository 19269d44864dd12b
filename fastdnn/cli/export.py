"""``fastdnn export``: a saved model as ONNX (a thin layer over ``fastdnn.export``)."""

import os

from fastdnn.cli.common import CLIError, check_writable, say
from fastdnn.files import OutputLock, import_optional


def add_parser(sub, common, fmt):
    p = sub.add_parser(
        "export", parents=[common], formatter_class=fmt, help="write a saved model as ONNX (needs fastdnn[onnx])",
        description="Write MODEL.npz as an ONNX graph of standard operators (Gemm, the activations, Softmax), in\n"
        "its trained dtype, any batch size, with outputs label and probabilities (a regression model: predictions),\n"
        "for onnxruntime and other ONNX runtimes.",
    )
    p.add_argument("model", metavar="MODEL.npz", help="a model saved by fastdnn train (or save_model)")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    p.set_defaults(func=run)


def run(args):
    from fastdnn.estimator import load_model
    from fastdnn.export import to_onnx

    import_optional("onnx", "onnx", "fastdnn export")
    check_writable(args.out, True, "ONNX model", [args.model])
    if not args.out.endswith(".onnx"):
        raise CLIError(f"{args.out}: give the ONNX file a .onnx name")
    est = load_model(args.model)
    # As train's model: held against a second export of OUT, and an export killed before its rename left a
    # .OUT.*.tmp that is removed here.
    with OutputLock(args.out, "ONNX model"):
        to_onnx(est, args.out)
    net = est.network_
    say(f"exported {args.model} ({' -> '.join(map(str, est.parameters_.dims))}, {net['activation']}, "
        f"{net['output']}, {est.parameters_.flat.dtype.name}) to {args.out} ({os.path.getsize(args.out):,} bytes)")
    return 0
