"""parse: text -> AST shapes, spans, inputs too deep to recurse on, the fast path and the grammar file."""

from __future__ import annotations

import dataclasses
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
from exprgrad.ast_nodes import (
    Additive,
    Call,
    Declaration,
    Definition,
    Index,
    Indexed,
    Name,
    Negate,
    Number,
    Power,
    Product,
    Reduce,
)
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
        subscripts = tuple(s.name if isinstance(s, Index) else s for s in node.subscripts)
        if len(subscripts) == 1 and isinstance(subscripts[0], int):
            return ("[]", node.name, subscripts[0])  # one member: theta[1]
        return ("[]", node.name, subscripts)
    if isinstance(node, Reduce):
        return ("reduce", node.op, tuple(i.name for i in node.indices), shape(node.body))
    if isinstance(node, Negate):
        return ("neg", shape(node.operand))
    if isinstance(node, Power):
        return ("^", shape(node.base), shape(node.exponent))
    if isinstance(node, Additive):
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
    assert isinstance(node, Additive)


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
    assert isinstance(node, Additive) and len(node.terms) == 100_000
    assert node.terms[-1].name == "x99999" and set(node.signs) == {1}


@pytest.mark.slow
def test_a_hundred_thousand_operators_with_calls_and_nesting():
    # The shape of benchmarks/bench_eval.py: 33,333 terms a*sin(x + i).
    node = result(" + ".join(f"a{i % 50}*sin(x{i % 7} + {i})" for i in range(33_333)))
    assert isinstance(node, Additive) and len(node.terms) == 33_333
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
        "assert p._automaton is None; p.parse('x'); assert p._automaton is not None"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)


# ---- index families: subscripts, reductions, families defined by index, ranges ---


def dump(node) -> object:
    """Every field of an AST node, spans as (line, column, width), recursively: a golden AST."""
    if isinstance(node, tuple | list):
        return tuple(dump(item) for item in node)
    if dataclasses.is_dataclass(node):
        fields = tuple(dump(getattr(node, f.name)) for f in dataclasses.fields(node))
        return (type(node).__name__, *fields)
    return node


def span(line: int, column: int, width: int) -> tuple:
    return ("Span", line, column, width)


def test_golden_ast_of_a_family_defined_by_index():
    program = parse("k in 1:16\nh[k] = tanh(sum[j](W[k,j]*x[j]) + b[k])\nmean(h[k])")
    assert dump(program.declarations) == (("Declaration", "k", 1, 16, span(1, 1, 9), span(1, 1, 1)),)
    (definition,) = program.definitions
    assert dump(definition) == (
        "Definition",
        "h",
        (
            "Call",
            "tanh",
            (
                (
                    "Additive",
                    (
                        (
                            "Reduce",
                            "sum",
                            (("Index", "j", span(2, 17, 1)),),
                            (
                                "Product",
                                (
                                    (
                                        "Indexed",
                                        "W",
                                        (("Index", "k", span(2, 22, 1)), ("Index", "j", span(2, 24, 1))),
                                        span(2, 20, 6),
                                    ),
                                    ("Indexed", "x", (("Index", "j", span(2, 29, 1)),), span(2, 27, 4)),
                                ),
                                (False, False),
                                span(2, 20, 11),
                            ),
                            span(2, 13, 19),
                            span(2, 13, 3),
                        ),
                        ("Indexed", "b", (("Index", "k", span(2, 37, 1)),), span(2, 35, 4)),
                    ),
                    (1, 1),
                    span(2, 13, 26),
                ),
            ),
            span(2, 8, 32),
            span(2, 8, 4),
        ),
        span(2, 1, 39),
        (("Index", "k", span(2, 3, 1)),),
    )
    assert dump(program.result) == (
        "Call",
        "mean",
        (("Indexed", "h", (("Index", "k", span(3, 8, 1)),), span(3, 6, 4)),),
        span(3, 1, 10),
        span(3, 1, 4),
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("w[j]", ("[]", "w", ("j",))),
        ("W[k,j]", ("[]", "W", ("k", "j"))),
        ("W[ k , j ]", ("[]", "W", ("k", "j"))),
        ("W[2,3]", ("[]", "W", (2, 3))),  # a member of a two-index family
        ("W[k,3]", ("[]", "W", ("k", 3))),  # mixed: lowering decides
        ("theta[0]", ("[]", "theta", 0)),  # a single member, as before
        (
            "sum[j](w[j]*x[j])",
            ("reduce", "sum", ("j",), ("*", (("[]", "w", ("j",)), ("[]", "x", ("j",))), (False, False))),
        ),
        ("mean[j](x[j])", ("reduce", "mean", ("j",), ("[]", "x", ("j",)))),
        ("logsumexp[k](z[k])", ("reduce", "logsumexp", ("k",), ("[]", "z", ("k",)))),
        ("sum[j,k](W[k,j])", ("reduce", "sum", ("j", "k"), ("[]", "W", ("k", "j")))),
        (
            "sum[j](sum[k](A[j,k]))",
            ("reduce", "sum", ("j",), ("reduce", "sum", ("k",), ("[]", "A", ("j", "k")))),
        ),
        ("sum(x)", ("call", "sum", ("x",))),  # over data rows, as before
        ("mean(x)", ("call", "mean", ("x",))),
        ("dot(u, v)", ("call", "dot", ("u", "v"))),  # an ordinary call; lowering knows dot
        ("-sum[j](x[j])^2", ("neg", ("^", ("reduce", "sum", ("j",), ("[]", "x", ("j",))), 2.0))),
        ("sum[\nj\n](x[j])", ("reduce", "sum", ("j",), ("[]", "x", ("j",)))),  # line breaks inside brackets
    ],
)
def test_index_families_and_reductions(text, expected):
    assert shape(result(text)) == expected


def test_the_logistic_and_softmax_examples_parse():
    program = parse("z = c + sum[j](w[j]*x[j]);  mean(softplus(z) - y*z)")
    assert [(d.name, d.indices) for d in program.definitions] == [("z", ())]
    assert shape(program.definitions[0].value) == (
        "+",
        ("c", ("reduce", "sum", ("j",), ("*", (("[]", "w", ("j",)), ("[]", "x", ("j",))), (False, False)))),
        (1, 1),
    )
    program = parse("z[k] = sum[j](W[k,j]*x[j]) + b[k];  mean(logsumexp[k](z[k]) - sum[k](Y[k]*z[k]))")
    assert [i.name for i in program.definitions[0].indices] == ["k"]
    assert shape(program.result)[0] == "call"


def test_declarations_keep_their_order_among_definitions():
    text = "k in 1:16\na = 2\nj in 0:9; h[k, j] = a\nmean(h[k, j])"
    program = parse(text)
    assert [(d.index, d.first, d.last) for d in program.declarations] == [("k", 1, 16), ("j", 0, 9)]
    assert [d.span.line for d in program.declarations] == [1, 3]
    assert covered(text, program.declarations[1]) == "j in 0:9"
    assert covered(text, program.definitions[1]) == "h[k, j] = a"
    assert [i.name for i in program.definitions[1].indices] == ["k", "j"]
    assert all(isinstance(d, Declaration) for d in program.declarations)


def test_a_one_label_range_and_labels_of_leading_zeros():
    (declaration,) = parse("k in 007:7; k").declarations
    assert (declaration.first, declaration.last) == (7, 7)


@pytest.mark.parametrize(
    "text",
    [
        "in = 2; in*3",  # 'in' is an ordinary name outside a declaration
        "in(x)",
        "x[in]",
        "in in 1:3; x",
        "sum = 2; sum*3",  # so are the reductions' names
        "mean[1] + sum[0]",  # members of families that happen to be called so, as before
    ],
)
def test_in_and_the_reduction_names_are_no_keywords(text):
    parse(text)


def test_spans_of_reductions_and_indices():
    text = "J = 1 + sum[ j, k ](W[k,j] * x[j]) / 2\nJ"
    product = parse(text).definitions[0].value.terms[1]
    reduce = product.factors[0]
    assert isinstance(reduce, Reduce)
    assert covered(text, reduce) == "sum[ j, k ](W[k,j] * x[j])"
    assert (reduce.op_span.column, reduce.op_span.width) == (9, 3)
    assert [(i.name, i.span.column) for i in reduce.indices] == [("j", 14), ("k", 17)]
    assert covered(text, reduce.body) == "W[k,j] * x[j]"
    assert covered(text, reduce.body.factors[0]) == "W[k,j]"
