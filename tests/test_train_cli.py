"""``dgnn-lab train``: bad input is one line and exit 2 before any process starts; a real run prints valid JSON."""

from __future__ import annotations

import json

import pytest

from dgnn_lab.cli import main


@pytest.mark.parametrize("args, message", [
    (["--model", "gat"], "unknown model 'gat'; allowed: gcn, sage"),
    (["--mode", "stale"], "unknown mode 'stale'; allowed: full-sync"),
    (["--partition", "hdrf"], "unknown partition 'hdrf'; allowed: random, range, metis, ldg, fennel"),
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


def test_unknown_dataset_and_missing_planetoid_files(capsys, tmp_path):
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
