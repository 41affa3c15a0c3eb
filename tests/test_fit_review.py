"""A fit's symmetric-start check looks at whole units; data families as one 2-d array."""

from __future__ import annotations

import numpy as np
import pytest

import exprgrad
from exprgrad.errors import ArgumentError, DataError
from exprgrad.fitting.members import Members
from exprgrad.fitting.problem import prepare

SOFTMAX = "z[k] = sum[j](W[k,j]*x[j]) + b[k];  mean(logsumexp[k](z[k]) - sum[k](Y[k]*z[k]))"
NETWORK = "k in 1:3;  h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]);  mean((sum[k](v[k]*h[k]) + c - y)^2)"


def _classes(counts=(4, 4, 2), features=2, seed=0) -> dict:
    """Softmax data: features x1.., one-hot Y1.., classes 1 and 2 of the same count."""
    rng = np.random.default_rng(seed)
    label = np.repeat(np.arange(len(counts)), counts)
    data = {f"x{j + 1}": rng.normal(size=len(label)) for j in range(features)}
    data.update({f"Y{k + 1}": (label == k).astype(float) for k in range(len(counts))})
    return data


def _symmetric(warnings) -> list[str]:
    return [w for w in warnings if "symmetric" in w]


def test_classes_of_the_same_count_are_not_a_symmetric_start():
    # b[1] and b[2] start equal with equal gradients (equal counts), but W[1,:] and W[2,:]
    # have different gradients and Y1, Y2 differ: the classes are not symmetric.
    assert _symmetric(prepare(_classes(), cost=SOFTMAX).warnings) == []
    # Without W, the intercepts alone: Y1 and Y2 still tell them apart.
    only_b = "mean(logsumexp[k](b[k]) - sum[k](Y[k]*b[k]))"
    assert _symmetric(prepare(_classes(), cost=only_b).warnings) == []


def test_equal_units_of_a_network_are_still_a_symmetric_start():
    rng = np.random.default_rng(1)
    data = {f"x{j}": rng.normal(size=30) for j in (1, 2)} | {"y": rng.normal(size=30)}
    notes = _symmetric(prepare(data, cost=NETWORK, init={"W": 0.1, "v": 0.1}).warnings)
    assert notes and "W[k,j] (all 3 units along k), b[k] (all 3 members along k) and v[k]" in notes[0]
    assert _symmetric(prepare(data, cost=NETWORK, init="random:1").warnings) == []


def test_a_unit_is_symmetric_only_when_every_family_on_its_index_is():
    members = Members.of([], {"W": (("k", "j"), ((1, 2, 3), (1, 2))), "b": (("k",), ((1, 2, 3),))})
    x = np.zeros(members.size)
    equal_b = members.vector({"W": np.array([[1.0, 2], [3, 4], [5, 6]]), "b": 0.5})
    assert members.symmetric(x, equal_b) == []
    every = members.vector({"W": np.array([[1.0, 2], [1, 2], [5, 6]]), "b": 0.5})
    notes = members.symmetric(x, every)
    assert notes and "W[k,j] (units k = 1, 2) and b[k] (members k = 1, 2)" in notes[0]
    # Data on the index that differs at k = 1 and 2 (Y1, Y2) tells them apart.
    differ = {"k": [np.array([[1.0, 0], [0, 1], [0, 0]])]}
    assert members.symmetric(x, every, differ) == []
    same = {"k": [np.array([[1.0, 0], [1, 0], [0, 1]])]}
    assert members.symmetric(x, every, same) == notes


def _network_data(rows=40, features=4, seed=2):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features))
    return x, np.tanh(x @ rng.normal(size=(3, features)).T).sum(axis=1)


def test_a_data_family_evaluates_from_one_rows_by_labels_array():
    x, y = _network_data()
    f = exprgrad.parse(NETWORK)
    values = {"W": np.full((3, 4), 0.2), "b": np.arange(3.0), "v": np.ones(3), "c": 0.5}
    expected = np.mean((np.tanh(x @ values["W"].T + values["b"]) @ values["v"] + 0.5 - y) ** 2)
    assert f.evaluate(x=x, y=y, **values) == pytest.approx(expected, rel=1e-12)
    assert f.evaluate({"x": x, "y": y}, **values) == pytest.approx(expected, rel=1e-12)
    assert np.size(f.grad("W")["W"].evaluate(x=x, y=y, **values)) == 12
    with pytest.raises(ArgumentError, match="y: must be one-dimensional"):
        f.evaluate(x=x, y=x, **values)  # a 2-d array for a column stays an error
    with pytest.raises(ArgumentError, match="complex"):
        f.evaluate(x=x.astype(complex), y=y, **values)


def test_fit_takes_a_data_family_as_one_rows_by_labels_array():
    x, y = _network_data()
    columns = {f"x{j + 1}": x[:, j] for j in range(4)} | {"y": y}
    whole = exprgrad.fit({"x": x, "y": y}, cost=NETWORK, init="random:1", max_iter=30)
    split = exprgrad.fit(columns, cost=NETWORK, init="random:1", max_iter=30)
    assert whole.params == pytest.approx(split.params, rel=1e-9, abs=1e-12)
    assert set(whole.params) >= {"W[3,4]", "b[3]", "v[1]", "c"}
    with pytest.raises(DataError, match="'x' is given as a 2-d array .* reads it as one column"):
        exprgrad.fit({"x": x, "y": y}, cost="mean((a*x - y)^2)")
    with pytest.raises(DataError, match="'x1' is given twice"):
        exprgrad.fit({"x": x, "x1": y, "y": y}, cost=NETWORK)


def test_a_damped_newton_step_solves_on_the_cholesky_factor(monkeypatch):
    from exprgrad.fitting import newton

    rng = np.random.default_rng(3)
    a = rng.normal(size=(30, 30))
    hess, grad = a @ a.T, rng.normal(size=30)
    expected = -np.linalg.solve(hess + 0.5 * np.eye(30), grad)

    def general_solve(*args, **kwargs):  # an LU solve per step: slow on busy cores
        raise AssertionError("the step refactors the matrix with a general solve")

    monkeypatch.setattr(np.linalg, "solve", general_solve)
    step, damping = newton._damped_step(hess, grad, 0.5)
    assert damping == 0.5 and step == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # Not positive definite: the damping rises until it is, and the step solves that system.
    step, damping = newton._damped_step(
        hess - 2 * np.abs(np.linalg.eigvalsh(hess)).max() * np.eye(30), grad, 0.0
    )
    assert damping > 0 and np.all(np.isfinite(step))
