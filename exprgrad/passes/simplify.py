"""Graph -> Graph: value-preserving rewrites that make results read like a textbook.

In: output nodes, typically the raw derivative graphs ``passes.diff`` builds.
Out: nodes with the same value wherever the original is defined (up to
rounding), built only with the ``ops`` builders: sums and products flattened,
numeric coefficients collected (2*x*3 -> 6*x), like terms combined
(2*a*x - a*x -> a*x), powers of one base combined (x^2*x -> x^3), a sum's
constants folded, signs normalized, identities dropped (*1, +0, ^1) and a few
named laws applied (exp(u)/(1 + exp(u)) -> sigmoid(u)).

Must not: print, render, evaluate anything beyond constant folding, or recurse
on graph depth. One pass in ``graph.toposort`` order rebuilds every node from
its already simplified inputs, with a memo from old node to new node.

Sharing. A gradient graph shares the function's nodes, and so must its
simplified form: an input used by several nodes is spliced into its user (its
operands copied into the user's sum or product) only while it has at most
SPLICE_SHARED_MAX operands; a larger one stays a single operand of each user.
So the output is at most a constant factor larger than the input.

Normal forms the rebuild produces (and the rules rely on):
    sum      p1 + ... + pk - (n1 + ... + nm), as ``lower`` builds a - b - c,
             or -(n1 + ... + nm) when every term is negative
    term     a product without sign (the sign is the sum's)
    product  [-] num / den, num and den products of factors (ops.mul, ops.div);
             a numeric coefficient p/q puts p in num and q in den (x/2, 2*x/3);
             a sign goes into a difference factor when there is one:
             (b - a)*x, not -(a - b)*x (what parsing -(a - b)*x gives back)
    factor   base ^ exponent (ops.pow_), sqrt(base) for exponent 1/2, or an atom
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction

from .. import graph, ops
from ..graph import Node

# A shared input is spliced into each of its users only up to this many
# operands; beyond it, it stays one operand (sharing survives, size stays linear).
SPLICE_SHARED_MAX = 4
# A coefficient is kept as an exact fraction while its parts stay this small.
_FRACTION_LIMIT = 10**12
# Integer powers of a product are expanded ((2*x)^2 -> 4*x^2) up to this exponent.
_EXPAND_POWER_MAX = 64

Number = int | Fraction | float  # exact while it can be: 2, 1/3; else a float

# The associative, commutative ops with identity 0 and 1 come from the registry.
_MONOIDS = {
    spec.identity: name
    for name, spec in ops.OPS.items()
    if spec.associative and spec.commutative and spec.identity is not None
}
SUM = _MONOIDS[0.0]
PRODUCT = _MONOIDS[1.0]

# ---------------------------------------------------------------- linear laws
# How an op reads as a linear combination: op -> coefficient of each operand
# (None: every operand, however many, has coefficient 1).
LINEAR_FORMS: dict[str, tuple | None] = {
    SUM: None,  # x0 + x1 + ... : flattened, +0 dropped, constants folded
    "sub": (1, -1),  # x - y -> x + (-1)*y
    "neg": (-1,),  # -x -> (-1)*x ; so -(-x) -> x
}

# ---------------------------------------------------------------- product laws
# How an op reads as a product of powers: op -> exponent of each operand
# (None: every operand has exponent 1; POWER: operand 0 raised to operand 1).
POWER = "power"
PRODUCT_FORMS: dict[str, tuple | str | None] = {
    PRODUCT: None,  # x0 * x1 * ... : flattened, *1 dropped, coefficients collected
    "div": (1, -1),  # x / y -> x * y^(-1)
    "pow": POWER,  # x ^ y : exponents of one base add up, x^1 -> x, x^0 -> 1
    "sqrt": (Fraction(1, 2),),  # sqrt(x) -> x^(1/2)
}
# A factor with exponent 1/2 is printed back as sqrt.
_SQRT = "sqrt"

# ---------------------------------------------------------------- rewrite rules
# (pattern, rewrite). In patterns, capitals are variables, numbers match
# unnamed constants, tuples are (op, operand patterns...); the operands of a
# commutative op match in either order. Tried on every rebuilt node.
# fmt: off
RULES: list[tuple] = [
    # exp and log are inverse
    (("log", ("exp", "U")), "U"),  # log(exp(u)) -> u
    (("exp", ("log", "U")), "U"),  # exp(log(u)) -> u   (log(u) is undefined for u < 0)
    # even and odd functions
    (("cos", ("neg", "U")), ("cos", "U")),  # cos(-u) -> cos(u)
    (("cosh", ("neg", "U")), ("cosh", "U")),  # cosh(-u) -> cosh(u)
    (("abs", ("neg", "U")), ("abs", "U")),  # |-u| -> |u|
    (("sin", ("neg", "U")), ("neg", ("sin", "U"))),  # sin(-u) -> -sin(u)
    (("tan", ("neg", "U")), ("neg", ("tan", "U"))),  # tan(-u) -> -tan(u)
    (("sinh", ("neg", "U")), ("neg", ("sinh", "U"))),  # sinh(-u) -> -sinh(u)
    (("tanh", ("neg", "U")), ("neg", ("tanh", "U"))),  # tanh(-u) -> -tanh(u)
    # absolute values and roots
    (("abs", ("abs", "U")), ("abs", "U")),  # ||u|| -> |u|
    (("sqrt", ("pow", "U", 2)), ("abs", "U")),  # sqrt(u^2) -> |u|
]
# fmt: on

EXP_U = ("exp", "U")
ONE_PLUS_EXP_U = (SUM, 1, ("exp", "U"))

# Rules over the factors of one product: ([(pattern, exponent), ...] found
# among the factors) -> [(rewrite, exponent), ...] put in their place; a
# factor with a larger integer power of the same sign matches too and keeps
# the rest (exp(u)^2/(1 + exp(u)) -> exp(u)*sigmoid(u)). The
# factors of an inner product are rewritten before an outer one sees them
# (1/(1 + exp(u)) is sigmoid(-u) by then), hence the third rule.
# fmt: off
PRODUCT_RULES: list[tuple] = [
    ([(EXP_U, 1), (ONE_PLUS_EXP_U, -1)], [(("sigmoid", "U"), 1)]),  # exp(u)/(1 + exp(u)) -> sigmoid(u)
    ([(ONE_PLUS_EXP_U, -1)], [(("sigmoid", ("neg", "U")), 1)]),  # 1/(1 + exp(u)) -> sigmoid(-u)
    ([(EXP_U, 1), (("sigmoid", ("=", ("neg", "U"))), 1)], [(("sigmoid", "U"), 1)]),  # exp(u)*sigmoid(-u) -> sigmoid(u)
    ([(("sin", "U"), 1), (("cos", "U"), -1)], [(("tan", "U"), 1)]),  # sin(u)/cos(u) -> tan(u)
]
# fmt: on


# ---------------------------------------------------------------- numbers


def _number(value: float) -> Number:
    """An exact fraction for values like 2, 0.5, 0.25; a float otherwise (0.1)."""
    if not math.isfinite(value):
        return value
    if value.is_integer() and abs(value) < _FRACTION_LIMIT:
        return int(value)
    exact = Fraction(value)
    if exact.denominator <= 1024 and abs(exact.numerator) < _FRACTION_LIMIT:
        return exact
    return float(value)


def _tidy(value: Number) -> Number:
    """One representation per value: a fraction whose parts grew large becomes a
    float, a float that is a small fraction (2.5) becomes one."""
    kind = type(value)
    if kind is int:
        return value if abs(value) < _FRACTION_LIMIT else float(value)
    if kind is Fraction:
        if value.denominator == 1:
            return _tidy(value.numerator)
        if value.denominator > _FRACTION_LIMIT or abs(value.numerator) > _FRACTION_LIMIT:
            return float(value)
        return value
    return _number(float(value))


def _is_integer(e) -> bool:
    kind = type(e)
    if kind is int:
        return True
    if kind is Fraction:
        return e.denominator == 1
    return kind is float and e.is_integer()


def _numeric_power(value: float, e) -> Number | None:
    """value^e as a coefficient for an integer e; None when it is not a finite nonzero number (0^-1)."""
    if not _is_integer(e) or (value == 0 and e < 0):
        return None
    base = _number(value)
    try:
        result = _tidy((Fraction(base) if type(base) is int else base) ** int(e))  # 3^-1 is 1/3, exactly
        return result if math.isfinite(float(result)) else None
    except (OverflowError, ZeroDivisionError):
        return None


def _is_number_const(node: Node) -> bool:
    # Named constants (pi, e) stay symbolic, like the builders keep them.
    return node.is_const and node.name is None


def _as_node(e) -> Node:
    return e if isinstance(e, Node) else ops.const(float(e))


def _negated(node: Node) -> Node | None:
    """u when ``node`` is -u (an op whose linear form is (-1,)), else None."""
    form = LINEAR_FORMS.get(node.op, ())
    if form == (-1,):
        return node.inputs[0]
    return None


# ---------------------------------------------------------------- patterns


def _match(pattern, node: Node, bound: dict, build=None) -> bool:
    """Does ``node`` match ``pattern``? Extends ``bound``. Recursion is on the pattern only.

    ``("=", template)`` matches the node ``build(template, bound)`` makes from
    variables bound earlier: sigmoid(-u) is found as the node the builders
    make of -u, whatever shape that is (-(-v) is v).
    """
    if isinstance(pattern, str):
        if pattern in bound:
            return bound[pattern] is node
        bound[pattern] = node
        return True
    if isinstance(pattern, (int, float)):
        return _is_number_const(node) and node.value == pattern
    op, *parts = pattern
    if op == "=":
        return build is not None and build(parts[0], bound) is node
    if node.op != op or len(node.inputs) != len(parts):
        return False
    orders = [node.inputs]
    if ops.OPS[op].commutative and len(parts) == 2:
        orders.append(node.inputs[::-1])
    for inputs in orders:
        trial = dict(bound)
        if all(_match(p, n, trial, build) for p, n in zip(parts, inputs)):
            bound.update(trial)
            return True
    return False


class _Simplifier:
    """Rebuilds nodes into the normal forms; one instance per ``simplify_many`` call."""

    def __init__(self):
        self._parts_memo: dict[int, tuple] = {}
        self._split_memo: dict[int, tuple] = {}
        self._keep: list[Node] = []  # keeps memo keys (ids) alive

    # ------------------------------------------------------------ dispatch

    def op(self, op: str, kids: list[Node], private: Iterable[bool] | None = None) -> Node:
        """The simplified ``op(*kids)``; ``private[i]``: kid i has no other user."""
        private = list(private) if private is not None else [False] * len(kids)
        if op in LINEAR_FORMS:
            node = self._linear(op, kids, private)
        elif op in PRODUCT_FORMS:
            node = self._product(op, kids, private)
        elif ops.OPS[op].reduction:
            node = self._reduction(op, kids[0])
        else:
            node = ops.call(op, *kids)
        return self._rewrite(node)

    def _rewrite(self, node: Node) -> Node:
        for pattern, rewrite in RULES:
            bound: dict = {}
            if node.op == pattern[0] and _match(pattern, node, bound, self._instantiate):
                return self._instantiate(rewrite, bound)
        return node

    def _instantiate(self, template, bound: dict) -> Node:
        if isinstance(template, str):
            return bound[template]
        if isinstance(template, (int, float)):
            return ops.const(template)
        op, *parts = template
        return self.op(op, [self._instantiate(p, bound) for p in parts])

    # ------------------------------------------------------------ sums

    def _linear(self, op: str, kids: list[Node], private: list[bool]) -> Node:
        coefficients = LINEAR_FORMS[op] or (1,) * len(kids)
        pieces: list[tuple[Node, Number]] = []
        for kid, c, own in zip(kids, coefficients, private):
            inner = self._terms(kid)
            if own or len(inner) <= SPLICE_SHARED_MAX:
                pieces.extend((g, c * cg) for g, cg in inner)  # (a + b) + c -> a + b + c
            else:
                pieces.append((kid, c))
        terms: dict[Node, Number] = {}
        constant: Number = 0
        for node, c in pieces:
            inner = _negated(node)
            while inner is not None:  # a + (-1)*b -> a - b
                node, c = inner, -c
                inner = _negated(node)
            if _is_number_const(node):
                constant = _tidy(constant + c * _number(node.value))  # 1 + x + 2 -> x + 3
                continue
            coefficient, monomial = self._split(node)
            # x + x -> 2*x ; 2*a*x - a*x -> a*x
            terms[monomial] = _tidy(terms.get(monomial, 0) + c * coefficient)
        plus, minus = [], []
        for m, c in terms.items():
            if c == 0:
                continue  # x - x -> 0
            term = self._scale(c, m)
            positive = _negated(term)
            if positive is not None:
                minus.append(positive)
            elif c > 0 or term.op in PRODUCT_FORMS:
                plus.append(term)  # a - (b - c)*x -> a + (c - b)*x: the sign went into a difference
            else:
                minus.append(self._scale(-c, m))
        if constant > 0:
            plus.append(ops.const(float(constant)))
        elif constant < 0:
            minus.append(ops.const(float(-constant)))
        if not minus:
            return ops.add(*plus)
        if not plus:
            if len(minus) == 1:
                return self._scale(-1, minus[0])
            return ops.neg(ops.add(*minus))  # -a - b -> -(a + b)
        return ops.sub(ops.add(*plus), ops.add(*minus))  # a + (-b) + (-c) -> a - (b + c)

    def _terms(self, node: Node) -> list[tuple[Node, Number]]:
        """The signed terms of a sum in normal form, [-](p1 + ... - (n1 + ...)).

        Reads only that fixed shape: an operand that is itself a sum there is
        a shared one kept whole, and stays one term.
        """
        sign = 1
        inner = _negated(node)
        if inner is not None:
            sign, node = -sign, inner
        halves = [(node, sign)]
        if LINEAR_FORMS.get(node.op) == (1, -1):  # p - n
            halves = [(half, sign * c) for half, c in zip(node.inputs, (1, -1))]
        terms = []
        for half, c in halves:
            if LINEAR_FORMS.get(half.op, ()) is None:  # an n-ary sum
                terms.extend((term, c) for term in half.inputs)
            else:
                terms.append((half, c))
        return terms

    def _split(self, node: Node) -> tuple[Number, Node]:
        """(c, m) with node == c*m and m free of a numeric coefficient and sign."""
        if _is_number_const(node):
            return _number(node.value), ops.ONE
        cached = self._split_memo.get(id(node))
        if cached is not None:
            return cached
        coefficient, factors = self._parts(node)
        if coefficient == 1:
            result = (1, node)
        else:
            result = (coefficient, self._assemble(1, factors))
        self._split_memo[id(node)] = result
        self._keep.append(node)
        return result

    def _scale(self, c: Number, node: Node) -> Node:
        """c*node in normal form (1*x -> x, (-1)*x -> -x, -(a - b)*x -> (b - a)*x)."""
        if c == 1:
            return node
        coefficient, factors = self._parts(node)
        if len(factors) > 2 * SPLICE_SHARED_MAX:
            # Large monomials are not copied for a new coefficient: c*(m) nests.
            return self._assemble(_tidy(c * coefficient), [(self._assemble(1, factors), 1)])
        return self._assemble(_tidy(c * coefficient), factors)

    # ------------------------------------------------------------ products

    def _parts(self, node: Node) -> tuple[Number, list[tuple[Node, object]]]:
        """The coefficient and (base, exponent) factors of a node in normal form.

        Reads only the fixed shape [-] num / den, num and den products of
        factors: an operand that is itself a product there is a shared one
        kept whole, and stays one factor.
        """
        cached = self._parts_memo.get(id(node))
        if cached is not None:
            return cached
        coefficient: Number = 1
        factors: list[tuple[Node, object]] = []
        top = node
        inner = _negated(top)
        if inner is not None:
            coefficient, top = -coefficient, inner
        halves = [(top, 1)]
        if PRODUCT_FORMS.get(top.op) == (1, -1):  # num / den
            halves = list(zip(top.inputs, (1, -1)))
        for half, sign in halves:
            operands = half.inputs if half.op == PRODUCT else (half,)
            for f in operands:
                folded = _numeric_power(f.value, sign) if _is_number_const(f) else None
                if folded is not None:
                    coefficient = _tidy(coefficient * folded)
                    continue
                base, exponent = self._factor(f)
                factors.append((base, exponent if sign == 1 else self._negate_exponent(exponent)))
        result = (coefficient, factors)
        self._parts_memo[id(node)] = result
        self._keep.append(node)
        return result

    def _factor(self, f: Node) -> tuple[Node, object]:
        """(base, exponent) of one factor: x^3 -> (x, 3), sqrt(x) -> (x, 1/2), u -> (u, 1)."""
        form = PRODUCT_FORMS.get(f.op)
        if form == POWER:
            base, exponent = f.inputs
            return base, _number(exponent.value) if _is_number_const(exponent) else exponent
        if isinstance(form, tuple) and len(form) == 1:
            return f.inputs[0], form[0]
        return f, 1

    def _negate_exponent(self, e):
        return -e if not isinstance(e, Node) else self.op("neg", [e])

    def _product(self, op: str, kids: list[Node], private: list[bool]) -> Node:
        form = PRODUCT_FORMS[op]
        if form == POWER:
            base, exponent = kids
            e = _number(exponent.value) if _is_number_const(exponent) else exponent
            items = [(base, e, private[0])]
        else:
            exponents = form or (1,) * len(kids)
            items = list(zip(kids, exponents, private))
        acc = _Factors(self)
        for kid, e, own in items:
            acc.absorb(kid, e, own)
        if acc.coefficient == 0:
            return ops.ZERO  # 0*x -> 0
        acc.apply_rules()
        return self._assemble(acc.coefficient, list(acc.factors.items()))

    def _add_exponents(self, e1, e2):
        if not isinstance(e1, Node) and not isinstance(e2, Node):
            return _tidy(e1 + e2)  # x^a * x^b -> x^(a+b)
        total = self.op(SUM, [_as_node(e1), _as_node(e2)])
        return _number(total.value) if _is_number_const(total) else total

    def _power(self, base: Node, e) -> Node:
        if isinstance(e, Node):
            return ops.pow_(base, e)
        if e == 1:
            return base  # x^1 -> x
        if e == Fraction(1, 2):
            return ops.call(_SQRT, base)  # x^(1/2) -> sqrt(x)
        return ops.pow_(base, ops.const(float(e)))

    def _assemble(self, coefficient: Number, factors: list[tuple[Node, object]]) -> Node:
        """[-] num / den from a coefficient and (base, exponent) factors."""
        num: list[Node] = []
        den: list[Node] = []
        for base, e in factors:
            if not isinstance(e, Node) and e == 0:
                continue  # x^0 -> 1
            folded = _numeric_power(base.value, e) if _is_number_const(base) else None
            if folded is not None:
                coefficient = _tidy(coefficient * folded)  # 2^3 -> 8
                continue
            if isinstance(e, Node):
                c, m = self._split(e)
                if c < 0:  # x^(-a) -> 1/x^a
                    den.append(self._power(base, self._scale(-c, m)))
                else:
                    num.append(self._power(base, e))
            elif e > 0:
                num.append(self._power(base, e))
            else:
                den.append(self._power(base, -e))  # x^(-2) -> 1/x^2
        if coefficient == 0:
            return ops.ZERO
        negative = coefficient < 0
        coefficient = -coefficient if negative else coefficient
        if negative:
            # -(a - b)*x -> (b - a)*x: the sign goes into a difference, the form
            # parsing -(a - b)*x gives back, and one sign fewer to read.
            for i, factor in enumerate(num):
                if LINEAR_FORMS.get(factor.op) == (1, -1):
                    num[i], negative = ops.neg(factor), False
                    break
        top, bottom = _ratio(coefficient)
        if top != 1:
            num.append(ops.const(top))
        if bottom != 1:
            den.append(ops.const(bottom))  # x*(1/2) -> x/2
        node = ops.mul(*num) if num else ops.ONE
        if den:
            node = ops.div(node, ops.mul(*den) if len(den) > 1 else den[0])
        return ops.neg(node) if negative else node

    # ------------------------------------------------------------ reductions

    def _reduction(self, op: str, kid: Node) -> Node:
        # sum and mean are linear: constant factors come out, mean(2*u) -> 2*mean(u)
        c, rest = self._split(kid)
        return self._scale(c, ops.call(op, rest))


def _ratio(c: Number) -> tuple[float, float]:
    """(p, q) with c = p/q: 2 -> (2, 1); 2/3 -> (2, 3); 0.5 -> (1, 2); 0.1 -> (0.1, 1)."""
    if type(c) is int:
        return float(c), 1.0
    if type(c) is Fraction:
        return float(c.numerator), float(c.denominator)
    if 0 < c < 1 and (1 / c).is_integer():
        return 1.0, 1 / c
    return c, 1.0


def _holds(exponent, e) -> bool:
    """Does x^exponent contain x^e as a factor (x^3 holds x^1; x^-2 holds x^-1)?"""
    if exponent == e:
        return True
    return _is_integer(exponent) and _is_integer(e) and exponent * e > 0 and abs(exponent) > abs(e)


class _Factors:
    """The coefficient and the factors (base -> exponent) of a product being built."""

    def __init__(self, owner: _Simplifier):
        self.owner = owner
        self.coefficient: Number = 1
        self.factors: dict[Node, object] = {}

    def add(self, base: Node, e) -> None:
        if base in self.factors:
            self.factors[base] = self.owner._add_exponents(self.factors[base], e)  # x^2*x -> x^3
        else:
            self.factors[base] = e

    def absorb(self, kid: Node, e, own: bool) -> None:
        """Multiply by kid^e, splicing the kid's own factors in when that is valid and cheap."""
        if isinstance(e, Node):
            self.add(kid, e)
            return
        if _is_number_const(kid):
            folded = _numeric_power(kid.value, e)
            if folded is not None:
                self.coefficient = _tidy(self.coefficient * folded)  # 2*x*3 -> 6*x
            else:
                self.add(kid, e)
            return
        if not _is_integer(e) or abs(e) > _EXPAND_POWER_MAX:
            self.add(kid, e)  # (a*b)^(1/2) is not sqrt(a)*sqrt(b) for a, b < 0
            return
        c, factors = self.owner._parts(kid)
        if not own and len(factors) > SPLICE_SHARED_MAX:
            # A large shared product stays one factor: only its coefficient comes out.
            factors = [(self.owner._split(kid)[1], 1)]
        n = int(e)
        try:
            power = (Fraction(c) if type(c) is int else c) ** n
            scaled = _tidy(self.coefficient * power)  # (2*x)^2 -> 4*x^2, (-x)^2 -> x^2
            finite = math.isfinite(float(scaled)) and scaled != 0
        except (OverflowError, ZeroDivisionError):
            finite = False
        if not finite:
            self.add(kid, e)
            return
        self.coefficient = scaled
        for base, k in factors:
            # (x^k)^n -> x^(k*n) for integer n
            self.add(
                base, _tidy(k * n) if not isinstance(k, Node) else self.owner.op(PRODUCT, [ops.const(n), k])
            )

    def apply_rules(self) -> None:
        fired = True
        while fired:
            fired = False
            present = {base.op for base in self.factors}
            for found, put in PRODUCT_RULES:
                if any(pattern[0] not in present for pattern, _ in found):
                    continue
                match = self._find(found)
                if match is None:
                    continue
                bound, bases = match
                for base, (_, e) in zip(bases, found):
                    left = self.factors.pop(base) - e  # exp(u)^2 holds exp(u) once more
                    if left != 0:
                        self.factors[base] = left
                for pattern, e in put:
                    self.add(self.owner._instantiate(pattern, bound), e)
                fired = True

    def _find(self, found: list) -> tuple[dict, list[Node]] | None:
        """(bindings, matched bases) with every (pattern, exponent) a distinct factor, or None."""

        def search(i: int, bound: dict, used: list[Node]):
            if i == len(found):
                return bound, used
            pattern, e = found[i]
            for base, exponent in self.factors.items():
                if base in used or isinstance(exponent, Node) or not _holds(exponent, e):
                    continue
                trial = dict(bound)
                if _match(pattern, base, trial, self.owner._instantiate):
                    result = search(i + 1, trial, [*used, base])
                    if result is not None:
                        return result
            return None

        return search(0, {}, [])


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
        uses[id(root)] += 1
    simplifier = _Simplifier()
    memo: dict[int, Node] = {}
    for node in order:
        if node.is_leaf:
            memo[id(node)] = node
            continue
        kids = [memo[id(child)] for child in node.inputs]
        private = [uses[id(child)] <= 1 for child in node.inputs]
        memo[id(node)] = simplifier.op(node.op, kids, private)
    return [memo[id(root)] for root in roots]


def simplify(node: Node) -> Node:
    """``node`` rewritten to read like a textbook, with the same values.

    Flattens sums and products, collects numeric coefficients and like
    terms, combines powers of one base, folds constants, normalizes signs,
    drops identities, and applies the laws in RULES and PRODUCT_RULES. The
    value is unchanged wherever the original is defined (up to rounding);
    where it is not (x/x at 0), the result may be defined.

    Args:
        node: the output node of a graph.

    Returns:
        The simplified node (the same node when nothing changes).
    """
    return simplify_many([node])[0]
