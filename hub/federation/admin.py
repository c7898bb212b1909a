"""Subgraph administration for hub administrators (the GraphQL admin and the CLI): list,
register, refresh. Every call checks the caller administers the hub; a refresh refuses an
SDL dropping a remote field the sharing policy in force names."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from hub import sharing
from hub.access import access
from hub.errors import InvalidInputError
from hub.federation import store
from hub.models.subgraph import Subgraph
from hub.netguard import NetPolicy
from hub.principal import Principal


async def policy_fields(session: AsyncSession) -> dict[str, frozenset[str]]:
    """Per entity type, the remote fields the policy in force names."""
    version = await sharing.current_version(session)
    if version is None:
        return {}
    document = sharing.parse_stored(version.source, version.format)
    remote = {
        (f.resource.value, f.name): f.type_name
        for shape in await store.accepted_shapes(session)
        for f in shape.fields
    }
    found: dict[str, set[str]] = {}
    for rule in document.rules:
        for name in (*rule.read.visible, *rule.read.masked, *rule.fields):
            type_name = remote.get((rule.resource, name))
            if type_name is not None:
                found.setdefault(type_name, set()).add(name)
    return {type_name: frozenset(names) for type_name, names in found.items()}


async def refresh(session: AsyncSession, name: str, policy: NetPolicy) -> store.Refresh:
    """:func:`hub.federation.store.refresh_subgraph` under the policy in force."""
    fields = await policy_fields(session)
    return await store.refresh_subgraph(session, name, policy, policy_fields=fields)


async def remove(session: AsyncSession, name: str) -> None:
    """:func:`hub.federation.store.remove_subgraph` under the policy in force."""
    await store.remove_subgraph(session, name, policy_fields=await policy_fields(session))


async def remove_subgraph(session: AsyncSession, principal: Principal, name: str) -> None:
    access.require_admin(principal)
    await remove(session, name)


async def list_subgraphs(session: AsyncSession, principal: Principal) -> list[Subgraph]:
    access.require_admin(principal)
    return await store.list_subgraphs(session)


async def add_subgraph(
    session: AsyncSession,
    principal: Principal,
    policy: NetPolicy,
    *,
    name: str,
    url: str,
    header: tuple[str, str] | None,
    oauth: dict[str, str] | None,
    timeout_seconds: float,
) -> tuple[Subgraph, store.Refresh]:
    """Register a subgraph and compose it (refused SDLs leave it registered, with why).
    Bad input is reported at ``input.<field>``."""
    access.require_admin(principal)
    try:
        row = await store.add_subgraph(
            session,
            name=name,
            url=url,
            policy=policy,
            header=header,
            oauth=oauth,
            timeout_seconds=timeout_seconds,
        )
    except InvalidInputError as error:
        raise InvalidInputError(
            [replace(p, path=("input", *p.path)) for p in error.problems]
        ) from None
    return row, await refresh(session, name, policy)


async def refresh_subgraph(
    session: AsyncSession, principal: Principal, name: str, policy: NetPolicy
) -> tuple[Subgraph, store.Refresh]:
    access.require_admin(principal)
    result = await refresh(session, name, policy)
    return await store.get_subgraph(session, name), result
