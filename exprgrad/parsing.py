"""Text -> AST: the first stage of the pipeline.

In: the source text of a program (definitions, then one expression), written
in the language of ``grammar/exprgrad.lark``.
Out: an ``exprgrad.ast_nodes.Program`` whose nodes carry 1-based source spans,
or an ``ExprSyntaxError`` with line, column and a message in words.

How: Lark analyses the grammar once (LALR(1)); ``exprgrad.lalr`` runs Lark's
terminals and parse table in one loop, and ``_AstBuilder`` here makes the AST
nodes at each reduction, with no parse tree and no Token objects. When that
loop rejects the text it says where (the token, and the terminals its state
allowed), and ``exprgrad.syntax_errors`` puts the error in words from that and
the tokens before it, in time linear in the text (Lark's own parser, a few
times slower per token, is never run on the text).

It must not: evaluate or ``eval`` anything, know function names or arities
(lowering checks those against the registry), recurse on expression depth
(the LALR loop keeps explicit stacks), build the Lark parser at import time,
or let a Lark exception out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from pathlib import Path

from lark import Lark

from exprgrad.ast_nodes import (
    Call,
    Compare,
    Definition,
    Expr,
    Indexed,
    Name,
    Negate,
    Number,
    Power,
    Product,
    Program,
    Span,
    Sum,
)
from exprgrad.errors import quoted
from exprgrad.lalr import Automaton, ContinueInsideBrackets, Rejected
from exprgrad.syntax_errors import WHOLE_INDEX, diagnose, syntax_error, unexpected_character

_parser: Lark | None = None  # built by the first parse() call, then reused
_automaton: Automaton | None = None  # read from _parser at the same time


def grammar_path() -> Path:
    """Where ``exprgrad.lark`` is: inside the package (wheel), else in the checkout.

    Raises:
        FileNotFoundError: neither place has the file (a broken install).
    """
    here = Path(__file__).resolve().parent
    for candidate in (here / "grammar" / "exprgrad.lark", here.parent / "grammar" / "exprgrad.lark"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"exprgrad's grammar file is missing: looked for {here / 'grammar' / 'exprgrad.lark'} "
        f"and {here.parent / 'grammar' / 'exprgrad.lark'}; reinstall exprgrad"
    )


def _get_parser() -> Lark:
    global _parser, _automaton
    if _parser is None:
        lark = Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            postlex=ContinueInsideBrackets(),
        )
        _automaton = Automaton(lark)
        _parser = lark
    return _parser


def _get_automaton() -> Automaton:
    _get_parser()
    return _automaton


def _name_character(char: str) -> bool:
    """Letters, digits, '_', and the combining marks Python allows in identifiers."""
    if char.isalnum() or char == "_":
        return ("_" + char).isidentifier()
    return unicodedata.category(char) in ("Mn", "Mc") and ("_" + char).isidentifier()


# An index has at most this many digits (Python refuses to read an int of
# over 4300 digits, and no family is that large).
_INDEX_DIGITS = 18

# The operator tokens of a chain: what each means for the Sum or Product.
_SIGN = {"PLUS": 1, "MINUS": -1}
_DIVIDES = {"STAR": False, "SLASH": True}


class _AstBuilder:
    """AST nodes for tokens and reductions, with spans. Builds, never evaluates.

    A node spans its whole rule: parentheses and signs around an operand belong
    to the node that contains them ('(x)^2' is the power's text, 'x' the base's).
    A problem in a well-formed text (a number too large) is kept, not raised:
    a syntax error anywhere in the text is reported first.
    """

    def __init__(self, text: str):
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]
        self.problem: tuple[str, Span] | None = None  # the first one

    def span(self, start: int, end: int) -> Span:
        """The span of text[start:end]: line and column of the start, width if on one line."""
        if not self.newlines:
            return Span(1, start + 1, end - start)
        line = bisect_left(self.newlines, start)  # line breaks before start
        column = start - (self.newlines[line - 1] + 1 if line else 0) + 1
        same_line = line == bisect_left(self.newlines, end)
        return Span(line + 1, column, end - start if same_line else 1)

    def report(self, message: str, where: Span) -> None:
        if self.problem is None:
            self.problem = (message, where)

    def NUMBER(self, start: int, end: int) -> Number:
        text = self.text[start:end]
        value = float(text)
        if not math.isfinite(value):
            self.report(f"the number {quoted(text)} is too large", self.span(start, end))
        return Number(value, text, self.span(start, end))

    def NAME(self, start: int, end: int) -> Name:
        text = self.text[start:end]
        # The grammar admits numeric symbols ('x²') and any non-ASCII character
        # after the first; a name is letters, digits, '_' and combining marks.
        if not text.isidentifier() or not (text.isascii() or all(map(_name_character, text))):
            bad = next((i for i, c in enumerate(text) if not _name_character(c)), 0)
            self.report(unexpected_character(text[bad]), self.span(start + bad, start + bad + 1))
        return Name(text, self.span(start, end))

    def sum(self, children: list, start: int, end: int) -> Sum:
        signs = (1, *map(_SIGN.__getitem__, children[1::2]))
        return Sum(tuple(children[0::2]), signs, self.span(start, end))

    def product(self, children: list, start: int, end: int) -> Product:
        divides = (False, *map(_DIVIDES.__getitem__, children[1::2]))
        return Product(tuple(children[0::2]), divides, self.span(start, end))

    def negate(self, children: list, start: int, end: int) -> Negate:
        return Negate(children[0], self.span(start, end))

    def power(self, children: list, start: int, end: int) -> Power:
        return Power(children[0], children[1], self.span(start, end))

    def compare(self, children: list, start: int, end: int) -> Compare:
        left, op, right = children
        return Compare(left, str(op), right, self.span(start, end))

    def call(self, children: list, start: int, end: int) -> Call:
        name = children[0]
        return Call(name.name, tuple(children[1:]), self.span(start, end), name.span)

    def indexed(self, children: list, start: int, end: int) -> Indexed:
        name, index = children
        if not index.text.isdigit():
            self.report(WHOLE_INDEX, index.span)
            return Indexed(name.name, 0, self.span(start, end))
        if len(index.text.lstrip("0")) > _INDEX_DIGITS:
            self.report(
                f"the index {quoted(index.text)} is too large (at most {_INDEX_DIGITS} digits)", index.span
            )
            return Indexed(name.name, 0, self.span(start, end))
        return Indexed(name.name, int(index.text), self.span(start, end))

    def definition(self, children: list, start: int, end: int) -> Definition:
        name, value = children
        return Definition(name.name, value, self.span(start, end))

    def start(self, children: list, start: int, end: int) -> list[Definition | Expr]:
        return children


def parse(text: str) -> Program:
    """Parse a program: definitions (``name = expr``), then the expression to compute.

    Args:
        text: the source; statements are separated by ';' or line breaks. It is
            put in Unicode normal form NFC first (the program's ``source`` and
            every position refer to that form), so a name has one spelling.

    Returns:
        The Program: definitions in source order, the final expression, the text.
        A chain at one precedence level is one flat Sum or Product; a single
        term is the term itself; a unary plus is dropped.

    Raises:
        ExprSyntaxError: the text is not a program, with line, column and width.
    """
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        # One spelling per name: é typed as e + U+0301 is the é of U+00E9.
        text = unicodedata.normalize("NFC", text)
    build = _AstBuilder(text)
    try:
        statements = _get_automaton().run(text, build)
    except Rejected as rejected:
        automaton = _get_automaton()
        where = rejected.rejection
        raise diagnose(text, where, automaton.tokens(text, where.start)) from None
    if build.problem is not None:
        message, where = build.problem
        raise syntax_error(message, text, where)
    return _program(text, statements)


def _program(text: str, statements: list[Definition | Expr]) -> Program:
    """Checks the statement order: definitions first, exactly one expression last."""
    if not statements:
        raise syntax_error("empty expression: there is nothing to compute", text, Span(1, 1))
    *definitions, result = statements
    for statement in definitions:
        if not isinstance(statement, Definition):
            message = (
                "an expression can only come last; only definitions (name = expression) may come before it"
            )
            raise syntax_error(message, text, statement.span)
    if isinstance(result, Definition):
        message = (
            "the last statement must be the expression to compute, not a definition "
            f"(add a last line such as {quoted(result.name)})"
        )
        raise syntax_error(message, text, result.span)
    return Program(tuple(definitions), result, text)
