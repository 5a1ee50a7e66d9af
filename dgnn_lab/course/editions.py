"""Student and instructor editions of the lab's notebooks.

The *instructor* edition is the notebooks as committed (solutions in, nbgrader metadata on): copied byte for
byte. The *student* edition is each notebook with its solution regions removed (the placeholder lines before
them stay), outputs cleared, check cells kept (with their nbgrader metadata; nbgrader's hidden tests removed),
and answer and check cells made undeletable, check cells also read-only (JupyterLab's ``deletable`` and
``editable`` cell metadata, as ``nbgrader generate_assignment`` locks them). Cell ids are kept, so a
submission's cells line up with the instructor's.

    dgnn-lab course build out/student                    # the lab's own notebooks, student edition
    dgnn-lab course build out/key --edition instructor
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dgnn_lab.course.exercises import (
    STUDENT_MARK,
    is_answer,
    is_check,
    mentions_solution,
    nbgrader_meta,
    strip_hidden_tests,
    strip_solutions,
)

EDITIONS = ("student", "instructor")


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _says_exercise(source: str) -> bool:
    text = source.casefold()
    return "✎" in source or "your code here" in text or "your answer here" in text


def student_edition(nb: Any) -> Any:
    """A student's copy of notebook ``nb`` (an nbformat v4 ``NotebookNode``; ``nb`` is left unchanged).

    ``ValueError`` when a solution region sits outside an answer cell (it would reach the students)."""
    import nbformat

    out = copy.deepcopy(nb)
    for i, cell in enumerate(out.cells):
        source = _source(cell)
        if is_answer(cell) or nbgrader_meta(cell).get("solution"):  # nbgrader's manually graded answers too
            source = strip_solutions(source)
            if cell.cell_type == "code" and not _says_exercise(source):
                source = f"{STUDENT_MARK}\n{source}"
            cell.metadata["deletable"] = False
        elif is_check(cell):
            source = strip_hidden_tests(source)
            cell.metadata["deletable"] = False
            cell.metadata["editable"] = False
        elif mentions_solution(source):
            raise ValueError(f"cell {i} ({cell.get('id', '?')}) holds a solution region but is not an answer cell "
                             "(nbgrader solution): it would reach the students")
        cell.source = source
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    out.metadata.pop("widgets", None)
    nbformat.validate(out)
    return out


def _inputs(src: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(src, (str, Path)):
        path = Path(src)
        if path.is_dir():
            found = sorted(path.glob("*.ipynb"))
            if not found:
                raise FileNotFoundError(f"no notebooks (*.ipynb) in {path}")
            return found
        src = [path]
    paths = [Path(p) for p in src]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"no notebook {p}")
    return paths


def build(src: str | Path | Iterable[str | Path], out_dir: str | Path, edition: str = "student") -> list[Path]:
    """Write the ``edition`` of each notebook (a folder of ``*.ipynb``, or a list of files) into ``out_dir``
    under the same names; return the paths written. Refuses to write over the notebooks it reads."""
    import nbformat

    if edition not in EDITIONS:
        raise ValueError(f"edition must be one of {', '.join(EDITIONS)}, got {edition!r}")
    paths = _inputs(src)
    out = Path(out_dir)
    for p in paths:
        if (out / p.name).resolve() == p.resolve():
            raise ValueError(f"{out} is where the notebooks come from: write the {edition} edition elsewhere")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in paths:
        dest = out / p.name
        if edition == "instructor":
            shutil.copyfile(p, dest)
        else:
            try:
                nb = nbformat.read(p, as_version=4)
                nbformat.write(student_edition(nb), dest)
            except (ValueError, nbformat.ValidationError) as exc:  # not JSON, not a notebook, a leak
                raise ValueError(f"{p.name}: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
        written.append(dest)
    return written
