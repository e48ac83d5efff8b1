"""The shape of the package, checked: which part of mesh/ may import which, no circles, and
a test module mirroring every module (mitmproxy's habit: ``mesh/x/y.py`` is tested in
``tests/mesh/x/test_y.py``; ``__main__.py`` in ``test_main.py``).

Every ``import`` statement of every module under mesh/ counts — at the top, inside a
function, under ``if TYPE_CHECKING`` — because each is a dependency someone has to
understand. ``LAYERS`` lists the parts of the package from the bottom up: a module may import
its own part and the parts of lower layers, never a part of its own layer or a higher one.
A new part (a new package or top-level module) fails the check until it is placed here.

Modules stay under ``MAX_MODULE_LINES`` lines. Run it as a script for the whole picture (back
edges, import circles, modules without a mirroring test, modules too long; exit 1 on any):
``.venv/bin/python -m tests.test_architecture``.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "mesh"

LAYERS: tuple[tuple[str, ...], ...] = (
    # Plain data with no mesh imports: the topology, the header lists, telemetry's shapes
    # (Istio's metric labels, exposition, b3, Zipkin spans, the trace store).
    ("mesh.headers", "mesh.topology", "mesh.telemetry"),
    # The snapshot's format: endpoints, the service catalog.
    ("mesh.snapshot",),
    # The pure core, bottom up: Istio config (model, loader, validation, host names), the
    # resilience primitives that read the model, the routing engine that uses both.
    ("mesh.config",),
    # Kubernetes manifests and profiles → the topology (pure; reads YAML with mesh.config's
    # reader).
    ("mesh.workloads",),
    # Interpreters of the config: resilience primitives; security (mTLS, authorization,
    # identity and the CA) — neither imports the other.
    ("mesh.resilience", "mesh.security"),
    ("mesh.routing",),
    # I/O helpers the planes use: the span sender.
    ("mesh.spansender",),
    # The contract between the planes: the shared directory's layout, writes and records.
    ("mesh.meshdir",),
    # The two planes and the workload agent (a pod's key and certificate): none imports
    # another.
    ("mesh.sidecar", "mesh.manager", "mesh.agent"),
    # What runs the planes: the lab, the console.
    ("mesh.lab", "mesh.console"),
    # The command lines.
    ("mesh.cli",),
)

# The longest a module of mesh/ may be.
MAX_MODULE_LINES = 600

# Back edges allowed for now, each with why and until when: (importer, imported) module.
BACK_EDGES_ALLOWED: set[tuple[str, str]] = set()

# Import circles allowed for now, each with why and until when.
CIRCLES_ALLOWED: tuple[str, ...] = ()


# Modules tested somewhere other than their mirror: where, and why.
NOT_MIRRORED = {
    "mesh/cli/meshctl.py": "argument dispatch only: tests/mesh/cli/test_live.py and "
    "test_offline.py run its main()",
    "mesh/console/__main__.py": "calls mesh.console.run.main (tests/mesh/console/test_run.py); "
    "tests/integration/test_observability.py runs python -m mesh.console",
    "mesh/headers.py": "constants: tests/services/test_common.py checks the propagation",
    "mesh/sidecar/server.py": "the sidecar process: tests/integration/test_sidecar*.py run it",
    "mesh/sidecar/testing.py": "the tests' own helpers (real sidecars, scriptable upstreams)",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported mesh module, line) for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield _existing(alias.name, known), node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                # ``from mesh.config import hosts`` imports the module mesh.config.hosts.
                submodule = f"{target}.{alias.name}"
                yield (submodule if submodule in known else _existing(target, known)), node.lineno


def _existing(name: str, known: Mapping[str, Path]) -> str:
    while name not in known and "." in name:
        name = name.rpartition(".")[0]
    return name


def graph(root: Path = ROOT) -> dict[str, list[tuple[str, int]]]:
    known = modules(root)
    return {name: sorted(set(imports_of(name, path, known))) for name, path in known.items()}


def part_of(module: str) -> str:
    """The part of the package a module belongs to: ``mesh.config.validate.values`` →
    ``mesh.config``; a top-level module is its own part."""
    return ".".join(module.split(".")[:2])


def is_program(module: str) -> bool:
    # ``python -m mesh.X``: a program wires the parts together (which topology a manager
    # serves...), so it may import any part; nothing imports a program.
    return module.endswith(".__main__")


def layer_of(part: str) -> int | None:
    for rank, parts in enumerate(LAYERS):
        if part in parts:
            return rank
    return None


def back_edges(edges: Mapping[str, Sequence[tuple[str, int]]]) -> list[str]:
    """Every import that points sideways or up the layers, as readable lines."""
    problems = []
    for module, targets in sorted(edges.items()):
        if module == PACKAGE:
            continue
        here = part_of(module)
        rank = layer_of(here)
        if rank is None:
            problems.append(f"{module}: {here} is in no layer: place it in LAYERS")
            continue
        for target, line in targets:
            if is_program(target):
                problems.append(f"{module}:{line} imports the program {target}")
                continue
            there = part_of(target)
            if there == here or is_program(module) or target == PACKAGE:
                continue
            other = layer_of(there)
            if (module, target) in BACK_EDGES_ALLOWED:
                continue
            if other is None or other >= rank:
                problems.append(f"{module}:{line} imports {target}: {there} is not below {here}")
    return problems


def circles(edges: Mapping[str, Sequence[tuple[str, int]]]) -> list[list[str]]:
    """Strongly connected groups of modules (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target, _ in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            self_loop = any(t == node for t, _ in edges.get(node, ()))
            if len(group) > 1 or self_loop:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def unexpected_circles(edges: Mapping[str, Sequence[tuple[str, int]]]) -> list[list[str]]:
    return [
        group for group in circles(edges) if not all(part_of(m) in CIRCLES_ALLOWED for m in group)
    ]


def mirror_of(path: Path) -> Path:
    """``mesh/x/y.py`` → ``tests/mesh/x/test_y.py`` (relative paths)."""
    name = "main" if path.stem == "__main__" else path.stem
    return Path("tests", *path.parent.parts, f"test_{name}.py")


def unmirrored(root: Path = ROOT) -> list[str]:
    """Modules with neither a mirroring test module nor an entry in ``NOT_MIRRORED``; and
    entries that are stale (the module is gone, or it has its mirror now)."""
    problems = []
    sources = {
        p.relative_to(root) for p in (root / PACKAGE).rglob("*.py") if p.name != "__init__.py"
    }
    for source in sorted(sources):
        mirrored = (root / mirror_of(source)).is_file()
        if not mirrored and str(source) not in NOT_MIRRORED:
            problems.append(f"{source} has no {mirror_of(source)}")
        elif mirrored and str(source) in NOT_MIRRORED:
            problems.append(f"{source} has {mirror_of(source)}: drop it from NOT_MIRRORED")
    for listed in sorted(NOT_MIRRORED):
        if Path(listed) not in sources:
            problems.append(f"NOT_MIRRORED lists {listed}, which does not exist")
    return problems


def oversized(root: Path = ROOT, limit: int | None = None) -> list[str]:
    """Modules of mesh/ longer than ``MAX_MODULE_LINES``: a file a newcomer cannot hold in
    their head is split by what its parts are about, not by line count."""
    limit = MAX_MODULE_LINES if limit is None else limit
    found = []
    for path in sorted((root / PACKAGE).rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > limit:
            found.append(f"{path.relative_to(root)}: {lines} lines (at most {limit})")
    return found


# ---------------------------------------------------------------- the checks


def test_every_import_points_down_the_layers() -> None:
    assert back_edges(graph()) == []


def test_no_import_circle_outside_the_allowed_ones() -> None:
    assert unexpected_circles(graph()) == []


def test_a_planted_back_edge_and_circle_are_caught(tmp_path: Path) -> None:
    """The checks can fail: the pure core importing the lab, a circle of two modules."""
    package = tmp_path / PACKAGE
    for part in ("config", "lab"):
        (package / part).mkdir(parents=True)
        (package / part / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "config" / "a.py").write_text("from mesh.lab.topology import COURSE\n")
    (package / "lab" / "topology.py").write_text("from mesh.lab import pod\n")
    (package / "lab" / "pod.py").write_text("def f():\n    from mesh.lab.topology import X\n")
    edges = graph(tmp_path)
    assert back_edges(edges) == [
        "mesh.config.a:1 imports mesh.lab.topology: mesh.lab is not below mesh.config"
    ]
    assert unexpected_circles(edges) == [["mesh.lab.pod", "mesh.lab.topology"]]


def test_every_module_has_a_mirroring_test_module() -> None:
    assert unmirrored() == []


def test_a_planted_module_without_tests_is_caught(tmp_path: Path) -> None:
    for path in ("mesh/routing/__init__.py", "mesh/routing/table.py", "mesh/routing/new.py",
                 "tests/mesh/routing/test_table.py"):  # fmt: skip
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("")
    problems = [p for p in unmirrored(tmp_path) if "NOT_MIRRORED lists" not in p]
    assert problems == ["mesh/routing/new.py has no tests/mesh/routing/test_new.py"]


def test_no_module_is_longer_than_the_limit() -> None:
    assert oversized() == []


def test_a_planted_long_module_is_caught(tmp_path: Path) -> None:
    (tmp_path / PACKAGE).mkdir()
    (tmp_path / PACKAGE / "short.py").write_text("x = 1\n" * 10)
    (tmp_path / PACKAGE / "long.py").write_text("x = 1\n" * 11)
    assert oversized(tmp_path, limit=10) == ["mesh/long.py: 11 lines (at most 10)"]


def test_modules_import_no_other_test_module() -> None:
    """Shared builders live in tests/helpers.py or in fixtures (conftest.py), not in a test."""
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            # Only the tests' own modules count: aiohttp.test_utils is another package's.
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0 and module.split(".")[0] != "tests":
                    continue
                names = [module] + [f"{module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.split(".")[0] == "tests"]
            else:
                continue
            if any(n.rpartition(".")[2].startswith("test_") for n in names):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def main() -> int:
    edges = graph()
    problems = back_edges(edges)
    for problem in problems:
        print(f"back edge: {problem}")
    for group in circles(edges):
        allowed = all(part_of(m) in CIRCLES_ALLOWED for m in group)
        print(f"import circle{' (allowed for now)' if allowed else ''}: {' -> '.join(group)}")
    print(f"{len(edges)} modules, {sum(len(t) for t in edges.values())} imports")
    gaps = unmirrored()
    for gap in gaps:
        print(f"test mirror: {gap}")
    long_modules = oversized()
    for module in long_modules:
        print(f"too long: {module}")
    return 1 if problems or unexpected_circles(edges) or gaps or long_modules else 0


if __name__ == "__main__":
    sys.exit(main())
