"""Which way the cost goes from a point: along rays without bound or toward an asymptote, or down a saddle.

In: the ``Objective``, a point and its cost and gradient (and, for the
parameters' own run-away test, the starting vector). Out: whether and how
the cost keeps falling from there (``find_runoff``, ``falls_without_bound``), and
a stationary point's second-order test (``second_order``: the steps down a
direction of negative curvature, or the Newton decrement).
``optimality`` reads them to say what a fit's end point is; the methods
call ``falls_without_bound`` when their parameters drift far.
Must not: print, decide convergence, or evaluate graphs except through the Objective.
"""

from __future__ import annotations

import math

import numpy as np

# Doublings of the distance walked along the ray before calling a fall endless.
PROBES = 8
# How far (relative to the cost) the probes must fall in all: rounding noise in a
# flat direction cannot fake it.
SIGNIFICANT = 1e-12
# The ratio of successive falls along the ray above which they are not shrinking: no bound below.
ENDLESS = 0.75


def falls_without_bound(objective, x: np.ndarray, x0: np.ndarray) -> bool:
    """True when the cost falls without bound along a ray from ``x`` (the probes of ``verify``).

    For a method's own run-away test: a few evaluations, at most PROBES per ray.
    """
    x = np.asarray(x, dtype=float)
    cost, grad = quiet_value_grad(objective, x)
    if not (math.isfinite(cost) and np.all(np.isfinite(x))):
        return False
    runoff = find_runoff(objective, x, np.asarray(x0, dtype=float), cost, grad)
    return runoff is not None and runoff[0]


def quiet_value_grad(objective, x):
    with np.errstate(all="ignore"):
        cost, grad = objective.value_grad(x)
    return float(cost), grad


def quiet_value(objective, x) -> float:
    with np.errstate(all="ignore"):
        return float(objective.value(x))


def find_runoff(objective, x, x0, cost, grad):
    """(endless, direction, cost, point, edge) when the cost keeps falling from ``x``; else None.

    A probe whose cost is -inf (it fell past the most negative float) makes
    its ray an endless fall (-exp(a) overflows a few doublings from a = 512),
    reported when no other probe names the fall better (log(a) is -inf at
    a = 0, which a ray from a = 1 can land on: that is the edge).

    Two rays at doubling distances: from the start through ``x`` (where the
    method was heading) and down the gradient with a step of the size of
    ``x``. Then the edge: the parameters the gradient pushes toward 0 are
    moved 1/2, 3/4, 7/8 ... of the way there (a cost such as log(a) falls
    without bound as a approaches 0, where a ray would step past it). At a
    minimum the first probe of each already rises: at most three evaluations.
    """
    directions = []
    if np.any(x != x0):
        directions.append(x - x0)
    if np.any(grad) and np.all(np.isfinite(grad)):
        size = max(float(np.max(np.abs(x), initial=0.0)), 1.0)
        directions.append(-grad / float(np.max(np.abs(grad))) * size)
    tiny = 4 * np.finfo(float).eps
    overflowed = None  # a ray whose cost fell past the most negative float (-inf)
    for direction in directions:
        falls, previous, point = [], cost, x
        for k in range(PROBES):
            probe = x + (2.0**k) * direction
            value = quiet_value(objective, probe)
            if value == -math.inf:
                overflowed = overflowed or (True, direction, previous, point, False)
                break
            if not (math.isfinite(value) and value <= previous):
                break  # rises (or leaves the domain): not running off this way
            if value >= previous - tiny * abs(previous):
                if len(falls) >= 2 and cost - previous > SIGNIFICANT * abs(cost):
                    return False, direction, previous, point, False  # fell, then flat: the asymptote
                break
            falls.append(previous - value)
            previous, point = value, probe
        else:
            if cost - previous > SIGNIFICANT * abs(cost):
                return falls[-1] >= ENDLESS * falls[-2], direction, previous, point, False
    toward = np.where(np.isfinite(grad) & (np.sign(grad) == np.sign(x)), -x, 0.0)
    if np.any(toward):
        falls, previous, point = [], cost, x
        for k in range(PROBES):
            probe = x + (1.0 - 2.0 ** -(k + 1)) * toward
            value = quiet_value(objective, probe)
            if value == -math.inf:
                return True, toward, previous, point, True
            if not (math.isfinite(value) and value < previous - tiny * abs(previous)):
                break
            falls.append(previous - value)
            previous, point = value, probe
        else:
            if falls[-1] >= ENDLESS * falls[-2] and cost - previous > SIGNIFICANT * abs(cost):
                return True, toward, previous, point, True
    return overflowed


def second_order(objective, x, cost, grad):
    """(saddle steps or None, Newton decrement or None) at a point whose gradient test passed.

    With the Hessian scaled to a unit diagonal: a clearly negative eigenvalue
    is a saddle, confirmed only when a step along its eigenvector (either way)
    lowers the cost beyond rounding. Otherwise the Newton decrement
    ½ gᵀH⁻¹g / max(|f|, 1), the relative decrease a Newton step still
    promises (eigenvalues at rounding level left out), says whether the point
    is a minimum or a slow crawl along a flat valley.
    """
    if not objective.has_hessian:
        return None, None
    hess = objective.hessian(x)
    if not np.all(np.isfinite(hess)):
        return None, None
    scale = np.sqrt(np.abs(np.diag(hess)))
    scale[scale == 0] = 1.0
    values, vectors = np.linalg.eigh(hess / np.outer(scale, scale))
    top = max(float(np.max(np.abs(values))), 1e-300)
    if values[0] < -1e-8 * max(top, 1.0):
        direction = vectors[:, 0] / scale
        size = max(float(np.max(np.abs(x), initial=0.0)), 1.0) / float(np.max(np.abs(direction)))
        floor = 16 * np.finfo(float).eps * max(abs(cost), 1.0)
        for t in (1e-4, 1e-2, 1.0):
            steps = [sign * t * size * direction for sign in (1.0, -1.0)]
            lower = [step for step in steps if quiet_value(objective, x + step) < cost - floor]
            if lower:
                return (
                    lower,
                    None,
                )  # both ways, when both go down: which leads to the minimum is not known here
        return None, None
    keep = values > len(values) * np.finfo(float).eps * top
    along = vectors[:, keep].T @ (grad / scale)
    decrement = 0.5 * float(np.sum(along**2 / values[keep])) / max(abs(cost), 1.0)
    return None, decrement
