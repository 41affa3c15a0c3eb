"""What a drawing shows: the derivative graphs to draw and the values of their nodes.

In: a function's output node, the variable nodes to differentiate with respect
to, which part to draw, and optionally parameter values and data columns.
Out: DOT text from ``backends.render`` (``to_dot``), which draws what it is
given: this module differentiates (``passes.diff``) and evaluates
(``backends.evaluate``). The node limit is checked on the function before any
derivative graph is built. ``Function.to_dot``, ``Function._repr_svg_`` and
``exprgrad render`` all come through here.

A family is drawn as one node with its indices' sizes where known
(``index_sizes``: from the arrays given for families, or ``sizes``).

With values, every node shows its value and its adjoint dJ/d(node): the
adjoint graphs of ``diff.adjoints`` (per row d J_i/d node_i for a per-row J),
evaluated in one compiled schedule with the nodes (``node_values``).

Must not: build DOT text itself, write files, or import ``graphviz`` (render
does, when a drawing is asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .backends import render as render_backend
from .backends.binding import arrange, written_axes
from .backends.evaluate import compile_schedule
from .backends.render import DEFAULT_MAX_NODES, DEFAULT_TIMEOUT, GRAPHS, RenderError, render
from .errors import ArgumentError, DrawingTooLarge, LimitError, OptionError, ToolMissingError
from .graph import Node, toposort, variables
from .passes.diff import adjoints, diff


def node_values(output: Node, others: Sequence[Node], values: Mapping[str, object]) -> tuple[dict, dict]:
    """Values of the nodes of ``output`` and ``others``, and the adjoints dJ/d(node) of the former.

    One compiled schedule computes every node and every adjoint graph.

    Args:
        output: the function J.
        others: more nodes to evaluate (the derivative graphs).
        values: parameter values (numbers) and data columns (arrays) by name.

    Returns:
        ({node: value}, {node: adjoint}): floats, or arrays of one value per
        row for per-row nodes over data. Every node of J but the constants
        has an adjoint, as ``adjoints`` means it: per row, dJ/d node_i, or
        dJ_i/d node_i for a per-row J (over a reduction, the Jacobian's diagonal).

    Raises:
        EvaluationError: a parameter or column has no value.
    """
    # A parameter family's values are an array too (in its written axes): what
    # is a column is decided by the graph, a data variable's node has the rows.
    data = {v.name for v in variables([output, *others]) if v.per_row}
    params = {
        name: (float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=float))
        for name, v in values.items()
        if np.ndim(v) == 0 or name not in data
    }
    columns = {name: _column(v) for name, v in values.items() if np.ndim(v) > 0 and name in data}
    shown = [node for node in toposort([output]) if not node.is_const]
    adj_graphs = adjoints(output, shown).values()
    nodes = toposort([output, *others])
    results = compile_schedule([*nodes, *adj_graphs]).run(params, columns or None)
    value = dict(zip(nodes, results))
    for node in (n for n in nodes if n.is_var and len(n.var_axes) > 1):
        value[node] = _written(value[node], node, node)  # W[k,j]'s members in the order k, j
    adjoint = {}
    rows = 0
    for v in columns.values():
        rows = len(v[0] if isinstance(v, list) else v)
        break
    for node, adj, graph in zip(shown, results[len(nodes) :], adj_graphs):
        if node.is_var and len(node.var_axes) > 1:
            adj = _written(adj, graph, node)
        if columns and (node.per_row or output.per_row) and np.ndim(adj) == 0:
            # The same in every row (1/n under a mean), yet one value per row.
            adj = np.full(rows, adj)
        adjoint[node] = adj
    return value, adjoint


def _written(value, node: Node, variable: Node):
    """``value`` (``node``'s, canonical axes) in ``variable``'s written axes, length 1 where it lacks one."""
    have = [i.name for i in node.indices]
    return arrange(value, have, written_axes(have, [i.name for i in variable.var_axes]))


def _column(value):
    """A data column as an array; a data family given as a sequence of 1-d columns (x1..x50) as their list."""
    if isinstance(value, (list, tuple)) and value and all(np.ndim(c) == 1 for c in value):
        return [np.asarray(c, dtype=float) for c in value]
    return np.asarray(value, dtype=float)


def index_sizes(output: Node, values: Mapping[str, object] | None) -> dict[str, int]:
    """{index name: its number of labels} as the arrays given for families fix them.

    A parameter family's array follows its written axes (``W[k,j]``: k by j),
    a data family's is rows by labels. Indices no array fixes are left out.
    """
    sizes: dict[str, int] = {}
    for v in variables([output]):
        axes = getattr(v, "var_axes", ())
        value = (values or {}).get(v.name)
        if not axes or value is None or np.ndim(value) == 0:
            continue
        value = _column(value) if v.per_row else value
        if isinstance(value, list):
            shape = (len(value),)  # a data family as a list of its columns
        else:
            shape = np.shape(value)[1:] if v.per_row else np.shape(value)
        if len(shape) == len(axes):
            for i, length in zip(axes, shape, strict=True):
                sizes.setdefault(i.name, int(length))
    return sizes


def _choose(output: Node, wrt_nodes: Sequence[Node], kind: str | None) -> tuple[str, list[Node]]:
    if kind is None:
        kind = "both" if wrt_nodes else "function"
    if kind not in GRAPHS:
        raise OptionError(f"unknown graph '{kind}' (choose from {', '.join(GRAPHS)})")
    if kind == "function":
        return kind, []
    if not wrt_nodes:
        wrt_nodes = [v for v in variables([output]) if not v.per_row]
    return kind, list(wrt_nodes)


def to_dot(
    output: Node,
    wrt_nodes: Sequence[Node] = (),
    *,
    graph: str | None = None,
    values: Mapping[str, object] | None = None,
    rankdir: str = "LR",
    max_nodes: int = DEFAULT_MAX_NODES,
    legend: bool = True,
    name: str = "J",
    names: Mapping[str, Node] | None = None,
    written: Mapping[Node, tuple] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> str:
    """The DOT text of the function's graph and/or its derivative graphs.

    Args:
        output: the function's output node (J).
        wrt_nodes: variables whose derivative graphs to draw (dJ/da ...).
        graph: "function", "gradient" or "both"; None means "both" when
            ``wrt_nodes`` is given, else "function". "gradient" or "both"
            without ``wrt_nodes`` draws every parameter's derivative.
        values: parameter values (numbers) and data columns (arrays) by name;
            with them every node shows its value and its adjoint dJ/d(node).
        rankdir, max_nodes, legend, name, names, written: how it is drawn, as
            ``backends.render.to_dot`` takes them; ``max_nodes`` is checked on
            the function alone before differentiating, then on the drawing.
        sizes: index name -> number of labels (declared ranges, data
            families); the arrays in ``values`` fix the rest.

    Returns:
        ``backends.render.to_dot``'s DOT text.

    Raises:
        DrawingTooLarge: more than ``max_nodes`` nodes to draw (a LimitError).
        OptionError: an unknown ``graph`` or ``rankdir``.
        EvaluationError: ``values`` lacks a parameter or column.
    """
    if not isinstance(output, Node):
        raise ArgumentError(
            f"must be a graph node (Function.output), got {type(output).__name__}", argument="output"
        )
    if isinstance(wrt_nodes, (str, Node)) or not all(isinstance(n, Node) for n in wrt_nodes):
        raise ArgumentError(
            "must be a list of variable nodes (Function.to_dot takes names)", argument="wrt_nodes"
        )
    for argument, mapping in (("names", names), ("written", written)):
        if mapping is not None and not isinstance(mapping, Mapping):
            raise ArgumentError(
                f"must be a dict (Function.definitions, Function.written), got {type(mapping).__name__}",
                argument=argument,
            )
    render_backend.check_options(rankdir, max_nodes)
    kind, wrt_nodes = _choose(output, wrt_nodes, graph)
    # The function first: differentiating costs time in proportion to it, so a
    # graph past the limit is refused before any derivative is built.
    forward = toposort([output])
    if len(forward) > max_nodes:
        raise DrawingTooLarge(len(forward), max_nodes, bool(wrt_nodes), function_alone=True)
    derivatives = diff(output, wrt_nodes) if wrt_nodes else {}
    drawn = len(toposort(([output] if kind != "gradient" else []) + list(derivatives.values())))
    if drawn > max_nodes:
        # Before evaluating: render refuses it too, but only after the values.
        raise DrawingTooLarge(drawn, max_nodes, bool(derivatives), function_alone=False)
    value, grads = (
        node_values(output, list(derivatives.values()), values) if values is not None else (None, None)
    )
    return render_backend.to_dot(
        output,
        derivatives,
        graph=kind,
        values=value,
        grads=grads,
        rankdir=rankdir,
        max_nodes=max_nodes,
        legend=legend,
        name=name,
        names=names,
        written=written,
        sizes={**index_sizes(output, values), **(sizes or {})},
    )


def svg_or_none(node: Node, *, timeout: float = DEFAULT_TIMEOUT, **options) -> str | None:
    """The SVG of ``node``'s graph, or None when dot is missing or the graph is too large (notebooks)."""
    try:
        return render(to_dot(node, **options), "svg", timeout=timeout).decode("utf-8")
    except (ToolMissingError, LimitError, RenderError):
        return None
