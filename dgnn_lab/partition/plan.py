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

    @property
    def num_owned(self) -> int:
        return self.owned.numel()

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
    psrc, pdst = assignment[src], assignment[dst]

    # All parts' ring 1 and boundary sets at once: every cut edge u->v puts u in part(v)'s halo.
    cut = psrc != pdst
    key = torch.unique(pdst[cut] * num_nodes + src[cut])  # (receiving part, halo node), sorted
    recv_part, halo_node = key // num_nodes, key % num_nodes
    send_part = assignment[halo_node]

    order = torch.argsort(assignment, stable=True)
    counts = torch.bincount(assignment, minlength=num_parts)
    owned_all = torch.split(order, counts.tolist())

    edge_order = torch.argsort(pdst, stable=True)
    edge_counts = torch.bincount(pdst, minlength=num_parts)
    edges_by_part = torch.split(edge_order, edge_counts.tolist())

    ring1_counts = torch.bincount(recv_part, minlength=num_parts)
    ring1_all = torch.split(halo_node, ring1_counts.tolist())

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
        # p's ring-1 nodes owned by q are what q sends to p.
        sel = recv_part == p
        from_part, nodes = send_part[sel], halo_node[sel]
        for q in torch.unique(from_part).tolist():
            sends[q][p] = nodes[from_part == q]
        parts.append(PartPlan(part=p, owned=owned, halo_rings=rings, local_edge_index=local_ei,
                              local_edge_ids=eids))
    for part, boundary in zip(parts, sends, strict=True):
        part.boundary = dict(sorted(boundary.items()))
    return PartitionPlan(
        method=method, num_parts=num_parts, num_nodes=num_nodes, num_edges=edge_index.size(1), hops=hops,
        assignment=assignment, parts=parts,
    )
