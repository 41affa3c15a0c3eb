"""Evaluation of index families: against numpy by hand and the same graph unrolled into scalar members."""

from __future__ import annotations

import itertools
import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit
from scipy.special import logsumexp as scipy_logsumexp

from exprgrad import build, graph, ops
from exprgrad.backends.evaluate import BLOCK_ROWS, compile_schedule, evaluate
from exprgrad.errors import EvaluationError

ROWS = graph.ROWS
j, k = graph.index("j"), graph.index("k")
x = graph.var("x", (ROWS, j))
y = graph.var("y", (ROWS,))
w = graph.var("w", (j,))
c = graph.var("c")
W = graph.var("W", (k, j))
b, v = graph.var("b", (k,)), graph.var("v", (k,))
V = graph.var("V", (graph.index("l"), j))


def over(op, body, axis):
    return build.reduce(op, body, axis)


# The three examples, built by hand (lowering builds the same graphs).
z = build.add(c, over(ops.SUM, build.mul(w, x), j))
LOGISTIC = build.call("mean", build.sub(build.call("softplus", z), build.mul(y, z)))
t1 = build.sub(build.call("sigmoid", z), y)
LOGISTIC_GRAD = [over(ops.MEAN, build.mul(x, t1), ROWS), build.call("mean", t1)]  # ∂/∂w[j], ∂/∂c

h = build.call("tanh", build.add(over(ops.SUM, build.mul(W, x), j), b))
residual = build.sub(build.add(over(ops.SUM, build.mul(v, h), k), c), y)
NETWORK = build.call("mean", build.pow_(residual, build.const(2)))
dh = build.mul(build.const(2), residual, v, build.sub(build.ONE, build.pow_(h, build.const(2))))
NETWORK_GRAD = [over(ops.MEAN, build.mul(dh, x), ROWS), over(ops.MEAN, dh, ROWS)]  # ∂/∂W[k,j], ∂/∂b[k]

Y = graph.var("Y", (ROWS, k))
scores = build.add(over(ops.SUM, build.mul(W, x), j), b)
SOFTMAX = build.call("mean", build.sub(over(ops.LSE, scores, k), over(ops.SUM, build.mul(Y, scores), k)))


def _case(rng, rows, features, units):
    data = {"x": rng.normal(size=(rows, features)), "y": rng.normal(size=rows)}
    data["Y"] = np.eye(units)[rng.integers(0, units, rows)]
    params = {
        "w": rng.normal(size=features),
        "c": 0.3,
        "W": rng.normal(size=(units, features)) / np.sqrt(features),
        "b": rng.normal(size=units),
        "v": rng.normal(size=units),
    }
    return data, params


# ---------------------------------------------------------------- the oracle: unrolled into scalars


def unrolled(roots, sizes):
    """Each root as scalar members: {labels of its indices (rows left out): a node of today's scalar graph}.

    A family member is the scalar ``w[2]`` (``W[1,3]``), a data family's member the column ``x2``.
    """
    members: dict = {}
    for node in graph.toposort(roots):
        free = [i for i in node.indices if i is not ROWS]
        table = {}
        for labels in itertools.product(*[range(1, sizes[i] + 1) for i in free]):
            at = dict(zip(free, labels, strict=True))
            table[labels] = _member(node, at, members, sizes)
        members[node] = table
    return [members[r] for r in roots]


def _member(node, at, members, sizes):
    def of(child, extra=None):
        where = {**at, **(extra or {})}
        return members[child][tuple(where[i] for i in child.indices if i is not ROWS)]

    if node.is_const:
        return node
    if node.op is graph.SIZE:
        return build.const(sizes[node.axis])
    if node.is_var:
        if not node.var_axes:
            return node
        labels = [at[i] for i in node.var_axes]
        if node.per_row:
            return graph.var(node.name + "".join(map(str, labels)), per_row=True)
        return graph.var(f"{node.name}[{','.join(map(str, labels))}]")
    if node.axis is None or node.axis is ROWS:
        return build.call(node.op, *[of(i) for i in node.inputs])
    terms = [of(node.inputs[0], {node.axis: label}) for label in range(1, sizes[node.axis] + 1)]
    if node.op is ops.LSE:
        return terms[0] if len(terms) == 1 else build.call("logsumexp", *terms)
    total = build.add(*terms) if len(terms) > 1 else terms[0]
    return total if node.op is ops.SUM else build.div(total, build.const(len(terms)))


def scalar_inputs(data, params):
    """The data and parameter values of the unrolled graph: columns x1.., members w[1].., W[1,2].."""
    columns = {}
    for name, value in data.items():
        value = np.asarray(value)
        if value.ndim == 1:
            columns[name] = value
        else:
            for label in range(value.shape[1]):
                columns[f"{name}{label + 1}"] = value[:, label]
    members = {}
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        if value.ndim == 0:
            members[name] = float(value)
        for labels in np.ndindex(value.shape if value.ndim else ()):
            if value.ndim:
                members[f"{name}[{','.join(str(i + 1) for i in labels)}]"] = float(value[labels])
    return columns, members


def assert_unrolled_agree(roots, data, params, sizes):
    got = evaluate(roots, params, data)
    columns, members = scalar_inputs(data, params)
    for value, table, root in zip(got, unrolled(roots, sizes), roots, strict=True):
        free = [i for i in root.indices if i is not ROWS]
        nodes = list(table.values())
        scalar = evaluate(nodes, members, columns)
        for labels, expected in zip(table, scalar, strict=True):
            index = tuple(label - 1 for label in labels)
            member = np.asarray(value)[(slice(None),) * root.per_row + index] if free else value
            np.testing.assert_allclose(member, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("features", [1, 2, 7])
@pytest.mark.parametrize("units", [1, 2, 7])
def test_examples_equal_their_unrolled_scalar_programs(features, units, rng):
    data, params = _case(rng, 50, features, units)
    sizes = {j: features, k: units, graph.index("l"): 2}
    params["V"] = rng.normal(size=(2, features))
    products = [
        over(ops.MEAN, build.mul(x, build.mul(x, W)), ROWS),
        over(ops.SUM, build.mul(build.mul(x, W), build.mul(x, V)), ROWS),
        over(ops.SUM, build.mul(W, V, x), j),
    ]
    roots = [LOGISTIC, *LOGISTIC_GRAD, NETWORK, *NETWORK_GRAD, SOFTMAX, h, z, *products]
    assert_unrolled_agree(roots, data, params, sizes)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    features=st.integers(1, 5),
    units=st.integers(1, 4),
    rows=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_sizes_and_data_equal_the_unrolled_programs(features, units, rows, seed):
    data, params = _case(np.random.default_rng(seed), rows, features, units)
    roots = [LOGISTIC, *LOGISTIC_GRAD, NETWORK, *NETWORK_GRAD, SOFTMAX, h]
    assert_unrolled_agree(roots, data, params, {j: features, k: units})


@pytest.mark.parametrize("features", [1, 2, 7])
def test_logistic_regression_against_numpy_by_hand(features, rng):
    data, params = _case(rng, 3000, features, 3)
    X, yv, wv = data["x"], data["y"], params["w"]
    value, grad_w, grad_c = evaluate([LOGISTIC, *LOGISTIC_GRAD], params, data)
    zv = X @ wv + params["c"]
    assert math.isclose(value, np.mean(np.logaddexp(0, zv) - yv * zv), rel_tol=1e-13)
    np.testing.assert_allclose(grad_w, X.T @ (expit(zv) - yv) / len(yv), rtol=1e-12, atol=1e-15)
    assert math.isclose(grad_c, np.mean(expit(zv) - yv), rel_tol=1e-12)
    assert grad_w.shape == (features,)


@pytest.mark.parametrize("units", [1, 2, 7])
def test_network_and_softmax_against_numpy_by_hand(units, rng):
    data, params = _case(rng, 2000, 5, units)
    X, yv = data["x"], data["y"]
    hv = np.tanh(X @ params["W"].T + params["b"])
    r = hv @ params["v"] + params["c"] - yv
    value, grad_W, grad_b, soft, hidden = evaluate([NETWORK, *NETWORK_GRAD, SOFTMAX, h], params, data)
    assert math.isclose(value, np.mean(r * r), rel_tol=1e-13)
    dhv = 2 * r[:, None] * params["v"] * (1 - hv * hv)
    # Axes in canonical order: W's gradient is over (j, k), whatever W's written order.
    np.testing.assert_allclose(grad_W, (dhv.T @ X / len(yv)).T, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(grad_b, dhv.mean(axis=0), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(hidden, hv, rtol=1e-13)
    s = X @ params["W"].T + params["b"]
    expected = np.mean(scipy_logsumexp(s, axis=1) - np.sum(data["Y"] * s, axis=1))
    assert math.isclose(soft, expected, rel_tol=1e-12)


def test_a_transposed_use_reads_the_written_axes(rng):
    # W[k,j] and W[j,k] are different nodes of the one family W, whose values are k by j.
    Wt = graph.var("W", (j, k))
    values = rng.normal(size=(3, 3))  # both uses: |j| = |k|
    straight, turned = evaluate([W, Wt], {"W": values})
    np.testing.assert_array_equal(straight, values.T)  # canonical axes (j, k)
    np.testing.assert_array_equal(turned, values)  # W[j,k]: axis 0 is j, so W[j,k] = values[j, k]
    with pytest.raises(EvaluationError, match="index 'j' has 4 labels"):
        evaluate([W, Wt], {"W": rng.normal(size=(3, 4))})  # k by j in one use, j by k in the other


# ---------------------------------------------------------------- reductions over an index


def test_reductions_over_an_index_of_a_parameter_family(rng):
    values = rng.normal(size=6)
    total, mean, lse, dot = evaluate(
        [over(ops.SUM, w, j), over(ops.MEAN, w, j), over(ops.LSE, w, j), over(ops.SUM, build.mul(w, w), j)],
        {"w": values},
    )
    assert math.isclose(total, values.sum(), rel_tol=1e-14) and math.isclose(
        mean, values.mean(), rel_tol=1e-14
    )
    assert math.isclose(lse, scipy_logsumexp(values), rel_tol=1e-14)
    assert math.isclose(dot, values @ values, rel_tol=1e-14)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1000.0, 1000.0], 1000.0 + math.log(2)),
        ([-1000.0, -1000.0], -1000.0 + math.log(2)),
        ([-math.inf, -math.inf], -math.inf),
        ([math.inf, 1.0], math.inf),
        ([math.nan, 1.0], math.nan),
    ],
)
def test_logsumexp_over_an_index_is_stable(values, expected):
    got = evaluate([over(ops.LSE, w, j)], {"w": np.array(values)})[0]
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_a_per_row_family_output_is_rows_by_labels(rng):
    X = rng.normal(size=(10, 3))
    scaled, rowsum = evaluate([build.mul(x, w), over(ops.SUM, x, j)], {"w": np.arange(3.0)}, {"x": X})
    assert scaled.shape == (10, 3) and rowsum.shape == (10,)
    np.testing.assert_array_equal(scaled, X * np.arange(3.0))
    np.testing.assert_allclose(rowsum, X.sum(axis=1), rtol=1e-14)


def test_sizes_of_indices_and_rows_are_leaves(rng):
    X = rng.normal(size=(9, 4))
    outputs = [graph.size(j), graph.size(ROWS), build.mul(graph.size(k), c), x]
    got = evaluate(outputs, {"c": 2.0}, {"x": X}, sizes={"k": 3})
    assert got[:3] == [4.0, 9.0, 6.0]


def test_a_family_given_one_number_has_it_for_every_member():
    assert evaluate([over(ops.SUM, w, j)], {"w": 0.5}, sizes={"j": 3})[0] == 1.5


def test_row_sum_of_a_parameter_family_counts_rows(rng):
    got = evaluate(
        [build.call("sum", w), build.call("mean", w)], {"w": np.array([1.0, 2.0])}, {"y": np.zeros(5)}
    )
    np.testing.assert_array_equal(got[0], [5.0, 10.0])
    np.testing.assert_array_equal(got[1], [1.0, 2.0])
    # A product without rows is not a contraction over them: n equal rows of it.
    squares = build.call("sum", build.mul(w, v))
    got = evaluate([squares], {"w": np.array([1.0, 2.0]), "v": np.array([3.0, 4.0])}, {"y": np.zeros(5)})[0]
    np.testing.assert_array_equal(got, [[15.0, 20.0], [30.0, 40.0]])


# ---------------------------------------------------------------- chunks and data layouts


@pytest.mark.parametrize("n", [1, 5, BLOCK_ROWS - 1, BLOCK_ROWS + 1, 2 * BLOCK_ROWS + 1, 3 * BLOCK_ROWS + 7])
@pytest.mark.parametrize("features, units", [(7, 4), (1, 1), (2, 16)])
def test_row_reductions_of_families_identical_whatever_the_chunk_size(n, features, units, rng):
    data, params = _case(rng, n, features, units)
    outputs = [
        LOGISTIC,
        *LOGISTIC_GRAD,
        NETWORK,
        *NETWORK_GRAD,
        SOFTMAX,
        build.call("sum", x),  # a block sum per label
        build.call("mean", build.mul(x, x)),  # a contraction per block
        over(ops.MEAN, build.mul(x, build.mul(x, W)), ROWS),  # batched over blocks and j
        over(ops.MEAN, build.mul(build.mul(x, W), build.mul(x, V)), ROWS),  # over j, free k and l
        h,
    ]
    params = {**params, "V": rng.normal(size=(2, features))}
    for layout in ({**data}, {**data, "x": list(data["x"].T), "Y": list(data["Y"].T)}):
        first = evaluate(outputs, params, layout, chunk_rows=1)
        for chunk in (BLOCK_ROWS, 2 * BLOCK_ROWS, 10**7):
            again = evaluate(outputs, params, layout, chunk_rows=chunk)
            for one, other in zip(first, again, strict=True):
                assert np.array_equal(one, other), chunk


def test_a_family_given_as_columns_equals_the_same_values_as_one_array(rng):
    data, params = _case(rng, 3000, 6, 3)
    together = evaluate([LOGISTIC, *LOGISTIC_GRAD, NETWORK], params, data)
    apart = evaluate([LOGISTIC, *LOGISTIC_GRAD, NETWORK], params, {**data, "x": list(data["x"].T)})
    for one, other in zip(together, apart, strict=True):
        np.testing.assert_allclose(one, other, rtol=1e-13)


def test_no_rows(rng):
    data = {"x": np.zeros((0, 3)), "y": np.zeros(0)}
    total, mean = evaluate([build.call("sum", x), build.call("mean", x)], {}, data)
    np.testing.assert_array_equal(total, [0.0, 0.0, 0.0])
    assert np.all(np.isnan(mean))


# ---------------------------------------------------------------- sizes that disagree


def test_sizes_that_disagree_name_the_index_and_both_sizes(rng):
    with pytest.raises(
        EvaluationError, match=r"index 'j' has 4 labels in the data 'x' but 3 in the values of 'w'"
    ):
        evaluate([LOGISTIC], {"w": np.ones(3), "c": 0.0}, {"x": np.ones((5, 4)), "y": np.ones(5)})
    with pytest.raises(EvaluationError, match=r"index 'k' has .* but 5 in its declared range"):
        evaluate([over(ops.SUM, v, k)], {"v": np.ones(3)}, sizes={"k": 5})
    with pytest.raises(EvaluationError, match=r"index 'j'"):
        evaluate(
            [NETWORK],
            {"W": np.ones((2, 3)), "b": np.ones(2), "v": np.ones(2), "c": 0.0},
            {"x": np.ones((5, 4)), "y": np.ones(5)},
        )


def test_an_index_no_value_fixes_is_named():
    with pytest.raises(EvaluationError, match="index 'k'"):
        evaluate([build.mul(graph.size(k), c)], {"c": 1.0})


def test_missing_family_values_are_named():
    with pytest.raises(EvaluationError, match="'w'"):
        evaluate([LOGISTIC], {"c": 0.0}, {"x": np.ones((5, 4)), "y": np.ones(5)})
    with pytest.raises(EvaluationError, match="'x'"):
        evaluate([LOGISTIC], {"c": 0.0, "w": np.ones(4)}, {"y": np.ones(5)})


def test_a_family_given_the_wrong_number_of_axes_is_an_error():
    with pytest.raises(EvaluationError, match="'W' has 2 indices"):
        evaluate([W], {"W": np.ones(3)})


# ---------------------------------------------------------------- memory


@pytest.mark.slow
def test_a_million_row_network_never_holds_rows_by_units_by_features(rng):
    rows, features, units = 1_000_000, 5, 16
    columns = [rng.normal(size=rows) for _ in range(features)]
    data = {"x": columns, "y": rng.normal(size=rows)}
    params = {"W": rng.normal(size=(units, features)), "b": np.zeros(units), "v": np.ones(units), "c": 0.0}
    schedule = compile_schedule([NETWORK, *NETWORK_GRAD])
    tracemalloc.start()
    try:
        schedule.run(params, data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # rows x units alone is 128 MB (rows x units x features 640 MB); the chunks stay small.
    assert peak < 16 * 2**20, peak


def test_values_of_the_wrong_shape_are_errors():
    with pytest.raises(EvaluationError, match="'c' is one number, but was given 3"):
        evaluate([LOGISTIC], {"c": np.ones(3), "w": np.ones(4)}, {"x": np.ones((5, 4)), "y": np.ones(5)})
    with pytest.raises(EvaluationError, match="'y' is one data column, but was given 2-d data"):
        evaluate([LOGISTIC], {"c": 0.0, "w": np.ones(4)}, {"x": np.ones((5, 4)), "y": np.ones((5, 2))})
    with pytest.raises(EvaluationError, match="'x' needs 1 label axes, not 0"):
        evaluate([LOGISTIC], {"c": 0.0, "w": np.ones(4)}, {"x": np.ones(5), "y": np.ones(5)})


def test_logsumexp_over_rows_is_refused():
    with pytest.raises(EvaluationError, match="logsumexp over the data rows"):
        compile_schedule([build.call(ops.LSE, y)])


def test_family_columns_of_different_lengths_are_an_error():
    with pytest.raises(EvaluationError, match="differ in length"):
        evaluate([LOGISTIC], {"c": 0.0, "w": np.ones(2)}, {"x": [np.ones(5), np.ones(4)], "y": np.ones(5)})


def test_columns_of_one_fortran_array_are_read_in_place(rng):
    table = np.asfortranarray(rng.normal(size=(3000, 5)))
    data, params = _case(rng, 3000, 5, 3)
    apart = [np.ascontiguousarray(table[:, i]) for i in range(5)]  # separate arrays: gathered
    views = [table[:, i] for i in range(5)]  # one buffer: no copy
    for outputs in ([LOGISTIC, *LOGISTIC_GRAD], [NETWORK, *NETWORK_GRAD], [build.mul(x, w)]):
        one = evaluate(outputs, params, {**data, "x": views})
        other = evaluate(outputs, params, {**data, "x": apart})
        for a, b in zip(one, other, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_array_equal(evaluate([build.mul(x, w)], params, {"x": views})[0], table * params["w"])
    # Columns that only look alike (a reversed order, a gap) are gathered, not misread.
    reversed_views = views[::-1]
    np.testing.assert_array_equal(evaluate([x], {}, {"x": reversed_views})[0], table[:, ::-1])
    np.testing.assert_array_equal(evaluate([x], {}, {"x": views[::2]})[0], table[:, ::2])


def test_many_labels_keep_block_sums_in_fixed_groups(rng, monkeypatch):
    # Past KEPT_SUMS values, groups of blocks are summed first: the same groups for every chunk size.
    from exprgrad.backends import indexed

    data, params = _case(rng, 7 * BLOCK_ROWS + 5, 6, 3)
    outputs = [*NETWORK_GRAD, build.call("sum", x), over(ops.MEAN, build.mul(x, build.mul(x, W)), ROWS)]
    exact = evaluate(outputs, params, data)
    monkeypatch.setattr(indexed, "KEPT_SUMS", 20)  # 8 blocks x 18 labels: groups of 8 blocks
    first = evaluate(outputs, params, data, chunk_rows=1)
    for chunk in (2 * BLOCK_ROWS, 3 * BLOCK_ROWS, 10**7):
        again = evaluate(outputs, params, data, chunk_rows=chunk)
        for one, other in zip(first, again, strict=True):
            assert np.array_equal(one, other), chunk
    for one, other in zip(first, exact, strict=True):
        np.testing.assert_allclose(one, other, rtol=1e-13, atol=1e-16)


def test_strided_columns_are_not_copied_whole(rng):
    # The columns of a C-ordered table are strided views: read a chunk at a time, never copied whole.
    table = rng.normal(size=(200_000, 4))
    views = [table[:, i] for i in range(4)]
    schedule = compile_schedule([over(ops.SUM, build.mul(w, x), j), build.call("sum", x)])
    tracemalloc.start()
    try:
        per_row, total = schedule.run({"w": np.ones(4)}, {"x": views})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Four terms of size ~1 summed in another order: equal to rounding in absolute terms
    # (a row whose terms cancel to 1e-5 may differ by 1e-12 relatively, as BLAS orders them).
    np.testing.assert_allclose(per_row, table.sum(axis=1), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(total, table.sum(axis=0), rtol=1e-12)
    assert peak < table.nbytes, peak  # the per-row output and a chunk (4 MB), not a copy of the table


def test_a_reduction_over_an_index_its_body_lacks_counts_the_labels():
    # The builders never make one (sum[j](c) is size(j)*c); evaluation still gives its value.
    values = {"v": np.array([1.0, 2.0])}
    made = [graph.apply(op, (v,), axis=j) for op in (ops.SUM, ops.MEAN, ops.LSE)]
    total, mean, lse = evaluate(made, values, sizes={"j": 3})
    np.testing.assert_array_equal(total, [3.0, 6.0])
    np.testing.assert_array_equal(mean, [1.0, 2.0])
    np.testing.assert_allclose(lse, np.array([1.0, 2.0]) + math.log(3), rtol=1e-15)


def test_no_rows_by_data_width_product_is_formed_for_the_network_gradient(monkeypatch):
    # dJ/dW[k,j] of the network sums t * v[k] * (1 - h[k]^2) * x[j] over each
    # block's rows: the per-row factors join the 16-wide side, and only the
    # matrix product meets the 50-wide data (no rows x 50 array is made).
    from exprgrad.backends import contract
    from exprgrad.fitting import prepare

    rng = np.random.default_rng(3)
    n, width = 3000, 50
    columns = {f"x{j + 1}": rng.standard_normal(n) for j in range(width)} | {"y": rng.standard_normal(n)}
    text = "k in 1:16; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"
    objective = prepare(columns, cost=text).objective
    formed = []
    real = contract._contract

    def watched(left, right, needed):
        array, labels = real(left, right, needed)
        if array.ndim >= 2 and any(a.ndim >= 2 and a.shape[-1] == width for a, _ in (left, right)):
            formed.append((left[1], right[1], labels, array.shape))
        return array, labels

    monkeypatch.setattr(contract, "_contract", watched)
    objective.value_grad(np.full(len(objective.params), 0.1))
    wide = [f for f in formed if width in f[3] and any(s >= 1024 for s in f[3])]
    assert not wide, wide
