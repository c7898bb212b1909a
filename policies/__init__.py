"""The sharing-policy engine (DESIGN §4): pure, imports nothing from the project.

Built so far: the document model (:mod:`policies.model`), the YAML/JSON parser with
line:column errors (:mod:`policies.parse`), the resource catalog (:mod:`policies.catalog`)
and validation against it (:mod:`policies.validate`), the masks (:mod:`policies.masks`) and
the plain Python evaluator with ``explain`` (:mod:`policies.evaluate`), the oracle of the
compiler to SQLAlchemy predicates and row plans (:mod:`policies.compile`), the publish-time
guardrail and expectation checks (:mod:`policies.guard`) and document diffs
(:mod:`policies.diff`). ``hub.access.policy_rules`` enforces a published document;
``hub.sharing`` keeps its versions.
"""

from policies.catalog import Catalog, CatalogError, FieldType, Relation, ResourceSpec
from policies.compile import Join, RowPlan, SqlMapping, compile_condition, plan
from policies.diff import RuleChange, diff_documents, field_access
from policies.errors import PolicyError, PolicySyntaxError, PolicyValidationError
from policies.evaluate import (
    Caller,
    Decision,
    FieldDecision,
    RuleTrace,
    evaluate,
    explain,
    holds,
    project,
)
from policies.guard import (
    Violation,
    check_guardrails,
    concrete_guardrails,
    describe,
    implies,
    run_expectations,
)
from policies.masks import apply_mask
from policies.model import (
    And,
    Compare,
    Condition,
    Document,
    Effect,
    Expectation,
    Guardrail,
    MaskSpec,
    Not,
    Or,
    Outcome,
    Position,
    Read,
    Rule,
    Subject,
    Variable,
    Write,
)
from policies.parse import parse, parse_json, parse_yaml
from policies.validate import check, validate

__all__ = [
    "And",
    "Caller",
    "Catalog",
    "CatalogError",
    "Compare",
    "Condition",
    "Decision",
    "Document",
    "Effect",
    "Expectation",
    "FieldDecision",
    "FieldType",
    "Guardrail",
    "Join",
    "MaskSpec",
    "Not",
    "Or",
    "Outcome",
    "PolicyError",
    "PolicySyntaxError",
    "PolicyValidationError",
    "Position",
    "Read",
    "Relation",
    "ResourceSpec",
    "RowPlan",
    "Rule",
    "RuleChange",
    "RuleTrace",
    "SqlMapping",
    "Subject",
    "Variable",
    "Violation",
    "Write",
    "apply_mask",
    "check",
    "check_guardrails",
    "compile_condition",
    "concrete_guardrails",
    "describe",
    "diff_documents",
    "evaluate",
    "explain",
    "field_access",
    "holds",
    "implies",
    "parse",
    "parse_json",
    "parse_yaml",
    "plan",
    "project",
    "run_expectations",
    "validate",
]
