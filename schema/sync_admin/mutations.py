"""Admin mutations on connectors and deliveries: each audited, bad input as user errors."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry
from strawberry.types import Info

from hub.delivery import admin as delivery_admin
from hub.errors import FieldProblem, InvalidInputError, NotFoundError
from hub.sync import admin as sync_admin
from hub.sync.replay import replay_dead_letter
from hub.workers import ServerWorkers
from schema.common import UserError, user_errors
from schema.context import Context
from schema.ids import expect_id
from schema.sync_admin.types import (
    DEAD_LETTER_ID_TYPE,
    DELIVERY_ID_TYPE,
    AdminDelivery,
    Connector,
    ConnectorInput,
    ConnectorPatch,
    ConnectorPayload,
    ReplayDeadLetterPayload,
    ReplayDeliveryPayload,
    RunConnectorPayload,
    SyncDeadLetter,
    SyncRun,
)
from schema.writes import run_write

T = TypeVar("T")


def workers_of(ctx: Context) -> ServerWorkers:
    """The running app's background workers (made in its lifespan, app.py)."""
    workers = getattr(ctx.request.app.state, "workers", None)
    if not isinstance(workers, ServerWorkers):
        raise RuntimeError("the app has no background workers (app.state.workers)")
    return workers


async def caught(
    work: Awaitable[T], not_found_path: tuple[str, ...]
) -> tuple[T | None, list[UserError]]:
    """``work``'s result, or its refusal as user errors (as :func:`run_write` does, for
    work that manages its own transactions)."""
    try:
        return await work, []
    except InvalidInputError as error:
        return None, user_errors(error.problems)
    except NotFoundError as error:
        return None, user_errors([FieldProblem(not_found_path, str(error), "NOT_FOUND")])


def _connector(view: sync_admin.ConnectorView | None, errors: list[UserError]) -> ConnectorPayload:
    return ConnectorPayload(
        connector=None if view is None else Connector.of(view), user_errors=errors
    )


@strawberry.type
class SyncAdminMutations:
    @strawberry.mutation(description="Define a connector (checked like `hub sync apply`).")
    async def create_connector(
        self, info: Info[Context, None], input: ConnectorInput
    ) -> ConnectorPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: sync_admin.create_connector(s, ctx.principal, input.to_definition()),
            not_found_path=("input",),
        )
        return _connector(view, errors)

    @strawberry.mutation(description="Change a connector's definition; its checkpoint stays.")
    async def update_connector(
        self, info: Info[Context, None], name: str, patch: ConnectorPatch
    ) -> ConnectorPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: sync_admin.update_connector(s, ctx.principal, name, patch.to_patch()),
            not_found_path=("name",),
        )
        return _connector(view, errors)

    @strawberry.mutation(description="No more runs until enabled again (updateConnector).")
    async def disable_connector(self, info: Info[Context, None], name: str) -> ConnectorPayload:
        ctx = info.context
        view, errors = await run_write(
            ctx,
            lambda s: sync_admin.disable_connector(s, ctx.principal, name),
            not_found_path=("name",),
        )
        return _connector(view, errors)

    @strawberry.mutation(
        description="Run a connector now, from its checkpoint, in the server's background; "
        "answers with the run (finished when it took a few seconds at most)."
    )
    async def run_connector(self, info: Info[Context, None], name: str) -> RunConnectorPayload:
        ctx = info.context
        view, errors = await caught(
            workers_of(ctx).request_run(ctx.principal, name), not_found_path=("name",)
        )
        return RunConnectorPayload(
            run=None if view is None else SyncRun.of(view), user_errors=errors
        )

    @strawberry.mutation(
        description="Store a dead letter's record again under the connector's mapping and "
        "policy now: resolved when stored, else open with the new reason."
    )
    async def replay_dead_letter(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ReplayDeadLetterPayload:
        ctx = info.context
        letter_id = expect_id(str(id), DEAD_LETTER_ID_TYPE)
        if letter_id is None:
            problem = FieldProblem(("id",), "no such dead letter", "NOT_FOUND")
            return ReplayDeadLetterPayload(
                outcome=None, dead_letter=None, user_errors=user_errors([problem])
            )
        done, errors = await run_write(
            ctx,
            lambda s: replay_dead_letter(
                s,
                ctx.principal,
                letter_id,
                database=ctx.database,
                master_key=ctx.settings.master_key,
            ),
            not_found_path=("id",),
        )
        if done is None:
            return ReplayDeadLetterPayload(outcome=None, dead_letter=None, user_errors=errors)
        return ReplayDeadLetterPayload(
            outcome=done.outcome, dead_letter=SyncDeadLetter.of(done.letter), user_errors=errors
        )

    @strawberry.mutation(
        description="Send a delivery again (its id, or its webhook-id), with the same "
        "webhook-id: attempts reset, due now."
    )
    async def replay_delivery(
        self, info: Info[Context, None], id: strawberry.ID
    ) -> ReplayDeliveryPayload:
        ctx = info.context
        found = expect_id(str(id), DELIVERY_ID_TYPE)
        reference = str(id) if found is None else str(found)
        view, errors = await run_write(
            ctx,
            lambda s: delivery_admin.replay_delivery(s, ctx.principal, reference),
            not_found_path=("id",),
        )
        return ReplayDeliveryPayload(
            delivery=None if view is None else AdminDelivery.of(view), user_errors=errors
        )
