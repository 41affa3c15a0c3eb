"""Lowering: names, definitions, families, calls and arity against the registry."""

from __future__ import annotations

import pytest

from exprgrad import build, graph, ops
from exprgrad.errors import ArityError, NameResolutionError
from exprgrad.function import parse


def test_parameters_and_presumed_columns():
    f = parse("mean((a*x + b - y)^2)")
    assert f.params == ["a", "b"]
    assert f.columns == ["x", "y"]


def test_without_reduction_every_name_is_a_parameter():
    assert parse("sin(x)^2").params == ["x"]


def test_columns_given_decide_exactly():
    f = parse("mean((w*u - v)^2)", columns=["u", "v"])
    assert f.params == ["w"] and f.columns == ["u", "v"]


def test_definitions_in_any_order_are_shared():
    f = parse("J = mean((h - y)^2); h = a*x + b; J")
    g = parse("mean((a*x + b - y)^2)")
    assert f.output is g.output


def test_families_and_indexed_names():
    f = parse("theta[0] + theta[1]*t + theta[10]")
    assert f.params == ["t", "theta[0]", "theta[1]", "theta[10]"]


def test_unicode_names_and_constants():
    f = parse("θ0*cos(pi*α) + e")
    assert f.params == ["α", "θ0"]
    assert any(n.name == "pi" for n in graph.toposort([f.output]) if n.is_const)


def test_user_definition_shadows_constant():
    assert parse("e = 2; e*x").output is build.mul(build.const(2), graph.var("x"))


def test_long_sum_is_one_n_ary_node():
    text = " + ".join(f"a{i}*x" for i in range(2000))
    f = parse(text)
    assert f.output.op is ops.ADD and len(f.output.inputs) == 2000


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("sinn(x)", NameResolutionError, "unknown function 'sinn'; did you mean 'sin'?"),
        ("atan2(x)", ArityError, "atan2() takes 2 arguments, got 1"),
        ("sin(x, y)", ArityError, "sin() takes 1 argument, got 2"),
        ("h = h + 1; h", NameResolutionError, "the definition of 'h' refers to itself"),
        ("f = g*2; g = f + 1; f", NameResolutionError, "definitions refer to each other in a circle"),
        ("h = 1; h = 2; h", NameResolutionError, "'h' is defined twice"),
        ("theta + theta[1]", NameResolutionError, "used both as a plain name and as a family"),
        ("h = x; h(2)", NameResolutionError, "'h' is a definition, not a function"),
        ("sin + 1", NameResolutionError, "'sin' is a function"),
        ("__import__(x)", NameResolutionError, "unknown function '__import__'"),
    ],
)
def test_name_errors_say_what_is_wrong(text, error, message):
    with pytest.raises(error) as caught:
        parse(text)
    assert message in str(caught.value)
    assert caught.value.line == 1 and caught.value.column is not None


def test_unknown_function_error_points_at_the_name():
    with pytest.raises(NameResolutionError) as caught:
        parse("a + sinn(x)")
    assert caught.value.column == 5
    assert str(caught.value).splitlines()[-1] == "      ^^^^"


def test_deep_nesting_lowers_without_recursion():
    f = parse("(" * 10000 + "x" + ")" * 10000)
    assert f.output is graph.var("x")
    g = parse("sin(" * 10000 + "x" + ")" * 10000)
    assert graph.count_nodes([g.output]) == 10001


@pytest.mark.parametrize(
    "text, error, message",
    [
        ("sinn(x) + atan2(x)", NameResolutionError, "unknown function 'sinn'"),
        ("atan2(x) + sinn(x)", ArityError, "atan2() takes 2 arguments, got 1"),
        ("sin + sinn(x)", NameResolutionError, "'sin' is a function"),
        ("sinn(sin)", NameResolutionError, "'sin' is a function"),
    ],
)
def test_the_first_problem_in_the_text_is_reported(text, error, message):
    with pytest.raises(error) as caught:
        parse(text)
    assert message in str(caught.value)


def test_signs_and_divisions_in_long_chains():
    f = parse("a - b + c - d")
    assert f.output is build.sub(
        build.add(*(graph.var(n) for n in "ac")), build.add(*(graph.var(n) for n in "bd"))
    )
    g = parse("a / b * c / d")
    assert g.output is build.div(
        build.mul(*(graph.var(n) for n in "ac")), build.mul(*(graph.var(n) for n in "bd"))
    )


@pytest.mark.slow
def test_a_hundred_thousand_operators_lower_to_shared_nodes():
    # The workload of benchmarks/bench_eval.py: 33,333 terms a*sin(x + i).
    f = parse(" + ".join(f"a{i % 50}*sin(x{i % 7} + {i})" for i in range(33_333)))
    assert f.output.op is ops.ADD and len(f.output.inputs) == 33_333
    assert graph.count_nodes([f.output]) == 133_388  # 50 + 7 names, each one node
    assert len(f.params) == 57


# ---------------------------------------------------------------- look-alike names


@pytest.mark.parametrize(
    ("text", "first", "second"),
    [
        ("ﬁ + fi", "fi", "ﬁ"),
        ("x*2 + ｘ", "ｘ", "x"),
        ("ℌ = 1; H + ℌ", "H", "ℌ"),
        ("a[1] + ａ[1]", "ａ[1]", "a[1]"),
    ],
)
def test_names_that_differ_only_by_compatibility_forms_are_refused(text, first, second):
    with pytest.raises(NameResolutionError, match="look alike") as caught:
        parse(text)
    err = caught.value
    assert f"'{first}'" in err.message and f"'{second}'" in err.message
    assert text.split("\n")[err.line - 1][err.column - 1 :].startswith(first)


def test_a_name_that_looks_like_a_data_column_is_refused():
    with pytest.raises(NameResolutionError, match="the data column 'x'"):
        parse("mean(ｘ - y)", columns=["x", "y"])
    # Look-alike columns the expression does not use are no concern of it.
    assert parse("mean(x)", columns=["x", "ﬁ", "fi"]).columns == ["x"]


def test_decomposed_and_composed_accents_are_one_name():
    f = parse("r\u00e9sum\u00e9 * 2 + re\u0301sume\u0301")
    assert f.params == ["r\u00e9sum\u00e9"]
    assert f.evaluate(résumé=1.5) == 4.5


def test_a_fullwidth_function_name_suggests_the_function():
    with pytest.raises(NameResolutionError, match="did you mean 'exp'"):
        parse("ｅｘｐ(a)")


def test_a_whole_number_order_is_required():
    with pytest.raises(ArityError, match="order: a whole number"):
        parse("polygamma(0.5, a)")


def test_generated_python_keeps_a_look_alike_name_apart_from_its_own_names():
    # Python reads ｎ as n, the row count of the generated function.
    import numpy as np

    f = parse("sum(ｎ*x) + np", columns=["x"])
    namespace: dict = {}
    exec(f.python(), namespace)  # noqa: S102 (exprgrad's own output)
    data = {"x": np.array([1.0, 2.0, 4.0])}
    assert namespace["f"]({"ｎ": 3.0, "np": 0.5}, data) == f.evaluate(data, **{"ｎ": 3.0, "np": 0.5}) == 21.5  # noqa: PIE804 (a keyword ｎ is n)


def test_a_data_column_named_in_decomposed_form_is_found(runner, tmp_path):
    import numpy as np

    from exprgrad.cli import cli

    decomposed = "e\u0301"
    f = parse("sum(2*\u00e9)", columns=[decomposed, "y"])
    assert (
        f.columns == [decomposed] and f.evaluate({decomposed: np.array([1.0, 2.0]), "y": np.zeros(2)}) == 6.0
    )
    data = tmp_path / "accents.csv"
    data.write_text(f"{decomposed},y\n1,2\n3,4\n", encoding="utf-8")
    result = runner.invoke(cli, ["eval", "sum(\u00e9*y)", "--data", str(data)])
    assert result.exit_code == 0 and result.stdout == "14\n", result.output
