"""`exprgrad check`: every partial derivative against central finite differences."""

from __future__ import annotations

import json
import math

import click
import numpy as np

from .diff_cmd import differentiate
from .command import ExprCommand
from .inputs import build_function, check_bindings, data_options, load_data, parse_bindings
from .output import json_value

# Central differences: error ~ h^2 f''' + eps f / h, smallest near h = eps^(1/3),
# scaled by the size of the variable.
STEP = np.finfo(float).eps ** (1 / 3)


def central_difference(run, name: str, bindings: dict, columns: dict):
    """d(output)/d(name) by central differences; a column moves in every row at once."""
    if name in columns:
        base = columns[name]
        h = STEP * max(1.0, float(np.max(np.abs(base))))  # one step for every row
        up = run(bindings, {**columns, name: base + h})
        down = run(bindings, {**columns, name: base - h})
        return (np.asarray(up) - np.asarray(down)) / (2 * h)
    value = bindings[name]
    h = STEP * max(1.0, abs(value))
    up = run({**bindings, name: value + h}, columns)
    down = run({**bindings, name: value - h}, columns)
    return (np.asarray(up) - np.asarray(down)) / (2 * h)


def relative_error(analytic, numeric) -> float:
    """max over rows of |a - n| / max(|a|, |n|, 1): relative for large values, absolute near 0."""
    a, n = np.asarray(analytic, dtype=float), np.asarray(numeric, dtype=float)
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))):
        return math.inf if not np.array_equal(a, n, equal_nan=True) else 0.0
    return float(np.max(np.abs(a - n) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(n)))))


@click.command("check", cls=ExprCommand)
@data_options
@click.argument("expr")
@click.option("--at", "at", multiple=True, metavar="a=1,b=2", help="The point to check at.")
@click.option("--data", type=click.Path(dir_okay=False), metavar="FILE.csv", help="Data columns.")
@click.option("--wrt", default="", metavar="NAMES", help="Names or families to check (default: every parameter).")
@click.option("--tol", type=float, default=1e-6, show_default=True,
              help="Largest accepted relative error (absolute below 1).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--allow-nan", is_flag=True, help="Keep NaN/inf cells in the data.")
def check_command(expr, at, data, wrt, tol, fmt, allow_nan):
    """Compare every partial derivative of EXPR with central finite differences.

    Exit status 1 when any disagrees beyond --tol. For a data column, every
    row moves at once: a scalar function is compared on the sum of its
    per-row derivatives, a per-row one row by row.

    \b
    Examples:
      exprgrad check "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv
      exprgrad check "atan2(a, b) * exp(-a^2)" --at a=0.3,b=-1.2
    """
    from ..backends.evaluate import compile_schedule

    dataset = load_data(data, allow_nan)
    function = build_function(expr, dataset)
    bindings = parse_bindings(at)
    columns = check_bindings(function, bindings, dataset)
    names, raw, _ = differentiate(function, wrt, 1, "reverse")
    analytic = compile_schedule(list(raw.values())).run(bindings, columns or None)
    value_only = compile_schedule([function.output])

    def run(params, cols):
        return value_only.run(params, cols or None)[0]

    rows = []
    for name, derivative in zip(names, analytic):
        if name not in bindings and name not in columns:
            bindings[name] = 0.0  # a --wrt name the function does not use: derivative 0
        numeric = central_difference(run, name, bindings, columns)
        if name in columns and not function.output.per_row:
            derivative = float(np.sum(derivative))  # the directional derivative along all rows
        error = relative_error(derivative, numeric)
        rows.append((name, derivative, numeric, error, error <= tol))

    if fmt == "json":
        click.echo(json.dumps({
            "tolerance": tol,
            "ok": all(r[4] for r in rows),
            "partials": {
                name: {
                    "analytic": json_value(a), "numeric": json_value(n),
                    "relative_error": json_value(e), "ok": ok,  # inf as null: strict JSON
                }
                for name, a, n, e, ok in rows
            },
        }, ensure_ascii=False, allow_nan=False))
    else:
        table = [("wrt", "analytic", "numeric", "rel. error", "")]
        for name, a, n, e, ok in rows:
            table.append((name, _summary(a), _summary(n), f"{e:.1e}", "ok" if ok else "DISAGREES"))
        widths = [max(len(r[i]) for r in table) for i in range(5)]
        for row in table:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    failed = [r[0] for r in rows if not r[4]]
    if failed:
        click.echo(
            f"{len(failed)} of {len(rows)} partial derivatives disagree with finite differences "
            f"beyond {tol:g}: {', '.join(failed)}",
            err=True,
        )
        return 1
    return 0


def _summary(value) -> str:
    if np.ndim(value) == 0:
        return f"{float(value):.10g}"
    values = np.asarray(value)
    return f"{len(values)} rows, first {values[0]:.6g}"
