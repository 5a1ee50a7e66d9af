"""Every committed notebook: generated from its source, committed clean, and runs end to end in smoke mode.

"Committed" means what git stores (:func:`tests.stored.stored_text`): a notebook a student ran and saved in place
carries outputs on disk, which the checkout's nbstripout filter keeps out of git.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
import subprocess
import time

import pytest

from dgnn_lab.settings import REPO_ROOT

from .conftest import _shared_planetoid
from .stored import stored_text

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
SOURCES = sorted((REPO_ROOT / "notebooks" / "src").glob("*.py"))
#: What every committed notebook's metadata is, exactly (no widget state, no jupytext section).
METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"}}


def _generator():
    """tools/notebooks.py, imported in-process (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_nb_generator", REPO_ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _code_cells(path):
    return [c for c in json.loads(stored_text(path))["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    # Eight notebooks, numbered 00..07 in teaching order, one source each.
    assert [p.name[:3] for p in NOTEBOOKS] == [f"{i:02d}_" for i in range(8)], [p.name for p in NOTEBOOKS]
    assert all(re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name) for p in NOTEBOOKS), [p.name for p in NOTEBOOKS]
    assert NOTEBOOKS[0].name == "00_welcome.ipynb"


def test_every_notebook_has_a_source_and_vice_versa():
    assert len(SOURCES) == len(NOTEBOOKS) == 8
    assert [p.stem for p in SOURCES] == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_generated_from_its_source(path):
    gen = _generator()
    source = REPO_ROOT / "notebooks" / "src" / f"{path.stem}.py"
    assert source.is_file(), f"{path.name} has no source {source.relative_to(REPO_ROOT)}"
    assert gen.target(source) == path
    assert gen.build(source) == stored_text(path), (
        f"{path.name} differs from its source: edit {source.relative_to(REPO_ROOT)} and run "
        "`.venv/bin/python tools/notebooks.py`")


def test_generator_check_sees_a_stale_a_missing_and_an_orphan_notebook(tmp_path):
    gen = _generator()
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    (src / "01_a.py").write_text('# %% [markdown] id="m0"\n# # A\n\n# %% id="k1"\nx = 1\nx\n')
    (src / "02_b.py").write_text('# %% id="k0"\ny = 2\n')
    assert gen.stale(src, out) == ["01_a.ipynb: missing (run tools/notebooks.py)",
                                   "02_b.ipynb: missing (run tools/notebooks.py)"]
    assert gen.write_all(src, out) == [out / "01_a.ipynb", out / "02_b.ipynb"]
    assert gen.stale(src, out) == []
    assert gen.write_all(src, out) == []  # regenerating is a no-op
    nb = json.loads((out / "01_a.ipynb").read_text())
    assert [(c["cell_type"], c["id"], "".join(c["source"])) for c in nb["cells"]] == [
        ("markdown", "m0", "# A"), ("code", "k1", "x = 1\nx")]
    assert nb["metadata"] == METADATA
    (out / "02_b.ipynb").write_text((out / "02_b.ipynb").read_text().replace("y = 2", "y = 3"))
    (out / "03_c.ipynb").write_text((out / "01_a.ipynb").read_text())
    assert gen.stale(src, out) == ["02_b.ipynb: differs from src/02_b.py", "03_c.ipynb: has no source src/03_c.py"]
    (src / "04_d.py").write_text("# %%\nz = 4\n")
    with pytest.raises(ValueError, match="no id"):
        gen.build(src / "04_d.py")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    import nbformat

    nb = json.loads(stored_text(path))
    nbformat.validate(nbformat.from_dict(nb))
    assert nb["metadata"] == METADATA, "exactly the kernelspec and language_info (no widget state, no jupytext)"
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds[0] == "markdown", "a notebook opens with its title"
    assert "code" in kinds and set(kinds) == {"markdown", "code"}, kinds
    ids = [c["id"] for c in nb["cells"]]
    assert len(set(ids)) == len(ids), "cell ids must be unique"
    for i, cell in enumerate(nb["cells"]):
        assert "".join(cell["source"]).strip(), f"cell {i} is empty"
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"cell {i} carries outputs"
            assert "execution_count" in cell and cell["execution_count"] is None, f"cell {i} carries an execution count"


@pytest.fixture(scope="module")
def notebook_env(tmp_path_factory, monkeypatch_module):
    """Smoke mode, and Cora/CiteSeer from a private copy when the shared files exist (else notebooks fall back)."""
    monkeypatch_module.setenv("DGNN_LAB_SMOKE", "1")
    monkeypatch_module.setenv("DGNN_LAB_RUNS", str(tmp_path_factory.mktemp("nbruns-root")))
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
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] == "00"], ids=lambda p: p.stem)
def test_runs_in_smoke_mode(path, notebook_env):
    # The welcome notebook has no exercises; every other notebook runs (twice) in
    # tests/test_course.py::test_every_lab_notebook_runs_and_grades, as an assignment.
    import nbclient
    import nbformat

    nb = nbformat.reads(stored_text(path), as_version=4)
    # Runs (and their run directories) land in a scratch copy of the notebooks folder, not in the checkout.
    workdir = notebook_env / path.stem
    workdir.mkdir()
    client = nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count is None for c in code)
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError on the first cell that raises
    elapsed = time.perf_counter() - start
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, [f"{e.ename}: {e.evalue}" for e in errors]
    # Every code cell ran, once, in order, in one kernel.
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert len(code) == len(_code_cells(path))
    print(f"{path.name}: {len(code)} code cells, {elapsed:.1f} s in smoke mode")


def test_ruff_clean():
    ruff = shutil.which("ruff", path=str(REPO_ROOT / ".venv" / "bin")) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra: pip install -e '.[test]')")
    proc = subprocess.run([ruff, "check", "--quiet", str(REPO_ROOT)], capture_output=True, text=True,
                          cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # ...and that verdict covers the notebook sources and the generator (nothing excludes them).
    listed = subprocess.run([ruff, "check", "--show-files", str(REPO_ROOT)], capture_output=True, text=True,
                            cwd=REPO_ROOT).stdout
    for path in [*SOURCES, REPO_ROOT / "tools" / "notebooks.py"]:
        assert str(path) in listed, f"ruff does not lint {path.relative_to(REPO_ROOT)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_only_the_library(path):
    # Thin notebooks: the only project code they import is dgnn_lab (never tests/, tools/, benchmarks/, ...).
    local = {p.name if p.is_dir() else p.stem for p in REPO_ROOT.iterdir()
             if not p.name.startswith(".") and (p.is_dir() or p.suffix == ".py")} - {"dgnn_lab"}
    imported = set()
    for cell in _code_cells(path):
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"relative import in {path.name}"
                imported.add(node.module.split(".")[0])
    assert "dgnn_lab" in imported, f"{path.name} imports nothing from dgnn_lab"
    assert not imported & local, f"{path.name} imports project code outside dgnn_lab: {sorted(imported & local)}"
