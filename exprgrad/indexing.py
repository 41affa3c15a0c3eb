"""Lowering of index families: data families from columns, indices, ranges, reductions over indices, dot.

In: a scoped ``Program`` (``scope``) and, when known, the names of the data
columns; the lowering in ``lower`` inherits ``FamilyLowering`` and calls it
for each family use (``w[j]``, ``x[2]``, ``W[k,j]``), each reduction over an
index (``sum[j](...)``), each ``dot(u, v)`` and, once the graph is built, to
check that indices are bound and to decide the ranges.
Out: family nodes (``var`` nodes with indices; a data family's carry the rows
too), reductions over indices, and ``Family`` records with each index's labels.
Decides which families are data (columns x1..x50, x_1..x_50 or x[1]..x[50]
form the family x, labels 1..50) or parameters, and checks that every use of an
index agrees on its range.
Must not: evaluate anything (beyond the builders' constant folding), call a
printer, or recurse on expression depth; plain names and calls are ``lower``'s.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from dataclasses import dataclass

from . import ast_nodes as A
from . import build, graph, memory, ops
from .errors import ArityError, LimitError, NameResolutionError, quoted
from .graph import Node
from .scope import Scan, Scope

# Without a data file the row names are guessed: in an expression that reduces
# over rows (sum, mean), x, y, z and their indexed or suffixed forms (x1, x_2,
# y_obs) are data columns. With data, the file's header decides exactly.
_PRESUMED_DATA = re.compile(r"^[xyz](\d+|_\w*)?$")


def presumed_column(name: str) -> bool:
    """True for names taken as data columns when no data file says otherwise."""
    return bool(_PRESUMED_DATA.match(name))


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


# How data columns name the members of a family x: x1, x_1, x[1].
_NAMINGS = (("{}1", r"(\d+)"), ("{}_1", r"_(\d+)"), ("{}[1]", r"\[(\d+)\]"))


def _labels_text(labels: tuple) -> str:
    return f"{labels[0]}..{labels[-1]}" if len(labels) > 1 else f"{labels[0]}"


class FamilyLowering(Scope):
    """The family half of lowering: ``lower._Lowering`` inherits it and sets, before any call,
    ``columns``, ``column_names``, ``given_columns``, ``definitions``, ``lowered``,
    ``families``, ``ranges``, ``data_families``, ``family_uses``, ``dot_families`` and
    ``renamed_uses`` (each use of a definition by index: its span and renamed graph)."""

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
                    members = found.setdefault(spelling, {})
                    label = int(match.group(1))
                    if label in members:  # x1 and x01: one label, two columns
                        raise self.error(
                            NameResolutionError,
                            f"the data columns {quoted(members[label])} and {quoted(column)} are both member "
                            f"{label} of the family {quoted(name)}: rename one of them",
                            span,
                        )
                    members[label] = self.column_names.get(column, column)
        if not found:
            return False
        if name in columns:  # x beside x1, x2: never dropped from the family silently
            first = min(next(iter(found.values())).items())[1]
            raise self.error(
                NameResolutionError,
                f"the data has a column {quoted(name)} and the columns {quoted(first)}, ... of the family "
                f"{quoted(name)}: rename the column {quoted(name)} (a name is a column or a family, not both)",
                span,
            )
        if len(found) > 1:  # named by the columns present: x1 and x_2
            kinds = " and ".join(sorted(members[min(members)] for members in found.values()))
            raise self.error(
                NameResolutionError,
                f"the data columns of family {quoted(name)} mix two namings ({kinds}): name every member one way",
                span,
            )
        ((spelling, members),) = found.items()
        labels = tuple(sorted(members))
        # the first label missing, found between neighbours (x1 and x100000000000: no walk over the gap)
        missing = next((a + 1 for a, b in itertools.pairwise(labels) if b != a + 1), None)
        if missing is not None:
            absent = spelling.replace("1", str(missing)).format(name)
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

    def _check_bound(self, node: Node, allowed: set, scan: Scan, where: str) -> None:
        free = [i for i in node.indices if i is not graph.ROWS and i not in allowed]
        if not free:
            return
        index = free[0]
        span = scan.index_names.get(index.name)
        for use in scan.family_uses:  # the first written use, in source order
            for s in use.subscripts:
                if (
                    type(s) is A.Index
                    and s.name == index.name
                    and (span is None or span_before(s.span, span))
                ):
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
            labels = range(declaration.first, declaration.last + 1)  # a tuple once the sizes are checked
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
                for position, i in enumerate(v.var_axes):
                    self._set_range(
                        i.name,
                        range(labels[0], labels[-1] + 1),  # a data family's labels have no gaps
                        f"the data family {v.name} ({columns[0]}..{columns[-1]})",
                        self._use_of(v.name, len(v.var_axes), position, i.name),
                        why,
                    )
        self._compare_ranges(why)
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
        self._check_memory(variables)
        for index, labels in self.ranges.items():
            self.ranges[index] = tuple(labels)
        for name, use in sorted(self.family_uses.items(), key=lambda item: graph.natural_key(item[0])):
            if name in self.definitions:
                continue
            found = axes.get(name)
            written = tuple(s.name for s in use.subscripts)
            labels = (
                tuple(tuple(k[0]) if k is not None else None for k in found)
                if found
                else (None,) * len(written)
            )
            data = self.data_families.get(name)
            kind = "data" if data is not None else "parameter"
            self.families[name] = Family(name, written, kind, labels, data[1] if data else ())

    def _compare_ranges(self, why: dict) -> None:
        """``k == k2`` compares labels: the two indices have one range (one known gives it to the other)."""
        changed = True
        while changed:
            changed = False
            for compare in self.index_compares:
                left, right = compare.left.name, compare.right.name
                known = [n for n in (left, right) if n in self.ranges]
                if len(known) == 2 and tuple(self.ranges[left]) != tuple(self.ranges[right]):
                    raise self.error(
                        NameResolutionError,
                        f"({left} == {right}) compares two indices with different ranges: {quoted(left)} has "
                        f"{len(self.ranges[left])} labels (from {why[left][0]}), {quoted(right)} "
                        f"{len(self.ranges[right])} (from {why[right][0]}); compare indices with the same labels",
                        compare.span,
                    )
                if len(known) == 1:
                    (source,) = known
                    other = right if source == left else left
                    self._set_range(
                        other, self.ranges[source], f"the comparison ({left} == {right})", compare.span, why
                    )
                    changed = True

    def _check_memory(self, variables: list[Node]) -> None:
        """Refuse a family, or a declared index's labels, too large for the memory there is (``memory``)."""
        for v in variables:
            if v.name not in self.data_families and all(i.name in self.ranges for i in v.var_axes):
                parts = [(i.name, len(self.ranges[i.name])) for i in v.var_axes]
                message = memory.family_too_large(v.name, parts)
                if message is not None:
                    raise self.error(LimitError, message, self.family_uses[v.name].span)
        for name, node in self.lowered.items():
            indices = [i.name for i in self.definitions[name].indices]
            if indices and all(i in self.ranges for i in indices):
                rows = memory.BLOCK_ROWS if graph.ROWS in node.indices else 1
                message = memory.family_too_large(name, [(i, len(self.ranges[i])) for i in indices], rows)
                if message is not None:
                    used = name in self.family_uses
                    span = self._use_of(name, len(indices)) if used else self.definitions[name].span
                    raise self.error(LimitError, message, span)
        for declaration in self.program.declarations:
            message = memory.labels_too_large(declaration.index, len(self.ranges[declaration.index]))
            if message is not None:
                raise self.error(LimitError, message, declaration.index_span)

    def _use_of(self, name: str, count: int, position: int | None = None, index: str = "") -> A.Span:
        """Where ``name`` is first written with ``count`` subscripts (``index`` at ``position``).

        A family used through a definition by index under another index (``w[k]``
        inside ``h[k] = ...``, used as ``h[m]``) is found at that use (``h[m]``).
        """
        found = None
        for scan in self.all_scans():
            for use in scan.family_uses:
                if use.name != name or len(use.subscripts) != count:
                    continue
                if position is not None and getattr(use.subscripts[position], "name", None) != index:
                    continue
                if found is None or span_before(use.span, found):
                    found = use.span
        if found is None and position is not None:
            for span, renamed in self.renamed_uses:
                if (found is None or span_before(span, found)) and any(
                    v.name == name and len(v.var_axes) == count and v.var_axes[position].name == index
                    for v in graph.variables([renamed])
                ):
                    found = span
        if found is None:
            first = self.family_uses.get(name)
            return first.span if first is not None else self.program.result.span
        return found

    def _set_range(self, index: str, labels: tuple, reason: str, span: A.Span, why: dict) -> None:
        known = self.ranges.get(index)
        if known is None:
            self.ranges[index] = labels
            why[index] = (reason, span)
        elif len(known) != len(labels) or known[0] != labels[0]:  # ranges: consecutive labels
            raise self.error(
                NameResolutionError,
                f"the ranges of index {quoted(index)} disagree: {len(known)} labels "
                f"({_labels_text(known)}) from {why[index][0]} (line {why[index][1].line}), "
                f"{len(labels)} labels ({_labels_text(labels)}) from {reason}",
                span,
            )

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
            renamed = build.rename(self.lowered[node.name], mapping)
            self.renamed_uses.append((node.span, renamed))
            return renamed
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
        plain = [
            w.name
            for w, a in zip(node.args, args, strict=True)
            if type(w) is A.Name
            and a.is_var
            and not a.var_axes
            and self.given_columns is not None
            and w.name in self.columns
        ]
        if not shared and plain:
            self._data_family(plain[0], node.name_span, 1, self.given_columns)  # x beside x1, x2: that error
            raise self.error(
                NameResolutionError,
                f"dot(u, v) sums over an index two families share, and {quoted(plain[0])} is a data column, "
                f"not a family (columns {plain[0]}1, {plain[0]}2, ... make one); for one column write the product",
                node.name_span,
            )
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
                            and (span is in_dot or span_before(use.span, span))
                        ):
                            span = use.span
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is a family in dot() and is also used as a plain name; rename one of them",
                    span,
                )


def span_before(a: A.Span, b: A.Span) -> bool:
    """Whether ``a`` starts before ``b`` in the text."""
    return (a.line, a.column) < (b.line, b.column)
