"""exprgrad.fitting.sources and cache: globs, folders, Parquet, and CSV files streamed into a binary cache."""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import exprgrad
from exprgrad.cli import cli
from exprgrad.errors import DataError
from exprgrad.fitting import cache, sources, streaming
from exprgrad.fitting.data import load_csv, require_columns
from exprgrad.fitting.sources import SourceSpec, describe, load, natural_key

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Every test converts into a cache folder of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv(cache.CACHE_VARIABLE, str(folder))
    return folder


def rows_text(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    y = 2.5 * x - 1 + 0.1 * rng.normal(size=n)
    return [f"{a!r},{b!r}" for a, b in zip(x.tolist(), y.tolist())]


def write_shards(folder: Path, lines: list[str], parts: int, header: str = "x,y") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(lines) // parts)
    for k in range(parts):
        chunk = lines[k * size : (k + 1) * size]
        (folder / f"part{k}.csv").write_text(header + "\n" + "".join(line + "\n" for line in chunk))


def write(path: Path, text: str | bytes) -> str:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


def message(call) -> str:
    with pytest.raises(DataError) as info:
        call()
    return str(info.value)


def same_columns(a, b) -> None:
    assert a.names == b.names
    assert list(a.columns) == list(b.columns)
    for name in a.columns:
        assert a.columns[name].tobytes() == b.columns[name].tobytes(), name


# --- globs and folders --------------------------------------------------------------


def test_a_glob_of_shards_equals_the_concatenated_file(tmp_path):
    lines = rows_text(3000)
    whole = load_csv(write(tmp_path / "all.csv", "x,y\n" + "\n".join(lines) + "\n"))
    write_shards(tmp_path / "shards", lines, 12)
    data = load(str(tmp_path / "shards" / "*.csv"))
    same_columns(whole, data)
    assert data.path == str(tmp_path / "shards" / "*.csv")
    assert isinstance(data.columns["x"], np.memmap) and not data.columns["x"].flags.writeable
    assert [rows for _, rows in data.files] == [250] * 12
    assert data.files[2][0] == str(tmp_path / "shards" / "part2.csv")
    assert data.files[-1][0].endswith("part11.csv")  # natural order: part2 before part10


def test_a_folder_is_every_csv_in_it_in_natural_order(tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    for k in (10, 2, 1):
        write(folder / f"shard{k}.csv", f"x\n{k}\n")
    write(folder / "notes.txt", "not data\n")
    write(folder / ".hidden.csv", "y\n1\n")
    data = load(folder)
    np.testing.assert_array_equal(data.columns["x"], [1.0, 2.0, 10.0])
    assert [Path(name).name for name, _ in data.files] == ["shard1.csv", "shard2.csv", "shard10.csv"]


def test_natural_key_orders_numbers_as_numbers():
    names = ["s10.csv", "s2.csv", "s1.csv", "a.csv", "s02b.csv"]
    assert sorted(names, key=natural_key) == ["a.csv", "s1.csv", "s2.csv", "s02b.csv", "s10.csv"]


def test_a_file_whose_header_differs_is_named(tmp_path):
    write(tmp_path / "a.csv", "x,y\n1,2\n")
    write(tmp_path / "b.csv", "x,z\n1,2\n")
    pattern = str(tmp_path / "*.csv")
    assert message(lambda: load(pattern)) == (
        f"{tmp_path / 'b.csv'}: its header is x, z but {tmp_path / 'a.csv'}'s is x, y"
    )
    write(tmp_path / "b.csv", "y,x\n1,2\n")  # same names, another order
    assert message(lambda: load(pattern)).endswith(
        "its header is y, x but " + f"{tmp_path / 'a.csv'}'s is x, y"
    )


def test_an_empty_glob_and_an_empty_folder_are_named(tmp_path):
    pattern = str(tmp_path / "shards" / "*.csv")
    assert message(lambda: load(pattern)) == f"no file matches '{pattern}'"
    (tmp_path / "empty").mkdir()
    assert message(lambda: load(tmp_path / "empty")) == (
        f"folder '{tmp_path / 'empty'}' holds no data files (*.csv, *.parquet or *.pq)"
    )


def test_a_header_only_shard_is_fine_but_a_source_without_rows_is_not(tmp_path):
    write(tmp_path / "a.csv", "x\n1\n")
    write(tmp_path / "b.csv", "x\n")
    data = load(str(tmp_path / "*.csv"))
    assert data.rows == 1 and [rows for _, rows in data.files] == [1, 0]
    os.remove(tmp_path / "a.csv")
    assert message(lambda: load(str(tmp_path / "*.csv"))).endswith("has a header but no data rows")


def test_a_text_column_is_kept_aside_with_its_first_bad_cell(tmp_path):
    write(tmp_path / "a.csv", "x,name\n1,2\n2,3\n")
    write(tmp_path / "b.csv", "x,name\n3,4\n4,bob\n")
    data = load(str(tmp_path / "*.csv"))
    np.testing.assert_array_equal(data.columns["x"], [1, 2, 3, 4])
    assert "name" not in data.columns
    expected = f"{tmp_path / 'b.csv'}:3:2: cannot read 'bob' as a number in column 'name'"
    assert message(lambda: require_columns(data, ["name"])) == expected
    assert message(lambda: data.columns["name"]) == expected


# --- one CSV file: small in memory as before, large streamed ------------------------


def test_a_small_csv_file_is_read_in_memory_as_before(tmp_path):
    path = write(tmp_path / "d.csv", "x,y\n1,2\n3,4\n")
    data = load(path)
    same_columns(load_csv(path), data)
    assert not isinstance(data.columns["x"], np.memmap)
    assert data.path == path and data.files == ((path, 2),) and isinstance(data.source, SourceSpec)
    assert not (tmp_path / "cache").exists()
    bad = write(tmp_path / "bad.csv", "x,y\n1,2\n3\n")
    assert (
        message(lambda: load(bad))
        == message(lambda: load_csv(bad))
        == f"{bad}:3: expected 2 cells (x, y), found 1"
    )
    assert (
        message(lambda: load(tmp_path / "none.csv"))
        == f"cannot read data file '{tmp_path / 'none.csv'}': no such file"
    )


def test_a_large_csv_file_is_streamed_not_refused(tmp_path, monkeypatch):
    path = write(tmp_path / "d.csv", "x,y\n" + "\n".join(rows_text(2000)) + "\n")
    monkeypatch.setattr(sources, "STREAM_BYTES", 1000)  # d.csv counts as large
    data = load(path)
    assert isinstance(data.columns["x"], np.memmap)
    same_columns(load_csv(path), data)


CHUNKED = [
    "x,y\n1,2\n3,4\n",
    "\n\nx;y\n1;2\n\n   \n3;4\n",  # blank lines, semicolons
    "x,y\r\n1,2\r\n3,4\r\n",  # CRLF
    "x,y\r1,2\r3,4",  # CR only, no final line end
    "\ufeffx,y\n1,2\n",  # byte-order mark
    "x,y\n1,2\n3,nan\n",  # a non-finite cell
    "x,y\n1,2\n3,4,5\n",  # a row of the wrong width
    "x,y\n1,2\n3,\n",  # an empty cell
    "x,x\n1,2\n",  # a repeated name
    "",  # empty
    "  \n\n",  # blank
    "x,y\n",  # no rows
    "x,name\n1,a\n2,b\n",
]


@pytest.mark.parametrize("text", CHUNKED)
@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_streamed_in_chunks_as_load_csv_reads_it(tmp_path, text, chunk, monkeypatch):
    monkeypatch.setattr(sources, "STREAM_BYTES", 0)
    path = write(tmp_path / "d.csv", text)
    spec = describe(path)
    try:
        expected = load_csv(path)
    except DataError as exc:
        assert message(lambda: spec.open(chunk_bytes=chunk)) == str(exc)
        return
    data = spec.open(chunk_bytes=chunk)
    same_columns(expected, data)
    assert data.problems == expected.problems


def long_file(bad_line: str, at: int, n: int = 8000) -> str:
    lines = ["x,y"] + rows_text(n)
    lines[at - 1] = bad_line
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("bad_line", "problem"),
    [
        ("1,oops", "{path}:7500:2: cannot read 'oops' as a number in column 'y'"),
        ("1,2,3", "{path}:7500: expected 2 cells (x, y), found 3"),
        (
            "1,inf",
            "{path}:7500:2: 'inf' in column 'y' is not a finite number (pass allow_nonfinite=True to keep it)",
        ),
        (
            "1,\x00",
            "cannot read data file '{path}': it holds binary data, not text (a NUL byte on line 7500)",
        ),
        ("1,\xff", None),
    ],
)
def test_a_bad_cell_in_a_later_chunk_is_named_by_its_line_in_the_file(
    tmp_path, bad_line, problem, monkeypatch
):
    monkeypatch.setattr(sources, "STREAM_BYTES", 0)
    text = long_file("@", 7500).encode().replace(b"@", bad_line.encode("latin-1"))
    path = write(tmp_path / "d.csv", text)
    if problem is None:
        problem = "cannot read data file '{path}': it is not UTF-8 text (byte 0xff on line 7500)"
    spec = describe(path)
    assert len(text) > 4 * streaming.SNIFF_BYTES  # the line is past the first chunk
    try:
        data = spec.open(chunk_bytes=4096)
        require_columns(data, data.names)
    except DataError as exc:
        assert str(exc) == problem.format(path=path)
    else:
        pytest.fail("no error")
    with pytest.raises(DataError, match="line 7500|:7500"):
        data = load_csv(path)
        require_columns(data, data.names)


# --- Parquet ------------------------------------------------------------------------


def write_parquet(path: Path, columns: dict) -> str:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table(columns), path, row_group_size=500)
    return str(path)


def test_a_parquet_file_and_a_glob_of_them_equal_the_csv(tmp_path):
    lines = rows_text(2000)
    whole = load_csv(write(tmp_path / "all.csv", "x,y\n" + "\n".join(lines) + "\n"))
    x, y = whole.columns["x"], whole.columns["y"]
    write_parquet(tmp_path / "all.parquet", {"x": x, "y": y})
    same_columns(whole, load(tmp_path / "all.parquet"))
    (tmp_path / "parts").mkdir()
    for k in range(4):
        part = slice(500 * k, 500 * (k + 1))
        write_parquet(tmp_path / "parts" / f"p{k}.pq", {"x": x[part], "y": y[part]})
    data = load(str(tmp_path / "parts" / "*.pq"))
    same_columns(whole, data)
    assert [rows for _, rows in data.files] == [500] * 4
    same_columns(whole, load(tmp_path / "parts"))


def test_only_the_parquet_columns_asked_for_are_read(tmp_path, cache_dir):
    path = write_parquet(
        tmp_path / "d.parquet",
        {"x": [1.0, 2.0, 3.0], "name": ["a", "b", "c"], "gaps": [1.0, None, 3.0], "n": [1, 2, 3]},
    )
    part = describe(path).open(["x"])
    assert list(part.columns) == ["x"] and part.problems == {} and part.names == ("x", "name", "gaps", "n")
    (entry,) = cache_dir.iterdir()
    assert sorted(os.listdir(entry)) == ["0.f64", "meta.json"]  # x alone was read
    data = load(path)
    assert list(data.columns) == ["x", "n"]
    np.testing.assert_array_equal(data.columns["n"], [1.0, 2.0, 3.0])
    assert message(lambda: data.columns["name"]) == f"{path}: column 'name' holds string values, not numbers"
    assert message(lambda: data.columns["gaps"]) == f"{path}: row 2: empty (null) value in column 'gaps'"
    kept = describe(path, allow_nonfinite=True).open(["gaps"])
    np.testing.assert_array_equal(kept.columns["gaps"], [1.0, np.nan, 3.0])


def test_without_pyarrow_a_parquet_source_says_what_to_install(tmp_path, monkeypatch):
    path = write(tmp_path / "d.parquet", b"PAR1 not really")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    assert (
        message(lambda: load(path)) == "reading Parquet files needs pyarrow: pip install 'exprgrad[parquet]'"
    )


def test_a_broken_parquet_file_is_one_line(tmp_path):
    pytest.importorskip("pyarrow")
    path = write(tmp_path / "d.parquet", b"PAR1 not really")
    assert message(lambda: load(path)).startswith(f"cannot read Parquet file '{path}': ")


# --- the cache ----------------------------------------------------------------------


def entry_files(root: Path) -> dict[str, int]:
    """Every file in the cache, as its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def count_parses(monkeypatch) -> list:
    calls = []
    original = streaming.read_rows
    monkeypatch.setattr(streaming, "read_rows", lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_the_cache_is_reused_while_the_files_are_unchanged(tmp_path, cache_dir, monkeypatch):
    write_shards(tmp_path / "shards", rows_text(100), 3)
    pattern = str(tmp_path / "shards" / "*.csv")
    parses = count_parses(monkeypatch)
    first = load(pattern)
    assert len(parses) == 3
    before = entry_files(cache_dir)
    again = load(pattern)
    assert len(parses) == 3 and entry_files(cache_dir) == before  # nothing parsed or written again
    same_columns(first, again)
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == ["part0.csv", "part1.csv", "part2.csv"]


def test_a_changed_file_rebuilds_the_cache(tmp_path, cache_dir, monkeypatch):
    write_shards(tmp_path / "shards", rows_text(100), 3)
    pattern = str(tmp_path / "shards" / "*.csv")
    assert load(pattern).rows == 100
    with open(tmp_path / "shards" / "part1.csv", "a") as file:
        file.write("1,2\n")  # the size changes
    assert load(pattern).rows == 101
    part = tmp_path / "shards" / "part2.csv"
    part.write_text(part.read_text().replace("\n-", "\n+", 1))  # same size, a later mtime
    stat = part.stat()
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    parses = count_parses(monkeypatch)
    load(pattern)
    assert parses
    assert len([name for name in os.listdir(cache_dir) if not name.startswith(".")]) == 1  # old ones removed


def test_a_truncated_cache_file_is_rebuilt(tmp_path, cache_dir, monkeypatch):
    write_shards(tmp_path / "shards", rows_text(100), 2)
    pattern = str(tmp_path / "shards" / "*.csv")
    expected = load_csv(write(tmp_path / "all.csv", "x,y\n" + "\n".join(rows_text(100)) + "\n"))
    load(pattern)
    column = next(cache_dir.rglob("0.f64"))
    with open(column, "r+b") as file:
        file.truncate(80)
    parses = count_parses(monkeypatch)
    same_columns(expected, load(pattern))
    assert parses
    os.remove(next(cache_dir.rglob("meta.json")))
    same_columns(expected, load(pattern))


def _open_in_a_process(pattern: str, cache_root: str) -> tuple[bytes, int]:
    os.environ[cache.CACHE_VARIABLE] = cache_root
    calls = []
    original = streaming.read_rows
    streaming.read_rows = lambda *a, **k: calls.append(1) or original(*a, **k)
    data = load(pattern)
    return data.columns["x"].tobytes() + data.columns["y"].tobytes(), len(calls)


def test_two_processes_converting_at_once_both_get_the_data(tmp_path, cache_dir):
    write_shards(tmp_path / "shards", rows_text(20000), 4)
    pattern = str(tmp_path / "shards" / "*.csv")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        (first, parsed), (second, parsed_too) = pool.starmap(
            _open_in_a_process, [(pattern, str(cache_dir))] * 2
        )
    whole = load_csv(write(tmp_path / "all.csv", "x,y\n" + "\n".join(rows_text(20000)) + "\n"))
    assert first == second == whole.columns["x"].tobytes() + whole.columns["y"].tobytes()
    assert parsed + parsed_too == 4  # one process converted the 4 files; the other waited for its entry
    assert len([name for name in os.listdir(cache_dir) if not name.startswith(".")]) == 1


def test_a_lock_left_by_a_dead_converter_is_taken_over(tmp_path, cache_dir):
    write_shards(tmp_path / "shards", rows_text(100), 2)
    spec = describe(str(tmp_path / "shards" / "*.csv"))
    expected = spec.open()  # then the entry is removed, and a dead process's lock left in its place
    (folder,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    shutil.rmtree(folder)
    lock = Path(f"{folder}.lock")
    lock.touch()
    os.utime(lock, (0, 0))
    same_columns(expected, spec.open())
    assert not lock.exists()


def test_a_pickled_source_spec_loads_a_row_range(tmp_path):
    write_shards(tmp_path / "shards", rows_text(300), 3)
    data = load(str(tmp_path / "shards" / "*.csv"))
    spec = pickle.loads(pickle.dumps(data.source))
    assert len(pickle.dumps(spec)) < 2000
    part = spec.open(["y"], 90, 210)
    assert list(part.columns) == ["y"] and part.rows == 120
    assert part.columns["y"].tobytes() == data.columns["y"][90:210].tobytes()
    assert [rows for _, rows in part.files] == [10, 100, 10]
    assert message(lambda: spec.open(["z"])).startswith("the expression needs column 'z'")


def test_progress_is_reported_while_converting_and_only_on_a_terminal(tmp_path, capsys):
    write_shards(tmp_path / "shards", rows_text(3000), 3)
    seen = []
    describe(str(tmp_path / "shards" / "*.csv")).open(progress=lambda *a: seen.append(a), chunk_bytes=4096)
    total = sum(p.stat().st_size for p in (tmp_path / "shards").iterdir())
    assert len(seen) > 3 and seen[-2][1:] == (total, total)  # then (0, 0): done, even after an error
    assert [done for _, done, _ in seen[:-1]] == sorted(done for _, done, _ in seen[:-1])
    assert sources.terminal_progress() is None  # pytest captures stderr: not a terminal


def test_the_terminal_progress_line_is_rewritten_in_place_then_cleared():
    stream = io.StringIO()
    show = sources._TerminalProgress(stream)
    show("data.csv", 412 << 20, 1288 << 20)
    show("data.csv", 1288 << 20, 1288 << 20)
    line = "reading data.csv: 412 MiB of 1.26 GiB"
    assert stream.getvalue() == "\r" + line + "\r" + " " * len(line) + "\r"


# --- the commands and the fit ------------------------------------------------------


def test_fit_over_a_glob_gives_the_parameters_of_the_concatenated_file(tmp_path, runner):
    lines = rows_text(400)
    whole = write(tmp_path / "all.csv", "x,y\n" + "\n".join(lines) + "\n")
    write_shards(tmp_path / "shards", lines, 4)
    arguments = ["--model", "a*x+b", "--target", "y", "--format", "json", "-q"]
    one = runner.invoke(cli, ["fit", whole, *arguments])
    many = runner.invoke(cli, ["fit", str(tmp_path / "shards" / "*.csv"), *arguments])
    assert one.exit_code == many.exit_code == 0, many.output
    assert json.loads(one.output)["params"] == json.loads(many.output)["params"]
    assert json.loads(one.output)["cost"] == json.loads(many.output)["cost"]
    evaluated = runner.invoke(cli, ["eval", "sum(x)", "--data", str(tmp_path / "shards" / "part*.csv")])
    assert evaluated.exit_code == 0 and float(evaluated.output) == pytest.approx(
        load_csv(whole).columns["x"].sum()
    )
    result = exprgrad.fit(str(tmp_path / "shards"), model="a*x + b", target="y")
    assert result.params == exprgrad.fit(whole, model="a*x + b", target="y").params


def entry_columns(cache_dir: Path) -> list[list[str]]:
    """The columns each cache entry holds."""
    return sorted(sorted(json.loads((e / "meta.json").read_text())["columns"]) for e in cache_dir.iterdir())


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_the_commands_read_only_the_columns_the_expression_needs(tmp_path, runner, cache_dir, kind):
    rng = np.random.default_rng(5)
    x, z = rng.normal(size=(2, 300))
    y = 2.5 * x - 1
    columns = {"x": x, "y": y, "z": z, "u1": x, "u2": z, "name": [f"t{i}" for i in range(300)]}
    folder = tmp_path / "shards"
    folder.mkdir()
    for k in range(3):
        part = {n: v[100 * k : 100 * (k + 1)] for n, v in columns.items()}
        if kind == "parquet":
            write_parquet(folder / f"p{k}.parquet", part)
        else:
            table = zip(*(list(map(str, v)) for v in part.values()))
            write(folder / f"p{k}.csv", ",".join(part) + "\n" + "".join(",".join(r) + "\n" for r in table))
    data = str(folder)
    fitted = runner.invoke(
        cli, ["fit", data, "--model", "a*x + b", "--target", "y", "--format", "json", "-q"]
    )
    assert fitted.exit_code == 0, fitted.output
    assert json.loads(fitted.output)["params"] == pytest.approx({"a": 2.5, "b": -1.0})
    assert entry_columns(cache_dir) == [["x", "y"]]  # z, u1, u2 and the text column never read
    evaluated = runner.invoke(cli, ["eval", "sum[j](w[j]*u[j])", "--at", "w=1", "--data", data])
    assert evaluated.exit_code == 0, evaluated.output
    assert entry_columns(cache_dir) == [["u1", "u2"], ["x", "y"]]
    checked = runner.invoke(cli, ["check", "mean((a*x - log(y + 10))^2)", "--at", "a=1", "--data", data])
    assert checked.exit_code == 0, checked.output
    target = runner.invoke(cli, ["fit", data, "--model", "a*z", "--target", "log(y + 10)", "-q"])
    assert target.exit_code == 0, target.output
    assert ["y", "z"] in entry_columns(cache_dir)
    counted = runner.invoke(cli, ["eval", "sum(1)", "--data", data])  # no column read: rows from all of them
    assert counted.exit_code == 0 and float(counted.output) == 300
    refused = runner.invoke(cli, ["eval", "mean(name)", "--data", data])
    assert refused.exit_code == 2 and "name" in refused.output and "Traceback" not in refused.output


def test_a_source_error_is_one_line_on_the_command_line(tmp_path, runner):
    write(tmp_path / "a.csv", "x,y\n1,2\n")
    write(tmp_path / "b.csv", "x\n1\n")
    done = runner.invoke(cli, ["eval", "sum(x)", "--data", str(tmp_path / "*.csv")])
    assert done.exit_code == 2
    assert done.output == f"error: {tmp_path / 'b.csv'}: its header is x but {tmp_path / 'a.csv'}'s is x, y\n"


MEMORY_SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    import exprgrad
    from exprgrad.fitting import sources

    def data_bytes():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmData"))

    cost = "sum(log(cosh(a*x + b - y)))"
    small = {"x": np.linspace(0, 1, 5000), "y": np.linspace(1, 4, 5000)}
    exprgrad.fit(small, cost=cost, method="lbfgs")  # what a fit imports and starts, before the limit
    limit = data_bytes() + ALLOWANCE
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    if sys.argv[1] == "in-memory":
        try:
            exprgrad.fit(exprgrad.fitting.data.load_csv(sys.argv[2]), cost=cost, method="lbfgs")
        except MemoryError:
            print("MemoryError")
    else:
        sources.STREAM_BYTES = 1 << 20  # the file is "large": streamed
        result = exprgrad.fit(sys.argv[2], cost=cost, method="lbfgs")
        print(round(result.params["a"], 2), round(result.params["b"], 2))
    """
)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc/self/status")
def test_a_source_larger_than_the_memory_limit_is_fitted(tmp_path, cache_dir):
    rows, allowance = 6_000_000, 64 << 20  # 96 MB of float64 columns, 64 MiB of memory to spare
    rng = np.random.default_rng(3)
    x = rng.integers(0, 1000, 1_000_000) / 1000
    y = 3 * x + 1 + rng.integers(-50, 50, x.size) / 1000
    block = "".join(f"{a:.3f},{b:.3f}\n" for a, b in zip(x.tolist(), y.tolist())).encode()
    path = tmp_path / "data.csv"
    with open(path, "wb") as file:
        file.write(b"x,y\n")
        file.writelines(block for _ in range(rows // x.size))
    script = MEMORY_SCRIPT.replace("ALLOWANCE", str(allowance))
    env = {**os.environ, "PYTHONPATH": str(ROOT), cache.CACHE_VARIABLE: str(cache_dir)}

    def run(mode):
        done = subprocess.run(
            [sys.executable, "-c", script, mode, str(path)],
            check=False,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    assert run("in-memory") == "MemoryError"  # the limit is real: the file read whole does not fit
    assert run("streamed") == "3.0 1.0"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="user ids")
def test_the_default_cache_is_the_users_own_folder_in_the_temporary_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(cache.CACHE_VARIABLE)
    monkeypatch.setattr(cache.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    root = tmp_path / "tmp" / f"exprgrad-cache-{os.getuid()}"
    assert cache.cache_root() == str(root)
    write_shards(tmp_path / "shards", rows_text(10), 2)
    load(str(tmp_path / "shards" / "*.csv"))
    assert root.is_dir() and root.stat().st_mode & 0o777 == 0o700
    root.chmod(0o777)  # anyone may plant entries there: not read
    assert message(lambda: load(str(tmp_path / "shards" / "*.csv"))).startswith(
        f"the data cache folder {root} is not yours alone"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a pseudo-terminal")
def test_the_command_shows_progress_on_a_terminal_and_not_elsewhere(tmp_path, cache_dir):
    import pty  # POSIX only

    write_shards(tmp_path / "shards", rows_text(3000), 3)
    command = [sys.executable, "-m", "exprgrad", "eval", "sum(x)", "--data", "shards/*.csv"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), cache.CACHE_VARIABLE: str(cache_dir)}
    leader, follower = pty.openpty()
    done = subprocess.run(
        command, stderr=follower, stdout=subprocess.PIPE, cwd=tmp_path, env=env, check=False, timeout=120
    )
    os.close(follower)
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    assert done.returncode == 0
    line = shown.split("\r")[1]
    assert line.startswith("reading shards/*.csv: ") and line.endswith(" KiB of 114 KiB")
    assert shown.endswith("\r" + " " * len(line) + "\r")  # cleared in place
    piped = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, cache.CACHE_VARIABLE: str(tmp_path / "c2")},
        check=False,
    )
    assert piped.returncode == 0 and piped.stderr == "" and piped.stdout == done.stdout.decode()


def test_the_progress_line_is_cleared_before_an_error(tmp_path):
    write_shards(tmp_path / "shards", rows_text(3000), 3)
    with open(tmp_path / "shards" / "part2.csv", "a") as file:
        file.write("1,2,3\n")
    stream = io.StringIO()
    with pytest.raises(DataError):
        describe(str(tmp_path / "shards" / "*.csv")).open(progress=sources._TerminalProgress(stream))
    shown = stream.getvalue()
    assert "reading " in shown and shown.endswith("\r" + " " * len(shown.split("\r")[-3]) + "\r")


def test_a_conversion_that_finishes_second_keeps_the_entry_already_there(tmp_path, cache_dir):
    write_shards(tmp_path / "shards", rows_text(100), 2)
    expected = load(str(tmp_path / "shards" / "*.csv"))
    (folder,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    before = entry_files(cache_dir)

    def convert(writer):  # another process's conversion, finishing after the first
        writer.header = ("x", "y")
        writer.append("x", np.zeros(100))
        return {"header": ["x", "y"], "problems": {}, "files": [("a", 100)]}

    entry = cache._build(str(cache_dir), str(folder), folder.name.split("-")[0], convert, None)
    assert entry.folder == str(folder) and entry_files(cache_dir) == before
    assert sorted(p.name for p in cache_dir.iterdir()) == [folder.name]  # its temporary folder is gone
    same_columns(expected, load(str(tmp_path / "shards" / "*.csv")))


def test_a_folder_on_the_command_line_and_an_output_into_it(tmp_path, monkeypatch):
    from click.testing import CliRunner

    monkeypatch.setenv("EXPRGRAD_CACHE_DIR", str(tmp_path / "cache"))
    sample = Path(__file__).resolve().parent.parent / "samples" / "linear.csv"
    lines = sample.read_text().splitlines()
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "a.csv").write_text("\n".join(lines[:21]) + "\n")
    (folder / "b.csv").write_text("\n".join([lines[0], *lines[21:]]) + "\n")
    runner = CliRunner()
    whole = runner.invoke(cli, ["fit", str(sample), "--model", "a*x + b", "--target", "y", "-q"])
    split = runner.invoke(cli, ["fit", str(folder), "--model", "a*x + b", "--target", "y", "-q"])
    assert split.exit_code == 0
    assert split.output.splitlines()[-3:] == whole.output.splitlines()[-3:]  # the parameter table
    for data in (str(folder), str(folder / "*.csv")):
        before = (folder / "b.csv").read_text()
        refused = runner.invoke(
            cli, ["fit", data, "--model", "a*x + b", "--target", "y", "-o", str(folder / "b.csv")]
        )
        assert refused.exit_code == 2 and "is an input of this fit" in refused.output
        assert (folder / "b.csv").read_text() == before
