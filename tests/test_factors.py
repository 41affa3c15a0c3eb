"""Least-squares factors per leaf of rows (TSQR): the same bits whatever the partitions.

NIST StRD linear problems (tests/data/nist/) are split into small leaves and
into partitions of whole leaves in several ways: the combined factors, the
direct solve and its standard errors must not change by a bit, and keep the
certified accuracy test_nist requires.
"""

from __future__ import annotations

import ast
import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import NIST_DATA as DATA
from helpers import NIST_PROBLEMS as PROBLEMS
from helpers import lre

from exprgrad.fitting import fit, prepare
from exprgrad.fitting.data import load_csv
from exprgrad.fitting.factors import LEAF_ROWS, Factors, Refinement, add_sums, combine, factor, leaf_factors
from exprgrad.fitting.linear import least_squares_stderr, solve_direct, solve_factored
from exprgrad.fitting.objective import Objective
from exprgrad.kernels import BLOCK_ROWS, block_sums, exact_sum


class Partitions:
    """Refinement over several partitions, as a cluster would run it: sums gathered, steps sent back."""

    def __init__(self, parts):
        self.parts = parts

    def begin(self, x):
        for part in self.parts:
            part.begin(x)

    def sums(self, x):
        return [item for part in self.parts for item in part.sums(x)]

    def advance(self, delta):
        for part in self.parts:
            part.advance(delta)


def linear_problem(name: str):
    """(problem, parameter names, r and J at the origin) of a NIST linear problem."""
    problem = PROBLEMS[name]
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    prepared = prepare(columns, model=problem["model"], target="y")
    r, matrix = prepared.objective.residuals_jacobian(np.zeros(len(prepared.params)))
    return problem, prepared.params, r, matrix


def partitioned(r, matrix, bounds, leaf_rows):
    """Leaves made partition by partition; ``bounds`` are the partitions' first rows (leaf multiples)."""
    edges = [*bounds, len(r)]
    return [leaf_factors(r[a:b], matrix[a:b], a, leaf_rows) for a, b in itertools.pairwise(edges)]


def same(a: Factors, b: Factors) -> bool:
    return a.top.tobytes() == b.top.tobytes() and a.rss.hex() == b.rss.hex() and a.rows == b.rows


def certified_lre(problem, names, values) -> float:
    digits = problem["certified_digits"]
    by_name = dict(zip(names, values))
    return min(lre(by_name[n], c, digits) for n, c in zip(problem["params"], problem["certified_values"]))


# Longley: 16 rows, 7 parameters; Filip: 82 rows, 11 parameters (leaves of 8 rows are shorter than p + 1).
SPLITS = {
    "Longley": (4, [[0], [0, 8], [0, 4, 8, 12], [0, 12]]),
    "Filip": (8, [[0], [0, 40], [0, 8, 24, 64], [0, 80]]),
}


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_a_nist_linear_problem_gives_the_same_bits_however_it_is_partitioned(name):
    problem, names, r, matrix = linear_problem(name)
    leaf_rows, splits = SPLITS[name]
    whole = combine(leaf_factors(r, matrix, 0, leaf_rows))
    rng = np.random.default_rng(12)
    solutions = []
    for bounds in splits:
        groups = partitioned(r, matrix, bounds, leaf_rows)
        leaves = [leaf for group in groups for leaf in group]
        assert [leaf.number for leaf in leaves] == list(range(-(-len(r) // leaf_rows)))
        shuffled = [leaves[i] for i in rng.permutation(len(leaves))]
        assert same(combine(leaves), whole) and same(combine(shuffled), whole)
        refinement = Partitions(
            [Refinement(matrix[a:b], -r[a:b], a, leaf_rows) for a, b in itertools.pairwise([*bounds, len(r)])]
        )
        delta, steps, full_rank = solve_factored(combine(shuffled), refinement)
        assert full_rank and steps >= 1
        solutions.append(delta)
    assert all(s.tobytes() == solutions[0].tobytes() for s in solutions)
    assert certified_lre(problem, names, solutions[0]) >= 7
    # The standard errors from the factors at the solution, with the fit's RSS.
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    at = prepare(columns, model=problem["model"], target="y").objective.residuals_jacobian(solutions[0])
    factors = factor(*at, leaf_rows=leaf_rows)
    errors, _ = least_squares_stderr(factors.R, factors.rss, names, rows=factors.rows)
    digits = problem["certified_digits"]
    by_name = dict(zip(names, errors))
    assert (
        min(lre(by_name[n], c, digits) for n, c in zip(problem["params"], problem["certified_std_dev"])) >= 4
    )


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_the_direct_fit_of_a_nist_linear_problem_keeps_its_certified_digits(name):
    problem, names, r, matrix = linear_problem(name)
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    result = fit(columns, model=problem["model"], target="y")
    assert result.method == "qr" and result.converged
    fitted = [result.params[n] for n in names]
    assert certified_lre(problem, names, fitted) >= 7
    # The fit's solve is solve_direct's, on one leaf.
    delta = solve_direct(matrix, -r)[0]
    assert certified_lre(problem, names, delta) >= 7


def test_the_residual_sum_of_squares_is_the_evaluators_exact_sum_whatever_the_leaves(rng):
    n = 5 * BLOCK_ROWS + 123
    r = rng.normal(size=n) * np.exp(rng.normal(size=n) * 5)
    matrix = rng.normal(size=(n, 3))
    want = exact_sum(block_sums(r * r))
    for leaf_rows in (BLOCK_ROWS, 2 * BLOCK_ROWS, LEAF_ROWS):
        assert factor(r, matrix, leaf_rows).rss.hex() == want.hex()


def test_factors_hold_what_least_squares_needs_of_j_and_r(rng):
    n, p = 300, 4
    matrix = rng.normal(size=(n, p)) * [1.0, 1e3, 1e-3, 1.0]
    r = rng.normal(size=n)
    factors = factor(r, matrix, leaf_rows=64)
    assert factors.top.shape == (p + 1, p + 1) and factors.rows == n
    assert np.all(np.diag(factors.top) >= 0) and np.allclose(np.tril(factors.top, -1), 0)
    assert np.allclose(factors.R.T @ factors.R, matrix.T @ matrix, rtol=1e-12, atol=1e-9)
    assert np.allclose(factors.R.T @ factors.qtr, matrix.T @ r, rtol=1e-10, atol=1e-10)
    assert math.isclose(float(factors.reduced @ factors.reduced), factors.rss, rel_tol=1e-13)
    assert np.allclose(np.linalg.norm(factors.R, axis=0), np.linalg.norm(matrix, axis=0), rtol=1e-13)


def test_a_short_leaf_keeps_only_its_rows_and_bad_input_is_refused(rng):
    matrix, r = rng.normal(size=(10, 6)), rng.normal(size=10)
    leaves = leaf_factors(r, matrix, 8, leaf_rows=8)
    assert [leaf.number for leaf in leaves] == [1, 2] and leaves[1].top.shape == (2, 7)
    with pytest.raises(ValueError):
        leaf_factors(r, matrix, 3, leaf_rows=8)
    with pytest.raises(ValueError):
        combine([leaves[0], leaves[0]])
    with pytest.raises(ValueError):
        combine([])


def test_non_finite_rows_are_flagged_and_the_qr_sees_a_huge_finite_misfit(rng):
    matrix, r = rng.normal(size=(20, 2)), rng.normal(size=20)
    r[3], matrix[5, 1] = np.nan, np.inf
    factors = factor(r, matrix, leaf_rows=8)
    assert not factors.finite_residuals and not factors.finite_jacobian
    assert math.isnan(factors.rss) and np.all(np.isfinite(factors.top))


def test_refinement_sums_do_not_depend_on_the_partitions(rng):
    matrix = rng.normal(size=(50, 3))
    target, x = rng.normal(size=50), rng.normal(size=3)
    one = Refinement(matrix, target, 0, 8)
    two = Partitions(
        [Refinement(matrix[:16], target[:16], 0, 8), Refinement(matrix[16:], target[16:], 16, 8)]
    )
    sums = []
    for rows in (one, two):
        rows.begin(x)
        parts = rows.sums(x)
        sums.append(add_sums(parts[::-1], 3))
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*sums))


def test_lm_hands_minpack_the_reduced_problem_not_the_rows(monkeypatch):
    import scipy.optimize

    problem = PROBLEMS["Misra1a"]
    columns = dict(load_csv(DATA / problem["csv"]).columns)
    shapes = []
    original = scipy.optimize.least_squares

    def recording(fun, x0, jac, **kwargs):
        shapes.append((np.shape(fun(x0)), np.shape(jac(x0))))
        return original(fun, x0, jac=jac, **kwargs)

    monkeypatch.setattr(scipy.optimize, "least_squares", recording)
    init = dict(zip(problem["params"], map(float, problem["start1"])))
    result = fit(columns, model=problem["model"], target="y", init=init, method="lm")
    assert shapes == [((3,), (3, 2))]
    assert result.converged and certified_lre(problem, problem["params"], list(result.params.values())) >= 6


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_the_direct_fit_never_holds_the_whole_jacobian_and_partitions_change_no_bit(name, monkeypatch):
    problem = PROBLEMS[name]
    rows = dict(load_csv(DATA / problem["csv"]).columns)
    # Each row repeated until the data fills four partitions of leaves: the same solution.
    copies = -(-(3 * 65536 + 1) // len(rows["y"]))
    data = {column: np.tile(values, copies) for column, values in rows.items()}

    def whole(self, x):
        raise AssertionError("the direct solve asked for the whole n-by-p Jacobian")

    monkeypatch.setattr(Objective, "residuals_jacobian", whole)
    one = fit(data, model=problem["model"], target="y")
    four = fit(data, model=problem["model"], target="y", engine="local", partitions=4)
    assert one.method == four.method == "qr" and "refinement" in one.message
    assert one.params == four.params and one.to_dict()["stderr"] == four.to_dict()["stderr"]
    assert (
        certified_lre(problem, list(one.params), list(one.params.values()))
        >= {"Longley": 12, "Filip": 7}[name]
    )


def test_the_first_fit_of_a_process_has_the_bits_of_the_next(tmp_path):
    # scipy's LAPACK is loaded during the first fit, inside an evaluation that had already limited
    # the BLAS libraries loaded before it: it must run on one thread too (a QR on two rounds otherwise).
    script = textwrap.dedent(
        """
        import numpy as np, sys
        assert "scipy.linalg" not in sys.modules
        from exprgrad.fitting import fit
        rng = np.random.default_rng(3)
        x = rng.normal(size=140_000)
        data = {"x": x, "y": np.exp(x / 4) + rng.normal(size=x.size)}
        model = " + ".join(f"b{k}*x^{k}" for k in range(1, 11)) + " + b0"
        print([fit(data, model=model, target="y").params for _ in range(2)])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    first, second = ast.literal_eval(done.stdout)
    assert first == second
