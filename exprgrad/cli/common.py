"""What every command shares: reading EXPR, --at and --data, atomic writes, errors.

In: raw option strings. Out: parsed values, or an ExprgradError that the
group turns into one `error:` line and an exit code. No math here.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path

import click
import numpy as np

from ..errors import EvaluationError, ExprgradError, OptionError

# Every command takes EXPR as its first argument; these let "-x^2" through
# as the expression instead of reading it as options.
EXPR_SETTINGS = {"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}


def read_expr(expr: str) -> str:
    """EXPR as given: the text itself, '-' for standard input, '@path' for a file."""
    if expr == "-":
        return sys.stdin.read()
    if expr.startswith("@"):
        path = expr[1:]
        try:
            return Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise OptionError(f"cannot read expression file '{path}': no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise OptionError(f"cannot read expression file '{path}': {_reason(exc)}") from None
    return expr


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def parse_bindings(specs: tuple[str, ...] | str | None, option: str = "--at") -> dict[str, float]:
    """'a=1,b=2' (option given once or several times) -> {'a': 1.0, 'b': 2.0}.

    Values are numbers (1, -0.5, 1e-3, inf is refused) or the constants pi and e.
    """
    if not specs:
        return {}
    if isinstance(specs, str):
        specs = (specs,)
    bindings: dict[str, float] = {}
    for spec in specs:
        for item in _split_top_level(spec):
            name, sep, text = item.partition("=")
            name, text = name.strip(), text.strip()
            if not sep or not name or not text:
                raise OptionError(f"{option}: expected name=value pairs like a=1,b=2, got '{item}'")
            bindings[name] = _number(text, f"{option} {name}")
    return bindings


def _split_top_level(spec: str) -> list[str]:
    # theta[1]=2 has no comma inside brackets, but be safe: split on commas outside [].
    items, depth, current = [], 0, []
    for char in spec:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return [i for i in (item.strip() for item in items) if i]


def _number(text: str, what: str) -> float:
    constants = {"pi": math.pi, "e": math.e, "-pi": -math.pi, "-e": -math.e}
    if text in constants:
        return constants[text]
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{what}: '{text}' is not a number") from None
    if not math.isfinite(value):
        raise OptionError(f"{what}: '{text}' is not a finite number")
    return value


def load_data(path: str | None, allow_nan: bool = False):
    """The Dataset of --data (None without one)."""
    if path is None:
        return None
    from ..fit.data import load_csv

    return load_csv(path, allow_nonfinite=allow_nan)


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
        raise WriteError(f"cannot write '{path}': {_reason(exc)}") from None


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


def build_function(expr: str, dataset=None):
    """Parse EXPR (text, '-' or '@path'), with the data file's header naming the columns."""
    from ..function import parse

    return parse(read_expr(expr), columns=None if dataset is None else dataset.names)


def check_bindings(function, bindings: dict[str, float], dataset) -> dict:
    """The data columns for a run, after checking every parameter has a value.

    A missing name that looks like data (x, y, x1) is reported as a column the
    file lacks; any other as a parameter to give with --at.
    """
    from ..lower import presumed_column

    if dataset is not None:
        clashing = [name for name in bindings if name in dataset.names]
        if clashing:
            raise OptionError(
                f"--at {clashing[0]}: '{clashing[0]}' is a column of {dataset.path}; "
                "a name is either data or a parameter, not both"
            )
    unused = [name for name in bindings if name not in function.params and name not in function.columns]
    if unused:
        warn("--at gives " + ", ".join(f"'{u}'" for u in unused) + ", which the function does not use")
    missing = [p for p in function.params if p not in bindings]
    if dataset is not None:
        looks_like_data = [m for m in missing if presumed_column(m)]
        if looks_like_data:
            from ..fit.data import require_columns

            require_columns(dataset, looks_like_data)
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        example = ",".join(f"{m}=1" for m in missing)
        raise EvaluationError(f"no value given for {names}: give it with --at {example}")
    return dict(dataset.columns) if dataset is not None else {}


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
