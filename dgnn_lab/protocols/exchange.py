"""``HaloExchange``: the one place full-graph training talks to other workers inside a layer.

Forward (layer ``l``, worker ``p``, owned rows ``H_p``)::

    send   H_p[send_index[q]]           to every peer q      (the plan's boundary[p][q], purpose halo_fwd/L{l})
    recv   R_q = H_q[boundary[q][p]]    from every peer q
    return [H_p ; R_0 ; R_1 ; ...]      the n_local x D input of the local aggregation

Backward: the output is ``[H_p ; R]``, so ``dL/dH_p`` has two parts. The owned block of the incoming
gradient is this worker's own use of its rows; each halo block ``G_q = dL/dR_q`` is the gradient of *q's*
rows through *p's* edges, so it goes back to q (purpose ``halo_bwd/L{l}``), and what p receives from q is
added into the rows it sent::

    dL/dH_p = G_own  +  sum_q  scatter_add(send_index[q], G from q)

which is the chain rule for a row that several workers read. The same boundary sets travel both ways, so
forward and backward bytes of a layer are equal.

Two optional generalisations serve the communication protocols (:mod:`dgnn_lab.protocols.halo`):

* ``codec`` (:mod:`dgnn_lab.protocols.codecs`): rows and returned gradients cross the wire encoded (fp16,
  int8 + per-row scale) and are decoded on arrival; autograd treats the codec as the identity. The default
  (``None``) is the exact float32 path, unchanged.
* ``sample`` (:class:`HaloSample`): only some rows of each boundary block travel (BNS-GCN). Both sides know the
  positions (the protocol derives them from a shared seed, so no indices cross the wire); a halo row that did
  not arrive is zero (dropped from the aggregation) and one that did is multiplied by its block's ``scale``
  (``1/p``, so the aggregate stays unbiased); the backward returns the gradients of the arrived rows only,
  times the same scale.

:class:`HaloReduce` is the transpose (halo rows are partial sums returned to, and added at, their owners;
its backward is this forward): vertex-cut training's mirror -> master reduction.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dgnn_lab.partition.local_graph import LocalGraph
from dgnn_lab.protocols.codecs import Codec


@dataclass
class HaloSample:
    """Which rows of each boundary block travel this time: ``send_pos[q]`` indexes ``graph.send_index[q]``
    (rows this worker sends to q), ``recv_pos[q]`` indexes q's block of the halo (rows q sends here), and
    ``recv_scale[q]`` multiplies the arrived rows from q (1.0 leaves them untouched)."""

    send_pos: list[Tensor]
    recv_pos: list[Tensor]
    recv_scale: list[float]


_IDENTITY = Codec()


def _send_rows(rows: Tensor, idx: list[Tensor], n_recv: list[int], comm, purpose: str,
               codec: Codec) -> list[Tensor]:
    """Send ``rows[idx[q]]`` to every peer ``q``; return the ``n_recv[q]`` rows each peer sent here (decoded):
    the owners -> copies direction (:class:`HaloExchange`'s forward, :class:`HaloReduce`'s backward)."""
    width = rows.shape[1]
    send = [codec.encode(rows.index_select(0, i)) for i in idx]
    return [codec.decode(r, width) for r in comm.exchange(send, n_recv, purpose)]


def _add_returned_rows(base: Tensor, blocks: list[Tensor], idx: list[Tensor], part: int, comm, purpose: str,
                       codec: Codec) -> Tensor:
    """Send ``blocks[q]`` (rows of copies owned by peer ``q``) to ``q``; return ``base`` plus, for every peer
    ``q``, what ``q`` sent here added into rows ``idx[q]``: the copies -> owners direction
    (:class:`HaloExchange`'s backward, :class:`HaloReduce`'s forward)."""
    width = base.shape[1]
    back = comm.exchange([codec.encode(b) for b in blocks], [int(i.numel()) for i in idx], purpose)
    out = base.clone()
    for q, i in enumerate(idx):
        if q != part and i.numel():
            out.index_add_(0, i, codec.decode(back[q], width))
    return out


class HaloExchange(torch.autograd.Function):
    """``cat(owned, halo)`` with the halo fetched from its owners; gradients of halo rows return to them."""

    @staticmethod
    def forward(ctx, owned: Tensor, graph: LocalGraph, comm, purpose_fwd: str, purpose_bwd: str,  # noqa: D102
                codec: Codec | None = None, sample: HaloSample | None = None) -> Tensor:
        codec = codec or _IDENTITY
        ctx.graph, ctx.comm, ctx.purpose_bwd, ctx.codec, ctx.sample = graph, comm, purpose_bwd, codec, sample
        if graph.num_parts == 1:
            return owned.view_as(owned)
        width = owned.shape[1]
        if sample is None:
            idx, n_recv = graph.send_index, graph.recv_counts
        else:
            idx = [i[s] for i, s in zip(graph.send_index, sample.send_pos, strict=True)]
            n_recv = [int(s.numel()) for s in sample.recv_pos]
        ctx.idx = idx
        recv = _send_rows(owned, idx, n_recv, comm, purpose_fwd, codec)
        if sample is None:
            return torch.cat([owned, *recv])
        halo = owned.new_zeros((graph.num_halo, width))
        for q, slots in enumerate(graph.recv_slots):
            if recv[q].shape[0]:
                rows = recv[q] if sample.recv_scale[q] == 1.0 else recv[q] * sample.recv_scale[q]
                halo.index_copy_(0, sample.recv_pos[q] + (slots.start - graph.num_owned), rows)
        return torch.cat([owned, halo])

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        graph, codec, sample = ctx.graph, ctx.codec, ctx.sample
        n = graph.num_owned
        if graph.num_parts == 1:
            return grad, None, None, None, None, None, None
        grad = grad.contiguous()
        blocks = list(torch.split(grad[n:], graph.recv_counts))
        if sample is not None:
            blocks = [b.index_select(0, pos) * s if s != 1.0 else b.index_select(0, pos)
                      for b, pos, s in zip(blocks, sample.recv_pos, sample.recv_scale, strict=True)]
        g_owned = _add_returned_rows(grad[:n], blocks, ctx.idx, graph.part, ctx.comm, ctx.purpose_bwd, codec)
        return g_owned, None, None, None, None, None, None


def halo_exchange(owned: Tensor, graph: LocalGraph, comm, layer: int | None, codec: Codec | None = None,
                  sample: HaloSample | None = None) -> Tensor:
    """Apply :class:`HaloExchange` for training layer ``layer`` (purposes ``halo_fwd/L{layer}`` and
    ``halo_bwd/L{layer}``), or for evaluation when ``layer`` is None (purpose ``eval``); ``codec`` and
    ``sample`` as in the module docstring."""
    if layer is None:
        fwd = bwd = "eval"
    else:
        fwd, bwd = f"halo_fwd/L{layer}", f"halo_bwd/L{layer}"
    return HaloExchange.apply(owned, graph, comm, fwd, bwd, codec, sample)


class HaloReduce(torch.autograd.Function):
    """The transpose of :class:`HaloExchange`: every row of ``[owned ; halo]`` is a partial sum, and the halo
    rows go home to their owners, who add them (vertex-cut training: mirrors' partial aggregates reduced into
    the master, :mod:`dgnn_lab.execution.vertex_cut`). Layer ``l``, worker ``p``, ``S = [S_own ; S_halo]``::

        send   S_halo[recv_slots[q]]       to its owner q       (purpose halo_reduce/L{l})
        return S_own + sum_q scatter_add(send_index[q], rows from q)

    Backward: the output row of an owned node went into the result of every copy, so its gradient is
    broadcast back to them exactly as :class:`HaloExchange`'s forward sends owned rows (purpose
    ``halo_reduce_bwd/L{l}``): ``dL/dS = [G ; G of each copy's owner]``. Both directions carry the same row
    sets as :class:`HaloExchange`, the other way round. Exact float32 only (no codec, no sampling)."""

    @staticmethod
    def forward(ctx, full: Tensor, graph: LocalGraph, comm, purpose_fwd: str, purpose_bwd: str) -> Tensor:  # noqa: D102
        ctx.graph, ctx.comm, ctx.purpose_bwd = graph, comm, purpose_bwd
        n = graph.num_owned
        if graph.num_parts == 1:
            return full.view_as(full)
        full = full.contiguous()
        blocks = list(torch.split(full[n:], graph.recv_counts))
        return _add_returned_rows(full[:n], blocks, graph.send_index, graph.part, comm, purpose_fwd, _IDENTITY)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        graph = ctx.graph
        if graph.num_parts == 1:
            return grad, None, None, None, None
        grad = grad.contiguous()
        recv = _send_rows(grad, graph.send_index, graph.recv_counts, ctx.comm, ctx.purpose_bwd, _IDENTITY)
        return torch.cat([grad, *recv]), None, None, None, None


def halo_reduce(full: Tensor, graph: LocalGraph, comm, layer: int | None) -> Tensor:
    """Apply :class:`HaloReduce` for training layer ``layer`` (purposes ``halo_reduce/L{layer}`` and
    ``halo_reduce_bwd/L{layer}``), or for evaluation when ``layer`` is None (purpose ``eval``)."""
    if layer is None:
        fwd = bwd = "eval"
    else:
        fwd, bwd = f"halo_reduce/L{layer}", f"halo_reduce_bwd/L{layer}"
    return HaloReduce.apply(full, graph, comm, fwd, bwd)
