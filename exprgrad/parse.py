"""Text -> AST: the first stage of the pipeline.

In: the source text of a program (definitions, then one expression), written
in the language of ``grammar/exprgrad.lark``.
Out: an ``exprgrad.ast_nodes.Program`` whose nodes carry 1-based source spans,
or an ``ExprSyntaxError`` with line, column and a message in words.

How: Lark analyses the grammar once (LALR(1)); ``_Automaton`` takes Lark's
terminal definitions and parse table and runs them in one loop that scans
with a single regular expression and builds AST nodes at each reduction, with
no parse tree and no Token objects (a 100,000-term sum is ~300,000 tokens and
~500,000 reductions, so per-step cost is the whole budget). When that loop
rejects the text it says where (the token, and the terminals its state
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
from collections.abc import Iterator
from pathlib import Path

from lark import Lark, Token
from lark.lark import PostLex

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
from exprgrad.syntax_errors import WHOLE_INDEX, Rejection, diagnose, syntax_error, unexpected_character

_parser: Lark | None = None  # built by the first parse() call, then reused
_automaton: _Automaton | None = None  # read from _parser at the same time


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


# Bracket depth steps. A line break at depth > 0 is no separator: it is dropped
# by _ContinueInsideBrackets for Lark, and by _Automaton.run for the fast path.
_DEPTH_STEP = {"LPAR": 1, "LSQB": 1, "RPAR": -1, "RSQB": -1}


class _ContinueInsideBrackets(PostLex):
    """Drops line breaks inside () and [], so a long expression may span lines."""

    # The contextual lexer must see a line break in every parser state to drop it here.
    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            step = _DEPTH_STEP.get(token.type, 0)
            if step:
                depth = max(depth + step, 0)
            elif token.type == "_SEP" and depth and token == "\n":
                continue
            yield token


def _get_parser() -> Lark:
    global _parser, _automaton
    if _parser is None:
        lark = Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            postlex=_ContinueInsideBrackets(),
        )
        _automaton = _Automaton(lark)
        _parser = lark
    return _parser


def _get_automaton() -> _Automaton:
    _get_parser()
    return _automaton


# ---- the fast path: Lark's terminals and LALR table, one loop ----------------


class _Rejected(Exception):
    """The automaton cannot go on: the text has a syntax error, at ``rejection``."""

    def __init__(self, rejection: Rejection):
        super().__init__(rejection)
        self.rejection = rejection


_END = "_end_of_input"  # the scanner's group for the end of the text (terminals are upper case)

# How a reduction builds its value, decided once per rule from Lark's rule options:
_UNIT = 0  # ?rule with one kept child: the child itself, same span (atom: NAME)
_APPEND = 1  # a left-recursive helper Lark made for (...)*: the list grows in place
_LIST = 2  # another rule named _x: a list, spliced into the parent's children
_NODE = 3  # a rule or alias: the _AstBuilder method of that name (or, for a
#            ?rule left with one child, that child, spanning the whole rule)


class _Rule:
    """One grammar rule as the loop needs it."""

    __slots__ = ("inline", "keep", "kind", "name", "origin", "size", "whole")

    def __init__(self, rule):
        expansion = rule.expansion
        self.size = len(expansion)
        self.origin = str(rule.origin.name)
        self.name = str(rule.alias or self.origin)
        self.inline = rule.options.expand1 and not rule.alias
        # The children Lark keeps (anonymous strings and _TERMINALS are dropped),
        # and whether each is a _rule whose own children are spliced in.
        self.keep = tuple(
            (i, not symbol.is_term and symbol.name.startswith("_"))
            for i, symbol in enumerate(expansion)
            if not (symbol.is_term and symbol.filter_out)
        )
        self.whole = self.keep == tuple((i, False) for i in range(self.size))  # kept as they are
        if self.origin.startswith("_"):
            recursive = self.size > 1 and self.keep[:1] == ((0, True),) and expansion[0] == rule.origin
            self.kind = _APPEND if recursive else _LIST
        elif self.inline and self.keep == ((0, False),) and self.size == 1:
            self.kind = _UNIT
        else:
            self.kind = _NODE

    def kept(self, stack: list, skip: int) -> list:
        """The kept children on top of ``stack``, _rule lists spliced, the first ``skip`` left out."""
        base = len(stack) - self.size
        if self.whole:
            return stack[base + skip :]
        out: list = []
        for i, splice in self.keep[skip:]:
            if splice:
                out += stack[base + i]
            else:
                out.append(stack[base + i])
        return out


class _Automaton:
    """Lark's lexical and LALR(1) analysis of the grammar, in the form one loop runs fast.

    The scanner is one regular expression made from Lark's terminal
    definitions, in the order Lark's own lexer tries them, with the %ignore'd
    terminals (spaces, comments) skipped in front of every token.
    """

    def __init__(self, lark: Lark):
        def order(t):  # the order in which Lark's lexer tries terminals
            return (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name)

        terminals = sorted(lark.terminals, key=order)
        ignored = set(lark.ignore_tokens)
        words = [t for t in terminals if t.pattern.type == "str"]
        for t in terminals:
            for word in words:
                if t.pattern.type == "re" and re.fullmatch(t.pattern.to_regexp(), word.pattern.value):
                    # Lark would retype such a match (a keyword); this scanner does not.
                    raise RuntimeError(
                        f"terminal {t.name} also matches {word.name}: teach _Automaton keywords"
                    )
        skip = "|".join(t.pattern.to_regexp() for t in terminals if t.name in ignored)
        tokens = "|".join(
            f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals if t.name not in ignored
        )
        self.scanner = re.compile(f"(?>(?:{skip})*)(?:{tokens}|(?P<{_END}>\\Z))", lark.options.g_regex_flags)
        self.skipper = re.compile(f"(?:{skip})*", lark.options.g_regex_flags)

        conf = lark.parse_interactive("").parser_state.parse_conf
        self.start_state, self.end_state = conf.start_state, conf.end_state
        rules: dict = {}
        # table[state][symbol]: the next state (a shift, or a goto after a
        # reduction), or ~i to reduce by self.rules[i].
        self.table: list[dict[str, int]] = [{} for _ in conf.states]
        for state, row in conf.states.items():
            for symbol, (action, arg) in row.items():
                # str(): Lark's names are Token objects, slow to compare as dict keys.
                if action.name == "Shift":
                    self.table[state][str(symbol)] = arg
                else:
                    self.table[state][str(symbol)] = ~rules.setdefault(arg, len(rules))
        self.rules = [_Rule(rule) for rule in rules]

    def run(self, text: str, build: _AstBuilder) -> list:
        """The statements of ``text``, built by ``build``.

        Raises:
            _Rejected: a character no terminal matches, or a token the grammar
                does not allow where it stands.
        """
        table, rules, end_state, depth_step = self.table, self.rules, self.end_state, _DEPTH_STEP
        methods = [getattr(build, rule.name, None) for rule in rules]
        name_token, number_token = build.NAME, build.NUMBER
        states, values, spans = [self.start_state], [], []
        pos = depth = 0
        try:
            for match in self.scanner.finditer(text):
                kind = match.lastgroup
                if match.start() != pos:  # a character no terminal matches, after any spaces
                    bad = self.skipper.match(text, pos).end()
                    raise _Rejected(Rejection(None, bad, bad + 1))
                span = match.span(kind)
                start, pos = span
                if kind == "NAME":
                    value = name_token(start, pos)
                elif kind == "NUMBER":
                    value = number_token(start, pos)
                else:
                    value = kind
                    if kind in depth_step:
                        depth = max(depth + depth_step[kind], 0)
                    elif kind == "_SEP" and depth and text[start] == "\n":
                        continue
                    elif kind == _END:
                        kind = "$END"
                action = table[states[-1]][kind]
                while action < 0:  # reduce, then goto
                    rule = rules[~action]
                    how, n = rule.kind, rule.size
                    if how == _UNIT:
                        states[-1] = table[states[-2]][rule.origin]
                        action = table[states[-1]][kind]
                        continue
                    if how == _APPEND:  # the list stays where it is, one slot lower
                        merged = values[-n]
                        merged += rule.kept(values, 1)
                        del values[1 - n :]
                    else:
                        children = rule.kept(values, 0)
                        if how == _LIST:
                            merged = children
                        elif rule.inline and len(children) == 1:
                            merged = children[0]
                        elif n:
                            merged = methods[~action](children, spans[-n][0], spans[-1][1])
                        else:
                            merged = methods[~action](children, start, start)
                        if n:
                            values[-n:] = (merged,)
                        else:
                            values.append(merged)
                    if n:
                        spans[-n:] = ((spans[-n][0], spans[-1][1]),)
                        del states[-n:]
                    else:
                        spans.append((start, start))
                    states.append(table[states[-1]][rule.origin])
                    if states[-1] == end_state:
                        return values[-1]
                    action = table[states[-1]][kind]
                states.append(action)
                values.append(value)
                spans.append(span)
        except KeyError:  # no action for this token here
            expected = frozenset(symbol for symbol in table[states[-1]] if symbol.isupper())
            raise _Rejected(Rejection(kind, span[0], span[1], expected)) from None
        raise AssertionError("the scanner always ends with the end of the text")

    def tokens(self, text: str, stop: int) -> Iterator[tuple[str, int, int]]:
        """(terminal, start, end) of the tokens of text[:stop] as ``run`` sees them."""
        depth = 0
        for match in self.scanner.finditer(text, 0, stop):
            kind = match.lastgroup
            if kind == _END:
                return
            start, end = match.span(kind)
            if kind in _DEPTH_STEP:
                depth = max(depth + _DEPTH_STEP[kind], 0)
            elif kind == "_SEP" and depth and text[start] == "\n":
                continue
            yield kind, start, end


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
            self.report(f"the index {quoted(index.text)} is too large (at most {_INDEX_DIGITS} digits)", index.span)
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
    except _Rejected as rejected:
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
