"""The exercise format: nbgrader's cell metadata, solution regions, and the rules both editions rely on.

A checked exercise is two code cells, marked the way `nbgrader <https://nbgrader.readthedocs.io>`_ marks them so
that a course's own nbgrader can take over:

* an *autograded answer* cell, ``metadata.nbgrader = {"grade": false, "grade_id": ID, "locked": false,
  "schema_version": 3, "solution": true, "task": false}``, holding exactly one solution region::

      answer_1 = None  # your prediction, in bytes
      ### BEGIN SOLUTION
      answer_1 = 2 * halo_rows * 4 * hidden
      ### END SOLUTION

  The line(s) before ``### BEGIN SOLUTION`` set the answer to a placeholder (``None`` or ``...``): the student
  edition keeps them and drops the region, so it still runs and its check says "not answered yet". Inside a
  ``def``, put the placeholder inside the block too (``result = None`` before the region, ``return result``
  after it) so that the student edition parses;

* an *autograder test* cell right after it, id ``ID + "-check"``, ``metadata.nbgrader = {"grade": true,
  "grade_id": ID + "-check", "locked": true, "points": 1, "schema_version": 3, "solution": false,
  "task": false}``: it passes iff it raises nothing (the helpers of :mod:`dgnn_lab.course.checks` raise one
  readable ``AssertionError``).

In a notebook source (``notebooks/src/*.py``) the two are written ``# %% id="nb03-ex1" exercise="answer"`` and
``# %% id="nb03-ex1-check" exercise="check"`` (optionally ``points=2``); ``tools/notebooks.py`` turns that into
the metadata above with :func:`exercise_metadata`. This module imports nothing heavy.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
#: nbgrader's hidden tests: kept in the instructor edition, removed from the student's.
BEGIN_HIDDEN_TESTS = "### BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "### END HIDDEN TESTS"
#: The nbgrader cell-metadata schema these notebooks follow (nbgrader 0.9 writes and reads version 3).
SCHEMA_VERSION = 3
CHECK_SUFFIX = "-check"
#: The line a student edition's answer cell opens with (unless the cell already says so).
STUDENT_MARK = "# ✎ Exercise: your code here"


def answer_metadata(grade_id: str) -> dict[str, Any]:
    """nbgrader's metadata of an autograded answer cell."""
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": SCHEMA_VERSION,
            "solution": True, "task": False}


def check_metadata(grade_id: str, points: float = 1) -> dict[str, Any]:
    """nbgrader's metadata of an autograder test cell worth ``points``."""
    return {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
            "schema_version": SCHEMA_VERSION, "solution": False, "task": False}


def nbgrader_meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    """A cell's ``metadata.nbgrader`` (empty when it has none)."""
    meta = (cell.get("metadata") or {}).get("nbgrader") or {}
    return dict(meta) if isinstance(meta, Mapping) else {}


def is_answer(cell: Mapping[str, Any]) -> bool:
    """An autograded answer cell (nbgrader: ``solution`` and not ``grade``)."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("solution")) and not meta.get("grade")


def is_check(cell: Mapping[str, Any]) -> bool:
    """An autograder test cell (nbgrader: a ``grade`` code cell that is not a solution)."""
    meta = nbgrader_meta(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _regions(lines: list[str], begin: str, end: str) -> list[tuple[int, int]]:
    """``(begin_line, end_line)`` index pairs; ``ValueError`` when the markers do not pair up."""
    pairs, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise ValueError(f"a second '{begin}' before '{end}' (line {i + 1})")
            start = i
        elif text == end:
            if start is None:
                raise ValueError(f"'{end}' without '{begin}' (line {i + 1})")
            pairs.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"'{begin}' without '{end}' (line {start + 1})")
    return pairs


def solution_regions(source: str) -> list[tuple[int, int]]:
    """The solution regions of ``source``: ``(begin_line, end_line)`` 0-based, markers included."""
    return _regions(source.splitlines(), BEGIN_SOLUTION, END_SOLUTION)


def _strip(source: str, begin: str, end: str) -> str:
    lines = source.splitlines()
    drop: set[int] = set()
    for a, b in _regions(lines, begin, end):
        drop.update(range(a, b + 1))
    return "\n".join(line for i, line in enumerate(lines) if i not in drop)


def strip_solutions(source: str) -> str:
    """``source`` without its solution regions (markers included); the lines around them stay."""
    return _strip(source, BEGIN_SOLUTION, END_SOLUTION)


def strip_hidden_tests(source: str) -> str:
    """``source`` without nbgrader's ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` regions."""
    return _strip(source, BEGIN_HIDDEN_TESTS, END_HIDDEN_TESTS)


def mentions_solution(source: str) -> bool:
    """Whether ``source`` holds a solution marker on a line of its own."""
    return any(line.strip() in (BEGIN_SOLUTION, END_SOLUTION) for line in source.splitlines())


def _parse(source: str) -> ast.Module:
    """Parse a cell as IPython would (magics and ``!shell`` lines first turned into Python)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        pass
    return ast.parse(source)


def check_answer_source(source: str) -> None:
    """``ValueError`` unless ``source`` is a well-formed answer cell: exactly one solution region, placeholder
    code before it, and a student edition (the region removed) that still parses."""
    regions = solution_regions(source)
    if len(regions) != 1:
        raise ValueError(f"an answer cell needs exactly one '{BEGIN_SOLUTION}' ... '{END_SOLUTION}' region, "
                         f"found {len(regions)}")
    before = source.splitlines()[: regions[0][0]]
    if not any(line.strip() and not line.strip().startswith("#") for line in before):
        raise ValueError(f"write the placeholder before '{BEGIN_SOLUTION}' (e.g. `answer_1 = None  # your "
                         "prediction`), so the student edition runs and its check says 'not answered yet'")
    try:
        _parse(strip_solutions(source))
    except SyntaxError as exc:
        raise ValueError(f"without its solution region the cell does not parse ({exc.msg}, line {exc.lineno}): "
                         "inside a block, put a placeholder line before the region too") from None


def exercise_metadata(cells: Iterable[tuple[str, str, str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The nbgrader metadata of each exercise cell, from the sources' header keys.

    ``cells``: ``(cell_id, cell_type, source, header_metadata)`` in notebook order, where the header may carry
    ``exercise`` (``"answer"`` or ``"check"``) and, on a check, ``points``. Returns ``{cell_id: nbgrader}`` for
    the exercise cells; ``ValueError`` naming the cell (``"cell 7 (nb03-ex1): ..."``) when the rules are broken:
    an answer has exactly one solution region and is followed by its check ``ID-check`` before the next answer;
    solution regions appear in answer cells only.
    """
    out: dict[str, dict[str, Any]] = {}
    open_answer: str | None = None  # the last answer cell, while its check is still to come
    for i, (cell_id, cell_type, source, header) in enumerate(cells):
        where = f"cell {i} ({cell_id})"
        kind = header.get("exercise")
        if "points" in header and kind != "check":
            raise ValueError(f"{where}: points= belongs on a check cell (exercise=\"check\")")
        if kind is None:
            if mentions_solution(source):
                raise ValueError(f"{where}: a solution region outside an answer cell (mark it exercise=\"answer\")")
            continue
        if cell_type != "code":
            raise ValueError(f"{where}: exercise cells are code cells, this one is {cell_type}")
        if kind == "answer":
            if open_answer is not None:
                raise ValueError(f"{where}: the answer cell {open_answer!r} has no check cell "
                                 f"{open_answer + CHECK_SUFFIX!r} before this next answer")
            try:
                check_answer_source(source)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            out[cell_id] = answer_metadata(cell_id)
            open_answer = cell_id
        elif kind == "check":
            if mentions_solution(source):
                raise ValueError(f"{where}: a check cell holds no solution region")
            if open_answer is None or cell_id != open_answer + CHECK_SUFFIX:
                expected = f"the answer cell {open_answer!r}'s check is {open_answer + CHECK_SUFFIX!r}" \
                    if open_answer else "no answer cell precedes it"
                raise ValueError(f"{where}: a check cell follows its answer cell and is named after it "
                                 f"(ID{CHECK_SUFFIX}); {expected}")
            points = header.get("points", 1)
            if isinstance(points, bool) or not isinstance(points, (int, float)) or points < 0:
                raise ValueError(f"{where}: points must be a number >= 0, got {points!r}")
            out[cell_id] = check_metadata(cell_id, points)
            open_answer = None
        else:
            raise ValueError(f"{where}: exercise must be \"answer\" or \"check\", got {kind!r}")
    if open_answer is not None:
        raise ValueError(f"the answer cell {open_answer!r} has no check cell {open_answer + CHECK_SUFFIX!r} "
                         "after it")
    return out
