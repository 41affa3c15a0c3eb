"""The click command class of eval, diff, check and render: EXPR first, even when it starts with '-'.

In: the argument list of one command. Out: the same arguments with EXPR
marked, so that click's parser reads it as the argument and every option
as an option. Must not: parse the expression or know any option by name.

The rule (README, "EXPR that starts with -"): every expression exprgrad can
print is read back as EXPR, with or without '--'. Before EXPR:

* an argument starting with '--' is a long option (a misspelled --att is
  reported, not read as an expression); one that takes a value takes the
  next argument, whatever it looks like, or its value after '=' (--at=a=1);
* a short flag (-h) is EXPR: "-h" is what "exprgrad diff -h^2/2" prints;
* a short option that takes a value (-o FILE) is the option only when a
  value follows that is not itself an option ('-' is a value); otherwise
  it is EXPR ("render -o --format dot" draws the expression -o);
* any other argument is EXPR, even if it starts with '-': "-h*log(h)",
  "-omega*x", "-x^2", "-ofile".

When EXPR is exactly a short option name, a one-line note on stderr says so
and names the long option (--help). '--' says: the next argument is EXPR;
options may follow it, and no note is written. After EXPR, the usual rules
apply (-h asks for help, -ofile.svg, --wrt=a).
"""

from __future__ import annotations

import click

from exprgrad.cli.streams import show_message

# Stands for EXPR while click parses; no argument from a command line can
# hold a NUL character, so it cannot be typed.
_PLACEHOLDER = "\0EXPR\0"

HELP_OPTIONS = ["-h", "--help"]
EPILOG = (
    "EXPR may start with '-' (\"-h*log(h)\", \"-h\", as derivatives print), with or without '--' "
    "before it. Before EXPR, a short option name such as -h is read as EXPR (a note on stderr says so); "
    "--help, or -h after EXPR, shows this help."
)


class ExprCommand(click.Command):
    """A click command whose one argument, EXPR, may start with '-'."""

    def __init__(self, *args, **kwargs):
        settings = kwargs.setdefault("context_settings", {})
        settings.setdefault("help_option_names", HELP_OPTIONS)
        if "epilog" not in kwargs:
            kwargs["epilog"] = EPILOG + _valued_short_options_epilog(kwargs.get("params") or [])
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        arity = self._option_arity(ctx)
        marked, expr, as_option = read_expr(args, arity)
        try:
            rest = super().parse_args(ctx, marked)
        except click.UsageError:
            self._note(ctx, expr, as_option)
            raise
        self._note(ctx, expr, as_option)
        if expr is not None:
            for name, value in ctx.params.items():
                if value == _PLACEHOLDER:
                    ctx.params[name] = expr
        return rest

    def _note(self, ctx: click.Context, expr: str | None, as_option: bool) -> None:
        """The one-line note that an option name was read as EXPR."""
        if not as_option or ctx.resilient_parsing:
            return
        if expr in ctx.help_option_names:
            instead = "; --help shows the help"
        else:
            instead = f", not as the option {self._option_usage(ctx, expr)}"
        show_message("note", f"read {expr} as the expression EXPR{instead}")

    def _option_usage(self, ctx: click.Context, name: str) -> str:
        """How the option ``name`` is written with its value: "-o FILE"."""
        for param in self.get_params(ctx):
            if isinstance(param, click.Option) and name in param.opts:
                return f"{name} {param.metavar or 'VALUE'}"
        return name

    def _option_arity(self, ctx: click.Context) -> dict[str, bool]:
        """Each option string of the command -> whether it takes a value."""
        arity = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                takes_value = not (param.is_flag or param.count)
                for name in [*param.opts, *param.secondary_opts]:
                    arity[name] = takes_value
        return arity


def _valued_short_options_epilog(params: list[click.Parameter]) -> str:
    """The epilog's sentence about this command's short options that take a value."""
    shorts = [
        (opt, param.metavar or "VALUE")
        for param in params
        if isinstance(param, click.Option) and not (param.is_flag or param.count)
        for opt in param.opts
        if _is_short(opt)
    ]
    if not shorts:
        return ""
    named = " and ".join(f"{opt} {metavar}" for opt, metavar in shorts)
    return f" Before EXPR, {named} is the option only when a value that is not an option follows it."


def _is_short(arg: str) -> bool:
    return arg.startswith("-") and not arg.startswith("--") and len(arg) == 2


def _is_value(arg: str) -> bool:
    """Whether ``arg`` can be an option's value rather than an option: '-' (stdin or stdout) or no leading '-'."""
    return arg == "-" or not arg.startswith("-")


def read_expr(args: list[str], arity: dict[str, bool]) -> tuple[list[str], str | None, bool]:
    """``args`` with EXPR replaced by a placeholder click reads as an argument, EXPR, and
    whether EXPR is exactly a short option name read as EXPR (then a note is due).

    Args:
        args: the command's arguments as typed.
        arity: option string -> whether it takes a value.

    Returns:
        (arguments for click, EXPR or None when there is none to mark, option name read as EXPR).
    """
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            if i + 1 == len(args):
                return args[:i], None, False  # nothing after '--': click says EXPR is missing
            return [*args[:i], _PLACEHOLDER, *args[i + 2 :]], args[i + 1], False
        if arg.startswith("--"):
            # --name VALUE, --name=value, a flag, or an unknown option for click to report
            i += 2 if arity.get(arg) else 1
        elif arg in arity:  # a short option name: EXPR unless it takes a value and one follows
            if arity[arg] and i + 1 < len(args) and _is_value(args[i + 1]):
                i += 2
            else:
                return [*args[:i], _PLACEHOLDER, *args[i + 1 :]], arg, True
        elif arg.startswith("-") and arg != "-":
            return [*args[:i], _PLACEHOLDER, *args[i + 1 :]], arg, False
        else:
            return args, None, False  # EXPR does not look like an option: nothing to do
    return args, None, False


def mark_expr(args: list[str], arity: dict[str, bool]) -> tuple[list[str], str | None]:
    """``args`` with EXPR replaced by a placeholder click reads as an argument, and EXPR
    (None when there is none to mark); :func:`read_expr` without the note."""
    marked, expr, _ = read_expr(args, arity)
    return marked, expr
