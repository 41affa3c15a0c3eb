"""simplify: one test per law, textbook derivatives, values kept, sharing kept, deep graphs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import a, add, b, c, call, div, evaluate, k, mul, neg, pow_, sub, values_agree, w, x, y
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import expressions, numbers, points

from exprgrad import build, graph, ops
from exprgrad.backends.printing import to_text
from exprgrad.graph import Node
from exprgrad.passes.diff import diff
from exprgrad.passes.simplify import simplify, simplify_many

u = graph.var("u")


def s(node: Node) -> str:
    return to_text(simplify(node))


# ---------------------------------------------------------------- one law each


def test_flattens_nested_sums_and_products():
    assert s(add(add(a, b), c)) == "a + b + c"
    assert s(mul(mul(a, b), c)) == "a*b*c"
    assert simplify(mul(mul(a, b), c)) is graph.apply(ops.MUL, sorted([a, b, c], key=lambda n: n.sort_key))


def test_collects_numeric_coefficients():
    assert s(mul(mul(k(2), a), k(3))) == "6*a"
    assert s(div(mul(k(2), a), k(4))) == "a/2"
    assert s(div(mul(k(2), a), k(3))) == "2*a/3"
    assert s(mul(k(0.5), call("sin", a))) == "sin(a)/2"


def test_combines_like_terms():
    assert s(add(a, a)) == "2*a"
    assert s(sub(mul(k(2), a, x), mul(a, x))) == "a*x"
    assert s(add(a, b, neg(a))) == "b"
    assert s(sub(add(a, b), add(a, b))) == "0"
    assert s(add(div(a, k(3)), div(a, k(6)))) == "a/2"


def test_combines_powers():
    assert s(mul(a, a)) == "a^2"
    assert s(mul(pow_(a, k(2)), a)) == "a^3"
    assert s(div(pow_(a, k(3)), a)) == "a^2"
    assert s(div(a, pow_(a, k(3)))) == "1/a^2"
    assert s(div(pow_(x, a), pow_(x, b))) == "x^(a - b)"
    assert s(mul(call("sqrt", a), call("sqrt", a))) == "a"
    assert s(pow_(a, k(0.5))) == "sqrt(a)"


def test_expands_integer_powers_of_products():
    assert s(pow_(mul(k(2), a), k(2))) == "4*a^2"
    assert s(pow_(neg(a), k(2))) == "a^2"
    assert s(pow_(neg(a), k(3))) == "-a^3"
    assert s(pow_(pow_(a, k(2)), k(3))) == "a^6"


def test_keeps_powers_that_are_not_identities():
    assert s(pow_(pow_(a, k(2)), k(0.5))) == "sqrt(a^2)" or s(pow_(pow_(a, k(2)), k(0.5))) == "abs(a)"
    assert s(pow_(mul(a, b), k(0.5))) == "sqrt(a*b)"


def test_folds_constant_terms():
    assert s(sub(add(k(1), a, k(2)), k(5))) == "a - 2"
    assert s(add(k(2), neg(a), k(-2))) == "-a"


def test_normalizes_signs():
    assert s(add(a, mul(k(-1), b))) == "a - b"
    assert s(neg(neg(a))) == "a"
    assert s(mul(neg(a), neg(b))) == "a*b"
    assert s(add(neg(a), neg(b))) == "-(a + b)"
    assert s(sub(a, sub(b, c))) == "a + c - b"


def test_removes_identities():
    assert s(mul(a, k(1))) == "a"
    assert s(add(a, k(0))) == "a"
    assert s(pow_(a, k(1))) == "a"
    assert s(mul(k(0), call("sin", a))) == "0"
    assert s(div(a, a)) == "1"


def test_pulls_constant_factors_out_of_reductions():
    assert s(call("mean", mul(k(2), x))) == "2*mean(x)"
    assert s(call("sum", div(x, k(2)))) == "sum(x)/2"
    assert s(call("mean", neg(x))) == "-mean(x)"
    assert s(call("sum", k(3))) == "3*sum(1)"


def test_logistic_and_trigonometric_laws():
    e_u = call("exp", u)
    assert s(div(e_u, add(k(1), e_u))) == "sigmoid(u)"
    assert s(div(k(1), add(k(1), call("exp", neg(u))))) == "sigmoid(u)"
    assert s(mul(e_u, div(k(1), add(k(1), e_u)))) == "sigmoid(u)"
    assert s(div(call("sin", u), call("cos", u))) == "tan(u)"
    assert s(call("log", call("exp", u))) == "u"
    assert s(call("cos", neg(u))) == "cos(u)"
    assert s(call("sin", neg(u))) == "-sin(u)"


def test_already_simple_user_input_is_returned_unchanged():
    residual = sub(add(mul(a, x), b), y)  # how lower builds a*x + b - y
    assert simplify(residual) is residual
    assert simplify(sub(a, add(b, c))) is sub(a, add(b, c))
    assert simplify(mul(k(3), pow_(a, k(2)))) is mul(k(3), pow_(a, k(2)))


# ---------------------------------------------------------------- textbook derivatives
# End to end through passes.diff (the diff helper's module).


def d(output: Node, wrt: Node) -> str:
    return to_text(simplify(diff(output, [wrt])[wrt.name]))


def test_textbook_derivative_of_least_squares():
    cost = call("mean", pow_(sub(add(mul(a, x), b), y), k(2)))
    assert d(cost, a) == "2*mean(x*(a*x + b - y))"
    assert d(cost, b) == "2*mean(a*x + b - y)"


def test_textbook_derivative_of_logistic_loss():
    loss = call("log", add(k(1), call("exp", mul(neg(y), w, x))))
    assert d(loss, w) == "-x*y*sigmoid(-w*x*y)"


def test_textbook_derivatives_of_one_variable():
    t = graph.var("t")
    assert d(pow_(call("sin", t), k(2)), t) == "2*cos(t)*sin(t)"
    assert d(pow_(t, k(3)), t) == "3*t^2"
    assert d(call("exp", mul(k(2), t)), t) == "2*exp(2*t)"
    assert d(call("sqrt", t), t) == "1/(2*sqrt(t))"
    assert d(div(k(1), t), t) == "-1/t^2"


FORBIDDEN = [
    r"\*1(?![\d.e])",  # *1
    r"(?<![\w.)\]])1\*",  # 1*
    r"\+ 0(?![\d.e])",  # +0
    r"- 0(?![\d.e])",  # -0
    r"--|- -|\+ -",  # --
    r"(?<![\w.])0\*",  # 0*
    r"\^1(?![\d.e])",  # x^1, (x)^1
]


@pytest.mark.parametrize(
    "output",
    [
        call("mean", pow_(sub(add(mul(a, x), b), y), k(2))),
        call("log", add(k(1), call("exp", mul(neg(y), w, x)))),
        call("mean", mul(call("sigmoid", add(mul(w, x), b)), call("tanh", mul(a, x)))),
        div(call("sin", mul(a, b)), add(k(1), pow_(a, k(2)))),
        mul(k(1), pow_(add(a, k(0)), k(1))),
    ],
)
def test_no_identity_is_left_in_derivatives(output):
    for node in diff(output, [a, b, w]).values():
        text = to_text(simplify(node))
        for pattern in FORBIDDEN:
            assert not re.search(pattern, text), (pattern, text)


# ---------------------------------------------------------------- sharing and size


def test_shared_large_sum_stays_one_node():
    big = add(a, b, c, w, u, graph.var("v"))  # six operands, used twice below
    left = add(big, x)
    right = add(big, y)
    out_left, out_right = simplify_many([left, right])
    assert big in out_left.inputs
    assert big in out_right.inputs


def test_output_stays_linear_when_every_level_is_shared():
    # f_k = f_{k-1}*a + f_{k-1}*b: each f_k is used twice, so a tree would be 2^k.
    node = x
    for _ in range(60):
        node = add(mul(node, a), mul(node, b), k(1))
    before = graph.count_nodes([node])
    after = graph.count_nodes([simplify(node)])
    assert after <= 3 * before


def test_gradient_stays_small_and_shares_the_function():
    layer = x
    for i in range(20):
        layer = call("tanh", add(mul(graph.var(f"w{i}"), layer), graph.var(f"b{i}")))
    cost = call("mean", pow_(sub(layer, y), k(2)))
    names = [graph.var(f"w{i}") for i in range(20)]
    raw = list(diff(cost, names).values())
    simple = simplify_many([cost, *raw])
    assert graph.count_nodes(simple) <= graph.count_nodes([cost, *raw])


def test_deep_chains_do_not_recurse():
    sines = a
    total = a
    product = a
    for _ in range(10_000):
        sines = call("sin", sines)
        total = add(total, k(1))
        product = mul(product, b)
    assert graph.count_nodes([simplify(sines)]) == 10_001
    assert to_text(simplify(total)) == "a + 10000"
    assert to_text(simplify(product)) == "a*b^10000"


def test_deep_derivative_simplifies():
    node = a
    for _ in range(2_000):
        node = call("sin", mul(node, k(2)))
    derivative = simplify(diff(node, [a])["a"])
    assert graph.count_nodes([derivative]) < 5 * graph.count_nodes([node])


# ---------------------------------------------------------------- properties

# expressions and points: tests/strategies.py; values_agree: tests/helpers.py


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_simplify_keeps_values(node, point):
    assert values_agree(node, simplify(node), point), (to_text(node), to_text(simplify(node)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_simplified_derivatives_keep_values(node, point):
    for name, derivative in diff(node, [a, b]).items():
        assert values_agree(derivative, simplify(derivative), point), (name, to_text(node))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_simplify_is_idempotent(node):
    once = simplify(node)
    assert simplify(once) is once, (to_text(node), to_text(once), to_text(simplify(once)))


@pytest.mark.parametrize("p, q", [(5, 6), (-5, 6), (-2.5, 3), (1, 3), (-7, 4), (3, 1024)])
def test_a_fraction_simplifies_once_however_it_is_built(p, q):
    # a quotient, its negation, a sum and a difference of numbers: the value p/q
    # comes back as one exact p/q, which simplifying again leaves alone
    built = [
        div(k(p), k(q)),
        neg(div(k(-p), k(q))),
        add(div(k(p), k(2 * q)), div(k(p), k(2 * q))),
        sub(div(k(p), k(q)), div(k(1), k(q * 3))),
    ]
    for node in built:
        once = simplify(node)
        assert simplify(once) is once, (to_text(node), to_text(once), to_text(simplify(once)))
    assert simplify(built[0]) is simplify(built[1])


def test_distribution_reaches_its_fixed_point_in_one_simplify():
    # distributing s*(1 - y) lets y*s*(1 - y) distribute too; one simplify does both
    sig, one_minus_y = call("sigmoid", u), sub(k(1), y)
    node = add(mul(y, sig, one_minus_y), mul(sig, one_minus_y), sig)
    once = simplify(node)
    assert to_text(once) == "2*sigmoid(u) - y^2*sigmoid(u)"
    assert simplify(once) is once


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_simplify_never_grows_much(node):
    assert graph.count_nodes([simplify(node)]) <= 2 * graph.count_nodes([node]) + 4


def test_huge_constant_exponent_is_not_expanded_exactly():
    # 2^1e20 as an exact fraction would take all memory; it stays symbolic.
    from exprgrad.function import parse
    from exprgrad.passes.diff import diff

    f = parse("atan(2^1e20*x)")
    (derivative,) = diff(f.output, graph.variables([f.output])).values()
    assert "2^1e20" in to_text(simplify(derivative))


# ---------------------------------------------------------------- stable log-likelihoods
# log(sigmoid(u)) is built as -softplus(-u), log(1 - sigmoid(u)) as -softplus(u):
# the cross-entropy of a saturated model stays finite, in values, derivatives and fits.

CROSS_ENTROPY = "mean(-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b)))"


def test_log_of_sigmoid_is_built_as_softplus():
    assert call("log", call("sigmoid", u)) is neg(call("softplus", neg(u)))
    assert call("log", sub(k(1), call("sigmoid", u))) is neg(call("softplus", u))
    assert call("log", call("sigmoid", neg(u))) is neg(call("softplus", u))
    assert call("log", add(k(1), call("exp", u))) is call("softplus", u)
    assert call("log", call("exp", u)) is u
    assert call("log", k(1)) is build.ZERO
    assert call("log", add(k(2), call("exp", u))).op is ops.LOG  # log(2 + exp(u)) is no softplus


@pytest.mark.parametrize("z", [-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0])
def test_log_sigmoid_stays_finite_where_sigmoid_saturates(z):
    from exprgrad.function import parse

    with np.errstate(all="ignore"):
        assert parse("log(sigmoid(z))").evaluate(z=z) == pytest.approx(-np.logaddexp(0, -z), rel=1e-12)
        assert parse("log(1 - sigmoid(z))").evaluate(z=z) == pytest.approx(-np.logaddexp(0, z), rel=1e-12)
        assert parse("log(1 + exp(z))").evaluate(z=z) == pytest.approx(np.logaddexp(0, z), rel=1e-12)
        grad = parse("log(sigmoid(z))").grad("z")["z"].evaluate(z=z)
    assert np.isfinite(grad) and grad == pytest.approx(np.exp(-np.logaddexp(0, z)), rel=1e-9, abs=1e-300)


def test_saturated_cross_entropy_has_finite_values_gradient_and_fit(samples):
    from exprgrad.fitting import fit
    from exprgrad.function import parse

    path = str(samples / "logistic.csv")
    f = parse(CROSS_ENTROPY, columns=["x", "y"])
    softplus_form = parse("mean(y*softplus(-(w*x + b)) + (1 - y)*softplus(w*x + b))", columns=["x", "y"])
    from exprgrad.fitting.data import load_csv

    columns = load_csv(samples / "logistic.csv").columns
    for weight in (10.0, 100.0, 1000.0):
        value = f.evaluate(columns, w=weight, b=0.0)
        assert np.isfinite(value) and value == pytest.approx(softplus_form.evaluate(columns, w=weight, b=0.0))
        for name, derivative in f.grad().items():
            assert np.isfinite(derivative.evaluate(columns, w=weight, b=0.0)), name
    ours = fit(path, cost=CROSS_ENTROPY, init={"w": 10, "b": 0})
    reference = fit(path, cost="sum(softplus(w*x + b) - y*(w*x + b))", init={"w": 10, "b": 0})
    assert ours.params == pytest.approx(reference.params, rel=1e-5)


def test_check_of_saturated_cross_entropy_is_finite(runner, samples):
    from exprgrad.cli import cli

    result = runner.invoke(
        cli, ["check", CROSS_ENTROPY, "--at", "w=10,b=0", "--data", str(samples / "logistic.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "nan" not in result.output and "inf" not in result.output


# ---------------------------------------------------------------- linear time, no recursion


def _tower(depth: int) -> Node:
    node = a
    for _ in range(depth):
        node = pow_(a, node)
    return node


def test_power_tower_derivative_simplifies_without_recursion():
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)  # far below the tower's depth: any walk on depth would fail
    try:
        tower = _tower(600)
        derivative = simplify(diff(tower, [a])["a"])
    finally:
        sys.setrecursionlimit(limit)
    assert graph.count_nodes([derivative]) < 10 * graph.count_nodes([tower])


def test_long_products_are_simplified_in_linear_size():
    # d/da of sin(sin(...sin(a))) is a product of n cosines: splicing each level's
    # product into the next without a bound copies n^2/2 factors.
    node = a
    for _ in range(4_000):
        node = call("sin", node)
    raw = diff(node, [a])["a"]
    derivative = simplify(raw)
    assert graph.count_nodes([derivative]) < 3 * graph.count_nodes([raw])
    widest = max(len(n.inputs) for n in graph.toposort([derivative]))
    assert widest <= 64


def test_nested_negative_symbolic_exponents_do_not_recurse():
    import sys

    node = b
    for _ in range(300):
        node = pow_(a, mul(k(-2), node))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        out = simplify(node)
    finally:
        sys.setrecursionlimit(limit)
    point = {"a": 1.0001, "b": 0.5}
    assert evaluate([out], point, {})[0] == pytest.approx(evaluate([node], point, {})[0])


# ---------------------------------------------------------------- textbook losses and the laws of the functions


def test_textbook_derivative_of_cross_entropy():
    z = add(mul(w, x), b)
    s_z = call("sigmoid", z)
    loss = call("mean", sub(mul(neg(y), call("log", s_z)), mul(sub(k(1), y), call("log", sub(k(1), s_z)))))
    assert d(loss, w) == "mean(x*(sigmoid(w*x + b) - y))"
    assert d(loss, b) == "mean(sigmoid(w*x + b) - y)"


def test_textbook_derivative_of_binary_entropy():
    p = graph.var("p")
    entropy = sub(mul(neg(p), call("log", p)), mul(sub(k(1), p), call("log", sub(k(1), p))))
    assert d(entropy, p) == "log(1 - p) - log(p)"


def test_derivative_of_the_logistic_function():
    assert d(div(k(1), add(k(1), call("exp", neg(a)))), a) == "sigmoid(-a)*sigmoid(a)"
    assert d(call("sigmoid", a), a) == "sigmoid(-a)*sigmoid(a)"
    assert d(call("softplus", a), a) == "sigmoid(a)"


def test_a_difference_and_its_negation_are_one_base():
    assert s(div(sub(u, k(1)), sub(k(1), u))) == "-1"
    assert s(mul(sub(a, b), sub(b, a))) == "-(a - b)^2"
    assert s(div(pow_(sub(a, b), k(3)), sub(b, a))) == "-(a - b)^2"
    assert s(div(sub(a, b), call("sqrt", sub(b, a)))).count("sqrt") == 1  # (a - b)^(1/2) is no (b - a)^(1/2)


def test_sum_laws_of_the_functions():
    sig, sp = (lambda v: call("sigmoid", v)), (lambda v: call("softplus", v))
    assert s(add(sig(u), sig(neg(u)))) == "1"
    assert s(sub(k(1), sig(u))) == "sigmoid(-u)"
    assert s(sub(k(1), sig(neg(u)))) == "sigmoid(u)"
    assert s(sub(mul(k(2), a), mul(k(2), a, sig(u)))) == "2*a*sigmoid(-u)"
    assert s(sub(sp(u), sp(neg(u)))) == "u"
    assert s(sub(sp(add(a, b)), sp(neg(add(a, b))))) == "a + b"
    assert s(add(pow_(call("sin", u), k(2)), pow_(call("cos", u), k(2)))) == "1"
    assert s(sub(k(1), pow_(call("cos", u), k(2)))) == "sin(u)^2"
    assert s(sub(pow_(call("cosh", u), k(2)), pow_(call("sinh", u), k(2)))) == "1"
    assert s(add(k(1), pow_(call("sinh", u), k(2)))) == "cosh(u)^2"
    # no law: left alone
    assert s(add(sig(u), mul(k(2), sig(neg(u))))) in (
        "sigmoid(u) + 2*sigmoid(-u)",
        "2*sigmoid(-u) + sigmoid(u)",
    )


def test_distributes_only_where_terms_combine():
    sig_u = call("sigmoid", u)
    assert s(sub(mul(sub(k(1), y), sig_u), mul(y, call("sigmoid", neg(u))))) == "sigmoid(u) - y"
    assert s(sub(mul(add(x, k(1)), y), y)) == "x*y"
    assert s(add(mul(a, add(x, y)), b)) == "a*(x + y) + b"  # nothing combines: stays factored


sum_atoms = st.sampled_from(
    [
        call("sigmoid", u),
        call("sigmoid", neg(u)),
        call("sigmoid", add(a, x)),
        call("sigmoid", sub(neg(a), x)),
        call("softplus", u),
        call("softplus", neg(u)),
        pow_(call("sin", a), k(2)),
        pow_(call("cos", a), k(2)),
        pow_(call("cosh", b), k(2)),
        pow_(call("sinh", b), k(2)),
        u,
        a,
        x,
        y,
        k(1),
        k(2),
        sub(k(1), y),
        sub(a, b),
        sub(b, a),
        div(k(1), sub(a, b)),
    ]
)
sum_terms = st.tuples(st.sampled_from([k(1), k(-1), k(2), y, sub(k(1), y), a]), sum_atoms, sum_atoms).map(
    lambda t: mul(*t)
)
sums = st.lists(sum_terms, min_size=1, max_size=5).map(lambda ts: ts[0] if len(ts) == 1 else add(*ts))
law_points = st.tuples(
    st.lists(numbers, min_size=3, max_size=3),
    st.lists(st.floats(-40, 40).map(lambda v: 0.0 if abs(v) < 1e-3 else v), min_size=10, max_size=10),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sums, law_points)
def test_sum_laws_keep_values_and_are_idempotent(node, point):
    simple = simplify(node)
    (pa, pb, pc), column = point
    params = {"a": pa, "b": pb, "u": pc}
    columns = {"x": np.array(column[:5]), "y": np.array(column[5:])}
    with np.errstate(all="ignore"):
        want = np.broadcast_to(np.asarray(evaluate([node], params, columns)[0], dtype=float), (5,))
        got = np.broadcast_to(np.asarray(evaluate([simple], params, columns)[0], dtype=float), (5,))
        scale = 1 + np.abs(want) + 1e3  # terms up to cosh(2.5)^2*2*2 cancel: absolute rounding
        defined = np.isfinite(want)
        assert np.all(np.abs(got - want)[defined] <= 1e-9 * scale[defined]), (to_text(node), to_text(simple))
    assert simplify(simple) is simple, (to_text(node), to_text(simple), to_text(simplify(simple)))


# ---------------------------------------------------------------- values shown are the printed formulas'


@pytest.mark.parametrize(
    "expr, at",
    [
        ("1/(1+exp(-a))", "a=-1000"),
        ("sqrt(a)^2", "a=0"),
        ("log(1 + exp(a))", "a=1000"),
        ("mean(-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b)))", "w=1000,b=0"),
    ],
)
def test_values_shown_are_the_printed_formulas(runner, expr, at):
    import json

    from exprgrad.cli import cli

    data = ["--data", str(__import__("pathlib").Path(__file__).parents[1] / "samples" / "logistic.csv")]
    data = data if "x" in expr else []
    shown = runner.invoke(cli, ["diff", expr, "--at", at, "--format", "json", *data])
    assert shown.exit_code == 0, shown.output
    result = json.loads(shown.output)
    for name, program in result["derivatives"].items():
        again = runner.invoke(cli, ["eval", program, "--at", at, "--format", "json", *data])
        assert again.exit_code == 0, again.output
        assert result["gradient"][name] == pytest.approx(
            json.loads(again.output.splitlines()[-1])["value"], rel=1e-12, abs=1e-300
        )
        assert result["gradient"][name] is not None and np.isfinite(result["gradient"][name])
    graded = runner.invoke(cli, ["eval", expr, "--at", at, "--grad", "--format", "json", *data])
    assert graded.exit_code == 0, graded.output
    assert json.loads(graded.output)["gradient"] == pytest.approx(result["gradient"], rel=1e-12, abs=1e-300)
    text = runner.invoke(cli, ["diff", expr, "--at", at, *data])
    assert "nan" not in text.output and "inf" not in text.output


def test_shared_products_cancel_with_the_factors_they_meet():
    # the quotient is shared by the function and each derivative, and still cancels
    r, q1, q2, e0 = (graph.var(n) for n in ("r", "q1", "q2", "e0"))
    force = div(mul(q1, q2), mul(k(4), build.named_const("pi"), e0, r))
    raw = diff(force, [r, e0, q1])
    texts = [to_text(n) for n in simplify_many([force, *raw.values()])[1:]]
    assert texts == ["-q1*q2/(4*pi*e0*r^2)", "-q1*q2/(4*pi*e0^2*r)", "q2/(4*pi*e0*r)"]


def test_distributes_a_product_that_clears_a_denominator():
    e_a, e_b = call("exp", a), call("exp", b)
    softmax_loss = neg(call("log", div(e_a, add(e_a, e_b))))
    # the builders make the loss softplus(b - a): its derivative is the stable -sigmoid(b - a)
    assert d(softmax_loss, a) == "-sigmoid(b - a)"
    assert s(mul(a, add(div(k(1), a), b))) == "a*b + 1"
    assert s(div(add(a, b), a)) == "(a + b)/a"  # a denominator is not spread over a sum


def test_cross_entropy_built_without_the_stable_form_has_the_same_textbook_derivative():
    z = add(mul(w, x), b)
    s_z = graph.apply(ops.SIGMOID, (z,))
    raw_log = lambda v: graph.apply(ops.LOG, (v,))  # the plain node, not the builder's softplus
    loss = call("mean", sub(mul(neg(y), raw_log(s_z)), mul(sub(k(1), y), raw_log(sub(k(1), s_z)))))
    assert d(loss, w) == "mean(x*(sigmoid(w*x + b) - y))"
    assert d(loss, b) == "mean(sigmoid(w*x + b) - y)"


def test_hyperbolic_quotient_is_tanh():
    assert s(div(call("sinh", u), call("cosh", u))) == "tanh(u)"
    assert d(call("log", call("cosh", sub(mul(a, x), y))), a) == "x*tanh(a*x - y)"


def test_log_of_a_quotient_with_a_positive_numerator_is_split():
    assert call("log", div(k(1), a)) is neg(call("log", a))
    assert call("log", div(call("exp", u), a)) is sub(u, call("log", a))
    assert call("log", div(a, b)).op is ops.LOG  # log(a/b) is no log(a) - log(b) for a, b < 0
    e_z = call("exp", add(mul(w, x), b))
    loss = sub(
        mul(neg(y), call("log", div(e_z, add(k(1), e_z)))),
        mul(sub(k(1), y), call("log", div(k(1), add(k(1), e_z)))),
    )
    assert d(loss, w) == "x*(sigmoid(w*x + b) - y)"


def test_a_denominator_factor_is_multiplied_into_a_sum_it_clears():
    g = graph.var("g")
    assert s(div(a, mul(pow_(g, k(2)), add(div(pow_(b, k(2)), pow_(g, k(2))), k(1))))) == "a/(b^2 + g^2)"
    assert s(div(a, mul(pow_(g, k(3)), add(div(b, pow_(g, k(2))), k(1))))) == "a/(g*(g^2 + b))"


def test_sum_laws_are_idempotent_on_every_small_sum_of_sigmoid_products():
    import itertools

    sig_u, sig_minus_u = call("sigmoid", u), call("sigmoid", neg(u))
    atoms = [sig_u, sig_minus_u, y, k(1), sub(k(1), y)]
    for a1, a2, b1, b2, c1 in itertools.product(atoms, repeat=5):
        node = add(mul(a1, a2, b1), sub(mul(b2, c1), a1))
        once = simplify(node)
        assert simplify(once) is once, (to_text(node), to_text(once), to_text(simplify(once)))


def test_a_product_is_distributed_where_it_clears_one_term_of_several():
    e_u = call("exp", u)
    assert s(mul(e_u, add(div(a, pow_(e_u, k(2))), div(b, e_u)))) == "a/exp(u) + b"


@pytest.mark.parametrize("expr, at", [("1/(1+exp(-a))", "a=-1000"), ("1/(1 + exp(-2*a))", "a=-600")])
def test_check_judges_the_printed_derivative(runner, expr, at):
    from exprgrad.cli import cli

    result = runner.invoke(cli, ["check", expr, "--at", at])
    assert result.exit_code == 0, result.output
    assert "nan" not in result.output and " ok" in result.output


@pytest.mark.parametrize(
    "text, expected",
    [
        ("tanh(a)^2 + 1/cosh(a)^2", "1"),
        ("3*x*tanh(a)^2 + 3*x/cosh(a)^2", "3*x"),
        ("1 - 1/cosh(a)^2", "tanh(a)^2"),
        ("1/cosh(a)^2 + tanh(a)^2 - b", "1 - b"),
    ],
)
def test_tanh_squared_plus_sech_squared_is_one(text, expected):
    from exprgrad import parse as parse_text

    assert to_text(simplify(parse_text(text).output)) == expected
    if expected == "1":
        assert to_text(simplify(parse_text(text).diff("a").output)) == "0"
    assert (
        to_text(simplify(parse_text("tanh(a)").diff("a").output)) == "1 - tanh(a)^2"
    )  # still shares tanh(a)
