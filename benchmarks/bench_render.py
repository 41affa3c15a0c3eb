"""Time `render` on a graph of about 500 nodes, against Graphviz on the bare graph.

Builds a cost over data with K hidden tanh units, mean((sum_k t[k]*tanh(w[k]*x + c[k]) - y)^2),
with its gradient for every parameter, choosing K so the drawing has about NODES nodes. It
prints the best of REPEAT timings of ``to_dot`` (DOT text), of ``to_dot`` with values over
ROWS rows of data (one schedule, then the adjoint sweep), of ``render`` to SVG (Graphviz's
dot; once more with values, also to PNG and PDF), and, as the baseline measured in the same run, of dot on the same nodes and edges with
no labels, styles or clusters; then the ratio of the full render to that baseline.

    python benchmarks/bench_render.py [--nodes 500] [--rows 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from timing import best_time

from exprgrad import build, graph
from exprgrad.backends.render import render
from exprgrad.drawing import to_dot
from exprgrad.passes.diff import diff


def cost(units: int) -> graph.Node:
    x, y = graph.var("x", per_row=True), graph.var("y", per_row=True)
    terms = [
        build.mul(
            graph.var(f"t[{k}]"),
            build.call("tanh", build.add(build.mul(graph.var(f"w[{k}]"), x), graph.var(f"c[{k}]"))),
        )
        for k in range(units)
    ]
    return build.call("mean", build.pow_(build.sub(build.add(*terms), y), build.const(2)))


def sized(nodes: int) -> tuple[graph.Node, list[graph.Node], list[graph.Node]]:
    """The cost, its parameters, and its drawn nodes, for the unit count nearest ``nodes`` nodes."""
    units = 1
    while True:
        output = cost(units)
        params = [v for v in graph.variables([output]) if not v.per_row]
        drawn = graph.toposort([output, *diff(output, params).values()])
        if len(drawn) >= nodes:
            return output, params, drawn
        units += 1


def bare_dot(drawn: list[graph.Node]) -> str:
    index = {id(n): k for k, n in enumerate(drawn)}
    lines = ["digraph bare {", "rankdir=LR"]
    lines += [f"n{k}" for k in range(len(drawn))]
    lines += [f"n{index[id(c)]} -> n{index[id(n)]}" for n in drawn for c in n.inputs]
    return "\n".join(lines + ["}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    output, params, drawn = sized(args.nodes)
    rng = np.random.default_rng(0)
    values = {p.name: float(rng.normal()) for p in params}
    values.update(x=rng.normal(size=args.rows), y=rng.normal(size=args.rows))
    dot_text = to_dot(output, params, max_nodes=10 * args.nodes)
    print(
        f"graph: {len(drawn)} nodes ({len(params)} parameters, function and gradient), "
        f"{sum(len(n.inputs) for n in drawn)} edges"
    )
    print(f"to_dot              {best_time(lambda: to_dot(output, params), args.repeat):8.3f} s")
    with_values = best_time(lambda: to_dot(output, params, values=values), args.repeat)
    print(f"to_dot, {args.rows} rows    {with_values:8.3f} s")
    if shutil.which("dot") is None:
        print("Graphviz's dot is not installed: no layout timings")
        return
    ours = best_time(lambda: render(dot_text, "svg"), args.repeat)
    baseline = best_time(lambda: render(bare_dot(drawn), "svg"), args.repeat)
    print(f"render svg          {ours:8.3f} s")
    valued_text = to_dot(output, params, values=values, max_nodes=10 * args.nodes)
    for fmt in ("svg", "png", "pdf"):
        seconds = best_time(lambda fmt=fmt: render(valued_text, fmt), 1)
        print(f"  with values, {fmt}  {seconds:8.3f} s")
    print(f"bare dot (baseline) {baseline:8.3f} s")
    print(f"ratio render / bare {ours / baseline:8.2f}")


if __name__ == "__main__":
    main()
