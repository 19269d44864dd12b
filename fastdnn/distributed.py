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

import numpy as np

from fastdnn.data import import_optional


def world():
    """MPI.COMM_WORLD (mpi4py imported), or MissingDependencyError naming the extra."""
    MPI = import_optional("mpi4py.MPI", "mpi", "distributed training")
    return MPI.COMM_WORLD


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
    ValueError naming the first rank and value that differ; called on every rank, so all of them raise alike."""
    everyone = comm.allgather(values)
    for rank, other in enumerate(everyone):
        for name in {**everyone[0], **other}:  # rank 0's names in order, then any only this rank has
            value = other.get(name, "(none)")
            if value != everyone[0].get(name, "(none)"):
                theirs = everyone[0].get(name, "(none)")
                raise ValueError(f"rank {rank}: its {name} {value} differs from rank 0's {theirs}; every "
                                 "rank must train the same network on the same data with the same options")


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
