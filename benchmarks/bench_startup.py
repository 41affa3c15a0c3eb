"""Start-up: whole-process time of small exprgrad commands, beside Python's own start-up.

Each command runs as a user runs it (the `exprgrad` console script, a new
process each time), interleaved with the baselines measured in the same run:
`python -c pass` (the interpreter alone) and `python -c "import numpy"`
(the floor for any command that evaluates). Best of --repeat runs each
(target: `exprgrad eval` of a small expression and `exprgrad diff` of each
family sample under 0.3 s). "without the shipped table" runs the same eval
with grammar/exprgrad.table.json out of reach, so Lark analyses the grammar
at start, as every command did before the table was shipped. --compare DIR
also times every exprgrad command with exprgrad imported from DIR (another
checkout, say `git archive <commit> | tar -x -C DIR`), interleaved with the
rest, for a before/after in one run. Commands run from an empty folder, so
the current folder never decides which exprgrad is imported.

    python benchmarks/bench_startup.py [--repeat 10] [--compare DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def _exprgrad() -> list[str]:
    """The console script beside this interpreter, else `python -m exprgrad`."""
    script = Path(sys.executable).with_name("exprgrad")
    if script.is_file():
        return [str(script)]
    found = shutil.which("exprgrad")
    return [found] if found else [sys.executable, "-m", "exprgrad"]


TARGET = 0.3  # seconds, whole process: eval of a small expression, diff of each family sample


def _cases() -> list[tuple[str, list[str], float | None]]:
    """(label, command, target in seconds or None) of every row."""
    exprgrad = _exprgrad()
    linear = str(SAMPLES / "linear.csv")
    eval_args = ["eval", "a*x + b", "--at", "a=1,b=2", "--data", linear]
    without_table = (
        "import sys\nfrom exprgrad import parsing\nparsing.TABLE_NAME = 'no.table.json'\n"
        "from exprgrad.cli import cli\ncli(sys.argv[1:])"
    )
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ('python -c "import numpy"', [sys.executable, "-c", "import numpy"], None),
        ("exprgrad --help", [*exprgrad, "--help"], None),
        ('exprgrad eval "a*x + b" --at a=1,b=2 --data linear.csv', [*exprgrad, *eval_args], TARGET),
        ('exprgrad diff "mean((a*x + b - y)^2)"', [*exprgrad, "diff", "mean((a*x + b - y)^2)"], None),
    ]
    for sample in sorted((SAMPLES / "families").glob("*.exprgrad")):
        cases.append((f"exprgrad diff @families/{sample.name}", [*exprgrad, "diff", f"@{sample}"], TARGET))
    cases += [
        (
            "exprgrad fit linear.csv --model a*x + b --target y",
            [*exprgrad, "fit", linear, "--model", "a*x + b", "--target", "y"],
            None,
        ),
        ("the same eval, without the shipped table", [sys.executable, "-c", without_table, *eval_args], None),
    ]
    return cases


def _extra() -> str:
    """Whether the compiled backend's extra (numba) is installed: start-up must not depend on it."""
    spec = importlib.util.find_spec("numba")
    if spec is None:
        return "numba not installed"
    try:
        return f"numba {importlib.metadata.version('numba')} installed"
    except importlib.metadata.PackageNotFoundError:
        return f"numba installed at {spec.origin}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--compare", type=Path, help="another exprgrad checkout to time beside this one")
    options = parser.parse_args()
    # Bytecode is written on the first run, as pip compiles an installed package:
    # a process that compiles every module it imports measures the compiler.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}
    runs = [(label, command, target, env) for label, command, target in _cases()]
    if options.compare is not None:
        other = {**env, "PYTHONPATH": str(options.compare.resolve())}
        runs += [(f"{label} [{options.compare}]", command, None, other) for label, command, _, _ in runs[2:]]
    best = [float("inf")] * len(runs)
    cpu = [float("inf")] * len(runs)
    with tempfile.TemporaryDirectory() as empty:
        for _, command, _, env in runs:  # every command must work before it is timed
            subprocess.run(command, capture_output=True, check=True, cwd=empty, env=env)
        for _ in range(options.repeat):  # interleaved: a burst of load hits every row alike
            for k, (_, command, _, env) in enumerate(runs):
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(
                    command,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    cwd=empty,
                    env=env,
                    check=True,
                )
                best[k] = min(best[k], time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[k] = min(cpu[k], after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    bare, numpy = best[0], best[1]
    width = max(len(label) for label, *_ in runs)
    print(f"best of {options.repeat} whole-process runs each, interleaved, in one run ({_extra()})")
    print("wall: the whole process as a user waits for it; cpu: its user + system time (less moved by load)")
    head = (
        f"{'command':<{width}}  {'wall ms':>7}  {'x pass':>7}  {'x numpy':>7}  {'- numpy':>7}  {'cpu ms':>7}"
    )
    print(f"{head}  target (wall)")
    for (label, _, target, _), seconds, busy in zip(runs, best, cpu, strict=True):
        verdict = (
            "" if target is None else f"< {target * 1e3:.0f} ms {'PASS' if seconds < target else 'MISS'}"
        )
        print(
            f"{label:<{width}}  {seconds * 1e3:7.1f}  {seconds / bare:7.2f}  {seconds / numpy:7.2f}  "
            f"{(seconds - numpy) * 1e3:7.1f}  {busy * 1e3:7.1f}  {verdict}".rstrip()
        )


if __name__ == "__main__":
    main()
