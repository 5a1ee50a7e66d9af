"""``dgnn-lab partition``: exit codes, the report, ``--json`` keys, ``--save`` and ``--save-assignment``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dgnn_lab.cli import main
from dgnn_lab.datasets import load
from dgnn_lab.partition import load_plan, partition, partition_stats


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["partition", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_report(capsys):
    code, out, err = run(capsys, "--dataset", "karate", "--parts", "3", "--method", "metis", "--hops", "2")
    assert code == 0, err
    for text in ("owned", "halo(2-hop)", "edge cut", "comm volume", "replication factor", "balance", "time"):
        assert text in out
    vc = run(capsys, "--dataset", "karate", "--parts", "2", "--method", "dbh")[1]
    assert "masters" in vc and "mirrors per node" in vc


def test_json_keys_and_values(capsys):
    code, out, _ = run(capsys, "--dataset", "csbm", "--dataset-arg", "num_nodes=300", "--parts", "4",
                       "--method", "ldg", "--hops", "2", "--seed", "3", "--json")
    assert code == 0
    d = json.loads(out)
    for key in ("method", "num_parts", "num_nodes", "num_edges", "edge_cut", "comm_volume", "replication_factor",
                "balance", "seconds", "per_part"):
        assert key in d, key
    assert set(d["balance"]) >= {"nodes", "edges", "train"}
    assert len(d["per_part"]) == 4 and all({"owned", "halo", "edges", "train"} <= set(r) for r in d["per_part"])
    data = load("csbm", num_nodes=300)
    want = partition_stats(partition(data, 4, "ldg", hops=2, seed=3), data)
    assert d["edge_cut"] == want.edge_cut and d["comm_volume"] == want.comm_volume
    assert [r["halo"] for r in d["per_part"]] == [r["halo"] for r in want.per_part]
    assert sum(r["owned"] for r in d["per_part"]) == d["num_nodes"] == 300
    assert np.array(d["boundary_sizes"]).sum() == d["comm_volume"]


def test_balance_flag(capsys):
    code, out, _ = run(capsys, "--dataset", "karate", "--parts", "2", "--balance", "train,degree", "--json")
    assert code == 0 and json.loads(out)["balance"]["train"] == pytest.approx(1.0)


def test_save_and_save_assignment(capsys, tmp_path):
    code, out, _ = run(capsys, "--dataset", "karate", "--parts", "3", "--method", "fennel", "--save",
                       str(tmp_path / "plan"), "--save-assignment", str(tmp_path / "a.npy"))
    assert code == 0 and "saved" in out
    plan = load_plan(tmp_path / "plan")
    assert np.array_equal(np.load(tmp_path / "a.npy"), plan.assignment.numpy())
    code, _, _ = run(capsys, "--dataset", "karate", "--parts", "3", "--method", "hdrf",
                     "--save-assignment", str(tmp_path / "e.npy"))
    assert code == 0 and np.load(tmp_path / "e.npy").shape == (156,)  # one part per directed edge


@pytest.mark.parametrize("argv,message", [
    (["--parts", "0"], "num_parts must be between 1 and 34, got 0"),
    (["--parts", "99"], "num_parts must be between 1 and 34, got 99"),
    (["--parts", "2", "--method", "nope"], "valid methods: random, range, metis"),
    (["--parts", "2", "--hops", "-1"], "hops must be >= 0"),
    (["--parts", "2", "--balance", "train,foo"], "unknown balance key 'foo'; valid keys: train, degree"),
    (["--parts", "2", "--method", "random", "--balance", "train"], "needs method='metis'"),
    (["--parts", "2", "--save-assignment", "a.txt"], "must name a .npy file"),
    (["--parts", "2", "--dataset-arg", "bogus=1"], "takes no parameter 'bogus'"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    code, out, err = run(capsys, "--dataset", "karate", *argv)
    assert code == 2 and out == ""
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_unknown_dataset_exits_2(capsys):
    code, _, err = run(capsys, "--dataset", "nosuch", "--parts", "2")
    assert code == 2 and "valid names" in err
