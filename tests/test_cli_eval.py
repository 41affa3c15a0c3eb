"""`exprgrad eval` and the group itself, through click's CliRunner and as a real process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exprgrad.cli import cli


def test_scalar_value(runner):
    result = runner.invoke(cli, ["eval", "a*b + 1", "--at", "a=2,b=3"])
    assert result.exit_code == 0 and result.output == "7\n"


def test_expression_starting_with_minus(runner):
    result = runner.invoke(cli, ["eval", "-x^2", "--at", "x=3"])
    assert result.exit_code == 0 and result.output == "-9\n"


def test_at_given_several_times(runner):
    result = runner.invoke(cli, ["eval", "a - b", "--at", "a=5", "--at", "b=2"])
    assert result.output == "3\n"


def test_value_over_data_matches_numpy(runner, samples):
    import numpy as np

    result = runner.invoke(
        cli,
        [
            "eval",
            "mean((a*x + b - y)^2)",
            "--at",
            "a=2,b=1",
            "--data",
            str(samples / "linear.csv"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = np.loadtxt(samples / "linear.csv", delimiter=",", skiprows=1)
    expected = np.mean((2 * data[:, 0] + 1 - data[:, 1]) ** 2)
    assert json.loads(result.output)["value"] == pytest.approx(expected, rel=1e-14)


def test_per_row_result_is_a_column(runner, samples):
    result = runner.invoke(cli, ["eval", "2*x", "--data", str(samples / "linear.csv")])
    lines = result.output.splitlines()
    assert result.exit_code == 0 and len(lines) == 40 and lines[0] == "0.128"
    as_json = runner.invoke(cli, ["eval", "2*x", "--data", str(samples / "linear.csv"), "--format", "json"])
    assert json.loads(as_json.output)["value"][:2] == [0.128, 0.404]


def test_expression_from_file_and_stdin(runner, samples, tmp_path):
    source = tmp_path / "f.exprgrad"
    source.write_text("# a comment\nh = a + 1\nh*2\n")
    assert runner.invoke(cli, ["eval", f"@{source}", "--at", "a=1"]).output == "4\n"
    assert runner.invoke(cli, ["eval", "-", "--at", "a=1"], input="a*10").output == "10\n"


def test_syntax_error_has_caret_and_exit_2(runner):
    result = runner.invoke(cli, ["eval", "a * (b + 1", "--at", "a=1,b=1"])
    assert result.exit_code == 2
    lines = result.output.splitlines()
    assert lines[0].startswith("error: line 1, column")
    assert "missing closing parenthesis" in lines[0]
    assert lines[1] == "  a * (b + 1"
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["a + b", "--at", "a=1"], "error: no value given for 'b': give it with --at b=1"),
        (["a", "--at", "a"], "error: --at: expected name=value pairs"),
        (["a", "--at", "a=x1"], "error: --at a: 'x1' is not a number"),
        (["mean(a*z)", "--at", "a=1", "--data", "{linear}"], "error: the expression needs column 'z'"),
        (["a", "--data", "missing.csv", "--at", "a=1"], "error: cannot read data file 'missing.csv'"),
        (["a", "--format", "xml"], "error: Invalid value for '--format'"),
        (["@nowhere.txt"], "error: cannot read expression file 'nowhere.txt'"),
    ],
)
def test_user_mistakes_exit_2_with_one_error_line(runner, samples, args, message):
    args = [arg.replace("{linear}", str(samples / "linear.csv")) for arg in args]
    result = runner.invoke(cli, ["eval", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message), result.output
    assert "Traceback" not in result.output


def test_nonfinite_value_warns(runner):
    result = runner.invoke(cli, ["eval", "log(a)", "--at", "a=-1"])
    assert result.exit_code == 0
    assert "warning: the value is not finite" in result.output


def test_help_has_examples_for_every_command(runner):
    from exprgrad.cli import COMMANDS

    assert "Examples" in runner.invoke(cli, ["--help"]).output
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        if "No such command" in result.output:
            continue  # a command another part of the suite covers once it exists
        assert result.exit_code == 0 and "exprgrad" in result.output, name


def test_version(runner):
    from exprgrad import __version__

    assert runner.invoke(cli, ["--version"]).output.strip().endswith(__version__)


def _console_script() -> list[str]:
    # Beside this Python (a virtual environment not on PATH), or on PATH.
    script = shutil.which("exprgrad", path=str(Path(sys.executable).parent)) or shutil.which("exprgrad")
    if script is None:
        pytest.skip("the exprgrad console script is not installed (pip install -e .)")
    return [script]


@pytest.mark.parametrize("how", ["console script", "python -m exprgrad"])
def test_installed_program_runs(how):
    command = _console_script() if how == "console script" else [sys.executable, "-m", "exprgrad"]
    done = subprocess.run(
        [*command, "eval", "-x^2 + 1", "--at", "x=2"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stdout == "-3\n"
    bad = subprocess.run(
        [*command, "eval", "1 +", "--at", "x=2"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_at_naming_a_data_column_is_refused(runner, samples):
    result = runner.invoke(
        cli, ["eval", "mean(a*x)", "--at", "a=1,x=2", "--data", str(samples / "linear.csv")]
    )
    assert result.exit_code == 2
    assert "'x' is a column of" in result.output


def test_at_name_the_function_does_not_use_warns(runner):
    result = runner.invoke(cli, ["eval", "a*b", "--at", "a=1,b=2,c=3"])
    assert result.exit_code == 0
    assert "warning: --at gives 'c', which the function does not use" in result.output


def test_nonfinite_gradient_warns(runner):
    result = runner.invoke(cli, ["eval", "sqrt(a) + b", "--at", "a=0,b=1", "--grad"])
    assert result.exit_code == 0
    assert "warning: the derivative by a is not finite" in result.stderr
    assert "derivative by b" not in result.stderr
