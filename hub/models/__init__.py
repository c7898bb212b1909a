"""The hub's tables (DESIGN §3). Alembic migrations in ``hub/migrations`` create them.

One module per aggregate. Every module of this package is imported here, so
:data:`metadata` (Alembic's ``env.py``, the tests) holds every table without a list to
keep up to date: a new aggregate is a new module, and its classes are imported from it
(``from hub.models.<aggregate> import ...``). The tables most of the hub uses are also
re-exported here by name.
"""

import importlib
import pkgutil

from sqlmodel import SQLModel

from hub.models.activity import Feedback, Interaction, Purchase
from hub.models.audit_anchor import AuditAnchor
from hub.models.client import Client, SigningKey
from hub.models.contribution import IdempotencyKey, ProposedChange
from hub.models.customer import Customer, CustomerPartner, ExternalRef
from hub.models.data_key import DataKey
from hub.models.organization import PARTNER_KINDS, Organization, OrgKind
from hub.models.outbox import OutboxEvent, OutboxReader
from hub.models.policy import AuditEvent, Disclosure, PolicyVersion
from hub.models.staff import STAFF_ROLES, AuthorizationCode, RefreshToken, StaffUser
from hub.models.token_state import RevokedToken, UsedAssertion

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):  # private helpers (_types, _sealed) hold no tables
        importlib.import_module(f"{__name__}.{_module.name}")

metadata = SQLModel.metadata

__all__ = [
    "PARTNER_KINDS",
    "STAFF_ROLES",
    "AuditAnchor",
    "AuditEvent",
    "AuthorizationCode",
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
