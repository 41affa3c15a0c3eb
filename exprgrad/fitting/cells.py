"""The body of a CSV file (the rows below its header) to numeric columns, and what is wrong with a cell.

In: the file's bytes (or text) after the header, the column names, the
separator and decimal mark. Out: one float64 array per column whose cells
are all numbers; for any other column, the message that points at its first
bad cell (``file:line:column``). ``read_table`` is the fast path
(``np.loadtxt``); ``scan_rows`` is the reference, which either names the first
bad line or cell, or returns the same numbers.
Must not: find the header, sniff the separator, or know the expression language.
"""

from __future__ import annotations

import io
import math
import re
import warnings

import numpy as np

from exprgrad.errors import DataError, Mention
from exprgrad.fitting.reading import shown

# Separator -> its name in messages; sniffed in this order of preference.
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
# The arguments the messages about cells name, as hints: a cell problem's DataError carries them.
DECIMAL_COMMA, ALLOW_NONFINITE = Mention("decimal", ","), Mention("allow_nonfinite", True)
HINTS = (DECIMAL_COMMA, ALLOW_NONFINITE)
# Cells and names longer than this are shortened in messages, and a list of
# names stops after so many, so one line stays a readable line.
_SHOWN_CELL_CHARS = 40
_SHOWN_NAME_CHARS = 80
_SHOWN_NAMES = 20
_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d*,\d+(?:[eE][+-]?\d+)?\s*")


def read_table(data: bytes, body: int, width: int, sep: str, decimal: str, allow_nonfinite: bool):
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


def scan_rows(label, header_line, text, names, sep, decimal, allow_nonfinite):
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
    message = f"{shown(label)}:{line}: expected {len(names)} cells ({names_shown(names)}){separated}, found {len(cells)}"
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
        name = name_shown(column_name)
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
    return (
        f"{shown(label)}: column '{name_shown(column_name)}' is not a column of numbers"  # pragma: no cover
    )


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


def name_shown(name: str) -> str:
    return shown(name, _SHOWN_NAME_CHARS)


def names_shown(names) -> str:
    """'x, y, z', or the first _SHOWN_NAMES names and how many there are."""
    listed = ", ".join(name_shown(n) for n in names[:_SHOWN_NAMES])
    return listed if len(names) <= _SHOWN_NAMES else f"{listed}, ... ({len(names)} columns)"
