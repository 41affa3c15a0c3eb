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
class Indexed:
    """A member of a family: ``theta[1]`` is Indexed("theta", 1)."""

    name: str
    index: int
    span: Span


@dataclass(slots=True, eq=False)
class Negate:
    """Unary minus (``-x``); a unary plus is dropped by the parser."""

    operand: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Sum:
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
    """``name = value``."""

    name: str
    value: Expr
    span: Span


@dataclass(slots=True, eq=False)
class Program:
    """Definitions in source order, then the result expression; ``source`` is the text."""

    definitions: tuple[Definition, ...]
    result: Expr
    source: str


Expr = Number | Name | Indexed | Negate | Sum | Product | Power | Compare | Call
