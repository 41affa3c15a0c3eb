"""Test helpers: a plain reference evaluator, finite differences over it (exprgrad.check),
the value comparison of the rewriting properties, and the small graphs the printer tests share.

The evaluator walks ``graph.toposort`` and calls each registry entry's
``kernel``: deliberately simple (no chunks, no buffer reuse), so the
backends and ``diff`` can be checked against it. Reductions reduce over the
rows; a reduction of a scalar sees it repeated in every row (sum(a) = n*a).
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest

from exprgrad import build, check, graph, ops
from exprgrad.graph import Node

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz's dot is not installed")


def evaluate(
    outputs: Sequence[Node],
    params: Mapping[str, float],
    columns: Mapping[str, np.ndarray] | None = None,
) -> list:
    """Values of ``outputs``: floats for scalar nodes, arrays of n for per-row ones.

    Without columns there is one row, and a per-row variable may be bound in
    ``params``. Raises KeyError for an unbound variable.
    """
    columns = {k: np.asarray(v, dtype=float) for k, v in (columns or {}).items()}
    rows = len(next(iter(columns.values()))) if columns else 1
    values: dict[int, object] = {}
    with np.errstate(all="ignore"):
        for node in graph.toposort(outputs):
            if node.is_const:
                value = node.value
            elif node.is_var:
                value = columns[node.name] if node.name in columns else float(params[node.name])
            else:
                spec = node.op
                args = [values[id(child)] for child in node.inputs]
                if spec.reduction:
                    column = np.broadcast_to(np.asarray(args[0], dtype=float), (rows,))
                    value = float(spec.kernel(column))
                else:
                    value = spec.kernel(*args)
                    if np.ndim(value) == 0:
                        value = float(value)
            values[id(node)] = value
    return [values[id(node)] for node in outputs]


def evaluate_one(node: Node, params, columns=None):
    return evaluate([node], params, columns)[0]


def numeric_partial(node: Node, name: str, params, columns=None, step=None):
    """d node/d name by finite differences (``exprgrad.check``), on the reference evaluator.

    For a parameter: per row for a per-row node. For a data column: per row i,
    the change of the output (row i of a per-row output) when only x_i moves,
    matching what ``diff`` means for a column. Without ``step``, Ridders'
    extrapolation; with it, one central difference with that step.
    """

    def run(p, c):
        return evaluate_one(node, p, c)

    params = {**params}
    return check.numeric_partial(run, name, params, columns, step=step).value


def assert_close(actual, expected, rtol=1e-5, atol=1e-6, message=""):
    actual = np.broadcast_to(np.asarray(actual, dtype=float), np.shape(expected))
    expected = np.asarray(expected, dtype=float)
    scale = atol + rtol * np.maximum(np.abs(expected), np.abs(actual))
    bad = ~(np.abs(actual - expected) <= scale)
    if np.any(bad):
        raise AssertionError(f"{message}: got {actual}, expected {expected}")


def show(node: Node) -> str:
    """A plain, fully parenthesized text of ``node`` for test messages (not the printer)."""
    text: dict[int, str] = {}
    for n in graph.toposort([node]):
        if n.is_const:
            text[id(n)] = n.name or repr(n.value)
        elif n.is_var:
            text[id(n)] = n.name
        else:
            text[id(n)] = f"{n.op.name}(" + ", ".join(text[id(c)] for c in n.inputs) + ")"
    return text[id(node)]


def values_agree(original: Node, other: Node, point) -> bool:
    """other equals original (to rounding) in every row where original is defined.

    ``point`` is drawn by ``strategies.points``. Defined: every intermediate
    value finite, and no discontinuous op (one with a kink) evaluated next to
    its jump.
    """
    (pa, pb, pc), column = point
    params = {"a": pa, "b": pb, "c": pc}
    columns = {"x": np.array(column[:5]), "y": np.array(column[5:])}
    order = graph.toposort([original])
    with np.errstate(all="ignore"):
        values = [np.broadcast_to(np.asarray(v, dtype=float), (5,)) for v in evaluate(order, params, columns)]
        got = np.broadcast_to(np.asarray(evaluate([other], params, columns)[0], dtype=float), (5,))
    stacked = np.array(values)
    defined = np.all(np.isfinite(stacked), axis=0)
    for node, value in zip(order, values):
        if not node.is_leaf and node.op.kink:
            for child in node.inputs:
                child_value = values[order.index(child)]
                defined &= np.abs(child_value) > 1e-7 * (1 + np.abs(stacked).max(axis=0, initial=0))
    scale = np.where(np.isfinite(stacked), np.abs(stacked), 0).max(axis=0)
    expected = values[-1]
    with np.errstate(invalid="ignore"):  # inf - inf where original is not defined
        close = np.abs(got - expected) <= 1e-7 * (1 + scale)
    return bool(np.all(close | ~defined))


# ---------------------------------------------------------------- graphs the printer tests share

a, b, c, w = (graph.var(n) for n in ("a", "b", "c", "w"))
x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
k = build.const
add, sub, mul, div, neg, pow_, call = (
    build.add,
    build.sub,
    build.mul,
    build.div,
    build.neg,
    build.pow_,
    build.call,
)
residual = sub(add(mul(a, x), b), y)
shared = call("exp", mul(k(-1), w, x, y))  # -> exp(-w*x*y), 11 characters
big = add(mul(a, x), mul(b, y), call("sin", c))  # a*x + b*y + sin(c), 18 characters


def sin_chain(depth: int) -> Node:
    """sin(sin(...sin(a))), ``depth`` calls deep."""
    node = a
    for _ in range(depth):
        node = call("sin", node)
    return node


# ---------------------------------------------------------------- index families unrolled into scalar members
#
# A family graph (w[j], x[j], sum[j](...)) and its derivatives are unrolled by
# ``unroll``: every reduction over an index becomes the sum (mean, logsumexp)
# of its members, each family use the scalar member w[2] / column x[2], a
# Kronecker delta 1 or 0. The models are the examples' graphs, built directly.

R = graph.ROWS
J, K = graph.index("j"), graph.index("k")
ROWS = 6  # rows of the unrolled programs' data


def member(name: str, labels) -> str:
    return f"{name}[{','.join(str(label) for label in labels)}]"


def size_of(axis, sizes: dict) -> int:
    """The size of ``axis``; a renamed index (j2, j3) has the size of the one it renames (j)."""
    if axis in sizes:
        return sizes[axis]
    return sizes[graph.index(axis.name.rstrip("0123456789"))]


def unroll(node, env: dict, sizes: dict, memo=None):
    """``node`` with every index replaced by labels 1..size: a scalar program."""
    memo = {} if memo is None else memo
    key = (node, tuple(sorted((i.name, env[i]) for i in node.indices if i is not R)))
    if key in memo:
        return memo[key]
    if node.is_var and node.var_axes:
        found = graph.var(member(node.name, [env[i] for i in node.var_axes]), per_row=node.per_row)
    elif node.op is graph.SIZE:
        found = build.const(float(size_of(node.axis, sizes)) if node.axis is not R else ROWS)
    elif node.op is graph.DELTA:  # 1 where the two labels agree
        first, second = node.indices
        found = build.const(1.0 if env[first] == env[second] else 0.0)
    elif node.is_leaf:
        found = node
    elif node.axis is not None and node.axis is not R:
        members = [
            unroll(node.inputs[0], {**env, node.axis: n}, sizes, memo)
            for n in range(1, size_of(node.axis, sizes) + 1)
        ]
        if node.op is ops.LSE:
            found = members[0] if len(members) == 1 else build.call(ops.OPS["logsumexp"], *members)
        else:
            found = build.add(*members) if len(members) > 1 else members[0]
            if node.op is ops.MEAN:
                found = build.div(found, build.const(float(len(members))))
    else:
        found = build.call(node.op, *[unroll(child, env, sizes, memo) for child in node.inputs])
    memo[key] = found
    return found


def logistic():
    w, x, c, y = graph.var("w", (J,)), graph.var("x", (R, J)), graph.var("c"), graph.var("y", per_row=True)
    z = build.add(c, build.reduce(ops.SUM, build.mul(w, x), J))
    cost = build.call(ops.MEAN, build.sub(build.call(ops.OPS["softplus"], z), build.mul(y, z)))
    return cost, [w, c]


def network():
    W, b, v = graph.var("W", (K, J)), graph.var("b", (K,)), graph.var("v", (K,))
    x, c, y = graph.var("x", (R, J)), graph.var("c"), graph.var("y", per_row=True)
    h = build.call(ops.TANH, build.add(build.reduce(ops.SUM, build.mul(W, x), J), b))
    out = build.add(build.reduce(ops.SUM, build.mul(v, h), K), c)
    cost = build.call(ops.MEAN, build.pow_(build.sub(out, y), build.const(2)))
    return cost, [W, b, v, c]


def softmax():
    W, b, x, Y = graph.var("W", (K, J)), graph.var("b", (K,)), graph.var("x", (R, J)), graph.var("Y", (R, K))
    z = build.add(build.reduce(ops.SUM, build.mul(W, x), J), b)
    cost = build.call(
        ops.MEAN, build.sub(build.reduce(ops.LSE, z, K), build.reduce(ops.SUM, build.mul(Y, z), K))
    )
    return cost, [W, b]


def scalar_inside():
    """A scalar inside a family (summed over k on the way back) and mean[j]."""
    u, x, a = graph.var("u", (K,)), graph.var("x", (R, J)), graph.var("a")
    inner = build.call(ops.SIN, build.add(build.mul(a, u), build.reduce(ops.MEAN, x, J)))
    cost = build.call(ops.MEAN, build.reduce(ops.SUM, build.mul(inner, inner), K))
    return build.add(cost, build.reduce(ops.MEAN, build.pow_(u, build.const(2)), K)), [u, a]


def data(sizes, seed):
    rng = np.random.default_rng(seed)
    columns = {"y": rng.normal(size=ROWS)}
    for n in range(1, max(sizes.values()) + 1):
        columns[member("x", [n])] = rng.normal(size=ROWS)
        columns[member("Y", [n])] = rng.normal(size=ROWS)
    return columns


def point(variables, sizes, seed):
    rng = np.random.default_rng(seed + 1000)
    params = {}
    for v in variables:
        if not v.var_axes:
            params[v.name] = rng.normal()
            continue
        for labels in itertools.product(*[range(1, sizes[i] + 1) for i in v.var_axes]):
            params[member(v.name, labels)] = 0.5 * rng.normal()
    return params


def members_of(v, sizes):
    if not v.var_axes:
        return [({}, v.name)]
    result = []
    for labels in itertools.product(*[range(1, sizes[i] + 1) for i in v.var_axes]):
        result.append((dict(zip(v.var_axes, labels)), member(v.name, labels)))
    return result


def close(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert np.allclose(a, b, rtol=1e-12, atol=1e-12), (a, b)


def entry_env(first, second, env1: dict, env2: dict) -> dict:
    """Labels for entry [first][second]: first's indices as written, second's
    that clash with them fresh (j -> j2)."""
    env = dict(env1)
    for i, label in env2.items():
        env[graph.index(i.name + "2") if i in first.var_axes else i] = label
    return env


# The NIST StRD problems the tests fit (tests/data/nist), and how their digits are counted.
NIST_DATA = Path(__file__).resolve().parent / "data" / "nist"
NIST_PROBLEMS = {p["name"]: p for p in json.loads((NIST_DATA / "problems.json").read_text())["problems"]}


def lre(estimate, certified: str, digits: int) -> float:
    """The log relative error of ``estimate`` against a certified value: its agreeing digits, at most ``digits``."""
    truth = float(certified)
    if estimate is None or not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - truth) / abs(truth) if truth else abs(estimate - truth)
    return float(digits) if error == 0 else max(0.0, min(float(digits), -math.log10(error)))
