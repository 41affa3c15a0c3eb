"""The operation graph: immutable, interned nodes and one iterative toposort.

In: an op (an ``ops`` entry, or the leaf ops ``CONST`` and ``VAR``), input
nodes, and for leaves a constant value or a variable name.
Out: ``Node`` objects. Building the same (op, inputs) twice gives back the same
node, so structural equality is identity and shared subexpressions are shared
by construction. This module knows no ops beyond the two leaves; the algebra that
runs while nodes are built (folding, identities, operand order) lives in the
checked builders of ``build``. Nothing here recurses on graph depth.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import sys
import zlib
from collections.abc import Iterable, Iterator

from . import names


class LeafSpec:
    """The op of a leaf node: ``CONST`` or ``VAR``, compared by identity."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"graph.{self.name.upper()}"

    # transitional: removed once no caller compares names
    def __eq__(self, other):
        if isinstance(other, str):
            return self.name == other
        return self is other

    # transitional: removed once no caller compares names
    def __hash__(self):
        return hash(self.name)


# Leaves are the only ops this module knows.
CONST = LeafSpec("const")
VAR = LeafSpec("var")

# The interning table: every live node by (op, inputs) or leaf key. It holds
# its nodes, so building the same key gives back the same node
# (hash-consing), and a sweep, each time the table has grown fourfold, drops the
# nodes nothing but the table holds any more: a long-running process keeps
# only the graphs it still uses, and the sweeps cost O(1) per node built.
# Weak references would cost more than the nodes (each one more object for
# the cyclic GC to scan, and a building 25% slower). Nodes form no
# reference cycles, so a node the table drops is freed at once.
_interned: dict = {}
_SWEEP_MIN = 4096
_sweep_at = _SWEEP_MIN
_refcount = getattr(sys, "getrefcount", None)  # CPython; elsewhere nothing is swept


def _sweep() -> None:
    """Drop the nodes only the table holds; the next when the table has grown fourfold.

    Keys are visited newest first, so a node is seen after every node built
    on it: dropping a user frees it, and its inputs are seen with their true
    counts. A probe entry that only the table holds gives the count of an
    unused node in this very loop, whatever the interpreter's conventions.
    """
    global _sweep_at
    if _refcount is not None:
        _interned[object()] = object()  # the probe
        keys = list(_interned)
        unused = None
        while keys:
            key = keys.pop()  # and no longer held by the list
            count = _refcount(_interned[key])
            if unused is None:
                unused = count  # the probe, last in and first out
            if count <= unused:
                del _interned[key]
    _sweep_at = max(4 * len(_interned), _SWEEP_MIN)


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building a large graph.

    Building 100,000 nodes otherwise triggers repeated full collections that
    cost more than the building (measured: 40% of lowering time).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class Node:
    """One vertex of the operation graph. Never build one directly: use ``build``.

    Attributes:
        op: ``CONST``, ``VAR``, or an entry of ``ops.OPS`` (compare with ``is``).
        inputs: the ordered operand nodes (empty for leaves).
        value: the float of a constant (None otherwise).
        name: the variable name ("a", "theta[1]"), or the symbol of a named
            constant ("pi", "e"); None otherwise.
        per_row: True when the node has one value per data row.
        sort_key: a deterministic key (independent of the process and of the
            order nodes were built in) that puts commutative operands in a
            canonical order; its last item is a structural digest (tuples of
            ints hash the same in every process, unlike strings).
    """

    __slots__ = ("inputs", "name", "op", "per_row", "sort_key", "value")

    op: object  # LeafSpec or ops.OpSpec; graph knows no ops beyond leaves
    inputs: tuple[Node, ...]
    value: float | None
    name: str | None
    per_row: bool
    sort_key: tuple

    def __setattr__(self, key, value):
        raise AttributeError("Node is immutable")

    def __repr__(self) -> str:
        if self.op is CONST:
            return f"Node(const {self.name or self.value!r})"
        if self.op is VAR:
            return f"Node(var {self.name}{' per-row' if self.per_row else ''})"
        return f"Node({self.op.name}, {len(self.inputs)} inputs)"

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
_SET_PER_ROW = Node.per_row.__set__
_SET_SORT_KEY = Node.sort_key.__set__


@functools.lru_cache(maxsize=4096)
def _stable_hash(text: str) -> int:
    # str hashes are salted per process; crc32 is not, so operand order and
    # therefore printed and rendered output are the same in every run.
    return zlib.crc32(text.encode("utf-8"))


def _make(op, inputs: tuple, value, name, per_row: bool, sort_key: tuple) -> Node:
    # Node refuses attribute assignment; the slot descriptors themselves still
    # set a new node's fields (a few times cheaper than object.__setattr__).
    node = object.__new__(Node)
    _SET_OP(node, op)
    _SET_INPUTS(node, inputs)
    _SET_VALUE(node, value)
    _SET_NAME(node, name)
    _SET_PER_ROW(node, per_row)
    _SET_SORT_KEY(node, sort_key)
    return node


def const(value: float, name: str | None = None) -> Node:
    """The constant ``value``; ``name`` ("pi") keeps it symbolic in printed output."""
    value = float(value)
    if value == 0.0:
        value = 0.0  # -0.0 and 0.0 are one node
    key = (CONST, value if not math.isnan(value) else "nan", name)
    node = _interned.get(key)
    if node is None:
        number = value if not math.isnan(value) else math.inf
        digest = hash((0, number, _stable_hash(name or "")))
        node = _make(CONST, (), value, name, False, (0, 0 if name is None else 1, number, name or "", digest))
        _interned[key] = node
        if len(_interned) >= _sweep_at:
            _sweep()
    return node


def var(name: str, per_row: bool = False) -> Node:
    """The variable ``name``: a scalar parameter, or a data column when ``per_row``."""
    key = (VAR, name, per_row)
    node = _interned.get(key)
    if node is None:
        digest = hash((1, _stable_hash(name), per_row))
        node = _make(VAR, (), None, name, per_row, (1, name, per_row, digest))
        _interned[key] = node
        if len(_interned) >= _sweep_at:
            _sweep()
    return node


def apply(op, inputs: Iterable[Node], *, reduces: bool = False) -> Node:
    """The interned node ``op(*inputs)``, unchecked: the builders call this.

    Args:
        op: the registry entry (``ops.ADD``); anything with a ``name``.
        inputs: operand nodes in their final order.
        reduces: True for a reduction over rows (its result is a scalar).
    """
    inputs = tuple(inputs)
    key = (op, inputs)
    node = _interned.get(key)
    if node is None:
        per_row = False
        if not reduces:
            for i in inputs:
                if i.per_row:
                    per_row = True
                    break
        digest = hash((_stable_hash(op.name), *[i.sort_key[-1] for i in inputs]))
        node = _make(op, inputs, None, None, per_row, (2, op.name, digest))
        _interned[key] = node
        if len(_interned) >= _sweep_at:
            _sweep()
    return node


def interned_count() -> int:
    """How many nodes are alive: the table's entries after a sweep."""
    _sweep()
    return len(_interned)


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
