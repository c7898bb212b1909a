"""``addSubgraph`` and ``refreshSubgraph`` (administrators only): the SDL is fetched and
composed in the mutation; this replica serves an accepted one at once, the others within
``HUB_POLICY_REFRESH_INTERVAL``."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from hub.federation import admin, store
from hub.federation.settings import load_federation_settings
from hub.models.subgraph import Subgraph as SubgraphRow
from schema.common import UserError
from schema.context import Context
from schema.subgraphs.types import AddSubgraphInput, Subgraph, SubgraphPayload
from schema.writes import run_write

Outcome = tuple[SubgraphRow, store.Refresh]


async def _payload(
    info: Info[Context, None], done: Outcome | None, errors: list[UserError]
) -> SubgraphPayload:
    if done is None:
        return SubgraphPayload(subgraph=None, accepted=False, problems=[], user_errors=errors)
    row, result = done
    if result.accepted:
        runtime: Any = info.context.request.app.state.runtime
        await runtime.reload_policy()
    return SubgraphPayload(
        subgraph=Subgraph.of(row),
        accepted=result.accepted,
        problems=result.problems,
        user_errors=errors,
    )


@strawberry.type
class SubgraphMutations:
    @strawberry.mutation(description="Register a subgraph and compose its SDL.")
    async def add_subgraph(
        self, info: Info[Context, None], input: AddSubgraphInput
    ) -> SubgraphPayload:
        ctx = info.context
        policy = load_federation_settings().net_policy()
        header = (input.header.name, input.header.value) if input.header else None
        oauth = None
        if input.oauth is not None:
            oauth = {
                "token_url": input.oauth.token_url,
                "client_id": input.oauth.client_id,
                "client_secret": input.oauth.client_secret,
                **({"scope": input.oauth.scope} if input.oauth.scope else {}),
            }
        done, errors = await run_write(
            ctx,
            lambda s: admin.add_subgraph(
                s,
                ctx.principal,
                policy,
                name=input.name,
                url=input.url,
                header=header,
                oauth=oauth,
                timeout_seconds=input.timeout_ms / 1000,
            ),
            not_found_path=("input",),
        )
        return await _payload(info, done, errors)

    @strawberry.mutation(
        description="Unregister a subgraph: its fields leave the graph (refused while the "
        "sharing policy in force names one of them)."
    )
    async def remove_subgraph(self, info: Info[Context, None], name: str) -> list[UserError]:
        ctx = info.context
        _, errors = await run_write(
            ctx,
            lambda s: admin.remove_subgraph(s, ctx.principal, name),
            not_found_path=("name",),
        )
        if not errors:
            runtime: Any = ctx.request.app.state.runtime
            await runtime.reload_policy()
        return errors

    @strawberry.mutation(description="Fetch a subgraph's SDL again and compose it if it can.")
    async def refresh_subgraph(self, info: Info[Context, None], name: str) -> SubgraphPayload:
        ctx = info.context
        policy = load_federation_settings().net_policy()
        done, errors = await run_write(
            ctx,
            lambda s: admin.refresh_subgraph(s, ctx.principal, name, policy),
            not_found_path=("name",),
        )
        return await _payload(info, done, errors)
