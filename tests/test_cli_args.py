"""How the commands read their arguments: EXPR starting with '-', '--', options, no arguments."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from exprgrad.cli import cli
from exprgrad.cli.command import mark_expr

# Expressions that start with '-' and hold letters of short options (h, o).
DASHED = ["-h*log(h)", "-tanh(h)", "-omega*h", "-o1*h", "-hq*h", "-(h + o)^2", "-h"]


def _args_for(command: str, expr: str, *, dashes: bool, before: bool) -> list[str]:
    at = ["--at", "h=0.5,omega=2,o=3,o1=1.5,hq=2"]
    extra = {"eval": [], "diff": [], "check": [], "render": ["--format", "dot"]}[command]
    expr_args = ["--", expr] if dashes else [expr]
    return [command, *(at + extra + expr_args if before else expr_args + at + extra)]


@pytest.mark.parametrize("command", ["eval", "diff", "check", "render"])
@pytest.mark.parametrize("expr", DASHED)
@pytest.mark.parametrize("dashes", [False, True])
@pytest.mark.parametrize("before", [False, True])
def test_expression_starting_with_minus_is_expr(runner, command, expr, dashes, before):
    if expr == "-h" and not dashes:
        pytest.skip("exactly an option name: -h asks for help (see the next test)")
    result = runner.invoke(cli, _args_for(command, expr, dashes=dashes, before=before))
    assert result.exit_code in (0, 1), result.output  # check may exit 1 for a kink; never 2
    assert "Usage:" not in result.output and "error:" not in result.output, result.output


def test_exactly_an_option_name_is_the_option(runner, tmp_path):
    assert runner.invoke(cli, ["eval", "-h"]).output.startswith("Usage: cli eval [OPTIONS] EXPR")
    assert runner.invoke(cli, ["diff", "--help"]).output.startswith("Usage: cli diff [OPTIONS] EXPR")
    out = tmp_path / "g.dot"
    result = runner.invoke(cli, ["render", "-o", str(out), "-omega*x"])
    assert result.exit_code == 0, result.output
    assert "omega" in out.read_text()


def test_what_diff_prints_reads_back_in_every_command(runner):
    printed = runner.invoke(cli, ["diff", "-h*log(h)", "--wrt", "h"]).output.strip()
    derivative = printed.split(" = ", 1)[1]
    assert derivative.startswith("-")
    for command in ("eval", "diff", "check"):
        result = runner.invoke(cli, [command, derivative, "--at", "h=2"])
        assert result.exit_code == 0, (command, result.output)
    result = runner.invoke(cli, ["render", derivative, "--format", "dot"])
    assert result.exit_code == 0 and result.output.startswith("digraph")
    value = runner.invoke(cli, ["eval", derivative, "--at", "h=2"]).output
    assert float(value) == pytest.approx(-(0.6931471805599453 + 1))


def test_double_dash_marks_expr_and_options_may_follow(runner):
    result = runner.invoke(cli, ["eval", "--", "-h", "--at", "h=1"])
    assert result.exit_code == 0 and result.output == "-1\n"
    result = runner.invoke(cli, ["eval", "--at", "h=2", "--", "-h^2"])
    assert result.output == "-4\n"


def test_misspelled_long_option_is_reported_not_parsed(runner):
    for args in (["eval", "--att", "a=1", "a"], ["eval", "a", "--att", "a=1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2
        assert result.output.startswith("error: No such option '--att'")


def test_long_option_with_equals_and_attached_short_value_after_expr(runner, tmp_path):
    assert runner.invoke(cli, ["eval", "--at=a=3", "-a"]).output == "-3\n"
    out = tmp_path / "g.dot"
    result = runner.invoke(cli, ["render", "-x", f"-o{out}"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("digraph")


def test_missing_or_extra_expr(runner):
    assert runner.invoke(cli, ["eval", "--"]).output.startswith("error: Missing argument 'EXPR'")
    result = runner.invoke(cli, ["eval", "x", "y", "--at", "x=1"])
    assert result.exit_code == 2 and "unexpected extra argument (y)" in result.output


def test_stdin_dash_is_expr(runner):
    result = runner.invoke(cli, ["eval", "-", "--at", "h=3"], input="-h*2")
    assert result.output == "-6\n"


def test_no_arguments_prints_the_help_and_exits_0(runner):
    result = runner.invoke(cli, [])
    assert result.exit_code == 0
    assert result.output.startswith("Usage: cli [OPTIONS] COMMAND")
    assert "error" not in result.output and "Commands:" in result.output


def test_mark_expr_rule():
    arity = {"--at": True, "-o": True, "--output": True, "-h": False, "--help": False, "--grad": False}
    assert mark_expr(["--at", "-a=1", "-o"], arity)[1] is None  # -o is an option here
    assert mark_expr(["--at", "a=1", "-omega"], arity)[1] == "-omega"
    assert mark_expr(["--grad", "-hx", "--at", "a=1"], arity)[1] == "-hx"
    assert mark_expr(["x", "-omega"], arity) == (["x", "-omega"], None)
    assert mark_expr(["--", "--at"], arity)[1] == "--at"


# ---------------------------------------------------------------- warnings from libraries

NOISY = """
import warnings
import numpy as np
import exprgrad.cli.eval_cmd as command

def noisy(what, value):
    np.log(np.array([-1.0, 0.0]))               # invalid value, divide by zero
    np.exp(np.array([1000.0])) * np.exp(np.array([-1000.0]))  # overflow, underflow (nothing)
    np.exp(np.array([2000.0]))                  # overflow again: shown once
    warnings.warn("Desired error not necessarily achieved due to precision loss.", RuntimeWarning)

command.warn_nonfinite = noisy
from exprgrad.cli import cli
cli(["eval", "a", "--at", "a=1"])
"""


def test_library_warnings_are_one_plain_line_each():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", NOISY], capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout == "1\n"
    lines = done.stderr.splitlines()
    assert all(line.startswith("warning: ") for line in lines), done.stderr
    assert "RuntimeWarning" not in done.stderr and ".py:" not in done.stderr  # no raw warning, no source line
    assert len(lines) == 4, lines  # invalid, divide, overflow (once), the message as words
    assert any("gave nan" in line and "(numpy: invalid value encountered in log)" in line for line in lines)
    assert any("division by zero" in line for line in lines)
    assert any("became infinite" in line for line in lines)
    assert "warning: Desired error not necessarily achieved due to precision loss." in lines


def test_help_says_how_expr_may_start():
    for command in ("eval", "diff", "check", "render"):
        assert "EXPR may start with '-'" in CliRunner().invoke(cli, [command, "--help"]).output


def test_fit_takes_dashed_expressions_as_option_values(runner, samples):
    result = runner.invoke(cli, ["fit", str(samples / "linear.csv"), "--model", "-h*x + o", "--target", "y",
                                 "--format", "json"])
    assert result.exit_code == 0, result.output
    assert set(__import__("json").loads(result.stdout)["params"]) == {"h", "o"}
