"""``mpiexec -n 2 fastdnn train`` as a user types it: real processes started by mpiexec, what reaches the terminal,
and no rank left waiting. Each run is bounded by TIMEOUT, so a hang fails the test instead of the suite.

Run outside mpiexec (the plain ``pytest`` run): these tests start mpiexec themselves. tests/test_distributed.py
runs under mpiexec, in process.
"""

import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("mpi4py", reason="distributed training needs mpi4py: pip install 'fastdnn[mpi]'")

from fastdnn.distributed import launched  # noqa: E402

# The mpiexec of mpi4py's MPI: the mpich wheel's beside this Python, else the system's.
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
pytestmark = [
    pytest.mark.skipif(MPIEXEC is None, reason="needs mpiexec: pip install 'fastdnn[mpi]'"),
    pytest.mark.skipif(launched() is not None, reason="starts mpiexec itself: run it outside mpiexec"),
]

# Two ranks training a small network take seconds even on a loaded 2-core machine; only a hang takes this long.
TIMEOUT = 120
SMALL = ["--samples", 1000, "--features", 10, "--epochs", 1, "--quiet"]


def mpiexec(folder, *per_rank):
    """``mpiexec -n len(per_rank)``, rank r running ``fastdnn train`` with the arguments ``per_rank[r]``, in
    ``folder``: (exit status, stdout, stderr)."""
    script = folder / "ranks.py"
    argv = [["train", *map(str, args)] for args in per_rank]
    script.write_text("import sys\n\nfrom fastdnn.cli import main\nfrom fastdnn.distributed import launched\n\n"
                      f"sys.exit(main({argv!r}[launched()[0]]))\n")
    proc = subprocess.run([MPIEXEC, "-n", str(len(per_rank)), sys.executable, str(script)], cwd=folder,
                          capture_output=True, text=True, timeout=TIMEOUT)
    return proc.returncode, proc.stdout, proc.stderr


def test_mpiexec_without_distributed_is_refused_in_one_line(tmp_path):
    """Two ranks without --distributed each trained alone, both writing ./fastdnn-model.npz, without a word."""
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "fastdnn", "train", *map(str, SMALL)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("fastdnn train: error: these 2 processes were started by mpiexec without --distributed: "
                           "each would train alone, all writing the same files; give --distributed to train across "
                           "them\n")
    assert os.listdir(tmp_path) == []


def test_a_rank_without_distributed_leaves_no_rank_waiting(tmp_path):
    """Rank 1 without --distributed trained alone while rank 0 waited for it forever: now both stop at once."""
    status, _, err = mpiexec(tmp_path, [*SMALL, "--distributed"], SMALL)
    assert status == 1
    assert err == ("fastdnn train: error: rank 1 of 2 was started without --distributed (rank 0 with it); give every "
                   "rank --distributed\n")
    assert os.listdir(tmp_path) == ["ranks.py"]


def test_ranks_given_data_of_other_shapes_print_one_line(tmp_path):
    """Every rank printed the refusal and called MPI_Abort, which could end them all before any line was forwarded
    (exit 1, nothing printed): one line from rank 0, and no abort."""
    status, out, err = mpiexec(tmp_path, [*SMALL, "--distributed"], [*SMALL, "--samples", 1001, "--distributed"])
    assert status == 1 and "Abort" not in out + err
    assert err == ("fastdnn train: error: rank 1: its training data (examples, features) (1001, 10) differs from rank "
                   "0's (1000, 10); every rank must train the same network on the same data with the same options\n")


def test_a_launcher_of_another_mpi_is_refused_in_one_line(tmp_path):
    """Processes that Open MPI's mpirun starts (its variables in their environment) around an MPICH mpi4py each see
    an MPI of one: every one trained alone with --distributed, all writing one model. (Open MPI's variables with
    this MPICH, no mpirun needed; mpi4py's own warning of it is not shown beside the line.)"""
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True, timeout=TIMEOUT).stdout
    if "HYDRA" not in version:
        pytest.skip("needs MPICH's mpiexec (Hydra): Open MPI's variables are then another MPI's")
    env = {**os.environ, "OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "0"}
    proc = subprocess.run([sys.executable, "-m", "fastdnn", "train", *map(str, SMALL), "--distributed"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == ("fastdnn train: error: this process is one of 2 that an MPI launcher started "
                           "(OMPI_COMM_WORLD_SIZE=2) but MPI sees 1 (mpi4py's MPI library is not this launcher's): "
                           "each would train alone, all writing the same files; start them with the mpiexec of "
                           "mpi4py's MPI\n")
    assert os.listdir(tmp_path) == []
