"""The numpy kernels of the registry's ops: the one definition of each op's numbers.

In: input arrays (or floats) and, from the evaluator, an ``out=`` buffer.
Out: the op's values, written into ``out`` when one is given (the evaluator
reads the buffer, not the return value). ``ops.OPS`` entries name these
functions as their ``kernel``; ``source(kernel)`` is the text of a kernel
and of the definitions it reads, which generated Python modules embed
(``OpSpec.python_helper``), so generated code runs these very functions and
gives the evaluator's numbers bit for bit. An op without a function here
names one numpy ufunc for both. ``FAMILY_HELPERS`` are the array helpers of
generated modules of programs with index families (row sums per label by the
evaluator's block sums; contractions by einsum).
Must not: build nodes, know op names, import scipy before a kernel that
needs it runs (``exprgrad eval "x^2"`` never loads scipy), or read a name
other than ``np``, ``math`` and this module's own functions and constants
(generated modules define only those).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import inspect
import math
import sys
import types

import numpy as np

# ---------------------------------------------------------------- kernels
# Each takes ``out=`` so the evaluator can reuse buffers; scalars pass through.


def sum_inputs(*xs, out=None):
    result = np.add(xs[0], xs[1], out=out)
    for x in xs[2:]:
        result = np.add(result, x, out=result if out is not None else None)
    return result


def mul_inputs(*xs, out=None):
    result = np.multiply(xs[0], xs[1], out=out)
    for x in xs[2:]:
        result = np.multiply(result, x, out=result if out is not None else None)
    return result


def for_operands(kernel, count: int):
    # The function to call for ``count`` operands: an n-ary sum or product of
    # two is its ufunc itself (the same numbers, without the loop around it).
    if count == 2 and kernel is sum_inputs:
        return np.add
    if count == 2 and kernel is mul_inputs:
        return np.multiply
    return kernel


def power(x, y, out=None):
    # Common constant exponents by their fast kernels (float_power is ~80x
    # slower than square); otherwise float_power, which is exact for an
    # integer exponent of a negative base and nan for a fractional one.
    if np.ndim(y) == 0:
        k = float(y)
        if k == 2.0:
            return np.square(x, out=out)
        if k == 3.0:
            squared = np.square(x, out=out)
            return np.multiply(squared, x, out=out)
        if k == 0.5:
            return np.sqrt(x, out=out)
        if k == -1.0:
            return np.divide(1.0, x, out=out)
    return np.float_power(x, y, out=out)


def sigmoid(x, out=None):
    return sigmoid_of(x, exp_neg_abs(x), out=out)


def softplus(x, out=None):
    return softplus_of(x, exp_neg_abs(x), out=out)


def exp_neg_abs(x, out=None):
    # exp(-|x|), which never overflows: the part sigmoid(x) and softplus(x)
    # share, computed once when a pass needs both (a logistic cost and its gradient).
    return np.exp(np.negative(np.abs(x, out=out), out=out), out=out)


def sigmoid_of(x, z, out=None):
    # sigmoid(x) from z = exp(-|x|): 1/(1+z) for x >= 0, z/(1+z) below (the
    # denominator computed in out, which is neither x nor z).
    denominator = np.add(1.0, z, out=out)
    return np.divide(np.where(np.asarray(x) >= 0, 1.0, z), denominator, out=out)


def softplus_of(x, z, out=None):
    # softplus(x) = log(1 + exp(x)) from z = exp(-|x|): max(x, 0) + log1p(z),
    # without overflow for large x or loss for very negative x (within 3 ulp
    # of numpy's logaddexp(0, x), at a quarter of its time).
    log = np.log1p(z, out=out)
    return np.add(np.maximum(x, 0.0), log, out=out)


def relu(x, out=None):
    return np.maximum(x, 0.0, out=out)


def step(x, out=None):
    return np.heaviside(x, 0.0, out=out)


def logsumexp(*xs, out=None):
    # log(exp(x0) + exp(x1) + ...) without overflow: logaddexp, pairwise in order.
    result = np.logaddexp(xs[0], xs[1], out=out)
    for x in xs[2:]:
        result = np.logaddexp(result, x, out=result if out is not None else None)
    return result


def _into(out, value):
    """``value`` written into ``out`` when the evaluator gave a buffer."""
    if out is None:
        return value
    out[...] = value
    return out


def comparison(numpy_name: str):
    """The kernel of an infix comparison: numpy's ufunc of that name, as 1.0 or 0.0.

    The registry entry names the ufunc once; its Python template calls the same one.
    """
    ufunc = getattr(np, numpy_name)

    def compare(x, y, out=None):
        # 1.0 or 0.0, never a bool array: numpy adds bools as logical or.
        result = ufunc(x, y, out=out)
        return result if out is not None else np.asarray(result, dtype=np.float64)[()]

    compare.__name__ = numpy_name
    return compare


def where(c, a, b, out=None):
    # c nonzero -> a, c zero -> b; an undefined condition (nan) gives nan.
    chosen = np.where(np.asarray(c) == 0, b, np.where(np.isnan(c), np.nan, a))
    return _into(out, chosen)


def _special():
    """scipy.special, imported the first time a kernel needs it (never at start-up)."""
    import scipy.special

    return scipy.special


def erf(x, out=None):
    return _special().erf(x, out=out)


def erfc(x, out=None):
    return _special().erfc(x, out=out)


def normcdf(x, out=None):
    return _special().ndtr(x, out=out)


def lognormcdf(x, out=None):
    # log of the normal CDF, accurate far into the lower tail (log_ndtr(-40) = -804.6).
    return _special().log_ndtr(x, out=out)


def invmills(x, out=None):
    # normal density/CDF, phi(x)/Phi(x) = sqrt(2/pi)/erfcx(-x/sqrt(2)): no 0/0 or
    # overflow anywhere; about -x far in the lower tail, to 0 in the upper.
    with np.errstate(over="ignore", divide="ignore"):
        scaled = _special().erfcx(np.multiply(x, -_SQRT_HALF))
        return np.divide(_SQRT_TWO_OVER_PI, scaled, out=out)


def dinvmills(x, out=None):
    # d invmills/dx = -r*(x + r), r = invmills(x). Below x = -30 the sum x + r
    # cancels, so there r*(x + r) is written (r/t)^2 * t^2*(1 - t*R(t)) with
    # t = -x and the Mills ratio R = 1/r (no overflow of r^2), the bracket by its
    # asymptotic series sum (-1)^(k+1) (2k-1)!!/t^(2k-2) (ten terms: below 1e-16
    # relative at t = 30).
    x = np.asarray(x, dtype=np.float64)
    r = invmills(x)
    with np.errstate(all="ignore"):
        direct = -r * (x + r)
        t = -x
        u = 1.0 / (t * t)
        bracket, term = np.zeros_like(u), np.ones_like(u)
        for k in range(1, 11):  # t^2*(1 - t*R) = 1 - 3/t^2 + 15/t^4 - ...
            term = term * ((2 * k - 1) * u) if k > 1 else term
            bracket = bracket + (term if k % 2 else -term)
        tail = -np.square(r / t) * bracket
    return _into(out, np.where(x < -30.0, tail, direct)[()])


_SQRT_HALF = 0.7071067811865476
_SQRT_TWO_OVER_PI = 0.7978845608028654


def lgamma(x, out=None):
    return _special().gammaln(x, out=out)


def digamma(x, out=None):
    return _special().psi(x, out=out)


def polygamma(n, x, out=None):
    # The order is rounded to a whole number; a negative order has no value.
    special = _special()
    order = np.rint(n)
    value = np.where(order >= 0, special.polygamma(np.maximum(order, 0.0), x), np.nan)
    return _into(out, value)


def reduce_sum(x, n=1):
    # The sum over rows: numpy's pairwise sum of each BLOCK_ROWS-row block, the
    # block sums added exactly, so a sum over a chunk of blocks at a time (the
    # evaluator) gives the same bits; a scalar stands for n equal rows.
    if np.ndim(x) == 0:
        return np.float64(x) * n if n else np.float64(0.0)
    return total_of_blocks(block_sums(x), len(x), False)


def reduce_mean(x, n=1):
    # The mean over rows: their reduce_sum over the row count; a scalar is its own mean.
    if np.ndim(x) == 0:
        return np.float64(x) if n else np.float64(np.nan)
    return total_of_blocks(block_sums(x), len(x), True)


def total_of_blocks(sums, n, mean):
    # The exact sum of the block sums of n rows, or over n for a mean (no rows: nan).
    total = exact_sum(sums)
    if not mean:
        return np.float64(total)
    return np.float64(total / n if n else np.nan)


def sum_over(x, axis):
    # The sum over one index: the axis of that index in x's canonical axes.
    return np.sum(x, axis=axis)


def mean_over(x, axis):
    # The mean over one index.
    return np.mean(x, axis=axis)


def logsumexp_over(x, axis):
    # log(sum(exp(x))) over one index without overflow: the largest value is
    # factored out (0 where it is not finite, so all -inf gives -inf, inf inf).
    x = np.asarray(x, dtype=np.float64)
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.sum(np.exp(x - top), axis=axis)
    with np.errstate(divide="ignore"):  # all -inf: log(0) is -inf
        return np.log(total) + np.squeeze(top, axis=axis)


def sum_along(x, axis):
    # The sum over one axis. numpy's own reduction over an axis that is neither
    # last nor contiguous is slow (a strided loop), so there the sum is a product
    # with a vector of ones (BLAS, several times faster); the other axes keep
    # their order.
    last = x.ndim - 1
    if axis == last or x.shape[last] == 1 or x.strides[last] != x.itemsize:
        return np.sum(x, axis=axis)
    return np.matmul(np.ones(x.shape[axis]), np.moveaxis(x, axis, -2))


def row_block_sums(x):
    # The sums of each BLOCK_ROWS-row block of x (rows first, any other axes):
    # an array of one sum per block and label.
    m = len(x)
    whole = m - m % BLOCK_ROWS
    parts = []
    if whole:
        parts.append(sum_along(x[:whole].reshape(-1, BLOCK_ROWS, *x.shape[1:]), 1))
    if whole < m:
        parts.append(sum_along(x[whole:m].reshape(1, m - whole, *x.shape[1:]), 1))
    return np.concatenate(parts) if parts else np.zeros((0, *x.shape[1:]))


def total_of_label_blocks(sums, n, mean):
    # Per label, the exact sum of its block sums (sums: blocks first), or over n for a mean.
    if len(sums) == 1:  # one block: its sums are the totals (+ 0.0: fsum's 0.0 for -0.0)
        totals = np.asarray(sums[0], dtype=np.float64) + 0.0
        return totals if not mean else (totals / n if n else np.full_like(totals, np.nan))
    labels = math.prod(np.shape(sums)[1:])
    flat = np.ascontiguousarray(np.reshape(sums, (len(sums), labels)).T)
    rows = flat.tolist()
    totals = None
    if np.isfinite(flat).all():  # one fsum call per label: a 50 x 16 family's gradient has 800
        with contextlib.suppress(OverflowError):  # a total past the float range: exact_sum's rules
            totals = np.fromiter(map(math.fsum, rows), dtype=np.float64, count=labels)
    if totals is None:
        totals = np.array([exact_sum(row) for row in rows], dtype=np.float64)
    totals = totals.reshape(np.shape(sums)[1:])
    if not mean:
        return totals
    return totals / n if n else np.full_like(totals, np.nan)


# Reductions sum fixed blocks of rows (numbering from row 0) and add the block
# sums exactly; the evaluator's chunks are whole blocks, so every chunk size
# gives the same bits.
BLOCK_ROWS = 1024


def block_sums(x):
    # Pairwise sums of each BLOCK_ROWS-row block of the 1-d array x.
    with np.errstate(over="ignore", invalid="ignore"):
        return raw_block_sums(x)


def raw_block_sums(x):
    # block_sums where the caller has silenced numpy's warnings (the evaluator, once a run).
    m = len(x)
    whole = m - m % BLOCK_ROWS
    sums = np.sum(x[:whole].reshape(-1, BLOCK_ROWS), axis=1).tolist() if whole else []
    if whole < m:
        sums.append(float(np.sum(x[whole:m])))
    if all(map(math.isfinite, sums)):
        return sums
    # Slow path: a block of finite values whose pairwise sum overflowed on the
    # way (1e308, -1e308, 1e308, ...) gives its values themselves, which
    # exact_sum adds exactly; a block holding nan or inf keeps its sum.
    kept = []
    for i, total in enumerate(sums):
        block = x[i * BLOCK_ROWS : min((i + 1) * BLOCK_ROWS, m)]
        if math.isfinite(total) or not np.all(np.isfinite(block)):
            kept.append(total)
        else:
            kept.extend(block.tolist())
    return kept


def block_dots(a, b):
    # The sums of a*b over each BLOCK_ROWS-row block of the 1-d arrays a and b
    # without forming a*b: one BLAS dot product per block (a row of row_dots),
    # np.dot for the last, shorter block. A block whose dot is not finite gives
    # the block sums of its products instead (block_sums' rules for overflow,
    # inf and nan), so only a block's own rows choose its arithmetic.
    with np.errstate(over="ignore", invalid="ignore"):
        return raw_block_dots(a, b)


def raw_block_dots(a, b):
    # block_dots where the caller has silenced numpy's warnings (the evaluator, once a run).
    m = len(a)
    whole = m - m % BLOCK_ROWS
    sums = row_dots(a[:whole].reshape(-1, BLOCK_ROWS), b[:whole].reshape(-1, BLOCK_ROWS)) if whole else []
    if whole < m:
        sums.append(float(np.dot(a[whole:m], b[whole:m])))
    if all(map(math.isfinite, sums)):
        return sums
    kept = []
    for i, total in enumerate(sums):
        if math.isfinite(total):
            kept.append(total)
        else:
            rows = slice(i * BLOCK_ROWS, min((i + 1) * BLOCK_ROWS, m))
            kept.extend(raw_block_sums(np.multiply(a[rows], b[rows])))
    return kept


def row_dots(a, b):
    # The dot product of each row of the 2-d arrays a and b, as a list (vecdot:
    # one BLAS ddot a row; numpy before 2.0 has only einsum).
    if hasattr(np, "vecdot"):
        return np.vecdot(a, b).tolist()
    return np.einsum("ij,ij->i", a, b).tolist()


def reduce_dot(a, b, n=1, mean=False):
    # The sum (mean) over rows of a*b, as the evaluator reduces a product of
    # two per-row values: block_dots, the block sums added exactly; a scalar
    # factor gives the reduction of the product itself.
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        product = np.multiply(a, b)
        return reduce_mean(product, n) if mean else reduce_sum(product, n)
    return total_of_blocks(block_dots(a, b), len(a), mean)


def exact_sum(values):
    """The correctly rounded sum of ``values``, as IEEE arithmetic would give it when it is not finite.

    A total past the float range is inf (or -inf), as numpy gives; inf - inf
    and any nan are nan. Never raises (``math.fsum`` raises OverflowError
    and ValueError for those).
    """
    try:
        return math.fsum(values)
    except OverflowError:
        pass  # a partial total of finite values passed the range: add them scaled down
    except ValueError:  # inf and -inf among the values
        return math.nan
    try:
        scaled = math.fsum(v * _SCALE_DOWN for v in values)
    except ValueError:
        return math.nan
    if not math.isfinite(scaled):  # nan, or an inf among the values
        return scaled
    return scaled / _SCALE_DOWN if abs(scaled) <= _MAX_SCALED else math.copysign(math.inf, scaled)


# Block sums are scaled by this power of two when their exact total passes the
# float range on the way (1e308 + 1e308 - 1e308); scaling by 2**k is exact.
_SCALE_DOWN = 2.0**-64
_MAX_SCALED = 1.7976931348623157e308 * _SCALE_DOWN


# ---------------------------------------------------------------- index families in generated code
# Generated modules of programs with index families hold every value as an
# array with one axis per index of the program (rows first, then canonical
# order; length 1 where a value lacks an index). These are their helpers,
# embedded by ``source`` like the kernels above; the row reductions are the
# evaluator's (block_sums, row_block_sums, exact sums per label).


def place(value, places, ndim):
    # An array over its own axes (in the order given by places) as an ndim array.
    value = np.asarray(value, dtype=np.float64)
    if value.ndim != len(places):
        raise ValueError(f"expected an array of {len(places)} axes, got shape {value.shape}")
    order = sorted(range(len(places)), key=lambda a: places[a])
    value = np.transpose(value, order)
    shape = [1] * ndim
    for a, p in enumerate(sorted(places)):
        shape[p] = value.shape[a]
    return value.reshape(shape)


def columns(value):
    # A data family: a rows x labels array, or a sequence of 1-d columns.
    if isinstance(value, (list, tuple)):
        return np.column_stack([np.asarray(c, dtype=np.float64) for c in value])
    return np.asarray(value, dtype=np.float64)


def row_count(data):
    # The number of rows: the length of any column (of a data family's first column).
    first = next(iter(data.values()))
    if isinstance(first, (list, tuple)) and first and np.ndim(first[0]) == 1:
        return len(first[0])
    return len(first)


def own(x, places):
    # x over its own axes only (the axes at places, in that order).
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0:
        return x.reshape([1] * len(places))[()] if not places else np.broadcast_to(x, [1] * len(places))
    return x.reshape([x.shape[p] for p in places])[()]


def rows_sum(x, n, places, mean=False):
    # The sum (mean) over the rows (axis 0) of x, whose own axes are at places,
    # as the evaluator sums them: each BLOCK_ROWS-row block summed per label,
    # the block sums added exactly; without rows, x stands for n equal rows.
    if 0 not in places:
        if np.ndim(x) == 0:
            return reduce_mean(x, n) if mean else reduce_sum(x, n)
        x = np.asarray(x, dtype=np.float64)
        return (x if n else x * np.nan) if mean else x * n
    shape = (1, *np.shape(x)[1:])
    x = np.ascontiguousarray(own(x, places))
    if x.ndim == 1:  # rows only
        return np.reshape(total_of_blocks(block_sums(x), n, mean), shape)
    return np.reshape(total_of_label_blocks(row_block_sums(x), n, mean), shape)


def over_index(kernel, x, axis):
    # A reduction over one index (sum_over, mean_over, logsumexp_over), the axis kept with length 1.
    return np.expand_dims(kernel(x, axis), axis)


def rows_contract(ndim, mean, n, *pairs):
    # The sum (mean) over the rows (axis 0) of the product of the factors: one
    # einsum per BLOCK_ROWS rows, each label's block sums added exactly.
    factors = list(zip(pairs[::2], pairs[1::2]))
    kept = sorted({p for _, places in factors for p in places} - {0})
    shape = [1] * ndim
    operands = []
    for factor, places in factors:
        array = own(factor, places)
        operands.append((array, list(places)))
        for a, p in enumerate(places):
            if p:
                shape[p] = array.shape[a]
    if not any(0 in places for _, places in operands):  # the same in every row
        total = np.einsum(*[x for pair in operands for x in pair], kept, optimize=True)
        total = total if mean else (total * n if n else np.zeros_like(total))
        return np.reshape(total, shape)
    blocks = []
    for start in range(0, n, BLOCK_ROWS):
        block = []
        for array, places in operands:
            block.extend([array[start : start + BLOCK_ROWS] if 0 in places else array, places])
        blocks.append(np.einsum(*block, kept, optimize=True))
    if not blocks:
        return np.full(shape, np.nan if mean else 0.0)
    totals = total_of_label_blocks(np.stack(blocks), n, mean)
    return np.reshape(totals, shape)


def contract(ndim, axis, mean, *pairs):
    # The sum (mean) over axis of the product of the factors, one einsum:
    # pairs are factor, the axes it has, factor, ...; the result keeps every axis.
    operands = []
    kept = set()
    length = 1
    for factor, places in zip(pairs[::2], pairs[1::2]):
        operands.extend([own(factor, places), list(places)])
        kept.update(places)
        if axis in places:
            length = np.shape(factor)[axis]
    out = sorted(kept - {axis})
    total = np.einsum(*operands, out, optimize=True)
    if mean:
        total = total / length
    shape = [1] * ndim
    for a, p in enumerate(out):
        shape[p] = np.shape(total)[a]
    return np.reshape(total, shape)


# The helpers a generated module of a program with index families embeds.
FAMILY_HELPERS = (place, columns, row_count, own, rows_sum, over_index, rows_contract, contract)


# ---------------------------------------------------------------- source for generated code


@functools.cache
def source(kernel) -> str:
    """The source of ``kernel`` and of every definition of this module it reads.

    Imports first (``math``; generated modules import numpy as ``np``
    themselves), then constants as written here, then the functions it
    calls, the kernel last: the text a generated module embeds to run this
    very kernel.
    """
    definitions = _definitions()
    module = sys.modules[__name__]
    imports, constants, functions = [], [], []
    seen = {"np", kernel.__name__}

    def visit(name: str) -> None:
        text = definitions[name]
        tree = ast.parse(text)
        local = {a.arg for node in ast.walk(tree) if isinstance(node, ast.arguments) for a in node.args}
        local |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        if isinstance(tree.body[0], ast.Assign):
            local = set()  # a constant's own name is not one it reads
        for node in ast.walk(tree):
            used = node.id if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) else None
            if used is None or used in seen or used in local or not hasattr(module, used):
                continue
            seen.add(used)
            value = getattr(module, used)
            if isinstance(value, types.ModuleType):
                imports.append(f"import {value.__name__}")
            else:
                visit(used)
        (constants if isinstance(tree.body[0], ast.Assign) else functions).append(text)

    visit(kernel.__name__)
    head = "\n".join(imports + constants)
    return "\n\n\n".join(([head] if head else []) + functions) + "\n"


@functools.cache
def _definitions() -> dict[str, str]:
    """Each top-level function and constant of this module by name: its source text."""
    text = inspect.getsource(sys.modules[__name__])
    found = {}
    for statement in ast.parse(text).body:
        if isinstance(statement, ast.FunctionDef):
            found[statement.name] = ast.get_source_segment(text, statement)
        elif isinstance(statement, ast.Assign):
            for target in statement.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = ast.get_source_segment(text, statement)
    return found
