"""Derivatives as graph-to-graph transformations: the entry points, reverse mode, Hessians.

In: an output node and the variable nodes (``var`` leaves; for ``adjoints``, any
nodes) to differentiate with respect to (``selection`` finds them from names).
Out: one derivative graph per variable (or node), built with the checked
builders of ``ops``, so (by interning) it shares every node of the function.
Must not: simplify, evaluate, print, recurse on graph depth (every walk is an
explicit loop over ``graph.toposort``), or branch on an operator's name: the
registry entry says what is needed (``partials``, ``reduction``).

What a derivative means. A scalar node has one value, a per-row node one per
data row. The derivative of the output with respect to a parameter ``a`` is
d out/d a: a scalar for a scalar output, per row (d out_i/d a) for a per-row
one. With respect to a data column ``x`` it is per row: d out/d x_i for a
scalar output, d out_i/d x_i (the diagonal of the Jacobian) for a per-row one.
A derivative that is the same in every row may come back as a scalar node.

Reverse mode and reductions. Adjoints flow backwards along the reverse
toposort, contributions summed with ``build.add``. A scalar node (parameter,
reduction, anything computed from scalars) has one adjoint, d out/d s (per
row when the output is). A per-row node's adjoint lives in a *scope*: a
reduction op and an optional per-row factor ``outer`` outside it (the rows of
a per-row output are the scope with no op). With g the adjoint of per-row p in
scope (op, outer), a scalar s that p uses gets

    adj(s) += outer * op(g * dp/ds)        (no op(...) for the output's rows)

and a data column x gets, per row, outer * g * op(1)/n (1 for sum, 1/n for
mean; n is the node ``sum(1)``). A reduction R = op(e) is reached after all
its users, so its adjoint A_R is complete; a scalar A_R is folded into the
seed of scope (op, no outer), a per-row one (per-row output) becomes the outer
factor of scope (op, A_R) seeded with 1. By linearity every sum reduction with
a scalar adjoint shares one scope, and every mean another: d/da mean((a*x + b
- y)^2) is mean(2*(a*x + b - y)*x), a scalar gets one reduction per scope, and
a per-row node under several reductions one adjoint per scope (at most two for
a scalar output). A reduction of a scalar (sum(a) = n*a) passes A_R * op(1).

Indices other than rows: one broadcasting rule. The contribution of node n's
adjoint to an input c is adj_n * dn/dc summed (``build.reduce``) over every
index of that product that c lacks, rows and the output's own free indices
excepted (rows are the scopes' business; the output's indices are the
Jacobian's, never summed). A reduction over an index j is an op like any
other: sum[j] passes its adjoint (it broadcasts over j by itself), mean[j]
passes adj/size(j), logsumexp[j](e) passes adj*exp(e - logsumexp[j](e)). So
the gradient with respect to a family w[j] is one graph with free index j,
the same whatever the family's size. Every use of the family counts: w[k]
(the family under another index name) contributes its adjoint renamed k -> j.
Hessians between families rename the first derivative's free indices to fresh
names before differentiating again, so d2/dw[j]dw[j2] has two indices.
Forward mode is ``passes.forward``; a family's uses and fresh index names are
in ``passes.families``, signed terms in ``passes.signed``. A use of a family
under an index free in the output (the Hessian's renamed b[k2], the variable
b[k]) contributes delta(k, k2) times its adjoint (``graph.delta``, a Kronecker
delta leaf): so sum[j](w[j]^3) has d2/dw[j]dw[j2] = 6*delta(j, j2)*w[j].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from .. import build, graph, ops
from ..errors import DisconnectedError, OptionError
from ..graph import Node
from ..ops import OpSpec
from .families import family_total, family_uses, fresh_name, index_names
from .forward import forward
from .signed import Signed, mapped, scaled, to_node, total

MODES = ("reverse", "forward")


@dataclass(frozen=True)
class _Scope:
    """Where a per-row adjoint lives: under reduction ``op`` (None: the output's
    own rows), times a per-row ``outer`` factor (None: folded into the seed)."""

    op: OpSpec | None
    outer: Node | None

    def reduce(self, rows: Signed) -> Signed:
        """The contribution to a scalar of per-row terms ``rows`` in this scope."""
        if self.op is None:
            return rows
        reduced = mapped(rows, lambda u: build.call(self.op, u))
        return reduced if self.outer is None else scaled(reduced, self.outer)

    def row_share(self, adj: Signed) -> Signed:
        """d out/d x_i for a data column x whose adjoint here is ``adj``."""
        if self.op is None:
            return adj
        share = mapped(adj, lambda u: _row_weighted(self.op, u))
        return share if self.outer is None else scaled(share, self.outer)


def _index_reduction(node: Node) -> bool:
    """True for a reduction over an index other than rows (sum[j](e))."""
    return node.axis is not None and node.axis is not graph.ROWS and not node.is_leaf


def _partials(node: Node) -> tuple:
    """d node/d input for each input. A reduction over an index j is an
    elementwise op here: sum passes 1, mean 1/size(j), logsumexp exp(e - lse)."""
    if _index_reduction(node):
        if node.op is ops.SUM:
            return (build.ONE,)
        if node.op is ops.MEAN:
            return (build.div(build.ONE, graph.size(node.axis)),)
    return node.op.partials(node)


def _unbroadcast(term: Signed, child: Node, keep: frozenset) -> Signed:
    """``term`` summed over its indices that ``child`` lacks (rows and ``keep`` excepted)."""
    extra = [i for i in term[0].indices if i not in child.indices and i not in keep and i is not graph.ROWS]
    if not extra:
        return term
    return mapped(term, lambda u: build.reduce(ops.SUM, u, tuple(extra)))


def _row_weighted(op: OpSpec, adj: Node) -> Node:
    """adj * d op(e)/d e_i. A linear reduction treats rows alike, so it is op(1)/n."""
    whole = build.call(op, build.ONE)
    count = build.call(ops.SUM, build.ONE)  # n, the number of rows, as the graph writes it
    if whole is count:
        return adj
    if whole is build.ONE:
        return build.div(adj, count)
    return build.mul(adj, build.div(whole, count))


def _live(order: list[Node], targets: set[Node]) -> set[Node]:
    """The nodes in ``order`` that depend on a target (targets included)."""
    live = set()
    for node in order:
        if node in targets or any(child in live for child in node.inputs):
            live.add(node)
    return live


def _reverse(output: Node, targets: Sequence[Node]) -> dict[Node, Node]:
    """One backward sweep: the adjoint of each connected target.

    A target the output does not reach is missing from the result; one it
    reaches only through ops with no derivative (sign) maps to ZERO.
    """
    wanted = set(targets)
    order = graph.toposort([output])
    live = _live(order, wanted)
    found: dict[Node, Node] = {}  # stays empty when the output reaches no target
    keep = frozenset(output.indices)  # the output's own indices are never summed
    scopes: dict[tuple, _Scope] = {(None, None): _Scope(None, None)}  # the output's own rows
    # Contributions not yet summed: to scalars directly, to scalars as per-row
    # terms still to be reduced (by scope), and to per-row nodes (by scope).
    scalar_terms: dict[Node, list[Signed]] = defaultdict(list)
    pending: dict[Node, dict[tuple, list[Signed]]] = defaultdict(lambda: defaultdict(list))
    row_terms: dict[Node, dict[tuple, list[Signed]]] = defaultdict(lambda: defaultdict(list))
    seeded = row_terms[output][(None, None)] if output.per_row else scalar_terms[output]
    seeded.append((build.ONE, False))

    for node in reversed(order):
        if node not in live:
            continue
        if node.per_row:
            by_scope = row_terms.pop(node, None) or {}
            adjs = {key: total(terms) for key, terms in by_scope.items()}
            if node in wanted:
                shares = [scopes[key].row_share(adj) for key, adj in adjs.items()]
                found[node] = to_node(total(shares)) if shares else build.ZERO
            if node.is_leaf or not adjs:
                continue
            partials = _partials(node)
            for key, adj in adjs.items():
                for child, partial in zip(node.inputs, partials):
                    if partial is None or child not in live:
                        continue
                    bucket = row_terms if child.per_row else pending
                    bucket[child][key].append(_unbroadcast(scaled(adj, partial), child, keep))
            continue

        terms = scalar_terms.pop(node, [])
        for key, rows in pending.pop(node, {}).items():
            terms.append(scopes[key].reduce(total(rows)))
        adj = total(terms) if terms else None
        if node in wanted:
            found[node] = to_node(adj) if adj is not None else build.ZERO
        if node.is_leaf or adj is None:
            continue
        if node.axis is graph.ROWS:
            (child,) = node.inputs
            if child not in live:
                continue
            magnitude, negated = adj
            if not child.per_row:
                scalar_terms[child].append(scaled(adj, build.call(node.op, build.ONE)))
            elif magnitude.per_row:
                key = (node.op, magnitude)
                scopes[key] = _Scope(node.op, magnitude)
                row_terms[child][key].append((build.ONE, negated))
            else:
                key = (node.op, None)
                scopes.setdefault(key, _Scope(node.op, None))
                row_terms[child][key].append(adj)
            continue
        # A node without rows that is not a row reduction has only inputs without rows.
        for child, partial in zip(node.inputs, _partials(node)):
            if partial is not None and child in live:
                scalar_terms[child].append(_unbroadcast(scaled(adj, partial), child, keep))
    return found


def _unique_vars(wrt: Sequence[Node]) -> list[Node]:
    unique: dict[Node, None] = {}
    for node in wrt:
        if not isinstance(node, Node) or not node.is_var:
            raise TypeError(f"diff: wrt must hold variable nodes, got {node!r}")
        unique[node] = None  # an ordered set: repeats count once
    if len({v.name for v in unique}) != len(unique):
        raise TypeError("diff: a name is both a parameter and a data column in wrt")
    return list(unique)


def diff(
    output: Node,
    wrt: Sequence[Node],
    *,
    mode: str = "reverse",
    strict: bool = False,
) -> dict[str, Node]:
    """The partial derivatives of ``output`` with respect to each of ``wrt``.

    Args:
        output: the function's graph (scalar or per-row).
        wrt: variable nodes (parameters or data columns); repeats count once.
        mode: "reverse" (one backward sweep for every variable) or "forward"
            (one tangent pass per variable; parameters only).
        strict: raise instead of returning 0 for a variable the output does
            not depend on.

    Returns:
        {variable name: derivative graph}, in the order of ``wrt``. Raw
        builder output that shares the function's nodes; not simplified.

    Raises:
        DisconnectedError: ``strict`` and the output does not reach a variable.
        OptionError: an unknown mode, or forward mode for a data column (its
            per-row derivative is a gradient, which needs reverse mode).
    """
    if mode not in MODES:
        raise OptionError(f"unknown differentiation mode '{mode}' (choose from {', '.join(MODES)})")
    variables = _unique_vars(wrt)
    if mode == "reverse":
        uses = family_uses(output, variables)
        found = _reverse(output, [u for v in variables for u in uses[v]])
        derivatives = {v.name: family_total(v, uses[v], found, output.indices) for v in variables}
    else:
        for v in variables:
            if v.per_row:
                raise OptionError(
                    f"forward mode differentiates with respect to parameters; '{v.name}' is a "
                    "data column, whose per-row derivative needs reverse mode"
                )
        derivatives = {v.name: forward(output, v) for v in variables}
    missing = [name for name, derivative in derivatives.items() if derivative is None]
    if strict and missing:
        raise DisconnectedError(f"the function does not depend on '{missing[0]}'")
    return {name: build.ZERO if d is None else d for name, d in derivatives.items()}


def adjoints(output: Node, nodes: Sequence[Node] | None = None) -> dict[Node, Node]:
    """The adjoints d out/d node of ``nodes`` (any nodes), from one backward sweep.

    A node is treated as ``diff`` treats a variable: ``adjoints(out, [v])[v]``
    is ``diff(out, [v])[v.name]``. A scalar node s gets d out/d s (per row for
    a per-row output). A per-row node p gets, per row i, the derivative with
    respect to p_i, p's value in row i alone (the other rows fixed), along every
    path, the reductions that read p included: d out/d p_i for a scalar output,
    d out_i/d p_i for a per-row one, as for a data column. So for p under a
    reduction in a per-row output (out = p - mean(p)) it is the diagonal of the
    n-by-n Jacobian d out_i/d p_j (here 1 - 1/n), not a sum over its rows.

    Args:
        output: the function's graph.
        nodes: the nodes wanted; None: every node of ``output``'s graph.

    Returns:
        {node: adjoint graph}, in the order of ``nodes``: ONE for the output,
        ZERO for a node it does not reach or reaches only through ops with no
        derivative (sign). Raw builder output sharing the function's nodes; a
        per-row node's adjoint may be a scalar graph (the same in every row).
    """
    wanted = graph.toposort([output]) if nodes is None else list(nodes)
    found = _reverse(output, wanted)
    return {node: found.get(node, build.ZERO) for node in wanted}


def hessian(output: Node, wrt: Sequence[Node], *, strict: bool = False) -> dict[str, dict[str, Node]]:
    """Second partial derivatives, reverse mode over reverse mode.

    Row i is one backward sweep over the graph of d out/d wrt[i] for
    wrt[i], wrt[i+1], ...; the entry for (j, i), j > i, is the same node
    object as (i, j), so each symmetric pair is built once. With a data
    column, the entries are per row (the diagonal of the n-by-n block).

    Between families, the free indices of d out/d wrt[i] are first renamed
    to names the program does not use (j -> j2), so the entry for w[j] and
    w itself is d2 out/d w[j] d w[j2], with two indices. In entry [a][b] the
    first variable keeps its indices as written and the second's that clash
    with them are fresh (d2/dW[k,j]dv[k2]; [v][W] is d2/dv[k]dW[k2,j]: the
    same values, renamed); indices that do not clash keep their names
    (d2/dw[j]dc has j, d2/dw[j]du[k] has j and k, one node for both orders).

    Returns:
        {name: {name: graph}}, both levels in the order of ``wrt``.

    A family used outside every reduction over its index has diagonal
    terms, nonzero only where two indices agree: they come with a Kronecker
    delta factor (``graph.delta``), so sum[j](w[j]^3) has d2/dw[j]dw[j2] =
    6*delta(j, j2)*w[j], printed 6*(j == j2)*w[j].

    Raises:
        DisconnectedError: ``strict`` and the output does not reach a variable.
    """
    variables = _unique_vars(wrt)
    gradient = diff(output, variables, strict=strict)
    table: dict[str, dict[str, Node]] = {v.name: {} for v in variables}
    taken = index_names([output, *variables])
    for i, first in enumerate(variables):
        renamed, mapping = _fresh_indices(gradient[first.name], output, set(taken))
        row = diff(renamed, variables[i:])
        for second in variables[i:]:
            entry = row[second.name]  # first's indices fresh, second's as written
            back = {new: old for old, new in mapping.items() if old not in second.var_axes}
            if back:
                entry = build.rename(entry, back)  # no clash with second's indices: d2/dw[j]dc keeps j
            table[second.name][first.name] = entry
            clash = {old: new for old, new in mapping.items() if old in second.var_axes}
            if clash and second is not first:
                # the first variable's indices as written, the second's fresh
                entry = build.rename(entry, {**clash, **{new: old for old, new in clash.items()}})
            table[first.name][second.name] = entry
    return table  # inserted in the order of wrt: (j, i) before (i, i) before (i, j)


def _fresh_indices(node: Node, output: Node, taken: set[str]) -> tuple[Node, dict]:
    """``node`` with its free indices that ``output`` lacks renamed to unused
    names (j -> j2), and that renaming ({old: new})."""
    mapping = {}
    for i in node.indices:
        if i is graph.ROWS or i in output.indices:
            continue
        mapping[i] = fresh_name(i, taken)
    return (build.rename(node, mapping) if mapping else node), mapping


def jacobian(residual: Node, wrt: Sequence[Node]) -> dict[str, Node]:
    """The columns of the Jacobian of a per-row ``residual``, one per variable.

    For a parameter, d residual_i/d a per row: the whole column, reductions
    inside or not (without them every adjoint stays per row and no reduction
    node is built). For a data column, the diagonal d residual_i/d x_i: the
    whole block when no reduction depends on x. An unused variable gets ZERO.
    """
    return diff(residual, wrt)
