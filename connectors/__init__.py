"""Integrations with departments' and partners' systems (DESIGN §8).

``connectors.base`` defines the protocol; each kind of source is one module, registered
here by name (explicitly: no dotted-path loading from configuration). A factory takes the
connector's configuration and its unsealed credentials and returns a :class:`Source`.
``connectors.mapping`` maps the records a source yields onto the hub's input fields.
"""

from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import (
    ChangeEvent,
    OutboundSource,
    Record,
    Sink,
    Source,
    SourceError,
    TransientSourceError,
)
from connectors.config import ConfigError
from connectors.files import FilesSource
from connectors.http import HttpSource
from connectors.sql import SqlSource
from connectors.webhook import WebhookSource

SourceFactory = Callable[[Mapping[str, Any], Mapping[str, str] | None], Source]

REGISTRY: dict[str, SourceFactory] = {
    "files": FilesSource.from_config,
    "http": HttpSource.from_config,
    "sql": SqlSource.from_config,
    "webhook": WebhookSource.from_config,
}

__all__ = [
    "REGISTRY",
    "ChangeEvent",
    "ConfigError",
    "OutboundSource",
    "Record",
    "Sink",
    "Source",
    "SourceError",
    "SourceFactory",
    "TransientSourceError",
]
