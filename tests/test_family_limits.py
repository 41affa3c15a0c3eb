"""Families too large for memory, and the other ways a family can be written wrong: one error line, exit 2.

A memory limit is set for each test (``EXPRGRAD_MEMORY_LIMIT``), so no test
needs a machine with much memory; each refusal is checked to come before the
allocation (tracemalloc's peak stays far below what was refused).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from exprgrad import graph, memory, parse
from exprgrad.backends.evaluate import evaluate
from exprgrad.cli import cli
from exprgrad.errors import ExprgradError, LimitError, OptionError

NETWORK = "k in 1:{k}; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"


@pytest.fixture
def limit(monkeypatch):
    """Set EXPRGRAD_MEMORY_LIMIT for the test."""

    def set_limit(size: str) -> None:
        monkeypatch.setenv(memory.LIMIT_VARIABLE, size)

    return set_limit


def _write_network_data(path, features: int = 50, rows: int = 4):
    rng = np.random.default_rng(0)
    header = ",".join([f"x{i + 1}" for i in range(features)] + ["y"])
    body = "\n".join(",".join(f"{v:.3f}" for v in row) for row in rng.normal(size=(rows, features + 1)))
    path.write_text(header + "\n" + body + "\n")
    return path


def _one_error_line(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "MemoryError" not in result.output
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("error:") == 1
    return result.stderr


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "text, size",
    [
        ("1GiB", 1 << 30),
        ("512 MiB", 512 << 20),
        ("2GB", 2 * 10**9),
        ("1e9", 10**9),
        ("4096", 4096),
        ("3k", 3072),
    ],
)
def test_sizes_are_read_in_binary_and_decimal_units(text, size):
    assert memory.parse_size(text) == size


@pytest.mark.parametrize("text", ["abc", "-1GiB", "1 parsec", "0", ""])
def test_a_limit_that_is_not_a_size_is_an_option_error(text):
    with pytest.raises(OptionError, match="not a size of memory"):
        memory.parse_size(text)


def test_sizes_print_in_binary_units():
    assert memory.format_size(40 * 10**9) == "37 GiB"
    assert memory.format_size(1 << 30) == "1 GiB"
    assert memory.format_size(3.7 * (1 << 30)) == "3.7 GiB"
    assert memory.format_size(640) == "640 bytes"


def test_the_limit_variable_replaces_the_memory_available(limit):
    limit("1GiB")
    assert memory.available() == (1 << 30, "the 1 GiB that EXPRGRAD_MEMORY_LIMIT allows")


def test_without_a_limit_the_memory_available_is_the_machines(monkeypatch):
    monkeypatch.delenv(memory.LIMIT_VARIABLE, raising=False)
    size, said = memory.available()
    assert size > 0 and said.endswith("this machine has available")


def test_a_bad_limit_is_one_error_line_through_the_cli(runner, limit):
    limit("lots")
    result = runner.invoke(cli, ["diff", "k in 1:3; sum[k](w[k])"])
    assert "EXPRGRAD_MEMORY_LIMIT is 'lots', which is not a size of memory" in _one_error_line(result)


# ---------------------------------------------------------------- lowering


def test_a_declared_range_that_makes_a_parameter_family_huge(runner, limit, tmp_path):
    limit("1GiB")
    data = _write_network_data(tmp_path / "wide.csv")
    text = NETWORK.format(k=100_000_000)
    result = runner.invoke(cli, ["eval", text, "--data", str(data), "--at", "W=0.1,b=0,v=0.1,c=0"])
    shown = _one_error_line(result)
    first = shown.splitlines()[0]
    assert first == (
        f"error: line 1, column {text.index('W[k,j]') + 1}: the family W[k,j] would need 37 GiB "
        "(k: 100,000,000 labels x j: 50 labels x 8 bytes), more than the 1 GiB that EXPRGRAD_MEMORY_LIMIT allows"
    )
    assert shown.splitlines()[2].strip() == "^" * len("W[k,j]")


@pytest.mark.parametrize("command", ["diff", "check", "render"])
def test_every_command_refuses_the_family_before_its_work(runner, limit, command):
    limit("1GiB")
    args = [command, "k in 1:1000000000000; sum[k](w[k]^2)"]
    if command == "check":
        args += ["--at", "w=1"]
    result = runner.invoke(cli, args)
    assert "the family w[k] would need 7.3 TiB (k: 1,000,000,000,000 labels x 8 bytes)" in _one_error_line(
        result
    )


def test_a_huge_range_is_refused_with_the_machines_memory_too(runner, monkeypatch):
    monkeypatch.delenv(memory.LIMIT_VARIABLE, raising=False)
    result = runner.invoke(cli, ["diff", "k in 1:999999999999999; sum[k](w[k]^2)"])
    assert "this machine has available" in _one_error_line(result)


def test_a_defined_family_over_the_rows_counts_a_chunk_of_rows(runner, limit):
    limit("1GiB")
    text = "k in 1:1000000; h[k] = tanh(w[k]*x1); mean(sum[k](h[k]))"
    result = runner.invoke(cli, ["diff", text])
    first = _one_error_line(result).splitlines()[0]
    assert first.endswith(
        "the family h[k] would need 7.6 GiB (a chunk of 1,024 rows x k: 1,000,000 labels x 8 bytes), "
        "more than the 1 GiB that EXPRGRAD_MEMORY_LIMIT allows"
    )
    assert f"column {text.index('h[k]))') + 1}:" in first  # its first use


def test_the_labels_of_a_declared_index_count_too(runner, limit):
    limit("1GiB")
    result = runner.invoke(cli, ["diff", "k in 1:100000000; sum[k](1)"])
    assert _one_error_line(result).startswith(
        "error: line 1, column 1: the 100,000,000 labels of index k would need 3.7 GiB (40 bytes a label)"
    )


def test_lowering_refuses_before_building_anything_large(limit):
    limit("64MiB")
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match="the family W\\[k,j\\] would need 29 TiB"):
            parse(NETWORK.format(k=10**12), columns=[f"x{i}" for i in range(1, 5)] + ["y"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_a_family_that_fits_is_lowered_as_before(limit):
    limit("1GiB")
    f = parse(NETWORK.format(k=16), columns=[f"x{i}" for i in range(1, 51)] + ["y"])
    assert f.ranges["k"] == tuple(range(1, 17)) and f.param_sizes["W"] == (16, 50)
    assert f.families["x"].labels == (tuple(range(1, 51)),)


# ---------------------------------------------------------------- evaluation


def test_evaluation_refuses_a_per_row_family_over_a_huge_index(limit):
    limit("64MiB")
    f = parse("h[k] = tanh(w[k]*x1); mean(sum[k](h[k]))", columns=["x1"])
    w, x = np.full(100_000, 0.1), np.ones(50)
    tracemalloc.start()
    try:
        with pytest.raises(LimitError) as caught:
            f.evaluate({"x1": x}, w=w)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.message.startswith("the evaluation would need 1.5 GiB (its largest value, ")
    assert "is 1,024 rows x k: 100,000 labels x 8 bytes), more than the 64 MiB" in caught.value.message
    assert peak < 16 << 20
    # the same function over a family that fits
    assert f.evaluate({"x1": x}, w=w[:1000]) == pytest.approx(1000 * np.tanh(0.1))


def test_filling_a_huge_family_with_one_number_is_refused_before_the_fill(limit):
    limit("64MiB")
    k = graph.index("k")
    w = graph.var("w", (k,))
    from exprgrad import build, ops

    total = build.reduce(ops.SUM, w, k)
    with pytest.raises(
        LimitError, match=r"the family w\[k\] would need 7.5 GiB \(k: 1,000,000,000 labels x 8"
    ):
        evaluate([total], {"w": 0.1}, sizes={"k": 10**9})
    assert evaluate([total], {"w": 0.5}, sizes={"k": 10})[0] == 5.0


def test_at_one_number_for_a_huge_family_through_the_cli(runner, limit):
    limit("1GiB")
    result = runner.invoke(cli, ["eval", "k in 1:200000000; sum[k](w[k])", "--at", "w=0.1"])
    assert "the family w[k] would need 1.5 GiB (k: 200,000,000 labels x 8 bytes)" in _one_error_line(result)


# ---------------------------------------------------------------- fit


def _wide(tmp_path, features: int = 150, rows: int = 200):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(rows, features))
    y = x @ rng.normal(size=features) + 0.1 * rng.normal(size=rows)
    b = (rng.random(rows) < 0.5).astype(float)
    header = ",".join([f"x{i + 1}" for i in range(features)] + ["y", "b"])
    lines = [header] + [",".join(f"{v:.6f}" for v in row) for row in np.column_stack([x, y, b])]
    path = tmp_path / "wide.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_a_newton_fit_whose_hessian_would_not_fit(runner, limit, tmp_path):
    limit("128KiB")
    cost = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - b*z)"
    result = runner.invoke(cli, ["fit", _wide(tmp_path), "--cost", cost, "--method", "newton", "-q"])
    assert _one_error_line(result).startswith(
        "error: the Hessian of the cost would need 178 KiB (151 x 151 x 8 bytes), more than the 128 KiB that "
        "EXPRGRAD_MEMORY_LIMIT allows; fit with --method lbfgs, which needs neither"
    )


def test_an_lm_fit_whose_jacobian_would_not_fit(runner, limit, tmp_path):
    limit("128KiB")
    args = ["fit", _wide(tmp_path), "--model", "c + dot(w, x)", "--target", "y", "--method", "lm", "-q"]
    assert _one_error_line(runner.invoke(cli, args)).startswith(
        "error: the Jacobian of the residuals would need 236 KiB (200 x 151 x 8 bytes)"
    )


def test_the_fit_api_names_the_python_argument(limit, tmp_path):
    import exprgrad

    limit("128KiB")
    with pytest.raises(LimitError, match=r"fit with method='lbfgs'"):
        exprgrad.fit(
            _wide(tmp_path), cost="z = c + sum[j](w[j]*x[j]); mean(softplus(z) - b*z)", method="newton"
        )


# ---------------------------------------------------------------- carets of range errors


@pytest.mark.parametrize(
    "text, columns, message, shown",
    [
        # a definition by index used under an index whose range disagrees: the caret is on that use
        (
            "j in 1:3; m in 1:4; h[k] = w[k]; sum[j](h[j]) + sum[m](h[m])",
            None,
            "the ranges disagree: 'w' is used with index 'j'",
            "h[m]",
        ),
        # through two definitions
        (
            "j in 1:3; m in 1:4; h[k] = w[k]; g[q] = h[q]; sum[j](w[j]) + sum[m](g[m])",
            None,
            "the ranges disagree",
            "g[m]",
        ),
        # a data family inside a definition, used under a declared index of another range
        (
            "j in 1:3; h[k] = x[k]; mean(sum[j](h[j]))",
            ["x1", "x2"],
            "the ranges of index 'j' disagree",
            "h[j]",
        ),
        (
            "m in 1:4; h[k] = w[k]*x[k]; mean(sum[j](h[j]) + sum[m](h[m]))",
            ["x1", "x2", "x3"],
            "the ranges of index 'm' disagree",
            "h[m]",
        ),
        # written uses are found as before
        ("k in 1:3; sum[k](x[k])", ["x1", "x2"], "the ranges of index 'k' disagree", "x[k]"),
        ("j in 1:3; k in 1:4; sum[j](w[j]) + sum[k](w[k])", None, "the ranges disagree", "w[k]"),
    ],
)
def test_a_range_error_points_at_the_use_whose_range_disagrees(text, columns, message, shown):
    with pytest.raises(ExprgradError) as caught:
        parse(text, columns=columns)
    error = caught.value
    assert message in error.message
    assert text[error.column - 1 :].startswith(shown), (error.column, str(error))
    assert error.width == len(shown)


# ---------------------------------------------------------------- --wrt and a member of a family


@pytest.mark.parametrize("command", ["diff", "check", "render"])
@pytest.mark.parametrize("member", ["W[1,2]", "W[1, 2]", "b[1]"])
def test_wrt_a_member_of_a_family_asks_for_the_family(runner, samples, command, member):
    args = [command, f"@{samples / 'families' / 'network.exprgrad'}", "--wrt", member]
    if command == "check":
        args += ["--at", "W=0.1,b=0,v=0.1,c=0", "--data", str(samples / "families" / "network.csv")]
    family = member[0]
    shown = _one_error_line(runner.invoke(cli, args))
    assert f"is a member of the family {family}[" in shown and f"select the family, '{family}'" in shown


def test_wrt_a_family_written_with_its_indices_selects_the_family(runner, samples):
    program = f"@{samples / 'families' / 'network.exprgrad'}"
    by_name = runner.invoke(cli, ["diff", program, "--wrt", "W,c"])
    by_indices = runner.invoke(cli, ["diff", program, "--wrt", "W[k,j],c"])
    assert by_indices.exit_code == 0 and by_indices.output == by_name.output
    assert "∂/∂W[k,j] = " in by_indices.output
    other = runner.invoke(cli, ["diff", program, "--wrt", "W[j,k]"])
    assert "'W[j,k]' is not how the family W[k,j] is written: select it as 'W'" in _one_error_line(other)


def test_wrt_a_member_with_two_labels_of_scalar_members_is_that_member(runner):
    result = runner.invoke(cli, ["diff", "W[1,2]*a + W[2,1]", "--wrt", "W[1,2],a"])
    assert result.exit_code == 0 and result.output == "∂/∂W[1,2] = a\n∂/∂a = W[1,2]\n"


def test_the_api_selects_a_family_by_its_written_indices():
    f = parse("z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)")
    assert f.grad("w[j]")["w"].output is f.grad("w")["w"].output
    with pytest.raises(OptionError, match="'w\\[1\\]' is a member of the family w\\[j\\]"):
        f.grad("w[1]")


# ---------------------------------------------------------------- other bad family input


@pytest.mark.parametrize(
    "text, message, shown",
    [
        ("k in 1:3; sum[pi](w[pi])", "'pi' is the constant pi, so it cannot name an index", "pi"),
        ("exp in 1:3; sum[exp](w[exp])", "'exp' is the function exp(), so it cannot name an index", "exp"),
        ("k in 1:3; sum[k](sin[k])", "'sin' is the function sin(), so it cannot name a family", "sin[k]"),
        ("k in 1:3; sum[k](e[k])", "'e' is the constant e, so it cannot name a family", "e[k]"),
        ("k in 1:3; exp[k] = w[k]; sum[k](exp[k])", "cannot name a family", "exp[k]"),
    ],
)
def test_a_builtin_name_cannot_name_an_index_or_a_family(runner, text, message, shown):
    result = runner.invoke(cli, ["eval", text, "--at", "w=1"])
    lines = _one_error_line(result).splitlines()
    assert message in lines[0]
    column = int(lines[0].split("column ")[1].split(":")[0])
    assert text[column - 1 :].startswith(shown) and lines[2].strip() == "^" * len(shown)


def test_a_member_named_like_a_constant_is_a_name_as_before(runner):
    result = runner.invoke(cli, ["eval", "pi[0] + 1", "--at", "pi[0]=1"])
    assert result.exit_code == 0 and result.output == "2\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("k in 3:1; sum[k](w[k])", "the range 3:1 is empty"),
        ("k in 1:0; sum[k](w[k])", "the range 1:0 is empty"),
        ("k in 1.5:3; sum[k](w[k])", "a range is two whole numbers"),
        ("k in 1:1e12; sum[k](w[k])", "a range is two whole numbers"),
        ("k in 1:99999999999999999999999; sum[k](w[k])", "is too large"),
        ("k in 1:3; k in 1:4; sum[k](w[k])", "the ranges of index 'k' disagree"),
        ("k in 1:3; k = 2; sum[k](w[k])", "'k' is an index and also defined as a name"),
        ("k in 1:3; sum[k](w[k]) + w", "used both as a plain name and as a family"),
        ("k in 1:3; sum[k](w[k]) + w[1]", "selecting a member of a family by its label is not supported"),
        ("k in 1:3; sum[k](k[k])", "is an index and also the name of a family"),
        ("k in 1:3; sum[k,k](w[k])", "the index 'k' appears twice"),
        ("k in 1:3; sum[k](sum[k](w[k]))", "its body does not have that index"),
        ("k in 1:3; j in 1:3; sum[k](w[k]*w[j])", "index 'j' is free in the result"),
        ("k in 1:3; sum[k](w[k]) + sum[k](w[k,k])", "a diagonal is not supported"),
        ("k in 1:2; h[k,k] = w[k]; sum[k](h[k,k])", "the index 'k' appears twice"),
        ("k in 1:2; h[k] = w[j]; sum[k](h[k])", "index 'j' is free in the definition of 'h'"),
        ("k in 1:3; h[k] = w[k]; sum[k](h[k]) + sum[k](h)", "use it with an index"),
        ("sum[k](w[k]); k in 1:3", "a declaration cannot come last"),
        ("k in 1:2; dot(w[k], v[j])", "these share no index"),
        ("dot(W[k,j], V[k,j])", "share several indices"),
    ],
)
def test_bad_family_input_is_one_error_line_with_a_caret(runner, text, message):
    result = runner.invoke(cli, ["eval", text, "--at", "w=1,v=1,V=1,W=1"])
    lines = _one_error_line(result).splitlines()
    assert message in lines[0] and lines[0].startswith("error: line 1, column ")
    assert len(lines) == 3 and set(lines[2].strip()) == {"^"}


@pytest.mark.parametrize(
    "csv, message",
    [
        ("x1,x2,x4,y\n1,2,3,1\n", "the data family 'x' has a gap: columns 1..4 without 'x3'"),
        ("x_1,x_2,x_4,y\n1,2,3,1\n", "without 'x_3'"),
        ("x[1],x[3],y\n1,2,1\n", "without 'x[2]'"),
        ("x1,x_2,y\n1,2,1\n", "mix two namings (x1 and x_2)"),
    ],
)
def test_bad_data_families_are_one_error_line_with_a_caret(runner, tmp_path, csv, message):
    data = tmp_path / "data.csv"
    data.write_text(csv)
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]) - y)", "--data", str(data), "--at", "w=1"])
    lines = _one_error_line(result).splitlines()
    assert message in lines[0] and lines[2].strip() == "^^^^"


def test_families_of_one_member_work_end_to_end(runner, tmp_path):
    data = tmp_path / "one.csv"
    data.write_text("x1,y\n1,2\n3,1\n")
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]) - y)", "--data", str(data), "--at", "w=1"])
    assert result.exit_code == 0 and result.output == "0.5\n"
    checked = runner.invoke(cli, ["check", "k in 1:1; sum[k](w[k]^2)", "--at", "w=1"])
    assert checked.exit_code == 0 and "w[1]" in checked.output


def test_the_readmes_memory_example_is_what_diff_prints(runner, limit, samples, monkeypatch):
    readme = (samples.parent / "README.md").read_text(encoding="utf-8")
    block = readme.split("$ EXPRGRAD_MEMORY_LIMIT=1GiB exprgrad diff ", 1)[1].split("\n```", 1)[0]
    command, shown = block.split("\n", 1)
    text = command.split('"')[1]
    limit("1GiB")
    monkeypatch.chdir(samples.parent)
    result = runner.invoke(cli, ["diff", text, "--data", "samples/families/network.csv"])
    assert result.exit_code == 2 and result.stderr == shown + "\n"


@pytest.mark.parametrize(
    "header, first, second",
    [("x1,x01,x2,y", "x1", "x01"), ("x_1,x_01,y", "x_1", "x_01"), ("x[2],x[02],x[1],y", "x[2]", "x[02]")],
)
def test_two_columns_with_one_label_are_an_error_not_one_dropped(runner, tmp_path, header, first, second):
    data = tmp_path / "data.csv"
    data.write_text(header + "\n" + ",".join(["1"] * len(header.split(","))) + "\n")
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", str(data), "--at", "w=1"])
    lines = _one_error_line(result).splitlines()
    assert f"the data columns '{first}' and '{second}' are both member" in lines[0]
    assert "of the family 'x': rename one of them" in lines[0] and lines[2].strip() == "^^^^"


def test_zero_padded_columns_alone_form_a_family(runner, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x01,x02,x03,y\n1,5,2,1\n")
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", str(data), "--at", "w=1"])
    assert result.exit_code == 0 and result.output == "8\n"


def test_a_huge_gap_in_a_data_family_is_found_without_walking_it(runner, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x1,x100000000000,y\n1,5,1\n")
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x[j]))", "--data", str(data), "--at", "w=1"])
    assert "the data family 'x' has a gap: columns 1..100000000000 without 'x2'" in _one_error_line(result)


def test_a_gap_is_named_in_the_familys_own_spelling(runner, tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x1_1,x1_2,x1_4,y\n1,5,1,1\n")
    result = runner.invoke(cli, ["eval", "mean(sum[j](w[j]*x1[j]))", "--data", str(data), "--at", "w=1"])
    assert "the data family 'x1' has a gap: columns 1..4 without 'x1_3'" in _one_error_line(result)


def test_the_memory_available_is_memavailable_of_meminfo(monkeypatch, tmp_path):
    monkeypatch.delenv(memory.LIMIT_VARIABLE, raising=False)
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:       32000000 kB\nMemFree:         1000000 kB\nMemAvailable:    2097152 kB\n"
    )
    monkeypatch.setattr(memory, "MEMINFO", str(meminfo))
    assert memory.available() == (2 << 30, "the 2 GiB this machine has available")


def test_without_meminfo_the_free_physical_pages_count(monkeypatch, tmp_path):
    import os

    monkeypatch.delenv(memory.LIMIT_VARIABLE, raising=False)
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "absent"))
    pages = {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    assert memory.available() == (4096000, "the 3.9 MiB this machine has available")

    def unknown(name):
        raise ValueError(name)

    monkeypatch.setattr(os, "sysconf", unknown)
    assert memory.available() is None
    assert memory.too_large(10**15, "the family w[k]") is None  # nothing known: nothing refused


def test_a_fit_over_a_per_row_family_too_wide_for_memory(runner, limit, tmp_path):
    limit("16MiB")
    values = tmp_path / "w.json"
    values.write_text("[" + ",".join(["0.01"] * 4_000) + "]")
    cost = "h[k] = tanh(w[k]*x1); mean(log(1 + sum[k](h[k])^2))"
    args = ["fit", _wide(tmp_path), "--cost", cost, "--init", f"w=@{values}", "--method", "lbfgs", "-q"]
    assert _one_error_line(runner.invoke(cli, args)).startswith(
        "error: the evaluation would need 63 MiB (its largest value, a value over the rows and k, is "
        "1,024 rows x k: 4,000 labels x 8 bytes), more than the 16 MiB that EXPRGRAD_MEMORY_LIMIT allows"
    )
