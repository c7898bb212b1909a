"""Rate limits of the inbound webhook endpoint (``POST /connectors/{name}/events``).

The endpoint takes no token: its signature is the authentication, and the hub reads the
connector from the database before it can check one, so anyone could make the hub and its
database work for nothing. Two fixed-window limits per source address, counted in the
token endpoint's counter backend (:mod:`hub.counters`: in memory, each replica
counting alone, or in Redis shared by all replicas when ``HUB_REDIS_URL`` is set):

- every message: ``HUB_WEBHOOK_RATE_PER_ADDRESS`` per ``HUB_WEBHOOK_RATE_WINDOW`` seconds
  (default 1,200 a minute: a busy desk's 20 messages a second);
- refused messages (a bad signature or timestamp, a body that is not one, an unknown
  connector, too large a body): ``HUB_WEBHOOK_FAILURES_PER_ADDRESS`` (default 30); past
  that budget the address is refused for the rest of the window before any lookup.

Over either limit the answer is 429 with ``Retry-After``; Standard Webhooks senders retry
such answers later, so nothing a genuine sender sends is lost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hub.counters import Clock, CounterBackend, retry_after, window_end
from hub.settings import Settings


@dataclass(frozen=True)
class WebhookLimits:
    """Messages and refused messages allowed per source address per ``window`` seconds."""

    per_address: int
    failures_per_address: int
    window: int

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookLimits:
        return cls(
            per_address=settings.webhook_rate_per_address,
            failures_per_address=settings.webhook_failures_per_address,
            window=settings.webhook_rate_window,
        )


class WebhookRateLimitedError(Exception):
    """Over a limit: answer 429 with ``Retry-After: retry_after`` (whole seconds)."""

    def __init__(self, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class WebhookLimiter:
    """The endpoint's two limits over one counter backend (see the module docstring)."""

    def __init__(
        self, counters: CounterBackend, limits: WebhookLimits, clock: Clock = time.time
    ) -> None:
        self.counters = counters
        self.limits = limits
        self._clock = clock

    async def check(self, address: str) -> None:
        """Count a message from ``address``; raise :class:`WebhookRateLimitedError` when
        the address is blocked for its refused messages or over its message limit."""
        now = self._clock()
        (blocked,) = await self.counters.read_marks([f"hookblock:{address}"], now)
        if blocked is not None and blocked > now:
            raise WebhookRateLimitedError(
                retry_after(now, blocked), "too many refused messages from this address"
            )
        window = self.limits.window
        if await self.counters.hit(f"hook:{address}", window, now) > self.limits.per_address:
            raise WebhookRateLimitedError(
                retry_after(now, window_end(now, window)), "too many messages from this address"
            )

    async def refused(self, address: str) -> None:
        """Count a refused message from ``address``; past the budget, block the address
        until the window ends."""
        now = self._clock()
        window = self.limits.window
        failures = await self.counters.hit(f"hookfail:{address}", window, now)
        if failures > self.limits.failures_per_address:
            until = window_end(now, window)
            await self.counters.set_mark(f"hookblock:{address}", until, until - now, now)
