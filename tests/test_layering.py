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
    "exprgrad.graph",
    "exprgrad.kernels",
    "exprgrad.ops",
    "exprgrad.ast_nodes",
    "exprgrad.syntax_errors",
    "exprgrad.lalr",
    "exprgrad.parsing",
    "exprgrad.lower",
    "exprgrad.passes",
    "exprgrad.backends",
    "exprgrad.drawing",
    "exprgrad.check",
    "exprgrad.function",
    "exprgrad.fitting",
    "exprgrad.cli",
]


def stage(module: str) -> int | None:
    for rank, prefix in enumerate(STAGES):
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


# A stage does one job: these modules are given what they need and must not compute it themselves.
FORBIDDEN = {
    # render draws the graphs and values it is given; exprgrad.drawing differentiates and evaluates.
    "exprgrad.backends.render": ("exprgrad.passes.diff", "exprgrad.backends.evaluate"),
}


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_a_stage_does_not_reach_back_for_work_it_is_given(module):
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    package = module.rsplit(".", 1)[0]
    names = []  # every module and module.name imported, so `from . import evaluate` counts too
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            names += [target] + [f"{target}.{alias.name}" for alias in node.names]
    reached = [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN[module])]
    assert not reached, f"{module} imports {reached[0]}"


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
DEFERRED_PACKAGES = ("scipy", "graphviz", "matplotlib")


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
