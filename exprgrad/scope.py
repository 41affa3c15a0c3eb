"""A program's names, checked before lowering: definitions, their order, families, look-alikes.

In: a parsed ``Program``. Out: a ``Scope``: the definitions by name, one
``Scan`` per expression (the names it uses, whether it reduces over rows, its
AST nodes in the order lowering reads them), and the definitions in an order
where each comes after those it uses. Refuses a name defined twice,
definitions that refer to each other in a circle, a name used both plain and
as a family, a member of a defined family, an index that is also a name, an
index or a family named like a constant or a function (pi, exp), and two names
that look alike. A comparison ``k == k2`` of two plain names one of which is
an index compares indices (``Scope.index_compares``: lowering makes it a
Kronecker delta); its names are indices there, not parameters.
Must not: build graph nodes, or recurse on expression depth (explicit stacks).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field

from . import ast_nodes as A
from . import ops
from .errors import ExprgradError, NameResolutionError, quoted


@dataclass
class Scan:
    """What one walk over an expression finds: the names it uses, whether it reduces, its nodes."""

    names: dict[str, A.Span] = field(default_factory=dict)  # plain names, first use
    indexed: dict[str, A.Span] = field(default_factory=dict)  # family -> first use
    reduces: bool = False
    uses: list[A.Name] = field(default_factory=list)  # every plain-name use, in order
    family_uses: list = field(default_factory=list)  # Indexed nodes with an index (w[j], W[k,3])
    index_names: dict[str, A.Span] = field(default_factory=dict)  # index names, first use
    compares: list = field(default_factory=list)  # a == b of two plain names: maybe two indices
    # Every node, parents before children, a parent's last child first: read
    # backwards, children before parents in source order (what lowering needs).
    order: list = field(default_factory=list)


def scan(expr) -> Scan:
    """One iterative walk over ``expr`` (the AST types are spelled out: this loop is hot)."""
    found = Scan()
    names, uses, order = found.names, found.uses, found.order
    stack = [expr]
    while stack:
        node = stack.pop()
        order.append(node)
        kind = type(node)
        if kind is A.Name:
            if node.name not in names:
                names[node.name] = node.span
            uses.append(node)
        elif kind is A.Number:
            pass
        elif kind is A.Additive:
            stack += node.terms
        elif kind is A.Product:
            stack += node.factors
        elif kind is A.Call:
            stack += node.args
            spec = ops.OPS.get(node.name)
            if spec is not None and spec.reduction:
                found.reduces = True
        elif kind is A.Power:
            stack.append(node.base)
            stack.append(node.exponent)
        elif kind is A.Negate:
            stack.append(node.operand)
        elif kind is A.Compare:
            stack.append(node.left)
            stack.append(node.right)
            if node.op == "EQ" and type(node.left) is A.Name and type(node.right) is A.Name:
                found.compares.append(node)
        elif kind is A.Indexed:
            subscripts = node.subscripts
            if len(subscripts) == 1 and type(subscripts[0]) is int:
                found.indexed.setdefault(node.name, node.span)
                found.names.setdefault(f"{node.name}[{subscripts[0]}]", node.span)
                continue
            if all(type(s) is int for s in subscripts):  # W[2,3]: one member
                found.indexed.setdefault(node.name, node.span)
                found.names.setdefault(f"{node.name}[{','.join(map(str, subscripts))}]", node.span)
                continue
            found.family_uses.append(node)
            for s in subscripts:
                if type(s) is A.Index:
                    found.index_names.setdefault(s.name, s.span)
        elif kind is A.Reduce:
            for i in node.indices:
                found.index_names.setdefault(i.name, i.span)
            stack.append(node.body)
    return found


def _builtin(name: str) -> str:
    """What a name the language already gives a meaning means (``the constant pi``), or ''."""
    if name in ops.CONSTANTS:
        return f"the constant {name}"
    spec = ops.OPS.get(name)
    return f"the function {name}()" if spec is not None and spec.callable else ""


class Scope:
    """A program's definitions and the scans of its expressions; the checks on its names."""

    def __init__(self, program: A.Program, free_indices: bool = False):
        self.program = program
        self.source = program.source
        self.definitions: dict[str, A.Definition] = {}
        for definition in program.definitions:
            if definition.name in self.definitions:
                first = self.definitions[definition.name].span.line
                raise self.error(
                    NameResolutionError,
                    f"{quoted(definition.name)} is defined twice (first on line {first})",
                    definition.span,
                )
            self.definitions[definition.name] = definition
        self.scans = {name: scan(d.value) for name, d in self.definitions.items()}
        self.result_scan = scan(program.result)
        self.index_compares = self._index_compares(free_indices)

    def _index_compares(self, free_indices: bool) -> list[A.Compare]:
        """The comparisons ``k == k2`` of two names where one is an index (with ``free_indices``,
        also two names used nowhere else: a printed derivative's -(k == k2)): both names are
        then indices of their scan (no longer plain-name uses); in source order."""
        known = {d.index for d in self.program.declarations}
        known |= {i.name for d in self.program.definitions for i in d.indices}
        known |= {name for found in self.all_scans() for name in found.index_names}
        compared = {
            id(side) for found in self.all_scans() for c in found.compares for side in (c.left, c.right)
        }
        plain = {use.name for found in self.all_scans() for use in found.uses if id(use) not in compared}
        compares = []
        for found in self.all_scans():
            chosen = [
                c
                for c in found.compares
                if c.left.name in known
                or c.right.name in known
                or (free_indices and c.left.name not in plain and c.right.name not in plain)
            ]
            if not chosen:
                continue
            names = {id(c.left) for c in chosen} | {id(c.right) for c in chosen}
            found.uses[:] = [use for use in found.uses if id(use) not in names]
            for compare in chosen:
                for side in (compare.left, compare.right):
                    found.index_names.setdefault(side.name, side.span)
            still = {use.name for use in found.uses}
            for name in [n for n in found.names if n not in still and n in found.index_names]:
                del found.names[name]
            compares += chosen
        return sorted(compares, key=lambda c: (c.span.line, c.span.column))

    def error(self, cls, message: str, span: A.Span) -> ExprgradError:
        return cls(message, source=self.source, line=span.line, column=span.column, width=span.width)

    def all_scans(self) -> list[Scan]:
        return [self.result_scan, *self.scans.values()]

    def check_look_alikes(self, columns: Collection[str] | None) -> None:
        """Refuse two different names that are one name after compatibility folding.

        ﬁ and fi, or the fullwidth ｘ and x, are different names here (the
        text is only put in NFC), but they look alike, and Python folds them
        into one (NFKC) in generated source: a program must not use both,
        nor a name that looks like a data column it is not.
        """
        used: dict[str, A.Span] = {}
        for definition in self.program.definitions:
            used.setdefault(definition.name, definition.span)
        for scan in self.all_scans():
            for name, span in scan.names.items():
                used.setdefault(name, span)
        columns = [c for c in columns or () if c not in used]
        if all(name.isascii() for name in [*used, *columns]):
            return  # ASCII is its own compatibility form
        seen = {unicodedata.normalize("NFKC", c): c for c in columns}
        for name, span in sorted(used.items(), key=lambda item: (item[1].line, item[1].column)):
            other = seen.setdefault(unicodedata.normalize("NFKC", name), name)
            if other != name:
                kind = "the data column" if other in columns else "the name"
                message = (
                    f"{quoted(name)} and {kind} {quoted(other)} are different names that look alike "
                    "(the same after Unicode compatibility folding, NFKC); write one spelling"
                )
                raise self.error(NameResolutionError, message, span)

    def check_indices(self) -> None:
        """Refuse an index name that is also a name of the program (a parameter, column, definition)."""
        indices: dict[str, A.Span] = {}
        for declaration in self.program.declarations:
            indices.setdefault(declaration.index, declaration.index_span)
        for definition in self.program.definitions:
            for i in definition.indices:
                indices.setdefault(i.name, i.span)
        for scan in self.all_scans():
            for name, span in scan.index_names.items():
                indices.setdefault(name, span)
        for name, span in indices.items():
            if _builtin(name):
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is {_builtin(name)}, so it cannot name an index; rename the index",
                    span,
                )
        if not indices:
            return
        for definition in self.program.definitions:
            if definition.name in indices:
                raise self.error(
                    NameResolutionError,
                    f"{quoted(definition.name)} is an index and also defined as a name; rename one of them",
                    definition.span,
                )
        for scan in self.all_scans():
            for use in scan.uses:
                if use.name in indices:
                    raise self.error(
                        NameResolutionError,
                        f"{quoted(use.name)} is an index (line {indices[use.name].line}) and is also used as a "
                        "name (a parameter or column) here; rename one of them",
                        use.span,
                    )
            for use in scan.family_uses:
                if use.name in indices:
                    raise self.error(
                        NameResolutionError,
                        f"{quoted(use.name)} is an index and also the name of a family; rename one of them",
                        use.span,
                    )

    def _plain_and_family(self, name: str, span: A.Span) -> ExprgradError:
        return self.error(
            NameResolutionError,
            f"{quoted(name)} is used both as a plain name and as a family ({quoted(name + '[...]')}); "
            "rename one of them",
            span,
        )

    def check_families(self) -> None:
        plain: dict[str, A.Span] = {}
        indexed: dict[str, A.Span] = {}
        for scan in self.all_scans():
            for name, span in scan.names.items():
                if "[" not in name:
                    plain.setdefault(name, span)
            for name, span in scan.indexed.items():
                indexed.setdefault(name, span)
        for definition in self.program.definitions:
            if not definition.indices:
                continue
            for scan in self.all_scans():
                for use in scan.uses:
                    if use.name == definition.name:
                        written = f"{definition.name}[{','.join(i.name for i in definition.indices)}]"
                        raise self.error(
                            NameResolutionError,
                            f"{quoted(definition.name)} is a family defined by index ({written} = ...): "
                            f"use it with an index, as in {written}",
                            use.span,
                        )
        families: dict[str, A.Span] = {}
        for scan in self.all_scans():
            for use in scan.family_uses:
                families.setdefault(use.name, use.span)
        for name, span in families.items():  # a member pi[0] is a name of its own, as it always was
            if _builtin(name):
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is {_builtin(name)}, so it cannot name a family; rename the family",
                    span,
                )
        for name, span in families.items():
            if name in plain:
                raise self._plain_and_family(name, plain[name])
            if name in self.definitions and not self.definitions[name].indices:
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is a definition without an index, so {quoted(name + '[...]')} means nothing; "
                    f"define it by index ({name}[k] = ...) to use it with one",
                    span,
                )
        for name, span in indexed.items():
            if name in self.definitions and self.definitions[name].indices:
                d = self.definitions[name]
                written = f"{name}[{','.join(i.name for i in d.indices)}]"
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name + '[...]')} with a number selects a member of {quoted(written)}, a family "
                    "defined by index: selecting a member of a defined family is not supported; "
                    f"use it with an index ({written}) inside a reduction",
                    span,
                )
            if name in families:
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is a family ({quoted(name + '[...]')} with an index) and is also used with "
                    "a number here: selecting a member of a family by its label is not supported; "
                    "use the family with an index, or rename the member",
                    span,
                )
            if name in self.definitions:
                raise self.error(
                    NameResolutionError,
                    f"{quoted(name)} is a definition, so {quoted(name + '[...]')} means nothing; "
                    "only parameter families take an index",
                    span,
                )
            if name in plain:
                raise self._plain_and_family(name, plain[name])

    def definition_order(self) -> list[str]:
        """Definitions ordered so each comes after those it uses; cycles are errors."""
        uses = {
            name: [n for n in (*scan.uses, *scan.family_uses) if n.name in self.definitions]
            for name, scan in self.scans.items()
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
                        cycle = path[path.index(used.name) :] + [used.name]
                        if len(cycle) == 2:
                            message = f"the definition of {quoted(used.name)} refers to itself"
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
