"""Halo-exchange protocols: what each full-graph layer receives from its peers, and how old it is.

The full-graph loop (:mod:`dgnn_lab.execution.full_graph`) calls one *strategy* object for every halo exchange of a
training forward pass; the strategy decides what crosses the wire and what the layer aggregates. Evaluation
always uses the exact synchronous exchange, so an accuracy measures the trained weights, not a protocol's
inference error. Built in (``get_strategy(name)``; ``cfg.mode`` picks one unless ``cfg.halo`` names one):

=========  ====================  ==========================================================================
name       mode                  what layer ``l`` at epoch ``t`` aggregates
=========  ====================  ==========================================================================
sync       full-sync             every boundary row, fresh (exact; the reference)
pipegcn    full-stale            rows (and returned gradients) of epoch ``max(0, t - S)`` (PipeGCN; S =
                                 ``staleness``), optionally smoothed: ``m <- g m + (1 - g) new``
                                 (``smoothing`` = g); epoch 0 is synchronous
sancus     full-stale with       the latest copy of each (layer, peer) block: a sender skips a block while
           skip_threshold > 0    its relative change since the last send is below ``skip_threshold`` and
                                 the receiver's copy would be at most S epochs old (Sancus-like); gradients
                                 return fresh every epoch
bns        full-bns              a random fraction p (``bns_p``) of each boundary block, the rest dropped,
                                 arrived rows scaled by ``n/k`` (= 1/p up to rounding) (BNS-GCN)
=========  ====================  ==========================================================================

``quantize`` (fp16 / int8) applies to every strategy's forward rows and returned gradients (see
:mod:`dgnn_lab.protocols.codecs`); staleness 0 (and p = 1) is the synchronous exchange exactly.

**Overlap.** PipeGCN's transfers of epochs ``t >= 1`` are non-blocking point-to-point operations posted as
soon as rows (or gradients) are ready and waited for ``S`` epochs later, when they are used: the transfer runs
while the worker computes, and no barrier precedes it. What is left of it shows as ``wait``. Sancus and BNS use
the communicator's blocking exchange (a barrier, then the transfer): what they save is bytes and rows, and
time only insofar as the transfer was the bottleneck. On a loopback machine with few cores the transfer is
cheap and the overlap competes with computation for the same cores. ``benchmarks/bench_protocols.py`` (3
workers, shared 2-core machine, one run) measured PipeGCN at 0.88x sync's time per epoch on a 100k-node csbm
graph (100 MB of halo traffic an epoch), no change on Cora (70 KB an epoch), and, with one worker slowed 2x,
1.09x against sync's 1.41x: the halo exchanges stop waiting for the straggler, though the gradient all-reduce
still synchronises every epoch.

**BNS sampling** is a shared seed per ``(seed, epoch, sender, receiver)`` (:func:`bns_positions`): both sides
derive the same positions, so no indices cross the wire. One sample per epoch serves every layer (boundary
*nodes* are sampled, as in BNS-GCN).

**Staleness statistics.** :meth:`HaloStrategy.end_epoch` returns the fields the epoch record carries:
``fwd_rows`` (halo rows received per forward layer), ``staleness_hist`` (``{age in epochs: halo rows}`` over the
rows the layers aggregated this epoch) and ``staleness`` (their mean age).

**Writing your own.** A staleness rule is one method. Subclass :class:`BoundedStaleHalo` and override
:meth:`~BoundedStaleHalo.should_send`; register it and train with it. A class from a notebook cell reaches
the spawned workers by value over the launch channel (never through a file), so a cell is enough; keyword
options of the spec become attributes, so a rule can have parameters of its own::

    from dgnn_lab.train import train
    from dgnn_lab.protocols.halo import BoundedStaleHalo, register_strategy

    class EveryK(BoundedStaleHalo):
        k = 3
        def should_send(self, layer, peer, age, change):
            return age >= self.k     # refresh each block every k-th epoch, whatever it did

    register_strategy("every-k", EveryK)
    result = train(dataset="cora", workers=2, staleness=3, halo={"name": "every-k", "k": 2})

A different protocol altogether overrides :meth:`HaloStrategy.exchange` (see :class:`SampledHalo`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch
from torch import Tensor

from dgnn_lab.partition.local_graph import LocalGraph
from dgnn_lab.protocols.codecs import get_codec
from dgnn_lab.protocols.exchange import HaloSample, halo_exchange
from dgnn_lab.registry import Registry

FULL_GRAPH_MODES = ("full-sync", "full-stale", "full-bns")


# -------------------------------------------------------------------------------------------- base

class HaloStrategy:
    """The synchronous exact exchange, and the hooks every protocol has.

    The loop calls :meth:`setup` once, :meth:`begin_epoch` before each training forward, the object itself as
    ``exchange(owned, graph, comm, layer)`` inside every layer (``layer=None``: evaluation, always exact),
    :meth:`end_epoch` for the record and :meth:`close` after the last epoch. Subclasses override
    :meth:`exchange` and call :meth:`record` to say how many rows arrived and how old the aggregated rows are.
    """

    name = "sync"

    def __init__(self, cfg: Any = None, **options: Any) -> None:
        get = (lambda k, d: getattr(cfg, k, d)) if cfg is not None else (lambda k, d: d)
        self.cfg = cfg
        #: the wire format of rows and returned gradients (the worker loop sets the run's codec)
        self.codec = get_codec(get("quantize", "none"))
        self.staleness = int(get("staleness", 0))
        self.skip_threshold = float(get("skip_threshold", 0.0))
        self.smoothing = float(get("smoothing", 0.0))
        self.bns_p = float(get("bns_p", 1.0))
        self.seed = int(get("seed", 0))
        self.options = dict(options)  # a strategy's own parameters (a user's rule may have some)
        for key, value in options.items():
            setattr(self, key, value)
        self.epoch = 0
        self.graph: LocalGraph | None = None
        self.comm = None
        self.num_layers = 0
        self._rows: dict[int, int] = {}
        self._ages: Counter = Counter()

    def setup(self, graph: LocalGraph, comm, num_layers: int) -> None:
        """Bind to this worker's graph and communicator (once, before the first epoch)."""
        self.graph, self.comm, self.num_layers = graph, comm, int(num_layers)

    def begin_epoch(self, epoch: int) -> None:
        """Start training epoch ``epoch`` (resets this epoch's statistics)."""
        self.epoch = int(epoch)
        self._rows, self._ages = {}, Counter()

    def __call__(self, owned: Tensor, graph: LocalGraph, comm, layer: int | None) -> Tensor:
        if layer is None:  # evaluation: exact, uncompressed, outside the protocol's statistics
            return halo_exchange(owned, graph, comm, None)
        return self.exchange(owned, layer)

    def exchange(self, owned: Tensor, layer: int) -> Tensor:
        """``[owned ; halo]`` for training layer ``layer``: here every boundary row, fresh."""
        out = halo_exchange(owned, self.graph, self.comm, layer, codec=self.codec)
        self.record(layer, sum(self.graph.recv_counts), {0: self.graph.num_halo})
        return out

    def record(self, layer: int, rows_received: int, ages: dict[int, int]) -> None:
        """Note that ``layer`` received ``rows_received`` rows and aggregated halo rows of the given ages
        (``{age in epochs: rows}``)."""
        self._rows[layer] = self._rows.get(layer, 0) + int(rows_received)
        for age, n in ages.items():
            if n:
                self._ages[int(age)] += int(n)

    def end_epoch(self) -> dict:
        """Fields for this epoch's record: ``fwd_rows``, ``staleness_hist``, ``staleness`` (mean age)."""
        total = sum(self._ages.values())
        mean = sum(a * n for a, n in self._ages.items()) / total if total else None
        return {"fwd_rows": {str(l): n for l, n in sorted(self._rows.items())},
                "staleness_hist": {str(a): n for a, n in sorted(self._ages.items())},
                "staleness": mean}

    def close(self) -> None:
        """After the last epoch: finish anything still in flight (the loop calls it once)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(codec={self.codec.name}, staleness={self.staleness})"


class CachedHalo(torch.autograd.Function):
    """``cat(owned, halo)`` where ``halo`` is a stored (stale) copy: no gradient flows to the copy's values;
    the backward hands the halo gradient to ``strategy.backward_halo(layer, grad)`` and adds the owned-row
    gradient it returns (the boundary gradients the protocol decided to apply)."""

    @staticmethod
    def forward(ctx, owned: Tensor, halo: Tensor, strategy: Any, layer: int) -> Tensor:  # noqa: D102
        ctx.strategy, ctx.layer, ctx.n = strategy, layer, owned.shape[0]
        return torch.cat([owned, halo])

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        grad = grad.contiguous()
        extra = ctx.strategy.backward_halo(ctx.layer, grad[ctx.n:])
        g = grad[:ctx.n] if extra is None else grad[:ctx.n] + extra
        return g, None, None, None


def _exchange_blocks(strategy: HaloStrategy, blocks: list[Tensor], recv_rows: list[int], purpose: str) -> list[Tensor]:
    """Encode, exchange and decode row blocks with the strategy's codec (float32 in, float32 out)."""
    width = next((b.shape[1] for b in blocks), 0)
    codec = strategy.codec
    recv = strategy.comm.exchange([codec.encode(b) for b in blocks], recv_rows, purpose)
    return [codec.decode(r, width) for r in recv]


def _returned_gradient(strategy: HaloStrategy, layer: int, grad_halo: Tensor) -> Tensor:
    """Send each halo block's gradient to its owner and sum what comes back into owned rows (fresh)."""
    g = strategy.graph
    blocks = list(torch.split(grad_halo, g.recv_counts))
    back = _exchange_blocks(strategy, blocks, g.send_counts, f"halo_bwd/L{layer}")
    out = grad_halo.new_zeros((g.num_owned, grad_halo.shape[1]))
    for q, idx in enumerate(g.send_index):
        if q != g.part and idx.numel():
            out.index_add_(0, idx, back[q])
    return out


# --------------------------------------------------------------------------------------- PipeGCN

class _InFlight:
    """Rows posted with :meth:`~dgnn_lab.dist.Communicator.exchange_async` (PipeGCN's overlap): ``result()``
    waits for them (time charged to ``wait``: the transfer itself ran behind the computation) and decodes
    them once."""

    def __init__(self, pending: Any, finish) -> None:
        self.pending, self.finish, self.value = pending, finish, None

    def result(self, comm) -> Tensor:
        if self.value is None:
            self.value = self.finish(self.pending.wait())
            self.pending = None
        return self.value


class PipelinedHalo(HaloStrategy):
    """PipeGCN: layer ``l`` at epoch ``t`` aggregates the boundary rows of epoch ``max(0, t - S)`` and applies
    the boundary gradients returned in epoch ``max(0, t - S)``; fresh rows and gradients still travel every
    epoch (for use ``S`` epochs later). ``smoothing`` ``g > 0`` replaces each by a moving average
    ``m <- g m + (1 - g) x`` (PipeGCN-GF). ``S = 0`` is the synchronous exchange; epoch 0 is synchronous.

    With ``overlap`` (default) the transfers of epochs ``t >= 1`` are non-blocking point-to-point operations
    (``isend``/``irecv`` with a tag per layer, direction and epoch slot) posted when the rows or gradients are
    ready and waited for only when they are used, ``S`` epochs later: the transfer runs while the worker
    computes. The bytes are counted when posted (purposes ``halo_fwd/L{l}``, ``halo_bwd/L{l}`` as usual) and
    the remaining wait is charged to ``wait``. ``overlap = False`` uses the blocking exchange instead (same
    numbers, no overlap): a reference for tests and for measuring what the overlap buys."""

    name = "pipegcn"
    overlap = True

    def setup(self, graph: LocalGraph, comm, num_layers: int) -> None:
        super().setup(graph, comm, num_layers)
        self._rows_by_epoch: list[dict[int, Any]] = [dict() for _ in range(num_layers)]
        self._grads_by_epoch: list[dict[int, Any]] = [dict() for _ in range(num_layers)]
        self._smooth_rows: list[Tensor | None] = [None] * num_layers
        self._smooth_grads: list[Tensor | None] = [None] * num_layers

    def _resolve(self, x: Any) -> Tensor:
        return x.result(self.comm) if isinstance(x, _InFlight) else x

    def _pick(self, store: dict[int, Any], fresh: Any, smooth: list, layer: int) -> Tensor:
        t = self.epoch
        store[t] = fresh
        used_epoch = max(0, t - self.staleness)
        for e in [e for e in store if e < used_epoch]:
            self._resolve(store.pop(e))  # nothing stays in flight unwaited
        used = self._resolve(store[used_epoch])
        store[used_epoch] = used
        if self.smoothing > 0:
            prev = smooth[layer]
            used = used if prev is None else self.smoothing * prev + (1.0 - self.smoothing) * used
            smooth[layer] = used
        return used

    def _post(self, blocks: list[Tensor], recv_rows: list[int], purpose: str, slot: int, finish) -> _InFlight:
        """Start the non-blocking exchange of ``blocks`` (one per peer) and return the handle."""
        codec = self.codec
        width = blocks[0].shape[1]
        wire = [codec.encode(b).contiguous() for b in blocks]
        pending = self.comm.exchange_async(wire, recv_rows, purpose, tag=1000 + slot)
        return _InFlight(pending, lambda bs: finish([codec.decode(b, width) for b in bs]))

    def _slot(self, layer: int, direction: int) -> int:
        return (layer * 2 + direction) * (self.staleness + 1) + self.epoch % (self.staleness + 1)

    def exchange(self, owned: Tensor, layer: int) -> Tensor:
        if self.staleness == 0:
            return super().exchange(owned, layer)
        g = self.graph
        blocks = [owned.detach().index_select(0, idx) for idx in g.send_index]
        purpose = f"halo_fwd/L{layer}"
        if self.overlap and self.epoch > 0:
            fresh: Any = self._post(blocks, g.recv_counts, purpose, self._slot(layer, 0), torch.cat)
        else:
            fresh = torch.cat(_exchange_blocks(self, blocks, g.recv_counts, purpose))
        used = self._pick(self._rows_by_epoch[layer], fresh, self._smooth_rows, layer)
        self.record(layer, sum(g.recv_counts), {min(self.epoch, self.staleness): g.num_halo})
        return CachedHalo.apply(owned, used, self, layer)

    def backward_halo(self, layer: int, grad_halo: Tensor) -> Tensor:
        """Return this epoch's halo gradients to their owners; apply those of epoch ``max(0, t - S)``."""
        g = self.graph
        if self.overlap and self.epoch > 0:
            blocks = list(torch.split(grad_halo, g.recv_counts))
            shape = (g.num_owned, grad_halo.shape[1])

            def gather(back: list[Tensor]) -> Tensor:
                out = grad_halo.new_zeros(shape)
                for q, idx in enumerate(g.send_index):
                    if q != g.part and idx.numel():
                        out.index_add_(0, idx, back[q])
                return out

            fresh: Any = self._post(blocks, g.send_counts, f"halo_bwd/L{layer}", self._slot(layer, 1), gather)
        else:
            fresh = _returned_gradient(self, layer, grad_halo)
        return self._pick(self._grads_by_epoch[layer], fresh, self._smooth_grads, layer)

    def close(self) -> None:
        for store in (*self._rows_by_epoch, *self._grads_by_epoch):
            for e in list(store):
                store[e] = self._resolve(store[e])


# ---------------------------------------------------------------------------------------- Sancus

class BoundedStaleHalo(HaloStrategy):
    """Bounded staleness with skipped exchanges (Sancus-like). Each epoch and layer, the sender of every
    (layer, peer) boundary block decides whether to re-send it: a one-byte flag per block tells the receiver
    (purpose ``halo_flag/L{l}``), and the receiver keeps using its last copy of a skipped block. The copy's
    age never exceeds ``staleness`` (S): a block whose copy would be older is always sent. Gradients of the
    aggregated rows return to their owners every epoch (fresh, like the synchronous backward).

    **The extension point is** :meth:`should_send`; ``S = 0`` is the synchronous exchange.
    """

    name = "sancus"

    def setup(self, graph: LocalGraph, comm, num_layers: int) -> None:
        super().setup(graph, comm, num_layers)
        p = graph.num_parts
        self._last_sent: list[list[Tensor | None]] = [[None] * p for _ in range(num_layers)]
        self._sent_epoch: list[list[int | None]] = [[None] * p for _ in range(num_layers)]
        self._copy: list[list[Tensor | None]] = [[None] * p for _ in range(num_layers)]
        self._copy_epoch: list[list[int]] = [[0] * p for _ in range(num_layers)]
        self.skipped = 0

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        self.skipped = 0

    def should_send(self, layer: int, peer: int, age: int, change: float) -> bool:
        """Whether to re-send the block for ``peer`` at ``layer`` this epoch. ``age``: epochs since it was
        last sent (the receiver's copy would be that old if skipped, >= 1); ``change``: ``||new - sent||_F /
        ||sent||_F`` since then. Called only while skipping is allowed (a block never sent, or whose copy would
        exceed ``staleness``, is sent regardless). Default: Sancus's rule, send once it changed by at least
        ``skip_threshold``."""
        return change >= self.skip_threshold

    def exchange(self, owned: Tensor, layer: int) -> Tensor:
        if self.staleness == 0:
            return super().exchange(owned, layer)
        g, me, t = self.graph, self.graph.part, self.epoch
        fresh = [owned.detach().index_select(0, idx) for idx in g.send_index]
        send = []
        for q in range(g.num_parts):
            if q == me or not g.send_counts[q]:
                send.append(False)
                continue
            last, when = self._last_sent[layer][q], self._sent_epoch[layer][q]
            if last is None or t - when > self.staleness:
                send.append(True)
                continue
            change = float((fresh[q] - last).norm() / last.norm().clamp_min(1e-12))
            send.append(bool(self.should_send(layer, q, t - when, change)))
        flags_out = [torch.tensor([[1 if s else 0]], dtype=torch.uint8, device=owned.device)
                     if (q != me and g.send_counts[q]) else torch.zeros((0, 1), dtype=torch.uint8, device=owned.device)
                     for q, s in enumerate(send)]
        flag_rows = [1 if (q != me and g.recv_counts[q]) else 0 for q in range(g.num_parts)]
        flags = self.comm.exchange(flags_out, flag_rows, f"halo_flag/L{layer}")
        coming = [bool(f.numel()) and bool(f[0, 0]) for f in flags]
        blocks = [fresh[q] if send[q] else fresh[q][:0] for q in range(g.num_parts)]
        recv = _exchange_blocks(self, blocks, [g.recv_counts[q] if coming[q] else 0 for q in range(g.num_parts)],
                                f"halo_fwd/L{layer}")
        for q in range(g.num_parts):
            if send[q]:
                self._last_sent[layer][q], self._sent_epoch[layer][q] = fresh[q], t
            elif q != me and g.send_counts[q]:
                self.skipped += 1
            if coming[q]:
                self._copy[layer][q], self._copy_epoch[layer][q] = recv[q], t
        ages: Counter = Counter()
        parts = []
        for q in range(g.num_parts):
            if q == me or not g.recv_counts[q]:
                continue
            parts.append(self._copy[layer][q])
            ages[t - self._copy_epoch[layer][q]] += g.recv_counts[q]
        halo = torch.cat(parts) if parts else owned.new_zeros((0, owned.shape[1]))
        self.record(layer, sum(g.recv_counts[q] for q in range(g.num_parts) if coming[q]), ages)
        return CachedHalo.apply(owned, halo, self, layer)

    def backward_halo(self, layer: int, grad_halo: Tensor) -> Tensor:
        """Every halo block's gradient returns to its owner, fresh."""
        return _returned_gradient(self, layer, grad_halo)

    def end_epoch(self) -> dict:
        return {**super().end_epoch(), "skipped_blocks": self.skipped}


# ------------------------------------------------------------------------------------------- BNS

def bns_count(n: int, p: float) -> int:
    """Rows of an ``n``-row boundary block that travel at sampling rate ``p``: ``round(p n)``, at least 1
    (a nonempty block always sends something), ``n`` when ``p == 1``."""
    if n <= 0:
        return 0
    return n if p >= 1.0 else min(n, max(1, int(round(p * n))))


def bns_positions(n: int, p: float, seed: int, epoch: int, sender: int, receiver: int) -> Tensor:
    """Sorted positions (into the ``n``-row block ``sender -> receiver``) sampled in ``epoch``: the same on
    both sides, from a generator seeded by ``(seed, epoch, sender, receiver)``; ``arange(n)`` when ``p == 1``."""
    k = bns_count(n, p)
    if k == n:
        return torch.arange(n)
    key = ((((int(seed) * 1_000_003 + int(epoch)) * 1009 + int(sender)) * 1009 + int(receiver)) % (2**62)) + 1
    gen = torch.Generator().manual_seed(key)
    return torch.randperm(n, generator=gen)[:k].sort().values


class SampledHalo(HaloStrategy):
    """BNS-GCN: each epoch every worker sends each peer a random fraction ``p`` of their boundary block
    (positions from :func:`bns_positions`, one sample per epoch for all layers); missing halo rows are dropped
    from the aggregation, arrived ones scaled by ``n / k``. ``p = 1`` is the synchronous exchange exactly."""

    name = "bns"

    def begin_epoch(self, epoch: int) -> None:
        super().begin_epoch(epoch)
        g, p = self.graph, self.bns_p
        send = [bns_positions(n, p, self.seed, epoch, g.part, q) if q != g.part else torch.arange(0)
                for q, n in enumerate(g.send_counts)]
        recv = [bns_positions(n, p, self.seed, epoch, q, g.part) if q != g.part else torch.arange(0)
                for q, n in enumerate(g.recv_counts)]
        scale = [n / r.numel() if r.numel() else 1.0 for n, r in zip(g.recv_counts, recv, strict=True)]
        dev = g.send_index[0].device if g.send_index else torch.device("cpu")
        self.sample = HaloSample([s.to(dev) for s in send], [r.to(dev) for r in recv], scale)

    def exchange(self, owned: Tensor, layer: int) -> Tensor:
        out = halo_exchange(owned, self.graph, self.comm, layer, codec=self.codec, sample=self.sample)
        rows = sum(int(r.numel()) for r in self.sample.recv_pos)
        self.record(layer, rows, {0: rows})
        return out


# -------------------------------------------------------------------------------------- registry

#: The halo-protocol axis: ``register_strategy("mine", MyRule)`` makes
#: ``halo="mine"`` (or the old ``strategy="mine"``) train with it.
HALO_REGISTRY = Registry("halo protocol", what="halo protocol", base=HaloStrategy,
                         builtins=(HaloStrategy, PipelinedHalo, BoundedStaleHalo, SampledHalo))


def register_strategy(name: str, cls: type[HaloStrategy]) -> type[HaloStrategy]:
    """Make ``cls`` (a :class:`HaloStrategy` subclass) available as ``halo=name`` (re-registering a name
    replaces it, so a notebook cell can be re-run). Returns ``cls``."""
    return HALO_REGISTRY.register(name, cls)


def get_strategy(name: str) -> type[HaloStrategy]:
    """The strategy class registered as ``name``."""
    return HALO_REGISTRY.get(name)


def list_strategies() -> list[str]:
    """Registered strategy names (built-ins first, then your own, in registration order)."""
    return HALO_REGISTRY.names()


def default_strategy_name(mode: str, skip_threshold: float = 0.0) -> str:
    """The built-in strategy a full-graph ``mode`` runs when no ``halo`` is named."""
    if mode == "full-sync":
        return "sync"
    if mode == "full-stale":
        return "sancus" if skip_threshold > 0 else "pipegcn"
    if mode == "full-bns":
        return "bns"
    raise ValueError(f"mode {mode!r} has no halo strategy; allowed: {', '.join(FULL_GRAPH_MODES)}")


def build_strategy(spec: Any, cfg: Any = None) -> HaloStrategy:
    """The strategy object for ``spec`` (a name, ``module:attribute``, ``{"name", **options}``, a class or an
    instance); a class is constructed with the config's shorthand fields and the spec's options."""
    return HALO_REGISTRY.build(spec, cfg)


def strategy_for(cfg: Any) -> HaloStrategy:
    """The strategy object a worker runs for ``cfg`` (its ``halo`` axis)."""
    return build_strategy(cfg.halo, cfg)
