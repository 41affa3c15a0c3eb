"""Time per gradient-descent iteration of `exprgrad.fit(method="gd")` against numpy by hand.

Three problems over 1,000,000 rows: linear regression (2 parameters,
``mean((a*x + b - y)^2)``), logistic regression with 5 features and with 50
(``z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)``). Both sides take the
same steps from the same start, measured in the same run:

- "fixed lr": x <- x - lr * grad, one value + gradient per iteration
  (``exprgrad.fit(..., method="gd", lr=LR, tol=0)``);
- "line search": exprgrad's own rule (no lr given: a first-step search, then
  Armijo backtracking with the trial step doubled after a step accepted at
  its first trial), written again in numpy below; the evaluations per
  iteration are printed for both, so the same steps are seen to be taken.

exprgrad's time per iteration is read from its ``progress`` callback (called
after every iteration), so parsing, differentiation, compiling, the check of
the end point and the standard errors are not in it: only the loop, as
numpy's loop is. The best of ``--repeat`` interleaved rounds counts (the
machine may be shared). Target: at most 1.0x numpy by hand.

    python benchmarks/bench_fit_iteration.py [--rows N] [--iterations K] [--repeat R] [--threads 1] [--backend numpy]
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import time
from pathlib import Path

from timing import pin_threads  # before numpy loads

THREADS = pin_threads(sys.argv[1:], default=1)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import exprgrad

LOGISTIC = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"
# exprgrad.fitting.linesearch's constants, for the numpy line search.
SUFFICIENT, NOISE = 0.5, 1e-10


# ---------------------------------------------------------------- numpy by hand


def linear_value_grad(x, y):
    def value_grad(p):
        r = p[0] * x + p[1] - y
        return np.mean(r * r), np.array([2.0 * np.mean(r * x), 2.0 * np.mean(r)])

    return value_grad


def logistic_value_grad(x, y):
    """x: rows by features (row-major), parameters [w..., c]."""
    n, m = x.shape

    def value_grad(p):
        z = x @ p[:m] + p[m]
        value = np.mean(np.logaddexp(0.0, z) - y * z)
        r = 1.0 / (1.0 + np.exp(-z)) - y
        return value, np.append(x.T @ r / n, np.mean(r))

    return value_grad


def fixed_descent(value_grad, p0, lr, iterations, stamps):
    """Gradient descent with a fixed step: (parameters, evaluations); a time stamp per iteration."""
    p = p0.copy()
    _, grad = value_grad(p)
    for _ in range(iterations):
        p = p - lr * grad
        _, grad = value_grad(p)
        stamps.append(time.perf_counter())
    return p, iterations + 1


def _acceptable(cost0, grad0, cost, grad, t, direction):
    if not (math.isfinite(cost) and np.all(np.isfinite(grad))):
        return False
    slope = float(grad0 @ direction)
    if abs(cost - cost0) <= NOISE * max(abs(cost0), abs(cost)):
        return float(grad @ direction) <= (2 * SUFFICIENT - 1) * slope
    return cost <= cost0 + SUFFICIENT * t * slope


def searched_descent(value_grad, p0, iterations, stamps):
    """exprgrad's gd rule (first-step search, then doubling/halving Armijo): (parameters, evaluations)."""
    p = p0.copy()
    cost, grad = value_grad(p)
    evaluations, t, grow = 1, None, True
    for _ in range(iterations):
        direction = -grad
        if t is None:  # the first step: expand while acceptable, else halve
            t = max(1.0, float(np.max(np.abs(p)))) / float(np.max(np.abs(direction)))
            trial = value_grad(p + t * direction)
            evaluations += 1
            if _acceptable(cost, grad, *trial, t, direction):
                while True:
                    longer = value_grad(p + 2 * t * direction)
                    evaluations += 1
                    if not _acceptable(cost, grad, *longer, 2 * t, direction):
                        break
                    trial, t = longer, 2 * t
                step = t
            else:
                t /= 2
                while True:
                    trial = value_grad(p + t * direction)
                    evaluations += 1
                    if _acceptable(cost, grad, *trial, t, direction):
                        break
                    t /= 2
                step = t
        else:
            t = t * (2.0 if grow else 1.0)
            halvings = 0
            while True:
                trial = value_grad(p + t * direction)
                evaluations += 1
                if _acceptable(cost, grad, *trial, t, direction):
                    break
                t, halvings = t / 2, halvings + 1
            grow, step = halvings == 0, t
        p = p + step * direction
        cost, grad = trial
        stamps.append(time.perf_counter())
    return p, evaluations


# ---------------------------------------------------------------- exprgrad


def exprgrad_descent(columns, cost, names, lr, iterations, keywords):
    """(seconds per iteration of the loop, parameters, evaluations) of exprgrad.fit(method="gd")."""
    stamps = []

    def progress(step, limit, value, norm):
        stamps.append(time.perf_counter())

    result = exprgrad.fit(
        columns, cost=cost, method="gd", lr=lr, max_iter=iterations, tol=0.0, progress=progress, **keywords
    )
    if len(stamps) < 2:
        raise RuntimeError(f"the fit stopped after {len(stamps)} iterations: {result.message}")
    per = (stamps[-1] - stamps[0]) / (len(stamps) - 1)
    return per, np.array([result.params[name] for name in names]), result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="threads of numpy's BLAS and of exprgrad")
    parser.add_argument("--backend", default="numpy", help="exprgrad's backend (numpy, compiled, auto)")
    args = parser.parse_args(argv)
    accepted = inspect.signature(exprgrad.fit).parameters
    keywords = {"threads": args.threads} if "threads" in accepted else {}
    if "backend" in accepted:
        keywords["backend"] = args.backend
    rows, iterations = args.rows, args.iterations
    rng = np.random.default_rng(7)
    problems = []
    x = rng.standard_normal(rows)
    y = 2.0 * x + 1.0 + 0.5 * rng.standard_normal(rows)
    problems.append(
        (
            "linear, 2 params",
            {"x": x, "y": y},
            "mean((a*x + b - y)^2)",
            ["a", "b"],
            linear_value_grad(x, y),
            0.1,
        )
    )
    for features in (5, 50):
        matrix = np.rint(rng.standard_normal((rows, features)) * 1e4) / 1e4
        w = rng.normal(0.0, 1.0 / math.sqrt(features), features)
        labels = (rng.random(rows) < 1.0 / (1.0 + np.exp(-(matrix @ w - 0.25)))).astype(float)
        columns = {f"x{j + 1}": np.ascontiguousarray(matrix[:, j]) for j in range(features)}
        columns["y"] = labels
        names = [f"w[{j + 1}]" for j in range(features)] + ["c"]
        problems.append(
            (
                f"logistic, {features} features",
                columns,
                LOGISTIC,
                names,
                logistic_value_grad(np.ascontiguousarray(matrix), labels),
                1.0,
            )
        )
    print(
        f"{rows:,} rows, {iterations} iterations, best of {args.repeat}, {THREADS} BLAS thread(s)"
        + "".join(f", exprgrad {key}={value}" for key, value in keywords.items())
    )
    print(
        f"{'problem':<23} {'rule':<12} {'exprgrad ms/it':>14} {'numpy ms/it':>12} {'ratio':>6} {'evals/it':>8}"
    )
    for label, columns, cost, names, value_grad, lr in problems:
        p0 = np.zeros(len(names))
        for rule, step in (("fixed lr", lr), ("line search", None)):
            ours, theirs = math.inf, math.inf
            for _ in range(args.repeat):
                per, params, _ = exprgrad_descent(columns, cost, names, step, iterations, keywords)
                ours = min(ours, per)
                stamps = []
                if step is None:
                    hand, evaluations = searched_descent(value_grad, p0, iterations, stamps)
                else:
                    hand, evaluations = fixed_descent(value_grad, p0, step, iterations, stamps)
                theirs = min(theirs, (stamps[-1] - stamps[0]) / (len(stamps) - 1))
            # Both take the same steps: the same parameters at the end (else say so).
            agree = np.allclose(params, hand, rtol=1e-7, atol=1e-10)
            print(
                f"{label:<23} {rule:<12} {ours * 1e3:>14.2f} {theirs * 1e3:>12.2f} {ours / theirs:>6.2f}"
                f" {(evaluations - 1) / iterations:>8.2f}"
                + ("" if agree else f"  (parameters differ: {np.max(np.abs(params - hand)):.1e})")
            )


if __name__ == "__main__":
    main()
