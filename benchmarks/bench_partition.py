"""Partitioning cost at scale: every method on a csbm graph of 1M nodes / 10M directed edges.

Run by hand (a minute or two at full size; ``--small`` for a quick check)::

    .venv/bin/python benchmarks/bench_partition.py [--small] [--parts 4] [--methods metis,ldg,...]

For each method: time to the node (or edge) assignment, time to build the ``PartitionPlan``, their sum, the
peak extra resident memory while it ran (RSS sampled every 5 ms above the level before the call, so it
includes numpy/torch buffers that tracemalloc cannot see), the edge cut and the replication factor. Ratios are
against METIS measured in the same run on the same machine. Numbers are wall-clock and noisy when other
processes share the cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import threading
import time

from dgnn_lab.datasets import load
from dgnn_lab.partition import METHODS, partition, partition_stats


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


class PeakRSS:
    """Samples this process's resident set size in a thread; ``.peak - .start`` is the extra memory used."""

    def __enter__(self):
        self.start = self.peak = _rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="50k nodes / 500k edges instead of 1M / 10M")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated (default: all)")
    args = ap.parse_args(argv)
    n = 50_000 if args.small else 1_000_000
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if "metis" in methods:  # the baseline goes first
        methods.remove("metis")
    methods.insert(0, "metis")

    load0 = os.getloadavg()
    t = time.perf_counter()
    data = load("csbm", num_nodes=n, avg_degree=10.0, num_features=4)
    print(f"csbm: {n:,} nodes, {data.edge_index.size(1):,} directed edges, generated in "
          f"{time.perf_counter() - t:.1f} s; {args.parts} parts")
    # compile the numba kernels on a toy graph so the table shows warm times (compile time printed once)
    t = time.perf_counter()
    toy = load("csbm", num_nodes=200)
    for m in ("ldg", "fennel", "hdrf"):
        partition(toy, 2, m, order="bfs") if m != "hdrf" else partition(toy, 2, m)
    print(f"numba warm-up (compile or cache load): {time.perf_counter() - t:.2f} s")

    rows = []
    for m in methods:
        with PeakRSS() as mem:
            plan = partition(data, args.parts, m)
        st = partition_stats(plan, data)
        rows.append((m, plan.timings["assign"], plan.timings["build"], plan.seconds,
                     (mem.peak - mem.start) / 2**20, st.edge_cut_fraction, st.replication_factor, plan.kind))
        print(f"  {m:<12} done in {plan.seconds:6.2f} s", flush=True)
        del plan

    base = rows[0][3]
    print(f"\n{os.cpu_count()} cores; load average at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f} "
          "(above the core count, other processes shared the cores and times are inflated)")
    head = (f"{'method':<12} {'kind':<10} {'assign s':>9} {'plan s':>8} {'total s':>8} {'vs metis':>9} "
            f"{'peak MiB':>9} {'cut frac':>9} {'repl.':>7}")
    print(head)
    print("-" * len(head))
    for m, a, b, tot, mib, cut, rf, kind in rows:
        print(f"{m:<12} {kind:<10} {a:9.2f} {b:8.2f} {tot:8.2f} {tot / base:8.2f}x {mib:9.0f} {cut:9.3f} "
              f"{rf:7.3f}")
    print(f"\nprocess max RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    print("targets here: metis + plan < 15 s, ldg/fennel < 30 s (1M nodes / 10M edges)")


if __name__ == "__main__":
    main()
