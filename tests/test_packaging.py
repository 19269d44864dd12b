"""kernels/ installs only as fastdnn.kernels: an unrelated PyPI package is called `kernels`."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_fastdnn_kernels_imports_from_outside_the_source_tree_and_kernels_does_not(tmp_path):
    code = (
        "import importlib.util, fastdnn.kernels, fastdnn.kernels.network;"
        "print(fastdnn.kernels.__name__);"
        "print(importlib.util.find_spec('kernels'))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["fastdnn.kernels", "None"]


def test_the_wheel_holds_fastdnn_kernels_and_no_top_level_kernels(tmp_path):
    # What `pip install .` puts in site-packages is the wheel's content. Built from a copy of the
    # sources: setuptools writes build/ and *.egg-info beside the project it builds.
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".ci-venv-*", ".asv", ".hypothesis", ".pytest_cache"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("fastdnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"fastdnn/kernels/__init__.py", "fastdnn/kernels/blas.py", "fastdnn/kernels/layers.py",
            "fastdnn/kernels/network.py"} <= set(names)
    assert not [n for n in names if n.startswith("kernels/")]


def test_importing_fastdnn_and_starting_the_command_load_nothing_heavy():
    """``import fastdnn`` is light (names load on first use), and the console script's module imports the
    command inside ``main``, where a Ctrl-C during the heavy imports is caught (one line, exit 130)."""
    import subprocess
    import sys

    code = ("import sys, fastdnn, fastdnn.command; print(sorted(m for m in ('numpy', 'numba', 'fastdnn.engine') "
            "if m in sys.modules)); print(fastdnn.DNNClassifier.__name__, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "DNNClassifier True"
