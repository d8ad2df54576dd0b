"""The layer rules of docs/architecture.md, read from the imports with ``ast``.

Every import counts: at module level, inside functions, and under ``TYPE_CHECKING`` (a
type-only import still ties the modules together for a reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO

PACKAGE = REPO / "p2psocial"

IO_MODULES = {"trio", "socket", "sqlite3", "sqlite_utils", "zeroconf", "ifaddr", "selectors"}
"""Modules that do I/O (or are only there to do it)."""
CLOCK_AND_CHANCE = {"time", "random", "secrets"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports (``from a import b`` counts ``a`` and ``a.b``)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def internal_imports() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {imp for imp in imports_of(path) if imp in known and imp != name}
        for name, path in known.items()
    }


def test_the_walk_sees_imports() -> None:
    graph = internal_imports()
    assert "p2psocial.store.store" in graph["p2psocial.daemon"]
    assert "p2psocial.errors" in graph["p2psocial.feed.entry"]
    assert len(graph) > 60


def test_no_import_cycles() -> None:
    graph = internal_imports()
    # A package's own __init__ importing its submodules is not a cycle with them.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


@pytest.mark.parametrize(
    "layer", ["p2psocial.feed", "p2psocial.proto", "p2psocial.msgtypes", "p2psocial.searchtext"]
)
def test_sans_io_layers_do_no_io(layer: str) -> None:
    for name, path in modules().items():
        if name == layer or name.startswith(layer + "."):
            roots = {imp.split(".")[0] for imp in imports_of(path)}
            assert not roots & IO_MODULES, f"{name} imports I/O: {roots & IO_MODULES}"
            assert not roots & CLOCK_AND_CHANCE, f"{name} reads the clock or chance"
            assert "os" not in roots, f"{name} imports os"


BELOW_STORE = (
    "p2psocial.errors",
    "p2psocial.identity",
    "p2psocial.model",
    "p2psocial.feed",
    "p2psocial.proto",
    "p2psocial.msgtypes",
    "p2psocial.searchtext",
    "p2psocial.store",
)


def test_store_imports_nothing_above_it() -> None:
    for name, deps in internal_imports().items():
        if name.startswith("p2psocial.store"):
            above = [d for d in deps if not d.startswith(BELOW_STORE)]
            assert not above, f"{name} imports {above}"


@pytest.mark.parametrize(
    ("layer", "allowed"),
    [
        ("p2psocial.feed", ("p2psocial.errors", "p2psocial.identity", "p2psocial.feed")),
        (
            "p2psocial.proto",
            ("p2psocial.errors", "p2psocial.identity", "p2psocial.feed", "p2psocial.proto"),
        ),
        (
            "p2psocial.msgtypes",
            (
                "p2psocial.errors",
                "p2psocial.identity",
                "p2psocial.model",
                "p2psocial.feed",
                "p2psocial.proto",
                "p2psocial.msgtypes",
            ),
        ),
    ],
)
def test_lower_layers_import_only_what_is_below(layer: str, allowed: tuple[str, ...]) -> None:
    for name, deps in internal_imports().items():
        if name == layer or name.startswith(layer + "."):
            wrong = [d for d in deps if not d.startswith(allowed)]
            assert not wrong, f"{name} imports {wrong}"


def test_nothing_imports_the_daemon_or_the_cli() -> None:
    for name, deps in internal_imports().items():
        if name.startswith("p2psocial.cli") or name == "p2psocial.__main__":
            continue  # the CLI starts the daemon; __main__ runs the CLI
        bad = [d for d in deps if d == "p2psocial.daemon" or d.startswith("p2psocial.cli")]
        assert not bad, f"{name} imports {bad}"


def test_net_and_api_do_not_reach_into_the_daemon_or_each_other() -> None:
    graph = internal_imports()
    for name, deps in graph.items():
        if name.startswith("p2psocial.net"):
            bad = [d for d in deps if d.startswith(("p2psocial.api", "p2psocial.app"))]
            assert not bad, f"{name} imports {bad}"


def test_the_client_imports_no_server_module() -> None:
    deps = internal_imports()["p2psocial.client"]
    bad = [d for d in deps if d.startswith(("p2psocial.api", "p2psocial.store", "p2psocial.net"))]
    assert not bad, f"p2psocial.client imports {bad}"


def test_no_v1_byte_offsets_outside_feed() -> None:
    """Only feed/ knows where the author sits in an entry's bytes."""
    for name, path in modules().items():
        if name.startswith("p2psocial.feed"):
            continue
        assert "[4:36]" not in path.read_text("utf-8"), f"{name} slices entry bytes"


def test_exceptions_are_defined_in_errors() -> None:
    for name, path in modules().items():
        if name == "p2psocial.errors":
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                assert not any(b.endswith(("Error", "Exception")) for b in bases) or (
                    node.name.endswith("Params")
                ), f"{name} defines exception {node.name}"
