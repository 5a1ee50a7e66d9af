"""Vertex-cut (DistGNN-style) training: P workers train one process's model, move the bytes the replicas imply,
and count the work their edges are.

One launch per P runs a HaloReduce check and six training cases back to back (spawning is the slow part):
GCN and GraphSAGE with each of edge-random, dbh and hdrf, alternating between Cora (1433 features: layer 0
transforms first, so its partial sums send gradients back) and a 1001-node csbm graph with 8 features (layer 0
aggregates the replicated raw features first: no gradient returns). Expected bytes and work are computed here
from ``plan.edge_assignment`` and the masters with plain loops, not with the library's plan helpers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.dist import run
from dgnn_lab.dist.testing import TaggedContext
from dgnn_lab.execution.loop import worker_main
from dgnn_lab.partition import partition, save_plan
from dgnn_lab.train import TrainConfig, train
from tests.test_train_exact import EPOCHS, reference_runs

METHODS = ("edge-random", "dbh", "hdrf")


def replica_parts(edge_index: torch.Tensor, edge_assignment: torch.Tensor, num_nodes: int) -> list[set[int]]:
    """Brute force: for each node, the parts holding one of its edges."""
    out: list[set[int]] = [set() for _ in range(num_nodes)]
    for (u, v), p in zip(edge_index.t().tolist(), edge_assignment.tolist(), strict=True):
        out[u].add(p)
        out[v].add(p)
    return out


def mirror_sizes(holders: list[set[int]], masters: list[int], parts: int) -> np.ndarray:
    """``B[p, q]``: nodes whose master is on p with a mirror (an edge) on q != p."""
    b = np.zeros((parts, parts), dtype=np.int64)
    for v, ps in enumerate(holders):
        for q in ps:
            if q != masters[v]:
                b[masters[v], q] += 1
    return b


def reduce_check(ctx) -> dict:
    """HaloReduce on its own (float64, karate, hdrf): every replica holds a partial row ``R[part, v]``; the
    master must get the sum over v's replicas, and with ``loss = sum_masters <C[v], out[v]>`` every replica's
    gradient is ``C[v]`` (the master's gradient broadcast back)."""
    from dgnn_lab.partition.local_graph import VertexCutGraph
    from dgnn_lab.protocols.exchange import halo_reduce

    data = datasets.load("karate")
    p, me = ctx.world_size, ctx.rank
    plan = partition(data, p, "hdrf", seed=0)
    graph = VertexCutGraph.from_plan(plan, me, data.edge_index)
    gen = torch.Generator().manual_seed(7)
    r = torch.randn(p, data.num_nodes, 3, generator=gen, dtype=torch.float64)
    c = torch.randn(data.num_nodes, 3, generator=gen, dtype=torch.float64)
    holders = replica_parts(data.edge_index, plan.edge_assignment, data.num_nodes)
    masters = plan.assignment.tolist()
    full = r[me, graph.local_to_global].clone().requires_grad_(True)
    out = halo_reduce(full, graph, ctx.comm, layer=0)
    want = torch.stack([sum((r[q, v] for q in holders[v] | {masters[v]}), torch.zeros(3, dtype=torch.float64))
                        for v in graph.owned.tolist()])
    (out * c[graph.owned]).sum().backward()
    mirrors = sorted(graph.halo.tolist())
    return {"type": "reduce_check", "fwd_err": float((out - want).abs().max()),
            "bwd_err": float((full.grad - c[graph.local_to_global]).abs().max()), "mirrors": graph.num_halo,
            "mirrors_ok": mirrors == [v for v, ps in enumerate(holders) if me in ps and masters[v] != me]}


def several_cases(ctx, config: dict) -> None:
    """Worker entry: the HaloReduce check, then each config of ``config["cases"]`` in turn."""
    ctx.emit(reduce_check(ctx))
    for i, case in enumerate(config["cases"]):
        worker_main(TaggedContext(ctx, i), case)


def _cases(root) -> list[dict]:
    common = {"dropout": 0.0, "epochs": EPOCHS, "seed": 1, "lr": 0.01, "weight_decay": 5e-4,
              "eval_every": EPOCHS, "hidden": 16}
    cora = {"dataset": "cora", "dataset_args": {"root": str(root)}}
    csbm = {"dataset": "csbm", "dataset_args": {"num_nodes": 1001, "num_features": 8, "avg_degree": 6}}
    out = []
    for i, (model, layers) in enumerate((("gcn", 2), ("sage", 3))):
        for j, method in enumerate(METHODS):
            graph = cora if (i + j) % 2 == 0 else csbm
            out.append({**graph, **common, "model": model, "layers": layers, "partition": method})
    return out


def _widths(model_cfg: TrainConfig, data) -> list[tuple[int, bool]]:
    """Per layer, from the documented rules: floats per exchanged row (``min(in, out)``) and whether the
    partial sums' gradients return (not at layer 0 when it aggregates the raw features first)."""
    dims = [data.num_features] + [model_cfg.hidden] * (model_cfg.layers - 1) + [int(data.y.max()) + 1]
    return [(min(i, o), layer > 0 or o <= i) for layer, (i, o) in enumerate(zip(dims[:-1], dims[1:], strict=True))]


@pytest.fixture(scope="module")
def references(planetoid_root):
    return reference_runs(_cases(planetoid_root))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_vertex_cut_equals_one_process_bytes_and_work(workers, references, planetoid_root, tmp_path):
    cases = [{**c, "workers": workers} for c in _cases(planetoid_root)]
    result = run("tests.test_vertex_cut_train:several_cases", {"cases": cases}, workers, run_dir=tmp_path / "run",
                 timeout_s=180)
    assert result.status == "done"
    checks = [r for r in result.records if r["type"] == "reduce_check"]
    assert len(checks) == workers and sum(r["mirrors"] for r in checks) > 0
    assert all(r["fwd_err"] < 1e-12 and r["bwd_err"] == 0.0 and r["mirrors_ok"] for r in checks), checks
    diffs = []
    for i, (cfg, data, ref) in enumerate(references):
        label = f"case {i} ({cfg.model}, {cfg.partition}, {cfg.dataset}, P={workers})"
        eps = [r for r in result.records if r["type"] == "epoch" and r.get("case") == i]
        starts = {r["rank"]: r for r in result.records if r["type"] == "start" and r.get("case") == i}
        assert len(eps) == EPOCHS * workers and len(starts) == workers
        assert {r["execution"] for r in starts.values()} == {"vertex-cut"}

        # 1. exactness: every worker reports the same global loss, equal to one PyG process's
        loss = np.zeros((workers, EPOCHS))
        for r in eps:
            loss[r["rank"], r["epoch"]] = r["loss"]
        assert np.ptp(loss, axis=0).max() == 0.0, label
        diff = float(np.abs(loss[0] - np.array(ref["loss"])).max())
        diffs.append(diff)
        assert diff < 1e-5, f"{label}: max loss difference {diff:.3g}"
        assert eps[-1]["test_acc"] == pytest.approx(ref["test_acc"][-1], abs=2e-3), label

        # 2. bytes per purpose and (sender, receiver), from the replicas computed here
        plan = partition(data, workers, cfg.partition, seed=cfg.seed)
        holders = replica_parts(data.edge_index, plan.edge_assignment, data.num_nodes)
        masters = plan.assignment.tolist()
        b = mirror_sizes(holders, masters, workers)
        layers = _widths(cfg, data)
        want: dict[str, np.ndarray] = {}
        for layer, (width, back) in enumerate(layers):
            nbytes = b * width * 4  # p's masters mirrored on q: rows p -> q
            if layer > 0:  # layer 0 broadcasts nothing: every replica has its features
                want[f"halo_fwd/L{layer}"] = nbytes
                want[f"halo_bwd/L{layer}"] = nbytes.T
            want[f"halo_reduce/L{layer}"] = nbytes.T  # partial sums, mirror -> master
            if back:
                want[f"halo_reduce_bwd/L{layer}"] = nbytes
        for direction in ("sent", "recv"):
            got: dict[str, np.ndarray] = {}
            for r in eps:
                for peer, per in r[f"bytes_{direction}"].items():
                    for purpose, n in per.items():
                        if purpose.startswith("halo_"):
                            m = got.setdefault(purpose, np.zeros((workers, workers), dtype=np.int64))
                            src, dst = (r["rank"], int(peer)) if direction == "sent" else (int(peer), r["rank"])
                            m[src, dst] += n
            assert sorted(got) == sorted(k for k, v in want.items() if v.sum() > 0), label
            for purpose, m in got.items():
                np.testing.assert_array_equal(m, want[purpose] * EPOCHS, err_msg=f"{label} {purpose} {direction}")

        # 3. work: edges = the part's assigned edges; rows = its replicas; halo rows = the forward's bytes / width
        counts = torch.bincount(plan.edge_assignment, minlength=workers).tolist()
        for r in eps:
            p, work = r["rank"], r["work"]
            replicas = sum(1 for v, ps in enumerate(holders) if p in ps or masters[v] == p)
            assert work["edges"] == [counts[p]] * cfg.layers, label
            assert work["rows"] == [replicas] * cfg.layers, label
            for direction in ("sent", "recv"):
                rows = sum(n // (4 * layers[int(purpose.rsplit("L", 1)[1])][0])
                           for per in r[f"bytes_{direction}"].values() for purpose, n in per.items()
                           if purpose.startswith(("halo_fwd/", "halo_reduce/")))
                assert work[f"halo_rows_{direction}"] == rows, (label, direction)
        for p, s in starts.items():
            assert s["num_owned"] == masters.count(p) and s["num_local_edges"] == counts[p], label
            assert s["num_halo"] == int(b[:, p].sum()) and s["partition"] == cfg.partition, label
        assert sum(s["num_train"] for s in starts.values()) == int(data.train_mask.sum())
    print(f"P={workers}: max |loss diff| per case {[f'{d:.2g}' for d in diffs]}")


def test_plan_vertex_cut_bytes_equals_the_replicas_brute_force():
    from dgnn_lab.execution.models import plan_vertex_cut_bytes

    data = datasets.load("karate")
    widths, backward = [4, 3, 2], [False, True, True]
    for method in METHODS:
        for parts in (1, 3):
            plan = partition(data, parts, method, seed=3)
            b = mirror_sizes(replica_parts(data.edge_index, plan.edge_assignment, data.num_nodes),
                             plan.assignment.tolist(), parts)
            got = {k: v.numpy() for k, v in plan_vertex_cut_bytes(plan, widths, backward).items()}
            want = {"halo_reduce/L0": b.T * 16, "halo_fwd/L1": b * 12, "halo_bwd/L1": b.T * 12,
                    "halo_reduce/L1": b.T * 12, "halo_reduce_bwd/L1": b * 12, "halo_fwd/L2": b * 8,
                    "halo_bwd/L2": b.T * 8, "halo_reduce/L2": b.T * 8, "halo_reduce_bwd/L2": b * 8}
            assert sorted(got) == sorted(want)
            for k, v in want.items():
                np.testing.assert_array_equal(got[k], v, err_msg=f"{method} P={parts} {k}")


# ------------------------------------------------------------------------------------------- config

SMALL = {"dataset": "csbm", "dataset_args": {"num_nodes": 300, "avg_degree": 6, "num_features": 8, "num_classes": 2,
                                             "seed": 2}, "workers": 2, "epochs": 2, "eval_every": 2}


def _one_line_error(match: str, **kwargs) -> str:
    with pytest.raises(ValueError, match=match) as e:
        TrainConfig(**SMALL | kwargs)
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def test_a_vertex_cut_partition_picks_the_vertex_cut_execution_and_mismatches_are_refused(tmp_path):
    from dgnn_lab.train.api import prepare_run

    for method in METHODS:
        cfg = TrainConfig(**SMALL | {"partition": method})
        assert cfg.execution == "vertex-cut" and cfg.mode == "full-sync" and cfg.halo is None
    assert TrainConfig(**SMALL | {"partition": "metis"}).execution == "full-graph"
    data = datasets.load(SMALL["dataset"], **SMALL["dataset_args"])
    plan = partition(data, 2, "hdrf")
    assert TrainConfig(**SMALL | {"partition": plan}).execution == "vertex-cut"
    save_plan(plan, tmp_path / "hdrf")
    saved = TrainConfig(**SMALL, partition_dir=str(tmp_path / "hdrf"))
    assert saved.execution == "vertex-cut" and saved.partition == "hdrf"
    assert TrainConfig.from_dict(saved.to_dict()).execution == "vertex-cut"  # what a worker rebuilds

    msg = _one_line_error("vertex-cut", partition="hdrf", execution="full-graph")
    assert "'hdrf'" in msg and "'full-graph'" in msg
    msg = _one_line_error("edge-cut", partition="metis", execution="vertex-cut")
    assert "'metis'" in msg and "'vertex-cut'" in msg
    for mode in ("minibatch", "local-sgd", "full-stale"):
        msg = _one_line_error("vertex-cut", partition="dbh", mode=mode)
        assert "'dbh'" in msg and mode in msg
    msg = _one_line_error("vertex-cut", partition=plan, execution="full-graph")
    assert "'hdrf'" in msg and "'full-graph'" in msg
    _one_line_error("edge-cut", partition_dir=str(save_plan(partition(data, 2, "range"), tmp_path / "range")),
                    execution="vertex-cut")
    _one_line_error("halo", partition="hdrf", halo="pipegcn")  # vertex-cut has no halo protocol
    cfg = TrainConfig(**SMALL | {"partition": "metis"})
    cfg.execution = "vertex-cut"  # the launching process's own check, behind the config's
    with pytest.raises(ValueError, match="kind 'edge-cut', but execution 'vertex-cut'"):
        prepare_run(cfg, tmp_path / "run", data)


@pytest.mark.slow
def test_train_dbh_end_to_end_through_the_launcher(tmp_path):
    result = train(**SMALL | {"partition": "dbh"}, run_dir=tmp_path / "run")
    assert result.status == "done"
    assert result.config["execution"] == "vertex-cut" and result.config["partition"] == "dbh"
    from dgnn_lab.partition import read_book

    assert read_book(tmp_path / "run" / "plan")["kind"] == "vertex-cut"
    eps = [r for r in result.records if r["type"] == "epoch"]
    assert len(eps) == 2 * 2 and all(np.isfinite(r["loss"]) and r["work"]["edges"][0] > 0 for r in eps)
    assert sum(r["work"]["edges"][0] for r in eps if r["epoch"] == 0) == int(
        datasets.load(SMALL["dataset"], **SMALL["dataset_args"]).edge_index.size(1))
    s = result.summary()
    assert s["status"] == "done" and s["test_acc"] is not None and s["halo_bytes"] > 0
