"""Graph -> Python source: a self-contained numpy module computing the outputs.

In: output nodes by name and a function name. Out: the source text of a
module defining ``function_name(params, data=None)``. The expressions are
written by ``printing.Printer`` in a faithful style: the registry's
``python`` templates, graph order and every nesting kept, so the generated
code rounds exactly as the evaluator does. Every shared node gets one
assignment (let="always"), as does any node nested deeper than
PYTHON_MAX_DEPTH; wide sums and products are split into statements of
PYTHON_CHUNK operands.
Index families: when the graph has indices besides the rows, every value is
an array with one axis per index of the program (rows first, then canonical
order; length 1 where a value lacks an index), so numpy broadcasting is the
graph's; ``sum[j]``/``mean[j]`` of a product is one ``np.einsum`` over its
factors (``contract``), other row reductions sum each label's rows with the
evaluator's kernels (``rows_sum``: block sums, exact per label), reductions
over an index are its kernels (``sum_over``, ``logsumexp_over``), and each
output comes back over its own indices in canonical order (``layouts``: in
the axes named there, transposed and broadcast, as ``binding.arrange``). A parameter
family's value is an array in its written axes (``W[k,j]``: k by j), a data
family's a rows x labels array or a sequence of columns; ``sizes`` gives the
size of an index no family has. The values are the evaluator's bit for bit
except through a contraction (einsum; the evaluator's matmul plan may round
differently): there to 1e-12.
Must not: change the graph, evaluate or run the source, parenthesize on its
own, keep an operator table, or write a helper as text (helpers are the
kernels ``OpSpec.python_helper`` names and ``kernels.FAMILY_HELPERS``, their
source from ``kernels.source``).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

from .. import graph, kernels, ops
from ..errors import OptionError
from ..graph import Node
from ..ops import OPS, PREC_ATOM, PREC_NEG, OpSpec
from .evaluate import dot_factors
from .layout import Style
from .printing import Printer, reduction_word

# Python source: a node whose inline expression would nest deeper gets its own
# assignment (CPython's parser and compiler have fixed nesting limits) ...
PYTHON_MAX_DEPTH = 40
# ... and an n-ary sum or product is written this many operands per statement.
PYTHON_CHUNK = 32

# ---------------------------------------------------------------- style


class _PythonStyle(Style):
    faithful = True
    indexed_lets = False
    merges_reductions = False

    def __init__(self, local_names: Mapping[Node, str], axes: _Axes | None = None):
        self.local_names = local_names
        self.axes = axes  # index families: every value an array over all the program's indices

    def template(self, spec: OpSpec) -> str:
        return spec.python

    def index_reduction(self, spec: OpSpec, axes: tuple) -> tuple[str, str]:
        (axis,) = axes  # one at a time (merges_reductions is off)
        where = self.axes.position[axis]
        return f"over_index({_OVER_INDEX[reduction_word(spec)].__name__}, ", f", {where})"

    def contraction(self, node: Node) -> list | None:
        # sum[j](f1*f2*...) and mean[j](...) as one einsum over the factors: the
        # product over every index is never formed. Over the rows, one einsum
        # per block of rows when a factor has an index besides them; any other
        # row reduction sums each label's rows as the evaluator does (rows_sum).
        body = node.inputs[0]
        if self.axes is None:  # a product of two per-row values: one dot product per block, as evaluated
            found = dot_factors(node)
            mean = reduction_word(node.op) == "mean"
            return None if found is None else ["reduce_dot(", found[0], ", ", found[1], f", n, {mean})"]
        if reduction_word(node.op) == "logsumexp":
            return None
        axes = self.axes
        mean = reduction_word(node.op) == "mean"
        product = body.op is ops.MUL
        if node.axis is graph.ROWS:
            if not product or not any(i is not graph.ROWS for i in body.indices):
                return ["rows_sum(", body, f", n, {axes.places(body.indices)}, {mean})"]
            items: list = [f"rows_contract({axes.ndim}, {mean}, n"]
        elif product:
            items = [f"contract({axes.ndim}, {axes.position[node.axis]}, {mean}"]
        else:
            return None
        for factor in body.inputs:
            items.extend([", ", factor, f", {axes.places(factor.indices)}"])
        items.append(")")
        return items

    def size(self, axis) -> tuple[str, int]:
        return self.axes.sizes[axis], PREC_ATOM

    def delta(self, first, second) -> tuple[str, int]:
        # An identity matrix over the two indices' axes (their labels are the same), length 1 on the others.
        axes = self.axes
        others = tuple(p for p in range(axes.ndim) if p not in (axes.position[first], axes.position[second]))
        return f"np.expand_dims(np.eye(int({axes.sizes[first]})), {others})", PREC_ATOM

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var:
            return self.local_names[node], PREC_ATOM
        value = node.value
        if math.isnan(value):
            return "np.nan", PREC_ATOM
        if math.isinf(value):
            return ("np.inf", PREC_ATOM) if value > 0 else ("-np.inf", PREC_NEG)
        if value == 0:
            return "np.float64(0.0)", PREC_ATOM  # x / 0 is inf, as in numpy, not ZeroDivisionError
        return repr(value), (PREC_NEG if value < 0 else PREC_ATOM)


# The kernels of a reduction over one index (the evaluator's), by reduction word.
_OVER_INDEX = {"sum": kernels.sum_over, "mean": kernels.mean_over, "logsumexp": kernels.logsumexp_over}


class _Axes:
    """Index families: every value is an array with one axis per index of the program.

    The rows are axis 0, the other indices follow in canonical order; a value
    has length 1 on the axes of indices it lacks, so numpy's broadcasting is
    the graph's. ``sizes``: the expression of each index's size.
    """

    def __init__(self, order: list[Node]):
        found = {graph.ROWS}
        for node in order:
            found.update(node.indices)
            if node.axis is not None:
                found.add(node.axis)
        self.order = graph.canonical(found)
        self.position = {index: p for p, index in enumerate(self.order)}
        self.ndim = len(self.order)
        self.sizes: dict = {graph.ROWS: "np.float64(n)"}

    def places(self, indices) -> tuple[int, ...]:
        return tuple(self.position[i] for i in indices)


def is_indexed(order: Iterable[Node]) -> bool:
    """Whether a graph has index families: an index besides the rows, or an index's size."""
    rows = getattr(graph, "ROWS", None)
    size = getattr(graph, "SIZE", None)
    return any(n.op is size or any(i is not rows for i in getattr(n, "indices", ())) for n in order)


def _delta_partners(order: Iterable[Node]) -> dict:
    """For each index in a Kronecker delta, the indices it is compared with (they have one size)."""
    partners: dict = {}
    for node in order:
        if node.op is getattr(graph, "DELTA", None):
            first, second = node.indices
            partners.setdefault(first, []).append(second)
            partners.setdefault(second, []).append(first)
    return partners


# ---------------------------------------------------------------- source


# Names the generated function's body itself reads or binds (besides its
# parameters, the helpers and the temporaries t1, t2, ...).
_BODY_NAMES = frozenset({"np", "params", "data", "n"})


def _identifier(name: str) -> str:
    """A Python identifier for ``name``, already in the NFKC form Python reads it in.

    Python folds identifiers to NFKC (``ﬁ`` is ``fi``, fullwidth ``ｎ`` is
    ``n``), so names are compared in that form: two exprgrad names that
    Python would read as one variable get two identifiers.
    """
    text = unicodedata.normalize("NFKC", name)
    chars = [c if ("a" + c).isidentifier() else "_" for c in text]
    local = re.sub(r"_+", "_", "".join(chars)).strip("_") or "v"
    if not local.isidentifier():  # starts with a digit or a combining mark
        local = "v_" + local
    local = unicodedata.normalize("NFKC", local)
    if not local.isidentifier():  # normalization joined what it should not
        local = "v_" + "_".join(f"{ord(c):x}" for c in name)
    return local


def _python_locals(names: Iterable[str], taken: set[str]) -> dict[str, str]:
    """exprgrad name -> a Python identifier unique in NFKC: theta[1] -> theta_1, θ stays θ.

    ``taken``: identifiers the generated code uses itself; Python keywords
    and builtins are never used either.
    """
    return dict(zip(names := list(names), _identifiers(names, taken), strict=True))


def _identifiers(names: Iterable[str], taken: set[str]) -> list[str]:
    """One identifier per name, in order, each new (a name given twice gets two: W, W_)."""
    result = []
    for name in names:
        local = _identifier(name)
        while local in taken or local in _AVOID:
            local += "_"
        taken.add(local)
        result.append(local)
    return result


_AVOID = frozenset({*keyword.kwlist, *keyword.softkwlist, *dir(builtins)})


def _helper_names(statements: Iterable[str]) -> set[str]:
    """The module-level names the helpers' statements bind (def, assignment, import)."""
    found: set[str] = set()
    for source in statements:
        for statement in ast.parse(source).body:
            if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                found.add(statement.name)
            elif isinstance(statement, (ast.Import, ast.ImportFrom)):
                found.update((a.asname or a.name).split(".")[0] for a in statement.names)
            else:
                for node in ast.walk(statement):
                    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                        found.add(node.id)
    return found


def _helper_statements(helpers: Iterable[str]) -> list[str]:
    """The helpers' top-level statements, each once: imports, then assignments, then definitions.

    Kernels share definitions (erf and erfc both import scipy through one
    function), which the module defines once.
    """
    kinds: dict[str, list[str]] = {"import": [], "assign": [], "def": []}
    seen: set[str] = set()
    for source in helpers:
        for statement in ast.parse(source).body:
            text = ast.get_source_segment(source, statement)
            if text in seen:
                continue
            seen.add(text)
            if isinstance(statement, (ast.Import, ast.ImportFrom)):
                kinds["import"].append(text)
            elif isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
                kinds["def"].append(text)
            else:
                kinds["assign"].append(text)
    return [*kinds["import"], *kinds["assign"], *kinds["def"]]


def to_python(
    named: Mapping[str, Node],
    function_name: str = "f",
    names: Mapping[str, Node] | None = None,
    written: Mapping[Node, tuple] | None = None,
    columns: Mapping[str, Sequence[str]] | None = None,
    layouts: Mapping[str, tuple[Sequence[str], Sequence[str]]] | None = None,
) -> str:
    """A self-contained Python module defining ``function_name(params, data=None)``.

    The function takes ``params``, a mapping from parameter name to float
    (exprgrad names: "a", "theta[1]"), and ``data``, a mapping from column
    name to a 1-d array (all of one length n), or None without data (n = 1;
    a data column may then be given as a number in ``params``). It returns
    the value of the single output, or a dict {name: value} for several; a
    per-row output is an array of n values. Each shared subexpression is
    computed once, in one assignment, in topological order; sum and mean
    of a scalar treat it as repeated in each of the n rows.

    Args:
        named: output name -> node.
        function_name: a Python identifier.
        names: the user's own names of nodes ({definition name: node}): a
            node computed in its own assignment takes the first of them,
            made a safe identifier like a variable's name.
        written: sums as written ({node: operands}); a two-term sum keeps
            that order (b + a*x is a*x + b exactly), longer ones graph order.
        columns: for a data family, the names of its columns in label order
            ({"x": ("x1", ..., "x50")}, as ``Function.families`` has them):
            the generated function also reads it from those columns of ``data``.
        layouts: output name -> (the axes it comes back in, for each the index
            whose size it has): a derivative by families in their written axes
            (``binding.written_axes``), broadcast over an index it lacks.

    Raises:
        OptionError: ``function_name`` is not a valid Python identifier, or
            is a name the generated module uses itself (np, a builtin, a helper).
    """
    if not function_name.isidentifier() or keyword.iskeyword(function_name):
        raise OptionError(f"'{function_name}' is not a valid Python function name")
    roots = list(named.values())
    variables = graph.variables(roots)
    order = graph.toposort(roots)
    axes = _Axes(order) if is_indexed(order) else None
    used_ops = {n.op for n in order if not n.is_leaf}
    sources = [
        kernels.source(spec.python_helper)
        for spec in OPS.values()
        if spec in used_ops and spec.python_helper is not None
    ]
    if axes is not None:
        sources += [kernels.source(k) for k in (*kernels.FAMILY_HELPERS, *_OVER_INDEX.values())]
    elif any(dot_factors(n) for n in order if not n.is_leaf):
        sources.append(kernels.source(kernels.reduce_dot))
    helpers = _helper_statements(sources)
    module_names = {"np", *_helper_names(helpers)}
    function_key = unicodedata.normalize("NFKC", function_name)
    if function_key in module_names or function_key in dir(builtins):
        raise OptionError(
            f"'{function_name}' is a name the generated module uses itself; choose another function name"
        )
    taken = {*_BODY_NAMES, *module_names, function_key, *(("sizes",) if axes is not None else ())}
    # One identifier per variable node (W[k,j] and its transpose W[j,k] are two arrays).
    local = dict(zip(variables, _identifiers([v.name for v in variables], taken), strict=True))
    reserved = sorted(taken)  # the code's own names and the variables'
    user = _python_locals(list(names or {}), taken)
    if axes is not None:
        _size_expressions(axes, variables, local, _delta_partners(order))
    printer = Printer(
        _PythonStyle(local, axes),
        roots,
        let="always",
        reserved=reserved,
        max_depth=PYTHON_MAX_DEPTH,
        preferred={user[name]: node for name, node in (names or {}).items()},
        written=written,
    )
    body = [
        "data = {} if data is None else data",
        "n = len(next(iter(data.values()))) if data else 1"
        if axes is None
        else "n = row_count(data) if data else 1",
    ]
    for v in variables:
        key = repr(v.name)
        if axes is not None and (v.per_row or v.var_axes):
            body.append(_family_load(v, local[v], axes, (columns or {}).get(v.name, ())))
        # numpy floats: 1/0 is inf (with a warning), as in the evaluator.
        elif v.per_row:
            body.append(
                f"{local[v]} = np.asarray(data[{key}], dtype=float) if {key} in data "
                f"else np.float64(params[{key}])"
            )
        else:
            body.append(f"{local[v]} = np.float64(params[{key}])")
    for node in printer.named_order:
        name = printer.names[node]
        pieces = printer.chunks(node, PYTHON_CHUNK)
        body.append(f"{name} = {pieces[0]}")
        body.extend(f"{name} = {name}{piece}" for piece in pieces[1:])
    values = {name: printer.write(node) for name, node in named.items()}
    if axes is not None:  # each output over its own indices (rows first; no rows without data)
        for name, node in named.items():
            places = axes.places(node.indices)
            if graph.ROWS in node.indices:
                values[name] = f"own({values[name]}, {places} if data else {places[1:]})"
            else:
                values[name] = f"own({values[name]}, {places})"
            if name in (layouts or {}):
                values[name] = _arranged(values[name], node, axes, *layouts[name])
    if len(values) == 1:
        body.append(f"return {next(iter(values.values()))}")
    else:
        body.append("return {")
        body.extend(f"    {name!r}: {text}," for name, text in values.items())
        body.append("}")
    params = list(dict.fromkeys(v.name for v in variables if not v.per_row))
    columns = list(dict.fromkeys(v.name for v in variables if v.per_row))
    doc = [
        f'"""Generated by exprgrad: {_docstring_text(", ".join(named))}.',
        "",
        _docstring_text(
            f"params: {', '.join(params) or '(none)'}; data columns: {', '.join(columns) or '(none)'}."
        ),
        '"""',
    ]
    imports = [h for h in helpers if h.startswith(("import ", "from "))]
    definitions = [h for h in helpers if h.startswith(("def ", "class "))]
    constants = [h for h in helpers if h not in imports and h not in definitions]
    lines = [*imports, "import numpy as np"]
    if constants:
        lines.extend(["", *constants])
    for definition in definitions:
        lines.extend(["", "", definition])
    signature = "params, data=None" if axes is None else "params, data=None, sizes=None"
    lines.extend(["", "", f"def {function_name}({signature}):"])
    lines.extend("    " + line if line else "" for line in [*doc, *body])
    return "\n".join(lines) + "\n"


def _arranged(text: str, node: Node, axes: _Axes, want: Sequence[str], sources: Sequence[str]) -> str:
    """``text`` (an output over ``node``'s canonical axes) in the axes ``want``, as ``binding.arrange``."""
    have = [index.name for index in node.indices]
    if list(have) == list(want):
        return text
    by_name = {index.name: index for index in axes.order}

    def one(have: list[str], want: list[str], sources: list[str]) -> str:
        order = [have.index(name) for name in want if name in have]
        moved = f"np.transpose({text}, {tuple(order)})" if order != sorted(order) else text
        if all(name in have for name in want):
            return moved
        expand = ", ".join(":" if name in have else "None" for name in want)
        shape = ", ".join(_size_text(source, axes, by_name) for source in sources)
        return f"np.broadcast_to({moved}[{expand}], ({shape},))"

    if graph.ROWS.name in have:
        return f"({one(have, list(want), list(sources))} if data else {one(have[1:], list(want[1:]), list(sources[1:]))})"
    return one(have, list(want), list(sources))


def _size_text(name: str, axes: _Axes, by_name: Mapping) -> str:
    """The size of the index ``name`` in the generated code (one the graph lacks: sizes={"k": 16})."""
    if name == graph.ROWS.name:
        return "n"
    return f"int({axes.sizes[by_name[name]]})" if name in by_name else f"int(sizes[{name!r}])"


def _family_load(v: Node, name: str, axes: _Axes, names: Sequence[str] = ()) -> str:
    """The statement that reads variable ``v`` as an array over the program's axes.

    A parameter family's value is an array in its written axes (``W[k,j]``:
    k by j); a data family's a rows x labels array or a sequence of columns,
    or, with its column ``names``, those columns of ``data``.
    """
    key = repr(v.name)
    if not v.per_row:
        return f"{name} = place(params[{key}], {axes.places(v.var_axes)}, {axes.ndim})"
    if not v.var_axes:
        return (
            f"{name} = place(data[{key}], (0,), {axes.ndim}) if {key} in data else np.float64(params[{key}])"
        )
    source = f"data[{key}]"
    if names:
        source = f"{source} if {key} in data else [data[c] for c in {tuple(names)!r}]"
    return f"{name} = place(columns({source}), {axes.places((graph.ROWS, *v.var_axes))}, {axes.ndim})"


def _size_expressions(axes: _Axes, variables: list[Node], local: Mapping[Node, str], partners=None) -> None:
    """The size of each index: the length of that axis of a family that has it, or of
    one an index is compared with in a Kronecker delta (k2 in delta(k, k2) has k's size)."""
    partners = partners or {}

    def family_axis(index):
        for v in variables:
            if index in v.var_axes:
                return f"np.float64(np.shape({local[v]})[{axes.position[index]}])"
        return None

    for index in axes.order:
        if index in axes.sizes:
            continue
        found = family_axis(index)
        for partner in partners.get(index, ()):
            if found is None:
                found = family_axis(partner)
        if found is not None:
            axes.sizes[index] = found
        else:
            # Only a size, no family over the index (1/size(k) of mean[k](b[k])'s
            # derivative): the caller gives it, sizes={"k": 16}.
            axes.sizes[index] = f"np.float64(sizes[{index.name!r}])"


def _docstring_text(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring: no escapes, no closing quotes."""
    return text.replace("\\", "\\\\").replace('"""', '\\"""').replace("\n", " ")
