"""The abstract syntax tree: what the parser builds and lowering reads.

Small dataclasses with source positions, never changed after the parser
builds them (not declared frozen: frozen dataclasses are three times slower to
create, which is most of parsing a 100,000-term sum). ``eq=False`` on purpose:
comparing or hashing a 10,000-deep tree field by field would recurse, and
nothing needs structural equality of syntax (the graph owns that).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, eq=False)
class Span:
    """1-based line and column of the first character, and the width on that line."""

    line: int
    column: int
    width: int = 1


@dataclass(slots=True, eq=False)
class Number:
    value: float
    text: str
    span: Span


@dataclass(slots=True, eq=False)
class Name:
    """A bare name: a definition, a constant (pi, e), a parameter or a data column."""

    name: str
    span: Span


@dataclass(slots=True, eq=False)
class Index:
    """An index name in brackets: the j of ``w[j]``, ``sum[j](...)``, ``h[j] = ...``, ``j in 1:50``."""

    name: str
    span: Span


Subscript = int | Index
"""What stands in brackets: a label (a whole number, ``theta[0]``) or an index name (``w[j]``)."""

# The names that reduce over an index, written op[j](e): the syntax's own set,
# checked by the parser (w[j](x) is a missing operator, not a reduction).
REDUCTIONS = frozenset({"sum", "mean", "logsumexp"})


@dataclass(slots=True, eq=False)
class Indexed:
    """A family with subscripts: ``theta[1]`` is Indexed("theta", (1,)), one member;
    ``w[j]`` is Indexed("w", (Index("j"),)); ``W[k,3]`` mixes both (lowering decides)."""

    name: str
    subscripts: tuple[Subscript, ...]
    span: Span


@dataclass(slots=True, eq=False)
class Reduce:
    """``op[indices](body)``: ``sum[j](w[j]*x[j])``; op is the name written, one of
    REDUCTIONS; indices are different names; op_span covers the name alone."""

    op: str
    indices: tuple[Index, ...]
    body: Expr
    span: Span
    op_span: Span


@dataclass(slots=True, eq=False)
class Negate:
    """Unary minus (``-x``); a unary plus is dropped by the parser."""

    operand: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Additive:
    """``t0 + t1 - t2 ...`` as one flat node; signs[i] is +1 or -1, signs[0] == +1."""

    terms: tuple[Expr, ...]
    signs: tuple[int, ...]
    span: Span


@dataclass(slots=True, eq=False)
class Product:
    """``f0 * f1 / f2 ...`` as one flat node; divides[i] is True for a divisor."""

    factors: tuple[Expr, ...]
    divides: tuple[bool, ...]
    span: Span


@dataclass(slots=True, eq=False)
class Power:
    """``base ^ exponent`` (``**`` too); right-associative."""

    base: Expr
    exponent: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Compare:
    """``left op right`` for op one of < <= > >= == != (the grammar's terminal name: LT ... NE)."""

    left: Expr
    op: str
    right: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Call:
    """``name(args...)``; name_span covers the function name alone."""

    name: str
    args: tuple[Expr, ...]
    span: Span
    name_span: Span


@dataclass(slots=True, eq=False)
class Definition:
    """``name = value``, or ``name[indices] = value`` for a family defined by index
    (``h[k] = tanh(...)``); indices are different names, empty for a scalar."""

    name: str
    value: Expr
    span: Span
    indices: tuple[Index, ...] = ()


@dataclass(slots=True, eq=False)
class Declaration:
    """``index in first:last``: index takes the labels first..last (both included,
    first <= last); index_span covers the name alone."""

    index: str
    first: int
    last: int
    span: Span
    index_span: Span


@dataclass(slots=True, eq=False)
class Program:
    """Definitions in source order, then the result expression; ``source`` is the text;
    ``declarations``: the ranges declared, in source order (each before the result)."""

    definitions: tuple[Definition, ...]
    result: Expr
    source: str
    declarations: tuple[Declaration, ...] = ()


Expr = Number | Name | Indexed | Reduce | Negate | Additive | Product | Power | Compare | Call
