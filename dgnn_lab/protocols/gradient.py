"""Gradient synchronisation: how the workers combine what each one learned (the survey's sync / async axis).

One object per run, called by the execution model after every backward pass (:meth:`GradientSync.step`) and
at the end of every epoch (:meth:`GradientSync.end_epoch`):

=============  ========  ==========================================================================
name           kind      what happens
=============  ========  ==========================================================================
allreduce      gradients  the gradients are summed by a ring all-reduce (``grad_allreduce``) and every
                         worker takes the same Adam step: P workers train one model
ps             gradients  a parameter server (one extra process) with stale-synchronous bounded staleness:
                         :meth:`ParameterServer.required_version` is the staleness rule (SSP by default)
averaging      weights    local steps, and every ``period`` epochs the weights are averaged
                         (``model_avg``; with a codec the averaged weights travel encoded)
=============  ========  ==========================================================================

A *gradients* sync fits execution models that take synchronous steps together (full-graph, mini-batch); a
*weights* sync fits models whose workers train independently between averagings (local SGD).

Writing your own is one method: subclass :class:`ParameterServer` and override ``required_version`` (which
weights a worker may compute its next step on), or :class:`GradientSync` and override ``step``. Register it
with :func:`register_grad_sync` or pass the class (or an instance) as ``grad_sync=``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn.utils import parameters_to_vector

from dgnn_lab.protocols.codecs import Codec, get_codec
from dgnn_lab.registry import Registry, Strategy

__all__ = ["GRAD_SYNC_REGISTRY", "GradientSync", "ModelAveraging", "ParameterServer", "flat_grads",
           "load_flat", "register_grad_sync", "set_grads"]


def flat_grads(params: list[Tensor]) -> Tensor:
    """Every parameter's gradient (zeros where there is none) as one flat vector."""
    return parameters_to_vector([p.grad if p.grad is not None else torch.zeros_like(p) for p in params])


def flat_params(params: list[Tensor]) -> Tensor:
    """Every parameter's values (detached) as one flat vector."""
    return parameters_to_vector([p.detach() for p in params])


def set_grads(params: list[Tensor], flat: Tensor) -> None:
    """Point each parameter's ``.grad`` at its slice of ``flat`` (the inverse of :func:`flat_grads`)."""
    for p, g in zip(params, torch.split(flat, [p.numel() for p in params]), strict=True):
        p.grad = g.view_as(p)


@torch.no_grad()
def load_flat(params: list[Tensor], flat: Tensor) -> None:
    """Copy a flat weight vector into the parameters."""
    torch.nn.utils.vector_to_parameters(flat.to(params[0].dtype), params)


class GradientSync(Strategy):
    """The gradient all-reduce, and the hooks every synchronisation has.

    The execution model calls :meth:`bind` once, :meth:`step` after each backward pass (the parameters'
    ``.grad`` hold this worker's gradient) and :meth:`end_epoch` after each epoch. ``step`` updates the
    weights and returns record fields; with ``count`` (a mini-batch's seed count, gradients of the loss *sum*)
    it divides by the global count and returns the global ``loss_sum`` and ``count`` when it knows them.
    """

    name = "allreduce"
    #: "gradients" (every step) or "weights" (periodic): which execution models it fits
    kind = "gradients"
    #: processes beyond the workers (a parameter server needs one)
    extra_ranks = 0

    def bind(self, comm: Any, params: list[Tensor], opt: torch.optim.Optimizer | None, cfg: Any = None) -> None:
        """Attach to this worker's communicator, parameters and optimiser (once, before the first step)."""
        self.comm, self.params, self.opt = comm, params, opt
        if cfg is not None:
            self.cfg = cfg

    def is_server(self, rank: int, workers: int) -> bool:
        """Whether ``rank`` serves instead of training (a parameter server's rank)."""
        return False

    def step(self, *, count: float | None = None, loss_sum: float = 0.0, final: bool = False) -> dict:
        comm, params = self.comm, self.params
        if count is None:
            if comm.world_size > 1:
                set_grads(params, comm.all_reduce(flat_grads(params), "grad_allreduce"))
            self.opt.step()
            return {}
        extra = torch.tensor([float(loss_sum), float(count)], device=comm.device)
        flat = comm.all_reduce(torch.cat([flat_grads(params), extra]), "grad_allreduce")
        total = float(flat[-1])
        set_grads(params, flat[:-2] / max(total, 1.0))
        self.opt.step()
        return {"loss_sum": float(flat[-2]), "count": total}

    def sync_point(self, epoch: int, last: int) -> bool:
        """Whether the workers meet at the end of ``epoch`` (agree to stop, evaluate): every epoch here."""
        return True

    def end_epoch(self, epoch: int, last: int) -> dict:
        """After the epoch's steps: record fields (averaging syncs average here)."""
        return {}

    def finish(self) -> None:
        """After the last epoch."""


class ParameterServer(GradientSync):
    """Stale-synchronous parameter server (see :mod:`dgnn_lab.protocols.param_server` for the protocol).

    **The extension point is** :meth:`required_version`: after pushing the gradient of step ``clock``, the
    worker waits for weights of at least that version (rounds applied). SSP's rule allows ``staleness``
    rounds of lag; ``staleness = 0`` is the synchronous all-reduce's training.
    """

    name = "ps"
    extra_ranks = 1

    def __init__(self, cfg: Any = None, **options: Any) -> None:
        self.staleness = int(getattr(cfg, "staleness", 0)) if cfg is not None else 0
        super().__init__(cfg, **options)

    def required_version(self, clock: int) -> int:
        """The oldest weight version a worker may compute step ``clock + 1`` on, having pushed ``clock``."""
        return clock + 1 - self.staleness

    def is_server(self, rank: int, workers: int) -> bool:
        return rank == workers

    def bind(self, comm: Any, params: list[Tensor], opt: torch.optim.Optimizer | None, cfg: Any = None) -> None:
        from dgnn_lab.protocols.param_server import PSClient

        super().bind(comm, params, opt, cfg)
        self.client = PSClient(comm, self.cfg, params, rule=self)

    def step(self, *, count: float | None = None, loss_sum: float = 0.0, final: bool = False) -> dict:
        age = self.client.step(final=final, count=count)
        return {"grad_staleness": age, "grad_staleness_hist": {age: 1}, "ps_version": self.client.version}

    def finish(self) -> None:
        self.client.finish()

    def serve(self, ctx: Any) -> dict:
        """The server rank's loop."""
        from dgnn_lab.protocols.param_server import serve

        return serve(ctx, self.cfg, rule=self)


class ModelAveraging(GradientSync):
    """Local steps, weights averaged every ``period`` epochs and after the last (PSGD-PA / LLCG's averaging).

    Without a codec the average is one ring all-reduce of the flat weights (``model_avg``). With a codec each
    worker sends its encoded weights (rows of ``row_width`` values) to every peer and all average the decoded
    copies, their own included, so every worker still ends with the same weights.
    """

    name = "averaging"
    kind = "weights"
    row_width = 256

    def __init__(self, cfg: Any = None, **options: Any) -> None:
        self.period = int(getattr(cfg, "local_sgd_period", 10)) if cfg is not None else 10
        self.codec: Codec = get_codec("none")
        super().__init__(cfg, **options)

    def step(self, *, count: float | None = None, loss_sum: float = 0.0, final: bool = False) -> dict:
        self.opt.step()
        return {}

    def sync_point(self, epoch: int, last: int) -> bool:
        return (epoch + 1) % self.period == 0 or epoch == last

    def end_epoch(self, epoch: int, last: int) -> dict:
        if not self.sync_point(epoch, last):
            return {"averaged": False}
        comm, params = self.comm, self.params
        if comm.world_size > 1:
            flat = flat_params(params)
            if self.codec.name == "none":
                load_flat(params, comm.all_reduce(flat, "model_avg", op="mean"))
            else:
                load_flat(params, self._encoded_mean(flat))
        return {"averaged": True}

    def _encoded_mean(self, flat: Tensor) -> Tensor:
        comm, codec, w = self.comm, self.codec, self.row_width
        n = flat.numel()
        rows = -(-n // w)
        block = torch.zeros(rows * w, dtype=torch.float32, device=flat.device)
        block[:n] = flat
        wire = codec.encode(block.view(rows, w))
        got = comm.exchange([wire] * comm.world_size, [rows] * comm.world_size, "model_avg")
        total = codec.decode(wire, w).clone()
        for q, g in enumerate(got):
            if q != comm.rank:
                total += codec.decode(g, w)
        return (total / comm.world_size).reshape(-1)[:n]


#: The gradient-synchronisation axis: ``register_grad_sync("mine", MyRule)``.
GRAD_SYNC_REGISTRY = Registry("gradient synchronisation", what="grad_sync", base=GradientSync,
                              builtins=(GradientSync, ParameterServer, ModelAveraging))
register_grad_sync = GRAD_SYNC_REGISTRY.register


def build_grad_sync(spec: Any, cfg: Any = None) -> GradientSync:
    """The synchronisation object for ``spec`` (name, ``module:attribute``, ``{"name", **options}``, class or
    instance)."""
    return GRAD_SYNC_REGISTRY.build(spec, cfg)


def sync_class(spec: Any) -> type[GradientSync]:
    """The class behind ``spec`` (for checks in the launching process, without building it)."""
    obj, _ = GRAD_SYNC_REGISTRY.resolve(spec)
    return obj if isinstance(obj, type) else type(obj)
