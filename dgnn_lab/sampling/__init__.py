"""Batch generation: node-wise, layer-wise and subgraph samplers with PyG-style loaders.

>>> loader = NeighborLoader(data, num_neighbors=[10, 5], batch_size=512, input_nodes=data.train_mask)
>>> batch = next(iter(loader)); blocks = to_blocks(batch)      # subgraph Data -> per-layer bipartite blocks

* :mod:`~dgnn_lab.sampling.neighbor`: GraphSAGE fanouts (``NeighborLoader``, ``NeighborSampler``)
* :mod:`~dgnn_lab.sampling.layerwise`: FastGCN and LADIES importance sampling (``LayerWiseLoader``)
* :mod:`~dgnn_lab.sampling.cluster`: Cluster-GCN (``ClusterGCNLoader``, clusters from a partition)
* :mod:`~dgnn_lab.sampling.saint`: GraphSAINT random walks with normalisation (``GraphSAINTRandomWalkSampler``)
* :mod:`~dgnn_lab.sampling.blocks`: the shared ``Block`` type, ``to_blocks``, ``block_aggregate``
* :mod:`~dgnn_lab.sampling.experiments`: neighbourhood growth, sampler comparison, full- vs mini-batch
* :mod:`~dgnn_lab.sampling.feature_store` / :mod:`~dgnn_lab.sampling.cache`: distributed feature fetching
  (``DistFeatureStore``) and static feature caches (PaGraph degree, GNNLab pre-sampling)
"""

from dgnn_lab.sampling.blocks import Block, block_aggregate, to_blocks
from dgnn_lab.sampling.cache import CACHE_POLICIES, FeatureCache, build_cache, presample_counts
from dgnn_lab.sampling.cluster import ClusterGCNLoader, cluster_assignment
from dgnn_lab.sampling.feature_store import DistFeatureStore
from dgnn_lab.sampling.layerwise import FastGCNLoader, LADIESLoader, LayerWiseLoader, LayerWiseSampler, gcn_norm_csr
from dgnn_lab.sampling.neighbor import (
    NeighborLoader,
    NeighborSample,
    NeighborSampler,
    ReferenceNeighborSampler,
    reference_sample_neighbors,
    sample_one_hop,
)
from dgnn_lab.sampling.saint import GraphSAINTRandomWalkSampler, random_walk_nodes

__all__ = [
    "Block", "ClusterGCNLoader", "FastGCNLoader", "GraphSAINTRandomWalkSampler", "LADIESLoader", "LayerWiseLoader",
    "LayerWiseSampler", "NeighborLoader", "NeighborSample", "NeighborSampler", "ReferenceNeighborSampler",
    "block_aggregate", "cluster_assignment", "gcn_norm_csr", "random_walk_nodes", "reference_sample_neighbors",
    "sample_one_hop", "to_blocks",
    "CACHE_POLICIES", "DistFeatureStore", "FeatureCache", "build_cache", "presample_counts",
]
