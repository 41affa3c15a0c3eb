"""`exprgrad check`: every partial derivative against finite differences (the work is in exprgrad.check)."""

from __future__ import annotations

import json

import click
import numpy as np

from ..check import DEFAULT_MEMBERS, MAX_MEMBERS, check_partials, check_tol
from ..errors import OptionError
from ..selection import select
from .command import ExprCommand
from .diff_cmd import NO_PARAMETERS
from .inputs import build_function, check_bindings, data_options, load_data, parse_bindings
from .output import json_value, warn
from .speed import engine_over, speed_options

# What the stderr summary says about each failing status.
PROBLEMS = {
    "disagrees": "disagree with finite differences beyond --tol and their own error",
    "not finite": "are nan or inf at this point (analytic, numeric or both)",
    "unresolved": "cannot be resolved by finite differences here (fewer than two correct digits); "
    "try another --at",
}


@click.command("check", cls=ExprCommand)
@data_options
@click.argument("expr")
@click.option("--at", "at", multiple=True, metavar="a=1,b=2", help="The point to check at.")
@click.option("--data", type=click.Path(), metavar="FILE.csv", help="Data columns.")
@click.option(
    "--wrt", default="", metavar="NAMES", help="Names or families to check (default: every parameter)."
)
@click.option(
    "--tol",
    type=float,
    default=1e-6,
    show_default=True,
    help="Largest accepted relative error, between 0 and 1.",
)
@click.option(
    "--rows",
    "rows",
    type=click.IntRange(1, 1000),
    default=5,
    show_default=True,
    help="For a data column: how many rows to move one at a time (each costs passes over the data).",
)
@click.option(
    "--members",
    "members",
    type=click.IntRange(1, MAX_MEMBERS),
    default=DEFAULT_MEMBERS,
    show_default=True,
    help="Members of families (w[1], W[2,3]) to check in all, spread over each family.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--allow-nan", is_flag=True, help="Keep NaN/inf cells in the data.")
@speed_options
def check_command(
    expr, at, data, wrt, tol, rows, members, fmt, allow_nan, backend, threads, engine, scheduler
):
    """Compare every partial derivative of EXPR with finite differences.

    The numeric side is Ridders' extrapolation of central differences, with
    an error estimate; a partial is ok when the two agree within --tol, or
    within what finite differences can resolve (the "fd. error" column).
    Never ok when either side is nan or inf. Exit status 1 when any partial
    is not ok. For a data column x, both sides are the per-row derivative
    (dJ/dx_i, or dJ_i/dx_i for a per-row J), compared on --rows rows moved
    one at a time (every row at once when J reads x row by row). A family
    (w[j], W[k,j]) is checked member by member (w[1], W[2,3]), moving one
    member at a time, up to --members members in all.

    \b
    Examples:
      exprgrad check "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv
      exprgrad check "atan2(a, b) * exp(-a^2)" --at a=0.3,b=-1.2
      exprgrad check samples/families/logistic.exprgrad --data samples/families/logistic.csv --at c=0.1,w=0.2
    """
    tol = check_tol(tol)
    dataset = load_data(data, allow_nan)
    function, dataset = build_function(expr, dataset)
    families = getattr(function, "families", None) or {}
    bindings = parse_bindings(at)
    columns = check_bindings(function, bindings, dataset)
    wrt_nodes, warnings = select(function.output, wrt.split(","))
    for message in warnings:
        warn(message)
    if not wrt_nodes:
        raise OptionError(NO_PARAMETERS.replace("differentiate", "check"))
    data_families = [n for n in wrt_nodes if n.per_row and getattr(n, "var_axes", ())]
    if data_families:
        node = data_families[0]
        raise OptionError(
            f"--wrt {node.name}: {_written(node)} is a data family; check moves parameters and data "
            "columns the function uses by their own name, not a data family or its members "
            f"(diff --wrt {node.name} gives its derivative)"
        )
    labels = {name: family.labels for name, family in families.items() if family.kind == "parameter"}
    sizes = {index: len(found) for index, found in (function.ranges or {}).items() if found is not None}
    with engine_over(engine, scheduler, columns, backend) as opened:
        results = check_partials(
            function.output,
            bindings,
            columns,
            wrt_nodes,
            tol=tol,
            rows=rows,
            members=members,
            labels=labels,
            sizes=sizes,
            backend=backend,
            threads=threads,
            engine=opened,
        )

    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "tolerance": tol,
                    "ok": all(r.ok for r in results),
                    "partials": {r.name: _json_partial(r) for r in results},
                },
                ensure_ascii=False,
                allow_nan=False,
            )
        )
    else:
        table = [("wrt", "analytic", "numeric", "rel. error", "fd. error", "status")]
        notes = []
        for r in results:
            name, a, n = r.name, r.analytic, r.numeric
            if r.rows is not None:
                row = r.rows[r.worst]
                name, a, n = f"{r.name} (row {row + 1})", a[r.worst], n[r.worst]
                notes.append(_rows_note(r, dataset))
            status = r.status if r.ok else r.status.upper()
            table.append(
                (name, _table_number(a), _table_number(n), f"{r.error:.1e}", f"{r.reach:.1e}", status)
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for note in notes:
            click.echo(note)
        member_note = _members_note(results, wrt_nodes)
        if member_note:
            click.echo(member_note)
    failing = [r for r in results if not r.ok]
    for status, problem in PROBLEMS.items():
        names = [r.name for r in failing if r.status == status]
        if names:
            click.echo(
                f"{len(names)} of {len(results)} partial derivatives {problem}: {', '.join(names)}", err=True
            )
    if any(r.status == "not finite" for r in failing):
        value = function.evaluate(columns or None, **bindings)
        if not np.all(np.isfinite(value)):
            click.echo(
                "the function itself is not finite at this point (nan or inf): "
                "a log or sqrt of a negative number, a division by zero or an overflow",
                err=True,
            )
    return 1 if failing else 0


def _table_number(value) -> str:
    return f"{float(value) + 0.0:.10g}"  # + 0.0: a negative zero shows as 0


def _written(node) -> str:
    """A family as written: w[j], W[k,j]."""
    return f"{node.name}[{','.join(i.name for i in node.var_axes)}]"


def _members_note(results, nodes) -> str | None:
    """How many members of the families were checked (every one, or a spread up to --members)."""
    checked: dict[str, int] = {}
    total: dict[str, int] = {}
    for r in results:
        if r.family is not None:
            checked[r.family] = checked.get(r.family, 0) + 1
            total[r.family] = r.members
    if not checked:
        return None
    written = {n.name: _written(n) for n in nodes if n.name in checked}
    families = ", ".join(written[name] for name in checked)
    done, count = sum(checked.values()), sum(total.values())
    if done == count:
        return f"members: every one of the {count} members of {families} checked"
    parts = ", ".join(f"{written[n]} {checked[n]} of {total[n]}" for n in checked)
    return (
        f"members: {done} of the {count} members checked ({parts}), spread over each family; "
        "--members N checks more"
    )


def _rows_note(result, dataset) -> str:
    shown = ", ".join(str(i + 1) for i in result.rows[:8]) + (", ..." if len(result.rows) > 8 else "")
    total = dataset.rows if dataset is not None else len(result.rows)
    how = "every row" if len(result.rows) == total else f"{len(result.rows)} of {total} rows"
    return f"{result.name}: per row, {how} compared (rows {shown}); shown: the row with the largest error"


def _json_partial(result) -> dict:
    entry = {
        "analytic": json_value(result.analytic),
        "numeric": json_value(result.numeric),
        "relative_error": json_value(result.error),  # inf as null: strict JSON
        "fd_error": json_value(result.reach),
        "status": result.status,
        "ok": result.ok,
    }
    if result.rows is not None:
        entry["rows"] = [i + 1 for i in result.rows]
    return entry
