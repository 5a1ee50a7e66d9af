"""Node-wise neighbour sampling: real neighbours, fanouts, no duplicates, full neighbourhoods, blocks, errors."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from dgnn_lab.graph import k_hop_rings, to_csr, to_undirected
from dgnn_lab.sampling import (
    NeighborLoader,
    NeighborSampler,
    block_aggregate,
    reference_sample_neighbors,
    sample_one_hop,
    to_blocks,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensor ops on an oversubscribed machine run far faster on one thread; restore afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def graph(num_nodes: int = 300, avg_degree: float = 6.0, seed: int = 0) -> Data:
    """Random undirected graph with a few hubs, some isolated nodes and a directed-only extra edge set."""
    g = torch.Generator().manual_seed(seed)
    m = int(num_nodes * avg_degree / 2)
    src = torch.randint(0, num_nodes - 10, (m,), generator=g)                    # last 10 nodes isolated
    dst = torch.randint(0, num_nodes - 10, (m,), generator=g)
    hubs = torch.randint(0, num_nodes - 10, (200,), generator=g)
    ei = to_undirected(torch.stack([torch.cat([src, hubs]), torch.cat([dst, torch.zeros(200, dtype=torch.long)])]),
                       num_nodes)
    x = torch.randn(num_nodes, 4, generator=g)
    return Data(x=x, y=torch.arange(num_nodes) % 3, edge_index=ei, num_nodes=num_nodes,
                train_mask=torch.arange(num_nodes) % 2 == 0)


def check_structure(data: Data, batch: Data, fanouts: list[int], replace: bool) -> None:
    csr = to_csr(data.edge_index, data.num_nodes)
    deg = csr.degree()
    n_id, (row, col) = batch.n_id, batch.edge_index
    # real neighbours: every sampled edge is the edge e_id of the original graph, in global ids
    assert torch.equal(torch.stack([n_id[row], n_id[col]]), data.edge_index[:, batch.e_id])
    # seeds first, nodes distinct, attributes sliced by n_id
    assert torch.unique(n_id).numel() == n_id.numel()
    assert torch.equal(batch.x, data.x[n_id]) and torch.equal(batch.y, data.y[n_id])
    nodes = torch.tensor([0, *batch.num_sampled_nodes]).cumsum(0)
    edges = torch.tensor([0, *batch.num_sampled_edges]).cumsum(0)
    assert nodes[-1] == n_id.numel() and edges[-1] == row.numel()
    for h, f in enumerate(fanouts):
        r, c = row[edges[h]:edges[h + 1]], col[edges[h]:edges[h + 1]]
        # hop h+1 samples exactly the nodes first reached at hop h, and sources are known by then
        assert bool(((c >= nodes[h]) & (c < nodes[h + 1])).all()) and bool((r < nodes[h + 2]).all())
        got = torch.bincount(c - nodes[h], minlength=int(nodes[h + 1] - nodes[h]))
        d = deg[n_id[nodes[h]:nodes[h + 1]]]
        if f == -1:
            want = d
        elif replace:
            want = torch.where(d > 0, f, 0)
        else:
            want = d.clamp(max=f)
        assert torch.equal(got, want), f"hop {h + 1}: per-node sample counts differ from the fanout rule"
        if not replace:   # no duplicates: each edge at most once per node
            e = batch.e_id[edges[h]:edges[h + 1]]
            assert torch.unique(e).numel() == e.numel()


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanouts", [[3], [5, 2], [2, 3, 4], [-1, 3]])
def test_fanouts_real_neighbours_and_no_duplicates(fanouts, replace):
    data = graph()
    loader = NeighborLoader(data, fanouts, batch_size=40, input_nodes=data.train_mask, shuffle=True,
                            replace=replace, seed=1)
    seen = []
    for batch in loader:
        assert batch.batch_size == batch.num_sampled_nodes[0] == batch.input_id.numel()
        assert torch.equal(batch.n_id[:batch.batch_size], loader.input_nodes[batch.input_id])
        check_structure(data, batch, fanouts, replace)
        seen.append(batch.n_id[:batch.batch_size])
    # one epoch visits every training node exactly once as a seed
    assert torch.equal(torch.cat(seen).sort().values, data.train_mask.nonzero().view(-1))


def test_full_neighbourhood_matches_brute_force_and_reference():
    data = graph(seed=3)
    csr = to_csr(data.edge_index, data.num_nodes)
    seeds = torch.tensor([0, 5, 17, 290, 42])   # 290 is isolated
    s = NeighborSampler(data, [-1, -1, -1], seed=0).sample(seeds)
    rings = k_hop_rings(csr, seeds, 3)
    nodes = torch.tensor([0, *s.num_sampled_nodes]).cumsum(0)
    for h, ring in enumerate(rings):
        assert torch.equal(s.n_id[nodes[h + 1]:nodes[h + 2]].sort().values, ring.sort().values)
    ref = reference_sample_neighbors(csr, seeds.tolist(), [-1, -1, -1])
    assert ref.num_sampled_nodes == s.num_sampled_nodes and ref.num_sampled_edges == s.num_sampled_edges
    def edge_set(t):
        return set(map(tuple, torch.stack([t.n_id[t.edge_index[0]], t.n_id[t.edge_index[1]]]).T.tolist()))
    assert edge_set(ref) == edge_set(s)
    # brute force: the edges into every node within 2 hops of the seeds, each exactly once
    inner = torch.cat([seeds, *rings[:2]])
    brute = {(int(u), int(v)) for u, v in data.edge_index.T.tolist() if v in set(inner.tolist())}
    assert edge_set(s) == brute


def test_reference_implementation_obeys_the_same_rules():
    data = graph(seed=4)
    csr = to_csr(data.edge_index, data.num_nodes)
    for replace in (False, True):
        r = reference_sample_neighbors(csr, list(range(0, 60, 3)), [4, 2], replace=replace, seed=2)
        batch = Data(n_id=r.n_id, edge_index=r.edge_index, e_id=csr.edge_ids[r.slots], x=data.x[r.n_id],
                     y=data.y[r.n_id], num_sampled_nodes=r.num_sampled_nodes, num_sampled_edges=r.num_sampled_edges)
        check_structure(data, batch, [4, 2], replace)


def test_without_replacement_is_uniform_over_neighbours():
    """Each of a hub's deg neighbours is kept with probability fanout/deg (segment top-k is not biased)."""
    data = graph(seed=5)
    csr = to_csr(data.edge_index, data.num_nodes)
    deg = int(csr.degree()[0])
    assert deg > 100
    sampler = NeighborSampler(csr, [10], seed=7)
    trials = 2000
    counts = torch.zeros(data.num_nodes)
    for _ in range(trials):
        slots, _ = sample_one_hop(csr, torch.tensor([0]), 10, False, sampler.generator)
        counts[csr.indices[slots]] += 1
    p = 10 / deg
    nbrs = csr.indices[csr.indptr[0]:csr.indptr[1]]
    z = (counts[nbrs] - trials * p) / (trials * p * (1 - p)) ** 0.5
    assert float(z.abs().max()) < 4.5, float(z.abs().max())
    assert float(z.mean().abs()) < 0.5


def test_mean_aggregation_with_replacement_is_unbiased():
    data = graph(seed=6)
    csr = to_csr(data.edge_index, data.num_nodes)
    seeds = torch.arange(0, 50)
    exact = torch.stack([data.x[csr.indices[csr.indptr[v]:csr.indptr[v + 1]]].mean(0) for v in seeds.tolist()])
    sampler = NeighborSampler(csr, [3], replace=True, seed=0)
    total, m = torch.zeros(50, 4, dtype=torch.float64), 600
    sq = torch.zeros(50, 4, dtype=torch.float64)
    for _ in range(m):
        s = sampler.sample(seeds)
        b = to_blocks_of(s)[-1]
        e = block_aggregate(b, data.x[s.n_id].double(), "mean")
        total += e
        sq += e ** 2
    mean = total / m
    se = ((sq / m - mean ** 2).clamp(min=1e-12) / m).sqrt()
    assert float(((mean - exact.double()) / se).abs().max()) < 5


def to_blocks_of(s):
    return to_blocks(Data(n_id=s.n_id, edge_index=s.edge_index, num_sampled_nodes=s.num_sampled_nodes,
                          num_sampled_edges=s.num_sampled_edges))


def test_blocks_give_the_same_seed_outputs_as_the_whole_subgraph():
    from dgnn_lab.sampling.experiments import SAGE

    data = graph(seed=8)
    torch.manual_seed(0)
    model = SAGE(4, 8, 3, num_layers=3).eval()
    batch = next(iter(NeighborLoader(data, [4, 3, 2], batch_size=16, seed=0)))
    blocks = to_blocks(batch)
    assert [b.num_dst for b in blocks] == torch.tensor(batch.num_sampled_nodes[:3]).cumsum(0).tolist()[::-1]
    for upper, lower in zip(blocks[1:], blocks[:-1], strict=True):
        assert torch.equal(lower.dst_nodes, upper.src_nodes)
    assert torch.equal(blocks[-1].dst_nodes, batch.n_id[:batch.batch_size])
    with torch.no_grad():
        whole = model(batch.x, batch.edge_index)[:batch.batch_size]
        layered = model(batch.x, blocks)
    torch.testing.assert_close(whole, layered)


def test_deterministic_for_a_seed():
    data = graph(seed=9)

    def run(seed):
        loader = NeighborLoader(data, [5, 3], batch_size=32, shuffle=True, seed=seed)
        return [(b.n_id, b.edge_index) for _ in range(2) for b in loader]

    a, b, c = run(0), run(0), run(1)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("kwargs, match", [
    ({"num_neighbors": []}, r"num_neighbors must be a non-empty list"),
    ({"num_neighbors": [10, 0]}, r"positive integers or -1.*got 0"),
    ({"num_neighbors": [-2]}, r"got -2"),
    ({"num_neighbors": 10}, r"non-empty list of integers"),
    ({"num_neighbors": [2.5]}, r"got 2.5"),
    ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
    ({"input_nodes": torch.tensor([0, 300])}, r"node id 300, outside \[0, 299\]"),
    ({"input_nodes": torch.tensor([-1])}, r"node id -1"),
    ({"input_nodes": torch.ones(10, dtype=torch.bool)}, r"length num_nodes=300, got shape \(10,\)"),
    ({"input_nodes": torch.tensor([1, 1])}, r"duplicate"),
    ({"input_nodes": torch.tensor([0.5])}, r"integer node ids"),
    ({"input_nodes": ["a", "b"]}, r"input_nodes must be None, a boolean mask or integer node ids, got list"),
    ({"fanout": [3]}, r"unknown NeighborLoader option\(s\) \['fanout'\]; allowed: num_neighbors"),
    ({"num_workers": 2}, r"num_workers must be 0"),
])
def test_bad_input_is_a_clear_value_error(kwargs, match):
    args = {"num_neighbors": [3, 2], **kwargs}
    with pytest.raises(ValueError, match=match):
        NeighborLoader(graph(), **args)


def test_sampler_rejects_bad_seeds():
    sampler = NeighborSampler(graph(), [2])
    with pytest.raises(ValueError, match=r"node id 300, outside \[0, 299\]"):
        sampler.sample(torch.tensor([1, 300]))
    with pytest.raises(ValueError, match="distinct"):
        sampler.sample(torch.tensor([4, 4]))
    assert sampler.sample(torch.tensor([4, 5])).num_sampled_nodes[0] == 2     # state was reset after errors


def test_num_workers_zero_is_accepted():
    assert len(NeighborLoader(graph(), [2], batch_size=100, num_workers=0)) == 3


@pytest.mark.slow
def test_minibatch_graphsage_on_cora(planetoid_root):
    from dgnn_lab.datasets import load
    from dgnn_lab.sampling.experiments import train_node_classifier

    data = load("cora", root=planetoid_root)
    hist = train_node_classifier(data, mode="minibatch", num_neighbors=[10, 5], batch_size=64, epochs=15, seed=0)
    best = hist.loc[hist["val_acc"].idxmax()]
    assert best["test_acc"] >= 0.75, hist.to_string()


@pytest.mark.parametrize("replace", [False, True])
def test_one_hop_rules_hold_on_random_graphs(replace):
    """Property check over random graphs, node lists (repeats allowed) and fanouts."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(n=st.integers(1, 30), m=st.integers(0, 120), fanout=st.sampled_from([-1, 1, 2, 3, 7]),
           seed=st.integers(0, 10_000), k=st.integers(0, 12))
    def check(n, m, fanout, seed, k):
        runs.append(1)
        g = torch.Generator().manual_seed(seed)
        ei = torch.randint(0, n, (2, m), generator=g)                   # multi-edges and self-loops allowed
        csr = to_csr(ei, n)
        nodes = torch.randint(0, n, (k,), generator=g)
        slots, pos = sample_one_hop(csr, nodes, fanout, replace, g)
        deg = csr.degree()[nodes]
        got = torch.bincount(pos, minlength=k)
        want = deg if fanout == -1 else (torch.where(deg > 0, fanout, 0) if replace else deg.clamp(max=fanout))
        assert torch.equal(got, want)
        assert bool((pos[1:] >= pos[:-1]).all())                         # grouped by destination, in order
        lo, hi = csr.indptr[nodes][pos], csr.indptr[nodes + 1][pos]
        assert bool(((slots >= lo) & (slots < hi)).all())                # each slot is one of v's in-edges
        if not replace:
            key = pos * max(csr.num_edges, 1) + slots
            assert torch.unique(key).numel() == key.numel()              # no slot twice for the same node

    runs: list[int] = []
    check()
    assert len(runs) >= 20
