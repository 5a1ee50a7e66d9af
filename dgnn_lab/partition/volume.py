"""Partitioning for minimal communication volume: Mt-KaHyPar's connectivity (km1) objective on a hypergraph.

Why not the edge cut: a synchronous full-graph layer does not pay per cut edge. Part ``q`` receives the row of
every node ``u`` it does not own that has an edge ``u -> w`` into ``q`` *once*, however many of ``q``'s nodes
``u`` points at. The bill is the halo volume ``sum_q |1-hop halo of q|`` (``partition_stats(...).comm_volume``),
and a node with ten cut edges into one other part costs one row, not ten. METIS cannot see that difference.

The hypergraph makes it exact: one net per node ``v``, ``e_v = {v} ∪ {w : v -> w}`` (messages flow
``src -> dst`` along ``edge_index``). If the pins of ``e_v`` lie in ``λ(e_v)`` parts, then ``λ(e_v) - 1`` other
parts need ``v``'s row, so the connectivity objective ``km1 = sum_v (λ(e_v) - 1)`` *is* the halo volume
(Çatalyürek & Aykanat's column-net model for sparse matrix-vector products).

How: by default METIS's min-cut partition is the start and Mt-KaHyPar improves it for km1 with V-cycles
(coarsen within the parts, refine on the way back up), so the volume never exceeds METIS's, at a fraction of
the cost of partitioning from scratch (``start="scratch"``, which sometimes finds a lower volume on small
graphs and depends more on the seed on large ones). Either is far slower than METIS alone: the column-net
hypergraph of a random-like graph is hard to coarsen. Figures: ``benchmarks/bench_volume.py`` and the README.

Determinism: Mt-KaHyPar's ``DETERMINISTIC`` preset gives the same partition for the same input on any number
of threads (tested). Its own seed cannot be set from Python (``mtkahypar.set_seed`` is overwritten by the
context's seed, which the Python API does not expose), so ``seed`` seeds METIS's start, or, from scratch,
relabels the nodes with a seeded permutation.

Balance: Mt-KaHyPar has a single weight constraint. ``balance=("train", "degree")`` becomes one weight per node,
see :func:`combined_node_weights`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from dgnn_lab.partition.metis import _kway_ctypes, balance_weights, metis_assignment, symmetric_csr

#: Mt-KaHyPar presets ``preset=`` accepts; only the first gives the same partition for the same seed.
PRESETS = ("deterministic", "default", "quality")
#: Where the km1 optimisation starts (``start=``).
STARTS = ("metis", "scratch")

_INITIALIZER = None
_THREADS = 0


def _mtkahypar(threads: int | None):
    """The module and its process-wide initializer (Mt-KaHyPar's thread pool is created once per process)."""
    global _INITIALIZER, _THREADS
    try:
        import mtkahypar
    except ImportError:
        raise ImportError("partition method 'volume' needs Mt-KaHyPar: pip install mtkahypar") from None
    if _INITIALIZER is None:
        _THREADS = max(1, int(threads) if threads else len(os.sched_getaffinity(0)))
        _INITIALIZER = mtkahypar.initialize(_THREADS, False)
    return mtkahypar, _INITIALIZER


def combined_node_weights(balance: Sequence[str], num_nodes: int, in_degree: np.ndarray,
                          train_mask: Tensor | None) -> np.ndarray:
    """One integer weight per node for ``balance`` keys under a single weight constraint.

    Each key's column of :func:`~dgnn_lab.partition.metis.balance_weights` (``train``: 1 per training node,
    ``degree``: the in-degree, the aggregation work ``stats`` balances) is normalised to the same total
    (``num_nodes``; a column summing to 0 is dropped), the columns are added and the sum is scaled to integers
    (at most 100 per unit, so the total fits Mt-KaHyPar's 32-bit weights), every node weighing at least 1.

    Unlike METIS's constraints, the node count is not balanced alongside: with one key, that key is balanced
    (within ``eps``) and node counts are free; with several, only their sum is balanced, so a part may hold
    more of one key if it holds less of another. A key concentrated in one community (all training nodes in
    one part of the graph) can then leave node counts far from balanced; METIS's separate constraints keep both.
    """
    cols = balance_weights(balance, num_nodes, in_degree, train_mask)[:, 1:].astype(np.float64)
    sums = cols.sum(axis=0)
    cols = cols[:, sums > 0] * (num_nodes / sums[sums > 0])
    unit = int(np.clip((2**30) // max(1, num_nodes * cols.shape[1]), 1, 100))
    return np.maximum(1, np.rint(cols.sum(axis=1) * unit)).astype(np.int64)


def volume_nets(edge_index: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(net_nodes, indptr, pins)``: net ``i`` belongs to node ``net_nodes[i]`` and has pins
    ``pins[indptr[i]:indptr[i+1]]`` = the node itself first, then its distinct out-neighbours (ascending).

    Self-loops and duplicate edges are dropped; nodes without out-neighbours get no net (it could never be cut).
    """
    src, dst = edge_index[0], edge_index[1]
    keep = src != dst
    keys = src[keep] * num_nodes + dst[keep]
    if keys.numel() > 1 and not bool((keys[1:] > keys[:-1]).all()):
        keys = torch.unique(keys)  # sorted, distinct
    s, d = keys // num_nodes, keys % num_nodes
    out_deg = torch.bincount(s, minlength=num_nodes)
    net_nodes = (out_deg > 0).nonzero().flatten()
    sizes = out_deg[net_nodes] + 1
    indptr = torch.zeros(net_nodes.numel() + 1, dtype=torch.long)
    torch.cumsum(sizes, 0, out=indptr[1:])
    pins = torch.empty(int(indptr[-1]), dtype=torch.long)
    head = torch.zeros(pins.numel(), dtype=torch.bool)
    head[indptr[:-1]] = True
    pins[head] = net_nodes
    pins[~head] = d
    return net_nodes.numpy(), indptr.numpy(), pins.numpy()


def _metis_start(edge_index: Tensor, num_nodes: int, num_parts: int, seed: int, eps: float,
                 node_weights: np.ndarray | None) -> np.ndarray:
    """METIS k-way (min-cut) under the same single weight constraint and imbalance as the volume run."""
    ufactor = max(1, int(round(eps * 1000)))
    if node_weights is None:
        return metis_assignment(edge_index, num_nodes, num_parts, seed=seed, ufactor=ufactor).numpy()
    xadj, adjncy, _ = symmetric_csr(edge_index, num_nodes)
    return _kway_ctypes(xadj, adjncy, num_parts, np.asarray(node_weights, dtype=np.int64)[:, None],
                        {"seed": int(seed), "ufactor": ufactor})


def volume_assignment(
    edge_index: Tensor,
    num_nodes: int,
    num_parts: int,
    *,
    seed: int = 0,
    eps: float = 0.03,
    start: str = "metis",
    vcycles: int = 1,
    preset: str = "deterministic",
    node_weights: np.ndarray | Tensor | None = None,
    threads: int | None = None,
    notes: list[str] | None = None,
) -> Tensor:
    """k-way assignment minimising the 1-hop halo volume (Mt-KaHyPar, km1), deterministic for ``seed``.

    ``eps``: allowed imbalance, every part's weight at most ``(1 + eps)`` times the mean. ``start``: where
    Mt-KaHyPar starts, ``"metis"`` (METIS's min-cut partition, seeded by ``seed``, then ``vcycles`` km1
    V-cycles: never worse than METIS's volume) or ``"scratch"`` (Mt-KaHyPar's own multilevel partitioning, on
    node ids relabelled by a permutation drawn from ``seed``, then ``vcycles`` V-cycles). ``preset``: one of
    :data:`PRESETS`; only ``"deterministic"`` is deterministic. ``node_weights``: one positive integer per node
    (default 1: balance node counts). ``threads``: Mt-KaHyPar's thread pool, fixed by the first call in a
    process (default: the CPUs this process may use); the deterministic preset's result does not depend on it.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown Mt-KaHyPar preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    if start not in STARTS:
        raise ValueError(f"unknown start {start!r}; valid starts: {', '.join(STARTS)}")
    if num_parts == 1:
        return torch.zeros(num_nodes, dtype=torch.long)
    mtk, mt = _mtkahypar(threads)
    if threads and int(threads) != _THREADS and notes is not None:
        notes.append(f"volume: threads={threads} ignored; Mt-KaHyPar's pool already has {_THREADS} threads "
                     "in this process")
    weights = None if node_weights is None else np.asarray(node_weights, dtype=np.int64)

    if start == "scratch":  # the preset's own seed is out of reach from Python: relabel the nodes instead
        order = torch.randperm(num_nodes, generator=torch.Generator().manual_seed(int(seed)))
    else:
        order = torch.arange(num_nodes)
    new_id = torch.empty(num_nodes, dtype=torch.long)
    new_id[order] = torch.arange(num_nodes)
    _, indptr, pins = volume_nets(new_id[edge_index] if start == "scratch" else edge_index, num_nodes)
    flat = pins.tolist()
    bounds = indptr.tolist()
    nets = [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    del flat

    if preset != "deterministic" and notes is not None:
        notes.append(f"volume: preset={preset!r} is not deterministic: the same seed may give another partition")
    ctx = mt.context_from_preset(getattr(mtk.PresetType, preset.upper()))
    ctx.logging = False
    ctx.set_partitioning_parameters(int(num_parts), float(eps), mtk.Objective.KM1)
    if weights is None:
        hg = mt.create_hypergraph(ctx, num_nodes, len(nets), nets)
    else:
        hg = mt.create_hypergraph(ctx, num_nodes, len(nets), nets, weights[order.numpy()].tolist(),
                                  [1] * len(nets))
    del nets
    if start == "metis":
        initial = _metis_start(edge_index, num_nodes, num_parts, int(seed), float(eps), weights)
        phg = hg.create_partitioned_hypergraph(ctx, int(num_parts), initial.tolist())  # (context, k, partition)
    else:
        phg = hg.partition(ctx)
    if vcycles:
        phg.improve_partition(ctx, int(vcycles))
    part_new = torch.as_tensor(np.asarray(phg.get_partition(), dtype=np.int64))
    if notes is not None:
        imbalance = phg.imbalance(ctx)
        if imbalance > eps + 1e-9:
            notes.append(f"volume: Mt-KaHyPar could not meet eps={eps}: the heaviest part is {imbalance:.1%} "
                         "above the mean weight")
    assignment = part_new[new_id]
    empty = (torch.bincount(assignment, minlength=num_parts) == 0).nonzero().flatten().tolist()
    if empty and notes is not None:
        notes.append(f"volume: part(s) {', '.join(map(str, empty))} left empty")
    return assignment
