"""The execution-model axis and the rules every training module follows.

* A toy execution model defined in this file (one class plus one registry entry) trains for real.
* Only ``dgnn_lab/dist`` calls torch.distributed's communication: every byte goes through the Communicator.
* Nothing read from a run directory or a spec executes code: configs name strategies, never carry them.
* Mini-batch training with the parameter server and with int8 feature fetches: bytes at wire size.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgnn_lab.dist import RunResult
from dgnn_lab.execution.loop import ExecutionModel, register_execution
from dgnn_lab.settings import REPO_ROOT
from dgnn_lab.train import TrainConfig, train

SMALL = {"dataset": "csbm", "dataset_args": {"num_nodes": 400, "avg_degree": 6, "num_features": 8, "num_classes": 2,
                                             "seed": 2},
         "workers": 2, "epochs": 5, "eval_every": 5, "partition": "random"}


class OwnRowsMLP(ExecutionModel):
    """A toy execution model: an MLP on each worker's owned rows (no graph at all), gradients through the
    run's gradient synchronisation. One class, one registry entry."""

    name = "toy-mlp"

    def setup(self) -> dict:
        w = self.w
        pp, _, _ = w.part()
        data = w.data
        own = pp.owned
        self.x, self.y, self.train_mask = data.x[own], data.y[own], data.train_mask[own]
        self.test_mask, self.n_test = data.test_mask[own], int(data.test_mask.sum())
        self.n_train = int(data.train_mask.sum())
        torch.manual_seed(w.cfg.seed)
        self.model = torch.nn.Sequential(torch.nn.Linear(data.num_features, w.cfg.hidden), torch.nn.ReLU(),
                                         torch.nn.Linear(w.cfg.hidden, int(data.y.max()) + 1))
        self.params = list(self.model.parameters())
        w.sync.bind(w.comm, self.params, w.optimizer(self.params), w.cfg)
        return {"num_owned": int(own.numel())}

    def train_epoch(self, epoch: int) -> dict:
        for p in self.params:
            p.grad = None
        out = self.model(self.x)
        loss_sum = F.cross_entropy(out[self.train_mask], self.y[self.train_mask], reduction="sum")
        (loss_sum / self.n_train).backward()
        return {**self.w.sync.step(), "metrics": [float(loss_sum.detach())]}

    def epoch_metrics(self, fields, reduced):
        return {**fields, "loss": reduced[0] / self.n_train if reduced else None}

    @torch.no_grad()
    def evaluate(self):
        pred = self.model(self.x).argmax(-1)
        ok = torch.tensor([(pred[self.test_mask] == self.y[self.test_mask]).sum()], dtype=torch.int64)
        self.w.comm.all_reduce(ok, "eval")
        return [None, None, float(ok) / self.n_test]


register_execution("toy-mlp", OwnRowsMLP)


@pytest.mark.slow
def test_a_toy_execution_model_from_a_test_file_trains_for_real(tmp_path):
    res = train(**SMALL, execution="toy-mlp", run_dir=tmp_path / "r")
    assert res.status == "done" and res.config["execution"] == "toy-mlp"
    eps = [r for r in res.records if r.get("type") == "epoch"]
    assert sorted((r["rank"], r["epoch"]) for r in eps) == [(p, e) for p in range(2) for e in range(5)]
    loss = res.summary()["train_loss"]
    assert len(loss) == 5 and loss[-1] < loss[0]
    purposes = {k for r in eps for d in r["bytes_sent"].values() for k in d}
    assert purposes == {"grad_allreduce", "metrics", "eval"}  # no graph, no halo: only what it asked for
    n = 8 * 16 + 16 + 16 * 2 + 2  # the MLP's parameters (csbm: 2 classes)
    for r in eps:  # a ring all-reduce of n float32 between 2 workers: each sends half (n is even here)
        assert r["bytes_sent"][str(1 - r["rank"])]["grad_allreduce"] == n * 4


def test_the_toy_model_refuses_axes_it_does_not_use():
    with pytest.raises(ValueError, match="halo='pipegcn'.*execution='toy-mlp'"):
        TrainConfig(**SMALL, execution="toy-mlp", halo="pipegcn")
    with pytest.raises(ValueError, match="codec='int8' has no effect in execution 'toy-mlp'"):
        TrainConfig(**SMALL, execution="toy-mlp", codec="int8")
    with pytest.raises(ValueError, match="mode='minibatch' means execution 'minibatch', but execution='toy-mlp'"):
        TrainConfig(**SMALL, execution="toy-mlp", mode="minibatch")


COMMUNICATION = {"send", "recv", "isend", "irecv", "batch_isend_irecv", "P2POp", "all_reduce", "all_gather",
                 "all_to_all", "all_to_all_single", "broadcast", "reduce", "scatter", "gather", "barrier",
                 "new_group", "init_process_group", "reduce_scatter", "all_gather_object", "broadcast_object_list"}


def _distributed_uses(path: Path) -> list[str]:
    """Communication calls on torch.distributed in one module, however it was imported."""
    tree = ast.parse(path.read_text(), str(path))
    aliases, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "torch.distributed":
                    aliases.add(a.asname or "torch.distributed")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch.distributed"):
            found += [f"{path}:{node.lineno} from {node.module} import {a.name}" for a in node.names
                      if a.name in COMMUNICATION or node.module != "torch.distributed"]
            if node.module == "torch.distributed":
                aliases.update(a.asname or a.name for a in node.names if a.name not in COMMUNICATION)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in COMMUNICATION:
            base = ast.unparse(node.value)
            if base in aliases or base == "torch.distributed":
                found.append(f"{path}:{node.lineno} {base}.{node.attr}")
    return found


def test_only_the_dist_package_talks_through_torch_distributed():
    root = REPO_ROOT / "dgnn_lab"
    modules = [p for p in root.rglob("*.py") if "dist" not in p.relative_to(root).parts[:1]]
    assert len(modules) > 40 and any(p.name == "halo.py" for p in modules)
    offenders = [u for p in modules for u in _distributed_uses(p)]
    assert offenders == []
    # the check itself finds what it looks for
    assert _distributed_uses(root / "dist" / "communicator.py")


def test_a_run_directory_and_a_spec_never_carry_code(tmp_path):
    """Configs name strategies; a tampered config.json with a pickle is refused, never unpickled."""
    import base64
    import pickle

    from dgnn_lab.protocols.halo import BoundedStaleHalo

    class Cell(BoundedStaleHalo):  # a class no other process can import, as in a notebook cell
        pass

    cfg = TrainConfig(**SMALL, mode="full-stale", halo=Cell)
    text = json.dumps(cfg.to_dict())
    assert "Cell" in text and "<by value" in text  # named for people
    assert "gASV" not in text and "cloudpickle" not in text  # and no pickle
    assert list(cfg.by_value()) and all(k.startswith("halo:") for k in cfg.by_value())

    class Boom:
        def __reduce__(self):
            return (Path.touch, (tmp_path / "pwned",))

    payload = base64.b64encode(pickle.dumps(Boom())).decode()
    for key in ("strategy_payload", "halo"):  # the old pickle field, or a pickle where a name belongs
        bad = {**TrainConfig(**SMALL).to_dict(), key: payload}
        with pytest.raises(ValueError):
            TrainConfig.from_dict(bad)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"entry": "x:y", "config": {"strategy_payload": payload}}))
    (run / "records.jsonl").write_text(json.dumps({"type": "run", "status": "done", "config":
                                                   {"strategy_payload": payload}}) + "\n")
    RunResult.load(run).summary()
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_minibatch_with_the_parameter_server_and_with_int8_fetches_at_wire_size(tmp_path):
    base = {**SMALL, "mode": "minibatch", "model": "sage", "fanouts": [3, 2], "batch_size": 40,
            "seed_split": "chunk", "hidden": 8}
    ps = train(**base, sync="ps", staleness=1, pipeline=True, run_dir=tmp_path / "ps")  # + a prefetch thread
    assert ps.status == "done" and ps.world_size == 3
    steps = [r for r in ps.records if r.get("type") == "step"]
    n = (8 * 8 + 8 + 8 * 8) + (2 * 8 + 2 + 2 * 8)  # SAGE 8 -> 8 -> 2: lin_l (w, b) and lin_r (w) per layer
    push = ps.bytes_matrix("ps_push")
    for rank in (0, 1):
        n_steps = sum(1 for s in steps if s["rank"] == rank)
        assert n_steps == 5 * [r for r in ps.records if r.get("type") == "start" and r["rank"] == rank][0][
            "steps_per_epoch"]
        assert push[rank, 2] == n_steps * n * 4
    g = ps.summary()["grad_staleness"]
    assert g["max"] <= 1 and g["count"] == len(steps)  # one age per step, each measured

    q = train(**base, codec="int8", run_dir=tmp_path / "int8")
    assert q.status == "done"
    eps = [r for r in q.records if r.get("type") == "epoch"]
    rows = sum(r["remote_rows_fetched"] for r in eps)
    got = sum(d.get("fetch_resp", 0) for r in eps for d in r["bytes_recv"].values())
    assert rows > 0 and got == rows * (8 + 2)  # int8: D bytes and a float16 scale per row


@pytest.mark.slow
def test_local_sgd_averages_encoded_weights_with_a_codec(tmp_path):
    res = train(**SMALL, mode="local-sgd", local_sgd_period=2, codec="fp16", run_dir=tmp_path / "r")
    assert res.status == "done" and res.config["grad_sync"] == "averaging" and res.config["codec"] == "fp16"
    eps = [r for r in res.records if r.get("type") == "epoch"]
    n = 8 * 16 + 16 + 16 * 2 + 2  # GCN 8 -> 16 -> 2
    rows = -(-n // 256)  # the weights travel as rows of 256 values, zero-padded
    for r in eps:
        avg = r["bytes_sent"].get(str(1 - r["rank"]), {}).get("model_avg", 0)
        assert avg == (rows * 256 * 2 if r["averaged"] else 0), r["epoch"]  # fp16: 2 bytes a value
    assert [r["averaged"] for r in eps if r["rank"] == 0] == [False, True, False, True, True]
    for e in (1, 3, 4):  # every worker averaged the same decoded copies: one model
        a, b = (r["weights_checksum"] for r in eps if r["epoch"] == e)
        assert a == b


@pytest.mark.slow
def test_train_on_a_ready_plan_or_a_saved_plan_directory(tmp_path):
    from dgnn_lab import datasets
    from dgnn_lab.partition import load_assignment, partition, save_plan

    data = datasets.load(SMALL["dataset"], **SMALL["dataset_args"])
    plan = partition(data, 2, "range")
    a = train(**{**SMALL, "epochs": 2, "partition": plan}, run_dir=tmp_path / "a")
    assert a.status == "done" and a.config["partition"] == "range"
    assert torch.equal(load_assignment(tmp_path / "a" / "plan"), plan.assignment)
    save_plan(plan, tmp_path / "saved")
    b = train(**{**SMALL, "epochs": 2, "partition": "metis"}, partition_dir=str(tmp_path / "saved"),
              run_dir=tmp_path / "b")
    assert b.config["partition"] == "range"
    assert b.status == "done" and not (tmp_path / "b" / "plan").exists()  # trained on the saved plan itself
    np.testing.assert_array_equal(a.bytes_matrix("halo_"), b.bytes_matrix("halo_"))
    assert a.summary()["train_loss"] == b.summary()["train_loss"]  # the same plan: the same training


def test_a_plan_that_does_not_fit_is_refused_before_any_process_starts(tmp_path):
    from dgnn_lab import datasets
    from dgnn_lab.partition import partition, save_plan

    data = datasets.load(SMALL["dataset"], **SMALL["dataset_args"])
    with pytest.raises(ValueError, match="plan of 3 parts but workers=2"):
        TrainConfig(**SMALL | {"partition": partition(data, 3, "range")})
    with pytest.raises(ValueError, match="vertex-cut"):
        TrainConfig(**SMALL | {"partition": partition(data, 2, "hdrf"), "execution": "full-graph"})
    save_plan(partition(datasets.load("karate"), 2, "range"), tmp_path / "karate")
    with pytest.raises(ValueError, match="partition='random' and partition_dir .* name two partitions"):
        TrainConfig(**SMALL, partition_dir=str(tmp_path / "karate"))
    with pytest.raises(ValueError, match="34 nodes but dataset 'csbm' has 400"):
        train(**SMALL | {"partition": "range"}, partition_dir=str(tmp_path / "karate"), run_dir=tmp_path / "r")
    assert not any((tmp_path / "r").glob("records*.jsonl"))
    with pytest.raises(ValueError, match="partition_dir.*plan.json"):
        TrainConfig(**SMALL, partition_dir=str(tmp_path / "nothing"))
