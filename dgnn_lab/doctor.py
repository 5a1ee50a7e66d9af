"""Environment checks behind ``dgnn-lab doctor`` and the welcome notebook: what works, and how to fix what does not.

Also where the lab keeps things: the data root (which Planetoid graphs are on disk, which download on first use
and from where) and the runs root. :func:`run_checks` returns a :class:`Report`, which a notebook shows whole.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from dgnn_lab import settings
from dgnn_lab.settings import SMOKE_ENV, smoke_mode


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" (optional feature missing) or "fail" (the lab can't work)
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _package(name: str, dist: str, fix: str, required: bool = True) -> Check:
    ver = _version(dist)
    if ver is None:
        return Check(name, "fail" if required else "warn", "not installed", fix)
    try:
        importlib.import_module(name)
    except Exception as exc:  # installed but broken (ABI mismatch, missing shared library)
        return Check(name, "fail" if required else "warn", f"{ver} installed but import fails: {exc}", fix)
    return Check(name, "ok", ver)


def _labextension(name: str, rel: str, fix: str) -> Check:
    """A JupyterLab front-end extension must sit in the environment that runs the server, or widgets show as text."""
    roots = [Path(sys.prefix) / "share" / "jupyter" / "labextensions"]
    roots += [Path(p) / "labextensions" for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p]
    for root in roots:
        if (root / rel / "package.json").exists():
            return Check(name, "ok", f"front-end at {root / rel}")
    return Check(name, "fail", f"front-end extension {rel} not found under {roots[0]}", fix)


def _free_port() -> Check:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        return Check("loopback port", "ok", f"127.0.0.1:{port} free (workers rendezvous on loopback)")
    except OSError as exc:
        return Check("loopback port", "fail", f"cannot bind 127.0.0.1: {exc}",
                     "distributed runs need a loopback TCP port; check firewall/sandbox settings")


def _source(env: str, checkout: str, installed: str) -> str:
    if os.environ.get(env):
        return f"from ${env}"
    return checkout if settings.in_checkout() else installed


def _storage() -> list[Check]:
    """Where datasets and runs go, and which Planetoid graphs are on disk (files only: nothing is imported)."""
    root = settings.data_root()
    url = settings.planetoid_url()
    how = _source(settings.DATA_ENV, "datasets/ in the checkout", "installed without a checkout")
    checks = [Check("data root", "ok", f"{root} ({how})",
                    f"set ${settings.DATA_ENV} (or pass --data-root / root=...) to use another folder")]
    for name in settings.PLANETOID_NAMES:
        missing = settings.planetoid_missing(name)
        raw = settings.planetoid_raw_dir(name)
        checks.append(Check(name, "ok", "on disk" if not missing else "not on disk: will download on first use",
                            "" if not missing else f"offline: copy {', '.join(missing)} into {raw}/"))
    where = f"from ${settings.PLANETOID_URL_ENV}" if os.environ.get(settings.PLANETOID_URL_ENV) else "PyG's default"
    checks.append(Check("download URL", "ok", f"{url} ({where})",
                        f"set ${settings.PLANETOID_URL_ENV} to a mirror holding the ind.<name>.* files"))
    how = _source(settings.RUNS_ENV, "runs/ in the checkout", "installed without a checkout")
    checks.append(Check("runs root", "ok", f"{settings.runs_root()} ({how})",
                        f"set ${settings.RUNS_ENV} to keep runs elsewhere"))
    return checks


def _notebook_filter() -> Check:
    """Whether notebooks run in place stay clean for git (the nbstripout filter ``make lab`` configures)."""
    import subprocess

    if not settings.in_checkout():
        return Check("notebook git filter", "ok", "not a checkout: nothing to keep clean")
    try:
        out = subprocess.run(["git", "-C", str(settings.REPO_ROOT), "config", "filter.nbstripout.clean"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return Check("notebook git filter", "warn", "git not found", "install git, then `make git-filter`")
    if out.returncode == 0 and "nbstripout" in out.stdout:
        return Check("notebook git filter", "ok", "configured: saved outputs stay out of git")
    return Check("notebook git filter", "warn", "not configured: a notebook run in place shows as changed",
                 "make git-filter (make lab and make test do it)")


def run_checks() -> Report:
    """Every check, in the order a person would fix them, as a :class:`Report` (a list that displays whole)."""
    install = "run `make lab` (or `pip install -e .`) in the checkout"
    checks = []
    py_ok = sys.version_info >= (3, 10)
    checks.append(Check("python", "ok" if py_ok else "fail", f"{platform.python_version()} at {sys.executable}",
                        "" if py_ok else "dgnn_lab needs Python >= 3.10"))
    torch_check = _package("torch", "torch", "install PyTorch: see README 'Installing PyTorch'")
    checks.append(torch_check)
    cores = os.cpu_count() or 1
    if torch_check.status == "ok":
        import torch
        import torch.distributed as dist

        n_gpu = torch.cuda.device_count() if torch.cuda.is_available() else 0
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only build"
        torch_check.detail += f" ({build}; {n_gpu} CUDA device(s); {torch.get_num_threads()} threads)"
        if not dist.is_available():
            checks.append(Check("torch.distributed", "fail", "this torch build has no torch.distributed",
                                "install a standard PyTorch wheel (the official CPU or CUDA builds have it)"))
        else:
            gloo = dist.is_gloo_available()
            checks.append(Check("gloo backend", "ok" if gloo else "fail",
                                "available (CPU training)" if gloo else "missing",
                                "" if gloo else "install a standard PyTorch wheel; gloo ships with it"))
            nccl = dist.is_nccl_available() and n_gpu > 0
            checks.append(Check("nccl backend", "ok" if nccl else "warn",
                                f"available, {n_gpu} GPU(s)" if nccl else
                                "not usable here (needs CUDA GPUs); runs use gloo on CPU",
                                "" if nccl else "optional: a CUDA build of PyTorch on a machine with GPUs"))
    checks.append(Check("cpu cores", "ok", f"{cores} cores: up to {cores} workers run without oversubscription"))
    checks.append(_package("torch_geometric", "torch-geometric", install))
    for mod, dist_name in [("pymetis", "pymetis"), ("numba", "numba"), ("networkx", "networkx"),
                           ("scipy", "scipy"), ("pandas", "pandas"), ("plotly", "plotly")]:
        checks.append(_package(mod, dist_name, install))
    for mod, dist_name in [("jupyterlab", "jupyterlab"), ("ipykernel", "ipykernel"),
                           ("ipywidgets", "ipywidgets"), ("anywidget", "anywidget")]:
        checks.append(_package(mod, dist_name, install))
    checks.append(_labextension("ipywidgets front-end", "@jupyter-widgets/jupyterlab-manager",
                                "pip install 'ipywidgets>=8.1.9' into the environment that runs `jupyter lab`"))
    checks.append(_labextension("anywidget front-end", "anywidget",
                                "pip install anywidget into the environment that runs `jupyter lab` "
                                "(plotly's FigureWidget needs it)"))
    checks.append(_free_port())
    checks.extend(_storage())
    checks.append(_notebook_filter())
    checks.append(Check("smoke mode", "ok", f"{'on' if smoke_mode() else 'off'} ({SMOKE_ENV}="
                        f"{os.environ.get(SMOKE_ENV, '')!r}; on = smallest configurations, for tests)"))
    return Report(checks)


def healthy(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)


_MARK = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def format_text(checks: list[Check]) -> str:
    """The report ``dgnn-lab doctor`` prints: one line per check, a ``fix:`` line under each that is not ok."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"[{_MARK[c.status]}] {c.name.ljust(width)}  {c.detail}")
        if c.fix and c.status != "ok":
            lines.append(f"       {' ' * width}  fix: {c.fix}")
    ok = healthy(checks)
    lines.append("\nall required checks passed" if ok else "\nsome required checks failed: see 'fix' above")
    return "\n".join(lines)


class Report(list):
    """The checks (a list of :class:`Check`), displayed whole: in a notebook an HTML table whose long cells
    (paths, URLs, fixes) wrap instead of being cut, elsewhere the text ``dgnn-lab doctor`` prints."""

    @property
    def ok(self) -> bool:
        return healthy(self)

    def __str__(self) -> str:
        return format_text(self)

    def _repr_pretty_(self, p, cycle) -> None:  # IPython's plain-text display
        p.text(str(self))

    def _repr_html_(self) -> str:
        from html import escape

        colour = {"ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e"}
        cell = "text-align:left; vertical-align:top; white-space:normal; overflow-wrap:anywhere; padding:2px 8px"
        tight = f"{cell}; white-space:nowrap"  # the name and status columns never break
        head = "".join(f"<th style='{tight if h in ('check', 'status') else cell}'>{h}</th>"
                       for h in ("check", "status", "detail", "fix"))
        rows = []
        for c in self:
            fix = c.fix if c.status != "ok" else ""
            rows.append(f"<tr><td style='{tight}'>{escape(c.name)}</td>"
                        f"<td style='{tight}; color:{colour[c.status]}; font-weight:bold'>{c.status}</td>"
                        f"<td style='{cell}'>{escape(c.detail)}</td><td style='{cell}'>{escape(fix)}</td></tr>")
        verdict = "all required checks passed" if self.ok else "some required checks failed: see the fix column"
        return (f"<table style='table-layout:auto; width:100%; max-width:100%'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(rows)}</tbody></table><p>{verdict}</p>")
