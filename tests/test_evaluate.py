"""Evaluation: every op against numpy, chunk boundaries, reductions, bindings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special

from exprgrad import build, graph, ops
from exprgrad.backends.evaluate import BLOCK_ROWS, compile_schedule, evaluate, exact_sum
from exprgrad.cli import cli
from exprgrad.errors import EvaluationError


def _mills(v):
    """The inverse Mills ratio phi(v)/Phi(v), written the plain way (fine at moderate v)."""
    return np.exp(-v * v / 2) / np.sqrt(2 * np.pi) / special.ndtr(v)


x = graph.var("x", per_row=True)
y = graph.var("y", per_row=True)
a, b = graph.var("a"), graph.var("b")

# Inputs inside each op's domain, and the numpy reference.
REFERENCE = {
    "exp": (np.exp, 1.0),
    "log": (np.log, 2.0),
    "sqrt": (np.sqrt, 2.0),
    "sin": (np.sin, 1.0),
    "cos": (np.cos, 1.0),
    "tan": (np.tan, 0.5),
    "asin": (np.arcsin, 0.3),
    "acos": (np.arccos, 0.3),
    "atan": (np.arctan, 1.0),
    "sinh": (np.sinh, 1.0),
    "cosh": (np.cosh, 1.0),
    "tanh": (np.tanh, 1.0),
    "asinh": (np.arcsinh, 1.0),
    "acosh": (np.arccosh, 2.0),
    "atanh": (np.arctanh, 0.3),
    "sigmoid": (lambda v: 1 / (1 + np.exp(-v)), 1.0),
    "softplus": (lambda v: np.log1p(np.exp(v)), 1.0),
    "relu": (lambda v: np.maximum(v, 0), 1.0),
    "step": (lambda v: (v > 0) * 1.0, 1.0),
    "abs": (np.abs, 1.0),
    "sign": (np.sign, 1.0),
    "log1p": (np.log1p, 1.0),
    "expm1": (np.expm1, 1.0),
    "log2": (np.log2, 2.0),
    "log10": (np.log10, 2.0),
    "erf": (special.erf, 0.5),
    "erfc": (special.erfc, 0.5),
    "normcdf": (special.ndtr, -1.0),
    "lognormcdf": (special.log_ndtr, -3.0),
    "lgamma": (special.gammaln, 2.5),
    "digamma": (special.psi, 2.5),
    "invmills": (lambda v: special.ndtr(v) ** -1 * np.exp(-v * v / 2) / np.sqrt(2 * np.pi), -1.0),
    "dinvmills": (
        lambda v: -_mills(v) * (v + _mills(v)),
        -1.0,
    ),
}
BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "div": np.divide,
    "pow": np.power,
    "atan2": np.arctan2,
    "min": np.minimum,
    "max": np.maximum,
    "polygamma": lambda n, v: special.polygamma(np.rint(n), v),
    "gt": lambda u, v: (u > v) * 1.0,
    "ge": lambda u, v: (u >= v) * 1.0,
    "lt": lambda u, v: (u < v) * 1.0,
    "le": lambda u, v: (u <= v) * 1.0,
    "eq": lambda u, v: (u == v) * 1.0,
    "ne": lambda u, v: (u != v) * 1.0,
}
# Variadic or with three operands: tested on their own below.
OTHERS = {"logsumexp", "where"}


def test_every_op_has_a_reference_here():
    covered = set(REFERENCE) | set(BINARY) | OTHERS | {"neg", "sum", "mean"}
    assert covered == set(ops.OPS)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_unary_op_matches_numpy(name, rng):
    reference, centre = REFERENCE[name]
    values = centre + rng.uniform(-0.2, 0.2, 3000)
    got = evaluate([build.call(name, x)], {}, {"x": values})[0]
    np.testing.assert_allclose(got, reference(values), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_op_matches_numpy(name, rng):
    left, right = rng.uniform(0.5, 2.0, 3000), rng.uniform(0.5, 2.0, 3000)
    right[::3] = left[::3]  # ties, for the comparisons
    node = graph.apply(ops.OPS[name], (x, y))  # unsimplified, so the kernel itself runs
    got = evaluate([node], {}, {"x": left, "y": right})[0]
    np.testing.assert_allclose(got, BINARY[name](left, right), rtol=1e-13)


@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, -1.0, 1.7, -2.0])
def test_constant_powers_match_numpy(exponent, rng):
    values = rng.uniform(0.1, 3.0, 100)
    got = evaluate([graph.apply(ops.POW, (x, build.const(exponent)))], {}, {"x": values})[0]
    np.testing.assert_allclose(got, values**exponent, rtol=1e-14)


def test_negative_base_integer_power_is_exact():
    assert evaluate([build.pow_(a, build.const(3))], {"a": -2.0})[0] == -8.0
    assert math.isnan(evaluate([build.pow_(a, build.const(0.5))], {"a": -2.0})[0])


def test_sigmoid_and_softplus_are_stable_for_large_inputs():
    values = np.array([-800.0, -40.0, 0.0, 40.0, 800.0])
    sig, soft = evaluate([build.call("sigmoid", x), build.call("softplus", x)], {}, {"x": values})
    assert np.all(np.isfinite(sig)) and np.all(np.isfinite(soft))
    assert sig[0] == 0.0 and sig[-1] == 1.0 and sig[2] == 0.5
    assert soft[-1] == 800.0 and soft[0] == 0.0


def test_scalar_expression_gives_a_float():
    value = evaluate([build.add(build.mul(a, b), build.const(1))], {"a": 2, "b": 3})[0]
    assert isinstance(value, float) and value == 7.0


def test_missing_parameter_is_named():
    with pytest.raises(EvaluationError, match="'b'"):
        evaluate([build.add(a, b)], {"a": 1})


@pytest.mark.parametrize("n", [1, 5, BLOCK_ROWS - 1, BLOCK_ROWS, BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 7])
def test_results_identical_whatever_the_chunk_size(n, rng):
    cols = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
    residual = build.sub(build.add(build.mul(a, x), b), y)
    cost = build.call("mean", build.pow_(residual, build.const(2)))
    outputs = [cost, residual, build.call("sum", x)]
    params = {"a": 0.7, "b": -0.2}
    first = evaluate(outputs, params, cols, chunk_rows=1)
    for chunk in (BLOCK_ROWS, 2 * BLOCK_ROWS, 10**7):
        again = evaluate(outputs, params, cols, chunk_rows=chunk)
        assert again[0] == first[0] and again[2] == first[2]
        assert np.array_equal(again[1], first[1])
    assert math.isclose(first[0], np.mean((0.7 * cols["x"] - 0.2 - cols["y"]) ** 2), rel_tol=1e-12)


def test_reductions_are_accurate():
    # Block sums 1.024e19, 1024, -1.024e19: a running float sum loses the 1024;
    # the exact sum of block sums keeps it.
    values = np.repeat([1e16, 1.0, -1e16], BLOCK_ROWS)
    assert evaluate([build.call("sum", x)], {}, {"x": values})[0] == BLOCK_ROWS


def test_nested_reduction_finished_in_an_earlier_pass(rng):
    values = rng.normal(3.0, 2.0, 50001)
    centred = build.sub(x, build.call("mean", x))
    variance = build.call("mean", build.pow_(centred, build.const(2)))
    kurt = build.call("mean", build.pow_(build.div(centred, build.call("sqrt", variance)), build.const(4)))
    v, k = evaluate([variance, kurt], {}, {"x": values}, chunk_rows=4096)
    assert math.isclose(v, np.var(values), rel_tol=1e-12)
    z = (values - values.mean()) / values.std()
    assert math.isclose(k, np.mean(z**4), rel_tol=1e-12)


def test_per_row_output_mixed_with_reduction(rng):
    values = rng.normal(size=3000)
    node = build.add(build.mul(a, x), build.call("mean", build.mul(a, x)))
    got = evaluate([node], {"a": 2.0}, {"x": values}, chunk_rows=1024)[0]
    np.testing.assert_allclose(got, 2 * values + np.mean(2 * values), rtol=1e-13)


def test_sum_of_a_scalar_counts_rows():
    assert evaluate([build.call("sum", a)], {"a": 2.0}, {"x": np.zeros(7)})[0] == 14.0
    assert evaluate([build.call("sum", build.ONE)], {}, {"x": np.zeros(7)})[0] == 7.0


def test_column_given_as_a_number_without_data():
    node = build.call("mean", build.pow_(build.sub(x, a), build.const(2)))
    assert evaluate([node], {"x": 3.0, "a": 1.0})[0] == 4.0


def test_missing_column_is_named():
    with pytest.raises(EvaluationError, match="'y'"):
        evaluate([build.add(x, y)], {}, {"x": np.ones(3)})


def test_schedule_reused_with_new_parameters(rng):
    cols = {"x": rng.normal(size=100)}
    schedule = compile_schedule([build.call("sum", build.mul(a, x))])
    assert schedule.parameters == ["a"] and schedule.columns == ["x"]
    one = schedule.run({"a": 1.0}, cols)[0]
    two = schedule.run({"a": 2.0}, cols)[0]
    assert math.isclose(two, 2 * one)


def test_reductions_over_no_rows():
    # Columns with no rows (a Python caller's empty lists): mean is nan, as
    # np.mean gives, sum is 0; never a ZeroDivisionError.
    empty = {"x": np.array([]), "y": np.array([])}
    mean_value, sum_value, per_row = evaluate(
        [build.call("mean", build.sub(x, y)), build.call("sum", x), build.mul(a, x)], {"a": 2.0}, empty
    )
    assert math.isnan(mean_value) and sum_value == 0.0 and per_row.shape == (0,)


# ---------------------------------------------------------------- sums past the float range


def _spread(n_rows: int, values: dict[int, float]) -> np.ndarray:
    column = np.zeros(n_rows)
    for row, value in values.items():
        column[row] = value
    return column


def test_exact_sum_never_raises():
    inf = math.inf
    assert exact_sum([1e308, 1e308]) == inf and exact_sum([-1e308, -1e308]) == -inf
    assert exact_sum([1e308, 1e308, -1e308]) == 1e308  # an intermediate total past the range
    assert math.isnan(exact_sum([inf, -inf])) and math.isnan(exact_sum([math.nan, 1.0]))
    assert exact_sum([inf, 1.0]) == inf and exact_sum([]) == 0.0
    assert exact_sum([1.7976931348623157e308, 1e292]) == inf  # rounds past the largest float
    # An overflowing partial total does not hide a nan or an infinity among the values.
    assert math.isnan(exact_sum([1e308, 1e308, math.nan]))
    assert math.isnan(exact_sum([1e308, 1e308, inf, -inf]))
    assert exact_sum([1e308, 1e308, -inf]) == -inf and exact_sum([-1e308, -1e308, inf]) == inf


def test_sums_that_overflow_across_blocks_are_inf():
    # One huge value in each of two blocks: each block sum is finite, their total is not.
    values = _spread(2 * BLOCK_ROWS, {0: 1e308, BLOCK_ROWS: 1e308})
    outputs = [
        build.call("sum", x),
        build.call("mean", x),
        build.call("sum", build.sub(x, build.call("mean", x))),
        build.call("sum", build.neg(x)),
    ]
    total, mean, centred, negated = evaluate(outputs, {}, {"x": values})
    assert total == math.inf and mean == math.inf and centred == -math.inf and negated == -math.inf
    both = _spread(2 * BLOCK_ROWS, {0: math.inf, BLOCK_ROWS: -math.inf})
    assert all(math.isnan(v) for v in evaluate(outputs[:2], {}, {"x": both}))


def test_sum_of_huge_and_infinite_data_through_the_command_line(runner, tmp_path):
    huge = tmp_path / "huge.csv"
    rows = _spread(2 * BLOCK_ROWS, {0: 1e308, BLOCK_ROWS: 1e308})
    huge.write_text("x\n" + "\n".join(repr(float(v)) for v in rows) + "\n")
    infinite = tmp_path / "inf.csv"
    cells = ["0"] * (2 * BLOCK_ROWS)
    cells[0], cells[BLOCK_ROWS] = "inf", "-inf"
    infinite.write_text("x\n" + "\n".join(cells) + "\n")
    for expr, path, extra, shown in [
        ("sum(x)", huge, [], "inf"),
        ("mean(x)", huge, [], "inf"),
        ("sum(x - mean(x))", huge, [], "-inf"),
        ("sum(x)", infinite, ["--allow-nan"], "nan"),
        ("mean(x^2)", infinite, ["--allow-nan"], "inf"),
    ]:
        result = runner.invoke(cli, ["eval", expr, "--data", str(path), *extra])
        assert result.exit_code == 0, (expr, result.output)
        assert "Traceback" not in result.output and result.stdout.splitlines()[0] == shown, (
            expr,
            result.output,
        )


# ---------------------------------------------------------------- no raw warnings


HOSTILE = np.array([0.0, -0.0, -1.0, 1.0, -1e308, 1e308, math.inf, -math.inf, math.nan, 5e-324, -2.0, 800.0])


@pytest.mark.parametrize("name", sorted(n for n, s in ops.OPS.items() if not s.reduction))
def test_no_numpy_or_scipy_warning_escapes_evaluation(name):
    spec = ops.OPS[name]
    count = 3 if spec.arity == ops.VARIADIC else spec.arity
    columns = {f"u{i}": np.roll(HOSTILE, i) for i in range(count)}
    node = graph.apply(spec, tuple(graph.var(f"u{i}", per_row=True) for i in range(count)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        evaluate([node, build.call("sum", node), build.call("mean", node)], {}, columns)
        for row in range(len(HOSTILE)):  # one scalar at a time: the scalar kernels
            evaluate([node], {k: float(v[row]) for k, v in columns.items()})


def test_a_fit_whose_residual_sum_overflows_reports_instead_of_crashing(runner, tmp_path):
    # Each squared residual is finite (about 1e308); their sum is not.
    data = tmp_path / "huge.csv"
    data.write_text("x,y\n1,1e154\n2,-1e154\n3,1e154\n")
    result = runner.invoke(cli, ["fit", str(data), "--model", "a*x", "--target", "y"])
    assert "Traceback" not in result.output and not isinstance(result.exception, OverflowError), result.output


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ([1e308, -1e308], 0.0),
        ([1e308, 1e308, -1e308, -1e308], 0.0),
        ([1e308, -1e308, 1e308, -1e308, 3.0], 3000.0),
        ([1.5e308, -1e308, -0.5e308], 0.0),
    ],
)
def test_a_sum_that_never_overflows_in_order_is_not_inf_or_nan(pattern, expected):
    values = np.tile(pattern, 1000)
    for chunk_rows in (1024, 4096, 65536):
        got = evaluate([build.call("sum", x)], {}, {"x": values}, chunk_rows=chunk_rows)[0]
        assert got == expected, chunk_rows


def test_a_sum_past_the_float_range_is_still_inf():
    values = np.full(5000, 1e308)
    assert evaluate([build.call("sum", x)], {}, {"x": values})[0] == math.inf
    values[7] = math.nan
    assert math.isnan(evaluate([build.call("sum", x)], {}, {"x": values})[0])


@pytest.mark.parametrize("value", [0.1, 1 / 3, -7.3e-5, 1e300])
def test_a_column_given_as_one_number_is_reduced_as_n_equal_rows(value):
    # sum = n*value, rounded once; mean = value exactly; for every chunk size.
    rows = np.arange(3 * BLOCK_ROWS - 5, dtype=float)
    for chunk in (BLOCK_ROWS, 2 * BLOCK_ROWS, 10**7):
        got = evaluate(
            [build.call("sum", x), build.call("mean", x), y], {"x": value}, {"y": rows}, chunk_rows=chunk
        )
        assert got[0] == value * len(rows)
        assert got[1] == value
