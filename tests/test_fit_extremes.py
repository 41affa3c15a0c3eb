"""Fits at the edges of float64: columns near its limits, costs without a floor, output to stdout.

Classes tested: column scaling at any magnitude float64 holds (columns of
1e-160, 1e160, 1e300 and mixtures: no square may overflow or underflow, and a
wrong point is never verified stationary); costs that run off to -inf (or to
the most negative floats) are divergence with every method; after a
divergence the reported point is the best one seen, its cost the printed
cost, and the message agrees with the table; ``-o -`` writes the result to
stdout once.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from exprgrad.cli import cli
from exprgrad.fitting import fit, prepare
from exprgrad.fitting.data import load_csv
from exprgrad.fitting.linear import column_norms, conditioning, solve_direct
from exprgrad.fitting.optimality import residual_cosine, verify
from exprgrad.fitting.optimizers import Outcome

SCALES = [1e-160, 1e160, 1e-300, 1e300]
MIXED = [(1e-160, 1e160), (1e160, 1e-160), (1e-300, 1e300), (1.0, 1e200)]


# ---------------------------------------------------------------- column scaling


@pytest.mark.parametrize("size", [*SCALES, 1e-310, 1e306, 1.0, 3.5e-5])
def test_column_norms_hold_at_any_magnitude(size):
    column = np.linspace(1.0, 2.0, 40) * size
    want = size * float(np.linalg.norm(np.linspace(1.0, 2.0, 40)))
    assert column_norms(column[:, None])[0] == pytest.approx(want, rel=1e-13)


def test_column_norms_are_the_plain_norms_for_ordinary_columns(rng):
    matrix = rng.normal(size=(30, 4)) * [1.0, 1e5, 1e-5, 1e-100]
    assert np.array_equal(column_norms(matrix), np.linalg.norm(matrix, axis=0))
    assert column_norms(np.zeros(5)) == 0.0
    assert column_norms(np.array([1.0, np.inf])) == math.inf
    assert math.isnan(column_norms(np.array([1.0, np.nan])))


@pytest.mark.parametrize("size", SCALES)
def test_a_single_column_of_any_size_is_solved_and_has_full_rank(size):
    matrix = np.full((40, 1), size)
    delta, _, full_rank = solve_direct(matrix, np.ones(40))
    assert full_rank
    assert delta[0] == pytest.approx(1.0 / size, rel=1e-14)
    assert conditioning(matrix, ["a"]).rank == 1


@pytest.mark.parametrize("size", SCALES)
@pytest.mark.parametrize("form", ["cost", "model"])
@pytest.mark.parametrize("method", ["auto", "lm"])
def test_one_badly_scaled_column_is_fitted(size, form, method):
    data = {"x": np.full(40, size), "y": np.ones(40)}
    spec = {"cost": "sum((x*a - 1)^2)"} if form == "cost" else {"model": "a*x", "target": "y"}
    result = fit(data, method=method, **spec)
    assert result.converged, result.message
    assert result.params["a"] == pytest.approx(1.0 / size, rel=1e-12)
    assert result.cost <= 1e-20 and "singular" not in result.message


@pytest.mark.parametrize(("sx", "sz"), MIXED)
@pytest.mark.parametrize("method", ["auto", "lm"])
def test_columns_of_very_different_sizes_are_fitted(sx, sz, method, rng):
    x, z = rng.uniform(1, 2, 40) * sx, rng.uniform(1, 2, 40) * sz
    data = {"x": x, "z": z, "y": 2.0 * (x / sx) + 3.0 * (z / sz) + 1.0}
    result = fit(data, model="a*x + b*z + c", target="y", method=method)
    assert result.converged, result.message
    assert result.params["a"] == pytest.approx(2.0 / sx, rel=1e-9)
    assert result.params["b"] == pytest.approx(3.0 / sz, rel=1e-9)
    assert result.params["c"] == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize("size", SCALES)
def test_a_wrong_point_on_badly_scaled_columns_is_never_verified(size):
    """a = 0 with cost 40 (the minimum is 0 at a = 1/size) must not pass the first-order check."""
    data = {"x": np.full(40, size), "y": np.ones(40)}
    problem = prepare(data, model="a*x", target="y")
    r, jacobian = problem.objective.residuals_jacobian(np.zeros(1))
    assert residual_cosine(r, jacobian) == pytest.approx(1.0)
    stopped = Outcome(np.zeros(1), 40.0, 0, True, "a stopping test passed")
    verdict = verify(problem.objective, stopped, np.zeros(1), least_squares=True)
    assert not verdict.outcome.converged, verdict.outcome.reason


def test_cli_the_badly_scaled_column(runner, tmp_path):
    path = tmp_path / "bv.csv"
    path.write_text("x\n" + "1e160\n" * 40)
    result = runner.invoke(cli, ["fit", str(path), "--cost", "sum((x*a-1)^2)", "-q", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["converged"] and document["params"]["a"] == pytest.approx(1e-160, rel=1e-12)
    assert document["cost"] == pytest.approx(0.0, abs=1e-20)


# ---------------------------------------------------------------- costs without a floor

ALL_METHODS = ["auto", "gd", "momentum", "adam", "lbfgs", "newton"]


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize(
    ("cost", "init", "words"),
    [
        ("-exp(a)", {}, "a grows"),  # overflows to -inf a few doublings past a = 512
        ("-exp(a)", {"a": 1.0}, "a grows"),
        ("-exp(a^2) + b^2", {"a": 1.0}, "a grows"),
        ("-a^2", {"a": 1.0}, "a grows"),
        ("log(a)", {"a": 1.0}, "a approaches 0"),  # log(0) = -inf: a ray from a = 1 lands on it
    ],
)
def test_a_cost_running_off_to_minus_infinity_is_divergence(method, cost, init, words):
    result = fit(cost=cost, init=init, method=method)
    assert result.diverged and not result.converged, result.message
    assert "without bound" in result.message and words in result.message, result.message
    assert_best_point_reported(result, cost)


@pytest.mark.parametrize("cost", ["-exp(a)", "log(a)"])
def test_cli_minus_infinity_exits_1(runner, cost):
    result = runner.invoke(cli, ["fit", "--cost", cost, "--init", "a=1", "-q", "--format", "json"])
    assert result.exit_code == 1, result.output
    assert "error: the fit diverged" in result.stderr and "without bound" in result.stderr
    assert json.loads(result.stdout)["diverged"] is True


# ---------------------------------------------------------------- the best point after divergence


def assert_best_point_reported(result, cost, data=None):
    """The reported point is the lowest finite cost of the fit, and the message names it."""
    problem = prepare(data, cost=cost)
    x = np.array([result.params[name] for name in problem.params])
    assert math.isfinite(result.cost)
    assert result.cost == problem.objective.value(x), "the cost is not the printed point's cost"
    tail = result.message.split("(it is ", 1)
    if len(tail) == 2:  # "(it is C at a = P)": the table's numbers, not those of another point
        said_cost, said_point = tail[1].split(")")[0].split(" at ", 1)
        assert float(said_cost) == pytest.approx(result.cost, rel=1e-5)
        for part in said_point.split(", "):
            name, value = part.split(" = ")
            assert float(value) == pytest.approx(result.params[name], rel=5e-3, abs=1e-300)
    best = min(v for v in result.history if math.isfinite(v)) if result.history else math.inf
    assert result.cost <= best, "a lower finite cost was seen than the one reported"


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize(("cost", "init"), [("sum(a*x)", {}), ("a^3", {"a": 1.0}), ("sum(b - a*x^2)", {})])
def test_after_divergence_the_best_point_seen_is_reported(samples, method, cost, init):
    data = dict(load_csv(samples / "linear.csv").columns) if "x" in cost else None
    result = fit(data, cost=cost, init=init, method=method)
    assert result.diverged, result.message
    assert_best_point_reported(result, cost, data)
    assert result.cost < -1e3, "the reported point is not where the cost fell"


def test_cli_lbfgs_divergence_table_and_message_agree(runner, samples):
    args = ["fit", str(samples / "linear.csv"), "--cost", "sum(a*x)", "--method", "lbfgs", "-q"]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    xs = load_csv(samples / "linear.csv").columns["x"]
    assert document["params"]["a"] < 0
    assert document["cost"] == pytest.approx(document["params"]["a"] * float(np.sum(xs)), rel=1e-9)
    said = float(document["message"].split("(it is ", 1)[1].split(" at ")[0])
    assert said == pytest.approx(document["cost"], rel=1e-5)


# ---------------------------------------------------------------- -o - : the result on stdout once


@pytest.mark.parametrize("formats", [[], ["--format", "json"]])
@pytest.mark.parametrize("quiet", [[], ["-q"]])
def test_cli_output_to_stdout_is_one_json_document(runner, samples, formats, quiet):
    args = ["fit", str(samples / "linear.csv"), "--model", "a*x+b", "--target", "y", *quiet, *formats]
    result = runner.invoke(cli, [*args, "-o", "-"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # one document: a second copy would not parse
    assert document["converged"] and set(document["params"]) == {"a", "b"}


def test_cli_output_to_stdout_of_a_diverged_fit_is_one_json_document(runner, samples):
    result = runner.invoke(cli, ["fit", str(samples / "linear.csv"), "--cost", "sum(a*x)", "-q", "-o", "-"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["diverged"] is True
    assert result.stderr.startswith("error: the fit diverged")


def test_cli_explicit_text_and_output_to_stdout_is_a_usage_error(runner, samples):
    args = ["fit", str(samples / "linear.csv"), "--model", "a*x+b", "--target", "y", "--format", "text"]
    result = runner.invoke(cli, [*args, "-o", "-"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: --format text and -o - both write to stdout")


def test_cli_output_to_dev_stdout_in_a_real_process_is_one_json_document(samples):
    import subprocess
    import sys

    args = ["fit", str(samples / "linear.csv"), "--model", "a*x+b", "--target", "y", "-q"]
    for path in ("/dev/stdout", "/proc/self/fd/1"):
        done = subprocess.run(
            [sys.executable, "-m", "exprgrad", *args, "-o", path], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["converged"]


@pytest.mark.parametrize("size", SCALES)
@pytest.mark.parametrize("method", ["gd", "momentum", "adam", "lbfgs", "newton", "lm"])
def test_any_method_on_a_badly_scaled_column_claims_only_the_true_minimum(size, method):
    data = {"x": np.full(40, size), "y": np.ones(40)}
    result = fit(data, cost="sum((x*a - 1)^2)", method=method)
    if result.converged:
        assert result.params["a"] == pytest.approx(1.0 / size, rel=1e-9), result.message
    assert result.cost == prepare(data, cost="sum((x*a - 1)^2)").objective.value(
        np.array([result.params["a"]])
    )


def test_lbfgs_whose_first_step_overflows_is_not_a_divergence():
    """A gradient of 8e161 makes L-BFGS-B's first step overflow: the method's failure, not the cost's."""
    result = fit({"x": np.full(40, 1e160)}, cost="sum((x*a - 1)^2)", method="lbfgs")
    assert not result.diverged and not result.converged, result.message
    assert "overflowed" in result.message and result.cost == 40.0
