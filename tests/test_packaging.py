"""The grammar ships: build the wheel, install it in a scratch virtualenv, run it elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from exprgrad.parse import grammar_path

ROOT = Path(__file__).resolve().parent.parent


def test_grammar_found_in_source_checkout():
    assert grammar_path().name == "exprgrad.lark" and grammar_path().is_file()


@pytest.mark.slow
def test_wheel_installed_elsewhere_finds_its_grammar(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(wheels)],
        check=True, cwd=tmp_path,
    )
    (wheel,) = wheels.glob("exprgrad-*.whl")
    assert "exprgrad/grammar/exprgrad.lark" in zipfile.ZipFile(wheel).namelist()

    # The scratch environment sees this one's dependencies but not its exprgrad.
    # No PYTHONPATH: the scratch environment must find exprgrad in the wheel alone.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "-q", str(wheel)], check=True, env=clean,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(env_dir / "bin" / "exprgrad"), "eval", "2^-1 + x", "--at", "x=1"],
        capture_output=True, text=True, cwd=elsewhere, env=clean, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1.5\n"
    where = subprocess.run(
        [str(python), "-c", "from exprgrad.parse import grammar_path; print(grammar_path())"],
        capture_output=True, text=True, cwd=elsewhere, check=True, env=clean,
    ).stdout
    assert str(env_dir) in where
