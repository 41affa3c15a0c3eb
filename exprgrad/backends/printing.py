"""Graph -> text: the one printer (parenthesizer and let-form), and exprgrad syntax.

In: output nodes (one, or several by name). Out: strings. ``Printer`` writes
the docs a ``layout.Layout`` makes in any ``layout.Style``; this module's
text style and entry points (``to_text``, ``to_text_many``, ``program_text``)
give exprgrad syntax that parses back to the same function. ``latex`` and
``python_source`` print LaTeX and Python through the same ``Printer``.
Must not: change the graph, evaluate, or recurse on graph depth; keep an
operator table of its own (templates come from the registry via the style).

How a node prints (``Printer``):
1. ``layout.Layout`` gives each node a doc: literals and operand references,
   each with its slot rule (see ``layout``).
2. A bottom-up pass measures every doc and decides which shared nodes get a
   name (let-form, ``t1 = ...``).
3. An explicit-stack walk writes the text, wrapping an operand in the
   style's parentheses exactly where ``Printer._parens`` says its slot rule
   requires them: the one parenthesization algorithm for every target.

Let-form (``to_text_many``): with let="auto" a node is named when the results
reference it two or more times and its inline text is at least
LET_MIN_CHARS characters; let="always" names every such non-leaf node;
"never" inlines everything. A node below the threshold costs a bounded
number of characters per use, so the let-form text is linear in the size of
the graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence

from .. import graph, ops
from ..errors import LimitError, OptionError
from ..graph import Node
from ..ops import PREC_ADD, PREC_ATOM, PREC_MUL, PREC_NEG, OpSpec
from ..selection import select
from .layout import Layout, Style

# let="auto" names a node used twice or more whose inline text has at least this many characters.
LET_MIN_CHARS = 16
# Inline text (let="never", to_text, to_latex) longer than this raises LimitError.
MAX_INLINE_CHARS = 50_000_000

LET_MODES = ("auto", "always", "never")

# ---------------------------------------------------------------- the printer


class Printer:
    """Prints the nodes ``roots`` in one style, sharing the work across them."""

    def __init__(
        self,
        style: Style,
        roots: Sequence[Node],
        let: str = "never",
        reserved: Iterable[str] = (),
        max_depth: int | None = None,
        prefix: str = "t",
        preferred: Mapping[str, Node] | None = None,
        written: Mapping[Node, tuple] | None = None,
    ):
        if let not in LET_MODES:
            raise OptionError(f"unknown let mode '{let}' (choose from {', '.join(LET_MODES)})")
        self.style = style
        self.roots = list(roots)
        self.let = let
        self.max_depth = max_depth
        reserved = list(reserved)
        # The user's own names (definitions): a node that gets a let name anyway
        # is called by the first name the user gave it, not t1, t2, ...
        self.preferred = _preferred_names(preferred or {}, reserved)
        self.prefix = _temp_prefix(prefix, [*reserved, *self.preferred.values()])
        self._temporaries = 0
        self.order = graph.toposort(self.roots)
        layout = Layout(style, self.order, written)
        self.docs, self.prec = layout.docs, layout.prec
        self._count_refs()
        self.names: dict[Node, str] = {}
        self.length: dict[Node, int] = {}
        self.depth: dict[Node, int] = {}
        self.starts_sign: dict[Node, bool] = {}
        self.starts_digit: dict[Node, bool] = {}
        self.named_order: list[Node] = []
        for node in [*layout.extra, *self.order]:
            if self.refs.get(node, 0):
                self._measure(node)

    # ------------------------------------------------------------ references

    def _refs_of(self, node: Node):
        for item in self.docs[node]:
            if isinstance(item, tuple) and item[0] == "ref":
                yield item[1]

    def _count_refs(self) -> None:
        """How many times the printed results reference each node (roots count once)."""
        self.refs: dict[Node, int] = {}
        stack = []
        for root in self.roots:
            self.refs[root] = self.refs.get(root, 0) + 1
            if self.refs[root] == 1:
                stack.append(root)
        while stack:
            node = stack.pop()
            for child in self._refs_of(node):
                count = self.refs.get(child, 0)
                self.refs[child] = count + 1
                if count == 0:
                    stack.append(child)

    # ------------------------------------------------------------ measuring and naming

    def _parens(self, ref: tuple) -> bool:
        _, child, min_prec, strict, guard = ref
        if child in self.names:
            return False
        prec = self.prec[child]
        return prec < min_prec or (prec == min_prec and strict) or (guard and self.starts_sign[child])

    def _ref_starts(self, ref: tuple) -> tuple[bool, bool]:
        child = ref[1]
        if child in self.names or self._parens(ref):
            return False, False
        return self.starts_sign[child], self.starts_digit[child]

    def _starts(self, doc: list) -> tuple[bool, bool]:
        """Does the text of ``doc`` begin with a sign, with a digit? (LaTeX groups '{' skipped.)"""
        for item in doc:
            if isinstance(item, str):
                text = item.lstrip("{")
                if text:
                    return text.startswith("-"), text[0].isdigit()
            else:
                return self._ref_starts(item)
        return False, False

    def _measure(self, node: Node) -> None:
        length, depth, operands = 0, 0, 0
        for item in self.docs[node]:
            if isinstance(item, str):
                length += len(item)
            elif item[0] == "sep":
                length += len(item[1])
            else:
                child = item[1]
                operands += 1
                if child in self.names:
                    length += len(self.names[child])
                else:
                    length += self.length[child]
                    depth = max(depth, self.depth[child])
                    if self._parens(item):
                        length += len(self.style.open) + len(self.style.close)
        self.starts_sign[node], self.starts_digit[node] = self._starts(self.docs[node])
        self.length[node] = length
        self.depth[node] = depth + max(operands, 1 if not node.is_leaf else 0)
        if self._should_name(node):
            name = self.preferred.get(node)
            if name is None:
                self._temporaries += 1
                name = f"{self.prefix}{self._temporaries}"
            self.names[node] = name + self._index_suffix(node)
            self.named_order.append(node)

    def _index_suffix(self, node: Node) -> str:
        """``[k]`` for a named node with the free index k (rows aside), as written in a definition."""
        if not self.style.indexed_lets:
            return ""
        rows = getattr(graph, "ROWS", None)
        axes = [i.name for i in getattr(node, "indices", ()) if i is not rows]
        return f"[{','.join(axes)}]" if axes else ""

    def _should_name(self, node: Node) -> bool:
        if node.is_leaf:
            return False
        if self.max_depth is not None and self.depth[node] > self.max_depth:
            return True
        shared = self.refs.get(node, 0) >= 2
        if self.let == "always":
            return shared
        if self.let == "auto":
            return shared and self.length[node] >= LET_MIN_CHARS
        return False

    # ------------------------------------------------------------ writing

    def write(self, node: Node, define: bool = False) -> str:
        """The text of ``node``: its name, or (``define``, or unnamed) its doc."""
        if not define and node in self.names:
            return self.names[node]
        if not define and self.length[node] > MAX_INLINE_CHARS:
            raise LimitError(
                f"the inline text would be {self.length[node]:,} characters; "
                "print with shared subexpressions named (let-form) instead"
            )
        return self._write_items(self.docs[node])

    def _write_items(self, items: list) -> str:
        out: list[str] = []
        stack = list(reversed(items))
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
            elif item[0] == "sep":
                out.append(item[2] if self._ref_starts(item[3])[1] else item[1])
            else:
                child = item[1]
                if child in self.names:
                    out.append(self.names[child])
                elif self._parens(item):
                    stack.append(self.style.close)
                    stack.extend(reversed(self.docs[child]))
                    stack.append(self.style.open)
                else:
                    stack.extend(reversed(self.docs[child]))
        return "".join(out)

    def chunks(self, node: Node, size: int) -> list[str]:
        """The definition of a named n-ary node in pieces of at most ``size`` operands.

        The first piece is an expression; every later one starts with a
        separator, to be appended to the name (t1 = t1 + ...).
        """
        pieces: list[list] = [[]]
        operands = 0
        for item in self.docs[node]:
            if isinstance(item, tuple) and item[0] == "sep":
                operands += 1
                if operands % size == 0:
                    pieces.append([])
            pieces[-1].append(item)
        return [self._write_items(piece) for piece in pieces]

    def lets(self) -> list[tuple[str, str]]:
        return [(self.names[n], self.write(n, define=True)) for n in self.named_order]


def _preferred_names(preferred: Mapping[str, Node], reserved: Sequence[str]) -> dict[Node, str]:
    """{node: name} from {name: node}: the first name of each node, none that is reserved."""
    taken = set(reserved)
    chosen: dict[Node, str] = {}
    for name, node in preferred.items():
        if node not in chosen and name not in taken and not node.is_leaf:
            chosen[node] = name
            taken.add(name)
    return chosen


def _temp_prefix(prefix: str, reserved: Iterable[str]) -> str:
    """A prefix p such that no reserved name is p1, p2, ... (or a family p1[...])."""
    taken = {name.split("[", 1)[0] for name in reserved}
    while any(re.fullmatch(re.escape(prefix) + r"\d+", name) for name in taken):
        prefix += "_"
    return prefix


def variable_names(roots: Iterable[Node]) -> list[str]:
    """The names of the variables of ``roots`` (let names must not clash with them)."""
    return [v.name for v in graph.variables(roots)]


# ---------------------------------------------------------------- text


def number_text(value: float) -> str:
    """Exact and re-parseable: 2, 0.5, 1e-07, 1e20 (no '+', no trailing .0); 1/0, log(-1)."""
    if math.isnan(value):
        return "log(-1)"
    if math.isinf(value):
        return "1/0" if value > 0 else "-1/0"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value).replace("e+", "e")


class _TextStyle(Style):
    def template(self, spec: OpSpec) -> str:
        if spec.notation == "infix":
            space = " " if spec.precedence <= PREC_ADD else ""
            return f"$0{space}{spec.text}{space}$1"
        if spec.notation == "prefix":
            return f"{spec.text}$0"
        if spec.arity < 0:  # variadic: every operand
            return f"{spec.text}($*)"
        return f"{spec.text}(" + ", ".join(f"${i}" for i in range(spec.arity)) + ")"

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var:
            return indexed_name(node), PREC_ATOM
        if node.name is not None:
            return node.name, PREC_ATOM
        value = node.value
        if math.isinf(value):
            return number_text(value), PREC_MUL  # 1/0
        return number_text(value), (PREC_NEG if value < 0 else PREC_ATOM)

    def index_reduction(self, spec: OpSpec, axes: tuple) -> tuple[str, str]:
        return f"{reduction_word(spec)}[{','.join(i.name for i in axes)}](", ")"

    def size(self, axis) -> tuple[str, int]:
        # The number of labels of j is sum[j](1), as the row count n is sum(1).
        return ("sum(1)" if axis is getattr(graph, "ROWS", None) else f"sum[{axis.name}](1)"), PREC_ATOM

    def delta(self, first, second) -> tuple[str, int]:
        # An Iverson bracket: the comparison of two indices is 1 where their labels agree.
        return f"({first.name} == {second.name})", PREC_ATOM


def indexed_name(node: Node) -> str:
    """A variable as written: ``a``, ``theta[1]``, the family ``w[j]``, ``W[k,j]`` (its written axes)."""
    axes = getattr(node, "var_axes", ())
    if not axes:
        return node.name
    return f"{node.name}[{','.join(i.name for i in axes)}]"


def wrt_names(output: Node, keys: Iterable[Sequence[str]]) -> dict[tuple[str, ...], tuple[str, ...]]:
    """For each derivative key (variable names), its variables as a heading writes them.

    ``a`` stays ``a``; a family carries the axes it is first written with in
    ``output`` (``w[j]``, ``W[k,j]``); the second variable of a Hessian entry
    gets fresh names for the indices the first already uses (``w[j]``,
    ``w[j2]``), as the Hessian's free indices are.
    """
    axes: dict[str, tuple] = {}
    for v in graph.variables([output]):
        if getattr(v, "var_axes", ()) and v.name not in axes:
            # the variable node the name selects (as diff differentiates it)
            axes[v.name] = select(output, [v.name])[0][0].var_axes
    keys = [tuple(key) for key in keys]
    if not axes:
        return {key: key for key in keys}
    taken = set()
    for n in graph.toposort([output]):
        taken.update(i.name for i in n.indices)
        if n.axis is not None:
            taken.add(n.axis.name)
    result = {}
    for key in keys:
        shown: list[str] = []
        used: set[str] = set()
        for name in key:
            written = [i.name for i in axes.get(name, ())]
            for position, index in enumerate(written):
                if index in used:
                    number = 2
                    while f"{index}{number}" in taken or f"{index}{number}" in used:
                        number += 1
                    written[position] = f"{index}{number}"
            used.update(written)
            shown.append(f"{name}[{','.join(written)}]" if written else name)
        result[key] = tuple(shown)
    return result


def reduction_word(spec: OpSpec) -> str:
    """The word a reduction over an index is written with: sum, mean, logsumexp."""
    for word, entry in getattr(ops, "INDEX_REDUCTIONS", {}).items():
        if entry is spec:
            return word
    return spec.text


def to_text(
    node: Node,
    written: Mapping[Node, tuple] | None = None,
    ranges: Mapping[str, Sequence[int] | None] | None = None,
    families: Mapping[str, object] | None = None,
) -> str:
    """``node`` as exprgrad text that parses back to the same function.

    With ``ranges`` (as ``Function.ranges``) the text begins with the
    declarations it needs (``k in 1:16; ...``): see ``declarations``.

    Numbers print exactly (repr, integers without .0), pi and e by name, terms
    in a textbook order, except the sums of ``written`` ({node: operands},
    as ``Function.written``), which keep the order their terms were written
    in. Shared subexpressions print inline (see ``to_text_many`` for the
    let-form).

    Raises:
        LimitError: the inline text would pass MAX_INLINE_CHARS.
    """
    printer = Printer(_TextStyle(), [node], written=written)
    text = printer.write(node)
    return "; ".join([*declarations([text], ranges, families), text])


def declarations(
    texts: Sequence[str],
    ranges: Mapping[str, Sequence[int] | None] | None,
    families: Mapping[str, object] | None = None,
) -> list[str]:
    """``k in 1:16`` for each index of ``ranges`` that ``texts`` subscript with, in ``ranges``' order.

    An index whose labels come from a data family's columns (``families``, as
    ``Function.families``: kind "data" with labels) is left to the data, and
    so is a range that is not whole numbers in a row.
    """
    implied = {
        axis
        for family in (families or {}).values()
        if getattr(family, "kind", None) == "data"
        for axis, labels in zip(family.axes, family.labels, strict=False)
        if labels is not None
    }
    used = {
        name.strip()
        for text in texts
        for group in re.findall(r"\[([^\[\]]*)\]", text)
        for name in group.split(",")
    }
    lines = []
    for index, labels in (ranges or {}).items():
        if labels is None or index in implied or index not in used:
            continue
        labels = tuple(labels)
        if labels and labels == tuple(range(labels[0], labels[-1] + 1)):
            lines.append(f"{index} in {labels[0]}:{labels[-1]}")
    return lines


def to_text_many(
    named: Mapping[str, Node],
    let: str = "auto",
    names: Mapping[str, Node] | None = None,
    written: Mapping[Node, tuple] | None = None,
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Several results printed together, shared subexpressions named once.

    Args:
        named: result name -> node (e.g. the partial derivatives by variable).
        let: "auto" names a node referenced two or more times whose inline
            text has at least LET_MIN_CHARS characters; "always" every such
            non-leaf node; "never" none.
        names: the user's own names of nodes ({definition name: node}, as
            ``Function.definitions``): a node that gets a let name is called
            by the first of them (h1, not t1).
        written: sums that keep the order their terms were written in (see ``to_text``).

    Returns:
        (lets, results): lets are (name, text) in dependency order, named
        from ``names`` or t1, t2, ..., chosen not to clash with the
        function's variables;
        results map each name of ``named`` to its text, which may use the
        let names. ``program_text`` joins them into one valid program.

    Raises:
        OptionError: an unknown ``let`` mode.
        LimitError: an inline text would pass MAX_INLINE_CHARS.
    """
    roots = list(named.values())
    printer = Printer(
        _TextStyle(), roots, let=let, reserved=variable_names(roots), preferred=names, written=written
    )
    results = {name: printer.write(node) for name, node in named.items()}
    return printer.lets(), results


def program_text(
    lets: Sequence[tuple[str, str]],
    result_text: str,
    ranges: Mapping[str, Sequence[int] | None] | None = None,
    families: Mapping[str, object] | None = None,
) -> str:
    """One exprgrad program: the declarations and definitions ``result_text`` needs, then the result.

    Only the lets the result uses (directly or through other lets) are kept,
    in their order: ``k in 1:16`` lines (from ``ranges``, see ``declarations``),
    ``t1 = ...`` lines, then the expression.
    """
    # A let of a node with indices is named t1[k]: found by its name t1.
    definitions = {name.split("[", 1)[0]: text for name, text in lets}
    needed: set[str] = set()
    stack = [result_text]
    while stack:
        for word in re.findall(r"\w+", stack.pop()):
            if word in definitions and word not in needed:
                needed.add(word)
                stack.append(definitions[word])
    lines = [f"{name} = {text}" for name, text in lets if name.split("[", 1)[0] in needed]
    return "\n".join([*declarations([*lines, result_text], ranges, families), *lines, result_text])
