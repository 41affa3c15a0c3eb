"""The fit methods' table: every entry runs through the API and the CLI and is in --help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import exprgrad
from exprgrad.cli import cli
from exprgrad.errors import ArgumentError
from exprgrad.fitting import METHODS, FitOptions, prepare, solve
from exprgrad.fitting.catalog import CHOICES

LINEAR = str(Path(__file__).resolve().parent.parent / "samples" / "linear.csv")
# A sum of squares that is not linear in the parameters (so auto does not pick qr)
# and one that is (auto's only way to the direct solve).
NONLINEAR_MODEL = "a*x + b^3"
LINEAR_MODEL = "a*x + b"


def _request(name: str) -> tuple[str, str]:
    """(model, method to ask for) that runs the method ``name``."""
    if METHODS[name].choosable:
        return NONLINEAR_MODEL, name
    return LINEAR_MODEL, "auto"  # the direct solve is auto's choice for a linear model


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_runs_through_the_api(name):
    model, method = _request(name)
    result = exprgrad.fit(LINEAR, model=model, target="y", init={"b": 1}, method=method)
    assert result.method == name
    assert result.converged, result.message
    assert METHODS[name].title in result.summary()


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_runs_through_the_cli(name):
    model, method = _request(name)
    args = ["fit", LINEAR, "--model", model, "--target", "y", "--init", "b=1", "--method", method]
    result = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["method"] == name


def test_every_choosable_method_and_its_title_is_in_the_help():
    shown = " ".join(CliRunner().invoke(cli, ["fit", "--help"]).stdout.split())
    for name, method in METHODS.items():
        assert (f"{name}: {method.title}" in shown) == method.choosable, name
    assert f"[{'|'.join(CHOICES)}]" in shown


def test_the_options_are_one_value_checked_with_python_names(line_problem):
    problem = line_problem
    with pytest.raises(ArgumentError, match="^max_iter: must be at least 1"):
        solve(problem, FitOptions("gd", max_iter=0))
    with pytest.raises(ArgumentError, match="^tol: must be a number >= 0"):
        solve(problem, FitOptions(tol=float("nan")))
    with pytest.raises(ArgumentError, match="^lr: must be a positive number"):
        solve(problem, FitOptions("gd", lr=-1.0))
    with pytest.raises(ArgumentError, match="^lr: is for gd, momentum and adam; lm chooses its own steps"):
        exprgrad.fit(LINEAR, model=NONLINEAR_MODEL, target="y", method="lm", lr=0.1)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--max-iter", "0"], "error: --max-iter: must be at least 1"),
        (["--tol", "nan"], "error: --tol: must be a number >= 0"),
        (["--method", "gd", "--lr", "0"], "error: --lr: must be a positive number"),
        (["--method", "lm", "--lr", "0.1"], "error: --lr: is for gd, momentum and adam"),
        (["--nll"], "error: --nll: is for a cost"),
        (["--init", "x=1"], "error: --init: 'x' is a data column"),
        (["--target", "log(k*y)"], "error: --target: log(k*y) reads 'k'"),
    ],
)
def test_the_cli_names_the_flag_of_the_python_argument(args, words):
    result = CliRunner().invoke(cli, ["fit", LINEAR, "--model", LINEAR_MODEL, "--target", "y", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(words), result.stderr
    assert "max_iter" not in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"max_iter": 0}, "max_iter: must be at least 1"),
        ({"tol": -1.0}, "tol: must be a number >= 0"),
        ({"method": "gd", "lr": 0.0}, "lr: must be a positive number"),
        ({"method": "newton", "lr": 0.1}, "lr: is for gd, momentum and adam"),
        ({"nll": True}, "nll: is for a cost"),
        ({"method": "bfgs"}, "method: unknown method 'bfgs'"),
        ({"init": {"x": 1}}, "init: 'x' is a data column"),
        ({"target": "log(k*y)"}, "target: log(k*y) reads 'k'"),
        ({"model": None, "target": None, "cost": "a*x - y"}, "cost: must be one number"),
        ({"model": None, "cost": "sum((a*x - y)^2)"}, "target: goes with a model"),
    ],
)
def test_python_callers_read_python_names_never_flags(kwargs, words):
    arguments = {"model": LINEAR_MODEL, "target": "y", **kwargs}
    with pytest.raises(exprgrad.ExprgradError) as caught:
        exprgrad.fit(LINEAR, **arguments)
    assert str(caught.value).startswith(words)
    assert "--" not in str(caught.value)


@pytest.fixture
def line_problem():
    return prepare(LINEAR, model=LINEAR_MODEL, target="y")
