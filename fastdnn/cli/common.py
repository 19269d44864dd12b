"""What every ``fastdnn`` command shares: the one-line error, printing, and checking destinations."""

import os

from fastdnn.errors import DivergenceError, MissingDependencyError


class CLIError(Exception):
    """A problem to report to the user in one line (exit status 1)."""


def say(*lines):
    for line in lines:
        print(line, flush=True)


def describe(exc):
    """One line for the user (the file problems of ``fastdnn.errors`` are ValueErrors naming their file)."""
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, (CLIError, MissingDependencyError, DivergenceError, ValueError, TypeError, OSError)):
        text = str(exc)
    else:
        text = f"internal error, {type(exc).__name__}: {exc} (run with --debug for the traceback)"
    return " ".join(text.split())


def same_file(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def check_writable(path, explicit, what, inputs):
    """Refuse, before any work, a destination that would clobber an input or a file the user did not name."""
    from fastdnn.io import file_format

    for other in inputs:
        if same_file(path, other):
            raise CLIError(f"{path}: is also an input of this run; write the {what} elsewhere")
    if os.path.isdir(path):
        raise CLIError(f"{path}: is a directory; give a file name for the {what}")
    directory = os.path.dirname(os.path.abspath(path))
    # The folder as the system will resolve it: "sub/../x" needs sub to exist, which abspath does not ask.
    if not os.path.isdir(directory) or not os.path.isdir(os.path.dirname(path) or "."):
        raise CLIError(f"{path}: cannot write the {what}: the directory {os.path.dirname(path) or directory} does "
                       "not exist")
    if not os.access(directory, os.W_OK):
        raise CLIError(f"{path}: cannot write the {what}: the directory {directory} is not writable")
    if os.path.exists(path) and not explicit and file_format(path) is None:
        raise CLIError(f"{path}: exists and is not a fastdnn file; not overwriting it (choose the {what} file explicitly)")


def threads_option(requested):
    """--threads as given, capped at the usable cores (saying so); None leaves the choice to the policy."""
    from fastdnn.threads import usable_cores

    cores = usable_cores()
    if requested is not None and requested > cores:
        say(f"note: --threads {requested} is more than the {cores} usable cores; using {cores}")
        return cores
    return requested


def check_label_kinds(path, y, classes, against):
    """Text labels never equal numbers: say so instead of scoring 0."""
    if (y.dtype.kind == "U") != (classes.dtype.kind == "U"):
        kind = lambda a: "text" if a.dtype.kind == "U" else "numbers"  # noqa: E731
        raise CLIError(f"{path}: its labels are {kind(y)} but {against} {kind(classes)}")


def table(header, rows):
    """Lines of a text table: the first two columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows if i < len(r)) for i in range(len(header))]
    lines = []
    for r in [header, ["-" * w for w in widths]] + rows:
        cells = [str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        lines.append("  ".join(cells) + "".join(r[len(widths):]))
    return lines


def table_values(args, names, defaults=None):
    """The options ``names`` of ``fastdnn.options.ROWS`` (the estimators' and the command's own) as given on the
    command line, each checked by
    the table (a bad value is one line naming the flag); not given: ``defaults[name]``, or left out when
    ``defaults`` is None."""
    from fastdnn import options as O

    values = {}
    for name in names:
        option, value = O.ROWS[name], getattr(args, name, None)
        if value is None:
            if defaults is not None:
                values[name] = defaults[name]
            continue
        try:
            values[name] = option.validate(value)
        except ValueError as exc:
            raise CLIError(f"{option.flag}: {exc}") from None
    return values


def load_data(path, *, prefer, memory, dtype=None, label="label", labels=None, require_labels=True):
    """The data at ``path`` as ``fastdnn.data.load_or_stream`` decides: a ``Dataset`` in memory (its X in
    ``dtype``), or a ``fastdnn.stream.DiskDataset`` (read a block at a time) when they are .npy, .npz, HDF5 or a
    folder of shards larger than ``memory`` bytes as ``dtype``. ``labels``: the labels file of .npy data
    (default NAME.labels.npy beside it)."""
    from fastdnn.data import load_or_stream

    if labels is not None and not (os.path.isdir(path) or path.lower().endswith(".npy")):
        raise CLIError(f"--labels: gives the labels of .npy data; {path} holds its own")
    return load_or_stream(path, labels, memory=memory, dtype=dtype, prefer=prefer, label=label,
                          require_labels=require_labels)
