"""Compiling: a first compile is announced (a cached one is not), and a run compiles only the code paths it uses."""

import os
import subprocess
import sys

import numpy as np
import pytest

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


def _typed_names(overload_for, arg_types, code_index, constant):
    """Types Numba gave the variables of one option code's kernel version (compiled here, without the cache).

    arg_types: the kernel's argument types, the option code's position (code_index) included.
    """
    import numba

    typing = list(arg_types)
    typing[code_index] = numba.types.literal(constant)
    kernel = numba.njit(error_model="numpy")(overload_for(*typing))
    # The code's own argument is typed as a plain int here: only the constant captured by the
    # implementation can prune, which is the mechanism under test.
    signature = list(arg_types)
    signature[code_index] = numba.types.int64
    signature = tuple(signature)
    kernel.compile(signature)
    return " ".join(str(t) for t in kernel.overloads[signature].type_annotation.typemap.values())


def test_a_kernel_version_is_typed_with_only_its_own_branch():
    # The option codes reach the kernels as constants and Numba prunes the branches they do not
    # take before typing them: that is what keeps a first compile short. (LLVM would also drop
    # them later, after the typing and lowering this saves, so the compiled code cannot tell.)
    import numba

    from fastdnn.kernels import layers

    Z, b, i8, f8 = numba.typeof(np.zeros((2, 3))), numba.typeof(np.zeros(3)), numba.int64, numba.float64
    forward = (Z, b, Z, i8)
    assert "tanh" in _typed_names(layers.bias_act_forward_for, forward, 3, layers.ACT_TANH)
    assert "tanh" not in _typed_names(layers.bias_act_forward_for, forward, 3, layers.ACT_RELU)
    # The optimizer's branches live in update_range (optimizer_update_flat passes its constant on).
    theta = numba.typeof(np.zeros(5))
    update = (theta, theta, theta, theta, i8, f8, f8, f8, f8, i8)
    assert "sqrt" in _typed_names(layers.update_range_for, update, 4, layers.OPT_ADAM)
    assert "sqrt" not in _typed_names(layers.update_range_for, update, 4, layers.OPT_GD)


def test_an_option_code_that_is_not_a_constant_is_refused_with_a_clear_error():
    from numba.core.errors import TypingError

    from fastdnn.kernels import layers
    from fastdnn.kernels import network as N

    theta, dims = np.zeros(5), np.array([4, 1])
    args = (theta, np.zeros(5), np.zeros(10), dims, 0, layers.OPT_GD, 0.1, 0.9, 0.999, 1e-8, 1)
    with pytest.raises(TypingError, match="opt must be a compile-time constant"):
        N.optimizer_step(*args)  # called directly, opt is a run-time int


def test_views_over_kernel_buffers_are_not_callable_from_python():
    # They hold no reference to their buffer: from Python one could outlive it. Compiled code only.
    from fastdnn.kernels import network as N

    with pytest.raises(NotImplementedError, match="compiled code only"):
        N.layer_view(np.zeros(8), 2, np.array([3, 4]), 0)
    with pytest.raises(NotImplementedError, match="compiled code only"):
        N.layer_parameters(np.zeros(16), np.array([3, 4]), 0)


def test_the_fallback_kernel_cache_is_a_folder_only_this_user_can_use(tmp_path, monkeypatch):
    """When neither the package folder nor the user cache is writable, kernels are cached in the temporary
    directory, in a folder created 0700 and owned by this user (Numba unpickles the cache: a folder another
    user can write would let them run code here); a name taken by anything else gives a fresh private folder;
    no user name is looked up (a container's user may have none)."""
    import stat

    from fastdnn import kernels

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    first = kernels.fallback_cache_dir()
    assert first == str(tmp_path / f"fastdnn-numba-cache-{os.getuid()}")
    assert stat.S_IMODE(os.stat(first).st_mode) == 0o700 and os.stat(first).st_uid == os.getuid()
    assert kernels.fallback_cache_dir() == first  # kept between runs
    os.chmod(first, 0o777)  # opened to everyone (or planted so): not used
    other = kernels.fallback_cache_dir()
    assert other != first and os.path.basename(other).startswith("fastdnn-numba-cache-")
    assert stat.S_IMODE(os.stat(other).st_mode) == 0o700
    os.rmdir(first)
    os.symlink(other, first)  # a symlink to a private folder is still not the folder itself
    assert kernels.private_dir(first) is None
