"""Collecting what one partner request receives.

A :class:`ReadCollector` is opened by the channel serving a request (the GraphQL layer,
:func:`collect`) in a context variable and fed by :meth:`hub.access.Access.project_all`,
the one place every emitted row is projected. It only notes ids and field names; nothing
is open for staff or when ``HUB_AUDIT_READS`` is off, so the projection pays one
context-variable lookup. :meth:`ReadCollector.entry` turns it into the ``read`` audit
event that :mod:`hub.disclosures.write` appends (and later reads back for the index).

May import :mod:`hub.audit`, :mod:`hub.models` and :mod:`hub.principal`; never
:mod:`hub.access` (which imports this module) nor the database.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub import audit
from hub.models._types import utcnow
from hub.principal import Principal

READ = "read"
"""The audit action of a partner read."""

CUSTOMER = "Customer"  # hub.access.Resource.CUSTOMER (hub.access imports this package)


_MARKERS = frozenset({"__withheld__"})
"""Keys of a projected record that are not fields: ``hub.access.WITHHELD`` (named here
because ``hub.access`` imports this package; a test checks they agree)."""


@dataclass
class _Seen:
    customer_id: str
    fields: frozenset[str]
    policy_version: int | None


@dataclass
class ReadCollector:
    """What one partner request received: per ``(resource, record id)``, the customer it
    is about and the fields it carried. Fed by :meth:`note`; closed by :func:`collect`."""

    principal: Principal
    operation: str | None
    query_sha256: str
    at: datetime = field(default_factory=utcnow)
    records: dict[tuple[str, str], _Seen] = field(default_factory=dict)
    """Keyed by (resource, record id as canonical text): the event records ids as text,
    and canonical UUID texts order as the UUIDs do (fixed-width lowercase hex)."""

    def note(
        self,
        resource: str,
        policy_version: int | None,
        values: Mapping[Any, Any],
        record: Mapping[str, Any],
    ) -> None:
        """Record that ``record`` (the projection of the raw row ``values``) is emitted.

        The customer concerned comes from the raw row: a supplier's feedback carries a
        pseudonymous ``customer_ref``, but the disclosure is still about that customer.
        Called for every row a partner receives: it only notes, in C-level set operations.
        Ids may be given as UUIDs or as their canonical text (the compiled read path reads
        them as text).
        """
        key = (resource, str(values["id"]))
        fields = frozenset(record.keys() - _MARKERS)
        seen = self.records.get(key)
        if seen is None:
            customer_id = key[1] if resource == CUSTOMER else str(values["customer_id"])
            self.records[key] = _Seen(customer_id, fields, policy_version)
        elif not fields <= seen.fields:
            seen.fields |= fields

    @property
    def customer_ids(self) -> list[uuid.UUID]:
        # UUIDs order like their text forms (fixed-width hex).
        return [uuid.UUID(c) for c in sorted({seen.customer_id for seen in self.records.values()})]

    def entry(self) -> audit.Entry:
        """The ``read`` audit event: who, which operation (name and query hash), which
        customers, and per resource the fields disclosed with the record ids that carried
        them (records with the same fields are grouped)."""
        grouped: dict[str, dict[frozenset[str], list[tuple[str, str]]]] = {}
        versions: set[int] = set()
        for (resource, record_id), seen in sorted(self.records.items(), key=_by_key):
            groups = grouped.setdefault(resource, {})
            groups.setdefault(seen.fields, []).append((record_id, seen.customer_id))
            if seen.policy_version is not None:
                versions.add(seen.policy_version)
        disclosed: dict[str, list[dict[str, Any]]] = {}
        for resource, groups in grouped.items():
            disclosed[resource] = []
            for names, pairs in groups.items():
                group: dict[str, Any] = {"fields": sorted(names), "ids": [i for i, _ in pairs]}
                if resource != CUSTOMER:  # which customer each record is about
                    group["customers"] = [c for _, c in pairs]
                disclosed[resource].append(group)
        principal = self.principal
        return audit.Entry(
            actor=audit.actor_of(principal),
            organization=principal.organization_slug,
            client=principal.client_id,
            action=READ,
            target=f"operation:{self.operation or '(anonymous)'}",
            at=self.at,
            details={
                "operation": self.operation,
                "query_sha256": self.query_sha256,
                "policy_version": max(versions) if versions else None,
                "customers": sorted({seen.customer_id for seen in self.records.values()}),
                "disclosed": disclosed,
            },
        )


def _by_key(item: tuple[tuple[str, str], _Seen]) -> tuple[str, str]:
    # Canonical UUID texts order as the UUIDs do.
    return item[0]


_current: contextvars.ContextVar[ReadCollector | None] = contextvars.ContextVar(
    "read_collector", default=None
)


def recording(principal: Principal) -> ReadCollector | None:
    """The collector of the current request if it records ``principal``'s reads.

    Called once per projection; returns ``None`` (no work) unless a partner request opened
    a collector. Projections made for another principal in the same context (none today)
    are not attributed to the caller.
    """
    collector = _current.get()
    if collector is None or collector.principal != principal:
        return None
    return collector


def query_hash(query: str) -> str:
    """The SHA-256 (hex) of an operation's text, as recorded with its reads."""
    return hashlib.sha256(query.encode()).hexdigest()


@contextlib.contextmanager
def collect(
    principal: Principal, *, operation: str | None, query: str, enabled: bool = True
) -> Iterator[ReadCollector | None]:
    """Collect the reads of one request in the block (``None``: nothing is recorded: the
    caller is not a partner, or read auditing is off). Hand the collector to
    :meth:`DisclosureWriter.submit` afterwards; it is empty when nothing was emitted.

    Example::

        with collect(principal, operation=name, query=text) as reads:
            result = await execute()
        if reads is not None:
            writer.submit(reads)
    """
    if not enabled or not principal.is_partner:
        yield None
        return
    collector = ReadCollector(principal, operation, query_hash(query))
    token = _current.set(collector)
    try:
        yield collector
    finally:
        _current.reset(token)
