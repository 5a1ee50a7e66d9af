"""``ProgressView``: the live progress of a sequence of runs in a notebook (``compare``, ``minibatch_study``).

One bar per run, tqdm.notebook-style: the run's name, epochs done of the total, the seconds since it started,
then, once it ends, its status and headline figures. It takes the progress events of
:mod:`dgnn_lab.experiments.compare` (plain dicts: ``start``, ``epoch``, ``done``, ``close``), which may come
from a launch's telemetry thread; widgets are updated by one background thread at most five times a second,
always with the full current state. When the runs are over (``close``) the widgets are replaced by a plain
HTML summary of the same lines, so a saved or nbclient-run notebook shows them without a widget front end.

The experiments never import this module themselves outside a kernel (nothing below ``dgnn_lab.widgets``
imports ipywidgets): :func:`dgnn_lab.experiments.compare.progress_sink` imports it only inside one.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Mapping
from typing import Any

import ipywidgets as W

__all__ = ["ProgressView"]

_STYLES = {"done": "success", "cached": "success", "failed": "danger", "interrupted": "warning",
           "stopped": "warning"}
_MARKS = {"done": "✓", "cached": "✓", "failed": "✗", "interrupted": "■", "stopped": "■"}
_COLOURS = {"failed": "#c00", "interrupted": "#c80", "stopped": "#c80"}


class ProgressView:
    """Live bars for runs that train one after another; call it with progress events (see the module
    docstring). ``show()`` displays it (and returns it); ``close()`` (or a ``close`` event) ends it."""

    def __init__(self, title: str = "", *, refresh_s: float = 0.2) -> None:
        self.title = title
        self.refresh_s = float(refresh_s)
        self._lock = threading.Lock()
        self._runs: dict[str, dict] = {}
        self._closed = threading.Event()
        self._ticker: threading.Thread | None = None
        self._handle: Any = None
        self.header = W.HTML(f"<b>{html.escape(title)}</b>" if title else "")
        self.rows = W.VBox([])
        self.widget = W.VBox([self.header, self.rows])
        self.widget.add_class("dgnn-progress")

    # ------------------------------------------------------------------------------------- public API

    def show(self) -> ProgressView:
        """Display the view in the current cell's output (replaced by the summary on close)."""
        from IPython.display import display

        self._handle = display(self.widget, display_id=True)
        return self

    def __call__(self, event: Mapping) -> None:
        kind = event.get("event")
        if kind == "start":
            self._start(event)
        elif kind == "epoch":
            with self._lock:
                st = self._runs.get(str(event.get("run")))
                if st is not None and st["status"] == "running":
                    st["epoch"] = max(st["epoch"], int(event.get("epoch") or 0))
                    if event.get("epochs"):
                        st["epochs"] = int(event["epochs"])
        elif kind == "done":
            self._done(event)
        elif kind == "close":
            self.close()

    @property
    def lines(self) -> list[str]:
        """One plain-text line per run so far (what the summary shows)."""
        with self._lock:
            return [self._text(st) for st in self._runs.values()]

    def close(self) -> None:
        """Stop updating; runs still marked running are shown as stopped; the widgets give way to the summary."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            for st in self._runs.values():
                if st["status"] == "running":
                    st["status"], st["elapsed"] = "stopped", time.monotonic() - st["t0"]
                    self._paint(st)
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join(2.0)
        if self._handle is not None:
            self._handle.update(_Summary(self.title, self.lines, self._html_lines()))
            self.widget.close()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def __repr__(self) -> str:
        return "\n".join([self.title, *self.lines]) if self.title else "\n".join(self.lines)

    # ------------------------------------------------------------------------------------- internals

    def _start(self, event: Mapping) -> None:
        label = str(event.get("run"))
        epochs = max(int(event.get("epochs") or 1), 1)
        bar = W.IntProgress(value=0, min=0, max=epochs, description=_short(label), bar_style="info",
                            style={"description_width": "140px"}, layout=W.Layout(width="380px", flex="0 0 380px"))
        text = W.HTML("starting…", layout=W.Layout(flex="1 1 auto"))
        st = {"label": label, "bar": bar, "text": text, "t0": time.monotonic(), "epoch": 0, "epochs": epochs,
              "status": "running", "elapsed": 0.0, "line": "", "index": event.get("index"),
              "count": event.get("count")}
        with self._lock:
            self._runs[label] = st
            self.rows.children = [*self.rows.children, W.HBox([bar, text], layout=W.Layout(align_items="center"))]
        if self._ticker is None and not self._closed.is_set():
            self._ticker = threading.Thread(target=self._tick, daemon=True, name="dgnn-progress")
            self._ticker.start()

    def _done(self, event: Mapping) -> None:
        with self._lock:
            st = self._runs.get(str(event.get("run")))
            if st is None:
                return
            st["status"] = str(event.get("status") or "done")
            secs = event.get("elapsed_s")
            st["elapsed"] = float(secs) if isinstance(secs, (int, float)) else time.monotonic() - st["t0"]
            st["line"] = str(event.get("line") or "")
            if st["status"] in ("done", "cached"):
                st["epoch"] = st["epochs"]
            self._paint(st)

    def _tick(self) -> None:
        while not self._closed.wait(self.refresh_s):
            with self._lock:
                for st in self._runs.values():
                    if st["status"] == "running":
                        st["elapsed"] = time.monotonic() - st["t0"]
                        self._paint(st)

    def _paint(self, st: dict) -> None:
        """Send one run's full state to its widgets (called with the lock held)."""
        bar = st["bar"]
        if bar.max != st["epochs"]:
            bar.max = st["epochs"]
        bar.value = min(st["epoch"], st["epochs"])
        if st["status"] == "running":
            what = f"{st['epoch']}/{st['epochs']} epochs" + (" (starting the workers)" if not st["epoch"] else "")
            st["text"].value = html.escape(f"{what} · {st['elapsed']:.1f} s")
            return
        bar.bar_style = _STYLES.get(st["status"], "danger")
        colour = _COLOURS.get(st["status"])
        body = html.escape(self._text(st, mark=False))
        st["text"].value = f"<span style='color:{colour}'>{body}</span>" if colour else body

    def _text(self, st: dict, mark: bool = True) -> str:
        if st["status"] == "running":
            core = f"{st['label']}: {st['epoch']}/{st['epochs']} epochs · {st['elapsed']:.1f} s"
        else:
            how = "loaded from cache" if st["status"] == "cached" else f"{st['status']} in {st['elapsed']:.1f} s"
            core = f"{st['label']}: {how}" + (f" · {st['line']}" if st["line"] else "")
        if not mark:
            return core.split(": ", 1)[1] if ": " in core else core
        return f"{_MARKS.get(st['status'], '…')} {core}"

    def _html_lines(self) -> list[str]:
        with self._lock:
            out = []
            for st in self._runs.values():
                colour = _COLOURS.get(st["status"])
                line = html.escape(self._text(st))
                out.append(f"<span style='color:{colour}'>{line}</span>" if colour else line)
            return out


def _short(label: str, n: int = 22) -> str:
    return label if len(label) <= n else label[: n - 1] + "…"


class _Summary:
    """What the view leaves behind: its lines as HTML (and as text for a plain front end)."""

    def __init__(self, title: str, lines: list[str], html_lines: list[str]) -> None:
        self.title, self.lines, self.html_lines = title, lines, html_lines

    def _repr_html_(self) -> str:
        head = f"<b>{html.escape(self.title)}</b><br>" if self.title else ""
        return f"<div class='dgnn-progress-summary'>{head}{'<br>'.join(self.html_lines)}</div>"

    def __repr__(self) -> str:
        return "\n".join([self.title, *self.lines]) if self.title else "\n".join(self.lines)
