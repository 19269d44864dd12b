"""Whole training runs with the course's signatures: ``model`` and ``L_layer_model`` over the engine.

Both check their arguments like the reference's, initialise like it, and train
through ``fastdnn.engine.Engine`` (one compiled call for the whole run unless
``print_cost`` asks to look in between).
"""

import os

import numpy as np

from fastdnn import options as O
from fastdnn import validation as V
from fastdnn.data import load_or_stream
from fastdnn.engine import Engine, Schedule
from fastdnn.errors import DivergenceError, divergence_message
from fastdnn.labels import class_targets
from fastdnn.monitors import Monitor
from fastdnn.pipeline import (
    initialize_parameters,
    initialize_parameters_deep,
    pack_parameters,
    resolve_dtype,
    samples_as_rows,
)
from fastdnn.stream import DiskDataset, Feed, block_rows_for, open_disk_dataset


class _PrintCost(Monitor):
    """The course's ``print_cost``: the cost every 100 epochs (iterations), as training goes, and with a decay
    the learning rate after that epoch (the next epoch's), as the course's model() prints it."""

    def __init__(self, word, decay=False):
        self.word, self.decay = word, decay

    def look(self, engine, costs, seconds):
        first = engine.state.epoch - len(costs)
        for i, cost in enumerate(costs):
            if (first + i) % 100 == 0:
                print(f"Cost after {self.word} {first + i}: {cost:.6f}", flush=True)
                if self.decay:
                    print(f"learning rate after {self.word} {first + i}: {engine.rate_of(first + i + 1):f}",
                          flush=True)


def _targets(Y, dtype):
    return samples_as_rows(np.asarray(Y), dtype)


def model(
    X, Y, layers_dims, learning_rate=0.0075, num_epochs=3000, mini_batch_size=None, optimizer="gd",
    beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, lambd=0.0, hidden_activation="relu",
    output="sigmoid", loss="cross_entropy", init="deep", seed=1, parameters=None, frozen_layers=0,
    print_cost=False, dtype=None, threads=None, gram="auto", memory="1GB", decay_rate=None, time_interval=None,
    sample_weight=None, keep_prob=1.0, dropout_seed=None,
):
    """The reference's ``model`` with every option, trained in compiled code; returns (parameters, costs).

    ``sample_weight`` (m,) as the reference's: each batch's cost and gradients are weighted means
    (``Engine.train``'s weights; data in memory).

    ``keep_prob`` (one number in (0, 1] or one per hidden layer; 1, the default, is none) and
    ``dropout_seed`` (None: ``seed``) are the reference's inverted dropout, with the same masks: each a hash
    of the dropout seed, the optimizer step (from 1), the hidden layer, the example's column in X and the
    unit, formed inside the fused forward pass and used again in the backward one. Data on disk and every
    thread count drop the same units; the Gram route does not carry masks, so ``gram="auto"`` takes the
    direct route with dropout (``gram=True`` is refused).

    ``decay_rate`` and ``time_interval`` are the course's learning-rate decay, as the
    reference's: None (default) keeps learning_rate; with a decay_rate the rate is
    updated after each epoch's minibatches, so epoch 0 trains at learning_rate and
    epoch e >= 1 at ``update_lr(learning_rate, e - 1, decay_rate)`` = learning_rate /
    (1 + decay_rate (e - 1)), or with time_interval at ``schedule_lr_decay(learning_rate,
    e - 1, decay_rate, time_interval)`` = learning_rate / (1 + decay_rate floor((e - 1) /
    time_interval)). The rates reach the compiled loop one per epoch: the decay
    never shortens its calls, and every route (the Gram route, data on disk) follows it.

    Plus ``dtype`` (float32/float64; default X's float dtype, else float64),
    ``threads`` (BLAS threads for the run; None leaves the library's setting)
    and ``gram`` (True, False or "auto": carry the first layer in the example
    space when the data are wide; see ``Engine.route``). Starting ``parameters``
    are copied, never modified.

    Data on disk: X a path (.npy, .npz, HDF5 or a folder of shards, examples as
    rows, as ``fastdnn.stream`` reads them) or a ``DiskDataset``; Y then the
    class index of each example (0/1 for a sigmoid output, 0..K-1 for a
    softmax of K units): an array, a .npy path, or None for the file's own
    labels. Data larger than ``memory`` stream from disk in blocks.
    """
    options = (learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2, epsilon, lambd,
               hidden_activation, output, loss, init, frozen_layers, seed, parameters)
    schedule = Schedule.course(decay_rate, time_interval)
    dropout = dict(keep_prob=keep_prob, dropout_seed=O.check_dropout_seed(dropout_seed, V.check_seed(seed)))
    if isinstance(X, (str, os.PathLike, DiskDataset)):
        if sample_weight is not None:
            raise ValueError("sample_weight needs the data in memory (an array X), not a file")
        return _model_on_disk(X, Y, layers_dims, options, print_cost, dtype, threads, gram, memory, schedule, dropout)
    X, Y, dims = V.check_model_options(X, Y, layers_dims, *options)
    dtype = resolve_dtype(dtype, X)
    if parameters is None:
        params = initialize_parameters(dims, init, seed, dtype)
    else:
        params = pack_parameters(parameters, dtype).copy()
    engine = Engine(
        params, hidden_activation=hidden_activation, output=output, loss=loss, optimizer=optimizer,
        learning_rate=learning_rate, lr_schedule=schedule, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon,
        lambd=lambd, mini_batch_size=mini_batch_size, seed=seed, frozen_layers=frozen_layers, threads=threads,
        **dropout,
    )
    Xs = samples_as_rows(X, dtype)
    monitor = _PrintCost("epoch", decay_rate is not None) if print_cost else None
    costs = engine.train(Xs, _targets(Y, dtype), num_epochs, gram=gram, monitor=monitor,
                         weights=None if sample_weight is None else np.asarray(sample_weight).reshape(-1)).tolist()
    return params, costs


def _model_on_disk(X, Y, layers_dims, options, print_cost, dtype, threads, gram, memory, schedule, dropout):
    (learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2, epsilon, lambd, hidden_activation,
     output, loss, init, frozen_layers, seed, parameters) = options
    budget = O.BY_NAME["memory"].validate(memory)
    on_disk = isinstance(X, DiskDataset)
    data = X if on_disk else open_disk_dataset(X, labels=Y)
    dims = V.check_layers_dims(layers_dims, data.n_features)
    V.check_model_choices(dims, data.n_samples, *options)
    n_classes = 2 if output == "sigmoid" else dims[-1]
    if data.y is None and (Y is None or not on_disk):
        raise ValueError(f"{data.describe()} has no labels: give Y")
    index = V.check_class_indices(Y if on_disk and Y is not None else data.y, n_classes)
    if index.size != data.n_samples:
        raise ValueError(f"Y has {index.size} labels for {data.n_samples} examples")
    data = load_or_stream(data, memory=budget, dtype=resolve_dtype(dtype) if dtype is not None else None)
    streamed = isinstance(data, DiskDataset)
    dtype = data.dtype if streamed else data.X.dtype
    params = initialize_parameters(dims, init, seed, dtype) if parameters is None else (
        pack_parameters(parameters, dtype).copy())
    engine = Engine(
        params, hidden_activation=hidden_activation, output=output, loss=loss, optimizer=optimizer,
        learning_rate=learning_rate, lr_schedule=schedule, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon,
        lambd=lambd, mini_batch_size=mini_batch_size, seed=seed, frozen_layers=frozen_layers, threads=threads,
        **dropout,
    )
    monitor = _PrintCost("epoch", schedule.kind != "constant") if print_cost else None
    if not streamed:
        Ys = class_targets(index, n_classes, dtype)
        costs = engine.train(data.X, Ys, num_epochs, gram=gram, monitor=monitor)
    else:
        block = block_rows_for(budget, data.n_features, dims[-1], dtype, mini_batch_size)
        feed = Feed(data, index, n_classes, class_targets, dtype, block, batch=mini_batch_size)
        try:
            costs = engine.train(feed, None, num_epochs, gram=gram, monitor=monitor)
        finally:
            feed.close()
    return params, costs.tolist()


def L_layer_model(
    X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False, dtype=None, threads=None,
    gram="auto",
):
    """Full-batch gradient descent, the whole loop in one compiled call; returns (parameters, costs).

    Same arguments and result as the reference's, plus ``dtype``, ``threads``
    and ``gram`` (see ``model``). Raises FloatingPointError naming the iteration if the cost
    stops being finite.
    """
    X, Y, dims = V.check_training_inputs(X, Y, layers_dims, learning_rate, num_iterations)
    dtype = resolve_dtype(dtype, X)
    params = initialize_parameters_deep(dims, dtype)
    engine = Engine(params, learning_rate=learning_rate, threads=threads)
    Xs = samples_as_rows(X, dtype)
    monitor = _PrintCost("iteration") if print_cost else None
    try:
        costs = engine.train(Xs, _targets(Y, dtype), num_iterations, gram=gram, monitor=monitor).tolist()
    except DivergenceError as exc:
        # The course counts iterations, not epochs (one step each here).
        message = divergence_message(exc.reason, exc.cost, f"iteration {exc.epoch}")
        raise DivergenceError(message, exc.epoch, exc.cost, exc.costs, exc.reason) from None
    return params, costs
