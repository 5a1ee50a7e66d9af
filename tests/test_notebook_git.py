"""A notebook run and saved in place, as a student would, leaves the checkout clean for git.

The mechanism under test is the README's setup: ``.gitattributes`` names the nbstripout filter, the Makefile's
``git-filter`` target configures it, and ``dgnn-lab lab`` starts JupyterLab with ``dgnn_lab.notebook_git``'s
post-save hook. The test builds a throwaway git repository from this checkout's files, runs that same target
there, executes a notebook in place and saves it with its outputs through Jupyter's own contents manager
configured as ``dgnn-lab lab`` configures it, then asks git. (The browser test does the same through JupyterLab.)
"""

from __future__ import annotations

import json
import shutil

import pytest

from dgnn_lab.settings import REPO_ROOT

from .stored import git, stored_text, throwaway_checkout

NOTEBOOK = "00_welcome.ipynb"


def _save_as_jupyterlab_does(nb, path) -> None:
    """Save through jupyter_server's contents manager with ``dgnn-lab lab``'s post-save hook option."""
    from jupyter_server.services.contents.filemanager import FileContentsManager

    from dgnn_lab.notebook_git import POST_SAVE_HOOK

    option, hook = POST_SAVE_HOOK.removeprefix("--").split("=", 1)
    assert option == "FileContentsManager.post_save_hook"
    manager = FileContentsManager(root_dir=str(path.parent), post_save_hook=hook)
    manager.save({"type": "notebook", "format": "json", "content": nb}, path.name)


@pytest.mark.notebook
def test_running_a_notebook_in_place_leaves_git_clean(tmp_path, monkeypatch):
    import nbclient
    import nbformat

    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("git and make are needed to test the checkout's notebook filter")
    committed = stored_text(REPO_ROOT / "notebooks" / NOTEBOOK)
    repo = throwaway_checkout(tmp_path / "checkout", {NOTEBOOK: committed})
    assert "nbstripout" in git(repo, "config", "filter.nbstripout.clean")

    path = repo / "notebooks" / NOTEBOOK
    monkeypatch.setenv("DGNN_LAB_SMOKE", "1")
    monkeypatch.setenv("DGNN_LAB_RUNS", str(tmp_path / "runs"))
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=240, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata["language_info"]["version"] = "3.11.2"  # what a front end adds on save (JupyterLab, VS Code)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    _save_as_jupyterlab_does(nb, path)
    on_disk = json.loads(path.read_text())
    assert any(c.get("outputs") for c in on_disk["cells"] if c["cell_type"] == "code"), "the run left no outputs"
    assert any(c.get("execution_count") for c in on_disk["cells"] if c["cell_type"] == "code")

    assert git(repo, "status", "--porcelain") == "", "git sees the run notebook as changed"
    assert git(repo, "diff") == ""
    # What git would store for the run notebook is exactly what was committed.
    assert stored_text(path) == committed
    # A real edit still shows: the hook re-stats only entries whose cleaned content is unchanged.
    nb.cells[0].source += "\n\nmy note"
    _save_as_jupyterlab_does(nb, path)
    assert git(repo, "status", "--porcelain").strip() == "M notebooks/00_welcome.ipynb"
