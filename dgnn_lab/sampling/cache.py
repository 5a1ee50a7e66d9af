"""Static feature caches for distributed mini-batch training: keep some *remote* nodes' feature rows locally.

A worker training on its partition needs features of sampled input nodes that other workers own; every miss
is a row over the network. A static cache, filled once before training, holds the rows most likely to be asked
for, chosen by one of two policies from the literature:

* ``degree`` (PaGraph, Lin et al. SoCC'20): the highest in-degree remote nodes. High in-degree nodes are the
  neighbours of many nodes, so neighbour sampling reaches them often; a cheap proxy needing only the graph.
* ``presample`` (GNNLab, Yang et al. EuroSys'22): run the sampler for a few epochs' worth of seed batches
  *before* training and cache the nodes that were sampled most often. It measures the real access pattern
  (fanouts, seed split, the partition), so it wins where degree is a poor proxy.
* ``none``: no cache (the baseline).

A policy of your own is one method: subclass :class:`CachePolicy`, override :meth:`CachePolicy.score` (a score
per node; the cache keeps the highest-scored candidates), and pass the class as ``cache=`` or register it
with :func:`register_cache_policy`.

The capacity is a fraction of the *candidate* remote nodes (those this worker could ever need: e.g. the
remote nodes within L hops of its seeds), ``round(fraction * len(candidates))`` rows. Filling the cache is
itself a fetch from the owners, counted by the communicator under ``cache_fill_*`` so the one-off cost is
reported apart from the per-step training fetches. A cache never changes what a fetch returns, only where
the rows come from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from dgnn_lab.registry import Registry

CACHE_POLICIES = ("none", "degree", "presample")

__all__ = ["CACHE_POLICIES", "CACHE_REGISTRY", "CachePolicy", "FeatureCache", "build_cache", "check_cache_fraction",
           "check_cache_policy", "presample_counts", "register_cache_policy", "select_cached"]


class FeatureCache:
    """Feature rows of some remote nodes, looked up by global id (sorted ids, binary search).

    ``ids`` global node ids (any order, unique), ``rows`` their features (``rows[i]`` belongs to ``ids[i]``).
    ``fill_stats`` holds the fetch statistics of the fill (rows, requests), when built by :func:`build_cache`.
    """

    def __init__(self, ids: Tensor, rows: Tensor, policy: str = "static", capacity: int | None = None,
                 num_candidates: int | None = None) -> None:
        ids = torch.as_tensor(ids).long().reshape(-1)
        if rows.dim() != 2 or rows.shape[0] != ids.numel():
            raise ValueError(f"FeatureCache: rows must be 2-D with one row per id; got {tuple(rows.shape)} for "
                             f"{ids.numel()} ids")
        order = torch.argsort(ids)
        self.ids = ids[order]
        if self.ids.numel() > 1 and bool((self.ids[1:] == self.ids[:-1]).any()):
            raise ValueError("FeatureCache: ids must be unique")
        self.rows = rows[order]
        self.policy = policy
        self.capacity = int(self.ids.numel() if capacity is None else capacity)
        self.num_candidates = num_candidates
        self.fill_stats: dict = {}

    def __len__(self) -> int:
        return int(self.ids.numel())

    @property
    def nbytes(self) -> int:
        """Memory the cached rows take (what the cache costs)."""
        return int(self.rows.numel() * self.rows.element_size())

    def lookup(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """``(hit_mask, rows)``: which of ``ids`` are cached, and the rows of the hits, in the order of
        ``ids[hit_mask]``."""
        ids = torch.as_tensor(ids).long().reshape(-1)
        if self.ids.numel() == 0 or ids.numel() == 0:
            return torch.zeros(ids.numel(), dtype=torch.bool), self.rows[:0]
        pos = torch.searchsorted(self.ids, ids).clamp(max=self.ids.numel() - 1)
        hit = self.ids[pos] == ids
        return hit, self.rows[pos[hit]]

    def __repr__(self) -> str:
        return (f"FeatureCache(policy={self.policy!r}, rows={len(self)}, capacity={self.capacity}, "
                f"nbytes={self.nbytes})")


class CachePolicy:
    """Which remote rows a static cache keeps. **The extension point is** :meth:`score`. Keyword options
    become attributes; ``needs_presample = True`` asks the trainer to pre-sample one epoch first (GNNLab)."""

    name = "policy"
    needs_presample = False

    def __init__(self, **options: Any) -> None:
        self.options = dict(options)
        for key, value in options.items():
            setattr(self, key, value)

    def score(self, *, candidate_ids: Tensor, degree: Tensor | None, presample_counts: Tensor | None,
              num_nodes: int) -> Tensor:
        """A score per node (indexed by global id, ``num_nodes`` entries): the cache keeps the ``capacity``
        highest-scored ``candidate_ids`` (ties to the smaller id)."""
        raise NotImplementedError


class NoCache(CachePolicy):
    """No cache: every remote row is fetched from its owner."""

    name = "none"


class DegreePolicy(CachePolicy):
    """PaGraph: the highest in-degree remote nodes."""

    name = "degree"

    def score(self, *, candidate_ids, degree, presample_counts, num_nodes):
        if degree is None:
            raise ValueError("cache policy 'degree' needs degree= (in-degree per global node id)")
        return torch.as_tensor(degree)


class PresamplePolicy(CachePolicy):
    """GNNLab: the nodes sampled most often in one pre-sampled epoch."""

    name = "presample"
    needs_presample = True

    def score(self, *, candidate_ids, degree, presample_counts, num_nodes):
        if presample_counts is None:
            raise ValueError("cache policy 'presample' needs presample_counts= (from presample_counts(...))")
        return torch.as_tensor(presample_counts)


#: The cache-policy axis: ``register_cache_policy("mine", MyPolicy)``.
CACHE_REGISTRY = Registry("cache policy", base=CachePolicy, hint="override score()",
                          builtins=(NoCache, DegreePolicy, PresamplePolicy))
register_cache_policy = CACHE_REGISTRY.register


def cache_policy(spec: Any) -> CachePolicy:
    """The policy object ``spec`` names (a name, ``module:attribute``, ``{"name", **options}``, class or
    instance)."""
    return CACHE_REGISTRY.build(spec)


def check_cache_policy(policy: Any) -> Any:
    """``policy`` if it names a cache policy, else ``ValueError`` listing the allowed names."""
    try:
        CACHE_REGISTRY.resolve(policy)
    except ValueError:
        raise ValueError(f"cache policy must be one of {tuple(CACHE_REGISTRY.names())} (or a CachePolicy subclass "
                         f"or 'module:attribute'), got {policy!r}") from None
    return policy


def check_cache_fraction(fraction: float) -> float:
    ok = isinstance(fraction, (int, float)) and not isinstance(fraction, bool) and math.isfinite(fraction)
    if not ok or not 0.0 <= float(fraction) <= 1.0:
        raise ValueError(f"cache capacity_fraction must be a number in [0, 1] (a fraction of the candidate remote "
                         f"nodes), got {fraction!r}")
    return float(fraction)


def select_cached(candidate_ids: Tensor, score: Tensor, capacity: int) -> Tensor:
    """The ``capacity`` candidates with the highest ``score`` (a per-node score indexed by global id); ties go
    to the smaller id, so every run picks the same set."""
    cand = torch.unique(torch.as_tensor(candidate_ids).long().reshape(-1))  # sorted ascending
    if capacity <= 0 or cand.numel() == 0:
        return cand[:0]
    s = torch.as_tensor(score)[cand].to(torch.float64)
    order = torch.sort(-s, stable=True).indices  # stable: equal scores keep ascending id order
    return cand[order[:capacity]]


def build_cache(policy: Any, *, comm, x_owned: Tensor, owned_ids: Tensor, assignment: Tensor,
                capacity_fraction: float, candidate_ids: Tensor, degree: Tensor | None = None,
                presample_counts: Tensor | None = None, codec: Any = None) -> FeatureCache | None:
    """Choose and fill this worker's cache. COLLECTIVE (every worker calls it, with the same policy).

    ``candidate_ids``: remote nodes this worker might need (ids it owns are dropped, duplicates merged);
    capacity ``round(capacity_fraction * len(candidates))``. ``degree`` (policy ``degree``) and
    ``presample_counts`` (policy ``presample``, from :func:`presample_counts`) are per-node scores indexed by
    global id. ``none`` returns ``None``. The rows come from their owners in one fetch (purpose
    ``cache_fill``, in ``codec``'s wire format if given), whose statistics land in ``cache.fill_stats``.
    """
    from dgnn_lab.sampling.feature_store import DistFeatureStore

    pol = cache_policy(check_cache_policy(policy))
    fraction = check_cache_fraction(capacity_fraction)
    if isinstance(pol, NoCache):
        return None
    assignment = torch.as_tensor(assignment).long()
    cand = torch.unique(torch.as_tensor(candidate_ids).long().reshape(-1))
    cand = cand[assignment[cand] != comm.rank]
    capacity = int(round(fraction * cand.numel()))
    score = torch.as_tensor(pol.score(candidate_ids=cand, degree=degree, presample_counts=presample_counts,
                                      num_nodes=int(assignment.numel())))
    if score.numel() != assignment.numel():
        raise ValueError(f"the {pol.name} score must have one entry per node ({assignment.numel()}), "
                         f"got {score.numel()}")
    chosen = select_cached(cand, score, capacity)
    store = DistFeatureStore(comm, x_owned, owned_ids, assignment, cache=None, purpose="cache_fill", codec=codec)
    rows = store.fetch(chosen)
    cache = FeatureCache(chosen, rows, policy=pol.name, capacity=capacity, num_candidates=int(cand.numel()))
    cache.fill_stats = store.take_stats()
    return cache


def presample_counts(sample_inputs: Callable[[Tensor], Tensor], seed_batches: Iterable[Tensor],
                     num_nodes: int) -> Tensor:
    """How often each node was an input of a sampled batch: run ``sample_inputs(seeds)`` (which returns the
    global ids a batch reads features of, e.g. a sample's ``n_id``) on each of ``seed_batches``; GNNLab's
    pre-sampling. A node counts once per batch. Returns an int64 tensor of length ``num_nodes``."""
    counts = torch.zeros(int(num_nodes), dtype=torch.long)
    for seeds in seed_batches:
        ids = torch.unique(torch.as_tensor(sample_inputs(torch.as_tensor(seeds).long())).long().reshape(-1))
        if ids.numel():
            counts += torch.bincount(ids, minlength=int(num_nodes))
    return counts
