"""``fastdnn bench``: a thin layer over ``fastdnn.bench``, the one benchmark module (the tools and asv
use it too, so their ms/step figures are the same measurement)."""

from fastdnn import options as O
from fastdnn.cli.common import CLIError, say, table_values, threads_option

DEFAULTS = {**O.COMMAND_DEFAULTS, "hidden_layer_sizes": (20, 7, 5), "learning_rate": 0.0075, "optimizer": "gd",
            "dtype": "float64"}
OPTIONS = ("hidden_layer_sizes", "optimizer", "learning_rate", "dtype")


def add_parser(sub, common, fmt):
    from fastdnn.threads import usable_cores

    bench = sub.add_parser(
        "bench", parents=[common], formatter_class=fmt, help="time the fast path beside the reference",
        description="Time training steps of the fast path and the reference, each in its own process, and print\n"
        "the achieved GFLOP/s beside this machine's BLAS peak (a large square GEMM through SciPy's ?gemm).",
    )
    O.add_arguments(bench, OPTIONS, DEFAULTS)
    bench.add_argument("--features", type=int, default=12288, help="input size (default 12288, the cat images)")
    bench.add_argument("--samples", type=int, default=209, help="examples (default 209, the cat training set)")
    bench.add_argument("--batch", type=int, help="minibatch size (default: full batch)")
    bench.add_argument("--iterations", type=int, default=20, help="timed steps per repeat, at least (whole epochs are timed; default 20)")
    bench.add_argument("--repeats", type=int, default=3, help="timed repeats; the median is reported (default 3)")
    bench.add_argument("--threads", type=int, default=usable_cores(), help="BLAS threads (default: the usable cores)")
    bench.add_argument("--peak-size", type=int, help="n of the n^3 peak GEMM (default 2048 float32, 1536 float64)")
    bench.add_argument("--no-reference", action="store_true", help="time the fast path only")
    bench.set_defaults(func=run)


def run(args):
    from fastdnn import bench

    for name in ("features", "samples", "batch", "iterations", "repeats", "threads", "peak_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise CLIError(f"--{name.replace('_', '-')}: must be a positive integer, got {value}")
    opts = table_values(args, OPTIONS, DEFAULTS)
    dims = [args.features, *opts["hidden_layer_sizes"], 1]
    batch = args.batch if args.batch and args.batch < args.samples else None
    return bench.bench_command(
        dims=dims, samples=args.samples, batch=batch, dtype=opts["dtype"], optimizer=opts["optimizer"],
        learning_rate=O.resolve_learning_rate(opts["learning_rate"], opts["optimizer"]), iterations=args.iterations,
        repeats=args.repeats, threads=threads_option(args.threads), peak_size=args.peak_size,
        reference=not args.no_reference, say=say,
    )
