"""Data sources beyond one CSV file: globs and folders of CSV or Parquet files, and files larger than memory.

In: what ``data=`` or ``--data`` names: a CSV file; a glob (``shards/*.csv``)
or a folder (every ``*.csv`` in it), whose files are taken in natural order
(``shard2`` before ``shard10``) and must all have the same header; a Parquet
file, glob or folder (``*.parquet``, ``*.pq``, read with pyarrow, an optional
dependency imported only for them). The parse options are load_csv's.
Out: a ``Dataset``. One CSV file of at most ``STREAM_BYTES`` (and anything
that is not a regular file: a pipe, a device) is read whole by ``load_csv``,
as before. Anything else is converted once into the binary cache
(``cache.py``): CSV files a chunk of about ``CHUNK_BYTES`` at a time through
load_csv's own parser (``streaming.py``), so the cell rules and the
``file:line:column`` of every message are the same; Parquet a batch of rows
at a time, of the columns asked for only (``parquet.py``). The Dataset's columns
are then read-only memory maps of the cache files, so data larger than
memory is never held whole; ``Dataset.files`` gives each file's row count and
``Dataset.source`` the ``SourceSpec``, a small picklable description from
which another process loads a row range of the columns it needs
(``spec.open(columns, start, stop)``), from the same cache on one machine.
Must not: print, but the one progress line ``terminal_progress`` writes on a
terminal's standard error; know the expression language; write beside the data.
"""

from __future__ import annotations

import glob
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exprgrad.errors import DataError, OptionError
from exprgrad.fitting import cache
from exprgrad.fitting.data import Dataset, check_options, load_csv, require_columns
from exprgrad.fitting.parquet import convert_parquet, parquet_header
from exprgrad.fitting.reading import shown
from exprgrad.fitting.streaming import convert_csv, csv_header

__all__ = ["CHUNK_BYTES", "STREAM_BYTES", "SourceSpec", "describe", "load", "terminal_progress"]

# One CSV file larger than this goes through the cache; a smaller one is read whole, in memory.
STREAM_BYTES = 256 << 20
# Text parsed at a time: parsing a chunk takes about 6 times its size (its text,
# its table, the columns), and larger chunks are no faster (20 MB/s from 4 to 64 MiB).
CHUNK_BYTES = 8 << 20
PARQUET_SUFFIXES = (".parquet", ".pq")
_GLOB_CHARACTERS = "*?["
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class SourceSpec:
    """A data source and how to read it: small, picklable, enough for another process to load it.

    label: how messages and ``Dataset.path`` name the whole source (the path,
    glob or folder as given). paths: its files, absolute, in order; labels:
    the same files as messages name them. format: "csv" or "parquet".
    sep, decimal, allow_nonfinite: load_csv's options.
    """

    label: str
    paths: tuple[str, ...]
    labels: tuple[str, ...]
    format: str = "csv"
    sep: str | None = None
    decimal: str = "."
    allow_nonfinite: bool = False

    def open(
        self,
        columns: Sequence[str] | None = None,
        start: int = 0,
        stop: int | None = None,
        *,
        progress: Progress | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> Dataset:
        """The rows [start, stop) of the columns ``columns`` (None: every column) as a Dataset.

        Args:
            columns: the names needed; a Parquet source reads no other, and a
                CSV one keeps no other.
            start, stop: the row range (stop None: to the last row).
            progress: called as ``progress(label, bytes done, bytes in all)``
                while the source is converted (``terminal_progress()``).
            chunk_bytes: how much text a CSV file is parsed at a time.

        Raises:
            DataError: a file cannot be read or is not data as load_csv reads
                it; files whose headers differ; a column not in the source.
            OptionError: a row range outside the rows.
        """
        wanted = None if columns is None else list(dict.fromkeys(columns))
        if self._in_memory():
            whole = load_csv(self.paths[0], **self._options(), label=self.labels[0])

            def take(names, start, stop):
                whole_rows = (start, stop) == (0, whole.rows)
                return {n: whole.columns[n] if whole_rows else whole.columns[n][start:stop] for n in names}

            files = ((self.labels[0], whole.rows),)
            return _part(
                self, whole.header, set(whole.columns), take, whole.problems, files, wanted, start, stop
            )
        entry = self._entry(wanted, progress, chunk_bytes)
        if entry.rows == 0:
            what = "data file" if len(self.paths) == 1 else "data"
            raise DataError(f"{what} '{shown(self.label)}' has a header but no data rows")
        numeric = set(entry.columns)
        return _part(
            self, entry.header, numeric, entry.mapped, entry.problems, entry.files, wanted, start, stop
        )

    def header(self) -> tuple[str, ...]:
        """Every column name, read from the first file's header (or schema) alone, not its rows.

        Raises:
            DataError: the first file cannot be read, or has no header.
        """
        return parquet_header(self) if self.format == "parquet" else csv_header(self)

    def _options(self) -> dict:
        return {"sep": self.sep, "decimal": self.decimal, "allow_nonfinite": self.allow_nonfinite}

    def _in_memory(self) -> bool:
        """One CSV file that is small, or not a regular file (a pipe is read once, whole)."""
        if self.format != "csv" or len(self.paths) != 1:
            return False
        try:
            info = os.stat(self.paths[0])
        except OSError:
            return True  # load_csv says why it cannot be read
        return not stat.S_ISREG(info.st_mode) or info.st_size <= STREAM_BYTES

    def _entry(self, wanted, progress, chunk_bytes) -> cache.Entry:
        stamps = [_stamp(path, label) for path, label in zip(self.paths, self.labels)]
        identity = {
            "format": self.format,
            "paths": [os.path.realpath(p) for p in self.paths],
            "labels": list(self.labels),
            **self._options(),
        }
        convert = convert_parquet if self.format == "parquet" else convert_csv

        def build(writer: cache.Writer) -> dict:
            try:
                meta = convert(self, wanted, writer, progress, chunk_bytes)
            finally:
                if progress is not None:
                    progress(self.label, 0, 0)  # the line cleared, also before an error's message
            if [_stamp(p, label) for p, label in zip(self.paths, self.labels)] != stamps:
                raise DataError(f"{shown(self.label)} changed while it was being read: read it again")
            return meta

        if wanted is not None:  # an entry of every column serves any selection
            whole = cache.find_entry(cache.entry_name(identity, stamps, None)[1])
            if whole is not None:
                return whole
        prefix, name = cache.entry_name(identity, stamps, wanted)
        return cache.open_entry(name, prefix, build)


def _part(spec, header, numeric, take, problems, files, wanted, start, stop) -> Dataset:
    """The Dataset of rows [start, stop) of the columns ``wanted`` (None: all) of a whole source.

    ``numeric``: the columns of numbers; ``take(names, start, stop)``: those
    columns' rows; ``files``: (name, rows) of the whole source.
    """
    header = tuple(header)
    missing = [n for n in wanted or () if n not in header]
    if missing:
        require_columns(Dataset(path=spec.label, columns={}, header=header), missing)
    rows = sum(count for _, count in files)
    stop = rows if stop is None else stop
    if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop <= rows):
        raise OptionError(f"the row range [{start}, {stop}) is not within the {rows} rows of {spec.label}")
    names = [n for n in header if wanted is None or n in wanted]
    columns = take([n for n in names if n in numeric], start, stop)
    return Dataset(
        path=spec.label,
        columns=columns,
        problems={n: problems[n] for n in names if n in problems},
        header=header,
        files=tuple(files) if (start, stop) == (0, rows) else _files_within(files, start, stop),
        source=spec,
    )


def _files_within(files, start: int, stop: int) -> tuple[tuple[str, int], ...]:
    """(name, rows) of the files that have rows in [start, stop), and how many."""
    out, first = [], 0
    for label, count in files:
        low, high = max(first, start), min(first + count, stop)
        if high > low:
            out.append((label, high - low))
        first += count
    return tuple(out)


def describe(
    data, *, sep: str | None = None, decimal: str = ".", allow_nonfinite: bool = False
) -> SourceSpec:
    """The SourceSpec of a path, glob or folder, its files found and in natural order.

    Raises:
        DataError: a glob that matches no file, a folder without data files,
            CSV and Parquet files mixed in one source.
        OptionError: ``sep``, ``decimal`` or ``allow_nonfinite`` is not one load_csv takes.
    """
    check_options(sep, decimal, allow_nonfinite)
    if not isinstance(data, (str, os.PathLike)) or not isinstance(os.fspath(data), str):
        raise DataError(f"expected the path of a data file, a glob or a folder, not {type(data).__name__}")
    label = os.fspath(data)
    if os.path.isdir(label):
        found = [
            os.path.join(label, name)
            for name in os.listdir(label)
            if not name.startswith(".") and os.path.isfile(os.path.join(label, name))
        ]
        csv = [f for f in found if f.lower().endswith(".csv")]
        parquet = [f for f in found if f.lower().endswith(PARQUET_SUFFIXES)]
        if csv and parquet:
            raise DataError(
                f"folder '{shown(label)}' holds both CSV and Parquet files "
                f"({shown(csv[0])}, {shown(parquet[0])}): give a glob that picks one kind"
            )
        if not csv and not parquet:
            raise DataError(f"folder '{shown(label)}' holds no data files (*.csv, *.parquet or *.pq)")
        labels, kind = sorted(csv or parquet, key=natural_key), "csv" if csv else "parquet"
    elif any(c in label for c in _GLOB_CHARACTERS) and not os.path.exists(label):
        labels = sorted((f for f in glob.glob(label, recursive=True) if os.path.isfile(f)), key=natural_key)
        if not labels:
            raise DataError(f"no file matches '{shown(label)}'")
        kinds = {_format_of(f, sniff=False) for f in labels}
        if len(kinds) > 1:
            first = next(f for f in labels if _format_of(f, sniff=False) == "parquet")
            other = next(f for f in labels if _format_of(f, sniff=False) == "csv")
            raise DataError(
                f"'{shown(label)}' matches both CSV and Parquet files ({shown(other)}, {shown(first)}): "
                "give a glob that picks one kind"
            )
        kind = kinds.pop()
    else:
        labels, kind = [label], _format_of(label, sniff=True)
    paths = tuple(os.path.abspath(f) for f in labels)
    return SourceSpec(label, paths, tuple(labels), kind, sep, decimal, allow_nonfinite)


def load(
    data,
    *,
    sep: str | None = None,
    decimal: str = ".",
    allow_nonfinite: bool = False,
    progress: Progress | None = None,
    deferred: bool = False,
) -> Dataset:
    """Every column of a data source (``describe``), as ``SourceSpec.open`` reads them.

    deferred: a source that is converted to the cache (not one small CSV file)
    is not read yet: the Dataset has its header only, and ``read_columns``
    reads the columns an expression needs, once it is parsed.

    Raises:
        DataError, OptionError: as ``describe`` and ``SourceSpec.open``.
    """
    spec = describe(data, sep=sep, decimal=decimal, allow_nonfinite=allow_nonfinite)
    if deferred and not spec._in_memory():
        return Dataset(path=spec.label, columns={}, header=spec.header(), source=spec, deferred=True)
    return spec.open(progress=progress)


def read_columns(dataset: Dataset, names: Sequence[str], progress: Progress | None = None) -> Dataset:
    """A deferred Dataset (``load(deferred=True)``) with the columns ``names`` read; any other as it is.

    Only the names in its header are read (the others are the caller's to
    report); with none of them, every column is (the rows are counted from
    a column).

    Raises:
        DataError, OptionError: as ``SourceSpec.open``.
    """
    if not dataset.deferred:
        return dataset
    wanted = [n for n in dict.fromkeys(names) if n in dataset.header]
    return dataset.source.open(wanted or None, progress=progress)


def natural_key(path: str) -> list:
    """Sorts ``shard2`` before ``shard10``: runs of digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def _format_of(path: str, *, sniff: bool) -> str:
    """ "parquet" for a .parquet or .pq name (or, with ``sniff``, a file that starts as one); else "csv"."""
    if path.lower().endswith(PARQUET_SUFFIXES):
        return "parquet"
    if sniff and os.path.isfile(path):  # a pipe is read once: by load_csv
        try:
            with open(path, "rb") as file:
                if file.read(4) == b"PAR1":
                    return "parquet"
        except OSError:
            pass  # load_csv says why it cannot be read
    return "csv"


def _stamp(path: str, label: str) -> list:
    """What says a file is unchanged: its size and its modification time in nanoseconds."""
    try:
        info = os.stat(path)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else (exc.strerror or str(exc)).lower()
        raise DataError(f"cannot read data file '{shown(label)}': {reason}") from None
    return [info.st_size, info.st_mtime_ns]


# --- progress -----------------------------------------------------------------------


def terminal_progress() -> Progress | None:
    """A progress line on standard error (``reading data.csv: 412 MiB of 1.2 GiB``,
    rewritten in place) when it is a terminal; None otherwise."""
    stream = sys.stderr
    try:
        if stream is None or not stream.isatty():
            return None
    except (AttributeError, ValueError):
        return None
    return _TerminalProgress(stream)


class _TerminalProgress:
    """Writes the line at most a few times a second, and clears it when the conversion ends."""

    def __init__(self, stream):
        self.stream, self.shown_at, self.width = stream, 0.0, 0

    def __call__(self, label: str, done: int, total: int) -> None:
        now = time.monotonic()
        if (done < total and now - self.shown_at < 0.2) or (done >= total and not self.width):
            return  # shown a moment ago, or nothing to clear
        self.shown_at = now
        if done >= total:
            text = ""
        else:
            text = f"reading {shown(label, 60)}: {_size(done)} of {_size(total)}"
        self.stream.write("\r" + text.ljust(self.width) + ("\r" if not text else ""))
        self.stream.flush()
        self.width = len(text)


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            return f"{count / scale:.3g} {unit}"
    return f"{count} bytes"
