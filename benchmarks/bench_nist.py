"""NIST StRD regression problems: accuracy of `exprgrad fit` against certified values.

Runs exprgrad.fitting.run (the code path of the `exprgrad fit` command) on the 27
nonlinear problems from both NIST starting points and on the 11 linear ones,
and prints per problem the log relative error (LRE, digits in agreement) of
the parameters and of the standard errors (the minimum over the parameters),
then the totals. Usage: python benchmarks/bench_nist.py [NAME ...] [--json]

LRE = -log10(|estimate - certified| / |certified|), capped at the certified
digits; absolute error where the certified value is 0 (Wampler1/2 standard
errors). Nelson's response is log(y): the fit targets a column log_y.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from exprgrad.fitting import fit
from exprgrad.fitting.data import load_csv

NIST = ROOT.parent / "shared" / "nist-strd"


def lre(estimate: float | None, certified: str, digits: int) -> float:
    """Digits of ``estimate`` that agree with the certified value (0 when missing or not finite)."""
    truth = float(certified)
    if estimate is None or not math.isfinite(estimate):
        return 0.0
    error = abs(estimate - truth) / abs(truth) if truth != 0 else abs(estimate - truth)
    if error == 0:
        return float(digits)
    return max(0.0, min(float(digits), -math.log10(error)))


def problem_data(problem: dict, folder: Path = NIST) -> tuple[dict, str]:
    """The columns for a problem and the name of the target column."""
    dataset = load_csv(folder / problem["csv"])
    columns = dict(dataset.columns)
    if problem["response"] == "y":
        return columns, "y"
    if problem["response"] == "log(y)":
        columns["log_y"] = np.log(columns["y"])
        return columns, "log_y"
    raise ValueError(f"unexpected response {problem['response']!r}")


def run(problem: dict, start: list[str] | None, folder: Path = NIST) -> dict:
    """Fit one problem from one start; the LREs and the fit's report."""
    columns, target = problem_data(problem, folder)
    init = None if start is None else dict(zip(problem["params"], map(float, start)))
    began = time.perf_counter()
    result = fit(columns, model=problem["model"], target=target, init=init)
    elapsed = time.perf_counter() - began
    digits = problem["certified_digits"]
    names = problem["params"]
    value_lre = [lre(result.params[n], c, digits) for n, c in zip(names, problem["certified_values"])]
    stderr_lre = [lre(result.stderr[n], c, digits) for n, c in zip(names, problem["certified_std_dev"])]
    return {
        "name": problem["name"],
        "kind": problem["kind"],
        "level": problem["level"],
        "params": min(value_lre),
        "stderr": min(stderr_lre),
        "rss": lre(result.rss, problem["residual_sum_of_squares"], digits)
        if float(problem["residual_sum_of_squares"]) != 0
        else None,
        "method": result.method,
        "converged": result.converged,
        "evaluations": result.evaluations,
        "seconds": elapsed,
        "message": result.message,
    }


def main(argv: list[str]) -> int:
    as_json = "--json" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    problems = json.loads((NIST / "problems.json").read_text())["problems"]
    if wanted:
        problems = [p for p in problems if p["name"] in wanted]
    rows = []
    header = f"{'problem':<10} {'level':<8} {'start':<6} {'LRE params':>10} {'LRE stderr':>10} {'method':<7} {'evals':>6} {'time s':>7}"
    if not as_json:
        print(header)
        print("-" * len(header))
    for problem in problems:
        starts = (
            [("1", problem["start1"]), ("2", problem["start2"])]
            if problem["kind"] == "nonlinear"
            else [("-", None)]
        )
        for label, start in starts:
            row = run(problem, start)
            row["start"] = label
            rows.append(row)
            if not as_json:
                flag = "" if row["converged"] else "  (not converged: " + row["message"] + ")"
                print(
                    f"{row['name']:<10} {row['level']:<8} {label:<6} {row['params']:>10.1f} {row['stderr']:>10.1f} "
                    f"{row['method']:<7} {row['evaluations']:>6} {row['seconds']:>7.3f}{flag}",
                    flush=True,
                )
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    print()
    for kind, goal in (("nonlinear", 6), ("linear", 7)):
        for label in ("1", "2") if kind == "nonlinear" else ("-",):
            chosen = [r for r in rows if r["kind"] == kind and r["start"] == label]
            if not chosen:
                continue
            good = sum(r["params"] >= goal for r in chosen)
            good4 = sum(r["params"] >= 4 for r in chosen)
            se = sum(r["stderr"] >= 4 for r in chosen)
            where = f"start {label}" if label != "-" else "direct"
            print(
                f"{kind:<9} {where:<7}: params LRE >= {goal}: {good}/{len(chosen)}   "
                f"params LRE >= 4: {good4}/{len(chosen)}   stderr LRE >= 4: {se}/{len(chosen)}   "
                f"worst params LRE {min(r['params'] for r in chosen):.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
