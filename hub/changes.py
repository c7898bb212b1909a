"""A committed change of a record: audited with its field diff and published in the
outbox, both in the write's own transaction.

The write pipeline (:mod:`hub.access.pipeline`) calls :func:`record_change` once per
record a policy-governed write changed; administrative writes (merge, assignments,
review decisions) call it themselves, and :func:`publish` for the records they change in
bulk without a field diff of their own (rows moved by a merge, proposals superseded by
newer ones). A write that changes nothing calls neither, and a write that
fails rolls both back with the rest of its transaction.

Which events each write makes (:class:`hub.outbox.Operation`):

- ``createCustomer``, ``upsertCustomer`` creating, ``submitFeedback``,
  ``logInteraction``, ``reportPurchase``, ``assignPartner`` (new): one ``create``.
- ``updateCustomer`` / ``upsertCustomer`` applying fields: one Customer ``update``;
  fields left to review add one ProposedChange ``create`` each (and a ``status`` for each
  pending proposal of the same organization and field they supersede). A contribution
  entirely ``queued`` changes no customer: only those ProposedChange events. One that is
  ``unchanged`` makes none.
- ``recordConsent``: Customer ``consent``. ``updateFeedbackStatus``: Feedback ``status``.
- ``assignPartner`` with a new role: CustomerPartner ``update``; ``unassignPartner``:
  ``delete``.
- ``approveChange``: ``approve`` on the Customer and on the ProposedChange;
  ``rejectChange``: ``reject`` on the ProposedChange.
- ``mergeCustomers``: ``merge`` on the survivor and on every feedback, interaction,
  purchase, assignment and proposed change moved to it; ``delete`` on the duplicate and
  on its assignments to partners the survivor already had.

External references, idempotency keys and the audit log itself are bookkeeping, not
records anyone subscribes to: they make no events.

Field names are those :mod:`hub.access` and the sharing policies use (``lifecycle_stage``,
``consent_share_with_partners``), from the resource's allow-list, so a channel can tell
with :meth:`hub.access.Access.shown_fields` which of them a subscriber may learn about;
columns outside it (blind indexes, provenance stamps) and timestamps are never named.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import audit, outbox
from hub.access import FIELDS, Resource
from hub.models import ProposedChange
from hub.models._types import row_values, table_columns
from hub.outbox import Change, Operation
from hub.principal import Principal

PROPOSED_CHANGE = "ProposedChange"
"""The outbox resource of a proposed change (administrators review them)."""

# Administrators see every column of a proposed change.
_PROPOSAL_FIELDS = frozenset(column.name for column in table_columns(ProposedChange))
# Every write touches these; naming them in each event would say nothing.
_BOOKKEEPING = frozenset({"id", "version", "created_at", "updated_at", "provenance"})


def _allowed(resource: str) -> frozenset[str]:
    if resource == PROPOSED_CHANGE:
        return _PROPOSAL_FIELDS
    return FIELDS[Resource(resource)]


def changed_fields(
    resource: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[str, ...]:
    """The names of the fields whose value differs between ``before`` and ``after`` (a
    missing field counts as ``None``), sorted, among the resource's published fields."""
    allowed = _allowed(resource) - _BOOKKEEPING
    names = (set(before) | set(after)) & allowed
    return tuple(sorted(n for n in names if before.get(n) != after.get(n)))


async def record_change(
    session: AsyncSession,
    principal: Principal,
    action: str,
    resource: str,
    record_id: uuid.UUID,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
    *,
    operation: Operation,
    **extra: Any,
) -> None:
    """Audit one changed record as ``action`` with its field diff (and ``extra``
    details), and publish its outbox event: the names of the changed fields (none for a
    ``delete``) and ``after``'s ``version``, if it has one."""
    await audit.record_write(
        session, principal, action, resource, record_id, before, after, **extra
    )
    deleted = operation is Operation.DELETE
    change = Change(
        resource=resource,
        record_id=record_id,
        operation=operation,
        fields=() if deleted else changed_fields(resource, before, after),
        version=None if deleted else after.get("version"),
    )
    await outbox.emit(session, change, actor=audit.actor_of(principal))


async def publish(session: AsyncSession, principal: Principal, changes: Iterable[Change]) -> None:
    """Publish changes the caller audits otherwise (in bulk, or as a decision)."""
    await outbox.emit_all(session, changes, actor=audit.actor_of(principal))


def moved(resource: str, ids: Iterable[uuid.UUID]) -> list[Change]:
    """The events of records a merge moved to the survivor: their ``customer_id``."""
    return [Change(resource, i, Operation.MERGE, ("customer_id",)) for i in ids]


def deleted(resource: str, ids: Iterable[uuid.UUID]) -> list[Change]:
    return [Change(resource, i, Operation.DELETE) for i in ids]


def proposed(rows: Iterable[ProposedChange]) -> list[Change]:
    """The events of new proposed changes."""
    return [
        Change(
            PROPOSED_CHANGE,
            row.id,
            Operation.CREATE,
            changed_fields(PROPOSED_CHANGE, {}, row_values(row)),
        )
        for row in rows
    ]


def decided(
    ids: Iterable[uuid.UUID], operation: Operation, *, reason: bool = False
) -> list[Change]:
    """The events of proposed changes decided (approved, rejected, superseded): their
    status, when and by whom, and the reason when one was given."""
    fields = ("decided_at", "decided_by", *(("decision_reason",) if reason else ()), "status")
    return [Change(PROPOSED_CHANGE, i, operation, fields) for i in ids]
