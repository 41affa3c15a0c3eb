"""Past one machine: the Dask engine against the local engine, on the same data in the same run.

a. one round: value + gradient of the 5-feature logistic regression
   ``z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)`` over 10 shards of
   100,000 and of 1,000,000 rows, on a LocalCluster of 2 worker processes (one
   thread each) against the local engine (one thread), and the time of a
   round's fixed cost (the same pass over 10 one-row shards);
b. a whole `exprgrad.fit(method="lbfgs")` of it: time per iteration on both
   engines, and whether the parameters are the same bits;
c. weak scaling: 1 worker with 10 shards of R rows against 2 workers with
   20 shards of R rows (the same data per worker): time per round;
d. streaming a 10,000,000-row CSV file (x, y: about 400 MB) in a process
   whose memory (RLIMIT_DATA) is limited to less than the file: the first
   open (the conversion into the binary cache) and pass against np.loadtxt's
   parsing speed on the same text, and later passes of value + gradient of
   ``mean((a*x + b - y)^2)`` over the cached columns against the same columns
   in memory (target: within 1.5x).

Every figure is the best of --repeat runs; the ratios are between
measurements taken in this run. Needs the extra exprgrad[dask].

    python benchmarks/bench_scale.py [--quick] [--repeat 5] [--cases a,b,c,d]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import pin_threads  # before numpy loads

pin_threads(["--threads", "1"], default=1)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import distributed
from timing import best_time

import exprgrad
from exprgrad import graph
from exprgrad.backends.evaluate import compile_schedule
from exprgrad.engines import open_engine
from exprgrad.passes.diff import diff

LOGISTIC = "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)"
FEATURES = 5
SHARDS = 10


def logistic_data(rows: int, seed: int = 7) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, FEATURES))
    truth = np.linspace(-1, 1, FEATURES)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(x @ truth + 0.3)))).astype(float)
    return {f"x{j + 1}": np.ascontiguousarray(x[:, j]) for j in range(FEATURES)} | {"y": y}


def value_gradient_schedule():
    output = exprgrad.parse(LOGISTIC, [f"x{j + 1}" for j in range(FEATURES)] + ["y"]).output
    wrt = [v for v in graph.variables([output]) if not v.per_row]
    return compile_schedule([output, *diff(output, wrt).values()])


PARAMS = {"c": 0.1, "w": np.linspace(-0.5, 0.5, FEATURES)}


def as_family(columns: dict) -> dict:
    return {"x": [columns[f"x{j + 1}"] for j in range(FEATURES)], "y": columns["y"]}


def cluster(workers: int):
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
        silence_logs=40,
    )


def round_times(client, rows_per_shard: int, shards: int, repeat: int) -> tuple[float, float]:
    """(local engine, Dask engine) seconds for one value + gradient over ``shards`` shards."""
    columns = as_family(logistic_data(rows_per_shard * shards))
    schedule = value_gradient_schedule()
    local = best_time(lambda: schedule.run(PARAMS, columns, threads=1), repeat)
    with open_engine("dask", columns, scheduler=client, partitions=shards) as engine:
        here, there = schedule.run(PARAMS, columns, threads=1), schedule.run(PARAMS, None, engine=engine)
        assert all(np.array_equal(a, b) for a, b in zip(here, there)), "the engines disagree"
        dask = best_time(lambda: schedule.run(PARAMS, None, engine=engine), repeat)
    return local, dask


def case_a(client, quick: bool, repeat: int) -> None:
    print("a. one round of value + gradient, logistic regression, 5 features; LocalCluster of 2 workers")
    _, fixed = round_times(client, 1, SHARDS, repeat)
    print(f"   a round's fixed cost (10 one-row shards): {fixed * 1e3:.1f} ms")
    for rows in (10_000, 100_000) if quick else (100_000, 1_000_000):
        local, dask = round_times(client, rows, SHARDS, repeat)
        print(
            f"   10 shards of {rows:,} rows: local {local * 1e3:.1f} ms, dask {dask * 1e3:.1f} ms, "
            f"dask/local {dask / local:.2f}"
        )


def case_b(client, quick: bool) -> None:
    rows = 10_000 if quick else 100_000
    print(f"b. exprgrad.fit(method='lbfgs') over 10 shards of {rows:,} rows")
    data = logistic_data(rows * SHARDS)
    found = {}
    for engine in ("local", "dask"):
        extra = {"scheduler": client, "partitions": SHARDS} if engine == "dask" else {"threads": 1}
        start = time.perf_counter()
        result = exprgrad.fit(data, cost=LOGISTIC, method="lbfgs", engine=engine, **extra)
        found[engine] = (time.perf_counter() - start, result)
    (t_local, local), (t_dask, dask) = found["local"], found["dask"]
    per = [t / max(1, r.evaluations) for t, r in ((t_local, local), (t_dask, dask))]
    print(
        f"   {local.iterations} iterations, {local.evaluations} passes; per pass: local {per[0] * 1e3:.1f} ms, "
        f"dask {per[1] * 1e3:.1f} ms ({per[1] / per[0]:.2f}x); same parameters bit for bit: "
        f"{local.params == dask.params}"
    )


def case_c(quick: bool, repeat: int) -> None:
    rows = 20_000 if quick else 200_000
    print(f"c. weak scaling: 10 shards of {rows:,} rows per worker")
    times = {}
    for workers in (1, 2):
        with cluster(workers) as found, distributed.Client(found) as client:
            _, times[workers] = round_times(client, rows, SHARDS * workers, repeat)
        print(
            f"   {workers} worker(s), {SHARDS * workers * rows:,} rows: {times[workers] * 1e3:.1f} ms per round"
        )
    print(f"   efficiency (1 worker's time / 2 workers' time on twice the data): {times[1] / times[2]:.2f}")


STREAM_CHILD = """
import os, resource, sys, time
import numpy as np
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
import exprgrad
from exprgrad import graph
from exprgrad.backends.evaluate import compile_schedule
from exprgrad.fitting import sources
from exprgrad.passes.diff import diff
start = time.perf_counter()
data = sources.load(sys.argv[1])
opened = time.perf_counter() - start
f = exprgrad.parse("mean((a*x + b - y)^2)", ["x", "y"])
out = f.output
schedule = compile_schedule([out, *diff(out, [v for v in graph.variables([out]) if not v.per_row]).values()])
columns = {"x": data.columns["x"], "y": data.columns["y"]}
schedule.run({"a": 1.0, "b": 0.0}, columns, threads=1)
first = time.perf_counter() - start
later = min(
    (lambda t: (schedule.run({"a": 1.0, "b": 0.0}, columns, threads=1), time.perf_counter() - t)[1])(time.perf_counter())
    for _ in range(5)
)
try:
    np.array(columns["x"])
    copied = "yes"
except MemoryError:
    copied = "no"
print(opened, first, later, data.rows, copied)
"""


def stream_file(rows: int) -> Path:
    folder = Path(tempfile.gettempdir()) / "exprgrad-bench"
    folder.mkdir(exist_ok=True)
    path = folder / f"stream_{rows}.csv"
    if not path.exists():
        rng = np.random.default_rng(3)
        with open(path.with_suffix(".part"), "w") as out:
            out.write("x,y\n")
            for first in range(0, rows, 1_000_000):
                x = rng.normal(size=min(1_000_000, rows - first))
                np.savetxt(
                    out, np.column_stack([x, 2 * x + 1 + rng.normal(size=len(x))]), delimiter=",", fmt="%.17g"
                )
        os.replace(path.with_suffix(".part"), path)
    return path


def case_d(quick: bool, repeat: int) -> None:
    rows = 1_000_000 if quick else 10_000_000
    path = stream_file(rows)
    size = path.stat().st_size
    sample = stream_file(1_000_000)
    start = time.perf_counter()
    np.loadtxt(sample, delimiter=",", skiprows=1)
    loadtxt_rate = sample.stat().st_size / (time.perf_counter() - start)
    print(
        f"d. streaming {rows:,} rows of CSV ({size / 1e6:.0f} MB); np.loadtxt parses {loadtxt_rate / 1e6:.1f} MB/s"
    )
    # The child's memory: what the interpreter and the imports take, and 120 MiB.
    imports = (
        "import exprgrad.fitting.sources, resource; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    base = subprocess.run([sys.executable, "-c", imports], capture_output=True, text=True, check=True)
    limit = int(base.stdout) * 1024 + 120 * 2**20
    env = dict(os.environ, EXPRGRAD_CACHE_DIR=tempfile.mkdtemp(prefix="exprgrad-bench-cache-"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    # A one-file glob: the cache's route, whatever the file's size (a small file alone is read in memory).
    pattern = str(path)[:-1] + "[v]"
    found = subprocess.run(
        [sys.executable, "-c", STREAM_CHILD, pattern, str(limit)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if found.returncode != 0:
        print("   failed:", found.stderr.strip().splitlines()[-1:])
        return
    opened, first, later, counted, copied = found.stdout.split()
    opened, first, later = float(opened), float(first), float(later)
    table = np.loadtxt(sample, delimiter=",", skiprows=1)
    reps = max(1, rows // len(table))
    columns = {"x": np.tile(table[:, 0], reps), "y": np.tile(table[:, 1], reps)}
    f = exprgrad.parse("mean((a*x + b - y)^2)", ["x", "y"])
    out = f.output
    schedule = compile_schedule(
        [out, *diff(out, [v for v in graph.variables([out]) if not v.per_row]).values()]
    )
    in_memory = best_time(lambda: schedule.run({"a": 1.0, "b": 0.0}, columns, threads=1), repeat)
    print(
        f"   memory limit {limit / 2**20:.0f} MiB (the file: {size / 2**20:.0f} MiB; a copy of one column in "
        f"memory possible: {copied}); {counted} rows"
    )
    print(
        f"   first open (conversion) {opened:.1f} s = {size / opened / 1e6:.1f} MB/s "
        f"({size / opened / loadtxt_rate:.2f}x np.loadtxt's speed); with the first pass {first:.1f} s"
    )
    print(
        f"   later passes from the cache {later * 1e3:.1f} ms, in memory {in_memory * 1e3:.1f} ms: "
        f"{later / in_memory:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--cases", default="a,b,c,d")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    if cases & {"a", "b"}:
        with cluster(2) as found, distributed.Client(found) as client:
            if "a" in cases:
                case_a(client, args.quick, args.repeat)
            if "b" in cases:
                case_b(client, args.quick)
    if "c" in cases:
        case_c(args.quick, args.repeat)
    if "d" in cases:
        case_d(args.quick, args.repeat)


if __name__ == "__main__":
    main()
