"""What exprgrad puts on its standard streams: messages safe to show, whole writes.

In: message text and result bytes from the commands. Out: lines on stderr,
bytes on stdout. Writing a message never fails: control characters are
escaped, overlong lines cut, and what stderr's encoding cannot represent is
escaped too. A short write to stdout is an OSError, never a truncated result.
Must not: compute, or write files (output.py does).
"""

from __future__ import annotations

import errno
import io
import os
import re
import sys
import unicodedata

import click

# A message line longer than this is cut (a 1M-character cell or line stays readable),
# and so are the lines after the first MESSAGE_LINES.
MESSAGE_WIDTH = 1000
MESSAGE_LINES = 30
_CARET_LINE = re.compile(r"( *)(\^+)")


def show_message(prefix: str, message: str) -> None:
    """``prefix: message`` on stderr, whatever the message holds: control and other
    invisible characters are escaped visibly (``\\x1b``), an overlong line is cut
    with an ellipsis, and what stderr's encoding cannot represent is written as
    a backslash escape (``\\u03b8``), so writing a message never fails. A caret
    line still points at its characters after every escape."""
    encoding = getattr(sys.stderr, "encoding", None) or "ascii"
    try:
        "".encode(encoding)
    except LookupError:
        encoding = "ascii"
    text = "\n".join(visible_lines(f"{prefix}: {message}", encoding))
    # Already representable: a safety net only.
    text = text.encode(encoding, "backslashreplace").decode(encoding)
    click.echo(text, err=True)


def visible_lines(message: str, encoding: str | None = None) -> list[str]:
    """The lines of a message as they may be shown on a terminal.

    Newlines separate lines; every other character that does not print
    (``\\r``, ``\\x1b``, ``\\t``, U+202E) becomes its Python escape, and so does
    every character ``encoding`` (None: any) cannot represent. A caret line
    (spaces and ``^``) under a line is moved with the escapes so that it still
    points at the same characters, in terminal columns (a wide character
    such as 中 takes two, a combining accent none); a line longer than
    MESSAGE_WIDTH is cut around its caret.
    """
    ellipsis = "\N{HORIZONTAL ELLIPSIS}"
    if encoding is not None and not _encodable(ellipsis, encoding):
        ellipsis = "..."
    raw = message.split("\n")
    lines: list[str] = []
    index = 0
    while index < len(raw) and len(lines) < MESSAGE_LINES:
        line = raw[index]
        caret = _CARET_LINE.fullmatch(raw[index + 1]) if index + 1 < len(raw) else None
        if caret is not None and len(raw[index + 1]) <= len(line) + 1:
            lines.extend(_with_caret(line, len(caret.group(1)), len(caret.group(2)), encoding, ellipsis))
            index += 2
        else:
            lines.append(_cut(_escaped(line[: MESSAGE_WIDTH + 1], encoding), len(line), ellipsis))
            index += 1
    if index < len(raw):
        lines.append(f"{ellipsis} ({len(raw) - index:,} more lines)")
    return lines


def _encodable(text: str, encoding: str) -> bool:
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _escaped(text: str, encoding: str | None = None) -> str:
    """``text`` with what does not print, or what ``encoding`` cannot represent, as escapes."""
    if text.isprintable() and (encoding is None or _encodable(text, encoding)):
        return text
    return "".join(
        char if char.isprintable() and (encoding is None or _encodable(char, encoding)) else _escape(char)
        for char in text
    )


def _escape(char: str) -> str:
    if char == "\N{HORIZONTAL ELLIPSIS}":
        return "..."
    if char.isprintable():  # printable but not representable: as backslashreplace writes it
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
    return repr(char)[1:-1]


def _columns(text: str) -> int:
    """How many terminal columns ``text`` takes: two for a wide character, none for a combining one."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def _cut(shown: str, length: int, ellipsis: str = "\N{HORIZONTAL ELLIPSIS}") -> str:
    """``shown`` (an escaped prefix of a ``length``-character line) cut to MESSAGE_WIDTH."""
    if len(shown) <= MESSAGE_WIDTH and length <= MESSAGE_WIDTH:
        return shown
    return shown[:MESSAGE_WIDTH] + f"{ellipsis} ({length:,} characters in all)"


def _with_caret(
    line: str, start: int, width: int, encoding: str | None = None, ellipsis: str = "\N{HORIZONTAL ELLIPSIS}"
) -> list[str]:
    """A source line and the caret under line[start:start + width], escaped and cut."""
    begin = 0
    if len(line) > MESSAGE_WIDTH:
        begin = max(0, min(start - MESSAGE_WIDTH // 2, len(line) - MESSAGE_WIDTH))
    end = begin + MESSAGE_WIDTH
    stop = min(start + width, end)
    before = (f"  {ellipsis}" if begin > 0 else "") + _escaped(line[begin:start], encoding)
    marked = _escaped(line[start:stop], encoding)  # empty when the caret is just past the end
    after = _escaped(line[stop:end], encoding) + (ellipsis if end < len(line) else "")
    return [before + marked + after, " " * _columns(before) + "^" * max(1, _columns(marked))]


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
    truncated file. Closing this object leaves the descriptor open.
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
        write_all(self._fd, view)
        return len(view)


class _Closed(io.BufferedIOBase):
    """Standard output when the process was started without one (`>&-`)."""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(errno.EBADF, "Bad file descriptor (it was closed before exprgrad started)")


def guard_stdout() -> None:
    """Make sys.stdout report every short write as an OSError (see ``_WholeWrites``).

    Only a real file descriptor is wrapped (a test runner's buffer is left
    as it is); encoding, errors and line buffering stay what they were. A
    closed stdout (Python's None) becomes one whose writes fail, so that a
    result with nowhere to go is an error, not silence.
    """
    stream = sys.stdout
    if stream is None:
        # write_through: a failed write keeps nothing to fail again at exit.
        sys.stdout = io.TextIOWrapper(_Closed(), encoding="utf-8", write_through=True)
        return
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


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is out; a write that makes no progress is a short write."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
        view = view[written:]
