"""The Python API: exprgrad.parse and the function object's methods."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import needs_dot

import exprgrad
from exprgrad.errors import ArgumentError, EvaluationError, ExprSyntaxError


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


def test_to_dot():
    f = exprgrad.parse("mean((a*x + b - y)^2)")
    dot = f.to_dot("a")
    assert dot.startswith("digraph") and "∂J/∂a" in dot


@needs_dot
def test_notebook_svg_is_the_drawing():
    assert "<svg" in exprgrad.parse("mean((a*x + b - y)^2)")._repr_svg_()


def test_notebook_svg_is_none_without_dot(no_dot):
    # A notebook then falls back to the other forms (LaTeX, text), with no error.
    assert exprgrad.parse("mean((a*x + b - y)^2)")._repr_svg_() is None


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


# ---------------------------------------------------------------- misuse is an ExprgradError naming the argument


@pytest.mark.parametrize(
    "value, words",
    [
        (None, "None is not a number"),
        ("1", "is text"),
        (1j, "complex"),
        (np.complex128(1), "complex"),
        (True, "True is not a number"),
        (np.bool_(False), "False is not a number"),
        (10**400, "too large"),
        (object(), "is not a number"),
        (np.array([[1.0, 2.0]]), "one-dimensional"),
    ],
)
def test_a_wrong_parameter_value_names_the_parameter(value, words):
    with pytest.raises(ArgumentError) as info:
        exprgrad.parse("a*b").evaluate(a=value, b=1)
    assert str(info.value).startswith("a: ") and words in str(info.value)
    assert isinstance(info.value, exprgrad.ExprgradError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "column, words",
    [
        ([1, "q"], "is text"),
        ([1, None], "None is not a number"),
        ([1j, 2], "complex"),
        ("12", "is text"),
        (np.ones((2, 2)), "one-dimensional"),
    ],
)
def test_a_wrong_column_names_the_column(column, words):
    f = exprgrad.parse("mean((a*x - y)^2)")
    with pytest.raises(ArgumentError) as info:
        f.evaluate(a=1, x=column, y=[1, 2])
    assert str(info.value).startswith("x: ") and words in str(info.value)
    with pytest.raises(ArgumentError, match=r"^data\['x'\]: "):
        f.evaluate({"x": column, "y": [1, 2]}, a=1)


def test_boolean_columns_are_zero_and_one():
    f = exprgrad.parse("mean(y)", columns=["y"])
    assert f.evaluate(y=np.array([True, False, True, True])) == 0.75


def test_columns_of_different_lengths_say_which():
    with pytest.raises(EvaluationError, match="'x' has 2, 'y' has 3 rows"):
        exprgrad.parse("mean(a*x - y)").evaluate(a=1, x=[1, 2], y=[1, 2, 3])


def test_a_parameter_named_data():
    f = exprgrad.parse("data*a")
    assert f.params == ["a", "data"]
    assert f.evaluate(data=3, a=2) == 6.0
    g = exprgrad.parse("mean(a*x)")
    assert g.evaluate(data={"x": [1, 3]}, a=2) == 4.0  # data= with a dict: the columns, as before
    with pytest.raises(ArgumentError, match="^data: must be a dict"):
        g.evaluate(5, a=1)
    with pytest.raises(ArgumentError, match=r"^data\['a'\]: is one number, not a column"):
        exprgrad.parse("a*b").evaluate({"a": 1}, b=1)


def test_names_the_function_does_not_use_are_ignored():
    f = exprgrad.parse("a^2*b")
    values = {"a": 3.0, "b": 2.0}
    assert f.diff("b").evaluate(**values) == 9.0


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda f: f.diff(None), "name"),
        (lambda f: f.diff(3), "name"),
        (lambda f: f.diff(""), "name"),
        (lambda f: f.grad(5), "names"),
        (lambda f: f.grad(["a", 5]), "names"),
        (lambda f: f.hessian(1.5), "names"),
        (lambda f: f.to_dot(5), "wrt"),
        (lambda f: f.to_dot("a", bogus=1), "options"),
        (lambda f: f.to_dot("a", max_nodes="x"), "max_nodes"),
        (lambda f: f.to_dot(values={"a": None}), "a"),
        (lambda f: f.python(5), "function_name"),
        (lambda f: f.python("class"), "function_name"),
        (lambda f: exprgrad.parse(None), "text"),
        (lambda f: exprgrad.parse(b"a"), "text"),
        (lambda f: exprgrad.parse("a", columns="x"), "columns"),
        (lambda f: exprgrad.parse("a", columns=[1]), "columns"),
        (lambda f: exprgrad.Function("a*b"), "output"),
    ],
)
def test_misused_methods_raise_argument_errors(call, argument):
    with pytest.raises(ArgumentError) as info:
        call(exprgrad.parse("a*b"))
    assert info.value.argument == argument and str(info.value).startswith(f"{argument}: ")
    assert "--" not in str(info.value)  # the library names Python arguments, not options


def test_diff_of_a_family_points_to_grad():
    f = exprgrad.parse("theta[0]*theta[1]")
    with pytest.raises(ArgumentError, match=r"family \(theta\[0\], theta\[1\]\): use grad\('theta'\)"):
        f.diff("theta")
    assert str(f.diff("theta[1]")) == "theta[0]"


def test_a_derivative_is_titled_as_one():
    f = exprgrad.parse("a^2*b")
    assert f.label == "J" and f._repr_latex_() == f"$\\displaystyle {f.latex()}$"
    da = f.diff("a")
    assert da.label == "∂J/∂a" and da.derivative_of == ("a",)
    assert da._repr_latex_() == f"$\\displaystyle \\frac{{\\partial J}}{{\\partial a}} = {da.latex()}$"
    assert f.hessian()["a"]["b"].label == "∂²J/∂a∂b" and da.diff("a").label == "∂²J/∂a²"
    dot = da.to_dot()
    assert "∂J/∂a = 2*a*b" in dot and "J = " not in dot.replace("∂J/∂a = ", "")


def test_check_method():
    f = exprgrad.parse("mean((a*x + b - y)^2)")
    results = f.check({"a": 2, "b": 1}, {"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 4.0]}, wrt="a,b,x")
    assert [r.name for r in results] == ["a", "b", "x"] and all(r.ok for r in results)
    assert exprgrad.parse("log(a)").check({"a": -1})[0].status == "not finite"
    with pytest.raises(ArgumentError, match="^tol: "):
        f.check({"a": 2, "b": 1}, {"x": [0.0], "y": [1.0]}, tol=float("nan"))


def test_names_sort_naturally_everywhere(runner):
    from exprgrad.cli import cli
    from exprgrad.names import natural_key

    names = ["w10", "w2", "w1", "theta[10]", "theta[2]", "x_10", "x_9", "W[1,10]", "W[1,2]", "w01"]
    assert sorted(names, key=natural_key) == [
        "W[1,2]",
        "W[1,10]",
        "theta[2]",
        "theta[10]",
        "w01",
        "w1",
        "w2",
        "w10",
        "x_9",
        "x_10",
    ]
    f = exprgrad.parse("w10*x + w2*x + w1")
    assert f.params == ["w1", "w2", "w10", "x"]
    assert list(f.grad()) == ["w1", "w2", "w10", "x"]
    diff = runner.invoke(cli, ["diff", "w10*x + w2*x + w1", "--ascii"]).output.splitlines()
    assert [line.split(" = ")[0] for line in diff] == ["d/dw1", "d/dw2", "d/dw10", "d/dx"]
    grad = runner.invoke(
        cli, ["eval", "w10*x + w2*x + w1", "--at", "w10=1,w2=2,w1=3,x=1", "--grad", "--format", "json"]
    ).output
    assert list(__import__("json").loads(grad)["gradient"]) == ["w1", "w2", "w10", "x"]
    check = runner.invoke(cli, ["check", "w10*x + w2*x + w1", "--at", "w10=1,w2=2,w1=3,x=1"]).output
    assert [line.split()[0] for line in check.splitlines()[1:]] == ["w1", "w2", "w10", "x"]


def test_data_may_be_any_table_with_keys():
    class Table:  # what a pandas DataFrame offers: keys() and [name]
        def keys(self):
            return ["x", "y"]

        def __getitem__(self, name):
            return {"x": np.array([1.0, 2.0]), "y": np.array([3.0, 5.0])}[name]

    assert exprgrad.parse("mean(a*x - y)").evaluate(Table(), a=2) == -1.0
