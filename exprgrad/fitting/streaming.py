"""CSV files read a chunk at a time, their columns appended to a cache entry being built.

In: a source's CSV files (a ``sources.SourceSpec``: paths, labels, load_csv's
options), the columns wanted, a ``cache.Writer``. Out: the columns' values
appended to the writer chunk by chunk, and the meta of the entry (header,
problems, each file's rows). Each file is read about ``chunk_bytes`` at a time,
cut after a line end, and parsed by load_csv's own parser
(``data.read_header``, ``data.read_rows``) with the line number before the
chunk: every cell rule and every message (``file:line:column``) is
load_csv's. The first chunk holds the header and as much after it as
load_csv's sniffer reads, so the separator found is the same; every file is
read with the first one's separator and must have its header.
Must not: hold a whole file, print, or know the expression language.
"""

from __future__ import annotations

import codecs
import io
import os
from collections.abc import Iterator

from exprgrad.errors import DataError
from exprgrad.fitting.cache import Writer
from exprgrad.fitting.data import MAX_CSV_BYTES, normalized, read_header, read_rows, require_same_header
from exprgrad.fitting.reading import raise_not_utf8, read_bytes, shown

__all__ = ["convert_csv", "csv_header"]

# load_csv's sniffer reads this much after the header: a streamed file's first chunk holds it.
SNIFF_BYTES = 64 * 1024


def convert_csv(spec, wanted, writer: Writer, progress, chunk_bytes: int) -> dict:
    """Parse every file of a CSV source a chunk at a time, appending the wanted columns to ``writer``."""
    total = sum(os.path.getsize(p) for p in spec.paths)
    done = 0
    first_names = sep = None
    bad: dict[str, str] = {}  # column -> its first bad cell, in file order
    files = []
    for path, label in zip(spec.paths, spec.labels):
        chunks = _chunks(path, label, chunk_bytes)
        head, read, (header_line, names, file_sep, body) = _head(chunks, label, sep or spec.sep, spec.decimal)
        done += read
        if first_names is None:
            first_names, sep = names, file_sep
            writer.header = tuple(names)
            columns = [n for n in names if wanted is None or n in wanted]
        else:
            require_same_header(label, names, spec.labels[0], first_names)
        rows = _append_rows(label, head, body, header_line, names, sep, spec, columns, bad, writer)
        del head
        if progress is not None:
            progress(spec.label, done, total)
        for data, line, size in chunks:
            rows += _append_rows(label, data, 0, line - 1, names, sep, spec, columns, bad, writer)
            done += size
            if progress is not None:
                progress(spec.label, done, total)
        files.append((label, rows))
    if progress is not None:
        progress(spec.label, total, total)
    return {"header": first_names, "problems": bad, "files": files}


def csv_header(spec) -> tuple[str, ...]:
    """The column names of a CSV source's first file, read from its first chunk alone."""
    chunks = _chunks(spec.paths[0], spec.labels[0], 256 * 1024)
    try:
        return tuple(_head(chunks, spec.labels[0], spec.sep, spec.decimal)[2][1])
    finally:
        chunks.close()


def _head(chunks, label: str, sep: str | None, decimal: str) -> tuple[bytes, int, tuple]:
    """The first chunks of a file, up to the header and as much after it as load_csv's sniffer reads:
    their bytes, how many were read, and ``read_header``'s answer for them."""
    head, read = b"", 0
    for data, _, size in chunks:
        head += data
        read += size
        if head.decode("utf-8").strip():
            found = read_header(head, label, sep, decimal)
            if sep is not None or len(head) > found[3] + SNIFF_BYTES:
                return head, read, found
    return head, read, read_header(head, label, sep, decimal)


def _append_rows(label, data, body, header_line, names, sep, spec, columns, bad, writer) -> int:
    """Parse one chunk's rows, append its numeric wanted columns, note the first problem of each; its rows."""
    values, problems = read_rows(
        label, data, body, header_line, names, sep, spec.decimal, spec.allow_nonfinite, empty_ok=True
    )
    for name in columns:
        if name in bad:
            continue
        if name in problems:
            bad[name] = problems[name]
            writer.drop(name)
        else:
            writer.append(name, values[name])
    if values:
        return len(next(iter(values.values())))
    return sum(1 for line in data[body:].decode("utf-8").split("\n") if line.strip())


def _chunks(path: str, label: str, chunk_bytes: int) -> Iterator[tuple[bytes, int, int]]:
    """A file's text as (whole lines with \\n endings, the line number of the first, bytes read).

    The checks of ``reading.read_bytes`` apply, with the line in the file: the
    first block goes through it (a byte-order mark, a compressed or binary
    file), every block is checked for NUL bytes as it is read and every chunk
    for UTF-8. UTF-16 text is converted whole, as load_csv does (at most
    MAX_CSV_BYTES).
    """
    with _opened(path, label) as file:
        carry, line, first = b"", 1, True
        while True:
            block = file.read(max(chunk_bytes, 64) if first else chunk_bytes)  # whole magic numbers
            at_end = not block
            if first:
                if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    data = read_bytes(path, label, max_bytes=MAX_CSV_BYTES, what="data file", error=DataError)
                    yield normalized(data), 1, os.path.getsize(path)
                    return
                # Stops at a known binary format or a NUL byte; drops a UTF-8 byte-order mark.
                block = read_bytes(
                    io.BytesIO(block),
                    label,
                    max_bytes=len(block) + 1,
                    what="data file",
                    error=DataError,
                    validate=False,
                )
                first = False
            nul = block.find(b"\0")
            if nul >= 0:
                raise DataError(
                    f"cannot read data file '{shown(label)}': it holds binary data, not text "
                    f"(a NUL byte on line {line + _line_ends(carry) + _line_ends(block[:nul])})"
                )
            if at_end:
                piece, carry = carry, b""
            else:
                # Cut after the last line end; a final \r may be the first half of \r\n.
                cut = block.rfind(b"\n") + 1 or block.rfind(b"\r", 0, len(block) - 1) + 1
                if not cut:
                    if len(carry) + len(block) > MAX_CSV_BYTES:
                        raise DataError(f"{shown(label)}:{line}: the line is longer than 1 GiB")
                    carry += block  # a line longer than a chunk: read on
                    continue
                piece = carry + block[:cut] if carry else block[:cut]
                carry = block[cut:]
            del block
            size = len(piece)
            raise_not_utf8(piece, label, "data file", DataError, first_line=line)
            piece = normalized(piece)
            if piece:
                yield piece, line, size
            line += piece.count(b"\n")
            if at_end:
                return


def _opened(path: str, label: str):
    try:
        return open(path, "rb")
    except OSError:  # read_bytes says why, in load_csv's words
        read_bytes(path, label, max_bytes=MAX_CSV_BYTES, what="data file", error=DataError)
        raise


def _line_ends(before: bytes) -> int:
    return before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n")
