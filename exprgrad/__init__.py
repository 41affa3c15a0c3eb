"""exprgrad: cost functions as text -> operation graphs -> derivatives, values, drawings, fits.

>>> import exprgrad
>>> f = exprgrad.parse("mean((a*x + b - y)^2)")
>>> f.params, f.columns
(['a', 'b'], ['x', 'y'])
"""

__version__ = "0.1.0"

# Plain functions: the modules behind them are exprgrad.parsing and exprgrad.fitting,
# named apart so that neither hides the other.
from .errors import ArgumentError, ExprgradError
from .fitting import METHODS, FitOptions, FitResult, fit
from .function import Function, parse

__all__ = [
    "METHODS",
    "ArgumentError",
    "ExprgradError",
    "FitOptions",
    "FitResult",
    "Function",
    "__version__",
    "fit",
    "parse",
]
