"""Cluster-GCN (Chiang et al. 2019): mini-batches are unions of graph clusters, trained as induced subgraphs.

Partition the graph into ``k`` clusters (METIS: few edges between clusters), then each step picks ``q``
clusters at random and runs the GNN on the subgraph they induce, *including* the edges between the chosen
clusters (the paper's "stochastic multiple partitions", which restores some between-cluster links and lowers
the bias from cut edges). One epoch visits every cluster once, so every node is in exactly one batch per epoch.
The estimator is biased (edges to unchosen clusters are dropped, never reweighted): the price of
a batch whose cost is linear in its size with no neighbourhood explosion.

Clusters come from any partition assignment: a tensor (node -> cluster id) or a ``PartitionPlan``
(``dgnn_lab.partition.partition(data, k, "metis")``), so the lab's partitioners double as cluster builders.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab.graph import to_csr
from dgnn_lab.sampling.blocks import check_options, check_positive_int, slice_data
from dgnn_lab.sampling.neighbor import sample_one_hop

LOADER_OPTIONS = ("clusters", "batch_size", "shuffle", "seed", "drop_last")

__all__ = ["ClusterGCNLoader", "cluster_assignment"]


def cluster_assignment(clusters, num_nodes: int) -> Tensor:
    """Node -> cluster ids from a tensor/sequence or anything with an ``assignment`` (a ``PartitionPlan``)."""
    a = getattr(clusters, "assignment", clusters)
    try:
        a = torch.as_tensor(a)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError("clusters must be a PartitionPlan or a 1-D integer tensor of cluster ids per node, "
                         f"got {type(clusters).__name__}") from None
    if a.dtype == torch.bool or a.is_floating_point() or a.dim() != 1:
        raise ValueError(f"clusters must be a 1-D integer tensor (one cluster id per node), got dtype {a.dtype} "
                         f"shape {tuple(a.shape)}")
    if a.numel() != num_nodes:
        raise ValueError(f"clusters has {a.numel()} entries but the graph has num_nodes={num_nodes}")
    if num_nodes and int(a.min()) < 0:
        raise ValueError(f"cluster ids must be >= 0, got {int(a.min())}")
    return a.long()


class ClusterGCNLoader:
    """Batches of ``batch_size`` clusters each (PyG's ``ClusterLoader`` meaning), as induced subgraph ``Data``.

    >>> plan = partition(data, 32, "metis")
    >>> for batch in ClusterGCNLoader(data, plan, batch_size=4, shuffle=True):
    ...     out = model(batch.x, batch.edge_index); loss = F.cross_entropy(out[batch.train_mask], ...)

    Each batch has node attributes indexed by ``n_id`` (the chosen clusters' nodes, cluster by cluster,
    ascending ids within a cluster), the induced edges in local ids with ``e_id``, and ``clusters`` (the ids
    chosen). Empty clusters are skipped. Deterministic for a ``seed``.
    """

    def __init__(self, data: Data, clusters, batch_size: int = 1, shuffle: bool = True, seed: int | None = 0,
                 drop_last: bool = False, **options):
        check_options("ClusterGCNLoader", options, LOADER_OPTIONS)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.data = data
        n = int(data.num_nodes)
        self.assignment = cluster_assignment(clusters, n)
        k = int(self.assignment.max()) + 1 if n else 0
        self.perm = torch.argsort(self.assignment, stable=True)            # nodes grouped by cluster
        sizes = torch.bincount(self.assignment, minlength=k)
        self.ptr = torch.zeros(k + 1, dtype=torch.long)
        torch.cumsum(sizes, 0, out=self.ptr[1:])
        self.rank = torch.empty(n, dtype=torch.long)                        # position inside its cluster
        self.rank[self.perm] = torch.arange(n) - self.ptr[self.assignment[self.perm]]
        self.cluster_ids = (sizes > 0).nonzero().view(-1)
        self.csr = to_csr(data.edge_index, n)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.generator = torch.Generator()
        self.generator.manual_seed(0 if seed is None else int(seed))

    @property
    def num_clusters(self) -> int:
        return self.cluster_ids.numel()

    def __len__(self) -> int:
        k = self.num_clusters
        return k // self.batch_size if self.drop_last else -(-k // self.batch_size)

    def __iter__(self) -> Iterator[Data]:
        k = self.num_clusters
        order = torch.randperm(k, generator=self.generator) if self.shuffle else torch.arange(k)
        for i in range(len(self)):
            yield self.subgraph(self.cluster_ids[order[i * self.batch_size:(i + 1) * self.batch_size]])

    def subgraph(self, chosen: Tensor) -> Data:
        """The subgraph induced by the union of clusters ``chosen``."""
        sizes = self.ptr[chosen + 1] - self.ptr[chosen]
        offset = torch.zeros(self.ptr.numel() - 1, dtype=torch.long)
        offset[chosen] = torch.cumsum(sizes, 0) - sizes                      # where each cluster starts locally
        picked = torch.zeros(self.ptr.numel() - 1, dtype=torch.bool)
        picked[chosen] = True
        pos = torch.repeat_interleave(torch.arange(chosen.numel()), sizes)
        n_id = self.perm[self.ptr[chosen][pos] + torch.arange(pos.numel()) - offset[chosen][pos]]
        slot, dst_pos = sample_one_hop(self.csr, n_id, -1, False)            # every in-edge of the batch
        src = self.csr.indices[slot]
        keep = picked[self.assignment[src]]
        src, dst_pos, slot = src[keep], dst_pos[keep], slot[keep]
        local_src = offset[self.assignment[src]] + self.rank[src]
        out = slice_data(self.data, n_id, torch.stack([local_src, dst_pos]), self.csr.edge_ids[slot])
        out.clusters = chosen
        return out
