"""`exprgrad fit`: fit a cost function's parameters to the rows of a CSV file.

In: argv. Out: the result as a text table or JSON on stdout (and, with -o, as
JSON in a file written whole or not at all), notes and progress on stderr,
an optional plot. Exit 0, 2 for a mistake in the input, 1 when the fit
diverged (after printing the last finite point) or a tool is missing.
No math here: exprgrad.fit prepares and solves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ..errors import FitError, OptionError
from .inputs import data_options, load_data, parse_bindings, read_expr
from .output import check_output_folder, json_text, warn, write_atomically

METHOD_CHOICES = ["auto", "gd", "momentum", "adam", "lbfgs", "newton", "lm"]
# Seconds between redraws of the progress line.
PROGRESS_INTERVAL = 0.1


@click.command("fit", context_settings={"help_option_names": ["-h", "--help"]})
@data_options
@click.argument("data", type=click.Path(dir_okay=False), metavar="DATA.csv")
@click.option("--cost", metavar="EXPR", help="A scalar cost to minimize (text, '-' for stdin, or @file).")
@click.option(
    "--model", metavar="EXPR", help="A per-row model; with --target, minimize sum((model - target)^2)."
)
@click.option("--target", metavar="COLUMN", help="The column the --model should reproduce.")
@click.option(
    "--init",
    "init",
    multiple=True,
    metavar="a=1,b=0|@result.json",
    help="Starting values (others start at 0), or the params of a saved result.",
)
@click.option(
    "--method",
    type=click.Choice(METHOD_CHOICES),
    default="auto",
    show_default=True,
    help="auto: lm for --model (a direct QR solve when linear in the parameters), lbfgs for --cost.",
)
@click.option("--lr", type=float, help="Learning rate of gd, momentum, adam (default 0.01, 0.01, 0.001).")
@click.option("--max-iter", type=int, help="Iteration limit (residual evaluations for lm).")
@click.option("--tol", type=float, help="Stopping tolerance (relative change of the cost, gradient size).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    metavar="FILE.json",
    help="Also write the JSON result to FILE.",
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
def fit_command(
    data, cost, model, target, init, method, lr, max_iter, tol, fmt, output, plot, quiet, nll, allow_nan
):
    """Fit parameters to DATA.csv: minimize --cost, or fit --model to the column --target.

    \b
    Examples:
      exprgrad fit samples/linear.csv --model "a*x + b" --target y
      exprgrad fit samples/linear.csv --cost "mean((a*x + b - y)^2)" --method gd --lr 0.05
      exprgrad fit samples/logistic.csv --cost "sum(softplus(w*x + c) - y*(w*x + c))" --nll
      exprgrad fit samples/nonlinear.csv --model "b1*(1 - exp(-b2*x))" --target y --init b1=1,b2=1
    """
    from ..fit import plan, prepare, solve

    plot_format = _plot_format(plot)
    check_output_folder(output)
    check_output_folder(plot)
    dataset = load_data(data, allow_nan)
    start = _read_init(init)
    problem = prepare(
        dataset,
        cost=None if cost is None else read_expr(cost),
        model=None if model is None else read_expr(model),
        target=target,
        init=start,
    )
    plan(problem, method, lr=lr, max_iter=max_iter, tol=tol, nll=nll)  # option mistakes before any note
    if not quiet:
        for message in problem.warnings:
            warn(message)
        if problem.defaulted:
            names = ", ".join(problem.defaulted)
            click.echo(
                f"note: {names} start{'s' if len(problem.defaulted) == 1 else ''} at 0 (no --init value)",
                err=True,
            )
    if plot_format is not None:
        from ..fit.plot import require_matplotlib

        require_matplotlib()
    progress = None if quiet or not _stderr_is_terminal() else TerminalProgress()
    try:
        result = solve(problem, method, lr=lr, max_iter=max_iter, tol=tol, nll=nll, progress=progress)
    finally:
        if progress is not None:
            progress.clear()
    document = json.dumps(result.to_dict(), indent=2, ensure_ascii=False)
    click.echo(json_text(result.to_dict(), indent=2) if fmt == "json" else result.summary())
    if output:
        write_atomically(output, document + "\n")
    if plot_format is not None:
        from ..fit.plot import plot_fit

        write_atomically(plot, plot_fit(result, problem, plot_format))
    if result.diverged:
        if not result.history:
            raise FitError("the fit could not start: the cost is not finite at the starting point")
        raise FitError("the fit diverged; the values shown are the last finite point")
    if not result.converged and not quiet:
        warn(f"the fit did not converge: {result.message}")


def _plot_format(path: str | None) -> str | None:
    if path is None:
        return None
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in ("svg", "png"):
        raise OptionError(f"--plot {path}: the file name must end in .svg or .png")
    return suffix


def _read_init(specs: tuple[str, ...]) -> dict[str, float]:
    """--init a=1,b=0 (repeatable) and --init @result.json (the "params" of a saved result)."""
    start: dict[str, float] = {}
    for spec in specs:
        if spec.startswith("@"):
            start.update(_params_of_result(spec[1:]))
        else:
            start.update(parse_bindings(spec, option="--init"))
    return start


def _params_of_result(path: str) -> dict[str, float]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptionError(f"--init @{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise OptionError(f"--init @{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise OptionError(f"--init @{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    params = document.get("params") if isinstance(document, dict) else None
    if not isinstance(params, dict):
        raise OptionError(f'--init @{path}: expected a fit result with a "params" object')
    start = {}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(f"--init @{path}: params.{name} is not a number")
        start[str(name)] = float(value)
    return start


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
