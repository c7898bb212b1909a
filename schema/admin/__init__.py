"""Administration: organizations and OAuth clients (scope hub:admin, operator or department)."""
