"""Size and drawing time of `exprgrad fit --plot` over many rows, against a vector scatter of every row.

Fits a line to ROWS random rows, then draws the plot as exprgrad does (at most
MAX_POINTS rows shown, drawn as pixels) and, as the baseline measured in the same
run, with every row drawn as a vector marker (what a plain matplotlib scatter
writes). Prints the file size and time of each, and their ratios.

    python benchmarks/bench_plot.py [--rows 1000000] [--format svg] [--baseline-rows N]

The baseline is slow (about 45 s for 1,000,000 rows in SVG); --baseline-rows
draws it over fewer rows, and the size is then scaled up to ROWS (it grows
linearly with the number of markers).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exprgrad.fitting import plan, prepare, solve
from exprgrad.fitting import plot as plot_module


def drawn(problem, result, fmt: str) -> tuple[int, float]:
    start = time.perf_counter()
    image = plot_module.plot_fit(result, problem, fmt)
    return len(image), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=plot_module.FORMATS, default="svg")
    parser.add_argument("--baseline-rows", type=int, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)

    def problem_of(rows: int):
        x = rng.uniform(0, 10, rows)
        columns = {"x": x, "y": 2.5 * x + 1 + rng.normal(0, 1, rows)}
        problem = prepare(columns, model="a*x + b", target="y")
        plan(problem)
        return problem, solve(problem)

    problem, result = problem_of(args.rows)
    import matplotlib.figure  # noqa: F401  (imported before timing: both runs draw, neither imports)

    size, seconds = drawn(problem, result, args.format)
    print(
        f"exprgrad: {args.rows:,} rows -> {size / 1e3:,.0f} kB {args.format} in {seconds:.2f} s "
        f"({min(args.rows, plot_module.MAX_POINTS):,} rows shown, as pixels)"
    )

    baseline_rows = args.baseline_rows or args.rows
    if baseline_rows != args.rows:
        problem, result = problem_of(baseline_rows)
    plot_module.MAX_POINTS = plot_module.RASTERIZE_ABOVE = sys.maxsize  # every row, as vectors
    base_size, base_seconds = drawn(problem, result, args.format)
    scale = args.rows / baseline_rows
    print(
        f"baseline: {baseline_rows:,} rows -> {base_size / 1e3:,.0f} kB in {base_seconds:.2f} s"
        + (
            f"; scaled to {args.rows:,} rows: {base_size * scale / 1e3:,.0f} kB, {base_seconds * scale:.1f} s"
            if scale != 1
            else ""
        )
    )
    print(
        f"ratio (exprgrad / baseline): size {size / (base_size * scale):.5f}, "
        f"time {seconds / (base_seconds * scale):.3f}"
    )


if __name__ == "__main__":
    main()
