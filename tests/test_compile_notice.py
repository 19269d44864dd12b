"""A first compile of a kernel is announced before it starts; a kernel already in the disk cache is not."""

import os
import subprocess
import sys

SCRIPT = """
import logging
import numpy as np
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
from fastdnn.kernels import compiled, layers
# A signature nothing else in fastdnn uses (int32 indices), so the compile is this script's own.
args = (np.arange(6.0, dtype=np.float32).reshape(3, 2), np.array([2], np.int32), np.zeros((1, 2), np.float32))
compiled(layers.gather_rows, args, "the probe kernel")(*args)
assert args[2].tolist() == [[4.0, 5.0]]  # the callable it returns is the kernel
print(sum(layers.gather_rows.stats.cache_misses.values()) > 0)  # Numba's own count: compiled, not loaded
"""


def run_probe(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip(), out.stderr


def test_a_first_compile_is_logged_before_and_after_and_a_cached_one_is_silent(tmp_path):
    compiled, log = run_probe(tmp_path)
    lines = [line for line in log.splitlines() if line.startswith("fastdnn:")]
    assert compiled == "True"
    assert lines[0] == "fastdnn: compiling the probe kernel (first run only; cached on disk afterwards)..."
    assert lines[1].startswith("fastdnn: compiled the probe kernel in ")
    compiled, log = run_probe(tmp_path)  # a new process: the kernel comes from the disk cache
    assert compiled == "False" and "compiling" not in log
