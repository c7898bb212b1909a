"""The resource catalog a policy is validated and evaluated against.

The project passes its own catalog in (``policies`` imports nothing from the project): the
resources, their fields with a type, and their relations (for dotted paths such as
``customer.region``). Subject attributes usable as ``$subject.attributes.<name>`` are
declared here too, and so may be the organization kinds and roles a subject can name
(``subject_kinds``, ``subject_roles``): the validator then refuses a subject naming any
other, which would match nobody. Left empty, any kind or role is accepted.

Example::

    catalog = Catalog.from_dict(
        {
            "Customer": {
                "fields": {"id": "uuid", "email": "string", "traits": "json"},
                "relations": {"assignments": {"resource": "CustomerPartner", "many": True}},
            },
            "CustomerPartner": {"fields": {"organization": "string"}},
        },
        subject_attributes={"regions": "string[]"},
        subject_kinds=["operator", "partner"],
        subject_roles=["admin", "sales"],
    )

A resource may list *opaque* fields with the reason (``"opaque": {"email": "encrypted at
rest"}``): their stored values cannot be compared in the database, so a condition may only
test them with ``is_null`` (any other operator would compile to a comparison that never
holds, and disagree with the evaluator).

A resource may also list *remote* fields with where they come from (``"remote":
{"loyaltyTier": "the subgraph 'loyalty'"}``): fields another service adds to the
resource (a federated subgraph). Rules show, mask or hide them like any field, but they
are not in the database: no condition (``rows``, ``check``) may test them, and no write
may set them (:meth:`Catalog.remote_source`).
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Catalog", "CatalogError", "FieldType", "Relation", "ResourceSpec"]


class FieldType(enum.StrEnum):
    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    UUID = "uuid"
    JSON = "json"  # any value; dotted paths reach into it
    STRING_LIST = "string[]"


class CatalogError(ValueError):
    """A path or definition that does not fit the catalog."""


@dataclass(frozen=True)
class Relation:
    """A link to another resource; ``many`` for one-to-many (conditions then mean "any")."""

    resource: str
    many: bool = False


@dataclass(frozen=True)
class ResourceSpec:
    fields: Mapping[str, FieldType]
    relations: Mapping[str, Relation] = field(default_factory=dict)
    opaque: Mapping[str, str] = field(default_factory=dict)
    """Fields only ``is_null`` can test -> why (e.g. "encrypted at rest")."""
    remote: Mapping[str, str] = field(default_factory=dict)
    """Fields another service provides -> where from (e.g. "the subgraph 'loyalty'"):
    readable under rules, never tested by a condition nor written."""


@dataclass(frozen=True)
class Catalog:
    """Resources -> fields -> type, plus relations and what subjects may name."""

    resources: Mapping[str, ResourceSpec]
    subject_attributes: Mapping[str, FieldType] = field(default_factory=dict)
    subject_kinds: frozenset[str] = frozenset()
    """The organization kinds a subject may name (empty: any)."""
    subject_roles: frozenset[str] = frozenset()
    """The roles a subject may name (empty: any)."""

    @classmethod
    def from_dict(
        cls,
        resources: Mapping[str, Any],
        subject_attributes: Mapping[str, str] | None = None,
        *,
        subject_kinds: Iterable[str] = (),
        subject_roles: Iterable[str] = (),
    ) -> Catalog:
        """Build a catalog from plain data (``{"Customer": {"fields": {...},
        "relations": {name: {"resource": ..., "many": bool}}}}``); types by name."""
        specs: dict[str, ResourceSpec] = {}
        for name, raw in resources.items():
            try:
                fields = {f: FieldType(t) for f, t in raw["fields"].items()}
                relations = {
                    r: Relation(str(v["resource"]), bool(v.get("many", False)))
                    for r, v in raw.get("relations", {}).items()
                }
                opaque = {str(f): str(why) for f, why in raw.get("opaque", {}).items()}
                remote = {str(f): str(where) for f, where in raw.get("remote", {}).items()}
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                raise CatalogError(f"resource {name!r}: {exc}") from exc
            for kind, names in (("opaque", opaque), ("remote", remote)):
                unknown = sorted(set(names) - set(fields))
                if unknown:
                    raise CatalogError(f"resource {name!r}: {kind} fields {unknown} are not fields")
            specs[name] = ResourceSpec(fields, relations, opaque, remote)
        for name, spec in specs.items():
            for rel, relation in spec.relations.items():
                if relation.resource not in specs:
                    raise CatalogError(
                        f"{name}.{rel} relates to unknown resource {relation.resource!r}"
                    )
                if rel in spec.fields:
                    raise CatalogError(f"{name}.{rel} is both a field and a relation")
        attributes = {k: FieldType(v) for k, v in (subject_attributes or {}).items()}
        return cls(specs, attributes, frozenset(subject_kinds), frozenset(subject_roles))

    def fields(self, resource: str) -> frozenset[str]:
        """The fields of ``resource`` (empty for an unknown resource)."""
        spec = self.resources.get(resource)
        return frozenset(spec.fields) if spec else frozenset()

    def field_type(self, resource: str, path: str) -> FieldType:
        """The type at dotted ``path`` from ``resource``; raise :class:`CatalogError`."""
        spec = self.resources.get(resource)
        if spec is None:
            raise CatalogError(f"unknown resource '{resource}'{_hint(resource, self.resources)}")
        parts = path.split(".")
        here = resource
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part in spec.fields:
                kind = spec.fields[part]
                if last or kind is FieldType.JSON:
                    return kind
                raise CatalogError(f"'{here}.{part}' is a {kind} field, not a relation")
            if part in spec.relations:
                relation = spec.relations[part]
                if last:
                    raise CatalogError(
                        f"'{here}.{part}' is a relation to {relation.resource}; "
                        "name one of its fields"
                    )
                here = relation.resource
                spec = self.resources[here]
                continue
            known = [*spec.fields, *spec.relations]
            raise CatalogError(f"unknown field '{part}' on {here}{_hint(part, known)}")
        raise CatalogError(f"empty path on {resource}")  # pragma: no cover - split never empty

    def path_to(self, resource: str, target: str) -> str | None:
        """The dotted path of one-to-one relations from ``resource`` to ``target``
        (``case.customer``): the shortest, the first declared among equals; ``None`` when
        ``target`` cannot be reached so, or is ``resource`` itself. One-to-many relations
        are not followed: across one, a condition means "any", not "its"."""
        seen = {resource}
        frontier: list[tuple[str, str]] = [(resource, "")]
        while frontier:
            step: list[tuple[str, str]] = []
            for here, path in frontier:
                for name, relation in self.resources[here].relations.items():
                    if relation.many or relation.resource in seen:
                        continue
                    reached = f"{path}.{name}" if path else name
                    if relation.resource == target:
                        return reached
                    seen.add(relation.resource)
                    step.append((relation.resource, reached))
            frontier = step
        return None

    def remote_source(self, resource: str, path: str) -> str | None:
        """Where the field at dotted ``path`` comes from when another service provides
        it (a remote field: no condition may test it, no write set it), else ``None``."""
        spec = self.resources.get(resource)
        for part in path.split("."):
            if spec is None:
                return None
            if part in spec.fields:  # a JSON path into a remote field is remote too
                return spec.remote.get(part)
            relation = spec.relations.get(part)
            spec = self.resources.get(relation.resource) if relation else None
        return None

    def with_remote(self, fields: Mapping[str, Mapping[str, tuple[FieldType, str]]]) -> Catalog:
        """This catalog plus remote fields: per resource, name -> (type, where from).
        Names already in a resource are refused (:class:`CatalogError`)."""
        resources = dict(self.resources)
        for name, added in fields.items():
            spec = resources.get(name)
            if spec is None:
                raise CatalogError(f"remote fields for unknown resource {name!r}")
            clash = sorted(set(added) & (set(spec.fields) | set(spec.relations)))
            if clash:
                raise CatalogError(f"{name} already has {', '.join(clash)}")
            resources[name] = ResourceSpec(
                {**spec.fields, **{f: kind for f, (kind, _) in added.items()}},
                spec.relations,
                spec.opaque,
                {**spec.remote, **{f: where for f, (_, where) in added.items()}},
            )
        return Catalog(resources, self.subject_attributes, self.subject_kinds, self.subject_roles)

    def opaque_reason(self, resource: str, path: str) -> str | None:
        """Why the field at dotted ``path`` is opaque (only ``is_null`` tests it), or
        ``None`` when it is comparable or the path does not resolve (see
        :meth:`field_type` for the error)."""
        spec = self.resources.get(resource)
        parts = path.split(".")
        for i, part in enumerate(parts):
            if spec is None:
                return None
            if part in spec.fields:
                return spec.opaque.get(part) if i == len(parts) - 1 else None
            relation = spec.relations.get(part)
            spec = self.resources.get(relation.resource) if relation else None
        return None


def _hint(name: str, known: Any) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""
