"""What a run of an indexed schedule binds: leaf values, data, the row count and each index's size.

In: the schedule's leaves, parameter values (a float; for a family an array
in the family's written axes, ``W[k,j]``: k by j, or one number for every
member), data (a 1-d array per column; a data family as a rows x labels
array or a sequence of 1-d columns) and the sizes of declared indices.
Out: ``Inputs``: parameter families as arrays in canonical axes (views: a
transpose), data sources the evaluator reads a chunk at a time, the row
count, and every index's size, checked to agree between every use (an
``EvaluationError`` names the index and both sizes); a Kronecker delta's
two indices have one size (k2 of delta(k, k2) takes k's when nothing else
fixes it) and its value is the identity matrix over them. The way back:
``written_axes`` and ``arrange`` put an evaluated derivative (canonical axes)
into its variables' written axes (d/dW[k,j]: k by j; a Hessian block d2/da db:
a's axes, then b's; an index it lacks broadcast), the one layout the API, the
command line and the fit show.
Must not: copy data (a family's columns are gathered by the evaluator a
chunk at a time, or read in place when they lie evenly in one buffer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import graph, memory
from ..errors import EvaluationError
from ..graph import ROWS, Node


class Inputs:
    """What a run binds: leaf values (constants, parameters, sizes: floats or arrays), the
    data of row leaves (a 1-d array, a float, a rows x labels array or a list of columns),
    the row count and every index's size."""

    __slots__ = ("data", "n", "sizes", "values")

    def __init__(self, values: dict, data: dict, n: int, sizes: dict):
        self.values, self.data, self.n, self.sizes = values, data, n, sizes


def bind(schedule, params: Mapping, columns: Mapping, declared: Mapping | None) -> Inputs:
    """Leaf values and index sizes for a run; sizes checked to agree between every use."""
    leaves = [n for n in schedule.order if n.is_leaf]
    sizes: dict[graph.Index, tuple[int, str]] = {}

    def fix(index: graph.Index, size: int, where: str) -> None:
        known = sizes.setdefault(index, (size, where))
        if known[0] != size:
            raise EvaluationError(
                f"index '{index.name}' has {known[0]} labels in {known[1]} but {size} in {where}"
            )

    data: dict[Node, object] = {}
    lengths = set()
    for value in columns.values():
        lengths |= {len(column) for column in value} if _is_columns(value) else {len(value)}
    for node in (n for n in leaves if n.is_var and n.per_row):
        value = _data(node, params, columns)
        data[node] = value
        if isinstance(value, float):
            continue
        if node.var_axes:
            shape = (len(value),) if isinstance(value, list) else value.shape[1:]
            if len(shape) != len(node.var_axes):
                raise EvaluationError(
                    f"'{node.name}' needs {len(node.var_axes)} label axes, not {len(shape)}"
                )
            for index, size in zip(node.var_axes, shape, strict=True):
                fix(index, size, f"the data '{node.name}'")
    if len(lengths) > 1:
        raise EvaluationError("data columns differ in length")
    n = lengths.pop() if lengths else 1
    missing = sorted({v.name for v in leaves if v.is_var and not v.per_row and v.name not in params})
    if missing:
        raise EvaluationError(
            "no value given for parameter"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(f"'{m}'" for m in missing)
        )
    arrays = {}
    for node in (n for n in leaves if n.is_var and not n.per_row and n.var_axes):
        value = np.asarray(params[node.name], dtype=np.float64)
        arrays[node] = value
        if value.ndim == 0:
            continue  # one number for every member
        if value.ndim != len(node.var_axes):
            raise EvaluationError(
                f"'{node.name}' has {len(node.var_axes)} indices but was given {value.ndim}-d values"
            )
        for index, size in zip(node.var_axes, value.shape, strict=True):
            fix(index, size, f"the values of '{node.name}'")
    for name, size in (declared or {}).items():
        fix(name if isinstance(name, graph.Index) else graph.index(name), int(size), "its declared range")
    _share_delta_sizes([n for n in leaves if n.op is graph.DELTA], sizes, fix)
    known = {index: size for index, (size, _) in sizes.items()}

    def size_of(index: graph.Index) -> int:
        if index is ROWS:
            return n
        if index not in known:
            raise EvaluationError(f"no size for index '{index.name}': no values or data fix its labels")
        return known[index]

    values: dict[Node, object] = {}
    for node in leaves:
        if node.is_const:
            values[node] = node.value
        elif node.op is graph.SIZE:
            values[node] = float(size_of(node.axis))
        elif node.op is graph.DELTA:
            values[node] = np.eye(size_of(node.indices[0]), size_of(node.indices[1]))
        elif node.is_var and not node.per_row:
            if node not in arrays:
                if np.ndim(params[node.name]) != 0:
                    raise EvaluationError(
                        f"'{node.name}' is one number, but was given {np.size(params[node.name])}"
                    )
                values[node] = float(params[node.name])
                continue
            value = arrays[node]
            if value.ndim == 0:
                memory.check_family(node, [size_of(i) for i in node.var_axes])
                value = np.full([size_of(i) for i in node.var_axes], float(value))
            values[node] = np.transpose(value, [node.var_axes.index(i) for i in node.indices])
    for node in schedule.order:
        for index in node.indices:
            size_of(index)
    return Inputs(values, data, n, known)


def _share_delta_sizes(deltas: list[Node], sizes: dict, fix) -> None:
    """Each delta's two indices get one size: the one known gives it to the other, until none is new."""
    changed = True
    while changed:
        changed = False
        for node in deltas:
            first, second = node.indices
            for this, other in ((first, second), (second, first)):
                if this in sizes and other not in sizes:
                    fix(other, sizes[this][0], f"the comparison ({first.name} == {second.name})")
                    changed = True
    for node in deltas:
        first, second = node.indices
        if first in sizes and second in sizes:
            fix(second, sizes[first][0], f"the comparison ({first.name} == {second.name})")


def _one_array(columns: list[np.ndarray]):
    """The columns as one rows x labels view when they lie evenly spaced in one buffer
    (the columns of a Fortran-ordered array): nothing to gather. None otherwise."""
    first = columns[0]
    if len(columns) < 2 or first.base is None or first.strides != (8,):
        return None
    start = first.__array_interface__["data"][0]
    step = columns[1].__array_interface__["data"][0] - start
    for label, column in enumerate(columns):
        if (
            column.base is not first.base
            or column.strides != (8,)
            or len(column) != len(first)
            or column.__array_interface__["data"][0] != start + label * step
        ):
            return None
    if step < 8 * len(first):  # overlapping columns are not a rows x labels table
        return None
    return np.lib.stride_tricks.as_strided(first, (len(first), len(columns)), (8, step), writeable=False)


def _is_columns(value) -> bool:
    """Whether a data value is a sequence of columns (a family given column by column)."""
    return not isinstance(value, np.ndarray) and len(value) > 0 and np.ndim(value[0]) == 1


def _data(node: Node, params: Mapping, columns: Mapping) -> object:
    """A row leaf's data: a 1-d column, a float (one value for every row), a 2-d array or a list of columns."""
    if node.name in columns:
        value = columns[node.name]
        if not node.var_axes:
            if np.ndim(value) != 1:
                raise EvaluationError(
                    f"'{node.name}' is one data column, but was given {np.ndim(value)}-d data"
                )
            return np.ascontiguousarray(value, dtype=np.float64)
        if isinstance(value, np.ndarray):
            return np.asarray(value, dtype=np.float64)
        # As given (no copy of float64 data): a chunk of each is gathered as it is read.
        columns = [np.asarray(column, dtype=np.float64) for column in value]
        together = _one_array(columns)
        return columns if together is None else together

    if node.name in params and not node.var_axes:
        return float(params[node.name])  # a column given as one number
    what = "data family" if node.var_axes else "data column"
    raise EvaluationError(f"no values for '{node.name}', which the function reads as a {what}")


def written_axes(have: Sequence[str], first: Sequence[str], second: Sequence[str] = ()) -> tuple[str, ...]:
    """The axes a derivative is shown in: the rows (when ``have``, its canonical axes, has
    them), then ``first``'s written axes, then ``second``'s (a Hessian block), where one
    clashes with ``first``'s the fresh name the derivative gives it (j -> j2; an absent one
    is ``j'``: the block is constant along it)."""
    fresh = [name for name in have if name not in first and name not in second]
    renamed = []
    for name in second:
        if name not in first:
            renamed.append(name)
            continue
        match = [f for f in fresh if f.rstrip("0123456789") == name and f != name]
        if len(match) > 1:
            raise ValueError(f"cannot tell which index of {list(have)} is the second {name}")
        renamed.append(match[0] if match else f"{name}'")
    rows = (ROWS.name,) if ROWS.name in have else ()
    return (*rows, *first, *renamed)


def arrange(
    value, have: Sequence[str], want: Sequence[str], shape: Sequence[int] | None = None
) -> np.ndarray:
    """``value`` (a float, or an array with the axes named ``have``) as an array with
    the axes ``want`` and ``shape``: axes transposed into place, missing ones broadcast
    (without ``shape``: length 1 on them)."""
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        if shape is None:
            return np.asarray(value, dtype=np.float64).reshape([1] * len(want))
        return np.full(tuple(shape), float(value))
    if shape is not None and value.shape == tuple(shape) and tuple(have) == tuple(want):
        return value  # already in place (a gradient, every iteration)
    have = list(have)
    extra = [name for name in have if name not in want]
    if extra or value.ndim != len(have):
        raise ValueError(f"a value with axes {have} cannot be arranged as {list(want)}")
    order = [have.index(name) for name in want if name in have]
    moved = np.transpose(value, order) if order != sorted(order) else value
    expand = tuple(slice(None) if name in have else None for name in want)
    return moved[expand] if shape is None else np.broadcast_to(moved[expand], tuple(shape))
