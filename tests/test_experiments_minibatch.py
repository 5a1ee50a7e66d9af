"""Mini-batch comparisons run for real: several variants in one launch, split into exact per-variant results."""

from __future__ import annotations

import re

import pytest

from dgnn_lab import datasets
from dgnn_lab.experiments import studies
from dgnn_lab.experiments.compare import ReportTable, TextProgress
from dgnn_lab.experiments.studies import cache_sweep, minibatch_study, run_variants
from dgnn_lab.train.api import make_config

BASE = {"dataset": "csbm", "dataset_args": {"num_nodes": 400, "num_features": 8, "avg_degree": 6}, "workers": 2,
        "mode": "minibatch", "model": "sage", "fanouts": [4, 3], "batch_size": 40, "epochs": 2, "eval_every": 2,
        "timeout_s": 60}
EVENTS: list[dict] = []  # the study's progress events


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """One launch: seed splits, caches (none, degree 0.3, degree 1.0) and pipelining, sharing the baseline."""
    return minibatch_study(BASE, cache_policies=("none", "degree"), cache_sizes=(0.3, 1.0),
                           run_dir=str(tmp_path_factory.mktemp("study") / "run"), progress=EVENTS.append)


def test_study_runs_every_variant_once_in_one_launch(study):
    assert list(study.results) == ["local", "chunk", "degree 0.3", "degree 1", "pipeline on"]
    dirs = {r.run_dir for r in study.results.values()}
    assert len(dirs) == 1
    for name, r in study.results.items():
        assert r.status == "done" and {x["variant"] for x in r.records if "variant" in x} == {name}
        assert sorted(r.epochs()["epoch"].unique().tolist()) == [0, 1]
    # the baseline is shared: the no-cache row, the local split and pipelining off are the same run
    none = study.caches.set_index("variant").loc["none", "bytes_fetched"]
    assert none == study.seed_split.set_index("seed_split").loc["local", "bytes_fetched"]
    assert none == study.pipeline.set_index("pipeline").loc[False, "bytes_fetched"]


def test_naive_split_fetches_more_and_pipelining_is_measured(study):
    split = study.seed_split.set_index("seed_split")
    assert split.loc["local", "seeds_local"] > split.loc["chunk", "seeds_local"]
    assert split.loc["chunk", "rows_fetched"] > split.loc["local", "rows_fetched"]
    assert split.loc["chunk", "sample_bytes"] > split.loc["local", "sample_bytes"]
    pipe = study.pipeline.set_index("pipeline")
    assert pipe.loc[False, "speedup"] == 1.0
    assert pipe.loc[True, "speedup"] == pytest.approx(pipe.loc[False, "loop_s"] / pipe.loc[True, "loop_s"])
    for row in pipe.itertuples():  # overlap = stage seconds - loop seconds, per worker, summed
        assert row.loop_s > 0 and row.sample_s > 0 and row.fetch_s > 0 and row.train_s > 0


def test_cache_sweep_measures_traffic_and_never_changes_the_model(study):
    t = study.caches.set_index("variant")
    assert list(t.index) == ["none", "degree 0.3", "degree 1"]
    width = datasets.load("csbm", **BASE["dataset_args"]).num_features * 4  # float32 feature rows
    for name, row in t.iterrows():
        # bytes counted by the communicator are exactly the rows the stores say they fetched
        assert row["bytes_fetched"] == row["rows_fetched"] * width, name
        assert row["cache_lookups"] == (0 if name == "none" else t.loc["none", "rows_fetched"])
    assert t.loc["none", "rows_fetched"] > 0 and t.loc["none", "hit_rate"] == 0.0
    # a partial cache: fewer rows, hits = the rows not fetched, hit rate = hits / lookups
    part = t.loc["degree 0.3"]
    assert 0 < part["rows_fetched"] < t.loc["none", "rows_fetched"]
    assert part["cache_hits"] == t.loc["none", "rows_fetched"] - part["rows_fetched"]
    assert part["hit_rate"] == pytest.approx(part["cache_hits"] / part["cache_lookups"])
    assert part["bytes_saved"] == pytest.approx(1 - part["bytes_fetched"] / t.loc["none", "bytes_fetched"])
    # every remote candidate cached: nothing fetched during training
    assert t.loc["degree 1", "rows_fetched"] == 0 and t.loc["degree 1", "hit_rate"] == 1.0
    assert t.loc["degree 1", "cache_bytes"] > part["cache_bytes"] > 0
    # the cache changes where rows come from, not what is computed: same test accuracy
    assert t["test_acc"].nunique() == 1 and t["test_acc"].notna().all()


def test_study_reports_progress_per_variant(study):
    starts = [e["run"] for e in EVENTS if e["event"] == "start"]
    assert starts == list(study.results)  # in the order they ran, each once
    for i, name in enumerate(starts):
        mine = [e for e in EVENTS if e.get("run") == name]
        assert (mine[0]["index"], mine[0]["count"], mine[0]["epochs"]) == (i + 1, 5, 2)
        assert [e["epoch"] for e in mine if e["event"] == "epoch"] == [1, 2]  # once per epoch
        done = mine[-1]
        assert done["event"] == "done" and done["status"] == "done" and done["elapsed_s"] > 0
        assert "/epoch fetched" in done["line"] and "s/epoch loop" in done["line"]
    assert EVENTS[-1] == {"event": "close"}


def test_variant_progress_prints_a_line_per_variant_outside_a_kernel(study, capsys):
    recs = study.results["degree 0.3"].records
    cfgs = {"degree 0.3": make_config(BASE, cache="degree", cache_size=0.3)}
    seen = []
    hook = studies._VariantProgress(TextProgress("variants"), cfgs, 2, seen.append)
    for r in recs:
        hook(r)
    hook.close("done")
    assert seen == recs  # the caller's own on_record still sees every record
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("variants [1/1] degree 0.3: done in ")
    assert "hit rate" in err[0] and "test acc" in err[0]


def test_study_tables_display_readably_and_stay_numeric(study):
    for t in (study.caches, study.pipeline, study.seed_split):
        assert isinstance(t, ReportTable)
        for text in (t._repr_html_(), repr(t)):
            assert not re.search(r"\d[eE][+-]\d", text), text
        assert t["bytes_fetched"].dtype == "float64" and t["loop_s"].dtype == "float64"
    shown = study.caches._repr_html_()
    assert f"{study.caches['bytes_fetched'].iloc[0]:,.0f}" in shown  # bytes with thousands separators


def test_run_variants_rejects_variants_that_change_the_launch():
    with pytest.raises(ValueError, match="variant 'four'"):
        run_variants(BASE, {"two": {}, "four": {"workers": 4}})
    with pytest.raises(ValueError, match="non-empty mapping"):
        run_variants(BASE, {})
    with pytest.raises(ValueError, match="cache policy must be one of"):
        cache_sweep(BASE, policies=("lfu",))
