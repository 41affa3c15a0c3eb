"""The grammar ships: build the wheel, install it in a scratch virtualenv, run it elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from exprgrad.parsing import grammar_path

ROOT = Path(__file__).resolve().parent.parent


def test_grammar_found_in_source_checkout():
    assert grammar_path().name == "exprgrad.lark" and grammar_path().is_file()


@pytest.mark.slow
def test_wheel_installed_elsewhere_finds_its_grammar(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("exprgrad-*.whl")
    assert "exprgrad/grammar/exprgrad.lark" in zipfile.ZipFile(wheel).namelist()
    assert "exprgrad/grammar/exprgrad.table.json" in zipfile.ZipFile(wheel).namelist()

    # The scratch environment sees this environment's dependencies (a .pth file
    # naming its site-packages) but not its exprgrad, and never the base
    # interpreter's packages: system_site_packages would expose those, so a
    # dependency the README's commands do not install could pass here unseen.
    # No PYTHONPATH: the scratch environment must find exprgrad in the wheel alone.
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    scratch_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean,
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(scratch_site, "outer_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-compile",
            "-q",
            "--target",
            scratch_site,
            str(wheel),
        ],
        check=True,
        env=clean,
    )
    # The wheel's console script, made the way pip makes one in that environment.
    script = env_dir / "bin" / "exprgrad"
    script.write_text(f"#!{python}\nimport sys\nfrom exprgrad.cli import cli\nsys.exit(cli())\n")
    script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [str(env_dir / "bin" / "exprgrad"), "eval", "2^-1 + x", "--at", "x=1"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=clean,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1.5\n"
    where = subprocess.run(
        [str(python), "-c", "from exprgrad.parsing import grammar_path; print(grammar_path())"],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        check=True,
        env=clean,
    ).stdout
    assert str(env_dir) in where
    # The installed copy parses from its shipped table: Lark is never imported to analyse the grammar.
    probe = "import sys; from exprgrad import parsing; parsing.parse('x'); print(parsing._parser, 'lark' in sys.modules)"
    shipped = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=elsewhere, check=True, env=clean
    ).stdout
    assert shipped == "None False\n"
