"""What every command writes: whole-or-nothing files, numbers, labels, warnings.

In: results computed by the library. Out: text and files. No math here.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from ..errors import ExprgradError, OptionError


def reason(exc: BaseException) -> str:
    """The operating system's words for a failed read or write."""
    return getattr(exc, "strerror", None) or str(exc)

def check_output_folder(path: str | None) -> None:
    """Refuse an output path whose folder does not exist, before any work is done."""
    if path is None:
        return
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OptionError(f"cannot write '{path}': folder '{directory}' does not exist")


def write_atomically(path: str, content: str | bytes) -> None:
    """Write ``content`` to ``path`` whole or not at all (temporary file, then rename)."""
    check_output_folder(path)
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    data = content.encode("utf-8") if isinstance(content, str) else content
    temporary = None
    try:
        # Inside the try: an unwritable folder fails here, at the temporary file.
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, target)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


class WriteError(ExprgradError):
    """The output could not be written (exit 1: not the user's input)."""

    exit_code = 1


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float (integers without '.0')."""
    value = float(value)
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


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
    if per_row and dataset is not None and np.ndim(value) == 0:
        return np.full(dataset.rows, float(value))
    return value


def json_value(value):
    """A float, or a list of floats for a per-row result (NaN and inf as null)."""
    if isinstance(value, np.ndarray):
        return [float(v) if np.isfinite(v) else None for v in value.tolist()]
    return float(value) if np.isfinite(value) else None


def text_lines(label: str, value) -> list[str]:
    """'label = v' for one value; the label, then one value a line, for a per-row result."""
    if isinstance(value, np.ndarray):
        return ([label] if label else []) + [format_number(v) for v in value.tolist()]
    return [f"{label} = {format_number(value)}" if label else format_number(value)]
