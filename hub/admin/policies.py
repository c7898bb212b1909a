"""Administration of the sharing policy: :mod:`hub.sharing` behind the admin check.

Each function calls :meth:`hub.access.Access.require_admin` first; the author recorded
with a version (and in the audit log) is the calling organization and client.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from hub import sharing
from hub.access import Resource, access
from hub.models import PolicyVersion
from hub.principal import Principal


def author_of(principal: Principal) -> str:
    return f"{principal.organization_slug}/{principal.client_id}"


async def validate_policy(
    principal: Principal, source: str, fmt: sharing.Format
) -> list[sharing.Problem]:
    access.require_admin(principal)
    return sharing.check_source(source, fmt)[1]


async def preview_policy(
    session: AsyncSession, principal: Principal, source: str, fmt: sharing.Format, key: bytes
) -> tuple[list[sharing.Problem], list[sharing.OrganizationImpact]]:
    access.require_admin(principal)
    return await sharing.preview(session, source, fmt, key)


async def publish_policy(
    session: AsyncSession,
    principal: Principal,
    source: str,
    fmt: sharing.Format,
    reason: str,
    expected_version: int | None,
) -> PolicyVersion:
    access.require_admin(principal)
    return await sharing.publish(
        session,
        source,
        author=author_of(principal),
        reason=reason,
        fmt=fmt,
        expected_current=expected_version,
    )


async def rollback_policy(
    session: AsyncSession, principal: Principal, version: int, reason: str
) -> PolicyVersion:
    access.require_admin(principal)
    return await sharing.rollback(session, version, author=author_of(principal), reason=reason)


async def policy_versions(session: AsyncSession, principal: Principal) -> list[PolicyVersion]:
    access.require_admin(principal)
    return await sharing.list_versions(session)


async def diff_policy_versions(
    session: AsyncSession, principal: Principal, old: int, new: int
) -> sharing.VersionDiff:
    access.require_admin(principal)
    return await sharing.diff_versions(session, old, new)


async def explain_access(
    session: AsyncSession,
    principal: Principal,
    organization: str,
    resource: Resource,
    record_id: uuid.UUID,
) -> dict[str, Any]:
    access.require_admin(principal)
    return await sharing.explain_access(session, organization, resource, record_id)
