"""Vertex-cut full-graph training (DistGNN, PowerGraph's gather-apply-scatter): the execution model of the
vertex-cut partitioners ``edge-random``, ``dbh`` and ``hdrf``.

A vertex-cut plan puts every *edge* on one part; a node has a replica on every part holding one of its edges,
one of them the master (``owned``), the others mirrors (``halo_rings[0]``). Each worker keeps a row for every
replica (:class:`~dgnn_lab.partition.local_graph.VertexCutGraph`: masters, then mirrors) and, per layer
(:class:`~dgnn_lab.execution.models.VertexCutGNN`)::

    partial aggregate of every replica over this part's edges       A (n_local x n_local), global degrees
    mirrors -> master: partial sums added at the master             halo_reduce/L{l}   (HaloReduce)
    master finishes the layer: bias, SAGE's root term, relu, dropout
    master -> mirrors: the next layer's input rows                  halo_fwd/L{l+1}    (HaloExchange)

Features are replicated, so layer 0 broadcasts nothing. Backward runs the same pairs the other way
(``halo_reduce_bwd``: masters' gradients to the mirrors; ``halo_bwd``: mirrors' gradients summed at the
master). The loss is the cross-entropy over the training nodes among this worker's *masters*, divided by the
global number of training nodes; gradients are all-reduced by the run's gradient synchronisation. With
dropout 0 the P workers train exactly one process's model (up to float32 summation order).

Bytes per epoch, from the plan: :func:`~dgnn_lab.execution.models.plan_vertex_cut_bytes`. Each epoch record
carries ``work``: per layer the rows whose (partial) aggregate this worker computed (every replica) and the
edges it aggregated (its assigned edges, GCN's added self-loops not counted), and the rows it sent and
received in the training forward (broadcasts plus reductions).
"""

from __future__ import annotations

import torch.nn.functional as F

from dgnn_lab.execution.full_graph import bind_model, evaluate, layer_work
from dgnn_lab.execution.loop import ExecutionModel, register_execution
from dgnn_lab.execution.models import VertexCutGNN
from dgnn_lab.partition.local_graph import VertexCutGraph, global_in_degree


class VertexCut(ExecutionModel):
    """Every layer over the whole graph, cut at its vertices: partial aggregates reduced at masters, rows
    broadcast to mirrors."""

    name = "vertex-cut"
    uses = ()
    #: the plan kind this model trains on (the config refuses any other before a worker starts)
    partition_kind = "vertex-cut"

    def setup(self) -> dict:
        w = self.w
        cfg, dev = w.cfg, w.device
        pp, _, book = w.part()
        if book.get("kind") != "vertex-cut":
            raise ValueError(f"execution 'vertex-cut' needs a vertex-cut plan, got a {book.get('kind')} plan "
                             f"({book.get('method')})")
        data = w.data
        graph = VertexCutGraph.from_part(pp, pp.recv, book["num_parts"], book["num_nodes"], data.edge_index)
        degree = global_in_degree(data.edge_index, data.num_nodes, self_loops=cfg.model == "gcn")
        graph.build_adjacency(cfg.model, degree)
        graph.adj, graph.adj_t = graph.adj.to(dev), graph.adj_t.to(dev)
        graph.send_index = [i.to(dev) for i in graph.send_index]
        graph.method = book["method"]
        self.graph = graph
        self.x = data.x[graph.local_to_global].to(dev)  # every replica's features: DistGNN replicates them
        bind_model(self, VertexCutGNN, graph.owned)  # labels and the loss: masters only
        w.drop_data()
        self.work = self._work()
        return {"num_owned": graph.num_owned, "num_halo": graph.num_halo,
                "num_local_edges": int(graph.edge_index.size(1)), "num_train": int(self.masks[0].sum()),
                "partition": graph.method, "exchange_widths": self.model.exchange_widths(),
                "backward_layers": self.model.backward_layers()}

    def _work(self) -> dict:
        """The ``work`` field: every replica's partial aggregate over the part's edges, at every layer (the
        loop adds the halo rows the communicator moved: broadcasts and partial sums)."""
        g = self.graph
        return layer_work(len(self.model.layers), g.num_local, int(g.edge_index.size(1)))

    def train_epoch(self, epoch: int) -> dict:
        w, comm = self.w, self.w.comm
        self.model.train()
        for p in self.params:
            p.grad = None
        out = self.model(self.x, self.graph, comm)
        train = self.masks[0]
        loss_sum = F.cross_entropy(out[train], self.y[train], reduction="sum")
        (loss_sum / self.n_train).backward()
        w.straggler.delay(comm)
        fields = w.sync.step(final=epoch == w.cfg.epochs - 1)
        return {**fields, "work": self.work, "metrics": [float(loss_sum.detach())]}

    def epoch_metrics(self, fields: dict, reduced: list[float] | None) -> dict:
        return {**fields, "loss": reduced[0] / self.n_train if reduced else None}

    def evaluate(self) -> list[float | None]:
        return evaluate(self.model, self.x, self.y, self.masks, self.totals, self.graph, self.w.comm)


register_execution(VertexCut.name, VertexCut, builtin=True)
