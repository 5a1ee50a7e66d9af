"""The full-graph, synchronous worker: ``worker_main(ctx, config)``, run by every process of a training run.

Each worker loads the graph, derives the same ``PartitionPlan`` as every other worker (partitioners are
deterministic for a seed; a checksum all-reduce verifies it), keeps its owned rows plus the 1-hop halo, and
trains. One epoch on worker ``p`` (``T`` = all training nodes, ``T_p`` those ``p`` owns)::

    logits_p = model(X_p)                                 halo exchange per layer (halo_fwd/L{l})
    L        = (1/|T|) sum_{v in T_p} CE(logits_v, y_v)   p's share of the *global* mean loss
    L.backward()                                          halo gradients return (halo_bwd/L{l})
    grad W   = sum_p grad_p W                             all-reduce (grad_allreduce)
    Adam step (identical on every worker, so the weights stay identical)

Because the global loss is a sum over workers' shares and every cross-worker dependency goes through an
exact exchange, the summed gradient is exactly the single-process gradient (up to float32 summation order):
P workers train *the same model* as one process. Evaluation runs the same forward without dropout
(purpose ``eval``) and all-reduces correct counts; the reported loss is all-reduced too (``metrics``).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from dgnn_lab import datasets
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.execution.reference import copy_weights, reference_model
from dgnn_lab.partition import EDGE_CUT_METHODS, PartitionPlan, partition
from dgnn_lab.partition.local_graph import LocalGraph, global_in_degree
from dgnn_lab.protocols.halo import strategy_for
from dgnn_lab.protocols.straggler import Straggler
from dgnn_lab.train.config import TrainConfig


def load_data(cfg: TrainConfig) -> Data:
    """The dataset a config names, with its ``dataset_args``."""
    return datasets.load(cfg.dataset, **cfg.dataset_args)


def make_plan(data: Data, num_parts: int, method: str, seed: int) -> PartitionPlan:
    """The 1-hop edge-cut plan training uses (deterministic for ``seed``, so every worker derives the same)."""
    plan = partition(data, num_parts, method, seed=seed, hops=1)
    if plan.kind != "edge-cut":
        raise ValueError(f"partition method {method!r} gives a {plan.kind} plan; full-graph training needs an "
                         f"edge-cut (node) partition: one of {', '.join(EDGE_CUT_METHODS)}")
    return plan


def _check_same_plan(comm, plan: PartitionPlan) -> None:
    """Every worker must hold the same assignment (else exchanges disagree and hang): compare a checksum."""
    if comm.world_size == 1:
        return
    a = plan.assignment.to(torch.float64)
    w = torch.arange(1, a.numel() + 1, dtype=torch.float64).remainder_(9973).add_(1)
    h = float((a * w).sum())
    buf = torch.tensor([h, -h], dtype=torch.float64, device=comm.device)
    comm.all_reduce(buf, "setup", op="max")
    if float(buf[0]) != h or float(-buf[1]) != h:
        raise RuntimeError(f"rank {comm.rank}: workers built different partitions (assignment checksum {h} vs "
                           f"range [{-float(buf[1])}, {float(buf[0])}]); the partitioner is not deterministic")


def _flat_grads(params: list[Tensor]) -> Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def _unflatten_grads(params: list[Tensor], flat: Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset:offset + n].view_as(p)
        offset += n


def worker_main(ctx, config: dict) -> dict:
    """Train one :class:`~dgnn_lab.train.config.TrainConfig` as worker ``ctx.rank``; emit ``start`` and
    one ``epoch`` record per epoch (see the runtime contract; adds ``fwd_rows``: halo rows received per
    forward layer). Stops at an epoch boundary once any worker sees ``ctx.should_stop()``."""
    cfg = TrainConfig.from_dict(config)
    comm, rank, dev = ctx.comm, ctx.rank, ctx.device
    if cfg.sync == "ps":  # the last rank is the parameter server; collectives run among the workers only
        from dgnn_lab.protocols import param_server

        if param_server.split_world(ctx, cfg):
            return param_server.serve(ctx, cfg)
    if cfg.workers != comm.world_size:
        raise ValueError(f"config asks for {cfg.workers} workers but the run has world_size {ctx.world_size}")
    t_setup = time.perf_counter()
    data = load_data(cfg)
    plan = make_plan(data, comm.world_size, cfg.partition, cfg.seed)
    _check_same_plan(comm, plan)
    graph = LocalGraph.from_plan(plan, rank, data.edge_index)
    degree = global_in_degree(data.edge_index, data.num_nodes, self_loops=True) if cfg.model == "gcn" else None
    graph.build_adjacency(cfg.model, degree)
    graph.adj, graph.adj_t = graph.adj.to(dev), graph.adj_t.to(dev)
    graph.send_index = [i.to(dev) for i in graph.send_index]

    own = graph.owned
    x, y = data.x[own].to(dev), data.y[own].to(dev)
    masks = [m[own].to(dev) for m in (data.train_mask, data.val_mask, data.test_mask)]
    totals = [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)]
    n_train = max(totals[0], 1)
    num_classes = int(data.y.max()) + 1

    # Identical initial weights everywhere: PyG's own init for this seed, copied in.
    ref = reference_model(cfg.model, data.num_features, cfg.hidden, num_classes, cfg.layers, cfg.dropout, cfg.seed)
    model = copy_weights(ref, DistGNN(cfg.model, data.num_features, cfg.hidden, num_classes, cfg.layers,
                                      cfg.dropout)).to(dev)
    del ref
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    straggler = Straggler.from_config(cfg, rank)
    ps = None
    if cfg.sync == "ps":
        from dgnn_lab.protocols.param_server import PSClient

        ps = PSClient(comm, cfg, params)  # the server holds the optimiser; ``opt`` stays unused
    torch.manual_seed(cfg.seed * 1000 + rank)  # dropout masks: independent per worker, reproducible
    halo = strategy_for(cfg)  # the halo-exchange protocol of cfg.mode (or cfg.strategy): sync, stale, sampled
    halo.setup(graph, comm, cfg.layers)
    del data
    ctx.emit({"type": "start", "num_owned": graph.num_owned, "num_halo": graph.num_halo,
              "num_local_edges": int(graph.edge_index.size(1)), "num_train": int(masks[0].sum()),
              "partition": plan.method, "model": cfg.model, "exchange_widths": model.exchange_widths(),
              "backward_layers": model.backward_layers(), "setup_s": time.perf_counter() - t_setup})
    comm.take_epoch_stats()  # setup traffic (the plan checksum) is not part of epoch 0

    epoch = -1
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        with comm.phase("compute"):
            model.train()
            opt.zero_grad(set_to_none=True)
            halo.begin_epoch(epoch)
            out = model(x, graph, comm, halo)
            loss_sum = F.cross_entropy(out[masks[0]], y[masks[0]], reduction="sum")
            (loss_sum / n_train).backward()
            straggler.delay(comm)
            staleness = None
            if ps is not None:
                staleness = ps.step(final=epoch == cfg.epochs - 1)
            else:
                if comm.world_size > 1:
                    flat = comm.all_reduce(_flat_grads(params), "grad_allreduce")
                    _unflatten_grads(params, flat)
                opt.step()
            stop = 1.0 if ctx.should_stop() else 0.0
            metrics = torch.tensor([float(loss_sum.detach()), stop], dtype=torch.float32, device=dev)
            comm.all_reduce(metrics, "metrics")
            accs: list[float | None] = [None, None, None]
            if cfg.eval_every and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs - 1):
                accs = evaluate(model, x, y, masks, totals, graph, comm)
        epoch_s = time.perf_counter() - t0
        stats = comm.take_epoch_stats()
        extra: dict = {"straggler_s": straggler.take()} if straggler.active else {}
        if staleness is not None:
            extra.update(grad_staleness=staleness, grad_staleness_hist={staleness: 1}, ps_version=ps.version)
        ctx.emit({**halo.end_epoch(), **extra, "type": "epoch", "epoch": epoch, "epoch_s": epoch_s,
                  "compute_s": stats["compute_s"], "comm_s": stats["comm_s"], "wait_s": stats["wait_s"],
                  "loss": float(metrics[0]) / n_train, "train_acc": accs[0], "val_acc": accs[1],
                  "test_acc": accs[2], "bytes_sent": stats["bytes_sent"], "bytes_recv": stats["bytes_recv"],
                  "peak_mem_bytes": ctx.peak_mem_bytes(), "events": stats["events"]})
        if float(metrics[1]) > 0:
            break
    halo.close()  # a pipelined protocol may still have transfers in flight
    if ps is not None:
        ps.finish()
    return {"epochs_run": epoch + 1}


@torch.no_grad()
def evaluate(model: DistGNN, x: Tensor, y: Tensor, masks: list[Tensor], totals: list[int], graph: LocalGraph,
             comm) -> list[float | None]:
    """Global train/val/test accuracy: a dropout-free distributed forward, correct counts all-reduced."""
    model.eval()
    pred = model(x, graph, comm).argmax(dim=-1)
    correct = torch.stack([(pred[m] == y[m]).sum() for m in masks]).to(torch.int64)
    comm.all_reduce(correct, "eval")
    return [float(c) / n if n else None for c, n in zip(correct.tolist(), totals, strict=True)]
