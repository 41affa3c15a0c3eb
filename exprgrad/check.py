"""Partial derivatives checked against finite differences: what `exprgrad check` and the tests use.

In: a function's output node, parameter values, data columns, the variables
to check and a relative tolerance (``check_partials``); or any evaluation
callable and one variable to move (``numeric_partial``).
Out: ``PartialCheck`` records (analytic value, numeric value, the numeric
value's own uncertainty, a status), and ``Estimate`` records.
Must not: print, exit, or import the CLI.

The numeric side is Ridders' extrapolation of central differences (Numerical
Recipes, dfridr): differences at shrinking steps, extrapolated to step 0, with
an error estimate from the tableau. It starts from several steps, tied to the
size of the variable (and to |x| itself for a small x), and keeps the estimate
with the smallest error among those whose steps keep x on its side of 0 (1/a,
log(a), sqrt(a) change character there); an estimate from a step across 0 is
taken only when it agrees with that one and is more precise. The rounding
error of the function's own value, eps*|f|/h, is part of every error estimate:
a + 1e10 has derivative 1, known to about 1e-6, not 1e-16. A partial is ``ok`` when the difference is
within ``tol`` relative to the larger value, or within a few times what the
finite differences can resolve; the verdict is never ``ok`` when either side
is nan or inf, or when finite differences resolve fewer than two digits.

Like with like. With respect to a parameter a, both sides are d out/d a (per
row for a per-row output). With respect to a data column x, ``diff`` gives, per
row i, d J/d x_i (scalar J) or d J_i/d x_i (per-row J): the numeric side moves
only x_i and watches J (or J_i), for a sample of rows; when J is per row and no
reduction reads x, J_i depends on x_i alone, and every row moves at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from . import graph
from .backends.evaluate import compile_schedule
from .errors import ArgumentError
from .graph import Node
from .ops import OPS
from .passes.diff import diff
from .passes.simplify import simplify_many

EPS = float(np.finfo(float).eps)
# Ridders: step ratio, tableau size, when a higher order has gone bad.
_CON, _NTAB, _SAFE = 1.4, 10, 2.0
# First steps tried, relative to max(|x|, 1), and to |x| itself for a small
# nonzero x (1/a at a = 1e-8), largest first (see ``derivative``).
_FIRST_STEPS = (10.0, 0.1, 1e-3, 1e-5, 1e-7, 1e-9)
_RELATIVE_STEPS = (0.1, 1e-3)
# An estimate whose error is below this, relative, ends the search.
_CONVERGED = 1e-11
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

Run = Callable[[Mapping[str, float], Mapping[str, np.ndarray]], object]


@dataclass(frozen=True)
class Estimate:
    """A finite-difference derivative, elementwise.

    ``value``, an absolute ``error`` estimate, and ``floor``: sqrt(eps)*|f|/max(|x|, 1),
    the smallest derivative a difference quotient of f resolves at all (what
    "relative error" is measured against when both sides are smaller).
    """

    value: np.ndarray
    error: np.ndarray
    floor: np.ndarray


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


# ---------------------------------------------------------------- numeric derivatives


def central_difference(f: Callable[[object], object], x, h) -> np.ndarray:
    """(f(x + h) - f(x - h)) / (the step actually taken): one difference, no error estimate."""
    up, down = x + h, x - h
    with np.errstate(all="ignore"):
        return (np.asarray(f(up), dtype=float) - np.asarray(f(down), dtype=float)) / (up - down)


def ridders(f: Callable[[object], object], x, h) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridders' extrapolation from first step ``h``: (estimate, error estimate, step reached).

    Elementwise over whatever shape ``f`` returns (``x`` and ``h`` may be arrays
    of the same shape, one step a row).
    """
    # Only the previous column of the tableau is kept: with one value per
    # row, a full tableau would hold 55 copies of the data.
    h = np.asarray(h, dtype=float)
    previous = [central_difference(f, x, h)]
    best = previous[0]
    error = np.full(np.shape(best), np.inf)
    reached = np.broadcast_to(h, np.shape(best)).copy()
    with np.errstate(all="ignore"):
        for _ in range(1, _NTAB):
            h = h / _CON
            current = [central_difference(f, x, h)]
            factor = _CON * _CON
            for j in range(1, len(previous) + 1):
                # (A*factor - B)/(factor - 1), written so it cannot overflow near the largest float
                current.append(current[j - 1] + (current[j - 1] - previous[j - 1]) / (factor - 1))
                factor *= _CON * _CON
                candidate = np.maximum(
                    np.abs(current[j] - current[j - 1]), np.abs(current[j] - previous[j - 1])
                )
                better = candidate <= error
                best = np.where(better, current[j], best)
                error = np.where(better, candidate, error)
                reached = np.where(better, np.broadcast_to(h, np.shape(best)), reached)
            # Stop when the highest order is getting worse everywhere.
            stop = np.all(np.abs(current[-1] - previous[-1]) >= _SAFE * error)
            previous = current
            if stop:
                break
    return best, error, reached


def derivative(f: Callable[[object], object], x, *, step=None) -> Estimate:
    """d f/d x at ``x``, elementwise: Ridders' method with a rounding-error floor.

    Args:
        f: the function of the moved value (a float, or an array for one step per row).
        x: where to differentiate.
        step: a fixed step for one plain central difference (error estimate nan).
    """
    x = np.asarray(x, dtype=float)
    scale = np.maximum(np.abs(x), 1.0)
    with np.errstate(all="ignore"):
        level = np.abs(np.asarray(f(x), dtype=float))
        floor = np.sqrt(EPS) * level / scale
    if step is not None:
        value = central_difference(f, x, step)
        return Estimate(value, np.full(np.shape(value), np.nan), floor)
    small = (np.abs(x) < 1) & (x != 0)
    candidates = [first * scale for first in _FIRST_STEPS]
    candidates += [np.where(small, first * np.abs(x), first * scale) for first in _RELATIVE_STEPS]
    steps = -np.sort(-np.stack(np.broadcast_arrays(*candidates)), axis=0)
    shape = np.shape(level)
    # Per element, the best estimate from steps that keep x on its side of 0
    # (where 1/a, log(a), sqrt(a) and |a| change character), and from any step.
    # A step across 0 can be fooled: 1/a at a = 1e-8 looks smooth from 0.1 away.
    best = {True: np.full(shape, np.nan), False: np.full(shape, np.nan)}
    error = {True: np.full(shape, np.inf), False: np.full(shape, np.inf)}
    for first in steps:
        value, estimate, reached = ridders(f, x, first)
        with np.errstate(all="ignore"):
            total = estimate + EPS * level / reached  # what rounding of f alone allows
        total = np.where(np.isfinite(value) & np.isfinite(total), total, np.inf)
        within = (x == 0) | (first < np.abs(x))
        for side in (True, False):
            take = (total < error[side]) & (within if side else True)
            best[side] = np.where(take, value, best[side])
            error[side] = np.where(take, total, error[side])
        with np.errstate(all="ignore"):
            done = error[True] <= _CONVERGED * np.maximum(np.abs(best[True]), floor)
        if np.all(done):
            break
    # A more precise estimate from across 0 is taken when it agrees with the
    # local one within their errors (a + 1e10, exp(-a/1e4) near 0), not otherwise.
    with np.errstate(all="ignore"):
        agree = np.abs(best[False] - best[True]) <= error[True] + error[False]
    across = ~np.isfinite(error[True]) | agree
    value = np.where(across, best[False], best[True])
    total = np.where(across, error[False], error[True])
    return Estimate(value, total, np.broadcast_to(floor, np.shape(value)))


def numeric_partial(
    run: Run,
    name: str,
    params: Mapping[str, float],
    columns: Mapping[str, np.ndarray] | None = None,
    *,
    rows: Sequence[int] | None = None,
    together: bool = False,
    step: float | None = None,
) -> Estimate:
    """d out/d name by finite differences, as ``diff`` means it.

    Args:
        run: (params, columns) -> the output's value (a float, or one per row).
        name: a parameter (a key of ``params``) or a data column (of ``columns``).
        rows: for a column, the rows to move one at a time (default: every row).
        together: for a column of a per-row output that only reads it
            elementwise: move every row at once (one step a row).
        step: a fixed step for one plain central difference instead of Ridders'.

    Returns:
        The estimate: per row for a per-row output, over ``rows`` for a column.
    """
    params = dict(params)
    columns = {k: np.asarray(v, dtype=float) for k, v in (columns or {}).items()}
    if name not in columns:

        def moved(value):
            return run({**params, name: float(value)}, columns)

        return derivative(moved, float(params[name]), step=step)
    column = columns[name]
    if together:

        def moved_all(values):
            return run(params, {**columns, name: np.asarray(values, dtype=float)})

        return derivative(moved_all, column, step=step)
    values, errors, floors = [], [], []
    for i in range(len(column)) if rows is None else rows:

        def moved_row(value, i=i):
            changed = column.copy()
            changed[i] = value
            result = run(params, {**columns, name: changed})
            return result[i] if np.ndim(result) else result

        estimate = derivative(moved_row, float(column[i]), step=step)
        values.append(float(estimate.value))
        errors.append(float(estimate.error))
        floors.append(float(estimate.floor))
    return Estimate(np.array(values), np.array(errors), np.array(floors))


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
    depends: set[int] = set()
    for node in graph.toposort([output]):
        if node is column or any(id(child) in depends for child in node.inputs):
            if node.inputs and OPS[node.op].reduction:
                return False
            depends.add(id(node))
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
