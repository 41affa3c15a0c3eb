"""Where and how exprgrad writes: the one output writer, stdout, and the messages on stderr."""

from __future__ import annotations

import errno
import importlib.util
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import HAS_DOT

from exprgrad.cli import cli, output, streams
from exprgrad.cli.output import WriteError, write_atomically
from exprgrad.cli.streams import MESSAGE_WIDTH, visible_lines
from exprgrad.errors import OptionError

EXPR = "mean((a*x + b - y)^2)"
DOT = ["render", EXPR, "--format", "dot"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
ROOT = Path(__file__).resolve().parent.parent


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def run_exprgrad(args, cwd, env=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "exprgrad", *args],
        check=False,
        cwd=cwd,
        env=environment,
        stdout=stdout,
        stderr=subprocess.PIPE,
        timeout=60,
    )


@pytest.fixture
def line_csv(tmp_path) -> str:
    path = tmp_path / "line.csv"
    path.write_text("x,y\n0,1\n1,3.1\n2,4.9\n3,7.2\n")
    return str(path)


@pytest.fixture
def made_temporaries(monkeypatch) -> list[str]:
    """Every temporary file the writer makes (its full path)."""
    made = []
    real = output.tempfile.mkstemp

    def recording(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        made.append(name)
        return fd, name

    monkeypatch.setattr("exprgrad.cli.output.tempfile.mkstemp", recording)
    return made


# --- symlinks, FIFOs, devices, stdout ---------------------------------------------------------


def test_symlink_is_followed_and_stays_a_link(tmp_path, made_temporaries):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "picture.svg"
    target.write_text("old")
    link = tmp_path / "picture.svg"
    link.symlink_to("real/picture.svg")
    write_atomically(str(link), "new")
    assert link.is_symlink() and os.readlink(link) == "real/picture.svg"
    assert target.read_text() == "new"
    # The temporary file was made beside the target (a rename cannot cross file systems).
    assert [Path(name).parent for name in made_temporaries] == [target.parent]
    assert names(tmp_path) == ["picture.svg", "real"] and names(target.parent) == ["picture.svg"]


def test_dangling_symlink_creates_its_target(tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to("made.json")
    write_atomically(str(link), "{}")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "{}"
    broken = tmp_path / "broken.json"
    broken.symlink_to("nowhere/x.json")
    with pytest.raises(OptionError, match="nowhere"):
        write_atomically(str(broken), "{}")


@pytest.mark.parametrize("command", ["render", "fit -o", "fit --plot"])
def test_every_command_writes_through_a_symlink(runner, tmp_path, line_csv, command):
    if command == "fit --plot" and not HAS_MATPLOTLIB:
        pytest.skip("matplotlib is not installed")
    suffix = {"render": ".dot", "fit -o": ".json", "fit --plot": ".svg"}[command]
    target = tmp_path / "kept" / f"result{suffix}"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(target)
    fit = ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-q"]
    args = {
        "render": ["render", EXPR, "-o", str(link)],
        "fit -o": [*fit, "-o", str(link)],
        "fit --plot": [*fit, "--plot", str(link)],
    }[command]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and target.read_text() != "old"
    assert names(target.parent) == [target.name]


def test_symlink_to_this_process_stdout(tmp_path):
    # ln -s /proc/self/fd/1 out.svg; exprgrad render "x^2" -o out.svg | wc -c
    if not Path("/proc/self/fd/1").exists():
        pytest.skip("no /proc/self/fd")
    (tmp_path / "out.dot").symlink_to("/proc/self/fd/1")
    done = run_exprgrad(["render", "x^2", "-o", "out.dot"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"digraph") and (tmp_path / "out.dot").is_symlink()


def test_dev_stdout_is_written_as_the_stream_it_is(tmp_path):
    # `>>` opens stdout for appending: writing to /dev/stdout must append, not replace the file.
    if not Path("/dev/stdout").exists():
        pytest.skip("no /dev/stdout")
    log = tmp_path / "log.txt"
    log.write_bytes(b"first line\n")
    with open(log, "ab") as appended:
        done = run_exprgrad(
            ["render", "x^2", "--format", "dot", "-o", "/dev/stdout"], cwd=tmp_path, stdout=appended
        )
    assert done.returncode == 0, done.stderr
    text = log.read_bytes()
    assert text.startswith(b"first line\ndigraph") and names(tmp_path) == ["log.txt"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_is_written_directly(tmp_path):
    fifo = tmp_path / "pipe.svg"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_atomically(str(fifo), b"<svg/>")
    reader.join(10)
    assert received == [b"<svg/>"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and names(tmp_path) == ["pipe.svg"]


def character_device(tmp_path: Path, name: str, minor: int) -> Path:
    """A copy of /dev/null (minor 3) or /dev/full (minor 7) in tmp_path (needs root),
    so that a writer that wrongly replaced it would replace this node, not the system's."""
    node = tmp_path / name
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        with open(node, "wb") as handle:
            handle.write(b"")
    except (OSError, AttributeError):
        pytest.skip("cannot make a device node here")
    return node


def devices(tmp_path: Path) -> tuple[Path, Path]:
    if IS_ROOT:
        return character_device(tmp_path, "null", 3), character_device(tmp_path, "full", 7)
    # Not root: the real devices, which nobody but root could replace anyway.
    if not (Path("/dev/null").exists() and Path("/dev/full").exists()):
        pytest.skip("no /dev/full")
    return Path("/dev/null"), Path("/dev/full")


def test_character_devices_are_written_directly(runner, tmp_path):
    null, full = devices(tmp_path)
    result = runner.invoke(cli, ["render", EXPR, "-o", str(null)])
    assert result.exit_code == 0, result.output
    assert stat.S_ISCHR(os.stat(null).st_mode)
    # A full disk: exit 1, one error line, and the device is still a device.
    result = runner.invoke(cli, ["render", EXPR, "-o", str(full)])
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write '{full}': No space left on device\n"
    assert stat.S_ISCHR(os.stat(full).st_mode)
    if IS_ROOT:
        assert names(tmp_path) == ["full", "null"]


def test_full_stdout_is_one_error_line(tmp_path):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    for args in (["render", "x^2", "--format", "dot"], ["eval", "x", "--at", "x=1"]):
        with open("/dev/full", "wb") as full:
            done = run_exprgrad(args, cwd=tmp_path, stdout=full)
        assert done.returncode == 1, args
        assert done.stderr == b"error: cannot write to standard output: No space left on device\n"


@pytest.mark.skipif(os.name != "posix", reason="POSIX pipes")
def test_stdout_cut_mid_write_is_not_success(tmp_path):
    # The kernel takes part of a large write when the reader goes away (or the disk
    # fills up) in the middle of it; Python's stdout would report the part as done.
    big = " + ".join(f"sin(a{i}*x)" for i in range(2000))  # about 100 kB of derivatives
    for args in (["diff", big], ["render", big, "--format", "dot", "--max-nodes", "100000"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "exprgrad", *args],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert os.read(process.stdout.fileno(), 10)
        process.stdout.close()  # as `| head -c 10` does, while exprgrad is still writing
        _, errors = process.communicate(timeout=60)
        assert process.returncode == 1, args  # a closed pipe: exit 1, quietly
        assert errors == b"", args


@pytest.mark.skipif(os.name != "posix", reason="POSIX shell")
def test_closed_stdout_is_one_error_line(tmp_path):
    for args in (["eval", "x", "--at", "x=1"], ["render", "x^2", "--format", "dot"]):
        done = subprocess.run(
            ["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m", "exprgrad", *args],
            check=False,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 1, args
        assert done.stderr.startswith(b"error: cannot write to standard output: Bad file descriptor"), args
        assert done.stderr.count(b"\n") == 1, args


def test_dash_is_stdout_and_never_a_file(runner, tmp_path, line_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, ["render", EXPR, "--format", "dot", "-o", "-"])
    assert result.exit_code == 0 and result.stdout.startswith("digraph")
    svg_to_stdout = runner.invoke(cli, ["render", EXPR, "-o", "-", "--format", "png"])
    if HAS_DOT:
        assert svg_to_stdout.exit_code == 0 and svg_to_stdout.stdout_bytes.startswith(b"\x89PNG")
    with monkeypatch.context() as without_dot:
        without_dot.setenv("PATH", str(tmp_path / "empty"))
        missing = runner.invoke(cli, ["render", EXPR, "-o", "-", "--format", "png"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error: ") and missing.stdout_bytes == b""
    fit = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-q", "-o", "-"])
    assert fit.exit_code == 0 and '"params"' in fit.stdout
    assert not Path("-").exists()


def test_folder_names_are_refused(runner, tmp_path, line_csv):
    for name in ("", "new.json/", str(tmp_path) + "/"):
        with pytest.raises(OptionError, match="give a file name"):
            write_atomically(name, "{}")
    slashed = str(tmp_path / "r.json") + "/"
    fit = runner.invoke(cli, ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-o", slashed])
    assert (
        fit.exit_code == 2
        and fit.stderr == f"error: cannot write '{slashed}': give a file name, not a folder\n"
    )
    assert names(tmp_path) == ["line.csv"]


def test_short_write_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr("exprgrad.cli.output.os.write", lambda fd, data: 0)
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(WriteError, match="short write"):
        write_atomically(str(target), "new content")
    assert target.read_text() == "old" and names(tmp_path) == ["r.json"]


# --- existing files ---------------------------------------------------------------------------


def test_permission_bits_are_kept(tmp_path):
    private = tmp_path / "private.json"
    private.write_text("old")
    private.chmod(0o600)
    write_atomically(str(private), "new")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() == "new"
    shared = tmp_path / "shared.json"
    shared.write_text("old")
    shared.chmod(0o664)
    write_atomically(str(shared), "new")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o664


def test_new_file_gets_the_mode_open_would_give(tmp_path):
    umask = os.umask(0o027)
    try:
        write_atomically(str(tmp_path / "new.json"), "{}")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.json").stat().st_mode) == 0o640


def test_hard_link_keeps_pointing_at_the_new_content(tmp_path):
    first = tmp_path / "first.json"
    first.write_text("a much longer old content than the new one")
    second = tmp_path / "second.json"
    os.link(first, second)
    write_atomically(str(first), "new")
    assert first.read_text() == second.read_text() == "new"
    assert first.stat().st_ino == second.stat().st_ino and first.stat().st_nlink == 2
    write_atomically(str(second), "grown " * 1000)
    assert first.read_text() == "grown " * 1000 and names(tmp_path) == ["first.json", "second.json"]


def test_hard_link_on_a_full_disk_keeps_the_old_content(tmp_path, monkeypatch):
    first = tmp_path / "first.json"
    first.write_text("old")
    os.link(first, tmp_path / "second.json")

    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("exprgrad.cli.output.os.posix_fallocate", no_space, raising=False)
    with pytest.raises(WriteError, match="No space left"):
        write_atomically(str(first), "new and longer")
    assert first.read_text() == "old"


def test_read_only_file_is_refused(runner, tmp_path, line_csv):
    kept = tmp_path / "kept.json"
    kept.write_text("the user's")
    kept.chmod(0o444)
    with pytest.raises(WriteError, match="read-only"):
        write_atomically(str(kept), "new")
    for args in (
        ["render", EXPR, "-o", str(kept), "--format", "dot"],
        ["fit", line_csv, "--model", "a*x + b", "--target", "y", "-q", "-o", str(kept)],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1 and result.stdout == ""  # refused before fitting
        assert (
            result.stderr
            == f"error: cannot write '{kept}': the file is read-only (make it writable, or choose another name)\n"
        )
    assert kept.read_text() == "the user's" and names(tmp_path) == ["kept.json", "line.csv"]


def test_long_file_name_and_short_temporary_name(runner, tmp_path, made_temporaries):
    name = "n" * 246 + ".dot"  # 250 characters: valid almost everywhere (the limit is 255)
    result = runner.invoke(cli, ["render", EXPR, "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    assert names(tmp_path) == [name]
    assert all(len(Path(t).name) <= 32 for t in made_temporaries) and made_temporaries


def test_unwritable_folder_is_one_error_line(runner, tmp_path):
    if IS_ROOT:
        pytest.skip("root may write anywhere (simulated in test_render)")
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        result = runner.invoke(cli, ["render", EXPR, "-o", str(folder / "g.dot")])
    finally:
        folder.chmod(0o755)
    assert result.exit_code == 1
    assert result.stderr == f"error: cannot write '{folder / 'g.dot'}': Permission denied\n"


def test_existing_file_in_a_folder_that_refuses_new_files(tmp_path, monkeypatch):
    # The folder takes no temporary file (simulated: root may write anywhere), but the
    # file itself is writable: it is rewritten in place, as `>` would do.
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("exprgrad.cli.output.tempfile.mkstemp", refuse)
    existing = tmp_path / "r.json"
    existing.write_text("a longer old content")
    write_atomically(str(existing), "new")
    assert existing.read_text() == "new"
    with pytest.raises(WriteError, match="Permission denied"):
        write_atomically(str(tmp_path / "new.json"), "new")
    assert names(tmp_path) == ["r.json"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text("old")

    def failing_fsync(fd):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr("exprgrad.cli.output.os.fsync", failing_fsync)
    with pytest.raises(WriteError, match="Input/output error"):
        write_atomically(str(target), "new")
    assert target.read_text() == "old" and names(tmp_path) == ["r.json"]


# --- signals during the write ----------------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="no signals")
def test_ctrl_c_during_the_write_finishes_it_then_interrupts(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def interrupted_fsync(fd):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of the write
        real_fsync(fd)

    monkeypatch.setattr("exprgrad.cli.output.os.fsync", interrupted_fsync)
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(target), "new")
    assert target.read_text() == "new" and names(tmp_path) == ["r.json"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interruption_inside_the_write_removes_the_temporary(tmp_path, monkeypatch):
    def raising_fsync(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr("exprgrad.cli.output.os.fsync", raising_fsync)
    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(tmp_path / "r.json"), "new")
    assert names(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_sigterm_during_the_write_leaves_no_temporary(tmp_path):
    script = (
        "import os, signal\n"
        "from exprgrad.cli import output\n"
        "real = os.fsync\n"
        "def fsync(fd):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    real(fd)\n"
        "output.os.fsync = fsync\n"
        "output.write_atomically('r.json', 'new')\n"
        "print('not reached')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == -signal.SIGTERM and b"not reached" not in done.stdout
    assert names(tmp_path) == ["r.json"] and (tmp_path / "r.json").read_text() == "new"


# --- messages on stderr ----------------------------------------------------------------------


def test_control_characters_are_escaped_visibly():
    assert visible_lines("error: bad cell '\x1b[31mred\r'") == ["error: bad cell '\\x1b[31mred\\r'"]
    assert visible_lines("tab\there, bidi \u202e, nul \x00") == ["tab\\there, bidi \\u202e, nul \\x00"]
    assert visible_lines("accents stay: θ, é, ∂") == ["accents stay: θ, é, ∂"]


def test_caret_follows_the_escapes():
    message = "error: line 1, column 3: unexpected character\n  a+\x1b+b\n    ^"
    assert visible_lines(message) == [
        "error: line 1, column 3: unexpected character",
        "  a+\\x1b+b",
        "    ^^^^",
    ]
    past_the_end = "error: missing ')'\n  f(a\n     ^"
    assert visible_lines(past_the_end) == past_the_end.split("\n")


def _caret_target(lines: list[str], columns) -> str:
    """What the caret line points at: the text of the shown line from the caret's column on."""
    shown, caret = lines
    column = caret.index("^")
    taken, position = 0, 0
    while taken < column and position < len(shown):
        taken += columns(shown[position])
        position += 1
    return shown[position:]


@pytest.mark.parametrize("encoding", ["ascii", "latin-1", "cp1252", "utf-8"])
@pytest.mark.parametrize(
    "source,column",
    [
        ("θ+", 2),
        ("é+θ+", 4),
        ("θθθ+)", 4),
        ("a+\x1b+θ", 4),
        ("∂+😀+)", 4),
        ("中文+)", 3),
        ("é+)", 2),
        ("…+a+θ+)", 6),
    ],
)
def test_caret_follows_the_encoding_escapes(encoding, source, column):
    lines = visible_lines(f"error: bad\n  {source}\n  {' ' * column}^", encoding)
    shown, caret = lines[1:]
    shown.encode(encoding)  # every character the stream cannot represent is escaped
    expected = streams._escaped(source[column:], encoding)
    assert _caret_target([shown, caret], streams._columns) == expected
    assert caret.strip() == "^" * max(
        1, streams._columns(streams._escaped(source[column : column + 1], encoding))
    )


def test_show_message_aligns_the_caret_on_a_narrow_stderr(monkeypatch):
    import io

    for encoding, shown in (("latin-1", "  \\u03b8+"), ("ascii", "  \\xe9+\\u03b8+")):
        source = "θ+" if encoding == "latin-1" else "é+θ+"
        buffer = io.BytesIO()
        monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(buffer, encoding=encoding))
        streams.show_message("error", f"line 1: the input ended\n  {source}\n  {' ' * len(source)}^")
        sys.stderr.flush()
        lines = buffer.getvalue().decode(encoding).splitlines()
        assert lines[1] == shown and lines[2] == " " * len(shown) + "^"
    # A window of a long line starts with an ellipsis: three dots where it cannot be written.
    buffer = io.BytesIO()
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(buffer, encoding="ascii"))
    streams.show_message("error", "line 1: bad\n  …+θ+)\n      ^")
    sys.stderr.flush()
    assert buffer.getvalue().decode("ascii").splitlines()[1:] == ["  ...+\\u03b8+)", " " * 13 + "^"]


def test_cli_caret_sits_at_the_end_of_the_input_on_a_latin1_stderr(tmp_path):
    done = run_exprgrad(["eval", "θ+", "--at", "θ=1"], tmp_path, env={"PYTHONIOENCODING": "latin-1"})
    assert done.returncode == 2
    lines = done.stderr.decode("latin-1").splitlines()
    assert lines[1] == "  \\u03b8+" and lines[2] == " " * len(lines[1]) + "^"


def test_overlong_lines_and_messages_are_cut():
    line = visible_lines("error: " + "z" * 1_000_000)
    assert len(line) == 1 and len(line[0]) < MESSAGE_WIDTH + 50
    assert line[0].endswith("\N{HORIZONTAL ELLIPSIS} (1,000,007 characters in all)")
    many = visible_lines("\n".join(["error: first"] + ["more"] * 1000))
    assert len(many) == streams.MESSAGE_LINES + 1 and many[-1].endswith("more lines)")
    source = "a+" * 10_000 + "?"
    shown, caret = visible_lines(f"  {source}\n  {' ' * (len(source) - 1)}^")
    assert shown[caret.index("^")] == "?" and len(shown) < MESSAGE_WIDTH + 10


def test_cli_error_lines_are_safe_to_show(runner, tmp_path):
    expression = tmp_path / "name.txt"
    expression.write_text("q" * 1_000_000 + " + \x1b]0;title\x07")
    result = runner.invoke(cli, ["eval", f"@{expression}"])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert len(result.stderr) < 3 * MESSAGE_WIDTH and result.stderr.startswith("error: ")
    cell = tmp_path / "cell.csv"
    cell.write_text("x,y\n1,\x1b[31mred\n")
    result = runner.invoke(cli, ["eval", "sum(y)", "--data", str(cell)])
    assert result.exit_code == 2 and "\x1b" not in result.stderr and "\\x1b" in result.stderr


def test_warnings_are_safe_to_show(runner, capsys):
    output.warn("odd \x1b[2J name")
    assert capsys.readouterr().err == "warning: odd \\x1b[2J name\n"


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_traceback_whatever_stdout_encoding(tmp_path, line_csv):
    env = {"PYTHONIOENCODING": "latin-1"}
    refused = [
        ["diff", "sin(θ)^2"],
        ["eval", "sin(θ)^2", "--at", "θ=1", "--grad"],
        ["check", "sin(θ)^2", "--at", "θ=1"],
        ["fit", line_csv, "--model", "θ*x + b", "--target", "y", "-q"],
    ]
    for args in refused:
        done = run_exprgrad(args, cwd=tmp_path, env=env)
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith(b"error: the output contains U+03B8 GREEK SMALL LETTER THETA"), args
        assert b"PYTHONIOENCODING=utf-8" in done.stderr and done.stderr.count(b"\n") == 1, args
    # What can be shown is shown: JSON in its ASCII form, ASCII labels for the derivative,
    # bytes for a drawing, the help with escapes.
    for args in (
        ["eval", "sin(θ)^2", "--at", "θ=1", "--grad", "--format", "json"],
        ["diff", "sin(θ)^2", "--format", "json"],
        ["fit", line_csv, "--model", "θ*x + b", "--target", "y", "-q", "--format", "json"],
    ):
        done = run_exprgrad(args, cwd=tmp_path, env=env)
        assert done.returncode == 0 and not done.stderr, args
        assert b"\\u03b8" in done.stdout and "θ" in json.dumps(json.loads(done.stdout), ensure_ascii=False)
    done = run_exprgrad(["diff", "sin(x)^2"], cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stdout == b"d/dx = 2*cos(x)*sin(x)\n"
    done = run_exprgrad(["render", "sin(θ)", "--format", "dot"], cwd=tmp_path, env=env)
    assert done.returncode == 0 and "θ".encode() in done.stdout
    done = run_exprgrad(["diff", "--help"], cwd=tmp_path, env=env)
    assert done.returncode == 0 and done.stdout.startswith(b"Usage:") and not done.stderr


def test_messages_never_fail_on_a_strict_stderr(tmp_path):
    done = run_exprgrad(
        ["eval", "θ + 1", "--at", "θ=1,zz=1", "--data", "nowhere_θ.csv"],
        cwd=tmp_path,
        env={"PYTHONIOENCODING": "ascii:strict"},
    )
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert done.stderr.startswith(b"error: ") and b"\\u03b8" in done.stderr


# --- plots of many rows ----------------------------------------------------------------------


def test_shown_rows_are_all_or_an_even_subset():
    from exprgrad.fitting.plot import shown_rows

    assert np.array_equal(shown_rows(5, limit=10), np.arange(5))
    subset = shown_rows(1_000_000, limit=1000)
    assert len(subset) == 1000 and subset[0] == 0 and subset[-1] == 999_999
    assert np.array_equal(subset, shown_rows(1_000_000, limit=1000))  # the same every run


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_plot_of_many_rows_stays_small_and_says_so(runner, tmp_path, monkeypatch):
    monkeypatch.setattr("exprgrad.fitting.plot.MAX_POINTS", 500)
    monkeypatch.setattr("exprgrad.fitting.plot.RASTERIZE_ABOVE", 100)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, 4000)
    data = tmp_path / "many.csv"
    np.savetxt(
        data,
        np.c_[x, 2 * x + 1 + rng.normal(0, 1, x.size)],
        delimiter=",",
        header="x,y",
        comments="",
        fmt="%.6g",
    )
    picture = tmp_path / "fit.svg"
    result = runner.invoke(
        cli, ["fit", str(data), "--model", "a*x + b", "--target", "y", "-q", "--plot", str(picture)]
    )
    assert result.exit_code == 0, result.output
    svg = picture.read_text()
    assert "500 of 4,000 rows shown" in svg
    assert "<image" in svg  # the scatter is pixels, not 4,000 (or 500) vector markers
    assert len(svg) < 150_000


def _written_before(value: float) -> str:
    """format_number as the command line has always written values (the reference for the fold)."""
    value = float(value)
    if np.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def test_format_number_writes_every_kind_of_float_as_before_and_reads_back():
    rng = np.random.default_rng(7)
    special = [
        0.0,
        -0.0,
        1.0,
        -2.0,
        0.5,
        1e15,
        1e16,
        -1e16,
        1e20,
        1e-7,
        1.5e300,
        5e-324,
        2.0**53,
        float("nan"),
        float("inf"),
        float("-inf"),
        np.pi,
        123456789.123,
    ]
    values = special + list(rng.standard_normal(200) * 10.0 ** rng.integers(-30, 30, 200))
    for value in values:
        text = output.format_number(value)
        assert text == _written_before(value), value
        assert float(text) == value or (np.isnan(value) and text == "nan"), value
