"""Fitting: CSV data loading, the compiled objective, optimizers, and the fit itself.

``fit(data, cost=..., model=..., target=...)`` is the entry point; ``prepare``
and ``solve`` are its two halves (the command line shows messages between them).
scipy is imported only when a method that needs it runs.

This package is itself callable: ``exprgrad.fit(...)`` is ``exprgrad.fit.fit(...)``,
so the public function and the subpackage (``exprgrad.fit.data`` ...) share one
name without either hiding the other.
"""

import sys
import types

from .catalog import METHODS, FitOptions, Method
from .fit import fit, plan, solve
from .problem import FitProblem, prepare
from .result import FitResult

__all__ = ["METHODS", "FitOptions", "FitProblem", "FitResult", "Method", "fit", "plan", "prepare", "solve"]


class _CallablePackage(types.ModuleType):
    """The module type of this package: calling it calls ``fit``."""

    def __call__(self, *args, **kwargs) -> FitResult:
        return fit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
