"""Registered subgraphs in the database: add, refresh, list (``hub subgraphs``).

A refresh fetches the subgraph's ``_service { sdl }`` through the SSRF-checked transport,
reads what it contributes (:func:`hub.federation.sdl.analyse`), checks it composes with
the other accepted subgraphs and with the hub (graphql-core, :mod:`hub.federation.compose`)
and that the sharing policy in force still names only fields that exist; then the SDL is
accepted and every replica serves it within ``HUB_FEDERATION_REFRESH_INTERVAL``. A
refused or failed refresh records why (``status``, ``last_error``) and leaves the
accepted SDL serving. Registrations, accepted SDLs and refusals are audited.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from connectors.subgraph import (
    Auth,
    ClientCredentials,
    HeaderAuth,
    SubgraphClient,
    SubgraphError,
)
from hub import audit
from hub.errors import BadInputError, ConflictError, FieldProblem, InvalidInputError, NotFoundError
from hub.federation.compose import composition_problems
from hub.federation.sdl import SubgraphRefused, SubgraphShape, analyse, check_together
from hub.models._types import utcnow
from hub.models.subgraph import AUTH_KINDS, Subgraph
from hub.netguard import (
    GuardedTransport,
    NetPolicy,
    Resolver,
    check_url,
    guarded_dial,
    system_resolver,
)

NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
MAX_TIMEOUT = 60.0
ACTOR = "hub subgraphs"


def _invalid(field: str, message: str) -> InvalidInputError:
    """A registration that cannot be accepted, at the input field at fault."""
    return InvalidInputError([FieldProblem((field,), message)])


@dataclass(frozen=True)
class Refresh:
    """What a refresh did: ``accepted`` (the SDL now serving), or not, with why."""

    name: str
    accepted: bool
    status: str
    problems: list[str]
    fields: list[str]


def auth_of(row: Subgraph) -> Auth:
    """How the hub authenticates to the subgraph (the secret unsealed)."""
    if row.auth_kind == "header" and row.secret is not None:
        return HeaderAuth(str(row.auth["header"]), row.secret)
    if row.auth_kind == "oauth2" and row.secret is not None:
        return ClientCredentials(
            token_url=str(row.auth["token_url"]),
            client_id=str(row.auth["client_id"]),
            client_secret=row.secret,
            scope=row.auth.get("scope"),
            method=str(row.auth.get("method", "client_secret_basic")),
        )
    return None


def client_for(
    row: Subgraph, policy: NetPolicy, resolver: Resolver = system_resolver
) -> SubgraphClient:
    """A client of the subgraph connecting only to addresses ``policy`` allows."""
    auth = auth_of(row)
    return SubgraphClient(
        row.url,
        timeout=row.timeout,
        dial=guarded_dial(row.url, policy, resolver),
        token_transport=(
            GuardedTransport(policy, resolver) if isinstance(auth, ClientCredentials) else None
        ),
        auth=auth,
    )


async def add_subgraph(
    session: AsyncSession,
    *,
    name: str,
    url: str,
    policy: NetPolicy,
    header: tuple[str, str] | None = None,
    oauth: dict[str, str] | None = None,
    timeout_seconds: float = 5.0,
) -> Subgraph:
    """Register a subgraph (status ``new``: :func:`refresh_subgraph` fetches its SDL).
    ``header`` is ``(name, value)``; ``oauth`` holds ``token_url``, ``client_id``,
    ``client_secret`` and optionally ``scope`` and ``method``."""
    if not NAME.match(name):
        raise _invalid("name", "lowercase letters, digits and '-', starting with a letter")
    await _check_url("url", url, policy)
    timeout = timeout_seconds
    if not 0 < timeout <= MAX_TIMEOUT:
        raise _invalid("timeout", f"seconds, more than 0 and at most {MAX_TIMEOUT:g}")
    if header is not None and oauth is not None:
        raise _invalid("header", "give a header or OAuth client credentials, not both")
    row = Subgraph(name=name, url=url, timeout=timeout)
    if header is not None:
        header_name, value = header
        if not re.match(r"^[A-Za-z0-9-]{1,100}$", header_name) or not value:
            raise _invalid("header", "'Name: value', the name letters, digits and '-'")
        row.auth_kind, row.auth, row.secret = "header", {"header": header_name}, value
    elif oauth is not None:
        missing = [k for k in ("token_url", "client_id", "client_secret") if not oauth.get(k)]
        if missing:
            raise _invalid("oauth", f"{', '.join(missing)} required")
        await _check_url("oauth", oauth["token_url"], policy)
        method = oauth.get("method", "client_secret_basic")
        if method not in ("client_secret_basic", "client_secret_post"):
            raise _invalid("oauth", "method: client_secret_basic or client_secret_post")
        row.auth_kind = "oauth2"
        row.auth = {
            "token_url": oauth["token_url"],
            "client_id": oauth["client_id"],
            "method": method,
            **({"scope": oauth["scope"]} if oauth.get("scope") else {}),
        }
        row.secret = oauth["client_secret"]
    assert row.auth_kind in AUTH_KINDS
    existing = await session.execute(select(col(Subgraph.id)).where(col(Subgraph.name) == name))
    if existing.first() is not None:
        raise ConflictError(f"a subgraph named '{name}' is registered already")
    session.add(row)
    await session.flush()
    await audit.append(
        session,
        audit.Entry(
            actor=ACTOR,
            action="subgraph.add",
            target=f"subgraph:{name}",
            details={"url": url, "auth": row.auth_kind, "timeout": timeout},
        ),
    )
    return row


async def _check_url(field: str, url: str, policy: NetPolicy) -> None:
    """Refused unless every address it resolves to is one ``policy`` allows (checked
    again on every connection: the answer may change)."""
    try:
        await check_url(url, policy)
    except BadInputError as error:
        raise _invalid(field, str(error)) from None


async def get_subgraph(session: AsyncSession, name: str) -> Subgraph:
    found = await session.execute(select(Subgraph).where(col(Subgraph.name) == name))
    row = found.scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no subgraph named '{name}'")
    return row


async def list_subgraphs(session: AsyncSession) -> list[Subgraph]:
    found = await session.execute(select(Subgraph).order_by(col(Subgraph.name)))
    return list(found.scalars())


async def accepted_shapes(session: AsyncSession) -> list[SubgraphShape]:
    """The accepted SDLs of every subgraph, read (they composed when accepted)."""
    rows = await session.execute(
        select(col(Subgraph.name), col(Subgraph.sdl))
        .where(col(Subgraph.sdl).is_not(None))
        .order_by(col(Subgraph.name))
    )
    return [shape_of(str(name), str(sdl)) for name, sdl in rows.all()]


_shapes: dict[tuple[str, str], SubgraphShape] = {}


def shape_of(name: str, sdl: str) -> SubgraphShape:
    """:func:`analyse` of an accepted SDL, memoised (replicas re-read them often)."""
    key = (name, hashlib.sha256(sdl.encode()).hexdigest())
    shape = _shapes.get(key)
    if shape is None:
        if len(_shapes) > 256:
            _shapes.clear()
        shape = _shapes[key] = analyse(name, sdl)
    return shape


async def identity(session: AsyncSession) -> tuple[tuple[str, str], ...]:
    """Names and SDL hashes of the accepted subgraphs: what a replica serves."""
    rows = await session.execute(
        select(col(Subgraph.name), col(Subgraph.sdl_sha256))
        .where(col(Subgraph.sdl).is_not(None))
        .order_by(col(Subgraph.name))
    )
    return tuple((str(name), str(sha)) for name, sha in rows.all())


async def refresh_subgraph(
    session: AsyncSession,
    name: str,
    policy: NetPolicy,
    *,
    policy_fields: dict[str, frozenset[str]] | None = None,
    resolver: Resolver = system_resolver,
) -> Refresh:
    """Fetch, check and (if it composes) accept subgraph ``name``'s SDL.

    ``policy_fields`` (per API type, the remote fields the policy in force names) refuses
    an SDL that drops one of them: the policy would name a field that no longer exists."""
    row = await get_subgraph(session, name)
    row.checked_at = utcnow()
    client = client_for(row, policy, resolver)
    try:
        sdl = await client.sdl()
    except SubgraphError as error:
        return await _record(session, row, "unreachable", [str(error)])
    finally:
        await client.aclose()
    try:
        shape = analyse(name, sdl)
    except SubgraphRefused as refused:
        return await _record(session, row, "refused", refused.problems)
    others = [s for s in await accepted_shapes(session) if s.name != name]
    problems = check_together([*others, shape]) + composition_problems([*others, shape])
    for type_name, names in (policy_fields or {}).items():
        kept = {f.name for f in shape.fields if f.type_name == type_name}
        gone = sorted(n for n in names if n not in kept and _owner(others, type_name, n) is None)
        problems += [
            f"{type_name}.{n}: the sharing policy in force names it, and the new SDL drops it"
            for n in gone
        ]
    if problems:
        return await _record(session, row, "refused", problems)
    digest = hashlib.sha256(sdl.encode()).hexdigest()
    changed = digest != row.sdl_sha256
    row.sdl, row.sdl_sha256 = sdl, digest
    if changed:
        row.accepted_at = utcnow()
    return await _record(session, row, "ok", [], shape=shape, changed=changed)


async def remove_subgraph(
    session: AsyncSession, name: str, *, policy_fields: dict[str, frozenset[str]] | None = None
) -> None:
    """Unregister subgraph ``name``: its fields leave the graph on every replica. Refused
    while the sharing policy in force names one of them (publish a policy without them
    first: the policy would name fields that no longer exist)."""
    row = await get_subgraph(session, name)
    named = sorted(
        f"{f.type_name}.{f.name}"
        for f in (shape_of(row.name, row.sdl).fields if row.sdl else ())
        if f.name in (policy_fields or {}).get(f.type_name, frozenset())
    )
    if named:
        raise ConflictError(
            f"the sharing policy in force names {', '.join(named)}: publish one without "
            f"them before removing '{name}'"
        )
    await session.delete(row)
    await session.flush()
    await audit.append(
        session,
        audit.Entry(actor=ACTOR, action="subgraph.remove", target=f"subgraph:{name}", details={}),
    )


def _owner(shapes: Sequence[SubgraphShape], type_name: str, field: str) -> str | None:
    for shape in shapes:
        if any(f.type_name == type_name and f.name == field for f in shape.fields):
            return shape.name
    return None


async def _record(
    session: AsyncSession,
    row: Subgraph,
    status: str,
    problems: list[str],
    *,
    shape: SubgraphShape | None = None,
    changed: bool = False,
) -> Refresh:
    row.status = status
    row.last_error = "\n".join(problems) or None
    row.updated_at = utcnow()
    await session.flush()
    fields = sorted(f.coordinate for f in shape.fields) if shape else []
    if status != "ok" or changed:
        details: dict[str, Any] = {"status": status}
        if problems:
            details["problems"] = problems[:20]
        if shape is not None:
            details["fields"] = fields
            details["sdl_sha256"] = row.sdl_sha256
        await audit.append(
            session,
            audit.Entry(
                actor=ACTOR,
                action="subgraph.refresh",
                target=f"subgraph:{row.name}",
                details=details,
            ),
        )
    return Refresh(row.name, status == "ok", status, problems, fields)


def describe(row: Subgraph) -> dict[str, Any]:
    """A subgraph as the CLI and the admin API show it (never its secret)."""
    fields: list[str] = []
    if row.sdl is not None:
        try:
            fields = sorted(f.coordinate for f in shape_of(row.name, row.sdl).fields)
        except SubgraphRefused:  # pragma: no cover - accepted SDLs analysed fine
            fields = []
    return {
        "name": row.name,
        "url": row.url,
        "auth": row.auth_kind,
        "timeout": row.timeout,
        "status": row.status,
        "fields": fields,
        "last_error": row.last_error,
        "checked_at": row.checked_at.isoformat() if row.checked_at else None,
        "accepted_at": row.accepted_at.isoformat() if row.accepted_at else None,
    }


def to_json(rows: Sequence[Subgraph]) -> str:
    return json.dumps([describe(row) for row in rows], indent=2)
