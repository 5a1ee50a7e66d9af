"""Synthetic graph generation at scale: csbm and powerlaw at 1M nodes / ~10M directed edges.

Run by hand: ``.venv/bin/python benchmarks/bench_datasets.py [--small]``. Prints seconds, edges per second and
peak memory of a child process per generator (so one run's memory doesn't hide another's), plus the ratio
against a baseline measured in the same run: generating the same number of uniformly random edges (the cheapest
possible graph of that size), which shows what the class structure costs on top.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time


def _measure(name: str, params: dict, queue) -> None:
    import torch

    from dgnn_lab import datasets
    from dgnn_lab.graph import to_undirected

    start = time.perf_counter()
    if name == "uniform (baseline)":
        gen = torch.Generator().manual_seed(0)
        n, m = params["num_nodes"], int(params["num_nodes"] * params["avg_degree"] / 2)
        ei = to_undirected(torch.randint(0, n, (2, m), generator=gen), n)
        torch.randn(n, 32, generator=gen)
        edges = ei.size(1)
    else:
        edges = datasets.load(name, **params).edge_index.size(1)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((seconds, edges, peak_mib))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="100k nodes instead of 1M")
    args = parser.parse_args()
    params = {"num_nodes": 100_000 if args.small else 1_000_000, "avg_degree": 10}
    ctx = mp.get_context("spawn")
    rows = []
    for name in ("uniform (baseline)", "csbm", "powerlaw"):
        q = ctx.Queue()
        p = ctx.Process(target=_measure, args=(name, params, q))
        p.start()
        rows.append((name, *q.get()))
        p.join()
    base = rows[0][1]
    print(f"{params['num_nodes']:,} nodes, avg_degree {params['avg_degree']} (aim for csbm at 1M: < 10 s)")
    print(f"{'generator':<20} {'seconds':>8} {'x baseline':>10} {'directed edges':>15} {'edges/s':>12} {'peak MiB':>9}")
    for name, sec, edges, peak in rows:
        print(f"{name:<20} {sec:8.2f} {sec / base:10.2f} {edges:15,} {edges / sec:12,.0f} {peak:9,.0f}")


if __name__ == "__main__":
    main()
