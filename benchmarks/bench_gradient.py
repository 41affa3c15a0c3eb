"""Gradient cost: value + full gradient against the value alone, and `exprgrad diff` at scale.

Prints, each beside a baseline measured in the same run:
- value and full gradient over 1,000,000 rows, as a ratio to the value alone
  (target: at most 2.5), for linear least squares, logistic regression and a
  small tanh network; and the same ratio for hand-written numpy gradients;
- the whole `exprgrad diff` process on a 10,000-operator expression with 100
  parameters (target: under 1 s), against `exprgrad eval` of the same text;
- printed output size at 2,500, 5,000 and 10,000 operators (target: linear).

Run: python benchmarks/bench_gradient.py
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from timing import best_time

from exprgrad.backends.evaluate import compile_schedule
from exprgrad.function import parse
from exprgrad.passes.diff import diff
from exprgrad.selection import select

N = 1_000_000


def network_text(units: int) -> str:
    hidden = " + ".join(f"v[{j}]*tanh(w[{j}]*x + c[{j}])" for j in range(units))
    return f"mean(({hidden} + b - y)^2)"


def hand_linear(x, y, a, b):
    r = a * x + b - y
    return np.mean(r * r)


def hand_linear_grad(x, y, a, b):
    r = a * x + b - y
    return np.mean(r * r), 2 * np.mean(r * x), 2 * np.mean(r)


def hand_logistic(x, y, w, c):
    z = w * x + c
    return np.mean(np.logaddexp(0, z) - y * z)


def hand_logistic_grad(x, y, w, c):
    z = w * x + c
    p = 1 / (1 + np.exp(-z))
    return np.mean(np.logaddexp(0, z) - y * z), np.mean((p - y) * x), np.mean(p - y)


def bench_value_and_gradient():
    rng = np.random.default_rng(0)
    x = rng.normal(size=N)
    y = 2 * x + 1 + rng.normal(size=N)
    labels = (rng.uniform(size=N) < 1 / (1 + np.exp(-x))).astype(float)
    cases = [
        (
            "linear least squares",
            "mean((a*x + b - y)^2)",
            {"a": 1.5, "b": 0.5},
            y,
            lambda: hand_linear(x, y, 1.5, 0.5),
            lambda: hand_linear_grad(x, y, 1.5, 0.5),
        ),
        (
            "logistic regression",
            "mean(softplus(w*x + c) - y*(w*x + c))",
            {"w": 0.7, "c": -0.2},
            labels,
            lambda: hand_logistic(x, labels, 0.7, -0.2),
            lambda: hand_logistic_grad(x, labels, 0.7, -0.2),
        ),
        ("tanh network, 8 units", network_text(8), None, y, None, None),
    ]
    print(f"value + full gradient over {N:,} rows (ratio to the value alone; target <= 2.5):")
    for label, text, params, target, hand_value, hand_grad in cases:
        f = parse(text, columns=["x", "y"])
        wrt, _ = select(f.output, [])
        params = params or {name: 0.1 + 0.01 * k for k, name in enumerate(f.params)}
        grads = list(diff(f.output, wrt).values())
        columns = {"x": x, "y": target}
        value_only = compile_schedule([f.output])
        with_grad = compile_schedule([f.output, *grads])
        value_time = best_time(lambda s=value_only, p=params, c=columns: s.run(p, c))
        grad_time = best_time(lambda s=with_grad, p=params, c=columns: s.run(p, c))
        line = (
            f"  {label:24s} value {value_time * 1e3:6.1f} ms, value+gradient ({len(grads)} partials) "
            f"{grad_time * 1e3:6.1f} ms: ratio {grad_time / value_time:.2f}"
        )
        if hand_value is not None:
            hv, hg = best_time(hand_value), best_time(hand_grad)
            line += f"; numpy by hand {hg / hv:.2f} (its value {hv * 1e3:.1f} ms, ours/hand {value_time / hv:.2f})"
        print(line)


def big_expression(operators: int) -> str:
    # Terms of 10 operators each, over 100 parameters p[0..99].
    terms = []
    for i in range(operators // 10):
        p, q = i % 100, (i * 7 + 3) % 100
        terms.append(f"p[{p}]*sin(p[{q}]*x + {i % 13}) * exp(-p[{(q + 1) % 100}]*x^2)")
    return f"mean(({' + '.join(terms)} - y)^2)"


def bench_diff_command():
    text = big_expression(10_000)
    command = [sys.executable, "-m", "exprgrad"]
    ours = best_time(lambda: subprocess.run([*command, "diff", text], capture_output=True, check=True), 3)
    baseline = best_time(
        lambda: subprocess.run(
            [
                *command,
                "eval",
                text,
                "--format",
                "json",
                "--at",
                ",".join(f"p[{k}]=0.1" for k in range(100)) + ",x=1,y=2",
            ],
            capture_output=True,
            check=True,
        ),
        3,
    )
    print(
        f"exprgrad diff, 10,000 operators, 100 parameters: {ours:.2f} s (target < 1 s); "
        f"exprgrad eval of the same text {baseline:.2f} s; ratio {ours / baseline:.2f}"
    )
    sizes = []
    for operators in (2_500, 5_000, 10_000):
        out = subprocess.run(
            [*command, "diff", big_expression(operators)], capture_output=True, check=True
        ).stdout
        sizes.append((operators, len(out)))
    growth = ", ".join(f"{ops:,} ops -> {size:,} chars ({size / ops:.1f}/op)" for ops, size in sizes)
    print(f"printed derivative size: {growth}")


if __name__ == "__main__":
    bench_value_and_gradient()
    bench_diff_command()
