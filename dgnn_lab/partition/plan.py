"""The ``PartitionPlan``: what each worker owns, which halo it reads, and which rows it sends to whom.

Definitions (edge-cut; all node ids global unless a name says local):

* ``owned[p]``: nodes assigned to part ``p``.
* halo ring ``L`` of ``p``: nodes not owned by ``p`` whose shortest path *into* ``owned[p]`` has length ``L``
  (edges followed in the message direction ``src -> dst``). The ``L``-hop halo is rings ``1..L``.
* ``boundary[p][q]``: owned nodes of ``p`` that are in ``q``'s 1-hop halo: exactly the rows a synchronous
  full-graph layer sends from ``p`` to ``q``, sorted by global id (so sender and receiver agree on the order).
* the plan always stores at least ring 1 (training needs it), also for ``hops=0``.
* local ids of part ``p``: owned nodes first (ascending), then ring 1, ring 2, ... (each ascending), so the
  ``L``-hop local graph is a prefix of the id space.
* local edges of ``p``: every edge whose destination ``p`` owns, in local ids; that is all one GNN layer needs
  to compute ``p``'s owned outputs once the 1-hop halo rows have arrived.

Vertex-cut plans (``kind == "vertex-cut"``, built by :mod:`dgnn_lab.partition.vertex_cut`) reuse the same
fields with the PowerGraph meaning: every *edge* belongs to exactly one part (``edge_assignment``); a node
appears on every part holding one of its edges (a replica); one replica is the master (``assignment``), the
others are mirrors. Then ``owned[p]`` are ``p``'s masters, ``halo_rings == [mirrors]`` (one ring: replicas
are synchronised every layer, there is no multi-hop halo), local edges are the edges assigned to ``p``
(local ids: masters first, then mirrors), and ``boundary[p][q]`` are ``p``'s masters mirrored on ``q``: the
rows a master broadcasts to its mirrors (the mirrors' partial aggregates travel the same pairs the other way).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dgnn_lab.graph import CSR, k_hop_rings, to_csr


@dataclass
class PartPlan:
    """One part's view of the graph."""

    part: int
    owned: Tensor
    halo_rings: list[Tensor]
    local_edge_index: Tensor
    local_edge_ids: Tensor
    boundary: dict[int, Tensor] = field(default_factory=dict)

    def __repr__(self) -> str:
        rings = ", ".join(str(r.numel()) for r in self.halo_rings)
        return (f"PartPlan(part={self.part}, owned={self.num_owned}, halo_rings=[{rings}], "
                f"local_edges={self.local_edge_ids.numel()}, sends_to={sorted(self.boundary)})")

    @property
    def num_owned(self) -> int:
        return self.owned.numel()

    @property
    def masters(self) -> Tensor:
        """Vertex-cut name for :attr:`owned`: the nodes whose master replica lives here."""
        return self.owned

    @property
    def mirrors(self) -> Tensor:
        """Vertex-cut name for ring 1: replicas here whose master is elsewhere (edge-cut: the 1-hop halo)."""
        return self.halo_rings[0] if self.halo_rings else torch.empty(0, dtype=torch.long)

    def halo(self, hops: int | None = None) -> Tensor:
        """The ``hops``-hop halo (all rings when ``hops`` is None), in local-id order."""
        rings = self.halo_rings if hops is None else self.halo_rings[:hops]
        return torch.cat(rings) if rings else torch.empty(0, dtype=torch.long)

    @property
    def local_to_global(self) -> Tensor:
        return torch.cat([self.owned, self.halo()])

    def global_to_local(self, ids: Tensor, num_nodes: int) -> Tensor:
        """Local ids of global ``ids``; -1 for nodes this part neither owns nor has in its halo."""
        table = torch.full((num_nodes,), -1, dtype=torch.long)
        l2g = self.local_to_global
        table[l2g] = torch.arange(l2g.numel())
        return table[ids]

    def recv_from(self, q: int, plan: PartitionPlan) -> Tensor:
        """Global ids of the halo rows part ``q`` sends here, in the order they arrive."""
        return plan.parts[q].boundary.get(self.part, torch.empty(0, dtype=torch.long))


@dataclass
class PartitionPlan:
    """A partition of a graph into ``num_parts`` parts plus everything workers derive from it."""

    method: str
    num_parts: int
    num_nodes: int
    num_edges: int
    hops: int
    assignment: Tensor
    parts: list[PartPlan]
    kind: str = "edge-cut"
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    edge_assignment: Tensor | None = None
    seed: int = 0
    options: dict = field(default_factory=dict)
    #: wall seconds per stage (``"assign"``: the partitioner, ``"build"``: this plan); ``seconds`` is their sum
    timings: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"PartitionPlan(method={self.method!r}, kind={self.kind!r}, num_parts={self.num_parts}, "
                f"num_nodes={self.num_nodes}, num_edges={self.num_edges}, hops={self.hops}, "
                f"seconds={self.seconds:.3g})")

    def boundary(self, p: int, q: int) -> Tensor:
        """Rows part ``p`` sends to part ``q`` in one synchronous layer (global ids)."""
        return self.parts[p].boundary.get(q, torch.empty(0, dtype=torch.long))

    def boundary_sizes(self) -> Tensor:
        """``P x P`` matrix of boundary-set sizes: sender row, receiver column."""
        m = torch.zeros(self.num_parts, self.num_parts, dtype=torch.long)
        for p, part in enumerate(self.parts):
            for q, rows in part.boundary.items():
                m[p, q] = rows.numel()
        return m


def _check_assignment(assignment: Tensor, num_nodes: int, num_parts: int) -> Tensor:
    assignment = torch.as_tensor(assignment)
    if assignment.dim() != 1 or assignment.numel() != num_nodes:
        raise ValueError(
            f"assignment must have one entry per node ({num_nodes}), got shape {tuple(assignment.shape)}"
        )
    if assignment.dtype.is_floating_point or assignment.dtype == torch.bool:
        raise ValueError(f"assignment must hold integer part ids, got dtype {assignment.dtype}")
    assignment = assignment.long()
    if num_nodes and (assignment.min() < 0 or assignment.max() >= num_parts):
        bad = assignment[(assignment < 0) | (assignment >= num_parts)][0].item()
        raise ValueError(f"assignment holds part id {bad}; allowed part ids are 0..{num_parts - 1}")
    return assignment


#: Up to this many parts, grouping scans the data once per part (no sort); beyond it, one stable sort.
_SCAN_PARTS = 16


def _group(values: Tensor, num_parts: int) -> list[Tensor]:
    """For each part ``p``, the (ascending) positions ``i`` with ``values[i] == p``."""
    if num_parts <= _SCAN_PARTS:
        return [(values == p).nonzero().flatten() for p in range(num_parts)]
    order = torch.argsort(values, stable=True)
    return list(torch.split(order, torch.bincount(values, minlength=num_parts).tolist()))


def _halo_ring1(cut_src: Tensor, cut_part: Tensor, num_nodes: int, num_parts: int) -> list[Tensor]:
    """For each part, the distinct sources of cut edges into it, ascending (its 1-hop halo)."""
    if num_parts <= _SCAN_PARTS:
        out = []
        mark = torch.zeros(num_nodes, dtype=torch.bool)
        for p in range(num_parts):
            mark[cut_src[cut_part == p]] = True
            out.append(mark.nonzero().flatten())
            mark[out[-1]] = False
        return out
    key = torch.unique(cut_part * num_nodes + cut_src)  # sorted by (part, node)
    return list(torch.split(key % num_nodes, torch.bincount(key // num_nodes, minlength=num_parts).tolist()))


def build_plan(
    edge_index: Tensor,
    num_nodes: int,
    assignment: Tensor,
    num_parts: int,
    *,
    hops: int = 1,
    method: str = "custom",
    csr: CSR | None = None,
) -> PartitionPlan:
    """Derive owned sets, halo rings, local edges and boundary sets from a node assignment."""
    assignment = _check_assignment(assignment, num_nodes, num_parts)
    src, dst = edge_index[0], edge_index[1]
    pdst = assignment[dst]
    # Every cut edge u->v puts u in part(v)'s ring 1; what q sends to p is p's ring 1 owned by q.
    cut = assignment[src] != pdst
    cut_src, cut_part = src[cut], pdst[cut]

    owned_all = _group(assignment, num_parts)
    edges_by_part = _group(pdst, num_parts)
    ring1_all = _halo_ring1(cut_src, cut_part, num_nodes, num_parts)

    if hops > 1 and csr is None:
        csr = to_csr(edge_index, num_nodes)

    table = torch.full((num_nodes,), -1, dtype=torch.long)
    parts = []
    sends: list[dict[int, Tensor]] = [{} for _ in range(num_parts)]
    for p in range(num_parts):
        owned = owned_all[p]
        rings = [ring1_all[p]]
        if hops > 1:
            seen_rings = k_hop_rings(csr, owned, hops)
            rings = [torch.sort(r).values for r in seen_rings]
        l2g = torch.cat([owned, *rings]) if rings else owned
        table[l2g] = torch.arange(l2g.numel())
        eids = edges_by_part[p]
        local_ei = torch.stack([table[src[eids]], table[dst[eids]]])
        table[l2g] = -1
        # p's ring-1 nodes owned by q are what q sends to p (ascending global ids).
        nodes = ring1_all[p]
        from_part = assignment[nodes]
        for q in torch.bincount(from_part, minlength=num_parts).nonzero().flatten().tolist():
            sends[q][p] = nodes[from_part == q]
        parts.append(PartPlan(part=p, owned=owned, halo_rings=rings, local_edge_index=local_ei,
                              local_edge_ids=eids))
    for part, boundary in zip(parts, sends, strict=True):
        part.boundary = dict(sorted(boundary.items()))
    return PartitionPlan(
        method=method, num_parts=num_parts, num_nodes=num_nodes, num_edges=edge_index.size(1), hops=hops,
        assignment=assignment, parts=parts,
    )
