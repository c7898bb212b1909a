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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import provenance
from hub.access import Action, Record, Resource, pipeline
from hub.access.pipeline import Update, WriteRequest
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
    (``givenAt``, or now), through the write pipeline under the policy's Customer
    ``write`` rule (FORBIDDEN for fields outside it; FORBIDDEN, nothing written, if its
    ``check`` fails after); bumps the version, stamps provenance and audits the field
    diff as ``consent.record``."""
    values = _validate(data)
    # consent_given_at is always set; choosing its value is what needs the field.
    given = {
        name: _INPUT_NAMES[name]
        for name in values
        if name != "consent_given_at" or data.given_at is not None
    }

    def change(current: Customer) -> Update:
        now = utcnow()
        stamps = {
            **current.provenance,
            **provenance.stamp_all(sorted(values), provenance.stamp(principal, now)),
        }
        return Update(
            {
                **values,
                "provenance": stamps,
                "updated_at": now,
                "version": col(Customer.version) + 1,
            },
            # Compare-and-set on the version read: a concurrent writer makes this round
            # match no row, and the pipeline reads the customer again and retries.
            where=(col(Customer.version) == current.version,),
        )

    written = await pipeline.update(
        session,
        principal,
        WriteRequest(
            Resource.CUSTOMER,
            Action.UPDATE,
            audit="consent.record",
            operation=Operation.CONSENT,
            target=data.customer_id,
            given=given,
            snapshot=_consent_columns,
        ),
        change,
        conflict=lambda current: ConflictError(
            "the customer kept changing while consent was recorded; retry",
            current_version=current.version,
        ),
        attempts=_ATTEMPTS,
    )
    return written.record


def _consent_columns(values: Mapping[str, Any]) -> dict[str, Any]:
    return {name: values.get(name) for name in _CONSENT_COLUMNS}
