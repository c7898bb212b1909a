"""What can stop a sync: each error's message says what is wrong and what to do."""

from __future__ import annotations


class SyncError(Exception):
    """A sync cannot start or go on; the message is for the person running it."""


class ConnectorConfigError(SyncError):
    """A connector's definition is unusable (the message names the key at fault)."""


class UnknownConnectorError(SyncError):
    pass


class ConnectorDisabledError(SyncError):
    pass


class LeaseHeldError(SyncError):
    """The connector is running elsewhere (another process or replica holds its lease)."""


class LeaseLostError(SyncError):
    """Another holder took the lease during the run (this one stalled past its expiry):
    the batch in hand is not written and the run stops."""


__all__ = [
    "ConnectorConfigError",
    "ConnectorDisabledError",
    "LeaseHeldError",
    "LeaseLostError",
    "SyncError",
    "UnknownConnectorError",
]
