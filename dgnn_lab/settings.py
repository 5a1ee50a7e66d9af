"""Process-wide settings read from the environment, in one place so every module agrees."""

from __future__ import annotations

import os
from pathlib import Path

SMOKE_ENV = "DGNN_LAB_SMOKE"
DATA_ENV = "DGNN_LAB_DATA"
#: Where Planetoid files are downloaded from (a folder URL holding ``ind.<name>.<part>``): tests and mirrors.
PLANETOID_URL_ENV = "DGNN_LAB_PLANETOID_URL"
RUNS_ENV = "DGNN_LAB_RUNS"

#: PyG's ``Planetoid.url``, copied so ``dgnn-lab doctor`` need not import torch_geometric (a test checks they
#: agree); :mod:`dgnn_lab.datasets` reads PyG's own attribute.
PYG_PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"

#: The checkout's root (``dgnn_lab/..``); ``datasets/`` and ``notebooks/`` live there.
REPO_ROOT = Path(__file__).resolve().parent.parent


def smoke_mode() -> bool:
    """True when ``DGNN_LAB_SMOKE`` asks every notebook and demo to run its smallest configuration."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def in_checkout() -> bool:
    """True when this package runs from a source checkout (``pyproject.toml`` beside ``dgnn_lab/``, as with
    ``pip install -e .``), False when installed into site-packages (``pip install .``, e.g. on Colab)."""
    return (REPO_ROOT / "pyproject.toml").is_file()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets live: an explicit ``root``, else ``$DGNN_LAB_DATA``, else ``datasets/`` in the checkout,
    else (an installed package, no checkout) ``~/.cache/dgnn_lab/datasets``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if in_checkout():
        return REPO_ROOT / "datasets"
    return Path.home() / ".cache" / "dgnn_lab" / "datasets"


def runs_root() -> Path:
    """Where run directories go by default: ``$DGNN_LAB_RUNS``, else ``runs/`` in the checkout, else (an
    installed package, no checkout) ``~/dgnn_lab_runs``. Never the current directory, so notebooks do not
    fill their own folder with runs."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    if in_checkout():
        return REPO_ROOT / "runs"
    return Path.home() / "dgnn_lab_runs"


#: The Planetoid graphs: lab name -> PyG's name (the folder under ``<data root>/Planetoid/``).
PLANETOID_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
#: The eight original files of each, ``ind.<name>.<part>``.
PLANETOID_FILES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def planetoid_raw_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """``<root>/Planetoid/<Name>/raw``: where PyG's ``Planetoid`` looks for the original split files."""
    return data_root(root) / "Planetoid" / PLANETOID_NAMES[name.lower()] / "raw"


def planetoid_missing(name: str, root: str | os.PathLike | None = None) -> list[str]:
    """The file names of ``name`` not (or only as empty files) in :func:`planetoid_raw_dir`; ``[]``: on disk."""
    raw = planetoid_raw_dir(name, root)
    stem = name.lower()
    out = []
    for part in PLANETOID_FILES:
        f = raw / f"ind.{stem}.{part}"
        try:
            complete = f.is_file() and f.stat().st_size > 0
        except OSError:
            complete = False
        if not complete:
            out.append(f.name)
    return out


def planetoid_url(default: str = PYG_PLANETOID_URL) -> str:
    """The folder URL Planetoid files are downloaded from: ``$DGNN_LAB_PLANETOID_URL``, else ``default``
    (PyG's ``Planetoid.url``)."""
    env = os.environ.get(PLANETOID_URL_ENV, "").strip()
    return env.rstrip("/") if env else default


WIDGETS_ENV = "DGNN_LAB_WIDGETS"


def widgets_enabled() -> bool:
    """Whether live views may use Jupyter widgets: ``$DGNN_LAB_WIDGETS`` (``0`` for plain figures that update in
    place, ``1`` to force widgets), else yes except on Colab, whose front end does not load the custom widgets of
    plotly's ``FigureWidget`` by default. The static figures are the same figures, without the Stop button."""
    env = os.environ.get(WIDGETS_ENV, "").strip().lower()
    if env:
        return env not in ("0", "false", "no", "off")
    import sys

    return "google.colab" not in sys.modules
