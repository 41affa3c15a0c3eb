"""The fit: data and a cost (or a model and a target column) in, fitted parameters out.

In: data (a CSV path, a ``Dataset`` or a dict of arrays), and either a scalar
cost to minimize or a per-row model with the name of the target column (then
the cost is sum((model - target)^2)); starting values; a method name.
Out: ``FitResult``: fitted values, standard errors, cost, residual sum of
squares, iterations, evaluations, whether and why it converged.

``problem.prepare`` builds the graphs and checks names against the data;
``plan`` checks the options; ``solve`` runs a method on the compiled
``Objective``, has ``optimality`` verify where it stopped (converged only
when the first-order conditions hold there; the cost always that point's),
and works out the standard errors; ``fit`` does it all.
Must not: print, exit, read options, or know the CLI.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Mapping

import numpy as np

from .. import build, memory
from ..engines import check_request, open_engine
from ..errors import ArgumentError, DataError, Mention, OptionError
from .catalog import AUTO, CHOICES, DEFAULT_OPTIONS, METHODS, FitOptions, learning_rate_methods
from .linear import hessian_stderr, least_squares_stderr
from .objective import FACTOR_PARTITION_ROWS
from .optimality import verify
from .problem import FitProblem, load_data, prepare
from .result import NLL, FitResult

__all__ = ["METHODS", "FitOptions", "FitProblem", "fit", "load_data", "plan", "prepare", "solve"]

# auto fits a general cost with Newton's method (exact Hessian) up to this many
# parameters, with L-BFGS-B past it (the Hessian has p(p+1)/2 graphs).
NEWTON_PARAMS = 50
# How many runs a fit that stopped at a saddle point makes from beside it, in all.
SADDLE_RESTARTS = 4
Progress = Callable[[int, int, float, "float | None"], None]


def plan(problem: FitProblem, options: FitOptions = DEFAULT_OPTIONS) -> tuple[str, int, float]:
    """Check the options against the problem: (method to run, iteration limit, tolerance).

    A chosen method runs as chosen. ``auto`` picks: for a sum of squares (a
    model and a target, or a cost of the form sum/mean of squares) a direct QR
    solve when the residuals are linear in the parameters, else lm (lbfgs when
    their n x p Jacobian would not fit in memory); for any other cost Newton's
    method with the exact Hessian (up to NEWTON_PARAMS parameters), else lbfgs.

    Raises:
        OptionError: an unknown method, lm without a sum of squares, nll with a
            model. ArgumentError: lr for a method without a learning rate, a bad
            limit, tolerance or learning rate (each names its argument).
    """
    chosen = _choose(problem, options.method, options.nll)
    method = METHODS[chosen]
    limit = method.max_iter if options.max_iter is None else int(options.max_iter)
    tolerance = method.tol if options.tol is None else float(options.tol)
    if limit < 1:
        raise ArgumentError("must be at least 1", argument="max_iter")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ArgumentError("must be a number >= 0", argument="tol")
    if chosen == "lm" and problem.rows < len(problem.params):
        raise DataError(
            f"{problem.rows} data rows cannot determine {len(problem.params)} parameters "
            "(least squares needs at least as many rows as parameters)"
        )
    lr = options.lr
    if lr is not None:
        if not (math.isfinite(lr) and lr > 0):
            raise ArgumentError("must be a positive number", argument="lr")
        if not method.learning_rate:
            takers = learning_rate_methods()
            raise ArgumentError(
                f"is for {', '.join(takers[:-1])} and {takers[-1]}; {chosen} chooses its own steps",
                argument="lr",
            )
    return chosen, limit, tolerance


def solve(
    problem: FitProblem, options: FitOptions = DEFAULT_OPTIONS, progress: Progress | None = None
) -> FitResult:
    """Run the options' method on a prepared problem; standard errors and the report at the end."""
    start = time.perf_counter()
    objective = problem.objective
    chosen, limit, tolerance = plan(problem, options)
    lr, nll = options.lr, options.nll
    report = None if progress is None else (lambda step, cost, norm: progress(step, limit, cost, norm))
    x0 = problem.x0.copy()
    # A sum of squares whose n x p Jacobian would not fit in memory is checked as a general cost.
    least_squares = problem.residual is not None and _matrix_too_large(problem, False) is None
    # Overflow in a trial point is a rejected step, not news for the user: every
    # claim is checked below, so numpy's and scipy's warnings stay inside.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = _run(chosen, objective, x0, lr, limit, tolerance, report)
        verdict = verify(objective, outcome, problem.x0, least_squares=least_squares)
        restarts, history, iterations = 0, [], 0
        while verdict.escapes and restarts < SADDLE_RESTARTS:
            # A saddle point: start again from the lower points beside it, keep the best end.
            history, iterations, tries = [*history, *outcome.history], iterations + outcome.iterations, []
            for beside in verdict.escapes[: SADDLE_RESTARTS - restarts]:
                restarts += 1
                again = _run(chosen, objective, beside, lr, limit, tolerance, report)
                tries.append((again, verify(objective, again, problem.x0, least_squares=least_squares)))
            outcome, verdict = min(tries, key=lambda pair: _rank(pair[1].outcome))
        outcome = verdict.outcome
        if restarts:
            again = "once" if restarts == 1 else f"{restarts} times"
            outcome.reason = f"{outcome.reason} (started again {again} beside a saddle point)"
            outcome.history = [*history, *outcome.history]
            outcome.iterations += iterations
        stderr, notes, condition, rss = _uncertainty(problem, outcome, nll)
    if verdict.no_minimum:
        stderr = {name: None for name in problem.params}
        notes = ["so no standard errors"]
    elif not outcome.converged and any(v is not None for v in stderr.values()):
        notes.append("the standard errors are those of this point, which is not a verified minimum")
    params = dict(zip(problem.params, map(float, outcome.x)))
    cost = outcome.cost  # evaluated at params: the cost as written (mean, /2 ...), not only the RSS
    message = "; ".join([outcome.reason, *[n for n in notes if n]])
    stderr_kind = "hessian" if nll else "least squares" if problem.residual is not None else None
    named = [Mention("max_iter", limit), Mention("max_iter"), Mention("init"), Mention("lr")]
    mentions = [m for m in named if str(m) in message] + ([] if stderr_kind else [NLL])
    return FitResult(
        params=params,
        stderr=stderr,
        cost=float(cost),
        rss=rss,
        iterations=outcome.iterations,
        evaluations=objective.evaluations,
        converged=outcome.converged,
        message=message,
        method=chosen,
        rows=problem.rows,
        history=list(outcome.history),
        wall_time=time.perf_counter() - start,
        diverged=outcome.diverged,
        defaulted=list(problem.defaulted),
        condition=condition,
        stderr_kind=stderr_kind,
        mentions=tuple(mentions),
    )


def fit(
    data=None,
    cost=None,
    model=None,
    target: str | None = None,
    init: Mapping[str, float] | None = None,
    method: str = "auto",
    *,
    lr: float | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    nll: bool = False,
    allow_nan: bool = False,
    progress: Progress | None = None,
    backend: str = "auto",
    threads: int | None = None,
    engine: str = "local",
    scheduler=None,
    partitions: int | None = None,
) -> FitResult:
    """Fit the parameters of ``cost`` (or of ``model`` to column ``target``) to ``data``.

    Args:
        data: a CSV path, a ``Dataset``, a dict of equal-length arrays, or
            None for a cost without data (every name in it is a parameter).
        cost: exprgrad text of a scalar cost to minimize (sum or mean over rows).
        model, target: a per-row model and the column it should reproduce;
            the cost is then sum((model - target)^2).
        init: starting values by parameter name (others start at 0): a
            member (``w[3]``) or a family (``w``: every member); or
            ``'random'`` / ``'random:SEED'`` for a reproducible random start
            (``members.Members.random``); or a list of both, the values winning.
        method: auto (for a sum of squares lm, or a direct QR solve when the
            residuals are linear in the parameters; newton for any other cost,
            lbfgs past NEWTON_PARAMS parameters), gd, momentum, adam, lbfgs,
            newton or lm.
        lr: learning rate of gd, momentum, adam. max_iter, tol: stopping limits.
        nll: the cost is a negative log-likelihood: standard errors from the
            inverse of its exact Hessian.
        allow_nan: keep nan/inf cells when reading a CSV file.
        progress: called as progress(step, limit, cost, gradient norm or None).
        backend: how the passes over the data run: "numpy", "compiled" (numba,
            the extra exprgrad[fast]) or "auto" (compiled when installed and
            the data is large enough to repay compiling).
        threads: threads sharing the rows of each pass (None: every core);
            the results do not depend on it.
        engine: where the passes over the data run: "local" (this process)
            or "dask" (the data's partitions kept on a Dask cluster's
            workers, the extra exprgrad[dask]); the same result bits either way.
        scheduler: for "dask": None (a LocalCluster on this machine, one
            worker process per core, closed at the end), a scheduler's
            address ("tcp://host:8786") or a ``distributed.Client``.
        partitions: for "dask": how many partitions to cut the rows into
            (None: one per worker thread); the result does not depend on it.

    Returns:
        A ``FitResult`` (``diverged`` set, and the best finite point reached, when the
        cost became nan/inf or the parameters ran away).

    Raises:
        OptionError, DataError, ExprSyntaxError, NameResolutionError: bad input.
    """
    problem = prepare(data, cost, model, target, init, allow_nan=allow_nan)
    problem.objective.backend, problem.objective.threads = backend, threads
    options = FitOptions(method, lr=lr, max_iter=max_iter, tol=tol, nll=nll)
    plan(problem, options)  # option mistakes before a cluster starts
    with engine_for(problem, engine, scheduler, partitions):
        return solve(problem, options, progress)


@contextlib.contextmanager
def engine_for(problem: FitProblem, engine: str, scheduler=None, partitions: int | None = None):
    """``problem``'s objective running its passes on ``engine`` while in the block; closed after it."""
    columns = problem.objective.columns
    check_request(engine, scheduler, bool(columns), problem.objective.backend)
    spec = getattr(problem.dataset, "source", None)
    kept = problem.dataset.columns if problem.dataset is not None else {}
    unchanged = [name for name, value in columns.items() if name in kept and kept[name] is value]
    source = (spec, unchanged) if spec is not None and unchanged else None
    opened = open_engine(engine, columns, scheduler=scheduler, partitions=partitions, source=source)
    problem.objective.engine = opened
    try:
        yield opened
    finally:
        problem.objective.engine = None
        if opened is not None:
            opened.close()


# ---------------------------------------------------------------- helpers


def _rank(outcome) -> tuple:
    """Order of preference between ends: converged, then not diverged, then the lower cost."""
    cost = outcome.cost if math.isfinite(outcome.cost) else math.inf
    return (not outcome.converged, outcome.diverged, cost)


def _run(chosen: str, objective, x0, lr, limit: int, tolerance: float, report):
    """One run of the chosen method from ``x0``: its Outcome, unverified."""
    return METHODS[chosen].run(objective, x0, lr, limit, tolerance, report)


def _choose(problem: FitProblem, method: str, nll: bool) -> str:
    """The method to run: the user's, or auto's choice (see ``plan``)."""
    if method not in CHOICES:
        raise OptionError(f"unknown method '{method}' (choose from {', '.join(CHOICES)})", argument="method")
    if nll and problem.model is not None:
        raise OptionError(
            "is for a cost that is a negative log-likelihood; a fit of a model to a target is least squares",
            argument="nll",
        )
    least_squares = problem.residual is not None
    if method != AUTO and METHODS[method].least_squares and not least_squares:
        raise OptionError(
            f"{method} needs a sum of squares: give a model and a target "
            "(or a cost of the form sum((...)^2))",
            argument="method",
        )
    hessian = problem.objective.has_hessian
    if not hessian and (method == "newton" or nll):
        raise OptionError(
            "needs the exact Hessian, which could not be built for this cost: "
            f"fit with {Mention('method', 'lbfgs')} (or lm for a sum of squares)",
            argument="nll" if nll else "method",
            mentions=(Mention("method", "lbfgs"),),
        )
    if method != AUTO:
        return method  # the user's choice runs as chosen
    if least_squares:
        if _matrix_too_large(problem, False) is not None:
            return "lbfgs"  # lm needs a partition's rows of the Jacobian, which would not fit in memory
        # qr, like lm, holds a partition's rows of the Jacobian at a time (its factors, its refinement).
        return "qr" if problem.objective.residuals_are_linear() else "lm"
    return "newton" if hessian and len(problem.params) <= NEWTON_PARAMS else "lbfgs"


def _uncertainty(problem: FitProblem, outcome, nll: bool):
    """(stderr by name, notes, condition number, RSS) at the outcome's point."""
    names = problem.params
    none = {name: None for name in names}
    if outcome.diverged:
        return none, [], None, None
    objective = problem.objective
    rss = factors = None
    wanted = nll or (problem.residual is not None and outcome.factors is None)
    refusal = _matrix_too_large(problem, nll) if wanted else None
    if refusal is not None:  # the fit stands; only its standard errors cannot be had
        return none, [f"no standard errors: {refusal}"], None, None
    if problem.residual is not None:
        factors = outcome.factors if outcome.factors is not None else objective.residual_factors(outcome.x)
        # The evaluator's sum over rows (exact sum of block sums): inf past the float range.
        rss = factors.rss
    notes = []
    if nll:
        # A mean is the likelihood per row: the total negative log-likelihood is n times it.
        cost = objective.cost
        per_row = len(cost.inputs) == 1 and build.call("mean", cost.inputs[0]) is cost
        errors, state = hessian_stderr(objective.hessian(outcome.x) * (problem.rows if per_row else 1), names)
        if per_row:
            notes.append(
                "the cost is a mean, so standard errors use n times its Hessian (the total likelihood)"
            )
    elif factors is not None:
        # R of J in place of J (same singular values and column norms); a J that was
        # not finite (the factors saw 0 there) is reported as such.
        matrix = factors.R if factors.finite_jacobian else np.full_like(factors.R, np.nan)
        errors, state = least_squares_stderr(matrix, rss, names, rows=factors.rows)
    else:
        return none, [], None, None
    stderr = none if errors is None else dict(zip(names, map(float, errors)))
    return stderr, [state.note, *notes], _finite_or_none(state.condition), rss


def _matrix_too_large(problem: FitProblem, nll: bool) -> str | None:
    """Why the matrix the standard errors need (p x p Hessian; the Jacobian of the residuals, of a
    partition's rows, which is what the least-squares factors hold at once) would not fit, or None."""
    p = len(problem.params)
    rows = min(problem.rows, FACTOR_PARTITION_ROWS)
    rows, what = (p, "the Hessian of the cost") if nll else (rows, "the Jacobian of the residuals")
    how = f"{rows:,} x {p:,} x {memory.VALUE_BYTES} bytes"
    return memory.too_large(rows * p * memory.VALUE_BYTES, what, how)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None
