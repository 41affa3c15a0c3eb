"""Evaluation of graphs with index families: arrays over a node's indices, a chunk of rows at a time.

In: a ``Schedule`` whose graph has indices besides the rows (its passes and
stages, planned by ``evaluate``) and what a run binds (``binding``: parameter
values, data, the sizes of declared indices).
Out: each output's value: an array over its indices in canonical order (rows
first), a float for a node without indices.

A value is an array whose axes are the node's indices in canonical order;
elementwise kernels see their operands as views with length-1 axes inserted.
``sum``/``mean`` over an index of a product run as one contraction of its
factors (``contract``: matmul, BLAS), never forming the product. A reduction
over rows is accumulated as fixed blocks of ``BLOCK_ROWS`` rows (a block sum
per label; for a product, one batched matmul per chunk), and per label the
exact sum of the block sums, so no result depends on the chunk size. A data
family given as columns is gathered a chunk at a time: memory is the data
plus O(chunk x widest family). Threads take ranges of whole groups of the
blocks whose sums are kept (``chunks.ranges``), so they change no bit, and
share one thread's chunk memory between them.
Must not: change the graph, or run the scalar-only graphs (``evaluate`` does).
"""

from __future__ import annotations

import math

import numpy as np

from .. import kernels, memory, ops
from ..errors import EvaluationError
from ..graph import ROWS, Node
from ..kernels import BLOCK_ROWS
from . import chunks, contract
from .binding import Inputs, bind

# The rows of a chunk, unless a caller asks for others (also bounded by the
# widest family); scalar graphs choose theirs per pass (``chunks.chunk_rows``).
DEFAULT_CHUNK_ROWS = 65536

# A chunk of a family holds about this many values (2 MiB of float64), so the
# gathered block and the arrays computed from it stay in cache.
CHUNK_CELLS = 1 << 18

_BLOCK, _ROW = "block", "row"  # the labels of a chunk's rows split into blocks
_OVER = {ops.SUM: kernels.sum_over, ops.MEAN: kernels.mean_over}


def factors(node: Node) -> tuple[Node, ...] | None:
    """The factors of a sum or mean over an index of a product of families (run as one contraction)."""
    if node.op in _OVER and node.axis is not None and node.inputs[0].op is ops.MUL:
        product = node.inputs[0]
        if node.axis in product.indices and any(i is not ROWS for i in product.indices):
            return product.inputs
    return None


def operands(node: Node) -> tuple[Node, ...]:
    """What ``node`` is computed from: the factors of a contraction, else its inputs."""
    found = factors(node)
    return node.inputs if found is None else found


class Pass:
    """One sweep over the rows: row nodes in order, then row reductions and outputs fed.

    ``release[k]``: the values no step after ``nodes[k]`` reads.
    """

    __slots__ = ("nodes", "outputs", "reductions", "release")

    def __init__(self, nodes: list[Node], release: list[list[Node]], reductions: list[Node], outputs: list):
        self.nodes, self.release, self.reductions, self.outputs = nodes, release, reductions, outputs


def plan_pass(order: list[Node], reductions: list[Node], outputs: list[tuple[int, Node]]) -> Pass:
    """The row nodes that ``reductions`` and ``outputs`` need, in ``order``'s order, and when each is freed."""
    targets = [i for r in reductions for i in operands(r)] + [n for _, n in outputs]
    needed, stack = set(), [t for t in targets if t.per_row]
    while stack:
        node = stack.pop()
        if node not in needed:
            needed.add(node)
            stack.extend(i for i in operands(node) if i.per_row)
    nodes = [n for n in order if n in needed]
    last_use = {n: k for k, node in enumerate(nodes) for n in operands(node)}
    for t in targets:
        last_use[t] = len(nodes)  # read after the steps: kept
    release: list[list[Node]] = [[] for _ in nodes]
    for n, k in last_use.items():
        if n in needed and k < len(nodes):
            release[k].append(n)
    return Pass(nodes, release, reductions, outputs)


# ---------------------------------------------------------------- running


def compute(node: Node, value_of) -> object:
    """The value of ``node`` (not a leaf, not a row reduction) from its operands' values."""
    found = factors(node)
    if found is not None:
        arrays = [value_of(f) for f in found]
        if node.per_row:
            result = _per_row_contraction(found, arrays, node.indices)
        else:
            result = _contraction(found, arrays, node.indices)
        if node.op is ops.MEAN:
            result = result / _axis_length(node, value_of)
        return result
    if node.axis is ROWS:  # over rows, a value without rows: n equal rows
        body = value_of(node.inputs[0])
        if np.ndim(body) == 0:
            return node.op.kernel(body, value_of.n)
        return body * value_of.n if not node.op.averages else (body if value_of.n else body * math.nan)
    if node.axis is not None:
        body = node.inputs[0]
        if node.axis not in body.indices:  # size(j) equal terms (the builders never make this)
            size = value_of.sizes[node.axis]
            if node.op is ops.SUM:
                return value_of(body) * size
            return value_of(body) if node.op is ops.MEAN else value_of(body) + math.log(size)
        kernel = _OVER.get(node.op, kernels.logsumexp_over)
        return kernel(value_of(body), body.indices.index(node.axis))
    args = [_aligned(value_of(i), i.indices, node.indices) for i in node.inputs]
    if node.op.shares is not None:  # sigmoid(z), softplus(z): one exp(-|z|) for both
        common, rest = node.op.shares
        key = (common, node.inputs[0])
        if key not in value_of.shared:
            value_of.shared[key] = common(args[0])
        return rest(args[0], value_of.shared[key])
    return node.op.kernel(*args)


def _aligned(value, indices: tuple, target: tuple):
    """``value`` (axes ``indices``) as a view over ``target``: length-1 axes where it has no index."""
    if indices == target or np.ndim(value) == 0:
        return value
    return value[tuple(slice(None) if i in indices else None for i in target)]


def _axis_length(node: Node, value_of) -> int:
    return value_of.n if node.axis is ROWS else value_of.sizes[node.axis]


_PLANS: dict[tuple, list] = {}


def _contraction(found, arrays, kept, split_rows: bool = False):
    """The sum of the product of ``found`` (values ``arrays``) over every index ``kept`` lacks."""
    labels = [f.indices for f in found]
    if split_rows:  # rows as (block, row in block): a sum per block
        labels = [(_BLOCK, _ROW, *f.indices[1:]) if f.per_row else f.indices for f in found]
        kept = (_BLOCK, *kept)
    # The order is chosen from the families' own sizes (fixed for a schedule) and
    # a nominal length for the rows, never the chunk's: so the per-row factor of
    # the network's dJ/dW[k,j] joins the 16-wide side, not the 50-wide data.
    rows = (ROWS, _ROW, _BLOCK)
    sizes = {i: n for f, a in zip(labels, arrays) for i, n in zip(f, np.shape(a)) if i not in rows}
    key = (tuple(labels), kept, tuple(sorted(sizes.items(), key=repr)))
    steps = _PLANS.get(key)
    if steps is None:
        nominal = sizes | {ROWS: BLOCK_ROWS, _ROW: BLOCK_ROWS, _BLOCK: 1}
        steps = _PLANS[key] = contract.plan(labels, kept, nominal)
    return contract.run(steps, arrays, labels, kept)


def _per_row_contraction(found, arrays, kept):
    """A contraction keeping the rows, run on whole blocks only (the last rows padded to one).

    BLAS picks its kernel by the number of rows (one row is a dot product, more a
    matrix product), so a row's value would depend on how many rows share its
    call; whole blocks make it the same for every chunk size.
    """
    m = next(len(a) for a, f in zip(arrays, found, strict=True) if f.per_row)
    whole = m - m % BLOCK_ROWS
    if whole == m:
        return _contraction(found, arrays, kept)
    padded = []
    for a, f in zip(arrays, found, strict=True):
        if f.per_row:
            block = np.zeros((BLOCK_ROWS, *a.shape[1:]))
            block[: m - whole] = a[whole:]
            a = block
        padded.append(a)
    last = _contraction(found, padded, kept)[: m - whole]
    if not whole:
        return last
    first = _contraction(
        found, [a[:whole] if f.per_row else a for a, f in zip(arrays, found, strict=True)], kept
    )
    return np.concatenate([first, last])


class _Values:
    """Values by node during a chunk: row nodes from the chunk, the rest from the run's scalars."""

    def __init__(self, scalars, n, sizes):
        self.scalars, self.n, self.sizes, self.rows = scalars, n, sizes, {}
        self.shared: dict = {}  # parts several ops of one operand share (OpSpec.shares), this chunk's

    def __call__(self, node):
        return self.rows[node] if node.per_row else self.scalars[node]


def run(
    schedule, params, columns, chunk_rows: int, declared, threads=1, engine=None, reduce_rows=None, sweep=None
) -> list:
    """Evaluate every output of an indexed ``schedule`` (see ``Schedule.run``).

    ``sweep``: what runs a pass over the rows here, as ``_pass_sums`` does and
    with its results (the compiled backend's kernels); None: ``_pass_sums``.
    """
    has_data = bool(columns) or engine is not None
    if engine is None:
        inputs = bind(schedule, params, columns or {}, declared)
        memory.check_evaluation(schedule, inputs, lambda plan: _chunk_rows(plan, inputs.sizes, chunk_rows))
    else:  # a few rows fix the data families' sizes; the partitions hold the rest
        inputs = bind(schedule, params, engine.sample(), declared)
        inputs.n = engine.rows
    n = inputs.n
    values = _Values(dict(inputs.values), n, inputs.sizes)
    results: list = [None] * len(schedule.outputs)
    with np.errstate(all="ignore"):
        _run_stage(schedule, 0, values)
        for number, plan in enumerate(schedule.passes, start=1):
            if engine is None:
                found = (sweep or _pass_sums)(plan, inputs, values, chunk_rows, threads, n)
                parts = [schedule.reduced(plan, found, values.scalars, reduce_rows, 0)]
            else:
                payload = schedule.payload(values.scalars, params, _declared(inputs.sizes), n, reduce_rows)
                parts = engine.map_pass(schedule, number, payload)
            _finish_pass(plan, parts, inputs, values, results)
            _run_stage(schedule, number, values)
    for k, node in enumerate(schedule.outputs):
        value = results[k] if node.per_row else values.scalars[node]
        if node.per_row and (reduce_rows is not None or value is None):
            continue  # rows reduced where they are (``chunks.reduce_rows``)
        if node.per_row and not has_data:
            value = value[0]
        results[k] = float(value) if np.ndim(value) == 0 else np.asarray(value)
    return results


def part_sums(schedule, plan: Pass, payload: dict, scalars: dict, columns, chunk_rows: int, threads: int):
    """Pass ``plan`` over one partition's rows (``Schedule.part_sums``): per reduction its block
    sums (a list, or the kept sums of ``_BlockSums`` with the tail still pending), then the rows
    of each per-row output."""
    inputs = bind(schedule, payload["params"], columns, payload["sizes"])
    values = _Values(scalars, inputs.n, inputs.sizes)
    return _pass_sums(plan, inputs, values, chunk_rows, threads, payload["rows"])


def _declared(sizes: dict) -> dict:
    """Every index's size by name: a worker's run binds them as declared, whatever fixed them here."""
    return {index.name: size for index, size in sizes.items() if index is not ROWS}


def _run_stage(schedule, stage: int, values: _Values) -> None:
    for node in schedule._scalar_stages[stage]:
        if node.op.reduction and node.axis is ROWS and node.inputs[0].per_row:
            continue  # accumulated by a pass
        value = compute(node, values)
        values.scalars[node] = float(value) if np.ndim(value) == 0 else value


def _chunk_rows(plan: Pass, sizes, chunk_rows: int) -> int:
    widest = max((math.prod(sizes[i] for i in n.indices if i is not ROWS) for n in plan.nodes), default=1)
    # A row reduction keeps one sum per block of rows and label.
    widest = max([widest] + [math.prod(sizes[i] for i in r.indices) // BLOCK_ROWS for r in plan.reductions])
    rows = min(int(chunk_rows), max(BLOCK_ROWS, CHUNK_CELLS // max(widest, 1)))
    return max(1, -(-rows // BLOCK_ROWS)) * BLOCK_ROWS


# The block sums of a reduction over rows with labels that are kept until the
# end hold at most about this many values (32 MiB); past it, fixed groups of
# blocks are summed first (a family of 640,000 labels over 1,000,000 rows).
KEPT_SUMS = 1 << 22


class _BlockSums:
    """The block sums of one row reduction with labels, in fixed groups of ``group`` blocks.

    Groups count from row 0 and each is summed by the same numpy call, so the
    sums kept (one per group and label) are the same for every chunk size;
    their exact sum per label is the result.
    """

    def __init__(self, n: int, labels: int):
        self.group, blocks = 1, -(-n // BLOCK_ROWS)
        while -(-blocks // self.group) * labels > KEPT_SUMS:
            self.group *= 2
        self.kept: list = []
        self.pending: list = []
        self.count = 0

    def add(self, part: np.ndarray) -> None:
        if self.group == 1:
            self.kept.append(part)
            return
        self.pending.append(part)
        self.count += len(part)
        if self.count >= self.group:
            stacked = np.concatenate(self.pending)
            whole = len(stacked) - len(stacked) % self.group
            for first in range(0, whole, self.group):  # one call per group: the same shape each time
                self.kept.append(np.sum(stacked[first : first + self.group], axis=0, keepdims=True))
            rest = stacked[whole:]
            self.pending, self.count = ([rest] if len(rest) else []), len(rest)

    def all(self, shape) -> np.ndarray:
        if self.pending:
            self.kept.append(np.sum(np.concatenate(self.pending), axis=0, keepdims=True))
            self.pending = []
        return np.concatenate(self.kept) if self.kept else np.zeros((0, *shape))


def _pass_sums(plan: Pass, inputs: Inputs, values: _Values, chunk_rows: int, threads: int, n: int) -> list:
    """One pass over the ``inputs.n`` rows bound (of ``n`` in all, the first on a block boundary
    counted from row 0): per reduction its block sums, then each per-row output's rows."""
    m = inputs.n
    chunk = _chunk_rows(plan, inputs.sizes, chunk_rows)
    labels = {r: math.prod(inputs.sizes[i] for i in r.indices) for r in plan.reductions}
    labelled = [r for r in plan.reductions if r.inputs[0].indices != (ROWS,)]
    # Threads take whole groups of blocks (``_BlockSums``), so each keeps the sums a single sweep would.
    align = max([_BlockSums(n, labels[r]).group for r in labelled], default=1)
    parts = chunks.ranges(m, threads, align)
    # The chunks of all threads together hold what one thread's would (CHUNK_CELLS): the same memory.
    chunk = max(BLOCK_ROWS, chunk // len(parts) // BLOCK_ROWS * BLOCK_ROWS)
    results = {k: np.empty((m, *[inputs.sizes[i] for i in node.indices[1:]])) for k, node in plan.outputs}

    def sweep(start: int, stop: int) -> dict:
        with np.errstate(all="ignore"):
            return _sweep(
                plan, inputs, _Values(values.scalars, m, inputs.sizes), start, stop, chunk, results, n
            )

    found = chunks.in_threads(sweep, parts)
    sums = []
    for r in plan.reductions:
        if r not in labelled:
            sums.append([s for part in found for s in part[r]])
            continue
        if any(part[r].pending for part in found[:-1]):
            raise EvaluationError(
                f"a partition of {m} rows does not end on a group of {BLOCK_ROWS * align} rows: "
                "the row sums of a family this wide need partitions of whole groups"
            )
        last = found[-1][r]
        sums.append(([s for part in found for s in part[r].kept], last.pending, last.count))
    return sums + [results[k] for k, _ in plan.outputs]


def _finish_pass(plan: Pass, parts: list, inputs: Inputs, values: _Values, results: list) -> None:
    """The partitions' sums of one pass (in row order) into the run's values, their rows into ``results``."""
    n = values.n
    for position, r in enumerate(plan.reductions):
        if r.inputs[0].indices == (ROWS,):
            total = kernels.exact_sum([s for part in parts for s in part[position]])
            values.scalars[r] = float(total / n if n else math.nan) if r.op.averages else float(total)
            continue
        whole = _BlockSums(n, math.prod(inputs.sizes[i] for i in r.indices))
        for k, (kept, pending, count) in enumerate(part[position] for part in parts):
            if pending and k < len(parts) - 1:
                raise EvaluationError("a partition ends inside a group of row blocks")
            whole.kept.extend(kept)
        whole.pending, whole.count = parts[-1][position][1], parts[-1][position][2]
        stacked = whole.all([inputs.sizes[i] for i in r.indices])
        values.scalars[r] = kernels.total_of_label_blocks(stacked, n, r.op.averages)
    chunks.finish_rows(parts, len(plan.reductions), plan.outputs, results)


def _sweep(
    plan: Pass, inputs: Inputs, values: _Values, start: int, stop: int, chunk: int, results, n: int
) -> dict:
    """Rows start..stop of ``plan`` a chunk at a time: each row reduction's block sums (a list or ``_BlockSums``)."""
    width = min(chunk, stop - start)
    gathered = {
        node: np.empty((len(source), width))
        for node, source in inputs.data.items()
        if isinstance(source, list) and node in plan.nodes
    }
    blocks: dict[Node, object] = {
        r: []
        if r.inputs[0].indices == (ROWS,)
        else _BlockSums(n, math.prod(inputs.sizes[i] for i in r.indices))
        for r in plan.reductions
    }
    for first in range(start, stop, chunk):
        last = min(first + chunk, stop)
        values.rows = rows = {}
        values.shared = {}
        for node, dead in zip(plan.nodes, plan.release, strict=True):
            if node.is_leaf:
                rows[node] = _chunk_of(inputs.data[node], gathered.get(node), first, last)
            else:
                rows[node] = compute(node, values)
            for done in dead:
                del rows[done]
        for r in plan.reductions:
            part = _block_sums(r, values)
            if isinstance(blocks[r], list):
                blocks[r].extend(part)
            else:
                blocks[r].add(part)
        for k, node in plan.outputs:
            results[k][first:last] = values(node)
    return blocks


def _chunk_of(source, buffer, start: int, stop: int):
    """A row leaf's values for rows start:stop (views; a family given as columns gathered into ``buffer``)."""
    if isinstance(source, float):
        return np.full(stop - start, source)
    if buffer is None:
        return source[start:stop]
    m = stop - start
    for label, column in enumerate(source):
        buffer[label, :m] = column[start:stop]
    return buffer[:, :m].T


def _block_sums(r: Node, values: _Values):
    """The chunk's sums of each block of rows for the row reduction ``r``: a list, or an array per label."""
    found = factors(r)
    if found is None:
        body = values(r.inputs[0])
        return kernels.block_sums(body) if r.inputs[0].indices == (ROWS,) else kernels.row_block_sums(body)
    arrays = [values(f) for f in found]
    m = next(len(a) for a, f in zip(arrays, found, strict=True) if f.per_row)
    whole = m - m % BLOCK_ROWS
    parts = []
    for lo, hi in ((0, whole), (whole, m)):
        if hi > lo:
            split = [
                a[lo:hi].reshape(-1, min(BLOCK_ROWS, hi - lo), *a.shape[1:]) if f.per_row else a
                for a, f in zip(arrays, found, strict=True)
            ]
            parts.append(_contraction(found, split, r.indices, split_rows=True))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]
