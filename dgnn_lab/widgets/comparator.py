"""``StrategyComparator``: tick several strategies, run them one after another for real, compare them.

The runs go through :func:`dgnn_lab.experiments.compare.compare`, so a configuration that already finished in the
comparison's cache directory is re-opened instantly instead of retrained. While a run trains, the live
:class:`~dgnn_lab.widgets.dashboard.Dashboard` shows it; when all are done, the comparison figures of
:mod:`dgnn_lab.viz.comparison` (accuracy against bytes and time, the frontier, time and bytes per epoch) appear
with the results table (training traffic as the headline bytes, evaluation traffic apart; with ``repeats`` the
median time per epoch over the repeats and its range). **Stop** interrupts the
running configuration and skips the rest. The runs happen in one background thread, so the cell that shows the
comparator returns at once; :meth:`StrategyComparator.wait` blocks for the :class:`Comparison`.

Where widgets cannot render (no kernel, or ``static=True``) the comparator shows plain figures and the table
once the runs are over.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas  # noqa: F401 - imported before any drawing thread (see dashboard.py)
import plotly.graph_objects as go

from dgnn_lab import records as rec
from dgnn_lab.kernel_events import wait_for
from dgnn_lab.viz import comparison as vc
from dgnn_lab.widgets.dashboard import Dashboard, _in_kernel

__all__ = ["StrategyComparator"]

_FIGURE_NAMES = ("accuracy_vs_bytes", "accuracy_vs_time", "frontier", "time_and_bytes")
_TABLE_COLUMNS = ("name", "status", "cached", "mode", "epochs", "test_acc_at_best_val", "test_acc",
                  "train_bytes_per_epoch", "eval_bytes_per_epoch", "halo_bytes_per_epoch", "s_per_epoch",
                  "s_per_epoch_min", "s_per_epoch_max", "too_wide_to_conclude", "wait_share", "processes",
                  "threads_per_worker", "cores")


class StrategyComparator:
    """Pick configurations (checkboxes of presets and registered strategies), run them, compare.

    ``base`` is the config every choice starts from (dataset, workers, epochs, ...); ``choices`` the names
    offered (default: every preset, see :func:`dgnn_lab.experiments.compare.preset_names`) or a mapping
    ``{name: overrides}`` of your own; ``selected`` those ticked at first. ``root`` is the cache directory
    (``runs/compare``). ``metric`` and ``bytes`` choose the figures' accuracy and byte counts. ``repeats``
    trains each configuration that many times (see :func:`dgnn_lab.experiments.compare.compare`): pass 3 to
    compare their time per epoch.
    """

    def __init__(self, base: Any = None, *, choices: Iterable[str] | Mapping[str, Any] | None = None,
                 selected: Iterable[str] | None = None, root: str | Path | None = None, reuse: bool = True,
                 static: bool | None = None, metric: str = "test_acc", bytes: str = "training",
                 title: str | None = None, repeats: int = 1) -> None:
        from dgnn_lab.experiments import compare as tc

        self._tc = tc
        if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
            raise ValueError(f"repeats must be an int >= 1, got {repeats!r}")
        self.repeats = repeats
        vc._check_metric(metric)
        vc._check_bytes(bytes)
        self.metric, self.bytes = metric, bytes
        self.base = base
        if choices is None:
            self._choices: dict[str, Any] = {n: n for n in tc.preset_names()}
        elif isinstance(choices, Mapping):
            self._choices = dict(choices)
        else:
            self._choices = {}
            for n in choices:
                tc.preset(n)  # ValueError naming the valid presets
                self._choices[n] = n
        if not self._choices:
            raise ValueError("StrategyComparator needs at least one choice")
        chosen = list(selected) if selected is not None else list(self._choices)[:2]
        bad = [n for n in chosen if n not in self._choices]
        if bad:
            raise ValueError(f"selected {bad} are not among the choices: {', '.join(self._choices)}")
        tc.resolve({n: self._choices[n] for n in self._choices}, base)  # every choice valid before any run
        self.root, self.reuse = root, reuse
        self.static = (not _in_kernel()) if static is None else bool(static)
        self.title = title
        self.comparison = None
        self.error: BaseException | None = None
        self.dashboard: Dashboard | None = None
        self._stop = threading.Event()
        self._finished = threading.Event()
        self._finished.set()  # nothing running yet
        self._thread: threading.Thread | None = None
        self._current: Any = None
        self._log: list[str] = []
        self._static_handles: dict[str, Any] = {}
        self._build(chosen)

    # ------------------------------------------------------------------------------------- public API

    @property
    def selected(self) -> list[str]:
        """The ticked choices, in the order offered."""
        return [n for n, box in self.checkboxes.items() if box.value]

    @selected.setter
    def selected(self, names: Iterable[str]) -> None:
        names = list(names)
        bad = [n for n in names if n not in self._choices]
        if bad:
            raise ValueError(f"{bad} are not among the choices: {', '.join(self._choices)}")
        for n, box in self.checkboxes.items():
            box.value = n in names

    def run(self, names: Iterable[str] | None = None) -> StrategyComparator:
        """Start the selected (or ``names``) configurations in a background thread; returns at once (the Run
        button does the same). Raises ``RuntimeError`` while a comparison is still running."""
        if not self._finished.is_set():
            raise RuntimeError("a comparison is already running: wait() for it or stop() it first")
        if names is not None:
            self.selected = names
        todo = self.selected
        if not todo:
            raise ValueError(f"tick at least one configuration; choices: {', '.join(self._choices)}")
        self._stop.clear()
        self._finished.clear()
        self.error = None
        self.comparison = None
        self._log = []
        self.run_button.disabled = True
        self.stop_button.disabled = False
        self._thread = threading.Thread(target=self._work, args=(todo,), daemon=True, name="dgnn-comparator")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Interrupt the running configuration and skip the rest (finished ones stay in the table)."""
        self._stop.set()
        handle = self._current
        if handle is not None:
            handle.stop()

    def wait(self, timeout: float | None = None):
        """Block until the comparison ends; returns the :class:`~dgnn_lab.experiments.compare.Comparison` (raises
        a run's error, ``TimeoutError`` after ``timeout`` s). An Interrupt while waiting stops the runs."""
        try:
            if not wait_for(self._finished, timeout):
                raise TimeoutError(f"comparison still running after {timeout} s")
        except KeyboardInterrupt:
            self.stop()
            raise
        if self.error is not None:
            raise self.error
        return self.comparison

    def figures(self) -> dict[str, go.Figure]:
        """The comparison figures for the finished comparison (empty before)."""
        if self.comparison is None or not self.comparison.results:
            return {}
        runs = self.comparison.records()
        cores = next((r.cores for r in self.comparison.results.values() if r.cores), None)
        return {
            "accuracy_vs_bytes": vc.accuracy_vs_bytes_figure(runs, metric=self.metric, bytes=self.bytes),
            "accuracy_vs_time": vc.accuracy_vs_time_figure(runs, metric=self.metric, cores=cores),
            "frontier": vc.frontier_figure(runs, metric=self.metric, bytes=self.bytes),
            "time_and_bytes": vc.time_and_bytes_figure(runs, cores=cores),
        }

    def bytes_matrix(self, name: str | None = None, traffic: str = "train"):
        """Bytes run ``name`` (default: the first) sent, as a labelled table: sender rows, receiver columns
        (ranks); training traffic by default, ``traffic="eval"`` or ``"all"``. None before a comparison."""
        if self.comparison is None or not self.comparison.results:
            return None
        return self.comparison.bytes_matrix(name if name is not None else next(iter(self.comparison.results)),
                                            traffic)

    def table(self):
        """The results table's main columns (the full one is ``comparison.table``)."""
        if self.comparison is None:
            return None
        t = self.comparison.table
        return t[[c for c in _TABLE_COLUMNS if c in t.columns] +
                 [c for c in t.columns if "staleness" in str(c)]]

    def __repr__(self) -> str:
        state = "running" if not self._finished.is_set() else ("done" if self.comparison is not None else "idle")
        return f"StrategyComparator({state}, selected={self.selected})"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not self.static:
            display(self.widget)
            return
        handles = {"log": display(_HTML(self._static_log()), display_id=True),
                   "table": display(_HTML(""), display_id=True)}
        for name in _FIGURE_NAMES:
            handles[name] = display(_HTML(""), display_id=True)
        self._static_handles = handles  # one assignment: the worker thread sees all handles or none
        if self.comparison is not None:
            self._update_static()

    # ------------------------------------------------------------------------------------- internals

    def _build(self, chosen: list[str]) -> None:
        self.checkboxes = {n: W.Checkbox(value=n in chosen, description=n, indent=False,
                                         layout=W.Layout(width="150px")) for n in self._choices}
        self.run_button = W.Button(description="Run", button_style="success", icon="play",
                                   tooltip="train the ticked configurations one after another (cached runs load)")
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop", disabled=True,
                                    tooltip="interrupt the running configuration and skip the rest")
        self.run_button.on_click(lambda _b: self._on_run_click())
        self.stop_button.on_click(lambda _b: threading.Thread(target=self.stop, daemon=True).start())
        self.progress = W.IntProgress(value=0, min=0, max=1, description="runs", layout=W.Layout(width="240px"))
        self.status_html = W.HTML("")
        self.live = W.Box(layout=W.Layout(width="100%"))
        self.results = W.Box(layout=W.Layout(display="flex", flex_flow="row wrap", width="100%"))
        boxes = W.Box(list(self.checkboxes.values()), layout=W.Layout(display="flex", flex_flow="row wrap"))
        header = W.HBox([self.run_button, self.stop_button, self.progress], layout=W.Layout(align_items="center"))
        parts = [boxes, header, self.status_html, self.live, self.results]
        if self.title:
            parts.insert(0, W.HTML(f"<b>{html.escape(self.title)}</b>"))
        self.widget = W.VBox(parts)
        self.widget.add_class("dgnn-comparator")

    def _on_run_click(self) -> None:
        try:
            self.run()
        except (ValueError, RuntimeError) as e:
            self.status_html.value = f"<span style='color:#c00'>{html.escape(str(e))}</span>"

    def _say(self, line: str) -> None:
        self._log.append(line)
        self.status_html.value = "<br>".join(self._log[-6:])
        if self._static_handles:
            self._static_handles["log"].update(_HTML(self._static_log()))

    def _work(self, todo: list[str]) -> None:
        self.progress.max, self.progress.value = len(todo) * self.repeats, 0
        self.results.children = []

        def on_start(name: str, handle: Any) -> None:
            self._current = handle
            if self._stop.is_set():
                handle.stop()
            self._say(f"▶ <b>{html.escape(name)}</b>: training ({handle.world_size} processes) in "
                      f"<code>{html.escape(str(handle.run_dir))}</code>")
            if not self.static:
                self.dashboard = Dashboard(handle, title=name, static=False)
                self.live.children = [self.dashboard.widget]

        def on_done(name: str, result: Any, cached: bool) -> None:
            self._current = None
            if self.dashboard is not None and not cached:
                self.dashboard.finished.wait(60.0)  # its last frame, before the results are drawn
            s = result.summary()
            acc = s["test_acc_at_best_val"]
            train = s.get("train_bytes", rec.training_bytes(result.records))
            evaluation = s["total_bytes"] - train
            how = "loaded from cache" if cached else result.status
            spe = rec.s_per_epoch(result.records)
            self._say(f"✓ <b>{html.escape(name)}</b>: {html.escape(how)} · test accuracy at best validation "
                      f"{acc if acc is None else f'{acc:.3f}'} · {rec.format_bytes(train)} training traffic"
                      + (f" (+ {rec.format_bytes(evaluation)} evaluation)" if evaluation else "")
                      + (f" · {spe:.4g} s/epoch" if spe is not None else ""))
            self.progress.value += 1

        try:
            self.comparison = self._tc.compare({n: self._choices[n] for n in todo}, self.base, root=self.root,
                                               reuse=self.reuse, on_start=on_start, on_done=on_done,
                                               stop=self._stop, errors="record", repeats=self.repeats,
                                               progress=False)  # the comparator is its own live view
            for name, e in self.comparison.errors.items():
                self._say(f"<span style='color:#c00'>✗ <b>{html.escape(name)}</b> failed: "
                          f"{html.escape(self._tc._one_line(e))}</span>")
            if self._stop.is_set():
                self._say("<span style='color:#c80'>stopped: the remaining configurations were skipped</span>")
            self._show_results()
        except BaseException as e:  # noqa: BLE001 - shown in the widget and re-raised by wait()
            self.error = e
            self._say(f"<span style='color:#c00'>{html.escape(type(e).__name__)}: {html.escape(str(e))}</span>")
        finally:
            self._current = None
            self.run_button.disabled = False
            self.stop_button.disabled = True
            self._finished.set()

    def _show_results(self) -> None:
        figs = self.figures()
        table = self.table()
        if self.static:
            self._update_static()
            return
        widgets: list[Any] = []
        for fig in figs.values():
            fig.update_layout(width=560)
            widgets.append(go.FigureWidget(fig))
        if table is not None:
            widgets.append(W.HTML(_table_html(table)))
        self.results.children = widgets

    def _static_log(self) -> str:
        return "<br>".join(self._log) or "StrategyComparator: call <code>.run()</code>, then <code>.wait()</code>"

    def _update_static(self) -> None:
        handles = self._static_handles
        if not handles:
            return
        handles["log"].update(_HTML(self._static_log()))
        table = self.table()
        if table is not None:
            handles["table"].update(_HTML(_table_html(table)))
        for name, fig in self.figures().items():
            handles[name].update(fig)


def _table_html(table: Any) -> str:
    from dgnn_lab.experiments.compare import display_frame

    return display_frame(table).to_html(index=False, na_rep="")  # 52,992 bytes, 0.02134 s: no 5.299e+04


class _HTML:
    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return self.text
