"""The public function object: text in, a graph with methods over every stage.

In: exprgrad source text (or a node a stage produced). Out: ``Function``,
whose methods call the stages (diff, simplify, print, evaluate, render) and
wrap what they return. Holds no math of its own.
"""

from __future__ import annotations

import functools
import keyword
import numbers
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from . import graph, interning
from .backends.binding import arrange, written_axes
from .backends.evaluate import evaluate
from .backends.latex import latex_derivative_label, to_latex
from .backends.printing import to_text
from .backends.python_source import to_python
from .check import check_partials
from .drawing import svg_or_none, to_dot
from .errors import ArgumentError, EvaluationError
from .graph import Node
from .indexing import Family
from .lower import lower_program
from .parsing import parse as parse_program
from .passes.diff import diff, hessian
from .passes.simplify import simplify
from .selection import select


class Function:
    """A cost function (or a derivative of one) as an operation graph.

    Attributes:
        output: the graph's output node.
        params: names of the scalar parameters, in natural order (theta[2] before theta[10]).
        columns: names of the data columns it reads (one value per row).
        derivative_of: the names it is a derivative with respect to: () for the
            function J itself, ("a",) for the Function ``f.diff("a")`` returns.
        label: how it is titled: "J", "∂J/∂a", "∂²J/∂a∂b".
        definitions: the nodes of the user's definitions, {name: node} in the
            order written (``h = a*x + b``): printers and drawings call such a
            node by its name when they name it.
        written: the sums of the text, {node: operands in the order written}:
            printers keep that order (b + a*x stays b + a*x).
        families: the program's families by name ({"w": indexing.Family}): their
            written indices, parameter or data, labels per axis when known,
            and a data family's column names in label order. {} without families.
        ranges: each index's labels when the program fixes them ({"j": (1, ..., 50)}:
            a data family's columns, a declaration ``k in 1:16``).
    """

    def __init__(self, output: Node, text: str | None = None, derivative_of: tuple[str, ...] = ()):
        if not isinstance(output, Node):
            raise ArgumentError(
                f"must be a graph node, got {type(output).__name__}: use exprgrad.parse(text) for text",
                argument="output",
            )
        self.output = output
        self._text = text
        self.derivative_of = tuple(derivative_of)
        self.definitions: dict[str, Node] = {}
        self.written: dict[Node, tuple[Node, ...]] = {}
        self.families: dict[str, Family] = {}
        self.ranges: dict[str, tuple[int, ...]] = {}
        # A derivative by families: the written axes of the variables (values come back in them).
        self._layout: tuple[tuple[str, ...], ...] = ()

    @property
    def label(self) -> str:
        return _text_label(self.derivative_of)

    @functools.cached_property
    def _variables(self) -> list[Node]:
        # A walk over the whole graph: done when first asked, not on parsing.
        return graph.variables([self.output])

    @property
    def params(self) -> list[str]:
        """Parameter names: scalars, members (theta[1]) and families (w for w[j]), each once."""
        return list(dict.fromkeys(v.name for v in self._variables if not v.per_row))

    @property
    def columns(self) -> list[str]:
        """Data names: columns, and data families by their family name (x for x[j])."""
        return list(dict.fromkeys(v.name for v in self._variables if v.per_row))

    @property
    def data_columns(self) -> list[str]:
        """The data file's columns it reads: each column, and a data family's member columns (x1, x2, ...)."""
        families = {name: family.columns for name, family in self.families.items() if family.columns}
        return list(dict.fromkeys(c for name in self.columns for c in families.get(name, (name,))))

    @property
    def param_sizes(self) -> dict[str, tuple[int | None, ...]]:
        """Each parameter family's number of labels per written axis (None: fixed by the values given)."""
        return {
            name: tuple(None if labels is None else len(labels) for labels in family.labels)
            for name, family in self.families.items()
            if family.kind == "parameter"
        }

    def _inherit(self, other: Function, written: bool = True) -> Function:
        """Carry ``self``'s families, ranges (and text orders) to a Function derived from it."""
        if written:
            other.written = self.written  # printed in the order of the terms they came from
        other.families, other.ranges = self.families, self.ranges
        return other

    # ------------------------------------------------------------ values

    def evaluate(self, data: Mapping[str, Sequence[float]] | None = None, /, **bindings):
        """The value: a float, or one value per row for a per-row function.

        Args:
            data: data columns by name (a dict of arrays, or a Dataset's
                ``columns``); positional, so a parameter may be called ``data``
                (``data=`` with a dict still gives the columns).
            **bindings: parameter values (real numbers); a sequence is a column.
                Names the function does not use are ignored, so one set of
                values serves a function and its derivatives.

        Raises:
            ArgumentError: a value is not a real number (None, text, a complex
                number, True/False), or a column is not one-dimensional.
            EvaluationError: a parameter or column has no value, or columns
                differ in length.
        """

        if data is None and isinstance(bindings.get("data"), Mapping) and "data" not in self.params:
            data = bindings.pop("data")
        params, columns = self._split(data, bindings)
        value = evaluate([self.output], params, columns or None, sizes=self._sizes())[0]
        return self._in_written_axes(self.output, self._layout, value, params) if any(self._layout) else value

    def _in_written_axes(self, node: Node, layout: tuple, value, params: Mapping) -> np.ndarray:
        """The value of ``node``, a derivative by variables with the written axes ``layout``
        (one tuple per variable), in those axes, broadcast over an index it lacks."""
        if not any(layout):
            return value
        have = [index.name for index in node.indices]
        want = written_axes(have, *layout)
        rows = (graph.ROWS.name,) if graph.ROWS.name in have else ()
        sizes = {name: len(labels) for name, labels in self.ranges.items() if labels is not None}
        for name, family in self.families.items():
            if family.kind == "parameter" and np.ndim(params.get(name, 0.0)) == len(family.axes):
                sizes.update(zip(family.axes, np.shape(params[name])))
        if isinstance(value, np.ndarray):
            sizes.update(zip(have, value.shape))
        shape = []
        for axis, source in zip(want, (*rows, *(a for axes in layout for a in axes))):
            size = sizes.get(axis, sizes.get(source))
            if size is None:
                raise EvaluationError(
                    f"no size for index '{source}': give the values of a family that has it"
                )
            shape.append(size)
        return np.ascontiguousarray(arrange(value, have, want, shape))

    def _split(self, data, bindings) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        family_values = {}
        used = {*self.params, *self.columns, *self.families}
        used.update(c for family in self.families.values() for c in family.columns)  # x1..x50 of x[j]
        # an array for a name the function does not use (a family of J, not read by d2J/dc2)
        for name in [n for n in bindings if n not in used and np.ndim(bindings[n]) > 0]:
            del bindings[name]
        for name in list(bindings):
            family = self.families.get(name)
            if family is not None and family.kind == "parameter" and np.ndim(bindings[name]) > 0:
                family_values[name] = _family_values(name, bindings.pop(name), len(family.axes))
        tables = {}  # a data family as one rows x labels array (labels 1..m)
        for source in (bindings, data if isinstance(data, Mapping) else {}):
            for name, value in source.items():
                if getattr(self.families.get(name), "kind", None) == "data" and np.ndim(value) == 2:
                    tables[name] = _column(name, np.reshape(value, -1), name).reshape(np.shape(value))
        bindings = {n: v for n, v in bindings.items() if n not in tables}
        data = {n: v for n, v in data.items() if n not in tables} if isinstance(data, Mapping) else data
        params, columns = _split_bindings(data, bindings)
        params.update(family_values)
        columns.update(tables)
        for name, family in self.families.items():
            # a data family is the block of its columns (x1..x50), in label order
            complete = family.columns and all(c in columns for c in family.columns)
            if family.kind == "data" and name not in columns and complete and name in self.columns:
                columns[name] = [columns[c] for c in family.columns]
        per_row = [name for name in columns if name in self.params]
        if per_row:
            # Otherwise the run reports "no value given for parameter", which misleads.
            name = per_row[0]
            raise EvaluationError(
                f"'{name}' is a parameter of this function (one number), but was given a sequence: "
                f"parse it with columns=[{name!r}] to make it a data column"
            )
        return params, columns

    # ------------------------------------------------------------ derivatives

    def _wrt(self, names, argument: str = "names") -> list[Node]:

        if names is None:
            names = []
        elif isinstance(names, str):
            names = [n.strip() for n in names.split(",") if n.strip()]
        elif isinstance(names, Iterable):
            names = list(names)
            wrong = [n for n in names if not isinstance(n, str)]
            if wrong:
                raise ArgumentError(f"names must be text, got {wrong[0]!r}", argument=argument)
        else:
            raise ArgumentError(
                f"must be a name, names separated by commas, or a list of names, got {type(names).__name__}",
                argument=argument,
            )
        nodes, _warnings = select(self.output, names)
        return nodes

    def diff(self, name: str) -> Function:
        """The partial derivative with respect to ``name`` (a parameter, a family member, a column), simplified."""
        if not isinstance(name, str) or not name.strip():
            raise ArgumentError(
                f"must be a variable name like 'a' or 'theta[0]', got {name!r}", argument="name"
            )
        partials = self.grad([name.strip()])
        if name.strip() in partials:
            return partials[name.strip()]
        if len(partials) == 1:
            return next(iter(partials.values()))
        members = ", ".join(partials)
        raise ArgumentError(
            f"'{name}' is a family ({members}): use grad({name!r}) for all of them", argument="name"
        )

    def grad(self, names: str | Iterable[str] | None = None) -> dict[str, Function]:
        """Partial derivatives for ``names`` (default: every parameter), one reverse sweep."""
        wrt = self._wrt(names)
        axes = {v.name: tuple(i.name for i in v.var_axes) for v in wrt}
        result = {}
        for name, node in diff(self.output, wrt).items():
            result[name] = self._inherit(Function(simplify(node), derivative_of=(*self.derivative_of, name)))
            result[name]._layout = (axes.get(name, ()),)
        return result

    def hessian(self, names: str | Iterable[str] | None = None) -> dict[str, dict[str, Function]]:
        """Second partial derivatives for ``names`` (default: every parameter)."""
        wrt = self._wrt(names)
        axes = {v.name: tuple(i.name for i in v.var_axes) for v in wrt}
        result: dict[str, dict[str, Function]] = {}
        for a, row in hessian(self.output, wrt).items():
            result[a] = {}
            for b, node in row.items():
                entry = Function(simplify(node), derivative_of=(*self.derivative_of, a, b))
                result[a][b] = self._inherit(entry, False)
                entry._layout = (axes.get(a, ()), axes.get(b, ()))
        return result

    def check(
        self,
        values: Mapping[str, float],
        data: Mapping[str, Sequence[float]] | None = None,
        *,
        wrt: str | Iterable[str] | None = None,
        tol: float = 1e-6,
        rows: int = 5,
        members: int = 200,
    ) -> list:
        """Every partial derivative against finite differences (``exprgrad.check``).

        Args:
            values: parameter values by name. data: data columns by name.
            wrt: names to check (default: every parameter).
            tol: the largest accepted relative error, in (0, 1).
            rows: for a column, how many rows to move one at a time.
            members: how many members of families (w[1], W[2,3]) to check in all.

        Returns:
            One ``exprgrad.check.PartialCheck`` per name (per member checked of a family): ``.ok``, ``.status``,
            ``.analytic``, ``.numeric``, ``.error``.
        """

        params, columns = self._split(data, _checked_mapping(values, "values"))
        nodes = self._wrt(wrt, "wrt") if wrt else None
        labels = {n: f.labels for n, f in self.families.items() if f.kind == "parameter"}
        return check_partials(
            self.output,
            params,
            columns,
            nodes,
            tol=tol,
            rows=rows,
            members=members,
            labels=labels,
            sizes=self._sizes(),
        )

    # ------------------------------------------------------------ printing

    def __str__(self) -> str:

        return to_text(self.output, self.written, self.ranges, self.families)

    def __repr__(self) -> str:
        return f"exprgrad.Function({str(self)!r})"

    def latex(self) -> str:
        """The function in LaTeX."""

        return to_latex(self.output, self.written)

    def python(self, function_name: str = "f") -> str:
        """Self-contained numpy source computing the function."""

        if (
            not isinstance(function_name, str)
            or not function_name.isidentifier()
            or keyword.iskeyword(function_name)
        ):
            raise ArgumentError(
                f"must be a Python identifier, got {function_name!r}", argument="function_name"
            )
        columns = {name: family.columns for name, family in self.families.items() if family.columns}
        layouts = None
        if any(self._layout):  # a derivative by families: in their written axes, as evaluate
            have = [index.name for index in self.output.indices]
            rows = (graph.ROWS.name,) if graph.ROWS.name in have else ()
            sources = (*rows, *(axis for axes in self._layout for axis in axes))
            layouts = {"value": (written_axes(have, *self._layout), sources)}
        return to_python(
            {"value": self.output},
            function_name,
            written=self.written,
            columns=columns or None,
            layouts=layouts,
        )

    def _repr_latex_(self) -> str:
        """The expression; a derivative is titled (\\frac{\\partial J}{\\partial a} = ...)."""
        text = self.latex()
        if self.derivative_of:
            text = f"{latex_derivative_label(self.derivative_of)} = {text}"
        return f"$\\displaystyle {text}$"

    # ------------------------------------------------------------ drawing

    def to_dot(self, wrt: str | Iterable[str] | None = (), **options) -> str:
        """Graphviz DOT text of the graph (and of its derivative graphs with ``wrt``).

        Args:
            wrt: names whose derivative graphs to draw.
            **options: graph ("function", "gradient", "both"), values (a dict
                of parameter values and columns), rankdir ("LR", "TB"),
                max_nodes, legend (see ``exprgrad.drawing.to_dot``).
        """

        unknown = [key for key in options if key not in _DOT_OPTIONS]
        if unknown:
            raise ArgumentError(
                f"unknown option '{unknown[0]}' (choose from {', '.join(_DOT_OPTIONS)})", argument="options"
            )
        if options.get("values") is not None:
            params, columns = self._split(None, _checked_mapping(options["values"], "values"))
            options["values"] = {**params, **columns}
        nodes = self._wrt(wrt, "wrt") if wrt else []
        return to_dot(
            self.output,
            nodes,
            name=self.label,
            names=self.definitions,
            written=self.written,
            sizes=self._sizes(),
            **options,
        )

    def _sizes(self) -> dict[str, int] | None:
        """Each index's number of labels, where the program fixes it (for drawings: ``w[j], j: 50``)."""
        return {index: len(labels) for index, labels in self.ranges.items() if labels is not None} or None

    def _repr_svg_(self) -> str | None:

        # A notebook waits for its display: 10 s of layout at most, then no picture.
        return svg_or_none(
            self.output,
            name=self.label,
            names=self.definitions,
            written=self.written,
            sizes=self._sizes(),
            timeout=10.0,
        )


_DOT_OPTIONS = ("graph", "values", "rankdir", "max_nodes", "legend")
_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def _text_label(wrt: tuple[str, ...]) -> str:
    """J, ∂J/∂a, ∂²J/∂a∂b, ∂²J/∂a²."""
    if not wrt:
        return "J"
    order = str(len(wrt)).translate(_SUPERSCRIPTS) if len(wrt) > 1 else ""
    parts = []
    for name in dict.fromkeys(wrt):
        count = wrt.count(name)
        parts.append(f"∂{name}" + (str(count).translate(_SUPERSCRIPTS) if count > 1 else ""))
    return f"∂{order}J/{''.join(parts)}"


def _checked_mapping(value, argument: str) -> Mapping:
    if not isinstance(value, Mapping) and hasattr(value, "keys") and hasattr(value, "__getitem__"):
        value = {key: value[key] for key in value.keys()}  # noqa: SIM118 (.keys(): what a DataFrame or npz file names)
    if not isinstance(value, Mapping):
        raise ArgumentError(
            f"must be a dict of names to values, got {type(value).__name__}", argument=argument
        )
    wrong = [key for key in value if not isinstance(key, str)]
    if wrong:
        raise ArgumentError(f"names must be text, got {wrong[0]!r}", argument=argument)
    return dict(value)  # a copy: binding takes names out of it, never out of the caller's dict


def _real(name: str, value, argument: str) -> float:
    """A parameter's value as a float, or ArgumentError saying what is wrong with it."""
    if isinstance(value, (bool, np.bool_)):
        raise ArgumentError(
            f"{value} is not a number: give {float(value)} for a parameter", argument=argument
        )
    if value is None:
        raise ArgumentError(f"None is not a number: give '{name}' a value", argument=argument)
    if isinstance(value, (str, bytes)):
        raise ArgumentError(f"{value!r} is text, not a number", argument=argument)
    if isinstance(value, (complex, np.complexfloating)):
        raise ArgumentError(
            f"{value!r} is a complex number: exprgrad computes with real numbers", argument=argument
        )
    if not isinstance(value, (numbers.Real, np.number)):
        raise ArgumentError(f"a {type(value).__name__} is not a number", argument=argument)
    try:
        return float(value)
    except OverflowError:
        raise ArgumentError("too large for a float (about 1.8e308 at most)", argument=argument) from None


def _family_values(name: str, values, axes: int) -> np.ndarray:
    """A parameter family's values (an array in its written axes), or ArgumentError."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ArgumentError(f"the values of family {name!r} must be numbers", argument=name) from None
    if array.ndim != axes:
        raise ArgumentError(
            f"family {name!r} has {axes} ind{'ex' if axes == 1 else 'ices'}: give an array with "
            f"{axes} ax{'is' if axes == 1 else 'es'}, got {array.ndim}",
            argument=name,
        )
    if not np.all(np.isfinite(array)):
        raise ArgumentError(f"the values of family {name!r} must be finite numbers", argument=name)
    return array


def _column(name: str, values, argument: str) -> np.ndarray:
    """A column's values as a float64 array, or ArgumentError saying what is wrong with them."""
    if isinstance(values, (str, bytes)):
        raise ArgumentError(f"{values!r} is text, not a column of numbers", argument=argument)
    try:
        array = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ArgumentError(f"cannot read as a column of numbers: {exc}", argument=argument) from None
    if array.ndim == 0:
        raise ArgumentError(
            "is one number, not a column: give a parameter as a keyword (evaluate(a=1.0))", argument=argument
        )
    if array.ndim != 1:
        raise ArgumentError(
            f"must be one-dimensional (one value per row), got shape {array.shape}", argument=argument
        )
    if array.dtype.kind == "c":
        raise ArgumentError("holds complex numbers: exprgrad computes with real numbers", argument=argument)
    if array.dtype.kind not in "biuf":
        try:
            array = np.array([_real(name, v, argument) for v in array.tolist()], dtype=float)
        except ArgumentError as exc:
            raise ArgumentError(
                f"holds a value that is not a number: {exc.message}", argument=argument
            ) from None
    return array.astype(float)


def _split_bindings(data, bindings) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(parameter values, columns): numbers become parameters, sequences columns, all checked."""
    columns: dict[str, np.ndarray] = {}
    if data is not None:
        for name, values in _checked_mapping(data, "data").items():
            columns[name] = _column(name, values, f"data[{name!r}]")
    params: dict[str, float] = {}
    for name, value in bindings.items():
        if name in columns:
            raise EvaluationError(f"'{name}' is given twice: in data and as a keyword")
        if isinstance(value, (str, bytes)) or np.ndim(value) == 0 or value is None:
            params[name] = _real(name, value.item() if isinstance(value, np.ndarray) else value, name)
        else:
            columns[name] = _column(name, value, name)
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"'{name}' has {n}" for name, n in lengths.items())
        raise EvaluationError(f"data columns differ in length ({shown} rows)")
    return params, columns


def parse(text: str, columns: Iterable[str] | None = None, *, free_indices: bool = False) -> Function:
    """Parse exprgrad source into a ``Function``.

    Args:
        text: definitions and the function, e.g. "h = a*x + b; mean((h - y)^2)".
        columns: the data column names, when known (a CSV header). Without
            them, in a function that uses sum or mean, x, y, z (x1, y_obs, ...)
            are taken as columns and every other free name is a parameter.
            Columns x1..x50 (x_1.., x[1]..) form the data family x of ``x[j]``.
        free_indices: the result may have free indices (a family-valued
            function, such as a printed derivative ``mean(x[j]*t1)``).

    Raises:
        ExprSyntaxError, NameResolutionError, ArityError: the text is wrong.
        ArgumentError: ``text`` is not a str, or ``columns`` not a list of names.
    """
    if not isinstance(text, str):
        raise ArgumentError(
            f"must be exprgrad source text (a str), got {type(text).__name__}", argument="text"
        )
    if columns is not None:
        if isinstance(columns, str) or not isinstance(columns, Iterable):
            raise ArgumentError(f"must be a list of column names, got {columns!r}", argument="columns")
        columns = list(columns)
        wrong = [c for c in columns if not isinstance(c, str)]
        if wrong:
            raise ArgumentError(f"column names must be text, got {wrong[0]!r}", argument="columns")
    with interning.gc_paused():
        # The syntax tree dies inside the pause: freeing it after would
        # trigger a collection over all of its nodes.
        lowered = lower_program(parse_program(text), columns, free_indices=bool(free_indices))
        function = Function(lowered.output, text)
        function.definitions, function.written = lowered.definitions, lowered.written
        function.families, function.ranges = lowered.families, lowered.ranges
        return function
