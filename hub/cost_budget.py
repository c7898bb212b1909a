"""Per-client budgets of GraphQL cost (DESIGN §7 "per-client rate limits"; CHECKLIST API4:
rate limit per operation cost, not per HTTP request).

Each GraphQL request spends its operation's static cost (measured by the GraphQL layer
before execution) from its OAuth client's budget: ``HUB_GRAPHQL_COST_PER_CLIENT`` per fixed
window of ``HUB_GRAPHQL_RATE_WINDOW`` seconds. The budget is kept in the counters of the
token limits (:mod:`hub.counters`: in memory, each replica counting alone; in Redis when
``HUB_REDIS_URL`` is set, so all replicas share one count). A request that takes the
client over its budget is refused with the seconds until the window ends and is not run;
its cost stays counted, as a refused token request does, until the window ends.

The budget is per client, never per address or organization: one partner's traffic does
not spend another's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from hub.counters import Clock, CounterBackend, retry_after, window_end
from hub.settings import Settings

__all__ = ["CostBudget", "CostLimiter", "OverBudgetError"]


class OverBudgetError(Exception):
    """The client has spent its budget for this window; ``retry_after``: whole seconds
    until the window ends (a ``Retry-After`` value)."""

    code = "RATE_LIMITED"

    def __init__(self, retry_after: int, budget: int, window: int) -> None:
        super().__init__(
            f"this client has spent its GraphQL budget of {budget} (cost) per {window} s;"
            f" retry after {retry_after} s"
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class CostBudget:
    """At most ``per_client`` cost per client per ``window`` seconds."""

    per_client: int
    window: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CostBudget:
        return cls(settings.graphql_cost_per_client, settings.graphql_rate_window)


class CostLimiter:
    """Spends each request's cost from its client's budget (see the module docstring)."""

    def __init__(
        self, counters: CounterBackend, budget: CostBudget, clock: Clock = time.time
    ) -> None:
        self.counters = counters
        self.budget = budget
        self._clock = clock

    async def spend(self, client_id: str, cost: int) -> int:
        """Spend ``cost`` (at least 1: every request is counted) from ``client_id``'s
        budget; return what the client has spent in this window, or raise
        :class:`OverBudgetError` if that is over the budget."""
        now = self._clock()
        budget = self.budget
        spent = await self.counters.hit(f"gqlcost:{client_id}", budget.window, now, max(1, cost))
        if spent > budget.per_client:
            until = window_end(now, budget.window)
            raise OverBudgetError(retry_after(now, until), budget.per_client, budget.window)
        return spent
