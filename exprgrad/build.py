"""The checked node builders: every graph node is made here.

In: registry entries (``ops.ADD``; ``call`` also takes a name) and operand
nodes. Out: interned ``Node``s, with the cheap algebra done as they are built
(constant folding, identities such as x+0, x*1, x*0, x^1, x^0, --x, and a
canonical order of commutative operands), and the stable forms of the
logistic and normal log-likelihoods. The one owner of signs: ``neg`` is what
-u is, and ``split_sign`` the one reading of a node as a sign and a magnitude.

Indices: elementwise builders broadcast (``graph.apply`` gives a node the
union of its operands' indices); ``reduce`` builds sum, mean and logsumexp
over one index, ``rename`` renames free indices.

Must not: evaluate anything but constant folding, print, or recurse on graph depth.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable

import numpy as np

from . import graph, ops
from .errors import NameResolutionError
from .graph import Node
from .ops import OpSpec

_BOOLEAN_OPS = frozenset(spec for spec in ops.OPS.values() if spec.boolean)

ZERO = graph.const(0.0)
ONE = graph.const(1.0)
MINUS_ONE = graph.const(-1.0)


def const(value: float) -> Node:
    """A numeric constant node."""
    return graph.const(value)


def named_const(name: str) -> Node:
    """``pi`` or ``e``: kept symbolic in printed output, a float when evaluated."""
    return graph.const(ops.CONSTANTS[name], name)


def _foldable(*nodes: Node) -> bool:
    # Named constants (pi) stay symbolic.
    for n in nodes:
        if n.op is not graph.CONST or n.name is not None:
            return False
    return True


def _is(node: Node, value: float) -> bool:
    return node.is_const and node.name is None and node.value == value


def _fold(spec: OpSpec, args: tuple[Node, ...]) -> Node | None:
    with np.errstate(all="ignore"):
        value = float(spec.kernel(*(a.value for a in args)))
    if math.isfinite(value) and (value == int(value) or len(repr(value)) <= 8):
        return graph.const(value)
    return None


_SORT_KEY = operator.attrgetter("sort_key")


def _ordered(nodes) -> tuple[Node, ...]:
    return tuple(sorted(nodes, key=_SORT_KEY))


def add(*terms: Node) -> Node:
    """x0 + x1 + ...: zeros dropped, constants folded, operands in canonical order."""
    if len(terms) == 1:
        return terms[0]
    kept, total = [], 0.0
    for term in terms:
        if _foldable(term):
            total += term.value
        else:
            kept.append(term)
    if total != 0.0 or not kept:
        kept.append(graph.const(total))
    if len(kept) == 1:
        return kept[0]
    if len(kept) == 2:
        a, b = kept
        if a.op is ops.WHERE and b.op is ops.WHERE and a.inputs[0] is b.inputs[0]:
            # where(c, u, 0) + where(c, 0, v) -> where(c, u, v): the derivative of a where
            _, u1, v1 = a.inputs
            _, u2, v2 = b.inputs
            return where(a.inputs[0], add(u1, u2), add(v1, v2))
        # x + (-y) is x - y: simpler to read and to differentiate.
        if b.op is ops.NEG and a.op is not ops.NEG:
            return sub(a, b.inputs[0])
        if a.op is ops.NEG and b.op is not ops.NEG:
            return sub(b, a.inputs[0])
    return graph.apply(ops.ADD, _ordered(kept))


def sub(x: Node, y: Node) -> Node:
    """x - y: x - 0 -> x, 0 - y -> -y, x - x -> 0, x - (-y) -> x + y."""
    if _is(y, 0.0):
        return x
    if _is(x, 0.0):
        return neg(y)
    if x is y:
        return ZERO
    if _foldable(x, y):
        return graph.const(x.value - y.value)
    if y.op is ops.NEG:
        return add(x, y.inputs[0])
    if _is(x, 1.0) and not y.is_leaf and y.op.complement is not None:
        # 1 - normcdf(u) -> normcdf(-u), 1 - erf(u) -> erfc(u), 1 - erfc(u) -> erf(u):
        # the tail keeps its digits instead of rounding to 0.
        name, negate = y.op.complement
        u = y.inputs[0]
        return call(name, neg(u) if negate else u)
    if _foldable(y) and y.value < 0:
        return add(x, graph.const(-y.value))
    return graph.apply(ops.SUB, (x, y))


def neg(x: Node) -> Node:
    """-x: constants folded, --x -> x, -(a - b) -> b - a."""
    if _foldable(x):
        return graph.const(-x.value)
    if x.op is ops.NEG:
        return x.inputs[0]
    if x.op is ops.SUB:
        return sub(x.inputs[1], x.inputs[0])
    return graph.apply(ops.NEG, (x,))


def mul(*factors: Node) -> Node:
    """x0 * x1 * ...: x*0 -> 0, x*1 -> x, constants folded, signs pulled out front.

    A factor where(c, u, 0) becomes the outer where(c, u*rest, 0) (see ``_masked``).
    """
    return _mul(factors, True)


def _mul(factors, lift: bool) -> Node:
    if len(factors) == 1:
        return factors[0]
    kept, coefficient, negative = [], 1.0, False
    for factor in factors:
        if _foldable(factor):
            coefficient *= factor.value
        elif factor.op is ops.NEG:
            negative = not negative
            kept.append(factor.inputs[0])
        else:
            kept.append(factor)
    if coefficient == 0.0:
        return ZERO
    if coefficient < 0:
        coefficient, negative = -coefficient, not negative
    if coefficient != 1.0 or not kept:
        kept.append(graph.const(coefficient))
    masked = _masked(kept) if lift else None
    if masked is not None:
        node = masked
    else:
        node = kept[0] if len(kept) == 1 else graph.apply(ops.MUL, _ordered(kept))
    return neg(node) if negative else node


def _exponents(x: Node) -> list[Node] | None:
    """[u0, u1, ...] when x is exp(u0) + exp(u1) + ... (a 1 counts as exp(0)), else None."""
    if x.op is not ops.ADD:
        return None
    exponents = []
    for term in x.inputs:
        if term.op is ops.EXP:
            exponents.append(term.inputs[0])
        elif _is(term, 1.0):
            exponents.append(ZERO)
        else:
            return None
    return exponents


def softmax(u: Node, exponents: list[Node]) -> Node:
    """exp(u)/(exp(u0) + exp(u1) + ...) in a form that never overflows.

    Two terms, one of them u: sigmoid(u - v). More, u among them:
    exp(-logsumexp(0, v - u, ...)), the weight from differences (exactly 1/2
    for a tie however large u is). Otherwise exp(u - logsumexp(u0, u1, ...)).
    """
    if u in exponents:
        others = list(exponents)
        others.remove(u)
        if len(others) == 1:
            return call(ops.SIGMOID, sub(u, others[0]))
        return call(ops.EXP, neg(call(ops.LOGSUMEXP, ZERO, *(sub(v, u) for v in others))))
    return call(ops.EXP, sub(u, call(ops.LOGSUMEXP, *exponents)))


def _mask(node: Node) -> tuple[Node, Node, bool] | None:
    """(c, u, zero_first) when node is where(c, u, 0) or where(c, 0, u)."""
    if node.op is ops.WHERE:
        c, a, b = node.inputs
        if _is(b, 0.0):
            return c, a, False
        if _is(a, 0.0):
            return c, b, True
    return None


def _masked(factors: list[Node]) -> Node | None:
    """A product with a factor where(c, u, 0) as where(c, u*rest, 0).

    Equal wherever the product is defined; where c picks 0 the rest is not
    used, so a non-finite value (or derivative) of the branch not taken
    (sqrt(x) at x < 0) cannot make it nan. None: no such factor, or the only one.
    """
    if len(factors) < 2:
        return None
    masks, inner = [], []
    for factor in factors:
        mask = _mask(factor)
        if mask is None:
            inner.append(factor)
        else:
            masks.append(mask)
            inner.append(mask[1])
    if not masks:
        return None
    # All masks at once, the inner product without lifting again: building
    # never recurses on the nesting depth of the branches.
    node = _mul(inner, False)
    for c, _, zero_first in reversed(masks):
        node = where(c, ZERO, node) if zero_first else where(c, node, ZERO)
    return node


def div(x: Node, y: Node) -> Node:
    """x / y: x/1 -> x, 0/y -> 0, constants folded when exact, signs pulled out.

    exp(u)/(exp(u) + exp(v)) -> sigmoid(u - v) and exp(u)/(1 + exp(u)) ->
    sigmoid(u) (more terms: a softmax weight, see ``softmax``): equal values,
    finite where exp overflows.
    """
    if _is(y, 1.0):
        return x
    if _is(x, 0.0):
        return ZERO
    mask = _mask(x)
    if mask is not None and x.op is ops.WHERE:
        # where(c, u, 0)/y -> where(c, u/y, 0): y is not used where c picks 0
        c, u, zero_first = mask
        inner = div(u, y)
        return where(c, ZERO, inner) if zero_first else where(c, inner, ZERO)
    if x.op is ops.EXP or _is(x, 1.0):
        exponents = _exponents(y)
        if exponents is not None:
            return softmax(x.inputs[0] if x.op is ops.EXP else ZERO, exponents)
    if _foldable(x, y):
        folded = _fold(ops.DIV, (x, y))
        if folded is not None:
            return folded
    if x.op is ops.NEG:
        return neg(div(x.inputs[0], y))
    if y.op is ops.NEG:
        return neg(div(x, y.inputs[0]))
    if _is(y, -1.0):
        return neg(x)
    return graph.apply(ops.DIV, (x, y))


def pow_(x: Node, y: Node) -> Node:
    """x ^ y: x^1 -> x, x^0 -> 1, 1^y -> 1, b^k -> b for a 0-or-1 b and k > 0, constants folded when exact."""
    if _is(y, 1.0):
        return x
    if x.op in _BOOLEAN_OPS and _foldable(y) and y.value > 0:
        return x
    if _is(y, 0.0) or _is(x, 1.0):
        return ONE
    if _foldable(x, y):
        folded = _fold(ops.POW, (x, y))
        if folded is not None:
            return folded
    return graph.apply(ops.POW, (x, y))


def where(c: Node, a: Node, b: Node) -> Node:
    """where(c, a, b): a constant condition picks its branch (a nan one stays a node)."""
    if c.is_const and not math.isnan(c.value):
        return a if c.value != 0 else b
    return graph.apply(ops.WHERE, (c, a, b))


def polygamma(n: Node, x: Node) -> Node:
    """polygamma(n, x): a constant order is rounded as the kernel rounds it (a negative one gives nan)."""
    if n.is_const and math.isfinite(n.value):
        n = graph.const(float(np.rint(n.value)))
        if _foldable(x):
            folded = _fold(ops.POLYGAMMA, (n, x))
            if folded is not None:
                return folded
    return graph.apply(ops.POLYGAMMA, (n, x))


def log(x: Node) -> Node:
    """log(x), with the log-likelihoods of the logistic function built in their stable form.

    log(sigmoid(u)) -> -softplus(-u), log(1 - sigmoid(u)) -> -softplus(u),
    log(1 + exp(u)) -> softplus(u), log(exp(u)) -> u, log(1/v) -> -log(v) and
    log(exp(u)/v) -> u - log(v): equal values, and
    these stay finite where sigmoid(u) rounds to 0 or 1 or exp(u) overflows
    (the cross-entropy of a confident model), for evaluation, derivatives and fits.
    """
    if x.op is ops.SIGMOID:
        return neg(call(ops.SOFTPLUS, neg(x.inputs[0])))
    if x.op is ops.NORMCDF:  # log(normcdf(u)) -> lognormcdf(u), finite far in the tail (probit)
        return call(ops.LOGNORMCDF, x.inputs[0])
    if x.op is ops.SUB and _is(x.inputs[0], 1.0) and x.inputs[1].op is ops.SIGMOID:
        return neg(call(ops.SOFTPLUS, x.inputs[1].inputs[0]))
    if x.op is ops.ADD and len(x.inputs) == 2 and _is(x.inputs[0], 1.0) != _is(x.inputs[1], 1.0):
        other = x.inputs[1] if _is(x.inputs[0], 1.0) else x.inputs[0]
        if other.op is ops.EXP:
            return call(ops.SOFTPLUS, other.inputs[0])
    if x.op is ops.EXP:
        return x.inputs[0]
    exponents = _exponents(x)
    if exponents is not None and len(exponents) > 1:
        # log(exp(u) + exp(v) + ...) -> logsumexp(u, v, ...): no overflow.
        return call(ops.LOGSUMEXP, *exponents)
    if x.op is ops.DIV and (_is(x.inputs[0], 1.0) or x.inputs[0].op is ops.EXP):
        # log(1/v) -> -log(v), log(exp(u)/v) -> u - log(v): equal wherever
        # either side is defined (the numerator is positive), so
        # log(exp(u)/(1 + exp(u))) is u - softplus(u)
        top = ZERO if _is(x.inputs[0], 1.0) else x.inputs[0].inputs[0]
        return sub(top, log(x.inputs[1]))
    if _foldable(x):
        folded = _fold(ops.LOG, (x,))
        if folded is not None:
            return folded
    return graph.apply(ops.LOG, (x,))


_BUILDERS: dict[OpSpec, Callable[..., Node]] = {
    ops.ADD: add,
    ops.LOG: log,
    ops.SUB: sub,
    ops.MUL: mul,
    ops.DIV: div,
    ops.NEG: neg,
    ops.POW: pow_,
    ops.WHERE: where,
    ops.POLYGAMMA: polygamma,
}


def call(op: OpSpec | str, *args: Node) -> Node:
    """The node ``op(*args)`` for any registry entry (or its name, as users write it), arity checked.

    Raises:
        NameResolutionError: ``op`` is a name that is not in the registry.
        ArityError: the number of arguments does not fit.
    """
    spec = op if isinstance(op, OpSpec) else ops.OPS.get(op)
    if spec is None:
        raise NameResolutionError(f"unknown operation '{op}'")
    ops.check_arity(spec, len(args))
    builder = _BUILDERS.get(spec)
    if builder is not None:
        return builder(*args)
    if _foldable(*args) and not spec.reduction:
        folded = _fold(spec, args)
        if folded is not None:
            return folded
    if spec.averages and not args[0].per_row:
        return args[0]  # the mean of a value that is the same in every row is that value
    if spec.reduction:
        return graph.apply(spec, args, axis=graph.ROWS)
    return graph.apply(spec, args)


def reduce(op: OpSpec, body: Node, axis) -> Node:
    """``op`` (``ops.SUM``, ``ops.MEAN`` or ``ops.LSE``) of ``body`` over ``axis``.

    ``axis`` is an ``Index`` or several: ``reduce(SUM, e, (j, k))`` nests in
    canonical order, the first index outermost (sum[j](sum[k](e))); sum, mean and
    logsumexp over several indices are each that nesting.

    Over ROWS this is exactly ``call(op, body)`` (today's row reductions). Over
    another index, laws valid for every value are applied as it is built:
    a body without the index is not reduced (sum: size(j)*body, mean: body,
    logsumexp: body + log(size(j))); sum and mean pull out factors free of
    the index (sum[j](c*u) -> c*sum[j](u)) and signs; sum[j](0) -> 0. The
    builder does not refuse a missing index: lowering refuses it for users.
    """
    if not isinstance(axis, graph.Index):
        node = body
        for i in reversed(graph.canonical(axis)):
            node = reduce(op, node, i)
        return node
    if axis is graph.ROWS:
        return call(op, body)
    if axis not in body.indices:
        if op is ops.SUM:
            return mul(graph.size(axis), body)
        if op is ops.LSE:
            return add(body, log(graph.size(axis)))
        return body
    if op is not ops.LSE:
        sign, body = split_sign(body)
        if body.op is ops.MUL:
            free = [f for f in body.inputs if axis not in f.indices]
            if free:
                bound = [f for f in body.inputs if axis in f.indices]
                node = mul(*free, graph.apply(op, (mul(*bound),), axis=axis))
                return neg(node) if sign < 0 else node
        node = graph.apply(op, (body,), axis=axis)
        return neg(node) if sign < 0 else node
    return graph.apply(op, (body,), axis=axis)


def _index_names(roots) -> set[str]:
    """Every index name the graphs of ``roots`` use (free, bound or sized)."""
    found = set()
    for node in graph.toposort(roots):
        found.update(i.name for i in node.indices)
        if node.axis is not None:
            found.add(node.axis.name)
    return found


def _refers(node: Node, axis: graph.Index) -> bool:
    """Whether ``axis`` is free in ``node`` or sized in it (size(axis))."""
    if axis in node.indices:
        return True
    return any(n.op is graph.SIZE and n.axis is axis for n in graph.toposort([node]))


def fresh_index(base: graph.Index, taken: set[str]) -> graph.Index:
    """``base``'s name with the smallest number suffix not in ``taken`` (j -> j2, j3, ...)."""
    number = 2
    while f"{base.name}{number}" in taken:
        number += 1
    return graph.index(f"{base.name}{number}")


def rename(node: Node, mapping: dict) -> Node:
    """``node`` with its FREE indices renamed by ``mapping`` ({Index: Index}).

    Only nodes that refer to a renamed index (free, or through ``size``) are
    rebuilt; a reduction over j keeps its bound j when j is renamed. A bound
    index that a renamed index would be captured by (renaming k -> j inside
    sum[j](W[k,j]*x[j])) is renamed first to a fresh name. Iterative on graph
    depth (an explicit stack); the rebuilt nodes go through the builders.
    """
    start = tuple(sorted(((k, v) for k, v in mapping.items() if k is not v), key=lambda kv: kv[0].key))
    if not start:
        return node
    done: dict = {}
    stack = [(node, start, False)]
    while stack:
        n, m, expanded = stack.pop()
        if (n, m) in done:
            continue
        if not m:
            done[(n, m)] = n
            continue
        table = dict(m)
        if n.is_leaf:
            if n.op is graph.VAR and n.var_axes:
                axes = tuple(table.get(i, i) for i in n.var_axes)
                done[(n, m)] = graph.var(n.name, axes, per_row=n.per_row) if axes != n.var_axes else n
            elif n.op is graph.SIZE and n.axis in table:
                done[(n, m)] = graph.size(table[n.axis])
            elif n.op is graph.DELTA:
                first, second = n.indices
                done[(n, m)] = graph.delta(table.get(first, first), table.get(second, second))
            else:
                done[(n, m)] = n
            continue
        inner, axis = m, n.axis
        if axis is not None and axis is not graph.ROWS:
            table.pop(axis, None)  # bound here
            if any(v is axis and _refers(n.inputs[0], key) for key, v in table.items()):
                taken = _index_names([n]) | {i.name for pair in m for i in pair}
                fresh = fresh_index(axis, taken)
                table[axis] = fresh
                axis = fresh
            inner = tuple(sorted(table.items(), key=lambda kv: kv[0].key))
        if not expanded:
            stack.append((n, m, True))
            stack.extend((c, inner, False) for c in n.inputs if (c, inner) not in done)
            continue
        inputs = tuple(done[(c, inner)] for c in n.inputs)
        if axis is n.axis and all(a is b for a, b in zip(inputs, n.inputs, strict=True)):
            done[(n, m)] = n
        elif n.axis is not None and n.axis is not graph.ROWS:
            done[(n, m)] = reduce(n.op, inputs[0], axis)
        else:
            done[(n, m)] = rebuild(n, inputs)
    return done[(node, start)]


def rebuild(node: Node, inputs: tuple[Node, ...]) -> Node:
    """``node``'s op applied to new ``inputs`` through the checked builders."""
    if node.is_leaf:
        return node
    if node.axis is not None and node.axis is not graph.ROWS:
        return reduce(node.op, inputs[0], node.axis)
    return call(node.op, *inputs)


def split_sign(node: Node) -> tuple[int, Node]:
    """(-1, u) when ``node`` is what ``neg`` makes of u (-u, or -2 for 2), else (1, node).

    The one reading of a node as a sign and a magnitude, for every pass and
    backend that moves signs (diff's signed adjoints, simplify's terms, the
    printer's a - b): a node counts as negated exactly when negating its
    magnitude builds it.
    """
    if node.is_const:
        if node.name is None and node.value < 0:
            return -1, graph.const(-node.value)
        return 1, node
    if node.op is ops.NEG and neg(node.inputs[0]) is node:
        return -1, node.inputs[0]
    return 1, node
