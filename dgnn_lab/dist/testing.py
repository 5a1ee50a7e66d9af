"""Tiny worker entries for the runtime's own tests and for trying the launcher by hand.

Each is ``fn(ctx, config)``, importable by a freshly spawned process. They exchange known tensors, fail on
purpose (raise, SIGKILL themselves, hang, never join a collective) or just stream records.
"""

from __future__ import annotations

import os
import signal
import time

import torch

from .context import WorkerContext


class TaggedContext:
    """A worker context whose records all carry ``"case": case``: lets one launch run several configurations
    in turn (tests and benchmarks pay the process start-up once) and still split the records afterwards."""

    def __init__(self, ctx: WorkerContext, case: int) -> None:
        self._ctx, self._case = ctx, case

    def __getattr__(self, name: str):
        return getattr(self._ctx, name)

    def emit(self, record: dict) -> None:
        self._ctx.emit({**record, "case": self._case})


def noop(ctx: WorkerContext, config: dict) -> dict:
    """Do nothing; return a small dict that ends up in the ``done`` record."""
    return {"ok": True, "pid": os.getpid()}


def block(src: int, dst: int, rows: int, dim: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The block rank ``src`` sends to ``dst``: value = src * 1e6 + dst * 1e4 + row * 10 + column."""
    r = torch.arange(rows, dtype=dtype).unsqueeze(1) * 10
    c = torch.arange(dim, dtype=dtype).unsqueeze(0)
    return src * 1e6 + dst * 1e4 + r + c


def exchange_known(ctx: WorkerContext, config: dict) -> None:
    """``config["rows"][src][dst]`` rows go from src to dst, ``config["dim"]`` wide, ``config["dtype"]``;
    then an all-reduce of ``arange(n) * (rank + 1)`` and a barrier; rank ``config["slow_rank"]`` (if any)
    first computes for ``config["delay"]`` s; ``config["sync"]`` sets ``ctx.comm.sync``. Emits an ``epoch``
    record with the received blocks (``recv``), the reduced vector (``reduced``) and the communicator's
    stats."""
    ctx.comm.sync = bool(config.get("sync", True))
    dtype = getattr(torch, config.get("dtype", "float64"))
    rows, dim, me = config["rows"], int(config["dim"]), ctx.rank
    send = [block(me, q, rows[me][q], dim, dtype).to(ctx.device) for q in range(ctx.world_size)]
    recv_rows = [rows[q][me] for q in range(ctx.world_size)]
    with ctx.comm.phase("compute"):
        if me == config.get("slow_rank"):
            time.sleep(float(config.get("delay", 0.5)))  # a straggler: its peers should see wait, not comm
        recv = ctx.comm.exchange(send, recv_rows, purpose="halo_fwd/L0")
        vec = torch.arange(int(config.get("n", 10)), dtype=torch.float32, device=ctx.device) * (me + 1)
        ctx.comm.all_reduce(vec, purpose="grad_allreduce")
        ctx.comm.barrier("metrics")
    stats = ctx.comm.take_epoch_stats()
    ctx.emit({"type": "epoch", "epoch": 0, "epoch_s": 0.0, **stats,
              "recv": [t.cpu().tolist() for t in recv], "reduced": vec.cpu().tolist()})


def exchange_mismatch(ctx: WorkerContext, config: dict) -> None:
    """Rank 0 sends 3 rows to rank 1, which expects ``config["expect"]``: a bug the check must name."""
    send = [torch.ones(3 if (ctx.rank == 0 and q == 1) else 0, 2) for q in range(ctx.world_size)]
    recv_rows = [int(config["expect"]) if (ctx.rank == 1 and q == 0) else 0 for q in range(ctx.world_size)]
    ctx.comm.exchange(send, recv_rows, "halo_fwd/L0")


def bandwidth(ctx: WorkerContext, config: dict) -> None:
    """Exchange ``config["mb"]`` MB float32 blocks between all pairs, ``config["reps"]`` times, first with
    raw ``torch.distributed`` point-to-point calls into reused receive buffers (``raw_s``) and into fresh ones
    (``raw_fresh_s``, the baseline: ``exchange`` returns new tensors), then through ``ctx.comm.exchange``;
    emits one ``bench`` record per repetition with the times."""
    import torch.distributed as dist

    dim = 256
    rows = int(float(config.get("mb", 16)) * 2**20) // (4 * dim)
    me, p = ctx.rank, ctx.world_size
    send = [torch.randn(rows if q != me else 0, dim, device=ctx.device) for q in range(p)]
    recv = [torch.empty(rows if q != me else 0, dim, device=ctx.device) for q in range(p)]
    recv_rows = [t.shape[0] for t in recv]
    ctx.comm.take_epoch_stats()
    for e in range(int(config.get("reps", 5))):
        dist.barrier()
        t0 = time.perf_counter()
        ops = [dist.P2POp(op, t, q) for q in range(p) if q != me
               for op, t in ((dist.irecv, recv[q]), (dist.isend, send[q]))]
        for w in dist.batch_isend_irecv(ops):
            w.wait()
        raw_s = time.perf_counter() - t0
        fresh = [torch.empty_like(t) for t in recv]  # as exchange does: new tensors, first touched by the recv
        dist.barrier()
        t0 = time.perf_counter()
        ops = [dist.P2POp(op, t, q) for q in range(p) if q != me
               for op, t in ((dist.irecv, fresh[q]), (dist.isend, send[q]))]
        for w in dist.batch_isend_irecv(ops):
            w.wait()
        raw_fresh_s = time.perf_counter() - t0
        del fresh
        ctx.comm.exchange(send, recv_rows, purpose="halo_fwd/L0")
        stats = ctx.comm.take_epoch_stats()
        ctx.emit({"type": "bench", "rep": e, "raw_s": raw_s, "raw_fresh_s": raw_fresh_s, "comm_s": stats["comm_s"],
                  "wait_s": stats["wait_s"], "bytes": rows * dim * 4 * (p - 1)})


def stream(ctx: WorkerContext, config: dict) -> None:
    """Emit an ``epoch`` record every ``config["interval"]`` s for ``config["epochs"]`` epochs (default:
    forever), checking ``ctx.should_stop()`` only if ``config["cooperative"]``."""
    interval = float(config.get("interval", 0.05))
    epochs = config.get("epochs")
    e = 0
    while epochs is None or e < epochs:
        if config.get("cooperative") and ctx.should_stop():
            ctx.emit({"type": "stopped", "epoch": e})
            return
        time.sleep(interval)
        ctx.emit({"type": "epoch", "epoch": e, "epoch_s": interval, "loss": 1.0 / (e + 1)})
        e += 1


def fail(ctx: WorkerContext, config: dict) -> None:
    """Rank ``config["rank"]`` fails after ``config["after"]`` s in the way ``config["how"]`` says
    (``raise``, ``sigkill``, ``exit``: os._exit(3), ``hang``: sleep without joining the next collective);
    the other ranks wait in barriers (so they see the failure as a broken or timed-out collective)."""
    how, bad, after = config.get("how", "raise"), int(config.get("rank", 1)), float(config.get("after", 0.2))
    ctx.emit({"type": "epoch", "epoch": 0, "epoch_s": 0.0})
    if ctx.rank == bad:
        time.sleep(after)
        if how == "raise":
            raise ValueError(f"deliberate failure on rank {ctx.rank}")
        if how == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        if how == "exit":
            os._exit(3)
        if how == "hang":
            time.sleep(3600)
        raise ValueError(f"unknown failure mode {how!r}")
    for _ in range(int(config.get("barriers", 1000))):
        ctx.comm.barrier("metrics")
        time.sleep(0.01)
