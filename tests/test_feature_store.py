"""Distributed feature fetching and feature caches, through real worker processes: exact rows, exact counts."""

from __future__ import annotations

import pytest
import torch

from dgnn_lab.dist import Communicator, run
from dgnn_lab.sampling.cache import CACHE_POLICIES, FeatureCache, build_cache, presample_counts, select_cached
from dgnn_lab.sampling.feature_store import DistFeatureStore

N, D, P, STEPS = 240, 5, 3, 4
SCENARIOS = [("none", 0.0), ("degree", 0.0), ("degree", 0.5), ("degree", 1.0), ("presample", 0.3),
             ("presample", 1.0)]


def _world(world_size: int = P):
    """The data every worker (and the test) derives from seed 0: assignment, features, in-degrees."""
    g = torch.Generator().manual_seed(0)
    assignment = torch.randint(0, world_size, (N,), generator=g)
    x = torch.arange(N * D, dtype=torch.float32).reshape(N, D)  # distinct, exact rows
    degree = torch.randint(0, 50, (N,), generator=g)
    return assignment, x, degree


def _step_ids(rank: int, step: int) -> torch.Tensor:
    """What rank asks for at a step: random ids with duplicates; rank 0 asks for nothing at step 1."""
    if rank == 0 and step == 1:
        return torch.empty(0, dtype=torch.long)
    g = torch.Generator().manual_seed(100 * rank + step)
    return torch.randint(0, N, (40 + 10 * rank,), generator=g)


def _candidates(rank: int, assignment: torch.Tensor) -> torch.Tensor:
    """Candidate remote nodes: every remote id the steps ask for, plus a few never asked for."""
    ids = torch.cat([_step_ids(rank, s) for s in range(STEPS)] + [torch.arange(0, N, 7)])
    ids = torch.unique(ids)
    return ids[assignment[ids] != rank]


def fs_worker(ctx, config: dict) -> None:
    """Run every (policy, fraction) scenario: build the cache, fetch each step's ids, report what came back."""
    assignment, x, degree = _world(ctx.world_size)
    me = ctx.rank
    owned = torch.nonzero(assignment == me).reshape(-1)
    x_owned = x[owned]
    cand = _candidates(me, assignment)
    counts = presample_counts(lambda s: _step_ids(me, int(s[0])), [torch.tensor([s]) for s in range(STEPS)], N)
    results = []
    for policy, frac in SCENARIOS:
        ctx.comm.take_epoch_stats()
        cache = build_cache(policy, comm=ctx.comm, x_owned=x_owned, owned_ids=owned, assignment=assignment,
                            capacity_fraction=frac, candidate_ids=cand, degree=degree, presample_counts=counts)
        store = DistFeatureStore(ctx.comm, x_owned, owned, assignment, cache=cache)
        cached = set(cache.ids.tolist()) if cache is not None else set()
        steps = []
        for s in range(STEPS):
            ids = _step_ids(me, s)
            got = store.fetch(ids)
            remote = {int(v) for v in torch.unique(ids) if int(assignment[v]) != me}
            misses = remote - cached
            steps.append({"exact": bool(torch.equal(got, x[ids])), "shape": list(got.shape),
                          "stats": store.take_stats(), "remote": len(remote), "misses": len(misses),
                          "hits": len(remote & cached),
                          "owners_missed": len({int(assignment[v]) for v in misses}),
                          "local": int((assignment[torch.unique(ids)] == me).sum())})
        comm = ctx.comm.take_epoch_stats()
        results.append({"policy": policy, "fraction": frac, "steps": steps,
                        "cache_ids": sorted(cached), "fill": cache.fill_stats if cache is not None else None,
                        "bytes_recv": comm["bytes_recv"], "bytes_sent": comm["bytes_sent"]})
    ctx.emit({"type": "fs", "results": results, "candidates": cand.tolist(), "counts": counts.tolist()})


def _purpose_bytes(per_peer: dict, purpose: str) -> int:
    return sum(v.get(purpose, 0) for v in per_peer.values())


@pytest.fixture(scope="module")
def fs_run(tmp_path_factory):
    res = run("tests.test_feature_store:fs_worker", {}, P, run_dir=tmp_path_factory.mktemp("fs") / "r",
              timeout_s=60)
    assert res.status == "done"
    recs = {r["rank"]: r for r in res.records if r["type"] == "fs"}
    assert sorted(recs) == list(range(P))
    return recs


def test_fetched_rows_are_the_true_rows_with_and_without_every_cache(fs_run):
    for rank, rec in fs_run.items():
        for sc in rec["results"]:
            for s, st in enumerate(sc["steps"]):
                assert st["exact"], (rank, sc["policy"], sc["fraction"], s)
                assert st["shape"] == [_step_ids(rank, s).numel(), D]


def test_rows_requested_are_exactly_the_non_cached_remote_ids(fs_run):
    for rank, rec in fs_run.items():
        by = {(sc["policy"], sc["fraction"]): sc for sc in rec["results"]}
        base = sum(st["stats"]["remote_rows_fetched"] for st in by[("none", 0.0)]["steps"])
        assert base == sum(st["remote"] for st in by[("none", 0.0)]["steps"]) > 0
        for sc in rec["results"]:
            for st in sc["steps"]:
                s = st["stats"]
                assert s["remote_rows_fetched"] == st["misses"]
                assert s["remote_requests"] == st["owners_missed"]
                assert s["local_rows"] == st["local"]
                if sc["policy"] == "none":
                    assert s["cache_lookups"] == s["cache_hits"] == 0
                else:  # hit rate is measured: hits among the distinct remote ids looked up
                    assert s["cache_lookups"] == st["remote"] and s["cache_hits"] == st["hits"]
            fetched = sum(st["stats"]["remote_rows_fetched"] for st in sc["steps"])
            # the communicator counted exactly those rows, under fetch_resp, apart from the cache fill
            assert _purpose_bytes(sc["bytes_recv"], "fetch_resp") == fetched * D * 4
            n_cached = len(sc["cache_ids"])
            assert _purpose_bytes(sc["bytes_recv"], "cache_fill_resp") == n_cached * D * 4
            if sc["fill"] is not None:
                assert sc["fill"]["remote_rows_fetched"] == n_cached
            if sc["fraction"] > 0:
                assert fetched < base, (rank, sc["policy"], sc["fraction"])
        # capacity 0: an empty cache, the same traffic as none; capacity 1: every candidate, nothing fetched
        assert by[("degree", 0.0)]["cache_ids"] == []
        assert [st["stats"]["remote_rows_fetched"] for st in by[("degree", 0.0)]["steps"]] == \
            [st["stats"]["remote_rows_fetched"] for st in by[("none", 0.0)]["steps"]]
        for pol in ("degree", "presample"):
            assert by[(pol, 1.0)]["cache_ids"] == rec["candidates"]
            assert all(st["stats"]["remote_rows_fetched"] == 0 for st in by[(pol, 1.0)]["steps"])
            assert _purpose_bytes(by[(pol, 1.0)]["bytes_recv"], "fetch_resp") == 0


def test_degree_and_presample_caches_hold_the_top_scoring_candidates(fs_run):
    assignment, _, degree = _world()
    for rank, rec in fs_run.items():
        cand = torch.tensor(rec["candidates"])
        assert not bool((assignment[cand] == rank).any())
        by = {(sc["policy"], sc["fraction"]): sc for sc in rec["results"]}
        half = by[("degree", 0.5)]["cache_ids"]
        assert len(half) == round(0.5 * cand.numel())
        inside = degree[torch.tensor(half)]
        outside = degree[torch.tensor(sorted(set(cand.tolist()) - set(half)))]
        assert int(inside.min()) >= int(outside.max())
        counts = torch.tensor(rec["counts"])
        want = [_step_ids(rank, s) for s in range(STEPS)]
        assert counts.tolist() == [sum(int(v in set(w.tolist())) for w in want) for v in range(N)]
        pre = by[("presample", 0.3)]["cache_ids"]
        assert len(pre) == round(0.3 * cand.numel())
        rest = sorted(set(cand.tolist()) - set(pre))
        assert int(counts[torch.tensor(pre)].min()) >= int(counts[torch.tensor(rest)].max())


def test_single_worker_store_reads_locally():
    comm = Communicator(0, 1, "cpu", "gloo")
    x = torch.randn(10, 3, dtype=torch.float64)
    store = DistFeatureStore(comm, x, torch.arange(10), torch.zeros(10, dtype=torch.long))
    ids = torch.tensor([3, 3, 0, 9])
    assert torch.equal(store.fetch(ids), x[ids])
    assert store.take_stats()["local_rows"] == 3
    assert store.take_stats()["local_rows"] == 0  # reset by take_stats
    assert build_cache("none", comm=comm, x_owned=x, owned_ids=torch.arange(10),
                       assignment=torch.zeros(10, dtype=torch.long), capacity_fraction=0.5,
                       candidate_ids=torch.arange(10)) is None


def test_feature_cache_lookup_and_selection():
    cache = FeatureCache(torch.tensor([7, 2, 5]), torch.tensor([[70.0], [20.0], [50.0]]))
    hit, rows = cache.lookup(torch.tensor([5, 1, 7, 9, 2]))
    assert hit.tolist() == [True, False, True, False, True]
    assert rows.reshape(-1).tolist() == [50.0, 70.0, 20.0]
    assert cache.nbytes == 3 * 4 and len(cache) == 3
    # ties go to the smaller id; capacity 0 picks nothing
    score = torch.tensor([0, 5, 5, 1, 5])
    assert select_cached(torch.tensor([4, 2, 1, 3]), score, 2).tolist() == [1, 2]
    assert select_cached(torch.tensor([4, 2, 1, 3]), score, 0).tolist() == []
    counts = presample_counts(lambda s: torch.cat([s, s + 1]), [torch.tensor([0, 0]), torch.tensor([1])], 4)
    assert counts.tolist() == [1, 2, 1, 0]


@pytest.mark.parametrize("policy,fraction,match", [
    ("lru", 0.5, r"'lru'.*none.*degree.*presample|none.*degree.*presample.*'lru'"),
    ("degree", 1.5, "1.5"), ("degree", -0.1, "-0.1"), ("degree", float("nan"), "nan"), ("degree", True, "True"),
])
def test_bad_policy_or_fraction_is_a_clear_error(policy, fraction, match):
    with pytest.raises(ValueError, match=match):
        build_cache(policy, comm=None, x_owned=torch.zeros(1, 1), owned_ids=torch.arange(1),
                    assignment=torch.zeros(1, dtype=torch.long), capacity_fraction=fraction,
                    candidate_ids=torch.arange(1))
    assert CACHE_POLICIES == ("none", "degree", "presample")


def test_missing_score_is_a_clear_error():
    comm = Communicator(0, 1, "cpu", "gloo")
    kw = dict(comm=comm, x_owned=torch.zeros(2, 1), owned_ids=torch.arange(2), assignment=torch.zeros(2).long(),
              capacity_fraction=0.5, candidate_ids=torch.arange(2))
    with pytest.raises(ValueError, match="degree="):
        build_cache("degree", **kw)
    with pytest.raises(ValueError, match="presample_counts="):
        build_cache("presample", **kw)
