"""Layer-wise importance sampling: FastGCN (Chen et al. 2018) and LADIES (Zou et al. 2019).

A GCN layer computes ``(A H)_v = sum_u A_vu H_u`` with ``A = D^-1/2 (A + I) D^-1/2``. Instead of sampling
neighbours per node, a layer-wise sampler draws ``s`` nodes for the *whole layer*, i.i.d. with replacement from a
distribution ``q``, and estimates

    (A H)_v  ~  sum_u A_vu * c_u / (s q_u) * H_u          (c_u: how often u was drawn, E[c_u] = s q_u)

which is unbiased for every ``v`` as long as ``q_u > 0`` wherever ``A_vu != 0``. The variance-minimising
``q`` (for bounded ``H``) is proportional to the squared column norms of the rows being estimated:

* **FastGCN**: ``q_u ~ ||A[:, u]||^2`` over the whole graph, the same for every layer and batch: cheap, but
  most draws land outside the batch's neighbourhood and are wasted (sparse, often empty layers).
* **LADIES**: ``q_u ~ ||A[D, u]||^2`` restricted to the rows ``D`` of the layer above (the nodes whose outputs
  are needed): layer-dependent, every draw is a neighbour, and the variance is much lower.

Each layer's block keeps DGL's dst-as-prefix convention: its src nodes are the dst nodes followed by the newly
drawn ones (as in the LADIES code, which appends the output nodes to every layer), and ``edge_weight`` holds
``A_vu c_u / (s q_u)``, so a layer aggregates with ``block_aggregate(block, h)`` (a weighted sum).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab.graph import CSR, to_csr
from dgnn_lab.sampling.blocks import (
    Block,
    SeedBatches,
    check_fanouts,
    check_options,
    check_positive_int,
    resolve_input_nodes,
    slice_data,
)
from dgnn_lab.sampling.neighbor import sample_one_hop

METHODS = ("ladies", "fastgcn")
LOADER_OPTIONS = ("num_samples", "batch_size", "method", "input_nodes", "shuffle", "seed", "drop_last")

__all__ = ["METHODS", "FastGCNLoader", "LADIESLoader", "LayerWiseLoader", "LayerWiseSampler", "gcn_norm_csr"]


def gcn_norm_csr(edge_index: Tensor, num_nodes: int) -> tuple[CSR, Tensor]:
    """CSR (by destination) of ``A + I`` and the per-slot values of ``D^-1/2 (A + I) D^-1/2`` (PyG's
    ``gcn_norm``: existing self-loops replaced by one of weight 1, degrees counted at the destination).
    ``csr.edge_ids`` is the column in ``edge_index``, ``-1`` for the added self-loops."""
    keep = (edge_index[0] != edge_index[1]).nonzero().view(-1)
    loops = torch.arange(num_nodes)
    ei = torch.cat([edge_index[:, keep], torch.stack([loops, loops])], 1)
    ids = torch.cat([keep, torch.full((num_nodes,), -1, dtype=torch.long)])
    deg = torch.bincount(ei[1], minlength=num_nodes).double()
    w = deg[ei[0]].rsqrt() * deg[ei[1]].rsqrt()
    csr = to_csr(ei, num_nodes)
    return CSR(csr.indptr, csr.indices, ids[csr.edge_ids]), w[csr.edge_ids]


class LayerWiseSampler:
    """Draws each layer's nodes by importance (``method`` in :data:`METHODS`); :meth:`sample` -> blocks."""

    def __init__(self, data: Data, num_samples: Sequence[int], method: str = "ladies", seed: int | None = 0):
        if method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
        self.method = method
        self.num_samples = check_fanouts("num_samples", num_samples, allow_full=False)
        self.num_nodes = int(data.num_nodes)
        self.csr, self.weight = gcn_norm_csr(data.edge_index, self.num_nodes)
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))
        if method == "fastgcn":   # q_u ~ ||A[:, u]||^2, once for the whole graph
            col = torch.zeros(self.num_nodes, dtype=torch.float64).index_add_(0, self.csr.indices,
                                                                              self.weight ** 2)
            self.q_global = col / col.sum()

    def layer_distribution(self, dst: Tensor) -> tuple[Tensor, Tensor]:
        """``(support, q)``: the nodes a layer with outputs ``dst`` may draw and their probabilities."""
        if self.method == "fastgcn":
            return torch.arange(self.num_nodes), self.q_global
        slots, _ = sample_one_hop(self.csr, dst, -1, False)
        support, inv = torch.unique(self.csr.indices[slots], return_inverse=True)
        q = torch.zeros(support.numel(), dtype=torch.float64).index_add_(0, inv, self.weight[slots] ** 2)
        return support, q / q.sum()

    def sample_layer(self, dst: Tensor, s: int) -> Block:
        """One layer: draw ``s`` nodes from :meth:`layer_distribution`, keep their edges into ``dst``."""
        support, q = self.layer_distribution(dst)
        draws = torch.multinomial(q, s, replacement=True, generator=self.generator)
        drawn, counts = torch.unique(draws, return_counts=True)         # indices into support, sorted
        scale = torch.zeros(support.numel(), dtype=torch.float64)
        scale[drawn] = counts.double() / (s * q[drawn])                  # c_u / (s q_u); E = 1
        slots, pos = sample_one_hop(self.csr, dst, -1, False)
        u = self.csr.indices[slots]
        idx = torch.searchsorted(support, u).clamp(max=support.numel() - 1)   # support is sorted
        sc = torch.where(support[idx] == u, scale[idx], 0.0)
        hit = (sc > 0).nonzero().view(-1)
        slots, pos, u, sc = slots[hit], pos[hit], u[hit], sc[hit]
        # src nodes: dst first, then the drawn nodes that feed some dst and are not dst themselves
        new = torch.unique(u)
        in_dst = torch.isin(new, dst)
        src_nodes = torch.cat([dst, new[~in_dst]])
        order = torch.argsort(src_nodes)
        row = order[torch.searchsorted(src_nodes[order], u)]
        return Block(src_nodes, dst.numel(), torch.stack([row, pos]), (self.weight[slots] * sc).float(),
                     self.csr.edge_ids[slots])

    def sample(self, seeds: Tensor) -> list[Block]:
        """Blocks for ``seeds``, input layer first (``num_samples[0]`` is the layer that outputs the seeds)."""
        dst = torch.as_tensor(seeds).long().view(-1)
        blocks = []
        for s in self.num_samples:
            b = self.sample_layer(dst, s)
            blocks.append(b)
            dst = b.src_nodes
        return blocks[::-1]


class LayerWiseLoader:
    """Mini-batches with layer-wise sampled blocks: ``num_samples`` nodes per layer (hop 1 first, as PyG's
    ``num_neighbors``), ``method="ladies"`` or ``"fastgcn"``.

    Each batch is a ``Data`` with node attributes indexed by ``n_id = blocks[0].src_nodes`` (the input layer's
    nodes; the seeds are its first ``batch_size``), ``blocks`` (input layer first, weighted), ``batch_size`` and
    ``input_id``. A GCN layer is ``h = block_aggregate(block, h @ W.T) + b``.
    """

    def __init__(self, data: Data, num_samples: Sequence[int], batch_size: int = 1, method: str = "ladies",
                 input_nodes=None, shuffle: bool = False, seed: int | None = 0, drop_last: bool = False,
                 **options):
        check_options(type(self).__name__, options, LOADER_OPTIONS)
        check_positive_int("batch_size", batch_size)
        self.data = data
        self.sampler = LayerWiseSampler(data, num_samples, method, seed)
        self.input_nodes = resolve_input_nodes(input_nodes, int(data.num_nodes))
        if torch.unique(self.input_nodes).numel() != self.input_nodes.numel():
            raise ValueError("input_nodes contains duplicate node ids; pass each seed node once")
        self.batch_size = batch_size
        self.seeds = SeedBatches(self.input_nodes, batch_size, shuffle, self.sampler.generator, drop_last)

    def __len__(self) -> int:
        return len(self.seeds)

    def __iter__(self) -> Iterator[Data]:
        for input_id, seeds in self.seeds:
            blocks = self.sampler.sample(seeds)
            out = slice_data(self.data, blocks[0].src_nodes, None, None)
            out.blocks = blocks
            out.batch_size = seeds.numel()
            out.input_id = input_id
            out.num_sampled_nodes = [seeds.numel()] + [b.num_src - b.num_dst for b in blocks[::-1]]
            yield out


class FastGCNLoader(LayerWiseLoader):
    """:class:`LayerWiseLoader` with ``method="fastgcn"``."""

    def __init__(self, data: Data, num_samples: Sequence[int], batch_size: int = 1, **kwargs):
        super().__init__(data, num_samples, batch_size, method="fastgcn", **kwargs)


class LADIESLoader(LayerWiseLoader):
    """:class:`LayerWiseLoader` with ``method="ladies"``."""

    def __init__(self, data: Data, num_samples: Sequence[int], batch_size: int = 1, **kwargs):
        super().__init__(data, num_samples, batch_size, method="ladies", **kwargs)
