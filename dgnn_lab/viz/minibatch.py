"""Distributed mini-batch figures as pure functions of telemetry records, plans and measured tables.

* :func:`stage_timeline_figure`: per worker, the stages of every step (sample / fetch / train / wait). When the
  step records carry stage start times (``sample_t0``, ``fetch_t0``, ``train_t0``, ``wait_t0``; any clock, one
  per worker) each worker gets two lanes, *prepare* (sample + fetch) and *train* (train + wait), placed where
  they ran, so with pipelining the preparation of step ``i + 1`` is seen under the training of step ``i``;
  without start times the stages are laid end to end, step after step (what a sequential loop does).
* :func:`stage_totals_figure`: stage seconds summed over steps against the loop's wall time, per run (e.g.
  pipelining off vs on: the stages add up to more than the wall time by exactly the overlap).
* :func:`cache_sweep_figure`: measured cache hit rate and bytes fetched per epoch against cache capacity, one
  line per policy, the no-cache traffic as the baseline.
* :func:`placement_groups` + :func:`placement_tree_figure`: one seed's sampled computation tree coloured by
  where each node lives for a worker: its own partition, its halo (replicated topology), or remote.

Step records (from the mini-batch worker): ``{"type": "step", "rank", "epoch", "step", "sample_s", "fetch_s",
"train_s", "wait_s", "remote_requests", "remote_rows_fetched", "cache_hits", ...}``. ``wait_s`` is the part of
``train_s`` spent waiting for the other workers at the step's collectives (the gradient all-reduce ends the
step), so the figures draw ``train_s - wait_s`` as *train* followed by ``wait_s`` as *wait*.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor

from dgnn_lab.viz.sampling import computation_tree_figure

__all__ = ["FIGURE_SPECS", "PLACEMENT_COLORS", "PLACEMENT_NAMES", "STAGES", "STAGE_COLORS", "cache_sweep_figure",
           "has_steps", "placement_groups", "placement_tree_figure", "stage_timeline_figure", "stage_totals_figure",
           "step_summary", "step_table"]

Record = Mapping[str, Any]

STAGES = ("sample", "fetch", "train", "wait")
STAGE_COLORS = {"sample": "#72B7B2", "fetch": "#F58518", "train": "#4C78A8", "wait": "#E45756"}
_LANE = {"sample": "prepare", "fetch": "prepare", "train": "train", "wait": "train"}
PLACEMENT_NAMES = ("own", "halo", "remote")
PLACEMENT_COLORS = ("#2ca02c", "#ff7f0e", "#d62728")  # free, replicated or fetched, fetched
_POLICY_COLORS = {"none": "#7f7f7f", "degree": "#1f77b4", "presample": "#d62728"}


def has_steps(records: Iterable[Record]) -> bool:
    """True when any record is a mini-batch ``step`` record (the dashboard then adds the stage timeline)."""
    return any(isinstance(r, Mapping) and r.get("type") == "step" for r in records)


def step_table(records: Iterable[Record]) -> pd.DataFrame:
    """The ``step`` records as a table (one row per worker and step), sorted by rank, epoch, step."""
    rows = [dict(r) for r in records if isinstance(r, Mapping) and r.get("type") == "step"]
    cols = ["rank", "epoch", "step", *(f"{s}_s" for s in STAGES)]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = 0.0
    for s in STAGES:
        df[f"{s}_s"] = pd.to_numeric(df[f"{s}_s"], errors="coerce").fillna(0.0)
    return df.sort_values(["rank", "epoch", "step"], kind="stable").reset_index(drop=True)


def step_summary(records: Iterable[Record]) -> pd.DataFrame:
    """Per worker, summed over all steps: stage seconds, remote requests, rows fetched, cache hits and lookups,
    and the measured ``cache_hit_rate`` (hits / lookups; NaN without a cache)."""
    df = step_table(records)
    keys = [f"{s}_s" for s in STAGES] + ["remote_requests", "remote_rows_fetched", "cache_hits", "cache_lookups"]
    for k in keys:
        if k not in df:
            df[k] = 0
    out = df.groupby("rank")[keys].sum(numeric_only=True).reset_index() if len(df) else pd.DataFrame(
        columns=["rank", *keys])
    out["steps"] = df.groupby("rank").size().values if len(df) else []
    look = out["cache_lookups"].astype(float)
    out["cache_hit_rate"] = (out["cache_hits"].astype(float) / look).where(look > 0)
    return out


def _train_only(df: pd.DataFrame) -> pd.Series:
    """Seconds of the train stage outside its waiting (``wait_s`` is inside ``train_s``)."""
    return (df["train_s"] - df["wait_s"]).clip(lower=0.0)


def _has_starts(df: pd.DataFrame) -> bool:
    return all(f"{s}_t0" in df for s in STAGES) and bool(df[[f"{s}_t0" for s in STAGES]].notna().all().all())


def _stage_timeline_spec(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                         last_epochs: int = 1, max_steps: int | None = 200) -> dict:
    """The plain-dict spec of :func:`stage_timeline_figure` (always four bar traces: sample, fetch, train, wait)."""
    if int(last_epochs) < 1:
        raise ValueError(f"last_epochs must be >= 1, got {last_epochs}")
    if max_steps is not None and int(max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1 or None, got {max_steps}")
    records = list(records)
    df = step_table(records)
    ranks = sorted({int(r) for r in df["rank"]}) if len(df) else []
    size = int(world_size) if world_size is not None else (max(ranks) + 1 if ranks else 0)
    if len(df):
        shown = sorted({int(e) for e in df["epoch"]})[-int(last_epochs):]
        df = df[df["epoch"].isin(shown)]
        if max_steps is not None:  # the first max_steps steps of each worker (a long epoch stays readable)
            df = df.groupby("rank", group_keys=False).head(int(max_steps))
    else:
        shown = []
    timed = len(df) > 0 and _has_starts(df)
    if len(df):
        df = df.assign(train_s=_train_only(df))
    bars: dict[str, tuple[list, list, list, list]] = {s: ([], [], [], []) for s in STAGES}
    lanes: list[str] = []
    for rank in range(size):
        lanes += [f"worker {rank} · prepare", f"worker {rank} · train"] if timed else [f"worker {rank}"]
    hidden = 0.0  # seconds of preparation that ran while the same worker trained (all workers)
    for rank, g in df.groupby("rank", sort=True):
        if timed:
            origin = min(float(g[f"{s}_t0"].min()) for s in STAGES)
            p0, p1 = g["sample_t0"].to_numpy(float), (g["fetch_t0"] + g["fetch_s"]).to_numpy(float)
            t0, t1 = g["train_t0"].to_numpy(float), (g["wait_t0"] + g["wait_s"]).to_numpy(float)
            inter = np.minimum(p1[:, None], t1[None, :]) - np.maximum(p0[:, None], t0[None, :])
            hidden += float(np.clip(inter, 0.0, None).sum())
            for s in STAGES:
                base, width, y, text = bars[s]
                base += [float(t) - origin for t in g[f"{s}_t0"]]
                width += [float(d) for d in g[f"{s}_s"]]
                y += [f"worker {int(rank)} · {_LANE[s]}"] * len(g)
                text += [f"epoch {int(e)} step {int(k)}" for e, k in zip(g["epoch"], g["step"], strict=True)]
        else:
            t = 0.0
            for row in g.itertuples(index=False):
                for s in STAGES:
                    d = float(getattr(row, f"{s}_s"))
                    base, width, y, text = bars[s]
                    base.append(t)
                    width.append(d)
                    y.append(f"worker {int(rank)}")
                    text.append(f"epoch {int(row.epoch)} step {int(row.step)}")
                    t += d
    data = []
    for s in STAGES:
        base, width, y, text = bars[s]
        data.append(dict(type="bar", orientation="h", base=base, x=width, y=y, name=s, customdata=text,
                         marker={"color": STAGE_COLORS[s], "line": {"width": 0.3, "color": "white"}},
                         hovertemplate="%{y}: %{customdata}<br>" + s + " %{x:.4f} s, from %{base:.4f} s"
                                       "<extra></extra>"))
    if not timed:
        how = "stages laid end to end, step after step"
    elif hidden > 1e-3:
        how = f"stages where they ran: preparing the next batch overlapped training for {hidden:.3f} s (pipelined)"
    else:
        how = "stages where they ran: preparing and training took turns (no pipelining)"
    ep = f"epoch {shown[0]}" if len(shown) == 1 else (f"epochs {shown[0]}–{shown[-1]}" if shown else "no steps yet")
    note = ""
    if cores is not None and size > int(cores):
        note = f" · {size} workers on {int(cores)} cores (oversubscribed)"
    layout = dict(
        title={"text": f"Stage timeline per worker ({ep})<br><sup>{how}{note}</sup>"},
        barmode="overlay", bargap=0.3,
        xaxis={"title": {"text": "seconds since the worker's first shown step"}, "rangemode": "tozero"},
        yaxis={"categoryorder": "array", "categoryarray": lanes, "autorange": "reversed"},
        legend={"orientation": "h", "y": -0.22}, margin={"t": 90, "b": 40, "l": 130, "r": 20},
        height=max(300, 120 + 40 * len(lanes)), template="plotly_white",
    )
    return {"data": data, "layout": layout}


def stage_timeline_figure(records: Iterable[Record], *, world_size: int | None = None, cores: int | None = None,
                          last_epochs: int = 1, max_steps: int | None = 200) -> go.Figure:
    """Per-worker timeline of the sample / fetch / train / wait stage of each step (see the module docstring),
    over the last ``last_epochs`` epochs, at most ``max_steps`` steps per worker. Each worker's own clock:
    lanes of different workers are not aligned in time."""
    return go.Figure(_stage_timeline_spec(records, world_size=world_size, cores=cores, last_epochs=last_epochs,
                                          max_steps=max_steps))


#: plain-dict specs for the live dashboard (see :data:`dgnn_lab.viz.training.FIGURE_SPECS`)
FIGURE_SPECS = {"stages": _stage_timeline_spec}


def stage_totals_figure(runs: Mapping[str, Iterable[Record]], title: str | None = None) -> go.Figure:
    """One stacked bar per run (summed stage seconds, averaged over workers) beside a marker for the measured
    wall time of its steps' loop (``loop_s`` of its ``epoch`` records, else ``epoch_s``, averaged over workers
    and summed over epochs). Sequential stages add up to about the wall time; overlapped (pipelined) ones add
    up to more, by the overlap."""
    names = list(runs)
    fig = go.Figure()
    totals = {}
    walls = []
    for name in names:
        recs = list(runs[name])
        summ = step_summary(recs)
        if len(summ):
            summ = summ.assign(train_s=_train_only(summ))
        totals[name] = {s: float(summ[f"{s}_s"].mean()) if len(summ) else 0.0 for s in STAGES}
        eps = pd.DataFrame([r for r in recs if r.get("type") == "epoch"])
        col = "loop_s" if "loop_s" in eps else "epoch_s"
        walls.append(float(eps.groupby("epoch")[col].mean().sum()) if len(eps) and col in eps else None)
    for s in STAGES:
        fig.add_trace(go.Bar(x=names, y=[totals[n][s] for n in names], name=s, marker_color=STAGE_COLORS[s],
                             hovertemplate="%{x}: " + s + " %{y:.3f} s<extra></extra>"))
    fig.add_trace(go.Scatter(x=names, y=walls, mode="markers", name="wall time (epochs)",
                             marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3, "color": "black"}},
                             hovertemplate="%{x}: wall %{y:.3f} s<extra></extra>"))
    fig.update_layout(barmode="stack", title=title or "stage seconds (mean over workers) vs wall time",
                      yaxis_title="seconds", template="plotly_white", legend={"orientation": "h", "y": -0.15})
    return fig


def cache_sweep_figure(table: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Two panels from a cache sweep table (columns ``policy``, ``cache_size``, ``hit_rate``,
    ``bytes_fetched``: e.g. :func:`dgnn_lab.experiments.studies.cache_sweep`): the measured hit rate and the
    feature bytes fetched per epoch against the cache capacity (fraction of remote candidates), one line per
    policy; policy ``none`` is the dashed baseline."""
    need = {"policy", "cache_size", "hit_rate", "bytes_fetched"}
    missing = need - set(table.columns)
    if missing:
        raise ValueError(f"cache sweep table lacks columns {sorted(missing)}; it needs {sorted(need)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cache hit rate (measured)", "feature bytes fetched / epoch"))
    base = table[table["policy"] == "none"]
    for policy, g in table[table["policy"] != "none"].groupby("policy", sort=False):
        g = g.sort_values("cache_size")
        color = _POLICY_COLORS.get(str(policy), None)
        fig.add_trace(go.Scatter(x=g["cache_size"], y=100 * g["hit_rate"], name=str(policy), mode="lines+markers",
                                 line={"color": color}, legendgroup=str(policy),
                                 hovertemplate="capacity %{x:.0%}: hit rate %{y:.1f}%<extra>" + str(policy) +
                                               "</extra>"), 1, 1)
        fig.add_trace(go.Scatter(x=g["cache_size"], y=g["bytes_fetched"], name=str(policy), mode="lines+markers",
                                 line={"color": color}, legendgroup=str(policy), showlegend=False,
                                 hovertemplate="capacity %{x:.0%}: %{y:.3s} B<extra>" + str(policy) + "</extra>"),
                      1, 2)
    if len(base):
        b = float(base["bytes_fetched"].mean())
        fig.add_hline(y=b, line={"color": _POLICY_COLORS["none"], "dash": "dash"}, row=1, col=2,
                      annotation_text="no cache", annotation_position="top right")
    fig.update_xaxes(title_text="cache capacity (fraction of remote candidates)", tickformat=".0%")
    fig.update_yaxes(title_text="%", range=[0, 100], row=1, col=1)
    fig.update_yaxes(title_text="bytes", rangemode="tozero", row=1, col=2)
    fig.update_layout(title=title or "feature cache: hit rate and traffic against capacity",
                      template="plotly_white", height=420, legend={"orientation": "h", "y": -0.2})
    return fig


def placement_groups(plan, rank: int, hops: int | None = None) -> Tensor:
    """Where each node lives for worker ``rank`` of a partition plan: 0 own (it owns the node), 1 halo (in its
    ``hops``-hop halo, all rings when None), 2 remote (anywhere else). Names in :data:`PLACEMENT_NAMES`."""
    if not 0 <= int(rank) < int(plan.num_parts):
        raise ValueError(f"rank must be in [0, {plan.num_parts - 1}] (the plan's parts), got {rank}")
    part = plan.parts[int(rank)]
    groups = torch.full((int(plan.num_nodes),), 2, dtype=torch.long)
    groups[part.halo(hops)] = 1
    groups[part.owned] = 0
    return groups


def placement_tree_figure(batch, plan, rank: int, seed_index: int = 0, *, hops: int | None = None,
                          max_nodes: int = 500, title: str | None = None) -> go.Figure:
    """One seed's sampled computation tree (see :func:`~dgnn_lab.viz.sampling.computation_tree_figure`)
    coloured by where each node lives for worker ``rank``: own / halo / remote. Remote nodes are the rows a
    worker must fetch (or find in its cache); with ``remote_sampling="owner"`` halo and remote nodes are also
    the ones whose neighbours it must ask their owners for."""
    groups = placement_groups(plan, rank, hops)
    seed = int(batch.n_id[seed_index])
    gid = batch.n_id
    counts = torch.bincount(groups[gid], minlength=3).tolist()
    return computation_tree_figure(
        batch, seed_index, groups=groups, group_names=PLACEMENT_NAMES, group_colors=PLACEMENT_COLORS,
        max_nodes=max_nodes,
        title=title or (f"seed {seed}'s computation tree seen from worker {rank} (batch: {counts[0]} own, "
                        f"{counts[1]} halo, {counts[2]} remote nodes)"))

