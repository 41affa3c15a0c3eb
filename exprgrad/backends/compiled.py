"""The compiled backend: each pass of a schedule as one fused numba loop over the rows.

In: a numpy ``Schedule`` and a backend, "compiled" or "auto"
(``CompiledSchedule``); the same parameters and columns as ``Schedule.run``.
Out: the numpy backend's values, to 1e-14 relative: every per-row node of a
pass is computed row by row in one loop (``kernel_source``), each reduction's
block sums by numpy's pairwise summation of the same rows, added exactly as
the numpy backend adds them. The kernels are a real Python module in the
kernel cache folder (``cache_dir``: $EXPRGRAD_CACHE_DIR, or exprgrad/kernels
in the user cache folder), named by a hash of its text and written
atomically, so a second process loads numba's cached machine code instead of
compiling and concurrent processes never see half a file; an entry whose
text is not the expected one (stale, truncated, edited) is written again,
and numba's cached machine code, when it cannot be read, is made again.
Rows are split across threads as whole ranges of blocks; each block's sums
are the same whatever range it falls in, so every thread count gives the
same bits. "auto" runs the numpy backend when numba is not installed, the
graph has something the compiled backend does not support yet, one
evaluation is too small to repay compiling (``AUTO_MIN_WORK``), or the passes
are mostly exp, log and other library calls, which numpy runs vectorized and
a compiled loop one row at a time (``AUTO_MIN_SPEEDUP``).
Must not: import numba before a run needs a kernel (importing this module,
or running a schedule on the numpy backend, never does).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import itertools
import math
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import ArgumentError, EvaluationError, Mention, ToolMissingError, WriteError
from ..graph import ROWS, Node
from ..kernels import BLOCK_ROWS, total_of_blocks
from . import binding, chunks, family_kernel_source, indexed, kernel_source

__all__ = ["AUTO_MIN_SPEEDUP", "AUTO_MIN_WORK", "BACKENDS", "CompiledSchedule", "available", "cache_dir"]

BACKENDS = ("numpy", "compiled", "auto")

# "auto" compiles when one evaluation computes at least this many per-row
# values (rows x per-row nodes: 10,000,000 rows of a 20-node cost). Loading
# numba alone takes about a second, compiling a graph a few more (measured:
# 1.3 s with the cache, 5 s without), and a compiled pass of arithmetic
# saves about a quarter to a half of the numpy backend's time: only
# evaluations this large repay it within a fit's tens of evaluations.
AUTO_MIN_WORK = 200_000_000
# ... and when its cost model expects the compiled passes to be at least this
# many times faster: a pass of arithmetic is (several times over); one of exp,
# log and other library calls per row is not (numpy's exp and log are
# vectorized, a compiled loop calls the C library's once per row).
AUTO_MIN_SPEEDUP = 1.5
# The cost model's speedup of a graph with index families. Measured on one
# thread (benchmarks/bench_families.py): the 16-unit network 2.2x at 100,000
# and 1,000,000 rows, the 50-feature logistic regression 2.3x; the
# contractions are BLAS matrix products in both backends, the rest fused.
# Compiling the network takes about 18 s (0.6 s from the cache), so "auto"
# weighs it by the values a run computes (``family_work``) like any graph.
FAMILY_SPEEDUP = 2.0


@functools.cache
def available() -> bool:
    """Whether numba is installed (found, not imported)."""
    return importlib.util.find_spec("numba") is not None


def cache_dir() -> Path:
    """The kernel cache folder: $EXPRGRAD_CACHE_DIR, else exprgrad/kernels in the user cache folder."""
    own = os.environ.get("EXPRGRAD_CACHE_DIR")
    if own:
        return Path(own)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "exprgrad" / "kernels"


class CompiledSchedule:
    """A numpy ``Schedule`` whose passes over the rows run as compiled kernels.

    It plans nothing of its own: its outputs, parameters, columns, passes and
    scalar stages are the numpy schedule's (attributes are read through), and
    it runs that schedule itself where the compiled backend does not.

    Attributes:
        schedule: the numpy schedule.
        backend: "compiled" or "auto".
        unsupported: what the compiled backend cannot run in this graph yet
            (None: it runs all of it); "auto" then runs the numpy backend.
        work: the per-row values one row of data costs (per-row nodes over
            every pass), against which "auto" weighs compiling.
    """

    def __init__(self, schedule, backend: str = "compiled"):
        self.schedule = schedule
        self.backend = backend
        self._source = family_kernel_source if schedule.indexed else kernel_source
        self.unsupported = self._source.unsupported(schedule)
        if backend == "compiled":
            if self.unsupported:
                numpy = Mention("backend", "numpy")
                raise EvaluationError(
                    f"the compiled backend does not support {self.unsupported} yet: use {numpy}",
                    mentions=(numpy,),
                )
            if not available():
                numpy = Mention("backend", "numpy")
                raise ToolMissingError(
                    f"the compiled backend needs numba: pip install 'exprgrad[fast]', or use {numpy}",
                    mentions=(numpy,),
                )
        self._plan_text = None
        self._module = None
        # For families the work depends on the index sizes: ``family_work`` counts it per run.
        self.work = 0 if schedule.indexed else sum(len(p.steps) + len(p.reductions) for p in schedule.passes)

    def __getattr__(self, name: str):
        return getattr(self.schedule, name)

    def uses_compiled(self, n: int, sizes: Mapping | None = None) -> bool:
        """Whether a run over ``n`` rows (for families: with the index sizes ``sizes``) runs the compiled kernels."""
        if self.unsupported or not self.passes:
            return False
        if self.backend == "compiled":
            return True
        work = family_work(self.schedule, sizes or {}) if self.schedule.indexed else self.work
        return available() and n * work >= AUTO_MIN_WORK and self.speedup >= AUTO_MIN_SPEEDUP

    @functools.cached_property
    def speedup(self) -> float:
        """About how many times faster the compiled passes run than numpy's (``kernel_source.speedup``)."""
        if self.schedule.indexed:
            return FAMILY_SPEEDUP
        return kernel_source.speedup(self.schedule)

    @chunks.one_blas_thread
    def run(self, params: Mapping[str, float], columns=None, **options):
        """Evaluate every output (see ``Schedule.run``: the same arguments, the same values)."""
        if self.schedule.indexed:
            return self._run_families(params, columns, options)
        lengths = {len(v) for v in (columns or {}).values()}
        n = lengths.pop() if len(lengths) == 1 else 0
        if (
            not columns
            or not self.uses_compiled(n)
            or any(name not in params for name in self.parameters)
            or any(name not in columns for name in self.columns)
        ):
            return self.schedule.run(params, columns, **options)
        threads = _thread_count(options.get("threads"))
        if self.backend == "auto" and self._kernels(quiet=True) is None:
            return self.schedule.run(params, columns, **options)
        results = self._run_compiled(params, columns, threads)
        if results is None:  # a block sum past the float range: the numpy backend's exact path
            return self.schedule.run(params, columns, **options)
        return results

    # ------------------------------------------------------------ running

    def _run_compiled(self, params, columns, threads) -> list | None:
        module = self._kernels()
        schedule = self.schedule
        column_values, n = schedule._bind_columns(params, columns)
        scalars: dict[Node, float] = {}
        for node in self.order:
            if node.is_const:
                scalars[node] = node.value
            elif node.is_var and not node.per_row:
                scalars[node] = float(params[node.name])
        results: list = [None] * len(self.outputs)
        with np.errstate(all="ignore"):
            schedule._run_scalars(0, scalars, n)
            for number, arguments in enumerate(self._plan_text.passes, start=1):
                kernel = getattr(module, f"pass_{number}")
                if not _run_pass(kernel, arguments, scalars, column_values, n, threads, results):
                    return None
                schedule._run_scalars(number, scalars, n)
        for k, node in enumerate(self.outputs):
            if not node.per_row:
                results[k] = float(scalars[node])
        return results

    def _run_families(self, params, columns, options):
        """An indexed schedule's run: ``indexed.run`` with each pass over the rows a kernel."""
        schedule = self.schedule
        if not columns or options.get("engine") is not None or options.get("reduce_rows") is not None:
            return schedule.run(params, columns, **options)
        threads = _thread_count(options.get("threads"))
        chunks.whole_number(
            "chunk_rows", options.get("chunk_rows"), None
        )  # checked, as the numpy backend does
        lengths = {len(c) for v in columns.values() for c in (v if binding._is_columns(v) else [v])}
        n = lengths.pop() if len(lengths) == 1 else 0
        if self.backend == "auto":
            try:
                sizes = binding.bind(schedule, params, columns, options.get("sizes")).sizes
            except EvaluationError:
                return schedule.run(params, columns, **options)  # the numpy backend says what is wrong
            if not self.uses_compiled(n, sizes) or self._kernels(quiet=True) is None:
                return schedule.run(params, columns, **options)
        elif not self.uses_compiled(n):
            return schedule.run(params, columns, **options)
        module = self._kernels()

        def sweep(plan, inputs, values, chunk_rows, threads, rows):
            number = schedule.passes.index(plan)
            kernel = getattr(module, f"pass_{number + 1}")
            arguments = self._plan_text.passes[number]
            found = _run_family_pass(kernel, arguments, inputs, values, threads, module._exact_totals)
            if found is None:
                raise _NotFinite
            return found

        try:
            return indexed.run(
                schedule,
                params,
                columns,
                indexed.DEFAULT_CHUNK_ROWS,
                options.get("sizes"),
                threads,
                sweep=sweep,
            )
        except _NotFinite:  # a block sum past the float range: the numpy backend's exact path
            return schedule.run(params, columns, **options)

    def _kernels(self, quiet: bool = False):
        """The loaded kernel module (written to the cache first when needed); None if quiet and unwritable."""
        if self._module is None:
            if self._plan_text is None:
                self._plan_text = self._source.kernel_plan(self.schedule)
            try:
                self._module = load(self._plan_text.source)
            except (WriteError, ToolMissingError):
                if quiet:
                    return None
                raise
        return self._module


def _thread_count(threads) -> int:
    """``threads=`` as a whole number of at least 1 (None: every usable core), as the numpy backend takes it."""
    if threads is None:
        return chunks.usable_cores()
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ArgumentError(f"threads= must be a whole number of at least 1, not {threads!r}")
    return int(threads)


def _run_blocks(kernel, reads: list, n: int, writes: list, threads: int) -> None:
    """kernel(*reads, n, first, last, *writes) over every block of the ``n`` rows, split across threads."""
    blocks = -(-n // BLOCK_ROWS)
    ranges = _block_ranges(blocks, threads)
    if not kernel.signatures:  # compiled (or loaded from the cache) here, never by two threads at once
        with _slp_vectorizing():
            try:
                kernel(*reads, n, 0, 0, *writes)
            except Exception:  # noqa: BLE001 (numba's cached machine code unreadable: compiled again)
                _forget_machine_code(kernel)
                kernel(*reads, n, 0, 0, *writes)
    if len(ranges) <= 1:
        kernel(*reads, n, 0, blocks, *writes)
        return
    # The numpy backend's worker threads; the kernels release the GIL.
    chunks._WORKERS.ensure(len(ranges) - 1)
    tasks = [chunks._WORKERS.submit(kernel, *reads, n, a, b, *writes) for a, b in ranges[1:]]
    kernel(*reads, n, *ranges[0], *writes)
    for task in tasks:
        task.result()


@contextlib.contextmanager
def _slp_vectorizing():
    """LLVM's SLP vectorizer on while a kernel compiles (numba leaves it off by default).

    It packs side-by-side arithmetic, such as a leaf's eight running sums, into vector
    instructions, never reordering it: the same bits (the 10-parameter exp-sum gradient's
    kernel: 105 packed additions without it, 344 with it). Only exprgrad's kernels
    compile under it; the setting is put back after.
    """
    from numba.core import config

    before = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = 1
    try:
        yield
    finally:
        config.SLP_VECTORIZE = before


def _run_pass(kernel, arguments, scalars, column_values, n, threads, results) -> bool:
    """Run one pass's kernel over every row; False when a block sum is not finite."""
    columns = [column_values[name] for name in arguments.columns]
    values = np.array([float(scalars[node]) for node in arguments.scalars] or [0.0])
    rows = np.empty((len(arguments.outputs), n))
    sums = np.empty((len(arguments.reductions), -(-n // BLOCK_ROWS)))
    _run_blocks(kernel, [*columns, values], n, [rows, sums], threads)
    if not np.all(np.isfinite(sums)):
        return False
    for k, reduction in enumerate(arguments.reductions):
        scalars[reduction] = float(total_of_blocks(sums[k].tolist(), n, reduction.op.averages))
    for k, position in enumerate(arguments.outputs):
        results[position] = rows[k]
    return True


class _NotFinite(Exception):
    """A block sum of a compiled pass is not finite: the run is the numpy backend's."""


def _family_columns(source) -> tuple:
    """A data family's values as a tuple of 1-d columns, one per label (views: nothing copied)."""
    if isinstance(source, list):
        return tuple(source)
    return tuple(source[:, label] for label in range(source.shape[1]))


def _run_family_pass(kernel, arguments, inputs, values, threads, exact_totals) -> list | None:
    """One pass of an indexed schedule by its kernel, with ``indexed._pass_sums``'s results; None
    when a block sum is not finite.

    A reduction with labels comes back as one block whose sums are the totals:
    ``exact_totals`` (the module's math.fsum per label) adds the block sums as
    ``kernels.total_of_label_blocks`` would, to the same bits, in a tenth of
    the time (800 labels of a 50 x 16 family over 98 blocks: 3 ms in Python).
    """
    n = inputs.n
    blocks = -(-n // BLOCK_ROWS)
    size = inputs.sizes

    def shape(node):
        return [size[i] for i in node.indices if i is not ROWS]

    if any(math.prod(shape(r)) * blocks > indexed.KEPT_SUMS for r in arguments.reductions):
        return None  # too many block sums to keep: the numpy backend sums groups of blocks first
    reads = [_family_columns(inputs.data[node]) for node in arguments.families]
    for node in arguments.columns:
        source = inputs.data[node]
        reads.append(np.full(n, source) if isinstance(source, float) else source)
    reads += [np.ascontiguousarray(values.scalars[node], dtype=np.float64) for node in arguments.arrays]
    reads.append(np.array([float(values.scalars[node]) for node in arguments.scalars] or [0.0]))
    reads.append(np.array([size[i] for i in arguments.indices] or [0], dtype=np.int64))
    sums = [np.empty((*shape(r), blocks)) for r in arguments.reductions]
    rows = [np.empty((n, *shape(node))) for _, node in arguments.outputs]
    _run_blocks(kernel, reads, n, sums + rows, threads)
    found = []
    for r, block_sums in zip(arguments.reductions, sums, strict=True):
        if not np.all(np.isfinite(block_sums)):
            return None
        if r.indices:
            totals = np.empty(block_sums.shape[:-1])
            if exact_totals(block_sums.reshape(-1, blocks), totals.reshape(-1)) == 0:
                found.append(([totals[np.newaxis]], [], 0))
            else:
                found.append(([np.moveaxis(block_sums, -1, 0)], [], 0))
        else:
            found.append(block_sums.tolist())
    return found + rows


def family_work(schedule, sizes: Mapping) -> int:
    """The values one row of data costs an indexed schedule: each node's labels (a contraction's
    times the labels it sums over), over every pass."""
    total = 0
    for plan in schedule.passes:
        for node in [*plan.nodes, *plan.reductions]:
            labels = math.prod(sizes.get(i, 1) for i in node.indices if i is not ROWS)
            if node.axis is not None and node.axis is not ROWS:
                labels *= sizes.get(node.axis, 1)
            total += labels
    return total


def _forget_machine_code(kernel) -> None:
    """Delete numba's cached machine code of the module ``kernel`` is in (damaged: it is made again)."""
    source = Path(kernel.py_func.__code__.co_filename)
    for path in (source.parent / "__pycache__").glob(f"{source.stem}.*"):
        path.unlink(missing_ok=True)


def _block_ranges(blocks: int, threads: int) -> list[tuple[int, int]]:
    """Whole blocks split into at most ``threads`` contiguous ranges (each of MIN_THREAD_ROWS rows or more)."""
    count = min(threads, blocks // (chunks.MIN_THREAD_ROWS // BLOCK_ROWS))
    if count <= 1:
        return [(0, blocks)]
    edges = [blocks * k // count for k in range(count + 1)]
    return list(itertools.pairwise(edges))


# ---------------------------------------------------------------- the kernel cache


def kernel_path(source: str) -> Path:
    """Where the module of ``source`` lives in the cache: named by the hash of its text."""
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:32]
    return cache_dir() / f"kernels_{digest}.py"


def load(source: str):
    """The module of ``source``: written to the cache unless there already, then imported.

    Raises:
        WriteError: the cache folder cannot be written.
        ToolMissingError: numba is installed but cannot be imported.
    """
    path = kernel_path(source)
    name = f"exprgrad_kernels_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    try:
        current = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        current = None
    if current != source:  # missing, stale or corrupt: written again
        _write_atomically(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as exc:  # numba (or llvmlite) installed but unusable
        numpy = Mention("backend", "numpy")
        raise ToolMissingError(
            f"the compiled backend cannot load numba ({exc}): pip install 'exprgrad[fast]' again, or use {numpy}",
            mentions=(numpy,),
        ) from None
    sys.modules[name] = module
    return module


def _write_atomically(path: Path, text: str) -> None:
    folder = path.parent
    # A name of this process and thread alone, so two writers never share one.
    temporary = folder / f".{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise WriteError(
            f"cannot write the compiled backend's kernel to {folder} ({exc.strerror or exc}): "
            "set EXPRGRAD_CACHE_DIR to a writable folder"
        ) from None
