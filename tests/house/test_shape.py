"""The house's shape, measured from the code's own imports: arrows run one way, no package
imports another that imports it back, a folder can be read in one sitting, a module too.

Layers, bottom up (a package may import only the layers below it, never one beside it):

    core/                          the shared ground floor, imports nothing of ours
    db/, simulators/               the database; the stand-ins for SDP and the LLM
    pipeline/                      the Ray-free domain, in stage packages
    serve_app/                     the Ingress's logic (HTTP)
    actors/                        Serve deployments and Ray actors around the logic
    kuberay/                       manifests from the deployment options
    local_stack/                   what one machine starts for the demo, tests and benchmarks
    cli/, benchmarks/              entry points
    scripts/                       entry points that may also use the CLI (Ray Jobs, the docs'
                                   generated references, which document the Typer app)

Inside ``pipeline/`` the stage packages may use each other in one direction only (no cycle).
Every import counts, also one inside a function: a lazy import is still an arrow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {
    "core": 0,
    "db": 1,
    "simulators": 1,
    "pipeline": 2,
    "serve_app": 3,
    "actors": 4,
    "kuberay": 5,
    "local_stack": 6,
    "cli": 7,
    "benchmarks": 7,
    "scripts": 8,
}
MAX_MODULES_PER_FOLDER = 10  # Python modules besides the package's __init__.py
MAX_LINES_PER_MODULE = 450


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top in LAYERS:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in MODULES:
            return candidate
    return None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target)
            if resolved is not None and resolved != module:
                yield resolved, node.lineno


EDGES = sorted(
    {(a, b, line) for a, path in MODULES.items() for b, line in _imports(a, path)},
)


def _top(module: str) -> str:
    return module.split(".")[0]


def _package(module: str) -> str:
    """The folder a module lives in (a package's ``__init__`` belongs to its own folder)."""
    path = MODULES[module]
    return ".".join(path.parent.relative_to(ROOT).parts)


def test_every_import_runs_down_the_layers() -> None:
    upward = [
        f"{a} -> {b} (line {line})"
        for a, b, line in EDGES
        if _top(a) != _top(b) and LAYERS[_top(b)] >= LAYERS[_top(a)]
    ]
    assert upward == [], "imports that run up or across the layers:\n" + "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_package_imports_one_that_imports_it_back() -> None:
    """Folders as nodes (a parent folder and its own subfolders aside); top-level packages too."""
    folders: dict[str, set[str]] = defaultdict(set)
    tops: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in EDGES:
        pa, pb = _package(a), _package(b)
        if pa != pb and not pa.startswith(pb + ".") and not pb.startswith(pa + "."):
            folders[pa].add(pb)
        if _top(a) != _top(b):
            tops[_top(a)].add(_top(b))
    assert _cycles(folders) == []
    assert _cycles(tops) == []


def test_no_modules_import_each_other_in_a_circle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in EDGES:
        graph[a].add(b)
    assert _cycles(graph) == []


def test_a_folder_holds_at_most_ten_modules() -> None:
    counts: dict[str, list[str]] = defaultdict(list)
    for path in MODULES.values():
        if path.name != "__init__.py":
            counts[str(path.parent.relative_to(ROOT))].append(path.name)
    crowded = {f: len(names) for f, names in counts.items() if len(names) > MAX_MODULES_PER_FOLDER}
    assert crowded == {}


def test_a_module_is_at_most_450_lines() -> None:
    lengths = {str(p.relative_to(ROOT)): p.read_text().count("\n") for p in MODULES.values()}
    assert {p: n for p, n in lengths.items() if n > MAX_LINES_PER_MODULE} == {}


def test_the_measures_see_the_whole_house() -> None:
    """A check that reads nothing passes anything: the walk must find the known packages and
    their arrows (one known arrow per layer boundary)."""
    assert len(MODULES) > 150
    edges = {(a, b) for a, b, _ in EDGES}
    for arrow in [
        ("db.pool", "core.fair_gate"),
        ("pipeline.enhancer", "db.pool"),
        ("actors.enhancer", "pipeline.enhancer"),
        ("actors.ingress", "serve_app.ingress"),
        ("cli.serve", "local_stack.ray_serve"),
    ]:
        assert arrow in edges, arrow
