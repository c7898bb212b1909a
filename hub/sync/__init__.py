"""The inbound sync runtime (DESIGN §8): connectors that read other systems' records and
write them into the hub as an organization, through the write pipeline.

- :mod:`hub.sync.config`: connector definitions (YAML or data), stored with credentials
  sealed; the resources a connector may write (:data:`~hub.sync.config.TARGETS`);
- :mod:`hub.sync.target`, :mod:`hub.sync.feedback`, :mod:`hub.sync.customers`: how a
  mapped record is validated, matched to its customer and stored;
- :mod:`hub.sync.runner`: one run, batch by batch, each with its checkpoint;
- :mod:`hub.sync.lease`: one runner per connector across replicas;
- :mod:`hub.sync.runs`: the record of runs and the status of connectors;
- :mod:`hub.sync.imports`: ``hub import`` of one file; :mod:`hub.sync.worker`: the
  scheduler.

May import ``hub`` and ``connectors``; never ``schema`` or ``app``.
"""

from hub.sync.config import ConnectorSpec, load_connector, parse_spec, save_connector
from hub.sync.errors import SyncError
from hub.sync.runner import Runner, RunProgress, RunReport
from hub.sync.runs import Counts

__all__ = [
    "ConnectorSpec",
    "Counts",
    "RunProgress",
    "RunReport",
    "Runner",
    "SyncError",
    "load_connector",
    "parse_spec",
    "save_connector",
]
