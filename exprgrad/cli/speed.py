"""--backend, --threads, --engine, --scheduler: how the commands that evaluate over data run their passes.

In: a click command that evaluates (eval, diff --at, check, fit). Out: the
same command with ``--backend numpy|compiled|auto`` (default auto: the
compiled backend where the extra exprgrad[fast] is installed, takes the graph
and repays compiling), ``--threads N`` (default: every core), ``--engine
local|dask`` and ``--scheduler ADDRESS`` (a running Dask scheduler; without
it ``--engine dask`` starts a LocalCluster), passed to it as ``backend``,
``threads``, ``engine`` and ``scheduler``, the names the library takes;
``engine_over`` opens the engine a command's runs use and closes it after.
Must not: import numba, the compiled backend or dask (a command's start-up never does).
"""

from __future__ import annotations

import contextlib
import logging

import click

from ..engines import ENGINES, check_request, open_engine

# The library's backends (exprgrad.backends.compiled.BACKENDS), written here so
# that declaring the option imports nothing.
BACKENDS = ("numpy", "compiled", "auto")


def speed_options(command):
    """Add --backend, --threads, --engine and --scheduler to ``command``."""
    command = click.option(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="A running Dask scheduler (tcp://host:8786) for --engine dask (default: a LocalCluster "
        "on this machine, one worker process per core).",
    )(command)
    command = click.option(
        "--engine",
        type=click.Choice(ENGINES),
        default="local",
        show_default=True,
        help="Where the passes over the data run: here, or on a Dask cluster (pip install "
        "'exprgrad[dask]'); the same numbers either way.",
    )(command)
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


@contextlib.contextmanager
def engine_over(engine: str, scheduler, columns, backend: str = "auto"):
    """The engine for ``columns`` (None: local) while in the block; a cluster it started is closed after.

    Raises:
        OptionError: what ``engines.check_request`` refuses.
    """
    check_request(engine, scheduler, bool(columns), backend)
    if engine == "dask":
        quiet_cluster_logs()
    opened = open_engine(engine, columns or {}, scheduler=scheduler)
    try:
        yield opened
    finally:
        if opened is not None:
            opened.close()


def quiet_cluster_logs() -> None:
    """No log records of Dask's (a lost scheduler's reconnection tracebacks) on a command's
    stderr: the command's own one ``error:`` line says what went wrong. After distributed is
    imported, which sets its loggers' levels from its configuration."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return  # the engine says what to install
    for name in list(logging.root.manager.loggerDict):
        if name.split(".")[0] in ("distributed", "asyncio", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in ("distributed", "asyncio", "tornado"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
