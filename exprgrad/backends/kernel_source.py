"""The source of the compiled backend's kernels: a schedule's passes as one fused loop each.

In: a numpy ``Schedule`` of a graph without indices besides the rows.
Out: ``KernelPlan``: the text of a Python module holding one numba function
per pass (``pass_1``, ``pass_2``, ...) and, per pass, what its arguments
are (the columns and scalar nodes it reads, the reductions it accumulates,
the per-row outputs it writes). A pass function loops over the rows of a
range of ``BLOCK_ROWS``-row blocks, computes every per-row node of the pass
as a local number, and sums each reduction's values of a block with numpy's
own pairwise summation (the same tree of additions as ``np.sum`` over a
block: unrolled, with running sums, for whole blocks), so the block sums are
the numpy backend's whenever the per-row values are; the caller adds them
exactly.
``unsupported(schedule)`` says what the compiled backend cannot run yet.
Each op's number is computed as ``kernels`` computes it (the same formula:
sigmoid's and softplus's exp(-|x|), logsumexp as numpy's logaddexp, the fast exponents of
``power``), from ``math`` functions where numpy calls the C library.
Must not: import numba (the generated module does), run anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import graph, ops
from ..graph import Node
from ..kernels import BLOCK_ROWS

# numpy's pairwise sum adds runs of at most 128 numbers with eight running sums;
# a block is eight such leaves (the unrolled tree of whole blocks relies on it).
_LEAF_ROWS = 128
assert BLOCK_ROWS == 8 * _LEAF_ROWS

# ---------------------------------------------------------------- the ops as scalar expressions
# Each entry: the expression of one row's value from its operands' texts, the
# C library's function where numpy calls it (1 ulp apart at most where numpy
# has its own). Not here yet: the special functions whose scipy values the C
# library's differ from by more than 1e-14 relative (erfc and normcdf far in
# the tail, lgamma near its zeros) or lacks (digamma, erfcx).


def _call(name):
    return lambda *a: f"{name}({', '.join(a)})"


def _infix(symbol):
    return lambda *a: "(" + f" {symbol} ".join(a) + ")"


def _compare(symbol):
    return lambda a, b: f"(1.0 if {a} {symbol} {b} else 0.0)"


def _logsumexp(*a):
    text = f"_logaddexp({a[0]}, {a[1]})"
    for x in a[2:]:
        text = f"_logaddexp({text}, {x})"
    return text


EXPRESSIONS = {
    ops.ADD: _infix("+"),
    ops.SUB: _infix("-"),
    ops.MUL: _infix("*"),
    ops.DIV: _infix("/"),
    ops.NEG: lambda a: f"(-{a})",
    ops.EXP: _call("math.exp"),
    ops.LOG: _call("math.log"),
    ops.SQRT: _call("math.sqrt"),
    ops.SIN: _call("math.sin"),
    ops.COS: _call("math.cos"),
    ops.TAN: _call("math.tan"),
    ops.ASIN: _call("math.asin"),
    ops.ACOS: _call("math.acos"),
    ops.ATAN: _call("math.atan"),
    ops.ATAN2: _call("math.atan2"),
    ops.SINH: _call("math.sinh"),
    ops.COSH: _call("math.cosh"),
    ops.TANH: _call("math.tanh"),
    ops.ASINH: _call("math.asinh"),
    ops.ACOSH: _call("math.acosh"),
    ops.ATANH: _call("math.atanh"),
    ops.LOG1P: _call("math.log1p"),
    ops.EXPM1: _call("math.expm1"),
    ops.LOG2: _call("math.log2"),
    ops.LOG10: _call("math.log10"),
    ops.ERF: _call("math.erf"),
    ops.SIGMOID: _call("_sigmoid"),
    ops.SOFTPLUS: _call("_softplus"),
    ops.LOGSUMEXP: _logsumexp,
    ops.RELU: lambda a: f"_maximum({a}, 0.0)",
    ops.STEP: _call("_step"),
    ops.ABS: _call("math.fabs"),
    ops.SIGN: _call("_sign"),
    ops.MIN: _call("_minimum"),
    ops.MAX: _call("_maximum"),
    ops.WHERE: _call("_where"),
    ops.GT: _compare(">"),
    ops.GE: _compare(">="),
    ops.LT: _compare("<"),
    ops.LE: _compare("<="),
    ops.EQ: _compare("=="),
    ops.NE: _compare("!="),
}

# The fast exponents of kernels.power for a constant exponent.
_FAST_POWERS = {
    2.0: "({0} * {0})",
    3.0: "(({0} * {0}) * {0})",
    0.5: "math.sqrt({0})",
    -1.0: "(1.0 / {0})",
}

# The helpers every generated module starts with: numpy's pairwise sum and
# the kernels' formulas for one number.
PRELUDE = '''\
"""exprgrad compiled kernels (generated: edits are overwritten)."""

import math

import numba
import numpy as np
from numba.core import types
from numba.extending import intrinsic

_JIT = dict(cache=True, nogil=True, error_model="numpy", fastmath=False)
# Compiled with LLVM's SLP vectorizer on (exprgrad.backends.compiled._slp_vectorizing).
# The vectorized functions are inlined where they are called: a call left in
# the loop over the rows keeps the compiler from running it on vectors.
_INLINE = dict(_JIT, inline="always")
_LOGE2 = 0.6931471805599453
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts: k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0  # 1.5 * 2**52: adding and subtracting it rounds to a whole number


@intrinsic
def _from_bits(typingctx, bits):
    # The float64 whose bits are the int64 ``bits`` (2**k from (k + 1023) << 52).
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


# exp, expm1, tanh, softplus and sigmoid written in arithmetic the compiler runs on vectors (the C
# library's are one call per row, several times slower than numpy's own):
# x = k ln 2 + r with |r| <= ln 2 / 2, a series for exp(r), and 2**k from its
# bits. exp within 1 ulp of numpy's, tanh within 2**-51 relative (tests/test_compiled.py).
# Loops of one node run them on vectors (``VECTORIZED``: the family kernels, and the
# scalar kernels' leaves); in a loop of many nodes they stay scalar code, slower
# than the C library's.
@numba.njit(**_INLINE)
def _exp(x):
    c = min(max(x, -746.0), 710.0)
    kf = (c * _LOG2E + _ROUND) - _ROUND
    r = (c - kf * _LN2_HI) - kf * _LN2_LO
    p = EXP_SERIES
    p = 1.0 + ((p * r) * r + r)  # the terms past 1 + r summed first: within 1 ulp
    k = np.int64(kf)
    half = k >> 1  # 2**k as two factors: each in the normal range from 2**-1075 to 2**1024
    y = (p * _from_bits((half + 1023) << 52)) * _from_bits((k - half + 1023) << 52)
    return y if x == x else x


@numba.njit(**_INLINE)
def _expm1_core(x):
    # expm1 for -40 <= x <= 40: 2**k * expm1(r) + (2**k - 1), expm1(r) by its series.
    kf = (x * _LOG2E + _ROUND) - _ROUND
    r = (x - kf * _LN2_HI) - kf * _LN2_LO
    p = EXPM1_SERIES
    s = _from_bits((np.int64(kf) + 1023) << 52)
    return s * ((p * r) * r + r) + (s - 1.0)


@numba.njit(**_INLINE)
def _tanh(x):
    # expm1(2|x|) / (expm1(2|x|) + 2), the sign of x; past |x| = 20 it rounds to 1.
    e = _expm1_core(2.0 * min(math.fabs(x), 20.0))
    return math.copysign(e / (e + 2.0), x)


@numba.njit(**_INLINE)
def _log1p_unit(e):
    # log1p(e) for 0 <= e <= 1, the exp(-|x|) of softplus: fdlibm's log1p, where
    # 1 + e = 2**k (1 + f) with k 0 or 1 needs no exponent bits. Within 1 ulp.
    u = 1.0 + e
    big = u > 1.4142135623730951
    k = 1.0 if big else 0.0
    f = u * 0.5 - 1.0 if big else e
    c = (e - (u - 1.0)) / u if big else 0.0  # the rounding of 1 + e
    s = f / (2.0 + f)
    z = s * s
    hfsq = 0.5 * f * f
    R = z * (6.666666666666735130e-01 + z * (3.999999999940941908e-01 + z * (2.857142874366239149e-01
        + z * (2.222219843214978396e-01 + z * (1.818357216161805012e-01 + z * (1.531383769920937332e-01
        + z * 1.479819860511658591e-01))))))
    return k * _LN2_HI - ((hfsq - (s * (hfsq + R) + (k * _LN2_LO + c))) - f)


@numba.njit(**_INLINE)
def _vector_softplus(x):
    # max(x, 0) + log1p(exp(-|x|)), as kernels.softplus_of computes it (_maximum written
    # inline: a call would keep the loop from vectors).
    return (x if (x >= 0.0 or x != x) else 0.0) + _log1p_unit(_exp(-math.fabs(x)))


@numba.njit(**_INLINE)
def _vector_sigmoid(x):
    z = _exp(-math.fabs(x))
    return (1.0 if x >= 0.0 else z) / (1.0 + z)


@numba.njit(**_JIT)
def _pairwise0(a, lo, n):
    # numpy's pairwise sum of a[lo:lo + n] for n <= 128: eight running sums.
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@numba.njit(**_INLINE)
def _leaf_sum(a):
    # _pairwise0(a, 0, 128) for a leaf's array, written inline with no offset: the
    # same eight running sums in the same order, about 4x faster (a called function
    # indexing ``a[lo + i]`` keeps its loop scalar).
    r0, r1, r2, r3, r4, r5, r6, r7 = a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]
    for i in range(8, 128, 8):
        r0 += a[i]
        r1 += a[i + 1]
        r2 += a[i + 2]
        r3 += a[i + 3]
        r4 += a[i + 4]
        r5 += a[i + 5]
        r6 += a[i + 6]
        r7 += a[i + 7]
    return ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))


# numpy halves a longer run (the first half a multiple of 8) until it is at most
# 128 long: four levels for the 1024 rows of a block (no recursion: numba
# cannot cache a recursive function).
@numba.njit(**_JIT)
def _pairwise1(a, lo, n):
    if n <= 128:
        return _pairwise0(a, lo, n)
    half = n // 2
    half -= half % 8
    return _pairwise0(a, lo, half) + _pairwise0(a, lo + half, n - half)


@numba.njit(**_JIT)
def _pairwise2(a, lo, n):
    if n <= 128:
        return _pairwise0(a, lo, n)
    half = n // 2
    half -= half % 8
    return _pairwise1(a, lo, half) + _pairwise1(a, lo + half, n - half)


@numba.njit(**_JIT)
def _pairwise3(a, lo, n):
    if n <= 128:
        return _pairwise0(a, lo, n)
    half = n // 2
    half -= half % 8
    return _pairwise2(a, lo, half) + _pairwise2(a, lo + half, n - half)


@numba.njit(**_JIT)
def _pairwise4(a, lo, n):
    if n <= 128:
        return _pairwise0(a, lo, n)
    half = n // 2
    half -= half % 8
    return _pairwise3(a, lo, half) + _pairwise3(a, lo + half, n - half)


# math.fsum of each row of ``sums`` (labels by blocks) into ``totals``: CPython's
# algorithm (Shewchuk's partials, then its half-even correction), so the same
# bits, without a Python call per label. 1 when a row is not finite or
# overflows on the way: fsum's own rules apply then, outside.
@numba.njit(**_JIT)
def _exact_totals(sums, totals):
    partials = np.empty(64)  # nonoverlapping partials of finite doubles: at most about 40
    for row in range(sums.shape[0]):
        n = 0
        for b in range(sums.shape[1]):
            x = sums[row, b]
            if not math.isfinite(x):
                return 1
            i = 0
            for j in range(n):
                y = partials[j]
                if math.fabs(x) < math.fabs(y):
                    x, y = y, x
                hi = x + y
                lo = y - (hi - x)
                if lo != 0.0:
                    partials[i] = lo
                    i += 1
                x = hi
            n = i
            if x != 0.0:
                if not math.isfinite(x) or n == 64:
                    return 1
                partials[n] = x
                n += 1
        hi = 0.0
        if n > 0:
            n -= 1
            hi = partials[n]
            lo = 0.0
            while n > 0:  # from the top, until the sum is inexact
                x = hi
                n -= 1
                y = partials[n]
                hi = x + y
                lo = y - (hi - x)
                if lo != 0.0:
                    break
            if n > 0 and ((lo < 0.0 and partials[n - 1] < 0.0) or (lo > 0.0 and partials[n - 1] > 0.0)):
                y = lo * 2.0  # half-even rounding across the partials left
                x = hi + y
                if y == x - hi:
                    hi = x
        totals[row] = hi
    return 0


# The tree that joins eight running sums, or eight 128-row leaves of a block.
@numba.njit(**_JIT)
def _join8(r):
    return ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))


@numba.njit(**_JIT)
def _logaddexp(x, y):
    if x == y:
        return x + _LOGE2
    d = x - y
    if d > 0:
        return x + math.log1p(math.exp(-d))
    if d <= 0:
        return y + math.log1p(math.exp(d))
    return d


@numba.njit(**_JIT)
def _softplus(x):
    return _maximum(x, 0.0) + math.log1p(math.exp(-math.fabs(x)))


@numba.njit(**_JIT)
def _sigmoid(x):
    z = math.exp(-math.fabs(x))
    return (1.0 if x >= 0 else z) / (1.0 + z)


@numba.njit(**_JIT)
def _step(x):
    if x != x:
        return x
    return 1.0 if x > 0 else 0.0


@numba.njit(**_JIT)
def _sign(x):
    if x > 0:
        return 1.0
    if x < 0:
        return -1.0
    return x


@numba.njit(**_JIT)
def _minimum(a, b):
    return a if (a <= b or a != a) else b


@numba.njit(**_JIT)
def _maximum(a, b):
    return a if (a >= b or a != a) else b


@numba.njit(**_JIT)
def _where(c, a, b):
    if c == 0:
        return b
    if c != c:
        return math.nan
    return a


@numba.njit(**_JIT)
def _power(x, y):
    if y == 2.0:
        return x * x
    if y == 3.0:
        return (x * x) * x
    if y == 0.5:
        return math.sqrt(x)
    if y == -1.0:
        return 1.0 / x
    return x**y
'''


def _series(first: int, last: int) -> str:
    # sum of r**(n - first) / n! for n = first..last by Estrin's scheme, as generated lines:
    # neighbouring terms paired with r, the pairs with r**2, and so on. Its chains of
    # dependent operations are a third as long as Horner's rule's: the vectorized
    # tanh loop runs about 1.6x faster.
    terms = [repr(1.0 / math.factorial(n)) for n in range(first, last + 1)]
    lines, power = [], "r"
    while len(terms) > 1:
        pairs = [f"({a} + {b} * {power})" for a, b in zip(terms[::2], terms[1::2], strict=False)]
        terms = pairs + terms[len(pairs) * 2 :]
        if len(terms) > 1:
            square = f"r{2 ** len(lines) * 2}"
            lines.append(f"    {square} = {power} * {power}")
            power = square
    return "\n".join([*lines, f"    p = {terms[0]}"]).lstrip()


# (exp(r) - 1 - r) / r**2 to degree 13 and (expm1(r) - r) / r**2 to degree 14: the
# first term left out is below 2**-60 of the sum for |r| <= ln 2 / 2.
PRELUDE = PRELUDE.replace("p = EXP_SERIES", _series(2, 13)).replace("p = EXPM1_SERIES", _series(2, 14))

# The ops computed with the vectorized functions above: in the family kernels' loops, and in the
# scalar kernels' loops over a leaf (``_leaf_loops``).
VECTORIZED = {
    ops.EXP: _call("_exp"),
    ops.TANH: _call("_tanh"),
    ops.SOFTPLUS: _call("_vector_softplus"),
    ops.SIGMOID: _call("_vector_sigmoid"),
}
VECTOR_EXPRESSIONS = {**EXPRESSIONS, **VECTORIZED}


# The C library calls of each op's expression (the rest is arithmetic the
# compiler vectorizes): the compiled loop pays a scalar call per row for each,
# where numpy runs its own vectorized exp and log. ``speedup`` weighs them.
_CALLS = {
    **{spec: 1 for spec in (ops.EXP, ops.LOG, ops.SIN, ops.COS, ops.TAN, ops.ASIN, ops.ACOS, ops.ATAN)},
    **{spec: 1 for spec in (ops.ATAN2, ops.SINH, ops.COSH, ops.TANH, ops.ASINH, ops.ACOSH, ops.ATANH)},
    **{spec: 1 for spec in (ops.LOG1P, ops.EXPM1, ops.LOG2, ops.LOG10, ops.ERF, ops.SIGMOID)},
    ops.SOFTPLUS: 2,
    ops.LOGSUMEXP: 2,
}
# Costs per row, in units of one numpy kernel over one row (measured on 1M rows:
# an add or multiply fused into the loop costs a fifth of numpy's; a scalar
# exp ten to fifteen times numpy's vectorized one).
_FUSED_ARITHMETIC = 0.2
_SCALAR_CALL = 12.0
_VECTOR_CALL = 1.8  # exp in arithmetic in a leaf's loop: 1.9 ns a row, numpy's 1.0


@dataclass
class PassArguments:
    """What one pass function reads and writes, in its arguments' order."""

    columns: list[str]  # data columns c0, c1, ...
    scalars: list[Node]  # scalar nodes, the array s: s[0], s[1], ...
    reductions: list[Node]  # row reductions: rows of the block sums array
    outputs: list[int]  # output positions: rows of the per-row outputs array


@dataclass
class KernelPlan:
    """A generated module's text and each pass's arguments (pass_1 first)."""

    source: str
    passes: list[PassArguments] = field(default_factory=list)


def unsupported(schedule) -> str | None:
    """What the compiled backend cannot run in ``schedule`` yet (None: it runs all of it)."""
    if schedule.indexed:  # family_kernel_source's
        return "index families (w[j], x[i], sum[j](...)) in this kernel generator"
    for node in schedule.order:
        if node.per_row and node.inputs and node.op not in EXPRESSIONS and node.op is not ops.POW:
            return f"{node.op.text}()" if node.op.notation == "call" else f"'{node.op.text}'"
    return None


def speedup(schedule) -> float:
    """About how many times faster the compiled passes of ``schedule`` run than numpy's (a cost model)."""
    numpy = compiled = 0.0
    for numpy_pass in schedule.passes:
        reductions = [r for r, _ in numpy_pass.reductions]
        targets = [r.inputs[0] for r in reductions] + [schedule.outputs[k] for k, _ in numpy_pass.outputs]
        nodes = [node for node in graph.toposort(targets) if node.per_row and node.inputs]
        leaves = _vectorizes(nodes)
        for node in nodes:
            calls = _CALLS.get(node.op, 0)
            if node.op is ops.POW:
                exponent = node.inputs[1]
                calls = 0 if exponent.is_const and float(exponent.value) in _FAST_POWERS else 1
            numpy += 1.0 + calls
            if leaves and node.op in VECTORIZED:
                compiled += _VECTOR_CALL * calls
            else:
                compiled += _FUSED_ARITHMETIC + calls * _SCALAR_CALL
        numpy += 0.5 * len(reductions)
        compiled += 0.3 * len(reductions)
    return numpy / compiled if compiled else 1.0


def kernel_plan(schedule) -> KernelPlan:
    """The module of ``schedule``'s passes (``unsupported(schedule)`` must be None)."""
    parts = [PRELUDE]
    plan = KernelPlan(source="")
    for number, numpy_pass in enumerate(schedule.passes, start=1):
        reductions = [r for r, _ in numpy_pass.reductions]
        outputs = [(k, schedule.outputs[k]) for k, _ in numpy_pass.outputs]
        text, arguments = _pass_source(number, reductions, outputs)
        parts.append(text)
        plan.passes.append(arguments)
    plan.source = "\n\n".join(parts)
    return plan


def _pass_source(number: int, reductions: list[Node], outputs: list[tuple[int, Node]]):
    targets = [r.inputs[0] for r in reductions] + [n for _, n in outputs]
    nodes = [n for n in graph.toposort(targets) if n.per_row]
    columns = sorted({n.name for n in nodes if n.is_var})
    scalars = []
    for node in nodes:
        for i in node.inputs:
            if not i.per_row and not i.is_const and i not in scalars:
                scalars.append(i)
    names: dict[Node, str] = {}
    for node in nodes:
        if node.is_var:
            names[node] = f"x{columns.index(node.name)}"
    body = []
    for k, node in enumerate(n for n in nodes if n.inputs):
        args = [_operand(i, names, scalars) for i in node.inputs]
        names[node] = f"t{k}"
        body.append(f"t{k} = {_expression(node, args)}")
    columns_args = "".join(f"c{k}, " for k in range(len(columns)))

    def one_row(indent: str, column: str, reduction: str, output: str) -> list[str]:
        # One row's numbers: its columns read, every node, each reduction's value
        # added or stored and each output written (the targets as templates).
        rows = [f"{indent}x{k} = {column.format(k)}" for k in range(len(columns))]
        rows += [f"{indent}{line}" for line in body]
        rows += [
            f"{indent}{reduction.format(k)} {_operand(r.inputs[0], names, scalars)}"
            for k, r in enumerate(reductions)
        ]
        rows += [
            f"{indent}{output.format(k)} {_operand(node, names, scalars)}"
            for k, (_, node) in enumerate(outputs)
        ]
        return rows

    lines = [
        "@numba.njit(**_JIT)",
        f"def pass_{number}({columns_args}s, n, first, last, rows, sums):",
    ]
    lines += [f"    s{k} = s[{k}]" for k in range(len(scalars))]
    for k in range(len(reductions)):
        lines += [
            f"    acc{k} = np.empty({BLOCK_ROWS})",
            f"    lane{k} = np.empty(8)",
            f"    leaf{k} = np.empty(8)",
        ]
    leaves = _leaf_loops(nodes, reductions, outputs, scalars, columns) if _vectorizes(nodes) else None
    if leaves is not None:
        lines += [f"    v{k} = np.empty({_LEAF_ROWS})" for k in range(leaves[0])]
    lines += [
        "    for b in range(first, last):",
        f"        start = b * {BLOCK_ROWS}",
        f"        m = min({BLOCK_ROWS}, n - start)",
        f"        if m == {BLOCK_ROWS}:",
        f"            for q in range({BLOCK_ROWS // _LEAF_ROWS}):",
    ]
    if leaves is not None:
        lines += leaves[1]
    else:
        # A whole block: numpy's pairwise tree unrolled (eight 128-row leaves, each
        # the join of eight running sums over every eighth row), the running sums
        # kept as the rows are computed, so no row's value is stored. Each starts
        # at -0.0, which adds to any number exactly; the loop over the eight is one
        # the compiler turns into vector instructions.
        if reductions:
            lines.append("                for j in range(8):")
            lines += [f"                    lane{k}[j] = -0.0" for k in range(len(reductions))]
        lines += [
            f"                for g in range(start + q * {_LEAF_ROWS}, start + (q + 1) * {_LEAF_ROWS}, 8):",
            "                    for j in range(8):",
            "                        i = g + j",
        ]
        lines += one_row(" " * 24, "c{}[i]", "lane{}[j] +=", "rows[{}, i] =")
        lines += [f"                leaf{k}[q] = _join8(lane{k})" for k in range(len(reductions))]
    lines += [f"            sums[{k}, b] = _join8(leaf{k})" for k in range(len(reductions))]
    # The last, partial block: each reduction's values of the block kept in a
    # buffer and summed with numpy's halving rule, a plain 1-d loop from 0.
    lines.append("        else:")
    lines += [f"            col{k} = c{k}[start : start + m]" for k in range(len(columns))]
    lines += [f"            out{k} = rows[{k}, start : start + m]" for k in range(len(outputs))]
    lines.append("            for i in range(m):")
    lines += one_row(" " * 16, "col{}[i]", "acc{}[i] =", "out{}[i] =")
    for k in range(len(reductions)):
        lines.append(f"            sums[{k}, b] = _pairwise4(acc{k}, 0, m)")
    lines.append("    return 0")
    arguments = PassArguments(columns, scalars, reductions, [k for k, _ in outputs])
    return "\n".join(lines) + "\n", arguments


def _vectorizes(nodes) -> bool:
    """Whether a pass over ``nodes`` runs ``_leaf_loops``: it has a function ``VECTORIZED`` has."""
    return any(node.op in VECTORIZED for node in nodes)


def _leaf_loops(nodes, reductions, outputs, scalars, columns) -> tuple[int, list[str]]:
    """The lines of one 128-row leaf ``q`` of a whole block, each stored node one loop over the
    leaf, for a pass that ``_vectorizes`` (the others run one loop of every node).

    A loop of one node, exp or tanh written inline in arithmetic, is one the compiler runs on
    vectors; the one loop of every node calls the C library per row (the 100-parameter exp-sum
    gradient over 1,000,000 rows: 320 ms so, and rows of every reduction in one loop do not
    vectorize). A node read once, by another node, is written inline in its reader. Each leaf's
    sum is numpy's eight running sums over its 128 values and their tree, the same bits: of the
    stored array, or, for a summed node nothing else reads and with no such function in it (the
    gradient's products), of its values as they are computed, not stored.
    Returns the number of leaf arrays v0, v1, ... and the lines.
    """
    computed = [n for n in nodes if n.inputs]
    readers: dict[Node, int] = {}
    for node in computed:
        for i in node.inputs:
            readers[i] = readers.get(i, 0) + 1
    summed = [r.inputs[0] for r in reductions]
    written = {n for _, n in outputs}
    inline = {n for n in computed if readers.get(n) == 1 and n not in summed and n not in written}

    def cheap(node: Node) -> bool:
        return node.op not in VECTORIZED and all(cheap(i) for i in node.inputs if i in inline)

    running = {
        n
        for n in summed
        if n.inputs and summed.count(n) == 1 and n not in readers and n not in written and cheap(n)
    }
    stored = [n for n in computed if n not in inline and n not in running]

    def value(node: Node) -> str:
        if node.is_const or not node.per_row:
            return _operand(node, {}, scalars)
        if not node.inputs:
            return f"l{columns.index(node.name)}[i]"
        if node in inline or node in running:
            return _expression(node, [value(i) for i in node.inputs], VECTOR_EXPRESSIONS)
        return f"v{stored.index(node)}[i]"

    # The leaf's columns and outputs as views from 0: an index ``lo + i`` the compiler
    # cannot prove positive keeps numba's wraparound test in the loop, and the loop
    # off vectors (the 10-parameter exp-sum gradient: 24 ms so, 15.6 ms by views).
    indent = " " * 16
    lines = [f"{indent}lo = start + q * {_LEAF_ROWS}"]
    lines += [f"{indent}l{k} = c{k}[lo : lo + {_LEAF_ROWS}]" for k in range(len(columns))]
    lines += [f"{indent}o{k} = rows[{k}, lo : lo + {_LEAF_ROWS}]" for k in range(len(outputs))]
    for k, node in enumerate(stored):
        expression = _expression(node, [value(i) for i in node.inputs], VECTOR_EXPRESSIONS)
        lines += [f"{indent}for i in range({_LEAF_ROWS}):", f"{indent}    v{k}[i] = {expression}"]
    for k, node in enumerate(summed):
        if node in running:
            # Each running sum starts at -0.0, which adds to any number exactly.
            lines.append(f"{indent}r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = -0.0")
            lines.append(f"{indent}for g in range(0, {_LEAF_ROWS}, 8):")
            for j in range(8):
                lines += [f"{indent}    i = g + {j}", f"{indent}    r{j} += {value(node)}"]
            lines.append(f"{indent}leaf{k}[q] = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))")
        else:
            array = f"l{columns.index(node.name)}" if not node.inputs else f"v{stored.index(node)}"
            lines.append(f"{indent}leaf{k}[q] = _leaf_sum({array})")
    for k, (_, node) in enumerate(outputs):
        lines += [f"{indent}for i in range({_LEAF_ROWS}):", f"{indent}    o{k}[i] = {value(node)}"]
    return len(stored), lines


def _operand(node: Node, names: dict[Node, str], scalars: list[Node]) -> str:
    if node.is_const:
        return _literal(node.value)
    if not node.per_row:
        return f"s{scalars.index(node)}"
    return names[node]


def _literal(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        return "math.nan"
    if value in (float("inf"), float("-inf")):
        return "math.inf" if value > 0 else "(-math.inf)"
    return f"({value!r})"


def _expression(node: Node, args: list[str], table=None) -> str:
    if node.op is ops.POW:
        exponent = node.inputs[1]
        if exponent.per_row:  # float_power over the rows
            return f"({args[0]} ** {args[1]})"
        if exponent.is_const:
            fast = _FAST_POWERS.get(float(exponent.value))
            return fast.format(args[0]) if fast else f"({args[0]} ** {args[1]})"
        return f"_power({args[0]}, {args[1]})"
    return (table or EXPRESSIONS)[node.op](*args)
