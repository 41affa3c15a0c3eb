"""Seeded data for the index-family examples: logistic regression, a tanh network, softmax regression.

Each generator returns (columns, truth): columns by name in CSV order (features
x1..xF, then y or Y1..YK), truth the parameter values the data was drawn from,
by member name as a fit reports them (w[1], W[2,3], c). Feature values are
multiples of 1e-4 (k / 10000 is the double a CSV reader gets back from "%.4f"),
so arrays in memory and the CSV written from them hold the same numbers.

    python benchmarks/families_data.py logistic --rows 200 --features 5 -o samples/families/logistic.csv
    python benchmarks/families_data.py network --rows 1000000 --features 50 --units 16   # cached under /tmp
    python benchmarks/families_data.py samples   # rewrites samples/families/*.csv and *.truth.json

Big files are written once under CACHE (never in the repository) and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("EXPRGRAD_BENCH_CACHE", "/tmp/exprgrad-bench"))
NAMINGS = {"x1": "{}{}", "x_1": "{}_{}", "x[1]": "{}[{}]"}


def member(family: str, label: int, naming: str = "x1") -> str:
    """The column name of one member of a data family: x1, x_1 or x[1]."""
    return NAMINGS[naming].format(family, label)


def _features(rng, rows: int, features: int) -> np.ndarray:
    # Fortran order: every column is contiguous, as a CSV reader returns them.
    x = np.asfortranarray(rng.standard_normal((rows, features)))
    return np.rint(x * 1e4) / 1e4


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logistic(rows: int, features: int = 50, seed: int = 0, naming: str = "x1", w=None, c=-0.25):
    """y ~ Bernoulli(sigmoid(c + sum_j w[j]*x[j])), x[j] ~ N(0, 1); w drawn unless given."""
    rng = np.random.default_rng(seed)
    if w is None:
        w = np.round(rng.normal(0.0, 1.0 / np.sqrt(features), features), 3)
    w = np.asarray(w, dtype=float)
    features = len(w)
    x = _features(rng, rows, features)
    y = (rng.uniform(size=rows) < _sigmoid(x @ w + c)).astype(np.float64)
    columns = {member("x", j + 1, naming): x[:, j] for j in range(features)}
    columns["y"] = y
    truth = {f"w[{j + 1}]": float(w[j]) for j in range(features)} | {"c": c}
    return columns, truth


def network(
    rows: int, features: int = 50, units: int = 16, seed: int = 0, naming: str = "x1", noise=0.1, truth=None
):
    """y = sum_k v[k]*tanh(sum_j W[k,j]*x[j] + b[k]) + c + noise*N(0, 1); truth (W, b, v, c) drawn unless given."""
    rng = np.random.default_rng(seed)
    if truth is None:
        w = np.round(rng.normal(0.0, 1.0 / np.sqrt(features), (units, features)), 3)
        b = np.round(rng.normal(0.0, 0.5, units), 3)
        v = np.round(rng.normal(0.0, 1.0, units), 3)
        c = 0.5
    else:
        w, b, v, c = (np.asarray(t, dtype=float) for t in truth)
        (units, features), c = w.shape, float(c)
    x = _features(rng, rows, features)
    y = np.tanh(x @ w.T + b) @ v + c + noise * rng.standard_normal(rows)
    columns = {member("x", j + 1, naming): x[:, j] for j in range(features)}
    columns["y"] = np.rint(y * 1e4) / 1e4
    truth = {f"W[{k + 1},{j + 1}]": float(w[k, j]) for k in range(units) for j in range(features)}
    truth |= {f"b[{k + 1}]": float(b[k]) for k in range(units)}
    truth |= {f"v[{k + 1}]": float(v[k]) for k in range(units)}
    truth["c"] = c
    return columns, truth


def softmax(rows: int, features: int = 50, classes: int = 10, seed: int = 0, naming: str = "x1", truth=None):
    """Y one-hot over classes drawn from softmax_k(sum_j W[k,j]*x[j] + b[k]).

    Class 1 is the reference (W[1,j] = b[1] = 0): the cost does not change when
    the same vector is added to every W[k,:] (and a number to every b[k]), so a
    fit recovers the differences W[k,j] - W[1,j], b[k] - b[1].
    """
    rng = np.random.default_rng(seed)
    if truth is None:
        w = np.round(rng.normal(0.0, 2.0 / np.sqrt(features), (classes, features)), 3)
        b = np.round(rng.normal(0.0, 0.5, classes), 3)
    else:
        w, b = (np.array(t, dtype=float) for t in truth)
        classes, features = w.shape
    w[0], b[0] = 0.0, 0.0
    x = _features(rng, rows, features)
    z = x @ w.T + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    label = (p.cumsum(axis=1) < rng.uniform(size=(rows, 1))).sum(axis=1)
    label = np.minimum(label, classes - 1)
    columns = {member("x", j + 1, naming): x[:, j] for j in range(features)}
    for k in range(classes):
        columns[member("Y", k + 1, naming)] = (label == k).astype(np.float64)
    truth = {f"W[{k + 1},{j + 1}]": float(w[k, j]) for k in range(classes) for j in range(features)}
    truth |= {f"b[{k + 1}]": float(b[k]) for k in range(classes)}
    return columns, truth


GENERATORS = {"logistic": logistic, "network": network, "softmax": softmax}

# The small files of samples/families: readable sizes, round true values.
SAMPLE_ROWS = 200
SAMPLES = {
    "logistic": lambda: logistic(SAMPLE_ROWS, seed=10, w=[1.5, -2.0, 0.5, 1.0, -1.0], c=-0.5),
    "network": lambda: network(
        SAMPLE_ROWS,
        seed=11,
        noise=0.05,
        truth=(
            [[1.0, -1.0, 0.5, 0.0], [0.0, 1.5, -0.5, 1.0], [-1.0, 0.0, 1.0, 1.5]],
            [0.5, -0.5, 0.0],
            [2.0, -1.5, 1.0],
            0.5,
        ),
    ),
    "softmax": lambda: softmax(
        SAMPLE_ROWS,
        seed=12,
        truth=([[0, 0, 0, 0], [2.0, -1.0, 0.0, 1.0], [-1.0, 2.0, 1.5, 0.0]], [0, 0.5, -0.5]),
    ),
}


def _costs(columns: dict[str, np.ndarray], truth: dict[str, float]):
    """numpy versions of the three examples' costs over ``columns``, as functions of a flat vector in truth's order."""
    from scipy.special import logsumexp

    x = np.column_stack([columns[n] for n in columns if n.startswith("x")])
    m = x.shape[1]
    if "y" in columns and "w[1]" in truth:
        y = columns["y"]

        def cost(p):
            z = x @ p[:m] + p[m]
            return np.mean(np.logaddexp(0.0, z) - y * z)

    elif "y" in columns:
        y, units = columns["y"], sum(name.startswith("b[") for name in truth)

        def cost(p):
            w, rest = p[: units * m].reshape(units, m), p[units * m :]
            return np.mean((np.tanh(x @ w.T + rest[:units]) @ rest[units : 2 * units] + rest[-1] - y) ** 2)

    else:
        big_y = np.column_stack([columns[n] for n in columns if n.startswith("Y")])
        classes = big_y.shape[1]

        def cost(p):
            z = x @ p[: classes * m].reshape(classes, m).T + p[classes * m :]
            return np.mean(logsumexp(z, axis=1) - (big_y * z).sum(axis=1))

    return cost


def minimum(columns: dict[str, np.ndarray], truth: dict[str, float]) -> dict[str, float]:
    """The minimum of the example's cost over ``columns`` (BFGS from the truth), rounded to 1e-6.

    Softmax regression's minimum is a valley (add one vector to every W[k,:]): the point
    reported has W[1,j] = b[1] = 0, like the truth.
    """
    from scipy.optimize import minimize

    cost, names = _costs(columns, truth), list(truth)
    start = np.array(list(truth.values()))
    found = minimize(cost, start, method="BFGS", options={"gtol": 1e-11, "maxiter": 10_000}).x
    if "w[1]" not in truth and "v[1]" not in truth:  # softmax: subtract class 1
        classes = sum(name.startswith("b[") for name in names)
        m = (len(names) - classes) // classes
        w, b = found[: classes * m].reshape(classes, m), found[classes * m :]
        found = np.concatenate([(w - w[0]).ravel(), b - b[0]])
    return {name: round(float(value), 6) + 0.0 for name, value in zip(names, found, strict=True)}


def write_samples(folder: Path) -> None:
    """samples/families, per example: NAME.csv, NAME.truth.json (the values the data was drawn
    from) and NAME.minimum.json (the minimum of the example's cost over that data)."""
    folder = Path(folder)
    for name, make in SAMPLES.items():
        columns, truth = make()
        write_csv(folder / f"{name}.csv", columns)
        (folder / f"{name}.truth.json").write_text(json.dumps(truth, indent=1) + "\n")
        (folder / f"{name}.minimum.json").write_text(json.dumps(minimum(columns, truth), indent=1) + "\n")


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    """Write columns as CSV ("%.4f"; 0/1 columns as integers), to a temporary name then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    block = np.column_stack([columns[n] for n in names])
    fmt = ["%d" if np.all((columns[n] == 0) | (columns[n] == 1)) else "%.4f" for n in names]
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as out:
        out.write(",".join(names) + "\n")
        for start in range(0, len(block), 100_000):
            np.savetxt(out, block[start : start + 100_000], fmt=fmt, delimiter=",")
    partial.replace(path)
    return path


def cached_csv(case: str, columns: dict[str, np.ndarray], **key) -> Path:
    """The CSV of ``columns`` under CACHE, written only when it is not there yet."""
    name = "-".join([case, *(f"{k}{v}" for k, v in sorted(key.items()))]).replace("[", "").replace("]", "")
    path = CACHE / f"{name}.csv"
    if not path.exists():
        write_csv(path, columns)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=[*GENERATORS, "samples"], help="samples: write samples/families")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--units", type=int, default=16, help="hidden units (network)")
    parser.add_argument("--classes", type=int, default=10, help="classes (softmax)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naming", choices=NAMINGS, default="x1", help="column names of a family")
    parser.add_argument("-o", "--output", type=Path, help="CSV to write (default: cached under /tmp)")
    parser.add_argument("--truth", type=Path, help="also write the true parameters as JSON")
    args = parser.parse_args(argv)
    if args.case == "samples":
        write_samples(args.output or Path(__file__).resolve().parents[1] / "samples" / "families")
        return
    extra = {"network": {"units": args.units}, "softmax": {"classes": args.classes}}.get(args.case, {})
    columns, truth = GENERATORS[args.case](
        args.rows, args.features, seed=args.seed, naming=args.naming, **extra
    )
    if args.output is not None:
        path = write_csv(args.output, columns)
    else:
        key = {"rows": args.rows, "features": args.features, "seed": args.seed, "naming": args.naming}
        path = cached_csv(args.case, columns, **key, **extra)
    if args.truth is not None:
        args.truth.write_text(json.dumps(truth, indent=1) + "\n")
    print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
