"""The audit log for administrators: ``auditEvents``, ``customerDisclosures``, the
disclosure export route, and the extension that records partner reads."""

from schema.areas import Area
from schema.audit.queries import AuditQueries

AREA = Area(position=80, queries=(AuditQueries,))
