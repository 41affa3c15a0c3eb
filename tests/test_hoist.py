"""hoist: signs and scalar factors moved off the rows before a schedule is planned."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import values_agree
from hypothesis import HealthCheck, given, settings
from strategies import expressions, points

from exprgrad import build, graph, ops
from exprgrad.backends import evaluate as evaluator
from exprgrad.backends import hoist
from exprgrad.backends.python_source import to_python
from exprgrad.passes.diff import diff

X = graph.var("x", per_row=True)
Y = graph.var("y", per_row=True)
U = graph.var("u", per_row=True)


def _exp_sum(terms: int):
    """mean((a1*exp(-b1*x) + ... - y)^2) written as scalars, and its parameters."""
    params = [graph.var(f"{p}{i}") for i in range(1, terms + 1) for p in "ab"]
    model = build.add(
        *(
            build.mul(params[2 * i], build.call("exp", build.neg(build.mul(params[2 * i + 1], X))))
            for i in range(terms)
        )
    )
    return build.call("mean", build.pow_(build.sub(model, Y), build.const(2.0))), params


_HOIST = hoist.hoist
_REWRITES = {None: list, True: _HOIST, False: lambda outs: _HOIST(outs, exact=False)}


def _steps(outputs, exact=True) -> tuple[int, int]:
    """(per-row steps, NEG steps) over the schedule's passes; exact=None: the graph as built."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(hoist, "hoist", _REWRITES[exact])
        schedule = evaluator.Schedule(outputs)
    steps = [s for p in schedule.passes for s in p.steps]
    negs = sum(1 for s in steps if isinstance(s.node, graph.Node) and s.node.op is ops.NEG)
    return len(steps), negs


def _run_python(outputs: dict, params, data):
    namespace: dict = {}
    exec(compile(to_python(outputs), "<generated>", "exec"), namespace)  # noqa: S102 - generated code is the test
    with np.errstate(all="ignore"):
        return namespace["f"](params, data)


def test_the_sign_of_a_per_row_product_goes_onto_its_scalar():
    b = graph.var("b")
    node = build.neg(build.mul(b, X))
    (got,) = hoist.hoist([node])
    assert got.op is ops.MUL and set(got.inputs) == {build.neg(b), X}
    assert hoist.hoist([build.neg(X)]) == [build.neg(X)]  # no scalar to take it: left alone


def test_scalar_factors_leave_reductions_and_products_when_not_exact():
    c, s = graph.var("c"), graph.var("s")
    total = build.call("mean", build.mul(c, U, X))
    (got,) = hoist.hoist([total], exact=False)
    assert got is build.mul(c, build.call("mean", build.mul(U, X)))
    assert evaluator.dot_factors(got.inputs[0] if got.inputs[0].op is ops.MEAN else got.inputs[1])
    nested = graph.apply(ops.MUL, (c, graph.apply(ops.MUL, (s, X))))
    (flat,) = hoist.hoist([nested], exact=False)
    assert flat.op is ops.MUL and flat.inputs.count(X) == 1 and sum(i.per_row for i in flat.inputs) == 1
    assert hoist.hoist([total]) == [total]  # exact: the scalar stays inside (one rounding)


def test_exp_sum_value_pass_runs_no_negations():
    cost, params = _exp_sum(10)
    outputs = [cost] + list(diff(cost, params).values())
    before, negs_before = _steps([cost], None)
    after, negs_after = _steps([cost], True)
    assert negs_before == 10 and negs_after == 0
    assert after == before - 10
    grad_before, _ = _steps(outputs, None)
    grad_after, grad_negs = _steps(outputs, True)
    assert grad_negs == 0 and grad_after <= grad_before - 10


def test_a_reductions_scalar_factor_saves_its_product():
    c = graph.var("c")
    total = build.call("mean", build.mul(c, U, X))
    assert _steps([total], False)[0] < _steps([total], None)[0]
    # A product another output reads stays whole: no extra per-row step.
    shared = build.mul(c, U, X)
    outputs = [build.call("mean", shared), build.add(shared, Y)]
    assert _steps(outputs, False)[0] <= _steps(outputs, None)[0]


def test_the_exp_sum_cost_and_gradient_keep_their_bits():
    cost, params = _exp_sum(4)
    outputs = [cost] + list(diff(cost, params).values())
    rng = np.random.default_rng(3)
    point = {p.name: float(v) for p, v in zip(params, rng.normal(0.0, 1.0, len(params)))}
    data = {"x": rng.uniform(0.0, 3.0, 5000), "y": rng.normal(0.0, 1.0, 5000)}
    got = evaluator.evaluate(outputs, point, data)
    names = {f"o{k}": node for k, node in enumerate(outputs)}
    expected = _run_python(names, point, data)
    assert all(np.array_equal(got[k], expected[f"o{k}"]) for k in range(len(outputs)))


@pytest.mark.parametrize("scalar", ["a", "zz", "b1", 2.5, "pi"])
def test_a_moved_sign_keeps_the_bits_of_products_and_sums_of_several_rows(scalar):
    s = (
        build.named_const("pi")
        if scalar == "pi"
        else build.const(scalar)
        if isinstance(scalar, float)
        else None
    )
    s = s if s is not None else graph.var(scalar)
    z = graph.var("z", per_row=True)
    sums = [build.add(Y, build.neg(build.mul(s, X)), U, z), build.add(build.neg(build.mul(s, X)), Y, U)]
    nodes = sums + [
        build.neg(build.mul(s, X, Y)),
        build.neg(build.mul(U, s, z, X)),
        build.neg(build.mul(s, graph.var("c"), X, Y)),
    ]
    rng = np.random.default_rng(5)
    data = {name: rng.normal(0.0, 1e3, 4000) * rng.choice([1.0, 1e-160, 1e160], 4000) for name in "xyuz"}
    params = {"a": -0.7, "zz": 1.3, "b1": 1e-3, "c": -3.1}
    for node in nodes:
        (moved,) = hoist.hoist([node])
        assert ops.NEG not in {n.op for n in graph.toposort([moved]) if n.per_row}  # gone from the rows
        got = evaluator.evaluate([node], params, data)[0]
        expected = _run_python({"f": node}, params, data)
        assert np.array_equal(got, expected, equal_nan=True)
        assert np.array_equal(np.signbit(got), np.signbit(expected))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions, points)
def test_hoisting_keeps_values(node, point):
    (pa, pb, pc), column = point
    params = {"a": pa, "b": pb, "c": pc}
    data = {"x": np.array(column[:5]), "y": np.array(column[5:])}
    (exact,) = hoist.hoist([node])
    got = _run_python({"f": exact}, params, data)
    expected = _run_python({"f": node}, params, data)
    got, expected = np.broadcast_to(got, (5,)), np.broadcast_to(expected, (5,))
    assert np.array_equal(got, expected, equal_nan=True)  # exact: the same bits
    assert np.array_equal(np.signbit(got) | np.isnan(got), np.signbit(expected) | np.isnan(expected))
    assert values_agree(node, hoist.hoist([node], exact=False)[0], point)


@pytest.mark.parametrize("exact", [True, False])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(node=expressions)
def test_hoisting_never_adds_per_row_steps(exact, node):
    assert _steps([node], exact)[0] <= _steps([node], None)[0]
