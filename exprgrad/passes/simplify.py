"""Graph -> Graph: value-preserving rewrites that make results read like a textbook.

In: output nodes, typically the raw derivative graphs ``passes.diff`` builds.
Out: nodes with the same value wherever the original is defined (up to
rounding), built only with the ``ops`` builders: sums and products flattened,
numeric coefficients collected (2*x*3 -> 6*x), like terms combined
(2*a*x - a*x -> a*x), powers of one base combined (x^2*x -> x^3), a sum's
constants folded, signs normalized, identities dropped (*1, +0, ^1), common
factors cancelled ((p - 1)/(1 - p) -> -1), the laws of the functions applied
(exp(u)/(1 + exp(u)) -> sigmoid(u), sigmoid(u) + sigmoid(-u) -> 1,
softplus(u) - softplus(-u) -> u) and products distributed where that clears
a denominator or lets terms combine. This module is the rebuild engine
(``Simplifier``: the dispatch, the product normal form); the laws are data
in ``rules``, what comes out of a reduction is ``reductions``, exact
coefficient arithmetic is ``coefficients``, a product being combined is a
``factors.Factors`` and a sum (read, combined and built) a ``terms.Terms``.

Must not: print, render, evaluate anything beyond constant folding, or recurse
on graph depth. One pass in ``graph.toposort`` order rebuilds every node from
its already simplified inputs, with a memo from old node to new node; the few
nodes a rebuild builds itself nest at most NESTING_MAX deep. Time and memory
are linear in the graph: no operand list longer than SPLICE_PRIVATE_MAX is
copied into another node.

Sharing. A gradient graph shares the function's nodes, and so must its
simplified form: an input used by several nodes is spliced into its user (its
operands copied into the user's sum or product) only while it has at most
SPLICE_SHARED_MAX operands (or, in a product, where its factors cancel with
another operand's); a larger one stays a single operand of each user. So the
output is at most a constant factor larger than the input.

Normal forms the rebuild produces (and the rules rely on):
    sum      p1 + ... + pk - (n1 + ... + nm), as ``lower`` builds a - b - c,
             or -(n1 + ... + nm) when every term is negative
    term     a product without sign (the sign is the sum's)
    product  [-] num / den, num and den products of factors (build.mul, build.div);
             a numeric coefficient p/q puts p in num and q in den (x/2, 2*x/3);
             a sign goes into a difference factor when there is one:
             (b - a)*x, not -(a - b)*x (what parsing -(a - b)*x gives back)
    factor   base ^ exponent (build.pow_), sqrt(base) for exponent 1/2, or an atom
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from .. import build, graph, ops
from ..graph import Node
from ..ops import OpSpec
from .coefficients import Number, as_node, is_number_const, number, numeric_power, ratio, tidy
from .factors import Factors, cancelling
from .reductions import averaged, reduce_over, reduce_rows, reduced
from .rules import RULES, linear_form, match, power_form
from .terms import Terms, distribute, sum_terms, width

# A shared input is spliced into each of its users only up to this many
# operands; beyond it, it stays one operand (sharing survives, size stays linear).
SPLICE_SHARED_MAX = 4
# A private input (one user) is spliced up to this many operands. Without a
# bound, a chain of products (the derivative of sin(sin(...sin(x)))) copies
# every factor again at every level: quadratic time and memory.
SPLICE_PRIVATE_MAX = 16
# The main loop rebuilds each node from simplified inputs, but a rebuild may
# build a few nodes of its own (a rule's rewrite, a sum of exponents, a
# negated or rescaled symbolic exponent, whose own exponents are rescaled in
# turn: x^(-2*y^(-2*z))). Past this nesting such a node is built plainly by the
# builders (same value, maybe not in normal form), so nothing recurses on depth.
NESTING_MAX = 24


class Simplifier:
    """Rebuilds nodes into the normal forms; one instance per ``simplify_many`` call."""

    def __init__(self):
        self._parts_memo: dict[Node, tuple] = {}
        self._split_memo: dict[Node, tuple] = {}
        self._depth = 0  # nesting of op and scale calls, bounded by NESTING_MAX

    # ------------------------------------------------------------ dispatch

    def op(
        self,
        op: OpSpec,
        kids: list[Node],
        private: Iterable[bool] | None = None,
        axis: graph.Index | None = None,
    ) -> Node:
        """The simplified ``op(*kids)``; ``private[i]``: kid i has no other user;
        ``axis``: the index a reduction removes (None: rows)."""
        if axis is not None and axis is not graph.ROWS:
            if self._depth > NESTING_MAX:
                return build.reduce(op, kids[0], axis)
            self._depth += 1
            try:
                return reduce_over(self, op, kids[0], axis)
            finally:
                self._depth -= 1
        if self._depth > NESTING_MAX:
            return build.call(op, *kids)  # see NESTING_MAX: correct, maybe not in normal form
        private = list(private) if private is not None else [False] * len(kids)
        self._depth += 1
        try:
            if op.linear_form != ():
                node = self._linear(op, kids, private)
            elif op.power_form != ():
                node = self._product(op, kids, private)
            elif op.reduction:
                node = reduce_rows(self, op, kids[0])
            else:
                node = build.call(op, *kids)
            return self._rewrite(node)
        finally:
            self._depth -= 1

    def _rewrite(self, node: Node) -> Node:
        for pattern, rewrite in RULES:
            bound: dict = {}
            if node.op is pattern[0] and match(pattern, node, bound, self.instantiate):
                return self.instantiate(rewrite, bound)
        return node

    def instantiate(self, template, bound: dict) -> Node:
        """The simplified node a rule's ``template`` makes with the bindings ``bound``."""
        if isinstance(template, str):
            return bound[template]
        if isinstance(template, (int, float)):
            return build.const(template)
        op, *parts = template
        return self.op(op, [self.instantiate(p, bound) for p in parts])

    # ------------------------------------------------------------ sums

    def _linear(self, op: OpSpec, kids: list[Node], private: list[bool]) -> Node:
        coefficients = op.linear_form or (1,) * len(kids)
        acc = Terms(self)
        for kid, c, own in zip(kids, coefficients, private):
            if width(kid) <= (SPLICE_PRIVATE_MAX if own else SPLICE_SHARED_MAX):
                for term, ct in sum_terms(kid):
                    acc.add_term(term, c * ct)  # (a + b) + c -> a + b + c
            else:
                acc.add_term(kid, c)
        acc.distribute()
        acc.apply_rules()
        return acc.node()

    def splice_parts(self, node: Node, own: bool) -> tuple[Number, list[tuple[Node, object]]]:
        """The coefficient and the factors of ``node`` to copy into a product that uses it.

        ``own``: the product is its only user. A large shared product stays
        one factor: only its coefficient comes out.
        """
        c, factors = self.parts(node)
        if len(factors) > (SPLICE_PRIVATE_MAX if own else SPLICE_SHARED_MAX):
            factors = [(self.split(node)[1], 1)]
        return c, factors

    def split(self, node: Node) -> tuple[Number, Node]:
        """(c, m) with node == c*m and m free of a numeric coefficient and sign."""
        if is_number_const(node):
            return number(node.value), build.ONE
        cached = self._split_memo.get(node)
        if cached is not None:
            return cached
        coefficient, factors = self.parts(node)
        if coefficient == 1:
            result = (1, node)
        else:
            result = (coefficient, self.assemble(1, factors))
        self._split_memo[node] = result
        return result

    def scale(self, c: Number, node: Node) -> Node:
        """c*node in normal form (1*x -> x, (-1)*x -> -x, -(a - b)*x -> (b - a)*x)."""
        if c == 1:
            return node
        if self._depth > NESTING_MAX:
            return build.mul(build.const(float(c)), node)  # see NESTING_MAX
        self._depth += 1
        try:
            return self._scale(c, node)
        finally:
            self._depth -= 1

    def _scale(self, c: Number, node: Node) -> Node:
        coefficient, factors = self.parts(node)
        if len(factors) > 2 * SPLICE_SHARED_MAX:
            # Large monomials are not copied for a new coefficient: c*(m) nests.
            return self.assemble(tidy(c * coefficient), [(self.assemble(1, factors), 1)])
        return self.assemble(tidy(c * coefficient), factors)

    # ------------------------------------------------------------ products

    def parts(self, node: Node) -> tuple[Number, list[tuple[Node, object]]]:
        """The coefficient and (base, exponent) factors of a node in normal form.

        Reads only the fixed shape [-] num / den, num and den products of
        factors: an operand that is itself a product there is a shared one
        kept whole, and stays one factor.
        """
        cached = self._parts_memo.get(node)
        if cached is not None:
            return cached
        factors: list[tuple[Node, object]] = []
        sign, top = build.split_sign(node)
        coefficient: Number = sign
        halves = [(top, 1)]
        if power_form(top) == (1, -1):  # num / den
            halves = list(zip(top.inputs, (1, -1)))
        for half, sign in halves:
            operands = half.inputs if half.op is ops.MUL else (half,)
            for f in operands:
                folded = numeric_power(f.value, sign) if is_number_const(f) else None
                if folded is not None:
                    coefficient = tidy(coefficient * folded)
                    continue
                base, exponent = self._factor(f)
                factors.append((base, exponent if sign == 1 else self._negate_exponent(exponent)))
        result = (coefficient, factors)
        self._parts_memo[node] = result
        return result

    def _factor(self, f: Node) -> tuple[Node, object]:
        """(base, exponent) of one factor: x^3 -> (x, 3), sqrt(x) -> (x, 1/2), u -> (u, 1)."""
        form = power_form(f)
        if form == ops.POWER_FORM:
            base, exponent = f.inputs
            return base, number(exponent.value) if is_number_const(exponent) else exponent
        if isinstance(form, tuple) and len(form) == 1:
            return f.inputs[0], form[0]
        return f, 1

    def _negate_exponent(self, e):
        return -e if not isinstance(e, Node) else self.op(ops.NEG, [e])

    def _product(self, op: OpSpec, kids: list[Node], private: list[bool]) -> Node:
        form = op.power_form
        if form == ops.POWER_FORM:
            base, exponent = kids
            e = number(exponent.value) if is_number_const(exponent) else exponent
            items = [(base, e, private[0])]
        else:
            exponents = form or (1,) * len(kids)
            items = list(zip(kids, exponents, cancelling(self, kids, private, SPLICE_PRIVATE_MAX)))
        acc = Factors(self)
        for kid, e, own in items:
            acc.absorb(kid, e, own)
        if acc.coefficient == 0:
            return build.ZERO  # 0*x -> 0
        acc.read_deltas()
        acc.apply_rules()
        factors = list(acc.factors.items())
        distributed = distribute(self, acc.coefficient, factors)
        if distributed is not None:
            return distributed
        return self.assemble(acc.coefficient, factors)

    def add_exponents(self, e1, e2):
        """The exponent of x^e1 * x^e2: a number, or a simplified node."""
        if not isinstance(e1, Node) and not isinstance(e2, Node):
            return tidy(e1 + e2)  # x^a * x^b -> x^(a+b)
        total = self.op(ops.ADD, [as_node(e1), as_node(e2)])
        return number(total.value) if is_number_const(total) else total

    def _power(self, base: Node, e) -> Node:
        if isinstance(e, Node):
            return build.pow_(base, e)
        if e == 1:
            return base  # x^1 -> x
        if e == Fraction(1, 2):
            return build.call(ops.SQRT, base)  # x^(1/2) -> sqrt(x): a factor with exponent 1/2 prints as sqrt
        return build.pow_(base, build.const(float(e)))

    def assemble(self, coefficient: Number, factors: list[tuple[Node, object]]) -> Node:
        """[-] num / den from a coefficient and (base, exponent) factors."""
        factors = averaged(factors)
        num: list[Node] = []
        den: list[Node] = []
        for base, e in factors:
            if not isinstance(e, Node) and e == 0:
                continue  # x^0 -> 1
            folded = numeric_power(base.value, e) if is_number_const(base) else None
            if folded is not None:
                coefficient = tidy(coefficient * folded)  # 2^3 -> 8
                continue
            if isinstance(e, Node):
                c, m = self.split(e)
                if c < 0:  # x^(-a) -> 1/x^a
                    den.append(self._power(base, self.scale(-c, m)))
                else:
                    num.append(self._power(base, e))
            elif e > 0:
                num.append(self._power(base, e))
            else:
                den.append(self._power(base, -e))  # x^(-2) -> 1/x^2
        if coefficient == 0:
            return build.ZERO
        negative = coefficient < 0
        coefficient = -coefficient if negative else coefficient
        if negative:
            # -(a - b)*x -> (b - a)*x: the sign goes into a difference, the form
            # parsing -(a - b)*x gives back, and one sign fewer to read.
            for i, factor in enumerate(num):
                if linear_form(factor) == (1, -1):
                    num[i], negative = build.neg(factor), False
                    break
            else:
                # -mean(x*(y - s)) -> mean(x*(s - y)): a reduction is linear, and
                # the sign goes into a difference inside it
                for i, factor in enumerate(num):
                    inside = (
                        self.sign_into(factor.inputs[0])
                        if not factor.is_leaf and factor.op.reduction
                        else None
                    )
                    if inside is not None:
                        num[i], negative = reduced(factor, inside), False
                        break
        top, bottom = ratio(coefficient)
        if top != 1:
            num.append(build.const(top))
        if bottom != 1:
            den.append(build.const(bottom))  # x*(1/2) -> x/2
        node = build.mul(*num) if num else build.ONE
        if den:
            node = build.div(node, build.mul(*den) if len(den) > 1 else den[0])
        return build.neg(node) if negative else node

    def sign_into(self, node: Node) -> Node | None:
        """-node in normal form when the sign goes inside it (into a difference), else None."""
        inside = self.scale(-1, node)
        return inside if build.split_sign(inside)[0] > 0 else None


# ---------------------------------------------------------------- entry points


def simplify_many(roots: Iterable[Node]) -> list[Node]:
    """Simplify several outputs together, so nodes they share stay shared.

    Args:
        roots: output nodes (a function and its derivatives, say).

    Returns:
        The simplified nodes, in the order of ``roots``.
    """
    roots = list(roots)
    order = graph.toposort(roots)
    uses = graph.users(order)
    for root in roots:
        uses[root] += 1
    simplifier = Simplifier()
    memo: dict[Node, Node] = {}
    for node in order:
        if node.is_leaf:
            memo[node] = node
            continue
        kids = [memo[child] for child in node.inputs]
        private = [uses[child] <= 1 for child in node.inputs]
        memo[node] = simplifier.op(node.op, kids, private, node.axis)
    return [memo[root] for root in roots]


def simplify(node: Node) -> Node:
    """``node`` rewritten to read like a textbook, with the same values.

    Flattens sums and products, collects numeric coefficients and like
    terms, combines powers of one base, folds constants, normalizes signs,
    drops identities, and applies the laws in ``rules`` (RULES and
    PRODUCT_RULES). The value is unchanged wherever the original is defined
    (up to rounding); where it is not (x/x at 0), the result may be defined.

    Args:
        node: the output node of a graph.

    Returns:
        The simplified node (the same node when nothing changes).
    """
    return simplify_many([node])[0]
