"""Training runs: the compiled loop (``kernels.network.train``) driven from Python once per chunk of epochs.

``Trainer`` owns what persists across calls (flat parameters, optimizer state,
step count, the shuffling generator) and the buffers, allocated once. ``model``
and ``L_layer_model`` are the reference's twins built on it; the estimator uses
it for ``fit``/``partial_fit``, early stopping and checkpoints, which is why the
loop returns to Python between chunks of epochs instead of once per run
(a chunk is the whole run when nothing needs to look in between).
"""

import numpy as np

from fastdnn import _validation as V
from fastdnn.kernels import ensure_compiled
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.pipeline import (
    activation_codes,
    initialize_parameters,
    initialize_parameters_deep,
    pack_parameters,
    resolve_dtype,
    samples_as_rows,
)
from fastdnn.threads import blas_threads, training_threads

# Permutations for a chunk of epochs are drawn up front; cap their memory.
_PERM_BYTES = 64 * 2**20


class DivergenceError(FloatingPointError):
    """Training stopped being finite at ``epoch`` (counted from the call's start).

    ``cost`` is the epoch's cost (not finite when the cost diverged; finite when
    an update made a parameter or optimizer-state value NaN or Inf first), and
    ``costs`` the costs of the epochs before it. The trainer is left exactly as
    it was at the end of epoch ``epoch - 1``: the last parameters that were finite
    after a whole epoch.
    """

    def __init__(self, message, epoch, cost, costs=()):
        super().__init__(message)
        self.epoch = epoch
        self.cost = cost
        self.costs = list(costs)


def divergence_message(reason, cost, where):
    """The one wording of a divergence, for every entry point; ``where`` is e.g. "epoch 12"."""
    if reason == "cost":
        what = f"the cost became {cost} at {where}"
    else:
        what = f"an update made the parameters NaN or Inf at {where} (the cost was still {cost:.6g})"
    return f"{what}; the last finite parameters are kept. Try a smaller learning_rate."


class Trainer:
    """Minibatch training state and buffers for one network and option set.

    ``parameters`` is a ``Parameters`` (flat) the trainer updates in place.
    Data are given per call to ``run`` in the sample-major layout.
    """

    def __init__(
        self, parameters, *, hidden_activation="relu", output="sigmoid", loss="cross_entropy",
        optimizer="gd", learning_rate=0.0075, beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8,
        lambd=0.0, mini_batch_size=None, seed=1, frozen_layers=0, threads=None,
    ):
        self.params = parameters
        dims = parameters.dims
        self.dims = np.asarray(dims, np.int64)
        self.acts = activation_codes(len(dims) - 1, hidden_activation, output, loss)
        self.state = np.zeros(2 * parameters.flat.size, parameters.flat.dtype)
        self.step = 0
        self.opt = None
        self.set_hyperparameters(
            optimizer=optimizer, learning_rate=learning_rate, beta=beta, beta1=beta1, beta2=beta2,
            epsilon=epsilon, lambd=lambd, mini_batch_size=mini_batch_size, frozen_layers=frozen_layers,
            threads=threads,
        )
        self.rng = np.random.default_rng(seed)
        self._work = None

    def set_hyperparameters(
        self, *, optimizer, learning_rate, beta, beta1, beta2, epsilon, lambd, mini_batch_size, frozen_layers,
        threads,
    ):
        """Everything a later ``run`` may train with differently; the network itself stays.

        A change of optimizer starts its state (velocity, Adam's moments and step
        count) afresh: one optimizer's state means nothing to another.
        """
        opt = K.OPTIMIZER_CODES[V.check_choice(optimizer, V.OPTIMIZERS, "optimizer")]
        if self.opt is not None and opt != self.opt:
            self.state[:] = 0
            self.step = 0
        self.opt = opt
        beta1 = beta if optimizer == "momentum" else beta1
        self.hyper = np.array([learning_rate, lambd, beta1, beta2, epsilon], np.float64)
        self.mini_batch_size = mini_batch_size
        self.frozen_layers = frozen_layers
        self.threads = threads

    def _buffers(self, batch, n_in, n_out):
        dtype = self.params.flat.dtype
        key = (batch, n_in, n_out)
        if self._work is None or self._work[0] != key:
            A = np.empty(batch * int(self.dims[1:].sum()), dtype)
            self._work = (
                key,
                A,
                np.empty_like(A),
                np.empty_like(self.params.flat),
                np.empty((batch, n_in), dtype),
                np.empty((batch, n_out), dtype),
            )
        return self._work[1:]

    def gram_applies(self, Xs):
        """Whether ``run(..., gram=True)`` may be used: full batch, gd or momentum, nothing frozen."""
        return self.mini_batch_size is None and self.opt in (K.OPT_GD, K.OPT_MOMENTUM) and self.frozen_layers == 0

    def run(self, Xs, Ys, n_epochs, gram=False):
        """Train n_epochs over (Xs (m, n_0), Ys (m, n_L)); returns the per-epoch costs.

        ``gram=True`` carries the first layer in the example space
        (``kernels.network.train_gram``): for wide data, m much smaller than n_0.
        Its momentum state lives only for this call, so use it for one-call runs.

        Raises DivergenceError (a FloatingPointError) naming the epoch if a cost,
        a parameter or the optimizer state stops being finite. The kernels stop
        in the middle of that epoch; the trainer then restores what it held at
        the start of the chunk and replays the chunk's finished epochs (the
        arithmetic is deterministic), so it holds the end of the last finite
        epoch. Divergence costs one chunk's replay; a finite run costs one copy
        of the parameters and optimizer state per chunk.
        """
        m = Xs.shape[0]
        batch = m if self.mini_batch_size is None else self.mini_batch_size
        shuffle = self.mini_batch_size is not None
        # Gather buffers are needed only when batches are shuffled rows.
        A, dZ, grad, Xb, Yb = self._buffers(batch, Xs.shape[1] if shuffle else 0, Ys.shape[1] if shuffle else 0)
        costs = np.zeros(n_epochs)
        chunk = max(1, _PERM_BYTES // (8 * m)) if shuffle else n_epochs
        done = 0
        # The Gram route's step multiplies by the (m, m) Gram matrix instead of reading X.
        step_dims = [m, *self.dims[1:]] if gram else list(self.dims)
        with blas_threads(training_threads(self.threads, step_dims, batch)):
            if gram:
                start = self.params.flat.copy()
                args = (Xs, Ys, self.params.flat, self.dims, self.acts, self.opt, self.hyper, n_epochs, costs, A, dZ, grad)
                ensure_compiled(N.train_gram, args, f"the Gram-route training kernels for {Xs.dtype}")
                finished, reason = N.train_gram(*args)
                if reason != N.STOP_NONE:
                    self.params.flat[:] = start
                    if finished:
                        N.train_gram(
                            Xs, Ys, self.params.flat, self.dims, self.acts, self.opt, self.hyper, finished,
                            np.zeros(finished), A, dZ, grad,
                        )
                    self.step += finished
                    raise self._diverged(reason, finished, costs)
                self.step += finished
                done = n_epochs
            while done < n_epochs:
                n = min(chunk, n_epochs - done)
                rng_state = self.rng.bit_generator.state
                perms = np.stack([self.rng.permutation(m) for _ in range(n)]) if shuffle else np.empty((0, 0), np.int64)
                saved = (self.params.flat.copy(), self.state.copy(), self.step)
                args = (Xs, Ys, self.params.flat, self.dims, self.acts, self.frozen_layers, self.opt, self.hyper, self.state)
                work = (Xb, Yb, A, dZ, grad)
                call = (*args, self.step, perms, batch, n, costs[done:], *work)
                ensure_compiled(N.train, call, f"the training kernels for {Xs.dtype}")
                finished, step, reason = N.train(*call)
                if reason != N.STOP_NONE:
                    self.params.flat[:], self.state[:], step = saved
                    if finished:
                        replay = perms[:finished] if shuffle else perms
                        _, step, _ = N.train(*args, step, replay, batch, finished, np.zeros(finished), *work)
                    self.step = step
                    self.rng.bit_generator.state = rng_state
                    for _ in range(finished if shuffle else 0):
                        self.rng.permutation(m)
                    raise self._diverged(reason, done + finished, costs)
                self.step = step
                done += n
        return costs

    def _diverged(self, reason, epoch, costs):
        cause = "cost" if reason == N.STOP_COST else "parameters"
        return DivergenceError(divergence_message(cause, costs[epoch], f"epoch {epoch}"), epoch, costs[epoch], costs[:epoch])


# The Gram matrix G = X X^T costs m^2 n_0 once and m^2 n_1 a step against the
# direct route's 2 m n_0 n_1 a step: worth it from a few steps on when m <= n_0 / 2.
_GRAM_MAX_BYTES = 256 * 2**20


def use_gram(gram, trainer, Xs, n_epochs):
    """Resolve ``gram`` (True, False, "auto") for a one-call run; True where it cannot apply is an error."""
    if gram not in (True, False, "auto"):
        raise ValueError(f"gram must be True, False or 'auto', got {gram!r}")
    applies = trainer.gram_applies(Xs)
    if gram is True and not applies:
        raise ValueError("gram=True needs full-batch training (mini_batch_size=None), gd or momentum, no frozen layers")
    if gram == "auto":
        m, n0 = Xs.shape
        return applies and 2 * m <= n0 and n_epochs >= 10 and m * m * Xs.itemsize <= _GRAM_MAX_BYTES
    return gram


def _targets(Y, dtype):
    return samples_as_rows(np.asarray(Y), dtype)


def model(
    X, Y, layers_dims, learning_rate=0.0075, num_epochs=3000, mini_batch_size=None, optimizer="gd",
    beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, lambd=0.0, hidden_activation="relu",
    output="sigmoid", loss="cross_entropy", init="deep", seed=1, parameters=None, frozen_layers=0,
    print_cost=False, dtype=None, threads=None, gram="auto",
):
    """The reference's ``model`` with every option, trained in compiled code; returns (parameters, costs).

    Plus ``dtype`` (float32/float64; default X's float dtype, else float64),
    ``threads`` (BLAS threads for the run; None leaves the library's setting)
    and ``gram`` (True, False or "auto": carry the first layer in the example
    space when the data are wide; see ``use_gram``). Starting ``parameters``
    are copied, never modified.
    """
    X, Y, dims = V.check_model_options(
        X, Y, layers_dims, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2,
        epsilon, lambd, hidden_activation, output, loss, init, frozen_layers, seed, parameters,
    )
    dtype = resolve_dtype(dtype, X)
    if parameters is None:
        params = initialize_parameters(dims, init, seed, dtype)
    else:
        params = pack_parameters(parameters, dtype).copy()
    trainer = Trainer(
        params, hidden_activation=hidden_activation, output=output, loss=loss, optimizer=optimizer,
        learning_rate=learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon, lambd=lambd,
        mini_batch_size=mini_batch_size, seed=seed, frozen_layers=frozen_layers, threads=threads,
    )
    Xs = samples_as_rows(X, dtype)
    costs = trainer.run(Xs, _targets(Y, dtype), num_epochs, use_gram(gram, trainer, Xs, num_epochs)).tolist()
    if print_cost:
        for i in range(0, num_epochs, 100):
            print(f"Cost after epoch {i}: {costs[i]:.6f}")
    return params, costs


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
    trainer = Trainer(params, learning_rate=learning_rate, threads=threads)
    Xs = samples_as_rows(X, dtype)
    try:
        costs = trainer.run(Xs, _targets(Y, dtype), num_iterations, use_gram(gram, trainer, Xs, num_iterations)).tolist()
    except DivergenceError as exc:
        # The course counts iterations, not epochs (one step each here).
        message = str(exc).replace(f"at epoch {exc.epoch}", f"at iteration {exc.epoch}")
        raise DivergenceError(message, exc.epoch, exc.cost, exc.costs) from None
    if print_cost:
        for i in range(0, num_iterations, 100):
            print(f"Cost after iteration {i}: {costs[i]:.6f}")
    return params, costs
