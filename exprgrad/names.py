"""How names are ordered wherever exprgrad lists them: naturally, w2 before w10.

In: a variable name. Out: a sort key. Must not: import any other exprgrad module.

Runs of ASCII digits compare as numbers, everything else as text, so w2 <
w10, x_9 < x_10, theta[2] < theta[10] and W[1,2] < W[1,10]; a family's members
stay together (theta[...] after theta and theta2). Ties (w01 and w1) fall back
to the name itself, so the order is total and the same in every run.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple:
    """Sort key for ``name``: text and numbers alternating, then the name itself."""
    parts = _DIGITS.split(name)
    # split() with a group alternates text, digits, text, ...: even positions
    # are text and odd ones numbers in every key, so keys always compare.
    return (tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), name)
