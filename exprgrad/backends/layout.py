"""Graph -> docs: how each node of a printed graph is laid out, before any text exists.

In: the nodes to print (in ``graph.toposort`` order) and a ``Style``, the one
thing that differs between text, LaTeX and Python source. Out: a ``Layout``
holding, for every node, a *doc*: literal strings and references to its
operands, each reference with the rule that says when the operand needs
parentheses. ``printing.Printer`` measures the docs, names shared nodes
(let-form) and writes them, applying those rules in its one parenthesizer.

Must not: write text, decide which nodes get a let name, recurse on graph
depth, or keep an operator table of its own. Every form comes from the
registry entry (``text``/``latex``/``python``, ``notation``, ``precedence``,
``assoc``, ``associative``, ``commutative``) through the style's template.

Layout: operands of a commutative op are put in a textbook order (sums by
degree, products with the number first), except sums in the order their
terms were written (``written``, as lowering records it) and, when it says
where each variable was first written (``lower.Written.first_use``), sums
built later from written terms (a derivative's b + a of b*x + a*x); a negated term of a sum prints with
the subtraction's template (a + (-b) reads a - b) and a subtracted sum term
by term (a - (b + c) reads a - b - c). A faithful style (Python source) keeps
graph order and every nesting instead, so it rounds exactly as the evaluator.

Index families: a family variable prints with its written axes (the style's
``leaf``), a reduction over an index with the index in its form (``sum[j](e)``,
``\\sum_{j}``: ``Style.index_reduction``), the size of an index as
``Style.size`` says, a Kronecker delta as ``Style.delta`` does (``(k == k2)``);
reductions over the rows keep the registry's template.

Slot rules: an operand needs parentheses when its precedence is below its
slot's, or equal where the op's associativity does not allow it (a - (b - c),
a/(b*c), (a^b)^c), or when it begins with a sign and something precedes it
(x^(-1), a*(-b)). A prefix sign binds products without parentheses, since
-(x*y) = (-x)*y: -x*y.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import build, graph, ops
from ..graph import Node
from ..ops import PREC_ADD, PREC_ATOM, PREC_MUL, PREC_POW, OpSpec

# The size and delta leaves and the row index (graphs without index families have none).
_SIZE = getattr(graph, "SIZE", None)
_DELTA = getattr(graph, "DELTA", None)
_ROWS = getattr(graph, "ROWS", None)

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


def _parse_template(spec: OpSpec, template: str, count: int) -> _Form:
    # "$*" stands for all ``count`` operands of a variadic call: $0, $1, ...
    template = template.replace("$*", ", ".join(f"${i}" for i in range(count)))
    pieces = [p for p in re.split(r"(\$\d+)", template) if p != ""]
    parts = tuple(int(p[1:]) if re.fullmatch(r"\$\d+", p) else p for p in pieces)
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


# ---------------------------------------------------------------- styles


class Style:
    """What differs between targets: the template of an op, leaves, parentheses."""

    open = "("
    close = ")"
    # Faithful: operands in graph order and parentheses wherever the graph
    # nests, so floating point gives the evaluator's numbers bit for bit
    # (a*(b/c) is not a*b/c once b*a overflows). Otherwise textbook layout.
    faithful = False
    # A let name of a node with indices besides the rows carries them, as a
    # definition by index does (t1[k] = sum[j](W[k,j]*x[j])); not in Python.
    indexed_lets = True
    # Nested reductions of one op over several indices print as one (sum[j,k]).
    merges_reductions = True

    def template(self, spec: OpSpec) -> str:
        """The op's form in this target, read from its registry entry ($0, $1: operands)."""
        raise NotImplementedError

    def leaf(self, node: Node) -> tuple[str, int]:
        """(text, precedence) of a variable or constant."""
        raise NotImplementedError

    def separator(self, sep: str) -> tuple[str, str]:
        """(plain, before a number): how ``sep`` joins two operands."""
        return sep, sep

    def reduction_argument(self, child: Node) -> tuple[str, str] | None:
        """Literals wrapped around a reduction's operand, or None."""
        return None

    def index_reduction(self, spec: OpSpec, axes: tuple) -> tuple[str, str]:
        """(before, after) the operand of a reduction over the indices ``axes`` (not the rows),
        outermost first: one index, or several where ``merges_reductions``."""
        raise NotImplementedError

    def size(self, axis) -> tuple[str, int]:
        """(text, precedence) of the size of ``axis`` (for the rows, the row count)."""
        raise NotImplementedError

    def delta(self, first, second) -> tuple[str, int]:
        """(text, precedence) of the Kronecker delta of two indices (canonical order): 1 where they agree."""
        raise NotImplementedError

    def contraction(self, node: Node) -> list | None:
        """A reduction over an index written another way: literals and operand nodes, or None."""
        return None


# ---------------------------------------------------------------- display order


class _Keys:
    """Per-node facts for a textbook order of commutative operands, bottom-up."""

    def __init__(self, order: list[Node]):
        self.first_var: dict[Node, tuple] = {}
        self.degree: dict[Node, float] = {}
        for node in order:
            self._visit(node)

    def _visit(self, node: Node) -> None:
        if node.is_var:
            self.first_var[node], self.degree[node] = (0, graph.natural_key(node.name)), 1.0
            return
        if node.is_leaf:  # a constant, or an index's size
            self.first_var[node], self.degree[node] = (1,), 0.0
            return
        self.first_var[node] = min(self.first_var[k] for k in node.inputs)
        spec = node.op
        degrees = [self.degree[k] for k in node.inputs]
        if self.first_var[node] == (1,):
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
        self.degree[node] = degree

    def term(self, node: Node) -> tuple:
        """Sums: terms with variables first, higher degree first, then by first variable."""
        constant = self.first_var[node] == (1,)
        return (constant, -self.degree[node], self.first_var[node], node.sort_key)

    def factor(self, node: Node) -> tuple:
        """Products: the number, named constants, variables and their powers, calls, the rest."""
        if node.is_const:
            rank = 0 if node.name is None else 1
        elif node.is_leaf and not node.is_var:  # an index's size: a named number
            rank = 1
        elif node.is_var:
            rank = 2
        else:
            spec = node.op
            if spec.notation == "infix" and spec.precedence == PREC_POW:
                rank = 2 if node.inputs[0].is_var else 3
            elif spec.notation == "call":
                rank = 4
            else:
                rank = 5
        op = "" if node.is_leaf else node.op.name
        return (rank, self.first_var[node], op, node.sort_key)


# A sum and the op that undoes it (ADD.inverse: x - y = x + (-y)). They let
# the printer write a + (-b) as a - b and a - (b + c) as a - b - c.
_PLUS = ops.ADD
_MINUS = ops.OPS[_PLUS.inverse]
_ADDITIVE = (_PLUS, _MINUS)

# ---------------------------------------------------------------- docs

# A doc item is a literal str, a reference ("ref", node, min_prec, strict,
# sign_guard), or a separator ("sep", plain, before_number, ref).


class Layout:
    """The docs of the nodes ``order`` in one style (and of nodes made while laying out)."""

    def __init__(self, style: Style, order: Sequence[Node], written: Mapping[Node, tuple] | None = None):
        self.style = style
        self.keys = _Keys(order)
        # Sums in the order their terms were written ({node: operands}): kept as
        # written instead of the textbook order (in Python source, two-term sums
        # only, where the order cannot change the rounding).
        self.written: dict[Node, tuple] = {}
        for node, operands in (written or {}).items():
            if Counter(operands) == Counter(node.inputs):  # the same operands, each as often
                self.written[node] = tuple(operands)
        first_use = getattr(written, "first_use", None)  # lower.Written: where names first appear
        if first_use:
            self._order_built_sums(order, first_use)
        self.forms: dict = {}  # op name (or name and operand count) -> form
        self.docs: dict[Node, list] = {}
        self.prec: dict[Node, int] = {}
        self.extra: list[Node] = []  # leaves made while printing; measured first
        for node in order:
            self._doc(node)

    def _order_built_sums(self, order: Sequence[Node], first_use: Mapping[Node, tuple]) -> None:
        """Sums not in the text (a derivative's b + a of b*x + a*x) in the order their
        terms' sources were written: each term ranks by the last-written variable
        among its own factors (factors every term shares, such as the chain rule's
        outer derivative, are left out). A sum keeps the textbook order when a
        term has no written variable or two terms rank the same."""
        last: dict[Node, tuple | None] = {}  # node -> its last-written variable's position
        for node in order:
            if node.is_leaf:
                last[node] = first_use.get(node)
            else:
                known = [p for p in (last[c] for c in node.inputs) if p is not None]
                last[node] = max(known) if known else None
            if node.op is _PLUS and node not in self.written and len(node.inputs) > 1:
                ranked = self._written_ranks(node, last)
                if ranked is not None:
                    self.written[node] = ranked

    def _written_ranks(self, node: Node, last: Mapping[Node, tuple | None]) -> tuple | None:
        """``node``'s operands in the written order of their sources, or None when it cannot tell."""
        factor_lists = []
        for operand in node.inputs:
            _, term = build.split_sign(operand)
            factor_lists.append(term.inputs if term.op is ops.MUL else (term,))
        shared = set.intersection(*(set(factors) for factors in factor_lists))
        ranks = []
        for factors in factor_lists:
            known = [last.get(f) for f in factors if f not in shared]
            known = [p for p in known if p is not None]
            if not known:
                return None
            ranks.append(max(known))
        if len(set(ranks)) < len(ranks):
            return None
        return tuple(operand for _, operand in sorted(zip(ranks, node.inputs), key=lambda pair: pair[0]))

    def form(self, spec: OpSpec, count: int = 2) -> _Form:
        key = (spec, count) if spec.arity == ops.VARIADIC else spec
        form = self.forms.get(key)
        if form is None:
            form = self.forms[key] = _parse_template(spec, self.style.template(spec), count)
        return form

    def _doc(self, node: Node) -> None:
        if node.is_leaf:
            if node.op is _SIZE:
                text, prec = self.style.size(node.axis)
            elif node.op is _DELTA:
                text, prec = self.style.delta(*node.indices)
            else:
                text, prec = self.style.leaf(node)
            self.docs[node], self.prec[node] = [text], prec
            return
        spec = node.op
        axis = getattr(node, "axis", None)
        if axis is not None and axis is not _ROWS:
            # sum[j](e), \sum_{j}: the index is part of the op's form, its operand enclosed.
            items = self.style.contraction(node)
            if items is None:
                # sum[j](sum[k](e)) reads sum[j,k](e) (the nesting that text builds)
                axes, body = [axis], node.inputs[0]
                while (
                    self.style.merges_reductions
                    and body.op is spec
                    and body.axis not in (None, _ROWS)
                    and axes[-1].key < body.axis.key
                ):
                    axes.append(body.axis)
                    body = body.inputs[0]
                before, after = self.style.index_reduction(spec, tuple(axes))
                items = [before, body, after]
            doc = [item if isinstance(item, str) else ("ref", item, 0, False, False) for item in items]
            self.docs[node], self.prec[node] = doc, PREC_ATOM
            return
        if spec.reduction and axis is _ROWS:
            items = self.style.contraction(node)  # a row reduction written another way (Python's einsum)
            if items is not None:
                self.docs[node] = [
                    item if isinstance(item, str) else ("ref", item, 0, False, False) for item in items
                ]
                self.prec[node] = PREC_ATOM
                return
        form = self.form(spec, len(node.inputs))
        self.prec[node] = spec.precedence
        if form.kind == "infix":
            self.docs[node] = self._infix_doc(node, spec, form)
        elif form.kind == "prefix":
            # A sign binds products without parentheses: -(x*y) prints -x*y.
            self.docs[node] = [form.parts[0], ("ref", node.inputs[0], PREC_MUL, False, True)]
        else:
            self.docs[node] = self._template_doc(node, spec, form)

    def _infix_doc(self, node: Node, spec: OpSpec, form: _Form) -> list:
        additive = _ADDITIVE if spec in _ADDITIVE else None
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
            if right.op is plus and not faithful:
                return [(1, left), *((-sign, term) for sign, term in self._sum_terms(right))]
            return [(1, left), (-1, right)]
        if faithful:  # a + (-b) is a - b exactly, in any rounding
            operands = node.inputs
            if len(operands) == 2 and node in self.written:  # a + b is b + a exactly
                operands = self.written[node]
            terms = [(1, operands[0])]
            for sign, term in self._sum_terms(node, ordered=False, operands=operands)[1:]:
                terms.append((sign, term))
            return terms
        terms = self._sum_terms(node)
        first_plus = next((i for i, (sign, _) in enumerate(terms) if sign == 1), None)
        if first_plus is None or (first_plus > 0 and node in self.written):
            # every term negative, or written so: the first keeps its sign (-a + b)
            terms[0] = (1, build.neg(terms[0][1]))
            self._ensure(terms[0][1])
        else:
            terms.insert(0, terms.pop(first_plus))  # 1 - x^2, not -x^2 + 1
        return terms

    def _sum_terms(self, node: Node, ordered: bool = True, operands=None) -> list[tuple[int, Node]]:
        """(sign, positive term) for each operand of a sum, in display order (as written, if known)."""
        written = self.written.get(node) if ordered else None
        if written is not None:
            operands, ordered = written, False
        terms = []
        for operand in node.inputs if operands is None else operands:
            sign, term = build.split_sign(operand)  # -2 and -u print subtracted
            if sign < 0:
                self._ensure(term)
            terms.append((sign, term))
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
        if node not in self.docs:
            self.keys._visit(node)
            self._doc(node)
            self.extra.append(node)
