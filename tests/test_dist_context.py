"""WorkerContext without processes: record normalisation, start defaults, done records, backend choice."""

from __future__ import annotations

import pytest
import torch

from dgnn_lab.dist import Communicator, WorkerContext, resolve_backend
from dgnn_lab.dist.context import default_threads, parse_entry, run_entry


def _ctx(sink):
    comm = Communicator(0, 1, "cpu", "gloo")
    return WorkerContext(rank=0, world_size=1, device=torch.device("cpu"), backend="gloo", num_threads=1,
                         comm=comm, cores=2, local_world_size=4, _sink=sink)


def test_emit_adds_rank_time_and_normalises():
    out = []
    ctx = _ctx(out.append)
    stats = {"bytes_sent": {1: {"halo_fwd/L0": 8}}, "loss": torch.tensor(0.25)}
    ctx.emit({"type": "epoch", "rank": 99, **stats})
    (rec,) = out
    assert rec["rank"] == 0 and isinstance(rec["time"], float)
    assert rec["bytes_sent"] == {"1": {"halo_fwd/L0": 8}} and rec["loss"] == 0.25
    with pytest.raises(ValueError, match="string 'type'"):
        ctx.emit({"epoch": 1})
    with pytest.raises(TypeError, match="JSON-able"):
        ctx.emit({"type": "epoch", "model": torch.nn.Linear(1, 1)})


def test_start_record_gets_the_standard_fields_and_keeps_extras():
    out = []
    ctx = _ctx(out.append)
    ctx.emit({"type": "start", "num_owned": 10, "num_threads": 7})
    rec = out[0]
    assert rec["num_owned"] == 10 and rec["num_threads"] == 7  # given values win
    for k in ("pid", "host", "backend", "device", "world_size", "cores", "oversubscribed"):
        assert k in rec
    assert rec["oversubscribed"] is True  # 4 local workers x 1 thread on 2 cores


def test_run_entry_emits_done_with_the_returned_dict_unless_the_entry_did():
    out = []
    run_entry(_ctx(out.append), "dgnn_lab.dist.testing:noop", {})
    assert [r["type"] for r in out] == ["done"] and out[0]["ok"] is True
    out.clear()
    run_entry(_ctx(out.append), "dgnn_lab.dist.testing:stream", {"epochs": 2, "interval": 0.0})
    assert [r["type"] for r in out] == ["epoch", "epoch", "done"]


def test_entry_and_backend_choices():
    from dgnn_lab.dist.testing import noop

    assert parse_entry(noop) == "dgnn_lab.dist.testing:noop"
    with pytest.raises(ValueError, match="not a module-level function"):
        parse_entry(lambda ctx, cfg: None)
    assert default_threads(2, 4) == 1 and default_threads(16, 4) == 4
    if torch.cuda.device_count() < 2:
        assert resolve_backend("auto", 2) == "gloo"
    assert resolve_backend("gloo", 64) == "gloo"
