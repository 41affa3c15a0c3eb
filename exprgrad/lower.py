"""AST -> graph: resolve definitions, names and calls against the registry.

In: a parsed ``Program`` and, when known, the names of the data columns.
Out: the output ``Node`` of the function's graph.
Decides which free names are data (one value per row) and which are
parameters. Never evaluates anything but the constant folding the builders do,
and never recurses on expression depth (explicit stacks throughout).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection

from . import ast_nodes as A
from . import graph, ops
from .errors import ArityError, ExprgradError, NameResolutionError
from .graph import Node

# Without a data file the row names are guessed: in an expression that reduces
# over rows (sum, mean), x, y, z and their indexed or suffixed forms (x1, x_2,
# y_obs) are data columns. With data, the file's header decides exactly.
_PRESUMED_DATA = re.compile(r"^[xyz](\d+|_\w*)?$")


def presumed_column(name: str) -> bool:
    """True for names taken as data columns when no data file says otherwise."""
    return bool(_PRESUMED_DATA.match(name))


def _children(expr) -> tuple:
    if isinstance(expr, A.Sum):
        return expr.terms
    if isinstance(expr, A.Product):
        return expr.factors
    if isinstance(expr, A.Power):
        return (expr.base, expr.exponent)
    if isinstance(expr, A.Negate):
        return (expr.operand,)
    if isinstance(expr, A.Call):
        return expr.args
    return ()


def _walk(expr):
    """Every node of an expression tree, parents before children, iteratively."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(_children(node))


class _Lowering:
    def __init__(self, program: A.Program, columns: Collection[str] | None):
        self.program = program
        self.source = program.source
        self.definitions: dict[str, A.Definition] = {}
        for definition in program.definitions:
            if definition.name in self.definitions:
                first = self.definitions[definition.name].span.line
                raise self.error(
                    NameResolutionError,
                    f"'{definition.name}' is defined twice (first on line {first})",
                    definition.span,
                )
            self.definitions[definition.name] = definition
        self.columns = self._decide_columns(columns)
        self.lowered: dict[str, Node] = {}

    def error(self, cls, message: str, span: A.Span) -> ExprgradError:
        return cls(message, source=self.source, line=span.line, column=span.column, width=span.width)

    def _decide_columns(self, columns: Collection[str] | None) -> set[str]:
        if columns is not None:
            return set(columns)
        exprs = [self.program.result, *(d.value for d in self.program.definitions)]
        reduces = any(
            isinstance(n, A.Call) and n.name in ops.OPS and ops.OPS[n.name].reduction
            for e in exprs
            for n in _walk(e)
        )
        if not reduces:
            return set()
        names = set()
        for e in exprs:
            for n in _walk(e):
                if isinstance(n, A.Name) and presumed_column(n.name):
                    names.add(n.name)
                elif isinstance(n, A.Indexed) and presumed_column(n.name):
                    names.add(f"{n.name}[{n.index}]")
        return names - set(self.definitions)

    def run(self) -> Node:
        self._check_families()
        for name in self._definition_order():
            self.lowered[name] = self.lower_expr(self.definitions[name].value)
        return self.lower_expr(self.program.result)

    def _check_families(self) -> None:
        plain: dict[str, A.Span] = {}
        indexed: dict[str, A.Span] = {}
        for expr in [self.program.result, *(d.value for d in self.program.definitions)]:
            for n in _walk(expr):
                if isinstance(n, A.Name):
                    plain.setdefault(n.name, n.span)
                elif isinstance(n, A.Indexed):
                    indexed.setdefault(n.name, n.span)
        for name, span in indexed.items():
            if name in self.definitions:
                raise self.error(
                    NameResolutionError,
                    f"'{name}' is a definition, so '{name}[...]' means nothing; "
                    "only parameter families take an index",
                    span,
                )
            if name in plain:
                raise self.error(
                    NameResolutionError,
                    f"'{name}' is used both as a plain name and as a family ({name}[...]); "
                    "rename one of them",
                    plain[name],
                )

    def _definition_order(self) -> list[str]:
        """Definitions ordered so each comes after those it uses; cycles are errors."""
        uses = {
            name: [n for n in _walk(d.value) if isinstance(n, A.Name) and n.name in self.definitions]
            for name, d in self.definitions.items()
        }
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = in progress, 2 = done
        for root in self.definitions:
            if state.get(root) == 2:
                continue
            stack = [(root, 0)]
            state[root] = 1
            while stack:
                name, i = stack[-1]
                if i < len(uses[name]):
                    stack[-1] = (name, i + 1)
                    used = uses[name][i]
                    if state.get(used.name) == 1:
                        path = [n for n, _ in stack]
                        cycle = path[path.index(used.name):] + [used.name]
                        if len(cycle) == 2:
                            message = f"the definition of '{used.name}' refers to itself"
                        else:
                            message = "definitions refer to each other in a circle: " + " -> ".join(cycle)
                        raise self.error(NameResolutionError, message, used.span)
                    if state.get(used.name) is None:
                        state[used.name] = 1
                        stack.append((used.name, 0))
                else:
                    stack.pop()
                    state[name] = 2
                    order.append(name)
        return order

    def lower_expr(self, expr) -> Node:
        """Post-order over the tree with an explicit stack."""
        results: list[Node] = []
        stack = [(expr, False)]
        while stack:
            node, expanded = stack.pop()
            children = _children(node)
            if not expanded and children:
                stack.append((node, True))
                stack.extend((c, False) for c in reversed(children))
                continue
            args = results[len(results) - len(children):] if children else []
            if children:
                del results[len(results) - len(children):]
            results.append(self._build(node, args))
        return results[0]

    def _build(self, node, args: list[Node]) -> Node:
        if isinstance(node, A.Number):
            return ops.const(node.value)
        if isinstance(node, A.Name):
            return self._name(node)
        if isinstance(node, A.Indexed):
            name = f"{node.name}[{node.index}]"
            return graph.var(name, per_row=name in self.columns)
        if isinstance(node, A.Negate):
            return ops.neg(args[0])
        if isinstance(node, A.Power):
            return ops.pow_(args[0], args[1])
        if isinstance(node, A.Sum):
            plus = [a for a, s in zip(args, node.signs) if s > 0]
            minus = [a for a, s in zip(args, node.signs) if s < 0]
            total = ops.add(*plus)
            return ops.sub(total, ops.add(*minus)) if minus else total
        if isinstance(node, A.Product):
            top = [a for a, d in zip(args, node.divides) if not d]
            bottom = [a for a, d in zip(args, node.divides) if d]
            numerator = ops.mul(*top)
            return ops.div(numerator, ops.mul(*bottom)) if bottom else numerator
        if isinstance(node, A.Call):
            return self._call(node, args)
        raise TypeError(f"unknown syntax node {type(node).__name__}")

    def _name(self, node: A.Name) -> Node:
        name = node.name
        if name in self.lowered:
            return self.lowered[name]
        if name in self.columns:
            return graph.var(name, per_row=True)
        if name in ops.CONSTANTS:
            return ops.named_const(name)
        spec = ops.OPS.get(name)
        if spec is not None and spec.callable:
            raise self.error(
                NameResolutionError,
                f"'{name}' is a function: call it with arguments, e.g. {name}(x)",
                node.span,
            )
        return graph.var(name)

    def _call(self, node: A.Call, args: list[Node]) -> Node:
        spec = ops.OPS.get(node.name)
        if spec is None or not spec.callable:
            if node.name in self.definitions:
                message = f"'{node.name}' is a definition, not a function: write {node.name} without (...)"
            else:
                message = f"unknown function '{node.name}'"
                close = difflib.get_close_matches(node.name, ops.function_names(), n=1, cutoff=0.6)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                else:
                    message += " (known: " + ", ".join(ops.function_names()) + ")"
            raise self.error(NameResolutionError, message, node.name_span)
        try:
            ops.check_arity(spec, len(node.args))
        except ArityError as exc:
            raise self.error(ArityError, exc.message, node.name_span) from None
        return ops.call(node.name, *args)


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
