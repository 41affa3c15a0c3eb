"""Bounded reading of the files and streams a user names: CSV data, expression files, standard input.

In: a path, or a binary stream (standard input, a pipe), and the most to read.
Out: its bytes or text, read once (a pipe or a FIFO cannot be read twice),
without a byte-order mark (UTF-16 with one, as spreadsheets save "Unicode
text", comes back as UTF-8); or an ExprgradError of the caller's class whose one
line says why not: no such file, larger than the limit (a regular file is
refused before any read), binary data (a NUL byte: /dev/zero, a sparse file),
not UTF-8 (/dev/urandom), with the line where it was found. ``shown`` escapes
control characters for messages.
Must not: print, exit, or import anything from exprgrad but ``errors``.
"""

from __future__ import annotations

import codecs
import os
import stat

from exprgrad.errors import DataError, ExprgradError

__all__ = ["label_of", "raise_not_utf8", "read_bytes", "read_text", "shown"]

# Bytes per read: a NUL byte or invalid UTF-8 is refused after at most this much.
_CHUNK_BYTES = 1 << 20
# How binary files users mistake for text begin (never as text can), and what to say.
_FORMATS = {
    b"\x1f\x8b": ("gzip-compressed", ": decompress it first (zcat FILE, and - to read standard input)"),
    b"\xfd7zXZ\x00": ("xz-compressed", ": decompress it first"),
    b"PK\x03\x04": ("a zip archive", " (a spreadsheet workbook, .xlsx?): save the sheet as CSV"),
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ("an Office document", " (.xls?): save the sheet as CSV"),
    b"\x89PNG": ("a PNG image", ""),
}


def read_text(
    path,
    *,
    max_bytes: int,
    what: str = "data file",
    error: type[ExprgradError] = DataError,
    encoding: str = "utf-8",
    label: str | None = None,
) -> str:
    """A whole text file or stream, read once, in at most ``max_bytes`` bytes.

    A byte-order mark is dropped, and lines end in ``\n`` (from ``\n``,
    ``\r\n`` or ``\r``), as in text mode. Reading stops at the first NUL byte (binary
    data, or a device such as /dev/zero), the first byte that is not UTF-8, or
    when the limit is passed; a regular file larger than the limit is refused
    before any read.

    Args:
        path: a path, or a binary stream (its ``name`` labels the messages).
        max_bytes: the most to read.
        what: what the file is, for messages ("expression file").
        error: the ExprgradError subclass to raise.
        encoding: the text's encoding, when not UTF-8 (then the limit and the
            NUL check apply, the UTF-8 check does not).
        label: how messages name the file (default: the path or the
            stream's name; "" for none, as for standard input).

    Raises:
        ``error``: the file cannot be read, is too large, holds binary data or
            is not text in ``encoding``.
    """
    label = label_of(path) if label is None else label
    utf8 = codecs.lookup(encoding).name == "utf-8"
    data = read_bytes(path, label, max_bytes=max_bytes, what=what, error=error, validate=utf8)
    try:
        text = data.decode("utf-8" if utf8 else encoding)
    except UnicodeDecodeError:
        raise error(f"cannot read {_named(what, label)}: it is not {encoding} text") from None
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def shown(text: str, limit: int | None = None) -> str:
    """``text`` for a one-line message: shortened to ``limit`` characters, control characters escaped."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def label_of(path) -> str:
    """How messages name ``path``: the path itself, or a stream's ``name`` ("<stream>" without one).

    Raises:
        DataError: ``path`` is neither a path nor a stream.
    """
    if isinstance(path, (str, os.PathLike)):
        label = os.fspath(path)
        if isinstance(label, str):
            return label
    elif hasattr(path, "read"):
        name = getattr(path, "name", None)
        return name if isinstance(name, str) else "<stream>"
    raise DataError(f"expected the path of a file or a binary stream, not {type(path).__name__}")


def _named(what: str, label: str) -> str:
    """ "data file 'x.csv'", or ``what`` alone for an unnamed stream."""
    return f"{what} '{shown(label)}'" if label else what


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"


def read_bytes(
    path, label: str, *, max_bytes: int, what: str, error: type[ExprgradError], validate: bool = True
) -> bytes:
    """The bytes of a file or stream, read once, without a byte-order mark.

    Args:
        path: a path, or a binary stream, read to its end and not closed.
        label: how messages name it ("" for none).
        max_bytes, what, error: as for ``read_text``.
        validate: also refuse bytes that are not UTF-8.

    Raises:
        ``error``: as for ``read_text``.
    """
    label_of(path)  # refuses what is neither a path nor a stream
    too_large = error(f"{_named(what, label)} is larger than {_size(max_bytes)}, the most exprgrad reads")
    try:
        if hasattr(path, "read"):
            if _regular_size(path) > max_bytes:  # standard input redirected from a file
                raise too_large
            try:
                return _read_stream(path, label, max_bytes, what, error, validate, too_large)
            except ValueError:  # the stream is closed
                raise error(f"cannot read {_named(what, label)}: it is closed") from None
        with open(path, "rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
                raise too_large
            return _read_stream(stream, label, max_bytes, what, error, validate, too_large)
    except OSError as exc:
        raise _unreadable(label, exc, what, error) from None


def _regular_size(stream) -> int:
    """The bytes left in a stream that is a regular file; 0 for anything else."""
    try:
        info = os.fstat(stream.fileno())
        return info.st_size - stream.tell() if stat.S_ISREG(info.st_mode) else 0
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return 0


def _read_stream(stream, label, max_bytes, what, error, validate, too_large) -> bytes:
    decoder = codecs.getincrementaldecoder("utf-8")()
    chunks: list[bytes] = []
    total = 0
    while True:
        chunk = stream.read(_CHUNK_BYTES)
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8", "surrogateescape")
        if not chunk:
            break
        if not chunks:
            chunk = chunk.removeprefix(codecs.BOM_UTF8)
        total += len(chunk)
        if total > max_bytes:
            raise too_large
        if not chunks and validate and chunk.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return _utf16_as_utf8(chunk, stream, label, max_bytes - total, what, error, too_large)
        if not chunks:
            for magic, (kind, advice) in _FORMATS.items():
                if chunk.startswith(magic):
                    raise error(f"cannot read {_named(what, label)}: it is {kind}, not text{advice}")
        nul = chunk.find(b"\0")
        if nul >= 0:
            line = _line_of(b"".join(chunks) + chunk[:nul])
            raise error(
                f"cannot read {_named(what, label)}: it holds binary data, not text (a NUL byte on line {line})"
            )
        if validate:
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                raise_not_utf8(b"".join(chunks) + chunk, label, what, error)
        chunks.append(chunk)
    data = b"".join(chunks)
    if validate:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise_not_utf8(data, label, what, error)
    return data


def _utf16_as_utf8(first: bytes, stream, label, room: int, what, error, too_large) -> bytes:
    """A UTF-16 file (as spreadsheets save "Unicode text"), whole, turned into UTF-8."""
    chunks = [first]
    while chunk := stream.read(_CHUNK_BYTES):
        room -= len(chunk)
        if room < 0:
            raise too_large
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-16")
    except UnicodeDecodeError:
        raise error(
            f"cannot read {_named(what, label)}: it starts as UTF-16 text but is not UTF-16"
        ) from None
    nul = text.find("\0")
    if nul >= 0:
        line = _line_of(text[:nul].encode("utf-8"))
        raise error(
            f"cannot read {_named(what, label)}: it holds binary data, not text (a NUL on line {line})"
        )
    return text.encode("utf-8")


def raise_not_utf8(data: bytes, label: str, what: str, error, first_line: int = 1) -> None:
    """Raise the error naming the first byte of ``data`` that is not UTF-8, and its line
    (``data`` starting on line ``first_line``: a later chunk of a file); nothing if all is UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line - 1 + _line_of(data[: exc.start])
        raise error(
            f"cannot read {_named(what, label)}: it is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})"
        ) from None


def _line_of(before: bytes) -> int:
    """The 1-based line a position is on, given the bytes before it (\\n, \\r\\n and \\r end lines)."""
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1


def _unreadable(label: str, exc: OSError, what: str, error) -> ExprgradError:
    """The error for a file that cannot be opened or read."""
    if isinstance(exc, FileNotFoundError):
        reason = "no such file"
    elif isinstance(exc, IsADirectoryError):
        reason = "it is a directory"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    else:
        reason = (exc.strerror or str(exc)).lower()
    return error(f"cannot read {_named(what, label)}: {reason}")
