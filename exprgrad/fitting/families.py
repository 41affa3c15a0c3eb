"""Which parameters and data columns a fit's cost reads, families included.

In: the parsed Functions of a fit (the cost, or the model) and the variable
nodes of its cost. Out: ``Layout``: the parameter vector's ``Members`` (a
family's labels per written axis), one variable node per parameter to
differentiate by, the CSV columns of each data family in label order, and
the sizes of the indices for the evaluator.
Must not: evaluate, differentiate, or know the command line.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..errors import OptionError
from ..graph import Node
from .members import Block, Members


@dataclass
class Layout:
    """members: the vector's layout. nodes: a variable node per block, in its order.
    columns: {data family: its CSV columns, in label order}. sizes: {index: labels}.
    origins: {index: the data family whose columns give its labels}."""

    members: Members
    nodes: list[Node]
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)


def family_layout(functions: Sequence, variables: Sequence[Node], given: Mapping | None = None) -> Layout:
    """The Layout of a cost whose variable nodes are ``variables`` (sorted by name).

    ``given``: values given for families as lists (nested for several axes)
    or, for one axis, objects label -> value ({"1": 0.5, "2": 0.1}): a family
    whose index has no range from the program takes labels 1..n from a list,
    an object's labels as given (whole numbers in a row).
    """
    given = given or {}
    ranges: dict[str, tuple] = {}
    families: dict = {}
    for function in functions:
        ranges.update(getattr(function, "ranges", None) or {})
        families.update(getattr(function, "families", None) or {})
    blocks: list[Block] = []
    nodes: list[Node] = []
    columns: dict[str, tuple[str, ...]] = {}
    seen: set[str] = set()
    origins: dict[str, str] = {}
    for v in variables:
        if v.per_row:
            if axes_of(v) and v.name not in columns:
                columns[v.name] = _data_columns(v, families.get(v.name))
                for axis in axes_of(v):
                    origins.setdefault(axis.name, v.name)
            continue
        if v.name in seen:
            continue  # w[j] and w[k]: one family, differentiated through either node
        seen.add(v.name)
        axes = tuple(i.name for i in axes_of(v))
        value = given.get(v.name)
        shape = _shape(value, len(axes))
        keyed = value if isinstance(value, Mapping) and len(axes) == 1 else None
        labels = tuple(
            _labels(v, axis, ranges, families.get(v.name), a, shape, keyed) for a, axis in enumerate(axes)
        )
        blocks.append(Block(v.name, axes, labels))
        nodes.append(v)
    sizes = {axis: len(labels) for axis, labels in ranges.items()}
    for block in blocks:  # a graph that reads no family (d2/dw[j]dw[j2] = 2*(j == j2)) still has its indices
        for axis, labels in zip(block.axes, block.labels, strict=True):
            sizes.setdefault(axis, len(labels))
    return Layout(Members(blocks), nodes, columns, sizes, origins)


def axes_of(node: Node) -> tuple:
    """A variable's written indices (``W[k,j]``: k, j); () for a scalar or a column."""
    return getattr(node, "var_axes", ())


def _shape(values, axes: int) -> tuple[int, ...] | None:
    """The shape of nested lists (or an array) ``values`` with ``axes`` levels (None if not one)."""
    if hasattr(values, "shape"):
        return tuple(values.shape) if len(values.shape) == axes and all(values.shape) else None
    shape = []
    for _ in range(axes):
        if not isinstance(values, (list, tuple)) or not values:
            return None
        shape.append(len(values))
        values = values[0]
    return tuple(shape)


def _object_labels(node: Node, values: Mapping) -> tuple[int, ...]:
    """The labels of an object label -> value given for a one-axis family: whole numbers in a row."""
    written = f"{node.name}[{','.join(i.name for i in axes_of(node))}]"
    if not values:
        raise OptionError(f"{node.name}: the object of values for {written} is empty")
    labels = []
    for key in values:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", str(key)):
            raise OptionError(
                f"{node.name}: the label {str(key)!r} of {written} is not a whole number (labels are 1, 2, 3, ...)"
            )
        labels.append(int(key))
    labels.sort()
    missing = next((a + 1 for a, b in itertools.pairwise(labels) if b != a + 1), None)
    if missing is not None or len(set(labels)) != len(labels):
        problem = f"no label {missing}" if missing is not None else "a label given twice"
        raise OptionError(
            f"{node.name}: the labels of {written} run {labels[0]}..{labels[-1]} with {problem} "
            "(a family's labels are whole numbers in a row)"
        )
    return tuple(labels)


def _labels(node: Node, axis: str, ranges: dict, family, position: int, shape, keyed=None) -> tuple:
    """The labels of a parameter family's axis: the family's own, its index's range,
    the labels of an object given for it, or 1..n from a list given for it."""
    own = getattr(family, "labels", None)
    if own is not None and len(own) > position and own[position] is not None:
        return tuple(own[position])
    if axis in ranges:
        return tuple(ranges[axis])
    if keyed is not None:
        return _object_labels(node, keyed)  # checked only where its labels are the range
    if shape is not None:
        return tuple(range(1, shape[position] + 1))
    raise OptionError(
        f"the size of {node.name}[{','.join(i.name for i in axes_of(node))}] is not known: "
        f"use {axis} with a data family (x[{axis}] for columns x1, x2, ...), declare it ({axis} in 1:10), "
        f"or give {node.name} as a list of values"
    )


def _data_columns(node: Node, family) -> tuple[str, ...]:
    """The CSV columns of a data family, in label order (x1..x50 for x[j])."""
    found = getattr(family, "columns", None)
    if found:
        return tuple(found)
    raise OptionError(f"the columns of the data family {node.name}[...] are not known")
