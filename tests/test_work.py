"""Work counted exactly: edges, rows and halo rows per worker per epoch, CPU time beside wall time, and the
causes of imbalance shown apart. Every oracle here is computed from the edge list and the assignment alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab import records as rec
from dgnn_lab.cli import main
from dgnn_lab.dist import RunResult
from dgnn_lab.partition import imbalance_causes, partition, partition_stats, plan_work

POWERLAW = {"num_nodes": 2000, "avg_degree": 8.0, "num_features": 8, "seed": 3}


def _in_edges_per_part(edge_index: torch.Tensor, assignment: torch.Tensor, parts: int) -> list[int]:
    """Edges whose destination each part owns: what its layers aggregate (a plain loop, no library helper)."""
    counts = [0] * parts
    for v in edge_index[1].tolist():
        counts[int(assignment[v])] += 1
    return counts


def _halo_in_and_out(edge_index: torch.Tensor, assignment: torch.Tensor, parts: int) -> tuple[list[int], list[int]]:
    """Rows each part receives (distinct remote sources of its in-edges) and sends, per synchronous layer."""
    need: set[tuple[int, int]] = set()  # (node, part that needs its row)
    for u, v in edge_index.t().tolist():
        pu, pv = int(assignment[u]), int(assignment[v])
        if pu != pv:
            need.add((u, pv))
    recv, sent = [0] * parts, [0] * parts
    for u, q in need:
        recv[q] += 1
        sent[int(assignment[u])] += 1
    return recv, sent


def test_plan_work_and_work_imbalance_equal_the_in_edges_of_owned_nodes():
    data = datasets.load("powerlaw", **POWERLAW)
    for method in ("random", "metis", "range"):
        plan = partition(data, 3, method)
        want = _in_edges_per_part(data.edge_index, plan.assignment, 3)
        assert plan_work(plan) == want
        st = partition_stats(plan, data)
        assert st.work_imbalance == pytest.approx(max(want) / (sum(want) / 3), rel=1e-12)
        assert st.work_imbalance == st.balance["edges"]


def test_vertex_cut_plan_work_is_the_edges_assigned_to_each_part():
    data = datasets.load("powerlaw", **POWERLAW)
    for method in ("edge-random", "dbh", "hdrf"):
        plan = partition(data, 4, method)
        want = np.bincount(plan.edge_assignment.numpy(), minlength=4).tolist()
        assert plan_work(plan) == want
        assert partition_stats(plan, data).work_imbalance == pytest.approx(max(want) / np.mean(want))


def test_imbalance_causes_apart():
    data = datasets.load("powerlaw", **POWERLAW)
    plan = partition(data, 3, "random")
    causes = imbalance_causes(partition_stats(plan, data), straggler=[2, 3.0])
    assert list(causes) == ["nodes", "edges", "train", "halo_recv", "halo_sent", "hardware"]
    a = plan.assignment
    nodes = torch.bincount(a, minlength=3).tolist()
    train = torch.bincount(a[data.train_mask], minlength=3).tolist()
    recv, sent = _halo_in_and_out(data.edge_index, a, 3)
    assert causes["nodes"]["per_part"] == nodes
    assert causes["edges"]["per_part"] == _in_edges_per_part(data.edge_index, a, 3)
    assert causes["train"]["per_part"] == train
    assert causes["halo_recv"]["per_part"] == recv and causes["halo_sent"]["per_part"] == sent
    assert causes["hardware"]["per_part"] == [1.0, 1.0, 3.0]
    assert causes["hardware"]["imbalance"] == pytest.approx(3.0 / (5.0 / 3))
    assert causes["train"]["imbalance"] == pytest.approx(max(train) / (sum(train) / 3))
    with pytest.raises(ValueError, match="straggler rank must be in"):
        imbalance_causes(partition_stats(plan, data), straggler=[3, 2.0])


def _epoch(rank: int, epoch: int, edges: list[int], cpu: float, compute: float) -> dict:
    return {"type": "epoch", "rank": rank, "epoch": epoch, "epoch_s": compute + 0.1, "compute_s": compute,
            "comm_s": 0.0, "wait_s": 0.0, "cpu_s": cpu, "loss": 1.0,
            "work": {"rows": [10, 10], "edges": edges, "halo_rows_sent": 3, "halo_rows_recv": 4}}


def test_work_statistics_from_records():
    recs = [_epoch(0, e, [30, 30], 0.2, 0.5) for e in range(2)] + [_epoch(1, e, [10, 10], 0.1, 0.5)
                                                                   for e in range(2)]
    tot = rec.work_totals(recs, 2)
    assert tot[0] == {"rank": 0, "epochs": 2, "rows": 40, "edges": 120, "halo_rows_sent": 6, "halo_rows_recv": 8}
    assert rec.work_imbalance(recs, 2) == pytest.approx(120 / 80)
    assert rec.cpu_imbalance(recs, 2) == pytest.approx(0.4 / 0.3)
    assert rec.imbalance(recs, 2) == pytest.approx(1.0)  # equal wall time, unequal work: contention hides it
    w = rec.worker_totals(recs, 2)
    assert w[0]["work"]["edges"] == 60 and w[1]["cpu_s"] == pytest.approx(0.2)
    s = rec.summary(recs, world_size=2)
    assert s["work_imbalance"] == pytest.approx(1.5) and s["cpu_imbalance"] == pytest.approx(0.4 / 0.3)
    old = [{k: v for k, v in r.items() if k not in ("work", "cpu_s")} for r in recs]  # runs recorded before
    assert rec.work_imbalance(old, 2) is None and rec.cpu_imbalance(old, 2) is None
    assert rec.worker_totals(old, 2)[0]["cpu_s"] is None


def test_epoch_work_takes_forward_halo_rows_from_the_communicator():
    rows = {"halo_fwd/L0": [5, 7], "halo_bwd/L0": [7, 5], "halo_reduce/L1": [2, 1], "fetch_resp": [4, 9],
            "eval": [100, 100], "grad_allreduce": [1, 1]}
    w = rec.epoch_work({"rows": (3, 3), "edges": [8, 8]}, rows)
    assert w == {"rows": [3, 3], "edges": [8, 8], "halo_rows_sent": 5 + 2 + 4, "halo_rows_recv": 7 + 1 + 9}
    assert rec.epoch_work({"halo_rows_sent": 1, "halo_rows_recv": 2}, rows)["halo_rows_sent"] == 1


@pytest.mark.slow
def test_full_graph_run_counts_work_exactly_and_reports_it(tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ["train", "--dataset", "powerlaw", *[f"--dataset-arg={k}={v}" for k, v in POWERLAW.items()],
            "--workers", "3", "--partition", "metis", "--partition-arg", "balance=train", "--epochs", "2",
            "--eval-every", "0", "--layers", "2", "--run-dir", str(run_dir)]
    assert main([*args, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    data = datasets.load("powerlaw", **POWERLAW)
    result = RunResult.load(run_dir)
    plan_book = json.loads((run_dir / "plan" / "plan.json").read_text())
    assert plan_book["options"]["balance"] == ["train"]  # --partition-arg reached the partitioner
    from dgnn_lab.partition import load_assignment

    a = load_assignment(run_dir / "plan")
    edges = _in_edges_per_part(data.edge_index, a, 3)
    recv, sent = _halo_in_and_out(data.edge_index, a, 3)
    assert s["work_imbalance"] == pytest.approx(max(edges) / (sum(edges) / 3), rel=1e-12)
    for w in s["workers"]:  # per epoch, summed over the 2 layers
        p = w["rank"]
        assert w["work"] == {"rows": 2 * int((a == p).sum()), "edges": 2 * edges[p],
                             "halo_rows_sent": 2 * sent[p], "halo_rows_recv": 2 * recv[p]}
        assert 0 < w["cpu_s"]
    for r in rec.epoch_records(result.records):
        assert r["work"]["edges"] == [edges[r["rank"]]] * 2
    assert s["cpu_imbalance"] is not None and s["imbalance"] is not None
    from dgnn_lab.cli.train import report

    out = report(s)  # what the same run prints without --json
    assert f"imbalance     work {s['work_imbalance']:.3f} (max / mean edges aggregated), cpu" in out
    assert "edges" in out.split("per worker")[1].splitlines()[1]


@pytest.mark.slow
def test_minibatch_work_counts_sampled_nodes_and_edges(tmp_path):
    from dgnn_lab.train import train

    result = train(dataset="powerlaw", dataset_args=POWERLAW, workers=2, mode="minibatch", fanouts=[4, 3],
                   batch_size=128, epochs=1, eval_every=0, run_dir=str(tmp_path / "run"))
    starts = {r["rank"]: r for r in result.records if r["type"] == "start"}
    steps = [r for r in result.records if r["type"] == "step"]
    for r in rec.epoch_records(result.records):
        w = r["work"]
        assert w["rows"][-1] == starts[r["rank"]]["num_train"]  # the last layer's outputs are the seeds
        assert w["sampled_edges"] == sum(w["edges"]) > 0
        assert w["sampled_nodes"] == sum(s["input_nodes"] for s in steps if s["rank"] == r["rank"] and s["seeds"])
        assert w["halo_rows_recv"] == r["remote_rows_fetched"]  # remote feature rows are a mini-batch's halo
    s = result.summary()
    assert s["work_imbalance"] == pytest.approx(
        max(t["edges"] for t in rec.work_totals(result.records)) / np.mean(
            [t["edges"] for t in rec.work_totals(result.records)]))
