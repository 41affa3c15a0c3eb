"""Properties over random input: evaluation against a plain recursive numpy evaluator,
and random text that never raises anything but exprgrad's own errors."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exprgrad import ops
from exprgrad.errors import ExprgradError
from exprgrad.function import parse

ROWS = {"x": np.linspace(-1.5, 2.0, 7), "y": np.linspace(0.3, 1.1, 7)}
PARAMS = {"a": 0.7, "b": -1.3}
INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^",
         "gt": ">", "ge": ">=", "lt": "<", "le": "<=", "eq": "==", "ne": "!="}
NUMPY_INFIX = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
               "pow": np.float_power, "gt": np.greater, "ge": np.greater_equal, "lt": np.less,
               "le": np.less_equal, "eq": np.equal, "ne": np.not_equal}
# Orders (polygamma's n) are whole numbers written as numbers.
ORDERS = st.sampled_from([0.0, 1.0, 2.0]).map(lambda v: ("num", v))
FUNCTIONS = sorted(n for n, s in ops.OPS.items() if s.callable and not s.reduction and s.arity != ops.VARIADIC)

leaves = st.one_of(
    st.sampled_from(["a", "b", "x", "y"]).map(lambda n: ("name", n)),
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 0.25]).map(lambda v: ("num", v)),
)


def _extend(children):
    return st.one_of(
        st.tuples(st.sampled_from(sorted(INFIX)), children, children).map(lambda t: ("infix", *t)),
        st.tuples(st.sampled_from(FUNCTIONS), st.lists(children, min_size=3, max_size=3), ORDERS).map(
            lambda t: ("call", t[0], _with_orders(t[0], t[1][: ops.OPS[t[0]].arity], t[2]))
        ),
        st.lists(children, min_size=2, max_size=4).map(lambda t: ("call", "logsumexp", t)),
        children.map(lambda c: ("neg", c)),
        st.tuples(st.sampled_from(["sum", "mean"]), children).map(lambda t: ("reduce", *t)),
    )


def _with_orders(name, args, order):
    return [order if i in ops.OPS[name].orders else arg for i, arg in enumerate(args)]


trees = st.recursive(leaves, _extend, max_leaves=12)


def to_text(tree) -> str:
    kind = tree[0]
    if kind == "name":
        return tree[1]
    if kind == "num":
        return repr(tree[1])
    if kind == "neg":
        return f"(-{to_text(tree[1])})"
    if kind == "infix":
        return f"({to_text(tree[2])} {INFIX[tree[1]]} {to_text(tree[3])})"
    if kind == "reduce":
        return f"{tree[1]}({to_text(tree[2])})"
    return f"{tree[1]}({', '.join(to_text(c) for c in tree[2])})"


def reference(tree):
    """The same expression, evaluated the obvious way over all rows at once."""
    kind = tree[0]
    if kind == "name":
        return ROWS[tree[1]] if tree[1] in ROWS else np.float64(PARAMS[tree[1]])
    if kind == "num":
        return np.float64(tree[1])
    if kind == "neg":
        # exprgrad's zero has no sign (its builders fold -0 to 0, x*0 to 0), so
        # neither has the reference's: -0.0 + 0.0 is 0.0. atan2 is the one
        # function that tells them apart.
        return -reference(tree[1]) + 0.0
    if kind == "infix":
        value = NUMPY_INFIX[tree[1]](reference(tree[2]), reference(tree[3]))
        return value * 1.0  # comparisons: 1.0 or 0.0
    if kind == "reduce":
        inner = np.broadcast_to(reference(tree[2]), (len(ROWS["x"]),))
        return np.sum(inner) if tree[1] == "sum" else np.mean(inner)
    return ops.OPS[tree[1]].evaluate(*[reference(c) for c in tree[2]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_evaluation_matches_plain_numpy(tree):
    text = to_text(tree)
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(reference(tree), (len(ROWS["x"]),))
        got = parse(text, columns=list(ROWS)).evaluate(ROWS, **PARAMS)
    got = np.broadcast_to(got, expected.shape)
    # Values are kept where the expression is defined; where it is not (nan),
    # algebra such as x - x -> 0 may give a number.
    defined = ~np.isnan(expected)
    np.testing.assert_allclose(got[defined], expected[defined], rtol=1e-9, atol=1e-12, err_msg=text)


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
