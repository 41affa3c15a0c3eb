"""The fit: every method, standard errors, divergence, the JSON contract, the CLI's error paths."""

from __future__ import annotations

import json
import types
from pathlib import Path

import numpy as np
import pytest

from exprgrad.cli import cli, fit_cmd
from exprgrad.errors import DataError, OptionError
from exprgrad.fitting import FitOptions, FitResult, fit, prepare, solve
from exprgrad.fitting.data import load_csv
from exprgrad.fitting.optimizers import Adam, GradientDescent, Momentum

CONTRACT_KEYS = [
    "params",
    "stderr",
    "cost",
    "rss",
    "iterations",
    "evaluations",
    "converged",
    "message",
    "method",
    "rows",
]
LINE_COST = "mean((a*x + b - y)^2)"
LOGISTIC_NLL = "sum(softplus(w*x + c) - y*(w*x + c))"


@pytest.fixture
def line(rng):
    """A small straight-line data set and its least-squares solution and standard errors."""
    x = np.linspace(0.0, 2.0, 25)
    y = 1.5 * x - 0.5 + 0.1 * rng.standard_normal(x.size)
    design = np.column_stack([x, np.ones_like(x)])
    solution, rss, *_ = np.linalg.lstsq(design, y, rcond=None)
    s2 = rss[0] / (x.size - 2)
    stderr = np.sqrt(np.diag(s2 * np.linalg.inv(design.T @ design)))
    return {"x": x, "y": y}, solution, stderr


def write_csv(path, columns):
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    path.write_text(
        ",".join(names) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n"
    )
    return str(path)


# ---------------------------------------------------------------- the Python API


def test_linear_model_is_solved_directly_with_exact_standard_errors(line):
    data, solution, stderr = line
    result = fit(data, model="a*x + b", target="y")
    assert isinstance(result, FitResult)
    assert result.method == "qr" and result.iterations == 0 and result.converged
    assert "linear in the parameters: solved directly by QR" in result.message
    assert np.allclose([result.params["a"], result.params["b"]], solution, rtol=1e-12)
    assert np.allclose([result.stderr["a"], result.stderr["b"]], stderr, rtol=1e-10)
    assert result.rss == pytest.approx(result.cost, rel=1e-12)
    assert result.rows == 25


@pytest.mark.parametrize(
    "method, lr", [("gd", 0.2), ("momentum", 0.05), ("adam", 0.05), ("lbfgs", None), ("newton", None)]
)
def test_each_method_finds_the_least_squares_line(line, method, lr):
    data, solution, stderr = line
    result = fit(data, cost=LINE_COST, method=method, lr=lr, max_iter=20000)
    assert result.method == method and result.converged, result.message
    got = [result.params["a"], result.params["b"]]
    assert np.allclose(got, solution, atol=1e-3 if method in ("gd", "momentum", "adam") else 1e-9)
    # A cost of the form mean(r^2) is least squares: standard errors and RSS come with it.
    assert result.stderr["a"] == pytest.approx(stderr[0], rel=1e-2)
    assert result.rss is not None


def test_lm_on_a_nonlinear_model(samples):
    result = fit(
        str(samples / "nonlinear.csv"), model="b1*(1 - exp(-b2*x))", target="y", init={"b1": 1, "b2": 1}
    )
    assert result.method == "lm" and result.converged
    assert result.params["b1"] == pytest.approx(3.97592, rel=1e-4)
    # At a least-squares minimum the gradient of the RSS vanishes.
    problem = prepare(str(samples / "nonlinear.csv"), model="b1*(1 - exp(-b2*x))", target="y")
    r, jac = problem.objective.residuals_jacobian(np.array([result.params["b1"], result.params["b2"]]))
    assert np.max(np.abs(jac.T @ r)) < 1e-10
    assert all(v > 0 for v in result.stderr.values())


def test_lm_with_a_cost_in_least_squares_form(line):
    data, _, _ = line
    by_cost = fit(data, cost="sum((c*exp(k*x) - y)^2) / 2", method="lm", init={"c": 1, "k": 0.5})
    by_model = fit(data, model="c*exp(k*x)", target="y", init={"c": 1, "k": 0.5})
    assert by_cost.method == by_model.method == "lm" and by_cost.converged
    assert by_cost.params == pytest.approx(by_model.params, rel=1e-12)
    assert by_cost.stderr == pytest.approx(by_model.stderr, rel=1e-9)
    assert by_cost.cost == pytest.approx(by_model.rss / 2, rel=1e-12)


def test_nll_standard_errors_come_from_the_exact_hessian(samples):
    data = load_csv(samples / "logistic.csv")
    result = fit(data, cost=LOGISTIC_NLL, nll=True)
    assert result.method == "newton" and result.converged and result.rss is None
    x, w, c = data.columns["x"], result.params["w"], result.params["c"]
    p = 1 / (1 + np.exp(-(w * x + c)))
    features = np.column_stack([np.ones_like(x), x])  # order c, w
    information = features.T @ (features * (p * (1 - p))[:, None])
    expected = np.sqrt(np.diag(np.linalg.inv(information)))
    assert [result.stderr["c"], result.stderr["w"]] == pytest.approx(expected, rel=1e-6)


def test_nll_written_as_a_mean_gets_the_same_standard_errors(samples):
    path = str(samples / "logistic.csv")
    total = fit(path, cost=LOGISTIC_NLL, nll=True)
    mean = fit(path, cost=LOGISTIC_NLL.replace("sum(", "mean("), nll=True)
    assert mean.stderr == pytest.approx(total.stderr, rel=1e-6)
    assert "the cost is a mean" in mean.message


def test_allow_nan_leaves_out_rows_the_fit_cannot_use(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("x,y,z\n1,2,nan\n2,nan,0\n3,6,0\n4,8,0\ninf,9,0\n")
    with pytest.raises(DataError, match="allow_nan=True"):
        fit(str(path), model="a*x", target="y")
    problem = prepare(str(path), model="a*x", target="y", allow_nan=True)
    assert problem.rows == 3 and "left out 2 rows" in problem.warnings[0]
    assert fit(str(path), model="a*x", target="y", allow_nan=True).params["a"] == pytest.approx(2.0)


def test_parameter_families_and_reductions_in_a_model(samples):
    path = str(samples / "linear.csv")
    plain = fit(path, model="a*x + b", target="y")
    family = fit(path, model="theta[0] + theta[1]*x", target="y", init={"theta[0]": 1})
    centered = fit(path, model="a*(x - mean(x)) + b", target="y")
    assert family.method == centered.method == "qr"
    assert family.params["theta[1]"] == pytest.approx(plain.params["a"], rel=1e-12)
    assert centered.params["a"] == pytest.approx(plain.params["a"], rel=1e-12)


def test_general_cost_without_nll_has_no_standard_errors(samples):
    result = fit(str(samples / "logistic.csv"), cost=LOGISTIC_NLL)
    assert result.stderr == {"c": None, "w": None}


def test_newton_agrees_with_lbfgs(samples):
    path = str(samples / "logistic.csv")
    a = fit(path, cost=LOGISTIC_NLL, method="newton", nll=True)
    b = fit(path, cost=LOGISTIC_NLL, method="lbfgs", nll=True)
    assert a.converged and a.params["w"] == pytest.approx(b.params["w"], rel=1e-6)


def test_singular_design_is_reported_not_hidden(line):
    data, _, _ = line
    result = fit(data, model="a*x + b*x + c", target="y")
    assert "singular" in result.message
    assert all(v is None for v in result.stderr.values())


def test_one_pass_per_evaluation_whatever_the_parameter_count(rng):
    x = rng.standard_normal((200, 6))
    columns = {f"x{i}": x[:, i] for i in range(6)}
    columns["y"] = x @ np.arange(1.0, 7.0) + 0.01 * rng.standard_normal(200)
    model = " + ".join(f"p{i}*x{i}" for i in range(6))
    result = fit(columns, cost=f"mean(({model} - y)^2)", method="gd", lr=0.1, max_iter=50)
    # 50 iterations: 51 value+gradient passes, +1 Jacobian pass for the check of
    # the first-order conditions (reused by the standard errors); the residuals
    # are linear, so the cost is convex and needs no probes for run-off or
    # saddles. Never one pass per parameter.
    assert result.iterations == 50 and result.evaluations == 52


def test_divergence_stops_and_keeps_the_last_finite_point(line):
    data, _, _ = line
    result = fit(data, cost=LINE_COST, method="gd", lr=50.0)
    assert result.diverged and not result.converged
    assert "diverged" in result.message
    assert all(np.isfinite(v) for v in result.params.values()) and np.isfinite(result.cost)


def test_nan_cost_at_the_start_is_a_divergence(line):
    data, _, _ = line
    result = fit(data, cost="mean(log(a*x) - y)", method="gd")
    assert result.diverged and "starting point" in result.message or "not finite" in result.message


def test_unbounded_cost_runs_away(line):
    data, _, _ = line
    result = fit(data, cost="mean(a*x)")
    assert result.diverged and "ran away" in result.message


def test_data_as_path_dataset_or_dict_agree(samples, line):
    path = samples / "linear.csv"
    a = fit(str(path), model="a*x + b", target="y")
    b = fit(load_csv(path), model="a*x + b", target="y")
    c = fit(dict(load_csv(path).columns), model="a*x + b", target="y")
    assert a.params == b.params == c.params


def test_defaulted_parameters_and_history(line):
    data, _, _ = line
    problem = prepare(data, model="a*x + b", target="y", init={"a": 1})
    assert problem.defaulted == ["b"] and list(problem.x0) == [1.0, 0.0]
    seen = []
    result = solve(problem, FitOptions("gd", lr=0.01, max_iter=30), progress=lambda *args: seen.append(args))
    assert len(result.history) == result.iterations + 1 == len(seen) + 1
    step, limit, cost, norm = seen[0]
    assert (step, limit) == (1, 30) and cost > 0 and norm > 0


def test_the_public_fit_is_a_plain_function_beside_its_package(line):
    import exprgrad
    import exprgrad.fitting as package
    import exprgrad.fitting.data as data_module

    data, _, _ = line
    assert exprgrad.fit is package.fit is fit and data_module.load_csv is load_csv
    assert type(package) is types.ModuleType and not callable(package)
    result = exprgrad.fit(data, model="a*x + b", target="y")
    assert result.params == fit(data, model="a*x + b", target="y").params


def test_optimizer_steps():
    x, g = np.array([1.0, -2.0]), np.array([0.5, -1.0])
    assert np.allclose(GradientDescent(0.1).step(x, g), [0.95, -1.9])
    momentum = Momentum(0.1, beta=0.5)
    momentum.step(x, g)
    assert np.allclose(momentum.step(x, g), x - 0.1 * g * 1.5)
    # Adam's first step moves each coordinate by lr against the sign of the gradient.
    assert np.allclose(Adam(0.01).step(x, g), x - 0.01 * np.sign(g), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"model": "a*x + b", "target": "z"}, DataError, "target= needs column 'z'"),
        ({"model": "a*x2 + b", "target": "y"}, DataError, "lacks as a column"),
        ({"model": "a*x + b", "target": "y", "init": {"x": 1}}, OptionError, "is a data column"),
        ({"cost": "(a*x + b - y)^2"}, OptionError, "wrap it in sum(...) or mean(...)"),
        ({"cost": LINE_COST, "model": "a*x"}, OptionError, "either a cost"),
        ({}, OptionError, "either a cost"),
        ({"model": "a*x"}, OptionError, "needs target="),
        ({"cost": "mean(x*y)"}, OptionError, "no parameters"),
        (
            {"cost": LOGISTIC_NLL.replace("w*x + c", "w*x"), "method": "lm"},
            OptionError,
            "needs a sum of squares",
        ),
        ({"model": "a*x", "target": "y", "nll": True}, OptionError, "nll: is for a cost"),
        ({"model": "a*x", "target": "y", "method": "bfgs"}, OptionError, "unknown method"),
    ],
)
def test_input_mistakes_are_clear_errors(line, kwargs, error, words):
    data, _, _ = line
    with pytest.raises(error, match=None) as caught:
        fit(data, **kwargs)
    assert words in str(caught.value)


# ---------------------------------------------------------------- the command line


@pytest.fixture
def line_csv(tmp_path, line):
    return write_csv(tmp_path / "line.csv", line[0])


@pytest.mark.parametrize(
    "args",
    [
        ["--model", "a*x + b", "--target", "y"],
        ["--model", "a*exp(b*x)", "--target", "y", "--init", "a=1,b=0.5", "--method", "lm"],
        ["--cost", LINE_COST, "--method", "gd", "--lr", "0.2"],
        ["--cost", LINE_COST, "--method", "momentum", "--lr", "0.05"],
        ["--cost", LINE_COST, "--method", "adam", "--lr", "0.05", "--max-iter", "20000"],
        ["--cost", LINE_COST, "--method", "lbfgs"],
        ["--cost", LINE_COST, "--method", "newton"],
    ],
)
def test_cli_each_method_prints_the_json_contract(runner, line_csv, args):
    result = runner.invoke(cli, ["fit", line_csv, *args, "--format", "json", "--quiet"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert list(document)[:10] == CONTRACT_KEYS
    assert set(document["params"]) == set(document["stderr"])
    assert isinstance(document["converged"], bool) and document["converged"]
    assert isinstance(document["iterations"], int) and isinstance(document["evaluations"], int)
    assert document["rows"] == 25
    assert result.stderr == ""


def test_cli_text_table(runner, line_csv):
    result = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y"])
    assert result.exit_code == 0
    assert "method       qr" in result.stdout
    assert "converged    yes: linear in the parameters: solved directly by QR" in result.stdout
    assert "parameter" in result.stdout and "std. error" in result.stdout
    assert "note: a, b start at 0" in result.stderr


def test_cli_output_file_and_init_round_trip(runner, line_csv, tmp_path):
    saved = tmp_path / "result.json"
    first = runner.invoke(
        cli,
        [
            "fit",
            line_csv,
            "--model",
            "a*exp(b*x)",
            "--target",
            "y",
            "--init",
            "a=1,b=0.5",
            "-o",
            str(saved),
            "-q",
        ],
    )
    assert first.exit_code == 0, first.output
    document = json.loads(saved.read_text())
    assert list(document)[:10] == CONTRACT_KEYS
    again = runner.invoke(
        cli,
        [
            "fit",
            line_csv,
            "--model",
            "a*exp(b*x)",
            "--target",
            "y",
            "--init",
            f"@{saved}",
            "--format",
            "json",
        ],
    )
    assert again.exit_code == 0
    second = json.loads(again.stdout)
    assert second["params"] == pytest.approx(document["params"], rel=1e-9)
    assert second["evaluations"] < document["evaluations"]
    assert "start at 0" not in again.stderr


def test_cli_output_written_whole_or_not_at_all(runner, line_csv, tmp_path):
    target = tmp_path / "missing-folder" / "result.json"
    result = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-o", str(target)])
    assert result.exit_code == 2 and "does not exist" in result.stderr
    assert not target.exists()


def test_cli_progress_only_on_a_terminal(runner, line_csv, monkeypatch):
    args = ["fit", line_csv, "--cost", LINE_COST, "--method", "gd", "--lr", "0.2"]
    quiet_pipe = runner.invoke(cli, args)
    assert "iteration" not in quiet_pipe.stderr
    monkeypatch.setattr(fit_cmd, "_stderr_is_terminal", lambda: True)
    monkeypatch.setattr(fit_cmd, "PROGRESS_INTERVAL", 0.0)
    shown = runner.invoke(cli, args)
    assert "iteration 1/10000 [" in shown.stderr and "|grad|" in shown.stderr
    assert "iteration" not in runner.invoke(cli, [*args, "--quiet"]).stderr


def test_cli_divergence_prints_the_last_finite_point_and_exits_1(runner, line_csv):
    result = runner.invoke(
        cli, ["fit", line_csv, "--cost", LINE_COST, "--method", "gd", "--lr", "50", "--format", "json"]
    )
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["diverged"] is True and document["converged"] is False
    assert all(isinstance(v, float) for v in document["params"].values())
    assert "error: the fit diverged" in result.stderr


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "a*x + b", "--target", "z"], "--target needs column 'z'"),
        (["--model", "a*x + b", "--target", "y", "--init", "x=1"], "'x' is a data column"),
        (["--model", "a*x3 + b", "--target", "y"], "'x3'"),
        (["--cost", "(a*x - y)^2"], "wrap it in sum(...) or mean(...)"),
        (["--cost", LINE_COST, "--model", "a*x", "--target", "y"], "either a cost"),
        (["--model", "a*x"], "needs --target"),
        (["--model", "a*(x", "--target", "y"], "line 1"),
        (["--model", "a*x", "--target", "y", "--method", "bfgs"], "bfgs"),
        (["--model", "a*x", "--target", "y", "--init", "a="], "name=value"),
        (["--model", "a*x", "--target", "y", "--init", "@/no/such/file.json"], "no such file"),
        (["--model", "a*x", "--target", "y", "--plot", "out.pdf"], ".svg or .png"),
        (["--model", "a*x", "--target", "y", "--nll"], "--nll"),
        (["--model", "a*x", "--target", "y", "--method", "gd", "--lr", "-1"], "--lr"),
    ],
)
def test_cli_input_mistakes_exit_2(runner, line_csv, args, words):
    result = runner.invoke(cli, ["fit", line_csv, *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and words in result.stderr
    assert "Traceback" not in result.output


def test_cli_bad_csv_and_bad_init_file_exit_2(runner, tmp_path, line_csv):
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n3,oops\n")
    result = runner.invoke(cli, ["fit", str(bad), "--model", "a*x", "--target", "y"])
    assert result.exit_code == 2 and "bad.csv:3:2" in result.stderr
    not_json = tmp_path / "r.json"
    not_json.write_text("{")
    result = runner.invoke(
        cli, ["fit", line_csv, "--model", "a*x", "--target", "y", "--init", f"@{not_json}"]
    )
    assert result.exit_code == 2 and "not JSON" in result.stderr


def test_cli_quiet_keeps_stderr_empty(runner, line_csv):
    result = runner.invoke(
        cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "--init", "c=1", "-q"]
    )
    assert result.exit_code == 0 and result.stderr == ""
    loud = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "--init", "c=1"])
    assert "warning: --init gives 'c'" in loud.stderr


def test_cli_plot(runner, line_csv, tmp_path):
    pytest.importorskip("matplotlib")
    picture = tmp_path / "fit.svg"
    result = runner.invoke(
        cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "--plot", str(picture), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert picture.read_text().lstrip().startswith("<?xml")


def test_cli_plot_without_matplotlib_names_the_install_command(runner, line_csv, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a)
    )
    result = runner.invoke(
        cli, ["fit", line_csv, "--model", "a*x", "--target", "y", "--plot", str(tmp_path / "p.png")]
    )
    assert result.exit_code == 1
    assert "pip install" in result.stderr and "[plot]'" in result.stderr
    assert not (tmp_path / "p.png").exists()


def test_cli_help(runner):
    result = runner.invoke(cli, ["fit", "--help"])
    assert result.exit_code == 0 and "--model" in result.output and "--nll" in result.output


def test_output_into_a_missing_folder_is_refused_before_fitting(runner, samples, tmp_path):
    from exprgrad.cli import cli

    result = runner.invoke(
        cli,
        [
            "fit",
            str(samples / "linear.csv"),
            "--model",
            "a*x + b",
            "--target",
            "y",
            "-o",
            str(tmp_path / "nowhere" / "r.json"),
        ],
    )
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot write")
    assert "parameter" not in result.output  # nothing was fitted or printed first


def test_init_of_a_family_starts_every_member_as_at_does(runner, line_csv):
    data = line_csv
    model = "w[0] + w[1]*x"
    problem = prepare(data, model=model, target="y", init={"w": 1, "w[1]": 5})
    assert problem.params == ["w[0]", "w[1]"] and list(problem.x0) == [1.0, 5.0]
    assert problem.defaulted == [] and problem.warnings == []
    shown = runner.invoke(cli, ["fit", data, "--model", model, "--target", "y", "--init", "w=1"])
    assert shown.exit_code == 0, shown.output
    assert "does not use" not in shown.stderr and "start at 0" not in shown.stderr
    assert "w[1]" in shown.stdout


def test_an_output_that_is_an_input_of_the_fit_is_refused(runner, line_csv, tmp_path):
    data = Path(line_csv)
    before = data.read_text()
    model = ["--model", "a*x + b", "--target", "y"]
    shown = runner.invoke(cli, ["fit", line_csv, *model, "-o", line_csv])
    assert shown.exit_code == 2 and "-o" in shown.stderr and "is an input of this fit" in shown.stderr
    assert shown.stdout == "" and data.read_text() == before
    saved = tmp_path / "start.json"
    saved.write_text('{"params": {"a": 1, "b": 0}}')
    again = runner.invoke(cli, ["fit", line_csv, *model, "--init", f"@{saved}", "-o", str(saved)])
    assert again.exit_code == 2 and "is an input of this fit" in again.stderr
    formula = tmp_path / "model.txt"
    formula.write_text("a*x + b")
    third = runner.invoke(
        cli, ["fit", line_csv, "--model", f"@{formula}", "--target", "y", "-o", str(formula)]
    )
    assert third.exit_code == 2 and formula.read_text() == "a*x + b"


def test_a_failed_write_is_not_preceded_by_the_result(runner, line_csv, tmp_path, monkeypatch):
    from exprgrad.errors import WriteError

    def fail(path, content):
        raise WriteError(f"'{path}': no space left on device")

    monkeypatch.setattr(fit_cmd, "write_atomically", fail)
    target = tmp_path / "out.json"
    shown = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-o", str(target)])
    assert shown.exit_code == 1 and "no space left" in shown.stderr
    assert shown.stdout == ""
