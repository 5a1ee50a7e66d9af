"""Course tooling: checked exercises, student and instructor editions, and a grader (nbgrader's conventions).

* :mod:`~dgnn_lab.course.checks`: what a notebook's check cells call (``check_close``, ``check_true``,
  ``check_choice``, ``check_answered``): a ``✓`` line when right, one readable ``AssertionError`` when wrong;
* :mod:`~dgnn_lab.course.exercises`: the cell format (nbgrader metadata, ``### BEGIN SOLUTION`` regions);
* :mod:`~dgnn_lab.course.editions`: ``student_edition(nb)`` and ``build(src, out_dir, edition)``;
* :mod:`~dgnn_lab.course.grade`: ``grade.grade(paths)`` runs submissions with nbclient and reads the verdicts
  (``from dgnn_lab.course.grade import grade``: the module and its function share the name).

Importing this package costs the check helpers only (a check cell imports it); the rest loads on first use.
"""

from __future__ import annotations

from typing import Any

from dgnn_lab.course.checks import check_answered, check_choice, check_close, check_true, unanswered

__all__ = ["build", "check_answered", "check_choice", "check_close", "check_true", "student_edition", "unanswered"]

_LAZY = {"build": "editions", "student_edition": "editions"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"dgnn_lab.course.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'dgnn_lab.course' has no attribute {name!r}")
