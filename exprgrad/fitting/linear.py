"""Dense least-squares numerics: direct solves, Gauss-Newton steps, standard errors.

In: numpy arrays: a Jacobian J (n rows, p parameters), residuals r, or a
Hessian H. Out: parameter steps, standard errors, the condition number of the
column-scaled matrix, and a note when the matrix is singular or so
ill-conditioned that digits are lost.

Every solve works on J with its columns scaled to unit length (so parameters
of very different sizes weigh alike) through a Householder QR, never through
the normal equations JᵀJ (which square the condition number). The direct
solve then refines the solution on Björck's augmented system with residuals
accumulated in extended precision, which recovers the digits the first solve
lost (NIST Wampler5: 5.6 -> 14 correct digits).

Must not: evaluate graphs, print, or import scipy (numpy only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import Mention

EPS = np.finfo(float).eps
# Past this condition number a result loses more than half its digits: say so.
ILL_CONDITIONED = 1e8
WIDE = np.longdouble  # 64-bit mantissa on x86; float64 elsewhere (then refinement helps less)


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


def conditioning(matrix: np.ndarray, names: list[str], what: str = "the Jacobian") -> Conditioning:
    """Condition number and rank of ``matrix`` after scaling its columns to unit length."""
    return _decompose(matrix, names, what)[0]


def _decompose(matrix: np.ndarray, names: list[str], what: str):
    """(Conditioning, singular values, right singular vectors, column scales) of the scaled matrix.

    One Householder QR of the n-by-p column-scaled matrix (R only, Q is never
    formed), then the SVD of the p-by-p R: the singular values and right
    singular vectors of the scaled matrix itself (backward stable, as an SVD of
    the tall matrix is) at the cost of one pass of QR over the rows.
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
    tolerance = max(matrix.shape) * EPS * top
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

    Householder QR of the column-scaled matrix, then augmented-system refinement
    (Björck 1967): both the solution and the residual are corrected from
    residuals of [I A; Aᵀ 0][r; x] = [b; 0] computed in extended precision.
    A rank-deficient matrix gets the minimum-norm solution instead.

    Returns:
        (delta, number of refinement steps taken, whether the matrix had full rank).
    """
    n, p = matrix.shape
    scales = _scales(matrix)
    scaled = matrix / scales
    if n < p or np.linalg.matrix_rank(scaled) < p:
        return np.linalg.lstsq(scaled, target, rcond=None)[0] / scales, 0, False
    q, top = np.linalg.qr(scaled)  # reduced: q is n-by-p, never n-by-n
    solution = _back(top, q.T @ target)
    residual = target - scaled @ solution
    wide_matrix, wide_target = matrix.astype(WIDE), target.astype(WIDE)
    steps = 0
    for steps in range(1, refinements + 1):
        # Residuals of r + A x = b and Aᵀ r = 0, in extended precision, in the unscaled A.
        f = (wide_target - residual.astype(WIDE) - wide_matrix @ (solution / scales).astype(WIDE)).astype(
            float
        )
        g = (-(wide_matrix.T @ residual.astype(WIDE))).astype(float) / scales
        # [I A; Aᵀ 0][dr; dx] = [f; g]:  dx = R⁻¹(Qᵀf - R⁻ᵀg),  dr = f - A dx.
        step = _back(top, q.T @ f - _forward(top.T, g))
        residual = residual + (f - scaled @ step)
        solution = solution + step
        if not np.any(np.abs(step) > 4 * EPS * np.abs(solution)):
            break
    return solution / scales, steps, True


def gauss_newton_step(matrix: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """The step that minimizes ||residual + matrix @ step|| (QR of the scaled matrix)."""
    scales = _scales(matrix)
    scaled = matrix / scales
    if matrix.shape[0] < matrix.shape[1]:  # fewer rows than parameters: the minimum-norm step
        return np.linalg.lstsq(scaled, -residual, rcond=None)[0] / scales
    q, r = np.linalg.qr(scaled)
    if np.min(np.abs(np.diag(r))) <= EPS * max(matrix.shape) * np.max(np.abs(np.diag(r))):
        return np.linalg.lstsq(scaled, -residual, rcond=None)[0] / scales
    return _back(r, -(q.T @ residual)) / scales


def least_squares_stderr(
    matrix: np.ndarray, rss: float, names: list[str]
) -> tuple[np.ndarray | None, Conditioning]:
    """Standard errors sqrt(diag(s² (JᵀJ)⁻¹)), s² = RSS/(n - p), from one decomposition of the scaled J.

    The singular values that give the conditioning give the errors too:
    (JᵀJ)⁻¹ = V S⁻² Vᵀ in the scaled columns (see ``_decompose``).

    Returns:
        (standard errors or None when singular or n <= p, conditioning).
    """
    n, p = matrix.shape
    state, singular, vt, scales = _decompose(matrix, names, "the Jacobian")
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
