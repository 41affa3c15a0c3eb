"""Reductions in simplify: what comes out of a sum or mean, and the mean a sum over a size is.

In: a reduction's op and its already simplified body, from ``passes.simplify``'s
``Simplifier`` (the owner, which reads and rebuilds products in normal form),
and the (base, exponent) factors of a product being assembled. Out: the
reduction node in normal form: over rows, a constant factor comes out
(mean(2*u) -> 2*mean(u)); over an index, by the laws of ``REDUCTION_LAWS``,
every factor free of the index comes out and sum[i](u)/size(i) is mean[i](u)
(``averaged`` does it among a product's factors), and a Kronecker delta of
the index with another meets its sum: sum[k2](delta(k,k2)*e) -> e with k2
read as k (mean[k2]: divided by size(k)); a sign goes into a difference
inside (-mean(x*(y - s)) -> mean(x*(s - y))).
Must not: assemble a product itself (the owner's ``scale`` and ``assemble``
do), print, evaluate beyond constant folding, or recurse on graph depth
(every rebuild goes through the owner, which bounds its nesting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import build, graph, ops
from ..graph import Node
from ..ops import OpSpec
from .factors import Factors, merges
from .rules import REDUCTION_LAWS

if TYPE_CHECKING:
    from .simplify import Simplifier


def reduce_rows(owner: Simplifier, op: OpSpec, kid: Node) -> Node:
    """sum or mean of ``kid`` over rows. Both are linear: constant factors come out (mean(2*u) -> 2*mean(u))."""
    c, rest = owner.split(kid)
    inside = owner.sign_into(rest) if c < 0 else None
    if inside is not None:
        c, rest = -c, inside  # -mean(x*(y - s)) -> mean(x*(s - y)): the sign went into a difference
    return owner.scale(c, build.call(op, rest))


def reduce_over(owner: Simplifier, op: OpSpec, kid: Node, axis: graph.Index) -> Node:
    """sum, mean or logsumexp of ``kid`` over ``axis``, by the laws of
    REDUCTION_LAWS (passes.rules): the factors free of the index come out, and
    sum[i](u)/size(i) is mean[i](u)."""
    if op not in REDUCTION_LAWS:
        return build.reduce(op, kid, axis)  # logsumexp is not linear: nothing comes out
    coefficient, factors = owner.parts(kid)
    if coefficient == 0:
        return build.ZERO  # sum[i](0) -> 0, mean[i](0) -> 0
    met = _met_delta(factors, axis)
    if met is not None:
        return _meet_delta(owner, op, coefficient, axis, met)
    inside = [(b, e) for b, e in factors if axis in b.indices or (isinstance(e, Node) and axis in e.indices)]
    outside = [f for f in factors if f not in inside]
    size = graph.size(axis)
    if REDUCTION_LAWS[op] is not None and (size, -1) in outside:
        outside.remove((size, -1))  # sum[i](u/size(i)) -> mean[i](u)
        op = REDUCTION_LAWS[op]
    if not inside:
        body = build.ONE
    else:
        body = owner.assemble(1, inside)
        if coefficient < 0:
            flipped = owner.sign_into(body)
            if flipped is not None:
                coefficient, body = -coefficient, flipped  # the sign goes into a difference inside
    node = build.reduce(op, body, axis)
    return (
        owner.assemble(coefficient, [*outside, *owner.parts(node)[1]])
        if outside
        else owner.scale(coefficient, node)
    )


def _met_delta(factors: list[tuple[Node, object]], axis: graph.Index) -> tuple | None:
    """(partner, the other factors) for a delta(axis, partner) factor of a sum over
    ``axis``; None when there is none, or reading axis as partner would give a
    variable one index twice (W[k,k2] -> W[k,k])."""
    for delta, e in factors:
        if delta.op is not graph.DELTA or axis not in delta.indices or isinstance(e, Node) or e != 1:
            continue
        (partner,) = [i for i in delta.indices if i is not axis]
        rest = [(b, x) for b, x in factors if b is not delta]
        if not any(
            merges(b, axis, partner) or (isinstance(x, Node) and merges(x, axis, partner)) for b, x in rest
        ):
            return partner, rest
    return None


def _meet_delta(owner: Simplifier, op: OpSpec, coefficient, axis: graph.Index, met: tuple) -> Node:
    """sum[k2](delta(k,k2)*e) -> e with k2 read as k; mean[k2]: divided by size(k)."""
    partner, rest = met
    acc = Factors(owner)
    for base, x in rest:
        acc.add(
            build.rename(base, {axis: partner}),
            build.rename(x, {axis: partner}) if isinstance(x, Node) else x,
        )
    if op is ops.MEAN:
        acc.add(graph.size(partner), -1)
    return owner.assemble(coefficient, list(acc.factors.items()))


def averaged(factors: list[tuple[Node, object]]) -> list[tuple[Node, object]]:
    """sum[i](u)/size(i) -> mean[i](u) among a product's (base, exponent) factors."""
    sizes = [b for b, e in factors if b.op is graph.SIZE and not isinstance(e, Node) and e == -1]
    if not sizes:
        return factors
    factors = list(factors)
    for size in sizes:
        for k, (base, e) in enumerate(factors):
            mean = REDUCTION_LAWS.get(base.op) if not base.is_leaf else None
            if mean is not None and base.axis is size.axis and not isinstance(e, Node) and e == 1:
                factors[k] = (build.reduce(mean, base.inputs[0], base.axis), 1)
                factors.remove((size, -1))
                break
    return factors


def reduced(reduction: Node, body: Node) -> Node:
    """``reduction``'s op over its own axis, applied to a new ``body``."""
    if reduction.axis is None or reduction.axis is graph.ROWS:
        return build.call(reduction.op, body)
    return build.reduce(reduction.op, body, reduction.axis)
