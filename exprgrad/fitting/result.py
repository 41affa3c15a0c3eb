"""What a fit reports: ``FitResult``, as a JSON-ready dict and as a text table.

In: the numbers a fit produced. Out: ``to_dict()`` with exactly the keys of
the command-line contract first ({"params", "stderr", "cost", "rss",
"iterations", "evaluations", "converged", "message", "method", "rows"}, then
extra keys), nan and inf as null; ``summary()``, the text table.
Must not: compute anything about the fit, print, or write files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import Mention
from .catalog import METHODS

# What the summary names when a fit has no standard errors.
NLL = Mention("nll", True)


@dataclass
class FitResult:
    """The outcome of a fit.

    Attributes:
        params: fitted value by parameter name (natural order).
        stderr: standard error by name (None where there is none: a general
            cost without nll=True, a singular matrix, a diverged fit).
        cost: the cost at ``params`` (always evaluated there). rss: residual sum of squares for a
            least-squares fit, else None.
        iterations, evaluations: method iterations; passes over the data.
        converged: the first-order conditions were verified at ``params``
            (see ``fit.optimality``), not merely a stopping test passed.
            message: why it stopped (and, when not converged, which check
            failed), and any warning about the conditioning of the problem.
        method: the method that ran ("qr" for the direct linear solve).
        rows: data rows. history: the cost per iteration (per evaluation for lm).
        wall_time: seconds. diverged: the cost became nan/inf, or fell
            without bound as the parameters ran away; params then hold the
            best finite point reached.
        defaulted: parameters that started at 0 for want of a start value.
        condition: condition number of the scaled Jacobian (or Hessian).
        stderr_kind: "least squares", "hessian" or None.
        mentions: the Python arguments that ``message`` and ``summary()``
            name ("stopped after max_iter=100 iterations", "needs nll=True"),
            for a caller that writes them its own way (the command line: --max-iter 100).
    """

    params: dict[str, float]
    stderr: dict[str, float | None]
    cost: float
    rss: float | None
    iterations: int
    evaluations: int
    converged: bool
    message: str
    method: str
    rows: int
    history: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    diverged: bool = False
    defaulted: list[str] = field(default_factory=list)
    condition: float | None = None
    stderr_kind: str | None = None
    mentions: tuple[Mention, ...] = ()

    def to_dict(self) -> dict:
        """The JSON shape of the command line: contract keys first, then extras."""
        return {
            "params": {name: _json(v) for name, v in self.params.items()},
            "stderr": {name: _json(v) for name, v in self.stderr.items()},
            "cost": _json(self.cost),
            "rss": _json(self.rss),
            "iterations": int(self.iterations),
            "evaluations": int(self.evaluations),
            "converged": bool(self.converged),
            "message": self.message,
            "method": self.method,
            "rows": int(self.rows),
            "diverged": bool(self.diverged),
            "wall_time": round(self.wall_time, 6),
            "condition": _json(self.condition),
        }

    def summary(self) -> str:
        """The text table the command line prints."""
        status = "yes" if self.converged else "no"
        lines = [
            f"method       {self.method} ({_title(self.method)})",
            f"converged    {status}: {self.message}",
            f"rows         {self.rows}",
            *(["params       the best finite point reached"] if self.diverged else []),
            f"iterations   {self.iterations}   evaluations {self.evaluations}   time {self.wall_time:.3g} s",
            f"cost         {_text(self.cost)}",
        ]
        if self.rss is not None:
            lines.append(f"rss          {_text(self.rss)}")
        width = max([len("parameter"), *map(len, self.params)])
        values = {name: _text(v) for name, v in self.params.items()}
        value_width = max([len("value"), *map(len, values.values())])
        header = "std. error" if self.stderr_kind else f"std. error (needs {NLL} or least squares)"
        lines += ["", f"{'parameter':<{width}}  {'value':<{value_width}}  {header}"]
        for name, text in values.items():
            error = self.stderr.get(name)
            lines.append(
                f"{name:<{width}}  {text:<{value_width}}  {'-' if error is None else _text(error)}".rstrip()
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def _title(name: str) -> str:
    """The method's title in the report (the name itself for one not in METHODS)."""
    method = METHODS.get(name)
    return name if method is None else method.title


def _json(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _text(value) -> str:
    if value is None:
        return "-"
    return f"{float(value):.11g}"
