"""--backend and --threads: how the commands that evaluate over data run their passes.

In: a click command that evaluates (eval, diff --at, check, fit). Out: the
same command with ``--backend numpy|compiled|auto`` (default auto: the
compiled backend where the extra exprgrad[fast] is installed, takes the graph
and repays compiling) and ``--threads N`` (default: every core), passed to it
as ``backend`` and ``threads``, the names the library takes.
Must not: import numba or the compiled backend (a command's start-up never does).
"""

from __future__ import annotations

import click

# The library's backends (exprgrad.backends.compiled.BACKENDS), written here so
# that declaring the option imports nothing.
BACKENDS = ("numpy", "compiled", "auto")


def speed_options(command):
    """Add --backend and --threads to ``command``."""
    command = click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        metavar="N",
        help="Threads sharing the rows of each pass (default: every core); the results do not depend on it.",
    )(command)
    return click.option(
        "--backend",
        type=click.Choice(BACKENDS),
        default="auto",
        show_default=True,
        help="numpy, compiled (numba: pip install 'exprgrad[fast]') or auto (compiled when installed "
        "and the data is large enough to repay compiling).",
    )(command)
