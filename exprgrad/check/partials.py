"""Partial derivatives checked against finite differences (``differences``): the verdict.

In: a function's output node, parameter values, data columns, the variables
to check and a relative tolerance (``check_partials``).
Out: ``PartialCheck`` records (analytic value, numeric value, the numeric
value's own uncertainty, a status).
Must not: print, exit, or import the CLI.

A partial is ``ok`` when the difference is within ``tol`` relative to the
larger value, or within a few times what the finite differences can resolve;
the verdict is never ``ok`` when either side is nan or inf, or when finite
differences resolve fewer than two digits.

Like with like. With respect to a parameter a, both sides are d out/d a (per
row for a per-row output). With respect to a data column x, ``diff`` gives, per
row i, d J/d x_i (scalar J) or d J_i/d x_i (per-row J): the numeric side moves
only x_i and watches J (or J_i), for a sample of rows; when J is per row and no
reduction reads x, J_i depends on x_i alone, and every row moves at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import graph
from ..backends.evaluate import compile_schedule
from ..errors import ArgumentError
from ..graph import Node
from ..passes.diff import diff
from ..passes.simplify import simplify_many
from .differences import Estimate, numeric_partial

# A partial is within the numeric side's reach when the difference is below
# this many times its error estimate (estimate and rounding error together).
_REACH = 4.0
# Fewer than two correct digits from finite differences: no verdict.
_RESOLUTION = 1e-2
DEFAULT_TOL = 1e-6
DEFAULT_ROWS = 5
MAX_ROWS = 1000

STATUSES = {
    "ok": "agrees with finite differences",
    "disagrees": "differs from finite differences by more than the tolerance and their own error",
    "not finite": "nan or inf on one side: the function or its derivative is not finite here",
    "unresolved": "finite differences cannot resolve this derivative here (fewer than two correct digits)",
}


@dataclass(frozen=True)
class PartialCheck:
    """One partial derivative, both ways.

    Attributes:
        name: the variable.
        analytic, numeric: floats, or arrays over ``rows`` (a per-row result).
        rows: the data rows compared (0-based), or None for one value.
        error: the largest relative difference |a - n| / max(|a|, |n|) over the rows (inf when not finite).
        reach: the largest relative error the finite differences themselves may have, over the rows:
            a difference within it is agreement too (a zero derivative against 1e-12).
        worst: index into ``rows`` of the row with the largest error (None for one value).
        status: a key of ``STATUSES``.
    """

    name: str
    analytic: float | np.ndarray
    numeric: float | np.ndarray
    rows: list[int] | None
    error: float
    reach: float
    worst: int | None
    status: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ---------------------------------------------------------------- the check


def check_tol(tol) -> float:
    """``tol`` as a float in (0, 1), or ArgumentError."""
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.floating, np.integer)):
        raise ArgumentError(f"must be a number, got {type(tol).__name__}", argument="tol")
    tol = float(tol)
    if not (math.isfinite(tol) and 0 < tol < 1):
        raise ArgumentError(
            f"must be a number between 0 and 1 (a relative error), got {tol:g}", argument="tol"
        )
    return tol


def sample_rows(n: int, count: int = DEFAULT_ROWS) -> list[int]:
    """``count`` rows spread over ``n`` (first and last included), or every row when fewer."""
    if n <= count:
        return list(range(n))
    return sorted({round(k * (n - 1) / (count - 1)) for k in range(count)})


def reads_elementwise(output: Node, column: Node) -> bool:
    """Whether a per-row ``output`` reads ``column`` only row by row (no reduction sees it)."""
    if not output.per_row:
        return False
    depends: set[Node] = set()
    for node in graph.toposort([output]):
        if node is column or any(child in depends for child in node.inputs):
            if node.inputs and node.op.reduction:
                return False
            depends.add(node)
    return True


def check_partials(
    output: Node,
    params: Mapping[str, float],
    columns: Mapping[str, np.ndarray] | None = None,
    wrt: Sequence[Node] | None = None,
    *,
    tol: float = DEFAULT_TOL,
    rows: int = DEFAULT_ROWS,
) -> list[PartialCheck]:
    """Every partial derivative of ``output`` against finite differences.

    Args:
        output: the function's graph.
        params: parameter values by name (a variable in ``wrt`` without a value is taken as 0).
        columns: data columns by name (arrays of one length), or None.
        wrt: the variable nodes (default: every parameter).
        tol: the largest accepted relative error, in (0, 1).
        rows: with respect to a column, how many rows to move one at a time (1 to MAX_ROWS).

    Returns:
        One ``PartialCheck`` per variable, in ``wrt`` order.

    Raises:
        ArgumentError: ``tol`` or ``rows`` out of range.
        EvaluationError: a parameter or column has no value.
    """

    tol = check_tol(tol)
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or not 1 <= rows <= MAX_ROWS:
        # Each row moved alone costs some 20 to 100 passes over all the data.
        raise ArgumentError(f"must be a whole number from 1 to {MAX_ROWS}, got {rows!r}", argument="rows")
    columns = {k: np.asarray(v, dtype=float) for k, v in (columns or {}).items()}
    if wrt is None:
        wrt = [v for v in graph.variables([output]) if not v.per_row]
    params = dict(params)
    for node in wrt:
        if node.name not in columns:
            params.setdefault(node.name, 0.0)  # a name the function does not use: derivative 0
    derivatives = diff(output, list(wrt))
    # The simplified derivatives, the ones `diff` prints: the raw graph of
    # d/da 1/(1 + exp(-a)) is inf*0 at a = -1000, its printed form is 0.
    analytic = compile_schedule(simplify_many(list(derivatives.values()))).run(params, columns or None)
    value_only = compile_schedule([output])

    def run(p, c):
        return value_only.run(p, c or None)[0]

    results = []
    for node, exact in zip(wrt, analytic):
        name = node.name
        chosen = None
        if name in columns:
            n = len(columns[name])
            together = reads_elementwise(output, node)
            chosen = list(range(n)) if together else sample_rows(n, rows)
            estimate = numeric_partial(
                run, name, params, columns, rows=None if together else chosen, together=together
            )
            exact = np.broadcast_to(np.asarray(exact, dtype=float), (n,))[chosen]
        else:
            estimate = numeric_partial(run, name, params, columns)
            if np.ndim(estimate.value) > 0:
                exact = np.broadcast_to(np.asarray(exact, dtype=float), np.shape(estimate.value))
                chosen = list(range(len(estimate.value)))
        results.append(compare(name, exact, estimate, chosen, tol))
    return results


def compare(name: str, exact, estimate: Estimate, rows: list[int] | None, tol: float) -> PartialCheck:
    """The verdict on analytic values ``exact`` against a finite-difference ``estimate`` (same shape)."""
    a = np.atleast_1d(np.asarray(exact, dtype=float))
    n = np.atleast_1d(estimate.value)
    reach_abs = _REACH * np.atleast_1d(estimate.error)
    finite = np.isfinite(a) & np.isfinite(n) & np.isfinite(reach_abs)
    with np.errstate(all="ignore"):
        size = np.maximum(np.abs(a), np.abs(n))
        error = np.where(a == n, 0.0, np.abs(a - n) / size)
        reach = np.where(reach_abs == 0, 0.0, reach_abs / size)
        # Unresolved: the estimate's own error is more than a hundredth of the
        # derivative (for an analytic 0: of the smallest derivative f resolves at all).
        floor = np.nan_to_num(np.atleast_1d(estimate.floor))
        coarse = reach_abs > _RESOLUTION * np.where(a != 0, size, floor)
    error = np.where(finite, error, np.inf)
    reach = np.where(finite, reach, np.inf)
    within_tol = error <= tol
    agrees = within_tol | (np.abs(a - n) <= reach_abs)
    if not np.all(finite):
        status = "not finite"
    elif not np.all(agrees):
        status = "disagrees"
    elif np.any(coarse & ~within_tol):
        status = "unresolved"
    else:
        status = "ok"
    worst = int(np.argmax(error)) if rows is not None else None
    shown_a = a if rows is not None else float(a[0])
    shown_n = n if rows is not None else float(n[0])
    return PartialCheck(
        name, shown_a, shown_n, rows, float(np.max(error)), float(np.max(reach)), worst, status
    )
