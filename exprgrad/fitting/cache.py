"""The binary cache of data sources: numeric columns as raw float64 files, mapped into memory read-only.

In: a source's identity (its resolved paths and parse options), its files'
stamps (size and modification time in nanoseconds), the columns asked for, and
a function that converts the source, appending each column's values a chunk
at a time. Out: an ``Entry`` whose ``mapped`` gives one read-only ``np.memmap``
per column, so the data is paged in from disk as it is read and never held
whole in memory.

Layout: ``<root>/<source>-<state>-<columns>/`` holds ``<k>.f64`` (the k-th
header column, raw little-endian float64, nothing else) and ``meta.json``
(written last: the header, the problems, the files' row counts). The root is
``$EXPRGRAD_CACHE_DIR``, else ``exprgrad-cache-<user id>`` in
``tempfile.gettempdir()``, which must be the user's alone (mode 700): never
beside the data, never in the repository. The name hashes everything
the bytes depend on (``VERSION`` too), so an entry is reused exactly while
the source is unchanged; a changed source gets a new entry and its older
entries are removed. An entry is built in a temporary folder and renamed into
place in one step. One process converts at a time (``<entry>.lock``): the
others wait for its entry, and convert themselves only if it fails or dies;
two processes that do convert at once both finish, one rename wins and the
other uses the winner's entry. An entry whose meta.json
is missing or unreadable, or a column file whose size is not rows x 8 bytes
(a truncated or partial entry), is rebuilt.
Must not: parse data, print, or know the expression language.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from exprgrad.errors import DataError

__all__ = [
    "CACHE_VARIABLE",
    "VERSION",
    "Entry",
    "Writer",
    "cache_root",
    "entry_name",
    "find_entry",
    "open_entry",
]

# Changes whenever the files' format or what they hold changes: old entries are then not read.
VERSION = 1
CACHE_VARIABLE = "EXPRGRAD_CACHE_DIR"
_META = "meta.json"
_VALUE = np.dtype("<f8")
# A temporary folder older than this was left by a process that died converting.
_ABANDONED_SECONDS = 24 * 3600
# A converting process touches its lock this often; one untouched for _STALE_SECONDS is a dead one's.
_TOUCH_SECONDS, _STALE_SECONDS, _POLL_SECONDS = 5, 60, 0.05


def cache_root() -> str:
    """The folder that holds the cache entries: $EXPRGRAD_CACHE_DIR, else the user's own in the temporary folder."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return configured
    # One per user: the temporary folder is shared, and an entry planted by someone else would be read as data.
    user = f"-{os.getuid()}" if hasattr(os, "getuid") else ""
    return os.path.join(tempfile.gettempdir(), f"exprgrad-cache{user}")


def _checked_root() -> str:
    """The cache root, refused when it is the default one and someone else owns it or may write in it."""
    root = cache_root()
    if os.environ.get(CACHE_VARIABLE) or not hasattr(os, "getuid"):
        return root
    try:
        info = os.stat(root)
    except FileNotFoundError:
        return root
    except OSError as exc:
        raise _unwritable(root, exc) from None
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise DataError(
            f"the data cache folder {root} is not yours alone (another user owns it or may write in it): "
            f"remove it, or set {CACHE_VARIABLE} to a folder of yours"
        )
    return root


def find_entry(name: str) -> Entry | None:
    """The whole entry ``name`` (from ``entry_name``), or None."""
    return read_entry(os.path.join(_checked_root(), name))


@dataclass(frozen=True)
class Entry:
    """A converted source, as meta.json describes it.

    folder: where its files are. header: every column name, in order.
    columns: column name -> its file name in ``folder``, for the columns of
    numbers. problems: column name -> why it is not one. files: (name, rows)
    per source file, in order. rows: their sum.
    """

    folder: str
    header: tuple[str, ...]
    columns: dict[str, str]
    problems: dict[str, str]
    files: tuple[tuple[str, int], ...]
    rows: int

    def mapped(self, names: Iterable[str], start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """The columns ``names`` (of ``columns``) as read-only memory maps of rows [start, stop)."""
        stop = self.rows if stop is None else stop
        out = {}
        for name in names:
            path = os.path.join(self.folder, self.columns[name])
            if self.rows == 0:
                out[name] = np.empty(0)  # an empty file cannot be mapped
                continue
            column = np.memmap(path, dtype=_VALUE, mode="r", shape=(self.rows,))
            out[name] = column[start:stop]
        return out


class Writer:
    """Appends the values of each column to its file in a folder being built."""

    def __init__(self, folder: str, header: Sequence[str] = (), lock: str | None = None):
        self.folder = folder
        self.files: dict[str, str] = {}
        self.header = tuple(header)
        self.lock, self.touched = lock, time.time()

    def append(self, name: str, values: np.ndarray) -> None:
        """Add ``values`` to the end of column ``name``'s file (created at the first call)."""
        if name not in self.files:
            self.files[name] = f"{self.header.index(name)}.f64"
        with open(os.path.join(self.folder, self.files[name]), "ab") as file:
            np.ascontiguousarray(values, dtype=_VALUE).tofile(file)
        if self.lock is not None and time.time() - self.touched > _TOUCH_SECONDS:
            self.touched = time.time()
            with contextlib.suppress(OSError):
                os.utime(self.lock)  # still converting: processes waiting for the entry keep waiting

    def drop(self, name: str) -> None:
        """Forget column ``name`` (it turned out not to be numbers) and remove its file."""
        file = self.files.pop(name, None)
        if file is not None:
            os.remove(os.path.join(self.folder, file))


def entry_name(identity: dict, stamps: Sequence, columns: Sequence[str] | None) -> tuple[str, str]:
    """(the prefix every entry of this source shares, this entry's name)."""
    source = _digest(identity)
    state = _digest({"version": VERSION, "stamps": list(stamps)})
    selection = _digest(None if columns is None else sorted(columns))
    return source, f"{source}-{state}-{selection}"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def open_entry(name: str, prefix: str, convert: Callable[[Writer], dict]) -> Entry:
    """The entry ``name``: read when it is whole, else built by ``convert`` and installed.

    Args:
        name, prefix: from ``entry_name``.
        convert: fills a Writer (its ``header`` set by the function) and
            returns the meta: {"header", "problems", "files"}.

    Raises:
        DataError: the cache folder cannot be written (no space, no permission);
            whatever ``convert`` raises.
    """
    root = _checked_root()
    final = os.path.join(root, name)
    for _ in range(3):  # another process may replace a broken entry while this one looks
        entry = read_entry(final)
        if entry is not None:
            return entry
        lock = _claim(root, final + ".lock")
        if lock is None:  # another process is converting: its entry, once it is there
            _wait(final, final + ".lock")
            continue
        try:  # the entry may have been installed between the look above and the claim
            entry = read_entry(final) or _build(root, final, prefix, convert, lock)
        finally:
            with contextlib.suppress(OSError):
                os.remove(lock)
        if entry is not None:
            return entry
    raise DataError(
        f"the data cache in {root} keeps changing while it is read: is another process removing it?"
    )


def read_entry(folder: str) -> Entry | None:
    """The entry in ``folder``, or None when it is missing, partial or broken."""
    try:
        with open(os.path.join(folder, _META), encoding="utf-8") as file:
            meta = json.load(file)
        if meta.get("version") != VERSION:
            return None
        rows = int(meta["rows"])
        entry = Entry(
            folder=folder,
            header=tuple(meta["header"]),
            columns=dict(meta["columns"]),
            problems=dict(meta["problems"]),
            files=tuple((str(label), int(count)) for label, count in meta["files"]),
            rows=rows,
        )
        for file in entry.columns.values():
            if os.path.getsize(os.path.join(folder, file)) != rows * _VALUE.itemsize:
                return None
        if sum(count for _, count in entry.files) != rows:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return entry


def _claim(root: str, lock: str) -> str | None:
    """``lock`` created for this process, or None while another process's is fresh.

    The converting process touches its lock as it writes (``Writer.append``);
    one untouched for ``_STALE_SECONDS`` was left by a process that died, and
    is taken over.
    """
    for _ in range(2):
        try:
            os.makedirs(root, mode=0o700, exist_ok=True)
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return lock
        except FileExistsError:
            try:
                if time.time() - os.stat(lock).st_mtime < _STALE_SECONDS:
                    return None
                os.remove(lock)
            except FileNotFoundError:
                pass  # released meanwhile: claim it
        except OSError as exc:
            raise _unwritable(root, exc) from None
    return None


def _wait(final: str, lock: str) -> None:
    """Until the entry ``final`` is whole, or its converter's lock is gone (done or failed) or stale."""
    while read_entry(final) is None:
        try:
            if time.time() - os.stat(lock).st_mtime > _STALE_SECONDS:
                return
        except FileNotFoundError:
            return
        time.sleep(_POLL_SECONDS)


def _build(root: str, final: str, prefix: str, convert: Callable[[Writer], dict], lock: str) -> Entry | None:
    """Convert into a temporary folder and rename it to ``final``; the entry there after, or None."""
    try:
        _remove_abandoned(root)
        folder = tempfile.mkdtemp(prefix=".tmp-", dir=root)
    except OSError as exc:
        raise _unwritable(root, exc) from None
    try:
        writer = Writer(folder, lock=lock)
        meta = convert(writer)
        files = [(str(label), int(rows)) for label, rows in meta["files"]]
        record = {
            "version": VERSION,
            "header": list(meta["header"]),
            "columns": writer.files,
            "problems": meta["problems"],
            "files": files,
            "rows": sum(rows for _, rows in files),
        }
        with open(os.path.join(folder, _META), "w", encoding="utf-8") as file:
            json.dump(record, file, ensure_ascii=False)
        _install(folder, final)
    except OSError as exc:
        raise _unwritable(root, exc) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone when renamed; a failed build's leftovers
    _remove_older(root, prefix, os.path.basename(final))
    return read_entry(final)


def _install(folder: str, final: str) -> None:
    """Rename ``folder`` to ``final``; when an entry is there, keep it if whole, else replace it."""
    try:
        os.rename(folder, final)
        return
    except OSError:
        if not os.path.isdir(final):
            raise
    if read_entry(final) is not None:
        return  # another process won: use its entry, drop ours
    trash = f"{final}.old-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(final, trash)
    except FileNotFoundError:
        pass  # someone else moved the broken one away
    try:
        os.rename(folder, final)
    except OSError:
        if read_entry(final) is None:
            raise
    shutil.rmtree(trash, ignore_errors=True)


def _remove_older(root: str, prefix: str, keep: str) -> None:
    """Remove the entries of the same source built from files that have changed since."""
    state = keep.split("-")[1]
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if "." not in name and len(parts) == 3 and parts[0] == prefix and parts[1] != state:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def _remove_abandoned(root: str) -> None:
    """Remove temporary folders a process that died while converting left behind."""
    now = time.time()
    for name in os.listdir(root):
        if name.startswith(".tmp-") or ".old-" in name:
            path = os.path.join(root, name)
            try:
                if now - os.stat(path).st_mtime > _ABANDONED_SECONDS:
                    shutil.rmtree(path, ignore_errors=True)
            except OSError:
                pass


def _unwritable(root: str, exc: OSError) -> DataError:
    reason = (exc.strerror or str(exc)).lower()
    return DataError(
        f"cannot write the data cache in {root}: {reason} (set {CACHE_VARIABLE} to a folder with room)"
    )
