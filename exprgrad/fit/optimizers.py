"""The textbook first-order optimizers, and the loop that drives them.

In: a parameter vector and the gradient of the cost there.
Out: the next parameter vector. One small class per optimizer, all with the
same interface: ``step(x, grad) -> x_next`` (each keeps its own state, such
as a velocity). ``descend`` runs one of them against an ``Objective`` and
stops on the gradient norm, the relative change of the cost, the iteration
limit, or divergence (a cost that is not finite, parameters running away).

Must not: evaluate graphs itself (it asks the Objective), print, or import
scipy. The quasi-Newton and least-squares methods live in ``fit.methods``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Parameters past this size have run away: the fit diverged.
RUNAWAY = 1e100
# A descent method whose cost has grown by this many times its starting size diverges.
GROWTH = 1e8
# A fit that stops unconverged with parameters this many times their starting
# size (at least 1) ran away: the cost probably decreases without bound.
DRIFT = 1e12


def ran_away(x: np.ndarray, x0: np.ndarray) -> bool:
    """True when an unconverged fit's parameters have drifted off without bound."""
    size = float(np.max(np.abs(x), initial=0.0))
    return (
        not math.isfinite(size)
        or size > RUNAWAY
        or size > DRIFT * max(1.0, float(np.max(np.abs(x0), initial=0.0)))
    )


class GradientDescent:
    """Plain gradient descent: x <- x - lr * grad."""

    name = "gd"
    default_lr = 0.01

    def __init__(self, lr: float | None = None):
        self.lr = self.default_lr if lr is None else lr

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return x - self.lr * grad


class Momentum:
    """Heavy-ball momentum (Polyak): v <- beta*v - lr*grad; x <- x + v."""

    name = "momentum"
    default_lr = 0.01

    def __init__(self, lr: float | None = None, beta: float = 0.9):
        self.lr = self.default_lr if lr is None else lr
        self.beta = beta
        self.velocity: np.ndarray | None = None

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.velocity is None:
            self.velocity = np.zeros_like(x)
        self.velocity = self.beta * self.velocity - self.lr * grad
        return x + self.velocity


class Adam:
    """Adam (Kingma & Ba 2015): bias-corrected moving averages of grad and grad²."""

    name = "adam"
    default_lr = 0.001

    def __init__(self, lr: float | None = None, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = self.default_lr if lr is None else lr
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.m is None:
            self.m, self.v = np.zeros_like(x), np.zeros_like(x)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return x - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


OPTIMIZERS = {cls.name: cls for cls in (GradientDescent, Momentum, Adam)}


@dataclass
class Outcome:
    """Where a method stopped, and why.

    x, cost: the final point (the last finite one when the fit diverged).
    iterations: steps taken. converged: a stopping test passed.
    diverged: the cost became nan/inf or the parameters ran away.
    reason: why it stopped, in words. history: the cost after each iteration.
    """

    x: np.ndarray
    cost: float
    iterations: int
    converged: bool
    reason: str
    diverged: bool = False
    history: list[float] = field(default_factory=list)
    residuals: np.ndarray | None = None  # least squares: at x, when the method has them
    jacobian: np.ndarray | None = None


def descend(objective, x0: np.ndarray, optimizer, max_iter: int, tol: float, progress=None) -> Outcome:
    """Run a first-order ``optimizer`` from ``x0`` until a stopping test passes.

    Stops when the largest gradient component is at most ``tol * max(1, |cost0|)``
    (cost0: the cost at the start), when the cost changes by at most ``tol``
    relative to its size, after ``max_iter`` steps, or when it diverges: the
    cost is no longer finite, grows past GROWTH times its starting size, or
    the parameters run away (then the last finite point is returned).

    Args:
        objective: an ``Objective`` (value_grad is called once per iteration).
        progress: called as progress(iteration, cost, gradient norm) after each one.
    """
    x = np.array(x0, dtype=float)
    cost, grad = objective.value_grad(x)
    history = [cost]
    if not _finite(cost, grad):
        return bad_start(x, cost)
    scale = max(1.0, abs(cost))
    for iteration in range(1, max_iter + 1):
        if np.max(np.abs(grad), initial=0.0) <= tol * scale:
            return Outcome(
                x,
                cost,
                iteration - 1,
                True,
                f"gradient below the tolerance (norm {np.linalg.norm(grad):.3g})",
                history=history,
            )
        x_next = optimizer.step(x, grad)
        if not np.all(np.isfinite(x_next)) or np.max(np.abs(x_next)) > RUNAWAY:
            return _diverged(x, cost, iteration - 1, history, "the parameters ran away")
        cost_next, grad_next = objective.value_grad(x_next)
        if not _finite(cost_next, grad_next):
            return _diverged(x, cost, iteration - 1, history, f"the cost became {cost_next}")
        if cost_next - history[0] > GROWTH * scale:
            return _diverged(
                x_next,
                cost_next,
                iteration,
                history + [cost_next],
                f"the cost grew from {history[0]:.6g} to {cost_next:.6g}",
            )
        history.append(cost_next)
        if progress is not None:
            progress(iteration, cost_next, float(np.linalg.norm(grad_next)))
        change = abs(cost - cost_next)
        x, cost, grad = x_next, cost_next, grad_next
        if change <= tol * max(abs(cost), abs(history[-2]), 1e-300):
            return Outcome(
                x, cost, iteration, True, "relative change of the cost below the tolerance", history=history
            )
    if ran_away(x, np.asarray(x0, dtype=float)):
        return _diverged(x, cost, max_iter, history, _drift_text(x))
    return Outcome(
        x,
        cost,
        max_iter,
        False,
        f"stopped after --max-iter {max_iter} iterations before converging "
        f"(gradient norm {np.linalg.norm(grad):.3g})",
        history=history,
    )


def bad_start(x0: np.ndarray, cost: float) -> Outcome:
    """The Outcome of a fit whose cost (or gradient) is not finite where it starts."""
    return Outcome(
        np.array(x0, dtype=float),
        cost,
        0,
        False,
        f"diverged: the cost or its gradient is {cost if not math.isfinite(cost) else 'nan'} at the "
        "starting point; choose other --init values",
        diverged=True,
        history=[],
    )


def _drift_text(x: np.ndarray) -> str:
    return (
        f"the parameters ran away (largest |value| {np.max(np.abs(x)):.3g}); "
        "the cost may decrease without bound"
    )


def _finite(cost: float, grad: np.ndarray) -> bool:
    return math.isfinite(cost) and bool(np.all(np.isfinite(grad)))


def _diverged(x, cost, iterations, history, what: str) -> Outcome:
    return Outcome(
        x,
        cost,
        iterations,
        False,
        f"diverged: {what}; try a smaller --lr or other --init values",
        diverged=True,
        history=history,
    )
