"""The hub's tables (DESIGN §3). Alembic migrations in ``hub/migrations`` create them."""

from sqlmodel import SQLModel

from hub.models.activity import Feedback, Interaction, Purchase
from hub.models.audit_anchor import AuditAnchor
from hub.models.case import Case, CaseNote
from hub.models.client import Client, SigningKey
from hub.models.contribution import IdempotencyKey, ProposedChange
from hub.models.customer import Customer, CustomerPartner, ExternalRef
from hub.models.data_key import DataKey
from hub.models.organization import PARTNER_KINDS, Organization, OrgKind
from hub.models.outbox import OutboxEvent, OutboxReader
from hub.models.policy import AuditEvent, Disclosure, PolicyVersion
from hub.models.staff import STAFF_ROLES, AuthorizationCode, RefreshToken, StaffUser
from hub.models.token_state import RevokedToken, UsedAssertion

metadata = SQLModel.metadata

__all__ = [
    "PARTNER_KINDS",
    "STAFF_ROLES",
    "AuditAnchor",
    "AuditEvent",
    "AuthorizationCode",
    "Case",
    "CaseNote",
    "Client",
    "Customer",
    "CustomerPartner",
    "DataKey",
    "Disclosure",
    "ExternalRef",
    "Feedback",
    "IdempotencyKey",
    "Interaction",
    "OrgKind",
    "Organization",
    "OutboxEvent",
    "OutboxReader",
    "PolicyVersion",
    "ProposedChange",
    "Purchase",
    "RefreshToken",
    "RevokedToken",
    "SigningKey",
    "StaffUser",
    "UsedAssertion",
    "metadata",
]
