"""The audit log for administrators: ``auditEvents``, ``customerDisclosures``, the
disclosure export route, and the extension that records partner reads."""
