"""printing: golden text for graphs built with the builders, the let-form, round trips."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    a,
    add,
    b,
    big,
    c,
    call,
    div,
    evaluate,
    k,
    mul,
    neg,
    pow_,
    residual,
    shared,
    sin_chain,
    sub,
    values_agree,
    w,
    x,
    y,
)
from hypothesis import HealthCheck, given, settings
from strategies import expressions, points

from exprgrad import build, graph, ops
from exprgrad.backends.printing import LET_MIN_CHARS, program_text, to_text, to_text_many
from exprgrad.errors import LimitError, OptionError
from exprgrad.lower import lower
from exprgrad.parsing import parse
from exprgrad.passes.simplify import simplify

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
    assert to_text(graph.apply(ops.MUL, [a, neg(b)])) == "a*(-b)"
    assert to_text(graph.apply(ops.SUB, [a, k(-2)])) == "a - (-2)"


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
    assert to_text(mul(build.named_const("pi"), k(2), b)) == "2*pi*b"
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
    assert to_text(build.named_const("pi")) == "pi"
    assert to_text(build.named_const("e")) == "e"
    assert to_text(graph.var("theta[1]")) == "theta[1]"
    assert to_text(graph.var("θ")) == "θ"
    assert to_text(call("sum", build.ONE)) == "sum(1)"
    assert to_text(call("atan2", a, b)) == "atan2(a, b)"


def test_text_of_simplified_derivatives():
    assert to_text(simplify(mul(k(2), x, residual))) == "2*x*(a*x + b - y)"
    assert to_text(simplify(call("mean", mul(k(2), x, residual)))) == "2*mean(x*(a*x + b - y))"


# ---------------------------------------------------------------- let-form


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


def test_let_names_are_the_users_own_definition_names():
    import exprgrad

    f = exprgrad.parse(
        "h1 = tanh(w1*x + b1); out = sigmoid(w2*h1 + b2); unused = 2*b1; mean((out - y)^2)",
        columns=["x", "y"],
    )
    assert list(f.definitions) == ["h1", "out", "unused"]
    grads = {name: g.output for name, g in f.grad().items()}
    lets, results = to_text_many(grads, let="always", names=f.definitions)
    names = [name for name, _ in lets]
    assert "h1" in names and "out" in names
    assert ("h1", "tanh(w1*x + b1)") in lets
    temporaries = [name for name in names if name not in f.definitions]
    assert temporaries == [f"t{i}" for i in range(1, len(temporaries) + 1)]  # t1, t2, ... without gaps
    program = program_text(lets, results["w2"])
    columns = {"x": np.array([0.5, -1.0]), "y": np.array([0.2, 0.9])}
    params = {"w1": 0.3, "b1": -0.2, "w2": 1.1, "b2": 0.4}
    again = lower(parse(program), ["x", "y"])
    assert evaluate([again], params, columns)[0] == pytest.approx(evaluate([grads["w2"]], params, columns)[0])


def test_users_names_never_clash_with_variables_or_temporaries():
    shared = call("sin", add(mul(a, x), b))
    node = add(mul(shared, shared), call("cos", call("exp", add(a, b, c))))
    twice = call("exp", add(a, b, c))
    both = {"f": node, "g": mul(twice, twice)}
    # "a" is a variable: not a let name; "t1" is taken: temporaries become t_1, ...
    lets, _ = to_text_many(both, let="always", names={"a": shared, "t1": twice})
    names = [name for name, _ in lets]
    assert "a" not in names and "t1" in names
    assert all(name == "t1" or name.startswith("t_") for name in names)


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


# ---------------------------------------------------------------- deep graphs


def test_deep_chains_print_without_recursion():
    text = to_text(sin_chain(10_000))
    assert text == "sin(" * 10_000 + "a" + ")" * 10_000


# ---------------------------------------------------------------- properties


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


def test_diff_command_names_shared_definitions_in_every_format(runner):
    from exprgrad.cli import cli

    expr = "h1 = tanh(w1*x + b1); out = sigmoid(w2*h1 + b2); mean((out - y)^2)"
    text = runner.invoke(cli, ["diff", expr, "--let", "always"])
    assert text.exit_code == 0, text.output
    assert "h1 = tanh(w1*x + b1)" in text.output.splitlines()
    assert any(line.startswith("out = sigmoid(") for line in text.output.splitlines())
    latex = runner.invoke(cli, ["diff", expr, "--let", "always", "--format", "latex"])
    assert latex.exit_code == 0 and r"h_{1} = \tanh" in latex.output
    source = runner.invoke(cli, ["diff", expr, "--format", "python"])
    assert source.exit_code == 0 and "    h1 = np.tanh(" in source.output
    namespace: dict = {}
    exec(compile(source.output, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    params = {"w1": 0.3, "b1": -0.2, "w2": 1.1, "b2": 0.4}
    data = {"x": np.array([0.5, -1.0]), "y": np.array([0.2, 0.9])}
    got = namespace["derivatives"](params, data)
    f = lower(parse(expr), ["x", "y"])
    assert got["value"] == pytest.approx(evaluate([f], params, data)[0])


@pytest.mark.parametrize(
    "text",
    [
        "b + a*x",
        "a*x + b",
        "c + b*x + a*x^2",
        "y - b - a*x",
        "sin(b) + a*x - y",
        "mean((b + a*x - y)^2) + c^2",
    ],
)
def test_sums_keep_the_order_their_terms_were_written_in(text):
    import exprgrad

    f = exprgrad.parse(text, columns=["x", "y"])
    assert str(f) == text
    again = lower(parse(str(f)), ["x", "y"])
    assert again is f.output


def test_written_order_reaches_derivatives_and_two_term_python_sums(runner):
    import exprgrad
    from exprgrad.cli import cli

    result = runner.invoke(cli, ["diff", "mean((b + a*x - y)^2)", "--wrt", "a"])
    assert result.exit_code == 0 and "∂/∂a = 2*mean(x*(b + a*x - y))" in result.output
    source = exprgrad.parse("a*x + b", columns=["x"]).python()
    assert "return a * x + b" in source
    assert exprgrad.parse("c + b*x + a*x^2", columns=["x"]).latex() == "c + b x + a {x}^{2}"


@pytest.mark.parametrize(
    ("text", "wrt", "printed"),
    [
        ("b*x + a*x", "x", "b + a"),  # the terms' sources b*x, a*x in the order written
        ("a*x + b*x", "x", "a + b"),
        ("c*x + b*x + a*x", "x", "c + b + a"),
        ("x^2 + a*x", "x", "2*x + a"),  # textbook order would put a first
        ("a*x + x^2", "x", "a + 2*x"),
        ("y*c + x*y^2", "y", "c + 2*x*y"),  # y is used first, in c's term: the term ranks by x
        ("sin(b*x + a*x)", "x", "b*cos(b*x + a*x) + a*cos(b*x + a*x)"),  # the shared factor does not count
        ("h = b*x + a*x\nh^2", "x", "2*b*(b*x + a*x) + 2*a*(b*x + a*x)"),  # a definition's terms
        ("x + x^3", "x", "3*x^2 + 1"),  # the 1 holds no variable of the text: textbook order
    ],
)
def test_sums_built_by_diff_follow_the_written_order_of_their_sources(runner, text, wrt, printed):
    import exprgrad
    from exprgrad.cli import cli

    f = exprgrad.parse(text)
    assert str(f.diff(wrt)) == printed  # the Python API
    result = runner.invoke(cli, ["diff", text, "--wrt", wrt, "--let", "never"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].endswith(f" = {printed}"), result.stdout


def test_built_sums_follow_the_written_order_in_latex_and_python(runner):
    from exprgrad.cli import cli

    latex = runner.invoke(cli, ["diff", "b*x + a*x", "--wrt", "x", "--format", "latex"]).stdout
    assert latex.strip().endswith("= b + a")
    python = runner.invoke(cli, ["diff", "b*x + a*x", "--wrt", "x", "--format", "python"]).stdout
    assert "b + a" in python
    json_text = runner.invoke(cli, ["diff", "b*x + a*x", "--wrt", "x", "--format", "json"]).stdout
    assert '"x": "b + a"' in json_text


def test_written_order_of_built_sums_needs_the_text():
    # A graph built in Python has no text: textbook order, as before.
    a, b = graph.var("a"), graph.var("b")
    assert to_text(build.add(b, a)) == "a + b"
    from exprgrad.lower import Written

    written = Written()
    written.first_use.update({b: (1, 1), a: (1, 7)})
    assert to_text(build.add(b, a), written) == "b + a"
    assert to_text(build.add(b, build.const(1.0)), written) == "b + 1"  # the 1 has no place: textbook
    tied = Written()
    tied.first_use.update({a: (1, 1), b: (1, 1)})
    assert to_text(build.add(b, a), tied) == "a + b"
