"""What every benchmark here shares: the best of several timed runs.

Benchmarks run as scripts (`python benchmarks/bench_x.py`), so this folder is
on sys.path and `from timing import best_time` works.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(work: Callable[[], object], repeat: int = 5) -> float:
    """The fastest of ``repeat`` runs of ``work``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best
