"""dgnn_lab.records against hand-computed oracles: small record lists whose every statistic is worked out by
hand below (the numbers in the comments), never with the module's own helpers."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from dgnn_lab import records as R

EVAL = {0: True, 1: True, 2: True, 3: False}  # epoch 3 is not evaluated


def ps_run() -> list[dict]:
    """Two workers (ranks 0, 1) and a parameter server (rank 2, role "server"), four epochs.

    rank 0 per epoch: epoch_s 1, 2, 3, 2; compute 1, comm 0.5, wait 0.25; sends rank 1 halo_fwd 100, halo_bwd
    10, grad 8, metrics 2 (+ eval 4 on evaluated epochs) and the server ps_push 50; receives 72 bytes.
    rank 1 per epoch: epoch_s 1.5, 1, 4, 2.5; compute 3, comm 0.5, wait 0.5; sends rank 0 halo_fwd 40,
    metrics 2 and the server ps_push 50; receives 150 bytes; a straggler (0.25 s injected per epoch).
    server per round: epoch_s 0.5, 5, 0.5, 0.5; compute 0.5, comm 0.25, wait 0.25; ps_pull 30 to each worker;
    receives 100 bytes.
    """
    recs: list[dict] = [
        {"type": "run", "rank": None, "time": 0.0, "status": "running", "world_size": 3, "cores": 2,
         "backend": "gloo", "num_threads": 1},
        {"type": "start", "rank": 0, "time": 1.0, "num_threads": 1, "num_train": 10},
        {"type": "start", "rank": 1, "time": 1.0, "num_threads": 1, "num_train": 10},
        {"type": "start", "rank": 2, "time": 1.0, "num_threads": 1, "role": "server"},
    ]
    acc = {"train_acc": [0.5, 0.6, 0.7, None], "val_acc": [0.5, 0.8, 0.8, None], "test_acc": [0.4, 0.6, 0.75, None]}
    for e in range(4):
        to1 = {"halo_fwd/L0": 100, "halo_bwd/L0": 10, "grad_allreduce": 8, "metrics": 2}
        if EVAL[e]:
            to1["eval"] = 4
        common = {"type": "epoch", "epoch": e, "loss": 1 / (e + 1), **{k: v[e] for k, v in acc.items()}}
        recs.append({**common, "rank": 0, "time": 10.0 + e, "epoch_s": [1.0, 2.0, 3.0, 2.0][e], "compute_s": 1.0,
                     "comm_s": 0.5, "wait_s": 0.25, "bytes_sent": {"1": to1, "2": {"ps_push": 50}},
                     "bytes_recv": {"1": {"halo_fwd/L0": 40, "metrics": 2}, "2": {"ps_pull": 30}},
                     "events": [["compute", 0.0, 1.0]], "fwd_rows": {"0": 5, "1": 7},
                     "staleness_hist": {"0": 5, "1": 3}, "staleness": 0.375, "grad_staleness": 1,
                     "grad_staleness_hist": {"1": 1}})
        recs.append({**common, "rank": 1, "time": 10.1 + e, "epoch_s": [1.5, 1.0, 4.0, 2.5][e], "compute_s": 3.0,
                     "comm_s": 0.5, "wait_s": 0.5, "bytes_sent": {"0": {"halo_fwd/L0": 40, "metrics": 2},
                                                                 "2": {"ps_push": 50}},
                     "bytes_recv": {"0": {"halo_fwd/L0": 100, "halo_bwd/L0": 10, "grad_allreduce": 8, "metrics": 2},
                                    "2": {"ps_pull": 30}},
                     "events": [["compute", 0.0, 3.0]], "fwd_rows": {"0": 2, "1": 3 + e},
                     "staleness_hist": {"0": 2}, "staleness": 0.0, "grad_staleness": 0,
                     "grad_staleness_hist": {"0": 1}, "straggler_s": 0.25})
        recs.append({"type": "epoch", "rank": 2, "time": 10.2 + e, "epoch": e, "role": "server", "loss": None,
                     "epoch_s": [0.5, 5.0, 0.5, 0.5][e], "compute_s": 0.5, "comm_s": 0.25, "wait_s": 0.25,
                     "bytes_sent": {"0": {"ps_pull": 30}, "1": {"ps_pull": 30}},
                     "bytes_recv": {"0": {"ps_push": 50}, "1": {"ps_push": 50}},
                     "server_staleness_hist": {"0": 1, "1": 1}, "version": e + 1})
    recs += [{"type": "done", "rank": p, "time": 20.0} for p in range(3)]
    recs.append({"type": "run", "rank": None, "time": 21.0, "status": "done", "world_size": 3, "cores": 2,
                 "backend": "gloo", "num_threads": 1, "elapsed_s": 21.0, "error": None})
    return json.loads(json.dumps(recs))


def minibatch_run() -> list[dict]:
    """Two mini-batch workers, two epochs. Per record: rows fetched 10 (rank 0) / 20 (rank 1), 2 requests,
    3 cache hits of 4 / 5 lookups, stages 0.5 + 0.25 + 1.0 s, overlap 0.125 s; loop_s 2, 3 (rank 0) and 2.5,
    2 (rank 1); epoch_s 3, 4 and 3.5, 3; sends fetch_resp 400, fetch_req 40, sample_req 8, sample_resp 16,
    eval_fetch_resp 1000. Tested at epoch 0 only (0.7)."""
    recs = [{"type": "start", "rank": p, "time": 0.0, "cache_rows": 5 + p, "cache_nbytes": 100 + 20 * p,
             "num_train": 10, "seeds_local": [8, 6][p]} for p in range(2)]
    for e in range(2):
        for p in range(2):
            recs.append({"type": "epoch", "rank": p, "time": 1.0 + e, "epoch": e,
                         "epoch_s": [[3.0, 4.0], [3.5, 3.0]][p][e], "compute_s": 1.0, "comm_s": 0.0,
                         "wait_s": 0.0, "loss": 0.5, "test_acc": [0.7, None][e],
                         "bytes_sent": {str(1 - p): {"fetch_resp": 400, "fetch_req": 40, "sample_req": 8,
                                                     "sample_resp": 16, "eval_fetch_resp": 1000}},
                         "remote_rows_fetched": 10 * (p + 1), "remote_requests": 2, "cache_hits": 3,
                         "cache_lookups": 4 + p, "sample_s": 0.5, "fetch_s": 0.25, "train_s": 1.0, "overlap_s": 0.125,
                         "loop_s": [[2.0, 3.0], [2.5, 2.0]][p][e]})
    return recs


# ----------------------------------------------------------------------------------------- schema

def test_epoch_record_builds_todays_keys_from_the_communicator_stats():
    stats = {"t0_wall": 5.0, "compute_s": 1.0, "comm_s": 0.5, "wait_s": 0.25,
             "bytes_sent": {1: {"halo_fwd/L0": 64}}, "bytes_recv": {1: {"halo_fwd/L0": 32}},
             "events": [("compute", 0.0, 1.0)]}
    rec = R.epoch_record(3, 2.0, stats, loss=0.5, train_acc=None, val_acc=None, test_acc=None, peak_mem_bytes=7)
    assert rec == {"type": "epoch", "epoch": 3, "epoch_s": 2.0, "compute_s": 1.0, "comm_s": 0.5, "wait_s": 0.25,
                   "loss": 0.5, "train_acc": None, "val_acc": None, "test_acc": None, "peak_mem_bytes": 7,
                   "bytes_sent": {"1": {"halo_fwd/L0": 64}}, "bytes_recv": {"1": {"halo_fwd/L0": 32}},
                   "events": [["compute", 0.0, 1.0]]}  # t0_wall is not a record key
    forked = R.epoch_record(0, 1.0, {**stats, "forks": [{"comm_s": 0.125, "wait_s": 0.5},
                                                        {"comm_s": 0.25, "wait_s": 0.0}]})
    assert forked["prefetch_comm_s"] == 0.375 and forked["prefetch_wait_s"] == 0.5
    assert "prefetch_comm_s" not in R.epoch_record(0, 1.0, {**stats, "forks": []})
    # a server round that closed no communicator epoch: only what it was given
    assert R.epoch_record(2, 0.5, None, role="server", loss=None) == {"type": "epoch", "epoch": 2, "epoch_s": 0.5,
                                                                      "role": "server", "loss": None}
    with pytest.raises(ValueError, match="bytes_sent, compute_s come from"):
        R.epoch_record(0, 1.0, stats, compute_s=2.0, bytes_sent={})
    json.dumps(rec)


def test_check_records_and_epoch_selection():
    with pytest.raises(ValueError, match="record 1 is not a telemetry record"):
        R.check_records([{"type": "run"}, {"rank": 0}])
    assert R.check_records(iter([{"type": "x"}])) == [{"type": "x"}]
    recs = ps_run()
    eps = R.epoch_records(reversed(recs))
    assert [(r["epoch"], r["rank"]) for r in eps] == [(e, p) for e in range(4) for p in range(3)]
    assert R.server_ranks(recs) == {2}
    assert R.server_ranks(recs, workers=1) == {1, 2}
    assert [(r["epoch"], r["rank"]) for r in R.worker_epoch_records(recs)] == [(e, p) for e in range(4) for p in (0, 1)]
    assert [r["rank"] for r in R.server_epoch_records(recs)] == [2, 2, 2, 2]
    assert R.epoch_numbers(recs) == [0, 1, 2, 3]
    live = recs + [{"type": "epoch", "rank": 2, "epoch": 4, "role": "server", "epoch_s": 0.1}]
    assert R.epoch_numbers(live) == [0, 1, 2, 3]  # a server's round alone is no epoch
    by = R.records_by_epoch(live)
    assert list(by) == [0, 1, 2, 3] and [[r["rank"] for r in v] for v in by.values()] == [[0, 1, 2]] * 4


def test_world_cores_threads_and_oversubscription():
    recs = ps_run()
    assert R.world_size_of(recs) == 3 and R.world_size_of(recs, 5) == 5
    assert R.world_size_of([{"type": "epoch", "rank": 1, "bytes_sent": {"3": {"x": 1}}}]) == 4  # a peer seen
    assert R.world_size_of([]) == 1
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        R.world_size_of(recs, 0)
    assert R.cores_of(recs) == 2 and R.cores_of(recs[1:4]) is None
    assert R.threads_of(recs) == 1 and R.threads_of([{"type": "epoch"}]) is None
    assert R.threads_of([{"type": "start", "num_threads": 2}, {"type": "run", "num_threads": 3}]) == 3
    assert R.oversubscribed(3, 2, 1) is True and R.oversubscribed(2, 4, 2) is False
    assert R.oversubscribed(2, None, 1) is None and R.oversubscribed(2, 2, None) is None


# ------------------------------------------------------------------------------------------ bytes

def test_format_bytes_one_decimal_convention():
    cases = {0: "0 B", 999: "999 B", 999.6: "1 kB", 1000: "1 kB", 1234: "1.23 kB", 999_999: "1 MB",
             1_234_567: "1.23 MB", 2.5e9: "2.5 GB", 5e12: "5e+03 GB", -1500: "-1.5 kB"}
    for n, text in cases.items():
        assert R.format_bytes(n) == text, n
    assert R.format_bytes(None) == "n/a"


def test_byte_kinds_and_purpose_groups():
    assert R.counts_as("halo_fwd/L0", "halo") and not R.counts_as("grad_allreduce", "halo")
    assert R.counts_as("grad_allreduce", "training") and R.counts_as("ps_push", "training")
    assert not R.counts_as("eval", "training") and not R.counts_as("eval_fetch_resp", "training")
    assert not R.counts_as("metrics", "training") and R.counts_as("metrics", "total")
    assert R.check_bytes_kind("halo") == "halo"
    with pytest.raises(ValueError, match="bytes must be one of total, training, halo, got 'wire'"):
        R.counts_as("x", "wire")
    groups = {"halo_fwd/L1": "halo forward", "halo_bwd/L0": "halo backward", "halo_x": "halo",
              "grad_allreduce": "gradient all-reduce", "eval": "evaluation", "eval_fetch_resp": "evaluation",
              "eval_sample_req": "evaluation", "metrics": "metrics", "ps_push": "ps_push"}
    assert {p: R.purpose_group(p) for p in groups} == groups
    # every purpose is of exactly one traffic: evaluation (eval, eval_*) or training (the rest, metrics too)
    traffic = {"eval": "eval", "eval_fetch_resp": "eval", "eval_fetch_req": "eval", "eval_sample_resp": "eval",
               "halo_fwd/L0": "train", "grad_allreduce": "train", "metrics": "train", "fetch_resp": "train",
               "sample_req": "train", "ps_push": "train", "model_avg": "train"}
    assert {p: R.traffic_of(p) for p in traffic} == traffic
    assert R.check_traffic("eval") == "eval" and R.TRAFFIC == ("train", "eval", "all")
    with pytest.raises(ValueError, match="traffic must be one of train, eval, all, got 'training'"):
        R.check_traffic("training")


def test_bytes_matrix_totals_and_per_epoch():
    recs = ps_run()
    # row = sender: 0 -> 1: 4 x (100 + 10 + 8 + 2) + 3 x 4 eval = 492; 0 -> 2, 1 -> 2: 4 x 50; 1 -> 0: 4 x 42;
    # the server 2 -> 0 and 2 -> 1: 4 x 30
    m = R.bytes_matrix(recs)
    assert m.dtype == np.int64 and m.tolist() == [[0, 492, 200], [168, 0, 200], [120, 120, 0]]
    assert R.bytes_matrix(recs, purpose_prefix="halo_").tolist() == [[0, 440, 0], [160, 0, 0], [0, 0, 0]]
    assert R.bytes_matrix(recs, purpose_prefix="halo_bwd").tolist() == [[0, 40, 0], [0, 0, 0], [0, 0, 0]]
    with pytest.raises(ValueError, match="outside a world of 2 workers"):
        R.bytes_matrix(recs, world_size=2)
    assert R.total_bytes(recs) == 1300 and R.total_bytes(recs, "ps_") == 640
    assert R.halo_bytes(recs) == 600
    assert R.training_bytes(recs) == 1300 - 12 - 16  # no eval (3 x 4), no metrics (4 epochs x 2 workers x 2)
    assert R.bytes_by_epoch(recs) == [326, 326, 326, 322]  # 174 + 92 + 60, without eval in epoch 3
    assert R.bytes_by_epoch(recs, "training") == [318] * 4 and R.bytes_by_epoch(recs, "halo") == [150] * 4
    assert R.bytes_per_epoch(recs) == 325.0 and R.bytes_per_epoch(recs, "halo") == 150.0
    assert R.bytes_per_epoch([]) == 0.0
    first = R.epoch_records(recs)[0]  # rank 0, epoch 0
    assert R.record_bytes(first) == 174 and R.record_bytes(first, "recv") == 72
    assert R.record_bytes(first, purpose_prefix="ps_") == 50 and R.record_bytes(first, kind="training") == 168
    assert R.record_bytes({"type": "epoch"}) == 0
    assert R.bytes_by_purpose(recs) == {"halo forward": 560, "halo backward": 40, "gradient all-reduce": 32,
                                        "metrics": 16, "evaluation": 12, "ps_push": 400, "ps_pull": 240}
    assert R.bytes_by_purpose(recs, group=False) == {"halo_fwd/L0": 560, "halo_bwd/L0": 40, "grad_allreduce": 32,
                                                     "metrics": 16, "eval": 12, "ps_push": 400, "ps_pull": 240}


def _sent_oracle(recs, *, evaluation: bool) -> int:
    """Bytes sent, from the record fields: purposes starting with "eval" (or all the others)."""
    return sum(n for r in recs if r["type"] == "epoch" for per in r.get("bytes_sent", {}).values()
               for purpose, n in per.items() if purpose.startswith("eval") == evaluation)


def test_training_traffic_apart_from_evaluation_traffic():
    recs = ps_run()
    # evaluation: rank 0 -> 1, 4 bytes on each of the 3 evaluated epochs; training: the other 1300 - 12
    assert _sent_oracle(recs, evaluation=True) == 12 and _sent_oracle(recs, evaluation=False) == 1288
    assert R.split_bytes(recs) == {"train": 1288, "eval": 12}
    assert R.total_bytes(recs, traffic="train") == 1288 and R.total_bytes(recs, traffic="eval") == 12
    assert R.total_bytes(recs, "halo_", traffic="train") == 600 and R.total_bytes(recs, "halo_", traffic="eval") == 0
    assert R.training_bytes(recs) == 1288 - 16  # the protocol comparison's kind also leaves the metrics out
    assert R.bytes_matrix(recs, traffic="train").tolist() == [[0, 480, 200], [168, 0, 200], [120, 120, 0]]
    assert R.bytes_matrix(recs, traffic="eval").tolist() == [[0, 12, 0], [0, 0, 0], [0, 0, 0]]
    assert (R.bytes_matrix(recs, traffic="train") + R.bytes_matrix(recs, traffic="eval")
            == R.bytes_matrix(recs)).all()
    first = R.epoch_records(recs)[0]  # rank 0, epoch 0: 174 sent, 4 of them eval
    assert R.record_bytes(first, traffic="eval") == 4 and R.record_bytes(first, traffic="train") == 170
    assert R.record_bytes(first, "recv", traffic="eval") == 0
    with pytest.raises(ValueError, match="traffic must be one of"):
        R.bytes_matrix(recs, traffic="evaluation")
    # mini-batch: per record fetch 400 + ids 40 + sampling 24 for training, eval_fetch_resp 1000; 4 records
    mb = minibatch_run()
    assert R.split_bytes(mb) == {"train": 4 * 464, "eval": 4 * 1000}
    assert R.split_bytes(mb) == {"train": _sent_oracle(mb, evaluation=False), "eval": _sent_oracle(mb, evaluation=True)}
    assert R.split_bytes([]) == {"train": 0, "eval": 0}
    df = R.bytes_frame(recs)  # training traffic, labelled
    assert df.index.name == "sender" and df.columns.name == "receiver"
    assert list(df.index) == [0, 1, 2] and list(df.columns) == [0, 1, 2]
    assert df.loc[0, 1] == 480 and df.loc[2, 0] == 120 and int(df.to_numpy().sum()) == 1288
    assert R.bytes_frame(recs, traffic="eval").loc[0, 1] == 12 and R.bytes_frame(recs, traffic="all").loc[0, 1] == 492
    assert R.bytes_frame(recs, traffic="all", purpose_prefix="halo_bwd").loc[0, 1] == 40


# ------------------------------------------------------------------------------------------- time

#: ``worker_totals(ps_run())``, worked out by hand (no CPU times or work counts in these records).
PS_RUN_WORKERS = [
        {"rank": 0, "compute_s": 4.0, "comm_s": 2.0, "wait_s": 1.0, "epoch_s": 8.0, "cpu_s": None, "work": {},
         "bytes_sent": 692, "bytes_recv": 288, "train_bytes": 680, "eval_bytes": 12},
        {"rank": 1, "compute_s": 12.0, "comm_s": 2.0, "wait_s": 2.0, "epoch_s": 9.0, "cpu_s": None, "work": {},
         "bytes_sent": 368, "bytes_recv": 600, "train_bytes": 368, "eval_bytes": 0},
        {"rank": 2, "role": "server", "compute_s": 2.0, "comm_s": 1.0, "wait_s": 1.0, "epoch_s": 6.5, "cpu_s": None,
         "work": {}, "bytes_sent": 240, "bytes_recv": 400, "train_bytes": 240, "eval_bytes": 0}]


def test_phase_totals_worker_totals_and_imbalance():
    recs = ps_run()
    t = R.phase_totals(recs)
    np.testing.assert_allclose(t["compute"], [4.0, 12.0, 2.0])
    np.testing.assert_allclose(t["comm"], [2.0, 2.0, 1.0])
    np.testing.assert_allclose(t["wait"], [1.0, 2.0, 1.0])
    np.testing.assert_allclose(t["epoch"], [8.0, 9.0, 6.5])
    np.testing.assert_allclose(t["untimed"], [1.0, 0.0, 2.5])  # rank 1's phases exceed its epoch time: clipped
    assert t["epochs"].tolist() == [4, 4, 4]
    with pytest.raises(ValueError, match="epoch record from rank 2, but world_size is 2"):
        R.phase_totals(recs, 2)
    assert R.worker_totals(recs) == PS_RUN_WORKERS
    assert R.imbalance(recs) == 1.5  # 12 / mean(4, 12); the server's 2 s left out (else 12 / 6 = 2)
    assert R.imbalance([{"type": "epoch", "rank": 0, "epoch": 0, "compute_s": 0.0}]) is None


def test_epoch_seconds_median_and_steady_state():
    recs = ps_run()
    assert R.epoch_seconds(recs) == [1.5, 5.0, 4.0, 2.5]  # slowest process per epoch, the server's 5 s too
    assert R.median([]) is None and R.median([3, None, 1, 2]) == 2 and R.median([4, 1, 3, 2]) == 3
    assert R.s_per_epoch(recs) == 4.0  # epoch 0 left out: median of 5, 4, 2.5
    two = [r for r in recs if r.get("epoch", 0) < 2]
    assert R.s_per_epoch(two) == 5.0  # two epochs: both kept, upper median of 1.5, 5
    assert R.s_per_epoch([]) is None


def test_wait_share_leaves_the_server_out():
    recs = ps_run()
    assert R.wait_share(recs) == pytest.approx((4 * 0.25 + 4 * 0.5) / (8.0 + 9.0))
    # told there is one training worker: rank 1 counts as a server too
    assert R.wait_share(recs, workers=1) == pytest.approx(1.0 / 8.0)
    assert R.wait_share([]) is None


def test_per_epoch_means_leave_epoch_zero_out():
    m = R.per_epoch_means(ps_run())
    # epochs 1..3 kept, 3 processes: compute (1 + 3 + 0.5) x 3 / 3 / 3
    assert m["compute"] == pytest.approx(1.5) and m["comm"] == pytest.approx(1.25 / 3)
    assert m["wait"] == pytest.approx(1.0 / 3)
    assert m["skipped_epochs"] == 1 and m["epochs"] == 3
    assert m["bytes"] == pytest.approx({"halo forward": 140, "halo backward": 10, "gradient all-reduce": 8,
                                        "metrics": 4, "evaluation": 8 / 3, "ps_push": 100, "ps_pull": 60})
    two = R.per_epoch_means([r for r in ps_run() if r.get("epoch", 0) < 2])
    assert two["skipped_epochs"] == 0 and two["epochs"] == 2 and two["compute"] == pytest.approx(4.5 / 3)


# --------------------------------------------------------------------------------------- accuracy

def test_curves_best_validation_and_final_test():
    recs = ps_run()
    c = R.epoch_curves(recs)
    assert c == {"epoch": [0, 1, 2, 3], "loss": [1.0, 0.5, 1 / 3, 0.25], "train_acc": [0.5, 0.6, 0.7, None],
                 "val_acc": [0.5, 0.8, 0.8, None], "test_acc": [0.4, 0.6, 0.75, None]}
    # the first epoch reaching the best validation accuracy (0.8 at epochs 1 and 2)
    assert R.best_val(recs) == {"epoch": 1, "loss": 0.5, "train_acc": 0.6, "val_acc": 0.8, "test_acc": 0.6}
    assert R.test_acc_at_best_val(recs) == 0.6
    assert R.last_value(recs) == 0.75 and R.last_value(recs, "loss") == 0.25  # last evaluated, not epoch 3's
    assert R.best_val([]) is None and R.test_acc_at_best_val([]) is None and R.last_value([]) is None
    # live: rank 1 reported epoch 4 before rank 0 did
    live = recs + [{"type": "epoch", "rank": 1, "epoch": 4, "loss": 0.2, "val_acc": 0.9, "test_acc": 0.95}]
    c = R.epoch_curves(live)
    assert c["epoch"][-1] == 4 and c["loss"][-1] == 0.2 and R.test_acc_at_best_val(live) == 0.95


# -------------------------------------------------------------------------------------- protocols

def test_field_counts_and_age_histograms():
    recs = ps_run()
    # halo rows by age: rank 0 {0: 5, 1: 3} and rank 1 {0: 2}, four epochs each
    assert R.field_counts(recs, "staleness_hist") == {0.0: 28, 1.0: 12}
    assert R.field_counts([{"type": "epoch", "s": [1, 1, 2]}, {"type": "epoch", "s": 3},
                           {"type": "step", "s": 9}, {"type": "epoch", "s": None}], "s") == {1.0: 2, 2.0: 1, 3.0: 1}
    assert R.halo_staleness(recs) == {"hist": {"0": 28, "1": 12}, "count": 40, "max": 1, "mean": 0.3}
    assert R.grad_staleness(recs) == {"hist": {"0": 4, "1": 4}, "count": 8, "max": 1, "mean": 0.5}
    assert R.age_histogram(recs, "server_staleness_hist") == {"hist": {"0": 4, "1": 4}, "count": 8, "max": 1,
                                                              "mean": 0.5}
    assert R.age_histogram(recs, "nothing_hist") is None
    assert R.age_histogram([{"type": "epoch", "h": {"3": 0}}], "h") is None


def test_staleness_summary_prefers_histograms_over_per_epoch_values():
    assert R.staleness_summary(ps_run()) == {"staleness": {"mean": 0.3, "max": 1.0},
                                             "grad_staleness": {"mean": 0.5, "max": 1.0},
                                             "server_staleness": {"mean": 0.5, "max": 1.0}}
    scalar = [{"type": "epoch", "rank": 0, "epoch": e, "staleness": s} for e, s in enumerate([1.0, 3.0, None])]
    assert R.staleness_summary(scalar) == {"staleness": {"mean": 2.0, "max": 3.0}}
    assert R.staleness_summary([]) == {}


def test_forward_rows_and_field_totals():
    recs = ps_run()
    # layer 0: 5 + 2 every epoch; layer 1: 7 + (3, 4, 5, 6) -> mean 11.5
    assert R.forward_rows_per_layer(recs) == [7.0, 11.5]
    assert R.forward_rows_per_layer(minibatch_run()) == []
    assert R.field_total(recs, "straggler_s") == 1.0 and R.field_total(recs, "skipped_blocks") is None


# ------------------------------------------------------------------------------------- mini-batch

def test_cache_hit_rate_and_local_seeds():
    mb = minibatch_run()
    assert R.cache_hit_rate(mb) == pytest.approx(12 / 18)
    assert R.cache_hit_rate(ps_run()) is None  # not a mini-batch run
    assert R.cache_hit_rate([{"type": "epoch", "cache_hits": 0, "cache_lookups": 0}]) == 0.0
    assert R.local_seed_share(mb) == pytest.approx(14 / 20)
    assert math.isnan(R.local_seed_share(ps_run()[4:]))  # no start records


def test_minibatch_metrics_and_worker_sums():
    got = R.minibatch_metrics(minibatch_run())
    want = {"epochs": 2, "rows_fetched": 30.0, "bytes_fetched": 800.0, "id_bytes": 80.0, "sample_bytes": 48.0,
            "remote_requests": 4.0, "cache_hits": 6.0, "cache_lookups": 9.0, "hit_rate": 12 / 18, "cache_rows": 11,
            "cache_bytes": 220, "sample_s": 1.0, "fetch_s": 0.5, "train_s": 2.0, "overlap_s": 0.25,
            "loop_s": 2.75, "epoch_s": 3.75, "test_acc": 0.7}
    assert got == pytest.approx(want) and list(got) == list(want)
    no_loop = [{k: v for k, v in r.items() if k != "loop_s"} for r in minibatch_run()]
    assert math.isnan(R.minibatch_metrics(no_loop)["loop_s"])
    with pytest.raises(ValueError, match="no epoch records"):
        R.minibatch_metrics(minibatch_run()[:2])
    w = R.worker_totals(minibatch_run())
    assert w[0] == {"rank": 0, "compute_s": 2.0, "comm_s": 0.0, "wait_s": 0.0, "epoch_s": 7.0, "cpu_s": None,
                    "work": {}, "bytes_sent": 2928,
                    "bytes_recv": 0, "train_bytes": 928, "eval_bytes": 2000, "sample_s": 1.0, "fetch_s": 0.5,
                    "train_s": 2.0, "overlap_s": 0.25, "remote_rows_fetched": 20, "remote_requests": 4}
    assert w[1]["remote_rows_fetched"] == 40 and isinstance(w[1]["remote_requests"], int)


# ----------------------------------------------------------------------------------------- summary

def test_summary_by_hand():
    s = R.summary(ps_run(), world_size=3, status="done", cores=2, num_threads=1, backend="gloo", elapsed_s=21.0,
                  run_dir="/tmp/run")
    workers = PS_RUN_WORKERS
    assert s == {
        "status": "done", "world_size": 3, "cores": 2, "num_threads": 1, "oversubscribed": True, "backend": "gloo",
        "epochs": 4, "train_loss": [1.0, 0.5, 1 / 3, 0.25], "epoch_seconds": [1.5, 5.0, 4.0, 2.5],
        "test_acc": 0.75, "best_val_acc": 0.8, "best_epoch": 1, "test_acc_at_best_val": 0.6, "workers": workers,
        "imbalance": 1.5, "work_imbalance": None, "cpu_imbalance": None, "cache_hit_rate": None,
        "bytes_matrix": [[0, 492, 200], [168, 0, 200], [120, 120, 0]],
        "train_bytes_matrix": [[0, 480, 200], [168, 0, 200], [120, 120, 0]],
        "total_bytes": 1300, "train_bytes": 1288, "eval_bytes": 12, "halo_bytes": 600,
        "forward_rows_per_layer": [7.0, 11.5],
        "grad_staleness": {"hist": {"0": 4, "1": 4}, "count": 8, "max": 1, "mean": 0.5},
        "staleness": {"hist": {"0": 28, "1": 12}, "count": 40, "max": 1, "mean": 0.3},
        "elapsed_s": 21.0, "run_dir": "/tmp/run"}
    json.dumps(s)
    assert s["train_bytes"] + s["eval_bytes"] == s["total_bytes"] == _sent_oracle(ps_run(), evaluation=False) + 12
    empty = R.summary([], world_size=2)
    assert empty["epochs"] == 0 and empty["train_loss"] == [] and empty["test_acc"] is None
    assert empty["bytes_matrix"] == [[0, 0], [0, 0]] and empty["imbalance"] is None and empty["oversubscribed"] is None
    assert empty["staleness"] is None and empty["forward_rows_per_layer"] == []
    assert empty["train_bytes"] == empty["eval_bytes"] == empty["total_bytes"] == 0


# ------------------------------------------------------------------------------------------ tables

def test_epoch_and_bytes_tables():
    recs = ps_run()
    df = R.epoch_table(recs)
    assert list(df.columns[:11]) == ["rank", "epoch", *R.EPOCH_SCALARS]
    assert list(df.columns[-3:]) == ["bytes_sent", "bytes_recv", "time"]
    assert "staleness" in df.columns and "events" not in df.columns and "staleness_hist" not in df.columns
    assert list(df["rank"]) == [0, 1, 2] * 4 and list(df["epoch"]) == [e for e in range(4) for _ in range(3)]
    assert list(df["bytes_sent"]) == [174, 92, 60] * 3 + [170, 92, 60]
    assert list(df["bytes_recv"]) == [72, 150, 100] * 4
    assert len(R.epoch_table([])) == 0
    long = R.bytes_table(recs)
    assert list(long.columns) == ["epoch", "rank", "direction", "peer", "purpose", "bytes"]
    assert long[long.direction == "sent"]["bytes"].sum() == 1300
    assert long[long.direction == "recv"]["bytes"].sum() == 4 * (72 + 150 + 100)
    assert long["peer"].dtype.kind == "i"


def test_records_module_stays_at_the_bottom_of_the_import_graph():
    code = ("import sys, dgnn_lab.records; "
            "bad = [m for m in ('torch', 'pandas', 'plotly', 'ipywidgets', 'dgnn_lab.dist', 'dgnn_lab.execution', "
            "'dgnn_lab.protocols', 'dgnn_lab.train') if m in sys.modules]; print(bad); assert not bad")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
