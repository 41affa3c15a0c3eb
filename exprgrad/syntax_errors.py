"""Syntax errors in words: the slow path ``parse`` takes only for a text it rejected.

In: the source text the fast path rejected, and the Lark parser ``exprgrad.parse``
built from the grammar; or, for a problem the parser found itself, a message
and a span.
Out: an ``ExprSyntaxError`` with line, column, width and a message a beginner
understands ("missing closing parenthesis: the '(' at line 2, column 5 is
never closed"), chosen from the offending token and what came before it.

How: Lark's own parser runs on the text for the exception (which token, what
was expected); Lark's lexer runs on the text up to that token for the context
(unclosed brackets, an earlier '=', the token just before).

It must not: build or cache the Lark parser (``exprgrad.parse`` does, lazily,
once) nor import ``exprgrad.parse`` (the stages flow one way), sit on the path
of a valid text, or let a Lark exception out.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from exprgrad.ast_nodes import Span
from exprgrad.errors import ExprSyntaxError, quoted

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
# Said by the parser of theta[1.5] (a NUMBER, but not whole) and here of theta[a].
WHOLE_INDEX = "an index must be a whole number, like theta[0]"


def diagnose(text: str, lark: Lark) -> ExprSyntaxError:
    """The error for a text the fast path rejected, from Lark's own parse of it.

    Args:
        text: the whole source text.
        lark: the LALR parser built from ``grammar/exprgrad.lark``.

    Returns:
        The ExprSyntaxError to raise, placed at the offending token.

    Raises:
        RuntimeError: Lark accepts the text (the fast path and Lark disagree: a bug).
    """
    try:
        lark.parse(text)
    except UnexpectedInput as exc:
        return _from_lark(text, exc, lark)
    raise RuntimeError(f"exprgrad's parser rejected a text Lark accepts (a bug): {text[:200]!r}")


def syntax_error(message: str, text: str, where: Span) -> ExprSyntaxError:
    """An ExprSyntaxError saying ``message`` about ``where`` in ``text``."""
    return ExprSyntaxError(message, source=text, line=where.line, column=where.column, width=where.width)


def unexpected_character(char: str) -> str:
    """The message for a character no token may contain, with a hint for common look-alikes."""
    if char == "'":
        shown = f'"{char}"'
    elif char.isprintable() and unicodedata.category(char)[0] not in "MC":
        shown = f"'{char}'"
    else:  # invisible, or a mark that would sit on the quote: by code point and name
        shown = f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character').lower()})"
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
    has_equal: bool = False  # an '=' earlier in the same statement
    # Per bracket depth (outermost first), the comparison already made in the
    # current operand there: a second one would chain (a < b < c).
    compared: list[Token | None] = field(default_factory=lambda: [None])


def _context(text: str, stop: int, lark: Lark) -> _Context:
    ctx = _Context()
    for token in lark.lex(text[:stop]):
        if token.type in ("LPAR", "LSQB"):
            ctx.opens.append(token)
            ctx.compared.append(None)
        elif token.type in ("RPAR", "RSQB") and ctx.opens:
            ctx.opens.pop()
            ctx.compared.pop()
        elif token.type == "EQUAL":
            ctx.has_equal = True
        elif token.type == "_SEP" and not ctx.opens:
            ctx.has_equal = False
            ctx.compared[-1] = None
        elif token.type == "COMMA":
            ctx.compared[-1] = None
        elif token.type in _COMPARISONS:
            ctx.compared[-1] = token
        ctx.prev = token
    return ctx


def _from_lark(text: str, exc: UnexpectedInput, lark: Lark) -> ExprSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        where = Span(exc.line, exc.column)
        return syntax_error(unexpected_character(text[exc.pos_in_stream]), text, where)
    token = getattr(exc, "token", None)
    if not isinstance(exc, UnexpectedToken) or token is None or token.type == "$END":
        ctx = _context(text, len(text), lark)
        token = Token("$END", "")
        last = ctx.prev
        if last is None:
            where = Span(1, 1)
        elif last.type == "_SEP" and last == "\n":
            where = Span(last.line, last.column)
        else:  # just past the last character of the input
            where = Span(last.end_line, last.end_column)
    else:
        ctx = _context(text, token.start_pos, lark)
        where = _span(token) if "\n" not in token else Span(token.line, token.column)
    expected = set(getattr(exc, "expected", ()) or ())
    return syntax_error(_message(token, expected, ctx), text, where)


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
        if prev_kind == "NUMBER" and (ends or kind == "RPAR"):
            return "missing closing bracket ']'"
        return WHOLE_INDEX
    if kind in _COMPARISONS and ctx.compared[-1] is not None and not wants_operand:
        first = ctx.compared[-1]
        at = f"column {first.column}" if first.line == token.line else f"line {first.line}, column {first.column}"
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
    if kind in _OPERATORS and wants_operand:
        return f"expected an operand before {quoted(token)}"
    if kind == "LSQB":
        return "'[' can only follow a name, as in theta[0]"
    if kind == "RSQB":
        return "unmatched closing bracket ']'"
    if kind == "$END":
        return "unexpected end of input"
    return "unexpected ';'" if kind == "_SEP" and token == ";" else f"unexpected {quoted(token)}"
