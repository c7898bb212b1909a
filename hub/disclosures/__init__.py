"""Partner read disclosures: what customer data each partner request received (DESIGN §5,
"the disclosure record for the audit log").

Three modules, one concept each, importing only in this order:

- :mod:`~hub.disclosures.collect`: the per-request :class:`ReadCollector`, fed by
  :meth:`hub.access.Access.project_all` through a context variable;
- :mod:`~hub.disclosures.index`: the :class:`~hub.models.Disclosure` index derived from
  the ``read`` events (:func:`index_pending`), how each backend stores it, finds a
  customer's events in it and repoints a merged customer (:func:`repoint`);
- :mod:`~hub.disclosures.write`: :func:`write_reads` (collectors into chained ``read``
  audit events) and the batching background :class:`DisclosureWriter`, which keeps the
  index following the events;
- :mod:`~hub.disclosures.report`: :func:`disclosures_of` and :class:`DisclosureView`, for
  administrators only, behind :mod:`hub.admin.audit`.

Callers import from this package (``from hub import disclosures``). Nothing here may import
:mod:`hub.access`, which imports it.
"""

from hub.disclosures.collect import _MARKERS as _MARKERS
from hub.disclosures.collect import READ, ReadCollector, collect, query_hash, recording
from hub.disclosures.index import (
    DISCLOSURE_COLUMNS,
    customer_count,
    index_pending,
    repoint,
    rows_of_event,
)
from hub.disclosures.report import EXPORT_COLUMNS, DisclosureView, disclosures_of, merged_into
from hub.disclosures.write import INDEX_LAG, DisclosureWriter, records_of_event, write_reads

__all__ = [
    "DISCLOSURE_COLUMNS",
    "EXPORT_COLUMNS",
    "INDEX_LAG",
    "READ",
    "DisclosureView",
    "DisclosureWriter",
    "ReadCollector",
    "collect",
    "customer_count",
    "disclosures_of",
    "index_pending",
    "merged_into",
    "query_hash",
    "recording",
    "records_of_event",
    "repoint",
    "rows_of_event",
    "write_reads",
]
