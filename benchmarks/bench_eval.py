"""Foundation speed: parsing + lowering, start-up of `exprgrad eval`, evaluation over rows.

Prints each measurement beside a baseline measured in the same run, and the ratio:
- parse + lower of a 100,000-operator expression (target: under 1 s; baseline:
  Python's own `compile()` of the same text, for scale);
- `exprgrad eval` of a small expression, whole process wall time (target: under
  0.3 s; baseline: `python -c pass`), and whether scipy/graphviz/pandas were imported;
- a 20-operator expression over 1,000,000 rows against the same expression written
  by hand in numpy (target: ratio <= 1).

Run: python benchmarks/bench_eval.py
"""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize

import numpy as np
from timing import best_time

from exprgrad import graph
from exprgrad.backends.evaluate import compile_schedule
from exprgrad.function import parse

TERMS = 25_000  # a*sin(x + c) terms: 99,999 operators


def bench_parse():
    def text_for(run: int) -> str:
        # A different text each run, so every run builds its graph nodes anew.
        return " + ".join(f"a{i % 50}*sin(x{i % 7} + {i + 100_000 * run})" for i in range(TERMS))

    texts = iter([text_for(run) for run in range(4)])
    ours = best_time(lambda: parse(next(texts)), 3)
    text = text_for(3)
    operators = 4 * TERMS - 1  # each term has *, sin and +; a + joins each pair of terms
    ops_count = graph.count_nodes([parse(text).output])
    # Python's compile() hits its recursion limit on a sum this long, so the
    # baseline is Python's own tokenizer over the same text: lexing alone.
    python = best_time(lambda: list(tokenize.generate_tokens(io.StringIO(text).readline)), 3)
    print(
        f"parse+lower  {operators:,} operators ({ops_count:,} graph nodes): {ours:.3f} s "
        f"(target < 1 s); python tokenize of the same text {python:.3f} s; ratio {ours / python:.2f}"
    )


def bench_startup():
    command = [sys.executable, "-m", "exprgrad", "eval", "-x^2 + 2*y", "--at", "x=3,y=1"]
    ours = best_time(lambda: subprocess.run(command, capture_output=True, check=True), 5)
    bare = best_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 5)
    probe = (
        subprocess.run(
            [
                sys.executable,
                "-c",
                (
                    "import sys; from exprgrad.cli import cli\n"
                    "try:\n    cli(['eval', 'x+1', '--at', 'x=1'])\nexcept SystemExit: pass\n"
                    "print(sorted(m for m in ('scipy', 'graphviz', 'pandas', 'matplotlib') if m in sys.modules))"
                ),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    print(
        f"exprgrad eval start-up: {ours:.3f} s wall (target < 0.3 s); python -c pass {bare:.3f} s; "
        f"ratio {ours / bare:.1f}; heavy imports on that path: {probe}"
    )


def bench_rows():
    n = 1_000_000
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=n), rng.normal(size=n)
    text = "(a*sin(x) + b*exp(-x^2) + tanh(y*x) + sqrt(y^2 + 1)) * log1p((x - y)^2) / (1 + c*x^2)"
    f = parse(text, columns=["x", "y"])
    count = sum(1 for node in graph.toposort([f.output]) if node.inputs)
    schedule = compile_schedule([f.output])
    params = {"a": 2.0, "b": 1.0, "c": 0.5}
    columns = {"x": x, "y": y}

    def numpy_by_hand():
        a, b, c = 2.0, 1.0, 0.5
        return (
            (a * np.sin(x) + b * np.exp(-(x**2)) + np.tanh(y * x) + np.sqrt(y**2 + 1))
            * np.log1p((x - y) ** 2)
            / (1 + c * x**2)
        )

    ours = best_time(lambda: schedule.run(params, columns))
    hand = best_time(numpy_by_hand)
    assert np.allclose(schedule.run(params, columns)[0], numpy_by_hand())
    print(
        f"{count}-operator expression over {n:,} rows: exprgrad {ours * 1e3:.1f} ms, "
        f"numpy by hand {hand * 1e3:.1f} ms, ratio {ours / hand:.2f} (target <= 1)"
    )


if __name__ == "__main__":
    bench_parse()
    bench_startup()
    bench_rows()
