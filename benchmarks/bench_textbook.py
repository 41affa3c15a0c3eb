"""Printed length of exprgrad's derivatives of textbook costs against SymPy's simplify; simplify on deep chains.

Corpus: benchmarks/textbook_costs.txt, one cost of one sample per line
(regression and classification losses, likelihoods, regularizers, small
networks, physics-style formulas). Each cost is differentiated with respect
to each of its parameters (every name that is not a data column). Ours: the
derivative ``exprgrad diff`` prints, inline (``--let never``). SymPy's:
``sympy.simplify(sympy.diff(cost, p))`` of the same cost, symbols real,
sigmoid(u) written 1/(1 + exp(-u)) and softplus(u) log(1 + exp(u)), printed
by ``sympy.sstr`` with ``**`` counted as one character like our ``^``. For
each derivative it prints ratio = our length / SymPy's, then the median and
worst ratios and the worst cases. SymPy is imported only here and only when
installed (``pip install sympy``); a SymPy simplify that takes longer than
--timeout seconds is left out (counted and reported).

``--deep`` times simplify on the derivatives of deep graphs: a chain
sin(sin(...sin(x))), a chain of definitions h_k = tanh(w*h_{k-1} + c) and
a power tower x^x^...^x, at depth d and 2d, printing the time ratio per
doubling (2 is linear) and the size of the simplified graph over the raw one.

    python benchmarks/bench_textbook.py [--worst 15] [--timeout 20] [--deep] [--deep-max 100000]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exprgrad import build, graph, interning
from exprgrad.backends.printing import to_text
from exprgrad.function import parse
from exprgrad.passes.diff import diff
from exprgrad.passes.simplify import simplify_many

CORPUS = Path(__file__).with_name("textbook_costs.txt")
COLUMNS = ["x", "y", "t", "x1", "x2", "n_obs"]


def read_corpus() -> list[tuple[str, str]]:
    """(section, cost text) for every line of the corpus."""
    costs, section = [], ""
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.strip() and not line.startswith("#"):
            costs.append((section, line.strip()))
    return costs


def ours(text: str) -> tuple[list[str], dict[str, str]]:
    """The variable names and, per parameter, the derivative exprgrad prints inline."""
    f = parse(text, columns=[c for c in COLUMNS if c in text])
    variables = graph.variables([f.output])
    params = [v for v in variables if not v.per_row]
    raw = diff(f.output, params)
    simple = simplify_many(list(raw.values()))
    return [v.name for v in variables], {name: to_text(node) for name, node in zip(raw, simple)}


class SympyTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise SympyTimeout


def theirs(sp, text: str, names: list[str], params: list[str], timeout: float) -> dict[str, str | None]:
    """SymPy's simplified derivative per parameter (None: it took longer than ``timeout``)."""
    symbols = {name: sp.Symbol(name, real=True) for name in names}
    functions = {
        "sigmoid": lambda u: 1 / (1 + sp.exp(-u)),
        "softplus": lambda u: sp.log(1 + sp.exp(u)),
        "relu": lambda u: sp.Max(u, 0),
        "abs": sp.Abs,
        "atan2": sp.atan2,
        "pi": sp.pi,
    }
    cost = sp.sympify(text.replace("^", "**"), locals={**functions, **symbols})
    out: dict[str, str | None] = {}
    for p in params:
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            out[p] = sp.sstr(sp.simplify(sp.diff(cost, symbols[p]))).replace("**", "^")
        except SympyTimeout:
            out[p] = None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return out


def compare(args) -> None:
    try:
        import sympy as sp
    except ImportError:
        print("SymPy is not installed (pip install sympy): printed lengths only")
        sp = None
    signal.signal(signal.SIGALRM, _alarm)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # SymPy's simplify recurses on its trees (exprgrad does not)
    rows, skipped, ours_time = [], 0, 0.0
    costs = read_corpus()
    for section, text in costs:
        start = time.perf_counter()
        names, derivatives = ours(text)
        ours_time += time.perf_counter() - start
        reference = theirs(sp, text, names, list(derivatives), args.timeout) if sp else {}
        for p, mine in derivatives.items():
            other = reference.get(p)
            if other is None:
                skipped += sp is not None
                continue
            rows.append((len(mine) / max(len(other), 1), section, text, p, mine, other))
    sys.setrecursionlimit(limit)
    print(f"{len(costs)} costs, {len(rows) + skipped} derivatives; exprgrad: {ours_time:.2f} s for all")
    if not rows:
        return
    ratios = [r[0] for r in rows]
    print(
        f"printed length, ours / SymPy simplify's: median {statistics.median(ratios):.2f}, "
        f"worst {max(ratios):.2f}, best {min(ratios):.2f}; "
        f"{sum(r <= 1 for r in ratios)} of {len(ratios)} no longer than SymPy's"
        + (f"; {skipped} left out (SymPy over {args.timeout:g} s)" if skipped else "")
    )
    by_section: dict[str, list[float]] = {}
    for r in rows:
        by_section.setdefault(r[1], []).append(r[0])
    for section, values in by_section.items():
        print(
            f"  {section:<28} median {statistics.median(values):.2f}  worst {max(values):.2f}  ({len(values)})"
        )
    print(f"\nworst {args.worst}:")
    for ratio, _, text, p, mine, other in sorted(rows, key=lambda r: -r[0])[: args.worst]:
        print(f"{ratio:5.2f}  d/d{p} {text}\n       ours:  {mine}\n       sympy: {other}")


# ---------------------------------------------------------------- deep graphs


def sin_chain(depth: int):
    x = graph.var("x")
    node = x
    for _ in range(depth):
        node = build.call("sin", node)
    return node, [x]


def definitions_chain(depth: int):
    text = "\n".join(
        ["h0 = x"] + [f"h{k} = tanh(w*h{k - 1} + c)" for k in range(1, depth + 1)] + [f"h{depth}"]
    )
    f = parse(text)
    return f.output, [v for v in graph.variables([f.output]) if v.name in ("w", "c")]


def power_tower(depth: int):
    x = graph.var("x")
    node = x
    for _ in range(depth):
        node = build.pow_(x, node)
    return node, [x]


def deep(args) -> None:
    print("\nsimplify of the derivative on deep graphs (time at d and 2d, ratio per doubling; 2 is linear)")
    families = [
        ("sin chain", sin_chain, [d for d in (1_000, 10_000, 100_000) if d <= args.deep_max]),
        ("definitions chain", definitions_chain, [d for d in (1_000, 10_000, 100_000) if d <= args.deep_max]),
        ("power tower", power_tower, [100, 200, 400]),
    ]
    for name, make, depths in families:
        for depth in depths:
            times, sizes = [], []
            for d in (depth, 2 * depth):
                with interning.gc_paused():
                    output, wrt = make(d)
                    raw = list(diff(output, wrt).values())
                    start = time.perf_counter()
                    simple = simplify_many(raw)
                    times.append(time.perf_counter() - start)
                sizes.append(graph.count_nodes(simple) / graph.count_nodes(raw))
            print(
                f"  {name:<18} d={depth:<7} {times[0]:7.3f} s   2d: {times[1]:7.3f} s   "
                f"ratio {times[1] / times[0]:4.2f}   nodes simplified/raw {sizes[1]:.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worst", type=int, default=15, help="how many worst cases to list")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per SymPy simplify")
    parser.add_argument("--deep", action="store_true", help="also time simplify on deep graphs")
    parser.add_argument("--deep-only", action="store_true", help="only the deep graphs")
    parser.add_argument("--deep-max", type=int, default=100_000, help="largest chain depth")
    args = parser.parse_args()
    if not args.deep_only:
        compare(args)
    if args.deep or args.deep_only:
        deep(args)


if __name__ == "__main__":
    main()
