"""Asynchrony with real processes: the parameter server (bounded staleness), local SGD with model averaging,
and straggler injection.

Launches are the slow part here, so each run checks several things. What is exact is tested exactly: one
local-SGD worker is single-process training (checked in-process, through the worker's own code); averaging
leaves every worker with the same weights; ``model_avg`` bytes are the ring formula; a parameter server with
``s = 0`` trains exactly what one process trains (so, by ``test_train_exact``, what the all-reduce trains),
up to float32 summation order: 1e-5 on the loss.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from dgnn_lab import datasets
from dgnn_lab.dist import Communicator, WorkerError, launch, run
from dgnn_lab.dist.testing import TaggedContext
from dgnn_lab.execution.local_sgd import owned_subgraph
from dgnn_lab.execution.loop import worker_main as local_sgd_main
from dgnn_lab.execution.reference import train_reference
from dgnn_lab.protocols.straggler import Straggler
from dgnn_lab.train import TrainConfig, train

psutil = pytest.importorskip("psutil")

SMALL = {"dataset": "csbm", "dataset_args": {"num_nodes": 600, "num_features": 8, "avg_degree": 6},
         "partition": "random", "dropout": 0.0, "seed": 1, "timeout_s": 60}


def _epochs(result, rank=None, case=None) -> list[dict]:
    return [r for r in result.records if r.get("type") == "epoch" and r.get("role") != "server"
            and (rank is None or r["rank"] == rank) and (case is None or r.get("case") == case)]


def _n_params(data, hidden=16) -> int:
    c = int(data.y.max()) + 1
    return data.num_features * hidden + hidden + hidden * c + c


def _ring_bytes(n: int, workers: int, rank: int, element_size: int = 4) -> int:
    """What rank ``rank`` sends in a ring all-reduce of ``n`` elements, written out: P chunks of n//P + 1
    (the first n % P) or n//P elements; reduce-scatter and all-gather each pass every chunk but two along the
    ring, so rank r sends 2n - c[(r+1)%P] - c[(r+2)%P] elements."""
    c = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    return (2 * n - c[(rank + 1) % workers] - c[(rank + 2) % workers]) * element_size


# ------------------------------------------------------------------------------------------- in-process
class _OneProcess:
    """A world of one: a communicator without a process group, records kept in a list."""

    def __init__(self):
        self.rank, self.world_size, self.device = 0, 1, torch.device("cpu")
        self.comm = Communicator(0, 1, "cpu", "gloo")
        self.records: list[dict] = []

    def emit(self, rec):
        self.records.append(rec)

    def should_stop(self):
        return False

    def peak_mem_bytes(self):
        return 0


def test_one_local_sgd_worker_is_single_process_training():
    cfg = {**SMALL, "mode": "local-sgd", "workers": 1, "epochs": 6, "local_sgd_period": 2, "eval_every": 1}
    ctx = _OneProcess()
    local_sgd_main(ctx, cfg)
    data = datasets.load("csbm", **SMALL["dataset_args"])
    ref = train_reference(data, model="gcn", dropout=0.0, epochs=6, seed=1)
    eps = [r for r in ctx.records if r["type"] == "epoch"]
    assert np.abs(np.array([r["loss"] for r in eps]) - np.array(ref["loss"])).max() < 1e-5
    assert [r["averaged"] for r in eps] == [False, True] * 3
    assert eps[-1]["test_acc"] == pytest.approx(ref["test_acc"][-1], abs=2e-3)


def test_owned_subgraph_drops_exactly_the_cut_edges():
    from dgnn_lab.partition import partition
    from dgnn_lab.partition.local_graph import LocalGraph

    data = datasets.load("karate")
    plan = partition(data, 2, "random", seed=0, hops=1)
    assign = plan.assignment
    for p in range(2):
        g = LocalGraph.from_plan(plan, p, data.edge_index)
        sub = owned_subgraph(g, "gcn")
        src, dst = data.edge_index
        want = int(((assign[src] == p) & (assign[dst] == p)).sum())
        assert sub.edge_index.size(1) == want and sub.num_halo == 0 and sub.num_parts == 1
        # GCN normalisation from the subgraph alone: A[v, v] = 1 / (local in-degree + 1), A symmetric
        a = sub.adj.to_dense()
        assert torch.allclose(a, a.t()) and sub.adj.shape == (g.num_owned, g.num_owned)
        deg = torch.bincount(sub.edge_index[1], minlength=g.num_owned).float() + 1
        assert torch.allclose(a.diagonal(), 1 / deg)


def test_straggler_sleeps_factor_minus_one_times_its_compute():
    comm = Communicator(0, 1, "cpu", "gloo")
    cfg = TrainConfig(workers=2, straggler="1:3")
    assert not Straggler.from_config(cfg, 0).active
    s = Straggler.from_config(cfg, 1)
    with comm.phase("compute"):
        time.sleep(0.02)
        slept = s.delay(comm)
    own = comm.elapsed("compute") - slept  # >= the compute the straggler measured (sleep overshoot adds)
    assert slept >= 2 * 0.02 and 1.2 < slept / own <= 2.0
    assert s.take() == slept and s.take() == 0.0


# ------------------------------------------------------------------------------------------ real runs


def local_sgd_cases(ctx, config: dict) -> None:
    """Worker entry: each local-SGD config of ``config["cases"]`` in turn, records tagged by case."""
    for i, case in enumerate(config["cases"]):
        local_sgd_main(TaggedContext(ctx, i), case)


@pytest.mark.slow
def test_local_sgd_averages_to_one_model_moves_only_ring_bytes_and_lets_a_straggler_run_alone(tmp_path):
    common = {**SMALL, "mode": "local-sgd", "workers": 2, "epochs": 6, "eval_every": 1}
    cases = [{**common, "local_sgd_period": 2, "straggler": [1, 3.0]},
             {**common, "local_sgd_period": 1, "local_sgd_correction": True}]
    res = run("tests.test_async:local_sgd_cases", {"cases": cases}, 2, run_dir=tmp_path / "r", timeout_s=60)
    assert res.status == "done"
    data = datasets.load("csbm", **SMALL["dataset_args"])
    n = _n_params(data)
    # case 0: K = 2, a 3x straggler
    eps = {(r["rank"], r["epoch"]): r for r in _epochs(res, case=0)}
    for e in range(6):
        a, b = eps[(0, e)], eps[(1, e)]
        averaged = e % 2 == 1
        assert a["averaged"] is averaged and b["averaged"] is averaged
        assert (a["weights_checksum"] == b["weights_checksum"]) is averaged
        for rank, r in ((0, a), (1, b)):
            purposes = {k for per in r["bytes_sent"].values() for k in per}
            if averaged:
                assert purposes == {"model_avg", "metrics", "eval"}
                assert r["bytes_sent"][str(1 - rank)]["model_avg"] == _ring_bytes(n, 2, rank) == 4 * n  # P = 2
                assert a["test_acc"] == b["test_acc"] is not None
            else:  # communication-free: no byte, no transfer, no waiting, even beside a straggler
                assert purposes == set() and r["comm_s"] == 0.0 and r["wait_s"] == 0.0
    slow = [eps[(1, e)] for e in range(6)]
    assert all(r["straggler_s"] > 0 for r in slow)
    # case 1: K = 1 with the global correction: identical weights after every epoch, and the correction's
    # full-graph step moves halo rows and a gradient all-reduce (layer 0 aggregates 8 raw features first: no
    # gradient goes back there)
    eps = {(r["rank"], r["epoch"]): r for r in _epochs(res, case=1)}
    for e in range(6):
        a, b = eps[(0, e)], eps[(1, e)]
        assert a["weights_checksum"] == b["weights_checksum"]
        purposes = {k for per in a["bytes_sent"].values() for k in per}
        assert {"model_avg", "grad_allreduce", "halo_fwd/L0", "halo_fwd/L1", "halo_bwd/L1"} <= purposes


@pytest.mark.slow
def test_ps_with_staleness_0_is_synchronous_training(tmp_path):
    res = train(**SMALL, workers=2, epochs=8, eval_every=8, sync="ps", staleness=0, run_dir=tmp_path / "r")
    assert res.status == "done" and res.world_size == 3
    data = datasets.load("csbm", **SMALL["dataset_args"])
    ref = train_reference(data, model="gcn", dropout=0.0, epochs=8, seed=1)
    loss = np.array(res.summary()["train_loss"])
    assert np.abs(loss - np.array(ref["loss"])).max() < 1e-5
    assert all(r["grad_staleness"] == 0 for r in _epochs(res))
    s = res.summary()
    assert s["grad_staleness"] == {"hist": {"0": 16}, "count": 16, "max": 0, "mean": 0.0}
    # the server's bytes: a gradient in from each worker per epoch, weights out; its row of the matrix
    n = _n_params(data)
    push, pull = res.bytes_matrix("ps_push"), res.bytes_matrix("ps_pull")
    assert push[0, 2] == push[1, 2] == 8 * n * 4 and pull[2, 0] == pull[2, 1] == 8 * n * 4
    assert push.sum() == pull.sum() == 2 * 8 * n * 4
    assert res.bytes_matrix("grad_allreduce").sum() == 0
    assert s["workers"][2]["role"] == "server" and s["workers"][2]["bytes_sent"] > 0


@pytest.mark.slow
def test_async_ps_converges_on_cora_with_bounded_staleness_and_a_straggler_makes_others_wait(
        planetoid_root, tmp_path):
    s_bound = 2
    res = train(dataset="cora", dataset_args={"root": str(planetoid_root)}, workers=3, epochs=200, sync="ps",
                staleness=s_bound, straggler=[1, 2.0], eval_every=10, run_dir=tmp_path / "r", timeout_s=120)
    assert res.status == "done"
    s = res.summary()
    assert s["test_acc"] >= 0.75, s["test_acc"]
    eps = _epochs(res)
    ages = [r["grad_staleness"] for r in eps]
    assert len(ages) == 600 and max(ages) <= s_bound and s["grad_staleness"]["max"] <= s_bound
    assert s["grad_staleness"]["count"] == 600 and sum(s["grad_staleness"]["hist"].values()) == 600
    # the straggler sleeps (factor - 1) x its own compute, inside compute; the others wait for it
    slow = [r for r in eps if r["rank"] == 1]
    slept = sum(r["straggler_s"] for r in slow)
    own = sum(r["compute_s"] for r in slow) - slept
    assert 0.6 < slept / own < 1.2, (slept, own)
    others_wait = np.mean([sum(r["wait_s"] for r in eps if r["rank"] == q) for q in (0, 2)])
    assert others_wait > 0.5 * slept, (others_wait, slept)


def fail_on_rank(ctx, config: dict):
    """Worker entry: full-graph training where rank ``config["fail_rank"]`` raises at epoch 2."""
    from dgnn_lab.execution.loop import worker_main

    cfg = dict(config)
    bad = cfg.pop("fail_rank")

    class Failing:
        def __getattr__(self, name):
            return getattr(ctx, name)

        def emit(self, record):
            if record.get("type") == "epoch" and record.get("epoch") == 2:
                raise RuntimeError(f"deliberate failure on rank {ctx.rank}")
            ctx.emit(record)

    return worker_main(Failing() if ctx.rank == bad else ctx, cfg)



@pytest.mark.slow
def test_a_failed_worker_ends_a_ps_run_with_no_process_left(tmp_path):
    cfg = TrainConfig(**SMALL, workers=2, epochs=50, sync="ps", staleness=1)
    h = launch("tests.test_async:fail_on_rank", {**cfg.to_dict(), "fail_rank": 1}, cfg.world_size,
               run_dir=tmp_path / "r", timeout_s=30)
    with pytest.raises(WorkerError) as info:
        h.wait(timeout=300)  # generous: start-up alone is slow on a busy machine
    assert info.value.rank == 1 and "deliberate failure on rank 1" in info.value.worker_traceback
    assert h.status == "failed"
    # the run ended within seconds of the failure, server included (it was blocked waiting for pushes)
    failed_at = next(r["time"] for r in h.records if r.get("type") == "error" and r["rank"] == 1)
    ended_at = [r["time"] for r in h.records if r.get("type") == "run"][-1]
    assert ended_at - failed_at < 15
    left = []
    for pid in h.pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert left == []


@pytest.mark.slow
def test_cli_sync_ps_with_a_straggler_reports_staleness(capsys, tmp_path):
    from dgnn_lab.cli import main

    rc = main(["train", "--dataset", "csbm", "--dataset-arg", "num_nodes=600", "--dataset-arg", "num_features=8",
               "--workers", "2", "--partition", "random", "--epochs", "5", "--sync", "ps", "--staleness", "2",
               "--straggler", "1:2", "--run-dir", str(tmp_path / "r"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "done" and out["world_size"] == 3
    st = out["grad_staleness"]
    assert st["count"] == 10 and st["max"] <= 2 and set(st) == {"hist", "count", "max", "mean"}
    assert out["workers"][2]["role"] == "server" and len(out["bytes_matrix"]) == 3
    rc = main(["train", "--dataset", "karate", "--mode", "local-sgd", "--local-sgd-period", "5", "--epochs", "10",
               "--run-dir", str(tmp_path / "l"), "--json"])
    out = json.loads(capsys.readouterr().out)
    # no halo exchange in training; the bytes are the averaging (twice), the metrics and the evaluation
    assert rc == 0 and out["config"]["local_sgd_period"] == 5 and out["halo_bytes"] == 0
    assert out["bytes_matrix"][0][1] > 0 and out["epochs"] == 10 and out["test_acc"] is not None


@pytest.mark.slow
def test_local_sgd_through_the_server_lets_fast_workers_run_ahead_within_the_bound(tmp_path):
    """No halo exchange: the workers meet only at the server, so the fast one runs up to s rounds ahead of a
    4x straggler (its gradients are up to s rounds stale) and never further."""
    res = train(**SMALL, workers=2, epochs=12, mode="local-sgd", sync="ps", staleness=2, straggler=[1, 4.0],
                eval_every=0, run_dir=tmp_path / "r")
    assert res.status == "done"
    eps = _epochs(res)
    ages = {q: [r["grad_staleness"] for r in eps if r["rank"] == q] for q in (0, 1)}
    assert len(ages[0]) == len(ages[1]) == 12
    assert max(ages[0] + ages[1]) <= 2 and res.summary()["grad_staleness"]["count"] == 24
    assert np.mean(ages[0]) > np.mean(ages[1])  # the fast worker computes on older weights than the straggler
    # no halo and no averaging: the workers' only traffic during training is with the server
    purposes = {k for r in eps if r["epoch"] < 11 for per in r["bytes_sent"].values() for k in per}
    assert purposes == {"ps_push", "ps_control"}
