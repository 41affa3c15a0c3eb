"""The pipeline runs one way: a module imports only stages before its own, and nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "exprgrad"

# Stages in pipeline order; a module may import its own stage or earlier ones.
STAGES = [
    "exprgrad.errors",
    "exprgrad.names",
    "exprgrad.interning",
    "exprgrad.graph",
    "exprgrad.kernels",
    "exprgrad.memory",  # sizes checked against the memory there is: lowering, backends and fit use it
    ("exprgrad.ops", "exprgrad.build"),  # one stage: the registry and its builders use each other
    "exprgrad.graph_text",  # graphs as text, for a cluster's workers
    "exprgrad.ast_nodes",
    "exprgrad.syntax_errors",
    "exprgrad.lalr",
    "exprgrad.parsing",
    "exprgrad.scope",
    "exprgrad.indexing",
    "exprgrad.lower",
    "exprgrad.selection",
    "exprgrad.passes.signed",  # the derivative passes' helpers, below diff, which uses them
    "exprgrad.passes.families",
    "exprgrad.passes.forward",
    "exprgrad.passes",
    "exprgrad.backends",
    "exprgrad.engines",  # where passes run: here, or on a Dask cluster (over backends' schedules)
    "exprgrad.drawing",
    "exprgrad.check",
    "exprgrad.function",
    "exprgrad.fitting",
    "exprgrad.cli",
]


def stage(module: str) -> int | None:
    for rank, prefixes in enumerate(STAGES):
        for prefix in (prefixes,) if isinstance(prefixes, str) else prefixes:
            if module == prefix or module.startswith(prefix + "."):
                return rank
    return None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[str]:
    """Every exprgrad module ``path`` imports (at the top or inside functions)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("exprgrad")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("exprgrad"):
                continue
            # `from .. import graph` imports the module exprgrad.graph.
            candidates = [f"{target}.{alias.name}" for alias in node.names]
            found += [c if stage(c) is not None and stage(c) != stage(target) else target for c in candidates]
    return found


# Every module but the package's own __init__ and __main__, which sit above all stages.
MODULES = sorted(
    p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.name not in ("__init__.py", "__main__.py")
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_flow_one_way(path):
    own = stage(module_name(path))
    assert own is not None, f"{module_name(path)} is not in STAGES"
    for target in imported_modules(path):
        if target == "exprgrad":
            continue  # the package itself: __version__
        assert stage(target) is not None, target
        assert stage(target) <= own, f"{module_name(path)} imports {target}, a later stage"


def test_nothing_outside_the_cli_imports_it():
    for path in PACKAGE.rglob("*.py"):
        if "cli" in path.relative_to(PACKAGE).parts or path.name == "__main__.py":
            continue
        assert not any(stage(t) == STAGES.index("exprgrad.cli") for t in imported_modules(path)), path


# A stage does one job: the reach-backs each module must not make, as data. A rule
# applies to every module under ``where`` (but those under ``unless``); it names the
# modules they must not import (``imports``: exprgrad's or any package, with their
# submodules), the functions they must not call (``calls``: a plain name or the last
# part of a dotted one: ``print``, ``to_text``, ``printing.to_text``), and for a
# package they may use for a few things only, the only names of it they may use
# (``only``). Each is checked over the module's AST: imports at the top or inside
# functions, calls and attributes anywhere.
REACH_BACKS = [
    {
        "where": "exprgrad.backends.render",
        "why": "render draws the graphs and values it is given (exprgrad.drawing differentiates and evaluates)",
        "imports": ("exprgrad.passes", "exprgrad.backends.evaluate", "exprgrad.check"),
        "calls": ("diff", "hessian", "jacobian", "adjoints", "simplify", "evaluate", "compile_schedule"),
    },
    {
        "where": "exprgrad.passes",
        "why": "a pass is Graph -> Graph: it never prints, evaluates or renders",
        "imports": ("exprgrad.backends", "exprgrad.check", "exprgrad.drawing", "graphviz", "click"),
        "calls": (
            "print",
            "echo",
            "to_text",
            "to_latex",
            "to_python",
            "to_dot",
            "render",
            "evaluate",
            "compile_schedule",
        ),
    },
    *(
        {
            "where": lowering,
            "why": "lowering builds the graph; it never calls the printer or evaluates",
            "imports": ("exprgrad.backends", "exprgrad.passes"),
            "calls": ("print", "to_text", "to_latex", "to_python", "evaluate", "compile_schedule"),
        }
        for lowering in ("exprgrad.scope", "exprgrad.indexing", "exprgrad.lower")
    ),
    {
        "where": "exprgrad.cli",
        "why": "a command parses options and calls the library; numbers only to test and format them",
        "imports": ("scipy", "statistics", "fractions", "exprgrad.kernels"),
        "only": {"numpy": ("all", "isfinite", "ndim", "full", "ndarray"), "math": ("isfinite",)},
    },
    {
        "where": "exprgrad",
        "unless": ("exprgrad.cli", "exprgrad.__main__"),
        "why": "the library speaks Python: only exprgrad.cli uses click",
        "imports": ("click",),
    },
]


def applies(rule, module: str) -> bool:
    def under(prefix):
        return module == prefix or module.startswith(prefix + ".")

    return under(rule["where"]) and not any(under(p) for p in rule.get("unless", ()))


def reach_backs(source: str, package: str, rule) -> list[str]:
    """What a module's ``source`` (its package: ``package``) does that ``rule`` forbids, each as 'line N: what'."""
    tree = ast.parse(source)
    forbidden, only = rule.get("imports", ()), rule.get("only", {})
    aliases = {}  # local name -> the package in ``only`` it stands for
    found = []

    def imported(target: str, lineno: int):
        if any(target == f or target.startswith(f + ".") for f in forbidden):
            found.append(f"line {lineno}: imports {target}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported(alias.name, node.lineno)
                if alias.name in only:
                    aliases[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import evaluate` imports the module exprgrad.backends.evaluate
                imported(f"{target}.{alias.name}", node.lineno)
                if target in only and alias.name not in only[target]:
                    found.append(f"line {node.lineno}: uses {target}.{alias.name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if any(called == c or called.endswith("." + c) for c in rule.get("calls", ())):
                found.append(f"line {node.lineno}: calls {called}")
        elif (
            isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
        ):
            package_name = aliases[node.value.id]
            if node.attr not in only[package_name]:
                found.append(f"line {node.lineno}: uses {package_name}.{node.attr}")
    return found


CHECKED = [
    (rule, path)
    for rule in REACH_BACKS
    for path in MODULES + [PACKAGE / "__init__.py"]
    if applies(rule, module_name(path))
]


@pytest.mark.parametrize(
    ("rule", "path"), CHECKED, ids=[f"{r['where']}:{module_name(p)}" for r, p in CHECKED]
)
def test_a_stage_does_not_reach_back_for_work_it_is_given(rule, path):
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = reach_backs(path.read_text(encoding="utf-8"), package, rule)
    assert not found, f"{module_name(path)}: {rule['why']}; it " + "; ".join(found)


def test_every_rule_applies_to_a_module():
    for rule in REACH_BACKS:
        assert any(applies(rule, module_name(p)) for p in MODULES), f"no module under {rule['where']}"


def rule_for(where: str):
    return next(rule for rule in REACH_BACKS if rule["where"] == where)


@pytest.mark.parametrize(
    ("where", "package", "source", "expected"),
    [
        (
            "exprgrad.backends.render",
            "exprgrad.backends",
            "from ..passes.diff import diff\n",
            "line 1: imports exprgrad.passes.diff.diff",
        ),
        (
            "exprgrad.backends.render",
            "exprgrad.backends",
            "from .. import passes\n",
            "line 1: imports exprgrad.passes",
        ),
        (
            "exprgrad.backends.render",
            "exprgrad.backends",
            "from . import evaluate\n",
            "line 1: imports exprgrad.backends.evaluate",
        ),
        (
            "exprgrad.backends.render",
            "exprgrad.backends",
            "def f(g):\n    return drawing.diff(g)\n",
            "line 2: calls drawing.diff",
        ),
        ("exprgrad.passes", "exprgrad.passes", "print(1)\n", "line 1: calls print"),
        (
            "exprgrad.lower",
            "exprgrad",
            "from .backends.printing import to_text\n",
            "line 1: imports exprgrad.backends.printing.to_text",
        ),
        (
            "exprgrad.cli",
            "exprgrad.cli",
            "import numpy as np\nnp.linalg.solve(m, v)\n",
            "line 2: uses numpy.linalg",
        ),
        ("exprgrad.cli", "exprgrad.cli", "from numpy import sqrt\n", "line 1: uses numpy.sqrt"),
        ("exprgrad", "exprgrad", "import click\n", "line 1: imports click"),
    ],
)
def test_the_rules_see_each_kind_of_reach_back(where, package, source, expected):
    assert expected in reach_backs(source, package, rule_for(where))


def test_every_error_class_is_defined_in_errors():
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [ast.unparse(base) for base in node.bases]
                assert not any(base.endswith(("Error", "Timeout", "TooLarge")) for base in bases), (
                    f"{module_name(path)} defines {node.name}({', '.join(bases)}): define it in exprgrad/errors.py"
                )


# Imports inside functions save start-up time only for packages that take long to
# load and that most runs never need; everything else is imported at the top.
# lark: a valid text is parsed from the shipped table (exprgrad.parsing); Lark loads
# only for a syntax error's message, or to analyse a grammar the table was not made from.
# pyarrow: only a Parquet data source reads it (exprgrad.fitting.parquet).
# distributed: only --engine dask (exprgrad.engines.cluster).
# threadpoolctl: only a run over data limits BLAS's threads (exprgrad.backends.chunks).
# dask, multiprocessing: only the Dask engine's LocalCluster start (its config, its fork server:
# 35 ms to import).
# numba: only while the compiled backend compiles a kernel (its SLP setting); the generated
# kernel modules import it themselves.
DEFERRED_PACKAGES = (
    "scipy",
    "graphviz",
    "matplotlib",
    "lark",
    "pyarrow",
    "distributed",
    "threadpoolctl",
    "dask",
    "multiprocessing",
    "numba",
)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_only_heavy_optional_packages_are_imported_inside_functions(path):
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in DEFERRED_PACKAGES, (
                    f"{module_name(path)}:{node.lineno} imports {name} inside {function.name}: import it at the top"
                )


# Tests share code through helpers.py, strategies.py and conftest.py, never through each other.
TEST_MODULES = sorted(Path(__file__).resolve().parent.glob("*.py"))


@pytest.mark.parametrize("path", TEST_MODULES, ids=lambda p: p.stem)
def test_test_modules_do_not_import_each_other(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert not any(part.startswith("test_") for part in name.split(".")), (
                f"{path.name}:{node.lineno} imports {name}: move what it shares to helpers.py or strategies.py"
            )
