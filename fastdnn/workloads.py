"""The benchmark workloads: one table, used by ``fastdnn.bench``, tools/compare.py, tools/bench_seed.py and asv.

A workload is a network, a step's examples and where the data come from:

    dims    layer sizes [n_0, ..., n_L]; n_L = 1 is a sigmoid output, n_L = K > 1 a softmax over K classes
    m       examples in the data set
    batch   examples per step; None is the full m (every workload here: a side-by-side step of m
            examples that every library runs the same way, standing in for a minibatch step of size m)
    dtype   the fast path's dtype (the reference computes in float64 always)
    data    "cat": the course's cat training set, prepared as the course does (``cat_data``), or
            synthetic data of its shape when the file is absent; "synthetic": ``synthetic_data``
    gram    fastdnn's ``gram`` option for this workload. Only the seed is a real full-batch problem,
            whose X never changes, so it runs as users get it ("auto", which may carry layer 1 in the
            example space); "seed-direct" is the same problem in the direct formulation. The others
            stand in for minibatch steps, whose data change every step: gram=False.

Data are built the same way in every process (seeded), in the course's layout:
X (n_0, m) as the transpose of a C-contiguous (m, n_0) buffer (a view the fast path uses without
copying), Y (1, m) of 0/1 or one-hot (K, m), both in the workload's dtype.
"""

import os
from typing import NamedTuple

import numpy as np


class Workload(NamedTuple):
    dims: tuple
    m: int
    dtype: str
    data: str = "synthetic"
    gram: "bool | str" = False
    batch: "int | None" = None

    @property
    def output(self):
        """"sigmoid" for one output unit, "softmax" for more."""
        return "softmax" if self.dims[-1] > 1 else "sigmoid"

    @property
    def classes(self):
        """Label classes: 2 for a sigmoid output, n_L for a softmax."""
        return max(2, self.dims[-1])


SEED_DIMS = (12288, 20, 7, 5, 1)

WORKLOADS = {
    "seed": Workload(SEED_DIMS, 209, "float64", data="cat", gram="auto"),
    "seed-direct": Workload(SEED_DIMS, 209, "float64", data="cat", gram=False),
    "medium": Workload((784, 256, 256, 1), 256, "float32"),
    "wide": Workload((1024, 2048, 2048, 1), 1024, "float32"),
    "small": Workload((64, 32, 32, 1), 64, "float32"),
    "tiny": Workload((16, 8, 1), 32, "float32"),
    "mnist": Workload((784, 128, 64, 10), 128, "float32"),
}

# The course's cat training set: 209 images of 64 x 64 x 3 (12288 features).
CAT_SHAPE = (209, 64, 64, 3)
CAT_FILE = "train_catvnoncat.h5"  # fastdnn.data.CAT_FILES[0]


def workload(name):
    """The table's entry for ``name``; a KeyError listing the table's names otherwise."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise KeyError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}") from None


def default_data_dir():
    """Where the cat data are looked for: ``fastdnn.data.cat_data_dir()``."""
    from fastdnn.data import cat_data_dir

    return cat_data_dir()


def synthetic_data(n_features, m, dtype, classes=2, seed=0):
    """Gaussian inputs and random labels: (X (n_features, m), Y, source); Y (1, m) of 0/1 for two classes,
    one-hot (K, m) for more."""
    rng = np.random.default_rng(seed)
    rows = rng.standard_normal((m, n_features)).astype(dtype)
    source = f"synthetic Gaussian X, random labels of {classes} classes (seed {seed})"
    return rows.T, _targets(rng.integers(0, classes, size=m), classes, dtype), source


def cat_data(data_dir, dtype="float64"):
    """The course's cat training set, or uniform random pixels and labels of its shape: (X, Y, source).

    X (12288, 209) = x.reshape(m, -1).T / 255 as the course prepares it (read by
    ``fastdnn.data.load_dataset``), Y (1, 209). Falls back to seeded synthetic
    data of the same shape and range when the file or h5py is absent; ``source``
    says which, and why.
    """
    from fastdnn.data import load_dataset
    from fastdnn.errors import MissingDependencyError

    path = os.path.join(data_dir, CAT_FILE) if data_dir else None
    if path and os.path.isfile(path):
        try:
            data = load_dataset(path)
            return data.X.astype(dtype, copy=False).T, _targets(data.y, 2, dtype), f"cat data from {path}"
        except MissingDependencyError:
            reason = "h5py is not installed"
    else:
        reason = f"{path} not found" if path else "no data folder given"
    rng = np.random.default_rng(0)
    m = CAT_SHAPE[0]
    pixels = rng.integers(0, 256, size=CAT_SHAPE, dtype=np.uint8).reshape(m, -1)
    y = rng.integers(0, 2, size=m)
    return (pixels / 255.0).astype(dtype, copy=False).T, _targets(y, 2, dtype), (
        f"synthetic pixels of the cat data's shape ({reason})"
    )


def workload_data(name, data_dir=None):
    """(X, Y, source) for workload ``name``, the same in every process; ``data_dir`` for the cat data
    (default ``default_data_dir()``)."""
    w = workload(name)
    if w.data == "cat":
        X, Y, source = cat_data(data_dir or default_data_dir(), w.dtype)
        if X.shape != (w.dims[0], w.m):
            raise ValueError(f"{source} holds X of shape {X.shape}; workload {name!r} needs {(w.dims[0], w.m)}")
        return X, Y, source
    return synthetic_data(w.dims[0], w.m, w.dtype, w.classes)


def _targets(labels, classes, dtype):
    if classes > 2:
        return np.eye(classes, dtype=dtype)[:, labels]
    return np.asarray(labels, dtype).reshape(1, -1)
