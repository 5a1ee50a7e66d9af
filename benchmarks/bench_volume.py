"""Communication volume vs edge cut at scale: METIS against the ``volume`` partitioner (Mt-KaHyPar, km1).

Run by hand (each partitioner in a fresh subprocess, so its peak memory is its own)::

    .venv/bin/python benchmarks/bench_volume.py [--sizes 100000,1000000] [--parts 4] [--dataset csbm]
        [--methods metis,volume,volume:scratch,volume:scratch/default]

``volume:X/Y`` is the ``volume`` partitioner with ``start=`` and/or ``preset=`` set to each of X, Y (a start:
``metis``, ``scratch``; a preset: ``deterministic``, ``default`` (faster, not deterministic), ``quality``). For
each graph size and method: seconds to the assignment (the partitioner alone, not the plan), the edge cut,
the communication volume (sum of 1-hop halo sizes: the rows one full-graph layer moves), the volume and the
time as ratios against METIS measured in the same run, the node imbalance, and memory: the peak extra resident
set while the partitioner ran (sampled every 5 ms above the level after loading the graph) and the child's
``ru_maxrss``. Wall-clock numbers are noisy when other processes share the cores (the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from bench_partition import PeakRSS


def _graph(dataset: str, n: int):
    from dgnn_lab.datasets import load

    return load(dataset, num_nodes=n, avg_degree=10.0, num_features=4, seed=0)


def child(spec: dict) -> dict:
    """One partitioner on one graph, in this (fresh) process; returns the figures as a dict."""
    from dgnn_lab.partition import partition, partition_stats

    t = time.perf_counter()
    data = _graph(spec["dataset"], spec["n"])
    gen_s = time.perf_counter() - t
    from dgnn_lab.partition.volume import PRESETS, STARTS

    method, _, tail = spec["method"].partition(":")
    opts = {}
    for word in filter(None, tail.split("/")):
        if word not in STARTS + PRESETS:
            raise ValueError(f"{word!r} is neither a start ({', '.join(STARTS)}) nor a preset ({', '.join(PRESETS)})")
        opts["start" if word in STARTS else "preset"] = word
    with PeakRSS() as mem:
        plan = partition(data, spec["parts"], method, **opts)
    st = partition_stats(plan, data)
    return {"edges": int(data.edge_index.size(1)), "gen_s": gen_s, "assign_s": plan.timings["assign"],
            "cut": st.edge_cut, "cut_frac": st.edge_cut_fraction, "volume": st.comm_volume,
            "nodes_balance": st.balance["nodes"], "peak_mib": (mem.peak - mem.start) / 2**20,
            "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10}


def _run_child(spec: dict, timeout: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{spec['method']} at {spec['n']:,} nodes failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000", help="comma-separated node counts")
    ap.add_argument("--parts", type=int, default=4)
    ap.add_argument("--dataset", default="csbm", choices=["csbm", "powerlaw"])
    ap.add_argument("--methods", default="metis,volume", help="comma-separated; volume:START/PRESET sets options")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per partitioner (default 3600)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip() and m.strip() != "metis"]
    methods.insert(0, "metis")  # the baseline goes first

    load0 = os.getloadavg()
    rows = []
    for n in sizes:
        for m in methods:
            r = _run_child({"dataset": args.dataset, "n": n, "parts": args.parts, "method": m}, args.timeout)
            rows.append((n, m, r))
            print(f"  {args.dataset} {n:>9,} nodes {r['edges']:>11,} edges  {m:<22} {r['assign_s']:8.2f} s  "
                  f"volume {r['volume']:>10,}  (graph generated in {r['gen_s']:.1f} s)", flush=True)

    print(f"\n{os.cpu_count()} cores; load average at start {load0[0]:.1f}, at end {os.getloadavg()[0]:.1f} "
          "(above the core count, other processes shared the cores and times are inflated)")
    head = (f"{'nodes':>9} {'method':<22} {'seconds':>8} {'vs metis':>9} {'edge cut':>11} {'cut frac':>8} "
            f"{'volume':>10} {'vol/metis':>9} {'node bal':>8} {'peak MiB':>9} {'maxrss MiB':>10}")
    print(head)
    print("-" * len(head))
    for n, m, r in rows:
        base = next(b for nn, mm, b in rows if nn == n and mm == "metis")
        print(f"{n:>9,} {m:<22} {r['assign_s']:8.2f} {r['assign_s'] / base['assign_s']:8.1f}x {r['cut']:>11,} "
              f"{r['cut_frac']:8.3f} {r['volume']:>10,} {r['volume'] / base['volume']:9.3f} "
              f"{r['nodes_balance']:8.3f} {r['peak_mib']:9.0f} {r['maxrss_mib']:10.0f}")


if __name__ == "__main__":
    main()
