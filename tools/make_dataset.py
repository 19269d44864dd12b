"""Write a large synthetic classification dataset to disk in chunks, with bounded memory (.npy, HDF5 or CSV).

    python tools/make_dataset.py /data/big.npy --rows 4_000_000 --features 512            # 8.2 GB of float32
    python tools/make_dataset.py /data/big.h5 --rows 4_000_000 --features 512             # the same in HDF5
    python tools/make_dataset.py /data/small.npy --rows 500_000 --features 512 --chunk-rows 65536
    python tools/make_dataset.py /data/big.csv --rows 200_000 --features 100              # for fastdnn convert

For the streaming benchmarks (issue 12): data larger than memory, written
without ever holding more than one chunk. X is standard normal; the label of a
row is 1 when a fixed random teacher direction w gives x . w > 0 (a learnable
problem), so accuracy shows training works.

Outputs:
    .npy   X (rows, features) in the dtype asked, and the labels (rows,) int8 in
           a second file beside it, ``<name>.labels.npy`` (the convention of
           ``fastdnn convert``).
    .h5    datasets "X" (rows, features) and "y" (rows,) int8, chunked by row
           blocks; needs h5py (``pip install -e ".[h5]"``).
    .csv   a header (x0, ..., label), then one row per example: the features
           as the dtype prints them (9 significant digits for float32, 17 for
           float64: read back exactly) and the label.

The data are a function of --seed, --features and the row index alone: rows
are drawn and labelled in blocks (4096 rows, fewer when rows are wider than 256
features) from a generator seeded with (seed, block), so any --chunk-rows
writes the same file (chunks are rounded up to whole blocks). Memory: about 3 chunks of --chunk-rows x
--features float64 (the draw, its conversion and the write), 32 MiB each by
default: measured with /usr/bin/time -v, 500,000 x 512 float32 (1.02 GB of X)
peaked at 108 MB RSS as .npy (5.1 s) and 140 MB as HDF5 (3.5 s). Files appear
complete or not at all (written as .tmp, renamed at the end).
"""

import argparse
import os
import sys
import time

import numpy as np

BLOCK = 4096  # rows per generator seed at most: the data do not depend on the chunk size
BLOCK_BYTES = 8 * 2**20  # and at most this many float64 bytes, for wide rows


def block_rows(features):
    """Rows drawn from one generator seed: 4096, fewer for rows wider than 256 features (a function of the width)."""
    return max(1, min(BLOCK, BLOCK_BYTES // (8 * features)))


def teacher(features, seed):
    """The fixed direction that labels the rows: y = [x . w > 0]."""
    return np.random.default_rng([seed, 2**32]).standard_normal(features)


def rows(start, stop, features, seed, w, dtype):
    """Rows start..stop as (X of dtype, y int8), each drawn and labelled within its block (``block_rows``)."""
    Xs, ys = [], []
    size = block_rows(features)
    for block in range(start // size, -(-stop // size)):
        draw = np.random.default_rng([seed, block]).standard_normal((size, features))
        label = (draw @ w > 0).astype(np.int8)  # always a whole block: the same product whatever the chunks
        lo = max(start - block * size, 0)
        hi = min(stop - block * size, size)
        Xs.append(draw[lo:hi].astype(dtype, copy=False))
        ys.append(label[lo:hi])
    return (np.concatenate(Xs), np.concatenate(ys)) if len(Xs) > 1 else (Xs[0], ys[0])


def labels_path(path):
    """Where the .npy labels of X file ``path`` go: ``big.npy`` -> ``big.labels.npy``."""
    root, _ = os.path.splitext(path)
    return root + ".labels.npy"


def _npy_writer(path, shape, dtype):
    """An open file positioned after a .npy header for an array of ``shape`` and ``dtype`` (C order)."""
    f = open(path, "wb")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(f, header)
    return f


CHUNK_BYTES = 32 * 2**20  # float64 bytes drawn per write by default


def write(path, n_rows, features, dtype="float32", chunk_rows=None, seed=0, report=None):
    """Write the dataset to ``path`` (.npy, with the labels beside it, or .h5/.hdf5). Returns the files written.

    chunk_rows None: as many rows as CHUNK_BYTES of float64 hold.
    """
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // (8 * max(features, 1)))
    if features >= 1:  # whole blocks per chunk, so no block is drawn twice
        size = block_rows(features)
        chunk_rows = -(-chunk_rows // size) * size
    if chunk_rows < 1 or n_rows < 1 or features < 1:
        raise ValueError(f"--rows, --features and --chunk-rows must be positive, got {n_rows}, {features}, {chunk_rows}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".h5", ".hdf5", ".csv"):
        raise ValueError(f"{path}: the output must end in .npy, .h5, .hdf5 or .csv")
    files = [path, labels_path(path)] if ext == ".npy" else [path]
    tmp = [p + ".tmp" for p in files]
    try:
        _write(ext, tmp, n_rows, features, dtype, chunk_rows, seed, report)
    except BaseException:
        for t in tmp:  # an interrupted or failed run leaves nothing half-written behind
            if os.path.exists(t):
                os.remove(t)
        raise
    for t, p in zip(tmp, files):
        os.replace(t, p)
    return files


def _write(ext, tmp, n_rows, features, dtype, chunk_rows, seed, report):
    w = teacher(features, seed)
    if ext == ".npy":
        fx, fy = _npy_writer(tmp[0], (n_rows, features), dtype), _npy_writer(tmp[1], (n_rows,), np.int8)
        with fx, fy:
            for start in range(0, n_rows, chunk_rows):
                X, y = rows(start, min(start + chunk_rows, n_rows), features, seed, w, dtype)
                fx.write(np.ascontiguousarray(X).tobytes())
                fy.write(y.tobytes())
                if report:
                    report(min(start + chunk_rows, n_rows), n_rows)
    elif ext == ".csv":
        digits = 9 if np.dtype(dtype) == np.float32 else 17
        with open(tmp[0], "w") as f:
            f.write(",".join([f"x{j}" for j in range(features)] + ["label"]) + "\n")
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                X, y = rows(start, stop, features, seed, w, dtype)
                np.savetxt(f, np.column_stack([X.astype(np.float64), y]), fmt=[f"%.{digits}g"] * features + ["%d"],
                           delimiter=",")
                if report:
                    report(stop, n_rows)
    elif ext in (".h5", ".hdf5"):
        try:
            import h5py
        except ImportError:
            raise SystemExit("make_dataset: writing HDF5 needs h5py: pip install -e '.[h5]'") from None
        with h5py.File(tmp[0], "w") as f:
            chunk = (min(block_rows(features), n_rows), features)
            dx = f.create_dataset("X", (n_rows, features), dtype=dtype, chunks=chunk)
            dy = f.create_dataset("y", (n_rows,), dtype=np.int8, chunks=(min(BLOCK * 16, n_rows),))
            for start in range(0, n_rows, chunk_rows):
                stop = min(start + chunk_rows, n_rows)
                X, y = rows(start, stop, features, seed, w, dtype)
                dx[start:stop] = X
                dy[start:stop] = y
                if report:
                    report(stop, n_rows)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="output file: .npy (labels beside it, <name>.labels.npy), .h5/.hdf5 or .csv")
    p.add_argument("--rows", type=lambda s: int(s.replace("_", "")), required=True, help="examples")
    p.add_argument("--features", type=int, required=True, help="features per example")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="X's dtype (default float32)")
    p.add_argument("--chunk-rows", type=int, default=None, help=f"rows per write (default: {CHUNK_BYTES // 2**20} MiB "
                   "of float64 rows); memory is about 3 chunks of float64")
    p.add_argument("--seed", type=int, default=0, help="the data are a function of the seed and the row (default 0)")
    args = p.parse_args(argv)
    size = args.rows * args.features * np.dtype(args.dtype).itemsize
    print(f"writing {args.rows:,} x {args.features} {args.dtype} ({size / 1e9:.2f} GB of X) to {args.out}")
    start, last = time.perf_counter(), [0.0]

    def report(done, total):
        now = time.perf_counter()
        if now - last[0] > 2 or done == total:
            last[0] = now
            rate = done * args.features * np.dtype(args.dtype).itemsize / (now - start) / 1e6
            print(f"  {done:,}/{total:,} rows, {rate:.0f} MB/s", file=sys.stderr)

    try:
        files = write(args.out, args.rows, args.features, args.dtype, args.chunk_rows, args.seed, report)
    except (ValueError, OSError) as exc:
        raise SystemExit(f"make_dataset: {exc}") from None
    print(f"wrote {', '.join(files)} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
