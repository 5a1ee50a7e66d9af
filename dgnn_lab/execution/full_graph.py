"""Full-graph, partition-parallel training (the execution model of CAGNET, PipeGCN, Sancus, BNS-GCN).

Each worker keeps its owned rows plus the 1-hop halo (:class:`~dgnn_lab.partition.local_graph.LocalGraph`)
and trains. One epoch on worker ``p`` (``T`` = all training nodes, ``T_p`` those ``p`` owns)::

    logits_p = model(X_p)                                 halo exchange per layer through the halo protocol
    L        = (1/|T|) sum_{v in T_p} CE(logits_v, y_v)   p's share of the *global* mean loss
    L.backward()                                          halo gradients return (halo_bwd/L{l})
    gradient synchronisation                              all-reduce (grad_allreduce) or a parameter server

Because the global loss is a sum over workers' shares and every cross-worker dependency goes through an
exact exchange, the summed gradient is exactly the single-process gradient (up to float32 summation order):
with the synchronous protocol P workers train *the same model* as one process. Evaluation runs the same
forward without dropout, always with the exact exchange (purpose ``eval``), and all-reduces correct counts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dgnn_lab.execution.loop import ExecutionModel, register_execution
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.partition.local_graph import LocalGraph
from dgnn_lab.protocols.halo import build_strategy


class FullGraph(ExecutionModel):
    """Every layer over the whole partitioned graph; the halo protocol decides what each layer receives."""

    name = "full-graph"
    uses = ("halo", "codec")

    def setup(self) -> dict:
        w = self.w
        cfg, dev = w.cfg, w.device
        self.graph = graph = w.local_graph()
        data = w.data
        self.x = data.x[graph.owned].to(dev)
        bind_model(self, DistGNN, graph.owned)
        self.halo = build_strategy(cfg.halo, cfg)
        self.halo.codec = w.codec
        self.halo.setup(graph, w.comm, cfg.layers)
        w.drop_data()
        # every layer computes the owned rows over every local edge (a sampled halo only zeroes rows)
        self.work = layer_work(cfg.layers, graph.num_owned, int(graph.edge_index.size(1)))
        return {"num_owned": graph.num_owned, "num_halo": graph.num_halo,
                "num_local_edges": int(graph.edge_index.size(1)), "num_train": int(self.masks[0].sum()),
                "partition": graph.method, "exchange_widths": self.model.exchange_widths(),
                "backward_layers": self.model.backward_layers()}

    def train_epoch(self, epoch: int) -> dict:
        w, comm = self.w, self.w.comm
        self.model.train()
        for p in self.params:
            p.grad = None
        self.halo.begin_epoch(epoch)
        out = self.model(self.x, self.graph, comm, self.halo)
        train = self.masks[0]
        loss_sum = F.cross_entropy(out[train], self.y[train], reduction="sum")
        (loss_sum / self.n_train).backward()
        w.straggler.delay(comm)
        fields = w.sync.step(final=epoch == w.cfg.epochs - 1)
        return {**self.halo.end_epoch(), **fields, "work": self.work, "metrics": [float(loss_sum.detach())]}

    def epoch_metrics(self, fields: dict, reduced: list[float] | None) -> dict:
        return {**fields, "loss": reduced[0] / self.n_train if reduced else None}

    def evaluate(self) -> list[float | None]:
        return evaluate(self.model, self.x, self.y, self.masks, self.totals, self.graph, self.w.comm)

    def close(self) -> None:
        self.halo.close()  # a pipelined protocol may still have transfers in flight


register_execution(FullGraph.name, FullGraph, builtin=True)


def bind_model(em: ExecutionModel, cls: type, owned: Tensor) -> None:
    """What every full-graph model sets up the same way: labels and train/val/test masks of the ``owned``
    nodes (``em.y``, ``em.masks``), the global counts (``em.totals``, ``em.n_train``), the model ``cls`` from
    PyG's initial weights (``em.model``, ``em.params``) bound to the gradient synchronisation, and dropout
    seeds."""
    w = em.w
    data, dev = w.data, w.device
    em.y = data.y[owned].to(dev)
    em.masks = [m[owned].to(dev) for m in (data.train_mask, data.val_mask, data.test_mask)]
    em.totals = [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)]
    em.n_train = max(em.totals[0], 1)
    em.model = w.build_model(cls, data.num_features, int(data.y.max()) + 1)
    em.params = list(em.model.parameters())
    w.sync.bind(w.comm, em.params, w.optimizer(em.params), w.cfg)
    w.seed_dropout()


def layer_work(layers: int, rows: int, edges: int) -> dict:
    """The ``work`` of a full-graph epoch: the same rows and edges at every layer."""
    return {"rows": [rows] * layers, "edges": [edges] * layers}


@torch.no_grad()
def evaluate(model: DistGNN, x: Tensor, y: Tensor, masks: list[Tensor], totals: list[int], graph: LocalGraph,
             comm) -> list[float | None]:
    """Global train/val/test accuracy: a dropout-free distributed forward, correct counts all-reduced."""
    model.eval()
    pred = model(x, graph, comm).argmax(dim=-1)
    correct = torch.stack([(pred[m] == y[m]).sum() for m in masks]).to(torch.int64)
    comm.all_reduce(correct, "eval")
    return [float(c) / n if n else None for c, n in zip(correct.tolist(), totals, strict=True)]
