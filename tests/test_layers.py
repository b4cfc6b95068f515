"""The package's floors stay floors: every import in `lipsync` (function-local ones included)
runs sideways or down, and no modules import each other in a circle.

The floors, bottom up (a module may import its own floor and those below):

    0  lipsync (the package's face), errors, stages, options, progress, smoothing, cache, backends, io/
    1  face/
    2  render/
    3  generators/      a generator composes a planner and a renderer
    4  eval/
    5  training/        the dataset and the trainer use the judge
    6  pipeline, run_options
    7  batch, live
    8  cluster
    9  cli, web/, demo
"""
from __future__ import annotations

import ast
import os
from typing import Dict, List, Set, Tuple

import pytest

from conftest import ROOT

FLOORS: List[Tuple[str, ...]] = [
    ("lipsync", "lipsync.errors", "lipsync.stages", "lipsync.options", "lipsync.progress", "lipsync.smoothing",
     "lipsync.cache", "lipsync.backends", "lipsync.io"),
    ("lipsync.face",),
    ("lipsync.render",),
    ("lipsync.generators",),
    ("lipsync.eval",),
    ("lipsync.training",),
    ("lipsync.pipeline", "lipsync.run_options"),
    ("lipsync.batch", "lipsync.live"),
    ("lipsync.cluster",),
    ("lipsync.cli", "lipsync.web", "lipsync.demo"),
]


def package_sources(root: str) -> Dict[str, str]:
    """{module name: source text} of every .py file of the package in `root`/lipsync."""
    out = {}
    base = os.path.join(root, "lipsync")
    for folder, _, files in os.walk(base):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    out[".".join(rel)] = f.read()
    return out


def imports(sources: Dict[str, str], packages: Set[str]) -> Dict[str, Set[str]]:
    """{module: the package modules it imports anywhere in its text}, each import resolved to the
    longest module name that exists (`from . import x` is module x when x is one)."""
    graph: Dict[str, Set[str]] = {}
    for name, text in sources.items():
        here = name if name in packages else name.rpartition(".")[0]
        found: Set[str] = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = here.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in sources else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in sources:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def floor_of(module: str) -> int:
    """The floor of a module: that of the longest entry of FLOORS it is, or lies inside."""
    best, floor = "", None
    for k, names in enumerate(FLOORS):
        for entry in names:
            if (module == entry or module.startswith(entry + ".")) and len(entry) > len(best):
                best, floor = entry, k
    if floor is None:
        raise AssertionError(f"{module} is on no floor: add it to FLOORS in {__file__}")
    return floor


def upward(graph: Dict[str, Set[str]]) -> List[str]:
    """'a -> b' for each import of a module on a higher floor."""
    return sorted(f"{a} -> {b}" for a, bs in graph.items() for b in bs if floor_of(b) > floor_of(a))


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _graph(sources: Dict[str, str]) -> Dict[str, Set[str]]:
    packages = {name for name in sources if name.count(".") <= 1 and any(m.startswith(name + ".") for m in sources)}
    return imports(sources, packages | {"lipsync"})


@pytest.fixture(scope="module")
def package_graph() -> Dict[str, Set[str]]:
    return _graph(package_sources(ROOT))


def test_every_module_is_on_a_floor(package_graph):
    for module in package_graph:
        floor_of(module)


def test_no_import_runs_up_a_floor(package_graph):
    assert upward(package_graph) == []


def test_no_modules_import_each_other_in_a_circle(package_graph):
    assert cycles(package_graph) == []


def test_the_check_sees_function_local_imports_circles_and_upward_imports():
    """The checker itself, on a made-up package: it must find what the tests above forbid."""
    fake = {
        "lipsync": "",
        "lipsync.io": "",
        "lipsync.io.media": "def f():\n    from ..render import loop\n",  # upward, and function-local
        "lipsync.render": "",
        "lipsync.render.loop": "from ..io import media\n",
        "lipsync.generators": "",
        "lipsync.generators.sync": "from .sync_live import LivePlan\n",
        "lipsync.generators.sync_live": "def g():\n    from . import sync\n",
        "lipsync.errors": "import lipsync.io.media as m\n",
    }
    graph = _graph(fake)
    assert graph["lipsync.io.media"] == {"lipsync.render.loop"}
    assert graph["lipsync.generators.sync_live"] == {"lipsync.generators.sync"}
    assert upward(graph) == ["lipsync.io.media -> lipsync.render.loop"]
    assert sorted(cycles(graph)) == [["lipsync.generators.sync", "lipsync.generators.sync_live"],
                             ["lipsync.io.media", "lipsync.render.loop"]]
    with pytest.raises(AssertionError, match="on no floor"):
        floor_of("lipsync_extra.module")

