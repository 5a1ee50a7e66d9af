"""``dgnn-lab partition``: partition a dataset and report what each worker would own, read and send.

The report follows DistDGL's partition log (owned vs. total nodes per part, edge cut, time) and adds what it
leaves out: halo sizes, communication volume per layer, replication factor, balance of nodes, edges and
training nodes, and the P x P matrix of rows one synchronous layer sends.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dgnn_lab.cli.common import CLIError, add_dataset_args, add_json_flag, defer, load_dataset, print_json, table


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "partition", help="partition a graph and report cut, halos, balance and cost",
        description="Partition a dataset for distributed training and report the plan's statistics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    defer(p, _methods_epilog)  # the partitioners' descriptions import the partition package: on first use only
    add_dataset_args(p)
    p.add_argument("--parts", type=int, required=True, metavar="K", help="number of parts (workers)")
    p.add_argument("--method", default="metis", metavar="M", help="partitioner (default: metis; see below)")
    p.add_argument("--hops", type=int, default=1, metavar="L",
                   help="halo depth to report: an L-layer GNN reads the L-hop halo (default: 1)")
    p.add_argument("--balance", default="", metavar="KEYS",
                   help="vertex weights (metis, volume), comma-separated: train, degree (default: none)")
    p.add_argument("--method-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option, repeatable: ufactor=30 (metis), eps=0.05 (volume), model=PATH (cost)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    p.add_argument("--save", default=None, metavar="DIR", help="save the plan (JSON book + tensors) to DIR")
    p.add_argument("--save-assignment", default=None, metavar="FILE.npy",
                   help="save the node assignment (edge assignment for vertex-cut) as a NumPy array")
    add_json_flag(p)
    return p


def _methods_epilog(p: argparse.ArgumentParser) -> None:
    from dgnn_lab.partition.api import DESCRIPTIONS

    methods = "\n".join(f"  {m:<12} {d}" for m, d in DESCRIPTIONS.items())
    p.epilog = f"methods:\n{methods}"


def _report(st, data_name: str, saved: list[str]) -> str:
    lines = [f"partition of {data_name}: {st.num_nodes:,} nodes, {st.num_edges:,} directed edges "
             f"({st.num_undirected_edges:,} undirected) into {st.num_parts} parts with {st.method} ({st.kind})", ""]
    halo_name = "mirrors" if st.kind == "vertex-cut" else f"halo({st.hops}-hop)"
    owned_name = "masters" if st.kind == "vertex-cut" else "owned"
    rows = [[r["part"], r["owned"], r["halo"], r["total"], r["edges"], r["train"], r["sends"]] for r in st.per_part]
    lines.append(table(rows, ["part", owned_name, halo_name, "total", "edges", "train", "sends/layer"]))
    b = st.balance

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    lines += [
        "",
        f"edge cut            {st.edge_cut:,} of {st.num_undirected_edges:,} undirected edges "
        f"({st.edge_cut_fraction:.2%})" + ("  (vertex-cut: no edge is cut; nodes are)" if st.kind == "vertex-cut"
                                           else ""),
        f"comm volume         {st.comm_volume:,} rows per synchronous layer (sum of 1-hop halos)",
        f"replication factor  {st.replication_factor:.3f}"
        + (f"  ({st.mirrors_per_node:.3f} mirrors per node)" if st.mirrors_per_node is not None
           else f"  ((owned + {st.hops}-hop halo) / nodes)"),
        f"balance (max/mean)  nodes {f(b['nodes'])}  edges {f(b['edges'])}  train {f(b['train'])}",
        f"work imbalance      {f(st.work_imbalance)} (max / mean edges aggregated per layer: what full-graph "
        "training's work_imbalance measures)",
        f"time                {st.seconds:.3f} s (partitioner {st.timings.get('assign', 0):.3f} s, "
        f"plan {st.timings.get('build', 0):.3f} s)",
    ]
    lines += [f"note: {n}" for n in st.notes]
    lines += [f"saved: {s}" for s in saved]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from dgnn_lab.partition import partition, partition_stats, save_plan

    if args.save_assignment is not None and not args.save_assignment.endswith(".npy"):
        raise CLIError(f"--save-assignment must name a .npy file, got {args.save_assignment!r}")
    data = load_dataset(args)
    try:
        from dgnn_lab.train.config import parse_partition_args

        plan = partition(data, args.parts, args.method, seed=args.seed, hops=args.hops, balance=args.balance,
                         **parse_partition_args(args.method_arg))
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    st = partition_stats(plan, data)
    saved = []
    try:
        if args.save:
            saved.append(f"plan -> {save_plan(plan, args.save)}/")
        if args.save_assignment:
            arr = plan.edge_assignment if plan.kind == "vertex-cut" else plan.assignment
            Path(args.save_assignment).parent.mkdir(parents=True, exist_ok=True)
            np.save(args.save_assignment, arr.numpy())
            what = "edge assignment" if plan.kind == "vertex-cut" else "node assignment"
            saved.append(f"{what} -> {args.save_assignment}")
    except OSError as exc:
        raise CLIError(f"cannot save: {exc}") from None
    if args.json:
        out = st.as_dict()
        out["dataset"] = args.dataset
        out["saved"] = saved
        out["boundary_sizes"] = plan.boundary_sizes().tolist()
        print_json(out)
    else:
        print(_report(st, args.dataset, saved))
    return 0
