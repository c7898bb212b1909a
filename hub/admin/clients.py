"""OAuth clients as administrators register, list, rotate and disable them.

The work is :mod:`hub.oauth.clients`; this module adds the admin check, input validation
as user errors, and a public shape without secret hashes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import audit
from hub.access import access
from hub.admin.organizations import find_organization
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.models import Client, Organization
from hub.oauth import clients
from hub.oauth.client_keys import ClientKeysError, validate_client_jwks
from hub.oauth.scopes import (
    ScopeNotGrantableError,
    UnknownScopeError,
    check_grantable,
    parse_scopes,
)
from hub.principal import Principal
from hub.validation import Problems

MAX_OVERLAP = 30 * 24 * 3600


@dataclass(frozen=True)
class ClientView:
    """What administrators see of a client: never a secret or its hash."""

    client_id: str
    name: str
    organization_slug: str
    scopes: list[str]
    auth_method: str
    active: bool
    created_at: datetime
    previous_secret_valid_until: datetime | None

    @classmethod
    def of(cls, client: Client, organization_slug: str) -> ClientView:
        method = "private_key_jwt" if client.jwks else "client_secret_basic"
        return cls(
            client_id=client.client_id,
            name=client.name,
            organization_slug=organization_slug,
            scopes=list(client.scopes),
            auth_method=method,
            active=client.active,
            created_at=client.created_at,
            previous_secret_valid_until=client.previous_secret_expires_at,
        )


@dataclass(frozen=True)
class RegisteredClient:
    """A client just registered or rotated; ``secret`` is shown this once (None: JWKS)."""

    client: ClientView
    secret: str | None


@dataclass(frozen=True)
class RegisterFields:
    organization: str
    name: str
    scopes: list[str]
    jwks: Any = None


async def _slug_of(session: AsyncSession, client: Client) -> str:
    org = await session.get(Organization, client.organization_id)
    return "" if org is None else org.slug


async def _require(session: AsyncSession, client_id: str) -> Client:
    client = await clients.find_client(session, client_id)
    if client is None:
        raise NotFoundError("no such client")
    return client


async def list_clients(
    session: AsyncSession, principal: Principal, organization: str
) -> list[ClientView]:
    access.require_admin(principal)
    org = await find_organization(session, organization)
    if org is None:
        raise NotFoundError("no such organization")
    rows = await session.execute(
        select(Client).where(col(Client.organization_id) == org.id).order_by(col(Client.name))
    )
    return [ClientView.of(client, org.slug) for client in rows.scalars()]


async def register_client(
    session: AsyncSession, principal: Principal, fields: RegisterFields
) -> RegisteredClient:
    """A secret client, or a private_key_jwt client when ``jwks`` is given."""
    access.require_admin(principal)
    problems = Problems()
    name = problems.text("name", fields.name, max_length=200, required=True)
    org = await find_organization(session, fields.organization)
    if org is None:
        problems.add("organization", "no such organization", "NOT_FOUND")
    elif not org.active:
        problems.add("organization", "the organization is disabled", "NOT_ALLOWED")
    scopes: list[str] | None = None
    try:
        scopes = parse_scopes(" ".join(fields.scopes))
        if org is not None:
            check_grantable(org.kind, scopes)
    except UnknownScopeError as error:
        problems.add("scopes", str(error))
    except ScopeNotGrantableError as error:
        problems.add("scopes", str(error), "NOT_ALLOWED")
    jwks = None
    if fields.jwks is not None:
        try:
            jwks = validate_client_jwks(fields.jwks)
        except ClientKeysError as error:
            problems.add("jwks", str(error))
    if problems.items or org is None or name is None or scopes is None:
        raise InvalidInputError(problems.items)
    secret: str | None = None
    if jwks is not None:
        client = await clients.create_key_client(
            session, organization=org, name=name, scopes=scopes, jwks=jwks
        )
    else:
        client, secret = await clients.create_client(
            session, organization=org, name=name, scopes=scopes
        )
    view = ClientView.of(client, org.slug)
    # The secret and the JWKS stay out of the log: the method says which one was given.
    details = {
        "organization": org.slug,
        "name": name,
        "scopes": view.scopes,
        "auth_method": view.auth_method,
    }
    await audit.record(session, principal, "client.register", f"client:{view.client_id}", details)
    return RegisteredClient(view, secret)


async def rotate_client_secret(
    session: AsyncSession, principal: Principal, client_id: str, overlap: int
) -> RegisteredClient:
    """A new secret; the previous one keeps working ``overlap`` seconds."""
    access.require_admin(principal)
    client = await _require(session, client_id)
    problems: list[FieldProblem] = []
    if not 0 <= overlap <= MAX_OVERLAP:
        message = f"must be between 0 and {MAX_OVERLAP} seconds"
        problems.append(FieldProblem(("overlapSeconds",), message, "OUT_OF_RANGE"))
    if client.secret_hash is None:
        message = "this client authenticates with private_key_jwt and has no secret"
        problems.append(FieldProblem(("clientId",), message, "NOT_ALLOWED"))
    if problems:
        raise InvalidInputError(problems)
    client, secret = await clients.rotate_secret(session, client_id, overlap=overlap)
    view = ClientView.of(client, await _slug_of(session, client))
    details = {"organization": view.organization_slug, "overlap_seconds": overlap}
    await audit.record(session, principal, "client.rotate_secret", f"client:{client_id}", details)
    return RegisteredClient(view, secret)


async def disable_client(session: AsyncSession, principal: Principal, client_id: str) -> ClientView:
    """Refused at the token endpoint now; its tokens within ``HUB_CLIENT_CACHE_TTL``."""
    access.require_admin(principal)
    was_active = (await _require(session, client_id)).active
    client = await clients.disable_client(session, client_id)
    view = ClientView.of(client, await _slug_of(session, client))
    details = {"organization": view.organization_slug, "was_active": was_active}
    await audit.record(session, principal, "client.disable", f"client:{client_id}", details)
    return view
