"""The numpy kernels of the registry's ops, and the Python source generated code uses.

In: input arrays (or floats) and, from the evaluator, an ``out=`` buffer.
Out: the op's values, written into ``out`` when one is given (the evaluator
reads the buffer, not the return value). ``ops.OPS`` entries name these
functions as their ``evaluate``; the ``*_SOURCE`` strings are the
``python_helper`` functions generated modules define, computing the same
values with the same numpy and scipy calls.
Must not: build nodes, know op names, or import scipy before a kernel that
needs it runs (``exprgrad eval "x^2"`` never loads scipy).
"""

from __future__ import annotations

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
    # exp(-|x|) never overflows: 1/(1+z) for x >= 0, z/(1+z) below.
    z = np.exp(-np.abs(x))
    return np.divide(np.where(np.asarray(x) >= 0, 1.0, z), 1.0 + z, out=out)


def softplus(x, out=None):
    # log(1 + exp(x)) without overflow for large x or loss for very negative x.
    return np.logaddexp(0.0, x, out=out)


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


def reduce_sum(x, out=None):
    return np.sum(x)


def reduce_mean(x, out=None):
    return np.mean(x)


# ---------------------------------------------------------------- generated source
# Generated Python computes what the kernels above compute, with the same
# numpy and scipy calls; scipy is imported when a generated function runs.

SIGMOID_SOURCE = """def _sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0, z) / (1.0 + z)
"""

LOGSUMEXP_SOURCE = """def _logsumexp(*xs):
    result = np.logaddexp(xs[0], xs[1])
    for x in xs[2:]:
        result = np.logaddexp(result, x)
    return result
"""

WHERE_SOURCE = """def _where(c, a, b):
    return np.where(np.asarray(c) == 0, b, np.where(np.isnan(c), np.nan, a))
"""


def scipy_source(name: str, scipy_name: str) -> str:
    """A generated function calling scipy.special.<scipy_name>, importing it on first use."""
    return f"def _{name}(x):\n    from scipy.special import {scipy_name}\n\n    return {scipy_name}(x)\n"


INVMILLS_SOURCE = """def _invmills(x):
    from scipy.special import erfcx

    return 0.7978845608028654 / erfcx(np.multiply(x, -0.7071067811865476))
"""

DINVMILLS_SOURCE = """def _dinvmills(x):
    from scipy.special import erfcx

    x = np.asarray(x, dtype=np.float64)
    r = 0.7978845608028654 / erfcx(np.multiply(x, -0.7071067811865476))
    direct = -r * (x + r)
    t = -x
    u = 1.0 / (t * t)
    bracket, term = np.zeros_like(u), np.ones_like(u)
    for k in range(1, 11):
        term = term * ((2 * k - 1) * u) if k > 1 else term
        bracket = bracket + (term if k % 2 else -term)
    tail = -np.square(r / t) * bracket
    return np.where(x < -30.0, tail, direct)[()]
"""

POLYGAMMA_SOURCE = """def _polygamma(n, x):
    from scipy.special import polygamma

    order = np.rint(n)
    return np.where(order >= 0, polygamma(np.maximum(order, 0.0), x), np.nan)
"""
