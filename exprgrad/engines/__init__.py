"""Where the passes over the data run: here (the local engine), or on a Dask cluster.

In: data columns (1-d arrays; a data family as a rows x labels array or a
list of columns), an engine name ("local" or "dask") and, for Dask, a
scheduler address or a ``distributed.Client``.
Out: for "local", None: ``Schedule.run`` sweeps the columns itself. Otherwise
an engine: the rows split into partitions of whole groups of
``PARTITION_ROWS`` rows (counted from row 0), and ``map_pass``, which runs one
pass of a schedule over every partition (``Schedule.part_sums``) and returns
their sums in row order. A partition's block sums are the ones one process
would compute for the same rows, and ``Schedule.run`` adds them exactly, so
an engine's results are the local engine's bits whatever the number of
partitions or workers. ``InProcess`` runs the partitions one after another
in this process (the reference the tests compare a cluster with);
``cluster.DaskEngine`` runs them on Dask's workers.
Must not: import dask unless a Dask engine is asked for; change the numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

import numpy as np

from ..errors import Mention, OptionError
from ..kernels import BLOCK_ROWS

__all__ = ["ENGINES", "PARTITION_ROWS", "InProcess", "open_engine", "partition_bounds", "rows_of"]

ENGINES = ("local", "dask")
# Partitions are whole groups of this many rows (64 blocks): the grouped row
# sums of a wide family and the leaves of the least-squares factors never
# straddle two partitions.
PARTITION_ROWS = 64 * BLOCK_ROWS


def partition_bounds(n: int, count: int) -> list[tuple[int, int]]:
    """Rows 0..n as up to ``count`` partitions of whole groups of PARTITION_ROWS rows (the last may be short)."""
    groups = max(1, -(-n // PARTITION_ROWS))
    count = max(1, min(int(count), groups))
    cuts = [min(n, groups * k // count * PARTITION_ROWS) for k in range(count + 1)]
    cuts[-1] = n
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a] or [(0, n)]


def rows_of(columns: Mapping) -> int:
    """The number of rows of ``columns`` (0 without any)."""
    for value in columns.values():
        if isinstance(value, (list, tuple)):
            return len(value[0]) if value else 0
        return len(value)
    return 0


def slice_rows(columns: Mapping, start: int, stop: int) -> dict:
    """Rows start..stop of every column (views; a family's list of columns, each sliced)."""
    found = {}
    for name, value in columns.items():
        if isinstance(value, (list, tuple)):
            found[name] = [column[start:stop] for column in value]
        else:
            found[name] = value[start:stop]
    return found


def first_row(columns: Mapping) -> dict:
    """The first row of every column (an engine's ``sample``): enough to fix the data families' sizes."""
    return slice_rows(columns, 0, min(1, rows_of(columns)))


def check_request(engine: str, scheduler, has_data: bool, backend: str = "auto") -> None:
    """The one check of what a command or ``fit`` asks of the engines, before any work.

    Raises:
        OptionError: an unknown engine; a scheduler without ``dask``; ``dask``
            without data to pass over; ``dask`` with the compiled backend
            (the workers run the numpy backend; ``auto`` does there).
    """
    dask = Mention("engine", "dask")
    if engine not in ENGINES:
        raise OptionError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}", mentions=(dask,))
    if scheduler is not None and engine != "dask":
        raise OptionError(f"a scheduler is for {dask}: the local engine runs here", mentions=(dask,))
    if engine == "dask" and not has_data:
        raise OptionError(f"{dask} runs the passes over data: there is no data here", mentions=(dask,))
    if engine == "dask" and backend == "compiled":
        auto = Mention("backend", "auto")
        raise OptionError(
            f"a cluster's workers run the numpy backend: use {Mention('backend', 'compiled')} "
            f"without {dask}, or {auto}",
            mentions=(dask, Mention("backend", "compiled"), auto),
        )


class InProcess:
    """The data in partitions, each pass run over them one after another in this process.

    The same arithmetic as a cluster's (``Schedule.part_sums`` per partition,
    added in row order), without one: what tests compare a cluster with.
    """

    def __init__(self, columns: Mapping, partitions: int = 4, threads: int | None = 1):
        self.rows = rows_of(columns)
        self.columns = set(columns)
        self.bounds = partition_bounds(self.rows, partitions)
        self._columns = dict(columns)
        self._parts = [slice_rows(self._columns, a, b) for a, b in self.bounds]
        self.threads = threads  # for each partition's pass (None: every core)

    def sample(self) -> dict:
        return first_row(self._columns)

    def map_pass(self, schedule, number: int, payload: dict) -> list:
        return [
            schedule.part_sums(number, {**payload, "start": start}, part, threads=self.threads)
            for part, (start, _) in zip(self._parts, self.bounds, strict=True)
        ]

    def close(self) -> None:
        self._parts = []


def open_engine(name: str, columns: Mapping, *, scheduler=None, partitions: int | None = None, source=None):
    """The engine ``name`` over ``columns``: None for "local" (``Schedule.run`` sweeps them itself).

    ``source``: None, or (a data source's ``SourceSpec``, the names of the
    columns that are its columns unchanged): a cluster's workers that see its
    files read those columns from them, rather than be sent them.

    Raises:
        OptionError: an unknown engine, or a scheduler given to the local one.
        ToolMissingError: "dask" without dask.distributed installed.
        EngineError: the scheduler cannot be reached.
    """
    check_request(name, scheduler, has_data=bool(columns))
    if name == "local":
        return None
    # Only the Dask engine imports distributed, when it starts.
    return cluster.DaskEngine(columns, scheduler=scheduler, partitions=partitions, source=source)


def as_float_columns(columns: Mapping) -> dict:
    """``columns`` as float64 arrays (a family's list of columns kept a list), for sending."""
    found = {}
    for name, value in columns.items():
        if isinstance(value, (list, tuple)):
            found[name] = [np.asarray(c, dtype=np.float64) for c in value]
        else:
            found[name] = np.asarray(value, dtype=np.float64)
    return found


def work_of(rows: int, workers: int) -> int:
    """How many partitions to cut ``rows`` into for ``workers`` worker threads: one each, at least."""
    return max(1, min(workers, math.ceil(rows / PARTITION_ROWS)))


from . import cluster  # last: it uses the helpers above
