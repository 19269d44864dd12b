"""How far onnxruntime's answers are from fastdnn's for a saved model: the model exported as ``fastdnn export``
exports it, then the same rows through both.

    fastdnn train                                    # the README's default model: fastdnn-model.npz
    python tools/onnx_error.py fastdnn-model.npz     # on the built-in dataset, which that model trained on
    python tools/onnx_error.py MODEL.npz --data test.npz

Prints the measure tests/test_export.py bounds, max |a - b| / max |b| over the probabilities (a from
onnxruntime, b from ``predict_proba``), the largest absolute difference, and how many labels differ. The two
compute the same sums in different orders, so the difference is rounding and grows with the layers' widths.
Needs ``pip install "fastdnn[onnx]"``.
"""

import argparse
import os
import sys
import tempfile


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="a model saved by fastdnn (fastdnn train, DNNClassifier.save)")
    p.add_argument("--data", help="rows to serve: any file fastdnn reads (default: the built-in dataset)")
    args = p.parse_args(argv)
    import numpy as np

    from fastdnn.data import builtin_dataset, load_dataset
    from fastdnn.files import import_optional
    from fastdnn.estimator import DNNClassifier

    try:
        model = DNNClassifier.load(args.model)
        data = load_dataset(args.data, require_labels=False) if args.data else builtin_dataset()
        X = np.asarray(data.X)
        if X.shape[1] != model.n_features_in_:
            raise ValueError(f"{args.data or 'the built-in dataset'} has {X.shape[1]} features; {args.model} takes "
                             f"{model.n_features_in_}: pass the data it was trained on with --data")
        onnxruntime = import_optional("onnxruntime", "onnx", "serving the export")
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "model.onnx")
            model.to_onnx(path)
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            labels, served = session.run(None, {"X": X.astype(model.parameters_.flat.dtype)})
    except (ValueError, OSError, ImportError) as exc:
        sys.exit(f"onnx_error: {exc}")
    expected = model.predict_proba(X)
    difference = np.abs(served - expected)
    differ = int(np.sum(labels.astype(model.classes_.dtype) != model.predict(X)))
    print(f"{args.model}: {served.dtype}, layers {[int(d) for d in model.parameters_.dims]}, {len(X):,} rows of "
          f"{args.data or data.source}")
    print(f"max |a - b| / max |b| = {difference.max() / np.abs(expected).max():.3g}; max |a - b| = "
          f"{difference.max():.3g}; labels that differ: {differ}")


if __name__ == "__main__":
    main()
