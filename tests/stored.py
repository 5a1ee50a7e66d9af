"""What git stores for a file: the working file passed through the checkout's clean filters (nbstripout for
notebooks, once ``make lab``/``make test`` configured it), so checks of committed notebooks hold after a student
ran and saved one in place. Outside a git checkout, or without git, the file as it is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def stored_text(path: Path) -> str:
    path = Path(path).resolve()
    if shutil.which("git") is not None:
        top = subprocess.run(["git", "-C", str(path.parent), "rev-parse", "--show-toplevel"],
                             capture_output=True, text=True)
        if top.returncode == 0:
            root = Path(top.stdout.strip())
            rel = path.relative_to(root).as_posix()
            blob = subprocess.run(["git", "-C", str(root), "hash-object", "-w", f"--path={rel}", str(path)],
                                  capture_output=True, text=True, check=True).stdout.strip()
            return subprocess.run(["git", "-C", str(root), "cat-file", "blob", blob], capture_output=True,
                                  text=True, check=True).stdout
    return path.read_text(encoding="utf-8")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


def throwaway_checkout(repo: Path, notebooks: dict[str, str]) -> Path:
    """A git repository at ``repo`` holding this checkout's ``.gitattributes``, ``.gitignore`` and ``Makefile``
    and ``notebooks/<name>`` with the given texts, committed, then set up as the README's setup does (the
    Makefile's ``git-filter`` target, with this checkout's virtualenv). Needs git and make (callers skip)."""
    from dgnn_lab.settings import REPO_ROOT

    (repo / "notebooks").mkdir(parents=True)
    for name in (".gitattributes", ".gitignore", "Makefile"):
        shutil.copy(REPO_ROOT / name, repo / name)
    for name, text in notebooks.items():
        (repo / "notebooks" / name).write_text(text, encoding="utf-8")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "notebooks")
    subprocess.run(["make", "-s", "-C", str(repo), f"VENV={REPO_ROOT / '.venv'}", "git-filter"], check=True,
                   capture_output=True, text=True)
    return repo
