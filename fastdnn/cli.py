"""The ``fastdnn`` command: ``fastdnn train`` trains on the built-in dataset."""

import argparse
import sys
import time

import numpy as np


def _train(args):
    import fastdnn
    from fastdnn.datasets import make_default_dataset

    X, Y = make_default_dataset(n_samples=args.samples, n_features=args.features)
    n_val = max(1, args.samples // 10)
    X_train, Y_train = X[:, n_val:], Y[:, n_val:]
    X_val, Y_val = X[:, :n_val], Y[:, :n_val]
    dims = [X.shape[0]] + [int(u) for u in args.layers.split(",") if u] + [1]
    print(f"fastdnn: training {dims} on {X_train.shape[1]} examples ({X.dtype}), {args.iterations} iterations")
    t0 = time.perf_counter()
    params, costs = fastdnn.L_layer_model(
        X_train, Y_train, dims, learning_rate=args.lr, num_iterations=args.iterations, threads=args.threads
    )
    elapsed = time.perf_counter() - t0
    for i in range(0, len(costs), max(1, len(costs) // 10)):
        print(f"  iteration {i:5d}  cost {costs[i]:.6f}")
    print(f"  iteration {len(costs) - 1:5d}  cost {costs[-1]:.6f}")
    train_acc = float(np.mean(fastdnn.predict(X_train, params) == Y_train))
    val_acc = float(np.mean(fastdnn.predict(X_val, params) == Y_val))
    print(f"train accuracy {train_acc:.4f}  validation accuracy {val_acc:.4f}  ({elapsed:.2f} s)")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fastdnn", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    train = sub.add_parser("train", help="train on the built-in synthetic dataset")
    train.add_argument("--samples", type=int, default=20_000)
    train.add_argument("--features", type=int, default=200)
    train.add_argument("--layers", default="64,32", help="hidden layer sizes, comma-separated")
    train.add_argument("--lr", type=float, default=0.5)
    train.add_argument("--iterations", type=int, default=300)
    train.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command in (None, "train"):
        if args.command is None:
            args = parser.parse_args(["train"] + list(argv or []))
        return _train(args)
    parser.error(f"unknown command {args.command}")
    return 2
