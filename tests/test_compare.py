"""The strategy comparator: real runs cached by config hash, the results table, the comparison figures, the
widget (run, cached re-open, Stop) and clear errors for bad input."""

from __future__ import annotations

import json
import re
import shutil
import time

import plotly.graph_objects as go
import pytest

from dgnn_lab.dist import RunResult
from dgnn_lab.experiments import compare as tc
from dgnn_lab.train import TrainConfig
from dgnn_lab.viz import comparison as vc

BASE = {"dataset": "karate", "workers": 2, "epochs": 4, "partition": "range"}
CONFIGS = ["sync", ("wide", {"hidden": 32, "lr": 0.05})]


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """Count real launches through the comparator (``compare`` calls ``api.start`` for every real run)."""
    calls: list[str] = []
    real_start = tc.api.start
    mp = pytest.MonkeyPatch()

    def counting_start(cfg, **kw):
        calls.append(cfg.run_dir)
        return real_start(cfg, **kw)

    mp.setattr(tc.api, "start", counting_start)
    yield calls
    mp.undo()


@pytest.fixture(scope="module")
def first(tmp_path_factory, launches):
    root = tmp_path_factory.mktemp("compare")
    cmp = tc.compare(CONFIGS, BASE, root=root)
    return root, cmp, list(launches)


def test_runs_each_configuration_for_real_in_its_own_hashed_dir(first):
    root, cmp, launched = first
    assert len(launched) == 2
    assert list(cmp.results) == ["sync", "wide"]
    dirs = sorted(p.name for p in root.iterdir())
    # one directory per configuration, "<name>-<10 hex digits>", the two hashes different
    assert [d.rsplit("-", 1)[0] for d in dirs] == ["sync", "wide"]
    assert all(re.fullmatch(r"[a-z]+-[0-9a-f]{10}", d) for d in dirs), dirs
    assert len({d.rsplit("-", 1)[1] for d in dirs}) == 2
    assert dirs == sorted(f"{n}-{tc.config_hash(c)}" for n, c in cmp.configs.items())
    for name, result in cmp.results.items():
        assert result.status == "done" and result.world_size == 2
        assert str(result.run_dir) == str(tc.run_dir_for(name, cmp.configs[name], root).resolve())
    assert cmp.configs["wide"].hidden == 32 and cmp.configs["sync"].hidden == 16


def test_second_call_loads_without_launching(first, launches):
    root, cmp, _ = first
    before = len(launches)
    dirs_before = sorted(p.name for p in root.iterdir())
    again = tc.compare(CONFIGS, BASE, root=root)
    assert len(launches) == before  # no worker started
    assert sorted(p.name for p in root.iterdir()) == dirs_before
    assert again.table["cached"].tolist() == [True, True] and cmp.table["cached"].tolist() == [False, False]
    cols = ["test_acc", "test_acc_at_best_val", "halo_bytes", "total_bytes", "s_per_epoch", "wait_share"]
    assert again.table[cols].equals(cmp.table[cols])
    assert again.results["wide"].records == cmp.results["wide"].records


def test_table_columns_and_values(first):
    _, cmp, _ = first
    t = cmp.table
    for col in ("name", "mode", "status", "cached", "test_acc", "best_val_acc", "test_acc_at_best_val",
                "halo_bytes", "total_bytes", "halo_bytes_per_epoch", "s_per_epoch", "wait_share", "run_dir"):
        assert col in t.columns, col
    for _, row in t.iterrows():
        r = cmp.results[row["name"]]
        s = r.summary()
        assert row["halo_bytes"] == s["halo_bytes"] == int(r.bytes_matrix("halo_").sum()) > 0
        assert row["total_bytes"] == s["total_bytes"] > row["training_bytes"] > row["halo_bytes"]
        bt = r.bytes_table()
        sent = bt[(bt.direction == "sent") & ~bt.purpose.str.startswith(("eval", "metrics"))]
        assert row["training_bytes"] == sent["bytes"].sum()
        assert row["halo_bytes_per_epoch"] == s["halo_bytes"] / 4
        assert row["test_acc_at_best_val"] == s["test_acc_at_best_val"]
        assert row["test_acc"] == r.epochs().dropna(subset=["test_acc"]).iloc[-1]["test_acc"]
        df = r.epochs()
        assert row["wait_share"] == pytest.approx(df["wait_s"].sum() / df["epoch_s"].sum())
        assert 0.0 <= row["wait_share"] <= 1.0
        assert row["s_per_epoch"] == sorted(s["epoch_seconds"][1:])[1]  # median of epochs 1..3
        # training traffic is the headline, evaluation's apart; the two make up every byte sent
        evaluation = bt[(bt.direction == "sent") & bt.purpose.str.startswith("eval")]["bytes"].sum()
        assert row["eval_bytes"] == evaluation > 0 and row["train_bytes"] + row["eval_bytes"] == row["total_bytes"]
        assert row["train_bytes_per_epoch"] == row["train_bytes"] / 4
        assert row["eval_bytes_per_epoch"] == row["eval_bytes"] / 4
        # what the time was measured on; one run, so no spread measured
        assert (row["processes"], row["threads_per_worker"], row["cores"]) == (2, r.num_threads, r.cores)
        assert row["repeats"] == 1 and row["s_per_epoch_min"] == row["s_per_epoch_max"] == row["s_per_epoch"]
        assert row["too_wide_to_conclude"] is None
    # the tables display readably (no 5.299e+04) and stay numeric
    for text in (cmp._repr_html_(), repr(t), t[["name", "halo_bytes_per_epoch", "s_per_epoch"]]._repr_html_()):
        assert not re.search(r"\d[eE][+-]\d", text), text
    assert f"{int(t['halo_bytes'].iloc[0]):,}" in cmp._repr_html_()
    assert t["s_per_epoch"].dtype == "float64" and t["halo_bytes"].dtype == "int64"
    assert "one run per configuration" in cmp.timing_note()
    # a wider hidden layer widens the rows some layer exchanges (see DistGNN.exchange_widths)
    wide, narrow = (cmp.results[n].summary()["halo_bytes"] for n in ("wide", "sync"))
    assert wide > narrow


def test_unfinished_runs_are_not_reused(first, tmp_path):
    root, cmp, _ = first
    src = cmp.results["sync"].run_dir
    assert tc._load_cached(src) is not None
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    meta = json.loads((copy / "result.json").read_text())
    meta["status"] = "interrupted"
    (copy / "result.json").write_text(json.dumps(meta))
    assert RunResult.load(copy).status == "interrupted"
    assert tc._load_cached(copy) is None
    assert tc._load_cached(tmp_path / "nothing") is None


def test_config_hash_is_stable_and_ignores_where_a_run_goes():
    h = tc.config_hash(BASE)
    # exactly 10 lowercase hex digits (it names run directories), the same on every call
    assert re.fullmatch(r"[0-9a-f]{10}", h), h
    assert tc.config_hash(dict(BASE)) == h and tc.config_hash(BASE) == h
    # equal configurations hash equal: key order, a TrainConfig or a mapping, a default spelled out or not
    assert h == tc.config_hash(dict(reversed(list(BASE.items()))))
    assert h == tc.config_hash(TrainConfig(**BASE))
    assert h == tc.config_hash({**BASE, "hidden": 16})  # 16 is the default width (see the first test)
    args = {"num_nodes": 100, "num_features": 8}
    csbm = {**BASE, "dataset": "csbm", "dataset_args": args}
    assert tc.config_hash(csbm) == tc.config_hash({**csbm, "dataset_args": dict(reversed(list(args.items())))})
    # where a run goes and how long it may take are not hashed
    for extra in ({"run_dir": "/elsewhere"}, {"run_dir": "/a/b"}, {"timeout_s": 5.0}, {"timeout_s": 1e4},
                  {"run_dir": "/elsewhere", "timeout_s": 5.0}):
        assert tc.config_hash({**BASE, **extra}) == h, extra
    # every field that changes a run's numbers changes the hash (and each change gives its own hash)
    changed = [{"hidden": 17}, {"quantize": "int8"}, {"epochs": 5}, {"workers": 3}, {"seed": 1},
               {"lr": 0.02}, {"partition": "random"}, {"dataset": "csbm"}, {"mode": "full-stale"},
               {"dropout": 0.1}]
    hashes = [tc.config_hash({**BASE, **c}) for c in changed]
    assert all(re.fullmatch(r"[0-9a-f]{10}", x) for x in hashes)
    assert h not in hashes and len(set(hashes)) == len(changed), dict(zip(map(str, changed), hashes, strict=True))
    assert tc.config_hash(csbm) != tc.config_hash({**csbm, "dataset_args": {**args, "num_nodes": 101}})


def test_bad_input_names_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; valid presets: sync, stale.*int8"):
        tc.compare(["sync", "nope"], BASE)
    with pytest.raises(ValueError, match="configuration 'mine': unknown quantize 'int4'; allowed: none, fp16, int8"):
        tc.resolve([("mine", {"quantize": "int4"})], BASE)
    with pytest.raises(ValueError, match="distinct"):
        tc.resolve(["sync", "sync"], BASE)
    with pytest.raises(ValueError, match="nothing to compare"):
        tc.resolve([], BASE)
    with pytest.raises(ValueError, match="preset name or a"):
        tc.resolve([42], BASE)
    with pytest.raises(ValueError, match="errors must be"):
        tc.compare(["sync"], BASE, errors="ignore")
    assert tc.preset("int8") == {"mode": "full-sync", "quantize": "int8"}
    tc.preset("int8")["quantize"] = "fp16"  # a copy: the preset itself is unchanged
    assert tc.PRESETS["int8"]["quantize"] == "int8"


# ------------------------------------------------------------------------------------------------ figures

def _epoch(rank, epoch, *, halo, grad, s, val=None, test=None):
    return {"type": "epoch", "rank": rank, "epoch": epoch, "epoch_s": s, "loss": 1.0, "val_acc": val,
            "test_acc": test, "train_acc": None,
            "bytes_sent": {str(1 - rank): {"halo_fwd_0": halo, "grad_allreduce": grad}}}


def fake_runs():
    a = [_epoch(r, e, halo=100, grad=10, s=0.1 * (r + 1), val=0.5 + 0.1 * e, test=0.4 + 0.1 * e)
         for e in range(3) for r in range(2)]
    b = [_epoch(r, e, halo=10, grad=10, s=0.05, val=0.5, test=0.3 if e == 0 else 0.2)
         for e in range(3) for r in range(2)]
    c = [_epoch(r, e, halo=1000, grad=10, s=0.3, val=0.4, test=0.4) for e in range(3) for r in range(2)]
    return {"a": a, "b": b, "c": c}


def test_run_curves_exact():
    c = vc.run_curves(fake_runs()["a"])
    assert c["epoch"] == [0, 1, 2]
    assert c["bytes"] == [220, 220, 220] and c["cum_bytes"] == [220, 440, 660]
    assert c["epoch_s"] == [0.2, 0.2, 0.2] and c["cum_s"] == pytest.approx([0.2, 0.4, 0.6])
    assert vc.run_curves(fake_runs()["a"], bytes="halo")["cum_bytes"] == [200, 400, 600]
    assert c["test_acc"] == pytest.approx([0.4, 0.5, 0.6])
    recs = [dict(r, bytes_sent={"1": {"halo_fwd/L0": 8, "grad_allreduce": 4, "eval": 2, "metrics": 1}})
            for r in fake_runs()["a"][:1]]
    assert [vc.run_curves(recs, bytes=b)["bytes"] for b in vc.BYTES] == [[15], [12], [8]]


def test_frontier_points_and_pareto_front():
    pts = {p["name"]: p for p in vc.frontier_points(fake_runs())}
    assert pts["a"]["bytes_per_epoch"] == 220 and pts["a"]["accuracy"] == pytest.approx(0.6)  # best val: epoch 2
    assert pts["b"]["accuracy"] == 0.3  # ties in validation: the first epoch reaching it
    assert pts["c"]["bytes_per_epoch"] == 2020 and pts["c"]["s_per_epoch"] == 0.3
    assert vc.pareto_front(list(pts.values())) == ["b", "a"]  # c moves more bytes for less accuracy
    fig = vc.frontier_figure(fake_runs())
    assert list(fig.data[0].x) == [40, 220] and fig.data[0].name == "frontier"
    assert [t.name for t in fig.data[1:]] == ["a", "b", "c"]
    assert fig.data[3].marker.symbol == "circle-open"


def test_accuracy_figures_use_cumulative_bytes_and_time():
    runs = fake_runs()
    fig = vc.accuracy_vs_bytes_figure(runs, bytes="halo")
    assert [t.name for t in fig.data] == ["a", "b", "c"]
    assert list(fig.data[0].x) == [200, 400, 600] and list(fig.data[0].y) == pytest.approx([0.4, 0.5, 0.6])
    fig = vc.accuracy_vs_time_figure(runs, cores=1)
    assert list(fig.data[0].x) == pytest.approx([0.2, 0.4, 0.6])
    assert "oversubscribed" in fig.layout.title.text  # 2 workers on 1 core
    with pytest.raises(ValueError, match="unknown metric 'acc'; allowed: test_acc, val_acc, train_acc"):
        vc.accuracy_vs_bytes_figure(runs, metric="acc")
    with pytest.raises(ValueError, match="bytes must be one of total, training, halo, got 'wire'"):
        vc.frontier_figure(runs, bytes="wire")
    with pytest.raises(ValueError, match="non-empty mapping"):
        vc.frontier_figure({})


def test_time_and_bytes_figure_titles_match_axes_and_evaluation_apart():
    runs = fake_runs()
    for r in runs["a"]:
        r["bytes_sent"][str(1 - r["rank"])]["eval"] = 50
    fig = vc.time_and_bytes_figure(runs, cores=1)
    # short subplot titles (they sit side by side over 560 pixels), each naming its axis' quantity
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["time per epoch", "bytes per epoch"]
    assert fig.layout.yaxis.title.text.startswith("seconds per epoch")
    assert fig.layout.yaxis2.title.text.startswith("bytes per epoch")
    assert "epoch 0 left out" in fig.layout.title.text and "oversubscribed" in fig.layout.title.text
    names = [t.name for t in fig.data]
    assert names[:3] == ["compute", "communication", "waiting"] and names[-1] == "evaluation (not training)"
    ev = fig.data[-1]
    assert ev.marker.pattern.shape == "/" and list(ev.y) == [100.0, 0.0, 0.0]  # 2 workers x 50, run a only
    halo = next(t for t in fig.data if t.name == "halo forward")
    assert list(halo.y) == [200.0, 20.0, 2000.0] and halo.xaxis == "x2"


def test_staleness_figure_counts_observations():
    runs = fake_runs()
    for r in runs["a"]:
        r["staleness"] = {"0": 2, "1": 3}
    fig = vc.staleness_figure(runs)
    assert len(fig.data) == 1 and list(fig.data[0].x) == [0.0, 1.0] and list(fig.data[0].y) == [12, 18]
    assert "b, c" in fig.layout.title.text


# ------------------------------------------------------------------------------------------------- widget

class _Handle:
    def __init__(self, shown):
        self.shown = shown

    def update(self, obj):
        self.shown.append(obj)


def test_comparator_widget_reopens_cached_runs(first, launches):
    from dgnn_lab.widgets.comparator import StrategyComparator

    root, cmp, _ = first
    before = len(launches)
    w = StrategyComparator(BASE, choices={"sync": "sync", "wide": CONFIGS[1][1]}, root=root, static=False)
    assert w.selected == ["sync", "wide"]
    assert w.run() is w
    result = w.wait(120)
    assert len(launches) == before
    assert result.table["cached"].all() and list(result.results) == ["sync", "wide"]
    assert set(w.figures()) == {"accuracy_vs_bytes", "accuracy_vs_time", "frontier", "time_and_bytes"}
    assert len(w.results.children) == 5 and w.progress.value == 2
    assert "loaded from cache" in w.status_html.value
    # static fallback (no widgets): the same runs, shown as plain figures and an HTML table
    static = StrategyComparator(BASE, choices={"sync": "sync", "wide": CONFIGS[1][1]}, root=root, static=True)
    assert static.run().wait(120).table["cached"].all() and len(launches) == before
    shown = []
    monkey = pytest.MonkeyPatch()
    monkey.setattr("IPython.display.display", lambda obj, **kw: shown.append(obj) or _Handle(shown))
    static._ipython_display_()
    monkey.undo()
    assert sum(isinstance(o, go.Figure) for o in shown) == 4
    assert any("test_acc_at_best_val" in o._repr_html_() for o in shown if hasattr(o, "_repr_html_"))
    with pytest.raises(ValueError, match="not among the choices"):
        StrategyComparator(BASE, choices=["sync", "int8"], selected=["ps"], static=False)
    with pytest.raises(ValueError, match="unknown preset 'fast'"):
        StrategyComparator(BASE, choices=["sync", "fast"], static=False)


def test_comparator_final_dashboard_and_figures_have_data(tmp_path):
    """A run trained live: its dashboard's last frame (fresh widgets from the complete records) keeps the
    bytes heatmap and the phase timeline filled, and the comparison figures and tables have data."""
    from dgnn_lab.widgets.comparator import StrategyComparator

    w = StrategyComparator({**BASE, "epochs": 3}, choices=["sync"], selected=["sync"], root=tmp_path, static=False)
    result = w.run().wait(120)
    assert result.table["cached"].tolist() == [False]
    d = w.dashboard
    assert d is not None and d.finished.is_set() and d.status == "done"
    final = d.figure_widgets
    z = final["bytes"].data[0].z
    assert len(z) == 2 and z[0][1] > 0 and z[1][0] > 0
    bars = final["timeline"].data
    assert [t.name for t in bars] == ["compute", "communication", "waiting"]
    assert len(bars[0].x) > 0 and len(bars[0].base) == len(bars[0].x) and sum(bars[0].x) > 0
    assert "epochs 0–2" in final["timeline"].layout.title.text
    figs = w.figures()
    assert all(len(f.data) > 0 for f in figs.values())
    assert [a.text for a in figs["time_and_bytes"].layout.annotations] == ["time per epoch", "bytes per epoch"]
    m = w.bytes_matrix()
    assert m.index.name == "sender" and m.columns.name == "receiver" and m.shape == (2, 2)
    assert int(m.values.sum()) == result.table["train_bytes"].iloc[0]
    html = w.results.children[-1].value
    assert "train_bytes_per_epoch" in html and "eval_bytes_per_epoch" in html
    assert not re.search(r"\d[eE][+-]\d", html)
    assert "training traffic" in w.status_html.value and "evaluation" in w.status_html.value
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        StrategyComparator(BASE, choices=["sync"], repeats=0, static=False)


def test_comparator_stop_interrupts_and_skips_the_rest(tmp_path, launches):
    from dgnn_lab.widgets.comparator import StrategyComparator

    long = {**BASE, "epochs": 100_000, "eval_every": 0}
    w = StrategyComparator(long, choices=["sync", "int8"], selected=["sync", "int8"], root=tmp_path, static=False)
    w.run()
    deadline = time.monotonic() + 90
    while w._current is None or not any(r.get("type") == "epoch" for r in w._current.snapshot()):
        assert time.monotonic() < deadline, "the first run never reached an epoch"
        time.sleep(0.1)
    w.stop_button.click()
    result = w.wait(60)
    assert result.table["name"].tolist() == ["sync"]  # the second configuration was skipped
    assert result.table["status"].tolist() == ["interrupted"]
    assert tc._load_cached(result.results["sync"].run_dir) is None  # never reused
    assert w.run_button.disabled is False and w.stop_button.disabled is True


def test_registered_strategies_become_presets_and_hash_by_code(monkeypatch):
    from dgnn_lab.protocols import halo as protocols

    monkeypatch.setattr(protocols.HALO_REGISTRY, "_items", dict(protocols.HALO_REGISTRY._items))

    def make(k):
        class EveryK(protocols.BoundedStaleHalo):
            def should_send(self, layer, peer, age, change):
                return age >= k
        return EveryK

    assert "every-k" not in tc.preset_names()
    protocols.register_strategy("every-k", make(3))
    assert tc.preset_names()[-1] == "every-k" and "pipegcn" not in tc.preset_names()  # built-ins come by mode
    assert tc.preset("every-k") == {"mode": "full-stale", "halo": "every-k"}
    cfg = tc.resolve(["every-k"], {**BASE, "staleness": 3})["every-k"]
    assert cfg.halo == "every-k" and list(cfg.by_value()) == ["halo:every-k"]  # travels beside, not in, the config
    h = tc.config_hash(cfg)
    protocols.register_strategy("every-k", make(3))  # the same code again (a re-run cell): the same runs
    assert tc.config_hash(tc.resolve(["every-k"], {**BASE, "staleness": 3})["every-k"]) == h
    protocols.register_strategy("every-k", make(2))  # the same code, another value it closes over
    assert tc.config_hash(tc.resolve(["every-k"], {**BASE, "staleness": 3})["every-k"]) != h

    class Other(protocols.BoundedStaleHalo):
        def should_send(self, layer, peer, age, change):
            return change > 0.5

    protocols.register_strategy("every-k", Other)  # new code under the same name: trained afresh
    assert tc.config_hash(tc.resolve(["every-k"], {**BASE, "staleness": 3})["every-k"]) != h

    class UsesBuiltins(protocols.BoundedStaleHalo):
        def should_send(self, layer, peer, age, change):
            if change < 0:
                raise RuntimeError("a negative change")
            return age >= max(1, round(change))

    protocols.register_strategy("every-k", UsesBuiltins)  # builtins (max, RuntimeError) are not module constants
    assert re.fullmatch(r"[0-9a-f]{10}", tc.config_hash(tc.resolve(["every-k"], {**BASE, "staleness": 3})["every-k"]))


def test_summarize_staleness_from_histograms_and_server_left_out_of_waiting():
    recs = fake_runs()["a"]
    for r in recs:
        r.update(staleness_hist={"0": 1, "4": 3} if r["epoch"] == 2 else {"1": 2}, staleness=1.0,
                 wait_s=0.05, compute_s=0.05)
    server = [{"type": "epoch", "rank": 2, "epoch": e, "epoch_s": 0.3, "wait_s": 0.3, "bytes_sent": {}}
              for e in range(3)]
    row = tc.summarize("a", RunResult(records=recs + server, status="done", config={"workers": 2}, world_size=3))
    # 8 rows of age 1 (epochs 0, 1), then 2 of age 0 and 6 of age 4 (epoch 2), over both workers
    assert row["staleness_mean"] == pytest.approx((8 * 1 + 6 * 4) / 16) and row["staleness_max"] == 4.0
    assert row["wait_share"] == pytest.approx(6 * 0.05 / (3 * (0.1 + 0.2)))  # ranks 0 and 1 only
