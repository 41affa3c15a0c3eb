"""The operation graph: immutable, interned nodes and one iterative toposort.

In: an op (an ``ops`` entry, or the leaf ops ``CONST``, ``VAR``, ``SIZE`` and
``DELTA``), input nodes, for a reduction the index it sums over, and for leaves
a constant value, a variable name and its indices, the index whose size it is,
or the two indices a Kronecker delta compares.
Out: ``Node`` objects and ``Index`` objects. Building the same (op, inputs,
axis) twice gives back the same node, so structural equality is identity and
shared subexpressions are shared by construction.

Indices: every node knows its free indices (``Node.indices``, in canonical
order: ``ROWS``, the data rows, first, then by natural name order). An
elementwise node has the union of its inputs' indices (it broadcasts), a
reduction removes its ``axis``. An index has no range here: sizes are bound
when a graph is evaluated, so a graph does not grow with its families. This module knows no ops beyond the leaves; the algebra that
runs while nodes are built (folding, identities, operand order) lives in the
checked builders of ``build``; the interning table and its sweeps are
``interning``'s. Nothing here recurses on graph depth.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Iterable

from . import interning, names


class LeafSpec:
    """The op of a leaf node: ``CONST``, ``VAR``, ``SIZE`` or ``DELTA``, compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"graph.{self.name.upper()}"


# Leaves are the only ops this module knows.
CONST = LeafSpec("const")
VAR = LeafSpec("var")
SIZE = LeafSpec("size")
DELTA = LeafSpec("delta")


class Index:
    """An index name (``j`` in ``w[j]``), interned: compare with ``is``. Build with ``index``."""

    __slots__ = ("key", "name")

    name: str
    key: tuple  # the canonical sort key: ROWS first, then natural name order

    def __setattr__(self, key, value):
        raise AttributeError("Index is immutable")

    def __repr__(self) -> str:
        return "graph.ROWS" if self is ROWS else f"graph.index({self.name!r})"

    def __reduce__(self):
        return (index, (self.name,))


_indices: dict[str, Index] = {}


def index(name: str) -> Index:
    """The index called ``name`` (one object per name)."""
    found = _indices.get(name)
    if found is None:
        found = object.__new__(Index)
        Index.name.__set__(found, name)
        Index.key.__set__(found, (0,) if name == "#rows" else (1, names.natural_key(name)))
        _indices[name] = found
    return found


# The data-row index. No user can write its name; it prints nowhere (rows
# print as ``sum(e)`` and ``mean(e)``).
ROWS = index("#rows")

# Canonical index tuples, interned: the same set of indices is one tuple
# object, so most comparisons are identity.
_tuples: dict[frozenset, tuple] = {frozenset(): ()}


def canonical(indices: Iterable[Index]) -> tuple[Index, ...]:
    """``indices`` once each, ROWS first, then in natural name order (``j2`` before ``j10``)."""
    found = frozenset(indices)
    result = _tuples.get(found)
    if result is None:
        result = tuple(sorted(found, key=_INDEX_KEY))
        _tuples[found] = result
    return result


def _index_key(i: Index) -> tuple:
    return i.key


_INDEX_KEY = _index_key
_union_cache: dict[tuple, tuple] = {}


def _union(a: tuple, b: tuple) -> tuple:
    key = (a, b)
    result = _union_cache.get(key)
    if result is None:
        result = canonical((*a, *b))
        _union_cache[key] = result
    return result


def without(indices: tuple[Index, ...], axis: Index) -> tuple[Index, ...]:
    """``indices`` less ``axis``, canonical."""
    if axis not in indices:
        return indices
    return canonical(i for i in indices if i is not axis)


class Node:
    """One vertex of the operation graph. Never build one directly: use ``build``.

    Attributes:
        op: ``CONST``, ``VAR``, ``SIZE``, ``DELTA``, or an entry of ``ops.OPS`` (compare with ``is``).
        inputs: the ordered operand nodes (empty for leaves).
        value: the float of a constant (None otherwise).
        name: the variable name ("a", "theta[1]", the family "w" of ``w[j]``),
            or the symbol of a named constant ("pi", "e"); None otherwise.
        indices: the free indices, canonical order (``canonical``): () for a
            scalar, (ROWS,) for one value per data row, (ROWS, j) for ``x[j]``.
        axis: the index a reduction removes (ROWS for ``sum(e)``), or the
            index whose size a ``SIZE`` leaf is; None otherwise.
        var_axes: a variable's indices as written, ROWS left out
            (``W[k,j]``: (k, j); ``W[j,k]`` is another node, the transpose); ().
        per_row: ``ROWS in indices`` (one value per data row).
        sort_key: a deterministic key (independent of the process and of the
            order nodes were built in) that puts commutative operands in a
            canonical order; its last item is a structural digest (tuples of
            ints hash the same in every process, unlike strings).
    """

    __slots__ = ("axis", "indices", "inputs", "name", "op", "sort_key", "value", "var_axes")

    op: object  # LeafSpec or ops.OpSpec; graph knows no ops beyond leaves
    inputs: tuple[Node, ...]
    value: float | None
    name: str | None
    indices: tuple[Index, ...]
    axis: Index | None
    var_axes: tuple[Index, ...]
    sort_key: tuple

    def __setattr__(self, key, value):
        raise AttributeError("Node is immutable")

    def __repr__(self) -> str:
        if self.op is CONST:
            return f"Node(const {self.name or self.value!r})"
        if self.op is VAR:
            axes = f"[{','.join(i.name for i in self.var_axes)}]" if self.var_axes else ""
            return f"Node(var {self.name}{axes}{' per-row' if self.per_row else ''})"
        if self.op is SIZE:
            return f"Node(size {self.axis.name})"
        if self.op is DELTA:
            return f"Node(delta {', '.join(i.name for i in self.indices)})"
        over = f" over {self.axis.name}" if self.axis is not None else ""
        return f"Node({self.op.name}{over}, {len(self.inputs)} inputs)"

    @property
    def per_row(self) -> bool:
        """True when the node has one value per data row (ROWS is one of its indices)."""
        return ROWS in self.indices

    @property
    def is_leaf(self) -> bool:
        return not self.inputs

    @property
    def is_const(self) -> bool:
        return self.op is CONST

    @property
    def is_var(self) -> bool:
        return self.op is VAR

    @property
    def family(self) -> str | None:
        """``theta`` for ``theta[3]``; the name itself for a plain variable."""
        if self.op is not VAR:
            return None
        return self.name.split("[", 1)[0]


_SET_OP = Node.op.__set__
_SET_INPUTS = Node.inputs.__set__
_SET_VALUE = Node.value.__set__
_SET_NAME = Node.name.__set__
_SET_INDICES = Node.indices.__set__
_SET_AXIS = Node.axis.__set__
_SET_VAR_AXES = Node.var_axes.__set__
_SET_SORT_KEY = Node.sort_key.__set__
_ROWS_ONLY = canonical((ROWS,))
_INTERNED = interning.table  # one dict, read on every build


@functools.lru_cache(maxsize=4096)
def _stable_hash(text: str) -> int:
    # str hashes are salted per process; crc32 is not, so operand order and
    # therefore printed and rendered output are the same in every run.
    return zlib.crc32(text.encode("utf-8"))


def _make(op, inputs: tuple, value, name, indices: tuple, sort_key: tuple, axis=None, var_axes=()) -> Node:
    # Node refuses attribute assignment; the slot descriptors themselves still
    # set a new node's fields (a few times cheaper than object.__setattr__).
    node = object.__new__(Node)
    _SET_OP(node, op)
    _SET_INPUTS(node, inputs)
    _SET_VALUE(node, value)
    _SET_NAME(node, name)
    _SET_INDICES(node, indices)
    _SET_AXIS(node, axis)
    _SET_VAR_AXES(node, var_axes)
    _SET_SORT_KEY(node, sort_key)
    return node


def const(value: float, name: str | None = None) -> Node:
    """The constant ``value``; ``name`` ("pi") keeps it symbolic in printed output."""
    value = float(value)
    if value == 0.0:
        value = 0.0  # -0.0 and 0.0 are one node
    key = (CONST, value if not math.isnan(value) else "nan", name)
    node = _INTERNED.get(key)
    if node is None:
        number = value if not math.isnan(value) else math.inf
        digest = hash((0, number, _stable_hash(name or "")))
        node = _make(CONST, (), value, name, (), (0, 0 if name is None else 1, number, name or "", digest))
        interning.store(key, node)
    return node


def var(name: str, indices: Iterable[Index | str] = (), *, per_row: bool = False) -> Node:
    """The variable ``name`` with ``indices`` as written.

    ``var("a")`` is a scalar parameter, ``var("x", (ROWS,))`` (or, the
    transitional spelling, ``var("x", per_row=True)``) a data column,
    ``var("w", (j,))`` the parameter family ``w[j]`` and ``var("x", (ROWS, j))``
    the data family ``x[j]``. The written order of the indices other than ROWS
    is kept (``var_axes``): ``W[k,j]`` and ``W[j,k]`` are different nodes.
    Index names (str) are turned into ``index(name)``.
    """
    axes = tuple(i if type(i) is Index else index(i) for i in indices)
    if per_row and ROWS not in axes:
        axes = (ROWS, *axes)
    if not axes:
        free, written = (), ()
    elif axes == (ROWS,):
        free, written = _ROWS_ONLY, ()
    else:
        free = canonical(axes)
        written = tuple(i for i in axes if i is not ROWS)
        if len(free) != len(axes):
            raise ValueError(f"variable {name!r} repeats an index: {[i.name for i in axes]}")
    rows = ROWS in free
    key = (VAR, name, rows) if not written else (VAR, name, rows, written)
    node = _INTERNED.get(key)
    if node is None:
        names_written = tuple(i.name for i in written)
        if written:
            digest = hash((1, _stable_hash(name), rows, *[_stable_hash(n) for n in names_written]))
        else:
            digest = hash((1, _stable_hash(name), rows))
        node = _make(VAR, (), None, name, free, (1, name, rows, names_written, digest), None, written)
        interning.store(key, node)
    return node


def size(axis: Index) -> Node:
    """The number of labels of ``axis`` (for ROWS, the row count n): a leaf without indices."""
    key = (SIZE, axis)
    node = _INTERNED.get(key)
    if node is None:
        digest = hash((3, _stable_hash(axis.name)))
        node = _make(SIZE, (), None, None, (), (3, axis.key, digest), axis)
        interning.store(key, node)
    return node


def delta(i: Index, i2: Index) -> Node:
    """The Kronecker delta of two indices with the same labels: 1 where their
    labels agree, else 0. A leaf with indices ``canonical((i, i2))`` (the
    order given does not matter); delta(i, i) is the constant 1."""
    if i is i2:
        return const(1.0)
    if i is ROWS or i2 is ROWS:
        raise ValueError("a Kronecker delta compares two indices other than the rows")
    indices = canonical((i, i2))
    key = (DELTA, indices)
    node = _INTERNED.get(key)
    if node is None:
        digest = hash((4, *[_stable_hash(x.name) for x in indices]))
        node = _make(DELTA, (), None, None, indices, (4, tuple(x.key for x in indices), digest))
        interning.store(key, node)
    return node


def apply(op, inputs: Iterable[Node], *, reduces: bool = False, axis: Index | None = None) -> Node:
    """The interned node ``op(*inputs)``, unchecked: the builders call this.

    Args:
        op: the registry entry (``ops.ADD``); anything with a ``name``.
        inputs: operand nodes in their final order.
        reduces: True for a reduction (over ``axis``, ROWS when not given).
        axis: the index a reduction removes; given alone it implies ``reduces``.
    """
    inputs = tuple(inputs)
    if axis is None and not reduces:
        key = (op, inputs)
    else:
        if axis is None:
            axis = ROWS
        key = (op, inputs, axis)
    node = _INTERNED.get(key)
    if node is None:
        if axis is None:
            free = ()
            for i in inputs:
                found = i.indices
                if found and found is not free:
                    free = found if not free else _union(free, found)
        else:
            free = without(inputs[0].indices, axis)
        if axis is None or axis is ROWS:
            digest = hash((_stable_hash(op.name), *[i.sort_key[-1] for i in inputs]))
        else:
            digest = hash((_stable_hash(op.name), _stable_hash(axis.name), *[i.sort_key[-1] for i in inputs]))
        node = _make(op, inputs, None, None, free, (2, op.name, digest), axis)
        interning.store(key, node)
    return node


def toposort(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from ``roots``, each after its inputs, each once.

    Deterministic: the same roots give the same order. Iterative, so a
    10,000-deep chain is fine.
    """
    order: list[Node] = []
    seen: set[Node] = set()
    for root in roots:
        if root in seen:
            continue
        stack = [(root, 0)]
        seen.add(root)
        while stack:
            node, next_input = stack[-1]
            if next_input < len(node.inputs):
                stack[-1] = (node, next_input + 1)
                child = node.inputs[next_input]
                if child not in seen:
                    seen.add(child)
                    stack.append((child, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def variables(roots: Iterable[Node]) -> list[Node]:
    """The variable leaves reachable from ``roots``, sorted by name."""
    # Order does not matter before the sort, so a plain depth-first visit
    # (cheaper than a toposort) finds them.
    found, seen, stack = [], set(), list(roots)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if node.op is VAR:
            found.append(node)
        else:
            stack.extend(node.inputs)
    return sorted(found, key=lambda n: natural_key(n.name))


def natural_key(name: str) -> tuple:
    """Sort key that puts w2 before w10 and theta[2] before theta[10] (``names.natural_key``)."""
    return names.natural_key(name)


def count_nodes(roots: Iterable[Node]) -> int:
    """How many distinct nodes the graphs of ``roots`` hold together."""
    return len(toposort(roots))


def users(order: list[Node]) -> dict[Node, int]:
    """For each node in ``order``, how many times it is used as an input in it."""
    count: dict[Node, int] = dict.fromkeys(order, 0)
    for node in order:
        for child in node.inputs:
            count[child] = count.get(child, 0) + 1
    return count
