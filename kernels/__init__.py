"""Numba kernels for fastdnn, installed as ``fastdnn.kernels``.

    blas     ?gemm from SciPy's BLAS, callable from cached compiled code
    layers   fused element-wise passes (bias + activation, derivative + db, loss, update)
    network  whole-network forward/backward and the one-call training loop

Everything here assumes valid, C-contiguous input of one float dtype; the
checks live in ``fastdnn`` (``fastdnn/_validation.py``).
"""
