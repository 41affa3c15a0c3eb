"""One pass of a scalar graph over the rows: chunk sizes, kept buffers, threads.

In: a pass planned by ``evaluate`` (its steps, buffer count, reductions and
per-row outputs), the run's scalar values and data columns, a chunk size
(None: chosen from the pass's buffer count and the cache size) and a number
of threads.
Out: each reduction's block sums, in block order, and the per-row outputs
written into fresh arrays. ``ranges`` and ``in_threads`` also split the rows
of a graph with index families (``indexed``) over threads.

A pass's buffers are views into one flat array (a workspace) that its
schedule keeps between runs, so a fit's hundreds of evaluations allocate and
first-touch them once; each thread running the schedule takes a workspace of
its own from the schedule's spares (under a lock) and gives it back, so two
threads running one schedule never share one. Results are written into
arrays made for the run: nothing returned is a view into a kept buffer.
Chunks and the rows of each thread are whole blocks of ``BLOCK_ROWS`` rows
(numbering from row 0), each block summed by the same numpy call whatever
the chunk or the thread, and the block sums are added exactly in block
order: the same bits for every chunk size and thread count.
Must not: change the graph or the plan, or choose a block's arithmetic from
anything but its rows (never from the chunk size or the thread count).
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import threading
from pathlib import Path
from queue import SimpleQueue

import numpy as np

from ..errors import ArgumentError
from ..kernels import BLOCK_ROWS, raw_block_dots, raw_block_sums

# The rows of a chunk: its live buffers and the columns it reads should fit
# in the cache a thread has (its L2, or its share of the L3 when that is
# larger), between these bounds: below MIN_ROWS the Python overhead of each
# numpy call dominates (measured on 1,000,000 rows with 103 live buffers:
# 4,096 rows 1.4x slower than 16,384); past MAX_ROWS nothing is gained.
MIN_ROWS = 16 * BLOCK_ROWS
MAX_ROWS = 64 * BLOCK_ROWS
DEFAULT_CACHE_BYTES = 8 << 20  # when /sys does not say
# Each thread gets at least this many rows: fewer do not repay handing them over.
MIN_THREAD_ROWS = 16 * BLOCK_ROWS
# Workspaces kept per schedule beyond those in use (one per thread that ran it),
# and the widths (chunk rows) whose bound steps each keeps.
KEPT_WORKSPACES = 8
KEPT_WIDTHS = 16


@functools.cache
def cache_bytes() -> int:
    """The cache one thread can count on: the larger of its L2 and its share of the L3 (bytes)."""
    found = 0
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = _bytes((index / "size").read_text().strip())
            sharing = _cpu_count((index / "shared_cpu_list").read_text().strip())
        except (OSError, ValueError):
            continue
        if level >= 2 and kind != "Instruction":
            found = max(found, size // max(1, sharing))
    return found or DEFAULT_CACHE_BYTES


def _bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(text[:-1]) * units[text[-1:].upper()]
    return int(text)


def _cpu_count(cpu_list: str) -> int:
    count = 0
    for part in cpu_list.split(","):
        low, _, high = part.partition("-")
        count += int(high or low) - int(low) + 1
    return count


def chunk_rows(n_buffers: int, n_columns: int, requested: int | None) -> int:
    """The rows of a chunk of a pass with ``n_buffers`` buffers reading ``n_columns`` columns.

    ``requested`` (a caller's chunk size) is rounded up to whole blocks;
    None chooses from the cache size. Either way a multiple of BLOCK_ROWS.
    """
    if requested is not None:
        return max(1, -(-int(requested) // BLOCK_ROWS)) * BLOCK_ROWS
    rows = cache_bytes() // (8 * max(1, n_buffers + n_columns))
    return min(MAX_ROWS, max(MIN_ROWS, rows // BLOCK_ROWS * BLOCK_ROWS))


def whole_number(name: str, value, default):
    """``value``, a whole number of at least 1 given as ``name`` (None: ``default``).

    Raises:
        ArgumentError: it is not (a bool, a float, text, 0).
    """
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ArgumentError(f"{name}= must be a whole number of at least 1, not {value!r}")
    return int(value)


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Workspace:
    """One thread's buffers for a run: a flat array, and its views per (pass, width)."""

    def __init__(self, cells: int):
        self.cells = np.empty(cells)
        self._bound: dict[tuple[int, int], tuple] = {}

    def bound(self, key: int, steps, count: int, width: int) -> tuple:
        """(views, steps bound to them, scalar slots) of pass ``key`` at ``width`` rows, made once."""
        found = self._bound.get((key, width))
        if found is None:
            if len(self._bound) > KEPT_WIDTHS:
                self._bound.clear()
            views = [self.cells[k * width : (k + 1) * width] for k in range(count)]
            found = self._bound[(key, width)] = (views, *_bind(steps, views))
        return found


class Workspaces:
    """The workspaces one schedule keeps between runs; each is used by one thread at a time."""

    def __init__(self):
        self._lock = threading.Lock()
        self._spare: list[Workspace] = []

    def __getstate__(self) -> dict:
        return {}  # a copy (pickle) starts with no buffers of its own

    def __setstate__(self, state: dict) -> None:
        self.__init__()

    def take(self, cells: int) -> Workspace:
        with self._lock:
            for k, workspace in enumerate(self._spare):
                if len(workspace.cells) >= cells:
                    return self._spare.pop(k)
        return Workspace(cells)

    def give(self, workspace: Workspace) -> None:
        with self._lock:
            self._spare.append(workspace)
            if len(self._spare) > KEPT_WORKSPACES:
                self._spare.remove(min(self._spare, key=lambda w: len(w.cells)))


class _Task:
    """One call handed to a worker thread; ``result()`` waits for it (and raises what it raised)."""

    def __init__(self, fn, args):
        self.fn, self.args, self.done, self.value, self.error = fn, args, threading.Event(), None, None

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except Exception as error:  # noqa: BLE001 (raised again in the caller by result())
            self.error = error
        finally:
            self.done.set()

    def result(self):
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


class _Workers:
    """Daemon threads that run handed-over tasks, started once and as many as ever needed.

    A few lines instead of concurrent.futures, whose import (logging with it)
    would slow the start-up of every command.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """No workers yet (also in a forked child, where the parent's threads do not exist)."""
        self._lock = threading.Lock()
        self._tasks: SimpleQueue = SimpleQueue()
        self._count = 0

    def submit(self, fn, *args) -> _Task:
        task = _Task(fn, args)
        self._tasks.put(task)
        return task

    def ensure(self, count: int) -> None:
        with self._lock:
            while self._count < count:
                threading.Thread(target=self._serve, name=f"exprgrad-{self._count}", daemon=True).start()
                self._count += 1

    def _serve(self) -> None:
        while True:
            self._tasks.get().run()


_WORKERS = _Workers()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WORKERS.reset)


def ranges(n: int, threads: int, align: int = 1) -> list[tuple[int, int]]:
    """Rows 0..n split into up to ``threads`` ranges of whole groups of ``align`` blocks.

    Each range starts on a group of blocks (counted from row 0); the last may end mid-block.
    """
    groups = -(-n // (BLOCK_ROWS * align))
    count = max(1, min(threads, n // max(MIN_THREAD_ROWS, BLOCK_ROWS * align), groups))
    bounds = [min(n, (groups * k // count) * BLOCK_ROWS * align) for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


def in_threads(sweep, parts: list[tuple[int, int]]) -> list:
    """``sweep(start, stop)`` of every range, the first in this thread, the others on workers; in order."""
    if len(parts) == 1:
        return [sweep(*parts[0])]
    _WORKERS.ensure(len(parts) - 1)
    futures = [_WORKERS.submit(sweep, *part) for part in parts[1:]]
    first = sweep(*parts[0])
    return [first] + [f.result() for f in futures]


def run_pass(plan, key: int, scalars, columns, n: int, rows: int, threads: int, workspaces, results):
    """Run ``plan`` over rows 0..n; the block sums of each reduction entry of ``reducers(plan)``.

    ``columns``: name -> array (or a float for a column given as one number).
    ``results``: the run's outputs, the per-row ones already made (length n).
    """
    reducers = _reducers(plan, columns)
    parts = ranges(n, threads)
    width = min(rows, max(stop - start for start, stop in parts))

    def sweep(start: int, stop: int) -> list[list[float]]:
        workspace = workspaces.take(plan.n_buffers * width)
        try:
            with np.errstate(all="ignore"):
                return _sweep(
                    plan, key, reducers, scalars, columns, start, stop, rows, width, workspace, results
                )
        finally:
            workspaces.give(workspace)

    sums = [[] for _ in reducers]
    for part in in_threads(sweep, parts):  # in block order
        for k, values in enumerate(part):
            sums[k].extend(values)
    return reducers, sums


def _reducers(plan, columns) -> list[tuple]:
    """Each reduction of ``plan`` as (node, kind, sources): kind "sum", "dot", "product" or "number".

    "number": its rows are one number (a column given as one): reduced at
    once by the kernel, with no block sums; "product": a dot with a factor
    given as one number, summed as the product's block sums.
    """
    found = []
    for r, source in plan.reductions:
        if source[0] == "dot":
            numbers = [_is_number(s, columns) for s in source[1]]
            kind = "number" if all(numbers) else "product" if any(numbers) else "dot"
            found.append((r, kind, source[1]))
        else:
            found.append((r, "number" if _is_number(source, columns) else "sum", (source,)))
    return found


def _is_number(source: tuple, columns) -> bool:
    """Whether ``source`` is a data column given as one number."""
    kind, key = source
    return kind == "column" and isinstance(columns[key], float)


def _sweep(plan, key, reducers, scalars, columns, start, stop, rows, width, workspace, results):
    views, bound, scalar_slots = workspace.bound(key, plan.steps, plan.n_buffers, width)
    for args, position, node in scalar_slots:
        args[position] = scalars[node]
    arrays = {name: value for name, value in columns.items() if not isinstance(value, float)}
    numbers = {name: value for name, value in columns.items() if isinstance(value, float)}
    sums: list[list[float]] = [[] for _ in reducers]
    for lo in range(start, stop, rows):
        hi = min(lo + rows, stop)
        if views and hi - lo != len(views[0]):  # the last, shorter chunk
            views, bound, scalar_slots = workspace.bound(key, plan.steps, plan.n_buffers, hi - lo)
            for args, position, node in scalar_slots:
                args[position] = scalars[node]
        chunk = {name: value[lo:hi] for name, value in arrays.items()}
        chunk.update(numbers)
        for fn, args, out, slots in bound:
            for position, name in slots:
                args[position] = chunk[name]
            fn(*args, out=out)

        def fetch(source, chunk=chunk, views=views):
            kind, name = source
            if kind == "buf":
                return views[name]
            if kind == "column":
                return chunk[name]
            return scalars[name]

        for k, (_, kind, sources) in enumerate(reducers):
            if kind == "sum":
                sums[k].extend(raw_block_sums(fetch(sources[0])))
            elif kind == "dot":
                sums[k].extend(raw_block_dots(fetch(sources[0]), fetch(sources[1])))
            elif kind == "product":
                sums[k].extend(raw_block_sums(np.multiply(fetch(sources[0]), fetch(sources[1]))))
        for k, source in plan.outputs:
            results[k][lo:hi] = fetch(source)
    return sums


def _bind(steps, views) -> tuple[list[tuple], list[tuple]]:
    """Each step as (kernel, argument list, out buffer, column slots), and the scalar slots.

    Buffers are bound once; columns are filled in per chunk, scalars per run
    (slots: (argument list, position, name or node)).
    """
    bound, scalar_slots = [], []
    for step in steps:
        args, slots = [], []
        for position, (kind, name) in enumerate(step.inputs):
            if kind == "buf":
                args.append(views[name])
                continue
            args.append(None)
            if kind == "scalar":
                scalar_slots.append((args, position, name))
            else:
                slots.append((position, name))
        bound.append((step.fn, args, views[step.buffer], slots))
    return bound, scalar_slots


# ---------------------------------------------------------------- partitions


def reduce_rows(
    found: list, reductions: int, outputs: list, plan_outputs: list, scalars, reducer, start: int
):
    """A partition's pass results with its per-row outputs handed to ``reducer`` where it ran.

    ``found``: the pass's sums (``reductions`` of them), then its per-row
    outputs; ``reducer``: (function, extra arguments), called as
    function(values, start, *extra) with ``values`` one per output of the
    schedule (``outputs``): this partition's rows for a per-row output of the
    pass, the value for a scalar one already known, else None. What it
    returns replaces the rows: ("reduced", value), to send in their place.
    """
    if reducer is None or not plan_outputs or len(plan_outputs) != sum(n.per_row for n in outputs):
        return found  # the rows of outputs made in different passes are sent whole
    values = [None if node.per_row else scalars.get(node) for node in outputs]
    for offset, (k, _) in enumerate(plan_outputs):
        values[k] = found[reductions + offset]
    function, extra = reducer
    return found[:reductions] + [("reduced", function(values, start, *extra))]


def finish_rows(parts: list, at: int, plan_outputs: list, results: list) -> None:
    """Every partition's rows of the per-row outputs, in row order, into ``results``; reduced
    rows (``reduce_rows``) as ``Reduced``, one value per partition, at the first output's place."""
    if not plan_outputs:
        return
    first = parts[0][at] if len(parts[0]) > at else None
    if isinstance(first, tuple) and first[0] == "reduced":
        for k, _ in plan_outputs:
            results[k] = None
        results[plan_outputs[0][0]] = Reduced(part[at][1] for part in parts)
        return
    for offset, (k, _) in enumerate(plan_outputs):
        pieces = [part[at + offset] for part in parts]
        results[k] = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


class Reduced(list):
    """What a reducer made of each partition's rows (``reduce_rows``), in row order."""


# ---------------------------------------------------------------- BLAS threads

_BLAS = threading.local()
_CONTROLLERS: dict[tuple, object] = {}


def one_blas_thread(function=None, *, lapack: bool = False):
    """``function`` run with the BLAS libraries (numpy's, scipy's) on one thread.

    ``lapack``: the function calls scipy's LAPACK, which is loaded first so
    that its BLAS is limited too (``@one_blas_thread(lapack=True)``).

    A matrix product or a QR that OpenBLAS splits over two threads rounds
    otherwise than on one (measured: the QR of a 65,536 x 12 block differs in
    the last bits), so results would depend on how many threads BLAS has:
    another process, a cluster's worker (Dask gives each one thread), another
    machine. exprgrad runs its own threads over rows (``threads=``) instead.
    Reentrant; the limit is lifted when the outermost call returns.
    """

    if function is None:
        return functools.partial(one_blas_thread, lapack=lapack)

    @functools.wraps(function)
    def limited(*args, **kwargs):
        # Within a limited call, only a LAPACK loaded now (its BLAS not limited yet) needs a limit.
        nested = getattr(_BLAS, "depth", 0)
        if nested and not (lapack and "scipy.linalg.lapack" not in sys.modules):
            return function(*args, **kwargs)
        if lapack:
            import scipy.linalg.lapack  # noqa: F401  (its BLAS, to be limited below)
        controller = _controller()
        _BLAS.depth = nested + 1
        try:
            with controller.limit(limits=1, user_api="blas"):
                return function(*args, **kwargs)
        finally:
            _BLAS.depth = nested

    return limited


def _controller():
    """A threadpoolctl controller of the BLAS libraries loaded so far (made again when one more may be)."""
    key = tuple(name in sys.modules for name in ("numpy", "scipy.linalg", "numba"))
    found = _CONTROLLERS.get(key)
    if found is None:
        import threadpoolctl  # a few milliseconds: only when a run needs it

        found = _CONTROLLERS[key] = threadpoolctl.ThreadpoolController()
    return found
