"""What every benchmark here shares: the best of several timed runs.

Benchmarks run as scripts (`python benchmarks/bench_x.py`), so this folder is
on sys.path and `from timing import best_time` works.
"""

from __future__ import annotations

import os
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


def pin_threads(argv: list[str], default: int | None = 1) -> int | None:
    """--threads N from ``argv`` (``default`` when absent), set for numpy's BLAS,
    numba and XLA; call it before any of them loads. None: nothing is set."""
    count = default
    for k, arg in enumerate(argv):
        if arg == "--threads" and k + 1 < len(argv) and argv[k + 1].isdigit():
            count = int(argv[k + 1])
        elif arg.startswith("--threads=") and arg[10:].isdigit():
            count = int(arg[10:])
    if count is not None:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            os.environ[name] = str(count)
        if count == 1:
            flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()
        # The process on ``count`` cores too: XLA still runs some dots on a thread pool of
        # every core whatever its flags say, and exprgrad's threads= default is every usable core.
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if 0 < count < len(cores):
            os.sched_setaffinity(0, cores[:count])
    return count
