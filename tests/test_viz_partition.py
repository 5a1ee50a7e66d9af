"""Partition figures and the partition-explorer widget: built headless, their data checked against the plan."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dgnn_lab.datasets import load
from dgnn_lab.partition import partition, partition_stats
from dgnn_lab.viz.graph import graph_key, graph_layout, part_colors, partition_graph_figure
from dgnn_lab.viz.partition import (
    balance_figure,
    boundary_heatmap,
    halo_growth_figure,
    method_comparison_figure,
)


@pytest.fixture(scope="module")
def karate():
    return load("karate")


def test_layout_is_cached_and_deterministic(karate):
    a = graph_layout(karate.edge_index, 34)
    assert graph_layout(karate.edge_index, 34) is a  # cached object, not recomputed
    assert a.shape == (34, 2) and np.abs(a).max() <= 1.0 + 1e-9
    assert graph_key(karate.edge_index, 34) != graph_key(karate.edge_index[:, :-2], 34)
    from dgnn_lab.viz import graph as vg

    vg._LAYOUTS.clear()
    assert np.array_equal(graph_layout(karate.edge_index, 34), a)


def test_graph_figure_edge_cut(karate):
    plan = partition(karate, 3, "metis", hops=2)
    fig = partition_graph_figure(plan, karate, part=1)
    assert isinstance(fig, go.Figure) and len(fig.data) == 5
    st = partition_stats(plan, karate)
    edges_in, cut, nodes, halo, owned = fig.data
    assert np.isnan(np.asarray(cut.x, dtype=float)[2::3]).all()
    assert len(cut.x) // 3 == st.edge_cut and (len(edges_in.x) + len(cut.x)) // 3 == 78
    assert list(nodes.marker.color) == plan.assignment.tolist()
    assert len(halo.x) == plan.parts[1].halo(2).numel()
    assert len(owned.x) == plan.parts[1].num_owned
    faded = np.asarray(nodes.marker.opacity) < 1
    seen = set(plan.parts[1].owned.tolist()) | set(plan.parts[1].halo(2).tolist())
    assert set(np.flatnonzero(~faded).tolist()) == seen
    assert len(partition_graph_figure(plan, karate, part=1, hops=1).data[3].x) == plan.parts[1].halo(1).numel()


def test_graph_figure_vertex_cut(karate):
    plan = partition(karate, 2, "hdrf")
    fig = partition_graph_figure(plan, karate, part=0)
    assert len(fig.data[3].x) == plan.parts[0].mirrors.numel()
    assert "mirrors" in fig.data[3].name


def test_graph_figure_errors(karate):
    plan = partition(karate, 2, "range")
    with pytest.raises(ValueError, match="part must be in 0..1"):
        partition_graph_figure(plan, karate, part=2)
    big = load("csbm", num_nodes=6000, avg_degree=2.0)
    with pytest.raises(ValueError, match="drawing is limited to 5,000"):
        partition_graph_figure(partition(big, 2, "range"), big)


def test_stat_figures(karate):
    plan = partition(karate, 3, "metis", hops=2)
    st = partition_stats(plan, karate)
    bal = balance_figure(st)
    assert [t.name for t in bal.data] == ["owned nodes", "2-hop halo nodes", "local edges", "training nodes"]
    assert list(bal.data[0].customdata) == [r["owned"] for r in st.per_part]
    assert np.mean(bal.data[0].y) == pytest.approx(1.0)
    heat = boundary_heatmap(plan)
    assert np.array_equal(np.array(heat.data[0].z), plan.boundary_sizes().numpy())
    deep = partition(karate, 3, "metis", hops=3)
    halo = halo_growth_figure(deep, karate, max_hops=3)
    assert [list(t.y) for t in halo.data] == [[0] + [p.halo(h).numel() for h in (1, 2, 3)] for p in deep.parts]
    comp = method_comparison_figure([st, partition_stats(partition(karate, 3, "random"), karate)])
    assert list(comp.data[0].x) == ["metis", "random"]
    assert len(part_colors(3)) == 3 and len(set(part_colors(14))) == 14


@pytest.mark.slow
def test_explorer_builds_and_redraws():
    from dgnn_lab.widgets.partition_explorer import PartitionExplorer

    ex = PartitionExplorer({"karate": {}, "csbm": {"num_nodes": 200}}, dataset="karate", num_parts=2,
                           method="metis", hops=1)
    assert ex.plan.method == "metis" and len(ex.graph.data) == 5
    before = list(ex.graph.data[2].marker.color)
    ex.method.value = "random"
    assert ex.plan.method == "random" and list(ex.graph.data[2].marker.color) == ex.plan.assignment.tolist()
    assert list(ex.graph.data[2].marker.color) != before
    ex.parts.value = 4
    assert ex.part.max == 3 and len(ex.heatmap.data[0].z) == 4
    ex.part.value = 3
    assert len(ex.graph.data[3].x) == ex.plan.parts[3].halo(1).numel()
    ex.hops.value = 2
    assert ex.stats.hops == 2 and "2-hop" in ex.balance.data[1].name
    assert ex.balance_train.disabled
    ex.method.value = "metis"
    assert not ex.balance_train.disabled
    ex.balance_train.value = True
    assert ex.plan.options["balance"] == ["train"]
    ex.method.value = "dbh"
    assert ex.plan.kind == "vertex-cut" and "mirrors" in ex.graph.data[3].name
    ex.dataset.value = "csbm"
    assert ex.plan.num_nodes == 200 and len(ex.graph.data[2].x) == 200
    assert "edge cut" in ex.table.value and "redrawn" in ex.status.value
    with pytest.raises(ValueError, match="unknown dataset 'x'"):
        PartitionExplorer({"karate": {}}, dataset="x")
