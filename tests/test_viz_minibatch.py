"""Mini-batch figures: exact bar geometry from step records, the cache sweep panels, placement colouring."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch_geometric.data import Data

from dgnn_lab.graph import to_undirected
from dgnn_lab.partition import partition
from dgnn_lab.sampling import NeighborLoader
from dgnn_lab.viz.minibatch import (
    PLACEMENT_COLORS,
    PLACEMENT_NAMES,
    STAGES,
    cache_sweep_figure,
    has_steps,
    placement_groups,
    placement_tree_figure,
    stage_timeline_figure,
    stage_totals_figure,
    step_summary,
)


def _steps(rank: int, epoch: int, n: int, timed: bool = False) -> list[dict]:
    out = []
    for k in range(n):
        r = {"type": "step", "rank": rank, "epoch": epoch, "step": k, "sample_s": 0.1 + k, "fetch_s": 0.2,
             "train_s": 0.3 * (rank + 1), "wait_s": 0.05, "remote_requests": 1, "remote_rows_fetched": 10 + k,
             "cache_hits": 3, "cache_lookups": 12}
        if timed:  # pipelined: step k+1 is prepared while step k trains (wall clock, the worker's own origin)
            t = 1000.0 + k
            r.update(sample_s=0.4, fetch_s=0.4, train_s=0.9, wait_s=0.1,
                     sample_t0=t, fetch_t0=t + 0.4, train_t0=t + 1.0, wait_t0=t + 1.8)
        out.append(r)
    return out


def test_sequential_timeline_lays_stages_end_to_end():
    recs = _steps(0, 0, 3) + _steps(1, 0, 3) + _steps(0, 1, 2) + [{"type": "epoch", "rank": 0, "epoch": 0}]
    assert has_steps(recs) and not has_steps([{"type": "epoch"}])
    fig = stage_timeline_figure(recs, world_size=2, last_epochs=2)
    assert [t.name for t in fig.data] == list(STAGES)
    sample, fetch, train, wait = fig.data
    # worker 0: epoch 0 steps 0..2 then epoch 1 steps 0..1; each step: sample, fetch, train, wait end to end
    w0 = [i for i, y in enumerate(sample.y) if y == "worker 0"]
    assert len(w0) == 5
    t = 0.0
    for j, i in enumerate(w0):
        step = [0, 1, 2, 0, 1][j]
        assert sample.base[i] == pytest.approx(t) and sample.x[i] == pytest.approx(0.1 + step)
        assert fetch.base[i] == pytest.approx(t + 0.1 + step)
        # wait_s is the end of train_s (the all-reduce): train 0.25 s then wait 0.05 s
        assert train.base[i] == pytest.approx(t + 0.3 + step) and train.x[i] == pytest.approx(0.25)
        assert wait.base[i] == pytest.approx(t + 0.55 + step) and wait.x[i] == pytest.approx(0.05)
        t += 0.6 + step
    assert list(fig.layout.yaxis.categoryarray) == ["worker 0", "worker 1"]
    # only the last epoch by default; the figure keeps its four traces with no steps at all
    assert len(stage_timeline_figure(recs).data[0].base) == 2
    empty = stage_timeline_figure([])
    assert [t.name for t in empty.data] == list(STAGES) and len(empty.data[0].x) == 0
    with pytest.raises(ValueError, match="last_epochs"):
        stage_timeline_figure(recs, last_epochs=0)


def test_timed_records_draw_prepare_and_train_lanes_where_they_ran():
    fig = stage_timeline_figure(_steps(0, 0, 3, timed=True), world_size=1)
    sample, fetch, train, wait = fig.data
    assert list(sample.base) == pytest.approx([0.0, 1.0, 2.0])
    assert list(fetch.base) == pytest.approx([0.4, 1.4, 2.4]) and list(fetch.x) == pytest.approx([0.4] * 3)
    assert list(train.base) == pytest.approx([1.0, 2.0, 3.0])
    assert list(wait.base) == pytest.approx([1.8, 2.8, 3.8])
    assert set(sample.y) == set(fetch.y) == {"worker 0 · prepare"}
    assert set(train.y) == set(wait.y) == {"worker 0 · train"}
    assert list(fig.layout.yaxis.categoryarray) == ["worker 0 · prepare", "worker 0 · train"]
    # step k+1's sampling starts when step k's training does: the overlap is visible as stacked lanes
    assert sample.base[1] == pytest.approx(train.base[0])
    # prepare k+1 (k+1 .. k+1.8) overlaps train+wait k (k+1 .. k+1.9) for 0.8 s, twice
    assert "overlapped training for 1.600 s (pipelined)" in fig.layout.title.text
    seq = _steps(0, 0, 2, timed=True)
    for k, r in enumerate(seq):  # sequential: prepare, then train, 2 s per step
        r.update(sample_t0=2.0 * k, fetch_t0=2.0 * k + 0.4, train_t0=2.0 * k + 0.8, wait_t0=2.0 * k + 1.6)
    assert "took turns" in stage_timeline_figure(seq).layout.title.text


def test_step_summary_and_totals():
    recs = _steps(0, 0, 3) + _steps(1, 0, 3)
    s = step_summary(recs)
    assert s["rank"].tolist() == [0, 1] and s["steps"].tolist() == [3, 3]
    assert s["remote_rows_fetched"].tolist() == [33, 33]
    assert s["cache_hit_rate"].tolist() == pytest.approx([9 / 36, 9 / 36])
    assert s["sample_s"].tolist() == pytest.approx([3.3, 3.3])
    epochs = [{"type": "epoch", "rank": r, "epoch": 0, "epoch_s": 4.0} for r in (0, 1)]
    fig = stage_totals_figure({"off": recs + epochs, "on": recs})
    assert [t.name for t in fig.data] == [*STAGES, "wall time (epochs)"]
    assert fig.data[2].y[0] == pytest.approx((0.75 + 1.65) / 2)  # train_s less wait_s, mean of the workers
    assert fig.data[-1].y[0] == pytest.approx(4.0) and fig.data[-1].y[1] is None


def test_cache_sweep_figure():
    table = pd.DataFrame({"policy": ["none", "degree", "degree", "presample", "presample"],
                          "cache_size": [0.0, 0.1, 0.5, 0.1, 0.5], "hit_rate": [0.0, 0.2, 0.6, 0.3, 0.7],
                          "bytes_fetched": [1000, 800, 400, 700, 300]})
    fig = cache_sweep_figure(table)
    names = [t.name for t in fig.data]
    assert names == ["degree", "degree", "presample", "presample"]
    assert list(fig.data[0].y) == pytest.approx([20.0, 60.0]) and list(fig.data[3].y) == [700, 300]
    assert fig.layout.shapes[0].y0 == 1000  # the no-cache baseline
    with pytest.raises(ValueError, match="hit_rate"):
        cache_sweep_figure(table.drop(columns="hit_rate"))


def test_placement_groups_and_tree():
    n = 80
    i = torch.arange(n)
    ei = to_undirected(torch.stack([torch.cat([i, i]), torch.cat([(i + 1) % n, (i + 3) % n])]), n)  # a banded ring
    data = Data(edge_index=ei, num_nodes=n)
    plan = partition(data, 3, "metis", seed=0, hops=1)
    groups = placement_groups(plan, 1)
    part = plan.parts[1]
    assert set(torch.nonzero(groups == 0).reshape(-1).tolist()) == set(part.owned.tolist())
    assert set(torch.nonzero(groups == 1).reshape(-1).tolist()) == set(part.halo().tolist())
    assert int((groups == 2).sum()) == n - part.owned.numel() - part.halo().numel() > 0
    src, dst = ei
    edge_cut = (groups[src] != 0) & (groups[dst] == 0)
    seeds = torch.unique(dst[edge_cut])[:4]  # owned nodes at the partition's border
    batch = next(iter(NeighborLoader(data, [-1, -1, -1, -1], batch_size=4, input_nodes=seeds, seed=0)))
    fig = placement_tree_figure(batch, plan, 1)
    drawn = {t.name: len(t.x) for t in fig.data[1:]}
    assert set(drawn) == set(PLACEMENT_NAMES)  # 4 full hops from one seed leave the 1-hop halo
    tree_groups = groups[torch.tensor([int(v) for t in fig.data[1:] for v, *_ in t.customdata])]
    assert [int((tree_groups == k).sum()) for k in range(3)] == [drawn[n] for n in PLACEMENT_NAMES]
    colors = {t.name: t.marker.color for t in fig.data[1:]}
    assert colors == dict(zip(PLACEMENT_NAMES, PLACEMENT_COLORS, strict=True))  # fixed per category
    assert f"seed {int(seeds[0])}" in fig.layout.title.text
    with pytest.raises(ValueError, match="rank must be in"):
        placement_groups(plan, 3)


def test_dashboard_adds_the_stage_timeline_only_for_step_records():
    from dgnn_lab.widgets.dashboard import Dashboard
    from tests.test_viz_training import fake_run_records

    plain = Dashboard(fake_run_records(2, epochs=2), static=True)
    plain.wait(timeout=60)
    assert set(plain.figures()) == {"curves", "phases", "bytes", "timeline", "work"}
    recs = fake_run_records(2, epochs=2)
    steps = _steps(0, 1, 3) + _steps(1, 1, 3)
    live = Dashboard(iter(recs[:3] + steps + recs[3:]), static=False)
    live.wait(timeout=60)
    figs = live.figures()
    assert list(figs) == ["curves", "phases", "work", "bytes", "timeline", "stages"]
    widget = live.figure_widgets["stages"]
    assert [t.name for t in widget.data] == list(STAGES)
    assert list(widget.data[2].x) == pytest.approx([0.25] * 3 + [0.55] * 3)  # train_s - wait_s, both workers
    assert [type(c).__name__ for c in live._grid.children].count("FigureWidget") == 6
