"""The textbook methods (gd, momentum, adam) at their defaults, --target expressions, fits without data."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import threading
from pathlib import Path

import numpy as np
import pytest

from exprgrad.cli import cli
from exprgrad.errors import DataError, OptionError
from exprgrad.fitting import FitOptions, fit, prepare, solve
from exprgrad.fitting.data import load_csv
from exprgrad.fitting.optimizers import GradientDescent, descend

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
NELSON = ROOT / "tests" / "data" / "nist" / "Nelson.csv"
TEXTBOOK = ["gd", "momentum", "adam"]
ROSENBROCK = "(1 - x)^2 + 100*(y - x^2)^2"


def sample_fits():
    """Every bundled sample with the models and costs the README shows for it."""
    saturation = {"b1": 1.0, "b2": 1.0}
    return [
        ("linear.csv", {"model": "a*x + b", "target": "y"}, None),
        ("linear.csv", {"cost": (SAMPLES / "least_squares.exprgrad").read_text()}, None),
        ("logistic.csv", {"cost": "sum(softplus(w*x + c) - y*(w*x + c))"}, None),
        ("logistic.csv", {"cost": (SAMPLES / "logistic.exprgrad").read_text()}, None),
        ("nonlinear.csv", {"model": "b1*(1 - exp(-b2*x))", "target": "y"}, saturation),
        ("nonlinear.csv", {"cost": (SAMPLES / "saturation.exprgrad").read_text()}, saturation),
    ]


def test_every_sample_is_in_the_table():
    assert {name for name, _, _ in sample_fits()} == {p.name for p in SAMPLES.glob("*.csv")}


@pytest.mark.parametrize("method", TEXTBOOK)
@pytest.mark.parametrize("case", range(len(sample_fits())))
def test_textbook_methods_converge_on_every_sample_at_their_defaults(method, case):
    name, spec, init = sample_fits()[case]
    reference = fit(str(SAMPLES / name), init=init, method="newton" if "cost" in spec else "lm", **spec)
    result = fit(str(SAMPLES / name), init=init, method=method, **spec)
    assert result.converged and not result.diverged, result.message
    for param, value in reference.params.items():
        assert result.params[param] == pytest.approx(value, rel=1e-6, abs=1e-9), param
    assert result.cost == pytest.approx(reference.cost, rel=1e-10)


@pytest.mark.parametrize("method", TEXTBOOK)
@pytest.mark.parametrize("factor", [1e-6, 1.0, 1e6])
def test_default_steps_are_free_of_the_cost_scale(method, factor, rng):
    # A sum grows with the rows: the step must not be a fixed number.
    x = rng.uniform(0, 5, 2000)
    data = {"x": x, "y": 2.5 * x + 0.8 + rng.standard_normal(x.size)}
    result = fit(data, cost=f"{factor}*sum((a*x + b - y)^2)", method=method)
    assert result.converged, result.message
    assert result.params["a"] == pytest.approx(2.5, abs=0.1)
    assert result.params["b"] == pytest.approx(0.8, abs=0.2)


@pytest.mark.parametrize("method", TEXTBOOK)
def test_a_hundred_thousand_rows_at_the_defaults(method, rng):
    x = rng.uniform(0, 5, 100_000)
    data = {"x": x, "y": 2.5 * x + 0.8 + rng.standard_normal(x.size)}
    exact = fit(data, model="a*x + b", target="y")
    result = fit(data, model="a*x + b", target="y", method=method)
    assert result.converged, result.message
    assert result.params["a"] == pytest.approx(exact.params["a"], rel=1e-7)


@pytest.mark.parametrize("method", TEXTBOOK)
def test_a_given_learning_rate_is_used_as_given(method):
    problem = prepare(str(SAMPLES / "linear.csv"), cost="mean((a*x + b - y)^2)")
    result = solve(problem, FitOptions(method, lr=0.01, max_iter=50))
    # One value+gradient pass per iteration: no line search, no trial steps.
    assert result.iterations == 50
    assert len(result.history) == 51
    assert not result.converged


@pytest.mark.parametrize("method", TEXTBOOK)
def test_after_divergence_the_best_point_is_reported_with_its_own_cost(method):
    problem = prepare(str(SAMPLES / "linear.csv"), model="a*x + b", target="y")
    result = solve(problem, FitOptions(method, lr=50.0 if method != "adam" else 1e6))
    assert result.diverged and not result.converged
    finite = [c for c in result.history if math.isfinite(c)]
    assert result.cost == min(finite)
    x = np.array([result.params[p] for p in problem.params])
    assert problem.objective.value(x) == result.cost


def test_descend_never_reports_a_worse_point_than_it_visited():
    problem = prepare(str(SAMPLES / "linear.csv"), cost="mean((a*x + b - y)^2)")
    # Too large a step for this cost: it oscillates with a growing amplitude.
    outcome = descend(problem.objective, problem.x0, GradientDescent(0.3), 40, 1e-10)
    assert outcome.cost == min(outcome.history)
    assert outcome.cost <= outcome.history[0]


@pytest.mark.parametrize("method", TEXTBOOK)
@pytest.mark.parametrize("cost", ["sum(a*x)", "mean(-a*x - b)"])
@pytest.mark.parametrize("lr", [[], ["--lr", "0.01", "--max-iter", "300"]])
def test_a_cost_without_lower_bound_diverges(runner, method, cost, lr):
    result = runner.invoke(
        cli, ["fit", str(SAMPLES / "linear.csv"), "--cost", cost, "--method", method, *lr, "-q"]
    )
    assert result.exit_code == 1, result.output
    assert "bound" in result.stdout
    assert result.stderr.startswith("error: the fit diverged") and "Traceback" not in result.output


@pytest.mark.parametrize("method", TEXTBOOK)
def test_a_minimum_far_below_the_start_is_not_a_divergence(method):
    # The cost falls 1e10 times its starting size: a lower bound exists, the probes find it.
    result = fit(cost="1e10*(a/1e10 - 1)^2 - 1e10", method=method)
    assert result.converged and not result.diverged, result.message
    assert result.params["a"] == pytest.approx(1e10, rel=1e-9)


def test_an_infinite_gradient_at_the_start_is_named_as_such(runner):
    args = ["fit", str(SAMPLES / "linear.csv"), "--cost", "mean(sqrt(a)*x)", "--method", "gd", "-q"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert line.startswith("error: the fit could not start:") and "\n" not in line
    assert "gradient" in line and "derivative by parameter a (inf)" in line
    assert "the cost is not finite" not in line


@pytest.mark.parametrize("method", [*TEXTBOOK, "lbfgs", "newton", "auto"])
def test_every_method_says_which_derivative_is_not_finite_at_the_start(method):
    result = fit(str(SAMPLES / "linear.csv"), cost="mean(sqrt(a)*x - y)", method=method)
    assert result.diverged and result.history == []
    assert "its gradient is not: the derivative by parameter a (inf)" in result.message
    assert "the cost is nan" not in result.message


def test_newton_says_when_only_the_hessian_is_not_finite_at_the_start():
    result = fit(str(SAMPLES / "linear.csv"), cost="mean(abs(a)^1.5*x)", method="newton")
    assert result.diverged
    assert "a second derivative is not (by a twice: nan)" in result.message


@pytest.mark.parametrize("method", TEXTBOOK)
def test_a_cost_not_finite_at_the_start_says_so(method):
    result = fit(str(SAMPLES / "linear.csv"), cost="mean(log(a)*x)", method=method)
    assert result.diverged and result.history == []
    assert "the cost is -inf at the starting point" in result.message


# ---------------------------------------------------------------- --target expressions


def test_a_target_expression_fits_nist_nelson_to_the_certified_values(runner):
    args = [
        "fit",
        str(NELSON),
        "--model",
        "b1 - b2*x1*exp(-b3*x2)",
        "--target",
        "log(y)",
        "--init",
        "b1=2,b2=0.0001,b3=-0.01",
        "--format",
        "json",
    ]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    certified = {"b1": 2.5906836021e00, "b2": 5.6177717026e-09, "b3": -5.7701013174e-02}
    for name, value in certified.items():
        assert document["params"][name] == pytest.approx(value, rel=1e-8)
    assert document["rss"] == pytest.approx(3.7976833176, rel=1e-9)


def test_a_target_expression_equals_a_precomputed_column():
    columns = dict(load_csv(NELSON).columns)
    init = {"b1": 2.5, "b2": 5e-9, "b3": -0.05}
    by_expression = fit(columns, model="b1 - b2*x1*exp(-b3*x2)", target="log(y)", init=init)
    columns["log_y"] = np.log(columns["y"])
    by_column = fit(columns, model="b1 - b2*x1*exp(-b3*x2)", target="log_y", init=init)
    assert by_expression.params == pytest.approx(by_column.params, rel=1e-12)


def test_a_plain_column_target_works_as_before():
    problem = prepare(str(SAMPLES / "linear.csv"), model="a*x + b", target="y")
    assert problem.target == "y" and list(problem.dataset.columns) == ["x", "y"]


@pytest.mark.parametrize(
    "target, error, words",
    [
        ("z", DataError, "target= needs column 'z'"),
        ("log(z)", DataError, "'z'"),
        ("log(k*y)", DataError, "target: log(k*y) reads 'k'"),
        ("log(k*y)", DataError, "parameters go in the model"),
        ("log(y - 100)", DataError, "pass allow_nan=True"),
    ],
)
def test_target_expression_mistakes(target, error, words):
    with pytest.raises(error) as caught:
        prepare(str(SAMPLES / "linear.csv"), model="a*x + b", target=target)
    assert words in str(caught.value)


def test_allow_nan_leaves_out_rows_where_the_target_is_not_finite():
    data = {"x": np.array([1.0, 2.0, 3.0, 4.0]), "y": np.array([np.e, -1.0, np.e**3, np.e**4])}
    problem = prepare(data, model="a*x", target="log(y)", allow_nan=True)
    assert problem.rows == 3 and any("left out 1 row" in w for w in problem.warnings)
    assert solve(problem).params["a"] == pytest.approx(1.0)


def test_target_expression_errors_on_the_command_line(runner):
    for target in ["log(y", "log(k*y)", "log(y - 100)"]:
        args = ["fit", str(SAMPLES / "linear.csv"), "--model", "a*x + b", "--target", target]
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and "Traceback" not in result.output


def test_a_target_expression_is_drawn(runner, tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "fit.svg"
    args = ["fit", str(SAMPLES / "nonlinear.csv"), "--model", "b1*(1 - exp(-b2*x))", "--target", "y + 0"]
    result = runner.invoke(cli, [*args, "--init", "b1=1,b2=1", "--plot", str(plot), "-q"])
    assert result.exit_code == 0, result.output
    assert "y + 0" in plot.read_text()


# ---------------------------------------------------------------- fits without data


def test_a_cost_without_data_is_minimized_without_a_data_file(runner):
    result = runner.invoke(cli, ["fit", "--cost", ROSENBROCK, "--init", "x=-1.2,y=1", "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["converged"] and document["rows"] == 0
    assert document["params"] == pytest.approx({"x": 1.0, "y": 1.0}, abs=1e-6)


@pytest.mark.parametrize("method", ["auto", "momentum", "adam", "lbfgs", "newton"])
def test_without_data_from_python(method):
    result = fit(cost=ROSENBROCK, init={"x": -1.2, "y": 1}, method=method)
    assert result.converged, result.message
    assert result.params == pytest.approx({"x": 1.0, "y": 1.0}, abs=1e-6)


def test_without_data_x_and_y_are_parameters_that_start_at_0(runner):
    result = runner.invoke(cli, ["fit", "--cost", "(x - 3)^2 + (y + 1)^2"])
    assert result.exit_code == 0, result.output
    assert "note: x, y start at 0" in result.stderr
    assert fit(cost="(x - 3)^2 + (y + 1)^2").params == pytest.approx({"x": 3.0, "y": -1.0})


@pytest.mark.parametrize(
    "args, words",
    [
        (["--cost", "mean((a*x + b - y)^2)"], "no data file"),
        (["--cost", "sum(a^2)"], "no data file"),
        (["--model", "a*x", "--target", "y"], "--model needs data"),
        (["--cost", "1 + 2"], "no parameters"),
    ],
)
def test_what_needs_data_is_refused_without_it(runner, args, words):
    result = runner.invoke(cli, ["fit", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and words in result.stderr


def test_data_as_an_argument_or_an_option_but_not_both(runner):
    path = str(SAMPLES / "linear.csv")
    spec = ["--model", "a*x + b", "--target", "y", "--format", "json", "-q"]
    by_argument = runner.invoke(cli, ["fit", path, *spec])
    by_option = runner.invoke(cli, ["fit", "--data", path, *spec])
    assert by_argument.exit_code == by_option.exit_code == 0
    assert json.loads(by_argument.stdout)["params"] == json.loads(by_option.stdout)["params"]
    both = runner.invoke(cli, ["fit", path, "--data", path, *spec])
    assert both.exit_code == 2 and "given twice" in both.stderr


# ---------------------------------------------------------------- data read once


def _params(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["params"]


@pytest.mark.parametrize("spelling", [["-"], ["--data", "-"]])
def test_data_from_standard_input_is_read_once_even_with_a_plot(runner, tmp_path, spelling):
    pytest.importorskip("matplotlib")
    text = "x,y\n" + "".join(f"{i},{2 * i + 1 + (i % 3) * 0.1}\n" for i in range(3000))
    path = tmp_path / "rows.csv"
    path.write_text(text)
    spec = ["--model", "a*x + b", "--target", "y", "--format", "json", "-q"]
    from_file = _params(runner.invoke(cli, ["fit", str(path), *spec]))
    plot = tmp_path / "p.svg"
    from_stdin = runner.invoke(cli, ["fit", *spelling, *spec, "--plot", str(plot)], input=text)
    assert _params(from_stdin) == from_file and json.loads(from_stdin.stdout)["rows"] == 3000
    assert plot.stat().st_size > 0


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_data_from_a_named_pipe_is_read_once(runner, tmp_path):
    text = "x,y\n" + "".join(f"{i},{3 * i - 2 + (i % 5) * 0.01}\n" for i in range(5000))
    fifo = tmp_path / "rows.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "w") as stream:  # one writer: a second reader would wait forever
            stream.write(text)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    result = runner.invoke(cli, ["fit", str(fifo), "--model", "a*x + b", "--target", "y", "--format", "json"])
    writer.join(timeout=10)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 5000


def test_without_data_the_python_api_refuses_what_needs_rows():
    with pytest.raises(OptionError, match="model= needs data"):
        prepare(None, model="a*x", target="y")
    with pytest.raises(OptionError, match="no data file"):
        fit(cost="mean((a - x)^2)")


# ---------------------------------------------------------------- the README's outputs


def readme_fit_examples():
    """(command, shown output) of the README's examples of the textbook methods, targets and no data."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    examples = []
    for block in re.findall(r"```\n(\$ exprgrad fit .*?)```", text, flags=re.DOTALL):
        command, _, shown = block.partition("\n")
        if any(word in command for word in ("--method gd", '--target "log(y)"', "(1 - x)^2")):
            examples.append((shlex.split(command[2:])[1:], shown))
    return examples


def test_the_readme_shows_these_examples():
    assert len(readme_fit_examples()) == 3


@pytest.mark.parametrize("args, shown", readme_fit_examples())
def test_readme_fit_examples_print_what_the_readme_shows(runner, monkeypatch, args, shown):
    monkeypatch.chdir(ROOT)
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output

    # The words are the README's exactly; the numbers to the last digits a CPU's own
    # rounding (its BLAS kernels, its libm) may move: values to 1e-6 relative, the
    # iteration and evaluation counts to 2%, gradient norms below 1e-9 as such.
    number = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"

    got, want = (re.sub(r"time \S+ s", "time - s", text) for text in (result.output, shown))
    assert " ".join(re.sub(number, "#", got).split()) == " ".join(re.sub(number, "#", want).split())
    got, want = re.findall(number, got), re.findall(number, want)
    for one, other in zip(got, want, strict=True):
        a, b = float(one), float(other)
        close = math.isclose(a, b, rel_tol=1e-6) or max(abs(a), abs(b)) < 1e-9
        counts = "." not in one + other and "e" not in one + other and abs(a - b) <= 0.02 * max(a, b)
        assert close or counts, (one, other)


@pytest.mark.parametrize("method", TEXTBOOK)
def test_a_learning_rate_too_small_to_move_stops_at_once(method):
    result = fit(
        str(SAMPLES / "linear.csv"),
        model="a*x + b",
        target="y",
        init={"a": 1, "b": 1},
        method=method,
        lr=1e-300,
    )
    assert result.iterations == 0 and not result.converged
    assert "the steps no longer change the parameters" in result.message and "lr=" in result.message


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"target": 3}, "target"),
        ({"target": "y", "init": {"a": "1"}}, "init"),
        ({"target": "y", "init": {"a": math.nan}}, "init"),
        ({"target": "y", "init": {"a": True}}, "init"),
        ({"target": "y", "init": [("a", 1.0)]}, "init"),
    ],
)
def test_python_misuse_of_target_and_init_names_the_argument(kwargs, argument):
    from exprgrad import ArgumentError

    with pytest.raises(ArgumentError) as caught:
        fit(str(SAMPLES / "linear.csv"), model="a*x + b", **kwargs)
    assert caught.value.argument == argument
