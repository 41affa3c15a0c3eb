"""Least-squares factors of the residuals: per leaf of rows, combined by one fixed tree (TSQR).

In: per-row residuals r and their Jacobian J for some rows of the data (a
partition, or all of them) and the number of their first row. Out: ``Leaf``,
one per ``LEAF_ROWS`` rows counted from row 0 (the last may be short): the
R factor of the leaf's [J | r] and the exact partials of its sum of squares;
``combine`` turns any set of leaves into ``Factors``, the R of the whole
[J | r] (p+1 by p+1), the residual sum of squares and the row count.

The residual column rides along in the QR, so R of [J | r] is
[[R, Qᵀr], [0, ρ]]: R the R of J, Qᵀr the residuals in J's range, ρ the
norm of what a Gauss-Newton step cannot remove. Least squares needs nothing
else: JᵀJ = RᵀR, Jᵀr = RᵀQᵀr, ||r||² = ||Qᵀr||² + ρ², column norms and
singular values of J are those of R. ρ comes out of orthogonal
transformations (never as sqrt(rss - ||Qᵀr||²), which cancels).

Leaves are combined pairwise by leaf number (2i with 2i+1, then up), each
result's rows signed so its diagonal is >= 0, and sums of squares are added
exactly: ``Factors`` depend only on the set of leaves, never on how they were
grouped into partitions or in which order they arrived. A leaf is a pure
function of its rows, so a partition can compute its own. The direct solve's
refinement passes are per leaf too (``Refinement``, ``add_sums``).

Must not: evaluate graphs, import scipy at import time (its LAPACK is
imported where a QR runs), or depend on the grouping of rows.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..backends.chunks import one_blas_thread
from ..kernels import BLOCK_ROWS, exact_sum, raw_block_sums

# Rows per leaf: partitions of the data are whole numbers of leaves. A multiple
# of the evaluator's block, so a leaf's block sums are the evaluator's own.
LEAF_ROWS = 64 * BLOCK_ROWS
# Residuals past the float range are replaced by this in the QR (and non-finite
# Jacobian entries by 0), so Levenberg-Marquardt sees a huge, finite misfit.
HUGE = 1e150
WIDE = np.longdouble  # 64-bit mantissa on x86; float64 elsewhere


@dataclass(frozen=True)
class Leaf:
    """The factors of one leaf of rows.

    number: the leaf's place, counted from row 0 in LEAF_ROWS-row leaves.
    top: R of the leaf's [J | r], min(rows, p+1) by p+1, diagonal >= 0.
    squares: exact partials of sum(r²) (their exact sum is the sum of the
        evaluator's block sums of r²).
    rows: the leaf's row count.
    finite_residuals, finite_jacobian: whether every r, every J entry was finite.
    """

    number: int
    top: np.ndarray
    squares: tuple[float, ...]
    rows: int
    finite_residuals: bool = True
    finite_jacobian: bool = True


@dataclass(frozen=True)
class Factors:
    """The factors of all the leaves: what least squares needs of J and r.

    top: R of [J | r], p+1 by p+1 (zero rows below when there are fewer rows).
    rss: sum(r²), the exact sum of the evaluator's block sums (inf past the range).
    rows: n. finite_residuals, finite_jacobian: as in ``Leaf``, for all rows.
    """

    top: np.ndarray
    rss: float
    rows: int
    finite_residuals: bool = True
    finite_jacobian: bool = True

    @property
    def params(self) -> int:
        return self.top.shape[1] - 1

    @property
    def R(self) -> np.ndarray:
        """p by p upper triangular: RᵀR = JᵀJ."""
        return self.top[:-1, :-1]

    @property
    def qtr(self) -> np.ndarray:
        """Qᵀr: RᵀQᵀr = Jᵀr."""
        return self.top[:-1, -1]

    @property
    def reduced(self) -> np.ndarray:
        """[Qᵀr; ρ], p+1 values whose norm is ||r|| (the residuals of the reduced problem)."""
        return self.top[:, -1]

    @property
    def finite(self) -> bool:
        return self.finite_residuals and self.finite_jacobian


@one_blas_thread(lapack=True)
def leaf_factors(
    r: np.ndarray, jacobian: np.ndarray, start_row: int = 0, leaf_rows: int = LEAF_ROWS
) -> list[Leaf]:
    """The leaves of these rows: ``r`` and ``jacobian`` (n by p) are rows start_row, start_row+1, ...

    Args:
        r, jacobian: the rows' residuals and Jacobian.
        start_row: the data row of their first row, a multiple of ``leaf_rows``.
        leaf_rows: rows per leaf (LEAF_ROWS; smaller in tests).

    Returns:
        One ``Leaf`` per leaf, in order (one empty leaf for no rows at row 0).

    Raises:
        ValueError: start_row not at a leaf boundary, or r and jacobian disagree.
    """
    r = np.asarray(r, dtype=float)
    jacobian = np.asarray(jacobian, dtype=float)
    if start_row % leaf_rows or len(r) != len(jacobian) or jacobian.ndim != 2:
        raise ValueError("leaf_factors needs rows starting at a leaf and a Jacobian row per residual")
    first, n = start_row // leaf_rows, len(r)
    starts = range(0, n, leaf_rows) if n else ([0] if start_row == 0 else [])
    return [_leaf(first + i, r[s : s + leaf_rows], jacobian[s : s + leaf_rows]) for i, s in enumerate(starts)]


@one_blas_thread(lapack=True)
def combine(leaves) -> Factors:
    """The leaves' factors combined pairwise by leaf number, whatever their order or grouping.

    Raises:
        ValueError: no leaves, two with one number, or different parameter counts.
    """
    ordered = sorted(leaves, key=lambda leaf: leaf.number)
    numbers = [leaf.number for leaf in ordered]
    if not ordered or len(set(numbers)) != len(numbers):
        raise ValueError("combine needs leaves with distinct numbers")
    width = ordered[0].top.shape[1]
    if any(leaf.top.shape[1] != width for leaf in ordered):
        raise ValueError("combine needs leaves of one parameter count")
    nodes = {leaf.number: leaf.top for leaf in ordered}
    while len(nodes) > 1:
        # One level of the tree: node i covers leaves [i * 2^level, (i+1) * 2^level).
        pairs: dict[int, list[np.ndarray]] = {}
        for index in sorted(nodes):
            pairs.setdefault(index // 2, []).append(nodes[index])
        nodes = {
            parent: _triangle(np.vstack(pair)) if len(pair) > 1 else pair[0] for parent, pair in pairs.items()
        }
    (top,) = nodes.values()
    square = np.zeros((width, width))
    square[: top.shape[0]] = top
    return Factors(
        top=square,
        rss=exact_sum([value for leaf in ordered for value in leaf.squares]),
        rows=sum(leaf.rows for leaf in ordered),
        finite_residuals=all(leaf.finite_residuals for leaf in ordered),
        finite_jacobian=all(leaf.finite_jacobian for leaf in ordered),
    )


def factor(r: np.ndarray, jacobian: np.ndarray, leaf_rows: int = LEAF_ROWS) -> Factors:
    """The Factors of all the rows at once (``combine`` of their leaves)."""
    return combine(leaf_factors(r, jacobian, 0, leaf_rows))


class Refinement:
    """The per-row side of the direct solve's refinement, for whole leaves of rows.

    Björck's augmented-system refinement keeps an estimate of the residual
    b - J x per row (here, per leaf: a partition keeps its own rows) and,
    each pass, sums Jᵀf and Jᵀs over the rows in extended precision, with
    s the residual estimate and f = b - s - J x its misfit; the caller
    turns those two p-vectors into a correction of x (``linear.solve_factored``)
    and hands it back to ``advance``. Keeping s (rather than b - J x recomputed
    each pass) is what keeps large-residual problems exact: NIST Wampler5
    reaches 14 digits with it, 9.8 without.
    """

    def __init__(
        self, jacobian: np.ndarray, target: np.ndarray, start_row: int = 0, leaf_rows: int = LEAF_ROWS
    ):
        if start_row % leaf_rows:
            raise ValueError("Refinement needs rows starting at a leaf")
        self.first = start_row // leaf_rows
        spans = range(0, len(target), leaf_rows)
        self.leaves = [
            (np.asarray(jacobian[s : s + leaf_rows], dtype=float), target[s : s + leaf_rows]) for s in spans
        ]
        self.estimates: list[np.ndarray] = []
        self.misfits: list[np.ndarray] = []

    def begin(self, x: np.ndarray) -> None:
        """Start from ``x``: each row's residual estimate b - J x, in extended precision, rounded."""
        wide_x = np.asarray(x, dtype=float).astype(WIDE)
        self.estimates = [
            (b.astype(WIDE) - rows.astype(WIDE) @ wide_x).astype(float) for rows, b in self.leaves
        ]

    def sums(self, x: np.ndarray) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Per leaf, (number, Jᵀf, Jᵀs) in extended precision, f = b - s - J x rounded per row."""
        wide_x = np.asarray(x, dtype=float).astype(WIDE)
        parts, self.misfits = [], []
        for i, ((rows, b), estimate) in enumerate(zip(self.leaves, self.estimates)):
            wide = rows.astype(WIDE)
            misfit = (b.astype(WIDE) - estimate.astype(WIDE) - wide @ wide_x).astype(float)
            self.misfits.append(misfit)
            parts.append((self.first + i, wide.T @ misfit.astype(WIDE), wide.T @ estimate.astype(WIDE)))
        return parts

    def advance(self, delta: np.ndarray) -> None:
        """x moved by ``delta``: each estimate s becomes s + f - J delta."""
        self.estimates = [
            estimate + (misfit - rows @ delta)
            for (rows, _), estimate, misfit in zip(self.leaves, self.estimates, self.misfits)
        ]


def add_sums(parts, params: int) -> tuple[np.ndarray, np.ndarray]:
    """The totals of ``Refinement.sums`` parts, added in leaf order (so in any grouping), rounded to float."""
    along_misfit = np.zeros(params, dtype=WIDE)
    along_estimate = np.zeros(params, dtype=WIDE)
    for _, misfit, estimate in sorted(parts, key=lambda part: part[0]):
        along_misfit = along_misfit + misfit
        along_estimate = along_estimate + estimate
    return along_misfit.astype(float), along_estimate.astype(float)


# ---------------------------------------------------------------- helpers


def _leaf(number: int, r: np.ndarray, jacobian: np.ndarray) -> Leaf:
    n, p = jacobian.shape
    augmented = np.empty((n, p + 1))
    finite_jacobian = bool(np.all(np.isfinite(jacobian)))
    finite_residuals = bool(np.all(np.isfinite(r)))
    augmented[:, :p] = jacobian if finite_jacobian else np.where(np.isfinite(jacobian), jacobian, 0.0)
    augmented[:, p] = r if finite_residuals else np.where(np.isfinite(r), r, HUGE)
    top = _triangle(augmented) if n else np.zeros((0, p + 1))
    with np.errstate(over="ignore", invalid="ignore"):  # r² past the range is inf, as the evaluator has it
        squares = _partials(raw_block_sums(r * r))
    return Leaf(number, top, squares, n, finite_residuals, finite_jacobian)


def _triangle(stacked: np.ndarray) -> np.ndarray:
    """R of ``stacked`` (min(m, p+1) rows), each row signed so the diagonal is >= 0.

    LAPACK's Householder QR leaves each diagonal entry's sign to the data;
    fixing it makes R unique for a full-rank matrix, so the same rows always
    give the same bits however they were reached.
    """
    from scipy.linalg import lapack  # here: evaluating a plain expression never imports scipy

    # LAPACK's own Householder QR, without numpy.linalg.qr's overhead (8x on a
    # small leaf, paid at every evaluation of lm); the workspace is a function
    # of the shape only, so the blocking, and with it the bits, is too.
    factored, _, _, info = lapack.dgeqrf(stacked, lwork=64 * stacked.shape[1])
    if info != 0:
        raise ValueError(f"LAPACK dgeqrf failed (info {info})")
    k = min(stacked.shape)
    top = np.where(_upper(k, stacked.shape[1]), factored[:k], 0.0)  # below the diagonal: reflectors
    top[top.diagonal() < 0] *= -1.0
    return top


@functools.lru_cache(maxsize=64)
def _upper(rows: int, columns: int) -> np.ndarray:
    """The mask of a rows-by-columns upper triangle (np.triu costs 3x more at these sizes)."""
    return np.triu(np.ones((rows, columns), dtype=bool))


def _partials(values: list[float]) -> tuple[float, ...]:
    """Non-overlapping floats whose exact sum is the exact sum of ``values`` (Shewchuk).

    A leaf keeps these instead of one rounded total, so adding every leaf's
    partials exactly gives the correctly rounded total of all the rows' block
    sums, bit for bit whatever the leaves. Values that are not all finite, or
    whose partial sums overflow, are kept as they are (``exact_sum`` copes).
    """
    if len(values) < 2 or not all(map(math.isfinite, values)):
        return tuple(values)
    partials: list[float] = []
    for x in values:
        i = 0
        for y in partials:
            if abs(x) < abs(y):
                x, y = y, x
            high = x + y
            low = y - (high - x)
            if low:
                partials[i] = low
                i += 1
            x = high
        partials[i:] = [x]
    return tuple(partials) if all(map(math.isfinite, partials)) else tuple(values)
