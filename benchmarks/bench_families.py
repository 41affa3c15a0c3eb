"""Index families at scale: value + gradient against numpy by hand, JAX jit and torch; size; fit.

Every baseline is measured in the same run, on the same float64 arrays:
a. logistic regression ``z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)``,
   50 features, 1,000,000 rows: value + gradient (targets: at most 1.2x numpy
   by hand, ahead of JAX jit and torch);
b. the 16-unit tanh network, 50 features, over 100,000 and 1,000,000 rows: the same;
c. graph nodes, diff time and printed derivative length of the three examples
   (logistic, network, softmax regression) for 10 and 1,000 features (target:
   identical), and the whole `exprgrad diff` process (target: under 0.3 s);
d. `exprgrad fit --method lbfgs` of (a) against scipy.optimize.minimize
   (L-BFGS-B, jac=True) fed by numpy by hand: total time (target: at most 1.5x)
   and the largest parameter difference (target: 1e-8), both measured against
   a Newton solve to machine precision; `exprgrad.fit` on the arrays in memory
   against scipy on the same arrays, and the `exprgrad fit` command against a
   Python process that reads the same CSV with np.loadtxt and runs the same
   minimize (both whole processes, both reading the file).

exprgrad's value + gradient is the compiled schedule of the cost and its
reverse-mode gradient, one pass over the rows, as benchmarks/bench_gradient.py
measures it; "exprgrad, unrolled" is the same model written without families
(w_1*x1 + ... + w_50*x50: the only way before them), for comparison. A row
whose exprgrad part cannot run says why ("not available") and the baselines
still print; exprgrad's values are checked against numpy's.
JAX, torch and scipy are not exprgrad dependencies: a missing one is skipped.

    python benchmarks/bench_families.py [--quick] [--repeat 5] [--threads 1] [--cases a,b,c,d]

--quick: a tenth of the rows. --threads: for every library alike (default 1: on a shared
machine, multi-threaded BLAS measures the load, not the code). Big CSV files are cached
under /tmp (see families_data.py).
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

from timing import pin_threads  # before numpy loads

THREADS = pin_threads(sys.argv[1:], default=1)
UNROLLED_ROWS = 100_000  # the scalar form of the network (800 terms) runs up to this many rows

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import families_data as data
from timing import best_time

LOGISTIC = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"
NETWORK = "k in 1:{units}; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)"
SOFTMAX = "z[k] = sum[j](W[k,j]*x[j]) + b[k]; mean(logsumexp[k](z[k]) - sum[k](Y[k]*z[k]))"


def why(error: BaseException) -> str:
    """One line saying why something could not run."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0].strip() if lines else ''}"[:160]


def expit(z):
    from scipy.special import expit as scipy_expit

    return scipy_expit(z)


# ---------------------------------------------------------------- numpy by hand


def numpy_logistic(x, y, w, c):
    """Value and gradient (w, c) of mean(softplus(z) - y*z), z = x @ w + c."""
    z = x @ w + c
    value = np.mean(np.logaddexp(0.0, z) - y * z)
    r = expit(z) - y
    return value, {"w": x.T @ r / len(y), "c": np.mean(r)}


def numpy_network(x, y, W, b, v, c):
    """Value and gradient of mean((tanh(x @ W.T + b) @ v + c - y)^2), by backpropagation."""
    h = np.tanh(x @ W.T + b)
    r = h @ v + c - y
    value = np.mean(r * r)
    dr = (2.0 / len(y)) * r
    dh = np.outer(dr, v)
    dh *= 1.0 - h * h
    return value, {"W": dh.T @ x, "b": dh.sum(axis=0), "v": h.T @ dr, "c": dr.sum()}


# ---------------------------------------------------------------- peers


def jax_runner(loss, arrays, params):
    """jax.jit(jax.value_and_grad(loss)) on device copies, compiled before timing."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    device = [jnp.asarray(a) for a in arrays]
    start = {k: jnp.asarray(v) for k, v in params.items()}
    step = jax.jit(jax.value_and_grad(lambda p, *a: loss(jnp, p, *a)))

    def run():
        value, grad = step(start, *device)
        jax.block_until_ready(grad)
        return float(value), {k: np.asarray(g) for k, g in grad.items()}

    run()
    return run


def torch_runner(loss, arrays, params):
    """Autograd backward on float64 tensors that share the numpy arrays."""
    import torch

    torch.set_num_threads(THREADS)
    tensors = [torch.from_numpy(a) for a in arrays]
    leaves = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()}

    def run():
        for leaf in leaves.values():
            leaf.grad = None
        value = loss(torch, leaves, *tensors)
        value.backward()
        return float(value.detach()), {k: leaf.grad.numpy() for k, leaf in leaves.items()}

    return run


def logistic_loss(lib, p, x, y):
    z = x @ p["w"] + p["c"]
    return lib.mean(lib.logaddexp(z * 0, z) - y * z)


def network_loss(lib, p, x, y):
    h = lib.tanh(x @ p["W"].T + p["b"])
    r = h @ p["v"] + p["c"] - y
    return lib.mean(r * r)


# ---------------------------------------------------------------- exprgrad


def exprgrad_runner(text, columns, params, backend="numpy"):
    """The compiled schedule of the cost and its full reverse-mode gradient, as bench_gradient.py runs it.

    Family values are arrays in the axes the family is written with (W[k,j]: k by j).
    """
    from exprgrad.backends.evaluate import compile_schedule
    from exprgrad.function import parse
    from exprgrad.passes.diff import diff
    from exprgrad.selection import select

    f = parse(text, columns=list(columns))
    wrt, _ = select(f.output, [])
    grads = diff(f.output, wrt)
    names = [node.name for node in wrt]
    schedule = compile_schedule([f.output, *grads.values()], backend=backend)
    # A data family is given as the list of its columns (x1..x50), as the CSV reader returns them.
    data = dict(columns)
    for name, family in getattr(f, "families", {}).items():
        if getattr(family, "columns", None):
            data[name] = [columns[column] for column in family.columns]

    def run():
        value, *partials = schedule.run(params, data, threads=THREADS)
        return float(value), dict(zip(names, partials, strict=True))

    run()
    return run


def unrolled_logistic(features: int) -> str:
    """Today's scalar form of the logistic regression: one term per feature (w_1*x1 + ...)."""
    terms = " + ".join(f"w_{j}*x{j}" for j in range(1, features + 1))
    return f"z = c + {terms}; mean(softplus(z) - y*z)"


def unrolled_network(features: int, units: int) -> str:
    """Today's scalar form of the tanh network: one definition per unit, one term per weight."""
    hidden = [
        f"h{k} = tanh({' + '.join(f'W_{k}_{j}*x{j}' for j in range(1, features + 1))} + b_{k})"
        for k in range(1, units + 1)
    ]
    output = " + ".join(f"v_{k}*h{k}" for k in range(1, units + 1))
    return "; ".join([*hidden, f"mean(({output} + c - y)^2)"])


def unrolled_runner(text, columns, params):
    """exprgrad_runner on the scalar form: family members are scalars w_1, W_2_3; results regrouped."""
    members = {}
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        for label in np.ndindex(value.shape):
            members["_".join([name, *(str(i + 1) for i in label)])] = float(value[label])
    run = exprgrad_runner(text, columns, members)

    def regrouped():
        value, grads = run()
        out = {}
        for name, shape in ((k, np.shape(v)) for k, v in params.items()):
            array = np.zeros(shape)
            for label in np.ndindex(shape):
                array[label] = grads["_".join([name, *(str(i + 1) for i in label)])]
            out[name] = array
        return value, out

    return regrouped


def differs(result, reference, rtol=1e-9) -> str:
    """'' when ``result`` (value, gradient by name) matches numpy's, else what differs."""
    value, grad = result
    ref_value, ref_grad = reference
    scale = max(1.0, abs(ref_value))
    if not abs(value - ref_value) <= rtol * scale:
        return f"value {value!r} != {ref_value!r}"
    for name, ref in ref_grad.items():
        got = np.asarray(grad.get(name, np.nan), dtype=float)
        ref = np.asarray(ref, dtype=float)
        if got.shape != ref.shape and got.T.shape == ref.shape:
            got = got.T
        bound = rtol * max(1.0, float(np.max(np.abs(ref))))
        if got.shape != ref.shape or not np.all(np.abs(got - ref) <= bound):
            return f"gradient of {name} differs"
    return ""


def compare(label, hand, peers, repeat):
    """Time numpy by hand and each (name, maker) peer; print times and exprgrad's ratios."""
    print(label)
    reference = hand()
    hand_time = best_time(hand, repeat)
    print(f"  {'numpy by hand':<19} {hand_time * 1e3:9.1f} ms")
    times = {}
    for name, make in peers:
        try:
            run = make()
            result = run()
            elapsed = best_time(run, repeat)
        except Exception as error:  # noqa: BLE001 - the row says why; the others still run
            kind = {"exprgrad": "not available yet", "exprgrad, unrolled": "failed"}.get(name, "skipped")
            kind = "not available (pip install 'exprgrad[fast]')" if name == "exprgrad compiled" else kind
            print(f"  {name:<19} {kind} ({why(error)})")
            continue
        wrong = differs(result, reference, 1e-9 if name.startswith("exprgrad") else 1e-7)
        times[name] = elapsed
        note = f"  ({wrong}!)" if wrong else ""
        print(f"  {name:<19} {elapsed * 1e3:9.1f} ms   {elapsed / hand_time:5.2f}x numpy by hand{note}")
    for ours_name in ("exprgrad", "exprgrad compiled"):
        if ours_name in times:
            ours = times[ours_name]
            parts = [f"{ours_name} / numpy by hand {ours / hand_time:.2f} (target <= 1.2)"]
            parts += [f"/ {peer} {ours / times[peer]:.2f}" for peer in ("JAX jit", "torch") if peer in times]
            print("  " + ", ".join(parts) + " (target < 1)")


# ---------------------------------------------------------------- a, b


def row_major(columns, features):
    """The features as one C-ordered rows x features array: the layout numpy, JAX and torch are given.

    exprgrad is given the columns themselves (contiguous, as its CSV reader returns them).
    """
    return np.column_stack([columns[f"x{j}"] for j in range(1, features + 1)])


def bench_logistic(rows, repeat, features=50):
    columns, truth = data.logistic(rows, features, seed=0)
    x, y = row_major(columns, features), columns["y"]
    rng = np.random.default_rng(1)
    params = {"w": 0.1 * rng.standard_normal(features), "c": 0.2}
    peers = [
        ("JAX jit", lambda: jax_runner(logistic_loss, [x, y], params)),
        ("torch", lambda: torch_runner(logistic_loss, [x, y], params)),
        ("exprgrad", lambda: exprgrad_runner(LOGISTIC, columns, params)),
        ("exprgrad compiled", lambda: exprgrad_runner(LOGISTIC, columns, params, "compiled")),
        ("exprgrad, unrolled", lambda: unrolled_runner(unrolled_logistic(features), columns, params)),
    ]
    label = f"a. logistic regression, {features} features, {rows:,} rows: value + gradient (best of {repeat})"
    compare(label, lambda: numpy_logistic(x, y, params["w"], params["c"]), peers, repeat)
    return x, y, columns, truth


def bench_network(rows, repeat, features=50, units=16):
    columns, _ = data.network(rows, features, units, seed=0)
    x, y = row_major(columns, features), columns["y"]
    rng = np.random.default_rng(2)
    params = {
        "W": rng.standard_normal((units, features)) / np.sqrt(features),
        "b": 0.1 * rng.standard_normal(units),
        "v": rng.standard_normal(units),
        "c": 0.3,
    }
    peers = [
        ("JAX jit", lambda: jax_runner(network_loss, [x, y], params)),
        ("torch", lambda: torch_runner(network_loss, [x, y], params)),
        ("exprgrad", lambda: exprgrad_runner(NETWORK.format(units=units), columns, params)),
        (
            "exprgrad compiled",
            lambda: exprgrad_runner(NETWORK.format(units=units), columns, params, "compiled"),
        ),
    ]
    if rows <= UNROLLED_ROWS:
        text = unrolled_network(features, units)
        peers.append(("exprgrad, unrolled", lambda: unrolled_runner(text, columns, params)))
    label = f"b. tanh network, {units} units, {features} features, {rows:,} rows: value + gradient (best of {repeat})"
    hand = lambda: numpy_network(x, y, params["W"], params["b"], params["v"], params["c"])
    compare(label, hand, peers, repeat)


# ---------------------------------------------------------------- c


def programs(features):
    """(name, program, small data columns) of the three examples with ``features`` features."""
    rows = 5
    return [
        ("logistic", LOGISTIC, data.logistic(rows, features, seed=3)[0]),
        ("network", NETWORK.format(units=16), data.network(rows, features, 16, seed=3)[0]),
        ("softmax", SOFTMAX, data.softmax(rows, features, 10, seed=3)[0]),
    ]


def unrolled_softmax(features: int, classes: int) -> str:
    """Today's scalar form of softmax regression: one definition per class, one term per weight."""
    scores = [
        f"z{k} = {' + '.join(f'W_{k}_{j}*x{j}' for j in range(1, features + 1))} + b_{k}"
        for k in range(1, classes + 1)
    ]
    every = ", ".join(f"z{k}" for k in range(1, classes + 1))
    chosen = " + ".join(f"Y{k}*z{k}" for k in range(1, classes + 1))
    return "; ".join([*scores, f"mean(logsumexp({every}) - ({chosen}))"])


def unrolled(name: str, features: int) -> str:
    if name == "logistic":
        return unrolled_logistic(features)
    return unrolled_network(features, 16) if name == "network" else unrolled_softmax(features, 10)


def size_of(text, columns, repeat):
    """(graph nodes of cost + gradient, in-process diff seconds, printed gradient chars) over ``columns``.

    The printed length is that of the gradient's text in let-form (shared parts named
    once, one line each, as `exprgrad diff` prints it).
    """
    from exprgrad import graph
    from exprgrad.backends.printing import to_text_many
    from exprgrad.function import parse
    from exprgrad.passes.diff import diff
    from exprgrad.passes.simplify import simplify_many
    from exprgrad.selection import select

    f = parse(text, columns=list(columns))
    wrt, _ = select(f.output, [])

    def differentiate():
        return diff(f.output, wrt)

    grads = differentiate()
    names = [node.name for node in wrt]
    partials = dict(zip(names, simplify_many(list(grads.values())), strict=True))
    lets, results = to_text_many(partials, names=f.definitions, written=f.written)
    printed = sum(len(name) + len(text) + 4 for name, text in [*lets, *results.items()])
    return graph.count_nodes([f.output, *grads.values()]), best_time(differentiate, repeat), printed


def run_cli(*arguments):
    return subprocess.run(
        [sys.executable, "-m", "exprgrad", *arguments], capture_output=True, text=True, check=False
    )


def bench_sizes(repeat):
    print("c. size of the three examples: 10 and 1,000 features (target: identical; diff process < 0.3 s)")
    python = best_time(lambda: subprocess.run([sys.executable, "-c", "import numpy"], check=False), 3)
    floor = best_time(lambda: run_cli("--help"), 3)
    print(f"  (floors, whole process: python + import numpy {python:.2f} s, `exprgrad --help` {floor:.2f} s)")
    print("  nodes, diff time and printed length: Python API, with the data's columns x1..xF (Y1..Y10)")
    print("  (the unrolled forms, today's only way, at 10 and 100 features: at 1,000 they take minutes)")
    sizes = {}
    for features in (10, 100, 1000):
        for name, text, columns in programs(features):
            forms = [("", text)] if features != 100 else []
            forms += [(", unrolled", unrolled(name, features))] if features <= 100 else []
            for form, program in forms:
                line = f"  {name + form:<19} {features:>5} features:"
                try:
                    nodes, seconds, printed = size_of(program, columns, 1 if form else repeat)
                    line += f" {nodes:>6,} nodes, diff {seconds * 1e3:8.2f} ms, printed {printed:>9,} chars"
                    sizes[name + form, features] = (nodes, printed)
                except Exception as error:  # noqa: BLE001 - the line says why
                    line += f" exprgrad: not available yet ({why(error)})"
                print(line)
    for name in ("logistic", "network", "softmax"):
        small, big = sizes.get((name, 10)), sizes.get((name, 1000))
        if small and big:
            print(f"  {name}: nodes and printed length {'identical' if small == big else 'DIFFERENT'}")
    print("  `exprgrad diff PROGRAM` whole process (no data: the text alone, as the examples are written):")
    for name, text, _ in programs(10):
        done = run_cli("diff", text)
        if done.returncode == 0:
            elapsed = best_time(lambda t=text: run_cli("diff", t), 3)
            print(f"  {name:<19} {elapsed:.2f} s (target < 0.3 s), printed {len(done.stdout):,} chars")
        else:
            error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[0]
            print(f"  {name:<19} not available yet ({error[:120]})")


# ---------------------------------------------------------------- d


def newton_logistic(x, y, iterations=30):
    """The minimum of the logistic cost to machine precision (Newton's method), as [w..., c]."""
    n, m = x.shape
    p = np.zeros(m + 1)
    for _ in range(iterations):
        _, g = numpy_logistic(x, y, p[:m], p[m])
        s = expit(x @ p[:m] + p[m])
        d = s * (1.0 - s) / n
        hessian = np.empty((m + 1, m + 1))
        xd = x * d[:, None]
        hessian[:m, :m] = x.T @ xd
        hessian[:m, m] = hessian[m, :m] = xd.sum(axis=0)
        hessian[m, m] = d.sum()
        step = np.linalg.solve(hessian, np.append(g["w"], g["c"]))
        p -= step
        if np.max(np.abs(step)) < 1e-14:
            break
    return p


# numpy by hand from the CSV file: np.loadtxt, then scipy's L-BFGS-B with the value and
# gradient of bench_fit; prints the parameters [w..., c] as JSON.
HAND_FIT = """
import json, sys
import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
table = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1)
x, y = table[:, :-1], table[:, -1]
n, m = x.shape

def value_grad(p):
    z = x @ p[:m] + p[m]
    r = expit(z) - y
    return np.mean(np.logaddexp(0.0, z) - y * z), np.append(x.T @ r / n, np.mean(r))

result = minimize(value_grad, np.zeros(m + 1), jac=True, method="L-BFGS-B", options=json.loads(sys.argv[2]))
print(json.dumps(result.x.tolist()))
"""


def bench_fit(x, y, columns, repeat):
    from scipy.optimize import minimize

    n, m = x.shape
    names = [f"w[{j}]" for j in range(1, m + 1)] + ["c"]
    print(f"d. fit of (a) by L-BFGS-B, {m} features, {n:,} rows, from 0")
    best = newton_logistic(x, y)

    def value_grad(p):
        value, g = numpy_logistic(x, y, p[:m], p[m])
        return value, np.append(g["w"], g["c"])

    options = {"maxcor": 20, "ftol": 1e-15, "gtol": 1e-10, "maxiter": 10_000}
    result = None

    def scipy_fit():
        nonlocal result
        result = minimize(value_grad, np.zeros(m + 1), jac=True, method="L-BFGS-B", options=options)

    theirs = best_time(scipy_fit, repeat)
    off = np.max(np.abs(result.x - best))
    print(
        f"  {'scipy + numpy':<22} {theirs:7.2f} s, {result.nit} iterations, "
        f"max |p - p*| {off:.1e}   (options {options})"
    )

    def report(label, seconds, params, baseline=None):
        got = np.array([params[name] for name in names])
        print(
            f"  {label:<22} {seconds:7.2f} s, {seconds / (baseline or theirs):5.2f}x scipy (target <= 1.5), "
            f"max |p - p*| {np.max(np.abs(got - best)):.1e}, max |p - scipy| {np.max(np.abs(got - result.x)):.1e}"
            " (target 1e-8)"
        )

    try:
        import exprgrad
    except Exception as error:  # noqa: BLE001 - the line says why
        print(f"  {'exprgrad':<22} not available ({why(error)})")
        return
    # Today's form: one scalar member w[j] per feature, as many terms as features.
    scalar_form = (
        "z = c + " + " + ".join(f"w[{j}]*x{j}" for j in range(1, m + 1)) + "; mean(softplus(z) - y*z)"
    )
    try:
        began = time.perf_counter()
        unrolled_fit = exprgrad.fit(columns, cost=scalar_form, method="lbfgs")
        report("exprgrad.fit, unrolled", time.perf_counter() - began, unrolled_fit.params)
    except Exception as error:  # noqa: BLE001 - the line says why
        print(f"  exprgrad.fit, unrolled failed ({why(error)})")
    try:
        exprgrad.parse(LOGISTIC, columns=list(columns))
    except Exception as error:  # noqa: BLE001 - the line says why
        print(f"  {'exprgrad.fit':<22} not available yet ({why(error)})")
        print(f"  {'exprgrad fit (CLI)':<22} not available yet (the same)")
        return
    fitted = None

    threads = {"threads": THREADS} if "threads" in inspect.signature(exprgrad.fit).parameters else {}

    def python_fit():
        nonlocal fitted
        fitted = exprgrad.fit(columns, cost=LOGISTIC, method="lbfgs", **threads)

    try:
        report("exprgrad.fit", best_time(python_fit, repeat), fitted.params)
    except Exception as error:  # noqa: BLE001 - the line says why
        print(f"  {'exprgrad.fit':<22} failed ({why(error)})")
    path = data.cached_csv("logistic", columns, rows=n, features=m, seed=0, naming="x1")
    # From the CSV file, whole processes both: Python's start, reading the file, the fit.
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", HAND_FIT, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        check=False,
    )
    from_file = time.perf_counter() - began
    if done.returncode != 0:
        print(f"  scipy + numpy from the CSV failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
        return
    hand = json.loads(done.stdout)
    off = np.max(np.abs(np.array(hand) - best))
    print(
        f"  {'scipy, CSV (process)':<22} {from_file:7.2f} s, np.loadtxt then the same minimize, max |p - p*| {off:.1e}"
    )
    command = ["fit", str(path), "--cost", LOGISTIC, "--method", "lbfgs", "--format", "json", "--quiet"]
    if "--threads" in run_cli("fit", "--help").stdout:
        command += ["--threads", str(THREADS)]  # as many threads as numpy's BLAS has
    began = time.perf_counter()
    done = run_cli(*command)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        print(f"  exprgrad fit (CLI) failed: {(done.stderr.strip().splitlines() or ['?'])[0]}")
        return
    try:
        report("exprgrad fit (CLI)", elapsed, json.loads(done.stdout)["params"], baseline=from_file)
    except (ValueError, KeyError) as error:
        print(f"  exprgrad fit (CLI): unexpected output ({why(error)})")
    print("  (the CLI against scipy's process that reads the same CSV: both start Python and read the file)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="threads of every library (read first)")
    parser.add_argument("--cases", default="a,b,c,d", help="which of a,b,c,d to run")
    args = parser.parse_args(argv)
    cases = set(args.cases.split(","))
    scale = 10 if args.quick else 1
    print(f"threads: {THREADS} for numpy's BLAS, XLA and torch alike (--threads N to change)")
    if cases & {"a", "d"}:
        x, y, columns, _ = bench_logistic(1_000_000 // scale, args.repeat) if "a" in cases else (None,) * 4
        if "d" in cases:
            if x is None:
                columns, _ = data.logistic(1_000_000 // scale, 50, seed=0)
                x, y = row_major(columns, 50), columns["y"]
            bench_fit(x, y, columns, max(1, args.repeat // 2))
        del x, y, columns
    if "b" in cases:
        for rows in (100_000, 1_000_000):
            bench_network(rows // scale, args.repeat)
    if "c" in cases:
        bench_sizes(args.repeat)


if __name__ == "__main__":
    main()
