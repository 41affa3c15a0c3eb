"""exprgrad.backends.render and `exprgrad render`: DOT text, pictures, values, errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_dot, numeric_partial

from exprgrad import build, graph, ops
from exprgrad import drawing as D
from exprgrad.backends import render as R
from exprgrad.backends.evaluate import evaluate
from exprgrad.cli import cli
from exprgrad.errors import ExprgradError, LimitError, OptionError, ToolMissingError
from exprgrad.function import parse
from exprgrad.ops import OPS
from exprgrad.passes.diff import diff

ROOT = Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"

NODE_LINE = re.compile(r"^\s*(n\d+) \[", re.MULTILINE)
EDGE_LINE = re.compile(r"^\s*(n\d+) -> (n\d+)\b", re.MULTILINE)
HOSTILE = 'a"b\\N<&>{}|[x]θ\t\x07\'"\\'


def node_ids(dot: str) -> list[str]:
    return NODE_LINE.findall(dot)


def edges(dot: str) -> list[tuple[str, str]]:
    return EDGE_LINE.findall(dot)


def label_of(dot: str, node_id: str) -> str:
    match = re.search(rf"^\s*{node_id} \[label=<(.*?)> ", dot, re.MULTILINE)
    return match.group(1)


def svg_texts(svg: bytes | str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def linear_cost():
    """mean((a*x + b - y)^2) over three rows, built with the builders."""
    a, b = graph.var("a"), graph.var("b")
    x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
    residual = build.sub(build.add(build.mul(a, x), b), y)
    return build.call("mean", build.pow_(residual, build.const(2))), a, b


LINEAR_VALUES = {"a": 2.0, "b": 1.0, "x": np.array([0.0, 1.0, 2.0]), "y": np.array([1.0, 2.0, 6.0])}


# ---------------------------------------------------------------- DOT structure


def test_function_graph_has_one_dot_node_and_one_edge_per_graph_node_and_input():
    f = parse("h = a*x + b; (h - y)^2 + sin(h)")
    order = graph.toposort([f.output])
    dot = D.to_dot(f.output)
    assert node_ids(dot) == [f"n{i}" for i in range(len(order))]
    assert len(edges(dot)) == sum(len(n.inputs) for n in order)


def test_shared_subexpression_is_drawn_once():
    f = parse("sin(a*b) + cos(a*b) + (a*b)^2")
    dot = D.to_dot(f.output)
    products = [i for i in node_ids(dot) if label_of(dot, i) == "<B>*</B>"]
    assert len(products) == 1
    users = [tail for tail, head in edges(dot) if tail == products[0]]
    assert len(users) == 3  # sin, cos and ^ read the one product


def test_gradient_graph_reuses_function_nodes_and_is_styled_apart():
    output, a, b = linear_cost()
    derivatives = diff(output, [a, b])
    dot = D.to_dot(output, [a, b])
    drawn = graph.toposort([output, *derivatives.values()])
    forward = {id(n) for n in graph.toposort([output])}
    assert len(node_ids(dot)) == len(drawn)
    assert len(edges(dot)) == sum(len(n.inputs) for n in drawn)
    assert "subgraph cluster_function" in dot and "subgraph cluster_gradient" in dot
    for i, node in enumerate(drawn):
        line = re.search(rf"^\s*n{i} \[.*$", dot, re.MULTILINE).group(0)
        assert (R.DERIVATIVE_COLOR in line) == (id(node) not in forward)
    assert "∂J/∂a" in dot and "∂J/∂b" in dot
    assert re.search(r"-> d0 ", dot) and re.search(r"-> d1 ", dot)
    assert "label=<J = mean((a*x + b - y)^2)>" in dot


def test_graph_choices():
    output, a, _ = linear_cost()
    function_only = D.to_dot(output, [a], graph="function")
    assert "cluster_gradient" not in function_only and "∂J" not in function_only
    both = D.to_dot(output, [a])
    gradient = D.to_dot(output, [a], graph="gradient")
    assert "∂J/∂a" in gradient and "-> out " not in gradient
    assert len(node_ids(gradient)) == graph.count_nodes(diff(output, [a]).values())
    assert len(node_ids(gradient)) < len(node_ids(both))
    every = D.to_dot(output, [], graph="both")  # no wrt: every parameter
    assert "∂J/∂a" in every and "∂J/∂b" in every
    with pytest.raises(OptionError):
        D.to_dot(output, graph="everything")
    with pytest.raises(OptionError):
        D.to_dot(output, rankdir="RL")


def test_dot_text_is_deterministic_across_processes():
    script = (
        "from exprgrad.function import parse\n"
        "from exprgrad.drawing import to_dot\n"
        "f = parse('h = a*x + b; mean((h - y)^2) + log(1 + exp(-h*c))')\n"
        "print(to_dot(f.output, f._wrt(['a', 'b', 'c'])), end='')\n"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert "id(" not in outputs.pop()


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_operation_is_labelled_from_its_registry_entry(name):
    spec = OPS[name]
    count = 2 if spec.arity == ops.VARIADIC else spec.arity
    args = [graph.var(f"p{i}", per_row=spec.reduction) for i in range(count)]
    node = build.call(name, *args)
    assert node.op is spec
    dot = D.to_dot(node, legend=False)
    title = spec.name if spec.notation == "prefix" else spec.text
    assert label_of(dot, f"n{count}") == f"<B>{R._html(title)}</B>"


# ---------------------------------------------------------------- escaping


def test_html_escaping_of_hostile_text():
    escaped = R._html(HOSTILE)
    for raw in ('"', "<", ">", "\t", "\x07"):
        assert raw not in escaped
    assert "&amp;" in escaped and "&lt;" in escaped and "&quot;" in escaped
    assert "\\\\N" in escaped  # Graphviz would read \N as the node's name
    assert "θ" in escaped and "{}|[x]" in escaped


def test_hostile_names_keep_the_dot_text_parseable():
    p, c = graph.var(HOSTILE), graph.var("<col>&", per_row=True)
    output = build.call("mean", build.mul(p, c))
    dot = D.to_dot(output, [p], values={HOSTILE: 1.5, "<col>&": np.array([1.0, 2.0])})
    assert HOSTILE not in dot and "<col>" not in dot
    assert len(node_ids(dot)) == graph.count_nodes([output, *diff(output, [p]).values()])


@needs_dot
def test_hostile_names_render_to_well_formed_svg_with_the_names():
    p, c = graph.var(HOSTILE), graph.var("<col>&", per_row=True)
    output = build.call("mean", build.pow_(build.mul(p, c), build.const(2)))
    svg = R.render(D.to_dot(output, [p], values={HOSTILE: 1.5, "<col>&": np.array([1.0, 2.0])}), "svg")
    texts = svg_texts(svg)
    assert 'a"b\\N<&>{}|[x]θ␉␇\'"\\' in texts
    assert "<col>&" in texts
    assert f"∂J/∂{HOSTILE}".replace("\t", "␉").replace("\x07", "␇") in " ".join(texts)


def test_long_names_are_shortened():
    node = graph.var("w" * 200)
    dot = D.to_dot(node)
    assert label_of(dot, "n0") == f"<B>{'w' * (R.MAX_NAME_CHARS - 1)}…</B>"
    assert f"label=<J = {'w' * (R.MAX_TITLE_CHARS - 5)}…>" in dot  # the title, cut too


# ---------------------------------------------------------------- values and adjoints


def test_summary_of_values():
    assert R.summary(2.0) == "2"
    assert R.summary(np.array([3.14159265])) == "3.142"
    assert R.summary(np.array([0.1, 0.7, 0.2, 0.5])) == "mean 0.375 [0.1, 0.7, 0.2, …]"
    assert R.summary(np.array([1.0, 2.0])) == "mean 1.5 [1, 2]"
    assert R.summary(float("nan")) == "nan"


def test_values_and_adjoints_are_drawn():
    output, a, b = linear_cost()
    dot = D.to_dot(output, [a, b], values=LINEAR_VALUES)
    # residuals 0, 1, -1: J = 2/3; dJ/da = mean(2 r x) = -2/3; dJ/db = mean(2 r) = 0
    assert "J = 0.6667" in dot
    assert "∂J/∂a = -0.6667" in dot and "∂J/∂b = 0" in dot
    assert "mean 1 [0, 1, 2]" in dot  # the column x
    assert "grad" in dot and "value" in dot


def test_node_adjoints_agree_with_diff():
    rng = np.random.default_rng(7)
    for text in (
        "mean((a*x + b - y)^2)",
        "h = a*x + b; mean((h - y)^2) + sum(log(1 + exp(-h*c)))/3 + a^2*c",
        "mean(x - mean(x*a))^2 + sin(a)*sum(c)",
        "max(a*x, b) * sign(c) + abs(a - b)",
        "x*a - mean(x*a)",
        "(x - mean(x))*a/sum(y^2) + c",
    ):
        f = parse(text, columns=["x", "y"])
        values = {"a": 0.7, "b": -0.3, "c": 1.9, "x": rng.normal(size=5), "y": rng.normal(size=5)}
        variables = graph.variables([f.output])
        derivatives = diff(f.output, variables)
        value, adjoint = D.node_values(f.output, [], values)
        params = {k: v for k, v in values.items() if np.ndim(v) == 0}
        columns = {k: v for k, v in values.items() if np.ndim(v) > 0}
        expected = evaluate(list(derivatives.values()), params, columns)
        for variable, want in zip(variables, expected):
            got = adjoint[variable]
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=f"{text}: {variable.name}")
        assert value[f.output] == pytest.approx(evaluate([f.output], params, columns)[0])


def test_per_row_output_without_data_is_micrograd():
    f = parse("tanh(a*x + b)")
    dot = D.to_dot(f.output, f._wrt(["a", "b", "x"]), values={"a": 0.5, "b": -1.0, "x": 3.0})
    # tanh(0.5) = 0.4621; its derivative 0.7864 reaches b, times x reaches a
    assert "J = 0.4621" in dot and "∂J/∂b = 0.7864" in dot and "∂J/∂a = 2.359" in dot


def test_per_row_output_over_data_shows_the_jacobian_diagonal_not_na():
    f = parse("x*a - mean(x*a)", columns=["x"])
    values = {"a": 2.0, "x": np.array([1.0, 2.0, 3.0])}
    _, adjoint = D.node_values(f.output, [], values)
    inner, reduction = f.output.inputs  # x*a, read directly and under the mean
    a, x = graph.variables([f.output])
    # d J_i/d (x*a)_i = 1 - 1/3 (row i moves J_i directly and through the mean), as diff gives for x
    np.testing.assert_allclose(adjoint[inner], [2 / 3] * 3)
    np.testing.assert_allclose(adjoint[x], [4 / 3] * 3)
    np.testing.assert_allclose(adjoint[reduction], [-1.0] * 3)
    np.testing.assert_allclose(adjoint[a], [-1.0, 0.0, 1.0])
    dot = D.to_dot(f.output, f._wrt("a"), values=values)
    assert "n/a" not in dot and "∂J_i" in dot  # the legend says grad is per row of J
    assert "∂J/∂a = mean 0 [-1, 0, 1]" in dot


def cut(output, node):
    """``output`` with ``node`` replaced by a fresh variable (per row if the node is)."""
    leaf = graph.var("cut_", per_row=node.per_row)
    rebuilt = {}
    for n in graph.toposort([output]):
        rebuilt[id(n)] = leaf if n is node else build.rebuild(n, tuple(rebuilt[id(c)] for c in n.inputs))
    return rebuilt[id(output)], leaf


@pytest.mark.parametrize(
    "text",
    [
        "x - mean(x)",
        "(x - mean(x)) / sqrt(mean((x - mean(x))^2))",
        "tanh(a*x + b) * mean(x*y) - sum(exp(b*x))/3",
        "mean((a*x - mean(a*x) - y)^2)",
    ],
)
def test_node_adjoints_match_differences_row_by_row(text):
    f = parse(text, columns=["x", "y"])
    params = {"a": 0.7, "b": -0.3}
    columns = {"x": np.array([0.4, -1.1, 1.6, 0.9]), "y": np.array([1.2, 0.3, -0.5, 2.0])}
    value, adjoint = D.node_values(f.output, [], {**params, **columns})
    for node in graph.toposort([f.output]):
        if node.is_const:
            continue
        # The node cut out of J and moved: one row at a time if it is per row.
        cut_output, leaf = cut(f.output, node)
        at = value[node]
        if node.per_row:
            expected = numeric_partial(cut_output, leaf.name, params, {**columns, leaf.name: at})
        else:
            expected = numeric_partial(cut_output, leaf.name, {**params, leaf.name: at}, columns)
        got = adjoint[node]
        assert np.shape(got) == ((4,) if node.per_row or f.output.per_row else ())
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8, err_msg=f"{text}: {R._title(node)}")
    assert "n/a" not in D.to_dot(f.output, values={**params, **columns})


# ---------------------------------------------------------------- limits and pictures


def wide(k: int):
    x = graph.var("x", per_row=True)
    terms = [
        build.mul(graph.var(f"t[{i}]"), build.call("tanh", build.mul(graph.var(f"w[{i}]"), x)))
        for i in range(k)
    ]
    return build.call(
        "mean", build.pow_(build.sub(build.add(*terms), graph.var("y", per_row=True)), build.const(2))
    )


def test_too_many_nodes_is_a_limit_error_that_suggests_less():
    output = wide(40)
    with pytest.raises(LimitError) as info:
        D.to_dot(output, [], graph="both", max_nodes=graph.count_nodes([output]))
    # The library names its own arguments; the command line says --graph and --wrt.
    assert "graph='function'" in str(info.value) and "fewer wrt" in str(info.value)
    assert str(info.value).startswith("max_nodes: the drawing would have")
    assert info.value.exit_code == 2
    with pytest.raises(
        LimitError, match="the function alone has 207 nodes, more than the limit of 100: raise"
    ):
        D.to_dot(output, [], graph="both", max_nodes=100)
    assert D.to_dot(output, max_nodes=graph.count_nodes([output]))


@needs_dot
@pytest.mark.parametrize("fmt,magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_render_formats(fmt, magic):
    output, a, _ = linear_cost()
    assert R.render(D.to_dot(output, [a]), fmt).startswith(magic)


@needs_dot
def test_svg_is_well_formed_with_the_expected_labels():
    output, a, b = linear_cost()
    texts = svg_texts(R.render(D.to_dot(output, [a, b], values=LINEAR_VALUES), "svg"))
    for label in ("a", "b", "x", "y", "mean", "^", "J = 0.6667", "∂J/∂a = -0.6667", "∂J/∂b = 0", "legend"):
        assert label in texts


def test_render_dot_format_is_the_text():
    assert R.render("digraph { n0 }", "dot") == b"digraph { n0 }"
    with pytest.raises(OptionError):
        R.render("digraph { n0 }", "jpeg")


def test_missing_dot_names_what_to_install(no_dot):
    with pytest.raises(ToolMissingError) as info:
        R.render("digraph { n0 }", "svg")
    message = str(info.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    # The library names its argument; the command line its option (test_cli_missing_dot).
    assert "fmt='dot'" in message and "--format" not in message and info.value.exit_code == 1
    assert R.render("digraph { n0 }", "dot") == b"digraph { n0 }"
    assert D.svg_or_none(graph.var("a")) is None


def test_function_methods():
    f = parse("mean((a*x + b - y)^2)")
    dot = f.to_dot("a")
    assert "∂J/∂a" in dot


@needs_dot
def test_function_svg_is_the_drawing():
    svg = parse("mean((a*x + b - y)^2)")._repr_svg_()
    assert "<svg" in svg and ET.fromstring(svg.encode())


def test_function_svg_is_none_without_dot(no_dot):
    assert parse("mean((a*x + b - y)^2)")._repr_svg_() is None


def test_importing_render_does_not_import_graphviz():
    script = "import sys, exprgrad.backends.render, exprgrad.cli.render_cmd; print('graphviz' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ---------------------------------------------------------------- command line


EXPR = "mean((a*x + b - y)^2)"


def write_csv(tmp_path, text="x,y\n0,1\n1,2\n2,6\n", name="d.csv") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_help(runner):
    result = runner.invoke(cli, ["render", "--help"])
    assert result.exit_code == 0 and "--max-nodes" in result.output and "--rankdir" in result.output


def test_cli_dot_to_stdout(runner):
    result = runner.invoke(cli, ["render", EXPR, "--wrt", "a,b", "--format", "dot"])
    assert result.exit_code == 0
    assert result.stdout.startswith("digraph exprgrad {") and "∂J/∂b" in result.stdout


def test_cli_same_input_same_file(runner, tmp_path):
    paths = [tmp_path / "one.dot", tmp_path / "two.dot"]
    for path in paths:
        assert runner.invoke(cli, ["render", EXPR, "--wrt", "a", "-o", str(path)]).exit_code == 0
    assert paths[0].read_bytes() == paths[1].read_bytes()


@needs_dot
def test_cli_svg_to_stdout_by_default(runner):
    result = runner.invoke(cli, ["render", "a*b + sin(a)"])
    assert result.exit_code == 0
    assert "sin" in svg_texts(result.stdout.encode())


@needs_dot
@pytest.mark.parametrize(
    "suffix,magic",
    [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF"), (".dot", b"digraph"), (".gv", b"digraph")],
)
def test_cli_format_from_suffix_and_no_stray_files(runner, tmp_path, suffix, magic):
    data = write_csv(tmp_path)
    out = tmp_path / f"graph{suffix}"
    result = runner.invoke(
        cli, ["render", EXPR, "--wrt", "a,b", "--at", "a=2,b=1", "--data", data, "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["d.csv", out.name])


@needs_dot
def test_cli_values_over_data_with_unicode_column(runner, tmp_path):
    data = write_csv(tmp_path, "θ,y\n0,1\n1,2\n2,6\n")
    out = tmp_path / "g.svg"
    result = runner.invoke(
        cli,
        [
            "render",
            "mean((a*θ + b - y)^2)",
            "--wrt",
            "a",
            "--at",
            "a=2,b=1",
            "--data",
            data,
            "-o",
            str(out),
            "--rankdir",
            "TB",
        ],
    )
    assert result.exit_code == 0, result.output
    texts = svg_texts(out.read_bytes())
    assert "θ" in texts and "J = 0.6667" in texts and "mean 1 [0, 1, 2]" in texts


def test_cli_errors(runner, tmp_path):
    png = runner.invoke(cli, ["render", EXPR, "--format", "png"])
    assert png.exit_code == 2 and "-o" in png.stderr
    unknown = runner.invoke(cli, ["render", EXPR, "-o", str(tmp_path / "g.jpg")])
    assert unknown.exit_code == 2 and "--format" in unknown.stderr
    fits = str(graph.count_nodes([parse(EXPR).output]))  # the function fits, its derivatives do not
    limit = runner.invoke(cli, ["render", EXPR, "--wrt", "a,b", "--max-nodes", fits, "--format", "dot"])
    assert limit.exit_code == 2 and "--graph function" in limit.stderr
    assert limit.stderr.startswith("error: --max-nodes: the drawing would have")
    alone = runner.invoke(cli, ["render", EXPR, "--wrt", "a,b", "--max-nodes", "5", "--format", "dot"])
    assert alone.exit_code == 2 and "the function alone has" in alone.stderr
    syntax = runner.invoke(cli, ["render", "a*(b", "--format", "dot"])
    assert syntax.exit_code == 2 and syntax.stderr.startswith("error:")
    missing = runner.invoke(
        cli, ["render", EXPR, "--at", "a=1", "--data", write_csv(tmp_path), "--format", "dot"]
    )
    assert missing.exit_code == 2 and "b=" in missing.stderr
    assert not list(tmp_path.glob("g.*"))


def test_cli_warns_about_unknown_wrt_name(runner):
    result = runner.invoke(cli, ["render", EXPR, "--wrt", "a,q", "--format", "dot"])
    assert result.exit_code == 0 and "'q'" in result.stderr and "∂J/∂q" in result.stdout


def test_cli_gradient_without_wrt_uses_every_parameter(runner):
    result = runner.invoke(cli, ["render", EXPR, "--graph", "gradient", "--format", "dot"])
    assert result.exit_code == 0 and "∂J/∂a" in result.stdout and "∂J/∂b" in result.stdout


def test_cli_missing_dot(runner, tmp_path, no_dot):
    out = tmp_path / "g.svg"
    out.write_text("old picture")
    result = runner.invoke(cli, ["render", EXPR, "-o", str(out)])
    assert result.exit_code == 1
    assert (
        result.stderr.startswith("error: Graphviz's 'dot' program")
        and "apt-get install graphviz" in result.stderr
        and result.stderr.rstrip().endswith("or use --format dot")
    )
    assert out.read_text() == "old picture"  # whole or not at all
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.svg"]
    dot = runner.invoke(cli, ["render", EXPR, "-o", str(tmp_path / "g.dot")])
    assert dot.exit_code == 0 and (tmp_path / "g.dot").read_text().startswith("digraph")


def test_cli_unwritable_folder_is_one_error_line(runner, tmp_path, monkeypatch):
    # A folder the user may not write to fails when the temporary file is made
    # (simulated: the tests may run as root, who can write anywhere).
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("exprgrad.cli.output.tempfile.mkstemp", refuse)
    result = runner.invoke(cli, ["render", EXPR, "-o", str(tmp_path / "g.dot")])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write '{tmp_path / 'g.dot'}': Permission denied\n"
    assert isinstance(result.exception, SystemExit)  # the exit, not a traceback
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- bounded work


@pytest.fixture
def slow_dot(monkeypatch, tmp_path):
    """A 'dot' on PATH that never finishes; it writes its process id first."""
    folder = tmp_path / "bin"
    folder.mkdir()
    pid_file = tmp_path / "dot.pid"
    script = folder / "dot"
    script.write_text(f"#!/bin/sh\necho $$ > '{pid_file}'\nexec sleep 30\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return pid_file


def test_dot_past_the_timeout_is_stopped(slow_dot):
    with pytest.raises(R.RenderTimeout) as info:
        R.render("digraph { n0 }", "svg", timeout=0.5)
    assert info.value.exit_code == 1 and "0.5 s" in str(info.value)
    pid = int(slow_dot.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left running


def test_cli_timeout_writes_nothing_and_says_what_to_draw_instead(runner, slow_dot, tmp_path):
    out = tmp_path / "g.svg"
    result = runner.invoke(cli, ["render", EXPR, "--wrt", "a", "-o", str(out), "--timeout", "0.5"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: Graphviz's dot did not finish laying out the drawing in 0.5 s")
    for advice in ("--wrt", "--graph function", "--format dot", "--timeout"):
        assert advice in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "dot.pid"]  # no g.svg, no temporary file


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "x"])
def test_cli_timeout_must_be_positive(runner, bad):
    result = runner.invoke(cli, ["render", EXPR, "--timeout", bad, "--format", "dot"])
    assert result.exit_code == 2 and "--timeout" in result.stderr


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "60", True])
def test_library_timeout_must_be_positive(bad):
    with pytest.raises(ExprgradError, match="^timeout: "):
        R.render("digraph { n0 }", "svg", timeout=bad)


def test_node_limit_is_checked_before_differentiating(monkeypatch):
    def no_diff(*args, **kwargs):
        raise AssertionError("differentiated a graph past the node limit")

    monkeypatch.setattr(D, "diff", no_diff)
    output = wide(40)
    with pytest.raises(LimitError, match="the function alone has"):
        D.to_dot(output, [graph.var("w[0]")], max_nodes=50)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "100", None, True])
def test_library_max_nodes_must_be_a_positive_whole_number(bad):
    with pytest.raises(ExprgradError, match="^max_nodes: "):
        D.to_dot(parse("a*b").output, max_nodes=bad)


def test_negative_zero_is_drawn_as_zero():
    assert R.summary(-0.0) == "0"
    assert R.summary(np.array([-0.0, -0.0, 1.0])) == "mean 0.3333 [0, 0, 1]"
    dot = D.to_dot(parse("a*b").output, values={"a": -0.0, "b": 2.0})
    assert ">-0<" not in dot and ">0<" in dot


def test_library_misuse_names_the_argument():
    with pytest.raises(ExprgradError, match="^dot_text: "):
        R.render(b"digraph { n0 }", "svg")
    with pytest.raises(ExprgradError, match="^output: "):
        D.to_dot("a*b")
    with pytest.raises(ExprgradError, match="^wrt_nodes: "):
        D.to_dot(parse("a*b").output, "a")


def test_render_draws_the_graphs_and_values_it_is_given():
    # Made-up derivative graph and values: render shows them as given, computing nothing.
    a, b = graph.var("a"), graph.var("b")
    output = build.mul(a, b)
    made_up = build.add(b, build.const(7))
    values = {a: 2.0, b: 3.0, output: 41.0, made_up: -5.5}
    dot = R.to_dot(output, {"a": made_up}, values=values, grads={a: 0.25, b: 8.0, output: 1.0})
    assert "J = 41" in dot and "∂J/∂a = -5.5" in dot  # not 6 or 3: what it was given
    assert ">0.25<" in dot and ">8<" in dot
    assert "cluster_gradient" in dot and "cluster_gradient" not in R.to_dot(output)


# ---------------------------------------------------------------- the user's names and order


DEFS = "h1 = sigmoid(w*x + b)\nout = mean((h1 - y)^2)\nout\n"


def test_definitions_are_drawn_with_the_users_names(runner, tmp_path):
    path = tmp_path / "defs.txt"
    path.write_text(DEFS, encoding="utf-8")
    for graph_kind in ("function", "both"):
        result = runner.invoke(
            cli, ["render", f"@{path}", "--wrt", "w", "--graph", graph_kind, "--format", "dot"]
        )
        assert result.exit_code == 0, result.output
        labels = re.findall(r"label=<<B>([^<]*)</B>>", result.stdout)
        assert "h1 = sigmoid" in labels and "out = mean" in labels
    # The Python API draws the same names.
    f = parse(DEFS)
    assert "h1 = sigmoid" in f.to_dot("w") and "out = mean" in f.to_dot()


def test_user_names_skip_leaves_variables_and_second_names():
    # c names a constant (a leaf); x names a variable's name; g is a second name for h.
    f = parse("c = 2; h = a*b; g = h; q = exp(h); c*q + g")
    dot = f.to_dot()
    labels = re.findall(r"label=<<B>([^<]*)</B>>", dot)
    assert any(label.startswith("h = ") for label in labels)
    assert not any(label.startswith(("c = ", "g = ")) for label in labels)
    assert "q = exp" in labels
    # A name that is also a variable of the graph is not drawn on an operation.
    a, b = graph.var("a"), graph.var("b")
    product = build.mul(a, b)
    dot = R.to_dot(build.call("exp", product), names={"a": product, "t": product})
    labels = re.findall(r"label=<<B>([^<]*)</B>>", dot)
    assert any(label.startswith("t = ") for label in labels) and not any(
        label.startswith("a = ") for label in labels
    )


def test_names_that_are_not_a_mapping_are_refused():
    for argument in ("names", "written"):
        with pytest.raises(ExprgradError, match=f"{argument}: must be a dict"):
            D.to_dot(parse("a*b").output, **{argument: ["h"]})


def test_hostile_definition_names_stay_escaped():
    a, b = graph.var("a"), graph.var("b")
    top = build.call("exp", build.mul(a, b))
    dot = R.to_dot(top, names={HOSTILE: top})
    assert f"<B>{R._html(HOSTILE)} = exp</B>" in dot and "<&>" not in dot


@needs_dot
def test_hostile_definition_names_are_drawn_as_written():
    a, b = graph.var("a"), graph.var("b")
    top = build.call("exp", build.mul(a, b))
    texts = svg_texts(R.render(R.to_dot(top, names={HOSTILE: top}), "svg"))
    assert any(text.startswith('a"b\\N<&>{}|[x]θ') and text.endswith(" = exp") for text in texts)


def test_title_keeps_the_written_order(runner):
    for text in ("z + y + a", "b*x + a - y"):
        result = runner.invoke(cli, ["render", text, "--format", "dot"])
        assert result.exit_code == 0
        assert f"label=<J = {parse(text)!s}>" in result.stdout
        assert f"label=<J = {parse(text)!s}>" in parse(text).to_dot()
    assert "label=<J = z + y + a>" in parse("z + y + a").to_dot()


# ---------------------------------------------------------------- dot never outlives exprgrad


def _children(pid: int) -> list[int]:
    """The live (not yet dead) child processes of ``pid``, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in "ZX":
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in "ZX"  # a zombie is dead, waiting to be reaped


def _tower(depth: int) -> str:
    text = "x"
    for _ in range(depth):
        text = f"x^({text})"
    return text


@needs_dot
@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("name", ["SIGTERM", "SIGHUP", "SIGINT", "SIGKILL"])
def test_dot_dies_with_exprgrad(tmp_path, name):
    import signal
    import time

    number = getattr(signal, name)
    if name == "SIGKILL" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    expr = tmp_path / "tower.txt"
    expr.write_text(_tower(150), encoding="utf-8")
    picture = tmp_path / "t.svg"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "exprgrad", "render", f"@{expr}", "-o", str(picture)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    dots: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not dots and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
            dots = _children(process.pid)
        assert dots, "dot was never started"
        time.sleep(0.2)  # dot is busy laying out
        process.send_signal(number)
        returncode = process.wait(timeout=10)
        gone = time.monotonic() + 2
        while any(_alive(pid) for pid in dots) and time.monotonic() < gone:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in dots), f"dot outlived exprgrad after {name}"
        assert returncode == (130 if name == "SIGINT" else -number)
        assert not picture.exists() and not list(tmp_path.glob("*.svg*"))
    finally:
        process.kill()
        process.communicate()
        for pid in dots:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@needs_dot
def test_dot_runner_leaves_signal_handlers_as_they_were():
    import signal
    import threading

    def own(signum, frame):
        pass

    previous = signal.signal(signal.SIGHUP, own)
    try:
        assert R.render("digraph { n0 }", "dot") == b"digraph { n0 }"
        assert R.render("digraph { n0 }", "svg").lstrip().startswith(b"<?xml")
        # Off the main thread, too (no handler can be installed there).
        results = []
        worker = threading.Thread(target=lambda: results.append(R.render("digraph { n0 }", "svg")))
        worker.start()
        worker.join()
        assert results and b"<svg" in results[0]
        assert signal.getsignal(signal.SIGHUP) is own
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, previous)
