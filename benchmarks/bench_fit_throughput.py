"""Throughput of a fit: seconds per gradient-descent iteration over 1,000,000 rows.

Linear regression (mean squared error) and logistic regression (mean negative
log-likelihood), each by `exprgrad.fit`'s gradient descent (the compiled
value+gradient schedule: one pass over the rows per iteration) and by
hand-written numpy gradient descent on the same arrays, measured in the same
run. Prints the time per iteration of each and the ratio exprgrad / numpy
(below 1: exprgrad is faster). Each side runs short descents of ITERATIONS
steps, REPEATS times, interleaved; the best time counts (the machine may be
shared). Usage: python benchmarks/bench_fit_throughput.py [ROWS] [ITERATIONS] [REPEATS]
"""

from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exprgrad.fitting import prepare
from exprgrad.fitting.optimizers import GradientDescent, descend


def numpy_linear(x, y, lr, iterations):
    """Textbook numpy gradient descent for mean((a*x + b - y)^2), with the cost each step."""
    a = b = 0.0
    for _ in range(iterations):
        r = a * x + b - y
        cost = np.mean(r * r)
        grad_a, grad_b = 2.0 * np.mean(r * x), 2.0 * np.mean(r)
        a, b = a - lr * grad_a, b - lr * grad_b
    return {"a": a, "b": b}, cost


def numpy_logistic(x, y, lr, iterations):
    """Textbook numpy gradient descent for mean(softplus(w*x + c) - y*(w*x + c))."""
    w = c = 0.0
    for _ in range(iterations):
        z = w * x + c
        cost = np.mean(np.logaddexp(0.0, z) - y * z)
        error = 1.0 / (1.0 + np.exp(-z)) - y
        grad_w, grad_c = np.mean(error * x), np.mean(error)
        w, c = w - lr * grad_w, c - lr * grad_c
    return {"w": w, "c": c}, cost


def best_times(repeats, *runs):
    """The best wall time of each run over ``repeats`` interleaved rounds, and its last value."""
    times = [[] for _ in runs]
    values = [None] * len(runs)
    for _ in range(repeats):
        for k, run in enumerate(runs):
            began = time.perf_counter()
            values[k] = run()
            times[k].append(time.perf_counter() - began)
    return [min(t) for t in times], values


def main(rows: int = 1_000_000, iterations: int = 5, repeats: int = 15) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(rows)
    cases = [
        (
            "linear",
            "mean((a*x + b - y)^2)",
            2.0 * x + 1.0 + 0.5 * rng.standard_normal(rows),
            numpy_linear,
            0.1,
        ),
        (
            "logistic",
            "mean(softplus(w*x + c) - y*(w*x + c))",
            (rng.random(rows) < 1.0 / (1.0 + np.exp(-(1.5 * x - 0.5)))).astype(float),
            numpy_logistic,
            0.5,
        ),
    ]
    print(f"{rows:,} rows, {iterations} gradient-descent iterations, best of {repeats}")
    print(f"{'problem':<10} {'exprgrad ms/it':>15} {'numpy ms/it':>12} {'ratio':>7}")
    for name, cost, y, baseline, lr in cases:
        problem = prepare({"x": x, "y": y}, cost=cost)
        objective = problem.objective
        objective.value_grad(problem.x0 + 0.125)  # compile the schedule outside the timing

        ours = partial(descend, objective, problem.x0, GradientDescent(lr), iterations, 0.0)
        theirs = partial(baseline, x, y, lr, iterations)
        (ours_time, theirs_time), (outcome, (params, _)) = best_times(repeats, ours, theirs)
        # descend evaluates once more than it steps (the starting point).
        per_ours = ours_time / (iterations + 1) * 1e3
        per_theirs = theirs_time / iterations * 1e3
        agree = np.allclose(outcome.x, [params[name] for name in problem.params], rtol=1e-8)
        print(
            f"{name:<10} {per_ours:>15.2f} {per_theirs:>12.2f} {per_ours / per_theirs:>7.2f}"
            f"{'' if agree else '  (parameters differ!)'}"
        )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args)
