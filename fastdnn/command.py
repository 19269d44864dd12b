"""The ``fastdnn`` console script: the command's imports (numpy, Numba, the compiled kernels) happen inside
``main``, so that a Ctrl-C while they load ends the command with one line, as it does later."""

import sys


def main(argv=None):
    try:
        from fastdnn.cli import main as run
    except KeyboardInterrupt:
        print("fastdnn: interrupted while starting", file=sys.stderr, flush=True)
        return 130
    return run(argv)
