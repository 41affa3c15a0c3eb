"""The sum simplify is building: reading a sum, combining its terms, the sum node.

In: the signed terms of a sum, difference or negation, from
``passes.simplify``'s ``Simplifier`` (the owner, which rebuilds nodes and
the products in normal form). Out: ``sum_terms``, the terms a sum in normal
form reads as; a ``Terms``, monomial -> exact coefficient (the constant term
under the key ``build.ONE``), with like terms combined (2*a*x - a*x -> a*x),
the SUM_RULES applied (sigmoid(u) + sigmoid(-u) -> 1, 1 - sigmoid(u) ->
sigmoid(-u), softplus(u) - softplus(-u) -> u) and a product of a small sum
distributed where that lets terms combine ((1 - y)*sigmoid(u) - y*sigmoid(-u)
-> sigmoid(u) - y), which ``Terms.node`` builds into the sum node in normal
form. Also ``distribute``: a product multiplied into its sum factor where
that clears a denominator (exp(a)*(1/(exp(a) + exp(b)) - 1/exp(a)) ->
exp(a)/(exp(a) + exp(b)) - 1).
Must not: build a product itself (the owner's ``scale`` and ``assemble`` do),
print, evaluate beyond constant folding, or recurse on graph depth (every
rebuild goes through the owner, which bounds its nesting).
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from .. import build, ops
from ..graph import Node
from .coefficients import Number, is_number_const, number, tidy
from .rules import SUM_RULES, linear_form, match, power_form

if TYPE_CHECKING:
    from .simplify import Simplifier

# A product is tried distributed over a sum factor of at most this many terms,
# in sums of at most DISTRIBUTE_TERMS_MAX terms (each trial copies the sum).
DISTRIBUTE_WIDTH_MAX = 4
DISTRIBUTE_TERMS_MAX = 12

# The ops SUM_RULES look for, to skip monomials that hold none of them.
_RULE_OPS = {found[0][0] for found, *_ in SUM_RULES}


def width(node: Node) -> int:
    """An upper bound, in O(1), on the terms ``sum_terms`` reads from ``node``."""
    _, node = build.split_sign(node)
    halves = node.inputs if linear_form(node) == (1, -1) else (node,)
    return sum(len(h.inputs) if linear_form(h) is None else 1 for h in halves)


def sum_terms(node: Node) -> list[tuple[Node, Number]]:
    """The signed terms of a sum in normal form, [-](p1 + ... - (n1 + ...)).

    Reads only that fixed shape: an operand that is itself a sum there is
    a shared one kept whole, and stays one term.
    """
    sign, node = build.split_sign(node)
    halves = [(node, sign)]
    if linear_form(node) == (1, -1):  # p - n
        halves = [(half, sign * c) for half, c in zip(node.inputs, (1, -1))]
    terms = []
    for half, c in halves:
        if linear_form(half) is None:  # an n-ary sum
            terms.extend((term, c) for term in half.inputs)
        else:
            terms.append((half, c))
    return terms


class Terms:
    """The terms (monomial -> coefficient) of a sum being built; the constant is under ``build.ONE``."""

    def __init__(self, owner: Simplifier):
        self.owner = owner
        self.terms: dict[Node, Number] = {}

    def add(self, node: Node, c: Number) -> None:
        """Add c*node, a node in normal form (a sum's own terms are added one by one)."""
        if linear_form(node) not in ((-1,), ()):
            for term, ct in sum_terms(node):
                self.add_term(term, c * ct)
        else:
            self.add_term(node, c)

    def add_term(self, node: Node, c: Number) -> None:
        """Add c*node as one term (a sum kept whole stays one term)."""
        sign, node = build.split_sign(node)
        c = sign * c  # a + (-1)*b -> a - b
        if is_number_const(node):
            coefficient, monomial = number(node.value), build.ONE  # 1 + x + 2 -> x + 3
        else:
            coefficient, monomial = self.owner.split(node)
        # x + x -> 2*x ; 2*a*x - a*x -> a*x
        self.bump(monomial, c * coefficient)

    def bump(self, monomial: Node, c: Number) -> None:
        total = tidy(self.terms.get(monomial, 0) + c)
        if total == 0:
            self.terms.pop(monomial, None)  # x - x -> 0
        else:
            self.terms[monomial] = total

    # ------------------------------------------------------------ the sum node

    def node(self) -> Node:
        """The sum in normal form: p1 + ... + pk - (n1 + ... + nm), or -(n1 + ... + nm)."""
        constant = self.terms.get(build.ONE, 0)
        terms = {m: c for m, c in self.terms.items() if m is not build.ONE}
        if not terms and type(constant) is Fraction:
            return self.owner.assemble(constant, [])  # -(5/6) -> -5/6, as a product builds the number
        plus, minus = [], []
        for m, c in terms.items():
            term = self.owner.scale(c, m)
            sign, positive = build.split_sign(term)
            if sign < 0:
                minus.append(positive)
            elif c > 0 or power_form(term) != ():
                plus.append(term)  # a - (b - c)*x -> a + (c - b)*x: the sign went into a difference
            else:
                minus.append(self.owner.scale(-c, m))
        if constant > 0:
            plus.append(build.const(float(constant)))
        elif constant < 0:
            minus.append(build.const(float(-constant)))
        if not minus:
            return build.add(*plus)
        if not plus:
            if len(minus) == 1:
                return self.owner.scale(-1, minus[0])
            return build.neg(build.add(*minus))  # -a - b -> -(a + b)
        return build.sub(build.add(*plus), build.add(*minus))  # a + (-b) + (-c) -> a - (b + c)

    # ------------------------------------------------------------ sum rules

    def apply_rules(self) -> None:
        """Rewrite pairs of terms by SUM_RULES until none applies (each fires once per pair)."""
        fired = True
        while fired:
            fired = False
            for monomial in list(self.terms):
                if monomial in self.terms and self._rewrite_pair(monomial):
                    fired = True

    def _rewrite_pair(self, monomial: Node) -> bool:
        c_a = self.terms[monomial]
        _, factors = self.owner.parts(monomial)
        if not any(base.op in _RULE_OPS for base, _ in factors):
            return False
        for i, (base, e) in enumerate(factors):
            if base.op not in _RULE_OPS:
                continue
            for (pattern_a, e_a), (template_b, e_b), s, result in SUM_RULES:
                bound: dict = {}
                if e != e_a or not match(pattern_a, base, bound, self.owner.instantiate):
                    continue
                rest = factors[:i] + factors[i + 1 :]
                with_b = self._monomial(rest + [(self.owner.instantiate(template_b, bound), e_b)])
                c_b = self.terms.get(with_b)
                if c_b is not None and c_b == s * c_a:
                    # c*A + s*c*B -> c*R: sigmoid(u) + sigmoid(-u) -> 1
                    del self.terms[monomial], self.terms[with_b]
                    numeric = isinstance(result, (int, float))
                    self._add_product(rest, result if numeric else self.owner.instantiate(result, bound), c_a)
                    return True
                if not isinstance(result, (int, float)):
                    continue
                # c*r*rest - c*rest*A -> s*c*rest*B: 1 - sigmoid(u) -> sigmoid(-u)
                without = self._monomial(rest)
                c_r = self.terms.get(without)
                if c_r is not None and c_r == -result * c_a:
                    del self.terms[monomial], self.terms[without]
                    self.bump(with_b, -s * c_a)
                    return True
        return False

    def _monomial(self, factors: list) -> Node:
        """The monomial of (base, exponent) factors, powers of one base combined (as a product holds them)."""
        merged: dict[Node, object] = {}
        for base, e in factors:
            merged[base] = self.owner.add_exponents(merged[base], e) if base in merged else e
        return self.owner.assemble(1, list(merged.items())) if merged else build.ONE

    def _add_product(self, rest: list, r, c: Number) -> None:
        """Add c * rest * r, r a number or a node (a sum is spliced)."""
        if not isinstance(r, Node):
            self.add(self._monomial(rest), c * r)
        elif not rest:
            self.add(r, c)
        else:
            self.add(self.owner.op(ops.MUL, [self._monomial(rest), r]), c)

    # ------------------------------------------------------------ distribution

    def distribute(self) -> None:
        """Distribute products over small sum factors where that lets terms combine.

        A trial is kept when the sum it gives, with SUM_RULES applied, has
        fewer terms, or as many with fewer sum factors: (1 - y)*sigmoid(u) -
        y*sigmoid(-u) becomes sigmoid(u) - y*sigmoid(u) - y*sigmoid(-u), that
        is sigmoid(u) - y. Passes repeat until none is kept, so simplifying the
        result again finds nothing more to distribute; each kept trial lowers
        (terms, sum factors), so they end.
        """
        while self._distribute_pass():
            pass

    def _distribute_pass(self) -> bool:
        """One pass of ``distribute`` over the monomials; did it keep a trial?"""
        if len(self.terms) < 2 or len(self.terms) > DISTRIBUTE_TERMS_MAX:
            return False
        kept = False
        for monomial in list(self.terms):
            if monomial not in self.terms:
                continue
            c = self.terms[monomial]
            _, factors = self.owner.parts(monomial)
            for i, (base, e) in enumerate(factors):
                if e != 1 or linear_form(base) == () or width(base) > DISTRIBUTE_WIDTH_MAX:
                    continue
                rest = self._monomial(factors[:i] + factors[i + 1 :])
                trial = Terms(self.owner)
                trial.terms = dict(self.terms)
                del trial.terms[monomial]
                for term, ct in sum_terms(base):
                    trial.add(self.owner.op(ops.MUL, [rest, term]), c * ct)
                trial.apply_rules()
                if len(trial.terms) < len(self.terms) or (
                    len(trial.terms) == len(self.terms) and _sum_width(trial.terms) < _sum_width(self.terms)
                ):
                    self.terms = trial.terms
                    kept = True
                    break
        return kept


def _sum_width(terms: dict) -> int:
    """How many factors of the monomials are themselves sums (fewer reads better)."""
    return sum(1 for m in terms for f in (m.inputs if m.op is ops.MUL else (m,)) if linear_form(f) != ())


def distribute(owner: Simplifier, coefficient: Number, factors: list) -> Node | None:
    """c*rest*S^e, S a small sum and e = 1 or -1, with the factors of rest on S's side multiplied into S,
    when they clear a denominator of one of S's terms.

    exp(a)*(1/(exp(a) + exp(b)) - 1/exp(a)) -> exp(a)/(exp(a) + exp(b)) - 1;
    s*(1 - s)*(y/s - (1 - y)/(1 - s)) -> y*(1 - s) - s*(1 - y), which the sum
    then collects; u/(g^2*(d^2/g^2 + 1)) -> u/(d^2 + g^2).
    """
    if len(factors) < 2:
        return None
    for i, (base, e) in enumerate(factors):
        if e not in (1, -1) or linear_form(base) == () or width(base) > DISTRIBUTE_WIDTH_MAX:
            continue
        rest = factors[:i] + factors[i + 1 :]
        # the factors of rest on the sum's side (numerator for e = 1, denominator for -1)
        side = [(b, x * e) for b, x in rest if not isinstance(x, Node) and x * e > 0]
        held = dict(side)
        terms = sum_terms(base)
        needed: dict[Node, Number] = {}  # the largest denominator power of each held base
        for term, _ in terms:
            for b, x in owner.parts(term)[1]:
                if b in held and not isinstance(x, Node) and x < 0:
                    needed[b] = max(needed.get(b, 0), -x)
        moved = {b: min(held[b], n) for b, n in needed.items()}
        clears = any(
            b in moved and not isinstance(x, Node) and 0 < -x <= moved[b]
            for term, _ in terms
            for b, x in owner.parts(term)[1]
        )
        if not clears:
            return None  # no denominator is cleared
        inside = owner.assemble(1, list(moved.items()))
        pieces = [owner.scale(c, owner.op(ops.MUL, [inside, term])) for term, c in terms]
        others = [(b, tidy(x - e * moved[b]) if b in moved else x) for b, x in rest]
        return owner.assemble(coefficient, [*others, (owner.op(ops.ADD, pieces), e)])
    return None
