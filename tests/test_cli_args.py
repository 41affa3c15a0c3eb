"""How the commands read their arguments: EXPR starting with '-', '--', options, no arguments."""

from __future__ import annotations

import click
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
    result = runner.invoke(cli, _args_for(command, expr, dashes=dashes, before=before))
    # check may exit 1 for a kink; the others succeed; none exits 2 (usage)
    assert result.exit_code in ((0, 1) if command == "check" else (0,)), result.output
    assert "Usage:" not in result.output and "error:" not in result.output, result.output


COMMANDS = ["eval", "diff", "check", "render"]


def _short_options(command: str) -> list[str]:
    """Every short option name of ``command``, its help option included."""
    cmd = cli.get_command(click.Context(cli), command)
    names = [opt for param in cmd.params if isinstance(param, click.Option) for opt in param.opts]
    names += cmd.context_settings["help_option_names"]
    return sorted({name for name in names if len(name) == 2 and name[0] == "-" and name[1] != "-"})


def _value_at(command: str, name: str, value: str) -> list[str]:
    return {
        "eval": ["--at", f"{name}={value}"],
        "diff": ["--at", f"{name}={value}"],
        "check": ["--at", f"{name}={value}"],
        "render": ["--format", "dot"],
    }[command]


def test_every_command_has_the_short_options_tested():
    assert {command: _short_options(command) for command in COMMANDS} == {
        "eval": ["-h"],
        "diff": ["-h"],
        "check": ["-h"],
        "render": ["-h", "-o"],
    }


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("dashes", [False, True])
@pytest.mark.parametrize("before", [False, True])
def test_short_option_name_is_expr_before_expr(runner, command, dashes, before):
    for option in _short_options(command):
        rest = _value_at(command, option[1], "2")
        expr_args = ["--", option] if dashes else [option]
        args = [command, *(rest + expr_args if before else expr_args + rest)]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert "Usage:" not in result.stdout
        if command == "eval":
            assert result.stdout == "-2\n"
        elif command == "diff":
            assert result.stdout.startswith(f"∂/∂{option[1]} = -1\n")
        elif command == "render":
            assert result.stdout.startswith("digraph") and f"J = -{option[1]}" in result.stdout
        note = [line for line in result.stderr.splitlines() if line.startswith("note: ")]
        if dashes:
            assert note == [], args  # '--' said so: nothing to note
        else:
            assert note == [note[0]] and f"read {option} as the expression EXPR" in note[0], args


def test_the_note_names_the_option(runner):
    result = runner.invoke(cli, ["diff", "-h"])
    assert result.stderr == "note: read -h as the expression EXPR; --help shows the help\n"
    result = runner.invoke(cli, ["render", "-o", "--format", "dot"])
    assert result.stderr == "note: read -o as the expression EXPR, not as the option -o FILE\n"
    assert "note" not in runner.invoke(cli, ["diff", "-hq"]).stderr  # not an option name: no note


@pytest.mark.parametrize("command", COMMANDS)
def test_help_is_long_help_or_h_after_expr(runner, command):
    for args in ([command, "--help"], [command, "x", "-h"], [command, "-h", "-h"], [command, "x", "--help"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and result.stdout.startswith(f"Usage: cli {command} [OPTIONS] EXPR"), (
            args
        )


@pytest.mark.parametrize("source", ["-h^2/2", "-o^2/2", "-q^2/2"])
@pytest.mark.parametrize("dashes", [False, True])
@pytest.mark.parametrize("before", [False, True])
def test_printed_derivative_of_a_short_option_letter_reads_back(runner, source, dashes, before):
    name = source[1]
    printed = runner.invoke(cli, ["diff", source]).stdout
    derivative = printed.strip().split(" = ", 1)[1]
    assert derivative == f"-{name}"
    for command in COMMANDS:
        rest = _value_at(command, name, "3")
        expr_args = ["--", derivative] if dashes else [derivative]
        args = [command, *(rest + expr_args if before else expr_args + rest)]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0 and "Usage:" not in result.stdout, (args, result.output)
        if command == "eval":
            assert result.stdout == "-3\n"
        if command == "diff":
            assert result.stdout.startswith(f"∂/∂{name} = -1\n")


def test_short_option_with_a_value_is_the_option(runner, tmp_path):
    out = tmp_path / "g.dot"
    for args in (
        ["render", "-o", str(out), "-omega*x"],
        ["render", "-o", str(out), "-o"],
        ["render", "-o", str(out), "--", "-o"],
        ["render", "-o", str(out), "-h"],
    ):
        out.unlink(missing_ok=True)
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, (args, result.output)
        assert result.stderr.startswith("note: read") == (args[-1] in ("-o", "-h") and args[-2] != "--")
        assert out.read_text().startswith("digraph"), args
    result = runner.invoke(cli, ["render", "-o", "-", "-x", "--format", "dot"])  # '-' is a value: stdout
    assert result.exit_code == 0 and result.stdout.startswith("digraph") and "J = -x" in result.stdout
    result = runner.invoke(cli, ["render", "-o", str(out)])  # an option with no EXPR after it
    assert result.exit_code == 2 and "Missing argument 'EXPR'" in result.stderr


def test_option_name_read_as_expr_then_an_error_keeps_the_note(runner):
    result = runner.invoke(cli, ["eval", "-h", "x"])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0].startswith("note: read -h as the expression EXPR")
    assert "unexpected extra argument (x)" in result.stderr


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
    assert mark_expr(["--at", "-a=1", "-o"], arity)[1] == "-o"  # no value follows: EXPR
    assert mark_expr(["-o", "f.svg", "-o"], arity)[1] == "-o"  # the option, then EXPR
    assert mark_expr(["-o", "-", "-x"], arity)[1] == "-x"  # '-' is a value
    assert mark_expr(["-o", "--at", "a=1"], arity)[1] == "-o"  # an option follows: EXPR
    assert mark_expr(["-h", "--at", "a=1"], arity)[1] == "-h"  # a short flag before EXPR is EXPR
    assert mark_expr(["--at", "-o", "-h"], arity)[1] == "-h"  # a long option takes any value
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
        shown = CliRunner().invoke(cli, [command, "--help"]).output
        assert "EXPR may start with '-'" in shown and "with or without '--'" in " ".join(shown.split())
        assert ("-o FILE is the option only when" in " ".join(shown.split())) == (command == "render")


def test_fit_takes_dashed_expressions_as_option_values(runner, samples):
    result = runner.invoke(
        cli, ["fit", str(samples / "linear.csv"), "--model", "-h*x + o", "--target", "y", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert set(__import__("json").loads(result.stdout)["params"]) == {"h", "o"}
