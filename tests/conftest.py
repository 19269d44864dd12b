"""Fixtures shared by the test modules: the course's cat data and a one-thread BLAS."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fastdnn.data import CAT_FILES, cat_data_dir

# The data sit beside the repository, not in it (fastdnn.data.cat_data_dir decides where).
CAT_FOLDER = Path(cat_data_dir())


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: a full training run on real data (tens of seconds); deselected by default "
        "(pyproject's addopts), run with pytest -m slow (CI does)",
    )


def _course_layout(images, labels):
    """The course's preparation: (m, 64, 64, 3) uint8 -> X (12288, m) in [0, 1], Y (1, m)."""
    m = images.shape[0]
    X = images.reshape(m, -1).T / 255.0
    Y = labels.reshape(1, m)
    # Shared by the whole session: a test that writes into them must fail, not
    # silently change what the next test sees.
    X.setflags(write=False)
    Y.setflags(write=False)
    return X, Y


@pytest.fixture(scope="session")
def cat_data():
    """The course's cat / non-cat images: train_x (12288, 209), train_y (1, 209), test_x, test_y (50 examples).

    Looked for in $FASTDNN_CAT_DATA if set, else in ../shared/data/catvnoncat/
    next to the repository; the tests that use it are skipped when it is absent.
    """
    folder = CAT_FOLDER
    missing = [name for name in CAT_FILES if not (folder / name).is_file()]
    if missing:
        pytest.skip(
            f"cat data not found: {', '.join(missing)} missing from {folder} "
            "(set FASTDNN_CAT_DATA to the folder holding train_catvnoncat.h5 and test_catvnoncat.h5)"
        )
    import h5py  # only these tests need it; the rest of the suite runs without

    with h5py.File(folder / "train_catvnoncat.h5", "r") as train:
        train_x, train_y = _course_layout(np.array(train["train_set_x"]), np.array(train["train_set_y"]))
    with h5py.File(folder / "test_catvnoncat.h5", "r") as test:
        test_x, test_y = _course_layout(np.array(test["test_set_x"]), np.array(test["test_set_y"]))
    return SimpleNamespace(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y)


@pytest.fixture
def single_blas_thread():
    """Run the test with every BLAS pool limited to one thread.

    numpy and SciPy bundle separate OpenBLAS libraries, each with its own pool;
    when both spin at once they slow each other down badly. Reference-vs-fast
    comparisons run under one thread.
    """
    with threadpool_limits(1):
        yield
