"""Every committed notebook: clean on disk, and runs end to end in smoke mode."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from dgnn_lab.settings import REPO_ROOT

from .conftest import _shared_planetoid

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert any(p.name == "00_welcome.ipynb" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", "kernelspec metadata is required"
    assert "widgets" not in nb["metadata"], "widget state must not be committed"
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), f"cell {i} carries outputs"
            assert cell.get("execution_count") is None, f"cell {i} carries an execution count"


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory, monkeypatch_module):
    """Smoke mode, and Cora/CiteSeer from a private copy when the shared files exist (else notebooks fall back)."""
    monkeypatch_module.setenv("DGNN_LAB_SMOKE", "1")
    src = _shared_planetoid()
    if src is not None:
        dst = tmp_path_factory.mktemp("nbdata")
        shutil.copytree(src / "Planetoid", dst / "Planetoid")
        monkeypatch_module.setenv("DGNN_LAB_DATA", str(dst))
    return tmp_path_factory.mktemp("nbruns")


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_in_smoke_mode(path, notebook_env):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    # Runs (and their run directories) land in a scratch copy of the notebooks folder, not in the checkout.
    workdir = notebook_env / path.stem
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    print(f"{path.name}: {elapsed:.1f} s in smoke mode")


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra: pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", "--quiet", str(REPO_ROOT)], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_notebooks_import_only_the_library():
    # Thin notebooks: the only project code they import is dgnn_lab (never tests/ or tools/).
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"])
            assert "from tests" not in src and "import tools" not in src, path.name
    assert sys.modules.get("dgnn_lab") is not None
