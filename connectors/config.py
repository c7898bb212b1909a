"""Reading a connector's configuration: errors that name the key at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ConfigError(ValueError):
    """A connector's configuration or mapping is unusable; the message starts with the
    key at fault (``config.path: ...``, ``mapping.kind.map: ...``)."""


def required_text(config: Mapping[str, Any], key: str, where: str = "config") -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}.{key}: required (text)")
    return value.strip()


def optional_text(config: Mapping[str, Any], key: str, where: str = "config") -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key}: must be text")
    return value


__all__ = ["ConfigError", "optional_text", "required_text"]
