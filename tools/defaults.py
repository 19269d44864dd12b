"""Do the defaults work? DNNClassifier() as constructed, against scikit-learn's MLPClassifier() as constructed.

5-fold stratified cross-validation x seeds on scikit-learn's bundled digits (pixels / 16), breast_cancer,
wine and iris (standardised on the training folds); prints mean and std accuracy and the mean fit time.
One BLAS thread for both (OMP/OPENBLAS variables and threadpoolctl). Needs scikit-learn.

    python tools/defaults.py                 # seeds 0,1,2 (about 3 minutes on 2 cores)
    python tools/defaults.py --seeds 0       # quicker
    python tools/defaults.py --optimizer gd  # the auto rate of another optimizer
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def datasets():
    from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine

    X, y = load_digits(return_X_y=True)
    yield "digits/16", X / 16.0, y, False
    for name, load in (("breast_cancer", load_breast_cancer), ("wine", load_wine), ("iris", load_iris)):
        X, y = load(return_X_y=True)
        yield name, X, y, True


def cross_validate(make, X, y, scale, seeds):
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    scores, seconds = [], []
    for seed in seeds:
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
    return np.mean(scores), np.std(scores), np.mean(seconds)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="random_state of each repetition (default 0,1,2)")
    parser.add_argument("--optimizer", default="adam", choices=["gd", "momentum", "adam"], help="fastdnn's optimizer (default adam)")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits

    import fastdnn

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    default = fastdnn.DNNClassifier(optimizer=args.optimizer)
    print(f"fastdnn {default!r} (defaults: hidden {default.hidden_layer_sizes}, init {default.init}, "
          f"lr {fastdnn.options.resolve_learning_rate(default.learning_rate, args.optimizer)}) against MLPClassifier(); "
          f"5-fold CV x seeds {seeds}; 1 BLAS thread")
    print(f"{'dataset':14s} {'DNNClassifier':>22s} {'MLPClassifier':>22s}   fit s fastdnn / sklearn")
    with threadpool_limits(limits=1):
        for name, X, y, scale in datasets():
            ours = cross_validate(lambda s: fastdnn.DNNClassifier(optimizer=args.optimizer, random_state=s), X, y, scale, seeds)
            theirs = cross_validate(lambda s: MLPClassifier(random_state=s), X, y, scale, seeds)
            print(f"{name:14s} {ours[0]:>14.4f} ±{ours[1]:.4f} {theirs[0]:>14.4f} ±{theirs[1]:.4f}   {ours[2]:.2f} / {theirs[2]:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
