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

With ``sync="ps"`` the averaging is replaced by the parameter server (:mod:`dgnn_lab.protocols.param_server`):
each epoch a worker pushes the gradient of its share of the cut-graph loss and pulls weights at most
``staleness`` rounds old. With no halo exchange the workers are then coupled *only* through the server (and
the evaluation epochs, which are collective), so a fast worker really runs ahead of a slow one by up to ``s``
rounds: truly asynchronous training. ``local_sgd_period`` is ignored there; evaluation and the stop check
happen every ``eval_every`` epochs (0: only after the last).

A straggler (``straggler``) sleeps inside its compute phase; between averagings nobody waits for it.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor

from dgnn_lab.execution.full_graph import _check_same_plan, evaluate, load_data, make_plan
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.execution.reference import copy_weights, reference_model
from dgnn_lab.partition.local_graph import LocalGraph, global_in_degree
from dgnn_lab.protocols.param_server import flat_grads, flat_params, load_flat
from dgnn_lab.protocols.straggler import Straggler
from dgnn_lab.train.config import TrainConfig


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


def worker_main(ctx, config: dict) -> dict:
    """Train ``config`` (a :class:`TrainConfig` dict with ``mode="local-sgd"``) as worker ``ctx.rank``; emits
    ``start`` and one ``epoch`` record per epoch (with ``averaged``, ``global_loss`` at averaging epochs,
    ``weights_checksum``; with ``sync="ps"`` also ``grad_staleness``/``grad_staleness_hist``)."""
    cfg = TrainConfig.from_dict(config)
    comm, rank, dev = ctx.comm, ctx.rank, ctx.device
    if cfg.sync == "ps":
        from dgnn_lab.protocols import param_server

        if param_server.split_world(ctx, cfg):
            return param_server.serve(ctx, cfg)
    if cfg.workers != comm.world_size:
        raise ValueError(f"config asks for {cfg.workers} workers but the run has world_size {ctx.world_size}")
    t_setup = time.perf_counter()
    data = load_data(cfg)
    plan = make_plan(data, comm.world_size, cfg.partition, cfg.seed)
    _check_same_plan(comm, plan)
    graph = LocalGraph.from_plan(plan, rank, data.edge_index)  # with the halo: evaluation and correction
    degree = global_in_degree(data.edge_index, data.num_nodes, self_loops=True) if cfg.model == "gcn" else None
    graph.build_adjacency(cfg.model, degree)
    local = owned_subgraph(graph, cfg.model)
    for g in (graph, local):
        g.adj, g.adj_t = g.adj.to(dev), g.adj_t.to(dev)
        g.send_index = [i.to(dev) for i in g.send_index]

    own = graph.owned
    x, y = data.x[own].to(dev), data.y[own].to(dev)
    masks = [m[own].to(dev) for m in (data.train_mask, data.val_mask, data.test_mask)]
    totals = [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)]
    n_train, n_local = max(totals[0], 1), int(masks[0].sum())
    num_classes = int(data.y.max()) + 1
    ref = reference_model(cfg.model, data.num_features, cfg.hidden, num_classes, cfg.layers, cfg.dropout, cfg.seed)
    model = copy_weights(ref, DistGNN(cfg.model, data.num_features, cfg.hidden, num_classes, cfg.layers,
                                      cfg.dropout)).to(dev)
    del ref
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    gopt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay) if cfg.local_sgd_correction else None
    straggler = Straggler.from_config(cfg, rank)
    ps = None
    if cfg.sync == "ps":
        from dgnn_lab.protocols.param_server import PSClient

        ps = PSClient(comm, cfg, params)
    torch.manual_seed(cfg.seed * 1000 + rank)
    cut = graph.edge_index.size(1) - local.edge_index.size(1)
    del data
    ctx.emit({"type": "start", "num_owned": graph.num_owned, "num_halo": graph.num_halo,
              "num_local_edges": int(local.edge_index.size(1)), "cut_edges_dropped": int(cut),
              "num_train": n_local, "partition": plan.method, "model": cfg.model,
              "local_sgd_period": cfg.local_sgd_period, "sync": cfg.sync, "setup_s": time.perf_counter() - t_setup})
    comm.take_epoch_stats()

    last = cfg.epochs - 1
    epoch = -1
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        staleness = None
        if ps is None:
            sync_point = (epoch + 1) % cfg.local_sgd_period == 0 or epoch == last
        else:
            sync_point = epoch == last or bool(cfg.eval_every and epoch % cfg.eval_every == 0)
        with comm.phase("compute"):
            model.train()
            opt.zero_grad(set_to_none=True)
            out = model(x, local, comm)  # one-part graph: no exchange, no bytes
            loss_sum = F.cross_entropy(out[masks[0]], y[masks[0]], reduction="sum")
            if ps is None:
                (loss_sum / max(n_local, 1)).backward()
                straggler.delay(comm)
                opt.step()
            else:  # this worker's share of the global (cut-graph) mean loss; the server sums the shares
                (loss_sum / n_train).backward()
                straggler.delay(comm)
                staleness = ps.step(final=epoch == last)
            global_loss, accs, stop = None, [None, None, None], False
            if sync_point:
                if ps is None and comm.world_size > 1:
                    flat = comm.all_reduce(flat_params(params), "model_avg", op="mean")
                    load_flat(params, flat)
                metrics = torch.tensor([float(loss_sum.detach()), float(n_local), 1.0 if ctx.should_stop() else 0.0],
                                       dtype=torch.float64, device=dev)
                comm.all_reduce(metrics, "metrics")
                global_loss, stop = float(metrics[0]) / max(float(metrics[1]), 1.0), float(metrics[2]) > 0
                if gopt is not None and ps is None:
                    correction_step(model, gopt, x, y, masks[0], n_train, graph, comm)
                if cfg.eval_every:
                    accs = evaluate(model, x, y, masks, totals, graph, comm)
        epoch_s = time.perf_counter() - t0
        stats = comm.take_epoch_stats()
        extra: dict = {"straggler_s": straggler.take()} if straggler.active else {}
        if staleness is not None:
            extra.update(grad_staleness=staleness, grad_staleness_hist={staleness: 1}, ps_version=ps.version)
        ctx.emit({**extra, "type": "epoch", "epoch": epoch, "epoch_s": epoch_s, "compute_s": stats["compute_s"],
                  "comm_s": stats["comm_s"], "wait_s": stats["wait_s"],
                  "loss": float(loss_sum.detach()) / max(n_local, 1), "global_loss": global_loss,
                  "averaged": bool(sync_point and ps is None), "weights_checksum": weights_checksum(params),
                  "train_acc": accs[0], "val_acc": accs[1], "test_acc": accs[2],
                  "bytes_sent": stats["bytes_sent"], "bytes_recv": stats["bytes_recv"],
                  "peak_mem_bytes": ctx.peak_mem_bytes(), "events": stats["events"]})
        if stop:
            break
    if ps is not None:
        ps.finish()
    return {"epochs_run": epoch + 1}


def correction_step(model: DistGNN, gopt: torch.optim.Optimizer, x: Tensor, y: Tensor, train_mask: Tensor,
                    n_train: int, graph: LocalGraph, comm) -> float:
    """One synchronous full-graph step (exact halo exchange, gradient all-reduce) on the averaged model:
    LLCG's global correction. Returns the global training loss it computed."""
    model.train()
    gopt.zero_grad(set_to_none=True)
    out = model(x, graph, comm)
    loss_sum = F.cross_entropy(out[train_mask], y[train_mask], reduction="sum")
    (loss_sum / n_train).backward()
    if comm.world_size > 1:
        params = [p for group in gopt.param_groups for p in group["params"]]
        flat = comm.all_reduce(flat_grads(params), "grad_allreduce")
        offset = 0
        for p in params:
            p.grad = flat[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
    gopt.step()
    return float(loss_sum.detach())
