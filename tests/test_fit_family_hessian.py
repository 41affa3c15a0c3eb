"""Newton's method and nll over index families whose Hessian has Kronecker-delta terms.

Classes tested: the Hessian of a family cost (the network's d2/dW[k,j]dv[k2],
the softmax's d2/dW[k,j]dW[k2,j2]) flattens into the members in the
vector's order, equal to central differences of the exact gradient and
symmetric; newton fits the network sample to its known minimum; nll on the
softmax sample (a valley: the Hessian is singular) converges and says why it
has no standard errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from exprgrad.fitting import fit, prepare

FAMILIES = "samples/families/"


def sample(root, name):
    folder = root / FAMILIES
    cost = (folder / f"{name}.exprgrad").read_text()
    minimum = json.loads((folder / f"{name}.minimum.json").read_text())
    truth = json.loads((folder / f"{name}.truth.json").read_text())
    return folder / f"{name}.csv", cost, minimum, truth


@pytest.fixture
def root(samples):
    return samples.parent


@pytest.mark.parametrize("name", ["network", "softmax", "logistic"])
def test_family_hessian_is_the_derivative_of_the_gradient_member_by_member(root, name, rng):
    path, cost, _, truth = sample(root, name)
    problem = prepare(path, cost=cost, init=truth)
    objective = problem.objective
    x = problem.x0 + rng.normal(scale=0.1, size=len(problem.x0))
    matrix = objective.hessian(x)
    step, p = 1e-5, len(x)
    differences = np.empty((p, p))
    for i in range(p):
        e = np.zeros(p)
        e[i] = step
        differences[:, i] = (objective.value_grad(x + e)[1] - objective.value_grad(x - e)[1]) / (2 * step)
    assert np.array_equal(matrix, matrix.T)
    assert np.allclose(matrix, differences, rtol=1e-6, atol=1e-7 * np.max(np.abs(matrix)))


def test_newton_fits_the_network_sample_to_its_minimum(root):
    path, cost, minimum, truth = sample(root, "network")
    result = fit(path, cost=cost, method="newton", init=truth)
    assert result.method == "newton" and result.converged, result.message
    assert list(result.params) == list(minimum) or set(result.params) == set(minimum)
    assert max(abs(result.params[name] - value) for name, value in minimum.items()) < 2e-6


def test_nll_on_the_softmax_valley_converges_without_standard_errors(root):
    path, cost, minimum, _ = sample(root, "softmax")
    result = fit(path, cost=cost, nll=True)
    assert result.method == "newton" and result.converged, result.message
    assert all(v is None for v in result.stderr.values())
    assert "the Hessian is not positive definite" in result.message
    for name, value in minimum.items():  # the valley: differences from class 1 are pinned down
        family, labels = name[:-1].split("[")
        reference = f"{family}[1{labels[labels.index(',') :] if ',' in labels else ''}]"
        assert result.params[name] - result.params[reference] == pytest.approx(value, abs=2e-6)
