"""What one worker holds for full-graph training: owned rows, the 1-hop halo, and its normalised adjacency.

Local ids (this module's layout, chosen so a halo exchange is a single ``torch.cat``):

* ``0 .. n_owned-1``: the owned nodes, in the plan's order (ascending global id);
* then the 1-hop halo **in arrival order**: the rows from peer 0 (in the order peer 0's
  ``boundary[0][p]`` lists them), then those from peer 1, and so on. Every halo node has exactly one owner,
  so these blocks are disjoint and together they are the plan's ring 1. ``recv_slots[q]`` is the range of
  local ids peer ``q``'s rows land in.

``send_index[q]`` holds the *owned* local ids of ``boundary[p][q]``, in the plan's order, so the rows that
leave ``p`` for ``q`` are ``h[send_index[q]]`` and arrive at ``q`` exactly in ``q``'s ``recv_slots[p]``.

The aggregation matrix ``A`` (``n_owned x n_local``) holds every edge whose destination is owned: all a
layer needs to compute the owned outputs once the halo has arrived. Its weights depend on the model:

* GCN (Kipf & Welling): ``A[v, u] = 1 / sqrt(d_u d_v)`` with ``d`` the **global** in-degree counting one
  self-loop per node, exactly PyG's ``gcn_norm`` (``add_remaining_self_loops``). A halo node's degree cannot
  be counted from local edges (most of its edges live on other workers), so it comes from the whole graph.
* SAGE (mean): ``A[v, u] = 1 / deg_in(v)``; all in-edges of an owned node are local, so this is exact too.

``A`` and ``A^T`` are built once as ``torch.sparse_csr`` tensors: the forward is ``A @ H`` and the backward
``A^T @ G``, both row-parallel CSR kernels (no atomics, no per-call transposition).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from dgnn_lab.partition.plan import PartitionPlan, PartPlan


def global_in_degree(edge_index: Tensor, num_nodes: int, *, self_loops: bool) -> Tensor:
    """In-degree of every node (float32). With ``self_loops``: existing self-loops are dropped and one is
    counted per node, PyG's ``add_remaining_self_loops`` for unit weights."""
    dst = edge_index[1]
    if self_loops:
        dst = dst[edge_index[0] != edge_index[1]]
    deg = torch.bincount(dst, minlength=num_nodes).to(torch.float32)
    return deg + 1.0 if self_loops else deg


def csr_pair(row: Tensor, col: Tensor, val: Tensor, shape: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``(A, A^T)`` as ``torch.sparse_csr`` tensors from COO triplets (duplicates kept, as PyG sums them)."""
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), val, shape, check_invariants=False).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": true, and nothing a user can act on
        warnings.simplefilter("ignore", UserWarning)
        a = coo.to_sparse_csr()
        at = coo.t().coalesce().to_sparse_csr()
    return a, at


class CSRMatmul(torch.autograd.Function):
    """``A @ X`` with a pre-built ``A^T`` for the backward (``dX = A^T dY``); ``A`` is a constant."""

    @staticmethod
    def forward(ctx, a: Tensor, at: Tensor, x: Tensor) -> Tensor:  # noqa: D102
        ctx.at = at
        return torch.sparse.mm(a, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        return None, None, torch.sparse.mm(ctx.at, grad.contiguous())


def spmm(a: Tensor, at: Tensor, x: Tensor) -> Tensor:
    """``A @ X``, differentiable in ``X`` only."""
    if not x.requires_grad:
        return torch.sparse.mm(a, x)
    return CSRMatmul.apply(a, at, x)


@dataclass
class LocalGraph:
    """Worker ``part``'s share of the graph (see the module docstring for the id layout)."""

    part: int
    num_parts: int
    owned: Tensor  # global ids of owned nodes (local ids 0..n_owned-1)
    halo: Tensor  # global ids of halo nodes, arrival order (local ids n_owned..)
    edge_index: Tensor  # local (src, dst), dst < n_owned; self-loops as in the input graph
    send_index: list[Tensor]  # send_index[q]: owned local ids sent to q (empty for q == part)
    recv_counts: list[int]  # rows received from each peer (0 for q == part)
    adj: Tensor | None = None  # A, n_owned x n_local, sparse CSR (built by :meth:`build_adjacency`)
    adj_t: Tensor | None = None  # A^T

    @property
    def num_owned(self) -> int:
        return self.owned.numel()

    @property
    def num_halo(self) -> int:
        return self.halo.numel()

    @property
    def num_local(self) -> int:
        return self.num_owned + self.num_halo

    @property
    def local_to_global(self) -> Tensor:
        return torch.cat([self.owned, self.halo])

    @property
    def send_counts(self) -> list[int]:
        return [int(i.numel()) for i in self.send_index]

    @property
    def recv_slots(self) -> list[range]:
        """Local ids where each peer's rows land: consecutive ranges after the owned block."""
        out, start = [], self.num_owned
        for n in self.recv_counts:
            out.append(range(start, start + n))
            start += n
        return out

    @classmethod
    def from_plan(cls, plan: PartitionPlan, part: int, edge_index: Tensor) -> LocalGraph:
        """Derive the local layout from ``plan`` (the global ``edge_index`` gives the plan's local edges
        their global ids, which are then renumbered into this layout)."""
        if plan.kind != "edge-cut":
            raise ValueError(f"full-graph training needs an edge-cut plan, got kind {plan.kind!r}")
        pp = plan.parts[part]
        recv = {q: pp.recv_from(q, plan) for q in range(plan.num_parts) if q != part}
        return cls.from_part(pp, recv, plan.num_parts, plan.num_nodes, edge_index)

    @classmethod
    def from_part(cls, pp: PartPlan, recv: dict[int, Tensor], num_parts: int, num_nodes: int,
                  edge_index: Tensor) -> LocalGraph:
        """The same from one part alone (what :func:`~dgnn_lab.partition.load_part` gives a worker): ``recv``
        maps each peer to the global ids of the rows it sends here, in arrival order."""
        part, owned = pp.part, pp.owned
        blocks = [recv.get(q, owned[:0]) if q != part else owned[:0] for q in range(num_parts)]
        halo = torch.cat(blocks) if blocks else owned[:0]
        table = torch.full((num_nodes,), -1, dtype=torch.long)
        l2g = torch.cat([owned, halo])
        table[l2g] = torch.arange(l2g.numel())
        eids = pp.local_edge_ids
        local_ei = torch.stack([table[edge_index[0, eids]], table[edge_index[1, eids]]])
        if local_ei.numel() and bool((local_ei < 0).any()):
            raise ValueError("plan and edge_index disagree: an edge of an owned node has a source that is "
                             "neither owned nor in the 1-hop halo (was the plan built from this graph?)")
        empty = owned[:0]
        send_index = [table[pp.boundary.get(q, empty)] if q != part else empty for q in range(num_parts)]
        recv_counts = [int(b.numel()) for b in blocks]
        return cls(part=part, num_parts=num_parts, owned=owned, halo=halo, edge_index=local_ei,
                   send_index=send_index, recv_counts=recv_counts)

    def build_adjacency(self, model: str, global_degree: Tensor | None = None) -> LocalGraph:
        """Build ``A`` and ``A^T`` for ``model`` (``"gcn"`` needs ``global_degree`` from
        :func:`global_in_degree` with ``self_loops=True``, indexed by global id)."""
        src, dst = self.edge_index
        n_owned, n_local = self.num_owned, self.num_local
        if model == "gcn":
            if global_degree is None:
                raise ValueError("GCN normalisation needs the global degrees (global_in_degree(..., self_loops=True))")
            keep = src != dst
            loops = torch.arange(n_owned)
            src = torch.cat([src[keep], loops])
            dst = torch.cat([dst[keep], loops])
            dinv = global_degree[self.local_to_global].pow(-0.5)
            val = dinv[src] * dinv[dst]
        elif model == "sage":
            deg = torch.bincount(dst, minlength=n_owned).to(torch.float32)
            val = (1.0 / deg.clamp_min(1.0))[dst]
        else:
            raise ValueError(f"unknown model {model!r}; allowed: gcn, sage")
        self.adj, self.adj_t = csr_pair(dst, src, val, (n_owned, n_local))
        return self


class VertexCutGraph(LocalGraph):
    """Worker ``part``'s share of a vertex-cut plan (:mod:`dgnn_lab.partition.vertex_cut`) in
    :class:`LocalGraph`'s layout: ``owned`` = the masters here, ``halo`` = the mirrors here in arrival order
    (peer ``q``'s block: ``q``'s masters mirrored here, as ``boundary[q][part]`` lists them), ``send_index[q]``
    = local ids of ``boundary[part][q]`` (the masters here mirrored on ``q``). So
    :class:`~dgnn_lab.protocols.exchange.HaloExchange` broadcasts masters to mirrors and
    :class:`~dgnn_lab.protocols.exchange.HaloReduce` sums mirrors' partial rows into their masters.

    ``edge_index`` holds the edges *assigned* to this part (both ends are replicas here; either may be a
    mirror), and ``A`` is ``n_local x n_local``: one row per replica, its partial aggregate over this part's
    edges, weighted with **global** degrees so the partial sums add up to the full aggregate:

    * GCN: ``A[v, u] = 1 / sqrt(d_u d_v)`` (``d``: global in-degree plus one self-loop); input self-loops are
      dropped and each node's one self-loop ``1 / d_v`` is added at its master only (on no mirror).
    * SAGE (mean): ``A[v, u] = 1 / deg_in(v)`` with the global in-degree (input self-loops kept, as PyG).
    """

    @classmethod
    def from_plan(cls, plan: PartitionPlan, part: int, edge_index: Tensor) -> VertexCutGraph:
        """The local layout of ``plan``'s part ``part`` (a vertex-cut plan)."""
        if plan.kind != "vertex-cut":
            raise ValueError(f"vertex-cut training needs a vertex-cut plan, got kind {plan.kind!r}")
        pp = plan.parts[part]
        recv = {q: pp.recv_from(q, plan) for q in range(plan.num_parts) if q != part}
        return cls.from_part(pp, recv, plan.num_parts, plan.num_nodes, edge_index)

    def build_adjacency(self, model: str, global_degree: Tensor | None = None) -> VertexCutGraph:
        """Build ``A`` and ``A^T`` (``n_local x n_local``) for ``model``; ``global_degree`` indexed by global id:
        :func:`global_in_degree` with ``self_loops=True`` for ``"gcn"``, ``self_loops=False`` for ``"sage"``."""
        if global_degree is None:
            raise ValueError("vertex-cut aggregation needs the global in-degrees (global_in_degree(...))")
        src, dst = self.edge_index
        n_local = self.num_local
        deg = global_degree[self.local_to_global]
        if model == "gcn":
            keep = src != dst
            loops = torch.arange(self.num_owned)  # the self-loop once, at the master
            src = torch.cat([src[keep], loops])
            dst = torch.cat([dst[keep], loops])
            dinv = deg.pow(-0.5)
            val = dinv[src] * dinv[dst]
        elif model == "sage":
            val = (1.0 / deg.clamp_min(1.0))[dst]
        else:
            raise ValueError(f"unknown model {model!r}; allowed: gcn, sage")
        self.adj, self.adj_t = csr_pair(dst, src, val, (n_local, n_local))
        return self
