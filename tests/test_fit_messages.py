"""The library speaks Python; the command line translates.

A message from the library names the Python argument (``max_iter=3``,
``allow_nan=True``, ``init=``) and carries it (``mentions``); the command line
writes the same message with its options (``--max-iter 3``, ``--allow-nan``,
``--init``), in one place (``exprgrad.cli.flags``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from exprgrad import fit
from exprgrad.cli import cli
from exprgrad.errors import DataError, ExprgradError, Mention, OptionError, respelled
from exprgrad.fitting import prepare
from exprgrad.fitting.data import load_csv, require_columns

PACKAGE = Path(__file__).resolve().parent.parent / "exprgrad"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
LINEAR = str(SAMPLES / "linear.csv")
# A command-line flag inside a message: "--init", "--max-iter 3" (not "--x" of an expression).
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]+")
# Library strings that still name a flag, in modules whose messages are not yet
# moved to Python names (each entry: module, the flag it names).
NOT_YET_MOVED: set[tuple[str, str]] = set()


def _message_strings(path: Path):
    """Every string constant of a module that is not a docstring."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_library_string_outside_cli_names_a_flag():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.startswith("cli/"):
            continue
        for line, text in _message_strings(path):
            for flag in FLAG.findall(text):
                if (module, flag) not in NOT_YET_MOVED:
                    found.append(f"{module}:{line}: {flag} in {text!r}")
    assert found == []


def _message(call) -> str:
    with pytest.raises(ExprgradError) as info:
        call()
    return str(info.value)


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


# (what the API says, what the command line says) for each argument named inside a message
@pytest.mark.parametrize(
    ("kwargs", "args", "python", "flag"),
    [
        (
            {"method": "gd", "max_iter": 3},
            ["--method", "gd", "--max-iter", "3"],
            "stopped after max_iter=3 iterations before converging",
            "stopped after --max-iter 3 iterations before converging",
        ),
        (
            {"method": "newton", "max_iter": 1},
            ["--method", "newton", "--max-iter", "1"],
            "stopped after max_iter=1 iterations before converging",
            "stopped after --max-iter 1 iterations before converging",
        ),
        (
            {"method": "lbfgs", "max_iter": 1},
            ["--method", "lbfgs", "--max-iter", "1"],
            "stopped at the iteration limit (max_iter=) before converging",
            "stopped at the iteration limit (--max-iter) before converging",
        ),
        (
            {"method": "gd", "lr": 1e-300, "init": {"a": 1, "b": 1}},
            ["--method", "gd", "--lr", "1e-300", "--init", "a=1,b=1"],
            "the lr= may be too small",
            "the --lr may be too small",
        ),
    ],
)
def test_stop_reasons_name_the_python_argument_and_the_cli_its_flag(runner, kwargs, args, python, flag):
    result = fit(LINEAR, model="a*x + b", target="y", **kwargs)
    assert python in result.message
    assert not FLAG.search(result.message) and not FLAG.search(result.summary())
    shown = runner.invoke(cli, ["fit", LINEAR, "--model", "a*x + b", "--target", "y", *args])
    assert flag in shown.stdout and python not in shown.output


def test_lm_evaluation_limit(runner):
    model = "b1*(1 - exp(-b2*x))"
    result = fit(str(SAMPLES / "nonlinear.csv"), model=model, target="y", method="lm", max_iter=2)
    assert "stopped after max_iter=2 evaluations" in result.message
    shown = runner.invoke(
        cli,
        ["fit", str(SAMPLES / "nonlinear.csv"), "--model", model, "--target", "y", "--method", "lm"]
        + ["--max-iter", "2"],
    )
    assert "stopped after --max-iter 2 evaluations" in shown.stdout


def test_a_fit_that_cannot_start_or_diverges_names_init_and_lr(runner):
    start = fit(cost="log(a)")
    assert start.message.endswith("choose other init= values")
    shown = runner.invoke(cli, ["fit", "--cost", "log(a)"])
    assert shown.exit_code == 1
    assert shown.stderr.splitlines()[-1].endswith("; choose other --init values")
    grown = fit(cost="a^2", method="gd", lr=5, init={"a": 1})
    assert grown.diverged and grown.message.endswith("try a smaller lr= or other init= values")
    shown = runner.invoke(cli, ["fit", "--cost", "a^2", "--method", "gd", "--lr", "5", "--init", "a=1"])
    assert shown.stderr.splitlines()[-1].endswith("try a smaller --lr or other --init values")


def test_the_summary_names_nll(runner):
    result = fit(cost="(a - 1)^2 + a^4")
    assert "std. error (needs nll=True or least squares)" in result.summary()
    shown = runner.invoke(cli, ["fit", "--cost", "(a - 1)^2 + a^4"])
    assert "std. error (needs --nll or least squares)" in shown.stdout


def test_problem_errors_and_warnings_name_python_arguments(runner):
    cases = [
        (lambda: prepare(LINEAR, model="a*x"), "model= needs target=: the column"),
        (lambda: prepare(None, model="a*x", target="y"), "model= needs data: give the CSV file"),
        (lambda: prepare(LINEAR, cost="sum(a)", model="a*x", target="y"), "(cost=) or a model"),
        (lambda: prepare(LINEAR, model="a*x + b", target="z"), "target= needs column 'z'"),
        (lambda: prepare(LINEAR, model="a*x + b", target="log(y - 100)"), "target='log(y - 100)' is nan"),
        (
            lambda: prepare(LINEAR, model="a*x3 + b*x4", target="y"),
            "give a start with init={'x3': 0, 'x4': 0}",
        ),
        (lambda: prepare(LINEAR, cost="mean(x)"), "cost= has no parameters"),
    ]
    for call, words in cases:
        message = _message(call)
        assert words in message and not FLAG.search(message), message
    problem = prepare(LINEAR, model="a*x + b", target="y", init={"c": 1})
    assert problem.warnings == ["init= gives 'c', which model= does not use; ignored"]
    flags = [
        (["--model", "a*x"], "error: --model needs --target: the column"),
        (["--model", "a*x", "--target", "log(y - 100)"], "error: --target log(y - 100) is nan"),
        (["--model", "a*x3 + b*x4", "--target", "y"], "give a start with --init x3=0,x4=0"),
        (
            ["--model", "a*x + b", "--target", "y", "--init", "c=1"],
            "warning: --init gives 'c', which --model does",
        ),
    ]
    for args, words in flags:
        assert words in runner.invoke(cli, ["fit", LINEAR, *args]).stderr


def test_data_hints_name_the_readers_argument(runner, tmp_path):
    gaps = _csv(tmp_path, "x,y\n1,2\n2,nan\n3,6\n")
    assert _message(lambda: require_columns(load_csv(gaps), ["y"])).endswith(
        "(pass allow_nonfinite=True to keep it)"
    )
    # fit's own argument is allow_nan: a fit's caller reads that name
    assert _message(lambda: fit(gaps, model="a*x", target="y")).endswith("(pass allow_nan=True to keep it)")
    for command in (["fit", gaps, "--model", "a*x", "--target", "y"], ["eval", "sum(y)", "--data", gaps]):
        assert runner.invoke(cli, command).stderr.rstrip().endswith("(pass --allow-nan to keep it)")
    point = _csv(tmp_path, "x;y\n1.5;2\n")
    assert "(with decimal=',' a number is written 1,5)" in _message(
        lambda: require_columns(load_csv(point, decimal=","), ["x"])
    )
    shown = runner.invoke(cli, ["eval", "sum(x)", "--data", point, "--decimal", ","])
    assert "(with --decimal , a number is written 1,5)" in shown.stderr


def test_mentions_are_carried_as_data(tmp_path):
    with pytest.raises(OptionError) as info:
        prepare(LINEAR, model="a*x")
    assert info.value.mentions == (Mention("model"), Mention("target"))
    with pytest.raises(DataError) as info:
        fit(_csv(tmp_path, "x,y\n1,nan\n"), model="a*x", target="y")
    assert Mention("allow_nan", True) in info.value.mentions
    result = fit(LINEAR, model="a*x + b", target="y", method="gd", max_iter=3)
    assert Mention("max_iter", 3) in result.mentions


def test_respelled_replaces_whole_spellings_only():
    spell = {"init": "--init", "max_iter": "--max-iter"}

    def flag(mention):
        return spell[mention.argument] + ("" if mention.value is None else f" {mention.value}")

    mentions = [Mention("init"), Mention("max_iter", 1), Mention("max_iter", 10)]
    text = "xinit= and init=; max_iter=10 then max_iter=1, not max_iter=100"
    assert (
        respelled(text, mentions, flag)
        == "xinit= and --init; --max-iter 10 then --max-iter 1, not max_iter=100"
    )
    assert respelled(text, mentions, None) == text
