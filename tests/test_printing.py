"""printing: golden text, LaTeX and Python for graphs built with the builders; round trips."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import evaluate
from hypothesis import HealthCheck, given, settings
from test_simplify import expressions, points, values_agree

from exprgrad import graph, ops
from exprgrad.backends.printing import (
    LET_MIN_CHARS,
    latex_derivative_label,
    latex_name,
    program_text,
    to_latex,
    to_latex_many,
    to_python,
    to_text,
    to_text_many,
)
from exprgrad.errors import LimitError, OptionError
from exprgrad.lower import lower
from exprgrad.parse import parse
from exprgrad.passes.simplify import simplify

a, b, c, w = (graph.var(n) for n in ("a", "b", "c", "w"))
x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
k = ops.const
add, sub, mul, div, neg, pow_, call = ops.add, ops.sub, ops.mul, ops.div, ops.neg, ops.pow_, ops.call
residual = sub(add(mul(a, x), b), y)


# ---------------------------------------------------------------- text: parentheses


def test_text_parenthesizes_by_precedence_and_associativity():
    assert to_text(sub(a, sub(b, c))) == "a - (b - c)"
    assert to_text(sub(sub(a, b), c)) == "a - b - c"
    assert to_text(div(a, mul(b, c))) == "a/(b*c)"
    assert to_text(div(mul(a, b), c)) == "a*b/c"
    assert to_text(div(a, div(b, c))) == "a/(b/c)"
    assert to_text(mul(a, add(b, c))) == "a*(b + c)"
    assert to_text(pow_(pow_(a, b), c)) == "(a^b)^c"
    assert to_text(pow_(a, pow_(b, c))) == "a^b^c"
    assert to_text(pow_(add(a, b), k(2))) == "(a + b)^2"
    assert to_text(pow_(mul(a, b), c)) == "(a*b)^c"


def test_text_signs():
    assert to_text(neg(pow_(a, k(2)))) == "-a^2"
    assert to_text(pow_(neg(a), k(2))) == "(-a)^2"
    assert to_text(pow_(k(-2), a)) == "(-2)^a"
    assert to_text(pow_(a, k(-1))) == "a^(-1)"
    assert to_text(pow_(a, neg(b))) == "a^(-b)"
    assert to_text(neg(mul(a, b))) == "-a*b"
    assert to_text(neg(div(a, b))) == "-a/b"
    assert to_text(neg(add(a, b))) == "-(a + b)"
    assert to_text(neg(call("sin", a))) == "-sin(a)"
    assert to_text(graph.apply("mul", [a, neg(b)])) == "a*(-b)"
    assert to_text(graph.apply("sub", [a, k(-2)])) == "a - (-2)"


def test_text_sums_print_negated_terms_subtracted():
    assert to_text(residual) == "a*x + b - y"
    assert to_text(sub(a, add(b, c))) == "a - b - c"
    assert to_text(sub(a, add(b, neg(c), w))) == "a - b + c - w"
    assert to_text(add(a, neg(b), neg(c))) == "a - b - c"
    assert to_text(add(neg(a), neg(b))) == "-a - b"
    assert to_text(add(a, b, k(-2))) == "a + b - 2"
    assert to_text(sub(k(1), pow_(a, k(2)))) == "1 - a^2"


def test_text_term_and_factor_order():
    assert to_text(add(k(1), mul(k(2), a), pow_(a, k(2)))) == "a^2 + 2*a + 1"
    assert to_text(mul(call("sin", a), k(2), a)) == "2*a*sin(a)"
    assert to_text(mul(ops.named_const("pi"), k(2), b)) == "2*pi*b"
    assert to_text(mul(call("sigmoid", a), y, x)) == "x*y*sigmoid(a)"
    assert to_text(mul(add(a, b), x)) == "x*(a + b)"


def test_text_numbers_and_names():
    assert to_text(k(2)) == "2"
    assert to_text(k(-3)) == "-3"
    assert to_text(k(0.5)) == "0.5"
    assert to_text(k(0.1)) == "0.1"
    assert to_text(k(1 / 3)) == "0.3333333333333333"
    assert to_text(k(1e-7)) == "1e-07"
    assert to_text(k(1e20)) == "1e20"
    assert to_text(k(float("inf"))) == "1/0"
    assert to_text(ops.named_const("pi")) == "pi"
    assert to_text(ops.named_const("e")) == "e"
    assert to_text(graph.var("theta[1]")) == "theta[1]"
    assert to_text(graph.var("θ")) == "θ"
    assert to_text(call("sum", ops.ONE)) == "sum(1)"
    assert to_text(call("atan2", a, b)) == "atan2(a, b)"


def test_text_of_simplified_derivatives():
    assert to_text(simplify(mul(k(2), x, residual))) == "2*x*(a*x + b - y)"
    assert to_text(simplify(call("mean", mul(k(2), x, residual)))) == "2*mean(x*(a*x + b - y))"


# ---------------------------------------------------------------- let-form

shared = call("exp", mul(k(-1), w, x, y))  # -> exp(-w*x*y), 11 characters
big = add(mul(a, x), mul(b, y), call("sin", c))  # a*x + b*y + sin(c), 18 characters


def test_let_auto_names_only_shared_nodes_worth_it():
    lets, results = to_text_many({"p": mul(big, x), "q": add(big, shared), "r": shared})
    assert LET_MIN_CHARS == 16
    assert lets == [("t1", "a*x + b*y + sin(c)")]
    assert results == {"p": "x*t1", "q": "t1 + exp(-w*x*y)", "r": "exp(-w*x*y)"}


def test_let_always_and_never():
    lets, results = to_text_many({"q": add(big, shared), "r": shared}, let="always")
    assert lets == [("t1", "exp(-w*x*y)")]
    assert results == {"q": "a*x + b*y + sin(c) + t1", "r": "t1"}
    lets, results = to_text_many({"p": mul(big, x), "q": add(big, shared)}, let="never")
    assert lets == []
    assert results["p"] == "x*(a*x + b*y + sin(c))"


def test_let_names_avoid_the_functions_variables():
    t1 = graph.var("t1")
    lets, results = to_text_many({"p": mul(add(t1, big), a), "q": add(t1, big)})
    assert lets == [("t_1", "a*x + b*y + sin(c) + t1")]
    assert results == {"p": "a*t_1", "q": "t_1"}


def test_let_rejects_an_unknown_mode():
    with pytest.raises(OptionError):
        to_text_many({"p": a}, let="sometimes")


def test_program_text_keeps_the_definitions_a_result_needs():
    lets = [("t1", "a*x"), ("t2", "t1 + b"), ("t3", "sin(c)")]
    assert program_text(lets, "2*t2") == "t1 = a*x\nt2 = t1 + b\n2*t2"
    assert program_text(lets, "t3*t1") == "t1 = a*x\nt3 = sin(c)\nt3*t1"
    assert program_text(lets, "a + b") == "a + b"


def test_let_form_programs_parse_to_the_same_values():
    outputs = {"p": mul(big, x), "q": add(big, shared), "r": div(shared, big)}
    lets, results = to_text_many(outputs, let="always")
    params, columns = {"a": 0.3, "b": -1.1, "c": 0.7, "w": 0.2}, {"x": np.arange(3.0), "y": np.ones(3)}
    for name, node in outputs.items():
        again = lower(parse(program_text(lets, results[name])), columns=["x", "y"])
        np.testing.assert_allclose(
            evaluate([again], params, columns)[0], evaluate([node], params, columns)[0], rtol=1e-12
        )


def test_let_form_is_linear_where_inline_text_is_exponential():
    node = a
    for _ in range(200):
        node = add(mul(node, node), call("sin", node))  # the tree has 3^200 leaves
    lets, results = to_text_many({"f": node})
    total = sum(len(text) for _, text in lets) + len(results["f"])
    assert total < 60 * 200
    with pytest.raises(LimitError):
        to_text(node)


# ---------------------------------------------------------------- LaTeX


def test_latex_templates_come_from_the_registry():
    assert to_latex(div(a, add(b, c))) == r"\frac{a}{b + c}"
    assert to_latex(call("sqrt", add(a, b))) == r"\sqrt{a + b}"
    assert to_latex(call("sin", a)) == r"\sin\left(a\right)"
    assert to_latex(call("mean", x)) == r"\operatorname{mean}\left(x\right)"
    assert to_latex(call("sigmoid", a)) == r"\operatorname{sigmoid}\left(a\right)"
    assert to_latex(call("sum", x)) == r"\sum_{i}\left(x\right)"
    assert to_latex(call("abs", a)) == r"\left|a\right|"


def test_latex_powers_products_and_parentheses():
    assert to_latex(pow_(a, k(2))) == r"{a}^{2}"
    assert to_latex(pow_(add(a, b), k(2))) == r"{\left(a + b\right)}^{2}"
    assert to_latex(pow_(div(a, b), k(2))) == r"{\left(\frac{a}{b}\right)}^{2}"
    assert to_latex(pow_(a, add(b, c))) == r"{a}^{b + c}"
    assert to_latex(mul(k(2), a, x)) == r"2 a x"
    assert to_latex(mul(k(2), pow_(k(3), a))) == r"2 \cdot {3}^{a}"
    assert to_latex(mul(a, add(b, c))) == r"a \left(b + c\right)"
    assert to_latex(neg(mul(x, y, call("sigmoid", neg(mul(w, x, y)))))) == (
        r"-x y \operatorname{sigmoid}\left(-w x y\right)"
    )
    assert to_latex(k(1e-7)) == r"1 \cdot 10^{-7}"
    assert to_latex(ops.named_const("pi")) == r"\pi"


def test_latex_names():
    assert latex_name("theta[1]") == r"\theta_{1}"
    assert latex_name("θ") == r"\theta"
    assert latex_name("Θ") == r"\Theta"
    assert latex_name("alpha") == r"\alpha"
    assert latex_name("x") == "x"
    assert latex_name("x2") == "x_{2}"
    assert latex_name("x_2") == "x_{2}"
    assert latex_name("y_obs") == r"y_{\mathrm{obs}}"
    assert latex_name("rate") == r"\mathrm{rate}"
    assert latex_name("w_1[3]") == "w_{1,3}"
    assert latex_name("t_{1}") == "t_{1}"  # already LaTeX: unchanged


def test_latex_derivative_labels():
    assert latex_derivative_label("a") == r"\frac{\partial J}{\partial a}"
    assert latex_derivative_label("theta[1]") == r"\frac{\partial J}{\partial \theta_{1}}"
    assert latex_derivative_label(("a", "b")) == r"\frac{\partial^{2} J}{\partial a \partial b}"
    assert latex_derivative_label(("a", "a")) == r"\frac{\partial^{2} J}{\partial a^{2}}"


def test_latex_let_form():
    lets, results = to_latex_many({"p": mul(big, x), "q": add(big, shared)})
    assert lets == [("t_{1}", r"a x + b y + \sin\left(c\right)")]
    assert results["p"] == r"x t_{1}"


# ---------------------------------------------------------------- Python


def run_python(source: str, params, data=None, name="f"):
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    with np.errstate(all="ignore"):
        return namespace[name](params, data)


def test_python_keeps_the_graphs_order_of_operations():
    node = mul(b, div(b, a))  # b*(b/a) is not b*b/a in floating point
    assert "b * (b / a)" in to_python({"v": node})
    assert to_text(node) == "b*b/a"


def test_python_source_golden():
    source = to_python({"a": mul(k(2), call("mean", mul(x, residual)))}, "grad")
    assert source == (
        "import numpy as np\n"
        "\n"
        "\n"
        "def grad(params, data=None):\n"
        '    """Generated by exprgrad: a.\n'
        "\n"
        "    params: a, b; data columns: x, y.\n"
        '    """\n'
        "    data = {} if data is None else data\n"
        "    n = len(next(iter(data.values()))) if data else 1\n"
        "    a = np.float64(params['a'])\n"
        "    b = np.float64(params['b'])\n"
        "    x = np.asarray(data['x'], dtype=float) if 'x' in data else np.float64(params['x'])\n"
        "    y = np.asarray(data['y'], dtype=float) if 'y' in data else np.float64(params['y'])\n"
        "    return 2.0 * np.mean(x * (b + a * x - y))\n"
    )


def test_python_computes_shared_nodes_once_and_returns_a_dict():
    cost = call("mean", pow_(residual, k(2)))
    source = to_python({"J": cost, "a": mul(k(2), call("mean", mul(x, residual)))})
    assert source.count("b + a * x - y") == 1  # graph order: the evaluator's rounding
    data = {"x": np.array([1.0, 2.0, 3.0]), "y": np.array([2.0, 2.5, 4.0])}
    got = run_python(source, {"a": 0.5, "b": 1.0}, data)
    assert set(got) == {"J", "a"}
    assert got["J"] == pytest.approx(evaluate([cost], {"a": 0.5, "b": 1.0}, data)[0])


def test_python_helpers_and_sums_of_scalars():
    node = add(call("sigmoid", a), call("sum", mul(k(3), a)), call("sum", x))
    source = to_python({"v": node})
    assert "def _sigmoid(x):" in source
    data = {"x": np.array([1.0, 2.0, 3.0, 4.0])}
    assert run_python(source, {"a": 0.25}, data) == pytest.approx(evaluate([node], {"a": 0.25}, data)[0])
    assert run_python(source, {"a": 0.25, "x": 2.0}) == pytest.approx(
        evaluate([node], {"a": 0.25, "x": 2.0})[0]
    )


def test_python_names_are_valid_identifiers():
    theta = [graph.var(f"theta[{i}]") for i in range(3)]
    node = add(theta[0], mul(theta[1], graph.var("θ")), graph.var("lambda"))
    source = to_python({"v": node}, "model")
    params = {"theta[0]": 1.0, "theta[1]": 2.0, "theta[2]": 0.0, "θ": 3.0, "lambda": 0.5}
    assert run_python(source, params, name="model") == pytest.approx(7.5)
    with pytest.raises(OptionError):
        to_python({"v": node}, "not valid")


# ---------------------------------------------------------------- deep graphs


def test_deep_chains_print_without_recursion():
    node = a
    for _ in range(10_000):
        node = call("sin", node)
    text = to_text(node)
    assert text == "sin(" * 10_000 + "a" + ")" * 10_000
    assert to_latex(node).count(r"\sin\left(") == 10_000
    assert run_python(to_python({"v": node}), {"a": 0.5}) == pytest.approx(evaluate([node], {"a": 0.5})[0])


def test_wide_sums_become_python_statements_of_bounded_size():
    terms = [mul(graph.var(f"p{i}"), x) for i in range(3_000)]
    node = call("sum", add(*terms))
    params = {f"p{i}": i / 3_000 for i in range(3_000)}
    data = {"x": np.array([1.0, -2.0])}
    got = run_python(to_python({"v": node}), params, data)
    assert got == pytest.approx(evaluate([node], params, data)[0])


# ---------------------------------------------------------------- properties


def point_data(point):
    (pa, pb, pc), column = point
    return {"a": pa, "b": pb, "c": pc}, {"x": np.array(column[:5]), "y": np.array(column[5:])}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_printed_text_parses_to_the_same_values(node, point):
    text = to_text(node)
    again = lower(parse(text), columns=["x", "y"])
    assert values_agree(node, again, point), text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_simplified_text_parses_back_to_the_same_node(node):
    simple = simplify(node)
    again = lower(parse(to_text(simple)), columns=["x", "y"])
    assert simplify(again) is simple, to_text(simple)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_random_let_form_programs_parse_to_the_same_values(node, point):
    outputs = {"f": node, "g": simplify(node)}
    lets, results = to_text_many(outputs, let="always")
    for name, output in outputs.items():
        again = lower(parse(program_text(lets, results[name])), columns=["x", "y"])
        assert values_agree(output, again, point), program_text(lets, results[name])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_python_matches_evaluation(node, point):
    params, columns = point_data(point)
    outputs = {"f": node, "g": simplify(node)}
    got = run_python(to_python(outputs), params, columns)
    with np.errstate(all="ignore"):
        expected = evaluate(list(outputs.values()), params, columns)
    for name, value in zip(outputs, expected):  # same operations in the same order (numpy's
        # scalar and array loops may still differ in the last bit)
        np.testing.assert_allclose(
            np.broadcast_to(got[name], (5,)), np.broadcast_to(value, (5,)), rtol=1e-12, atol=1e-300
        )


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_latex_prints_every_expression(node):
    text = to_latex(node)
    assert text.count("{") == text.count("}")
    assert text.count(r"\left") == text.count(r"\right")
