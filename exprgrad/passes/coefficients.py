"""Numbers for simplify: which constants count as numbers, and exact coefficient arithmetic.

In: floats (constant values, exponents) and coefficients. Out: coefficients
(``Number``: an int or an exact Fraction while the value allows, else a
float) and constant nodes built with ``build.const``. This is the constant
folding ``simplify`` does: 2*x*3 -> 6*x, 2^3 -> 8, x*(1/2) -> x/2.
Must not: read or build anything but constants, know any operator, or fold
a named constant (pi, e stay symbolic, like the builders keep them).
"""

from __future__ import annotations

import math
from fractions import Fraction

from .. import build
from ..graph import Node

# A coefficient is kept as an exact fraction while its parts stay this small.
FRACTION_LIMIT = 10**12

Number = int | Fraction | float  # exact while it can be: 2, 1/3; else a float


def number(value: float) -> Number:
    """An exact fraction for values like 2, 0.5, 0.25; a float otherwise (0.1)."""
    if not math.isfinite(value):
        return value
    if value.is_integer() and abs(value) < FRACTION_LIMIT:
        return int(value)
    exact = Fraction(value)
    if exact.denominator <= 1024 and abs(exact.numerator) < FRACTION_LIMIT:
        return exact
    return float(value)


def tidy(value: Number) -> Number:
    """One representation per value: a fraction whose parts grew large becomes a
    float, a float that is a small fraction (2.5) becomes one."""
    kind = type(value)
    if kind is int:
        return value if abs(value) < FRACTION_LIMIT else float(value)
    if kind is Fraction:
        if value.denominator == 1:
            return tidy(value.numerator)
        if value.denominator > FRACTION_LIMIT or abs(value.numerator) > FRACTION_LIMIT:
            return float(value)
        return value
    return number(float(value))


def is_integer(e) -> bool:
    """Is ``e`` (an int, Fraction or float) a whole number?"""
    kind = type(e)
    if kind is int:
        return True
    if kind is Fraction:
        return e.denominator == 1
    return kind is float and e.is_integer()


# 2^1100 already overflows a float; no finite coefficient needs more.
MAX_EXACT_EXPONENT = 1100


def numeric_power(value: float, e) -> Number | None:
    """value^e as a coefficient for an integer e; None when it is not a finite nonzero number (0^-1)."""
    if not is_integer(e) or (value == 0 and e < 0):
        return None
    # An exact power with a huge exponent (2^1e20) would take all memory;
    # past what a float can hold the coefficient is not finite anyway.
    if abs(e) > MAX_EXACT_EXPONENT and abs(value) != 1:
        return None
    base = number(value)
    try:
        result = tidy((Fraction(base) if type(base) is int else base) ** int(e))  # 3^-1 is 1/3, exactly
        return result if math.isfinite(float(result)) else None
    except (OverflowError, ZeroDivisionError):
        return None


def is_number_const(node: Node) -> bool:
    """Is ``node`` a number? Named constants (pi, e) stay symbolic, like the builders keep them."""
    return node.is_const and node.name is None


def as_node(e) -> Node:
    """An exponent as a node: a node stays, a coefficient becomes a constant."""
    return e if isinstance(e, Node) else build.const(float(e))


def ratio(c: Number) -> tuple[float, float]:
    """(p, q) with c = p/q: 2 -> (2, 1); 2/3 -> (2, 3); 0.5 -> (1, 2); 0.1 -> (0.1, 1)."""
    if type(c) is int:
        return float(c), 1.0
    if type(c) is Fraction:
        return float(c.numerator), float(c.denominator)
    if 0 < c < 1 and (1 / c).is_integer():
        return 1.0, 1 / c
    return c, 1.0
