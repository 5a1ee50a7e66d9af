"""The cost model (fit, prediction from a plan, the ``cost`` partitioner) and the remedies trained side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.partition import partition
from dgnn_lab.partition.cost import CostModel, cost_assignment, fit_cost_model, plan_features, range_by_cost
from tests.test_work import _halo_in_and_out, _in_edges_per_part

GRAPH = {"num_nodes": 1200, "avg_degree": 8.0, "num_features": 8, "seed": 2}
COEF = (2e-7, 3e-6, 1e-9, 4e-3)


def _fake_run(features: list[list[float]], extra_wait: float) -> list[dict]:
    """Epoch records of a run whose worker p is busy exactly COEF . features[p] seconds each epoch."""
    out = []
    for epoch in range(3):
        busy = [float(np.dot(COEF, [*f, 1.0])) for f in features]
        for p, f in enumerate(features):
            edges, rows, halo = f
            out.append({"type": "epoch", "rank": p, "epoch": epoch, "compute_s": busy[p] * 0.75,
                        "comm_s": busy[p] * 0.25, "wait_s": max(busy) - busy[p], "epoch_s": max(busy) + extra_wait,
                        "work": {"rows": [rows / 2, rows / 2], "edges": [edges / 2, edges / 2]},
                        "bytes_sent": {str(1 - p): {"halo_fwd/L0": halo / 2}},
                        "bytes_recv": {str(1 - p): {"halo_fwd/L0": halo / 2}}})
    return out


def test_fit_recovers_known_coefficients_and_the_overhead():
    rng = np.random.default_rng(0)
    runs = [_fake_run([[rng.integers(1e4, 1e6), rng.integers(1e3, 1e5), 2 * rng.integers(1e5, 1e7)]
                       for _ in range(2)], extra_wait=0.002) for _ in range(6)]
    model = fit_cost_model(runs, layers=2, widths=[16, 4], backward=[True, True])
    np.testing.assert_allclose(model.coefficients, COEF, rtol=1e-6, atol=1e-12)
    assert model.overhead == pytest.approx(0.002, abs=1e-9)
    assert len(model.samples) == 12
    with pytest.raises(ValueError, match="at least 4 worker samples"):
        fit_cost_model(runs[:1], layers=2, widths=[16, 4], backward=[True, True])
    no_work = [{k: v for k, v in r.items() if k != "work"} for r in runs[0]]
    with pytest.raises(ValueError, match="carry no work counts"):
        fit_cost_model([no_work] * 3, layers=2, widths=[16, 4], backward=[True, True])


def test_plan_features_and_prediction_from_the_plan():
    data = datasets.load("powerlaw", **GRAPH)
    plan = partition(data, 3, "random")
    widths, backward = [16, 4], [True, False]
    x = plan_features(plan, 2, widths, backward)
    recv, sent = _halo_in_and_out(data.edge_index, plan.assignment, 3)
    per_row = 4 * (16 * 2 + 4 * 1)  # bytes a boundary row costs per epoch: both layers, layer 0 also backward
    np.testing.assert_array_equal(x[:, 0], 2 * np.array(_in_edges_per_part(data.edge_index, plan.assignment, 3)))
    np.testing.assert_array_equal(x[:, 1], 2 * torch.bincount(plan.assignment, minlength=3).numpy())
    np.testing.assert_array_equal(x[:, 2], per_row * (np.array(recv) + np.array(sent)))
    model = CostModel(*COEF, layers=2, widths=widths, backward=backward, overhead=0.01)
    assert model.predict_epoch(plan) == pytest.approx(float((x @ np.array(COEF)).max()) + 0.01)


def test_the_volume_candidate_is_left_out_of_large_graphs_unless_asked(monkeypatch):
    import dgnn_lab.partition.cost as cost

    data = datasets.load("powerlaw", **GRAPH)
    model = CostModel(*COEF, layers=2, widths=[16, 4], backward=[True, True])
    monkeypatch.setattr(cost, "VOLUME_CANDIDATE_NODES", 1000)
    notes: list[str] = []
    assert "volume-cost" not in cost.cost_candidates(data.edge_index, data.num_nodes, 3, model, notes=notes)
    assert "the volume candidate was left out (1,200 nodes > 1,000" in notes[0]
    assert "volume-cost" in cost.cost_candidates(data.edge_index, data.num_nodes, 3, model, volume=True)


def test_range_by_cost_is_contiguous_and_balanced():
    cost = np.random.default_rng(1).pareto(1.5, 5000) + 1
    part = range_by_cost(cost, 4).numpy()
    assert (np.diff(part) >= 0).all() and set(part.tolist()) == {0, 1, 2, 3}
    sums = np.bincount(part, weights=cost, minlength=4)
    assert sums.max() - sums.min() <= 2 * cost.max()


def test_cost_partitioner_picks_the_smallest_prediction_and_trains_by_path(tmp_path):
    data = datasets.load("powerlaw", **GRAPH)
    model = CostModel(*COEF, layers=2, widths=[16, 4], backward=[True, True])
    path = model.save(tmp_path / "model.json")
    assert CostModel.load(path).coefficients.tolist() == list(COEF)
    notes: list[str] = []
    chosen = cost_assignment(data.edge_index, data.num_nodes, 3, path, notes=notes)
    from dgnn_lab.partition.cost import cost_candidates
    from dgnn_lab.partition.plan import build_plan

    preds = {n: model.predict_epoch(build_plan(data.edge_index, data.num_nodes, a, 3))
             for n, a in cost_candidates(data.edge_index, data.num_nodes, 3, model).items()}
    assert model.predict_epoch(build_plan(data.edge_index, data.num_nodes, chosen, 3)) == min(preds.values())
    assert notes[0].startswith(f"cost: chose {min(preds, key=preds.get)} ")
    plan = partition(data, 3, "cost", model=str(path))
    assert torch.equal(plan.assignment, chosen) and plan.options["model"] == str(path)
    assert "volume-cost" in plan.notes[0]
    assert "volume-cost" not in partition(data, 3, "cost", model=str(path), volume="false").notes[0]
    with pytest.raises(ValueError, match="option volume .* must be true or false, got 'maybe'"):
        partition(data, 3, "cost", model=str(path), volume="maybe")
    with pytest.raises(ValueError, match="method 'cost' needs model="):
        partition(data, 3, "cost")
    (tmp_path / "bad.json").write_text(json.dumps({"a": 1}))
    with pytest.raises(ValueError, match="bad.json is not a cost model"):
        partition(data, 3, "cost", model=str(tmp_path / "bad.json"))


@pytest.mark.slow
def test_remedies_and_calibration_train_for_real(tmp_path):
    from dgnn_lab.experiments.imbalance import calibrate, frontier, remedies, validate
    from dgnn_lab.partition import load_plan

    base = {"dataset": "powerlaw", "dataset_args": GRAPH, "workers": 2, "epochs": 3, "eval_every": 0}
    model, fit = calibrate(base, ("random", "metis"), root=tmp_path / "runs", progress=False)
    assert len(model.samples) == 4 and model.settings["workers"] == 2
    assert model.widths == [8, 4] and model.layers == 2  # 8 features -> hidden 16 -> 4 classes: min(in, out)
    rem = remedies(base, ["metis", "cost model"], cost_model=model, root=tmp_path / "runs", progress=False)
    assert rem.table.set_index("name").loc["metis", "cached"]  # the calibration's run, re-opened
    table = frontier(rem)
    assert set(table["name"]) == {"metis", "cost model"} and table["on_frontier"].any()
    assert load_plan(Path(rem.results["cost model"].run_dir) / "plan").method == "cost"
    checked = validate(model, {"cost model": rem.results["cost model"]})
    assert np.isfinite(checked["error"]).all() and checked.loc[0, "predicted_s"] > 0


@pytest.mark.slow
def test_cli_trains_volume_vertex_cut_and_cost_and_reports_work(tmp_path, capsys):
    from dgnn_lab.cli import main

    model = CostModel(*COEF, layers=2, widths=[8, 4], backward=[True, True]).save(tmp_path / "model.json")
    common = ["train", "--dataset", "powerlaw", *[f"--dataset-arg={k}={v}" for k, v in GRAPH.items()],
              "--workers", "2", "--epochs", "2", "--eval-every", "0", "--json"]
    for i, extra in enumerate((["--partition", "volume"], ["--partition", "hdrf"],
                               ["--partition", "cost", "--partition-arg", f"model={model}"])):
        assert main([*common, *extra, "--run-dir", str(tmp_path / f"run{i}")]) == 0, extra
        s = json.loads(capsys.readouterr().out)
        assert s["status"] == "done" and s["config"]["partition"] == extra[1]
        assert s["work_imbalance"] >= 1.0 and s["cpu_imbalance"] is not None
        assert all(w["work"]["edges"] > 0 and w["cpu_s"] > 0 for w in s["workers"])
        if extra[1] == "hdrf":  # vertex-cut: the work is the edges assigned to each part
            assert s["config"]["execution"] == "vertex-cut"
            assert any(p.startswith("halo_reduce") for p in _purposes(s))
            from dgnn_lab.partition import load_plan

            edges = np.bincount(load_plan(Path(s["run_dir"]) / "plan").edge_assignment.numpy(), minlength=2)
            assert s["work_imbalance"] == pytest.approx(edges.max() / edges.mean(), rel=1e-12)
    rc = main([*common, "--partition", "cost", "--partition-arg", f"model={tmp_path / 'none.json'}", "--run-dir",
               str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and "no cost model at" in err and err.count("\n") == 1


def _purposes(summary: dict) -> set[str]:
    from dgnn_lab.dist import RunResult

    recs = RunResult.load(summary["run_dir"]).records
    return {p for r in recs if r["type"] == "epoch" for per in r.get("bytes_sent", {}).values() for p in per}
