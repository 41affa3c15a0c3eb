"""The public function object: text in, a graph with methods over every stage.

In: exprgrad source text (or a node a stage produced). Out: ``Function``,
whose methods call the stages (diff, simplify, print, evaluate, render) and
wrap what they return. Holds no math of its own; imports the heavier stages
only when a method needs them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import graph
from .graph import Node
from .lower import lower
from .parse import parse as parse_program


class Function:
    """A cost function (or a derivative of one) as an operation graph.

    Attributes:
        output: the graph's output node.
        params: names of the scalar parameters, in natural order (theta[2] before theta[10]).
        columns: names of the data columns it reads (one value per row).
    """

    def __init__(self, output: Node, text: str | None = None):
        self.output = output
        self._text = text

    @functools.cached_property
    def _variables(self) -> list[Node]:
        # A walk over the whole graph: done when first asked, not on parsing.
        return graph.variables([self.output])

    @property
    def params(self) -> list[str]:
        return [v.name for v in self._variables if not v.per_row]

    @property
    def columns(self) -> list[str]:
        return [v.name for v in self._variables if v.per_row]

    # ------------------------------------------------------------ values

    def evaluate(self, data: Mapping[str, Sequence[float]] | None = None, **bindings):
        """The value: a float, or one value per row for a per-row function.

        Args:
            data: data columns by name (a dict of arrays, or a Dataset's ``columns``).
            **bindings: parameter values; an array-valued keyword is a column.

        Raises:
            EvaluationError: a parameter or column has no value.
        """
        from .backends.evaluate import evaluate
        from .errors import EvaluationError

        params, columns = _split_bindings(data, bindings)
        per_row = [name for name in columns if name in self.params]
        if per_row:
            # Otherwise the run reports "no value given for parameter", which misleads.
            name = per_row[0]
            raise EvaluationError(
                f"'{name}' is a parameter of this function (one number), but was given a sequence: "
                f"parse it with columns=[{name!r}] to make it a data column"
            )
        return evaluate([self.output], params, columns or None)[0]

    # ------------------------------------------------------------ derivatives

    def _wrt(self, names: str | Iterable[str] | None) -> list[Node]:
        from .passes.diff import resolve_wrt

        if isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        nodes, _warnings = resolve_wrt(self.output, list(names or []))
        return nodes

    def diff(self, name: str) -> Function:
        """The partial derivative with respect to ``name``, simplified."""
        return self.grad([name])[name]

    def grad(self, names: str | Iterable[str] | None = None) -> dict[str, Function]:
        """Partial derivatives for ``names`` (default: every parameter), one reverse sweep."""
        from .passes.diff import diff
        from .passes.simplify import simplify

        wrt = self._wrt(names)
        return {name: Function(simplify(node)) for name, node in diff(self.output, wrt).items()}

    def hessian(self, names: str | Iterable[str] | None = None) -> dict[str, dict[str, Function]]:
        """Second partial derivatives for ``names`` (default: every parameter)."""
        from .passes.diff import hessian
        from .passes.simplify import simplify

        wrt = self._wrt(names)
        return {
            a: {b: Function(simplify(node)) for b, node in row.items()}
            for a, row in hessian(self.output, wrt).items()
        }

    # ------------------------------------------------------------ printing

    def __str__(self) -> str:
        from .backends.printing import to_text

        return to_text(self.output)

    def __repr__(self) -> str:
        return f"exprgrad.Function({str(self)!r})"

    def latex(self) -> str:
        """The function in LaTeX."""
        from .backends.latex import to_latex

        return to_latex(self.output)

    def python(self, function_name: str = "f") -> str:
        """Self-contained numpy source computing the function."""
        from .backends.python_source import to_python

        return to_python({"value": self.output}, function_name)

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    # ------------------------------------------------------------ drawing

    def to_dot(self, wrt: str | Iterable[str] | None = (), **options) -> str:
        """Graphviz DOT text of the graph (and of its derivative graphs with ``wrt``)."""
        from .backends.render import to_dot

        return to_dot(self.output, self._wrt(wrt) if wrt else [], **options)

    def _repr_svg_(self) -> str | None:
        from .backends.render import svg_or_none

        return svg_or_none(self.output)


def _split_bindings(data, bindings) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    columns = {name: np.asarray(values, dtype=float) for name, values in (data or {}).items()}
    params: dict[str, float] = {}
    for name, value in bindings.items():
        if np.ndim(value) == 0:
            params[name] = float(value)
        else:
            columns[name] = np.asarray(value, dtype=float)
    return params, columns


def parse(text: str, columns: Iterable[str] | None = None) -> Function:
    """Parse exprgrad source into a ``Function``.

    Args:
        text: definitions and the function, e.g. "h = a*x + b; mean((h - y)^2)".
        columns: the data column names, when known (a CSV header). Without
            them, in a function that uses sum or mean, x, y, z (x1, y_obs, ...)
            are taken as columns and every other free name is a parameter.

    Raises:
        ExprSyntaxError, NameResolutionError, ArityError: the text is wrong.
    """
    with graph.gc_paused():
        # The syntax tree dies inside the pause: freeing it after would
        # trigger a collection over all of its nodes.
        output = lower(parse_program(text), None if columns is None else list(columns))
        return Function(output, text)
