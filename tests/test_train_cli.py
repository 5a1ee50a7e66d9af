"""``dgnn-lab train``: bad input is one line and exit 2 before any process starts; a real run prints valid JSON."""

from __future__ import annotations

import json

import pytest

from dgnn_lab.cli import main


@pytest.mark.parametrize("args, message", [
    (["--model", "gat"], "unknown model 'gat'; allowed: gcn, sage"),
    (["--mode", "stale"], "unknown mode 'stale'; allowed: full-sync"),
    (["--partition", "hdrfx"], "unknown partition 'hdrfx'; allowed: random, range, metis, ldg, fennel, volume, cost"),
    (["--workers", "0"], "workers must be an integer >= 1, got 0"),
    (["--hidden", "0"], "hidden must be an integer >= 1, got 0"),
    (["--layers", "-1"], "layers must be an integer >= 1, got -1"),
    (["--epochs", "0"], "epochs must be an integer >= 1, got 0"),
    (["--dropout", "1.5"], "dropout must be in [0.0, 1.0), got 1.5"),
    (["--backend", "mpi"], "unknown backend 'mpi'; allowed: auto, gloo, nccl"),
    (["--launcher", "slurm"], "unknown launcher 'slurm'; allowed: spawn, torchrun"),
    (["--dataset-arg", "nodes=5"], "dataset 'karate' takes no parameter 'nodes'"),
    (["--data-root", "/nowhere"], "--data-root applies to the Planetoid datasets only"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, capsys, tmp_path):
    rc = main(["train", "--dataset", "karate", "--run-dir", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_unknown_dataset_and_missing_planetoid_files(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DGNN_LAB_PLANETOID_URL", "http://127.0.0.1:9")  # offline, even on a machine that is not
    assert main(["train", "--dataset", "imagenet"]) == 2
    assert "unknown dataset 'imagenet'" in capsys.readouterr().err
    assert main(["train", "--dataset", "cora", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'cora' is not on disk" in err and str(tmp_path) in err


def test_torchrun_launcher_writes_the_spec_and_prints_the_command(capsys, tmp_path):
    rc = main(["train", "--dataset", "karate", "--workers", "3", "--launcher", "torchrun", "--run-dir",
               str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"][:1] == ["torchrun"] and "--nproc-per-node" in out["command"]
    assert out["command"][-3:] == ["-m", "dgnn_lab.worker", out["spec"]]
    spec = json.loads((tmp_path / "torchrun.json").read_text())
    assert spec["entry"] == "dgnn_lab.execution.loop:worker_main"
    assert spec["config"]["workers"] == 3 and spec["config"]["dataset"] == "karate"
    rc = main(["train", "--dataset", "karate", "--launcher", "torchrun", "--run-dir", str(tmp_path / "b")])
    text = capsys.readouterr().out
    assert rc == 0 and "MASTER_ADDR" in text and "GLOO_SOCKET_IFNAME" in text

# A real run through the CLI (--json keys, exit code, report) is tested on Cora in test_train_exact.py.


def _split_summary(train_bytes: int, eval_bytes: int, eval_every: int = 1) -> dict:
    cfg = {"model": "gcn", "layers": 2, "hidden": 16, "dataset": "cora", "partition": "metis",
           "mode": "full-sync", "workers": 2, "eval_every": eval_every}
    workers = [{"rank": i, "compute_s": 1.0, "comm_s": 0.5, "wait_s": 0.25, "bytes_sent": 10, "bytes_recv": 10,
                "train_bytes": 7, "eval_bytes": 3} for i in range(2)]
    return {"world_size": 2, "config": cfg, "workers": workers, "epochs": 2, "num_threads": 1, "cores": 2,
            "train_bytes": train_bytes, "eval_bytes": eval_bytes, "total_bytes": train_bytes + eval_bytes,
            "halo_bytes": 25_000_000, "bytes_matrix": [[0, 372_000_000], [0, 0]],
            "train_bytes_matrix": [[0, 31_000_000], [0, 0]]}


def test_report_shows_training_bytes_first_and_evaluation_bytes_apart():
    from dgnn_lab.cli.train import report

    lines = report(_split_summary(31_000_000, 341_000_000)).splitlines()
    train = next(i for i, line in enumerate(lines) if line.startswith("train bytes"))
    assert lines[train] == "train bytes   31 MB sent by all workers over the run for training"
    assert lines[train + 1] == ("eval bytes    341 MB sent for evaluation (evaluated every 1 epoch); "
                                "all traffic 372 MB")
    assert lines[train + 2] == "halo bytes    25 MB of the training bytes (forward + backward, wire size)"
    matrix = lines.index("training bytes sent (row = sender, column = receiver; evaluation traffic not included)")
    assert "31 MB" in lines[matrix + 3] and "372 MB" not in "\n".join(lines[matrix:])  # training's matrix
    header = next(line for line in lines if line.startswith("rank"))
    assert header.index("train sent") < header.index("eval sent") < header.index("received")
    assert lines[lines.index(header) + 2].split()[-6:] == ["7", "B", "3", "B", "10", "B"]  # rank 0
    never = report(_split_summary(31_000_000, 0, eval_every=0))
    assert "eval bytes    0 B sent for evaluation (never evaluated); all traffic 31 MB" in never


@pytest.mark.slow
def test_a_real_run_reports_training_and_evaluation_traffic_apart(capsys, tmp_path):
    """2 workers, 3 full-graph epochs, evaluated every epoch: the --json split is exact, against the records."""
    from dgnn_lab.cli.train import report
    from dgnn_lab.dist import RunResult

    rc = main(["train", "--dataset", "csbm", "--dataset-arg", "num_nodes=300", "--dataset-arg", "num_features=8",
               "--workers", "2", "--epochs", "3", "--eval-every", "1", "--hidden", "8",
               "--run-dir", str(tmp_path / "run"), "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    s = json.loads(out.out)
    recs = RunResult.load(tmp_path / "run").records
    sent = [(purpose, n) for r in recs if r.get("type") == "epoch" for per in r["bytes_sent"].values()
            for purpose, n in per.items()]
    want_eval = sum(n for purpose, n in sent if purpose.startswith("eval"))
    assert s["eval_bytes"] == want_eval > 0 and s["train_bytes"] == sum(n for _, n in sent) - want_eval > 0
    assert s["train_bytes"] + s["eval_bytes"] == s["total_bytes"] == sum(map(sum, s["bytes_matrix"]))
    assert sum(map(sum, s["train_bytes_matrix"])) == s["train_bytes"] >= s["halo_bytes"] > 0
    assert sum(w["train_bytes"] for w in s["workers"]) == s["train_bytes"]
    assert all(w["train_bytes"] + w["eval_bytes"] == w["bytes_sent"] for w in s["workers"])
    text = report(s)
    assert text.index("train bytes ") < text.index("eval bytes ")


def test_report_names_the_parameter_server_and_gradient_staleness():
    from dgnn_lab.cli.train import report

    cfg = {"sync": "ps", "workers": 2, "staleness": 2, "model": "gcn", "layers": 2, "hidden": 16,
           "dataset": "cora", "partition": "metis", "mode": "full-sync"}
    workers = [{"rank": i, "compute_s": 1.0, "comm_s": 0.5, "wait_s": 0.25, "bytes_sent": 10, "bytes_recv": 10}
               for i in range(3)]
    text = report({"world_size": 3, "config": cfg, "workers": workers, "epochs": 2, "num_threads": 1, "cores": 2,
                   "grad_staleness": {"hist": {"0": 3, "1": 5}, "mean": 0.625, "max": 1, "count": 8}})
    assert "2 workers + 1 parameter server" in text
    assert "2 (server)" in text and "1 (server)" not in text
    assert "0.62 rounds late on average, at most 1 (bound 2; gradients by age {0: 3, 1: 5})" in text


# -- the options are generated from TrainConfig's fields (no training is launched below) ----------------------

def _train_parser():
    import argparse

    from dgnn_lab.cli.train import _add_options

    p = argparse.ArgumentParser(prog="dgnn-lab train")
    _add_options(p)
    return p


def _parsed_config(*argv):
    from dgnn_lab.cli import build_parser
    from dgnn_lab.cli.train import _config

    return _config(build_parser().parse_args(["train", "--dataset", "karate", *argv]))


def test_every_config_field_has_an_option_with_its_default_in_the_help(capsys):
    import dataclasses

    from dgnn_lab.cli.train import flag
    from dgnn_lab.train.config import TrainConfig

    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    dests = vars(_train_parser().parse_args(["--dataset", "karate"]))
    skipped = []
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("cli", True) is False:
            skipped.append(f.name)
            continue
        assert f.metadata.get("help"), f.name
        assert flag(f) in text, f.name
        if not f.metadata.get("shared"):  # --dataset / --dataset-arg: the shared dataset options
            assert f.name in dests, f.name
    assert skipped == ["strategy"]
    for old in ("--threads", "--timeout", "--equal-steps", "--no-equal-steps", "--no-pipeline",
                "--local-sgd-correction", "--partition-dir", "--execution", "--halo", "--grad-sync", "--codec",
                "--sampler", "--cache", "--launcher", "--json", "--dataset-arg"):
        assert old in text, old
    assert "(default: 10,5)" in text and "(default: max(1, cores // workers))" in text
    assert "pipegcn" in text and "--partition-dir plans/cora2" in text  # registry names; the epilog example


@pytest.mark.parametrize("argv, kwargs", [
    ([], {}),
    (["--workers", "3", "--partition", "random", "--model", "sage", "--layers", "3", "--hidden", "8", "--epochs",
      "5", "--lr", "0.1", "--weight-decay", "0.001", "--dropout", "0.2", "--eval-every", "0", "--seed", "4",
      "--backend", "gloo", "--threads", "1", "--timeout", "30", "--run-dir", "out/r", "--launcher", "spawn"],
     {"workers": 3, "partition": "random", "model": "sage", "layers": 3, "hidden": 8, "epochs": 5, "lr": 0.1,
      "weight_decay": 0.001, "dropout": 0.2, "eval_every": 0, "seed": 4, "backend": "gloo", "threads_per_worker": 1,
      "timeout_s": 30.0, "run_dir": "out/r"}),
    (["--mode", "minibatch", "--fanouts", "5,-1", "--batch-size", "16", "--seed-split", "chunk", "--remote-sampling",
      "halo", "--cache", "degree", "--cache-size", "0.2", "--no-equal-steps", "--pipeline"],
     {"mode": "minibatch", "fanouts": [5, -1], "batch_size": 16, "seed_split": "chunk", "remote_sampling": "halo",
      "cache": "degree", "cache_size": 0.2, "equal_steps": False, "pipeline": True}),
    (["--mode", "minibatch", "--equal-steps", "--no-pipeline"], {"mode": "minibatch"}),
    (["--mode", "full-stale", "--staleness", "2", "--skip-threshold", "0.1", "--smoothing", "0.3", "--quantize",
      "fp16", "--straggler", "1:2.0"],
     {"mode": "full-stale", "staleness": 2, "skip_threshold": 0.1, "smoothing": 0.3, "quantize": "fp16",
      "straggler": "1:2.0"}),
    (["--mode", "full-bns", "--bns-p", "0.5", "--sync", "ps", "--staleness", "0"],
     {"mode": "full-bns", "bns_p": 0.5, "sync": "ps", "staleness": 0}),
    (["--mode", "local-sgd", "--local-sgd-period", "3", "--local-sgd-correction"],
     {"mode": "local-sgd", "local_sgd_period": 3, "local_sgd_correction": True}),
    (["--execution", "minibatch", "--sampler", "neighbor", "--codec", "int8", "--grad-sync", "allreduce"],
     {"execution": "minibatch", "sampler": "neighbor", "codec": "int8", "grad_sync": "allreduce"}),
    (["--halo", "pipegcn"], {"halo": "pipegcn"}),
])
def test_flags_give_the_config_built_directly(argv, kwargs):
    from dgnn_lab.train.config import TrainConfig

    assert _parsed_config(*argv).to_dict() == TrainConfig(dataset="karate", **kwargs).to_dict()


def test_bad_fanouts_is_one_line(capsys):
    rc = main(["train", "--dataset", "karate", "--mode", "minibatch", "--fanouts", "10,x"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "fanouts must be comma-separated integers such as 10,5" in err and "'10,x'" in err


def test_partition_dir_trains_on_a_saved_plan_and_checks_the_worker_count(capsys, tmp_path):
    from dgnn_lab.datasets import load
    from dgnn_lab.partition import partition, save_plan

    plan_dir = tmp_path / "plan"
    save_plan(partition(load("karate"), 2, "metis"), plan_dir)
    cfg = _parsed_config("--partition-dir", str(plan_dir))
    assert cfg.partition_dir == str(plan_dir) and cfg.partition == "metis" and cfg.workers == 2
    rc = main(["train", "--dataset", "karate", "--partition-dir", str(plan_dir), "--launcher", "torchrun",
               "--run-dir", str(tmp_path / "run"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["spec"]
    rc = main(["train", "--dataset", "karate", "--workers", "3", "--partition-dir", str(plan_dir),
               "--run-dir", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "partition_dir" in err and "2 parts" in err and "workers=3" in err
    assert not (tmp_path / "bad").exists()


def test_halo_protocol_with_minibatch_is_one_line_naming_both(capsys, tmp_path):
    rc = main(["train", "--dataset", "karate", "--halo", "pipegcn", "--mode", "minibatch", "--run-dir",
               str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "halo='pipegcn'" in err and "minibatch" in err
    assert not (tmp_path / "run").exists()


def test_demo_passes_train_options_on(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DGNN_LAB_SMOKE", "1")
    rc = main(["demo", "--epochs", "2", "--launcher", "torchrun", "--run-dir", str(tmp_path), "--json"])
    out = capsys.readouterr().out
    assert rc == 0, out
    spec = json.loads((tmp_path / "torchrun.json").read_text())
    assert spec["config"]["epochs"] == 2 and spec["config"]["dataset"] == "csbm"
