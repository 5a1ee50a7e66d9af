"""RunResult from hand-written records (no processes): tables, summary fields, JSONL round trip, torchrun merge."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dgnn_lab.dist import RunResult
from dgnn_lab.dist.telemetry import JsonlWriter, jsonable


def _epoch(rank, epoch, *, compute, loss, val, test, sent, recv=None, fwd_rows=None, epoch_s=1.0):
    return {"type": "epoch", "rank": rank, "time": 100.0 + epoch + rank / 10, "epoch": epoch, "epoch_s": epoch_s,
            "compute_s": compute, "comm_s": 0.1, "wait_s": 0.2, "loss": loss, "train_acc": 0.5, "val_acc": val,
            "test_acc": test, "bytes_sent": sent, "bytes_recv": recv or {}, "peak_mem_bytes": 1000,
            "events": [["compute", 0.0, compute]], "fwd_rows": fwd_rows or {}}


def _records():
    # two workers, three epochs; rank 0 sends 100 B of halo_fwd/L0 + 10 B halo_bwd/L0 + 8 B grad to rank 1
    recs = [{"type": "run", "rank": None, "time": 99.0, "status": "running", "world_size": 2, "cores": 2,
             "backend": "gloo", "num_threads": 1}]
    vals = [0.5, 0.7, 0.7]
    tests = [0.4, 0.6, 0.65]
    for e in range(3):
        recs.append(_epoch(0, e, compute=1.0, loss=1.0 / (e + 1), val=vals[e], test=tests[e], epoch_s=1.0 + e,
                           sent={"1": {"halo_fwd/L0": 100, "halo_bwd/L0": 10, "grad_allreduce": 8}},
                           recv={"1": {"halo_fwd/L0": 40, "grad_allreduce": 8}},
                           fwd_rows={"0": 5, "1": 7}))
        recs.append(_epoch(1, e, compute=3.0, loss=1.0 / (e + 1), val=vals[e], test=tests[e], epoch_s=2.0,
                           sent={"0": {"halo_fwd/L0": 40, "grad_allreduce": 8}},
                           recv={"0": {"halo_fwd/L0": 100, "halo_bwd/L0": 10, "grad_allreduce": 8}},
                           fwd_rows={"0": 2, "1": 3 + e}))
    recs.append({"type": "run", "rank": None, "time": 110.0, "status": "done", "world_size": 2, "cores": 2,
                 "backend": "gloo", "num_threads": 1, "elapsed_s": 11.0, "error": None})
    return recs


def test_epochs_table_and_bytes_matrix():
    res = RunResult(records=_records(), status="done", world_size=2, cores=2, num_threads=1)
    df = res.epochs()
    assert len(df) == 6 and list(df["epoch"]) == [0, 0, 1, 1, 2, 2] and list(df["rank"]) == [0, 1] * 3
    assert list(df["bytes_sent"]) == [118, 48] * 3
    assert list(df["bytes_recv"]) == [48, 118] * 3
    assert list(df.columns[:11]) == ["rank", "epoch", "epoch_s", "compute_s", "comm_s", "wait_s", "loss",
                                     "train_acc", "val_acc", "test_acc", "peak_mem_bytes"]
    assert "events" not in df.columns and "fwd_rows" not in df.columns  # nested fields stay in the records
    recs = _records()
    recs[1]["staleness"] = 2  # a protocol's own scalar becomes a column
    col = RunResult(records=recs, status="done", world_size=2).epochs()["staleness"]
    assert col.iloc[0] == 2 and col.iloc[1:].isna().all()
    assert res.bytes_matrix().tolist() == [[0, 354], [144, 0]]
    assert res.bytes_matrix("halo_").tolist() == [[0, 330], [120, 0]]
    assert res.bytes_matrix("halo_bwd").tolist() == [[0, 30], [0, 0]]
    assert res.bytes_matrix().dtype == np.int64
    long = res.bytes_table()
    assert long["bytes"].sum() == 2 * (354 + 144)  # each message appears once sent and once received


def test_summary_fields():
    res = RunResult(records=_records(), status="done", world_size=2, cores=2, num_threads=1)
    s = res.summary()
    assert s["status"] == "done" and s["world_size"] == 2 and s["cores"] == 2 and s["oversubscribed"] is False
    assert s["train_loss"] == pytest.approx([1.0, 0.5, 1 / 3])
    assert s["epoch_seconds"] == [2.0, 2.0, 3.0]  # per epoch, the slowest worker
    assert s["test_acc"] == 0.65
    assert s["best_epoch"] == 1 and s["test_acc_at_best_val"] == 0.6  # first epoch reaching the best val acc
    assert s["workers"][0] == {"rank": 0, "compute_s": 3.0, "comm_s": pytest.approx(0.3),
                               "wait_s": pytest.approx(0.6), "epoch_s": 6.0, "cpu_s": None, "work": {},
                               "bytes_sent": 354, "bytes_recv": 144, "train_bytes": 354, "eval_bytes": 0}
    assert s["workers"][1]["compute_s"] == 9.0
    assert s["imbalance"] == pytest.approx(9.0 / 6.0)
    assert s["bytes_matrix"] == [[0, 354], [144, 0]]
    assert s["halo_bytes"] == 330 + 120
    # layer 0: 5 + 2 every epoch; layer 1: 7 + (3, 4, 5) -> mean 11
    assert s["forward_rows_per_layer"] == [7.0, 11.0]
    json.dumps(s)  # the CLI prints it as JSON


def _evaluated_records():
    """:func:`_records` plus evaluation traffic: each epoch rank 0 sends rank 1 ``eval`` 6 B and
    ``eval_fetch_resp`` 20 B, rank 1 sends rank 0 ``eval`` 6 B; epoch 2 is not evaluated."""
    recs = _records()
    for r in recs:
        if r["type"] == "epoch" and r["epoch"] < 2:
            peer = str(1 - r["rank"])
            r["bytes_sent"][peer].update({"eval": 6, **({"eval_fetch_resp": 20} if r["rank"] == 0 else {})})
    return recs


def test_training_traffic_apart_from_evaluation_traffic():
    recs = _evaluated_records()
    res = RunResult(records=recs, status="done", world_size=2, cores=2, num_threads=1)
    # the oracle from the record fields: purposes starting with "eval" are evaluation, the rest training
    sent = [(r["rank"], int(q), purpose, n) for r in recs if r["type"] == "epoch"
            for q, per in r["bytes_sent"].items() for purpose, n in per.items()]
    want_eval = sum(n for *_, purpose, n in sent if purpose.startswith("eval"))
    want_train = sum(n for *_, purpose, n in sent if not purpose.startswith("eval"))
    assert (want_train, want_eval) == (354 + 144, 2 * (6 + 20 + 6))  # the training of _records, 2 evaluations
    assert res.split_bytes() == {"train": want_train, "eval": want_eval}
    assert res.total_bytes() == want_train + want_eval
    assert res.total_bytes("train") == want_train and res.total_bytes("eval") == want_eval
    s = res.summary()
    assert (s["train_bytes"], s["eval_bytes"], s["total_bytes"]) == (want_train, want_eval, want_train + want_eval)
    assert [(w["train_bytes"], w["eval_bytes"]) for w in s["workers"]] == [(354, 52), (144, 12)]
    assert all(w["train_bytes"] + w["eval_bytes"] == w["bytes_sent"] for w in s["workers"])
    assert s["train_bytes_matrix"] == [[0, 354], [144, 0]] and s["bytes_matrix"] == [[0, 406], [156, 0]]
    assert res.bytes_matrix().tolist() == [[0, 406], [156, 0]]  # all traffic: the numpy form, unchanged
    assert res.bytes_matrix(traffic="eval").tolist() == [[0, 52], [12, 0]]
    assert res.bytes_matrix("halo_", traffic="train").tolist() == [[0, 330], [120, 0]]
    df = res.bytes_frame()  # training traffic, labelled
    assert df.index.name == "sender" and df.columns.name == "receiver" and list(df.columns) == [0, 1]
    assert df.to_numpy().tolist() == [[0, 354], [144, 0]] and df.loc[1, 0] == 144
    assert res.bytes_frame("eval").loc[0, 1] == 52 and res.bytes_frame("all").loc[0, 1] == 406
    assert res.bytes_frame("all", "halo_bwd").to_numpy().tolist() == [[0, 30], [0, 0]]
    with pytest.raises(ValueError, match="traffic must be one of train, eval, all"):
        res.bytes_frame("training")


def test_repr_is_short():
    res = RunResult(records=_records() * 100, status="done", world_size=2, cores=2)
    assert repr(res) == ("RunResult(status='done', world_size=2, cores=2, backend=None, epochs=3, records=800, "
                         "run_dir=None)")


def test_oversubscribed_and_empty_run():
    res = RunResult(records=[], status="failed", world_size=4, cores=2, num_threads=1)
    assert res.oversubscribed is True
    s = res.summary()
    assert s["epochs"] == 0 and s["train_loss"] == [] and s["test_acc"] is None and s["imbalance"] is None
    assert s["forward_rows_per_layer"] == [] and s["bytes_matrix"] == [[0] * 4 for _ in range(4)]


def test_load_round_trips_launcher_run_dir(tmp_path):
    w = JsonlWriter(tmp_path / "records.jsonl")
    for r in _records():
        w.write(r)
    w.close()
    (tmp_path / "config.json").write_text(json.dumps({"entry": "m:f", "config": {"lr": 0.01}, "world_size": 2}))
    res = RunResult.load(tmp_path)
    assert res.status == "done" and res.world_size == 2 and res.cores == 2 and res.config == {"lr": 0.01}
    assert res.records == _records()
    assert res.summary()["bytes_matrix"] == [[0, 354], [144, 0]]
    assert res.elapsed_s == 11.0 and res.entry == "m:f"


def test_load_merges_per_rank_files_and_derives_status(tmp_path):
    recs = [r for r in _records() if r["type"] == "epoch"]
    for rank in (0, 1):
        w = JsonlWriter(tmp_path / f"records-rank{rank}.jsonl")
        w.write({"type": "ready", "rank": rank, "time": 99.5, "world_size": 2, "cores": 8, "num_threads": 4,
                 "backend": "gloo"})
        for r in recs:
            if r["rank"] == rank:
                w.write(r)
        w.close()
    res = RunResult.load(tmp_path)
    assert res.status == "incomplete"  # nobody said done yet
    assert [r["time"] for r in res.records] == sorted(r["time"] for r in res.records)
    assert res.cores == 8 and res.num_threads == 4 and res.world_size == 2
    with open(tmp_path / "records-rank1.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "done", "rank": 1, "time": 200.0}) + "\n")
        fh.write('{"type": "torn li')  # a writer killed mid-line: skipped
    with open(tmp_path / "records-rank0.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "done", "rank": 0, "time": 200.0}) + "\n")
    assert RunResult.load(tmp_path).status == "done"
    with open(tmp_path / "records-rank0.jsonl", "a") as fh:
        fh.write(json.dumps({"type": "error", "rank": 0, "time": 201.0, "traceback": "x"}) + "\n")
    assert RunResult.load(tmp_path).status == "failed"


def test_load_of_a_directory_without_records_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no records"):
        RunResult.load(tmp_path)


def test_jsonable_normalises_tensors_numpy_and_keys():
    import torch

    rec = jsonable({"a": torch.tensor(1.5), "b": np.int64(3), "c": {0: {"p": np.arange(2)}}, "d": (1, 2)})
    assert rec == {"a": 1.5, "b": 3, "c": {"0": {"p": [0, 1]}}, "d": [1, 2]}
    with pytest.raises(TypeError, match="JSON-able"):
        jsonable({"x": object()})
