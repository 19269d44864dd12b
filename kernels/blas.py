"""SciPy's BLAS ``?gemm`` callable from compiled (and disk-cached) Numba code.

``gemm(transa, transb, alpha, A, B, beta, C)`` computes, for 2-D row-major
(C-contiguous) float32 or float64 arrays of one dtype,

    C = alpha * op(A) @ op(B) + beta * C,   op(M) = M.T if trans else M

without materialising any transpose: a row-major matrix is its column-major
transpose, so the call swaps the operands and passes the flags to Fortran BLAS.

Why this route and not ``np.dot`` inside ``@njit``: ``np.dot(a, b, out)`` has
no alpha/beta and copies non-contiguous operands. The addresses come from
``scipy.linalg.cython_blas``; binding each to a named symbol with
``llvmlite.binding.add_symbol`` (re-done at every import, before any cached code
is loaded) and declaring it as a ``numba.types.ExternalFunction`` keeps the
calling functions cacheable on disk, which a ctypes function pointer would not
(numba issue 9752). SciPy's BLAS uses 32-bit Fortran integers (LP64).

The addresses are read from ``scipy.linalg.cython_blas`` loaded on its own
(``_cython_blas``): importing it the usual way imports all of ``scipy.linalg``
first, about 0.2 s of ``import fastdnn``.
"""

import ctypes
import importlib.machinery
import importlib.util
import os
import sys

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload

def _cython_blas():
    """SciPy's ``scipy.linalg.cython_blas`` module, without importing the ``scipy.linalg`` package when possible.

    The extension is loaded from its file and not registered in sys.modules:
    a later ``import scipy.linalg`` imports it as usual (Cython returns the same
    module object). Any surprise in SciPy's layout falls back to the import.
    """
    name = "scipy.linalg.cython_blas"
    if name in sys.modules:
        return sys.modules[name]
    try:
        import scipy

        folder = os.path.join(os.path.dirname(scipy.__file__), "linalg")
        for entry in sorted(os.listdir(folder)):
            if entry.startswith("cython_blas.") and entry.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
                spec = importlib.util.spec_from_file_location(name, os.path.join(folder, entry))
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                # A single-phase extension registers itself; leave sys.modules as an import would
                # find it, so a later ``import scipy.linalg`` loads and binds it normally.
                sys.modules.pop(name, None)
                return module
    except (ImportError, OSError):
        pass
    return importlib.import_module(name)


def _capsule_pointer():
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return lambda capsule: get_pointer(capsule, get_name(capsule))


_CAPI = _cython_blas().__pyx_capi__
_pointer = _capsule_pointer()


def blas_address(name):
    """The address of SciPy's BLAS routine ``name`` ("dgemm", ...): what numba's get_cython_function_address reads."""
    return _pointer(_CAPI[name])


_int_p = types.CPointer(types.int32)
_char_p = types.CPointer(types.int8)


def _declare_gemm(prefix, dtype):
    symbol = f"fastdnn_{prefix}gemm"
    llvm.add_symbol(symbol, blas_address(prefix + "gemm"))
    p = types.CPointer(dtype)
    # (transa, transb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc): all by reference.
    return types.ExternalFunction(
        symbol, types.void(_char_p, _char_p, _int_p, _int_p, _int_p, p, p, _int_p, p, _int_p, p, p, _int_p)
    )


_dgemm = _declare_gemm("d", types.float64)
_sgemm = _declare_gemm("s", types.float32)


def _declare_gemv(prefix, dtype):
    symbol = f"fastdnn_{prefix}gemv"
    llvm.add_symbol(symbol, blas_address(prefix + "gemv"))
    p = types.CPointer(dtype)
    # (trans, m, n, alpha, a, lda, x, incx, beta, y, incy): all by reference.
    return types.ExternalFunction(
        symbol, types.void(_char_p, _int_p, _int_p, p, p, _int_p, p, _int_p, p, p, _int_p)
    )


_dgemv = _declare_gemv("d", types.float64)
_sgemv = _declare_gemv("s", types.float32)

llvm.add_symbol("fastdnn_dsyrk", blas_address("dsyrk"))
# (uplo, trans, n, k, alpha, a, lda, beta, c, ldc): all by reference.
_p64 = types.CPointer(types.float64)
_dsyrk = types.ExternalFunction(
    "fastdnn_dsyrk", types.void(_char_p, _char_p, _int_p, _int_p, _p64, _p64, _int_p, _p64, _p64, _int_p)
)


@intrinsic
def data_ptr(typingctx, arr):
    """Pointer to an array's first element."""

    def codegen(context, builder, signature, args):
        return context.make_array(arr)(context, builder, args[0]).data

    return types.CPointer(arr.dtype)(arr), codegen


@intrinsic
def _by_ref(typingctx, value):
    """Pointer to a stack copy of a scalar, for Fortran's pass-by-reference."""

    def codegen(context, builder, signature, args):
        return cgutils.alloca_once_value(builder, args[0])

    return types.CPointer(value)(value), codegen


_N = np.int8(ord("N"))
_T = np.int8(ord("T"))
_U = np.int8(ord("U"))


def gemm(transa, transb, alpha, A, B, beta, C):
    """C = alpha * op(A) @ op(B) + beta * C in place (compiled code only)."""
    raise NotImplementedError("fastdnn.kernels.blas.gemm is callable from @njit code only")


@overload(gemm, jit_options={"cache": True, "no_cfunc_wrapper": True})
def _gemm_impl(transa, transb, alpha, A, B, beta, C):
    for arr in (A, B, C):
        if not isinstance(arr, types.Array) or arr.ndim != 2 or arr.layout != "C" or arr.dtype != C.dtype:
            # The leading dimensions below are row lengths: only C-contiguous operands qualify.
            raise TypingError(f"gemm takes 2-D C-contiguous arrays of one dtype, got {A}, {B}, {C}")
    if C.dtype == types.float64:
        fn, fv = _dgemm, _dgemv
    elif C.dtype == types.float32:
        fn, fv = _sgemm, _sgemv
    else:
        return None
    dt = np.float64 if C.dtype == types.float64 else np.float32

    def impl(transa, transb, alpha, A, B, beta, C):
        M, N = C.shape
        K = A.shape[0] if transa else A.shape[1]
        if M == 0 or N == 0:
            return
        # Leading dimensions (row lengths), at least 1 as BLAS requires; not max(): it compiles more.
        lda = A.shape[1] if A.shape[1] > 1 else 1
        ldb = B.shape[1] if B.shape[1] > 1 else 1
        ldc = N if N > 1 else 1
        # A product with one output row or column is a matrix-vector product.
        # OpenBLAS's ?gemm does not always notice: the output layer's dW
        # (1 x 2048 from a 1024-row batch) took 16 ms as a GEMM, ~0.5 ms as a GEMV.
        # The vector operand of a C-contiguous (K, 1) or (1, K) array has unit stride.
        if M == 1 and K > 0:
            # c (N) = op(B)^T a; column-major BLAS sees B as B^T.
            fv(
                _by_ref(_T if transb else _N), _by_ref(np.int32(B.shape[1])), _by_ref(np.int32(B.shape[0])),
                _by_ref(dt(alpha)), data_ptr(B), _by_ref(np.int32(ldb)),
                data_ptr(A), _by_ref(np.int32(1)), _by_ref(dt(beta)), data_ptr(C), _by_ref(np.int32(1)),
            )
            return
        if N == 1 and K > 0:
            # c (M) = op(A) b; column-major BLAS sees A as A^T.
            fv(
                _by_ref(_N if transa else _T), _by_ref(np.int32(A.shape[1])), _by_ref(np.int32(A.shape[0])),
                _by_ref(dt(alpha)), data_ptr(A), _by_ref(np.int32(lda)),
                data_ptr(B), _by_ref(np.int32(1)), _by_ref(dt(beta)), data_ptr(C), _by_ref(np.int32(1)),
            )
            return
        # Fortran sees C.T = op(B).T @ op(A).T, with leading dimensions = row lengths.
        fn(
            _by_ref(_T if transb else _N),
            _by_ref(_T if transa else _N),
            _by_ref(np.int32(N)),
            _by_ref(np.int32(M)),
            _by_ref(np.int32(K)),
            _by_ref(dt(alpha)),
            data_ptr(B),
            _by_ref(np.int32(ldb)),
            data_ptr(A),
            _by_ref(np.int32(lda)),
            _by_ref(dt(beta)),
            data_ptr(C),
            _by_ref(np.int32(ldc)),
        )

    return impl


def as_float64(X):
    """X itself when float64, else a float64 copy (compiled code only)."""
    raise NotImplementedError("fastdnn.kernels.blas.as_float64 is callable from @njit code only")


@overload(as_float64, jit_options={"cache": True, "no_cfunc_wrapper": True})
def _as_float64_impl(X):
    if X.dtype == types.float64:
        return lambda X: X
    return lambda X: X.astype(np.float64)


@njit(cache=True, no_cfunc_wrapper=True)
def gram_float64(X, G):
    """G (m, m) = X X^T for X (m, n) float64 C-contiguous, with dsyrk (half a GEMM's FLOPs).

    Column-major BLAS sees X as X^T (n, m), so G = (X^T)^T X^T is syrk with
    trans='T'; it fills one triangle, mirrored here. Overwrites G.
    """
    m, n = X.shape
    ldx = n if n > 1 else 1
    ldg = m if m > 1 else 1
    _dsyrk(
        _by_ref(_U), _by_ref(_T), _by_ref(np.int32(m)), _by_ref(np.int32(n)), _by_ref(1.0),
        data_ptr(X), _by_ref(np.int32(ldx)), _by_ref(0.0), data_ptr(G), _by_ref(np.int32(ldg)),
    )
    # Column-major upper triangle = row-major lower triangle: copy it up.
    for i in range(m):
        for j in range(i + 1, m):
            G[i, j] = G[j, i]


@njit(cache=True, no_cfunc_wrapper=True)
def gemm_checked(transa, transb, alpha, A, B, beta, C):
    """``gemm`` callable from Python, with the shape checks compiled code skips.

    For tests and benchmarks of the wrapper itself; arrays must be C-contiguous.
    """
    M, N = C.shape
    ra, ca = (A.shape[1], A.shape[0]) if transa else (A.shape[0], A.shape[1])
    rb, cb = (B.shape[1], B.shape[0]) if transb else (B.shape[0], B.shape[1])
    if ra != M or cb != N or ca != rb:
        raise ValueError("gemm: operand shapes do not chain")
    gemm(transa, transb, alpha, A, B, beta, C)
