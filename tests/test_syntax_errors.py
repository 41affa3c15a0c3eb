"""syntax_errors: every message in words, with its line, column and caret, through parse()."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark.exceptions import UnexpectedCharacters, UnexpectedToken

from exprgrad.cli import cli
from exprgrad.errors import CARET_WINDOW, ExprSyntaxError
from exprgrad.lalr import Rejected
from exprgrad.parsing import _AstBuilder, _get_automaton, _get_parser, parse
from exprgrad.syntax_errors import Rejection


def syntax_error(text: str) -> ExprSyntaxError:
    with pytest.raises(ExprSyntaxError) as caught:
        parse(text)
    return caught.value


FAMILY_DEFINED_BY_LABEL = (
    "a definition defines a whole family: write index names in the brackets, as in theta[k] = ..."
)
EQUAL_IN_PARENTHESES = "'=' cannot be used inside parentheses; a definition is a statement: name = expression"
LAST_IS_A_DEFINITION = "the last statement must be the expression to compute, not a definition"
EXPRESSION_NOT_LAST = (
    "an expression can only come last; only definitions (name = expression) may come before it"
)


@pytest.mark.parametrize(
    "text, message, line, column, width",
    [
        ("a * )", "expected an operand after '*'", 1, 5, 1),
        ("a*/b", "expected an operand after '*'", 1, 3, 1),
        ("a * ", "expected an operand after '*', but the input ended", 1, 4, 1),
        ("a +", "expected an operand after '+', but the input ended", 1, 4, 1),
        ("a ** ** b", "expected an operand after '**'", 1, 6, 2),
        ("a ^ )", "expected an operand after '^'", 1, 5, 1),
        ("-", "expected an operand after '-', but the input ended", 1, 2, 1),
        ("f(a +, b)", "expected an operand after '+'", 1, 6, 1),
        ("a + b)", "unmatched closing parenthesis", 1, 6, 1),
        (")", "unmatched closing parenthesis", 1, 1, 1),
        ("f(x))", "unmatched closing parenthesis", 1, 5, 1),
        ("$", "unexpected character '$'", 1, 1, 1),
        ("a + 2 $ 3", "unexpected character '$'", 1, 7, 1),
        ("a − b", "unexpected character '−' (write '-' for minus)", 1, 3, 1),
        ("x²", "unexpected character '²' (write ^2 for a power)", 1, 2, 1),
        ("__import__('os')", 'unexpected character "\'" (exprgrad has no strings)', 1, 12, 1),
        ("", "empty expression: there is nothing to compute", 1, 1, 1),
        ("# only a comment\n\n", "empty expression: there is nothing to compute", 1, 1, 1),
        ("a b", "missing operator between 'a' and 'b' (write '*' to multiply)", 1, 3, 1),
        ("2 x", "missing operator between '2' and 'x' (write '*' to multiply)", 1, 3, 1),
        ("2(x + 1)", "missing operator between '2' and '(' (write '*' to multiply)", 1, 2, 1),
        ("f(a b)", "missing operator between 'a' and 'b' (write '*' to multiply)", 1, 5, 1),
        ("2 = x", "'=' can only follow a plain name", 1, 3, 1),
        ("a+b = c", "'=' can only follow a plain name", 1, 5, 1),
        ("theta[0] = 1", FAMILY_DEFINED_BY_LABEL, 1, 7, 1),
        ("a = b = c", "a statement can contain only one '='", 1, 7, 1),
        ("f(a=1)", EQUAL_IN_PARENTHESES, 1, 4, 1),
        ("a =", "expected an expression after '=', but the input ended", 1, 4, 1),
        ("f(a,)", "missing argument", 1, 5, 1),
        ("f(,a)", "missing argument", 1, 3, 1),
        ("f(a,,b)", "missing argument", 1, 5, 1),
        ("f(a,", "expected an argument after ',', but the input ended", 1, 5, 1),
        ("()", "empty parentheses", 1, 2, 1),
        ("*a", "expected an operand before '*'", 1, 1, 1),
        ("a, b", "',' can only separate the arguments of a function call, as in atan2(y, x)", 1, 2, 1),
        ("(a, b)", "',' can only separate the arguments of a function call, as in atan2(y, x)", 1, 3, 1),
        ("2[1]", "'[' can only follow a name, as in theta[0]", 1, 2, 1),
        ("theta[1][2]", "'[' can only follow a name, as in theta[0]", 1, 9, 1),
        ("a]", "unmatched closing bracket ']'", 1, 2, 1),
        ("theta[-1]", "an index must be a whole number, like theta[0]", 1, 7, 1),
        ("theta[1.5]", "an index must be a whole number, like theta[0]", 1, 7, 3),
        ("theta[]", "an index must be a whole number, like theta[0]", 1, 7, 1),
        ("theta[1", "missing closing bracket ']'", 1, 8, 1),
        ("1e999", "the number '1e999' is too large", 1, 1, 5),
        ("a = 1", LAST_IS_A_DEFINITION + " (add a last line such as 'a')", 1, 1, 5),
        ("x; a = 1", EXPRESSION_NOT_LAST, 1, 1, 1),
        ("a = 1; a; b = a", EXPRESSION_NOT_LAST, 1, 8, 1),
    ],
)
def test_error_messages_in_words(text, message, line, column, width):
    err = syntax_error(text)
    assert (err.message, err.line, err.column, err.width) == (message, line, column, width)
    lines = str(err).splitlines()
    assert lines[0] == f"line {line}, column {column}: {message}"
    assert lines[-1] == "  " + " " * (column - 1) + "^" * width


@pytest.mark.parametrize(
    "text, message",
    [
        ("1e999 +", "expected an operand after '+', but the input ended"),  # a syntax error first
        ("x² + 1e999", "unexpected character '²' (write ^2 for a power)"),  # then the first problem
        ("1e999 + x²", "the number '1e999' is too large"),
        ("theta[1.5] + 1e999", "an index must be a whole number, like theta[0]"),
        ("x²(1e999)", "unexpected character '²' (write ^2 for a power)"),
    ],
)
def test_the_error_reported_is_the_first_in_the_text(text, message):
    assert syntax_error(text).message == message


@pytest.mark.parametrize(
    "text, opened",
    [("(a + b", (1, 1)), ("sin(x", (1, 4)), ("f(a, (b", (1, 6)), ("(a; b)", (1, 1)), ("(", (1, 1))],
)
def test_missing_closing_parenthesis_names_the_open_one(text, opened):
    err = syntax_error(text)
    assert err.message == (
        f"missing closing parenthesis: the '(' at line {opened[0]}, column {opened[1]} is never closed"
    )
    # At the end of the input the caret sits just past the last character.
    if ";" not in text:
        assert (err.line, err.column) == (1, len(text) + 1)


def test_errors_on_later_lines_point_into_their_own_line():
    err = syntax_error("h = a*x + b\nJ = (h - y^2   # comment\n")
    assert err.message.startswith("missing closing parenthesis: the '(' at line 2, column 5")
    assert (err.line, err.column) == (2, 13)
    assert str(err).splitlines()[1:] == ["  J = (h - y^2   # comment", "  " + " " * 12 + "^"]

    err = syntax_error("h = a*x +\nJ")
    assert err.message.startswith("expected an operand after '+', but the line ended")
    assert (err.line, err.column) == (1, 10)

    err = syntax_error("a = 1\nb = 2 $\nb")
    assert (err.message, err.line, err.column) == ("unexpected character '$'", 2, 7)

    err = syntax_error("(a + b\nc)")
    assert err.message == (
        "missing operator between 'b' and 'c' (write '*' to multiply), "
        "or the '(' at line 1, column 1 is never closed"
    )
    assert (err.line, err.column) == (2, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab2.e()[],;=+-*/^<>!# \n$θ\u0301", max_size=25))
def test_any_text_parses_or_raises_a_syntax_error_with_a_place(text):
    try:
        parse(text)
    except ExprSyntaxError as err:
        assert err.line is not None and err.column is not None and err.width >= 1
        assert 1 <= err.line <= max(1, text.count("\n") + 1)
        assert str(err)


def test_errors_deep_inside_nesting():
    err = syntax_error("(" * 10_000 + "x")
    assert err.message.startswith("missing closing parenthesis: the '(' at line 1, column 10000")


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab2.e()[],;=+-*/^<>!# \n$θ", max_size=25))
def test_where_the_parser_stops_agrees_with_larks_own_parser(text):
    """The fast path's rejection (offending token, allowed terminals) is Lark's."""
    assert_stops_where_lark_stops(text)


def assert_stops_where_lark_stops(text: str) -> None:
    lark = _get_parser()
    try:
        _get_automaton().run(text, _AstBuilder(text))
        rejection = None
    except Rejected as rejected:
        rejection = rejected.rejection
    try:
        lark.parse(text)
    except UnexpectedCharacters as exc:
        assert rejection == Rejection(None, exc.pos_in_stream, exc.pos_in_stream + 1)
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":
            assert (rejection.kind, rejection.start) == ("$END", len(text))
        else:
            assert (rejection.kind, rejection.start, rejection.end) == (
                token.type,
                token.start_pos,
                token.end_pos,
            )
        # Lark's lexer leaves the end of the input out of what it expected, and
        # adds the line break it always accepts (for the bracket rule).
        assert rejection.expected - {"$END", "_SEP"} == frozenset(exc.expected) - {"$END", "_SEP"}
    else:
        assert rejection is None


@pytest.mark.slow
def test_a_syntax_error_in_a_million_character_line():
    # Diagnosed from the fast path's own scan: about the time a valid parse of
    # the same text takes (Lark's parser on it took ten times longer).
    text = "x + " * 250_000 + ")"
    err = syntax_error(text)
    assert err.column == len(text) and len(str(err)) < 300


# ---------------------------------------------------------------- hostile lines


@pytest.mark.parametrize(
    "text",
    [
        "x + " * 5_000 + ")",  # the caret at the end of a long line
        ")" + " + x" * 5_000,  # at its start
        "a + " * 2_500 + "$" + " + a" * 2_500,  # in its middle
        "y = 1\n" + "b*" * 10_000 + "(",  # on a later line
    ],
)
def test_a_long_line_is_shown_in_a_window_around_the_caret(text):
    err = syntax_error(text)
    shown, caret = str(err).splitlines()[-2:]
    assert len(shown) <= 2 + CARET_WINDOW + 2 and len(caret) <= len(shown) + 1
    line = text.split("\n")[err.line - 1]
    # The caret points at the same character in the window as in the line.
    under = shown[caret.index("^")] if caret.index("^") < len(shown) else ""
    assert under == line[err.column - 1 : err.column] or (under == "" and err.column == len(line) + 1)
    assert ("…" in shown) and len(str(err)) < 400


def test_a_short_line_is_shown_whole():
    err = syntax_error("a" * (CARET_WINDOW - 2) + " $")
    assert str(err).splitlines()[-2] == "  " + "a" * (CARET_WINDOW - 2) + " $"


def test_long_tokens_are_cut_in_messages():
    name = "w" * 100_000
    err = syntax_error(f"{name} {name}")
    assert len(err.message) < 200 and "…" in err.message
    assert len(syntax_error("1" * 5000 + "e999").message) < 100


@pytest.mark.parametrize(
    ("char", "shown"),
    [
        ("\x1b", "U+001B (a control character)"),
        ("\u200d", "U+200D (zero width joiner)"),
        ("\u0301", "U+0301 (combining acute accent)"),
        ("\xa0", "U+00A0 (no-break space)"),
        ("\r", None),
    ],
)
def test_invisible_characters_are_named_and_never_echoed_raw(char, shown):
    text = f"a + 1 {char}$"
    err = syntax_error(text)
    if shown is not None:
        err = syntax_error(f"a + {char}b")
        assert shown in err.message
    assert all(c.isprintable() for line in str(err).splitlines() for c in line)


def test_decomposed_accents_are_one_name_with_the_composed_ones():
    composed, decomposed = "\u00e9", "e\u0301"
    program = parse(f"{composed} = 2\n{decomposed} + 1")
    assert program.result.terms[0].name == composed and program.definitions[0].name == composed
    assert parse("x\u0302 * 2").result.factors[0].name == "x\u0302"  # no composed form: kept
    assert parse("\u0915\u093e + 1").result.terms[0].name == "\u0915\u093e"  # a spacing mark (Devanagari)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("a·b", 2, "write '*' to multiply"),
        ("x−1", 2, "write '-' for minus"),
        ("a\u200db", 2, "zero width joiner"),
    ],
)
def test_characters_that_python_names_accept_but_exprgrad_does_not(text, column, message):
    err = syntax_error(text)
    assert err.column == column and message in err.message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("theta[" + "1" * 5000 + "]", "too large"),  # Python reads no int of over 4300 digits
        ("theta[" + "1" * 300 + "]", "the index '1111"),
        ("a\udcff", "U+DCFF (a byte that is not UTF-8, or a lone surrogate)"),
        ("a\ue000", "U+E000 (a private-use character)"),
        ("a\x00", "U+0000 (a control character)"),
    ],
)
def test_hostile_characters_and_numbers_are_syntax_errors(text, message):
    assert message in syntax_error(text).message


def test_a_long_index_of_zeros_is_a_small_index():
    assert parse("theta[" + "0" * 40 + "7]").result.subscripts == (7,)


# ---------------------------------------------------------------- index families


@pytest.mark.parametrize(
    "text, message, line, column, width",
    [
        # reductions over an index
        ("sum[](x)", "sum[] names no index: write the index to reduce over, as in sum[j](x[j])", 1, 5, 1),
        ("mean[](x)", "mean[] names no index: write the index to reduce over, as in mean[j](x[j])", 1, 6, 1),
        ("sum[1](x)", "sum[...] reduces over an index name, not a number, as in sum[j](x[j])", 1, 5, 1),
        ("sum[j,2](x)", "sum[...] reduces over an index name, not a number, as in sum[j](x[j])", 1, 7, 1),
        (
            "sum[j,j](e)",
            "the index 'j' appears twice in sum[...] (first at column 5); each index is written once",
            1,
            7,
            1,
        ),
        (
            "logsumexp[k](a, b)",
            "logsumexp[...](...) takes one expression, as in logsumexp[j](x[j])",
            1,
            17,
            1,
        ),
        ("sum[j]()", "sum[...](...) takes one expression, as in sum[j](x[j])", 1, 8, 1),
        # a family followed by parentheses is a missing operator, as theta[1](x) was
        ("w[j](x)", "missing operator between ']' and '(' (write '*' to multiply)", 1, 5, 1),
        ("theta[1](x)", "missing operator between ']' and '(' (write '*' to multiply)", 1, 9, 1),
        ("a + w[j ] (x)", "missing operator between ']' and '(' (write '*' to multiply)", 1, 11, 1),
        ("(w[j]\n  (x))", "missing operator between ']' and '(' (write '*' to multiply)", 2, 3, 1),
        # brackets
        ("w[j", "missing closing bracket ']'", 1, 4, 1),
        ("f(w[j)", "missing closing bracket ']'", 1, 6, 1),
        ("W[k,", "expected an index after ',', but the input ended", 1, 5, 1),
        ("W[k,]", "expected an index after ','", 1, 5, 1),
        ("W[k j]", "missing ',' between the indices 'k' and 'j'", 1, 5, 1),
        ("w[j+1]", "an index is a name or a whole number, as in w[j] or theta[0]", 1, 4, 1),
        ("w[f(j)]", "an index is a name or a whole number, as in w[j] or theta[0]", 1, 4, 1),
        ("w[(j)]", "an index is a name or a whole number, as in w[j] or theta[0]", 1, 3, 1),
        # families defined by index
        (
            "h[k,k] = 1; h",
            "the index 'k' appears twice in h[...] (first at column 3); each index is written once",
            1,
            5,
            1,
        ),
        ("h[k, 2] = 1; h", FAMILY_DEFINED_BY_LABEL.replace("theta", "h"), 1, 6, 1),
        ("f(h[k] = 1)", EQUAL_IN_PARENTHESES, 1, 8, 1),
        (
            "h[k,\n  k] = 1; h",
            "the index 'k' appears twice in h[...] (first at line 1, column 3); each index is written once",
            2,
            3,
            1,
        ),
        # declarations of a range
        ("k in 1:", "expected the last label after ':', as in k in 1:16, but the input ended", 1, 8, 1),
        (
            "k in 1:\nx",
            "expected the last label after ':', as in k in 1:16, but the line ended (inside parentheses a statement may continue on the next line)",
            1,
            8,
            1,
        ),
        ("k in", "expected a range after 'in', as in k in 1:16, but the input ended", 1, 5, 1),
        ("k in 1", "a range is written first:last, as in k in 1:16, but the input ended", 1, 7, 1),
        ("k in 1..16", "a range is written first:last, as in k in 1:16", 1, 8, 3),
        ("k in :3", "a range is two whole numbers, first:last, as in k in 1:16", 1, 6, 1),
        ("k in -1:3", "a range is two whole numbers, first:last, as in k in 1:16", 1, 6, 1),
        ("k in a:b", "a range is two whole numbers, first:last, as in k in 1:16", 1, 6, 1),
        ("k in 1:n", "a range is two whole numbers, first:last, as in k in 1:16", 1, 8, 1),
        ("k in 1.5:3", "a range is two whole numbers, first:last, as in k in 1:16", 1, 6, 3),
        ("k in 1:3e1", "a range is two whole numbers, first:last, as in k in 1:16", 1, 8, 3),
        ("k in 5:1", "the range 5:1 is empty: the first label must not be larger than the last", 1, 6, 3),
        (
            "k in 1:3 4",
            "a declaration is only 'k in first:last'; start the next statement after ';' or a line break",
            1,
            10,
            1,
        ),
        ("k in 1:" + "9" * 30, "the index '" + "9" * 30 + "' is too large (at most 18 digits)", 1, 8, 30),
        ("k on 1:3; x", "missing operator between 'k' and 'on' (write '*' to multiply)", 1, 3, 2),
        ("a b + c", "missing operator between 'a' and 'b' (write '*' to multiply)", 1, 3, 1),
        ("a:b", "':' can only stand in a declaration of a range, as in k in 1:16", 1, 2, 1),
        ("f(k in 1:3)", "missing operator between 'k' and 'in' (write '*' to multiply)", 1, 5, 2),
        # declarations come before the result
        (
            "k in 1:3",
            "a declaration cannot come last: the last statement is the expression to compute; declare 'k' before it",
            1,
            1,
            8,
        ),
        (
            "x\nk in 1:3",
            "a declaration cannot come last: the last statement is the expression to compute; declare 'k' before it",
            2,
            1,
            8,
        ),
        ("x; k in 1:3; y", EXPRESSION_NOT_LAST, 1, 1, 1),
    ],
)
def test_index_family_errors_in_words(text, message, line, column, width):
    err = syntax_error(text)
    assert (err.message, err.line, err.column, err.width) == (message, line, column, width)
    lines = str(err).splitlines()
    assert lines[0] == f"line {line}, column {column}: {message}"
    assert lines[-1] == "  " + " " * (column - 1) + "^" * width


@pytest.mark.parametrize(
    "text, message",
    [
        ("w[j](1e999)", "missing operator between ']' and '('"),  # the reduction's own problem comes first
        ("sum[1](x²)", "sum[...] reduces over an index name"),
        ("sum[j](x²) + sum[1](y)", "unexpected character '²'"),
        ("k in 9:1; h[k,k] = 1; h", "the range 9:1 is empty"),
    ],
)
def test_index_family_errors_report_the_first_in_the_text(text, message):
    assert syntax_error(text).message.startswith(message)


@pytest.mark.parametrize(
    "expr, message, shown",
    [
        ("c + dot(w, x)*w[j]", "'w' is used both as a plain name and as a family", "w"),
        ("c + dot(2*a, x)", "dot(u, v) sums over the one index", "dot"),
        ("k in 1:16; h[k] = b[k]; mean(h[1])", "'h[...]' with a number selects a member", "h[1]"),
        ("h[k] = b[k]; mean(h[1])", "'h[...]' with a number selects a member", "h[1]"),
        ("c + w[j]", "index 'j' is free in the result", "j"),
    ],
)
def test_index_family_errors_of_lowering_have_a_caret(runner, expr, message, shown):
    result = runner.invoke(cli, ["diff", expr])
    assert result.exit_code == 2, result.output
    first, text_line, caret = result.stderr.splitlines()
    assert first.startswith("error: line ")
    assert message in first
    # The caret is under the construct named.
    assert caret.strip(" ^") == "" and text_line[caret.index("^") :].startswith(shown)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "expr", ["sum[j](w[j]*x[j])", "W[2,3] + a", "a = 1\nb = mean(softplus(a) + logsumexp[k](z[k]))\nb"]
)
def test_index_families_lower(runner, expr):
    result = runner.invoke(cli, ["diff", expr])
    assert "Traceback" not in result.output
    assert result.exit_code == 0 or "error: " in result.stderr, result.output


_FAMILY_TOKENS = [
    "w",
    "j",
    "k",
    "in",
    "sum",
    "mean",
    "2",
    "1.5",
    "[",
    "]",
    "(",
    ")",
    ",",
    ":",
    "=",
    "+",
    "*",
    ";",
    "\n",
    " ",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_FAMILY_TOKENS), max_size=14).map("".join))
def test_any_text_with_index_families_parses_or_raises_a_syntax_error_with_a_place(text):
    try:
        parse(text)
    except ExprSyntaxError as err:
        assert err.line is not None and err.column is not None and err.width >= 1
        assert 1 <= err.line <= max(1, text.count("\n") + 1)
        assert str(err)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FAMILY_TOKENS), max_size=14).map("".join))
def test_where_the_parser_stops_on_index_families_agrees_with_larks_own_parser(text):
    assert_stops_where_lark_stops(text)
