"""First-run time: import fastdnn and make one first call, in fresh processes with an empty Numba cache.

    python tools/cold_start.py                       # every entry point, 5 fresh processes each
    python tools/cold_start.py --only direct-float64 --repeats 9
    python tools/cold_start.py --breakdown gram      # where one first call's time goes, function by function
    PYTHONPATH=/path/to/other/checkout python tools/cold_start.py   # the same for another version

Each run is a new interpreter (numpy imported before the clock), with
NUMBA_CACHE_DIR pointing at a new empty folder, so every kernel compiles; it
reports ``import fastdnn`` and the first call separately, and their total, as
median [min-max] over the runs. The asv benchmark ``cold_start.ColdStart``
tracks the first row per commit; this tool adds the other entry points and the
breakdown:

    direct-float64   fastdnn.L_layer_model on a [64, 32, 32, 1] network, 64 examples, 10 iterations
    direct-float32   the same in float32 (each dtype compiles its own kernels)
    gram             the same call on the Gram route (gram=True): the cat example's route
    estimator        DNNClassifier(max_iter=5).fit(X, y).predict(X): minibatch Adam, then prediction

``--breakdown`` runs one entry point once and lists every function Numba
compiled: how many versions, the seconds spent in it excluding the functions it
called (typing, lowering, LLVM), and the seconds of LLVM work (optimisation
and machine code) done for its library. One process, one thread: the machine's
other core idles, which is what a user's first run sees too. The environment's
OPENBLAS_CORETYPE is removed for the child processes.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile

DATA = """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((64, 64))
Y = (rng.random((1, 64)) > 0.5).astype(float)
"""

CALLS = {
    "direct-float64": "fastdnn.L_layer_model(X, Y, [64, 32, 32, 1], num_iterations=10, gram=False)",
    "direct-float32": "fastdnn.L_layer_model(X.astype('float32'), Y.astype('float32'), [64, 32, 32, 1], "
    "num_iterations=10, gram=False)",
    "gram": "fastdnn.L_layer_model(X, Y, [64, 32, 32, 1], num_iterations=10, gram=True)",
    "estimator": "fastdnn.DNNClassifier(max_iter=5).fit(X.T, Y.ravel()).predict(X.T)",
}

TIMED = DATA + """
import time
t0 = time.perf_counter()
import fastdnn
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

BREAKDOWN = DATA + """
import collections, time
from numba.core import codegen, event
import fastdnn

class Exclusive(event.Listener):
    # Seconds per compiled function, the functions it compiled while typing it excluded.
    def __init__(self):
        self.stack, self.seconds, self.versions = [], collections.Counter(), collections.Counter()
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        self.stack.append([f.__module__.rsplit(".", 1)[-1] + "." + f.__qualname__, time.perf_counter(), 0.0])
    def on_end(self, ev):
        name, start, inner = self.stack.pop()
        took = time.perf_counter() - start
        if self.stack:
            self.stack[-1][2] += took
        self.seconds[name] += took - inner
        self.versions[name] += 1

llvm = collections.Counter()
def timed(method):
    def wrapper(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            llvm[self.name] += time.perf_counter() - start
    return wrapper
# LLVM's work for a library: its IR parsed and optimised function by function (add_ir_module),
# linked, optimised as a module and turned into machine code (finalize).
codegen.CPUCodeLibrary.add_ir_module = timed(codegen.CPUCodeLibrary.add_ir_module)
codegen.CPUCodeLibrary.finalize = timed(codegen.CPUCodeLibrary.finalize)

listener = Exclusive()
event.register("numba:compile", listener)
start = time.perf_counter()
{call}
total = time.perf_counter() - start
def library_seconds(name):
    # A library is named by the function's qualified name ("train", "_gemm_impl.<locals>.impl").
    qualname = name.split(".", 1)[1]
    return sum(s for lib, s in llvm.items() if lib == qualname)
print(f"first call {{total:.2f}} s; LLVM {{sum(llvm.values()):.2f}} s of it; {{sum(listener.versions.values())}} compiles")
print(f"{{'function':58s}} {{'versions':>8s}} {{'seconds':>8s}} {{'of which LLVM':>14s}}")
for name, seconds in listener.seconds.most_common():
    print(f"{{name[:58]:58s}} {{listener.versions[name]:8d}} {{seconds:8.2f}} {{library_seconds(name):14.2f}}")
"""


def child_env(cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
    env.pop("OPENBLAS_CORETYPE", None)
    return env


def run_child(code):
    with tempfile.TemporaryDirectory(prefix="fastdnn-cold-") as cache:
        # Run in the cache folder: ``python -c`` puts the working directory first on sys.path, and a
        # checkout's own fastdnn there would shadow the one PYTHONPATH or the installation names.
        out = subprocess.run([sys.executable, "-c", code], env=child_env(cache), capture_output=True, text=True, cwd=cache)
    if out.returncode:
        sys.exit(f"the child process failed:\n{out.stderr[-3000:]}")
    return out.stdout


def spread(values):
    return f"{statistics.median(values):5.2f} [{min(values):.2f}-{max(values):.2f}]"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--only", default=",".join(CALLS), help=f"comma-separated entry points (default: all): {', '.join(CALLS)}")
    p.add_argument("--repeats", type=int, default=5, help="fresh processes per entry point (default 5)")
    p.add_argument("--breakdown", choices=sorted(CALLS), help="one first call of this entry point, function by function")
    args = p.parse_args(argv)

    if args.breakdown:
        print(run_child(BREAKDOWN.format(call=CALLS[args.breakdown])), end="")
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in CALLS]
    if unknown:
        p.error(f"--only: unknown entry point {', '.join(unknown)}; choose from {', '.join(CALLS)}")
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "")
    import fastdnn

    print(f"fastdnn from {os.path.dirname(fastdnn.__file__)}")
    print(f"{cpu or platform.processor()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
          f"{args.repeats} fresh processes per row, empty Numba cache each; seconds, median [min-max]")
    print(f"{'entry point':16s} {'import fastdnn':>18s} {'first call':>18s} {'total':>18s}")
    for name in names:
        runs = [tuple(map(float, run_child(TIMED.format(call=CALLS[name])).split())) for _ in range(args.repeats)]
        imports, calls = [r[0] for r in runs], [r[1] for r in runs]
        print(f"{name:16s} {spread(imports):>18s} {spread(calls):>18s} {spread([a + b for a, b in runs]):>18s}")


if __name__ == "__main__":
    main()
