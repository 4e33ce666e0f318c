"""The package's shape: imports flow one way through the pipeline's stages, no
module imports itself back through another, and every package ships.

The stages, lowest first (a module may import its own stage and those below):
foundation (errors, sizes, dtypes, releases, records) < inputs < model < vllm < memory
< api < workflows < render < cli.  Every import counts, also those inside
functions and under TYPE_CHECKING; only the ``kvplan`` facade is exempt, since
it re-exports the API lazily.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "kvplan"
STAGES = ("foundation", "inputs", "model", "vllm", "memory", "api", "workflows", "render", "cli")
FOUNDATION = {"kvplan.errors", "kvplan.sizes", "kvplan.dtypes", "kvplan.releases", "kvplan.records"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def stage_of(module: str) -> str:
    if module == "kvplan.__main__":  # python -m kvplan
        return "cli"
    if module in FOUNDATION:
        return "foundation"
    second = module.split(".")[1] if "." in module else ""
    if second in STAGES:
        return second
    raise AssertionError(f"{module} belongs to no stage: place it in one of {STAGES}")


def kvplan_imports(path: Path) -> set[str]:
    """Every kvplan module ``path`` imports (``from kvplan.x import y`` counts y when it is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("kvplan")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kvplan"):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists() or (
                    ROOT / Path(*candidate.split("."))
                ).is_dir():
                    found.add(candidate)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "kvplan"))
def test_imports_flow_down_the_pipeline(module):
    mine = STAGES.index(stage_of(module))
    for target in sorted(kvplan_imports(MODULES[module])):
        assert target != "kvplan", f"{module} imports the kvplan facade; import the module itself"
        theirs = STAGES.index(stage_of(target))
        assert theirs <= mine, f"{module} ({STAGES[mine]}) imports {target} ({STAGES[theirs]}), a later stage"


def test_no_import_cycles():
    graph = {m: kvplan_imports(p) - {m} for m, p in MODULES.items() if m != "kvplan"}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                cycle = path[path.index(t) :] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if state.get(t) is None:
                visit(t)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_every_package_is_listed_for_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {module_name(p) for p in PACKAGE.rglob("__init__.py")} | {"kvplan.presets"}
    assert listed == on_disk
