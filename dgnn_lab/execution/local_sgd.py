"""Communication-free local training with periodic model averaging (``mode="local-sgd"``; LLCG / PSGD-PA).

Each worker trains its own copy of the model on its partition *as if it were the whole graph*: edges that
cross partitions are dropped (the owned-only subgraph of :func:`owned_subgraph`; GCN normalises with the
degrees of that subgraph), so a training step moves no bytes at all. Every ``K = local_sgd_period`` epochs
(and after the last) the workers average their weights (``all_reduce``, purpose ``model_avg``: one ring
all-reduce of the flat weight vector, ``2(P-1)/P`` of it sent per worker)::

    epoch e on worker p:   W_p <- Adam_p(W_p, grad L_p(W_p))            L_p: mean loss over p's training
                                                                        nodes on p's subgraph, no halo
    if (e + 1) % K == 0:   W_p <- (1/P) sum_q W_q                        model_avg
                           [correction] one full-graph step with the exact halo exchange and the gradient
                           all-reduce (halo_fwd/halo_bwd, grad_allreduce), by a global Adam whose state is
                           the same on every worker (it only ever sees identical weights and gradients)

What is lost is the cross-partition edges' information during local steps: the averaged model is not the
model full-graph training would reach (PSGD-PA's accuracy gap on a poor partition); LLCG's *global server
correction* closes part of the gap, here as ``local_sgd_correction`` (one synchronous full-graph step after
each averaging). Each worker keeps its own Adam state across averagings (only weights are averaged).

Accuracy is measured by the same distributed full-graph evaluation as synchronous training (exact halo,
purpose ``eval``), so it is comparable; it is reported only at averaging epochs, where every worker holds the
same model. ``loss`` in an epoch record is this worker's local training loss (its own nodes, its subgraph);
``global_loss`` (at averaging epochs) is the mean over all training nodes of those local losses.

The averaging is the gradient-synchronisation axis's ``averaging``
(:class:`~dgnn_lab.protocols.gradient.ModelAveraging`; with a codec the averaged weights travel encoded).
With ``grad_sync="ps"`` (``sync="ps"``) the averaging is replaced by the parameter server
(:mod:`dgnn_lab.protocols.param_server`):
each epoch a worker pushes the gradient of its share of the cut-graph loss and pulls weights at most
``staleness`` rounds old. With no halo exchange the workers are then coupled *only* through the server (and
the evaluation epochs, which are collective), so a fast worker really runs ahead of a slow one by up to ``s``
rounds: truly asynchronous training. ``local_sgd_period`` is ignored there; evaluation and the stop check
happen every ``eval_every`` epochs (0: only after the last).

A straggler (``straggler``) sleeps inside its compute phase; between averagings nobody waits for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dgnn_lab.execution.full_graph import evaluate, layer_work
from dgnn_lab.execution.loop import ExecutionModel, register_execution
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.partition.local_graph import LocalGraph, global_in_degree
from dgnn_lab.protocols.gradient import GradientSync, flat_params


def owned_subgraph(graph: LocalGraph, model: str) -> LocalGraph:
    """Worker ``graph.part``'s owned nodes and the edges among them only (cross-partition edges dropped),
    as a one-part :class:`LocalGraph` (its layers exchange nothing), with ``model``'s adjacency built from
    this subgraph alone (GCN: degrees counted in the subgraph, one self-loop each)."""
    n = graph.num_owned
    src, dst = graph.edge_index
    keep = src < n  # destinations are always owned; a source >= n_owned is a halo node
    ei = graph.edge_index[:, keep]
    sub = LocalGraph(part=0, num_parts=1, owned=graph.owned, halo=graph.owned[:0], edge_index=ei,
                     send_index=[graph.owned[:0]], recv_counts=[0])
    degree = None
    if model == "gcn":
        degree = torch.zeros(int(graph.owned.max()) + 1 if n else 0, dtype=torch.float32)
        degree[graph.owned] = global_in_degree(ei, n, self_loops=True)
    return sub.build_adjacency(model, degree)


def weights_checksum(params: list[Tensor]) -> float:
    """A position-weighted float64 sum of the weights: equal on two workers iff (almost surely) their weights
    are equal; tests use it to see that averaging leaves every worker with the same model."""
    flat = flat_params(params).double()
    return float((flat * torch.arange(1, flat.numel() + 1, dtype=torch.float64).remainder(101).add(1)).sum())


class LocalSGD(ExecutionModel):
    """Independent training on each worker's own subgraph, synchronised by model averaging (or a parameter
    server); epoch records carry ``averaged``, ``global_loss`` at sync points and ``weights_checksum``."""

    name = "local-sgd"
    grad_sync_kinds = ("weights", "gradients")
    uses = ("codec",)
    metrics_dtype = torch.float64

    @classmethod
    def check(cls, cfg) -> None:
        from dgnn_lab.protocols.gradient import ParameterServer, sync_class

        if sync_class(cfg.grad_sync).kind == "gradients" and not issubclass(sync_class(cfg.grad_sync),
                                                                             ParameterServer):
            raise ValueError(f"execution 'local-sgd' with grad_sync={cfg.grad_sync!r}: local steps need "
                             f"grad_sync='averaging' or a parameter server ('ps'); a gradient all-reduce every "
                             f"step is full-graph training without the cut edges")
        if cfg.local_sgd_correction and sync_class(cfg.grad_sync).kind != "weights":
            raise ValueError("local_sgd_correction=True needs grad_sync='averaging' (it corrects each averaged "
                             f"model), got grad_sync={cfg.grad_sync!r}")

    def setup(self) -> dict:
        w = self.w
        cfg, dev = w.cfg, w.device
        self.graph = graph = w.local_graph()  # with the halo: evaluation and correction
        self.local = local = owned_subgraph(graph, cfg.model)
        local.adj, local.adj_t = local.adj.to(dev), local.adj_t.to(dev)
        data = w.data
        own = graph.owned
        self.x, self.y = data.x[own].to(dev), data.y[own].to(dev)
        self.masks = [m[own].to(dev) for m in (data.train_mask, data.val_mask, data.test_mask)]
        self.totals = [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)]
        self.n_train, self.n_local = max(self.totals[0], 1), int(self.masks[0].sum())
        self.model = w.build_model(DistGNN, data.num_features, int(data.y.max()) + 1)
        self.params = list(self.model.parameters())
        self.averaging = w.sync.kind == "weights"
        if self.averaging:
            w.sync.codec = w.codec
        w.sync.bind(w.comm, self.params, w.optimizer(self.params), cfg)
        self.correction = None
        if cfg.local_sgd_correction:  # a global Adam, identical on every worker, and an exact all-reduce
            self.correction = GradientSync(cfg)
            self.correction.bind(w.comm, self.params, w.optimizer(self.params), cfg)
        w.seed_dropout()
        cut = graph.edge_index.size(1) - local.edge_index.size(1)
        w.drop_data()
        return {"num_owned": graph.num_owned, "num_halo": graph.num_halo,
                "num_local_edges": int(local.edge_index.size(1)), "cut_edges_dropped": int(cut),
                "num_train": self.n_local, "partition": graph.method, "local_sgd_period": cfg.local_sgd_period,
                "sync": w.sync.name}

    def sync_point(self, epoch: int) -> bool:
        last = self.w.cfg.epochs - 1
        if self.averaging:
            return self.w.sync.sync_point(epoch, last)
        cfg = self.w.cfg
        return epoch == last or bool(cfg.eval_every and epoch % cfg.eval_every == 0)

    def eval_due(self, epoch: int) -> bool:
        return bool(self.w.cfg.eval_every)

    def train_epoch(self, epoch: int) -> dict:
        w, comm = self.w, self.w.comm
        last = w.cfg.epochs - 1
        self.model.train()
        for p in self.params:
            p.grad = None
        out = self.model(self.x, self.local, comm)  # one-part graph: no exchange, no bytes
        train = self.masks[0]
        loss_sum = F.cross_entropy(out[train], self.y[train], reduction="sum")
        # averaging: each worker's own mean loss; a parameter server sums the workers' shares of the global mean
        (loss_sum / (max(self.n_local, 1) if self.averaging else self.n_train)).backward()
        w.straggler.delay(comm)
        fields = w.sync.step(final=epoch == last)
        fields.update(w.sync.end_epoch(epoch, last))
        if not self.averaging:
            fields["averaged"] = False
        if self.correction is not None and fields.get("averaged"):
            correction_step(self.model, self.correction, self.x, self.y, train, self.n_train, self.graph, comm)
        self._loss = float(loss_sum.detach())
        return {**fields, "work": layer_work(w.cfg.layers, self.local.num_owned, int(self.local.edge_index.size(1))),
                "loss": self._loss / max(self.n_local, 1),
                "weights_checksum": weights_checksum(self.params), "metrics": [self._loss, float(self.n_local)]}

    def epoch_metrics(self, fields: dict, reduced: list[float] | None) -> dict:
        gl = reduced[0] / max(reduced[1], 1.0) if reduced else None
        return {**fields, "global_loss": gl}

    def evaluate(self) -> list[float | None]:
        return evaluate(self.model, self.x, self.y, self.masks, self.totals, self.graph, self.w.comm)


register_execution(LocalSGD.name, LocalSGD, builtin=True)


def correction_step(model: DistGNN, sync: GradientSync, x: Tensor, y: Tensor, train_mask: Tensor, n_train: int,
                    graph: LocalGraph, comm) -> float:
    """One synchronous full-graph step (exact halo exchange, gradient all-reduce) on the averaged model:
    LLCG's global correction. Returns the global training loss it computed."""
    model.train()
    for p in sync.params:
        p.grad = None
    out = model(x, graph, comm)
    loss_sum = F.cross_entropy(out[train_mask], y[train_mask], reduction="sum")
    (loss_sum / n_train).backward()
    sync.step()
    return float(loss_sum.detach())
