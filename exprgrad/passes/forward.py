"""Forward mode: the tangent of an output when one variable moves at unit speed.

In: an output node and one parameter node (a ``var`` leaf, maybe a family
member w[j]) from ``passes.diff``. Out: the tangent graph d out/d wrt, built
with the checked builders of ``ops`` (sharing the function's nodes), or None
when the output does not reach the variable.

Forward mode moves one member d of a family: a use w[a] has tangent
delta(a, d), kept beside the tangent as a pair, which the reduction over a
resolves (sum[a](u*delta(a, d)) is u at a = d); so a family's tangent has the
family's indices too. A delta left in the result (members of the family meet
outside a reduction over their index) is an OptionError, never a wrong graph.
Must not: simplify, evaluate, print, recurse on graph depth (one loop over
``graph.toposort``), or branch on an operator's name beyond the reductions
the registry marks (``reduction``; logsumexp's partial is its weight).
"""

from __future__ import annotations

from .. import build, graph, ops
from ..errors import OptionError
from ..graph import Node
from .families import family_uses, fresh_name, index_names
from .signed import Signed, mapped, scaled, to_node, total


def forward(output: Node, wrt: Node) -> Node | None:
    """The tangent of ``output`` when ``wrt`` moves at unit speed; None if unreached.

    For a family w[j], member d moves: the tangent of a use w[a] is
    delta(a, d), carried beside the tangent's node as the pairs (a, d) it is
    multiplied by (``deltas``); d is a fresh index. A reduction over a meets
    its delta: sum[a](u*delta(a, d)) = u with a renamed d (mean: divided by
    size(a)). The result has d renamed back to the family's own indices.
    """
    uses = family_uses(output, [wrt])[wrt] if wrt.var_axes else [wrt]
    taken = index_names([output, wrt])
    direction = []
    for axis in wrt.var_axes:
        direction.append(fresh_name(axis, taken))
    tangents: dict[Node, tuple[Signed, tuple]] = {
        use: ((build.ONE, False), _pairs(zip(use.var_axes, direction))) for use in uses
    }
    for node in graph.toposort([output]):
        if node.is_leaf or node in tangents:
            continue
        spec = node.op
        if spec.reduction:
            found = tangents.get(node.inputs[0])
            if found is None:
                continue
            inner, deltas = found
            if node.op is ops.LSE:
                (weight,) = spec.partials(node)
                inner = scaled(inner, weight)  # sum[j](exp(e - lse[j](e)) * tangent of e)
            met = dict(deltas).get(node.axis)
            if met is not None:
                deltas = tuple(pair for pair in deltas if pair[0] is not node.axis)
                inner = mapped(inner, lambda u, a=node.axis, d=met: build.rename(u, {a: d}))
                if node.op is ops.MEAN:
                    inner = scaled(inner, build.div(build.ONE, graph.size(node.axis)))
            else:  # rows are an index like any other (build.reduce over rows is the row reduction)
                op = ops.SUM if node.op is ops.LSE else node.op
                inner = mapped(inner, lambda u, op=op, n=node: build.reduce(op, u, n.axis))
            tangents[node] = (inner, deltas)
            continue
        if not any(child in tangents for child in node.inputs):
            continue
        terms, deltas = [], None
        for child, partial in zip(node.inputs, spec.partials(node)):
            if partial is None or child not in tangents:
                continue
            term, child_deltas = tangents[child]
            if deltas is not None and child_deltas != deltas:
                raise OptionError(
                    f"forward mode cannot write the derivative with respect to '{wrt.name}' here "
                    "(members of the family meet outside a reduction over their index); use reverse mode"
                )
            deltas = child_deltas
            terms.append(scaled(term, partial))
        tangents[node] = (total(terms) if terms else (build.ZERO, False)), deltas or ()
    found = tangents.get(output)
    if found is None:
        return None
    tangent, deltas = found
    back = dict(zip(direction, wrt.var_axes))
    if any(back[d] is not a for a, d in deltas):
        raise OptionError(
            f"the derivative with respect to '{wrt.name}' of a result with free indices has diagonal "
            "terms, which exprgrad cannot write yet"
        )
    node = to_node(tangent)
    return build.rename(node, back) if back else node


def _pairs(pairs) -> tuple:
    return tuple(sorted(pairs, key=lambda pair: pair[0].key))
