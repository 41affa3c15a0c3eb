"""diff: reverse and forward mode, Hessians, Jacobians, adjoints of every node.

Values are checked with the reference evaluator of ``helpers`` against
central finite differences; graphs are built with the ``ops`` builders.
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pytest
from helpers import assert_close, evaluate, evaluate_one, numeric_partial, show
from hypothesis import HealthCheck, assume, given, settings
from strategies import seeded_cases, seeded_graphs

import exprgrad
from exprgrad import build, graph, ops
from exprgrad.backends import evaluate as backend
from exprgrad.errors import DisconnectedError, OptionError
from exprgrad.ops import OPS, VARIADIC
from exprgrad.passes.diff import OTHER_ROWS, adjoints, diff, hessian, jacobian

A, B, C = graph.var("a"), graph.var("b"), graph.var("c")
X, Y, Z = graph.var("x", per_row=True), graph.var("y", per_row=True), graph.var("z", per_row=True)
TWO = build.const(2)
COLUMNS = {
    "x": np.array([0.3, -1.2, 0.9, 1.7]),
    "y": np.array([1.1, 0.4, -0.6, 2.0]),
    "z": np.array([-0.8, 0.5, 1.3, -0.2]),
}
PARAMS = {"a": 0.7, "b": -0.4, "c": 1.3}


def mean(e):
    return build.call("mean", e)


def total(e):
    return build.call("sum", e)


def value(node, params=PARAMS, columns=COLUMNS):
    return evaluate_one(node, params, columns)


def check_gradient(output, wrt, params=PARAMS, columns=COLUMNS, mode="reverse", rtol=1e-5):
    grads = diff(output, wrt, mode=mode)
    for v in wrt:
        expected = numeric_partial(output, v.name, params, columns)
        assert_close(
            value(grads[v.name], params, columns),
            expected,
            rtol=rtol,
            message=f"d/d{v.name} {show(output)} = {show(grads[v.name])}",
        )
    return grads


# ---------------------------------------------------------------- per-op partials

# Points away from 0, taken pairwise distinct: no kink (abs, relu, min, max) sits on one.
_GRID = (-1.7, -0.6, 0.35, 0.8, 1.45, 2.3)


def _op_inputs(spec):
    count = 3 if spec.arity == VARIADIC else spec.arity
    return [graph.var(f"u{i}") for i in range(count)]


def _smooth_points(node, inputs, limit=6):
    """Grid points where the node is finite and locally smooth (differences agree)."""
    points = []
    for values in itertools.permutations(_GRID, len(inputs)):
        params = {v.name: p for v, p in zip(inputs, values)}
        if not np.isfinite(evaluate_one(node, params)):
            continue
        smooth = True
        for v in inputs:
            fine = numeric_partial(node, v.name, params, step=1e-6)
            coarse = numeric_partial(node, v.name, params, step=4e-6)
            if not (np.isfinite(fine) and abs(fine) < 1e4 and abs(fine - coarse) <= 1e-5 * (1 + abs(fine))):
                smooth = False
        if smooth:
            points.append(params)
    # Spread the chosen points over the grid.
    return points[:: max(1, len(points) // limit)][:limit]


_DIFFERENTIABLE = sorted(name for name, spec in OPS.items() if not spec.reduction)


@pytest.mark.parametrize("name", _DIFFERENTIABLE)
def test_op_partials_match_differences(name):
    spec = OPS[name]
    inputs = _op_inputs(spec)
    node = build.call(name, *inputs)
    assert node.op is spec
    partials = spec.partials(node)
    assert len(partials) == len(inputs)
    points = _smooth_points(node, inputs)
    assert points, f"no smooth point of {name} on the grid"
    for params in points:
        for v, partial in zip(inputs, partials):
            analytic = 0.0 if partial is None else evaluate_one(partial, params)
            assert_close(
                analytic,
                numeric_partial(node, v.name, params),
                rtol=1e-6,
                message=f"d{name}/d{v.name} at {params}",
            )


@pytest.mark.parametrize("name", _DIFFERENTIABLE)
def test_op_second_derivatives_match_differences(name):
    spec = OPS[name]
    inputs = _op_inputs(spec)
    node = build.call(name, *inputs)
    partials = [build.ZERO if p is None else p for p in spec.partials(node)]
    points = _smooth_points(node, inputs)
    second = [diff(p, inputs) for p in partials]
    for params in points:
        for i, j in itertools.product(range(len(inputs)), repeat=2):
            analytic = evaluate_one(second[i][inputs[j].name], params)
            numeric = numeric_partial(partials[i], inputs[j].name, params)
            assert_close(
                analytic,
                numeric,
                rtol=1e-5,
                atol=1e-5,
                message=f"d2 {name}/d{inputs[i].name} d{inputs[j].name} at {params}",
            )
            if i < j:  # mixed partials are symmetric
                other = evaluate_one(second[j][inputs[i].name], params)
                assert_close(analytic, other, rtol=1e-9, message=f"{name} mixed partials")


@pytest.mark.parametrize("exponent", [2.0, 3.0, 0.5, -1.0, -2.5])
def test_pow_with_constant_exponent(exponent):
    f = build.pow_(A, build.const(exponent))
    check_gradient(f, [A], params={"a": 1.7})
    d2 = diff(diff(f, [A])["a"], [A])["a"]
    assert_close(value(d2, {"a": 1.7}), exponent * (exponent - 1) * 1.7 ** (exponent - 2))


# ---------------------------------------------------------------- reductions


def test_least_squares_gradient_is_a_mean_of_the_residual_times_x():
    residual = build.sub(build.add(build.mul(A, X), B), Y)
    f = mean(build.pow_(residual, TWO))
    grads = check_gradient(f, [A, B])
    assert grads["a"].op.reduction and grads["a"].op is ops.MEAN
    two_r = build.mul(TWO, residual)
    assert grads["a"] is mean(build.mul(X, two_r))
    assert grads["b"] is mean(two_r)


def test_reduction_inside_a_per_row_output():
    # a*x + mean(a*x): per row, d/da = x + mean(x)
    f = build.add(build.mul(A, X), mean(build.mul(A, X)))
    grads = check_gradient(f, [A, X])
    assert grads["a"] is build.add(X, mean(X))
    assert_close(value(grads["a"]), COLUMNS["x"] + COLUMNS["x"].mean())


def test_per_row_factor_outside_a_reduction():
    # x * mean(a*x): the reduction's adjoint x is per row and stays outside it.
    f = build.mul(X, mean(build.mul(A, X)))
    grads = check_gradient(f, [A, X])
    assert grads["a"] is build.mul(X, mean(X))


def test_sum_of_a_scalar_is_n_times_it():
    grads = check_gradient(total(A), [A])
    assert grads["a"] is total(build.ONE)
    assert value(grads["a"]) == 4.0
    assert value(diff(total(build.mul(A, B)), [A])["a"]) == pytest.approx(4 * PARAMS["b"])


def test_mean_of_a_column_times_a_parameter():
    f = build.mul(mean(X), A)
    grads = check_gradient(f, [A, X])
    assert grads["a"] is mean(X)
    assert_close(value(grads["x"]), np.full(4, PARAMS["a"] / 4))


def test_nested_reductions():
    centered = build.sub(build.mul(A, X), mean(build.mul(A, X)))
    variance = mean(build.pow_(centered, TWO))
    check_gradient(variance, [A, X])
    # a sum over a term containing a mean, and a mean of a mean-shifted sum
    f = total(build.mul(build.call("sin", build.mul(B, X)), mean(build.mul(A, build.pow_(X, TWO)))))
    check_gradient(f, [A, B, X])
    g = mean(
        build.call(
            "tanh", build.add(build.mul(A, X), total(build.mul(B, build.call("exp", build.mul(A, Z)))))
        )
    )
    check_gradient(g, [A, B, X, Z])
    h = build.mul(X, total(build.mul(A, build.mul(X, mean(build.mul(B, X))))))
    check_gradient(h, [A, B, X])


def test_per_row_node_shared_by_a_sum_and_a_mean():
    u = build.call("tanh", build.add(build.mul(A, X), B))
    f = build.add(mean(build.pow_(build.sub(u, Y), TWO)), build.mul(C, total(build.pow_(u, TWO))), u)
    check_gradient(f, [A, B, C, X])
    check_gradient(mean(f), [A, B, C, X])


def test_reductions_of_one_kind_are_built_once():
    # mean(u) + mean(u^2) + ... + sum(sin(u)): contributions are summed before
    # they are reduced, so u's adjoint has one part per kind of reduction and
    # each parameter gets one mean and one sum.
    u = build.call("tanh", build.add(build.mul(A, X), B))
    means = [mean(build.pow_(u, build.const(k))) for k in range(1, 6)]
    f = build.add(*means, total(build.call("sin", u)))
    grads = check_gradient(f, [A, B])
    forward = set(graph.toposort([f]))
    built = [n for n in graph.toposort(grads.values()) if n not in forward]
    reductions = sorted(n.op.name for n in built if not n.is_leaf and n.op.reduction)
    assert reductions == ["mean", "mean", "sum", "sum"]
    assert len(built) <= len(forward)


def test_mean_of_a_per_row_and_scalar_mix_without_data():
    # No data: one row; a per-row variable bound to a number.
    f = mean(build.mul(A, build.pow_(X, TWO)))
    grads = diff(f, [A, X])
    assert evaluate_one(grads["a"], {"a": 2.0, "x": 3.0}) == 9.0
    assert evaluate_one(grads["x"], {"a": 2.0, "x": 3.0}) == 12.0


def _no_other_rows(*nodes):
    """No node of ``nodes`` keeps the bound rows reverse mode reads row reductions over."""
    for n in graph.toposort(list(nodes)):
        assert OTHER_ROWS not in n.indices and n.axis is not OTHER_ROWS and OTHER_ROWS not in n.var_axes


def _per_row_outputs():
    """Per-row outputs whose row reductions read every row: x*sum(a*x), means
    under a per-row factor and not, one node under two reductions, nested means."""
    u = build.call("tanh", build.mul(A, X))
    return [
        build.mul(X, total(build.mul(A, X))),
        build.sub(build.add(build.mul(B, X), mean(u)), build.mul(Y, mean(build.pow_(u, TWO)))),
        build.mul(build.sub(X, mean(build.mul(A, X))), mean(build.mul(X, mean(build.mul(B, X))))),
        build.div(build.sub(u, mean(u)), build.call("sqrt", mean(build.pow_(build.sub(u, mean(u)), TWO)))),
    ]


@pytest.mark.parametrize("case", range(4))
def test_per_row_output_row_reductions_read_other_rows(case):
    # d out_i/d a per row, and for a column the Jacobian's diagonal d out_i/d x_i
    output = _per_row_outputs()[case]
    grads = check_gradient(output, [A, B, X])
    _no_other_rows(*grads.values())
    check_adjoints(output)
    table = hessian(output, [A, B, X])
    _no_other_rows(*(entry for row in table.values() for entry in row.values()))
    for first, second in itertools.product([A, B, X], repeat=2):
        numeric = numeric_partial(grads[first.name], second.name, PARAMS, COLUMNS)
        assert_close(value(table[first.name][second.name]), numeric, rtol=1e-5, atol=1e-7)


def test_sum_of_a_value_the_same_in_every_row_is_n_times_it():
    # sum(log(r) + y): the log(r) term is the same in every row, so d/dr is n/r
    r = graph.var("r")
    f = total(build.add(build.call("log", r), Y))
    grads = check_gradient(f, [r], params={"r": 1.5})
    assert grads["r"] is build.mul(build.div(build.ONE, r), total(build.ONE))


@pytest.mark.parametrize(
    "program",
    [
        "j in 1:3; sum[j](w[j] + c)^2",  # c is summed over j with w
        "j in 1:3; mean[j](w[j]*c + c^2)",  # c^2 is the same for every j: its mean is itself
        "j in 1:2; k in 1:3; sum[j](sum[k](W[k,j] + c)*c)",  # over two indices, c lacks both
        "k in 1:3; logsumexp[k](v[k] + c)^2 + sum[k](v[k]*c)",
        "j in 1:3; mean(sum[j](w[j]*y + c)^2 + c*y)",  # rows and j: c lacks both
    ],
)
def test_an_operand_lacking_the_reduced_index_is_summed_over_it(program):
    f = exprgrad.parse(program)
    values = {
        "c": 0.7,
        "w": [0.1, -0.2, 0.3],
        "v": [0.1, -0.2, 0.3],
        "W": [[0.1, 0.2], [0.3, 0.4], [0.5, -0.6]],
    }
    values = {name: v for name, v in values.items() if name in f.params}
    data = {name: np.linspace(-1, 1, 4) + k for k, name in enumerate(f.columns)}
    for mode in ("reverse", "forward"):
        wrt = [n for n in graph.variables([f.output]) if not n.per_row]
        assert all(
            diff(f.output, wrt, mode=mode)[n.name].indices == n.var_axes for n in wrt if not n.var_axes
        )
    results = f.check(values, data or None)
    assert results and all(r.ok for r in results), [(r.name, r.status) for r in results]


# ---------------------------------------------------------------- random expressions

_LEAVES = [A, B, C, X, Z, build.const(0.5), build.const(-1.5), build.named_const("pi")]
_PROBE = np.linspace(-3, 3, 25)


def _squashers():
    """Wrappers that put any value into a domain: as is, (-0.5, 0.5), (1, 2)."""
    return [
        lambda u: u,
        lambda u: build.mul(build.const(0.5), build.call("tanh", u)),
        lambda u: build.add(build.const(1.5), build.mul(build.const(0.5), build.call("tanh", u))),
    ]


def _choose_squashers(name):
    """For each input of op ``name``, the first wrapper (in order) that keeps it well-behaved."""
    spec = OPS[name]
    inputs = _op_inputs(spec)
    for choice in itertools.product(_squashers(), repeat=len(inputs)):
        node = build.call(name, *(s(v) for s, v in zip(choice, inputs)))
        derivatives = [node, *diff(node, inputs).values()]
        values = evaluate(
            derivatives, {}, {v.name: _probe_column(len(inputs), i) for i, v in enumerate(inputs)}
        )
        if all(np.all(np.isfinite(v)) and np.max(np.abs(v)) < 1e3 for v in values):
            return choice
    raise AssertionError(f"no domain wrapper for {name}")


def _probe_column(count, i):
    grid = np.meshgrid(*([_PROBE] * count), indexing="ij")
    return grid[i].ravel()


_WRAPPERS = {name: _choose_squashers(name) for name in _DIFFERENTIABLE}
random_expression = seeded_graphs(leaves=_LEAVES, functions=_DIFFERENTIABLE, wrappers=_WRAPPERS)


def cases(depth=5):
    """(output, params a b c, columns x z): a random expression and a point to evaluate it at."""
    return seeded_cases(random_expression, depth)


def _well_behaved(output, params, columns):
    """Finite, moderate values everywhere, and no kink op evaluated at its kink."""
    order = graph.toposort([output])
    values = evaluate(order, params, columns)
    by_node = dict(zip(order, values))
    for node, v in zip(order, values):
        if not np.all(np.isfinite(v)) or np.max(np.abs(v)) > 1e4:
            return False
        if not node.is_leaf and node.op.kink:
            args = [np.asarray(by_node[c]) for c in node.inputs]
            if any(np.min(np.abs(arg)) < 1e-2 for arg in args):
                return False
            if len(args) == 2 and np.min(np.abs(args[0] - args[1])) < 1e-2:
                return False
    return True


def _smooth_partial(output, name, params, columns):
    fine = numeric_partial(output, name, params, columns, step=1e-6)
    coarse = numeric_partial(output, name, params, columns, step=3e-6)
    return fine, np.all(np.abs(fine - coarse) <= 1e-5 * (1 + np.abs(fine)))


_RANDOM = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
_ALL_VARS = [A, B, C, X, Z]


@_RANDOM
@given(cases())
def test_random_reverse_mode_matches_differences(case):
    output, params, columns = case
    assume(_well_behaved(output, params, columns))
    grads = diff(output, _ALL_VARS)
    present = {v.name for v in graph.variables([output])}
    for v in _ALL_VARS:
        if v.name not in present:
            assert grads[v.name] is build.ZERO
            continue
        numeric, smooth = _smooth_partial(output, v.name, params, columns)
        assume(smooth)
        assert_close(
            evaluate_one(grads[v.name], params, columns),
            numeric,
            rtol=1e-4,
            atol=1e-5,
            message=f"d/d{v.name} {show(output)}",
        )


@_RANDOM
@given(cases())
def test_random_forward_mode_matches_reverse_mode(case):
    output, params, columns = case
    assume(_well_behaved(output, params, columns))
    wrt = [A, B, C]
    reverse = diff(output, wrt)
    forward = diff(output, wrt, mode="forward")
    for v in wrt:
        assert_close(
            evaluate_one(forward[v.name], params, columns),
            evaluate_one(reverse[v.name], params, columns),
            rtol=1e-9,
            atol=1e-12,
            message=f"forward vs reverse d/d{v.name} {show(output)}",
        )


@settings(_RANDOM, max_examples=30)
@given(cases(depth=4))
def test_random_outputs_with_row_reductions_match_differences(case):
    # e*mean(e*x) + sum(tanh(e)) - mean(e) per row, and its mean: row reductions
    # inside a per-row output read the other rows, inside a scalar one the rows
    e, params, columns = case
    assume(_well_behaved(e, params, columns))
    per_row = build.sub(build.add(build.mul(e, mean(build.mul(e, X))), total(build.call("tanh", e))), mean(e))
    for output in (per_row, mean(build.mul(per_row, Z))):
        assume(_well_behaved(output, params, columns))
        grads = diff(output, _ALL_VARS)
        _no_other_rows(*grads.values())
        for v in _ALL_VARS:
            numeric, smooth = _smooth_partial(output, v.name, params, columns)
            assume(smooth)
            assert_close(
                evaluate_one(grads[v.name], params, columns),
                numeric,
                rtol=1e-4,
                atol=1e-5,
                message=f"d/d{v.name} {show(output)}",
            )


@settings(_RANDOM, max_examples=30)
@given(cases(depth=3))
def test_random_hessian_is_symmetric_and_matches_differences_of_the_gradient(case):
    output, params, columns = case
    assume(_well_behaved(output, params, columns))
    wrt = [A, B, X]
    gradient = diff(output, wrt)
    table = hessian(output, wrt)
    for first, second in itertools.product(wrt, repeat=2):
        entry = table[first.name][second.name]
        assert entry is table[second.name][first.name]
        analytic = evaluate_one(entry, params, columns)
        numeric, smooth = _smooth_partial(gradient[first.name], second.name, params, columns)
        assume(smooth)
        assert_close(
            analytic, numeric, rtol=1e-4, atol=1e-5, message=f"d2/d{first.name}d{second.name} {show(output)}"
        )
        # built independently the other way round, the value is the same
        other = diff(gradient[second.name], [first])[first.name]
        assert_close(
            analytic, evaluate_one(other, params, columns), rtol=1e-7, atol=1e-9, message="Hessian symmetry"
        )


def test_backend_evaluator_agrees_on_random_gradients():
    checked = 0
    for seed in range(80):
        rng = np.random.default_rng(seed)
        output = random_expression(rng, 5)
        params = {k: round(float(rng.uniform(-1.5, 1.5)), 3) for k in "abc"}
        columns = {k: np.round(rng.uniform(-1.5, 1.5, 3), 3) for k in "xz"}
        if not _well_behaved(output, params, columns):
            continue
        grads = list(diff(output, _ALL_VARS).values())
        theirs = backend.evaluate(grads, params, columns)
        ours = evaluate(grads, params, columns)
        for got, expected in zip(theirs, ours):
            assert_close(got, expected, rtol=1e-9, atol=1e-12, message=f"seed {seed}")
        checked += 1
    assert checked > 50


# ---------------------------------------------------------------- modes, errors, hessian, jacobian


def test_disconnected_variable_is_zero_or_an_error_when_strict():
    f = build.mul(A, build.call("sin", B))
    assert diff(f, [C])["c"] is build.ZERO
    assert diff(f, [C], mode="forward")["c"] is build.ZERO
    with pytest.raises(DisconnectedError, match="'c'"):
        diff(f, [A, C], strict=True)
    # reached only through a flat op: connected, derivative 0
    assert diff(build.call("sign", A), [A], strict=True)["a"] is build.ZERO


def test_mode_and_wrt_are_checked():
    with pytest.raises(OptionError, match="sideways"):
        diff(A, [A], mode="sideways")
    with pytest.raises(OptionError, match="data column"):
        diff(mean(X), [X], mode="forward")
    with pytest.raises(TypeError):
        diff(A, [build.mul(A, B)])


def test_derivative_of_a_variable_itself_is_one():
    assert diff(A, [A])["a"] is build.ONE
    assert diff(X, [X, A])["x"] is build.ONE
    assert diff(X, [X], mode="reverse", strict=True)["x"] is build.ONE


def test_results_keep_the_order_of_wrt_and_count_repeats_once():
    f = build.mul(A, B, C)
    assert list(diff(f, [C, A, C, B])) == ["c", "a", "b"]


def test_hessian_of_least_squares():
    f = mean(build.pow_(build.sub(build.add(build.mul(A, X), B), Y), TWO))
    table = hessian(f, [A, B])
    x = COLUMNS["x"]
    assert_close(value(table["a"]["a"]), 2 * np.mean(x * x))
    assert_close(value(table["a"]["b"]), 2 * np.mean(x))
    assert_close(value(table["b"]["b"]), 2.0)
    assert table["b"]["a"] is table["a"]["b"]
    assert list(table) == ["a", "b"] and list(table["b"]) == ["a", "b"]


def test_jacobian_of_a_residual_is_per_row():
    residual = build.sub(build.mul(A, build.call("exp", build.mul(B, X))), Y)
    columns = jacobian(residual, [A, B])
    x = COLUMNS["x"]
    assert_close(value(columns["a"]), np.exp(PARAMS["b"] * x))
    assert_close(value(columns["b"]), PARAMS["a"] * x * np.exp(PARAMS["b"] * x))
    assert not any(n.op.reduction for n in graph.toposort(columns.values()) if not n.is_leaf)


# ---------------------------------------------------------------- adjoints of every node


def cut(output, node, name="cut_"):
    """``output`` with ``node`` replaced by a fresh variable (per row if the node is)."""
    leaf = graph.var(name, per_row=node.per_row)
    rebuilt = {}
    for n in graph.toposort([output]):
        rebuilt[n] = leaf if n is node else build.rebuild(n, tuple(rebuilt[c] for c in n.inputs))
    return rebuilt[output], leaf


def numeric_adjoint(output, node, params=PARAMS, columns=COLUMNS, step=None):
    """d output/d node by central differences: the node cut out and moved (row by row if per row)."""
    cut_output, leaf = cut(output, node)
    at = evaluate_one(node, params, columns)
    if node.per_row:
        return numeric_partial(cut_output, leaf.name, params, {**columns, leaf.name: at}, step=step)
    return numeric_partial(cut_output, leaf.name, {**params, leaf.name: at}, columns, step=step)


def check_adjoints(output, params=PARAMS, columns=COLUMNS):
    """Every non-constant node's adjoint against differences; the variables' against diff."""
    order = graph.toposort([output])
    found = adjoints(output)
    assert list(found) == order
    assert found[output] is build.ONE
    for v in graph.variables([output]):
        assert found[v] is diff(output, [v])[v.name]
    for node in order:
        if not node.is_const:
            assert_close(
                evaluate_one(found[node], params, columns),
                numeric_adjoint(output, node, params, columns),
                rtol=1e-5,
                atol=1e-7,
                message=f"d/d[{show(node)}] {show(output)} = {show(found[node])}",
            )
    return found


def test_adjoint_of_a_column_minus_its_mean_is_the_jacobian_diagonal():
    # out_i = x_i - mean(x): d out_i/d x_i = 1 - 1/n, d out_i/d mean(x) = -1.
    f = build.sub(X, mean(X))
    found = check_adjoints(f)
    assert_close(value(found[X]), 1 - 1 / 4)
    assert_close(value(found[mean(X)]), -1.0)
    assert found[X] is diff(f, [X])["x"]


def test_adjoints_of_inner_per_row_nodes_under_reductions():
    u = build.mul(A, X)
    check_adjoints(build.sub(u, mean(u)))  # per-row output, u read directly and under the mean
    centered = build.sub(X, mean(X))
    check_adjoints(build.div(centered, build.call("sqrt", mean(build.pow_(centered, TWO)))))  # standardized x
    check_adjoints(
        build.mul(X, total(build.mul(A, build.mul(X, mean(build.mul(B, X))))))
    )  # per-row factor outside
    check_adjoints(mean(build.pow_(build.sub(u, mean(u)), TWO)))  # scalar output: d out/d u_i
    tanh = build.call("tanh", build.add(u, B))
    check_adjoints(
        build.add(mean(build.pow_(build.sub(tanh, Y), TWO)), build.mul(C, total(build.pow_(tanh, TWO))), tanh)
    )


def test_adjoints_of_chosen_nodes_and_of_unreached_ones():
    u = build.mul(A, X)
    f = build.add(build.call("sign", u), build.mul(B, mean(u)))
    found = adjoints(f, [B, C, u])
    assert list(found) == [B, C, u]
    assert found[C] is build.ZERO  # not in the graph
    assert found[B] is mean(u)
    assert_close(value(found[u]), np.full(4, PARAMS["b"] / 4))  # the sign path adds nothing
    assert adjoints(build.call("sign", A))[A] is build.ZERO


@settings(_RANDOM, max_examples=30)
@given(cases(depth=4))
def test_random_adjoints_of_every_node_match_differences(case):
    output, params, columns = case
    assume(_well_behaved(output, params, columns))
    found = adjoints(output)
    for v in graph.variables([output]):
        assert found[v] is diff(output, [v])[v.name]
    for node in graph.toposort([output]):
        if node.is_const:
            continue
        fine = numeric_adjoint(output, node, params, columns, step=1e-6)
        coarse = numeric_adjoint(output, node, params, columns, step=3e-6)
        assume(np.all(np.abs(fine - coarse) <= 1e-5 * (1 + np.abs(fine))))
        assert_close(
            evaluate_one(found[node], params, columns),
            fine,
            rtol=1e-4,
            atol=1e-5,
            message=f"d/d[{show(node)}] {show(output)}",
        )


# ---------------------------------------------------------------- size and depth


def chain(depth):
    f = X
    for k in range(depth):
        f = build.call("sin", build.add(build.mul(f, X), graph.var(f"c[{k}]")))
    return f


def product(count):
    return build.mul(*(graph.var(f"u[{i}]") for i in range(count)))


def product_of_terms(count):
    return build.mul(*(build.sub(A, graph.var(f"c[{i}]")) for i in range(count)))


def least_squares(terms):
    theta = [graph.var(f"theta[{i}]") for i in range(2 * terms)]
    model = build.add(
        *(
            build.mul(theta[i], build.call("exp", build.neg(build.mul(theta[i + terms], X))))
            for i in range(terms)
        )
    )
    return mean(build.pow_(build.sub(model, Y), TWO))


def network(units):
    hidden = [
        build.mul(
            graph.var(f"v[{j}]"),
            build.call("tanh", build.add(build.mul(graph.var(f"w[{j}]"), X), graph.var(f"c[{j}]"))),
        )
        for j in range(units)
    ]
    return mean(build.pow_(build.sub(build.add(*hidden, B), Y), TWO))


def gradient_ratio(f):
    wrt = [v for v in graph.variables([f]) if not v.per_row]
    grads = diff(f, wrt)
    return graph.count_nodes([f, *grads.values()]) / graph.count_nodes([f])


@pytest.mark.parametrize(
    "family, size", [(chain, 10), (least_squares, 8), (network, 8), (product_of_terms, 12)]
)
def test_gradient_is_at_most_three_times_the_function(family, size):
    assert gradient_ratio(family(size)) <= 3.0


def test_gradient_of_an_n_ary_product_of_leaves_is_linear():
    # prefix and suffix products: about 3 nodes per factor on top of the factors
    # (all-but-one products need 3n - 6 multiplications without division).
    for count in (10, 40):
        f = product(count)
        grads = diff(f, graph.variables([f]))
        assert graph.count_nodes([f, *grads.values()]) <= 4 * (count + 1)


def test_size_families_are_differentiated_correctly():
    params = {v.name: 0.1 * (i % 7) - 0.3 for i, v in enumerate(graph.variables([least_squares(3)]))}
    check_gradient(
        least_squares(3), [v for v in graph.variables([least_squares(3)]) if not v.per_row], params=params
    )
    net = network(3)
    params = {v.name: 0.2 * (i % 5) - 0.4 for i, v in enumerate(graph.variables([net]))}
    check_gradient(net, [v for v in graph.variables([net]) if not v.per_row], params=params)
    f = product(6)
    params = {f"u[{i}]": 0.5 + 0.1 * i for i in range(6)}
    check_gradient(f, graph.variables([f]), params=params, columns={})


def test_ten_thousand_deep_chain_without_recursion():
    depth = 10_000
    f = A
    for _ in range(depth):
        f = build.call("sin", f)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # nothing in diff may recurse on depth
    try:
        grads = diff(f, [A])
        forward = diff(f, [A], mode="forward")
        second = hessian(build.call("sin", build.call("sin", A)), [A])
    finally:
        sys.setrecursionlimit(limit)
    assert graph.count_nodes([f, grads["a"]]) <= 3 * graph.count_nodes([f])
    got = evaluate_one(grads["a"], {"a": 0.3})
    assert got == pytest.approx(evaluate_one(forward["a"], {"a": 0.3}))
    assert got == pytest.approx(numeric_partial(f, "a", {"a": 0.3}), rel=1e-6)
    assert evaluate_one(second["a"]["a"], {"a": 0.3}) == pytest.approx(
        numeric_partial(diff(build.call("sin", build.call("sin", A)), [A])["a"], "a", {"a": 0.3}), rel=1e-6
    )


# ---------------------------------------------------------------- deep chains of every op, end to end


def _frame_depth() -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def _chain_slots():
    """(op name, slot) for every op and every operand slot a chain can run through."""
    for name, spec in OPS.items():
        count = 2 if spec.arity == VARIADIC else spec.arity
        for slot in range(count):
            if slot not in spec.orders:
                yield name, slot


def _deep_chain(name: str, slot: int, depth: int) -> graph.Node:
    """``depth`` applications of op ``name``, the chain entering at operand ``slot``."""
    spec = OPS[name]
    count = 2 if spec.arity == VARIADIC else spec.arity
    node = A
    for _ in range(depth):
        inner = build.mul(X, node) if spec.reduction else node  # mean(x*...): a reduction per step
        args = [build.ONE if i in spec.orders else B for i in range(count)]
        args[slot] = inner
        node = build.call(name, *args)
    return node


# A few ops run in the quick suite, every op and slot with the slow tests.
_QUICK_CHAINS = {("pow", 0), ("pow", 1), ("sin", 0), ("add", 0), ("div", 1), ("mean", 0)}


@pytest.mark.parametrize(
    ("name", "slot"),
    [
        pytest.param(name, slot, marks=() if (name, slot) in _QUICK_CHAINS else pytest.mark.slow)
        for name, slot in _chain_slots()
    ],
)
def test_deep_chains_of_every_op_through_diff_simplify_and_every_printer(name, slot):
    from exprgrad.backends.latex import to_latex, to_latex_many
    from exprgrad.backends.printing import to_text, to_text_many
    from exprgrad.backends.python_source import to_python
    from exprgrad.errors import LimitError
    from exprgrad.passes.simplify import simplify_many

    f = _deep_chain(name, slot, 400)
    limit = sys.getrecursionlimit()
    # Far below the chain's depth: any walk that recursed on depth would fail.
    sys.setrecursionlimit(_frame_depth() + 250)
    try:
        raw = diff(f, [A, B])
        simplified = dict(zip(raw, simplify_many(list(raw.values()))))
        to_text_many(simplified)
        to_latex_many(simplified)
        source = to_python({"f": f, **simplified})
        for printer in (to_text, to_latex):  # inline: may be legitimately too long, never a crash
            try:
                printer(simplified["a"])
            except LimitError:
                pass
    finally:
        sys.setrecursionlimit(limit)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    params = {"a": 0.3, "b": 0.7}
    with np.errstate(all="ignore"):
        got = namespace["f"](params, COLUMNS)
        expected = evaluate([f, *simplified.values()], params, COLUMNS)
    for key, want in zip(["f", *simplified], expected):
        np.testing.assert_allclose(
            np.broadcast_to(got[key], np.shape(want)), want, rtol=1e-9, atol=1e-300, equal_nan=True
        )
