"""Drawings of the operation graph and its derivative graphs: Graphviz DOT, then SVG, PNG or PDF.

In: the output node of a function, the derivative graphs to draw by name, and
optionally the values and adjoints of their nodes, all computed by the caller
(``exprgrad.drawing`` differentiates and evaluates). Out: DOT text
(``to_dot``, built with the ``graphviz`` package); the bytes of a picture made
from it by Graphviz's ``dot`` program come from ``render`` (``dot_program``:
through pipes, with a time limit; no .gv file is written). The node limit is
checked on the whole drawing (the caller checks the function alone before it
differentiates).

One DOT node per interned node, so a shared subexpression is drawn once (the
DAG, not a tree); DOT ids are topological indices (n0, n1, ...), so the same
input gives the same text byte for byte. Operations are labelled from their
registry entry (``OpSpec.text``), after the user's own name for a definition
(``h1 = sigmoid``, from ``Function.definitions``); the title is the function
as ``str(Function)`` prints it (``Function.written``). Every user-supplied name goes through
``_html``, so quotes, backslashes, <, >, & and control characters cannot break
the DOT or the SVG.

With values, every node shows its value and its adjoint dJ/d(node).

Index families: a family is one node, labelled with its written axes and
their sizes when known (``w[j], j: 50``); a reduction over an index is
``sum[j]``; a family's values are summarised (mean, range, first entries).

Must not: differentiate or evaluate, change the graph (the title's text comes
from ``printing``), write files, or import ``graphviz`` before a picture is
asked for (``exprgrad eval`` never loads it).
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from .. import graph as _graph
from ..errors import ArgumentError, DrawingTooLarge, OptionError, ToolMissingError
from ..graph import Node, toposort

# The picture side lives in dot_program; its names are kept here for callers of render.render.
from .dot_program import (  # noqa: F401
    DEFAULT_TIMEOUT,
    FORMATS,
    INSTALL_DOT,
    RenderError,
    RenderTimeout,
    render,
)
from .printing import reduction_word, to_text, wrt_names

GRAPHS = ("function", "gradient", "both")
RANKDIRS = ("LR", "TB")
DEFAULT_MAX_NODES = 2000
# Labels longer than this are cut with an ellipsis: a 200-character column name
# would otherwise make its node as wide as the whole drawing.
MAX_NAME_CHARS = 40
SHOWN_ROWS = 3
MAX_INCHES = "100,100"
MAX_TITLE_CHARS = 120

DERIVATIVE_COLOR = "#7a3ea1"
_KIND_STYLE = {
    "parameter": {"shape": "box", "style": "filled,bold", "fillcolor": "#ffe1b3", "color": "#b36b00"},
    "data column": {"shape": "cylinder", "style": "filled", "fillcolor": "#cfe3f7", "color": "#2f6ea5"},
    "constant": {
        "shape": "box",
        "style": "filled",
        "fillcolor": "#eeeeee",
        "color": "#999999",
        "fontsize": "11",
    },
    "operation": {"shape": "box", "style": "rounded,filled", "fillcolor": "white"},
    "per-row operation": {
        "shape": "box",
        "style": "rounded,filled",
        "fillcolor": "white",
        "peripheries": "2",
    },
}
_DERIVATIVE_STYLE = {"fillcolor": "#efe3f8", "color": DERIVATIVE_COLOR, "fontcolor": "#3d1f50"}
_MARKER_STYLE = {"shape": "box", "style": "rounded,bold", "margin": "0.12,0.04"}


# ---------------------------------------------------------------- labels


def _html(text: str) -> str:
    """``text`` as the content of a Graphviz HTML-like label.

    XML escaping for & < > " ', a doubled backslash (Graphviz reads \\N, \\G
    even inside HTML labels), and control characters as visible control
    pictures (XML refuses most of them).
    """
    shown = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            char = chr(0x2400 + code) if code < 0x20 else "\u2421"  # ␀ .. ␟, ␡
        elif 0x80 <= code < 0xA0 or 0xD800 <= code < 0xE000:
            char = "\ufffd"  # C1 controls, lone surrogates
        shown.append(char)
    return html.escape("".join(shown), quote=True).replace("\\", "\\\\")


def _number(value: float) -> str:
    value = float(value)
    return f"{value + 0.0 if value == 0 else value:.4g}"  # -0 drawn as 0; also "nan", "inf", "-inf"


def summary(value, family: bool = False) -> str:
    """A float as 4 significant digits; per-row values as their mean and first rows.

    A family's values (``family``: the node has an index besides the rows)
    also show their range: ``mean 0.2, range -1 to 3 [0.1, 0.7, -1, …]``.
    """
    rows = np.ravel(np.asarray(value, dtype=float))
    if rows.size <= 1 and not (family and rows.size == 1):
        return _number(rows[0]) if rows.size else "(no rows)"
    with np.errstate(all="ignore"):
        mean = _number(np.mean(rows))
        spread = f", range {_number(np.min(rows))} to {_number(np.max(rows))}" if family else ""
    first = ", ".join(_number(v) for v in rows[:SHOWN_ROWS])
    return f"mean {mean}{spread} [{first}{', …' if rows.size > SHOWN_ROWS else ''}]"


def _free(node: Node) -> list:
    """The node's indices besides the rows (a family's, a sum's that is not over them all)."""
    rows = getattr(_graph, "ROWS", None)
    return [i for i in getattr(node, "indices", ()) if i is not rows]


def _sized(names: Sequence[str], sizes: Mapping[str, int]) -> str:
    """``, j: 50, k: 16`` for the indices whose size is known."""
    known = [f"{name}: {sizes[name]}" for name in names if name in sizes]
    return ", " + ", ".join(known) if known else ""


def _kind(node: Node) -> str:
    if node.is_var:
        return "data column" if node.per_row else "parameter"
    if node.is_leaf:  # a constant, or an index's size
        return "constant"
    return "per-row operation" if node.per_row else "operation"


def _title(node: Node, sizes: Mapping[str, int] | None = None) -> str:
    """The node's own text: a name, a number, or the operation from its registry entry.

    A family is one node labelled with its written axes and their sizes when
    known (``w[j], j: 50``); a reduction over an index names it (``sum[j]``);
    an index's size is ``size(j)`` (the rows': ``n``).
    """
    sizes = sizes or {}
    if node.is_var:
        name = node.name
        name = name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"
        axes = [i.name for i in getattr(node, "var_axes", ())]
        if not axes:
            return name
        return f"{name}[{','.join(_short(a) for a in axes)}]{_sized(axes, sizes)}"
    if node.is_const:
        return node.name or _number(node.value)
    axis = getattr(node, "axis", None)
    if node.op is getattr(_graph, "DELTA", None):  # a Kronecker delta: 1 where two indices agree
        return f"δ({', '.join(_short(i.name) for i in node.indices)})"
    if node.is_leaf:  # the size of an index
        if axis is getattr(_graph, "ROWS", None):
            return "n"
        return f"size({_short(axis.name)}){' = ' + str(sizes[axis.name]) if axis.name in sizes else ''}"
    spec = node.op
    if axis is not None and axis is not getattr(_graph, "ROWS", None):
        return f"{reduction_word(spec)}[{_short(axis.name)}]{_sized([axis.name], sizes)}"
    return spec.name if spec.notation == "prefix" else spec.text


def _label(title: str, rows: Sequence[tuple[str, str]] = ()) -> str:
    """An HTML-like label: the title in bold, then (caption, value) rows."""
    if not rows:
        return f"<<B>{_html(title)}</B>>"
    cells = "".join(
        f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="9" COLOR="#555555">{_html(caption)}</FONT></TD>'
        f'<TD ALIGN="LEFT"><FONT POINT-SIZE="10">{_html(text)}</FONT></TD></TR>'
        for caption, text in rows
    )
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        f'<TR><TD COLSPAN="2"><B>{_html(title)}</B></TD></TR>{cells}</TABLE>>'
    )


# ---------------------------------------------------------------- DOT


def check_options(rankdir: str, max_nodes: int) -> None:
    """Refuse a drawing option before any work: an unknown ``rankdir``, a ``max_nodes`` not >= 1, no graphviz.

    Raises:
        OptionError: an unknown ``rankdir``.
        ArgumentError: ``max_nodes`` is not a whole number >= 1.
        ToolMissingError: the graphviz package is missing.
    """
    _graphviz()
    if rankdir not in RANKDIRS:
        raise OptionError(f"unknown rankdir '{rankdir}' (choose from {', '.join(RANKDIRS)})")
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, (int, np.integer)) or max_nodes < 1:
        raise ArgumentError(f"must be a whole number >= 1, got {max_nodes!r}", argument="max_nodes")


def to_dot(
    output: Node,
    derivatives: Mapping[str, Node] | None = None,
    *,
    graph: str = "both",
    values: Mapping[Node, object] | None = None,
    grads: Mapping[Node, object] | None = None,
    rankdir: str = "LR",
    max_nodes: int = DEFAULT_MAX_NODES,
    legend: bool = True,
    name: str = "J",
    names: Mapping[str, Node] | None = None,
    written: Mapping[Node, tuple] | None = None,
    sizes: Mapping[str, int] | None = None,
) -> str:
    """The DOT text of a function's graph and the derivative graphs it is given.

    Draws; computes nothing: ``exprgrad.drawing`` differentiates and evaluates.

    Args:
        output: the function's output node (J).
        derivatives: the derivative graphs to draw, {wrt name: node}.
        graph: "function" (J alone), "gradient" (the derivatives and the
            function nodes they use) or "both".
        values: {node: value} for every node drawn (floats, or arrays of one
            value per row); None draws no values.
        grads: {node: adjoint dJ/d(node)} for every node of J but the constants.
        rankdir: "LR" (data flows left to right) or "TB" (top to bottom).
        max_nodes: refuse drawings with more graph nodes than this.
        legend: draw a legend of the node kinds present.
        name: what the function is called in the title and the markers
            ("J"; a derivative shown on its own: "∂J/∂a").
        names: the user's definitions, {name: node} (``Function.definitions``):
            a drawn node that is one is labelled with its name first
            ("h1 = sigmoid"; the first name of a node wins; leaves, and names
            that are also variables of the graph, keep their own label).
        written: the sums kept in the order their terms were written
            (``Function.written``), for the title.
        sizes: the number of labels of each index by name ({"j": 50}),
            where known: a family's node shows them (``w[j], j: 50``).

    Returns:
        DOT source text, the same for the same input.

    Raises:
        DrawingTooLarge: more than ``max_nodes`` nodes to draw.
        OptionError: an unknown ``graph`` or ``rankdir``.
    """
    check_options(rankdir, max_nodes)
    if graph not in GRAPHS:
        raise OptionError(f"unknown graph '{graph}' (choose from {', '.join(GRAPHS)})")
    graphviz = _graphviz()
    derivatives = dict(derivatives or {})
    values = values if values is not None else {}
    grads = grads or {}
    forward = toposort([output])
    roots = ([output] if graph != "gradient" else []) + list(derivatives.values())
    order = toposort(roots)
    if len(order) > max_nodes:
        raise DrawingTooLarge(len(order), max_nodes, bool(derivatives), function_alone=False)
    in_function = set(forward)
    index = {node: i for i, node in enumerate(order)}
    user_names = _user_names(names or {}, order)

    dot = graphviz.Digraph("exprgrad")
    # size: a drawing past 100 inches is scaled to fit, which keeps a 500-node PNG
    # under 10,000 pixels a side (3 s instead of 9 s; svg and pdf just scale).
    dot.attr(
        rankdir=rankdir,
        fontname="Helvetica",
        nodesep="0.25",
        ranksep="0.35",
        newrank="true",
        labelloc="t",
        size=MAX_INCHES,
        label=_graph_title(output, name, written),
    )
    dot.attr("node", fontname="Helvetica", fontsize="12", height="0.3", margin="0.06,0.03")
    dot.attr("edge", arrowsize="0.6", color="#444444", fontname="Helvetica")

    def draw(target, node):
        rows = []
        if node in values:
            family = bool(_free(node))
            rows.append(("value", summary(values[node], family)))
            if node in in_function and not node.is_const:
                rows.append(("grad", summary(grads[node], family)))
        style = dict(_KIND_STYLE[_kind(node)])
        if node not in in_function:
            style.update(_DERIVATIVE_STYLE)
        title = _title(node, sizes)
        if node in user_names:
            free = _free(node)  # a definition by index: h[k] = tanh
            indices = f"[{','.join(_short(i.name) for i in free)}]" if free else ""
            title = f"{_short(user_names[node])}{indices} = {title}"
        target.node(f"n{index[node]}", _label(title, rows), **style)

    def marker(target, dot_id, title, node):
        text = title if node not in values else f"{title} = {summary(values[node], bool(_free(node)))}"
        color = "black" if dot_id == "out" else DERIVATIVE_COLOR
        target.node(dot_id, f"<<B>{_html(text)}</B>>", **_MARKER_STYLE, color=color)
        target.edge(f"n{index[node]}", dot_id, penwidth="1.5", color=color)

    with dot.subgraph(name="cluster_function") as cluster:
        cluster.attr(
            label=f"function {name}" if graph != "gradient" else "function nodes the gradient uses",
            style="rounded",
            color="#bbbbbb",
            fontcolor="#555555",
        )
        for node in order:
            if node in in_function:
                draw(cluster, node)
        if graph != "gradient":
            marker(cluster, "out", name, output)
    if derivatives:
        with dot.subgraph(name="cluster_gradient") as cluster:
            cluster.attr(
                label="gradient", style="rounded,dashed", color=DERIVATIVE_COLOR, fontcolor=DERIVATIVE_COLOR
            )
            for node in order:
                if node not in in_function:
                    draw(cluster, node)
            shown = wrt_names(output, [(wrt_name,) for wrt_name in derivatives])  # w[j] for a family
            for k, (wrt_name, node) in enumerate(derivatives.items()):
                top = name if name == "J" else f"({name})"
                marker(cluster, f"d{k}", f"∂{top}/∂{shown[(wrt_name,)][0]}", node)
    for node in order:
        _draw_edges(dot, node, index, derivative=node not in in_function)
    if legend:
        note = None
        if values:
            note = "value: the node's value<BR/>grad: ∂J/∂(this node)"
            if output.per_row and np.ndim(values[output]) > 0:
                note += "<BR/>(J per row: ∂J_i/∂(this node in row i))"
        _draw_legend(dot, order, in_function, note)
    return dot.source


def _user_names(names: Mapping[str, Node], order: Sequence[Node]) -> dict[Node, str]:
    """{node: the user's name} for the drawn operations that the user named.

    The first name of a node wins; a leaf keeps its own label, and a name that
    is also a variable of the graph is skipped (it would read as that variable).
    """
    variables = {node.name for node in order if node.is_var}
    drawn = set(order)
    chosen: dict[Node, str] = {}
    for user_name, node in names.items():
        if not isinstance(node, Node) or node.is_leaf or node not in drawn or node in chosen:
            continue
        if not isinstance(user_name, str) or user_name in variables:
            continue
        chosen[node] = user_name
    return chosen


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _graph_title(output: Node, name: str = "J", written: Mapping[Node, tuple] | None = None) -> str:
    """ "J = <the function's text>" as ``str(Function)`` prints it, cut to MAX_TITLE_CHARS, as an HTML-like label."""
    text = f"{name} = {to_text(output, written)}"
    if len(text) > MAX_TITLE_CHARS:
        text = text[: MAX_TITLE_CHARS - 1] + "…"
    return f"<{_html(text)}>"


def _draw_edges(dot, node: Node, index: dict[Node, int], derivative: bool) -> None:
    numbered = len(node.inputs) > 1 and not node.op.commutative
    style = {"color": DERIVATIVE_COLOR} if derivative else {}
    for position, child in enumerate(node.inputs, start=1):
        extra = dict(style)
        if numbered:
            # Near the head, where the operand order matters (1 - 2, 1 ^ 2).
            extra.update(
                headlabel=str(position),
                labelfontsize="8",
                labelfontcolor="#777777",
                labeldistance="1.2",
                labelangle="40",
            )
        dot.edge(f"n{index[child]}", f"n{index[node]}", **extra)


def _draw_legend(dot, order: list[Node], in_function: set[Node], note: str | None) -> None:
    kinds = [k for k in _KIND_STYLE if any(_kind(n) == k for n in order)]
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="legend", style="rounded", color="#dddddd", fontcolor="#777777", fontsize="10")
        for k, kind in enumerate(kinds):
            text = "per-row operation (one value per data row)" if kind == "per-row operation" else kind
            legend.node(f"legend{k}", f"<{_html(text)}>", **{**_KIND_STYLE[kind], "fontsize": "9"})
        names = [f"legend{k}" for k in range(len(kinds))]
        if any(n not in in_function for n in order):
            names.append("legend_d")
            legend.node(
                "legend_d",
                "<derivative operation>",
                **{**_KIND_STYLE["operation"], **_DERIVATIVE_STYLE, "fontsize": "9"},
            )
        if note:
            names.append("legend_v")
            legend.node("legend_v", f"<{note}>", shape="plaintext", fontsize="9")
        # Invisible edges chain the entries into one row (one column with TB).
        for tail, head in itertools.pairwise(names):
            legend.edge(tail, head, style="invis")


# ---------------------------------------------------------------- pictures


def _graphviz():
    """The graphviz package, imported only when a drawing is asked for."""
    try:
        # Lazy: graphviz is a third-party package that `exprgrad eval` and a
        # plain `import exprgrad` never need.
        import graphviz
    except ImportError:
        raise ToolMissingError("the graphviz Python package is missing: pip install graphviz") from None
    return graphviz
