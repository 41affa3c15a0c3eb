"""Text -> AST: the first stage of the pipeline.

In: the source text of a program (definitions, then one expression), written
in the language of ``grammar/exprgrad.lark``.
Out: an ``exprgrad.ast_nodes.Program`` whose nodes carry 1-based source spans,
or an ``ExprSyntaxError`` with line, column and a message in words.

It must not: evaluate or ``eval`` anything, know function names or arities
(lowering checks those against the registry), recurse on expression depth
(the LALR parser and ``Transformer_NonRecursive`` both work with explicit
stacks), build the Lark parser at import time, or let a Lark exception out.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.lark import PostLex
from lark.tree import Meta

from exprgrad.ast_nodes import (
    Call,
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
from exprgrad.errors import ExprSyntaxError

_OPERATORS = frozenset({"PLUS", "MINUS", "STAR", "SLASH", "_POW"})
_OPERAND_STARTS = frozenset({"NAME", "NUMBER", "LPAR"})
# Characters people paste from papers, with the spelling exprgrad wants instead.
_CHARACTER_HINTS = {
    "−": "write '-' for minus",
    "×": "write '*' to multiply",
    "·": "write '*' to multiply",
    "÷": "write '/' to divide",
    "²": "write ^2 for a power",
    "³": "write ^3 for a power",
    "'": "exprgrad has no strings",
    '"': "exprgrad has no strings",
}

_parser: Lark | None = None  # built by the first parse() call, then reused


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


class _ContinueInsideBrackets(PostLex):
    """Drops line breaks inside () and [], so a long expression may span lines."""

    # The contextual lexer must see a line break in every parser state to drop it here.
    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB") and depth:
                depth -= 1
            elif token.type == "_SEP" and depth and token == "\n":
                continue
            yield token


def _get_parser() -> Lark:
    global _parser
    if _parser is None:
        _parser = Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            propagate_positions=True,
            postlex=_ContinueInsideBrackets(),
        )
    return _parser


def _span(where: Token | Meta) -> Span:
    """The span of a token or a tree's meta: its start, and its width if on one line."""
    width = where.end_column - where.column if where.line == where.end_line else 1
    return Span(where.line, where.column, width)


def _error(message: str, text: str, where: Span) -> ExprSyntaxError:
    return ExprSyntaxError(message, source=text, line=where.line, column=where.column, width=where.width)


class _AstBuilder(Transformer_NonRecursive):
    """Lark tree -> AST nodes, bottom-up with an explicit stack. Builds, never evaluates."""

    def __init__(self, text: str):
        super().__init__(visit_tokens=True)
        self.text = text

    def NUMBER(self, token: Token) -> Number:
        value = float(token)
        if not math.isfinite(value):
            raise _error(f"the number '{token}' is too large", self.text, _span(token))
        return Number(value, str(token), _span(token))

    def NAME(self, token: Token) -> Name:
        # The grammar's \w admits numeric symbols ('x²'); a name must be an identifier.
        if not token.isidentifier():
            bad = next((i for i, c in enumerate(token) if not ("_" + c).isidentifier()), 0)
            where = Span(token.line, token.column + bad, 1)
            raise _error(_unexpected_character(token[bad]), self.text, where)
        return Name(str(token), _span(token))

    @v_args(meta=True)
    def sum(self, meta: Meta, children: list) -> Sum:
        signs = (1, *(1 if op.type == "PLUS" else -1 for op in children[1::2]))
        return Sum(tuple(children[0::2]), signs, _span(meta))

    @v_args(meta=True)
    def product(self, meta: Meta, children: list) -> Product:
        divides = (False, *(op.type == "SLASH" for op in children[1::2]))
        return Product(tuple(children[0::2]), divides, _span(meta))

    @v_args(meta=True)
    def negate(self, meta: Meta, children: list) -> Negate:
        return Negate(children[0], _span(meta))

    @v_args(meta=True)
    def power(self, meta: Meta, children: list) -> Power:
        return Power(children[0], children[1], _span(meta))

    @v_args(meta=True)
    def call(self, meta: Meta, children: list) -> Call:
        name = children[0]
        return Call(name.name, tuple(children[1:]), _span(meta), name.span)

    @v_args(meta=True)
    def indexed(self, meta: Meta, children: list) -> Indexed:
        name, index = children
        if not index.text.isdigit():
            raise _error("an index must be a whole number, like theta[0]", self.text, index.span)
        return Indexed(name.name, int(index.text), _span(meta))

    @v_args(meta=True)
    def definition(self, meta: Meta, children: list) -> Definition:
        name, value = children
        return Definition(name.name, value, _span(meta))

    def start(self, children: list) -> list[Definition | Expr]:
        return children


def parse(text: str) -> Program:
    """Parse a program: definitions (``name = expr``), then the expression to compute.

    Args:
        text: the source; statements are separated by ';' or line breaks.

    Returns:
        The Program: definitions in source order, the final expression, the text.
        A chain at one precedence level is one flat Sum or Product; a single
        term is the term itself; a unary plus is dropped.

    Raises:
        ExprSyntaxError: the text is not a program, with line, column and width.
    """
    try:
        tree = _get_parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        statements = _AstBuilder(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ExprSyntaxError):
            raise exc.orig_exc from None
        raise
    return _program(text, statements)


def _program(text: str, statements: list[Definition | Expr]) -> Program:
    """Checks the statement order: definitions first, exactly one expression last."""
    if not statements:
        raise _error("empty expression: there is nothing to compute", text, Span(1, 1))
    *definitions, result = statements
    for statement in definitions:
        if not isinstance(statement, Definition):
            message = (
                "an expression can only come last; only definitions (name = expression) may come before it"
            )
            raise _error(message, text, statement.span)
    if isinstance(result, Definition):
        message = (
            "the last statement must be the expression to compute, not a definition "
            f"(add a last line such as '{result.name}')"
        )
        raise _error(message, text, result.span)
    return Program(tuple(definitions), result, text)


# ---- syntax errors in words -------------------------------------------------


def _unexpected_character(char: str) -> str:
    shown = f'"{char}"' if char == "'" else f"'{char}'" if char.isprintable() else repr(char)
    hint = _CHARACTER_HINTS.get(char)
    return f"unexpected character {shown}" + (f" ({hint})" if hint else "")


@dataclass
class _Context:
    """What came before the offending token, from lexing the text up to it."""

    prev: Token | None = None  # the token just before (a line break counts)
    opens: list[Token] = field(default_factory=list)  # unclosed '(' and '[', innermost last
    has_equal: bool = False  # an '=' earlier in the same statement


def _context(text: str, stop: int) -> _Context:
    ctx = _Context()
    for token in _get_parser().lex(text[:stop]):
        if token.type in ("LPAR", "LSQB"):
            ctx.opens.append(token)
        elif token.type in ("RPAR", "RSQB") and ctx.opens:
            ctx.opens.pop()
        elif token.type == "EQUAL":
            ctx.has_equal = True
        elif token.type == "_SEP" and not ctx.opens:
            ctx.has_equal = False
        ctx.prev = token
    return ctx


def _syntax_error(text: str, exc: UnexpectedInput) -> ExprSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        where = Span(exc.line, exc.column)
        return _error(_unexpected_character(text[exc.pos_in_stream]), text, where)
    token = getattr(exc, "token", None)
    if not isinstance(exc, UnexpectedToken) or token is None or token.type == "$END":
        ctx = _context(text, len(text))
        token = Token("$END", "")
        last = ctx.prev
        if last is None:
            where = Span(1, 1)
        elif last.type == "_SEP" and last == "\n":
            where = Span(last.line, last.column)
        else:  # just past the last character of the input
            where = Span(last.end_line, last.end_column)
    else:
        ctx = _context(text, token.start_pos)
        where = _span(token) if "\n" not in token else Span(token.line, token.column)
    expected = set(getattr(exc, "expected", ()) or ())
    return _error(_message(token, expected, ctx), text, where)


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
        return "an index must be a whole number, like theta[0]"
    if prev_kind in _OPERATORS and wants_operand:
        return f"expected an operand after '{prev}'" + _ending(token)
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
        message = f"missing operator between '{prev}' and '{token}' (write '*' to multiply)"
        if opener is not None and prev.end_line != token.line:
            message += f", or the '(' at line {opener.line}, column {opener.column} is never closed"
        return message
    if kind == "COMMA":
        return "',' can only separate the arguments of a function call, as in atan2(y, x)"
    if kind in _OPERATORS and wants_operand:
        return f"expected an operand before '{token}'"
    if kind == "LSQB":
        return "'[' can only follow a name, as in theta[0]"
    if kind == "RSQB":
        return "unmatched closing bracket ']'"
    if kind == "$END":
        return "unexpected end of input"
    return "unexpected ';'" if kind == "_SEP" and token == ";" else f"unexpected '{token}'"
