"""Distributed mini-batch training: seed splits, the distributed sampler in both remote modes, exact gradients
with full neighbourhoods, equal step counts (and the hang without them), pipelining, the CLI and Cora accuracy.

Spawning workers is the slow part, so one 2-worker launch (:func:`checks`) runs the sampler checks, the
gradient comparisons and two short training runs (pipeline off / on) back to back.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgnn_lab import datasets
from dgnn_lab.dist import RunResult, WorkerError, run
from dgnn_lab.dist.communicator import Communicator
from dgnn_lab.dist.testing import TaggedContext
from dgnn_lab.execution.loop import worker_main
from dgnn_lab.execution.minibatch import MinibatchWorker
from dgnn_lab.execution.pipeline import Prefetcher
from dgnn_lab.execution.reference import reference_model
from dgnn_lab.graph import to_csr
from dgnn_lab.partition import partition
from dgnn_lab.sampling.distributed import DistNeighborSampler, Topology, halo_topology_nodes, split_seeds
from dgnn_lab.train import TrainConfig

CSBM = {"dataset": "csbm", "dataset_args": {"num_nodes": 603, "num_features": 8, "avg_degree": 6},
        "partition": "metis", "mode": "minibatch", "workers": 2, "timeout_s": 60}


# ------------------------------------------------------------------------------------------- seed splits


def test_split_seeds_local_chunk_and_bad_input():
    train_idx = torch.arange(0, 100, 3)                  # 34 seeds
    assignment = torch.zeros(100, dtype=torch.long)
    assignment[train_idx[:25]] = 1                       # rank 1 owns 25 of them, rank 0 owns 9
    local = [split_seeds(train_idx, assignment, r, 2, "local") for r in range(2)]
    assert sorted(torch.cat(local).tolist()) == train_idx.tolist()
    assert [t.numel() for t in local] == [17, 17]        # balanced (DistDGL force_even)
    assert int((assignment[local[0]] == 0).sum()) == 9   # rank 0 keeps all 9 of its own, gets 8 of rank 1's
    assert bool((assignment[local[1]] == 1).all())       # rank 1 keeps only its own
    owned = [split_seeds(train_idx, assignment, r, 2, "local", force_even=False) for r in range(2)]
    assert [t.numel() for t in owned] == [9, 25]
    assert all(bool((assignment[t] == r).all()) for r, t in enumerate(owned))
    chunks = [split_seeds(train_idx, assignment, r, 3, "chunk") for r in range(3)]
    assert [c.tolist() for c in chunks] == [train_idx[:12].tolist(), train_idx[12:23].tolist(),
                                           train_idx[23:].tolist()]
    with pytest.raises(ValueError, match="unknown seed split 'random'; allowed: local, chunk"):
        split_seeds(train_idx, assignment, 0, 2, "random")


def test_single_process_sampler_samples_real_neighbours_within_fanouts():
    data = datasets.load("csbm", num_nodes=300, num_features=4, avg_degree=8)
    n = data.num_nodes
    comm = Communicator(0, 1, "cpu", "gloo")
    topo = Topology.of(data.edge_index, n, torch.arange(n))
    sampler = DistNeighborSampler(comm, topo, torch.zeros(n, dtype=torch.long), [4, 3], mode="halo", seed=1)
    seeds = torch.arange(0, 60, 2)
    s = sampler.sample(seeds)
    _check_sample(s, seeds, data.edge_index, n, [4, 3])
    with pytest.raises(ValueError, match="seeds must be distinct"):
        sampler.sample(torch.tensor([1, 1]))
    part = Topology.of(data.edge_index, n, torch.arange(10))
    with pytest.raises(ValueError, match="holds no in-edges of nodes"):
        DistNeighborSampler(comm, part, torch.zeros(n, dtype=torch.long), [2], mode="halo").sample(torch.tensor([50]))


def _check_sample(s, seeds: torch.Tensor, edge_index: torch.Tensor, n: int, fanouts: list[int]) -> dict:
    """Seeds first; every block edge a real edge; per expanded node exactly min(deg, fanout) distinct neighbours."""
    assert s.n_id[:seeds.numel()].tolist() == seeds.tolist()
    assert s.n_id.unique().numel() == s.n_id.numel()
    real = set((edge_index[0] * n + edge_index[1]).tolist())
    deg = torch.bincount(edge_index[1], minlength=n)
    blk = s.blocks[0]                                   # the input block holds every sampled edge
    src, dst = blk.src_nodes[blk.edge_index[0]], blk.src_nodes[blk.edge_index[1]]
    assert set((src * n + dst).tolist()) <= real
    assert len(set((src * n + dst).tolist())) == src.numel()       # without replacement: no duplicates
    bounds = np.cumsum([0, *s.num_sampled_nodes])
    cnt = torch.bincount(blk.edge_index[1], minlength=blk.num_dst)
    for h, f in enumerate(fanouts):
        nodes = torch.arange(bounds[h], bounds[h + 1])
        want = deg[s.n_id[nodes]] if f == -1 else deg[s.n_id[nodes]].clamp(max=f)
        assert torch.equal(cnt[nodes], want), f"hop {h + 1}: sampled counts differ from min(deg, fanout)"
    assert s.blocks[-1].num_dst == seeds.numel()
    return {"edges": int(src.numel())}


def test_prefetcher_keeps_order_runs_ahead_and_reraises():
    assert list(Prefetcher(lambda i: i * i, 5, enabled=True)) == [0, 1, 4, 9, 16]
    assert list(Prefetcher(lambda i: i * i, 5, enabled=False)) == [0, 1, 4, 9, 16]
    for enabled in (True, False):
        second = threading.Event()

        def produce(i, second=second):
            if i == 1:
                second.set()
            return i

        it = iter(Prefetcher(produce, 3, enabled=enabled))
        assert next(it) == 0
        # while the caller still holds item 0, only the thread can already be producing item 1
        assert second.wait(timeout=10.0 if enabled else 0.2) is enabled
        assert list(it) == [1, 2]

    def bad(i):
        if i == 2:
            raise KeyError("boom")
        return i

    with pytest.raises(KeyError, match="boom"):
        list(Prefetcher(bad, 4, enabled=True))


def test_minibatch_combines_with_the_parameter_server_and_codecs_and_refuses_what_cannot_train():
    ps = TrainConfig(mode="minibatch", sync="ps", workers=2)
    assert ps.world_size == 3 and ps.axes()["grad_sync"] == "ps" and ps.axes()["execution"] == "minibatch"
    assert TrainConfig(mode="minibatch", quantize="int8").axes()["codec"] == "int8"
    with pytest.raises(ValueError, match="halo='pipegcn'.*execution 'full-graph'.*execution='minibatch'"):
        TrainConfig(mode="minibatch", halo="pipegcn")
    with pytest.raises(ValueError, match="grad_sync='averaging'.*execution 'minibatch'"):
        TrainConfig(mode="minibatch", grad_sync="averaging")


# ------------------------------------------------------------------------------------ the 2-worker launch




def _sampler_checks(ctx) -> dict:
    """Chunk seeds (mostly remote) sampled by owner and from the halo; both must be real, fanout-respecting
    samples; owner mode asks the owners, halo mode moves no byte."""
    cfg = TrainConfig(**CSBM)
    data = datasets.load(cfg.dataset, **cfg.dataset_args)
    n = data.num_nodes
    plan = partition(data, 2, "metis", seed=0, hops=1)
    train_idx = torch.nonzero(data.train_mask).reshape(-1)
    seeds = split_seeds(train_idx, plan.assignment, ctx.rank, 2, "chunk")[:40]
    owned = plan.parts[ctx.rank].owned
    out = {"type": "sampler_check", "remote_seeds": int((plan.assignment[seeds] != ctx.rank).sum())}
    for mode in ("owner", "halo"):
        nodes = owned if mode == "owner" else halo_topology_nodes(to_csr(data.edge_index, n),
                                                                  torch.cat([owned, seeds]), 1)
        sampler = DistNeighborSampler(ctx.comm, Topology.of(data.edge_index, n, nodes), plan.assignment, [3, 2],
                                      mode=mode, seed=ctx.rank)
        ctx.comm.take_epoch_stats()
        s = sampler.sample(seeds)
        stats = ctx.comm.take_epoch_stats()
        _check_sample(s, seeds, data.edge_index, n, [3, 2])
        out[mode] = {"remote_nodes": s.remote_nodes, "requests": s.requests,
                     "bytes": sum(b for per in stats["bytes_sent"].values() for k, b in per.items()
                                  if k.startswith("sample"))}
    return out


def _grad_check(ctx, model: str, remote_sampling: str) -> dict:
    """One step with every neighbour (fanouts -1): the all-reduced gradient and the seeds of both workers."""
    cfg = TrainConfig(**CSBM, model=model, fanouts=[-1, -1], dropout=0.0, weight_decay=0.0, batch_size=50,
                      seed_split="chunk", remote_sampling=remote_sampling, hidden=8, seed=3)
    w = MinibatchWorker(ctx, cfg).setup()
    batch = w.prepare(w.epoch_batches(0)[0])
    w.train_step(batch)
    return {"type": "grad", "model": model, "seeds": batch.seeds.tolist(),
            "grads": {k: p.grad.tolist() for k, p in w.model.named_parameters()}}


def train_config(pipeline: bool, **kw) -> dict:
    # 181 training nodes: split 91 / 90, batch 30 -> 4 and 3 batches: rank 1 needs one zero-weight step
    return {**CSBM, "model": "sage", "fanouts": [4, 3], "batch_size": 30, "epochs": 3, "eval_every": 3,
            "cache": "degree", "cache_size": 0.5, "pipeline": pipeline, **kw}


def checks(ctx, config: dict) -> None:
    """Worker entry of the 2-worker launch: sampler checks, gradient checks, then training with pipelining
    off (case 0) and on (case 1)."""
    ctx.emit(_sampler_checks(ctx))
    ctx.emit(_grad_check(ctx, "sage", "owner"))
    ctx.emit(_grad_check(ctx, "gcn", "halo"))
    for i, pipeline in enumerate((False, True)):
        worker_main(TaggedContext(ctx, i), train_config(pipeline))


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    return run("tests.test_minibatch:checks", {}, 2, run_dir=tmp_path_factory.mktemp("mb") / "run", timeout_s=120)


@pytest.mark.slow
def test_distributed_sampler_in_both_remote_modes(launched):
    recs = [r for r in launched.records if r["type"] == "sampler_check"]
    assert len(recs) == 2
    for r in recs:
        assert r["remote_seeds"] > 0
        assert r["owner"]["remote_nodes"] >= r["remote_seeds"] and r["owner"]["requests"] >= 1
        assert r["owner"]["bytes"] > 0
        assert r["halo"]["remote_nodes"] == 0 and r["halo"]["requests"] == 0 and r["halo"]["bytes"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("model", ["sage", "gcn"])
def test_full_neighbourhood_step_has_the_single_process_gradient(launched, model):
    recs = [r for r in launched.records if r["type"] == "grad" and r["model"] == model]
    assert len(recs) == 2
    assert recs[0]["grads"] == recs[1]["grads"]          # all-reduced: identical on every worker
    seeds = torch.tensor(recs[0]["seeds"] + recs[1]["seeds"])
    assert seeds.unique().numel() == seeds.numel() == 100
    cfg = TrainConfig(**CSBM, model=model, hidden=8, seed=3, dropout=0.0)
    data = datasets.load(cfg.dataset, **cfg.dataset_args)
    ref = reference_model(model, data.num_features, 8, int(data.y.max()) + 1, 2, 0.0, 3)
    F.cross_entropy(ref(data.x, data.edge_index)[seeds], data.y[seeds]).backward()
    names = {"weight": "lin.weight", "bias": "bias"} if model == "gcn" else {}
    for name, g in recs[0]["grads"].items():
        layer, rest = name.split(".")[1], ".".join(name.split(".")[2:])
        want = dict(ref.named_parameters())[f"convs.{layer}.{names.get(rest, rest)}"].grad
        err = (torch.tensor(g) - want).abs().max().item()
        assert err < 1e-5, f"{model} {name}: max gradient difference {err:.3g}"


@pytest.mark.slow
def test_equal_steps_pipelining_and_the_summary(launched):
    epochs = {}
    for case in (0, 1):
        steps = [r for r in launched.records if r["type"] == "step" and r.get("case") == case]
        per_rank = [sorted((r["epoch"], r["step"]) for r in steps if r["rank"] == k) for k in (0, 1)]
        assert per_rank[0] == per_rank[1] and len(per_rank[0]) == 3 * 4     # 4 steps everywhere, 3 epochs
        assert sum(r["seeds"] for r in steps if r["epoch"] == 0) == 181      # each seed once per epoch
        assert any(r["seeds"] == 0 for r in steps)                           # the zero-weight step
        for r in steps:                  # stage start times for the timeline: wait is the tail of train
            assert r["sample_t0"] <= r["fetch_t0"] and r["train_t0"] <= r["wait_t0"]
            assert r["wait_t0"] + r["wait_s"] == pytest.approx(r["train_t0"] + r["train_s"])
        eps = [r for r in launched.records if r["type"] == "epoch" and r.get("case") == case]
        assert len(eps) == 6
        for r in eps:
            for k in ("epoch_s", "compute_s", "comm_s", "wait_s", "sample_s", "fetch_s", "train_s", "overlap_s",
                      "remote_requests", "remote_rows_fetched", "cache_hits", "cache_lookups", "events"):
                assert k in r, k
            assert r["remote_rows_fetched"] > 0 and 0 < r["cache_hits"] <= r["cache_lookups"]
            assert r["compute_s"] + r["comm_s"] + r["wait_s"] <= r["epoch_s"] * 1.05
        epochs[case] = sorted((r["epoch"], r["rank"], r["loss"]) for r in eps)
        summary = RunResult([r for r in launched.records if r.get("case") == case], "done", world_size=2).summary()
        assert 0 < summary["cache_hit_rate"] < 1
        for w in summary["workers"]:
            assert w["sample_s"] > 0 and w["fetch_s"] > 0 and w["train_s"] > 0 and w["remote_rows_fetched"] > 0
    # exact: the prefetch thread draws from the same per-worker generators in the same order (its own sampler,
    # seeded alike), the owners answer in the same order, and training runs the same ops on the same batches
    loss_off = np.array([x[2] for x in epochs[0]])
    loss_on = np.array([x[2] for x in epochs[1]])
    assert np.array_equal(loss_off, loss_on), (loss_off, loss_on)
    assert loss_off[-1] < loss_off[0]


@pytest.mark.slow
def test_unequal_steps_end_in_a_clear_timeout_not_a_hang(tmp_path):
    from dgnn_lab.train import train

    with pytest.raises(WorkerError, match="equal_steps=False") as info:
        train(train_config(False, equal_steps=False, cache="none", timeout_s=5.0, epochs=2),
              run_dir=str(tmp_path / "run"))
    assert "uneven-inputs hang" in str(info.value)


@pytest.mark.slow
def test_cli_minibatch_json_and_cora_accuracy(planetoid_root, tmp_path, capsys):
    from dgnn_lab.cli import main
    from dgnn_lab.cli.train import report, training_summary

    rc = main(["train", "--dataset", "cora", "--data-root", str(planetoid_root), "--mode", "minibatch",
               "--model", "sage", "--fanouts", "10,5", "--batch-size", "32", "--epochs", "20", "--eval-every", "2",
               "--cache", "degree", "--cache-size", "0.2", "--pipeline", "--run-dir", str(tmp_path / "run"),
               "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["status"] == "done" and out["epochs"] == 20
    assert 0 < out["cache_hit_rate"] <= 1
    for w in out["workers"]:
        for k in ("sample_s", "fetch_s", "train_s", "remote_rows_fetched", "remote_requests"):
            assert k in w, k
    assert out["test_acc_at_best_val"] >= 0.78, out["test_acc_at_best_val"]
    text = report(training_summary(RunResult.load(tmp_path / "run")))
    assert "pipeline on; cache hit rate" in text and "rows fetched" in text
