"""What every command writes: whole-or-nothing files, numbers, labels, warnings.

In: results computed by the library. Out: text and files. No math here.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import re
import signal
import stat
import sys
import tempfile
import threading
import unicodedata
from pathlib import Path

import click

from ..errors import ExprgradError, OptionError


def reason(exc: BaseException) -> str:
    """The operating system's words for a failed read or write."""
    return getattr(exc, "strerror", None) or str(exc)


# The path names one of this process's open files: write to that descriptor
# (a pipe, a terminal, a file opened for appending by the shell) as it is.
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/(self|\d+)/fd|dev/fd)/(\d+)")
_STANDARD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
# Signals that would end the process in the middle of a write; held back until
# the file is whole, so no temporary file is ever left behind.
_DEFERRED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def is_stream(path: str) -> bool:
    """Whether ``path`` is written as a stream (no file to replace): ``-``,
    one of this process's descriptors, a FIFO or a device."""
    if path == "-" or _descriptor(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output_folder(path: str | None) -> None:
    """Refuse, before any work is done, an output path that cannot be written:
    a folder that does not exist (OptionError, exit 2), a folder or a read-only
    file at the path (WriteError, exit 1). Symlinks are followed."""
    if path is None or path == "-" or _descriptor(path) is not None:
        return
    if not path or path.endswith(("/", os.sep)):
        # open() would refuse it; a rename would quietly drop the slash.
        raise OptionError(f"cannot write '{path}': give a file name, not a folder")
    info = _stat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise WriteError(f"cannot write '{path}': it is a folder")
        return  # a FIFO or a device: written directly
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        folder = target.parent if os.path.islink(path) else Path(path).parent
        raise OptionError(f"cannot write '{path}': folder '{folder}' does not exist")
    if info is not None:
        _refuse_read_only(path, target, info)


def write_atomically(path: str, content: str | bytes) -> None:
    """Write ``content`` (str as UTF-8) where the user means ``path``, whole or not at all.

    - ``-``, ``/dev/stdout``, ``/proc/self/fd/N``: that stream, as it is.
    - A FIFO or a device (``/dev/null``, ``/dev/full``, a terminal): written
      directly; there is no file to replace.
    - A symlink is followed: the file it points to gets the content (the
      temporary file is made in that file's folder), and the link stays a link.
    - An existing file keeps its permission bits (and owner, when allowed); a
      read-only one is refused. One with several hard links is rewritten in
      place, so that every name shows the new content (see ``_rewrite_in_place``).
    - Otherwise the content goes to a temporary file with a short name in the
      same folder (a 250-character name still fits), which is renamed over the
      target.

    Raises:
        OptionError: the folder does not exist (exit 2).
        WriteError: anything else that stops the write: permissions, a full
            disk, a short write (exit 1). Nothing is left half-written.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path == "-":
        _write_stdout(data)
        return
    descriptor = _descriptor(path)
    if descriptor is not None:
        _write_descriptor(path, descriptor, data)
        return
    check_output_folder(path)
    info = _stat(path)
    try:
        if info is not None and not stat.S_ISREG(info.st_mode):
            _write_device(path, data)
        elif info is not None and info.st_nlink > 1:
            _rewrite_in_place(os.path.realpath(path), data)
        else:
            _replace(os.path.realpath(path), data, info)
    except BrokenPipeError:
        raise  # the reader went away: the group exits quietly, as `head` expects
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _stat(path: str) -> os.stat_result | None:
    """The file at ``path`` after following symlinks; None when there is none."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _descriptor(path: str) -> int | None:
    """The descriptor of this process that ``path`` names (through symlinks), or None."""
    current = path
    for _ in range(40):  # the kernel's own limit on a chain of symlinks
        current = os.path.normpath(os.path.join(os.getcwd(), current))
        if current in _STANDARD_PATHS:
            return _STANDARD_PATHS[current]
        match = _DESCRIPTOR_PATH.fullmatch(current)
        if match is not None:
            process, number = match.groups()
            if process in (None, "self") or int(process) == os.getpid():
                return int(number)
            return None
        try:
            link = os.readlink(current)
        except OSError:
            return None  # not a symlink (or missing): an ordinary path
        current = os.path.join(os.path.dirname(current), link)
    return None


def _refuse_read_only(path: str, target: Path, info: os.stat_result) -> None:
    # Nobody may write it (0444): the owner meant it to stay as it is, even when
    # root could replace it. Writable by others but not by this user: the same
    # refusal the system would give to open(), not a silent replacement.
    if not info.st_mode & 0o222:
        raise WriteError(
            f"cannot write '{path}': the file is read-only (make it writable, or choose another name)"
        )
    if not os.access(target, os.W_OK):
        raise WriteError(f"cannot write '{path}': Permission denied (the file is not yours to write)")


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out; a write that makes no progress is a short write."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
        view = view[written:]


def _write_stdout(data: bytes) -> None:
    try:
        sys.stdout.flush()  # text already echoed comes first
        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:  # a text-only stream (an embedding application's)
            sys.stdout.write(data.decode("utf-8", "backslashreplace"))
        else:
            # A pipe whose reader has gone can take part of the data and report
            # success: what write() says it wrote is checked, as _write_all does.
            view = memoryview(data)
            while view:
                written = stream.write(view)
                if not written:
                    raise OSError(errno.EIO, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
                view = view[written:]
            stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()  # what is still buffered would fail again at exit
        raise WriteError(f"cannot write to standard output: {reason(exc)}") from None


def _write_descriptor(path: str, fd: int, data: bytes) -> None:
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        _write_all(fd, data)
    except BrokenPipeError:
        raise
    except OSError as exc:
        if fd == 1:
            silence_stdout()
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _write_device(path: str, data: bytes) -> None:
    # No O_CREAT (it exists) and no temporary file: a device or a FIFO cannot be
    # replaced, only written to. Opening a FIFO waits for its reader, as `cat > fifo` does.
    fd = os.open(path, os.O_WRONLY)
    try:
        _write_all(fd, data)
    finally:
        os.close(fd)


def _replace(target: str, data: bytes, info: os.stat_result | None) -> None:
    """Temporary file in the target's folder, then rename over the target."""
    folder = os.path.dirname(target) or "."
    with _signals_deferred():
        temporary = None
        try:
            # Inside the try: an unwritable folder fails here, at the temporary file.
            fd, temporary = tempfile.mkstemp(prefix=".exprgrad-", suffix=".tmp", dir=folder)
            try:
                _write_all(fd, data)
                if info is None:
                    # mkstemp makes the file private (0600); give it the mode a plain open() would.
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(temporary, 0o666 & ~umask)
                else:
                    os.chmod(temporary, stat.S_IMODE(info.st_mode))
                    _keep_owner(fd, info)
                os.fsync(fd)  # a full disk shows here, before the old file is replaced
            finally:
                os.close(fd)
            os.replace(temporary, target)
        except BaseException:
            if temporary is not None and os.path.lexists(temporary):
                os.unlink(temporary)
            raise


def _keep_owner(fd: int, info: os.stat_result) -> None:
    if not hasattr(os, "fchown") or (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except OSError:
        pass  # only root may give a file away; the content still goes where it was asked


def _rewrite_in_place(target: str, data: bytes) -> None:
    """A file with several hard links: a rename would detach this name from the
    others, so the content (already whole in memory) is written into the file
    itself. Space is reserved first, so a full disk fails before the old
    content is touched; signals wait until the write is done."""
    with _signals_deferred():
        fd = os.open(target, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            if len(data) > size and hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(fd, size, len(data) - size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
            os.lseek(fd, 0, os.SEEK_SET)
            _write_all(fd, data)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for number in _DEFERRED_SIGNALS:
        try:
            previous[number] = signal.signal(number, lambda number, frame: received.append(number))
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


class WriteError(ExprgradError):
    """The output could not be written (exit 1: not the user's input)."""

    exit_code = 1


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float (integers without '.0')."""
    value = float(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


# A message line longer than this is cut (a 1M-character cell or line stays readable),
# and so are the lines after the first MESSAGE_LINES.
MESSAGE_WIDTH = 1000
MESSAGE_LINES = 30
_CARET_LINE = re.compile(r"( *)(\^+)")


def warn(message: str) -> None:
    """One `warning: ...` line on stderr, made safe to show (see ``show_message``)."""
    show_message("warning", message)


def show_message(prefix: str, message: str) -> None:
    """``prefix: message`` on stderr, whatever the message holds: control and other
    invisible characters are escaped visibly (``\\x1b``), an overlong line is cut
    with an ellipsis, and what stderr's encoding cannot represent is written as
    a backslash escape, so writing a message never fails."""
    text = "\n".join(visible_lines(f"{prefix}: {message}"))
    encoding = getattr(sys.stderr, "encoding", None) or "ascii"
    try:
        "\N{HORIZONTAL ELLIPSIS}".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.replace("\N{HORIZONTAL ELLIPSIS}", "...")
    try:
        text = text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        text = text.encode("ascii", "backslashreplace").decode("ascii")
    click.echo(text, err=True)


def visible_lines(message: str) -> list[str]:
    """The lines of a message as they may be shown on a terminal.

    Newlines separate lines; every other character that does not print
    (``\\r``, ``\\x1b``, ``\\t``, U+202E) becomes its Python escape. A caret line
    (spaces and ``^``) under a line is moved with the escapes so that it still
    points at the same characters; a line longer than MESSAGE_WIDTH is cut
    around its caret.
    """
    raw = message.split("\n")
    lines: list[str] = []
    index = 0
    while index < len(raw) and len(lines) < MESSAGE_LINES:
        line = raw[index]
        caret = _CARET_LINE.fullmatch(raw[index + 1]) if index + 1 < len(raw) else None
        if caret is not None and len(raw[index + 1]) <= len(line) + 1:
            lines.extend(_with_caret(line, len(caret.group(1)), len(caret.group(2))))
            index += 2
        else:
            lines.append(_cut(_escaped(line[: MESSAGE_WIDTH + 1]), len(line)))
            index += 1
    if index < len(raw):
        lines.append(f"\N{HORIZONTAL ELLIPSIS} ({len(raw) - index:,} more lines)")
    return lines


def _escaped(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _cut(shown: str, length: int) -> str:
    """``shown`` (an escaped prefix of a ``length``-character line) cut to MESSAGE_WIDTH."""
    if len(shown) <= MESSAGE_WIDTH and length <= MESSAGE_WIDTH:
        return shown
    return shown[:MESSAGE_WIDTH] + f"\N{HORIZONTAL ELLIPSIS} ({length:,} characters in all)"


def _with_caret(line: str, start: int, width: int) -> list[str]:
    """A source line and the caret under line[start:start + width], escaped and cut."""
    begin = 0
    if len(line) > MESSAGE_WIDTH:
        begin = max(0, min(start - MESSAGE_WIDTH // 2, len(line) - MESSAGE_WIDTH))
    end = begin + MESSAGE_WIDTH
    stop = min(start + width, end)
    before = ("  \N{HORIZONTAL ELLIPSIS}" if begin > 0 else "") + _escaped(line[begin:start])
    marked = _escaped(line[start:stop])  # empty when the caret is just past the end
    after = _escaped(line[stop:end]) + ("\N{HORIZONTAL ELLIPSIS}" if end < len(line) else "")
    return [before + marked + after, " " * len(before) + "^" * max(1, len(marked))]


def show_unencodable(exc: UnicodeEncodeError) -> int:
    """What to do when standard output cannot represent a character: the help
    is shown anyway (with escapes); a result is refused, with one error line
    naming the character and the fix (exit 1), rather than printed wrong."""
    text = exc.object if isinstance(exc.object, str) else ""
    if text.startswith("Usage:"):
        encoding = exc.encoding or "ascii"
        click.echo(text.encode(encoding, "backslashreplace").decode(encoding), nl=False)
        return 0
    character = text[exc.start : exc.end][:1] or "?"
    # Named, not shown: the terminal could not show it either.
    name = unicodedata.name(character, "")
    show_message(
        "error",
        f"the output contains U+{ord(character):04X}{' ' + name if name else ''}, which standard "
        f"output's encoding ({exc.encoding}) cannot represent: set PYTHONIOENCODING=utf-8 "
        "(or use a UTF-8 locale, such as LC_ALL=C.UTF-8)",
    )
    return 1


class _WholeWrites(io.RawIOBase):
    """A file descriptor whose every write is whole, or an OSError.

    Python's own stdout can lose data without a word: when the kernel takes
    only part of a write (a full disk, a reader that went away mid-write), the
    buffered writer reports the part as done and the text layer ignores the
    count, so `exprgrad diff ... > file` on a full disk would exit 0 with a
    truncated file.
    """

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        _write_all(self._fd, view)
        return len(view)

    def close(self) -> None:
        # The descriptor stays open: it is the process's stdout, not this object's.
        super().close()


def guard_stdout() -> None:
    """Make sys.stdout report every short write as an OSError (see ``_WholeWrites``).

    Only a real file descriptor is wrapped (a test runner's buffer is left
    as it is); encoding, errors and line buffering stay what they were.
    """
    stream = sys.stdout
    if not isinstance(stream, io.TextIOWrapper) or isinstance(
        getattr(stream.buffer, "raw", None), _WholeWrites
    ):
        return
    try:
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    stream.flush()
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_WholeWrites(fd)),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


def silence_stdout() -> None:
    """After stdout failed (a closed pipe, a full disk), point it at /dev/null,
    so that Python's flush at exit does not print a second, raw error."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file descriptor (a test runner's buffer): nothing to flush at exit


def unicode_ok(ascii_flag: bool) -> bool:
    """Whether stdout can show ∂ (and --ascii was not asked for)."""
    if ascii_flag:
        return False
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "∂²".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def derivative_label(names: tuple[str, ...], unicode: bool) -> str:
    """∂/∂a, ∂²/∂a∂b (d/da, d2/dadb in ASCII)."""
    if len(names) == 1:
        return f"∂/∂{names[0]}" if unicode else f"d/d{names[0]}"
    first, second = names
    if unicode:
        return f"∂²/∂{first}²" if first == second else f"∂²/∂{first}∂{second}"
    return f"d2/d{first}2" if first == second else f"d2/d{first}d{second}"


def as_rows(value, per_row: bool, dataset):
    """A derivative that is the same in every row comes back as one number;
    show it per row (a column, a JSON list) when it is a per-row quantity."""
    import numpy as np  # here, not at import: the group loads this module before any command

    if per_row and dataset is not None and np.ndim(value) == 0:
        return np.full(dataset.rows, float(value))
    return value


def json_text(value, **options) -> str:
    """``value`` as JSON for stdout: characters as they are where stdout's encoding
    can show them, else as ``\\u`` escapes (the same JSON, in ASCII)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return json.dumps(value, ensure_ascii=True, **options)
    return text


def json_value(value):
    """A float, or a list of floats for a per-row result (NaN and inf as null)."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return [float(v) if np.isfinite(v) else None for v in value.tolist()]
    return float(value) if np.isfinite(value) else None


def text_lines(label: str, value) -> list[str]:
    """'label = v' for one value; the label, then one value a line, for a per-row result."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return ([label] if label else []) + [format_number(v) for v in value.tolist()]
    return [f"{label} = {format_number(value)}" if label else format_number(value)]
