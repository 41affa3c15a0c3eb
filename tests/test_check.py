"""exprgrad.check: finite differences that never call a correct derivative wrong, nor a nan ok."""

from __future__ import annotations

import json

import numpy as np
import pytest

import exprgrad
from exprgrad.check import (
    Estimate,
    check_partials,
    check_tol,
    compare,
    derivative,
    numeric_partial,
    reads_elementwise,
    sample_rows,
)
from exprgrad.cli import cli
from exprgrad.errors import ArgumentError, ExprgradError
from exprgrad.selection import select


def checked(text, params, columns=None, wrt=(), **options):
    f = exprgrad.parse(text, columns=list(columns) if columns else None)
    nodes = select(f.output, list(wrt))[0] if wrt else None
    return {r.name: r for r in check_partials(f.output, params, columns, nodes, **options)}


# ---------------------------------------------------------------- scale


@pytest.mark.parametrize("offset", ["0", "1e6", "1e10", "1e12", "-1e12"])
@pytest.mark.parametrize("scale", ["1e-20", "1", "1e20"])
@pytest.mark.parametrize("body", ["sin(a)", "exp(a)", "log(a)", "a^3", "sqrt(a)*b", "atan2(a, b)"])
def test_correct_derivatives_pass_whatever_the_size_of_the_function(offset, scale, body):
    results = checked(f"{offset} + {scale}*{body}", {"a": 1.3, "b": -0.7})
    # Never called wrong; ok wherever float64 can see the change at all (the
    # offset at most 1e10 times the varying part), else said to be unresolved.
    assert all(r.status in ("ok", "unresolved") for r in results.values()), results
    if abs(float(offset)) <= 1e10 * float(scale):
        assert all(r.ok for r in results.values()), results


@pytest.mark.parametrize("at", [1e-8, 1e-3, 0.5, 3.0, 1e4, 1e8])
def test_correct_derivatives_pass_whatever_the_size_of_the_variable(at):
    # log near 0: the first steps leave its domain and are retried smaller
    for text in ("log(a)", "a^2", "exp(-a/1e4)", "1/a"):
        assert checked(text, {"a": at})["a"].ok, (text, at)


def test_near_the_largest_float():
    assert checked("exp(a)", {"a": 709.7})["a"].ok


def test_a_wrong_derivative_is_caught_even_on_a_large_offset():
    # a + 1e10 at a = 1: the numeric side knows d/da to about 1e-6; 1.0001 is outside
    estimate = derivative(lambda v: v + 1e10, 1.0)
    assert compare("a", 1.0, estimate, None, 1e-6).ok
    assert compare("a", 1.0001, estimate, None, 1e-6).status == "disagrees"
    assert compare("a", 1.01, estimate, None, 1e-6).status == "disagrees"


def test_zero_derivative_against_rounding_noise_is_ok():
    result = checked("(a - 1)^2 + 1", {"a": 1.0})["a"]
    assert result.analytic == 0 and result.ok


def test_unresolvable_is_not_ok():
    # d/da (1e14 + 1e-3*a): rounding of 1e14 swamps every difference
    result = checked("1e14 + 1e-3*a", {"a": 1.0})["a"]
    assert result.status == "unresolved"
    estimate = Estimate(np.array(0.6), np.array(0.5), np.array(1e-8))
    assert compare("a", 1.0, estimate, None, 1e-6).status == "unresolved"


# ---------------------------------------------------------------- never ok when not finite


@pytest.mark.parametrize(
    "text, params",
    [
        ("log(a)", {"a": -1.0}),
        ("sqrt(a)", {"a": 0.0}),
        ("a*1e308*10", {"a": 1.0}),
        ("1/a", {"a": 0.0}),
        ("exp(a)", {"a": 800.0}),
    ],
)
def test_nan_or_inf_on_either_side_is_never_ok(text, params):
    result = checked(text, params)["a"]
    assert result.status == "not finite" and not result.ok and result.error == float("inf")


def test_nan_on_both_sides_is_not_ok():
    estimate = Estimate(np.array(np.nan), np.array(np.nan), np.array(np.nan))
    assert compare("a", float("nan"), estimate, None, 1e-6).status == "not finite"
    per_row = Estimate(np.array([1.0, np.nan]), np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    assert compare("x", np.array([1.0, np.nan]), per_row, [0, 1], 1e-6).status == "not finite"


def test_cli_nan_check_exits_1_with_the_status(runner, samples):
    cost = "mean(-y*log(sigmoid(w*x + b)) - (1 - y)*log(1 - sigmoid(w*x + b)))"
    # at w=1 every value is finite: ok, exit 0
    fine = runner.invoke(cli, ["check", cost, "--at", "w=1,b=0", "--data", str(samples / "logistic.csv")])
    assert fine.exit_code == 0, fine.output
    # a column of data that overflows the model: the value is inf, never "ok"
    result = runner.invoke(
        cli,
        [
            "check",
            "mean(exp(w*x))",
            "--at",
            "w=1e4,b=0",
            "--data",
            str(samples / "logistic.csv"),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["ok"] is False
    text = runner.invoke(cli, ["check", "log(a)", "--at", "a=-1"])
    assert text.exit_code == 1 and "NOT FINITE" in text.stdout and " ok" not in text.stdout
    assert "nan or inf" in text.stderr


# ---------------------------------------------------------------- like with like over rows


def test_per_row_function_through_a_reduction_compares_the_diagonal():
    x = np.array([0.5, 1.0, 2.0, 4.0])
    result = checked("x - mean(x)", {}, {"x": x}, wrt=["x"])["x"]
    assert result.ok and result.rows == [0, 1, 2, 3]
    assert np.allclose(result.analytic, 1 - 1 / 4) and np.allclose(result.numeric, 1 - 1 / 4)


def test_elementwise_per_row_function_moves_every_row_at_once():
    f = exprgrad.parse("a*x^2", columns=["x"])
    x_node = next(v for v in exprgrad.graph.variables([f.output]) if v.name == "x")
    assert reads_elementwise(f.output, x_node)
    g = exprgrad.parse("x - mean(x)", columns=["x"])
    assert not reads_elementwise(g.output, next(v for v in exprgrad.graph.variables([g.output])))
    x = np.linspace(-2, 3, 50)
    result = checked("a*x^2", {"a": 2.0}, {"x": x}, wrt=["x"])["x"]
    assert result.ok and result.rows == list(range(50))


def test_scalar_function_of_a_column_moves_sampled_rows_one_at_a_time():
    x = np.linspace(0.1, 1, 30)
    y = np.sin(x)
    result = checked("mean((a*x - y)^2)", {"a": 1.5}, {"x": x, "y": y}, wrt=["x"], rows=4)["x"]
    assert result.ok and result.rows == sample_rows(30, 4) == [0, 10, 19, 29]
    expected = 2 * (1.5 * x - y) * 1.5 / 30
    assert np.allclose(result.numeric, expected[result.rows], rtol=1e-9)


def test_numeric_partial_of_a_column_is_per_row():
    def run(params, columns):
        return float(np.sum(columns["x"] ** 2))

    estimate = numeric_partial(run, "x", {}, {"x": np.array([1.0, 2.0, 3.0])})
    assert np.allclose(estimate.value, [2.0, 4.0, 6.0], rtol=1e-12)


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize("bad", [float("nan"), -1, 0, 1, 2.5, float("inf"), "1e-6", None, True])
def test_tolerance_out_of_range_is_refused(bad):
    with pytest.raises(ArgumentError) as caught:
        check_tol(bad)
    assert isinstance(caught.value, ExprgradError) and str(caught.value).startswith("tol: ")


@pytest.mark.parametrize("bad", ["nan", "-1", "0", "inf"])
def test_cli_tolerance_out_of_range_exits_2_naming_the_option(runner, bad):
    result = runner.invoke(cli, ["check", "a^2", "--at", "a=1", "--tol", bad])
    assert result.exit_code == 2
    assert result.output.startswith("error: --tol: must be a number between 0 and 1")


def test_rows_must_be_positive(runner):
    for bad in (0, 1001, 2.5, True):
        with pytest.raises(ArgumentError, match="^rows: "):
            checked("a", {"a": 1.0}, rows=bad)
    for bad in ("0", "1001"):
        assert runner.invoke(cli, ["check", "a", "--at", "a=1", "--rows", bad]).exit_code == 2


def test_cli_large_offset_passes(runner):
    for expr in ("a + 1e10", "a + 1e12", "1e10*exp(a) + 1e10"):
        result = runner.invoke(cli, ["check", expr, "--at", "a=1"])
        assert result.exit_code == 0, (expr, result.output)
        assert result.stdout.splitlines()[1].split()[-1] == "ok"


def test_a_sequence_for_a_parameter_in_check():
    with pytest.raises(ExprgradError, match="'a' is a parameter"):
        exprgrad.parse("a*b").check({"a": [1, 2], "b": 1})


def test_per_row_residuals_near_zero_are_not_called_wrong(rng):
    # Squared residuals of a near-perfect fit: in some rows a*x + b - y cancels
    # to 1e-4, and a tiny step sees only its rounding.
    x = rng.normal(size=20000)
    y = 2 * x + 1 + 1e-3 * rng.normal(size=x.size)
    results = checked("(a*x + b - y)^2", {"a": 2.0, "b": 1.0}, {"x": x, "y": y}, wrt=["a", "x"])
    assert all(r.ok for r in results.values()), results


def test_cli_negative_zero_shows_as_zero(runner):
    result = runner.invoke(cli, ["check", "-(a-1)^2", "--at", "a=1"])
    assert result.exit_code == 0 and result.stdout.splitlines()[1].split()[1] == "0"


def test_rows_1_checks_one_row(runner):
    # one row moved alone (sampling one row of many divided by zero)
    assert sample_rows(30, 1) == [0]


# ---------------------------------------------------------------- families, member by member

FAMILIES = {
    "logistic": ["--at", "c=0.1,w=@{dir}/w.json"],
    "network": ["--at", "W=@{dir}/W.json,b=@{dir}/b.json,v=@{dir}/v.json,c=0.2"],
    "softmax": ["--at", "W=@{dir}/W.json,b=@{dir}/b.json"],
}


def _family_values(tmp_path):
    # not symmetric: every member differs, so a transposed or mixed-up member would show
    values = {
        "w": [0.3, -0.2, 0.15, 0.4, -0.35],
        "W": [[0.1, -0.2, 0.3, 0.05], [-0.4, 0.2, 0.1, -0.3], [0.25, 0.15, -0.1, 0.2]],
        "b": [0.1, -0.2, 0.3],
        "v": [0.5, -0.3, 0.8],
    }
    for name, value in values.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(value))


@pytest.mark.parametrize("example", sorted(FAMILIES))
def test_the_family_examples_check_every_member(runner, samples, tmp_path, example):
    _family_values(tmp_path)
    at = [part.format(dir=tmp_path) for part in FAMILIES[example]]
    folder = samples / "families"
    args = ["check", f"@{folder / example}.exprgrad", "--data", str(folder / f"{example}.csv"), *at]
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    partials = json.loads(result.stdout)["partials"]
    expected = {"logistic": 1 + 5, "network": 12 + 3 + 3 + 1, "softmax": 12 + 3}[example]
    assert len(partials) == expected and all(p["status"] == "ok" for p in partials.values())
    members = {"logistic": ["w[1]", "w[5]"], "network": ["W[2,3]", "v[3]"], "softmax": ["W[3,4]", "b[2]"]}
    assert all(name in partials for name in members[example])
    text = runner.invoke(cli, args)
    assert text.exit_code == 0 and "members: every one of the" in text.stdout
    assert all(line.split()[-1] == "ok" for line in text.stdout.splitlines()[1:-1])


def test_member_values_match_the_written_axes(samples):
    # W[k,j] evaluated in canonical axes (j, k): each member must be its own derivative
    from exprgrad.fitting.data import load_csv

    data = load_csv(str(samples / "families" / "network.csv"))
    f = exprgrad.parse((samples / "families" / "network.exprgrad").read_text(), columns=data.names)
    W = np.arange(12.0).reshape(3, 4) / 20 - 0.3
    values = {"W": W, "b": [0.1, -0.2, 0.3], "v": [0.5, -0.3, 0.8], "c": 0.2}
    results = {r.name: r for r in f.check(values, data.columns)}
    assert all(r.ok for r in results.values()), results
    assert results["W[2,3]"].family == "W" and results["W[2,3]"].members == 12


def test_a_wrong_member_derivative_is_caught(monkeypatch, samples):
    from exprgrad.check import partials
    from exprgrad.fitting.data import load_csv

    real = partials.compile_schedule
    calls = []

    class Wrong:
        def __init__(self, schedule):
            self.schedule = schedule

        def run(self, *args, **kwargs):
            out = self.schedule.run(*args, **kwargs)
            out[0] = np.array(out[0], dtype=float)
            out[0].flat[2] *= 1.001  # one member of the first family 0.1% off
            return out

    def compile_schedule(outputs, *options):
        calls.append(outputs)
        return Wrong(real(outputs, *options)) if len(calls) == 1 else real(outputs, *options)

    monkeypatch.setattr(partials, "compile_schedule", compile_schedule)
    data = load_csv(str(samples / "families" / "logistic.csv"))
    f = exprgrad.parse((samples / "families" / "logistic.exprgrad").read_text(), columns=data.names)
    results = f.check({"c": 0.1, "w": [0.3, -0.2, 0.15, 0.4, -0.35]}, data.columns, wrt="w")
    statuses = {r.name: r.status for r in results}
    assert statuses == {"w[1]": "ok", "w[2]": "ok", "w[3]": "disagrees", "w[4]": "ok", "w[5]": "ok"}


def test_the_member_limit_is_said_in_one_note(runner, samples, tmp_path):
    _family_values(tmp_path)
    folder = samples / "families"
    args = ["check", f"@{folder}/network.exprgrad", "--data", str(folder / "network.csv")]
    at = [part.format(dir=tmp_path) for part in FAMILIES["network"]]
    result = runner.invoke(cli, [*args, *at, "--members", "7"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if line.startswith("members:")]
    assert notes == [
        (
            "members: 7 of the 18 members checked (W[k,j] 3 of 12, b[k] 2 of 3, v[k] 2 of 3), "
            "spread over each family; --members N checks more"
        )
    ]
    rows = [line for line in result.stdout.splitlines()[1:] if not line.startswith("members:")]
    assert len(rows) == 7 + 1  # 7 members and c
    assert runner.invoke(cli, [*args, *at, "--members", "0"]).exit_code == 2
    with pytest.raises(ArgumentError, match="^members: "):
        exprgrad.parse("sum[j](w[j])", columns=None).check({"w": [1.0, 2.0]}, members=0)


def test_a_column_beside_a_data_family(runner, samples):
    # x2 is member 2 of the data family x[j], not a column beside it: refused, never a 0
    folder = samples / "families"
    args = [
        "check",
        f"@{folder}/logistic.exprgrad",
        "--data",
        str(folder / "logistic.csv"),
        "--at",
        "c=0,w=0.1",
    ]
    result = runner.invoke(cli, [*args, "--wrt", "x2,w"])
    assert result.exit_code == 2 and result.output.startswith(
        "error: 'x2' is a member of the data family x[j]"
    )
    refused = runner.invoke(cli, [*args, "--wrt", "x"])
    assert refused.exit_code == 2 and refused.output.startswith("error: --wrt x: x[j] is a data family")


def test_one_number_sets_every_member_through_the_api(samples):
    from exprgrad.fitting.data import load_csv

    data = load_csv(str(samples / "families" / "logistic.csv"))
    f = exprgrad.parse((samples / "families" / "logistic.exprgrad").read_text(), columns=data.names)
    results = f.check({"c": 0.1, "w": 0.2}, data.columns)
    assert [r.name for r in results] == ["c", "w[1]", "w[2]", "w[3]", "w[4]", "w[5]"]
    assert all(r.ok for r in results)
    assert [r.name for r in f.check({"c": 0.1, "w": 0.2}, data.columns, members=2)] == ["c", "w[1]", "w[5]"]
