"""What every command writes: output files, numbers, labels, JSON, warnings.

In: results computed by the library. Out: text, and files written where the
path means (``write_atomically``: whole or not at all; streams and devices
directly). Must not: compute (no math here), or write a message but through
streams.show_message.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import signal
import stat
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..backends.printing import number_text
from ..errors import OptionError, WriteError
from .streams import show_message, silence_stdout, write_all


def reason(exc: BaseException) -> str:
    """The operating system's words for a failed read or write."""
    return getattr(exc, "strerror", None) or str(exc)


# The path names one of this process's open files: write to that descriptor
# (a pipe, a terminal, a file opened for appending by the shell) as it is.
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/(self|\d+)/fd|dev/fd)/(\d+)")
_STANDARD_PATHS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
# Signals that would end the process in the middle of a write; held back until
# the file is whole, so no temporary file is ever left behind.
_DEFERRED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def is_stream(path: str) -> bool:
    """Whether ``path`` is written as a stream (no file to replace): ``-``,
    one of this process's descriptors, a FIFO or a device."""
    if path == "-" or _descriptor(path) is not None:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output_folder(path: str | None) -> None:
    """Refuse, before any work is done, an output path that cannot be written:
    a folder that does not exist (OptionError, exit 2), a folder or a read-only
    file at the path (WriteError, exit 1). Symlinks are followed."""
    if path is None or path == "-" or _descriptor(path) is not None:
        return
    if not path or path.endswith(("/", os.sep)):
        # open() would refuse it; a rename would quietly drop the slash.
        raise OptionError(f"cannot write '{path}': give a file name, not a folder")
    info = _stat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise WriteError(f"cannot write '{path}': it is a folder")
        return  # a FIFO or a device: written directly
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        folder = target.parent if os.path.islink(path) else Path(path).parent
        raise OptionError(f"cannot write '{path}': folder '{folder}' does not exist")
    if info is not None:
        _refuse_read_only(path, target, info)


def write_atomically(path: str, content: str | bytes) -> None:
    """Write ``content`` (str as UTF-8) where the user means ``path``, whole or not at all.

    - ``-``, ``/dev/stdout``, ``/proc/self/fd/N``: that stream, as it is.
    - A FIFO or a device (``/dev/null``, ``/dev/full``, a terminal): written
      directly; there is no file to replace.
    - A symlink is followed: the file it points to gets the content (the
      temporary file is made in that file's folder), and the link stays a link.
    - An existing file keeps its permission bits (and owner, when allowed); a
      read-only one is refused. One with several hard links is rewritten in
      place, so that every name shows the new content (see ``_rewrite_in_place``).
    - Otherwise the content goes to a temporary file with a short name in the
      same folder (a 250-character name still fits), which is renamed over the
      target. Ctrl-C, SIGTERM and SIGHUP wait until the file is whole (then
      take effect), so no temporary file is left behind.

    Raises:
        OptionError: the folder does not exist (exit 2).
        WriteError: anything else that stops the write: permissions, a full
            disk, a short write (exit 1). Nothing is left half-written.
    """
    data = content.encode("utf-8") if isinstance(content, str) else content
    if path == "-":
        _write_stdout(data)
        return
    descriptor = _descriptor(path)
    if descriptor is not None:
        _write_descriptor(path, descriptor, data)
        return
    check_output_folder(path)
    info = _stat(path)
    try:
        if info is not None and not stat.S_ISREG(info.st_mode):
            _write_device(path, data)
        elif info is not None and info.st_nlink > 1:
            _rewrite_in_place(os.path.realpath(path), data)
        else:
            try:
                _replace(os.path.realpath(path), data, info)
            except PermissionError:
                if info is None:
                    raise  # a new file in a folder that refuses it
                # The folder refuses a temporary file, but the file itself may be
                # written, as `>` would: rewrite it in place.
                _rewrite_in_place(os.path.realpath(path), data)
    except BrokenPipeError:
        raise  # the reader went away: the group exits quietly, as `head` expects
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _stat(path: str) -> os.stat_result | None:
    """The file at ``path`` after following symlinks; None when there is none."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _descriptor(path: str) -> int | None:
    """The descriptor of this process that ``path`` names (through symlinks), or None."""
    current = path
    for _ in range(40):  # the kernel's own limit on a chain of symlinks
        current = os.path.normpath(os.path.join(os.getcwd(), current))
        if current in _STANDARD_PATHS:
            return _STANDARD_PATHS[current]
        match = _DESCRIPTOR_PATH.fullmatch(current)
        if match is not None:
            process, number = match.groups()
            if process in (None, "self") or int(process) == os.getpid():
                return int(number)
            return None
        try:
            link = os.readlink(current)
        except OSError:
            return None  # not a symlink (or missing): an ordinary path
        current = os.path.join(os.path.dirname(current), link)
    return None


def _refuse_read_only(path: str, target: Path, info: os.stat_result) -> None:
    # Nobody may write it (0444): the owner meant it to stay as it is, even when
    # root could replace it. Writable by others but not by this user: the same
    # refusal the system would give to open(), not a silent replacement.
    if not info.st_mode & 0o222:
        raise WriteError(
            f"cannot write '{path}': the file is read-only (make it writable, or choose another name)"
        )
    if not os.access(target, os.W_OK):
        raise WriteError(f"cannot write '{path}': Permission denied (the file is not yours to write)")


def _write_stdout(data: bytes) -> None:
    try:
        sys.stdout.flush()  # text already echoed comes first
        stream = getattr(sys.stdout, "buffer", None)
        if stream is None:  # a text-only stream (an embedding application's)
            sys.stdout.write(data.decode("utf-8", "backslashreplace"))
        else:
            # A pipe whose reader has gone can take part of the data and report
            # success: what write() says it wrote is checked, as write_all does.
            view = memoryview(data)
            while view:
                written = stream.write(view)
                if not written:
                    raise OSError(errno.EIO, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
                view = view[written:]
            stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        silence_stdout()  # what is still buffered would fail again at exit
        raise WriteError(f"cannot write to standard output: {reason(exc)}") from None


def _write_descriptor(path: str, fd: int, data: bytes) -> None:
    try:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        write_all(fd, data)
    except BrokenPipeError:
        raise
    except OSError as exc:
        if fd == 1:
            silence_stdout()
        raise WriteError(f"cannot write '{path}': {reason(exc)}") from None


def _write_device(path: str, data: bytes) -> None:
    # No O_CREAT (it exists) and no temporary file: a device or a FIFO cannot be
    # replaced, only written to. Opening a FIFO waits for its reader, as `cat > fifo` does.
    fd = os.open(path, os.O_WRONLY)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def _replace(target: str, data: bytes, info: os.stat_result | None) -> None:
    """Temporary file in the target's folder, then rename over the target."""
    folder = os.path.dirname(target) or "."
    with _signals_deferred():
        temporary = None
        try:
            # Inside the try: an unwritable folder fails here, at the temporary file.
            fd, temporary = tempfile.mkstemp(prefix=".exprgrad-", suffix=".tmp", dir=folder)
            try:
                write_all(fd, data)
                if info is None:
                    # mkstemp makes the file private (0600); give it the mode a plain open() would.
                    umask = os.umask(0)
                    os.umask(umask)
                    os.chmod(temporary, 0o666 & ~umask)
                else:
                    os.chmod(temporary, stat.S_IMODE(info.st_mode))
                    _keep_owner(fd, info)
                os.fsync(fd)  # a full disk shows here, before the old file is replaced
            finally:
                os.close(fd)
            os.replace(temporary, target)
        except BaseException:
            if temporary is not None and os.path.lexists(temporary):
                os.unlink(temporary)
            raise


def _keep_owner(fd: int, info: os.stat_result) -> None:
    if not hasattr(os, "fchown") or (info.st_uid, info.st_gid) == (os.geteuid(), os.getegid()):
        return
    try:
        os.fchown(fd, info.st_uid, info.st_gid)
    except OSError:
        pass  # only root may give a file away; the content still goes where it was asked


def _rewrite_in_place(target: str, data: bytes) -> None:
    """A file with several hard links: a rename would detach this name from the
    others, so the content (already whole in memory) is written into the file
    itself. Space is reserved first, so a full disk fails before the old
    content is touched; signals wait until the write is done."""
    with _signals_deferred():
        fd = os.open(target, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            if len(data) > size and hasattr(os, "posix_fallocate"):
                try:
                    os.posix_fallocate(fd, size, len(data) - size)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
            os.lseek(fd, 0, os.SEEK_SET)
            write_all(fd, data)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _signals_deferred():
    """Hold Ctrl-C, SIGTERM and SIGHUP until the block is done, then deliver them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for number in _DEFERRED_SIGNALS:
        try:
            previous[number] = signal.signal(number, lambda number, frame: received.append(number))
        except (OSError, ValueError):
            pass
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float (integers without '.0').

    The printer's ``number_text`` is the one rule; a value written for people
    and other programs differs from expression text on purpose in two places:
    nan, inf and -inf as Python and numpy write them (expression text has no
    such literals: log(-1), 1/0), and the exponent with its sign (1e+20, as
    repr gives it; expression text drops the '+').
    """
    value = float(value)
    if not math.isfinite(value):
        return repr(value)
    text = number_text(value)
    return repr(value) if "e" in text else text


def warn(message: str) -> None:
    """One `warning: ...` line on stderr, made safe to show (see ``show_message``)."""
    show_message("warning", message)


def unicode_ok(ascii_flag: bool) -> bool:
    """Whether stdout can show ∂ (and --ascii was not asked for)."""
    if ascii_flag:
        return False
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "∂²".encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def derivative_label(names: tuple[str, ...], unicode: bool) -> str:
    """∂/∂a, ∂²/∂a∂b (d/da, d2/dadb in ASCII)."""
    if len(names) == 1:
        return f"∂/∂{names[0]}" if unicode else f"d/d{names[0]}"
    first, second = names
    if unicode:
        return f"∂²/∂{first}²" if first == second else f"∂²/∂{first}∂{second}"
    return f"d2/d{first}2" if first == second else f"d2/d{first}d{second}"


def as_rows(value, per_row: bool, dataset):
    """A derivative that is the same in every row comes back as one number;
    show it per row (a column, a JSON list) when it is a per-row quantity."""
    if per_row and dataset is not None and np.ndim(value) == 0:
        return np.full(dataset.rows, float(value))
    return value


def json_text(value, **options) -> str:
    """``value`` as JSON for stdout: characters as they are where stdout's encoding
    can show them, else as ``\\u`` escapes (the same JSON, in ASCII)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    try:
        text.encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return json.dumps(value, ensure_ascii=True, **options)
    return text


def json_value(value):
    """A float, or a list of floats for a per-row result, nested lists for a value
    with several axes (a family's derivative per row: rows, then labels); NaN and inf as null."""
    if isinstance(value, np.ndarray):
        return _finite_lists(value.tolist())
    return float(value) if np.isfinite(value) else None


def _finite_lists(values):
    if isinstance(values, list):
        return [_finite_lists(v) for v in values]
    return float(values) if math.isfinite(values) else None


def _flat(values) -> list:
    """The numbers of nested lists, in order (one line of a value with several axes)."""
    if not isinstance(values, list):
        return [values]
    return [number for v in values for number in _flat(v)]


def text_lines(label: str, value) -> list[str]:
    """'label = v' for one value; the label, then one value a line, for a per-row result."""
    if isinstance(value, np.ndarray):
        lines = [" ".join(map(format_number, _flat(v))) for v in value.tolist()]
        return ([label] if label else []) + lines
    return [f"{label} = {format_number(value)}" if label else format_number(value)]
