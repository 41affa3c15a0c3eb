"""Step sizes for the first-order methods: a backtracking (Armijo) line search and a first-step search.

In: a starting point (parameters, cost, gradient), a direction, a trial step
size, and a function evaluating a point. Out: an accepted point and its step
size, or None when no step along the direction lowers the cost at
floating-point precision. The sizes are free of the units of the cost: a
sum over many rows and the mean of the same rows get the same steps.

Must not: know any optimizer's state, print, or evaluate graphs except
through the point_at function it is given (x -> the Point there).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Armijo's constant: a step must lower the cost by this fraction of what the
# gradient predicts. One half accepts, on a quadratic, exactly the steps up to
# the minimum along the line, so a doubled trial step never zigzags across it.
SUFFICIENT = 0.5
# Costs this close (relative) are equal to rounding: a step is then judged by the
# slope at its end, which tells the same as Armijo's test on a quadratic.
NOISE = 1e-10
# Halvings (and, on a first step, doublings) a line search tries before giving up.
MAX_HALVINGS = 200
MAX_DOUBLINGS = 40


@dataclass
class Point:
    """A parameter vector with the cost and the gradient there."""

    x: np.ndarray
    cost: float
    grad: np.ndarray

    @functools.cached_property
    def finite(self) -> bool:
        """The cost and every gradient entry are finite (asked several times per iteration: kept)."""
        return math.isfinite(self.cost) and bool(np.isfinite(self.grad).all())


# x -> the cost and gradient there, as a Point (one evaluation of the Objective).
PointAt = Callable[[np.ndarray], Point]


def acceptable(start: Point, trial: Point, t: float, direction: np.ndarray) -> bool:
    """Armijo's sufficient decrease for the step ``t * direction`` from ``start``.

    When the two costs agree to rounding (NOISE), the slope along the direction
    at the trial point decides instead: it must not have risen past
    (2*SUFFICIENT - 1) times the starting slope (on a quadratic, the same test
    as Armijo's; with SUFFICIENT = 1/2: the cost still falls there).
    """
    if not trial.finite:
        return False
    slope = float(start.grad @ direction)
    if abs(trial.cost - start.cost) <= NOISE * max(abs(start.cost), abs(trial.cost)):
        # Below rounding, a lower cost may be luck: the slope decides.
        return float(trial.grad @ direction) <= (2 * SUFFICIENT - 1) * slope
    return trial.cost <= start.cost + SUFFICIENT * t * slope


def backtrack(
    point_at: PointAt, start: Point, direction: np.ndarray, t: float
) -> tuple[Point, float, bool] | None:
    """Halve ``t`` until the step is acceptable: (point, t, accepted at the first trial).

    None when no step along ``direction`` lowers the cost at floating-point
    precision (the step no longer changes the parameters).
    """
    for halvings in range(MAX_HALVINGS):
        x = start.x + t * direction
        if np.array_equal(x, start.x):
            return None
        trial = point_at(x)
        if acceptable(start, trial, t, direction):
            return trial, t, halvings == 0
        t *= 0.5
    return None


def first_step(point_at: PointAt, start: Point, direction: np.ndarray) -> tuple[Point, float] | None:
    """The first step's size, free of the units of the cost: an expanding, then backtracking search.

    The trial step first moves the largest component by max(1, |x|); it is
    doubled while that stays acceptable, else halved until it is.
    """
    size = float(np.max(np.abs(direction), initial=0.0))
    if size == 0.0 or not math.isfinite(size):
        return None
    t = max(1.0, float(np.max(np.abs(start.x), initial=0.0))) / size
    trial = point_at(start.x + t * direction)
    if not acceptable(start, trial, t, direction):
        found = backtrack(point_at, start, direction, t / 2)
        return None if found is None else found[:2]
    for _ in range(MAX_DOUBLINGS):
        longer = point_at(start.x + 2 * t * direction)
        if not acceptable(start, longer, 2 * t, direction):
            break
        trial, t = longer, 2 * t
    return trial, t
