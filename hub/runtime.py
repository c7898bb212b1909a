"""What the running app holds: settings, database, signing keys, client directory, and
the deny list of revoked tokens; :meth:`Runtime.refresh_forever` keeps the shared parts
current on every replica."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

from hub import idempotency, outbox, sharing
from hub.access import PolicyRules, access
from hub.cost_budget import CostBudget, CostLimiter
from hub.db import Database
from hub.federation import store as subgraphs
from hub.federation.settings import load_federation_settings
from hub.federation.state import federation, load_federation
from hub.models import Client, Organization
from hub.oauth.directory import ClientDirectory
from hub.oauth.keys import KeyRing, load_keyring
from hub.oauth.ratelimit import TokenRateLimiter
from hub.oauth.revocation import RevocationList, prune_expired
from hub.oauth.staff_directory import StaffDirectory
from hub.oauth.verified_tokens import VerifiedTokenCache
from hub.outage import OutageLog
from hub.settings import Settings
from hub.sync import inbound, runs
from hub.sync.inbound_limits import WebhookLimiter, WebhookLimits
from hub.ttl_cache import TTLCache
from hub.vault import activation_delay, load_data_keys, vault

logger = logging.getLogger(__name__)
_PRUNE_INTERVAL = 60.0


@dataclass
class Runtime:
    settings: Settings
    database: Database
    keyring: KeyRing
    clients: ClientDirectory
    rate_limiter: TokenRateLimiter
    revocations: RevocationList = field(default_factory=RevocationList)
    staff: StaffDirectory = field(default_factory=StaffDirectory)
    # Client rows read by client authentication, kept HUB_CLIENT_CACHE_TTL seconds
    # (hub.oauth.client_auth.load_client); None caches "no such client" too.
    client_rows: TTLCache[str, tuple[Client, Organization] | None] = field(default_factory=TTLCache)
    # Verified bearer tokens by hash (hub.oauth.verified_tokens), sized from the settings.
    verified_tokens: VerifiedTokenCache = field(init=False)
    # Limits of the inbound webhook endpoint, in the token limits' counters.
    webhook_limiter: WebhookLimiter = field(init=False)
    # Per-client budgets of GraphQL cost (hub.cost_budget), in the same counters.
    graphql_limiter: CostLimiter = field(init=False)
    # The old subgraph clients, closed once the requests still using them are done.
    _closing: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.verified_tokens = VerifiedTokenCache(
            max_entries=self.settings.access_token_cache_size,
            max_age=self.settings.access_token_cache_ttl,
        )
        self.webhook_limiter = WebhookLimiter(
            self.rate_limiter.counters, WebhookLimits.from_settings(self.settings)
        )
        self.graphql_limiter = CostLimiter(
            self.rate_limiter.counters, CostBudget.from_settings(self.settings)
        )

    async def reload_keys(self) -> None:
        async with self.database.session() as session:
            self.keyring = await load_keyring(
                session,
                self.settings.master_key,
                max_token_lifetime=self.settings.access_token_ttl,
            )

    async def reload_data_keys(self) -> None:
        """Load data keys created since the last reload, and make active the newest one
        old enough that every replica has loaded it (:func:`hub.vault.activation_delay`):
        a rotation's key is known everywhere before any row sealed with it is written."""
        delay = activation_delay(self.settings.key_refresh_interval)
        async with self.database.session() as session:
            await load_data_keys(session, self.settings.master_key, activation_delay=delay)

    async def reload_policy(self) -> None:
        """Put the newest published policy version and the accepted subgraphs in force
        if they are not already.

        Checking costs one indexed ``max(number)`` and one read of the subgraphs' SDL
        hashes; the version is parsed and installed only when it (or the subgraphs, whose
        fields are in the policy catalog) changed, so every replica follows a publish or
        a subgraph refresh within one interval.
        """
        async with self.database.session() as session:
            identity = await sharing.current_identity(session)
            served = await subgraphs.identity(session)
            old = federation.current
            if identity == (access.rules.version, access.rules.fingerprint) and (
                served == old.identity
            ):
                return
            version = await sharing.current_version(session)
            fed = old
            if served != old.identity:
                fed = await load_federation(
                    session, served, load_federation_settings().net_policy()
                )
        rules = (
            sharing.rules_for(version, self.settings.master_key, catalog=fed.catalog)
            if version is not None
            else PolicyRules.deny_all().with_catalog(fed.catalog)
        )
        federation.current = fed
        access.rules = rules
        if fed is not old:
            logger.info("subgraphs in force: %s", ", ".join(s.name for s in fed.shapes) or "none")
            # Requests under way may still call the old clients for a while.
            self._closing = asyncio.create_task(old.aclose(grace=120.0))
        logger.info("sharing policy version %s in force", rules.version)

    async def refresh_forever(self, stop: asyncio.Event | None = None) -> None:
        """Re-read revocations, signing and data keys on their intervals; prune expired rows;
        until ``stop`` is set (then it returns between two steps).

        Data keys are also reloaded at the next tick when a value named a key this process
        has not loaded (:attr:`hub.vault.Vault.stale`): a rotation's new key, or a key
        created while a reload failed.

        Errors are logged and retried at the next tick: a database hiccup must not stop
        the refresh for the rest of the process's life.

        Stopped by ``stop``, not cancelled: a cancellation could land inside a prune's
        statement, whose SQLite write goes on in the driver's thread and then holds the
        database's lock for a transaction nobody ends (a test's teardown met "database
        is locked").
        """
        stop = stop or asyncio.Event()
        settings = self.settings
        due = {"revocations": 0.0, "keys": 0.0, "data_keys": 0.0, "policy": 0.0, "prune": 0.0}
        outage = OutageLog("refreshing the shared state")
        while not stop.is_set():
            now = time.monotonic()
            try:
                if now >= due["revocations"]:
                    await self.revocations.refresh(self.database)
                    due["revocations"] = now + settings.revocation_refresh_interval
                if now >= due["keys"]:
                    await self.reload_keys()
                    due["keys"] = now + settings.key_refresh_interval
                if now >= due["data_keys"] or vault.stale:
                    await self.reload_data_keys()
                    due["data_keys"] = now + settings.key_refresh_interval
                if now >= due["policy"]:
                    await self.reload_policy()
                    due["policy"] = now + settings.policy_refresh_interval
                if now >= due["prune"]:
                    await prune_expired(self.database)
                    # Idempotency keys past their 24 hours, of every client (a client
                    # prunes its own on each keyed write; this catches the idle ones).
                    async with self.database.transaction() as session:
                        await idempotency.prune_expired(session)
                    # Outbox events past their retention that every reader has read.
                    async with self.database.transaction() as session:
                        await outbox.prune(session, timedelta(seconds=settings.outbox_retention))
                    # Inbound webhook ids past their retention (hub.sync.inbound).
                    async with self.database.transaction() as session:
                        await inbound.prune(
                            session, timedelta(seconds=settings.webhook_event_retention)
                        )
                    # Then the runs past theirs (a message's run goes after its id).
                    async with self.database.transaction() as session:
                        await runs.prune(session, timedelta(seconds=settings.sync_run_retention))
                    due["prune"] = now + _PRUNE_INTERVAL
            except Exception as error:  # noqa: BLE001 — the refresh must outlive any failure
                outage.failed(error)
                await _until(stop, 1.0)
                continue
            outage.succeeded()
            await _until(stop, max(0.01, min(due.values()) - time.monotonic()))


async def _until(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
