"""Index families: indices on graph nodes, reductions over an index, renaming, lowering."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from exprgrad import build, graph, ops, parse
from exprgrad.errors import ExprgradError

ROWS = graph.ROWS
j, k, m = graph.index("j"), graph.index("k"), graph.index("m")
c = graph.var("c")
y = graph.var("y", per_row=True)
w = graph.var("w", (j,))
x = graph.var("x", (ROWS, j))
W = graph.var("W", (k, j))


# ------------------------------------------------------------------ graph


def test_indices_are_interned_and_canonical():
    assert graph.index("j") is j
    assert pickle.loads(pickle.dumps(j)) is j
    assert ROWS.name == "#rows"
    assert graph.canonical([j, ROWS, k, j]) == (ROWS, j, k)
    assert graph.canonical([graph.index("j10"), graph.index("j2")]) == (graph.index("j2"), graph.index("j10"))
    assert graph.canonical([k, j]) is graph.canonical([j, k])


def test_every_kind_of_node_has_indices():
    assert c.indices == () and not c.per_row
    assert y.indices == (ROWS,) and y.per_row
    assert graph.var("y", per_row=True) is graph.var("y", (ROWS,))
    assert w.indices == (j,) and w.var_axes == (j,) and not w.per_row
    assert x.indices == (ROWS, j) and x.var_axes == (j,) and x.per_row
    assert W.indices == (j, k) and W.var_axes == (k, j)
    assert graph.var("W", (j, k)) is not W  # the transpose is another node
    assert graph.var("W", (k, j)) is W
    assert graph.var("w", ("j",)) is w
    assert build.const(2).indices == ()
    size = graph.size(j)
    assert size.indices == () and size.axis is j and size.is_leaf and graph.size(j) is size
    assert build.mul(w, x).indices == (ROWS, j)
    assert build.add(c, build.mul(W, x)).indices == (ROWS, j, k)
    assert build.call("mean", y).indices == ()
    assert build.call("mean", build.mul(w, x)).indices == (j,)


def test_reductions_remove_their_axis_and_intern_with_it():
    s = build.reduce(ops.SUM, build.mul(W, x), j)
    assert s.axis is j and s.indices == (ROWS, k)
    assert build.reduce(ops.SUM, build.mul(W, x), j) is s
    over_k = build.reduce(ops.SUM, build.mul(W, x), k)
    assert over_k is not s and over_k.indices == (ROWS, j)
    rows = build.call("sum", build.mul(w, x))
    assert rows.axis is ROWS and rows.indices == (j,)
    assert build.reduce(ops.SUM, build.mul(w, x), ROWS) is rows
    lse = build.reduce(ops.LSE, w, j)
    assert lse.op is ops.LSE and lse.indices == ()
    assert ops.INDEX_REDUCTIONS["logsumexp"] is ops.LSE
    # the variadic elementwise logsumexp stays
    assert build.call("logsumexp", c, y).op is ops.LOGSUMEXP


def test_reduce_laws():
    # a body without the index is not reduced
    assert build.reduce(ops.MEAN, c, j) is c
    assert build.reduce(ops.SUM, c, j) is build.mul(graph.size(j), c)
    assert build.reduce(ops.LSE, c, j) is build.add(c, build.log(graph.size(j)))
    assert build.reduce(ops.SUM, build.ZERO, j) is build.ZERO
    # factors free of the index leave the sum; signs too
    pulled = build.reduce(ops.SUM, build.mul(c, y, w), j)
    assert pulled is build.mul(c, y, build.reduce(ops.SUM, w, j))
    assert build.reduce(ops.SUM, build.neg(w), j) is build.neg(build.reduce(ops.SUM, w, j))
    assert build.reduce(ops.MEAN, build.mul(c, w), j) is build.mul(c, build.reduce(ops.MEAN, w, j))
    # over several indices: nested in canonical order, the first outermost
    both = build.reduce(ops.SUM, W, (k, j))
    assert both.axis is j and both.inputs[0].axis is k and both.indices == ()
    # row reductions are today's, with no new laws
    assert build.reduce(ops.MEAN, build.mul(c, y), ROWS) is build.call("mean", build.mul(c, y))


def test_rename_rebuilds_only_what_has_the_index():
    body = build.add(build.reduce(ops.SUM, build.mul(W, x), j), graph.var("b", (k,)))
    h = build.call("tanh", body)
    renamed = build.rename(h, {k: m})
    assert renamed.indices == (ROWS, m)
    assert renamed is build.call(
        "tanh",
        build.add(build.reduce(ops.SUM, build.mul(graph.var("W", (m, j)), x), j), graph.var("b", (m,))),
    )
    assert build.rename(h, {k: k}) is h
    assert build.rename(h, {m: j}) is h  # m is not there
    # the bound j is untouched by renaming j
    s = build.reduce(ops.SUM, build.mul(w, x), j)
    assert build.rename(s, {j: m}) is s
    # size(j) follows its index
    mean_term = build.div(w, graph.size(j))
    assert build.rename(mean_term, {j: m}) is build.div(graph.var("w", (m,)), graph.size(m))


def test_rename_does_not_capture():
    # h[k] = sum[j](W[k,j]*x[j]) used as h[j]: the bound j becomes a fresh index
    h = build.reduce(ops.SUM, build.mul(W, x), j)
    renamed = build.rename(h, {k: j})
    assert renamed.indices == (ROWS, j)
    inner = renamed.axis
    assert inner is not j
    assert renamed.inputs[0] is build.mul(graph.var("W", (j, inner)), graph.var("x", (ROWS, inner)))


def test_rename_is_iterative():
    node = w
    for _ in range(20000):
        node = build.call("sin", node)
    renamed = build.rename(node, {j: m})
    assert renamed.indices == (m,)
    assert graph.count_nodes([renamed]) == 20001


def test_scalar_programs_keep_their_nodes():
    a = graph.var("a")
    # mean(a*x) over rows keeps a inside (no new row law), and per_row reads indices
    node = build.call("mean", build.mul(a, y))
    assert node.inputs[0] is build.mul(a, y)
    assert not node.per_row and node.inputs[0].per_row


def test_var_refuses_a_repeated_index():
    with pytest.raises(ValueError):
        graph.var("W", (j, j))


# ------------------------------------------------------------------ lowering


LOGISTIC = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"
NETWORK = "k in 1:16; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"
SOFTMAX = "z[k] = sum[j](W[k,j]*x[j]) + b[k]; mean(logsumexp[k](z[k]) - sum[k](Y[k]*z[k]))"


def _columns(features: int, naming: str = "x{}") -> list[str]:
    return [naming.format(i) for i in range(1, features + 1)] + ["y"] + [f"Y{i}" for i in range(1, 11)]


@pytest.mark.parametrize("text", [LOGISTIC, NETWORK, SOFTMAX])
def test_examples_do_not_grow_with_their_families(text):
    small = parse(text, columns=_columns(10))
    large = parse(text, columns=_columns(1000))
    assert graph.count_nodes([small.output]) == graph.count_nodes([large.output]) < 30
    assert str(small) == str(large)
    assert small.families["x"].kind == "data"
    assert small.families["x"].columns == tuple(f"x{i}" for i in range(1, 11))
    assert large.ranges["j"] == tuple(range(1, 1001))
    assert small.output.indices == ()


def test_logistic_regression_families():
    f = parse(LOGISTIC, columns=_columns(50))
    assert f.params == ["c", "w"]
    assert f.columns == ["x", "y"]
    assert f.param_sizes == {"w": (50,)}
    w_family = f.families["w"]
    assert (w_family.kind, w_family.axes, w_family.columns) == ("parameter", ("j",), ())
    assert w_family.labels == (tuple(range(1, 51)),)
    # the graph: c + sum over j of w[j]*x[j], rows kept
    z = build.add(c, build.reduce(ops.SUM, build.mul(w, x), j))
    assert f.definitions["z"] is z


def test_without_columns_the_presumed_data_rule_applies_to_family_names():
    f = parse(LOGISTIC)
    assert f.families["x"].kind == "data" and f.families["x"].labels == (None,)
    assert f.families["w"].kind == "parameter"
    assert f.columns == ["x", "y"]
    # without a row reduction x is a parameter family, as a plain x is a parameter
    assert parse("sum[j](w[j]*x[j])").families["x"].kind == "parameter"


def test_network_and_softmax_families():
    f = parse(NETWORK, columns=_columns(50))
    assert f.param_sizes == {"W": (16, 50), "b": (16,), "v": (16,)}
    assert f.ranges["k"] == tuple(range(1, 17))
    assert f.families["W"].axes == ("k", "j")
    s = parse(SOFTMAX, columns=_columns(50))
    assert s.families["Y"].kind == "data" and s.param_sizes == {"W": (10, 50), "b": (10,)}
    assert s.ranges["k"] == tuple(range(1, 11))


@pytest.mark.parametrize("naming", ["x{}", "x_{}", "x[{}]"])
def test_data_family_namings(naming):
    f = parse(LOGISTIC, columns=_columns(5, naming))
    assert f.families["x"].columns == tuple(naming.format(i) for i in range(1, 6))
    assert f.families["x"].labels == ((1, 2, 3, 4, 5),)


def test_definitions_by_index_are_renamed_at_use():
    f = parse("h[k] = b[k]*2; sum[m](h[m]*v[m])")
    bm, vm = graph.var("b", (m,)), graph.var("v", (m,))
    assert f.output is build.reduce(ops.SUM, build.mul(build.mul(bm, build.const(2)), vm), m)


def test_dot_sums_over_the_shared_index():
    f = parse("dot(w[j], x[j]) + c")
    assert f.output is build.add(build.reduce(ops.SUM, build.mul(w, graph.var("x", (j,))), j), c)


def test_sum_over_several_indices_and_members():
    f = parse("sum[j,k](W[k,j]) + U[2,3] + theta[0]")
    assert "U[2,3]" in f.params and "theta[0]" in f.params and "W" in f.params
    assert parse("sum[j](1) + w[j]*0 + sum[j](w[j])").output.indices == ()


def _error(text: str, columns=None) -> ExprgradError:
    with pytest.raises(ExprgradError) as caught:
        parse(text, columns=columns)
    return caught.value


def _at(error: ExprgradError, text: str, shown: str) -> None:
    """The caret of ``error`` is under ``shown`` in ``text`` (single line)."""
    assert error.line == 1
    assert text[error.column - 1 :].startswith(shown), (text, error.column, str(error))


@pytest.mark.parametrize(
    "text, columns, message, shown",
    [
        # an index free in the result that no reduction binds
        ("c + w[j]*x[j]", None, "index 'j' is free in the result", "j"),
        ("z = c + w[j]; mean(z - y)", None, "index 'j' is free in the definition of 'z'", "j"),
        ("h[k] = W[k,j]; sum[k](h[k])", None, "index 'j' is free in the definition of 'h'", "j"),
        # a reduction over an index not present
        ("sum[k](w[j]) + c", None, "reduces over 'k', but its body does not have", "k"),
        ("mean[j](c) + c", None, "reduces over 'j'", "j"),
        # ranges that disagree
        ("k in 1:3; sum[k](x[k])", ["x1", "x2"], "the ranges of index 'k' disagree", "x[k]"),
        ("j in 1:3; k in 1:4; sum[j](w[j]) + sum[k](w[k])", None, "the ranges disagree", "w[k]"),
        ("j in 1:3; j in 1:4; sum[j](w[j])", None, "the ranges of index 'j' disagree", "j"),
        # a data family with gaps or mixed naming
        ("mean(sum[j](w[j]*x[j]))", ["x1", "x2", "x4"], "has a gap", "x[j]"),
        ("mean(sum[j](w[j]*x[j]))", ["x1", "x_2"], "mix two namings", "x[j]"),
        # a name both a family and a scalar
        ("w + sum[j](w[j])", None, "used both as a plain name and as a family", "w"),
        ("z = 1; sum[j](z[j])", None, "'z' is a definition without an index", "z[j]"),
        ("h[k] = b[k]; h + 1", None, "is a family defined by index", "h"),
        ("w[1] + sum[j](w[j])", None, "selecting a member of a family by its label is not supported", "w[1]"),
        # an index reused as a parameter name
        ("sum[j](w[j]) + j", None, "'j' is an index", "j"),
        ("j in 1:3; j*2", None, "'j' is an index", "j"),
        # a member of a defined family
        ("h[k] = b[k]; h[3]", None, "selecting a member of a defined family is not supported", "h[3]"),
        # other shapes
        ("sum[k](W[k,1])", None, "mixes an index and a label", "W[k,1]"),
        ("sum[j](W[j,j])", None, "repeats the index 'j'", "W[j,j]"),
        ("sum[j](W[j]) + sum[j,k](W[j,k])", None, "is used with", "W[j"),
        ("h[k] = b[k]; sum[j,k](h[j,k])", None, "'h' is defined with 1 index, used here with 2", "h[j,k]"),
        ("dot(2*a, b + 1)", None, "dot(u, v) sums over the one index", "dot"),
        ("dot(v, W[k,j])", None, "share no index", "dot"),
        ("dot(W[k,j], V[k,j])", None, "share several indices", "dot"),
    ],
)
def test_family_errors_have_a_caret(text, columns, message, shown):
    error = _error(text, columns)
    assert message in error.message
    _at(error, text, shown)


def test_sum_without_parentheses_is_a_syntax_error_with_a_caret():
    text = "sum[j] w[j]"
    error = _error(text)
    assert "missing operator" in error.message
    _at(error, text, "w")


def test_family_errors_through_the_cli():
    from click.testing import CliRunner

    from exprgrad.cli import cli

    result = CliRunner().invoke(cli, ["diff", "c + w[j]*x[j]"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: line 1, column 7: index 'j' is free in the result")
    assert "Traceback" not in result.output


def test_dot_of_bare_names_is_the_sum_over_a_family_index():
    f = parse("c + dot(w, x)", columns=_columns(50))
    assert f.output is build.add(c, build.reduce(ops.SUM, build.mul(w, x), j))
    assert f.param_sizes == {"w": (50,)} and f.families["x"].kind == "data"
    # without columns, under a row reduction, x is presumed data
    g = parse("mean((c + dot(w, x) - y)^2)")
    assert g.families["x"].kind == "data" and g.columns == ["x", "y"]
    # beside an argument with one index, the bare name takes that index
    f = parse("dot(v, u[k]) + 1")
    assert f.families["v"].axes == ("k",) and f.output.indices == ()
    # two bare names: both families over one index
    assert parse("dot(a, b)").output is build.reduce(
        ops.SUM, build.mul(graph.var("a", (j,)), graph.var("b", (j,))), j
    )


@pytest.mark.parametrize(
    "text, shown",
    [("dot(w, x) + w", "w"), ("mean(dot(w, x) + x)", "x)")],
)
def test_a_bare_dot_family_used_plain_is_an_error(text, shown):
    error = _error(text, _columns(5))
    assert "is a family in dot() and is also used as a plain name" in error.message
    _at(error, text, shown)
    assert error.column > text.index(")")  # the plain use, not the one in dot()


def test_a_family_valued_result_when_asked():
    text = "mean(x[j]*(sigmoid(c + sum[j](w[j]*x[j])) - y))"
    with pytest.raises(ExprgradError):
        parse(text)
    f = parse(text, free_indices=True)
    assert f.output.indices == (j,)


def test_the_gradient_of_a_family_is_one_function_with_its_index():
    f = parse(LOGISTIC, columns=_columns(50))
    g = f.grad("w")["w"]
    assert g.output.indices == (j,)
    assert g.families is f.families and g.ranges is f.ranges
    # printed, it re-parses to the same graph
    assert parse(str(g), columns=_columns(50), free_indices=True).output is g.output


def _data(rows: int, features: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    data = {f"x{i}": rng.normal(size=rows) for i in range(1, features + 1)}
    data["y"] = (rng.random(rows) > 0.5) * 1.0
    return data


def test_function_evaluates_families_and_their_gradient():
    data = _data(40, 6)
    f = parse(LOGISTIC, columns=list(data))
    weights = np.linspace(-1, 1, 6)
    X = np.column_stack([data[f"x{i}"] for i in range(1, 7)])
    z = 0.3 + X @ weights
    assert f.evaluate(data, c=0.3, w=weights) == pytest.approx(
        np.mean(np.logaddexp(0, z) - data["y"] * z), 1e-12
    )
    # one number for every member
    z1 = 0.3 + X @ np.full(6, 0.1)
    assert f.evaluate(data, c=0.3, w=0.1) == pytest.approx(
        np.mean(np.logaddexp(0, z1) - data["y"] * z1), 1e-12
    )
    gradient = f.grad("w")["w"].evaluate(data, c=0.3, w=weights)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(gradient, X.T @ (s - data["y"]) / 40, rtol=1e-12, atol=1e-14)


def test_network_value_equals_its_unrolled_numpy():
    data = _data(30, 4, seed=1)
    text = NETWORK.replace("1:16", "1:3")
    f = parse(text, columns=list(data))
    rng = np.random.default_rng(2)
    W, b, v = rng.normal(size=(3, 4)), rng.normal(size=3), rng.normal(size=3)
    X = np.column_stack([data[f"x{i}"] for i in range(1, 5)])
    expected = np.mean((np.tanh(X @ W.T + b) @ v + 0.5 - data["y"]) ** 2)
    assert f.evaluate(data, W=W, b=b, v=v, c=0.5) == pytest.approx(expected, 1e-12)


def test_family_values_of_the_wrong_shape_are_an_argument_error():
    data = _data(10, 3)
    f = parse(LOGISTIC, columns=list(data))
    from exprgrad.errors import ArgumentError

    with pytest.raises(ArgumentError, match="family 'w' has 1 index"):
        f.evaluate(data, c=0.0, w=np.ones((3, 1)))


def test_python_source_and_drawing_know_the_families():
    data = _data(20, 5)
    f = parse(LOGISTIC, columns=list(data))
    weights = np.linspace(-0.5, 0.5, 5)
    namespace: dict = {}
    exec(compile(f.python(), "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    assert namespace["f"]({"c": 0.1, "w": weights}, data) == pytest.approx(
        f.evaluate(data, c=0.1, w=weights), 1e-12
    )
    assert "w[j], j: 5" in f.to_dot("w")


@pytest.mark.parametrize("features, seed", [(1, 0), (2, 1), (7, 2)])
def test_indexed_program_equals_its_unrolled_scalar_program(features, seed):
    data = _data(25, features, seed)
    indexed = parse(NETWORK.replace("1:16", "1:2"), columns=list(data))
    units = range(1, 3)
    hidden = "; ".join(
        f"h{k} = tanh({' + '.join(f'W{k}_{i}*x{i}' for i in range(1, features + 1))} + b{k})" for k in units
    )
    scalar = parse(
        f"{hidden}; mean(({' + '.join(f'v{k}*h{k}' for k in units)} + c - y)^2)", columns=list(data)
    )
    rng = np.random.default_rng(seed)
    W, b, v, c0 = rng.normal(size=(2, features)), rng.normal(size=2), rng.normal(size=2), 0.3
    flat = {f"W{k}_{i}": W[k - 1, i - 1] for k in units for i in range(1, features + 1)}
    flat |= {f"b{k}": b[k - 1] for k in units} | {f"v{k}": v[k - 1] for k in units} | {"c": c0}
    assert indexed.evaluate(data, W=W, b=b, v=v, c=c0) == pytest.approx(
        scalar.evaluate(data, **flat), rel=1e-12
    )
    gradient = indexed.grad("W")["W"].evaluate(data, W=W, b=b, v=v, c=c0)
    gradient = np.asarray(gradient)
    expected = np.array(
        [[scalar.diff(f"W{k}_{i}").evaluate(data, **flat) for i in range(1, features + 1)] for k in units]
    )
    # the derivative's value is in W's written axes (k, j), as the values given
    np.testing.assert_allclose(gradient, expected, rtol=1e-10)
