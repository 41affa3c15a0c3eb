"""parse: text -> AST shapes, spans, inputs too deep to recurse on, the fast path and the grammar file."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from exprgrad import lalr
from exprgrad.ast_nodes import Call, Definition, Indexed, Name, Negate, Number, Power, Product, Sum
from exprgrad.parsing import grammar_path, parse

ROOT = Path(__file__).resolve().parent.parent
# The module behind the public ``exprgrad.parse`` function.
parse_module = importlib.import_module("exprgrad.parsing")


def result(text: str):
    return parse(text).result


def shape(node) -> object:
    """A compact, comparable picture of an AST: names as str, numbers as float, nodes as tuples."""
    if isinstance(node, Name):
        return node.name
    if isinstance(node, Number):
        return node.value
    if isinstance(node, Indexed):
        return ("[]", node.name, node.index)
    if isinstance(node, Negate):
        return ("neg", shape(node.operand))
    if isinstance(node, Power):
        return ("^", shape(node.base), shape(node.exponent))
    if isinstance(node, Sum):
        return ("+", tuple(shape(t) for t in node.terms), node.signs)
    if isinstance(node, Product):
        return ("*", tuple(shape(f) for f in node.factors), node.divides)
    if isinstance(node, Call):
        return ("call", node.name, tuple(shape(a) for a in node.args))
    raise TypeError(node)


# ---- shapes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, value", [("3", 3.0), ("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 1e-3), ("2.5E+4", 2.5e4)]
)
def test_numbers_keep_value_and_text(text, value):
    node = result(text)
    assert isinstance(node, Number)
    assert node.value == value
    assert node.text == text


@pytest.mark.parametrize("text", ["θ", "α", "θ0", "x_1", "_x", "Größe", "theta"])
def test_names_may_be_unicode(text):
    assert shape(result(text)) == text


def test_indexed_names():
    assert shape(result("theta[1]")) == ("[]", "theta", 1)
    assert shape(result("θ[ 12 ]")) == ("[]", "θ", 12)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a + b - c + d", ("+", ("a", "b", "c", "d"), (1, 1, -1, 1))),
        ("a - b - c", ("+", ("a", "b", "c"), (1, -1, -1))),
        ("a*b/c*d", ("*", ("a", "b", "c", "d"), (False, False, True, False))),
        ("a/b*c", ("*", ("a", "b", "c"), (False, True, False))),
        ("a + b*c", ("+", ("a", ("*", ("b", "c"), (False, False))), (1, 1))),
        ("(a + b) + c", ("+", (("+", ("a", "b"), (1, 1)), "c"), (1, 1))),
        ("(a + b)*c", ("*", (("+", ("a", "b"), (1, 1)), "c"), (False, False))),
        ("-a + b", ("+", (("neg", "a"), "b"), (1, 1))),
        ("-x*y", ("*", (("neg", "x"), "y"), (False, False))),
        ("a * -b", ("*", ("a", ("neg", "b")), (False, False))),
        ("-x^2", ("neg", ("^", "x", 2.0))),
        ("2^-1", ("^", 2.0, ("neg", 1.0))),
        ("2^-x", ("^", 2.0, ("neg", "x"))),
        ("a^b^c", ("^", "a", ("^", "b", "c"))),
        ("a**b**c", ("^", "a", ("^", "b", "c"))),
        ("a^-b^c", ("^", "a", ("neg", ("^", "b", "c")))),
        ("a^+b", ("^", "a", "b")),
        ("(a^b)^c", ("^", ("^", "a", "b"), "c")),
        ("--x", ("neg", ("neg", "x"))),
        ("-(-x)", ("neg", ("neg", "x"))),
        ("+x", "x"),
        ("+-+x", ("neg", "x")),
        ("((x))", "x"),
    ],
)
def test_precedence_associativity_and_flat_chains(text, expected):
    assert shape(result(text)) == expected


def test_a_single_term_is_the_term_itself():
    assert isinstance(result("x"), Name)
    assert isinstance(result("(x)"), Name)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("f()", ("call", "f", ())),
        ("sin(x)", ("call", "sin", ("x",))),
        ("atan2(y, x)", ("call", "atan2", ("y", "x"))),
        ("mean((h - y)^2)", ("call", "mean", (("^", ("+", ("h", "y"), (1, -1)), 2.0),))),
        ("notafunction(1, 2, 3)", ("call", "notafunction", (1.0, 2.0, 3.0))),
    ],
)
def test_calls_are_not_checked_here(text, expected):
    assert shape(result(text)) == expected


def test_program_definitions_then_result():
    text = "# a model\nh = theta[0] + theta[1]*x   # a line\nJ = mean((h - y)^2) / 2\nJ\n"
    program = parse(text)
    assert [d.name for d in program.definitions] == ["h", "J"]
    assert all(isinstance(d, Definition) for d in program.definitions)
    assert shape(program.definitions[0].value) == (
        "+",
        (("[]", "theta", 0), ("*", (("[]", "theta", 1), "x"), (False, False))),
        (1, 1),
    )
    assert shape(program.result) == "J"
    assert program.source == text


@pytest.mark.parametrize(
    "text",
    [
        "a = 1; b = 2; a + b",
        "a = 1\nb = 2\na + b",
        "\n\n  a = 1 ;; \n\n# comment\nb = 2 # trailing\n\n  a + b  \n\n",
        "a = 1\r\nb = 2\r\na + b\r\n",
        "a = 1; b = 2; a + b;",
        "a=1;b=2;a+b\n# the end",
    ],
)
def test_separators_comments_and_blank_lines(text):
    program = parse(text)
    assert [d.name for d in program.definitions] == ["a", "b"]
    assert shape(program.result) == ("+", ("a", "b"), (1, 1))


def test_line_breaks_inside_parentheses_continue_the_statement():
    program = parse("J = mean(\n  (a*x\n   + b - y)^2\n)\nJ")
    assert shape(program.definitions[0].value)[0] == "call"
    assert shape(result("f(a,\n  b)")) == ("call", "f", ("a", "b"))
    assert shape(result("theta[\n1]")) == ("[]", "theta", 1)


# ---- spans ------------------------------------------------------------------


def covered(text: str, node) -> str:
    """The source text a one-line node's span covers."""
    line = text.splitlines()[node.span.line - 1]
    return line[node.span.column - 1 : node.span.column - 1 + node.span.width]


def test_spans_cover_each_node_on_its_line():
    text = "z = 1\nJ = mean((a*x + b - y)^2) / -c + theta[2]\nJ"
    value = parse(text).definitions[1].value
    assert covered(text, parse(text).definitions[1]) == "J = mean((a*x + b - y)^2) / -c + theta[2]"
    assert value.span.line == 2
    assert covered(text, value) == "mean((a*x + b - y)^2) / -c + theta[2]"
    product, indexed = value.terms
    assert covered(text, product) == "mean((a*x + b - y)^2) / -c"
    call, negate = product.factors
    assert covered(text, call) == "mean((a*x + b - y)^2)"
    assert (call.name_span.line, call.name_span.column, call.name_span.width) == (2, 5, 4)
    assert covered(text, negate) == "-c"
    assert covered(text, indexed) == "theta[2]"
    power = call.args[0]
    assert covered(text, power) == "(a*x + b - y)^2"
    assert covered(text, power.base) == "a*x + b - y"
    assert covered(text, power.exponent) == "2"
    assert covered(text, power.base.terms[0]) == "a*x"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("(x)^2", "(x)^2"),
        ("-(x)", "-(x)"),
        ("(2)*x", "(2)*x"),
        ("a + (b)", "a + (b)"),
        ("+(b) - c", "+(b) - c"),
    ],
)
def test_parentheses_and_signs_around_an_operand_belong_to_its_parent(text, expected):
    assert covered(text, result(text)) == expected


def test_a_node_over_several_lines_has_width_one():
    text = "f(a,\n  b)"
    node = result(text)
    assert (node.span.line, node.span.column, node.span.width) == (1, 1, 1)
    b = node.args[1]
    assert (b.span.line, b.span.column, b.span.width) == (2, 3, 1)


# ---- depth and size ---------------------------------------------------------


def test_ten_thousand_nested_parentheses():
    assert shape(result("(" * 10_000 + "x" + ")" * 10_000)) == "x"
    node = result("(" * 10_000 + "x+1" + ")" * 10_000)
    assert isinstance(node, Sum)


def test_ten_thousand_nested_calls():
    node = result("sin(" * 10_000 + "x" + ")" * 10_000)
    depth = 0
    while isinstance(node, Call):
        node, depth = node.args[0], depth + 1
    assert depth == 10_000 and shape(node) == "x"


def test_ten_thousand_signs_and_powers():
    node = result("-" * 10_000 + "x")
    assert isinstance(node, Negate)
    node = result("^".join(["x"] * 10_000))
    depth = 0
    while isinstance(node, Power):
        node, depth = node.exponent, depth + 1
    assert depth == 9_999


@pytest.mark.slow
def test_a_hundred_thousand_term_sum_is_one_flat_node():
    node = result(" + ".join(f"x{i}" for i in range(100_000)))
    assert isinstance(node, Sum) and len(node.terms) == 100_000
    assert node.terms[-1].name == "x99999" and set(node.signs) == {1}


@pytest.mark.slow
def test_a_hundred_thousand_operators_with_calls_and_nesting():
    # The shape of benchmarks/bench_eval.py: 33,333 terms a*sin(x + i).
    node = result(" + ".join(f"a{i % 50}*sin(x{i % 7} + {i})" for i in range(33_333)))
    assert isinstance(node, Sum) and len(node.terms) == 33_333
    assert shape(node.terms[-1]) == (
        "*",
        ("a32", ("call", "sin", (("+", ("x5", 33332.0), (1, 1)),))),
        (False, False),
    )


# ---- the fast path: Lark's table in one loop, Lark's parser only for errors ---


def test_a_valid_text_never_goes_through_lark_parse(monkeypatch):
    def no_parse_tree(*args, **kwargs):
        raise AssertionError("Lark.parse ran on a valid text")

    monkeypatch.setattr(parse_module._get_parser(), "parse", no_parse_tree)
    program = parse("h = a*x + b  # model\nmean((h - y)^2) / 2")
    assert shape(program.result)[0] == "*"


def test_the_scanner_has_the_grammar_terminals():
    lark = parse_module._get_parser()
    scanned = set(parse_module._get_automaton().scanner.groupindex) - {lalr.END}
    assert scanned == {t.name for t in lark.terminals} - set(lark.ignore_tokens)


_OPERANDS = ["a", "x1", "θ", "2", "1.5", "1e3", "sin(", "theta[1]", "$", "²", " ", "\n", "# c\n"]
_PUNCTUATION = ["(", ")", "[", "]", ",", ";", "=", "+", "-", "*", "/", "^", "**"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_OPERANDS + _PUNCTUATION), max_size=16).map("".join))
def test_the_fast_path_accepts_exactly_what_lark_accepts(text):
    try:
        parse_module._get_parser().parse(text)
        lark_accepts = True
    except UnexpectedInput:
        lark_accepts = False
    try:
        parse_module._get_automaton().run(text, parse_module._AstBuilder(text))
        fast_accepts = True
    except lalr.Rejected:
        fast_accepts = False
    assert fast_accepts == lark_accepts


# ---- the grammar file and the lazy parser -------------------------------------


def test_grammar_found_in_the_checkout():
    assert grammar_path() == ROOT / "grammar" / "exprgrad.lark"


def test_grammar_path_prefers_the_copy_inside_the_package(tmp_path, monkeypatch):
    package = tmp_path / "exprgrad"
    (package / "grammar").mkdir(parents=True)
    (tmp_path / "grammar").mkdir()
    monkeypatch.setattr(parse_module, "__file__", str(package / "parsing.py"))
    with pytest.raises(FileNotFoundError, match="grammar file is missing"):
        grammar_path()
    (tmp_path / "grammar" / "exprgrad.lark").write_text("")
    assert grammar_path() == tmp_path / "grammar" / "exprgrad.lark"
    (package / "grammar" / "exprgrad.lark").write_text("")
    assert grammar_path() == package / "grammar" / "exprgrad.lark"


def test_the_module_and_the_public_function_have_different_names():
    import exprgrad
    import exprgrad.parsing as module

    assert type(module).__name__ == "module" and exprgrad.parse is not module
    assert exprgrad.parse("a*x", columns=["x"]).params == ["a"]


def test_importing_does_not_build_the_parser():
    code = (
        "import importlib; p = importlib.import_module('exprgrad.parsing'); "
        "assert p._parser is None; p.parse('x'); assert p._parser is not None"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
