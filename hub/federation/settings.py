"""Where remote subgraphs may be reached: the outbound address rules (``hub.netguard``)
for the hub's calls to subgraphs, from ``HUB_FEDERATION_*`` environment variables.

A department's service often lives on a private network; reaching it is the operator's
explicit choice (``HUB_FEDERATION_ALLOWED_NETWORKS='["10.20.0.0/16"]'``), never a
subgraph registration's: by default only public addresses, over https.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from hub.net_settings import OutboundNetSettings, load_env


class FederationSettings(OutboundNetSettings):
    """Subgraphs' addresses: loopback (tests) and the non-public networks allowed."""

    model_config = SettingsConfigDict(env_prefix="HUB_FEDERATION_", extra="ignore", frozen=True)


def load_federation_settings() -> FederationSettings:
    """The settings from the environment; :class:`SettingsError` names a bad variable."""
    return load_env(FederationSettings)
