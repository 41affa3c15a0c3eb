"""CSV data: a file of numbers in, one float64 column per header name out.

In: a path, or a binary stream such as standard input, of UTF-8 text (a
byte-order mark is allowed), read once and at most ``MAX_CSV_BYTES`` bytes.
Its first non-blank line names the columns; the rows below hold one cell per
column. Cells are separated by a comma, a semicolon or a tab: the separator is
the one the header and the first rows agree on, unless ``sep`` says which.
Numbers use a decimal point, or a decimal comma with ``decimal=","``. Line
endings may be LF, CRLF or CR; the last line may or may not end with one.
Lines that are empty or hold only whitespace are skipped wherever they appear.
There is no quoting: the separator always separates cells, and a cell in
quotes is not a number. Names are kept exactly as written (surrounding
whitespace removed), except that one pair of double quotes around a name is
dropped, as R's write.csv quotes the header of a numeric table.

Out: a frozen ``Dataset`` mapping each name whose cells are all numbers to a
read-only, C-contiguous float64 array. A column with a cell that is not a
number (a text column, an empty or a non-finite cell) is kept aside with the
reason: nothing fails until that column is asked for, so a file may carry
columns the expression does not use. ``require_columns`` checks that a file has
the columns an expression reads, as numbers.

Every problem with the file is a ``DataError`` whose one-line message says
where it is (``file:line`` or ``file:line:column``, with physical line numbers
and 1-based cell indices) and what was found there, with control characters
escaped. This module must not print, exit, know the expression language, or
import anything from exprgrad but ``errors``, ``reading`` (the bounded read)
and ``cells`` (the rows below the header).

``read_header`` and ``read_rows`` are the one parser: ``load_csv`` runs them
over the whole file, ``sources`` over each chunk of a file it streams (with
the line number before the chunk, so messages name the line in the file).

Speed: the common, clean file is read by ``np.loadtxt`` (numpy's C parser)
from the bytes already in memory. Only when that fails, or finds a value that
is not finite, does a slower scan split the rows and read each column on its
own (``cells.scan_rows``); it is the reference: it either names the first bad
line or cell, or returns the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from exprgrad.errors import DataError, Mention, OptionError
from exprgrad.fitting.cells import HINTS, SEPARATORS, name_shown, names_shown, read_table, scan_rows
from exprgrad.fitting.reading import label_of, read_bytes, shown

__all__ = [
    "MAX_CSV_BYTES",
    "SEPARATORS",
    "Dataset",
    "check_options",
    "load_csv",
    "normalized",
    "read_header",
    "read_rows",
    "require_columns",
    "require_same_header",
]

# The most a data file may hold; a larger one is refused before it is read.
MAX_CSV_BYTES = 1 << 30
# Data lines the separator sniffer looks at after the header.
_SNIFF_LINES = 20
# Rows per block when the table's columns are copied out (see _transposed).
_TRANSPOSE_ROWS = 4096


class _Columns(dict):
    """name -> column, for the columns that are all numbers.

    Asking for a column whose cells are not all numbers (``columns["name"]``)
    raises its DataError, which says where; ``in``, ``get`` and iteration see
    only the numeric columns.
    """

    def __init__(self, columns: Mapping[str, np.ndarray], problems: Mapping[str, str]):
        super().__init__(columns)
        self.problems = dict(problems)

    def __missing__(self, name):
        if name in self.problems:
            raise DataError(self.problems[name], mentions=HINTS)
        raise KeyError(name)


@dataclass(frozen=True)
class Dataset:
    """The columns of one CSV file.

    Attributes:
        path: where the data came from, as given to ``load_csv`` (``<stdin>``
            for standard input).
        columns: column name -> read-only, C-contiguous float64 array, for
            every column whose cells are all numbers, in header order; every
            array has the same length.
        problems: column name -> why it is not a column of numbers (the
            message of the DataError raised when it is asked for).
        header: every column name, in file order (default: the names of
            ``columns``).
        files: the files the rows come from, in order, as (name, rows): their
            row counts add up to ``rows`` (empty when the data was not read
            from files, as for a dict of arrays or standard input).
        source: how to read the data again, in another process
            (``sources.SourceSpec``), or None.
        deferred: only the header is read yet (``sources.load(deferred=True)``);
            ``sources.read_columns`` reads the columns.
    """

    path: str
    columns: dict[str, np.ndarray]
    problems: dict[str, str] = field(default_factory=dict)
    header: tuple[str, ...] = ()
    files: tuple[tuple[str, int], ...] = ()
    source: object = None
    deferred: bool = False

    def __post_init__(self):
        if not isinstance(self.path, str):
            raise DataError(f"Dataset path must be a string, not {type(self.path).__name__}")
        if not isinstance(self.columns, Mapping) or not isinstance(self.problems, Mapping):
            raise DataError("Dataset columns and problems must be mappings of column name -> values")
        lengths = set()
        for name, column in self.columns.items():
            if not isinstance(name, str) or not isinstance(column, np.ndarray) or column.ndim != 1:
                raise DataError(
                    f"Dataset column {name!r} must be a one-dimensional numpy array under a str name"
                )
            lengths.add(len(column))
        if len(lengths) > 1:
            raise DataError("Dataset columns must all have the same length")
        header = tuple(self.header) or tuple(self.columns) + tuple(
            n for n in self.problems if n not in self.columns
        )
        object.__setattr__(self, "header", header)
        object.__setattr__(self, "files", tuple((str(name), int(rows)) for name, rows in self.files))
        object.__setattr__(self, "columns", _Columns(self.columns, self.problems))
        object.__setattr__(self, "problems", dict(self.problems))

    @property
    def rows(self) -> int:
        """The number of data rows (every column has this many values)."""
        if self.deferred:  # a caller's mistake, not the user's: no count is better than 0
            raise RuntimeError(f"the columns of {self.path} are not read yet (sources.read_columns)")
        return len(next(iter(self.columns.values()), ()))

    @property
    def names(self) -> tuple[str, ...]:
        """Every column name, numeric or not, in header order."""
        return self.header


def load_csv(
    path,
    *,
    allow_nonfinite: bool = False,
    sep: str | None = None,
    decimal: str = ".",
    max_bytes: int = MAX_CSV_BYTES,
    label: str | None = None,
) -> Dataset:
    """Read a CSV file of numbers into columns named by its header row.

    The header is the first non-blank line. Blank (empty or whitespace-only)
    lines are skipped everywhere, but positions in messages are physical line
    numbers in the file (line 1 is the file's first line), so they match what
    an editor shows. A cell's position is ``file:line:column`` where column is
    the 1-based index of the cell in its row (not a character offset).

    Cells hold numbers in any syntax numpy's and Python's float parsers share,
    such as ``-3``, ``.11019``, ``10.07E0``, ``1e-3``, with optional
    surrounding spaces; ``nan`` and ``inf`` are refused unless asked for. A
    column with a cell that is not a number does not stop the file being
    read: it is left out of ``columns``, and asking for it raises the
    DataError that points at the cell.

    Args:
        path: the CSV file: a path, or a binary stream read to its end
            (``sys.stdin.buffer``; its ``name`` labels the messages).
        allow_nonfinite: keep ``nan``/``inf`` cells (and numbers too large
            for float64) instead of refusing them.
        sep: ``","``, ``";"`` or ``"\\t"``; None sniffs it from the header and
            the first rows.
        decimal: ``"."``, or ``","`` for numbers written ``1,5``.
        max_bytes: refuse a file larger than this.
        label: how messages and ``Dataset.path`` name the data (default: the
            path, or the stream's name).

    Returns:
        The Dataset, one float64 column per numeric header name.

    Raises:
        DataError: the file cannot be read, is larger than ``max_bytes``, is
            not UTF-8 text or holds binary data; it is empty or has no data
            rows; a column name is empty or repeated; a row has the wrong
            number of cells.
        OptionError: ``sep``, ``decimal``, ``allow_nonfinite`` or
            ``max_bytes`` is not one of the accepted values.
    """
    check_options(sep, decimal, allow_nonfinite, max_bytes)
    label = label_of(path) if label is None else str(label)
    data = normalized(read_bytes(path, label, max_bytes=max_bytes, what="data file", error=DataError))
    header_line, names, sep, body = read_header(data, label, sep, decimal)
    columns, problems = read_rows(label, data, body, header_line, names, sep, decimal, allow_nonfinite)
    del data
    for name, column in columns.items():
        column = np.ascontiguousarray(column, dtype=np.float64)
        column.flags.writeable = False
        columns[name] = column
    return Dataset(path=label, columns=columns, problems=problems, header=tuple(names))


def normalized(data: bytes) -> bytes:
    """The bytes with every line ending \\n (from \\r\\n or \\r): numpy splits a stream on \\n only."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data


def read_header(data: bytes, label: str, sep: str | None, decimal: str) -> tuple[int, list[str], str, int]:
    """The header of ``normalized`` bytes: its line number, the names, the separator, where the rows start.

    ``sep`` None sniffs the separator from the header and the first rows after
    it (up to 64 KiB of them), so ``data`` should hold at least that much of
    the file when there is that much.

    Raises:
        DataError: no header (the data is blank), an empty or repeated name.
    """
    header_line, header, body = _find_header(data, label)
    if sep is None:
        sep = _sniff(header, data, body, decimal)
    return header_line, _parse_header(label, header_line, header, sep), sep, body


def read_rows(
    label: str,
    data: bytes,
    body: int,
    header_line: int,
    names: list[str],
    sep: str,
    decimal: str,
    allow_nonfinite: bool,
    *,
    empty_ok: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The rows of ``data[body:]`` (``normalized``, whole lines), whose first line is ``header_line + 1``.

    A streamed file passes each chunk with the line number before it, so a
    message names the line in the file. With ``empty_ok``, rows that are all
    blank give empty columns instead of the "no data rows" error.

    Returns:
        (column name -> float64 array, for the columns of numbers;
        column name -> the problem of a column that is not), as ``scan_rows``.

    Raises:
        DataError: a row has the wrong number of cells; no data rows.
    """
    table = read_table(data, body, len(names), sep, decimal, allow_nonfinite)
    if table is not None:
        return dict(zip(names, _transposed(table))), {}
    text = data[body:].decode("utf-8")
    if empty_ok and not text.strip():
        return {name: np.empty(0) for name in names}, {}
    return scan_rows(label, header_line, text, names, sep, decimal, allow_nonfinite)


def _transposed(table: np.ndarray) -> np.ndarray:
    """The table's columns as the rows of one C-ordered array, copied a block of rows at a time.

    Copying a column out of a row-major table touches one cache line per cell;
    a block of rows turned at once reads each line once (3x faster on
    1,000,000 rows of 51 columns than a copy per column).
    """
    out = np.empty((table.shape[1], table.shape[0]))
    for start in range(0, table.shape[0], _TRANSPOSE_ROWS):
        out[:, start : start + _TRANSPOSE_ROWS] = table[start : start + _TRANSPOSE_ROWS].T
    return out


def require_columns(
    dataset: Dataset, names: Iterable[str], *, what: str | Mention = "the expression"
) -> None:
    """Check that the dataset has every column in ``names``, as numbers.

    Args:
        dataset: the loaded data.
        names: the column names that are needed.
        what: who needs them, for the message ("the expression", or the
            argument: ``Mention("target")``, carried by the error).

    Raises:
        DataError: naming every missing column, in the order asked for, and
            listing the columns the file has; or, when all are there, pointing
            at the first cell that is not a number in the first column asked
            for that has one.
    """
    if not isinstance(dataset, Dataset):
        raise DataError(f"require_columns needs a Dataset, not {type(dataset).__name__}")
    if isinstance(names, str):
        names = [names]
    wanted = list(dict.fromkeys(names))
    missing = [n for n in wanted if n not in dataset.columns and n not in dataset.problems]
    if missing:
        quoted = ", ".join(f"'{name_shown(str(n))}'" for n in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            f"{what} needs {noun} {quoted}, which {shown(dataset.path)} lacks "
            f"(it has: {names_shown(dataset.names)}){_separator_hint(dataset)}",
            mentions=(what,) if isinstance(what, Mention) else (),
        )
    for name in wanted:
        if name in dataset.problems:
            raise DataError(dataset.problems[name], mentions=HINTS)


def _separator_hint(dataset: Dataset) -> str:
    """A header read as one name that holds a separator: the separator given is likely wrong."""
    if len(dataset.names) == 1:
        inside = [SEPARATORS[s] for s in SEPARATORS if s in dataset.names[0]]
        if inside:
            return f"; its header is one name with a {inside[0]} in it: are the cells separated by something else?"
    return ""


def check_options(sep, decimal, allow_nonfinite, max_bytes: int = MAX_CSV_BYTES) -> None:
    """Refuse a ``sep``, ``decimal``, ``allow_nonfinite`` or ``max_bytes`` load_csv does not take (OptionError)."""
    if sep is not None and sep not in SEPARATORS:
        raise OptionError(f"sep must be None (sniff it), ',', ';' or '\\t', not {sep!r}")
    if decimal not in (".", ","):
        raise OptionError(f"decimal must be '.' or ',', not {decimal!r}")
    if sep is not None and sep == decimal:
        raise OptionError("sep and decimal are both ',': separate the cells with ';' or a tab")
    if not isinstance(allow_nonfinite, bool):
        raise OptionError(f"allow_nonfinite must be True or False, not {allow_nonfinite!r}")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise OptionError(f"max_bytes must be a positive int, not {max_bytes!r}")


# --- header and separator -----------------------------------------------------------


def _find_header(data: bytes, label: str) -> tuple[int, str, int]:
    """The first non-blank line's number and text, and the offset where the rows start."""
    position, number = 0, 1
    while position < len(data):
        end = data.find(b"\n", position)
        end = len(data) if end < 0 else end
        line = data[position:end].decode("utf-8")
        if line.strip():
            return number, line, end + 1
        position, number = end + 1, number + 1
    raise DataError(f"data file '{shown(label)}' is empty: expected a header row naming the columns")


def _sniff(header: str, data: bytes, body: int, decimal: str) -> str:
    """The separator the header and the first rows agree on; else the one the header uses most."""
    sample = []
    end = body + 64 * 1024
    lines = data[body:end].decode("utf-8", "ignore").split("\n")
    for line in lines if end >= len(data) else lines[:-1]:
        if line.strip():
            sample.append(line)
            if len(sample) == _SNIFF_LINES:
                break
    candidates = [s for s in SEPARATORS if s != decimal]
    counts = {s: header.count(s) for s in candidates}
    for separator in candidates:
        if counts[separator] and all(line.count(separator) == counts[separator] for line in sample):
            return separator
    best = max(candidates, key=lambda s: counts[s])
    return best if counts[best] else candidates[0]


def _parse_header(label: str, line: int, header: str, sep: str) -> list[str]:
    """Column names from the header line; refuses empty and repeated names."""
    names = [_unquote(cell.strip()) for cell in header.split(sep)]
    first_seen: dict[str, int] = {}
    for column, column_name in enumerate(names, start=1):
        if not column_name:
            raise DataError(f"{shown(label)}:{line}: column {column} has no name")
        if column_name in first_seen:
            raise DataError(
                f"{shown(label)}:{line}: column name '{name_shown(column_name)}' appears twice "
                f"(columns {first_seen[column_name]} and {column})"
            )
        first_seen[column_name] = column
    return names


def require_same_header(label: str, names: list[str], first_label: str, first_names: list[str]) -> None:
    """Refuse a file of a source whose column names (or their order) are not the first file's."""
    if names != first_names:
        raise DataError(
            f"{shown(label)}: its header is {names_shown(names)} but "
            f"{shown(first_label)}'s is {names_shown(first_names)}"
        )


def _unquote(text: str) -> str:
    """A header name ``"x"`` -> ``x``: one pair of surrounding double quotes removed, then spaces."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].strip()
    return text


# --- rows ---------------------------------------------------------------------------
