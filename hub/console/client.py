"""The console's own OAuth client: a public authorization_code client (PKCE, no secret:
the code verifier never leaves the server and the browser never holds a token) of the
operator organization, whose one redirect URI is ``{issuer}/console/callback``.

It is registered the first time anyone opens the console (and by ``hub demo``), and its
redirect URI follows the issuer if that changes; both writes are audited.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import audit
from hub.models import Client, Organization, OrgKind
from hub.oauth.clients import RedirectUriError, check_redirect_uri, create_code_client
from hub.oauth.scopes import Scope

CLIENT_NAME = "Partner Hub console"
ACTOR = "hub console"
# hub:admin is granted only to users with the admin role (hub.oauth.grants); the data
# scopes let the explorer run queries as the signed-in user.
SCOPES = [Scope.HUB_ADMIN.value, Scope.CUSTOMERS_READ.value, Scope.FEEDBACK_READ.value]


class ConsoleUnavailableError(Exception):
    """The console cannot sign anyone in yet (no operator organization)."""


def redirect_uri(issuer: str) -> str:
    return f"{issuer.rstrip('/')}/console/callback"


async def ensure_console_client(session: AsyncSession, issuer: str) -> str:
    """The console client's ``client_id``, registering it (or fixing its redirect URI)."""
    uri = redirect_uri(issuer)
    try:
        check_redirect_uri(uri)
    except RedirectUriError as error:
        raise ConsoleUnavailableError(
            f"the console's redirect URI follows HUB_ISSUER: {error}"
        ) from None
    rows = await session.execute(
        select(Client, Organization)
        .join(Organization, col(Organization.id) == col(Client.organization_id))
        .where(col(Organization.kind) == OrgKind.OPERATOR.value)
        .where(col(Client.name) == CLIENT_NAME)
        .order_by(col(Client.created_at))
    )
    for client, _org in rows.all():
        if "authorization_code" not in client.grant_types or not client.active:
            continue
        if client.redirect_uris != [uri]:
            before = list(client.redirect_uris)
            client.redirect_uris = [uri]
            session.add(client)
            await session.flush()
            await audit.append(
                session,
                audit.Entry(
                    actor=ACTOR,
                    action="client.update",
                    target=f"client:{client.client_id}",
                    details={"redirect_uris": {"old": before, "new": [uri]}},
                ),
            )
        return client.client_id
    operator = (
        await session.execute(
            select(Organization).where(col(Organization.kind) == OrgKind.OPERATOR.value)
        )
    ).scalar_one_or_none()
    if operator is None:
        raise ConsoleUnavailableError("the hub has no operator organization yet: run hub init")
    client, _ = await create_code_client(
        session,
        organization=operator,
        name=CLIENT_NAME,
        scopes=SCOPES,
        redirect_uris=[uri],
        public=True,
    )
    await audit.append(
        session,
        audit.Entry(
            actor=ACTOR,
            action="client.register",
            target=f"client:{client.client_id}",
            details={"organization": operator.slug, "name": CLIENT_NAME, "auth_method": "none"},
        ),
    )
    return client.client_id
