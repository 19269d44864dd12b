"""Expected throughput and efficiency of data-parallel training on p machines, from one machine's measurements.

    python tools/mpi_bench.py --json mpi.json        # measure (one process, and 2 ranks over shm and TCP)
    python tools/scaling_model.py mpi.json           # the table for p = 2..64 at 10, 25 and 100 Gb/s

The model, per synchronous step of a global batch B on p machines like this one (one rank each, using all
its cores):

    compute(p) = t(B/p) + overhead        t(B/p): one process's step on B/p rows, measured (it keeps what
                                          does not shrink with the share: Adam's update over every
                                          parameter, the kernels' fixed costs); overhead: the distributed
                                          step's own cost (the Python step loop, the gather, two kernel
                                          calls), measured on 2 ranks as their compute minus one process's
                                          step on B (both on this machine's 2 cores)
    comm(p)    = 2 (p - 1) / p x bytes / bandwidth + 2 (p - 1) x latency
                                          ring Allreduce of the flat gradient (+ the cost), nothing
                                          hidden by overlap (fastdnn reduces after the backward pass)
    throughput = B / (compute + comm),  efficiency = throughput / (p x B / t(B))

What 2 ranks on one machine can check, it does: that a step is its compute plus its Allreduce timed apart
(the 2-rank TCP step against the shared-memory run's compute plus the TCP Allreduce). The ring formula's
growth with p is the textbook cost and is not checked here: that needs more machines.
"""

import argparse
import json

SPEEDS_GBPS = (10, 25, 100)
RANKS = (2, 4, 8, 16, 32, 64)


def comm_seconds(p, nbytes, bandwidth, latency):
    return 2 * (p - 1) / p * nbytes / bandwidth + 2 * (p - 1) * latency


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("json", help="tools/mpi_bench.py --json output")
    p.add_argument("--latency-us", type=float, default=5.0, help="a network's per-message latency (default 5 us)")
    args = p.parse_args(argv)
    with open(args.json) as f:
        measured = json.load(f)
    for name, modes in measured.items():
        one = modes["1x2"]
        t1 = one["step_ms"] * 1e-3
        nbytes, batch = one["bytes"], one["batch"]
        print(f"{name}: {one['dims']}, batch {batch}; one process {one['step_ms']:.2f} ms a step "
              f"({batch / t1:,.0f} examples/s); {nbytes / 2**20:.2f} MiB reduced a step")
        overhead = 0.0
        if "2x1-shm" in modes:
            shm = modes["2x1-shm"]
            overhead = max(0.0, (shm["step_ms"] - shm["allreduce_ms"]) * 1e-3 - t1)
        if "2x1-shm" in modes and "2x1-tcp" in modes:
            tcp = modes["2x1-tcp"]
            added = (shm["step_ms"] - shm["allreduce_ms"] + tcp["allreduce_ms"]) * 1e-3
            print(f"  check that compute and Allreduce add up: the 2-rank TCP step from the shm run's compute plus the "
                  f"TCP Allreduce timed alone {added * 1e3:.2f} ms, measured {tcp['step_ms']:.2f} ms "
                  f"({(added - tcp['step_ms'] * 1e-3) / (tcp['step_ms'] * 1e-3):+.0%})")
        print(f"  distributed step overhead (2-rank compute - one process's step): {overhead * 1e3:.2f} ms")
        header = "  ranks " + "".join(f"{f'{g} Gb/s: examples/s, efficiency':>34s}" for g in SPEEDS_GBPS)
        print(header)
        for ranks in RANKS:
            cells = []
            for gbps in SPEEDS_GBPS:
                compute = one["share_step_ms"][str(ranks)] * 1e-3
                step = compute + overhead + comm_seconds(ranks, nbytes, gbps * 1e9 / 8, args.latency_us * 1e-6)
                rate = batch / step
                cells.append(f"{rate:>22,.0f} {rate / (ranks * batch / t1):>10.0%}")
            print(f"  {ranks:5d} " + "".join(f"{c:>34s}" for c in cells))
        print()


if __name__ == "__main__":
    main()
