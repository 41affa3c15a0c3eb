"""The command line: a click group whose commands live one per module.

In: argv. Out: text on stdout, messages on stderr, an exit code (0 ok,
2 the user's input is wrong, 1 the work could not be done). Commands are
imported only when run, so `exprgrad eval` never pays for scipy or graphviz.
Nothing in the library imports this package.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click

from .. import __version__
from ..errors import ExprgradError
from .streams import guard_stdout

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
    from .streams import show_message

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
        from .output import warn  # only when there is a warning: output loads numpy

        if issubclass(category, (DeprecationWarning, PendingDeprecationWarning)):
            previous(message, category, filename, lineno, file, line)
            return
        text = (str(message).strip().splitlines() or [category.__name__])[0]
        key = next((key for key in _NUMPY_WORDS if text.startswith(key)), None)
        shown = text if key is None else _NUMPY_WORDS[key] and f"{_NUMPY_WORDS[key]} (numpy: {text})"
        if shown and shown not in shown_before:
            shown_before.add(shown)
            warn(shown)

    return show


def _name_option(exc: ExprgradError, command) -> None:
    """Say the option (--max-nodes) where the library's error names its Python argument (max_nodes)."""
    if exc.argument is None or command is None:
        return
    for param in command.params:
        if isinstance(param, click.Option) and param.name == exc.argument:
            exc.shown_as = max(param.opts, key=len)
            return


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

    def invoke(self, ctx):
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(warnings.showwarning)
            try:
                return super().invoke(ctx)
            except ExprgradError as exc:
                _name_option(exc, self.get_command(ctx, ctx.invoked_subcommand or ""))
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
            from .streams import silence_stdout

            silence_stdout()
            sys.exit(1)
        except UnicodeEncodeError as exc:
            from .streams import show_unencodable

            sys.exit(show_unencodable(exc))
        except OSError as exc:
            from .output import reason
            from .streams import silence_stdout

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
