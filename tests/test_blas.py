"""The BLAS wrapper the kernels call, against numpy, for every flag and degenerate shape.

gemm switches to gemv when the output has one row or one column (the output
layer's products), so those shapes are cases of their own here.
"""

import itertools

import numpy as np
import pytest

from fastdnn.kernels.blas import gemm_checked, gram_float64

SHAPES = [(5, 7, 3), (1, 7, 3), (5, 1, 3), (1, 1, 3), (5, 7, 1), (1, 9, 1), (33, 1, 17), (1, 40, 65)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("transa, transb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("M, N, K", SHAPES)
def test_gemm_matches_numpy_for_every_flag_and_shape(dtype, transa, transb, M, N, K):
    rng = np.random.default_rng(M * 100 + N * 10 + K)
    A = rng.standard_normal((K, M) if transa else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if transb else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    expected = 0.7 * (A.T if transa else A).astype(np.float64) @ (B.T if transb else B).astype(np.float64) + 0.3 * C
    gemm_checked(transa, transb, 0.7, A, B, 0.3, C)
    # K-term dot products: a few ulps of the dtype times K, relative to the terms' size.
    tol = 8 * K * np.finfo(dtype).eps * (1 + np.abs(expected).max())
    assert np.abs(C - expected).max() <= tol


def test_gemm_refuses_shapes_that_do_not_chain():
    with pytest.raises(ValueError, match="do not chain"):
        gemm_checked(False, False, 1.0, np.ones((2, 3)), np.ones((4, 2)), 0.0, np.ones((2, 2)))


def test_gram_is_x_xt_and_symmetric():
    X = np.random.default_rng(0).standard_normal((9, 31))
    G = np.empty((9, 9))
    gram_float64(X, G)
    np.testing.assert_allclose(G, X @ X.T, rtol=1e-13, atol=1e-12)
    assert np.array_equal(G, G.T)
