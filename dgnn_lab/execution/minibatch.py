"""Distributed mini-batch training (DistDGL's execution model): ``worker_main(ctx, config)`` per process.

Each worker owns one part of an edge-cut partition: the feature rows of its nodes (a
:class:`~dgnn_lab.sampling.feature_store.DistFeatureStore`) and a sampling topology (its owned nodes'
in-edges, or a replicated ``L``-hop halo: :mod:`dgnn_lab.sampling.distributed`). One step on worker ``p``::

    seeds_p   = next batch of p's training seeds (split "local" by owner or in "chunk"s of the train index)
    blocks_p  = sample(seeds_p)          remote neighbourhoods by their owner (sample_req/resp) or from the halo
    X_p       = fetch(input nodes)       own rows local; remote rows from the cache or their owner (fetch_req/resp)
    g_p, L_p  = grad of sum_{v in seeds_p} CE(model(X_p, blocks_p)_v, y_v)
    [g, L, n] = all_reduce([g_p, L_p, n_p])                      (grad_allreduce: one buffer)
    Adam step with g / n  (identical on every worker, so the weights stay identical)

That is the ``allreduce`` gradient synchronisation; with ``grad_sync="ps"`` each worker pushes ``(g_p, n_p)``
to a parameter server, which steps each round with the sum over the round's summed ``n``. The remote rows
of a fetch travel in the run's codec (``codec="int8"``: ``D + 2`` bytes a row); evaluation fetches exactly.
The sampler (``sampler=``) and the cache policy (``cache=``) are axes of their own
(:data:`~dgnn_lab.sampling.distributed.SAMPLER_REGISTRY`, :data:`~dgnn_lab.sampling.cache.CACHE_REGISTRY`).

``g / n`` is the gradient of the mean loss over the union of every worker's seeds of this step, which is
exactly the single-process gradient on those seeds when the fanouts are ``-1`` (every neighbour): P workers
train the same model as one process training on the union of their batches.

Equal steps: every worker runs ``max_p ceil(|seeds_p| / B)`` steps per epoch, agreed by an all-reduce. A
worker whose seeds ran out takes *zero-weight* steps: it samples and fetches for no seeds (still answering the
others' requests, which it must), contributes ``g_p = 0, n_p = 0`` to the all-reduce, and skips the
forward pass. Why not re-use seeds? Padding with repeated seeds would weight those nodes twice in the epoch
and make the gradient depend on the padding; zero-weight steps keep every epoch one pass over the training
nodes, each seed counted once, and the summed gradient exact. ``equal_steps=False`` keeps each worker's own
count: the worker with more batches waits in a collective nobody else joins -- the classic DDP/DistDGL
uneven-inputs hang -- which here ends after ``timeout_s`` with an error saying so.

Evaluation: each worker evaluates the train/val/test nodes it owns with full neighbourhoods (fanouts ``-1``,
deterministic), in batches; correct counts are all-reduced (purpose ``eval``, fetches ``eval_fetch_*``).

Labels are replicated (one integer per node, a metadata array like the partition assignment); features are
not: after setup a worker holds only its owned rows and its cache.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from dgnn_lab.dist.communicator import CommunicationError
from dgnn_lab.execution.loop import ExecutionModel, Worker, register_execution
from dgnn_lab.execution.models import DistGNN
from dgnn_lab.execution.pipeline import Prefetcher, overlap_seconds
from dgnn_lab.graph import to_csr
from dgnn_lab.sampling.blocks import Block, block_aggregate
from dgnn_lab.sampling.cache import build_cache, cache_policy, presample_counts
from dgnn_lab.sampling.distributed import (
    SAMPLER_REGISTRY,
    DistNeighborSampler,
    Topology,
    halo_topology_nodes,
    split_seeds,
)
from dgnn_lab.sampling.feature_store import DistFeatureStore
from dgnn_lab.train.config import TrainConfig

__all__ = ["BlockGNN", "Minibatch", "MinibatchWorker", "PreparedBatch", "gcn_block_weights"]

#: per-step fields summed into the epoch record
STEP_SUMS = ("sample_s", "fetch_s", "train_s", "queue_s", "remote_requests", "remote_rows_fetched",
             "cache_hits", "cache_lookups", "sample_requests", "sample_remote_nodes")


# ------------------------------------------------------------------------------------------------ model


def gcn_block_weights(block: Block, degree: Tensor) -> Tensor:
    """Edge weights making a sampled GCN layer an unbiased estimate of the full one: an edge ``u -> v`` gets
    ``(deg(v) / s(v)) / sqrt(d(u) d(v))`` with ``deg`` the in-degree without self-loops, ``s(v)`` the sampled
    in-edges of ``v`` and ``d = deg + 1`` (GCN's self-loop). With every neighbour sampled it is exactly GCN's
    ``D^-1/2 (A + I) D^-1/2`` off the diagonal; the diagonal ``1 / d(v)`` is added by :class:`BlockGNN`."""
    row, col = block.edge_index
    src, dst = block.src_nodes[row], block.src_nodes[col]
    d_hat = degree + 1.0
    s = torch.bincount(col, minlength=block.num_dst).clamp(min=1).to(degree.dtype)
    return (degree[dst] / s[col]) * torch.rsqrt(d_hat[src] * d_hat[dst])


class BlockGNN(DistGNN):
    """GCN or GraphSAGE (mean) over sampled blocks: ``dropout -> layer -> relu`` per layer (no relu after the
    last). The parameters are :class:`~dgnn_lab.execution.models.DistGNN`'s (only the forward differs), so
    :func:`~dgnn_lab.execution.reference.copy_weights` starts it from PyG's initial weights."""

    def forward(self, x: Tensor, blocks: list[Block], degree: Tensor | None = None) -> Tensor:
        """``x``: rows of ``blocks[0].src_nodes``; GCN needs ``degree`` (in-degree, no self-loops) and blocks
        carrying :func:`gcn_block_weights`. Returns logits of the last block's dst nodes (the seeds)."""
        if len(blocks) != len(self.layers):
            raise ValueError(f"{len(self.layers)} layers need {len(self.layers)} blocks, got {len(blocks)}")
        h = x
        last = len(self.layers) - 1
        for l, (layer, b) in enumerate(zip(self.layers, blocks, strict=True)):
            h = F.dropout(h, self.dropout, self.training)
            if self.model == "gcn":
                hw = F.linear(h, layer.weight)
                self_w = 1.0 / (degree[b.dst_nodes] + 1.0)
                h = block_aggregate(b, hw, "sum") + hw[:b.num_dst] * self_w.unsqueeze(1) + layer.bias
            else:
                if layer.transform_first:
                    agg = block_aggregate(b, F.linear(h, layer.lin_l.weight), "mean") + layer.lin_l.bias
                else:
                    agg = layer.lin_l(block_aggregate(b, h, "mean"))
                h = agg + F.linear(h[:b.num_dst], layer.lin_r.weight)
            if l < last:
                h = F.relu(h)
        return h


# ------------------------------------------------------------------------------------------------ worker


@dataclass
class PreparedBatch:
    """A sampled, fetched batch ready to train on, with what preparing it cost."""

    seeds: Tensor
    blocks: list[Block]
    x: Tensor
    y: Tensor
    stats: dict = field(default_factory=dict)


class MinibatchWorker:
    """Everything one worker holds for mini-batch training, built collectively by every rank (:meth:`setup`).

    Split out of the execution model so that tests and notebooks can drive single steps (:meth:`prepare`,
    :meth:`train_step`) with the exact machinery training uses.
    """

    def __init__(self, ctx, cfg: TrainConfig, worker: Worker | None = None) -> None:
        if worker is None:
            from dgnn_lab.protocols.gradient import build_grad_sync

            worker = Worker(ctx, cfg, build_grad_sync(cfg.grad_sync, cfg))
        self.w = worker
        self.ctx, self.cfg = ctx, cfg
        self.comm, self.rank, self.world = ctx.comm, ctx.rank, ctx.comm.world_size

    def make_sampler(self, comm, fanouts: list[int], seed: int, purpose: str = "sample", *,
                     exact: bool = False) -> DistNeighborSampler:
        """A sampler of the run's ``sampler`` axis over this worker's topology (``exact``: the built-in with
        full neighbourhoods, for evaluation)."""
        cls, options = (DistNeighborSampler, {}) if exact else SAMPLER_REGISTRY.resolve(self.cfg.sampler)
        return cls(comm, self.topology, self.assignment, fanouts, mode=self.cfg.remote_sampling, seed=seed,
                   purpose=purpose, **options)

    # ----------------------------------------------------------------------------------------- setup
    def setup(self) -> MinibatchWorker:
        """Load the graph and this worker's part of the plan, keep its share, build samplers, stores and the
        cache. COLLECTIVE."""
        cfg, comm, rank, dev = self.cfg, self.comm, self.rank, self.ctx.device
        t0 = time.perf_counter()
        pp, assignment, book = self.w.part()
        data = self.w.data
        n = int(data.num_nodes)
        self.num_nodes, self.plan_method = n, book["method"]
        self.assignment = assignment.clone()
        self.owned = pp.owned.clone()
        self.y = data.y.clone()                      # labels: replicated metadata (see module docstring)
        self.num_classes = int(data.y.max()) + 1
        self.num_features = int(data.num_features)
        masks = (data.train_mask, data.val_mask, data.test_mask)
        self.totals = [int(m.sum()) for m in masks]
        own_mask = self.assignment == rank
        self.eval_nodes = [torch.nonzero(m & own_mask).reshape(-1) for m in masks]
        train_idx = torch.nonzero(data.train_mask).reshape(-1)
        self.seeds = split_seeds(train_idx, self.assignment, rank, self.world, cfg.seed_split)
        self.seeds_local = int((self.assignment[self.seeds] == rank).sum())
        no_loops = data.edge_index[:, data.edge_index[0] != data.edge_index[1]]
        self.degree = torch.bincount(no_loops[1], minlength=n).to(torch.float32)
        full_csr = to_csr(no_loops, n)
        layers = cfg.layers
        base = torch.unique(torch.cat([self.owned, self.seeds]))
        if cfg.remote_sampling == "halo":
            topo_nodes = halo_topology_nodes(full_csr, base, layers - 1)
        else:
            topo_nodes = self.owned
        self.topology = Topology.of(no_loops, n, topo_nodes)
        # remote nodes a batch of this worker can ever read: within L hops of its seeds / owned nodes
        reach = halo_topology_nodes(full_csr, base, layers)
        self.candidates = reach[self.assignment[reach] != rank]
        self.x_owned = data.x[self.owned].to(dev)
        del full_csr, no_loops, masks                # from here on: only this worker's share (and its cache)
        self.w.drop_data()
        data = None

        # samplers (one per thread that samples), all over the same held topology
        p_seed = cfg.seed * 7919 + rank * 104729
        self.train_sampler = self.make_sampler(comm, cfg.fanouts, p_seed)
        self.eval_sampler = self.make_sampler(comm, [-1] * layers, 0, "eval_sample", exact=True)
        self.num_steps = self.agree_steps(self.seeds.numel())
        codec = None if self.w.codec.name == "none" else self.w.codec  # the wire format of fetched rows
        self.cache = self._build_cache(p_seed, codec)
        self.cache_nbytes = self.cache.nbytes if self.cache is not None else 0
        self.store = DistFeatureStore(comm, self.x_owned, self.owned, self.assignment, self.cache, codec=codec)
        self.eval_store = DistFeatureStore(comm, self.x_owned, self.owned, self.assignment, self.cache,
                                           purpose="eval_fetch")
        # the prefetch thread's own process group + communicator, sampler and store (see pipeline.py)
        self.pcomm = None
        if cfg.pipeline:
            self.pcomm = comm.fork()
            self.prefetch_sampler = self.make_sampler(self.pcomm, cfg.fanouts, p_seed)
            self.prefetch_store = DistFeatureStore(self.pcomm, self.x_owned, self.owned, self.assignment,
                                                   self.cache, codec=codec)
        self.model = self.w.build_model(BlockGNN, self.num_features, self.num_classes)
        self.params = list(self.model.parameters())
        self.opt = self.w.optimizer(self.params)
        self.w.sync.bind(comm, self.params, self.opt, cfg)
        self.w.seed_dropout()
        self.setup_s = time.perf_counter() - t0
        return self

    def agree_steps(self, num_seeds: int) -> int:
        """Steps per epoch: this worker's batch count, or (``equal_steps``) the maximum over workers."""
        mine = math.ceil(num_seeds / self.cfg.batch_size)
        if not self.cfg.equal_steps or self.world == 1:
            return mine
        t = torch.tensor([mine], dtype=torch.int64, device=self.ctx.device)
        self.comm.all_reduce(t, "setup", op="max")
        return int(t.item())

    def _build_cache(self, p_seed: int, codec=None):
        cfg = self.cfg
        policy = cache_policy(cfg.cache)
        counts = None
        if policy.needs_presample:
            # GNNLab: sample one epoch's batches before training (collective in owner mode: same count everywhere)
            sampler = self.make_sampler(self.comm, cfg.fanouts, p_seed + 1, "presample")
            counts = presample_counts(lambda s: sampler.sample(s).n_id, self.epoch_batches(-1), self.num_nodes)
        return build_cache(policy, comm=self.comm, x_owned=self.x_owned, owned_ids=self.owned,
                           assignment=self.assignment, capacity_fraction=cfg.cache_size,
                           candidate_ids=self.candidates, degree=self.degree, presample_counts=counts, codec=codec)

    # ------------------------------------------------------------------------------------------ steps
    def epoch_batches(self, epoch: int) -> list[Tensor]:
        """This worker's seed batches of ``epoch`` (a fresh shuffle per epoch), padded with empty batches to
        :attr:`num_steps` (the zero-weight steps)."""
        g = torch.Generator().manual_seed(self.cfg.seed * 100_003 + self.rank * 1009 + epoch + 17)
        perm = self.seeds[torch.randperm(self.seeds.numel(), generator=g)]
        b = self.cfg.batch_size
        out = [perm[i:i + b] for i in range(0, perm.numel(), b)]
        return out + [perm[:0]] * max(0, self.num_steps - len(out))

    def prepare(self, seeds: Tensor, sampler: DistNeighborSampler | None = None,
                store: DistFeatureStore | None = None) -> PreparedBatch:
        """Sample and fetch one batch. COLLECTIVE (owner sampling and fetching answer the other workers)."""
        sampler = sampler or self.train_sampler
        store = store or self.store
        t0 = time.perf_counter()
        s = sampler.sample(seeds)
        if self.cfg.model == "gcn":
            for b in s.blocks:
                b.edge_weight = gcn_block_weights(b, self.degree)
        blocks = [b.to(self.ctx.device) for b in s.blocks]
        t1 = time.perf_counter()
        x = store.fetch(s.n_id)
        t2 = time.perf_counter()
        st = store.take_stats()
        stats = {"sample_t0": t0, "fetch_t0": t1, "sample_s": t1 - t0, "fetch_s": t2 - t1,
                 "remote_requests": st["remote_requests"] + s.requests,
                 "remote_rows_fetched": st["remote_rows_fetched"], "cache_hits": st["cache_hits"],
                 "cache_lookups": st["cache_lookups"], "sample_requests": s.requests,
                 "sample_remote_nodes": s.remote_nodes, "input_nodes": int(s.n_id.numel()),
                 "work_rows": [b.num_dst for b in s.blocks], "work_edges": [b.num_edges for b in s.blocks]}
        return PreparedBatch(seeds, blocks, x, self.y[seeds].to(self.ctx.device), stats)

    def train_step(self, batch: PreparedBatch, straggler=None) -> tuple[float, int, dict]:
        """Forward/backward on this worker's seeds (the gradient of the loss *sum*), then the run's gradient
        synchronisation with the seed count: the all-reduce sums gradients, loss and count and divides by
        the global count; a parameter server divides each round by its summed count. Returns this worker's
        ``(loss_sum, num_seeds)`` and the synchronisation's record fields."""
        comm = self.comm
        c0 = comm.elapsed("compute") if straggler is not None else 0.0
        with comm.phase("compute"):
            self.model.train()
            self.opt.zero_grad(set_to_none=True)
            n_local = int(batch.seeds.numel())
            if n_local:
                out = self.model(batch.x, batch.blocks, self.degree)
                loss_sum = F.cross_entropy(out, batch.y, reduction="sum")
                loss_sum.backward()
                loss_v = float(loss_sum.detach())
            else:                                    # a zero-weight step: nothing to learn, still synchronise
                loss_v = 0.0
            if straggler is not None:
                straggler.delay(comm, c0)
            fields = self.w.sync.step(count=float(n_local), loss_sum=loss_v)
        return loss_v, n_local, fields

    @torch.no_grad()
    def evaluate(self) -> list[float | None]:
        """Global train/val/test accuracy: each worker classifies the nodes it owns with full neighbourhoods;
        correct counts all-reduced. COLLECTIVE."""
        self.model.eval()
        nodes = torch.cat(self.eval_nodes)
        which = torch.cat([torch.full((t.numel(),), i) for i, t in enumerate(self.eval_nodes)])
        b = max(self.cfg.batch_size, 1024)
        steps = self.agree_eval_steps(math.ceil(nodes.numel() / b))
        correct = torch.zeros(3, dtype=torch.int64)
        for i in range(steps):
            seeds = nodes[i * b:(i + 1) * b]
            batch = self.prepare(seeds, self.eval_sampler, self.eval_store)
            if seeds.numel():
                pred = self.model(batch.x, batch.blocks, self.degree).argmax(-1).cpu()
                ok = (pred == self.y[seeds]).long()
                correct += torch.bincount(which[i * b:(i + 1) * b], weights=ok, minlength=3).long()
        self.eval_store.take_stats()
        correct = correct.to(self.ctx.device)
        self.comm.all_reduce(correct, "eval")
        return [float(c) / t if t else None for c, t in zip(correct.tolist(), self.totals, strict=True)]

    def agree_eval_steps(self, mine: int) -> int:
        if self.world == 1:
            return mine
        t = torch.tensor([mine], dtype=torch.int64, device=self.ctx.device)
        self.comm.all_reduce(t, "eval", op="max")
        return int(t.item())


class Minibatch(ExecutionModel):
    """DistDGL's execution model: sample, fetch, train, per step (see the module docstring). Emits one
    ``step`` record per step and one ``epoch`` record per epoch (the full-graph keys plus the epoch sums of
    the step fields, ``steps``, ``overlap_s`` and ``loop_s``)."""

    name = "minibatch"
    uses = ("sampler", "cache", "codec")
    metrics_dtype = torch.float64

    @classmethod
    def check(cls, cfg: TrainConfig) -> None:
        if len(cfg.fanouts) != cfg.layers:
            raise ValueError(f"fanouts needs one entry per layer: {len(cfg.fanouts)} fanouts {cfg.fanouts} for "
                             f"layers={cfg.layers}")

    def setup(self) -> dict:
        w = self.w
        self.mb = mb = MinibatchWorker(w.ctx, w.cfg, w).setup()
        self.straggler = w.straggler if w.straggler.active else None
        fill = mb.cache.fill_stats if mb.cache is not None else {}
        w.comm.take_epoch_stats()  # the cache fill and the prefetch group's setup are not epoch 0
        self.origin = time.perf_counter()
        return {"num_owned": int(mb.owned.numel()), "num_halo": int(mb.candidates.numel()),
                "num_local_edges": mb.topology.num_edges, "num_train": int(mb.seeds.numel()),
                "seeds_local": mb.seeds_local, "steps_per_epoch": mb.num_steps, "partition": mb.plan_method,
                "cache_policy": cache_policy(w.cfg.cache).name,
                "cache_rows": len(mb.cache) if mb.cache is not None else 0, "cache_nbytes": mb.cache_nbytes,
                "cache_fill_rows": fill.get("remote_rows_fetched", 0)}

    def train_epoch(self, epoch: int) -> dict:
        mb, comm, ctx, origin = self.mb, self.w.comm, self.w.ctx, self.origin
        batches = mb.epoch_batches(epoch)
        if mb.cfg.pipeline:
            def produce(i, batches=batches):
                return mb.prepare(batches[i], mb.prefetch_sampler, mb.prefetch_store)
        else:
            def produce(i, batches=batches):
                with comm.phase("compute"):
                    return mb.prepare(batches[i])
        sums = dict.fromkeys(STEP_SUMS, 0.0)
        layers = mb.cfg.layers
        work = {"rows": [0] * layers, "edges": [0] * layers, "sampled_nodes": 0, "sampled_edges": 0}
        loss_sum = count = 0.0
        sync_fields: dict = {}
        ages: dict[int, int] = {}  # gradient staleness of every step (parameter server)
        pre = Prefetcher(produce, mb.num_steps, enabled=mb.cfg.pipeline)
        try:
            step_t = time.perf_counter()
            for i, batch in enumerate(pre):
                queue_s = pre.wait_s - sums["queue_s"]
                wait0 = comm.elapsed("wait")
                t1 = time.perf_counter()
                ls, n, sync_fields = mb.train_step(batch, self.straggler)
                if "grad_staleness" in sync_fields:
                    ages[sync_fields["grad_staleness"]] = ages.get(sync_fields["grad_staleness"], 0) + 1
                train_s = time.perf_counter() - t1
                wait_s = comm.elapsed("wait") - wait0
                loss_sum += ls
                count += n
                # stage start times (seconds since the worker's clock origin) let a timeline place the
                # preparation of step i+1 under the training of step i; wait_s is the tail of train_s
                rec = {"type": "step", "epoch": epoch, "step": i, **{k: batch.stats[k] for k in
                       ("sample_s", "fetch_s", "remote_requests", "remote_rows_fetched", "cache_hits",
                        "cache_lookups")},
                       "train_s": train_s, "wait_s": wait_s, "queue_s": queue_s, "seeds": int(batch.seeds.numel()),
                       "input_nodes": batch.stats["input_nodes"],
                       "sample_t0": batch.stats["sample_t0"] - origin, "fetch_t0": batch.stats["fetch_t0"] - origin,
                       "train_t0": t1 - origin, "wait_t0": t1 + train_s - wait_s - origin}
                ctx.emit(rec)
                for k in STEP_SUMS:
                    sums[k] += rec.get(k, batch.stats.get(k, 0))
                if n:  # a zero-weight step samples nothing and skips the forward
                    st = batch.stats
                    for layer, (r, e) in enumerate(zip(st["work_rows"], st["work_edges"], strict=True)):
                        work["rows"][layer] += r
                        work["edges"][layer] += e
                    work["sampled_nodes"] += st["input_nodes"]
                    work["sampled_edges"] += sum(st["work_edges"])
            loop_s = time.perf_counter() - step_t
        finally:
            pre.close()
        stage_s = sums["sample_s"] + sums["fetch_s"] + sums["train_s"]
        sync_fields.pop("loss_sum", None)
        sync_fields.pop("count", None)
        if ages:  # the last step's age and version, and the histogram of every step's
            sync_fields["grad_staleness_hist"] = dict(sorted(ages.items()))
        return {**sync_fields, "steps": mb.num_steps, "work": work,
                **{k: (int(v) if k not in ("sample_s", "fetch_s", "train_s", "queue_s") else v)
                   for k, v in sums.items()},
                "overlap_s": overlap_seconds(stage_s, loop_s), "loop_s": loop_s, "metrics": [loss_sum, count]}

    def epoch_metrics(self, fields: dict, reduced: list[float] | None) -> dict:
        return {**fields, "loss": reduced[0] / reduced[1] if reduced and reduced[1] else None}

    def evaluate(self) -> list[float | None]:
        return self.mb.evaluate()

    def explain(self, error: CommunicationError, epoch: int) -> BaseException | None:
        cfg = self.w.cfg
        if cfg.equal_steps:
            return None
        return RuntimeError(
            f"rank {self.w.rank} ran {self.mb.num_steps} steps in epoch {epoch} with equal_steps=False; workers "
            f"with a different step count issued different collectives (a gradient all-reduce met an "
            f"end-of-epoch or sampling call, or nobody), so this one waited until the {cfg.timeout_s:g} s "
            f"timeout: the uneven-inputs hang of DDP/DistDGL. Fix: equal_steps=True (every worker runs "
            f"the maximum step count, zero-weight steps where its seeds ran out). Cause: {error}")


register_execution(Minibatch.name, Minibatch, builtin=True)
