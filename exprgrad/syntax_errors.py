"""Syntax errors in words: the slow path ``parse`` takes only for a text it rejected.

In: the source text the fast path rejected, where and how it stopped (a
``Rejection``: the offending token, or a character no token matches, and the
terminals the grammar allowed there), and the tokens before that point; or,
for a problem the parser found itself, a message and a span.
Out: an ``ExprSyntaxError`` with line, column, width and a message a beginner
understands ("missing closing parenthesis: the '(' at line 2, column 5 is
never closed"), chosen from the offending token and what came before it.

How: the tokens before the offending one give the context (unclosed
brackets, an earlier '=', the token just before); only the few tokens the
message names become Lark ``Token`` objects. The work is linear in the text
and a small constant per token, so a 1M-character line is diagnosed in about
the time it takes to scan it.

It must not: build or cache the Lark parser (``exprgrad.parse`` does, lazily,
once) nor import ``exprgrad.parse`` (the stages flow one way), sit on the path
of a valid text, or let a Lark exception out.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from exprgrad.ast_nodes import REDUCTIONS, Span
from exprgrad.errors import ExprSyntaxError, quoted

if TYPE_CHECKING:
    from lark import Token  # imported where a message needs one: a valid text never loads lark

_COMPARISONS = frozenset({"LT", "LE", "GT", "GE", "EQ", "NE"})
_OPERATORS = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "_POW"}) | _COMPARISONS
_OPERAND_STARTS = frozenset({"NAME", "NUMBER", "LPAR"})
# Characters people paste from papers, with the spelling exprgrad wants instead.
_CHARACTER_HINTS = {
    "−": "write '-' for minus",
    "×": "write '*' to multiply",
    "·": "write '*' to multiply",
    "÷": "write '/' to divide",
    "²": "write ^2 for a power",
    "³": "write ^3 for a power",
    "≤": "write <= for less or equal",
    "≥": "write >= for greater or equal",
    "≠": "write != for not equal",
    "!": "write != for not equal",
    "'": "exprgrad has no strings",
    '"': "exprgrad has no strings",
}
# What a character without a Unicode name is, by its category.
_UNNAMED = {
    "Cc": "a control character",
    "Cs": "a byte that is not UTF-8, or a lone surrogate",
    "Co": "a private-use character",
    "Cn": "not a character",
}
# Said by the parser of theta[1.5] (a NUMBER, but not whole) and here of theta[-1].
WHOLE_INDEX = "an index must be a whole number, like theta[0]"
# Said of anything else in brackets: w[j+1], w[f(j)].
INDEX_FORM = "an index is a name or a whole number, as in w[j] or theta[0]"


@dataclass(frozen=True)
class Rejection:
    """Where the fast path stopped: text[start:end] is a token of terminal ``kind``
    ("$END" at the end of the text) that no rule allows there, or, with ``kind``
    None, the character at ``start`` starts no token. ``expected``: the
    terminals the grammar allowed instead."""

    kind: str | None
    start: int
    end: int
    expected: frozenset[str] = frozenset()


def diagnose(text: str, rejection: Rejection, tokens: Iterable[tuple[str, int, int]]) -> ExprSyntaxError:
    """The error for a text the fast path rejected.

    Args:
        text: the whole source text.
        rejection: where and how the fast path stopped.
        tokens: (terminal, start, end) of every token before ``rejection.start``,
            line breaks inside brackets left out, as the parser saw them.

    Returns:
        The ExprSyntaxError to raise, placed at the offending token.
    """
    where_is = _Positions(text)
    if rejection.kind is None:
        line, column = where_is(rejection.start)
        return syntax_error(unexpected_character(text[rejection.start]), text, Span(line, column))
    ctx = _context(tokens, where_is)
    if rejection.kind == "$END":
        from lark import Token

        token = Token("$END", "")
        last = ctx.prev
        if last is None:
            where = Span(1, 1)
        elif last.type == "_SEP" and last == "\n":
            where = Span(last.line, last.column)
        else:  # just past the last character of the input
            where = Span(last.end_line, last.end_column)
    else:
        token = where_is.token(rejection.kind, rejection.start, rejection.end)
        where = _span(token) if "\n" not in token else Span(token.line, token.column)
    lead = ctx.lead
    if len(lead) >= 2 and lead[0].type == lead[1].type == "NAME":
        # The statement began like a declaration (k in 1:16).
        if lead[1] != "in":
            return syntax_error(missing_operator(lead[0], lead[1]), text, _span(lead[1]))
        return syntax_error(_declaration_message(token, lead), text, where)
    return syntax_error(_message(token, set(rejection.expected), ctx), text, where)


class _Positions:
    """Line and column of offsets into one text, and Lark tokens placed in it."""

    def __init__(self, text: str):
        self.text = text
        self.newlines = [m.start() for m in re.finditer("\n", text)]

    def __call__(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of text[offset]."""
        before = bisect_left(self.newlines, offset)  # line breaks before offset
        start = self.newlines[before - 1] + 1 if before else 0
        return before + 1, offset - start + 1

    def token(self, kind: str, start: int, end: int) -> Token:
        from lark import Token

        line, column = self(start)
        end_line, end_column = self(end)
        return Token(kind, self.text[start:end], start, line, column, end_line, end_column, end)


def syntax_error(message: str, text: str, where: Span) -> ExprSyntaxError:
    """An ExprSyntaxError saying ``message`` about ``where`` in ``text``."""
    return ExprSyntaxError(message, source=text, line=where.line, column=where.column, width=where.width)


def missing_operator(before: str, after: str) -> str:
    """The message for two operands side by side (a b, 2(x), w[j](x))."""
    return f"missing operator between {quoted(before)} and {quoted(after)} (write '*' to multiply)"


def unexpected_character(char: str) -> str:
    """The message for a character no token may contain, with a hint for common look-alikes."""
    if char == "'":
        shown = f'"{char}"'
    elif char.isprintable() and unicodedata.category(char)[0] not in "MC":
        shown = f"'{char}'"
    else:  # invisible, or a mark that would sit on the quote: by code point and name
        name = unicodedata.name(char, "").lower() or _UNNAMED.get(unicodedata.category(char), "unnamed")
        shown = f"U+{ord(char):04X} ({name})"
    hint = _CHARACTER_HINTS.get(char)
    return f"unexpected character {shown}" + (f" ({hint})" if hint else "")


def _span(token: Token) -> Span:
    """The span of a Lark token: its start, and its width if on one line."""
    width = token.end_column - token.column if token.line == token.end_line else 1
    return Span(token.line, token.column, width)


@dataclass
class _Context:
    """What came before the offending token, from lexing the text up to it."""

    prev: Token | None = None  # the token just before (a line break counts)
    opens: list[Token] = field(default_factory=list)  # unclosed '(' and '[', innermost last
    owner: Token | None = None  # the token just before the innermost unclosed bracket
    lead: list[Token] = field(default_factory=list)  # the first tokens of the statement (up to 6)
    has_equal: bool = False  # an '=' earlier in the same statement
    # Per bracket depth (outermost first), the comparison already made in the
    # current operand there: a second one would chain (a < b < c).
    compared: list[Token | None] = field(default_factory=lambda: [None])


def _context(tokens: Iterable[tuple[str, int, int]], where_is: _Positions) -> _Context:
    """The context of the tokens before the offending one; only the ones kept become Tokens."""
    opens: list[tuple] = []
    owners: list[tuple | None] = []  # the token before each of opens
    compared: list[tuple | None] = [None]
    has_equal = False
    prev = None
    lead: list[tuple] = []
    for item in tokens:
        kind = item[0]
        if len(lead) < 6:
            lead.append(item)
        if kind in ("LPAR", "LSQB"):
            opens.append(item)
            owners.append(prev)
            compared.append(None)
        elif kind in ("RPAR", "RSQB") and opens:
            opens.pop()
            owners.pop()
            compared.pop()
        elif kind == "EQUAL":
            has_equal = True
        elif kind == "_SEP" and not opens:
            has_equal = False
            compared[-1] = None
            lead = []
        elif kind == "COMMA":
            compared[-1] = None
        elif kind in _COMPARISONS:
            compared[-1] = item
        prev = item
    return _Context(
        prev=None if prev is None else where_is.token(*prev),
        opens=[where_is.token(*item) for item in opens],
        owner=None if not owners or owners[-1] is None else where_is.token(*owners[-1]),
        lead=[where_is.token(*item) for item in lead],
        has_equal=has_equal,
        compared=[None if item is None else where_is.token(*item) for item in compared],
    )


def _ending(token: Token) -> str:
    """How a statement that stops early stopped, for the end of a message."""
    if token.type == "$END":
        return ", but the input ended"
    if token.type == "_SEP" and token == "\n":
        return ", but the line ended (inside parentheses a statement may continue on the next line)"
    return ""


def _message(token: Token, expected: set[str], ctx: _Context) -> str:
    """The words for one parse error: the offending token, in its context."""
    kind, prev = token.type, ctx.prev
    prev_kind = prev.type if prev is not None else None
    wants_operand = bool(expected & {"NAME", "NUMBER"})
    ends = kind in ("$END", "_SEP")
    opener = ctx.opens[-1] if ctx.opens else None

    if opener is not None and opener.type == "LSQB":
        return _bracket_message(token, ctx)
    if kind in _COMPARISONS and ctx.compared[-1] is not None and not wants_operand:
        first = ctx.compared[-1]
        at = (
            f"column {first.column}"
            if first.line == token.line
            else f"line {first.line}, column {first.column}"
        )
        return (
            f"comparisons do not chain: this {quoted(token)} would compare the result of the "
            f"{quoted(first)} at {at}; write (a < b)*(b < c) for 'a < b and b < c'"
        )
    if prev_kind in _OPERATORS and wants_operand:
        return f"expected an operand after {quoted(prev)}" + _ending(token)
    if (prev_kind == "COMMA" and wants_operand) or (kind == "COMMA" and prev_kind == "LPAR"):
        return ("expected an argument after ','" + _ending(token)) if ends else "missing argument"
    if kind == "EQUAL":
        if opener is not None:
            return "'=' cannot be used inside parentheses; a definition is a statement: name = expression"
        if ctx.has_equal:
            return "a statement can contain only one '='"
        return "'=' can only follow a plain name"
    if prev_kind == "EQUAL" and wants_operand:
        return "expected an expression after '='" + _ending(token)
    if kind == "RPAR":
        if prev_kind == "LPAR":
            return "empty parentheses"
        if opener is None:
            return "unmatched closing parenthesis"
    if ends and opener is not None:
        return (
            f"missing closing parenthesis: the '(' at line {opener.line}, "
            f"column {opener.column} is never closed"
        )
    if kind in _OPERAND_STARTS and not wants_operand and prev is not None:
        message = f"missing operator between {quoted(prev)} and {quoted(token)} (write '*' to multiply)"
        if opener is not None and prev.end_line != token.line:
            message += f", or the '(' at line {opener.line}, column {opener.column} is never closed"
        return message
    if kind == "COMMA":
        return "',' can only separate the arguments of a function call, as in atan2(y, x)"
    if kind == "COLON":
        return "':' can only stand in a declaration of a range, as in k in 1:16"
    if kind in _OPERATORS and wants_operand:
        return f"expected an operand before {quoted(token)}"
    if kind == "LSQB":
        return "'[' can only follow a name, as in theta[0]"
    if kind == "RSQB":
        return "unmatched closing bracket ']'"
    if kind == "$END":
        return "unexpected end of input"
    return "unexpected ';'" if kind == "_SEP" and token == ";" else f"unexpected {quoted(token)}"


def _bracket_message(token: Token, ctx: _Context) -> str:
    """The words for a parse error inside brackets: w[j, theta[-1], sum[](x), W[k j]."""
    kind, prev = token.type, ctx.prev
    prev_kind = prev.type if prev is not None else None
    ends = kind in ("$END", "_SEP")
    owner = ctx.owner
    if prev_kind in ("NAME", "NUMBER") and (ends or kind == "RPAR"):
        return "missing closing bracket ']'"
    if prev_kind == "LSQB" and kind == "RSQB" and owner is not None and owner in REDUCTIONS:
        return f"{owner}[] names no index: write the index to reduce over, as in {owner}[j](x[j])"
    if prev_kind in ("NAME", "NUMBER") and kind in ("NAME", "NUMBER"):
        return f"missing ',' between the indices {quoted(prev)} and {quoted(token)}"
    if prev_kind == "COMMA" and (ends or kind == "RSQB"):
        return "expected an index after ','" + _ending(token)
    if prev_kind in ("LSQB", "COMMA") and kind in ("MINUS", "PLUS", "RSQB"):
        return WHOLE_INDEX  # theta[-1], theta[]
    return INDEX_FORM


def _declaration_message(token: Token, lead: list[Token]) -> str:
    """The words for a parse error in a statement that began 'k in': where its range went wrong."""
    index = lead[0]
    example = f"{index} in 1:16"
    ends = token.type in ("$END", "_SEP")
    if len(lead) == 2:  # k in ?
        if ends:
            return f"expected a range after 'in', as in {example}" + _ending(token)
        return f"a range is two whole numbers, first:last, as in {example}"
    if len(lead) == 3:  # k in 1 ?
        return f"a range is written first:last, as in {example}" + _ending(token)
    if len(lead) == 4:  # k in 1: ?
        if ends:
            return f"expected the last label after ':', as in {example}" + _ending(token)
        return f"a range is two whole numbers, first:last, as in {example}"
    return f"a declaration is only {quoted(f'{index} in first:last')}; start the next statement after ';' or a line break"
