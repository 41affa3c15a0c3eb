"""Deep chains through `exprgrad diff`'s route: time and peak memory must grow linearly.

For chains of depth 1,000 to 100,000, written nested (`sin(sin(...sin(x)...))`)
and as definitions (`t1 = sin(x); t2 = sin(t1); ...`), runs what `exprgrad diff`
runs: parse and lower, reverse-mode diff, simplify, and printing as text with
shared subexpressions named (let-form). Each depth runs in a fresh process, so
its peak memory (resident set, above the process's size after the imports) is
its own. Prints each stage's time and the peak, then the growth per doubling
of the depth between successive depths, (t2/t1)^(1/log2(n2/n1)): a linear
stage gives about 2.0, a quadratic one 4.0.

Run: python benchmarks/bench_deep.py [--depths 1000,2000,...] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import subprocess
import sys
import time

FORMS = ("nested", "definitions")
STAGES = ("parse", "diff", "simplify", "print")
DEPTHS = (1_000, 2_000, 10_000, 20_000, 100_000)


def chain_text(form: str, depth: int) -> str:
    if form == "nested":
        return "sin(" * depth + "x" + ")" * depth
    lines = ["t1 = sin(x)"] + [f"t{i} = sin(t{i - 1})" for i in range(2, depth + 1)]
    return "\n".join([*lines, f"t{depth}"])


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def run_one(form: str, depth: int) -> dict:
    """One depth, in this process: seconds per stage and the peak memory above the start."""
    from exprgrad.backends.printing import to_text_many
    from exprgrad.function import parse
    from exprgrad.passes.diff import diff
    from exprgrad.passes.simplify import simplify_many
    from exprgrad.selection import select

    text = chain_text(form, depth)
    start_rss = _peak_rss()
    times = {}
    clock = time.perf_counter()
    function = parse(text, columns=[])
    times["parse"] = time.perf_counter() - clock

    clock = time.perf_counter()
    wrt, _ = select(function.output, ["x"])
    raw = diff(function.output, wrt)
    times["diff"] = time.perf_counter() - clock

    clock = time.perf_counter()
    simplified = dict(zip(raw, simplify_many(list(raw.values()))))
    times["simplify"] = time.perf_counter() - clock

    clock = time.perf_counter()
    lets, texts = to_text_many(simplified, let="auto")
    chars = sum(len(t) for _, t in lets) + sum(len(t) for t in texts.values())
    times["print"] = time.perf_counter() - clock
    return {"times": times, "peak": _peak_rss() - start_rss, "chars": chars}


def measure(form: str, depth: int, timeout: float) -> dict | None:
    command = [sys.executable, __file__, "--one", form, str(depth)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def growth(a: float, b: float, n_a: int, n_b: int) -> float:
    """The factor per doubling of the depth, from values a at n_a and b at n_b."""
    if a <= 0 or b <= 0:
        return float("nan")
    return (b / a) ** (1 / math.log2(n_b / n_a))


def report(form: str, depths: list[int], timeout: float) -> None:
    print(f"\n{form} chain of sin (d/dx); seconds per stage, peak memory above the start:")
    print(
        f"{'depth':>8} {'parse':>7} {'diff':>7} {'simplify':>9} {'print':>7} {'total':>7} {'peak MB':>8}"
        f" {'chars':>10}"
    )
    rows: list[tuple[int, dict]] = []
    for depth in depths:
        result = measure(form, depth, timeout)
        if result is None or "error" in result:
            why = f"over {timeout:.0f} s" if result is None else result["error"]
            print(f"{depth:>8,} stopped: {why}")
            break
        t = result["times"]
        total = sum(t.values())
        print(
            f"{depth:>8,} {t['parse']:7.2f} {t['diff']:7.2f} {t['simplify']:9.2f} {t['print']:7.2f}"
            f" {total:7.2f} {result['peak'] / 1e6:8.1f} {result['chars']:>10,}"
        )
        rows.append((depth, result))
    if len(rows) < 2:
        return
    print("growth per doubling of the depth (linear: about 2.0):")
    for (n_a, a), (n_b, b) in itertools.pairwise(rows):
        parts = [f"{stage} {growth(a['times'][stage], b['times'][stage], n_a, n_b):.2f}" for stage in STAGES]
        total = growth(sum(a["times"].values()), sum(b["times"].values()), n_a, n_b)
        peak = growth(max(a["peak"], 1), max(b["peak"], 1), n_a, n_b)
        print(f"  {n_a:,} -> {n_b:,}: {', '.join(parts)}; total {total:.2f}; peak memory {peak:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", default=",".join(str(d) for d in DEPTHS))
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed for one depth")
    parser.add_argument("--one", nargs=2, metavar=("FORM", "DEPTH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    depths = [int(d) for d in args.depths.split(",")]
    for form in args.forms.split(","):
        report(form, depths, args.timeout)


if __name__ == "__main__":
    main()
