"""Figures about a partition's quality, as pure functions of plans and their statistics.

* :func:`balance_figure`: per-part owned nodes, halo, edges and training nodes relative to the mean
  (1.0 = perfectly balanced): the slowest worker sets the pace of every synchronous step.
* :func:`boundary_heatmap`: the ``P x P`` matrix of boundary-set sizes, i.e. the rows one synchronous
  full-graph layer sends from each part (row) to each other part (column): the communication matrix a
  training run will measure.
* :func:`halo_growth_figure`: how each part's halo grows with the number of hops (GNN layers).
* :func:`method_comparison_figure`: edge cut and replication of several partitions side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dgnn_lab.partition.plan import PartitionPlan
from dgnn_lab.partition.stats import PartitionStats, halo_growth
from dgnn_lab.viz.graph import part_colors

_BALANCE_SERIES = (("owned", "owned nodes"), ("halo", "halo nodes"), ("edges", "local edges"),
                   ("train", "training nodes"))


def balance_figure(stats: PartitionStats, *, height: int = 320) -> go.Figure:
    """Grouped bars: each part's load divided by the mean over parts, per quantity (hover: raw counts)."""
    fig = go.Figure()
    parts = [f"part {r['part']}" for r in stats.per_part]
    for key, label in _BALANCE_SERIES:
        raw = [r[key] for r in stats.per_part]
        mean = sum(raw) / len(raw) if raw else 0
        if key == "owned" and stats.kind == "vertex-cut":
            label = "masters"
        if key == "halo":
            label = "mirrors" if stats.kind == "vertex-cut" else f"{stats.hops}-hop halo nodes"
        rel = [v / mean if mean else 0.0 for v in raw]
        fig.add_trace(go.Bar(x=parts, y=rel, name=label, customdata=raw,
                             hovertemplate="%{x}: %{customdata:,} " + label + " (%{y:.2f} x mean)<extra></extra>"))
    fig.add_hline(y=1.0, line_dash="dash", line_color="gray")
    b = stats.balance

    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.2f}"

    fig.update_layout(
        barmode="group", height=height, margin={"l": 50, "r": 10, "t": 70, "b": 40},
        title=f"load per part / mean<br><sup>max/mean: nodes {f(b['nodes'])}, edges {f(b['edges'])}, "
              f"train {f(b['train'])}</sup>",
        yaxis_title="relative to mean", legend={"orientation": "h", "y": -0.2}, uirevision="balance",
    )
    return fig


def boundary_heatmap(plan: PartitionPlan, *, height: int = 320) -> go.Figure:
    """Rows sent per synchronous layer from part ``p`` (row) to part ``q`` (column)."""
    m = plan.boundary_sizes().tolist()
    labels = [str(p) for p in range(plan.num_parts)]
    total = sum(map(sum, m))
    fig = go.Figure(go.Heatmap(
        z=m, x=labels, y=labels, colorscale="Blues", text=m, texttemplate="%{text:,}" if plan.num_parts <= 16
        else None, hovertemplate="part %{y} sends %{z:,} rows to part %{x}<extra></extra>",
        colorbar={"title": "rows"}))
    fig.update_layout(
        height=height, margin={"l": 50, "r": 10, "t": 70, "b": 40},
        title=f"rows sent per layer: {total:,} in all<br><sup>sender row, receiver column</sup>",
        xaxis_title="receiver", yaxis_title="sender", yaxis_autorange="reversed", uirevision="heatmap",
    )
    return fig


def halo_growth_figure(plan: PartitionPlan, data: Any, *, max_hops: int = 4, height: int = 320) -> go.Figure:
    """Each part's ``L``-hop halo for ``L = 1..max_hops``, with its owned count for scale.

    An ``L``-layer GNN reads the ``L``-hop halo: the curve shows why deep full-graph GNNs end up reading most of
    the graph on every worker. For vertex-cut plans the halo is that of the master assignment.
    """
    growth = halo_growth(data, plan.assignment, plan.num_parts, max_hops)
    colors = part_colors(plan.num_parts)
    hops = list(range(0, max_hops + 1))
    fig = go.Figure()
    for p in range(plan.num_parts):
        owned = plan.parts[p].num_owned
        y = [0] + growth[p].tolist()
        fig.add_trace(go.Scatter(
            x=hops, y=y, mode="lines+markers", name=f"part {p}", line={"color": colors[p]},
            customdata=[owned] * len(hops),
            hovertemplate="%{y:,} halo nodes after %{x} hops (owns %{customdata:,})<extra>part " + str(p)
            + "</extra>"))
    fig.add_hline(y=plan.num_nodes, line_dash="dot", line_color="gray",
                  annotation_text=f"all {plan.num_nodes:,} nodes", annotation_position="bottom right")
    fig.update_layout(height=height, margin={"l": 50, "r": 10, "t": 50, "b": 40},
                      title="halo size vs hops (= GNN layers)", xaxis_title="hops", yaxis_title="halo nodes",
                      xaxis={"dtick": 1}, uirevision="halo")
    return fig


def method_comparison_figure(stats: Sequence[PartitionStats], *, height: int = 340) -> go.Figure:
    """Edge-cut fraction, replication factor and partitioning time for several methods, side by side."""
    names = [s.method for s in stats]
    fig = make_subplots(rows=1, cols=3, subplot_titles=("edge cut (fraction)", "replication factor",
                                                        "seconds"))
    fig.add_trace(go.Bar(x=names, y=[s.edge_cut_fraction for s in stats], showlegend=False,
                         hovertemplate="%{x}: %{y:.1%}<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=[s.replication_factor for s in stats], showlegend=False,
                         hovertemplate="%{x}: %{y:.3f}<extra></extra>"), 1, 2)
    fig.add_trace(go.Bar(x=names, y=[s.seconds for s in stats], showlegend=False,
                         hovertemplate="%{x}: %{y:.3f} s<extra></extra>"), 1, 3)
    fig.update_layout(height=height, margin={"l": 40, "r": 10, "t": 50, "b": 40})
    return fig
