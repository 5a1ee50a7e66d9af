"""Vertex-cut partitioning: every edge belongs to one part; a node lives on every part that holds one of its edges.

Power-law graphs have hubs whose edges no edge-cut can keep together; cutting the hub instead (PowerGraph,
OSDI 2012) spreads its edges over parts and pays with *replicas*: per layer, each mirror sends its partial
aggregate to the master and receives the result back. The cost measure is the replication factor
(replicas per node).

* ``edge-random``: each undirected edge to a seeded random part (balanced edges, many replicas).
* ``dbh`` (degree-based hashing, Xie et al., NeurIPS 2014): an edge goes where its *lower-degree* endpoint
  hashes to, so low-degree nodes keep all their edges together and only hubs are cut.
* ``hdrf`` (High-Degree Replicated First, Petroni et al., CIKM 2015): a one-pass greedy stream over edges that
  prefers parts already holding a replica of an endpoint (weighted towards the lower-degree endpoint, using
  partial degrees seen so far) plus a balance term ``lam * (max - size_p) / (eps + max - min)``.

Edges are partitioned as undirected pairs (both directions of a link share a part, since messages flow both
ways); self-loops go where their node hashes to. The master of a node is the replica holding most of its
edges (ties: lowest part); an isolated node gets a seeded random part.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from dgnn_lab.partition.plan import PartitionPlan, PartPlan, _group

VERTEX_CUT_METHODS = ("edge-random", "dbh", "hdrf")


def _pairs(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """Unique undirected pairs ``(lo, hi)`` without self-loops, and each directed edge's pair index (-1: loop)."""
    src, dst = edge_index
    lo, hi = torch.minimum(src, dst), torch.maximum(src, dst)
    key = lo * num_nodes + hi
    ukey, inverse = torch.unique(key, return_inverse=True)
    loop = lo == hi
    # self-loops sort among the pairs; drop them and renumber the rest
    ulo, uhi = ukey // num_nodes, ukey % num_nodes
    keep = ulo != uhi
    new_id = torch.cumsum(keep.long(), 0) - 1
    pair_of_edge = torch.where(loop, torch.full_like(inverse, -1), new_id[inverse])
    return ulo[keep], uhi[keep], pair_of_edge


def _node_hash(num_nodes: int, num_parts: int, seed: int) -> Tensor:
    gen = torch.Generator().manual_seed(seed + 7919)  # independent of the stream/shuffle streams
    return torch.randint(0, num_parts, (num_nodes,), generator=gen)


def _degrees(lo: Tensor, hi: Tensor, num_nodes: int) -> Tensor:
    return torch.bincount(torch.cat([lo, hi]), minlength=num_nodes)


@numba.njit(cache=True)
def _hdrf_kernel(lo, hi, order, num_nodes, num_parts, lam, eps):  # pragma: no cover - compiled
    part = np.empty(lo.size, dtype=np.int64)
    replica = np.zeros((num_nodes, num_parts), dtype=np.bool_)
    pdeg = np.zeros(num_nodes, dtype=np.float64)
    size = np.zeros(num_parts, dtype=np.float64)
    for e in order:
        u = lo[e]
        v = hi[e]
        pdeg[u] += 1.0
        pdeg[v] += 1.0
        tu = pdeg[u] / (pdeg[u] + pdeg[v])
        tv = 1.0 - tu
        maxs = size.max()
        mins = size.min()
        best = -1
        best_score = -np.inf
        for p in range(num_parts):
            g = 0.0
            if replica[u, p]:
                g += 1.0 + (1.0 - tu)
            if replica[v, p]:
                g += 1.0 + (1.0 - tv)
            score = g + lam * (maxs - size[p]) / (eps + maxs - mins)
            if best < 0 or score > best_score or (score == best_score and size[p] < size[best]):
                best = p
                best_score = score
        part[e] = best
        replica[u, best] = True
        replica[v, best] = True
        size[best] += 1.0
    return part


def reference_hdrf(lo: list[int], hi: list[int], order: list[int], num_nodes: int, num_parts: int,
                   lam: float = 1.0, eps: float = 1.0) -> list[int]:
    """HDRF in plain Python (the numba kernel must agree with it exactly)."""
    part = [-1] * len(lo)
    replica = [set() for _ in range(num_nodes)]
    pdeg = [0.0] * num_nodes
    size = [0.0] * num_parts
    for e in order:
        u, v = lo[e], hi[e]
        pdeg[u] += 1.0
        pdeg[v] += 1.0
        tu = pdeg[u] / (pdeg[u] + pdeg[v])
        tv = 1.0 - tu
        maxs, mins = max(size), min(size)
        best, best_score = -1, -np.inf
        for p in range(num_parts):
            g = 0.0
            if p in replica[u]:
                g += 1.0 + (1.0 - tu)
            if p in replica[v]:
                g += 1.0 + (1.0 - tv)
            score = g + lam * (maxs - size[p]) / (eps + maxs - mins)
            if best < 0 or score > best_score or (score == best_score and size[p] < size[best]):
                best, best_score = p, score
        part[e] = best
        replica[u].add(best)
        replica[v].add(best)
        size[best] += 1.0
    return part


def pair_assignment(method: str, lo: Tensor, hi: Tensor, num_nodes: int, num_parts: int, seed: int,
                    lam: float = 1.0, eps: float = 1.0) -> Tensor:
    """A part for every undirected pair ``(lo[i], hi[i])``."""
    if method == "edge-random":
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, num_parts, (lo.numel(),), generator=gen)
    if method == "dbh":
        deg = _degrees(lo, hi, num_nodes)
        # lower-degree endpoint; ties go to the lower id (lo), so the choice is symmetric and deterministic
        pick = torch.where(deg[hi] < deg[lo], hi, lo)
        return _node_hash(num_nodes, num_parts, seed)[pick]
    if method == "hdrf":
        if not lam >= 0 or not eps > 0:
            raise ValueError(f"hdrf needs lam >= 0 and eps > 0, got lam={lam}, eps={eps}")
        order = np.random.default_rng(seed).permutation(lo.numel()).astype(np.int64)
        out = _hdrf_kernel(lo.numpy(), hi.numpy(), order, num_nodes, num_parts, float(lam), float(eps))
        return torch.from_numpy(out)
    raise ValueError(f"unknown vertex-cut method {method!r}; valid: {', '.join(VERTEX_CUT_METHODS)}")


def vertex_cut_assignment(edge_index: Tensor, num_nodes: int, num_parts: int, method: str, *, seed: int = 0,
                          lam: float = 1.0, eps: float = 1.0) -> Tensor:
    """A part for every directed edge (column of ``edge_index``); both directions of a link agree."""
    lo, hi, pair_of_edge = _pairs(edge_index, num_nodes)
    pair_part = pair_assignment(method, lo, hi, num_nodes, num_parts, seed, lam, eps)
    out = _node_hash(num_nodes, num_parts, seed)[edge_index[0]]  # self-loops: where their node hashes
    linked = pair_of_edge >= 0
    out[linked] = pair_part[pair_of_edge[linked]]
    return out


def _replicas(edge_index: Tensor, num_nodes: int, edge_assignment: Tensor,
              num_parts: int) -> tuple[Tensor, Tensor, Tensor]:
    """Distinct (node, part) pairs with an edge of the node on the part, sorted by node then part, with counts."""
    node = torch.cat([edge_index[0], edge_index[1]])
    part = torch.cat([edge_assignment, edge_assignment])
    key, count = torch.unique(node * num_parts + part, return_counts=True)
    return key // num_parts, key % num_parts, count


def masters_from_edges(edge_index: Tensor, num_nodes: int, edge_assignment: Tensor, num_parts: int,
                       seed: int = 0, replicas: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """Each node's master: the part holding most of its edge endpoints (ties: lowest part); isolated: random."""
    knode, kpart, count = replicas or _replicas(edge_index, num_nodes, edge_assignment, num_parts)
    score = count * num_parts + (num_parts - 1 - kpart)  # most edges first, then the lowest part id
    best = torch.full((num_nodes,), -1, dtype=torch.long)
    best.scatter_reduce_(0, knode, score, reduce="amax")
    master = num_parts - 1 - best % num_parts
    isolated = best < 0
    master[isolated] = _node_hash(num_nodes, num_parts, seed)[isolated]
    return master


def build_vertex_cut_plan(
    edge_index: Tensor,
    num_nodes: int,
    edge_assignment: Tensor,
    num_parts: int,
    *,
    method: str = "custom-vertex-cut",
    seed: int = 0,
) -> PartitionPlan:
    """Masters, mirrors, local edges and master->mirror boundary sets from an edge assignment."""
    edge_assignment = torch.as_tensor(edge_assignment).long()
    if edge_assignment.shape != (edge_index.size(1),):
        raise ValueError(f"edge_assignment must have one entry per edge ({edge_index.size(1)}), "
                         f"got shape {tuple(edge_assignment.shape)}")
    if edge_assignment.numel() and (edge_assignment.min() < 0 or edge_assignment.max() >= num_parts):
        raise ValueError(f"edge_assignment holds part ids outside 0..{num_parts - 1}")
    src, dst = edge_index
    replicas = _replicas(edge_index, num_nodes, edge_assignment, num_parts)
    master = masters_from_edges(edge_index, num_nodes, edge_assignment, num_parts, seed, replicas)

    # mirrors: replicas (from edges; a master is always one) on a part other than the master's
    rnode, rpart, _ = replicas
    is_mirror = master[rnode] != rpart
    mpart, mnode = rpart[is_mirror], rnode[is_mirror]  # sorted by node, so each part's list is ascending
    mirrors_all = [mnode[i] for i in _group(mpart, num_parts)]

    owned_all = _group(master, num_parts)
    edges_all = _group(edge_assignment, num_parts)

    # master part -> mirror part: the master's rows broadcast to each mirror (sorted by global id)
    send_part = master[mnode]
    sends: list[dict[int, Tensor]] = [{} for _ in range(num_parts)]
    bkey = torch.unique((send_part * num_parts + mpart) * num_nodes + mnode)
    bsend, brecv, bnode = bkey // (num_parts * num_nodes), (bkey // num_nodes) % num_parts, bkey % num_nodes
    pair = bsend * num_parts + brecv
    upair, counts = torch.unique_consecutive(pair, return_counts=True)
    for pq, nodes in zip(upair.tolist(), torch.split(bnode, counts.tolist()), strict=True):
        sends[pq // num_parts][pq % num_parts] = nodes

    table = torch.full((num_nodes,), -1, dtype=torch.long)
    parts = []
    for p in range(num_parts):
        l2g = torch.cat([owned_all[p], mirrors_all[p]])
        table[l2g] = torch.arange(l2g.numel())
        eids = edges_all[p]
        local_ei = torch.stack([table[src[eids]], table[dst[eids]]])
        table[l2g] = -1
        parts.append(PartPlan(part=p, owned=owned_all[p], halo_rings=[mirrors_all[p]],
                              local_edge_index=local_ei, local_edge_ids=eids, boundary=dict(sorted(sends[p].items()))))
    return PartitionPlan(method=method, num_parts=num_parts, num_nodes=num_nodes, num_edges=edge_index.size(1),
                         hops=1, assignment=master, parts=parts, kind="vertex-cut",
                         edge_assignment=edge_assignment, seed=seed)
