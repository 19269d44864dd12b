"""The README's example of every option, on the course's cat data: ``fastdnn.model`` with Adam, minibatches,
L2 and He initialisation, once per seed; the train and test accuracy of each run and its time.

    python tools/cat_example.py                      # the README's arguments, seeds 1-5 (seed 1: its default)
    python tools/cat_example.py --lr 1e-3 --seeds 1  # Adam's usual rate, too large for 12288 raw inputs

The call is the README's: ``fastdnn.model(X, Y, [n_0, 20, 7, 5, 1], optimizer="adam", learning_rate=LR,
mini_batch_size=64, num_epochs=EPOCHS, lambd=0.7, init="he", seed=SEED)`` on the course's training set (209
images), scored with ``fastdnn.predict`` on it and on the test set (50 images).
"""

import argparse
import os
import sys
import time


def main(argv=None):
    from fastdnn.data import CAT_FILES, cat_data_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=cat_data_dir(), help="the cat files' folder (default %(default)s: "
                   "$FASTDNN_CAT_DATA, else ../shared/data/catvnoncat beside the checkout)")
    p.add_argument("--seeds", default="1,2,3,4,5", help="seed of each run (default 1,2,3,4,5)")
    p.add_argument("--lr", type=float, default=3e-5, help="Adam's learning rate (default 3e-5, the README's)")
    p.add_argument("--epochs", type=int, default=300, help="epochs a run (default 300, the README's)")
    args = p.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be integers separated by commas, got {args.seeds!r}")
    if args.epochs < 1 or not args.lr > 0:
        p.error("--epochs must be at least 1 and --lr positive")
    missing = [f for f in CAT_FILES if not os.path.isfile(os.path.join(args.data_dir, f))]
    if missing:
        p.error(f"--data-dir {args.data_dir}: no {' or '.join(missing)} there")
    import numpy as np

    import fastdnn
    from fastdnn.data import load_dataset

    train = load_dataset(os.path.join(args.data_dir, CAT_FILES[0]))
    test = load_dataset(os.path.join(args.data_dir, CAT_FILES[1]), prefer="test")
    X, Y = train.X.T, train.y.reshape(1, -1)
    Xt, Yt = test.X.T, test.y.reshape(1, -1)
    print(f"fastdnn.model(X, Y, [{X.shape[0]}, 20, 7, 5, 1], optimizer='adam', learning_rate={args.lr:g}, "
          f"mini_batch_size=64, num_epochs={args.epochs}, lambd=0.7, init='he', seed=SEED); {X.shape[1]} training, "
          f"{Xt.shape[1]} test images; {os.cpu_count()} CPUs")
    tests = []
    for seed in seeds:
        t0 = time.perf_counter()
        parameters, _ = fastdnn.model(X, Y, [X.shape[0], 20, 7, 5, 1], optimizer="adam", learning_rate=args.lr,
                                      mini_batch_size=64, num_epochs=args.epochs, lambd=0.7, init="he", seed=seed)
        seconds = time.perf_counter() - t0
        accuracy = [float(np.mean(fastdnn.predict(A, parameters) == B)) for A, B in ((X, Y), (Xt, Yt))]
        tests.append(accuracy[1])
        print(f"seed {seed}: train {accuracy[0]:.3f}, test {accuracy[1]:.3f}, {seconds:.2f} s", flush=True)
    print(f"test accuracy over seeds {args.seeds}: {min(tests):.3f}-{max(tests):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
