"""exprgrad: cost functions as text -> operation graphs -> derivatives, values, drawings, fits.

>>> import exprgrad
>>> f = exprgrad.parse("mean((a*x + b - y)^2)")
>>> f.params, f.columns
(['a', 'b'], ['x', 'y'])
"""

__version__ = "0.1.0"

# The fit subpackage is callable: exprgrad.fit(...) runs a fit (see fit/__init__.py).
from . import fit
from .errors import ArgumentError, ExprgradError
from .function import Function, parse

__all__ = ["ArgumentError", "ExprgradError", "Function", "__version__", "fit", "parse"]
