"""Engines: passes over partitions of the data, here and on a Dask cluster, equal to one process's bits."""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import exprgrad
from exprgrad import graph, graph_text
from exprgrad.backends.evaluate import Schedule, compile_schedule
from exprgrad.engines import PARTITION_ROWS, InProcess, open_engine, partition_bounds
from exprgrad.errors import OptionError
from exprgrad.fitting.data import load_csv
from exprgrad.passes.diff import diff, hessian

RNG = np.random.default_rng(20261203)
N = 3 * PARTITION_ROWS + 12_345  # four partitions, the last one short and ending mid-block

X1 = RNG.normal(size=N)
Y_LINEAR = 1.5 * X1 - 0.5 + 0.1 * RNG.normal(size=N)
FEATURES = RNG.normal(size=(N, 5))
LABELS = (RNG.random(N) < 1 / (1 + np.exp(-(FEATURES @ np.linspace(-1, 1, 5) + 0.2)))).astype(float)
Y_EXP = 2.0 * np.exp(-0.7 * np.abs(X1)) + 0.05 * RNG.normal(size=N)

# (program, columns, parameter values): scalar graphs, a two-pass graph, families.
CASES = {
    "linear": ("mean((a*x + b - y)^2)", {"x": X1, "y": Y_LINEAR}, {"a": 0.3, "b": -0.2}),
    "two passes": (
        "mean((x - mean(x))^2 * a) + sum(b*y) + mean(x)",
        {"x": X1, "y": Y_LINEAR},
        {"a": 0.3, "b": 2.0},
    ),
    "logistic family": (
        "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)",
        {"x": FEATURES, "y": LABELS},
        {"c": 0.1, "w": np.linspace(-1, 1, 5)},
    ),
    "network": (
        "k in 1:3; h[k] = tanh(sum[j](W[k,j]*x[j]) + b[k]); mean((sum[k](v[k]*h[k]) + c - y)^2)",
        {"x": FEATURES, "y": Y_LINEAR},
        {"W": RNG.normal(size=(3, 5)), "b": np.zeros(3), "v": np.ones(3), "c": 0.5},
    ),
}


def value_and_gradient(program: str) -> list:
    output = exprgrad.parse(program).output
    wrt = [v for v in graph.variables([output]) if not v.per_row]
    return [output, *diff(output, wrt).values()]


def same_bits(a: list, b: list) -> bool:
    return len(a) == len(b) and all(
        np.asarray(x).tobytes() == np.asarray(y).tobytes() and np.shape(x) == np.shape(y)
        for x, y in zip(a, b, strict=True)
    )


# ---------------------------------------------------------------- without a cluster


def test_partitions_are_whole_groups_of_rows_in_order():
    for n, count in [(1, 4), (PARTITION_ROWS, 3), (N, 4), (N, 100), (10 * PARTITION_ROWS + 5, 3)]:
        bounds = partition_bounds(n, count)
        assert bounds[0][0] == 0 and bounds[-1][1] == n
        assert all(b == c for (_, b), (c, _) in itertools.pairwise(bounds))
        assert all(a % PARTITION_ROWS == 0 for a, _ in bounds)
        assert len(bounds) <= count


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_passes_over_partitions_give_one_process_bits(case, partitions):
    program, columns, params = CASES[case]
    schedule = compile_schedule(value_and_gradient(program))
    here = schedule.run(params, columns)
    split = schedule.run(params, None, engine=InProcess(columns, partitions))
    assert same_bits(here, split)


def test_per_row_outputs_come_back_whole_and_in_order():
    columns = {"x": X1, "y": Y_LINEAR}
    residual = exprgrad.parse("a*x + b - y", ["x", "y"]).output
    squared = exprgrad.parse(
        "(a*x + b - y)^2 / mean(x^2)", ["x", "y"]
    ).output  # a row reduction feeds the rows
    schedule = compile_schedule([residual, squared])
    here = schedule.run({"a": 2.0, "b": 1.0}, columns)
    split = schedule.run({"a": 2.0, "b": 1.0}, None, engine=InProcess(columns, 3))
    assert same_bits(here, split) and len(split[0]) == N


def test_a_hessian_of_families_over_partitions():
    program, columns, params = CASES["logistic family"]
    output = exprgrad.parse(program).output
    w = next(v for v in graph.variables([output]) if v.name == "w")
    schedule = compile_schedule([hessian(output, [w])["w"]["w"]])
    assert same_bits(schedule.run(params, columns), schedule.run(params, None, engine=InProcess(columns, 4)))


def test_the_graph_text_rebuilds_the_same_schedule_in_another_process():
    nodes = value_and_gradient(CASES["network"][0])
    text = compile_schedule(nodes).text
    assert graph_text.loads(text) == nodes  # the same interned nodes here
    code = (
        "import sys; from exprgrad import graph_text; from exprgrad.backends.evaluate import Schedule; "
        "t = sys.stdin.read(); s = Schedule(graph_text.loads(t)); print(s.text == t, len(s.order))"
    )
    out = subprocess.run([sys.executable, "-c", code], input=text, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", str(len(Schedule(nodes).order))]


def test_graph_text_of_another_version_is_refused():
    with pytest.raises(ValueError, match="version"):
        graph_text.loads(json.dumps({"version": 99, "nodes": [], "outputs": []}))


def test_the_local_engine_takes_no_scheduler():
    assert open_engine("local", {"x": X1}) is None
    with pytest.raises(OptionError, match="scheduler"):
        open_engine("local", {"x": X1}, scheduler="tcp://127.0.0.1:8786")
    with pytest.raises(OptionError, match="engine"):
        open_engine("spark", {"x": X1})


def test_the_dask_engine_without_distributed_says_what_to_install(tmp_path):
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from exprgrad.cli import cli\n"
        "cli(['fit', sys.argv[1], '--model', 'a*x + b', '--target', 'y', '--engine', 'dask'])\n"
    )
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "linear.csv")
    out = subprocess.run([sys.executable, "-c", code, sample], capture_output=True, text=True, check=False)
    assert out.returncode == 1
    assert "pip install 'exprgrad[dask]'" in out.stderr and "Traceback" not in out.stderr


# ---------------------------------------------------------------- on a Dask cluster

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as found,
    ):
        yield found


@pytest.mark.parametrize("case", list(CASES))
def test_a_pass_on_the_cluster_gives_one_process_bits(client, case):
    program, columns, params = CASES[case]
    schedule = compile_schedule(value_and_gradient(program))
    here = schedule.run(params, columns)
    with open_engine("dask", columns, scheduler=client, partitions=3) as engine:
        assert len(engine.bounds) == 3
        assert same_bits(here, schedule.run(params, None, engine=engine))
        assert same_bits(here, schedule.run(params, None, engine=engine))  # partitions kept: again


FITS = [
    ("linear, direct", {"x": X1, "y": Y_LINEAR}, {"model": "a*x + b", "target": "y"}),
    ("linear, lbfgs", {"x": X1, "y": Y_LINEAR}, {"model": "a*x + b", "target": "y", "method": "lbfgs"}),
    (
        "logistic, newton",
        {f"x{j + 1}": FEATURES[:, j] for j in range(5)} | {"y": LABELS},
        {"cost": "z = c + sum[j](w[j]*x[j]); mean(softplus(z) - y*z)", "method": "newton"},
    ),
    (
        "nonlinear, lm",
        {"x": X1, "y": Y_EXP},
        {"model": "p*exp(-q*abs(x))", "target": "y", "init": {"p": 1.0, "q": 1.0}, "method": "lm"},
    ),
]


@pytest.mark.parametrize(("name", "data", "options"), FITS, ids=[f[0] for f in FITS])
def test_a_fit_on_the_cluster_equals_the_local_fit_bit_for_bit(client, name, data, options):
    here = exprgrad.fit(data, **options)
    for partitions in (2, 4):
        there = exprgrad.fit(data, **options, engine="dask", scheduler=client, partitions=partitions)
        assert there.params == here.params and there.cost == here.cost, (name, partitions)
        assert there.to_dict()["stderr"] == here.to_dict()["stderr"]
        assert there.converged == here.converged


def test_eval_and_check_on_the_cluster_print_what_they_print_here(client, tmp_path):
    data = tmp_path / "data.csv"
    np.savetxt(data, np.column_stack([X1[:5000], Y_LINEAR[:5000]]), delimiter=",", header="x,y", comments="")
    for command in (
        ["eval", "mean((a*x + b - y)^2)", "--at", "a=1,b=2", "--data", str(data), "--grad"],
        ["diff", "mean((a*x + b - y)^2)", "--wrt", "a,b", "--at", "a=1,b=2", "--data", str(data)],
        ["check", "mean((a*x + b - y)^2)", "--at", "a=1,b=2", "--data", str(data)],
    ):
        here = subprocess.run(
            [sys.executable, "-m", "exprgrad", *command], capture_output=True, text=True, check=False
        )
        there = subprocess.run(
            [
                sys.executable,
                "-m",
                "exprgrad",
                *command,
                "--engine",
                "dask",
                "--scheduler",
                client.scheduler.address,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert here.returncode == there.returncode == 0, there.stderr
        assert there.stdout == here.stdout


def test_a_scheduler_that_cannot_be_reached_is_one_error_line_and_nothing_written(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = tmp_path / "result.json"
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "linear.csv")
    out = subprocess.run(
        [sys.executable, "-m", "exprgrad", "fit", sample, "--model", "a*x + b", "--target", "y", "-o", str(result),
         "--engine", "dask", "--scheduler", f"tcp://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "cannot reach the Dask scheduler" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not result.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _dask_command() -> list[str]:
    return [os.path.join(os.path.dirname(sys.executable), "dask")]


@pytest.fixture
def processes_cluster(tmp_path):
    """A scheduler and two workers started with the `dask scheduler` / `dask worker` commands."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, DASK_DISTRIBUTED__WORKER__DAEMON="False")
    started = [
        subprocess.Popen(
            [*_dask_command(), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    ]  # fmt: skip
    for _ in range(2):
        started.append(
            subprocess.Popen(
                [*_dask_command(), "worker", address, "--nworkers", "1", "--nthreads", "1", "--no-dashboard",
                 "--no-nanny", "--local-directory", str(tmp_path)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        )  # fmt: skip
    try:
        with distributed.Client(address, timeout="30s") as probe:
            probe.wait_for_workers(2, timeout=60)
        yield address, started[1:], started[0]
    finally:
        for process in started[::-1]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.mark.slow
def test_the_cli_fits_on_a_scheduler_and_workers_started_by_the_dask_commands(processes_cluster, tmp_path):
    address, _, _ = processes_cluster
    data = tmp_path / "data.csv"
    np.savetxt(data, np.column_stack([X1, Y_LINEAR]), delimiter=",", header="x,y", comments="", fmt="%.17g")
    fit = [
        sys.executable,
        "-m",
        "exprgrad",
        "fit",
        str(data),
        "--model",
        "a*x + b",
        "--target",
        "y",
        "--format",
        "json",
    ]
    here = subprocess.run(fit, capture_output=True, text=True, check=True)
    there = subprocess.run(
        [*fit, "--scheduler", address, "--engine", "dask"], capture_output=True, text=True, check=False
    )
    assert there.returncode == 0, there.stderr
    drop = ("seconds", "time", "wall_time")
    same = {k: v for k, v in json.loads(here.stdout).items() if k not in drop}
    assert {k: v for k, v in json.loads(there.stdout).items() if k not in drop} == same


@pytest.mark.slow
def test_a_worker_killed_during_a_fit_has_its_partitions_loaded_again(processes_cluster):
    address, workers, _ = processes_cluster
    data = {"x": X1, "y": Y_LINEAR}
    # Small adam steps: every one of the 300 iterations runs, whatever the data.
    options = {"model": "a*x + b", "target": "y", "method": "adam", "lr": 1e-4, "max_iter": 150, "tol": 0.0}
    here = exprgrad.fit(data, **options)
    seen = []

    def progress(step, limit, cost, norm):
        seen.append(step)
        if len(seen) == 30:  # mid-fit: one worker gone, its partitions with it
            os.killpg(workers[0].pid, signal.SIGKILL)
            time.sleep(0.5)

    with distributed.Client(address) as client:
        there = exprgrad.fit(
            data, **options, engine="dask", scheduler=client, partitions=4, progress=progress
        )
        assert len(client.scheduler_info()["workers"]) == 1
    assert workers[0].poll() is not None
    assert there.params == here.params and there.cost == here.cost


@pytest.mark.parametrize("delay", [1.5, 8], ids=["while the cluster starts", "during the fit"])
def test_ctrl_c_during_a_cluster_fit_stops_cleanly(tmp_path, delay):
    data = tmp_path / "data.csv"
    np.savetxt(data, np.column_stack([X1, Y_LINEAR]), delimiter=",", header="x,y", comments="")
    result = tmp_path / "result.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "exprgrad", "fit", str(data), "--model", "a*x + b", "--target", "y",
         "--method", "adam", "--lr", "1e-9", "--max-iter", "1000000", "--tol", "0", "--engine", "dask",
         "-o", str(result)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    threading.Timer(delay, lambda: os.killpg(process.pid, signal.SIGINT)).start()
    try:
        _, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # nothing left running, whatever happened
        raise
    assert process.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "error: interrupted", err
    assert not result.exists()


def rows_and_first(values: list, start: int, scale: float) -> tuple:
    """A reducer (``Schedule.run(reduce_rows=...)``): a partition's first row, its row count and a scaled sum."""
    rows = values[0]
    return start, len(rows), scale * float(np.sum(rows)), values[1]


def test_rows_reduced_where_the_partition_is():
    columns = {"x": X1, "y": Y_LINEAR}
    residual = exprgrad.parse("a*x + b - y", ["x", "y"]).output
    schedule = compile_schedule([residual, exprgrad.parse("2*a", ["x", "y"]).output])
    reducer = (rows_and_first, (2.0,))
    whole = schedule.run({"a": 2.0, "b": 1.0}, columns)[0]
    engine = InProcess(columns, 3)
    reduced, scalar = schedule.run({"a": 2.0, "b": 1.0}, None, engine=engine, reduce_rows=reducer)
    assert scalar == 4.0
    assert [(start, rows) for start, rows, _, _ in reduced] == [(a, b - a) for a, b in engine.bounds]
    assert [total for *_, total, _ in reduced] == [2.0 * float(np.sum(whole[a:b])) for a, b in engine.bounds]
    assert all(known == 4.0 for *_, known in reduced)  # a scalar output known before the pass
    (alone,) = schedule.run({"a": 2.0, "b": 1.0}, columns, reduce_rows=reducer)[0]
    assert alone[:2] == (0, N)


NIST = Path(__file__).resolve().parent / "data" / "nist"


@pytest.mark.parametrize("name", ["Longley", "Filip"])
def test_a_nist_linear_problem_in_four_partitions_keeps_its_certified_digits(client, name):
    problems = {p["name"]: p for p in json.loads((NIST / "problems.json").read_text())["problems"]}
    problem = problems[name]
    rows = dict(load_csv(NIST / problem["csv"]).columns)
    # Each row repeated, in order, until the data fills four partitions: the same least-squares
    # solution (every normal equation times the same count), now over four partitions of leaves.
    copies = -(-(3 * PARTITION_ROWS + 1) // len(rows["y"]))
    data = {column: np.tile(values, copies) for column, values in rows.items()}
    here = exprgrad.fit(data, model=problem["model"], target="y")
    there = exprgrad.fit(
        data, model=problem["model"], target="y", engine="dask", scheduler=client, partitions=4
    )
    assert here.method == there.method == "qr"
    assert there.params == here.params and there.to_dict()["stderr"] == here.to_dict()["stderr"]
    digits = problem["certified_digits"]
    found = min(
        -math.log10(max(abs(there.params[n] - float(c)) / abs(float(c)), 10.0**-digits))
        for n, c in zip(problem["params"], problem["certified_values"], strict=True)
    )
    assert found >= {"Longley": 12, "Filip": 7}[name], found


def test_workers_read_columns_from_the_files_they_can_see(client, tmp_path, monkeypatch):
    from exprgrad.engines import cluster
    from exprgrad.fitting import problem as problems

    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(tmp_path / "cache"))
    shards = tmp_path / "shards"
    shards.mkdir()
    for k, (a, b) in enumerate([(0, 70_000), (70_000, N)]):
        part = np.column_stack([X1[a:b], Y_LINEAR[a:b]])
        np.savetxt(shards / f"part{k + 1}.csv", part, delimiter=",", header="x,y", comments="", fmt="%.17g")
    one = tmp_path / "one.csv"
    np.savetxt(one, np.column_stack([X1[:5000], Y_LINEAR[:5000]]), delimiter=",", header="x,y", comments="")
    opened = []
    real = cluster.DaskEngine._load

    def spy(self, distributed):
        real(self, distributed)
        opened.append(dict(self.read_from))

    monkeypatch.setattr(cluster.DaskEngine, "_load", spy)
    for data, how in ((str(shards / "*.csv"), "cache file"), (str(one), "data source")):
        here = exprgrad.fit(data, model="a*x + b", target="y")
        there = exprgrad.fit(data, model="a*x + b", target="y", engine="dask", scheduler=client, partitions=2)
        assert there.params == here.params and there.cost == here.cost
        assert opened[-1] == {"x": how, "y": how}
    rows = problems.load_data(str(shards / "*.csv"))
    assert rows.rows == N and isinstance(rows.columns["x"], np.memmap)


@pytest.mark.slow
def test_a_scheduler_lost_mid_fit_is_one_error_line_and_nothing_written(processes_cluster, tmp_path):
    address, _, scheduler = processes_cluster
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "linear.csv")
    result = tmp_path / "result.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "exprgrad", "fit", sample, "--model", "a*x + b", "--target", "y",
         "--method", "adam", "--lr", "1e-9", "--max-iter", "1000000", "--tol", "0", "--engine", "dask",
         "--scheduler", address, "-o", str(result)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    threading.Timer(6, lambda: os.killpg(scheduler.pid, signal.SIGKILL)).start()
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: lost the Dask scheduler at {address}"] or (
        len(lines) == 1 and "lost the Dask scheduler" in lines[0]
    ), err
    assert "Traceback" not in err and not result.exists()


@pytest.mark.parametrize("address", ["nonsense", "tcp://", "8786", "inproc://x"])
def test_a_malformed_scheduler_address_is_one_error_line(address):
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "linear.csv")
    out = subprocess.run(
        [sys.executable, "-m", "exprgrad", "eval", "mean(x)", "--data", sample, "--engine", "dask",
         "--scheduler", address],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert (
        out.stderr.strip()
        == f"error: --scheduler {address}: not a scheduler address; give one such as tcp://host:8786"
    )
    with pytest.raises(OptionError, match="scheduler="):
        exprgrad.fit(sample, model="a*x + b", target="y", engine="dask", scheduler=address)


def test_the_compiled_backend_is_not_taken_for_a_cluster():
    sample = os.path.join(os.path.dirname(__file__), "..", "samples", "linear.csv")
    with pytest.raises(OptionError, match="numpy backend"):
        exprgrad.fit(sample, model="a*x + b", target="y", engine="dask", backend="compiled")
