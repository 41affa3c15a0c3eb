"""Start-up: commands parse from the shipped LALR table, and import nothing they do not use."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exprgrad import lalr, parsing

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"

# Packages a command must not import unless it uses them: the heavy optional ones,
# the test tools, and Lark (a valid text is parsed from the shipped table).
NEVER_AT_START = ("numba", "dask", "distributed", "pyarrow", "scipy", "graphviz", "matplotlib", "hypothesis")


def _python(code: str, cwd: Path = ROOT, path: Path | str = ROOT) -> str:
    """Runs ``code`` in a fresh interpreter that imports exprgrad from ``path``; its stdout."""
    env = {**os.environ, "PYTHONPATH": str(path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


# ---- the shipped table -----------------------------------------------------------


def test_the_shipped_table_is_the_one_the_grammar_gives():
    assert parsing.table_path().read_text(encoding="utf-8") == parsing.table_text(), (
        "grammar/exprgrad.table.json is not the grammar's analysis; after editing the grammar run\n"
        '    python -c "from exprgrad.parsing import write_table; write_table()"'
    )


@pytest.mark.slow
def test_the_table_is_the_same_bytes_in_every_process():
    # Lark numbers states in an order that changes with the string hash seed.
    code = "from exprgrad.parsing import table_text; import sys; sys.stdout.write(table_text())"
    texts = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
        )
        texts.add(done.stdout)
    assert texts == {parsing.table_text()}


def test_the_saved_automaton_is_the_one_lark_gives():
    grammar = parsing.grammar_path().read_text(encoding="utf-8")
    built = lalr.Automaton(parsing._get_parser())
    loaded = lalr.loads(lalr.dumps(built, grammar), grammar)
    assert loaded.table == built.table
    assert (loaded.start_state, loaded.end_state) == (built.start_state, built.end_state)
    assert [r.saved() for r in loaded.rules] == [r.saved() for r in built.rules]
    assert [r.whole for r in loaded.rules] == [r.whole for r in built.rules]
    assert (loaded.scanner, loaded.skipper) == (built.scanner, built.skipper)


def _damaged(text: str, grammar: str) -> dict[str, str]:
    """Saved tables that must not be used, by what is wrong with them."""
    saved = json.loads(text)

    def edited(**changes) -> str:
        return json.dumps({**saved, **changes})

    table = [dict(row) for row in saved["table"]]
    symbol = next(iter(table[0]))
    out_of_range = [{**table[0], symbol: len(table)}, *table[1:]]
    return {
        "another grammar": edited(grammar=grammar + "\n// a comment"),
        "another format": edited(format=lalr.TABLE_FORMAT + 1),
        "cut short": text[: len(text) // 2],
        "empty": "",
        "not an object": "[1, 2]",
        "a state out of range": edited(table=out_of_range),
        "a rule out of range": edited(table=[{**table[0], symbol: ~len(saved["rules"])}, *table[1:]]),
        "a rule with a field missing": edited(rules=[saved["rules"][0][:-1], *saved["rules"][1:]]),
        "an end state out of range": edited(end_state=len(table)),
        "no table": edited(table=None),
        "a bad scanner": edited(scanner="(?P<"),
    }


def test_a_table_for_another_grammar_or_damaged_is_not_used():
    grammar = parsing.grammar_path().read_text(encoding="utf-8")
    text = parsing.table_path().read_text(encoding="utf-8")
    assert lalr.loads(text, grammar) is not None
    for what, damaged in _damaged(text, grammar).items():
        assert lalr.loads(damaged, grammar) is None, what


@pytest.mark.parametrize("what", ["missing", "another grammar", "cut short", "a state out of range"])
def test_without_a_usable_table_lark_analyses_the_grammar_and_parses_the_same(what, tmp_path, monkeypatch):
    grammar = parsing.grammar_path().read_text(encoding="utf-8")
    text = parsing.table_path().read_text(encoding="utf-8")
    programs = [
        "mean((a*x + b - y)^2)",
        "k in 1:16\nh[k] = tanh(sum[j](W[k,j]*x[j]) + b[k])\nmean((sum[k](v[k]*h[k]) + c - y)^2)",
    ]
    expected = [repr(parsing.parse(p)) for p in programs]  # the AST has no ==: fields, spans included
    table = tmp_path / "exprgrad.table.json"
    if what != "missing":
        table.write_text(_damaged(text, grammar)[what], encoding="utf-8")
    before = table.read_bytes() if table.exists() else None
    monkeypatch.setattr(parsing, "table_path", lambda: table)
    monkeypatch.setattr(parsing, "_automaton", None)
    monkeypatch.setattr(parsing, "_parser", None)
    assert [repr(parsing.parse(p)) for p in programs] == expected
    assert parsing._parser is not None  # Lark analysed the grammar
    assert (table.read_bytes() if table.exists() else None) == before  # and nothing was written
    with pytest.raises(Exception, match="missing closing parenthesis"):
        parsing.parse("(a + b")


# ---- what a command loads --------------------------------------------------------


@pytest.fixture
def extras(tmp_path) -> str:
    """A PYTHONPATH on which the optional packages are installed (stand-ins that import in no time)."""
    site = tmp_path / "extras"
    for name in NEVER_AT_START:
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text('__version__ = "99.0"\n')
    return f"{site}{os.pathsep}{ROOT}"


def _small_commands() -> list[list[str]]:
    """Small commands that use none of the optional packages, with --backend auto where there is one."""
    from exprgrad.cli import COMMANDS

    linear, network = str(SAMPLES / "linear.csv"), str(SAMPLES / "families" / "network.exprgrad")
    commands = [
        ["eval", "a*x + b", "--at", "a=1,b=2", "--data", linear],
        ["eval", "mean((a*x + b - y)^2)", "--at", "a=1,b=2", "--data", linear],
        ["diff", "mean((a*x + b - y)^2)"],
        ["diff", "@" + network],
        ["diff", "mean((a*x + b - y)^2)", "--at", "a=1,b=2", "--data", linear],
        ["check", "mean((a*x + b - y)^2)", "--at", "a=1,b=2", "--data", linear],
    ]
    for command in list(commands):
        if any(param.name == "backend" for param in COMMANDS[command[0]].params):
            commands.append([*command, "--backend", "auto"])  # auto must not load a compiler for this
    return commands


def test_small_commands_import_no_extra_and_parse_from_the_saved_table(extras):
    code = f"""
import sys
from exprgrad import parsing
from exprgrad.cli import cli
assert parsing._automaton is None and parsing._parser is None, "the parser was built at import"
for args in {_small_commands()!r}:
    try:
        cli(args)
    except SystemExit as exc:
        assert exc.code == 0, (args, exc.code)
assert parsing._automaton is not None
print(parsing._parser, sorted(m for m in {NEVER_AT_START + ("lark",)!r} if m in sys.modules))
"""
    assert _python(code, path=extras).splitlines()[-1] == "None []"


def test_importing_the_cli_or_the_library_loads_no_extra(extras):
    code = (
        "import sys, exprgrad, exprgrad.cli\n"
        f"print(sorted(m for m in {NEVER_AT_START + ('lark',)!r} if m in sys.modules))"
    )
    assert _python(code, path=extras) == "[]\n"


def test_the_stand_ins_are_what_an_import_finds(extras):
    code = "import numba, pyarrow; print(numba.__version__, pyarrow.__file__)"
    version, where = _python(code, path=extras).split()
    assert version == "99.0" and where.startswith(extras.split(os.pathsep)[0])


def test_a_syntax_error_is_still_reported_in_words_from_the_saved_table():
    code = (
        "from exprgrad import parsing\n"
        "try:\n    parsing.parse('(a + b')\nexcept Exception as exc:\n    print(exc.message)\n"
        "print(parsing._parser)"
    )
    message, parser = _python(code).splitlines()
    assert message.startswith("missing closing parenthesis") and parser == "None"


# ---- a read-only install ---------------------------------------------------------


def _install(tmp_path: Path, grammar_suffix: str = "") -> Path:
    """exprgrad laid out as the wheel lays it out (grammar inside the package), under tmp_path/site."""
    site = tmp_path / "site"
    shutil.copytree(ROOT / "exprgrad", site / "exprgrad", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "grammar", site / "exprgrad" / "grammar")
    grammar = site / "exprgrad" / "grammar" / "exprgrad.lark"
    grammar.write_text(grammar.read_text(encoding="utf-8") + grammar_suffix, encoding="utf-8")
    return site


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("stale", [False, True], ids=["shipped table", "table of another grammar"])
def test_a_read_only_install_parses_and_writes_nothing(tmp_path, stale):
    site = _install(tmp_path, "\n// edited after the table was made\n" if stale else "")
    before = _tree(site)
    for path in [site, *site.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    try:
        code = (
            "import exprgrad\nfrom exprgrad import parsing\n"
            "f = exprgrad.parse('mean((a*x + b - y)^2)')\n"
            "print(f.params, parsing._parser is None)\n"
            "print(exprgrad.__file__)\nprint(parsing.grammar_path())"
        )
        out = _python(code, cwd=tmp_path, path=site).splitlines()
        assert out[0] == f"['a', 'b'] {not stale}"  # the shipped table, or Lark's analysis in memory
        assert out[1:] == [
            str(site / "exprgrad" / "__init__.py"),
            str(site / "exprgrad" / "grammar" / "exprgrad.lark"),
        ]
    finally:
        for path in [site, *site.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    assert _tree(site) == before
