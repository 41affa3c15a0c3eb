"""Graphviz's dot program, run on DOT text with a time limit: the bytes of a picture.

In: DOT text, a format (svg, png, pdf) and a timeout. Out: the picture's bytes,
from dot's standard output (no file is written). A dot still running after the
timeout is killed and reaped, so a graph that is hard to lay out (a power
tower 150 deep keeps dot busy for minutes) costs at most the timeout. dot never
outlives its caller: Ctrl-C, SIGTERM and SIGHUP kill it before the process
ends as the signal says (exit 130, 143, 129; a handler of the caller's own is
left in charge), and on Linux dot is killed by the kernel when the thread that
started it dies in any way (PR_SET_PDEATHSIG), SIGKILL included. Must not:
build DOT text (``render.to_dot`` does), or import the ``graphviz`` package.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np

from ..errors import ArgumentError, Mention, OptionError, RenderError, RenderTimeout, ToolMissingError

FORMATS = ("svg", "png", "pdf", "dot")
# Seconds dot may take: a power tower 150 deep keeps it busy for minutes.
DEFAULT_TIMEOUT = 60.0

INSTALL_DOT = (
    "Graphviz's 'dot' program is needed for svg, png and pdf but was not found on PATH: "
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "Windows: winget install graphviz or choco install graphviz), or use fmt='dot'"
)
# The command line writes that mention as its option: "or use --format dot".
_DOT_TEXT = (Mention("fmt", "dot"),)


__all__ = ["DEFAULT_TIMEOUT", "FORMATS", "INSTALL_DOT", "RenderError", "RenderTimeout", "render"]


def render(dot_text: str, fmt: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> bytes:
    """The picture of ``dot_text`` in ``fmt`` ("svg", "png", "pdf", or "dot" for the text itself).

    Runs Graphviz's ``dot`` through pipes; writes no file. A ``dot`` still
    running after ``timeout`` seconds (None: no limit) is killed.

    Raises:
        OptionError: an unknown format.
        ArgumentError: ``timeout`` is not a number > 0.
        ToolMissingError: ``dot`` is not installed.
        RenderTimeout: ``dot`` ran past ``timeout``.
        RenderError: ``dot`` failed.
    """
    if not isinstance(dot_text, str):
        raise ArgumentError(f"must be DOT text (a str), got {type(dot_text).__name__}", argument="dot_text")
    if fmt not in FORMATS:
        raise OptionError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float, np.integer, np.floating)):
            raise ArgumentError(f"must be a number of seconds, got {timeout!r}", argument="timeout")
        if not timeout > 0:  # also nan
            raise ArgumentError(f"must be a number of seconds > 0, got {timeout!r}", argument="timeout")
        timeout = float(timeout)
    if fmt == "dot":
        return dot_text.encode("utf-8")
    program = shutil.which("dot")
    if program is None:
        raise ToolMissingError(INSTALL_DOT, mentions=_DOT_TEXT)
    try:
        returncode, stdout, stderr = _run([program, f"-T{fmt}"], dot_text.encode("utf-8"), timeout)
    except subprocess.TimeoutExpired:
        raise RenderTimeout(
            f"Graphviz's dot did not finish laying out the drawing in {timeout:g} s and was stopped: "
            "draw less (fewer derivatives, or the function alone), ask for the DOT text, "
            "or allow more time",
            argument="timeout",
        ) from None
    except OSError as exc:
        raise ToolMissingError(f"{INSTALL_DOT} ({exc.strerror or exc})", mentions=_DOT_TEXT) from None
    if returncode != 0:
        detail = stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError("Graphviz's dot failed" + (f": {detail[0]}" if detail else ""))
    return stdout


# Signals that end the process by default and that dot must not outlive.
_ENDING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Stopped(BaseException):
    """A terminating signal arrived while dot ran (raised by our handler, never escapes ``_run``)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _run(args: list[str], data: bytes, timeout: float | None) -> tuple[int, bytes, bytes]:
    """(returncode, stdout, stderr) of ``args`` fed ``data``; the child is killed and reaped
    on a timeout (TimeoutExpired), on any exception (Ctrl-C's KeyboardInterrupt) and on
    SIGTERM or SIGHUP, after which the signal ends the process as it would have."""
    process = None
    try:
        with _signals_raise():
            # preexec_fn is one prctl call through a function looked up before the fork.
            process = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent(),  # noqa: PLW1509 (one ctypes call, looked up before the fork)
            )
            try:
                stdout, stderr = process.communicate(data, timeout=timeout)
            except BaseException:
                _kill(process)
                raise
            return process.returncode, stdout, stderr
    except _Stopped as stopped:
        if process is not None:
            _kill(process)
        # Our handler is gone: the signal now does what it did before (the default: end the process).
        signal.signal(stopped.signum, signal.SIG_DFL)
        signal.raise_signal(stopped.signum)
        raise SystemExit(128 + stopped.signum) from None  # not reached where the default ends the process


def _kill(process: subprocess.Popen) -> None:
    """Kill the child, reap it and close its pipes."""
    with contextlib.suppress(OSError):
        process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        with contextlib.suppress(OSError):
            pipe.close()


@contextlib.contextmanager
def _signals_raise():
    """While the block runs, SIGTERM and SIGHUP raise _Stopped instead of ending the process
    at once, so the child can be killed first. Only signals left at their default are taken
    (a caller's own handler, or an ignored signal, stays as it is), and only in the main
    thread (Python delivers signals there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise _Stopped(signum)

    taken = []
    for number in _ENDING_SIGNALS:
        with contextlib.suppress(OSError, ValueError):
            if signal.getsignal(number) is signal.SIG_DFL:
                signal.signal(number, stop)
                taken.append(number)
    try:
        yield
    finally:
        for number in taken:
            signal.signal(number, signal.SIG_DFL)


def _die_with_parent():
    """On Linux, a preexec_fn asking the kernel to SIGKILL the child when the thread that
    started it dies (even by SIGKILL); None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
        prctl.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec():  # runs in the child, between fork and exec
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec
