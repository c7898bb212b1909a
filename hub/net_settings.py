"""Settings of a channel that calls out to other systems' addresses: which non-public
networks it may reach (:mod:`hub.netguard` refuses the rest), each channel under its own
environment prefix (``HUB_DELIVERY_``, ``HUB_SYNC_``, ``HUB_FEDERATION_``)."""

from __future__ import annotations

import ipaddress
from typing import Any, TypeVar

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.netguard import IPNetwork, NetPolicy
from hub.settings import SettingsError


class OutboundNetSettings(BaseSettings):
    """The network policy's knobs; a channel subclasses it with its ``env_prefix`` and
    its own settings.

    Example::

        class SyncNetSettings(OutboundNetSettings):
            model_config = SettingsConfigDict(env_prefix="HUB_SYNC_", extra="ignore", frozen=True)
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    allow_loopback: bool = False
    """Allow loopback addresses, ``http`` included (tests, development)."""
    allowed_networks: tuple[str, ...] = ()
    """Non-public networks that may be reached (CIDR), e.g. ``["10.20.0.0/16"]``."""

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return value

    def net_policy(self) -> NetPolicy:
        networks: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(text, strict=False) for text in self.allowed_networks
        )
        return NetPolicy(allow_loopback=self.allow_loopback, allowed_networks=networks)


Settings = TypeVar("Settings", bound=OutboundNetSettings)


def load_env(cls: type[Settings], **overrides: Any) -> Settings:
    """``cls`` read from the environment; a bad value is a :class:`SettingsError` naming
    its variable (``HUB_SYNC_ALLOWED_NETWORKS: 'x' is not a network ...``)."""
    try:
        return cls(**overrides)
    except ValidationError as error:
        prefix = str(cls.model_config.get("env_prefix") or "")
        problems = [
            f"{prefix}{str(item['loc'][0]).upper()}: " + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        ]
        raise SettingsError(f"invalid setting {'; '.join(problems)}; fix or unset it") from None
