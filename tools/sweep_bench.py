"""The hyperparameter-study benchmark of the sweep issue: a 24-configuration grid on the course's cat data,
fastdnn's sweep against scikit-learn's GridSearchCV over MLPClassifier and the course's numpy code.

    python tools/sweep_bench.py --data ../shared/data/catvnoncat --repeats 3
    python tools/sweep_bench.py --repeats 1 --iterations 5          # seconds: that it runs

The grid: learning rate 0.0025, 0.0075, 0.02 x the course's two networks (12288-7-1 and 12288-20-7-5-1) x
initialisation deep, he x training data 50%, 100%; 2500 iterations (--iterations) of full-batch gradient
descent (the course's), one held-out validation split (10%), the test set scored.

    fastdnn     fastdnn.sweep over the 24 configurations, 2 worker processes x 1 BLAS thread (the default on
                2 cores), from a fresh process: the wall time includes starting the workers and loading
                the compiled kernels (warm cache: a first, untimed sweep fills it)
    sklearn     GridSearchCV(MLPClassifier(solver='sgd', momentum=0, alpha=0, batch_size=m, shuffle=False,
                max_iter=2500, n_iter_no_change > 2500, tol=0), n_jobs=2) over learning rate x network, once on
                each data size, with the same validation split (cv=[(train, held)], refit=False): 12 of the 24
                configurations, since MLPClassifier has no choice of initialisation (it always draws Glorot's)
    reference   fastdnn.reference.model (the course's numpy code) on 2 configurations (each network at lr
                0.0075, deep init, all the data), 1 process, 2 BLAS threads

Each library runs in its own process, modes interleaved run by run. Reported: the wall time of each
mode's configurations and the time per configuration (wall time / configurations, for the sweeps the
throughput of 2 workers; for the reference, one configuration after another). OPENBLAS_CORETYPE is
removed in the runs it starts.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

RATES = [0.0025, 0.0075, 0.02]
NETWORKS = [(7,), (20, 7, 5)]
INITS = ["deep", "he"]
SIZES = [0.5, 1.0]
ITERATIONS = 2500


def load(folder):
    from fastdnn.data import load_dataset

    train = load_dataset(os.path.join(folder, "train_catvnoncat.h5"))
    test = load_dataset(os.path.join(folder, "test_catvnoncat.h5"), prefer="test")
    return np.asarray(train.X, np.float64), train.y, np.asarray(test.X, np.float64), test.y


def fastdnn_mode(folder, iterations):
    from fastdnn.sweeps import sweep

    X, y, Xt, yt = load(folder)
    t0 = time.perf_counter()
    results = sweep(X, y, {"learning_rate": RATES, "hidden_layer_sizes": NETWORKS, "init": INITS, "train_size": SIZES},
                    fixed={"optimizer": "gd", "batch_size": None, "max_iter": iterations}, test=(Xt, yt), seed=1)
    wall = time.perf_counter() - t0
    best = results.sorted("validation")[0]
    return {"configurations": len(results.rows), "wall": wall, "failed": len(results.failed),
            "run_seconds": [r["seconds_mean"] for r in results.rows],
            "best": {k: best[k] for k in ("learning_rate", "hidden_layer_sizes", "init", "train_size",
                                          "validation_mean", "test_mean")}}


def sklearn_mode(folder, iterations):
    from sklearn.model_selection import GridSearchCV
    from sklearn.neural_network import MLPClassifier

    from fastdnn.labels import split_rows

    X, y, _, _ = load(folder)
    train, held = split_rows(len(X), 0.1, 1)
    order = np.random.default_rng(2).permutation(len(train))
    fits, wall = 0, 0.0
    for size in SIZES:
        rows = np.sort(train[order[: max(1, round(size * len(train)))]])
        keep = np.concatenate([rows, held])
        cv = [(np.arange(rows.size), np.arange(rows.size, keep.size))]
        mlp = MLPClassifier(solver="sgd", momentum=0, alpha=0, batch_size=rows.size, shuffle=False, max_iter=iterations,
                            n_iter_no_change=iterations + 1, tol=0, learning_rate="constant", activation="relu",
                            random_state=1)
        search = GridSearchCV(mlp, {"learning_rate_init": RATES, "hidden_layer_sizes": NETWORKS}, cv=cv, n_jobs=2,
                              refit=False)
        t0 = time.perf_counter()
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            search.fit(X[keep], y[keep])
        wall += time.perf_counter() - t0
        fits += len(search.cv_results_["params"])
    return {"configurations": fits, "wall": wall}


def reference_mode(folder, iterations):
    from threadpoolctl import threadpool_limits

    from fastdnn import reference

    X, y, _, _ = load(folder)
    classes = np.unique(y)
    Y = (y == classes[1]).astype(np.float64).reshape(1, -1)
    times = []
    with threadpool_limits(2):
        for hidden in NETWORKS:
            t0 = time.perf_counter()
            reference.model(X.T, Y, [X.shape[1], *hidden, 1], learning_rate=0.0075, num_epochs=iterations, init="deep")
            times.append(time.perf_counter() - t0)
    return {"configurations": len(times), "wall": sum(times), "run_seconds": times}


MODES = {"fastdnn": fastdnn_mode, "sklearn": sklearn_mode, "reference": reference_mode}


def run(mode, folder, iterations):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", mode, "--data", folder,
                           "--iterations", str(iterations)],
                          capture_output=True, text=True, env=env, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"sweep_bench: {mode} failed:\n{done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    return json.loads(lines[0][len("RESULT "):])


def main(argv=None):
    from fastdnn.data import CAT_FILES, cat_data_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=cat_data_dir(), help="the cat files' folder (default %(default)s: "
                   "$FASTDNN_CAT_DATA, else ../shared/data/catvnoncat beside the checkout)")
    p.add_argument("--iterations", type=int, default=ITERATIONS,
                   help=f"of every run (default {ITERATIONS}, the course's)")
    p.add_argument("--repeats", type=int, default=3, help="fastdnn sweeps timed (default 3)")
    p.add_argument("--others", type=int, default=1, help="runs of sklearn and the reference (default 1)")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--json", help="write the measurements here")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(MODES[args.worker](args.data, args.iterations)), flush=True)
        return 0
    modes = args.modes.split(",")
    missing = [f for f in CAT_FILES if not os.path.isfile(os.path.join(args.data, f))]
    if missing:
        p.error(f"--data {args.data}: no {' or '.join(missing)} there")
    if set(modes) - set(MODES) or min(args.repeats, args.others, args.iterations) < 1:
        p.error(f"--modes must be among {', '.join(MODES)}; --repeats, --others and --iterations at least 1")
    if "fastdnn" in modes:
        run("fastdnn", args.data, args.iterations)  # fills the compiled-kernel cache: the timed sweeps start warm
    out = {m: [] for m in modes}
    for r in range(max(args.repeats, args.others)):
        for mode in modes:
            if r < (args.repeats if mode == "fastdnn" else args.others):
                out[mode].append(run(mode, args.data, args.iterations))
                got = out[mode][-1]
                print(f"{mode}: {got['configurations']} configurations in {got['wall']:.1f} s", flush=True)
    print("\n| mode | configurations | wall time, median [range] | per configuration |")
    print("|---|---|---|---|")
    per = {}
    for mode, runs in out.items():
        walls = [r["wall"] for r in runs]
        n = runs[0]["configurations"]
        per[mode] = statistics.median(walls) / n
        print(f"| {mode} | {n} | {statistics.median(walls):.1f} s [{min(walls):.1f}-{max(walls):.1f}] | {per[mode]:.2f} s |")
    if "fastdnn" in per:
        for mode in per:
            if mode != "fastdnn":
                print(f"{mode} / fastdnn, per configuration: {per[mode] / per['fastdnn']:.3g}x")
        print("best by validation:", out["fastdnn"][0]["best"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
