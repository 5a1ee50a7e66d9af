"""Environment checks behind ``dgnn-lab doctor`` and the welcome notebook: what works, and how to fix what does not."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import platform
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

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


def run_checks() -> list[Check]:
    """Every check, in the order a person would fix them."""
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
    checks.append(Check("smoke mode", "ok", f"{'on' if smoke_mode() else 'off'} ({SMOKE_ENV}="
                        f"{os.environ.get(SMOKE_ENV, '')!r}; on = smallest configurations, for tests)"))
    return checks


def healthy(checks: list[Check]) -> bool:
    return all(c.status != "fail" for c in checks)
