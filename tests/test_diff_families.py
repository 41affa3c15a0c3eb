"""Derivatives of index families against the same program unrolled into scalar members.

A family graph (w[j], x[j], sum[j](...)) and its derivative are unrolled by
``unroll``: every reduction over an index becomes the sum (mean, logsumexp)
of its members, each family use the scalar member ``w[2]`` / column ``x[2]``.
The derivative of the family graph, unrolled at labels, must equal the
derivative of the unrolled program with respect to that member, to 1e-12, for
family sizes 1, 2 and 5 at random points over random data.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import (
    ROWS,
    J,
    K,
    R,
    close,
    data,
    entry_env,
    evaluate,
    logistic,
    member,
    members_of,
    network,
    point,
    scalar_inside,
    softmax,
    unroll,
)

from exprgrad import build, graph, ops
from exprgrad.backends.printing import to_text
from exprgrad.cli import cli
from exprgrad.errors import OptionError
from exprgrad.passes.diff import diff, hessian, jacobian
from exprgrad.passes.simplify import simplify


def transposed():
    """W used as W[k,j] and as W[j,k]: both uses count."""
    W, x = graph.var("W", (K, J)), graph.var("x", (R, J))
    Wt = graph.var("W", (J, K))
    first = build.reduce(ops.SUM, build.mul(W, x), J)  # indices (rows, k)
    second = build.reduce(ops.SUM, build.mul(Wt, graph.var("x", (R, K))), K)  # (rows, j)
    body = build.mul(build.call(ops.TANH, first), build.reduce(ops.SUM, build.call(ops.EXP, second), J))
    return build.call(ops.MEAN, build.reduce(ops.SUM, body, K)), [W]


MODELS = {"logistic": logistic, "network": network, "softmax": softmax, "scalar_inside": scalar_inside}


def all_sizes():
    return [{J: n, K: m} for n, m in [(1, 1), (2, 1), (1, 2), (2, 5), (5, 2)]]


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("case", range(len(all_sizes())))
def test_gradient_equals_unrolled_gradient(model, case):
    sizes = all_sizes()[case]
    cost, variables = MODELS[model]()
    gradient = diff(cost, variables)
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(variables, sizes, case)
    for v in variables:
        for form in (gradient[v.name], simplify(gradient[v.name])):
            assert set(form.indices) <= set(v.var_axes)
            for env, name in members_of(v, sizes):
                expected = diff(scalar_cost, [graph.var(name)])[name]
                got, want = evaluate([unroll(form, env, sizes), expected], params, columns)
                close(got, want)


@pytest.mark.parametrize("case", [1, 2, 5])
def test_transposed_uses_of_a_family_both_count(case):
    sizes = {J: case, K: case}  # W[k,j] and W[j,k]: a square family
    cost, (W,) = transposed()
    gradient = diff(cost, [W])["W"]
    assert set(gradient.indices) == {J, K}
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point([W], sizes, case)
    for env, name in members_of(W, sizes):
        expected = diff(scalar_cost, [graph.var(name)])[name]
        got, want = evaluate([unroll(gradient, env, sizes), expected], params, columns)
        close(got, want)


@pytest.mark.parametrize("case", range(len(all_sizes())))
def test_data_family_derivative_is_per_row(case):
    sizes = all_sizes()[case]
    cost, _ = network()
    x = graph.var("x", (R, J))
    derivative = diff(cost, [x])["x"]
    assert set(derivative.indices) == {R, J}
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(network()[1], sizes, case)
    for n in range(1, sizes[J] + 1):
        name = member("x", [n])
        expected = diff(scalar_cost, [graph.var(name, per_row=True)])[name]
        got, want = evaluate([unroll(derivative, {J: n}, sizes), expected], params, columns)
        close(got, want)


def two_families():
    """w[j] and u[j] share j (their Hessian block renames one), q[k] does not."""
    w, u, q = graph.var("w", (J,)), graph.var("u", (J,)), graph.var("q", (K,))
    x, y, c = graph.var("x", (R, J)), graph.var("y", per_row=True), graph.var("c")
    z = build.add(
        c,
        build.reduce(ops.SUM, build.mul(w, x), J),
        build.reduce(ops.SUM, build.mul(u, build.call(ops.EXP, x)), J),
        build.mul(build.reduce(ops.SUM, build.mul(q, graph.var("x", (R, K))), K), y),
    )
    return build.call(ops.MEAN, build.call(ops.OPS["softplus"], build.mul(z, z))), [w, u, q, c]


HESSIAN_MODELS = {"logistic": logistic, "two_families": two_families}


@pytest.mark.parametrize("model", sorted(HESSIAN_MODELS))
@pytest.mark.parametrize("case", range(len(all_sizes())))
def test_hessian_equals_unrolled_hessian(model, case):
    sizes = all_sizes()[case]
    cost, variables = HESSIAN_MODELS[model]()
    table = hessian(cost, variables)
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(variables, sizes, case)
    names = [name for v in variables for _, name in members_of(v, sizes)]
    scalar = hessian(scalar_cost, [graph.var(n) for n in names])
    for first in variables:
        for second in variables:
            entry = simplify(table[first.name][second.name])
            for env1, name1 in members_of(first, sizes):
                for env2, name2 in members_of(second, sizes):
                    env = entry_env(first, second, env1, env2)
                    assert set(entry.indices) <= set(env)
                    got, want = evaluate([unroll(entry, env, sizes), scalar[name1][name2]], params, columns)
                    close(got, want)


def test_logistic_gradient_and_hessian_read_like_the_textbook():
    cost, (w, c) = logistic()
    gradient = diff(cost, [w, c])
    assert to_text(simplify(gradient["w"])) == "mean(x[j]*(sigmoid(c + sum[j](w[j]*x[j])) - y))"
    assert to_text(simplify(gradient["c"])) == "mean(sigmoid(c + sum[j](w[j]*x[j])) - y)"
    second = simplify(hessian(cost, [w])["w"]["w"])
    assert second.indices == (J, graph.index("j2"))
    assert to_text(second).startswith("mean(x[j]*x[j2]*")


def test_network_gradient_is_backpropagation_not_a_sum_with_one_over_n():
    cost, (W, *_) = network()
    text = to_text(simplify(diff(cost, [W])["W"]))
    assert text.startswith("2*mean(v[k]*x[j]*(1 - tanh(")
    assert "sum(1)" not in text and "/" not in text


def test_mean_over_an_index_and_its_sum_law():
    u = graph.var("u", (K,))
    cost = build.reduce(ops.MEAN, build.pow_(u, build.const(2)), K)
    assert to_text(simplify(diff(cost, [u])["u"])) == "2*u[k]/sum[k](1)"
    # sum[k](e/size(k)) -> mean[k](e); factors free of k leave the sum; sum[k](0) -> 0
    a = graph.var("a")
    body = build.div(build.mul(a, build.call(ops.EXP, u)), graph.size(K))
    assert simplify(graph.apply(ops.SUM, (body,), axis=K)) is simplify(
        build.mul(a, build.reduce(ops.MEAN, build.call(ops.EXP, u), K))
    )
    assert simplify(graph.apply(ops.SUM, (build.mul(build.ZERO, u),), axis=K)) is build.ZERO


def test_gradient_graph_does_not_grow_with_the_family():
    cost, variables = network()
    counts = {len(graph.toposort([simplify(d)])) for d in diff(cost, variables).values()}
    assert max(counts) < 40  # one graph whatever the sizes: sizes are bound only at evaluation
    unrolled = unroll(cost, {}, {J: 5, K: 5})
    assert len(graph.toposort([unrolled])) > 4 * len(graph.toposort([cost]))


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("case", range(len(all_sizes())))
def test_forward_mode_tangent_of_a_family_equals_unrolled_gradient(model, case):
    sizes = all_sizes()[case]
    cost, variables = MODELS[model]()
    forward = diff(cost, variables, mode="forward")
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(variables, sizes, case)
    for v in variables:
        tangent = forward[v.name]
        assert set(tangent.indices) <= set(v.var_axes)  # the family's indices
        for env, name in members_of(v, sizes):
            expected = diff(scalar_cost, [graph.var(name)])[name]
            got, want = evaluate([unroll(tangent, env, sizes), expected], params, columns)
            close(got, want)


def test_forward_mode_refuses_members_meeting_outside_a_reduction():
    # sum[j](exp(w[j] + sum[j](w[j]))): member d moves w[d] and the inner sum, two patterns in one add
    w = graph.var("w", (J,))
    cost = build.reduce(ops.SUM, build.call(ops.EXP, build.add(w, build.reduce(ops.SUM, w, J))), J)
    with pytest.raises(OptionError, match="reverse mode"):
        diff(cost, [w], mode="forward")
    assert set(diff(cost, [w])["w"].indices) == {J}


@pytest.mark.parametrize("n", [1, 2, 5])
def test_forward_mode_through_index_reductions(n):
    # a scalar parameter through sum[k], mean[j] and logsumexp[k]: forward equals reverse
    a, Y, x = graph.var("a"), graph.var("Y", (R, K)), graph.var("x", (R, J))
    inner = build.add(build.mul(a, Y), build.reduce(ops.MEAN, build.call(ops.SIN, build.mul(a, x)), J))
    cost = build.call(ops.MEAN, build.add(build.reduce(ops.LSE, inner, K), build.reduce(ops.SUM, inner, K)))
    sizes = {J: n, K: n + 1}
    forward = diff(cost, [a], mode="forward")["a"]
    reverse = diff(cost, [a])["a"]
    expected = diff(unroll(cost, {}, sizes), [a])["a"]
    columns, params = data(sizes, n), {"a": 0.3}
    got, want, scalar = evaluate(
        [unroll(forward, {}, sizes), unroll(reverse, {}, sizes), expected], params, columns
    )
    close(got, scalar)
    close(want, scalar)


EXAMPLES = {
    "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)": [
        "t1 = sigmoid(c + sum[j](w[j]*x[j])) - y",
        "∂/∂c = mean(t1)",
        "∂/∂w[j] = mean(x[j]*t1)",
    ],
    "k in 1:16; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)": [
        "h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k])",
        "t1 = sum[k](v[k]*h[k]) + c - y",
        "∂/∂W[k,j] = 2*mean(v[k]*x[j]*(1 - h[k]^2)*t1)",
        "∂/∂b[k] = 2*mean(v[k]*(1 - h[k]^2)*t1)",
        "∂/∂c = 2*mean(t1)",
        "∂/∂v[k] = 2*mean(h[k]*t1)",
    ],
}


@pytest.mark.parametrize("program", sorted(EXAMPLES))
def test_cli_prints_one_line_per_family(runner, program):
    result = runner.invoke(cli, ["diff", program])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == EXAMPLES[program]


def test_cli_hessian_between_families(runner):
    result = runner.invoke(
        cli, ["diff", "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)", "--order", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "∂²/∂w[j]∂w[j2] = mean(x[j]*x[j2]*sigmoid(-z)*sigmoid(z))" in result.output.splitlines()
    network = "h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"
    result = runner.invoke(cli, ["diff", network, "--order", "2"])
    assert result.exit_code == 0, result.output
    assert "∂²/∂b[k]∂v[k2] = 2*(k == k2)*mean((1 - h[k]^2)*t1) + " in result.output


@pytest.mark.parametrize("case", range(len(all_sizes())))
def test_jacobian_of_a_per_row_residual_with_respect_to_families(case):
    # the residual of the network per row: d r_i/d W[k,j] has rows, k and j
    sizes = all_sizes()[case]
    W, b, v = graph.var("W", (K, J)), graph.var("b", (K,)), graph.var("v", (K,))
    x, c, y = graph.var("x", (R, J)), graph.var("c"), graph.var("y", per_row=True)
    h = build.call(ops.TANH, build.add(build.reduce(ops.SUM, build.mul(W, x), J), b))
    residual = build.sub(build.add(build.reduce(ops.SUM, build.mul(v, h), K), c), y)
    columns = jacobian(residual, [W, b, v, c])
    scalar = unroll(residual, {}, sizes)
    data_, params = data(sizes, case), point([W, b, v, c], sizes, case)
    for p in (W, b, v, c):
        assert set(columns[p.name].indices) <= {R, *p.var_axes}
        for env, name in members_of(p, sizes):
            expected = jacobian(scalar, [graph.var(name)])[name]
            got, want = evaluate([unroll(columns[p.name], env, sizes), expected], params, data_)
            close(np.broadcast_to(got, (ROWS,)), np.broadcast_to(want, (ROWS,)))
