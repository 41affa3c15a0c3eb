"""The Dask engine: the data's partitions kept on a cluster's workers, each pass one round of tasks.

In: the data columns of a run or a fit, and a scheduler address
(``tcp://host:8786``), a ``distributed.Client``, or nothing (a LocalCluster
on this machine: one worker process per core, closed with the engine).
Out: ``DaskEngine``, an engine for ``Schedule.run`` (see ``engines``).

Each partition is loaded once, by a task (``_load``), and kept in its
worker's memory while the engine lives; a column the data cache maps from a
file that every worker can read (one machine, or a shared folder) is read by
the worker from that file, any other is sent once inside the load task. A
load task is a task like any other, so when a worker dies Dask loads its
partitions again elsewhere and the pass goes on. A pass is one round: every
partition's task (``_run_part``) gets the graph as text, the pass number and
the values known so far (numbers and parameter arrays), rebuilds the schedule
once per worker process (``graph_text``; kept by the text's digest), and
returns its block sums; nothing else crosses the network.
Must not: be imported unless ``--engine dask`` is asked for (it imports
distributed); leave a LocalCluster it started running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import Mapping

import numpy as np

from .. import graph_text
from ..backends.evaluate import Schedule
from ..errors import EngineError, Mention, OptionError, ToolMissingError
from . import as_float_columns, first_row, partition_bounds, rows_of, slice_rows, work_of

# How long to wait for a scheduler to answer before saying it cannot be reached.
CONNECT_SECONDS = 10


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ToolMissingError(
            f"{Mention('engine', 'dask')} needs dask.distributed: pip install 'exprgrad[dask]'",
            mentions=(Mention("engine", "dask"),),
        ) from None
    return distributed


class DaskEngine:
    """The rows of ``columns`` in partitions on a Dask cluster (see the module docstring).

    Attributes:
        rows: the number of data rows.
        columns: the names of the columns it holds.
        bounds: each partition's rows (start, stop), in row order.
        address: the scheduler's address.
        read_from: how each column reaches the workers: "cache file" (mapped
            from the data cache), "data source" (read from the source's files)
            or "sent" (inside the load tasks).
    """

    def __init__(self, columns: Mapping, *, scheduler=None, partitions: int | None = None, source=None):
        distributed = _distributed()
        self.rows = rows_of(columns)
        self.columns = set(columns)
        self._columns = dict(columns)
        # (SourceSpec, names): columns the data source's files hold as they are (``open_engine``).
        self._source = source
        self._cluster = None
        self._own_client = False
        self._parts: list = []
        self._homes: list = []
        if isinstance(scheduler, distributed.Client):
            self.client = scheduler
        else:
            self.client = self._connect(distributed, scheduler)
            self._own_client = True
        self.address = self.client.scheduler.address
        try:
            try:
                self.client.wait_for_workers(1, timeout=CONNECT_SECONDS)
            except TimeoutError:
                raise EngineError(
                    f"the Dask scheduler at {self.address} has no workers: start some with "
                    f"`dask worker {self.address}`"
                ) from None
            threads = sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values())
            self.bounds = partition_bounds(self.rows, partitions or work_of(self.rows, max(1, threads)))
            self._load(distributed)
        except BaseException:
            self.close()
            raise

    def _connect(self, distributed, address):
        if address is None:
            # Worker processes, one per core: numpy runs in each without the GIL of another.
            # They ignore Ctrl-C: it reaches the terminal's whole process group, and it is this
            # process that stops them, cleanly. Forked from a fork server that ignores it, they
            # ignore it from their first instruction. Here a Ctrl-C during the start waits
            # until it is over, then stops the command.
            method = _forkserver_ignoring_sigint()
            with _sigint_held(), _dask_config({"distributed.worker.multiprocessing-method": method}):
                self._cluster = self._local_cluster(distributed)
            return distributed.Client(self._cluster)
        _check_address(distributed, address)
        try:
            return distributed.Client(str(address), timeout=f"{CONNECT_SECONDS}s")
        except (OSError, TimeoutError) as exc:
            raise EngineError(
                f"cannot reach the Dask scheduler at {address} within {CONNECT_SECONDS} s: "
                "is `dask scheduler` running there, and its port open?"
            ) from exc

    @staticmethod
    def _local_cluster(distributed):
        return distributed.LocalCluster(
            n_workers=max(1, len(os.sched_getaffinity(0))),
            threads_per_worker=1,
            processes=True,
            # No dashboard; the scheduler's HTTP routes on a free port, never a taken 8787.
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            silence_logs=logging.CRITICAL,  # the workers' own records too (a missed heartbeat)
            preload=["exprgrad.engines.worker_setup"],  # passed on to each worker
        )

    def _load(self, distributed) -> None:
        """One load task per partition; the futures are held, so Dask keeps the partitions in memory."""
        mapped = self._mapped_columns()
        readable = self._source_columns(set(mapped))
        self.read_from = {
            name: "cache file" if name in mapped else "data source" if name in readable else "sent"
            for name in self._columns
        }
        token = uuid.uuid4().hex[:12]
        for k, (start, stop) in enumerate(self.bounds):
            spec = {}
            for name, value in as_float_columns(slice_rows(self._columns, start, stop)).items():
                if name in mapped:
                    spec[name] = ("file", *mapped[name], start, stop)
                elif name in readable:
                    spec[name] = ("source", self._source[0], start, stop)
                else:
                    spec[name] = ("values", value)
            with warnings.catch_warnings():  # values sent once, on purpose: "Sending large graph"
                warnings.simplefilter("ignore", UserWarning)
                self._parts.append(self.client.submit(_load, spec, key=f"exprgrad-partition-{token}-{k}"))
        try:
            distributed.wait(self._parts)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"lost the Dask scheduler at {self.address} ({_reason(exc)})") from None
        for part in self._parts:
            if part.status == "error":
                part.result()  # a failed load raises here, in this process
        # Where each partition lives: its pass runs there (a preference, so a lost worker's
        # partitions run where Dask loads them again), rather than be moved to balance a round.
        held = self.client.who_has(self._parts)
        self._homes = [list(held.get(part.key, ())) or None for part in self._parts]

    def _mapped_columns(self) -> dict:
        """Columns that are whole float64 files every worker can map: name -> (path, rows)."""
        found = {}
        for name, value in self._columns.items():
            path = getattr(value, "filename", None)
            if (
                isinstance(value, np.memmap)
                and path
                and value.dtype == np.float64
                and value.ndim == 1
                and value.offset == 0
                and os.path.getsize(path) == value.nbytes
            ):
                found[name] = (str(path), len(value))
        if not found:
            return found
        paths = [path for path, _ in found.values()]
        expected = _file_stamps(paths)
        seen = self.client.run(_file_stamps, paths)  # worker -> what it sees at those paths
        if not all(got == expected for got in seen.values()):
            return {}  # some worker lacks the files, or has others there: send the values instead
        return found

    def _source_columns(self, mapped: set) -> set:
        """Columns the workers read from the data source's own files: every worker sees them."""
        if self._source is None:
            return set()
        spec, names = self._source
        wanted = set(names) - mapped
        if not wanted:
            return set()
        seen = self.client.run(_file_stamps, list(spec.paths))
        expected = _file_stamps(list(spec.paths))
        return wanted if all(got == expected for got in seen.values()) else set()

    def sample(self) -> dict:
        return first_row(self._columns)

    def map_pass(self, schedule, number: int, payload: dict) -> list:
        """Pass ``number`` of ``schedule`` over every partition: their sums, in row order."""
        text = schedule.text
        futures = []
        try:
            # A Ctrl-C is raised only in the wait: one that lands in Dask's own
            # bookkeeping (a future's __del__ sending its release) would be
            # printed as ignored and lost, and the fit would run on.
            with _sigint_held():
                futures = [
                    self.client.submit(
                        _run_part,
                        text,
                        number,
                        {**payload, "start": start},
                        part,
                        pure=False,
                        workers=home,
                        allow_other_workers=True,
                    )
                    for part, home, (start, _) in zip(self._parts, self._homes, self.bounds, strict=True)
                ]
            sums = self._gather(futures)
            with _sigint_held():
                futures.clear()
            return sums
        except KeyboardInterrupt:
            # The client's event loop reports the cancelled gather as a never-retrieved
            # task error on the way out: nothing the user needs after Ctrl-C.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            self.client.cancel(futures)
            raise
        except BaseException:
            self.client.cancel(futures)
            raise

    def _gather(self, futures) -> list:
        try:
            return self.client.gather(futures)
        except (OSError, TimeoutError) as exc:
            raise EngineError(f"lost the Dask scheduler at {self.address} ({_reason(exc)})") from None
        except _cancelled():
            # The client cancels what it waits for when the scheduler's connection is gone.
            if self.client.status == "running":
                raise
            raise EngineError(f"lost the Dask scheduler at {self.address}") from None

    def close(self) -> None:
        """Forget the partitions; close the client and the LocalCluster this engine started."""
        parts, self._parts = self._parts, []
        if parts and self.client.status == "running":
            with contextlib.suppress(Exception):  # a lost scheduler: nothing to cancel
                self.client.cancel(parts)
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _forkserver_ignoring_sigint() -> str:
    """The start method for the workers: "forkserver", its server started (once) with Ctrl-C
    ignored, a disposition it and every process it forks keep from their first instruction;
    "spawn" where there is no fork server (``worker_setup`` then ignores Ctrl-C in each worker).
    This process holds Ctrl-C back only while it starts the server (one fork and exec)."""
    import multiprocessing
    from multiprocessing import forkserver

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    if threading.current_thread() is threading.main_thread():
        from multiprocessing import resource_tracker

        forkserver.set_forkserver_preload(["distributed"])  # imported once, not in every worker
        resource_tracker.ensure_running()  # its own start, outside the window below
        # Blocked as well as ignored: a Ctrl-C in the window stays pending here (Linux keeps a
        # signal its thread blocks) and arrives once the handler is back.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            forkserver.ensure_running()
        finally:
            signal.signal(signal.SIGINT, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return "forkserver"


def _dask_config(values: dict):
    import dask

    return dask.config.set(values)


@contextlib.contextmanager
def _sigint_held():
    """A Ctrl-C while in the block is held back and raised when the block is over, never
    lost or raised half-way (in a LocalCluster's start, which the caller then closes, or in
    the client's bookkeeping of a pass's tasks)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    handler = signal.signal(signal.SIGINT, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)
        if caught:  # also over what the Ctrl-C broke on the way (a worker it reached too early)
            raise KeyboardInterrupt


def _check_address(distributed, address) -> None:
    """A scheduler address Dask can read (tcp://host:8786), else one OptionError."""
    try:
        text = str(address)
        _, location = distributed.comm.parse_address(text, strict=True)
        distributed.comm.parse_host_port(location)
    except (ValueError, TypeError):
        given = Mention("scheduler", str(address))
        raise OptionError(
            f"{given}: not a scheduler address; give one such as tcp://host:8786", mentions=(given,)
        ) from None


def _cancelled() -> tuple:
    """The errors of a cancelled wait (asyncio's, concurrent.futures'): the modules are loaded by
    distributed by now; importing them here would slow every command's start-up."""
    found = (
        getattr(sys.modules.get(name), "CancelledError", None) for name in ("asyncio", "concurrent.futures")
    )
    return tuple(c for c in found if c is not None)


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# ---------------------------------------------------------------- on the workers

_SCHEDULES: dict[str, object] = {}  # a worker's schedules, by the digest of their graph text


def _file_stamps(paths: list[str]) -> list[tuple[int, int] | None]:
    """Each file's size and modification time (None: not there): the same file, as far as a look can tell."""
    found = []
    for path in paths:
        try:
            info = os.stat(path)
            found.append((info.st_size, info.st_mtime_ns))
        except OSError:
            found.append(None)
    return found


def _load(spec: dict) -> dict:
    """A partition's columns in this worker's memory: read from a mapped file, or the values sent."""
    columns = {}
    sources = {}  # (source, start, stop) -> the names read from it
    for name, (kind, *rest) in spec.items():
        if kind == "source":
            sources.setdefault(tuple(rest), []).append(name)
        elif kind == "file":
            path, rows, start, stop = rest
            columns[name] = np.array(np.memmap(path, dtype=np.float64, mode="r", shape=(rows,))[start:stop])
        else:  # a fresh copy, aligned (see _aligned)
            value = rest[0]
            columns[name] = [np.array(c) for c in value] if isinstance(value, list) else np.array(value)
    for (source, start, stop), names in sources.items():  # one read of the rows for all its columns
        found = source.open(names, start, stop)
        columns.update({name: np.array(found.columns[name]) for name in names})
    return columns


def _run_part(text: str, number: int, payload: dict, columns: dict) -> list:
    """One pass of the schedule of ``text`` over one partition's columns (``Schedule.part_sums``)."""
    key = graph_text.digest(text)
    schedule = _SCHEDULES.get(key)
    if schedule is None:
        if len(_SCHEDULES) > 64:
            _SCHEDULES.clear()
        schedule = _SCHEDULES[key] = Schedule(graph_text.loads(text))
    return schedule.part_sums(number, _copied(payload), _aligned(columns), threads=1)


def _aligned(columns: dict) -> dict:
    """A partition's columns, each lying on 16 bytes. A partition Dask moved to another worker
    arrives as a message, anywhere in it (see ``_copied``): such a column is copied, and the
    copy put in the partition's own dict, which the worker keeps, so it is copied once."""

    def fresh(value):
        return value if value.ctypes.data % 16 == 0 else np.array(value)

    for name, value in columns.items():
        columns[name] = [fresh(c) for c in value] if isinstance(value, list) else fresh(value)
    return columns


def _copied(payload: dict) -> dict:
    """``payload`` with its arrays copied: arrays as they arrive lie anywhere in a message,
    not always on 16 bytes, and BLAS rounds a product of unaligned data otherwise."""

    def fresh(value):
        return np.array(value) if isinstance(value, np.ndarray) else value

    return {
        **payload,
        "scalars": [fresh(v) for v in payload["scalars"]],
        "params": {name: fresh(v) for name, v in payload["params"].items()},
    }
