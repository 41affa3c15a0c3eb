"""Pictures of a fit: the cost per iteration and, for a one-predictor model, the fitted curve.

In: a ``FitResult``, its ``FitProblem``, and the format ("svg" or "png").
Out: the image as bytes (the caller writes it, whole or not at all).
matplotlib is an optional extra (``pip install 'exprgrad[plot]'``), imported
only here and only when a plot is asked for; pyplot is never used, so the
caller's matplotlib backend is left alone.
Must not: fit, print, or write files.
"""

from __future__ import annotations

import importlib.util
import io

import numpy as np

from ..errors import ToolMissingError

FORMATS = ("svg", "png")
INSTALL = "pip install 'exprgrad[plot]'"


def require_matplotlib() -> None:
    """Raise ToolMissingError (exit 1) naming the install command when matplotlib is missing."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ToolMissingError(f"--plot needs matplotlib, which is not installed: {INSTALL}")


def plot_fit(result, problem, fmt: str) -> bytes:
    """The cost history (and the data with the fitted curve) as an SVG or PNG image."""
    require_matplotlib()
    from matplotlib.figure import Figure

    predictors = problem.predictors()
    curve = problem.model is not None and len(predictors) == 1 and not result.diverged
    figure = Figure(figsize=(10 if curve else 5.5, 4), layout="constrained")
    axes = figure.subplots(1, 2 if curve else 1, squeeze=False)[0]
    _cost_panel(axes[0], result)
    if curve:
        _curve_panel(axes[1], result, problem, predictors[0])
    buffer = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {}
    figure.savefig(buffer, format=fmt, metadata=metadata, dpi=120)
    return buffer.getvalue()


def _cost_panel(ax, result) -> None:
    history = np.asarray(result.history, dtype=float)
    finite = history[np.isfinite(history)]
    steps = np.arange(len(history))
    ax.plot(steps, history, marker="o" if len(history) < 40 else None, markersize=3)
    if finite.size and np.all(finite > 0) and finite.max() / finite.min() > 100:
        ax.set_yscale("log")
    unit = "evaluation" if result.method == "lm" else "iteration"
    ax.set_xlabel(unit)
    ax.set_ylabel("best cost so far" if result.method == "lm" else "cost")
    ax.set_title(f"cost per {unit} ({result.method})")
    ax.grid(True, alpha=0.3)


def _curve_panel(ax, result, problem, predictor: str) -> None:
    columns = problem.dataset.columns
    x, y = columns[predictor], columns[problem.target]
    ax.scatter(x, y, s=10, alpha=0.6, label="data")
    grid = np.linspace(float(np.min(x)), float(np.max(x)), 400)
    with np.errstate(all="ignore"):
        fitted = problem.model_values(result.params, {predictor: grid})
    ax.plot(grid, fitted, color="C1", label="fitted model")
    ax.set_xlabel(predictor)
    ax.set_ylabel(problem.target)
    ax.set_title("data and fitted model")
    ax.legend()
    ax.grid(True, alpha=0.3)
