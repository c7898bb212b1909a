"""The delivery worker's settings, from ``HUB_DELIVERY_*`` environment variables."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from hub.net_settings import OutboundNetSettings, load_env

DEFAULT_RETRY_DELAYS = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 18000.0, 36000.0)
"""Seconds before each retry (then ±20 % jitter): about 18 hours in all, 10 attempts."""


class DeliverySettings(OutboundNetSettings):
    """Every knob of outbound delivery (docs/deliveries.md has the table)."""

    model_config = SettingsConfigDict(env_prefix="HUB_DELIVERY_", extra="ignore", frozen=True)

    # allow_loopback and allowed_networks: subscribers' addresses (OutboundNetSettings).
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    """Seconds before each retry; a delivery is dead after ``len + 1`` failed attempts."""
    jitter: float = Field(default=0.2, ge=0, le=1)
    """Each delay is drawn from ``delay * (1 ± jitter)``."""
    connect_timeout: float = Field(default=5.0, gt=0, le=60)
    timeout: float = Field(default=10.0, gt=0, le=120)
    concurrency: int = Field(default=8, gt=0, le=512)
    """Requests in flight at once, across subscriptions. More is not faster against a
    quick receiver: httpcore's pool checks every kept connection on each request, so
    its cost per request grows with the connections (bench/deliveries.py: about 700/s at
    4, 190/s at 16 on loopback); more pays off only when receivers are slow. Run more
    workers to scale out."""
    batch: int = Field(default=200, gt=0, le=5000)
    """Outbox events read, and deliveries claimed, per round."""
    lease: float = Field(default=120.0, gt=0)
    """Seconds a claimed delivery is left to its sender before another may try it."""
    poll_interval: float = Field(default=1.0, gt=0, le=300)
    secret_overlap: float = Field(default=24 * 3600.0, ge=0)
    """Seconds a rotated secret keeps signing beside the new one."""

    @field_validator("retry_delays")
    @classmethod
    def _delays(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(delay < 0 for delay in value):
            raise ValueError("delays are seconds, 0 or more")
        return value

    @property
    def max_attempts(self) -> int:
        return len(self.retry_delays) + 1


def load_delivery_settings(**overrides: object) -> DeliverySettings:
    """Read the settings, naming the variable of a bad value (:class:`SettingsError`)."""
    return load_env(DeliverySettings, **overrides)
