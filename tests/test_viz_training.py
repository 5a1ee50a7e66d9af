"""Pure training figures from hand-built telemetry records (format: the runtime contract)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import pytest

from dgnn_lab.viz import training as vt


def fake_run_records(world_size: int = 3, epochs: int = 4, *, cores: int | None = 2, run_record: bool = True,
                     t0: float = 1000.0) -> list[dict]:
    """A run's records as the runtime would emit them (after a JSON round trip: peers are strings).

    Known numbers: rank p computes 0.01*(p+1) s per epoch, communicates 0.002 s, waits 0.001*(P-p) s;
    sends 10*(p+1) + q halo-forward bytes and 5 halo-backward bytes to each peer q != p at layer 0,
    and 8 gradient all-reduce bytes to its ring successor; loss 1/(e+1), accuracies rising.
    """
    recs: list[dict] = []
    for p in range(world_size):
        recs.append({"type": "start", "rank": p, "time": t0, "pid": 100 + p, "host": "h", "backend": "gloo",
                     "device": "cpu", "num_threads": 1, "world_size": world_size, "num_owned": 10,
                     "num_halo": 3, "num_local_edges": 30})
    for e in range(epochs):
        for p in range(world_size):
            comp, comm, wait = 0.01 * (p + 1), 0.002, 0.001 * (world_size - p)
            sent: dict = {}
            for q in range(world_size):
                if q == p:
                    continue
                sent[str(q)] = {"halo_fwd/L0": 10 * (p + 1) + q, "halo_bwd/L0": 5}
            if world_size > 1:
                succ = str((p + 1) % world_size)
                sent.setdefault(succ, {})["grad_allreduce"] = 8
            events = [["compute", 0.0, comp / 2], ["wait", comp / 2, comp / 2 + wait],
                      ["comm", comp / 2 + wait, comp / 2 + wait + comm],
                      ["compute", comp / 2 + wait + comm, comp + wait + comm]]
            recs.append({
                "type": "epoch", "rank": p, "time": t0 + e + 0.1 * p, "epoch": e,
                "epoch_s": comp + comm + wait + 0.0005, "compute_s": comp, "comm_s": comm, "wait_s": wait,
                "loss": 1.0 / (e + 1), "train_acc": 0.5 + 0.1 * e, "val_acc": [0.4, 0.7, 0.6, 0.7][e % 4],
                "test_acc": 0.3 + 0.1 * e, "bytes_sent": sent, "bytes_recv": {}, "peak_mem_bytes": 1 << 20,
                "events": events,
            })
    for p in range(world_size):
        recs.append({"type": "done", "rank": p, "time": t0 + epochs + 1})
    if run_record:
        recs.append({"type": "run", "rank": None, "time": t0 + epochs + 2, "status": "done",
                     "world_size": world_size, "cores": cores, "backend": "gloo",
                     "config": {"epochs": epochs}})
    return json.loads(json.dumps(recs))


def test_bytes_matrix_exact_sender_row_receiver_col():
    recs = fake_run_records(3, epochs=4)
    m = vt.bytes_matrix(recs)
    expect = np.zeros((3, 3), dtype=np.int64)
    for p in range(3):
        for q in range(3):
            if p != q:
                expect[p, q] = 4 * (10 * (p + 1) + q + 5)
        expect[p, (p + 1) % 3] += 4 * 8
    assert m.dtype == np.int64
    np.testing.assert_array_equal(m, expect)
    fwd = vt.bytes_matrix(recs, purpose_prefix="halo_fwd")
    assert fwd[0, 1] == 4 * 11 and fwd[2, 0] == 4 * 30 and fwd.trace() == 0


def test_bytes_by_purpose_groups():
    got = vt.bytes_by_purpose(fake_run_records(2, epochs=3))
    assert got == {"halo forward": 3 * (11 + 20), "halo backward": 3 * 10, "gradient all-reduce": 3 * 16}


def test_world_size_and_cores_from_records():
    recs = fake_run_records(4, epochs=1, cores=2)
    assert vt.world_size_of(recs) == 4
    assert vt.cores_of(recs) == 2
    assert vt.cores_of(fake_run_records(2, run_record=False)) is None
    only_epochs = [r for r in recs if r["type"] == "epoch"]
    assert vt.world_size_of(only_epochs) == 4  # max rank + 1
    assert vt.world_size_of([]) == 1
    with pytest.raises(ValueError, match="world_size must be >= 1"):
        vt.world_size_of(recs, 0)


def test_workers_note_flags_oversubscription():
    assert vt.workers_note(4, 2).startswith("4 workers on 2 cores: oversubscribed")
    assert "oversubscribed" not in vt.workers_note(2, 2)
    assert vt.workers_note(1, None) == "1 worker"


def test_epoch_curves_dedupe_ranks_and_best_val():
    recs = fake_run_records(3, epochs=4)
    c = vt.epoch_curves(recs)
    assert c["epoch"] == [0, 1, 2, 3]
    assert c["loss"] == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    fig = vt.curves_figure(recs, cores=2, total_epochs=4)
    assert [t.name for t in fig.data] == ["training loss", "train accuracy", "val accuracy", "test accuracy"]
    assert list(fig.data[0].y) == pytest.approx([1.0, 0.5, 1 / 3, 0.25])
    # best val 0.7 first reached at epoch 1 (ties go to the earlier epoch), test there 0.4
    assert "best val 0.700 @ epoch 1 → test 0.400" in fig.layout.title.text
    assert "4 of 4 epochs" in fig.layout.title.text


def test_phase_bars_totals_and_imbalance():
    recs = fake_run_records(2, epochs=3, cores=4)
    fig = vt.phase_bars_figure(recs, cores=4)
    assert [t.name for t in fig.data] == ["compute", "communication", "waiting", "untimed"]
    assert list(fig.data[0].x) == ["worker 0", "worker 1"]
    assert list(fig.data[0].y) == pytest.approx([0.03, 0.06])
    assert list(fig.data[1].y) == pytest.approx([0.006, 0.006])
    assert list(fig.data[2].y) == pytest.approx([0.006, 0.003])
    assert list(fig.data[3].y) == pytest.approx([0.0015, 0.0015])
    assert "imbalance (max/mean compute) 1.33" in fig.layout.title.text
    assert "oversubscribed" not in fig.layout.title.text
    assert "oversubscribed" in vt.phase_bars_figure(fake_run_records(4, epochs=1), cores=2).layout.title.text


def test_heatmap_matches_matrix_and_labels():
    recs = fake_run_records(3, epochs=2)
    fig = vt.bytes_heatmap_figure(recs, cores=2)
    (hm,) = fig.data
    assert isinstance(hm, go.Heatmap)
    np.testing.assert_array_equal(np.array(hm.z), vt.bytes_matrix(recs))
    assert list(hm.y) == ["from worker 0", "from worker 1", "from worker 2"]
    assert list(hm.x)[1] == "to worker 1"
    assert "oversubscribed" in fig.layout.title.text  # 3 workers on 2 cores


def with_evaluation(records: list[dict], nbytes: int = 700) -> list[dict]:
    """``records`` where every worker also sends each peer ``nbytes`` of ``eval`` and ``nbytes`` of
    ``eval_fetch_resp`` each epoch (evaluation traffic)."""
    out = json.loads(json.dumps(records))
    for r in out:
        if r["type"] == "epoch":
            for per in r["bytes_sent"].values():
                per.update({"eval": nbytes, "eval_fetch_resp": nbytes})
    return out


def test_heatmap_shows_training_traffic_and_names_the_evaluation_left_out():
    plain = fake_run_records(3, epochs=2)
    recs = with_evaluation(plain)
    fig = vt.bytes_heatmap_figure(recs, cores=2)
    train = vt.bytes_matrix(plain)  # the same run without its evaluation
    np.testing.assert_array_equal(np.array(fig.data[0].z), train)
    evaluation = 2 * 3 * 2 * 2 * 700  # 2 epochs x 3 workers x 2 peers x 2 purposes
    assert f"{vt.format_bytes(train.sum())} in 2 epochs, training traffic" in fig.layout.title.text
    assert f"evaluation's {vt.format_bytes(evaluation)} not shown" in fig.layout.title.text
    every = vt.bytes_heatmap_figure(recs, cores=2, traffic="all")
    np.testing.assert_array_equal(np.array(every.data[0].z), vt.bytes_matrix(recs))
    assert "not shown" not in every.layout.title.text
    only = np.array(vt.bytes_heatmap_figure(recs, traffic="eval").data[0].z)
    assert only.sum() == evaluation and only[0, 1] == 2 * 2 * 700 and only.trace() == 0
    assert "not shown" not in vt.bytes_heatmap_figure(plain, cores=2).layout.title.text  # nothing left out
    with pytest.raises(ValueError, match="traffic must be one of"):
        vt.bytes_heatmap_figure(recs, traffic="training")


def test_timeline_last_epochs_aligned():
    recs = fake_run_records(2, epochs=5)
    fig = vt.timeline_figure(recs, last_epochs=2)
    compute, comm, wait = fig.data
    assert [t.name for t in fig.data] == ["compute", "communication", "waiting"]
    # two epochs x two workers x two compute events each
    assert len(compute.x) == 8 and len(comm.x) == 4 and len(wait.x) == 4
    span3 = max(r["epoch_s"] for r in recs if r["type"] == "epoch" and r["epoch"] == 3)
    # epoch 4's events start at the width of epoch 3 (its slowest worker)
    assert min(b for b in compute.base) == 0.0
    assert sorted(compute.base)[4] == pytest.approx(span3)
    assert [a.text for a in fig.layout.annotations] == ["epoch 3", "epoch 4"]
    assert list(wait.x) == pytest.approx([0.002, 0.001, 0.002, 0.001])
    with pytest.raises(ValueError, match="last_epochs must be >= 1"):
        vt.timeline_figure(recs, last_epochs=0)


def test_figures_keep_trace_structure_when_empty():
    for fn, n in [(vt.curves_figure, 4), (vt.phase_bars_figure, 4), (vt.bytes_heatmap_figure, 1),
                  (vt.timeline_figure, 3)]:
        empty, full = fn([], world_size=2), fn(fake_run_records(2), world_size=2)
        assert len(empty.data) == len(full.data) == n
        assert [type(t) for t in empty.data] == [type(t) for t in full.data]


def test_bad_records_raise_clear_errors():
    with pytest.raises(ValueError, match="not a telemetry record"):
        vt.bytes_matrix([{"rank": 0}])
    recs = fake_run_records(3, epochs=1)
    with pytest.raises(ValueError, match="outside a world of 2 workers"):
        vt.bytes_matrix(recs, world_size=2)
    with pytest.raises(ValueError, match="at least one run"):
        vt.comparison_figure({})


def test_comparison_figure_per_epoch_means():
    runs = {"1 worker": fake_run_records(1, epochs=3), "4 workers": fake_run_records(4, epochs=3)}
    fig = vt.comparison_figure(runs, cores=2)
    compute = fig.data[0]
    assert list(compute.x) == ["1 worker", "4 workers"]
    # epoch 0 left out; mean over workers of 0.01*(p+1)
    assert list(compute.y) == pytest.approx([0.01, 0.025])
    halo_fwd = next(t for t in fig.data if t.name == "halo forward")
    assert halo_fwd.y[0] == 0
    assert halo_fwd.y[1] == sum(10 * (p + 1) + q for p in range(4) for q in range(4) if p != q)
    assert "oversubscribed" in fig.layout.title.text and "4 workers" in fig.layout.title.text


def test_format_bytes():
    assert vt.format_bytes(0) == "0 B"
    assert vt.format_bytes(999) == "999 B"
    assert vt.format_bytes(1234567) == "1.23 MB"
    assert vt.format_bytes(5e12) == "5e+03 GB"


def test_oversubscription_counts_threads():
    assert vt.workers_note(2, 2, threads=2) == (
        "2 workers x 2 threads on 2 cores: oversubscribed, so waiting also measures CPU contention, "
        "not only the algorithm")
    assert vt.workers_note(2, 4, threads=2) == "2 workers x 2 threads on 4 cores"
    recs = fake_run_records(2, epochs=1, cores=2)  # start records say 1 thread each
    assert vt.threads_of(recs) == 1
    assert "oversubscribed" not in vt.bytes_heatmap_figure(recs, cores=2).layout.title.text
    recs[0]["num_threads"] = 2
    title = vt.bytes_heatmap_figure(recs, cores=2).layout.title.text
    assert "2 workers x 2 threads on 2 cores (oversubscribed" in title
