"""The fit methods, one table: ``METHODS`` (name -> ``Method``), and the options a fit carries.

In: the methods' modules (optimizers, methods, newton). Out: ``METHODS``, each
entry with its name, its title in the report, its default iteration limit and
tolerance, whether it takes a learning rate or needs a sum of squares, and
``run``; ``CHOICES`` (what a user may name: auto and the choosable methods);
``FitOptions``, the options of one fit, carried as one value.
Adding a method = one entry here: the planner, the report, the command line's
choices and the tests read this table.
Must not: check options against a problem (``fit.plan`` does), print, or import scipy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import methods
from .newton import newton
from .optimizers import Adam, GradientDescent, Momentum, Outcome, descend

AUTO = "auto"


@dataclass(frozen=True)
class FitOptions:
    """The options of one fit, as ``exprgrad.fit`` takes them (None: the method's default)."""

    method: str = AUTO
    lr: float | None = None
    max_iter: int | None = None
    tol: float | None = None
    nll: bool = False


# The options of a fit that names none (auto, and each method's defaults).
DEFAULT_OPTIONS = FitOptions()
# run(objective, x0, lr, iteration limit, tolerance, progress) -> Outcome
Run = Callable[..., Outcome]


@dataclass(frozen=True)
class Method:
    """One fit method.

    Attributes:
        name: what ``method=`` and ``--method`` take, and the result's ``method``.
        title: the words after the name in the report.
        max_iter, tol: the defaults (for lm the limit counts residual evaluations,
            and the tolerance is MINPACK's ftol = xtol = gtol).
        run: one run from a starting vector (see ``Run``).
        learning_rate: takes ``lr`` (the first-order methods).
        least_squares: needs a sum of squares (residuals and their Jacobian).
        choosable: a user may name it (the direct QR solve is auto's choice only).
    """

    name: str
    title: str
    max_iter: int
    tol: float
    run: Run
    learning_rate: bool = False
    least_squares: bool = False
    choosable: bool = True


def _descent(optimizer: type) -> Run:
    def run(objective, x0, lr, limit, tolerance, progress):
        return descend(objective, x0, optimizer(lr), limit, tolerance, progress)

    return run


def _lbfgs(objective, x0, lr, limit, tolerance, progress):
    return methods.lbfgs(objective, x0, limit, tolerance, progress)


def _newton(objective, x0, lr, limit, tolerance, progress):
    return newton(objective, x0, limit, tolerance, progress)


def _lm(objective, x0, lr, limit, tolerance, progress):
    return methods.lm(objective, x0, limit, tolerance, progress)


def _qr(objective, x0, lr, limit, tolerance, progress):
    return methods.direct(objective, x0)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method("gd", "gradient descent", 10000, 1e-10, _descent(GradientDescent), learning_rate=True),
        Method(
            "momentum", "gradient descent with momentum", 10000, 1e-10, _descent(Momentum), learning_rate=True
        ),
        Method("adam", "Adam", 10000, 1e-10, _descent(Adam), learning_rate=True),
        Method("lbfgs", "L-BFGS-B, exact gradient", 15000, 1e-13, _lbfgs),
        Method("newton", "damped Newton, exact Hessian, scaled parameters", 1000, 1e-10, _newton),
        Method("lm", "Levenberg-Marquardt, exact Jacobian", 10000, 1e-15, _lm, least_squares=True),
        Method("qr", "direct least squares by QR", 1, 0.0, _qr, least_squares=True, choosable=False),
    )
}
# What a user may name: auto, then the choosable methods in table order.
CHOICES = (AUTO, *(name for name, method in METHODS.items() if method.choosable))


def learning_rate_methods() -> list[str]:
    """The names of the methods that take a learning rate, in table order."""
    return [name for name, method in METHODS.items() if method.learning_rate]
