"""The launcher with real processes: failures, timeouts, stop/interrupt, streaming, run logs, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from dgnn_lab.dist import CommunicationError, RunResult, WorkerError, launch, run
from dgnn_lab.settings import REPO_ROOT

psutil = pytest.importorskip("psutil")

FAST = {"stop_grace_s": 0.5, "term_grace_s": 1.0}


def _alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def _worker_children() -> list:
    """Spawned worker processes under this one (multiprocessing's resource tracker, which spawn starts once
    per process, is not a worker; other tests' servers are not either)."""
    kids = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(p.cmdline()) and p.status() != psutil.STATUS_ZOMBIE:
                kids.append(p)
        except psutil.NoSuchProcess:
            pass
    return kids


def _first_epoch_time(handle) -> float:
    return min(r["time"] for r in handle.snapshot() if r["type"] == "epoch")


@pytest.mark.parametrize("how", ["raise", "sigkill"])
def test_worker_failure_reaches_caller_naming_the_rank(tmp_path, how):
    h = launch("dgnn_lab.dist.testing:fail", {"how": how, "rank": 1, "after": 0.2}, 2, run_dir=tmp_path / "r",
               timeout_s=30, **FAST)
    with pytest.raises(WorkerError) as ei:
        h.wait(timeout=60)
    seen = time.time()
    e = ei.value
    assert e.rank == 1
    assert seen - _first_epoch_time(h) < 10.0  # failure 0.2 s after that record, error well within 10 s
    if how == "raise":
        assert "deliberate failure on rank 1" in e.worker_traceback
        assert "Traceback (most recent call last)" in str(e) and "worker rank 1 failed" in str(e)
    else:
        assert e.exitcode == -signal.SIGKILL and "SIGKILL" in str(e)
    assert h.status == "failed" and h.result.status == "failed"
    assert _alive(h.pids) == [] and _worker_children() == []
    saved = json.loads((tmp_path / "r" / "result.json").read_text())
    assert saved["status"] == "failed" and saved["error"]["rank"] == 1


def test_exchange_row_count_mismatch_is_named_not_garbage(tmp_path):
    """Without the check, gloo aborts the receiver (too many rows) or leaves rows uninitialised (too few)."""
    h = launch("dgnn_lab.dist.testing:exchange_mismatch", {"expect": 4}, 2, run_dir=tmp_path / "r", **FAST)
    with pytest.raises(WorkerError) as ei:
        h.wait(timeout=60)
    msg = str(ei.value)
    assert "ValueError: exchange 'halo_fwd/L0': ranks" in msg and "disagree on the rows" in msg
    assert ("rank 0 sends 3 rows" in msg) or ("rank 1 sends 0 rows" in msg and "rank 0 sends 3" in msg)
    assert _alive(h.pids) == []


@pytest.mark.slow
def test_peer_that_hangs_makes_a_clear_timeout_error(tmp_path):
    h = launch("dgnn_lab.dist.testing:fail", {"how": "hang", "rank": 1, "after": 0.0}, 2,
               run_dir=tmp_path / "r", timeout_s=2, **FAST)
    with pytest.raises(WorkerError) as ei:
        h.wait(timeout=60)
    msg = str(ei.value)
    assert ei.value.rank == 0
    assert CommunicationError.__name__ in msg and "timeout 2 s" in msg
    assert "rank(s) [1] were still running without an error" in msg
    assert _alive(h.pids) == []


@pytest.mark.slow
def test_peer_that_never_joins_times_out_at_rendezvous(tmp_path):
    """Under torchrun-style env:// rendezvous, one rank of two starts and nobody else ever comes."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"entry": "dgnn_lab.dist.testing:noop", "run_dir": str(tmp_path / "r"),
                               "timeout_s": 2}))
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    t0 = time.time()
    p = subprocess.run([sys.executable, "-m", "dgnn_lab.worker", str(cfg)], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1
    assert time.time() - t0 < 30
    assert "RendezvousError: rank 0 of 2 could not form the process group within 2 s" in p.stderr
    res = RunResult.load(tmp_path / "r")
    assert res.status == "failed" and res.world_size == 2


@pytest.mark.slow
def test_back_to_back_and_concurrent_runs_do_not_collide(tmp_path):
    a = launch("dgnn_lab.dist.testing:noop", {}, 2, run_dir=tmp_path / "a")
    b = launch("dgnn_lab.dist.testing:noop", {}, 1, run_dir=tmp_path / "b")
    ra, rb = a.wait(timeout=120), b.wait(timeout=120)
    rc = run("dgnn_lab.dist.testing:noop", {}, 1, run_dir=tmp_path / "c")
    ports = []
    for res in (ra, rb, rc):
        assert res.status == "done"
        assert sorted(r["rank"] for r in res.records if r["type"] == "done") == list(range(res.world_size))
        (port,) = {r["rendezvous"] for r in res.records if r["type"] == "ready"}
        ports.append(port)
    assert ports[0] != ports[1]
    assert _worker_children() == []


def test_records_stream_while_running_then_stop_is_interrupted_and_round_trips(tmp_path):
    got: list[dict] = []
    while_running = threading.Event()

    def on_record(rec):
        got.append(rec)
        if len([r for r in got if r["type"] == "epoch"]) >= 3 and h.status == "running":
            while_running.set()
        if len(got) == 1:
            raise RuntimeError("a broken callback must not kill the run")

    h = launch("dgnn_lab.dist.testing:stream", {"interval": 0.05}, 2, run_dir=tmp_path / "r", on_record=on_record,
               **FAST)
    assert h.status == "running"
    assert while_running.wait(60), "no epoch records arrived while the run was going"
    assert h.callback_errors == 1
    t0 = time.time()
    assert h.stop() == "interrupted"
    assert time.time() - t0 < 5
    assert _alive(h.pids) == [] and _worker_children() == []
    res = h.wait()
    assert res.status == "interrupted"
    assert h.records[-1]["type"] == "run" and h.records[-1]["status"] == "interrupted"
    assert got[-1] == h.records[-1]
    loaded = RunResult.load(tmp_path / "r")
    assert loaded.status == "interrupted"
    assert loaded.records == h.records
    assert loaded.epochs().equals(res.epochs())
    assert loaded.summary() == res.summary()
    assert loaded.world_size == 2 and loaded.cores == res.cores and loaded.config == {"interval": 0.05}
    ready = [r for r in loaded.records if r["type"] == "ready"]
    assert {r["rank"] for r in ready} == {0, 1} and all(r["world_size"] == 2 for r in ready)
    assert (tmp_path / "r" / "config.json").exists() and (tmp_path / "r" / "worker-0.log").exists()


def test_cooperative_stop_from_inside_on_record_ends_cleanly(tmp_path):
    """A Stop button may call ``stop()`` from the telemetry thread itself: it must not wait on itself."""
    asked = []

    def on_record(rec):
        if rec["type"] == "epoch" and not asked:
            asked.append(time.time())
            h.stop()

    h = launch("dgnn_lab.dist.testing:stream", {"interval": 0.02, "cooperative": True}, 1,
               run_dir=tmp_path / "r", stop_grace_s=30, on_record=on_record)
    res = h.wait(timeout=60)
    assert res.status == "interrupted"
    assert time.time() - asked[0] < 5  # the worker saw should_stop() and ended, well before the 30 s grace
    assert [r["type"] for r in h.records][-3:] == ["stopped", "done", "run"]


_LAUNCHER = """
import sys
from dgnn_lab.dist import run
def on_record(rec):
    if rec.get("type") == "epoch" and rec.get("epoch") == 2:
        print("EPOCH2", flush=True)
if __name__ == "__main__":
    run("dgnn_lab.dist.testing:stream", {"interval": 0.05}, 2, run_dir=sys.argv[1], on_record=on_record,
        term_grace_s=1.0, stop_grace_s=0.5)
"""


def _start_launcher(tmp_path: Path) -> tuple[subprocess.Popen, list]:
    script = tmp_path / "launcher.py"
    script.write_text(textwrap.dedent(_LAUNCHER))
    # a background process from a non-interactive shell starts with SIGINT ignored: restore the default
    p = subprocess.Popen([sys.executable, str(script), str(tmp_path / "r")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in p.stdout:
        if "EPOCH2" in line:
            break
    else:
        p.wait(10)
        pytest.fail(f"launcher ended before streaming: {p.stderr.read()[-2000:]}")
    workers = [c for c in psutil.Process(p.pid).children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
    assert len(workers) == 2
    return p, workers


@pytest.mark.slow
def test_sigint_to_launching_process_records_interrupted_and_exits_nonzero(tmp_path):
    p, workers = _start_launcher(tmp_path)
    p.send_signal(signal.SIGINT)
    rc = p.wait(30)
    err = p.stderr.read()
    assert rc != 0 and "KeyboardInterrupt" in err
    assert json.loads((tmp_path / "r" / "result.json").read_text())["status"] == "interrupted"
    assert RunResult.load(tmp_path / "r").status == "interrupted"
    assert _alive([w.pid for w in workers]) == []


@pytest.mark.slow
def test_workers_die_with_a_killed_launcher(tmp_path):
    """SIGKILL leaves the launcher no chance to clean up: the parent-death signal must end the workers."""
    p, workers = _start_launcher(tmp_path)
    p.kill()
    p.wait(10)
    deadline = time.time() + 10
    while _alive([w.pid for w in workers]) and time.time() < deadline:
        time.sleep(0.05)
    assert _alive([w.pid for w in workers]) == []


@pytest.mark.slow
def test_torchrun_runs_the_same_entry_and_load_merges_ranks(tmp_path):
    rows = [[0, 2], [3, 0]]
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"entry": "dgnn_lab.dist.testing:exchange_known", "run_dir": str(tmp_path / "r"),
                               "config": {"rows": rows, "dim": 2}, "timeout_s": 30}))
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                        "-m", "dgnn_lab.worker", str(cfg)], capture_output=True, text=True, timeout=120,
                       cwd=REPO_ROOT)
    assert p.returncode == 0, p.stderr[-3000:]
    assert sorted(x.name for x in (tmp_path / "r").glob("records-rank*.jsonl")) == \
        ["records-rank0.jsonl", "records-rank1.jsonl"]
    res = RunResult.load(tmp_path / "r")
    assert res.status == "done" and res.world_size == 2
    for rank in (0, 1):
        types = [r["type"] for r in res.records if r["rank"] == rank]
        assert types == ["ready", "epoch", "done"]
    epochs = {r["rank"]: r for r in res.records if r["type"] == "epoch"}
    assert epochs[1]["recv"][0] == [[10000.0, 10001.0], [10010.0, 10011.0]]
    assert res.bytes_matrix("halo_").tolist() == [[0, 2 * 2 * 8], [3 * 2 * 8, 0]]
    assert epochs[0]["reduced"] == (torch.arange(10, dtype=torch.float32) * 3).tolist()


def test_bad_arguments_are_value_errors_before_any_process_starts(tmp_path):
    before = _worker_children()
    bad = [
        (("nope",), "entry must be 'module:function'"),
        (("no_such_module_xyz:f",), "cannot import module 'no_such_module_xyz'"),
        (("dgnn_lab.dist.testing:missing",), "has no function 'missing'"),
        (("__main__:f",), "cannot import"),
    ]
    for (entry,), msg in bad:
        with pytest.raises(ValueError, match=msg):
            launch(entry, {}, 2, run_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="world_size must be an int >= 1"):
        launch("dgnn_lab.dist.testing:noop", {}, 0, run_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="backend must be one of"):
        launch("dgnn_lab.dist.testing:noop", {}, 2, backend="mpi", run_dir=tmp_path / "x")
    if torch.cuda.device_count() < 2:
        with pytest.raises(ValueError, match="needs one CUDA device per worker"):
            launch("dgnn_lab.dist.testing:noop", {}, 2, backend="nccl", run_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="JSON-able"):
        launch("dgnn_lab.dist.testing:noop", {"x": object()}, 2, run_dir=tmp_path / "x")
    with pytest.raises(ValueError, match="timeout_s"):
        launch("dgnn_lab.dist.testing:noop", {}, 2, timeout_s=0, run_dir=tmp_path / "x")
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "records.jsonl").write_text("")
    with pytest.raises(ValueError, match="already holds a run"):
        launch("dgnn_lab.dist.testing:noop", {}, 2, run_dir=tmp_path / "used")
    assert _worker_children() == before


@pytest.mark.slow
def test_jupyter_interrupt_stops_the_run_and_the_kernel_stays_usable(tmp_path):
    """The student's case: a cell blocked in ``run()``, the Interrupt button (SIGINT to the kernel)."""
    manager = pytest.importorskip("jupyter_client.manager")
    km, kc = manager.start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        kernel = psutil.Process(km.provisioner.process.pid)
        rd = tmp_path / "r"
        msg_id = kc.execute("from dgnn_lab.dist import run\n"
                            f"res = run('dgnn_lab.dist.testing:stream', {{'interval': 0.05}}, 2, run_dir={str(rd)!r})")
        deadline = time.time() + 60
        while not ((rd / "records.jsonl").exists() and (rd / "records.jsonl").read_text().count('"epoch"') >= 2):
            assert time.time() < deadline, "the run never streamed"
            time.sleep(0.05)
        workers = [c.pid for c in kernel.children(recursive=True) if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2
        km.interrupt_kernel()
        ename = None
        while True:
            m = kc.get_iopub_msg(timeout=30)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "error":
                ename = m["content"]["ename"]
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        assert ename == "KeyboardInterrupt"
        assert json.loads((rd / "result.json").read_text())["status"] == "interrupted"
        assert _alive(workers) == []
        reply = kc.execute_interactive(
            f"print(run('dgnn_lab.dist.testing:noop', {{}}, 1, run_dir={str(tmp_path / 'r2')!r}).status)",
            timeout=60, output_hook=lambda m: None)
        assert reply["content"]["status"] == "ok"
        assert RunResult.load(tmp_path / "r2").status == "done"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
