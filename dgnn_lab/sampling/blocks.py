"""The shared output types of every sampler: bipartite ``Block`` per layer, plus input checks and seed batching.

A :class:`Block` is one GNN layer's computation graph, in DGL's convention: ``src_nodes`` (global ids) lists
the layer's input nodes with its ``num_dst`` output nodes as a *prefix*, so a layer can read a node's own row
(``h[:num_dst]``) for self/root terms, and ``edge_index`` holds local ids (row 0 into ``src_nodes``, row 1
into the dst prefix), messages flowing ``src -> dst`` as in PyG. A mini-batch of an ``L``-layer GNN is
``L`` blocks, input layer first; ``blocks[i].src_nodes[:blocks[i].num_dst]`` equals
``blocks[i + 1].src_nodes`` and the last block's dst nodes are the seeds.

Node-wise samplers return PyG's subgraph ``Data`` (first ``batch_size`` nodes are the seeds,
``num_sampled_nodes``/``num_sampled_edges`` per hop); :func:`to_blocks` turns it into blocks without copying
node ids, exactly as PyG's ``trim_to_layer`` reads it. Layer-wise samplers attach their blocks to the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = ["Block", "SeedBatches", "block_aggregate", "check_fanouts", "check_options", "check_positive_int",
           "resolve_input_nodes", "slice_data", "to_blocks"]


@dataclass
class Block:
    """One layer's bipartite computation graph (see the module docstring for the id conventions).

    ``edge_weight`` carries a sampler's normalisation (layer-wise importance weights ``A_vu c_u / (s q_u)``);
    ``None`` means "aggregate as usual". ``e_id`` are the edges' columns in the original ``edge_index``
    (``-1`` for an added self-loop) where the sampler knows them.
    """

    src_nodes: Tensor
    num_dst: int
    edge_index: Tensor
    edge_weight: Tensor | None = None
    e_id: Tensor | None = None

    @property
    def dst_nodes(self) -> Tensor:
        return self.src_nodes[: self.num_dst]

    @property
    def num_src(self) -> int:
        return self.src_nodes.numel()

    @property
    def num_edges(self) -> int:
        return self.edge_index.size(1)

    def to(self, device: torch.device | str) -> Block:
        move = (lambda t: None if t is None else t.to(device))  # noqa: E731
        return Block(self.src_nodes.to(device), self.num_dst, self.edge_index.to(device),
                     move(self.edge_weight), move(self.e_id))

    def __repr__(self) -> str:
        w = ", weighted" if self.edge_weight is not None else ""
        return f"Block(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges}{w})"


def to_blocks(batch: Data) -> list[Block]:
    """Per-layer blocks of a sampled batch, input layer first.

    For a node-wise batch (``num_sampled_nodes``/``num_sampled_edges`` per hop, nodes and edges in hop order)
    the block of hop ``h`` has the first ``sum(num_sampled_nodes[:h])`` nodes as dst, the first
    ``sum(num_sampled_nodes[:h+1])`` as src and the first ``sum(num_sampled_edges[:h])`` edges: every edge
    sampled for a node nearer the seeds. The seeds' outputs equal those of running every layer on the whole
    subgraph, only cheaper (PyG's ``trim_to_layer``). Layer-wise batches carry ``batch.blocks`` already.
    """
    if "blocks" in batch:
        return list(batch.blocks)
    if "num_sampled_nodes" not in batch or "num_sampled_edges" not in batch:
        raise ValueError("to_blocks needs a sampled batch with num_sampled_nodes and num_sampled_edges "
                         "(from NeighborLoader) or with blocks (from LayerWiseLoader)")
    nodes = torch.tensor([0, *batch.num_sampled_nodes]).cumsum(0).tolist()[1:]
    edges = torch.tensor([0, *batch.num_sampled_edges]).cumsum(0).tolist()[1:]
    e_id = batch.e_id if "e_id" in batch else None
    blocks = []
    for h in range(len(batch.num_sampled_edges), 0, -1):
        ne = edges[h - 1]
        blocks.append(Block(batch.n_id[: nodes[h]], nodes[h - 1], batch.edge_index[:, :ne],
                            None, None if e_id is None else e_id[:ne]))
    return blocks


def block_aggregate(block: Block, h_src: Tensor, reduce: str = "sum") -> Tensor:
    """``out[v] = sum_(u->v) w_uv h_src[u]`` over the block's edges (``w = 1`` without ``edge_weight``);
    ``reduce="mean"`` divides by each dst node's number of sampled in-edges (GraphSAGE's mean)."""
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    row, col = block.edge_index
    msg = h_src[row]
    if block.edge_weight is not None:
        msg = msg * block.edge_weight.view(-1, *([1] * (msg.dim() - 1))).to(msg.dtype)
    out = torch.zeros((block.num_dst, *h_src.shape[1:]), dtype=h_src.dtype).index_add_(0, col, msg)
    if reduce == "mean":
        cnt = torch.bincount(col, minlength=block.num_dst).clamp(min=1).to(h_src.dtype)
        out = out / cnt.view(-1, *([1] * (out.dim() - 1)))
    return out


# ------------------------------------------------------------------------------------------------ checks


def check_positive_int(name: str, value, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return value


def check_fanouts(name: str, fanouts: Sequence[int], *, allow_full: bool = True) -> list[int]:
    """A non-empty list of per-layer sizes: positive integers, or -1 (the full neighbourhood) where allowed."""
    if isinstance(fanouts, (int, str)) or not isinstance(fanouts, Sequence):
        raise ValueError(f"{name} must be a non-empty list of integers (one per layer), got {fanouts!r}")
    if len(fanouts) == 0:
        raise ValueError(f"{name} must be a non-empty list of integers (one per layer), got []")
    allowed = "positive integers or -1 (full neighbourhood)" if allow_full else "positive integers"
    out = []
    for f in fanouts:
        if isinstance(f, bool) or not isinstance(f, int) or f == 0 or f < -1 or (f == -1 and not allow_full):
            raise ValueError(f"{name} entries must be {allowed}, got {f!r} in {list(fanouts)!r}")
        out.append(int(f))
    return out


def check_options(kind: str, options: dict, allowed: Sequence[str] = ()) -> None:
    """Reject unknown keyword options by name, listing what the sampler accepts."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) if allowed else "none"
        raise ValueError(f"unknown {kind} option(s) {unknown}; allowed: {known}")


def resolve_input_nodes(input_nodes, num_nodes: int, name: str = "input_nodes") -> Tensor:
    """``None`` (all nodes), a boolean mask of length ``num_nodes``, or node ids in ``[0, num_nodes)``."""
    if input_nodes is None:
        return torch.arange(num_nodes)
    try:
        t = torch.as_tensor(input_nodes)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be None, a boolean mask or integer node ids, got "
                         f"{type(input_nodes).__name__} {input_nodes!r:.80}") from None
    if t.dtype == torch.bool:
        if t.dim() != 1 or t.numel() != num_nodes:
            raise ValueError(f"{name} as a boolean mask must have length num_nodes={num_nodes}, "
                             f"got shape {tuple(t.shape)}")
        return t.nonzero().view(-1)
    if t.is_floating_point() or t.is_complex() or t.dim() > 1:
        raise ValueError(f"{name} must be None, a boolean mask or a 1-D tensor of integer node ids, "
                         f"got dtype {t.dtype} shape {tuple(t.shape)}")
    t = t.long().view(-1)
    if t.numel() == 0:
        raise ValueError(f"{name} is empty: there are no seed nodes to sample from")
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= num_nodes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"{name} contains node id {bad}, outside [0, {num_nodes - 1}] (num_nodes={num_nodes})")
    return t


class SeedBatches:
    """Seed ids in batches of ``batch_size``; a new permutation each epoch when ``shuffle`` (from ``generator``).

    ``__iter__`` yields ``(input_id, seeds)``: positions in ``input_nodes`` and the node ids, as PyG does.
    """

    def __init__(self, input_nodes: Tensor, batch_size: int, shuffle: bool, generator: torch.Generator,
                 drop_last: bool = False):
        self.input_nodes = input_nodes
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.shuffle = bool(shuffle)
        self.generator = generator
        self.drop_last = bool(drop_last)

    def __len__(self) -> int:
        n = self.input_nodes.numel()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.input_nodes.numel()
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield idx, self.input_nodes[idx]


def slice_data(data: Data, n_id: Tensor, edge_index: Tensor | None, e_id: Tensor | None) -> Data:
    """A subgraph ``Data``: node attributes (``x``, ``y``, masks, ...) indexed by ``n_id``, edge attributes
    by ``e_id``, with the new local ``edge_index`` (if any) and the global ids kept."""
    out = Data(n_id=n_id, num_nodes=n_id.numel())
    if edge_index is not None:
        out.edge_index = edge_index
    num_nodes, num_edges = data.num_nodes, data.edge_index.size(1)
    for key, value in data:
        if key in ("edge_index", "num_nodes", "n_id", "e_id") or not isinstance(value, Tensor):
            continue
        if value.dim() > 0 and value.size(0) == num_nodes and data.is_node_attr(key):
            out[key] = value[n_id]
        elif e_id is not None and value.dim() > 0 and value.size(0) == num_edges and data.is_edge_attr(key):
            out[key] = value[e_id]
    if e_id is not None:
        out.e_id = e_id
    return out
