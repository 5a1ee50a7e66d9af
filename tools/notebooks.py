"""Write every ``notebooks/*.ipynb`` from its source ``notebooks/src/<stem>.py`` (jupytext percent format).

The sources are what the lab's authors edit (plain Python, linted by ruff); the committed notebooks are generated
from them, without outputs or execution counts and with a fixed kernelspec. Each cell's id lives in its
``# %%`` header (``# %% id="c03"``, ``# %% [markdown] id="c04"``), so regenerating gives byte-identical files.

    .venv/bin/python tools/notebooks.py           # write every notebook whose .ipynb differs from its source
    .venv/bin/python tools/notebooks.py --check   # exit 1 naming each notebook that differs (or lacks a source)

Users of the lab never need this: they open the .ipynb files.

Checked exercises (nbgrader's convention, see ``dgnn_lab/course/exercises.py``) are two code cells::

    # %% id="nb03-ex1" exercise="answer"
    answer_1 = None  # your prediction, in bytes
    ### BEGIN SOLUTION
    answer_1 = 2 * halo_rows * 4 * hidden
    ### END SOLUTION

    # %% id="nb03-ex1-check" exercise="check" points=2
    check_close(answer_1, measured, rel=0.05, what="halo bytes per epoch", unit="bytes")

The line(s) before ``### BEGIN SOLUTION`` set the answer to a placeholder: the student edition keeps them and
drops the region. The generator turns ``exercise``/``points`` into ``metadata.nbgrader`` (an autograded answer,
an autograder test worth ``points``, default 1; grade_id = the cell id) and checks the rules: one solution region
per answer, placeholder code before it, the check right after its answer and named ``<answer id>-check``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

from dgnn_lab.course.exercises import exercise_metadata

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SOURCES = NOTEBOOKS / "src"
#: The notebook metadata every generated notebook carries (and nothing else: no jupytext section, no widgets).
METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {"name": "python"},
}
FORMAT = "py:percent"


def sources(src_dir: Path = SOURCES) -> list[Path]:
    """The notebook sources, sorted by name."""
    return sorted(src_dir.glob("*.py"))


def target(source: Path, out_dir: Path = NOTEBOOKS) -> Path:
    """The notebook a source generates: ``notebooks/src/01_x.py`` -> ``notebooks/01_x.ipynb``."""
    return out_dir / f"{source.stem}.ipynb"


def build(source: Path) -> str:
    """The text of the .ipynb generated from ``source`` (exactly what is written to disk)."""
    text = jupytext.reads(source.read_text(encoding="utf-8"), fmt=FORMAT)
    nb = nbformat.v4.new_notebook()
    nb.metadata = nbformat.from_dict(METADATA)
    seen: set[str] = set()
    headers = []
    for i, cell in enumerate(text.cells):
        meta = dict(cell.metadata)
        cell_id = meta.pop("id", None)
        if not cell_id:
            raise ValueError(f"{source.name}: cell {i} has no id in its header (write e.g. '# %% id=\"c{i:02d}\"')")
        if cell_id in seen:
            raise ValueError(f"{source.name}: cell {i} repeats the id {cell_id!r}")
        seen.add(cell_id)
        headers.append((cell_id, cell.cell_type, cell.source, meta))
    try:
        graded = exercise_metadata(headers)
    except ValueError as e:
        raise ValueError(f"{source.name}: {e}") from None
    for i, (cell, (cell_id, _, _, meta)) in enumerate(zip(text.cells, headers, strict=True)):
        meta.pop("exercise", None)
        meta.pop("points", None)
        if cell_id in graded:
            meta["nbgrader"] = graded[cell_id]
        if cell.cell_type == "markdown":
            new = nbformat.v4.new_markdown_cell(cell.source, metadata=meta)
        elif cell.cell_type == "code":
            new = nbformat.v4.new_code_cell(cell.source, metadata=meta)
        else:
            raise ValueError(f"{source.name}: cell {i} is a {cell.cell_type} cell (only markdown and code are used)")
        new["id"] = cell_id
        nb.cells.append(new)
    nbformat.validate(nb)
    out = nbformat.writes(nb)
    return out if out.endswith("\n") else out + "\n"  # as nbformat.write leaves it


def stale(src_dir: Path = SOURCES, out_dir: Path = NOTEBOOKS) -> list[str]:
    """Problems, one line each: a notebook that differs from its source, lacks one, or was never generated."""
    problems = []
    srcs = sources(src_dir)
    for source in srcs:
        path = target(source, out_dir)
        if not path.exists():
            problems.append(f"{path.name}: missing (run tools/notebooks.py)")
            continue
        try:
            text = build(source)
        except ValueError as e:
            problems.append(f"{path.name}: {e}")
            continue
        if path.read_text(encoding="utf-8") != text:
            problems.append(f"{path.name}: differs from {src_dir.name}/{source.name}")
    stems = {s.stem for s in srcs}
    for path in sorted(out_dir.glob("*.ipynb")):
        if path.stem not in stems:
            problems.append(f"{path.name}: has no source {src_dir.name}/{path.stem}.py")
    return problems


def write_all(src_dir: Path = SOURCES, out_dir: Path = NOTEBOOKS) -> list[Path]:
    """Write every notebook whose text differs from its source; return the paths written."""
    written = []
    for source in sources(src_dir):
        path, text = target(source, out_dir), build(source)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate notebooks/*.ipynb from notebooks/src/*.py (jupytext).")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming each notebook that differs from its source")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale()
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for path in write_all():
        print(f"wrote {path.relative_to(ROOT)}")
    orphans = [line for line in stale() if "has no source" in line]
    for line in orphans:
        print(line, file=sys.stderr)
    return 1 if orphans else 0


if __name__ == "__main__":
    sys.exit(main())
