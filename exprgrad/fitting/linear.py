"""Dense least-squares numerics: direct solves, Gauss-Newton steps, standard errors.

In: numpy arrays: a Jacobian J (n rows, p parameters), residuals r, or a
Hessian H; or, in place of J and r, their ``Factors`` (R of [J | r], see
``factors``): a function taking J takes R with ``rows=n`` (same column
norms, singular values and normal equations). Out: parameter steps,
standard errors, the condition number of the column-scaled matrix, and a
note when the matrix is singular or so ill-conditioned that digits are lost.

Every solve works on J with its columns scaled to unit length (so parameters
of very different sizes weigh alike) through a Householder QR, never through
the normal equations JᵀJ (which square the condition number). The direct
solve then refines the solution on Björck's augmented system with residuals
accumulated in extended precision, which recovers the digits the first solve
lost (NIST Wampler5: 5.6 -> 14 correct digits). From factors, Qᵀf is
R⁻ᵀJᵀf, so each refinement pass needs only two p-vectors summed over the
rows (per partition), never Q or the whole J.

Must not: evaluate graphs, print, or import scipy (numpy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import Mention
from .factors import Factors, Refinement, add_sums, factor

EPS = np.finfo(float).eps
# Past this condition number a result loses more than half its digits: say so.
ILL_CONDITIONED = 1e8


@dataclass
class Conditioning:
    """How well-posed a matrix is, in the words a report needs.

    condition: largest / smallest singular value of the column-scaled matrix
        (inf when singular).
    rank: numerical rank.
    note: None when fine; otherwise what the user should know.
    """

    condition: float
    rank: int
    note: str | None


def column_norms(matrix: np.ndarray) -> np.ndarray:
    """The Euclidean norm of each column, at any magnitude float64 can hold.

    Columns whose plain norm is of ordinary size get exactly that (one pass
    over the matrix). The others are first divided by the power of two
    nearest their largest |entry| (exact), so no square overflows (columns
    of 1e160) or underflows (columns of 1e-160). inf or nan entries give inf
    or nan.
    """
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim == 1:
        return column_norms(matrix[:, None])[0]
    with np.errstate(all="ignore"):
        norms = np.linalg.norm(matrix, axis=0)
        # Squares of entries this far from the range's ends neither overflow nor lose a
        # digit the norm keeps; a zero norm may hide entries whose squares underflowed.
        ordinary = (norms > _ORDINARY_LOW) & (norms < _ORDINARY_HIGH)
        if np.all(ordinary) or matrix.shape[0] == 0:
            return norms
        odd = ~ordinary
        norms[odd] = _rescaled_norms(matrix[:, odd])
        return norms


# Plain norms between these two powers of two are exact norms (see column_norms).
_ORDINARY_LOW, _ORDINARY_HIGH = 2.0**-400, 2.0**400


def _rescaled_norms(matrix: np.ndarray) -> np.ndarray:
    """column_norms of columns outside the ordinary range, each scaled by a power of two first."""
    big = np.max(np.abs(matrix), axis=0, initial=0.0)
    usable = np.isfinite(big) & (big > 0)
    _, exponent = np.frexp(np.where(usable, big, 1.0))
    # A power of two near each column's largest entry, in two factors
    # (2**1024 itself is not a float64).
    low, high = np.ldexp(1.0, exponent // 2), np.ldexp(1.0, exponent - exponent // 2)
    norms = np.linalg.norm(matrix / low / high, axis=0) * low * high
    return np.where(usable, norms, np.where(big == 0, 0.0, np.linalg.norm(matrix, axis=0)))


def _scales(matrix: np.ndarray) -> np.ndarray:
    norms = column_norms(matrix)
    return np.where((norms > 0) & np.isfinite(norms), norms, 1.0)


def conditioning(
    matrix: np.ndarray, names: list[str], what: str = "the Jacobian", rows: int | None = None
) -> Conditioning:
    """Condition number and rank of ``matrix`` (or of the J whose R it is, with ``rows``) after scaling its columns."""
    return _decompose(matrix, names, what, rows)[0]


def _decompose(matrix: np.ndarray, names: list[str], what: str, rows: int | None = None):
    """(Conditioning, singular values, right singular vectors, column scales) of the scaled matrix.

    One Householder QR of the n-by-p column-scaled matrix (R only, Q is never
    formed), then the SVD of the p-by-p R: the singular values and right
    singular vectors of the scaled matrix itself (backward stable, as an SVD of
    the tall matrix is) at the cost of one pass of QR over the rows. Given R
    itself (and J's ``rows``), only its SVD.
    """
    if matrix.size == 0:
        return Conditioning(1.0, 0, None), None, None, None
    scales = _scales(matrix)
    scaled = matrix / scales
    if not np.all(np.isfinite(scaled)):
        return Conditioning(math.inf, 0, f"{what} is not finite at the solution"), None, None, scales
    top_rows = np.linalg.qr(scaled, mode="r") if scaled.shape[0] > scaled.shape[1] else scaled
    _, singular, vt = np.linalg.svd(top_rows, full_matrices=False)
    top = singular[0] if singular.size else 0.0
    tolerance = max(matrix.shape[0] if rows is None else rows, matrix.shape[1]) * EPS * top
    rank = int(np.sum(singular > tolerance))
    p = matrix.shape[1]
    if rank < p or top == 0.0:
        dead = [names[j] for j in range(p) if not np.any(matrix[:, j])]
        which = (
            f" (changing {', '.join(dead)} does not change the fit here: try other {Mention('init')} values)"
            if dead
            else " (some parameters act as combinations of others)"
        )
        note = (
            f"{what} is singular: rank {rank} for {p} parameters{which}; "
            "the parameters are not identifiable and have no standard errors"
        )
        return Conditioning(math.inf, rank, note), singular, vt, scales
    condition = float(top / singular[-1])
    note = None
    if condition > ILL_CONDITIONED:
        note = (
            f"{what} is ill-conditioned (condition number {condition:.1e} after column scaling): "
            f"about {math.log10(condition):.0f} of the 16 significant digits may be lost"
        )
    return Conditioning(condition, rank, note), singular, vt, scales


def solve_direct(
    matrix: np.ndarray, target: np.ndarray, refinements: int = 3
) -> tuple[np.ndarray, int, bool]:
    """The least-squares solution of ``matrix @ delta ≈ target``, accurate to the last digits.

    ``solve_factored`` on the factors of [matrix | -target], refined over these rows.

    Returns:
        (delta, number of refinement steps taken, whether the matrix had full rank).
    """
    matrix, target = np.asarray(matrix, dtype=float), np.asarray(target, dtype=float)
    return solve_factored(factor(-target, matrix), Refinement(matrix, target), refinements)


def solve_factored(factors: Factors, rows: Refinement, refinements: int = 3) -> tuple[np.ndarray, int, bool]:
    """The delta minimizing ||J delta + r|| from the factors of [J | r] (b = -r), accurate to the last digits.

    R⁻¹(-Qᵀr) with J's columns scaled to unit length (the scales are R's
    column norms, which are J's), then augmented-system refinement (Björck
    1967): from the sums Jᵀf and Jᵀs over ``rows`` (``factors.Refinement``: s
    the residual estimates, f their misfits, in extended precision; one pass
    each), the correction R⁻¹(R⁻ᵀJᵀf + R⁻ᵀJᵀs), as [I J; Jᵀ 0][ds; dx] =
    [f; -Jᵀs] gives it with Qᵀf = R⁻ᵀJᵀf; up to ``refinements`` passes, until
    no component moves by more than 4 eps. A rank-deficient J gets the
    minimum-norm solution instead.

    Returns:
        (delta, number of refinement steps taken, whether J had full rank).
    """
    n, p = factors.rows, factors.params
    scales = _scales(factors.R)
    scaled = factors.R / scales
    target = -factors.qtr
    if n < p or not _full_rank(scaled, n):
        return np.linalg.lstsq(scaled, target, rcond=None)[0] / scales, 0, False
    solution = _back(scaled, target)
    rows.begin(solution / scales)
    steps = 0
    for steps in range(1, refinements + 1):
        along_misfit, along_estimate = add_sums(rows.sums(solution / scales), p)
        step = _back(
            scaled, _forward(scaled.T, along_misfit / scales) + _forward(scaled.T, along_estimate / scales)
        )
        rows.advance(step / scales)
        solution = solution + step
        if not np.any(np.abs(step) > 4 * EPS * np.abs(solution)):
            break
    return solution / scales, steps, True


def gauss_newton_step(matrix: np.ndarray, residual: np.ndarray, rows: int | None = None) -> np.ndarray:
    """The step that minimizes ||residual + matrix @ step|| (QR of the scaled matrix).

    With ``rows`` (J's row count), ``matrix`` and ``residual`` may be R and Qᵀr:
    ||r + J s|| and ||Qᵀr + R s|| have the same minimizer.
    """
    n = matrix.shape[0] if rows is None else rows
    scales = _scales(matrix)
    scaled = matrix / scales
    if n < matrix.shape[1]:  # fewer rows than parameters: the minimum-norm step
        return np.linalg.lstsq(scaled, -residual, rcond=None)[0] / scales
    q, r = np.linalg.qr(scaled)
    if np.min(np.abs(np.diag(r))) <= EPS * max(n, matrix.shape[1]) * np.max(np.abs(np.diag(r))):
        return np.linalg.lstsq(scaled, -residual, rcond=None)[0] / scales
    return _back(r, -(q.T @ residual)) / scales


def least_squares_stderr(
    matrix: np.ndarray, rss: float, names: list[str], rows: int | None = None
) -> tuple[np.ndarray | None, Conditioning]:
    """Standard errors sqrt(diag(s² (JᵀJ)⁻¹)), s² = RSS/(n - p), from one decomposition of the scaled J.

    The singular values that give the conditioning give the errors too:
    (JᵀJ)⁻¹ = V S⁻² Vᵀ in the scaled columns (see ``_decompose``). ``matrix``
    may be J's R, with n given as ``rows``.

    Returns:
        (standard errors or None when singular or n <= p, conditioning).
    """
    n, p = (matrix.shape[0] if rows is None else rows), matrix.shape[1]
    state, singular, vt, scales = _decompose(matrix, names, "the Jacobian", rows)
    if p == 0:
        return np.zeros(0), state
    if state.rank < p:
        return None, state
    if n <= p:
        state.note = ((state.note + "; ") if state.note else "") + (
            f"no standard errors: {n} rows for {p} parameters leave no degrees of freedom"
        )
        return None, state
    spread = np.sqrt(np.sum((vt / singular[:, None]) ** 2, axis=0))
    s = math.sqrt(rss / (n - p))
    return s * spread / scales, state


def hessian_stderr(matrix: np.ndarray, names: list[str]) -> tuple[np.ndarray | None, Conditioning]:
    """Standard errors sqrt(diag(H⁻¹)) of a negative log-likelihood's minimum.

    Returns None (with a note) when the Hessian is not positive definite there.
    """
    p = matrix.shape[0]
    if not np.all(np.isfinite(matrix)):
        return None, Conditioning(math.inf, 0, "the Hessian is not finite at the solution")
    diagonal = np.abs(np.diag(matrix))
    scales = np.sqrt(np.where(diagonal > 0, diagonal, 1.0))
    scaled = matrix / np.outer(scales, scales)
    values, vectors = np.linalg.eigh(scaled)
    top = float(np.max(np.abs(values))) if p else 0.0
    if p and values[0] <= p * EPS * top:
        note = (
            "the Hessian is not positive definite at the solution (smallest scaled eigenvalue "
            f"{values[0]:.2e}): not a strict minimum, so no standard errors"
        )
        return None, Conditioning(math.inf, int(np.sum(values > p * EPS * top)), note)
    condition = top / float(values[0]) if p else 1.0
    note = None
    if condition > ILL_CONDITIONED:
        note = (
            f"the Hessian is ill-conditioned (condition number {condition:.1e} after scaling): "
            f"about {math.log10(condition):.0f} of the 16 significant digits may be lost"
        )
    spread = np.sqrt(np.sum(vectors**2 / values, axis=1))
    return spread / scales, Conditioning(condition, p, note)


def _full_rank(scaled: np.ndarray, rows: int) -> bool:
    """Whether the (column-scaled) R has full rank at numpy's matrix_rank tolerance for J's size."""
    singular = np.linalg.svd(scaled, compute_uv=False)
    top = singular[0] if singular.size else 0.0
    return bool(np.all(singular > max(rows, scaled.shape[1]) * EPS * top)) and top > 0


def _back(upper: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve upper @ x = rhs for an upper-triangular matrix."""
    x = np.zeros_like(rhs, dtype=float)
    for i in range(len(rhs) - 1, -1, -1):
        x[i] = (rhs[i] - upper[i, i + 1 :] @ x[i + 1 :]) / upper[i, i]
    return x


def _forward(lower: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve lower @ x = rhs for a lower-triangular matrix."""
    x = np.zeros_like(rhs, dtype=float)
    for i in range(len(rhs)):
        x[i] = (rhs[i] - lower[i, :i] @ x[:i]) / lower[i, i]
    return x
