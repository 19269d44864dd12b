"""Every entry point on the course's cat run, side by side: is the engine really one?

Times 2500 (--epochs) full-batch gd iterations of the course's [12288, 20, 7, 5, 1] network through
``fastdnn.L_layer_model``, ``DNNClassifier(verbose=True)``, the README's ``fastdnn train`` command, and
that command with ``--checkpoint-every 500`` and ``100``. Each measurement runs in its own fresh process
(warm kernel cache, fastdnn's thread policy); the command's figure is its own "trained ... in X s" line
(training only), and the whole process's wall time is shown beside it. Medians [ranges] over repeats.

    python tools/entry_points.py                       # 5 repeats; the cat files from fastdnn.data.cat_data_dir()
    python tools/entry_points.py --repeats 3 --data-dir DIR
    python tools/entry_points.py --repeats 1 --epochs 20     # seconds: that it runs
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

API = r'''
import contextlib, io, sys, time
import numpy as np
import fastdnn
from fastdnn.data import load_dataset
data = load_dataset(sys.argv[2] + "/train_catvnoncat.h5")
X, y, epochs = data.X, data.y, int(sys.argv[3])
if sys.argv[1] == "api":
    fastdnn.L_layer_model(X.T, y.reshape(1, -1), [X.shape[1], 20, 7, 5, 1], num_iterations=10)
    t = time.perf_counter()
    fastdnn.L_layer_model(X.T, y.reshape(1, -1), [X.shape[1], 20, 7, 5, 1], learning_rate=0.0075, num_iterations=epochs)
else:
    kw = dict(hidden_layer_sizes=(20, 7, 5), optimizer="gd", learning_rate=0.0075, batch_size=None, max_iter=epochs,
              init="deep", random_state=1, verbose=True)
    with contextlib.redirect_stdout(io.StringIO()):
        fastdnn.DNNClassifier(**{**kw, "max_iter": 10}).fit(X, y)
        t = time.perf_counter()
        fastdnn.DNNClassifier(**kw).fit(X, y)
print("SECONDS", time.perf_counter() - t)
'''
RUNS = {
    "fastdnn.L_layer_model": ("api", None),
    "DNNClassifier(verbose=True)": ("verbose", None),
    "fastdnn train (README)": ("cli", None),
    "fastdnn train --checkpoint-every 500": ("cli", 500),
    "fastdnn train --checkpoint-every 100": ("cli", 100),
}


def finished(kind, argv):
    """The standard output of a run that succeeded; a failed one ends the tool with the end of its errors."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"entry_points: the {kind} run failed:\n{done.stderr[-2000:]}")
    return done.stdout


def measure(kind, every, data_dir, folder, epochs):
    if kind != "cli":
        out = finished(kind, [sys.executable, "-c", API, kind, data_dir, str(epochs)])
        return float(re.search(r"SECONDS ([\d.e-]+)", out).group(1)), None
    argv = [sys.executable, "-m", "fastdnn", "train", "--data", f"{data_dir}/train_catvnoncat.h5", "--test",
            f"{data_dir}/test_catvnoncat.h5", "--layers", "20,7,5", "--optimizer", "gd", "--lr", "0.0075",
            "--batch-size", "full", "--epochs", str(epochs), "--seed", "1", "--out", os.path.join(folder, "m.npz"),
            "--quiet"]
    if every:
        argv += ["--checkpoint-every", str(every)]
    t0 = time.perf_counter()
    out = finished(kind, argv)
    return float(re.search(rf"trained {epochs} epochs in ([\d.]+) s", out).group(1)), time.perf_counter() - t0


def main(argv=None):
    from fastdnn.data import CAT_FILES, cat_data_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", default=cat_data_dir(), help="folder of the course's .h5 files (default "
                        "%(default)s: $FASTDNN_CAT_DATA, else ../shared/data/catvnoncat beside the checkout)")
    parser.add_argument("--epochs", type=int, default=2500, help="iterations a run (default 2500, the course's)")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.epochs < 1:
        parser.error("--repeats and --epochs must be at least 1")
    missing = [f for f in CAT_FILES if not os.path.isfile(os.path.join(args.data_dir, f))]
    if missing:
        parser.error(f"--data-dir {args.data_dir}: no {' or '.join(missing)} there")
    results = {name: [] for name in RUNS}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            for name, (kind, every) in RUNS.items():
                results[name].append(measure(kind, every, args.data_dir, folder, args.epochs))
    base = statistics.median(t for t, _ in results["fastdnn.L_layer_model"])
    for name, values in results.items():
        t = [a for a, _ in values]
        walls = [w for _, w in values if w is not None]
        line = f"{name:38s} training {statistics.median(t):.3f} s [{min(t):.3f}-{max(t):.3f}]  x{statistics.median(t) / base:.2f}"
        if walls:
            line += f"   whole process {statistics.median(walls):.2f} s [{min(walls):.2f}-{max(walls):.2f}]"
        print(line, flush=True)


if __name__ == "__main__":
    main()
