"""Index families: indices on graph nodes, reductions over an index, renaming, lowering."""

from __future__ import annotations

import pickle

import pytest

from exprgrad import build, graph, ops

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
