"""Full-graph training pieces that need no extra process: config checks, the local graph, the layers' math,
and one worker (world_size 1) run in this process against single-process PyG."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv, SAGEConv

from dgnn_lab import datasets
from dgnn_lab.dist import Communicator, WorkerContext
from dgnn_lab.execution.loop import worker_main
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.execution.reference import copy_weights, reference_model, train_reference
from dgnn_lab.partition import build_plan, partition
from dgnn_lab.train import LocalGraph, TrainConfig, global_in_degree, make_config, plan_halo_bytes, train

# ------------------------------------------------------------------------------------------- config


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "gat"}, "unknown model 'gat'; allowed: gcn, sage"),
    ({"mode": "stale"}, "unknown mode 'stale'; allowed: full-sync"),
    ({"partition": "hdrfx"}, "unknown partition 'hdrfx'; allowed: random, range, metis"),
    ({"backend": "mpi"}, "unknown backend 'mpi'; allowed: auto, gloo, nccl"),
    ({"workers": 0}, "workers must be an integer >= 1, got 0"),
    ({"hidden": 0}, "hidden must be an integer >= 1, got 0"),
    ({"layers": 0}, "layers must be an integer >= 1, got 0"),
    ({"epochs": 2.5}, "epochs must be an integer >= 1, got 2.5"),
    ({"dropout": 1.0}, r"dropout must be in \[0.0, 1.0\), got 1.0"),
    ({"lr": 0}, "lr must be > 0"),
    ({"dataset": "imagenet"}, "unknown dataset 'imagenet'; valid names: karate"),
    ({"dataset": "csbm", "dataset_args": {"nodes": 5}}, "takes no parameter 'nodes'; allowed: num_nodes"),
    ({"workers": True}, "workers must be an integer"),
])
def test_config_rejects_bad_values_by_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = TrainConfig(dataset="CSBM", dataset_args={"num_nodes": 100}, model="SAGE", workers=3)
    assert (cfg.dataset, cfg.model) == ("csbm", "sage")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config key 'hiden'; allowed: dataset"):
        TrainConfig.from_dict({"hiden": 16})
    assert make_config(cfg, epochs=3).epochs == 3


def test_train_validates_before_starting_any_process(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match="unknown model"):
        train(model="gin", run_dir=str(run_dir))
    assert not run_dir.exists()


# -------------------------------------------------------------------------------------- local graph

def _line_graph() -> Data:
    """0-1-2-3-4-5 (both directions) plus a self-loop on 2 and a duplicate edge 4->5."""
    src = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 2, 4]
    dst = [1, 0, 2, 1, 3, 2, 4, 3, 5, 4, 2, 5]
    return Data(edge_index=torch.tensor([src, dst]), num_nodes=6)


def test_local_graph_layout_send_and_recv_agree():
    g = _line_graph()
    assignment = torch.tensor([0, 1, 0, 1, 2, 2])  # 3 parts, interleaved so halos have several peers
    plan = build_plan(g.edge_index, 6, assignment, 3)
    graphs = [LocalGraph.from_plan(plan, p, g.edge_index) for p in range(3)]
    for p, lg in enumerate(graphs):
        assert lg.owned.tolist() == (assignment == p).nonzero().flatten().tolist()
        assert sorted(lg.halo.tolist()) == plan.parts[p].halo_rings[0].tolist()
        assert int(lg.edge_index[1].max()) < lg.num_owned  # every local edge ends at an owned node
        for q in range(3):
            # rows p sends to q, read through p's layout, are exactly what q expects in its slots for p
            sent = lg.local_to_global[lg.send_index[q]]
            slots = graphs[q].recv_slots[p]
            assert sent.tolist() == graphs[q].local_to_global[slots.start:slots.stop].tolist()
    # local edges, mapped back to global ids, are exactly the edges into owned nodes (duplicates kept)
    for lg in graphs:
        l2g = lg.local_to_global
        got = sorted(zip(l2g[lg.edge_index[0]].tolist(), l2g[lg.edge_index[1]].tolist(), strict=True))
        owned = set(lg.owned.tolist())
        want = sorted((s, d) for s, d in g.edge_index.t().tolist() if d in owned)
        assert got == want


def test_gcn_adjacency_uses_global_degrees_like_pyg():
    """Row v of A times the full feature matrix is PyG's normalised aggregation, even for halo sources."""
    g = _line_graph()
    plan = build_plan(g.edge_index, 6, torch.tensor([0, 0, 0, 1, 1, 1]), 2)
    x = torch.randn(6, 3, dtype=torch.float64)
    conv = GCNConv(3, 3, bias=False).double()
    with torch.no_grad():
        conv.lin.weight.copy_(torch.eye(3))
        want = conv(x, g.edge_index)
    deg = global_in_degree(g.edge_index, 6, self_loops=True)
    for p in range(2):
        lg = LocalGraph.from_plan(plan, p, g.edge_index).build_adjacency("gcn", deg)
        got = lg.adj.double() @ x[lg.local_to_global]
        torch.testing.assert_close(got, want[lg.owned], atol=1e-6, rtol=0)
        sage = LocalGraph.from_plan(plan, p, g.edge_index).build_adjacency("sage")
        mean = SAGEConv(3, 3, aggr="mean").double()
        with torch.no_grad():
            mean.lin_l.weight.copy_(torch.eye(3))
            mean.lin_l.bias.zero_()
            mean.lin_r.weight.zero_()
            want_mean = mean(x, g.edge_index)
        torch.testing.assert_close(sage.adj.double() @ x[sage.local_to_global], want_mean[sage.owned])


def test_plan_halo_bytes_counts_forward_and_backward():
    g = _line_graph()
    plan = build_plan(g.edge_index, 6, torch.tensor([0, 0, 0, 1, 1, 1]), 2)
    out = plan_halo_bytes(plan, [16, 7], [False, True])
    assert out["halo_fwd/L0"].tolist() == [[0, 64], [64, 0]]  # node 2 -> part 1, node 3 -> part 0
    assert "halo_bwd/L0" not in out
    assert out["halo_bwd/L1"].tolist() == out["halo_fwd/L1"].t().tolist() == [[0, 28], [28, 0]]


@pytest.mark.parametrize("model", ["gcn", "sage"])
def test_model_widths_and_backward_layers(model):
    wide = DistGNN(model, 100, 16, 4, layers=3)  # 100 -> 16 -> 16 -> 4: transform first everywhere
    assert wide.exchange_widths() == [16, 16, 4] and wide.backward_layers() == [True, True, True]
    narrow = DistGNN(model, 8, 16, 4, layers=2)  # 8 -> 16: aggregate the raw features first
    assert narrow.exchange_widths() == [8, 4] and narrow.backward_layers() == [False, True]


# ------------------------------------------------------------------------ one worker, in this process

@pytest.fixture
def one_thread():
    """PyG and the worker on one thread (two threads on a busy 2-core machine mostly spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _solo_context(records: list) -> WorkerContext:
    comm = Communicator(0, 1, "cpu", "gloo")  # world_size 1 needs no process group
    return WorkerContext(rank=0, world_size=1, device=torch.device("cpu"), backend="gloo",
                         num_threads=torch.get_num_threads(), comm=comm, _sink=records.append)


@pytest.mark.parametrize("model, layers", [("gcn", 2), ("sage", 3)])
def test_one_worker_matches_pyg_exactly(planetoid_root, model, layers, one_thread):
    cfg = TrainConfig(dataset="cora", dataset_args={"root": str(planetoid_root)}, workers=1, model=model,
                      layers=layers, hidden=16, dropout=0.0, epochs=15, partition="range")
    records: list = []
    worker_main(_solo_context(records), cfg.to_dict())
    data = datasets.load("cora", root=planetoid_root)
    ref = train_reference(data, model=model, layers=layers, hidden=16, dropout=0.0, epochs=15)
    eps = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in eps] == list(range(15))
    loss = torch.tensor([r["loss"] for r in eps], dtype=torch.float64)
    assert (loss - torch.tensor(ref["loss"], dtype=torch.float64)).abs().max() < 1e-5
    assert [r["test_acc"] for r in eps] == pytest.approx(ref["test_acc"], abs=1e-3 + 1e-9)
    start = next(r for r in records if r["type"] == "start")
    assert (start["num_owned"], start["num_halo"]) == (2708, 0)
    assert all(r["bytes_sent"] == {} for r in eps)


def test_copy_weights_gives_identical_outputs():
    data = datasets.load("karate")
    plan = partition(data, 1, "range", seed=0, hops=1)
    for model in ("gcn", "sage"):
        ref = reference_model(model, 34, 8, 2, 2, 0.0, seed=3)
        dist_model = copy_weights(ref, DistGNN(model, 34, 8, 2, 2, 0.0))
        lg = LocalGraph.from_plan(plan, 0, data.edge_index)
        lg.build_adjacency(model, global_in_degree(data.edge_index, 34, self_loops=True))
        comm = Communicator(0, 1, "cpu", "gloo")
        torch.testing.assert_close(dist_model(data.x, lg, comm), ref(data.x, data.edge_index), atol=1e-6, rtol=1e-5)
        with pytest.raises(ValueError, match="architectures differ"):
            copy_weights(ref, DistGNN("gcn" if model == "sage" else "sage", 34, 8, 2, 2))


def test_worker_stops_at_an_epoch_boundary_when_asked(one_thread):
    """``ctx.should_stop()`` ends training after the current epoch (the flag rides on the loss all-reduce, so
    every worker stops at the same epoch); ``eval_every`` leaves accuracies None between evaluations."""
    records: list = []
    ctx = _solo_context(records)
    ctx._stop = lambda: sum(r["type"] == "epoch" for r in records) >= 2
    cfg = TrainConfig(dataset="karate", workers=1, epochs=50, eval_every=3, partition="range")
    out = worker_main(ctx, cfg.to_dict())
    eps = [r for r in records if r["type"] == "epoch"]
    assert out == {"epochs_run": 3} and [r["epoch"] for r in eps] == [0, 1, 2]
    assert eps[0]["test_acc"] is not None and eps[1]["test_acc"] is None and eps[2]["val_acc"] is None
    assert all(r["compute_s"] > 0 and r["fwd_rows"] == {"0": 0, "1": 0} for r in eps)
