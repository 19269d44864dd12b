"""Data-parallel training over MPI (mpi4py): what the engine needs from a communicator, in one place.

Synchronous data-parallel SGD, as Horovod and PyTorch's DDP do it: every rank
holds the same parameters (broadcast from rank 0 when a run starts) and the
same shuffling generator, so every rank draws the same global row order; each
global minibatch of B rows is split as evenly as possible (``share``: the
first B mod N ranks take one row more, a rank may get none), each rank sums
its rows' gradient weighted by its share of B into one flat buffer that also
carries the cost, one ``Allreduce`` sums the buffers, and every rank applies
the same update to the same sum, which keeps the ranks' parameters identical
bit for bit. One process with batch B and the same row order computes the same
parameters up to the order of summation.

Needs ``pip install "fastdnn[mpi]"`` (mpi4py and the ``mpich`` wheel, which
provides ``mpiexec``); ``mpiexec -n 2 fastdnn train --distributed``, or
``DNNClassifier.fit(X, y, comm=MPI.COMM_WORLD)`` from Python.
"""

import contextlib
import os

import numpy as np

from fastdnn.errors import MissingDependencyError
from fastdnn.files import import_optional

# What MPI launchers put in the environment of each process they start, as (rank, number of processes): the
# mpiexec of MPICH and Intel MPI (Hydra, also Slurm's PMI plugins), Open MPI's mpirun (PMIx too). A launcher
# that names no size (PMIx alone, srun without an MPI plugin) is not recognised.
LAUNCH_VARIABLES = (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"))


class AllRanksError(ValueError):
    """An error raised on every rank of a communicator alike, at the same point of the run: no rank is left
    waiting in a collective for another, so the ranks end together (no MPI_Abort, which can end a rank before
    its output is forwarded) and only ``rank`` 0 reports it."""

    def __init__(self, message, rank):
        super().__init__(message)
        self.rank = rank


def world():
    """MPI.COMM_WORLD (mpi4py imported), or MissingDependencyError naming the extra."""
    import warnings

    with warnings.catch_warnings():
        # mpi4py's warning of another MPI's launcher: ``join`` refuses that run in one line.
        warnings.filterwarnings("ignore", "suspicious MPI execution environment", RuntimeWarning)
        MPI = import_optional("mpi4py.MPI", "mpi", "distributed training")
    return MPI.COMM_WORLD


def launched():
    """(rank, size, variable) when an MPI launcher started this process as one of ``size`` > 1, read from the
    environment (``LAUNCH_VARIABLES``) without starting MPI; None otherwise."""
    for rank_name, size_name in LAUNCH_VARIABLES:
        try:
            size, rank = int(os.environ.get(size_name, "")), int(os.environ.get(rank_name, "0"))
        except ValueError:
            continue
        if size > 1:
            return rank, size, size_name
    return None


def join(distributed):
    """The communicator of a ``fastdnn train`` given --distributed (``distributed``) or not: MPI.COMM_WORLD, or
    None for a run alone. Processes that an MPI launcher started together (``launched``) must all be given
    --distributed, else AllRanksError saying so: a process without it still starts MPI when it can, to refuse
    together with the others, which would otherwise wait forever for it in MPI's start."""
    launch = launched()
    if not distributed and launch is None:
        return None
    try:
        comm = world()
    except MissingDependencyError:
        if distributed:
            raise
        comm = None
    if launch is not None:
        rank, size, variable = launch
        seen = 1 if comm is None else comm.Get_size()
        if seen != size:
            # Each process alone in an MPI of its own: the launcher's rank 0 alone reports it.
            problem, fix = ((f"but MPI sees {seen} (mpi4py's MPI library is not this launcher's)",
                             "start them with the mpiexec of mpi4py's MPI") if comm is not None else
                            ("without --distributed", "give every process --distributed"))
            raise AllRanksError(f"this process is one of {size} that an MPI launcher started ({variable}={size}) "
                                f"{problem}: each would train alone, all writing the same files; {fix}", rank)
    if not active(comm):
        return comm
    given = comm.allgather(bool(distributed))
    if not all(given):
        rank, size = comm.Get_rank(), comm.Get_size()
        if not any(given):
            raise AllRanksError(f"these {size} processes were started by mpiexec without --distributed: each would "
                                "train alone, all writing the same files; give --distributed to train across them",
                                rank)
        raise AllRanksError(f"rank {given.index(False)} of {size} was started without --distributed (rank "
                            f"{given.index(True)} with it); give every rank --distributed", rank)
    return comm


def active(comm):
    """Whether ``comm`` trains across processes: a communicator of more than one rank."""
    return comm is not None and comm.Get_size() > 1


def local_ranks(comm):
    """How many of ``comm``'s ranks run on this machine (they share its cores)."""
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_size()
    finally:
        node.Free()


def share(n, size, rank):
    """Rows [lo, hi) of a batch of n rows that rank ``rank`` of ``size`` trains: an even split, the first
    n mod size ranks one row more."""
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def mine(order, batch, size, rank):
    """The entries of ``order`` (an epoch's or a block's rows, in training order, minibatches of ``batch``)
    that rank ``rank`` of ``size`` trains: its ``share`` of each minibatch, in training order."""
    n = len(order)
    at = np.arange(n)
    b = np.minimum(batch, n - at // batch * batch)  # the size of each position's minibatch
    base, extra = np.divmod(b, size)
    lo = rank * base + np.minimum(rank, extra)
    offset = at % batch
    return order[(offset >= lo) & (offset < lo + base + (rank < extra))]


def agree(comm, values):
    """Every rank's ``values`` (a dict of name -> comparable, picklable value) equal to rank 0's, else
    AllRanksError naming the first rank and value that differ; called on every rank, so all of them raise alike."""
    _first_difference(comm, comm.allgather(values))


def _first_difference(comm, everyone):
    for rank, other in enumerate(everyone):
        for name in {**everyone[0], **other}:  # rank 0's names in order, then any only this rank has
            value = other.get(name, "(none)")
            if value != everyone[0].get(name, "(none)"):
                theirs = everyone[0].get(name, "(none)")
                raise AllRanksError(f"rank {rank}: its {name} {value} differs from rank 0's {theirs}; every rank "
                                    "must train the same network on the same data with the same options",
                                    comm.Get_rank())


@contextlib.contextmanager
def together(comm, describe):
    """Checks that each rank makes alone (its files, its data), ended by one collective: an error on any rank
    becomes AllRanksError on every rank (the first failing rank's, ``describe``d and named), so that no rank
    waits in a later collective for one that stopped. The block fills the dict it is given with values every
    rank must hold alike, compared as ``agree`` does when no rank failed. Without an active ``comm``, errors
    go up as they are."""
    values = {}
    if not active(comm):
        yield values
        return
    error = None
    try:
        yield values
    except Exception as exc:
        error = exc
    everyone = comm.allgather((None if error is None else describe(error), values))
    failed = [(rank, text) for rank, (text, _) in enumerate(everyone) if text is not None]
    if failed:
        rank, text = failed[0]
        raise AllRanksError(text if rank == 0 else f"rank {rank}: {text}", comm.Get_rank()) from error
    _first_difference(comm, [theirs for _, theirs in everyone])


def digest(*arrays, rows=1024):
    """A short hash of up to ``rows`` evenly spaced rows of each array: tells the ranks' data apart cheaply."""
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        pick = np.ascontiguousarray(a[:: max(1, len(a) // rows)])
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(pick.reshape(-1).view(np.uint8))
    return h.hexdigest()


def resync(comm, *arrays):
    """Rank 0's ``arrays`` on every rank if any rank's differ (a sampled ``digest`` compared: cheap enough for
    every epoch); returns whether they differed. A collective. Every rank applies the same update to the
    same reduced gradient, so they differ only if rounding differs between ranks (another CPU or library)."""
    mine = digest(*arrays)
    if all(d == mine for d in comm.allgather(mine)):
        return False
    for a in arrays:
        broadcast(comm, a)
    return True


def any_rank(comm, flag):
    """True on every rank when ``flag`` is true on any (a collective: every rank must call it)."""
    from mpi4py import MPI

    return bool(comm.allreduce(bool(flag), op=MPI.LOR))


def broadcast(comm, array):
    """Rank 0's ``array`` (C-contiguous) into every rank's, in place."""
    if not array.flags.c_contiguous:
        raise ValueError("distributed.broadcast needs a C-contiguous array")
    comm.Bcast(array, root=0)


def sum_in_place(comm, buffer):
    """The element-wise sum of every rank's ``buffer``, in place, by one Allreduce."""
    from mpi4py import MPI

    comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
