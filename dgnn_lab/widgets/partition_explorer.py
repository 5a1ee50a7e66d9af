"""Partition explorer: pick a dataset, parts, method, hops and balance; see the partition redraw.

Everything shown is computed by the library (``partition``, ``partition_stats``, ``viz``): the widget only
wires controls to those calls. It stays interactive on Cora-sized graphs because the expensive pieces are
computed once and cached: datasets, the graph layout (``viz.graph`` caches it per graph), and plans per
setting; METIS on Cora takes milliseconds. A redraw replaces every trace's data in one ``batch_update``
per figure, so a dropped message cannot leave a half-updated picture.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go

from dgnn_lab import datasets as ds
from dgnn_lab.partition import DESCRIPTIONS, METHODS, PartitionPlan, partition, partition_stats
from dgnn_lab.partition.stats import PartitionStats
from dgnn_lab.settings import smoke_mode
from dgnn_lab.viz.graph import MAX_DRAW_NODES, graph_layout, partition_graph_figure
from dgnn_lab.viz.partition import balance_figure, boundary_heatmap, halo_growth_figure

__all__ = ["PartitionExplorer", "default_datasets"]

#: Width of the three small figures (px): two fit side by side in a default JupyterLab notebook.
_SMALL = 470


def default_datasets(root: Any = None) -> dict[str, dict]:
    """Drawable datasets: karate, Cora if its files are on disk, and small synthetic graphs."""
    n = 600 if smoke_mode() else 2000
    out: dict[str, dict] = {"karate": {}}
    available = {i.name: i.available for i in ds.list_datasets(root)}
    if available.get("cora"):
        out["cora"] = {"root": root} if root is not None else {}
    out[f"csbm ({n} nodes)"] = {"name": "csbm", "num_nodes": n, "avg_degree": 8.0}
    out[f"powerlaw ({n} nodes)"] = {"name": "powerlaw", "num_nodes": n, "avg_degree": 8.0}
    return out


class PartitionExplorer:
    """Controls + four figures + a statistics table; display it as a cell's last expression.

    ``datasets`` maps a label to ``datasets.load`` keyword arguments (``"name"`` defaults to the label).
    ``figures`` are ``go.FigureWidget`` objects (``graph``, ``balance``, ``heatmap``, ``halo``) a test can
    inspect; :meth:`update` recomputes and redraws (controls call it on every change).
    """

    def __init__(self, datasets: dict[str, dict] | None = None, *, dataset: str | None = None, num_parts: int = 4,
                 method: str = "metis", hops: int = 2, balance: tuple[str, ...] = (), seed: int = 0,
                 root: Any = None) -> None:
        self._datasets = datasets if datasets is not None else default_datasets(root)
        if not self._datasets:
            raise ValueError("datasets must name at least one dataset")
        if dataset is None:
            dataset = "cora" if "cora" in self._datasets else next(iter(self._datasets))
        if dataset not in self._datasets:
            raise ValueError(f"unknown dataset {dataset!r}; choose one of: {', '.join(self._datasets)}")
        if method not in METHODS:
            raise ValueError(f"unknown partition method {method!r}; valid methods: {', '.join(METHODS)}")
        self.seed = seed
        self._data: dict[str, Any] = {}
        self._plans: dict[tuple, tuple[PartitionPlan, PartitionStats]] = {}
        self._drawn: dict[str, Any] = {}
        style = {"description_width": "70px"}
        self.dataset = W.Dropdown(options=list(self._datasets), value=dataset, description="dataset", style=style)
        self.parts = W.IntSlider(value=num_parts, min=1, max=16, description="parts", style=style,
                                 continuous_update=False)
        self.method = W.Dropdown(options=[(f"{m}: {DESCRIPTIONS[m].split(': ', 1)[1]}", m) for m in METHODS],
                                 value=method, description="method", style=style,
                                 layout=W.Layout(width="420px"))
        self.hops = W.IntSlider(value=hops, min=0, max=3, description="hops", style=style, continuous_update=False)
        self.balance_train = W.Checkbox(value="train" in balance, description="balance training nodes",
                                        indent=False)
        self.balance_degree = W.Checkbox(value="degree" in balance, description="balance edges", indent=False)
        self.part = W.IntSlider(value=0, min=0, max=num_parts - 1, description="show part", style=style,
                                continuous_update=False)
        self.status = W.HTML()
        self.table = W.HTML()
        self.graph = go.FigureWidget()
        self.balance = go.FigureWidget()
        self.heatmap = go.FigureWidget()
        self.halo = go.FigureWidget()
        self.plan: PartitionPlan | None = None
        self.stats: PartitionStats | None = None
        self.last_redraw_s = 0.0
        for w in (self.dataset, self.parts, self.method, self.hops, self.balance_train, self.balance_degree,
                  self.part):
            w.observe(self._on_change, names="value")
        balance_box = W.HBox([W.Label("vertex weights (METIS, volume):"), self.balance_train, self.balance_degree])
        controls = W.VBox([W.HBox([self.dataset, self.method]), W.HBox([self.parts, self.hops, self.part]),
                           balance_box, self.status])
        wrap = W.Layout(flex_flow="row wrap")
        self.widget = W.VBox([controls, self.graph, W.HBox([self.balance, self.heatmap], layout=wrap),
                              W.HBox([self.halo, self.table], layout=wrap)])
        self.update()

    # ------------------------------------------------------------------------------------------ data

    def data(self, label: str | None = None):
        """The (cached) graph behind a dataset label."""
        label = label or self.dataset.value
        if label not in self._data:
            kw = dict(self._datasets[label])
            name = kw.pop("name", label)
            self._data[label] = ds.load(name, **kw)
        return self._data[label]

    def _balance(self) -> tuple[str, ...]:
        keys = []
        if self.balance_train.value:
            keys.append("train")
        if self.balance_degree.value:
            keys.append("degree")
        return tuple(keys)

    def _on_change(self, change: dict) -> None:
        self.update()

    # ------------------------------------------------------------------------------------------ redraw

    def update(self) -> None:
        """Recompute (or fetch from cache) the plan for the current controls and redraw every figure."""
        t0 = time.perf_counter()
        data = self.data()
        n = int(data.num_nodes)
        method = self.method.value
        metis = method in ("metis", "volume")  # the methods that take vertex weights
        self.balance_train.disabled = self.balance_degree.disabled = not metis
        balance = self._balance() if metis else ()
        with self.parts.hold_trait_notifications():
            self.parts.max = max(1, min(16, n))
        num_parts = self.parts.value
        if self.part.max != num_parts - 1 or self.part.value > num_parts - 1:
            with self.part.hold_trait_notifications():
                self.part.value = min(self.part.value, num_parts - 1)
                self.part.max = max(num_parts - 1, 0)
        key = (self.dataset.value, num_parts, method, self.hops.value, balance, self.seed)
        try:
            if key not in self._plans:
                plan = partition(data, num_parts, method, hops=self.hops.value, balance=balance, seed=self.seed)
                self._plans[key] = (plan, partition_stats(plan, data))
        except ValueError as exc:
            self.status.value = f"<b style='color:#b00'>error:</b> {html.escape(str(exc))}"
            return
        self.plan, self.stats = self._plans[key]
        part = min(self.part.value, num_parts - 1)
        # redraw only what changed: moving the "show part" slider touches the graph alone
        if n <= MAX_DRAW_NODES and self._drawn.get("graph") != (key, part):
            graph_layout(data.edge_index, n)  # cached after the first call
            _replace(self.graph, partition_graph_figure(self.plan, data, part=part).update_layout(width=900))
            self._drawn["graph"] = (key, part)
        if self._drawn.get("stats") != key:
            _replace(self.balance, balance_figure(self.stats, height=300).update_layout(width=_SMALL))
            _replace(self.heatmap, boundary_heatmap(self.plan, height=300).update_layout(width=_SMALL))
            _replace(self.halo, halo_growth_figure(self.plan, data, max_hops=4, height=300).update_layout(
                width=_SMALL))
            self.table.value = _stats_html(self.stats)
            self._drawn["stats"] = key
        self.last_redraw_s = time.perf_counter() - t0
        note = "" if metis or not self._balance() else " (balance applies to METIS and volume only)"
        self.status.value = (f"{html.escape(self.stats.summary())} · redrawn in {self.last_redraw_s:.2f} s"
                             f"{html.escape(note)}")

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        from dgnn_lab.widgets.dashboard import _in_kernel

        if _in_kernel():
            display(self.widget)
            return
        # No widget front end (DGNN_LAB_WIDGETS=0, Colab, nbconvert): the same figures for the current
        # choice, as plain figures; change the choice in code (``explorer.method.value = "random"``).
        display(HTML(f"{self.status.value}<br>{self.table.value}"))
        for fw in (self.graph, self.balance, self.heatmap, self.halo):
            display(go.Figure(fw))


def _replace(fw: go.FigureWidget, fig: go.Figure) -> None:
    """Make ``fw`` show ``fig``: trace data updated in place when the trace list matches, else swapped."""
    same = len(fw.data) == len(fig.data) and all(a.type == b.type for a, b in zip(fw.data, fig.data, strict=True))
    if not same:
        fw.data = []
        fw.add_traces(list(fig.data))
    with fw.batch_update():
        if same:
            for old, new in zip(fw.data, fig.data, strict=True):
                old.update(new.to_plotly_json(), overwrite=True)
        fw.layout = fig.layout


def _stats_html(st: PartitionStats) -> str:
    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    rows = [
        ("edge cut", f"{st.edge_cut:,} ({st.edge_cut_fraction:.1%})"),
        ("comm volume / layer", f"{st.comm_volume:,} rows"),
        ("replication factor", f"{st.replication_factor:.3f}"),
        ("balance nodes / edges / train", f"{f(st.balance['nodes'])} / {f(st.balance['edges'])} / "
                                          f"{f(st.balance['train'])}"),
        ("partition time", f"{st.seconds * 1000:.1f} ms"),
    ]
    body = "".join(f"<tr><td>{html.escape(k)}</td><td style='text-align:right'>{html.escape(v)}</td></tr>"
                   for k, v in rows)
    notes = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in st.notes)
    return f"<table>{body}</table>{notes}"
