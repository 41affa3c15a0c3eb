"""The operation graph as text, and back: how a graph reaches another process.

In: output nodes (``dumps``), or the text ``dumps`` wrote (``loads``).
Out: one line of JSON: the graph's nodes in topological order, each naming
its op, its inputs by position, its reduction axis, and for leaves the
constant (as ``float.hex``, so every bit survives), the variable's name and
written indices, or an index; then the positions of the outputs. ``loads``
builds the same nodes with the same constructors (``graph.apply`` and the
leaf builders, unchecked: the graph is already what it was), so a worker of a
cluster that rebuilds a schedule from this text computes the same bits as the
process that wrote it, without unpickling nodes or deriving anything again.
Must not: simplify, fold or check; depend on the process (no ids, no hashes).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from . import graph, ops
from .graph import Node

__all__ = ["digest", "dumps", "loads"]

VERSION = 1
# Every op a graph may hold, by the name it carries (OPS is the callable ones).
_OPS = {spec.name: spec for spec in ops._ENTRIES}


def dumps(outputs: Sequence[Node]) -> str:
    """``outputs`` and everything they read, as one line of text."""
    order = graph.toposort(outputs)
    position = {node: k for k, node in enumerate(order)}
    rows = []
    for node in order:
        if node.op is graph.CONST:
            rows.append(["const", node.value.hex(), node.name])
        elif node.op is graph.VAR:
            rows.append(["var", node.name, node.per_row, [i.name for i in node.var_axes]])
        elif node.op is graph.SIZE:
            rows.append(["size", node.axis.name])
        elif node.op is graph.DELTA:
            rows.append(["delta", *[i.name for i in node.indices]])
        else:
            axis = None if node.axis is None else node.axis.name
            rows.append([node.op.name, axis, [position[i] for i in node.inputs]])
    return json.dumps({"version": VERSION, "nodes": rows, "outputs": [position[n] for n in outputs]})


def loads(text: str) -> list[Node]:
    """The output nodes of a graph ``dumps`` wrote.

    Raises:
        ValueError: the text is not a graph of this version of exprgrad.
    """
    found = json.loads(text)
    if found.get("version") != VERSION:
        raise ValueError(f"graph text of version {found.get('version')!r}, this exprgrad reads {VERSION}")
    nodes: list[Node] = []
    for kind, *fields in found["nodes"]:
        if kind == "const":
            nodes.append(graph.const(float.fromhex(fields[0]), fields[1]))
        elif kind == "var":
            name, per_row, axes = fields
            nodes.append(graph.var(name, ([graph.ROWS] if per_row else []) + [graph.index(a) for a in axes]))
        elif kind == "size":
            nodes.append(graph.size(graph.index(fields[0])))
        elif kind == "delta":
            nodes.append(graph.delta(graph.index(fields[0]), graph.index(fields[1])))
        else:
            if kind not in _OPS:
                raise ValueError(f"graph text names an op this exprgrad does not have: {kind!r}")
            axis, inputs = fields
            spec = _OPS[kind]
            operands = [nodes[k] for k in inputs]
            if axis is None:
                nodes.append(graph.apply(spec, operands))
            else:
                nodes.append(graph.apply(spec, operands, axis=graph.index(axis)))
    return [nodes[k] for k in found["outputs"]]


def digest(text: str) -> str:
    """A short name for a graph text (the key workers keep its schedule under)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
