"""Webhook subscriptions: an organization's endpoints, their secrets and states.

A subscriber (a partner, or a department syncing back into its own tool) manages its
own subscriptions with a token holding ``webhooks:manage``; every function here is
scoped to the caller's organization, and another organization's subscription is
answered exactly like one that does not exist (NOT_FOUND).

States (:class:`SubscriptionStatus`): ``active`` (events are queued and sent),
``paused`` (events are queued, nothing is sent until resumed) and ``disabled`` (with a
reason: the endpoint answered 410, or the client it acts as is gone; nothing is queued;
a resume starts from the events that happen after it).

Each subscription reads the outbox as the reader ``webhook:<id>``
(:func:`hub.outbox.register_reader`), so events it has not queued yet are kept.
"""

from __future__ import annotations

import base64
import enum
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from hub import audit, outbox
from hub.access import REGISTRY, Action, Resource
from hub.access.rules import DATA_SCOPES, REQUIRED_SCOPE
from hub.delivery.settings import DeliverySettings
from hub.errors import FieldProblem, ForbiddenError, InvalidInputError, NotFoundError
from hub.models._types import utcnow
from hub.models.delivery import WebhookSubscription
from hub.netguard import Resolver, UnsafeURLError, check_url, system_resolver
from hub.oauth.scopes import Scope
from hub.outbox import Operation
from hub.principal import Principal

MAX_PER_ORGANIZATION = 25
MAX_DESCRIPTION = 200
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
READER_PREFIX = "webhook:"
SYSTEM_ACTOR = "hub:delivery"
"""How the audit log names the delivery worker (disabling an endpoint)."""

OPERATIONS = tuple(o for o in Operation if o is not Operation.DELETE)
"""What a subscription may ask for. Deletions are not delivered: the record is gone, so
whether the subscriber could see it cannot be decided, and deny by default holds."""


class SubscriptionStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


@dataclass(frozen=True)
class SubscriptionRequest:
    """What a subscriber asks for: an endpoint, resources, and operations (empty: all)."""

    url: str
    resources: Sequence[str]
    operations: Sequence[str] = ()
    description: str = ""


@dataclass(frozen=True)
class WithSecret:
    """A subscription and its signing secret, which is shown this once."""

    subscription: WebhookSubscription
    secret: str


def reader_name(subscription_id: uuid.UUID) -> str:
    return f"{READER_PREFIX}{subscription_id}"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def require_manager(principal: Principal) -> None:
    if not principal.has_scope(Scope.WEBHOOKS_MANAGE):
        raise ForbiddenError(f"this operation needs the {Scope.WEBHOOKS_MANAGE} scope")


def _problem(field: str, message: str) -> FieldProblem:
    return FieldProblem(("input", field), message, "BAD_USER_INPUT")


def _data_scopes(principal: Principal) -> list[str]:
    return sorted(s for s in principal.scopes if s in DATA_SCOPES)


def _check_request(principal: Principal, request: SubscriptionRequest) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    known = {r.value for r in REGISTRY}
    resources = list(dict.fromkeys(request.resources))
    if not resources:
        problems.append(_problem("resources", "name at least one resource"))
    for name in resources:
        if name not in known:
            problems.append(_problem("resources", f"unknown resource {name!r}"))
            continue
        scope = REQUIRED_SCOPE[(Resource(name), Action.READ)]
        if not principal.has_scope(scope):
            problems.append(
                _problem("resources", f"receiving {name} events needs the {scope} scope")
            )
    allowed = {o.value for o in OPERATIONS}
    for name in request.operations:
        if name not in allowed:
            problems.append(
                _problem("operations", f"unknown operation {name!r}; known: {sorted(allowed)}")
            )
    if len(request.description) > MAX_DESCRIPTION or not request.description.isprintable():
        problems.append(_problem("description", f"at most {MAX_DESCRIPTION} printable characters"))
    return problems


async def _check_url(url: str, settings: DeliverySettings, resolver: Resolver) -> None:
    try:
        await check_url(url, settings.net_policy(), resolver)
    except UnsafeURLError as error:
        raise InvalidInputError([_problem("url", str(error))]) from None


async def create(
    session: AsyncSession,
    principal: Principal,
    request: SubscriptionRequest,
    settings: DeliverySettings,
    *,
    resolver: Resolver = system_resolver,
) -> WithSecret:
    """Register an endpoint for the caller's organization; it hears about changes from
    now on. The URL is checked (:func:`hub.netguard.check_url`) before anything is
    written. Returns the subscription with its secret (shown once)."""
    require_manager(principal)
    problems = _check_request(principal, request)
    if problems:
        raise InvalidInputError(problems)
    await _check_url(request.url, settings, resolver)
    owned = await session.execute(
        select(func.count())
        .select_from(WebhookSubscription)
        .where(col(WebhookSubscription.organization_id) == principal.organization_id)
    )
    if owned.scalar_one() >= MAX_PER_ORGANIZATION:
        raise InvalidInputError(
            [_problem("url", f"an organization has at most {MAX_PER_ORGANIZATION} subscriptions")]
        )
    secret = new_secret()
    row = WebhookSubscription(
        organization_id=principal.organization_id,
        client_id=principal.client_id,
        scopes=_data_scopes(principal),
        url=request.url,
        description=request.description,
        resources=list(dict.fromkeys(request.resources)),
        operations=list(dict.fromkeys(request.operations)),
        secret=secret,
        created_by=audit.actor_of(principal),
    )
    session.add(row)
    await session.flush()
    await outbox.register_reader(session, reader_name(row.id))
    await audit.record(
        session,
        principal,
        "webhook.create",
        _target(row),
        {"url": row.url, "resources": row.resources, "operations": row.operations},
    )
    return WithSecret(row, secret)


def _target(row: WebhookSubscription) -> str:
    return f"webhook_subscription:{row.id}"


async def owned(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """The caller's organization's subscription, locked for update; NOT_FOUND for one
    that does not exist and for another organization's alike."""
    require_manager(principal)
    found = await session.execute(
        select(WebhookSubscription)
        .where(
            col(WebhookSubscription.id) == subscription_id,
            col(WebhookSubscription.organization_id) == principal.organization_id,
        )
        .with_for_update()
    )
    row = found.scalar_one_or_none()
    if row is None:
        raise NotFoundError("no such webhook subscription")
    return row


async def list_owned(session: AsyncSession, principal: Principal) -> list[WebhookSubscription]:
    """The caller's organization's subscriptions, oldest first."""
    require_manager(principal)
    found = await session.execute(
        select(WebhookSubscription)
        .where(col(WebhookSubscription.organization_id) == principal.organization_id)
        .order_by(col(WebhookSubscription.created_at), col(WebhookSubscription.id))
    )
    return list(found.scalars())


async def rotate_secret(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    settings: DeliverySettings,
) -> WithSecret:
    """A new secret (shown once); the old one keeps signing beside it for
    ``HUB_DELIVERY_SECRET_OVERLAP`` seconds, so the receiver can switch without a gap."""
    row = await owned(session, principal, subscription_id)
    secret = new_secret()
    now = utcnow()
    row.previous_secret = row.secret
    row.previous_secret_expires_at = now + timedelta(seconds=settings.secret_overlap)
    row.secret = secret
    row.updated_at = now
    await session.flush()
    await audit.record(session, principal, "webhook.rotate_secret", _target(row), {})
    return WithSecret(row, secret)


async def pause(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID
) -> WebhookSubscription:
    """Stop sending; events keep being queued (nothing is lost while paused)."""
    row = await owned(session, principal, subscription_id)
    if row.status == SubscriptionStatus.ACTIVE:
        row.status = SubscriptionStatus.PAUSED
        row.updated_at = utcnow()
        await session.flush()
        await audit.record(session, principal, "webhook.pause", _target(row), {})
    return row


async def resume(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    settings: DeliverySettings,
    *,
    resolver: Resolver = system_resolver,
) -> WebhookSubscription:
    """Send again: a paused subscription sends what was queued; a disabled one is
    checked again (its URL) and hears about changes from now on, its queued deliveries
    included."""
    row = await owned(session, principal, subscription_id)
    if row.status == SubscriptionStatus.ACTIVE:
        return row
    await _check_url(row.url, settings, resolver)
    row.status = SubscriptionStatus.ACTIVE
    row.disabled_reason = None
    row.updated_at = utcnow()
    await session.flush()
    await outbox.register_reader(session, reader_name(row.id))
    await audit.record(session, principal, "webhook.resume", _target(row), {})
    return row


async def disable(session: AsyncSession, row: WebhookSubscription, reason: str) -> None:
    """Disable ``row`` for ``reason`` (the worker's decision, audited as such); it stops
    holding back the outbox's pruning."""
    if row.status == SubscriptionStatus.DISABLED:
        return
    row.status = SubscriptionStatus.DISABLED
    row.disabled_reason = reason[:500]
    row.updated_at = utcnow()
    await session.flush()
    await outbox.drop_reader(session, reader_name(row.id))
    await audit.append(
        session,
        audit.Entry(
            actor=SYSTEM_ACTOR,
            action="webhook.disable",
            target=_target(row),
            details={"reason": row.disabled_reason},
        ),
    )


def signing_secrets(row: WebhookSubscription) -> list[str]:
    """The secrets to sign with now: the current one, and the previous one during its
    overlap."""
    found = [row.secret]
    expires = row.previous_secret_expires_at
    if row.previous_secret is not None and expires is not None and expires > utcnow():
        found.append(row.previous_secret)
    return found


def wants(row: WebhookSubscription, resource: str, operation: str) -> bool:
    """Whether ``row`` asked for events of this resource and operation."""
    if operation == Operation.DELETE or resource not in row.resources:
        return False
    return not row.operations or operation in row.operations


def by_id(rows: Iterable[WebhookSubscription]) -> dict[uuid.UUID, WebhookSubscription]:
    return {row.id: row for row in rows}
