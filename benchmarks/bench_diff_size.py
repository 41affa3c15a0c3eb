"""Size of exprgrad's gradient graphs against the function's, beside SymPy's; and diff's speed.

For each family it builds the function, takes the full gradient (every
parameter) in reverse mode, and prints n (nodes of the function), the nodes
of function and gradient together (shared nodes counted once, as
``graph.count_nodes([output, *grads])``) and their ratio to n; the target is
at most 3. When SymPy is importable, the same function is differentiated by
``sympy.diff`` for each parameter and its ratio printed beside ours: tree
size (``preorder_traversal``) of the function and all derivatives over the
function's tree size. SymPy has no rows, so ``mean(e)`` is written as e
(the derivative of a mean is the mean of the derivative: same shape).

Then it times ``diff`` (best of REPEAT) on a random 10,000-operator
expression with 100 parameters (goal for the whole ``exprgrad diff``: 1 s).

SymPy needs minutes on the full sizes (its derivatives are quadratic trees).

    python benchmarks/bench_diff_size.py [--repeat 3] [--no-sympy] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exprgrad import build, graph
from exprgrad.passes.diff import diff

X = graph.var("x", per_row=True)
Y = graph.var("y", per_row=True)
TWO = build.const(2)


# Each family returns (exprgrad graph, builder of the same function in SymPy).


def chain(depth):
    """f_k = sin(f_{k-1}*x + c_k), f_0 = x; x and the c_k are parameters."""
    x = graph.var("x")
    f = x
    for k in range(depth):
        f = build.call("sin", build.add(build.mul(f, x), graph.var(f"c[{k}]")))

    def sympy_version(sp):
        xs = sp.Symbol("x")
        g = xs
        for k in range(depth):
            g = sp.sin(g * xs + sp.Symbol(f"c{k}"))
        return g

    return f, sympy_version


def product(count):
    """u[0]*u[1]*...*u[count-1]: one n-ary mul of parameter leaves."""
    f = build.mul(*(graph.var(f"u[{i}]") for i in range(count)))

    def sympy_version(sp):
        return sp.Mul(*(sp.Symbol(f"u{i}") for i in range(count)))

    return f, sympy_version


def product_of_terms(count):
    """(a - c[0])*(a - c[1])*...: a polynomial from its roots."""
    a = graph.var("a")
    f = build.mul(*(build.sub(a, graph.var(f"c[{i}]")) for i in range(count)))

    def sympy_version(sp):
        s = sp.Symbol("a")
        return sp.Mul(*(s - sp.Symbol(f"c{i}") for i in range(count)))

    return f, sympy_version


def least_squares(terms):
    """mean((sum_i theta[i]*exp(-theta[i+terms]*x) - y)^2)."""
    theta = [graph.var(f"theta[{i}]") for i in range(2 * terms)]
    model = build.add(
        *(
            build.mul(theta[i], build.call("exp", build.neg(build.mul(theta[i + terms], X))))
            for i in range(terms)
        )
    )
    f = build.call("mean", build.pow_(build.sub(model, Y), TWO))

    def sympy_version(sp):
        xs, ys = sp.Symbol("x"), sp.Symbol("y")
        th = [sp.Symbol(f"theta{i}") for i in range(2 * terms)]
        return (sp.Add(*(th[i] * sp.exp(-th[i + terms] * xs) for i in range(terms))) - ys) ** 2

    return f, sympy_version


def network(units):
    """mean((sum_j v[j]*tanh(w[j]*x + c[j]) + b - y)^2): one hidden layer, written out."""
    hidden = [
        build.mul(
            graph.var(f"v[{j}]"),
            build.call("tanh", build.add(build.mul(graph.var(f"w[{j}]"), X), graph.var(f"c[{j}]"))),
        )
        for j in range(units)
    ]
    f = build.call("mean", build.pow_(build.sub(build.add(*hidden, graph.var("b")), Y), TWO))

    def sympy_version(sp):
        xs, ys, b = sp.Symbol("x"), sp.Symbol("y"), sp.Symbol("b")
        out = sp.Add(
            *(
                sp.Symbol(f"v{j}") * sp.tanh(sp.Symbol(f"w{j}") * xs + sp.Symbol(f"c{j}"))
                for j in range(units)
            )
        )
        return (out + b - ys) ** 2

    return f, sympy_version


FAMILIES = [
    ("deep chain, depth 80", chain, 80),
    ("product of 200 leaves", product, 200),
    ("product of 200 (a - c_i)", product_of_terms, 200),
    ("least squares, 200 terms", least_squares, 200),
    ("network, 64 tanh units", network, 64),
]


def exprgrad_ratio(f):
    params = [v for v in graph.variables([f]) if not v.per_row]
    grads = diff(f, params)
    n = graph.count_nodes([f])
    total = graph.count_nodes([f, *grads.values()])
    return n, total, total / n


def sympy_ratio(sp, make):
    # SymPy recurses on expression depth; give it room (exprgrad needs none).
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 100_000))
    f = make(sp)
    data = {"x", "y"}
    params = sorted((s for s in f.free_symbols if s.name not in data), key=lambda s: s.name)
    sizes: dict = {}
    size = tree_size(f, sizes)
    derivatives = sum(tree_size(sp.diff(f, p), sizes) for p in params)
    return (size + derivatives) / size


def tree_size(expr, sizes: dict) -> int:
    """Nodes of ``expr`` as a tree (what preorder_traversal counts), memoized on subtrees."""
    stack = [expr]
    while stack:
        top = stack[-1]
        if top in sizes:
            stack.pop()
            continue
        missing = [a for a in top.args if a not in sizes]
        if missing:
            stack.extend(missing)
        else:
            stack.pop()
            sizes[top] = 1 + sum(sizes[a] for a in top.args)
    return sizes[expr]


def big_expression(operators=10_000, parameters=100, seed=0):
    """mean((T - y)^2) for a random expression tree T with about ``operators`` ops."""
    rng = np.random.default_rng(seed)
    unary = ["sin", "cos", "tanh", "exp", "sigmoid", "softplus", "neg"]
    binary = ["add", "sub", "mul", "div"]
    leaves = [graph.var(f"p[{i}]") for i in range(parameters)] + [X, build.const(0.5), build.const(2)]
    pool: list = []

    def operand():
        if pool and rng.random() < 0.6:
            return pool.pop(int(rng.integers(len(pool))))
        return leaves[int(rng.integers(len(leaves)))]

    def loss():
        return build.call("mean", build.pow_(build.sub(build.add(*pool), Y), TWO))

    # Interning and folding merge a few nodes: grow until the graph has enough.
    while sum(1 for node in graph.toposort([loss()]) if not node.is_leaf) < operators:
        for _ in range(100):
            if rng.random() < 0.4:
                pool.append(build.call(unary[int(rng.integers(len(unary)))], operand()))
            else:
                pool.append(build.call(binary[int(rng.integers(len(binary)))], operand(), operand()))
    return loss()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-sympy", action="store_true", help="leave SymPy out (it takes minutes)")
    parser.add_argument("--quick", action="store_true", help="families at a quarter of their size")
    args = parser.parse_args()
    sp = None
    if not args.no_sympy:
        try:
            import sympy as sp
        except ImportError:
            print("sympy not installed: its column is left out")

    print(f"{'family':28} {'n':>6} {'f+grad':>7} {'ratio':>6} {'sympy':>7}")
    for label, family, size in FAMILIES:
        if args.quick:
            size //= 4
            label = label.replace(str(size * 4), str(size))
        f, sympy_version = family(size)
        n, total, ratio = exprgrad_ratio(f)
        theirs = f"{sympy_ratio(sp, sympy_version):6.1f}x" if sp is not None else "-"
        print(f"{label:28} {n:6d} {total:7d} {ratio:5.2f}x {theirs:>7}", flush=True)

    f = big_expression()
    params = [v for v in graph.variables([f]) if not v.per_row]
    n_ops = sum(1 for node in graph.toposort([f]) if not node.is_leaf)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        grads = diff(f, params)
        best = min(best, time.perf_counter() - start)
    n, total = graph.count_nodes([f]), graph.count_nodes([f, *grads.values()])
    print(
        f"\ndiff of a {n_ops}-operator expression, {len(params)} parameters: "
        f"{best:.3f} s (best of {args.repeat}); n={n}, f+grad={total} ({total / n:.2f}x)"
    )


if __name__ == "__main__":
    main()
