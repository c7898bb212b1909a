"""Partner read disclosures: what customer data each partner request received (DESIGN §5,
"the disclosure record for the audit log").

Three modules, one concept each, importing only in this order:

- :mod:`~hub.disclosures.collect`: the per-request :class:`ReadCollector`, fed by
  :meth:`hub.access.Access.project_all` through a context variable;
- :mod:`~hub.disclosures.write`: :func:`write_reads` (collectors into chained ``read``
  audit events), :func:`index_pending` (the :class:`~hub.models.Disclosure` index derived
  from them) and the batching background :class:`DisclosureWriter`;
- :mod:`~hub.disclosures.report`: :func:`disclosures_of` and :class:`DisclosureView`, for
  administrators only, behind :mod:`hub.admin.audit`.

Callers import from this package (``from hub import disclosures``). Nothing here may import
:mod:`hub.access`, which imports it.
"""

from hub.disclosures.collect import _MARKERS as _MARKERS
from hub.disclosures.collect import READ, ReadCollector, collect, query_hash, recording
from hub.disclosures.report import EXPORT_COLUMNS, DisclosureView, disclosures_of, merged_into
from hub.disclosures.write import (
    DISCLOSURE_COLUMNS,
    INDEX_LAG,
    DisclosureWriter,
    index_pending,
    records_of_event,
    rows_of_event,
    write_reads,
)

__all__ = [
    "DISCLOSURE_COLUMNS",
    "EXPORT_COLUMNS",
    "INDEX_LAG",
    "READ",
    "DisclosureView",
    "DisclosureWriter",
    "ReadCollector",
    "collect",
    "disclosures_of",
    "index_pending",
    "merged_into",
    "query_hash",
    "recording",
    "records_of_event",
    "rows_of_event",
    "write_reads",
]
