"""The exception hierarchy: every mistake a user can make maps to one class here.

In: a message, and where there is one, the place in the source text.
Out: an exception whose ``str()`` is what the user reads after ``error:``.
The CLI turns ``ExprgradError`` into one ``error:`` line and ``exit_code``;
nothing here prints or exits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# A caret display shows at most this many characters of the offending line.
CARET_WINDOW = 80
# Text from the user quoted in a message is cut to this many characters.
QUOTE_LIMIT = 40


def quoted(text: str) -> str:
    """``text`` in single quotes for a message, cut with … past QUOTE_LIMIT characters."""
    if len(text) > QUOTE_LIMIT:
        text = text[: QUOTE_LIMIT - 1] + "…"
    return f"'{text}'"


@dataclass(frozen=True)
class Mention:
    """A Python argument that a message names inside its text, and how it is written there.

    ``str()`` is the Python spelling: ``init=`` for the argument itself,
    ``max_iter=100`` or ``allow_nan=True`` with a value (``repr`` of it),
    or ``python`` when the library's word for it is not an argument
    (``plot_fit``). The command line writes the same mention as its option
    (``--init``, ``--max-iter 100``, ``--allow-nan``): see ``respelled``.
    """

    argument: str
    value: object = None
    python: str | None = None

    def __str__(self) -> str:
        if self.python is not None:
            return self.python
        return f"{self.argument}=" if self.value is None else f"{self.argument}={self.value!r}"


def respelled(text: str, mentions: Iterable[Mention], spell: Callable[[Mention], str] | None) -> str:
    """``text`` with each mention's Python spelling replaced by ``spell(mention)``.

    Only whole spellings are replaced (not ``init=`` inside ``xinit=``); the
    longest first, so ``max_iter=100`` is not read as ``max_iter=1``.
    """
    if spell is None:
        return text
    by_spelling = {str(mention): mention for mention in mentions}
    for mention in sorted(by_spelling.values(), key=lambda m: -len(str(m))):
        pattern = (
            r"(?<![\w.])" + re.escape(str(mention)) + (r"(?![\w.])" if mention.value is not None else "")
        )
        text = re.sub(pattern, lambda _, m=mention: spell(m), text)
    return text


class ExprgradError(Exception):
    """Base of every error exprgrad raises about its input.

    ``exit_code`` is 2 for a mistake in the user's input, 1 for work that
    could not be done (a missing program, a diverged fit).

    Args:
        message: what went wrong, in words a beginner understands.
        source: the full source text, when the error has a place in it.
        line, column: 1-based position of the spot the caret points at.
        width: how many characters the caret underlines (at least 1).
        argument: the Python argument the message is about (``tol``,
            ``max_nodes``); ``str()`` starts with it, and the CLI shows the
            command-line option instead (``shown_as``: ``--tol``).
        mentions: the Python arguments named inside the message (``Mention``:
            "try other init= values"); the CLI sets ``spell`` to write them as
            its options ("try other --init values").
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        width: int = 1,
        argument: str | None = None,
        mentions: Iterable[Mention] = (),
    ):
        super().__init__(message)
        self.message = message
        self.argument = argument
        self.mentions = tuple(mentions)
        self.shown_as: str | None = None
        self.spell: Callable[[Mention], str] | None = None
        self.source = source
        self.line = line
        self.column = column
        self.width = max(1, width)

    def renamed(self, names: dict[str, str]) -> ExprgradError:
        """This error, for a caller that calls the arguments it names otherwise
        (``{"allow_nonfinite": "allow_nan"}``): its text and mentions use their names."""
        new = {str(m): Mention(names.get(m.argument, m.argument), m.value, m.python) for m in self.mentions}
        self.message = respelled(self.message, self.mentions, lambda m: str(new[str(m)]))
        self.mentions = tuple(new.values())
        self.args = (self.message,)
        return self

    def caret_lines(self) -> list[str]:
        """The offending source line and a caret under the spot ([] without one)."""
        if self.source is None or self.line is None or self.column is None:
            return []
        lines = self.source.split("\n")  # the parser counts lines by "\n" only
        if not 1 <= self.line <= len(lines):
            return []
        text = lines[self.line - 1].expandtabs(1)
        start = self.column - 1
        width = min(self.width, max(1, len(text) - start))
        if len(text) <= CARET_WINDOW:
            shown, offset = text, start
        else:  # a long line: the part around the caret, with … where text is left out
            left = max(0, min(start - CARET_WINDOW // 3, len(text) - CARET_WINDOW))
            right = left + CARET_WINDOW
            shown = ("…" if left else "") + text[left:right] + ("…" if right < len(text) else "")
            offset = start - left + (1 if left else 0)
            width = max(1, min(width, right - start))
        # Control characters are shown as U+FFFD: never sent to the terminal raw.
        if not shown.isprintable():
            shown = "".join(c if c.isprintable() else "\ufffd" for c in shown)
        return ["  " + shown, "  " + " " * offset + "^" * width]

    def __str__(self) -> str:
        where = ""
        if self.line is not None and self.column is not None:
            where = f"line {self.line}, column {self.column}: "
        if self.argument is not None:
            where = f"{self.shown_as or self.argument}: " + where
        message = respelled(self.message, self.mentions, self.spell)
        return "\n".join([where + message, *self.caret_lines()])


class ExprSyntaxError(ExprgradError):
    """The text is not a valid expression (position, caret, what was expected)."""


class NameResolutionError(ExprgradError):
    """An unknown function, a circular or repeated definition, a name used two ways."""


class ArityError(ExprgradError):
    """A function called with the wrong number of arguments."""


class LimitError(ExprgradError):
    """The input is past a documented size limit (nesting depth, graph size)."""


class DrawingTooLarge(LimitError):
    """More nodes to draw than ``max_nodes``: ``nodes`` of them, ``derivatives`` drawn or not."""

    def __init__(self, nodes: int, limit: int, derivatives: bool, function_alone: bool):
        what = "the function alone has" if function_alone else "the drawing would have"
        less = (
            "draw less (graph='function' or fewer wrt names) or "
            if derivatives and not function_alone
            else ""
        )
        super().__init__(
            f"{what} {nodes} nodes, more than the limit of {limit}: {less}raise the limit",
            argument="max_nodes",
        )
        self.nodes, self.limit, self.derivatives, self.function_alone = (
            nodes,
            limit,
            derivatives,
            function_alone,
        )


class DisconnectedError(ExprgradError):
    """A derivative was asked for a name the function does not depend on."""


class EvaluationError(ExprgradError):
    """Values are missing or inconsistent (an unbound parameter, a clashing binding)."""


class ArgumentError(ExprgradError, TypeError, ValueError):
    """A Python argument has the wrong type or value (None, text or a complex
    number for a parameter, a tolerance of nan); ``argument`` names it.
    Also a TypeError and a ValueError, as Python's own checks would raise."""


class OptionError(ExprgradError):
    """An option's value is malformed or does not fit the others (``at={'a': ''}``, an unknown format)."""


class DataError(ExprgradError):
    """A CSV file is malformed or lacks a column the expression needs."""


class FitError(ExprgradError):
    """A fit could not finish: the cost diverged or became NaN."""

    exit_code = 1


class ToolMissingError(ExprgradError):
    """An outside program exprgrad needs (Graphviz's ``dot``) is not installed."""

    exit_code = 1


class RenderError(ExprgradError):
    """Graphviz's dot ran but failed (exit 1: not the user's input)."""

    exit_code = 1


class RenderTimeout(RenderError):
    """Graphviz's dot did not finish within the time limit (it was stopped)."""


class WriteError(ExprgradError):
    """The output could not be written (exit 1: not the user's input)."""

    exit_code = 1


class EngineError(ExprgradError):
    """The cluster could not do the work: its scheduler cannot be reached, or was lost (exit 1)."""

    exit_code = 1
