"""THE operator registry: one ``OpSpec`` entry per primitive, and the ops as named constants.

In: nothing at import but the kernels. Out: ``OPS`` ({name: entry}), one
constant per entry (``ADD``, ``NEG``, ...; nodes compare their op with ``is``),
arity checks and the names users may call. The node builders live in
``build``; the partials here call them when they run.

Every fact about a primitive lives in its ``OpSpec`` entry of ``OPS``: numpy
evaluation, local partial derivatives (as graph builders, from which forward
and reverse mode both follow), and the text, LaTeX and Python forms the one
parenthesizer in the printer reads. No other module branches on an op name.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import kernels
from .errors import ArityError
from .graph import Node

VARIADIC = -1

# Binding strength, loosest first; the printer's only precedence table.
PREC_CMP = 5  # x > y, below + and -, as in Python; never chained
PREC_ADD = 10
PREC_MUL = 20
PREC_NEG = 30
PREC_POW = 40
PREC_CALL = 50
PREC_ATOM = 60

# OpSpec.power_form of x^y: operand 0 raised to operand 1.
POWER_FORM = "power"


@dataclass(frozen=True, eq=False, repr=False)
class OpSpec:
    """One primitive.

    name: the op name used in the graph (``add``, ``sin``).
    arity: number of ordered inputs, or VARIADIC (two or more) for add and mul.
    kernel: numpy function of the input arrays; takes ``out=`` like a ufunc.
    partials: builds d(node)/d(input_i) as graph nodes from the node itself,
        one per input; reverse mode multiplies them by the adjoint, forward
        mode by the tangent. None for reductions (diff treats them as linear).
    notation: "infix" (a + b), "prefix" (-a) or "call" (sin(a)).
    text: the infix symbol, prefix symbol or function name in exprgrad text.
    latex: "$0", "$1" placeholders for the operands, or an infix symbol.
    python: numpy source template with "$0", "$1" (and "$*" for all operands).
    python_helper: the ``kernels`` function the python template calls; generated
        modules embed its source (``kernels.source``), so they run the kernel itself.
    precedence, assoc: read by the printer's parenthesizer.
    commutative, associative, identity: algebraic facts for simplify.
    linear_form: how the op reads as a linear combination of its operands:
        the coefficient of each (sub: (1, -1), neg: (-1,)), None when every
        operand, however many, has coefficient 1 (add), () when not linear.
    power_form: how the op reads as a product of powers of its operands: the
        exponent of each (div: (1, -1), sqrt: (1/2,)), None when every operand
        has exponent 1 (mul), POWER_FORM for operand 0 raised to operand 1
        (pow), () when it is none of these.
    inverse: the name of the op that undoes this one with its second operand
        (add: "sub", x - y = x + (-y); mul: "div", x/y = x*y^-1); "" for none.
    complement: 1 - f(u) as another entry: (its name, whether u is negated)
        (normcdf: ("normcdf", True), 1 - normcdf(u) = normcdf(-u)); None.
    reduction: removes one index from its operand's (``Node.axis``: ROWS for
        sum(e) and mean(e) over data rows, j for sum[j](e)).
    averages: a reduction that divides its sum by the axis's size (mean).
    callable: users may write it as a function call ``name(...)``.
    kink: the value a non-smooth op's derivative takes at its kink.
    boolean: its value is always exactly 0 or 1 (the comparisons).
    orders: positions of inputs that are orders, whole numbers (polygamma's n):
        lowering refuses a number that is not whole, a negative order gives
        nan, and one computed from parameters is rounded to the nearest whole
        number (derivative 0).
    shares: (common, rest), kernels with kernel(x) = rest(x, common(x)): ops
        of one operand with the same common kernel (sigmoid, softplus:
        exp(-|x|)) compute it once for that operand in a pass; None.
    """

    name: str
    arity: int
    kernel: Callable
    partials: Callable[[Node], tuple] | None
    notation: str
    text: str
    latex: str
    python: str
    precedence: int = PREC_CALL
    assoc: str = "none"
    commutative: bool = False
    associative: bool = False
    identity: float | None = None
    reduction: bool = False
    averages: bool = False
    callable: bool = True
    python_helper: Callable | None = None
    kink: str = ""
    boolean: bool = False
    orders: tuple[int, ...] = ()
    linear_form: tuple | None = ()
    power_form: tuple | str | None = ()
    inverse: str = ""
    complement: tuple[str, bool] | None = None
    shares: tuple[Callable, Callable] | None = None

    def __repr__(self) -> str:
        return f"ops.{self.name.upper()}"


# ---------------------------------------------------------------- the registry
# Each entry after its partials: one function per rule, its docstring states
# the law. The partials build their nodes with ``build`` when they run.

_ENTRIES: list[OpSpec] = []


def _entry(spec: OpSpec) -> OpSpec:
    """Add ``spec`` to the registry; the entry is also the op's named constant."""
    _ENTRIES.append(spec)
    return spec


def _fn(name, kernel, partials, latex=None, python=None, arity=1, **extra):
    """An entry written as a function call, name(args)."""
    return OpSpec(
        name=name,
        arity=arity,
        kernel=kernel,
        partials=partials,
        notation="call",
        text=name,
        latex=latex if latex is not None else rf"\operatorname{{{name}}}\left($0\right)",
        python=python if python is not None else f"np.{name}($0)",
        **extra,
    )


def _comparison(name, text, latex, numpy_name):
    """An infix comparison: 1 where it holds, 0 where not (nan compares false, != true)."""
    return OpSpec(
        name,
        2,
        kernels.comparison(numpy_name),
        _flat_partials,
        "infix",
        text,
        latex,
        f"np.{numpy_name}($0, $1).astype(float)",
        precedence=PREC_CMP,
        callable=False,
        boolean=True,
        kink=f"{text} jumps where its sides are equal; its derivative is 0 everywhere",
    )


def _add_partials(node):
    """d(x0 + x1 + ...)/dxi = 1."""
    return tuple(build.ONE for _ in node.inputs)


ADD = _entry(
    OpSpec(
        "add",
        VARIADIC,
        kernels.sum_inputs,
        _add_partials,
        "infix",
        "+",
        "+",
        "$0 + $1",
        precedence=PREC_ADD,
        assoc="left",
        commutative=True,
        associative=True,
        identity=0.0,
        callable=False,
        linear_form=None,
        inverse="sub",
    ),
)


def _sub_partials(node):
    """d(x - y)/dx = 1, d(x - y)/dy = -1."""
    return (build.ONE, build.MINUS_ONE)


SUB = _entry(
    OpSpec(
        "sub",
        2,
        np.subtract,
        _sub_partials,
        "infix",
        "-",
        "-",
        "$0 - $1",
        precedence=PREC_ADD,
        assoc="left",
        callable=False,
        linear_form=(1, -1),
    ),
)


def _mul_partials(node):
    """d(x0*...*xn)/dxi = product of the others, from prefix and suffix products.

    Prefix and suffix products keep the gradient of an n-factor product at
    about 3n nodes instead of n^2.
    """
    xs = node.inputs
    if len(xs) == 2:
        return (xs[1], xs[0])
    prefix = [build.ONE]
    for x in xs[:-1]:
        prefix.append(build.mul(prefix[-1], x))
    suffix = [build.ONE]
    for x in reversed(xs[1:]):
        suffix.append(build.mul(x, suffix[-1]))
    suffix.reverse()
    return tuple(build.mul(p, s) for p, s in zip(prefix, suffix))


MUL = _entry(
    OpSpec(
        "mul",
        VARIADIC,
        kernels.mul_inputs,
        _mul_partials,
        "infix",
        "*",
        r"\cdot",
        "$0 * $1",
        precedence=PREC_MUL,
        assoc="left",
        commutative=True,
        associative=True,
        identity=1.0,
        callable=False,
        power_form=None,
        inverse="div",
    ),
)


def _div_partials(node):
    """d(x/y)/dx = 1/y, d(x/y)/dy = -x/y^2, built as -(x/y)/y to reuse the quotient."""
    y = node.inputs[1]
    return (build.div(build.ONE, y), build.neg(build.div(node, y)))


DIV = _entry(
    OpSpec(
        "div",
        2,
        np.divide,
        _div_partials,
        "infix",
        "/",
        r"\frac{$0}{$1}",
        "$0 / $1",
        precedence=PREC_MUL,
        assoc="left",
        callable=False,
        power_form=(1, -1),
    ),
)


def _neg_partials(node):
    """d(-x)/dx = -1."""
    return (build.MINUS_ONE,)


NEG = _entry(
    OpSpec(
        "neg",
        1,
        np.negative,
        _neg_partials,
        "prefix",
        "-",
        "-",
        "-$0",
        precedence=PREC_NEG,
        callable=False,
        linear_form=(-1,),
    ),
)


def _pow_partials(node):
    """d(x^y)/dx = y*x^(y-1), d(x^y)/dy = x^y*log(x)."""
    x, y = node.inputs
    dx = build.mul(y, build.pow_(x, build.sub(y, build.ONE)))
    dy = None if y.is_const else build.mul(node, build.call(LOG, x))
    return (dx, dy)


POW = _entry(
    OpSpec(
        "pow",
        2,
        kernels.power,
        _pow_partials,
        "infix",
        "^",
        "{$0}^{$1}",
        "power($0, $1)",
        precedence=PREC_POW,
        assoc="right",
        python_helper=kernels.power,
        power_form=POWER_FORM,
    ),
)


def _exp_partials(node):
    """d exp(x)/dx = exp(x)."""
    return (node,)


EXP = _entry(
    _fn("exp", np.exp, _exp_partials, latex=r"\exp\left($0\right)"),
)


def _log_partials(node):
    """d log(x)/dx = 1/x."""
    return (build.div(build.ONE, node.inputs[0]),)


LOG = _entry(
    _fn("log", np.log, _log_partials, latex=r"\log\left($0\right)"),
)


def _sqrt_partials(node):
    """d sqrt(x)/dx = 1/(2*sqrt(x))."""
    return (build.div(build.ONE, build.mul(build.const(2), node)),)


SQRT = _entry(
    _fn("sqrt", np.sqrt, _sqrt_partials, latex=r"\sqrt{$0}", power_form=(Fraction(1, 2),)),
)


def _sin_partials(node):
    """d sin(x)/dx = cos(x)."""
    return (build.call(COS, node.inputs[0]),)


SIN = _entry(
    _fn("sin", np.sin, _sin_partials, latex=r"\sin\left($0\right)"),
)


def _cos_partials(node):
    """d cos(x)/dx = -sin(x)."""
    return (build.neg(build.call(SIN, node.inputs[0])),)


COS = _entry(
    _fn("cos", np.cos, _cos_partials, latex=r"\cos\left($0\right)"),
)


def _tan_partials(node):
    """d tan(x)/dx = 1/cos(x)^2."""
    return (build.div(build.ONE, build.pow_(build.call(COS, node.inputs[0]), build.const(2))),)


TAN = _entry(
    _fn("tan", np.tan, _tan_partials, latex=r"\tan\left($0\right)"),
)


def _asin_partials(node):
    """d asin(x)/dx = 1/sqrt(1 - x^2)."""
    x = node.inputs[0]
    return (build.div(build.ONE, build.call(SQRT, build.sub(build.ONE, build.pow_(x, build.const(2))))),)


ASIN = _entry(
    _fn("asin", np.arcsin, _asin_partials, latex=r"\arcsin\left($0\right)", python="np.arcsin($0)"),
)


def _acos_partials(node):
    """d acos(x)/dx = -1/sqrt(1 - x^2)."""
    x = node.inputs[0]
    return (
        build.neg(
            build.div(build.ONE, build.call(SQRT, build.sub(build.ONE, build.pow_(x, build.const(2)))))
        ),
    )


ACOS = _entry(
    _fn("acos", np.arccos, _acos_partials, latex=r"\arccos\left($0\right)", python="np.arccos($0)"),
)


def _atan_partials(node):
    """d atan(x)/dx = 1/(1 + x^2)."""
    x = node.inputs[0]
    return (build.div(build.ONE, build.add(build.ONE, build.pow_(x, build.const(2)))),)


ATAN = _entry(
    _fn("atan", np.arctan, _atan_partials, latex=r"\arctan\left($0\right)", python="np.arctan($0)"),
)


def _atan2_partials(node):
    """atan2(y, x): d/dy = x/(x^2 + y^2), d/dx = -y/(x^2 + y^2)."""
    y, x = node.inputs
    r2 = build.add(build.pow_(x, build.const(2)), build.pow_(y, build.const(2)))
    return (build.div(x, r2), build.neg(build.div(y, r2)))


ATAN2 = _entry(
    _fn(
        "atan2",
        np.arctan2,
        _atan2_partials,
        arity=2,
        latex=r"\operatorname{atan2}\left($0, $1\right)",
        python="np.arctan2($0, $1)",
    ),
)


def _sinh_partials(node):
    """d sinh(x)/dx = cosh(x)."""
    return (build.call(COSH, node.inputs[0]),)


SINH = _entry(
    _fn("sinh", np.sinh, _sinh_partials, latex=r"\sinh\left($0\right)"),
)


def _cosh_partials(node):
    """d cosh(x)/dx = sinh(x)."""
    return (build.call(SINH, node.inputs[0]),)


COSH = _entry(
    _fn("cosh", np.cosh, _cosh_partials, latex=r"\cosh\left($0\right)"),
)


def _tanh_partials(node):
    """d tanh(x)/dx = 1 - tanh(x)^2."""
    return (build.sub(build.ONE, build.pow_(node, build.const(2))),)


TANH = _entry(
    _fn("tanh", np.tanh, _tanh_partials, latex=r"\tanh\left($0\right)"),
)


def _asinh_partials(node):
    """d asinh(x)/dx = 1/sqrt(x^2 + 1)."""
    x = node.inputs[0]
    return (build.div(build.ONE, build.call(SQRT, build.add(build.pow_(x, build.const(2)), build.ONE))),)


ASINH = _entry(
    _fn("asinh", np.arcsinh, _asinh_partials, python="np.arcsinh($0)"),
)


def _acosh_partials(node):
    """d acosh(x)/dx = 1/sqrt(x^2 - 1)."""
    x = node.inputs[0]
    return (build.div(build.ONE, build.call(SQRT, build.sub(build.pow_(x, build.const(2)), build.ONE))),)


ACOSH = _entry(
    _fn("acosh", np.arccosh, _acosh_partials, python="np.arccosh($0)"),
)


def _atanh_partials(node):
    """d atanh(x)/dx = 1/(1 - x^2)."""
    x = node.inputs[0]
    return (build.div(build.ONE, build.sub(build.ONE, build.pow_(x, build.const(2)))),)


ATANH = _entry(
    _fn("atanh", np.arctanh, _atanh_partials, python="np.arctanh($0)"),
)


def _sigmoid_partials(node):
    """d sigmoid(x)/dx = sigmoid(x)*(1 - sigmoid(x))."""
    return (build.mul(node, build.sub(build.ONE, node)),)


SIGMOID = _entry(
    _fn(
        "sigmoid",
        kernels.sigmoid,
        _sigmoid_partials,
        python="sigmoid($0)",
        python_helper=kernels.sigmoid,
        shares=(kernels.exp_neg_abs, kernels.sigmoid_of),
    ),
)


def _softplus_partials(node):
    """d softplus(x)/dx = sigmoid(x)."""
    return (build.call(SIGMOID, node.inputs[0]),)


SOFTPLUS = _entry(
    _fn(
        "softplus",
        kernels.softplus,
        _softplus_partials,
        python="softplus($0)",
        python_helper=kernels.softplus,
        shares=(kernels.exp_neg_abs, kernels.softplus_of),
    ),
)


def _relu_partials(node):
    """d relu(x)/dx = step(x): 1 for x > 0, 0 for x <= 0 (0 at the kink)."""
    return (build.call(STEP, node.inputs[0]),)


RELU = _entry(
    _fn(
        "relu",
        kernels.relu,
        _relu_partials,
        python="relu($0)",
        python_helper=kernels.relu,
        kink="relu'(0) = 0",
    ),
)


def _flat_partials(node):
    """sign and step are piecewise constant: derivative 0 (also at the jump)."""
    return (None,) * len(node.inputs)


STEP = _entry(
    _fn(
        "step",
        kernels.step,
        _flat_partials,
        python="step($0)",
        python_helper=kernels.step,
        kink="step(0) = 0; step'(x) = 0 everywhere",
    ),
)


def _abs_partials(node):
    """d |x|/dx = sign(x) (0 at the kink)."""
    return (build.call(SIGN, node.inputs[0]),)


ABS = _entry(
    _fn("abs", np.abs, _abs_partials, latex=r"\left|$0\right|", kink="abs'(0) = sign(0) = 0"),
)


SIGN = _entry(
    _fn(
        "sign",
        np.sign,
        _flat_partials,
        latex=r"\operatorname{sgn}\left($0\right)",
        kink="sign'(x) = 0 everywhere, also at 0",
    ),
)


def _min_partials(node):
    """min(x, y): d/dx = 1 - step(x - y), d/dy = step(x - y); at a tie x gets 1."""
    x, y = node.inputs
    picks_y = build.call(STEP, build.sub(x, y))
    return (build.sub(build.ONE, picks_y), picks_y)


MIN = _entry(
    _fn(
        "min",
        np.minimum,
        _min_partials,
        arity=2,
        latex=r"\min\left($0, $1\right)",
        python="np.minimum($0, $1)",
        kink="at a tie the first argument gets derivative 1, the second 0",
    ),
)


def _max_partials(node):
    """max(x, y): d/dx = 1 - step(y - x), d/dy = step(y - x); at a tie x gets 1."""
    x, y = node.inputs
    picks_y = build.call(STEP, build.sub(y, x))
    return (build.sub(build.ONE, picks_y), picks_y)


MAX = _entry(
    _fn(
        "max",
        np.maximum,
        _max_partials,
        arity=2,
        latex=r"\max\left($0, $1\right)",
        python="np.maximum($0, $1)",
        kink="at a tie the first argument gets derivative 1, the second 0",
    ),
)


def _log1p_partials(node):
    """d log1p(x)/dx = 1/(1 + x)."""
    return (build.div(build.ONE, build.add(build.ONE, node.inputs[0])),)


LOG1P = _entry(
    _fn("log1p", np.log1p, _log1p_partials, latex=r"\log\left(1 + $0\right)"),
)


def _expm1_partials(node):
    """d expm1(x)/dx = exp(x)."""
    return (build.call(EXP, node.inputs[0]),)


EXPM1 = _entry(
    _fn("expm1", np.expm1, _expm1_partials, latex=r"\left(\exp\left($0\right) - 1\right)"),
)


def _log2_partials(node):
    """d log2(x)/dx = 1/(x*log(2))."""
    return (build.div(build.ONE, build.mul(node.inputs[0], build.call(LOG, build.const(2)))),)


LOG2 = _entry(
    _fn("log2", np.log2, _log2_partials, latex=r"\log_{2}\left($0\right)"),
)


def _log10_partials(node):
    """d log10(x)/dx = 1/(x*log(10))."""
    return (build.div(build.ONE, build.mul(node.inputs[0], build.call(LOG, build.const(10)))),)


LOG10 = _entry(
    _fn("log10", np.log10, _log10_partials, latex=r"\log_{10}\left($0\right)"),
)


def _erf_slope(x):
    return build.div(
        build.mul(build.const(2), build.call(EXP, build.neg(build.pow_(x, build.const(2))))),
        build.call(SQRT, build.named_const("pi")),
    )


def _erf_partials(node):
    """d erf(x)/dx = 2*exp(-x^2)/sqrt(pi)."""
    return (_erf_slope(node.inputs[0]),)


ERF = _entry(
    _fn(
        "erf",
        kernels.erf,
        _erf_partials,
        python="erf($0)",
        python_helper=kernels.erf,
        complement=("erfc", False),
    ),
)


def _erfc_partials(node):
    """d erfc(x)/dx = -2*exp(-x^2)/sqrt(pi)."""
    return (build.neg(_erf_slope(node.inputs[0])),)


ERFC = _entry(
    _fn(
        "erfc",
        kernels.erfc,
        _erfc_partials,
        python="erfc($0)",
        python_helper=kernels.erfc,
        complement=("erf", False),
    ),
)


def _half_square(x):
    """-x^2/2, the exponent of the normal density."""
    return build.neg(build.div(build.pow_(x, build.const(2)), build.const(2)))


def _sqrt_two_pi():
    return build.call(SQRT, build.mul(build.const(2), build.named_const("pi")))


def _normcdf_partials(node):
    """d normcdf(x)/dx = the normal density exp(-x^2/2)/sqrt(2*pi)."""
    x = node.inputs[0]
    return (build.div(build.call(EXP, _half_square(x)), _sqrt_two_pi()),)


NORMCDF = _entry(
    _fn(
        "normcdf",
        kernels.normcdf,
        _normcdf_partials,
        latex=r"\Phi\left($0\right)",
        python="normcdf($0)",
        python_helper=kernels.normcdf,
        complement=("normcdf", True),
    ),
)


def _lognormcdf_partials(node):
    """d lognormcdf(x)/dx = density/cdf = invmills(x), finite and accurate for every x."""
    return (build.call(INVMILLS, node.inputs[0]),)


LOGNORMCDF = _entry(
    _fn(
        "lognormcdf",
        kernels.lognormcdf,
        _lognormcdf_partials,
        latex=r"\log\Phi\left($0\right)",
        python="lognormcdf($0)",
        python_helper=kernels.lognormcdf,
    ),
)


def _invmills_partials(node):
    """d invmills(x)/dx = -invmills(x)*(x + invmills(x)) = dinvmills(x), computed without cancellation."""
    return (build.call(DINVMILLS, node.inputs[0]),)


INVMILLS = _entry(
    _fn(
        "invmills",
        kernels.invmills,
        _invmills_partials,
        latex=r"\lambda\left($0\right)",
        python="invmills($0)",
        python_helper=kernels.invmills,
    ),
)


def _dinvmills_partials(node):
    """d dinvmills(x)/dx = -(d*(x + r) + r*(1 + d)), r = invmills(x), d = dinvmills(x)."""
    x = node.inputs[0]
    r = build.call(INVMILLS, x)
    return (build.neg(build.add(build.mul(node, build.add(x, r)), build.mul(r, build.add(build.ONE, node)))),)


DINVMILLS = _entry(
    _fn(
        "dinvmills",
        kernels.dinvmills,
        _dinvmills_partials,
        latex=r"\lambda'\left($0\right)",
        python="dinvmills($0)",
        python_helper=kernels.dinvmills,
    ),
)


def _lgamma_partials(node):
    """d lgamma(x)/dx = digamma(x) (also for log|gamma(x)| at negative x)."""
    return (build.call(DIGAMMA, node.inputs[0]),)


LGAMMA = _entry(
    _fn(
        "lgamma",
        kernels.lgamma,
        _lgamma_partials,
        latex=r"\log\Gamma\left($0\right)",
        python="lgamma($0)",
        python_helper=kernels.lgamma,
    ),
)


def _digamma_partials(node):
    """d digamma(x)/dx = polygamma(1, x), the trigamma function."""
    return (build.call(POLYGAMMA, build.ONE, node.inputs[0]),)


DIGAMMA = _entry(
    _fn(
        "digamma",
        kernels.digamma,
        _digamma_partials,
        latex=r"\psi\left($0\right)",
        python="digamma($0)",
        python_helper=kernels.digamma,
    ),
)


def _polygamma_partials(node):
    """d polygamma(n, x)/dx = polygamma(n + 1, x); the order n is whole: derivative 0."""
    n, x = node.inputs
    return (None, build.call(POLYGAMMA, build.add(n, build.ONE), x))


POLYGAMMA = _entry(
    _fn(
        "polygamma",
        kernels.polygamma,
        _polygamma_partials,
        arity=2,
        orders=(0,),
        latex=r"\psi^{($0)}\left($1\right)",
        python="polygamma($0, $1)",
        python_helper=kernels.polygamma,
    ),
)


def _logsumexp_partials(node):
    """d logsumexp(x0, x1, ...)/dxi = exp(xi)/(exp(x0) + exp(x1) + ...), the softmax weight.

    Built from the differences (sigmoid(x0 - x1) for two, see ``build.softmax``):
    never overflows, and exact to the last digits where the inputs are large
    (exp(xi - logsumexp(...)) loses the rounding of a large logsumexp).
    """
    xs = list(node.inputs)
    return tuple(build.softmax(x, xs) for x in xs)


LOGSUMEXP = _entry(
    _fn(
        "logsumexp",
        kernels.logsumexp,
        _logsumexp_partials,
        arity=VARIADIC,
        latex=r"\log\sum\exp\left($*\right)",
        python="logsumexp($*)",
        python_helper=kernels.logsumexp,
    ),
)


def _where_partials(node):
    """where(c, a, b): d/da = where(c, 1, 0), d/db = where(c, 0, 1), d/dc = 0 (a jump, not a slope)."""
    c = node.inputs[0]
    # As masks, not 0/1 factors: the product with the branch's own partial is
    # build.where(c, partial, 0), so the untaken branch's (sqrt'(x) at x < 0) is unused.
    return (None, build.where(c, build.ONE, build.ZERO), build.where(c, build.ZERO, build.ONE))


WHERE = _entry(
    _fn(
        "where",
        kernels.where,
        _where_partials,
        arity=3,
        latex=r"\begin{cases} $1 & \text{if } $0 \\ $2 & \text{otherwise} \end{cases}",
        python="where($0, $1, $2)",
        python_helper=kernels.where,
        kink="where(c, a, b) jumps where c becomes 0; its derivative in c is 0",
    ),
)


GT = _entry(
    _comparison("gt", ">", ">", "greater"),
)


GE = _entry(
    _comparison("ge", ">=", r"\geq", "greater_equal"),
)


LT = _entry(
    _comparison("lt", "<", "<", "less"),
)


LE = _entry(
    _comparison("le", "<=", r"\leq", "less_equal"),
)


EQ = _entry(
    _comparison("eq", "==", "=", "equal"),
)


NE = _entry(
    _comparison("ne", "!=", r"\neq", "not_equal"),
)


SUM = _entry(
    _fn(
        "sum",
        kernels.reduce_sum,
        None,
        latex=r"\sum_{i}\left($0\right)",
        python="reduce_sum($0, n)",
        python_helper=kernels.reduce_sum,
        reduction=True,
    ),
)


MEAN = _entry(
    _fn(
        "mean",
        kernels.reduce_mean,
        None,
        latex=r"\operatorname{mean}\left($0\right)",
        python="reduce_mean($0, n)",
        python_helper=kernels.reduce_mean,
        reduction=True,
        averages=True,
    ),
)


def _lse_partials(node):
    """d lse[i](e)/d e = exp(e - lse[i](e)), the softmax weight of each member (e has i, the node not)."""
    return (build.call(EXP, build.sub(node.inputs[0], node)),)


OPS: dict[str, OpSpec] = {spec.name: spec for spec in _ENTRIES}

# logsumexp over an index (logsumexp[k](e)). Not in OPS, the table of names
# users call and generators draw from: it is only ever written as a reduction
# over an index, never called by name, and never a row reduction.
LSE = _fn(
    "lse",
    kernels.logsumexp_over,
    _lse_partials,
    latex=r"\log\sum\exp\left($0\right)",
    python="logsumexp_over($0)",
    reduction=True,
    callable=False,
)

# The reductions over an index, by the name written before the brackets (sum[j](e)).
INDEX_REDUCTIONS: dict[str, OpSpec] = {"sum": SUM, "mean": MEAN, "logsumexp": LSE}


# Named constants of the language; a user definition shadows them.
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def arity_text(spec: OpSpec) -> str:
    """'1 argument', '2 arguments' or '2 or more arguments', for error messages."""
    if spec.arity == VARIADIC:
        return "2 or more arguments"
    return f"{spec.arity} argument{'s' if spec.arity != 1 else ''}"


def check_arity(spec: OpSpec, count: int) -> None:
    """Raise ArityError when ``count`` arguments do not fit ``spec``."""
    ok = count >= 2 if spec.arity == VARIADIC else count == spec.arity
    if not ok:
        raise ArityError(f"{spec.text}() takes {arity_text(spec)}, got {count}")


def function_names() -> list[str]:
    """Names users may call as functions, for messages and suggestions."""
    return sorted(name for name, spec in OPS.items() if spec.callable)


# The partials above build their nodes with ``build``, which reads this
# registry: it is imported once the registry exists, and used only when a
# partial runs.
from . import build
