"""lalr: the fast loop builds the AST Lark's own parser builds, rejects where Lark does, and refuses a Lark it cannot read."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedToken
from strategies import family_programs, mutated, mutated_programs, programs

from exprgrad import lalr
from exprgrad.ast_nodes import (
    Additive,
    Call,
    Compare,
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
    Span,
)
from exprgrad.parsing import _AstBuilder, _get_automaton, _get_parser, grammar_path

ROOT = Path(__file__).resolve().parent.parent


# ---- the reference: Lark's own LALR parser and a Transformer ------------------


def _span(where) -> Span:
    """A Span from a Lark token or tree meta (Lark counts lines and columns itself)."""
    width = where.end_pos - where.start_pos if where.line == where.end_line else 1
    return Span(where.line, where.column, width)


def _kept(children: list) -> list:
    """The children that are AST nodes (tokens such as '(' , ',' and ';' are not)."""
    return [c for c in children if not isinstance(c, Token)]


@v_args(meta=True)
class ToAst(Transformer):
    """Lark's tree -> exprgrad's AST, independently of exprgrad.parse.

    Lark is built with keep_all_tokens, so that '(' and a unary '+' stay in the
    tree and Lark's propagated positions cover them: a node spans its whole
    rule, parentheses and signs around its operands included.
    """

    @v_args(inline=False, meta=False)
    def NAME(self, token: Token) -> Name:
        return Name(str(token), _span(token))

    @v_args(inline=False, meta=False)
    def NUMBER(self, token: Token) -> Number:
        return Number(float(token), str(token), _span(token))

    def start(self, meta, children):
        return _kept(children)

    def definition(self, meta, children):
        name, *subscripts, value = _kept(children)
        if not subscripts:
            return Definition(name.name, value, _span(meta))
        indices = tuple(Index(n.name, n.span) for n in subscripts[0])
        return Definition(name.name, value, _span(meta), indices)

    def declaration(self, meta, children):
        index, _in, first, last = _kept(children)
        return Declaration(index.name, int(first.text), int(last.text), _span(meta), index.span)

    def compare(self, meta, children):
        left, op, right = children
        return Compare(left, op.type, right, _span(meta))

    def additive(self, meta, children):
        signs = (1, *(1 if c.type == "PLUS" else -1 for c in children[1::2]))
        return Additive(tuple(children[0::2]), signs, _span(meta))

    def product(self, meta, children):
        divides = (False, *(c.type == "SLASH" for c in children[1::2]))
        return Product(tuple(children[0::2]), divides, _span(meta))

    def negate(self, meta, children):
        (operand,) = _kept(children)
        return Negate(operand, _span(meta))

    def unary(self, meta, children):  # '+' operand: the operand itself
        (operand,) = _kept(children)
        return operand

    def power(self, meta, children):
        base, exponent = _kept(children)
        return Power(base, exponent, _span(meta))

    def atom(self, meta, children):  # '(' comparison ')': the comparison itself
        (inner,) = _kept(children)
        return inner

    def subscripts(self, meta, children):  # Name and Number nodes; the ',' are tokens
        return _kept(children)

    def indexed(self, meta, children):
        name, subscripts = _kept(children)
        written = tuple(Index(n.name, n.span) if isinstance(n, Name) else int(n.text) for n in subscripts)
        return Indexed(name.name, written, _span(meta))

    def reduce(self, meta, children):
        op, subscripts, body = _kept(children)
        indices = tuple(Index(n.name, n.span) for n in subscripts)
        return Reduce(op.name, indices, body, _span(meta), op.span)

    def call(self, meta, children):
        name, *args = _kept(children)
        return Call(name.name, tuple(args), _span(meta), name.span)


_reference: Lark | None = None


def reference_parser() -> Lark:
    global _reference
    if _reference is None:
        _reference = Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            postlex=lalr.ContinueInsideBrackets(),
            keep_all_tokens=True,
            propagate_positions=True,
        )
    return _reference


def differences(ours, theirs) -> str | None:
    """Where two ASTs (or lists of statements) first differ, without recursion; None if nowhere.

    Compares classes, every field (spans included) and the lengths of tuples.
    """
    # Each entry: (a, b, where), where is (label, parent's where): the path is
    # spelled out only for a difference, so a deep tree costs linear time.
    stack = [(ours, theirs, ("statements", None))]
    while stack:
        a, b, where = stack.pop()
        if type(a) is not type(b):
            found = f"{type(a).__name__} != {type(b).__name__}"
        elif isinstance(a, list | tuple):
            if len(a) == len(b):
                stack += [(x, y, (f"[{i}]", where)) for i, (x, y) in enumerate(zip(a, b, strict=True))]
                continue
            found = f"{len(a)} items != {len(b)}"
        elif dataclasses.is_dataclass(a):
            stack += [
                (getattr(a, f.name), getattr(b, f.name), (f".{f.name}", where)) for f in dataclasses.fields(a)
            ]
            continue
        elif a == b:
            continue
        else:
            found = f"{a!r} != {b!r}"
        labels = []
        while where is not None:
            label, where = where
            labels.append(label)
        return "".join(reversed(labels)) + ": " + found
    return None


def outcome(text: str):
    """What each parser makes of ``text``: ("ast", statements) or ("rejected", kind, start, end)."""
    build = _AstBuilder(text)
    try:
        ours = ("ast", _get_automaton().run(text, build))
    except lalr.Rejected as rejected:
        where = rejected.rejection
        ours = ("rejected", where.kind, where.start, where.end)
    try:
        tree = reference_parser().parse(text)
    except UnexpectedCharacters as exc:
        theirs = ("rejected", None, exc.pos_in_stream, exc.pos_in_stream + 1)
    except UnexpectedToken as exc:
        token = exc.token
        if token.type == "$END":  # Lark's end token has no position of its own
            theirs = ("rejected", "$END", len(text), len(text))
        else:
            theirs = ("rejected", token.type, token.start_pos, token.end_pos)
    else:
        # A problem in a well-formed text (theta[1.5], x²) is the builder's to report, not the loop's.
        theirs = ("ast", ToAst().transform(tree) if build.problem is None else None)
        if build.problem is not None:
            ours = ("ast", None)
    return ours, theirs


def assert_same(text: str) -> str:
    ours, theirs = outcome(text)
    if ours[0] == theirs[0] == "ast":
        assert differences(ours[1], theirs[1]) is None, (text, differences(ours[1], theirs[1]))
    elif ours[0] == "rejected" and theirs[0] == "rejected" and "$END" in (ours[1], theirs[1]):
        assert ours[1:3] == theirs[1:3], text  # the end of the text: its start is what both know
    else:
        assert ours == theirs, text
    return ours[0]


# ---- generated programs (tests/strategies.py) ------------------------------------


@settings(max_examples=150, deadline=None)
@given(programs)
def test_the_loop_builds_the_ast_larks_parser_builds(text):
    assert assert_same(text) == "ast", text


@settings(max_examples=150, deadline=None)
@given(mutated_programs())
def test_the_loop_rejects_where_larks_parser_rejects(text):
    assert_same(text)


# ---- generated programs with index families (tests/strategies.py) -------------


@settings(max_examples=200, deadline=None)
@given(family_programs)
def test_the_loop_builds_the_ast_larks_parser_builds_for_index_families(text):
    assert assert_same(text) == "ast", text
    build = _AstBuilder(text)
    _get_automaton().run(text, build)
    assert build.problem is None, (text, build.problem)  # so the two ASTs were compared


@settings(max_examples=200, deadline=None)
@given(mutated(family_programs, "()[],;:=+*.0jn \n"))
def test_the_loop_rejects_where_larks_parser_rejects_with_index_families(text):
    assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        "(x)^2",
        "+(b) - c",
        "-(x)",
        "f(a,\n  b)",
        "J = mean(\n  (a*x # fit\n   + b - y)^2\n)\nJ",
        "a^-b^c",
        "x <= (y == 2)",
        "theta[\n1] + f()",
        "k in 1:16\nh[k] = tanh(sum[j](W[k,j]*x[j]) + b[k])\nmean((sum[k](v[k]*h[k]) + c - y)^2)",
        "z[ k ] = sum[ j ,\n k](W[k, 3] * x[j]) ; in in 0 : 9; logsumexp[k](z[k])",
        "sum[j](\n  w[j] # weight\n  * x[j])",
        "W[2,3] + theta[0]",
        "",
        ";\n;",
    ],
)
def test_spans_and_shapes_agree_on_the_corner_cases(text):
    assert assert_same(text) == "ast"


def test_the_comparison_sees_a_span_differ():
    ours = [Name("x", Span(1, 1, 1))]
    assert differences(ours, [Name("x", Span(1, 1, 2))]) == "statements[0].span.width: 1 != 2"
    assert differences(ours, [Number(1.0, "1", Span(1, 1, 1))]) == "statements[0]: Name != Number"
    assert differences(ours, [Name("x", Span(1, 1, 1))]) is None


def test_the_comparison_walks_deep_trees_without_recursion():
    deep_a = deep_b = Name("x", Span(1, 1, 1))
    for _ in range(50_000):
        deep_a, deep_b = Negate(deep_a, Span(1, 1, 1)), Negate(deep_b, Span(1, 1, 1))
    assert differences([deep_a], [deep_b]) is None


# ---- the lark versions ------------------------------------------------------------


def test_a_lark_without_the_structures_is_refused_naming_the_supported_versions(monkeypatch):
    lark = Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr")
    monkeypatch.setattr(lark, "parse_interactive", lambda text: object())
    with pytest.raises(RuntimeError, match=re.escape(f"lark {lalr.SUPPORTED_LARK}")) as info:
        lalr.Automaton(lark)
    assert "install a supported version" in str(info.value)


def test_parse_checks_the_lark_it_runs_on_at_first_use(monkeypatch):
    parse_module = importlib.import_module("exprgrad.parsing")
    monkeypatch.setattr(parse_module, "_parser", None)
    monkeypatch.setattr(parse_module, "_automaton", None)
    monkeypatch.setattr(parse_module, "TABLE_NAME", "missing.table.json")  # Lark analyses the grammar
    monkeypatch.setattr(Lark, "parse_interactive", lambda self, text: object())
    with pytest.raises(
        RuntimeError, match=re.escape(f"exprgrad's parser runs on lark {lalr.SUPPORTED_LARK}")
    ):
        parse_module.parse("a*x + b")
    assert parse_module._automaton is None  # the next call tries again


def test_a_parser_other_than_lalr_is_refused():
    earley = Lark(grammar_path().read_text(encoding="utf-8"), parser="earley")
    with pytest.raises(RuntimeError, match="not 'lalr'"):
        lalr.Automaton(earley)


def test_the_installed_lark_is_read_as_it_is():
    automaton = _get_automaton()
    assert len(automaton.table) == len(_get_parser().parse_interactive("").parser_state.parse_conf.states)


def test_pyproject_pins_the_supported_versions():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'"lark{lalr.SUPPORTED_LARK}"' in pyproject
