"""kernels/ installs only as fastdnn.kernels: an unrelated PyPI package is called `kernels`."""

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
    # What `pip install .` puts in site-packages is the wheel's content.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("fastdnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"fastdnn/kernels/__init__.py", "fastdnn/kernels/blas.py", "fastdnn/kernels/layers.py",
            "fastdnn/kernels/network.py"} <= set(names)
    assert not [n for n in names if n.startswith("kernels/")]
