"""Partitioners and the PartitionPlan: definitions checked against brute force (networkx), errors, determinism."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from dgnn_lab.datasets import load
from dgnn_lab.partition import (
    METHODS,
    VERTEX_CUT_METHODS,
    build_plan,
    halo_growth,
    load_part,
    load_plan,
    partition,
    partition_stats,
    save_plan,
)
from dgnn_lab.partition.adjacency import symmetric_adjacency
from dgnn_lab.partition.metis import _kway_ctypes, symmetric_csr
from dgnn_lab.partition.streaming import (
    reference_stream,
    stream_order,
    stream_parameters,
    streaming_assignment,
)
from dgnn_lab.partition.vertex_cut import _pairs, pair_assignment, reference_hdrf

EDGE_CUT = [m for m in METHODS if m not in VERTEX_CUT_METHODS]


# ------------------------------------------------------------------------------------------ brute force

def brute_rings(edge_index: torch.Tensor, num_nodes: int, owned: set[int], hops: int) -> list[set[int]]:
    """Halo rings by networkx BFS on the reversed graph (distance *into* the owned set)."""
    g = nx.DiGraph()
    g.add_nodes_from(range(num_nodes))
    g.add_edges_from(edge_index.t().tolist())
    if not owned:
        return [set() for _ in range(hops)]
    dist = nx.multi_source_dijkstra_path_length(g.reverse(copy=False), owned, cutoff=hops)
    return [{v for v, d in dist.items() if d == k} for k in range(1, hops + 1)]


def nx_edge_cut(edge_index: torch.Tensor, num_nodes: int, assignment: torch.Tensor, num_parts: int) -> int:
    g = nx.Graph()
    g.add_nodes_from(range(num_nodes))
    g.add_edges_from((u, v) for u, v in edge_index.t().tolist() if u != v)
    total = sum(nx.cut_size(g, [v for v in range(num_nodes) if assignment[v] == p]) for p in range(num_parts))
    return total // 2


def check_edge_cut_plan(plan, data: Data) -> None:
    """Every definition in plan.py's docstring, against brute force."""
    n, ei, P = data.num_nodes, data.edge_index, plan.num_parts
    owned_count = torch.zeros(n, dtype=torch.long)
    all_eids = []
    for part in plan.parts:
        owned_count[part.owned] += 1
        assert torch.equal(part.owned, torch.sort(part.owned).values)
        assert torch.all(plan.assignment[part.owned] == part.part)
        want = brute_rings(ei, n, set(part.owned.tolist()), max(plan.hops, 1))
        assert [set(r.tolist()) for r in part.halo_rings] == want
        for r in part.halo_rings:
            assert torch.equal(r, torch.sort(r).values)
        l2g = part.local_to_global
        assert torch.equal(l2g[part.local_edge_index], ei[:, part.local_edge_ids])
        assert torch.all(plan.assignment[ei[1, part.local_edge_ids]] == part.part)
        assert torch.equal(part.global_to_local(l2g, n), torch.arange(l2g.numel()))
        all_eids.append(part.local_edge_ids)
    assert torch.all(owned_count == 1), "every node owned exactly once"
    assert torch.equal(torch.sort(torch.cat(all_eids)).values, torch.arange(ei.size(1)))
    ring1 = [set(p.halo_rings[0].tolist()) for p in plan.parts]
    for p in range(P):
        owned_p = set(plan.parts[p].owned.tolist())
        for q in range(P):
            sent = plan.boundary(p, q)
            assert sent.tolist() == sorted(ring1[q] & owned_p) if p != q else sent.numel() == 0
            assert torch.equal(plan.parts[q].recv_from(p, plan), sent)
    st = partition_stats(plan, data)
    assert st.edge_cut == nx_edge_cut(ei, n, plan.assignment, P)
    assert st.comm_volume == int(plan.boundary_sizes().sum()) == sum(len(r) for r in ring1)


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def karate():
    return load("karate")


@pytest.fixture(scope="module")
def small_csbm():
    return load("csbm", num_nodes=300, avg_degree=6.0, seed=1)


@pytest.fixture(scope="module")
def directed():
    """A directed graph with an isolated node (7) and a self-loop."""
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 2, 3, 8], [1, 2, 3, 4, 5, 6, 0, 5, 3, 0]])
    return Data(edge_index=ei, num_nodes=9, train_mask=torch.tensor([1, 0, 1, 0, 1, 0, 1, 0, 0]).bool())


# ------------------------------------------------------------------------------------------ plans

@pytest.mark.parametrize("method", EDGE_CUT)
@pytest.mark.parametrize("hops", [0, 1, 3])
def test_edge_cut_plans_match_brute_force(karate, method, hops):
    plan = partition(karate, 3, method, hops=hops)
    assert plan.kind == "edge-cut" and plan.hops == hops
    check_edge_cut_plan(plan, karate)


@pytest.mark.parametrize("method", EDGE_CUT)
def test_directed_graph_with_isolated_node(directed, method):
    plan = partition(directed, 3, method, hops=2)
    check_edge_cut_plan(plan, directed)


def test_metis_notes_symmetrised_directed_input(directed, karate):
    assert any("symmetrised" in n for n in partition(directed, 2, "metis").notes)
    assert any("symmetrised" in n for n in partition(directed, 2, "ldg").notes)
    assert partition(karate, 2, "metis", ufactor=100).options == {"ufactor": 100}
    assert not partition(karate, 2, "metis").notes
    assert any("symmetrised" in n for n in partition_stats(partition(directed, 2, "metis"), directed).notes)


def test_halo_growth_matches_plan_rings(small_csbm):
    plan = partition(small_csbm, 4, "metis", hops=3)
    growth = halo_growth(small_csbm, plan.assignment, 4, 3)
    for p, part in enumerate(plan.parts):
        assert growth[p].tolist() == [part.halo(h).numel() for h in (1, 2, 3)]


def test_stats_definitions(karate):
    plan = partition(karate, 2, "range", hops=2)
    st = partition_stats(plan, karate)
    d = st.as_dict()
    for key in ("method", "num_parts", "num_nodes", "num_edges", "edge_cut", "comm_volume", "replication_factor",
                "balance", "seconds", "per_part"):
        assert key in d
    assert set(d["balance"]) == {"nodes", "edges", "train"}
    assert all({"owned", "halo", "edges", "train"} <= set(r) for r in d["per_part"])
    assert st.num_undirected_edges == 78 and st.num_edges == 156
    assert st.replication_factor == pytest.approx(sum(r["owned"] + r["halo"] for r in st.per_part) / 34)
    assert [r["halo"] for r in st.per_part] == [p.halo(2).numel() for p in plan.parts]
    assert st.balance["nodes"] == pytest.approx(17 / 17)  # range: 17 + 17
    train = karate.train_mask
    assert [r["train"] for r in st.per_part] == [int(train[p.owned].sum()) for p in plan.parts]
    assert st.seconds == pytest.approx(st.timings["assign"] + st.timings["build"])
    assert "edge cut" in st.summary()


def test_random_and_range_definitions():
    data = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=10)
    assert partition(data, 3, "range").assignment.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    a = partition(data, 3, "random", seed=5).assignment
    assert a.min() >= 0 and a.max() < 3
    assert partition(data, 1, "metis").assignment.tolist() == [0] * 10


def test_metis_on_edgeless_graph_and_one_part(karate):
    data = Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=12)
    plan = partition(data, 3, "metis")
    assert torch.bincount(plan.assignment, minlength=3).tolist() == [4, 4, 4]
    assert partition(karate, 1, "metis").assignment.unique().tolist() == [0]


# ------------------------------------------------------------------------------------------ determinism

@pytest.mark.parametrize("method", METHODS)
def test_deterministic_for_a_seed(small_csbm, method):
    a = partition(small_csbm, 4, method, seed=3)
    b = partition(small_csbm, 4, method, seed=3)
    assert torch.equal(a.assignment, b.assignment)
    if a.edge_assignment is not None:
        assert torch.equal(a.edge_assignment, b.edge_assignment)
    if method not in ("range",):
        c = partition(small_csbm, 4, method, seed=4)
        differs = not torch.equal(a.assignment, c.assignment) or (
            a.edge_assignment is not None and not torch.equal(a.edge_assignment, c.edge_assignment))
        assert differs, f"{method}: the seed changes nothing"


# ------------------------------------------------------------------------------------------ METIS

def test_metis_cuts_a_third_of_random_on_cora(planetoid_root):
    cora = load("cora", root=planetoid_root)
    metis = partition_stats(partition(cora, 4, "metis"), cora).edge_cut
    rnd = partition_stats(partition(cora, 4, "random"), cora).edge_cut
    assert metis <= rnd / 3, (metis, rnd)


def test_metis_ctypes_path_equals_pymetis(small_csbm):
    xadj, adjncy, _ = symmetric_csr(small_csbm.edge_index, small_csbm.num_nodes)
    ones = np.ones((small_csbm.num_nodes, 1), dtype=np.int64)
    via_ctypes = _kway_ctypes(xadj, adjncy, 4, ones, {"seed": 2})
    via_pymetis = partition(small_csbm, 4, "metis", seed=2).assignment.numpy()
    assert np.array_equal(via_ctypes, via_pymetis)


def test_metis_balance_train_spreads_training_nodes():
    data = load("csbm", num_nodes=4000, homophily=0.95, avg_degree=8.0, seed=0)
    data.train_mask = data.y == 0  # training nodes all in one community: METIS alone keeps them together
    plain = partition_stats(partition(data, 4, "metis"), data)
    balanced = partition_stats(partition(data, 4, "metis", balance="train"), data)
    both = partition_stats(partition(data, 4, "metis", balance=("train", "degree")), data)
    assert plain.balance["train"] > 2.0
    assert balanced.balance["train"] < 1.15 and both.balance["train"] < 1.15
    assert both.balance["edges"] < 1.15 and both.balance["nodes"] < 1.15
    assert partition(data, 4, "metis", balance="train").options["balance"] == ["train"]


# ------------------------------------------------------------------------------------------ streaming

@pytest.mark.parametrize("method", ["ldg", "fennel"])
@pytest.mark.parametrize("order", ["random", "natural", "bfs", "degree"])
def test_streaming_kernel_equals_python_reference(small_csbm, method, order):
    n = small_csbm.num_nodes
    indptr, indices, _ = symmetric_adjacency(small_csbm.edge_index, n)
    neigh = [indices[indptr[v]:indptr[v + 1]].tolist() for v in range(n)]
    seq = stream_order(indptr, indices, order, seed=1).tolist()
    assert sorted(seq) == list(range(n))
    par = stream_parameters(method, n, indices.size // 2, 4)
    want = reference_stream(neigh, seq, 4, par["capacity"], fennel=par["fennel"], alpha=par["alpha"],
                            gamma=par["gamma"])
    got = streaming_assignment(small_csbm.edge_index, n, 4, method, seed=1, order=order)
    assert got.tolist() == want
    assert torch.bincount(got, minlength=4).max() <= par["capacity"]


def test_ldg_bfs_order_beats_random_partition(small_csbm):
    rnd = partition_stats(partition(small_csbm, 4, "random"), small_csbm).edge_cut
    ldg = partition_stats(partition(small_csbm, 4, "ldg", order="bfs"), small_csbm).edge_cut
    assert ldg < 0.8 * rnd


# ------------------------------------------------------------------------------------------ vertex-cut

def check_vertex_cut_plan(plan, data: Data) -> None:
    n, ei, P = data.num_nodes, data.edge_index, plan.num_parts
    assert plan.kind == "vertex-cut" and plan.edge_assignment.shape == (ei.size(1),)
    eids = torch.cat([p.local_edge_ids for p in plan.parts])
    assert torch.equal(torch.sort(eids).values, torch.arange(ei.size(1))), "every edge owned exactly once"
    masters = torch.zeros(n, dtype=torch.long)
    for part in plan.parts:
        masters[part.masters] += 1
        assert torch.all(plan.edge_assignment[part.local_edge_ids] == part.part)
        l2g = part.local_to_global
        assert torch.equal(l2g[part.local_edge_index], ei[:, part.local_edge_ids])
    assert torch.all(masters == 1), "exactly one master per node"
    # brute force replicas: parts of a node's edges, plus its master
    replicas = [{int(plan.assignment[v])} for v in range(n)]
    for e, (u, v) in enumerate(ei.t().tolist()):
        replicas[u].add(int(plan.edge_assignment[e]))
        replicas[v].add(int(plan.edge_assignment[e]))
    for part in plan.parts:
        present = {v for v in range(n) if part.part in replicas[v]}
        assert set(part.masters.tolist()) | set(part.mirrors.tolist()) == present
        assert not set(part.masters.tolist()) & set(part.mirrors.tolist())
    for p in range(P):
        for q in range(P):
            want = sorted(v for v in range(n) if plan.assignment[v] == p and q in replicas[v] and q != p)
            assert plan.boundary(p, q).tolist() == want
    # both directions of a link share a part
    key = {}
    for e, (u, v) in enumerate(ei.t().tolist()):
        k = (min(u, v), max(u, v))
        assert key.setdefault(k, int(plan.edge_assignment[e])) == int(plan.edge_assignment[e])
    st = partition_stats(plan, data)
    assert st.replication_factor == pytest.approx(sum(len(r) for r in replicas) / n)
    assert st.mirrors_per_node == pytest.approx(st.replication_factor - 1)
    assert st.edge_cut == 0 and st.comm_volume == sum(len(r) - 1 for r in replicas)


@pytest.mark.parametrize("method", VERTEX_CUT_METHODS)
def test_vertex_cut_invariants(karate, directed, method):
    check_vertex_cut_plan(partition(karate, 3, method), karate)
    check_vertex_cut_plan(partition(directed, 3, method), directed)


def test_hdrf_kernel_equals_python_reference(small_csbm):
    lo, hi, _ = _pairs(small_csbm.edge_index, small_csbm.num_nodes)
    got = pair_assignment("hdrf", lo, hi, small_csbm.num_nodes, 4, seed=2)
    order = np.random.default_rng(2).permutation(lo.numel()).tolist()
    assert got.tolist() == reference_hdrf(lo.tolist(), hi.tolist(), order, small_csbm.num_nodes, 4)


def test_vertex_cut_beats_random_on_replication():
    data = load("powerlaw", num_nodes=2000, avg_degree=8.0)
    rf = {m: partition_stats(partition(data, 4, m), data).replication_factor for m in VERTEX_CUT_METHODS}
    assert rf["dbh"] < rf["edge-random"] and rf["hdrf"] < rf["edge-random"]


def test_vertex_cut_hops_note(karate):
    plan = partition(karate, 2, "dbh", hops=2)
    assert plan.hops == 1 and any("hops=2 ignored" in n for n in plan.notes)


# ------------------------------------------------------------------------------------------ save / load

@pytest.mark.parametrize("method,hops", [("metis", 2), ("hdrf", 1), ("range", 0)])
def test_save_load_round_trip(tmp_path, karate, method, hops):
    plan = partition(karate, 3, method, hops=hops, seed=1)
    save_plan(plan, tmp_path / "plan")
    back = load_plan(tmp_path / "plan")
    for f in ("method", "kind", "num_parts", "num_nodes", "num_edges", "hops", "seed", "notes", "options",
              "seconds", "timings"):
        assert getattr(back, f) == getattr(plan, f), f
    assert torch.equal(back.assignment, plan.assignment)
    assert (back.edge_assignment is None) == (plan.edge_assignment is None)
    if plan.edge_assignment is not None:
        assert torch.equal(back.edge_assignment, plan.edge_assignment)
    for a, b in zip(plan.parts, back.parts, strict=True):
        assert torch.equal(a.owned, b.owned) and torch.equal(a.local_edge_index, b.local_edge_index)
        assert torch.equal(a.local_edge_ids, b.local_edge_ids)
        assert len(a.halo_rings) == len(b.halo_rings)
        assert all(torch.equal(x, y) for x, y in zip(a.halo_rings, b.halo_rings, strict=True))
        assert a.boundary.keys() == b.boundary.keys()
        assert all(torch.equal(a.boundary[q], b.boundary[q]) for q in a.boundary)
    assert torch.equal(load_part(tmp_path / "plan", 1).owned, plan.parts[1].owned)
    assert partition_stats(back, karate).as_dict() == partition_stats(plan, karate).as_dict()


def test_save_over_a_plan_with_more_parts(tmp_path, karate):
    save_plan(partition(karate, 4, "range"), tmp_path)
    save_plan(partition(karate, 2, "metis"), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("part*.pt")) == ["part0.pt", "part1.pt"]
    assert load_plan(tmp_path).method == "metis"


def test_a_worker_reads_what_it_receives_from_its_own_part_file(tmp_path, karate):
    """``load_part(...).recv[q]``: the rows q sends here, in arrival order; also for part files saved before
    they listed it (read from the senders' boundary sets)."""
    plan = partition(karate, 3, "metis")
    save_plan(plan, tmp_path)
    src, dst = karate.edge_index
    a = plan.assignment
    for p in range(3):
        recv = load_part(tmp_path, p).recv
        for q in range(3):
            if q == p:
                assert q not in recv
                continue
            # brute force: q's nodes with an edge into p
            want = sorted({int(u) for u, v in zip(src.tolist(), dst.tolist(), strict=True) if a[u] == q and a[v] == p})
            assert sorted(recv.get(q, torch.empty(0, dtype=torch.long)).tolist()) == want
            if q in recv:
                assert torch.equal(recv[q], plan.boundary(q, p))  # the sender's order
    for p in range(3):  # an older plan directory: no "recv" in the part files
        d = torch.load(tmp_path / f"part{p}.pt", weights_only=True)
        del d["recv"]
        torch.save(d, tmp_path / f"part{p}.pt")
    for p in range(3):
        recv = load_part(tmp_path, p).recv
        assert sorted(recv) == [q for q in range(3) if q != p and plan.boundary(q, p).numel()]
        assert all(torch.equal(recv[q], plan.boundary(q, p)) for q in recv)


def test_load_errors(tmp_path, karate):
    with pytest.raises(FileNotFoundError, match="plan.json"):
        load_plan(tmp_path)
    save_plan(partition(karate, 2, "range"), tmp_path / "p")
    with pytest.raises(ValueError, match="part must be in 0..1"):
        load_part(tmp_path / "p", 2)


# ------------------------------------------------------------------------------------------ user methods

def test_user_partitioner_is_an_extension_point(karate):
    def halves(data, num_parts):
        return (torch.arange(data.num_nodes) * num_parts) // data.num_nodes

    plan = partition(karate, 2, halves, hops=2)
    assert plan.method == "halves"
    assert torch.equal(plan.assignment, partition(karate, 2, "range").assignment)
    check_edge_cut_plan(plan, karate)
    assert partition(karate, 2, lambda d, k: np.zeros(d.num_nodes, dtype=np.int32)).assignment.sum() == 0
    assert partition(karate, 2, lambda d, k: [v % 2 for v in range(d.num_nodes)]).assignment[:3].tolist() == \
        [0, 1, 0]


@pytest.mark.parametrize("bad,match", [
    (lambda d, k: torch.zeros(d.num_nodes - 1, dtype=torch.long), r"shape \(33,\).*expected.*\(34,\)"),
    (lambda d, k: torch.zeros(d.num_nodes), "dtype torch.float32; part ids must be integers"),
    (lambda d, k: torch.zeros(d.num_nodes, dtype=torch.bool), "dtype torch.bool"),
    (lambda d, k: torch.full((d.num_nodes,), k), r"part id 2 \(node 0\); allowed part ids are 0..1"),
    (lambda d, k: -torch.ones(d.num_nodes, dtype=torch.long), "part id -1"),
    (lambda d, k: torch.zeros(d.num_nodes, 2, dtype=torch.long), r"shape \(34, 2\)"),
    (lambda d, k: "abc", "partitioner <lambda>"),
])
def test_user_partitioner_errors(karate, bad, match):
    with pytest.raises(ValueError, match=match):
        partition(karate, 2, bad)


# ------------------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs,match", [
    ({"num_parts": 0}, "num_parts must be between 1 and 34, got 0"),
    ({"num_parts": 35}, "num_parts must be between 1 and 34, got 35"),
    ({"num_parts": 2.5}, "num_parts must be an integer"),
    ({"num_parts": True}, "num_parts must be an integer"),
    ({"method": "metsi"}, "unknown partition method 'metsi'; valid methods: random, range, metis, ldg, fennel, "
                          "volume, edge-random, dbh, hdrf, cost"),
    ({"method": 3}, "unknown partition method 3"),
    ({"hops": -1}, "hops must be >= 0, got -1"),
    ({"seed": -2}, "seed must be >= 0"),
    ({"balance": "train,foo"}, "unknown balance key 'foo'; valid keys: train, degree"),
    ({"balance": ["nodes"]}, "unknown balance key 'nodes'"),
    ({"method": "random", "balance": "train"}, "balance=train needs method='metis'"),
    ({"method": "ldg", "order": "dfs"}, "unknown stream order 'dfs'; valid orders: random, natural, bfs, degree"),
    ({"method": "metis", "order": "bfs"}, "method 'metis' takes no option 'order'; allowed: ufactor"),
    ({"method": "fennel", "gamma": 1.0}, "gamma must be > 1"),
    ({"method": "fennel", "nu": "x"}, "option nu must be a number, got 'x'"),
    ({"method": "metis", "ufactor": 0}, "ufactor (METIS imbalance, in thousandths) must be >= 1, got 0"),
    ({"method": lambda d, k: [0] * 34, "order": "bfs"}, "apply to built-in methods only"),
])
def test_bad_input_gives_clear_errors(karate, kwargs, match):
    args = {"num_parts": 2, "method": "metis", **kwargs}
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        partition(karate, args.pop("num_parts"), args.pop("method"), **args)


def test_balance_train_needs_a_train_mask():
    data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]), num_nodes=4)
    with pytest.raises(ValueError, match="needs data.train_mask"):
        partition(data, 2, "metis", balance="train")
    st = partition_stats(partition(data, 2, "metis"), data)
    assert st.balance["train"] is None


def test_build_plan_rejects_bad_assignment(karate):
    with pytest.raises(ValueError, match="allowed part ids are 0..1"):
        build_plan(karate.edge_index, 34, torch.full((34,), 5), 2)


def test_stats_reject_a_plan_for_another_graph(karate, small_csbm):
    with pytest.raises(ValueError, match="plan was built for 34 nodes"):
        partition_stats(partition(karate, 2, "range"), small_csbm)


@pytest.mark.parametrize("method", ["random", "metis"])
def test_many_parts_take_the_sorting_path(karate, method):
    """More than 16 parts: build_plan groups by one stable sort instead of per-part scans; same definitions."""
    check_edge_cut_plan(partition(karate, 20, method, hops=2), karate)


def test_symmetric_adjacency_fast_and_general_paths(directed, karate):
    shuffled = Data(edge_index=karate.edge_index[:, torch.randperm(156, generator=torch.Generator().manual_seed(0))],
                    num_nodes=34)
    for data in (directed, karate, shuffled):
        n = data.num_nodes
        indptr, indices, was_directed = symmetric_adjacency(data.edge_index, n)
        g = nx.Graph()
        g.add_nodes_from(range(n))
        g.add_edges_from((u, v) for u, v in data.edge_index.t().tolist() if u != v)
        assert [indices[indptr[v]:indptr[v + 1]].tolist() for v in range(n)] == [sorted(g[v]) for v in range(n)]
        assert was_directed == (data is directed)
        assert np.all(np.diff(indptr) >= 0) and indptr[-1] == indices.size
