"""Index families in derivatives: a family's uses, their adjoints renamed, fresh index names.

In: an output node and the variable nodes ``passes.diff`` differentiates
with respect to; a family w[j] is used under its own indices and maybe
others (w[k]). Out: each variable's uses (``family_uses``), the derivative
summed over them renamed to the variable's indices (``family_total``),
the index names a graph uses (``index_names``), a fresh one beside them
(``fresh_name``: j -> j2), and the error for a derivative with diagonal
terms (``diagonal_terms``), which names the family for ``hessian``.
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
        if free & (set(node.var_axes) | set(v.var_axes)):
            raise diagonal_terms(
                f"the derivative with respect to '{v.name}' of a result with free index "
                f"{', '.join(sorted(i.name for i in free if i is not graph.ROWS))} has diagonal terms "
                "(nonzero only where two indices agree), which exprgrad cannot write yet",
                v.name,
            )
        uses[v].append(node)
    return uses


def family_total(v: Node, uses: list[Node], found: dict[Node, Node]) -> Node | None:
    """The derivative with respect to ``v``: its uses' adjoints, each renamed to v's indices."""
    parts = []
    for use in uses:
        adj = found.get(use)
        if adj is None:
            continue
        if use is not v:
            adj = build.rename(adj, dict(zip(use.var_axes, v.var_axes, strict=True)))
        parts.append(adj)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else build.add(*parts)


def diagonal_terms(message: str, family: str) -> OptionError:
    """The error for a derivative that needs a Kronecker delta between two
    indices (not writable yet); ``family`` names the variable, for hessian."""
    error = OptionError(message)
    error.diagonal_family = family
    return error


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
