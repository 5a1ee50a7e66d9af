"""The one worker loop: setup, the epoch loop, stopping and records, for every execution model.

Every training run, whatever its execution model, runs :func:`worker_main` in each process::

    cfg      = the run's TrainConfig (by-value strategies from the launch channel put back in)
    sync     = its gradient synchronisation; a parameter server's rank serves and returns
    model    = EXECUTION_REGISTRY[cfg.execution](worker);  start record <- model.setup()
    for each epoch:
        fields = model.train_epoch(epoch)               steps, halo exchanges, gradient syncs; "work" counts
        if sync point:  all-reduce [model metrics, stop flag] ("metrics"); evaluate when due
        emit one epoch record (dgnn_lab.records.epoch_record: times and bytes from the communicator)
        stop at this epoch boundary if any worker was asked to
    model.close(); sync.finish()

An execution model is a subclass of :class:`ExecutionModel` with three methods (``setup``, ``train_epoch``,
``evaluate``) registered with :func:`register_execution`: one module plus one registry entry. It receives a
:class:`Worker` holding the context, the config, this worker's part of the plan (loaded from the run
directory: the launching process partitioned once) and the run's strategy objects.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from dgnn_lab.dist.communicator import CommunicationError
from dgnn_lab.records import epoch_record, epoch_work
from dgnn_lab.registry import Registry

__all__ = ["ENTRY", "EXECUTION_REGISTRY", "ExecutionModel", "Worker", "register_execution", "worker_main"]

#: The worker entry point of every training run.
ENTRY = "dgnn_lab.execution.loop:worker_main"


class Worker:
    """What an execution model works with: the context, the config, this worker's part, the strategies."""

    def __init__(self, ctx: Any, cfg: Any, sync: Any) -> None:
        from dgnn_lab.protocols.codecs import get_codec
        from dgnn_lab.protocols.straggler import Straggler

        self.ctx, self.cfg, self.sync = ctx, cfg, sync
        self.comm, self.rank, self.device = ctx.comm, ctx.rank, ctx.device
        self.world = ctx.comm.world_size
        self.codec = get_codec(cfg.codec)
        self.straggler = Straggler.from_config(cfg, ctx.rank)
        self._data = None

    # -------------------------------------------------------------------------------- the run's inputs
    @property
    def data(self):
        """The dataset (loaded on first use; every worker needs its features and labels)."""
        if self._data is None:
            from dgnn_lab import datasets

            self._data = datasets.load(self.cfg.dataset, **self.cfg.dataset_args)
        return self._data

    def drop_data(self) -> None:
        """Forget the whole dataset once this worker's share of it has been taken."""
        self._data = None

    def part(self):
        """This worker's part of the run's plan: ``(PartPlan, assignment, book)``; only its own part file is
        read (plus the assignment)."""
        from dgnn_lab.partition import load_assignment, load_part, read_book

        d = self.cfg.partition_dir
        if d is None:
            return self._plan_here()
        book = read_book(d)
        if book["num_parts"] != self.world:
            raise ValueError(f"the plan in {d} has {book['num_parts']} parts but the run has {self.world} workers")
        return load_part(d, self.rank), load_assignment(d), book

    def _plan_here(self):
        """For harnesses that call an execution model directly inside a launch (tests, several configs per
        launch) with no saved plan: partition by name here, deterministically (every rank derives the same
        plan). ``train()`` never comes here: the launching process partitions once."""
        from dgnn_lab.partition import partition

        cfg = self.cfg
        if not isinstance(cfg.partition, str):
            raise ValueError("a partitioner object needs a saved plan: train() builds it in the launching process")
        plan = partition(self.data, self.world, cfg.partition, seed=cfg.seed, hops=1, **cfg.partition_args)
        pp = plan.parts[self.rank]
        pp.recv = {q: plan.boundary(q, self.rank) for q in range(plan.num_parts) if q != self.rank}
        return pp, plan.assignment, {"num_parts": plan.num_parts, "num_nodes": plan.num_nodes,
                                     "method": plan.method, "kind": plan.kind}

    def local_graph(self):
        """This worker's :class:`~dgnn_lab.partition.local_graph.LocalGraph`: owned nodes, 1-hop halo, the
        model's adjacency, on the worker's device."""
        from dgnn_lab.partition.local_graph import LocalGraph, global_in_degree

        pp, assignment, book = self.part()
        data, dev = self.data, self.device
        graph = LocalGraph.from_part(pp, pp.recv, book["num_parts"], book["num_nodes"], data.edge_index)
        degree = global_in_degree(data.edge_index, data.num_nodes, self_loops=True) if self.cfg.model == "gcn" \
            else None
        graph.build_adjacency(self.cfg.model, degree)
        graph.adj, graph.adj_t = graph.adj.to(dev), graph.adj_t.to(dev)
        graph.send_index = [i.to(dev) for i in graph.send_index]
        graph.method = book["method"]
        return graph

    def build_model(self, cls: type, num_features: int, num_classes: int) -> torch.nn.Module:
        """A ``cls`` (:class:`~dgnn_lab.execution.models.DistGNN` or a model with its parameters) starting from
        PyG's initial weights for the run's seed: identical on every worker, and equal to one process's."""
        from dgnn_lab.execution.reference import copy_weights, reference_model

        cfg = self.cfg
        ref = reference_model(cfg.model, num_features, cfg.hidden, num_classes, cfg.layers, cfg.dropout, cfg.seed)
        model = cls(cfg.model, num_features, cfg.hidden, num_classes, cfg.layers, cfg.dropout)
        return copy_weights(ref, model).to(self.device)

    def optimizer(self, params: list) -> torch.optim.Optimizer:
        """The run's optimiser (Adam with the config's learning rate and weight decay)."""
        return torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    def seed_dropout(self) -> None:
        """Dropout masks: independent per worker, reproducible."""
        torch.manual_seed(self.cfg.seed * 1000 + self.rank)


class ExecutionModel:
    """How a worker turns its share of the graph into training steps. Subclasses override :meth:`setup`,
    :meth:`train_epoch` and :meth:`evaluate`, and register with :func:`register_execution`.

    Class attributes declare what fits: ``grad_sync_kinds`` (``"gradients"``: synchronous steps;
    ``"weights"``: independent training with periodic averaging) and ``uses`` (the other axes it reads:
    ``"halo"``, ``"codec"``, ``"sampler"``, ``"cache"``). A config that sets an axis the model does not use is
    refused in the launching process.
    """

    name = "execution"
    grad_sync_kinds: tuple[str, ...] = ("gradients",)
    uses: tuple[str, ...] = ()
    #: dtype of the ``metrics`` all-reduce (the model's own values and the stop flag)
    metrics_dtype = torch.float32

    def __init__(self, worker: Worker) -> None:
        self.w = worker

    @classmethod
    def check(cls, cfg: Any) -> None:
        """Model-specific checks in the launching process (``ValueError`` naming the settings)."""

    def setup(self) -> dict:
        """Build everything this worker holds (COLLECTIVE where it talks); return the ``start`` record's
        fields."""
        raise NotImplementedError

    def train_epoch(self, epoch: int) -> dict:
        """Train one epoch; return record fields. A ``"metrics"`` list of floats is all-reduced (summed) at a
        sync point and handed to :meth:`epoch_metrics`. A ``"work"`` dict counts the epoch's work exactly
        (:data:`dgnn_lab.records.WORK_KEYS`: rows and edges per layer, sampled nodes and edges); the loop adds
        the halo rows the communicator moved."""
        raise NotImplementedError

    def epoch_metrics(self, fields: dict, reduced: list[float] | None) -> dict:
        """Fields computed from the all-reduced metrics (``None`` off sync points); default: ``fields``."""
        return fields

    def sync_point(self, epoch: int) -> bool:
        """Whether workers meet after ``epoch`` (stop agreement, evaluation): the gradient sync decides."""
        return self.w.sync.sync_point(epoch, self.w.cfg.epochs - 1)

    def eval_due(self, epoch: int) -> bool:
        """Whether to evaluate after ``epoch`` (a sync point): every ``eval_every`` epochs and after the last."""
        cfg = self.w.cfg
        return bool(cfg.eval_every) and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs - 1)

    def evaluate(self) -> list[float | None]:
        """Global train/val/test accuracy (COLLECTIVE)."""
        return [None, None, None]

    def explain(self, error: CommunicationError, epoch: int) -> BaseException | None:
        """A clearer error for a failed collective, if the model knows why it happens (else None)."""
        return None

    def close(self) -> None:
        """After the last epoch: finish transfers still in flight."""


#: The execution-model axis: ``register_execution("mine", MyModel)``.
EXECUTION_REGISTRY = Registry("execution model", what="execution model", base=ExecutionModel, classes_only=True)
register_execution = EXECUTION_REGISTRY.register


def model_class(spec: Any) -> type[ExecutionModel]:
    """The execution model class ``spec`` names (the built-ins are imported on first use)."""
    _builtins()
    obj, _ = EXECUTION_REGISTRY.resolve(spec)
    return obj


def _builtins() -> None:
    # each module registers itself on import (one may already be imported without the others)
    from dgnn_lab.execution import full_graph, local_sgd, minibatch, vertex_cut  # noqa: F401


def worker_main(ctx: Any, config: dict) -> dict:
    """Train one :class:`~dgnn_lab.train.config.TrainConfig` as worker ``ctx.rank``: emit ``start`` and one
    ``epoch`` record per epoch; stop at an epoch boundary once any worker sees ``ctx.should_stop()``."""
    from dgnn_lab.protocols.gradient import build_grad_sync
    from dgnn_lab.protocols.param_server import split_world
    from dgnn_lab.train.config import TrainConfig

    cfg = TrainConfig.from_dict(config, objects=getattr(ctx, "objects", None))
    sync = build_grad_sync(cfg.grad_sync, cfg)
    if sync.extra_ranks:  # the last rank serves; collectives run among the workers
        if split_world(ctx, cfg):
            return sync.serve(ctx)
    if cfg.workers != ctx.comm.world_size:
        raise ValueError(f"config asks for {cfg.workers} workers but the run has world_size {ctx.comm.world_size}")
    w = Worker(ctx, cfg, sync)
    model = model_class(cfg.execution)(w)
    comm = ctx.comm
    t_setup = time.perf_counter()
    start = model.setup()
    ctx.emit({"type": "start", "model": cfg.model, "execution": model.name, **start,
              "setup_s": time.perf_counter() - t_setup})
    comm.take_epoch_stats()  # setup traffic is not part of epoch 0

    epoch = -1
    try:
        for epoch in range(cfg.epochs):
            t0, cpu0 = time.perf_counter(), time.process_time()
            stop = False
            accs: list[float | None] = [None, None, None]
            with comm.phase("compute"):
                fields = model.train_epoch(epoch)
                metrics = fields.pop("metrics", [])
                if model.sync_point(epoch):
                    vals = torch.tensor([*metrics, 1.0 if ctx.should_stop() else 0.0], dtype=model.metrics_dtype,
                                        device=ctx.device)
                    comm.all_reduce(vals, "metrics")
                    reduced = vals.tolist()
                    stop = reduced[-1] > 0
                    fields = model.epoch_metrics(fields, reduced[:-1])
                    if model.eval_due(epoch):
                        accs = model.evaluate()
                else:
                    fields = model.epoch_metrics(fields, None)
            epoch_s, cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
            if w.straggler.active:
                fields["straggler_s"] = w.straggler.take()
            stats = comm.take_epoch_stats()
            fields["work"] = epoch_work(fields.get("work"), stats.pop("rows", {}))
            ctx.emit(epoch_record(epoch, epoch_s, stats, cpu_s=cpu_s, train_acc=accs[0], val_acc=accs[1],
                                  test_acc=accs[2], peak_mem_bytes=ctx.peak_mem_bytes(), **fields))
            if stop:
                break
    except CommunicationError as e:
        better = model.explain(e, epoch)
        if better is not None:
            raise better from e
        raise
    model.close()
    sync.finish()
    return {"epochs_run": epoch + 1}
