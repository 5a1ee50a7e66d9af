"""The instrumented communicator: exact rows and bytes through real worker processes, and its accounting."""

from __future__ import annotations

import time

import pytest
import torch

from dgnn_lab.dist import Communicator, ring_allreduce_bytes, run
from dgnn_lab.dist.testing import block

# rows[src][dst]; ranks 0 and 2 exchange nothing in either direction
ROWS3 = [[0, 2, 0], [3, 0, 1], [0, 4, 0]]
DIM = 3
F64 = 8


def _by_rank(result, rtype="epoch"):
    return {r["rank"]: r for r in result.records if r["type"] == rtype}


@pytest.fixture(scope="module")
def three_workers(tmp_path_factory):
    """One real 3-worker run of ``exchange_known`` with rank 2 a 1 s straggler (shared by the tests)."""
    t0 = time.time()
    res = run("dgnn_lab.dist.testing:exchange_known",
              {"rows": ROWS3, "dim": DIM, "n": 10, "slow_rank": 2, "delay": 1.0}, 3,
              run_dir=tmp_path_factory.mktemp("run") / "r", timeout_s=30)
    return res, time.time() - t0


def test_exchange_delivers_exact_rows_from_each_peer(three_workers):
    res, _ = three_workers
    assert res.status == "done"
    epochs = _by_rank(res)
    for me in range(3):
        recv = epochs[me]["recv"]
        assert len(recv) == 3 and recv[me] == []
        for q in range(3):
            if q != me:
                expected = block(q, me, ROWS3[q][me], DIM).tolist()
                assert recv[q] == expected, (me, q)


def test_exchange_bytes_are_exact_wire_sizes_and_zero_row_peers_send_nothing(three_workers):
    res, _ = three_workers
    epochs = _by_rank(res)
    for me in range(3):
        sent = {int(q): v.get("halo_fwd/L0") for q, v in epochs[me]["bytes_sent"].items()}
        recv = {int(q): v.get("halo_fwd/L0") for q, v in epochs[me]["bytes_recv"].items()}
        for q in range(3):
            want_s = ROWS3[me][q] * DIM * F64 if q != me else 0
            want_r = ROWS3[q][me] * DIM * F64 if q != me else 0
            assert (sent.get(q) or 0) == want_s, (me, q)
            assert (recv.get(q) or 0) == want_r, (me, q)
    # no halo entry at all between 0 and 2 (no message), none to self
    assert "halo_fwd/L0" not in epochs[0]["bytes_sent"].get("2", {})
    assert "0" not in epochs[0]["bytes_sent"] or "halo_fwd/L0" not in epochs[0]["bytes_sent"]["0"]
    halo = res.bytes_matrix("halo_")
    assert halo.tolist() == [[r * DIM * F64 for r in row] for row in ROWS3]


def test_all_reduce_result_and_ring_bytes(three_workers):
    res, _ = three_workers
    epochs = _by_rank(res)
    expected = (torch.arange(10, dtype=torch.float32) * 6).tolist()
    # 10 float32 over P=3: chunks of 4, 3, 3 elements; rank r sends 2n - c[r+1] - c[r+2] elements to r+1
    ring = {0: (20 - 3 - 3) * 4, 1: (20 - 3 - 4) * 4, 2: (20 - 4 - 3) * 4}
    for r in range(3):
        assert epochs[r]["reduced"] == expected
        assert epochs[r]["bytes_sent"][str((r + 1) % 3)]["grad_allreduce"] == ring[r]
        assert epochs[r]["bytes_recv"][str((r - 1) % 3)]["grad_allreduce"] == ring[(r - 1) % 3]
    m = res.bytes_matrix("grad_allreduce")
    assert m.sum() == 2 * (3 - 1) * 10 * 4  # sum over ranks of 2(P-1)/P * nbytes, exactly


def test_straggler_shows_up_as_wait_not_comm(three_workers):
    res, elapsed = three_workers
    epochs = _by_rank(res)
    assert epochs[2]["compute_s"] >= 1.0
    for r in (0, 1):
        # the others reach the exchange ~1 s earlier (less their start-up skew) and wait at its sync point;
        # the transfers themselves are a few tiny messages
        assert epochs[r]["wait_s"] >= 0.7, epochs[r]["wait_s"]
        assert epochs[r]["comm_s"] < 0.5, epochs[r]["comm_s"]
    for r in range(3):
        e = epochs[r]
        ev = e["events"]
        assert {p for p, _, _ in ev} <= {"compute", "comm", "wait"}
        assert all(t0 <= t1 for _, t0, t1 in ev)
        assert all(a[2] <= b[1] + 1e-9 for a, b in zip(ev, ev[1:], strict=False))  # exclusive, in order
        total = e["compute_s"] + e["comm_s"] + e["wait_s"]
        assert total == pytest.approx(sum(t1 - t0 for _, t0, t1 in ev), rel=1e-6, abs=1e-9)
        assert total <= elapsed


def test_without_sync_points_waiting_counts_as_comm(tmp_path):
    res = run("dgnn_lab.dist.testing:exchange_known",
              {"rows": [[0, 2], [1, 0]], "dim": 2, "slow_rank": 1, "delay": 1.0, "sync": False}, 2,
              run_dir=tmp_path / "r")
    e0 = _by_rank(res)[0]
    assert e0["recv"][1] == block(1, 0, 1, 2).tolist()
    assert e0["wait_s"] < 0.2  # only the explicit barrier remains a sync point
    assert e0["comm_s"] >= 0.7  # the straggler's second now hides inside the transfer


def test_one_worker_world(tmp_path):
    res = run("dgnn_lab.dist.testing:exchange_known", {"rows": [[0]], "dim": 2}, 1, run_dir=tmp_path / "r")
    assert res.status == "done" and res.world_size == 1
    (epoch,) = [r for r in res.records if r["type"] == "epoch"]
    assert epoch["recv"] == [[]]
    assert epoch["reduced"] == list(range(10))
    assert epoch["bytes_sent"] == {} and epoch["bytes_recv"] == {}
    assert res.bytes_matrix().tolist() == [[0]]
    assert res.summary()["workers"][0]["bytes_sent"] == 0


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs 2 CUDA devices (one per rank); "
                    f"this machine has {torch.cuda.device_count()}")
def test_exchange_on_nccl(tmp_path):
    rows = [[0, 5], [7, 0]]
    res = run("dgnn_lab.dist.testing:exchange_known", {"rows": rows, "dim": 4}, 2, backend="nccl",
              run_dir=tmp_path / "r")
    epochs = _by_rank(res)
    assert {r["device"] for r in res.records if r["type"] == "ready"} == {"cuda:0", "cuda:1"}
    for me, q in ((0, 1), (1, 0)):
        assert epochs[me]["recv"][q] == block(q, me, rows[q][me], 4).tolist()
        assert epochs[me]["bytes_sent"][str(q)]["halo_fwd/L0"] == rows[me][q] * 4 * 8
    assert epochs[0]["reduced"] == (torch.arange(10, dtype=torch.float32) * 3).tolist()


# ----------------------------------------------------------------------- no processes: P == 1 accounting
def test_ring_formula():
    for p in range(1, 7):
        for n in (0, 1, 5, 12, 13, 1000):
            sent = [ring_allreduce_bytes(n, 4, p, r) for r in range(p)]
            assert sum(sent) == (2 * (p - 1) * n * 4 if n else 0)
            if n % p == 0 and p > 1:
                assert all(s * p == 2 * (p - 1) * n * 4 for s in sent)
    assert ring_allreduce_bytes(100, 4, 1, 0) == 0


def test_phases_nest_exclusively_and_reset_per_epoch():
    comm = Communicator(0, 1, "cpu", "gloo")
    t0 = time.perf_counter()
    with comm.phase("compute"):
        time.sleep(0.02)
        with comm.phase("wait"):
            time.sleep(0.03)
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    s = comm.take_epoch_stats()
    assert s["wait_s"] == pytest.approx(0.03, abs=0.02)
    assert s["compute_s"] == pytest.approx(0.03, abs=0.02)
    assert s["compute_s"] + s["wait_s"] <= wall + 1e-6
    assert [e[0] for e in s["events"]] == ["compute", "wait", "compute"]
    s2 = comm.take_epoch_stats()
    assert s2["compute_s"] == s2["comm_s"] == s2["wait_s"] == 0.0 and s2["events"] == []
    assert s["t0_wall"] == pytest.approx(time.time() - wall, abs=0.05) and s2["t0_wall"] > s["t0_wall"]


def test_open_phase_is_split_across_epochs():
    comm = Communicator(0, 1, "cpu", "gloo")
    with comm.phase("compute"):
        time.sleep(0.01)
        a = comm.take_epoch_stats()
        time.sleep(0.01)
    b = comm.take_epoch_stats()
    assert a["compute_s"] > 0.005 and b["compute_s"] > 0.005
    assert b["events"][0][1] == pytest.approx(0.0, abs=1e-3)


def test_bad_input_is_a_clear_value_error():
    comm = Communicator(0, 1, "cpu", "gloo")
    with pytest.raises(ValueError, match="phase must be one of"):
        with comm.phase("thinking"):
            pass
    with pytest.raises(ValueError, match="one send block and one recv_rows entry per rank"):
        comm.exchange([torch.zeros(1, 2), torch.zeros(1, 2)], [0, 0], "halo_fwd/L0")
    with pytest.raises(ValueError, match=r"send\[0\] must be a 2-D tensor"):
        comm.exchange([torch.zeros(3)], [0], "halo_fwd/L0")
    with pytest.raises(ValueError, match="recv_rows"):
        comm.exchange([torch.zeros(1, 2)], [-1], "halo_fwd/L0")
    with pytest.raises(ValueError, match="all_reduce op must be one of"):
        comm.all_reduce(torch.zeros(2), "metrics", op="avg")
    with pytest.raises(ValueError, match="'mean' needs a floating tensor"):
        comm.all_reduce(torch.zeros(2, dtype=torch.int64), "metrics", op="mean")
    # P == 1: nothing moves, nothing is counted
    x = torch.ones(3)
    assert comm.all_reduce(x, "grad_allreduce") is x and x.tolist() == [1, 1, 1]
    assert comm.exchange([torch.zeros(2, 4)], [0], "halo_fwd/L0")[0].shape == (0, 4)
    assert comm.totals == {}
