"""Access enforcement, the only place access is decided at run time (DESIGN §5)."""

from hub.access.enforce import Access, Record, access
from hub.access.resources import FIELDS, Action, Resource
from hub.access.rules import BuiltinRules, RuleSet

__all__ = ["FIELDS", "Access", "Action", "BuiltinRules", "Record", "Resource", "RuleSet", "access"]
