"""Properties over random input: evaluation against a plain recursive numpy evaluator,
and random text that never raises anything but exprgrad's own errors."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import tree_text, trees

from exprgrad import ops
from exprgrad.errors import ExprgradError
from exprgrad.function import parse

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


def reference(tree, unsigned_zero=False):
    """The same expression, evaluated the obvious way over all rows at once.

    With ``unsigned_zero``, a negated zero is +0 (-0.0 + 0.0), as exprgrad's
    builders fold -0 to 0 and x*0 to 0: where the two evaluations differ, the
    value depends on the sign of a zero (atan2, 1/(-0)), which exprgrad's zero
    does not carry.
    """
    kind = tree[0]
    if kind == "name":
        return ROWS[tree[1]] if tree[1] in ROWS else np.float64(PARAMS[tree[1]])
    if kind == "num":
        return np.float64(tree[1])
    if kind == "neg":
        value = -reference(tree[1], unsigned_zero)
        return value + 0.0 if unsigned_zero else value
    if kind == "infix":
        value = NUMPY_INFIX[tree[1]](reference(tree[2], unsigned_zero), reference(tree[3], unsigned_zero))
        return value * 1.0  # comparisons: 1.0 or 0.0
    if kind == "reduce":
        inner = np.broadcast_to(reference(tree[2], unsigned_zero), (len(ROWS["x"]),))
        return np.sum(inner) if tree[1] == "sum" else np.mean(inner)
    return ops.OPS[tree[1]].evaluate(*[reference(c, unsigned_zero) for c in tree[2]])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_evaluation_matches_plain_numpy(tree):
    text = tree_text(tree)
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(reference(tree), (len(ROWS["x"]),))
        unsigned = np.broadcast_to(reference(tree, unsigned_zero=True), expected.shape)
        got = parse(text, columns=list(ROWS)).evaluate(ROWS, **PARAMS)
    got = np.broadcast_to(got, expected.shape)
    # Values are kept where the expression is defined; where it is not (nan),
    # algebra such as x - x -> 0 may give a number. Nor is a value that
    # depends on the sign of a zero.
    defined = ~np.isnan(expected) & ((expected == unsigned) | (np.isnan(unsigned) & np.isnan(expected)))
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
