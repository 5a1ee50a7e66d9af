"""Figures for the welcome notebook: a first look at a small graph."""

from __future__ import annotations

import networkx as nx
import plotly.graph_objects as go
from torch_geometric.data import Data


def small_graph_figure(data: Data, *, color_by: str = "y", title: str = "", seed: int = 0) -> go.Figure:
    """Draw a graph of up to a few thousand nodes, nodes coloured by ``data[color_by]``; hover shows id and degree."""
    n = data.num_nodes
    g = nx.Graph()
    g.add_nodes_from(range(n))
    g.add_edges_from(data.edge_index.t().tolist())
    pos = nx.spring_layout(g, seed=seed)
    ex, ey = [], []
    for u, v in g.edges():
        ex += [pos[u][0], pos[v][0], None]
        ey += [pos[u][1], pos[v][1], None]
    colour = data[color_by].tolist() if color_by in data else [0] * n
    deg = dict(g.degree())
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ex, y=ey, mode="lines", line=dict(width=0.6, color="#bbb"), hoverinfo="skip",
                             name="edges"))
    fig.add_trace(go.Scatter(
        x=[pos[v][0] for v in range(n)], y=[pos[v][1] for v in range(n)], mode="markers",
        marker=dict(size=9 if n < 200 else 5, color=colour, colorscale="Viridis", line=dict(width=0.5, color="#333")),
        text=[f"node {v}<br>degree {deg[v]}<br>{color_by} {colour[v]}" for v in range(n)], hoverinfo="text",
        name="nodes",
    ))
    fig.update_layout(title=title or f"{getattr(data, 'name', 'graph')}: {n} nodes, coloured by {color_by}",
                      showlegend=False, xaxis=dict(visible=False), yaxis=dict(visible=False, scaleanchor="x"),
                      height=450, margin=dict(l=10, r=10, t=40, b=10), plot_bgcolor="white")
    return fig
