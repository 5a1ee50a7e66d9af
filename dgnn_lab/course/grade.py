"""Grade submitted notebooks: run each one in a fresh kernel and read its autograder test cells' verdicts.

Each notebook runs top to bottom with nbclient (``allow_errors``: every cell runs, whatever fails before it), in
a copy without outputs, in a kernel whose working directory is a fresh temporary folder (the ``runs/`` a
notebook writes land there, never beside the submission, and two submissions never share one) with
``DGNN_LAB_RUNS`` naming its ``runs/`` and ``DGNN_LAB_SMOKE=1`` (unless ``smoke=False``). A per-cell
``timeout`` bounds each cell; a cell that times out or a kernel that dies ends that notebook's run, and every
exercise it had not reached fails with that reason.

An exercise (nbgrader's *autograder test* cell, see :mod:`dgnn_lab.course.exercises`) passes iff its cell ran
and raised nothing and its answer cell raised nothing. Its reason is the error's message (``✗ ...``, ``not
answered yet: ...``, ``your answer cell raised NameError: ...``) or, when it passes, the ``✓`` line it printed.

The grader process trusts nothing in a submission as code: it parses the JSON, runs the cells *in the kernel*,
and reads the outputs. The kernel runs with the grading user's rights, so grade in a container or a throwaway
account, never where secrets live. A student can edit a check cell in their copy: with ``reference=`` (a folder
of the instructor's notebooks, same file names) every check cell is put back from the reference first, as
nbgrader's ``autograde`` does, and a deleted one is put back after its answer.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgnn_lab.course.exercises import CHECK_SUFFIX, is_answer, is_check, nbgrader_meta
from dgnn_lab.settings import SMOKE_ENV

RUNS_ENV = "DGNN_LAB_RUNS"
#: The longest reason kept (an error message can be pages long).
MAX_REASON = 400


class GradeInputError(ValueError):
    """A path that is not a notebook the grader can read (raised before any kernel starts)."""


@dataclass
class Exercise:
    """One graded exercise of a notebook: its check cell's grade_id and points, and where its cells are."""

    grade_id: str
    points: float
    check_index: int | None
    answer_index: int | None
    answer_id: str | None
    missing: str = ""  # why it cannot run at all (its cells were deleted from the submission)


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def read_notebook(path: str | Path) -> Any:
    """The notebook at ``path`` (nbformat v4), or :class:`GradeInputError` with one line saying why not."""
    import nbformat

    p = Path(path)
    if not p.exists():
        raise GradeInputError(f"{p}: no such file")
    if not p.is_file():
        raise GradeInputError(f"{p}: not a file")
    try:
        nb = nbformat.read(p, as_version=4)
        nbformat.validate(nb)
    except (ValueError, nbformat.ValidationError, UnicodeDecodeError, AttributeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GradeInputError(f"{p}: not a Jupyter notebook ({first})") from None
    return nb


def _find(nb: Any, grade_id: str) -> int | None:
    """The cell whose nbgrader grade_id is ``grade_id``, else (its metadata lost) whose cell id is."""
    for key in (lambda c: nbgrader_meta(c).get("grade_id"), lambda c: c.get("id")):
        for i, cell in enumerate(nb.cells):
            if key(cell) == grade_id:
                return i
    return None


def exercises(nb: Any) -> list[Exercise]:
    """The graded exercises of ``nb``, in order: one per autograder test cell. Its answer is the answer cell
    whose grade_id is the check's without ``-check``, else the closest answer cell above it."""
    out, seen = [], set()
    for i, cell in enumerate(nb.cells):
        if not is_check(cell):
            continue
        meta = nbgrader_meta(cell)
        gid = str(meta.get("grade_id") or cell.get("id") or f"cell-{i}")
        if gid in seen:
            raise GradeInputError(f"two autograder test cells share the grade_id {gid!r}")
        seen.add(gid)
        answer = _find(nb, gid[: -len(CHECK_SUFFIX)]) if gid.endswith(CHECK_SUFFIX) else None
        if answer is None or not is_answer(nb.cells[answer]) or answer > i:
            answer = next((j for j in range(i - 1, -1, -1) if is_answer(nb.cells[j])), None)
        answer_id = nbgrader_meta(nb.cells[answer]).get("grade_id") if answer is not None else None
        points = meta.get("points", 0)
        points = points if isinstance(points, (int, float)) and not isinstance(points, bool) else 0
        out.append(Exercise(gid, points, i, answer, answer_id))
    return out


def restore_checks(nb: Any, reference: Any) -> list[Exercise]:
    """Put every check cell of ``reference`` (the instructor's notebook) back into submission ``nb``, in place:
    same source and nbgrader metadata, re-inserted after its answer when deleted. Return the reference's
    exercises located in ``nb``."""
    restored = []
    for ex in exercises(reference):
        ref_cell = reference.cells[ex.check_index]
        i = _find(nb, ex.grade_id)
        if i is not None and nb.cells[i].cell_type == "code":
            nb.cells[i].source = ref_cell.source
            nb.cells[i].metadata["nbgrader"] = copy.deepcopy(ref_cell.metadata["nbgrader"])
        else:
            if i is not None:  # turned into markdown: drop it, put the real one back
                del nb.cells[i]
            answer = _find(nb, ex.answer_id) if ex.answer_id else None
            if answer is None:
                restored.append(Exercise(ex.grade_id, ex.points, None, None, ex.answer_id,
                                         missing=f"the answer cell {ex.answer_id!r} is missing from the submission"))
                continue
            nb.cells.insert(answer + 1, copy.deepcopy(ref_cell))
        restored.append(ex)
    # Indices moved when cells were inserted: locate everything again.
    located = []
    for ex in restored:
        if ex.missing:
            located.append(ex)
            continue
        check = _find(nb, ex.grade_id)
        answer = _find(nb, ex.answer_id) if ex.answer_id else None
        located.append(Exercise(ex.grade_id, ex.points, check, answer, ex.answer_id))
    return located


def _error(cell: Any) -> tuple[str, str] | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return str(out.get("ename", "Error")), str(out.get("evalue", ""))
    return None


def _clip(text: str) -> str:
    text = " ".join(line.strip() for line in text.strip().splitlines() if line.strip())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _message(ename: str, evalue: str) -> str:
    """An error as one line: an AssertionError by its message, anything else as ``Name: message``."""
    if ename == "AssertionError":
        return _clip(evalue) or "AssertionError (the check failed)"
    return _clip(f"{ename}: {evalue}" if evalue else ename)


def _printed(cell: Any) -> str:
    """The last ``✓`` line a cell printed, else its last line of stdout."""
    text = "".join(_source({"source": out.get("text", "")}) for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    ticks = [line for line in lines if line.startswith("✓")]
    return _clip((ticks or lines or [""])[-1])


def _where(nb: Any, index: int) -> str:
    cell_id = nb.cells[index].get("id")
    return f"cell {index} ({cell_id})" if cell_id else f"cell {index}"


def _kernel_env(runs: Path, smoke: bool) -> dict[str, str]:
    env = dict(os.environ)
    env[RUNS_ENV] = str(runs)
    if smoke:
        env[SMOKE_ENV] = "1"
    else:
        env.pop(SMOKE_ENV, None)
    return env


def _execute(nb: Any, workdir: Path, *, timeout: float, smoke: bool, kernel_name: str,
             runs: Path | None = None) -> tuple[int, str] | None:
    """Run every cell of ``nb`` in place; ``(index, why)`` of the cell where the run stopped early, else None."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                            interrupt_on_timeout=False, record_timing=False,
                            resources={"metadata": {"path": str(workdir)}})
    stopped, started, index = None, False, 0
    # The kernel process's own stderr (ipykernel's start-up warnings) goes to a log, not the grader's terminal;
    # what the cells print reaches their outputs over the kernel protocol as usual.
    log = (workdir / "kernel.log").open("w")
    try:
        with client.setup_kernel(env=_kernel_env(runs or workdir / "runs", smoke), cwd=str(workdir), stderr=log):
            started = True
            for index, cell in enumerate(nb.cells):
                try:
                    client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                except CellTimeoutError:
                    stopped = (index, f"{_where(nb, index)} ran longer than the {timeout:g} s per cell allowed")
                except DeadKernelError:
                    stopped = (index, f"the kernel died in {_where(nb, index)}")
                if stopped:
                    client.shutdown_kernel = "immediate"
                    break
    except Exception as exc:
        if not started:  # no such kernel, or it never answered: nothing ran
            return -1, f"the kernel did not start ({_message(type(exc).__name__, str(exc))})"
        if not isinstance(exc, DeadKernelError):
            raise
        if stopped is None:  # died between cells, or while shutting down
            stopped = (index, f"the kernel died in {_where(nb, index)}")
    finally:
        log.close()
    return stopped


def _verdict(nb: Any, ex: Exercise, stopped: tuple[int, str] | None) -> tuple[bool, str]:
    if ex.missing:
        return False, ex.missing
    stop_at, why = stopped if stopped else (len(nb.cells), "")
    if ex.answer_index is not None:
        if ex.answer_index == stop_at:
            return False, f"your answer cell stopped the run: {why}"
        if ex.answer_index < stop_at and (err := _error(nb.cells[ex.answer_index])):
            return False, _clip(f"your answer cell raised {err[0]}: {err[1]}" if err[1] else
                                f"your answer cell raised {err[0]}")
    if ex.check_index is None or ex.check_index > stop_at:
        return False, f"not run: {why}"
    if ex.check_index == stop_at:
        return False, f"the check stopped the run: {why}"
    check = nb.cells[ex.check_index]
    if err := _error(check):
        reason = _message(*err)
        earlier = next((j for j in range(ex.check_index) if j != ex.answer_index
                        and nb.cells[j].cell_type == "code" and _error(nb.cells[j])), None)
        if earlier is not None:
            ename, _ = _error(nb.cells[earlier])
            reason = _clip(f"{reason} (an earlier cell, {_where(nb, earlier)}, raised {ename})")
        return False, reason
    return True, _printed(check)


@dataclass
class _Submission:
    path: Path
    nb: Any
    exercises: list[Exercise]


def prepare(paths: Iterable[str | Path], reference: str | Path | None = None) -> list[_Submission]:
    """Read every submission (and its reference) and locate its exercises; :class:`GradeInputError` for the
    first bad one. Starts no kernel."""
    ref_dir = Path(reference) if reference is not None else None
    if ref_dir is not None and not ref_dir.is_dir():
        raise GradeInputError(f"{ref_dir}: the reference must be a folder of the instructor's notebooks")
    subs = []
    for path in paths:
        p = Path(path)
        nb = read_notebook(p)
        for cell in nb.cells:  # a fresh run: nothing the submission carries counts
            if cell.cell_type == "code":
                cell.outputs = []
                cell.execution_count = None
        try:
            if ref_dir is not None:
                exercises(nb)  # the submission's own grade_ids must be unique too
                ref = read_notebook(ref_dir / p.name)
                exs = restore_checks(nb, ref)
            else:
                exs = exercises(nb)
        except GradeInputError as exc:
            raise GradeInputError(f"{p}: {exc}") from None
        subs.append(_Submission(p, nb, exs))
    return subs


def grade(paths: Iterable[str | Path], *, timeout: float = 300, smoke: bool = True,
          reference: str | Path | None = None, keep: str | Path | None = None,
          kernel_name: str = "python3", shared_runs: str | Path | None = None) -> list[dict[str, Any]]:
    """Grade each notebook in ``paths``; one dict per exercise, in order: ``notebook`` (file name), ``path``,
    ``grade_id``, ``points``, ``score`` (``points`` when passed, else 0), ``passed``, ``reason``.

    ``timeout``: seconds per cell. ``smoke``: run in ``DGNN_LAB_SMOKE=1`` mode. ``reference``: a folder of the
    instructor's notebooks whose check cells replace the submissions'. ``keep``: a folder to write each executed
    notebook into (outputs in), for feedback. ``shared_runs``: one runs folder for every submission instead of
    a fresh one each, so a comparison the notebook trains (:func:`dgnn_lab.experiments.compare.compare`, cached
    by the hash of its configuration and of any strategy's code) is trained once for the whole class and
    re-opened by every later submission. Every path is read before the first kernel starts
    (:class:`GradeInputError` for one that is missing or not a notebook). A notebook without exercises is not
    run and contributes no rows."""
    import nbformat

    subs = prepare(paths, reference)
    rows = []
    for sub in subs:
        if not sub.exercises:
            continue
        with tempfile.TemporaryDirectory(prefix="dgnn-grade-", ignore_cleanup_errors=True) as tmp:
            stopped = _execute(sub.nb, Path(tmp), timeout=timeout, smoke=smoke, kernel_name=kernel_name,
                               runs=Path(shared_runs).resolve() if shared_runs is not None else None)
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            nbformat.write(sub.nb, Path(keep) / sub.path.name)
        for ex in sub.exercises:
            passed, reason = _verdict(sub.nb, ex, stopped)
            rows.append({"notebook": sub.path.name, "path": str(sub.path), "grade_id": ex.grade_id,
                         "points": ex.points, "score": ex.points if passed else 0, "passed": passed,
                         "reason": reason})
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals of :func:`grade`'s rows: exercises, passed, points, score."""
    return {"exercises": len(rows), "passed": sum(r["passed"] for r in rows),
            "points": sum(r["points"] for r in rows), "score": sum(r["score"] for r in rows)}
