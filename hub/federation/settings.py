"""Where remote subgraphs may be reached: the outbound address rules (``hub.netguard``)
for the hub's calls to subgraphs, from ``HUB_FEDERATION_*`` environment variables.

A department's service often lives on a private network; reaching it is the operator's
explicit choice (``HUB_FEDERATION_ALLOWED_NETWORKS='["10.20.0.0/16"]'``), never a
subgraph registration's: by default only public addresses, over https.
"""

from __future__ import annotations

import ipaddress

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.netguard import IPNetwork, NetPolicy
from hub.settings import SettingsError


class FederationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_FEDERATION_", extra="ignore", frozen=True)

    allow_loopback: bool = False
    """Allow subgraphs on loopback addresses, ``http`` included (tests, development)."""
    allowed_networks: tuple[str, ...] = ()
    """Non-public networks subgraphs may be on (CIDR), e.g. ``["10.20.0.0/16"]``."""

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


def load_federation_settings() -> FederationSettings:
    """The settings from the environment; :class:`SettingsError` names a bad variable."""
    try:
        return FederationSettings()
    except ValidationError as error:
        problems = [
            f"HUB_FEDERATION_{str(item['loc'][0]).upper()}: "
            + item["msg"].removeprefix("Value error, ")
            for item in error.errors()
        ]
        raise SettingsError(f"invalid setting {'; '.join(problems)}; fix or unset it") from None
