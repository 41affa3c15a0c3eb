"""Derivatives checked against finite differences: what `exprgrad check`, ``Function.check`` and the tests use.

``differences``: Ridders' finite differences with an error estimate
(``derivative``, ``numeric_partial``, ``Estimate``). ``partials``: the
verdict for each partial of a function (``check_partials``, ``PartialCheck``).
"""

from .differences import Estimate, central_difference, derivative, numeric_partial, ridders
from .partials import (
    DEFAULT_MEMBERS,
    DEFAULT_ROWS,
    DEFAULT_TOL,
    MAX_MEMBERS,
    MAX_ROWS,
    STATUSES,
    PartialCheck,
    check_partials,
    check_tol,
    compare,
    reads_elementwise,
    sample_rows,
)

__all__ = [
    "DEFAULT_MEMBERS",
    "DEFAULT_ROWS",
    "DEFAULT_TOL",
    "MAX_MEMBERS",
    "MAX_ROWS",
    "STATUSES",
    "Estimate",
    "PartialCheck",
    "central_difference",
    "check_partials",
    "check_tol",
    "compare",
    "derivative",
    "numeric_partial",
    "reads_elementwise",
    "ridders",
    "sample_rows",
]
