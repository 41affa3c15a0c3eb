"""Test helpers: a plain reference evaluator, finite differences over it (exprgrad.check).

The evaluator walks ``graph.toposort`` and calls each registry entry's
``evaluate``: deliberately simple (no chunks, no buffer reuse), so the
backends and ``diff`` can be checked against it. Reductions reduce over the
rows; a reduction of a scalar sees it repeated in every row (sum(a) = n*a).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from exprgrad import graph
from exprgrad.graph import Node
from exprgrad.ops import OPS


def evaluate(
    outputs: Sequence[Node],
    params: Mapping[str, float],
    columns: Mapping[str, np.ndarray] | None = None,
) -> list:
    """Values of ``outputs``: floats for scalar nodes, arrays of n for per-row ones.

    Without columns there is one row, and a per-row variable may be bound in
    ``params``. Raises KeyError for an unbound variable.
    """
    columns = {k: np.asarray(v, dtype=float) for k, v in (columns or {}).items()}
    rows = len(next(iter(columns.values()))) if columns else 1
    values: dict[int, object] = {}
    with np.errstate(all="ignore"):
        for node in graph.toposort(outputs):
            if node.is_const:
                value = node.value
            elif node.is_var:
                value = columns[node.name] if node.name in columns else float(params[node.name])
            else:
                spec = OPS[node.op]
                args = [values[id(child)] for child in node.inputs]
                if spec.reduction:
                    column = np.broadcast_to(np.asarray(args[0], dtype=float), (rows,))
                    value = float(spec.evaluate(column))
                else:
                    value = spec.evaluate(*args)
                    if np.ndim(value) == 0:
                        value = float(value)
            values[id(node)] = value
    return [values[id(node)] for node in outputs]


def evaluate_one(node: Node, params, columns=None):
    return evaluate([node], params, columns)[0]


def numeric_partial(node: Node, name: str, params, columns=None, step=None):
    """d node/d name by finite differences (``exprgrad.check``), on the reference evaluator.

    For a parameter: per row for a per-row node. For a data column: per row i,
    the change of the output (row i of a per-row output) when only x_i moves,
    matching what ``diff`` means for a column. Without ``step``, Ridders'
    extrapolation; with it, one central difference with that step.
    """
    from exprgrad.check import numeric_partial as library_partial

    def run(p, c):
        return evaluate_one(node, p, c)

    params = {**params}
    return library_partial(run, name, params, columns, step=step).value


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, message=""):
    actual = np.broadcast_to(np.asarray(actual, dtype=float), np.shape(expected))
    expected = np.asarray(expected, dtype=float)
    scale = atol + rtol * np.maximum(np.abs(expected), np.abs(actual))
    bad = ~(np.abs(actual - expected) <= scale)
    if np.any(bad):
        raise AssertionError(f"{message}: got {actual}, expected {expected}")


def show(node: Node) -> str:
    """A plain, fully parenthesized text of ``node`` for test messages (not the printer)."""
    text: dict[int, str] = {}
    for n in graph.toposort([node]):
        if n.is_const:
            text[id(n)] = n.name or repr(n.value)
        elif n.is_var:
            text[id(n)] = n.name
        else:
            text[id(n)] = f"{n.op}(" + ", ".join(text[id(c)] for c in n.inputs) + ")"
    return text[id(node)]
