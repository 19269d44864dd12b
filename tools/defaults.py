"""Do the defaults work? fastdnn's estimators as constructed, against scikit-learn's as constructed.

Three parts (--parts, default all, printed in this order), one BLAS thread for all of them (OMP/OPENBLAS
variables and threadpoolctl; fastdnn's own ``threads`` left at its default), each fit timed alone
(time.perf_counter around ``fit``); needs scikit-learn:

classification: DNNClassifier() against MLPClassifier(). 5-fold stratified cross-validation x seeds on
  scikit-learn's bundled digits (pixels / 16), breast_cancer, wine and iris (standardised on the training
  folds; --unscaled: neither); prints the mean and std accuracy over every fold of every seed, the range of
  the seeds' mean accuracies, and the mean fit time.
regression: DNNRegressor() against MLPRegressor(), LinearRegression() beside them as a reference (the
  make_regression target is linear, so there it is about the best any model does). scikit-learn's bundled diabetes data
  (5-fold cross-validation, shuffled with random_state 0) and make_regression(--regression-rows, 100
  features, noise 50, random_state 0) split 75/25 (random_state 0). X and y are both standardised on the
  training rows (--unscaled: neither): both libraries ask for scaled targets (their networks start near 0
  and their default rates suit values of order 1), and diabetes' y (25-346) or make_regression's (std in the
  hundreds) would measure how far 200 epochs climb towards y's mean, not how well the defaults fit. Test R^2
  (sklearn.metrics.r2_score) is unchanged by y's scaling (the same affine map on truth and prediction scales
  both sums of squares alike): it is the R^2 the predictions would score mapped back to y's units. Prints
  mean and std R^2 over every fold of every seed, the range of the seeds' means, and the mean fit time.
class-weight: DNNClassifier(class_weight="balanced") against DNNClassifier(), LogisticRegression(
  class_weight="balanced") against LogisticRegression() as a reference (MLPClassifier has no class_weight),
  on make_classification(--class-weight-rows, weights=[50/51], random_state 0) (1:50), split 75/25
  stratified (random_state 0), X standardised on the training rows (--unscaled: not). Prints the test
  split's balanced accuracy and the minority class's recall (sklearn.metrics), each the mean over the seeds
  with their range, and the mean fit time.

    python tools/defaults.py                 # every part, seeds 0,1,2 (the classification alone: about 3 minutes
                                             # on 2 cores; the 200000-row make_regression takes longest)
    python tools/defaults.py --seeds 0       # quicker
    python tools/defaults.py --parts classification   # the classifiers on the bundled datasets alone
    python tools/defaults.py --optimizer gd  # the auto rate of another optimizer
    python tools/defaults.py --optimizer gd --datasets digits --unscaled --seeds 0,1,2,3,4   # pixels 0-16
    python tools/defaults.py --seeds 0 --datasets iris --regression-rows 2000 --class-weight-rows 2000  # that it runs
"""

import argparse
import os
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


DATASETS = ("digits", "breast_cancer", "wine", "iris")
PARTS = ("classification", "regression", "class-weight")
REGRESSION_FEATURES = 100
REGRESSION_NOISE = 50.0
MIN_REGRESSION_ROWS = 20  # a 25% test split of at least 5 rows
IMBALANCE = 50  # majority rows per minority row
MIN_CLASS_WEIGHT_ROWS = 1000  # about 20 minority rows, 5 of them in the test split


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


def standardised(train, test):
    """``train`` and ``test`` less ``train``'s mean, over ``train``'s std (StandardScaler's, per column)."""
    from sklearn.preprocessing import StandardScaler

    if train.ndim == 1:
        train, test = standardised(train[:, None], test[:, None])
        return train.ravel(), test.ravel()
    scaler = StandardScaler().fit(train)
    return scaler.transform(train), scaler.transform(test)


def regression_splits(rows, unscaled):
    """(label, splits) of diabetes' 5 folds and of make_regression's 75/25 split, each split
    (Xtr, ytr, Xte, yte), X and y standardised on its training rows unless ``unscaled``."""
    from sklearn.datasets import load_diabetes, make_regression
    from sklearn.model_selection import KFold, train_test_split

    suffix = " (raw)" if unscaled else ""
    X, y = load_diabetes(return_X_y=True)
    folds = KFold(5, shuffle=True, random_state=0).split(X)
    yield f"diabetes 5-fold{suffix}", [scaled_split(X[tr], y[tr], X[te], y[te], unscaled) for tr, te in folds]
    X, y = make_regression(n_samples=rows, n_features=REGRESSION_FEATURES, noise=REGRESSION_NOISE, random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)
    yield f"make_regression {rows}x{REGRESSION_FEATURES}{suffix}", [scaled_split(Xtr, ytr, Xte, yte, unscaled)]


def scaled_split(Xtr, ytr, Xte, yte, unscaled):
    """(Xtr, ytr, Xte, yte), X and y standardised on the training rows unless ``unscaled``."""
    if unscaled:
        return Xtr, ytr, Xte, yte
    Xtr, Xte = standardised(Xtr, Xte)
    ytr, yte = standardised(ytr, yte)
    return Xtr, ytr, Xte, yte


def fit_timed(model, X, y):
    """Seconds ``model.fit(X, y)`` took."""
    t0 = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - t0


def repeat(make, splits, seeds, score):
    """Mean and std of ``score(model, Xte, yte)`` over every split of every seed, the mean fit seconds, and
    the least and greatest of the seeds' mean scores; ``make(seed)`` builds each model."""
    scores, seconds, per_seed = [], [], []
    for seed in seeds:
        first = len(scores)
        for Xtr, ytr, Xte, yte in splits:
            model = make(seed)
            seconds.append(fit_timed(model, Xtr, ytr))
            scores.append(score(model, Xte, yte))
        per_seed.append(np.mean(scores[first:]))
    return np.mean(scores), np.std(scores), np.mean(seconds), min(per_seed), max(per_seed)


def cell(result):
    return f"{result[0]:.4f} ±{result[1]:.4f} [{result[3]:.4f}-{result[4]:.4f}]"


def classification(args, seeds, names):
    from sklearn.neural_network import MLPClassifier

    import fastdnn
    from fastdnn.options import resolve_learning_rate

    default = fastdnn.DNNClassifier(optimizer=args.optimizer)
    print(f"fastdnn {default!r} (defaults: hidden {default.hidden_layer_sizes}, init {default.init}, "
          f"lr {resolve_learning_rate(default.learning_rate, args.optimizer)}) against MLPClassifier(); "
          f"5-fold CV x seeds {seeds}; 1 BLAS thread")
    print(f"{'dataset':20s} {'DNNClassifier: mean ±std [seeds]':>34s} {'MLPClassifier':>34s}   fit s fastdnn / sklearn")
    for name, X, y, scale in datasets(names, args.unscaled):
        ours = cross_validate(lambda s: fastdnn.DNNClassifier(optimizer=args.optimizer, random_state=s), X, y,
                              scale, seeds)
        theirs = cross_validate(lambda s: MLPClassifier(random_state=s), X, y, scale, seeds)
        print(f"{name:20s} {cell(ours):>34s} {cell(theirs):>34s}   {ours[2]:.2f} / {theirs[2]:.2f}", flush=True)


def regression(args, seeds):
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score
    from sklearn.neural_network import MLPRegressor

    import fastdnn
    from fastdnn.options import resolve_learning_rate

    def r2(model, X, y):
        return r2_score(y, model.predict(X))

    default = fastdnn.DNNRegressor(optimizer=args.optimizer)
    scaling = "X and y as loaded" if args.unscaled else "X and y standardised on the training rows"
    print(f"fastdnn {default!r} (defaults: hidden {default.hidden_layer_sizes}, init {default.init}, "
          f"lr {resolve_learning_rate(default.learning_rate, args.optimizer)}) against MLPRegressor(); "
          f"test R^2; {scaling}; seeds {seeds}; 1 BLAS thread")
    print(f"{'dataset':28s} {'DNNRegressor: mean ±std [seeds]':>34s} {'MLPRegressor':>34s} "
          f"{'LinearRegression':>16s}   fit s fastdnn / sklearn")
    for label, splits in regression_splits(args.regression_rows, args.unscaled):
        ours = repeat(lambda s: fastdnn.DNNRegressor(optimizer=args.optimizer, random_state=s), splits, seeds, r2)
        theirs = repeat(lambda s: MLPRegressor(random_state=s), splits, seeds, r2)
        linear = repeat(lambda s: LinearRegression(), splits, [0], r2)
        print(f"{label:28s} {cell(ours):>34s} {cell(theirs):>34s} {linear[0]:16.4f}   "
              f"{ours[2]:.2f} / {theirs[2]:.2f}", flush=True)


def class_weight_split(rows, unscaled):
    """(Xtr, ytr, Xte, yte, minority): make_classification's 1:IMBALANCE rows split 75/25 stratified, X
    standardised on the training rows unless ``unscaled``; ``minority`` the label of the fewer training rows."""
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=rows, weights=[IMBALANCE / (IMBALANCE + 1)], random_state=0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    if not unscaled:
        Xtr, Xte = standardised(Xtr, Xte)
    labels, counts = np.unique(ytr, return_counts=True)
    return Xtr, ytr, Xte, yte, labels[np.argmin(counts)]


def class_weight(args, seeds):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score, recall_score

    import fastdnn

    Xtr, ytr, Xte, yte, minority = class_weight_split(args.class_weight_rows, args.unscaled)
    makes = [lambda s: fastdnn.DNNClassifier(optimizer=args.optimizer, random_state=s),
             lambda s: fastdnn.DNNClassifier(optimizer=args.optimizer, class_weight="balanced", random_state=s),
             lambda s: LogisticRegression(random_state=s),
             lambda s: LogisticRegression(class_weight="balanced", random_state=s)]
    scaling = "X as generated" if args.unscaled else "X standardised on the training rows"
    print(f"class_weight on make_classification({args.class_weight_rows} rows, 1:{IMBALANCE}), minority class "
          f"{minority}: {np.sum(ytr == minority)} of {len(ytr)} training rows, {np.sum(yte == minority)} of "
          f"{len(yte)} test rows; 75/25 stratified; {scaling}; seeds {seeds}; 1 BLAS thread")
    print(f"{'model':44s} {'balanced accuracy [seeds]':>26s} {'minority recall [seeds]':>26s}   fit s")
    for make in makes:
        balanced, recall, seconds = [], [], []
        for seed in seeds:
            model = make(seed)
            seconds.append(fit_timed(model, Xtr, ytr))
            predicted = model.predict(Xte)
            balanced.append(balanced_accuracy_score(yte, predicted))
            recall.append(recall_score(yte, predicted, pos_label=minority))
        # The row's name is the model's own repr (random_state left unset), so that it says what was fitted.
        cells = [f"{np.mean(v):.4f} [{min(v):.4f}-{max(v):.4f}]" for v in (balanced, recall)]
        print(f"{make(None)!r:44s} {cells[0]:>26s} {cells[1]:>26s}   {np.mean(seconds):.2f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated (default: all): {', '.join(PARTS)}")
    parser.add_argument("--seeds", default="0,1,2", help="random_state of each repetition (default 0,1,2)")
    parser.add_argument("--optimizer", default="adam", choices=["gd", "momentum", "adam"], help="fastdnn's optimizer (default adam)")
    parser.add_argument("--datasets", default=",".join(DATASETS),
                        help=f"the classification part's, comma-separated (default: all): {', '.join(DATASETS)}")
    parser.add_argument("--unscaled", action="store_true",
                        help="every dataset as loaded: no / 16, no standardising of X (nor of the regression's y)")
    parser.add_argument("--regression-rows", type=int, default=200_000, metavar="N",
                        help=f"make_regression's rows (default 200000, at least {MIN_REGRESSION_ROWS})")
    parser.add_argument("--class-weight-rows", type=int, default=20_000, metavar="N",
                        help="the imbalanced make_classification's rows "
                             f"(default 20000, at least {MIN_CLASS_WEIGHT_ROWS})")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    if not parts or set(parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}, got {args.parts!r}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds: comma-separated integers, got {args.seeds!r}")
    names = [n for n in args.datasets.split(",") if n]
    if not names or set(names) - set(DATASETS):
        parser.error(f"--datasets: choose from {', '.join(DATASETS)}")
    if args.regression_rows < MIN_REGRESSION_ROWS:
        parser.error(f"--regression-rows: at least {MIN_REGRESSION_ROWS}, got {args.regression_rows}")
    if args.class_weight_rows < MIN_CLASS_WEIGHT_ROWS:
        parser.error(f"--class-weight-rows: at least {MIN_CLASS_WEIGHT_ROWS}, got {args.class_weight_rows}")
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    runs = {"classification": lambda: classification(args, seeds, names), "regression": lambda: regression(args, seeds),
            "class-weight": lambda: class_weight(args, seeds)}
    with threadpool_limits(limits=1):
        for i, part in enumerate(p for p in PARTS if p in parts):
            if i:
                print()
            runs[part]()


if __name__ == "__main__":
    main()
