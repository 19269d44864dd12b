"""kernels/ installs only as fastdnn.kernels (an unrelated PyPI package is called `kernels`), once, and the
checkout itself imports: Python started in its root finds the local fastdnn/ first, whatever is installed."""

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
KERNEL_FILES = sorted(p.name for p in (REPO / "kernels").glob("*.py"))

# Which fastdnn and which kernels a process imported, and every module loaded from a kernels file under any
# name: one name per file means one copy.
WHERE = (
    "import importlib.util, sys, fastdnn, fastdnn.kernels.network\n"
    "from pathlib import Path\n"
    "print(Path(fastdnn.__file__).resolve().parent)\n"
    "print(Path(fastdnn.kernels.__file__).resolve().parent)\n"
    "print(sorted(n for n, m in list(sys.modules.items()) if Path(getattr(m, '__file__', None) or '.').name\n"
    "             in ('network.py', 'blas.py', 'layers.py')))\n"
    "print(importlib.util.find_spec('kernels'))\n"
)
ONE_COPY = "['fastdnn.kernels.blas', 'fastdnn.kernels.layers', 'fastdnn.kernels.network']"


def where(python, cwd):
    out = subprocess.run([python, "-c", WHERE], cwd=cwd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.splitlines()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel `pip install .` installs, built from a copy of the sources (setuptools writes build/ and
    *.egg-info beside the project it builds; git's own list of files keeps ignored ones out)."""
    import shutil

    source = tmp_path_factory.mktemp("src")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, source],
        check=True,
        capture_output=True,
    )
    (built,) = wheels.glob("fastdnn-*.whl")
    return built


def test_fastdnn_kernels_imports_once_from_outside_the_source_tree_and_kernels_does_not(tmp_path):
    package, kernels, loaded, top_level = where(sys.executable, tmp_path)
    if Path(package) == REPO / "fastdnn":  # an editable install: its finder maps the checkout's kernels/
        assert Path(kernels) == REPO / "kernels"
    else:
        assert Path(kernels) == Path(package) / "kernels"
    assert loaded == ONE_COPY and top_level == "None"


def test_the_wheel_holds_fastdnn_kernels_once_and_no_top_level_kernels(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert len(names) == len(set(names))
    kernels = sorted(n for n in names if n.startswith("fastdnn/kernels/"))
    assert kernels == [f"fastdnn/kernels/{f}" for f in KERNEL_FILES]
    assert not [n for n in names if n.startswith("kernels/")]


def test_after_a_non_editable_install_the_checkout_imports_with_its_own_kernels(wheel, tmp_path):
    """README command 1 (`pip install .`) into a fresh environment, then Python in the checkout's root: the
    local fastdnn/ shadows the installed one there, and must still find its kernels (the checkout's, so that
    what runs is what is checked out). Outside the checkout the installed package uses its own."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # The dependencies come from this environment by a path in a .pth file; Python does not run the .pth
    # files of such a path, so an editable install of fastdnn here stays out of the fresh environment.
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site, "dependencies.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", site,
                    str(wheel)], check=True, capture_output=True)

    package, kernels, loaded, _ = where(python, REPO)
    assert (Path(package), Path(kernels), loaded) == (REPO / "fastdnn", REPO / "kernels", ONE_COPY)
    package, kernels, loaded, top_level = where(python, tmp_path)
    assert (Path(package), Path(kernels), loaded, top_level) == (
        Path(site).resolve() / "fastdnn", Path(site).resolve() / "fastdnn" / "kernels", ONE_COPY, "None")


def test_importing_fastdnn_and_starting_the_command_load_nothing_heavy():
    """``import fastdnn`` is light (names load on first use), and the console script's module imports the
    command inside ``main``, where a Ctrl-C during the heavy imports is caught (one line, exit 130)."""
    code = ("import sys, fastdnn, fastdnn.command; print(sorted(m for m in ('numpy', 'numba', 'fastdnn.engine') "
            "if m in sys.modules)); print(fastdnn.DNNClassifier.__name__, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "DNNClassifier True"
