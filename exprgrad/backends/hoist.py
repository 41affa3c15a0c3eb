"""Scalar factors and signs moved off the rows, just before a schedule is planned.

In: output nodes. Out: equal nodes (one per output, in order) with signs and
scalar factors moved to the scalar side, which runs once per evaluation
instead of once per row:

- a sign on a per-row product goes onto its scalar factors:
  -(b*x) -> (-b)*x (one per-row step instead of two);
- nested products of scalars and one per-row value become one product with
  one scalar: s1*(s2*p) -> (s1*s2)*p;
- a sum or mean over the rows takes its scalar factors and its sign
  outside: mean(s*u*x) -> s*mean(u*x) (which may then be a dot product per
  block), mean(-p) -> -mean(p).

Only nodes over the rows alone (and scalars) are rewritten; a node with an
index besides the rows is left as it is. A product with scalar factors is
taken out of a reduction only when that adds no per-row node (its per-row
part is one value, or the product has no other reader), so a pass never
gets more per-row steps than the graph as built.

With ``exact`` (what the evaluator plans from) only the signs of per-row
products move: that changes no bit (a product's sign is its factors'), so
evaluation and generated Python still agree bit for bit. ``exact=False``
also moves the scalar factors and the signs of reductions, one rounding
apart (and a zero total's sign may flip).

Must not: change values beyond rounding (a sign moves exactly; a scalar
factor moved out of a product or a reduction is one rounding apart), change
the nodes users read (printing, diff and generated Python never see these
nodes), or recurse on graph depth.
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import build, graph, ops
from ..graph import Node

_ROWS_ONLY = (graph.ROWS,)


def hoist(outputs: Sequence[Node], exact: bool = True) -> list[Node]:
    """The outputs with signs (and, unless ``exact``, scalar factors) moved to the scalar side."""
    order = graph.toposort(outputs)
    readers = graph.users(order)
    new: dict[Node, Node] = {}
    for node in order:
        if node.is_leaf:
            new[node] = node
            continue
        inputs = tuple(new[i] for i in node.inputs)
        done = _rewrite(node, inputs, readers, exact)
        if done is None:
            # Operands where they stood (no builder reorders a sum's terms):
            # the same operations in the same order on equal values.
            done = node if inputs == node.inputs else graph.apply(node.op, inputs, axis=node.axis)
        new[node] = done
    return [new[n] for n in outputs]


def _rewrite(node: Node, inputs: tuple[Node, ...], readers: dict[Node, int], exact: bool) -> Node | None:
    if node.indices == _ROWS_ONLY:
        if node.op is ops.NEG:
            parts = _product(inputs[0])
            if parts is not None and parts[0]:
                return _negated_in_place(inputs[0], parts[0][0])
        elif node.op is ops.MUL and not exact:
            scalars, rows, flattened = [], [], False
            for factor in inputs:
                parts = _product(factor) if factor.per_row else None
                if parts is not None and parts[0] and len(parts[1]) == 1:
                    scalars += parts[0]
                    rows += parts[1]
                    flattened = True
                elif factor.per_row:
                    rows.append(factor)
                else:
                    scalars.append(factor)
            if flattened or len(scalars) > 1:
                return _row_product([_scalar(scalars)], rows)
        return None
    if node.indices or node.axis is not graph.ROWS or node.op not in (ops.SUM, ops.MEAN):
        return None
    body = inputs[0]
    if body.indices != _ROWS_ONLY:
        return None
    if exact:
        return None  # a sign moved out of a sum may flip a zero's sign (no rows: -0.0)
    if body.op is ops.NEG:
        return build.neg(build.call(node.op, body.inputs[0]))
    parts = _product(body)
    if parts is None or not parts[0]:
        return None
    scalars, rows = parts
    if len(rows) > 1 and readers.get(node.inputs[0], 0) > 1:
        return None  # the product is read elsewhere: taking it apart adds a per-row step
    inner = rows[0] if len(rows) == 1 else graph.apply(ops.MUL, build._ordered(rows))
    return build.mul(_scalar(scalars), build.call(node.op, inner))


def _product(node: Node) -> tuple[list[Node], list[Node]] | None:
    """(scalar factors, per-row factors) of a per-row product over the rows alone, else None."""
    if node.op is not ops.MUL or node.indices != _ROWS_ONLY:
        return None
    if any(f.indices not in ((), _ROWS_ONLY) for f in node.inputs):
        return None
    return [f for f in node.inputs if not f.per_row], [f for f in node.inputs if f.per_row]


def _negated_in_place(product: Node, scalar: Node) -> Node:
    # The scalar negated where it stands: the same multiplications in the
    # same order, every one of them exactly negated, so the same bits.
    factors = list(product.inputs)
    factors[factors.index(scalar)] = build.neg(scalar)
    return graph.apply(ops.MUL, tuple(factors))


def _scalar(factors: list[Node]) -> Node:
    return factors[0] if len(factors) == 1 else build.mul(*factors)


def _row_product(scalars: list[Node], rows: list[Node]) -> Node:
    # Built directly: ``build.mul`` would pull the scalar's sign back out front.
    scalar = scalars[0]
    if build.split_sign(scalar) == (1, build.ONE):
        return rows[0] if len(rows) == 1 else graph.apply(ops.MUL, build._ordered(rows))
    return graph.apply(ops.MUL, build._ordered([scalar, *rows]))
