"""Partition-parallel GCN and GraphSAGE (mean): each worker computes its owned rows of every layer.

Layer ``l`` on worker ``p`` (``H`` owned rows, ``A`` the local aggregation matrix of
:mod:`dgnn_lab.partition.local_graph`, ``X`` -> ``[X ; halo]`` the :class:`~dgnn_lab.protocols.exchange.HaloExchange`)::

    GCN:   H' = A [H W^T ; halo] + b                          (= PyG GCNConv: D^-1/2 (A+I) D^-1/2 H W^T + b)
    SAGE:  H' = A [H W_l^T ; halo] + b_l + H W_r^T            (= PyG SAGEConv, aggr="mean": W_l mean_j h_j + ...)

Aggregation and the linear map commute (``A (H W^T) = (A H) W^T``), so each layer multiplies by ``W`` on
whichever side makes the exchanged rows narrower: *transform first* when ``out <= in`` (Cora's 1433 -> 16:
16 floats a row cross the wire instead of 1433), aggregate first otherwise. PyG always transforms first for
GCN and aggregates first for SAGE; the results agree up to float32 rounding (~1e-7).

Dropout is applied to a layer's input rows by their owner *before* the exchange, so a halo copy carries the
same dropped features its owner uses: the same semantics as one process dropping each node's row once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dgnn_lab.partition.local_graph import LocalGraph, spmm
from dgnn_lab.protocols.exchange import halo_exchange


class DistGCNLayer(nn.Module):
    """One GCN layer over a worker's owned rows; parameters named as in PyG (``weight`` = ``lin.weight``)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        nn.init.xavier_uniform_(self.weight)

    @property
    def transform_first(self) -> bool:
        return self.out_dim <= self.in_dim

    def forward(self, h: Tensor, graph: LocalGraph, comm, layer: int | None, exchange=halo_exchange) -> Tensor:
        if self.transform_first:
            full = exchange(F.linear(h, self.weight), graph, comm, layer)
            return spmm(graph.adj, graph.adj_t, full) + self.bias
        full = exchange(h, graph, comm, layer)
        return F.linear(spmm(graph.adj, graph.adj_t, full), self.weight, self.bias)


class DistSAGELayer(nn.Module):
    """One GraphSAGE (mean) layer: ``lin_l`` on the neighbour mean (with bias), ``lin_r`` on the node itself."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim
        self.lin_l = nn.Linear(in_dim, out_dim, bias=True)
        self.lin_r = nn.Linear(in_dim, out_dim, bias=False)

    @property
    def transform_first(self) -> bool:
        return self.out_dim <= self.in_dim

    def forward(self, h: Tensor, graph: LocalGraph, comm, layer: int | None, exchange=halo_exchange) -> Tensor:
        root = F.linear(h, self.lin_r.weight)
        if self.transform_first:
            full = exchange(F.linear(h, self.lin_l.weight), graph, comm, layer)
            return spmm(graph.adj, graph.adj_t, full) + self.lin_l.bias + root
        full = exchange(h, graph, comm, layer)
        return self.lin_l(spmm(graph.adj, graph.adj_t, full)) + root


LAYERS = {"gcn": DistGCNLayer, "sage": DistSAGELayer}


def layer_dims(in_dim: int, hidden: int, out_dim: int, layers: int) -> list[tuple[int, int]]:
    """``[(in, out), ...]`` per layer: ``in -> hidden -> ... -> hidden -> out``."""
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    return list(zip(dims[:-1], dims[1:], strict=True))


class DistGNN(nn.Module):
    """A stack of distributed layers: ``dropout -> layer -> relu`` (no relu after the last), as in PyG's
    GCN example. Call with this worker's owned feature rows; returns owned logits."""

    def __init__(self, model: str, in_dim: int, hidden: int, out_dim: int, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        if model not in LAYERS:
            raise ValueError(f"unknown model {model!r}; allowed: {', '.join(LAYERS)}")
        self.model, self.dropout = model, float(dropout)
        self.layers = nn.ModuleList(LAYERS[model](i, o) for i, o in layer_dims(in_dim, hidden, out_dim, layers))

    def forward(self, x: Tensor, graph: LocalGraph, comm, exchange=None) -> Tensor:
        """Training mode uses purposes ``halo_fwd/L{l}``/``halo_bwd/L{l}``; eval mode uses ``eval``.

        ``exchange(owned, graph, comm, layer)`` fetches the halo (default: the exact
        :func:`~dgnn_lab.protocols.exchange.halo_exchange`); a communication protocol passes its own
        (:class:`dgnn_lab.protocols.halo.HaloStrategy` objects are such callables)."""
        exchange = halo_exchange if exchange is None else exchange
        h = x
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            h = F.dropout(h, self.dropout, self.training)
            h = layer(h, graph, comm, l if self.training else None, exchange)
            if l < last:
                h = F.relu(h)
        return h

    def exchange_widths(self) -> list[int]:
        """Floats per halo row exchanged at each layer (``min(in, out)``, see the module docstring)."""
        return [min(layer.in_dim, layer.out_dim) for layer in self.layers]

    def backward_layers(self) -> list[bool]:
        """Whether layer ``l`` sends halo gradients back: always, except layer 0 when it aggregates the raw
        features first (they need no gradient, so autograd never calls that exchange's backward)."""
        return [l > 0 or layer.transform_first for l, layer in enumerate(self.layers)]


def plan_halo_bytes(plan, widths: list[int], backward: list[bool], element_size: int = 4) -> dict[str, Tensor]:
    """Bytes one training epoch's halo exchanges move, computed from the plan alone: ``{purpose: P x P}``
    (sender row, receiver column). Forward at layer l: ``|boundary(p, q)| * width_l * element_size`` from
    p to q; backward: the same sets the other way (q returns the gradients of the rows p sent)."""
    sizes = plan.boundary_sizes()
    out = {}
    for layer, width in enumerate(widths):
        fwd = sizes * (width * element_size)
        out[f"halo_fwd/L{layer}"] = fwd
        if backward[layer]:
            out[f"halo_bwd/L{layer}"] = fwd.t().clone()
    return out
