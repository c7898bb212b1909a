"""A resource lives in its own files (issue 10: "`Case` touched at most 8 non-test files
besides its migration and demo data").

The scan reads the non-test source (``hub/``, ``schema/``, ``policies/``, ``app.py``;
not the cases migration nor ``hub/demo.py``) and lists the files holding an identifier
of the support-case resource. It looks at code, not prose: in Python the names the
module binds, uses, imports and defines, and the string constants that are identifiers
or dotted paths (``"Customer.cases"``, ``"case.open"``), never comments, docstrings or
sentences; in YAML the keys and the identifier-like values, never comments or
descriptions. An identifier belongs to the resource when one of its words (split at
``_``, ``.`` and camelCase) is ``case`` or ``cases``: ``Case``, ``CaseNote``,
``Resource.CASE``, ``case_note``, ``openCase``, ``hub.cases``, ``support_case``. Names a
module imports from a third-party library are not ours (SQLAlchemy's ``case``), and
``match``/``case`` statements are syntax, not names.

When this fails, either the resource leaked into a generic file (make the engine derive
it from the registry instead: docs/architecture.md "Adding a resource"), or the list
below is out of date.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("hub", "schema", "policies", "app.py")
PROJECT = ("hub", "schema", "policies", "connectors", "app")
# The resource's migration and demo data are outside the bound.
EXCLUDED = ("hub/migrations/versions/*_cases.py", "hub/demo.py")

# Every file the support-case resource lives in, and why (at most 8).
ALLOWED = {
    "hub/models/case.py": "its tables (Case, CaseNote) and their enum values",
    "hub/access/registry.py": "its two declarations (Resource.CASE, Resource.CASE_NOTE)",
    "hub/cases.py": "its domain reads and writes (through the write pipeline)",
    "schema/cases/__init__.py": "the area's root fields (AREA)",
    "schema/cases/types.py": "its GraphQL types (registered with @resource_type)",
    "schema/cases/queries.py": "cases, case",
    "schema/cases/mutations.py": "openCase, escalateFeedback, updateCase, addCaseNote",
    "policies/defaults/default.yaml": "its default sharing rules",
}

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def is_case_identifier(name: str) -> bool:
    """Whether ``name`` (an identifier or dotted path) names the case resource."""
    return any(w.lower() in {"case", "cases"} for w in _WORDS.findall(name))


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _is_ours(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] in PROJECT


def python_identifiers(source: str) -> Iterator[str]:
    """The identifiers a Python module binds, uses, imports or spells as a string."""
    tree = ast.parse(source)
    docstrings = _docstrings(tree)
    foreign: set[str] = set()  # names imported from third-party libraries
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not _is_ours(node.module, node.level):
            foreign.update(alias.asname or alias.name for alias in node.names)
    for node in ast.walk(tree):
        match node:
            case ast.Name(id=name) if name not in foreign:
                yield name
            case ast.Attribute(attr=name):
                yield name
            case ast.FunctionDef(name=name) | ast.AsyncFunctionDef(name=name):
                yield name
            case ast.ClassDef(name=name):
                yield name
            case ast.arg(arg=name):
                yield name
            case ast.keyword(arg=str(name)):
                yield name
            case ast.ImportFrom(module=module, level=level) if _is_ours(module, level):
                yield module or ""
                for alias in node.names:
                    yield from (alias.name, alias.asname or "")
            case ast.Import(names=names):
                for alias in names:
                    if _is_ours(alias.name, 0):
                        yield from (alias.name, alias.asname or "")
            case ast.Constant(value=str(text)) if id(node) not in docstrings:
                if _IDENTIFIER.fullmatch(text):
                    yield text


def yaml_identifiers(source: str) -> Iterator[str]:
    """The keys and identifier-like values of a YAML document (comments and sentences
    such as descriptions are not identifiers)."""

    def walk(value: object) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from walk(key)
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)
        elif isinstance(value, str) and _IDENTIFIER.fullmatch(value.lstrip("$")):
            yield value.lstrip("$")

    yield from walk(yaml.safe_load(source))


def scanned_files() -> Iterator[Path]:
    excluded = {p for pattern in EXCLUDED for p in ROOT.glob(pattern)}
    for entry in SCANNED:
        path = ROOT / entry
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in candidates:
            if file.suffix in {".py", ".yaml", ".yml"} and file not in excluded:
                yield file


def files_naming_cases() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for file in scanned_files():
        source = file.read_text()
        names = python_identifiers(source) if file.suffix == ".py" else yaml_identifiers(source)
        hits = sorted({n for n in names if is_case_identifier(n)})
        if hits:
            found[str(file.relative_to(ROOT))] = hits
    return found


def test_the_case_resource_lives_in_its_own_files_only() -> None:
    assert len(ALLOWED) <= 8
    found = files_naming_cases()
    leaked = {path: names for path, names in found.items() if path not in ALLOWED}
    assert not leaked, (
        f"support-case identifiers outside the resource's files: {leaked}; derive them from "
        "the registry instead (docs/architecture.md, 'Adding a resource')"
    )
    # Each allowed file still holds the resource: the list says where it lives.
    assert set(found) == set(ALLOWED), set(ALLOWED) - set(found)


@pytest.mark.parametrize(
    "name",
    [
        "Case",
        "CaseNote",
        "CASE",
        "CASE_NOTE",
        "case_note",
        "cases",
        "openCase",
        "addCaseNote",
        "OpenCaseInput",
        "hub.cases",
        "schema.cases.types",
        "Customer.cases",
        "case.open",
        "support_case",
        "CASE_STATUSES",
    ],
)
def test_names_of_the_resource_are_found(name: str) -> None:
    assert is_case_identifier(name)


@pytest.mark.parametrize(
    "name", ["IGNORECASE", "casefold", "lowercase", "Customer", "showcase", "suitcases"]
)
def test_other_words_are_not(name: str) -> None:
    assert not is_case_identifier(name)


def test_prose_syntax_and_foreign_names_are_not_identifiers() -> None:
    source = '''
"""Support cases are a resource; in any case, lower-case text is prose."""
import re
from sqlalchemy import case

# A case note's case: a comment, not code.
PATTERN = re.compile("x", re.IGNORECASE)
SQL = "CASE WHEN x THEN 1 END"


def classify(value):
    """Case-insensitive."""
    match value:
        case 1:
            return case((value == 1, "one"))
    return "in case of doubt"
'''
    assert not [n for n in python_identifiers(source) if is_case_identifier(n)]
    assert [n for n in python_identifiers("from hub import cases\n") if is_case_identifier(n)]
    document = "# cases\nrules:\n  - name: x\n    description: The cases of a supplier.\n"
    assert not [n for n in yaml_identifiers(document) if is_case_identifier(n)]
    assert [n for n in yaml_identifiers("rows: {case.organization: {eq: $subject.org}}\n")]
