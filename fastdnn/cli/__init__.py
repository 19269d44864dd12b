"""The ``fastdnn`` command (also ``python -m fastdnn``): thin commands over the library.

    fastdnn train [--data FILE [--test FILE]] [options]   train a DNNClassifier, save it as .npz  (train.py)
                  [--task regression]                     a DNNRegressor instead
    fastdnn predict MODEL DATA [--out preds.csv]            labels (and probabilities; a regression's values)
                                                            as CSV                                 (use.py)
    fastdnn evaluate MODEL DATA                             accuracy and confusion matrix; a regression's
                                                            R^2, RMSE and MAE                      (use.py)
    fastdnn check [--data FILE] [--layers ...]              fast path vs reference, stage by stage (check.py)
    fastdnn bench [--layers ...]                            step time and GFLOP/s beside the BLAS peak (bench.py)
    fastdnn convert CSV OUT.npy [--label COL]               a CSV as .npy features and labels, streaming (convert.py)

A problem with the user's input (a missing or malformed file, a model that
does not fit the data, an option out of range) ends the command with one line
on stderr naming the file or option and the problem and a non-zero status;
``--debug`` shows the traceback instead. A run that fails writes nothing:
models and plots are written only at the end, atomically, and checkpoints only
replace older checkpoints.
"""

import argparse
import os
import sys

from fastdnn.cli import bench, check, convert, export, sweep, train, use
from fastdnn.cli.common import describe
from fastdnn.distributed import AllRanksError
from fastdnn.cli.train import DEFAULT_OUT  # noqa: F401  (the default model file, for the tests and scripts)


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")
    parser = argparse.ArgumentParser(
        prog="fastdnn", description="Train the course's L-layer network fast on a CPU, and check it against the reference."
    )
    parser.add_argument("--debug", action="store_true", default=False, help="show the traceback of an error")
    parser.add_argument("--version", action="version", version=f"fastdnn {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = argparse.RawDescriptionHelpFormatter
    train.add_parser(sub, common, fmt)
    use.add_parsers(sub, common)
    check.add_parser(sub, common, fmt)
    bench.add_parser(sub, common, fmt)
    convert.add_parser(sub, common, fmt)
    sweep.add_parser(sub, common, fmt)
    export.add_parser(sub, common, fmt)
    return parser, sub.choices


def _version():
    from fastdnn import __version__

    return __version__


def main(argv=None):
    """Run the command in ``argv`` (default sys.argv[1:]); returns the exit status."""
    parser, commands = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # The command's own usage: the top-level one lists the commands, not the flags the user was typing.
        (commands[args.command] if args.command else parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader of our output went away (``fastdnn predict ... | head``): stop quietly, as cat does.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"fastdnn {args.command}: interrupted", file=sys.stderr, flush=True)
        _abort_other_ranks(130)
        return 130
    except Exception as exc:  # every error becomes one line; --debug shows the traceback
        if args.debug:
            raise
        if isinstance(exc, AllRanksError):
            # Every rank stopped here alike: one line, from rank 0, and every rank ends as usual.
            if exc.rank == 0:
                print(f"fastdnn {args.command}: error: {describe(exc)}", file=sys.stderr, flush=True)
            return 1
        print(f"fastdnn {args.command}: error: {describe(exc)}", file=sys.stderr, flush=True)
        _abort_other_ranks(1)
        return 1


def _abort_other_ranks(status):
    """Under mpiexec (--distributed), an error on one rank ends every rank: the others may be waiting in a
    collective that this rank will never join, and MPI_Finalize at exit would wait for them."""
    MPI = sys.modules.get("mpi4py.MPI")
    if MPI is not None and MPI.Is_initialized() and not MPI.Is_finalized() and MPI.COMM_WORLD.Get_size() > 1:
        MPI.COMM_WORLD.Abort(status)
