"""Rate limits of the token endpoint and budgets of failed client authentications.

Fixed windows: a counter per key and window, reset when the window ends, kept by a
:class:`~hub.counters.CounterBackend` (in memory by default, each replica counting
alone; in Redis when ``HUB_REDIS_URL`` is set, so all replicas share one count).

Requests (issue 3 §7): the source address is counted *before* client authentication, so
guessing secrets is throttled per address; the client is counted once authenticated, so
nobody can lock a partner out by sending requests in its name.

Failed client authentications (:class:`FailureLimiter`, at the token, introspection and
revocation endpoints) are budgeted per claimed client id, so guesses spread over many
addresses are bounded too, without letting anyone lock a partner out:

- per (client, address), a small budget: a partner's own address is blocked only by
  failures sent from that address;
- per client, a higher budget; when it runs out the client id is blocked for new
  addresses, but not for an address where that client authenticated successfully within
  ``HUB_TOKEN_KNOWN_ADDRESS_TTL`` (the partner's usual egress keeps getting tokens);
- each exhausted budget blocks for one window, doubling with each exhaustion in the same
  UTC day, up to ``HUB_TOKEN_FAILURE_BACKOFF_MAX``.

A block is decided from the claimed id and the address alone, before any credential is
looked at, so a refused guess tells nothing about whether it was right. A known address
cannot be gained without valid credentials, and there the small per-(client, address)
budget still applies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from starlette.responses import Response

from hub.counters import Clock, CounterBackend, counter_backend, retry_after, window_end
from hub.oauth._http import OAuthError
from hub.settings import Settings

__all__ = [
    "FailureBudget",
    "FailureLimiter",
    "Limit",
    "LimitName",
    "RateLimitedError",
    "TokenRateLimiter",
    "token_rate_limiter",
]

# Which limit refused a request: stable names, for the log and for metrics labels.
LimitName = Literal["address", "client", "client_address_failures", "client_failures"]
_DESCRIPTIONS: dict[LimitName, str] = {
    "address": "too many token requests from this address",
    "client": "too many token requests by this client",
    "client_address_failures": "too many failed authentications of this client from here",
    "client_failures": "too many failed authentications of this client",
}


class RateLimitedError(OAuthError):
    """Over a limit: 429 (RFC 6585 §4) with ``Retry-After`` (whole seconds until the limit
    lifts) and an RFC 6749 §5.2-shaped body; ``limit`` names which limit it was.

    The error code is ``slow_down`` rather than ``temporarily_unavailable``: it is the
    registered OAuth error whose usage location is the token endpoint response (RFC 8628
    §3.5, IANA "OAuth Extensions Error Registry") and means exactly "back off, then
    retry", while ``temporarily_unavailable`` is registered for the authorization endpoint
    only and describes a server fault, not the client's own request rate. Being an
    :class:`OAuthError`, it is answered the same way at introspection and revocation,
    where failed client authentications are budgeted too.
    """

    def __init__(self, retry_after: int, limit: LimitName) -> None:
        super().__init__("slow_down", f"{_DESCRIPTIONS[limit]}; retry after {retry_after} s", 429)
        self.retry_after = retry_after
        self.limit: LimitName = limit

    def response(self) -> Response:
        response = super().response()
        response.headers["Retry-After"] = str(self.retry_after)
        return response


@dataclass(frozen=True)
class Limit:
    """At most ``count`` requests per ``window`` seconds."""

    count: int
    window: int


@dataclass(frozen=True)
class FailureBudget:
    """Failed authentications allowed per ``window`` seconds, per (client, address) and
    per client; blocks last one window, doubling per exhaustion up to ``backoff_max``."""

    per_client_address: int
    per_client: int
    window: int
    backoff_max: int
    known_address_ttl: int


# Exhaustions are remembered for a (UTC) day: the doubling starts over after that.
_STRIKE_MEMORY = 86_400
# A known address is re-marked at most this often (one write, not one per request).
_KNOWN_REFRESH = 3_600


class FailureLimiter:
    """Budgets of failed client authentications (see the module docstring).

    ``check`` runs before the credentials are verified, ``failed`` after an
    ``invalid_client``, ``succeeded`` after a success.
    """

    def __init__(self, counters: CounterBackend, budget: FailureBudget, clock: Clock) -> None:
        self.counters = counters
        self.budget = budget
        self._clock = clock

    @staticmethod
    def _pair(client_id: str, address: str) -> str:
        # Length-prefixed: no client id and address can spell another pair's key.
        return f"{len(client_id)}:{client_id}@{address}"

    async def check(self, client_id: str, address: str) -> float | None:
        """Raise :class:`RateLimitedError` if ``client_id`` is blocked from ``address``;
        else return when ``address`` was last marked known for the client (or None)."""
        now = self._clock()
        pair = self._pair(client_id, address)
        pair_block, client_block, known = await self.counters.read_marks(
            [f"authblock:ca:{pair}", f"authblock:c:{client_id}", f"authknown:{pair}"], now
        )
        if known is not None and known + self.budget.known_address_ttl <= now:
            known = None
        if pair_block is not None and pair_block > now:
            raise RateLimitedError(retry_after(now, pair_block), "client_address_failures")
        if client_block is not None and client_block > now and known is None:
            raise RateLimitedError(retry_after(now, client_block), "client_failures")
        return known

    async def failed(self, client_id: str, address: str) -> list[tuple[LimitName, int]]:
        """Count a failure; return the blocks it started: (which budget, seconds) each."""
        now = self._clock()
        budget = self.budget
        pair = self._pair(client_id, address)
        blocked: list[tuple[LimitName, int]] = []
        # "==" rather than ">=": exactly one request crosses a budget, so one strike each.
        if await self.counters.hit(f"authfail:ca:{pair}", budget.window, now) == (
            budget.per_client_address
        ):
            blocked.append(("client_address_failures", await self._block(f"ca:{pair}", now)))
        if await self.counters.hit(f"authfail:c:{client_id}", budget.window, now) == (
            budget.per_client
        ):
            blocked.append(("client_failures", await self._block(f"c:{client_id}", now)))
        return blocked

    async def _block(self, name: str, now: float) -> int:
        strikes = await self.counters.hit(f"authstrike:{name}", _STRIKE_MEMORY, now)
        window = self.budget.window
        # At least one window, so the failure count has started over when the block ends.
        seconds = max(window, min(window << min(strikes - 1, 32), self.budget.backoff_max))
        await self.counters.set_mark(f"authblock:{name}", now + seconds, seconds, now)
        return seconds

    async def succeeded(self, client_id: str, address: str, known: float | None) -> None:
        """Mark ``address`` as known for ``client_id`` (``known``: what :meth:`check` said)."""
        now = self._clock()
        ttl = self.budget.known_address_ttl
        if known is None or now - known >= min(_KNOWN_REFRESH, ttl / 2):
            await self.counters.set_mark(
                f"authknown:{self._pair(client_id, address)}", now, ttl, now
            )


class TokenRateLimiter:
    """The token endpoint's two request limits and the failure budgets, over one counter
    backend."""

    def __init__(
        self,
        counters: CounterBackend,
        *,
        per_client: Limit,
        per_address: Limit,
        failures: FailureBudget,
        clock: Clock = time.time,
    ) -> None:
        self.counters = counters
        self.per_client = per_client
        self.per_address = per_address
        self.failures = FailureLimiter(counters, failures, clock)
        self._clock = clock

    async def _check(self, key: str, limit: Limit, name: LimitName) -> None:
        now = self._clock()
        if await self.counters.hit(key, limit.window, now) > limit.count:
            raise RateLimitedError(retry_after(now, window_end(now, limit.window)), name)

    async def check_address(self, address: str) -> None:
        """Count a token request from ``address``; raise :class:`RateLimitedError` if over."""
        await self._check(f"addr:{address}", self.per_address, "address")

    async def check_client(self, client_id: str) -> None:
        """Count a token request by an authenticated client; raise if over its limit."""
        await self._check(f"client:{client_id}", self.per_client, "client")

    async def close(self) -> None:
        await self.counters.close()


def token_rate_limiter(settings: Settings, clock: Clock = time.time) -> TokenRateLimiter:
    """The limiter the settings ask for: Redis when ``HUB_REDIS_URL`` is set."""
    counters = counter_backend(settings)
    window = settings.token_rate_window
    return TokenRateLimiter(
        counters,
        per_client=Limit(settings.token_rate_per_client, window),
        per_address=Limit(settings.token_rate_per_address, window),
        failures=FailureBudget(
            per_client_address=settings.token_failures_per_client_address,
            per_client=settings.token_failures_per_client,
            window=window,
            backoff_max=settings.token_failure_backoff_max,
            known_address_ttl=settings.token_known_address_ttl,
        ),
        clock=clock,
    )
