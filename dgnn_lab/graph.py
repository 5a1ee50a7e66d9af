"""Graph plumbing shared by partitioning and sampling: CSR by destination, symmetrising, k-hop rings.

Conventions follow PyG: ``edge_index[0]`` is the source, ``edge_index[1]`` the destination, and a GNN layer
aggregates at each destination over its in-neighbours. An undirected graph stores both directions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class CSR:
    """In-neighbour lists: the sources of node ``v`` are ``indices[indptr[v]:indptr[v+1]]``.

    ``edge_ids`` maps each CSR slot back to its column in the original ``edge_index``.
    """

    indptr: Tensor
    indices: Tensor
    edge_ids: Tensor

    @property
    def num_nodes(self) -> int:
        return self.indptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.indices.numel()

    def degree(self) -> Tensor:
        """In-degree of every node."""
        return self.indptr[1:] - self.indptr[:-1]

    def neighbours(self, nodes: Tensor) -> tuple[Tensor, Tensor]:
        """All in-neighbours of ``nodes``, vectorised.

        Returns ``(src, pos)``: ``src[i]`` is a neighbour of ``nodes[pos[i]]``.
        """
        nodes = nodes.long()
        start = self.indptr[nodes]
        count = self.indptr[nodes + 1] - start
        pos = torch.repeat_interleave(torch.arange(nodes.numel()), count)
        if pos.numel() == 0:
            return torch.empty(0, dtype=torch.long), pos
        offsets = torch.arange(pos.numel()) - torch.repeat_interleave(torch.cumsum(count, 0) - count, count)
        return self.indices[start[pos] + offsets], pos


def to_csr(edge_index: Tensor, num_nodes: int) -> CSR:
    """CSR over destinations (stable: edges keep their original order within a node)."""
    dst = edge_index[1]
    order = torch.argsort(dst, stable=True)
    counts = torch.bincount(dst, minlength=num_nodes)
    indptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=indptr[1:])
    return CSR(indptr=indptr, indices=edge_index[0, order].contiguous(), edge_ids=order)


def is_undirected(edge_index: Tensor, num_nodes: int) -> bool:
    """True when every edge (u, v) has its reverse (v, u)."""
    src, dst = edge_index
    fwd = torch.unique(src * num_nodes + dst)
    bwd = torch.unique(dst * num_nodes + src)
    return fwd.numel() == bwd.numel() and bool(torch.equal(fwd, bwd))


def to_undirected(edge_index: Tensor, num_nodes: int, *, remove_self_loops: bool = True) -> Tensor:
    """Both directions of every edge, duplicates removed, sorted by (src, dst)."""
    src, dst = edge_index
    both = torch.cat([src * num_nodes + dst, dst * num_nodes + src])
    if remove_self_loops:
        both = both[torch.cat([src != dst, src != dst])]
    key = torch.unique(both)
    return torch.stack([key // num_nodes, key % num_nodes])


def undirected_pairs(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Each undirected edge once, as (min, max) pairs without self-loops: what an 'edge cut' counts."""
    lo = torch.minimum(edge_index[0], edge_index[1])
    hi = torch.maximum(edge_index[0], edge_index[1])
    keep = lo != hi
    key = torch.unique(lo[keep] * num_nodes + hi[keep])
    return torch.stack([key // num_nodes, key % num_nodes])


def k_hop_rings(csr: CSR, seeds: Tensor, hops: int) -> list[Tensor]:
    """Nodes first reached at hop 1, 2, ..., ``hops`` walking in-edges backwards from ``seeds``.

    Ring ``L`` holds the nodes whose shortest path *to* a seed has length exactly ``L``, so the union of
    rings ``1..L`` is everything an ``L``-layer GNN on ``seeds`` reads besides the seeds themselves.
    """
    seen = torch.zeros(csr.num_nodes, dtype=torch.bool)
    seen[seeds] = True
    frontier = seeds
    rings: list[Tensor] = []
    for _ in range(hops):
        src, _ = csr.neighbours(frontier)
        src = torch.unique(src)
        new = src[~seen[src]]
        seen[new] = True
        rings.append(new)
        frontier = new
    return rings
