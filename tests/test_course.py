"""Course tooling: the exercise format in the sources, student editions, check helpers, and the grader."""

from __future__ import annotations

import copy
import importlib.util
import json
import shutil
import subprocess
import sys

import nbformat
import pytest

from dgnn_lab.cli import main
from dgnn_lab.course import check_answered, check_choice, check_close, check_true, student_edition
from dgnn_lab.course.editions import build
from dgnn_lab.course.exercises import STUDENT_MARK, answer_metadata, check_metadata
from dgnn_lab.settings import REPO_ROOT

from .conftest import _shared_planetoid
from .stored import stored_text

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))

#: A tiny course notebook: three exercises (a number, a multiple choice, a function), no training.
TINY = '''# %% [markdown] id="m0"
# # A tiny course notebook

# %% id="setup"
import os

from dgnn_lab.course import check_answered, check_choice, check_close, check_true

measured = 2 ** 10
print("env", os.environ.get("DGNN_LAB_SMOKE"), os.environ.get("DGNN_LAB_RUNS"), os.getcwd())

# %% [markdown] id="m1"
# **Exercise 1.** What is 2 to the 10th?

# %% id="ex1" exercise="answer"
answer_1 = None  # your prediction
### BEGIN SOLUTION
answer_1 = 1024
### END SOLUTION

# %% id="ex1-check" exercise="check"
check_close(answer_1, measured, what="2 to the 10th", why="ten doublings of 1")

# %% id="ex2" exercise="answer"
answer_2 = None  # "a", "b" or "c"
### BEGIN SOLUTION
answer_2 = "b"
### END SOLUTION

# %% id="ex2-check" exercise="check" points=2
check_choice(answer_2, "b", choices={"a": "fewer", "b": "more", "c": "the same"}, what="halo rows with more parts",
             why="more parts cut more edges")

# %% id="ex3" exercise="answer"
# ✎ Exercise: write double(x)
def double(x):
    result = None  # twice x
    ### BEGIN SOLUTION
    result = 2 * x
    ### END SOLUTION
    return result


# %% id="ex3-check" exercise="check"
check_answered(double(3), what="double(3)")
check_true(double(3) == 6, what="double(3)", right="it is 6", wrong=f"it gave {double(3)!r}, not 6")
'''


def _generator():
    """tools/notebooks.py, imported in-process (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location("_nb_generator", REPO_ROOT / "tools" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_source(tmp_path, text, name="01_tiny.py"):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    (src / name).write_text(text)
    return src / name


def _tiny_notebook(tmp_path):
    """The tiny notebook as the generator writes it (the instructor edition)."""
    gen = _generator()
    source = _write_source(tmp_path, TINY)
    return nbformat.reads(gen.build(source), as_version=4)


def _cell(nb, cell_id):
    return next(c for c in nb.cells if c.id == cell_id)


# ---------------------------------------------------------------- the format in tools/notebooks.py


def test_generator_turns_exercise_keys_into_nbgrader_metadata(tmp_path):
    gen = _generator()
    source = _write_source(tmp_path, TINY)
    out = tmp_path / "out"
    out.mkdir()
    assert gen.write_all(source.parent, out) == [out / "01_tiny.ipynb"]
    assert gen.write_all(source.parent, out) == [] and gen.stale(source.parent, out) == []  # byte-identical
    nb = json.loads((out / "01_tiny.ipynb").read_text())
    meta = {c["id"]: c["metadata"] for c in nb["cells"]}
    assert meta["ex1"] == {"nbgrader": {"grade": False, "grade_id": "ex1", "locked": False, "schema_version": 3,
                                        "solution": True, "task": False}}
    assert meta["ex1-check"] == {"nbgrader": {"grade": True, "grade_id": "ex1-check", "locked": True, "points": 1,
                                              "schema_version": 3, "solution": False, "task": False}}
    assert meta["ex2-check"]["nbgrader"]["points"] == 2
    assert meta["ex3"] == {"nbgrader": answer_metadata("ex3")}
    assert meta["setup"] == meta["m0"] == {}  # cells without `exercise` are unchanged
    assert "exercise" not in json.dumps(meta)
    assert "### BEGIN SOLUTION" in "".join(_cell(nbformat.from_dict(nb), "ex1").source)
    assert check_metadata("x-check", 2)["points"] == 2


BAD = {
    "no solution region": ('# %% id="a" exercise="answer"\nx = None\n\n# %% id="a-check" exercise="check"\nx\n',
                           "cell 0 (a): an answer cell needs exactly one"),
    "two regions": ('# %% id="a" exercise="answer"\nx = None\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n'
                    '### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n\n# %% id="a-check" exercise="check"\nx\n',
                    "found 2"),
    "unclosed region": ('# %% id="a" exercise="answer"\nx = None\n### BEGIN SOLUTION\nx = 1\n',
                        "'### BEGIN SOLUTION' without '### END SOLUTION'"),
    "no placeholder": ('# %% id="a" exercise="answer"\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n'
                       '# %% id="a-check" exercise="check"\nx\n', "write the placeholder before"),
    "student edition does not parse": ('# %% id="a" exercise="answer"\ndef f():\n    ### BEGIN SOLUTION\n'
                                       '    return 1\n    ### END SOLUTION\n\n# %% id="a-check" exercise="check"\nf\n',
                                       "does not parse"),
    "check without answer": ('# %% id="c0"\nx = 1\n\n# %% id="a-check" exercise="check"\nx\n',
                             "cell 1 (a-check): a check cell follows its answer cell"),
    "check misnamed": ('# %% id="a" exercise="answer"\nx = None\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n\n'
                       '# %% id="b-check" exercise="check"\nx\n', "the answer cell 'a''s check is 'a-check'"),
    "answer without check": ('# %% id="a" exercise="answer"\nx = None\n### BEGIN SOLUTION\nx = 1\n'
                             '### END SOLUTION\n', "the answer cell 'a' has no check cell 'a-check'"),
    "markdown exercise": ('# %% [markdown] id="a" exercise="answer"\n# text\n', "exercise cells are code cells"),
    "points on an answer": ('# %% id="a" exercise="answer" points=2\nx = None\n### BEGIN SOLUTION\nx = 1\n'
                            '### END SOLUTION\n', "points= belongs on a check cell"),
    "unknown kind": ('# %% id="a" exercise="question"\nx = 1\n', "exercise must be \"answer\" or \"check\""),
    "leaking region": ('# %% id="c0"\nx = None\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n',
                       "cell 0 (c0): a solution region outside an answer cell"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_generator_rejects_malformed_exercises_naming_notebook_and_cell(tmp_path, case):
    text, message = BAD[case]
    source = _write_source(tmp_path, text, "07_bad.py")
    with pytest.raises(ValueError) as err:
        _generator().build(source)
    assert str(err.value).startswith("07_bad.py: ") and message in str(err.value), str(err.value)


# ---------------------------------------------------------------- student edition


def test_student_edition_removes_solutions_and_keeps_placeholders_and_metadata(tmp_path):
    nb = _tiny_notebook(tmp_path)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
    nb.cells[1].execution_count = 3
    before = copy.deepcopy(nb)
    st = student_edition(nb)
    assert nb == before, "the instructor's notebook is left unchanged"
    assert [c.id for c in st.cells] == [c.id for c in nb.cells]
    text = json.dumps(st)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "answer_1 = 1024" not in text and 'answer_2 = "b"' not in text and "result = 2 * x" not in text
    assert _cell(st, "ex1").source == f"{STUDENT_MARK}\nanswer_1 = None  # your prediction"
    # an answer cell that already says it is an exercise gets no second mark
    assert _cell(st, "ex3").source == ("# ✎ Exercise: write double(x)\ndef double(x):\n    result = None  # twice x\n"
                                       "    return result")
    assert _cell(st, "ex1-check").source == _cell(nb, "ex1-check").source  # checks kept as they are
    for cell_id in ("ex1", "ex2", "ex3"):
        assert _cell(st, cell_id).metadata["nbgrader"] == answer_metadata(cell_id)
        assert _cell(st, cell_id).metadata["deletable"] is False
        check = _cell(st, cell_id + "-check").metadata
        assert check["nbgrader"] == _cell(nb, cell_id + "-check").metadata["nbgrader"]
        assert check["editable"] is False and check["deletable"] is False
    assert all(c.outputs == [] and c.execution_count is None for c in st.cells if c.cell_type == "code")
    assert st.cells[0] == nb.cells[0] and _cell(st, "setup").source == _cell(nb, "setup").source
    nbformat.validate(st)


def test_student_edition_drops_hidden_tests_and_refuses_a_leaking_solution(tmp_path):
    nb = _tiny_notebook(tmp_path)
    check = _cell(nb, "ex1-check")
    check.source += "\n### BEGIN HIDDEN TESTS\nassert answer_1 == 1024\n### END HIDDEN TESTS"
    assert "HIDDEN" not in _cell(student_edition(nb), "ex1-check").source
    _cell(nb, "setup").source += "\n### BEGIN SOLUTION\nsecret = 1\n### END SOLUTION"
    with pytest.raises(ValueError, match=r"cell 1 \(setup\) holds a solution region"):
        student_edition(nb)


def test_build_writes_student_and_instructor_editions(tmp_path):
    nb = _tiny_notebook(tmp_path)
    src = tmp_path / "notebooks"
    src.mkdir()
    nbformat.write(nb, src / "01_tiny.ipynb")
    (src / "00_plain.ipynb").write_text((REPO_ROOT / "notebooks" / "00_welcome.ipynb").read_text())
    key = build(src, tmp_path / "key", edition="instructor")
    assert [p.name for p in key] == ["00_plain.ipynb", "01_tiny.ipynb"]
    assert all(p.read_bytes() == (src / p.name).read_bytes() for p in key)  # copied byte for byte
    student = build([src / "01_tiny.ipynb"], tmp_path / "student")
    st = nbformat.read(student[0], as_version=4)
    assert "BEGIN SOLUTION" not in student[0].read_text() and _cell(st, "ex2").source.endswith("answer_2 = None"
                                                                                                '  # "a", "b" or "c"')
    with pytest.raises(ValueError, match="where the notebooks come from"):
        build(src, src)
    with pytest.raises(ValueError, match="edition must be"):
        build(src, tmp_path / "x", edition="teacher")
    with pytest.raises(FileNotFoundError):
        build(tmp_path / "nowhere.ipynb", tmp_path / "x")


# ---------------------------------------------------------------- check helpers


def _raises(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as err:
        fn(*args, **kwargs)
    return str(err.value)


def test_check_close_right_wrong_and_unanswered(capsys):
    check_close(1_450_000, 1_460_000, rel=0.05, what="halo bytes", unit="bytes")
    assert capsys.readouterr().out == "✓ halo bytes: you said 1.45 MB, the run measured 1.46 MB\n"
    msg = _raises(check_close, 1_200_000, 1_460_000, rel=0.05, what="halo bytes", unit="bytes",
                  why="each boundary row travels once per layer")
    assert msg == ("✗ halo bytes: you said 1.2 MB, the run measured 1.46 MB (off by 17.8%, more than the 5% "
                   "allowed); each boundary row travels once per layer")
    assert _raises(check_close, 1000, 1024, what="2**10") == ("✗ 2**10: you said 1,000, the run measured 1,024 "
                                                             "(off by 2.34%, it must be exact)")
    assert _raises(check_close, 0.81, 0.8, abs=0.005, what="accuracy").endswith("more than the 0.005 allowed)")
    for placeholder in (None, ...):
        assert _raises(check_close, placeholder, 3, what="the halo").startswith("not answered yet: the halo")
    assert _raises(check_close, "1024", 1024, what="x") == "✗ x: expected a number, got str '1024'"
    assert "expected a number, got list" in _raises(check_close, [1024], 1024, what="x")
    assert "not a number" in _raises(check_close, float("nan"), 1.0, rel=0.1, what="x")
    check_close(1024.0000001, 1024, what="exact up to rounding")
    import numpy as np

    check_close(np.int64(7), 7.0, what="a numpy number")
    with pytest.raises(TypeError, match="a mistake in the notebook"):
        check_close(1, None, what="x")


def test_check_true_and_check_choice(capsys):
    check_true(2 < 3, what="fewer bytes", right="yours moves less", wrong="yours moves more")
    assert capsys.readouterr().out == "✓ fewer bytes: yours moves less\n"
    assert _raises(check_true, False, what="fewer bytes", right="r", wrong="yours moves more") == \
        "✗ fewer bytes: yours moves more"
    assert _raises(check_true, None, what="fewer bytes", right="r", wrong="w").startswith("not answered yet")
    assert _raises(check_answered, None, what="your plan").startswith("not answered yet: your plan")
    assert check_answered(0, what="x") == 0
    choices = {"a": "fewer", "b": "more"}
    check_choice(" B ", "b", choices=choices, what="halo rows", why="more cuts")
    assert capsys.readouterr().out == "✓ halo rows: 'b' (more) — more cuts\n"
    assert _raises(check_choice, "a", "b", choices=choices, what="halo rows", why="more cuts") == \
        "✗ halo rows: you chose 'a' (fewer), the answer is 'b' (more); more cuts"
    assert _raises(check_choice, None, "b", choices="ab", what="q") == "not answered yet: q (choose one of 'a', 'b')"
    assert _raises(check_choice, "z", "b", choices="ab", what="q") == "✗ q: 'z' is not one of the choices ('a', 'b')"
    with pytest.raises(ValueError, match="not among the choices"):
        check_choice("a", "c", choices="ab", what="q")


# ---------------------------------------------------------------- the grader, end to end


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """The tiny notebook's instructor edition (``key/``), its student edition, and altered submissions."""
    tmp = tmp_path_factory.mktemp("course")
    nb = _tiny_notebook(tmp)
    paths = {}

    def save(kind, notebook):
        folder = tmp / kind
        folder.mkdir()
        nbformat.write(notebook, folder / "tiny.ipynb")
        paths[kind] = folder / "tiny.ipynb"

    save("key", nb)
    save("student", student_edition(nb))
    wrong = copy.deepcopy(nb)
    _cell(wrong, "ex1").source = "answer_1 = 1000"
    save("wrong", wrong)
    raises = copy.deepcopy(nb)
    _cell(raises, "ex2").source = "answer_2 = undefined_name"
    save("raises", raises)
    died = copy.deepcopy(nb)
    died.cells.insert(died.cells.index(_cell(died, "ex2")), nbformat.v4.new_code_cell("import os\nos._exit(1)"))
    save("died", died)
    slow = copy.deepcopy(nb)
    _cell(slow, "ex3").source = "import time\ntime.sleep(60)\n" + _cell(slow, "ex3").source
    save("slow", slow)
    tampered = student_edition(nb)
    _cell(tampered, "ex1-check").source = "pass  # sure, it's right"
    tampered.cells.remove(_cell(tampered, "ex2-check"))
    save("tampered", tampered)
    return paths


@pytest.fixture(scope="module")
def graded(course, tmp_path_factory):
    keep = tmp_path_factory.mktemp("executed")
    from dgnn_lab.course.grade import grade

    kinds = ["key", "student", "wrong", "raises", "died", "slow"]
    rows = grade([course[k] for k in kinds], timeout=15, keep=keep)
    by_kind = {k: [r for r in rows if r["path"] == str(course[k])] for k in kinds}
    return by_kind, keep


def _verdicts(rows):
    return [(r["grade_id"], r["passed"]) for r in rows]


def test_grader_passes_the_instructor_edition(graded, course):
    rows = graded[0]["key"]
    assert _verdicts(rows) == [("ex1-check", True), ("ex2-check", True), ("ex3-check", True)]
    assert [r["points"] for r in rows] == [1, 2, 1] and sum(r["score"] for r in rows) == 4
    assert rows[0]["reason"] == "✓ 2 to the 10th: you said 1,024, the run measured 1,024"
    assert rows[0]["notebook"] == "tiny.ipynb"
    # The kernel ran in smoke mode, in a temporary folder (not the submission's), with DGNN_LAB_RUNS set.
    executed = nbformat.read(graded[1] / "tiny.ipynb", as_version=4)
    _, smoke, runs, cwd = "".join(o["text"] for o in _cell(executed, "setup").outputs).split()
    assert smoke == "1" and runs.startswith(cwd) and runs.endswith("runs") and "dgnn-grade-" in cwd
    assert cwd != str(course["key"].parent)


def test_grader_fails_every_exercise_of_the_student_edition(graded):
    rows = graded[0]["student"]
    assert _verdicts(rows) == [("ex1-check", False), ("ex2-check", False), ("ex3-check", False)]
    assert all(r["reason"].startswith("not answered yet") and r["score"] == 0 for r in rows), rows


def test_grader_gives_the_reason_of_a_wrong_or_raising_answer(graded):
    wrong = graded[0]["wrong"]
    assert _verdicts(wrong) == [("ex1-check", False), ("ex2-check", True), ("ex3-check", True)]
    assert wrong[0]["reason"] == ("✗ 2 to the 10th: you said 1,000, the run measured 1,024 (off by 2.34%, it must "
                                  "be exact); ten doublings of 1")
    raises = graded[0]["raises"]
    assert _verdicts(raises) == [("ex1-check", True), ("ex2-check", False), ("ex3-check", True)]
    assert raises[1]["reason"] == "your answer cell raised NameError: name 'undefined_name' is not defined"


def test_grader_fails_what_a_dead_kernel_or_a_timeout_left_unrun(graded):
    died = graded[0]["died"]
    assert _verdicts(died) == [("ex1-check", True), ("ex2-check", False), ("ex3-check", False)]
    assert all(r["reason"].startswith("not run: the kernel died in cell ") for r in died[1:]), died
    slow = graded[0]["slow"]
    assert _verdicts(slow) == [("ex1-check", True), ("ex2-check", True), ("ex3-check", False)]
    assert slow[2]["reason"].startswith("your answer cell stopped the run: cell ")
    assert "ran longer than the 15 s per cell allowed" in slow[2]["reason"]


def test_grader_fails_everything_when_the_kernel_does_not_start(course):
    from dgnn_lab.course.grade import grade

    rows = grade([course["key"]], kernel_name="no-such-kernel")
    assert len(rows) == 3 and not any(r["passed"] for r in rows)
    assert all(r["reason"].startswith("not run: the kernel did not start (") for r in rows), rows


def test_grader_restores_check_cells_from_the_reference(course):
    from dgnn_lab.course.grade import grade, prepare

    # Unchecked, the edited check passes and the deleted one is not graded at all...
    assert [e.grade_id for e in prepare([course["tampered"]])[0].exercises] == ["ex1-check", "ex3-check"]
    # ...with the instructor's notebooks as reference both are back, and fail as the student edition does.
    rows = grade([course["tampered"]], timeout=15, reference=course["key"].parent)
    assert _verdicts(rows) == [("ex1-check", False), ("ex2-check", False), ("ex3-check", False)]
    assert all(r["reason"].startswith("not answered yet") for r in rows), rows


# ---------------------------------------------------------------- the CLI


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_grade_json_and_table(capsys, course):
    code, out, _ = _cli(capsys, "course", "grade", str(course["key"]), "--json", "--timeout", "30")
    rows = json.loads(out)
    assert code == 0 and [r["grade_id"] for r in rows] == ["ex1-check", "ex2-check", "ex3-check"]
    assert set(rows[0]) == {"notebook", "path", "grade_id", "points", "score", "passed", "reason"}
    code, out, _ = _cli(capsys, "course", "grade", str(course["student"]), "--timeout", "30")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].split() == ["notebook", "exercise", "points", "passed", "reason"]
    assert "ex2-check" in out and "NO" in out and "not answered yet: halo rows with more parts" in out
    assert lines[-1] == "total: 0 / 4 points, 0 of 3 exercises passed"


def test_cli_grade_bad_input_exits_2_before_any_kernel(capsys, course, tmp_path, monkeypatch):
    import dgnn_lab.course.grade as grading

    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel started")

    monkeypatch.setattr(grading, "_execute", no_kernel)
    (tmp_path / "notes.txt").write_text("not a notebook")
    (tmp_path / "obj.ipynb").write_text('{"a": 1}')
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), plain)
    for bad, message in [(tmp_path / "missing.ipynb", "no such file"), (tmp_path / "notes.txt", "not a Jupyter"),
                         (tmp_path / "obj.ipynb", "not a Jupyter"), (plain, "no exercises")]:
        code, out, err = _cli(capsys, "course", "grade", str(course["key"]), str(bad))
        assert code == 2 and out == "", (bad, out, err)
        assert len(err.strip().splitlines()) == 1 and message in err, err
    code, _, err = _cli(capsys, "course", "grade", str(course["key"]), "--reference", str(tmp_path / "nope"))
    assert code == 2 and "reference" in err


def test_cli_build(capsys, tmp_path, course):
    code, out, _ = _cli(capsys, "course", "build", str(tmp_path / "st"), "--notebooks", str(course["key"].parent))
    assert code == 0 and out.startswith("wrote the student edition of 1 notebook to")
    assert "BEGIN SOLUTION" not in (tmp_path / "st" / "tiny.ipynb").read_text()
    code, _, _ = _cli(capsys, "course", "build", str(tmp_path / "key"), "--edition", "instructor",
                      "--notebooks", str(course["key"].parent))
    assert code == 0 and (tmp_path / "key" / "tiny.ipynb").read_bytes() == course["key"].read_bytes()
    code, _, err = _cli(capsys, "course", "build", str(tmp_path / "x"), "--notebooks", str(tmp_path / "nowhere"))
    assert code == 2 and "no notebooks folder" in err
    code, _, err = _cli(capsys, "course", "build", str(course["key"].parent), "--notebooks",
                        str(course["key"].parent))
    assert code == 2 and "where the notebooks come from" in err
    assert _cli(capsys, "course")[0] == 2


def test_course_help_imports_no_heavy_stack():
    # (-X importtime does not log importlib.import_module, which loads the subcommands: ask sys.modules)
    code = ("import sys\nfrom dgnn_lab.cli import main\ntry:\n    main(['course', 'grade', '--help'])\n"
            "except SystemExit:\n    pass\nprint(' '.join(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    mods = set(proc.stdout.split())
    assert "dgnn_lab.cli.course" in mods
    assert not {m for m in mods if m.split(".")[0] in ("torch", "nbclient", "torch_geometric", "jupytext")}


# ---------------------------------------------------------------- the lab's own notebooks


#: The figures notebook 03's first dashboard draws (see dgnn_lab.viz.training), by title prefix.
DASHBOARD_TITLES = ("Loss and accuracy", "Where each worker", "Bytes moved", "Timeline of phases",
                    "Work, CPU and wall time")


def _outputs(nb, mime: str) -> list:
    return [o["data"][mime] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if mime in o.get("data", {})]


def _title(fig: dict) -> str:
    t = fig.get("layout", {}).get("title", "")
    return t.get("text", "") if isinstance(t, dict) else str(t)


@pytest.mark.notebook
@pytest.mark.timeout(900)  # two smoke-mode runs of the notebook
@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name[:2] != "00"], ids=lambda p: p.stem)
def test_every_lab_notebook_runs_and_grades(path, tmp_path, monkeypatch):
    """Each lab notebook, run twice in smoke mode as a course runs it (one shared runs folder). The instructor
    edition (the committed notebook): no cell raises, every code cell ran once in order, and the grader passes
    each of its >= 3 exercises. The student edition with widgets off (``DGNN_LAB_WIDGETS=0``, the static fallback
    of Colab and nbconvert): every exercise fails as unanswered, the rest still runs, and live views emit plain
    figures."""
    from dgnn_lab.course.grade import exercises, grade

    committed = nbformat.reads(stored_text(path), as_version=4)
    count = len(exercises(committed))
    assert count >= 3, f"{path.name} has {count} exercises (exercise=\"answer\"/\"check\" cells), fewer than 3"
    src = _shared_planetoid()
    if src is not None:  # Cora/CiteSeer from a private copy of the shared files (nothing downloads in tests)
        shutil.copytree(src / "Planetoid", tmp_path / "data" / "Planetoid")
        monkeypatch.setenv("DGNN_LAB_DATA", str(tmp_path / "data"))
    (tmp_path / "src").mkdir()
    nbformat.write(committed, tmp_path / "src" / path.name)
    key = build([tmp_path / "src" / path.name], tmp_path / "instructor", edition="instructor")
    student = build([tmp_path / "src" / path.name], tmp_path / "student", edition="student")

    # one runs folder for both editions, as a course grading many submissions would share it: the student
    # edition re-opens the comparisons the instructor edition trained (live runs and train() calls run again)
    key_rows = grade(key, timeout=300, keep=tmp_path / "key-run", shared_runs=tmp_path / "runs")
    assert len(key_rows) == count
    assert all(r["passed"] for r in key_rows), [(r["grade_id"], r["reason"]) for r in key_rows if not r["passed"]]
    ran = nbformat.read(tmp_path / "key-run" / path.name, as_version=4)
    errors = [f"cell {i}: {o.ename}: {o.evalue}" for i, c in enumerate(ran.cells) if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    code = [c for c in ran.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))

    monkeypatch.setenv("DGNN_LAB_WIDGETS", "0")
    student_rows = grade(student, timeout=300, keep=tmp_path / "student-run", shared_runs=tmp_path / "runs")
    assert len(student_rows) == count
    assert not any(r["passed"] for r in student_rows), [r["grade_id"] for r in student_rows if r["passed"]]
    assert all(r["reason"].startswith("not answered yet") for r in student_rows), [r["reason"] for r in student_rows]
    ran = nbformat.read(tmp_path / "student-run" / path.name, as_version=4)
    assert not _outputs(ran, "application/vnd.jupyter.widget-view+json"), "a widget was shown with widgets off"
    figures = _outputs(ran, "application/vnd.plotly.v1+json")
    assert figures, "no figures at all"
    if path.name.startswith("03"):  # the live dashboards, drawn as plain figures: the same five, with data
        titles = [_title(f) for f in figures]
        for prefix in DASHBOARD_TITLES:
            drawn = [f for f, t in zip(figures, titles, strict=True) if t.startswith(prefix)]
            assert len(drawn) >= 2, f"dashboard figure {prefix!r} shown {len(drawn)} times (2 dashboards)"
            assert all(any(tr.get("x") is not None or tr.get("z") is not None for tr in f["data"]) for f in drawn)
