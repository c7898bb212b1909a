"""The loyalty service of the federation tests: ``loyalty_subgraph.mjs``, a Node
``@apollo/subgraph`` service on 127.0.0.1 that extends the hub's ``Customer`` (or, as
its ``support`` variant, ``Feedback`` and ``Case``) and records every request it
receives (:meth:`LoyaltyService.received`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.conformance.conftest import HERE, NodeTools

TIERS = ("bronze", "silver", "gold")


def score(customer_id: str) -> int:
    """As ``score`` in loyalty_subgraph.mjs: the service's values come from the id."""
    total = 0
    for char in customer_id:
        total = (total * 31 + ord(char)) % 1000003
    return total


def tier_of(customer_id: str) -> str:
    return TIERS[score(customer_id) % 3]


def points_of(customer_id: str) -> int:
    return score(customer_id) % 10000


def sentiment_of(feedback_id: str) -> str:
    """``Feedback.sentiment`` of the ``support`` variant."""
    return ("negative", "neutral", "positive")[score(feedback_id) % 3]


def urgency_of(feedback_id: str) -> int:
    return score(feedback_id) % 5


def sla_hours_of(case_id: str) -> int:
    """``Case.slaHours`` of the ``support`` variant."""
    return score(case_id) % 72 + 1


class LoyaltyService:
    """A running loyalty subgraph: its URL, what it received, a delay to set."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        self.base = url.removesuffix("/graphql")

    async def received(self) -> list[dict[str, Any]]:
        """Every GraphQL request so far: ``query``, ``variables``, ``authorization``."""
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.base}/stats")
        found: list[dict[str, Any]] = response.json()["received"]
        return found

    async def token_requests(self) -> list[dict[str, Any]]:
        """Every request to its OAuth token endpoint: ``grantType``, ``scope``."""
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(f"{self.base}/stats")
        found: list[dict[str, Any]] = response.json()["tokenRequests"]
        return found

    async def entity_requests(self) -> list[dict[str, Any]]:
        return [r for r in await self.received() if "_entities" in r["query"]]

    async def delay(self, milliseconds: int) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            await http.post(f"{self.base}/config", json={"delayMs": milliseconds})

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()


@asynccontextmanager
async def loyalty_service(
    node_tools: NodeTools, variant: str = "standard"
) -> AsyncIterator[LoyaltyService]:
    """Start the service (any free port) and stop it afterwards; ``variant="clash"``
    also defines ``Customer.name``, which the hub owns (it cannot compose);
    ``variant="support"`` is a support desk's service instead, extending ``Feedback``
    (``sentiment``, ``triage``) and ``Case`` (``slaHours``)."""
    process = await asyncio.create_subprocess_exec(
        node_tools.node,
        str(HERE / "loyalty_subgraph.mjs"),
        "0",
        variant,
        cwd=HERE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=30)
    except TimeoutError:
        process.kill()
        pytest.fail("the loyalty subgraph did not start within 30 s")
    if not line:
        assert process.stderr is not None
        err = await process.stderr.read()
        pytest.fail(f"the loyalty subgraph did not start:\n{err.decode()}")
    service = LoyaltyService(process, json.loads(line)["url"])
    try:
        yield service
    finally:
        await service.stop()
