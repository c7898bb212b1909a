"""Access tokens this process has verified, kept by the token's SHA-256 until they expire.

Verifying a bearer token (RFC 9068 §4: an ES256 signature, ``typ``, ``iss``, ``aud``,
``exp``, ``nbf``, ``iat``, the required claims) costs about 80 µs of CPU, every request. A
token's validation can only change when time passes its ``exp`` or the key set that
verified it changes; so a token that passed is remembered with what it established, and
the next request with it skips that work.

What the cache does **not** remember is anything that can change under a valid token:
:mod:`hub.oauth.bearer` still checks, on every request, the ``jti`` against the deny list
(:class:`hub.oauth.revocation.RevocationList`, refreshed every
``HUB_REVOCATION_REFRESH_INTERVAL``) and the client and staff user against their
directories (cached ``HUB_CLIENT_CACHE_TTL``): a revoked token and a disabled client are
refused exactly as soon as without the cache. Those checks are set and dict look-ups.

An entry is used only while all of these hold, and is dropped otherwise:

- the wall clock is before the token's ``exp`` (no leeway: past ``exp`` the request goes
  through full verification, which alone decides the clock-skew leeway);
- it was verified less than ``HUB_TOKEN_CACHE_TTL`` seconds ago (monotonic clock);
- the key ring in force publishes the same keys as the one that verified it (a rotation or
  a removed key means verifying again).

The key is the SHA-256 digest of the token, never the token itself. The cache holds at
most ``HUB_TOKEN_CACHE_SIZE`` entries, least recently used evicted first. Only tokens that
passed are stored: a failure is never cached, so a token refused once (not yet valid, a
key not yet loaded) is judged afresh on the next request, as without the cache.

Per process; every operation holds a lock and never awaits, so it is safe from the event
loop and from threads alike.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from hub.oauth.directory import ClientIdentity
from hub.oauth.keys import KeyRing
from hub.oauth.staff_directory import StaffIdentity
from hub.principal import Principal


class VerifiedToken:
    """What verification established about one token, and the principal last built from it.

    ``memo`` is (client identity, staff identity, principal): the bearer check reuses the
    principal while the directories return the very identity objects it was built from (a
    directory reload, every ``HUB_CLIENT_CACHE_TTL``, makes new ones and a new principal).
    """

    __slots__ = (
        "client_id",
        "expires_at",
        "jti",
        "keyring",
        "memo",
        "roles",
        "scopes",
        "subject",
        "verified_at",
    )

    def __init__(
        self,
        *,
        jti: str,
        client_id: str,
        subject: str,
        scopes: frozenset[str],
        roles: frozenset[str] | None,
        expires_at: float,
        keyring: KeyRing,
    ) -> None:
        self.jti = jti
        self.client_id = client_id
        self.subject = subject
        self.scopes = scopes
        # None for a client's own token; a staff user's roles otherwise (RFC 9068 §2.2.3.1).
        self.roles = roles
        self.expires_at = expires_at
        self.keyring = keyring
        self.verified_at = time.monotonic()
        # Replaced whole (one assignment), so a reader never sees a mixed memo.
        self.memo: tuple[ClientIdentity, StaffIdentity | None, Principal] | None = None


def token_key(token: str) -> bytes:
    """The cache key of ``token``: its SHA-256 digest (the token itself is not kept)."""
    return hashlib.sha256(token.encode()).digest()


class VerifiedTokenCache:
    """Verified access tokens by :func:`token_key`, bounded, least recently used out first.

    ``max_age`` 0 turns the cache off: nothing is stored and every request verifies.
    """

    def __init__(self, *, max_entries: int, max_age: float) -> None:
        self._max_entries = max_entries
        self._max_age = max_age
        self._entries: OrderedDict[bytes, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, keyring: KeyRing) -> VerifiedToken | None:
        """The entry for ``key`` if it may still stand for a verification against ``keyring``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if (
                time.time() >= entry.expires_at
                or time.monotonic() - entry.verified_at >= self._max_age
            ):
                del self._entries[key]
                return None
            if entry.keyring is not keyring:
                # The runtime loads a new KeyRing object every HUB_KEY_REFRESH_INTERVAL;
                # only a different set of published keys matters (kid = key thumbprint).
                if entry.keyring.public_jwks != keyring.public_jwks:
                    del self._entries[key]
                    return None
                entry.keyring = keyring
            self._entries.move_to_end(key)
            return entry

    def put(self, key: bytes, entry: VerifiedToken) -> None:
        """Remember a token that has just passed verification."""
        if self._max_age <= 0 or time.time() >= entry.expires_at:
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
