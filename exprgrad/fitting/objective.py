"""The compiled objective of a fit: a parameter vector in, numbers out.

In: the cost graph (a scalar node), when the cost is a sum of squares the
per-row residual graph whose squares it sums, the names of the parameters
(their order is the order of the vector) or, with families, the vector's
``Members`` layout and one variable node per parameter, and the data columns
(a data family as a sequence of its columns).
Out: ``Objective``, whose methods return the cost with its gradient, the
Hessian, the residuals with their Jacobian or their least-squares factors
(R of [J | r], ``factors``): each call is one run of one
compiled schedule, that is one pass over the rows whatever the number of
parameters. The derivative graphs come from ``passes.diff`` and are compiled
once, when first needed.

Must not: differentiate numerically, know any optimizer, print.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .. import graph, memory
from ..backends.binding import arrange, written_axes
from ..backends.chunks import Reduced
from ..backends.evaluate import compile_schedule
from ..engines import InProcess
from ..errors import ExprgradError, FitError, Mention
from ..graph import Node
from ..passes.diff import diff, hessian, jacobian
from ..passes.simplify import simplify_many
from .factors import LEAF_ROWS, Factors, Refinement, combine, leaf_factors
from .members import Block, Members

# What to do when a p-by-p or n-by-p matrix would not fit: a method that needs neither.
_NO_MATRIX = (f"fit with {Mention('method', 'lbfgs')}, which needs neither", (Mention("method", "lbfgs"),))

# The least-squares factors are made this many rows at a time (16 leaves): the
# Jacobian of one partition, never of all the rows, is in memory at once.
FACTOR_PARTITION_ROWS = 16 * LEAF_ROWS

# Called after every evaluation: (evaluation number, cost, gradient norm or None).
EvalHook = Callable[[int, float, "float | None"], None]


def sum_of_squares(r: np.ndarray) -> float:
    """sum(r^2), inf on overflow (no warning: callers treat inf as a failed point)."""
    with np.errstate(all="ignore"):
        return float(np.dot(r, r))


class Objective:
    """Cost, gradient, Hessian, residuals and Jacobian of one fit, by compiled schedules.

    Attributes:
        params: the parameter names, in the order of the vectors.
        rows: the number of data rows.
        evaluations: how many schedule runs (passes over the data) so far.
        last_finite: (x, cost) of the last evaluation whose cost was finite.
        best_finite: (x, cost) of the evaluation with the lowest finite cost.
        history: the cost of every evaluation, in order.
    """

    def __init__(
        self,
        cost: Node,
        params: Sequence[str],
        columns: Mapping[str, np.ndarray],
        rows: int,
        residual: Node | None = None,
        *,
        members: Members | None = None,
        nodes: Sequence[Node] | None = None,
        sizes: Mapping[str, int] | None = None,
    ):
        self.cost = cost
        self.residual_node = residual
        # Without families the vector is the parameters, one float each (the fast path).
        self.members = members if members is not None else Members([Block(name) for name in params])
        self.families = self.members.has_families
        self.params = list(self.members.names)
        blocks = self.members.blocks
        self.param_nodes = list(nodes) if nodes is not None else [graph.var(b.name) for b in blocks]
        self.block_names = [block.name for block in blocks]
        self.sizes = dict(sizes or {})
        self.rows = rows
        self.columns = dict(columns)
        self.evaluations = 0
        self.last_finite: tuple[np.ndarray, float] | None = None
        self.best_finite: tuple[np.ndarray, float] | None = None
        self.history: list[float] = []
        self.on_eval: EvalHook | None = None
        self.last_grad_norm: float | None = None
        self._memo: tuple[bytes, float, np.ndarray] | None = None
        self._schedules: dict[str, object] = {}
        # The evaluation backend and thread count of every schedule (see compile_schedule).
        self.backend, self.threads = "numpy", None
        # Where the passes run: None here, or an engine holding the data's partitions (``engines``).
        self.engine = None

    # ------------------------------------------------------------ graphs

    @functools.cached_property
    def gradient_nodes(self) -> list[Node]:
        """d cost/d param, one graph per parameter (one reverse sweep)."""
        table = diff(self.cost, self.param_nodes)
        return [table[name] for name in self.block_names]

    @functools.cached_property
    def value_grad_nodes(self) -> list[Node]:
        """The cost and its gradient, simplified together so they keep sharing nodes.

        Simplifying folds the constant factors the reverse sweep leaves inside
        the reductions (mean(x*(2*r)) -> 2*mean(x*r)): one multiply per row and
        parameter less in every evaluation (measured: 9% on linear least squares).
        """
        return simplify_many([self.cost, *self.gradient_nodes])

    @functools.cached_property
    def jacobian_nodes(self) -> list[Node]:
        """d residual_i/d param, one per-row graph per parameter."""
        table = jacobian(self.residual_node, self.param_nodes)
        return [table[name] for name in self.block_names]

    @functools.cached_property
    def hessian_nodes(self) -> list[Node]:
        """The upper triangle of the Hessian of the cost, row by row (with families:
        one graph per pair of parameters, a family's with both their indices)."""
        table = hessian(self.cost, self.param_nodes)
        p = self.block_names
        return [table[p[i]][p[j]] for i in range(len(p)) for j in range(i, len(p))]

    @functools.cached_property
    def has_hessian(self) -> bool:
        """Whether the exact Hessian can be built. Always for scalars; for families
        (whose second derivatives may hold Kronecker deltas between two indices, as
        the network's d2/dW[k,j]dv[k2]) unless building or placing an entry fails:
        then newton and nll are refused, and the scaling and second-order checks
        that read it where it is cheap do without."""
        if not self.families:
            return True
        try:
            self._hessian_axes  # noqa: B018  (builds the graphs and places their axes)
        except (ExprgradError, ValueError):
            return False
        return True

    @functools.cached_property
    def _hessian_axes(self) -> list[tuple[int, int, list[str], tuple[str, ...]]]:
        """Per upper-triangle entry: (block i, block j, the entry's axes, the axes wanted:
        block i's written axes, then block j's, renamed where they clash with i's)."""
        blocks = self.members.blocks
        pairs = [(i, j) for i in range(len(blocks)) for j in range(i, len(blocks))]
        placed = []
        for (i, j), node in zip(pairs, self.hessian_nodes):
            have = [index.name for index in node.indices]
            placed.append((i, j, have, written_axes(have, blocks[i].axes, blocks[j].axes)))
        return placed

    def residuals_are_linear(self) -> bool:
        """True when no Jacobian graph reads a parameter: the residuals are affine in them."""
        if self.residual_node is None:
            return False
        return not any(not v.per_row for v in graph.variables(self.jacobian_nodes))

    # ------------------------------------------------------------ running

    def _run(
        self, key: str, outputs: Callable[[], list[Node]], x: np.ndarray, *, engine=None, reduce_rows=None
    ):
        # By backend too: ``prepare`` evaluates before a fit sets the backend it asks for.
        schedule = self._schedules.get((key, self.backend))
        if schedule is None:
            schedule = self._schedules[key, self.backend] = compile_schedule(outputs(), self.backend)
        engine = engine if engine is not None else self.engine
        columns = None if engine is not None else self.columns or None
        if self.families:
            params = self.members.values(x)
        else:
            params = dict(zip(self.params, np.asarray(x, dtype=float).tolist()))
        values = schedule.run(
            params,
            columns,
            sizes=(self.sizes or None) if self.families else None,
            threads=self.threads,
            engine=engine,
            reduce_rows=reduce_rows,
        )
        self.evaluations += 1
        return values

    def _record(self, x: np.ndarray, cost: float, grad_norm: float | None) -> None:
        self.history.append(cost)
        if math.isfinite(cost) and np.isfinite(x).all():
            self.last_finite = (np.array(x, dtype=float), cost)
            if self.best_finite is None or cost < self.best_finite[1]:
                self.best_finite = self.last_finite
        if self.on_eval is not None:
            self.on_eval(self.evaluations, cost, grad_norm)

    def value(self, x: np.ndarray) -> float:
        """The cost at ``x``."""
        cost = float(self._run("value", lambda: self.value_grad_nodes[:1], x)[0])
        self._record(x, cost, None)
        return cost

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """The cost and its gradient at ``x``, in one pass over the data.

        Asking again for the point of the previous call costs no pass.
        """
        x = np.asarray(x, dtype=float)
        key = x.tobytes()
        if self._memo is not None and self._memo[0] == key:
            return self._memo[1], self._memo[2].copy()
        values = self._run("value_grad", lambda: self.value_grad_nodes, x)
        cost = float(values[0])
        if self.families:
            grad = self._flat_gradient(values[1:])
        else:
            grad = np.array(values[1:], dtype=float)
        with np.errstate(all="ignore"):  # a huge gradient's norm is inf, not a warning
            self.last_grad_norm = float(np.sqrt(grad @ grad))  # np.linalg.norm's own formula
        self._memo = (key, cost, grad.copy())
        self._record(x, cost, self.last_grad_norm)
        return cost, grad

    def _flat_gradient(self, values: list) -> np.ndarray:
        """The gradient's values per family (arrays in canonical axes) as the flat vector."""
        return np.concatenate(
            [
                self.members.gradient(block, value, axes)
                for block, value, axes in zip(self.members.blocks, values, self._gradient_axes)
            ]
        )

    @functools.cached_property
    def _gradient_axes(self) -> list[list[str]]:
        """The index names of each gradient graph's value, block by block."""
        return [[i.name for i in node.indices] for node in self.value_grad_nodes[1:]]

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """The p-by-p Hessian of the cost at ``x``, every entry in one pass."""
        memory.check_matrix(len(x), len(x), "the Hessian of the cost", *_NO_MATRIX)
        if self.families:
            return self._family_hessian(x)
        values = self._run("hessian", lambda: self.hessian_nodes, x)
        p = len(self.params)
        matrix = np.empty((p, p))
        k = 0
        for i in range(p):
            for j in range(i, p):
                matrix[i, j] = matrix[j, i] = float(values[k])
                k += 1
        return matrix

    def _family_hessian(self, x: np.ndarray) -> np.ndarray:
        if not self.has_hessian:
            raise FitError(
                "the Hessian of this cost could not be built (a second derivative between "
                f"families could not be placed in the members): fit it with {Mention('method', 'lbfgs')}",
                mentions=(Mention("method", "lbfgs"),),
            )
        values = self._run("hessian", lambda: self.hessian_nodes, x)
        blocks = self.members.blocks
        matrix = np.empty((self.members.size, self.members.size))
        for (i, j, have, want), value in zip(self._hessian_axes, values):
            a, b = blocks[i], blocks[j]
            entry = arrange(value, have, want, (*a.shape, *b.shape)).reshape(a.size, b.size)
            if i == j:  # a family with itself: its two index orders may differ in the last bit
                entry = (entry + entry.T) / 2
            rows, cols = slice(a.offset, a.offset + a.size), slice(b.offset, b.offset + b.size)
            matrix[rows, cols] = entry
            matrix[cols, rows] = entry.T
        return matrix

    def residuals_jacobian(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The residuals and their n-by-p Jacobian at ``x``, in one pass over the data."""
        memory.check_matrix(self.rows, len(x), "the Jacobian of the residuals", *_NO_MATRIX)
        values = self._run("residual_jacobian", self._residual_outputs, x)
        r = self._per_row(values[0])
        layout = self._jacobian_layout if self.families else None
        matrix = jacobian_matrix(values[1:], self.rows, layout, len(self.params))
        cost = sum_of_squares(r)
        with np.errstate(all="ignore"):
            norm = float(np.linalg.norm(2.0 * (matrix.T @ r))) if math.isfinite(cost) else None
        self._record(x, cost, norm)
        return r, matrix

    def residual_factors(self, x: np.ndarray, leaf_rows: int = LEAF_ROWS) -> Factors:
        """The least-squares factors at ``x``: R of [J | r], the RSS, the row count (``factors``).

        One pass over the data (the residual-and-Jacobian schedule) in
        partitions: each partition's rows become its leaves where the
        partition is (``partition_leaves``, on a cluster's worker with an
        engine), and only the leaves come back to be combined, so the n-by-p
        Jacobian is never whole: memory is a partition's rows by p. Without
        an engine the partitions are FACTOR_PARTITION_ROWS-row slices of the
        columns, run here one after another.
        """
        factors = combine(self._per_partition(x, partition_leaves, leaf_rows))
        cost = factors.rss
        with np.errstate(all="ignore"):
            norm = float(np.linalg.norm(2.0 * (factors.R.T @ factors.qtr))) if math.isfinite(cost) else None
        self._record(x, cost, norm)
        return factors

    def refinement_sums(self, origin: np.ndarray, calls: tuple, leaf_rows: int = LEAF_ROWS) -> list:
        """``factors.Refinement``'s sums after ``calls`` ((method name, vector), ..., ending with
        "sums"), its rows those of the residuals and Jacobian at ``origin``, per leaf.

        One pass over the data, like ``residual_factors``: each partition
        rebuilds its leaves' rows at ``origin`` and replays the calls on them
        where it is, so the refinement's per-row state (a residual estimate
        per row) is never gathered, and a recomputed partition replays the
        same numbers. Without an engine, the partitions run here.
        """
        return self._per_partition(origin, partition_refinement, leaf_rows, calls)

    def _per_partition(self, x: np.ndarray, reducer, leaf_rows: int, *more) -> list:
        """``reducer(values, start, layout, params, leaf_rows, *more)`` of every partition's
        residual and Jacobian rows at ``x``, where the partition is; their lists joined."""
        memory.check_matrix(
            min(self.rows, FACTOR_PARTITION_ROWS), len(x), "the Jacobian of the residuals", *_NO_MATRIX
        )
        engine = self.engine
        if engine is None:
            count = max(1, -(-self.rows // FACTOR_PARTITION_ROWS))
            engine = InProcess(self.columns, count, threads=self.threads) if self.columns else None
        arguments = (self._jacobian_layout if self.families else None, len(self.params), leaf_rows, *more)
        values = self._run(
            "residual_jacobian", self._residual_outputs, x, engine=engine, reduce_rows=(reducer, arguments)
        )
        if isinstance(values[0], Reduced):
            return [item for part in values[0] for item in part]
        # Rows that could not be reduced where they are (see chunks.reduce_rows), or none.
        return reducer([self._per_row(values[0]), *values[1:]], 0, *arguments)

    def _residual_outputs(self) -> list[Node]:
        return [self.residual_node, *self.jacobian_nodes]

    @functools.cached_property
    def _jacobian_layout(self) -> list[tuple]:
        """Per Jacobian graph: (offset, members, its value's axes, the block's axes, the block's shape)."""
        return [
            (block.offset, block.size, tuple(i.name for i in node.indices), tuple(block.axes), block.shape)
            for block, node in zip(self.members.blocks, self.jacobian_nodes, strict=True)
        ]

    def _per_row(self, value) -> np.ndarray:
        if isinstance(value, np.ndarray):
            return value
        return np.full(self.rows, float(value))


def partition_leaves(values: list, start: int, layout, params: int, leaf_rows: int = LEAF_ROWS) -> list:
    """The least-squares leaves of one partition's rows (a reducer for ``Schedule.run(reduce_rows=...)``).

    ``values``: the residual's rows, then each Jacobian graph's value (its
    rows, or one number for every row); ``layout``: for families, each
    graph's place in the parameter vector (``Objective._jacobian_layout``),
    None when every parameter is one number. Runs where the partition is.
    """
    r = np.asarray(values[0], dtype=float)
    return leaf_factors(r, jacobian_matrix(values[1:], len(r), layout, params), start, leaf_rows)


def partition_refinement(values: list, start: int, layout, params: int, leaf_rows: int, calls: tuple) -> list:
    """One partition's part of ``Objective.refinement_sums``: ``calls`` replayed on a
    ``factors.Refinement`` of its rows (a reducer for ``Schedule.run(reduce_rows=...)``)."""
    r = np.asarray(values[0], dtype=float)
    rows = Refinement(jacobian_matrix(values[1:], len(r), layout, params), -r, start, leaf_rows)
    parts = []
    for method, vector in calls:
        parts = getattr(rows, method)(vector)
    return parts


def jacobian_matrix(values: list, rows: int, layout, params: int) -> np.ndarray:
    """The rows-by-params Jacobian from each Jacobian graph's value (its rows, or one number for
    every row), placed by ``layout`` (``Objective._jacobian_layout``; None: one column per graph)."""
    matrix = np.empty((rows, params))
    if layout is None:
        for j, column in enumerate(values):
            matrix[:, j] = column  # a scalar (the same in every row) broadcasts
        return matrix
    for (offset, size, axes, block_axes, shape), value in zip(layout, values, strict=True):
        columns = arrange(value, axes, (graph.ROWS.name, *block_axes), (rows, *shape)).reshape(rows, size)
        matrix[:, offset : offset + size] = columns
    return matrix
