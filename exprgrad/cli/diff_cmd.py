"""`exprgrad diff`: partial derivatives printed as text, LaTeX, Python or JSON, with values."""

from __future__ import annotations

import click
import numpy as np

from .. import graph
from ..backends import latex, printing, python_source
from ..backends.binding import written_axes
from ..backends.evaluate import compile_schedule
from ..passes.diff import diff, hessian
from ..passes.simplify import simplify_many
from ..selection import select
from .command import ExprCommand
from .inputs import (
    build_function,
    check_bindings,
    data_options,
    load_data,
    parse_bindings,
    per_member,
    shown_value,
)
from .output import (
    as_rows,
    derivative_label,
    json_text,
    json_value,
    text_lines,
    unicode_ok,
    warn,
)
from .speed import engine_over, speed_options

# What the commands say when --wrt selects nothing by default.
NO_PARAMETERS = (
    "the function has no parameters, so there is nothing to differentiate "
    "(name data columns with --wrt, e.g. --wrt x)"
)


def differentiate(function, wrt_text: str, order: int, mode: str, mirrored: bool = False):
    """The wrt names and {key: simplified derivative node}.

    Keys are tuples of variable names: (a,) for each first partial, and with
    order 2 also (a, b) for each Hessian entry with a not after b in --wrt
    order (each symmetric pair once); ``mirrored``: also (b, a) where a or b is
    a family (its axes come in another order: d2/dv[k]dW[k2,j]).
    """
    wrt_nodes, warnings = select(function.output, wrt_text.split(","))
    for message in warnings:
        warn(message)
    if not wrt_nodes:
        warn(NO_PARAMETERS)
    names = [node.name for node in wrt_nodes]
    families = {node.name: node.var_axes for node in wrt_nodes}
    raw: dict[tuple[str, ...], object] = {
        (name,): node for name, node in diff(function.output, wrt_nodes, mode=mode).items()
    }
    if order == 2:
        table = hessian(function.output, wrt_nodes)
        for i, first in enumerate(names):
            for second in names[i:]:
                raw[(first, second)] = table[first][second]
                if mirrored and first != second and (families.get(first) or families.get(second)):
                    raw[(second, first)] = table[second][first]
    simplified = dict(zip(raw, simplify_many(list(raw.values()))))
    return names, simplified


@click.command("diff", cls=ExprCommand)
@data_options
@click.argument("expr")
@click.option(
    "--wrt",
    default="",
    metavar="NAMES",
    help="Comma-separated names or families (theta = theta[0], theta[1], ...); default: every parameter.",
)
@click.option(
    "--order",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="1: the gradient; 2: also the Hessian.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "latex", "python", "json"]),
    default="text",
    show_default=True,
)
@click.option("--at", "at", multiple=True, metavar="a=1,b=2", help="Also evaluate at these parameter values.")
@click.option("--data", type=click.Path(), metavar="FILE.csv", help="Data columns for --at.")
@click.option(
    "--let",
    "let",
    type=click.Choice(["auto", "always", "never"]),
    default="auto",
    show_default=True,
    help="Name shared subexpressions t1, t2, ... before the results (auto: when worth it).",
)
@click.option(
    "--mode",
    type=click.Choice(["reverse", "forward"]),
    default="reverse",
    show_default=True,
    help="Differentiation mode (the printed results are the same function).",
)
@click.option("--ascii", "ascii_only", is_flag=True, help="Write d/da instead of ∂/∂a.")
@click.option("--allow-nan", is_flag=True, help="Keep NaN/inf cells in the data.")
@speed_options
def diff_command(
    expr, wrt, order, fmt, at, data, let, mode, ascii_only, allow_nan, backend, threads, engine, scheduler
):
    """Partial derivatives of EXPR (the text, '-' for stdin, or @file).

    \b
    Examples:
      exprgrad diff "mean((a*x + b - y)^2)" --wrt a,b
      exprgrad diff "sin(x)^2"
      exprgrad diff "mean((a*x + b - y)^2)" --order 2 --format json
      exprgrad diff "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv
    """

    dataset = load_data(data, allow_nan)
    function, dataset = build_function(expr, dataset)
    names, simplified = differentiate(function, wrt, order, mode, mirrored=fmt == "json")
    values = None
    if at or data:
        bindings = parse_bindings(at)
        columns = check_bindings(function, bindings, dataset)
        # The values are the printed formulas': the simplified graphs, never the raw ones
        # (the raw derivative of 1/(1 + exp(-a)) is inf*0 at a = -1000).
        schedule = compile_schedule([function.output, *simplified.values()], backend)
        with engine_over(engine, scheduler, columns, backend) as opened:
            results = schedule.run(
                bindings, None if opened else columns or None, threads=threads, engine=opened
            )
        values = {"value": results[0]}
        for key, value in zip(simplified, results[1:]):
            if fmt == "json":  # by families: their written axes (d/dW[k,j]: k by j; a block: a's, then b's)
                layout = tuple(_written(function, name) for name in key)
                value = function._in_written_axes(simplified[key], layout, value, bindings)
            per_row = function.output.per_row or any(name in function.columns for name in key)
            values[key] = as_rows(value, per_row, dataset)
        _warn_nonfinite(values, unicode_ok(ascii_only))

    if fmt == "json":
        click.echo(json_text(_json_result(function, names, simplified, values, let)))
    elif fmt == "python":
        outputs = {"value": function.output}
        shown = printing.wrt_names(function.output, simplified)
        outputs.update({derivative_label(shown[key], False): node for key, node in simplified.items()})
        layouts = {}
        for key, node in simplified.items():
            layout = tuple(_written(function, name) for name in key)
            if any(layout):
                have = [index.name for index in node.indices]
                rows = (graph.ROWS.name,) if graph.ROWS.name in have else ()
                sources = (*rows, *(axis for axes in layout for axis in axes))
                layouts[derivative_label(shown[key], False)] = (written_axes(have, *layout), sources)
        columns = {name: family.columns for name, family in function.families.items() if family.columns}
        source = python_source.to_python(
            outputs,
            "derivatives",
            names=function.definitions,
            written=function.written,
            columns=columns,
            layouts=layouts,
        )
        click.echo(source, nl=False)
    elif fmt == "latex":
        lets, texts = latex.to_latex_many(
            {key: node for key, node in simplified.items()},
            let=let,
            names=function.definitions,
            written=function.written,
        )
        lines = [f"{latex.latex_name(name)} = {text}" for name, text in lets]
        shown = printing.wrt_names(function.output, simplified)
        lines += [f"{latex.latex_derivative_label(list(shown[key]))} = {texts[key]}" for key in simplified]
        click.echo(" \\\\\n".join(lines))
    else:
        unicode = unicode_ok(ascii_only)
        lets, texts = printing.to_text_many(
            simplified, let=let, names=function.definitions, written=function.written
        )
        lines = [f"{name} = {text}" for name, text in lets]
        shown = printing.wrt_names(function.output, simplified)
        lines += [f"{derivative_label(shown[key], unicode)} = {texts[key]}" for key in simplified]
        if values is not None:
            lines += ["", _at_heading(at, dataset)]
            lines += text_lines("J", values["value"])
            for key, node in simplified.items():
                members = _members(function, key, node, values[key], bindings, dataset)
                if members is not None:  # a family's derivative: one line per member, as eval and fit
                    for name, value in members:
                        label = derivative_label((name,), unicode).replace("/", "J/", 1)
                        lines += text_lines(label, value)
                    continue
                label = derivative_label(shown[key], unicode).replace("/", "J/", 1)
                lines += text_lines(label, values[key])
        click.echo("\n".join(lines))


def _members(function, key, node, value, bindings, dataset):
    """[(w[1], value), ...] for the derivative by one parameter family, else None."""
    if len(key) != 1 or len(getattr(node, "indices", ())) <= node.per_row:
        return None
    names, values = per_member(function, list(key), [node], [value], bindings, dataset)
    return None if names == list(key) else list(zip(names, values))


def _written(function, name: str) -> tuple[str, ...]:
    """The written axes of the family ``name`` (W[k,j]: k, j); () for a scalar or a member."""
    family = function.families.get(name)
    return tuple(family.axes) if family is not None else ()


def _warn_nonfinite(values, unicode: bool) -> None:
    """One warning naming every shown value that is nan or inf."""
    bad = []
    for key, value in values.items():
        if not np.all(np.isfinite(value)):
            bad.append("J" if key == "value" else derivative_label(key, unicode).replace("/", "J/", 1))
    if bad:
        warn(
            f"not finite (nan or inf): {', '.join(bad)}: a log or sqrt of a negative number, "
            "a division by zero or an overflow somewhere"
        )


def _at_heading(at, dataset) -> str:
    where = ", ".join(f"{k}={shown_value(v)}" for k, v in parse_bindings(at).items())
    heading = f"at {where}" if where else "values"
    if dataset is not None:
        heading += f" over {dataset.path} ({dataset.rows} rows)"
    return heading + ":"


def _json_result(function, names, simplified, values, let) -> dict:
    """The documented JSON shape; each text is a complete exprgrad program."""

    named = {"function": function.output}
    named.update({"|".join(key): node for key, node in simplified.items()})
    lets, texts = printing.to_text_many(named, let=let, names=function.definitions, written=function.written)

    def program(key: str) -> str:
        return printing.program_text(lets, texts[key], function.ranges, function.families).replace("\n", "; ")

    pairs = [key for key in simplified if len(key) == 2]
    result: dict = {
        "function": program("function"),
        "wrt": names,
        "derivatives": {name: program(name) for name in names},
    }
    if pairs:
        result["hessian"] = _symmetric(names, pairs, lambda key: program("|".join(key)))
    if values is not None:
        result["value"] = json_value(values["value"])
        result["gradient"] = {name: json_value(values[(name,)]) for name in names}
        if pairs:
            result["hessian_values"] = _symmetric(names, pairs, lambda key: json_value(values[key]))
    return result


def _symmetric(names, pairs, entry) -> dict:
    """{a: {b: entry((a, b))}} for every a, b, from the pairs with a not after b."""
    half = {key: entry(key) for key in pairs}
    return {a: {b: half.get((a, b), half.get((b, a))) for b in names} for a in names}
