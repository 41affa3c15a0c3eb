"""What every command reads: EXPR, --at and --data, and the checks on them.

In: raw option strings. Out: parsed values, or an ExprgradError that the
group turns into one `error:` line and an exit code. No math here.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from ..errors import EvaluationError, OptionError
from .output import reason, warn

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
            raise OptionError(f"cannot read expression file '{path}': {reason(exc)}") from None
    return expr



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
