"""`exprgrad diff`, `exprgrad check` and `exprgrad eval --grad` through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from exprgrad.cli import cli


def run_ok(runner, *args):
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize(
    "expr, wrt, expected",
    [
        ("mean((a*x + b - y)^2)", "a", "∂/∂a = 2*mean(x*(a*x + b - y))"),
        ("mean((a*x + b - y)^2)", "b", "∂/∂b = 2*mean(a*x + b - y)"),
        ("log(1 + exp(-y*w*x))", "w", "∂/∂w = -x*y*sigmoid(-w*x*y)"),
        ("sin(x)^2", "x", "∂/∂x = 2*cos(x)*sin(x)"),
        ("x^3", "x", "∂/∂x = 3*x^2"),
        ("exp(2*x)", "x", "∂/∂x = 2*exp(2*x)"),
    ],
)
def test_textbook_derivatives(runner, expr, wrt, expected):
    assert run_ok(runner, "diff", expr, "--wrt", wrt).strip() == expected


def test_default_wrt_is_every_parameter_and_ascii(runner):
    output = run_ok(runner, "diff", "mean((a*x + b - y)^2)", "--ascii")
    assert output.splitlines() == ["d/da = 2*mean(x*(a*x + b - y))", "d/db = 2*mean(a*x + b - y)"]


def test_family_and_unused_name_warning(runner):
    result = runner.invoke(cli, ["diff", "theta[0] + theta[1]*t", "--wrt", "theta,c"])
    assert result.exit_code == 0
    assert "∂/∂theta[0] = 1" in result.output and "∂/∂theta[1] = t" in result.output
    assert "∂/∂c = 0" in result.output
    assert "warning: 'c' does not occur" in result.output


def test_json_shape_and_texts_evaluate_to_the_values(runner, samples):
    data = str(samples / "linear.csv")
    output = run_ok(
        runner,
        "diff",
        "mean((a*x + b - y)^2)",
        "--wrt",
        "a,b",
        "--order",
        "2",
        "--format",
        "json",
        "--at",
        "a=2,b=1",
        "--data",
        data,
    )
    result = json.loads(output)
    assert list(result) == [
        "function",
        "wrt",
        "derivatives",
        "hessian",
        "value",
        "gradient",
        "hessian_values",
    ]
    assert result["wrt"] == ["a", "b"]
    assert result["hessian"]["a"]["b"] == result["hessian"]["b"]["a"]
    for name in ("a", "b"):
        again = json.loads(
            run_ok(
                runner,
                "eval",
                result["derivatives"][name],
                "--at",
                "a=2,b=1",
                "--data",
                data,
                "--format",
                "json",
            )
        )
        assert again["value"] == pytest.approx(result["gradient"][name], rel=1e-12)
    again = json.loads(
        run_ok(
            runner, "eval", result["hessian"]["a"]["a"], "--at", "a=2,b=1", "--data", data, "--format", "json"
        )
    )
    assert again["value"] == pytest.approx(result["hessian_values"]["a"]["a"], rel=1e-12)


def test_json_without_values_has_only_the_texts(runner):
    result = json.loads(run_ok(runner, "diff", "a*b^2", "--format", "json"))
    assert result == {"function": "a*b^2", "wrt": ["a", "b"], "derivatives": {"a": "b^2", "b": "2*a*b"}}


def test_per_row_derivative_is_a_list(runner, samples):
    result = json.loads(
        run_ok(
            runner,
            "diff",
            "mean((a*x + b - y)^2)",
            "--wrt",
            "x",
            "--format",
            "json",
            "--at",
            "a=2,b=1",
            "--data",
            str(samples / "linear.csv"),
        )
    )
    assert isinstance(result["gradient"]["x"], list) and len(result["gradient"]["x"]) == 40


def test_latex_format(runner):
    output = run_ok(runner, "diff", "sqrt(x)/y", "--wrt", "x", "--format", "latex")
    assert output.startswith(r"\frac{\partial J}{\partial x} = ")
    assert r"\frac" in output.split("=", 1)[1] and r"\sqrt" in output


def test_python_format_runs_and_matches(runner, samples):
    source = run_ok(runner, "diff", "mean((a*x + b - y)^2)", "--format", "python")
    namespace: dict = {}
    exec(source, namespace)  # noqa: S102  (running the generated source is the point)
    data = np.loadtxt(samples / "linear.csv", delimiter=",", skiprows=1)
    values = namespace["derivatives"]({"a": 2.0, "b": 1.0}, {"x": data[:, 0], "y": data[:, 1]})
    residual = 2 * data[:, 0] + 1 - data[:, 1]
    assert values["d/da"] == pytest.approx(np.mean(2 * data[:, 0] * residual), rel=1e-12)


def test_shared_subexpressions_named_once(runner):
    output = run_ok(runner, "diff", "exp(sin(a*b + c)^2)", "--let", "always")
    assert output.splitlines()[0].startswith("t1 = ")


def test_text_values_with_at(runner):
    output = run_ok(runner, "diff", "a^2*b", "--at", "a=3,b=2")
    assert output.splitlines()[-3:] == ["J = 18", "∂J/∂a = 12", "∂J/∂b = 9"]


def test_eval_grad_one_pass(runner):
    output = run_ok(runner, "eval", "a^2*b", "--at", "a=3,b=2", "--grad", "--format", "json")
    assert json.loads(output) == {"value": 18.0, "gradient": {"a": 12.0, "b": 9.0}}


def test_check_agrees(runner, samples):
    output = run_ok(
        runner,
        "check",
        "mean((a*x + b - y)^2) + atan2(a, b)",
        "--at",
        "a=2,b=1",
        "--data",
        str(samples / "linear.csv"),
    )
    lines = output.splitlines()
    assert lines[0].split() == ["wrt", "analytic", "numeric", "rel.", "error", "fd.", "error", "status"]
    assert all(line.endswith("ok") for line in lines[1:])


def test_check_data_column_and_json(runner, samples):
    output = run_ok(
        runner,
        "check",
        "mean((a*x + b - y)^2)",
        "--at",
        "a=2,b=1",
        "--wrt",
        "x,a",
        "--data",
        str(samples / "linear.csv"),
        "--format",
        "json",
    )
    result = json.loads(output)
    assert result["ok"] and set(result["partials"]) == {"x", "a"}


def test_check_exit_1_when_a_derivative_disagrees(runner):
    # at the kink of abs the one-sided slopes differ: the conventional 0 against a step
    result = runner.invoke(cli, ["check", "abs(a - 1) + relu(a - 1)", "--at", "a=1"])
    assert result.exit_code == 1
    assert "disagree with finite differences" in result.output
    assert result.stdout.splitlines()[1].split()[-1] == "DISAGREES"


def test_diff_errors_exit_2(runner):
    result = runner.invoke(cli, ["diff", "sin(x", "--wrt", "x"])
    assert result.exit_code == 2 and result.output.startswith("error: line 1")
    result = runner.invoke(cli, ["diff", "x^2", "--wrt", "1x"])
    assert result.exit_code == 2 and "not a variable name" in result.output


def test_derivative_constant_over_rows_is_still_per_row(runner, samples):
    data = str(samples / "linear.csv")
    result = json.loads(
        run_ok(runner, "diff", "a*x", "--wrt", "x", "--at", "a=2", "--data", data, "--format", "json")
    )
    assert result["gradient"]["x"] == [2.0] * 40
    result = json.loads(
        run_ok(
            runner,
            "eval",
            "mean(a*x)",
            "--grad",
            "--wrt",
            "x",
            "--at",
            "a=2",
            "--data",
            data,
            "--format",
            "json",
        )
    )
    assert result["gradient"]["x"] == [2.0 / 40] * 40


def test_check_json_is_strict_json_when_the_error_is_infinite(runner):
    # log(a) at a=-1: the numeric derivative is nan and the relative error inf;
    # JSON has no Infinity, so it is null like every other non-finite number.
    result = runner.invoke(cli, ["check", "log(a)", "--at", "a=-1", "--format", "json"])
    assert result.exit_code == 1
    partial = json.loads(result.stdout, parse_constant=pytest.fail)["partials"]["a"]
    assert partial == {
        "analytic": -1.0,
        "numeric": None,
        "relative_error": None,
        "fd_error": None,
        "status": "not finite",
        "ok": False,
    }


def test_nothing_to_differentiate_is_said(runner, samples):
    for args in (
        ["diff", "3"],
        ["diff", "mean(x)", "--data", str(samples / "linear.csv")],
        ["eval", "1 + 2", "--grad"],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0
        assert (
            "warning: the function has no parameters, so there is nothing to differentiate" in result.stderr
        )
    result = runner.invoke(cli, ["check", "1 + 2"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: the function has no parameters, so there is nothing to check")


@pytest.mark.parametrize(
    "expr, at, expected",
    [
        ("log(exp(a)/(exp(a)+exp(b)))", "a=1000,b=1000", [-np.log(2), 0.5, -0.5]),
        ("exp(a)/(1+exp(a))", "a=1000", [1.0, 0.0]),
        ("log(exp(a) + exp(b) + exp(c))", "a=1000,b=1000,c=-1000", [1000 + np.log(2), 0.5, 0.5, 0.0]),
        ("exp(a)/(exp(a) + exp(b) + exp(c))", "a=800,b=800,c=800", [1 / 3, 2 / 9, -1 / 9, -1 / 9]),
    ],
)
def test_softmax_forms_are_finite_where_exp_overflows(runner, expr, at, expected):
    result = runner.invoke(cli, ["diff", expr, "--at", at, "--format", "json"])
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    out = json.loads(result.stdout)
    got = [out["value"], *out["gradient"].values()]
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-300)


def test_a_non_finite_value_at_a_point_is_one_warning(runner):
    result = runner.invoke(cli, ["diff", "sqrt(a) + log(b)", "--at", "a=-1,b=0"])
    assert result.exit_code == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "J" in warnings[0] and "∂J/∂a" in warnings[0], result.stderr
    clean = runner.invoke(cli, ["diff", "sqrt(a)", "--at", "a=4"])
    assert "warning" not in clean.stderr
