"""Run in each worker process of a LocalCluster the Dask engine starts (a Dask preload).

A terminal's Ctrl-C reaches its whole process group, the workers too; the
process that started them stops them, so a worker ignores it rather than
print a KeyboardInterrupt traceback of its own.
Must not: import anything from exprgrad (it runs before anything else in the worker).
"""

from __future__ import annotations

import signal
import threading


def dask_setup(worker) -> None:
    """Dask calls this as the worker starts."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
