"""What a check cell calls: right or wrong, with the reason.

Each helper prints one line ``✓ ...`` when the answer is right and raises one readable ``AssertionError``
when it is wrong (``✗ ...``) or still the placeholder (``not answered yet: ...``): an autograder test cell
passes iff it raises nothing, so the grader and nbgrader read the same verdict the student sees. A mistake of
the notebook's author (an expected value that is not a number, a right answer missing from the choices) is a
``TypeError``/``ValueError`` instead, so it is never mistaken for a student's wrong answer.

    check_close(answer_1, measured_halo_bytes, rel=0.05, what="halo bytes per epoch", unit="bytes",
                why="each boundary row travels once per layer, forward and backward")

Imports nothing heavy (the byte format is imported when a number is printed).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["check_answered", "check_choice", "check_close", "check_true", "unanswered"]

_NO_HINT = "replace the placeholder in the answer cell above and run it"


def unanswered(value: Any) -> bool:
    """Whether ``value`` is still a placeholder: ``None`` or ``...``."""
    return value is None or value is Ellipsis


def check_answered(value: Any, *, what: str) -> Any:
    """``value`` itself, or ``AssertionError("not answered yet: {what} ...")`` while it is a placeholder.

    For a check that computes something from the answer first (a function the student wrote, a plan they
    built): ``check_answered(my_partitioner(data, 4), what="your partitioner's assignment")``."""
    if unanswered(value):
        raise AssertionError(f"not answered yet: {what} ({_NO_HINT})")
    return value


def _number(x: Any) -> float | None:
    """``x`` as a float (ints, floats, numpy and 0-d torch numbers), or None when it is not a number."""
    if isinstance(x, (str, bytes, bool)) or x is None:
        return None
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _fmt(x: float, unit: str | None) -> str:
    """A number as a person reads it: bytes in kB/MB/GB, integers with thousands separators, else 4 digits."""
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if unit in ("bytes", "B"):
        from dgnn_lab.records import format_bytes

        return format_bytes(x)
    if x == int(x) and abs(x) < 1e15:
        text = f"{int(x):,}"
    else:
        text = f"{x:,.4g}" if abs(x) < 1e4 else f"{x:,.0f}"
    return f"{text} {unit}" if unit else text


def _tail(why: str) -> str:
    return f"; {why}" if why else ""


def check_close(answer: Any, expected: Any, *, rel: float | None = None, abs: float | None = None,
                what: str, why: str = "", unit: str | None = None) -> None:
    """Right when ``answer`` is within ``rel`` (a fraction of ``expected``) or ``abs`` of ``expected``.

    With neither tolerance given the answer must equal ``expected`` up to float rounding (``rel=1e-9``).
    ``unit="bytes"`` prints both numbers as bytes (``1.46 MB``); another unit is printed after the number.
    Wrong: ``✗ {what}: you said X, the run measured Y (off by Z%, more than the 5% allowed); {why}``."""
    if unanswered(answer):
        raise AssertionError(f"not answered yet: {what} ({_NO_HINT})")
    exp = _number(expected)
    if exp is None:
        raise TypeError(f"check_close({what!r}): the expected value must be a number, got "
                        f"{type(expected).__name__} (a mistake in the notebook, not in your answer)")
    got = _number(answer)
    if got is None:
        shown = repr(answer)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise AssertionError(f"✗ {what}: expected a number, got {type(answer).__name__} {shown}")
    exact = rel is None and abs is None
    if exact:
        rel = 1e-9
    allowed = max((rel or 0.0) * math.fabs(exp), abs or 0.0)
    diff = math.fabs(got - exp)
    said, measured = _fmt(got, unit), _fmt(exp, unit)
    if diff <= allowed:  # NaN never passes
        print(f"✓ {what}: you said {said}, the run measured {measured}")
        return
    if math.isnan(diff):
        off = "not a number"
    elif exp != 0:
        off = f"off by {100 * diff / math.fabs(exp):.3g}%"
    else:
        off = f"off by {_fmt(diff, unit)}"
    if exact or not allowed:
        limit = "it must be exact"
    elif rel is not None and rel * math.fabs(exp) >= (abs or 0.0):
        limit = f"more than the {100 * rel:.3g}% allowed"
    else:
        limit = f"more than the {_fmt(allowed, unit)} allowed"
    raise AssertionError(f"✗ {what}: you said {said}, the run measured {measured} ({off}, {limit}){_tail(why)}")


def check_true(answer_ok: Any, *, what: str, right: str, wrong: str) -> None:
    """Right when ``answer_ok`` holds: prints ``✓ {what}: {right}``, else ``✗ {what}: {wrong}``.

    ``answer_ok`` is a condition computed from the answer (``my_bytes <= random_bytes / 3``); a placeholder
    (``None``, ``...``) reads as not answered. Compute it after :func:`check_answered` when the placeholder would
    make the computation itself fail."""
    if unanswered(answer_ok):
        raise AssertionError(f"not answered yet: {what} ({_NO_HINT})")
    if bool(answer_ok):
        print(f"✓ {what}: {right}")
        return
    raise AssertionError(f"✗ {what}: {wrong}")


def _norm(x: Any) -> Any:
    return x.strip().casefold() if isinstance(x, str) else x


def check_choice(answer: Any, expected: Any, *, choices: Iterable[Any] | Mapping[Any, str], what: str,
                 why: str = "") -> None:
    """Multiple choice: ``answer`` must be ``expected``, one of ``choices`` (strings compare ignoring case and
    surrounding spaces). ``choices`` may map each option to what it says (``{"a": "the halo grows", ...}``).
    Wrong: ``✗ {what}: you chose 'b' (...), the answer is 'a' (...); {why}``."""
    labels = dict(choices) if isinstance(choices, Mapping) else {c: "" for c in choices}
    keys = {_norm(c): c for c in labels}
    if _norm(expected) not in keys:
        raise ValueError(f"check_choice({what!r}): the right answer {expected!r} is not among the choices "
                         f"{list(labels)} (a mistake in the notebook, not in your answer)")
    listing = ", ".join(repr(c) for c in labels)
    if unanswered(answer):
        raise AssertionError(f"not answered yet: {what} (choose one of {listing})")
    key = keys.get(_norm(answer)) if isinstance(answer, (str, int, float, bool)) or answer is None else None
    if key is None:
        raise AssertionError(f"✗ {what}: {answer!r} is not one of the choices ({listing})")

    def said(c: Any) -> str:
        return f"{c!r} ({labels[c]})" if labels[c] else repr(c)

    right = keys[_norm(expected)]
    if key == right:
        print(f"✓ {what}: {said(key)}" + (f" — {why}" if why else ""))
        return
    raise AssertionError(f"✗ {what}: you chose {said(key)}, the answer is {said(right)}{_tail(why)}")
