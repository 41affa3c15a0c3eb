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

A parameter family (``w[j]``, ``W[k,j]``) is checked member by member: one
evaluation of the family's derivative graph gives every member's analytic
value, and the numeric side moves one member at a time; each member is a
``PartialCheck`` named as a fit names it (``w[1]``, ``W[2,3]``). At most
``members`` members are checked in all, spread over each family's members.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import graph
from ..backends.binding import arrange
from ..backends.evaluate import compile_schedule
from ..errors import ArgumentError
from ..graph import Node
from ..passes.diff import diff
from ..passes.simplify import simplify_many
from .differences import Estimate, _as_column, numeric_partial

# A partial is within the numeric side's reach when the difference is below
# this many times its error estimate (estimate and rounding error together).
_REACH = 4.0
# Fewer than two correct digits from finite differences: no verdict.
_RESOLUTION = 1e-2
DEFAULT_TOL = 1e-6
DEFAULT_ROWS = 5
MAX_ROWS = 1000
# Members of families checked in all (each costs some 20 to 100 evaluations).
DEFAULT_MEMBERS = 200
MAX_MEMBERS = 100_000

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
        family: for a member of a family (``w[2]``), the family's name (``w``), else None.
        members: for a member of a family, how many members the family has.
    """

    name: str
    analytic: float | np.ndarray
    numeric: float | np.ndarray
    rows: list[int] | None
    error: float
    reach: float
    worst: int | None
    status: str
    family: str | None = None
    members: int = 0

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
    if count == 1:
        return [0]
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
    members: int = DEFAULT_MEMBERS,
    labels: Mapping[str, Sequence[Sequence]] | None = None,
    sizes: Mapping[str, int] | None = None,
    backend: str = "numpy",
    threads: int | None = None,
    engine=None,
) -> list[PartialCheck]:
    """Every partial derivative of ``output`` against finite differences.

    Args:
        output: the function's graph.
        params: parameter values by name (a variable in ``wrt`` without a value is taken as 0).
        columns: data columns by name (arrays of one length), or None.
        wrt: the variable nodes (default: every parameter).
        tol: the largest accepted relative error, in (0, 1).
        rows: with respect to a column, how many rows to move one at a time (1 to MAX_ROWS).
        members: how many members of parameter families to check in all (1 to
            MAX_MEMBERS), spread over each family's members; a family's values
            in ``params`` are an array in its written axes.
        labels: a family's labels per written axis (names its members: ``W[2,3]``);
            default 1..n along each axis.
        sizes: the number of labels of indices no array fixes (``k in 1:16``).
        backend, threads: how the values are computed (``compile_schedule``,
            ``Schedule.run``): "numpy", "compiled" or "auto"; threads sharing the rows.
        engine: an engine holding ``columns`` (``exprgrad.engines``): the runs over
            the data as given go there; those that move a data column run here.

    Returns:
        One ``PartialCheck`` per variable, in ``wrt`` order; for a family, one per
        member checked, in the order of its written axes (the last fastest).

    Raises:
        ArgumentError: ``tol``, ``rows`` or ``members`` out of range, a data family in
            ``wrt``, or a family's values that are not an array in its written axes.
        EvaluationError: a parameter or column has no value.
    """

    tol = check_tol(tol)
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or not 1 <= rows <= MAX_ROWS:
        # Each row moved alone costs some 20 to 100 passes over all the data.
        raise ArgumentError(f"must be a whole number from 1 to {MAX_ROWS}, got {rows!r}", argument="rows")
    if (
        isinstance(members, bool)
        or not isinstance(members, (int, np.integer))
        or not 1 <= members <= MAX_MEMBERS
    ):
        raise ArgumentError(
            f"must be a whole number from 1 to {MAX_MEMBERS}, got {members!r}", argument="members"
        )
    columns = {k: _as_column(v) for k, v in (columns or {}).items()}
    if wrt is None:
        wrt = [v for v in graph.variables([output]) if not v.per_row]
    params = dict(params)
    wrt = list({node.name: node for node in reversed(list(wrt))}.values())[::-1]  # a family once
    for node in wrt:
        if _is_family(node):
            params[node.name] = _family_array(node, params.get(node.name), (labels or {}).get(node.name))
        elif node.name not in columns:
            params.setdefault(node.name, 0.0)  # a name the function does not use: derivative 0
    derivatives = diff(output, list(wrt))
    # The simplified derivatives, the ones `diff` prints: the raw graph of
    # d/da 1/(1 + exp(-a)) is inf*0 at a = -1000, its printed form is 0.
    simplified = simplify_many(list(derivatives.values()))
    schedule = compile_schedule(simplified, backend)
    value_only = compile_schedule([output], backend)
    sizes = dict(sizes or {}) or None
    # A data family (a list of columns) the derivatives do not read stays out: a
    # schedule without families takes only single columns (d/dx2 = 0 reads none).
    read = {v.name for v in graph.variables(simplified)}
    given = {k: v for k, v in columns.items() if k in read or not isinstance(v, list)}
    if engine is not None:
        analytic = schedule.run(params, None, sizes=sizes, threads=threads, engine=engine)
    else:
        analytic = schedule.run(params, given or None, sizes=sizes, threads=threads)

    def run(p, c):
        if engine is not None and c is columns:  # the data as the engine holds it
            return value_only.run(p, None, sizes=sizes, threads=threads, engine=engine)[0]
        return value_only.run(p, c or None, sizes=sizes, threads=threads)[0]

    budget = _member_budget([params[n.name].size for n in wrt if _is_family(n)], members)
    results = []
    for node, derivative_node, exact in zip(wrt, derivatives.values(), analytic):
        name = node.name
        if _is_family(node):
            results += _check_family(
                node,
                derivative_node,
                exact,
                run,
                params,
                columns,
                (labels or {}).get(name),
                budget.pop(0),
                tol,
            )
            continue
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


def _is_family(node: Node) -> bool:
    return bool(getattr(node, "var_axes", ())) and not node.per_row


def _family_array(node: Node, value, labels=None) -> np.ndarray:
    """A family's values as an array with one axis per written index (one number for
    every member when ``labels`` give the shape), or ArgumentError."""
    written = f"{node.name}[{','.join(i.name for i in node.var_axes)}]"
    if value is None:
        raise ArgumentError(f"no values given for the family {written}", argument="params")
    array = np.asarray(value, dtype=float)
    if array.ndim == 0 and labels is not None and all(found is not None for found in labels):
        array = np.full(tuple(len(found) for found in labels), float(array))
    if array.ndim != len(node.var_axes) or array.size == 0:
        raise ArgumentError(
            f"the values of {written} must be an array with {len(node.var_axes)} "
            f"ax{'is' if len(node.var_axes) == 1 else 'es'}, got shape {array.shape}",
            argument="params",
        )
    return array


def _member_budget(sizes: Sequence[int], total: int) -> list[int]:
    """How many members of each family to check: every one when they fit in ``total``,
    else ``total`` shared out (a small family keeps all its members, at least one each)."""
    budget = [0] * len(sizes)
    left = total
    for rank, k in enumerate(sorted(range(len(sizes)), key=lambda i: sizes[i])):
        share = max(1, left // (len(sizes) - rank))
        budget[k] = min(sizes[k], share)
        left = max(0, left - budget[k])
    return budget


def _check_family(
    node, derivative_node, exact, run, params, columns, labels, count, tol
) -> list[PartialCheck]:
    """``count`` members of the family ``node`` (spread over its members), one verdict each."""
    name, values = node.name, params[node.name]
    shape = values.shape
    written = [i.name for i in node.var_axes]
    have = [i.name for i in derivative_node.indices]
    want = [i.name for i in derivative_node.indices if i is graph.ROWS] + written
    exact = np.asarray(exact, dtype=float)
    arranged = arrange(exact, have, want)
    labels = (
        labels
        if labels is not None and all(found is not None for found in labels)
        else [range(1, n + 1) for n in shape]
    )
    results = []
    for flat in sample_rows(values.size, count):
        where = np.unravel_index(flat, shape)
        member = f"{name}[{','.join(str(labels[a][i]) for a, i in enumerate(where))}]"
        estimate = numeric_partial(run, name, params, columns, member=where)
        # an index the derivative lacks: every member along it has the same value
        at = tuple(int(i) if axis in have else 0 for axis, i in zip(written, where))
        a = arranged[(Ellipsis, *at)] if arranged.ndim else arranged
        chosen = None
        if np.ndim(estimate.value) > 0:
            a = np.broadcast_to(np.asarray(a, dtype=float), np.shape(estimate.value))
            chosen = list(range(len(estimate.value)))
        verdict = compare(member, a, estimate, chosen, tol)
        results.append(dataclasses.replace(verdict, family=name, members=int(values.size)))
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
