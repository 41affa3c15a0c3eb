"""Pictures of a fit: the cost per iteration and, for a one-predictor model, the fitted curve.

In: a ``FitResult``, its ``FitProblem``, and the format ("svg" or "png").
Out: the image as bytes (the caller writes it, whole or not at all).
matplotlib is an optional extra (``pip install '.[plot]'`` from the checkout),
imported only here and only when a plot is asked for; pyplot is never used, so
the caller's matplotlib backend is left alone. However many rows there are, the
image stays small: the scatter of the data is drawn as pixels above
RASTERIZE_ABOVE points, and above MAX_POINTS rows an evenly spaced subset of
them is shown, which the legend says.
Must not: fit, print, write files, or let matplotlib's warnings through.
"""

from __future__ import annotations

import importlib.util
import io
import warnings

import numpy as np

from ..errors import Mention, ToolMissingError

FORMATS = ("svg", "png")
INSTALL = "pip install '.[plot]' (from the exprgrad checkout)"
# A vector scatter costs about 150 bytes a point in SVG: draw it as pixels above this,
RASTERIZE_ABOVE = 2_000
# and show at most this many rows (1,000,000 rows: 50 kB and 3 s instead of 146 MB and 42 s).
MAX_POINTS = 50_000


def require_matplotlib() -> None:
    """Raise ToolMissingError (exit 1) naming the install command when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        plot = Mention("plot", python="plot_fit")
        raise ToolMissingError(
            f"{plot} needs matplotlib, which is not installed: {INSTALL}", mentions=(plot,)
        )


def plot_fit(result, problem, fmt: str) -> bytes:
    """The cost history (and the data with the fitted curve) as an SVG or PNG image."""
    require_matplotlib()
    from matplotlib.figure import Figure

    predictors = problem.predictors()
    curve = (
        problem.model is not None
        and len(predictors) == 1
        and not problem.families
        and not problem.objective.families
        and not result.diverged
    )
    figure = Figure(figsize=(10 if curve else 5.5, 4), layout="constrained")
    axes = figure.subplots(1, 2 if curve else 1, squeeze=False)[0]
    _cost_panel(axes[0], result)
    if curve:
        _curve_panel(axes[1], result, problem, predictors[0])
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}
    with warnings.catch_warnings():
        # matplotlib's notes on layout and fonts are about the drawing, not the fit.
        warnings.simplefilter("ignore")
        figure.savefig(buffer, format=fmt, metadata=metadata, dpi=120)
    return buffer.getvalue()


def shown_rows(rows: int, limit: int | None = None) -> np.ndarray:
    """The rows the scatter shows: all of them up to ``limit`` (MAX_POINTS), else
    ``limit`` rows evenly spaced from the first to the last (the same every run)."""
    limit = MAX_POINTS if limit is None else limit
    if rows <= limit:
        return np.arange(rows)
    return np.unique(np.linspace(0, rows - 1, limit).round().astype(np.int64))


def _cost_panel(ax, result) -> None:
    history = np.asarray(result.history, dtype=float)
    finite = history[np.isfinite(history)]
    steps = np.arange(len(history))
    ax.plot(steps, history, marker="o" if len(history) < 40 else None, markersize=3)
    if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    unit = "evaluation" if result.method == "lm" else "iteration"
    from matplotlib.ticker import MaxNLocator

    # Whole iterations only: a direct solve (one point) has no iteration 0.015.
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if 0 < len(history) < 10:
        ax.set_xticks(steps)
        ax.set_xlim(-0.5, len(history) - 0.5)
    ax.set_xlabel(unit)
    ax.set_ylabel("best cost so far" if result.method == "lm" else "cost")
    ax.set_title(f"cost per {unit} ({result.method})")
    ax.grid(True, alpha=0.3)


def _curve_panel(ax, result, problem, predictor: str) -> None:
    columns = problem.dataset.columns
    x, y = columns[predictor], columns[problem.target]
    rows = shown_rows(len(x))
    label = "data" if len(rows) == len(x) else f"data ({len(rows):,} of {len(x):,} rows shown)"
    ax.scatter(x[rows], y[rows], s=10, alpha=0.6, label=label, rasterized=len(rows) > RASTERIZE_ABOVE)
    grid = np.linspace(float(np.min(x)), float(np.max(x)), 400)
    with np.errstate(all="ignore"):
        fitted = problem.model_values(result.params, {predictor: grid})
    ax.plot(grid, fitted, color="C1", label="fitted model")
    ax.set_xlabel(predictor)
    ax.set_ylabel(problem.target)
    ax.set_title("data and fitted model")
    # matplotlib's "best" place tests every point against every candidate box
    # (0.6 s for 50,000 points); over many points, the emptiest corner will do.
    ax.legend(loc="best" if len(rows) <= RASTERIZE_ABOVE else _emptiest_corner(x[rows], y[rows]))
    ax.grid(True, alpha=0.3)


def _emptiest_corner(x: np.ndarray, y: np.ndarray) -> str:
    """The corner of the data's box ("upper left", ...) with the fewest points near it."""
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if x.size == 0:
        return "best"
    fx = (x - x.min()) / (np.ptp(x) or 1.0)
    fy = (y - y.min()) / (np.ptp(y) or 1.0)
    left, right, low, high = fx < 0.4, fx > 0.6, fy < 0.3, fy > 0.7
    counts = {
        "upper left": np.count_nonzero(left & high),
        "upper right": np.count_nonzero(right & high),
        "lower left": np.count_nonzero(left & low),
        "lower right": np.count_nonzero(right & low),
    }
    return min(counts, key=counts.get)
