"""Measurements behind notebook 02: neighbourhood growth, samplers side by side, full- vs mini-batch training.

Everything returns a pandas ``DataFrame`` (or dict) of measured numbers; :mod:`dgnn_lab.viz.sampling` draws them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.nn import SAGEConv

from dgnn_lab.graph import k_hop_rings, to_csr
from dgnn_lab.sampling.blocks import Block, block_aggregate, check_fanouts, check_positive_int, to_blocks
from dgnn_lab.sampling.cluster import ClusterGCNLoader
from dgnn_lab.sampling.layerwise import LayerWiseSampler, gcn_norm_csr
from dgnn_lab.sampling.neighbor import NeighborLoader, NeighborSampler
from dgnn_lab.sampling.saint import GraphSAINTRandomWalkSampler

__all__ = ["SAGE", "compare_samplers", "neighbourhood_growth", "train_node_classifier"]


def neighbourhood_growth(data: Data, seeds: Tensor, num_neighbors: Sequence[int], repeats: int = 3,
                         seed: int = 0) -> pd.DataFrame:
    """Nodes an ``L``-layer GNN reads for ``seeds``, per hop: the full ``h``-hop neighbourhood, what fanout
    sampling touches (mean over ``repeats``) and the worst case ``B * prod(fanouts[:h])`` (cumulative)."""
    fanouts = check_fanouts("num_neighbors", num_neighbors)
    seeds = torch.as_tensor(seeds).long()
    csr = to_csr(data.edge_index, int(data.num_nodes))
    rings = k_hop_rings(csr, seeds, len(fanouts))
    full = torch.tensor([seeds.numel()] + [r.numel() for r in rings]).cumsum(0).tolist()
    sampled = torch.zeros(len(fanouts) + 1, dtype=torch.float64)
    sampler = NeighborSampler(csr, fanouts, seed=seed)
    for _ in range(repeats):
        s = sampler.sample(seeds)
        sampled += torch.tensor(s.num_sampled_nodes, dtype=torch.float64).cumsum(0)
    bound, b = [seeds.numel()], seeds.numel()
    for f in fanouts:
        b = b * (f if f > 0 else float("inf"))
        bound.append(bound[-1] + b)
    return pd.DataFrame({"hop": list(range(len(fanouts) + 1)), "full": full,
                         "sampled": (sampled / repeats).tolist(), "bound": [min(x, float("inf")) for x in bound],
                         "num_nodes": int(data.num_nodes)})


def _rel(est: Tensor, exact: Tensor) -> float:
    return float((est - exact).norm() / exact.norm().clamp(min=1e-12))


def compare_samplers(data: Data, *, batch_size: int = 64, num_neighbors: Sequence[int] = (10, 5),
                     layer_size: int = 256, num_clusters: int = 32, clusters_per_batch: int = 4,
                     walk_roots: int = 200, walk_length: int = 2, num_batches: int = 5, clusters=None,
                     seed: int = 0) -> pd.DataFrame:
    """Each sampler's batches, measured: output nodes (whose loss the batch computes), input nodes (features
    read), edges, inputs per output and ``rel_error``: the relative error of the first layer's aggregation at
    the output nodes against the exact full-graph aggregation that sampler estimates (neighbour sampling: the
    neighbour mean; the others: ``D^-1/2 (A+I) D^-1/2 X``), mean over ``num_batches`` batches.

    ``clusters``: a cluster assignment or plan for Cluster-GCN (default: ``num_clusters`` random-permutation
    ranges, i.e. no locality; pass a METIS partition to see what locality buys).
    """
    check_positive_int("num_batches", num_batches)
    n = int(data.num_nodes)
    x = data.x.double()
    gen = torch.Generator().manual_seed(seed)
    csr = to_csr(data.edge_index, n)
    deg = csr.degree().clamp(min=1).double().view(-1, 1)
    exact_mean = torch.zeros_like(x).index_add_(0, torch.repeat_interleave(torch.arange(n), csr.degree()),
                                                 x[csr.indices]) / deg
    ncsr, w = gcn_norm_csr(data.edge_index, n)
    dst_of_slot = torch.repeat_interleave(torch.arange(n), ncsr.degree())
    exact_gcn = torch.zeros_like(x).index_add_(0, dst_of_slot, x[ncsr.indices] * w.view(-1, 1))
    w_by_edge = torch.zeros(data.edge_index.size(1), dtype=torch.float64)
    real = ncsr.edge_ids >= 0
    w_by_edge[ncsr.edge_ids[real]] = w[real]
    self_w = torch.zeros(n, dtype=torch.float64)
    self_w[dst_of_slot[~real]] = w[~real]
    rows = []

    def record(name: str, outputs: int, inputs: int, edges: int, err: float) -> None:
        rows.append({"sampler": name, "outputs": outputs, "inputs": inputs, "edges": edges, "rel_error": err})

    seeds_list = [torch.randperm(n, generator=gen)[:batch_size] for _ in range(num_batches)]
    for name, fan in ((f"neighbour {list(num_neighbors)}", list(num_neighbors)),
                      ("neighbour (full)", [-1] * len(num_neighbors))):
        sampler = NeighborSampler(csr, fan, seed=seed)
        for seeds in seeds_list:
            s = sampler.sample(seeds)
            top = s.num_sampled_edges[0]
            blk = Block(s.n_id, s.batch_size, s.edge_index[:, :top])
            est = block_aggregate(blk, x[s.n_id], "mean")
            record(name, s.batch_size, s.n_id.numel(), s.edge_index.size(1), _rel(est, exact_mean[seeds]))
    for method in ("fastgcn", "ladies"):
        sampler = LayerWiseSampler(data, [layer_size] * len(num_neighbors), method, seed=seed)
        for seeds in seeds_list:
            blocks = sampler.sample(seeds)
            est = block_aggregate(blocks[-1], x[blocks[-1].src_nodes])
            record(f"{method} s={layer_size}", seeds.numel(), blocks[0].num_src, sum(b.num_edges for b in blocks),
                   _rel(est, exact_gcn[seeds]))

    def subgraph_error(b: Data, edge_scale: Tensor | None) -> float:
        row, col = b.edge_index
        coef = w_by_edge[b.e_id] * (1.0 if edge_scale is None else edge_scale.double())
        est = self_w[b.n_id].view(-1, 1) * x[b.n_id]
        est = est.index_add(0, col, x[b.n_id][row] * coef.view(-1, 1))
        return _rel(est, exact_gcn[b.n_id])

    if clusters is None:
        clusters = torch.empty(n, dtype=torch.long)
        clusters[torch.randperm(n, generator=gen)] = torch.arange(n) * num_clusters // n
    loader = ClusterGCNLoader(data, clusters, batch_size=clusters_per_batch, shuffle=True, seed=seed)
    for i, b in enumerate(loader):
        if i >= num_batches:
            break
        record(f"cluster-gcn q={clusters_per_batch}", b.num_nodes, b.num_nodes, b.edge_index.size(1),
               subgraph_error(b, None))
    saint = GraphSAINTRandomWalkSampler(data, walk_roots, walk_length, num_steps=num_batches, seed=seed)
    for b in saint:
        record(f"graphsaint rw {walk_roots}x{walk_length}", b.num_nodes, b.num_nodes, b.edge_index.size(1),
               subgraph_error(b, b.edge_norm))
    df = pd.DataFrame(rows).groupby("sampler", sort=False).mean().reset_index()
    df["inputs_per_output"] = df["inputs"] / df["outputs"]
    return df


class SAGE(nn.Module):
    """GraphSAGE (mean) for node classification; runs on a whole (sub)graph or on per-layer blocks."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int = 2, dropout: float = 0.5):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.convs = nn.ModuleList(SAGEConv(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor | Sequence[Block]) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, self.dropout, self.training)
            if isinstance(edge_index, Tensor):
                x = conv(x, edge_index)
            else:
                b = edge_index[i]
                x = conv((x, x[: b.num_dst]), b.edge_index, size=(b.num_src, b.num_dst))
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


def train_node_classifier(data: Data, *, mode: str = "minibatch", num_neighbors: Sequence[int] = (10, 5),
                          batch_size: int = 256, epochs: int = 20, hidden: int = 64, lr: float = 0.01,
                          weight_decay: float = 5e-4, seed: int = 0) -> pd.DataFrame:
    """Train a 2-layer GraphSAGE single-process, ``mode="full"`` (one step per epoch on the whole graph) or
    ``"minibatch"`` (:class:`~dgnn_lab.sampling.NeighborLoader` over the training nodes, one step per batch).
    Evaluation is always full-graph. Returns one row per epoch: ``epoch``, ``train_s`` (training wall time of
    the epoch, sampling included), ``steps``, ``loss``, ``val_acc``, ``test_acc``."""
    if mode not in ("full", "minibatch"):
        raise ValueError(f"mode must be 'full' or 'minibatch', got {mode!r}")
    check_positive_int("epochs", epochs)
    torch.manual_seed(seed)
    model = SAGE(data.num_features, hidden, int(data.y.max()) + 1, num_layers=len(num_neighbors))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    loader = (NeighborLoader(data, list(num_neighbors), batch_size=batch_size, input_nodes=data.train_mask,
                             shuffle=True, seed=seed) if mode == "minibatch" else None)
    rows = []
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.perf_counter()
        losses, steps = [], 0
        batches = loader if loader is not None else [None]
        for batch in batches:
            opt.zero_grad()
            if batch is None:
                out, y = model(data.x, data.edge_index)[data.train_mask], data.y[data.train_mask]
            else:
                out = model(batch.x, to_blocks(batch))
                y = batch.y[: batch.batch_size]
            loss = F.cross_entropy(out, y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            steps += 1
        train_s = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(1)
        acc = {k: float((pred[m] == data.y[m]).float().mean()) for k, m in
               (("val_acc", data.val_mask), ("test_acc", data.test_mask))}
        rows.append({"mode": mode, "epoch": epoch, "train_s": train_s, "steps": steps,
                     "loss": sum(losses) / len(losses), **acc})
    return pd.DataFrame(rows)
