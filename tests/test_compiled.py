"""The compiled backend: the numpy backend's numbers from one fused loop per pass, its kernel cache, its choice.

Tests that run kernels need numba (``exprgrad[fast]``) and skip without it;
the ones about the choice of backend and the start-up path run either way.
Kernels compile into one folder for the whole module, so a graph compiled
by one test is loaded by the next.
"""

from __future__ import annotations

import inspect
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import exprgrad
from exprgrad import kernels, ops
from exprgrad.backends import binding, compiled, kernel_source
from exprgrad.backends.evaluate import Schedule, compile_schedule
from exprgrad.cli import cli
from exprgrad.errors import EvaluationError, ToolMissingError, WriteError
from exprgrad.passes.diff import diff
from exprgrad.passes.simplify import simplify_many
from exprgrad.selection import select

HAS_NUMBA = compiled.available()
needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba (exprgrad[fast]) is not installed")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def kernel_cache(tmp_path_factory):
    """One kernel cache folder for the module's tests."""
    folder = tmp_path_factory.mktemp("kernels")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EXPRGRAD_CACHE_DIR", str(folder))
        yield folder


def value_and_gradient(text: str):
    """The output nodes of ``eval --grad``: the function, then its simplified partials."""
    function = exprgrad.parse(text)
    wrt, _ = select(function.output, [])
    gradient = diff(function.output, wrt)
    return function, [function.output, *simplify_many([gradient[name] for name in gradient])]


def assert_close(numpy_values, compiled_values, rtol=1e-14):
    for expected, got in zip(numpy_values, compiled_values, strict=True):
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=0, equal_nan=True)


# ---------------------------------------------------------------- same numbers as numpy


# x and y over ordinary values, zeros, tiny and huge ones, infinities and nan.
SPECIAL = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    2.0,
    0.5,
    1e-300,
    -1e-300,
    1e300,
    -1e300,
    np.inf,
    -np.inf,
    np.nan,
    709.0,
    -745.0,
]


def op_columns(rng):
    grid = np.concatenate([np.linspace(-4.0, 4.0, 997), rng.standard_normal(1500) * 30.0, SPECIAL])
    x = np.repeat(grid, 1)
    y = np.roll(grid, 7) * 0.75
    return {"x": x, "y": y}


def op_text(spec) -> str:
    args = ["x", "y", "x"][: 2 if spec.arity == ops.VARIADIC else spec.arity]
    if spec.notation == "call":
        return f"{spec.text}({', '.join(args)})"
    if spec.notation == "prefix":
        return f"{spec.text}x"
    return f" {spec.text} ".join(args)


SUPPORTED = [spec for spec in kernel_source.EXPRESSIONS if not spec.reduction]


@needs_numba
def test_every_op_the_compiled_backend_runs_gives_the_numpy_values(rng):
    # One schedule with every op as a per-row output: one compile for all.
    texts = [op_text(spec) for spec in SUPPORTED]
    texts += ["x^2", "x^3", "x^0.5", "x^-1", "x^1.7", "x^a", "a^x", "x^y", "x*y*x", "x + y + x"]
    outputs = [exprgrad.parse(text, ["x", "y"]).output for text in texts]
    columns = op_columns(rng)
    expected = Schedule(outputs).run({"a": 2.0}, columns)
    got = compile_schedule(outputs, backend="compiled").run({"a": 2.0}, columns)
    for text, e, g in zip(texts, expected, got, strict=True):
        # 1e-14 relative, but for the values below the normal range (1e-308).
        np.testing.assert_allclose(g, e, rtol=1e-14, atol=1e-300, equal_nan=True, err_msg=text)


@needs_numba
@pytest.mark.parametrize(
    "text",
    [
        "mean((a*x + b - y)^2)",
        "mean(softplus(a*x + b*z + c) - y*(a*x + b*z + c))",
        "mean((a*exp(-b*x) + c*exp(-d*z) + e - y)^2)",
        "sum((x - mean(x))^2)/n + a*mean(abs(y - a) + max(x, a*y))",
        "mean(where(x > a, (x - a)^2, sigmoid(b*y)) + tanh(b*z))",
    ],
)
def test_value_and_gradient_equal_the_numpy_backends(text, rng):
    function, outputs = value_and_gradient(text)
    n = 5 * 1024 + 7  # a part block at the end
    columns = {name: rng.standard_normal(n) + 0.5 for name in function.columns}
    params = {name: 0.3 + 0.1 * k for k, name in enumerate(function.params)}
    params["n"] = float(n)
    expected = Schedule(outputs).run(params, columns)
    schedule = compile_schedule(outputs, backend="compiled")
    assert schedule.uses_compiled(n)
    assert_close(expected, schedule.run(params, columns))


@needs_numba
def test_threads_give_the_same_bits(rng):
    _, outputs = value_and_gradient("mean((a*exp(-b*x) + c - y)^2)")
    n = 40 * 1024 + 3
    columns = {"x": rng.standard_normal(n), "y": rng.standard_normal(n)}
    params = {"a": 1.5, "b": 0.25, "c": -0.5}
    schedule = compile_schedule(outputs, backend="compiled")
    runs = [schedule.run(params, columns, threads=threads) for threads in (1, 2, 3, 7, None)]
    for run in runs[1:]:
        assert [float(v) for v in run] == [float(v) for v in runs[0]]


@needs_numba
def test_per_row_outputs_and_later_passes(rng):
    outputs = [exprgrad.parse(t, ["x", "y"]).output for t in ("(x - mean(x))^2 * a", "sum(x*y)", "x + a")]
    n = 3000
    columns = {"x": rng.standard_normal(n), "y": rng.standard_normal(n)}
    expected = Schedule(outputs).run({"a": 2.0}, columns)
    got = compile_schedule(outputs, backend="compiled").run({"a": 2.0}, columns)
    assert got[0].shape == (n,)
    assert_close(expected, got)


@needs_numba
def test_a_pass_with_exp_runs_a_loop_per_node_and_gives_the_numpy_values(rng):
    # exp, tanh, sigmoid and softplus in arithmetic, each stored node one loop over a
    # 128-row leaf (``_leaf_loops``): a raw column summed, a per-row output, a part block.
    texts = ("sum(y) + mean(exp(a*x))", "exp(a*x)*y", "mean(tanh(x) + sigmoid(a*y) - softplus(x*y))")
    outputs = [exprgrad.parse(t, ["x", "y"]).output for t in texts]
    n = 4 * 1024 + 300
    columns = {"x": rng.standard_normal(n), "y": rng.standard_normal(n)}
    schedule = compile_schedule(outputs, backend="compiled")
    got = schedule.run({"a": 0.7}, columns)
    assert "lo = start + q * 128" in schedule._plan_text.source
    assert "_exp(" in schedule._plan_text.source
    assert_close(Schedule(outputs).run({"a": 0.7}, columns), got)


@needs_numba
def test_a_leafs_running_sums_are_numpys_pairwise_sums_to_the_bit(rng):
    # In a pass with exp, a summed product nothing else reads is added up as it is
    # computed (eight running sums a leaf, not stored), the others from their stored
    # leaf: each block's sum np.sum's of the same rows to the bit.
    texts = ("sum(exp(a*x))", "sum(x*y + y)", "sum(y)")
    outputs = [exprgrad.parse(t, ["x", "y"]).output for t in texts]
    for n in (2048, 3 * 1024 + 515):
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
        y = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
        schedule = compile_schedule(outputs, backend="compiled")
        got = schedule.run({"a": 1e-9}, {"x": x, "y": y})
        assert "r0 = r1 = r2 = r3 = r4 = r5 = r6 = r7 = -0.0" in schedule._plan_text.source
        for rows, total in zip((x * y + y, y), got[1:]):
            assert float(total) == math.fsum(np.sum(rows[k : k + 1024]) for k in range(0, n, 1024))


@needs_numba
def test_whole_and_part_blocks_sum_with_numpys_pairwise_tree(rng):
    # Whole blocks take the unrolled pairwise tree with running sums, the last part
    # block numpy's halving rule: each block's sum must be np.sum's of the same
    # rows to the bit, and the total their exact sum.
    texts = ("sum(x)", "sum((a*x + b - y)^2)", "sum(x*(a*x + b - y))")
    outputs = [exprgrad.parse(t, ["x", "y"]).output for t in texts]
    for n in (1024, 3 * 1024 + 1000, 4 * 1024 + 7):
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
        y = 2.5 * x - 1.0 + rng.standard_normal(n)
        r = 2.5 * x + -1.0 - y
        got = compile_schedule(outputs, backend="compiled").run({"a": 2.5, "b": -1.0}, {"x": x, "y": y})
        for rows, total in zip((x, r * r, x * r), got):
            blocks = [np.sum(rows[k : k + 1024]) for k in range(0, n, 1024)]
            assert float(total) == math.fsum(blocks)


@needs_numba
def test_a_block_sum_past_the_float_range_is_added_exactly_as_numpy_adds_it():
    # 1e308 + 1e308 - 1e308 ... overflows on the way: the numpy backend's exact path.
    x = np.tile([1e308, 1e308, -1e308, -1e308], 600)
    outputs = [exprgrad.parse("sum(x)").output, exprgrad.parse("sum(a*x)").output]
    expected = Schedule(outputs).run({"a": 1.0}, {"x": x})
    got = compile_schedule(outputs, backend="compiled").run({"a": 1.0}, {"x": x})
    assert got == expected == [0.0, 0.0]


# ---------------------------------------------------------------- choosing the backend


def test_auto_runs_numpy_for_small_work_and_graphs_it_cannot_take(rng):
    outputs = [exprgrad.parse("mean((a*x - y)^2)").output]
    schedule = compile_schedule(outputs, backend="auto")
    assert not schedule.uses_compiled(1000)
    assert schedule.uses_compiled(compiled.AUTO_MIN_WORK) == HAS_NUMBA
    # Mostly log per row: numpy's vectorized log beats a loop calling the C library's.
    calls = compile_schedule([exprgrad.parse("mean((a*log(b*x) + c*log(d*x) - y)^2)").output], backend="auto")
    assert calls.speedup < compiled.AUTO_MIN_SPEEDUP <= schedule.speedup
    assert not calls.uses_compiled(10**9)
    family = compile_schedule([exprgrad.parse("mean(invmills(a*x))").output], backend="auto")
    assert family.unsupported == "invmills()"
    assert not family.uses_compiled(10**9)
    x = rng.standard_normal(100)
    assert family.run({"a": 1.0}, {"x": x}) == Schedule(family.outputs).run({"a": 1.0}, {"x": x})


def test_explicit_compiled_says_what_it_cannot_take():
    with pytest.raises(EvaluationError, match=r"does not support invmills\(\) yet: use backend='numpy'"):
        compile_schedule([exprgrad.parse("mean(invmills(a*x))").output], backend="compiled")


def test_without_numba_auto_is_numpy_and_compiled_says_how_to_install(monkeypatch, rng):
    monkeypatch.setattr(compiled, "available", lambda: False)
    outputs = [exprgrad.parse("mean((a*x - y)^2)").output]
    schedule = compile_schedule(outputs, backend="auto")
    assert not schedule.uses_compiled(10**9)
    with pytest.raises(ToolMissingError, match=r"pip install 'exprgrad\[fast\]'"):
        compile_schedule(outputs, backend="compiled")


def test_an_unknown_backend_is_refused():
    with pytest.raises(exprgrad.ArgumentError, match="backend= must be one of 'numpy', 'compiled', 'auto'"):
        compile_schedule([exprgrad.parse("a*x").output], backend="fast")


@needs_numba
def test_an_unwritable_cache_folder(tmp_path, monkeypatch, rng):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(blocker / "kernels"))
    outputs = [exprgrad.parse("mean((a*x - y)^2 + 0.125)").output]
    columns = {"x": rng.standard_normal(50), "y": rng.standard_normal(50)}
    with pytest.raises(WriteError, match="set EXPRGRAD_CACHE_DIR to a writable folder"):
        compile_schedule(outputs, backend="compiled").run({"a": 1.0}, columns)
    monkeypatch.setattr(compiled, "AUTO_MIN_WORK", 1)
    monkeypatch.setattr(compiled, "AUTO_MIN_SPEEDUP", 0.0)
    auto = compile_schedule(outputs, backend="auto")
    assert auto.uses_compiled(50)
    assert auto.run({"a": 1.0}, columns) == Schedule(outputs).run({"a": 1.0}, columns)


def test_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(tmp_path / "own"))
    assert compiled.cache_dir() == tmp_path / "own"
    monkeypatch.delenv("EXPRGRAD_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compiled.cache_dir() == tmp_path / "xdg" / "exprgrad" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compiled.cache_dir() == Path.home() / ".cache" / "exprgrad" / "kernels"


# ---------------------------------------------------------------- the command line


@pytest.fixture
def linear_csv(tmp_path, rng):
    path = tmp_path / "data.csv"
    x = rng.standard_normal(2500)
    noise = rng.standard_normal(2500)
    rows = "\n".join(f"{float(a)!r},{float(2 * a + 1 + 0.1 * b)!r}" for a, b in zip(x, noise))
    path.write_text("x,y\n" + rows + "\n")
    return path


@needs_numba
@pytest.mark.parametrize("threads", ["1", "2"])
def test_eval_grad_with_the_compiled_backend(runner, linear_csv, threads):
    base = ["eval", "mean((a*x + b - y)^2)", "--at", "a=2,b=1", "--data", str(linear_csv), "--grad"]
    base += ["--format", "json"]
    numpy_run = runner.invoke(cli, [*base, "--backend", "numpy"])
    compiled_run = runner.invoke(cli, [*base, "--backend", "compiled", "--threads", threads])
    assert numpy_run.exit_code == compiled_run.exit_code == 0, compiled_run.output
    import json

    expected, got = json.loads(numpy_run.output), json.loads(compiled_run.output)
    assert got["value"] == pytest.approx(expected["value"], rel=1e-14)
    for name, value in expected["gradient"].items():
        assert got["gradient"][name] == pytest.approx(value, rel=1e-14)


def test_eval_refuses_a_graph_the_compiled_backend_cannot_take(runner, linear_csv):
    result = runner.invoke(
        cli,
        ["eval", "mean(invmills(a*x))", "--at", "a=2", "--data", str(linear_csv), "--backend", "compiled"],
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: the compiled backend does not support invmills() yet: use --backend numpy"
    ]


@pytest.mark.parametrize("command", ["eval", "diff", "check", "fit"])
def test_every_evaluating_command_takes_backend_and_threads(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert "--backend [numpy|compiled|auto]" in result.output
    assert "--threads" in result.output


@pytest.mark.parametrize("threads", ["0", "-2", "two"])
def test_bad_thread_counts(runner, threads):
    result = runner.invoke(cli, ["eval", "a*2", "--at", "a=1", "--threads", threads])
    assert result.exit_code == 2
    assert "--threads" in result.output


# ---------------------------------------------------------------- processes: start-up, cache


def run_python(code: str, cache: Path, timeout: float = 300.0) -> subprocess.CompletedProcess:
    env = dict(os.environ, EXPRGRAD_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def test_numba_is_not_imported_without_the_compiled_backend(tmp_path):
    code = """
        import sys
        from click.testing import CliRunner
        from exprgrad.cli import cli
        result = CliRunner().invoke(cli, ["eval", "mean(a*x)", "--at", "a=2,x=3", "--backend", "numpy"])
        assert result.exit_code == 0, result.output
        result = CliRunner().invoke(cli, ["eval", "a^2", "--at", "a=2"])
        assert result.exit_code == 0, result.output
        print("numba" in sys.modules, "llvmlite" in sys.modules)
    """
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


# A process that evaluates the 5-feature logistic cost and its gradient with
# the compiled backend and prints how many kernels numba compiled and loaded.
CACHE_PROBE = """
    import sys, time
    import numpy as np
    import exprgrad
    from exprgrad.backends.evaluate import compile_schedule
    from exprgrad.passes.diff import diff
    from exprgrad.passes.simplify import simplify_many
    from exprgrad.selection import select
    f = exprgrad.parse("mean(softplus(a*x1 + b*x2 + c*x3 + d*x4 + e*x5 + g) - y*(a*x1 + b*x2 + c*x3 + d*x4 + e*x5 + g))")
    wrt, _ = select(f.output, [])
    grad = diff(f.output, wrt)
    outputs = [f.output, *simplify_many(list(grad.values()))]
    rng = np.random.default_rng(1)
    columns = {name: rng.standard_normal(3000) for name in f.columns}
    params = {name: 0.1 * k for k, name in enumerate(f.params)}
    start = time.perf_counter()
    schedule = compile_schedule(outputs, backend="compiled")
    values = schedule.run(params, columns)
    seconds = time.perf_counter() - start
    module = schedule._kernels()
    kernels = [getattr(module, name) for name in dir(module) if name.startswith("pass_")]
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    print(hits, misses, repr(float(values[0])), f"{seconds:.3f}", file=sys.stdout)
"""


@needs_numba
@pytest.mark.slow
def test_a_second_process_loads_the_cached_kernel(tmp_path):
    first = run_python(CACHE_PROBE, tmp_path)
    second = run_python(CACHE_PROBE, tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    hits, misses, value, _ = first.stdout.split()
    assert (hits, misses) == ("0", "1")
    hits, misses, second_value, _ = second.stdout.split()
    assert (hits, misses) == ("1", "0")
    assert second_value == value


@needs_numba
@pytest.mark.slow
def test_a_corrupt_or_stale_cache_entry_is_written_again(tmp_path):
    first = run_python(CACHE_PROBE, tmp_path)
    assert first.returncode == 0, first.stderr
    (entry,) = tmp_path.glob("kernels_*.py")
    text = entry.read_text()
    for broken in (text[: len(text) // 2], text.replace("return 0", "return 1"), "\x00\xff garbage"):
        entry.write_bytes(broken.encode("utf-8", "surrogateescape") if isinstance(broken, str) else broken)
        again = run_python(CACHE_PROBE, tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.split()[2] == first.stdout.split()[2]
        assert entry.read_text() == text
    # numba's own cache files damaged: the machine code is made again.
    for cached in (tmp_path / "__pycache__").iterdir():
        cached.write_bytes(b"garbage")
    again = run_python(CACHE_PROBE, tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[2] == first.stdout.split()[2]


@needs_numba
@pytest.mark.slow
def test_processes_racing_on_an_empty_cache_agree(tmp_path):
    env = dict(os.environ, EXPRGRAD_CACHE_DIR=str(tmp_path))
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CACHE_PROBE)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    outputs = [racer.communicate(timeout=300) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err for _, err in outputs]
    assert len({out.split()[2] for out, _ in outputs}) == 1
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    after = run_python(CACHE_PROBE, tmp_path)
    assert after.stdout.split()[:2] == ["1", "0"]


@needs_numba
@pytest.mark.slow
def test_check_and_fit_with_the_compiled_backend(runner, linear_csv):
    check = [
        "check",
        "mean((a*x + b - y)^2)",
        "--at",
        "a=2,b=1",
        "--data",
        str(linear_csv),
        "--format",
        "json",
    ]
    numpy_check = runner.invoke(cli, [*check, "--backend", "numpy"])
    compiled_check = runner.invoke(cli, [*check, "--backend", "compiled", "--threads", "2"])
    assert numpy_check.exit_code == compiled_check.exit_code == 0, compiled_check.output
    import json

    assert json.loads(compiled_check.output)["ok"]
    fit = [
        "fit",
        str(linear_csv),
        "--cost",
        "mean((a*x + b - y)^2)",
        "--method",
        "lbfgs",
        "--format",
        "json",
        "-q",
    ]
    numpy_fit = runner.invoke(cli, [*fit, "--backend", "numpy"])
    compiled_fit = runner.invoke(cli, [*fit, "--backend", "compiled"])
    assert numpy_fit.exit_code == compiled_fit.exit_code == 0, compiled_fit.output
    expected, got = json.loads(numpy_fit.output)["params"], json.loads(compiled_fit.output)["params"]
    assert got == pytest.approx(expected, rel=1e-9)


@needs_numba
@pytest.mark.slow
def test_the_python_fit_takes_backend_and_threads(linear_csv):
    compiled_fit = exprgrad.fit(str(linear_csv), cost="mean((a*x + b - y)^2)", backend="compiled", threads=2)
    numpy_fit = exprgrad.fit(str(linear_csv), cost="mean((a*x + b - y)^2)", backend="numpy")
    assert compiled_fit.params == pytest.approx(numpy_fit.params, rel=1e-9)


@needs_numba
@pytest.mark.parametrize(
    "columns",
    [
        {"x": np.zeros(0), "y": np.zeros(0)},
        {"x": [1.0, 2.0], "y": [0.0, 1.0]},
        {"x": np.arange(7.0), "y": 2.0},
    ],
    ids=["no rows", "lists", "a column as one number"],
)
def test_odd_data_gives_the_numpy_backends_values(columns):
    outputs = [exprgrad.parse(t, ["x", "y"]).output for t in ("mean((a*x - y)^2)", "sum((a*x - y)^2)")]
    params = {"a": 1.5, "y": 2.0} if not isinstance(columns["y"], float) else {"a": 1.5}
    if isinstance(columns["y"], float):
        params["y"], columns = columns["y"], {"x": columns["x"]}
    expected = Schedule(outputs).run(params, columns)
    got = compile_schedule(outputs, backend="compiled").run(params, columns)
    np.testing.assert_equal(got, expected)


def test_columns_that_differ_in_length_are_refused_on_either_backend():
    outputs = [exprgrad.parse("mean((a*x - y)^2)").output]
    for backend in ("numpy", "auto") + (("compiled",) if HAS_NUMBA else ()):
        with pytest.raises(EvaluationError, match="data columns differ in length"):
            compile_schedule(outputs, backend=backend).run({"a": 1.0}, {"x": np.zeros(3), "y": np.zeros(4)})


@needs_numba
def test_numba_that_cannot_be_imported(monkeypatch, rng):
    monkeypatch.setitem(sys.modules, "numba", None)  # import numba raises ImportError
    outputs = [exprgrad.parse("mean((a*x - y)^2 + 0.375)").output]
    columns = {"x": rng.standard_normal(50), "y": rng.standard_normal(50)}
    with pytest.raises(ToolMissingError, match="cannot load numba .*use backend='numpy'"):
        compile_schedule(outputs, backend="compiled").run({"a": 1.0}, columns)
    monkeypatch.setattr(compiled, "AUTO_MIN_WORK", 1)
    monkeypatch.setattr(compiled, "AUTO_MIN_SPEEDUP", 0.0)
    auto = compile_schedule(outputs, backend="auto")
    assert auto.run({"a": 1.0}, columns) == Schedule(outputs).run({"a": 1.0}, columns)


# ---------------------------------------------------------------- index families

NETWORK = "k in 1:6; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"
LOGISTIC = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"


def family_case(text: str, rng, n: int, features: int = 5):
    """The value and gradient outputs of ``text``, its data (the family as a list of columns) and parameters."""
    names = [f"x{j}" for j in range(1, features + 1)]
    function = exprgrad.parse(text, columns=[*names, "y"])
    wrt, _ = select(function.output, [])
    outputs = [function.output, *diff(function.output, wrt).values()]
    columns = [rng.standard_normal(n) for _ in names]
    data = {"x": columns, "y": (rng.standard_normal(n) > 0).astype(float)}
    params = {
        "W": rng.standard_normal((6, features)) / 3,
        "b": 0.1 * rng.standard_normal(6),
        "v": rng.standard_normal(6),
        "w": 0.2 * rng.standard_normal(features),
        "c": 0.3,
    }
    return outputs, data, params


def assert_family_close(expected, got, rtol=1e-13):
    # Each value against the largest of its own: a gradient entry near 0 sums the
    # same rows in another order (matrix products and loops over labels).
    for e, g in zip(expected, got, strict=True):
        e, g = np.asarray(e), np.asarray(g)
        assert g.shape == e.shape
        assert np.max(np.abs(g - e)) <= rtol * max(np.max(np.abs(e)), 1e-300)


@needs_numba
@pytest.mark.parametrize("text", [NETWORK, LOGISTIC, "mean(sum[j]((w[j]*x[j] - y)^2)) + mean[j](exp(w[j]))"])
def test_a_family_graphs_value_and_gradient_equal_the_numpy_backends(text, rng):
    outputs, data, params = family_case(text, rng, n=4 * 1024 + 37)  # a part block at the end
    expected = Schedule(outputs).run(params, data)
    schedule = compile_schedule(outputs, backend="compiled")
    assert schedule.unsupported is None and schedule.uses_compiled(1)
    assert_family_close(expected, schedule.run(params, data))
    # The family as one rows x labels array: the same numbers.
    table = {"x": np.column_stack(data["x"]), "y": data["y"]}
    assert_family_close(expected, schedule.run(params, table))


@needs_numba
def test_a_family_graph_gives_the_same_bits_on_any_thread_count(rng):
    outputs, data, params = family_case(NETWORK, rng, n=40 * 1024 + 5)
    schedule = compile_schedule(outputs, backend="compiled")
    runs = [schedule.run(params, data, threads=t) for t in (1, 2, 3)]
    for run in runs[1:]:
        for a, b in zip(runs[0], run, strict=True):
            assert np.array_equal(a, b)


@needs_numba
def test_per_row_family_outputs_are_written_row_by_row(rng):
    # A model's rows and their derivatives (the Jacobian a least-squares fit uses): rows x labels.
    function = exprgrad.parse("tanh(sum[j](w[j]*x[j]) + c*y)", columns=["x1", "x2", "x3", "y"])
    wrt, _ = select(function.output, [])
    outputs = [function.output, *diff(function.output, wrt).values()]
    n = 2 * 1024 + 11
    data = {"x": rng.standard_normal((n, 3)), "y": rng.standard_normal(n)}
    params = {"w": np.array([1.0, -2.0, 0.5]), "c": 0.7}
    expected = Schedule(outputs).run(params, data)
    got = compile_schedule(outputs, backend="compiled").run(params, data)
    assert sorted(np.shape(g) for g in got) == [(n,), (n,), (n, 3)]
    assert_family_close(expected, got)


def test_auto_weighs_a_family_graph_by_its_widths_and_compiled_says_what_it_cannot_take(rng):
    outputs, data, params = family_case(NETWORK, rng, n=100)
    auto = compile_schedule(outputs, backend="auto")
    sizes = binding.bind(auto.schedule, params, data, None).sizes
    # The network over 50 features computes ten times the values per row of one over 5.
    wide = {index: (50 if size == 5 else size) for index, size in sizes.items()}
    assert compiled.family_work(auto.schedule, wide) > 5 * compiled.family_work(auto.schedule, sizes)
    rows = compiled.AUTO_MIN_WORK // compiled.family_work(auto.schedule, sizes) + 1
    assert auto.uses_compiled(rows, sizes) == HAS_NUMBA
    assert not auto.uses_compiled(rows // 2, sizes)
    if HAS_NUMBA:  # a small run stays on numpy: its numbers are the numpy backend's, bit for bit
        for got, expected in zip(auto.run(params, data), Schedule(outputs).run(params, data), strict=True):
            assert np.array_equal(got, expected)
    softmax = exprgrad.parse("mean(logsumexp[j](w[j]*x[j]))", columns=["x1", "x2"]).output
    assert compile_schedule([softmax], backend="auto").unsupported == "logsumexp[j]"
    if HAS_NUMBA:
        with pytest.raises(
            EvaluationError, match=r"does not support logsumexp\[j\] yet: use backend='numpy'"
        ):
            compile_schedule([softmax], backend="compiled")


@needs_numba
@pytest.mark.parametrize("text", [NETWORK, LOGISTIC])
def test_a_fits_value_and_gradient_of_a_family_model_run_compiled_equal_the_numpy_backends(
    text, rng, monkeypatch
):
    # The fit's own gradient is simplified: the first layer's is one row sum of
    # v[k]*x[j]*(1 - h[k]^2)*d, which the kernel runs as a matrix product of x
    # against the product of the rest, not as a loop over every (j, k).
    from exprgrad.fitting import prepare

    kernels = []  # the source of every family kernel the fit runs
    run_family_pass = compiled._run_family_pass

    def spy(kernel, *arguments):
        kernels.append(inspect.getsource(kernel.py_func))
        return run_family_pass(kernel, *arguments)

    monkeypatch.setattr(compiled, "_run_family_pass", spy)
    names = [f"x{j}" for j in range(1, 6)]
    columns = {name: rng.standard_normal(3 * 1024 + 11) for name in names}
    columns["y"] = (rng.standard_normal(3 * 1024 + 11) > 0).astype(float)
    point = 0.3 * rng.standard_normal(len(prepare(columns, cost=text).params))
    results = {}
    for backend in ("numpy", "compiled"):
        objective = prepare(
            columns, cost=text
        ).objective  # its own: an objective keeps its last point's values
        objective.backend = backend
        results[backend] = objective.value_grad(point)
    value, gradient = results["numpy"]
    assert results["compiled"][0] == pytest.approx(value, rel=1e-13)
    assert_family_close([gradient], [results["compiled"][1]])
    assert kernels  # a family kernel ran the fit's value + gradient
    if text == NETWORK:  # the first layer's gradient as one matrix product
        assert any("= np.dot(g0, np.ascontiguousarray(u0.T))" in source for source in kernels)


@needs_numba
def test_the_compiled_backend_fits_a_family_model_from_the_command_line(runner, tmp_path, rng, monkeypatch):
    kernel_cache = tmp_path / "kernels"  # its own: the kernels this fit writes
    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(kernel_cache))
    n = 3000
    x = rng.standard_normal((n, 3))
    y = x @ [1.0, -2.0, 0.5] + 0.3 + 0.01 * rng.standard_normal(n)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x1,x2,x3,y", comments="")
    runs = [
        runner.invoke(
            cli,
            ["fit", str(path), "--model", "sum[j](w[j]*x[j]) + c", "--target", "y"]
            + ["--method", "lbfgs", "--format", "json", "--backend", backend],
        )
        for backend in ("numpy", "compiled")
    ]
    assert [r.exit_code for r in runs] == [0, 0], runs[1].output
    numpy_fit, compiled_fit = (__import__("json").loads(r.stdout)["params"] for r in runs)
    # The fit's evaluations ran a family kernel (one that reads a data family, d0), not the numpy backend.
    assert any("def pass_1(d0" in path.read_text() for path in kernel_cache.glob("kernels_*.py"))
    assert compiled_fit.keys() == numpy_fit.keys()
    for name, value in numpy_fit.items():
        assert compiled_fit[name] == pytest.approx(value, rel=1e-9, abs=1e-12)


@needs_numba
def test_the_vectorized_functions_are_within_two_ulp_of_numpys(rng):
    source = kernel_source.PRELUDE + textwrap.dedent(
        """

        @numba.njit(**_JIT)
        def apply(x, e, t, p, s):
            for i in range(len(x)):
                e[i] = _exp(x[i])
                t[i] = _tanh(x[i])
                p[i] = _vector_softplus(x[i])
                s[i] = _vector_sigmoid(x[i])
            return 0

        @numba.njit(**_JIT)
        def log1p_unit(x, out):
            for i in range(len(x)):
                out[i] = _log1p_unit(x[i])
            return 0
        """
    )
    module = compiled.load(source)
    grid = np.concatenate(
        [rng.standard_normal(20000) * s for s in (1e-9, 1e-3, 0.3, 1.0, 5.0, 30.0, 300.0)]
        + [np.array([0.0, -0.0, 0.55, 709.78, 709.79, 710.0, -708.4, -745.1, -746.0, 20.0, -25.0])]
        + [np.array([math.inf, -math.inf, math.nan, 5e-324, -1e-310, 36.7, -36.7, 37.5, -37.5])]
    )
    e, t, p, s = (np.empty_like(grid) for _ in range(4))
    module.apply(grid, e, t, p, s)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = (np.exp(grid), np.tanh(grid), kernels.softplus(grid), kernels.sigmoid(grid))
        for got, wanted in zip((e, t, p, s), expected, strict=True):
            # 2 ulp (2**-51 relative) of the numpy backend's; subnormal results to their own spacing.
            np.testing.assert_allclose(got, wanted, rtol=2.0**-51, atol=5e-324, equal_nan=True)
            assert np.array_equal(np.signbit(got), np.signbit(wanted))
    # log1p over softplus's whole range [0, 1], densely, and at both sides of the sqrt(2) switch.
    unit = np.concatenate([np.linspace(0.0, 1.0, 200001), rng.random(20000) ** 8, [5e-324, 1e-300, 1e-17]])
    unit = np.concatenate([unit, np.nextafter(np.sqrt(2.0) - 1.0, [0.0, 1.0]), [np.sqrt(2.0) - 1.0]])
    out = np.empty_like(unit)
    module.log1p_unit(unit, out)
    np.testing.assert_allclose(out, np.log1p(unit), rtol=2.0**-52, atol=5e-324)


@needs_numba
def test_the_compiled_exact_totals_are_math_fsums_bits(rng):
    module = compiled.load(kernel_source.PRELUDE)
    hard = [
        [1e-16, 1.0, 1e16],  # fsum's half-even correction across partials
        [1e308, 1e308, -1e308, -1e308] + [0.0] * 4,
        [0.1] * 10 + [-1.0],
        [1.0, 1e100, 1.0, -1e100] * 2,
        [-0.0, -0.0, -0.0, -0.0],
        [2.0**-1074, 2.0**-1074, -(2.0**-1073), 5e-324],
    ]
    width = max(map(len, hard))
    rows = [row + [0.0] * (width - len(row)) for row in hard]
    scales = 10.0 ** rng.integers(-300, 300, size=(200, 98))
    random = rng.standard_normal((200, 98)) * scales
    random[:100] -= random[:100].mean(axis=1, keepdims=True)  # cancellation
    for sums in (np.array(rows[:1] + rows[2:]), random):
        totals = np.empty(len(sums))
        assert module._exact_totals(np.ascontiguousarray(sums), totals) == 0
        expected = [math.fsum(row) for row in sums.tolist()]
        assert totals.tobytes() == np.array(expected).tobytes()
    # An intermediate overflow (fsum raises) and a sum that is not finite are left to fsum's rules.
    for row in ([1e308, 1e308, -1e308, -1e308], [1.0, math.inf, 2.0, 3.0]):
        assert module._exact_totals(np.array([row]), np.empty(1)) == 1
