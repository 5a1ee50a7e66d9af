"""``dgnn-lab lab``: start JupyterLab on the notebooks."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from dgnn_lab.cli.common import CLIError


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("lab", help="start JupyterLab in notebooks/",
                       description="Start JupyterLab in the checkout's notebooks/ folder, opening a notebook.")
    p.add_argument("--notebook", default="00_welcome.ipynb", help="notebook to open (default: %(default)s)")
    p.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's choice)")
    p.add_argument("--no-browser", action="store_true", help="don't open a browser; print the URL")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return p


def run(args: argparse.Namespace) -> int:
    from dgnn_lab.settings import REPO_ROOT

    nb_dir = REPO_ROOT / "notebooks"
    if not (nb_dir / args.notebook).exists():
        available = ", ".join(sorted(p.name for p in nb_dir.glob("*.ipynb"))) or "none"
        raise CLIError(f"no notebook {args.notebook!r} in {nb_dir}; available: {available}")
    from dgnn_lab.notebook_git import POST_SAVE_HOOK

    # The hook keeps `git status` clean for notebooks run and saved in place (see dgnn_lab.notebook_git).
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={nb_dir}", POST_SAVE_HOOK, args.notebook]
    if args.port:
        cmd.append(f"--port={args.port}")
    if args.no_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    try:
        return subprocess.call(cmd, cwd=nb_dir)
    except KeyboardInterrupt:
        return 0
