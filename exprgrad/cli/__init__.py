"""The command line: a click group whose commands live one per module.

In: argv. Out: text on stdout, messages on stderr, an exit code (0 ok,
2 the user's input is wrong, 1 the work could not be done). The command
modules are plain imports: scipy, graphviz and matplotlib, the only imports
worth deferring, are imported by the library where they are used, so
`exprgrad eval` never loads them. Nothing in the library imports this package.
"""

from __future__ import annotations

import sys
import warnings

import click

from .. import __version__
from ..errors import ExprgradError
from .check_cmd import check_command
from .diff_cmd import diff_command
from .eval_cmd import eval_command
from .fit_cmd import fit_command
from .flags import name_options
from .output import reason, warn
from .render_cmd import render_command
from .streams import guard_stdout, show_message, show_unencodable, silence_stdout

# command name -> command, in the order --help lists them
COMMANDS = {
    "eval": eval_command,
    "diff": diff_command,
    "check": check_command,
    "render": render_command,
    "fit": fit_command,
}


def _show_error(message: str) -> None:
    """One `error: ...` on stderr, safe to show whatever it quotes (control
    characters escaped, overlong lines cut, never an encoding error)."""
    show_message("error", message)


# numpy's floating-point warnings, in plain words (None: not worth a line).
_NUMPY_WORDS = {
    "divide by zero": "a division by zero (or the log of 0) gave an infinite value",
    "overflow": "a number grew past the largest float (about 1.8e308) and became infinite",
    "invalid value": "an undefined operation (log or sqrt of a negative number, 0/0, inf - inf) gave nan",
    "underflow": None,
}


def _warning_printer(previous):
    """A ``warnings.showwarning`` that shows a library's warning as one `warning:` line, once each.

    Deprecation warnings are for developers (Python hides them by default): they
    go to ``previous``, the handler that was in place (a test runner's).
    """
    shown_before: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, (DeprecationWarning, PendingDeprecationWarning)):
            previous(message, category, filename, lineno, file, line)
            return
        text = (str(message).strip().splitlines() or [category.__name__])[0]
        key = next((key for key in _NUMPY_WORDS if text.startswith(key)), text)
        if key in shown_before or _NUMPY_WORDS.get(key, "") is None:
            return
        shown_before.add(key)  # each kind once: numpy says "overflow" once per operation
        warn(f"{_NUMPY_WORDS[key]} (numpy: {text})" if key in _NUMPY_WORDS else text)

    return show


class Group(click.Group):
    """The command table as a group that turns every expected failure into one
    `error:` line and an exit code."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        return COMMANDS.get(name)

    def parse_args(self, ctx, args):
        if not args:
            # As pip, cargo and kubectl do: the help on stdout, exit 0 (click's
            # default is the help as a usage error, exit 2).
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(warnings.showwarning)
            try:
                return super().invoke(ctx)
            except ExprgradError as exc:
                name_options(exc, self.get_command(ctx, ctx.invoked_subcommand or ""))
                raise

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            guard_stdout()  # a short write to stdout (a full disk) is an error, not a truncated result
            result = super().main(args, prog_name or "exprgrad", standalone_mode=False, **extra)
            sys.stdout.flush()  # a full disk or a closed pipe shows here, as an error line
        except ExprgradError as exc:
            _show_error(str(exc))
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            _show_error(exc.format_message() + hint)
            sys.exit(2)
        except click.ClickException as exc:
            _show_error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.Abort:
            _show_error("interrupted")
            sys.exit(130)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(1)
        except UnicodeEncodeError as exc:
            sys.exit(show_unencodable(exc))
        except OSError as exc:
            silence_stdout()
            # Files are opened and reported by the commands; what is left is stdout.
            where = f"'{exc.filename}'" if exc.filename else "cannot write to standard output"
            _show_error(f"{where}: {reason(exc)}")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="exprgrad")
def cli():
    """exprgrad: cost functions as text -> operation graphs -> derivatives, values, drawings, fits.

    \b
    Examples:
      exprgrad eval   "mean((a*x + b - y)^2)" --at a=2,b=1 --data samples/linear.csv
      exprgrad diff   "mean((a*x + b - y)^2)" --wrt a,b
      exprgrad render "mean((a*x + b - y)^2)" --wrt a -o graph.svg
      exprgrad fit    samples/linear.csv --model "a*x + b" --target y
    """
