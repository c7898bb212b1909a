"""What can stop a sync: each error's message says what is wrong and what to do."""

from __future__ import annotations

from hub.outage import unavailable_dependency

# SQLSTATEs worth retrying: serialisation failure, deadlock, lock not available.
_RETRY_STATES = frozenset({"40001", "40P01", "55P03"})


def transient(error: BaseException) -> bool:
    """Whether retrying the same work later may succeed (the database is down, busy or
    asked the transaction to retry)."""
    if unavailable_dependency(error) == "database":
        return True
    current: BaseException | None = error
    seen = 0
    while current is not None and seen < 10:
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if state in _RETRY_STATES:
            return True
        current = getattr(current, "orig", None) or current.__cause__
        seen += 1
    return False


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
    "transient",
]
