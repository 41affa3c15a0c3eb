"""Graph -> Python source: a self-contained numpy module computing the outputs.

In: output nodes by name and a function name. Out: the source text of a
module defining ``function_name(params, data=None)``. The expressions are
written by ``printing.Printer`` in a faithful style: the registry's
``python`` templates, graph order and every nesting kept, so the generated
code rounds exactly as the evaluator does. Every shared node gets one
assignment (let="always"), as does any node nested deeper than
PYTHON_MAX_DEPTH; wide sums and products are split into statements of
PYTHON_CHUNK operands.
Must not: change the graph, evaluate or run the source, parenthesize on its
own, or keep an operator table (helpers are the kernels ``OpSpec.python_helper``
names, their source from ``kernels.source``).
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping

from .. import graph, kernels
from ..errors import OptionError
from ..graph import Node
from ..ops import OPS, PREC_ATOM, PREC_NEG, OpSpec
from .layout import Style
from .printing import Printer

# Python source: a node whose inline expression would nest deeper gets its own
# assignment (CPython's parser and compiler have fixed nesting limits) ...
PYTHON_MAX_DEPTH = 40
# ... and an n-ary sum or product is written this many operands per statement.
PYTHON_CHUNK = 32

# ---------------------------------------------------------------- style


class _PythonStyle(Style):
    faithful = True
    indexed_lets = False

    def __init__(self, local_names: Mapping[str, str]):
        self.local_names = local_names

    def template(self, spec: OpSpec) -> str:
        return spec.python

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var:
            return self.local_names[node.name], PREC_ATOM
        value = node.value
        if math.isnan(value):
            return "np.nan", PREC_ATOM
        if math.isinf(value):
            return ("np.inf", PREC_ATOM) if value > 0 else ("-np.inf", PREC_NEG)
        if value == 0:
            return "np.float64(0.0)", PREC_ATOM  # x / 0 is inf, as in numpy, not ZeroDivisionError
        return repr(value), (PREC_NEG if value < 0 else PREC_ATOM)


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
    result = {}
    for name in names:
        local = _identifier(name)
        while local in taken or local in _AVOID:
            local += "_"
        taken.add(local)
        result[name] = local
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

    Raises:
        OptionError: ``function_name`` is not a valid Python identifier, or
            is a name the generated module uses itself (np, a builtin, a helper).
    """
    if not function_name.isidentifier() or keyword.iskeyword(function_name):
        raise OptionError(f"'{function_name}' is not a valid Python function name")
    roots = list(named.values())
    variables = graph.variables(roots)
    used_ops = {n.op for n in graph.toposort(roots) if not n.is_leaf}
    helpers = _helper_statements(
        kernels.source(spec.python_helper)
        for spec in OPS.values()
        if spec.name in used_ops and spec.python_helper is not None
    )
    module_names = {"np", *_helper_names(helpers)}
    function_key = unicodedata.normalize("NFKC", function_name)
    if function_key in module_names or function_key in dir(builtins):
        raise OptionError(
            f"'{function_name}' is a name the generated module uses itself; choose another function name"
        )
    taken = {*_BODY_NAMES, *module_names, function_key}
    local = _python_locals([v.name for v in variables], taken)
    reserved = sorted(taken)  # the code's own names and the variables'
    user = _python_locals(list(names or {}), taken)
    printer = Printer(
        _PythonStyle(local),
        roots,
        let="always",
        reserved=reserved,
        max_depth=PYTHON_MAX_DEPTH,
        preferred={user[name]: node for name, node in (names or {}).items()},
        written=written,
    )
    body = [
        "data = {} if data is None else data",
        "n = len(next(iter(data.values()))) if data else 1",
    ]
    for v in variables:
        key = repr(v.name)
        # numpy floats: 1/0 is inf (with a warning), as in the evaluator.
        if v.per_row:
            body.append(
                f"{local[v.name]} = np.asarray(data[{key}], dtype=float) if {key} in data "
                f"else np.float64(params[{key}])"
            )
        else:
            body.append(f"{local[v.name]} = np.float64(params[{key}])")
    for node in printer.named_order:
        name = printer.names[node]
        pieces = printer.chunks(node, PYTHON_CHUNK)
        body.append(f"{name} = {pieces[0]}")
        body.extend(f"{name} = {name}{piece}" for piece in pieces[1:])
    values = {name: printer.write(node) for name, node in named.items()}
    if len(values) == 1:
        body.append(f"return {next(iter(values.values()))}")
    else:
        body.append("return {")
        body.extend(f"    {name!r}: {text}," for name, text in values.items())
        body.append("}")
    params = [v.name for v in variables if not v.per_row]
    columns = [v.name for v in variables if v.per_row]
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
    lines.extend(["", "", f"def {function_name}(params, data=None):"])
    lines.extend("    " + line if line else "" for line in [*doc, *body])
    return "\n".join(lines) + "\n"


def _docstring_text(text: str) -> str:
    """``text`` safe inside a triple-quoted docstring: no escapes, no closing quotes."""
    return text.replace("\\", "\\\\").replace('"""', '\\"""').replace("\n", " ")
