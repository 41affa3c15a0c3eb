"""Finite-difference derivatives: Ridders' extrapolation with an error estimate.

In: a function of one moved value (a float, or an array for one step per
row) and where to differentiate (``derivative``); or an evaluation callable,
parameter values, data columns and the variable to move, a scalar or one
member of a family (``numeric_partial``).
Out: ``Estimate`` records: the derivative, its error estimate, and the
smallest derivative the differences resolve at all.
Must not: print, exit, know graphs, or decide whether a derivative is right
(``partials`` does).

The numeric side is Ridders' extrapolation of central differences (Numerical
Recipes, dfridr): differences at shrinking steps, extrapolated to step 0, with
an error estimate from the tableau. It starts from several steps, tied to the
size of the variable (and to |x| itself for a small x), and keeps the estimate
with the smallest error among those whose steps keep x on its side of 0 (1/a,
log(a), sqrt(a) change character there); an estimate from a step across 0 is
taken only when it agrees with that one and is more precise. The rounding
error of the function's own value, eps*|f|/h, is part of every error estimate:
a + 1e10 has derivative 1, known to about 1e-6, not 1e-16.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

EPS = float(np.finfo(float).eps)
# Ridders: step ratio, tableau size, when a higher order has gone bad.
_CON, _NTAB, _SAFE = 1.4, 10, 2.0
# First steps tried, relative to max(|x|, 1), and to |x| itself for a small
# nonzero x (1/a at a = 1e-8), largest first (see ``derivative``).
_FIRST_STEPS = (10.0, 0.1, 1e-3, 1e-5, 1e-7, 1e-9)
_RELATIVE_STEPS = (0.1, 1e-3)
# An estimate whose error is below this, relative, ends the search.
_CONVERGED = 1e-11

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


def _as_column(values):
    """A column as a float array; a data family given as a list of columns stays a list of arrays."""
    if isinstance(values, (list, tuple)) and values and np.ndim(values[0]) == 1:
        return [np.asarray(v, dtype=float) for v in values]
    return np.asarray(values, dtype=float)


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
    member: tuple[int, ...] | None = None,
) -> Estimate:
    """d out/d name by finite differences, as ``diff`` means it.

    Args:
        run: (params, columns) -> the output's value (a float, or one per row).
        name: a parameter (a key of ``params``) or a data column (of ``columns``).
        rows: for a column, the rows to move one at a time (default: every row).
        together: for a column of a per-row output that only reads it
            elementwise: move every row at once (one step a row).
        step: a fixed step for one plain central difference instead of Ridders'.
        member: for a parameter family (``params[name]`` an array in its
            written axes), the position of the one member to move.

    Returns:
        The estimate: per row for a per-row output, over ``rows`` for a column.
    """
    params = dict(params)
    columns = {k: _as_column(v) for k, v in (columns or {}).items()}
    if member is not None:
        family = np.asarray(params[name], dtype=float)

        def moved_member(value):
            changed = family.copy()
            changed[member] = value
            return run({**params, name: changed}, columns)

        return derivative(moved_member, float(family[member]), step=step)
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
