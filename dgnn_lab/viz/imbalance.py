"""Workload-imbalance figures, pure functions of plain statistics (no processes, no training code).

* :func:`causes_figure`: each cause of imbalance apart (:func:`dgnn_lab.partition.imbalance_causes`): per part,
  its share of the mean part, one group of bars per cause;
* :func:`balance_frontier_figure`: the busiest worker's work against bytes per epoch, one point per remedy
  (:func:`dgnn_lab.experiments.imbalance.frontier`): the trade between balance and communication.

Per-worker work, CPU and wall time of one run is :func:`dgnn_lab.viz.training.work_bars_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
import plotly.colors as pc
import plotly.graph_objects as go

__all__ = ["balance_frontier_figure", "causes_figure"]

_PALETTE = pc.qualitative.Plotly


def causes_figure(causes: Mapping[str, Mapping[str, Any]], *, title: str = "Causes of imbalance, apart",
                  height: int = 360) -> go.Figure:
    """Grouped bars: x = cause, one bar per part = its value over the mean part's (1.0 = an average part);
    the x labels give each cause's max / mean."""
    names = list(causes)
    parts = len(next(iter(causes.values()))["per_part"]) if causes else 0
    labels = []
    for k in names:
        imb = causes[k]["imbalance"]
        labels.append(f"{k}<br>{'n/a' if imb is None else f'{imb:.2f}'}")
    fig = go.Figure()
    for p in range(parts):
        ys, raw = [], []
        for k in names:
            v = list(causes[k]["per_part"])
            mean = sum(v) / len(v) if v else 0
            ys.append(v[p] / mean if mean else 0.0)
            raw.append(v[p])
        fig.add_bar(x=labels, y=ys, name=f"part {p}", marker_color=_PALETTE[p % len(_PALETTE)], customdata=raw,
                    hovertemplate=f"part {p}: " + "%{customdata:,} (%{y:.2f}x the mean part)<extra></extra>")
    fig.add_hline(y=1.0, line_dash="dot", line_color="#888")
    fig.update_layout(title={"text": f"{title}<br><sup>per cause: each part over the mean part; below each "
                                     "cause its max / mean</sup>"},
                      barmode="group", yaxis_title="x the mean part", height=height,
                      margin={"t": 80, "b": 40, "l": 60, "r": 20}, legend={"orientation": "h", "y": -0.2})
    return fig


def balance_frontier_figure(table: pd.DataFrame, *, title: str = "Balance against communication",
                            height: int = 380) -> go.Figure:
    """One point per row of a :func:`~dgnn_lab.experiments.imbalance.frontier` table: training bytes per epoch
    (x) against the busiest worker's edges per epoch (y); the frontier (no other point lower on both) joined by
    a line. Down and left is better."""
    fig = go.Figure()
    for i, row in enumerate(table.itertuples(index=False)):
        imb = "n/a" if row.work_imbalance is None or pd.isna(row.work_imbalance) else f"{row.work_imbalance:.2f}"
        fig.add_scatter(x=[row.train_bytes_per_epoch], y=[row.max_work_edges], mode="markers+text",
                        text=[row.name], textposition="top center", name=str(row.name),
                        marker={"size": 12, "color": _PALETTE[i % len(_PALETTE)]},
                        hovertemplate=f"{row.name}: " + "%{x:,.0f} bytes/epoch, busiest worker %{y:,.0f} edges"
                                      f" (work imbalance {imb})<extra></extra>")
    front = table[table["on_frontier"]].sort_values("train_bytes_per_epoch")
    fig.add_scatter(x=front["train_bytes_per_epoch"].tolist(), y=front["max_work_edges"].tolist(), mode="lines",
                    line={"dash": "dash", "color": "#666"}, name="frontier", hoverinfo="skip")
    fig.update_layout(title={"text": f"{title}<br><sup>down = less work on the busiest worker, left = fewer "
                                     "bytes; measured in real runs</sup>"},
                      xaxis_title="training bytes per epoch (all workers)",
                      yaxis_title="edges aggregated per epoch, busiest worker", height=height,
                      margin={"t": 80, "b": 50, "l": 70, "r": 20}, showlegend=False)
    return fig
