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
from operator import itemgetter
from typing import Any

from hub import audit
from hub.models._types import utcnow
from hub.principal import Principal

READ = "read"
"""The audit action of a partner read."""

CUSTOMER = "Customer"  # hub.access.Resource.CUSTOMER (hub.access imports this package)


_MARKERS = frozenset({"__withheld__", "__remote__"})
"""Keys of a projected record that are not fields: ``hub.access.WITHHELD`` and
``hub.access.REMOTE`` (remote fields are noted when fetched, not here) (named here
because ``hub.access`` imports this package; a test checks they agree)."""


_Group = dict[str, str]
"""The records of one resource that carried the same fields: record id -> the customer it
is about (both canonical text)."""


@dataclass
class ReadCollector:
    """What one partner request received: per ``(resource, record id)``, the customer it
    is about and the fields it carried. Fed by :meth:`note`; closed by :func:`collect`.

    Kept as the event lists it (:meth:`entry`): per resource, the records grouped by the
    set of fields they carried, so that closing a page of hundreds of records sorts a few
    lists instead of visiting each record again (the writer closes every page a partner
    reads)."""

    principal: Principal
    operation: str | None
    query_sha256: str
    at: datetime = field(default_factory=utcnow)
    records: dict[str, dict[str, frozenset[str]]] = field(default_factory=dict)
    """Per resource, per record id as canonical text (the event records ids as text, and
    canonical UUID texts order as the UUIDs do: fixed-width lowercase hex), the fields it
    carried. Empty until something is noted."""
    groups: dict[str, dict[frozenset[str], _Group]] = field(default_factory=dict)
    """Per resource, per set of fields, the records that carried exactly those."""
    versions: set[int] = field(default_factory=set)
    """The policy versions the records were projected under."""

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
        record_id = str(values["id"])
        customer_id = record_id if resource == CUSTOMER else str(values["customer_id"])
        fields = frozenset(record.keys() - _MARKERS)
        self.note_fields(resource, policy_version, record_id, customer_id, fields)

    def note_fields(
        self,
        resource: str,
        policy_version: int | None,
        record_id: str,
        customer_id: str,
        fields: frozenset[str],
    ) -> None:
        """:meth:`note` for a caller that has the ids as canonical text and the field
        names as a set already (the compiled read path keeps one set per row outcome, so
        a page of hundreds of records builds none)."""
        # Called for every record a partner page emits: a few dict lookups, no object.
        noted = self.records.get(resource)
        if noted is None:
            noted = self.records[resource] = {}
            self.groups[resource] = {}
        if policy_version is not None:
            self.versions.add(policy_version)
        before = noted.get(record_id)
        if before is None:
            noted[record_id] = fields
            groups = self.groups[resource]
            group = groups.get(fields)
            if group is None:
                groups[fields] = {record_id: customer_id}
            else:
                group[record_id] = customer_id
        elif not fields <= before:
            # Emitted again with more fields (another place of the response): it carried
            # them all.
            self._move(resource, record_id, before, before | fields)

    def forget_field(self, resource: str, record_id: str, name: str) -> None:
        """Take ``name`` back from what was noted of a record: a field noted before its
        value was fetched (a remote field, :mod:`hub.federation.fetch`) whose fetch
        failed, so the record did not carry it after all."""
        before = self.records.get(resource, {}).get(record_id)
        if before is not None and name in before:
            self._move(resource, record_id, before, before - {name})

    def _move(
        self, resource: str, record_id: str, before: frozenset[str], after: frozenset[str]
    ) -> None:
        """Regroup a record noted with the fields ``before`` as carrying ``after``."""
        groups = self.groups[resource]
        old = groups[before]
        customer_id = old.pop(record_id)
        if not old:
            del groups[before]
        groups.setdefault(after, {})[record_id] = customer_id
        self.records[resource][record_id] = after

    @property
    def customer_ids(self) -> list[uuid.UUID]:
        # UUIDs order like their text forms (fixed-width hex).
        return [uuid.UUID(c) for c in self._customers()]

    def _customers(self) -> list[str]:
        about: set[str] = set()
        for groups in self.groups.values():
            for group in groups.values():
                about.update(group.values())
        return sorted(about)

    def entry(self) -> audit.Entry:
        """The ``read`` audit event: who, which operation (name and query hash), which
        customers, and per resource the fields disclosed with the record ids that carried
        them (records with the same fields are grouped; groups in the order of their
        first id, ids sorted)."""
        disclosed: dict[str, list[dict[str, Any]]] = {}
        for resource in sorted(self.groups):
            listed = []
            for names, group in self.groups[resource].items():
                ids = sorted(group)
                listed.append((ids[0], names, ids, group))
            listed.sort(key=_first_id)
            if resource == CUSTOMER:
                disclosed[str(resource)] = [  # a plain str key (Resource is a StrEnum)
                    {"fields": sorted(names), "ids": ids} for _, names, ids, _ in listed
                ]
            else:
                disclosed[str(resource)] = [
                    {
                        "fields": sorted(names),
                        "ids": ids,
                        "customers": list(itemgetter(*ids)(group))
                        if len(ids) > 1
                        else [group[ids[0]]],
                    }
                    for _, names, ids, group in listed
                ]
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
                "policy_version": max(self.versions) if self.versions else None,
                "customers": self._customers(),
                "disclosed": disclosed,
            },
            plain=True,  # ids, names and a version: plain JSON as built
        )


def _first_id(listed: tuple[str, frozenset[str], list[str], _Group]) -> str:
    return listed[0]


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
