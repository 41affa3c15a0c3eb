"""Hypothesis strategies for the property tests: one generator of random expressions, and points.

In: the operator registry (``ops.OPS``). Out: ``random_expressions(...)``, the
one generator, draws expressions over the registry entries a caller allows,
with the leaves it names (parameters, data columns, constants), to a depth,
with or without definitions (``t1 = ...; θ2 = ...; result``), and gives

- ``output="graph"``: the graph node, built with ``build.call`` (simplify,
  printing, LaTeX, Python source);
- ``output="text"``: surface text, every operation in its own parentheses, or
  with ``spelling="any"`` in every spelling the grammar allows (spaces, line
  breaks and comments inside brackets, ``**``, unary plus, number forms,
  subscripts, parentheses dropped): text for the parser, whose meaning is
  then no longer the tree's;
- ``output="drawn"``: the ``Drawn`` record: the tree, its text and its graph
  (for an evaluator that walks the tree itself).

Its choices come from hypothesis, or from a numpy generator (``seeded_graphs``:
graphs from a seed, an even spread of sizes and nestings, also usable outside
hypothesis). The module-level strategies (``expressions``, ``programs``,
``family_programs``) are parametrizations of it; ``points`` and ``numbers``
draw where to evaluate, ``mutated`` breaks drawn text.

Must not: import a test module, or build expressions with exprgrad's own
parser or printer (what they build is what those are checked against).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from exprgrad import build, graph, ops
from exprgrad.graph import Node

a, b, c = graph.var("a"), graph.var("b"), graph.var("c")
x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
PARAMS = [a, b, c]
COLUMNS = [x, y]
CONSTANTS = [build.const(v) for v in (0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.5, 0.1)] + [build.named_const("pi")]
COMPARISONS = frozenset(name for name, spec in ops.OPS.items() if spec.boolean)
# Orders (polygamma's n) are whole numbers written as numbers.
ORDERS = (0.0, 1.0, 2.0)
# Names of definitions, in order: the first definition is t1, the second θ2, ...
DEFINED = ("t1", "θ2", "_h3")
# With index families (text only): indices, members and families defined by index,
# among them 'in' and 'sum', which are names (the grammar has no keywords).
INDICES = ("j", "k", "i2", "ñ", "in")
MEMBERS = tuple(graph.var(n) for n in ("w[j]", "W[k,j]", "θ[0]", "in[012]", "sum[j,3]", "w[007]", "x[in]"))
DEFINED_FAMILIES = ("h[k]", "θ2", "g[j,in]")
INDEXED_REDUCTIONS = ("sum", "mean", "logsumexp")

# ---------------------------------------------------------------- the tree


class Op(NamedTuple):
    """``name(*args)``: a registry entry, or a free call (a name the registry does not know)."""

    name: str
    args: tuple


class Ref(NamedTuple):
    """A definition's name, used after it is defined."""

    name: str


Tree = Node | Op | Ref  # a Node is a leaf: a variable or a constant


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What a caller needs drawn; ``random_expressions`` documents the fields."""

    allowed_ops: Sequence[str] | None = None
    leaves: Sequence[Node] | None = None
    reductions: bool = True
    comparisons: bool = True
    depth: int = 4
    leaf_chance: float = 0.2
    reduction_share: float = 0.1
    combining_share: float = 0.35
    wrappers: Mapping[str, Sequence[Callable[[Node], Node]]] | None = None
    definitions: int = 0
    free_calls: Sequence[str] = ()
    spelling: str = "plain"
    families: bool = False

    def __post_init__(self):
        unknown = [n for n in self.allowed_ops or () if n not in ops.OPS]
        if unknown:
            raise ValueError(
                f"not registry entries: {unknown} (free_calls: calls the registry does not know)"
            )
        if not 0 <= self.definitions <= len(DEFINED):
            raise ValueError(f"definitions: at most {len(DEFINED)}")
        if self.spelling not in ("plain", "any"):
            raise ValueError(f"spelling: 'plain' or 'any', not {self.spelling!r}")

    def _drawn(self, reduction: bool) -> tuple[str, ...]:
        names = sorted(ops.OPS) if self.allowed_ops is None else self.allowed_ops
        keep = [n for n in names if self.comparisons or n not in COMPARISONS]
        return tuple(n for n in keep if ops.OPS[n].reduction == reduction)

    @property
    def functions(self) -> tuple[str, ...]:
        return self._drawn(reduction=False)

    @property
    def reductions_drawn(self) -> tuple[str, ...]:
        return self._drawn(reduction=True) if self.reductions else ()

    @property
    def combining(self) -> tuple[str, ...]:
        return tuple(n for n in self.functions if ops.OPS[n].arity != 1)

    @property
    def leaves_drawn(self) -> tuple[Node, ...]:
        return tuple(PARAMS + COLUMNS + CONSTANTS if self.leaves is None else self.leaves)


@dataclasses.dataclass(frozen=True)
class Drawn:
    """One drawn expression: its definitions, its result, its text."""

    definitions: tuple[tuple[str, Tree], ...]
    result: Tree
    text: str
    recipe: Recipe = dataclasses.field(repr=False)

    def graph(self) -> Node:
        """The graph: definitions inlined, ``wrappers`` around each input, built with ``build.call``."""
        defined: dict[str, Node] = {}
        for name, tree in self.definitions:
            defined[name] = _graph(tree, defined, self.recipe.wrappers)
        return _graph(self.result, defined, self.recipe.wrappers)


def random_expressions(*, output: str = "graph", **options) -> st.SearchStrategy:
    """The one generator of random expressions, drawn by hypothesis.

    Args:
        output: "graph" (a Node), "text" (a str) or "drawn" (a ``Drawn``).
        allowed_ops: the registry entries drawn (default: all of them);
            ``reductions`` and ``comparisons`` false drop those among them.
        leaves: the variables and constants drawn as leaves (default: a, b,
            c, columns x, y and a few constants, pi among them).
        depth: the deepest nesting; ``leaf_chance``: the chance that a node
            below the top is a leaf before that depth.
        reduction_share, combining_share: of the other nodes, the share that
            are reductions, and that combine several operands (the rest are
            any entry; without them most expressions are chains).
        wrappers: ``wrappers[name]`` lists one function per input (the last
            repeats) that puts any value into ``name``'s domain (graph only).
        definitions: at most this many definitions before the result; later
            ones and the result use the earlier ones.
        free_calls: names outside the registry, called with 0 to 3 arguments
            (text only: the parser does not know arities).
        spelling: "plain" or "any" (see the module docstring).
        families: index families too (text only): declarations (k in 1:16),
            members (w[j], W[k,j]) among the leaves, reductions over indices
            (sum[j](e)) among the reductions, definitions by index (h[k] = e).
    """
    made = Recipe(**options)
    if output not in ("graph", "text", "drawn"):
        raise ValueError(f"output: 'graph', 'text' or 'drawn', not {output!r}")
    if output == "graph" and (made.free_calls or made.families):
        raise ValueError("free calls and index families have no graph")

    @st.composite
    def drawn(draw):
        one = generate(_Hypothesis(draw), made)
        return one.graph() if output == "graph" else one.text if output == "text" else one

    return drawn()


def seeded_graphs(*, leaves, functions, wrappers=None, reductions: bool = True):
    """``build(rng, depth=4)``: a random graph drawn by ``random_expressions``' generator from ``rng``.

    As diff's checks draw them: leaves, below the top, 15% of the time; a
    quarter of the other nodes reductions; of the rest, half combining.
    """
    reduction_names = [n for n, spec in ops.OPS.items() if spec.reduction]
    made = Recipe(
        allowed_ops=list(functions) + reduction_names,
        leaves=leaves,
        reductions=reductions,
        leaf_chance=0.15,
        reduction_share=0.25,
        combining_share=0.35,
        wrappers=wrappers,
    )

    def build(rng, depth=4):
        return generate(_Numpy(rng), dataclasses.replace(made, depth=depth)).graph()

    return build


def draw_from(rng, **options) -> Drawn:
    """One expression drawn from a numpy generator ``rng`` (``random_expressions`` documents ``options``)."""
    return generate(_Numpy(rng), Recipe(**options))


# ---------------------------------------------------------------- choices


class _Choices:
    def pick(self, items):
        return items[self.below(len(items))]


class _Hypothesis(_Choices):
    def __init__(self, draw):
        self._draw = draw

    def below(self, n: int) -> int:
        return self._draw(st.integers(0, n - 1))

    def fraction(self) -> float:
        return self._draw(st.integers(0, 999)) / 1000  # shrinks to 0: to leaves


class _Numpy(_Choices):
    def __init__(self, rng):
        self._rng = rng

    def below(self, n: int) -> int:
        return int(self._rng.integers(n))

    def fraction(self) -> float:
        return float(self._rng.random())


# ---------------------------------------------------------------- the generator


def generate(choose, made: Recipe) -> Drawn:
    """One expression: its definitions, its result and its text, from ``choose``'s choices."""
    writer = _Writer(choose, made.spelling)
    statements = []
    if made.families:
        for index in INDICES[: choose.below(3)]:
            first, last = sorted((choose.below(21), choose.below(21)))
            statements.append(f"{index} in{writer.space()} {first}{writer.space()}:{writer.space()}{last}")
    definitions: list[tuple[str, Tree]] = []
    for name in (DEFINED_FAMILIES if made.families else DEFINED)[: choose.below(made.definitions + 1)]:
        definitions.append((name, _tree(choose, made, made.depth, True, [n for n, _ in definitions])))
    result = _tree(choose, made, made.depth, True, [n for n, _ in definitions])
    statements += [
        f"{writer.name(name)}{writer.space()}={writer.space()}{writer.statement(t)}"
        for name, t in definitions
    ]
    statements.append(writer.statement(result))
    return Drawn(tuple(definitions), result, writer.program(statements), made)


def _tree(choose, made: Recipe, depth: int, top: bool, defined: list[str]) -> Tree:
    if depth == 0 or (not top and choose.fraction() < made.leaf_chance):
        return choose.pick(
            made.leaves_drawn + (MEMBERS if made.families else ()) + tuple(Ref(n) for n in defined)
        )
    kind = choose.fraction()
    if kind < made.reduction_share and made.reductions_drawn:
        name = choose.pick(made.reductions_drawn)
        if made.families and choose.below(2):  # over one or two indices: sum[j](e), logsumexp[j,k](e)
            start, count = choose.below(len(INDICES)), 1 + choose.below(2)
            name = f"{choose.pick(INDEXED_REDUCTIONS)}[{','.join(INDICES[start : start + count])}]"
        return Op(name, (_tree(choose, made, depth - 1, False, defined),))
    if kind < made.reduction_share + made.combining_share and made.combining:
        name = choose.pick(made.combining)
    else:
        name = choose.pick(made.functions + tuple(made.free_calls))
    spec = ops.OPS.get(name)
    if spec is None:
        count, orders = choose.below(4), ()
    else:
        count = 2 + choose.below(2) if spec.arity == ops.VARIADIC else spec.arity
        orders = spec.orders
    args = tuple(
        build.const(choose.pick(ORDERS)) if i in orders else _tree(choose, made, depth - 1, False, defined)
        for i in range(count)
    )
    return Op(name, args)


def _graph(tree: Tree, defined: Mapping[str, Node], wrappers) -> Node:
    if isinstance(tree, Node):
        return tree
    if isinstance(tree, Ref):
        return defined[tree.name]
    spec = ops.OPS[tree.name]
    domain = (wrappers or {}).get(tree.name)
    args = []
    for i, arg in enumerate(tree.args):
        node = _graph(arg, defined, wrappers)
        if domain is not None and i not in spec.orders:
            node = domain[min(i, len(domain) - 1)](node)
        args.append(node)
    return build.call(tree.name, *args)


# ---------------------------------------------------------------- text


class _Writer:
    """Surface text of a tree: plain (every operation in parentheses) or in any spelling."""

    def __init__(self, choose, spelling: str):
        self.choose = choose
        self.any = spelling == "any"

    def _one_of(self, plain: str, others: Sequence[str]) -> str:
        return self.choose.pick([plain, *others]) if self.any else plain

    def space(self) -> str:
        return self._one_of(" ", ["", "  ", "\t"])

    def gap(self) -> str:
        """Inside brackets: a line break or a comment continues the statement."""
        return self._one_of("", ["", "\n", " # note\n"])

    def program(self, statements: list[str]) -> str:
        if not self.any:
            return "; ".join(statements)
        separators = [
            self.choose.pick([";", "\n", " # a comment\n", "; ", "\n\n", "\r\n", ";;"]) for _ in statements
        ]
        body = "".join(s + sep for s, sep in zip(statements[:-1], separators))
        head = self.choose.pick(["", "\n", "# model\n"])
        return head + body + statements[-1] + self.choose.pick(["", "\n", ";", " # end"])

    def statement(self, tree: Tree) -> str:
        return self.write(tree, parent="statement")

    def _parenthesized(self, text: str, needed: bool) -> str:
        if self.any and not needed and self.choose.below(2):
            return text
        return f"({self.gap()}{text}{self.gap()})"

    def _signed(self, text: str) -> str:
        return self._one_of("", ["", "", "+"]) + text  # a unary plus vanishes

    def name(self, name: str) -> str:
        """A name, and what its brackets hold (w[j], W[k,j], theta[0])."""
        base, bracket, inside = name.partition("[")
        if not (bracket and self.any):
            return name
        comma = self._one_of(",", [", ", ",\n"])
        return f"{base}[{self.space()}{comma.join(inside[:-1].split(','))}{self.gap()}]"

    def write(self, tree: Tree, parent: str) -> str:
        if isinstance(tree, Ref):
            return self.name(tree.name)
        if isinstance(tree, Node):
            return self._leaf(tree)
        spec = ops.OPS.get(tree.name)
        if spec is None or spec.notation == "call":
            comma = self._one_of(", ", [",", ",\n"])
            args = comma.join(self._signed(self.write(t, "call")) for t in tree.args)
            return f"{self.name(tree.name)}({self.gap()}{args})"
        if spec.notation == "prefix":
            text = self._one_of(spec.text, ["- "]) + self.write(tree.args[0], "operand")
            return self._parenthesized(text, needed=False)
        symbol = "**" if self.any and spec.text == "^" and self.choose.below(2) else spec.text
        between = f"{self.space()}{symbol}{self.space()}"
        text = between.join(self._signed(self.write(t, "operand")) for t in tree.args)
        # a < b < c is an error: a comparison keeps its parentheses inside an operation.
        return self._parenthesized(text, needed=spec.boolean and parent == "operand")

    def _leaf(self, node: Node) -> str:
        if node.is_var:
            return self.name(node.name)
        if node.name:  # pi, e
            return node.name
        value = node.value
        text = self._number(abs(value))
        return self._parenthesized(f"-{text}", needed=False) if value < 0 else text

    def _number(self, value: float) -> str:
        spellings = [f"{value:e}", f"{value:E}"]  # 2.500000e+00, 1.000000E-01
        if value.is_integer():
            spellings += [str(int(value)), f"{int(value)}.", f"00{int(value)}"]
        elif 0 < value < 1:
            spellings.append(repr(value)[1:])  # .5
        return self._one_of(repr(value), spellings)


# ---------------------------------------------------------------- parametrizations and points

expressions = random_expressions()
# Surface text in every spelling the grammar allows, for the parser.
programs = random_expressions(
    output="text",
    leaves=[graph.var(n) for n in ("a", "x1", "θ", "_b", "Größe", "theta", "theta[0]", "w[12]")] + CONSTANTS,
    depth=3,
    leaf_chance=0.4,
    definitions=3,
    free_calls=("f",),
    spelling="any",
)


# The same with index families: declarations, members, reductions over indices, definitions by index.
family_programs = random_expressions(
    output="text",
    leaves=[graph.var(n) for n in ("a", "x1", "θ", "_b")] + CONSTANTS,
    depth=3,
    leaf_chance=0.4,
    reduction_share=0.3,
    definitions=3,
    free_calls=("dot", "f"),
    spelling="any",
    families=True,
)


@st.composite
def mutated(draw, texts, alphabet="()[],;=+-*/^<>!.$²e0 \n"):
    """Text drawn from ``texts`` with one or two characters of ``alphabet`` inserted, deleted or replaced."""
    text = draw(texts)
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(text)))
        extra = draw(st.sampled_from(list(alphabet)))
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        if how == "insert":
            text = text[:at] + extra + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + extra + text[at + 1 :]
    return text


def mutated_programs():
    return mutated(programs)


# Values away from subnormals, where x^2 keeps no precision and no formula is defined in practice.
numbers = st.floats(-2.5, 2.5).map(lambda v: 0.0 if abs(v) < 1e-3 else v)
# ((a, b, c), ten numbers: x is the first five rows, y the last five), as helpers.values_agree reads it.
points = st.tuples(
    st.lists(numbers, min_size=3, max_size=3),
    st.lists(numbers, min_size=10, max_size=10),
)


@st.composite
def seeded_cases(draw, build, depth=5, params="abc", columns="xz"):
    """(output, params, columns): a graph from ``build(rng, depth)`` and a point to evaluate it at (3 rows)."""
    value = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 3))
    point = {name: draw(value) for name in params}
    rows = {name: np.array(draw(st.lists(value, min_size=3, max_size=3))) for name in columns}
    # The graph is drawn from a seed mixed with the point: an even spread of
    # sizes and nestings (hypothesis's own choices favour tiny graphs, and
    # it repeats small seeds); a failure prints the graph itself.
    entropy = [draw(st.integers(0, 2**32 - 1)), *(int(1000 * v) % 2**32 for v in point.values())]
    output = build(np.random.default_rng(entropy), depth)
    return output, point, rows
