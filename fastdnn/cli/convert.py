"""``fastdnn convert``: a CSV as .npy files, in a streaming pass with bounded memory (``fastdnn.data.convert_csv``)."""

import os
import time

from fastdnn.cli.common import CLIError, check_writable, say


def add_parser(sub, common, fmt):
    p = sub.add_parser(
        "convert", parents=[common], formatter_class=fmt, help="turn a CSV into .npy files (features, labels)",
        description="Write a CSV's features as an (examples, features) .npy array and its label column as a second\n"
        ".npy beside it, reading the CSV twice in chunks: memory stays at a few tens of MB whatever its size.\n"
        "The CSV rules are those of --data: a header row, one label column, numeric features.",
    )
    p.add_argument("csv", metavar="CSV", help="the CSV file")
    p.add_argument("out", metavar="OUT.npy", help="the features' .npy file")
    p.add_argument("--label", default="label", help="the CSV column holding the labels (default: label)")
    p.add_argument("--labels", metavar="FILE", help="the labels' .npy file (default: OUT.labels.npy)")
    p.add_argument("--no-labels", action="store_true", help="the CSV has no label column: every column is a feature")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                   help="the features' dtype (default float32, half the disk and memory of float64)")
    p.add_argument("--force", action="store_true", help="replace OUT (and the labels file) if they exist")
    p.set_defaults(func=run)


def run(args):
    from fastdnn.data import convert_csv, labels_path_for

    if args.no_labels and args.labels:
        raise CLIError("--labels: there are none to write with --no-labels")
    labels = args.labels or labels_path_for(args.out)
    # A labels file beside OUT is refused with --no-labels too: it would pass for this data's labels.
    for path, what in ((args.out, "OUT"), (labels, "the labels file")):
        if os.path.exists(path) and not args.force:
            raise CLIError(f"{path}: exists; pass --force to replace it ({what})")
    if os.path.exists(args.csv):
        check_writable(args.out, True, "features file", [args.csv])
        check_writable(labels, True, "labels file", [args.csv, args.out])
    start = time.perf_counter()
    label = None if args.no_labels else args.label
    rows, features, written = convert_csv(args.csv, args.out, label=label, labels=labels, dtype=args.dtype)
    if written is None and os.path.exists(labels):
        os.remove(labels)  # --force with --no-labels: an older run's labels must not stay beside the new features
    took = time.perf_counter() - start
    say(f"{args.out}: {rows:,} examples x {features} features, {args.dtype}")
    say(f"{written}: their labels" if written else "no labels (--no-labels)")
    say(f"converted {args.csv} in {took:.1f} s")
    return 0
