"""Where sync sources may connect: the outbound address rules (``hub.netguard``) for
connectors that call other systems over HTTP (``connectors.http``), from
``HUB_SYNC_*`` environment variables.

A department's tool often lives on a private network; reaching it is the operator's
explicit choice (``HUB_SYNC_ALLOWED_NETWORKS='["10.20.0.0/16"]'``), never a connector
definition's: by default only public addresses are reached, over https.
"""

from __future__ import annotations

import ipaddress

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors import OutboundSource, Source
from hub.netguard import GuardedTransport, IPNetwork, NetPolicy, Resolver, system_resolver
from hub.settings import SettingsError


class SyncNetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_SYNC_", extra="ignore", frozen=True)

    allow_loopback: bool = False
    """Allow sources on loopback addresses, ``http`` included (tests, development)."""
    allowed_networks: tuple[str, ...] = ()
    """Non-public networks sources may be on (CIDR), e.g. ``["10.20.0.0/16"]``."""

    @field_validator("allowed_networks")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            try:
                ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise ValueError(f"{text!r} is not a network (CIDR, e.g. 10.0.0.0/8)") from None
        return value


def sync_net_policy() -> NetPolicy:
    """The policy from the environment; :class:`SettingsError` names a bad variable."""
    try:
        settings = SyncNetSettings()
    except ValidationError as error:
        problems = [
            f"HUB_SYNC_{str(item['loc'][0]).upper()}: " + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        ]
        raise SettingsError(f"invalid setting {'; '.join(problems)}; fix or unset it") from None
    networks: tuple[IPNetwork, ...] = tuple(
        ipaddress.ip_network(text, strict=False) for text in settings.allowed_networks
    )
    return NetPolicy(allow_loopback=settings.allow_loopback, allowed_networks=networks)


def connected(source: Source, policy: NetPolicy, resolver: Resolver = system_resolver) -> Source:
    """``source``, connecting through a transport that checks every address against
    ``policy`` when it calls out (other sources are returned as they are)."""
    if isinstance(source, OutboundSource):
        return source.with_transport(GuardedTransport(policy, resolver))
    return source


__all__ = ["SyncNetSettings", "connected", "sync_net_policy"]
