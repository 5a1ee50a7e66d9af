"""Launch a run: ``world_size`` spawned worker processes, supervised, with telemetry streamed back live.

Design (what makes it safe to hit Interrupt in a notebook):

* The launching call returns at once with a :class:`RunHandle`. A *supervisor thread* starts the workers
  (``multiprocessing`` spawn context) and lives exactly as long as they do; each worker sets
  ``PR_SET_PDEATHSIG`` (Linux), so if that thread's process dies, the kernel kills the workers.
* Rendezvous uses a ``TCPStore`` the launcher opens on 127.0.0.1 port 0 (the OS picks a free port and the
  launcher holds it for the whole run), so back-to-back and concurrent runs never collide on ports. The
  process-group timeout is short (``timeout_s``, 60 s by default) instead of torch's 30 minutes.
* Each worker has its own one-way pipe to the launcher (not a shared queue: a worker killed while writing
  cannot wedge the others or the reader). A *drain thread* appends records to ``handle.records``, writes
  them to ``run_dir/records.jsonl`` and calls ``on_record``.
* Workers catch every exception at top level, send an ``error`` record with the traceback and exit 1. The
  supervisor turns the first failure (earliest in time: the root cause, not the peers that then lost their
  connection) into one :class:`WorkerError` naming the rank, terminates the others (SIGTERM, then SIGKILL
  after ``term_grace_s``) and reaps them all. A worker killed by a signal is reported with that signal.
* Workers ignore SIGINT: a Ctrl-C or Jupyter Interrupt reaches the launcher, which stops the run and records
  it as ``interrupted`` (never as success).
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import json
import logging
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import signal
import sys
import threading
import time
import traceback
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist

from dgnn_lab.kernel_events import wait_for

from .communicator import CommunicationError
from .context import (
    RendezvousError,
    cpu_cores,
    default_threads,
    init_worker,
    parse_entry,
    resolve_backend,
    resolve_entry,
    run_entry,
    shutdown,
)
from .results import RunResult
from .telemetry import RECORDS_FILE, JsonlWriter, jsonable

log = logging.getLogger("dgnn_lab.dist")

STATUSES = ("running", "done", "failed", "interrupted")
_ACTIVE: weakref.WeakSet[RunHandle] = weakref.WeakSet()


class WorkerError(Exception):
    """A worker failed. ``rank`` is the worker that failed first; ``worker_traceback`` its traceback (or, for
    a worker killed by a signal, a note saying so plus the tail of its log)."""

    def __init__(self, rank: int | None, worker_traceback: str, exitcode: int | None = None,
                 run_dir: Path | None = None) -> None:
        self.rank = rank
        self.worker_traceback = worker_traceback
        self.exitcode = exitcode
        self.run_dir = run_dir
        who = f"worker rank {rank}" if rank is not None else "the launcher"
        how = ""
        if exitcode is not None and exitcode < 0:
            how = f" (killed by {_signal_name(-exitcode)})"
        elif exitcode is not None:
            how = f" (exit code {exitcode})"
        super().__init__(f"{who} failed{how}:\n{worker_traceback.rstrip()}")

    def __reduce__(self):
        return (WorkerError, (self.rank, self.worker_traceback, self.exitcode, self.run_dir))


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


def _new_run_dir() -> Path:
    """A fresh ``<runs root>/<date>-<time>-<id>`` (see :func:`dgnn_lab.settings.runs_root`)."""
    from dgnn_lab.settings import runs_root

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return runs_root() / f"{stamp}-{uuid.uuid4().hex[:6]}"


# ------------------------------------------------------------------------------------------ worker side
def _set_parent_death_signal(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when the thread that started it dies; exit now if it already has."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 == PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _worker_main(rank: int, spec: dict, conn: mpc.Connection, stop_event: Any) -> None:
    """Body of a spawned worker: rendezvous, run the entry, report; never raises (exits 0 or 1)."""
    _set_parent_death_signal(spec["parent_pid"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the launcher owns interrupts
    if spec.get("log_dir"):
        # worker output goes to run_dir/worker-<rank>.log, never into the notebook
        fd = os.open(os.path.join(spec["log_dir"], f"worker-{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    send_lock = threading.Lock()

    def sink(record: dict) -> None:
        with send_lock:
            try:
                conn.send(record)
            except (BrokenPipeError, OSError):
                pass  # the launcher is gone or closing; nothing to report to

    try:
        ws = spec["world_size"]
        try:
            store = dist.TCPStore("127.0.0.1", spec["store_port"], ws, is_master=False,
                                  timeout=datetime.timedelta(seconds=spec["timeout_s"]))
        except (RuntimeError, TimeoutError) as e:
            raise RendezvousError(f"rank {rank} could not reach the launcher's TCPStore at 127.0.0.1:"
                                  f"{spec['store_port']} within {spec['timeout_s']:g} s: {e}") from e
        ctx = init_worker(rank=rank, world_size=ws, local_rank=rank, local_world_size=ws,
                          backend=spec["backend"], timeout_s=spec["timeout_s"], num_threads=spec["num_threads"],
                          store=store, where=f" (TCPStore 127.0.0.1:{spec['store_port']})", sink=sink,
                          stop=stop_event.is_set, run_dir=Path(spec["run_dir"]),
                          objects=_unpack_objects(spec.get("objects")))
        run_entry(ctx, spec["entry"], spec["config"])
    except BaseException as e:  # noqa: BLE001 - report everything, including SystemExit and KeyboardInterrupt
        if isinstance(e, SystemExit) and e.code in (0, None):
            pass
        else:
            sink(error_record(rank, e))
            _flush_and_exit(conn, 1)
    shutdown()
    _flush_and_exit(conn, 0)


def _unpack_objects(payload: bytes | None) -> dict:
    """The by-value objects of a run (strategies defined in a notebook cell), from the launch channel: the
    bytes came from the launching process through the spawn pipe, never from a file."""
    if not payload:
        return {}
    import pickle

    return pickle.loads(payload)


def pack_objects(objects: dict | None) -> bytes | None:
    """``objects`` pickled by value (cloudpickle), for the launch channel only: a class from ``__main__`` (a
    notebook cell) cannot be imported by a spawned worker, so its code travels with the spawn arguments."""
    if not objects:
        return None
    import cloudpickle

    return cloudpickle.dumps(objects)


_PEER_FAILURE_TEXT = ("Connection closed by peer", "Connection reset by peer", "Broken pipe",
                      "NCCL communicator was aborted", "Socket Timeout")


def is_peer_failure(e: BaseException) -> bool:
    """Whether ``e`` looks like the *consequence* of another rank failing (a broken connection, a timed-out
    collective) rather than a failure of its own. The supervisor blames such a rank only if no rank failed
    on its own."""
    return isinstance(e, (CommunicationError, RendezvousError)) or any(t in str(e) for t in _PEER_FAILURE_TEXT)


def error_record(rank: int, e: BaseException) -> dict:
    """The ``error`` record for an exception being handled (call it inside ``except``)."""
    return {"type": "error", "rank": rank, "time": time.time(), "traceback": traceback.format_exc(),
            "exception": f"{type(e).__name__}: {e}"[:2000], "peer_failure": is_peer_failure(e)}


def _flush_and_exit(conn: mpc.Connection, code: int) -> None:
    """Close the pipe (the launcher sees EOF after the last record) and exit without interpreter teardown,
    which could block on a dead peer's connection."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001
            pass
    try:
        conn.close()
    except OSError:
        pass
    os._exit(code)


# ---------------------------------------------------------------------------------------- launcher side
class RunHandle:
    """A running (or finished) launch. Thread-safe; every method may be called from any thread."""

    def __init__(self, entry: str, config: dict, world_size: int, backend: str, run_dir: Path,
                 timeout_s: float, num_threads: int, cores: int, on_record: Callable[[dict], Any] | None,
                 stop_grace_s: float, term_grace_s: float, objects: bytes | None = None) -> None:
        self.entry = entry
        self._objects = objects  # by-value strategies: sent to the workers, never written to run_dir
        self.config = config
        self.world_size = world_size
        self.backend = backend
        self.run_dir = run_dir
        self.timeout_s = timeout_s
        self.num_threads = num_threads
        self.cores = cores
        self.oversubscribed = world_size * num_threads > cores
        self.on_record = on_record
        self.stop_grace_s = stop_grace_s
        self.term_grace_s = term_grace_s
        self.records: list[dict] = []
        self.error: BaseException | None = None
        self.result: RunResult | None = None
        self.pids: list[int] = []
        self.callback_errors = 0
        self._status = "running"
        self._lock = threading.Lock()
        self._add_lock = threading.RLock()
        self._closed = False
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._t0 = time.time()
        self._errors: dict[int, dict] = {}  # rank -> first error record
        self._eof: set[int] = set()
        self._drain_cv = threading.Condition()
        self._writer = JsonlWriter(run_dir / RECORDS_FILE)
        (run_dir / "config.json").write_text(json.dumps(
            {"entry": entry, "config": config, "world_size": world_size, "backend": backend,
             "timeout_s": timeout_s, "threads_per_worker": num_threads, "run_dir": str(run_dir)}, indent=2))
        self._drain_thread: threading.Thread | None = None
        self._supervisor = threading.Thread(target=self._supervise, name=f"dgnn-supervisor-{run_dir.name}",
                                            daemon=True)

    # --------------------------------------------------------------------------------- public API
    @property
    def status(self) -> str:
        """One of running, done, failed, interrupted."""
        return self._status

    def snapshot(self) -> list[dict]:
        """A copy of the records received so far (safe to iterate while the run goes on)."""
        with self._lock:
            return list(self.records)

    def done(self) -> bool:
        """True once all workers have ended and the run's status is final."""
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> RunResult:
        """Block until the run ends and return its :class:`RunResult`. Raises :class:`WorkerError` if a
        worker failed, ``TimeoutError`` if ``timeout`` passes first (the run goes on). A KeyboardInterrupt
        while waiting stops the run (status ``interrupted``) and is re-raised."""
        try:
            if not wait_for(self._finished, timeout):  # in a notebook, Stop buttons keep working meanwhile
                raise TimeoutError(f"run {self.run_dir.name} still running after {timeout:g} s")
        except KeyboardInterrupt:
            self.stop()
            raise
        if self._status == "failed" and self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def stop(self, timeout: float | None = 30.0) -> str:
        """Interrupt the run: ask workers to stop (``ctx.should_stop()``), terminate those still running after
        ``stop_grace_s``, reap them all, record status ``interrupted``. Blocks until done (or ``timeout``);
        returns the final status (a run that already ended keeps its status)."""
        self._stop_requested.set()
        if threading.current_thread() in (self._supervisor, self._drain_thread):
            return self._status  # called from on_record: waiting here would block the drain it waits for
        self._finished.wait(timeout)
        return self._status

    def __repr__(self) -> str:
        return (f"RunHandle({self.entry!r}, world_size={self.world_size}, backend={self.backend!r}, "
                f"status={self._status!r}, records={len(self.records)}, run_dir='{self.run_dir}')")

    # ------------------------------------------------------------------------------------ internals
    def _add_record(self, rec: dict, final: bool = False) -> None:
        """Append, log and call back, one record at a time (``on_record`` is never called concurrently); the
        ``final`` run record closes the stream, so it is always the last record anyone sees."""
        with self._add_lock:
            if self._closed:
                return
            self._closed = final
            with self._lock:
                self.records.append(rec)
            if rec.get("type") == "error" and isinstance(rec.get("rank"), int):
                self._errors.setdefault(rec["rank"], rec)
            try:
                self._writer.write(rec)
            except (OSError, ValueError) as e:
                log.warning("could not write telemetry to %s: %s", self._writer.path, e)
            if self.on_record is not None:
                try:
                    self.on_record(rec)
                except Exception:  # noqa: BLE001 - a broken callback must not kill the run
                    self.callback_errors += 1
                    if self.callback_errors <= 3:
                        log.exception("on_record callback raised (run goes on; %d so far)", self.callback_errors)

    def _run_record(self, status: str, **extra: Any) -> dict:
        return jsonable({"type": "run", "rank": None, "time": time.time(), "status": status,
                         "world_size": self.world_size, "cores": self.cores, "backend": self.backend,
                         "num_threads": self.num_threads, "oversubscribed": self.oversubscribed,
                         "entry": self.entry, "config": self.config, "run_dir": str(self.run_dir), **extra})

    def _drain(self, readers: dict[mpc.Connection, int]) -> None:
        """Move records from the worker pipes to the handle until every pipe reports EOF."""
        pending = dict(readers)
        while pending:
            for conn in mpc.wait(list(pending), timeout=0.2):
                rank = pending[conn]
                try:
                    rec = conn.recv()
                except (EOFError, OSError):
                    del pending[conn]
                    conn.close()
                    with self._drain_cv:
                        self._eof.add(rank)
                        self._drain_cv.notify_all()
                    continue
                except Exception as e:  # noqa: BLE001 - an unpicklable record must not stop the drain
                    log.warning("dropped an unreadable record from rank %d: %s", rank, e)
                    continue
                if isinstance(rec, dict):
                    self._add_record(rec)
            if self._finished.is_set():
                break
        for conn in pending:  # given up on (a worker's child still holds the pipe): don't leak the fd
            conn.close()

    def _wait_eof(self, ranks: set[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._drain_cv:
            while not ranks <= self._eof:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._drain_cv.wait(left)

    def _supervise(self) -> None:
        procs: list[Any] = []
        status, error = "failed", None
        store = None
        try:
            self._add_record(self._run_record("running"))
            mpctx = mp.get_context("spawn")
            store = dist.TCPStore("127.0.0.1", 0, None, is_master=True, wait_for_workers=False,
                                  timeout=datetime.timedelta(seconds=self.timeout_s))
            stop_event = mpctx.Event()
            spec = {"entry": self.entry, "config": self.config, "world_size": self.world_size,
                    "backend": self.backend, "timeout_s": self.timeout_s, "num_threads": self.num_threads,
                    "store_port": store.port, "parent_pid": os.getpid(), "run_dir": str(self.run_dir),
                    "log_dir": str(self.run_dir), "objects": self._objects}
            readers: dict[mpc.Connection, int] = {}
            for rank in range(self.world_size):
                r, w = mpctx.Pipe(duplex=False)
                p = mpctx.Process(target=_worker_main, args=(rank, spec, w, stop_event),
                                  name=f"dgnn-worker-{rank}")
                p.start()
                w.close()
                readers[r] = rank
                procs.append(p)
                self.pids.append(p.pid)
            self._drain_thread = threading.Thread(target=self._drain, args=(readers,), name="dgnn-telemetry",
                                                  daemon=True)
            self._drain_thread.start()
            status, error = self._monitor(procs, stop_event)
        except BaseException as e:  # noqa: BLE001 - the launcher's own failure is reported, never swallowed
            status = "interrupted" if self._stop_requested.is_set() else "failed"
            error = WorkerError(None, traceback.format_exc()) if status == "failed" else None
            log.debug("supervisor error: %s", e)
        finally:
            self._terminate(procs)
            self._wait_eof(set(range(len(procs))), timeout=2.0)
            self._finish(status, error)
            del store

    def _monitor(self, procs: list[Any], stop_event: Any) -> tuple[str, WorkerError | None]:
        """Wait for all workers to end, the first failure, or a stop request."""
        exit_seen: dict[int, float] = {}
        while True:
            alive = [p for i, p in enumerate(procs) if i not in exit_seen]
            if self._stop_requested.is_set():
                stop_event.set()
                deadline = time.monotonic() + self.stop_grace_s
                while any(p.is_alive() for p in procs) and time.monotonic() < deadline:
                    mpc.wait([p.sentinel for p in procs if p.is_alive()], timeout=0.05)
                all_ok = all(p.exitcode == 0 for p in procs) and len(exit_seen) == len(procs)
                return ("done" if all_ok else "interrupted"), None
            if alive:
                mpc.wait([p.sentinel for p in alive], timeout=0.1)
            now = time.time()
            for i, p in enumerate(procs):
                if i not in exit_seen and p.exitcode is not None:
                    exit_seen[i] = now
            failed = {i for i, p in enumerate(procs) if p.exitcode not in (None, 0)} | set(self._errors)
            if failed:
                return "failed", self._first_failure(procs, exit_seen, failed)
            if len(exit_seen) == len(procs):
                return "done", None

    def _first_failure(self, procs: list[Any], exit_seen: dict[int, float], failed: set[int]) -> WorkerError:
        """The root cause among the failures seen within a short settling window: earliest in time (an error
        record's own time, or when a worker without one was seen to exit)."""
        settle_until = time.monotonic() + 0.3
        while time.monotonic() < settle_until:
            mpc.wait([p.sentinel for p in procs if p.exitcode is None] or [], timeout=0.05)
            now = time.time()
            for i, p in enumerate(procs):
                if i not in exit_seen and p.exitcode is not None:
                    exit_seen[i] = now
        failed = failed | {i for i, p in enumerate(procs) if p.exitcode not in (None, 0)} | set(self._errors)
        # a worker that exited may still have its error record in the pipe: read up to its EOF
        self._wait_eof({i for i in failed if procs[i].exitcode is not None}, timeout=2.0)
        failed |= set(self._errors)

        def blame(i: int) -> tuple[bool, float, int]:
            # own failures (an exception of its own, or death without a traceback) before peer failures
            # (broken connections, collective timeouts), then earliest first
            rec = self._errors.get(i)
            if rec is None:
                return (False, exit_seen.get(i, time.time()), i)
            return (bool(rec.get("peer_failure")), rec["time"], i)

        rank = min(failed, key=blame)
        rec = self._errors.get(rank)
        code = procs[rank].exitcode
        if rec is not None:
            tb = rec.get("traceback", "")
            healthy = [i for i in range(len(procs)) if i not in failed]
            if rec.get("peer_failure") and healthy:
                tb += (f"\n(no rank failed on its own; rank(s) {healthy} were still running without an error: "
                       "a rank that hangs, or never reaches the same collective, makes its peers time out)")
        else:
            how = f"was killed by {_signal_name(-code)}" if code is not None and code < 0 else \
                f"exited with code {code}"
            tb = f"worker rank {rank} (pid {procs[rank].pid}) {how} without a Python traceback"
            if code == -getattr(signal, "SIGKILL", 9):
                tb += " (out of memory, or killed externally?)"
            if not any(r.get("rank") == rank for r in self.snapshot()):
                tb += ("\nIt died while starting, before joining the run; its output went to this process's "
                       "stderr. A script that launches runs must guard its top level with "
                       "`if __name__ == \"__main__\":` (spawned workers re-import it).")
            tail = self._log_tail(rank)
            if tail:
                tb += f"\n--- last lines of {self.run_dir / f'worker-{rank}.log'} ---\n{tail}"
        return WorkerError(rank, tb, exitcode=code, run_dir=self.run_dir)

    def _log_tail(self, rank: int, lines: int = 20) -> str:
        try:
            text = (self.run_dir / f"worker-{rank}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def _terminate(self, procs: list[Any]) -> None:
        """SIGTERM whoever is left, SIGKILL after ``term_grace_s``, and reap everyone."""
        for p in procs:
            if p.exitcode is None:
                try:
                    p.terminate()
                except (OSError, AttributeError):
                    pass
        deadline = time.monotonic() + self.term_grace_s
        for p in procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for p in procs:
            if p.exitcode is None:
                try:
                    p.kill()
                except (OSError, AttributeError):
                    pass
        for p in procs:
            p.join(5.0)
            if p.exitcode is None:
                log.error("worker pid %s did not die after SIGKILL", p.pid)

    def _finish(self, status: str, error: WorkerError | None) -> None:
        elapsed = time.time() - self._t0
        err = None
        if error is not None:
            err = {"rank": error.rank, "exitcode": error.exitcode, "traceback": error.worker_traceback}
        self._add_record(self._run_record(status, elapsed_s=elapsed, error=err), final=True)
        self._writer.close()
        result = RunResult(records=self.snapshot(), status=status, config=self.config,
                           world_size=self.world_size, cores=self.cores, run_dir=self.run_dir,
                           backend=self.backend, num_threads=self.num_threads, entry=self.entry,
                           elapsed_s=elapsed, error=err)
        try:
            result.write_result_file()
        except Exception as e:  # noqa: BLE001 - a summary bug must not hide the run's outcome
            log.warning("could not write %s/result.json: %s", self.run_dir, e)
        self.result = result
        self.error = error
        self._status = status
        self._finished.set()


def launch(entry: str | Callable, config: dict, world_size: int, *, backend: str = "auto",
           run_dir: str | os.PathLike | None = None, timeout_s: float = 60.0,
           threads_per_worker: int | None = None, on_record: Callable[[dict], Any] | None = None,
           stop_grace_s: float = 1.0, term_grace_s: float = 2.0, objects: dict | None = None) -> RunHandle:
    """Start ``world_size`` workers running ``entry(ctx, config)`` and return a :class:`RunHandle` at once.

    ``entry`` is ``"module:function"`` (importable by a fresh process); ``config`` a JSON-able dict.
    ``run_dir`` defaults to a fresh ``runs/<date>-<time>-<id>/`` under the current directory; it receives
    ``config.json``, ``records.jsonl`` (streamed), ``worker-<rank>.log`` (worker stdout/stderr) and
    ``result.json``. ``timeout_s`` bounds rendezvous and every collective. ``threads_per_worker`` defaults
    to ``max(1, cores // world_size)``. ``on_record(record)`` is called from the telemetry thread for every
    record as it arrives, one at a time, the final ``run`` record last; exceptions are logged, not raised.
    Keep it quick (store, set a flag, redraw elsewhere): workers block while it runs once their pipe fills.
    It may call ``handle.stop()`` but must not ``wait()``. ``stop_grace_s``: how long a stopped run's workers
    get to notice ``should_stop()``; ``term_grace_s``: between SIGTERM and SIGKILL.
    """
    entry = parse_entry(entry)
    resolve_entry(entry)  # fail here, with a clear message, rather than in every worker
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be an int >= 1, got {world_size!r}")
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict, got {type(config).__name__}")
    try:
        json.dumps(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"config must be JSON-able (it is saved to config.json and sent to workers): {e}") from e
    if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    if threads_per_worker is not None and (not isinstance(threads_per_worker, int) or threads_per_worker < 1):
        raise ValueError(f"threads_per_worker must be an int >= 1 or None, got {threads_per_worker!r}")
    if on_record is not None and not callable(on_record):
        raise ValueError(f"on_record must be callable or None, got {type(on_record).__name__}")
    resolved = resolve_backend(backend, world_size)
    cores = cpu_cores()
    threads = threads_per_worker or default_threads(cores, world_size)
    rd = Path(run_dir) if run_dir is not None else _new_run_dir()
    rd.mkdir(parents=True, exist_ok=True)
    if any(rd.glob("records*.jsonl")):
        raise ValueError(f"run_dir {rd} already holds a run's records; pass a fresh directory (or None)")
    handle = RunHandle(entry, config, world_size, resolved, rd.resolve(), float(timeout_s), threads, cores,
                       on_record, stop_grace_s, term_grace_s, objects=pack_objects(objects))
    _ACTIVE.add(handle)
    handle._supervisor.start()
    return handle


def run(entry: str | Callable, config: dict, world_size: int, **kw: Any) -> RunResult:
    """:func:`launch` and wait: returns the :class:`RunResult`, raises :class:`WorkerError` on a failure.
    Ctrl-C (or Jupyter's Interrupt) stops every worker, records the run as ``interrupted`` and re-raises
    ``KeyboardInterrupt``."""
    return launch(entry, config, world_size, **kw).wait()


@atexit.register
def _stop_active_runs() -> None:
    """At interpreter exit, stop runs still going (before multiprocessing's own exit hook joins workers)."""
    for h in list(_ACTIVE):
        if not h.done():
            h.stop(timeout=10.0)
