"""Graphviz's dot program, run on DOT text with a time limit: the bytes of a picture.

In: DOT text, a format (svg, png, pdf) and a timeout. Out: the picture's bytes,
from dot's standard output (no file is written). A dot still running after the
timeout is killed (``subprocess.run`` kills and reaps it), so a graph that is
hard to lay out (a power tower 150 deep keeps dot busy for minutes) costs at
most the timeout. Must not: build DOT text (``render.to_dot`` does), or import
the ``graphviz`` package.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np

from ..errors import ArgumentError, OptionError, RenderError, RenderTimeout, ToolMissingError

FORMATS = ("svg", "png", "pdf", "dot")
# Seconds dot may take: a power tower 150 deep keeps it busy for minutes.
DEFAULT_TIMEOUT = 60.0

INSTALL_DOT = (
    "Graphviz's 'dot' program is needed for svg, png and pdf but was not found on PATH: "
    "install Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "Windows: winget install graphviz or choco install graphviz), or use --format dot"
)


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
        raise ToolMissingError(INSTALL_DOT)
    try:
        # On a timeout, subprocess.run kills dot and waits for it before raising.
        done = subprocess.run([program, f"-T{fmt}"], input=dot_text.encode("utf-8"),
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RenderTimeout(
            f"Graphviz's dot did not finish laying out the drawing in {timeout:g} s and was stopped: "
            "draw less (fewer derivatives, or the function alone), ask for the DOT text, "
            "or allow more time",
            argument="timeout",
        ) from None
    except OSError as exc:
        raise ToolMissingError(f"{INSTALL_DOT} ({exc.strerror or exc})") from None
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError("Graphviz's dot failed" + (f": {detail[0]}" if detail else ""))
    return done.stdout
