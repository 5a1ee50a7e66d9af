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
"""

from __future__ import annotations

import torch
from torch import Tensor

from dgnn_lab.train.local_graph import LocalGraph


class HaloExchange(torch.autograd.Function):
    """``cat(owned, halo)`` with the halo fetched from its owners; gradients of halo rows return to them."""

    @staticmethod
    def forward(ctx, owned: Tensor, graph: LocalGraph, comm, purpose_fwd: str, purpose_bwd: str) -> Tensor:  # noqa: D102
        ctx.graph, ctx.comm, ctx.purpose_bwd = graph, comm, purpose_bwd
        if graph.num_parts == 1:
            return owned.view_as(owned)
        send = [owned.index_select(0, idx) for idx in graph.send_index]
        recv = comm.exchange(send, graph.recv_counts, purpose_fwd)
        return torch.cat([owned, *recv])

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: D102
        graph = ctx.graph
        n = graph.num_owned
        if graph.num_parts == 1:
            return grad, None, None, None, None
        grad = grad.contiguous()
        blocks = list(torch.split(grad[n:], graph.recv_counts))
        back = ctx.comm.exchange(blocks, graph.send_counts, ctx.purpose_bwd)
        g_owned = grad[:n].clone()
        for q, idx in enumerate(graph.send_index):
            if q != graph.part and idx.numel():
                g_owned.index_add_(0, idx, back[q])
        return g_owned, None, None, None, None


def halo_exchange(owned: Tensor, graph: LocalGraph, comm, layer: int | None) -> Tensor:
    """Apply :class:`HaloExchange` for training layer ``layer`` (purposes ``halo_fwd/L{layer}`` and
    ``halo_bwd/L{layer}``), or for evaluation when ``layer`` is None (purpose ``eval``)."""
    if layer is None:
        fwd = bwd = "eval"
    else:
        fwd, bwd = f"halo_fwd/L{layer}", f"halo_bwd/L{layer}"
    return HaloExchange.apply(owned, graph, comm, fwd, bwd)
