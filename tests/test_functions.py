"""The special functions, logsumexp, comparisons and where: values against scipy and math,
derivatives against finite differences, every printed form, and scipy imported only when used."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest
from helpers import assert_close, numeric_partial
from scipy import special

from exprgrad import build, graph, ops
from exprgrad.backends.evaluate import evaluate
from exprgrad.backends.latex import to_latex
from exprgrad.backends.printing import to_text
from exprgrad.backends.python_source import to_python
from exprgrad.cli import cli
from exprgrad.errors import ArityError, ExprSyntaxError
from exprgrad.function import parse
from exprgrad.passes.diff import diff

x = graph.var("x", per_row=True)
a, b, c = graph.var("a"), graph.var("b"), graph.var("c")

# Points over each function's domain, far tails included, and the reference.
SPECIAL = {
    "erf": (special.erf, [-30.0, -3.0, -0.5, 0.0, 1e-12, 0.7, 2.5, 6.0]),
    "erfc": (special.erfc, [-6.0, -0.5, 0.0, 0.7, 5.0, 26.0]),
    "normcdf": (special.ndtr, [-38.0, -8.0, -1.0, 0.0, 0.3, 4.0, 9.0]),
    "lognormcdf": (special.log_ndtr, [-1e4, -40.0, -8.0, -1.0, 0.0, 2.0, 9.0, 40.0]),
    "lgamma": (np.vectorize(math.lgamma), [1e-8, 0.3, 1.0, 2.0, 7.5, 150.0, 1e6, -0.5, -2.5]),
    "digamma": (special.psi, [1e-3, 0.3, 1.0, 2.0, 7.5, 1e5, -0.5, -2.5]),
}


@pytest.mark.parametrize("name", sorted(SPECIAL))
def test_special_function_values(name):
    reference, points = SPECIAL[name]
    values = np.array(points)
    got = evaluate([build.call(name, x)], {}, {"x": values})[0]
    np.testing.assert_allclose(got, reference(values), rtol=1e-14, atol=0)


def test_lognormcdf_is_accurate_far_in_the_lower_tail():
    # log Phi(x) = -x^2/2 - log(-x) - log(2 pi)/2 + log(1 - 1/x^2 + 3/x^4 - ...)
    for point in (-40.0, -200.0, -1e4):
        series = -(point**2) / 2 - math.log(-point) - math.log(2 * math.pi) / 2
        series += math.log1p(-1 / point**2 + 3 / point**4 - 15 / point**6 + 105 / point**8 - 945 / point**10)
        got = parse("lognormcdf(t)").evaluate(t=point)
        assert got == pytest.approx(series, rel=1e-14)
    assert parse("normcdf(t)").evaluate(t=-40.0) == special.ndtr(-40.0)


def test_lognormcdf_derivative_stays_finite_in_the_tail():
    # d/dx log Phi(x) = phi(x)/Phi(x), the inverse Mills ratio: about -x for x -> -inf.
    slope = parse("lognormcdf(t)").diff("t")
    for point in (-40.0, -200.0):
        mills = -point / (1 - 1 / point**2 + 3 / point**4 - 15 / point**6 + 105 / point**8)
        assert slope.evaluate(t=point) == pytest.approx(mills, rel=1e-11)
    assert slope.evaluate(t=40.0) == 0.0
    assert slope.evaluate(t=0.0) == pytest.approx(2 / math.sqrt(2 * math.pi), rel=1e-15)


def test_polygamma_values_and_orders():
    values = np.array([0.3, 1.0, 2.5, 40.0, -0.5])
    for order in (0, 1, 2, 3):
        node = build.call("polygamma", build.const(order), x)
        got = evaluate([node], {}, {"x": values})[0]
        np.testing.assert_allclose(got, special.polygamma(order, values), rtol=1e-13)
    assert math.isnan(parse("polygamma(-1, t)").evaluate(t=2.0))


def test_logsumexp_is_stable_and_variadic():
    cases = [
        (1.0, 2.0),
        (1000.0, 1000.0),
        (-1000.0, -1001.0, -1002.0),
        (0.0, -math.inf),
        (-math.inf, -math.inf),
        (math.inf, 3.0),
        (1e308, 1e308),
        (0.5, -0.25, 2.0, 3.5, -7.0),
    ]
    for args in cases:
        names = [f"u{i}" for i in range(len(args))]
        f = parse(f"logsumexp({', '.join(names)})")
        expected = special.logsumexp(args)
        got = f.evaluate(**dict(zip(names, args)))
        assert got == pytest.approx(expected, rel=1e-15, abs=0) or got == expected, args


def test_logsumexp_derivatives_are_softmax_weights():
    grads = parse("logsumexp(a, b, c)").grad(["a", "b", "c"])
    got = [grads[n].evaluate(a=1000.0, b=999.0, c=-5.0) for n in "abc"]
    # from the differences, exact: exp(x_i - logsumexp) would carry the rounding of 1000.31...
    weights = [
        1 / (1 + np.exp(-1.0) + np.exp(-1005.0)),
        1 / (1 + np.exp(1.0) + np.exp(-1004.0)),
        np.exp(-1005.0),
    ]
    np.testing.assert_allclose(got, weights, rtol=2e-16)


@pytest.mark.parametrize("values", [(1000.0, 1000.0, -1000.0), (-800.0, -800.0, -800.0), (1e6, 1e6 - 1, 0.0)])
def test_logsumexp_weights_are_exact_for_large_inputs(values):
    grads = parse("logsumexp(a, b, c)").grad(["a", "b", "c"])
    got = [grads[n].evaluate(**dict(zip("abc", values))) for n in "abc"]
    x = np.array(values)
    exact = [1 / np.sum(np.exp(x - xi)) for xi in x]
    np.testing.assert_allclose(got, exact, rtol=4e-16)
    assert sum(got) == pytest.approx(1.0, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("x > 0", [0.0, 0.0, 1.0, 0.0]),
        ("x >= 0", [0.0, 1.0, 1.0, 0.0]),
        ("x < 0", [1.0, 0.0, 0.0, 0.0]),
        ("x <= 0", [1.0, 1.0, 0.0, 0.0]),
        ("x == 0", [0.0, 1.0, 0.0, 0.0]),
        ("x != 0", [1.0, 0.0, 1.0, 1.0]),
    ],
)
def test_comparisons_give_one_or_zero(text, values):
    # nan compares false, and != true, as in IEEE arithmetic.
    got = parse(text, columns=["x"]).evaluate({"x": np.array([-1.0, 0.0, 2.0, math.nan])})
    assert list(got) == values


def test_comparison_results_add_as_numbers():
    # numpy would add two bool arrays as a logical or; a count needs numbers.
    f = parse("sum((x > 0) + (x > 1))", columns=["x"])
    assert f.evaluate({"x": np.array([0.5, 2.0, 3.0, -1.0])}) == 5.0


def test_comparisons_bind_looser_than_sums():
    assert parse("x + 1 > y*2").output is build.call(
        "gt", build.add(graph.var("x"), build.ONE), build.mul(graph.var("y"), build.const(2))
    )
    assert parse("-a >= b - 1").output is build.call("ge", build.neg(a), build.sub(b, build.ONE))
    assert parse("(a < b)*c").output is build.mul(build.call("lt", a, b), c)
    assert parse("h = a == b; h + 1").output is build.add(build.call("eq", a, b), build.ONE)
    assert parse("3 > 2").output is build.ONE


@pytest.mark.parametrize("text", ["a < b < c", "a == b != c", "f = a <= b >= c\nf", "where(a < b > c, 1, 2)"])
def test_chained_comparisons_are_refused_with_a_caret(text):
    with pytest.raises(ExprSyntaxError, match="comparisons do not chain") as info:
        parse(text)
    err = info.value
    line = text.split("\n")[err.line - 1]
    assert line[err.column - 1 : err.column - 1 + err.width] in ("<", ">", "<=", ">=", "==", "!=")
    assert str(err).splitlines()[-1].strip().startswith("^")


def test_parenthesized_comparisons_compose():
    f = parse("(a < b) < c")
    assert f.evaluate(a=1, b=2, c=0.5) == 0.0 and f.evaluate(a=1, b=2, c=2) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a ≤ b", "write <= for less or equal"),
        ("a ! b", "write != for not equal"),
        ("x >", "after '>'"),
        ("a =< b", "expected an expression after '='"),
    ],
)
def test_comparison_mistakes_are_explained(text, message):
    with pytest.raises(ExprSyntaxError, match=message):
        parse(text)


def test_where_picks_a_branch_and_nan_conditions_give_nan():
    f = parse("where(x, 10 + x, -1)", columns=["x"])
    got = f.evaluate({"x": np.array([0.0, 2.0, -3.0, math.nan])})
    assert list(got[:3]) == [-1.0, 12.0, 7.0] and math.isnan(got[3])
    assert parse("where(1, a, b)").output is a and parse("where(0, a, b)").output is b


def test_where_derivatives_go_to_the_chosen_branch():
    slope = parse("where(a > 0, a^2, 3*a)").diff("a")
    assert slope.evaluate(a=2.0) == 4.0 and slope.evaluate(a=-2.0) == 3.0
    d = diff(parse("where(x > 0, a*x, b)", columns=["x"]).output, [a, b, x])
    assert to_text(d["a"]) == "where(x > 0, x, 0)"
    assert to_text(d["b"]) == "where(x > 0, 0, 1)"
    assert to_text(d["x"]) == "where(x > 0, a, 0)"


def test_polygamma_order_must_be_a_whole_number():
    for text in ("polygamma(1.5, x)", "polygamma(pi, x)"):
        with pytest.raises(ArityError, match="whole number") as info:
            parse(text)
        assert info.value.column == 11
    assert parse("polygamma(2 - 1, t)").output is build.call("polygamma", build.ONE, graph.var("t"))


def test_logsumexp_needs_two_arguments():
    with pytest.raises(ArityError, match="2 or more arguments, got 1"):
        parse("logsumexp(a)")


# ---------------------------------------------------------------- derivatives


# (text, point): every new function, through parse, gradient and finite differences.
CASES = [
    ("erf(2*a - 1)", {"a": 0.3}),
    ("erfc(a^2)", {"a": 0.8}),
    ("normcdf(a*b)", {"a": 0.7, "b": -1.3}),
    ("lognormcdf(a - b)", {"a": -3.0, "b": 2.0}),
    ("lgamma(a + b)", {"a": 2.5, "b": 0.3}),
    ("digamma(a*b)", {"a": 1.5, "b": 2.0}),
    ("polygamma(2, a)", {"a": 1.7}),
    ("logsumexp(a, 2*b, a*b)", {"a": 0.4, "b": -1.1}),
    ("where(a - b, a^3, b^2)", {"a": 1.2, "b": 0.2}),
    ("(a > b)*a^2 + (a <= b)*b", {"a": 0.5, "b": 0.2}),
]


@pytest.mark.parametrize(("text", "point"), CASES)
def test_first_and_second_derivatives_match_differences(text, point):
    f = parse(text)
    first = diff(f.output, [graph.var(n) for n in point])
    for name, node in first.items():
        assert_close(
            evaluate([node], point)[0],
            numeric_partial(f.output, name, point),
            rtol=1e-6,
            message=f"d/d{name} {text}",
        )
        for other, second in diff(node, [graph.var(n) for n in point]).items():
            assert_close(
                evaluate([second], point)[0],
                numeric_partial(node, other, point),
                rtol=1e-5,
                atol=1e-6,
                message=f"d2/d{name}d{other} {text}",
            )


@pytest.mark.parametrize(
    ("cost", "at"),
    [
        # Poisson, with its normalizing term
        ("mean(exp(a + b*x) - y*(a + b*x) + lgamma(y + 1))", "a=0.2,b=0.4"),
        # negative binomial with dispersion r
        (
            (
                "mean(-(lgamma(y + r) - lgamma(r) - lgamma(y + 1) + r*log(r/(r + exp(a + b*x))) "
                "+ y*log(exp(a + b*x)/(r + exp(a + b*x)))))"
            ),
            "a=0.2,b=0.4,r=2.5",
        ),
        # gamma with shape k
        (
            "mean(lgamma(k) + k*(a + b*x) + y*exp(-(a + b*x))*k - (k - 1)*log(y) - k*log(k))",
            "a=0.2,b=0.4,k=1.7",
        ),
        # probit
        ("mean(-y*lognormcdf(a + b*x) - (1 - y)*lognormcdf(-(a + b*x)))", "a=0.2,b=0.4"),
    ],
)
def test_check_agrees_on_full_likelihoods(runner, tmp_path, cost, at):
    data = tmp_path / "counts.csv"
    data.write_text("x,y\n0.1,1\n0.5,0.5\n1.2,2\n2.0,1\n2.4,3\n")
    result = runner.invoke(cli, ["check", cost, "--at", at, "--data", str(data), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and set(report["partials"]) == set(at.replace("=", ",").split(",")[::2])


# ---------------------------------------------------------------- printing

FORMS = [
    # (text, LaTeX)
    ("erf(a)", r"\operatorname{erf}\left(a\right)"),
    ("erfc(a)", r"\operatorname{erfc}\left(a\right)"),
    ("normcdf(a)", r"\Phi\left(a\right)"),
    ("lognormcdf(a)", r"\log\Phi\left(a\right)"),
    ("lgamma(a)", r"\log\Gamma\left(a\right)"),
    ("digamma(a)", r"\psi\left(a\right)"),
    ("polygamma(1, a)", r"\psi^{(1)}\left(a\right)"),
    ("logsumexp(a, b, c)", r"\log\sum\exp\left(a, b, c\right)"),
    ("where(a > 0, b, c)", r"\begin{cases} b & \text{if } a > 0 \\ c & \text{otherwise} \end{cases}"),
    ("a + 1 > b", "a + 1 > b"),
    ("a >= b", r"a \geq b"),
    ("a < b", "a < b"),
    ("a <= b", r"a \leq b"),
    ("a == b", "a = b"),
    ("a != b", r"a \neq b"),
    ("(a < b)*c", r"c \left(a < b\right)"),
    ("-(a < b)", r"-\left(a < b\right)"),
    ("(a < b) < c", r"\left(a < b\right) < c"),
]


@pytest.mark.parametrize(("text", "latex"), FORMS)
def test_text_prints_back_and_latex(text, latex):
    node = parse(text).output
    printed = to_text(node)
    assert parse(printed).output is node, printed
    assert to_latex(node) == latex


def test_text_of_every_new_function_is_its_name():
    assert to_text(parse("c*(a < b)").output) == "c*(a < b)"
    assert to_text(parse("logsumexp(a, b, c, a*b)").output) == "logsumexp(a, b, c, a*b)"
    assert to_text(parse("where(a != 0, b, c) + 1").output) == "where(a != 0, b, c) + 1"


SOURCES = [
    "erf(x) + erfc(x) + normcdf(x) + lognormcdf(x)",
    "lgamma(abs(x) + 0.1) + digamma(abs(x) + 0.1) + polygamma(2, abs(x) + 0.1)",
    "logsumexp(x, 2*x, a) + logsumexp(a, -x)",
    "where(x > 0, sqrt(x), a) + (x >= a) - (x < 0.5)*(x <= 1) + (x == 0) + (x != a)",
    "sum((x > 0) + (x > 1)) + mean(where(x, 1, 2))",
]


@pytest.mark.parametrize("text", SOURCES)
def test_python_source_agrees_with_the_evaluator_bit_for_bit(text, rng):
    f = parse(text, columns=["x"])
    values = np.concatenate([rng.normal(0.0, 3.0, 200), [0.0, 1.0, 0.5, -40.0, math.nan, math.inf]])
    namespace: dict = {}
    exec(compile(to_python({"f": f.output}), "<generated>", "exec"), namespace)  # noqa: S102 (our own output)
    with np.errstate(all="ignore"):
        generated = namespace["f"]({"a": 0.25}, {"x": values})
    expected = evaluate([f.output], {"a": 0.25}, {"x": values})[0]
    np.testing.assert_array_equal(np.broadcast_to(generated, np.shape(expected)), expected)


# ---------------------------------------------------------------- scipy, lazily

_PROBE = (
    "import sys\nfrom exprgrad.cli import cli\n"
    "try:\n    cli(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('scipy' in sys.modules)"
)


def _imports_scipy(*args: str) -> tuple[bool, str]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, check=True)
    *printed, flag = done.stdout.strip().splitlines()
    return flag == "True", "\n".join(printed)


def test_plain_expressions_never_import_scipy():
    assert _imports_scipy("eval", "x^2", "--at", "x=3") == (False, "9")
    imported, _ = _imports_scipy("diff", "where(x > 0, x^2, -x) + logsumexp(x, 1)")
    assert not imported
    # Printing derivatives of the special functions evaluates nothing.
    imported, printed = _imports_scipy("diff", "erf(x)*lgamma(x) + lognormcdf(x)")
    assert not imported and "digamma(x)" in printed


def test_special_functions_import_scipy_when_evaluated():
    imported, printed = _imports_scipy("eval", "erf(x)", "--at", "x=0.5")
    assert imported and float(printed) == pytest.approx(math.erf(0.5), rel=1e-15)


def test_a_power_of_a_comparison_is_the_comparison():
    assert parse("(a > b)^2").output is parse("a > b").output
    assert parse("(a > b)^0.5").output is parse("a > b").output
    assert parse("(a > b)^-1").output is not parse("a > b").output  # 1/0 where it is false


@pytest.mark.parametrize(
    "text, x, first, second",
    [
        ("where(x > 0, sqrt(x), 0)", -1.0, 0.0, 0.0),
        ("where(x > 0, sqrt(x), 0)", 4.0, 0.25, -1 / 32),
        ("where(x < 0, 0, log(x))", -2.0, 0.0, 0.0),
        ("where(x > 0, sqrt(x), x^2)", -3.0, -6.0, 2.0),
        ("where(x > 0, 0, sqrt(-x))*3", 4.0, 0.0, 0.0),
        ("a*where(x > 0, log(x), 0) + 1", -1.0, 0.0, 0.0),
        ("where(x > 0, sqrt(x), 0)/(x + 2)", -1.0, 0.0, 0.0),
        ("where(x > 1, where(x > 2, sqrt(x - 2), 0), 0)", 1.5, 0.0, 0.0),
    ],
)
def test_the_branch_not_taken_never_reaches_a_derivative(text, x, first, second):
    f = parse(text)
    slope = f.diff("x")
    assert slope.evaluate(x=x, a=2.0) == pytest.approx(first, abs=0)
    assert slope.diff("x").evaluate(x=x, a=2.0) == pytest.approx(second, abs=0)


def test_where_derivative_prints_as_a_where():
    assert to_text(parse("where(x > 0, sqrt(x), 0)").diff("x").output) == "where(x > 0, 1/(2*sqrt(x)), 0)"
    assert to_text(parse("where(x > 0, a*x, b*x)").diff("x").output) == "where(x > 0, a, b)"
    assert to_text(parse("(a < b)*c").output) == "c*(a < b)"  # a product the user wrote stays theirs


def test_readme_language_section_names_every_function():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## The language") :]
    section = section[: section.index("\n## ", 1)]
    for name in ops.function_names():
        assert f"`{name}" in section or f" {name} " in section or f" {name}`" in section, name
    for spec in ops.OPS.values():
        if spec.boolean:
            assert f"`x {spec.text} " in section, spec.text


@pytest.mark.parametrize(
    ("text", "point", "stable"),
    [
        ("log(normcdf(z))", -40.0, "lognormcdf(z)"),
        ("log(1 - normcdf(z))", 40.0, "lognormcdf(-z)"),
        ("1 - normcdf(z)", 10.0, "normcdf(-z)"),
        ("1 - erf(z)", 10.0, "erfc(z)"),
        ("1 - erfc(z)", 1e-20, "erf(z)"),
    ],
)
def test_tails_are_built_in_their_accurate_form(text, point, stable):
    # Written the textbook way, each rounds to 0 (or log(0) = -inf) in the tail.
    f = parse(text)
    assert f.output is parse(stable).output
    value = f.evaluate(z=point)
    assert math.isfinite(value) and value != 0.0
    assert value == parse(stable).evaluate(z=point)


def test_probit_cross_entropy_written_with_log_normcdf_stays_finite():
    cost = parse("-y*log(normcdf(w*x)) - (1 - y)*log(1 - normcdf(w*x))")
    assert cost.evaluate(w=40.0, x=1.0, y=0.0) == pytest.approx(804.6084420137539, rel=1e-15)
    assert cost.diff("w").evaluate(w=40.0, x=1.0, y=0.0) == pytest.approx(40.02496884721, rel=1e-10)


def _mills_reference(x: float) -> tuple[float, float]:
    """phi(x)/Phi(x) and its derivative, at 60 digits."""
    with mpmath.workdps(60):
        X = mpmath.mpf(x)
        r = mpmath.npdf(X) / (mpmath.erfc(-X / mpmath.sqrt(2)) / 2)
        return float(r), float(-r * (X + r))


@pytest.mark.parametrize("x", [-1e4, -1000.0, -40.0, -30.5, -29.5, -8.0, -1.0, 0.0, 3.0, 9.0])
def test_lognormcdf_derivatives_are_accurate_everywhere(x):
    f = parse("lognormcdf(x)")
    first = f.diff("x")
    second = first.diff("x")
    r, d = _mills_reference(x)
    assert first.evaluate(x=x) == pytest.approx(r, rel=1e-14)
    assert second.evaluate(x=x) == pytest.approx(d, rel=1e-12)


@pytest.mark.parametrize("x", [-1e150, -1e160, -1e300])
def test_lognormcdf_derivatives_far_in_the_lower_tail(x):
    first = parse("lognormcdf(x)").diff("x")
    assert first.evaluate(x=x) == pytest.approx(-x, rel=1e-14)
    assert first.diff("x").evaluate(x=x) == pytest.approx(-1.0, rel=1e-14)


def test_lognormcdf_derivatives_vanish_smoothly_above():
    first = parse("lognormcdf(x)").diff("x")
    values = [first.evaluate(x=x) for x in (10.0, 20.0, 38.0, 40.0, 1e300)]
    assert all(math.isfinite(v) and v >= 0 for v in values) and values[-1] == 0.0
    assert first.diff("x").evaluate(x=40.0) == 0.0
