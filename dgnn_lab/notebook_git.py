"""Keep a checkout clean for git while students run its notebooks in place.

``.gitattributes`` sends notebooks through the nbstripout clean filter (configured by ``make lab`` / ``make
test``), so what git *stores* for a run notebook has no outputs. But git decides a file is modified from its
size before it runs any filter, so ``git status`` would still list every saved notebook. JupyterLab started by
``dgnn-lab lab`` calls :func:`refresh_after_save` after each save: when the cleaned file is exactly the blob
the index holds, it re-stats that index entry (content untouched) and git sees no change; a real edit of a
cell's source still shows, as it should.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

#: The Jupyter server option ``dgnn-lab lab`` passes (tests start JupyterLab with the same).
POST_SAVE_HOOK = "--FileContentsManager.post_save_hook=dgnn_lab.notebook_git.refresh_after_save"

log = logging.getLogger(__name__)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def refresh_index_entry(path: str | Path) -> bool:
    """Re-stat ``path``'s index entry if its filtered content equals the indexed blob; True if it did."""
    path = Path(path).resolve()
    if path.suffix != ".ipynb" or not path.is_file():
        return False
    top = _git(path.parent, "rev-parse", "--show-toplevel")
    if not top:
        return False
    root = Path(top)
    rel = path.relative_to(root).as_posix()
    if _git(root, "check-attr", "filter", "--", rel) != f"{rel}: filter: nbstripout":
        return False
    if not _git(root, "config", "filter.nbstripout.clean"):
        return False  # the attribute without the filter: git stores the outputs, and should say so
    staged = (_git(root, "ls-files", "-s", "--", rel) or "").split()
    if len(staged) < 2:
        return False  # untracked: nothing to compare with
    if _git(root, "hash-object", f"--path={rel}", rel) != staged[1]:
        return False
    return _git(root, "update-index", "-q", "--", rel) is not None


def refresh_after_save(os_path: str, **_: Any) -> None:
    """Jupyter server ``post_save_hook``: never fails a save."""
    try:
        refresh_index_entry(os_path)
    except Exception:  # noqa: BLE001 - a save must not fail over git bookkeeping
        log.debug("could not refresh git's index entry for %s", os_path, exc_info=True)
