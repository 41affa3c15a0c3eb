"""The one place where the library's Python arguments become command-line options.

In: a library error or message that names Python arguments (``argument``,
``errors.Mention``: ``max_iter``, "try other init= values"), and the click
command that runs. Out: the same text with the command's options in their
place (``--max-iter``, "try other --init values"). An argument the command
has no option for is written as the option the other commands give it
(allow_nonfinite: --allow-nan).
Must not: change anything but how arguments are written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import click

from ..errors import ExprgradError, Mention, respelled

# Library arguments that a command passes from an option of another name:
# ``inputs.load_data`` hands --allow-nan to load_csv as allow_nonfinite.
ALIASES = {"allow_nonfinite": "allow_nan"}


def option_for(command: click.Command | None, argument: str) -> click.Option | None:
    """The option of ``command`` that passes the Python ``argument`` (None: it has none)."""
    if command is None:
        return None
    name = ALIASES.get(argument, argument)
    for param in command.params:
        if isinstance(param, click.Option) and param.name == name:
            return param
    return None


def speller(command: click.Command | None) -> Callable[[Mention], str]:
    """How ``command`` writes a mention: ``--init``, ``--max-iter 100``, ``--allow-nan``, ``--init a=0,b=0``."""

    def spell(mention: Mention) -> str:
        option = option_for(command, mention.argument)
        flag = "--" + ALIASES.get(mention.argument, mention.argument).replace("_", "-")
        if option is not None:
            flag = max(option.opts, key=len)
        value = mention.value
        if value is None or value is True or mention.python is not None:
            return flag
        if isinstance(value, Mapping):
            value = ",".join(f"{name}={number}" for name, number in value.items())
        return f"{flag} {value}"

    return spell


def name_options(exc: ExprgradError, command: click.Command | None) -> None:
    """Have ``exc`` say the options (--max-nodes) where it names Python arguments (max_nodes)."""
    option = None if exc.argument is None else option_for(command, exc.argument)
    if option is not None:
        exc.shown_as = max(option.opts, key=len)
    exc.spell = speller(command)


def as_options(text: str, mentions: Iterable[Mention]) -> str:
    """A library message for the running command: its Python arguments as that command's options."""
    context = click.get_current_context(silent=True)
    return respelled(text, mentions, speller(None if context is None else context.command))
