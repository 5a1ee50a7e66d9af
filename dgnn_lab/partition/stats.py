"""Partition statistics, computed once here and reused by the CLI, the widgets, the notebooks and the tests.

Definitions (``P`` parts, ``N`` nodes, ``L = plan.hops``):

* edge cut: undirected edges (each link counted once, self-loops ignored) whose ends are owned by different
  parts; the fraction is over all undirected edges. For a vertex-cut plan no edge is cut (0).
* communication volume: the sum over parts of the 1-hop halo size = the sum of all boundary sets = the rows
  one synchronous full-graph layer moves (for vertex-cut: the number of mirrors, each synchronised per layer).
* replication factor: edge-cut ``sum_p (owned_p + |L-hop halo_p|) / N`` (how many copies of node state the
  workers hold); vertex-cut ``sum_p (masters_p + mirrors_p) / N`` (replicas per node; mirrors per node is one less).
* balance: ``max / mean`` over parts of owned nodes, of local edges (edges whose destination a part owns, or
  edges assigned to it for vertex-cut: the aggregation work) and of owned training nodes; 1.0 is perfect.
* work imbalance: the edge balance under its own name: ``max / mean`` of the edges each worker aggregates per
  layer (:func:`plan_work`), what full-graph training's ``work_imbalance`` measures, known before any run.
* causes of imbalance (:func:`imbalance_causes`): each quantity a worker's epoch time grows with, apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from dgnn_lab.graph import k_hop_rings, to_csr, undirected_pairs
from dgnn_lab.partition._threads import threads_for
from dgnn_lab.partition.plan import PartitionPlan


@dataclass
class PartitionStats:
    """Every number a partition report shows; ``as_dict()`` is the CLI's ``--json``."""

    method: str
    kind: str
    num_parts: int
    num_nodes: int
    num_edges: int
    hops: int
    edge_cut: int
    edge_cut_fraction: float
    num_undirected_edges: int
    comm_volume: int
    replication_factor: float
    balance: dict[str, float | None]
    seconds: float
    timings: dict[str, float]
    per_part: list[dict[str, int]]
    mirrors_per_node: float | None = None
    notes: list[str] = field(default_factory=list)
    #: max / mean edges aggregated per part (= ``balance["edges"]``): the full-graph ``work_imbalance``
    work_imbalance: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: the numbers a student compares first."""
        return (f"{self.method} ({self.kind}, {self.num_parts} parts): edge cut {self.edge_cut:,} "
                f"({self.edge_cut_fraction:.1%}), comm volume {self.comm_volume:,} rows/layer, "
                f"replication {self.replication_factor:.3f}, balance nodes {_fmt(self.balance['nodes'])} "
                f"edges {_fmt(self.balance['edges'])} train {_fmt(self.balance['train'])}, "
                f"{self.seconds:.3f} s")


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def imbalance(values: Tensor) -> float | None:
    """``max / mean`` (1.0 = perfectly balanced); None when the mean is 0 (nothing to balance)."""
    values = values.double()
    mean = values.mean().item() if values.numel() else 0.0
    return None if mean == 0 else values.max().item() / mean


def edge_cut(edge_index: Tensor, num_nodes: int, assignment: Tensor) -> tuple[int, int]:
    """``(cut, total)``: undirected edges whose ends lie in different parts, and all undirected edges."""
    lo, hi = undirected_pairs(edge_index, num_nodes)
    return int((assignment[lo] != assignment[hi]).sum()), int(lo.numel())


def partition_stats(plan: PartitionPlan, data: Any) -> PartitionStats:
    """Statistics of ``plan`` on the graph it was built from (``data.edge_index``, optional ``train_mask``)."""
    with threads_for(plan.num_edges):
        return _partition_stats(plan, data)


def _partition_stats(plan: PartitionPlan, data: Any) -> PartitionStats:
    edge_index = data.edge_index
    n = plan.num_nodes
    if edge_index.size(1) != plan.num_edges or int(data.num_nodes) != n:
        raise ValueError(f"plan was built for {n} nodes / {plan.num_edges} edges, data has "
                         f"{int(data.num_nodes)} / {edge_index.size(1)}")
    train = getattr(data, "train_mask", None)
    vertex_cut = plan.kind == "vertex-cut"
    if vertex_cut:
        cut, total = 0, int(undirected_pairs(edge_index, n).size(1))
    else:
        cut, total = edge_cut(edge_index, n, plan.assignment)
    halo_hops = 1 if vertex_cut else plan.hops
    per_part = []
    for part in plan.parts:
        row = {
            "part": part.part,
            "owned": part.num_owned,
            "halo": int(part.halo(halo_hops).numel()),
            "halo_1hop": int(part.halo_rings[0].numel()) if part.halo_rings else 0,
            "edges": int(part.local_edge_ids.numel()),
            "train": int(train[part.owned].sum()) if train is not None else 0,
            "sends": int(sum(b.numel() for b in part.boundary.values())),
        }
        row["total"] = row["owned"] + row["halo"]
        per_part.append(row)
    col = {k: torch.tensor([r[k] for r in per_part]) for k in ("owned", "halo", "halo_1hop", "edges", "train")}
    comm = int(col["halo_1hop"].sum())
    replication = (n + int(col["halo"].sum())) / n
    return PartitionStats(
        method=plan.method, kind=plan.kind, num_parts=plan.num_parts, num_nodes=n, num_edges=plan.num_edges,
        hops=plan.hops, edge_cut=cut, edge_cut_fraction=cut / total if total else 0.0,
        num_undirected_edges=total, comm_volume=comm, replication_factor=replication,
        balance={"nodes": imbalance(col["owned"]), "edges": imbalance(col["edges"]),
                 "train": imbalance(col["train"]) if train is not None else None},
        seconds=plan.seconds, timings=dict(plan.timings), per_part=per_part,
        mirrors_per_node=replication - 1 if vertex_cut else None, notes=list(plan.notes),
        work_imbalance=imbalance(col["edges"]),
    )


def plan_work(plan: PartitionPlan) -> list[int]:
    """Edges each part aggregates per layer in full-graph training, from the plan alone: edge-cut, the
    in-edges of its owned nodes; vertex-cut, the edges assigned to it."""
    return [int(part.local_edge_ids.numel()) for part in plan.parts]


#: The causes :func:`imbalance_causes` shows apart, and what each counts per part.
CAUSES = {
    "nodes": "owned nodes (masters for vertex-cut)",
    "edges": "edges aggregated per layer (degree skew)",
    "train": "training seeds",
    "halo_recv": "halo rows received per layer (column sums of the P x P matrix)",
    "halo_sent": "halo rows sent per layer (row sums of the P x P matrix)",
    "hardware": "slowdown of the worker's hardware (an injected straggler)",
}


def imbalance_causes(stats: PartitionStats, straggler: list | tuple | None = None) -> dict[str, dict]:
    """Why workers' epochs differ, one cause at a time: ``{cause: {"per_part": [...], "imbalance": max/mean,
    "what": description}}`` for :data:`CAUSES`. Work (nodes, edges, seeds) and communication (halo rows in
    and out) come from the plan; ``straggler = [rank, factor]`` (the run's) is the hardware cause, every other
    worker at 1.0."""
    pp = stats.per_part
    per = {"nodes": [r["owned"] for r in pp], "edges": [r["edges"] for r in pp], "train": [r["train"] for r in pp],
           "halo_recv": [r["halo_1hop"] for r in pp], "halo_sent": [r["sends"] for r in pp]}
    speed = [1.0] * stats.num_parts
    if straggler is not None:
        rank, factor = int(straggler[0]), float(straggler[1])
        if not 0 <= rank < stats.num_parts:
            raise ValueError(f"straggler rank must be in [0, {stats.num_parts - 1}], got {rank}")
        speed[rank] = factor
    per["hardware"] = speed
    return {k: {"per_part": v, "imbalance": imbalance(torch.tensor(v, dtype=torch.float64)), "what": CAUSES[k]}
            for k, v in per.items()}


def halo_growth(data: Any, assignment: Tensor, num_parts: int, max_hops: int) -> Tensor:
    """``P x max_hops`` matrix: column ``L-1`` is each part's ``L``-hop halo size (cumulative rings).

    This is why a 2-layer GNN needs the 2-hop neighbourhood: the second column, not the first, is what a
    worker must read (or fetch layer by layer) to compute its owned nodes' outputs.
    """
    n = int(data.num_nodes)
    with threads_for(int(data.edge_index.size(1))):
        csr = to_csr(data.edge_index, n)
        out = torch.zeros(num_parts, max_hops, dtype=torch.long)
        for p in range(num_parts):
            owned = (assignment == p).nonzero().flatten()
            rings = k_hop_rings(csr, owned, max_hops)
            out[p] = torch.cumsum(torch.tensor([r.numel() for r in rings], dtype=torch.long), 0)
    return out


def receptive_field_error(plan: PartitionPlan, data: Any, layers: int, *, seed: int = 0) -> float:
    """What goes wrong when a worker runs ``layers`` rounds of message passing on what it stores, no exchange.

    Each part takes its owned nodes plus the halo rings the plan stores (``plan.hops`` of them), keeps the
    edges among those nodes, and runs ``layers`` rounds of sum aggregation (``h <- A h``) on random features.
    Returns the largest absolute difference, over owned nodes, from the same rounds on the whole graph.
    It is 0 (up to float rounding) exactly when ``plan.hops >= layers``: an ``L``-layer GNN computed without
    communication needs the ``L``-hop halo. (With a halo exchange before every layer, ring 1 suffices; that is
    what the training notebooks do, paying with messages instead of memory.)
    """
    if plan.kind != "edge-cut":
        raise ValueError("receptive_field_error applies to edge-cut plans (vertex-cut plans have no halo rings)")
    n = plan.num_nodes
    src, dst = data.edge_index
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    h = x
    for _ in range(layers):
        h = torch.zeros_like(h).index_add_(0, dst, h[src])
    worst = 0.0
    stored = plan.hops if plan.hops > 0 else 0
    for part in plan.parts:
        l2g = torch.cat([part.owned, *part.halo_rings[:stored]]) if stored else part.owned
        local = torch.full((n,), -1, dtype=torch.long)
        local[l2g] = torch.arange(l2g.numel())
        keep = (local[src] >= 0) & (local[dst] >= 0)
        ls, ld = local[src[keep]], local[dst[keep]]
        hl = x[l2g]
        for _ in range(layers):
            hl = torch.zeros_like(hl).index_add_(0, ld, hl[ls])
        if part.num_owned:
            worst = max(worst, (hl[: part.num_owned] - h[part.owned]).abs().max().item())
    return worst
