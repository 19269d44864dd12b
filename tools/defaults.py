"""Do the defaults work? DNNClassifier() as constructed, against scikit-learn's MLPClassifier() as constructed.

5-fold stratified cross-validation x seeds on scikit-learn's bundled digits (pixels / 16), breast_cancer,
wine and iris (standardised on the training folds; --unscaled: neither); prints the mean and std accuracy
over every fold of every seed, the range of the seeds' mean accuracies, and the mean fit time.
One BLAS thread for both (OMP/OPENBLAS variables and threadpoolctl). Needs scikit-learn.

    python tools/defaults.py                 # seeds 0,1,2 (about 3 minutes on 2 cores)
    python tools/defaults.py --seeds 0       # quicker
    python tools/defaults.py --optimizer gd  # the auto rate of another optimizer
    python tools/defaults.py --optimizer gd --datasets digits --unscaled --seeds 0,1,2,3,4   # pixels 0-16
    python tools/defaults.py --seeds 0 --datasets iris   # seconds: that it runs
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


DATASETS = ("digits", "breast_cancer", "wine", "iris")


def datasets(names, unscaled=False):
    """(label, X, y, scale) of each of ``names``: digits as pixels / 16, the others standardised per fold;
    ``unscaled``: every one as loaded."""
    import sklearn.datasets

    for name in names:
        X, y = getattr(sklearn.datasets, f"load_{name}")(return_X_y=True)
        if unscaled:
            yield f"{name} (raw)", X, y, False
        elif name == "digits":
            yield "digits/16", X / 16.0, y, False
        else:
            yield name, X, y, True


def cross_validate(make, X, y, scale, seeds):
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scores, seconds, per_seed = [], [], []
    for seed in seeds:
        first = len(scores)
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
            Xtr, Xte = X[train], X[test]
            if scale:
                scaler = StandardScaler().fit(Xtr)
                Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
            model = make(seed)
            t0 = time.perf_counter()
            model.fit(Xtr, y[train])
            seconds.append(time.perf_counter() - t0)
            scores.append(model.score(Xte, y[test]))
        per_seed.append(np.mean(scores[first:]))
    return np.mean(scores), np.std(scores), np.mean(seconds), min(per_seed), max(per_seed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="random_state of each repetition (default 0,1,2)")
    parser.add_argument("--optimizer", default="adam", choices=["gd", "momentum", "adam"], help="fastdnn's optimizer (default adam)")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"comma-separated (default: all): {', '.join(DATASETS)}")
    parser.add_argument("--unscaled", action="store_true", help="every dataset as loaded: no / 16, no standardising")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    names = [n for n in args.datasets.split(",") if n]
    if not names or set(names) - set(DATASETS):
        parser.error(f"--datasets: choose from {', '.join(DATASETS)}")
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    import fastdnn
    from fastdnn.options import resolve_learning_rate

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    default = fastdnn.DNNClassifier(optimizer=args.optimizer)
    print(f"fastdnn {default!r} (defaults: hidden {default.hidden_layer_sizes}, init {default.init}, "
          f"lr {resolve_learning_rate(default.learning_rate, args.optimizer)}) against MLPClassifier(); "
          f"5-fold CV x seeds {seeds}; 1 BLAS thread")
    print(f"{'dataset':20s} {'DNNClassifier: mean ±std [seeds]':>34s} {'MLPClassifier':>34s}   fit s fastdnn / sklearn")
    with threadpool_limits(limits=1):
        for name, X, y, scale in datasets(names, args.unscaled):
            ours = cross_validate(lambda s: fastdnn.DNNClassifier(optimizer=args.optimizer, random_state=s), X, y,
                                  scale, seeds)
            theirs = cross_validate(lambda s: MLPClassifier(random_state=s), X, y, scale, seeds)
            cells = [f"{r[0]:.4f} ±{r[1]:.4f} [{r[3]:.4f}-{r[4]:.4f}]" for r in (ours, theirs)]
            print(f"{name:20s} {cells[0]:>34s} {cells[1]:>34s}   {ours[2]:.2f} / {theirs[2]:.2f}", flush=True)


if __name__ == "__main__":
    main()
