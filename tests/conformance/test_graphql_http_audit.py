"""The GraphQL-over-HTTP spec audit of graphql-http (``auditServer``) against the real hub.

Every audit must pass: a ``warn`` is a SHOULD of the spec the hub does not meet, an
``error`` a MUST. ``notice`` results (MAYs) are printed but allowed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conformance.conftest import NodeTools
from tests.e2e.server import HubServer

pytestmark = [pytest.mark.e2e, pytest.mark.conformance]


def _describe(results: list[dict[str, Any]]) -> str:
    lines = []
    for result in results:
        lines.append(f"[{result['status']}] {result['id']} {result['name']}: {result['reason']}")
        if "httpStatus" in result:
            lines.append(f"    -> HTTP {result['httpStatus']} {result.get('contentType')}")
        if result.get("body"):
            lines.append(f"    -> {result['body'][:300]}")
    return "\n".join(lines)


async def test_graphql_over_http_audit_passes(hub_server: HubServer, node_tools: NodeTools) -> None:
    token = await hub_server.token("operator")
    results: list[dict[str, Any]] = await node_tools.run(
        "audit.mjs", hub_server.graphql_url, env={"HUB_TOKEN": token}
    )
    assert len(results) > 20, results
    failing = [r for r in results if r["status"] in ("warn", "error")]
    notices = [r for r in results if r["status"] == "notice"]
    if notices:
        print("graphql-http notices:\n" + _describe(notices))
    assert not failing, (
        f"{len(failing)} of {len(results)} GraphQL-over-HTTP audits failed:\n" + _describe(failing)
    )
