"""Graph -> LaTeX: the LaTeX style of the one printer, names and derivative labels.

In: output nodes (one, or several by name), exprgrad variable names. Out:
LaTeX math strings (no surrounding $...$). The templates come from the
registry's ``latex`` field; parentheses, operand order and the let-form are
``printing.Printer``'s, shared with text and Python source. Here is only
what LaTeX spells differently: names (theta[1] -> \\theta_{1}), numbers
(1 \\cdot 10^{-7}), \\left( \\right), products by juxtaposition, index
families (w[j] -> w_{j}, W[k,j] -> W_{k,j}, sum[j] -> \\sum_{j}, logsumexp[k] ->
\\log\\sum_{k}\\exp).
Must not: change the graph, evaluate, parenthesize on its own, or keep an
operator table (no list of function names: the registry has them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from .. import graph
from ..graph import Node
from ..ops import PREC_ATOM, PREC_MUL, PREC_NEG, OpSpec
from .layout import Style
from .printing import Printer, number_text, reduction_word, variable_names

# ---------------------------------------------------------------- names and numbers

# fmt: off
_GREEK = [
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda",
    "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega",
]
# fmt: on
# Uppercase Greek letters LaTeX writes as commands (the others look like Latin letters).
_GREEK_UPPER = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_GREEK_CHARS = {chr(0x3B1 + i + (i >= 17)): name for i, name in enumerate(_GREEK)}  # skips final sigma
_GREEK_CHARS["ς"] = "varsigma"
_GREEK_CHARS.update({chr(0x391 + i + (i >= 17)): name.capitalize() for i, name in enumerate(_GREEK)})


_LATIN_LOOKALIKE = {
    "Alpha": "A",
    "Beta": "B",
    "Epsilon": "E",
    "Zeta": "Z",
    "Eta": "H",
    "Iota": "I",
    "Kappa": "K",
    "Mu": "M",
    "Nu": "N",
    "Omicron": "O",
    "Rho": "P",
    "Tau": "T",
    "Chi": "X",
}


def _latex_base(base: str) -> str:
    """A name without subscript: Greek (ASCII or Unicode) as \\theta, one letter as is, else upright."""
    name = _GREEK_CHARS.get(base, base)
    if name in _LATIN_LOOKALIKE or name == "omicron":
        return _LATIN_LOOKALIKE.get(name, "o")
    if name in _GREEK or name in _GREEK_UPPER or name == "varsigma":
        return "\\" + name
    if len(base) == 1:
        return base
    return r"\mathrm{" + base.replace("_", r"\_") + "}"


def latex_name(name: str) -> str:
    """theta[1] -> \\theta_{1}, θ -> \\theta, x2 -> x_{2}, y_obs -> y_{\\mathrm{obs}}, rate -> \\mathrm{rate}."""
    if "\\" in name or "{" in name:
        return name  # already LaTeX (a let name from to_latex_many); exprgrad names have neither
    family, _, index = name.partition("[")
    subscripts = []
    match = re.fullmatch(r"(.+?)_(.+)", family)
    if match:
        family, rest = match.groups()
        subscripts.append(rest if rest.isdigit() else _latex_base(rest))
    else:
        match = re.fullmatch(r"(.*?\D)(\d+)", family)
        if match:
            family, digits = match.groups()
            subscripts.append(digits)
    if index:
        # a member's labels as written (theta[1]); an index name as a name (W[k2,j] -> W_{k_{2},j})
        parts = index.rstrip("]").split(",")
        subscripts.append(",".join(latex_name(p) if p.isidentifier() else p for p in parts))
    text = _latex_base(family)
    if subscripts:
        text += "_{" + ",".join(subscripts) + "}"
    return text


def _latex_index(name: str) -> str:
    """An index name as a subscript: j, k2 as k_{2}, a Greek name as its command."""
    return latex_name(name)


def _latex_family(node: Node) -> str:
    """A variable, a family with its written indices as subscripts: W[k,j] -> W_{k,j}, w[feat] -> w_{\\mathrm{feat}}."""
    text = latex_name(node.name)
    axes = getattr(node, "var_axes", ())
    if not axes:
        return text
    indices = ",".join(_latex_index(i.name) for i in axes)
    if text.endswith("}") and "_{" in text:  # x2[j]: one subscript, x_{2,j}
        return text[:-1] + "," + indices + "}"
    return text + "_{" + indices + "}"


def _latex_number(value: float) -> tuple[str, int]:
    if math.isnan(value):
        return r"\mathrm{NaN}", PREC_ATOM
    if math.isinf(value):
        return (r"\infty", PREC_ATOM) if value > 0 else (r"-\infty", PREC_NEG)
    text = number_text(value)
    prec = PREC_NEG if value < 0 else PREC_ATOM
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} \\cdot 10^{{{int(exponent)}}}"
        prec = min(prec, PREC_MUL)
    return text, prec


# ---------------------------------------------------------------- style


class _LatexStyle(Style):
    open = r"\left("
    close = r"\right)"

    def template(self, spec: OpSpec) -> str:
        if "$" in spec.latex:
            return spec.latex
        if spec.notation == "prefix":
            return f"{spec.latex}$0"
        return f"$0 {spec.latex} $1"

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var:
            return _latex_family(node), PREC_ATOM
        if node.name is not None:
            return latex_name(node.name), PREC_ATOM
        return _latex_number(node.value)

    def index_reduction(self, spec: OpSpec, axes: tuple) -> tuple[str, str]:
        word = reduction_word(spec)
        index = ",".join(_latex_index(i.name) for i in axes)
        if word == "sum":
            return rf"\sum_{{{index}}}\left(", r"\right)"
        if word == "logsumexp":
            return rf"\log\sum_{{{index}}}\exp\left(", r"\right)"
        return rf"\operatorname{{{word}}}_{{{index}}}\left(", r"\right)"

    def size(self, axis) -> tuple[str, int]:
        # As the row count n is \sum_{i} 1 (the rows' sum template), the size of j is \sum_{j} 1.
        index = "i" if axis is getattr(graph, "ROWS", None) else _latex_index(axis.name)
        return rf"\sum_{{{index}}}\left(1\right)", PREC_ATOM

    def delta(self, first, second) -> tuple[str, int]:
        return rf"\delta_{{{_latex_index(first.name)} {_latex_index(second.name)}}}", PREC_ATOM

    def separator(self, sep: str) -> tuple[str, str]:
        # Products by juxtaposition; \cdot only where a number follows (2 \cdot 3^{x}).
        if sep.strip() == r"\cdot":
            return " ", sep
        return sep, sep


# ---------------------------------------------------------------- entry points


def to_latex(node: Node, written: Mapping[Node, tuple] | None = None) -> str:
    """``node`` as a LaTeX math expression (no surrounding $...$).

    \\frac for division, \\sqrt, \\left( \\right), function names from the
    registry (\\sin, \\operatorname{mean}), products by juxtaposition,
    theta[1] as \\theta_{1}, multi-letter names upright.

    Raises:
        LimitError: the text would pass printing.MAX_INLINE_CHARS.
    """
    printer = Printer(_LatexStyle(), [node], written=written)
    return printer.write(node)


def to_latex_many(
    named: Mapping[str, Node],
    let: str = "auto",
    names: Mapping[str, Node] | None = None,
    written: Mapping[Node, tuple] | None = None,
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Like ``to_text_many``, in LaTeX; let names print as t_{1}, t_{2}, ... (h_{1} for the user's h1)."""
    roots = list(named.values())
    printer = Printer(
        _LatexStyle(), roots, let=let, reserved=variable_names(roots), preferred=names, written=written
    )
    for node in printer.named_order:
        printer.names[node] = latex_name(printer.names[node])
    results = {name: printer.write(node) for name, node in named.items()}
    return printer.lets(), results


def latex_derivative_label(wrt: str | Sequence[str], of: str = "J") -> str:
    """\\frac{\\partial J}{\\partial a}; for (a, b): \\frac{\\partial^{2} J}{\\partial a \\partial b}."""
    names = [wrt] if isinstance(wrt, str) else list(wrt)
    top = latex_name(of)
    if len(names) == 1:
        return rf"\frac{{\partial {top}}}{{\partial {latex_name(names[0])}}}"
    parts = []
    for name in dict.fromkeys(names):
        count = names.count(name)
        power = f"^{{{count}}}" if count > 1 else ""
        parts.append(rf"\partial {latex_name(name)}{power}")
    return rf"\frac{{\partial^{{{len(names)}}} {top}}}{{{' '.join(parts)}}}"
