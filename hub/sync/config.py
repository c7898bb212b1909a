"""Connector definitions: read from YAML (or any plain data), checked, stored in the
database (credentials sealed), and loaded back with what a run needs.

A definition (``connectors/examples/`` has complete ones)::

    name: support-desk                 # letters, digits, - and _
    kind: files                        # a key of connectors.REGISTRY
    resource: feedback                 # feedback or customers
    organization: support              # writes as this organization (its policy applies)
    schedule: 15m                      # `hub sync worker` runs it this often (s, m, h, d)
    enabled: true
    config: {path: /srv/exports/desk, format: jsonl}
    mapping: {...}                     # connectors.mapping; none: the input field names
    credentials: {...}                 # sealed at rest; handed to the source only

A file holds one definition, or several under ``connectors:``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

import connectors
from connectors.mapping import FieldMapping
from hub.access import Resource
from hub.access.rules import DATA_SCOPES
from hub.models import Organization, OrgKind
from hub.models._types import utcnow
from hub.models.sync import SyncConnector
from hub.principal import Principal
from hub.sync.customers import CustomerTarget
from hub.sync.errors import ConnectorConfigError, UnknownConnectorError
from hub.sync.feedback import FeedbackTarget
from hub.sync.target import EXTERNAL_ID, Target

TARGETS: dict[Resource, Target] = {
    Resource.FEEDBACK: FeedbackTarget(),
    Resource.CUSTOMER: CustomerTarget(),
}
"""The resources a connector may write."""

RESOURCE_NAMES: dict[str, Resource] = {
    "feedback": Resource.FEEDBACK,
    "customer": Resource.CUSTOMER,
    "customers": Resource.CUSTOMER,
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_KEYS = frozenset(
    {"name", "kind", "resource", "organization", "schedule", "enabled", "config", "mapping"}
    | {"credentials"}
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MIN_SCHEDULE = 10
MAX_SCHEDULE = 366 * 86400
"""A longer schedule is refused: past the date a run's start plus it can reach (every
tick of `hub sync worker` then failed) and PostgreSQL's integer column (it could not be
stored)."""


@dataclass(frozen=True)
class ConnectorSpec:
    """A connector's definition, checked (:func:`parse_spec`)."""

    name: str
    kind: str
    resource: Resource
    organization: str
    config: dict[str, Any]
    mapping: dict[str, Any] | None = None
    schedule_seconds: int | None = None
    enabled: bool = True
    credentials: dict[str, str] | None = field(default=None, repr=False)
    adhoc: bool = False


def resource_named(name: str, where: str = "resource") -> Resource:
    """``feedback`` or ``customers`` (or the registry's name) as a :class:`Resource`."""
    found = RESOURCE_NAMES.get(name.strip().lower())
    if found is None:
        known = ", ".join(sorted({"feedback", "customers"}))
        raise ConnectorConfigError(f"{where}: unknown resource {name!r} (known: {known})")
    return found


def mapping_of(resource: Resource, spec: Any, where: str = "mapping") -> FieldMapping:
    """The field mapping for ``resource``: ``spec`` checked against the fields the
    resource's target takes, or (``None``) the identity over them."""
    target = TARGETS[resource]
    if spec is None:
        return FieldMapping.identity(target.fields, required=(EXTERNAL_ID,))
    try:
        mapping = FieldMapping.parse(spec, targets=target.fields, where=where)
    except connectors.ConfigError as error:
        raise ConnectorConfigError(str(error)) from None
    if EXTERNAL_ID not in mapping.targets:
        raise ConnectorConfigError(
            f"{where}.{EXTERNAL_ID}: required: the source field that identifies a record "
            "(reruns update it instead of adding it again)"
        )
    return mapping


def parse_schedule(value: Any, where: str = "schedule") -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    # At most 12 digits: int() refuses text past 4,300 (a ValueError, not a message).
    elif isinstance(value, str) and (m := re.fullmatch(r"\s*(\d{1,12})\s*([smhd]?)\s*", value)):
        seconds = int(m.group(1)) * _UNITS[m.group(2) or "s"]
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+\s*[smhd]?\s*", value):
        seconds = MAX_SCHEDULE + 1
    else:
        raise ConnectorConfigError(f"{where}: a number of seconds, or e.g. 30s, 15m, 1h, 1d")
    if seconds < MIN_SCHEDULE:
        raise ConnectorConfigError(f"{where}: at least {MIN_SCHEDULE} seconds")
    if seconds > MAX_SCHEDULE:
        raise ConnectorConfigError(f"{where}: at most {MAX_SCHEDULE // 86400} days")
    return seconds


def parse_spec(data: Any, where: str = "connector") -> ConnectorSpec:
    """Check one definition; :class:`ConnectorConfigError` names the key at fault."""
    if not isinstance(data, Mapping):
        raise ConnectorConfigError(f"{where}: must be a mapping of settings")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ConnectorConfigError(f"{where}.{unknown[0]}: not a connector setting")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConnectorConfigError(
            f"{where}.name: required; up to 64 letters, digits, - or _ (not starting with - or _)"
        )
    kind = data.get("kind")
    if kind not in connectors.REGISTRY:
        known = ", ".join(sorted(connectors.REGISTRY))
        raise ConnectorConfigError(f"{where}.kind: must be one of {known}, not {kind!r}")
    resource_text = data.get("resource")
    if not isinstance(resource_text, str):
        raise ConnectorConfigError(f"{where}.resource: required (feedback or customers)")
    resource = resource_named(resource_text, f"{where}.resource")
    organization = data.get("organization")
    if not isinstance(organization, str) or not organization.strip():
        raise ConnectorConfigError(f"{where}.organization: required (an organization's slug)")
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConnectorConfigError(f"{where}.config: must be a mapping of settings")
    credentials = data.get("credentials")
    if credentials is not None and (
        not isinstance(credentials, Mapping)
        or not all(isinstance(v, str) for v in credentials.values())
    ):
        raise ConnectorConfigError(f"{where}.credentials: must map names to text values")
    creds = None if credentials is None else {str(k): str(v) for k, v in credentials.items()}
    try:
        connectors.REGISTRY[kind](config, creds)  # checks the configuration, reads nothing
    except connectors.ConfigError as error:
        raise ConnectorConfigError(f"{where}.{error}") from None
    mapping = data.get("mapping")
    mapping_of(resource, mapping, f"{where}.mapping")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConnectorConfigError(f"{where}.enabled: must be true or false")
    return ConnectorSpec(
        name=name,
        kind=kind,
        resource=resource,
        organization=organization.strip(),
        config=dict(config),
        mapping=None if mapping is None else dict(mapping),
        schedule_seconds=parse_schedule(data.get("schedule"), f"{where}.schedule"),
        enabled=enabled,
        credentials=creds,
    )


def read_yaml(path: Path) -> Any:
    """A YAML file's data; :class:`ConnectorConfigError` says why it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConnectorConfigError(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConnectorConfigError(f"{path} is not UTF-8 text") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConnectorConfigError(f"{path} is not valid YAML{at}") from None
    # PyYAML's parser recurses per level, and its constructors raise ValueError (int()
    # past 4,300 digits, a date like 2026-13-45): both escaped as an "internal error".
    except RecursionError:
        raise ConnectorConfigError(f"{path} nests lists and mappings too deep") from None
    except ValueError as error:
        why = str(error).split(";")[0][:100]
        raise ConnectorConfigError(f"{path} is not valid YAML: {why}") from None


def specs_from_yaml(path: Path) -> list[ConnectorSpec]:
    data = read_yaml(path)
    if isinstance(data, Mapping) and "connectors" in data:
        listed = data["connectors"]
        if not isinstance(listed, list):
            raise ConnectorConfigError(f"{path}: connectors: must be a list")
        return [parse_spec(item, f"connectors[{n}]") for n, item in enumerate(listed)]
    return [parse_spec(data)]


async def organization_named(session: AsyncSession, slug: str) -> Organization:
    found = await session.execute(select(Organization).where(col(Organization.slug) == slug))
    org = found.scalar_one_or_none()
    if org is None:
        raise ConnectorConfigError(f"no organization with slug {slug!r}")
    return org


async def save_connector(session: AsyncSession, spec: ConnectorSpec) -> tuple[SyncConnector, bool]:
    """Create the connector, or update the one of the same name; ``True`` when created.
    Its checkpoint stays: a changed definition continues where the last run stopped."""
    org = await organization_named(session, spec.organization)
    found = await session.execute(select(SyncConnector).where(col(SyncConnector.name) == spec.name))
    row = found.scalar_one_or_none()
    created = row is None
    if row is None:
        row = SyncConnector(
            name=spec.name, kind=spec.kind, resource=spec.resource.value, organization_id=org.id
        )
        session.add(row)
    row.kind = spec.kind
    row.resource = spec.resource.value
    row.organization_id = org.id
    row.config = spec.config
    row.mapping = spec.mapping
    row.schedule_seconds = spec.schedule_seconds
    row.enabled = spec.enabled
    row.adhoc = spec.adhoc
    row.credentials = None if spec.credentials is None else json.dumps(spec.credentials)
    row.updated_at = utcnow()
    await session.flush()
    return row, created


@dataclass(frozen=True)
class Loaded:
    """A stored connector with what a run needs: its organization and credentials."""

    row: SyncConnector
    organization: Organization

    @property
    def resource(self) -> Resource:
        return Resource(self.row.resource)

    @property
    def credentials(self) -> dict[str, str] | None:
        sealed = self.row.credentials
        return None if sealed is None else dict(json.loads(sealed))

    def principal(self) -> Principal:
        """The connector as a caller: its organization, every data scope (the
        organization's policy decides the rest), named ``connector:<name>`` in the
        audit log."""
        org = self.organization
        return Principal(
            client_id=f"connector:{self.row.name}",
            organization_id=org.id,
            organization_slug=org.slug,
            organization_kind=OrgKind(org.kind),
            scopes=DATA_SCOPES,
            attributes=dict(org.attributes or {}),
        )


async def load_connector(session: AsyncSession, name: str) -> Loaded:
    found = await session.execute(
        select(SyncConnector, Organization)
        .join(Organization, col(Organization.id) == col(SyncConnector.organization_id))
        .where(col(SyncConnector.name) == name)
    )
    row = found.first()
    if row is None:
        raise UnknownConnectorError(
            f"no connector named {name!r} (`hub sync status` lists them; "
            "`hub sync apply FILE` defines them)"
        )
    return Loaded(row[0], row[1])


__all__ = [
    "MAX_SCHEDULE",
    "RESOURCE_NAMES",
    "TARGETS",
    "ConnectorSpec",
    "Loaded",
    "load_connector",
    "mapping_of",
    "organization_named",
    "parse_schedule",
    "parse_spec",
    "read_yaml",
    "resource_named",
    "save_connector",
    "specs_from_yaml",
]
