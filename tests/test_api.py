"""The Python API: exprgrad.parse and the function object's methods."""

from __future__ import annotations

import numpy as np
import pytest

import exprgrad
from exprgrad.errors import EvaluationError, ExprSyntaxError


def test_parse_params_columns_evaluate():
    f = exprgrad.parse("mean((a*x + b - y)^2)")
    assert f.params == ["a", "b"] and f.columns == ["x", "y"]
    assert f.evaluate(a=2.5, b=1, x=[0, 1, 2], y=[1, 3.5, 6]) == 0.0
    assert f.evaluate({"x": np.array([1.0]), "y": np.array([0.0])}, a=1, b=1) == 4.0


def test_str_parses_back_to_the_same_function():
    f = exprgrad.parse("h = a*x + b; mean((h - y)^2)")
    assert exprgrad.parse(str(f)).output is f.output


def test_diff_grad_hessian():
    f = exprgrad.parse("a^2*b + sin(b)")
    assert str(f.diff("a")) == "2*a*b"
    grad = f.grad()
    assert list(grad) == ["a", "b"]
    assert grad["b"].evaluate(a=3, b=0) == pytest.approx(10.0)
    hessian = f.hessian("a,b")
    assert str(hessian["a"]["b"]) == "2*a" and hessian["a"]["b"].output is hessian["b"]["a"].output


def test_printing_methods():
    f = exprgrad.parse("sqrt(x)/y")
    assert f.latex() == r"\frac{\sqrt{x}}{y}"
    assert f._repr_latex_().startswith("$") and f._repr_latex_().endswith("$")
    namespace: dict = {}
    exec(f.python(), namespace)  # noqa: S102  (running the generated source is the point)
    assert namespace["f"]({"x": 4.0, "y": 2.0}) == 1.0


def test_to_dot_and_svg():
    f = exprgrad.parse("mean((a*x + b - y)^2)")
    dot = f.to_dot("a")
    assert dot.startswith("digraph") and "∂J/∂a" in dot
    svg = f._repr_svg_()
    assert svg is None or "<svg" in svg


def test_errors_are_exprgrad_errors():
    with pytest.raises(ExprSyntaxError):
        exprgrad.parse("a +")
    with pytest.raises(EvaluationError):
        exprgrad.parse("a + b").evaluate(a=1)
    assert issubclass(ExprSyntaxError, exprgrad.ExprgradError)


def test_sequence_for_a_parameter_says_how_to_make_it_a_column():
    # 'a*x' has no reduction, so x is a parameter: a list for it must not read
    # as "no value given".
    with pytest.raises(EvaluationError, match=r"'x' is a parameter .* columns=\['x'\]"):
        exprgrad.parse("a*x").evaluate(a=1, x=[1, 2])
    assert list(exprgrad.parse("a*x", columns=["x"]).evaluate(a=1, x=[1, 2])) == [1.0, 2.0]


def test_readme_gradient_example():
    f = exprgrad.parse("mean((a*x + b - y)^2)")
    assert f.grad("a,b")["b"].evaluate(a=2, b=1, x=[1, 2], y=[3, 4]) == 1.0
