"""The single-process baseline: PyG's own ``GCNConv``/``SAGEConv`` and a plain training loop.

It is what distributed training is checked against (same initial weights via :func:`copy_weights`, same
Adam, same loss: the mean cross-entropy over the training nodes) and what the overhead benchmark times.
``adj="csr"`` feeds PyG a ``torch.sparse_csr`` ``adj_t`` (``T.ToSparseTensor(layout=torch.sparse_csr)``),
PyG's fastest path on CPU; ``adj="edge_index"`` is the gather/scatter path.
"""

from __future__ import annotations

import time
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from dgnn_lab.execution.models import DistGNN, layer_dims


class ReferenceGNN(nn.Module):
    """``dropout -> conv -> relu`` per layer (no relu after the last), PyG's GCN example generalised."""

    def __init__(self, model: str, in_dim: int, hidden: int, out_dim: int, layers: int = 2, dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv, SAGEConv

        if model == "gcn":
            make = GCNConv
        elif model == "sage":
            def make(i, o):
                return SAGEConv(i, o, aggr="mean")
        else:
            raise ValueError(f"unknown model {model!r}; allowed: gcn, sage")
        self.model, self.dropout = model, float(dropout)
        self.convs = nn.ModuleList(make(i, o) for i, o in layer_dims(in_dim, hidden, out_dim, layers))

    def forward(self, x: Tensor, adj: Tensor) -> Tensor:
        last = len(self.convs) - 1
        for i, conv in enumerate(self.convs):
            x = F.dropout(x, self.dropout, self.training)
            x = conv(x, adj)
            if i < last:
                x = F.relu(x)
        return x


def reference_model(model: str, in_dim: int, hidden: int, out_dim: int, layers: int, dropout: float,
                    seed: int) -> ReferenceGNN:
    """PyG model with the initial weights every run with this ``seed`` starts from (PyG's own init)."""
    torch.manual_seed(seed)
    return ReferenceGNN(model, in_dim, hidden, out_dim, layers, dropout)


@torch.no_grad()
def copy_weights(ref: ReferenceGNN, dist_model: DistGNN) -> DistGNN:
    """Copy ``ref``'s parameters into ``dist_model`` (same architecture), so both start identical."""
    if ref.model != dist_model.model or len(ref.convs) != len(dist_model.layers):
        raise ValueError(f"architectures differ: reference {ref.model} x{len(ref.convs)}, "
                         f"distributed {dist_model.model} x{len(dist_model.layers)}")
    for conv, layer in zip(ref.convs, dist_model.layers, strict=True):
        if ref.model == "gcn":
            layer.weight.copy_(conv.lin.weight)
            layer.bias.copy_(conv.bias)
        else:
            layer.lin_l.weight.copy_(conv.lin_l.weight)
            layer.lin_l.bias.copy_(conv.lin_l.bias)
            layer.lin_r.weight.copy_(conv.lin_r.weight)
    return dist_model


def adjacency(data: Data, adj: str = "edge_index"):
    """What the PyG model is called with: ``edge_index``, or a ``torch.sparse_csr`` ``adj_t``."""
    if adj == "edge_index":
        return data.edge_index
    if adj == "csr":
        import torch_geometric.transforms as T

        with warnings.catch_warnings():  # torch's "sparse CSR is beta" notice, nothing a user can act on
            warnings.simplefilter("ignore", UserWarning)
            return T.ToSparseTensor(layout=torch.sparse_csr)(data.clone()).adj_t
    raise ValueError(f"unknown adjacency format {adj!r}; allowed: edge_index, csr")


def accuracies(logits: Tensor, data: Data) -> tuple[float, float, float]:
    pred = logits.argmax(dim=-1)
    out = []
    for mask in (data.train_mask, data.val_mask, data.test_mask):
        n = int(mask.sum())
        out.append(float((pred[mask] == data.y[mask]).sum()) / n if n else float("nan"))
    return tuple(out)


def train_reference(data: Data, *, model: str = "gcn", layers: int = 2, hidden: int = 16, dropout: float = 0.5,
                    lr: float = 0.01, weight_decay: float = 5e-4, epochs: int = 200, seed: int = 0,
                    eval_every: int = 1, adj: str = "edge_index") -> dict:
    """Train the PyG model in one process; per-epoch ``loss`` (before the step), accuracies after it, and
    ``epoch_s`` (wall time of the step plus evaluation). Returns lists keyed like the epoch records."""
    net = reference_model(model, data.num_features, hidden, int(data.y.max()) + 1, layers, dropout, seed)
    a = adjacency(data, adj)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    torch.manual_seed(seed)
    out: dict[str, list] = {k: [] for k in ("loss", "train_acc", "val_acc", "test_acc", "epoch_s")}
    for epoch in range(epochs):
        t0 = time.perf_counter()
        net.train()
        opt.zero_grad()
        loss = F.cross_entropy(net(data.x, a)[data.train_mask], data.y[data.train_mask])
        loss.backward()
        opt.step()
        accs = (None, None, None)
        if eval_every and (epoch % eval_every == 0 or epoch == epochs - 1):
            net.eval()
            with torch.no_grad():
                accs = accuracies(net(data.x, a), data)
        out["epoch_s"].append(time.perf_counter() - t0)
        out["loss"].append(float(loss.detach()))
        for k, v in zip(("train_acc", "val_acc", "test_acc"), accs, strict=True):
            out[k].append(v)
    return out
