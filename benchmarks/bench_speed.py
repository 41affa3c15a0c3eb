"""exprgrad beside numpy by hand, JAX and torch: every speed target in one run, one thread and all threads.

Every number is measured in the same run as the baselines it is compared with,
on the same float64 arrays; the tables give exprgrad / peer ratios and PASS or
MISS against each target:

1. gradient descent over 1,000,000 rows (linear regression, 2 parameters;
   logistic regression, 5 and 50 features): the time per iteration of
   ``exprgrad.fit(data, cost=..., method="gd", lr=..., max_iter=N, tol=0)`` with
   the data as a dict of columns, as a user passes it. Per iteration is read
   from fit's own ``progress`` callback (the clock between the first and the
   last iteration, so parsing, compiling and the checks after the loop do not
   count); (T(2N) - T(N)) / N of whole fits is printed beside it as a check.
   Peers: numpy by hand (the textbook loop, cost included), JAX ``fori_loop``
   (the whole descent in one compiled loop), JAX jit of one step in a Python
   loop, torch autograd; their compile time is excluded. Targets: the numpy
   backend at most 1.0x numpy by hand; the compiled backend at most 1.0x JAX
   fori_loop and at most 0.7x numpy by hand;
2. value + gradient over value alone (``Objective.value_grad`` / ``value``,
   what fit runs each iteration) at 100,000 and 1,000,000 rows, for exp-sum
   least squares with 10 and 100 parameters (``a1*exp(-b1*x) + ...``) and the
   16-unit tanh network of 50 features: target at most 1.5; and, at
   1,000,000 rows, value + gradient against numpy by hand, JAX jit and torch
   (target for the compiled backend: ahead of every peer);
3. memory bandwidth: value + gradient of ``mean((a*x + b - y)^2)`` over
   10,000,000 rows against reading the two columns once (``np.add.reduce`` of
   each, single-threaded numpy), target at most 1.5x;
4. compile time of the compiled backend for the 16-unit network (and for the
   100-parameter exp-sum cost), in a first process (empty cache folder) and a
   second one (the same folder: a cache hit), and the number of evaluations
   after which compiling pays for itself;
5. the whole ``exprgrad eval`` process of a small expression (bench_startup.py).

A part of exprgrad that is not there (the compiled backend, ``threads=``) shows
as "n/a (...)" and the rest still runs. Thread counts are fixed before numpy,
JAX or torch load (OPENBLAS/OMP/MKL/NUMBA_NUM_THREADS, XLA_FLAGS, torch), so
each half runs in its own process. JAX and torch are not exprgrad dependencies.

    python benchmarks/bench_speed.py [--quick] [--repeat 3] [--cases gd,grad,bandwidth,compile,startup]
    python benchmarks/bench_speed.py --threads 1     # one half only, printed at once

--quick: 100,000 rows (1,000,000 for the bandwidth check), fewer repeats: a smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ALL_THREADS = os.cpu_count() or 1
CASES = ("gd", "grad", "bandwidth", "compile", "startup")


from timing import pin_threads  # before numpy loads

THREADS = pin_threads(sys.argv[1:], default=None)
sys.path.insert(0, str(HERE))

import numpy as np


class NotBuilt(Exception):
    """A part of exprgrad this measurement needs is not there yet."""


# ---------------------------------------------------------------- exprgrad's options


def exprgrad_options(function, backend: str, threads: int) -> dict:
    """The keyword arguments that select ``backend`` and ``threads`` in ``function`` (NotBuilt when
    a backend other than numpy is asked for and ``function`` has no ``backend=``)."""
    import inspect

    accepted = inspect.signature(function).parameters
    options = {}
    if "backend" in accepted:
        options["backend"] = backend
    elif backend != "numpy":
        raise NotBuilt("not built")
    if "threads" in accepted:
        options["threads"] = threads
    return options


def threads_built() -> bool:
    import inspect

    import exprgrad

    return "threads" in inspect.signature(exprgrad.fit).parameters


def objective_of(columns, text: str, backend: str, threads: int):
    """The Objective ``exprgrad.fit`` would run, set to ``backend`` and ``threads`` as fit sets it,
    and a starting vector (0.1 + a little per parameter)."""
    import exprgrad
    from exprgrad.fitting import prepare

    problem = prepare(columns, cost=text)
    objective = problem.objective
    options = exprgrad_options(exprgrad.fit, backend, threads)
    for name, value in options.items():
        if not hasattr(objective, name):
            raise NotBuilt(f"fit takes {name}= but its Objective has no {name}")
        setattr(objective, name, value)
    start = 0.1 + 0.01 * np.arange(len(problem.params)) / max(1, len(problem.params))
    return objective, start


def alternating(function, x0):
    """A call of ``function`` at two points in turn, so the objective's memo of its last point never answers."""
    points = [x0, x0 * (1 + 1e-12) + 1e-12]
    turn = [0]

    def run():
        turn[0] ^= 1
        return function(points[turn[0]])

    return run


def why(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    if isinstance(error, NotBuilt):
        return lines[0] if lines else "not built"
    return f"{type(error).__name__}: {lines[0].strip() if lines else ''}"[:120]


# ---------------------------------------------------------------- the peers' losses


def linear_loss(lib, p, x, y):
    r = p["a"] * x + p["b"] - y
    return lib.mean(r * r)


def expsum_loss(lib, p, x, y):
    r = lib.exp(-x[:, None] * p["b"]) @ p["a"] - y
    return lib.mean(r * r)


def expsum_text(terms: int) -> str:
    return "mean((" + " + ".join(f"a{k}*exp(-b{k}*x)" for k in range(1, terms + 1)) + " - y)^2)"


def numpy_expsum_value(x, y, a, b):
    s = a[0] * np.exp(-b[0] * x)
    for ak, bk in zip(a[1:], b[1:], strict=True):
        s += ak * np.exp(-bk * x)
    r = s - y
    return np.dot(r, r) / len(y)


def numpy_expsum(x, y, a, b):
    """Value and gradient of mean((sum_k a_k exp(-b_k x) - y)^2), each exp kept for the gradient."""
    e = [np.exp(-bk * x) for bk in b]
    s = a[0] * e[0]
    for ak, ek in zip(a[1:], e[1:], strict=True):
        s += ak * ek
    r = s - y
    n = len(y)
    rx = r * x
    grad_a = np.array([2.0 * np.dot(r, ek) / n for ek in e])
    grad_b = np.array([-2.0 * ak * np.dot(rx, ek) / n for ak, ek in zip(a, e, strict=True)])
    return np.dot(r, r) / n, {"a": grad_a, "b": grad_b}


def numpy_network_value(x, y, W, b, v, c):
    r = np.tanh(x @ W.T + b) @ v + c - y
    return np.dot(r, r) / len(y)


def numpy_logistic_gd(x, y, lr, iterations):
    """Textbook numpy gradient descent for the logistic regression over a rows x features array."""
    import bench_families as fam

    w, c = np.zeros(x.shape[1]), 0.0
    for _ in range(iterations):
        _, grad = fam.numpy_logistic(x, y, w, c)
        w, c = w - lr * grad["w"], c - lr * grad["c"]
    return {"w": w, "c": c}


def jax_descents(loss, arrays, params, lr):
    """(fori_loop descent, jit-step loop): each run(n) takes n steps from ``params``; compiled here."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    device = [jnp.asarray(a) for a in arrays]
    start = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in params.items()}
    grad = jax.grad(lambda p, *a: loss(jnp, p, *a))

    def step(p, *a):
        return jax.tree_util.tree_map(lambda v, g: v - lr * g, p, grad(p, *a))

    looped = jax.jit(lambda p, n, *a: jax.lax.fori_loop(0, n, lambda _, q: step(q, *a), p))
    one = jax.jit(step)

    def fori(n):
        return jax.block_until_ready(looped(start, n, *device))

    def steps(n):
        p = start
        for _ in range(n):
            p = one(p, *device)
        return jax.block_until_ready(p)

    fori(1), steps(1)
    return fori, steps


def torch_descent(loss, arrays, params, lr):
    """run(n): n autograd gradient-descent steps from ``params``."""
    import torch

    torch.set_num_threads(THREADS)
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]

    def run(n):
        leaves = {
            k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for k, v in params.items()
        }
        for _ in range(n):
            loss(torch, leaves, *tensors).backward()
            with torch.no_grad():
                for leaf in leaves.values():
                    leaf -= lr * leaf.grad
                    leaf.grad = None
        return leaves

    run(1)
    return run


# ---------------------------------------------------------------- measuring


def timed(work) -> float:
    """Seconds of one call of ``work``."""
    began = time.perf_counter()
    work()
    return time.perf_counter() - began


def rounds(measures: dict, repeat: int) -> dict:
    """The least of ``repeat`` values of each measure (a call returning seconds), the measures
    taken in turn within each round, so a busy spell of the machine falls on all of them alike.
    A measure that raises gets its error in place of a number."""
    best: dict = {name: math.inf for name in measures}
    for _ in range(repeat):
        for name, measure in measures.items():
            if isinstance(best[name], Exception):
                continue
            try:
                best[name] = min(best[name], measure())
            except Exception as error:  # noqa: BLE001 - the cell says why; the others still run
                best[name] = error
    return best


def put_all(record, table, case, results: dict, notes: dict, checks: dict | None = None) -> None:
    """Record each measure's best (or why it failed), with its note and check value."""
    for who, value in results.items():
        if isinstance(value, Exception):
            record(table, case, who, None, why(value))
        else:
            record(table, case, who, value, notes.get(who, ""), check=(checks or {}).get(who))


# ---------------------------------------------------------------- 1. gradient descent


def exprgrad_descent(columns, text, lr, iterations, backend):
    """(measure, whole fit times): measure() fits N and 2N iterations and returns the seconds per
    iteration by fit's progress clock; whole["n"], whole["2n"] keep the least whole-fit times."""
    import exprgrad

    options = exprgrad_options(exprgrad.fit, backend, THREADS)
    stamps: list[float] = []
    whole = {"n": math.inf, "2n": math.inf, "result": None}

    def clock(step, limit, cost, norm):
        stamps.append(time.perf_counter())

    def fit(n):
        stamps.clear()
        began = time.perf_counter()
        result = exprgrad.fit(
            columns, cost=text, method="gd", lr=lr, max_iter=n, tol=0.0, progress=clock, **options
        )
        return time.perf_counter() - began, result

    def measure():
        elapsed, _ = fit(iterations)
        whole["n"] = min(whole["n"], elapsed)
        elapsed, whole["result"] = fit(2 * iterations)
        whole["2n"] = min(whole["2n"], elapsed)
        return (stamps[-1] - stamps[0]) / (len(stamps) - 1)

    fit(2)  # the first fit parses, differentiates and compiles what later ones find cached
    return measure, whole


# Iterations N per fit (2N in the longer one): about a second of descent at 1,000,000 rows,
# so the difference of whole fits stands out of the checks after the loop.
GD_ITERATIONS = {"linear": 100, 5: 40, 50: 10}


def bench_gd(rows, repeat, record):
    import bench_families as fam
    import bench_fit_throughput as throughput
    import families_data as data

    rng = np.random.default_rng(7)
    x = rng.standard_normal(rows)
    cases = [
        ("linear regression, 2 parameters", {"x": x, "y": 2.0 * x + 1.0 + 0.5 * rng.standard_normal(rows)})
    ]
    for features in (5, 50):
        cases.append((f"logistic regression, {features} features", data.logistic(rows, features, seed=0)[0]))
    for case, columns in cases:
        print(f"  gd: {case}, {rows:,} rows", file=sys.stderr, flush=True)
        if "linear" in case:
            text, lr, loss, params = "mean((a*x + b - y)^2)", 0.01, linear_loss, {"a": 0.0, "b": 0.0}
            arrays = [columns["x"], columns["y"]]
            hand = lambda n, c=columns: throughput.numpy_linear(c["x"], c["y"], 0.01, n)[0]
            iterations = GD_ITERATIONS["linear"]
        else:
            features = len(columns) - 1
            text, lr, loss = fam.LOGISTIC, 0.5, fam.logistic_loss
            params = {"w": np.zeros(features), "c": 0.0}
            arrays = [fam.row_major(columns, features), columns["y"]]
            hand = lambda n, a=arrays: numpy_logistic_gd(a[0], a[1], 0.5, n)
            iterations = GD_ITERATIONS[features]
        reference = hand(2 * iterations)
        steppers = {"numpy by hand": hand}
        failed = {}
        try:
            steppers["JAX fori_loop"], steppers["JAX jit step"] = jax_descents(loss, arrays, params, lr)
        except Exception as error:  # noqa: BLE001
            failed["JAX fori_loop"] = failed["JAX jit step"] = error
        try:
            steppers["torch"] = torch_descent(loss, arrays, params, lr)
        except Exception as error:  # noqa: BLE001
            failed["torch"] = error
        measures = {
            who: (lambda run=run, n=iterations: timed(lambda: run(n)) / n) for who, run in steppers.items()
        }
        wholes = {}
        for backend in ("numpy", "compiled"):
            try:
                measures[f"exprgrad {backend}"], wholes[f"exprgrad {backend}"] = exprgrad_descent(
                    columns, text, lr, iterations, backend
                )
            except Exception as error:  # noqa: BLE001
                failed[f"exprgrad {backend}"] = error
        results = rounds(measures, repeat) | failed
        notes, checks = {}, {}
        for who, whole in wholes.items():
            result = whole["result"]
            if result is None:
                continue
            note = "" if result.iterations == 2 * iterations else f"ran {result.iterations} iterations"
            if not agrees(result.params, reference):
                note = (note + "; " if note else "") + "parameters differ from numpy's"
            notes[who] = note
            checks[who] = (whole["2n"] - whole["n"]) / iterations
        put_all(record, "gd", case, results, notes, checks)


def agrees(fitted: dict, reference: dict, rtol=1e-8) -> bool:
    """Whether exprgrad's fitted members (w[1], c) match numpy's arrays by name."""
    for name, value in reference.items():
        value = np.atleast_1d(np.asarray(value, dtype=float))
        members = (
            [fitted.get(name)]
            if value.size == 1
            else [fitted.get(f"{name}[{j + 1}]") for j in range(value.size)]
        )
        if any(m is None for m in members):
            return False
        got = np.asarray(members, dtype=float)
        if not np.all(np.abs(got - value) <= rtol * max(1.0, float(np.max(np.abs(value))))):
            return False
    return True


# ---------------------------------------------------------------- 2. value + gradient


def expsum_case(rows, terms):
    """mean((a1*exp(-b1*x) + ... - y)^2) over x in [0, 3]: 2 * terms parameters."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 3.0, rows)
    a, b = np.linspace(1.0, 0.2, terms) / terms, np.linspace(0.1, 2.0, terms)
    y = sum(ak * np.exp(-bk * x) for ak, bk in zip(a, b, strict=True)) + 0.01 * rng.standard_normal(rows)
    params = {"a": a * 0.9, "b": b * 1.1}
    members = {f"a{k + 1}": params["a"][k] for k in range(terms)} | {
        f"b{k + 1}": params["b"][k] for k in range(terms)
    }
    return {
        "text": expsum_text(terms),
        "columns": {"x": x, "y": y},
        "members": members,
        "arrays": [x, y],
        "params": params,
        "loss": expsum_loss,
        "hand": lambda: numpy_expsum(x, y, params["a"], params["b"]),
        "hand value": lambda: numpy_expsum_value(x, y, params["a"], params["b"]),
    }


def network_case(rows, features=50, units=16):
    """The 16-unit tanh network of bench_families.py, its data and parameters."""
    import bench_families as fam
    import families_data as data

    columns, _ = data.network(rows, features, units, seed=0)
    x, y = fam.row_major(columns, features), columns["y"]
    rng = np.random.default_rng(2)
    params = {
        "W": rng.standard_normal((units, features)) / np.sqrt(features),
        "b": 0.1 * rng.standard_normal(units),
        "v": rng.standard_normal(units),
        "c": 0.3,
    }
    members = {f"W[{k + 1},{j + 1}]": params["W"][k, j] for k in range(units) for j in range(features)}
    members |= {f"b[{k + 1}]": params["b"][k] for k in range(units)}
    members |= {f"v[{k + 1}]": params["v"][k] for k in range(units)} | {"c": params["c"]}
    return {
        "text": fam.NETWORK.format(units=units),
        "columns": columns,
        "members": members,
        "arrays": [x, y],
        "params": params,
        "loss": fam.network_loss,
        "hand": lambda: fam.numpy_network(x, y, *params.values()),
        "hand value": lambda: numpy_network_value(x, y, *params.values()),
    }


def exprgrad_pair(case, backend):
    """(value run, value + gradient run, value at the case's parameters) through fit's Objective."""
    objective, _ = objective_of(case["columns"], case["text"], backend, THREADS)
    start = np.array([case["members"][name] for name in objective.params], dtype=float)
    value = alternating(objective.value, start)
    both = alternating(objective.value_grad, start)
    value(), both()
    return value, both, objective.value(start)


def close(value, reference, rtol) -> bool:
    return abs(value - reference) <= rtol * max(1.0, abs(reference))


def bench_grad(row_counts, repeat, record):
    import bench_families as fam

    for rows in row_counts:
        for family, make in (
            ("exp-sum least squares, 10 parameters", lambda r=rows: expsum_case(r, 5)),
            ("exp-sum least squares, 100 parameters", lambda r=rows: expsum_case(r, 50)),
            ("tanh network, 16 units, 50 features", lambda r=rows: network_case(r)),
        ):
            print(f"  value + gradient: {family}, {rows:,} rows", file=sys.stderr, flush=True)
            case = make()
            label = f"{family}, {rows:,} rows"
            reference = case["hand"]()
            runs = {"numpy by hand": case["hand"]}
            if case["hand value"] is not None:
                runs["numpy by hand: value"] = case["hand value"]
            failed, notes = {}, {}
            if rows == max(row_counts):
                for peer, maker in (("JAX jit", fam.jax_runner), ("torch", fam.torch_runner)):
                    try:
                        runs[peer] = maker(case["loss"], case["arrays"], case["params"])
                        notes[peer] = "" if close(runs[peer]()[0], reference[0], 1e-8) else "value differs"
                    except Exception as error:  # noqa: BLE001
                        failed[peer] = error
            for backend in ("numpy", "compiled"):
                who = f"exprgrad {backend}"
                try:
                    runs[f"{who}: value"], runs[who], at_start = exprgrad_pair(case, backend)
                    notes[who] = "" if close(at_start, reference[0], 1e-9) else "value differs"
                except Exception as error:  # noqa: BLE001
                    failed[who] = failed[f"{who}: value"] = error
            results = (
                rounds({who: (lambda run=run: timed(run)) for who, run in runs.items()}, repeat) | failed
            )
            for who, value in results.items():
                if who.endswith(": value"):
                    both = results[who.removesuffix(": value")]
                    check = None if isinstance(both, Exception) else both
                    put_all(
                        record,
                        "ratio",
                        label,
                        {who.removesuffix(": value"): value},
                        notes,
                        {who.removesuffix(": value"): check},
                    )
                else:
                    put_all(record, "vg", label, {who: value}, notes)
            del case, runs


# ---------------------------------------------------------------- 3. bandwidth


def bench_bandwidth(rows, repeat, record):
    print(f"  bandwidth: {rows:,} rows", file=sys.stderr, flush=True)
    rng = np.random.default_rng(5)
    x = rng.standard_normal(rows)
    y = 2.0 * x + 1.0 + 0.5 * rng.standard_normal(rows)
    label = f"mean((a*x + b - y)^2), {rows:,} rows"

    def hand():
        r = 1.5 * x + 0.5 - y
        return np.dot(r, r) / rows, 2 * np.dot(r, x) / rows, 2 * np.sum(r) / rows

    runs = {"read x and y once": lambda: (np.add.reduce(x), np.add.reduce(y)), "numpy by hand": hand}
    failed = {}
    for backend in ("numpy", "compiled"):
        try:
            objective, _ = objective_of({"x": x, "y": y}, "mean((a*x + b - y)^2)", backend, THREADS)
            runs[f"exprgrad {backend}"] = alternating(objective.value_grad, np.array([1.5, 0.5]))
            runs[f"exprgrad {backend}"]()
        except Exception as error:  # noqa: BLE001
            failed[f"exprgrad {backend}"] = error
    put_all(
        record, "bw", label, rounds({w: (lambda r=r: timed(r)) for w, r in runs.items()}, repeat) | failed, {}
    )


# ---------------------------------------------------------------- 4. compile time (parent)

COMPILE_PROBE = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
rows, which = int(sys.argv[2]), sys.argv[3]
import numpy as np
import bench_speed as bs
out = {}
try:
    case = bs.network_case(rows) if which == "network" else bs.expsum_case(rows, 50)
    for backend in ("compiled", "numpy"):
        objective, _ = bs.objective_of(case["columns"], case["text"], backend, 1)
        start = np.array([case["members"][name] for name in objective.params], dtype=float)
        objective.value_grad_nodes  # differentiate and simplify first: the same for both backends
        began = time.perf_counter()
        objective.value_grad(start)
        first = time.perf_counter() - began
        both = bs.alternating(objective.value_grad, start)
        steady = min(bs.timed(both) for _ in range(3))
        out[backend] = {"first": first, "steady": steady}
    out["kernels"] = sum(len(files) for _, _, files in os.walk(os.environ["EXPRGRAD_CACHE_DIR"]))
except Exception as error:
    out["error"] = bs.why(error)
print(json.dumps(out))
"""
COMPILE_TIMEOUT = 300  # seconds for one process
COMPILE_CASES = {
    "network": "16-unit tanh network, 50 features",
    "expsum": "exp-sum least squares, 100 parameters",
}


def bench_compile(rows):
    """Per case, two processes sharing a fresh EXPRGRAD_CACHE_DIR: the first compiles, the second
    finds the cache. Returns (case, which process, its measurements)."""
    results = []
    for case, label in COMPILE_CASES.items():
        with tempfile.TemporaryDirectory(prefix="exprgrad-cache-") as cache:
            env = dict(os.environ, EXPRGRAD_CACHE_DIR=cache)
            for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
                env[name] = "1"
            for which in ("first process (empty cache)", "second process (cache hit)"):
                print(f"  compile: {label}, {which}", file=sys.stderr, flush=True)
                try:
                    done = subprocess.run(
                        [sys.executable, "-c", COMPILE_PROBE, str(HERE), str(rows), case],
                        check=False,
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=COMPILE_TIMEOUT,
                    )
                    out = json.loads(done.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    out = {"error": f"stopped after {COMPILE_TIMEOUT} s"}
                except (ValueError, IndexError):
                    out = {"error": (done.stderr.strip().splitlines() or ["no output"])[-1][:120]}
                results.append((f"{label}, {rows:,} rows", which, out))
    return results


# ---------------------------------------------------------------- 5. start-up (parent)


def bench_startup() -> list[str]:
    """The lines of bench_startup.py (or, without it, bench_eval's start-up measurement)."""
    script = HERE / "bench_startup.py"
    if script.exists():
        done = subprocess.run([sys.executable, str(script)], check=False, capture_output=True, text=True)
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0:
            lines.append(
                f"(bench_startup.py exited {done.returncode}: {(done.stderr.strip().splitlines() or ['?'])[-1]})"
            )
        return lines
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import bench_eval; bench_eval.bench_startup()",
            str(HERE),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip().splitlines() or [(done.stderr.strip().splitlines() or ["?"])[-1]]


# ---------------------------------------------------------------- a half


def run_half(args) -> list[dict]:
    """Every in-process measurement at THREADS threads, as records."""
    records: list[dict] = []
    threads_ok = threads_built()

    def record(table, case, who, seconds, note="", check=None):
        if who.startswith("exprgrad") and THREADS != 1 and not threads_ok and seconds is not None:
            note = (note + "; " if note else "") + "one thread: threads= not built"
        records.append(
            {
                "table": table,
                "case": case,
                "who": who,
                "threads": THREADS,
                "seconds": seconds,
                "note": note,
                "check": check,
            }
        )
        if args.records is not None:  # written as it goes: a half stopped by --half-timeout keeps its part
            args.records.write_text(json.dumps(records))

    rows = 100_000 if args.quick else 1_000_000
    cases = set(args.cases.split(","))
    if "gd" in cases:
        bench_gd(rows, args.repeat, record)
    if "grad" in cases:
        bench_grad([100_000] if args.quick else [100_000, 1_000_000], args.repeat, record)
    if "bandwidth" in cases:
        bench_bandwidth(1_000_000 if args.quick else 10_000_000, args.repeat, record)
    return records


# ---------------------------------------------------------------- tables

PEERS_GD = ["numpy by hand", "JAX fori_loop", "JAX jit step", "torch", "exprgrad numpy", "exprgrad compiled"]
PEERS_VG = ["numpy by hand", "JAX jit", "torch", "exprgrad numpy", "exprgrad compiled"]


def ms(seconds) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "n/a"
    value = seconds * 1e3
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def lookup(records, table, case, threads, who):
    for r in records:
        if (r["table"], r["case"], r["threads"], r["who"]) == (table, case, threads, who):
            return r
    return None


def time_table(records, table, columns, title):
    """Times in ms, a row per (case, threads), a column per implementation; notes numbered below."""
    keys = list(dict.fromkeys((r["case"], r["threads"]) for r in records if r["table"] == table))
    if not keys:
        return
    print(title)
    width = max(len(case) for case, _ in keys) + 2
    widths = [max(12, len(c) + 2) for c in columns]
    print(f"  {'case':<{width}}{'threads':>7}" + "".join(f"{c:>{w}}" for c, w in zip(columns, widths)))
    notes: list[str] = []
    for case, threads in keys:
        cells = []
        for who in columns:
            r = lookup(records, table, case, threads, who)
            cell = "" if r is None else ms(r["seconds"])
            if r is not None and r["note"]:
                if r["note"] not in notes:
                    notes.append(r["note"])
                cell += f" [{notes.index(r['note']) + 1}]"
            cells.append(cell)
        print(f"  {case:<{width}}{threads:>7}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))
    for k, note in enumerate(notes, start=1):
        print(f"  [{k}] {note}")


def ratio_table(records, table, columns, title):
    """Ratios a row per (case, threads); columns: (heading, top, bottom, bound or None, strict).

    top / bottom of the two records' seconds ("top:check" takes top's check value);
    a cell with a bound says PASS or MISS, one without is for information."""
    keys = list(dict.fromkeys((r["case"], r["threads"]) for r in records if r["table"] == table))
    if not keys:
        return
    print(title)
    width = max(len(case) for case, _ in keys) + 2
    widths = [max(14, len(c[0]) + 2) for c in columns]
    print(f"  {'case':<{width}}{'threads':>7}" + "".join(f"{c[0]:>{w}}" for c, w in zip(columns, widths)))
    for case, threads in keys:
        cells = []
        for (_, top, bottom, target, strict), w in zip(columns, widths):
            bound = target
            field = "check" if top.endswith(":check") else "seconds"
            a = lookup(records, table, case, threads, top.removesuffix(":check"))
            b = lookup(records, table, case, threads, bottom)
            if a is None or b is None:
                cells.append("")
                continue
            if a[field] is None or b["seconds"] is None:
                cells.append("n/a")
                continue
            ratio = a[field] / b["seconds"]
            if callable(bound):
                bound = bound(case)
            if bound is None:
                cells.append(f"{ratio:.2f}")
            else:
                ok = ratio < bound if strict else ratio <= bound
                cells.append(f"{ratio:.2f} {'PASS' if ok else 'MISS'}")
        print(f"  {case:<{width}}{threads:>7}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths)))


def at_most_rows(case: str) -> float | None:
    """The bound of "ahead of every peer": 1 at 1,000,000 rows (the target's), none below."""
    return 1.0 if case.endswith("1,000,000 rows") else None


def print_tables(records, compile_results=None, startup=None, header=""):
    print(header)
    time_table(
        records,
        "gd",
        PEERS_GD,
        "\n1. gradient-descent iteration, ms per iteration (exprgrad.fit: by its progress clock)",
    )
    ratio_table(
        records,
        "gd",
        [
            ("numpy / hand <= 1", "exprgrad numpy", "numpy by hand", 1.0, False),
            ("compiled / JAX fori <= 1", "exprgrad compiled", "JAX fori_loop", 1.0, False),
            ("compiled / hand <= 0.7", "exprgrad compiled", "numpy by hand", 0.7, False),
            ("numpy: whole-fit check", "exprgrad numpy:check", "exprgrad numpy", None, False),
            ("compiled: whole-fit check", "exprgrad compiled:check", "exprgrad compiled", None, False),
        ],
        "   ratios, exprgrad / peer (whole-fit check: (T(2N) - T(N)) / N over the progress clock):",
    )
    time_table(
        records, "ratio", ["numpy by hand", "exprgrad numpy", "exprgrad compiled"], "\n2a. value alone, ms"
    )
    ratio_table(
        records,
        "ratio",
        [
            ("numpy backend <= 1.5", "exprgrad numpy:check", "exprgrad numpy", 1.5, False),
            ("compiled <= 1.5", "exprgrad compiled:check", "exprgrad compiled", 1.5, False),
            ("numpy by hand", "numpy by hand:check", "numpy by hand", None, False),
        ],
        "   value + gradient / value alone:",
    )
    time_table(records, "vg", PEERS_VG, "\n2b. value + gradient, ms")
    ratio_table(
        records,
        "vg",
        [
            ("compiled / hand < 1", "exprgrad compiled", "numpy by hand", at_most_rows, True),
            ("compiled / JAX < 1", "exprgrad compiled", "JAX jit", at_most_rows, True),
            ("compiled / torch < 1", "exprgrad compiled", "torch", at_most_rows, True),
            ("numpy / hand", "exprgrad numpy", "numpy by hand", None, False),
            ("numpy / JAX", "exprgrad numpy", "JAX jit", None, False),
            ("numpy / torch", "exprgrad numpy", "torch", None, False),
        ],
        "   ratios, exprgrad / peer (target: the compiled backend ahead of every peer at 1,000,000 rows; "
        "peers run at the largest row count only):",
    )
    time_table(
        records,
        "bw",
        ["read x and y once", "numpy by hand", "exprgrad numpy", "exprgrad compiled"],
        "\n3. memory bandwidth: value + gradient against reading the two columns once, ms",
    )
    ratio_table(
        records,
        "bw",
        [
            ("numpy backend / read <= 1.5", "exprgrad numpy", "read x and y once", 1.5, False),
            ("compiled / read <= 1.5", "exprgrad compiled", "read x and y once", 1.5, False),
            ("numpy by hand / read", "numpy by hand", "read x and y once", None, False),
        ],
        "   ratios:",
    )
    if compile_results is not None:
        print("\n4. compile time of the compiled backend (one thread), value + gradient")
        print_compile(compile_results)
    if startup is not None:
        print("\n5. exprgrad eval of a small expression, whole process")
        for line in startup:
            print(f"  {line}")


def print_compile(results):
    for label, which, out in results:
        if "error" in out or "compiled" not in out:
            print(f"  {label}, {which}: n/a ({out.get('error', 'no result')})")
            continue
        if not out.get("kernels"):
            print(f"  {label}, {which}: n/a (no kernel in the cache folder: the numpy backend ran)")
            continue
        compiled, numpy_ = out["compiled"], out["numpy"]
        cost = compiled["first"] - compiled["steady"]
        saving = numpy_["steady"] - compiled["steady"]
        pays = (
            f"pays for itself after {max(1, math.ceil(cost / saving)):,} evaluations"
            if saving > 0
            else "never pays (not faster)"
        )
        print(
            f"  {label}, {which}: first evaluation {compiled['first']:.2f} s, of which compiling or "
            f"loading {cost:.2f} s; then {ms(compiled['steady'])} ms an evaluation against the numpy "
            f"backend's {ms(numpy_['steady'])} ms: {pays}"
        )


# ---------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows, fewer repeats")
    parser.add_argument("--repeat", type=int, default=None, help="best of this many (default 3, quick 2)")
    parser.add_argument("--threads", type=int, default=None, help="run one half at this many threads")
    parser.add_argument("--cases", default=",".join(CASES), help=f"which of {','.join(CASES)}")
    parser.add_argument(
        "--half-timeout", type=float, default=None, help="stop a half after this many seconds"
    )
    parser.add_argument("--records", type=Path, help=argparse.SUPPRESS)  # a half writes its records here
    args = parser.parse_args(argv)
    args.repeat = args.repeat or (2 if args.quick else 3)
    cases = set(args.cases.split(","))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    header = (
        f"bench_speed: {'quick, ' if args.quick else ''}best of {args.repeat}; "
        f"{ALL_THREADS} cores, load average {load} at the start"
    )
    if THREADS is not None:
        records = run_half(args)
        if args.records is not None:
            args.records.write_text(json.dumps(records))
        else:
            print_tables(records, header=header)
        return
    records, stops = [], []
    if cases & {"gd", "grad", "bandwidth"}:
        for threads in dict.fromkeys((1, ALL_THREADS)):
            print(f"half at {threads} thread(s)", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "records.json"
                command = [sys.executable, __file__, "--threads", str(threads), "--records", str(path)]
                command += ["--repeat", str(args.repeat), "--cases", args.cases] + (
                    ["--quick"] if args.quick else []
                )
                try:
                    done = subprocess.run(command, check=False, timeout=args.half_timeout)
                    if done.returncode != 0:
                        stops.append(f"the half at {threads} thread(s) exited {done.returncode}")
                except subprocess.TimeoutExpired:
                    stops.append(
                        f"the half at {threads} thread(s) was stopped after {args.half_timeout:.0f} s"
                    )
                if path.exists():
                    records += json.loads(path.read_text())
    compile_results = bench_compile(100_000 if args.quick else 1_000_000) if "compile" in cases else None
    startup = bench_startup() if "startup" in cases else None
    print_tables(records, compile_results, startup, header)
    for stop in stops:
        print(f"({stop}: what it had not measured is missing above)")


if __name__ == "__main__":
    main()
