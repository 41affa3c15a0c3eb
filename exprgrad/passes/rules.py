"""The laws simplify applies, as data, and the matcher of their patterns.

In: nothing at import but the registry, whose entries say how an op reads as
a linear combination (``linear_form``: add, sub, neg) or as a product of
powers (``power_form``: mul, div, pow, sqrt). Out: ``linear_form`` and
``power_form`` of a node (a leaf has neither), the node rewrite rules (RULES),
the rules over the factors of one product (PRODUCT_RULES) and over the terms
of one sum (SUM_RULES); and ``match``/``match_factors``, which find a pattern
in a node or among the factors of a product. Each law is one line, with a
trailing comment stating it.
Must not: build nodes (rewrites are instantiated by the simplifier, through
the ``build`` callback), evaluate, or recurse on graph depth (``match``
recurses on the pattern only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..graph import Node
from ..ops import (
    ABS,
    ADD,
    COS,
    COSH,
    EXP,
    LOG,
    MEAN,
    NEG,
    POW,
    SIGMOID,
    SIN,
    SINH,
    SOFTPLUS,
    SQRT,
    SUM,
    TAN,
    TANH,
)
from .coefficients import is_integer, is_number_const

# ---------------------------------------------------------------- forms


def linear_form(node: Node) -> tuple | None:
    """The registry's ``linear_form`` of ``node``'s op: (1, -1) for x - y, (-1,)
    for -x, None for a sum (every operand +1), () for a leaf or any other op."""
    return () if node.is_leaf else node.op.linear_form


def power_form(node: Node) -> tuple | str | None:
    """The registry's ``power_form`` of ``node``'s op: (1, -1) for x/y, (1/2,) for
    sqrt(x), ops.POWER_FORM for x^y, None for a product, () for a leaf or any other op."""
    return () if node.is_leaf else node.op.power_form


# ---------------------------------------------------------------- rewrite rules
# (pattern, rewrite). In patterns, capitals are variables, numbers match
# unnamed constants, tuples are (op, operand patterns...); the operands of a
# commutative op match in either order. Tried on every rebuilt node.
# fmt: off
RULES: list[tuple] = [
    # exp and log are inverse
    ((LOG, (EXP, "U")), "U"),  # log(exp(u)) -> u
    ((EXP, (LOG, "U")), "U"),  # exp(log(u)) -> u   (log(u) is undefined for u < 0)
    # even and odd functions
    ((COS, (NEG, "U")), (COS, "U")),  # cos(-u) -> cos(u)
    ((COSH, (NEG, "U")), (COSH, "U")),  # cosh(-u) -> cosh(u)
    ((ABS, (NEG, "U")), (ABS, "U")),  # |-u| -> |u|
    ((SIN, (NEG, "U")), (NEG, (SIN, "U"))),  # sin(-u) -> -sin(u)
    ((TAN, (NEG, "U")), (NEG, (TAN, "U"))),  # tan(-u) -> -tan(u)
    ((SINH, (NEG, "U")), (NEG, (SINH, "U"))),  # sinh(-u) -> -sinh(u)
    ((TANH, (NEG, "U")), (NEG, (TANH, "U"))),  # tanh(-u) -> -tanh(u)
    # absolute values and roots
    ((ABS, (ABS, "U")), (ABS, "U")),  # ||u|| -> |u|
    ((SQRT, (POW, "U", 2)), (ABS, "U")),  # sqrt(u^2) -> |u|
]
# fmt: on

EXP_U = (EXP, "U")
ONE_PLUS_EXP_U = (ADD, 1, (EXP, "U"))

# Rules over the factors of one product: ([(pattern, exponent), ...] found
# among the factors) -> [(rewrite, exponent), ...] put in their place; a
# factor with a larger integer power of the same sign matches too and keeps
# the rest (exp(u)^2/(1 + exp(u)) -> exp(u)*sigmoid(u)). The
# factors of an inner product are rewritten before an outer one sees them
# (1/(1 + exp(u)) is sigmoid(-u) by then), hence the third rule.
# fmt: off
PRODUCT_RULES: list[tuple] = [
    ([(EXP_U, 1), (ONE_PLUS_EXP_U, -1)], [((SIGMOID, "U"), 1)]),  # exp(u)/(1 + exp(u)) -> sigmoid(u)
    ([(ONE_PLUS_EXP_U, -1)], [((SIGMOID, (NEG, "U")), 1)]),  # 1/(1 + exp(u)) -> sigmoid(-u)
    ([(EXP_U, 1), ((SIGMOID, ("=", (NEG, "U"))), 1)], [((SIGMOID, "U"), 1)]),  # exp(u)*sigmoid(-u) -> sigmoid(u)
    ([((SIN, "U"), 1), ((COS, "U"), -1)], [((TAN, "U"), 1)]),  # sin(u)/cos(u) -> tan(u)
    ([((SINH, "U"), 1), ((COSH, "U"), -1)], [((TANH, "U"), 1)]),  # sinh(u)/cosh(u) -> tanh(u)
]
# fmt: on

# Laws A + s*B = R over the terms of one sum: ((A, a), (B, b), s, R), A a
# pattern and B a template of factors with exponents a and b, R a number or
# a template. For any rest (a product of other factors, or 1):
#   c*rest*A^a + s*c*rest*B^b -> c*rest*R
#   c*R*rest - c*rest*A^a -> s*c*rest*B^b        (R a number)
# fmt: off
# Reductions over an index i (not rows) that are linear, by op. Laws, each
# valid for every value:
#     sum[i](0) -> 0, mean[i](0) -> 0
#     sum[i](c*u) -> c*sum[i](u), mean[i](c*u) -> c*mean[i](u)   (c free of i)
#     sum[i](u/size(i)) -> mean[i](u), sum[i](u)/size(i) -> mean[i](u)
# The value is the reduction sum[i](u)/size(i) becomes (None: no such law).
# logsumexp[i] is not linear and is absent: nothing comes out of it.
REDUCTION_LAWS: dict = {SUM: MEAN, MEAN: None}

SUM_RULES: list[tuple] = [
    (((SIGMOID, "U"), 1), ((SIGMOID, (NEG, "U")), 1), 1, 1),  # sigmoid(u) + sigmoid(-u) -> 1 ; 1 - sigmoid(u) -> sigmoid(-u)
    (((SOFTPLUS, "U"), 1), ((SOFTPLUS, (NEG, "U")), 1), -1, "U"),  # softplus(u) - softplus(-u) -> u
    (((SIN, "U"), 2), ((COS, "U"), 2), 1, 1),  # sin(u)^2 + cos(u)^2 -> 1 ; 1 - sin(u)^2 -> cos(u)^2
    (((COS, "U"), 2), ((SIN, "U"), 2), 1, 1),  # cos(u)^2 + sin(u)^2 -> 1 ; 1 - cos(u)^2 -> sin(u)^2
    (((COSH, "U"), 2), ((SINH, "U"), 2), -1, 1),  # cosh(u)^2 - sinh(u)^2 -> 1 ; 1 - cosh(u)^2 -> -sinh(u)^2
    (((SINH, "U"), 2), ((COSH, "U"), 2), -1, -1),  # sinh(u)^2 - cosh(u)^2 -> -1 ; 1 + sinh(u)^2 -> cosh(u)^2
    (((COSH, "U"), -2), ((TANH, "U"), 2), 1, 1),  # 1/cosh(u)^2 + tanh(u)^2 -> 1 ; 1 - 1/cosh(u)^2 -> tanh(u)^2
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
    if isinstance(op, str):  # "=", the only marker that is not an op
        return build is not None and build(parts[0], bound) is node
    if node.op is not op or len(node.inputs) != len(parts):
        return False
    orders = [node.inputs]
    if op.commutative and len(parts) == 2:
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
