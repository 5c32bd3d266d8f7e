"""core/ is the pure bottom layer: it imports nothing above it, and no import cycles.

Every import counts, at the top of a module, inside a function or under TYPE_CHECKING: each is
a dependency of the code. Below core sit only `kubectl_omepvc` itself (`__version__`) and
`kubectl_omepvc.errors`, which import nothing of the project's.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = "kubectl_omepvc"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE
BELOW_CORE = {PACKAGE, f"{PACKAGE}.errors"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for p in ROOT.rglob("*.py")}


def imports_of(name: str, source: str, known: Mapping[str, object]) -> set[str]:
    """The project modules `source` (module `name`) imports, anywhere in it."""
    package = name if _is_package(name, known) else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import mod` imports the module pkg.mod when there is one.
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t == PACKAGE or t.startswith(PACKAGE + ".")}
    return found - {name}


def _is_package(name: str, known: Mapping[str, object]) -> bool:
    return any(other.startswith(name + ".") for other in known)


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Each import cycle once, as the modules along it (Tarjan's strongly connected parts)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = []
            while True:
                top = stack.pop()
                part.append(top)
                if top == node:
                    break
            if len(part) > 1 or node in graph.get(node, ()):
                found.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def core_problems(sources: Mapping[str, str]) -> list[str]:
    """What breaks the layering in `sources` (module name -> source text)."""
    graph = {name: imports_of(name, text, sources) for name, text in sources.items()}
    core = f"{PACKAGE}.core"
    problems = []
    for name in sorted(graph):
        if name == core or name.startswith(core + "."):
            above = sorted(m for m in graph[name] if not m.startswith(core) and m not in BELOW_CORE)
            problems += [f"{name} imports {m}, above core" for m in above]
    for name in sorted(BELOW_CORE & set(graph)):
        problems += [f"{name} (below core) imports {m}" for m in sorted(graph[name])]
    core_graph = {n: {m for m in e if m.startswith(core)} for n, e in graph.items()}
    core_graph = {n: e for n, e in core_graph.items() if n.startswith(core)}
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(core_graph)]
    return problems


def test_core_imports_nothing_above_it_and_has_no_cycles() -> None:
    sources = {name: path.read_text() for name, path in project_modules().items()}
    assert f"{PACKAGE}.core.status" in sources and f"{PACKAGE}.printers" in sources
    assert core_problems(sources) == []


@pytest.mark.parametrize(
    ("sources", "problem"),
    [
        (
            {
                f"{PACKAGE}": "",
                f"{PACKAGE}.core": "",
                f"{PACKAGE}.core.a": f"from {PACKAGE} import printers",
                f"{PACKAGE}.printers": "",
            },
            f"{PACKAGE}.core.a imports {PACKAGE}.printers, above core",
        ),
        (
            {
                f"{PACKAGE}": "",
                f"{PACKAGE}.core": "",
                f"{PACKAGE}.core.a": "def f():\n    from kubectl_omepvc.api import client\n",
                f"{PACKAGE}.api": "",
                f"{PACKAGE}.api.client": "",
            },
            f"{PACKAGE}.core.a imports {PACKAGE}.api.client, above core",
        ),
        (
            {
                f"{PACKAGE}": "",
                f"{PACKAGE}.core": "",
                f"{PACKAGE}.core.a": "from . import b",
                f"{PACKAGE}.core.b": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from kubectl_omepvc.core.a import X\n"
                ),
            },
            f"import cycle: {PACKAGE}.core.a -> {PACKAGE}.core.b",
        ),
        (
            {
                f"{PACKAGE}": "",
                f"{PACKAGE}.errors": f"from {PACKAGE}.core import naming",
                f"{PACKAGE}.core": "",
                f"{PACKAGE}.core.naming": "",
            },
            f"{PACKAGE}.errors (below core) imports {PACKAGE}.core.naming",
        ),
    ],
    ids=["printers", "api-inside-a-function", "cycle-under-type-checking", "errors-upward"],
)
def test_the_check_finds_what_breaks_the_layering(sources: dict[str, str], problem: str) -> None:
    assert problem in core_problems(sources)
