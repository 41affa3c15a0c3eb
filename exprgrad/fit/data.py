"""CSV data: a file of numbers in, one float64 column per header name out.

In: the path of a UTF-8 text file (a byte-order mark is allowed) whose first
non-blank line names the columns, separated by commas, followed by rows of
numbers, one cell per column. Line endings may be LF, CRLF or CR; the last line
may or may not end with one. Lines that are empty or hold only whitespace are
skipped wherever they appear. There is no quoting: a comma always separates
cells, and a cell in quotes is not a number. Names are kept exactly as written
(surrounding whitespace removed), except that one pair of double quotes around
a name is dropped, as R's write.csv quotes the header of a numeric table.

Out: a frozen ``Dataset`` mapping each name, in header order, to a read-only,
C-contiguous float64 array, and ``require_columns`` to check that a file has
the columns an expression reads.

Every problem with the file is a ``DataError`` whose one-line message says
where it is (``file:line`` or ``file:line:column``, with physical line numbers
and 1-based cell indices) and what was found there. This module must not
print, exit, know the expression language, or import anything from exprgrad
but ``errors``.

Speed: the common, clean file is read by ``np.loadtxt`` (numpy's C parser).
Only when that fails, or finds a value that is not finite, does a slower
Python scan read the file again, line by line; it is the reference: it either
names the first bad line or cell, or returns the same numbers.
"""

from __future__ import annotations

import codecs
import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from exprgrad.errors import DataError

__all__ = ["Dataset", "load_csv", "require_columns"]

# Cells longer than this are shortened in messages, so one line stays one line.
_SHOWN_CELL_CHARS = 40


@dataclass(frozen=True)
class Dataset:
    """The columns of one CSV file.

    Attributes:
        path: the file the data came from, as given to ``load_csv``.
        columns: column name -> read-only, C-contiguous float64 array, in the
            order of the header; every array has the same length.
    """

    path: str
    columns: dict[str, np.ndarray]

    @property
    def rows(self) -> int:
        """The number of data rows (every column has this many values)."""
        return len(next(iter(self.columns.values()), ()))

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in header order."""
        return tuple(self.columns)


def load_csv(path: str | os.PathLike[str], *, allow_nonfinite: bool = False) -> Dataset:
    """Read a CSV file of numbers into columns named by its header row.

    The header is the first non-blank line. Blank (empty or whitespace-only)
    lines are skipped everywhere, but positions in messages are physical line
    numbers in the file (line 1 is the file's first line), so they match what
    an editor shows. A cell's position is ``file:line:column`` where column is
    the 1-based index of the cell in its row (not a character offset).

    Cells hold numbers in any syntax numpy's and Python's float parsers share,
    such as ``-3``, ``.11019``, ``10.07E0``, ``1e-3``, with optional
    surrounding spaces; ``nan`` and ``inf`` are refused unless asked for.

    Args:
        path: the CSV file.
        allow_nonfinite: keep ``nan``/``inf`` cells (and numbers too large
            for float64) instead of refusing them.

    Returns:
        The Dataset, one float64 column per header name.

    Raises:
        DataError: the file cannot be read or is not UTF-8; it is empty or has
            no data rows; a column name is empty or repeated; a row has the
            wrong number of cells; a cell is empty, not a number, or (without
            ``allow_nonfinite``) not finite.
    """
    filename = os.fspath(path)
    header_line, header = _read_header(filename)
    names = _parse_header(filename, header_line, header)
    table = _load_fast(filename, header_line, len(names), allow_nonfinite)
    if table is None:
        table = _scan(filename, header_line, names, allow_nonfinite)
    columns = {}
    for index, column_name in enumerate(names):
        column = np.ascontiguousarray(table[:, index], dtype=np.float64)
        column.flags.writeable = False
        columns[column_name] = column
    return Dataset(path=filename, columns=columns)


def require_columns(dataset: Dataset, names: Iterable[str], *, what: str = "the expression") -> None:
    """Check that the dataset has every column in ``names``.

    Args:
        dataset: the loaded data.
        names: the column names that are needed.
        what: who needs them, for the message ("the expression", "--target").

    Raises:
        DataError: naming every missing column, in the order asked for, and
            listing the columns the file has.
    """
    missing = list(dict.fromkeys(n for n in names if n not in dataset.columns))
    if not missing:
        return
    quoted = ", ".join(f"'{n}'" for n in missing)
    noun = "column" if len(missing) == 1 else "columns"
    raise DataError(
        f"{what} needs {noun} {quoted}, which {dataset.path} lacks (it has: {', '.join(dataset.names)})"
    )


def _read_header(path: str) -> tuple[int, str]:
    """The first non-blank line and its 1-based line number."""
    try:
        # Text mode with newline=None splits on \n, \r\n and \r, as np.loadtxt does.
        with open(path, encoding="utf-8-sig") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    return number, line
    except UnicodeDecodeError:
        _read_text(path)  # raises the error with the line of the bad byte
    except OSError as error:
        raise _unreadable(path, error) from None
    raise DataError(f"data file '{path}' is empty: expected a header row naming the columns")


def _parse_header(path: str, line: int, header: str) -> list[str]:
    """Column names from the header line; refuses empty and repeated names."""
    names = [_unquote(cell.strip()) for cell in header.split(",")]
    first_seen: dict[str, int] = {}
    for column, column_name in enumerate(names, start=1):
        if not column_name:
            raise DataError(f"{path}:{line}: column {column} has no name")
        if column_name in first_seen:
            raise DataError(
                f"{path}:{line}: column name '{column_name}' appears twice "
                f"(columns {first_seen[column_name]} and {column})"
            )
        first_seen[column_name] = column
    return names


def _load_fast(path: str, header_line: int, width: int, allow_nonfinite: bool) -> np.ndarray | None:
    """The table via np.loadtxt, or None when the exact scan must decide."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the scan says it better
            table = np.loadtxt(
                path,
                dtype=np.float64,
                delimiter=",",
                comments=None,
                skiprows=header_line,
                encoding="utf-8-sig",
                ndmin=2,
            )
    except (ValueError, OSError):  # UnicodeDecodeError is a ValueError
        return None
    if table.shape[0] == 0 or table.shape[1] != width:
        return None
    if not allow_nonfinite and not np.isfinite(table).all():
        return None
    return table


def _scan(path: str, header_line: int, names: list[str], allow_nonfinite: bool) -> np.ndarray:
    """Read the data rows line by line; the first problem found is raised."""
    lines = _split_lines(_read_text(path))
    width = len(names)
    values: list[float] = []
    for number in range(header_line + 1, len(lines) + 1):
        line = lines[number - 1]
        row = _quick_row(line, width, allow_nonfinite)
        if row is None:
            if not line.strip():
                continue
            row = _checked_row(path, number, line, names, allow_nonfinite)
        values.extend(row)
    if not values:
        raise DataError(f"data file '{path}' has a header but no data rows")
    return np.array(values, dtype=np.float64).reshape(-1, width)


def _quick_row(line: str, width: int, allow_nonfinite: bool) -> list[float] | None:
    """A well-formed row's numbers, or None when ``_checked_row`` must look closer."""
    cells = line.split(",")
    # '_' and non-ASCII text: see _to_float.
    if len(cells) != width or "_" in line or not line.isascii():
        return None
    try:
        row = [float(cell) for cell in cells]
    except ValueError:
        return None
    if not allow_nonfinite and not all(map(math.isfinite, row)):
        return None
    return row


def _checked_row(path: str, line: int, text: str, names: list[str], allow_nonfinite: bool) -> list[float]:
    """A row's numbers, checked cell by cell; raises at the first problem."""
    cells = text.split(",")
    if len(cells) != len(names):
        expected = f"{len(names)} cells ({', '.join(names)})"
        raise DataError(f"{path}:{line}: expected {expected}, found {len(cells)}")
    return [
        _read_cell(path, line, column, names[column - 1], cell.strip(), allow_nonfinite)
        for column, cell in enumerate(cells, start=1)
    ]


def _read_cell(
    path: str, line: int, column: int, column_name: str, text: str, allow_nonfinite: bool
) -> float:
    """One stripped cell as a float, or a DataError pointing at it."""
    where = f"{path}:{line}:{column}"
    if not text:
        raise DataError(f"{where}: empty cell in column '{column_name}'")
    shown = text if len(text) <= _SHOWN_CELL_CHARS else text[: _SHOWN_CELL_CHARS - 3] + "..."
    value = _to_float(text)
    if value is None:
        raise DataError(f"{where}: cannot read '{shown}' as a number in column '{column_name}'")
    if not allow_nonfinite and not math.isfinite(value):
        raise DataError(
            f"{where}: '{shown}' in column '{column_name}' is not a finite number "
            "(pass --allow-nan to keep it)"
        )
    return value


def _unquote(text: str) -> str:
    """A header name ``"x"`` -> ``x``: one pair of surrounding double quotes removed, then spaces."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].strip()
    return text


def _to_float(text: str) -> float | None:
    """``float(text)``, or None if it is not a number np.loadtxt would read either."""
    # float() also takes '1_000' and non-ASCII digits, which np.loadtxt refuses.
    if "_" in text or not text.isascii():
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _read_text(path: str) -> str:
    """The whole file as text, without a byte-order mark."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise _unreadable(path, error) from None
    data = data.removeprefix(codecs.BOM_UTF8)  # so error offsets index this same buffer
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start].decode("utf-8", "replace")
        line = len(_split_lines(before))
        bad = data[error.start]
        raise DataError(
            f"cannot read data file '{path}': it is not UTF-8 text (byte 0x{bad:02x} on line {line})"
        ) from None


def _split_lines(text: str) -> list[str]:
    """Physical lines, ended by \\n, \\r\\n or \\r (as text-mode reading and np.loadtxt count them)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _unreadable(path: str, error: OSError) -> DataError:
    """The DataError for a file that cannot be opened or read."""
    if isinstance(error, FileNotFoundError):
        reason = "no such file"
    elif isinstance(error, IsADirectoryError):
        reason = "it is a directory"
    elif isinstance(error, PermissionError):
        reason = "permission denied"
    else:
        reason = (error.strerror or str(error)).lower()
    return DataError(f"cannot read data file '{path}': {reason}")
