"""What a worker entry sees (:class:`WorkerContext`) and the bootstrap shared by the spawn launcher and torchrun.

A worker entry is an importable function ``fn(ctx, config)``, referenced as ``"module:function"``. The same
function runs under :func:`dgnn_lab.dist.launch` (one machine, spawned processes, telemetry streamed to the
launching process) and under ``torchrun -m dgnn_lab.worker CONFIG.json`` (any number of machines, telemetry
written to one JSONL file per rank).
"""

from __future__ import annotations

import datetime
import importlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from .communicator import Communicator
from .telemetry import jsonable

BACKENDS = ("auto", "gloo", "nccl")


class RendezvousError(RuntimeError):
    """The process group could not be formed: a peer never joined within the timeout, or the address is wrong."""


def cpu_cores() -> int:
    """CPU cores this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(cores: int, local_workers: int) -> int:
    """Torch threads per worker: the cores shared evenly among the workers on this machine, at least one."""
    return max(1, cores // max(1, local_workers))


def resolve_backend(backend: str, local_workers: int) -> str:
    """``auto`` is NCCL when this machine has a CUDA device per local worker (NCCL refuses two ranks on one
    GPU), else gloo. Asking for ``nccl`` without enough devices is a ``ValueError``, not a hang."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    ndev = torch.cuda.device_count()
    if backend == "auto":
        return "nccl" if ndev >= local_workers and dist.is_nccl_available() else "gloo"
    if backend == "nccl" and ndev < local_workers:
        raise ValueError(f"backend 'nccl' needs one CUDA device per worker: {local_workers} workers on this "
                         f"machine but torch.cuda.device_count() == {ndev}; use backend='gloo' or 'auto'")
    return backend


def parse_entry(entry: str | Callable) -> str:
    """Normalise an entry to ``"module:function"``; a module-level function object is accepted too."""
    if callable(entry) and not isinstance(entry, str):
        mod, qual = getattr(entry, "__module__", None), getattr(entry, "__qualname__", "")
        if not mod or "<" in qual or "." in qual:
            raise ValueError(f"entry {entry!r} is not a module-level function; pass 'module:function'")
        entry = f"{mod}:{qual}"
    if not isinstance(entry, str) or entry.count(":") != 1 or not all(entry.split(":")):
        raise ValueError(f"entry must be 'module:function' (e.g. 'dgnn_lab.dist.testing:noop'), got {entry!r}")
    if entry.split(":")[0] in ("__main__", "__mp_main__"):
        raise ValueError(f"entry {entry!r} lives in __main__ (a notebook or script), which a freshly started "
                         "worker process cannot import; move the function into an importable module")
    return entry


def resolve_entry(entry: str) -> Callable[[WorkerContext, dict], Any]:
    """Import ``"module:function"``; errors name what was missing."""
    entry = parse_entry(entry)
    mod_name, fn_name = entry.split(":")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise ValueError(f"entry {entry!r}: cannot import module {mod_name!r}: {e}") from e
    fn = getattr(mod, fn_name, None)
    if not callable(fn):
        raise ValueError(f"entry {entry!r}: module {mod_name!r} has no function {fn_name!r}")
    return fn


def peak_mem_bytes(device: torch.device) -> int:
    """Peak memory of this worker: CUDA's max allocated bytes on a GPU, else the process's peak RSS."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # Windows
        return 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


@dataclass
class WorkerContext:
    """Everything an entry needs: its place in the world, its device, the communicator and telemetry."""

    rank: int
    world_size: int
    device: torch.device
    backend: str
    num_threads: int
    comm: Communicator
    run_dir: Path | None = None
    local_rank: int = 0
    local_world_size: int = 1
    cores: int = 1
    #: values sent by value over the launch channel (strategies defined in a notebook cell), by key
    objects: dict = field(default_factory=dict, repr=False)
    _sink: Callable[[dict], None] | None = field(default=None, repr=False)
    _stop: Callable[[], bool] | None = field(default=None, repr=False)
    _emitted: set = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def oversubscribed(self) -> bool:
        """More torch threads on this machine than cores: waiting then measures CPU contention too."""
        return self.local_world_size * self.num_threads > self.cores

    def emit(self, record: dict) -> None:
        """Send a telemetry record. Adds ``rank`` and a wall-clock ``time``; a ``start`` record also gets
        pid, host, backend, device, num_threads and world_size unless given. Values must be JSON-able
        (tensors and numpy numbers are converted); dict keys become strings."""
        if not isinstance(record, dict) or not isinstance(record.get("type"), str):
            raise ValueError(f"a telemetry record is a dict with a string 'type', got {record!r:.120}")
        rec = dict(record)
        rec["rank"] = self.rank
        rec["time"] = time.time()
        if rec["type"] == "start":
            for k, v in self.describe().items():
                rec.setdefault(k, v)
        rec = jsonable(rec)
        with self._lock:
            self._emitted.add(rec["type"])
            if self._sink is not None:
                self._sink(rec)

    def should_stop(self) -> bool:
        """True once the launcher asked this run to stop; a loop may check it each epoch to end cleanly
        (the launcher terminates workers that have not ended after a short grace period anyway)."""
        return bool(self._stop()) if self._stop is not None else False

    def peak_mem_bytes(self) -> int:
        """Peak memory so far (CUDA max allocated on a GPU, else peak RSS of this process)."""
        return peak_mem_bytes(self.device)

    def describe(self) -> dict:
        """The facts a ``start``/``ready`` record carries."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "backend": self.backend,
                "device": str(self.device), "num_threads": self.num_threads, "world_size": self.world_size,
                "local_rank": self.local_rank, "cores": self.cores, "oversubscribed": self.oversubscribed}


def init_worker(*, rank: int, world_size: int, local_rank: int, local_world_size: int, backend: str,
                timeout_s: float, num_threads: int | None, store: Any = None, where: str = "",
                sink: Callable[[dict], None] | None = None, stop: Callable[[], bool] | None = None,
                run_dir: Path | None = None, objects: dict | None = None) -> WorkerContext:
    """Set threads and device, join the process group (``store`` given, or ``env://``), build the context
    and emit a ``ready`` record with the rendezvous time ``init_s`` and address (``where``, for messages)."""
    cores = cpu_cores()
    threads = num_threads if num_threads is not None else default_threads(cores, local_world_size)
    torch.set_num_threads(threads)
    if backend == "nccl":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    t0 = time.perf_counter()
    kw: dict[str, Any] = {"store": store} if store is not None else {"init_method": "env://"}
    try:
        dist.init_process_group(backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(seconds=timeout_s), **kw)
    except (RuntimeError, TimeoutError, ValueError) as e:
        raise RendezvousError(
            f"rank {rank} of {world_size} could not form the process group within {timeout_s:g} s{where}: "
            f"a peer never joined, died during start-up, or the address/port/interface is wrong. "
            f"Backend error: {e}") from e
    init_s = time.perf_counter() - t0
    rendezvous = where.strip().strip("()")
    comm = Communicator(rank, world_size, device, backend, timeout_s=timeout_s)
    ctx = WorkerContext(rank=rank, world_size=world_size, device=device, backend=backend, num_threads=threads,
                        comm=comm, run_dir=run_dir, local_rank=local_rank, local_world_size=local_world_size,
                        cores=cores, objects=dict(objects or {}), _sink=sink, _stop=stop)
    ctx.emit({"type": "ready", "init_s": init_s, "rendezvous": rendezvous, **ctx.describe()})
    return ctx


def run_entry(ctx: WorkerContext, entry: str, config: dict) -> None:
    """Call the entry; afterwards emit ``done`` (with the entry's returned dict, if any) unless it did."""
    fn = resolve_entry(entry)
    out = fn(ctx, config)
    if "done" not in ctx._emitted:
        extra = out if isinstance(out, dict) else {}
        ctx.emit({**extra, "type": "done"})


def shutdown() -> None:
    """Leave the process group (after success only: after a failure it may block on dead peers)."""
    if dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
