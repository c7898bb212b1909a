"""Sharing-policy mutations: publish and roll back (administrators only)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from hub import sharing
from hub.admin import policies
from hub.models import PolicyVersion as PolicyVersionRow
from schema.common import UserError
from schema.context import Context
from schema.policies.types import PolicyFormat, PolicyPayload, PolicyProblem, PolicyVersion
from schema.writes import run_write


def _payload(
    row: PolicyVersionRow | None, problems: list[sharing.Problem], errors: list[UserError]
) -> PolicyPayload:
    return PolicyPayload(
        version=PolicyVersion.of(row) if row is not None else None,
        problems=[PolicyProblem.of(p) for p in problems],
        user_errors=errors,
    )


@strawberry.type
class PolicyMutations:
    @strawberry.mutation(
        description="Publish the source as the next version, in force on every replica "
        "within seconds. Refused (problems listed, nothing stored) if it is invalid or "
        "breaks a guardrail or one of its expectations. With expectedVersion, refused "
        "with CONFLICT if another version was published since."
    )
    async def publish_policy(
        self,
        info: Info[Context, None],
        source: str,
        reason: str,
        format: PolicyFormat = PolicyFormat.YAML,
        expected_version: int | None = None,
    ) -> PolicyPayload:
        ctx = info.context
        try:
            row, errors = await run_write(
                ctx,
                lambda s: policies.publish_policy(
                    s, ctx.principal, source, format.value, reason, expected_version
                ),
                not_found_path=("source",),
            )
        except sharing.PolicyRejectedError as error:
            return _payload(None, error.problems, [])
        return _payload(row, [], errors)

    @strawberry.mutation(
        description="Publish a copy of an earlier version: exactly its behaviour returns."
    )
    async def rollback_policy(
        self, info: Info[Context, None], version: int, reason: str
    ) -> PolicyPayload:
        ctx = info.context
        try:
            row, errors = await run_write(
                ctx,
                lambda s: policies.rollback_policy(s, ctx.principal, version, reason),
                not_found_path=("version",),
            )
        except sharing.PolicyRejectedError as error:
            return _payload(None, error.problems, [])
        return _payload(row, [], errors)
