"""fit, eval and --at over index families, end to end through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from exprgrad.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = str(ROOT / "samples" / "families")


@pytest.fixture(autouse=True)
def _families_lowered():
    """Skip while lowering does not know index families yet."""
    from exprgrad import parse
    from exprgrad.errors import ExprgradError

    try:
        function = parse("c + sum[j](w[j]*x[j])", columns=["x1", "x2", "y"])
    except ExprgradError as exc:
        pytest.skip(f"index families are not lowered yet ({exc})")
    if not getattr(function, "families", None):
        pytest.skip("Function.families is not there yet")


def _csv(path, columns: dict) -> str:
    names = list(columns)
    rows = np.column_stack([columns[n] for n in names])
    path.write_text(
        ",".join(names) + "\n" + "\n".join(",".join(f"{v:.17g}" for v in row) for row in rows) + "\n"
    )
    return str(path)


def _load(path) -> dict:
    lines = Path(path).read_text().split("\n")
    names = lines[0].split(",")
    data = np.array([[float(v) for v in line.split(",")] for line in lines[1:] if line])
    return {name: data[:, i] for i, name in enumerate(names)}


@pytest.mark.parametrize("model", ["c + dot(w, x)", "c + sum[j](w[j]*x[j])"])
def test_fifty_feature_linear_regression_is_one_direct_solve(runner, tmp_path, rng, model):
    from exprgrad import parse
    from exprgrad.errors import ExprgradError

    try:
        parse(model, columns=["x1", "x2", "y"])
    except ExprgradError as exc:
        pytest.skip(f"{model} is not lowered yet ({exc})")
    rows, p = 300, 50
    x = rng.standard_normal((rows, p))
    y = 0.7 + x @ rng.standard_normal(p) + 0.1 * rng.standard_normal(rows)
    data = _csv(tmp_path / "wide.csv", {**{f"x{i + 1}": x[:, i] for i in range(p)}, "y": y})
    result = runner.invoke(cli, ["fit", data, "--model", model, "--target", "y", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["method"] == "qr" and report["converged"]
    assert list(report["params"]) == ["c", *[f"w[{i}]" for i in range(1, p + 1)]]
    assert list(report["stderr"]) == list(report["params"])
    design = np.column_stack([np.ones(rows), x])
    beta, *_ = np.linalg.lstsq(design, y, rcond=None)
    assert np.allclose(list(report["params"].values()), beta, rtol=1e-9, atol=1e-12)
    residual = y - design @ beta
    s2 = residual @ residual / (rows - p - 1)
    stderr = np.sqrt(s2 * np.diag(np.linalg.inv(design.T @ design)))
    assert np.allclose(list(report["stderr"].values()), stderr, rtol=1e-8)


def test_logistic_regression_over_a_feature_family_reaches_the_minimum(runner):
    result = runner.invoke(
        cli,
        [
            "fit",
            f"{FAMILIES}/logistic.csv",
            "--cost",
            f"@{FAMILIES}/logistic.exprgrad",
            "--method",
            "lbfgs",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    minimum = json.loads(Path(f"{FAMILIES}/logistic.minimum.json").read_text())
    assert report["converged"] and set(report["params"]) == set(minimum)
    for name, value in minimum.items():
        assert report["params"][name] == pytest.approx(value, abs=1e-6)


def test_init_of_a_family_sets_every_member(runner):
    args = [
        "fit",
        f"{FAMILIES}/logistic.csv",
        "--cost",
        f"@{FAMILIES}/logistic.exprgrad",
        "--method",
        "lbfgs",
    ]
    result = runner.invoke(cli, [*args, "--init", "w=0.1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "note: c starts at 0 (no --init value)" in result.stderr
    result = runner.invoke(cli, [*args, "--format", "json"])
    assert "note: c, w start at 0 (no --init value)" in result.stderr


def _network_cost(params: dict) -> float:
    data = _load(f"{FAMILIES}/network.csv")
    x = np.column_stack([data[f"x{j}"] for j in range(1, 5)])
    weights = np.array([[params[f"W[{k},{j}]"] for j in range(1, 5)] for k in (1, 2, 3)])
    b = np.array([params[f"b[{k}]"] for k in (1, 2, 3)])
    v = np.array([params[f"v[{k}]"] for k in (1, 2, 3)])
    return float(np.mean((np.tanh(x @ weights.T + b) @ v + params["c"] - data["y"]) ** 2))


def test_a_symmetric_start_of_the_network_is_reported_and_a_random_one_is_not(runner):
    args = ["fit", f"{FAMILIES}/network.csv", "--cost", f"@{FAMILIES}/network.exprgrad"]
    result = runner.invoke(cli, [*args, "--init", "W=0.1,v=0.1", "--max-iter", "5"])
    assert "warning: the start is symmetric in W[k,j] (all 3 units along k)" in result.stderr
    assert "start from random values with --init random" in result.stderr
    result = runner.invoke(cli, [*args, "--init", "random:1", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "symmetric" not in result.stderr
    report = json.loads(result.stdout)
    assert report["converged"] and report["method"] == "lm"
    names = [f"W[{k},{j}]" for k in (1, 2, 3) for j in (1, 2, 3, 4)]
    assert list(report["params"])[:12] == names
    # The units may come out in another order or sign: compare the cost with the minimum's.
    minimum = json.loads(Path(f"{FAMILIES}/network.minimum.json").read_text())
    assert report["cost"] == pytest.approx(_network_cost(minimum), rel=1e-6)
    assert report["cost"] == pytest.approx(_network_cost(report["params"]), rel=1e-12)


def test_eval_at_family_values_from_a_file_a_number_and_labels(runner, tmp_path):
    data = _load(f"{FAMILIES}/logistic.csv")
    x = np.column_stack([data[f"x{i}"] for i in range(1, 6)])
    w = np.array([0.5, -1.0, 0.25, 2.0, -0.5])
    values = tmp_path / "w.json"
    values.write_text(json.dumps(w.tolist()))
    program = f"@{FAMILIES}/logistic.exprgrad"
    base = ["eval", program, "--data", f"{FAMILIES}/logistic.csv", "--format", "json"]
    result = runner.invoke(cli, [*base, "--at", f"w=@{values},c=0.3", "--grad"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    z = 0.3 + x @ w
    assert report["value"] == pytest.approx(np.mean(np.logaddexp(0, z) - data["y"] * z), rel=1e-12)
    s = 1 / (1 + np.exp(-z))
    gradient = report["gradient"]
    assert [gradient[f"w[{i}]"] for i in range(1, 6)] == pytest.approx(
        x.T @ (s - data["y"]) / len(z), rel=1e-10
    )
    labelled = tmp_path / "labels.json"
    labelled.write_text(json.dumps({str(i + 1): v for i, v in enumerate(w)}))
    again = runner.invoke(cli, [*base, "--at", f"w=@{labelled},c=0.3"])
    assert json.loads(again.stdout)["value"] == report["value"]
    flat = runner.invoke(cli, [*base, "--at", "w=0.1,c=0"])
    z = x @ np.full(5, 0.1)
    assert json.loads(flat.stdout)["value"] == pytest.approx(
        np.mean(np.logaddexp(0, z) - data["y"] * z), rel=1e-12
    )


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1, 2, 3, 4], "error: --at w has 4 values, but j has 5 labels (those of x)"),
        ([1, 2, "a", 4, 5], "entry 3 is not a number"),
        ({"1": 1, "2": 2, "3": 3, "4": 4, "9": 5}, "error: --at w has no member w[9] (j in 1..5)"),
        ({"1": 1, "2": 2}, "error: --at w: no value for w[3] and 2 more"),
    ],
)
def test_family_values_that_do_not_fit_are_one_error_line(runner, tmp_path, values, message):
    path = tmp_path / "w.json"
    path.write_text(json.dumps(values))
    args = ["eval", f"@{FAMILIES}/logistic.exprgrad", "--data", f"{FAMILIES}/logistic.csv"]
    result = runner.invoke(cli, [*args, "--at", f"w=@{path},c=0"])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_family_without_data_takes_its_labels_from_the_values(runner, tmp_path):
    path = tmp_path / "w.json"
    path.write_text("[0.5, -1, 0.25]")
    result = runner.invoke(
        cli, ["eval", "sum[j](w[j]^2)", "--at", f"w=@{path}", "--grad", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "value": 1.3125,
        "gradient": {"w[1]": 1.0, "w[2]": -2.0, "w[3]": 0.5},
    }


def test_a_declared_range_is_checked_against_the_values(runner, tmp_path):
    path = tmp_path / "v.json"
    path.write_text("[1, 2, 3, 4, 5]")
    args = ["eval", f"@{FAMILIES}/network.exprgrad", "--data", f"{FAMILIES}/network.csv"]
    result = runner.invoke(cli, [*args, "--at", f"W=0.1,b=0,c=0,v=@{path}"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --at v has 5 values, but k has 3 labels"


def test_check_takes_a_family_member_by_member(runner):
    args = ["check", f"@{FAMILIES}/logistic.exprgrad", "--data", f"{FAMILIES}/logistic.csv"]
    result = runner.invoke(cli, [*args, "--at", "w=0.1,c=0"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.splitlines()[1:-1]]
    assert names == ["c", "w[1]", "w[2]", "w[3]", "w[4]", "w[5]"]


def test_init_of_a_family_from_a_values_file(runner, tmp_path):
    minimum = json.loads(Path(f"{FAMILIES}/logistic.minimum.json").read_text())
    path = tmp_path / "w.json"
    path.write_text(json.dumps([minimum[f"w[{j}]"] for j in range(1, 6)]))
    args = [
        "fit",
        f"{FAMILIES}/logistic.csv",
        "--cost",
        f"@{FAMILIES}/logistic.exprgrad",
        "--method",
        "lbfgs",
    ]
    result = runner.invoke(cli, [*args, "--init", f"w=@{path},c={minimum['c']}", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["iterations"] <= 3  # it starts at the minimum
    path.write_text("[1, 2]")
    result = runner.invoke(cli, [*args, "--init", f"w=@{path}"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: --init: w has 2 values, but j has 5 labels (those of x)"
    result = runner.invoke(cli, [*args, "--init", f"c=@{path}"])
    assert result.exit_code == 2
    assert "'c' is not one" in result.output


def test_the_readme_family_fits_print_what_it_shows(runner, monkeypatch):
    import re
    import shlex

    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [
        b
        for b in re.findall(r"```\n(\$ exprgrad fit .*?)```", text, flags=re.DOTALL)
        if "samples/families" in b
    ]
    assert len(blocks) == 2
    for block in blocks:
        command, _, shown = block.partition("\n")
        args = shlex.split(command[2:].split(" > ")[0])[1:]
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        output = result.stderr if " > /dev/null" in command else result.output

        def timeless(text):
            return re.sub(r"time \S+ s", "time - s", text).rstrip()

        assert timeless(output) == timeless(shown)


def test_a_saved_family_fit_starts_the_next_one(runner, tmp_path):
    args = [
        "fit",
        f"{FAMILIES}/logistic.csv",
        "--cost",
        f"@{FAMILIES}/logistic.exprgrad",
        "--method",
        "lbfgs",
    ]
    saved = tmp_path / "fit.json"
    first = runner.invoke(cli, [*args, "-o", str(saved), "-q"])
    assert first.exit_code == 0, first.output
    params = json.loads(saved.read_text())["params"]
    assert list(params) == ["c", "w[1]", "w[2]", "w[3]", "w[4]", "w[5]"]
    again = runner.invoke(cli, [*args, "--init", f"@{saved}", "--format", "json"])
    assert again.exit_code == 0, again.output
    assert "start at 0" not in again.stderr
    assert json.loads(again.stdout)["iterations"] <= 3


def test_a_family_fit_without_data(runner, tmp_path):
    from exprgrad import fit

    declared = fit(cost="j in 1:4; sum[j]((w[j] - 1)^2)")
    assert list(declared.params) == ["w[1]", "w[2]", "w[3]", "w[4]"] and declared.converged
    sized = fit(cost="sum[k,j]((W[k,j] - 1)^2)", init={"W": np.zeros((2, 3))})
    assert list(sized.params)[-1] == "W[2,3]" and sized.params["W[2,3]"] == pytest.approx(1.0)
    path = tmp_path / "w.json"
    path.write_text("[0, 0, 0]")
    result = runner.invoke(
        cli, ["fit", "--cost", "sum[j]((w[j] - 1)^2)", "--init", f"w=@{path}", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == {"w[1]": 1.0, "w[2]": 1.0, "w[3]": 1.0}
    unknown = runner.invoke(cli, ["fit", "--cost", "sum[j]((w[j] - 1)^2)"])
    assert unknown.exit_code == 2
    assert unknown.output.startswith("error: the size of w[j] is not known")
    rows = runner.invoke(cli, ["fit", "--cost", "j in 1:2; sum(sum[j](w[j]))"])
    assert rows.exit_code == 2 and "runs over data rows" in rows.output


def test_a_two_index_family_goes_in_and_comes_out_in_its_written_axes(runner, tmp_path, rng):
    # W[k,j] is given as k rows of j values and reported as W[k,j]: never transposed to
    # the canonical (j, k) order the evaluator works in.
    weights, b, v = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal(3)
    files = {}
    for name, value in {"W": weights, "b": b, "v": v}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(value.tolist()))
    at = ",".join(f"{name}=@{path}" for name, path in files.items()) + ",c=0.2"
    args = ["eval", f"@{FAMILIES}/network.exprgrad", "--data", f"{FAMILIES}/network.csv"]
    result = runner.invoke(cli, [*args, "--at", at, "--grad", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    data = _load(f"{FAMILIES}/network.csv")
    x = np.column_stack([data[f"x{j}"] for j in range(1, 5)])
    h = np.tanh(x @ weights.T + b)
    residual = h @ v + 0.2 - data["y"]
    assert report["value"] == pytest.approx(np.mean(residual**2), rel=1e-12)
    expected = 2 / len(residual) * ((residual[:, None] * v * (1 - h**2)).T @ x)
    got = np.array([[report["gradient"][f"W[{k},{j}]"] for j in range(1, 5)] for k in (1, 2, 3)])
    assert np.allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_a_data_family_is_not_a_parameter(runner):
    args = ["eval", f"@{FAMILIES}/logistic.exprgrad", "--data", f"{FAMILIES}/logistic.csv"]
    result = runner.invoke(cli, [*args, "--at", "w=0.1,c=0,x=1"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --at x: x[...] is a data family (the columns x1..x5); a name is either data or a parameter, not both"
    )
    args = ["fit", f"{FAMILIES}/logistic.csv", "--cost", f"@{FAMILIES}/logistic.exprgrad"]
    result = runner.invoke(cli, [*args, "--init", "x=1"])
    assert result.exit_code == 2
    assert (
        "'x' is a data family of" in result.output
        and "(the columns x1..x5), not a parameter" in result.output
    )


def test_diff_at_a_point_lists_a_family_derivative_per_member(runner):
    args = [
        "diff",
        f"@{FAMILIES}/logistic.exprgrad",
        "--data",
        f"{FAMILIES}/logistic.csv",
        "--at",
        "w=0.1,c=0",
    ]
    shown = runner.invoke(cli, args)
    evaluated = runner.invoke(cli, ["eval", *args[1:], "--grad"])
    assert shown.exit_code == 0 and evaluated.exit_code == 0, shown.output + evaluated.output
    lines = [line for line in shown.stdout.splitlines() if line.startswith("∂J/∂w[")]
    assert [line.split(" = ")[0] for line in lines] == [f"∂J/∂w[{j}]" for j in range(1, 6)]
    assert lines == [line for line in evaluated.stdout.splitlines() if line.startswith("∂J/∂w[")]
