"""exprgrad: cost functions as text -> operation graphs -> derivatives, values, drawings, fits.

    >>> import exprgrad
    >>> f = exprgrad.parse("mean((a*x + b - y)^2)")
    >>> f.params, f.columns
    (['a', 'b'], ['x', 'y'])
"""

__version__ = "0.1.0"

from . import fit  # noqa: E402  (a callable package: exprgrad.fit(...) runs a fit)
from .errors import ExprgradError  # noqa: E402
from .function import Function, parse  # noqa: E402

__all__ = ["ExprgradError", "Function", "fit", "parse", "__version__"]
