"""The live dashboard driven by fake record feeds and a fake run handle (no processes, no browser)."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import plotly.graph_objects as go
import pytest

from dgnn_lab.viz import training as vt
from dgnn_lab.widgets.dashboard import Dashboard
from tests.test_viz_training import fake_run_records, with_evaluation


def _stamped(records: list[dict], start: float) -> list[dict]:
    """Records with emit times rewritten to ``start`` (real wall time) so latency can be measured."""
    out = []
    for r in records:
        r = dict(r)
        r["time"] = start
        out.append(r)
    return out


def paced_feed(records: list[dict], gap_s: float):
    """Yield records ``gap_s`` apart, stamping each with the wall time it is 'emitted'."""
    for r in records:
        time.sleep(gap_s)
        r = dict(r)
        r["time"] = time.time()
        yield r


class FakeHandle:
    """Just enough of ``RunHandle``: records appended by a 'run' thread, status, stop(), wait()."""

    def __init__(self, records: list[dict], gap_s: float = 0.002, world_size: int | None = None):
        self._all = records
        self._records: list[dict] = []
        self._lock = threading.Lock()
        self.status = "running"
        self.world_size = world_size
        self.config = {"epochs": max((r.get("epoch", -1) for r in records), default=-1) + 1}
        self.stop_calls = 0
        self._stopped = threading.Event()
        self._gap = gap_s
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        for r in self._all:
            if self._stopped.wait(self._gap):
                break
            r = dict(r)
            r["time"] = time.time()
            with self._lock:
                self._records.append(r)
        with self._lock:
            self._records.append({"type": "run", "rank": None, "time": time.time(),
                                  "status": "interrupted" if self._stopped.is_set() else "done",
                                  "world_size": self.world_size, "cores": 2, "config": self.config})
            self.status = "interrupted" if self._stopped.is_set() else "done"

    def snapshot(self):
        with self._lock:
            return list(self._records)

    def stop(self):
        self.stop_calls += 1
        self._stopped.set()

    def wait(self, timeout=None):
        self._thread.join(timeout)
        return "result"


def _figure_state(fig) -> dict:
    d = json.loads(fig.to_json())
    d["layout"].pop("template", None)
    return d


def test_final_frame_is_complete_and_equals_viz_of_all_records():
    recs = [r for r in fake_run_records(3, epochs=12) if r["type"] != "run"]
    dash = Dashboard(paced_feed(recs, 0.004), static=False, world_size=3, cores=2, total_epochs=12)
    dash.wait(timeout=20)
    assert dash.status == "done"
    got = dash.records
    assert len(got) == len(recs)
    expected = {
        "curves": vt.curves_figure(got, world_size=3, cores=2, total_epochs=12),
        "phases": vt.phase_bars_figure(got, world_size=3, cores=2),
        "bytes": vt.bytes_heatmap_figure(got, world_size=3, cores=2),
        "timeline": vt.timeline_figure(got, world_size=3, cores=2),
    }
    for name, fig in expected.items():
        fig.update_layout(width=dash.figure_width)
        widget = dash.figure_widgets[name]
        assert isinstance(widget, go.FigureWidget)
        assert _figure_state(widget) == _figure_state(fig), name
    assert dash.progress.value == 12 and dash.progress.max == 12
    assert dash.totals.value.startswith("12/12 epochs · loss 0.0833")
    assert "oversubscribed" in dash.status_html.value  # 3 workers, 2 cores
    assert dash.stop_button.disabled


def test_redraws_throttled_to_10_hz_and_latency_bounded(monkeypatch):
    """Measured by the test's own clocks around the dashboard, not by its ``stats()``: the feed stamps each
    record's emission, a wrapper around ``_draw`` notes when each frame ends and how many records it showed."""
    recs = [r for r in fake_run_records(2, epochs=100) if r["type"] == "epoch"]  # 200 records, >= 4 s
    gap_s, max_fps, max_lag_s = 0.02, 10, 2.0
    # Warm up: a process's first FigureWidget loads plotly's validators (seconds); time the throttle, not that.
    Dashboard(iter(recs[:2]), static=False, world_size=2, cores=2).wait(timeout=60)

    emitted: list[float] = []  # time.time() when record i left the feed

    def feed():
        for r in recs:
            time.sleep(gap_s)
            r = dict(r)
            r["time"] = time.time()
            emitted.append(r["time"])
            yield r

    frames: list[dict] = []  # per frame: wall time it ended, records it showed, final or not
    real_draw = Dashboard._draw

    def timed_draw(self, final):
        real_draw(self, final)
        frames.append({"end": time.time(), "shown": self._drawn, "final": final})

    monkeypatch.setattr(Dashboard, "_draw", timed_draw)
    t0 = time.monotonic()
    dash = Dashboard(feed(), static=False, world_size=2, cores=2, max_fps=max_fps)
    dash.wait(timeout=60)
    elapsed = time.monotonic() - t0
    assert len(dash.records) == len(emitted) == 200
    live = [f for f in frames if not f["final"]]
    assert [f["final"] for f in frames] == [False] * len(live) + [True]  # one final frame, last
    assert frames[-1]["shown"] == 200
    # throttled: at most max_fps frames a second over the whole run (+2 for the first and a rounding edge;
    # unthrottled, this feed gets ~160), and still live: several frames while the feed ran, not only the final
    assert 3 <= len(live) <= max_fps * elapsed + 2, (len(live), elapsed)
    # a record reaches the screen with the first frame that ends after it was emitted; a fixed, generous
    # bound on that lag (a 2-core machine under load; ~0.3 s on a quiet one), half the feed's length: a
    # dashboard that drew only at the start and the end would show the early records >= 4 s late
    lag, prev = [], 0
    for f in frames:
        lag += [f["end"] - emitted[i] for i in range(prev, f["shown"])]
        prev = f["shown"]
    assert len(lag) == 200 and min(lag) >= 0
    assert max(lag) < max_lag_s, max(lag)


def test_intermediate_frames_send_full_state():
    # Pause the feed midway: the frame drawn then must equal the figures of the records seen so far.
    recs = [r for r in fake_run_records(2, epochs=6) if r["type"] == "epoch"]
    gate = threading.Event()

    def feed():
        yield from recs[:6]
        gate.wait(10)
        yield from recs[6:]

    dash = Dashboard(feed(), static=False, world_size=2, cores=2)
    deadline = time.monotonic() + 10
    while dash.stats()["frames"] < 1 or dash._drawn < 6:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.15)
    partial = vt.bytes_heatmap_figure(recs[:6], world_size=2, cores=2).update_layout(width=560)
    assert _figure_state(dash.figure_widgets["bytes"]) == _figure_state(partial)
    assert list(dash.figure_widgets["curves"].data[0].x) == [0, 1, 2]
    gate.set()
    dash.wait(timeout=10)
    assert list(dash.figure_widgets["curves"].data[0].x) == [0, 1, 2, 3, 4, 5]


def test_bytes_shown_are_training_traffic_and_evaluation_is_given_apart():
    plain = [r for r in fake_run_records(3, epochs=4) if r["type"] != "run"]
    recs = with_evaluation(plain)  # + 2 x 700 B of evaluation to each peer, per worker and epoch
    train = int(sum(n for r in plain if r["type"] == "epoch" for per in r["bytes_sent"].values() for n in per.values()))
    evaluation = 4 * 3 * 2 * 2 * 700
    dash = Dashboard(iter(recs), static=False, world_size=3, cores=2)
    dash.wait(timeout=20)
    heat = np.array(dash.figure_widgets["bytes"].data[0].z)
    np.testing.assert_array_equal(heat, vt.bytes_matrix(plain, 3))  # what the run would send without evaluation
    assert heat.sum() == train
    text = dash.totals.value
    assert f"{vt.format_bytes(train)} sent between workers for training" in text
    assert f"evaluation: {vt.format_bytes(evaluation)} (not in the figures)" in text
    assert text.index("for training") < text.index("evaluation:")  # training is the headline
    every = Dashboard(iter(recs), static=False, world_size=3, cores=2, traffic="all")
    every.wait(timeout=20)
    np.testing.assert_array_equal(np.array(every.figure_widgets["bytes"].data[0].z), vt.bytes_matrix(recs, 3))
    assert (f"{vt.format_bytes(train + evaluation)} sent between workers (training {vt.format_bytes(train)} + "
            f"evaluation {vt.format_bytes(evaluation)})") in every.totals.value
    plain_dash = Dashboard(iter(plain), static=False, world_size=3, cores=2)
    plain_dash.wait(timeout=20)
    assert "evaluation" not in plain_dash.totals.value  # nothing to set apart
    with pytest.raises(ValueError, match="traffic must be one of"):
        Dashboard([], traffic="training")


def test_constructor_returns_at_once_and_stop_button_calls_handle_stop():
    recs = [r for r in fake_run_records(2, epochs=500) if r["type"] == "epoch"]
    t0 = time.monotonic()
    handle = FakeHandle(recs, gap_s=0.01, world_size=2)
    dash = Dashboard(handle, static=False)
    assert time.monotonic() - t0 < 2.0
    assert dash.progress.max == 500  # from handle.config
    time.sleep(0.3)
    assert dash.status == "running"
    dash.stop_button.click()
    assert dash.wait(timeout=10) == "result"
    assert handle.stop_calls == 1
    assert dash.status == "interrupted"
    assert "interrupted" in dash.status_html.value
    assert dash.stop_button.description == "Stopped"
    assert 0 < dash.progress.value < 500
    assert len(dash.records) == len(handle.snapshot())  # the final frame took every record


def test_worker_error_record_is_shown_with_traceback():
    recs = [r for r in fake_run_records(2, epochs=2) if r["type"] == "epoch"]
    tb = 'Traceback (most recent call last):\n  File "w.py", line 3\nRuntimeError: boom on rank 1'
    recs.append({"type": "error", "rank": 1, "time": 0.0, "traceback": tb})
    dash = Dashboard(iter(recs), static=False, world_size=2, cores=2)
    dash.wait(timeout=10)
    assert "worker 1 failed: RuntimeError: boom on rank 1" in dash.status_html.value
    assert "<details>" in dash.status_html.value


def test_feed_exception_reaches_wait():
    def feed():
        yield from fake_run_records(2, epochs=1)[:2]
        raise OSError("run log unreadable")

    dash = Dashboard(feed(), static=False)
    with pytest.raises(OSError, match="run log unreadable"):
        dash.wait(timeout=10)
    assert dash.status == "failed"
    assert "run log unreadable" in dash.status_html.value


def test_static_mode_outside_a_kernel(capsys):
    recs = fake_run_records(2, epochs=3)
    dash = Dashboard(recs)  # pytest is not a kernel -> static
    assert dash.static and dash.widget is None
    dash.wait(timeout=10)
    figs = dash.figures()
    assert set(figs) == {"curves", "phases", "bytes", "timeline", "work"}
    assert all(type(f) is go.Figure for f in figs.values())
    out = capsys.readouterr().out
    assert "dgnn_lab dashboard (done): 3/3 epochs" in out and "sent between workers" in out


def test_bad_arguments():
    with pytest.raises(ValueError, match="RunHandle or an iterable"):
        Dashboard(42)
    with pytest.raises(ValueError, match="RunHandle or an iterable"):
        Dashboard({"type": "epoch"})
    with pytest.raises(ValueError, match="max_fps must be > 0"):
        Dashboard([], max_fps=0)
    with pytest.raises(ValueError, match="last_epochs must be >= 1"):
        Dashboard([], last_epochs=0)


def test_widgets_package_is_the_only_ipywidgets_importer():
    import subprocess
    import sys

    code = "import sys, dgnn_lab.viz.training; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_attached_to_a_real_launch_matches_run_result():
    from dgnn_lab.dist import launch

    rows = [[0, 3], [5, 0]]
    handle = launch("dgnn_lab.dist.testing:exchange_known", {"rows": rows, "dim": 2, "dtype": "float32"}, 2,
                    backend="gloo", timeout_s=60)
    dash = Dashboard(handle, static=False)
    result = dash.wait(timeout=120)
    assert dash.status == "done"
    heat = dash.figure_widgets["bytes"].data[0]
    np.testing.assert_array_equal(np.array(heat.z), result.bytes_matrix(traffic="train"))
    halo = [[8 * rows[p][q] for q in range(2)] for p in range(2)]  # 2 float32 columns per row
    np.testing.assert_array_equal(vt.bytes_matrix(dash.records, purpose_prefix="halo"), halo)
    assert list(dash.figure_widgets["phases"].data[0].x) == ["worker 0", "worker 1"]
    assert f"2 workers on {result.cores} core" in dash.status_html.value


@pytest.mark.slow
def test_live_train_then_stop_button_interrupts_real_workers(tmp_path):
    from dgnn_lab.widgets.dashboard import live_train

    cfg = {"dataset": "csbm", "dataset_args": {"num_nodes": 300, "num_features": 8}, "workers": 2,
           "epochs": 10_000, "hidden": 8, "eval_every": 0, "run_dir": str(tmp_path / "run")}
    dash = live_train(cfg, static=False)
    assert not dash.finished.is_set()  # the launching call returns while the workers start and train
    deadline = time.monotonic() + 90
    while dash.progress.value < 3:  # a few complete epochs on both workers
        assert time.monotonic() < deadline, dash.records[-3:]
        time.sleep(0.1)
    dash.stop_button.click()
    result = dash.wait(timeout=60)
    assert result.status == "interrupted" and dash.status == "interrupted"
    assert "interrupted" in dash.status_html.value and dash.stop_button.description == "Stopped"
    assert 3 <= dash.progress.value < 10_000 and dash.progress.max == 10_000
    heat = np.array(dash.figure_widgets["bytes"].data[0].z)
    np.testing.assert_array_equal(heat, result.bytes_matrix(traffic="train"))  # = the run's own accounting
    assert heat[0, 1] > 0 and heat[1, 0] > 0


def test_wait_timeout_and_interrupt_stops_the_run(monkeypatch):
    handle = FakeHandle([r for r in fake_run_records(2, epochs=2000) if r["type"] == "epoch"], gap_s=0.01)
    dash = Dashboard(handle, static=False)
    with pytest.raises(TimeoutError, match="still going after 0.3 s"):
        dash.wait(timeout=0.3)
    assert handle.stop_calls == 0

    def interrupted(_timeout):  # what Jupyter's Interrupt does to a blocked wait
        raise KeyboardInterrupt

    monkeypatch.setattr(dash.finished, "wait", interrupted)
    with pytest.raises(KeyboardInterrupt):
        dash.wait()
    assert handle.stop_calls == 1
    monkeypatch.undo()
    assert dash.wait(timeout=10) == "result"
    assert dash.status == "interrupted"
