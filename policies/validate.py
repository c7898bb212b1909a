"""Check a parsed :class:`~policies.model.Document` against a :class:`~policies.catalog.Catalog`.

Finds unknown resources, fields (dotted paths through declared relations), masks and
subject variables, subjects naming a kind or role the catalog does not know (they would
match nobody), and type mismatches in conditions (``gt`` on a boolean, ``in`` with a
non-list, ...). Every problem is a :class:`~policies.errors.PolicyError` at a line and
column; :func:`validate` returns them all, :func:`check` raises if there is any.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable, Iterable

from policies.catalog import Catalog, CatalogError, FieldType
from policies.errors import PolicyError, PolicyValidationError
from policies.model import (
    MASK_NAMES,
    And,
    Compare,
    Condition,
    Document,
    Guardrail,
    Locator,
    MaskSpec,
    Not,
    Operand,
    Or,
    Position,
    Subject,
    Variable,
    Write,
)

__all__ = ["check", "validate", "variable_type"]

_ORDERED = frozenset(
    {FieldType.INTEGER, FieldType.NUMBER, FieldType.DATE, FieldType.DATETIME, FieldType.STRING}
)
_TEXT = frozenset({FieldType.STRING, FieldType.UUID})
_MASK_TYPES: dict[str, frozenset[FieldType] | None] = {
    "redact": None,
    "pseudonym": None,
    "partial_email": frozenset({FieldType.STRING}),
    "last4": frozenset({FieldType.STRING}),
    "initials": frozenset({FieldType.STRING}),
    "year_only": frozenset({FieldType.DATE, FieldType.DATETIME}),
    "bucket": frozenset({FieldType.INTEGER, FieldType.NUMBER}),
}


def validate(document: Document, catalog: Catalog) -> list[PolicyError]:
    """Every problem of ``document`` against ``catalog``, in source order."""
    return sorted(_Validator(document, catalog).run(), key=lambda e: e.pos)


def check(document: Document, catalog: Catalog) -> Document:
    """Return ``document`` if valid, else raise :class:`PolicyValidationError`."""
    errors = validate(document, catalog)
    if errors:
        raise PolicyValidationError(errors)
    return document


def variable_type(name: str, catalog: Catalog) -> FieldType | None:
    """The type of subject variable ``name`` (without "$"), or ``None`` if unknown."""
    match name.split(".", 2):
        case ["subject", "org" | "kind"]:
            return FieldType.STRING
        case ["subject", "roles" | "scopes"]:
            return FieldType.STRING_LIST
        case ["subject", "attributes", attribute]:
            return catalog.subject_attributes.get(attribute)
    return None


class _Validator:
    def __init__(self, document: Document, catalog: Catalog) -> None:
        self.doc = document
        self.catalog = catalog
        self.errors: list[PolicyError] = []

    def error(self, message: str, pos: Position) -> None:
        self.errors.append(PolicyError(message, pos))

    def run(self) -> list[PolicyError]:
        for rule in self.doc.rules:
            loc: Locator = ("rules", rule.index)
            self.subjects(rule.subjects, loc)
            if not self.resource(rule.resource, loc):
                continue
            self.fields(rule.resource, rule.read.visible, (*loc, "read", "visible"))
            self.fields(rule.resource, rule.fields, (*loc, "fields"))
            for name, mask in rule.read.masked.items():
                mloc = (*loc, "read", "masked", name)
                if self.fields(rule.resource, [name], mloc, keyed=True):
                    self.mask(rule.resource, name, mask)
                if name in rule.read.visible:
                    self.error(
                        f"'{name}' is both visible and masked in rule '{rule.name}'",
                        self.doc.position(*mloc),
                    )
            if rule.rows is not None:
                self.condition(rule.resource, rule.rows)
            for key, write in (("write", rule.write), ("create", rule.create)):
                if write is not None:
                    self.write(rule.resource, write, (*loc, key))
        for guardrail in self.doc.guardrails:
            loc = ("guardrails", guardrail.index)
            self.subjects(guardrail.subjects, loc)
            if self.resource(guardrail.resource, loc):
                self.fields(guardrail.resource, guardrail.hidden, (*loc, "hidden"), json_paths=True)
                if guardrail.rows is not None:
                    self.condition(guardrail.resource, guardrail.rows)
                if guardrail.about:
                    self.about(guardrail, loc)
        for expectation in self.doc.expectations:
            loc = ("expect", expectation.index)
            self.subject(expectation.subject, (*loc, "subject"))
            if self.resource(expectation.resource, loc):
                self.fields(expectation.resource, expectation.must_see, (*loc, "must_see"))
                self.fields(expectation.resource, expectation.must_not_see, (*loc, "must_not_see"))
        return self.errors

    def about(self, guardrail: Guardrail, loc: Locator) -> None:
        """An ``about`` guardrail guards rows of the records about its resource: it needs
        ``rows``, hides no field (fields belong to each resource), and exempts only
        resources it would cover."""
        target = guardrail.resource
        if guardrail.rows is None:
            self.error(
                f"guardrail '{guardrail.name}' is about {target} records and needs 'rows'",
                self.doc.position(*loc),
            )
        if guardrail.hidden:
            self.error(
                f"guardrail '{guardrail.name}': 'hidden' names fields of one resource; hide "
                f"them in a guardrail with 'resource', not 'about: {target}'",
                self.doc.position(*loc, "hidden"),
            )
        for i, name in enumerate(guardrail.exempt):
            pos = self.doc.position(*loc, "exempt", i)
            if name not in self.catalog.resources:
                known = ", ".join(sorted(self.catalog.resources))
                self.error(f"unknown resource '{name}' (known: {known})", pos)
            elif self.catalog.path_to(name, target) is None:
                self.error(
                    f"'{name}' is not about {target} (no one-to-one relation path to it): "
                    "there is nothing to exempt",
                    pos,
                )

    def subjects(self, subjects: Iterable[Subject], loc: Locator) -> None:
        for i, subject in enumerate(subjects):
            self.subject(subject, (*loc, "subjects", i))

    def subject(self, subject: Subject, loc: Locator) -> None:
        for key, value, known in (
            ("kind", subject.kind, self.catalog.subject_kinds),
            ("role", subject.role, self.catalog.subject_roles),
        ):
            if value is None or not known or value in known:
                continue
            close = difflib.get_close_matches(value, sorted(known), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.error(
                f"unknown {key} '{value}'{hint}: the subject matches nobody "
                f"(known: {', '.join(sorted(known))})",
                self.doc.position(*loc, key),
            )

    def resource(self, resource: str, loc: Locator) -> bool:
        if resource in self.catalog.resources:
            return True
        known = ", ".join(sorted(self.catalog.resources))
        self.error(
            f"unknown resource '{resource}' (known: {known})", self.doc.position(*loc, "resource")
        )
        return False

    def fields(
        self,
        resource: str,
        names: Iterable[str],
        loc: Locator,
        *,
        keyed: bool = False,
        json_paths: bool = False,
    ) -> bool:
        ok = True
        for i, name in enumerate(names):
            pos = self.doc.position(*loc) if keyed else self.doc.position(*loc, i)
            if json_paths and self.is_json_path(resource, name):
                continue
            if name not in self.catalog.fields(resource):
                try:
                    self.catalog.field_type(resource, name)
                    message = f"'{name}': list a field of {resource} itself, not a path"
                except CatalogError as exc:
                    message = str(exc)
                self.error(message, pos)
                ok = False
        return ok

    def is_json_path(self, resource: str, name: str) -> bool:
        head = name.split(".", 1)[0]
        return self.catalog.resources[resource].fields.get(head) is FieldType.JSON

    def mask(self, resource: str, name: str, mask: MaskSpec) -> None:
        if mask.name not in MASK_NAMES:
            known = ", ".join(sorted(MASK_NAMES))
            self.error(f"unknown mask '{mask.name}' on '{name}' (known: {known})", mask.pos)
            return
        kind = self.catalog.resources[resource].fields[name]
        allowed = _MASK_TYPES[mask.name]
        if allowed is not None and kind not in allowed:
            self.error(f"mask '{mask.name}' does not apply to {kind} field '{name}'", mask.pos)
        if mask.edges is not None and mask.name != "bucket":
            self.error(f"'edges' is only for the bucket mask, not '{mask.name}'", mask.pos)

    def write(self, resource: str, write: Write, loc: Locator) -> None:
        if self.fields(resource, write.fields, (*loc, "fields")):
            for i, name in enumerate(write.fields):
                self.not_remote(resource, name, self.doc.position(*loc, "fields", i))
        if write.check is not None:
            self.condition(resource, write.check)
        for name, value in write.presets.items():
            ploc = (*loc, "presets", name)
            if self.fields(resource, [name], ploc, keyed=True):
                self.not_remote(resource, name, self.doc.position(*ploc))
                if isinstance(value, Variable):
                    self.variable(value, self.doc.position(*ploc))

    def not_remote(self, resource: str, name: str, pos: Position) -> None:
        remote = self.catalog.remote_source(resource, name)
        if remote is not None:
            self.error(f"'{name}' comes from {remote}: the hub cannot write it", pos)

    def variable(self, var: Variable, pos: Position) -> FieldType | None:
        kind = variable_type(var.name, self.catalog)
        if kind is None:
            known = ["$subject.org", "$subject.kind", "$subject.roles", "$subject.scopes"]
            known += [f"$subject.attributes.{a}" for a in sorted(self.catalog.subject_attributes)]
            self.error(f"unknown subject variable '${var.name}' (known: {', '.join(known)})", pos)
        return kind

    def condition(self, resource: str, cond: Condition) -> None:
        match cond:
            case And(items) | Or(items):
                for item in items:
                    self.condition(resource, item)
            case Not(item):
                self.condition(resource, item)
            case Compare():
                self.compare(resource, cond)

    def compare(self, resource: str, cmp: Compare) -> None:
        try:
            kind = self.catalog.field_type(resource, cmp.path)
        except CatalogError as exc:
            self.error(str(exc), cmp.pos)
            return
        remote = self.catalog.remote_source(resource, cmp.path)
        if remote is not None:
            self.error(
                f"'{cmp.path}' comes from {remote}, not the database: a row condition "
                "cannot test it (show, mask or hide it in 'read' instead)",
                cmp.pos,
            )
            return
        opaque = self.catalog.opaque_reason(resource, cmp.path)
        if opaque is not None and cmp.op != "is_null":
            self.error(
                f"'{cmp.op}' on '{cmp.path}': the field is {opaque}; only is_null can be "
                "evaluated on it",
                cmp.op_pos,
            )
            return
        if isinstance(cmp.value, Variable):
            var_kind = self.variable(cmp.value, cmp.value_pos)
            if var_kind is not None:
                self.variable_operand(cmp, kind, var_kind)
            return
        problem = _literal_problem(cmp.op, kind, cmp.value)
        if problem:
            self.error(f"type mismatch: {problem} (on {kind} field '{cmp.path}')", cmp.value_pos)

    def variable_operand(self, cmp: Compare, kind: FieldType, var_kind: FieldType) -> None:
        if kind is FieldType.JSON:
            return
        if cmp.op == "is_null":
            ok = False
        elif cmp.op in ("in", "nin"):
            ok = var_kind is FieldType.STRING_LIST and kind in _TEXT
        else:
            ok = var_kind is kind or (var_kind in _TEXT and kind in _TEXT)
            ok = ok and (cmp.op in ("eq", "ne") or kind in _ORDERED)
        if not ok:
            self.error(
                f"type mismatch: '{cmp.op}' on {kind} field '{cmp.path}' with "
                f"{var_kind} variable '${cmp.value.name}'",
                cmp.value_pos,
            )


def _literal_problem(op: str, kind: FieldType, value: Operand) -> str | None:
    if op == "is_null":
        return None if isinstance(value, bool) else "'is_null' takes true or false"
    if op in ("in", "nin"):
        if not isinstance(value, tuple):
            return f"'{op}' takes a list"
        for item in value:
            problem = _value_problem(kind, item)
            if problem:
                return f"'{op}' list item: {problem}"
        return None
    if value is None:
        return f"'{op}' with null; use is_null"
    if op in ("gt", "gte", "lt", "lte") and kind not in _ORDERED:
        return f"'{op}' does not apply to {kind}"
    return _value_problem(kind, value)


def _value_problem(kind: FieldType, value: Operand) -> str | None:
    ok: bool
    match kind:
        case FieldType.JSON:
            ok = True
        case FieldType.STRING | FieldType.UUID:
            ok = isinstance(value, str)
        case FieldType.INTEGER:
            ok = isinstance(value, int) and not isinstance(value, bool)
        case FieldType.NUMBER:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        case FieldType.BOOLEAN:
            ok = isinstance(value, bool)
        case FieldType.DATE:
            ok = _is_iso(value, dt.date.fromisoformat) or (
                isinstance(value, dt.date) and not isinstance(value, dt.datetime)
            )
        case FieldType.DATETIME:
            ok = isinstance(value, dt.date) or _is_iso(value, dt.datetime.fromisoformat)
        case FieldType.STRING_LIST:
            ok = isinstance(value, tuple) and all(isinstance(v, str) for v in value)
    return None if ok else f"expected a {kind} value, got {value!r}"


def _is_iso(value: Operand, parse: Callable[[str], object]) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parse(value)
    except ValueError:
        return False
    return True
