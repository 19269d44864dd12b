"""One call of each compiled kernel, on the buffers a training step of each workload uses.

Shapes are the training loop's (sample-major, C-contiguous, see kernels/layers.py):
    network.forward / backward   the whole network, one step's forward or backward pass
    layers.bias_act_forward      layer 1's (m, n_1) bias + ReLU pass
    layers.bias_act_backward     layer 1's (m, n_1) ReLU derivative + db reduction
    layers.optimizer_update_flat the update over the flat parameter buffer (gd; adam)
    gram.train_gram              one Gram-route epoch per call (the route's chunk of one epoch)
    gram.gram_weights            forming W1 = s W1_init + C X into theta
    blas.gemm_checked            the seed's two layer-1 GEMMs and one square 1024^3 sgemm
The kernels overwrite their outputs, so repeated calls do the same work. Each
setup calls its kernel once, so compilation or cache loading is never timed.
"""

import numpy as np

from . import common


def _network(name):
    """(X, Y, theta, dims, codes, A, dZ, grad) for a workload, parameters from the course's initialisation."""
    from fastdnn.kernels import layers as K

    import fastdnn

    dims, m, dtype, _, _ = common.WORKLOADS[name]
    X, Y = common.data(name)
    theta = fastdnn.initialize_parameters_deep(dims, dtype=dtype).flat
    dims_a = np.asarray(dims, np.int64)
    codes = (K.ACT_RELU, K.OUT_SIGMOID_XENT)  # (hidden, output)
    A = np.empty(m * sum(dims[1:]), dtype)
    return X, Y, theta, dims_a, codes, A, np.empty_like(A), np.empty_like(theta)


def _relu_kernels():
    """Layer 1's ReLU passes as training compiles them (the activation a constant), callable from Python."""
    from numba import njit

    from fastdnn.kernels import layers as K

    relu = K.ACT_RELU

    @njit
    def relu_forward(Z, b, A):
        K.bias_act_forward(Z, b, A, relu)

    @njit
    def relu_backward(dZ, A, scale, db):
        K.bias_act_backward(dZ, A, relu, scale, db)

    return relu_forward, relu_backward


class Network:
    """network.forward and network.backward on a whole network (the training loop's call pattern)."""

    params = common.SHAPES
    param_names = ["workload"]

    def setup(self, name):
        common.limit_threads()
        from fastdnn.kernels import compiled
        from fastdnn.kernels import network as N

        X, Y, theta, dims, codes, A, dZ, grad = _network(name)
        m = X.shape[0]
        # The logits: the last (m, n_L) block of the flat activation workspace.
        off = m * int(dims[1:-1].sum())
        ZL = A[off : off + m * int(dims[-1])].reshape(m, int(dims[-1]))
        # As training compiles them: the option codes are constants (fastdnn.kernels.compiled).
        self.forward = (X, theta, dims, *codes, A, A, False)
        self.forward_fn = compiled(N.forward, self.forward, "forward")
        self.backward = (X, Y, theta, dims, *codes, ZL, A, dZ, dZ, grad, 0)
        self.backward_fn = compiled(N.backward, self.backward, "backward")
        self.time_forward(name)
        self.time_backward(name)

    def time_forward(self, name):
        self.forward_fn(*self.forward)

    def time_backward(self, name):
        self.backward_fn(*self.backward)


class Layers:
    """The fused element-wise passes of layer 1 (the largest hidden layer's activations)."""

    params = common.SHAPES
    param_names = ["workload"]

    def setup(self, name):
        common.limit_threads()
        from fastdnn.kernels import layers as K

        self.K = K
        dims, m, dtype, _, _ = common.WORKLOADS[name]
        rng = np.random.default_rng(0)
        n = dims[1]
        self.Z = rng.standard_normal((m, n)).astype(dtype)
        self.b = rng.standard_normal(n).astype(dtype)
        self.A = np.empty_like(self.Z)
        # bias_act_backward works in place; the ReLU mask applied again to its own
        # output changes nothing, so repeats time the same work.
        self.dZ = rng.standard_normal((m, n)).astype(dtype)
        self.db = np.empty(n, dtype)
        self.scale = 1.0 / m  # a Python float, as backward passes it
        self.relu_forward, self.relu_backward = _relu_kernels()
        self.relu_forward(self.Z, self.b, self.A)
        self.time_bias_act_forward(name)
        self.time_bias_act_backward(name)

    def time_bias_act_forward(self, name):
        self.relu_forward(self.Z, self.b, self.A)

    def time_bias_act_backward(self, name):
        self.relu_backward(self.dZ, self.A, self.scale, self.db)


class Update:
    """layers.optimizer_update_flat over the whole flat parameter buffer: one optimizer step."""

    params = (["seed", "wide"], ["gd", "adam"])
    param_names = ["workload", "optimizer"]

    def setup(self, name, optimizer):
        common.limit_threads()
        from fastdnn.kernels import layers as K
        from fastdnn.kernels import compiled
        from fastdnn.kernels import network as N

        dims, _, dtype, _, _ = common.WORKLOADS[name]
        self.dims = np.asarray(dims, np.int64)
        rng = np.random.default_rng(0)
        P = int(sum(dims[l] * dims[l - 1] + dims[l] for l in range(1, len(dims))))
        self.theta = rng.standard_normal(P).astype(dtype)
        self.grad = (1e-3 * rng.standard_normal(P)).astype(dtype)
        self.state = np.zeros(2 * P, dtype)
        self.opt = K.OPTIMIZER_CODES[optimizer]
        # Scalars of theta's dtype, as the kernel requires: lr, beta1, beta2, eps.
        lr, beta1, beta2, eps = (dtype(x) for x in (1e-6, 0.9, 0.999, 1e-8))
        self.args = (self.theta, self.grad, self.state, self.dims, 0, self.opt, lr, beta1, beta2, eps, 1)
        self.update = compiled(N.optimizer_step, self.args, "update")  # as training compiles it (opt a constant)
        self.time_optimizer_update_flat(name, optimizer)

    def time_optimizer_update_flat(self, name, optimizer):
        self.update(*self.args)


class GramRoute:
    """gram.train_gram one epoch per call, and gram.gram_weights, on the seed (the wide problem the route is for).

    One epoch per call is the finest chunk a caller can cut a run into, so
    this is the route's step plus its per-call cost; the state the calls
    carry (C, V, carry, state) keeps training, which does the same work.
    """

    params = (["seed"], ["gd", "momentum"])
    param_names = ["workload", "optimizer"]

    def setup(self, name, optimizer):
        common.limit_threads()
        from fastdnn.kernels import gram as Gm
        from fastdnn.kernels import layers as K
        from fastdnn.kernels import network as N

        from fastdnn.kernels import compiled

        self.Gm = Gm
        X, Y, theta, dims, codes, A, dZ, grad = _network(name)
        m, n0 = X.shape
        n1 = int(dims[1])
        G, Z0, W1_init = np.empty((m, m)), np.empty((m, n1)), np.empty((n1, n0))
        w1_sq = Gm.gram_setup(X, theta, dims, G, Z0, W1_init)
        self.carry = np.array([1.0, 0.0, w1_sq])
        self.C, self.V = np.zeros((n1, m)), np.zeros((n1, m))
        self.X, self.W1_init, self.theta, self.dims = X, W1_init, theta, dims
        hyper = N.Hyper(0.0075, 0.9, 0.999, 1e-8)
        state = np.zeros(2 * theta.size, theta.dtype)
        self.args = (G, Z0, Y, theta, dims, *codes, K.OPTIMIZER_CODES[optimizer], hyper, None, state, self.carry, self.C,
                     self.V if optimizer == "momentum" else None, 1,
                     np.zeros(1), A, dZ, grad)
        self.train_gram = compiled(Gm.train_gram, self.args, "train_gram")  # as training compiles it
        self.time_train_gram_epoch(name, optimizer)
        self.time_gram_weights(name, optimizer)

    def time_train_gram_epoch(self, name, optimizer):
        self.train_gram(*self.args)

    def time_gram_weights(self, name, optimizer):
        self.Gm.gram_weights(self.X, self.W1_init, self.C, self.carry[0], self.theta, self.dims)


# name: (transa, transb, C shape, A shape, B shape, dtype): C = op(A) @ op(B)
GEMMS = {
    "seed-Z1": (False, True, (209, 20), (209, 12288), (20, 12288), np.float64),  # Z1 = X W1^T
    "seed-dW1": (True, False, (20, 12288), (209, 20), (209, 12288), np.float64),  # dW1 = dZ1^T X
    "square-1024-f32": (False, False, (1024, 1024), (1024, 1024), (1024, 1024), np.float32),
}


class Gemm:
    """blas.gemm_checked (SciPy's ?gemm behind the fast path) on the seed's layer-1 products and a square one."""

    params = list(GEMMS)
    param_names = ["case"]

    def setup(self, case):
        common.limit_threads()
        from fastdnn.kernels.blas import gemm_checked

        self.gemm = gemm_checked
        ta, tb, c, a, b, dtype = GEMMS[case]
        rng = np.random.default_rng(0)
        self.args = (
            ta,
            tb,
            1.0,
            rng.standard_normal(a).astype(dtype),
            rng.standard_normal(b).astype(dtype),
            0.0,
            np.zeros(c, dtype),
        )
        self.time_gemm_checked(case)

    def time_gemm_checked(self, case):
        self.gemm(*self.args)
