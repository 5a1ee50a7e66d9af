"""The instrumented communicator: every byte the training moves goes through here, counted per peer and purpose.

Time is split into three exclusive phases, measured with ``time.perf_counter`` in the worker:

* ``compute``: whatever the caller wraps in ``with comm.phase("compute")``;
* ``wait``: time at a synchronisation point. Every collective call (``exchange``, ``all_reduce``,
  ``barrier``) first enters a barrier over all ranks; the time spent there is the time this rank waited for
  the slowest rank to arrive (plus one barrier's latency, ~0.5 ms on loopback gloo here). A straggler
  therefore shows up as *wait* on everyone else, not as communication;
* ``comm``: the transfer itself, started once all ranks are known to be present.

Phases nest and are exclusive: an ``exchange`` inside ``with comm.phase("compute")`` pauses the compute clock
while it waits and transfers, so ``compute_s + comm_s + wait_s`` never exceeds the wall time. On CUDA each
phase boundary calls ``torch.cuda.synchronize`` so that asynchronous kernels are charged to the phase that
launched them (this costs some overlap; it is a measuring instrument, not a fast path).

Bytes are wire sizes (``numel * element_size``, no headers):

* ``exchange`` (all-to-all of row blocks): rank r records ``send[q].numel() * element_size`` sent to q and
  ``recv_rows[q] * D * element_size`` received from q. Nothing for itself; peers with 0 rows exchange no
  message at all (point-to-point ``isend``/``irecv`` only where there is data).
* ``all_reduce`` (modelled as a ring all-reduce): the buffer of n elements is cut into P chunks of
  ``n // P`` or ``n // P + 1`` elements; in P-1 reduce-scatter steps and P-1 all-gather steps rank r sends
  every chunk except chunks (r+1)%P and (r+2)%P to its successor (r+1)%P, i.e.
  ``(2n - c[(r+1)%P] - c[(r+2)%P]) * element_size`` bytes, and receives the same amount from its predecessor.
  When P divides n this is exactly ``2(P-1)/P * nbytes`` per rank, and summed over ranks it is always exactly
  ``2(P-1) * nbytes``. It is a model of the bandwidth-optimal algorithm, not a trace of what gloo or NCCL did
  (they may pick trees or halving-doubling for small buffers). P == 1 moves nothing.
* ``barrier``: control messages only, recorded as no bytes.
* ``send`` / ``recv`` (point-to-point, e.g. a parameter server's pushes and pulls): ``numel * element_size``
  to / from that one peer.

``exchange_async`` posts the same point-to-point transfers without a barrier and returns a
:class:`PendingExchange` to wait on when the rows are needed (PipeGCN's overlap): bytes are counted when
posted, the time left when waited for is ``wait``. :meth:`Communicator.fork` makes a second communicator over
a new process group of the same ranks for a thread that communicates beside the main one (a prefetcher);
its bytes are merged into this communicator's epoch statistics.

This module (with the rest of ``dgnn_lab.dist``) is the only door to ``torch.distributed``: training code
never calls it directly (a test checks), so no byte escapes the counters.

``exchange``, ``all_reduce`` and ``barrier`` are collective: every rank of the group must call them in the
same order (the halo exchange of a synchronous layer does). The group is the whole world unless
:meth:`Communicator.use_group` narrows it to the first k ranks (the workers, when the last rank is a parameter
server); ``send``/``recv`` reach any rank of the world.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.distributed as dist

PHASES = ("compute", "comm", "wait")
_REDUCE_OPS = ("sum", "mean", "max", "min", "product")


class CommunicationError(RuntimeError):
    """A collective or point-to-point operation failed or timed out (a peer died, hung, or never joined)."""


def ring_allreduce_bytes(numel: int, element_size: int, world_size: int, rank: int) -> int:
    """Bytes rank ``rank`` sends to its ring successor (and receives from its predecessor) in a ring
    all-reduce of ``numel`` elements; see the module docstring."""
    p = world_size
    if p <= 1 or numel == 0:
        return 0
    base, extra = divmod(numel, p)

    def chunk(i: int) -> int:
        return base + (1 if i < extra else 0)

    return (2 * numel - chunk((rank + 1) % p) - chunk((rank + 2) % p)) * element_size


class PendingExchange:
    """An :meth:`Communicator.exchange_async` in flight: :meth:`wait` blocks until it is done (time charged to
    ``wait``: the transfer itself ran behind whatever the worker did meanwhile) and returns the blocks."""

    def __init__(self, comm: Communicator, works: list, recv: list[torch.Tensor], keep: list[torch.Tensor],
                 purpose: str) -> None:
        self._comm, self._works, self._recv, self._keep, self.purpose = comm, works, recv, keep, purpose

    @property
    def done(self) -> bool:
        return self._works is None

    def wait(self) -> list[torch.Tensor]:
        if self._works is not None:
            comm, t0 = self._comm, time.perf_counter()
            with comm.phase("wait"):
                try:
                    for w in self._works:
                        w.wait()
                except RuntimeError as e:
                    raise comm._fail("exchange_async", self.purpose, t0, e) from e
            self._works, self._keep = None, []
        return self._recv


class Communicator:
    """Counts bytes per (peer, purpose) and times compute / comm / wait for one worker of a process group.

    Created by the runtime after ``torch.distributed.init_process_group``; also usable with
    ``world_size == 1`` and no process group at all (everything is then local and free).
    """

    def __init__(self, rank: int, world_size: int, device: torch.device | str, backend: str,
                 timeout_s: float | None = None, sync: bool = True) -> None:
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.device = torch.device(device)
        self.backend = backend
        self.timeout_s = timeout_s
        #: barrier before each operation so that waiting is measured apart from transfer; set False to save
        #: one barrier per operation (~0.5 ms on loopback gloo), and waiting for a late peer then counts as comm
        self.sync = sync
        #: verify with each peer that both sides agree on the rows (and width) of an exchange: "first" (the
        #: first exchange of each purpose, default), "always" (every exchange, for protocols whose row
        #: counts change) or "never"
        self.check = "first"
        self._checked: set[str] = set()
        self._cuda = self.device.type == "cuda"
        self._totals: dict[tuple[str, int, str], int] = defaultdict(int)
        self._stack: list[list] = []  # [phase, segment_start]
        #: process group of the collectives (None: the whole world); see :meth:`use_group`
        self.group = None
        #: ranks in the whole world (``world_size`` is the collectives' group size)
        self.world_ranks = self.world_size
        self._forks: list[Communicator] = []
        self._reset_epoch(time.perf_counter())

    def fork(self) -> Communicator:
        """A second communicator over a new process group spanning this one's ranks, for a thread that makes
        collective calls beside the main thread (two threads must never share a gloo group: their calls
        could be matched in different orders on different ranks). COLLECTIVE: every rank calls it, in the
        same order relative to other group creations (ranks outside a :meth:`use_group` subgroup, such as a
        parameter server, do not call it). Its bytes are merged into :meth:`take_epoch_stats`,
        which also reports its comm/wait seconds under ``forks``."""
        other = Communicator(self.rank, self.world_size, self.device, self.backend, timeout_s=self.timeout_s,
                             sync=self.sync)
        other.check = self.check
        if self.world_size > 1 and dist.is_initialized():
            import datetime

            kw = {"timeout": datetime.timedelta(seconds=self.timeout_s)} if self.timeout_s else {}
            if self.world_size < self.world_ranks:  # a subgroup (workers beside a parameter server):
                kw["use_local_synchronization"] = True  # ranks outside it need not take part
            other.group = dist.new_group(list(range(self.world_size)), **kw)
        self._forks.append(other)
        return other

    def use_group(self, size: int) -> None:
        """Run collectives (``exchange``, ``all_reduce``, ``barrier``) over ranks ``0 .. size-1`` only, e.g. the
        workers when the last rank is a parameter server; ``world_size`` becomes ``size``. Every rank of the
        world must call it (creating a process group is collective); ranks outside keep only ``send``/``recv``.
        """
        if not 1 <= size <= self.world_ranks:
            raise ValueError(f"use_group size must be in [1, {self.world_ranks}], got {size}")
        if size == self.world_ranks:
            return
        group = None
        if dist.is_initialized():
            import datetime

            kw = {"timeout": datetime.timedelta(seconds=self.timeout_s)} if self.timeout_s else {}
            group = dist.new_group(list(range(size)), **kw)
        if self.rank < size:
            self.group, self.world_size = group, size
        else:
            self.world_size = 1  # outside the group: collectives are local no-ops, point-to-point still works

    # ----------------------------------------------------------------------------------------- phases
    def _reset_epoch(self, now: float) -> None:
        self._epoch_t0 = now
        self._phase_s = dict.fromkeys(PHASES, 0.0)
        self._events: list[list] = []
        self._sent: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._recv: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._rows: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def _now(self) -> float:
        if self._cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def _close_segment(self, name: str, t0: float, t1: float) -> None:
        if t1 <= t0:
            return
        self._phase_s[name] += t1 - t0
        r0, r1 = t0 - self._epoch_t0, t1 - self._epoch_t0
        if self._events and self._events[-1][0] == name and self._events[-1][2] == r0:
            self._events[-1][2] = r1
        else:
            self._events.append([name, r0, r1])

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Charge the enclosed wall time to ``name`` (one of compute/comm/wait), pausing any outer phase."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        now = self._now()
        if self._stack:
            outer = self._stack[-1]
            self._close_segment(outer[0], outer[1], now)
        self._stack.append([name, now])
        try:
            yield
        finally:
            now = self._now()
            inner = self._stack.pop()
            self._close_segment(inner[0], inner[1], now)
            if self._stack:
                self._stack[-1][1] = now

    def take_epoch_stats(self) -> dict:
        """Return and reset this epoch's totals: ``compute_s``, ``comm_s``, ``wait_s``, ``bytes_sent`` /
        ``bytes_recv`` as ``{peer: {purpose: n}}`` (int peers; records turn them into strings), ``rows``
        ``{purpose: [rows sent, rows received]}`` of the row exchanges (the work a layer's halo is), ``events``
        ``[[phase, t0, t1], ...]`` in seconds since the previous call (or since the communicator was made),
        plus ``t0_wall``, that start as ``time.time()`` (to line up workers' timelines). A phase still open
        is split at this instant and continues into the next epoch."""
        now = self._now()
        if self._stack:
            top = self._stack[-1]
            self._close_segment(top[0], top[1], now)
            top[1] = now
        stats = {
            # wall-clock start of this epoch, to line up different workers' event timelines
            "t0_wall": time.time() - (time.perf_counter() - self._epoch_t0),
            "compute_s": self._phase_s["compute"],
            "comm_s": self._phase_s["comm"],
            "wait_s": self._phase_s["wait"],
            "bytes_sent": {q: dict(v) for q, v in sorted(self._sent.items())},
            "bytes_recv": {q: dict(v) for q, v in sorted(self._recv.items())},
            "events": self._events,
            "rows": {purpose: list(sr) for purpose, sr in sorted(self._rows.items())},
        }
        self._reset_epoch(now)
        if self._forks:
            stats["forks"] = []
            for f in self._forks:
                fs = f.take_epoch_stats()
                for purpose, (n_sent, n_recv) in fs["rows"].items():
                    mine = stats["rows"].setdefault(purpose, [0, 0])
                    mine[0], mine[1] = mine[0] + n_sent, mine[1] + n_recv
                for key in ("bytes_sent", "bytes_recv"):
                    for q, per in fs[key].items():
                        d = stats[key].setdefault(q, {})
                        for purpose, n in per.items():
                            d[purpose] = d.get(purpose, 0) + n
                stats["forks"].append({"comm_s": fs["comm_s"], "wait_s": fs["wait_s"]})
        return stats

    def elapsed(self, name: str) -> float:
        """Seconds charged to phase ``name`` so far this epoch, including a segment still open (e.g. the
        compute time of the current step, without its waits and transfers)."""
        if name not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        s = self._phase_s[name]
        if self._stack and self._stack[-1][0] == name:
            s += time.perf_counter() - self._stack[-1][1]
        return s

    @property
    def totals(self) -> dict[tuple[str, int, str], int]:
        """Cumulative bytes over the whole run, keyed ``(direction, peer, purpose)``; direction is
        ``"sent"`` or ``"recv"``."""
        return dict(self._totals)

    def _count(self, direction: str, peer: int, purpose: str, nbytes: int) -> None:
        if nbytes <= 0:
            return
        (self._sent if direction == "sent" else self._recv)[peer][purpose] += nbytes
        self._totals[(direction, peer, purpose)] += nbytes

    def _count_rows(self, purpose: str, sent: int, recv: int) -> None:
        if sent or recv:
            per = self._rows[purpose]
            per[0] += int(sent)
            per[1] += int(recv)

    # ------------------------------------------------------------------------------------ operations
    def _fail(self, op: str, purpose: str, t0: float, err: BaseException) -> CommunicationError:
        timeout = f"{self.timeout_s:g} s" if self.timeout_s is not None else "default"
        return CommunicationError(
            f"{op} (purpose {purpose!r}) failed on rank {self.rank} of {self.world_size} after "
            f"{time.perf_counter() - t0:.1f} s (process-group timeout {timeout}); a peer may have died, hung "
            f"or never joined. Backend error: {err}")

    def _sync(self, op: str, purpose: str) -> None:
        """The sync point before a transfer: a barrier over all ranks, charged to ``wait``."""
        if self.world_size == 1 or (not self.sync and op != "barrier"):
            return
        t0 = time.perf_counter()
        with self.phase("wait"):
            try:
                if self._cuda:
                    # a tiny all-reduce on the device is NCCL's barrier; dist.barrier would guess a device
                    dist.all_reduce(torch.zeros(1, device=self.device), group=self.group)
                else:
                    dist.barrier(group=self.group)
            except RuntimeError as e:
                raise self._fail(op, purpose, t0, e) from e

    def barrier(self, purpose: str) -> None:
        """Block until every rank arrives; the time is ``wait``, no bytes are recorded."""
        self._sync("barrier", purpose)

    def _check_device(self, t: torch.Tensor, what: str) -> None:
        same = t.device.type == self.device.type and (
            not self._cuda or t.device.index in (None, self.device.index))
        if not same:
            raise ValueError(f"{what} is on {t.device}, but this worker communicates on {self.device} "
                             f"(backend {self.backend}); move it to ctx.device first")

    def exchange(self, send: Sequence[torch.Tensor], recv_rows: Sequence[int], purpose: str) -> list[torch.Tensor]:
        """All-to-all of 2-D row blocks: ``send[q]`` goes to rank q; returns ``recv`` with ``recv[q]`` of
        ``recv_rows[q]`` rows from rank q (``recv[self.rank]`` is empty; ``send[self.rank]`` is ignored).

        All blocks share one row width D and dtype. Collective: every rank calls it, with ``recv_rows[q]``
        on this rank equal to ``send[self.rank].shape[0]`` on rank q (a mismatch is a backend error).
        Implemented as point-to-point ``isend``/``irecv`` to peers with data only: gloo's uneven
        ``all_to_all_single`` measured ~7x slower for 16 MB blocks on this machine. The first exchange of
        each purpose also checks with every peer that both sides agree on the row counts (see ``check``):
        a mismatch is a ``ValueError`` naming both ranks, not a gloo abort or silently uninitialised rows.
        """
        p, me = self.world_size, self.rank
        width, dtype, rows, recv = self._prepare_exchange(send, recv_rows)
        if p == 1:
            return recv
        self._sync("exchange", purpose)
        esize = torch.empty((), dtype=dtype).element_size()
        t0 = time.perf_counter()
        with self.phase("comm"):
            if self.check == "always" or (self.check == "first" and purpose not in self._checked):
                self._check_rows([t.shape[0] for t in send], rows, width, purpose, t0)
                self._checked.add(purpose)
            ops = []
            for q in range(p):
                if q == me:
                    continue
                if rows[q] > 0:
                    ops.append(dist.P2POp(dist.irecv, recv[q], q, self.group))
                if send[q].shape[0] > 0:
                    ops.append(dist.P2POp(dist.isend, send[q].detach().contiguous(), q, self.group))
            try:
                if ops:
                    for work in dist.batch_isend_irecv(ops):
                        work.wait()
            except RuntimeError as e:
                raise self._fail("exchange", purpose, t0, e) from e
        for q in range(p):
            if q != me:
                self._count("sent", q, purpose, send[q].shape[0] * width * esize)
                self._count("recv", q, purpose, rows[q] * width * esize)
        self._count_rows(purpose, sum(send[q].shape[0] for q in range(p) if q != me), sum(rows))
        return recv

    def _prepare_exchange(self, send: Sequence[torch.Tensor], recv_rows: Sequence[int]):
        """Check an exchange's blocks; return (width, dtype, rows to receive per rank, empty recv buffers)."""
        p, me = self.world_size, self.rank
        if len(send) != p or len(recv_rows) != p:
            raise ValueError(f"exchange needs one send block and one recv_rows entry per rank (world_size={p}); "
                             f"got {len(send)} blocks and {len(recv_rows)} recv_rows")
        dims = set()
        dtypes = set()
        for q, t in enumerate(send):
            if not isinstance(t, torch.Tensor) or t.dim() != 2:
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"exchange: send[{q}] must be a 2-D tensor (rows x D), got {shape}")
            if q != me or p == 1:
                dims.add(t.shape[1])
                dtypes.add(t.dtype)
                self._check_device(t, f"send[{q}]")
        if len(dims) > 1 or len(dtypes) > 1:
            raise ValueError(f"exchange: all send blocks must share one row width and dtype; got widths "
                             f"{sorted(dims)} and dtypes {sorted(map(str, dtypes))}")
        width, dtype = dims.pop(), dtypes.pop()
        rows = []
        for q, n in enumerate(recv_rows):
            n = int(n)
            if n < 0:
                raise ValueError(f"exchange: recv_rows[{q}] must be >= 0, got {n}")
            rows.append(0 if q == me else n)
        recv = [torch.empty((rows[q], width), dtype=dtype, device=self.device) for q in range(p)]
        return width, dtype, rows, recv

    def exchange_async(self, send: Sequence[torch.Tensor], recv_rows: Sequence[int], purpose: str,
                       tag: int = 0) -> PendingExchange:
        """:meth:`exchange` without the barrier and without waiting: posts the point-to-point transfers (with
        ``tag``, so several exchanges can be in flight) and returns a :class:`PendingExchange`. Bytes are
        counted now; no row-count check is made (the protocol must agree by construction). Every rank must
        post matching exchanges with the same tag."""
        p, me = self.world_size, self.rank
        width, dtype, rows, recv = self._prepare_exchange(send, recv_rows)
        keep = [t.detach().contiguous() for t in send]
        works: list = []
        if p > 1:
            ops = []
            for q in range(p):
                if q == me:
                    continue
                if rows[q] > 0:
                    ops.append(dist.P2POp(dist.irecv, recv[q], q, self.group, tag=tag))
                if keep[q].shape[0] > 0:
                    ops.append(dist.P2POp(dist.isend, keep[q], q, self.group, tag=tag))
            t0 = time.perf_counter()
            with self.phase("comm"):
                try:
                    works = dist.batch_isend_irecv(ops) if ops else []
                except RuntimeError as e:
                    raise self._fail("exchange_async", purpose, t0, e) from e
            esize = torch.empty((), dtype=dtype).element_size()
            for q in range(p):
                if q != me:
                    self._count("sent", q, purpose, keep[q].shape[0] * width * esize)
                    self._count("recv", q, purpose, rows[q] * width * esize)
            self._count_rows(purpose, sum(keep[q].shape[0] for q in range(p) if q != me), sum(rows))
        return PendingExchange(self, works, recv, keep, purpose)

    def _check_rows(self, send_rows: list[int], rows: list[int], width: int, purpose: str, t0: float) -> None:
        """Tell every peer how many rows (and the width) this rank sends it and expects from it, and compare.
        A mismatch would otherwise abort the process inside gloo (too many rows) or silently leave garbage
        rows (too few). Control messages: timed as comm, not counted as bytes."""
        me, p = self.rank, self.world_size
        mine = torch.tensor([[send_rows[q], rows[q], width] for q in range(p)], dtype=torch.int64,
                            device=self.device)
        theirs = torch.zeros((p, 3), dtype=torch.int64, device=self.device)
        ops = [dist.P2POp(op, t, q, self.group) for q in range(p) if q != me
               for op, t in ((dist.irecv, theirs[q]), (dist.isend, mine[q]))]
        try:
            for work in dist.batch_isend_irecv(ops):
                work.wait()
        except RuntimeError as e:
            raise self._fail("exchange", purpose, t0, e) from e
        for q, (their_send, their_expect, their_width) in enumerate(theirs.tolist()):
            if q == me:
                continue
            if their_send != rows[q] or their_expect != send_rows[q] or (their_width != width and
                                                                          (their_send or send_rows[q])):
                raise ValueError(
                    f"exchange {purpose!r}: ranks {me} and {q} disagree on the rows between them: rank {me} "
                    f"sends {send_rows[q]} rows of width {width} and expects {rows[q]}; rank {q} sends "
                    f"{their_send} of width {their_width} and expects {their_expect}. recv_rows[q] on one rank "
                    f"must equal send[...].shape[0] on the other, with one row width.")

    def all_reduce(self, tensor: torch.Tensor, purpose: str, op: str = "sum") -> torch.Tensor:
        """Reduce ``tensor`` over all ranks in place and return it. ``op``: sum, mean, max, min, product.
        Bytes follow the ring model in the module docstring."""
        if op not in _REDUCE_OPS:
            raise ValueError(f"all_reduce op must be one of {_REDUCE_OPS}, got {op!r}")
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"all_reduce needs a tensor, got {type(tensor).__name__}")
        if op == "mean" and not (tensor.is_floating_point() or tensor.is_complex()):
            raise ValueError(f"all_reduce op 'mean' needs a floating tensor, got {tensor.dtype}")
        self._check_device(tensor, "all_reduce tensor")
        p = self.world_size
        if p == 1:
            return tensor
        self._sync("all_reduce", purpose)
        red = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX,
               "min": dist.ReduceOp.MIN, "product": dist.ReduceOp.PRODUCT}[op]
        t0 = time.perf_counter()
        with self.phase("comm"):
            buf = tensor if tensor.is_contiguous() else tensor.contiguous()
            try:
                with torch.no_grad():
                    dist.all_reduce(buf, op=red, group=self.group)
            except RuntimeError as e:
                raise self._fail("all_reduce", purpose, t0, e) from e
            with torch.no_grad():
                if buf is not tensor:
                    tensor.copy_(buf)
                if op == "mean":
                    tensor.div_(p)
        nbytes = ring_allreduce_bytes(tensor.numel(), tensor.element_size(), p, self.rank)
        self._count("sent", (self.rank + 1) % p, purpose, nbytes)
        self._count("recv", (self.rank - 1) % p, purpose,
                    ring_allreduce_bytes(tensor.numel(), tensor.element_size(), p, (self.rank - 1) % p))
        return tensor

    def send(self, tensor: torch.Tensor, dst: int, purpose: str, tag: int = 0) -> None:
        """Point-to-point: send ``tensor`` to world rank ``dst`` (blocking until the transfer is handed off).
        Not collective and no barrier: only ``dst`` takes part. Time is ``comm``; bytes are its wire size."""
        self._check_p2p(tensor, dst, "send")
        t0 = time.perf_counter()
        with self.phase("comm"):
            try:
                dist.send(tensor.detach().contiguous(), dst, tag=tag)
            except RuntimeError as e:
                raise self._fail("send", purpose, t0, e) from e
        self._count("sent", dst, purpose, tensor.numel() * tensor.element_size())

    def recv(self, tensor: torch.Tensor, src: int | None, purpose: str, tag: int = 0,
             phase: str = "comm") -> int:
        """Point-to-point: receive into ``tensor`` (contiguous, the sender's shape and dtype) from world rank
        ``src``, or from whichever rank sends first when ``src`` is None; returns the sender's rank. The
        blocking time is charged to ``phase`` (``"wait"`` when it mostly waits for the peer to get there).
        Fails with :class:`CommunicationError` after the process-group timeout or when the peer dies."""
        self._check_p2p(tensor, src, "recv")
        if not tensor.is_contiguous():
            raise ValueError("recv needs a contiguous tensor to receive into")
        t0 = time.perf_counter()
        with self.phase(phase):
            try:
                sender = dist.recv(tensor, src, tag=tag)
            except RuntimeError as e:
                raise self._fail("recv", purpose, t0, e) from e
        sender = int(sender if sender is not None and sender >= 0 else src)
        self._count("recv", sender, purpose, tensor.numel() * tensor.element_size())
        return sender

    def _check_p2p(self, tensor: torch.Tensor, peer: int | None, op: str) -> None:
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{op} needs a tensor, got {type(tensor).__name__}")
        if peer is not None and not (0 <= int(peer) < self.world_ranks and int(peer) != self.rank):
            raise ValueError(f"{op}: peer must be another rank in [0, {self.world_ranks - 1}], got {peer}")
        if self.world_ranks == 1:
            raise ValueError(f"{op}: a world of one rank has no peer")
        self._check_device(tensor, f"{op} tensor")
