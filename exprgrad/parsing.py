"""Text -> AST: the first stage of the pipeline.

In: the source text of a program (definitions and declarations of index
ranges, then one expression), written in the language of ``grammar/exprgrad.lark``.
Out: an ``exprgrad.ast_nodes.Program`` whose nodes carry 1-based source spans,
or an ``ExprSyntaxError`` with line, column and a message in words.

How: Lark's analysis of the grammar (LALR(1)) is shipped beside it, in
``exprgrad.table.json`` (made by ``write_table``, checked by tests/test_startup.py),
so a command reads it in a millisecond instead of asking Lark for it, and
without importing Lark; if that file is missing, damaged, or was made from
another grammar text, Lark analyses the grammar again, in memory only (nothing
is ever written at run time, so a read-only install works the same).
``exprgrad.lalr`` runs the terminals and parse table in one loop, and
``_AstBuilder`` here makes the AST nodes at each reduction, with no parse
tree and no Token objects. When that
loop rejects the text it says where (the token, and the terminals its state
allowed), and ``exprgrad.syntax_errors`` puts the error in words from that and
the tokens before it, in time linear in the text (Lark's own parser, a few
times slower per token, is never run on the text).

It must not: evaluate or ``eval`` anything, know function names or arities
(lowering checks those against the registry; the one set of names it knows is
``ast_nodes.REDUCTIONS``, which tells sum[j](x) from the missing operator of
w[j](x)), recurse on expression depth
(the LALR loop keeps explicit stacks), build the Lark parser at import time
or when the shipped table serves, write a file while parsing (``write_table``
is run by hand, after an edit of the grammar), or let a Lark exception out.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING

from exprgrad.ast_nodes import (
    REDUCTIONS,
    Additive,
    Call,
    Compare,
    Declaration,
    Definition,
    Expr,
    Index,
    Indexed,
    Name,
    Negate,
    Number,
    Power,
    Product,
    Program,
    Reduce,
    Span,
    Subscript,
)
from exprgrad.errors import quoted
from exprgrad.lalr import Automaton, ContinueInsideBrackets, Rejected, dumps, loads
from exprgrad.syntax_errors import (
    WHOLE_INDEX,
    diagnose,
    missing_operator,
    syntax_error,
    unexpected_character,
)

if TYPE_CHECKING:
    from lark import Lark

_automaton: Automaton | None = None  # read by the first parse() call, then reused
_parser: Lark | None = None  # Lark's own parser: built only when the saved table cannot be used, and by tests

# The saved analysis of the grammar, in the folder of the grammar file.
TABLE_NAME = "exprgrad.table.json"


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


def table_path() -> Path:
    """Where the saved analysis of the grammar is: beside the grammar file."""
    return grammar_path().with_name(TABLE_NAME)


def table_text() -> str:
    """What ``exprgrad.table.json`` holds for the grammar as it is now (Lark analyses it)."""
    return dumps(Automaton(_get_parser()), grammar_path().read_text(encoding="utf-8"))


def write_table() -> Path:
    """Writes ``exprgrad.table.json`` for the grammar as it is now; run after editing the grammar:

        python -c "from exprgrad.parsing import write_table; write_table()"

    Returns:
        The path written.
    """
    path = table_path()
    partial = path.with_name(path.name + ".partial")  # renamed when whole: never a half-written table
    partial.write_text(table_text(), encoding="utf-8")
    partial.replace(path)
    return path


def _get_parser() -> Lark:
    """Lark's own LALR parser of the grammar, built once (``parse`` never runs it on a text)."""
    global _parser
    if _parser is None:
        from lark import Lark

        _parser = Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            postlex=ContinueInsideBrackets(),
        )
    return _parser


def _saved_automaton() -> Automaton | None:
    """The shipped analysis, if it was made from this very grammar text; else None."""
    try:
        grammar = grammar_path().read_text(encoding="utf-8")
        saved = table_path().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return loads(saved, grammar)


def _get_automaton() -> Automaton:
    global _automaton
    if _automaton is None:
        _automaton = _saved_automaton() or Automaton(_get_parser())
    return _automaton


def _name_character(char: str) -> bool:
    """Letters, digits, '_', and the combining marks Python allows in identifiers."""
    if char.isalnum() or char == "_":
        return ("_" + char).isidentifier()
    return unicodedata.category(char) in ("Mn", "Mc") and ("_" + char).isidentifier()


# An index has at most this many digits (Python refuses to read an int of
# over 4300 digits, and no family is that large).
_INDEX_DIGITS = 18

# Spaces, line breaks and comments between two tokens (inside brackets a line
# break is no separator): what may stand between the ']' and '(' of w[j](x).
_GAP = re.compile(r"(?:[ \t\r\n]|#[^\n]*)*")

# The operator tokens of a chain: what each means for the Additive or Product.
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
        """Keeps the problem that comes first in the text (a reduction reports after its body)."""
        if self.problem is None or (where.line, where.column) < (
            self.problem[1].line,
            self.problem[1].column,
        ):
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

    def additive(self, children: list, start: int, end: int) -> Additive:
        signs = (1, *map(_SIGN.__getitem__, children[1::2]))
        return Additive(tuple(children[0::2]), signs, self.span(start, end))

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

    def subscripts(self, children: list, start: int, end: int) -> tuple[list, int]:
        """The Name and Number nodes written in brackets, and the offset just past them."""
        return children, end

    def label(self, number: Number) -> int:
        """The label a number in brackets stands for (theta[0]); 0 after reporting a bad one."""
        if not number.text.isdigit():
            self.report(WHOLE_INDEX, number.span)
            return 0
        if len(number.text.lstrip("0")) > _INDEX_DIGITS:
            self.report(
                f"the index {quoted(number.text)} is too large (at most {_INDEX_DIGITS} digits)", number.span
            )
            return 0
        return int(number.text)

    def index_names(self, written: list, message: str, what: str) -> tuple[Index, ...]:
        """The index names of ``written`` (a reduction's or a definition's brackets), each once.

        ``message`` is said of a label (a number) where only names may stand,
        ``what`` names the construct in the message for a repeated name.
        """
        names: dict[str, Index] = {}
        for node in written:
            if type(node) is Number:
                self.report(message, node.span)
            elif node.name in names:
                first = names[node.name].span
                at = f"column {first.column}"
                if first.line != node.span.line:
                    at = f"line {first.line}, {at}"
                self.report(
                    f"the index {quoted(node.name)} appears twice in {what} (first at {at}); "
                    "each index is written once",
                    node.span,
                )
            else:
                names[node.name] = Index(node.name, node.span)
        return tuple(names.values())

    def indexed(self, children: list, start: int, end: int) -> Indexed:
        name, (written, _) = children
        subscripts: list[Subscript] = [
            Index(node.name, node.span) if type(node) is Name else self.label(node) for node in written
        ]
        return Indexed(name.name, tuple(subscripts), self.span(start, end))

    def reduce(self, children: list, start: int, end: int) -> Reduce:
        op, (written, after), *args = children
        span = self.span(start, end)
        if op.name not in REDUCTIONS:
            # w[j](x): a family, then parentheses, as in theta[1](x) before.
            at = _GAP.match(self.text, _GAP.match(self.text, after).end() + 1).end()  # the '('
            self.report(missing_operator("]", "("), self.span(at, at + 1))
            return Reduce(op.name, (), args[0] if args else Number(0.0, "0", span), span, op.span)
        example = f"{op.name}[j](x[j])"
        indices = self.index_names(
            written,
            f"{op.name}[...] reduces over an index name, not a number, as in {example}",
            f"{op.name}[...]",
        )
        if len(args) != 1:
            where = args[1].span if args else self.span(end - 1, end)
            self.report(f"{op.name}[...](...) takes one expression, as in {example}", where)
        body = args[0] if args else Number(0.0, "0", span)
        return Reduce(op.name, indices, body, span, op.span)

    def definition(self, children: list, start: int, end: int) -> Definition:
        if len(children) == 2:
            name, value = children
            return Definition(name.name, value, self.span(start, end))
        name, (written, _), value = children
        indices = self.index_names(
            written,
            f"a definition defines a whole family: write index names in the brackets, as in {name.name}[k] = ...",
            f"{name.name}[...]",
        )
        return Definition(name.name, value, self.span(start, end), indices)

    def declaration(self, children: list, start: int, end: int) -> Declaration:
        index, word, first, last = children
        span = self.span(start, end)
        if word.name != "in":
            self.report(missing_operator(index.name, word.name), word.span)
            return Declaration(index.name, 0, 0, span, index.span)
        for number in (first, last):
            if not number.text.isdigit():
                message = f"a range is two whole numbers, first:last, as in {index.name} in 1:16"
                self.report(message, number.span)
                return Declaration(index.name, 0, 0, span, index.span)
        labels = self.label(first), self.label(last)
        fits = all(len(number.text.lstrip("0")) <= _INDEX_DIGITS for number in (first, last))
        if fits and labels[0] > labels[1]:
            self.report(
                f"the range {first.text}:{last.text} is empty: the first label must not be larger than the last",
                self.span(start + (first.span.column - span.column), end),
            )
        return Declaration(index.name, labels[0], labels[1], span, index.span)

    def start(self, children: list, start: int, end: int) -> list[Definition | Declaration | Expr]:
        return children


def parse(text: str) -> Program:
    """Parse a program: definitions (``name = expr``, ``h[k] = expr``) and declarations
    (``k in 1:16``), then the expression to compute.

    Args:
        text: the source; statements are separated by ';' or line breaks. It is
            put in Unicode normal form NFC first (the program's ``source`` and
            every position refer to that form), so a name has one spelling.

    Returns:
        The Program: definitions in source order, the final expression, the
        text, and the declarations in source order. Index names are checked
        only for form here (a name, written once per bracket where it binds);
        whether they are bound and agree is lowering's to say.
        A chain at one precedence level is one flat Additive or Product; a single
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


def _program(text: str, statements: list[Definition | Declaration | Expr]) -> Program:
    """Checks the statement order: definitions and declarations first, exactly one expression last."""
    if not statements:
        raise syntax_error("empty expression: there is nothing to compute", text, Span(1, 1))
    *before, result = statements
    if isinstance(result, Declaration):
        message = (
            "a declaration cannot come last: the last statement is the expression to compute; "
            f"declare {quoted(result.index)} before it"
        )
        raise syntax_error(message, text, result.span)
    for statement in before:
        if not isinstance(statement, Definition | Declaration):
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
    definitions = tuple(s for s in before if type(s) is Definition)
    declarations = tuple(s for s in before if type(s) is Declaration)
    return Program(definitions, result, text, declarations)
