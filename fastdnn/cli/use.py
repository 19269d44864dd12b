"""``fastdnn predict`` and ``fastdnn evaluate``: a saved model (``fastdnn.io``) applied to a data file: a
classifier's labels (and probabilities), accuracy and confusion matrix; a regressor's values, R^2, RMSE and MAE."""

import csv
import sys

import numpy as np

from fastdnn.cli.common import CLIError, check_label_kinds, check_writable, load_data, say


def add_parsers(sub, common):
    predict_parser = sub.add_parser("predict", parents=[common], help="predict labels (or values) with a saved model",
                                    description="Predict a label (a regression model: its continuous value, one "
                                                "column per target) for every example of DATA; CSV to --out or stdout.")
    predict_parser.add_argument("model", metavar="MODEL")
    predict_parser.add_argument("data", metavar="DATA")
    predict_parser.add_argument("--out", metavar="FILE", help="write the predictions here (CSV) instead of stdout")
    predict_parser.add_argument("--proba", action="store_true", help="add one probability column per class (a "
                                "classification model's)")
    predict_parser.add_argument("--label", default="label", help="the CSV label column, ignored if present (default: label)")
    predict_parser.set_defaults(func=predict)

    evaluate_parser = sub.add_parser("evaluate", parents=[common], help="accuracy and confusion matrix of a saved model "
                                     "(a regression model: R^2, RMSE and MAE)",
                                     description="Score a saved model on labelled DATA: a classification model's "
                                                 "accuracy and confusion matrix, a regression model's R^2, RMSE and "
                                                 "MAE (each averaged uniformly over its targets, as scikit-learn's "
                                                 "metrics average them).")
    evaluate_parser.add_argument("model", metavar="MODEL")
    evaluate_parser.add_argument("data", metavar="DATA")
    evaluate_parser.add_argument("--label", default="label", help="the CSV label column (default: label)")
    evaluate_parser.set_defaults(func=evaluate)


def _model_and_data(model_path, data_path, label, require_labels):
    """The model and the data, with the data's features as predict takes them: an array, or the
    ``DiskDataset`` itself when they are larger than the model's ``memory`` (read a block at a time)."""
    from fastdnn import options as O
    from fastdnn.estimator import load_model
    from fastdnn.stream import DiskDataset
    from fastdnn.threads import usable_cores

    est = load_model(model_path)
    cores = usable_cores()
    if est.threads is not None and est.threads > cores:
        # Saved on a larger machine: a clean cap, said once (predicting would warn at every call).
        print(f"note: {model_path} was saved with threads={est.threads}, more than the {cores} usable cores here; "
              f"using {cores}", file=sys.stderr, flush=True)
        est.set_params(threads=cores)
    data = load_data(data_path, prefer="test", memory=O.BY_NAME["memory"].validate(est.memory),
                     dtype=est.network_["dtype"], label=label, require_labels=require_labels)
    if data.n_features != est.n_features_in_:
        raise CLIError(f"{data_path}: has {data.n_features} features but the model {model_path} takes {est.n_features_in_}")
    return est, data, (data if isinstance(data, DiskDataset) else data.X)


def _outputs(args, what, X):
    """``what(X)`` (the estimator's predict or predict_proba); an overflow names the model and the data."""
    from fastdnn.errors import OutputOverflowError

    try:
        return what(X)
    except OutputOverflowError as exc:
        raise CLIError(f"{args.model}: on {args.data}, {exc}") from None


def predict(args):
    from fastdnn.files import atomic_write

    est, data, X = _model_and_data(args.model, args.data, args.label, require_labels=False)
    regression = est.task == "regression"
    if args.proba and regression:
        raise CLIError(f"--proba: {args.model} is a regression model, which predicts values, not probabilities")
    if args.out:
        check_writable(args.out, True, "predictions", [args.model, args.data])
    predictions = _outputs(args, est.predict, X)
    header = ["prediction"]
    columns = [predictions]
    if predictions.ndim == 2:  # a regressor of several targets: one column each
        header = [f"prediction_{k}" for k in range(predictions.shape[1])]
        columns = [predictions[:, k] for k in range(predictions.shape[1])]
    if args.proba:
        proba = _outputs(args, est.predict_proba, X)
        header += [f"probability_{c}" for c in est.classes_]
        columns += [proba[:, k] for k in range(proba.shape[1])]

    def write(text_file):
        writer = csv.writer(text_file, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(zip(*(c.tolist() for c in columns)))

    if args.out:
        import io

        def write_bytes(f):
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            write(text)
            text.flush()
            text.detach()

        atomic_write(args.out, write_bytes)
        if regression:
            summary = f"from {float(np.min(predictions)):g} to {float(np.max(predictions)):g}"
        else:
            summary = ", ".join(f"{c}: {n}" for c, n in zip(*np.unique(predictions, return_counts=True)))
        print(f"wrote {len(predictions):,} predictions to {args.out} ({summary})", file=sys.stderr)
    else:
        write(sys.stdout)
    return 0


def evaluate(args):
    est, data, X = _model_and_data(args.model, args.data, args.label, require_labels=True)
    y = data.y
    if est.task == "regression":
        return _evaluate_regression(args, est, data, X, y)
    check_label_kinds(args.data, y, est.classes_, f"the model {args.model} was trained on")
    predictions = _outputs(args, est.predict, X)
    correct = int(np.sum(predictions == y))
    m = len(y)
    say(f"{args.model} on {data.describe()}: accuracy {correct / m:.4f} ({correct:,} of {m:,} correct)")
    unseen = np.setdiff1d(np.unique(y), est.classes_)
    if unseen.size:
        say(f"labels never seen in training (always wrong): {', '.join(map(str, unseen[:10].tolist()))}")
    labels = np.union1d(est.classes_, y)
    say("confusion matrix (rows: true label, columns: predicted):")
    for line in confusion_table(y, predictions, labels):
        say("  " + line)
    return 0


def _evaluate_regression(args, est, data, X, y):
    """A regression model's R^2 (its ``score``), RMSE and MAE on the data's targets, one line."""
    from fastdnn.labels import r2_score

    if y.dtype.kind not in "biuf":
        raise CLIError(f"{args.data}: its labels are text, but the model {args.model} predicts numbers (a regression)")
    predictions = _outputs(args, est.predict, X)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    if y.shape[1] != est.n_outputs_:
        raise CLIError(f"{args.data}: has {y.shape[1]} target(s) per example, the model {args.model} predicts "
                       f"{est.n_outputs_}")
    errors = predictions.reshape(y.shape) - y
    rmse = float(np.mean(np.sqrt(np.mean(errors**2, axis=0))))
    mae = float(np.mean(np.abs(errors)))
    say(f"{args.model} on {data.describe()}: R^2 {r2_score(y, predictions):.4f}, RMSE {rmse:.6g}, MAE {mae:.6g} "
        f"({len(y):,} examples)")
    return 0


def confusion_table(y_true, y_pred, labels, max_labels=20):
    """Lines of a counts table, one row per true label, one column per predicted label."""
    if len(labels) > max_labels:
        return [f"({len(labels)} labels: too many to print; the first {max_labels} are shown)"] + confusion_table(
            y_true, y_pred, labels[:max_labels], max_labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    counts = np.zeros((len(labels), len(labels)), np.int64)
    for t, p in zip(y_true.tolist(), y_pred.tolist()):
        if t in index and p in index:
            counts[index[t], index[p]] += 1
    names = [str(label)[:12] for label in labels.tolist()]
    width = max(max(map(len, names)), len(str(counts.max())), 4)
    lines = [" " * width + "  " + "  ".join(name.rjust(width) for name in names)]
    for name, row in zip(names, counts):
        lines.append(name.rjust(width) + "  " + "  ".join(str(c).rjust(width) for c in row))
    return lines
