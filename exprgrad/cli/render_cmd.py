"""`exprgrad render`: the operation graph and its derivative graphs, drawn with Graphviz."""

from __future__ import annotations

from pathlib import Path

import click

from ..backends.render import (
    DEFAULT_MAX_NODES,
    DEFAULT_TIMEOUT,
    FORMATS,
    GRAPHS,
    RANKDIRS,
    RenderTimeout,
    render,
)
from ..drawing import to_dot
from ..errors import DrawingTooLarge, LimitError, OptionError
from ..selection import select
from .command import ExprCommand
from .inputs import build_function, check_bindings, data_options, load_data, parse_bindings
from .output import check_output_folder, is_stream, warn, write_atomically

SUFFIXES = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}


def choose_format(fmt: str | None, output: str | None) -> str:
    """--format when given, else -o's suffix, else svg; binary formats need -o ('-o -' is stdout)."""
    suffix_format = SUFFIXES.get(Path(output).suffix.lower()) if output else None
    if output is not None and suffix_format is None and is_stream(output):
        return fmt or "svg"  # '-o -', /dev/stdout, a FIFO: even png goes where it was asked
    if fmt is None:
        if output is not None and suffix_format is None:
            raise OptionError(
                f"cannot tell the format from the name '{output}': end it with .svg, .png, .pdf "
                "or .dot, or give --format"
            )
        fmt = suffix_format or "svg"
    elif suffix_format is not None and suffix_format != fmt:
        warn(f"writing {fmt} to '{output}', whose name ends like a {suffix_format} file")
    if output is None and fmt in ("png", "pdf"):
        raise OptionError(f"{fmt} is binary: give a file to write it to with -o FILE.{fmt}")
    return fmt


@click.command("render", cls=ExprCommand)
@data_options
@click.argument("expr")
@click.option(
    "--wrt",
    metavar="NAMES",
    default="",
    help="Draw the derivative graphs for these names or families (comma-separated).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write here (whole or not at all); without it svg or dot text goes to stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Default: from the suffix of -o, else svg.",
)
@click.option(
    "--graph",
    "graph_kind",
    type=click.Choice(GRAPHS),
    default=None,
    help="What to draw. Default: both with --wrt, else function; "
    "gradient or both without --wrt use every parameter.",
)
@click.option(
    "--at",
    "at",
    multiple=True,
    metavar="a=1,b=2",
    help="Parameter values: each node then shows its value and its gradient dJ/dnode.",
)
@click.option(
    "--data",
    type=click.Path(),
    metavar="FILE.csv",
    help="CSV file whose header names the data columns; with --at, values are over its rows.",
)
@click.option(
    "--rankdir",
    type=click.Choice(RANKDIRS),
    default="LR",
    show_default=True,
    help="Data flows left to right or top to bottom.",
)
@click.option(
    "--max-nodes",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_NODES,
    show_default=True,
    help="Refuse to draw more graph nodes than this (checked before differentiating).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    metavar="SECONDS",
    help="Stop Graphviz's dot when its layout takes longer than this (nothing is written).",
)
def render_command(expr, wrt, output, fmt, graph_kind, at, data, rankdir, max_nodes, timeout):
    """Draw EXPR (the text, '-' for stdin, or @file) and its derivative graphs.

    Parameters, data columns, constants, operations and the derivative part
    are styled apart; a shared subexpression is drawn once. svg, png and pdf
    need Graphviz's dot program; --format dot does not.

    \b
    Examples:
      exprgrad render "mean((a*x + b - y)^2)" -o graph.svg
      exprgrad render "mean((a*x + b - y)^2)" --wrt a,b --at a=2,b=1 \\
          --data samples/linear.csv -o docs/linear_gradient.svg
      exprgrad render "tanh(a*x + b)" --wrt a,b --at a=0.5,b=-1,x=3 --format dot
    """
    fmt = choose_format(fmt, output)
    check_output_folder(output)  # a missing folder or a read-only file, before any drawing
    dataset = load_data(data)
    function, dataset = build_function(expr, dataset)
    names = [name for name in wrt.split(",") if name.strip()]
    kind = graph_kind or ("both" if names else "function")
    wrt_nodes = []
    if kind != "function":
        wrt_nodes, warnings = select(function.output, names)
        for message in warnings:
            warn(message)
    elif names:
        warn("--wrt is ignored with --graph function")
    values = None
    if at or dataset is not None:
        bindings = parse_bindings(at)
        columns = check_bindings(function, bindings, dataset)  # fills in --at families
        values = {**bindings, **columns}
    try:
        dot_text = to_dot(
            function.output,
            wrt_nodes,
            graph=kind,
            values=values,
            rankdir=rankdir,
            max_nodes=max_nodes,
            names=function.definitions,
            written=function.written,
            # each index's number of labels (declarations, data families): w[j], j: 50
            sizes={
                index: len(labels) for index, labels in (function.ranges or {}).items() if labels is not None
            },
        )
    except DrawingTooLarge as exc:
        what = "the function alone has" if exc.function_alone else "the drawing would have"
        less = (
            "draw less (--graph function or fewer --wrt names) or "
            if exc.derivatives and not exc.function_alone
            else ""
        )
        raise LimitError(
            f"{what} {exc.nodes} nodes, more than the limit of {exc.limit}: {less}raise the limit",
            argument="max_nodes",
        ) from None
    try:
        content = render(dot_text, fmt, timeout=timeout)
    except RenderTimeout:
        raise RenderTimeout(
            f"Graphviz's dot did not finish laying out the drawing in {timeout:g} s and was stopped "
            "(nothing written): draw less (fewer --wrt names, or --graph function), write the DOT text "
            "with --format dot, or allow more time with --timeout"
        ) from None
    # Without -o, stdout: the UTF-8 bytes as they are (an SVG says it is UTF-8), whatever the locale.
    write_atomically(output or "-", content)
