"""P real worker processes train *the same model* as one PyG process, and move exactly the bytes the plan says.

One launch per P runs three cases back to back (spawning is the slow part here): a 2-layer GCN and a
3-layer GraphSAGE on Cora (METIS), and a GCN on a 1001-node csbm graph with 8 features (random partition,
so the first layer aggregates raw features before transforming and sends no gradient back). 1001 is
divisible by none of 2, 3, 4, and Cora's 2708 not by 3.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.dist import run
from dgnn_lab.dist.testing import TaggedContext
from dgnn_lab.execution.loop import worker_main
from dgnn_lab.execution.reference import train_reference
from dgnn_lab.partition import partition
from dgnn_lab.train import LocalGraph, TrainConfig, halo_exchange

EPOCHS = 10




def halo_check(ctx) -> dict:
    """HaloExchange on its own (float64, karate, random partition): forward rows and backward sums.

    With ``loss = sum_p sum_{u local to p} <C[u], out_p[u]>`` for a fixed global matrix ``C``, row ``v`` is
    used once on its owner and once on every worker whose halo holds it, so ``dloss/dH[v] = C[v] * (1 +
    number of halos holding v)``: the backward must bring every halo copy's gradient home."""
    data = datasets.load("karate")
    plan = partition(data, ctx.world_size, "random", seed=0, hops=1)
    graph = LocalGraph.from_plan(plan, ctx.rank, data.edge_index)
    gen = torch.Generator().manual_seed(7)
    h_all = torch.randn(data.num_nodes, 3, generator=gen, dtype=torch.float64)
    c_all = torch.randn(data.num_nodes, 3, generator=gen, dtype=torch.float64)
    owned = h_all[graph.owned].clone().requires_grad_(True)
    out = halo_exchange(owned, graph, ctx.comm, layer=0)
    fwd_err = float((out - h_all[graph.local_to_global]).abs().max())
    (out * c_all[graph.local_to_global]).sum().backward()
    # brute force from the edges and the assignment: v sits in the halo of every other part it has an
    # out-edge into (its rows feed that part's owned nodes)
    copies = torch.ones(data.num_nodes, dtype=torch.float64)
    holders = _halo_parts(data.edge_index, plan.assignment.tolist())
    for v, parts in enumerate(holders):
        copies[v] += len(parts)
    want = c_all[graph.owned] * copies[graph.owned, None]
    halo = sorted(graph.local_to_global[graph.num_owned:].tolist())
    return {"type": "halo_check", "fwd_err": fwd_err, "bwd_err": float((owned.grad - want).abs().max()),
            "halo_rows": graph.num_halo, "halo_ok": halo == [v for v, ps in enumerate(holders) if ctx.rank in ps]}


def _halo_parts(edge_index: torch.Tensor, assignment: list[int]) -> list[set[int]]:
    """Brute force: for each node, the other parts holding it in their 1-hop halo (an edge u -> v into part q
    puts u in q's halo unless q owns u)."""
    out: list[set[int]] = [set() for _ in assignment]
    for u, v in edge_index.t().tolist():
        if assignment[u] != assignment[v]:
            out[u].add(assignment[v])
    return out


def _boundary_sizes(edge_index: torch.Tensor, assignment: torch.Tensor, parts: int) -> np.ndarray:
    """``sizes[p, q]``: nodes of part p in part q's 1-hop halo (the rows a layer sends from p to q)."""
    a = assignment.tolist()
    sizes = np.zeros((parts, parts), dtype=np.int64)
    for u, qs in enumerate(_halo_parts(edge_index, a)):
        for q in qs:
            sizes[a[u], q] += 1
    return sizes


def _layers(model: str, in_dim: int, hidden: int, classes: int, layers: int) -> list[tuple[int, bool, int]]:
    """Per layer, written out from the models' documented rules: floats per exchanged row (``min(in, out)``:
    transform first when ``out <= in``, else aggregate the inputs first), whether halo gradients go back
    (not from layer 0 when it aggregates raw features first), and the parameter count (GCN: ``W`` and a bias;
    SAGE: ``W_l`` with a bias and ``W_r``)."""
    dims = [in_dim] + [hidden] * (layers - 1) + [classes]
    out = []
    for layer, (i, o) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
        params = i * o + o if model == "gcn" else 2 * i * o + o
        out.append((min(i, o), layer > 0 or o <= i, params))
    return out


def several_cases(ctx, config: dict) -> None:
    """Worker entry: a HaloExchange check, then each config of ``config["cases"]`` in turn."""
    ctx.emit(halo_check(ctx))
    for i, case in enumerate(config["cases"]):
        worker_main(TaggedContext(ctx, i), case)


def _cases(root) -> list[dict]:
    common = {"dropout": 0.0, "epochs": EPOCHS, "seed": 1, "lr": 0.01, "weight_decay": 5e-4, "eval_every": EPOCHS}
    cora = {"dataset": "cora", "dataset_args": {"root": str(root)}, "partition": "metis"}
    csbm = {"dataset": "csbm", "dataset_args": {"num_nodes": 1001, "num_features": 8, "avg_degree": 6},
            "partition": "random"}
    return [
        {**cora, **common, "model": "gcn", "layers": 2, "hidden": 16},
        {**cora, **common, "model": "sage", "layers": 3, "hidden": 16},
        {**csbm, **common, "model": "gcn", "layers": 2, "hidden": 16},
    ]


def reference_runs(cases: list[dict]) -> list[tuple]:
    """Per case: its config, the data and the single-process PyG per-epoch losses (dropout 0; one thread: on a
    busy 2-core machine two threads mostly spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out, cache = [], {}
    for c in cases:
        cfg = TrainConfig(**c)
        key = (cfg.dataset, str(cfg.dataset_args))
        data = cache.setdefault(key, datasets.load(cfg.dataset, **cfg.dataset_args))
        ref = train_reference(data, model=cfg.model, layers=cfg.layers, hidden=cfg.hidden, dropout=0.0,
                              lr=cfg.lr, weight_decay=cfg.weight_decay, epochs=EPOCHS, seed=cfg.seed)
        out.append((cfg, data, ref))
    torch.set_num_threads(threads)
    return out


@pytest.fixture(scope="module")
def references(planetoid_root):
    return reference_runs(_cases(planetoid_root))


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 3, 4])
def test_p_workers_equal_one_pyg_process_and_the_plans_bytes(workers, references, planetoid_root, tmp_path):
    cases = [{**c, "workers": workers} for c in _cases(planetoid_root)]
    result = run("tests.test_train_exact:several_cases", {"cases": cases}, workers, run_dir=tmp_path / "run",
                 timeout_s=120)
    assert result.status == "done"
    checks = [r for r in result.records if r["type"] == "halo_check"]
    assert len(checks) == workers and sum(r["halo_rows"] for r in checks) > 0
    assert all(r["fwd_err"] == 0.0 and r["bwd_err"] < 1e-12 and r["halo_ok"] for r in checks), checks
    for i, (cfg, data, ref) in enumerate(references):
        eps = [r for r in result.records if r["type"] == "epoch" and r.get("case") == i]
        assert len(eps) == EPOCHS * workers
        # 1. exactness: every worker reports the same global loss, equal to PyG's
        loss = np.zeros((workers, EPOCHS))
        for r in eps:
            loss[r["rank"], r["epoch"]] = r["loss"]
        assert np.ptp(loss, axis=0).max() == 0.0
        diff = np.abs(loss[0] - np.array(ref["loss"])).max()
        assert diff < 1e-5, f"case {i} ({cfg.model}, P={workers}): max loss difference {diff:.3g}"
        assert eps[-1]["test_acc"] == pytest.approx(ref["test_acc"][-1], abs=2e-3)

        # 2. bytes measured at the communicator == bytes computed from the plan, per purpose and pair
        plan = partition(data, workers, cfg.partition, seed=cfg.seed, hops=1)
        sizes = _boundary_sizes(data.edge_index, plan.assignment, workers)  # brute force, not the plan's
        layers = _layers(cfg.model, data.num_features, cfg.hidden, int(data.y.max()) + 1, cfg.layers)
        want = {}  # float32 rows: 4 bytes a float; backward: the same rows' gradients, receiver to sender
        for layer, (width, back, _) in enumerate(layers):
            want[f"halo_fwd/L{layer}"] = sizes * width * 4
            if back:
                want[f"halo_bwd/L{layer}"] = (sizes * width * 4).T
        for direction in ("sent", "recv"):
            got: dict[str, np.ndarray] = {}
            for r in eps:
                for peer, per in r[f"bytes_{direction}"].items():
                    for purpose, n in per.items():
                        if purpose.startswith("halo_"):
                            m = got.setdefault(purpose, np.zeros((workers, workers), dtype=np.int64))
                            src, dst = (r["rank"], int(peer)) if direction == "sent" else (int(peer), r["rank"])
                            m[src, dst] += n
            assert sorted(got) == sorted(k for k, v in want.items() if v.sum() > 0)
            for purpose, m in got.items():
                np.testing.assert_array_equal(m, want[purpose] * EPOCHS, err_msg=f"{purpose} {direction}")
        # rows received per forward layer, summed over workers = all boundary sets
        rows = sum(int(next(r for r in eps if r["rank"] == p)["fwd_rows"]["0"]) for p in range(workers))
        assert rows == int(sizes.sum()) > 0
        # weight gradients: a ring all-reduce of n floats in P chunks (the first n % P of n//P + 1, the rest
        # n//P); rank r sends 2n - c[(r+1)%P] - c[(r+2)%P] floats an epoch to (r+1)%P, 2 (P-1) n in all
        n = sum(params for _, _, params in layers)
        c = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
        total = 0
        for rank in range(workers):
            to = {int(peer): b["grad_allreduce"] for r in eps if r["rank"] == rank
                  for peer, b in r["bytes_sent"].items() if "grad_allreduce" in b}
            assert set(to) == {(rank + 1) % workers}, to  # all of it to the ring successor
            sent = sum(b.get("grad_allreduce", 0) for r in eps if r["rank"] == rank for b in r["bytes_sent"].values())
            assert sent == (2 * n - c[(rank + 1) % workers] - c[(rank + 2) % workers]) * 4 * EPOCHS, (rank, sent)
            total += sent
        assert total == 2 * (workers - 1) * n * 4 * EPOCHS
        starts = [r for r in result.records if r["type"] == "start" and r.get("case") == i]
        assert sum(r["num_owned"] for r in starts) == data.num_nodes


@pytest.mark.slow
def test_cli_cora_gcn_reaches_the_papers_accuracy_and_prints_valid_json(planetoid_root, tmp_path, capsys):
    """Kipf & Welling's setting (hidden 16, dropout 0.5, Adam lr 0.01, wd 5e-4, 200 epochs) on 2 workers,
    through ``dgnn-lab train --json`` (one launch checks the accuracy and the CLI's output)."""
    from dgnn_lab.cli import main
    from dgnn_lab.cli.train import report

    rc = main(["train", "--dataset", "cora", "--data-root", str(planetoid_root), "--workers", "2",
               "--partition", "metis", "--mode", "full-sync", "--model", "gcn", "--epochs", "200",
               "--run-dir", str(tmp_path / "run"), "--timeout", "120", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    s = json.loads(captured.out)
    for key in ("test_acc_at_best_val", "test_acc", "train_loss", "epoch_seconds", "workers", "bytes_matrix",
                "halo_bytes", "forward_rows_per_layer"):
        assert key in s, key
    assert s["status"] == "done" and len(s["train_loss"]) == len(s["epoch_seconds"]) == 200
    assert s["test_acc_at_best_val"] >= 0.79, s["test_acc_at_best_val"]
    assert s["train_loss"][-1] < s["train_loss"][0]
    assert [w["rank"] for w in s["workers"]] == [0, 1]
    for w in s["workers"]:
        assert {"compute_s", "comm_s", "wait_s", "bytes_sent", "bytes_recv"} <= set(w) and w["bytes_sent"] > 0
    assert sum(w["num_owned"] for w in s["workers"]) == 2708
    m = np.array(s["bytes_matrix"])
    assert m.shape == (2, 2) and m[0, 0] == m[1, 1] == 0 and m[0, 1] > 0 and m[1, 0] > 0
    assert m.sum() == sum(w["bytes_sent"] for w in s["workers"]) and 0 < s["halo_bytes"] < m.sum()
    assert len(s["forward_rows_per_layer"]) == 2 and s["forward_rows_per_layer"][0] > 0
    text = report(s)
    for word in ("accuracy", "time/epoch", "imbalance", "compute", "bytes sent (row = sender"):
        assert word in text
