"""How much memory a piece of work would need, checked against what the machine has, before it starts.

In: the sizes of what is about to be allocated: a family's label counts
(``W[k,j]``: k and j), an index's labels, the working arrays of an evaluation
(a ``Schedule``'s nodes, its passes, each index's size and the rows of a
chunk), a p-by-p or n-by-p matrix of a fit.
Out: nothing when it fits; otherwise a ``LimitError`` (exit 2) whose message
says what would need how much, how that is counted, and the memory there is
(``too_large`` returns the message, for lowering to put a caret under it).

The rule: a value is a float64, 8 bytes; a family holds one value per member,
the product of its indices' label counts (``W[k,j]`` with k: 16 and j: 50
labels is 16 x 50 x 8 = 6,400 bytes); an index's labels are kept as numbers,
40 bytes each. An evaluation holds every value without rows whole (a family,
a contraction's result) and, while it sweeps the rows, a chunk of rows of
each live per-row value (the chunk times the labels of its indices) and the
per-row results over every row. Work is refused when its estimate is more
than the memory available: ``MemAvailable`` of /proc/meminfo (the memory the
kernel can give without swapping), else the physical pages free
(``os.sysconf``); the environment variable ``EXPRGRAD_MEMORY_LIMIT``
(``1GiB``, ``512MiB``, ``2GB``, a number of bytes) sets the limit instead.
Without it, work under 64 MiB is not checked (reading the memory available
would cost more than the check saves).
The data already read is not counted: it is in memory already.
Must not: allocate what it estimates, import the backends, or refuse work
when the memory cannot be known (no /proc and no sysconf: every check passes).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence

from .errors import LimitError, Mention, OptionError
from .graph import ROWS
from .kernels import BLOCK_ROWS

VALUE_BYTES = 8  # a float64
LABEL_BYTES = 40  # a label kept as a Python int in a tuple: 8 for the reference, 32 for the int
LIMIT_VARIABLE = "EXPRGRAD_MEMORY_LIMIT"
MEMINFO = "/proc/meminfo"  # Linux: MemAvailable, what can be had without swapping
# Work smaller than this is not checked against the machine (every evaluation
# would read /proc/meminfo, about 50 us); a limit set by the variable always is.
UNCHECKED = 64 << 20

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kib": 1 << 10,
    "kb": 10**3,
    "m": 1 << 20,
    "mib": 1 << 20,
    "mb": 10**6,
    "g": 1 << 30,
    "gib": 1 << 30,
    "gb": 10**9,
    "t": 1 << 40,
    "tib": 1 << 40,
    "tb": 10**12,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?(?:e\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes of a size written ``1GiB``, ``512 MiB``, ``2GB``, ``1e9`` (K, M, G, T alone are binary).

    Raises:
        OptionError: not a size.
    """
    match = _SIZE.match(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if unit is None or float(match.group(1)) * unit < 1:
        raise OptionError(
            f"{LIMIT_VARIABLE} is {text!r}, which is not a size of memory: write it as 1GiB, 512MiB, 2GB "
            "or a number of bytes"
        )
    return int(float(match.group(1)) * unit)


def format_size(size: float) -> str:
    """``37 GiB``, ``3.7 GiB``, ``640 bytes``: binary units, two or more figures."""
    for unit, scale in (
        ("PiB", 1 << 50),
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ):
        if size >= scale:
            value = size / scale
            shown = f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:,.0f}"
            return f"{shown} {unit}"
    return f"{int(size):,} bytes"


def available() -> tuple[int, str] | None:
    """(bytes, what they are) that work may use: the limit set, else the memory available; None when unknown."""
    limit = os.environ.get(LIMIT_VARIABLE, "").strip()
    if limit:
        return parse_size(limit), f"the {format_size(parse_size(limit))} that {LIMIT_VARIABLE} allows"
    found = None
    try:
        with open(MEMINFO, encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        found = None
    if found is None:
        try:
            found = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None
    return found, f"the {format_size(found)} this machine has available"


def family_bytes(counts: Iterable[int]) -> int:
    """The bytes of a family's values: one float64 per member."""
    return math.prod(counts) * VALUE_BYTES


def counted(parts: Sequence[tuple[str, int]], each: int = VALUE_BYTES) -> str:
    """How a size is counted: ``k: 100,000,000 labels x j: 50 labels x 8 bytes``."""
    return " x ".join([*(f"{name}: {count:,} labels" for name, count in parts), f"{each} bytes"])


def too_large(need: int, what: str, how: str = "") -> str | None:
    """The message refusing ``what`` (``the family W[k,j]``) that would need ``need`` bytes; None if it fits."""
    if need <= UNCHECKED and not os.environ.get(LIMIT_VARIABLE, "").strip():
        return None
    room = available()
    if room is None or need <= room[0]:
        return None
    counting = f" ({how})" if how else ""
    return f"{what} would need {format_size(need)}{counting}, more than {room[1]}"


def check(need: int, what: str, how: str = "", hint: str = "", mentions: Sequence[Mention] = ()) -> None:
    """Raise ``LimitError`` when ``what`` would need more than the memory there is.

    ``hint``: what to do instead; ``mentions``: the Python arguments it names.
    """
    message = too_large(need, what, how)
    if message is not None:
        raise LimitError(message + (f"; {hint}" if hint else ""), mentions=mentions)


def family_too_large(name: str, parts: Sequence[tuple[str, int]], rows: int = 1) -> str | None:
    """The message refusing the family ``name`` over ``parts`` ((index, labels), as written), or None.

    ``rows``: the rows of a chunk it is computed over (1 for a family without rows).
    """
    how = counted(parts)
    need = rows * family_bytes(count for _, count in parts)
    written = f"the family {name}[{','.join(index for index, _ in parts)}]"
    return too_large(need, written, f"a chunk of {rows:,} rows x {how}" if rows > 1 else how)


def labels_too_large(index: str, count: int) -> str | None:
    """The message refusing ``count`` labels of ``index`` (a declared range), or None."""
    return too_large(
        count * LABEL_BYTES, f"the {count:,} labels of index {index}", f"{LABEL_BYTES} bytes a label"
    )


def check_matrix(
    rows: int, columns: int, what: str, hint: str = "", mentions: Sequence[Mention] = ()
) -> None:
    """Refuse a rows-by-columns float64 matrix (a Hessian, a Jacobian) that would not fit."""
    check(rows * columns * VALUE_BYTES, what, f"{rows:,} x {columns:,} x {VALUE_BYTES} bytes", hint, mentions)


def _labels_of(node, sizes) -> int:
    return math.prod(sizes.get(i, 1) for i in node.indices if i is not ROWS)


def evaluation_bytes(stages: Iterable, passes: Sequence, sizes, n: int, chunk_of) -> tuple[int, object, int]:
    """(bytes, the node needing the most, its rows): the working memory of an evaluation.

    Args:
        stages: the values computed without rows (nodes), each held whole.
        passes: sweeps over the rows, each with ``nodes`` in order, ``release``
            (per node, the values no later node reads) and ``outputs``
            ((position, node)); a per-row output is held over every row.
        sizes: each index's number of labels ({Index: int}).
        n: the row count.
        chunk_of: the rows of a chunk of a pass (called with the pass).
    """
    held, widest = 0, (0, None, 0)
    for node in stages:
        size = _labels_of(node, sizes) * VALUE_BYTES
        held += size
        widest = max(widest, (size, node, 0), key=lambda entry: entry[0])
    peak = 0
    whole = max(n, 1) + (-max(n, 1)) % BLOCK_ROWS  # a chunk's last rows are padded to a block
    for plan in passes:
        rows = min(chunk_of(plan), whole)
        live = 0
        for _, node in plan.outputs:
            live += max(n, 1) * _labels_of(node, sizes) * VALUE_BYTES
            widest = max(widest, (live, node, max(n, 1)), key=lambda entry: entry[0])
        top = live
        for node, dead in zip(plan.nodes, plan.release, strict=True):
            size = 0 if node.is_leaf else rows * _labels_of(node, sizes) * VALUE_BYTES  # leaves: the data
            live += size
            top = max(top, live)
            widest = max(widest, (size, node, rows), key=lambda entry: entry[0])
            live -= sum(rows * _labels_of(d, sizes) * VALUE_BYTES for d in dead if not d.is_leaf)
        peak = max(peak, top)
    return held + peak, widest[1], widest[2]


def check_evaluation(schedule, inputs, chunk_of) -> None:
    """Refuse an evaluation whose working memory (``evaluation_bytes``) would not fit.

    ``schedule``: its passes and the values it computes without rows (by
    stage); ``inputs``: what the run binds (each index's size, the rows);
    ``chunk_of``: the rows of a chunk of a pass. Called before any value is computed.
    """
    stages = [node for stage in schedule._scalar_stages for node in stage]
    sizes = inputs.sizes
    need, node, rows = evaluation_bytes(stages, schedule.passes, sizes, inputs.n, chunk_of)
    if node is None or too_large(need, "") is None:
        return
    how = counted([(i.name, sizes.get(i, 1)) for i in node.indices if i is not ROWS])
    if rows:
        how = f"{rows:,} rows x " + how
    check(
        need,
        "the evaluation",
        f"its largest value, {family_text(node)}, is {how}",
        "use smaller families (fewer labels)",
    )


def family_text(node) -> str:
    """``W[k,j]`` for a family, ``a value over k,j`` for a value computed from families."""
    axes = [i.name for i in node.indices if i is not ROWS]
    if node.is_var:
        return f"{node.name}[{','.join(i.name for i in node.var_axes)}]"
    rows = "the rows and " if ROWS in node.indices else ""
    return f"a value over {rows}{','.join(axes)}" if axes else "a value over the rows"


def check_family(node, counts: Sequence[int]) -> None:
    """Refuse filling the family ``node`` (a var with indices) over ``counts`` labels when it would not fit."""
    parts = [(i.name, count) for i, count in zip(node.var_axes, counts, strict=True)]
    check(family_bytes(counts), f"the family {family_text(node)}", counted(parts), "use smaller families")
