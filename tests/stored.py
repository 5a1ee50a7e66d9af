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
