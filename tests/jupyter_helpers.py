"""Drive a real JupyterLab with headless Chromium (Playwright for Python) for browser tests.

Only Debian's ``/usr/bin/chromium`` (or ``$DGNN_LAB_CHROMIUM``) is used: tests never download a browser.
JupyterLab runs on 127.0.0.1 with an empty token, its settings and workspaces in a scratch folder (so a
user's settings can't change what the test sees), and notebook windowing off (cells scrolled out of view
keep their DOM, so figures can be read from any cell).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from dgnn_lab.notebook_git import POST_SAVE_HOOK

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """The system Chromium to drive, or None when it is not installed."""
    cand = os.environ.get("DGNN_LAB_CHROMIUM") or "/usr/bin/chromium"
    return cand if Path(cand).exists() else None


def browser_unavailable_reason() -> str | None:
    """Why a browser test cannot run here (None when it can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright for Python is not installed (pip install playwright; never `playwright install`)"
    if chromium_path() is None:
        where = os.environ.get("DGNN_LAB_CHROMIUM") or "/usr/bin/chromium"
        return (f"no Chromium at {where}: install Debian's (apt-get install -y chromium) or point "
                "$DGNN_LAB_CHROMIUM at one; tests never download a browser")
    if shutil.which("jupyter", path=str(Path(sys.executable).parent)) is None:
        return "jupyter (jupyterlab) is not installed next to this Python"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(root_dir: Path, scratch: Path, env: dict[str, str] | None = None, timeout_s: float = 60.0):
    """Run ``jupyter lab`` serving ``root_dir`` on a free loopback port; yields its base URL.

    The server runs in its own process group and is ended (then killed) on exit, kernels included.
    """
    settings = scratch / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none", "recordTiming": True}))
    apputils = settings / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True, exist_ok=True)  # no "get Jupyter news?" toast over the page
    (apputils / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    workspaces = scratch / "lab-workspaces"
    workspaces.mkdir(exist_ok=True)
    port = free_port()
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    cmd = [jupyter, "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", "--ServerApp.port_retries=0",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None", "--IdentityProvider.token=",
           "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root_dir}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", POST_SAVE_HOOK]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    full_env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(workspaces), **(env or {})}
    log = open(scratch / "jupyter-lab.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=root_dir,
                            start_new_session=True, preexec_fn=_die_with_parent)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{_tail(scratch / 'jupyter-lab.log')}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab not up after {timeout_s} s:\n{_tail(scratch / 'jupyter-lab.log')}")
            time.sleep(0.3)
        yield url
    finally:
        _end_group(proc)
        log.close()


def _die_with_parent() -> None:
    """In the child (Linux): SIGTERM it when the test process dies, so a killed test leaves no server behind."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the finally-block cleanup still applies
        pass


def _end_group(proc: subprocess.Popen) -> None:
    """SIGTERM then SIGKILL the server's own process group (the server and the kernels it started)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover
        pass


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


# JavaScript run in the page ---------------------------------------------------------------------------

#: State of the current notebook's cells: execution counts, error outputs, kernel status.
NOTEBOOK_STATE_JS = """
() => {
  const app = window.jupyterapp;
  if (!app) return null;
  // The notebook panel in the main area: currentWidget follows focus, which outputs (widgets, plots) can take.
  const isNb = (x) => x && x.content && x.content.model && x.sessionContext;
  let w = isNb(app.shell.currentWidget) ? app.shell.currentWidget : null;
  if (!w) for (const x of app.shell.widgets('main')) { if (isNb(x)) { w = x; break; } }
  if (!w) return null;
  const cells = w.content.model.cells;
  const out = [];
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type !== 'code') continue;
    const errors = [];
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
    }
    const timing = c.getMetadata ? c.getMetadata('execution') : null;
    out.push({index: i, count: c.executionCount, errors: errors, timing: timing || null,
              source: c.sharedModel.getSource().slice(0, 80)});
  }
  const k = w.sessionContext.session && w.sessionContext.session.kernel;
  return {cells: out, kernel: k ? k.status : null, kernelName: w.sessionContext.kernelDisplayName};
}
"""

#: Every plotly plot matching a CSS selector (argument): its title and its traces' type, name, x, y, z.
PLOTLY_FIGURES_JS = """
(selector) => Array.from(document.querySelectorAll(selector)).map(gd => ({
  title: (gd.layout && gd.layout.title && (gd.layout.title.text || gd.layout.title)) || '',
  traces: (gd.data || []).map(t => ({type: t.type || 'scatter', name: t.name || '',
                                     x: t.x ? Array.from(t.x) : null, y: t.y ? Array.from(t.y) : null,
                                     z: t.z ? Array.from(t.z, r => Array.from(r)) : null})),
}))
"""


def cell_seconds(cell: dict) -> float | None:
    """Kernel-side run time of a cell from JupyterLab's ``recordTiming`` metadata (None if absent)."""
    from datetime import datetime

    t = cell.get("timing") or {}
    a, b = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    if not a or not b:
        return None
    def parse(x: str) -> datetime:
        return datetime.fromisoformat(x.replace("Z", "+00:00"))

    return (parse(b) - parse(a)).total_seconds()


def open_notebook(page, base_url: str, name: str, timeout_s: float = 60.0) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel is idle."""
    page.goto(f"{base_url}/lab/tree/{name}", wait_until="domcontentloaded", timeout=timeout_s * 1000)
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                           "window.jupyterapp.shell.currentWidget.sessionContext && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel && "
                           "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
                           timeout=timeout_s * 1000, polling=250)


def run_all_cells(page, timeout_s: float) -> dict:
    """Run every cell (``notebook:run-all-cells``) and wait until all code cells have run or one failed.

    Returns the final notebook state (see ``NOTEBOOK_STATE_JS``) plus ``finished_at``: seconds after the
    start at which each code cell (by index) was first seen finished. Raises ``TimeoutError`` with the state.
    """
    t0 = time.monotonic()
    start_run_all(page)
    return wait_all_cells(page, t0, timeout_s)


def start_run_all(page) -> None:
    """Start ``notebook:run-all-cells`` without waiting for its promise (which resolves when every cell ran)."""
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def wait_all_cells(page, t0: float, timeout_s: float) -> dict:
    """Wait until every code cell has run or one failed (see :func:`run_all_cells`)."""
    deadline = t0 + timeout_s
    state = None
    finished_at: dict[int, float] = {}
    while time.monotonic() < deadline:
        state = page.evaluate(NOTEBOOK_STATE_JS)
        if state and state["cells"]:
            for c in state["cells"]:
                if c["count"] is not None and c["index"] not in finished_at:
                    finished_at[c["index"]] = round(time.monotonic() - t0, 1)
            state["finished_at"] = finished_at
            if any(c["errors"] for c in state["cells"]):
                return state
            if all(c["count"] is not None for c in state["cells"]) and state["kernel"] == "idle":
                return state
        time.sleep(0.5)
    raise TimeoutError(f"notebook still running after {timeout_s} s: {state}")
