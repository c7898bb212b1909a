"""The resources access is decided on, the actions on them, and their readable fields:
views of the registry (:mod:`hub.access.registry`), where each resource is declared."""

from __future__ import annotations

from sqlmodel import SQLModel

from hub.access.registry import REGISTRY, Resource
from hub.access.specs import Action

__all__ = ["FIELDS", "MODELS", "Action", "Resource"]

MODELS: dict[Resource, type[SQLModel]] = {r: REGISTRY[r].table for r in Resource}

# Every field a projection may carry, per resource: the allow-list a projection starts
# from, so a column added to a table is hidden until the registry declares it.
FIELDS: dict[Resource, frozenset[str]] = {r: REGISTRY[r].stored for r in Resource}
