"""Arrows point down: ``app -> schema -> hub -> policies``, ``hub -> connectors.base``.

The source is read, not imported, so an import inside a function (often written to dodge a
cycle) counts like one at the top of a module, and so do ``if TYPE_CHECKING:`` imports and
``importlib.import_module("...")`` with a literal name. Only ``hub/listen.py`` names the app
layer, as the import string uvicorn's factory loader reads (``app:create_app``): a string,
not an import.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.oauth.context import OAuthContext
from hub.runtime import Runtime

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("app", "schema", "hub", "policies", "connectors")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources(*packages: str) -> Iterator[tuple[str, Path]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            # Alembic revisions are frozen history, not part of the running import graph.
            if "migrations/versions" not in path.as_posix():
                yield _module_name(path), path


def imports_of(module: str, source: str, *, is_package: bool = False) -> set[str]:
    """Every module ``source`` imports, wherever the statement is; ``from x import y``
    gives both ``x`` and ``x.y`` (``y`` may be a module). Relative imports are resolved
    against ``module``."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in ("importlib.import_module", "import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _imports(*packages: str) -> dict[str, set[str]]:
    return {
        module: imports_of(module, path.read_text(), is_package=path.name == "__init__.py")
        for module, path in _sources(*packages)
    }


def _within(name: str, *roots: str) -> bool:
    return any(name == root or name.startswith(f"{root}.") for root in roots)


def _violations(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in _imports(*packages).items()
        for target in targets
        if _within(target, *forbidden)
    )


def test_the_scanner_sees_every_form_of_import() -> None:
    source = """
import app
import schema.context as context
from schema import types
from . import sibling
from ..db import Database

def later() -> None:
    from app import create_app

if TYPE_CHECKING:
    from schema.context import Context

def dynamic() -> None:
    importlib.import_module("schema.http")
    uvicorn.run("app:create_app")  # a string naming the factory is not an import
"""
    found = imports_of("hub.oauth.grants", source)

    assert {"app", "schema.context", "schema", "schema.types", "app.create_app"} <= found
    assert {"hub.oauth", "hub.oauth.sibling", "hub.db", "hub.db.Database"} <= found
    assert "schema.http" in found
    assert not any(name.startswith("app:") for name in found)
    assert imports_of("hub.oauth", "from . import keys", is_package=True) == {
        "hub.oauth",
        "hub.oauth.keys",
    }


@pytest.mark.parametrize(
    ("packages", "forbidden"),
    [
        (("hub", "policies", "connectors"), ("app", "schema")),
        # The policy engine is pure: it knows nothing of the hub that enforces it.
        (("policies",), ("app", "schema", "hub", "connectors")),
        # Connectors yield plain records; the hub maps and stores them (DESIGN §8).
        (("connectors",), ("app", "schema", "hub")),
        # The authorization server depends on OAuthContext, not on the runtime that also
        # swaps policies and reloads data keys.
        (("hub/oauth",), ("hub.runtime",)),
    ],
    ids=["no-app-or-schema-below", "policies-pure", "connectors-standalone", "oauth-no-runtime"],
)
def test_imports_point_down(packages: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    assert _violations(packages, forbidden) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_cycle_detection_finds_a_function_level_cycle() -> None:
    graph = {"hub.a": {"hub.b"}, "hub.b": {"hub.c"}, "hub.c": {"hub.a"}, "hub.d": {"hub.a"}}
    assert _cycles(graph) == [["hub.a", "hub.b", "hub.c"]]
    assert _cycles({"hub.a": {"hub.b"}, "hub.b": set()}) == []


def test_no_import_cycles_below_schema() -> None:
    imports = _imports("hub", "policies", "connectors")
    graph = {
        module: {target for target in targets if target in imports and target != module}
        for module, targets in imports.items()
    }
    assert _cycles(graph) == []


def test_proposal_lives_with_the_proposals() -> None:
    imports = _imports("hub")
    assert not any(_within(target, "hub.customers") for target in imports["hub.proposals"])
    assert "hub.proposals.Proposal" in imports["hub.customers"]


def _protocol_members(protocol: type) -> set[str]:
    return {
        name
        for name in vars(protocol)
        if not name.startswith("_") and isinstance(vars(protocol)[name], property)
    }


def _as_oauth_context(runtime: Runtime) -> OAuthContext:
    """Never called: mypy checks here that Runtime satisfies the protocol, every member
    with its type (the app hands its Runtime to the OAuth endpoints untyped, through
    ``app.state``)."""
    return runtime


def test_runtime_serves_the_oauth_endpoints() -> None:
    members = _protocol_members(OAuthContext)

    assert members >= {"settings", "database", "keyring", "revocations", "rate_limiter"}
    assert members <= {f.name for f in dataclasses.fields(Runtime)}
