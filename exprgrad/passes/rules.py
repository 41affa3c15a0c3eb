"""The laws simplify applies, as data, and the matcher of their patterns.

In: nothing at import but the registry (the sum and product ops are the
associative, commutative ones with identity 0 and 1). Out: the tables
``passes.simplify`` reads: how an op reads as a linear combination
(LINEAR_FORMS) or as a product of powers (PRODUCT_FORMS), the node rewrite
rules (RULES) and the rules over the factors of one product
(PRODUCT_RULES); and ``match``/``match_factors``, which find a pattern in a
node or among the factors of a product. Each law is one line, with a
trailing comment stating it.
Must not: build nodes (rewrites are instantiated by the simplifier, through
the ``build`` callback), evaluate, or recurse on graph depth (``match``
recurses on the pattern only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction

from .. import ops
from ..graph import Node
from .coefficients import is_integer, is_number_const

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
SQRT = "sqrt"

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
    ([(("sinh", "U"), 1), (("cosh", "U"), -1)], [(("tanh", "U"), 1)]),  # sinh(u)/cosh(u) -> tanh(u)
]
# fmt: on

# Laws A + s*B = R over the terms of one sum: ((A, a), (B, b), s, R), A a
# pattern and B a template of factors with exponents a and b, R a number or
# a template. For any rest (a product of other factors, or 1):
#   c*rest*A^a + s*c*rest*B^b -> c*rest*R
#   c*R*rest - c*rest*A^a -> s*c*rest*B^b        (R a number)
# fmt: off
SUM_RULES: list[tuple] = [
    ((("sigmoid", "U"), 1), (("sigmoid", ("neg", "U")), 1), 1, 1),  # sigmoid(u) + sigmoid(-u) -> 1 ; 1 - sigmoid(u) -> sigmoid(-u)
    ((("softplus", "U"), 1), (("softplus", ("neg", "U")), 1), -1, "U"),  # softplus(u) - softplus(-u) -> u
    ((("sin", "U"), 2), (("cos", "U"), 2), 1, 1),  # sin(u)^2 + cos(u)^2 -> 1 ; 1 - sin(u)^2 -> cos(u)^2
    ((("cos", "U"), 2), (("sin", "U"), 2), 1, 1),  # cos(u)^2 + sin(u)^2 -> 1 ; 1 - cos(u)^2 -> sin(u)^2
    ((("cosh", "U"), 2), (("sinh", "U"), 2), -1, 1),  # cosh(u)^2 - sinh(u)^2 -> 1 ; 1 - cosh(u)^2 -> -sinh(u)^2
    ((("sinh", "U"), 2), (("cosh", "U"), 2), -1, -1),  # sinh(u)^2 - cosh(u)^2 -> -1 ; 1 + sinh(u)^2 -> cosh(u)^2
    ((("cosh", "U"), -2), (("tanh", "U"), 2), 1, 1),  # 1/cosh(u)^2 + tanh(u)^2 -> 1 ; 1 - 1/cosh(u)^2 -> tanh(u)^2
    # (not 1 - tanh(u)^2 -> 1/cosh(u)^2: tanh's derivative keeps sharing tanh(u))
]
# fmt: on

# ---------------------------------------------------------------- matching


def match(pattern, node: Node, bound: dict, build: Callable | None = None) -> bool:
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
        return is_number_const(node) and node.value == pattern
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
        if all(match(p, n, trial, build) for p, n in zip(parts, inputs)):
            bound.update(trial)
            return True
    return False


def holds(exponent, e) -> bool:
    """Does x^exponent contain x^e as a factor (x^3 holds x^1; x^-2 holds x^-1)?"""
    if exponent == e:
        return True
    return is_integer(exponent) and is_integer(e) and exponent * e > 0 and abs(exponent) > abs(e)


def match_factors(
    found: list, factors: Mapping[Node, object], build: Callable
) -> tuple[dict, list[Node]] | None:
    """Find the (pattern, exponent) pairs of a PRODUCT_RULES entry among ``factors``.

    Args:
        found: the rule's [(pattern, exponent), ...].
        factors: base -> exponent of the product being built.
        build: makes a node of a template and bindings (for ``("=", template)``).

    Returns:
        (bindings, matched bases), every pair matched by a distinct factor
        whose exponent holds the pair's, or None.
    """

    def search(i: int, bound: dict, used: list[Node]):
        if i == len(found):
            return bound, used
        pattern, e = found[i]
        for base, exponent in factors.items():
            if base in used or isinstance(exponent, Node) or not holds(exponent, e):
                continue
            trial = dict(bound)
            if match(pattern, base, trial, build):
                result = search(i + 1, trial, [*used, base])
                if result is not None:
                    return result
        return None

    return search(0, {}, [])
