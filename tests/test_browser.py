"""Real browser: JupyterLab + headless Chromium (Playwright) run notebook 03: Stop under Run All, dashboards, a save.

Skips, saying why, where Playwright for Python or ``/usr/bin/chromium`` is missing (``apt-get install -y
chromium``; a browser is never downloaded). The screenshot is kept under ``artifacts/browser/``.
"""

from __future__ import annotations

import shutil
import time

import pytest

from dgnn_lab.settings import REPO_ROOT

from . import jupyter_helpers as jh
from .conftest import _shared_planetoid

NOTEBOOK = "03_full_graph_training.ipynb"
ARTIFACTS = REPO_ROOT / "artifacts" / "browser"

# Generous limits: under heavy load (other jobs on a 2-core machine) JupyterLab alone can take a minute to start.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def browser():
    reason = jh.browser_unavailable_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=jh.chromium_path(), args=jh.CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _dashboard_figures(figs: list[dict]) -> dict[str, dict]:
    """The dashboard's figures by role, told apart by their titles (see ``dgnn_lab.viz.training``)."""
    roles = {"bytes": "Bytes moved", "phases": "Where each worker", "timeline": "Timeline of phases",
             "curves": "Loss and accuracy", "work": "Work, CPU and wall time"}
    out: dict[str, dict] = {}
    for role, prefix in roles.items():
        found = [f for f in figs if str(f["title"]).startswith(prefix)]
        if found:
            out[role] = found
    return out


def _cores() -> int:
    from dgnn_lab.dist import cpu_cores

    return cpu_cores()


#: The first dashboard's run, made long enough in the test's copy that Stop lands while it trains.
FIRST_RUN_EPOCHS = ('"epochs": 10 if SMOKE else 200', '"epochs": 3000')

CELL_TEXT_JS = """
(needle) => {
  const w = window.jupyterapp.shell.currentWidget;
  const cells = w.content.model.cells;
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code' || !c.sharedModel.getSource().includes(needle)) continue;
    let text = '';
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.text) text += [].concat(o.text).join('');
      if (o.data && o.data['text/plain']) text += [].concat(o.data['text/plain']).join('');
    }
    return text;
  }
  return null;
}
"""


def test_stop_under_run_all_then_save_leaves_git_clean(browser, tmp_path):
    """Run All on notebook 03; Stop on the first dashboard while later cells are queued ends that run
    "interrupted" within 5 s and the rest of the notebook still runs; saving it in place leaves git clean."""
    from .stored import git, stored_text, throwaway_checkout

    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed for the in-place save check")
    import nbformat

    nb = nbformat.reads(stored_text(REPO_ROOT / "notebooks" / NOTEBOOK), as_version=4)
    cells = [c for c in nb.cells if FIRST_RUN_EPOCHS[0] in c.source]
    assert len(cells) == 1, "notebook 03's first run changed: update FIRST_RUN_EPOCHS"
    cells[0].source = cells[0].source.replace(*FIRST_RUN_EPOCHS)
    repo = throwaway_checkout(tmp_path / "checkout", {NOTEBOOK: nbformat.writes(nb) + "\n"})
    env = {"DGNN_LAB_SMOKE": "1", "DGNN_LAB_RUNS": str(tmp_path / "runs")}
    shared = _shared_planetoid()
    if shared is not None:
        shutil.copytree(shared / "Planetoid", tmp_path / "data" / "Planetoid")
        env["DGNN_LAB_DATA"] = str(tmp_path / "data")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with jh.jupyter_lab(repo / "notebooks", tmp_path, env=env) as url:
        page = browser.new_page(viewport={"width": 1800, "height": 1400})
        try:
            jh.open_notebook(page, url, NOTEBOOK)
            t0 = time.monotonic()
            jh.start_run_all(page)
            first = page.locator(".dgnn-dashboard").first
            first.wait_for(timeout=180_000)
            # Training is under way (epochs counted) and the kernel has moved on to a later cell.
            page.wait_for_function(
                "() => { const d = document.querySelector('.dgnn-dashboard');"
                " return d && /running/.test(d.innerText) && /[1-9][0-9]*\\/[0-9]+ epochs/.test(d.innerText); }",
                timeout=120_000, polling=100)
            first.locator("button", has_text="Stop").click()
            clicked = time.monotonic()
            page.wait_for_function(
                "() => /interrupted/.test(document.querySelector('.dgnn-dashboard').innerText)",
                timeout=30_000, polling=100)
            stop_s = time.monotonic() - clicked
            print(f"Stop clicked {clicked - t0:.1f} s after Run All; run shown interrupted {stop_s:.2f} s later")
            assert stop_s <= 5.0, f"the run took {stop_s:.1f} s to stop"
            state = jh.wait_all_cells(page, t0, timeout_s=420)
            errors = [(c["index"], c["errors"], c["source"]) for c in state["cells"] if c["errors"]]
            counts = [(c["index"], c["count"]) for c in state["cells"]]
            assert not errors, f"cells raised after Stop: {errors}; execution counts {counts}"
            assert all(c["count"] is not None for c in state["cells"]), "later cells did not run"
            assert "status interrupted" in page.evaluate(CELL_TEXT_JS, "first = dash.wait()")
            assert page.locator(".dgnn-dashboard").count() == 2  # the 4-worker run after it ran as usual
            # The dashboards' last frames are drawn after their runs end (the later cells waited for that).
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.dgnn-dashboard .js-plotly-plot'))"
                ".filter(gd => gd.data && gd.data.some(t => t.type === 'heatmap')).length >= 2",
                timeout=30_000, polling=250)
            figs = _dashboard_figures(page.evaluate(jh.PLOTLY_FIGURES_JS, ".dgnn-dashboard .js-plotly-plot"))
            assert set(figs) == {"bytes", "phases", "timeline", "curves", "work"}, figs.keys()
            for heat in figs["bytes"]:
                z = heat["traces"][0]["z"]
                assert len(z) >= 2 and all(len(row) == len(z) for row in z)
                off_diag = sum(v for p, row in enumerate(z) for q, v in enumerate(row) if p != q)
                assert off_diag > 0, f"no bytes between workers in {heat['title']}"
                assert all(z[p][p] == 0 for p in range(len(z)))  # nothing is sent to oneself
            for bars in figs["phases"]:
                workers = bars["traces"][0]["x"]
                assert len(workers) >= 2 and workers[0] == "worker 0"
                assert sum(bars["traces"][0]["y"]) > 0  # measured compute time
            for bars in figs["work"]:  # work, CPU and wall time relative to the mean worker, per worker
                assert [t["name"] for t in bars["traces"]] == ["work (edges aggregated)", "CPU time",
                                                               "wall compute time"]
                for t in bars["traces"]:
                    assert len(t["y"]) >= 2 and abs(sum(t["y"]) / len(t["y"]) - 1) < 1e-6
            assert any(len(f["traces"][0]["z"]) == 4 for f in figs["bytes"])  # the 4-worker run
            assert any("oversubscribed" in f["title"] for f in figs["bytes"]) == (_cores() < 4)
            for f in figs["curves"]:  # a loss for every epoch drawn, the interrupted run's included
                assert f["traces"][0]["x"] and all(v is not None for v in f["traces"][0]["y"])
            # Screenshots: each dashboard (2 workers, then 4), and the page around the first one.
            dashboards = page.locator(".dgnn-dashboard")
            assert dashboards.count() == 2
            for i, name in enumerate(("notebook03_dashboard.png", "notebook03_dashboard_4workers.png")):
                dashboards.nth(i).scroll_into_view_if_needed()
                dashboards.nth(i).screenshot(path=str(ARTIFACTS / name))
            dashboards.nth(0).scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "notebook03_page.png"), full_page=False)
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            saved = repo / "notebooks" / NOTEBOOK
            deadline = time.monotonic() + 30
            while '"outputs": []' in saved.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)  # JupyterLab's save landed once the file carries outputs
            disk = saved.read_text()
            assert '"output_type"' in disk, "JupyterLab's save did not write outputs"
            time.sleep(1.0)  # the post-save hook runs right after the write
            assert git(repo, "status", "--porcelain") == "", "git sees the saved notebook as changed"
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "notebook03_stop_failure.png"), full_page=False)
            raise
        finally:
            page.close()
