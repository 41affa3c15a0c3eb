"""AST -> graph: resolve definitions, names and calls against the registry.

In: a parsed ``Program`` and, when known, the names of the data columns.
Out: the output ``Node`` of the function's graph (``lower_program``: with the
program's families and index ranges, a ``Lowered``).
Decides which free names are data (one value per row) and which are
parameters; families, indices, their ranges, reductions over indices and dot
are lowered by ``indexing`` (``FamilyLowering``, which the lowering here
inherits); ``scope`` checks the program's names first. Never evaluates anything but the constant folding the builders do,
and never recurses on expression depth (explicit stacks throughout).
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field

from . import ast_nodes as A
from . import build, graph, ops
from .errors import ArityError, NameResolutionError, quoted
from .graph import Node
from .indexing import Family, FamilyLowering, presumed_column, span_before
from .scope import Scan

# The grammar's comparison terminals and the registry's comparison ops.
_COMPARISON_OPS = {"LT": ops.LT, "LE": ops.LE, "GT": ops.GT, "GE": ops.GE, "EQ": ops.EQ, "NE": ops.NE}


class Written(dict):
    """The sums of a program's text, {node: operands in the order written}
    (first writing wins), and ``first_use``: where each parameter or column
    first appears in the text ({var node: (line, column)}), by which printers
    order the terms of sums built later from the written terms (a derivative's
    b + a of b*x + a*x)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_use: dict[Node, tuple[int, int]] = {}


@dataclass
class Lowered:
    """A lowered program: its output, the user's definitions, the text's sum orders, its families and ranges."""

    output: Node
    definitions: dict[str, Node]
    written: Written
    families: dict[str, Family] = field(default_factory=dict)
    ranges: dict[str, tuple[int, ...]] = field(default_factory=dict)


class _Lowering(FamilyLowering):
    def __init__(self, program: A.Program, columns: Collection[str] | None, free_indices: bool = False):
        super().__init__(program, free_indices)
        self.free_indices = free_indices
        # The program's names are in NFC (parse put the text in that form); a
        # column named in another form (é as e + U+0301) is found by its NFC
        # form and read under its own name.
        self.column_names: dict[str, str] = {}
        if columns is not None:
            self.column_names = {unicodedata.normalize("NFC", c): c for c in columns if not c.isascii()}
            columns = [unicodedata.normalize("NFC", c) if not c.isascii() else c for c in columns]
        self.check_look_alikes(columns)
        self.columns = self._decide_columns(columns)
        self.lowered: dict[str, Node] = {}
        self.families: dict[str, Family] = {}
        self.ranges: dict[str, tuple[int, ...]] = {}
        self.data_families: dict[str, tuple[tuple[int, ...] | None, tuple[str, ...]]] = {}
        self.family_uses: dict[str, A.Indexed] = {}
        for scan in self.all_scans():
            for use in scan.family_uses:
                known = self.family_uses.get(use.name)
                if known is None or span_before(use.span, known.span):
                    self.family_uses[use.name] = use
        self.given_columns = columns
        self.dot_families: dict[str, A.Span] = {}
        self.renamed_uses: list[tuple[A.Span, Node]] = []
        if self.family_uses:
            self._decide_data_families(columns)
        self.written = Written()  # sums: their terms as written; names: their first use
        # Each plain name means one node for the whole program (a definition is
        # lowered before every use of it), so it is resolved once.
        self.resolved: dict[str, Node] = {}

    def _decide_columns(self, columns: Collection[str] | None) -> set[str]:
        if columns is not None:
            return set(columns)
        if not any(scan.reduces for scan in self.all_scans()):
            return set()
        names = {
            name for scan in self.all_scans() for name in scan.names if presumed_column(name.split("[", 1)[0])
        }
        return names - set(self.definitions)

    def run(self) -> Node:
        self.check_families()
        self.check_indices()
        for name in self.definition_order():
            node = self.lower_expr(self.scans[name])
            definition = self.definitions[name]
            allowed = {graph.index(i.name) for i in definition.indices}
            self._check_bound(node, allowed, self.scans[name], f"the definition of {quoted(name)}")
            self.lowered[name] = node
        output = self.lower_expr(self.result_scan)
        if not self.free_indices:
            self._check_bound(output, set(), self.result_scan, "the result")
        if self.dot_families:
            self._check_dot_families([output, *self.lowered.values()])
        if self.family_uses or self.program.declarations:
            self._decide_ranges(output)
        return output

    def lower_expr(self, scan: Scan) -> Node:
        """The graph of a scanned expression: its nodes children first, one stack of results.

        The AST types are spelled out and the common cases (a sum without
        minus, a product without division) built inline: this loop runs once per
        AST node, so a 100,000-term expression spends most of lowering here.
        """
        results: list[Node] = []
        push = results.append
        resolved = self.resolved
        for node in reversed(scan.order):
            kind = type(node)
            if kind is A.Name:
                value = resolved.get(node.name)
                if value is None:
                    value = resolved[node.name] = self._name(node)
                push(value)
            elif kind is A.Number:
                push(build.const(node.value))
            elif kind is A.Additive:
                n = len(node.terms)
                args = results[-n:]
                del results[-n:]
                if -1 in node.signs:
                    push(self._sum(node, args))
                else:
                    total = build.add(*args)
                    self._remember_order(total, args)
                    push(total)
            elif kind is A.Product:
                n = len(node.factors)
                args = results[-n:]
                del results[-n:]
                push(build.mul(*args) if True not in node.divides else self._product(node, args))
            elif kind is A.Call:
                n = len(node.args)
                args = results[-n:] if n else []
                if n:
                    del results[-n:]
                push(self._call(node, args))
            elif kind is A.Power:
                exponent = results.pop()
                results[-1] = build.pow_(results[-1], exponent)
            elif kind is A.Negate:
                results[-1] = build.neg(results[-1])
            elif kind is A.Compare:
                right = results.pop()
                if node in self.index_compares:  # k == k2 of two indices: a Kronecker delta
                    results[-1] = graph.delta(graph.index(node.left.name), graph.index(node.right.name))
                else:
                    results[-1] = build.call(_COMPARISON_OPS[node.op], results[-1], right)
            elif kind is A.Indexed:
                push(self._indexed(node))
            elif kind is A.Reduce:
                results[-1] = self._reduce(node, results[-1])
            else:
                raise TypeError(f"not an expression node: {node!r}")
        return results[0]

    def _sum(self, node: A.Additive, args: list[Node]) -> Node:
        plus = [a for a, s in zip(args, node.signs) if s > 0]
        minus = [a for a, s in zip(args, node.signs) if s < 0]
        total = build.add(*plus)
        subtracted = build.add(*minus) if minus else None
        self._remember_order(total, plus)
        if subtracted is not None:
            self._remember_order(subtracted, minus)
        return build.sub(total, subtracted) if minus else total

    def record_first_uses(self) -> None:
        """``written.first_use``: the first (line, column) in the text of each name that is a variable."""
        first = self.written.first_use
        for scan in self.all_scans():
            for use in scan.uses:
                node = self.resolved.get(use.name)
                if node is not None and node.is_var:
                    where = (use.span.line, use.span.column)
                    if node not in first or where < first[node]:
                        first[node] = where

    def _remember_order(self, built: Node, terms: list[Node]) -> None:
        """Printers keep a sum's terms in the order written (first writing wins)."""
        same = len(terms) > 1 and len(built.inputs) == len(terms) and built not in self.written
        if same and set(terms) == set(built.inputs):
            self.written[built] = tuple(terms)

    def _product(self, node: A.Product, args: list[Node]) -> Node:
        top = [a for a, d in zip(args, node.divides) if not d]
        bottom = [a for a, d in zip(args, node.divides) if d]
        numerator = build.mul(*top)
        return build.div(numerator, build.mul(*bottom)) if bottom else numerator

    def _name(self, node: A.Name) -> Node:
        name = node.name
        if name in self.lowered:
            return self.lowered[name]
        if name in self.columns:
            return graph.var(self.column_names.get(name, name), per_row=True)
        if name in ops.CONSTANTS:
            return build.named_const(name)
        spec = ops.OPS.get(name)
        if spec is not None and spec.callable:
            raise self.error(
                NameResolutionError,
                f"{quoted(name)} is a function: call it with arguments, e.g. {name}(x)",
                node.span,
            )
        return graph.var(name)

    def _call(self, node: A.Call, args: list[Node]) -> Node:
        if node.name == "dot" and "dot" not in ops.OPS:
            return self._dot(node, args)
        spec = ops.OPS.get(node.name)
        if spec is None or not spec.callable:
            if node.name in self.definitions:
                message = f"{quoted(node.name)} is a definition, not a function: write it without (...)"
            else:
                message = f"unknown function {quoted(node.name)}"
                folded = unicodedata.normalize("NFKC", node.name)
                close = [folded] if folded in ops.function_names() else []
                close = close or difflib.get_close_matches(node.name, ops.function_names(), n=1, cutoff=0.6)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                else:
                    message += " (known: " + ", ".join(ops.function_names()) + ")"
            raise self.error(NameResolutionError, message, node.name_span)
        try:
            ops.check_arity(spec, len(node.args))
        except ArityError as exc:
            raise self.error(ArityError, exc.message, node.name_span) from None
        for position in spec.orders:
            order = args[position]
            if order.is_const and not order.value.is_integer():
                raise self.error(
                    ArityError,
                    f"{spec.text}()'s argument {position + 1} is an order: a whole number (0, 1, 2, ...), "
                    f"as in {spec.text}(1, x)",
                    node.args[position].span,
                )
        return build.call(spec, *args)


def lower(program: A.Program, columns: Collection[str] | None = None) -> Node:
    """The graph of ``program``'s result.

    Args:
        program: what ``parse`` returned.
        columns: names of the data columns; None to presume them (see
            ``presumed_column``: only in an expression that uses sum or mean).

    Returns:
        The output node; its variables are parameters or (``per_row``) columns.

    Raises:
        NameResolutionError: unknown function, repeated or circular definition.
        ArityError: a call with the wrong number of arguments.
    """
    return _Lowering(program, columns).run()


def lower_named(
    program: A.Program, columns: Collection[str] | None = None
) -> tuple[Node, dict[str, Node], Written]:
    """Like ``lower``, with what printers need to follow the user's text.

    Returns:
        (output, definitions, written): the nodes of the user's definitions
        ({name: node}, in definition order), which printers call by the
        user's name (``h1``) instead of t1; and the sums in the order their
        terms were written ({node: operands}; first writing wins), a
        ``Written`` that also says where each variable is first used.
    """
    lowered = lower_program(program, columns)
    return lowered.output, lowered.definitions, lowered.written


def lower_program(
    program: A.Program, columns: Collection[str] | None = None, *, free_indices: bool = False
) -> Lowered:
    """Like ``lower_named``, with the program's families and index ranges (a ``Lowered``).

    ``free_indices``: the result may keep free indices (a family-valued
    function, as a printed derivative ∂/∂w[j] is); otherwise an index free in
    the result that no reduction binds is an error.
    """
    lowering = _Lowering(program, columns, free_indices)
    output = lowering.run()
    lowering.record_first_uses()
    return Lowered(output, dict(lowering.lowered), lowering.written, lowering.families, lowering.ranges)
