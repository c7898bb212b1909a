"""Integrations with departments' and partners' systems (DESIGN §8).

``connectors.base`` defines the protocol; one module per kind of system will register
itself in ``REGISTRY`` (explicitly, by name). No kind is built yet.
"""

from connectors.base import ChangeEvent, Record, Sink, Source

REGISTRY: dict[str, type[Source]] = {}

__all__ = ["REGISTRY", "ChangeEvent", "Record", "Sink", "Source"]
