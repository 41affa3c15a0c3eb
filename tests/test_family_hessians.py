"""Hessians between index families: the Kronecker delta of two indices, through every stage.

A family used outside every reduction over its index (the network's b[k]
inside h[k], v[k] beside h[k]) has second derivatives that are nonzero only
where two indices agree: d2J/dW[k,j]dv[k2] = 2*(k == k2)*mean(...) + ...
Each block is checked against the same program unrolled into scalar members
(to 1e-12, random points and data, family sizes including 1) and against
central differences of the gradient through the numpy evaluator; its
printed text, LaTeX and Python are checked to mean the same function.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    J,
    K,
    close,
    data,
    entry_env,
    evaluate,
    members_of,
    network,
    point,
    scalar_inside,
    softmax,
    unroll,
)

import exprgrad
from exprgrad import build, graph, ops
from exprgrad.backends import printing
from exprgrad.backends.binding import arrange, written_axes
from exprgrad.backends.printing import to_text
from exprgrad.cli import cli
from exprgrad.errors import EvaluationError, NameResolutionError
from exprgrad.passes.diff import hessian
from exprgrad.passes.simplify import simplify

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ROOT / "samples" / "families"
K2 = graph.index("k2")

GRAPH_MODELS = {"network": network, "softmax": softmax, "scalar_inside": scalar_inside}
SIZES = [{J: 1, K: 1}, {J: 2, K: 1}, {J: 1, K: 3}, {J: 3, K: 2}]


# ---------------------------------------------------------------- graphs against the unrolled program


@pytest.mark.parametrize("model", sorted(GRAPH_MODELS))
@pytest.mark.parametrize("case", range(len(SIZES)))
def test_every_hessian_block_equals_the_unrolled_programs_hessian(model, case):
    sizes = SIZES[case]
    cost, variables = GRAPH_MODELS[model]()
    table = hessian(cost, variables)
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(variables, sizes, case)
    names = [name for v in variables for _, name in members_of(v, sizes)]
    scalar = hessian(scalar_cost, [graph.var(n) for n in names])
    deltas = 0
    for first in variables:
        for second in variables:
            raw = table[first.name][second.name]
            for entry in (raw, simplify(raw)):
                deltas += any(n.op is graph.DELTA for n in graph.toposort([entry]))
                for env1, name1 in members_of(first, sizes):
                    for env2, name2 in members_of(second, sizes):
                        env = entry_env(first, second, env1, env2)
                        assert set(entry.indices) <= set(env)
                        got, want = evaluate(
                            [unroll(entry, env, sizes), scalar[name1][name2]], params, columns
                        )
                        close(got, want)
    assert deltas  # the blocks the old refusal was about are among them


def test_a_delta_is_a_leaf_of_two_indices_interned_and_renamed():
    d = graph.delta(K, K2)
    assert d is graph.delta(K2, K) and d.is_leaf and d.indices == (K, K2)
    assert graph.delta(K, K) is build.ONE  # the labels of one index always agree
    assert build.rename(d, {K2: K}) is build.ONE
    assert build.rename(d, {K2: graph.index("m")}) is graph.delta(K, graph.index("m"))
    with pytest.raises(ValueError):
        graph.delta(K, graph.ROWS)


def test_simplify_laws_of_the_delta():
    d = graph.delta(K, K2)
    b, h = graph.var("b", (K2,)), graph.var("h", (K,))
    # sum[k2](delta(k,k2)*e) = e with k2 read as k; mean[k2] divides by size(k)
    assert simplify(graph.apply(ops.SUM, (build.mul(d, b, h),), axis=K2)) is simplify(
        build.mul(graph.var("b", (K,)), h)
    )
    mean = simplify(graph.apply(ops.MEAN, (build.mul(d, b),), axis=K2))
    assert to_text(mean) == "b[k]/sum[k](1)"
    # delta^2 = delta, and a product reads the delta's first index for its second
    assert to_text(simplify(build.mul(d, d, b))) == "(k == k2)*b[k]"
    assert to_text(simplify(build.mul(build.const(3), b, d))) == "3*(k == k2)*b[k]"


# ---------------------------------------------------------------- the evaluator against finite differences


NETWORK = "k in 1:{K}\nh[k] = tanh(sum[j](W[k,j]*x[j]) + b[k])\nmean((sum[k](v[k]*h[k]) + c - y)^2)"
SOFTMAX = "z[k] = sum[j](W[k,j]*x[j]) + b[k]\nmean(logsumexp[k](z[k]) - sum[k](Y[k]*z[k]))"


def _program(model: str, nj: int, nk: int, seed: int):
    rng = np.random.default_rng(seed)
    rows = 7
    columns = {f"x{j}": rng.normal(size=rows) for j in range(1, nj + 1)}
    params = {"W": 0.7 * rng.normal(size=(nk, nj)), "b": 0.5 * rng.normal(size=nk)}
    if model == "network":
        text = NETWORK.format(K=nk)
        columns["y"] = rng.normal(size=rows)
        params |= {"v": rng.normal(size=nk), "c": float(rng.normal())}
    else:
        text = SOFTMAX
        classes = rng.integers(0, nk, size=rows)
        columns |= {f"Y{k}": (classes == k - 1).astype(float) for k in range(1, nk + 1)}
    return exprgrad.parse(text, columns=list(columns)), params, columns


@pytest.mark.parametrize("model", ["network", "softmax"])
@pytest.mark.parametrize(("nj", "nk", "seed"), [(1, 1, 0), (2, 1, 1), (1, 2, 2), (3, 3, 3)])
def test_evaluated_blocks_equal_central_differences_of_the_gradient(model, nj, nk, seed):
    function, params, columns = _program(model, nj, nk, seed)
    gradient = function.grad()
    table = function.hessian()
    step = 1e-5
    for first, row in table.items():
        a_shape = np.shape(params[first])
        for second, block in row.items():
            b_shape = np.shape(params[second])
            got = block.evaluate(columns, **params)  # in the written axes: a's, then b's
            assert np.shape(got) == (*a_shape, *b_shape), (first, second)
            for q in itertools.product(*[range(n) for n in b_shape]):
                sides = []
                for sign in (1, -1):
                    moved = {name: np.array(value, dtype=float, copy=True) for name, value in params.items()}
                    if b_shape:
                        moved[second][q] += sign * step
                    else:
                        moved[second] = float(moved[second]) + sign * step
                    g = gradient[first]
                    sides.append(np.broadcast_to(g.evaluate(columns, **moved), a_shape))
                numeric = (sides[0] - sides[1]) / (2 * step)
                analytic = got[(Ellipsis, *q)] if q else got
                assert np.allclose(analytic, numeric, rtol=1e-6, atol=1e-7), (first, second, q)


@pytest.mark.parametrize("model", ["network", "softmax"])
@pytest.mark.parametrize(("nj", "nk", "seed"), [(1, 1, 4), (2, 3, 5)])
def test_evaluated_blocks_equal_the_unrolled_scalar_hessian(model, nj, nk, seed):
    # the numpy evaluator (identity arrays for the deltas, k2 sized by k) against
    # the unrolled scalar program's Hessian, member by member, to 1e-12
    function, params, columns = _program(model, nj, nk, seed)
    sizes = {J: nj, K: nk}
    variables = [v for v in graph.variables([function.output]) if not v.per_row]
    variables = list({v.name: v for v in variables}.values())
    scalar_cost = unroll(function.output, {}, sizes)
    names = [name for v in variables for _, name in members_of(v, sizes)]
    scalar = hessian(scalar_cost, [graph.var(n) for n in names])
    flat = {}
    for v in variables:
        for env, name in members_of(v, sizes):
            labels = tuple(env[i] - 1 for i in v.var_axes)
            flat[name] = float(np.asarray(params[v.name])[labels]) if labels else float(params[v.name])
    unrolled_columns = {(f"{n[0]}[{n[1:]}]" if n[0] in "xY" else n): col for n, col in columns.items()}
    for first, row in function.hessian().items():
        for second, block in row.items():
            shape = (*np.shape(params[first]), *np.shape(params[second]))
            got = block.evaluate(columns, **params)  # in the written axes: a's, then b's
            assert np.shape(got) == shape, (first, second)
            v1 = next(v for v in variables if v.name == first)
            v2 = next(v for v in variables if v.name == second)
            for env1, name1 in members_of(v1, sizes):
                for env2, name2 in members_of(v2, sizes):
                    (want,) = evaluate([scalar[name1][name2]], flat, unrolled_columns)
                    where = tuple(env1[i] - 1 for i in v1.var_axes) + tuple(env2[i] - 1 for i in v2.var_axes)
                    close(got[where] if where else got, want)


def test_a_block_that_only_a_delta_gives_its_second_index_is_sized_by_the_first():
    function = exprgrad.parse("sum[k](b[k]^3)")
    block = function.hessian()["b"]["b"]
    assert str(block) == "6*(k == k2)*b[k]"
    values = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(block.evaluate(b=values), np.diag(6 * values))
    namespace: dict = {}
    exec(compile(block.python(), "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    assert np.array_equal(namespace["f"]({"b": values}), np.diag(6 * values))


# ---------------------------------------------------------------- printing: text, LaTeX, Python


def _network_sample():
    text = (FAMILIES / "network.exprgrad").read_text()
    columns = (FAMILIES / "network.csv").read_text().splitlines()[0].split(",")
    table = np.loadtxt(FAMILIES / "network.csv", delimiter=",", skiprows=1)
    data = {name: table[:, i] for i, name in enumerate(columns)}
    rng = np.random.default_rng(7)
    params = {"W": rng.normal(size=(3, 4)), "b": rng.normal(size=3), "v": rng.normal(size=3), "c": 0.3}
    return exprgrad.parse(text, columns=columns), params, data


def test_printed_network_hessian_reparses_to_the_same_values():
    function, params, data = _network_sample()
    table = function.hessian()
    named = {(a, b): block.output for a, row in table.items() for b, block in row.items()}
    lets, texts = printing.to_text_many(named, names=function.definitions, written=function.written)
    seen = set()
    for key, node in named.items():
        program = printing.program_text(lets, texts[key])
        again = exprgrad.parse(program, columns=list(data), free_indices=True)
        assert again.output.indices == node.indices, program
        want = table[key[0]][key[1]].evaluate(data, **params)  # in the written axes
        have = [i.name for i in node.indices]
        layout = written_axes(
            have, *(tuple(function.families[n].axes) if n in function.families else () for n in key)
        )
        got = arrange(again.evaluate(data, **params), have, layout, np.shape(want))
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        seen.update([key] if "(k == k2)" in program else [])
    blocks = {("W", "W"), ("W", "b"), ("W", "v"), ("b", "b"), ("b", "v")}
    assert seen == blocks | {(b, a) for a, b in blocks}


def test_network_hessian_in_latex_and_python(runner):
    function, params, data = _network_sample()
    block = function.hessian()["b"]["v"]
    assert block.latex().startswith(r"2 \delta_{k k_{2}} ")
    result = runner.invoke(
        cli, ["diff", f"@{FAMILIES}/network.exprgrad", "--order", "2", "--format", "python"]
    )
    assert result.exit_code == 0, result.output
    assert "np.eye(" in result.stdout
    namespace: dict = {}
    exec(compile(result.stdout, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    x = np.column_stack([data[f"x{j}"] for j in range(1, 5)])  # the data family as rows x labels
    values = namespace["derivatives"](params, {"x": x, "y": data["y"]})
    shown = {"W": "W[k,j]", "b": "b[k]", "v": "v[k]", "c": "c"}
    second = {"W": "W[k2,j2]", "b": "b[k2]", "v": "v[k2]", "c": "c"}
    table = function.hessian()
    checked = 0
    for (a, b), entry in [((a, b), e) for a, row in table.items() for b, e in row.items()]:
        label = "d2/dc2" if a == b == "c" else f"d2/d{shown[a]}d{second[b] if b != 'c' else 'c'}"
        if a == "c" and b != "c":
            label = f"d2/dcd{shown[b]}"
        if label in values:
            np.testing.assert_allclose(values[label], entry.evaluate(data, **params), rtol=1e-12, atol=1e-14)
            checked += 1
    assert checked == 10  # the upper triangle, in --wrt order


def test_rendered_delta_is_one_node_labelled_with_its_indices():
    block = exprgrad.parse("sum[k](b[k]^3)").hessian()["b"]["b"]
    dot = block.to_dot()
    assert "δ(k, k2)" in dot and dot.count("δ(") == 1


# ---------------------------------------------------------------- the command line


def test_cli_prints_every_network_block_with_its_delta(runner):
    result = runner.invoke(cli, ["diff", f"@{FAMILIES}/network.exprgrad", "--order", "2"])
    assert result.exit_code == 0, result.output
    lines = {
        line.split(" = ", 1)[0]: line.split(" = ", 1)[1]
        for line in result.stdout.splitlines()
        if " = " in line
    }
    for heading in ("W[k,j]∂W[k2,j2]", "W[k,j]∂b[k2]", "W[k,j]∂v[k2]", "b[k]∂b[k2]", "b[k]∂v[k2]"):
        assert lines[f"∂²/∂{heading}"].count("(k == k2)") == 1, heading
    assert lines["∂²/∂b[k]∂v[k2]"] == "2*(k == k2)*mean((1 - h[k]^2)*t1) + 2*mean(v[k]*t2[k2]*(1 - h[k]^2))"
    for heading in ("∂²/∂W[k,j]∂c", "∂²/∂c∂v[k]", "∂²/∂v[k]∂v[k2]"):
        assert "==" not in lines[heading]


def test_cli_json_hessian_programs_and_values(runner):
    args = ["diff", f"@{FAMILIES}/network.exprgrad", "--order", "2", "--format", "json"]
    result = runner.invoke(cli, [*args, "--data", f"{FAMILIES}/network.csv", "--at", "W=0.1,b=0.2,v=0.3,c=0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "(k == k2)" in report["hessian"]["W"]["v"]
    block = np.array(report["hessian_values"]["b"]["b"])
    assert block.shape == (3, 3) and np.allclose(block, block.T)


def test_newton_fit_of_the_network_reaches_its_minimum(runner, tmp_path):
    truth = json.loads((FAMILIES / "network.truth.json").read_text())
    start = tmp_path / "start.json"
    start.write_text(json.dumps({"params": truth}))
    args = ["fit", str(FAMILIES / "network.csv"), "--cost", f"@{FAMILIES}/network.exprgrad"]
    result = runner.invoke(cli, [*args, "--method", "newton", "--init", f"@{start}", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["converged"] and report["method"] == "newton"
    minimum = json.loads((FAMILIES / "network.minimum.json").read_text())
    for name, value in minimum.items():
        assert report["params"][name] == pytest.approx(value, abs=2e-6), name


def test_nll_standard_errors_of_a_family_cost_use_its_hessian(runner):
    args = ["fit", str(FAMILIES / "softmax.csv"), "--cost", f"@{FAMILIES}/softmax.exprgrad", "--nll"]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"] == "newton"


# ---------------------------------------------------------------- lowering of k == k2


def test_comparison_of_two_indices_lowers_to_a_delta_and_meets_its_sum():
    function = exprgrad.parse("sum[k2]((k == k2)*b[k2]*h[k])", free_indices=True)
    assert to_text(simplify(function.output)) == "b[k]*h[k]"
    function = exprgrad.parse("k in 1:3; sum[k](sum[k2]((k == k2)*b[k]*b[k2]))")
    assert function.params == ["b"]
    assert function.evaluate(b=np.array([1.0, 2.0, 3.0])) == 14.0
    # two plain names compared stay parameters, as they always were
    assert exprgrad.parse("a == b").params == ["a", "b"]


def test_comparing_indices_with_different_ranges_is_an_error_with_a_caret(runner):
    text = "k in 1:3; j in 1:4; sum[k](sum[j]((k == j)*W[k,j]))"
    with pytest.raises(NameResolutionError, match="compares two indices with different ranges"):
        exprgrad.parse(text)
    result = runner.invoke(cli, ["eval", text, "--at", "W=1"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "error: line 1, column 36: (k == j) compares two indices with different ranges"
    )
    assert lines[2].strip() == "^^^^^^"
    # an index used both in a comparison and as a parameter is refused too
    with pytest.raises(NameResolutionError, match="is an index"):
        exprgrad.parse("k in 1:3; sum[k]((k == a)*b[k]) + a")


def test_readme_shows_what_the_network_hessian_prints(runner):
    command = "exprgrad diff @samples/families/network.exprgrad --order 2 --wrt b,v"
    readme = (ROOT / "README.md").read_text()
    shown = readme.split(f"$ {command}\n", 1)[1].split("```", 1)[0]
    args = command.split()[1:]
    args[1] = f"@{FAMILIES}/network.exprgrad"
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == shown


def test_fit_objectives_hessian_matrix_equals_central_differences_of_its_gradient():
    # the blocks flattened into members (W[k,j] by v[k2]: a (k, j, k2) block) in the fit's order
    from exprgrad.fitting.problem import prepare

    problem = prepare(str(FAMILIES / "network.csv"), cost=(FAMILIES / "network.exprgrad").read_text())
    objective = problem.objective
    x = objective.members.random(3)
    matrix = objective.hessian(x)
    step = 1e-5
    numeric = np.empty_like(matrix)
    for q in range(len(x)):
        moved = [np.array(x, dtype=float) for _ in range(2)]
        moved[0][q] += step
        moved[1][q] -= step
        numeric[:, q] = (objective.value_grad(moved[0])[1] - objective.value_grad(moved[1])[1]) / (2 * step)
    assert matrix.shape == (19, 19) and np.allclose(matrix, matrix.T, rtol=1e-12, atol=1e-15)
    assert np.allclose(matrix, numeric, rtol=1e-6, atol=1e-8)


def test_a_printed_block_that_is_only_a_delta_reparses_as_one():
    # -(k == k2) names no family: with free indices, two names compared and used nowhere else are indices
    again = exprgrad.parse("-(k == k2)", free_indices=True)
    assert again.output is build.neg(graph.delta(K, K2)) and again.params == []
    assert exprgrad.parse("-(k == k2)").params == ["k", "k2"]  # without free indices: parameters, as before


def test_a_family_used_under_two_index_names_is_differentiated_once(runner):
    result = runner.invoke(cli, ["diff", "k in 1:3; sum[k](sum[k2](b[k]*b[k2]))", "--order", "2"])
    assert result.exit_code == 0, result.output
    assert len([line for line in result.stdout.splitlines() if line.startswith("∂/∂b")]) == 1
    assert result.stdout.splitlines()[-1].endswith(" = 2")


def test_evaluate_ignores_family_values_the_block_does_not_read():
    function, params, data = _network_sample()
    block = function.hessian()["c"]["c"]
    assert block.evaluate(data, **params) == 2.0  # W, b and v are arrays: not mistaken for columns
    again = exprgrad.parse("2*mean(h[k])", columns=list(data), free_indices=True)
    assert again.evaluate(data, h=np.ones(3), W=np.ones((3, 4))).shape == (3,)


@pytest.mark.parametrize("case", range(len(SIZES)))
def test_hessian_with_a_data_family_equals_the_unrolled_one_per_row(case):
    # d2/dx[j]dW[k,j2] has the delta (x[j] meets W[k,j] outside a reduction): per row, as for a column
    sizes = SIZES[case]
    cost, parameters = network()
    x = graph.var("x", (graph.ROWS, J))
    variables = [x, graph.var("W", (K, J)), graph.var("b", (K,))]
    table = hessian(cost, variables)
    assert graph.delta(J, graph.index("j2")) in graph.toposort([simplify(table["x"]["W"])])
    scalar_cost = unroll(cost, {}, sizes)
    columns, params = data(sizes, case), point(parameters, sizes, case)
    scalar_vars = [graph.var(n, per_row=v.per_row) for v in variables for _, n in members_of(v, sizes)]
    scalar = hessian(scalar_cost, scalar_vars)
    for first in variables:
        for second in variables:
            entry = simplify(table[first.name][second.name])
            for env1, name1 in members_of(first, sizes):
                for env2, name2 in members_of(second, sizes):
                    env = entry_env(first, second, env1, env2)
                    got, want = evaluate([unroll(entry, env, sizes), scalar[name1][name2]], params, columns)
                    close(np.broadcast_to(got, np.shape(want)), want)


def test_a_comparison_of_indices_sized_differently_by_the_values_is_an_evaluation_error(runner, tmp_path):
    function = exprgrad.parse("sum[k](sum[j]((k == j)*W[k,j]))")
    assert function.evaluate(W=np.arange(9.0).reshape(3, 3)) == 12.0  # the trace
    with pytest.raises(
        EvaluationError, match=r"'k' has 3 labels in the values of 'W' but 4 in the comparison"
    ):
        function.evaluate(W=np.ones((3, 4)))
    values = tmp_path / "W.json"
    values.write_text("[[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]")
    result = runner.invoke(cli, ["eval", "sum[k](sum[j]((k == j)*W[k,j]))", "--at", f"W=@{values}"])
    assert result.exit_code == 2
    assert (
        result.output
        == "error: index 'k' has 3 labels in the values of 'W' but 4 in the comparison (j == k)\n"
    )
