"""Workload imbalance: the remedies trained side by side, the cost model's predictions, the cost partitioner at scale.

Run by hand (the remedies part trains about 20 short runs; a few minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_imbalance.py [--workers 4] [--nodes 20000] [--epochs 30] [--cora]
    .venv/bin/python benchmarks/bench_imbalance.py --scale 100000,1000000 [--model runs/cost_models/X.json]

Remedies (default): a power-law graph (and Cora with ``--cora``), the same settings under METIS, METIS with
degree weights, the volume partitioner, vertex-cut training (HDRF) and the cost-model partitioner; per remedy the
work imbalance (max / mean edges aggregated, counted), CPU and wall-time imbalance, training bytes and median time
per epoch, test accuracy, each as a ratio against METIS measured in the same run. The cost model is fitted first
(random, range, LDG, METIS on the graph and on one half its size) and then predicts the epoch time of the
remedies' runs, which it never saw: predicted, measured, relative error.

Scale (``--scale``): the cost partitioner on power-law graphs of the given sizes (10 edges a node): its time, the
predicted epoch of its choice against METIS's, communication volume against METIS's, and peak extra memory
(RSS sampled in a thread). Times are wall clock and noisy when other processes share the cores.
"""

from __future__ import annotations

import argparse
import time

from bench_partition import PeakRSS

from dgnn_lab.datasets import load
from dgnn_lab.experiments.imbalance import calibrate, frontier, remedies, validate
from dgnn_lab.partition import partition, partition_stats
from dgnn_lab.partition.cost import CostModel
from dgnn_lab.partition.plan import build_plan


def _remedies(args) -> CostModel:
    graph = {"num_nodes": args.nodes, "avg_degree": 10.0, "num_features": 32, "seed": 1}
    base = {"dataset": "powerlaw", "dataset_args": graph, "workers": args.workers, "hidden": 32,
            "epochs": args.epochs, "eval_every": args.epochs}
    t0 = time.perf_counter()
    model, fit = calibrate({**base, "epochs": min(args.epochs, 10)}, ("random", "range", "ldg", "metis"),
                           dataset_args=[graph, {**graph, "num_nodes": args.nodes // 2}], progress=True)
    print(f"\ncalibration: {len(fit.results)} runs in {time.perf_counter() - t0:.0f} s -> {model}")
    print(validate(model, fit.results).to_string(index=False))
    suites = {"powerlaw": base}
    if args.cora:
        suites["cora"] = {**base, "dataset": "cora", "dataset_args": {}}
    for label, cfg in suites.items():
        names = ["metis", "metis+degree", "volume", "vertex-cut (hdrf)"] + (["cost model"] if label == "powerlaw"
                                                                           else [])
        rem = remedies(cfg, names, cost_model=model, progress=True)
        t = frontier(rem).set_index("name")
        for col in ("work_imbalance", "train_bytes_per_epoch", "s_per_epoch"):
            t[f"{col} vs metis"] = t[col] / t.loc["metis", col]
        print(f"\n{label}, {args.workers} workers ({rem.table['cores'].iloc[0]} cores):")
        print(t.drop(columns=["cached"]).to_string())
        if label == "powerlaw":
            held = {n: rem.results[n] for n in names if n != "vertex-cut (hdrf)"}  # the model predicts edge-cut
            print("\ncost model on runs it was not fitted to:")
            print(validate(model, held).to_string(index=False))
    return model


def _scale(args, model: CostModel | None) -> None:
    if model is None:
        model = CostModel.load(args.model) if args.model else None
    if model is None:
        raise SystemExit("--scale needs a cost model: run the remedies part first or pass --model PATH")
    for n in [int(x) for x in args.scale.split(",")]:
        data = load("powerlaw", num_nodes=n, avg_degree=10.0, num_features=4, seed=0)
        t = time.perf_counter()
        metis = partition(data, args.workers, "metis")
        t_metis = time.perf_counter() - t
        with PeakRSS() as mem:
            t = time.perf_counter()
            plan = partition(data, args.workers, "cost", model=model)
            t_cost = time.perf_counter() - t
        st, sm = partition_stats(plan, data), partition_stats(metis, data)
        pm = model.predict_epoch(build_plan(data.edge_index, n, metis.assignment, args.workers))
        pc = model.predict_epoch(plan)
        print(f"\n{n:,} nodes / {data.edge_index.size(1):,} edges, {args.workers} parts: cost partitioner "
              f"{t_cost:.1f} s ({t_cost / t_metis:.2f}x METIS's {t_metis:.1f} s), peak extra RSS "
              f"{(mem.peak - mem.start) / 2**20:,.0f} MiB")
        print(f"  predicted epoch {pc * 1e3:.1f} ms vs METIS {pm * 1e3:.1f} ms ({pc / pm:.3f}x); comm volume "
              f"{st.comm_volume:,} vs {sm.comm_volume:,} ({st.comm_volume / sm.comm_volume:.3f}x); work imbalance "
              f"{st.work_imbalance:.3f} vs {sm.work_imbalance:.3f}")
        print("  " + "; ".join(plan.notes))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--nodes", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--cora", action="store_true", help="also the remedies on Cora (files must be on disk)")
    ap.add_argument("--scale", default=None, metavar="N1,N2", help="only the cost partitioner at these sizes")
    ap.add_argument("--model", default=None, metavar="PATH", help="a saved CostModel for --scale")
    args = ap.parse_args(argv)
    model = None if args.scale and args.model else _remedies(args)
    if args.scale:
        _scale(args, model)


if __name__ == "__main__":
    main()
