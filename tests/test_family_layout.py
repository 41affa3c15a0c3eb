"""A derivative by families comes back in the families' written axes, everywhere.

d/dW[k,j] is k by j (W[k-1, j-1] is the member W[k,j]) from ``Function.grad``,
``diff --format json`` and the generated Python of ``diff --format python``; a
Hessian block [a][b] has a's written axes, then b's (both orders); an index a
derivative lacks is broadcast. Each is checked member by member against the
scalar program unrolled by hand (W1_2 for W[1,2]).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import exprgrad
from exprgrad.cli import cli

NETWORK = "k in 1:{K}; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"


def _unrolled(nk: int, nj: int) -> str:
    """The network as a scalar program: W1_2 is W[1,2], x2 the column of x[2]."""
    lines = []
    for k in range(1, nk + 1):
        inner = " + ".join(f"W{k}_{j}*x{j}" for j in range(1, nj + 1))
        lines.append(f"h{k} = tanh({inner} + b{k})")
    out = " + ".join(f"v{k}*h{k}" for k in range(1, nk + 1))
    return "; ".join([*lines, f"mean(({out} + c - y)^2)"])


def _sample(nk: int, nj: int, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    columns = {f"x{j}": rng.normal(size=rows) for j in range(1, nj + 1)}
    columns["y"] = rng.normal(size=rows)
    params = {
        "W": 0.7 * rng.normal(size=(nk, nj)),
        "b": 0.5 * rng.normal(size=nk),
        "v": rng.normal(size=nk),
        "c": 0.3,
    }
    flat = {f"W{k}_{j}": params["W"][k - 1, j - 1] for k in range(1, nk + 1) for j in range(1, nj + 1)}
    flat |= {f"b{k}": params["b"][k - 1] for k in range(1, nk + 1)}
    flat |= {f"v{k}": params["v"][k - 1] for k in range(1, nk + 1)} | {"c": 0.3}
    return columns, params, flat


def _members(name: str, nk: int, nj: int):
    """(position in the written axes, scalar name) of each member of W or v."""
    if name == "W":
        return [((k - 1, j - 1), f"W{k}_{j}") for k in range(1, nk + 1) for j in range(1, nj + 1)]
    return [((k - 1,), f"v{k}") for k in range(1, nk + 1)]


def _files(tmp_path, columns, params):
    csv = tmp_path / "data.csv"
    names = list(columns)
    table = np.column_stack([columns[n] for n in names])
    np.savetxt(csv, table, delimiter=",", header=",".join(names), comments="", fmt="%.17g")
    at = []
    for name, value in params.items():
        if np.ndim(value):
            path = tmp_path / f"{name}.json"
            path.write_text(json.dumps(np.asarray(value).tolist()))
            at.append(f"{name}=@{path}")
        else:
            at.append(f"{name}={value!r}")
    return str(csv), ",".join(at)


@pytest.mark.parametrize(
    ("nk", "nj"), [(16, 5), (3, 3)]
)  # the network; a square W (a transpose keeps the shape)
def test_gradient_is_in_the_written_axes_everywhere(runner, tmp_path, nk, nj):
    columns, params, flat = _sample(nk, nj, rows=40, seed=nk)
    text = NETWORK.format(K=nk)
    function = exprgrad.parse(text, columns=list(columns))
    scalar = exprgrad.parse(_unrolled(nk, nj), columns=list(columns))
    wanted = {name: scalar.diff(name).evaluate(columns, **flat) for name in flat if name[0] in "Wv"}

    api = function.grad("W,v")
    csv, at = _files(tmp_path, columns, params)
    result = runner.invoke(cli, ["diff", text, "--wrt", "W,v", "--format", "json", "--data", csv, "--at", at])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)["gradient"]
    result = runner.invoke(cli, ["diff", text, "--wrt", "W,v", "--format", "python"])
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(result.stdout, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    x = np.column_stack([columns[f"x{j}"] for j in range(1, nj + 1)])
    generated = namespace["derivatives"](params, {"x": x, "y": columns["y"]})

    for name, label, shape in [("W", "d/dW[k,j]", (nk, nj)), ("v", "d/dv[k]", (nk,))]:
        got = {
            "api": api[name].evaluate(columns, **params),
            "json": np.array(shown[name]),
            "python": generated[label],
        }
        for where, value in got.items():
            assert np.shape(value) == shape, (where, name)
            for position, member in _members(name, nk, nj):
                assert value[position] == pytest.approx(wanted[member], rel=1e-10, abs=1e-13), (where, member)


def test_hessian_blocks_are_in_the_first_then_the_second_family_axes(runner, tmp_path):
    nk, nj = 3, 3  # square: a block with its axes in the wrong order has the same shape
    columns, params, flat = _sample(nk, nj, rows=30, seed=7)
    text = NETWORK.format(K=nk)
    function = exprgrad.parse(text, columns=list(columns))
    scalar = exprgrad.parse(_unrolled(nk, nj), columns=list(columns))
    names = [name for name in flat if name[0] in "Wv"]
    table = scalar.hessian(names)

    api = function.hessian("W,v")
    csv, at = _files(tmp_path, columns, params)
    args = ["diff", text, "--wrt", "W,v", "--order", "2", "--format", "json", "--data", csv, "--at", at]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    result = runner.invoke(cli, ["diff", text, "--wrt", "W,v", "--order", "2", "--format", "python"])
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(result.stdout, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    x = np.column_stack([columns[f"x{j}"] for j in range(1, nj + 1)])
    generated = namespace["derivatives"](params, {"x": x, "y": columns["y"]})
    labels = {("W", "W"): "d2/dW[k,j]dW[k2,j2]", ("W", "v"): "d2/dW[k,j]dv[k2]", ("v", "v"): "d2/dv[k]dv[k2]"}

    # the [v][W] text is its own block's (v's axes first), not the [W][v] text
    assert document["hessian"]["v"]["W"] != document["hessian"]["W"]["v"]
    sizes = {"W": (nk, nj), "v": (nk,)}
    for a, b in [("W", "W"), ("W", "v"), ("v", "W"), ("v", "v")]:
        got = {
            "api": api[a][b].evaluate(columns, **params),
            "json": np.array(document["hessian_values"][a][b]),
        }
        if (a, b) in labels:
            got["python"] = generated[labels[(a, b)]]
        for where, value in got.items():
            assert np.shape(value) == (*sizes[a], *sizes[b]), (where, a, b)
            for p, first in _members(a, nk, nj):
                for q, second in _members(b, nk, nj):
                    want = table[first][second].evaluate(columns, **flat)
                    assert value[(*p, *q)] == pytest.approx(want, rel=1e-9, abs=1e-12), (where, first, second)


def test_an_index_the_derivative_lacks_is_broadcast(runner, tmp_path):
    text = "k in 1:3; j in 1:3; sum[k,j](W[k,j]*c[j])"
    W = np.arange(9.0).reshape(3, 3)
    c = np.array([1.0, 2.0, 3.0])
    want = np.broadcast_to(c, (3, 3))  # d/dW[k,j] = c[j], for every k
    function = exprgrad.parse(text)
    assert np.array_equal(function.grad("W")["W"].evaluate(W=W, c=c), want)
    (tmp_path / "W.json").write_text(json.dumps(W.tolist()))
    (tmp_path / "c.json").write_text(json.dumps(c.tolist()))
    at = f"W=@{tmp_path / 'W.json'},c=@{tmp_path / 'c.json'}"
    result = runner.invoke(cli, ["diff", text, "--order", "2", "--format", "json", "--at", at])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert np.array_equal(document["gradient"]["W"], want)
    assert np.array_equal(document["gradient"]["c"], W.sum(axis=0))
    hessian = document["hessian_values"]
    assert np.array_equal(hessian["W"]["W"], np.zeros((3, 3, 3, 3)))  # '0' has no indices at all
    eye = np.eye(3)
    # d2/dW[k,j]dc[j2] = (j == j2) for every k; [c][W] the same with c's axis first
    assert np.array_equal(hessian["W"]["c"], np.broadcast_to(eye[None, :, :], (3, 3, 3)))
    assert np.array_equal(hessian["c"]["W"], np.broadcast_to(eye[:, None, :], (3, 3, 3)))
    result = runner.invoke(cli, ["diff", text, "--order", "2", "--format", "python"])
    assert result.exit_code == 0, result.output
    namespace: dict = {}
    exec(compile(result.stdout, "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    generated = namespace["derivatives"]({"W": W, "c": c})
    assert np.array_equal(generated["d/dW[k,j]"], want)
    assert np.array_equal(generated["d2/dW[k,j]dW[k2,j2]"], np.zeros((3, 3, 3, 3)))
    assert np.array_equal(generated["d2/dW[k,j]dc[j2]"], np.broadcast_to(eye[None, :, :], (3, 3, 3)))


def test_a_drawing_lists_a_family_in_its_written_order():
    W = np.arange(9.0).reshape(3, 3)  # written order 0, 1, 2, ...; the transpose's 0, 3, 6, ...
    c = np.array([1.0, 2.0, 3.0])
    function = exprgrad.parse("k in 1:3; j in 1:3; sum[k,j](W[k,j]^2*c[j])")
    dot = function.to_dot("W", values={"W": W, "c": c})
    assert "[0, 1, 2, …]" in dot and "[0, 3, 6" not in dot
    assert "[0, 4, 12, …]" in dot  # dJ/dW[k,j] = 2*W[k,j]*c[j], k by j (its transpose: 0, 6, 12)
    # a data family's columns given by name (x1, x2, x3) beside the family W
    columns, params, _ = _sample(3, 3, rows=10, seed=3)
    network = exprgrad.parse(NETWORK.format(K=3), columns=list(columns))
    dot = network.to_dot(values={**columns, **params, "W": W})
    assert "[0, 1, 2, …]" in dot


def test_a_derivative_function_s_python_is_in_the_written_axes():
    W = np.arange(9.0).reshape(3, 3)
    c = np.array([1.0, 2.0, 3.0])
    function = exprgrad.parse("k in 1:3; j in 1:3; sum[k,j](W[k,j]^2*c[j])")
    table = function.hessian("W,c")
    for derivative in [function.grad("W")["W"], table["W"]["W"], table["W"]["c"], table["c"]["W"]]:
        namespace: dict = {}
        exec(compile(derivative.python(), "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
        # (k == k2) of d2/dW dW has no family over k: the caller gives k's size
        assert np.array_equal(
            namespace["f"]({"W": W, "c": c}, sizes={"k": 3}), derivative.evaluate(W=W, c=c)
        ), str(derivative)
    lacking = exprgrad.parse("k in 1:3; j in 1:3; sum[k,j](W[k,j]*c[j])").grad("W")["W"]  # c[j]: no k
    namespace = {}
    exec(compile(lacking.python(), "<generated>", "exec"), namespace)  # noqa: S102 - running generated code is the test
    assert np.array_equal(namespace["f"]({"W": W, "c": c}, sizes={"k": 3}), np.broadcast_to(c, (3, 3)))
