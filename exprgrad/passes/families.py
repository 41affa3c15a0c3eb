"""Index families in derivatives: a family's uses, their adjoints renamed, fresh index names.

In: an output node and the variable nodes ``passes.diff`` differentiates
with respect to; a family w[j] is used under its own indices and maybe
others (w[k]). Out: each variable's uses (``family_uses``), the derivative
summed over them (``family_total``): a use's index bound in the output is
renamed to the variable's, one free in the output (a Hessian's first
derivative renamed k -> k2, so the use is b[k2] while the variable is b[k])
becomes a Kronecker delta factor delta(k, k2), with k2 left free; the index
names a graph uses (``index_names``) and a fresh one beside them
(``fresh_name``: j -> j2).
Must not: differentiate, simplify, evaluate, print, or recurse on graph
depth (every walk is a loop over ``graph.toposort``).
"""

from __future__ import annotations

from collections.abc import Sequence

from .. import build, graph
from ..errors import OptionError
from ..graph import Node


def family_uses(output: Node, variables: list[Node]) -> dict[Node, list[Node]]:
    """Each variable's uses in ``output``: itself, and for a family every var
    node of that family under other index names (w[k] beside w[j])."""
    uses: dict[Node, list[Node]] = {v: [v] for v in variables}
    families = {(v.name, v.per_row): v for v in variables if v.var_axes}
    if not families:
        return uses
    free = set(output.indices)
    for node in graph.toposort([output]):
        v = families.get((node.name, node.per_row)) if node.is_var and node.var_axes else None
        if v is None or node is v:
            continue
        if len(node.var_axes) != len(v.var_axes):
            raise OptionError(
                f"the family '{v.name}' is used with {len(node.var_axes)} and {len(v.var_axes)} indices"
            )
        for used, own in zip(node.var_axes, v.var_axes, strict=True):
            if own in free and used is not own:
                # d out[j]/d w[j] is the diagonal of a Jacobian: a use w[k] of the
                # family would need out's j and w's j told apart, which they are not
                raise OptionError(
                    f"the derivative with respect to '{v.name}[{', '.join(i.name for i in v.var_axes)}]' "
                    f"of a result with the free index {own.name} (the family's own index) is not "
                    f"defined where '{v.name}' is also used as {_written(node)}: rename the result's index"
                )
        uses[v].append(node)
    return uses


def family_total(v: Node, uses: list[Node], found: dict[Node, Node], free: tuple = ()) -> Node | None:
    """The derivative with respect to ``v``: its uses' adjoints, each moved to v's indices.

    A use's index bound in the output (``free``: the output's indices) is
    renamed to v's (w[k] -> w[j]); one free in the output, u where v has i,
    makes the term delta(i, u) * adjoint, the adjoint read at u = i (where
    the delta is nonzero the labels agree), so u is left to the delta alone:
    d2/db[k]db[k2] of sum[k](b[k]^3) is 6*delta(k, k2)*b[k].
    """
    parts = []
    for use in uses:
        adj = found.get(use)
        if adj is None:
            continue
        if use is not v:
            mapping, deltas = {}, []
            for used, own in zip(use.var_axes, v.var_axes, strict=True):
                if used is own:
                    continue
                if used in free:
                    # where the delta is nonzero the labels agree: the adjoint
                    # reads own for used, and used is left to the delta alone
                    deltas.append(graph.delta(own, used))
                mapping[used] = own  # own is not free in the output (family_uses refuses that)
            if mapping:
                adj = build.rename(adj, mapping)
            if deltas:
                adj = build.mul(*deltas, adj)
        parts.append(adj)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else build.add(*parts)


def _written(node: Node) -> str:
    return f"{node.name}[{', '.join(i.name for i in node.var_axes)}]"


def index_names(roots: Sequence[Node]) -> set[str]:
    """Every index name the graphs of ``roots`` use, free or bound."""
    found = set()
    for node in graph.toposort(list(roots)):
        found.update(i.name for i in node.indices)
        if node.axis is not None:
            found.add(node.axis.name)
    return found


def fresh_name(base: graph.Index, taken: set[str]) -> graph.Index:
    """``base`` with the smallest number suffix not in ``taken`` (j -> j2); adds it to ``taken``."""
    number = 2
    while f"{base.name}{number}" in taken:
        number += 1
    taken.add(f"{base.name}{number}")
    return graph.index(f"{base.name}{number}")
