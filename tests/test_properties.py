"""Properties over random input: evaluation against a plain recursive numpy evaluator,
and random text that never raises anything but exprgrad's own errors."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import Op, Ref, draw_from, random_expressions

from exprgrad import build, graph, ops
from exprgrad.errors import ExprgradError
from exprgrad.function import parse
from exprgrad.graph import Node

ROWS = {"x": np.linspace(-1.5, 2.0, 7), "y": np.linspace(0.3, 1.1, 7)}
PARAMS = {"a": 0.7, "b": -1.3}
NUMPY_INFIX = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.float_power,
    "gt": np.greater,
    "ge": np.greater_equal,
    "lt": np.less,
    "le": np.less_equal,
    "eq": np.equal,
    "ne": np.not_equal,
}
NUMPY_REDUCTIONS = {"sum": np.sum, "mean": np.mean}
# Parameters a, b, columns x, y and a few numbers; every registry entry; up to two
# definitions; the text plainly parenthesized.
drawn = random_expressions(
    output="drawn",
    leaves=[graph.var("a"), graph.var("b"), graph.var("x", per_row=True), graph.var("y", per_row=True)]
    + [build.const(v) for v in (0.5, 1.0, 2.0, 3.0, 0.25)],
    definitions=2,
)


def reference(tree, defined, unsigned_zero=False, rounded_ties=False):
    """The same expression, evaluated the obvious way over all rows at once.

    With ``unsigned_zero``, every zero is +0 (-0.0 + 0.0), as exprgrad's
    builders fold -0 to 0, x*0 and 0/x to 0: where the two evaluations differ, the
    value depends on the sign of a zero (atan2, 1/(-0)), which exprgrad's zero
    does not carry. With ``rounded_ties``, a comparison's sides that differ
    only by rounding (relative 1e-9) count as equal: where the two differ,
    which side wins depends on the order of the operations (mean(a) as the
    mean of n copies of a, against a itself). ``defined``: the definitions' values.
    """
    if isinstance(tree, Ref):
        return defined[tree.name]
    if isinstance(tree, Node):
        if tree.is_var:
            return ROWS[tree.name] if tree.name in ROWS else np.float64(PARAMS[tree.name])
        return np.float64(tree.value)
    args = [reference(t, defined, unsigned_zero, rounded_ties) for t in tree.args]
    if tree.name == "neg":
        value = -args[0]
    elif tree.name in NUMPY_INFIX:
        if rounded_ties and ops.OPS[tree.name].boolean:
            left, right = args
            apart = np.abs(left - right) > 1e-9 * (np.abs(left) + np.abs(right))
            args = [np.where(apart, np.sign(left - right), 0.0), 0.0]  # the sides' order, ties rounded
        value = functools.reduce(NUMPY_INFIX[tree.name], args) * 1.0  # a + b + c as (a + b) + c; 1.0 or 0.0
    elif tree.name in NUMPY_REDUCTIONS:
        if np.ndim(args[0]) == 0:  # the same value in every row: n copies of it, exactly
            value = args[0] if tree.name == "mean" else len(ROWS["x"]) * args[0]
        else:
            value = NUMPY_REDUCTIONS[tree.name](args[0])
    else:
        value = ops.OPS[tree.name].kernel(*args)
    return value + 0.0 if unsigned_zero else value


def value(one, **conventions):
    """The reference value of a drawn expression, its definitions evaluated first."""
    defined = {}
    for name, tree in one.definitions:
        defined[name] = reference(tree, defined, **conventions)
    return reference(one.result, defined, **conventions)


def same(u, v):
    return (u == v) | (np.isnan(u) & np.isnan(v))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(drawn)
def test_evaluation_matches_plain_numpy(one):
    text = one.text
    shape = (len(ROWS["x"]),)
    with np.errstate(all="ignore"):
        expected, unsigned, rounded = (
            np.broadcast_to(value(one, unsigned_zero=zero, rounded_ties=ties), shape)
            for zero, ties in [(False, False), (True, False), (False, True)]
        )
        got = parse(text, columns=list(ROWS)).evaluate(ROWS, **PARAMS)
    got = np.broadcast_to(got, shape)
    # Values are kept where the expression is defined; where it is not (nan),
    # algebra such as x - x -> 0 may give a number. Nor is a value that
    # depends on the sign of a zero, or on rounding at a comparison's tie.
    defined = ~np.isnan(expected) & same(expected, unsigned) & same(expected, rounded)
    np.testing.assert_allclose(got[defined], expected[defined], rtol=1e-9, atol=1e-12, err_msg=text)


def test_the_generator_draws_every_registry_entry():
    seen = set()
    for seed in range(400):
        pending = [draw_from(np.random.default_rng(seed)).result]
        while pending:
            tree = pending.pop()
            if isinstance(tree, Op):
                seen.add(tree.name)
                pending += tree.args
    assert seen == set(ops.OPS), sorted(set(ops.OPS) - seen)


alphabet = st.sampled_from(
    list("ab xy+-*/^()[],;=#\n.0123456789e_θ<>!") + ["sin", "mean", "**", "pi", "where", "==", "\u0301"]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(alphabet, max_size=30).map("".join))
def test_random_text_raises_only_exprgrad_errors(text):
    try:
        f = parse(text)
        f.evaluate(**{name: 0.5 for name in f.params + f.columns})
    except ExprgradError:
        pass
