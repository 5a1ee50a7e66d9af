"""GraphSAINT (Zeng et al. 2020) with the random-walk sampler and its bias-removing normalisation.

A batch is the subgraph *induced* by the nodes of ``batch_size`` random walks of ``walk_length`` steps from
uniformly random roots; the whole GNN runs on that subgraph. Nodes and edges appear with unequal
probabilities ``p_v`` and ``p_uv`` (hubs are visited more often), so two normalisations make the estimates
unbiased, with the probabilities estimated by counting over pre-sampled subgraphs (the paper's Sec. 3.2):

* **aggregator** ``alpha_uv = p_uv / p_v`` (the probability that edge ``u -> v`` is in the subgraph given that
  ``v`` is). Aggregating ``sum_u A_vu / alpha_uv * h_u`` over the sampled in-edges of ``v`` then has
  conditional expectation ``sum_u A_vu h_u`` (the full-graph aggregation), because
  ``E[1(u->v in G_s) | v in G_s] = alpha_uv``. Estimated as ``C_v / C_uv`` -> ``edge_norm`` (= ``1 / alpha``).
* **loss** ``lambda_v = |V| p_v``: ``sum_(v in G_s) L_v / lambda_v`` has expectation ``(1/|V|) sum_v L_v``,
  the full-graph mean loss. Estimated as ``num_presamples / (C_v |V|)`` -> ``node_norm`` (PyG's formula).

``C_v``/``C_uv`` count how many of the ``N`` pre-sampled subgraphs contain ``v``/``u -> v`` (drawn 64 at a time,
vectorised, by the same random-walk process as the training batches); pre-sampling stops
once ``sample_coverage * |V|`` nodes were sampled in total (PyG's meaning), so every node is seen about
``sample_coverage`` times. Unseen nodes/edges get the count 0.1, as in PyG, to keep the weights finite.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab.graph import to_csr
from dgnn_lab.sampling.blocks import check_options, check_positive_int, slice_data
from dgnn_lab.sampling.neighbor import sample_one_hop

LOADER_OPTIONS = ("batch_size", "walk_length", "num_steps", "sample_coverage", "seed")

__all__ = ["GraphSAINTRandomWalkSampler", "random_walk_nodes"]


def random_walk_nodes(indptr: Tensor, indices: Tensor, roots: Tensor, walk_length: int,
                      generator: torch.Generator | None = None, label: Tensor | None = None) -> Tensor:
    """Every node visited by walks from ``roots`` (``walk_length`` steps along in-edges, backwards; a node
    without in-neighbours stays put), as a sorted unique tensor. One vectorised step for all walkers.

    With ``label`` (one subgraph id per walker) the result is the sorted unique ``label * num_nodes + node``
    keys, so many independent subgraphs are drawn in one pass."""
    cur = roots.long()
    visited = [cur]
    for _ in range(walk_length):
        start = indptr[cur]
        deg = indptr[cur + 1] - start
        pick = (torch.rand(cur.numel(), generator=generator, dtype=torch.float64) * deg).long()
        nxt = indices[(start + torch.minimum(pick, (deg - 1).clamp(min=0))).clamp(max=max(indices.numel() - 1, 0))]
        cur = torch.where(deg > 0, nxt, cur)
        visited.append(cur)
    allv = torch.cat(visited)
    if label is not None:
        allv = label.repeat(walk_length + 1) * (indptr.numel() - 1) + allv
    return torch.unique(allv)


class GraphSAINTRandomWalkSampler:
    """PyG-style ``GraphSAINTRandomWalkSampler(data, batch_size, walk_length, num_steps, sample_coverage)``.

    Iterating yields ``num_steps`` subgraph ``Data`` per epoch: node attributes indexed by ``n_id`` (sorted),
    induced edges in local ids with ``e_id``, and, when ``sample_coverage > 0``, ``node_norm`` (per node, the
    loss weight ``1/lambda_v``: use ``(node_norm * loss_per_node).sum()``) and ``edge_norm`` (per edge,
    ``1/alpha_uv``: multiply the aggregation weights by it). Unlike PyG the default ``sample_coverage`` is 50, not 0
    (no normalisation), because the unnormalised estimator is biased; ``0`` switches the normalisation off.
    ``batch_size`` is the number of walk roots (uniform over all nodes). Deterministic for a ``seed``.
    """

    def __init__(self, data: Data, batch_size: int, walk_length: int, num_steps: int = 1,
                 sample_coverage: int = 50, seed: int | None = 0, **options):
        check_options("GraphSAINTRandomWalkSampler", options, LOADER_OPTIONS)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.walk_length = check_positive_int("walk_length", walk_length, 0)
        self.num_steps = check_positive_int("num_steps", num_steps)
        self.sample_coverage = check_positive_int("sample_coverage", sample_coverage, 0)
        self.data = data
        self.num_nodes = int(data.num_nodes)
        self.csr = to_csr(data.edge_index, self.num_nodes)
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))
        self.node_norm: Tensor | None = None
        self.edge_norm: Tensor | None = None
        self.num_presamples = 0
        if self.sample_coverage > 0:
            self.node_norm, self.edge_norm = self.estimate_norms()

    def __len__(self) -> int:
        return self.num_steps

    def sample_nodes(self) -> Tensor:
        roots = torch.randint(0, self.num_nodes, (self.batch_size,), generator=self.generator)
        return random_walk_nodes(self.csr.indptr, self.csr.indices, roots, self.walk_length, self.generator)

    def induced(self, n_id: Tensor) -> tuple[Tensor, Tensor]:
        """Local ``edge_index`` and CSR slots of the subgraph induced by sorted ``n_id``."""
        slot, dst = sample_one_hop(self.csr, n_id, -1, False)
        src = self.csr.indices[slot]
        loc = torch.searchsorted(n_id, src).clamp(max=n_id.numel() - 1)
        keep = n_id[loc] == src
        return torch.stack([loc[keep], dst[keep]]), slot[keep]

    def estimate_norms(self, chunk: int = 64) -> tuple[Tensor, Tensor]:
        """Pre-sample until ``sample_coverage * |V|`` nodes were drawn; return ``(node_norm, edge_norm)`` over
        all nodes / all edges of ``data.edge_index`` (see the module docstring for the formulas).

        ``chunk`` subgraphs are drawn at once (walkers labelled by their subgraph, membership tested on
        ``label * |V| + node`` keys), so pre-sampling costs a few vectorised passes, not one per subgraph;
        every pre-sample drawn is counted."""
        n_nodes = self.num_nodes
        node_count = torch.zeros(n_nodes, dtype=torch.float64)
        edge_count = torch.zeros(self.data.edge_index.size(1), dtype=torch.float64)
        total, n = 0, 0
        while total < self.sample_coverage * n_nodes:
            k = chunk
            roots = torch.randint(0, n_nodes, (k * self.batch_size,), generator=self.generator)
            label = torch.arange(k).repeat_interleave(self.batch_size)
            visited = random_walk_nodes(self.csr.indptr, self.csr.indices, roots, self.walk_length, self.generator,
                                        label=label)
            keys = visited                                               # sorted label * |V| + node
            lab, node = keys // n_nodes, keys % n_nodes
            slot, pos = sample_one_hop(self.csr, node, -1, False)        # in-edges of every sampled node
            src_key = lab[pos] * n_nodes + self.csr.indices[slot]
            loc = torch.searchsorted(keys, src_key).clamp(max=keys.numel() - 1)
            inside = keys[loc] == src_key
            node_count += torch.bincount(node, minlength=n_nodes).double()
            edge_count += torch.bincount(self.csr.edge_ids[slot[inside]], minlength=edge_count.numel()).double()
            total += keys.numel()
            n += k
        self.num_presamples = n
        self.node_count, self.edge_count = node_count, edge_count
        nc = node_count.clone()
        nc[nc == 0] = 0.1
        ec = edge_count.clone()
        ec[ec == 0] = 0.1
        node_norm = n / (nc * n_nodes)
        edge_norm = (node_count[self.data.edge_index[1]] / ec).clamp(0, 1e4)
        return node_norm.float(), edge_norm.float()

    def __iter__(self) -> Iterator[Data]:
        for _ in range(self.num_steps):
            yield self.sample()

    def sample(self) -> Data:
        n_id = self.sample_nodes()
        edge_index, slot = self.induced(n_id)
        e_id = self.csr.edge_ids[slot]
        out = slice_data(self.data, n_id, edge_index, e_id)
        if self.node_norm is not None:
            out.node_norm = self.node_norm[n_id]
            out.edge_norm = self.edge_norm[e_id]
        return out
