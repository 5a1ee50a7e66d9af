"""Strategy comparison figures as pure functions of telemetry records: accuracy against bytes and against time,
and the accuracy/communication frontier.

Each function takes ``runs``, a mapping ``name -> records`` (a finished run's ``records`` or
``Comparison.records()`` from :mod:`dgnn_lab.experiments.compare`), and returns a ``plotly.graph_objects.Figure``.
A run keeps one colour in every figure. Bytes are those the communicator counted (wire size, after any
sampling or compression); times are the workers' own clocks. :func:`time_and_bytes_figure` draws time and
bytes per epoch broken down by phase and purpose, side by side, training traffic apart from evaluation's.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dgnn_lab import records as rec
from dgnn_lab.records import check_records, format_bytes, threads_of, world_size_of

__all__ = ["BYTES", "METRICS", "accuracy_vs_bytes_figure", "accuracy_vs_time_figure", "frontier_figure",
           "frontier_points", "pareto_front", "run_curves", "staleness_figure", "time_and_bytes_figure"]

Record = Mapping[str, Any]
METRICS = ("test_acc", "val_acc", "train_acc")
_METRIC_LABELS = {"test_acc": "test accuracy", "val_acc": "validation accuracy", "train_acc": "train accuracy"}
_PALETTE = pc.qualitative.Plotly
#: Which bytes a figure counts: ``total`` (everything the workers sent), ``training`` (all but evaluation and
#: the loss/stop metrics: what training itself needs) or ``halo`` (halo rows and their gradients only).
BYTES = rec.BYTES_KINDS
_BYTES_LABELS = {"total": "all", "training": "training (no evaluation)", "halo": "halo"}


def _check_runs(runs: Mapping[str, Iterable[Record]]) -> dict[str, list[Record]]:
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError(f"runs must be a non-empty mapping name -> records, got {runs!r:.80}")
    return {str(name): check_records(recs) for name, recs in runs.items()}


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")
    return metric


_check_bytes = rec.check_bytes_kind


def run_curves(records: Iterable[Record], *, bytes: str = "training") -> dict[str, list]:
    """Per epoch of one run: ``epoch``, ``loss``, the accuracies (:func:`dgnn_lab.records.epoch_curves`),
    ``bytes`` (sent that epoch by all workers; which purposes count: see :data:`BYTES`), ``epoch_s`` (the
    slowest worker's time, which is what a synchronous epoch costs; 0 if untimed), and their running totals
    ``cum_bytes`` and ``cum_s``."""
    records = check_records(records)
    out: dict[str, list] = {**rec.epoch_curves(records), "bytes": rec.bytes_by_epoch(records, _check_bytes(bytes)),
                            "epoch_s": [s if s is not None else 0.0 for s in rec.epoch_seconds(records)]}
    out["cum_bytes"] = list(itertools.accumulate(out["bytes"]))
    out["cum_s"] = list(itertools.accumulate(out["epoch_s"]))
    return out


def _title(main: str, sub: str = "") -> dict:
    return {"text": f"{main}<br><sup>{sub}</sup>" if sub else main, "x": 0.0, "xanchor": "left"}


def _over_note(runs: dict[str, list[Record]], cores: int | None) -> str:
    if cores is None:
        return ""
    over = [n for n, recs in runs.items() if rec.oversubscribed(world_size_of(recs), cores, threads_of(recs) or 1)]
    if not over:
        return f"{cores} cores"
    return (f"{cores} cores; oversubscribed (more busy threads than cores): {', '.join(over)}: their time "
            "includes CPU contention")


def _curve_figure(runs: Mapping[str, Iterable[Record]], x: str, metric: str, which: str,
                  xtitle: str, title: str, sub: str, hover_x: str) -> go.Figure:
    fig = go.Figure()
    for i, (name, recs) in enumerate(runs.items()):
        c = run_curves(recs, bytes=which)
        pts = [(xv, yv, e) for xv, yv, e in zip(c[x], c[metric], c["epoch"], strict=True) if yv is not None]
        fig.add_trace(go.Scatter(
            x=[p[0] for p in pts], y=[p[1] for p in pts], customdata=[p[2] for p in pts], name=name,
            mode="lines+markers", marker={"size": 4, "color": _PALETTE[i % len(_PALETTE)]},
            line={"color": _PALETTE[i % len(_PALETTE)]},
            hovertemplate=f"{name}<br>epoch %{{customdata}}<br>{hover_x}<br>%{{y:.3f}}<extra></extra>"))
    fig.update_layout(title=_title(title, sub), height=380, margin={"t": 80, "b": 50, "l": 60, "r": 20},
                      xaxis_title=xtitle, yaxis_title=_METRIC_LABELS[metric], legend={"title": "run"})
    return fig


def accuracy_vs_bytes_figure(runs: Mapping[str, Iterable[Record]], *, metric: str = "test_acc",
                             bytes: str = "training", log_x: bool = False,
                             title: str = "Accuracy against bytes moved") -> go.Figure:
    """One curve per run: accuracy at each evaluated epoch against the bytes all workers had sent by then.

    ``bytes="halo"`` counts halo exchanges only (forward rows and backward gradients); ``"training"`` adds
    gradient all-reduces, parameter-server traffic and model averaging; ``"total"`` adds evaluation too. A curve
    further left reaches the same accuracy for fewer bytes.
    """
    runs = _check_runs(runs)
    which = _check_bytes(bytes)
    fig = _curve_figure(runs, "cum_bytes", _check_metric(metric), which,
                        f"{_BYTES_LABELS[which]} bytes sent so far (all workers)", title,
                        "bytes counted at the communicator, at wire size", "%{x:,.0f} bytes")
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def accuracy_vs_time_figure(runs: Mapping[str, Iterable[Record]], *, metric: str = "test_acc",
                            cores: int | None = None, title: str = "Accuracy against training time") -> go.Figure:
    """One curve per run: accuracy at each evaluated epoch against the training time so far, the sum over
    epochs of the slowest worker's epoch time (setup and evaluation-free gaps are not counted). ``cores`` adds
    a note when a run had more busy threads than cores: then its time includes CPU contention."""
    runs = _check_runs(runs)
    return _curve_figure(runs, "cum_s", _check_metric(metric), "total", "training seconds so far (slowest worker)",
                         title, _over_note(runs, cores), "%{x:.2f} s")


def frontier_points(runs: Mapping[str, Iterable[Record]], *, metric: str = "test_acc",
                    bytes: str = "training") -> list[dict]:
    """Per run: ``name``, ``bytes_per_epoch`` (mean over epochs), ``s_per_epoch`` (median slowest-worker epoch
    time, epoch 0 left out when there are more than two), ``accuracy`` (``metric`` at the epoch of best
    validation accuracy, else the last evaluated value; None if never evaluated) and ``epochs``."""
    runs = _check_runs(runs)
    metric, which = _check_metric(metric), _check_bytes(bytes)
    out = []
    for name, recs in runs.items():
        acc = None
        best = rec.best_val(recs)
        if best is not None and metric != "val_acc":
            acc = best[metric]
        if acc is None:
            acc = rec.last_value(recs, metric)
        out.append({"name": name, "bytes_per_epoch": rec.bytes_per_epoch(recs, which),
                    "s_per_epoch": rec.s_per_epoch(recs), "accuracy": acc, "epochs": len(rec.epoch_numbers(recs))})
    return out


def pareto_front(points: list[dict]) -> list[str]:
    """Names of the points no other point beats on both counts (fewer or equal bytes per epoch and higher or
    equal accuracy, better on at least one), ordered by bytes: the accuracy/communication frontier."""
    pts = [p for p in points if p.get("accuracy") is not None]
    front = []
    for p in pts:
        dominated = any(q is not p and q["bytes_per_epoch"] <= p["bytes_per_epoch"] and q["accuracy"] >= p["accuracy"]
                        and (q["bytes_per_epoch"] < p["bytes_per_epoch"] or q["accuracy"] > p["accuracy"])
                        for q in pts)
        if not dominated:
            front.append(p)
    return [p["name"] for p in sorted(front, key=lambda p: (p["bytes_per_epoch"], p["accuracy"]))]


def frontier_figure(runs: Mapping[str, Iterable[Record]], *, metric: str = "test_acc", bytes: str = "training",
                    log_x: bool = True, title: str = "Accuracy/communication frontier") -> go.Figure:
    """Each run as one point: bytes per epoch (x, log scale by default) against accuracy (see
    :func:`frontier_points`); the runs no other run beats on both are joined by the frontier line. Hover shows
    time per epoch too."""
    runs = _check_runs(runs)
    pts = frontier_points(runs, metric=metric, bytes=bytes)
    front = pareto_front(pts)
    by_name = {p["name"]: p for p in pts}
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[by_name[n]["bytes_per_epoch"] for n in front], y=[by_name[n]["accuracy"] for n in front],
        mode="lines", name="frontier", line={"color": "#888", "dash": "dash", "shape": "hv"}, hoverinfo="skip"))
    for i, p in enumerate(pts):
        if p["accuracy"] is None:
            continue
        secs = f"{p['s_per_epoch']:.3f} s/epoch" if p["s_per_epoch"] is not None else "no epochs"
        fig.add_trace(go.Scatter(
            x=[p["bytes_per_epoch"]], y=[p["accuracy"]], mode="markers+text", text=[p["name"]],
            textposition="top center", name=p["name"],
            marker={"size": 12, "color": _PALETTE[i % len(_PALETTE)],
                    "symbol": "circle" if p["name"] in front else "circle-open"},
            hovertemplate=(f"{p['name']}<br>{format_bytes(p['bytes_per_epoch'])} per epoch<br>{secs}"
                           "<br>%{y:.3f}<extra></extra>")))
    fig.update_layout(
        title=_title(title, "filled: on the frontier · accuracy at the best validation epoch"),
        height=400, margin={"t": 80, "b": 50, "l": 60, "r": 20}, showlegend=False,
        xaxis_title=f"{_BYTES_LABELS[bytes]} bytes sent per epoch (all workers)", yaxis_title=_METRIC_LABELS[metric])
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def staleness_figure(runs: Mapping[str, Iterable[Record]], *, field: str = "staleness",
                     title: str = "Observed staleness", xaxis_title: str | None = None) -> go.Figure:
    """Histogram of the staleness values the runs recorded (epoch-record field ``field``: a number per record,
    a list of observations, or a ``{value: count}`` dict). Runs that recorded none are listed in the subtitle."""
    runs = _check_runs(runs)
    fig = go.Figure()
    missing = []
    for i, (name, recs) in enumerate(runs.items()):
        counts = rec.field_counts(recs, field)
        if not counts:
            missing.append(name)
            continue
        xs = sorted(counts)
        fig.add_trace(go.Bar(x=xs, y=[counts[x] for x in xs], name=name,
                             marker={"color": _PALETTE[i % len(_PALETTE)]}))
    sub = f"no '{field}' recorded by: {', '.join(missing)}" if missing else ""
    fig.update_layout(title=_title(title, sub), barmode="group", height=340,
                      margin={"t": 80, "b": 50, "l": 60, "r": 20}, xaxis_title=xaxis_title or field,
                      yaxis_title="observations")
    return fig


_PHASE_COLORS = {"compute": "#4C78A8", "comm": "#F58518", "wait": "#E45756"}
_PHASE_NAMES = {"compute": "compute", "comm": "communication", "wait": "waiting"}
_GROUP_PALETTE = ["#72B7B2", "#EECA3B", "#FF9DA6", "#9D755D", "#54A24B", "#B279A2", "#79706E"]


def time_and_bytes_figure(runs: Mapping[str, Iterable[Record]], *, cores: int | None = None,
                          title: str = "Time and bytes per epoch") -> go.Figure:
    """Two panels, one bar per run. Left, "time per epoch": seconds per epoch in compute / communication /
    waiting, the mean over workers (y: seconds per epoch). Right, "bytes per epoch": bytes all workers sent
    per epoch, stacked by purpose; the training traffic in colour, the evaluation's (purposes ``eval*``) on top,
    hatched, so the two can be told apart. Epoch 0 is left out of both when a run has more than two (it pays
    one-off costs; the subtitle says so). ``cores`` adds a note when a run had more busy threads than cores."""
    runs = _check_runs(runs)
    names = list(runs)
    stats = {n: rec.per_epoch_means(recs) for n, recs in runs.items()}
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.2,
                        subplot_titles=("time per epoch", "bytes per epoch"))
    for k in rec.PHASES:
        fig.add_trace(go.Bar(x=names, y=[stats[n][k] for n in names], name=_PHASE_NAMES[k], legendgroup="time",
                             marker={"color": _PHASE_COLORS[k]},
                             hovertemplate="%{x}: %{y:.4f} s " + _PHASE_NAMES[k] + " per epoch<extra></extra>"),
                      row=1, col=1)
    groups = sorted({g for s in stats.values() for g in s["bytes"]}, key=lambda g: (g == "evaluation", g))
    for i, g in enumerate(groups):
        evaluation = g == "evaluation"
        fig.add_trace(go.Bar(
            x=names, y=[stats[n]["bytes"].get(g, 0.0) for n in names], legendgroup="bytes",
            name="evaluation (not training)" if evaluation else g,
            marker={"color": "#BAB0AC" if evaluation else _GROUP_PALETTE[i % len(_GROUP_PALETTE)],
                    **({"pattern": {"shape": "/"}} if evaluation else {})},
            hovertemplate="%{x}: %{y:,.0f} bytes " + g + " per epoch<extra></extra>"), row=1, col=2)
    notes = []
    if any(s["skipped_epochs"] for s in stats.values()):
        notes.append("epoch 0 left out")
    over = _over_note(runs, cores)
    if over:
        notes.append(over)
    fig.update_layout(title=_title(title, " · ".join(notes)), barmode="stack", height=480,
                      margin={"t": 95, "b": 40, "l": 60, "r": 20},  # the legend below: both panels get the width
                      legend={"orientation": "h", "y": -0.3, "yanchor": "top", "font": {"size": 11}})
    fig.update_annotations(font={"size": 13})  # the subplot titles
    fig.update_yaxes(title_text="seconds per epoch (mean over workers)", row=1, col=1)
    fig.update_yaxes(title_text="bytes per epoch (all workers)", row=1, col=2)
    return fig
