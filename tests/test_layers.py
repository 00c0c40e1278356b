"""The import graph: every import runs down the layers, and no modules import each other.

detectors/ (pure numpy, no I/O) <- connectors/ and grafana/ <- streams/ <- silkwatch/,
and bench/ on top, never imported by the product. The graph is read from the source with
``ast`` (imports inside functions included: a lazy import is still a dependency), so a
module that is never imported by any test is checked too.

``python -m tests.test_layers`` prints the graph's summary: modules, edges, and the
edges between each pair of top-level packages.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: a module may import from its own layer and the layers below it
LAYERS = {"detectors": 0, "connectors": 1, "grafana": 1, "streams": 2, "silkwatch": 3, "bench": 4}


#: the folders installed as ``silkwatch.<folder>`` (pyproject.toml package-dir)
MAPPED = ("detectors", "connectors", "grafana", "streams")


def _layer(name: str) -> str | None:
    """The layer of a dotted module name: ``silkwatch.detectors.x`` is in ``detectors``,
    ``silkwatch.cli`` in ``silkwatch``, ``bench.x`` in ``bench``; None for no layer.

    >>> _layer("silkwatch.streams.app"), _layer("silkwatch.commands.uniq"), _layer("numpy")
    ('streams', 'silkwatch', None)
    """
    parts = name.split(".")
    if parts[0] == "silkwatch" and len(parts) > 1 and parts[1] in MAPPED:
        return parts[1]
    return parts[0] if parts[0] in LAYERS else None


#: the scorers of detectors/: each reads aggregates and the ground floor, never another scorer
SCORERS = frozenset(
    f"silkwatch.detectors.{name}"
    for name in ("beacon", "dns", "exfil", "strobe", "upload", "volume")
)

Graph = Mapping[str, frozenset[str]]


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name → source file, for every package in :data:`LAYERS`."""
    modules = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if package in MAPPED:  # installed as silkwatch.<folder>
                parts = ("silkwatch", *parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(tree: ast.AST, known: set[str]) -> Iterator[str]:
    """The first-party modules one module imports: ``from a import b`` is ``a.b`` when
    that is a module (or a compiled kernel), else ``a``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                name = f"{node.module}.{alias.name}"
                yield name if name in known or alias.name.startswith("_") else node.module


def import_graph(root: Path = REPO) -> dict[str, frozenset[str]]:
    """Module → the first-party modules it imports (itself left out)."""
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        targets = _imported(ast.parse(path.read_text(), str(path)), set(modules))
        graph[name] = frozenset(t for t in targets if _layer(t) in LAYERS and t != name)
    return graph


def upward(graph: Graph) -> list[str]:
    """Imports from a lower layer to a higher one, as ``a -> b`` lines.

    >>> upward({"detectors.x": frozenset({"streams.y"}), "streams.y": frozenset({"detectors.x"})})
    ['detectors.x -> streams.y']
    """
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if LAYERS[_layer(target)] > LAYERS[_layer(source)]
    )


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted.

    >>> ring = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    >>> cycles({name: frozenset(targets) for name, targets in ring.items()})
    [['a', 'b', 'c']]
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_graph_sees_lazy_and_package_imports():
    """The reader finds an import inside a function and a ``from package import module``."""
    graph = import_graph()
    assert "silkwatch.evaluation.harness" in graph["silkwatch.commands.evaluate"]  # lazy
    # from silkwatch.detectors import groupby
    assert "silkwatch.detectors.groupby" in graph["silkwatch.commands.uniq"]
    # a compiled kernel
    assert "silkwatch.detectors._hashgroup" in graph["silkwatch.detectors.grouping"]


def test_every_import_runs_down_the_layers():
    assert upward(import_graph()) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_scorers_do_not_import_each_other():
    graph = import_graph()
    assert {scorer: sorted(graph[scorer] & SCORERS) for scorer in SCORERS} == {
        scorer: [] for scorer in SCORERS
    }


def summary(graph: Graph) -> str:
    """Modules, edges, and edges between top-level packages (``python -m tests.test_layers``)."""
    between = Counter(
        (_layer(source), _layer(target)) for source, targets in graph.items() for target in targets
    )
    lines = [f"{len(graph)} modules, {sum(map(len, graph.values()))} imports"]
    lines += [f"  {a} -> {b}: {n}" for (a, b), n in sorted(between.items())]
    lines += [f"upward: {len(upward(graph))}, cycles: {len(cycles(graph))}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(import_graph()))
