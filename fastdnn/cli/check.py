"""``fastdnn check``: the fast path against the reference on the user's network and data, a thin layer
over ``fastdnn.checking``."""

import numpy as np

from fastdnn import options as O
from fastdnn.cli.common import CLIError, say, table_values, table

# The check's own defaults: the course's network, rate and seed, and the strict float64 proof.
DEFAULTS = {**O.COMMAND_DEFAULTS, "hidden_layer_sizes": (20, 7, 5), "learning_rate": 0.0075, "optimizer": "gd",
            "init": "deep", "random_state": 1, "dtype": "float64", "l2": 0.0, "beta": 0.9}
OPTIONS = ("hidden_layer_sizes", "learning_rate", "optimizer", "activation", "loss", "output", "l2", "beta", "init", "random_state", "dtype")


def add_parser(sub, common, fmt):
    check = sub.add_parser(
        "check", parents=[common], formatter_class=fmt, help="prove the fast path computes the reference's numbers",
        description="Run the fast path and the plain-numpy reference side by side (the course's functions, one BLAS\n"
        "thread) for a few gradient steps on your network and data; print the largest difference per layer and\n"
        "stage; exit 1 if any exceeds the tolerance for the dtype.",
    )
    check.add_argument("--data", metavar="FILE", help="data (.h5, .npz, .csv); default: the built-in dataset")
    check.add_argument("--label", default="label", help="the CSV label column (default: label)")
    check.add_argument("--samples", type=int, default=1000, help="built-in dataset: examples (default 1000)")
    check.add_argument("--features", type=int, default=100, help="built-in dataset: features (default 100)")
    check.add_argument("--batch", type=int, default=256, help="examples per step: the first N (default 256)")
    check.add_argument("--steps", type=int, default=3, help="gradient steps (default 3)")
    O.add_arguments(check, OPTIONS, DEFAULTS)
    check.set_defaults(func=run)


def run(args):
    from fastdnn import checking, reference
    from fastdnn.data import builtin_dataset, load_dataset
    from fastdnn.labels import class_targets, output_for, output_units

    for name in ("samples", "features", "batch", "steps"):
        if getattr(args, name) < 1:
            raise CLIError(f"--{name}: must be a positive integer, got {getattr(args, name)}")
    opts = table_values(args, OPTIONS, DEFAULTS)
    lr = O.resolve_learning_rate(opts["learning_rate"], opts["optimizer"])
    data = load_dataset(args.data, label=args.label) if args.data else builtin_dataset(args.samples, args.features)
    m = min(args.batch, data.n_samples)
    classes, index = np.unique(data.y[:m], return_inverse=True)
    K = len(classes)
    if K < 2:
        raise CLIError(f"{args.data or 'the built-in dataset'}: its first {m} examples hold a single class; "
                       "the check needs two (raise --batch)")
    output = output_for(K, opts["output"])
    Y = class_targets(index, K, units=output_units(K, opts["output"])).T  # the course's layout (n_L, m)
    dims = [data.n_features, *opts["hidden_layer_sizes"], output_units(K, opts["output"])]
    dtype = np.dtype(opts["dtype"])
    options = {"activation": opts["activation"], "output": output, "loss": opts["loss"], "l2": opts["l2"], "lr": lr,
               "optimizer": opts["optimizer"], "beta": opts["beta"]}
    start = reference.initialize_parameters(dims, opts["init"], opts["random_state"])
    say(f"check: {' -> '.join(map(str, dims))} ({opts['activation']}, {output}, {opts['loss']}"
        + (f", l2 {opts['l2']}" if opts["l2"] else "") + f"), {args.steps} {opts['optimizer']} steps at lr {lr:g} "
        f"on the first {m} examples of {data.describe()}; fast path in {dtype.name}, reference in float64; 1 BLAS thread")
    worst, stopped = checking.compare(data.X[:m], Y, dims, options, args.steps, dtype, start)
    if not worst:
        raise CLIError(f"the reference's {stopped[1]} is not finite at step 1 (the course's cross-entropy takes log(0) "
                       "when the sigmoid saturates): nothing to compare; try another --init or smaller inputs")
    float32 = dtype == np.float32
    header = ["stage", "layer", "max |fast - ref|", "relative", "worst step"]
    if float32:
        header += ["float32 spread", "tolerance"]
    rows, failures = [], []
    for stage, (abs_diff, rel, step, spread) in worst.items():
        name = stage.rstrip("0123456789")
        layer = stage[len(name):] or "-"
        label = {"W": "W (updated)", "b": "b (updated)"}.get(name, name)
        tol = checking.tolerance(dtype, spread)
        ok = rel <= tol
        if not ok:
            failures.append(f"{label} {layer}")
        row = [label, layer, f"{abs_diff:.3g}", f"{rel:.3g}", str(step)]
        if float32:
            row += [f"{spread:.3g}", f"{tol:.3g}"]
        rows.append(row + ([] if ok else ["  EXCEEDS"]))
    say("")
    for line in table(header, rows):
        say(line)
    say("")
    if float32:
        say(f"relative = max |fast - reference| / max |reference| over the array; tolerance = max({checking.SPREAD_SAFETY:g} x "
            f"float32 spread, {checking.FLOOR32:g}), the spread being how far the reference's own functions run in float32 "
            "land from its float64 run")
    else:
        say(f"relative = max |fast - reference| / max |reference| over the array; tolerance {checking.RTOL64:g} "
            "(float64: the paths differ by summation order only)")
    if stopped:
        say(f"note: the reference's {stopped[1]} is not finite at step {stopped[0]} (the course's formulas take log(0) "
            f"or divide by 0 when the sigmoid saturates); steps 1-{stopped[0] - 1} were compared")
    if failures:
        say(f"FAILED: {len(failures)} of {len(rows)} stages exceed the tolerance: {', '.join(failures)}")
        return 1
    say(f"OK: all {len(rows)} stages agree within the tolerance: the fast path computes the reference's numbers")
    return 0
