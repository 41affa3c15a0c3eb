"""AST -> graph: resolve definitions, names and calls against the registry.

In: a parsed ``Program`` and, when known, the names of the data columns.
Out: the output ``Node`` of the function's graph (``lower_program``: with the
program's families and index ranges, a ``Lowered``).
Decides which free names are data (one value per row) and which are
parameters, and which families are data (columns x1..x50, x_1..x_50 or
x[1]..x[50] form the family x, labels 1..50) or parameters; checks that
indices are bound and that every use of an index agrees on its range;
``scope`` checks the program's names first. Never evaluates anything but the constant folding the builders do,
and never recurses on expression depth (explicit stacks throughout).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field

from . import ast_nodes as A
from . import build, graph, ops
from .errors import ArityError, NameResolutionError, quoted
from .graph import Node
from .scope import Scan, Scope

# Without a data file the row names are guessed: in an expression that reduces
# over rows (sum, mean), x, y, z and their indexed or suffixed forms (x1, x_2,
# y_obs) are data columns. With data, the file's header decides exactly.
_PRESUMED_DATA = re.compile(r"^[xyz](\d+|_\w*)?$")


# The grammar's comparison terminals and the registry's comparison ops.
_COMPARISON_OPS = {"LT": ops.LT, "LE": ops.LE, "GT": ops.GT, "GE": ops.GE, "EQ": ops.EQ, "NE": ops.NE}


def presumed_column(name: str) -> bool:
    """True for names taken as data columns when no data file says otherwise."""
    return bool(_PRESUMED_DATA.match(name))


class Written(dict):
    """The sums of a program's text, {node: operands in the order written}
    (first writing wins), and ``first_use``: where each parameter or column
    first appears in the text ({var node: (line, column)}), by which printers
    order the terms of sums built later from the written terms (a derivative's
    b + a of b*x + a*x)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_use: dict[Node, tuple[int, int]] = {}


@dataclass(frozen=True)
class Family:
    """What lowering knows of one family (``w`` of ``w[j]``).

    axes: the index names of its first written use (``W[k,j]``: ("k", "j")).
    kind: "parameter" or "data".
    labels: per axis, the labels when known (a data family's columns, a
        declared range ``k in 1:16``, or another family used with the same
        index), else None: a parameter family takes its size from the values given.
    columns: for a data family with known columns, their names in label order.
    """

    name: str
    axes: tuple[str, ...]
    kind: str
    labels: tuple[tuple[int, ...] | None, ...]
    columns: tuple[str, ...] = ()


@dataclass
class Lowered:
    """A lowered program: its output, the user's definitions, the text's sum orders, its families and ranges."""

    output: Node
    definitions: dict[str, Node]
    written: Written
    families: dict[str, Family] = field(default_factory=dict)
    ranges: dict[str, tuple[int, ...]] = field(default_factory=dict)


# How data columns name the members of a family x: x1, x_1, x[1].
_NAMINGS = (("{}1", r"(\d+)"), ("{}_1", r"_(\d+)"), ("{}[1]", r"\[(\d+)\]"))


def _labels_text(labels: tuple) -> str:
    return f"{labels[0]}..{labels[-1]}" if len(labels) > 1 else f"{labels[0]}"


class _Lowering(Scope):
    def __init__(self, program: A.Program, columns: Collection[str] | None, free_indices: bool = False):
        super().__init__(program)
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
                if known is None or _before(use.span, known.span):
                    self.family_uses[use.name] = use
        self.given_columns = columns
        self.dot_families: dict[str, A.Span] = {}
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

    def _decide_data_families(self, columns: Collection[str] | None) -> None:
        """Which families are data: their columns and labels (x1..x50 -> labels 1..50)."""
        for name, use in self.family_uses.items():
            if name not in self.definitions:
                self._data_family(name, use.span, len(use.subscripts), columns)

    def _data_family(self, name: str, span: A.Span, count: int, columns: Collection[str] | None) -> bool:
        """Decide whether family ``name`` is data (recorded in ``data_families``); True when it is."""
        if columns is None:
            if presumed_column(name) and any(scan.reduces for scan in self.all_scans()):
                self.data_families[name] = (None, ())
                return True
            return False
        found: dict[str, dict[int, str]] = {}
        for spelling, pattern in _NAMINGS:
            regex = re.compile(re.escape(name) + pattern + "$")
            for column in columns:
                match = regex.match(column)
                if match:
                    found.setdefault(spelling, {})[int(match.group(1))] = self.column_names.get(
                        column, column
                    )
        if not found:
            return False
        if len(found) > 1:
            kinds = " and ".join(sorted(spelling.format(name) for spelling in found))
            raise self.error(
                NameResolutionError,
                f"the data columns of family {quoted(name)} mix two namings ({kinds}): name every member one way",
                span,
            )
        ((spelling, members),) = found.items()
        labels = tuple(sorted(members))
        missing = [label for label in range(labels[0], labels[-1] + 1) if label not in members]
        if missing:
            absent = spelling.format(name).replace("1", str(missing[0]))
            raise self.error(
                NameResolutionError,
                f"the data family {quoted(name)} has a gap: columns {_labels_text(labels)} without "
                f"{quoted(absent)} (a family's columns are numbered without gaps)",
                span,
            )
        if count != 1:
            raise self.error(
                NameResolutionError,
                f"{quoted(name)} is a data family with one index (its columns), used here with {count}",
                span,
            )
        self.data_families[name] = (labels, tuple(members[label] for label in labels))
        return True

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

    def _check_bound(self, node: Node, allowed: set, scan: Scan, where: str) -> None:
        free = [i for i in node.indices if i is not graph.ROWS and i not in allowed]
        if not free:
            return
        index = free[0]
        span = scan.index_names.get(index.name)
        for use in scan.family_uses:  # the first written use, in source order
            for s in use.subscripts:
                if type(s) is A.Index and s.name == index.name and (span is None or _before(s.span, span)):
                    span = s.span
        if where == "the result":
            hint = f"reduce it (sum[{index.name}](...), mean[{index.name}](...))"
        else:
            hint = f"reduce it, or define a family by it ({where.split()[-1].strip(chr(39))}[{index.name}] = ...)"
        message = f"index {quoted(index.name)} is free in {where}: no reduction binds it; {hint}"
        raise self.error(NameResolutionError, message, span or scan.order[0].span)

    def _decide_ranges(self, output: Node) -> None:
        """Each index's labels, and each family's: every use of an index must agree."""
        why: dict[str, tuple[str, A.Span]] = {}
        for declaration in self.program.declarations:
            labels = tuple(range(declaration.first, declaration.last + 1))
            self._set_range(
                declaration.index,
                labels,
                f"its declaration {declaration.index} in {declaration.first}:{declaration.last}",
                declaration.index_span,
                why,
            )
        roots = [output, *self.lowered.values()]
        variables = [v for v in graph.variables(roots) if v.var_axes]
        for v in variables:
            labels, columns = self.data_families.get(v.name, (None, ()))
            if labels is not None:
                use = self.family_uses[v.name]
                for i in v.var_axes:
                    self._set_range(
                        i.name,
                        labels,
                        f"the data family {v.name} ({columns[0]}..{columns[-1]})",
                        use.span,
                        why,
                    )
        axes: dict[str, list] = {}
        for v in variables:
            known = axes.setdefault(v.name, [None] * len(v.var_axes))
            if len(known) != len(v.var_axes):
                use = self.family_uses.get(v.name)
                raise self.error(
                    NameResolutionError,
                    f"{quoted(v.name)} is used with {len(known)} and with {len(v.var_axes)} indices; "
                    "a family has one number of indices",
                    self._use_of(v.name, len(v.var_axes)),
                )
            for position, i in enumerate(v.var_axes):
                labels = self.ranges.get(i.name)
                if labels is None:
                    continue
                if known[position] is None:
                    known[position] = (labels, i.name)
                elif known[position][0] != labels:
                    other = known[position][1]
                    use = self.family_uses.get(v.name)
                    raise self.error(
                        NameResolutionError,
                        f"the ranges disagree: {quoted(v.name)} is used with index {quoted(other)} "
                        f"({len(known[position][0])} labels, from {why[other][0]}) and with "
                        f"{quoted(i.name)} ({len(labels)} labels, from {why[i.name][0]}) in the same place",
                        self._use_of(v.name, len(v.var_axes), position, i.name),
                    )
        for name, use in sorted(self.family_uses.items(), key=lambda item: graph.natural_key(item[0])):
            if name in self.definitions:
                continue
            found = axes.get(name)
            written = tuple(s.name for s in use.subscripts)
            labels = (
                tuple(k[0] if k is not None else None for k in found) if found else (None,) * len(written)
            )
            data = self.data_families.get(name)
            kind = "data" if data is not None else "parameter"
            self.families[name] = Family(name, written, kind, labels, data[1] if data else ())

    def _use_of(self, name: str, count: int, position: int | None = None, index: str = "") -> A.Span:
        """Where ``name`` is first written with ``count`` subscripts (``index`` at ``position``)."""
        found = None
        for scan in self.all_scans():
            for use in scan.family_uses:
                if use.name != name or len(use.subscripts) != count:
                    continue
                if position is not None and getattr(use.subscripts[position], "name", None) != index:
                    continue
                if found is None or _before(use.span, found):
                    found = use.span
        if found is None:
            first = self.family_uses.get(name)
            return first.span if first is not None else self.program.result.span
        return found

    def _set_range(self, index: str, labels: tuple, reason: str, span: A.Span, why: dict) -> None:
        known = self.ranges.get(index)
        if known is None:
            self.ranges[index] = labels
            why[index] = (reason, span)
        elif known != labels:
            raise self.error(
                NameResolutionError,
                f"the ranges of index {quoted(index)} disagree: {len(known)} labels "
                f"({_labels_text(known)}) from {why[index][0]} (line {why[index][1].line}), "
                f"{len(labels)} labels ({_labels_text(labels)}) from {reason}",
                span,
            )

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
                results[-1] = build.call(_COMPARISON_OPS[node.op], results[-1], right)
            elif kind is A.Indexed:
                push(self._indexed(node))
            elif kind is A.Reduce:
                results[-1] = self._reduce(node, results[-1])
            else:
                raise TypeError(f"not an expression node: {node!r}")
        return results[0]

    def _indexed(self, node: A.Indexed) -> Node:
        subscripts = node.subscripts
        if all(type(s) is int for s in subscripts):  # a member: theta[0], W[2,3]
            name = f"{node.name}[{','.join(map(str, subscripts))}]"
            return graph.var(self.column_names.get(name, name), per_row=name in self.columns)
        if any(type(s) is int for s in subscripts):
            raise self.error(
                NameResolutionError,
                f"{quoted(node.name)} mixes an index and a label in its brackets: "
                "a slice of a family is not supported; use indices only (W[k,j]) or labels only (W[2,3])",
                node.span,
            )
        names = [s.name for s in subscripts]
        repeated = [n for n in names if names.count(n) > 1]
        if repeated:
            raise self.error(
                NameResolutionError,
                f"{quoted(node.name)} repeats the index {quoted(repeated[0])}: "
                "a diagonal is not supported; use different indices",
                node.span,
            )
        indices = tuple(graph.index(n) for n in names)
        definition = self.definitions.get(node.name)
        if definition is not None:
            if len(definition.indices) != len(indices):
                raise self.error(
                    NameResolutionError,
                    f"{quoted(node.name)} is defined with {len(definition.indices)} "
                    f"ind{'ex' if len(definition.indices) == 1 else 'ices'}, used here with {len(indices)}",
                    node.span,
                )
            mapping = {graph.index(d.name): i for d, i in zip(definition.indices, indices, strict=True)}
            return build.rename(self.lowered[node.name], mapping)
        if node.name in self.data_families:
            return graph.var(node.name, (graph.ROWS, *indices))
        return graph.var(node.name, indices)

    def _reduce(self, node: A.Reduce, body: Node) -> Node:
        spec = ops.INDEX_REDUCTIONS[node.op]
        indices = []
        for i in node.indices:
            index = graph.index(i.name)
            if index not in body.indices and not (spec is ops.SUM and body.is_const):
                raise self.error(
                    NameResolutionError,
                    f"{node.op}[{i.name}](...) reduces over {quoted(i.name)}, but its body does not have "
                    f"that index",
                    i.span,
                )
            indices.append(index)
        return build.reduce(spec, body, tuple(indices))

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

    def _dot(self, node: A.Call, args: list[Node]) -> Node:
        """dot(u, v): the sum over the one index u and v share (rows aside).

        A bare name (dot(w, x)) stands for a family over that index: x the
        data family x1..x50, w a parameter family of the same size.
        """
        if len(args) != 2:
            raise self.error(ArityError, f"dot() takes 2 arguments, got {len(args)}", node.name_span)
        bare = [self._bare(written, arg) for written, arg in zip(node.args, args, strict=True)]
        if any(bare):
            written = [a for a, b in zip(args, bare, strict=True) if not b]
            axes = [i for a in written for i in a.indices if i is not graph.ROWS]
            if len(axes) == 1:
                shared = axes[0]
            elif not axes:
                shared = (
                    build.fresh_index(graph.index("i"), self._taken_names())
                    if "j" in self._taken_names()
                    else None
                )
                shared = shared or graph.index("j")
            else:
                shared = None
            if shared is not None:
                args = [
                    self._bare_family(written, shared) if b else arg
                    for written, arg, b in zip(node.args, args, bare, strict=True)
                ]
        u, v = args
        shared = [i for i in u.indices if i is not graph.ROWS and i in v.indices]
        if len(shared) != 1:
            said = "no index" if not shared else "several indices (" + ", ".join(i.name for i in shared) + ")"
            raise self.error(
                NameResolutionError,
                f"dot(u, v) sums over the one index its two arguments share; these share {said}: "
                "write the sum, as in sum[j](u[j]*v[j])",
                node.name_span,
            )
        return build.reduce(ops.SUM, build.mul(u, v), shared[0])

    def _bare(self, written, arg: Node) -> bool:
        """Whether a dot() argument is a bare name that stands for a family (not a definition, column)."""
        if type(written) is not A.Name or written.name in self.definitions or not arg.is_var:
            return False
        # a data column of its own stays a column
        return self.given_columns is None or written.name not in self.columns

    def _taken_names(self) -> set[str]:
        taken = {d.index for d in self.program.declarations}
        for scan in self.all_scans():
            taken.update(scan.index_names)
            taken.update(scan.names)
        return taken

    def _bare_family(self, written: A.Name, axis: graph.Index) -> Node:
        """The family a bare name in dot() stands for, over ``axis``."""
        name = written.name
        self.dot_families.setdefault(name, written.span)
        if name not in self.family_uses:
            self.family_uses[name] = A.Indexed(name, (A.Index(axis.name, written.span),), written.span)
        if name in self.data_families or self._data_family(name, written.span, 1, self.given_columns):
            return graph.var(name, (graph.ROWS, axis))
        return graph.var(name, (axis,))

    def _check_dot_families(self, roots: list[Node]) -> None:
        """A name that dot() made a family must not also be used plain."""
        plain = {v.name for v in graph.variables(roots) if not v.var_axes}
        for name, in_dot in self.dot_families.items():
            if name in plain:
                span = in_dot
                for scan in self.all_scans():
                    for use in scan.uses:
                        if (
                            use.name == name
                            and use.span is not in_dot
                            and (span is in_dot or _before(use.span, span))
                        ):
                            span = use.span
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is a family in dot() and is also used as a plain name; rename one of them",
                    span,
                )


def _before(a: A.Span, b: A.Span) -> bool:
    return (a.line, a.column) < (b.line, b.column)


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
