"""Lark's LALR(1) analysis of a grammar, run in one fast loop: the parser engine of ``exprgrad.parse``.

In: a ``lark.Lark`` built with ``parser="lalr"`` (its terminal definitions and
parse table), or the saved form of that analysis (``dumps`` / ``loads``: plain
JSON, no Lark objects), then texts, and a builder object with a method per
terminal (``NAME``, ``NUMBER``: ``(start, end)``) and per rule or alias
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
is the whole budget). States and rules are numbered in one canonical order
(breadth first from the start state, symbols sorted), not in the order Lark
happens to build them, so the same grammar always gives the same table and
the same saved bytes.

Why a saved form: Lark's analysis of the grammar takes a few times longer
than the rest of a small command's start-up, and the loop needs only its
result. ``exprgrad.parsing`` ships that result beside the grammar, with the
grammar text it was made from; ``loads`` gives None for a file that is not
exactly that (another grammar, another format, a damaged file), and parsing
then analyses the grammar again in memory. Loading imports no Lark.

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
the text, let a Lark exception out, build a Lark parser itself, or import
lark at the top (a valid text is parsed from the saved table without it).
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

from exprgrad.syntax_errors import Rejection

if TYPE_CHECKING:
    from lark import Lark, Token

# The lark versions whose private structures this loop was tested on; the same
# range as the requirement in pyproject.toml.
SUPPORTED_LARK = ">=1.1.9,<1.4"

# Bracket depth steps. A line break at depth > 0 is no separator: it is dropped
# by ContinueInsideBrackets for Lark, and by Automaton.run for the fast path.
DEPTH_STEP = {"LPAR": 1, "LSQB": 1, "RPAR": -1, "RSQB": -1}

END = "_end_of_input"  # the scanner's group for the end of the text (terminals are upper case)

# The version of the saved form (dumps / loads): a file of another version is not read.
TABLE_FORMAT = 1


class ContinueInsideBrackets:
    """Drops line breaks inside () and [], so a long expression may span lines (Lark's own parser).

    Lark's ``postlex`` reads only ``process`` and ``always_accept``, so this
    needs no Lark base class (importing this module does not import lark).
    """

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
    from lark import __version__ as installed

    return RuntimeError(
        f"exprgrad's parser runs on lark {SUPPORTED_LARK}, but lark {installed} is installed "
        f"({detail}); install a supported version: pip install 'lark{SUPPORTED_LARK}'"
    )


# How a reduction builds its value, decided once per rule from Lark's rule options:
_UNIT = 0  # ?rule with one kept child: the child itself, same span (atom: NAME)
_APPEND = 1  # a left-recursive helper Lark made for (...)*: the list grows in place
_LIST = 2  # another rule named _x: a list, spliced into the parent's children
_NODE = 3  # a rule or alias: the builder's method of that name (or, for a
#            ?rule left with one child, that child, spanning the whole rule)


class _Rule:
    """One grammar rule as the loop needs it: plain fields, as read from Lark or from the saved form."""

    __slots__ = ("inline", "keep", "kind", "name", "origin", "size", "whole")

    def __init__(self, origin: str, name: str, size: int, inline: bool, keep: tuple, kind: int):
        self.origin, self.name, self.size = origin, name, size
        self.inline, self.keep, self.kind = inline, keep, kind
        self.whole = keep == tuple((i, False) for i in range(size))  # kept as they are

    @classmethod
    def of(cls, rule) -> _Rule:
        """The fields of one of Lark's rules."""
        expansion = rule.expansion
        size = len(expansion)
        origin = str(rule.origin.name)
        inline = bool(rule.options.expand1 and not rule.alias)
        # The children Lark keeps (anonymous strings and _TERMINALS are dropped),
        # and whether each is a _rule whose own children are spliced in.
        keep = tuple(
            (i, not symbol.is_term and symbol.name.startswith("_"))
            for i, symbol in enumerate(expansion)
            if not (symbol.is_term and symbol.filter_out)
        )
        if origin.startswith("_"):
            recursive = size > 1 and keep[:1] == ((0, True),) and expansion[0] == rule.origin
            kind = _APPEND if recursive else _LIST
        elif inline and keep == ((0, False),) and size == 1:
            kind = _UNIT
        else:
            kind = _NODE
        return cls(origin, str(rule.alias or origin), size, inline, keep, kind)

    def saved(self) -> list:
        """The saved form: origin, name, size, inline, keep (as lists), kind."""
        return [self.origin, self.name, self.size, self.inline, [list(k) for k in self.keep], self.kind]

    @classmethod
    def load(cls, saved: list) -> _Rule:
        """The rule of a saved form. Raises ValueError if it is not one."""
        origin, name, size, inline, keep, kind = saved
        keep = tuple((i, splice) for i, splice in keep)
        well_formed = (
            type(origin) is str
            and type(name) is str
            and type(size) is int
            and type(inline) is bool
            and all(type(i) is int and 0 <= i < size and type(splice) is bool for i, splice in keep)
            and kind in (_UNIT, _APPEND, _LIST, _NODE)
        )
        if not well_formed:
            raise ValueError(f"not a saved rule: {saved!r}")
        return cls(origin, name, size, inline, keep, kind)

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
        if conf.start_state not in states or conf.end_state not in states:
            raise ValueError("the start or end state is not a state")
        # Lark's numbering of states and rules changes from one process to the
        # next (it iterates over sets); number them canonically instead: states
        # breadth first from the start state, rules as first reduced, symbols
        # sorted. number[lark's state] = ours.
        number = {conf.start_state: 0}
        queue = deque([conf.start_state])
        while queue:
            row = states[queue.popleft()]
            for symbol in sorted(row, key=str):
                action, arg = row[symbol]
                if action.name == "Shift" and arg not in number:
                    if arg not in states:
                        raise ValueError(f"a shift to {arg!r}, not a state")
                    number[arg] = len(number)
                    queue.append(arg)
        if len(number) != len(states):
            raise ValueError(f"{len(states) - len(number)} states cannot be reached from the start")
        self.start_state, self.end_state = 0, number[conf.end_state]
        rules: dict = {}
        # table[state][symbol]: the next state (a shift, or a goto after a
        # reduction), or ~i to reduce by self.rules[i].
        self.table: list[dict[str, int]] = [{} for _ in states]
        for state in sorted(states, key=number.__getitem__):
            row = states[state]
            for symbol in sorted(row, key=str):
                action, arg = row[symbol]
                # str(): Lark's names are Token objects, slow to compare as dict keys.
                if action.name == "Shift":
                    self.table[number[state]][str(symbol)] = number[arg]
                elif action.name == "Reduce":
                    self.table[number[state]][str(symbol)] = ~rules.setdefault(arg, len(rules))
                else:
                    raise ValueError(f"an action {action.name!r}, neither Shift nor Reduce")
        self.rules = [_Rule.of(rule) for rule in rules]

    def saved(self) -> dict:
        """The saved form: plain data that ``dumps`` writes and ``loads`` reads back."""
        return {
            "flags": self.scanner.flags,
            "scanner": self.scanner.pattern,
            "skipper": self.skipper.pattern,
            "start_state": self.start_state,
            "end_state": self.end_state,
            "rules": [rule.saved() for rule in self.rules],
            "table": self.table,
        }

    @classmethod
    def load(cls, saved: dict) -> Automaton:
        """The automaton of a saved form, checked so that ``run`` cannot index out of it.

        Raises:
            ValueError, KeyError, TypeError, re.error: ``saved`` is not a saved automaton.
        """
        automaton = cls.__new__(cls)
        automaton.scanner = re.compile(saved["scanner"], saved["flags"])
        automaton.skipper = re.compile(saved["skipper"], saved["flags"])
        automaton.rules = [_Rule.load(rule) for rule in saved["rules"]]
        table = saved["table"]
        states, rules = range(len(table)), range(len(automaton.rules))
        for row in table:
            for symbol, action in row.items():
                if type(action) is not int or not (action in states if action >= 0 else ~action in rules):
                    raise ValueError(f"the action {action!r} for {symbol!r} is neither a state nor a rule")
        automaton.table = table
        automaton.start_state, automaton.end_state = saved["start_state"], saved["end_state"]
        if automaton.start_state not in states or automaton.end_state not in states:
            raise ValueError("the start or end state is not a state")
        if END not in automaton.scanner.groupindex:
            raise ValueError("the scanner does not match the end of the text")
        return automaton

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


def dumps(automaton: Automaton, grammar: str) -> str:
    """The saved form of ``automaton``, made from the grammar text ``grammar``, as JSON text.

    One table row per line, keys sorted: the same automaton always gives the
    same text, and a change to the grammar shows as a readable diff.
    """
    saved = {"format": TABLE_FORMAT, "grammar": grammar, **automaton.saved()}
    rows = saved.pop("table")
    head = [f"{json.dumps(key)}: {json.dumps(value, sort_keys=True)}" for key, value in saved.items()]
    table = ",\n".join(json.dumps(row, sort_keys=True) for row in rows)
    return "{\n" + ",\n".join(head) + ',\n"table": [\n' + table + "\n]\n}\n"


def loads(text: str, grammar: str) -> Automaton | None:
    """The automaton saved in ``text`` if it was made from exactly the grammar text ``grammar``.

    Returns:
        None for anything else: another grammar, another ``TABLE_FORMAT``, a
        file that is not JSON or not a whole saved automaton (the caller then
        analyses the grammar again).
    """
    try:
        saved = json.loads(text)
        if saved.get("format") != TABLE_FORMAT or saved.get("grammar") != grammar:
            return None
        return Automaton.load(saved)
    except (ValueError, KeyError, TypeError, AttributeError, re.error):
        return None
