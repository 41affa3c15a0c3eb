"""`exprgrad eval`: the value of a function (and its gradient) at a point, over data."""

from __future__ import annotations

import click
import numpy as np

from ..backends.evaluate import compile_schedule
from ..passes.diff import diff
from ..passes.simplify import simplify_many
from ..selection import select
from .command import ExprCommand
from .diff_cmd import NO_PARAMETERS
from .inputs import build_function, check_bindings, data_options, load_data, parse_bindings, per_member
from .output import as_rows, derivative_label, json_text, json_value, text_lines, unicode_ok, warn
from .speed import engine_over, speed_options


def warn_nonfinite(what: str, value) -> None:
    if not np.all(np.isfinite(value)):
        warn(
            f"{what} is not finite (nan or inf): a log or sqrt of a negative number, "
            "a division by zero or an overflow somewhere"
        )


@click.command("eval", cls=ExprCommand)
@data_options
@click.argument("expr")
@click.option("--at", "at", multiple=True, metavar="a=1,b=2", help="Parameter values.")
@click.option(
    "--data",
    type=click.Path(),
    metavar="FILE.csv",
    help="CSV file whose header names the data columns.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--grad", is_flag=True, help="Also the gradient, in the same pass over the data.")
@click.option(
    "--wrt", metavar="NAMES", default="", help="With --grad: names or families (default: every parameter)."
)
@click.option("--ascii", "ascii_only", is_flag=True, help="With --grad: write dJ/da instead of ∂J/∂a.")
@click.option("--allow-nan", is_flag=True, help="Keep NaN/inf cells in the data instead of refusing them.")
@speed_options
def eval_command(expr, at, data, fmt, grad, wrt, ascii_only, allow_nan, backend, threads, engine, scheduler):
    """Evaluate EXPR (the text, '-' for stdin, or @file).

    \b
    Examples:
      exprgrad eval "-x^2" --at x=3
      exprgrad eval "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv
      exprgrad eval "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv --grad
    """
    dataset = load_data(data, allow_nan)
    function, dataset = build_function(expr, dataset)
    bindings = parse_bindings(at)
    columns = check_bindings(function, bindings, dataset)
    outputs, names = [function.output], []
    if grad:
        wrt_nodes, warnings = select(function.output, [w for w in wrt.split(",") if w.strip()])
        for message in warnings:
            warn(message)
        if not wrt_nodes:
            warn(NO_PARAMETERS)
        gradient = diff(function.output, wrt_nodes)
        names = list(gradient)
        # The simplified graphs, the ones `diff` prints and evaluates: the raw
        # derivative of 1/(1 + exp(-a)) is inf*0 at a = -1000.
        outputs += simplify_many([gradient[name] for name in names])
    with engine_over(engine, scheduler, columns, backend) as opened:
        values = compile_schedule(outputs, backend).run(
            bindings, None if opened else columns or None, threads=threads, engine=opened
        )
    value = values[0]
    names, derivatives = per_member(function, names, outputs[1:], values[1:], bindings, dataset)
    partials = {
        name: as_rows(v, function.output.per_row or name in function.columns, dataset)
        for name, v in zip(names, derivatives)
    }
    warn_nonfinite("the value", value)
    for name, v in partials.items():
        warn_nonfinite(f"the derivative by {name}", v)
    if fmt == "json":
        result = {"value": json_value(value)}
        if grad:
            result["gradient"] = {name: json_value(v) for name, v in partials.items()}
        click.echo(json_text(result))
        return
    if not grad:
        click.echo("\n".join(text_lines("", value)))
        return
    unicode = unicode_ok(ascii_only)
    lines = text_lines("J", value)
    for name, v in partials.items():
        lines += text_lines(derivative_label((name,), unicode).replace("/", "J/", 1), v)
    click.echo("\n".join(lines))
