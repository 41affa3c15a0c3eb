"""The source of the compiled backend's kernels for graphs with index families.

In: an indexed numpy ``Schedule`` (its passes planned by ``indexed.plan_pass``).
Out: ``FamilyPlan``: the text of a Python module holding one numba function
per pass and, per pass, what its arguments are (``FamilyPassArguments``).
A pass function runs a range of ``BLOCK_ROWS``-row blocks. In a block every
per-row node the pass stores is an array over its labels and the block's
rows (rows last, so the loop over them runs on vectors), computed by one
loop nest: an elementwise node from its operands' values at the same labels;
a sum or mean over an index (of a product: a contraction, never forming the
product) accumulated label by label of that index. A node read once, by an
elementwise node over the same indices, is not stored: its expression is
written into its reader's. Each row reduction's block sums are numpy's
pairwise sums of the block's values, one per label (the caller adds them
exactly, as the numpy backend adds its own); per-row outputs are written to
their rows. The sizes of the indices are arguments, so one kernel serves a
model of any width. Each op's number is ``kernel_source``'s (one operator
table for both kernel generators).
``unsupported(schedule)`` says what this backend cannot run yet.
Must not: import numba (the generated module does), run anything.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import ops
from ..graph import ROWS, Node
from ..kernels import BLOCK_ROWS
from . import indexed, kernel_source

_OVER_INDEX = (ops.SUM, ops.MEAN)


@dataclass
class FamilyPassArguments:
    """What one pass function reads and writes, in its arguments' order."""

    families: list[Node]  # data families d0, d1, ...: a tuple of columns each (or labels x rows)
    columns: list[Node]  # data columns c0, c1, ...
    arrays: list[Node]  # parameter families and other values with indices p0, p1, ...
    scalars: list[Node]  # numbers, the array s: s[0], s[1], ...
    indices: list  # the indices whose sizes the array ``sizes`` holds, in its order
    reductions: list[Node]  # row reductions r0, r1, ...: labels x blocks arrays of block sums
    outputs: list[tuple[int, Node]]  # per-row outputs o0, o1, ...: (output position, node)


@dataclass
class FamilyPlan:
    """A generated module's text and each pass's arguments (pass_1 first)."""

    source: str
    passes: list[FamilyPassArguments] = field(default_factory=list)


def unsupported(schedule) -> str | None:
    """What the compiled backend cannot run in the indexed ``schedule`` yet (None: it runs all of it)."""
    for plan in schedule.passes:
        for node in plan.nodes:
            if node.is_var:
                if len(node.var_axes) > 1:
                    return "data families with more than one label index"
            elif indexed.factors(node) is not None:
                continue
            elif node.axis is not None:
                if node.op not in _OVER_INDEX:
                    name = "logsumexp" if node.op is ops.LSE else node.op.text
                    return f"{name}[{node.axis.name}]"
                if node.axis not in node.inputs[0].indices:
                    return f"{node.op.text}[{node.axis.name}] of a value without {node.axis.name}"
            elif node.op not in kernel_source.EXPRESSIONS and node.op is not ops.POW:
                return f"{node.op.text}()" if node.op.notation == "call" else f"'{node.op.text}'"
        for r in plan.reductions:
            if r.op not in _OVER_INDEX:
                return f"{r.op.text}() over the rows"
    return None


def kernel_plan(schedule) -> FamilyPlan:
    """The module of ``schedule``'s passes (``unsupported(schedule)`` must be None)."""
    parts = [kernel_source.PRELUDE]
    plan = FamilyPlan(source="")
    for number, numpy_pass in enumerate(schedule.passes, start=1):
        writer = _PassWriter(numpy_pass)
        parts.append(writer.source(number))
        plan.passes.append(writer.arguments)
    plan.source = "\n\n".join(parts)
    return plan


def _labels(indices) -> list:
    return [i for i in indices if i is not ROWS]


class _PassWriter:
    """The text of one pass function: its arguments named, its nodes stored or written inline."""

    def __init__(self, plan: indexed.Pass):
        self.plan = plan
        self.matrices: list[str] = []  # parameter matrices made C-contiguous once, before the blocks
        # The labels of each scratch block array u0, u1, ... a matrix product multiplies out.
        self.scratch: list[list] = []
        nodes = plan.nodes
        self.arguments = FamilyPassArguments([], [], [], [], [], list(plan.reductions), list(plan.outputs))
        # A row sum of a product the pass computes anyway (a factor of a matrix product too)
        # adds up that node's block array: its factors are not multiplied again.
        computed = {n for n in nodes if n.inputs}
        self.summed_whole = {r for r in plan.reductions if r.inputs[0] in computed}
        kept = {n for _, n in plan.outputs}
        for r in plan.reductions:
            kept.update(r.inputs if r in self.summed_whole else indexed.operands(r))
        readers: dict[Node, list[Node]] = {}
        for node in nodes:
            for i in indexed.operands(node):
                readers.setdefault(i, []).append(node)
        # Stored: every computed node but one read once, by an elementwise node over the same indices.
        self.inline = {
            node
            for node in nodes
            if node.inputs
            and self._elementwise(node)
            and node not in kept
            and len(readers.get(node, ())) == 1
            and self._elementwise(readers[node][0])
            and readers[node][0].indices == node.indices
        }
        stored = [n for n in nodes if n.inputs and n not in self.inline]
        # Slots: a stored node's array is given to a later node over the same indices once no one reads it.
        last_read = {}
        for position, node in enumerate(stored):
            for i in self._reads(node):
                last_read[i] = position
        self.slot: dict[Node, int] = {}
        self.slot_labels: list[list] = []
        free: dict[tuple, list[int]] = {}
        for position, node in enumerate(stored):
            shape = tuple(_labels(node.indices))
            if free.get(shape):
                self.slot[node] = free[shape].pop()
            else:
                self.slot[node] = len(self.slot_labels)
                self.slot_labels.append(list(shape))
            for i in self._reads(node):
                if i in self.slot and i not in kept and last_read.get(i) == position:
                    free.setdefault(tuple(_labels(i.indices)), []).append(self.slot[i])
        self.stored = stored
        for node in nodes:
            for i in indexed.operands(node):
                self._name(i)
        for r in plan.reductions:
            for i in list(_labels(r.indices)) + [f for f in indexed.operands(r)]:
                self._name(i)
        for _, node in plan.outputs:
            self._name(node)

    # ------------------------------------------------------------ names

    @staticmethod
    def _elementwise(node: Node) -> bool:
        return bool(node.inputs) and node.axis is None

    def _reads(self, node: Node) -> list[Node]:
        """The stored nodes ``node``'s loop reads (through the expressions written inline)."""
        found = []
        for i in indexed.operands(node):
            found.extend(self._reads(i) if i in self.inline else [i])
        return found

    def _name(self, item) -> None:
        """Give a leaf, a value from outside the rows or an index its argument."""
        arguments = self.arguments
        if not isinstance(item, Node):
            if item not in arguments.indices:
                arguments.indices.append(item)
            return
        for i in _labels(item.indices):
            self._name(i)
        if item.is_const or (item.per_row and item.inputs):
            return
        if item.per_row:
            bucket = arguments.families if item.var_axes else arguments.columns
        else:
            bucket = arguments.arrays if item.indices else arguments.scalars
        if item not in bucket:
            bucket.append(item)

    def _loop(self, index) -> str:
        return f"l{self.arguments.indices.index(index)}"

    def _size(self, index) -> str:
        return f"n{self.arguments.indices.index(index)}"

    def _at(self, node: Node) -> str:
        return ", ".join(self._loop(i) for i in _labels(node.indices))

    def access(self, node: Node, hoists: dict) -> str:
        """The value of ``node`` at the loop's labels and row ``i`` of the block."""
        arguments = self.arguments
        if node.is_const:
            return kernel_source._literal(node.value)
        if not node.per_row:
            if node.indices:  # read once before the loop over the rows
                q = arguments.arrays.index(node)
                hoists[f"a{q}"] = f"p{q}[{self._at(node)}]"
                return f"a{q}"
            return f"s{arguments.scalars.index(node)}"
        if node in self.inline:
            return self.expression(node, hoists)
        if not node.inputs:
            if node.var_axes:
                return f"g{arguments.families.index(node)}[{self._at(node)}, i]"
            return f"w{arguments.columns.index(node)}[i]"
        at = self._at(node)
        return f"t{self.slot[node]}[{at + ', ' if at else ''}i]"

    def expression(self, node: Node, hoists: dict) -> str:
        args = [self.access(i, hoists) for i in node.inputs]
        return kernel_source._expression(node, args, kernel_source.VECTOR_EXPRESSIONS)

    def block_of(self, node: Node, hoists: dict) -> tuple[str, str]:
        """A 1-d array holding ``node``'s block values at the loop's labels, and where they start in it."""
        arguments = self.arguments
        if node.inputs:
            at = self._at(node)
            return (f"t{self.slot[node]}[{at}]" if at else f"t{self.slot[node]}"), "0"
        if node.var_axes:
            return f"g{arguments.families.index(node)}[{self._at(node)}]", "0"
        return f"c{arguments.columns.index(node)}", "start"

    def block_array(self, node: Node) -> str | None:
        """The name of the array holding ``node``'s values of the block (labels x rows), if it has one."""
        if node in self.slot:
            return f"t{self.slot[node]}"
        if node.is_var and node.per_row and node.var_axes:
            return f"g{self.arguments.families.index(node)}"
        return None

    def matrix_product(self, node: Node, target: str) -> list[str] | None:
        """A whole block's contraction as one matrix product (BLAS), where its shape is one.

        A sum over index a of a block array over a times a value without rows
        over a (and at most one kept index), or a row sum of a product
        (``row_product``): the products the numpy backend runs as matmul too.
        """
        found = indexed.factors(node)
        if found is None or len(found) < 2:
            return None
        rows = [f for f in found if f.per_row]
        kept = _labels(node.indices)
        if node.axis is not ROWS:
            other = next((f for f in found if not f.per_row), None)
            if len(found) != 2 or len(rows) != 1 or other is None or self.block_array(rows[0]) is None:
                return None
            if _labels(rows[0].indices) != [node.axis] or len(kept) > 1:
                return None
            q = self.arguments.arrays.index(other)
            matrix = f"p{q}" if other.indices[-1] is node.axis else f"p{q}.T"
            if matrix not in self.matrices:
                self.matrices.append(matrix)
            return [f"np.dot(m{self.matrices.index(matrix)}, {self.block_array(rows[0])}, {target})"]
        return self.row_product(found, kept, target)

    def row_product(self, found: list[Node], kept: list, target: str) -> list[str] | None:
        """A row sum of a product of factors as one matrix product of two block arrays.

        The factors over one kept label a (and no other; one of them per row) make
        the first array, labels a x rows; the rest, over the other kept label or none (parameters
        and per-row values alike), the second. The gradient of the network's first
        layer, sum(v[k]*x[j]*(1 - h[k]^2)*d), is x against v[k]*(1 - h[k]^2)*d.
        A side of more than one factor is first multiplied out into a scratch array.
        """
        if len(kept) not in (1, 2):
            return None
        for first_label in kept:
            first = [f for f in found if first_label in f.indices]
            if all(_labels(f.indices) == [first_label] for f in first) and any(f.per_row for f in first):
                break
        else:
            return None
        second = [f for f in found if first_label not in f.indices]
        second_labels = [i for i in kept if i is not first_label]
        if not second or not any(f.per_row for f in second):
            return None  # a row sum of one array, or of a family times a parameter: no matrix product
        if any(not set(_labels(f.indices)) <= set(second_labels) for f in second):
            return None
        lines: list[str] = []
        a = self._operand(first, [first_label], lines)
        b = self._operand(second, second_labels, lines)
        if not second_labels:
            return [*lines, f"{target} = np.dot({a}, {b})"]
        # The right operand transposed to rows x labels and contiguous: numba's BLAS call takes
        # a 50 x 1,024 by 1,024 x 16 product in 28 us so, 50 us from the transposed view.
        if kept[0] is first_label:
            return [*lines, f"{target} = np.dot({a}, np.ascontiguousarray({b}.T))"]
        return [*lines, f"{target} = np.dot({b}, np.ascontiguousarray({a}.T))"]

    def _operand(self, factors: list[Node], labels: list, lines: list[str]) -> str:
        """A block array of the product of ``factors`` over ``labels``: the factor's own, or a scratch
        array the lines added to ``lines`` fill."""
        if len(factors) == 1 and _labels(factors[0].indices) == labels:
            name = self.block_array(factors[0])
            if name is not None:
                return name
        name = f"u{len(self.scratch)}"
        self.scratch.append(labels)
        at = ", ".join(self._loop(i) for i in labels)
        target = f"{name}[{at + ', ' if at else ''}i]"

        def fill(indent, hoists):
            product = " * ".join(self.access(f, hoists) for f in factors)
            return self.rows(indent, f"{target} = {product}")

        lines += self.nest(labels, "", fill)
        return name

    # ------------------------------------------------------------ text

    def nest(self, indices: list, indent: str, body) -> list[str]:
        """Loops over ``indices`` (then the body's own lines: ``body(indent, hoists)``)."""
        lines = []
        for index in indices:
            lines.append(f"{indent}for {self._loop(index)} in range({self._size(index)}):")
            indent += "    "
        hoists: dict = {}
        inner = body(indent, hoists)
        return lines + [f"{indent}{name} = {text}" for name, text in hoists.items()] + inner

    def rows(self, indent: str, statement: str) -> list[str]:
        return [f"{indent}for i in range(m):", f"{indent}    {statement}"]

    def compute(self, node: Node, indent: str) -> list[str]:
        """The loop nest that stores ``node``'s block values."""
        kept = _labels(node.indices)
        at = self._at(node)
        target = f"t{self.slot[node]}[{at + ', ' if at else ''}i]"
        if self._elementwise(node):
            return self.nest(
                kept, indent, lambda ind, h: self.rows(ind, f"{target} = {self.expression(node, h)}")
            )
        found = indexed.factors(node)
        terms = list(found) if found is not None else [node.inputs[0]]
        product = self.matrix_product(node, f"t{self.slot[node]}")
        if product is not None:  # whole blocks; the last, part block by the loops
            lines = [f"{indent}if m == {BLOCK_ROWS}:"] + [f"{indent}    {line}" for line in product]
            lines.append(f"{indent}else:")
            indent += "    "
        else:
            lines = []
        lines += self.nest(kept, indent, lambda ind, h: self.rows(ind, f"{target} = 0.0"))
        # The index summed over is the outer loop: each of its labels adds one term to every kept label.
        lines.append(f"{indent}for {self._loop(node.axis)} in range({self._size(node.axis)}):")

        def add(ind, hoists):
            product = " * ".join(self.access(f, hoists) for f in terms)
            return self.rows(ind, f"{target} += {product}")

        lines += self.nest(kept, indent + "    ", add)
        if node.op is ops.MEAN:
            if product is not None:
                indent = indent[:-4]
            size = self._size(node.axis)
            lines += self.nest(kept, indent, lambda ind, h: self.rows(ind, f"{target} = {target} / {size}"))
        return lines

    def reduce(self, k: int, r: Node, indent: str) -> list[str]:
        """Row reduction ``r``'s block sums, one per label, into r{k}."""
        at = self._at(r)
        target = f"r{k}[{at + ', ' if at else ''}b]"
        found = None if r in self.summed_whole else indexed.factors(r)

        def block_sum(ind, hoists):
            if found is None:
                values, lo = self.block_of(r.inputs[0], hoists)
                return [f"{ind}{target} = _pairwise4({values}, {lo}, m)"]
            product = " * ".join(self.access(f, hoists) for f in found)
            return self.rows(ind, f"part[i] = {product}") + [f"{ind}{target} = _pairwise4(part, 0, m)"]

        at_block = f"r{k}[{', '.join([':'] * len(_labels(r.indices)) + ['b'])}]"
        product = self.matrix_product(r, at_block) if r.indices and found is not None else None
        if product is None:
            return self.nest(_labels(r.indices), indent, block_sum)
        lines = [f"{indent}if m == {BLOCK_ROWS}:"] + [f"{indent}    {line}" for line in product]
        return lines + [f"{indent}else:"] + self.nest(_labels(r.indices), indent + "    ", block_sum)

    def write_output(self, k: int, node: Node, indent: str) -> list[str]:
        at = self._at(node)
        target = f"ow{k}[i{', ' + at if at else ''}]"
        return self.nest(
            _labels(node.indices), indent, lambda ind, h: self.rows(ind, f"{target} = {self.access(node, h)}")
        )

    def source(self, number: int) -> str:
        arguments = self.arguments
        names = [f"d{q}" for q in range(len(arguments.families))]
        names += [f"c{q}" for q in range(len(arguments.columns))]
        names += [f"p{q}" for q in range(len(arguments.arrays))]
        names += ["s", "sizes", "n", "first", "last"]
        names += [f"r{q}" for q in range(len(arguments.reductions))]
        names += [f"o{q}" for q in range(len(arguments.outputs))]
        body: list[str] = []  # the loop over the blocks, first: it names the matrices made contiguous
        # A data family's rows of the block gathered into one array: labels x rows, as the stored nodes.
        for q, family in enumerate(arguments.families):
            loop = self._loop(family.var_axes[0])
            body += [
                f"        for {loop} in range({self._size(family.var_axes[0])}):",
                f"            column = d{q}[{loop}]",
                f"            row = g{q}[{loop}]",
                "            row[:m] = column[start : start + m]",
            ]
        for node in self.stored:
            body += self.compute(node, " " * 8)
        for k, r in enumerate(arguments.reductions):
            body += self.reduce(k, r, " " * 8)
        for k, (_, node) in enumerate(arguments.outputs):
            body += self.write_output(k, node, " " * 8)
        lines = ["@numba.njit(**_JIT)", f"def pass_{number}({', '.join(names)}):"]
        lines += [f"    s{q} = s[{q}]" for q in range(len(arguments.scalars))]
        lines += [f"    n{q} = sizes[{q}]" for q in range(len(arguments.indices))]
        for slot, labels in enumerate(self.slot_labels):
            shape = "".join(f"{self._size(i)}, " for i in labels)
            lines.append(f"    t{slot} = np.empty(({shape}{BLOCK_ROWS}))")
        for q, family in enumerate(arguments.families):
            lines.append(f"    g{q} = np.empty(({self._size(family.var_axes[0])}, {BLOCK_ROWS}))")
        lines += [f"    m{q} = np.ascontiguousarray({matrix})" for q, matrix in enumerate(self.matrices)]
        for q, labels in enumerate(self.scratch):
            shape = "".join(f"{self._size(i)}, " for i in labels)
            lines.append(f"    u{q} = np.empty(({shape}{BLOCK_ROWS}))")
        lines += [
            f"    part = np.empty({BLOCK_ROWS})",
            "    for b in range(first, last):",
            f"        start = b * {BLOCK_ROWS}",
            f"        m = min({BLOCK_ROWS}, n - start)",
        ]
        # The block's columns and outputs as views from 0: an index ``start + i`` the
        # compiler cannot prove positive keeps numba's wraparound test in the loop.
        lines += [f"        w{q} = c{q}[start : start + m]" for q in range(len(arguments.columns))]
        lines += [f"        ow{q} = o{q}[start : start + m]" for q in range(len(arguments.outputs))]
        lines += [*body, "    return 0"]
        return "\n".join(lines) + "\n"
