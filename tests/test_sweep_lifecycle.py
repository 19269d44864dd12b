"""A sweep's processes and temporary data: killed however it is killed, it leaves no worker running (nothing
holds its caller's pipes) and the next sweep removes the data it left; a sweep ends only its own workers."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
import uuid

import numpy as np
import pytest

from fastdnn.sweeps import sweep

MARK = "FASTDNN_TEST_SWEEP"  # in the killed sweep's environment, so inherited by every process it starts
ON_LINUX = sys.platform.startswith("linux") and os.path.isdir("/proc/self")


def blobs(m=200, n=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, n))
    return X, np.where(X[:, 0] - X[:, 1] > 0, "cat", "dog")


def wait_for(condition, seconds):
    """Poll ``condition`` until it holds or ``seconds`` pass; its last value."""
    deadline = time.monotonic() + seconds
    while not (held := condition()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


def marked(marker):
    """The pids of the live (not zombie) processes whose environment holds MARK=marker."""
    needle = f"{MARK}={marker}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:  # ended meanwhile, or another user's
            continue
        if state != b"Z":  # a zombie has ended: its parent (here init) has not collected it yet
            found.append(int(pid))
    return found


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A real ``fastdnn sweep`` with two workers, its output on pipes and its temporary data in a folder of
    its own, SIGKILLed while its workers train; what it left."""
    if not ON_LINUX:
        pytest.skip("finding a killed process's workers needs Linux's /proc")
    root = tmp_path_factory.mktemp("killed")
    tmp = root / "tmp"
    tmp.mkdir()
    X, y = blobs()
    np.savez(root / "d.npz", X=X, y=y)
    marker = uuid.uuid4().hex
    # The one-epoch configurations finish at once (the results file appears: the workers are training); the
    # 10**6-epoch ones (tens of seconds even on a fast core) keep the sweep running until it is killed.
    argv = [sys.executable, "-m", "fastdnn", "sweep", "--data", str(root / "d.npz"), "--lr", "0.01,0.02",
            "--epochs", "1,1000000", "--workers", "2", "--out", str(root / "r.csv"), "--quiet"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root,
                            env={**os.environ, "TMPDIR": str(tmp), MARK: marker})
    try:
        started = wait_for(lambda: (root / "r.csv").exists() or proc.poll() is not None, 120)
        assert started and proc.poll() is None, "the sweep ended before it could be killed"
        others = [pid for pid in marked(marker) if pid != proc.pid]
        os.kill(proc.pid, signal.SIGKILL)
        try:
            proc.communicate(timeout=60)
            eof = True
        except subprocess.TimeoutExpired:
            eof = False
        wait_for(lambda: not marked(marker), 30)
        yield types.SimpleNamespace(others=others, eof=eof, left=marked(marker), tmp=tmp)
    finally:
        for pid in marked(marker):  # what a failing run left, so that the test leaves nothing either
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(60)


def test_a_killed_sweep_leaves_no_process_holding_its_callers_pipes(killed):
    # Its two workers (and multiprocessing's resource tracker, which unlinks the pool's semaphores once the
    # last process holding them has ended).
    assert len(killed.others) >= 2, killed.others
    assert killed.eof, "the killed sweep's stdout and stderr were still open a minute after the kill"
    assert killed.left == []


def test_the_next_sweep_removes_the_data_a_killed_sweep_left_and_no_live_sweeps(killed, monkeypatch):
    import fcntl

    left = [name for name in os.listdir(killed.tmp) if name.startswith("fastdnn-sweep-")]
    assert len(left) == 1 and os.path.exists(killed.tmp / left[0] / "X.npy")  # the kill left it, as a kill must
    live = killed.tmp / "fastdnn-sweep-live"  # a running sweep's: its lock held
    live.mkdir()
    fd = os.open(live / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    making = killed.tmp / "fastdnn-sweep-making"  # a sweep's between making its folder and locking it
    making.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(killed.tmp))
    try:
        results = sweep(*blobs(), {"learning_rate": [0.01, 0.1]}, fixed={"max_iter": 2}, workers=1)
    finally:
        os.close(fd)
    assert not results.failed
    assert sorted(os.listdir(killed.tmp)) == ["fastdnn-sweep-live", "fastdnn-sweep-making"]


def test_a_worker_whose_sweep_ended_before_it_started_ends_at_once():
    """The sweep killed before the worker asked to end with it: the worker is another process's child already
    (the race that the check after asking covers)."""
    code = "import os; from fastdnn.sweep_workers import exit_with_parent; exit_with_parent(os.getpid()); print('ran on')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")


def test_where_the_kernel_cannot_end_a_worker_with_its_parent_a_thread_polling_for_it_does():
    """The fallback where there is no PR_SET_PDEATHSIG: the parent SIGKILLed, the child ends and its pipe
    (here the test's) closes."""
    child = ("import os; from fastdnn.sweep_workers import watch_parent; parent = os.getppid(); "
             "print(os.getpid(), flush=True); watch_parent(parent)")
    # The parent waits for its child: until it is killed, or the child fails (then the readline sees the end).
    parent = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {child!r}]).wait()"
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    watching = proc.stdout.readline()
    try:
        assert watching.strip().isdigit(), watching
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)  # EOF only once the child, which holds stdout too, has ended
        assert out == ""
    finally:
        proc.kill()
        proc.wait(60)
        if watching.strip().isdigit():  # what a failing run left
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(watching), signal.SIGKILL)


def test_a_sweep_ends_its_own_workers_only():
    """A sweep ends its pool's processes as it finishes, never the caller's own."""
    import multiprocessing

    mine = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(600,))
    mine.start()
    try:
        results = sweep(*blobs(), {"learning_rate": [0.01, 0.1]}, fixed={"max_iter": 2}, workers=2)
        assert not results.failed and mine.is_alive()
    finally:
        mine.kill()
        mine.join(60)
    assert mine.exitcode == -signal.SIGKILL  # ours, not a SIGTERM the sweep sent
