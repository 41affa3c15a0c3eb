"""Graph -> text: exprgrad syntax, LaTeX and Python source, one parenthesizer.

In: output nodes (one, or several by name). Out: strings.
Must not: change the graph, evaluate, or recurse on graph depth; keep an
operator table of its own. Every form comes from the registry entry
(``text``/``latex``/``python``, ``notation``, ``precedence``, ``assoc``,
``associative``, ``commutative``); the three targets differ only in the
template they read, how leaves are spelled and how parentheses look.

How a node prints (``_Printer``):
1. Each node gets a *doc*: literal strings and references to its operands,
   each reference with the rule that says when the operand needs
   parentheses. Operands of a commutative op are put in a textbook order
   (sums by degree, products with the number first); a negated term of a
   sum prints with the subtraction's template (a + (-b) reads a - b) and a
   subtracted sum term by term (a - (b + c) reads a - b - c). Python source
   is *faithful* instead: graph order and every nesting kept, so it rounds
   exactly as the evaluator does.
2. A bottom-up pass measures every doc and decides which shared nodes get a
   name (let-form, ``t1 = ...``).
3. An explicit-stack walk writes the text.

Parentheses: an operand is wrapped when its precedence is below its slot's,
or equal where the op's associativity does not allow it (a - (b - c),
a/(b*c), (a^b)^c), or when it begins with a sign and something precedes it
(x^(-1), a*(-b)). A prefix sign binds products without parentheses, since
-(x*y) = (-x)*y: -x*y.

Let-form (``to_text_many``): with let="auto" a node is named when the results
reference it two or more times and its inline text is at least
LET_MIN_CHARS characters; let="always" names every such non-leaf node;
"never" inlines everything. A node below the threshold costs a bounded
number of characters per use, so the let-form text is linear in the size of
the graph.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .. import graph, ops
from ..errors import LimitError, OptionError
from ..graph import Node
from ..ops import OPS, PREC_ADD, PREC_ATOM, PREC_MUL, PREC_NEG, PREC_POW, OpSpec

# let="auto" names a node used twice or more whose inline text has at least this many characters.
LET_MIN_CHARS = 16
# Inline text (let="never", to_text, to_latex) longer than this raises LimitError.
MAX_INLINE_CHARS = 50_000_000
# Python source: a node whose inline expression would nest deeper gets its own
# assignment (CPython's parser and compiler have fixed nesting limits) ...
PYTHON_MAX_DEPTH = 40
# ... and an n-ary sum or product is written this many operands per statement.
PYTHON_CHUNK = 32

LET_MODES = ("auto", "always", "never")

# ---------------------------------------------------------------- templates


@dataclass(frozen=True)
class _Form:
    """A parsed template: literals and slot numbers, and the kind of layout.

    kind: "infix" ($0 sep $1, repeated for a variadic op), "prefix" (sym $0)
    or "template" (anything else: calls, \\frac, {$0}^{$1}).
    """

    kind: str
    parts: tuple
    sep: str = ""


def _parse_template(spec: OpSpec, template: str) -> _Form:
    pieces = [p for p in re.split(r"(\$\d)", template) if p != ""]
    parts = tuple(int(p[1:]) if re.fullmatch(r"\$\d", p) else p for p in pieces)
    if spec.notation == "infix" and len(parts) == 3 and parts[0] == 0 and parts[2] == 1:
        return _Form("infix", parts, parts[1])
    if spec.notation == "prefix" and len(parts) == 2 and parts[1] == 0:
        return _Form("prefix", parts)
    return _Form("template", parts)


def _slot_is_enclosed(before: str, spec: OpSpec) -> bool:
    """Does the template itself delimit the operand after ``before``?"""
    if spec.notation == "call":
        return True  # sin(...), \sqrt{...}, np.float_power(..., ...)
    if before.endswith(("(", "|", ", ", "[")):
        return True
    return before.endswith("{") and len(before) > 1  # ^{...}, \frac{...}{...}; not {$0}^


def _follows_operator(before: str) -> bool:
    tail = before.rstrip()
    return bool(tail) and tail[-1] in "+-*/^="


# ---------------------------------------------------------------- numbers and names


def _number_text(value: float) -> str:
    """Exact and re-parseable: 2, 0.5, 1e-07, 1e20 (no '+', no trailing .0); 1/0, log(-1)."""
    if math.isnan(value):
        return "log(-1)"
    if math.isinf(value):
        return "1/0" if value > 0 else "-1/0"
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value).replace("e+", "e")


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
        subscripts.append(index.rstrip("]"))
    text = _latex_base(family)
    if subscripts:
        text += "_{" + ",".join(subscripts) + "}"
    return text


def _latex_number(value: float) -> tuple[str, int]:
    if math.isnan(value):
        return r"\mathrm{NaN}", PREC_ATOM
    if math.isinf(value):
        return (r"\infty", PREC_ATOM) if value > 0 else (r"-\infty", PREC_NEG)
    text = _number_text(value)
    prec = PREC_NEG if value < 0 else PREC_ATOM
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa} \\cdot 10^{{{int(exponent)}}}"
        prec = min(prec, PREC_MUL)
    return text, prec


# ---------------------------------------------------------------- styles


class _Style:
    """What differs between targets: the template of an op, leaves, parentheses."""

    open = "("
    close = ")"
    # Faithful: operands in graph order and parentheses wherever the graph
    # nests, so floating point gives the evaluator's numbers bit for bit
    # (a*(b/c) is not a*b/c once b*a overflows). Otherwise textbook layout.
    faithful = False

    def template(self, spec: OpSpec) -> str:
        raise NotImplementedError

    def leaf(self, node: Node) -> tuple[str, int]:
        raise NotImplementedError

    def separator(self, sep: str) -> tuple[str, str]:
        """(plain, before a number): how ``sep`` joins two operands."""
        return sep, sep

    def reduction_argument(self, child: Node) -> tuple[str, str] | None:
        """Literals wrapped around a reduction's operand, or None."""
        return None


class _TextStyle(_Style):
    def template(self, spec: OpSpec) -> str:
        if spec.notation == "infix":
            space = " " if spec.precedence <= PREC_ADD else ""
            return f"$0{space}{spec.text}{space}$1"
        if spec.notation == "prefix":
            return f"{spec.text}$0"
        arity = max(spec.arity, 1)
        return f"{spec.text}(" + ", ".join(f"${i}" for i in range(arity)) + ")"

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var or node.name is not None:
            return node.name, PREC_ATOM
        value = node.value
        if math.isinf(value):
            return _number_text(value), PREC_MUL  # 1/0
        return _number_text(value), (PREC_NEG if value < 0 else PREC_ATOM)


class _LatexStyle(_Style):
    open = r"\left("
    close = r"\right)"

    def template(self, spec: OpSpec) -> str:
        if "$" in spec.latex:
            return spec.latex
        if spec.notation == "prefix":
            return f"{spec.latex}$0"
        return f"$0 {spec.latex} $1"

    def leaf(self, node: Node) -> tuple[str, int]:
        if node.is_var or node.name is not None:
            return latex_name(node.name), PREC_ATOM
        return _latex_number(node.value)

    def separator(self, sep: str) -> tuple[str, str]:
        # Products by juxtaposition; \cdot only where a number follows (2 \cdot 3^{x}).
        if sep.strip() == r"\cdot":
            return " ", sep
        return sep, sep


class _PythonStyle(_Style):
    faithful = True

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

    def reduction_argument(self, child: Node) -> tuple[str, str] | None:
        # A scalar stands for the same value in every row: sum(s) = n*s.
        if child.per_row:
            return None
        return "np.broadcast_to(", ", (n,))"


# ---------------------------------------------------------------- display order


class _Keys:
    """Per-node facts for a textbook order of commutative operands, bottom-up."""

    def __init__(self, order: list[Node]):
        self.first_var: dict[int, tuple] = {}
        self.degree: dict[int, float] = {}
        for node in order:
            self._visit(node)

    def _visit(self, node: Node) -> None:
        i = id(node)
        if node.is_var:
            self.first_var[i], self.degree[i] = (0, graph.natural_key(node.name)), 1.0
            return
        if node.is_const:
            self.first_var[i], self.degree[i] = (1,), 0.0
            return
        kids = [id(c) for c in node.inputs]
        self.first_var[i] = min(self.first_var[k] for k in kids)
        spec = OPS[node.op]
        degrees = [self.degree[k] for k in kids]
        if self.first_var[i] == (1,):
            degree = 0.0
        elif spec.notation == "prefix":
            degree = degrees[0]
        elif spec.notation != "infix":
            degree = 1.0
        elif spec.precedence == PREC_ADD:
            degree = max(degrees)
        elif spec.precedence == PREC_MUL:
            degree = sum(degrees)
        else:  # a power: x^3 has degree 3
            exponent = node.inputs[-1]
            scale = exponent.value if exponent.is_const and math.isfinite(exponent.value) else 1.0
            degree = degrees[0] * scale
        self.degree[i] = degree

    def term(self, node: Node) -> tuple:
        """Sums: terms with variables first, higher degree first, then by first variable."""
        i = id(node)
        constant = self.first_var[i] == (1,)
        return (constant, -self.degree[i], self.first_var[i], node.sort_key)

    def factor(self, node: Node) -> tuple:
        """Products: the number, named constants, variables and their powers, calls, the rest."""
        if node.is_const:
            rank = 0 if node.name is None else 1
        elif node.is_var:
            rank = 2
        else:
            spec = OPS[node.op]
            if spec.notation == "infix" and spec.precedence == PREC_POW:
                rank = 2 if node.inputs[0].is_var else 3
            elif spec.notation == "call":
                rank = 4
            else:
                rank = 5
        op = "" if node.is_leaf else node.op
        return (rank, self.first_var[id(node)], op, node.sort_key)


def _positive(node: Node) -> Node | None:
    """u when ``node`` is a negation the builders make of u (-u, or -2 for 2), else None."""
    if node.is_const and node.name is None and node.value < 0:
        return ops.const(-node.value)
    if len(node.inputs) == 1 and OPS[node.op].notation == "prefix" and ops.neg(node.inputs[0]) is node:
        return node.inputs[0]
    return None


def _additive_ops() -> tuple[OpSpec, OpSpec] | None:
    """(sum, subtraction): the commutative infix op with identity 0, and the
    non-commutative infix op of its precedence. They let the printer write
    a + (-b) as a - b and a - (b + c) as a - b - c."""
    for plus in OPS.values():
        if plus.notation == "infix" and plus.commutative and plus.identity == 0.0:
            for minus in OPS.values():
                if (
                    minus.notation == "infix"
                    and minus.precedence == plus.precedence
                    and not minus.commutative
                ):
                    return plus, minus
    return None


_ADDITIVE = _additive_ops()
_ADDITIVE_NAMES = {spec.name for spec in _ADDITIVE} if _ADDITIVE else set()


# ---------------------------------------------------------------- the printer

# A doc item is a literal str, a reference ("ref", node, min_prec, strict,
# sign_guard), or a separator ("sep", plain, before_number, ref).


class _Printer:
    """Prints the nodes ``roots`` in one style, sharing the work across them."""

    def __init__(
        self,
        style: _Style,
        roots: Sequence[Node],
        let: str = "never",
        reserved: Iterable[str] = (),
        max_depth: int | None = None,
        prefix: str = "t",
    ):
        if let not in LET_MODES:
            raise OptionError(f"unknown let mode '{let}' (choose from {', '.join(LET_MODES)})")
        self.style = style
        self.roots = list(roots)
        self.let = let
        self.max_depth = max_depth
        self.prefix = _temp_prefix(prefix, reserved)
        self.order = graph.toposort(self.roots)
        self.keys = _Keys(self.order)
        self.forms: dict[str, _Form] = {}
        self.docs: dict[int, list] = {}
        self.prec: dict[int, int] = {}
        self.extra: list[Node] = []  # leaves made while printing; measured first
        for node in self.order:
            self._doc(node)
        self._count_refs()
        self.names: dict[int, str] = {}
        self.length: dict[int, int] = {}
        self.depth: dict[int, int] = {}
        self.starts_sign: dict[int, bool] = {}
        self.starts_digit: dict[int, bool] = {}
        self.named_order: list[Node] = []
        for node in [*self.extra, *self.order]:
            if self.refs.get(id(node), 0):
                self._measure(node)

    # ------------------------------------------------------------ docs

    def form(self, spec: OpSpec) -> _Form:
        form = self.forms.get(spec.name)
        if form is None:
            form = self.forms[spec.name] = _parse_template(spec, self.style.template(spec))
        return form

    def _doc(self, node: Node) -> None:
        if node.is_leaf:
            text, prec = self.style.leaf(node)
            self.docs[id(node)], self.prec[id(node)] = [text], prec
            return
        spec = OPS[node.op]
        form = self.form(spec)
        self.prec[id(node)] = spec.precedence
        if form.kind == "infix":
            self.docs[id(node)] = self._infix_doc(node, spec, form)
        elif form.kind == "prefix":
            # A sign binds products without parentheses: -(x*y) prints -x*y.
            self.docs[id(node)] = [form.parts[0], ("ref", node.inputs[0], PREC_MUL, False, True)]
        else:
            self.docs[id(node)] = self._template_doc(node, spec, form)

    def _infix_doc(self, node: Node, spec: OpSpec, form: _Form) -> list:
        additive = _ADDITIVE if spec.name in _ADDITIVE_NAMES else None
        signed = self._signed_operands(node, spec, additive)
        doc: list = [("ref", signed[0][1], spec.precedence, spec.assoc != "left", False)]
        for sign, operand in signed[1:]:
            joining = spec if additive is None else additive[0 if sign == 1 else 1]
            strict = joining.assoc != "right" and (self.style.faithful or not joining.associative)
            ref = ("ref", operand, joining.precedence, strict, True)
            plain, before_number = self.style.separator(self.form(joining).sep)
            doc.append(("sep", plain, before_number, ref))
            doc.append(ref)
        return doc

    def _signed_operands(self, node: Node, spec: OpSpec, additive) -> list[tuple[int, Node]]:
        """Operands in display order, each with the sign it prints with.

        A sum's negated terms print subtracted (a + (-b) -> a - b), and a sum
        that is subtracted prints term by term (a - (b + c) -> a - b - c).
        Products put their operands in textbook order (2*x*sin(x)).
        """
        faithful = self.style.faithful
        if additive is None:
            if spec.commutative and not faithful:
                return [(1, o) for o in sorted(node.inputs, key=self.keys.factor)]
            return [(1, o) for o in node.inputs]
        plus, _ = additive
        if spec is not plus:  # the subtraction
            left, right = node.inputs
            if right.op == plus.name and not faithful:
                return [(1, left), *((-sign, term) for sign, term in self._sum_terms(right))]
            return [(1, left), (-1, right)]
        if faithful:  # a + (-b) is a - b exactly, in any rounding
            terms = [(1, node.inputs[0])]
            for sign, term in self._sum_terms(node, ordered=False)[1:]:
                terms.append((sign, term))
            return terms
        terms = self._sum_terms(node)
        first_plus = next((i for i, (sign, _) in enumerate(terms) if sign == 1), None)
        if first_plus is None:  # every term negative: the first keeps its sign
            terms[0] = (1, ops.neg(terms[0][1]))
            self._ensure(terms[0][1])
        else:
            terms.insert(0, terms.pop(first_plus))  # 1 - x^2, not -x^2 + 1
        return terms

    def _sum_terms(self, node: Node, ordered: bool = True) -> list[tuple[int, Node]]:
        """(sign, positive term) for each operand of a sum, in display order."""
        terms = []
        for operand in node.inputs:
            positive = _positive(operand)
            if positive is None:
                terms.append((1, operand))
            else:
                self._ensure(positive)
                terms.append((-1, positive))
        if ordered:
            terms.sort(key=lambda t: self.keys.term(t[1]))
        return terms

    def _template_doc(self, node: Node, spec: OpSpec, form: _Form) -> list:
        doc: list = []
        before = ""
        for part in form.parts:
            if isinstance(part, str):
                doc.append(part)
                before += part
                continue
            child = node.inputs[part]
            if _slot_is_enclosed(before, spec):
                ref = ("ref", child, 0, False, _follows_operator(before))
            else:
                leading = before in ("", "{")  # {$0}^{$1}: the base is a bare left operand
                strict = spec.assoc != "left" if leading else (spec.assoc != "right" and not spec.associative)
                ref = ("ref", child, spec.precedence, strict, not leading)
            wrap = self.style.reduction_argument(child) if spec.reduction else None
            if wrap is not None:
                doc.extend([wrap[0], ("ref", child, 0, False, False), wrap[1]])
            else:
                doc.append(ref)
            before = ""
        return doc

    def _ensure(self, node: Node) -> None:
        """A doc for a node made while printing (2 for the term -2 of a sum)."""
        if id(node) not in self.docs:
            self.keys._visit(node)
            self._doc(node)
            self.extra.append(node)

    def _refs_of(self, node: Node):
        for item in self.docs[id(node)]:
            if isinstance(item, tuple) and item[0] == "ref":
                yield item[1]

    def _count_refs(self) -> None:
        """How many times the printed results reference each node (roots count once)."""
        self.refs: dict[int, int] = {}
        stack = []
        for root in self.roots:
            self.refs[id(root)] = self.refs.get(id(root), 0) + 1
            if self.refs[id(root)] == 1:
                stack.append(root)
        while stack:
            node = stack.pop()
            for child in self._refs_of(node):
                count = self.refs.get(id(child), 0)
                self.refs[id(child)] = count + 1
                if count == 0:
                    stack.append(child)

    # ------------------------------------------------------------ measuring and naming

    def _parens(self, ref: tuple) -> bool:
        _, child, min_prec, strict, guard = ref
        if id(child) in self.names:
            return False
        prec = self.prec[id(child)]
        return prec < min_prec or (prec == min_prec and strict) or (guard and self.starts_sign[id(child)])

    def _ref_starts(self, ref: tuple) -> tuple[bool, bool]:
        child = ref[1]
        if id(child) in self.names or self._parens(ref):
            return False, False
        return self.starts_sign[id(child)], self.starts_digit[id(child)]

    def _starts(self, doc: list) -> tuple[bool, bool]:
        """Does the text of ``doc`` begin with a sign, with a digit? (LaTeX groups '{' skipped.)"""
        for item in doc:
            if isinstance(item, str):
                text = item.lstrip("{")
                if text:
                    return text.startswith("-"), text[0].isdigit()
            else:
                return self._ref_starts(item)
        return False, False

    def _measure(self, node: Node) -> None:
        i = id(node)
        length, depth, operands = 0, 0, 0
        for item in self.docs[i]:
            if isinstance(item, str):
                length += len(item)
            elif item[0] == "sep":
                length += len(item[1])
            else:
                child = item[1]
                operands += 1
                if id(child) in self.names:
                    length += len(self.names[id(child)])
                else:
                    length += self.length[id(child)]
                    depth = max(depth, self.depth[id(child)])
                    if self._parens(item):
                        length += len(self.style.open) + len(self.style.close)
        self.starts_sign[i], self.starts_digit[i] = self._starts(self.docs[i])
        self.length[i] = length
        self.depth[i] = depth + max(operands, 1 if not node.is_leaf else 0)
        if self._should_name(node):
            self.names[i] = f"{self.prefix}{len(self.named_order) + 1}"
            self.named_order.append(node)

    def _should_name(self, node: Node) -> bool:
        if node.is_leaf:
            return False
        if self.max_depth is not None and self.depth[id(node)] > self.max_depth:
            return True
        shared = self.refs.get(id(node), 0) >= 2
        if self.let == "always":
            return shared
        if self.let == "auto":
            return shared and self.length[id(node)] >= LET_MIN_CHARS
        return False

    # ------------------------------------------------------------ writing

    def write(self, node: Node, define: bool = False) -> str:
        """The text of ``node``: its name, or (``define``, or unnamed) its doc."""
        if not define and id(node) in self.names:
            return self.names[id(node)]
        if not define and self.length[id(node)] > MAX_INLINE_CHARS:
            raise LimitError(
                f"the inline text would be {self.length[id(node)]:,} characters; "
                "print with shared subexpressions named (let-form) instead"
            )
        return self._write_items(self.docs[id(node)])

    def _write_items(self, items: list) -> str:
        out: list[str] = []
        stack = list(reversed(items))
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                out.append(item)
            elif item[0] == "sep":
                out.append(item[2] if self._ref_starts(item[3])[1] else item[1])
            else:
                child = item[1]
                if id(child) in self.names:
                    out.append(self.names[id(child)])
                elif self._parens(item):
                    stack.append(self.style.close)
                    stack.extend(reversed(self.docs[id(child)]))
                    stack.append(self.style.open)
                else:
                    stack.extend(reversed(self.docs[id(child)]))
        return "".join(out)

    def chunks(self, node: Node) -> list[str]:
        """The definition of a named n-ary node in pieces of at most PYTHON_CHUNK operands.

        The first piece is an expression; every later one starts with a
        separator, to be appended to the name (t1 = t1 + ...).
        """
        pieces: list[list] = [[]]
        operands = 0
        for item in self.docs[id(node)]:
            if isinstance(item, tuple) and item[0] == "sep":
                operands += 1
                if operands % PYTHON_CHUNK == 0:
                    pieces.append([])
            pieces[-1].append(item)
        return [self._write_items(piece) for piece in pieces]

    def lets(self) -> list[tuple[str, str]]:
        return [(self.names[id(n)], self.write(n, define=True)) for n in self.named_order]


def _temp_prefix(prefix: str, reserved: Iterable[str]) -> str:
    """A prefix p such that no reserved name is p1, p2, ... (or a family p1[...])."""
    taken = {name.split("[", 1)[0] for name in reserved}
    while any(re.fullmatch(re.escape(prefix) + r"\d+", name) for name in taken):
        prefix += "_"
    return prefix


def _variable_names(roots: Iterable[Node]) -> list[str]:
    return [v.name for v in graph.variables(roots)]


# ---------------------------------------------------------------- text


def to_text(node: Node) -> str:
    """``node`` as exprgrad text that parses back to the same function.

    Numbers print exactly (repr, integers without .0), pi and e by name, terms
    in a textbook order. Shared subexpressions print inline (see
    ``to_text_many`` for the let-form).

    Raises:
        LimitError: the inline text would pass MAX_INLINE_CHARS.
    """
    printer = _Printer(_TextStyle(), [node])
    return printer.write(node)


def to_text_many(
    named: Mapping[str, Node], let: str = "auto"
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Several results printed together, shared subexpressions named once.

    Args:
        named: result name -> node (e.g. the partial derivatives by variable).
        let: "auto" names a node referenced two or more times whose inline
            text has at least LET_MIN_CHARS characters; "always" every such
            non-leaf node; "never" none.

    Returns:
        (lets, results): lets are (name, text) in dependency order, names
        t1, t2, ... chosen not to clash with the function's variables;
        results map each name of ``named`` to its text, which may use the
        let names. ``program_text`` joins them into one valid program.

    Raises:
        OptionError: an unknown ``let`` mode.
        LimitError: an inline text would pass MAX_INLINE_CHARS.
    """
    roots = list(named.values())
    printer = _Printer(_TextStyle(), roots, let=let, reserved=_variable_names(roots))
    results = {name: printer.write(node) for name, node in named.items()}
    return printer.lets(), results


def program_text(lets: Sequence[tuple[str, str]], result_text: str) -> str:
    """One exprgrad program: the definitions ``result_text`` needs, then the result.

    Only the lets the result uses (directly or through other lets) are kept,
    in their order: ``t1 = ...`` lines, then the expression.
    """
    definitions = dict(lets)
    needed: set[str] = set()
    stack = [result_text]
    while stack:
        for word in re.findall(r"\w+", stack.pop()):
            if word in definitions and word not in needed:
                needed.add(word)
                stack.append(definitions[word])
    lines = [f"{name} = {text}" for name, text in lets if name in needed]
    return "\n".join([*lines, result_text])


# ---------------------------------------------------------------- LaTeX


def to_latex(node: Node) -> str:
    """``node`` as a LaTeX math expression (no surrounding $...$).

    \\frac for division, \\sqrt, \\left( \\right), function names from the
    registry (\\sin, \\operatorname{mean}), products by juxtaposition,
    theta[1] as \\theta_{1}, multi-letter names upright.

    Raises:
        LimitError: the text would pass MAX_INLINE_CHARS.
    """
    printer = _Printer(_LatexStyle(), [node])
    return printer.write(node)


def to_latex_many(
    named: Mapping[str, Node], let: str = "auto"
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Like ``to_text_many``, in LaTeX; let names print as t_{1}, t_{2}, ..."""
    roots = list(named.values())
    printer = _Printer(_LatexStyle(), roots, let=let, reserved=_variable_names(roots))
    for i, node in enumerate(printer.named_order, start=1):
        printer.names[id(node)] = latex_name(f"{printer.prefix}{i}")
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


# ---------------------------------------------------------------- Python


def _python_locals(names: Iterable[str], taken: set[str]) -> dict[str, str]:
    """exprgrad name -> a Python identifier: theta[1] -> theta_1, θ stays θ."""
    result = {}
    for name in names:
        local = re.sub(r"\W+", "_", name).strip("_") or "v"
        if not local.isidentifier() or local[0].isdigit():
            local = "v_" + local
        while local in taken or keyword.iskeyword(local):
            local += "_"
        taken.add(local)
        result[name] = local
    return result


def to_python(named: Mapping[str, Node], function_name: str = "f") -> str:
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

    Raises:
        OptionError: ``function_name`` is not a valid Python identifier.
    """
    if not function_name.isidentifier() or keyword.iskeyword(function_name):
        raise OptionError(f"'{function_name}' is not a valid Python function name")
    roots = list(named.values())
    variables = graph.variables(roots)
    used_ops = {n.op for n in graph.toposort(roots) if not n.is_leaf}
    helpers = [spec.python_helper for spec in OPS.values() if spec.name in used_ops and spec.python_helper]
    taken = {"np", "params", "data", "n", function_name, "len", "next", "iter", "float", "dict"}
    for helper in helpers:
        taken.update(re.findall(r"^def (\w+)", helper, flags=re.MULTILINE))
    local = _python_locals([v.name for v in variables], taken)
    printer = _Printer(
        _PythonStyle(local),
        roots,
        let="always",
        reserved=[*local.values(), *taken],
        max_depth=PYTHON_MAX_DEPTH,
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
        name = printer.names[id(node)]
        pieces = printer.chunks(node)
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
        f'"""Generated by exprgrad: {", ".join(named)}.',
        "",
        f"params: {', '.join(params) or '(none)'}; data columns: {', '.join(columns) or '(none)'}.",
        '"""',
    ]
    lines = ["import numpy as np", ""]
    for helper in helpers:
        lines.extend(["", helper.rstrip("\n"), ""])
    lines.extend(["", f"def {function_name}(params, data=None):"])
    lines.extend("    " + line if line else "" for line in [*doc, *body])
    return "\n".join(lines) + "\n"
