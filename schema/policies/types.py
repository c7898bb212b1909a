"""Types of the sharing-policy admin API."""

from __future__ import annotations

import enum
import re
from datetime import datetime
from typing import Any, cast

import strawberry

from hub import sharing
from hub.access import Resource
from hub.models import PolicyVersion as PolicyVersionRow
from schema.common import UserError


@strawberry.enum
class PolicyFormat(enum.Enum):
    YAML = "yaml"
    JSON = "json"


def _constant(name: str) -> str:
    """``CustomerPartner`` -> ``CUSTOMER_PARTNER``: the GraphQL spelling of a value."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


PolicyResource = strawberry.enum(
    cast(type[enum.Enum], enum.Enum("PolicyResource", {_constant(r): r.value for r in Resource})),
    description="A resource the sharing policy decides access to.",
)
"""Every resource of the registry (:class:`hub.access.Resource`), named as in policies."""


@strawberry.type(
    description="Why a policy is refused; line and column are 0 when no "
    "source position applies (guardrails and expectations name the rule)."
)
class PolicyProblem:
    kind: str
    message: str
    line: int
    column: int
    rule: str | None

    @classmethod
    def of(cls, problem: sharing.Problem) -> PolicyProblem:
        return cls(
            kind=problem.kind,
            message=problem.message,
            line=problem.line,
            column=problem.column,
            rule=problem.rule,
        )


@strawberry.type
class PolicyValidation:
    valid: bool
    problems: list[PolicyProblem]


@strawberry.type(description="An immutable, published version of the sharing policy.")
class PolicyVersion:
    number: int
    action: str = strawberry.field(description="install, publish or rollback")
    restores: int | None = strawberry.field(description="The version a rollback copied")
    author: str
    reason: str
    created_at: datetime
    sha256: str
    source: str

    @classmethod
    def of(cls, row: PolicyVersionRow) -> PolicyVersion:
        return cls(
            number=row.number,
            action=row.action,
            restores=row.restores,
            author=row.author,
            reason=row.reason,
            created_at=row.created_at,
            sha256=row.sha256,
            source=row.source,
        )


@strawberry.type
class PolicyPayload:
    version: PolicyVersion | None
    problems: list[PolicyProblem]
    user_errors: list[UserError]


@strawberry.type
class ResourceImpact:
    resource: str
    fields_gained: list[str]
    fields_lost: list[str]
    rows_gained: int
    rows_lost: int


@strawberry.type
class OrganizationImpact:
    organization: str
    kind: str
    resources: list[ResourceImpact] = strawberry.field(description="Changed resources only")


@strawberry.type
class PolicyPreview:
    problems: list[PolicyProblem] = strawberry.field(
        description="What a publish would refuse (empty if it would succeed)"
    )
    organizations: list[OrganizationImpact] = strawberry.field(
        description="Organizations whose access would change"
    )

    @classmethod
    def of(
        cls, problems: list[sharing.Problem], impacts: list[sharing.OrganizationImpact]
    ) -> PolicyPreview:
        organizations = []
        for impact in impacts:
            changed = [
                ResourceImpact(
                    resource=r.resource,
                    fields_gained=r.fields_gained,
                    fields_lost=r.fields_lost,
                    rows_gained=r.rows_gained,
                    rows_lost=r.rows_lost,
                )
                for r in impact.resources
                if r.changed
            ]
            if changed:
                organizations.append(
                    OrganizationImpact(
                        organization=impact.organization, kind=impact.kind, resources=changed
                    )
                )
        return cls(problems=[PolicyProblem.of(p) for p in problems], organizations=organizations)


@strawberry.type
class PolicyRuleChange:
    name: str
    change: str
    details: list[str]


@strawberry.type
class PolicyDiff:
    old: int
    new: int
    rules: list[PolicyRuleChange]
    text: str = strawberry.field(description="Unified diff of the sources")


@strawberry.type
class RowExplanation:
    visible: bool
    rules: list[str] = strawberry.field(
        description="The allow rules admitting the row, or the deny rule or guardrail hiding it"
    )


@strawberry.type
class FieldExplanation:
    field: str
    outcome: str = strawberry.field(description="visible, masked or hidden")
    mask: str | None
    rule: str | None = strawberry.field(description="The deciding rule or guardrail")


@strawberry.type
class RuleExplanation:
    name: str
    effect: str
    applies: bool = strawberry.field(description="The rule's subjects match the caller")
    rows: bool = strawberry.field(description="Its rows condition holds for this record")


@strawberry.type
class AccessExplanation:
    version: int
    organization: str
    resource: str
    id: str
    row: RowExplanation
    fields: list[FieldExplanation]
    rules: list[RuleExplanation]

    @classmethod
    def of(cls, data: dict[str, Any]) -> AccessExplanation:
        return cls(
            version=data["version"],
            organization=data["organization"],
            resource=data["resource"],
            id=data["id"],
            row=RowExplanation(visible=data["row"]["visible"], rules=data["row"]["rules"]),
            fields=[
                FieldExplanation(field=name, outcome=f["outcome"], mask=f["mask"], rule=f["rule"])
                for name, f in sorted(data["fields"].items())
            ],
            rules=[RuleExplanation(**r) for r in data["rules"]],
        )
