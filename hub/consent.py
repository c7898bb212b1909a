"""Recording a customer's consent (DESIGN §3: share with partners, marketing opt-in, with
when and where it was given).

Consent is a fact reported by whoever collected it (marketing's preference centre, a
support call), not an edit of a record the writer has read: :func:`record_consent` needs
no expected version. It still never loses a concurrent update: the row is changed by a
compare-and-set on the version it read, re-read and retried when another writer got in
first, and it bumps the version so that writers who *did* read it get CONFLICT.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import changes, provenance
from hub.access import Action, Record, Resource, access
from hub.activity import contribution_time
from hub.errors import ConflictError
from hub.models import Customer
from hub.models._types import utcnow
from hub.outbox import Operation
from hub.principal import Principal
from hub.validation import Problems

MAX_SOURCE_LENGTH = 120  # the column's length
_ATTEMPTS = 5  # compare-and-set rounds before giving up (each loses only to a commit)

# Customer column -> its name in RecordConsentInput (for FORBIDDEN paths).
_INPUT_NAMES = {
    "consent_share_with_partners": "shareWithPartners",
    "consent_marketing_opt_in": "marketingOptIn",
    "consent_source": "source",
    "consent_given_at": "givenAt",
}
_CONSENT_COLUMNS = (*_INPUT_NAMES, "version")


@dataclass
class ConsentInput:
    customer_id: uuid.UUID
    source: str
    share_with_partners: bool | None = None
    marketing_opt_in: bool | None = None
    given_at: datetime | None = None


def _validate(data: ConsentInput) -> dict[str, Any]:
    p = Problems("input")
    source = p.text("source", data.source, max_length=MAX_SOURCE_LENGTH, required=True)
    if data.share_with_partners is None and data.marketing_opt_in is None:
        p.add(
            "shareWithPartners",
            "give shareWithPartners, marketingOptIn or both: the consent being recorded",
            "REQUIRED",
        )
    given_at = contribution_time(p, "givenAt", data.given_at)
    p.raise_any()
    values: dict[str, Any] = {"consent_source": source, "consent_given_at": given_at}
    if data.share_with_partners is not None:
        values["consent_share_with_partners"] = data.share_with_partners
    if data.marketing_opt_in is not None:
        values["consent_marketing_opt_in"] = data.marketing_opt_in
    return values


async def record_consent(session: AsyncSession, principal: Principal, data: ConsentInput) -> Record:
    """Set the consent fields given, with ``consent_source`` and ``consent_given_at``
    (``givenAt``, or now), under the policy's Customer ``write`` rule (FORBIDDEN for
    fields outside it; FORBIDDEN, nothing written, if its ``check`` fails after); bumps
    the version, stamps provenance and audits the field diff as ``consent.record``."""
    values = _validate(data)
    await access.check_customer_write(
        session, principal, Resource.CUSTOMER, Action.UPDATE, data.customer_id
    )
    # consent_given_at is always set; choosing its value is what needs the field.
    given = {
        name: _INPUT_NAMES[name]
        for name in values
        if name != "consent_given_at" or data.given_at is not None
    }
    access.check_fields(principal, Resource.CUSTOMER, Action.UPDATE, given)
    columns = [getattr(Customer, name) for name in (*_CONSENT_COLUMNS, "provenance")]
    for _ in range(_ATTEMPTS):
        row = (
            await session.execute(select(*columns).where(col(Customer.id) == data.customer_id))
        ).one()
        now = utcnow()
        stamps = {
            **row.provenance,
            **provenance.stamp_all(sorted(values), provenance.stamp(principal, now)),
        }
        result = await session.execute(
            update(Customer)
            .where(col(Customer.id) == data.customer_id, col(Customer.version) == row.version)
            .values(
                **values,
                **access.presets(principal, Resource.CUSTOMER, Action.UPDATE),
                provenance=stamps,
                updated_at=now,
                version=col(Customer.version) + 1,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            break
    else:
        raise ConflictError(
            "the customer kept changing while consent was recorded; retry",
            current_version=row.version,
        )
    await access.check_written(
        session, principal, Resource.CUSTOMER, Action.UPDATE, data.customer_id
    )
    before = {name: getattr(row, name) for name in _CONSENT_COLUMNS}
    after = {**before, **values, "version": row.version + 1}
    await changes.record_change(
        session,
        principal,
        "consent.record",
        Resource.CUSTOMER,
        data.customer_id,
        before,
        after,
        operation=Operation.CONSENT,
    )
    return await access.read_back(session, principal, Resource.CUSTOMER, data.customer_id)
