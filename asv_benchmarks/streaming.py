"""Training on data on disk: one epoch read whole into memory against the same epoch streamed in blocks.

The file (40,000 x 256 float32, 41 MB, labels beside it) is written in setup to
a private folder, so it is in the page cache: the comparison is the streaming
machinery's own cost (a reader thread filling the second buffer while the
nogil kernel trains on the first, one compiled call per block), not the disk's.
``memory`` mode gives a budget larger than the file (read whole, the in-memory
route); ``streamed`` gives 4MB (two buffers of about 3,900 rows, 11 blocks an
epoch). Both train [256, 128, 64, 1], Adam, batch 256, one epoch, through
``DNNClassifier.fit(path)``; the time includes reading the file (all of it
before training in ``memory`` mode, block by block in ``streamed``). tools/stream_bench.py
measures the same comparison on files of gigabytes, with peak RSS and a cold
page cache.
"""

import os
import shutil
import tempfile

import numpy as np

from fastdnn import DNNClassifier

try:
    from . import common
except ImportError:  # imported as a top-level module, with asv_benchmarks/ itself on sys.path
    import common

ROWS, FEATURES = 40_000, 256
BUDGETS = {"memory": "1GB", "streamed": "4MB"}


class StreamedEpoch:
    params = list(BUDGETS)
    param_names = ["mode"]
    timeout = 120

    def setup(self, mode):
        common.limit_threads()
        self.folder = tempfile.mkdtemp(prefix="fastdnn-asv-stream-")
        self.path = os.path.join(self.folder, "data.npy")
        rng = np.random.default_rng(0)
        X = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
        np.save(self.path, X)
        np.save(os.path.join(self.folder, "data.labels.npy"), (X @ rng.standard_normal(FEATURES) > 0).astype(np.int8))
        self.options = dict(hidden_layer_sizes=(128, 64), batch_size=256, max_iter=1, random_state=0,
                            memory=BUDGETS[mode], threads=common.THREADS)
        self.fit()  # compile (or load) the kernels outside the timing

    def teardown(self, mode):
        shutil.rmtree(self.folder, ignore_errors=True)

    def fit(self):
        DNNClassifier(**self.options).fit(self.path, None)

    def time_epoch(self, mode):
        self.fit()

    def peakmem_epoch(self, mode):
        self.fit()
