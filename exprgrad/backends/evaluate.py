"""Numpy evaluation: output nodes -> a schedule -> values over data in chunks.

In: output nodes, parameter values, and data columns (float64 arrays);
for index families, arrays (``Schedule.run``).
Out: one value per output: a float for a scalar node, an array of one value
per row for a per-row node (a float when there is no data); for a node with
indices an array over them in canonical order (rows first).

The schedule runs the per-row part in passes over the rows, a chunk at a
time so the working buffers stay in cache, reusing buffers once their last
reader has run (``chunks``: chunk rows from the pass's buffer count and the
cache size, buffers kept between runs, rows split over threads). A reduction
(sum, mean) is accumulated across chunks: numpy's pairwise sum of each block
of rows, an exact sum of the block sums (the two halves of
``kernels.reduce_sum``, which generated Python runs whole), so the result
does not depend on the chunk size or the thread count; the sum of a product
of two per-row values is one dot product per block, never forming the
product (``kernels.reduce_dot``, which generated Python runs too). A total
past the float range is inf and inf - inf is nan, as numpy gives. A
reduction that feeds later per-row work (x - mean(x)) is finished in an
earlier pass. Every kernel runs under ``np.errstate(all="ignore")``: a
non-finite result is the caller's to report, never a raw numpy warning.
Nothing here changes the graph.
One planner serves every graph; a graph with indices besides the rows runs
its passes and stages through ``indexed`` (arrays over a node's indices,
contractions as matrix products), a scalar graph through the buffers here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .. import graph, graph_text, kernels, ops
from ..errors import ArgumentError, EvaluationError, Mention
from ..graph import Node
from ..kernels import BLOCK_ROWS, exact_sum, total_of_blocks
from . import chunks, compiled, hoist, indexed

__all__ = [
    "BLOCK_ROWS",
    "DEFAULT_CHUNK_ROWS",
    "Schedule",
    "compile_schedule",
    "dot_factors",
    "evaluate",
    "exact_sum",
]

DEFAULT_CHUNK_ROWS = indexed.DEFAULT_CHUNK_ROWS


@dataclass
class _Step:
    """Compute one per-row node for a chunk: fn(*inputs, out=buffer)."""

    fn: object
    inputs: tuple  # ("buf", index) | ("scalar", node) | ("column", name)
    buffer: int
    node: object  # the node it computes, or a part shared by several (_Common)


@dataclass
class _Pass:
    """One sweep over the rows: per-row steps, then reductions and outputs fed."""

    steps: list[_Step]
    n_buffers: int
    # (reduction node, source); a sum of a product of two per-row values:
    # (node, ("dot", (source, source))), the product not computed.
    reductions: list[tuple[Node, tuple]]
    outputs: list[tuple[int, tuple]]  # (output position, source)
    columns: int = 0  # the data columns its steps read


class Schedule:
    """A compiled evaluation plan for a fixed list of output nodes.

    Attributes:
        outputs: the output nodes, in order.
        parameters: names of the parameters a run needs values for (scalars
            and parameter families: ``w`` for ``w[j]``).
        columns: names of the per-row variables it reads (data columns and
            data families: ``x`` for ``x[j]``).
        indexed: whether the graph has indices besides the rows (its values
            are then arrays, run by ``indexed``).
    """

    def __init__(self, outputs: Sequence[Node]):
        self._given = list(outputs)  # as compiled: ``text`` writes these
        self._text: str | None = None
        self.outputs = hoist.hoist(outputs)  # equal nodes, signs moved off the rows
        self.order = graph.toposort(self.outputs)
        self.parameters = [n.name for n in graph.variables(self.outputs) if not n.per_row]
        self.columns = [n.name for n in graph.variables(self.outputs) if n.per_row]
        # Indices besides the rows (or an index's size): arrays, through ``indexed``.
        self.indexed = any(
            n.op is graph.SIZE or any(i is not graph.ROWS for i in n.indices) for n in self.order
        )
        if any(n.op is ops.LSE and n.axis is graph.ROWS for n in self.order):
            raise EvaluationError("logsumexp over the data rows is not supported: use log(sum(exp(e)))")
        self._constants = {n: n.value for n in self.order if n.is_const}
        self._parameter_nodes = [n for n in self.order if n.is_var and not n.per_row]
        self._workspaces = chunks.Workspaces()  # buffers kept between runs
        self._plan()

    # ------------------------------------------------------------ planning

    def _plan(self) -> None:
        # ready[id]: after how many data passes a scalar node's value is known;
        # needs[id]: for a per-row node, the passes that must finish before it
        # can be computed (it then runs in pass needs + 1).
        ready: dict[Node, int] = {}
        needs: dict[Node, int] = {}
        for node in self.order:
            if node.per_row:
                needs[node] = max((needs[i] if i.per_row else ready[i] for i in node.inputs), default=0)
            elif node.inputs and node.op.reduction and node.inputs[0].per_row:
                ready[node] = needs[node.inputs[0]] + 1
            else:
                ready[node] = max((ready[i] for i in node.inputs), default=0)
        self._ready = ready
        row_outputs = [(k, n) for k, n in enumerate(self.outputs) if n.per_row]
        last = max(
            [needs[n] + 1 for _, n in row_outputs]
            + [ready[n] for n in self.order if not n.per_row and n.inputs],
            default=0,
        )
        self.passes: list[_Pass] = []
        for number in range(1, last + 1):
            reductions = [
                n
                for n in self.order
                if not n.per_row
                and n.inputs
                and n.op.reduction
                and n.inputs[0].per_row
                and ready[n] == number
            ]
            outputs = [(k, n) for k, n in row_outputs if needs[n] + 1 == number]
            if self.indexed:
                self.passes.append(indexed.plan_pass(self.order, reductions, outputs))
            else:
                self.passes.append(self._plan_pass(reductions, outputs))
        # Scalar nodes grouped by the pass after which they can be computed.
        self._scalar_stages: list[list[Node]] = [[] for _ in range(last + 1)]
        for node in self.order:
            if not node.per_row and node.inputs:
                self._scalar_stages[ready[node]].append(node)

    def _plan_pass(self, reductions: list[Node], outputs: list[tuple[int, Node]]) -> _Pass:
        dots = {r: dot_factors(r) for r in reductions}
        targets = [i for r in reductions for i in (dots[r] or r.inputs)] + [n for _, n in outputs]
        work = _shared_work([n for n in graph.toposort(targets) if n.per_row and n.inputs])
        last_use: dict = {}
        for position, (_, _, inputs) in enumerate(work):
            for i in inputs:
                last_use[i] = position
        for t in targets:
            last_use[t] = len(work)  # read after the steps: keep alive
        buffer_of: dict = {}
        free: list[int] = []
        n_buffers = 0
        steps = []
        for position, (key, fn, inputs) in enumerate(work):
            if free:
                buffer = free.pop()
            else:
                buffer, n_buffers = n_buffers, n_buffers + 1
            buffer_of[key] = buffer
            steps.append(_Step(fn, tuple(self._source(i, buffer_of) for i in inputs), buffer, key))
            # Inputs are freed only after the output buffer is chosen, so no
            # kernel ever writes into one of its own operands.
            for i in set(inputs):
                if i in buffer_of and last_use.get(i) == position:
                    free.append(buffer_of[i])
        read = {
            i.name for _, _, inputs in work for i in inputs if isinstance(i, Node) and i.is_var and i.per_row
        }
        read |= {t.name for t in targets if t.is_var and t.per_row}
        return _Pass(
            steps=steps,
            n_buffers=n_buffers,
            reductions=[
                (r, ("dot", tuple(self._source(f, buffer_of) for f in dots[r])))
                if dots[r]
                else (r, self._source(r.inputs[0], buffer_of))
                for r in reductions
            ],
            outputs=[(k, self._source(n, buffer_of)) for k, n in outputs],
            columns=len(read),
        )

    @staticmethod
    def _source(node, buffer_of: dict) -> tuple:
        if isinstance(node, _Common):
            return ("buf", buffer_of[node])
        if not node.per_row:
            return ("scalar", node)
        if node.is_var:
            return ("column", node.name)
        return ("buf", buffer_of[node])

    # ------------------------------------------------------------ running

    @chunks.one_blas_thread
    def run(
        self,
        params: Mapping[str, float],
        columns: Mapping[str, np.ndarray] | None = None,
        *,
        chunk_rows: int | None = None,
        sizes: Mapping[str | graph.Index, int] | None = None,
        threads: int | None = None,
        engine=None,
        reduce_rows=None,
    ) -> list[float | np.ndarray]:
        """Evaluate every output.

        Args:
            params: values of the scalar parameters (and, without data, of
                per-row names given as single numbers); for a parameter
                family an array in its written axes (``W[k,j]``: k by j),
                or one number for every member.
            columns: data columns, each a float64 array of the same length;
                for a data family a 2-d rows x labels array or a sequence
                of 1-d columns.
            chunk_rows: rows per chunk, rounded up to whole blocks of
                BLOCK_ROWS (results do not depend on it); None chooses from
                each pass's buffer count and the cache size.
            sizes: the number of labels of declared indices (``k in 1:16``),
                for indices no array fixes.
            threads: how many threads share the rows of each pass (results
                do not depend on it); None: every core this process may use.
            engine: None, the passes run here over ``columns``; or an engine
                (``exprgrad.engines``) that holds the data in partitions and
                runs each pass on every partition (``part_sums``), wherever
                they are: the same bits as one process gives.
            reduce_rows: None, or (function, extra arguments): each
                partition's rows of the per-row outputs are handed to
                function(values, start row, *extra) where the partition is
                (``chunks.reduce_rows``; a function a worker can import), and
                the run returns a ``chunks.Reduced`` of what it made, one per
                partition in row order, at the first per-row output's place
                (None at the others'). With no engine, all rows are one partition.

        Returns:
            One entry per output: float for a node without indices; for a
            per-row output an array of length n with data, a float without;
            for a node with indices an array over them in canonical order
            (rows first). Arrays are new: none is a view into the schedule's
            kept buffers.

        Raises:
            EvaluationError: a parameter or column has no value, columns
                differ in length, or two uses of an index disagree on its size.
            ArgumentError: ``threads`` or ``chunk_rows`` is not a whole number of at least 1.
        """
        threads = chunks.whole_number("threads", threads, chunks.usable_cores())
        chunk_rows = chunks.whole_number("chunk_rows", chunk_rows, None)
        if self.indexed:
            return indexed.run(
                self, params, columns, chunk_rows or DEFAULT_CHUNK_ROWS, sizes, threads, engine, reduce_rows
            )
        has_data = bool(columns) or engine is not None
        if engine is None:
            column_values, n = self._bind_columns(params, columns or {})
        else:
            column_values, n = None, engine.rows
            self._check_engine_columns(params, engine)
        scalars = self._bind_scalars(params)
        results: list = [None] * len(self.outputs)
        with np.errstate(all="ignore"):
            self._run_scalars(0, scalars, n)
            for number, plan in enumerate(self.passes, start=1):
                if engine is None:
                    found = self._pass_sums(plan, scalars, column_values, n, n, chunk_rows, threads)
                    parts = [self.reduced(plan, found, scalars, reduce_rows, 0)]
                else:
                    payload = self.payload(scalars, params, sizes, n, reduce_rows)
                    parts = engine.map_pass(self, number, payload)
                self._finish_pass(plan, parts, scalars, n, results)
                self._run_scalars(number, scalars, n)
        for k, node in enumerate(self.outputs):
            if not node.per_row:
                results[k] = float(scalars[node])
            elif not has_data and reduce_rows is None:
                results[k] = float(np.asarray(results[k]).reshape(-1)[0])
        return results

    # ------------------------------------------------------------ engines

    def reduced(self, plan, found: list, scalars: dict, reducer, start: int) -> list:
        """``found``, a partition's results of ``plan``, with its rows reduced by ``reducer`` (``chunks.reduce_rows``)."""
        return chunks.reduce_rows(
            found, len(plan.reductions), self.outputs, plan.outputs, scalars, reducer, start
        )

    @property
    def text(self) -> str:
        """The graph of the outputs as text (``graph_text``): what a cluster's workers rebuild this schedule from."""
        if self._text is None:
            self._text = graph_text.dumps(self._given)
        return self._text

    def payload(self, scalars: dict, params, sizes, n: int, reduce_rows=None) -> dict:
        """What a worker needs for one pass over its rows: plain numbers and arrays, no nodes.

        ``scalars``: the values known so far, by node; sent as a list by the
        node's position in ``order`` (the worker's schedule, rebuilt from
        ``text``, has the same order).
        """
        position = {node: k for k, node in enumerate(self.order)}
        values = [None] * len(self.order)
        for node, value in scalars.items():
            if node in position:
                values[position[node]] = value
        given = {name: params[name] for name in self.parameters if name in params}
        given |= {name: params[name] for name in self.columns if name in params}
        return {
            "scalars": values,
            "params": given,
            "sizes": dict(sizes or {}),
            "rows": n,
            "reduce": reduce_rows,
            "start": 0,  # each partition's own first row (the engine sets it)
        }

    @chunks.one_blas_thread
    def part_sums(self, number: int, payload: dict, columns, *, chunk_rows=None, threads=None) -> list:
        """Pass ``number`` over one partition's rows (``columns``): its sums, to add to the others'.

        The partition is rows [start, start + len) of the whole data with
        start a multiple of BLOCK_ROWS, so its block sums are the whole run's;
        the caller adds every partition's in row order (``Schedule.run`` with
        an engine). One entry per reduction of the pass, then one per per-row output.
        """
        threads = chunks.whole_number("threads", threads, chunks.usable_cores())
        chunk_rows = chunks.whole_number("chunk_rows", chunk_rows, None)
        scalars = {node: v for node, v in zip(self.order, payload["scalars"]) if v is not None}
        plan = self.passes[number - 1]
        with np.errstate(all="ignore"):
            if self.indexed:
                found = indexed.part_sums(
                    self, plan, payload, scalars, columns, chunk_rows or DEFAULT_CHUNK_ROWS, threads
                )
            else:
                column_values, m = self._bind_columns(payload["params"], columns)
                found = self._pass_sums(plan, scalars, column_values, m, payload["rows"], chunk_rows, threads)
            return self.reduced(plan, found, scalars, payload.get("reduce"), payload.get("start", 0))

    def _check_engine_columns(self, params, engine) -> None:
        missing = [name for name in self.columns if name not in engine.columns and name not in params]
        if missing:
            raise EvaluationError(f"no values for '{missing[0]}', which the function reads as a data column")

    def _bind_scalars(self, params) -> dict[Node, float]:
        missing = [name for name in self.parameters if name not in params]
        if missing:
            raise EvaluationError(
                "no value given for parameter"
                + ("s " if len(missing) > 1 else " ")
                + ", ".join(f"'{m}'" for m in missing)
            )
        scalars: dict[Node, float] = dict(self._constants)
        for node in self._parameter_nodes:
            scalars[node] = float(params[node.name])
        return scalars

    def _bind_columns(self, params, columns) -> tuple[dict[str, object], int]:
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise EvaluationError("data columns differ in length")
        n = lengths.pop() if lengths else 1
        values: dict[str, object] = {}
        for name in self.columns:
            if name in columns:
                values[name] = np.ascontiguousarray(columns[name], dtype=np.float64)
            elif name in params:
                values[name] = float(params[name])  # a column given as one number
            else:
                one_value = Mention("at", {name: "..."})
                raise EvaluationError(
                    f"no values for '{name}', which the function reads as a data column "
                    f"(give a data file with a column '{name}', or one value with {one_value})",
                    mentions=(one_value,),
                )
        return values, n

    def _run_scalars(self, stage: int, scalars: dict[Node, float], n: int) -> None:
        for node in self._scalar_stages[stage]:
            spec = node.op
            if spec.reduction and node.inputs[0].per_row:
                continue  # accumulated by a pass
            args = [scalars[i] for i in node.inputs]
            # A reduction of a scalar sees it in each of the n rows.
            value = spec.kernel(*args, n) if spec.reduction else spec.kernel(*args)
            scalars[node] = float(value)

    def _pass_sums(self, plan: _Pass, scalars, column_values, m, n, chunk_rows, threads) -> list:
        """One pass over ``m`` rows (of ``n`` in all): per reduction its block sums, then the per-row outputs.

        A reduction of a column given as one number is ("value", its total over all n rows).
        """
        rows = chunks.chunk_rows(plan.n_buffers, plan.columns, chunk_rows)
        results = {k: np.empty(m) for k, _ in plan.outputs}
        reducers, sums = chunks.run_pass(
            plan, id(plan), scalars, column_values, m, rows, threads, self._workspaces, results
        )
        found: list = []
        for (r, kind, sources), blocks in zip(reducers, sums, strict=True):
            if kind == "number":  # a data column given as one number: reduced at once
                values = [column_values[source[1]] for source in sources]
                value = values[0] if len(values) == 1 else np.multiply(*values)
                found.append(("value", float(r.op.kernel(value, n))))
            else:
                found.append(blocks)
        return found + [results[k] for k, _ in plan.outputs]

    def _finish_pass(self, plan: _Pass, parts: list, scalars, n: int, results: list) -> None:
        """The partitions' sums of one pass (in row order) into ``scalars``, their rows into ``results``."""
        for position, (r, _) in enumerate(plan.reductions):
            first = parts[0][position]
            if isinstance(first, tuple):
                scalars[r] = first[1]
            else:
                blocks = first if len(parts) == 1 else [s for part in parts for s in part[position]]
                # The mean of no rows is nan, as np.mean gives (without its warning).
                scalars[r] = float(total_of_blocks(blocks, n, r.op.averages))
        chunks.finish_rows(parts, len(plan.reductions), plan.outputs, results)


@dataclass(frozen=True)
class _Common:
    """The value a pass computes once for several ops of one operand (``OpSpec.shares``)."""

    kernel: object
    operand: Node


def _shared_work(nodes: list[Node]) -> list[tuple]:
    """The pass's work in order: (key, function, inputs), one per node, and one per shared part.

    Where two ops of one operand share a common kernel (sigmoid and softplus of
    z: exp(-|z|)), it is computed once, before the first of them, and each
    takes it (``rest(z, common)``): the same numbers as each op's own kernel.
    """
    users: dict[tuple, int] = {}
    for node in nodes:
        if node.op.shares is not None:
            key = (node.op.shares[0], node.inputs[0])
            users[key] = users.get(key, 0) + 1
    work, done = [], set()
    for node in nodes:
        shares = node.op.shares
        if shares is not None and users[(shares[0], node.inputs[0])] > 1:
            common = _Common(shares[0], node.inputs[0])
            if common not in done:
                done.add(common)
                work.append((common, shares[0], (node.inputs[0],)))
            work.append((node, shares[1], (node.inputs[0], common)))
        else:
            work.append((node, kernels.for_operands(node.op.kernel, len(node.inputs)), node.inputs))
    return work


def dot_factors(node: Node) -> tuple[Node, Node] | None:
    """The two factors of a sum or mean over the rows of a product of two per-row values, else None.

    Such a reduction is one dot product per block of rows (``kernels.reduce_dot``),
    in the evaluator and in generated Python alike.
    """
    if not (node.op.reduction and node.inputs and node.axis is graph.ROWS):
        return None
    body = node.inputs[0]
    if body.op is not ops.MUL or len(body.inputs) != 2 or body.indices != (graph.ROWS,):
        return None
    return body.inputs if all(i.per_row for i in body.inputs) else None


def compile_schedule(outputs: Sequence[Node], backend: str = "numpy") -> Schedule:
    """Compile ``outputs`` into a reusable ``Schedule`` (see ``Schedule.run``).

    ``backend``: "numpy"; "compiled", each pass one numba loop (the extra
    exprgrad[fast]; ``compiled.CompiledSchedule``); or "auto", compiled where
    it is installed, takes the graph and repays compiling. numba is imported
    only when a compiled kernel runs.
    """
    if backend == "numpy":
        return Schedule(outputs)
    if backend not in ("compiled", "auto"):
        raise ArgumentError(f"backend= must be one of 'numpy', 'compiled', 'auto', not {backend!r}")
    return compiled.CompiledSchedule(Schedule(outputs), backend)


def evaluate(
    outputs: Sequence[Node],
    params: Mapping[str, float],
    columns: Mapping[str, np.ndarray] | None = None,
    *,
    chunk_rows: int | None = None,
    sizes: Mapping[str | graph.Index, int] | None = None,
    threads: int | None = None,
    backend: str = "numpy",
) -> list[float | np.ndarray]:
    """Compile and run once: the values of ``outputs`` (see ``Schedule.run``, ``compile_schedule``)."""
    schedule = compile_schedule(outputs, backend)
    return schedule.run(params, columns, chunk_rows=chunk_rows, sizes=sizes, threads=threads)
