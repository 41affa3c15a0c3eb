"""The compiled backend against the numpy backend, and what compiling costs.

Value + gradient over 1,000,000 rows (numpy backend, compiled backend; one
thread and every core), measured in the same run; then the first and second
process compiling (and loading) the kernels of the largest graph, in a fresh
kernel cache folder, against the time one numpy evaluation takes there.

    python benchmarks/bench_compiled.py [--rows N]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
from timing import best_time

import exprgrad
from exprgrad.backends import compiled
from exprgrad.backends.evaluate import compile_schedule
from exprgrad.passes.diff import diff
from exprgrad.passes.simplify import simplify_many
from exprgrad.selection import select

ROOT = Path(__file__).resolve().parent.parent

WORKLOADS = {
    "linear regression, 2 parameters": "mean((a*x + b - y)^2)",
    "quadratic surface, 6 parameters": "mean((a*x^2 + b*x*z + c*z^2 + d*x + e*z + g - y)^2)",
    "logistic regression, 5 features": (
        "mean(softplus(a*x1 + b*x2 + c*x3 + d*x4 + e*x5 + g) - y*(a*x1 + b*x2 + c*x3 + d*x4 + e*x5 + g))"
    ),
    "exp-sum least squares, 4 parameters": "mean((a*exp(-b*x) + c*exp(-d*x) - y)^2)",
}


def outputs_of(text: str):
    function = exprgrad.parse(text)
    wrt, _ = select(function.output, [])
    gradient = diff(function.output, wrt)
    return function, [function.output, *simplify_many([gradient[name] for name in gradient])]


def compare(rows: int) -> None:
    rng = np.random.default_rng(1)
    cores = os.cpu_count() or 1
    print(f"value + gradient over {rows:,} rows (best of 5; ratio = compiled / numpy backend, same threads)")
    for title, text in WORKLOADS.items():
        function, outputs = outputs_of(text)
        columns = {name: rng.standard_normal(rows) for name in function.columns}
        params = {name: 0.1 + 0.01 * k for k, name in enumerate(function.params)}
        numpy_schedule = compile_schedule(outputs)
        compiled_schedule = compile_schedule(outputs, backend="compiled")
        compiled_schedule.run(params, columns)  # compiled (or loaded) once
        auto = compile_schedule(outputs, backend="auto").uses_compiled(rows)
        parts = []
        for threads in sorted({1, cores}):
            n = best_time(lambda s=numpy_schedule, p=params, c=columns, t=threads: s.run(p, c, threads=t))
            c = best_time(lambda s=compiled_schedule, p=params, c=columns, t=threads: s.run(p, c, threads=t))
            parts.append(
                f"{threads} thread{'s' if threads > 1 else ''}: numpy {n * 1e3:.1f} ms, "
                f"compiled {c * 1e3:.1f} ms, ratio {c / n:.2f}"
            )
        print(
            f"  {title}: {'; '.join(parts)}; auto picks {'compiled' if auto else 'numpy'} "
            f"(model speedup {compiled_schedule.speedup:.2f})"
        )


PROBE = """
    import time
    start = time.perf_counter()
    import numpy as np
    import exprgrad
    from exprgrad.backends.evaluate import compile_schedule
    from exprgrad.passes.diff import diff
    from exprgrad.passes.simplify import simplify_many
    from exprgrad.selection import select
    f = exprgrad.parse({text!r})
    wrt, _ = select(f.output, [])
    gradient = diff(f.output, wrt)
    outputs = [f.output, *simplify_many([gradient[name] for name in gradient])]
    rng = np.random.default_rng(1)
    columns = {{name: rng.standard_normal(10_000) for name in f.columns}}
    params = {{name: 0.1 for name in f.params}}
    ready = time.perf_counter()
    compile_schedule(outputs, backend={backend!r}).run(params, columns)
    print(time.perf_counter() - ready)
"""


def compile_times() -> None:
    title, text = max(WORKLOADS.items(), key=lambda item: len(outputs_of(item[1])[1]))
    with tempfile.TemporaryDirectory() as folder:
        env = dict(os.environ, EXPRGRAD_CACHE_DIR=folder)

        def probe(backend: str) -> float:
            code = textwrap.dedent(PROBE.format(text=text, backend=backend))
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
            )
            return float(done.stdout.split()[-1])

        base = probe("numpy")
        first, second = probe("compiled"), probe("compiled")
    print(f"compile time, {title} (value + gradient, one evaluation of 10,000 rows, seconds):")
    print(
        f"  numpy backend {base:.3f}; compiled, first process {first:.2f} (numba import + compile), "
        f"second process {second:.2f} (numba import + cache load): {first / second:.1f} times faster"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    if not compiled.available():
        sys.exit("numba is not installed: pip install 'exprgrad[fast]'")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["EXPRGRAD_CACHE_DIR"] = folder
        compare(args.rows)
    compile_times()


if __name__ == "__main__":
    main()
