"""Access enforcement, the only place access is decided at run time (DESIGN §5)."""

from hub.access.enforce import FULL_SCHEMA, WITHHELD, Access, Record, access
from hub.access.policy_rules import PolicyRules
from hub.access.resources import FIELDS, Action, Resource
from hub.access.rules import RuleSet

__all__ = [
    "FIELDS",
    "FULL_SCHEMA",
    "WITHHELD",
    "Access",
    "Action",
    "PolicyRules",
    "Record",
    "Resource",
    "RuleSet",
    "access",
]
