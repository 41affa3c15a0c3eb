"""What "converged" means: the first-order conditions, checked at the point a fit reports.

In: the ``Objective``, the ``Outcome`` a method returned, the starting vector.
Out: the ``Outcome`` as it is reported: its cost evaluated at its own point,
``converged`` true only when the point is verified stationary, ``diverged``
when the cost falls without bound, and a reason in words.

The measures are free of the units of the parameters and of the cost:

- a general cost: the scaled gradient max_i |g_i| * max(|x_i|, 1) / max(|f|, 1),
  the relative change of the cost per relative change of each parameter
  (absolute below 1); stationary when it is at most ``GTOL``;
- a sum of squares: the cosine between the residual vector r and the range
  of its Jacobian J, ||P r|| / ||r|| with P the projection onto J's columns
  (MINPACK's gtol test takes each column alone, which a long flat valley of
  nearly collinear columns fools); its square is the fraction of the sum of
  squares a Gauss-Newton step would still remove. Stationary when it is at
  most ``COSINE_TOL``, or when the Gauss-Newton step moves no parameter by
  more than ``XTOL`` of its size, sizes and moves measured by their effect
  on the fit |x_j|·||J_j|| (a fit whose residuals are rounding noise).
  Norms are taken with each column prescaled by a power of two, so columns
  of 1e-160 or 1e160 neither underflow nor overflow. All of it is read from
  the least-squares factors (R of [J | r], ``factors``), never the whole J.
- with up to ``SECOND_ORDER_PARAMS`` parameters a general cost's Hessian is
  used too: the Newton decrement ½ gᵀH⁻¹g / max(|f|, 1), the relative
  decrease a Newton step still promises, must be at most ``DECREMENT_TOL``.

Parameters running off along a direction are found (in ``probes``) by walking two rays from
the reported point (away from the start, and down the gradient) at doubling
distances, and by moving the parameters the gradient pushes toward 0 ever
closer to it: a cost that keeps falling at every step with falls that do not
shrink decreases without bound (divergence); one whose falls shrink, or that
falls and then stays flat at floating-point precision, approaches an
asymptote at infinity (no finite minimum: not converged, the parameters
named). At a minimum the first probe of each rises: three evaluations.
A stationary point with up to ``SECOND_ORDER_PARAMS`` parameters is also
checked for negative curvature: a saddle point is not a minimum.

Must not: print, choose a method, or evaluate graphs except through the Objective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..errors import Mention
from .factors import Factors, factor
from .linear import column_norms, gauss_newton_step
from .probes import find_runoff, quiet_value, quiet_value_grad, second_order

if TYPE_CHECKING:  # optimizers may import this module: no cycle at run time
    from .optimizers import Outcome

# The scaled gradient of a verified stationary point of a general cost.
GTOL = 1e-6
# The largest residual-Jacobian cosine of a verified least-squares solution.
COSINE_TOL = 1e-6
# The relative decrease of the cost a Newton step may still promise at a verified
# minimum of a general cost (COSINE_TOL squared: the same for a sum of squares).
DECREMENT_TOL = 1e-12
# A Gauss-Newton step this small (relative to each parameter) means the fit is at rounding level.
XTOL = 1e-10
# Up to this many parameters a stationary point's Hessian is checked for a
# direction of negative curvature (a saddle point is not a minimum).
SECOND_ORDER_PARAMS = 20


def scaled_gradient(x: np.ndarray, grad: np.ndarray, cost: float) -> float:
    """max_i |g_i| * max(|x_i|, 1) / max(|cost|, 1); inf when anything is not finite."""
    if not math.isfinite(cost):
        return math.inf
    x, grad = np.asarray(x, dtype=float), np.asarray(grad, dtype=float)
    with np.errstate(all="ignore"):
        # A nan or inf in x or grad makes the largest term nan or inf: one test covers them.
        value = float((np.abs(grad) * np.maximum(np.abs(x), 1.0)).max(initial=0.0))
    return value / max(abs(cost), 1.0) if math.isfinite(value) else math.inf


def residual_cosines(r: np.ndarray, jacobian: np.ndarray) -> np.ndarray:
    """|J_jᵀr| / (||J_j|| ||r||) per column (0 for a zero column or zero residuals)."""
    return _cosines(factor(r, jacobian))


def _cosines(factors: Factors) -> np.ndarray:
    """``residual_cosines`` from the factors: J_jᵀr = (RᵀQᵀr)_j, ||J_j|| = ||R_j||, ||r|| = ||[Qᵀr; ρ]||."""
    with np.errstate(all="ignore"):
        matrix = factors.R
        norms, size = column_norms(matrix), float(column_norms(factors.reduced))
        good = (norms > 0) & (size > 0)
        unit = matrix / np.where(good, norms, 1.0)
        dots = np.abs(unit.T @ (factors.qtr / (size if size > 0 else 1.0)))
        return np.where(good, dots, 0.0)


def residual_cosine(r: np.ndarray, jacobian: np.ndarray) -> float:
    """The cosine between r and the range of J: ||P r|| / ||r|| (inf when anything is not finite).

    P projects onto the span of J's columns, so this is the largest cosine
    between r and any direction J·d the parameters can move the fit in, and
    its square is the fraction of the sum of squares a Gauss-Newton step
    would remove. Unlike the cosine with each column alone it is not fooled
    by nearly collinear columns (a long flat valley). Directions with singular
    values below rounding (n·eps of the largest) are left out.
    """
    return _geometry(r, jacobian)[0]


def _geometry(r: np.ndarray, jacobian: np.ndarray) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """``_factored_geometry`` of the factors of r and J (one Householder QR of [J | r], R only)."""
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(jacobian))):
        return math.inf, None, None
    return _factored_geometry(factor(r, jacobian))


def _factored_geometry(factors: Factors) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """(residual_cosine, the Gauss-Newton step, J's column norms); None for what the cosine alone decides.

    R of [J | r] with its columns scaled (J's to unit length, r's by ||r||)
    is R of [J/||J_j|| | r/||r||]: the first p columns give R of the scaled J,
    the last Qᵀr; the SVD of the p-by-p R then gives the range of J
    (directions above rounding), the projection's length and the
    minimum-norm step. Norms of R's columns are J's (safe at any magnitude:
    1e160 columns do not overflow).
    """
    if not factors.finite:
        return math.inf, None, None
    n, p = factors.rows, factors.params
    size = float(column_norms(factors.reduced))
    if size == 0.0 or n == 0 or p == 0:
        return 0.0, None, None
    if not math.isfinite(size):
        return math.inf, None, None
    norms = column_norms(factors.R)
    if n <= p:  # no more rows than parameters: the SVD of the scaled R (Q is square)
        scaled = factors.R[:, norms > 0] / norms[norms > 0]
        if scaled.shape[1] == 0:
            return 0.0, None, norms
        basis, singular, _ = np.linalg.svd(scaled, full_matrices=False)
        keep = singular > max(n, scaled.shape[1]) * np.finfo(float).eps * singular[0]
        return float(column_norms(basis[:, keep].T @ (factors.reduced[:p] / size))), None, norms
    scales = np.where(norms > 0, norms, 1.0)
    top = factors.R / scales
    u, singular, vt = np.linalg.svd(top)
    keep = singular > max(n, p) * np.finfo(float).eps * singular[0]
    along = u[:, keep].T @ (factors.qtr / size)  # the unit residual's coordinates in J's range
    step = -(vt[keep].T @ (along / singular[keep])) * size / scales
    return float(column_norms(along)), step, norms


@dataclass
class Verdict:
    """verify's answer with what the report needs besides the Outcome.

    outcome: the Outcome as reported. no_minimum: the cost approaches an
    asymptote as parameters run off (no finite minimum: no standard errors).
    escapes: at a saddle point, the points nearby with a lower cost, one on
    each side when both are lower (a method may start again there); else empty.
    """

    outcome: Outcome
    no_minimum: bool = False
    escapes: list = field(default_factory=list)


def verify(
    objective,
    outcome: Outcome,
    x0: np.ndarray,
    *,
    least_squares: bool,
    tol: float | None = None,
) -> Verdict:
    """The Outcome as reported: its own point's cost, and converged only when verified.

    Args:
        objective: the fit's ``Objective``.
        outcome: where the method stopped; ``converged`` there means only that
            its own stopping test passed.
        x0: the starting vector (the ray to probe for run-off starts there).
        least_squares: the cost is a sum of squares (residuals and Jacobian exist).
        tol: the threshold of the measure (default ``COSINE_TOL`` or ``GTOL``).

    Returns:
        A ``Verdict`` whose outcome is a new Outcome.
    """
    x = np.asarray(outcome.x, dtype=float)
    x0 = np.asarray(x0, dtype=float)
    names = objective.params
    seen = objective.best_finite  # the fit's own best point, before any probe of ours
    if outcome.diverged:
        outcome = _belonging(objective, outcome, x)
        if math.isfinite(outcome.cost) and np.all(np.isfinite(x)):
            runoff = find_runoff(objective, x, x0, outcome.cost, quiet_value_grad(objective, x)[1])
            if runoff is not None and runoff[0]:
                best = _at_best(objective, outcome, objective.best_finite)
                return Verdict(replace(best, reason=_endless_reason(names, runoff, best)))
        return Verdict(_at_best(objective, outcome, seen))
    if not np.all(np.isfinite(x)):
        reason = "diverged: the parameters are not finite"
        diverged = replace(outcome, converged=False, diverged=True, reason=reason)
        return Verdict(_at_best(objective, diverged, seen))
    cost, grad = quiet_value_grad(objective, x)
    if not math.isfinite(cost):
        reason = (
            "diverged: the cost falls without bound (it reached -inf)"
            if cost == -math.inf
            else f"diverged: the cost is {cost} at the point reached"
        )
        diverged = replace(outcome, cost=cost, converged=False, diverged=True, reason=reason)
        return Verdict(_at_best(objective, diverged, seen))
    factors = None
    if least_squares:
        factors = outcome.factors
        if factors is None:
            factors = objective.residual_factors(x)
            outcome = replace(outcome, factors=factors)
        stationary, measure = _least_squares_stationary(x, factors, tol)
    else:
        measure = scaled_gradient(x, grad, cost)
        stationary = measure <= (GTOL if tol is None else max(tol, GTOL))
    # Linear residuals make a convex sum of squares, bounded below by 0: no run-off, no saddle.
    convex = least_squares and objective.residuals_are_linear()
    runoff = None if convex else find_runoff(objective, x, x0, cost, grad)
    if runoff is not None:
        endless, direction = runoff[:2]
        moving = _moving(names, direction)
        if endless:
            diverged = replace(outcome, cost=cost, converged=False, diverged=True)
            best = _at_best(objective, diverged, objective.best_finite)
            return Verdict(replace(best, reason=_endless_reason(names, runoff, best)))
        stopped = outcome.reason if outcome.reason.startswith("stopped") else f"stopped ({outcome.reason})"
        reason = (
            f"{stopped}, but there is no finite minimum: the cost keeps decreasing "
            f"toward an asymptote as {moving} without bound (separable data, or a parameter that is not identified)"
        )
        return Verdict(replace(outcome, cost=cost, converged=False, reason=reason), no_minimum=True)
    decrement = None
    if stationary and not convex and len(names) <= SECOND_ORDER_PARAMS:
        saddle, decrement = second_order(objective, x, cost, grad)
        if not least_squares and decrement is not None and decrement > DECREMENT_TOL:
            stationary = False
    else:
        saddle = None
    if stationary:
        if saddle is not None:
            reason = (
                f"stopped ({outcome.reason}) at a saddle point, not a minimum: the cost decreases "
                f"as {_moving(names, saddle[0])} (try other {Mention('init')} values)"
            )
            escapes = [x + step for step in saddle]
            return Verdict(replace(outcome, cost=cost, converged=False, reason=reason), escapes=escapes)
        reason = (
            outcome.reason
            if outcome.converged
            else f"{outcome.reason}; the first-order conditions hold there"
        )
        return Verdict(replace(outcome, cost=cost, converged=True, reason=reason))
    what = "residual-Jacobian cosine" if least_squares else "scaled gradient"
    threshold = (COSINE_TOL if least_squares else GTOL) if tol is None else tol
    worst = _worst(names, x, grad, cost, factors)
    if decrement is not None and decrement > DECREMENT_TOL:
        verdict = (
            f"not a verified minimum: a Newton step would still lower the cost by a fraction "
            f"{decrement:.2g} > {DECREMENT_TOL:.0e} (a flat valley)"
        )
    else:
        verdict = f"not a verified minimum: {what} {measure:.2g} > {threshold:.0e} (largest for {worst})"
    reason = f"stopped: {outcome.reason}; {verdict}" if outcome.converged else f"{outcome.reason}; {verdict}"
    return Verdict(replace(outcome, cost=cost, converged=False, reason=reason))


# ---------------------------------------------------------------- helpers


def _belonging(objective, outcome: Outcome, x: np.ndarray) -> Outcome:
    """A diverged outcome, its cost evaluated at the point it reports (nan or inf too)."""
    if not np.all(np.isfinite(x)):
        return outcome
    cost = quiet_value(objective, x)
    return outcome if cost == outcome.cost else replace(outcome, cost=cost)


def _at_best(objective, outcome: Outcome, best) -> Outcome:
    """A diverged Outcome moved to ``best`` ((x, cost): the lowest finite cost seen) when lower.

    ``best`` is the fit's own best point, or, for a fall without bound, the
    best including the probes that showed it (the message names that point).
    Its cost is evaluated again there, so the printed cost is the printed
    point's; the reported point is never worse than where the method stopped.
    """
    own = outcome.cost if math.isfinite(outcome.cost) and np.all(np.isfinite(outcome.x)) else math.inf
    if best is None or not best[1] < own:
        return outcome
    x = np.array(best[0], dtype=float)
    cost = quiet_value(objective, x)
    if not (math.isfinite(cost) and cost < own):
        return outcome
    return replace(outcome, x=x, cost=cost, factors=None)


def _least_squares_stationary(x, factors: Factors, tol) -> tuple[bool, float]:
    cosine, step, effect = _factored_geometry(factors)
    if cosine <= (COSINE_TOL if tol is None else tol):
        return True, cosine
    if not math.isfinite(cosine):
        return False, cosine
    with np.errstate(all="ignore"):
        if step is None:
            step = gauss_newton_step(factors.R, factors.qtr, rows=factors.rows)
        # Each parameter's move and size by its effect on the fit (|x_j| * ||J_j||), so the
        # test is free of the parameters' units; at most XTOL of its own size, or XTOL² of
        # the largest effect (a parameter that is 0 at the solution). A point where no
        # parameter has any effect yet (every x_j = 0) is not at rounding level.
        size = np.abs(x) * effect
        moves = np.abs(step) * effect
        floor = np.all(np.isfinite(moves)) and bool(
            np.all(moves <= XTOL * np.maximum(size, XTOL * float(np.max(size, initial=0.0))))
        )
    return floor, cosine


def _endless_reason(names, runoff, best: Outcome) -> str:
    """Why the fit diverged, naming the reported (best) point and its cost as the table shows them."""
    _, direction, _, _, edge = runoff
    cost_far, x_far = best.cost, best.x
    if edge:
        edging = [name for name, d in zip(names, direction) if d]
        moving = " and ".join(edging) + (" approaches 0" if len(edging) == 1 else " approach 0")
        return (
            f"diverged: the cost falls without bound as {moving} "
            f"(it is {cost_far:.6g} at {_point(names, x_far)})"
        )
    return (
        f"diverged: the parameters ran away: the cost falls without bound as {_moving(names, direction)} "
        f"(it is {cost_far:.6g} at {_point(names, x_far)})"
    )


def _moving(names, direction) -> str:
    """'w grows and b decreases': the parameters that carry the direction."""
    big = np.max(np.abs(direction))
    parts = [
        f"{name} {'grows' if d > 0 else 'decreases'}"
        for name, d in zip(names, direction)
        if abs(d) >= 0.05 * big
    ]
    return " and ".join(parts)


def _point(names, x) -> str:
    return ", ".join(f"{name} = {value:.3g}" for name, value in zip(names, x))


def _worst(names, x, grad, cost, factors) -> str:
    if factors is not None:
        return names[int(np.argmax(_cosines(factors)))]
    with np.errstate(all="ignore"):
        return names[int(np.argmax(np.abs(grad) * np.maximum(np.abs(x), 1.0)))]
