"""Signed derivative terms: a graph and its sign, kept apart while adjoints and tangents are summed.

In: nodes built by ``build`` (adjoints, tangents, partials) and linear maps
over nodes (a reduction, a renaming). Out: ``Signed`` terms (magnitude,
negated), their sums (``total``) and products with a factor (``scaled``),
and the node a term stands for (``to_node``), built with the checked
builders of ``ops``.
Must not: simplify, evaluate, print, or read a graph beyond the sign
``build.split_sign`` pulls out of a node.
"""

from __future__ import annotations

from .. import build
from ..graph import Node

# A signed graph: (magnitude, negated). Adjoints and tangents carry their sign
# beside the node, because the builders pull signs out of products: a sign
# kept inside would come back as one more neg node at every later step.
Signed = tuple[Node, bool]


def signed(node: Node) -> Signed:
    """``node`` as (magnitude, negated): -u is (u, True), as ``build.split_sign`` reads it."""
    sign, magnitude = build.split_sign(node)
    return magnitude, sign < 0


def to_node(term: Signed) -> Node:
    """The node a signed term stands for: (u, True) is -u."""
    return build.neg(term[0]) if term[1] else term[0]


def mapped(term: Signed, linear) -> Signed:
    """A linear map applied to a signed term: linear(-u) = -linear(u)."""
    magnitude, negated = signed(linear(term[0]))
    return magnitude, negated != term[1]


def scaled(term: Signed, factor: Node) -> Signed:
    """The signed term times ``factor`` (its sign pulled out again)."""
    return mapped(term, lambda u: build.mul(u, factor))


def total(terms: list[Signed]) -> Signed:
    """The sum of signed terms: add(positives) - add(negatives)."""
    plus = [u for u, negated in terms if not negated]
    minus = [u for u, negated in terms if negated]
    if not minus:
        return signed(build.add(*plus))
    if not plus:
        magnitude, negated = signed(build.add(*minus))
        return magnitude, not negated
    return signed(build.sub(build.add(*plus), build.add(*minus)))
