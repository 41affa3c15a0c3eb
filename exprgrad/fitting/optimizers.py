"""The textbook first-order optimizers, and the loop that drives them.

In: a parameter vector, the cost and its gradient there (an ``Objective``
evaluates them). Out: the next point. One small class per optimizer, all
with the same interface: ``step(x, grad) -> x_next`` is the textbook update
with a fixed learning rate, and ``move(point, point_at) -> Point | None``
takes one iteration, choosing its own step when no learning rate was given:

- gd: gradient descent, each step by a backtracking (Armijo) line search,
  the trial step doubled after a step accepted at its first trial;
- momentum: heavy-ball momentum, its learning rate found by a line search on
  the first step, restarted (velocity reset, step searched again) whenever
  the cost rises;
- adam: Adam, its learning rate found by a line search on the first step; a
  step that raises the cost is undone, the rate halved and the moments reset.

A given learning rate is used as given (no line search, no restart).
``descend`` runs one of them against an ``Objective``: it stops when the
scaled gradient is at most the tolerance, when no step lowers the cost at
floating-point precision, at the iteration limit, or on divergence (a cost
that is not finite or grows without bound, a cost falling without bound,
parameters running away), and always reports the best point it visited.

The line search and the first-step search are in ``fit.linesearch``.
Must not: evaluate graphs itself (it asks the Objective), print, or import
scipy. The quasi-Newton and least-squares methods live in ``fit.methods``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import Mention
from .factors import Factors
from .linesearch import MAX_HALVINGS, NOISE, Point, PointAt, backtrack, first_step
from .optimality import scaled_gradient
from .probes import falls_without_bound

# Parameters past this size have run away: the fit diverged.
RUNAWAY = 1e100
# A cost that has risen by this many times its starting size (at least 1) diverged;
# one that has fallen by as much is probed for a lower bound.
GROWTH = 1e8
# Parameters this many times their starting size (at least 1) may have run away: probed.
DRIFT = 1e12


# ---------------------------------------------------------------- optimizers


class GradientDescent:
    """Gradient descent: x <- x - lr * grad, lr given or found by a line search at each step."""

    def __init__(self, lr: float | None = None):
        self.lr = lr
        self.fixed = lr is not None
        self.grow = True

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return x - self.lr * grad

    def move(self, point: Point, point_at: PointAt) -> Point | None:
        if self.fixed:
            return point_at(self.step(point.x, point.grad))
        direction = -point.grad
        if self.lr is None:
            found = first_step(point_at, point, direction)
            if found is None:
                return None
            trial, self.lr = found
            return trial
        found = backtrack(point_at, point, direction, self.lr * (2.0 if self.grow else 1.0))
        if found is None:
            return None
        trial, self.lr, self.grow = found
        return trial


class Momentum:
    """Heavy-ball momentum (Polyak): v <- beta*v - lr*grad; x <- x + v."""

    def __init__(self, lr: float | None = None, beta: float = 0.9):
        self.lr = lr
        self.fixed = lr is not None
        self.beta = beta
        self.velocity: np.ndarray | None = None

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        if self.velocity is None:
            self.velocity = np.zeros_like(x)
        self.velocity = self.beta * self.velocity - self.lr * grad
        return x + self.velocity

    def move(self, point: Point, point_at: PointAt) -> Point | None:
        if self.fixed:
            return point_at(self.step(point.x, point.grad))
        if self.lr is None:
            found = first_step(point_at, point, -point.grad)
            if found is None:
                return None
            trial, self.lr = found
            self.velocity = trial.x - point.x
            return trial
        velocity = self.beta * self.velocity - self.lr * point.grad
        trial = point_at(point.x + velocity)
        if trial.finite and trial.cost <= point.cost + NOISE * abs(point.cost):
            self.velocity = velocity
            return trial
        # The cost rose: restart from rest with a searched gradient step.
        found = backtrack(point_at, point, -point.grad, self.lr)
        if found is None:
            return None
        trial, self.lr, _ = found
        self.velocity = trial.x - point.x
        return trial


class Adam:
    """Adam (Kingma & Ba 2015): bias-corrected moving averages of grad and grad²."""

    def __init__(self, lr: float | None = None, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = lr
        self.fixed = lr is not None
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.t = 0

    def _update(self, grad: np.ndarray) -> np.ndarray:
        """Advance the moments by one gradient; the direction of the next step (before lr)."""
        if self.m is None:
            self.m, self.v, self.t = np.zeros_like(grad), np.zeros_like(grad), 0
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        return -m_hat / (np.sqrt(v_hat) + self.eps)

    def step(self, x: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return x + self.lr * self._update(grad)

    def move(self, point: Point, point_at: PointAt) -> Point | None:
        if self.fixed:
            return point_at(self.step(point.x, point.grad))
        if self.lr is None:
            found = first_step(point_at, point, self._update(point.grad))
            if found is None:
                return None
            trial, self.lr = found
            return trial
        for _ in range(MAX_HALVINGS):
            x = point.x + self.lr * self._update(point.grad)
            if np.array_equal(x, point.x):
                return None
            trial = point_at(x)
            if trial.finite and trial.cost <= point.cost + NOISE * abs(point.cost):
                return trial
            # The cost rose: undo the step, halve the rate, restart the moments.
            self.lr *= 0.5
            self.m = self.v = None
        return None


# ---------------------------------------------------------------- the loop


@dataclass
class Outcome:
    """Where a method stopped, and why.

    x, cost: the reported point (the best one visited when the fit diverged).
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
    factors: Factors | None = None  # least squares: R of [J | r] at x, when the method has it


def descend(objective, x0: np.ndarray, optimizer, max_iter: int, tol: float, progress=None) -> Outcome:
    """Run a first-order ``optimizer`` from ``x0`` until a stopping test passes.

    Stops when the scaled gradient (``optimality.scaled_gradient``) is at most
    ``tol``, when no step lowers the cost at floating-point precision, after
    ``max_iter`` iterations, or when it diverges: the cost is no longer finite
    or has risen past GROWTH times its starting size (with a given learning
    rate), it falls without bound (probed along rays once it has fallen by
    GROWTH times its starting size or the parameters have grown DRIFT times),
    or the parameters pass RUNAWAY. The point reported is always the best one
    visited, with its own cost.

    Args:
        objective: an ``Objective`` (value_grad is called once per trial point).
        progress: called as progress(iteration, cost, gradient norm) after each one.
    """
    x0 = np.array(x0, dtype=float)

    def point_at(x: np.ndarray) -> Point:
        with np.errstate(all="ignore"):
            cost, grad = objective.value_grad(x)
        return Point(np.array(x, dtype=float), float(cost), np.asarray(grad, dtype=float))

    point = point_at(x0)
    if not point.finite:
        return bad_start(x0, point.cost, point.grad, objective.params)
    best, lowest, history = point, point.cost, [point.cost]
    watch = _Watch(objective, x0, point.cost)
    for iteration in range(1, max_iter + 1):
        measure = scaled_gradient(point.x, point.grad, point.cost)
        if measure <= tol:
            reason = f"scaled gradient {measure:.2g}, below the tolerance {tol:g}"
            return _stopped(best, point, iteration - 1, history, reason, converged=True)
        trial = optimizer.move(point, point_at)
        if trial is None:
            return _stopped(
                best,
                point,
                iteration - 1,
                history,
                f"no step lowers the cost at floating-point precision (scaled gradient {measure:.2g})",
                converged=False,
            )
        if bool((trial.x == point.x).all()):
            reason = f"the steps no longer change the parameters (scaled gradient {measure:.2g})"
            if optimizer.fixed:
                reason += f"; the {Mention('lr')} may be too small"
            return _stopped(best, point, iteration - 1, history, reason, converged=False)
        what = watch(trial)
        if trial.finite or what is None:
            history.append(trial.cost)
        if trial.finite and trial.cost <= lowest + NOISE * abs(lowest):
            # The latest of the points within rounding of the lowest cost seen.
            best, lowest = trial, min(lowest, trial.cost)
        if what is not None:
            return _diverged(best, len(history) - 1, history, what, optimizer.fixed)
        if progress is not None:
            progress(iteration, trial.cost, float(np.linalg.norm(trial.grad)))
        point = trial
    limit = Mention("max_iter", max_iter)
    reason = f"stopped after {limit} iterations before converging ({_gradient_words(best)})"
    return _unconverged(best, max_iter, history, reason)


def start_problem(cost: float, grad, names, hessian=None) -> str | None:
    """What is not finite where a fit starts, in words (None when all of it is finite).

    Args:
        cost, grad: the cost and its gradient at the start (grad may be None).
        names: the parameter names, in the order of ``grad``.
        hessian: the Hessian there, for a method that needs it (else None).
    """
    if not math.isfinite(cost):
        return f"the cost is {cost} at the starting point"
    grad = np.asarray(grad, dtype=float) if grad is not None else np.zeros(0)
    names = list(names or [])
    bad = [(name, float(g)) for name, g in zip(names, grad) if not math.isfinite(g)]
    if bad:
        listed = ", ".join(f"{name} ({g})" for name, g in bad)
        noun = "parameter" if len(bad) == 1 else "parameters"
        return (
            f"the cost is finite at the starting point ({cost:.6g}) but its gradient is not: "
            f"the derivative by {noun} {listed}"
        )
    if grad.size and not np.all(np.isfinite(grad)):
        return f"the cost is finite at the starting point ({cost:.6g}) but its gradient is not"
    if hessian is not None:
        matrix = np.asarray(hessian, dtype=float)
        rows, columns = np.nonzero(~np.isfinite(matrix))
        if rows.size:
            i, j = int(rows[0]), int(columns[0])
            by = names[i] + (" twice" if i == j else f" and {names[j]}") if max(i, j) < len(names) else None
            pair = f" (by {by}: {matrix[i, j]})" if by else ""
            return (
                "the cost and its gradient are finite at the starting point but a second "
                f"derivative is not{pair}"
            )
    return None


def bad_start(x0: np.ndarray, cost: float, grad=None, names=None, hessian=None) -> Outcome:
    """The Outcome of a fit whose cost (or a derivative of it) is not finite where it starts.

    Args:
        grad, names, hessian: the gradient (and Hessian) there and the parameter
            names, to say which derivative is not finite (without them: the
            cost, or "its gradient").
    """
    what = start_problem(cost, grad, names, hessian) or (
        f"the cost or its gradient is not finite at the starting point (cost {cost})"
    )
    return Outcome(
        np.array(x0, dtype=float),
        cost,
        0,
        False,
        f"{what}; choose other {Mention('init')} values",
        diverged=True,
        history=[],
    )


class _Watch:
    """descend's divergence tests, with the sizes past which the cost is probed along rays.

    A cost that has fallen GROWTH times its starting size, or parameters DRIFT
    times theirs, may be a minimum far out, or no minimum: the probes of
    ``optimality`` (the cost along rays from the point, at doubling distances)
    tell which, and the next probe waits for another such fall or growth.
    """

    def __init__(self, objective, x0: np.ndarray, cost0: float):
        self.objective, self.x0, self.cost0 = objective, x0, cost0
        self.scale = max(1.0, abs(cost0))
        self.fall = cost0 - GROWTH * self.scale
        self.drift = DRIFT * max(1.0, float(np.max(np.abs(x0), initial=0.0)))

    def __call__(self, trial: Point) -> str | None:
        """Why ``trial`` means the fit diverged, or None."""
        if trial.cost == -math.inf:
            return f"the cost fell from {self.cost0:.6g} to -inf: it has no lower bound"
        if not trial.finite:
            if not math.isfinite(trial.cost):
                return f"the cost became {trial.cost}"
            return "the gradient became nan/inf"
        if trial.cost - self.cost0 > GROWTH * self.scale:
            return f"the cost grew from {self.cost0:.6g} to {trial.cost:.6g}"
        size = float(np.abs(trial.x).max(initial=0.0))
        if size > RUNAWAY:
            return (
                f"the parameters ran away (largest |value| {size:.3g}); the cost may decrease without bound"
            )
        if trial.cost < self.fall or size > self.drift:
            self.fall = trial.cost - GROWTH * max(1.0, abs(trial.cost))
            self.drift = max(self.drift, 1e3 * size)
            if falls_without_bound(self.objective, trial.x, self.x0):
                return (
                    f"the cost fell from {self.cost0:.6g} to {trial.cost:.6g} and keeps falling along "
                    f"the way the parameters went (largest |value| {size:.3g}): it has no lower bound"
                )
        return None


def _stopped(best: Point, point: Point, iterations: int, history, reason: str, converged: bool) -> Outcome:
    """The Outcome of a stopping test passed at ``point`` (reported unless a better one was seen)."""
    if best is not point:
        worse = f"{reason}, at a point worse than the best one seen (reported; {_gradient_words(best)})"
        return _unconverged(best, iterations, history, worse)
    return Outcome(point.x, point.cost, iterations, converged, reason, history=history)


def _unconverged(best: Point, iterations: int, history, reason: str) -> Outcome:
    """The Outcome reporting ``best``, the best point visited, where no stopping test passed."""
    return Outcome(best.x, best.cost, iterations, False, reason, history=history)


def _gradient_words(point: Point) -> str:
    """'scaled gradient 0.013': how far from stationary ``point`` is, for a reason."""
    return f"scaled gradient {scaled_gradient(point.x, point.grad, point.cost):.2g}"


def _diverged(best: Point, iterations: int, history, what: str, fixed: bool) -> Outcome:
    init = f"other {Mention('init')} values"
    advice = f"try a smaller {Mention('lr')} or {init}" if fixed else f"try {init}"
    if "lower bound" in what or "decrease without bound" in what:
        advice = "the cost has no minimum; the values shown are the best point seen"
    return Outcome(
        best.x,
        best.cost,
        iterations,
        False,
        f"diverged: {what}; {advice}",
        diverged=True,
        history=history,
    )
