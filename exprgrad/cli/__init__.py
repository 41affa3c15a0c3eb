"""The command line: a click group whose commands live one per module.

In: argv. Out: text on stdout, messages on stderr, an exit code (0 ok,
2 the user's input is wrong, 1 the work could not be done). Commands are
imported only when run, so `exprgrad eval` never pays for scipy or graphviz.
Nothing in the library imports this package.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import ExprgradError

# command name -> "module:attribute" within this package
COMMANDS = {
    "eval": "eval_cmd:eval_command",
    "diff": "diff_cmd:diff_command",
    "check": "check_cmd:check_command",
    "render": "render_cmd:render_command",
    "fit": "fit_cmd:fit_command",
}


def _show_error(message: str) -> None:
    """One `error: ...` on stderr, safe to show whatever it quotes (control
    characters escaped, overlong lines cut, never an encoding error)."""
    from .output import show_message  # on the error path only: output loads numpy

    show_message("error", message)


class LazyGroup(click.Group):
    """A group that imports a command's module the first time it is needed,
    and turns every expected failure into one `error:` line and an exit code."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{module_name}":
                return None  # a command this checkout does not have yet
            raise
        return getattr(module, attribute)

    def parse_args(self, ctx, args):
        if not args:
            # As pip, cargo and kubectl do: the help on stdout, exit 0 (click's
            # default is the help as a usage error, exit 2).
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
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
            from .output import silence_stdout

            silence_stdout()
            sys.exit(1)
        except UnicodeEncodeError as exc:
            from .output import show_unencodable

            sys.exit(show_unencodable(exc))
        except OSError as exc:
            from .output import reason, silence_stdout

            silence_stdout()
            # Files are opened and reported by the commands; what is left is stdout.
            where = f"'{exc.filename}'" if exc.filename else "cannot write to standard output"
            _show_error(f"{where}: {reason(exc)}")
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
