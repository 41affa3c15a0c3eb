"""`exprgrad fit`: fit a cost function's parameters to the rows of a CSV file (or minimize one without data).

In: argv. Out: the result as a text table or JSON on stdout (and, with -o, as
JSON in a file written whole or not at all; an -o naming stdout itself, such as
'-', gets the JSON there once, instead of the table; one naming an input of the fit
is refused), notes and progress on stderr, an optional plot; the files are written
before the result is printed. Exit 0, 2 for a mistake in the input, 1 when the fit
diverged (after printing the point it reports) or a tool is missing.
The data (DATA.csv or --data, '-' for standard input) is read once: the plot
and every check use that one Dataset.
No math here: exprgrad.fit prepares and solves.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

import click

from ..errors import ExprgradError, FitError, OptionError
from ..fitting import plan, prepare, solve
from ..fitting.catalog import CHOICES, METHODS, FitOptions, learning_rate_methods
from ..fitting.plot import plot_fit, require_matplotlib
from ..fitting.run import engine_for
from ..fitting.sources import describe
from .flags import as_options
from .inputs import data_options, load_data, parse_bindings, read_expr, split_random
from .output import check_output_folder, json_text, warn, write_atomically
from .speed import quiet_cluster_logs, speed_options

# Seconds between redraws of the progress line.
PROGRESS_INTERVAL = 0.1


def one_data_source(command):
    """DATA.csv or --data FILE (as eval and check spell it), given at most once."""

    @functools.wraps(command)
    def run(*args, data_file=None, **kwargs):
        if data_file is not None:
            if kwargs.get("data") is not None:
                raise OptionError(
                    f"the data is given twice (DATA.csv {kwargs['data']} and --data {data_file}): give one"
                )
            kwargs["data"] = data_file
        return command(*args, **kwargs)

    return click.option(
        "--data",
        "data_file",
        type=click.Path(),
        metavar="FILE.csv",
        help="The data file, as DATA.csv ('-' for standard input).",
    )(run)


@click.command("fit", context_settings={"help_option_names": ["-h", "--help"]})
@one_data_source
@data_options
@click.argument("data", type=click.Path(), metavar="[DATA.csv]", required=False)
@click.option("--cost", metavar="EXPR", help="A scalar cost to minimize (text, '-' for stdin, or @file).")
@click.option(
    "--model", metavar="EXPR", help="A per-row model; with --target, minimize sum((model - target)^2)."
)
@click.option(
    "--target",
    metavar="COLUMN|EXPR",
    help="The column the --model should reproduce, or an expression of columns (e.g. 'log(y)').",
)
@click.option(
    "--init",
    "init",
    multiple=True,
    metavar="a=1,w=0|@result.json|random[:SEED]",
    help="Starting values (others start at 0; a family's name sets every member), the params of a "
    "saved result, or random[:SEED]: every other parameter drawn from a seeded normal distribution "
    "(sd 1/sqrt(fan-in) for a family, 0.1 for a scalar).",
)
@click.option(
    "--method",
    type=click.Choice(CHOICES),
    default="auto",
    show_default=True,
    help="auto: lm for a sum of squares (QR when linear in the parameters), newton for any other --cost; "
    + "; ".join(f"{name}: {METHODS[name].title}" for name in CHOICES if name in METHODS)
    + ".",
)
@click.option(
    "--lr",
    type=float,
    help=f"Fixed learning rate of {', '.join(learning_rate_methods())} "
    "(default: their steps are found by a line search).",
)
@click.option("--max-iter", type=int, help="Iteration limit (residual evaluations for lm).")
@click.option(
    "--tol",
    type=float,
    help="Stopping tolerance (gd, momentum, adam: of the scaled gradient, default 1e-10).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    metavar="FILE.json",
    help="Also write the JSON result to FILE ('-': to stdout, instead of the table).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Draw the cost per iteration (and a one-predictor model's curve) to FILE.svg or FILE.png.",
)
@click.option("--quiet", "-q", is_flag=True, help="No notes or progress on stderr.")
@click.option(
    "--nll", is_flag=True, help="The --cost is a negative log-likelihood: standard errors from its Hessian."
)
@click.option("--allow-nan", is_flag=True, help="Keep NaN/inf cells in the data instead of refusing them.")
@speed_options
def fit_command(
    data,
    cost,
    model,
    target,
    init,
    method,
    lr,
    max_iter,
    tol,
    fmt,
    output,
    plot,
    quiet,
    nll,
    allow_nan,
    backend,
    threads,
    engine,
    scheduler,
):
    """Fit parameters to DATA.csv: minimize --cost, or fit --model to the column --target.

    Without DATA.csv, a --cost that reads no data is minimized: every name
    in it is a parameter (x and y too).

    \b
    Examples:
      exprgrad fit samples/linear.csv --model "a*x + b" --target y
      exprgrad fit samples/linear.csv --cost "mean((a*x + b - y)^2)" --method gd
      exprgrad fit --cost "(1 - x)^2 + 100*(y - x^2)^2" --init x=-1.2,y=1
      exprgrad fit samples/logistic.csv --cost "sum(softplus(w*x + c) - y*(w*x + c))" --nll
      exprgrad fit samples/nonlinear.csv --model "b1*(1 - exp(-b2*x))" --target y --init b1=1,b2=1
    """
    plot_format = _plot_format(plot)
    to_stdout = bool(output) and _names_stdout(output)
    if to_stdout:
        source = click.get_current_context().get_parameter_source("fmt")
        if fmt == "text" and source not in (None, click.core.ParameterSource.DEFAULT):
            raise OptionError(
                f"--format text and -o {output} both write to stdout: -o {output} writes the "
                "JSON result there (drop one of them)"
            )
        fmt, output = "json", None  # the JSON result, once
    check_output_folder(output)
    check_output_folder(plot)
    _refuse_overwriting_inputs({"-o": output, "--plot": plot}, data, [cost, model, *init])
    dataset = load_data(data, allow_nan)  # the one read of the data
    init, random_start = split_random(init)
    start = parse_bindings(init, option="--init")
    problem = prepare(
        dataset,
        cost=None if cost is None else read_expr(cost),
        model=None if model is None else read_expr(model),
        target=target,
        init=start if random_start is None else [random_start, start],
        allow_nan=allow_nan,
    )
    problem.objective.backend, problem.objective.threads = backend, threads
    options = FitOptions(method, lr=lr, max_iter=max_iter, tol=tol, nll=nll)
    plan(problem, options)  # option mistakes before any note
    if not quiet:
        for message in problem.warnings:
            warn(as_options(message, problem.mentions))
        if problem.defaulted:
            names = ", ".join(problem.defaulted)
            click.echo(
                f"note: {names} start{'s' if len(problem.defaulted) == 1 else ''} at 0 (no --init value)",
                err=True,
            )
    if plot_format is not None:
        require_matplotlib()
    progress = None if quiet or not _stderr_is_terminal() else TerminalProgress()
    try:
        if engine == "dask":
            quiet_cluster_logs()
        with engine_for(problem, engine, scheduler):
            result = solve(problem, options, progress)
    finally:
        if progress is not None:
            progress.clear()
    shown = {**result.to_dict(), "message": as_options(result.message, result.mentions)}
    # The files first: a write that fails is the last word, not a printed result before it.
    if output:
        write_atomically(output, json.dumps(shown, indent=2, ensure_ascii=False) + "\n")
    if plot_format is not None:
        write_atomically(plot, plot_fit(result, problem, plot_format))
    click.echo(json_text(shown, indent=2) if fmt == "json" else as_options(result.summary(), result.mentions))
    if result.diverged:
        if not result.history:
            raise FitError(f"the fit could not start: {result.message}", mentions=result.mentions)
        raise FitError(f"the fit {_diverged_words(result.message)}", mentions=result.mentions)
    if not result.converged and not quiet:
        warn(f"the fit did not converge: {as_options(result.message, result.mentions)}")


def _diverged_words(message: str) -> str:
    """'diverged: the cost became inf; ...' (the result's message) as the end of 'the fit ...'."""
    return message if message.startswith("diverged") else f"diverged: {message}"


def _refuse_overwriting_inputs(outputs: dict[str, str | None], data, files: list) -> None:
    """An output (-o, --plot) that is one of the fit's own input files (the data, an
    @file expression or --init @file) is refused before anything is read or written."""
    data = getattr(data, "path", data)  # a DataSource when --sep or --decimal is given
    named = [text[1:] for text in files if text and text.startswith("@")]
    if data and data != "-" and not os.path.isfile(data):
        try:  # a glob or a folder: each of its files
            named += list(describe(data).labels)
        except ExprgradError:
            pass  # reading the data says what is wrong with it
    else:
        named.append(data)
    read = [path for path in named if path and path != "-" and os.path.isfile(path)]
    for option, target in outputs.items():
        if not target or not os.path.exists(target):
            continue
        for path in read:
            if os.path.samefile(path, target):
                raise OptionError(
                    f"{option} {target} is an input of this fit ({path}): writing there would "
                    "replace it; choose another file name"
                )


def _names_stdout(path: str) -> bool:
    """Whether -o names this process's stdout: '-', /dev/stdout, /proc/self/fd/1, or the
    very file or terminal stdout goes to (then the result is written there once)."""
    if path == "-":
        return True
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):  # no such file, or stdout is not a file
        return False


def _plot_format(path: str | None) -> str | None:
    if path is None:
        return None
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ("svg", "png"):
        raise OptionError(f"--plot {path}: the file name must end in .svg or .png")
    return suffix


def _stderr_is_terminal() -> bool:
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None)) and stream.isatty()


class TerminalProgress:
    """One self-rewriting stderr line: iteration, a bar against the limit, cost, gradient norm."""

    WIDTH = 24

    def __init__(self, interval: float | None = None):
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self.last = 0.0
        self.shown = 0

    def __call__(self, step: int, limit: int, cost: float, grad_norm: float | None) -> None:
        now = time.monotonic()
        if self.shown and now - self.last < self.interval:
            return
        self.last = now
        filled = int(self.WIDTH * min(1.0, step / max(1, limit)))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        line = f"iteration {step}/{limit} [{bar}] cost {cost:.6g}"
        if grad_norm is not None:
            line += f"  |grad| {grad_norm:.3g}"
        sys.stderr.write("\r" + line.ljust(self.shown))
        sys.stderr.flush()
        self.shown = len(line)

    def clear(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * self.shown + "\r")
            sys.stderr.flush()
