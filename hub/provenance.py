"""Who set each customer field, and whose contribution wins (issue 5, DESIGN §3).

Every customer field a write sets gets a *stamp* in ``Customer.provenance``: the
organization, its kind, the client, the connector (``source``) if any, and when. Source
precedence decides whether a new contribution overwrites a field: each field has an
ordered list of *tiers* (``operator``, ``department``, ``partner``) or organizations
(``org:<slug>``), highest first; a contribution overwrites when its rank is at least the
rank of whoever set the field last (equal ranks: the newest wins). A lower-ranked
contribution becomes a proposed change for an administrator to approve or reject
(:mod:`hub.proposals`, :mod:`hub.review`).

The order is configurable with ``HUB_SOURCE_PRECEDENCE`` (JSON): ``{"*": [...], "<field>":
[...]}``; the default is operator > department > partner for every field.

A stamp whose ``kind`` is missing or not an organization kind (the demo seeded such stamps
before it said ``operator``) is of unknown origin: it ranks with the highest entry of the
order, so only a top-ranked contribution overwrites it and every other one is queued for
review. Ranking it lowest, as once happened, let any partner overwrite it silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.models import OrgKind
from hub.principal import Principal

TIERS = ("operator", "department", "partner")
DEFAULT_ORDER: tuple[str, ...] = TIERS

Stamp = Mapping[str, Any]
"""One field's provenance: organization, kind, client, source, at (ISO 8601)."""


_KINDS = frozenset(kind.value for kind in OrgKind)


def tier_of(kind: str) -> str:
    """The precedence tier of an organization kind: suppliers, vendors and distributors
    are all ``partner``."""
    return kind if kind in ("operator", "department") else "partner"


def _tier_of_stamp(source: Stamp) -> str | None:
    """The tier of whoever set a value; ``None`` when the stamp does not say which kind of
    organization it was."""
    kind = source.get("kind")
    return tier_of(kind) if isinstance(kind, str) and kind in _KINDS else None


def stamp(principal: Principal, at: datetime, *, source: str | None = None) -> dict[str, Any]:
    """The provenance of a value the principal sets now (``source``: the connector)."""
    return stamp_for(
        principal.organization_slug,
        principal.organization_kind.value,
        principal.client_id,
        at,
        source=source,
    )


def stamp_for(
    organization: str,
    kind: str | None,
    client: str | None,
    at: datetime,
    *,
    source: str | None = None,
    approved_by: str | None = None,
) -> dict[str, Any]:
    """A stamp for a contributor named by its parts (e.g. a proposer whose change an
    administrator approves: ``approved_by`` names the administrator; ``client`` is
    ``None`` for values no OAuth client wrote, such as the demo's seeded data)."""
    value: dict[str, Any] = {
        "organization": organization,
        "kind": kind,
        "client": client,
        "source": source,
        "at": at.isoformat(),
    }
    if approved_by is not None:
        value["approved_by"] = approved_by
    return value


def stamp_all(names: Iterable[str], value: Stamp) -> dict[str, Any]:
    return {name: dict(value) for name in names}


@dataclass(frozen=True)
class Precedence:
    """Per-field source order, highest first; ``default`` for fields not listed."""

    default: tuple[str, ...] = DEFAULT_ORDER
    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping[str, Iterable[str]]) -> Precedence:
        """``{"*": [...], "<field>": [...]}`` as in ``HUB_SOURCE_PRECEDENCE``."""
        orders = {name: tuple(entries) for name, entries in config.items()}
        default = orders.pop("*", DEFAULT_ORDER)
        return cls(default=default, fields=orders)

    def rank(self, name: str, source: Stamp) -> int:
        """0 is highest. An organization listed as ``org:<slug>`` ranks where it is listed;
        else its tier does; a source the order does not mention ranks below all of them.
        A stamp of unknown kind ranks highest (see the module's docstring)."""
        order = self.fields.get(name, self.default)
        slug = source.get("organization")
        for index, entry in enumerate(order):
            if entry == f"org:{slug}":
                return index
        tier = _tier_of_stamp(source)
        if tier is None:
            return 0
        for index, entry in enumerate(order):
            if entry == tier:
                return index
        return len(order)

    def overrides(self, name: str, new: Stamp, current: Stamp | None) -> bool:
        """Whether a contribution stamped ``new`` may overwrite a value stamped ``current``
        (a field nobody stamped yet is anyone's)."""
        if current is None:
            return True
        return self.rank(name, new) <= self.rank(name, current)


def validate_config(config: Mapping[str, Any]) -> None:
    """Refuse a precedence setting that cannot mean anything (for the settings loader)."""
    for name, entries in config.items():
        if not isinstance(entries, list | tuple) or not entries:
            raise ValueError(f"source precedence for {name!r} must be a non-empty list")
        for entry in entries:
            if not isinstance(entry, str) or not (
                entry in TIERS or (entry.startswith("org:") and len(entry) > 4)
            ):
                raise ValueError(
                    f"source precedence for {name!r}: {entry!r} is neither a tier "
                    f"({', '.join(TIERS)}) nor org:<slug>"
                )


_current = Precedence()


def current() -> Precedence:
    """The precedence in force in this process."""
    return _current


def configure(config: Mapping[str, Iterable[str]] | None) -> None:
    """Put the configured precedence in force (the app does this at start-up)."""
    global _current
    _current = Precedence() if not config else Precedence.from_config(config)


def is_internal(principal: Principal) -> bool:
    return principal.organization_kind in (OrgKind.OPERATOR, OrgKind.DEPARTMENT)
