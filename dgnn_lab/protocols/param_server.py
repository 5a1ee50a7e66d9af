"""Gradient synchronisation through a parameter server with bounded staleness (``sync="ps"``).

The run has ``workers + 1`` processes: ranks ``0 .. P-1`` train, rank ``P`` (the last) is the server. The
workers' collectives (halo exchange, metrics, evaluation) run in a process group of the workers only
(:meth:`~dgnn_lab.dist.Communicator.use_group`); the server talks to each worker point-to-point.

The protocol is *stale synchronous parallel* (SSP; Ho et al., "More effective distributed ML via a stale
synchronous parallel parameter server", NeurIPS 2013). Each worker has a clock ``c`` (steps it has pushed);
the server's *version* ``V`` is the number of rounds it has applied::

    worker p, step c:  compute grad g_p(c) on weights of version v
                       push (c, v, g_p(c))                      ps_push: no barrier, no wait for other workers
                       pull weights of version >= c + 1 - s     ps_pull: blocks only if the server is behind
    server:            add each push to the buffer of its round c as it arrives;
                       when round V holds all P gradients:  W <- Adam(W, sum_p g_p(V)),  V <- V + 1
                       answer every pull whose bound the new V meets, with the newest weights

A gradient of step ``c`` is always applied in round ``c``, so its staleness is exactly ``c - v`` (the rounds
applied after the weights it was computed on), and the pull rule keeps it ``<= s``. With ``s = 0`` every
step is computed on the weights of all previous rounds and each round is one Adam step on the summed
gradient: the same training as the all-reduce, up to float32 summation order (the server sums in arrival
order). With ``s >= 1`` a worker does not wait for the round it just pushed to: it computes on weights up to
``s`` rounds old, overlapping its next step with the server and the slower workers.

Adam lives on the server (one optimiser over the flat weight vector: Adam is elementwise, so this is the
same optimiser as one Adam per parameter). A round is applied only once it holds a gradient from every
worker: Adam is not linear, so applying each push as its own step would change the optimiser, and ``s = 0``
would no longer be the synchronous training. "As it arrives" here means each push is accumulated at once
and the round is stepped the moment its last push lands.

In full-graph mode the workers remain coupled by the per-layer halo exchange (a collective among them), so
they still move in lockstep and asynchrony shows as *gradient staleness* (and the overlap of a step with the
server's update), not as workers running ahead of each other; the halo rows a worker reads were computed by
its peers with their own, possibly different, weight versions.

Each worker's epoch record carries ``grad_staleness`` (the age of that step's gradient, in rounds) and
``grad_staleness_hist`` (``{age: 1}``); ``RunResult.summary()["grad_staleness"]`` sums them into the observed
distribution. (``staleness``/``staleness_hist`` are the halo protocols' ages of boundary rows: another thing.)

Bytes: ``ps_push`` (a gradient, worker -> server), ``ps_pull`` (weights, server -> worker), ``ps_control``
(40-byte headers: kind, clock, version, the version needed back, the gradient's sample count), ``setup``
(initial weights, worker 0 -> server, before epoch 0). A failed worker cannot leave the server blocked: its
receive fails when the peer's connection closes, or after the process-group timeout, and the launcher
terminates every rank on the first failure anyway.

A push's ``count`` (mini-batch: the step's seeds; the gradient is of the loss *sum*) lets the server divide
each round by the round's summed count, so a step is the mean over the union of the workers' seeds, as with
the all-reduce; full-graph and local-SGD pushes are already shares of the global mean (count -1).
"""

from __future__ import annotations

import time
from collections import defaultdict

import torch
from torch import Tensor

from dgnn_lab.protocols.gradient import flat_grads, flat_params, load_flat
from dgnn_lab.train.config import TrainConfig

PUSH, DONE = 1.0, 2.0
TAG_HEAD, TAG_PUSH, TAG_REPLY_HEAD, TAG_PULL, TAG_SETUP = 1, 2, 3, 4, 5
HEADER = 5  # [kind, clock, version, need, count] as float64; count -1: the gradient is already a mean's share


def server_rank(cfg: TrainConfig) -> int:
    """The server is the last rank: ``cfg.workers``."""
    return cfg.workers


def split_world(ctx, cfg: TrainConfig) -> bool:
    """Narrow the communicator's collectives to the workers (every rank must call this first, in the same
    order: creating the workers' process group is collective). Returns True on the server rank."""
    if ctx.world_size != cfg.workers + 1:
        raise ValueError(f"sync='ps' with {cfg.workers} workers needs world_size {cfg.workers + 1} (one server "
                         f"rank), but the run has {ctx.world_size}")
    if ctx.comm.backend == "nccl":
        raise ValueError("sync='ps' needs backend 'gloo': the server receives from whichever worker pushes "
                         "first (an any-source receive), which NCCL does not offer; pass backend='gloo'")
    ctx.comm.use_group(cfg.workers)
    return ctx.rank == server_rank(cfg)


class PSClient:
    """A worker's side: ``step(params)`` pushes this step's gradient and loads weights at most ``s`` rounds
    old; ``finish()`` tells the server this worker is done. Worker 0 sends the initial weights."""

    def __init__(self, comm, cfg: TrainConfig, params: list[Tensor], rule=None) -> None:
        self.comm, self.server, self.rule = comm, server_rank(cfg), rule
        self.params = params
        self.clock = 0  # steps pushed
        self.version = 0  # rounds applied in the weights this worker holds
        self.numel = sum(p.numel() for p in params)
        self._head = torch.zeros(HEADER, dtype=torch.float64, device=comm.device)
        self._buf = torch.empty(self.numel, dtype=torch.float32, device=comm.device)
        if comm.rank == 0:
            comm.send(torch.tensor([float(self.numel)], dtype=torch.float64, device=comm.device), self.server,
                      "setup", tag=TAG_SETUP)
            comm.send(flat_params(params).float(), self.server, "setup", tag=TAG_SETUP)

    def step(self, final: bool = False, count: float | None = None) -> int:
        """Push the gradient in ``params[*].grad`` (computed on ``self.version``), pull fresher weights into
        ``params``; returns this gradient's staleness (rounds it will be late when applied: ``clock -
        version``). ``final`` waits for every round, so the last weights are the server's final model.
        ``count``: the gradient is of a loss *sum* over that many samples (the round then divides by the sum
        of its counts); None: it is already this worker's share of the global mean."""
        comm, c = self.comm, self.clock
        staleness = c - self.version
        need = c + 1 if final else self.rule.required_version(c)
        self._head.copy_(torch.tensor([PUSH, c, self.version, need, -1.0 if count is None else float(count)],
                                      dtype=torch.float64))
        comm.send(self._head, self.server, "ps_control", tag=TAG_HEAD)
        comm.send(flat_grads(self.params).float(), self.server, "ps_push", tag=TAG_PUSH)
        self.clock += 1
        comm.recv(self._head, self.server, "ps_control", tag=TAG_REPLY_HEAD, phase="wait")
        comm.recv(self._buf, self.server, "ps_pull", tag=TAG_PULL, phase="wait")
        with comm.phase("compute"):
            load_flat(self.params, self._buf)
        self.version = int(self._head[1])
        if self.version < need:
            raise RuntimeError(f"parameter server answered version {self.version} < {need} needed (protocol bug)")
        return staleness

    def finish(self) -> None:
        """Tell the server this worker pushes no more (it exits once every worker has)."""
        self._head.copy_(torch.tensor([DONE, self.clock, self.version, 0, 0], dtype=torch.float64))
        self.comm.send(self._head, self.server, "ps_control", tag=TAG_HEAD)


def serve(ctx, cfg: TrainConfig, rule=None) -> dict:
    """The server rank's loop (see the module docstring); emits one ``epoch`` record (``role: "server"``)
    per applied round with its compute (Adam), comm and wait times, bytes, ``version`` and the
    ``server_staleness_hist`` of that round's gradients (the workers report the same ages as
    ``grad_staleness``; only theirs are summed into ``RunResult.summary()["grad_staleness"]``). Returns when
    every worker has finished."""
    comm, p, s = ctx.comm, cfg.workers, getattr(rule, "staleness", cfg.staleness)
    dev = comm.device
    t_setup = time.perf_counter()
    size = torch.zeros(1, dtype=torch.float64, device=dev)
    comm.recv(size, 0, "setup", tag=TAG_SETUP, phase="wait")
    n = int(size.item())
    w = torch.empty(n, dtype=torch.float32, device=dev)
    comm.recv(w, 0, "setup", tag=TAG_SETUP, phase="wait")
    w = torch.nn.Parameter(w)
    opt = torch.optim.Adam([w], lr=cfg.lr, weight_decay=cfg.weight_decay)
    ctx.emit({"type": "start", "role": "server", "num_params": n, "staleness_bound": s,
              "setup_s": time.perf_counter() - t_setup})
    comm.take_epoch_stats()

    head = torch.zeros(HEADER, dtype=torch.float64, device=dev)
    grad = torch.empty(n, dtype=torch.float32, device=dev)
    sums: dict[int, Tensor] = {}
    count: dict[int, int] = defaultdict(int)
    samples: dict[int, float] = defaultdict(float)  # the round's summed sample counts (-inf: mean shares)
    ages: dict[int, list[int]] = defaultdict(list)
    pending: list[tuple[int, int]] = []  # (worker, version it needs)
    version, finished, total = 0, set(), defaultdict(int)
    t_round = time.perf_counter()
    while len(finished) < p:
        src = comm.recv(head, None, "ps_control", tag=TAG_HEAD, phase="wait")
        kind, clock, wver, need = (int(x) for x in head.tolist()[:4])
        n_samples = float(head[4])
        if kind == DONE:
            finished.add(src)
            continue
        comm.recv(grad, src, "ps_push", tag=TAG_PUSH)
        if clock < version or (clock > 0 and rule is not None and wver < rule.required_version(clock - 1)):
            raise RuntimeError(f"worker {src} pushed step {clock} computed on version {wver} while the server is "
                               f"at version {version} (staleness rule {rule!r}; protocol bug)")
        applied: list[int] = []
        with comm.phase("compute"):
            if clock in sums:
                sums[clock].add_(grad)
            else:
                sums[clock] = grad.clone()
            count[clock] += 1
            samples[clock] += n_samples if n_samples >= 0 else float("-inf")
            ages[clock].append(clock - wver)
            while count.get(version, 0) == p:  # round `version` is complete: one Adam step on its sum
                n_round = samples.pop(version)
                w.grad = sums.pop(version)
                if n_round >= 0:  # gradients of loss sums: divide by the round's sample count
                    w.grad.div_(max(n_round, 1.0))
                opt.step()
                del count[version]
                applied.append(version)
                version += 1
        pending.append((src, need))
        still = []
        for q, want in pending:
            if version >= want:
                comm.send(torch.tensor([0.0, float(version), 0.0, 0.0, 0.0], dtype=torch.float64, device=dev), q,
                          "ps_control", tag=TAG_REPLY_HEAD)
                comm.send(w.detach(), q, "ps_pull", tag=TAG_PULL)
            else:
                still.append((q, want))
        pending = still
        for r in applied:
            hist: dict[int, int] = defaultdict(int)
            for a in ages.pop(r):
                hist[a] += 1
                total[a] += 1
            now = time.perf_counter()
            stats = comm.take_epoch_stats() if r == applied[-1] else None
            rec = {"type": "epoch", "epoch": r, "role": "server", "epoch_s": now - t_round, "loss": None,
                   "version": r + 1, "server_staleness_hist": dict(hist), "pending": len(pending)}
            if stats is not None:
                rec.update(compute_s=stats["compute_s"], comm_s=stats["comm_s"], wait_s=stats["wait_s"],
                           bytes_sent=stats["bytes_sent"], bytes_recv=stats["bytes_recv"], events=stats["events"])
            ctx.emit(rec)
            t_round = now
    if pending:
        raise RuntimeError(f"parameter server: workers {[q for q, _ in pending]} still wait for versions "
                           f"{[v for _, v in pending]} but every worker has finished (protocol bug)")
    return {"role": "server", "rounds": version, "staleness_total": dict(total)}
