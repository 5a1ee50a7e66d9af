"""Training figures as pure functions of telemetry records (their schema: :mod:`dgnn_lab.records`).

Every function takes the plain list of record dicts a run produced (live or from its JSONL log) and returns a
``plotly.graph_objects.Figure``; nothing here starts processes or imports ``dist``/``train``. Each figure
keeps the same traces in the same order however many records it is given, so a live dashboard can copy a new
figure's state into an existing widget frame after frame.

Every number drawn is measured by the workers (times from their monotonic clocks, bytes counted at the
communicator) and derived by :mod:`dgnn_lab.records`, the one place a statistic of a run is defined. Figures
take ``cores`` so that they can say when there are more workers than cores: then "wait" measures CPU
contention as much as the algorithm, and the figures say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dgnn_lab import records as rec

# the statistics drawn here are those of dgnn_lab.records, under the names this module has always offered
from dgnn_lab.records import (
    PHASES,
    bytes_by_purpose,
    bytes_matrix,
    check_records,
    cores_of,
    epoch_curves,
    format_bytes,
    phase_totals,
    threads_of,
    world_size_of,
)

__all__ = [
    "FIGURE_SPECS",
    "PHASES",
    "PHASE_COLORS",
    "bytes_by_purpose",
    "bytes_heatmap_figure",
    "bytes_matrix",
    "comparison_figure",
    "cores_of",
    "curves_figure",
    "epoch_curves",
    "format_bytes",
    "phase_bars_figure",
    "phase_totals",
    "threads_of",
    "timeline_figure",
    "work_bars_figure",
    "workers_note",
    "world_size_of",
]

Record = Mapping[str, Any]

PHASE_LABELS = {"compute": "compute", "comm": "communication", "wait": "waiting", "untimed": "untimed"}
PHASE_COLORS = {"compute": "#4C78A8", "comm": "#F58518", "wait": "#E45756", "untimed": "#BAB0AC"}
# spelled out (not "Blues") so a spec and the validated figure built from it hold the same value
_BLUES = [[i / (len(pc.sequential.Blues) - 1), c] for i, c in enumerate(pc.sequential.Blues)]
_ACC_COLORS = {"train_acc": "#54A24B", "val_acc": "#B279A2", "test_acc": "#9D755D"}


def workers_note(world_size: int, cores: int | None, explain: bool = True, threads: int | None = None) -> str:
    """One honest line on workers vs cores, e.g. ``4 workers on 2 cores: oversubscribed, so waiting ...``.

    Oversubscribed means more busy threads than cores: ``world_size * threads > cores`` (``threads`` per
    worker, 1 when unknown). ``explain=False`` gives the short form used under figure titles.
    """
    w = f"{world_size} worker{'s' if world_size != 1 else ''}"
    if threads is not None and threads > 1:
        w += f" x {threads} threads"
    if cores is None:
        return w
    line = f"{w} on {cores} core{'s' if cores != 1 else ''}"
    if rec.oversubscribed(world_size, cores, max(threads or 1, 1)):
        line += (": oversubscribed, so waiting also measures CPU contention, not only the algorithm" if explain
                 else " (oversubscribed: waiting includes CPU contention)")
    return line


def _title(main: str, world_size: int, cores: int | None, extra: str = "", threads: int | None = None) -> dict:
    note = workers_note(world_size, cores, explain=False, threads=threads)
    lines = [main, *(f"<sup>{t}</sup>" for t in (extra, note) if t)]
    return {"text": "<br>".join(lines), "x": 0.0, "xanchor": "left", "font": {"size": 15}}


def _worker_labels(world_size: int) -> list[str]:
    return [f"worker {p}" for p in range(world_size)]


# ------------------------------------------------------------------------------------------- figures

def _curves_spec(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                  total_epochs: int | None = None) -> dict:
    """The plain-dict spec of :func:`curves_figure`."""
    records = check_records(records)
    size = world_size_of(records, world_size)
    c = epoch_curves(records)
    data = [{"type": "scatter", "x": c["epoch"], "y": c["loss"], "name": "training loss",
             "mode": "lines+markers", "marker": {"size": 4}, "line": {"color": "#4C78A8", "width": 2}}]
    for key in rec.ACCURACIES:
        data.append({"type": "scatter", "x": c["epoch"], "y": c[key], "name": key.replace("_acc", " accuracy"),
                     "yaxis": "y2", "mode": "lines+markers", "marker": {"size": 5},
                     "connectgaps": True,  # accuracies exist only on evaluated epochs (eval_every)
                     "line": {"color": _ACC_COLORS[key], "width": 2,
                              "dash": "dot" if key == "train_acc" else "solid"}})
    extra = "no epochs yet"
    if c["epoch"]:
        last = -1
        done = c["epoch"][last] + 1  # epochs are numbered from 0 on the x axis
        parts = [f"{done} of {total_epochs} epochs" if total_epochs else f"{done} epochs"]
        if c["loss"][last] is not None:
            parts.append(f"loss {c['loss'][last]:.4f}")
        best = rec.best_val(records)
        if best is not None:
            test = best["test_acc"]
            parts.append(f"best val {best['val_acc']:.3f} @ epoch {best['epoch']}"
                         + (f" → test {test:.3f}" if test is not None else ""))
        extra = " · ".join(parts)
    layout = dict(
        title=_title("Loss and accuracy", size, cores, extra, threads_of(records)),
        xaxis={"title": {"text": "epoch"}, "rangemode": "tozero"},
        yaxis={"title": {"text": "training loss"}, "rangemode": "tozero"},
        yaxis2={"title": {"text": "accuracy"}, "overlaying": "y", "side": "right", "range": [0, 1],
                "tickmode": "linear", "tick0": 0, "dtick": 0.2, "tickformat": ".0%", "showgrid": False},
        legend={"orientation": "h", "y": -0.22},
        margin={"t": 95, "b": 40, "l": 60, "r": 60},
        height=360,
    )
    return {"data": data, "layout": layout}


def _phase_bars_spec(records: Iterable[Record], *, world_size: int | None = None,
                      cores: int | None = None) -> dict:
    """The plain-dict spec of :func:`phase_bars_figure`."""
    records = check_records(records)
    size = world_size_of(records, world_size)
    t = phase_totals(records, size)
    labels = _worker_labels(size)
    data: list[dict] = []
    for k in (*PHASES, "untimed"):
        share = np.divide(t[k], t["epoch"], out=np.zeros(size), where=t["epoch"] > 0)
        data.append(dict(
            type="bar", x=labels, y=t[k].tolist(), name=PHASE_LABELS[k], marker={"color": PHASE_COLORS[k]},
            customdata=(100 * share).tolist(),
            hovertemplate="%{x}: %{y:.3f} s " + PHASE_LABELS[k] + " (%{customdata:.0f}% of epoch time)"
                          "<extra></extra>",
        ))
    n = int(t["epochs"].max()) if size else 0
    extra = f"{n} epoch{'s' if n != 1 else ''}"
    imbalance = rec.imbalance(records, size) if n else None
    if imbalance is not None:
        extra += f" · imbalance (max/mean compute) {imbalance:.2f}"
    layout = dict(
        title=_title("Where each worker's time went", size, cores, extra, threads_of(records)),
        barmode="stack",
        yaxis={"title": {"text": "seconds (sum over epochs)"}, "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 95, "b": 40, "l": 60, "r": 20},
        height=360,
    )
    return {"data": data, "layout": layout}


#: The three per-worker measures of :func:`work_bars_figure`, each as a share of the mean worker's.
WORK_MEASURES = {"work": "work (edges aggregated)", "cpu": "CPU time", "wall": "wall compute time"}
WORK_COLORS = {"work": "#54A24B", "cpu": "#B279A2", "wall": "#4C78A8"}


def _work_bars_spec(records: Iterable[Record], *, world_size: int | None = None,
                    cores: int | None = None) -> dict:
    """The plain-dict spec of :func:`work_bars_figure`."""
    records = check_records(records)
    size = world_size_of(records, world_size)
    servers = rec.server_ranks(records)
    ranks = [p for p in range(size) if p not in servers]
    labels = [f"worker {p}" for p in ranks]
    totals = {w["rank"]: w for w in rec.worker_totals(records, size)}
    work = {w["rank"]: w.get("edges") for w in rec.work_totals(records, size)}
    values = {"work": [work.get(p) for p in ranks], "cpu": [totals[p]["cpu_s"] for p in ranks],
              "wall": [totals[p]["compute_s"] for p in ranks]}
    units = {"work": "%{customdata:,.0f} edges", "cpu": "%{customdata:.3f} s CPU",
             "wall": "%{customdata:.3f} s compute"}
    data: list[dict] = []
    ratios = {}
    for k, label in WORK_MEASURES.items():
        v = values[k]
        known = [x for x in v if x is not None]
        mean = sum(known) / len(known) if known and len(known) == len(v) else 0.0
        rel = [x / mean for x in v] if mean > 0 else []
        ratios[k] = max(rel) if rel else None
        data.append(dict(type="bar", x=labels if rel else [], y=rel, name=label, marker={"color": WORK_COLORS[k]},
                         customdata=v if rel else [],
                         hovertemplate="%{x}: %{y:.2f}x the mean worker (" + units[k] + ")<extra></extra>"))

    def f(x):
        return "n/a" if x is None else f"{x:.2f}"

    extra = f"max/mean: work {f(ratios['work'])} · CPU {f(ratios['cpu'])} · wall {f(ratios['wall'])}"
    layout = dict(
        title=_title("Work, CPU and wall time per worker", size, cores, extra, threads_of(records)),
        barmode="group",
        yaxis={"title": {"text": "x the mean worker"}, "rangemode": "tozero"},
        shapes=[{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 1, "y1": 1,
                 "line": {"dash": "dot", "color": "#888", "width": 1}}],
        legend={"orientation": "h", "y": -0.15},
        margin={"t": 95, "b": 40, "l": 60, "r": 20},
        height=360,
    )
    return {"data": data, "layout": layout}


def _bytes_heatmap_spec(records: Iterable[Record], *, world_size: int | None = None,
                         cores: int | None = None, purpose_prefix: str | None = None,
                         traffic: str = "train") -> dict:
    """The plain-dict spec of :func:`bytes_heatmap_figure`."""
    records = check_records(records)
    size = world_size_of(records, world_size)
    m = bytes_matrix(records, size, purpose_prefix, traffic=traffic)
    n_epochs = len(rec.epoch_numbers(records))
    text = [[format_bytes(v) for v in row] for row in m.tolist()]
    labels = _worker_labels(size)
    data = [dict(
        type="heatmap", z=m.tolist(), x=[f"to {lab}" for lab in labels], y=[f"from {lab}" for lab in labels],
        text=text, texttemplate="%{text}", colorscale=_BLUES, zmin=0,
        hovertemplate="%{y} %{x}: %{z:,} bytes<extra></extra>", colorbar={"title": {"text": "bytes"}},
    )]
    what = f"{rec.TRAFFIC_LABELS[traffic]} traffic" + (f", purposes {purpose_prefix}*" if purpose_prefix else "")
    left_out = rec.total_bytes(records, traffic="eval") if traffic == "train" else 0
    if left_out:
        what += f"; evaluation's {format_bytes(left_out)} not shown"
    extra = f"{format_bytes(m.sum())} in {n_epochs} epoch{'s' if n_epochs != 1 else ''}, {what}"
    layout = dict(
        title=_title("Bytes moved (sender row → receiver column)", size, cores, extra, threads_of(records)),
        yaxis={"autorange": "reversed"},
        margin={"t": 95, "b": 40, "l": 90, "r": 20},
        height=360,
    )
    return {"data": data, "layout": layout}


def _timeline_spec(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                    last_epochs: int = 3) -> dict:
    """The plain-dict spec of :func:`timeline_figure`."""
    if int(last_epochs) < 1:
        raise ValueError(f"last_epochs must be >= 1, got {last_epochs}")
    records = check_records(records)
    size = world_size_of(records, world_size)
    by_epoch = rec.records_by_epoch(records)
    shown = list(by_epoch)[-int(last_epochs):]
    bars: dict[str, tuple[list, list, list]] = {k: ([], [], []) for k in PHASES}
    labels = _worker_labels(size)
    shapes, annotations = [], []
    offset = 0.0
    for e in shown:
        span = 0.0
        for r in by_epoch[e]:
            ev = r.get("events") or []
            end = max((float(t1) for _, _, t1 in ev), default=0.0)
            span = max(span, float(r.get("epoch_s") or 0.0), end)
            for phase, t0, t1 in ev:
                if phase in bars:
                    base, width, y = bars[phase]
                    base.append(offset + float(t0))
                    width.append(float(t1) - float(t0))
                    y.append(labels[int(r["rank"])])
        shapes.append({"type": "line", "x0": offset, "x1": offset, "y0": 0, "y1": 1, "yref": "paper",
                       "line": {"color": "#888", "width": 1, "dash": "dot"}})
        annotations.append({"x": offset, "y": 1.0, "yref": "paper", "text": f"epoch {e}", "showarrow": False,
                            "xanchor": "left", "yanchor": "bottom", "font": {"size": 11, "color": "#555"}})
        offset += span
    data: list[dict] = []
    for k in PHASES:
        base, width, y = bars[k]
        data.append(dict(
            type="bar", orientation="h", base=base, x=width, y=y, name=PHASE_LABELS[k],
            marker={"color": PHASE_COLORS[k], "line": {"width": 0}},
            hovertemplate="%{y}: " + PHASE_LABELS[k] + " %{x:.4f} s, from %{base:.4f} s<extra></extra>",
        ))
    extra = f"epochs {shown[0]}–{shown[-1]}, each worker's epoch start aligned" if shown else "no epochs yet"
    layout = dict(
        title=_title("Timeline of phases (recent epochs)", size, cores, extra, threads_of(records)),
        barmode="overlay", bargap=0.35, shapes=shapes, annotations=annotations,
        xaxis={"title": {"text": "seconds since the first shown epoch's start"}, "rangemode": "tozero"},
        yaxis={"categoryorder": "array", "categoryarray": labels, "autorange": "reversed"},
        legend={"orientation": "h", "y": -0.22},
        margin={"t": 100, "b": 40, "l": 70, "r": 20},
        height=360,
    )
    return {"data": data, "layout": layout}


def curves_figure(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                  total_epochs: int | None = None) -> go.Figure:
    """Training loss (left axis) and train/val/test accuracy (right axis) per epoch.

    Always four traces in the order loss, train_acc, val_acc, test_acc.
    """
    return go.Figure(_curves_spec(records, world_size=world_size, cores=cores, total_epochs=total_epochs))


def phase_bars_figure(records: Iterable[Record], *, world_size: int | None = None,
                      cores: int | None = None) -> go.Figure:
    """Per-worker stacked bars of compute / communication / waiting / untimed seconds, summed over epochs.

    Unequal compute bars are load imbalance; the title gives max/mean compute. Always four traces
    (compute, comm, wait, untimed), one bar per worker.
    """
    return go.Figure(_phase_bars_spec(records, world_size=world_size, cores=cores))


def work_bars_figure(records: Iterable[Record], *, world_size: int | None = None,
                     cores: int | None = None) -> go.Figure:
    """Per worker, side by side: its work (edges aggregated, counted exactly), its CPU seconds and its wall
    compute seconds, each divided by the mean worker's (1.0 = average).

    Work is the partition's doing and the same on any machine; CPU time adds the kernels' speed; wall time adds
    waiting for a core. Equal work with unequal wall time is oversubscription or slow hardware (a straggler),
    not the partition. Always three traces (work, CPU, wall); a measure the records lack is empty.
    """
    return go.Figure(_work_bars_spec(records, world_size=world_size, cores=cores))


def bytes_heatmap_figure(records: Iterable[Record], *, world_size: int | None = None,
                         cores: int | None = None, purpose_prefix: str | None = None,
                         traffic: str = "train") -> go.Figure:
    """``P x P`` heatmap of bytes sent, sender row (top = worker 0), receiver column, summed over epochs.

    One heatmap trace whose ``z`` is :func:`bytes_matrix` of ``traffic``: training traffic by default (the
    title gives the evaluation's bytes, not drawn), ``"eval"`` or ``"all"``; cell text in kB/MB.
    """
    return go.Figure(_bytes_heatmap_spec(records, world_size=world_size, cores=cores,
                                         purpose_prefix=purpose_prefix, traffic=traffic))


def timeline_figure(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                    last_epochs: int = 3) -> go.Figure:
    """Per-worker timeline of compute / communication / waiting phases over the last ``last_epochs`` epochs.

    Each worker's events are placed relative to the start of its own epoch (the clocks of different processes
    are not compared); epochs are laid side by side, each as wide as its slowest worker. Synchronous training
    ends every epoch at a collective, so the epoch starts line up to within that collective's skew. Always
    three horizontal-bar traces (compute, comm, wait).
    """
    return go.Figure(_timeline_spec(records, world_size=world_size, cores=cores, last_epochs=last_epochs))


#: The dashboard's figures as plain ``{"data": [...], "layout": {...}}`` dicts (no plotly validation, which
#: costs more than the drawing itself on a busy 2-core laptop); ``go.Figure(spec)`` gives the public figure.
FIGURE_SPECS = {"curves": _curves_spec, "phases": _phase_bars_spec, "bytes": _bytes_heatmap_spec,
                "timeline": _timeline_spec, "work": _work_bars_spec}


def comparison_figure(runs: Mapping[str, Iterable[Record]], *, cores: int | None = None,
                      title: str = "Runs compared") -> go.Figure:
    """Side by side for several runs (e.g. METIS vs random, or 1..4 workers): time and bytes per epoch.

    Left: seconds per epoch in compute / communication / waiting, averaged over workers. Right: bytes sent
    per epoch by all workers together, by purpose. The first epoch is left out of both when a run has more
    than two (it pays one-off costs); the axis titles say so.
    """
    if not runs:
        raise ValueError("comparison_figure needs at least one run, got none")
    runs = {name: check_records(recs) for name, recs in runs.items()}  # generators are read once
    names = list(runs)
    stats = {name: rec.per_epoch_means(recs) for name, recs in runs.items()}
    sizes = {name: world_size_of(runs[name]) for name in names}
    skipped = any(s["skipped_epochs"] for s in stats.values())
    note = " (epoch 0 left out)" if skipped else ""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14,
                        subplot_titles=("seconds per epoch, mean over workers", "bytes sent per epoch"))
    for k in PHASES:
        fig.add_trace(go.Bar(x=names, y=[stats[n][k] for n in names], name=PHASE_LABELS[k],
                             marker={"color": PHASE_COLORS[k]}, legendgroup="time",
                             hovertemplate="%{x}: %{y:.4f} s " + PHASE_LABELS[k] + "<extra></extra>"),
                      row=1, col=1)
    groups = sorted({g for s in stats.values() for g in s["bytes"]})
    palette = ["#72B7B2", "#EECA3B", "#FF9DA6", "#9D755D", "#54A24B", "#B279A2", "#79706E"]
    for i, g in enumerate(groups):
        fig.add_trace(go.Bar(x=names, y=[stats[n]["bytes"].get(g, 0.0) for n in names], name=g,
                             marker={"color": palette[i % len(palette)]}, legendgroup="bytes",
                             hovertemplate="%{x}: %{y:,.0f} bytes " + g + "<extra></extra>"),
                      row=1, col=2)
    threads = {name: threads_of(runs[name]) or 1 for name in names}
    over = [n for n in names if rec.oversubscribed(sizes[n], cores, threads[n])]
    sub = f"{cores} cores" if cores is not None else ""
    if over:
        sub += f"; oversubscribed (more busy threads than cores): {', '.join(over)}; waiting includes contention"
    fig.update_layout(
        title={"text": f"{title}<br><sup>{sub}</sup>" if sub else title, "x": 0.0, "xanchor": "left"},
        barmode="stack", height=380, margin={"t": 90, "b": 40, "l": 60, "r": 20},
    )
    fig.update_yaxes(title_text="seconds" + note, row=1, col=1)
    fig.update_yaxes(title_text="bytes" + note, row=1, col=2)
    return fig
