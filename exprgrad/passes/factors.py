"""The product simplify is building: its coefficient and its factors, base -> exponent.

In: the operands of a product, quotient, power or root, with their
exponents, from ``passes.simplify``'s ``Simplifier`` (the owner, which
reads and rebuilds nodes in normal form). Out: an exact coefficient and a
dict base -> exponent, with powers of one base combined (x^2*x -> x^3),
numeric factors folded (2*x*3 -> 6*x), integer powers of products expanded
((2*x)^2 -> 4*x^2) and the PRODUCT_RULES applied (exp(u)/(1 + exp(u)) ->
sigmoid(u)); a difference and its negation are one base ((p - 1)/(1 - p) ->
-1). A Kronecker delta is its own square (delta(k,k2)*delta(k,k2) ->
delta(k,k2)) and the other factors are read where it is nonzero, at the
same labels (``read_deltas``: delta(k,k2)*h[k2] -> delta(k,k2)*h[k]), so it
stays one factor in front. The owner assembles the result node. Also
``cancelling``: which shared operands of a product are spliced because
their factors cancel.
Must not: assemble the product node itself, print, or evaluate beyond
constant folding.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from .. import build, graph
from ..graph import Node
from .coefficients import Number, is_integer, is_number_const, numeric_power, tidy
from .rules import PRODUCT_RULES, linear_form, match_factors

if TYPE_CHECKING:
    from .simplify import Simplifier

# Integer powers of a product are expanded ((2*x)^2 -> 4*x^2) up to this exponent.
EXPAND_POWER_MAX = 64


class Factors:
    """The coefficient and the factors (base -> exponent) of a product being built."""

    def __init__(self, owner: Simplifier):
        self.owner = owner
        self.coefficient: Number = 1
        self.factors: dict[Node, object] = {}

    def add(self, base: Node, e) -> None:
        """Multiply by base^e."""
        if base.op is graph.DELTA and not isinstance(e, Node) and e > 0:
            held = self.factors.get(base)
            if held is None or (not isinstance(held, Node) and held > 0):
                self.factors[base] = 1  # delta^n -> delta: it is 0 or 1
                return
        if base in self.factors:
            self.factors[base] = self.owner.add_exponents(self.factors[base], e)  # x^2*x -> x^3
            return
        if is_integer(e) and linear_form(base) == (1, -1):
            flipped = build.neg(base)  # a - b -> b - a
            held = self.factors.get(flipped)
            if held is not None and not isinstance(held, Node):
                # (a - b)^n = (-1)^n*(b - a)^n for integer n: (p - 1)/(1 - p) -> -1
                self.coefficient = tidy(self.coefficient * (-1) ** int(e))
                self.factors[flipped] = tidy(held + e)
                return
        self.factors[base] = e

    def absorb(self, kid: Node, e, own: bool) -> None:
        """Multiply by kid^e, splicing the kid's own factors in when that is valid and cheap."""
        if isinstance(e, Node):
            self.add(kid, e)
            return
        if is_number_const(kid):
            folded = numeric_power(kid.value, e)
            if folded is not None:
                self.coefficient = tidy(self.coefficient * folded)  # 2*x*3 -> 6*x
            else:
                self.add(kid, e)
            return
        if not is_integer(e) or abs(e) > EXPAND_POWER_MAX:
            self.add(kid, e)  # (a*b)^(1/2) is not sqrt(a)*sqrt(b) for a, b < 0
            return
        c, factors = self.owner.splice_parts(kid, own)
        n = int(e)
        try:
            power = (Fraction(c) if type(c) is int else c) ** n
            scaled = tidy(self.coefficient * power)  # (2*x)^2 -> 4*x^2, (-x)^2 -> x^2
            finite = math.isfinite(float(scaled)) and scaled != 0
        except (OverflowError, ZeroDivisionError):
            finite = False
        if not finite:
            self.add(kid, e)
            return
        self.coefficient = scaled
        for base, k in factors:
            # (x^k)^n -> x^(k*n) for integer n; a symbolic k is scaled, never
            # rebuilt through the owner's op (that would recurse on its depth)
            self.add(base, tidy(k * n) if not isinstance(k, Node) else self.owner.scale(n, k))

    def read_deltas(self) -> None:
        """delta(a,b)*e(b) -> delta(a,b)*e(a): where the delta is nonzero the two labels agree,
        so the other factors read the delta's first index for its second (b is left to the delta)."""
        for delta in [base for base in self.factors if base.op is graph.DELTA]:
            if delta not in self.factors:
                continue
            first, second = delta.indices
            moved = [
                base
                for base, e in self.factors.items()
                if base is not delta
                and (second in base.indices or (isinstance(e, Node) and second in e.indices))
            ]
            if not moved or any(merges(base, first, second) for base in moved):
                continue
            for base in moved:
                e = self.factors.pop(base)
                renamed = build.rename(base, {second: first})
                self.add(renamed, build.rename(e, {second: first}) if isinstance(e, Node) else e)

    def apply_rules(self) -> None:
        """Rewrite the factors by PRODUCT_RULES until none applies."""
        fired = True
        while fired:
            fired = False
            present = {base.op for base in self.factors}
            for found, put in PRODUCT_RULES:
                if any(pattern[0] not in present for pattern, _ in found):
                    continue
                match = match_factors(found, self.factors, self.owner.instantiate)
                if match is None:
                    continue
                bound, bases = match
                for base, (_, e) in zip(bases, found):
                    left = self.factors.pop(base) - e  # exp(u)^2 holds exp(u) once more
                    if left != 0:
                        self.factors[base] = left
                for pattern, e in put:
                    self.add(self.owner.instantiate(pattern, bound), e)
                fired = True


def merges(node: Node, first: graph.Index, second: graph.Index) -> bool:
    """Whether reading ``second`` as ``first`` in ``node`` would give a variable one index twice
    (W[k,k2] -> W[k,k], which is not a family member's name): then the delta is not read into it."""
    return any(n.is_var and first in n.indices and second in n.indices for n in graph.toposort([node]))


def cancelling(owner: Simplifier, kids: list[Node], private: list[bool], limit: int) -> list[bool]:
    """``private``, with a shared kid counted private where its factors meet another kid's.

    A shared product is kept whole in its users, but when a base of it
    is also a base of another operand it is spliced (up to
    ``limit`` factors) so the two combine: (q/(4*r))/r -> q/(4*r^2),
    not q/(4*r)/r.
    """
    if all(private) or len(kids) < 2:
        return private
    bases: list[set] = []
    for kid in kids:
        _, factors = owner.parts(kid)
        bases.append({base for base, _ in factors} if len(factors) <= limit else {kid})
    seen: dict[Node, int] = {}
    for found in bases:
        for base in found:
            seen[base] = seen.get(base, 0) + 1
    return [own or any(seen[base] > 1 for base in found) for own, found in zip(private, bases)]
