"""What every command reads: EXPR, --at and --data, and the checks on them.

In: raw option strings. Out: parsed values, or an ExprgradError that the
group turns into one `error:` line and an exit code. No math here.
Every input is read once and bounded (exprgrad.fitting.reading): standard input
goes to the one input that names it ('-'), a second is refused. --data's
--sep and --decimal come from one decorator, ``data_options``, that every
command reading data applies.
"""

from __future__ import annotations

import functools
import json
import locale
import math
import sys
from dataclasses import dataclass

import click

from .. import graph
from ..errors import EvaluationError, OptionError
from ..fitting.data import load_csv, require_columns
from ..fitting.families import axes_of, family_layout
from ..fitting.reading import read_text
from ..fitting.reading import shown as escaped
from ..fitting.sources import load as load_source
from ..fitting.sources import read_columns, terminal_progress
from ..function import parse
from ..indexing import presumed_column
from ..ops import CONSTANTS
from ..selection import fill_families
from .output import format_number, warn

# The most an expression file, standard input or an --at file may hold.
MAX_EXPR_BYTES = 8 << 20


def read_expr(expr: str) -> str:
    """EXPR as given: the text itself, '-' for standard input, '@path' for a file.

    Standard input and files are read once, in at most MAX_EXPR_BYTES; a
    byte-order mark at the start is dropped.
    """
    if expr == "-":
        return read_stdin("EXPR '-'")
    if expr.startswith("@"):
        return _read_once(expr[1:], "expression file", lambda path: _read_small(path, "expression file"))
    return expr


def read_stdin(who: str, *, binary: bool = False):
    """Standard input, for the one input that names it ('-'): its text, or with
    ``binary`` the stream itself. A second input asking for it is refused."""
    meta = _run_meta()
    first = meta.get("exprgrad.stdin")
    if first is not None and first != who:
        raise OptionError(f"{who} and {first} cannot both read standard input: give one of them a file")
    meta["exprgrad.stdin"] = who
    if not binary and "exprgrad.stdin.text" in meta:
        return meta["exprgrad.stdin.text"]  # the same input asked for again
    if sys.stdin is None:  # started with standard input closed
        raise OptionError(f"{who} reads standard input, but it is closed")
    stream = getattr(sys.stdin, "buffer", sys.stdin)  # bytes: the reader checks the encoding
    if binary:
        return stream
    encoding = getattr(sys.stdin, "encoding", None) or locale.getpreferredencoding(False)
    text = read_text(
        stream,
        max_bytes=MAX_EXPR_BYTES,
        what="standard input",
        error=OptionError,
        encoding=encoding,
        label="",
    )
    meta["exprgrad.stdin.text"] = text
    return text


def _run_meta() -> dict:
    """State shared by one command run (click's context), or a throwaway dict outside one."""
    context = click.get_current_context(silent=True)
    return context.find_root().meta if context is not None else {}


def _read_once(path: str, what: str, reader):
    """``reader(path)``, called once per path in a command run: a pipe cannot be read twice."""
    cache = _run_meta().setdefault("exprgrad.files", {})
    key = (what, path)
    if key not in cache:
        cache[key] = reader(path)
    return cache[key]


def shown(text: str) -> str:
    """``text`` for a one-line message, control characters escaped."""
    return escaped(text)


def _read_small(path: str, what: str) -> str:
    return read_text(path, max_bytes=MAX_EXPR_BYTES, what=what, error=OptionError)


def parse_bindings(specs: tuple[str, ...] | str | None, option: str = "--at") -> dict[str, float]:
    """'a=1,b=2' (option given once or several times) -> {'a': 1.0, 'b': 2.0}.

    Values are numbers (1, -0.5, 1e-3, inf is refused) or the constants pi and e.
    A spec '@result.json' gives the "params" of a saved fit result; a name=value
    overrides what a file gives, whatever the order, but a name given twice as
    name=value is refused. A family name (w=0 for w[0], w[1], ...) is kept as
    given: check_bindings fills in its members. ``w=@values.json`` gives a
    family's values from a file: a JSON list (nested lists for W[k,j]), or an
    object label -> value; check_bindings checks them against the family.
    """
    if not specs:
        return {}
    if isinstance(specs, str):
        specs = (specs,)
    from_files: dict[str, float] = {}
    bindings: dict[str, float] = {}
    for spec in specs:
        if spec.startswith("@"):
            from_files.update(_read_once(spec[1:], option, lambda path: read_params_file(path, option)))
            continue
        for item in _split_top_level(spec):
            name, sep, text = item.partition("=")
            name, text = name.strip(), text.strip()
            if not sep or not name or not text:
                raise OptionError(f"{option}: expected name=value pairs like a=1,b=2, got '{shown(item)}'")
            if text.startswith("@"):
                value = _read_once(
                    text[1:],
                    f"{option} {name}=",
                    lambda path, name=name: read_values_file(path, name, option),
                )
            else:
                value = _parse_number(text, f"{option} {shown(name)}")
            if name in bindings:
                raise OptionError(
                    f"{option} {shown(name)}: given twice ({shown_value(bindings[name])} and "
                    f"{shown_value(value)}); give each name once"
                )
            bindings[name] = value
    return {**from_files, **bindings}


def _read_json(path: str, where: str, too_deep: str):
    """The JSON document in the file at ``path``, read bounded; errors begin with ``where``."""
    try:
        text = read_text(path, max_bytes=MAX_EXPR_BYTES, what="the file", error=OptionError, label="")
    except OptionError as exc:
        raise OptionError(f"{where}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OptionError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise OptionError(f"{where}: {too_deep}") from None


def read_values_file(path: str, name: str, option: str = "--at"):
    """A family's values from JSON: a list of numbers (nested lists for several
    axes) or an object label -> number, as read (check_bindings checks them)."""
    where = f"{option} {shown(name)}=@{shown(path)}"
    document = _read_json(path, where, "nested too deeply")
    if isinstance(document, dict):
        return {
            str(label): _json_number(value, f"{where}: {shown(str(label))}")
            for label, value in document.items()
        }
    if isinstance(document, list):
        return _json_numbers(document, where)
    raise OptionError(f"{where}: expected a JSON list of numbers or an object label -> number")


def _json_numbers(values: list, where: str) -> list:
    out = []
    for i, value in enumerate(values):
        if isinstance(value, list):
            out.append(_json_numbers(value, where))
        else:
            out.append(_json_number(value, f"{where}: entry {i + 1}"))
    return out


def _json_number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OptionError(f"{what} is not a number")
    if not math.isfinite(value):
        raise OptionError(f"{what} is not a finite number")
    return float(value)


def shown_value(value) -> str:
    """A binding as a message shows it: a number, or a family's values in short."""
    if isinstance(value, (list, dict)):
        return f"[{len(value)} values]"
    return format_number(value)


def split_random(specs: tuple[str, ...]) -> tuple[tuple[str, ...], str | None]:
    """--init's specs without its 'random' or 'random:SEED' item, and that item
    (None without one; given twice it is refused)."""
    kept, chosen = [], None
    for spec in specs:
        if spec.startswith("@"):
            kept.append(spec)
            continue
        rest = []
        for item in _split_top_level(spec):
            if item == "random" or item.startswith("random:"):
                if chosen is not None and chosen != item:
                    raise OptionError(f"--init: {shown(chosen)} and {shown(item)}: give one random start")
                chosen = item
            else:
                rest.append(item)
        if rest:
            kept.append(",".join(rest))
    return tuple(kept), chosen


def read_params_file(path: str, option: str = "--at") -> dict[str, float]:
    """The "params" object of a fit result saved as JSON (fit -o, --format json)."""
    where = f"{option} @{shown(path)}"
    document = _read_json(path, where, "not JSON a fit result could be (nested too deeply)")
    params = document.get("params") if isinstance(document, dict) else None
    if not isinstance(params, dict):
        raise OptionError(f'{where}: expected a fit result with a "params" object')
    values = {}
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise OptionError(f"{where}: params.{shown(name)} is not a number")
        if not math.isfinite(value):
            raise OptionError(f"{where}: params.{shown(name)} is not a finite number")
        values[name] = float(value)
    return values


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


def _parse_number(text: str, what: str) -> float:
    """--at's value: a number, or a named constant of the registry (pi, e), with or without '-'."""
    name = text.removeprefix("-")
    if name in CONSTANTS:
        return -CONSTANTS[name] if text.startswith("-") else CONSTANTS[name]
    try:
        value = float(text)
    except ValueError:
        raise OptionError(f"{what}: '{shown(text)}' is not a number") from None
    if not math.isfinite(value):
        raise OptionError(f"{what}: '{shown(text)}' is not a finite number")
    return value


# --sep values -> the separator character.
SEPARATOR_NAMES = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t"}


@dataclass(frozen=True)
class DataSource:
    """Data as the command line names it: a CSV or Parquet file, a glob or folder
    of them (exprgrad.fitting.sources), or '-'; and how to read it."""

    path: str
    sep: str | None = None
    decimal: str = "."

    def __str__(self) -> str:
        return self.path


def _separator(ctx, param, value):
    if value is None:
        return None
    if value.lower() in SEPARATOR_NAMES:
        return SEPARATOR_NAMES[value.lower()]
    raise click.BadParameter(f"'{shown(value)}' is not one of ',', ';', 'tab'", ctx=ctx, param=param)


def data_options(command):
    """--sep and --decimal for a command's data file (its ``data`` argument or
    option), which the command then receives as a DataSource for load_data."""

    @functools.wraps(command)
    def run(*args, sep=None, decimal=".", **kwargs):
        if sep == decimal:
            raise OptionError(
                "--sep , and --decimal , cannot go together: with decimal commas, cells are "
                "separated by ';' or tabs"
            )
        if kwargs.get("data") is not None:
            kwargs["data"] = DataSource(str(kwargs["data"]), sep, decimal)
        elif sep is not None or decimal != ".":
            warn("--sep and --decimal are for a data file; there is none")
        return command(*args, **kwargs)

    run = click.option(
        "--decimal",
        type=click.Choice([".", ","]),
        default=".",
        show_default=True,
        help="The data file's decimal mark: 1.5, or 1,5 with --decimal , (cells then "
        "separated by ; or tabs).",
    )(run)
    run = click.option(
        "--sep",
        callback=_separator,
        metavar="[,|;|tab]",
        help="The data file's cell separator (default: the one its header and first rows use).",
    )(run)
    # Shown right after --data in --help (click lists these in reverse).
    params = run.__click_params__
    mine = params[-2:]
    del params[-2:]
    at = next((i for i, p in enumerate(params) if p.name == "data" and isinstance(p, click.Option)), 0)
    params[at:at] = mine
    return run


def load_data(source, allow_nan: bool = False):
    """The Dataset of --data or DATA (None without one): a source (a file, a glob
    or a folder, sources.load), or '-' for standard input, read once in memory.
    A large source is deferred: build_function reads the columns it needs."""
    if source is None:
        return None
    if not isinstance(source, DataSource):
        source = DataSource(str(source))
    options = {"allow_nonfinite": bool(allow_nan), "sep": source.sep, "decimal": source.decimal}
    if source.path == "-":
        return load_csv(read_stdin("--data -", binary=True), **options, label="<stdin>")
    return load_source(source.path, **options, progress=terminal_progress(), deferred=True)


def build_function(expr: str, dataset=None):
    """Parse EXPR (text, '-' or '@path'), with the data file's header naming the columns;
    returns the Function and the Dataset with the columns it reads (a large
    source is read only now, only those columns)."""
    function = parse(read_expr(expr), columns=None if dataset is None else dataset.names)
    if dataset is not None:
        dataset = read_columns(dataset, function.data_columns, progress=terminal_progress())
    return function, dataset


def check_bindings(function, bindings: dict[str, float], dataset) -> dict:
    """The data columns for a run, after checking every parameter has a value.

    A family name in ``bindings`` (w=0, the function using w[0], w[1], ...) is
    replaced, in place, by each of its members that has no value of its own.
    A missing name that looks like data (x, y, x1) is reported as a column the
    file lacks; any other as a parameter to give with --at. A column the
    function reads must hold numbers (a text column it does not read is fine).
    """
    if dataset is not None:
        clashing = [name for name in bindings if name in dataset.names]
        if clashing:
            raise OptionError(
                f"--at {shown(clashing[0])}: '{shown(clashing[0])}' is a column of {shown(dataset.path)}; "
                "a name is either data or a parameter, not both"
            )
    family_columns = _family_values(function, bindings)
    fill_families(function.params, bindings)
    unused = [name for name in bindings if name not in function.params and name not in function.columns]
    if unused:
        warn("--at gives " + ", ".join(f"'{shown(u)}'" for u in unused) + ", which the function does not use")
    missing = [p for p in function.params if p not in bindings]
    if dataset is not None:
        looks_like_data = [m for m in missing if presumed_column(m)]
        if looks_like_data:
            require_columns(dataset, looks_like_data)
    if missing:
        names = ", ".join(f"'{m}'" for m in missing)
        example = ",".join(f"{m}=1" for m in missing)
        raise EvaluationError(f"no value given for {names}: give it with --at {example}")
    if dataset is None:
        return {}
    needed = [c for c in function.columns if c not in bindings and c not in family_columns]
    needed += [c for family in family_columns.values() for c in family]
    require_columns(dataset, needed)
    if not dataset.columns and dataset.problems:
        # The rows are counted from the numeric columns; without one, sum(1) would say 1.
        require_columns(dataset, dataset.names)
    columns = dict(dataset.columns)
    for name, family in family_columns.items():
        columns[name] = [columns[c] for c in family]  # a data family: its columns in label order
    return columns


def _family_values(function, bindings: dict) -> dict[str, tuple[str, ...]]:
    """Give each parameter family of ``function`` its values as an array in its written
    axes (in place: ``w=0.1`` on every member, a list or label -> value object from
    ``w=@file``, members ``w[3]=1`` over that); returns each data family's CSV columns."""
    variables = graph.variables([function.output])
    if not any(axes_of(v) for v in variables):
        return {}
    given = {name: value for name, value in bindings.items() if isinstance(value, (list, dict))}
    layout = family_layout([function], variables, given=given)
    for name, columns in layout.columns.items():
        if name in bindings or any(c in bindings for c in columns):
            given_name = name if name in bindings else next(c for c in columns if c in bindings)
            raise OptionError(
                f"--at {shown(given_name)}: {name}[...] is a data family (the columns "
                f"{columns[0]}..{columns[-1]}); a name is either data or a parameter, not both"
            )
    for block in layout.members.blocks:
        if not block.is_family:
            continue
        members = {m: bindings.pop(m) for m in block.member_names() if m in bindings}
        if block.name not in bindings:
            if not members:
                continue  # missing: reported with the other parameters
            if len(members) < block.size:
                absent = [m for m in block.member_names() if m not in members]
                raise OptionError(
                    f"--at gives {len(members)} of the {block.size} members of {block.written()}; "
                    f"no value for {absent[0]}: give the family with --at {block.name}=0.1 or "
                    f"--at {block.name}=@values.json"
                )
            bindings[block.name] = {m[len(block.name) + 1 : -1]: v for m, v in members.items()}
            members = {}
        try:
            array = layout.members.array(block.name, bindings[block.name], layout.origins)
        except OptionError as exc:
            raise OptionError(f"--at {exc}") from None
        flat = array.reshape(-1).copy()
        for i, member in enumerate(block.member_names()):
            if member in members:
                flat[i] = members[member]
        bindings[block.name] = flat.reshape(block.shape)
    return layout.columns


def per_member(function, names, nodes, values, bindings, dataset) -> tuple[list[str], list]:
    """The derivatives with a family's split per member (w -> w[1], w[2], ...), as a
    fit reports them; a per-row derivative gives each member its column of rows."""
    if not any(len(getattr(node, "indices", ())) > node.per_row for node in nodes):
        return list(names), list(values)
    given = {name: value.tolist() for name, value in bindings.items() if hasattr(value, "tolist")}
    layout = family_layout([function], graph.variables([function.output]), given=given)
    blocks = {block.name: block for block in layout.members.blocks if block.is_family}
    out_names, out_values = [], []
    for name, node, value in zip(names, nodes, values):
        block = blocks.get(name)
        if block is None:
            out_names.append(name)
            out_values.append(value)
            continue
        axes = [index.name for index in node.indices]
        if node.per_row or function.output.per_row:
            rows = dataset.rows if dataset is not None else 1
            columns = layout.members.jacobian_columns(block, value, axes, rows)
            out_values += list(columns.T)
        else:
            out_values += list(layout.members.gradient(block, value, axes))
        out_names += block.member_names()
    return out_names, out_values
