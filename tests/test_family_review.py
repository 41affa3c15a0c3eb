"""Index families end to end: members selected by a column's name, printed programs that keep
their declarations, a family's value given as a label -> value object, and the messages of
data-family columns."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import exprgrad
from exprgrad.cli import cli

LOGISTIC = "z = c + sum[j](w[j]*x[j]);  mean(softplus(z) - y*z)"
NETWORK = "k in 1:4;  h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]);  mean((sum[k](v[k]*h[k]) + c - y)^2)"


def _csv(tmp_path, names, rows=6, seed=0, name="d.csv"):
    values = np.random.default_rng(seed).normal(size=(rows, len(names)))
    path = tmp_path / name
    lines = [",".join(names)] + [",".join(repr(float(v)) for v in row) for row in values]
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def _one_error(result, *words):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()  # one error line, then the source and a caret when it has one
    assert lines[0].startswith("error: ") and len(lines) in (1, 3), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


# ------------------------------------------------------------ 1. a member named like its column


@pytest.mark.parametrize("command", ["check", "diff"])
@pytest.mark.parametrize("name", ["x1", "x_1", "x3"])
def test_a_data_family_member_by_column_name_is_refused_not_zero(runner, tmp_path, command, name):
    data = _csv(tmp_path, ["x1", "x2", "x3", "y"])
    args = [command, LOGISTIC, "--wrt", name, "--data", data, "--at", "c=0,w=0.1"]
    result = runner.invoke(cli, args)
    line = _one_error(result, f"'{name}'", "data family x")
    assert "'x'" in line  # what to use instead
    assert "derivative is 0" not in result.output


@pytest.mark.parametrize("name", ["w1", "w_2"])
def test_a_parameter_family_member_by_suffix_is_refused_not_zero(runner, name):
    result = runner.invoke(cli, ["diff", LOGISTIC, "--wrt", name])
    line = _one_error(result, f"'{name}'", "family w")
    assert "'w'" in line


def test_select_refuses_members_in_the_library_too():
    f = exprgrad.parse(LOGISTIC)
    with pytest.raises(exprgrad.errors.OptionError, match="member"):
        f.diff("x1")


def test_a_name_that_only_looks_like_a_member_still_warns(runner):
    # no family q in the function: q1 is simply unused
    result = runner.invoke(cli, ["diff", LOGISTIC, "--wrt", "q1"])
    assert result.exit_code == 0
    assert "does not occur" in result.stderr


def test_check_of_a_data_family_does_not_suggest_its_members(runner, tmp_path):
    data = _csv(tmp_path, ["x1", "x2", "x3", "y"])
    result = runner.invoke(cli, ["check", LOGISTIC, "--wrt", "x", "--data", data, "--at", "c=0,w=0.1"])
    line = _one_error(result, "data family")
    assert "such as x1" not in line


# ------------------------------------------------------------ 2. printed programs keep declarations


def test_a_printed_program_keeps_its_declarations():
    f = exprgrad.parse(NETWORK)
    text = str(f)
    assert "k in 1:4" in text
    again = exprgrad.parse(text)
    assert again.param_sizes == f.param_sizes
    assert again.ranges == f.ranges


def test_a_program_without_declarations_prints_none():
    f = exprgrad.parse(LOGISTIC)
    assert " in " not in str(f)
    assert "in 1:" not in str(exprgrad.parse("sum[k](b[k])"))


def test_json_derivative_texts_keep_declarations_and_evaluate(runner, tmp_path):
    result = runner.invoke(cli, ["diff", NETWORK, "--wrt", "b", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for text in [out["function"], *out["derivatives"].values()]:
        assert text.startswith("k in 1:4; ")
    obj = tmp_path / "b.json"
    obj.write_text(json.dumps([0.1 * i for i in range(1, 4)]))  # three values where k has four labels
    data = _csv(tmp_path, ["x1", "x2", "y"])
    args = ["eval", out["function"], "--data", data, "--at", f"b=@{obj},W=0.1,v=0.2,c=0"]
    assert runner.invoke(cli, args).exit_code == 2  # the declaration is kept: sizes are checked
    obj.write_text(json.dumps([0.1 * i for i in range(1, 5)]))
    direct = runner.invoke(cli, ["eval", NETWORK, "--data", data, "--at", f"b=@{obj},W=0.1,v=0.2,c=0"])
    printed = runner.invoke(cli, args)
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == direct.stdout


# ------------------------------------------------------------ 3. label -> value objects


def test_a_label_object_gives_the_range(runner, tmp_path):
    obj = tmp_path / "b.json"
    obj.write_text(json.dumps({"1": 0.5, "2": 1.5, "3": 2.0}))
    result = runner.invoke(cli, ["eval", "sum[k](b[k])", "--at", f"b=@{obj}"])
    assert result.exit_code == 0, result.output
    assert float(result.stdout.split()[-1]) == pytest.approx(4.0)


def test_a_label_object_keeps_its_labels(runner, tmp_path):
    obj = tmp_path / "b.json"
    obj.write_text(json.dumps({"2": 1.0, "3": 2.0, "4": 4.0}))
    result = runner.invoke(cli, ["eval", "sum[k](b[k])", "--at", f"b=@{obj}"])
    assert result.exit_code == 0, result.output
    assert float(result.stdout.split()[-1]) == pytest.approx(7.0)
    declared = runner.invoke(cli, ["eval", "k in 1:3; sum[k](b[k])", "--at", f"b=@{obj}"])
    _one_error(declared, "b[4]")  # a declared range decides; the object is checked against it


@pytest.mark.parametrize("labels", [["1", "3"], ["a", "b"], ["1.5", "2"], ["1", "01"]])
def test_a_label_object_with_gaps_or_odd_labels_is_one_error(runner, tmp_path, labels):
    obj = tmp_path / "b.json"
    obj.write_text(json.dumps(dict.fromkeys(labels, 1.0)))
    result = runner.invoke(cli, ["eval", "sum[k](b[k])", "--at", f"b=@{obj}"])
    _one_error(result, "b")


# ------------------------------------------------------------ 4. messages of data-family columns


def test_dot_with_a_plain_column_says_it_is_not_a_family(runner, tmp_path):
    data = _csv(tmp_path, ["x", "y"])
    result = runner.invoke(cli, ["eval", "mean(dot(w, x))", "--data", data, "--at", "w=1"])
    _one_error(result, "'x'", "not a family")


def test_mixed_namings_name_the_columns_present(runner, tmp_path):
    data = _csv(tmp_path, ["x1", "x_2", "x3", "y"])
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", data, "--at", "w=1"])
    line = _one_error(result, "x1", "x_2")
    assert "x_1" not in line


def test_a_plain_column_beside_a_family_is_not_dropped(runner, tmp_path):
    data = _csv(tmp_path, ["x", "x1", "x2", "y"])
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", data, "--at", "w=1"])
    assert result.exit_code == 2 or "'x'" in result.stderr, result.output
    assert "'x'" in result.stderr


def test_dot_with_a_plain_column_beside_member_columns_names_the_clash(runner, tmp_path):
    data = _csv(tmp_path, ["x", "x1", "x2", "y"])
    result = runner.invoke(cli, ["eval", "mean(dot(w, x))", "--data", data, "--at", "w=1"])
    _one_error(result, "'x'", "'x1'")


@pytest.mark.parametrize("names", [["x1", "x[2]", "y"], ["x_1", "x[2]", "x_3", "y"]])
def test_every_mix_of_namings_names_columns_present(runner, tmp_path, names):
    data = _csv(tmp_path, names)
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", data, "--at", "w=1"])
    line = _one_error(result, "mix")
    for name in names[:2]:
        assert name in line


def test_check_leaves_the_callers_values_as_they_were():
    f = exprgrad.parse("k in 1:2; mean((sum[k](w[k]*x) + c - y)^2)")
    values = {"w": [0.5, -0.25], "c": 0.1}
    f.check(values, data={"x": [1.0, 2.0, 3.0], "y": [0.0, 1.0, 0.5]})
    assert set(values) == {"w", "c"}


def test_one_block_of_label_sums_gives_the_exact_totals():
    from exprgrad import kernels

    sums = np.array([[-0.0, 1.5, np.inf, np.nan]])
    many = np.vstack([sums, np.zeros_like(sums)])
    one = kernels.total_of_label_blocks(sums, 3, False)
    assert np.array_equal(one, kernels.total_of_label_blocks(many, 3, False), equal_nan=True)
    assert math.copysign(1.0, one[0]) == 1.0
    assert np.array_equal(
        kernels.total_of_label_blocks(sums, 3, True),
        kernels.total_of_label_blocks(many, 3, True),
        equal_nan=True,
    )
