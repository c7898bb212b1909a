"""The demo's console login: a staff admin of the operator with a password made for this
demo run, printed once by ``hub demo`` and stored only as its argon2 hash."""

from __future__ import annotations

import contextlib
import secrets

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub import audit
from hub.console.client import ConsoleUnavailableError, ensure_console_client
from hub.models import Organization, OrgKind
from hub.staff import create_staff_user

DEMO_ADMIN_EMAIL = "admin@operator.example"


async def create_demo_admin(session: AsyncSession, issuer: str) -> tuple[str, str]:
    """Create the demo's console admin (and register the console client); returns the
    email and the password, which is nowhere else."""
    operator = (
        await session.execute(
            select(Organization).where(col(Organization.kind) == OrgKind.OPERATOR.value)
        )
    ).scalar_one()
    password = secrets.token_urlsafe(15)  # 20 characters, 120 bits
    user = await create_staff_user(
        session,
        organization=operator,
        email=DEMO_ADMIN_EMAIL,
        name="Demo administrator",
        password=password,
        roles=["admin"],
    )
    await audit.append(
        session,
        audit.shell_entry(
            "staff_user.create",
            f"staff_user:{user.id}",
            {"organization": operator.slug, "roles": user.roles},
        ),
    )
    # A demo whose HUB_ISSUER the console cannot use as a redirect URI still seeds; the
    # console then says why it cannot sign anyone in.
    with contextlib.suppress(ConsoleUnavailableError):
        await ensure_console_client(session, issuer)
    return user.email, password
