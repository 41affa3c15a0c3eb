"""A fit, prepared: the data, the cost (or model and target) and the starting point, checked.

In: data (a CSV path, a ``Dataset``, a dict of arrays, or None for a cost
without data, whose every name is then a parameter), a scalar cost or a
per-row model with its target (a column, or an expression of columns such as
log(y)), starting values.
Out: ``FitProblem``: the parameter names, the starting vector, the compiled
``Objective`` (and, when the cost is a sum of squares, its residual), and
warnings for the caller to show. Every mistake in the input is a DataError or
an OptionError here, before any optimization.
Must not: optimize, print, or know the command line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from .. import build, graph, memory
from ..backends.evaluate import compile_schedule
from ..errors import ArgumentError, DataError, ExprgradError, Mention, OptionError
from ..function import Function, parse
from ..graph import Node
from ..indexing import presumed_column
from ..selection import fill_families
from .data import Dataset, require_columns
from .families import axes_of, family_layout
from .members import RANDOM_START
from .objective import Objective
from .sources import load as load_source
from .sources import read_columns, terminal_progress

COST, MODEL, TARGET, INIT = Mention("cost"), Mention("model"), Mention("target"), Mention("init")


@dataclass
class FitProblem:
    """Everything a method needs, checked against the data.

    objective: the compiled cost (and residuals, for least squares).
    params: parameter names, natural order. x0: their starting values.
    defaulted: parameters without a starting value (they start at 0).
    residual: the per-row residual when the cost is a sum of squares, else None.
    model, target: the model graph and target column (None for a cost).
    warnings: things the caller may want to show (unknown init= names);
    mentions: the Python arguments they name (``init=``, ``model=``).
    families: each data family the cost reads, with its CSV columns in label order.
    """

    objective: Objective
    params: list[str]
    x0: np.ndarray
    defaulted: list[str]
    residual: Node | None
    model: Node | None = None
    target: str | None = None
    dataset: Dataset | None = None
    warnings: list[str] = field(default_factory=list)
    mentions: tuple[Mention, ...] = ()
    families: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.objective.rows

    def predictors(self) -> list[str]:
        """The data columns the model reads (empty for a fit of a cost), a data
        family as its columns."""
        if self.model is None:
            return []
        read = [v.name for v in graph.variables([self.model]) if v.per_row]
        return list(dict.fromkeys(c for name in read for c in self.families.get(name, (name,))))

    def model_values(self, params: Mapping[str, float], columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The model at ``params`` over ``columns`` (e.g. a grid, to draw the fitted curve)."""

        value = compile_schedule([self.model]).run(dict(params), dict(columns))[0]
        n = len(next(iter(columns.values())))
        return value if isinstance(value, np.ndarray) else np.full(n, float(value))


# The data of a fit without a data file: no columns, no rows; every name is a parameter.
NO_DATA = Dataset(path="<no data>", columns={})


def load_data(data, allow_nan: bool = False) -> Dataset:
    """A Dataset from a data source (a CSV or Parquet path, a glob or folder of
    them: ``sources.load``), a Dataset, or a dict of equal-length arrays."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, (str, os.PathLike)):
        return load_source(data, allow_nonfinite=allow_nan, progress=terminal_progress())
    if isinstance(data, Mapping):
        columns = {}
        for name, values in data.items():
            array = np.asarray(values, dtype=np.float64)
            if not allow_nan and not np.all(np.isfinite(array)):
                raise DataError(f"column '{name}' holds nan or inf values (pass allow_nan=True to keep them)")
            if array.ndim == 2:  # a data family, rows x labels: its columns x1..xm, in one buffer
                for label, column in enumerate(np.ascontiguousarray(array.T), start=1):
                    if f"{name}{label}" in data:
                        raise DataError(
                            f"'{name}{label}' is given twice: as a column and in the 2-d array '{name}'"
                        )
                    columns[f"{name}{label}"] = column
                continue
            columns[str(name)] = array.reshape(-1)
        if (
            not columns
            or len({len(c) for c in columns.values()}) != 1
            or not len(next(iter(columns.values())))
        ):
            raise DataError("data must be non-empty columns of the same length")
        return Dataset(path="<data>", columns=columns)
    raise DataError(
        "data must be a path (a CSV or Parquet file, a glob or a folder of them), a Dataset "
        f"or a dict of arrays, not {type(data).__name__}"
    )


def prepare(
    data=None,
    cost=None,
    model=None,
    target: str | None = None,
    init: Mapping[str, float] | None = None,
    *,
    allow_nan: bool = False,
) -> FitProblem:
    """Parse, check and compile a fit, before any optimization.

    Args:
        data: a CSV path, a Dataset, a dict of arrays, or None: a cost without
            data columns, whose every name (x and y too) is a parameter.
        target: the column the model should reproduce, or an expression of
            columns (``log(y)``), evaluated once over the rows.

    Raises:
        OptionError: both or neither of cost and model, a target without a
            model, a per-row cost, no parameters, an init name that is a
            column, a model or a sum/mean without data.
        DataError: the data cannot be read, the target or a column the
            expression reads is not in it, a target expression that is not
            finite in some row (unless allow_nan) or reads a parameter.
        ExprSyntaxError, NameResolutionError, ArityError: the expression is wrong.
    """
    try:
        return _prepare(data, cost, model, target, init, allow_nan)
    except DataError as exc:  # the CSV reader's allow_nonfinite is this function's allow_nan
        raise exc.renamed({"allow_nonfinite": "allow_nan"}) from None


def _prepare(data, cost, model, target, init, allow_nan: bool) -> FitProblem:
    dataset = NO_DATA if data is None else load_data(data, allow_nan)
    if (cost is None) == (model is None):
        raise OptionError(
            f"give either a cost to minimize ({COST}) or a model and a target column ({MODEL}, {TARGET})",
            mentions=(COST, MODEL, TARGET),
        )
    if model is not None and not target:
        raise OptionError(
            f"{MODEL} needs {TARGET}: the column the model should reproduce", mentions=(MODEL, TARGET)
        )
    if model is not None and data is None:
        raise OptionError(
            f"{MODEL} needs data: give the CSV file (DATA.csv) whose {TARGET} the model should reproduce",
            mentions=(MODEL, TARGET),
        )
    if cost is not None and target:
        raise OptionError("goes with a model; a cost names its columns itself", argument="target")
    # Without data the expression's own rule names the columns (x, y in a sum or mean).
    names = dataset.names if data is not None else None
    functions: list = []  # the parsed Functions, whose families say their labels and columns
    if model is not None:
        model_node = _lower(model, names, functions)
        dataset = _read_columns(dataset, model, functions, _target_reads(target, names))
        dataset, target = _target_column(dataset, target, allow_nan)
        residual = build.sub(model_node, graph.var(target, per_row=True))
        cost_node = build.call("sum", build.pow_(residual, build.const(2)))
        what = MODEL
    else:
        model_node = None
        cost_node = _lower(cost, names, functions)
        dataset = _read_columns(dataset, cost, functions)
        if cost_node.per_row:
            raise OptionError(
                "must be one number, but it has one value per data row: "
                "wrap it in sum(...) or mean(...), e.g. mean((a*x + b - y)^2)",
                argument="cost",
            )
        if data is None:
            _refuse_reductions(cost_node)
        residual = _squared_residual(cost_node)
        what = COST
    variables = graph.variables([cost_node])
    _check_tables(data, variables)
    init, seed = _start_values(init)
    given = {n: v for n, v in init.items() if isinstance(v, (list, tuple, np.ndarray))}
    layout = family_layout(functions, variables, given=given)
    read = [c for v in variables if v.per_row for c in layout.columns.get(v.name, (v.name,))]
    require_columns(dataset, read, what=what)
    dataset, dropped = _finite_rows(dataset, read)
    members = layout.members
    params = list(members.names)
    for name, family in layout.columns.items():
        if name in init:
            raise OptionError(
                f"'{name}' is a data family of {dataset.path} (the columns {family[0]}..{family[-1]}), "
                "not a parameter",
                argument="init",
            )
    _family_starts(members, init, layout.origins)
    fill_families(params, init)  # init={"w": 0}: every w[i] starts at 0, as at= and --at do
    _check_names(params, init, dataset, what)
    if not params:
        raise OptionError(
            f"{what} has no parameters to fit: "
            + (f"every name in it is a data column ({', '.join(names)})" if names else "it names nothing"),
            mentions=(what,),
        )
    known = set(params)  # a set: a family of 20,000 members given whole in init is checked in linear time
    warnings = [f"{INIT} gives '{n}', which {what} does not use; ignored" for n in init if n not in known]
    if dropped:
        used = ", ".join(read)
        warnings.append(
            f"left out {dropped} row{'s' if dropped > 1 else ''} with nan or inf in the columns "
            f"the fit reads ({used}); fitting the other {dataset.rows}"
        )
    x0, defaulted, _ = members.start(init, seed=seed)
    columns = dict(dataset.columns)
    for name, family in layout.columns.items():
        columns[name] = _in_one_buffer([columns[c] for c in family])  # a data family, in label order
    if members.has_families:
        objective = Objective(
            cost_node,
            params,
            columns,
            dataset.rows,
            residual,
            members=members,
            nodes=layout.nodes,
            sizes=layout.sizes,
        )
        if not objective.residuals_are_linear():  # a direct solve does not start anywhere
            warnings += _symmetric_start(objective, x0, _data_on_indices(variables, columns))
    else:
        objective = Objective(cost_node, params, columns, dataset.rows, residual)
    mentions = (INIT, what, RANDOM_START) if warnings else ()
    return FitProblem(
        objective,
        params,
        x0,
        defaulted,
        residual,
        model_node,
        target,
        dataset,
        warnings,
        mentions,
        dict(layout.columns),
    )


def _target_reads(target, names) -> list[str]:
    """The columns the target reads: itself when it is one, else its expression's (see _target_column)."""
    if not isinstance(target, str):
        return []  # _target_column says what it must be
    text = target.strip()
    return [text] if text in names else parse(text, columns=names).data_columns


def _target_column(dataset: Dataset, target, allow_nan: bool) -> tuple[Dataset, str]:
    """The dataset with the target's values as a column, and that column's name.

    A plain column name is that column. Any other text is an expression of the
    columns (log(y), y/n), evaluated once: it becomes a column named by its text.
    """
    if not isinstance(target, str):
        raise ArgumentError(
            f"must be a column name or an expression of columns (a str), got {type(target).__name__}",
            argument="target",
        )
    text = target.strip()
    if text in dataset.names:
        require_columns(dataset, [text], what=TARGET)
        return dataset, text

    node = parse(text, columns=dataset.names).output
    if node.is_var and not node.per_row:
        require_columns(dataset, [text], what=TARGET)  # a plain name the file lacks
    free = [v.name for v in graph.variables([node]) if not v.per_row]
    if free:
        quoted = ", ".join(f"'{n}'" for n in free)
        raise DataError(
            f"{text} reads {quoted}, which {dataset.path} lacks as a column "
            f"(it has: {', '.join(dataset.names)}); the target is computed from data columns only: "
            "parameters go in the model",
            argument="target",
        )
    require_columns(dataset, [v.name for v in graph.variables([node])], what=Mention("target", text))

    with np.errstate(all="ignore"):
        value = compile_schedule([node]).run({}, dict(dataset.columns) or None)[0]
    values = np.ascontiguousarray(np.broadcast_to(np.asarray(value, dtype=np.float64), (dataset.rows,)))
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size and not allow_nan:
        row = int(bad[0])
        cells = ", ".join(
            f"{v.name} = {dataset.columns[v.name][row]:g}" for v in graph.variables([node]) if v.per_row
        )
        named, allow = Mention("target", text), Mention("allow_nan", True)
        raise DataError(
            f"{named} is {values[row]:g} in {bad.size} of {dataset.rows} rows "
            f"(first: data row {row + 1}{', where ' + cells if cells else ''}); "
            f"pass {allow} to leave those rows out",
            mentions=(named, allow),
        )
    columns = {**dataset.columns, text: values}
    # The same rows: their files (and the source, which a worker reads the columns from) stay.
    extended = Dataset(
        path=dataset.path,
        columns=columns,
        header=(*dataset.names, text),
        files=dataset.files,
        source=dataset.source,
    )
    return extended, text


def _start_values(init) -> tuple[dict[str, float], int | None]:
    """``init`` as ({name: float}, random seed or None), or ArgumentError.

    ``init`` is a mapping of names to finite real numbers, the text
    ``'random'`` or ``'random:SEED'`` (every parameter starts at a reproducible
    random point: ``members.Members.random``), or a list of those (the mappings'
    values then win over the random start).
    """
    if init is None:
        return {}, None
    parts = list(init) if isinstance(init, (list, tuple)) else [init]
    start: dict[str, float] = {}
    seed = None
    for part in parts:
        if isinstance(part, str):
            seed = random_seed(part)
            continue
        if not isinstance(part, Mapping):
            raise ArgumentError(
                "must be a mapping of parameter names to numbers, or 'random[:seed]', "
                f"got {type(part).__name__}",
                argument="init",
            )
        start.update(_start_mapping(part))
    return start, seed


def random_seed(text: str) -> int:
    """The seed of ``'random'`` (0) or ``'random:SEED'`` (a whole number >= 0), or ArgumentError."""
    word, sep, number = text.strip().partition(":")
    if word != "random" or (sep and not number.strip().isdigit()):
        raise ArgumentError(
            f"'{text}' is not a start: give values by name, or 'random' or 'random:SEED' "
            "(SEED a whole number, e.g. random:1)",
            argument="init",
        )
    return int(number) if sep else 0


def _start_mapping(init: Mapping) -> dict[str, float]:
    start = {}
    for name, value in init.items():
        if not isinstance(name, str):
            raise ArgumentError(f"names must be str, got {type(name).__name__}", argument="init")
        if isinstance(value, (list, tuple, np.ndarray, Mapping)):
            start[name] = value  # a family's values: checked against its labels once they are known
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ArgumentError(f"{name}: must be a real number, got {type(value).__name__}", argument="init")
        if not np.isfinite(value):
            raise ArgumentError(f"{name}: must be a finite number, got {value}", argument="init")
        start[name] = float(value)
    return start


def _family_starts(members, init: dict, origins) -> None:
    """A family's start given as values (a list, an array in its written axes, or
    label -> value) becomes one start per member, in place; a member given on its
    own keeps its value."""
    for name in [n for n, v in init.items() if not isinstance(v, float)]:
        value = init.pop(name)
        if name not in {b.name for b in members.blocks if b.is_family}:
            raise ArgumentError(
                f"{name}: values for every member are for an index family; '{name}' is not one",
                argument="init",
            )
        try:
            array = members.array(name, value, origins)
        except OptionError as exc:
            raise ArgumentError(str(exc), argument="init") from None
        for member, number in zip(members.block(name).member_names(), array.reshape(-1)):
            init.setdefault(member, float(number))


def _refuse_reductions(cost: Node) -> None:
    """Without data, sum and mean have no rows to run over: say so rather than sum one row."""
    columns = [v.name for v in graph.variables([cost]) if v.per_row]
    if columns:
        quoted = ", ".join(f"'{n}'" for n in columns)
        raise OptionError(
            f"reads {quoted} as data (it sums or averages over rows), but there is no data file: "
            "give one (DATA.csv); without data, a cost without sum and mean has only parameters",
            argument="cost",
        )
    for node in graph.toposort([cost]):
        # A row reduction (sum(e), mean(e)); a sum over an index (sum[j]) needs no data.
        if node.inputs and node.op.reduction and node.axis is graph.ROWS:
            raise OptionError(
                f"uses {node.op.name}(...), which runs over data rows, but there is no data file: "
                "give one (DATA.csv), or write the cost without sum and mean",
                argument="cost",
            )


def _read_columns(dataset: Dataset, expr, functions: list, more=()) -> Dataset:
    """The dataset with the columns the parsed ``functions`` (and ``more``) read; every
    column when ``expr`` is a bare graph, whose data families are not named by a header."""
    if isinstance(expr, Node):
        return read_columns(dataset, ())
    return read_columns(dataset, [*(c for f in functions for c in f.data_columns), *more])


def _lower(expr, names, functions: list) -> Node:
    """The graph of ``expr`` (text, a Function or a Node), the data header naming the
    columns; the Function it comes from is appended to ``functions``."""
    if isinstance(expr, Node):
        return expr

    if isinstance(expr, Function):
        if expr._text is None:
            functions.append(expr)
            return expr.output
        expr = expr._text
    function = parse(expr, columns=names)
    functions.append(function)
    return function.output


def _check_tables(data, variables) -> None:
    """A 2-d array in a data mapping is a data family (rows x labels): refused for a name
    the cost reads as one column."""
    if not isinstance(data, Mapping):
        return
    for v in variables:
        if not axes_of(v) and np.ndim(data.get(v.name, 0)) == 2:
            raise DataError(
                f"'{v.name}' is given as a 2-d array (rows x labels), a data family read as "
                f"{v.name}[j], but the expression reads it as one column: give one value per row"
            )


def _data_on_indices(variables, columns: Mapping) -> dict[str, list]:
    """{index: the (labels x rows) values of each data family written on it} (Y[k]: its
    columns Y1..Y10), what tells units of a parameter family apart besides the gradient."""
    found: dict[str, list] = {}
    for name, axis in sorted(
        {(v.name, axes_of(v)[0].name) for v in variables if v.per_row and len(axes_of(v)) == 1}
    ):
        found.setdefault(axis, []).append(columns[name])
    return found


def _symmetric_start(objective: Objective, x0: np.ndarray, data: Mapping | None = None) -> list[str]:
    """Notes on families whose start the gradient cannot break (``Members.symmetric``):
    found from the gradient at the start, one pass over the data that the first
    step then reuses. ``data``: {index: data families on it}, as ``Members.symmetric`` takes."""
    try:
        _, gradient = objective.value_grad(x0)
    except ExprgradError:
        return []  # the fit itself reports it
    if not np.all(np.isfinite(gradient)):
        return []
    return objective.members.symmetric(x0, gradient, data)


def _in_one_buffer(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """A data family's columns as rows of one labels x rows array, so every evaluation reads
    them in place instead of gathering a block of each (10-15% of a logistic regression's
    value and gradient over 50 columns). Columns already in one buffer (a CSV file's) stay
    as they are, and so do columns whose copy would not fit in memory."""
    first = arrays[0] if arrays else None
    if first is None or (first.base is not None and all(a.base is first.base for a in arrays)):
        return arrays
    need = len(arrays) * len(first) * memory.VALUE_BYTES
    if memory.too_large(need, "a copy of a data family") is not None:
        return arrays
    together = np.empty((len(arrays), len(first)))
    for row, array in zip(together, arrays):
        row[...] = array
    together.flags.writeable = False
    return list(together)


def _finite_rows(dataset: Dataset, used: list[str]) -> tuple[Dataset, int]:
    """The rows whose used columns are all finite (data read with allow_nan), and how many were left out."""
    keep = np.ones(dataset.rows, dtype=bool)
    for name in used:
        if name in dataset.columns:
            keep &= np.isfinite(dataset.columns[name])
    dropped = int(dataset.rows - np.count_nonzero(keep))
    if not dropped:
        return dataset, 0
    if not keep.any():
        raise DataError(f"every row of {dataset.path} has nan or inf in a column the fit reads")
    columns = {name: np.ascontiguousarray(values[keep]) for name, values in dataset.columns.items()}
    return Dataset(path=dataset.path, columns=columns), dropped


def _squared_residual(cost: Node) -> Node | None:
    """r when ``cost`` is c*sum(r^2), c*mean(r^2) or sum(r^2)/c with c > 0; else None."""
    node = cost
    if len(node.inputs) == 2:
        first, second = node.inputs
        for c, rest in ((first, second), (second, first)):
            if c.is_const and c.value > 0 and (build.mul(c, rest) is node or build.div(rest, c) is node):
                node = rest
                break
    if len(node.inputs) != 1 or len(node.inputs[0].inputs) != 2:
        return None
    residual = node.inputs[0].inputs[0]
    if not residual.per_row:
        return None
    for reduction in ("sum", "mean"):
        if build.call(reduction, build.pow_(residual, build.const(2))) is node:
            return residual
    return None


def _check_names(params: list[str], init: Mapping[str, float], dataset: Dataset, what: Mention) -> None:

    for name in init:
        if name in dataset.columns:
            raise OptionError(
                f"'{name}' is a data column of {dataset.path}, not a parameter", argument="init"
            )
    if dataset is NO_DATA:
        return  # without a data file every name is a parameter, x and y too
    lacking = [p for p in params if presumed_column(p) and p not in init]
    if lacking:
        quoted = ", ".join(f"'{n}'" for n in lacking)
        start = Mention("init", {n: 0 for n in lacking})
        raise DataError(
            f"{what} reads {quoted}, which {dataset.path} lacks as a column (it has: {', '.join(dataset.names)}); "
            f"if {'it is a parameter' if len(lacking) == 1 else 'they are parameters'}, give a start with "
            f"{start}",
            mentions=(what, start),
        )
