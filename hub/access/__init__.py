"""Access enforcement, the only place access is decided at run time (DESIGN §5), and the
resource registry it decides on (:mod:`hub.access.registry`, DESIGN §10)."""

from hub.access.enforce import (
    FULL_SCHEMA,
    REMOTE,
    WITHHELD,
    Access,
    Record,
    RemoteDecisions,
    access,
)
from hub.access.policy_rules import PolicyRules
from hub.access.registry import REGISTRY
from hub.access.resources import FIELDS, Action, Resource
from hub.access.rules import RuleSet

__all__ = [
    "FIELDS",
    "FULL_SCHEMA",
    "REGISTRY",
    "REMOTE",
    "WITHHELD",
    "Access",
    "Action",
    "PolicyRules",
    "Record",
    "RemoteDecisions",
    "Resource",
    "RuleSet",
    "access",
]
