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
from fastdnn.kernels import layers as K
from fastdnn.kernels import network as N
from fastdnn.pipeline import (
    Parameters,
    activation_codes,
    initialize_parameters,
    initialize_parameters_deep,
    pack_parameters,
    resolve_dtype,
    samples_as_rows,
)
from fastdnn.threads import blas_threads

# Permutations for a chunk of epochs are drawn up front; cap their memory.
_PERM_BYTES = 64 * 2**20


class DivergenceError(FloatingPointError):
    """The cost stopped being finite; ``epoch`` (counted from the call's start) and ``cost`` say where."""

    def __init__(self, message, epoch, cost):
        super().__init__(message)
        self.epoch = epoch
        self.cost = cost


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
        self.opt = K.OPTIMIZER_CODES[V.check_choice(optimizer, V.OPTIMIZERS, "optimizer")]
        beta1 = beta if optimizer == "momentum" else beta1
        self.hyper = np.array([learning_rate, lambd, beta1, beta2, epsilon], np.float64)
        self.mini_batch_size = mini_batch_size
        self.frozen_layers = frozen_layers
        self.threads = threads
        self.state = np.zeros(2 * parameters.flat.size, parameters.flat.dtype)
        self.step = 0
        self.rng = np.random.default_rng(seed)
        self._work = None

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

    def run(self, Xs, Ys, n_epochs):
        """Train n_epochs over (Xs (m, n_0), Ys (m, n_L)); returns the per-epoch costs.

        Raises DivergenceError (a FloatingPointError) naming the epoch if a cost stops being finite;
        the parameters are then the last ones reached (all finite updates applied).
        """
        m = Xs.shape[0]
        batch = m if self.mini_batch_size is None else self.mini_batch_size
        shuffle = self.mini_batch_size is not None
        # Gather buffers are needed only when batches are shuffled rows.
        A, dZ, grad, Xb, Yb = self._buffers(batch, Xs.shape[1] if shuffle else 0, Ys.shape[1] if shuffle else 0)
        costs = np.zeros(n_epochs)
        chunk = max(1, _PERM_BYTES // (8 * m)) if shuffle else n_epochs
        done = 0
        with blas_threads(self.threads):
            while done < n_epochs:
                n = min(chunk, n_epochs - done)
                perms = np.stack([self.rng.permutation(m) for _ in range(n)]) if shuffle else np.empty((0, 0), np.int64)
                finished, self.step = N.train(
                    Xs, Ys, self.params.flat, self.dims, self.acts, self.frozen_layers, self.opt, self.hyper,
                    self.state, self.step, perms, batch, n, costs[done:], Xb, Yb, A, dZ, grad,
                )
                if finished < n:
                    epoch = done + finished
                    raise DivergenceError(
                        f"the cost became {costs[epoch]} at epoch {epoch}; try a smaller learning_rate",
                        epoch,
                        costs[epoch],
                    )
                done += n
        return costs


def _targets(Y, dtype):
    return np.ascontiguousarray(np.asarray(Y).T, dtype=dtype)


def model(
    X, Y, layers_dims, learning_rate=0.0075, num_epochs=3000, mini_batch_size=None, optimizer="gd",
    beta=0.9, beta1=0.9, beta2=0.999, epsilon=1e-8, lambd=0.0, hidden_activation="relu",
    output="sigmoid", loss="cross_entropy", init="deep", seed=1, parameters=None, frozen_layers=0,
    print_cost=False, dtype=None, threads=None,
):
    """The reference's ``model`` with every option, trained in compiled code; returns (parameters, costs).

    Plus ``dtype`` (float32/float64; default X's float dtype, else float64) and
    ``threads`` (BLAS threads for the run; None leaves the library's setting).
    Starting ``parameters`` are copied, never modified.
    """
    X, Y, dims = V.check_model_options(
        X, Y, layers_dims, learning_rate, num_epochs, mini_batch_size, optimizer, beta, beta1, beta2,
        epsilon, lambd, hidden_activation, output, loss, init, frozen_layers,
    )
    dtype = resolve_dtype(dtype, X)
    if parameters is None:
        params = initialize_parameters(dims, init, seed, dtype)
    else:
        params = pack_parameters(parameters, dtype).copy()
        if params.dims != dims:
            raise ValueError(f"the starting parameters have layer sizes {params.dims}, not layers_dims {dims}")
    trainer = Trainer(
        params, hidden_activation=hidden_activation, output=output, loss=loss, optimizer=optimizer,
        learning_rate=learning_rate, beta=beta, beta1=beta1, beta2=beta2, epsilon=epsilon, lambd=lambd,
        mini_batch_size=mini_batch_size, seed=seed, frozen_layers=frozen_layers, threads=threads,
    )
    costs = trainer.run(samples_as_rows(X, dtype), _targets(Y, dtype), num_epochs).tolist()
    if print_cost:
        for i in range(0, num_epochs, 100):
            print(f"Cost after epoch {i}: {costs[i]:.6f}")
    return params, costs


def L_layer_model(
    X, Y, layers_dims, learning_rate=0.0075, num_iterations=3000, print_cost=False, dtype=None, threads=None
):
    """Full-batch gradient descent, the whole loop in one compiled call; returns (parameters, costs).

    Same arguments and result as the reference's, plus ``dtype`` and ``threads``
    (see ``model``). Raises FloatingPointError naming the iteration if the cost
    stops being finite.
    """
    X, Y, dims = V.check_training_inputs(X, Y, layers_dims, learning_rate, num_iterations)
    dtype = resolve_dtype(dtype, X)
    params = initialize_parameters_deep(dims, dtype)
    trainer = Trainer(params, learning_rate=learning_rate, threads=threads)
    try:
        costs = trainer.run(samples_as_rows(X, dtype), _targets(Y, dtype), num_iterations).tolist()
    except DivergenceError as exc:
        raise DivergenceError(
            f"the cost became {exc.cost} at iteration {exc.epoch}; try a smaller learning_rate", exc.epoch, exc.cost
        ) from None
    if print_cost:
        for i in range(0, num_iterations, 100):
            print(f"Cost after iteration {i}: {costs[i]:.6f}")
    return params, costs
