"""Batch-generation figures as pure functions of sampler outputs and measured tables (plotly only).

* :func:`computation_tree_figure`: one seed's sampled computation tree (what an ``L``-layer GNN reads for it),
  coloured by hop or by any node grouping (e.g. own / halo / remote for a worker).
* :func:`neighbourhood_growth_figure`: nodes read per hop, full neighbourhood vs fanout sampling vs the bound.
* :func:`sampler_comparison_figure`: cost (input nodes per output node) against estimator error per sampler.
* :func:`full_vs_minibatch_figure`: test accuracy against training time for full-batch and mini-batch runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

__all__ = ["HOP_COLORS", "computation_tree", "computation_tree_figure", "full_vs_minibatch_figure",
           "neighbourhood_growth_figure", "sampler_comparison_figure"]

HOP_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
GROUP_COLORS = ["#1f77b4", "#ff7f0e", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#7f7f7f"]


def computation_tree(batch, seed_index: int = 0, max_nodes: int = 500) -> pd.DataFrame:
    """The sampled computation tree of seed ``seed_index`` of a node-wise batch (``NeighborLoader`` output or a
    ``NeighborSample``): one row per tree node with ``tree_id``, ``parent`` (-1 for the root), ``depth``,
    ``local`` and ``global_id``. A graph node reached along several paths appears once per path, as in the
    computation the GNN performs; at most ``max_nodes`` tree nodes (breadth-first) are kept."""
    nsn = list(batch.num_sampled_nodes)
    if not 0 <= seed_index < nsn[0]:
        raise ValueError(f"seed_index must be in [0, {nsn[0] - 1}] (the batch's seeds), got {seed_index}")
    depth_max = len(batch.num_sampled_edges)
    row, col = batch.edge_index
    order = torch.argsort(col, stable=True)
    counts = torch.bincount(col, minlength=int(batch.n_id.numel()))
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.long)
    torch.cumsum(counts, 0, out=ptr[1:])
    src_sorted = row[order].tolist()
    ptr_l, n_id = ptr.tolist(), batch.n_id.tolist()
    rows = [(0, -1, 0, seed_index, n_id[seed_index])]
    frontier = [(0, seed_index)]
    for depth in range(1, depth_max + 1):
        nxt = []
        for tid, v in frontier:
            for u in src_sorted[ptr_l[v]:ptr_l[v + 1]]:
                if len(rows) >= max_nodes:
                    break
                rows.append((len(rows), tid, depth, u, n_id[u]))
                nxt.append((len(rows) - 1, u))
        frontier = nxt
    return pd.DataFrame(rows, columns=["tree_id", "parent", "depth", "local", "global_id"])


def _tree_layout(tree: pd.DataFrame) -> tuple[list[float], list[float]]:
    children: dict[int, list[int]] = {}
    for tid, parent in zip(tree["tree_id"], tree["parent"], strict=True):
        if parent >= 0:
            children.setdefault(int(parent), []).append(int(tid))
    y = [0.0] * len(tree)
    next_leaf = [0.0]

    def place(t: int) -> float:                  # leaves in DFS order, parents centred over their children
        kids = children.get(t, [])
        if not kids:
            y[t] = next_leaf[0]
            next_leaf[0] += 1
        else:
            ys = [place(k) for k in kids]
            y[t] = (ys[0] + ys[-1]) / 2
        return y[t]

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * int(tree["depth"].max() + 10)))
    place(0)
    sys.setrecursionlimit(limit)
    return tree["depth"].astype(float).tolist(), y


def computation_tree_figure(batch, seed_index: int = 0, *, groups: Tensor | Sequence[int] | None = None,
                            group_names: Sequence[str] | None = None, max_nodes: int = 500,
                            title: str | None = None, group_colors: Sequence[str] | None = None) -> go.Figure:
    """One seed's sampled computation tree, the seed on the left and hop ``h`` in column ``h``.

    Colours: the hop at which the tree node sits, or ``groups[global_id]`` (category ids, named by
    ``group_names``), e.g. where each node lives for a distributed worker (own, halo, remote). Nodes that
    occur more than once in the tree (reached along several paths) are drawn as diamonds. ``group_colors[c]``
    fixes category ``c``'s colour (so figures showing different subsets of the categories agree).
    """
    tree = computation_tree(batch, seed_index, max_nodes)
    xs, ys = _tree_layout(tree)
    gid = tree["global_id"].tolist()
    repeats = pd.Series(gid).map(pd.Series(gid).value_counts()).tolist()
    fig = go.Figure()
    ex, ey = [], []
    for t, p in zip(tree["tree_id"], tree["parent"], strict=True):
        if p >= 0:
            ex += [xs[p], xs[t], None]
            ey += [ys[p], ys[t], None]
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#bbbbbb", "width": 1}, hoverinfo="skip",
                             showlegend=False))
    if groups is not None:
        g = torch.as_tensor(groups)
        cat = g[torch.tensor(gid)].tolist()
        names = list(group_names or [])
        keys = sorted(set(cat))
        label = {c: (names[c] if 0 <= c < len(names) else f"group {c}") for c in keys}
        fixed = list(group_colors or [])
        color = {c: (fixed[c] if 0 <= c < len(fixed) else GROUP_COLORS[i % len(GROUP_COLORS)])
                 for i, c in enumerate(keys)}
    else:
        cat = tree["depth"].tolist()
        keys = sorted(set(cat))
        label = {c: ("seed" if c == 0 else f"hop {c}") for c in keys}
        color = {c: HOP_COLORS[c % len(HOP_COLORS)] for c in keys}
    for c in keys:
        idx = [i for i, k in enumerate(cat) if k == c]
        fig.add_trace(go.Scatter(
            x=[xs[i] for i in idx], y=[ys[i] for i in idx], mode="markers", name=label[c],
            marker={"color": color[c], "size": [14 if tree["depth"][i] == 0 else 9 for i in idx],
                    "symbol": ["diamond" if repeats[i] > 1 else "circle" for i in idx],
                    "line": {"width": 0.5, "color": "#333"}},
            customdata=[[gid[i], int(tree["depth"][i]), repeats[i]] for i in idx],
            hovertemplate="node %{customdata[0]}<br>depth %{customdata[1]}<br>appears %{customdata[2]}x"
                          "<extra></extra>"))
    depth = int(tree["depth"].max())
    fig.update_layout(
        title=title or f"sampled computation tree of seed {gid[0]} ({len(tree)} tree nodes, "
                       f"{len(set(gid))} distinct)",
        xaxis={"tickvals": list(range(depth + 1)), "ticktext": ["seed"] + [f"hop {h}" for h in range(1, depth + 1)],
               "zeroline": False},
        yaxis={"visible": False}, height=max(300, min(900, 12 * (max(ys) + 1) + 120)), template="plotly_white",
        legend={"orientation": "h", "y": -0.1})
    return fig


def neighbourhood_growth_figure(growth: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Nodes an ``L``-layer GNN reads per hop (log scale): the full neighbourhood, fanout sampling and the
    ``B * prod(fanouts)`` bound, from :func:`dgnn_lab.sampling.experiments.neighbourhood_growth`."""
    fig = go.Figure()
    for col, name, dash in (("full", "full neighbourhood", "solid"), ("sampled", "fanout sampling", "solid"),
                            ("bound", "bound B·∏fanouts", "dot")):
        fig.add_trace(go.Scatter(x=growth["hop"], y=growth[col], name=name, mode="lines+markers",
                                 line={"dash": dash}))
    n = int(growth["num_nodes"].iloc[0])
    fig.add_hline(y=n, line={"color": "#888", "dash": "dash"}, annotation_text=f"whole graph ({n:,} nodes)",
                  annotation_position="top left")
    fig.update_layout(title=title or "neighbourhood explosion: nodes read per hop", xaxis_title="hops",
                      yaxis_title="nodes (cumulative)", yaxis_type="log", xaxis={"dtick": 1},
                      template="plotly_white")
    return fig


def sampler_comparison_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Two panels per sampler from :func:`dgnn_lab.sampling.experiments.compare_samplers`: input nodes per
    output node (cost) and the relative error of the first layer's aggregation (estimator noise/bias)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("input nodes per output node (cost)",
                                                        "relative error of layer-1 aggregation"))
    names = table["sampler"].tolist()
    colors = [GROUP_COLORS[i % len(GROUP_COLORS)] for i in range(len(names))]
    fig.add_trace(go.Bar(x=names, y=table["inputs_per_output"], marker_color=colors, showlegend=False,
                         customdata=table[["inputs", "outputs", "edges"]].to_numpy(),
                         hovertemplate="%{x}<br>%{customdata[0]:.0f} inputs for %{customdata[1]:.0f} outputs"
                                       "<br>%{customdata[2]:.0f} edges<extra></extra>"), 1, 1)
    fig.add_trace(go.Bar(x=names, y=table["rel_error"], marker_color=colors, showlegend=False,
                         hovertemplate="%{x}<br>rel. error %{y:.3f}<extra></extra>"), 1, 2)
    fig.update_layout(title=title or "samplers side by side", template="plotly_white", height=420)
    return fig


def full_vs_minibatch_figure(history: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Test accuracy against cumulative training seconds, one line per ``mode`` (rows from
    :func:`dgnn_lab.sampling.experiments.train_node_classifier`, concatenated)."""
    fig = go.Figure()
    for mode, h in history.groupby("mode", sort=False):
        fig.add_trace(go.Scatter(x=h["train_s"].cumsum(), y=100 * h["test_acc"], name=str(mode),
                                 mode="lines+markers", customdata=h[["epoch", "steps"]].to_numpy(),
                                 hovertemplate="epoch %{customdata[0]} (%{customdata[1]} steps)<br>"
                                               "%{x:.2f} s, test %{y:.1f}%<extra>" + str(mode) + "</extra>"))
    fig.update_layout(title=title or "full-batch vs mini-batch", xaxis_title="training time (s, cumulative)",
                      yaxis_title="test accuracy (%)", template="plotly_white")
    return fig
