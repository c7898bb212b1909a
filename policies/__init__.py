"""The sharing-policy engine (DESIGN §4): pure, imports nothing from the project.

Built so far: the document model (:mod:`policies.model`), the YAML/JSON parser with
line:column errors (:mod:`policies.parse`), the resource catalog (:mod:`policies.catalog`)
and validation against it (:mod:`policies.validate`), the masks (:mod:`policies.masks`) and
the plain Python evaluator with ``explain`` (:mod:`policies.evaluate`), the oracle for the
SQL compiler to come. Not built yet: the compiler to SQLAlchemy predicates, guardrail and
expectation checks at publish, and the wiring into ``hub.access``; until then
``hub.access.rules.BuiltinRules`` is in force.
"""

from policies.catalog import Catalog, CatalogError, FieldType, Relation, ResourceSpec
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
    "Rule",
    "RuleTrace",
    "Subject",
    "Variable",
    "Write",
    "apply_mask",
    "check",
    "evaluate",
    "explain",
    "holds",
    "parse",
    "parse_json",
    "parse_yaml",
    "project",
    "validate",
]
