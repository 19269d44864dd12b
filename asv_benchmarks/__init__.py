"""fastdnn's airspeed velocity (asv) suite; asv.conf.json at the repository root points here.

    training.py    whole training runs (fastdnn.L_layer_model): time and peak memory
    kernels.py     one call of each compiled kernel on the workloads' shapes
    cold_start.py  import + first fit in a fresh process, Numba disk cache warm vs empty

Workloads (common.py): the course's seed network on data of the cat set's shape,
and three synthetic float32 networks (medium, wide, small). BLAS runs with 2
threads (threadpoolctl) and Numba with 2 (numba.set_num_threads), set in every
setup. Iteration counts are small so one call stays under about 2 s.

Run against the environment you are in (fastdnn installed in it, e.g. editable):

    asv machine --yes                       # once per machine
    asv run --python=same --quick --show-stderr    # smoke run: every benchmark once
    asv run --python=same                   # real timings, recorded under .asv/results
    asv publish && asv preview              # browse them

``--python=same`` benchmarks the installed fastdnn; asv does not build or
install anything (``environment_type`` is "existing"), so it works offline.
"""
