"""Progress of long comparisons (events per epoch per run, text lines outside a kernel, the notebook view),
repeated timing (median and range over repeats, cached per repeat, the "too wide to conclude" rule) and the
readable display of the tables (no scientific notation, numbers kept numeric)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from dgnn_lab.dist import RunResult
from dgnn_lab.experiments import compare as tc

BASE = {"dataset": "karate", "workers": 2, "epochs": 3, "partition": "range"}
SCI = re.compile(r"\d[eE][+-]\d")


@pytest.fixture(scope="module")
def repeated(tmp_path_factory):
    """One configuration trained twice, every progress event recorded."""
    root = tmp_path_factory.mktemp("repeats")
    events: list[dict] = []
    cmp = tc.compare(["sync"], BASE, root=root, repeats=2, progress=events.append)
    return root, cmp, events


def _s_per_epoch_from_records(records: list[dict]) -> float:
    """The oracle: per epoch the slowest worker's epoch_s, epoch 0 left out (3 epochs), the library's median
    of a run's epochs (the upper one: ``sorted(v)[len(v) // 2]``)."""
    by_epoch: dict[int, float] = {}
    for r in records:
        if r.get("type") == "epoch":
            by_epoch[r["epoch"]] = max(by_epoch.get(r["epoch"], 0.0), r["epoch_s"])
    times = sorted(by_epoch[e] for e in sorted(by_epoch)[1:])
    return times[len(times) // 2]


def test_progress_events_per_epoch_per_run(repeated):
    _, cmp, events = repeated
    assert events[-1] == {"event": "close"}
    runs = [e["run"] for e in events if e["event"] == "start"]
    assert runs == ["sync #1", "sync #2"]
    for i, run in enumerate(runs):
        mine = [e for e in events if e.get("run") == run]
        assert mine[0]["event"] == "start" and mine[0]["epochs"] == 3
        assert (mine[0]["index"], mine[0]["count"], mine[0]["repeat"]) == (i + 1, 2, i)
        assert [e["epoch"] for e in mine if e["event"] == "epoch"] == [1, 2, 3]  # once per epoch, in order
        done = mine[-1]
        assert done["event"] == "done" and done["status"] == "done" and done["elapsed_s"] > 0
        assert "test acc" in done["line"] and "s/epoch" in done["line"] and "training traffic" in done["line"]


def test_repeats_give_runs_in_their_own_dirs_and_median_and_range(repeated):
    root, cmp, _ = repeated
    cfg = cmp.configs["sync"]
    dirs = [f"sync-{tc.config_hash(cfg)}", f"sync-{tc.config_hash(cfg)}-r1"]
    assert [p.rsplit("/", 1)[1] for p in cmp.runs["run_dir"]] == dirs and all((root / d).is_dir() for d in dirs)
    assert len(cmp.repeats["sync"]) == 2 and cmp.results["sync"] is cmp.repeats["sync"][0]
    assert cmp.runs["repeat"].tolist() == [0, 1]
    per_run = [_s_per_epoch_from_records(RunResult.load(root / d).records) for d in dirs]
    assert cmp.runs["s_per_epoch"].tolist() == pytest.approx(per_run)
    row = cmp.table.iloc[0]
    assert row["repeats"] == 2
    assert row["s_per_epoch"] == pytest.approx(np.median(per_run))
    assert row["s_per_epoch_min"] == pytest.approx(min(per_run))
    assert row["s_per_epoch_max"] == pytest.approx(max(per_run))
    assert row["s_per_epoch_range_pct"] == pytest.approx(100 * (max(per_run) - min(per_run)) / np.median(per_run))
    # one configuration: only its own spread can make it inconclusive
    assert bool(row["too_wide_to_conclude"]) == (row["s_per_epoch_range_pct"] > 25)
    assert row["bytes_repeatable"]  # a seed fixes the bytes: every repeat sent the same
    assert cmp.table["s_per_epoch"].dtype == np.float64  # numeric, whatever the display shows
    # what the time was measured on
    r = cmp.results["sync"]
    assert (row["processes"], row["threads_per_worker"], row["cores"]) == (2, r.num_threads, r.cores)


def test_cache_is_keyed_on_the_repeat_and_text_progress_outside_a_kernel(repeated, monkeypatch, capsys):
    root, cmp, _ = repeated
    launched = []
    real_start = tc.api.start
    monkeypatch.setattr(tc.api, "start", lambda cfg, **kw: launched.append(cfg.run_dir) or real_start(cfg, **kw))
    again = tc.compare(["sync"], BASE, root=root, repeats=2)  # progress=True: plain python, so stderr lines
    assert launched == [] and again.table["cached"].tolist() == [True]
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and err[0].startswith("compare [1/2] sync #1: loaded from cache · test acc")
    assert err[1].startswith("compare [2/2] sync #2: loaded from cache")
    assert again.table["s_per_epoch"].iloc[0] == cmp.table["s_per_epoch"].iloc[0]
    quiet = tc.compare(["sync"], BASE, root=root, repeats=1, progress=False)
    assert capsys.readouterr().err == "" and quiet.table["repeats"].tolist() == [1]
    assert quiet.table["too_wide_to_conclude"].isna().all()  # one run measures no spread
    # a third repeat trains only the new one, in its own directory
    three = tc.compare(["sync"], BASE, root=root, repeats=3, progress=False)
    assert [p.rsplit("/", 1)[1] for p in launched] == [f"sync-{tc.config_hash(three.configs['sync'])}-r2"]
    assert three.runs["cached"].tolist() == [True, True, False] and three.table["cached"].tolist() == [False]
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        tc.compare(["sync"], BASE, root=root, repeats=0)


def test_too_wide_to_conclude_rule():
    t = tc.timing_summary({
        "a": [1.00, 1.10, 1.05],   # overlaps b's range [1.08, 1.30]
        "b": [1.08, 1.20, 1.30],
        "c": [2.00, 2.10, 2.05],   # apart from everyone, narrow: conclusive
        "d": [3.00, 4.50, 3.20],   # apart, but its range is 47 % of its median
        "e": [9.0],                # one run: no spread measured
    })
    assert t["a"]["too_wide_to_conclude"] and t["a"]["overlaps_with"] == "b"
    assert t["b"]["too_wide_to_conclude"] and t["b"]["overlaps_with"] == "a"
    assert t["c"]["too_wide_to_conclude"] is False and t["c"]["overlaps_with"] == ""
    assert t["d"]["too_wide_to_conclude"] is True and t["d"]["overlaps_with"] == ""
    assert t["d"]["s_per_epoch_range_pct"] == pytest.approx(100 * 1.5 / 3.2)
    assert t["e"]["too_wide_to_conclude"] is None and t["e"]["s_per_epoch"] == 9.0
    assert t["b"]["s_per_epoch"] == pytest.approx(np.median([1.08, 1.2, 1.3]))
    assert tc.timing_summary({"x": [1.0, 1.0], "y": [1.0, 1.0]})["x"]["too_wide_to_conclude"]  # touching ranges
    # an even number of runs: numpy's median (mean of the middle two)
    assert tc.timing_summary({"z": [1.0, 2.0, 3.0, 10.0]})["z"]["s_per_epoch"] == 2.5


def test_tables_display_without_scientific_notation():
    t = tc.ReportTable([
        {"name": "a", "total_bytes": 52992, "halo_bytes_per_epoch": 52992.0, "train_bytes_per_epoch": 5.3e6,
         "s_per_epoch": 0.0000123, "elapsed_s": 12345.678, "test_acc": 0.80431, "wait_share": 0.5,
         "s_per_epoch_range_pct": 12.345, "cached": True, "staleness_mean": None, "cache_size": 0.05},
        {"name": "b", "total_bytes": 10, "halo_bytes_per_epoch": 1.5, "train_bytes_per_epoch": 123.4,
         "s_per_epoch": 0.02134567, "elapsed_s": 1.0, "test_acc": 0.1, "wait_share": 0.25,
         "s_per_epoch_range_pct": 0.0, "cached": False, "staleness_mean": 1.5, "cache_size": 0.1},
    ])
    shown = tc.display_frame(t)
    assert shown.loc[0, "total_bytes"] == "52,992" and shown.loc[0, "halo_bytes_per_epoch"] == "52,992"
    assert shown.loc[0, "train_bytes_per_epoch"] == "5,300,000"
    assert shown.loc[0, "s_per_epoch"] == "0.00001230" and shown.loc[1, "s_per_epoch"] == "0.02135"
    assert shown.loc[0, "elapsed_s"] == "12,346" and shown.loc[1, "elapsed_s"] == "1.000"
    assert shown.loc[0, "test_acc"] == "0.804" and shown.loc[1, "wait_share"] == "0.250"
    assert shown.loc[0, "s_per_epoch_range_pct"] == "12.3" and shown.loc[0, "staleness_mean"] == ""
    assert shown.loc[0, "cache_size"] == "0.05" and shown.loc[0, "cached"] == "True"
    for text in (t._repr_html_(), repr(t), t[["name", "s_per_epoch"]]._repr_html_()):
        assert not SCI.search(text), text
    assert type(pd.DataFrame(t)) is pd.DataFrame  # the plain frame, for code that wants pandas' own display
    # slices, indexes and new columns stay ReportTables with numeric columns
    sub = t.set_index("name")[["s_per_epoch", "total_bytes"]]
    assert isinstance(sub, tc.ReportTable) and sub["s_per_epoch"].dtype == np.float64
    assert sub.loc["a", "total_bytes"] == 52992


def test_repeated_table_displays_readably(repeated):
    _, cmp, _ = repeated
    for text in (cmp._repr_html_(), repr(cmp.table), cmp.table[["name", "s_per_epoch", "train_bytes"]]._repr_html_(),
                 cmp.runs._repr_html_()):
        assert not SCI.search(text)
    assert "median over 2 runs" in cmp.timing_note() and "25%" in cmp.timing_note()
    m = cmp.bytes_matrix("sync")
    assert m.index.name == "sender" and m.columns.name == "receiver" and m.shape == (2, 2)
    assert int(m.values.sum()) == cmp.table["train_bytes"].iloc[0]
    assert int(cmp.bytes_matrix("sync", "eval").values.sum()) == cmp.table["eval_bytes"].iloc[0]
    with pytest.raises(ValueError, match="no finished run named 'x'"):
        cmp.bytes_matrix("x")


def test_progress_sink_picks_text_outside_and_the_widget_inside_a_kernel(monkeypatch):
    assert tc.progress_sink(False) is None and tc.progress_sink(None) is None
    assert isinstance(tc.progress_sink(True), tc.TextProgress)
    f = lambda e: None  # noqa: E731
    assert tc.progress_sink(f) is f
    with pytest.raises(ValueError, match="progress must be True, False or a callable"):
        tc.progress_sink("yes")
    from dgnn_lab.widgets.progress import ProgressView

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    monkeypatch.setattr(tc, "_in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj) or Handle())
    view = tc.progress_sink(True, title="compare: 2 configurations")
    assert isinstance(view, ProgressView) and shown == [view.widget]
    view.close()
    assert "compare: 2 configurations" in shown[-1]._repr_html_()


def test_progress_view_bars_lines_and_summary():
    from dgnn_lab.widgets.progress import ProgressView

    v = ProgressView("compare: 2 configurations", refresh_s=0.01)
    v({"event": "start", "run": "sync", "name": "sync", "index": 1, "count": 2, "epochs": 4})
    for n in (1, 2, 3):
        v({"event": "epoch", "run": "sync", "epoch": n, "epochs": 4})
    st = v._runs["sync"]
    assert st["epoch"] == 3
    import time

    deadline = time.monotonic() + 5
    while st["bar"].value != 3:  # the ticker paints the full state a few times a second
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "3/4 epochs" in st["text"].value
    v({"event": "done", "run": "sync", "status": "done", "elapsed_s": 2.5, "line": "test acc 0.800"})
    assert st["bar"].value == 4 and st["bar"].bar_style == "success"
    v({"event": "start", "run": "int8", "name": "int8", "index": 2, "count": 2, "epochs": 4})
    v({"event": "close"})  # ended before int8 finished: shown as stopped
    assert len(v.rows.children) == 2
    assert v.lines == ["✓ sync: done in 2.5 s · test acc 0.800", v.lines[1]]
    assert v.lines[1].startswith("■ int8: stopped in") and v._runs["int8"]["bar"].bar_style == "warning"
    assert not v._ticker.is_alive()
