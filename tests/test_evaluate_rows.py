"""Evaluation over many rows: chunk sizes from the cache, kept buffers, threads, dot products per block."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
import threading

import numpy as np
import pytest

from exprgrad import build, graph, kernels, ops
from exprgrad.backends import chunks, indexed
from exprgrad.backends.evaluate import BLOCK_ROWS, compile_schedule, dot_factors, evaluate
from exprgrad.backends.python_source import to_python
from exprgrad.errors import ArgumentError

x = graph.var("x", per_row=True)
y = graph.var("y", per_row=True)
a, b = graph.var("a"), graph.var("b")

# More rows than three threads' minimum share, ending mid-block.
ROWS = 3 * chunks.MIN_THREAD_ROWS + 7


def _outputs():
    """A cost, its gradient's reductions (dot products and plain sums), a per-row output, a nested mean."""
    residual = build.sub(build.add(build.mul(a, x), b), y)
    centred = build.sub(x, build.call("mean", x))
    return [
        build.call("mean", build.pow_(residual, build.const(2))),
        build.call("mean", build.mul(residual, x)),  # a dot product per block
        build.call("sum", build.mul(build.call("exp", build.mul(a, x)), y)),
        build.call("sum", residual),
        residual,
        build.call("mean", build.pow_(centred, build.const(2))),
    ]


def _same(first, second) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(first, second, strict=True))


@pytest.fixture
def data(rng):
    return {"x": rng.normal(size=ROWS), "y": rng.normal(size=ROWS)}


def test_results_identical_whatever_the_threads_and_chunks(data):
    schedule = compile_schedule(_outputs())
    params = {"a": 0.7, "b": -0.2}
    first = schedule.run(params, data, threads=1, chunk_rows=BLOCK_ROWS)
    for threads in (1, 2, 3):
        for chunk_rows in (None, BLOCK_ROWS, 5 * BLOCK_ROWS, 10**7):
            again = schedule.run(params, data, threads=threads, chunk_rows=chunk_rows)
            assert _same(again, first), (threads, chunk_rows)
    np.testing.assert_allclose(first[1], np.mean((0.7 * data["x"] - 0.2 - data["y"]) * data["x"]), rtol=1e-12)


def test_thread_ranges_are_whole_blocks_in_order():
    for n in (0, 1, BLOCK_ROWS, ROWS, 10**6 + 3):
        for threads in (1, 2, 3, 8):
            parts = chunks.ranges(n, threads)
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(stop == start for (_, stop), (start, _) in itertools.pairwise(parts))
            assert all(start % BLOCK_ROWS == 0 for start, _ in parts)
            assert len(parts) <= threads


def test_returned_arrays_are_not_the_kept_buffers(data):
    schedule = compile_schedule([build.mul(a, x), build.call("sum", build.mul(a, x))])
    kept, _ = schedule.run({"a": 2.0}, data)
    copy = kept.copy()
    schedule.run({"a": -5.0}, data)
    assert np.array_equal(kept, copy)
    kept[:] = np.nan  # the caller's array: writing it changes no later result
    again, total = schedule.run({"a": 2.0}, data)
    assert np.array_equal(again, copy) and np.isfinite(total)


def test_buffers_are_kept_between_runs(data):
    schedule = compile_schedule(_outputs())
    schedule.run({"a": 0.7, "b": -0.2}, data, threads=1)
    (workspace,) = schedule._workspaces._spare
    schedule.run({"a": 0.1, "b": 0.2}, data, threads=1)
    assert schedule._workspaces._spare == [workspace]  # the same buffers, not new ones


def test_one_schedule_run_from_several_threads_at_once(data, rng):
    schedule = compile_schedule(_outputs())
    points = [{"a": float(v), "b": float(w)} for v, w in rng.normal(size=(8, 2))]
    expected = [schedule.run(p, data, threads=1) for p in points]
    got: dict = {}

    def work(k: int) -> None:
        for _ in range(3):
            got[k] = schedule.run(points[k], data, threads=1 + k % 2)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(len(points))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    for k in range(len(points)):
        assert _same(got[k], expected[k]), k


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_threads_and_chunk_rows_must_be_whole_numbers(bad, data):
    with pytest.raises(ArgumentError, match="^threads="):
        evaluate([build.call("sum", x)], {}, data, threads=bad)
    with pytest.raises(ArgumentError, match="^chunk_rows="):
        evaluate([build.call("sum", x)], {}, data, chunk_rows=bad)


def test_chunk_rows_are_whole_blocks_within_bounds():
    for buffers in (0, 1, 10, 100, 10_000):
        rows = chunks.chunk_rows(buffers, 2, None)
        assert rows % BLOCK_ROWS == 0 and chunks.MIN_ROWS <= rows <= chunks.MAX_ROWS
    assert chunks.chunk_rows(200, 2, None) <= chunks.chunk_rows(10, 2, None)
    assert chunks.chunk_rows(5, 1, 1) == BLOCK_ROWS
    assert chunks.chunk_rows(5, 1, BLOCK_ROWS + 1) == 2 * BLOCK_ROWS
    assert chunks.cache_bytes() > 0


def test_cache_sizes_read_as_sysfs_writes_them():
    assert (
        chunks._bytes("32768K") == 32 << 20 and chunks._bytes("1M") == 1 << 20 and chunks._bytes("512") == 512
    )
    assert chunks._cpu_count("0-1") == 2 and chunks._cpu_count("0,2-5,7") == 6


# ---------------------------------------------------------------- dot products per block


def test_a_product_of_two_per_row_values_is_a_dot():
    assert dot_factors(build.call("sum", build.mul(x, y))) == build.mul(x, y).inputs
    assert dot_factors(build.call("mean", build.mul(x, build.call("exp", y)))) is not None
    assert dot_factors(build.call("sum", build.mul(a, x))) is None  # a scalar factor
    assert dot_factors(build.call("sum", build.mul(x, y, build.call("exp", x)))) is None  # three factors
    assert dot_factors(build.call("sum", x)) is None


def test_dot_sums_are_the_kernel_of_generated_code(rng):
    values = {"x": rng.normal(size=ROWS), "y": rng.normal(size=ROWS)}
    total, mean = evaluate(
        [build.call("sum", build.mul(x, y)), build.call("mean", build.mul(x, y))], {}, values
    )
    assert total == kernels.reduce_dot(values["x"], values["y"], ROWS)
    assert mean == kernels.reduce_dot(values["x"], values["y"], ROWS, True)
    assert abs(total - np.dot(values["x"], values["y"])) < 1e-10 * np.abs(values["x"] * values["y"]).sum()


def test_dot_with_overflow_inf_and_nan_keeps_the_block_sums_rules():
    big = np.full(3 * BLOCK_ROWS, 1e154)
    # Products 1e308, 1e308, -1e308, -1e308, ...: finite, their total 0, their running sums past the range.
    signs = np.resize([1e154, 1e154, -1e154, -1e154], 3 * BLOCK_ROWS)
    assert kernels.exact_sum(kernels.block_dots(big, signs)) == 0.0  # where one BLAS dot gives nan
    assert evaluate([build.call("sum", build.mul(x, y))], {}, {"x": big, "y": signs})[0] == 0.0
    with_inf = np.ones(3 * BLOCK_ROWS)
    with_inf[5] = np.inf
    assert evaluate([build.call("sum", build.mul(x, y))], {}, {"x": with_inf, "y": big})[0] == np.inf
    with_nan = with_inf.copy()
    with_nan[7] = np.nan
    assert np.isnan(evaluate([build.call("sum", build.mul(x, y))], {}, {"x": with_nan, "y": big})[0])


def test_dot_with_a_column_given_as_one_number(rng):
    values = rng.normal(size=5000)
    node = build.call("sum", build.mul(x, y))
    got = evaluate([node], {"y": 3.0}, {"x": values})[0]
    assert got == kernels.reduce_sum(values * 3.0, 5000)
    assert evaluate([node], {"x": 2.0, "y": 3.0})[0] == 6.0  # no data: one row
    assert evaluate([node], {"x": 2.0, "y": 3.0}, {"z": np.zeros(4)})[0] == 24.0


def test_no_rows_and_short_data(rng):
    for n in (0, 1, 5, BLOCK_ROWS - 1, BLOCK_ROWS + 1):
        data = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
        for threads in (1, 2):
            total, mean, rows = evaluate(
                [build.call("sum", build.mul(x, y)), build.call("mean", x), build.mul(x, y)],
                {},
                data,
                threads=threads,
            )
            assert rows.shape == (n,)
            assert total == kernels.reduce_dot(data["x"], data["y"], n)
            assert (np.isnan(mean) and n == 0) or mean == kernels.reduce_mean(data["x"], n)


def _run_generated(source: str, params, data):
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    return namespace["f"](params, data)


def test_generated_python_sums_a_product_as_the_evaluator_does_bit_for_bit(rng):
    residual = build.sub(build.mul(a, x), y)
    named = {
        "dot": build.call("sum", build.mul(x, y)),
        "grad": build.call("mean", build.mul(residual, build.call("exp", x))),
        "three": build.call("mean", build.mul(residual, x, y)),  # not a dot: the product, summed
    }
    source = to_python(named)
    assert "reduce_dot(" in source
    for n in (5, ROWS):
        data = {"x": rng.normal(size=n), "y": rng.normal(size=n)}
        got = _run_generated(source, {"a": 0.3}, data)
        for threads in (1, 2, 3):
            expected = evaluate(list(named.values()), {"a": 0.3}, data, threads=threads)
            assert [got[k] for k in named] == expected, (n, threads)
    point = {"a": 0.3, "x": 1.5, "y": -2.0}  # no data: one row of numbers
    got = _run_generated(source, point, None)
    assert [got[k] for k in named] == evaluate(list(named.values()), point)


# ---------------------------------------------------------------- a part shared by several ops


def test_sigmoid_and_softplus_of_one_operand_share_its_exp(rng):
    z = build.add(build.mul(a, x), b)
    cost = build.call("mean", build.sub(build.call("softplus", z), build.mul(y, z)))
    gradient = build.call("mean", build.sub(build.call("sigmoid", z), y))
    schedule = compile_schedule([cost, gradient, build.call("softplus", z), build.call("sigmoid", z)])
    (plan,) = schedule.passes
    assert [step.fn for step in plan.steps].count(kernels.exp_neg_abs) == 1
    edges = [0.0, -0.0, 1e-300, -1e-300, 36.0, -36.0, 37.0, -37.0, 710.0, -745.0, 800.0, -800.0]
    values = np.concatenate([edges, [np.inf, -np.inf, np.nan], rng.normal(0.0, 5.0, 3000)])
    data = {"x": values, "y": rng.uniform(size=len(values))}
    _, _, soft, sig = schedule.run({"a": 1.0, "b": 0.0}, data)
    # The same numbers as each op's own kernel (generated Python's), bit for bit ...
    assert np.array_equal(soft, kernels.softplus(values), equal_nan=True)
    assert np.array_equal(sig, kernels.sigmoid(values), equal_nan=True)
    # ... and within 3 ulp of numpy's logaddexp(0, z), 1/(1 + exp(-z)) exactly as before.
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(soft, np.logaddexp(0.0, values), rtol=4.5e-16, atol=0)
        reference = np.where(values >= 0, 1 / (1 + np.exp(-np.abs(values))), 0.0)
        reference = np.where(values >= 0, reference, np.exp(-np.abs(values)) / (1 + np.exp(-np.abs(values))))
    assert np.array_equal(sig, reference, equal_nan=True)
    assert soft[values == 800.0] == 800.0 and soft[values == -800.0] == 0.0 and sig[values == -800.0] == 0.0


def test_one_op_alone_takes_its_own_kernel():
    z = build.mul(a, x)
    (plan,) = compile_schedule([build.call("mean", build.call("softplus", z))]).passes
    assert kernels.exp_neg_abs not in [step.fn for step in plan.steps]
    assert kernels.softplus in [step.fn for step in plan.steps]


def test_families_share_the_exp_too(rng):
    j = graph.index("j")
    w, xj = graph.var("w", (j,)), graph.var("x", (graph.ROWS, j))
    z = build.add(build.reduce(ops.SUM, build.mul(w, xj), j), b)
    outputs = [
        build.call("softplus", z),
        build.call("sigmoid", z),
        build.call("mean", build.call("softplus", z)),
    ]
    calls = []
    common = ops.SIGMOID.shares[0]
    assert ops.SOFTPLUS.shares[0] is common is kernels.exp_neg_abs

    def counted(*args, **kwargs):
        calls.append(1)
        return common(*args, **kwargs)

    X = rng.normal(0.0, 3.0, (3000, 4))
    kept = {spec: spec.shares for spec in (ops.SIGMOID, ops.SOFTPLUS)}
    try:
        for spec, shares in kept.items():  # a frozen entry, counted for this test only
            object.__setattr__(spec, "shares", (counted, shares[1]))
        soft, sig, mean = evaluate(
            outputs, {"w": np.arange(1.0, 5.0), "b": 0.5}, {"x": X}, chunk_rows=BLOCK_ROWS
        )
    finally:
        for spec, shares in kept.items():
            object.__setattr__(spec, "shares", shares)
    assert len(calls) == 3  # once a chunk of 1,024 rows for both ops
    zv = X @ np.arange(1.0, 5.0) + 0.5
    np.testing.assert_allclose(soft, kernels.softplus(zv), rtol=1e-15)
    np.testing.assert_allclose(sig, kernels.sigmoid(zv), rtol=1e-15)
    assert abs(mean - np.mean(np.logaddexp(0.0, zv))) <= 1e-14 * abs(mean)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threads_work_in_a_forked_child(data):
    schedule = compile_schedule(_outputs())
    expected = schedule.run({"a": 0.7, "b": -0.2}, data, threads=2)  # the parent's workers start
    receive, send = multiprocessing.Pipe(duplex=False)

    def child():
        send.send(schedule.run({"a": 0.7, "b": -0.2}, data, threads=2))

    process = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    process.start()
    assert receive.poll(60), "the forked child's threads never ran"
    got = receive.recv()
    process.join(10)
    assert _same(got, expected)


def test_a_schedule_pickles_without_its_buffers(data):
    schedule = compile_schedule([build.call("sum", build.mul(x, y))])
    schedule.run({}, data)
    copy = pickle.loads(pickle.dumps(schedule._workspaces))
    assert copy._spare == []


# ---------------------------------------------------------------- index families over threads


# 20: over 61 blocks the block sums are kept in groups of 16 (3 labels) and 8 (2 labels) blocks,
# which threads splitting the rows at blocks 20 and 40 would cut.
@pytest.mark.parametrize("kept_sums", [indexed.KEPT_SUMS, 20])
def test_family_results_identical_whatever_the_threads_and_chunks(rng, monkeypatch, kept_sums):
    monkeypatch.setattr(indexed, "KEPT_SUMS", kept_sums)
    rows = 60 * BLOCK_ROWS + 5
    j, k = graph.index("j"), graph.index("k")
    xj, w, W = graph.var("x", (graph.ROWS, j)), graph.var("w", (j,)), graph.var("W", (k, j))
    z = build.add(build.reduce(ops.SUM, build.mul(w, xj), j), b)
    h = build.call("tanh", build.reduce(ops.SUM, build.mul(W, xj), j))
    t1 = build.sub(build.call("sigmoid", z), y)
    outputs = [
        build.call("mean", build.sub(build.call("softplus", z), build.mul(y, z))),
        build.reduce(ops.MEAN, build.mul(xj, t1), graph.ROWS),  # one sum a block and label
        build.reduce(ops.SUM, build.mul(h, t1), graph.ROWS),
        build.reduce(ops.MEAN, h, graph.ROWS),
        h,
    ]
    data = {"x": rng.normal(size=(rows, 3)), "y": rng.uniform(size=rows)}
    params = {"w": np.array([0.5, -1.0, 2.0]), "W": rng.normal(size=(2, 3)), "b": 0.1}
    schedule = compile_schedule(outputs)
    first = schedule.run(params, data, threads=1, chunk_rows=BLOCK_ROWS)
    for threads in (1, 2, 3):
        for chunk_rows in (None, 3 * BLOCK_ROWS):
            assert _same(schedule.run(params, data, threads=threads, chunk_rows=chunk_rows), first), threads
    zv = data["x"] @ params["w"] + 0.1
    expected = np.mean(data["x"] * (kernels.sigmoid(zv) - data["y"])[:, None], axis=0)
    np.testing.assert_allclose(first[1], expected, rtol=1e-12)
