"""Derivatives as graph-to-graph transformations: the entry points, reverse mode, Hessians.

In: an output node and the variable nodes (``var`` leaves; for ``adjoints``, any
nodes) to differentiate with respect to (``selection`` finds them from names).
Out: one derivative graph per variable (or node), built with the checked
builders of ``ops``, so (by interning) it shares every node of the function.
Must not: simplify, evaluate, print, recurse on graph depth (every walk is an
explicit loop over ``graph.toposort``), or branch on an operator's name: the
registry entry says what is needed (``partials``, ``reduction``, ``averages``).

What a derivative means. A scalar node has one value, a per-row node one per
data row. The derivative of the output with respect to a parameter ``a`` is
d out/d a: a scalar for a scalar output, per row (d out_i/d a) for a per-row
one. With respect to a data column ``x`` it is per row: d out/d x_i for a
scalar output, d out_i/d x_i (the diagonal of the Jacobian) for a per-row one.
A derivative that is the same in every row may come back as a scalar node.

Reverse mode: one rule. Adjoints flow backwards along the reverse toposort;
node n passes adj_n * dn/dc to each input c, summed over every index of n (a
reduction's own index included) that c lacks, except the output's own
indices (the Jacobian's, never summed). Rows are an index like j: sum(e) and
sum[j](e) pass their adjoint (it broadcasts over the index), mean(e) and
mean[j](e) adj/n and adj/size(j) (n is the node ``sum(1)``), logsumexp[j](e)
adj*exp(e - logsumexp[j](e)). So d/da mean((a*x + b - y)^2) is
mean(2*(a*x + b - y)*x), d/dr sum(log(r) + y) is n/r, and the gradient with
respect to a family w[j] is one graph with free index j, the same whatever
the family's size. Contributions are summed before they are reduced, each
sum once: an adjoint is kept in parts by the 1/size a mean still to be built
carries (mean(u) + mean(v) reduces as mean(u + v); a node under a sum and a
mean has one part for each). In a per-row output a row reduction reads the
other rows: before the sweep, its body reads them as a second, bound row
index (``OTHER_ROWS``), while the output's rows stay free, so the rule holds
as it is; a factor of the output's rows stays outside a sum over other rows
(d/da x*sum(a*x) is x*sum(x)); in the result a reduction over the bound rows
is a row reduction again and a free one is the output's rows: d out_i/d x_i
adds the adjoint of x's uses inside the reductions read at row i (x - mean(x)
has 1 - 1/n). Every use of a family counts: w[k] (the family under another
index name) contributes its adjoint renamed k -> j. Hessians between families
rename the first derivative's free indices to fresh names before
differentiating again, so d2/dw[j]dw[j2] has two indices.
Forward mode is ``passes.forward``; a family's uses and fresh index names are
in ``passes.families``, signed terms in ``passes.signed``. A use of a family
under an index free in the output (the Hessian's renamed b[k2], the variable
b[k]) contributes delta(k, k2) times its adjoint (``graph.delta``, a Kronecker
delta leaf): so sum[j](w[j]^3) has d2/dw[j]dw[j2] = 6*delta(j, j2)*w[j].
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .. import build, graph, ops
from ..errors import DisconnectedError, OptionError
from ..graph import Node
from .families import family_total, family_uses, fresh_name, index_names
from .forward import forward
from .signed import Signed, mapped, scaled, to_node, total

MODES = ("reverse", "forward")

# The rows a row reduction reads inside a per-row output, told apart from the
# output's own rows (no user can write this name; it never leaves ``_reverse``).
OTHER_ROWS = graph.index("#other rows")

# A part of an adjoint is kept by (means, outer): ``means``, the indices whose
# 1/size a mean still to be built carries (canonical); ``outer``, a factor of
# the output's rows that a sum over other rows leaves outside (None: none).
Key = tuple[tuple, Node | None]


def _count(axis: graph.Index) -> Node:
    """The number of labels of ``axis``: sum(1) for rows, as the graph writes n; size(j)."""
    return build.call(ops.SUM, build.ONE) if axis is graph.ROWS else graph.size(axis)


def _summed(u: Node, axis: graph.Index, average: bool) -> Node:
    """``u`` summed over ``axis`` (``average``: its mean), ``u`` maybe lacking it."""
    op = ops.MEAN if average else ops.SUM
    if axis is graph.ROWS or axis is OTHER_ROWS:
        if axis not in u.indices:
            return u if average else build.mul(u, _count(axis))  # a sum of n equal terms
        return graph.apply(op, (u,), axis=axis)  # as build.call builds a row reduction
    return build.reduce(op, u, axis)


def _partials(node: Node) -> tuple:
    """d node/d input for each input. A sum passes its adjoint as it is (it
    broadcasts over its index), a mean too (its 1/size goes into the part's
    ``means``), logsumexp its weight exp(e - logsumexp(e))."""
    if node.op.reduction and node.op.partials is None:
        return (build.ONE,)
    return node.op.partials(node)


def _value(parts: dict[Key, Signed]) -> Node:
    """The adjoint the parts stand for: each part over its means' sizes, times its outer factor."""
    terms = []
    for (means, outer), term in parts.items():
        for axis in means:
            term = mapped(term, lambda u, a=axis: build.div(u, _count(a)))
        terms.append(term if outer is None else scaled(term, outer))
    return to_node(total(terms))


def _received(groups: dict[tuple, list[Signed]]) -> dict[Key, Signed]:
    """A node's adjoint parts from its contributions, grouped by (means, outer,
    indices it lacks): each group summed, then reduced once over those indices
    (a mean over the ones in ``means``), the outer factor put back after a sum
    over other rows."""
    parts: dict[Key, list[Signed]] = defaultdict(list)
    for (means, outer, lacking), terms in groups.items():
        term = total(terms)
        for axis in reversed(lacking):  # the first index outermost, as build.reduce nests
            term = mapped(term, lambda u, a=axis, m=axis in means: _summed(u, a, m))
        if outer is not None and OTHER_ROWS in lacking:
            term, outer = scaled(term, outer), None
        parts[(tuple(i for i in means if i not in lacking), outer)].append(term)
    return {key: total(terms) for key, terms in parts.items()}


def _contribute(node: Node, parts: dict[Key, Signed], live: set, keep: tuple, incoming) -> None:
    """Pass ``node``'s adjoint parts to its live inputs: each times the partial,
    to be summed over the indices the input lacks (the output's own excepted)."""
    reduction = node.axis is not None
    domain = (*node.indices, node.axis) if reduction else node.indices
    for child, partial in zip(node.inputs, _partials(node)):
        if partial is None or child not in live:
            continue
        lacking = graph.canonical(i for i in domain if i not in child.indices and i not in keep)
        for (means, outer), (magnitude, negated) in parts.items():
            if reduction and node.op.averages:
                means = graph.canonical((*means, node.axis))
            if node.axis is OTHER_ROWS and graph.ROWS in magnitude.indices:
                # a factor of the output's rows cannot go inside a sum over other rows
                outer = magnitude if outer is None else build.mul(outer, magnitude)
                term = (partial, negated)
            else:
                term = scaled((magnitude, negated), partial)
            incoming[child][(means, outer, lacking)].append(term)


def _live(order: list[Node], targets: set[Node]) -> set[Node]:
    """The nodes in ``order`` that depend on a target (targets included)."""
    live = set()
    for node in order:
        if node in targets or any(child in live for child in node.inputs):
            live.add(node)
    return live


def _copy(node: Node, table: dict[Node, Node], inner: dict[Node, Node]) -> Node:
    """``node`` rebuilt from its inputs in ``table``; a row reduction over OTHER_ROWS,
    and in ``inner`` (a row reduction's body) a variable's rows renamed OTHER_ROWS."""
    if node.is_leaf:
        if table is inner and node.is_var and node.per_row:
            return graph.var(node.name, (OTHER_ROWS, *node.var_axes))
        return node
    if node.axis is graph.ROWS:
        # as it is, no factor pulled out: every node of the body keeps its copy
        return graph.apply(node.op, (inner[node.inputs[0]],), axis=OTHER_ROWS)
    inputs = tuple(table[c] for c in node.inputs)
    if all(a is b for a, b in zip(inputs, node.inputs, strict=True)):
        return node
    return build.rebuild(node, inputs)


def _bound(output: Node) -> tuple[Node, dict[Node, list[Node]]]:
    """A per-row output with the rows of its row reductions bound apart.

    Returns the output to sweep and, for each node, its copies there: as the
    output reads it, and inside a row reduction (rows renamed OTHER_ROWS).
    Other outputs are swept as they are: rows are an index like any other.
    """
    order = graph.toposort([output])
    bodies = [n.inputs[0] for n in order if n.axis is graph.ROWS and not n.is_leaf]
    if not output.per_row or not bodies:
        return output, {n: [n] for n in order}
    inner: dict[Node, Node] = {}
    for n in graph.toposort(bodies):
        inner[n] = _copy(n, inner, inner)
    outer: dict[Node, Node] = {}
    for n in order:
        outer[n] = _copy(n, outer, inner)
    copies: dict[Node, list[Node]] = defaultdict(list)
    for table in (outer, inner):
        for n, c in table.items():
            if c not in copies[n]:
                copies[n].append(c)
    return outer[output], copies


def _unbound(roots: list[Node]) -> dict[Node, Node]:
    """Each of ``roots`` with OTHER_ROWS back as rows: a reduction over it is a
    row reduction, a free one the output's rows (d out_i/d x_i, the Jacobian's
    diagonal, reads row i's own x)."""
    done: dict[Node, Node] = {}
    for n in graph.toposort(roots):
        if n.is_leaf:
            if n.is_var and OTHER_ROWS in n.var_axes:
                done[n] = graph.var(n.name, (graph.ROWS, *(a for a in n.var_axes if a is not OTHER_ROWS)))
            elif n.op is graph.SIZE and n.axis is OTHER_ROWS:
                done[n] = _count(graph.ROWS)
            else:
                done[n] = n
            continue
        inputs = tuple(done[c] for c in n.inputs)
        if n.axis is OTHER_ROWS:
            done[n] = build.call(n.op, inputs[0])
        elif all(a is b for a, b in zip(inputs, n.inputs, strict=True)):
            done[n] = n
        else:
            done[n] = build.rebuild(n, inputs)
    return done


def _reverse(output: Node, targets: Sequence[Node]) -> dict[Node, Node]:
    """One backward sweep: the adjoint of each connected target.

    A target the output does not reach is missing from the result; one it
    reaches only through ops with no derivative (sign) maps to ZERO.
    """
    swept, copies = _bound(output)
    wanted = {c for t in targets for c in copies.get(t, ())}
    order = graph.toposort([swept])
    live = _live(order, wanted)
    keep = output.indices  # the output's own indices are the Jacobian's, never summed
    incoming: dict[Node, dict[tuple, list[Signed]]] = defaultdict(lambda: defaultdict(list))
    incoming[swept][((), None, ())].append((build.ONE, False))
    adjoint: dict[Node, Node] = {}
    for node in reversed(order):
        if node not in live:
            continue
        groups = incoming.pop(node, None)
        parts = _received(groups) if groups else {}
        if node in wanted:
            adjoint[node] = _value(parts) if parts else build.ZERO
        if parts and not node.is_leaf:
            _contribute(node, parts, live, keep, incoming)
    if swept is not output:
        back = _unbound(list(adjoint.values()))
        adjoint = {c: back[a] for c, a in adjoint.items()}
    found: dict[Node, Node] = {}  # stays empty when the output reaches no target
    for target in targets:
        reached = [adjoint[c] for c in copies.get(target, ()) if c in adjoint]
        if reached:
            found[target] = reached[0] if len(reached) == 1 else build.add(*reached)
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
