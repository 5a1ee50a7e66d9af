"""Layer-wise and subgraph samplers: the unbiasedness claims checked empirically, Cluster-GCN coverage, errors.

Unbiasedness is tested with z-scores (mean of many independent estimates against the exact value, in units
of its standard error) and a negative control that drops the normalisation, so the test can fail.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from dgnn_lab.graph import to_undirected
from dgnn_lab.partition.plan import build_plan
from dgnn_lab.sampling import (
    ClusterGCNLoader,
    GraphSAINTRandomWalkSampler,
    LayerWiseLoader,
    LayerWiseSampler,
    block_aggregate,
    gcn_norm_csr,
    to_blocks,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def graph(num_nodes: int = 80, avg_degree: float = 5.0, seed: int = 0, features: int = 3) -> Data:
    g = torch.Generator().manual_seed(seed)
    m = int(num_nodes * avg_degree / 2)
    ei = to_undirected(torch.randint(0, num_nodes, (2, m), generator=g), num_nodes)
    x = 1 + torch.rand(num_nodes, features, generator=g, dtype=torch.float64)
    return Data(x=x, y=torch.arange(num_nodes) % 2, edge_index=ei, num_nodes=num_nodes)


def dense_gcn(data: Data) -> torch.Tensor:
    csr, w = gcn_norm_csr(data.edge_index, data.num_nodes)
    a = torch.zeros(data.num_nodes, data.num_nodes, dtype=torch.float64)
    dst = torch.repeat_interleave(torch.arange(data.num_nodes), csr.degree())
    a[dst, csr.indices] = w
    return a


def zscores(samples: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    mean, se = samples.mean(0), samples.std(0) / samples.size(0) ** 0.5
    return (mean - exact) / se.clamp(min=1e-12)


def test_gcn_norm_matches_pyg():
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    data = graph()
    ei, w = gcn_norm(data.edge_index, None, data.num_nodes, add_self_loops=True)
    ref = torch.zeros(data.num_nodes, data.num_nodes, dtype=torch.float64)
    ref[ei[1], ei[0]] = w.double()
    torch.testing.assert_close(dense_gcn(data), ref)


@pytest.mark.parametrize("method", ["ladies", "fastgcn"])
def test_layerwise_one_layer_estimator_is_unbiased(method):
    data = graph(seed=1)
    a = dense_gcn(data)
    dst = torch.tensor([0, 3, 7, 11, 20, 33])
    exact = a[dst] @ data.x
    sampler = LayerWiseSampler(data, [5], method, seed=0)
    est, plain = [], []
    for _ in range(1000):
        b = sampler.sample_layer(dst, 5)
        assert torch.equal(b.dst_nodes, dst) and b.num_src <= dst.numel() + 5
        est.append(block_aggregate(b, data.x[b.src_nodes]))
        # negative control: the same edges with the raw A_vu (importance weights c_u / (s q_u) dropped)
        plain.append(block_aggregate(type(b)(b.src_nodes, b.num_dst, b.edge_index, a[b.dst_nodes[b.edge_index[1]],
                                     b.src_nodes[b.edge_index[0]]]), data.x[b.src_nodes]))
    z = zscores(torch.stack(est), exact)
    assert float(z.abs().max()) < 4.5, z
    assert float(zscores(torch.stack(plain), exact).abs().max()) > 10


def test_ladies_two_layer_linear_gcn_is_unbiased():
    """E[A_1 (A_2 X W) ...] = (A^2 X)[seeds]: each layer's draw is independent given the layer above."""
    data = graph(seed=2)
    a = dense_gcn(data)
    seeds = torch.tensor([1, 2, 50])
    exact = (a @ a @ data.x)[seeds]
    loader = LayerWiseLoader(data, [6, 6], batch_size=3, input_nodes=seeds, method="ladies", seed=0)
    outs = []
    for _ in range(800):
        batch = next(iter(loader))
        h = batch.x
        for b in to_blocks(batch):
            h = block_aggregate(b, h)
        outs.append(h)
    assert float(zscores(torch.stack(outs), exact).abs().max()) < 4.5


def test_layerwise_blocks_are_consistent_and_real():
    data = graph(seed=3)
    a = dense_gcn(data)
    for method in ("ladies", "fastgcn"):
        loader = LayerWiseLoader(data, [8, 4], batch_size=10, method=method, shuffle=True, seed=1)
        for batch in loader:
            blocks = to_blocks(batch)
            assert torch.equal(batch.n_id, blocks[0].src_nodes)
            assert torch.equal(blocks[-1].dst_nodes, batch.n_id[:batch.batch_size])
            assert torch.equal(blocks[0].dst_nodes, blocks[1].src_nodes)
            for b, s in zip(blocks, [4, 8], strict=True):
                assert b.num_src - b.num_dst <= s
                u, v = b.src_nodes[b.edge_index[0]], b.dst_nodes[b.edge_index[1]]
                assert bool((a[v, u] > 0).all())                                   # real (A + I) entries
                assert bool((b.edge_weight > 0).all())
                if method == "ladies":   # every drawn node feeds some output node
                    fed = torch.zeros(b.num_src, dtype=torch.bool)
                    fed[b.edge_index[0]] = True
                    assert bool(fed[b.num_dst:].all())


def test_layerwise_ladies_distribution_is_the_layer_column_norm():
    data = graph(seed=4)
    a = dense_gcn(data)
    dst = torch.tensor([5, 6, 7])
    support, q = LayerWiseSampler(data, [4], "ladies").layer_distribution(dst)
    col = (a[dst] ** 2).sum(0)
    assert torch.equal(support, col.nonzero().view(-1))
    torch.testing.assert_close(q, col[support] / col.sum())


def saint_graph() -> Data:
    return graph(num_nodes=60, avg_degree=4.0, seed=5, features=1)


def test_graphsaint_normalisations_are_unbiased():
    """Over fresh subgraphs (norms pre-sampled separately):

    * aggregator: the mean, over subgraphs containing v, of ``sum_u h_u * edge_norm_uv`` ~= ``sum_(u->v) h_u``;
    * loss: the mean of ``sum_(v in G_s) node_norm_v f_v`` ~= ``mean_v f_v`` (the full-graph mean loss).
    """
    data = saint_graph()
    sampler = GraphSAINTRandomWalkSampler(data, batch_size=6, walk_length=2, num_steps=1, sample_coverage=800,
                                          seed=0)
    n = data.num_nodes
    h = data.x[:, 0]
    full = torch.zeros(n, dtype=torch.float64).index_add_(0, data.edge_index[1], h[data.edge_index[0]])
    norm_sum, raw_sum, seen = (torch.zeros(n, dtype=torch.float64) for _ in range(3))
    losses = []
    for _ in range(2000):
        n_id = sampler.sample_nodes()                       # sample() minus the Data slicing, for speed
        (row, col), slot = sampler.induced(n_id)
        e_id = sampler.csr.edge_ids[slot]
        msg = h[n_id][row]
        norm_sum[n_id] += torch.zeros(n_id.numel(), dtype=torch.float64).index_add_(
            0, col, msg * sampler.edge_norm[e_id])
        raw_sum[n_id] += torch.zeros(n_id.numel(), dtype=torch.float64).index_add_(0, col, msg)
        seen[n_id] += 1
        losses.append(float((sampler.node_norm[n_id].double() * h[n_id]).sum()))
    ok = seen > 100
    assert int(ok.sum()) > 0.8 * n
    rel = ((norm_sum / seen - full)[ok].norm() / full[ok].norm()).item()
    rel_raw = ((raw_sum / seen - full)[ok].norm() / full[ok].norm()).item()
    assert rel < 0.07, rel                  # typically 0.02-0.04: estimated norms plus sampling noise
    assert rel_raw > 0.3, rel_raw           # negative control: without edge_norm the estimate is far off
    loss_rel = abs(sum(losses) / len(losses) - h.mean().item()) / h.mean().item()
    assert loss_rel < 0.03, loss_rel


def test_graphsaint_subgraph_is_induced_and_deterministic():
    data = graph(seed=6)
    a = GraphSAINTRandomWalkSampler(data, batch_size=5, walk_length=3, num_steps=4, sample_coverage=5, seed=2)
    b = GraphSAINTRandomWalkSampler(data, batch_size=5, walk_length=3, num_steps=4, sample_coverage=5, seed=2)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.n_id, y.n_id) and torch.equal(x.edge_norm, y.edge_norm)
        inside = torch.zeros(data.num_nodes, dtype=torch.bool)
        inside[x.n_id] = True
        want = (inside[data.edge_index[0]] & inside[data.edge_index[1]]).nonzero().view(-1)
        assert torch.equal(x.e_id.sort().values, want)
        assert torch.equal(x.n_id[x.edge_index], data.edge_index[:, x.e_id])
    assert len(a) == 4
    assert GraphSAINTRandomWalkSampler(data, 5, 2, sample_coverage=0).sample().get("node_norm") is None


@pytest.mark.parametrize("use_plan", [False, True])
def test_cluster_gcn_covers_every_node_once_per_epoch(use_plan):
    data = graph(num_nodes=100, seed=7)
    assignment = torch.arange(100) % 7
    assignment[assignment == 3] = 9               # cluster ids with gaps: 3 is empty, 9 is used
    clusters = build_plan(data.edge_index, 100, assignment, 10) if use_plan else assignment
    loader = ClusterGCNLoader(data, clusters, batch_size=2, shuffle=True, seed=0)
    assert loader.num_clusters == 7 and len(loader) == 4
    for _ in range(2):
        batches = list(loader)
        assert torch.equal(torch.cat([b.n_id for b in batches]).sort().values, torch.arange(100))
        for b in batches:
            inside = torch.isin(assignment, b.clusters)
            assert torch.equal(b.n_id.sort().values, inside.nonzero().view(-1))
            want = (inside[data.edge_index[0]] & inside[data.edge_index[1]]).nonzero().view(-1)
            assert torch.equal(b.e_id.sort().values, want)                # the induced subgraph, exactly
            assert torch.equal(b.n_id[b.edge_index], data.edge_index[:, b.e_id])
            assert torch.equal(b.x, data.x[b.n_id])
    same = [b.n_id for b in ClusterGCNLoader(data, clusters, batch_size=2, seed=0)]
    assert all(torch.equal(x.n_id, y) for x, y in zip(ClusterGCNLoader(data, clusters, batch_size=2, seed=0), same,
                                                      strict=True))


@pytest.mark.parametrize("make, match", [
    (lambda d: LayerWiseLoader(d, [4], method="graphsage"), r"method must be one of \['ladies', 'fastgcn'\]"),
    (lambda d: LayerWiseLoader(d, [-1]), r"num_samples entries must be positive integers, got -1"),
    (lambda d: LayerWiseLoader(d, []), r"num_samples must be a non-empty list"),
    (lambda d: LayerWiseLoader(d, [4], batch_size=0), r"batch_size must be an integer >= 1, got 0"),
    (lambda d: LayerWiseLoader(d, [4], layer_sizes=[3]), r"unknown LayerWiseLoader option\(s\) \['layer_sizes'\]"),
    (lambda d: ClusterGCNLoader(d, torch.zeros(5, dtype=torch.long)), r"clusters has 5 entries .* num_nodes=80"),
    (lambda d: ClusterGCNLoader(d, -torch.ones(80, dtype=torch.long)), r"cluster ids must be >= 0, got -1"),
    (lambda d: ClusterGCNLoader(d, torch.rand(80)), r"1-D integer tensor"),
    (lambda d: ClusterGCNLoader(d, torch.zeros(80, dtype=torch.long), batch_size=0), r"batch_size .* got 0"),
    (lambda d: ClusterGCNLoader(d, torch.zeros(80, dtype=torch.long), num_parts=4), r"\['num_parts'\]"),
    (lambda d: GraphSAINTRandomWalkSampler(d, 0, 2), r"batch_size must be an integer >= 1, got 0"),
    (lambda d: GraphSAINTRandomWalkSampler(d, 4, -1), r"walk_length must be an integer >= 0, got -1"),
    (lambda d: GraphSAINTRandomWalkSampler(d, 4, 2, sample_coverage=-3), r"sample_coverage .* got -3"),
    (lambda d: GraphSAINTRandomWalkSampler(d, 4, 2, roots=3), r"unknown GraphSAINTRandomWalkSampler"),
])
def test_bad_input_is_a_clear_value_error(make, match):
    with pytest.raises(ValueError, match=match):
        make(graph())


def test_compare_samplers_exact_where_nothing_is_sampled():
    """Full neighbourhoods and a single all-node cluster reproduce the full-graph aggregation exactly."""
    from dgnn_lab.sampling.experiments import compare_samplers

    data = graph(seed=8)
    data.x = data.x.float()
    table = compare_samplers(data, batch_size=8, num_neighbors=[3, 2], layer_size=16, clusters=torch.zeros(
        80, dtype=torch.long), clusters_per_batch=1, walk_roots=5, num_batches=2).set_index("sampler")
    assert table.loc["neighbour (full)", "rel_error"] < 1e-12
    assert table.loc["cluster-gcn q=1", "rel_error"] < 1e-12
    assert table.loc["neighbour [3, 2]", "rel_error"] > 0.01
    assert (table["outputs"] > 0).all() and (table["inputs_per_output"] >= 1).all()
