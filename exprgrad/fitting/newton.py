"""Newton's method with the exact Hessian, damped and scaled so it works from a poor start.

In: an ``Objective`` (cost with gradient, Hessian) and a starting vector.
Out: an ``Outcome`` (see ``optimizers``).

Each step solves (H/DD + lam I) s = -g/D for the parameters scaled by
D = sqrt|diag H| (the largest seen so far), so a column of the data in
thousands and one in thousandths weigh alike (the scaling a trust region
needs; the damping lam plays the role of its radius, as in
Levenberg-Marquardt). lam starts at 0 (a pure Newton step, quadratic
convergence near the minimum), grows on a rejected step or an indefinite
Hessian, and shrinks by the ratio of the actual to the predicted decrease
(Nielsen's rule). A step to a point where the cost, the gradient or the
Hessian is not finite (outside the domain of a log or a sqrt, an overflowing
exp) is rejected like an uphill one.

Stops when the scaled gradient (see ``optimality``) is at most ``tol``, when
no step lowers the cost at floating-point precision, at the iteration limit,
or when the parameters run away. Must not: print, import scipy, difference
numerically, or evaluate graphs except through the Objective.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import Mention
from .optimality import scaled_gradient
from .optimizers import RUNAWAY, Outcome, bad_start

EPS = np.finfo(float).eps
# The damping tried first after a rejected pure Newton step (the Hessian scaled to a unit diagonal).
FIRST_DAMPING = 1e-3
# Past this damping a step is a vanishing gradient step: nothing lowers the cost.
MAX_DAMPING = 1e16
# How much a polishing step may raise the cost, relative to its size (rounding).
COST_NOISE = 1e-10
# Accept a step that achieves at least this fraction of its predicted decrease.
ACCEPT = 1e-4


def newton(objective, x0: np.ndarray, max_iter: int, tol: float, progress=None) -> Outcome:
    """Minimize with damped, scaled Newton steps (exact Hessian); stops on the scaled gradient ``tol``."""
    x = np.array(x0, dtype=float)
    with np.errstate(all="ignore"):
        return _run(objective, x, max_iter, tol, progress)


def _run(objective, x, max_iter, tol, progress) -> Outcome:
    cost, grad = objective.value_grad(x)
    hess = objective.hessian(x) if _finite(cost, grad) else None
    if hess is None or not np.all(np.isfinite(hess)):
        return bad_start(x, cost, grad, objective.params, hess)
    history = [cost]
    scale = np.ones_like(x)
    damping, growth = 0.0, 2.0
    rejected = 0
    reason, converged, iteration = (
        f"stopped after {Mention('max_iter', max_iter)} iterations before converging",
        False,
        0,
    )
    for iteration in range(1, max_iter + 1):
        measure = scaled_gradient(x, grad, cost)
        if measure <= tol:
            reason, converged = f"scaled gradient {measure:.2g}, below the tolerance {tol:.0e}", True
            break
        scale = np.maximum(scale, np.sqrt(np.abs(np.diag(hess))))
        scale[scale == 0] = 1.0
        step, damping = _damped_step(hess / np.outer(scale, scale), grad / scale, damping)
        step = step / scale
        predicted = -(grad @ step + 0.5 * step @ hess @ step)
        if not (predicted > 4 * EPS * abs(cost)) or not np.any(np.abs(step) > EPS * np.abs(x)):
            reason, converged = "no step lowers the cost at floating-point precision", True
            break
        candidate = x + step
        if np.max(np.abs(candidate), initial=0.0) > RUNAWAY:
            return _stop(x, cost, iteration, False, "the parameters ran away", history)
        cost_new, grad_new, hess_new = _cost_grad_hessian(objective, candidate)
        ratio = (cost - cost_new) / predicted if hess_new is not None else -math.inf
        if ratio > ACCEPT:
            x, cost, grad, hess = candidate, cost_new, grad_new, hess_new
            damping *= max(1 / 3, 1 - (2 * ratio - 1) ** 3)
            growth, rejected = 2.0, 0
            history.append(cost)
            if progress is not None:
                progress(iteration, cost, float(np.linalg.norm(grad)))
            continue
        rejected += 1
        damping = max(damping * growth, FIRST_DAMPING)
        growth *= 2.0
        if damping > MAX_DAMPING:
            reason, converged = "no step lowers the cost at floating-point precision", True
            break
    if converged:
        x, cost, polished = _polish(objective, x, cost, grad, hess)
        if polished:
            reason += f"; then {polished} Newton step{'s' if polished > 1 else ''} judged by the gradient"
            history.append(cost)
        iteration += polished
    return _stop(x, cost, iteration, converged, reason, history)


def _cost_grad_hessian(objective, x):
    """(cost, gradient, Hessian) at ``x``; the Hessian is None when anything is not finite."""
    cost, grad = objective.value_grad(x)
    if not _finite(cost, grad):
        return cost, grad, None
    hess = objective.hessian(x)
    return cost, grad, hess if np.all(np.isfinite(hess)) else None


def _polish(objective, x, cost, grad, hess, max_steps: int = 4):
    """Pure Newton steps while they shrink the scaled gradient, the cost staying within rounding.

    Near the minimum the cost changes below its own rounding (a sum of many
    terms), so it cannot judge a step; the gradient still can.
    Returns (x, cost, steps taken).
    """
    measure = scaled_gradient(x, grad, cost)
    taken = 0
    for _ in range(max_steps):
        if measure == 0.0:
            break
        scale = np.sqrt(np.abs(np.diag(hess)))
        scale[scale == 0] = 1.0
        step, damping = _damped_step(hess / np.outer(scale, scale), grad / scale, 0.0)
        if damping > 0.0 or not np.any(step):
            break  # not positive definite: no Newton step to trust
        candidate = x + step / scale
        cost_new, grad_new, hess_new = _cost_grad_hessian(objective, candidate)
        measure_new = scaled_gradient(candidate, grad_new, cost_new)
        if hess_new is None or measure_new >= measure or cost_new > cost + COST_NOISE * max(abs(cost), 1.0):
            break
        x, cost, grad, hess, measure = candidate, cost_new, grad_new, hess_new, measure_new
        taken += 1
    return x, cost, taken


def _damped_step(hess: np.ndarray, grad: np.ndarray, damping: float) -> tuple[np.ndarray, float]:
    """Solve (hess + damping I) s = -grad, raising damping until the matrix is positive definite."""
    from scipy.linalg import solve_triangular  # here: evaluating a plain expression never imports scipy

    identity = np.eye(len(grad))
    for _ in range(200):
        try:
            factor = np.linalg.cholesky(hess + damping * identity)
        except np.linalg.LinAlgError:
            damping = max(2.0 * damping, FIRST_DAMPING)
            continue
        # Two triangular solves on the factor (L L^T s = -grad): a general solve factors it
        # again (LU) on threads that wait for busy cores (0.2-40 ms against 0.03 ms at p = 113).
        half = solve_triangular(factor, grad, lower=True, check_finite=False)
        step = -solve_triangular(factor, half, lower=True, trans="T", check_finite=False)
        if np.all(np.isfinite(step)):
            return step, damping
        damping = max(2.0 * damping, FIRST_DAMPING)
    return np.zeros_like(grad), damping


def _finite(cost: float, grad: np.ndarray) -> bool:
    return math.isfinite(cost) and bool(np.all(np.isfinite(grad)))


def _stop(x, cost, iterations, converged, reason, history) -> Outcome:
    return Outcome(np.array(x), float(cost), int(iterations), bool(converged), reason, history=list(history))
