"""Shared fixtures. Cora/CiteSeer come from a private copy of ``../shared/datasets`` (never written to)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dgnn_lab.settings import REPO_ROOT

SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


def _shared_planetoid() -> Path | None:
    """The read-only Planetoid copy beside the checkout (or named by DGNN_LAB_TEST_DATA), if present."""
    candidates = [os.environ.get("DGNN_LAB_TEST_DATA"), str(SHARED_DATASETS)]
    for c in candidates:
        if c and (Path(c) / "Planetoid" / "Cora" / "raw" / "ind.cora.x").exists():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def planetoid_root(tmp_path_factory) -> Path:
    """A writable copy of the shared Planetoid files (PyG writes ``processed/`` beside ``raw/``)."""
    src = _shared_planetoid()
    if src is None:
        pytest.skip(f"Planetoid raw files not found at {SHARED_DATASETS} (nor $DGNN_LAB_TEST_DATA): "
                    "Cora/CiteSeer tests need them and cannot download here")
    dst = tmp_path_factory.mktemp("datasets")
    shutil.copytree(src / "Planetoid", dst / "Planetoid")
    return dst
