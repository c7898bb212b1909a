"""Sharing-policy queries (administrators only)."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from hub.access import Resource
from hub.admin import policies
from hub.errors import BadInputError
from schema.context import Context
from schema.ids import from_global_id
from schema.policies.types import (
    AccessExplanation,
    PolicyDiff,
    PolicyFormat,
    PolicyPreview,
    PolicyProblem,
    PolicyResource,
    PolicyRuleChange,
    PolicyValidation,
    PolicyVersion,
)


def _record_id(value: str) -> uuid.UUID:
    """A global ID or a plain UUID."""
    parsed = from_global_id(value)
    if parsed is not None:
        return parsed[1]
    try:
        return uuid.UUID(value)
    except ValueError:
        raise BadInputError("id must be a global ID or a UUID") from None


@strawberry.type
class PolicyQueries:
    @strawberry.field(description="Check a policy source; problems name line and column.")
    async def validate_policy(
        self, info: Info[Context, None], source: str, format: PolicyFormat = PolicyFormat.YAML
    ) -> PolicyValidation:
        problems = await policies.validate_policy(info.context.principal, source, format.value)
        return PolicyValidation(
            valid=not problems, problems=[PolicyProblem.of(p) for p in problems]
        )

    @strawberry.field(
        description="What publishing the source would change per organization, on current data."
    )
    async def preview_policy(
        self, info: Info[Context, None], source: str, format: PolicyFormat = PolicyFormat.YAML
    ) -> PolicyPreview:
        ctx = info.context
        async with ctx.database.session() as session:
            problems, impacts = await policies.preview_policy(
                session, ctx.principal, source, format.value, ctx.settings.master_key
            )
        return PolicyPreview.of(problems, impacts)

    @strawberry.field(description="Every version, newest (in force) first.")
    async def policy_versions(self, info: Info[Context, None]) -> list[PolicyVersion]:
        ctx = info.context
        async with ctx.database.session() as session:
            rows = await policies.policy_versions(session, ctx.principal)
        return [PolicyVersion.of(row) for row in rows]

    @strawberry.field(description="Rule-by-rule and source differences between two versions.")
    async def diff_policy_versions(
        self, info: Info[Context, None], old: int, new: int
    ) -> PolicyDiff:
        ctx = info.context
        async with ctx.database.session() as session:
            diff = await policies.diff_policy_versions(session, ctx.principal, old, new)
        return PolicyDiff(
            old=diff.old,
            new=diff.new,
            rules=[PolicyRuleChange(**change) for change in diff.rules],
            text=diff.text,
        )

    @strawberry.field(
        description="Why an organization sees what it sees of one record: the row decision "
        "and each field's outcome with its deciding rule, under the version in force."
    )
    async def explain_access(
        self,
        info: Info[Context, None],
        organization: str,
        resource: PolicyResource,  # type: ignore[valid-type]
        id: str,
    ) -> AccessExplanation:
        ctx = info.context
        async with ctx.database.session() as session:
            data = await policies.explain_access(
                session,
                ctx.principal,
                organization,
                Resource(resource.value),  # type: ignore[attr-defined]
                _record_id(id),
            )
        return AccessExplanation.of(data)
