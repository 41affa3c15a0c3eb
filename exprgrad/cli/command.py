"""The click command class of eval, diff, check and render: EXPR first, even when it starts with '-'.

In: the argument list of one command. Out: the same arguments with EXPR
marked, so that click's parser reads it as the argument and every option
as an option. Must not: parse the expression or know any option by name.

The rule (README, "EXPR that starts with -"). Before EXPR, an argument is an
option only when it is exactly one of the command's option names (-o,
--output, -h, --help, --at ...) or a long option with its value
(--at=a=1); an option that takes a value takes the next argument, whatever
it looks like. The first other argument is EXPR, even if it starts with '-':
"-h*log(h)", "-omega*x", "-x^2" and every derivative exprgrad prints.
Any argument starting with '--' is an option, so a misspelled --att is
reported, not read as an expression. '--' says: the next argument is EXPR
("exprgrad eval -- -h --at h=1"); options may follow it. After EXPR, the
usual rules apply (-ofile.svg, --wrt=a).
"""

from __future__ import annotations

import click

# Stands for EXPR while click parses; no argument from a command line can
# hold a NUL character, so it cannot be typed.
_PLACEHOLDER = "\0EXPR\0"

HELP_OPTIONS = ["-h", "--help"]
EPILOG = ("EXPR may start with '-' (\"-h*log(h)\", as derivatives print); write '--' before it "
          "only when it is exactly an option name: exprgrad eval -- -h --at h=1")


class ExprCommand(click.Command):
    """A click command whose one argument, EXPR, may start with '-'."""

    def __init__(self, *args, **kwargs):
        settings = kwargs.setdefault("context_settings", {})
        settings.setdefault("help_option_names", HELP_OPTIONS)
        kwargs.setdefault("epilog", EPILOG)
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        marked, expr = mark_expr(args, self._option_arity(ctx))
        rest = super().parse_args(ctx, marked)
        if expr is not None:
            for name, value in ctx.params.items():
                if value == _PLACEHOLDER:
                    ctx.params[name] = expr
        return rest

    def _option_arity(self, ctx: click.Context) -> dict[str, bool]:
        """Each option string of the command -> whether it takes a value."""
        arity = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                takes_value = not (param.is_flag or param.count)
                for name in [*param.opts, *param.secondary_opts]:
                    arity[name] = takes_value
        return arity


def mark_expr(args: list[str], arity: dict[str, bool]) -> tuple[list[str], str | None]:
    """``args`` with EXPR replaced by a placeholder click reads as an argument, and EXPR.

    Args:
        args: the command's arguments as typed.
        arity: option string -> whether it takes a value.

    Returns:
        (arguments for click, EXPR or None when there is none to mark).
    """
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if i + 1 == len(args):
                return args[:i], None  # nothing after '--': click says EXPR is missing
            return [*args[:i], _PLACEHOLDER, *args[i + 2 :]], args[i + 1]
        if arg in arity:
            i += 2 if arity[arg] else 1
        elif arg.startswith("--"):
            i += 1  # --name=value, or an unknown option for click to report
        elif arg.startswith("-") and arg != "-":
            return [*args[:i], _PLACEHOLDER, *args[i + 1 :]], arg
        else:
            return args, None  # EXPR does not look like an option: nothing to do
    return args, None
