"""latex: golden LaTeX for graphs built with the builders, names, derivative labels, let-form."""

from __future__ import annotations

from helpers import a, add, b, big, c, call, div, k, mul, neg, pow_, shared, sin_chain, w, x, y
from hypothesis import HealthCheck, given, settings
from strategies import expressions

from exprgrad import build
from exprgrad.backends.latex import latex_derivative_label, latex_name, to_latex, to_latex_many


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
    assert to_latex(build.named_const("pi")) == r"\pi"


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


def test_deep_chains_print_without_recursion():
    assert to_latex(sin_chain(10_000)).count(r"\sin\left(") == 10_000


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_latex_prints_every_expression(node):
    text = to_latex(node)
    assert text.count("{") == text.count("}")
    assert text.count(r"\left") == text.count(r"\right")
