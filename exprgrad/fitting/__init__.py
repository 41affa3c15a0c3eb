"""Fitting: CSV data loading, the compiled objective, optimizers, and the fit itself.

``fit(data, cost=..., model=..., target=...)`` is the entry point (``exprgrad.fit``
is this function); ``prepare`` and ``solve`` are its two halves (the command
line shows messages between them). scipy is imported only when a method that
needs it runs.
"""

from .catalog import METHODS, FitOptions, Method
from .problem import FitProblem, prepare
from .result import FitResult
from .run import fit, plan, solve

__all__ = ["METHODS", "FitOptions", "FitProblem", "FitResult", "Method", "fit", "plan", "prepare", "solve"]
