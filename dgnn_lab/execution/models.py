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
from dgnn_lab.protocols.exchange import halo_exchange, halo_reduce


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


class VertexCutGNN(DistGNN):
    """:class:`DistGNN`'s layers (same parameters, same PyG initial weights) run vertex-cut style
    (DistGNN/PowerGraph): called with the input rows of **every replica** on this worker (masters, then
    mirrors: features are replicated) and a :class:`~dgnn_lab.partition.local_graph.VertexCutGraph`; returns
    the masters' logits. Layer ``l`` (``A`` the part's edges with global-degree weights, ``W`` the layer's
    linear map; transform first when ``out <= in``, as :class:`DistGCNLayer`)::

        Z      = H W^T  at the masters (l = 0: at every replica, from its own features)
        Z_all  = broadcast masters -> mirrors            HaloExchange, halo_fwd/L{l} (none at l = 0)
        S      = A Z_all                                 partial aggregate of every replica
        agg    = S_masters + sum of the mirrors' S       HaloReduce, halo_reduce/L{l}
        H'     = agg + b (+ H_masters W_r^T for SAGE), relu except after the last layer

    (aggregate first when ``out > in``: broadcast ``H``, reduce ``A H``, the master applies ``W``). Dropout is
    drawn where a layer's input rows live: at the master for ``l > 0`` (mirrors receive the dropped rows), but
    at layer 0 every replica drops its own copy of the features with its own mask, so with dropout > 0 the
    mirrors' partial sums see other dropped features than the master (not one process's semantics, still an
    unbiased dropout of the input); with dropout 0 training is exact."""

    def forward(self, x: Tensor, graph, comm, exchange=None) -> Tensor:
        """Training mode: purposes ``halo_fwd|halo_bwd|halo_reduce|halo_reduce_bwd/L{l}``; eval mode:
        ``eval``. ``exchange`` must be None (vertex-cut has no halo protocol)."""
        if exchange is not None:
            raise ValueError("vertex-cut layers take no halo protocol")
        n = graph.num_owned
        h = x
        last = len(self.layers) - 1
        for l, layer in enumerate(self.layers):
            tag = l if self.training else None
            h = F.dropout(h, self.dropout, self.training)
            own = h[:n] if l == 0 else h  # the masters' input rows
            if self.model == "gcn":
                weight, bias, root = layer.weight, layer.bias, None
            else:
                weight, bias, root = layer.lin_l.weight, layer.lin_l.bias, layer.lin_r.weight
            if layer.transform_first:
                z = F.linear(h, weight)
                z_all = z if l == 0 else halo_exchange(z, graph, comm, tag)
                out = halo_reduce(spmm(graph.adj, graph.adj_t, z_all), graph, comm, tag) + bias
            else:
                h_all = h if l == 0 else halo_exchange(h, graph, comm, tag)
                out = F.linear(halo_reduce(spmm(graph.adj, graph.adj_t, h_all), graph, comm, tag), weight, bias)
            if root is not None:
                out = out + F.linear(own, root)
            h = F.relu(out) if l < last else out
        return h

    def broadcast_layers(self) -> list[bool]:
        """Whether layer ``l`` broadcasts masters to mirrors (all but layer 0: features are replicated)."""
        return [l > 0 for l in range(len(self.layers))]


def plan_vertex_cut_bytes(plan, widths: list[int], backward: list[bool],
                          element_size: int = 4) -> dict[str, Tensor]:
    """Bytes one vertex-cut training epoch moves, from the plan alone: ``{purpose: P x P}`` (sender row,
    receiver column). With ``B[p, q] = |boundary(p, q)|`` (p's masters mirrored on q) and ``w_l = widths[l]``:
    ``halo_fwd/L{l}`` = ``B w_l`` and ``halo_bwd/L{l}`` = its transpose for ``l > 0`` (layer 0 broadcasts
    nothing); ``halo_reduce/L{l}`` = ``B^T w_l`` (mirrors to masters) and, where ``backward[l]``,
    ``halo_reduce_bwd/L{l}`` = ``B w_l``; all times ``element_size``."""
    sizes = plan.boundary_sizes()
    out = {}
    for layer, width in enumerate(widths):
        fwd = sizes * (width * element_size)
        if layer > 0:
            out[f"halo_fwd/L{layer}"] = fwd
            out[f"halo_bwd/L{layer}"] = fwd.t().clone()
        out[f"halo_reduce/L{layer}"] = fwd.t().clone()
        if backward[layer]:
            out[f"halo_reduce_bwd/L{layer}"] = fwd.clone()
    return out
