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
import anything from exprgrad but ``errors`` and ``reading`` (the bounded read).

Speed: the common, clean file is read by ``np.loadtxt`` (numpy's C parser)
from the bytes already in memory. Only when that fails, or finds a value that
is not finite, does a slower scan split the rows and read each column on its
own; it is the reference: it either names the first bad line or cell, or
returns the same numbers.
"""

from __future__ import annotations

import io
import math
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from exprgrad.errors import DataError, Mention, OptionError
from exprgrad.fitting.reading import label_of, read_bytes, shown

__all__ = ["MAX_CSV_BYTES", "SEPARATORS", "Dataset", "load_csv", "require_columns"]

# The most a data file may hold; a larger one is refused before it is read.
MAX_CSV_BYTES = 1 << 30
# Separator -> its name in messages; sniffed in this order of preference.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
# Cells and names longer than this are shortened in messages, and a list of
# names stops after so many, so one line stays a readable line.
_SHOWN_CELL_CHARS = 40
_SHOWN_NAME_CHARS = 80
_SHOWN_NAMES = 20
# Data lines the separator sniffer looks at after the header.
_SNIFF_LINES = 20
# The arguments the messages about cells name, as hints: a cell problem's DataError carries them.
DECIMAL_COMMA, ALLOW_NONFINITE = Mention("decimal", ","), Mention("allow_nonfinite", True)
HINTS = (DECIMAL_COMMA, ALLOW_NONFINITE)
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*")


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
    """

    path: str
    columns: dict[str, np.ndarray]
    problems: dict[str, str] = field(default_factory=dict)
    header: tuple[str, ...] = ()

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
        object.__setattr__(self, "columns", _Columns(self.columns, self.problems))
        object.__setattr__(self, "problems", dict(self.problems))

    @property
    def rows(self) -> int:
        """The number of data rows (every column has this many values)."""
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
    _check_options(sep, decimal, allow_nonfinite, max_bytes)
    label = label_of(path) if label is None else str(label)
    data = read_bytes(path, label, max_bytes=max_bytes, what="data file", error=DataError)
    if b"\r" in data:  # numpy splits a stream on \n only
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    header_line, header, body = _find_header(data, label)
    if sep is None:
        sep = _sniff(header, data, body, decimal)
    names = _parse_header(label, header_line, header, sep)
    table = _load_fast(data, body, len(names), sep, decimal, allow_nonfinite)
    problems: dict[str, str] = {}
    if table is None:
        text = data[body:].decode("utf-8")
        del data
        columns, problems = _scan(label, header_line, text, names, sep, decimal, allow_nonfinite)
    else:
        columns = {name: table[:, index] for index, name in enumerate(names)}
    for name, column in columns.items():
        column = np.ascontiguousarray(column, dtype=np.float64)
        column.flags.writeable = False
        columns[name] = column
    return Dataset(path=label, columns=columns, problems=problems, header=tuple(names))


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
        quoted = ", ".join(f"'{_name(str(n))}'" for n in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise DataError(
            f"{what} needs {noun} {quoted}, which {shown(dataset.path)} lacks "
            f"(it has: {_names(dataset.names)}){_separator_hint(dataset)}",
            mentions=(what,) if isinstance(what, Mention) else (),
        )
    for name in wanted:
        if name in dataset.problems:
            raise DataError(dataset.problems[name], mentions=HINTS)


def _name(name: str) -> str:
    return shown(name, _SHOWN_NAME_CHARS)


def _names(names) -> str:
    """'x, y, z', or the first _SHOWN_NAMES names and how many there are."""
    listed = ", ".join(_name(n) for n in names[:_SHOWN_NAMES])
    return listed if len(names) <= _SHOWN_NAMES else f"{listed}, ... ({len(names)} columns)"


def _separator_hint(dataset: Dataset) -> str:
    """A header read as one name that holds a separator: the separator given is likely wrong."""
    if len(dataset.names) == 1:
        inside = [SEPARATORS[s] for s in SEPARATORS if s in dataset.names[0]]
        if inside:
            return f"; its header is one name with a {inside[0]} in it: are the cells separated by something else?"
    return ""


def _check_options(sep, decimal, allow_nonfinite, max_bytes) -> None:
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
                f"{shown(label)}:{line}: column name '{_name(column_name)}' appears twice "
                f"(columns {first_seen[column_name]} and {column})"
            )
        first_seen[column_name] = column
    return names


def _unquote(text: str) -> str:
    """A header name ``"x"`` -> ``x``: one pair of surrounding double quotes removed, then spaces."""
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].strip()
    return text


# --- rows ---------------------------------------------------------------------------


def _load_fast(data: bytes, body: int, width: int, sep: str, decimal: str, allow_nonfinite: bool):
    """The table via np.loadtxt, or None when the exact scan must decide."""
    if decimal == ",":
        if b"." in data[body:]:
            return None  # a decimal point where commas were promised: the scan says where
        data = data[:body] + data[body:].replace(b",", b".")
    stream = io.BytesIO(data)
    stream.seek(body)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data": the scan says it better
            table = np.loadtxt(
                stream, dtype=np.float64, delimiter=sep, comments=None, encoding="utf-8", ndmin=2
            )
    except ValueError:  # UnicodeDecodeError is a ValueError
        return None
    if table.shape[0] == 0 or table.shape[1] != width:
        return None
    if not allow_nonfinite and not np.isfinite(table).all():
        return None
    return table


def _scan(label, header_line, text, names, sep, decimal, allow_nonfinite):
    """Rows checked for width; the columns read together in C where they can be, else one by one.

    Returns (numeric columns, {column name: the problem of a column that is not}).
    """
    width = len(names)
    lines = text.split("\n")
    del text
    # Blank lines are among the lines of the wrong width, unless a row of one cell
    # or a whitespace separator lets a blank line look like a row.
    if width == 1 or sep.isspace():
        suspects = range(len(lines))
    else:
        suspects = [k for k, line in enumerate(lines) if line.count(sep) != width - 1]
    blank = set()
    for k in suspects:
        if not lines[k].strip():
            blank.add(k)
        elif lines[k].count(sep) != width - 1:
            raise DataError(
                _width_problem(label, header_line + 1 + k, lines[k].split(sep), names, sep, decimal),
                mentions=HINTS,
            )
    kept = [k for k in range(len(lines)) if k not in blank]
    numbers = [header_line + 1 + k for k in kept]
    if blank:
        lines = [lines[k] for k in kept]
    if not lines:
        raise DataError(f"data file '{shown(label)}' has a header but no data rows")
    columns = _numeric_columns(lines, names, sep, decimal, allow_nonfinite)
    problems: dict[str, str] = {}
    first = lines[0].split(sep)
    unresolved = []
    for index, column_name in enumerate(names):
        if column_name in columns:
            continue
        if _to_float(first[index], decimal) is None:  # the first row says it already
            problems[column_name] = _cell_problem(
                label, numbers, index + 1, column_name, first[index : index + 1], decimal, allow_nonfinite
            )
        else:
            unresolved.append(index)
    if unresolved:
        rows = [line.split(sep) for line in lines]
        for index in unresolved:
            column_name, cells = names[index], [row[index] for row in rows]
            values = _column(cells, decimal, allow_nonfinite)
            if values is None:
                problems[column_name] = _cell_problem(
                    label, numbers, index + 1, column_name, cells, decimal, allow_nonfinite
                )
            else:
                columns[column_name] = values
    return {name: columns[name] for name in names if name in columns}, problems


def _numeric_columns(lines, names, sep, decimal, allow_nonfinite) -> dict[str, np.ndarray]:
    """The columns whose first cell is a number, read by np.loadtxt if every one of them reads; else {}."""
    first = lines[0].split(sep)
    candidates = [i for i, cell in enumerate(first) if _to_float(cell, decimal) is not None]
    if not candidates or decimal != ".":
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = np.loadtxt(
                lines, dtype=np.float64, delimiter=sep, comments=None, usecols=candidates, ndmin=2
            )
    except ValueError:
        return {}
    if table.shape != (len(lines), len(candidates)) or not (allow_nonfinite or np.isfinite(table).all()):
        return {}
    return {names[i]: table[:, k] for k, i in enumerate(candidates)}


def _width_problem(label, line, cells, names, sep, decimal) -> str:
    separated = "" if sep == "," else f" separated by {SEPARATORS[sep]}s"
    message = (
        f"{shown(label)}:{line}: expected {len(names)} cells ({_names(names)}){separated}, found {len(cells)}"
    )
    if (
        sep == ","
        and decimal == "."
        and len(cells) == 2 * len(names)
        and all(c.strip().isdigit() for c in cells)
    ):
        message += (
            f" (if the numbers have decimal commas, separate the cells with ';' and pass {DECIMAL_COMMA})"
        )
    return message


def _column(cells: tuple[str, ...], decimal: str, allow_nonfinite: bool) -> np.ndarray | None:
    """A column's numbers, or None when a cell is not a number (or not finite, unless allowed)."""
    if decimal == ",":
        joined = "\n".join(cells)
        if "." in joined:
            return None
        cells = joined.replace(",", ".").split("\n")
    try:
        values = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
    except ValueError:
        return None
    # float() also takes '1_000' and non-ASCII digits, which np.loadtxt refuses
    # (both take surrounding whitespace, a no-break space too).
    joined = "".join(cells)
    if "_" in joined or (not joined.isascii() and not "".join(c.strip() for c in cells).isascii()):
        return None
    if not allow_nonfinite and not np.isfinite(values).all():
        return None
    return values


def _cell_problem(label, numbers, column, column_name, cells, decimal, allow_nonfinite) -> str:
    """The message for the first cell of a column that is not a (finite) number."""
    for line, raw in zip(numbers, cells):
        value = _to_float(raw, decimal)
        if value is not None and (allow_nonfinite or math.isfinite(value)):
            continue
        text = raw.strip()
        where = f"{shown(label)}:{line}:{column}"
        name = _name(column_name)
        if not text:
            return f"{where}: empty cell in column '{name}'"
        cell = shown(text, _SHOWN_CELL_CHARS)
        if value is None:
            message = f"{where}: cannot read '{cell}' as a number in column '{name}'"
            if decimal == "." and _DECIMAL_COMMA.fullmatch(text):
                message += f" (it looks like a decimal comma: pass {DECIMAL_COMMA})"
            elif decimal == "," and "." in text:
                message += f" (with {DECIMAL_COMMA} a number is written 1,5)"
            return message
        return (
            f"{where}: '{cell}' in column '{name}' is not a finite number (pass {ALLOW_NONFINITE} to keep it)"
        )
    return f"{shown(label)}: column '{_name(column_name)}' is not a column of numbers"  # pragma: no cover


def _to_float(text: str, decimal: str = ".") -> float | None:
    """``float(text)``, or None if it is not a number np.loadtxt would read either."""
    text = text.strip()
    if "_" in text or not text.isascii():
        return None
    if decimal == ",":
        if "." in text:
            return None
        text = text.replace(",", ".")
    try:
        return float(text)
    except ValueError:
        return None
