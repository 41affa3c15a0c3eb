"""Accuracy on NIST StRD regression problems: a fast subset with certified answers.

The data (public domain, NIST) is in tests/data/nist/; benchmarks/bench_nist.py
runs all 38 problems. LRE = digits that agree with the certified value.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import NIST_DATA as DATA
from helpers import NIST_PROBLEMS as PROBLEMS
from helpers import lre

from exprgrad.fitting import fit
from exprgrad.fitting.data import load_csv


def solve(name: str, start: str | None):
    problem = PROBLEMS[name]
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    target = "y"
    if problem["response"] == "log(y)":
        columns["log_y"], target = np.log(columns["y"]), "log_y"
    init = None if start is None else dict(zip(problem["params"], map(float, problem[start])))
    result = fit(columns, model=problem["model"], target=target, init=init)
    digits = problem["certified_digits"]
    names = problem["params"]
    values = min(lre(result.params[n], c, digits) for n, c in zip(names, problem["certified_values"]))
    errors = min(lre(result.stderr[n], c, digits) for n, c in zip(names, problem["certified_std_dev"]))
    return result, values, errors


@pytest.mark.parametrize("start", ["start1", "start2"])
@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09", "BoxBOD", "Nelson"])
def test_nonlinear_problem_reaches_six_digits(name, start):
    result, values, errors = solve(name, start)
    assert result.method == "lm"
    assert result.converged, result.message
    assert values >= 6, f"{name} from {start}: parameters LRE {values:.1f}"
    assert errors >= 4, f"{name} from {start}: standard errors LRE {errors:.1f}"


@pytest.mark.parametrize("name", ["Longley", "Filip"])
def test_linear_problem_reaches_seven_digits_without_iterating(name):
    result, values, errors = solve(name, None)
    assert result.method == "qr"
    assert result.iterations == 0
    assert "linear in the parameters: solved directly by QR" in result.message
    assert values >= 7, f"{name}: parameters LRE {values:.1f}"
    assert errors >= 4, f"{name}: standard errors LRE {errors:.1f}"


def test_filip_reports_its_ill_conditioning():
    result, _, _ = solve("Filip", None)
    assert "ill-conditioned" in result.message
    assert result.condition > 1e9


def test_certified_residual_sum_of_squares():
    for name, start in [("Misra1a", "start1"), ("Longley", None)]:
        result, _, _ = solve(name, start)
        problem = PROBLEMS[name]
        assert lre(result.rss, problem["residual_sum_of_squares"], problem["certified_digits"]) >= 8


@pytest.mark.parametrize("form", ["sum(({r})^2)", "mean(({r})^2)/2"])
@pytest.mark.parametrize("name", ["Misra1a", "Thurber", "MGH09", "BoxBOD", "Nelson"])
def test_a_sum_of_squares_cost_is_fitted_as_least_squares(name, form):
    problem = PROBLEMS[name]
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    init = dict(zip(problem["params"], map(float, problem["start1"])))
    cost = form.format(r=problem["residual"])  # Nelson's residual reads log(y) itself
    result = fit(columns, cost=cost, init=init)
    assert result.method == "lm" and result.converged, result.message
    digits = problem["certified_digits"]
    names = problem["params"]
    values = min(lre(result.params[n], c, digits) for n, c in zip(names, problem["certified_values"]))
    errors = min(lre(result.stderr[n], c, digits) for n, c in zip(names, problem["certified_std_dev"]))
    assert values >= 6, f"{name}: parameters LRE {values:.1f}"
    assert errors >= 4, f"{name}: standard errors LRE {errors:.1f}"
