"""What the OAuth endpoints and the bearer check need from the running app.

:class:`OAuthContext` names exactly the state ``hub.oauth`` reads, so the authorization
server depends on this small protocol and not on :class:`hub.runtime.Runtime`, which also
swaps sharing policies, reloads data keys and prunes tables. ``Runtime`` satisfies it
structurally (checked by mypy in ``tests/hub/test_layers.py``); a test or another host may
hand the endpoints anything else that does.

The members are read-only: the endpoints use these objects (add a revoked ``jti``, count a
failure) but never replace one; replacing the key ring on a refresh is the runtime's job.
"""

from __future__ import annotations

from typing import Protocol

from hub.db import Database
from hub.models import Client, Organization
from hub.oauth.directory import ClientDirectory
from hub.oauth.keys import KeyRing
from hub.oauth.ratelimit import TokenRateLimiter
from hub.oauth.revocation import RevocationList
from hub.oauth.staff_directory import StaffDirectory
from hub.oauth.verified_tokens import VerifiedTokenCache
from hub.settings import Settings
from hub.ttl_cache import TTLCache


class OAuthContext(Protocol):
    """The state behind ``/oauth/*``, ``/.well-known/*`` and ``Authorization: Bearer``.

    *Example*: every endpoint reads it from the app, as
    ``context: OAuthContext = request.app.state.runtime``.
    """

    @property
    def settings(self) -> Settings:
        """Issuer, audience, token lifetimes, cache times and rate-limit budgets."""

    @property
    def database(self) -> Database:
        """Clients, staff users, codes, refresh tokens and used assertions."""

    @property
    def keyring(self) -> KeyRing:
        """The signing keys: the current one signs, every published one verifies."""

    @property
    def clients(self) -> ClientDirectory:
        """Clients and their organizations as the bearer check resolves them (cached)."""

    @property
    def client_rows(self) -> TTLCache[str, tuple[Client, Organization] | None]:
        """Client rows read by client authentication, ``HUB_CLIENT_CACHE_TTL`` seconds."""

    @property
    def staff(self) -> StaffDirectory:
        """Staff users behind authorization-code tokens (cached)."""

    @property
    def revocations(self) -> RevocationList:
        """Revoked token ids, refreshed from the shared table on every replica."""

    @property
    def verified_tokens(self) -> VerifiedTokenCache:
        """Access tokens this process has verified, by hash, until expiry (the bearer check)."""

    @property
    def rate_limiter(self) -> TokenRateLimiter:
        """Request limits of the token endpoint and budgets of failed authentications."""
