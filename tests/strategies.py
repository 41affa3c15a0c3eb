"""Hypothesis strategies for the property tests: random expressions and points.

In: the operator registry (``ops.OPS``). Out: random expressions in the
form each stage is checked in:

- ``graphs(...)``: graph nodes built with ``ops.call`` over registry entries
  (simplify, printing, LaTeX, Python source); ``expressions`` is its default.
- ``seeded_graphs(...)`` / ``seeded_cases(...)``: graphs drawn from a numpy
  generator seeded by hypothesis, with each op's inputs put into its domain
  and reductions nested anywhere (diff against finite differences).
- ``trees``: plain tuples an independent numpy evaluator and an independent
  text writer both read (parse + lower + evaluate end to end).
- ``programs`` / ``mutated_programs``: surface text in every spelling the
  grammar allows (spaces, line breaks, comments, subscripts), for the parser.

Must not: import a test module, or build expressions with exprgrad's own
parser or printer (what they build is what those are checked against).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from exprgrad import graph, ops

# ---------------------------------------------------------------- graphs

a, b, c = graph.var("a"), graph.var("b"), graph.var("c")
x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
PARAMS = [a, b, c]
COLUMNS = [x, y]
CONSTANTS = [ops.const(v) for v in (0.0, 1.0, 2.0, 3.0, 0.5, -1.0, -2.5, 0.1)] + [ops.named_const("pi")]
COMPARISONS = frozenset(
    name for name, spec in ops.OPS.items() if spec.text in ("<", "<=", ">", ">=", "==", "!=")
)


def graphs(*, leaves=None, reductions: bool = True, comparisons: bool = True, max_leaves: int = 14):
    """Graphs over every registry entry of arity 1, 2 and variadic.

    ``leaves`` (default: parameters a, b, c, columns x, y and a few constants)
    are the variables drawn; ``reductions`` and ``comparisons`` keep or drop
    those ops (a test whose stage has no rows, or no 0/1 values, drops them).
    """
    leaves = PARAMS + COLUMNS + CONSTANTS if leaves is None else list(leaves)

    def keep(name):
        spec = ops.OPS[name]
        return (reductions or not spec.reduction) and (comparisons or name not in COMPARISONS)

    unary = sorted(n for n, spec in ops.OPS.items() if spec.arity == 1 and keep(n))
    binary = sorted(n for n, spec in ops.OPS.items() if spec.arity == 2 and keep(n))
    variadic = sorted(n for n, spec in ops.OPS.items() if spec.arity == ops.VARIADIC and keep(n))

    def extend(children):
        return st.one_of(
            st.tuples(st.sampled_from(unary), children).map(lambda t: ops.call(t[0], t[1])),
            st.tuples(st.sampled_from(binary), children, children).map(lambda t: ops.call(t[0], t[1], t[2])),
            st.tuples(st.sampled_from(variadic), st.lists(children, min_size=2, max_size=3)).map(
                lambda t: ops.call(t[0], *t[1])
            ),
        )

    return st.recursive(st.sampled_from(leaves), extend, max_leaves=max_leaves)


expressions = graphs()
# Values away from subnormals, where x^2 keeps no precision and no formula is defined in practice.
numbers = st.floats(-2.5, 2.5).map(lambda v: 0.0 if abs(v) < 1e-3 else v)
# ((a, b, c), ten numbers: x is the first five rows, y the last five), as helpers.values_agree reads it.
points = st.tuples(
    st.lists(numbers, min_size=3, max_size=3),
    st.lists(numbers, min_size=10, max_size=10),
)

# ---------------------------------------------------------------- seeded graphs


def seeded_graphs(*, leaves, functions, wrappers=None, reductions: bool = True):
    """``build(rng, depth=4)``: a random graph over ``functions`` and the reductions, from ``rng``.

    ``leaves`` are drawn at depth 0 and, below the top, 15% of the time;
    a quarter of the other nodes are reductions (none when ``reductions`` is
    false); of the rest, half combine several operands (or most graphs would
    be chains). ``wrappers[name]`` lists one function per input (the last
    repeats) that puts any value into ``name``'s domain; by default none.
    """
    leaves = list(leaves)
    reduction_names = sorted(n for n, spec in ops.OPS.items() if spec.reduction) if reductions else []
    combining = [n for n in functions if ops.OPS[n].arity != 1]
    identity = [lambda u: u]

    def build(rng, depth=4, top=True):
        if depth == 0 or (not top and rng.random() < 0.15):
            return leaves[rng.integers(len(leaves))]
        kind = rng.random()
        if kind < 0.25 and reduction_names:
            name = reduction_names[rng.integers(len(reduction_names))]
            return ops.call(name, build(rng, depth - 1, top=False))
        names = combining if kind < 0.6 else functions
        name = names[rng.integers(len(names))]
        spec = ops.OPS[name]
        count = int(rng.integers(2, 4)) if spec.arity == ops.VARIADIC else spec.arity
        domain = wrappers[name] if wrappers is not None else identity
        args = [domain[min(i, len(domain) - 1)](build(rng, depth - 1, top=False)) for i in range(count)]
        return ops.call(name, *args)

    return build


@st.composite
def seeded_cases(draw, build, depth=5, params="abc", columns="xz"):
    """(output, params, columns): a graph from ``build(rng, depth)`` and a point to evaluate it at (3 rows)."""
    value = st.floats(-1.5, 1.5, allow_nan=False).map(lambda v: round(v, 3))
    point = {name: draw(value) for name in params}
    rows = {name: np.array(draw(st.lists(value, min_size=3, max_size=3))) for name in columns}
    # The graph is drawn from a seed mixed with the point: an even spread of
    # sizes and nestings (hypothesis's own recursion favours tiny graphs, and
    # it repeats small seeds); a failure prints the graph itself.
    entropy = [draw(st.integers(0, 2**32 - 1)), *(int(1000 * v) % 2**32 for v in point.values())]
    output = build(np.random.default_rng(entropy), depth)
    return output, point, rows


# ---------------------------------------------------------------- trees

TREE_INFIX = {
    "add": "+",
    "sub": "-",
    "mul": "*",
    "div": "/",
    "pow": "^",
    "gt": ">",
    "ge": ">=",
    "lt": "<",
    "le": "<=",
    "eq": "==",
    "ne": "!=",
}
# Orders (polygamma's n) are whole numbers written as numbers.
_ORDERS = st.sampled_from([0.0, 1.0, 2.0]).map(lambda v: ("num", v))
_TREE_FUNCTIONS = sorted(
    n for n, s in ops.OPS.items() if s.callable and not s.reduction and s.arity != ops.VARIADIC
)


def _with_orders(name, args, order):
    return [order if i in ops.OPS[name].orders else arg for i, arg in enumerate(args)]


def expression_trees(
    *, names=("a", "b", "x", "y"), comparisons: bool = True, reductions: bool = True, max_leaves=12
):
    """Tuples over ``names``, numbers, infix ops, functions, logsumexp, negation and (``reductions``) sum, mean.

    ("name", n) | ("num", v) | ("neg", t) | ("infix", op, t, t) | ("call", op, [t...]) | ("reduce", op, t)
    """
    infix = sorted(n for n in TREE_INFIX if comparisons or n not in COMPARISONS)
    leaves = st.one_of(
        st.sampled_from(list(names)).map(lambda n: ("name", n)),
        st.sampled_from([0.5, 1.0, 2.0, 3.0, 0.25]).map(lambda v: ("num", v)),
    )

    def extend(children):
        branches = [
            st.tuples(st.sampled_from(infix), children, children).map(lambda t: ("infix", *t)),
            st.tuples(
                st.sampled_from(_TREE_FUNCTIONS), st.lists(children, min_size=3, max_size=3), _ORDERS
            ).map(lambda t: ("call", t[0], _with_orders(t[0], t[1][: ops.OPS[t[0]].arity], t[2]))),
            st.lists(children, min_size=2, max_size=4).map(lambda t: ("call", "logsumexp", t)),
            children.map(lambda c: ("neg", c)),
        ]
        if reductions:
            branches.append(
                st.tuples(st.sampled_from(["sum", "mean"]), children).map(lambda t: ("reduce", *t))
            )
        return st.one_of(*branches)

    return st.recursive(leaves, extend, max_leaves=max_leaves)


trees = expression_trees()


def tree_text(tree) -> str:
    """The tree as surface text, every operation in its own parentheses."""
    kind = tree[0]
    if kind == "name":
        return tree[1]
    if kind == "num":
        return repr(tree[1])
    if kind == "neg":
        return f"(-{tree_text(tree[1])})"
    if kind == "infix":
        return f"({tree_text(tree[2])} {TREE_INFIX[tree[1]]} {tree_text(tree[3])})"
    if kind == "reduce":
        return f"{tree[1]}({tree_text(tree[2])})"
    return f"{tree[1]}({', '.join(tree_text(c) for c in tree[2])})"


# ---------------------------------------------------------------- programs (text)

_SPACE = st.sampled_from(["", " ", "  ", "\t"])
_NAMES = st.sampled_from(["a", "x1", "θ", "_b", "Größe", "theta"])
_NUMBERS = st.sampled_from(["2", "1.5", ".5", "5.", "1e3", "2.5E+4", "007", "0"])
_INFIX = st.sampled_from(["+", "-", "*", "/", "^", "**"])
_COMPARE = st.sampled_from(["<", "<=", ">", ">=", "==", "!="])
_FUNCTIONS = st.sampled_from(["sin", "where", "atan2", "mean", "f"])
_BREAK = st.sampled_from(["", "", "\n", " # note\n"])  # inside brackets: not a separator

_text_leaves = st.one_of(
    _NAMES,
    _NUMBERS,
    st.tuples(_NAMES, _SPACE, st.sampled_from(["0", "1", "12"]), _BREAK).map(
        lambda t: f"{t[0]}[{t[1]}{t[2]}{t[3]}]"
    ),
)


def _extend_text(children):
    return st.one_of(
        st.tuples(children, _SPACE, _INFIX, _SPACE, children).map("".join),
        # Parenthesized: a < b < c is an error, found by the mutations below.
        st.tuples(children, _SPACE, _COMPARE, _SPACE, children).map(lambda t: "(" + "".join(t) + ")"),
        st.tuples(st.sampled_from(["-", "+", "- "]), children).map("".join),
        st.tuples(_BREAK, children, _BREAK).map(lambda t: "(" + "".join(t) + ")"),
        st.tuples(
            _FUNCTIONS, _BREAK, st.lists(children, max_size=3), st.sampled_from([",", ", ", ",\n"])
        ).map(lambda t: f"{t[0]}({t[1]}{t[3].join(t[2])})"),
    )


texts = st.recursive(_text_leaves, _extend_text, max_leaves=10)
_statements = st.one_of(
    texts,
    st.tuples(texts, _SPACE, _COMPARE, _SPACE, texts).map("".join),
    st.tuples(_NAMES, _SPACE, _SPACE, texts).map(lambda t: f"{t[0]}{t[1]}={t[2]}{t[3]}"),
)
_SEPARATORS = st.sampled_from([";", "\n", " # a comment\n", "; ", "\n\n", "\r\n", ";;"])
programs = st.tuples(
    st.sampled_from(["", "\n", "# model\n"]),
    st.lists(st.tuples(_statements, _SEPARATORS).map("".join), max_size=3),
    _statements,
    st.sampled_from(["", "\n", ";", " # end"]),
).map(lambda t: t[0] + "".join(t[1]) + t[2] + t[3])


@st.composite
def mutated_programs(draw):
    """A generated program with one or two characters inserted, deleted or replaced."""
    text = draw(programs)
    for _ in range(draw(st.integers(1, 2))):
        at = draw(st.integers(0, len(text)))
        extra = draw(st.sampled_from(list("()[],;=+-*/^<>!.$²e0 \n")))
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        if how == "insert":
            text = text[:at] + extra + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + extra + text[at + 1 :]
    return text
