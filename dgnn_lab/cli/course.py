"""``dgnn-lab course``: student/instructor editions of the notebooks, and a grader for submissions."""

from __future__ import annotations

import argparse

from dgnn_lab.cli.common import CLIError, add_json_flag, print_json, table


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("course", help="build student/instructor editions; grade submitted notebooks",
                       description="Course tooling, following nbgrader's cell metadata: `build` writes the "
                                   "student edition (solutions removed) or the instructor edition of the "
                                   "notebooks; `grade` runs submitted notebooks and reports each exercise.")
    actions = p.add_subparsers(dest="course_command", metavar="ACTION")
    b = actions.add_parser("build", help="write the student or instructor edition of the notebooks into DIR",
                           description="Write the student edition (solution regions removed, outputs cleared, "
                                       "check cells kept and locked) or the instructor edition (the notebooks "
                                       "as committed) of every notebook into DIR.")
    b.add_argument("dir", metavar="DIR", help="folder to write the notebooks into (created if missing)")
    b.add_argument("--edition", choices=("student", "instructor"), default="student",
                   help="which edition (default: %(default)s)")
    b.add_argument("--notebooks", default=None, metavar="DIR",
                   help="the notebooks to build from (default: the lab's notebooks/)")
    g = actions.add_parser("grade", help="run submitted notebooks and report each exercise",
                           description="Run each notebook top to bottom in a fresh kernel (in a temporary "
                                       "folder, smoke mode unless --no-smoke) and report every autograder test "
                                       "cell: passed or not, and why. It runs the submission's code with your "
                                       "rights: grade in a container or a throwaway account. Exit code 0 when "
                                       "every exercise passed, 1 when some failed, 2 for bad input.")
    g.add_argument("notebooks", nargs="+", metavar="NOTEBOOK", help="submitted .ipynb files")
    add_json_flag(g)
    g.add_argument("--timeout", type=float, default=300, metavar="S",
                   help="seconds each cell may run (default: %(default)s)")
    g.add_argument("--no-smoke", dest="smoke", action="store_false",
                   help="run the notebooks' full configurations (default: DGNN_LAB_SMOKE=1)")
    g.add_argument("--reference", default=None, metavar="DIR",
                   help="the instructor's notebooks (same file names): their check cells replace the "
                        "submissions' before running, so an edited or deleted check still counts")
    g.add_argument("--keep", default=None, metavar="DIR", help="write each executed notebook (outputs in) to DIR")
    g.add_argument("--shared-runs", default=None, metavar="DIR",
                   help="one runs folder for all submissions: comparisons a notebook trains are trained once and "
                        "re-opened by every later submission (default: a fresh folder per submission)")
    p.set_defaults(_course_parser=p)
    return p


def run(args: argparse.Namespace) -> int:
    if args.course_command == "build":
        return _build(args)
    if args.course_command == "grade":
        return _grade(args)
    args._course_parser.print_help()
    return 2


def _build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dgnn_lab.course.editions import build
    from dgnn_lab.settings import REPO_ROOT

    src = Path(args.notebooks) if args.notebooks else REPO_ROOT / "notebooks"
    if not src.is_dir():
        raise CLIError(f"no notebooks folder {src}")
    try:
        written = build(src, args.dir, edition=args.edition)
    except (FileNotFoundError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    print(f"wrote the {args.edition} edition of {len(written)} notebook{'s' * (len(written) != 1)} to {args.dir}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from dgnn_lab.course.grade import GradeInputError, grade, prepare, summary

    if args.timeout <= 0:
        raise CLIError("--timeout must be positive")
    try:  # every path read, every exercise located, before the first kernel starts
        subs = prepare(args.notebooks, args.reference)
    except GradeInputError as exc:
        raise CLIError(str(exc)) from None
    empty = [str(s.path) for s in subs if not s.exercises]
    if empty:
        raise CLIError(f"no exercises (nbgrader autograder test cells) in {', '.join(empty)}")
    rows = grade(args.notebooks, timeout=args.timeout, smoke=args.smoke, reference=args.reference, keep=args.keep,
                 shared_runs=args.shared_runs)
    total = summary(rows)
    if args.json:
        print_json(rows)
    else:
        print(table([[r["notebook"], r["grade_id"], r["points"], "yes" if r["passed"] else "NO", r["reason"]]
                     for r in rows], ["notebook", "exercise", "points", "passed", "reason"]))
        print(f"\ntotal: {_num(total['score'])} / {_num(total['points'])} points, "
              f"{total['passed']} of {total['exercises']} exercises passed")
    return 0 if total["passed"] == total["exercises"] else 1


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)
