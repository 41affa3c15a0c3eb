"""The quasi-Newton and least-squares methods: scipy.optimize fed by exact derivatives.

In: an ``Objective`` (compiled value/gradient, residual/Jacobian schedules)
and a starting vector. Out: an ``Outcome`` (see ``optimizers``); whether it
converged is then checked by ``optimality`` (Newton's method is ``newton``).

- ``lbfgs``: L-BFGS-B with the exact gradient (value and gradient in one pass);
  past a large drift of the parameters it asks ``optimality`` whether the
  cost falls without bound, and stops only then.
- ``lm``: Levenberg-Marquardt (MINPACK, through least_squares) with the exact
  Jacobian of the residuals, then Gauss-Newton polishing steps solved by QR;
  both from the factors (R of [J | r], ``factors``), never the whole J.
- ``direct``: residuals linear in the parameters: one QR solve, no iterations.

scipy is imported inside these functions only, so nothing on the eval path
pays for it. Must not: difference numerically, print, or evaluate graphs
except through the Objective.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import Mention
from .factors import HUGE, Factors
from .linear import column_norms, gauss_newton_step, solve_factored
from .optimizers import DRIFT, RUNAWAY, Outcome, bad_start
from .probes import falls_without_bound

# How much a polishing step may raise the residual sum of squares (rounding).
RSS_NOISE = 1e-10
# At most this many polishing steps, each taken only while it still helps: Gauss-Newton
# converges slowly where residuals are large (NIST Thurber from its second start
# needs 16 steps for 10.4 digits; 8 stopped it at 9.2).
POLISH_STEPS = 30
# Up to this many parameters L-BFGS-B works on parameters scaled by the Hessian's
# diagonal at the start (it costs the Hessian's graphs, which verify uses anyway).
LBFGS_SCALED = 20


def lbfgs(objective, x0: np.ndarray, max_iter: int, tol: float, progress=None) -> Outcome:
    """Minimize with L-BFGS-B; stops on relative cost reduction ``tol`` or gradient size."""
    from scipy.optimize import minimize

    cost0, grad0 = objective.value_grad(x0)
    if not (math.isfinite(cost0) and np.all(np.isfinite(grad0))):
        return bad_start(x0, cost0, grad0, objective.params)
    history = [cost0]
    scale = _curvature_scale(objective, x0)
    callback = _Callback(objective, x0, history, progress, scale)
    options = {
        "maxiter": max_iter,
        "maxfun": max(15000, 4 * max_iter),
        "ftol": tol,
        "gtol": tol * max(1.0, abs(cost0)) * float(np.max(scale)),
        "maxcor": 20,
    }
    guarded = _guarded(objective)

    def scaled(u):
        cost, grad = guarded(u * scale)
        return cost, grad * scale

    result = minimize(scaled, x0 / scale, jac=True, method="L-BFGS-B", callback=callback, options=options)
    x = result.x * scale
    best = objective.best_finite
    if not (math.isfinite(result.fun) and np.all(np.isfinite(x))) and best is not None:
        # L-BFGS-B stepped to where the cost is not finite and gave up there (a first
        # step scaled by a gradient of 1e161 overflows): a failure of the method, not a
        # divergence of the cost, so the best point it saw is reported and verified
        # (a cost that does fall without bound from there is found by the probes).
        reason = "stopped: a step left the range where the cost is finite (it overflowed)"
        return Outcome(np.array(best[0]), float(best[1]), int(result.nit), False, reason, history=history)
    converged = result.status == 0 and not callback.ran_away
    reason = _lbfgs_reason(result)
    if result.status == 2 and _flat(objective, x, result.fun):
        converged, reason = True, "no further decrease possible at floating-point precision"
    return _finish(objective, x0, x, result.fun, result.nit, converged, reason, history)


def _curvature_scale(objective, x0: np.ndarray) -> np.ndarray:
    """1/sqrt|H_ii| at the start (up to LBFGS_SCALED parameters), so columns of any size weigh alike.

    L-BFGS-B's first steps and its stopping tests are in the units of the
    parameters; on a likelihood with one column in tens of thousands and one
    of 0/1 it stopped with no correct digit (statsmodels' cancer and cpunish
    data) before the parameters were scaled.
    """
    ones = np.ones_like(x0)
    if len(x0) > LBFGS_SCALED or not objective.has_hessian:
        return ones
    with np.errstate(all="ignore"):
        diagonal = np.abs(np.diag(objective.hessian(x0)))
    good = np.isfinite(diagonal) & (diagonal > 0)
    if not np.any(good):
        return ones
    scale = np.where(good, 1.0 / np.sqrt(np.where(good, diagonal, 1.0)), 1.0)
    return scale / float(np.exp(np.mean(np.log(scale))))  # geometric mean 1: only the ratios matter


def lm(objective, x0: np.ndarray, max_iter: int, tol: float, progress=None) -> Outcome:
    """Levenberg-Marquardt with the exact Jacobian, then Gauss-Newton polishing.

    MINPACK works on the reduced problem of the factors (``factors``):
    residuals [Qᵀr; ρ] and Jacobian [R; 0], p+1 rows whatever the data's n.
    Its steps are those of the full problem (J̃ᵀJ̃ = JᵀJ, J̃ᵀr̃ = Jᵀr,
    ||r̃|| = ||r||), and so are its column norms and convergence tests; the
    n-by-p Jacobian is never needed whole. ``max_iter`` bounds the residual
    evaluations; ``tol`` is MINPACK's ftol, xtol and gtol. Parameters are
    scaled by the Jacobian's column norms.
    """
    from scipy.optimize import least_squares

    cache: dict[str, object] = {}

    def factors_at(x) -> Factors:
        if "x" not in cache or not np.array_equal(cache["x"], x):
            cache["x"], cache["factors"] = np.array(x), objective.residual_factors(x)
            if progress is not None:
                progress(objective.evaluations, cache["factors"].rss, None)
        return cache["factors"]

    def residuals(x):
        reduced = factors_at(x).reduced
        return np.where(np.isfinite(reduced), reduced, HUGE)

    def jacobian(x):
        matrix = factors_at(x).top[:, :-1]
        return np.where(np.isfinite(matrix), matrix, 0.0)

    cost0 = factors_at(np.asarray(x0, dtype=float)).rss
    if not math.isfinite(cost0):
        return bad_start(x0, cost0)
    result = least_squares(
        residuals,
        x0,
        jac=jacobian,
        method="lm",
        x_scale="jac",
        ftol=tol,
        xtol=tol,
        gtol=tol,
        max_nfev=max_iter,
    )
    x, iterations = result.x, int(result.njev or 0)
    converged = result.status > 0
    reason = _lm_reason(result.status, max_iter)
    x, polished, factors = _polish(objective, x)
    if polished:
        reason += f"; then {polished} Gauss-Newton step{'s' if polished > 1 else ''}"
    # Trial points MINPACK rejects are in the evaluation log; the history keeps the best so far.
    history = np.fmin.accumulate(np.array(objective.history, dtype=float)).tolist()
    outcome = _finish(objective, x0, x, factors.rss, iterations + polished, converged, reason, history)
    if not outcome.diverged:
        outcome.factors = factors
    return outcome


def direct(objective, x0: np.ndarray) -> Outcome:
    """Residuals linear in the parameters: the least-squares solution by one QR solve.

    The factors of [J | r] at the origin (``Objective.residual_factors``, made
    where the partitions are) give the solution, refined by passes over the
    same rows (``linear.solve_factored``), each one round over the partitions
    (``Objective.refinement_sums``): the n-by-p Jacobian is never whole.
    """
    origin = np.zeros_like(x0)
    factors = objective.residual_factors(origin)
    if not _finite(factors):
        origin = x0
        factors = objective.residual_factors(origin)
    if not _finite(factors):
        return bad_start(x0, math.nan)
    step, refinements, full_rank = solve_factored(factors, _Refinement(objective, origin))
    x = origin + step
    factors = objective.residual_factors(x)
    cost = factors.rss
    reason = "linear in the parameters: solved directly by QR"
    if not full_rank:
        reason = "linear in the parameters: solved directly (minimum-norm solution by SVD)"
    elif refinements:
        reason += f" ({refinements} refinement step{'s' if refinements > 1 else ''} in extended precision)"
    outcome = _finish(objective, x0, x, cost, 0, math.isfinite(cost), reason, [cost])
    if not outcome.diverged:
        outcome.factors = factors
    return outcome


# ---------------------------------------------------------------- helpers


def _finite(factors: Factors) -> bool:
    return bool(
        np.all(np.isfinite(factors.R)) and np.all(np.isfinite(factors.qtr)) and math.isfinite(factors.rss)
    )


class _Refinement:
    """``factors.Refinement``'s calls, each "sums" one pass over the objective's partitions, which
    replay every call so far on their own rows (``Objective.refinement_sums``)."""

    def __init__(self, objective, origin: np.ndarray):
        self.objective, self.origin, self.calls = objective, origin, ()

    def begin(self, x: np.ndarray) -> None:
        self.calls = (("begin", np.array(x, dtype=float)),)

    def sums(self, x: np.ndarray) -> list:
        self.calls += (("sums", np.array(x, dtype=float)),)
        return self.objective.refinement_sums(self.origin, self.calls)

    def advance(self, delta: np.ndarray) -> None:
        self.calls += (("advance", np.array(delta, dtype=float)),)


def _polish(objective, x: np.ndarray, max_steps: int = POLISH_STEPS):
    """Gauss-Newton steps from LM's answer while they bring it closer to the minimum.

    Near the minimum the sum of squares changes below its own rounding (which
    is about eps * sum|r_i * y_i|, far above eps * RSS when the residuals are
    small against the data), so a step is judged by the column-scaled gradient
    Jᵀr: kept while that shrinks and the sum of squares grows by no more than
    RSS_NOISE relatively. Measured on the 27 NIST nonlinear problems from both
    starts: minimum LRE 6.8 without polishing, 8.0 with up to 8 steps, 10.3
    with up to POLISH_STEPS (ENSO, MGH09 and Thurber creep in for 20-30). Steps and
    gradients come from the factors (R s = -Qᵀr; Jᵀr = RᵀQᵀr).

    Returns (x, steps taken, the factors at x).
    """
    factors = objective.residual_factors(x)
    rss, slope = factors.rss, _scaled_gradient(factors)
    taken = 0
    for _ in range(max_steps):
        if not (math.isfinite(rss) and math.isfinite(slope)) or slope == 0.0:
            break
        step = gauss_newton_step(factors.R, factors.qtr, rows=factors.rows)
        if not np.all(np.isfinite(step)) or not np.any(step):
            break
        candidate = x + step
        trial = objective.residual_factors(candidate)
        rss_new, slope_new = trial.rss, _scaled_gradient(trial)
        if not (rss_new <= rss * (1 + RSS_NOISE) and slope_new < slope):
            break
        x, factors, rss, slope = candidate, trial, rss_new, slope_new
        taken += 1
    return x, taken, factors


def _scaled_gradient(factors: Factors) -> float:
    """max |Jᵀr| with J's columns scaled to unit length: how far from stationary (Jᵀr = RᵀQᵀr)."""
    if not factors.finite:
        return math.nan
    with np.errstate(all="ignore"):
        matrix = factors.R
        norms = column_norms(matrix)
        return float(np.max(np.abs((matrix / np.where(norms > 0, norms, 1.0)).T @ factors.qtr), initial=0.0))


class _Callback:
    """scipy's per-iteration callback: history, progress, and a stop when the parameters run away.

    Past DRIFT times their starting size (and at every further factor of
    1000) the cost is probed along rays: the method stops only when it falls
    without bound, so a minimum far out is still reached.
    """

    def __init__(self, objective, x0, history, progress, scale=1.0):
        self.objective, self.history, self.progress = objective, history, progress
        self.iteration, self.ran_away, self.scale = 0, False, scale
        self.x0 = np.asarray(x0, dtype=float)
        self.next_check = DRIFT * max(1.0, float(np.max(np.abs(self.x0), initial=0.0)))

    def __call__(self, intermediate_result):
        self.iteration += 1
        cost = float(intermediate_result.fun)
        self.history.append(cost)
        if self.progress is not None:
            self.progress(self.iteration, cost, self.objective.last_grad_norm)
        x = np.asarray(intermediate_result.x, dtype=float) * self.scale
        size = float(np.max(np.abs(x), initial=0.0))
        if not math.isfinite(size) or size > RUNAWAY:
            self.ran_away = True
        elif size > self.next_check:
            self.next_check = size * 1e3
            self.ran_away = falls_without_bound(self.objective, x, self.x0)
        if self.ran_away:
            raise StopIteration


def _guarded(objective):
    """value_grad, with a non-finite cost shown to scipy as +inf (so a line search backs off)."""

    def function(x):
        cost, grad = objective.value_grad(x)
        if not math.isfinite(cost) or not np.all(np.isfinite(grad)):
            return math.inf, np.zeros_like(x)
        return cost, grad

    return function


def _flat(objective, x, cost) -> bool:
    """True when the gradient at ``x`` is down at rounding level for a cost of this size."""
    _, grad = objective.value_grad(x)
    return math.isfinite(cost) and float(np.max(np.abs(grad), initial=0.0)) <= 1e-6 * max(1.0, abs(cost))


def _lbfgs_reason(result) -> str:
    """Why L-BFGS-B stopped, in our words (never scipy's message)."""
    message = result.message.decode() if isinstance(result.message, bytes) else str(result.message)
    message = message.upper()
    if result.status == 0:
        if "REDUCTION OF F" in message:
            return "relative change of the cost below the tolerance"
        return "gradient below the tolerance"
    if result.status == 1:
        if "EVALUATIONS" in message:
            return "stopped at the limit of cost evaluations before converging"
        return f"stopped at the iteration limit ({Mention('max_iter')}) before converging"
    if "ROUNDING" in message or "LNSRCH" in message or "LINE SEARCH" in message or "ABNORMAL" in message:
        return "the line search found no lower cost along the search direction"
    if "CALLBACK" in message:
        return "stopped by the progress check"
    return "stopped for a reason other than convergence"


def _lm_reason(status: int, max_iter: int) -> str:
    return {
        0: f"stopped after {Mention('max_iter', max_iter)} evaluations before converging",
        1: "gradient below the tolerance",
        2: "relative reduction of the residual sum of squares below the tolerance",
        3: "relative change of the parameters below the tolerance",
        4: "relative reduction of the sum of squares and change of the parameters below the tolerance",
    }.get(status, f"Levenberg-Marquardt stopped with status {status}")


def _finish(objective, x0, x, cost, iterations, converged, reason, history) -> Outcome:
    """The Outcome, turned into a divergence report when the end point is not finite or ran away."""
    x = np.asarray(x, dtype=float)
    finite = math.isfinite(cost) and bool(np.all(np.isfinite(x)))
    # Large but finite parameters are judged by optimality's probes (a minimum
    # may lie far out); only past RUNAWAY is a stop a divergence here.
    if finite and not (not converged and float(np.max(np.abs(x), initial=0.0)) > RUNAWAY):
        return Outcome(x, float(cost), int(iterations), bool(converged), reason, history=list(history))
    if finite:
        x_last, cost_last = x, cost
        what = (
            f"the parameters ran away (largest |value| {np.max(np.abs(x)):.3g}); "
            "the cost may decrease without bound"
        )
    else:
        last = objective.best_finite
        x_last, cost_last = last if last is not None else (x, cost)
        what = f"the cost became {cost}"
    return Outcome(
        np.array(x_last),
        float(cost_last),
        int(iterations),
        False,
        f"diverged: {what}; try other {Mention('init')} values",
        diverged=True,
        history=list(history),
    )
