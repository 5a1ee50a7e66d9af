"""Node-wise neighbour sampling (GraphSAGE, Hamilton et al. 2017) and a PyG-style ``NeighborLoader``.

Hop ``h`` samples, for every node first reached at hop ``h-1`` (the seeds at hop 1), ``fanouts[h-1]`` of its
in-neighbours: uniformly *without* replacement (``min(deg, fanout)`` distinct neighbours) or *with* replacement
(exactly ``fanout`` draws when ``deg > 0``); ``-1`` takes the whole neighbourhood. A mean aggregator over the
sample is an unbiased estimate of the mean over all neighbours, either way (each neighbour is drawn with
probability ``fanout / deg`` per slot). The cost: an ``L``-layer batch of ``B`` seeds touches up to
``B * prod(fanouts)`` nodes instead of the full ``L``-hop neighbourhood ("neighbourhood explosion").

Vectorised: without replacement, nodes with ``deg <= fanout`` keep every slot and the others draw a uniform
``fanout``-subset by Floyd's algorithm, run as ``fanout`` vectorised steps over all of them at once (cost
``O(n * fanout^2)``, independent of the degree, so hubs cost no more than anyone else; a random-key segment
top-k would sort every slot of every hub); with replacement the slot is ``indptr[v] + floor(U * deg(v))``.
The output follows PyG's ``NeighborLoader``: a
subgraph ``Data`` whose first ``batch_size`` nodes are the seeds, nodes and edges in hop order, ``n_id``/
``e_id`` the global ids and ``num_sampled_nodes``/``num_sampled_edges`` per hop (see :func:`to_blocks`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab.graph import CSR, to_csr
from dgnn_lab.sampling.blocks import (
    SeedBatches,
    check_fanouts,
    check_options,
    check_positive_int,
    resolve_input_nodes,
    slice_data,
)

LOADER_OPTIONS = ("num_neighbors", "batch_size", "input_nodes", "shuffle", "replace", "seed", "drop_last",
                  "num_workers")

#: the empty value of the samplers' scratch arrays (a node not seen in this hop)
UNSET = torch.iinfo(torch.long).max


def add_new_nodes(src: Tensor, assoc: Tensor, first: Tensor, cur: int) -> Tensor:
    """The nodes of ``src`` not yet numbered (``assoc < 0``), deduplicated in order of first appearance (as
    PyG) without sorting; numbers them ``cur, cur + 1, ...`` in ``assoc`` and returns them. ``first`` is a
    scratch array of ``UNSET`` (left as it was found)."""
    cand = src[assoc[src] < 0]
    order = torch.arange(cand.numel())
    first.scatter_reduce_(0, cand, order, reduce="amin")
    new = cand[first[cand] == order]
    first[cand] = UNSET
    assoc[new] = torch.arange(cur, cur + new.numel())
    return new

__all__ = ["NeighborLoader", "NeighborSample", "NeighborSampler", "ReferenceNeighborSampler",
           "reference_sample_neighbors", "sample_one_hop"]


@dataclass
class NeighborSample:
    """One sampled computation graph; ``edge_index`` local (row: src, col: dst), ``slots`` CSR positions."""

    n_id: Tensor
    edge_index: Tensor
    slots: Tensor
    num_sampled_nodes: list[int]
    num_sampled_edges: list[int]

    @property
    def batch_size(self) -> int:
        return self.num_sampled_nodes[0]


def sample_one_hop(csr: CSR, nodes: Tensor, fanout: int, replace: bool,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Sample in-neighbours of ``nodes``: returns ``(slots, pos)``, CSR positions and the index into ``nodes``.

    ``csr.indices[slots]`` are the neighbours, ``csr.edge_ids[slots]`` the edges; ``pos`` is non-decreasing
    (edges grouped by destination, in the order of ``nodes``).
    """
    start = csr.indptr[nodes]
    deg = csr.indptr[nodes + 1] - start
    n = nodes.numel()
    if replace and fanout != -1:
        counts = torch.where(deg > 0, fanout, 0)
        pos = torch.repeat_interleave(torch.arange(n), counts)
        d = deg[pos]
        pick = (torch.rand(pos.numel(), generator=generator, dtype=torch.float64) * d).long()
        return start[pos] + torch.minimum(pick, d - 1), pos
    counts = deg if fanout == -1 else deg.clamp(max=fanout)
    pos = torch.repeat_interleave(torch.arange(n), counts)
    base = torch.cumsum(counts, 0) - counts                 # where each node's samples start in the output
    offset = torch.arange(pos.numel()) - base[pos]          # 0..counts-1 within each node
    heavy = (deg > counts).nonzero().view(-1)               # nodes that keep a strict subset
    if heavy.numel() == 0:
        return start[pos] + offset, pos
    # Floyd's algorithm, one step for all heavy nodes at once: after step i, S[:, :i+1] is a uniform random
    # (i+1)-subset of {0..deg-k+i}; step i draws t in [0, J] (J = deg-k+i) and takes J instead if t is taken.
    d = deg[heavy]
    chosen = torch.empty(heavy.numel(), fanout, dtype=torch.long)
    for i in range(fanout):
        top = d - fanout + i
        t = (torch.rand(heavy.numel(), generator=generator, dtype=torch.float64) * (top + 1)).long()
        t = torch.minimum(t, top)
        taken = (chosen[:, :i] == t.unsqueeze(1)).any(1)
        chosen[:, i] = torch.where(taken, top, t)
    offset[(base[heavy].unsqueeze(1) + torch.arange(fanout)).view(-1)] = chosen.view(-1)
    return start[pos] + offset, pos


class NeighborSampler:
    """Multi-hop node-wise sampling over a fixed graph; :meth:`sample` maps seeds to a :class:`NeighborSample`.

    Holds the CSR, a reusable global-to-local id map and a scratch array (both reset after every batch, so a
    batch costs ``O(sampled)``, not ``O(num_nodes)``); not thread-safe: give each thread its own sampler.
    """

    def __init__(self, data_or_csr: Data | CSR, num_neighbors: Sequence[int], *, replace: bool = False,
                 seed: int | None = 0):
        self.num_neighbors = check_fanouts("num_neighbors", num_neighbors)
        self.csr = data_or_csr if isinstance(data_or_csr, CSR) else to_csr(data_or_csr.edge_index,
                                                                           int(data_or_csr.num_nodes))
        self.replace = bool(replace)
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))
        self._assoc = torch.full((self.csr.num_nodes,), -1, dtype=torch.long)
        self._first = torch.full((self.csr.num_nodes,), UNSET, dtype=torch.long)

    def sample(self, seeds: Tensor) -> NeighborSample:
        """Sample the ``L``-hop computation graph of distinct ``seeds`` (global ids); seeds come first in
        ``n_id``, then each hop's new nodes in order of first appearance."""
        seeds = torch.as_tensor(seeds).long().view(-1)
        n = seeds.numel()
        if n and (int(seeds.min()) < 0 or int(seeds.max()) >= self.csr.num_nodes):
            bad = int(seeds.min()) if int(seeds.min()) < 0 else int(seeds.max())
            raise ValueError(f"seeds contain node id {bad}, outside [0, {self.csr.num_nodes - 1}]")
        assoc, first = self._assoc, self._first
        assoc[seeds] = torch.arange(n)
        if not bool((assoc[seeds] == torch.arange(n)).all()):    # a repeated seed was overwritten
            assoc[seeds] = -1
            raise ValueError("seeds must be distinct node ids")
        n_ids, rows, cols, slots = [seeds], [], [], []
        num_nodes, num_edges = [n], []
        frontier, lo, cur = seeds, 0, n
        try:
            for fanout in self.num_neighbors:
                s, pos = sample_one_hop(self.csr, frontier, fanout, self.replace, self.generator)
                src = self.csr.indices[s]
                new = add_new_nodes(src, assoc, first, cur)
                rows.append(assoc[src])
                cols.append(pos + lo)
                slots.append(s)
                n_ids.append(new)
                num_nodes.append(new.numel())
                num_edges.append(s.numel())
                lo, cur, frontier = cur, cur + new.numel(), new
            n_id = torch.cat(n_ids)
        finally:
            for t in n_ids:
                assoc[t] = -1
        edge_index = torch.stack([torch.cat(rows), torch.cat(cols)])
        return NeighborSample(n_id, edge_index, torch.cat(slots), num_nodes, num_edges)


class ReferenceNeighborSampler:
    """The same algorithm as a straightforward per-node Python loop (``random.sample``/``random.choices``).

    A reference for tests and the benchmark's baseline: the CSR is converted to Python lists once, then every
    node of every hop is handled by its own loop iteration. Draws differ from :class:`NeighborSampler`'s; the
    structure (hop order, fanout rules, id conventions) does not.
    """

    def __init__(self, csr: CSR, num_neighbors: Sequence[int], *, replace: bool = False, seed: int = 0):
        self.num_neighbors = check_fanouts("num_neighbors", num_neighbors)
        self.indptr, self.indices = csr.indptr.tolist(), csr.indices.tolist()
        self.replace = bool(replace)
        self.rng = random.Random(seed)

    def sample(self, seeds: Sequence[int]) -> NeighborSample:
        rng, indptr, indices = self.rng, self.indptr, self.indices
        n_id = [int(s) for s in seeds]
        local = {v: i for i, v in enumerate(n_id)}
        rows, cols, slots, num_nodes, num_edges = [], [], [], [len(n_id)], []
        frontier = list(range(len(n_id)))
        for fanout in self.num_neighbors:
            new_frontier, e = [], 0
            for dst_local in frontier:
                v = n_id[dst_local]
                lo, hi = indptr[v], indptr[v + 1]
                deg = hi - lo
                if deg == 0:
                    continue
                if fanout == -1:
                    chosen = range(lo, hi)
                elif self.replace:
                    chosen = [lo + rng.randrange(deg) for _ in range(fanout)]
                else:
                    chosen = sorted(rng.sample(range(lo, hi), min(deg, fanout)))
                for s in chosen:
                    u = indices[s]
                    if u not in local:
                        local[u] = len(n_id)
                        n_id.append(u)
                        new_frontier.append(local[u])
                    rows.append(local[u])
                    cols.append(dst_local)
                    slots.append(s)
                    e += 1
            num_nodes.append(len(new_frontier))
            num_edges.append(e)
            frontier = new_frontier
        return NeighborSample(torch.tensor(n_id, dtype=torch.long),
                              torch.tensor([rows, cols], dtype=torch.long).view(2, -1),
                              torch.tensor(slots, dtype=torch.long), num_nodes, num_edges)


def reference_sample_neighbors(csr: CSR, seeds: Sequence[int], num_neighbors: Sequence[int], *,
                               replace: bool = False, seed: int = 0) -> NeighborSample:
    """One batch from :class:`ReferenceNeighborSampler` (the per-node Python loop)."""
    return ReferenceNeighborSampler(csr, num_neighbors, replace=replace, seed=seed).sample(seeds)


class NeighborLoader:
    """Mini-batches of seeds with their sampled ``L``-hop computation graphs, like PyG's ``NeighborLoader``.

    >>> loader = NeighborLoader(data, num_neighbors=[10, 5], batch_size=512, input_nodes=data.train_mask,
    ...                         shuffle=True, seed=0)
    >>> for batch in loader:
    ...     out = model(batch.x, batch.edge_index)[:batch.batch_size]     # or model(batch.x, to_blocks(batch))
    ...     loss = F.cross_entropy(out, batch.y[:batch.batch_size])

    Each batch is a ``Data`` with node attributes indexed by ``n_id`` (seeds first), ``edge_index`` in local
    ids, ``e_id``, ``input_id`` (positions in ``input_nodes``), ``batch_size``, ``num_sampled_nodes`` and
    ``num_sampled_edges`` (per hop). ``num_neighbors``: one fanout per layer, ``-1`` = all neighbours.
    ``replace``: sample with replacement. Deterministic for a ``seed``: the same loader settings give the same
    batches, epoch after epoch in the same sequence. ``drop_last`` and ``num_workers=0`` as in PyTorch's
    ``DataLoader``; other options are rejected by name.
    """

    def __init__(self, data: Data, num_neighbors: Sequence[int], batch_size: int = 1, input_nodes=None,
                 shuffle: bool = False, replace: bool = False, seed: int | None = 0, drop_last: bool = False,
                 **options):
        num_workers = options.pop("num_workers", 0)
        if num_workers != 0:
            raise ValueError(f"num_workers must be 0 (batches are sampled in the calling process), got {num_workers!r}")
        check_options("NeighborLoader", options, LOADER_OPTIONS)
        check_positive_int("batch_size", batch_size)
        self.data = data
        self.sampler = NeighborSampler(data, num_neighbors, replace=replace, seed=seed)
        self.input_nodes = resolve_input_nodes(input_nodes, int(data.num_nodes))
        if torch.unique(self.input_nodes).numel() != self.input_nodes.numel():
            raise ValueError("input_nodes contains duplicate node ids; pass each seed node once")
        self.batch_size = batch_size
        self.seeds = SeedBatches(self.input_nodes, batch_size, shuffle, self.sampler.generator, drop_last)

    @property
    def num_neighbors(self) -> list[int]:
        return self.sampler.num_neighbors

    def __len__(self) -> int:
        return len(self.seeds)

    def __iter__(self) -> Iterator[Data]:
        for input_id, seeds in self.seeds:
            yield self.collate(self.sampler.sample(seeds), input_id)

    def collate(self, s: NeighborSample, input_id: Tensor | None = None) -> Data:
        """The PyG-style subgraph ``Data`` of one :class:`NeighborSample`."""
        out = slice_data(self.data, s.n_id, s.edge_index, self.sampler.csr.edge_ids[s.slots])
        out.batch_size = s.batch_size
        out.input_id = input_id if input_id is not None else torch.arange(s.batch_size)
        out.num_sampled_nodes = list(s.num_sampled_nodes)
        out.num_sampled_edges = list(s.num_sampled_edges)
        return out
