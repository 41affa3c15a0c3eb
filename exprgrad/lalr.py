"""Lark's LALR(1) analysis of a grammar, run in one fast loop: the parser engine of ``exprgrad.parse``.

In: a ``lark.Lark`` built with ``parser="lalr"`` (its terminal definitions and
parse table), then texts, and a builder object with a method per terminal
(``NAME``, ``NUMBER``: ``(start, end)``) and per rule or alias
(``(children, start, end)``), offsets into the text.
Out: what the builder makes of the text, reductions done in Lark's order
with the children Lark's tree builder would keep (``?rule`` inlined,
``_rule`` spliced, anonymous strings and ``_TERMINALS`` dropped); or
``Rejected`` saying where the text stops being the grammar's (the token and
the terminals its state allowed, or a character no terminal matches); and
the tokens of a text as the loop sees them, for the error messages.

How: the scanner is one regular expression made from Lark's terminal
definitions, in the order Lark's own lexer tries them, with the %ignore'd
terminals (spaces, comments) skipped in front of every token; the loop
shifts and reduces with explicit stacks and no Token or Tree objects (a
100,000-term sum is ~300,000 tokens and ~500,000 reductions, so per-step cost
is the whole budget).

Lark's parse table, rules and states are not Lark's public API, so this
module supports the lark versions of ``SUPPORTED_LARK`` (also the pin in
pyproject.toml), which were tested, and checks the structures it reads when
it is built: on a Lark without them it raises ``RuntimeError`` naming those
versions (an install to fix, not an error in the user's text), rather than
falling back to Lark's own parser. A fallback would be a second parser,
several times slower, with its own error positions, that no test would run
where exprgrad is installed as pinned; one clear line about the install beats
a silent slowdown. tests/test_lalr.py checks, on generated programs, that
this loop builds the AST Lark's own parser builds through a Transformer,
spans included, and rejects where Lark does.

It must not: know exprgrad's AST (the builder does), recurse on the depth of
the text, let a Lark exception out, or build a Lark parser itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lark import Lark, Token
from lark import __version__ as _LARK_VERSION
from lark.lark import PostLex

from exprgrad.syntax_errors import Rejection

# The lark versions whose private structures this loop was tested on; the same
# range as the requirement in pyproject.toml.
SUPPORTED_LARK = ">=1.1.9,<1.4"

# Bracket depth steps. A line break at depth > 0 is no separator: it is dropped
# by ContinueInsideBrackets for Lark, and by Automaton.run for the fast path.
DEPTH_STEP = {"LPAR": 1, "LSQB": 1, "RPAR": -1, "RSQB": -1}

END = "_end_of_input"  # the scanner's group for the end of the text (terminals are upper case)


class ContinueInsideBrackets(PostLex):
    """Drops line breaks inside () and [], so a long expression may span lines (Lark's own parser)."""

    # The contextual lexer must see a line break in every parser state to drop it here.
    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            step = DEPTH_STEP.get(token.type, 0)
            if step:
                depth = max(depth + step, 0)
            elif token.type == "_SEP" and depth and token == "\n":
                continue
            yield token


class Rejected(Exception):
    """The automaton cannot go on: the text has a syntax error, at ``rejection``."""

    def __init__(self, rejection: Rejection):
        super().__init__(rejection)
        self.rejection = rejection


def _unsupported(detail: str) -> RuntimeError:
    """The error for a Lark whose private structures are not the ones this loop reads."""
    return RuntimeError(
        f"exprgrad's parser runs on lark {SUPPORTED_LARK}, but lark {_LARK_VERSION} is installed "
        f"({detail}); install a supported version: pip install 'lark{SUPPORTED_LARK}'"
    )


# How a reduction builds its value, decided once per rule from Lark's rule options:
_UNIT = 0  # ?rule with one kept child: the child itself, same span (atom: NAME)
_APPEND = 1  # a left-recursive helper Lark made for (...)*: the list grows in place
_LIST = 2  # another rule named _x: a list, spliced into the parent's children
_NODE = 3  # a rule or alias: the builder's method of that name (or, for a
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


class Automaton:
    """Lark's lexical and LALR(1) analysis of a grammar, in the form one loop runs fast."""

    def __init__(self, lark: Lark):
        """Reads ``lark``'s terminals and LALR table.

        Raises:
            RuntimeError: ``lark`` is not a LALR parser, or its structures are
                not those of a supported lark version (``SUPPORTED_LARK``).
        """
        try:
            self._read(lark)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise _unsupported(f"reading its parse table failed: {type(exc).__name__}: {exc}") from None

    def _read(self, lark: Lark) -> None:
        if lark.options.parser != "lalr":
            raise ValueError(f"the parser is {lark.options.parser!r}, not 'lalr'")

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
                        f"terminal {t.name} also matches {word.name}: teach Automaton keywords"
                    )
        skip = "|".join(t.pattern.to_regexp() for t in terminals if t.name in ignored)
        tokens = "|".join(
            f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals if t.name not in ignored
        )
        self.scanner = re.compile(f"(?>(?:{skip})*)(?:{tokens}|(?P<{END}>\\Z))", lark.options.g_regex_flags)
        self.skipper = re.compile(f"(?:{skip})*", lark.options.g_regex_flags)

        conf = lark.parse_interactive("").parser_state.parse_conf
        states = conf.states
        if sorted(states) != list(range(len(states))):
            raise ValueError("the states are not numbered 0, 1, ...")
        self.start_state, self.end_state = conf.start_state, conf.end_state
        if self.start_state not in states or self.end_state not in states:
            raise ValueError("the start or end state is not a state")
        rules: dict = {}
        # table[state][symbol]: the next state (a shift, or a goto after a
        # reduction), or ~i to reduce by self.rules[i].
        self.table: list[dict[str, int]] = [{} for _ in states]
        for state, row in states.items():
            for symbol, (action, arg) in row.items():
                # str(): Lark's names are Token objects, slow to compare as dict keys.
                if action.name == "Shift":
                    if arg not in states:
                        raise ValueError(f"a shift to {arg!r}, not a state")
                    self.table[state][str(symbol)] = arg
                elif action.name == "Reduce":
                    self.table[state][str(symbol)] = ~rules.setdefault(arg, len(rules))
                else:
                    raise ValueError(f"an action {action.name!r}, neither Shift nor Reduce")
        self.rules = [_Rule(rule) for rule in rules]

    def run(self, text: str, build) -> list:
        """The statements of ``text``, built by ``build``.

        Raises:
            Rejected: a character no terminal matches, or a token the grammar
                does not allow where it stands.
        """
        table, rules, end_state, depth_step = self.table, self.rules, self.end_state, DEPTH_STEP
        methods = [getattr(build, rule.name, None) for rule in rules]
        name_token, number_token = build.NAME, build.NUMBER
        states, values, spans = [self.start_state], [], []
        pos = depth = 0
        try:
            for match in self.scanner.finditer(text):
                kind = match.lastgroup
                if match.start() != pos:  # a character no terminal matches, after any spaces
                    bad = self.skipper.match(text, pos).end()
                    raise Rejected(Rejection(None, bad, bad + 1))
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
                    elif kind == END:
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
            raise Rejected(Rejection(kind, span[0], span[1], expected)) from None
        raise AssertionError("the scanner always ends with the end of the text")

    def tokens(self, text: str, stop: int) -> Iterator[tuple[str, int, int]]:
        """(terminal, start, end) of the tokens of text[:stop] as ``run`` sees them."""
        depth = 0
        for match in self.scanner.finditer(text, 0, stop):
            kind = match.lastgroup
            if kind == END:
                return
            start, end = match.span(kind)
            if kind in DEPTH_STEP:
                depth = max(depth + DEPTH_STEP[kind], 0)
            elif kind == "_SEP" and depth and text[start] == "\n":
                continue
            yield kind, start, end
