"""Where sync sources may connect: the outbound address rules (``hub.netguard``) for
connectors that call other systems over HTTP (``connectors.http``), from
``HUB_SYNC_*`` environment variables.

A department's tool often lives on a private network; reaching it is the operator's
explicit choice (``HUB_SYNC_ALLOWED_NETWORKS='["10.20.0.0/16"]'``), never a connector
definition's: by default only public addresses are reached, over https.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from connectors import OutboundSource, Source
from hub.net_settings import OutboundNetSettings, load_env
from hub.netguard import GuardedTransport, NetPolicy, Resolver, system_resolver


class SyncNetSettings(OutboundNetSettings):
    """Sources' addresses: loopback (tests) and the non-public networks allowed."""

    model_config = SettingsConfigDict(env_prefix="HUB_SYNC_", extra="ignore", frozen=True)


def sync_net_policy() -> NetPolicy:
    """The policy from the environment; :class:`SettingsError` names a bad variable."""
    return load_env(SyncNetSettings).net_policy()


def connected(source: Source, policy: NetPolicy, resolver: Resolver = system_resolver) -> Source:
    """``source``, connecting through a transport that checks every address against
    ``policy`` when it calls out (other sources are returned as they are)."""
    if isinstance(source, OutboundSource):
        return source.with_transport(GuardedTransport(policy, resolver))
    return source


__all__ = ["SyncNetSettings", "connected", "sync_net_policy"]
