"""What every command reads (EXPR, --at, --data and its --sep, --decimal), through the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest

from exprgrad.cli import COMMANDS, cli
from exprgrad.cli.inputs import MAX_EXPR_BYTES

ROWS = "x\n" + "".join(f"{i}\n" for i in range(5000))
# Every command that reads a data file, and the arguments that make it read one.
DATA_COMMANDS = {
    "eval": ["eval", "sum(x)", "--data"],
    "diff": ["diff", "sum(a*x)", "--at", "a=1", "--data"],
    "check": ["check", "sum(a*x)", "--at", "a=1", "--data"],
    "render": ["render", "sum(a*x)", "--format", "dot", "--at", "a=1", "--data"],
    "fit": ["fit", "--model", "a*x", "--target", "y", "--data"],
}


def run(runner, args, **options):
    """Invoke the CLI; fit takes its data file as DATA, not --data."""
    args = list(args)
    if args[0] == "fit" and "--data" in args:
        at = args.index("--data")
        args = ["fit", args[at + 1], *args[1:at], *args[at + 2 :]]
    return runner.invoke(cli, args, **options)


def error_line(result) -> str:
    """The one line a failure writes, after checking it is one line and no traceback."""
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


# --- read once ---------------------------------------------------------------------


def test_data_from_a_pipe_keeps_every_row(tmp_path):
    """Process substitution: a path that can be read only once."""
    bash = shutil.which("bash")
    if bash is None or not os.path.exists("/dev/fd"):
        pytest.skip("needs bash and /dev/fd")
    rows = tmp_path / "rows.csv"
    rows.write_text(ROWS)
    command = f'"{sys.executable}" -m exprgrad eval "sum(1)" --data <(cat "{rows}")'
    done = subprocess.run([bash, "-c", command], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "5000\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes")
@pytest.mark.parametrize("command", list(DATA_COMMANDS))
def test_named_pipe_is_read_once_by_every_command(runner, tmp_path, command):
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    text = "x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(3000))
    writer = threading.Thread(target=lambda: fifo.write_text(text), daemon=True)
    writer.start()
    result = run(runner, [*DATA_COMMANDS[command], str(fifo)])
    writer.join(timeout=5)
    assert result.exit_code == 0, result.output
    assert not writer.is_alive()
    if command == "eval":
        assert result.stdout == f"{sum(range(3000))}\n"


def test_data_from_standard_input(runner):
    result = runner.invoke(cli, ["eval", "sum(1)", "--data", "-"], input=ROWS)
    assert result.exit_code == 0 and result.stdout == "5000\n"
    fit = runner.invoke(
        cli, ["fit", "-", "--model", "a*x", "--target", "y", "--format", "json"], input="x,y\n1,2\n2,4\n"
    )
    assert fit.exit_code == 0, fit.output
    assert json.loads(fit.stdout)["params"]["a"] == pytest.approx(2.0)


def test_data_error_from_standard_input_says_stdin(runner):
    result = runner.invoke(cli, ["eval", "sum(x)", "--data", "-"], input="x\n1\nabc\n")
    assert error_line(result).startswith("error: <stdin>:3:1: cannot read 'abc'")


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "-", "--data", "-"],
        ["diff", "-", "--data", "-", "--at", "a=1"],
        ["fit", "-", "--cost", "-"],
        ["fit", "-", "--model", "-", "--target", "y"],
    ],
)
def test_standard_input_read_by_two_inputs_is_refused(runner, args):
    result = runner.invoke(cli, args, input="x,y\n1,2\n")
    line = error_line(result)
    assert "cannot both read standard input" in line


# --- bounded reads, encodings -------------------------------------------------------


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("how", ["expr", "data", "at"])
def test_endless_devices_are_one_error_line(runner, device, how):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    args = {
        "expr": ["eval", f"@{device}"],
        "data": ["eval", "sum(1)", "--data", device],
        "at": ["eval", "a", "--at", f"@{device}"],
    }[how]
    line = error_line(runner.invoke(cli, args))
    # zeros are NUL bytes; random bytes meet a NUL or an invalid UTF-8 sequence first
    assert "binary data" in line if device == "/dev/zero" else ("binary data" in line or "not UTF-8" in line)


def test_large_expression_file_is_refused_with_the_limit(runner, tmp_path):
    path = tmp_path / "big.exprgrad"
    with open(path, "wb") as file:
        file.truncate(2 << 30)  # sparse: 2 GB that take no room
    line = error_line(runner.invoke(cli, ["eval", f"@{path}"]))
    assert line == f"error: expression file '{path}' is larger than 8 MiB, the most exprgrad reads"
    assert MAX_EXPR_BYTES == 8 << 20


def test_large_standard_input_is_refused(runner):
    result = runner.invoke(cli, ["eval", "-"], input="1+" * (MAX_EXPR_BYTES // 2) + "1")
    assert error_line(result) == "error: standard input is larger than 8 MiB, the most exprgrad reads"


@pytest.mark.parametrize("args", [["eval", "-", "--at", "a=1"], ["fit", "{linear}", "--cost", "-"]])
def test_invalid_utf8_on_standard_input_is_one_line(runner, samples, args):
    args = [a.replace("{linear}", str(samples / "linear.csv")) for a in args]
    result = runner.invoke(cli, args, input=b"a + \xff\xfe")
    assert (
        error_line(result) == "error: cannot read standard input: it is not UTF-8 text (byte 0xff on line 1)"
    )


def test_byte_order_mark_is_accepted_in_expression_file_and_stdin(runner, tmp_path):
    source = tmp_path / "f.exprgrad"
    source.write_bytes(b"\xef\xbb\xbfa*10")
    assert runner.invoke(cli, ["eval", f"@{source}", "--at", "a=2"]).stdout == "20\n"
    assert runner.invoke(cli, ["eval", "-", "--at", "a=2"], input=b"\xef\xbb\xbfa*10").stdout == "20\n"


def test_expression_file_errors_are_one_line(runner, tmp_path):
    assert error_line(runner.invoke(cli, ["eval", "@nowhere.txt"])) == (
        "error: cannot read expression file 'nowhere.txt': no such file"
    )
    assert "it is a directory" in error_line(runner.invoke(cli, ["eval", f"@{tmp_path}"]))
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"caf\xe9 + 1")
    assert "not UTF-8 text (byte 0xe9 on line 1)" in error_line(runner.invoke(cli, ["eval", f"@{latin}"]))


# --- CSV as users' files come --------------------------------------------------------


@pytest.fixture
def with_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x,y,name\n1,2,a\n2,4.1,b\n3,5.9,c\n")
    return str(path)


def test_fit_ignores_a_text_column_it_does_not_use(runner, with_text):
    result = runner.invoke(cli, ["fit", with_text, "--model", "a*x+b", "--target", "y", "--format", "json"])
    assert result.exit_code == 0, result.output
    params = json.loads(result.stdout)["params"]
    assert params["a"] == pytest.approx(1.95) and params["b"] == pytest.approx(0.1)


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "sum(name)", "--data", "{t}"],
        ["eval", "sum(a*name)", "--at", "a=1", "--data", "{t}"],
        ["diff", "sum(a*name)", "--at", "a=1", "--data", "{t}"],
        ["check", "sum(a*name)", "--at", "a=1", "--data", "{t}"],
        ["render", "sum(a*name)", "--format", "dot", "--at", "a=1", "--data", "{t}"],
        ["fit", "{t}", "--cost", "sum((a*x - name)^2)"],
        ["fit", "{t}", "--model", "a*name", "--target", "y"],
        ["fit", "{t}", "--model", "a*x", "--target", "name"],
    ],
)
def test_a_text_column_that_is_used_points_at_its_cell(runner, with_text, args):
    result = runner.invoke(cli, [a.replace("{t}", with_text) for a in args])
    assert error_line(result) == f"error: {with_text}:2:3: cannot read 'a' as a number in column 'name'"


@pytest.mark.parametrize("command", list(DATA_COMMANDS))
def test_every_command_reads_semicolons_tabs_and_decimal_commas(runner, tmp_path, command):
    semicolons = tmp_path / "s.csv"
    semicolons.write_text("x;y\n1,5;3\n2,5;5\n")
    tabs = tmp_path / "t.csv"
    tabs.write_text("x\ty\n1.5\t3\n2.5\t5\n")
    for path, extra in ((semicolons, ["--decimal", ","]), (tabs, []), (tabs, ["--sep", "tab"])):
        result = run(runner, [*DATA_COMMANDS[command], str(path), *extra])
        assert result.exit_code == 0, (path, extra, result.output)
        if command == "eval":
            assert result.stdout == "4\n"
    wrong = run(runner, [*DATA_COMMANDS[command], str(semicolons)])
    assert error_line(wrong).endswith("(it looks like a decimal comma: pass --decimal ,)")


def test_every_command_that_reads_data_has_sep_and_decimal():
    for name in COMMANDS:
        command = cli.get_command(None, name)
        options = {opt for param in command.params for opt in param.opts}
        reads_data = "--data" in options or any(p.name == "data" for p in command.params)
        if reads_data:
            assert {"--sep", "--decimal"} <= options, name


def test_sep_values(runner, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("x;y\n1;2\n")
    tabs = tmp_path / "t.csv"
    tabs.write_text("x\ty\n1\t2\n")
    for file, sep in ((path, ";"), (tabs, "\\t"), (tabs, "tab"), (tabs, "TAB"), (tabs, "\t")):
        result = runner.invoke(cli, ["eval", "sum(x + y)", "--data", str(file), "--sep", sep])
        assert result.exit_code == 0 and result.stdout == "3\n", (sep, result.output)
    # Forced wrong, the header is one name: no column holds numbers, so there is no row count either.
    wrong = runner.invoke(cli, ["eval", "sum(1)", "--data", str(path), "--sep", "tab"])
    assert error_line(wrong).endswith("cannot read '1;2' as a number in column 'x;y'")
    bad = runner.invoke(cli, ["eval", "sum(1)", "--data", str(path), "--sep", "|"])
    assert bad.exit_code == 2 and "'|' is not one of ',', ';', 'tab'" in bad.stderr
    both = runner.invoke(cli, ["eval", "sum(1)", "--data", str(path), "--sep", ",", "--decimal", ","])
    assert error_line(both).startswith("error: --sep , and --decimal , cannot go together")
    lonely = runner.invoke(cli, ["eval", "1", "--sep", ";"])
    assert lonely.exit_code == 0 and "--sep and --decimal are for a data file" in lonely.stderr


def test_control_characters_from_a_cell_are_escaped(runner, tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("x,y\n1,\x1b[2J\x07\n")
    line = error_line(runner.invoke(cli, ["eval", "sum(y)", "--data", str(path)]))
    assert "\x1b" not in line and "\x07" not in line
    assert line.endswith(r"cannot read '\x1b[2J\x07' as a number in column 'y'")


# --- --at -----------------------------------------------------------------------------


def test_at_fills_a_family(runner):
    expr = "w[0] + 10*w[1] + 100*w[2]"
    assert runner.invoke(cli, ["eval", expr, "--at", "w=1"]).stdout == "111\n"
    assert runner.invoke(cli, ["eval", expr, "--at", "w=1,w[1]=0"]).stdout == "101\n"
    assert runner.invoke(cli, ["eval", expr, "--at", "w[1]=0", "--at", "w=1"]).stdout == "101\n"


@pytest.mark.parametrize("command", ["diff", "check", "render"])
def test_at_family_in_every_command(runner, samples, command):
    args = [command, "mean((w[0] + w[1]*x - y)^2)", "--at", "w=0", "--data", str(samples / "linear.csv")]
    if command == "render":
        args += ["--format", "dot"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "no value given" not in result.output


def test_at_reads_a_fit_result(runner, samples, tmp_path):
    saved = tmp_path / "fit.json"
    linear = str(samples / "linear.csv")
    done = runner.invoke(cli, ["fit", linear, "--model", "a*x + b", "--target", "y", "-o", str(saved), "-q"])
    assert done.exit_code == 0, done.output
    params = json.loads(saved.read_text())["params"]
    at_fit = runner.invoke(cli, ["eval", "a + 10*b", "--at", f"@{saved}"])
    assert float(at_fit.stdout) == pytest.approx(params["a"] + 10 * params["b"])
    # A name=value overrides the file, before or after it.
    for order in ([f"@{saved}", "b=0"], ["b=0", f"@{saved}"]):
        result = runner.invoke(cli, ["eval", "a + 10*b", *[x for o in order for x in ("--at", o)]])
        assert float(result.stdout) == pytest.approx(params["a"])


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "--at @{p}: cannot read the file: no such file"),
        ("{", "--at @{p}: not JSON"),
        ('{"value": 1}', 'expected a fit result with a "params" object'),
        ('{"params": {"a": "1"}}', "params.a is not a number"),
        ('{"params": {"a": NaN}}', "params.a is not a finite number"),
        ('{"params": {"a": Infinity}}', "params.a is not a finite number"),
        ("[" * 100_000, "not JSON"),
    ],
)
def test_at_file_mistakes(runner, tmp_path, content, words):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    line = error_line(runner.invoke(cli, ["eval", "a", "--at", f"@{path}"]))
    assert words.replace("{p}", str(path)) in line


@pytest.mark.parametrize(
    ("at", "words"),
    [
        (["a=1,a=2"], "--at a: given twice (1 and 2); give each name once"),
        (["a=1", "a=1"], "--at a: given twice (1 and 1)"),
        (["a=nan"], "--at a: 'nan' is not a finite number"),
        (["a=inf"], "--at a: 'inf' is not a finite number"),
        (["a=-Infinity"], "is not a finite number"),
        (["a=1e999"], "is not a finite number"),
        (["a"], "expected name=value pairs"),
    ],
)
def test_at_mistakes(runner, at, words):
    args = ["eval", "a"]
    for spec in at:
        args += ["--at", spec]
    assert words in error_line(runner.invoke(cli, args))


@pytest.mark.parametrize("spec", ["a\x1b[31m", "a=\x1b[31m", "\x1b[31m=1,a=2,\x1b[31m=3", "a=1\x1b[31m"])
def test_at_item_with_control_characters_is_escaped(runner, spec):
    line = error_line(runner.invoke(cli, ["eval", "a", "--at", spec]))
    assert "\x1b" not in line and r"\x1b[31m" in line


def test_at_file_that_is_too_large(runner, tmp_path):
    path = tmp_path / "r.json"
    with open(path, "wb") as file:
        file.truncate(MAX_EXPR_BYTES + 1)
    line = error_line(runner.invoke(cli, ["eval", "a", "--at", f"@{path}"]))
    assert line == f"error: --at @{path}: the file is larger than 8 MiB, the most exprgrad reads"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX descriptors")
@pytest.mark.parametrize(
    ("args", "who"), [(["eval", "-"], "EXPR '-'"), (["eval", "sum(1)", "--data", "-"], "--data -")]
)
def test_closed_standard_input_is_one_error_line(args, who):
    done = subprocess.run(
        [sys.executable, "-m", "exprgrad", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        preexec_fn=lambda: os.close(0),
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: {who} reads standard input, but it is closed\n"


def test_standard_input_from_a_large_file_is_refused_before_reading(tmp_path):
    sparse = tmp_path / "sparse.csv"
    with open(sparse, "wb") as file:
        file.truncate(2 << 30)
    with open(sparse, "rb") as stdin:
        done = subprocess.run(
            [sys.executable, "-m", "exprgrad", "eval", "sum(1)", "--data", "-"],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert done.returncode == 2
    assert done.stderr == "error: data file '<stdin>' is larger than 1 GiB, the most exprgrad reads\n"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_expression_line_endings_from_file_and_stdin(runner, tmp_path, newline):
    text = newline.join(["h = a + 1", "h*2", ""])
    source = tmp_path / "f.exprgrad"
    source.write_bytes(text.encode())
    assert runner.invoke(cli, ["eval", f"@{source}", "--at", "a=1"]).stdout == "4\n"
    assert runner.invoke(cli, ["eval", "-", "--at", "a=1"], input=text.encode()).stdout == "4\n"


def pipe_path(payload: str) -> str:
    """A path that reads ``payload`` once, then nothing: the read end of a pipe, as <(...) gives."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, payload.encode())
    os.close(write_fd)
    return f"/dev/fd/{read_fd}"


needs_dev_fd = pytest.mark.skipif(not os.path.isdir("/dev/fd"), reason="needs /dev/fd")


@needs_dev_fd
@pytest.mark.parametrize("command", ["eval", "diff", "check", "render"])
def test_at_file_from_a_pipe_is_read_once(runner, command):
    """diff reads --at again for its heading: the file must not be opened twice."""
    path = pipe_path('{"params": {"a": 2}}')
    args = [command, "a^2", "--at", f"@{path}"] + (["--format", "dot"] if command == "render" else [])
    result = runner.invoke(cli, args)
    os.close(int(path.rsplit("/", 1)[1]))
    assert result.exit_code == 0, result.output
    if command == "eval":
        assert result.stdout == "4\n"


@needs_dev_fd
@pytest.mark.parametrize("command", ["eval", "diff", "check", "render"])
def test_expression_file_from_a_pipe_is_read_once(runner, command):
    path = pipe_path("a^2")
    args = [command, f"@{path}", "--at", "a=3"] + (["--format", "dot"] if command == "render" else [])
    result = runner.invoke(cli, args)
    os.close(int(path.rsplit("/", 1)[1]))
    assert result.exit_code == 0, result.output
    if command == "eval":
        assert result.stdout == "9\n"


def test_at_reads_every_named_constant_of_the_registry(runner, monkeypatch):
    from exprgrad import ops

    monkeypatch.setitem(ops.CONSTANTS, "tau", 6.25)  # a constant added to the registry is read by --at too
    for name, value in ops.CONSTANTS.items():
        for sign in ("", "-"):
            result = runner.invoke(cli, ["eval", "x", "--at", f"x={sign}{name}"])
            assert result.exit_code == 0, result.output
            assert float(result.output) == (-value if sign else value)
