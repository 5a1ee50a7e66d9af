"""Live training dashboard: ipywidgets + plotly ``FigureWidget``, fed by telemetry records.

How it stays correct and cheap while workers train:

* The cell that creates a :class:`Dashboard` returns at once; ONE background thread drains records (from a
  ``RunHandle`` or any iterable of record dicts) and redraws. (A plain iterable may block between records,
  so a second, trivial thread only moves its records into a queue; it never draws.)
* Redraws are throttled: at most ``max_fps`` (10) frames a second, and never more than about a fifth of one
  core (after a frame that took ``d`` seconds to build, the next waits at least ``4 d``), because on a small
  laptop the notebook competes with the workers for the same cores.
* Every frame sends the FULL current state of every figure (all trace arrays, the whole layout but its
  template) inside one ``batch_update``/``plotly_update`` message per figure, never appended deltas: Jupyter
  drops comm messages above ~1000/s, and a dropped delta would leave a wrong picture for good. Plotly skips
  keys whose value did not change, so a dropped message could still leave a stale title; hence the last frame,
  drawn after the run ends, replaces each figure with a freshly built widget: it is authoritative and complete.
* Every number comes from the records via :mod:`dgnn_lab.viz.training` (measured in the workers). Where
  widgets cannot render (no kernel, or ``static=True``), plain ``go.Figure`` objects are shown instead.
"""

from __future__ import annotations

import html
import os
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

import ipywidgets as W
import pandas  # noqa: F401 - see below
import plotly.graph_objects as go

from dgnn_lab import records as rec
from dgnn_lab.kernel_events import wait_for, widgets_can_render
from dgnn_lab.viz import minibatch as vm
from dgnn_lab.viz import training as vt

__all__ = ["Dashboard", "live_train"]

# plotly's validators find pandas through ``sys.modules``: imported here, before any drawing thread exists, so
# that thread can never see a half-imported pandas while the notebook's main thread is importing it.

_STAGES = "stages"  # mini-batch runs only: the per-step stage timeline, shown once step records exist
_END = object()


def _in_kernel() -> bool:
    """True inside a Jupyter kernel where widgets can render; False in scripts and plain terminals, and where
    ``DGNN_LAB_WIDGETS=0`` (or Colab) asks for plain figures (:func:`dgnn_lab.kernel_events.widgets_can_render`)."""
    return widgets_can_render()


def _machine_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _is_handle(source: Any) -> bool:
    return hasattr(source, "status") and hasattr(source, "stop") and (
        hasattr(source, "snapshot") or hasattr(source, "records"))


class Dashboard:
    """Live view of one training run: loss/accuracy, time per worker, bytes matrix, phase timeline (and, for
    mini-batch runs, the per-step stage timeline).

    ``source`` is a ``RunHandle`` (from ``dgnn_lab.dist.launch`` or ``dgnn_lab.train.api.start``) or any
    iterable of telemetry records (a finished run's ``records``, a generator, a fake feed in a test).
    Display it by making it the last expression of a cell. ``static=None`` picks widgets inside a Jupyter
    kernel and plain figures elsewhere; ``static=True`` forces plain figures (updated about once a second
    in place when shown in a notebook).

    The bytes shown (the headline and the bytes heatmap) are training traffic; the evaluation's (purposes
    ``eval``, ``eval_*``) is given apart in the header. ``traffic="eval"`` or ``"all"`` shows that instead.
    """

    def __init__(self, source: Any, *, total_epochs: int | None = None, world_size: int | None = None,
                 cores: int | None = None, static: bool | None = None, max_fps: float = 10.0,
                 last_epochs: int = 3, title: str | None = None, figure_width: int = 560,
                 traffic: str = "train") -> None:
        self.traffic = rec.check_traffic(traffic)
        if not max_fps > 0:
            raise ValueError(f"max_fps must be > 0, got {max_fps}")
        if int(last_epochs) < 1:
            raise ValueError(f"last_epochs must be >= 1, got {last_epochs}")
        if int(figure_width) < 200:
            raise ValueError(f"figure_width must be >= 200 pixels, got {figure_width}")
        self.figure_width = int(figure_width)
        self.handle = source if _is_handle(source) else None
        if self.handle is None and (isinstance(source, (str, bytes, Mapping)) or not isinstance(source, Iterable)):
            raise ValueError(
                f"Dashboard needs a RunHandle or an iterable of telemetry records, got {type(source).__name__}")
        self.static = (not _in_kernel()) if static is None else bool(static)
        self.max_fps = float(max_fps)
        self.last_epochs = int(last_epochs)
        self.title = title
        self._world_size = world_size if world_size is not None else getattr(self.handle, "world_size", None)
        self._cores_arg = cores if cores is not None else getattr(self.handle, "cores", None)
        self._total_epochs = total_epochs if total_epochs is not None else self._epochs_from_config()
        self._records: list[dict] = []
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        self.finished = threading.Event()  # set once the last frame is drawn
        self._ended = threading.Event()  # set once the source has delivered everything
        self.error: BaseException | None = None
        self._frame_log: list[dict] = []
        self._drawn = 0
        self._last_static = 0.0
        self._static_handles: dict[str, Any] = {}
        self._build_widgets()
        self._iter_queue: queue.Queue | None = None
        if self.handle is None:
            self._iter_queue = queue.Queue()
            threading.Thread(target=self._read_iterable, args=(source,), daemon=True,
                             name="dgnn-dashboard-reader").start()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="dgnn-dashboard")
        self._thread.start()

    # ------------------------------------------------------------------------------------- public API

    @property
    def records(self) -> list[dict]:
        """A copy of every record received so far."""
        with self._lock:
            return list(self._records)

    @property
    def status(self) -> str:
        """``running`` until the source ends, then the handle's status (or ``done``/``stopped``/``failed``)."""
        if self.handle is not None:
            return str(self.handle.status)
        if not self._ended.is_set():
            return "running"
        if self.error is not None:
            return "failed"
        return "stopped" if self._stop_requested.is_set() else "done"

    def figures(self) -> dict[str, go.Figure]:
        """The figures for the records received so far, as plain ``go.Figure`` objects: curves, phases, bytes,
        timeline, and for mini-batch runs ``stages`` (the per-step stage timeline)."""
        return {name: go.Figure(spec) for name, spec in self._build_specs(self.records).items()}

    def stop(self) -> None:
        """Interrupt the run (``handle.stop()``); for a plain record feed, stop reading it."""
        self._stop_requested.set()
        if self.handle is not None:
            self.handle.stop()

    def wait(self, timeout: float | None = None):
        """Block until the last frame is drawn; returns ``handle.wait()``'s ``RunResult`` for a handle.

        Raises the worker's error (``WorkerError``) if the run failed, ``TimeoutError`` after ``timeout``
        seconds in all. Jupyter's Interrupt (KeyboardInterrupt) while waiting stops the run, then re-raises.
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(deadline - time.monotonic(), 0.0)

        try:
            if not wait_for(self.finished, timeout):  # handles this notebook's clicks (Stop) meanwhile
                raise TimeoutError(f"run still going after {timeout} s")
        except KeyboardInterrupt:
            self.stop()
            raise
        self._thread.join(left())
        if self.handle is not None:
            return self.handle.wait(left())
        if self.error is not None:
            raise self.error
        return None

    def stats(self) -> dict:
        """Measured redraw behaviour: frames, frame rate, seconds to build+send a frame, record-to-screen lag.

        ``latency_*`` is the wall time from a worker emitting a record to the end of the first frame that
        includes it (both ``time.time()`` on this machine), i.e. what throttling adds to the workers' delay.
        """
        log = list(self._frame_log)
        out: dict[str, Any] = {"frames": len(log), "records": len(self._records)}
        if not log:
            return out
        draws = [f["draw_s"] for f in log]
        out.update(mean_draw_s=sum(draws) / len(draws), max_draw_s=max(draws))
        starts = [f["start"] for f in log if not f["final"]]
        if len(starts) > 1:
            gaps = [b - a for a, b in zip(starts[:-1], starts[1:], strict=True)]
            out.update(min_interval_s=min(gaps), mean_interval_s=sum(gaps) / len(gaps),
                       max_rate_hz=1.0 / min(gaps) if min(gaps) > 0 else float("inf"))
        lat = [x for f in log for x in f["latencies"]]
        if lat:
            out.update(latency_mean_s=sum(lat) / len(lat), latency_max_s=max(lat))
        return out

    # ------------------------------------------------------------------------------------- display

    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not self.static:
            display(self.widget)
            return
        records = self.records
        specs = self._build_specs(records)
        handles = {"summary": display(_StaticHTML(self._summary_html(records)), display_id=True)}
        for name in specs:
            handles[name] = display(go.Figure(specs[name]), display_id=True)
        self._static_handles = handles  # one assignment: the drawing thread sees all handles or none

    def __repr__(self) -> str:
        return f"Dashboard(status={self.status!r}, records={len(self._records)}, static={self.static})"

    # ------------------------------------------------------------------------------------- internals

    def _expects_steps(self) -> bool:
        """A mini-batch run (by its config) will send step records: keep a place for the stage timeline."""
        cfg = getattr(self.handle, "config", None)
        return isinstance(cfg, Mapping) and cfg.get("mode") == "minibatch"

    def _epochs_from_config(self) -> int | None:
        cfg = getattr(self.handle, "config", None)
        if isinstance(cfg, Mapping) and isinstance(cfg.get("epochs"), int):
            return int(cfg["epochs"])
        return None

    def _cores(self, records: list[dict]) -> int:
        if self._cores_arg is not None:
            return int(self._cores_arg)
        return vt.cores_of(records) or _machine_cores()

    def _size(self, records: list[dict]) -> int:
        return vt.world_size_of(records, self._world_size)

    def _total(self, records: list[dict]) -> int | None:
        if self._total_epochs is not None:
            return self._total_epochs
        for r in records:
            if r.get("type") == "run" and isinstance(r.get("config"), Mapping):
                e = r["config"].get("epochs")
                if isinstance(e, int):
                    return e
        return None

    def _build_specs(self, records: list[dict]) -> dict[str, dict]:
        """The figures as plain dicts (plotly validates them once, when they reach a widget)."""
        size, cores = self._size(records), self._cores(records)
        specs = {
            "curves": vt.FIGURE_SPECS["curves"](records, world_size=size, cores=cores,
                                                total_epochs=self._total(records)),
            "phases": vt.FIGURE_SPECS["phases"](records, world_size=size, cores=cores),
            "work": vt.FIGURE_SPECS["work"](records, world_size=size, cores=cores),
            "bytes": vt.FIGURE_SPECS["bytes"](records, world_size=size, cores=cores, traffic=self.traffic),
            "timeline": vt.FIGURE_SPECS["timeline"](records, world_size=size, cores=cores,
                                                    last_epochs=self.last_epochs),
        }
        if self._expects_steps() or vm.has_steps(records):
            specs[_STAGES] = vm.FIGURE_SPECS["stages"](records, world_size=size, cores=cores)
        for spec in specs.values():  # a fixed width: the widget can't size itself to a flex cell reliably
            spec["layout"]["width"] = self.figure_width
        return specs

    def _build_widgets(self) -> None:
        self.stop_button = W.Button(description="Stop", button_style="danger", icon="stop",
                                    tooltip="interrupt all workers (the run is recorded as interrupted)")
        self.stop_button.on_click(lambda _b: self._on_stop_click())
        self.progress = W.IntProgress(value=0, min=0, max=max(self._total_epochs or 1, 1),
                                      description="epochs", layout=W.Layout(width="260px"))
        self.totals = W.Label(value="waiting for the first records…")
        self.status_html = W.HTML(value="")
        if self.static:
            self.figure_widgets: dict[str, Any] = {}
            self.widget = None
            return
        # The figure widgets are made by the drawing thread's first frame (plotly's first widget costs about a
        # second), so the launching cell returns at once. Two figures a row on a wide screen, one on a narrow.
        self.figure_widgets = {}
        self._grid = W.Box(children=[W.HTML("<i>preparing figures…</i>")],
                           layout=W.Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.progress.layout.margin = "0 12px"
        header = W.HBox([self.stop_button, self.progress, self.totals], layout=W.Layout(align_items="center"))
        parts = [header, self.status_html, self._grid]
        if self.title:
            parts.insert(0, W.HTML(f"<b>{html.escape(self.title)}</b>"))
        self.widget = W.VBox(parts)
        self.widget.add_class("dgnn-dashboard")  # a stable hook for browser tests and custom CSS

    def _on_stop_click(self) -> None:
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        # handle.stop() may take a second or two to end the workers; keep the kernel's main thread free.
        threading.Thread(target=self.stop, daemon=True, name="dgnn-dashboard-stop").start()

    def _read_iterable(self, source: Iterable) -> None:
        assert self._iter_queue is not None
        try:
            for rec in source:
                if self._stop_requested.is_set():
                    break
                self._iter_queue.put(rec)
        except BaseException as exc:  # noqa: BLE001 - shown on the dashboard and re-raised by wait()
            self._iter_queue.put(("__error__", exc))
        self._iter_queue.put(_END)

    def _poll(self, timeout: float) -> tuple[list[dict], bool]:
        """New records and whether the source has ended (everything it will ever send is in ``new``)."""
        if self.handle is not None:
            ended = self.handle.status != "running"  # read before the records: none can be missed
            snap = self.handle.snapshot() if hasattr(self.handle, "snapshot") else list(self.handle.records)
            with self._lock:
                new = list(snap[len(self._records):])
            if not new and not ended:
                time.sleep(timeout)
            return new, ended
        assert self._iter_queue is not None
        new, ended = [], False
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self._iter_queue.get(timeout=max(deadline - time.monotonic(), 0.0) if not new else 0.0)
            except queue.Empty:
                break
            if item is _END:
                ended = True
                break
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "__error__":
                self.error = item[1]
                continue
            new.append(item)
        return new, ended or self._stop_requested.is_set()

    def _loop(self) -> None:
        interval = 1.0 / self.max_fps
        next_frame = 0.0
        dirty = True
        try:
            while True:
                wait = max(next_frame - time.monotonic(), 0.0) if dirty else interval
                new, ended = self._poll(min(wait, interval) if wait > 0 else 0.01)
                if new:
                    with self._lock:
                        self._records.extend(new)
                    dirty = True
                if ended:
                    break
                if dirty and time.monotonic() >= next_frame:
                    start = time.monotonic()
                    self._draw(final=False)
                    took = time.monotonic() - start
                    next_frame = start + max(interval, 4.0 * took)
                    dirty = False
            if self.handle is not None:  # records that arrived between the status change and now
                with self._lock:
                    snap = self.handle.snapshot() if hasattr(self.handle, "snapshot") else list(self.handle.records)
                    self._records.extend(snap[len(self._records):])
            self._ended.set()
            self._draw(final=True)
        except BaseException as exc:  # noqa: BLE001 - a dashboard bug must not pass silently
            self.error = exc
            self._ended.set()
            self.status_html.value = f"<span style='color:#c00'>dashboard error: {html.escape(repr(exc))}</span>"
        finally:
            self.finished.set()

    def _draw(self, final: bool) -> None:
        start = time.monotonic()
        with self._lock:
            records = list(self._records)
            fresh = self._records[self._drawn:]
            stamps = [float(r["time"]) for r in fresh if isinstance(r.get("time"), (int, float))]
            self._drawn = len(records)
        specs = self._build_specs(records)
        self._update_header(records, final)
        if self.static:
            handles = self._static_handles
            if handles and (final or time.monotonic() - self._last_static >= 1.0):
                # plain figures are resent whole, so update them in place about once a second only
                handles["summary"].update(_StaticHTML(self._summary_html(records)))
                for name in specs:
                    if name in handles:  # a figure that appeared after display is in figures() only
                        handles[name].update(go.Figure(specs[name]))
                self._last_static = time.monotonic()
            if final and not handles and not _in_kernel():
                print(f"dgnn_lab dashboard ({self.status}): {self._summary_text(records)}")
        elif final or not self.figure_widgets:
            # First frame, and the authoritative last one: fresh widgets built from the complete state.
            old = self.figure_widgets
            self.figure_widgets = {name: go.FigureWidget(specs[name]) for name in specs}
            self._grid.children = [self.figure_widgets[n] for n in specs]
            for w in old.values():
                w.close()
        else:
            for name in specs:
                if name in self.figure_widgets:
                    _send_full_state(self.figure_widgets[name], specs[name])
                else:  # the stage timeline, once the first step record arrives
                    self.figure_widgets = {**self.figure_widgets, name: go.FigureWidget(specs[name])}
                    self._grid.children = [self.figure_widgets[n] for n in specs]
        now = time.time()
        self._frame_log.append({"start": start, "draw_s": time.monotonic() - start, "final": final,
                                "latencies": [now - t for t in stamps]})

    def _update_header(self, records: list[dict], final: bool) -> None:
        size, cores = self._size(records), self._cores(records)
        total = self._total(records)
        counts: dict[int, set] = {}
        for r in records:
            if r.get("type") == "epoch":
                counts.setdefault(int(r["epoch"]), set()).add(int(r["rank"]))
        done_epochs = sum(1 for ranks in counts.values() if len(ranks) >= size)
        if total:
            self.progress.max = total
        self.progress.value = min(done_epochs, self.progress.max)
        self.totals.value = self._summary_text(records)
        status = self.status if final else "running"
        colour = {"done": "#2a7", "running": "#555", "interrupted": "#c80", "stopped": "#c80"}.get(status, "#c00")
        threads = vt.threads_of(records)
        note = vt.workers_note(size, cores, threads=threads)
        if size * (threads or 1) > cores:
            note = f"<span style='color:#c60'>⚠ {html.escape(note)}</span>"
        else:
            note = html.escape(note)
        lines = [f"<b style='color:{colour}'>{html.escape(status)}</b> · {note}"]
        errors = [r for r in records if r.get("type") == "error"]
        for r in errors[:1]:
            tb = str(r.get("traceback", ""))
            last = tb.strip().splitlines()[-1] if tb.strip() else "error"
            lines.append(f"<span style='color:#c00'>worker {html.escape(str(r.get('rank')))} failed: "
                         f"{html.escape(last)}</span><details><summary>traceback</summary>"
                         f"<pre style='font-size:11px'>{html.escape(tb)}</pre></details>")
        if self.error is not None:
            lines.append(f"<span style='color:#c00'>{html.escape(type(self.error).__name__)}: "
                         f"{html.escape(str(self.error))}</span>")
        self.status_html.value = "<br>".join(lines)
        if final:
            self.stop_button.disabled = True
            self.stop_button.button_style = ""
            self.stop_button.description = "Stopped" if status in ("interrupted", "stopped") else "Finished"

    def _summary_text(self, records: list[dict]) -> str:
        total = self._total(records)
        curves = vt.epoch_curves(records)
        parts = []
        if curves["epoch"]:
            e = curves["epoch"][-1]
            parts.append(f"{e + 1}/{total} epochs" if total else f"{e + 1} epochs")
            if curves["loss"][-1] is not None:
                parts.append(f"loss {curves['loss'][-1]:.4f}")
            if curves["val_acc"][-1] is not None:
                parts.append(f"val {curves['val_acc'][-1]:.3f}")
        stamps = [float(r["time"]) for r in records if isinstance(r.get("time"), (int, float))]
        if stamps:
            since = "launch" if records[0].get("type") == "run" else "the first record"  # launcher: at launch
            parts.append(f"{max(stamps) - min(stamps):.1f} s since {since}")
        parts.extend(self._traffic_text(records))
        return " · ".join(parts) if parts else "waiting for the first records…"

    def _traffic_text(self, records: list[dict]) -> list[str]:
        """The headline bytes (training traffic by default) and, apart, the other traffic's."""
        split = rec.split_bytes(records)
        fb = vt.format_bytes
        if self.traffic == "all":
            return [f"{fb(split['train'] + split['eval'])} sent between workers (training {fb(split['train'])}"
                    f" + evaluation {fb(split['eval'])})"]
        other = "eval" if self.traffic == "train" else "train"
        out = [f"{fb(split[self.traffic])} sent between workers for {rec.TRAFFIC_LABELS[self.traffic]}"]
        if split[other]:
            out.append(f"{rec.TRAFFIC_LABELS[other]}: {fb(split[other])} (not in the figures)")
        return out

    def _summary_html(self, records: list[dict]) -> str:
        size, cores = self._size(records), self._cores(records)
        return (f"<b>{html.escape(self.status)}</b> · {html.escape(self._summary_text(records))} · "
                f"{html.escape(vt.workers_note(size, cores, threads=vt.threads_of(records)))}")


class _StaticHTML:
    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return self.text


def _send_full_state(widget: go.FigureWidget, spec: dict) -> None:
    """Copy every trace property and the whole layout of ``spec`` into ``widget``: one ``plotly_update``.

    The traces keep their number and order (the viz specs guarantee it), so property ``k`` of trace ``i``
    is ``restyle[k][i]``; a property a trace lacks is sent as None (unset).
    """
    data, layout = spec["data"], spec["layout"]
    if len(data) != len(widget.data) or any(
            d["type"] != t.type for d, t in zip(data, widget.data, strict=True)):
        widget.data = []
        widget.add_traces(data)
    keys = sorted({k for d in data for k in d} - {"type"})
    restyle = {k: [d.get(k) for d in data] for k in keys}
    widget.plotly_update(restyle_data=restyle, relayout_data={k: v for k, v in layout.items() if k != "template"})


def live_train(config: Any = None, **dashboard_kw: Any) -> Dashboard:
    """Start a training run (``dgnn_lab.train.api.start``) and return a :class:`Dashboard` attached to it.

    ``config`` is what ``start`` takes (a dict or a ``TrainConfig``), validated before any worker starts.
    Returns at once; make the dashboard a cell's last expression to show it. ``dashboard_kw`` go to
    :class:`Dashboard` (``static``, ``max_fps``, ``last_epochs``, ``title``, ``figure_width``).
    """
    from dgnn_lab.train.api import start

    return Dashboard(start(config), **dashboard_kw)
