"""Graph algebra: interning, the smart constructors' identities, operand order, toposort."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import exprgrad
from exprgrad import build, graph, interning, ops
from exprgrad.errors import ArityError

a, b, c = graph.var("a"), graph.var("b"), graph.var("c")
x = graph.var("x", per_row=True)


def test_same_leaf_is_same_node():
    assert graph.var("a") is a
    assert build.const(2.0) is build.const(2)
    assert build.const(-0.0) is build.ZERO


def test_commutative_operands_are_one_node():
    assert build.mul(a, b) is build.mul(b, a)
    assert build.add(a, b, c) is build.add(c, a, b)


def test_identities():
    assert build.add(a, build.ZERO) is a
    assert build.mul(a, build.ONE) is a
    assert build.mul(a, build.ZERO) is build.ZERO
    assert build.pow_(a, build.ONE) is a
    assert build.pow_(a, build.ZERO) is build.ONE
    assert build.neg(build.neg(a)) is a
    assert build.sub(a, a) is build.ZERO
    assert build.div(a, build.ONE) is a


def test_constant_folding_keeps_inexact_results_symbolic():
    assert build.mul(build.const(2), build.const(3)) is build.const(6)
    assert build.call("exp", build.ZERO) is build.ONE
    assert build.div(build.ONE, build.const(3)).op is ops.DIV  # 1/3 stays as written
    assert build.call(ops.LOG, build.const(2)).op is ops.LOG
    assert build.named_const("pi").name == "pi"
    assert build.mul(build.const(2), build.named_const("pi")).op is ops.MUL  # 2*pi stays


def test_signs_move_out_of_products():
    assert build.mul(build.neg(a), b) is build.neg(build.mul(a, b))
    assert build.mul(build.neg(a), build.neg(b)) is build.mul(a, b)
    assert build.add(a, build.neg(b)) is build.sub(a, b)


def test_per_row_flags():
    assert x.per_row and not a.per_row
    assert build.mul(a, x).per_row
    assert not build.call("mean", build.mul(a, x)).per_row
    assert build.call("mean", a) is a  # the mean of a scalar is the scalar


def test_arity_checked():
    with pytest.raises(ArityError, match="takes 1 argument"):
        build.call("sin", a, b)
    with pytest.raises(ArityError, match="takes 2 arguments"):
        build.call("atan2", a)


def test_toposort_inputs_first_each_once():
    shared = build.mul(a, x)
    f = build.add(build.call("sin", shared), build.call("cos", shared))
    order = graph.toposort([f])
    position = {n: i for i, n in enumerate(order)}
    assert len(order) == len(set(order))
    for node in order:
        for child in node.inputs:
            assert position[child] < position[node]


def test_deep_chain_is_iterative():
    node = x
    for _ in range(20000):
        node = build.call("sin", node)
    assert graph.count_nodes([node]) == 20001


def test_sort_key_is_stable_across_processes():
    # The key must not depend on Python's per-process string hashing.
    import subprocess
    import sys

    code = (
        "from exprgrad import build, graph; "
        "print(build.mul(build.call('sin', graph.var('a')), build.call('cos', graph.var('b'))).inputs[0].op.name)"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": ""},
            cwd=str(_root()),
        ).stdout
        for seed in (1, 2, 3)
    }
    assert len(outs) == 1


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def test_variables_in_natural_order():
    nodes = [graph.var(f"theta[{i}]") for i in (10, 2, 1)]
    assert [v.name for v in graph.variables([build.add(*nodes)])] == ["theta[1]", "theta[2]", "theta[10]"]
    assert math.isclose(build.named_const("e").value, math.e)


# ---------------------------------------------------------------- weak interning


def _fresh_sum(i: int) -> graph.Node:
    return build.add(
        build.mul(graph.var(f"w{i}"), build.call("sin", graph.var(f"u{i}"))), build.const(i + 0.5)
    )


def test_interning_is_hash_consing_while_a_node_lives():
    node = _fresh_sum(7)
    (inner,) = [i for i in node.inputs if i.op is ops.MUL]
    assert _fresh_sum(7) is node
    del node
    # A node still used elsewhere (here: as ``inner``) stays the one node.
    assert build.mul(graph.var("w7"), build.call("sin", graph.var("u7"))) is inner


def test_unused_nodes_leave_the_table():
    before = interning.interned_count()
    kept = [_fresh_sum(i) for i in range(200)]
    assert interning.interned_count() >= before + 200 * 5
    del kept
    assert interning.interned_count() == before


def test_a_deep_chain_is_freed_without_recursion():
    import gc

    gc.collect()  # earlier tests' garbage cycles, freed now rather than during the chain
    before = interning.interned_count()
    node = graph.var("deep_chain_leaf")
    for _ in range(50_000):
        node = build.call("sin", node)
    assert interning.interned_count() >= before + 50_000
    del node
    interning.interned_count()  # a sweep
    # Every node of the chain holds the leaf, so the leaf gone means the whole chain
    # is; counting the table instead would also count what other tests leave alive.
    assert not any(n.is_var and n.name == "deep_chain_leaf" for n in interning.table.values())


def _parse_and_grad(i: int) -> None:
    import exprgrad

    exprgrad.parse(f"mean((a*x + b*{i} - y)^2) + sin(c*{i + 0.5})").grad()


def test_nodes_of_dropped_functions_are_not_kept():
    _parse_and_grad(0)
    before = interning.interned_count()
    for i in range(300):  # about 10,000 distinct nodes in all
        _parse_and_grad(1000 + i)
    assert interning.interned_count() <= before + 50


@pytest.mark.slow
def test_memory_stays_bounded_over_many_parse_and_grad_calls():
    import gc
    import tracemalloc

    for i in range(100):
        _parse_and_grad(i)
    gc.collect()
    # Only what exprgrad's own code allocated counts: a thread an earlier test
    # left running (a cluster's event loop) allocates in the same process.
    ours = [tracemalloc.Filter(True, str(Path(exprgrad.__file__).parent / "*"))]
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot().filter_traces(ours)
        for i in range(400):
            _parse_and_grad(1000 + i)
        gc.collect()
        end = tracemalloc.take_snapshot().filter_traces(ours)
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in end.compare_to(start, "filename"))
    # Kept whole, the nodes of 400 calls took 4.4 MB; the table keeps at
    # most a sweep's worth of dead ones (a few thousand nodes).
    assert grown < 1_500_000, f"{grown:,} bytes kept after 400 calls"


# ---------------------------------------------------------------- ops by identity, signs


def test_every_entry_is_a_named_constant_that_nodes_carry():
    for name, spec in ops.OPS.items():
        assert getattr(ops, name.upper()) is spec
    a = graph.var("a")
    assert build.call("sin", a).op is ops.SIN and build.call(ops.SIN, a).op is ops.SIN
    assert build.const(1.5).op is graph.CONST and a.op is graph.VAR
    assert build.add(a, build.call(ops.COS, a)).op is ops.ADD


def test_algebraic_roles_are_registry_fields():
    linear = {spec: spec.linear_form for spec in ops.OPS.values() if spec.linear_form != ()}
    assert linear == {ops.ADD: None, ops.SUB: (1, -1), ops.NEG: (-1,)}
    powers = {spec: spec.power_form for spec in ops.OPS.values() if spec.power_form != ()}
    assert powers == {ops.MUL: None, ops.DIV: (1, -1), ops.POW: ops.POWER_FORM, ops.SQRT: (0.5,)}
    assert ops.OPS[ops.ADD.inverse] is ops.SUB and ops.OPS[ops.MUL.inverse] is ops.DIV


def test_split_sign_reads_a_node_as_what_neg_builds():
    a, b = graph.var("a"), graph.var("b")
    for u in (a, build.mul(a, b), build.call(ops.SIN, a), build.const(2), build.named_const("pi")):
        assert build.split_sign(build.neg(u)) == (-1, u)
        assert build.split_sign(u) == (1, u)
    assert build.split_sign(build.const(-2.5)) == (-1, build.const(2.5))
    raw = graph.apply(ops.NEG, (build.neg(a),))  # -(-a), which the builder makes a
    assert build.split_sign(raw) == (1, raw)


def test_ops_are_compared_by_identity_never_by_name():
    # An op is its registry entry: code that compares a node's op with a name
    # string finds nothing, so no stage can branch on names.
    node = build.add(graph.var("a"), graph.var("b"))
    assert node.op is ops.ADD and node.op != "add" and graph.VAR != "var"
    assert {ops.ADD: 1}.get("add") is None
