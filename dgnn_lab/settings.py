"""Process-wide settings read from the environment, in one place so every module agrees."""

from __future__ import annotations

import os
from pathlib import Path

SMOKE_ENV = "DGNN_LAB_SMOKE"
DATA_ENV = "DGNN_LAB_DATA"

#: The checkout's root (``dgnn_lab/..``); ``datasets/`` and ``notebooks/`` live there.
REPO_ROOT = Path(__file__).resolve().parent.parent


def smoke_mode() -> bool:
    """True when ``DGNN_LAB_SMOKE`` asks every notebook and demo to run its smallest configuration."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: an explicit ``root``, else ``$DGNN_LAB_DATA``, else ``datasets/`` in the checkout."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return REPO_ROOT / "datasets"
