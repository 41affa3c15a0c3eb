"""gd, momentum and adam on every bundled sample: chosen steps against fixed learning rates.

For each sample fit the README shows (and a straight line over 100,000 rows
written as a sum), each method runs twice in the same process: with the steps
it chooses itself (no --lr: line searches and restarts) and with the fixed
learning rate that used to be its default (0.01, 0.01, 0.001). Prints, for
each, whether it converged (verified first-order conditions), diverged, or
stopped at the iteration limit, its iterations, passes over the data and
milliseconds. Usage: python benchmarks/bench_steps.py [MAX_ITER]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exprgrad.fitting import FitOptions, prepare, solve

SAMPLES = ROOT / "samples"
FIXED = {"gd": 0.01, "momentum": 0.01, "adam": 0.001}


def cases():
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 5, 100_000)
    big = {"x": x, "y": 2.5 * x + 0.8 + rng.standard_normal(x.size)}
    start = {"b1": 1.0, "b2": 1.0}
    return [
        ("linear model", SAMPLES / "linear.csv", {"model": "a*x + b", "target": "y"}, None),
        ("linear mean", SAMPLES / "linear.csv", {"cost": "@least_squares.exprgrad"}, None),
        ("logistic sum", SAMPLES / "logistic.csv", {"cost": "sum(softplus(w*x + c) - y*(w*x + c))"}, None),
        ("logistic mean", SAMPLES / "logistic.csv", {"cost": "@logistic.exprgrad"}, None),
        ("saturation", SAMPLES / "nonlinear.csv", {"model": "b1*(1 - exp(-b2*x))", "target": "y"}, start),
        ("saturation mean", SAMPLES / "nonlinear.csv", {"cost": "@saturation.exprgrad"}, start),
        ("line, 100k rows, sum", big, {"cost": "sum((a*x + b - y)^2)"}, None),
    ]


def outcome(result) -> str:
    if result.diverged:
        return "diverged"
    return "converged" if result.converged else "limit"


def main(max_iter: int = 10000) -> None:
    print(
        f"{'fit':<22} {'method':<9} {'steps':<10} {'outcome':<10} {'iterations':>10} {'passes':>7} {'ms':>8}"
    )
    for name, data, spec, init in cases():
        spec = {
            k: (SAMPLES / v[1:]).read_text() if isinstance(v, str) and v.startswith("@") else v
            for k, v in spec.items()
        }
        for method, fixed in FIXED.items():
            for steps, lr in (("chosen", None), (f"lr {fixed:g}", fixed)):
                problem = prepare(data if isinstance(data, dict) else str(data), init=init, **spec)
                began = time.perf_counter()
                result = solve(problem, FitOptions(method, lr=lr, max_iter=max_iter))
                elapsed = (time.perf_counter() - began) * 1e3
                print(
                    f"{name:<22} {method:<9} {steps:<10} {outcome(result):<10} "
                    f"{result.iterations:>10} {result.evaluations:>7} {elapsed:>8.0f}"
                )


if __name__ == "__main__":
    main(*[int(a) for a in sys.argv[1:2]])
